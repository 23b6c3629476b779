/* Kernel emitters for ops.def's "math, logic and bit ops": the float unary
 * ops (trigonometric, Sign, Round, ThresholdedRelu, Shrink, Celu), IsNaN,
 * IsInf, Not, And/Or/Xor, GreaterOrEqual/LessOrEqual, Mod, BitShift,
 * Hardmax, the norm-like reductions, ArgMax/ArgMin and CumSum.
 *
 * Every formula and every float operation order is ir/eval_math.c's, so the
 * generated code matches the reference evaluator bit for bit; the cases C
 * leaves undefined get eval_math.c's defined results (integer x mod 0 and
 * x mod -1 are 0, a shift by the bit width or more gives 0).  Round does
 * not depend on the FP rounding mode. */
#include <stdio.h>
#include <string.h>

#include "emit_impl.h"

static int is_unsigned(DType t)
{
	return t == DT_U8 || t == DT_U16 || t == DT_U32;
}

/* ---- unary ---- */

/* eval_math.c's round_even as a C function above the kernel. */
static const char *emit_round(Ctx *c)
{
	const char *name = arena_printf(c->g->arena, "n%d_rint", c->id);
	ec_line(&c->c, "/* halves to even, exactly, in any rounding mode: below 2^23 floor and");
	ec_line(&c->c, " * the fraction are exact; from 2^23 on every float is an integer */");
	ec_line(&c->c, "static float %s(float x)", name);
	ec_line(&c->c, "{");
	ec_line(&c->c, "const float a = fabsf(x);");
	ec_line(&c->c, "float r, d;");
	ec_line(&c->c, "if (!(a < 8388608.0f))");
	ec_line(&c->c, "\treturn x;");
	ec_line(&c->c, "r = floorf(a);");
	ec_line(&c->c, "d = a - r;");
	ec_line(&c->c, "if (d > 0.5f || (d == 0.5f && fmodf(r, 2.0f) != 0.0f))");
	ec_line(&c->c, "\tr += 1.0f;");
	ec_line(&c->c, "return copysignf(r, x);");
	ec_line(&c->c, "}");
	ec_line(&c->c, "");
	return name;
}

/* The float expression of eval_math.c's unary_f applied to v. */
static int unary_f(Ctx *c, const char *rnd, char *buf, size_t len)
{
	static const struct { Op op; const char *fn; } libm[] = {
		{OP_SIN, "sinf"}, {OP_COS, "cosf"}, {OP_TAN, "tanf"}, {OP_ASIN, "asinf"},
		{OP_ACOS, "acosf"}, {OP_ATAN, "atanf"}, {OP_SINH, "sinhf"}, {OP_COSH, "coshf"},
		{OP_ASINH, "asinhf"}, {OP_ACOSH, "acoshf"}, {OP_ATANH, "atanhf"},
	};
	const Node *n = c->n;
	char A[32], NA[32], B[32];
	emit_c_fmt_f32(A, n->a.ab.alpha);
	emit_c_fmt_f32(NA, -n->a.ab.alpha);
	emit_c_fmt_f32(B, n->a.ab.beta);
	for (size_t i = 0; i < sizeof libm / sizeof libm[0]; i++)
		if (libm[i].op == n->op) {
			snprintf(buf, len, "%s(v)", libm[i].fn);
			return 0;
		}
	switch (n->op) {
	case OP_SIGN: snprintf(buf, len, "v > 0.0f ? 1.0f : v < 0.0f ? -1.0f : v"); break;
	case OP_ROUND: snprintf(buf, len, "%s(v)", rnd); break;
	case OP_THRESHOLDEDRELU: snprintf(buf, len, "v > %s ? v : 0.0f", A); break;
	case OP_SHRINK: snprintf(buf, len, "v < %s ? v + %s : v > %s ? v - %s : 0.0f", NA, B, A, B); break;
	case OP_CELU: snprintf(buf, len, "v > 0.0f ? v : %s * expm1f(v / %s)", A, A); break;
	default: return ec_fail(c, "internal: unary %s", ir_opname[n->op]);
	}
	return 0;
}

/* IsInf's test; NULL when it detects neither infinity (constant false). */
static const char *isinf_expr(const Ctx *c)
{
	int pos = c->n->a.isinf.pos, neg = c->n->a.isinf.neg;
	return pos && neg ? "v == INFINITY || v == -INFINITY" : pos ? "v == INFINITY"
	       : neg ? "v == -INFINITY" : NULL;
}

/* The expression for v of input dtype dt, or NULL (IsInf of nothing). */
static int unary_expr(Ctx *c, DType dt, DType out, char *buf, size_t len, const char **e)
{
	Op op = c->n->op;
	*e = buf;
	if (op == OP_ISNAN || op == OP_ISINF) {
		if (dt != DT_F32 || out != DT_BOOL)
			return ec_fail(c, "takes f32 and gives bool, not %s -> %s", ir_dtype_name(dt),
			               ir_dtype_name(out));
		*e = op == OP_ISNAN ? "v != v" : isinf_expr(c);
		return 0;
	}
	if (dt != out)
		return ec_fail(c, "input and output differ in dtype");
	if (op == OP_NOT && dt == DT_BOOL) {
		*e = "!v";
		return 0;
	}
	if (op != OP_NOT && dt == DT_F32)
		return unary_f(c, op == OP_ROUND ? emit_round(c) : NULL, buf, len);
	if (op == OP_SIGN && ec_isint(dt)) {
		*e = "v > 0 ? 1 : v < 0 ? -1 : 0";
		return 0;
	}
	return ec_fail(c, "%s is not supported on %s", ir_opname[op], ir_dtype_name(dt));
}

static int unary(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0);
	DType dt = x->dtype;
	char buf[300];
	const char *e;
	if (ir_numel(x) != ir_numel(y))
		return ec_fail(c, "input and output differ in size");
	if (unary_expr(c, dt, y->dtype, buf, sizeof buf, &e))
		return 1;
	const char *xs = e ? ec_x(c, 0) : NULL;
	ec_begin(c, 0);
	ec_line(&c->c, "for (long i = 0; i < %lld; i++) {", (long long)ir_numel(y));
	if (!e) {
		ec_line(&c->c, "y0[i] = 0;");
	} else if (y->dtype == DT_F32) {
		ec_line(&c->c, "const float v = %s[i];", xs);
		ec_store(c, "y0[i]", e);
	} else {
		ec_line(&c->c, "const %s v = %s[i];", dt == DT_F32 ? "float" : dt == DT_BOOL ? "uint8_t"
		                                      : "int64_t", xs);
		ec_line(&c->c, "y0[i] = (%s)(%s);", ec_ctype(y->dtype), e);
	}
	ec_line(&c->c, "}");
	ec_end(c);
	return 0;
}

/* ---- binary ---- */

/* eval_math.c's imod as a C function above the kernel. */
static const char *emit_mod(Ctx *c)
{
	const char *name = arena_printf(c->g->arena, "n%d_rem", c->id);
	ec_line(&c->c, "/* %s; x mod 0 = x mod -1 = 0 */",
	        c->n->a.mod.fmod ? "truncated (C's %)" : "the remainder takes b's sign");
	ec_line(&c->c, "static int64_t %s(int64_t a, int64_t b)", name);
	ec_line(&c->c, "{");
	ec_line(&c->c, "int64_t r;");
	ec_line(&c->c, "if (b == 0 || b == -1)");
	ec_line(&c->c, "\treturn 0;");
	ec_line(&c->c, "r = a %% b;");
	if (!c->n->a.mod.fmod) {
		ec_line(&c->c, "if (r != 0 && (r < 0) != (b < 0))");
		ec_line(&c->c, "\tr += b;");
	}
	ec_line(&c->c, "return r;");
	ec_line(&c->c, "}");
	ec_line(&c->c, "");
	return name;
}

/* The dtypes op takes, as eval_math.c's binary_types. */
static int binary_types(Ctx *c, DType dt, DType out)
{
	Op op = c->n->op;
	int ok;
	switch (op) {
	case OP_AND: case OP_OR: case OP_XOR: ok = dt == DT_BOOL && out == DT_BOOL; break;
	case OP_GREATEREQ: case OP_LESSEQ:
		ok = (dt == DT_F32 || ec_isint(dt) || dt == DT_BOOL) && out == DT_BOOL;
		break;
	case OP_MOD: ok = out == dt && ((dt == DT_F32 && c->n->a.mod.fmod) || ec_isint(dt)); break;
	case OP_BITSHIFT: ok = out == dt && is_unsigned(dt); break;
	default: ok = 0; break;
	}
	if (!ok)
		return ec_fail(c, "%s does not take %s inputs with a %s output%s", ir_opname[op],
		               ir_dtype_name(dt), ir_dtype_name(out),
		               op == OP_MOD && dt == DT_F32 ? " (float Mod needs fmod = 1)" : "");
	return 0;
}

/* op(a, b) for a and b of the compute type. */
static void binary_expr(Ctx *c, DType dt, const char *mod, char *buf, size_t len)
{
	const char *ty = ec_ctype(dt);
	switch (c->n->op) {
	case OP_AND: snprintf(buf, len, "a && b"); break;
	case OP_OR: snprintf(buf, len, "a || b"); break;
	case OP_XOR: snprintf(buf, len, "!a != !b"); break;
	case OP_GREATEREQ: snprintf(buf, len, "a >= b"); break;
	case OP_LESSEQ: snprintf(buf, len, "a <= b"); break;
	case OP_MOD:
		if (dt == DT_F32)
			snprintf(buf, len, "fmodf(a, b)");
		else
			snprintf(buf, len, "(%s)%s(a, b)", ty, mod);
		break;
	default:
		snprintf(buf, len, "b >= %d ? 0 : (%s)((uint64_t)a %s b)", 8 * (int)ir_dtype_size(dt), ty,
		         c->n->a.shift.left ? "<<" : ">>");
		break;
	}
}

static int binary(Ctx *c)
{
	const Tensor *ta = ec_tin(c, 0), *tb = ec_tin(c, 1), *y = ec_tout(c, 0);
	if (c->n->nin != 2 || !tb)
		return ec_fail(c, "needs exactly 2 inputs");
	DType dt = ta->dtype;
	if (tb->dtype != dt)
		return ec_fail(c, "inputs differ in dtype (%s, %s)", ir_dtype_name(dt), ir_dtype_name(tb->dtype));
	if (binary_types(c, dt, y->dtype))
		return 1;
	Nest n;
	nest_init(&n, y->rank, y->dim, 3);
	nest_bcast(&n, 0, y);
	if (nest_bcast(&n, 1, ta) || nest_bcast(&n, 2, tb))
		return ec_fail(c, "input shapes do not broadcast to the output shape");
	nest_simplify(&n);
	const char *xa = ec_x(c, 0), *xb = ec_x(c, 1);
	const char *mod = c->n->op == OP_MOD && dt != DT_F32 ? emit_mod(c) : NULL;
	const char *ct = dt == DT_F32 ? "float" : dt == DT_BOOL ? "uint8_t" : "int64_t";
	char iy[200], ia[200], ib[200], e[200];
	binary_expr(c, dt, mod, e, sizeof e);
	ec_begin(c, 0);
	nest_open(c, &n);
	nest_index(&n, 0, iy, sizeof iy);
	nest_index(&n, 1, ia, sizeof ia);
	nest_index(&n, 2, ib, sizeof ib);
	ec_line(&c->c, "const %s a = %s[%s], b = %s[%s];", ct, xa, ia, xb, ib);
	if (y->dtype == DT_F32)
		ec_store(c, arena_printf(c->g->arena, "y0[%s]", iy), e);
	else
		ec_line(&c->c, "y0[%s] = %s;", iy, e);
	nest_close(c, &n);
	ec_end(c);
	return 0;
}

/* ---- Hardmax ---- */

static int hardmax(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0);
	if (ec_want_f32(c, 1))
		return 1;
	int r = x->rank, legacy = c->n->a.axis.legacy, ax = c->n->a.axis.axis;
	ax = ax < 0 ? ax + r : ax;
	if (r > 0 && (ax < 0 || ax > r || (ax == r && !legacy)))
		return ec_fail(c, "axis %d out of range for rank %d", c->n->a.axis.axis, r);
	if (ir_numel(x) != ir_numel(y))
		return ec_fail(c, "input and output differ in size");
	int64_t outer = r ? ec_prod(x, 0, ax) : 1;
	int64_t len = legacy ? ec_prod(x, ax, r) : r ? x->dim[ax] : 1;
	int64_t inner = legacy || !r ? 1 : ec_prod(x, ax + 1, r);
	const char *xs = ec_x(c, 0);
	ec_begin(c, 0);
	ec_line(&c->c, "for (long o = 0; o < %lld; o++) {", (long long)outer);
	ec_line(&c->c, "for (long i = 0; i < %lld; i++) {", (long long)inner);
	ec_line(&c->c, "const float *const x = %s + o * %lld + i;", xs, (long long)(len * inner));
	ec_line(&c->c, "float *const y = y0 + o * %lld + i;", (long long)(len * inner));
	ec_line(&c->c, "long best = 0;");
	const char *xj = ec_aff(c, 0, "j", inner, NULL), *xb = ec_aff(c, 0, "best", inner, NULL);
	ec_line(&c->c, "for (long j = 1; j < %lld; j++)", (long long)len);
	ec_line(&c->c, "\tif (x[%s] > x[%s])", xj, xb);
	ec_line(&c->c, "\t\tbest = j;");
	ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)len);
	ec_line(&c->c, "\ty[%s] = j == best ? 1.0f : 0.0f;", xj);
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_end(c);
	return 0;
}

/* ---- reductions ---- */

/* The nest over x: operand 0 the output element x folds into, operand 1
 * x; *ny the output's element count. */
static int reduce_nest(Ctx *c, const Tensor *x, const Tensor *y, Nest *n, int64_t *ny)
{
	char mask[IR_MAXRANK];
	if (ec_reduce_mask(c, x, mask))
		return 1;
	nest_init(n, x->rank, x->dim, 2);
	int64_t s = 1;
	for (int a = x->rank - 1; a >= 0; a--) {
		n->st[0][a] = mask[a] ? 0 : s;
		s *= mask[a] ? 1 : x->dim[a];
	}
	if (s != ir_numel(y))
		return ec_fail(c, "output has %lld elements, the reduction gives %lld",
		               (long long)ir_numel(y), (long long)s);
	nest_bcast(n, 1, x);
	nest_simplify(n);
	*ny = s;
	return 0;
}

/* Open the nest over x and give the output (iy) and input (ix) indices;
 * 0 when x is empty and nothing was opened. */
static int reduce_open(Ctx *c, const Nest *n, const Tensor *x, char *iy, char *ix, size_t len)
{
	if (ir_numel(x) == 0)
		return 0;
	nest_open(c, n);
	nest_index(n, 0, iy, len);
	nest_index(n, 1, ix, len);
	return 1;
}

/* ReduceLogSumExp: maxima in y0, sums of exp(x - max) in the scratch. */
static void logsumexp(Ctx *c, const Nest *n, const Tensor *x, const char *xs, int64_t ny)
{
	char iy[160], ix[160];
	ec_begin(c, 4 * (ny ? ny : 1));
	ec_line(&c->c, "for (long i = 0; i < %lld; i++) {", (long long)ny);
	ec_line(&c->c, "y0[i] = -INFINITY;");
	ec_line(&c->c, "s[i] = 0.0f;");
	ec_line(&c->c, "}");
	if (reduce_open(c, n, x, iy, ix, sizeof iy)) {
		ec_line(&c->c, "const float v = %s[%s], m = y0[%s];", xs, ix, iy);
		ec_line(&c->c, "y0[%s] = v > m || v != v ? v : m;", iy);
		nest_close(c, n);
	}
	if (reduce_open(c, n, x, iy, ix, sizeof iy)) {
		ec_line(&c->c, "s[%s] += expf(%s[%s] - y0[%s]);", iy, xs, ix, iy);
		nest_close(c, n);
	}
	ec_line(&c->c, "for (long i = 0; i < %lld; i++)", (long long)ny);
	ec_line(&c->c, "\ty0[i] = isinf(y0[i]) ? y0[i] : y0[i] + logf(s[i]);");
}

/* The term x element v adds: |v|, v*v or v (integers wrap in uint64_t). */
static const char *reduce_term(Op op, int isf)
{
	if (isf)
		return op == OP_REDUCEL1 ? "fabsf(v)" : op == OP_REDUCELOGSUM ? "v" : "v * v";
	return op == OP_REDUCEL1 ? "(v < 0 ? 0 - (uint64_t)v : (uint64_t)v)" : "(uint64_t)v * (uint64_t)v";
}

static int reduce(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0);
	Op op = c->n->op;
	DType dt = x->dtype;
	int intok = (op == OP_REDUCEL1 || op == OP_REDUCESUMSQ) && ec_isint(dt);
	if (dt != y->dtype || (dt != DT_F32 && !intok))
		return ec_fail(c, "%s does not take %s (output %s)", ir_opname[op], ir_dtype_name(dt),
		               ir_dtype_name(y->dtype));
	Nest n;
	int64_t ny = 0;
	char iy[160], ix[160];
	if (reduce_nest(c, x, y, &n, &ny))
		return 1;
	const char *xs = ec_x(c, 0), *ty = ec_ctype(dt);
	int isf = dt == DT_F32;
	if (op == OP_REDUCELOGSUMEXP) {
		logsumexp(c, &n, x, xs, ny);
		ec_end(c);
		return 0;
	}
	ec_begin(c, 0);
	ec_line(&c->c, "for (long i = 0; i < %lld; i++)", (long long)ny);
	ec_line(&c->c, "\ty0[i] = %s;", isf ? "0.0f" : "0");
	if (reduce_open(c, &n, x, iy, ix, sizeof iy)) {
		ec_line(&c->c, "const %s v = %s[%s];", isf ? "float" : "int64_t", xs, ix);
		if (isf)
			ec_line(&c->c, "y0[%s] += %s;", iy, reduce_term(op, 1));
		else
			ec_line(&c->c, "y0[%s] = (%s)((uint64_t)y0[%s] + %s);", iy, ty, iy, reduce_term(op, 0));
		nest_close(c, &n);
	}
	if (op == OP_REDUCEL2 || op == OP_REDUCELOGSUM) {
		ec_line(&c->c, "for (long i = 0; i < %lld; i++)", (long long)ny);
		ec_line(&c->c, "\ty0[i] = %s(y0[i]);", op == OP_REDUCEL2 ? "sqrtf" : "logf");
	}
	ec_end(c);
	return 0;
}

/* ---- ArgMax, ArgMin ---- */

/* Does v replace the best b?  eval_math.c's arg_better_f / _i. */
static void arg_cond(Op op, int isf, int last, char *buf, size_t len)
{
	const char *cmp = op == OP_ARGMAX ? (last ? ">=" : ">") : (last ? "<=" : "<");
	if (!isf)
		snprintf(buf, len, "v %s b", cmp);
	else if (last)
		snprintf(buf, len, "b != b ? v != v : v != v || v %s b", cmp);
	else
		snprintf(buf, len, "b == b && (v != v || v %s b)", cmp);
}

static int argext(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0);
	int r = x->rank, ax = ec_axis(c->n->a.arg.axis, r);
	DType dt = x->dtype;
	if (y->dtype != DT_I64 || (dt != DT_F32 && !ec_isint(dt) && dt != DT_BOOL))
		return ec_fail(c, "takes f32 or integers to i64, not %s -> %s", ir_dtype_name(dt),
		               ir_dtype_name(y->dtype));
	if (ax < 0 || x->dim[ax] == 0)
		return ec_fail(c, "axis %d out of range or empty for rank %d", c->n->a.arg.axis, r);
	int64_t outer = ec_prod(x, 0, ax), len = x->dim[ax], inner = ec_prod(x, ax + 1, r);
	const char *ct = dt == DT_F32 ? "float" : "int64_t", *xs = ec_x(c, 0);
	char cond[96];
	arg_cond(c->n->op, dt == DT_F32, c->n->a.arg.last, cond, sizeof cond);
	ec_begin(c, 0);
	ec_line(&c->c, "for (long o = 0; o < %lld; o++) {", (long long)outer);
	ec_line(&c->c, "for (long i = 0; i < %lld; i++) {", (long long)inner);
	ec_line(&c->c, "const %s *const x = %s + o * %lld + i;", ec_ctype(dt), xs, (long long)(len * inner));
	ec_line(&c->c, "long best = 0;");
	ec_line(&c->c, "for (long j = 1; j < %lld; j++) {", (long long)len);
	ec_line(&c->c, "const %s v = x[%s], b = x[%s];", ct, ec_aff(c, 0, "j", inner, NULL),
	        ec_aff(c, 0, "best", inner, NULL));
	ec_line(&c->c, "if (%s)", cond);
	ec_line(&c->c, "\tbest = j;");
	ec_line(&c->c, "}");
	ec_line(&c->c, "y0[%s] = best;", ec_aff(c, 0, "o", inner, "i", (int64_t)1, NULL));
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_end(c);
	return 0;
}

/* ---- CumSum ---- */

static int cumsum(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *t = ec_tin(c, 1), *y = ec_tout(c, 0);
	DType dt = x->dtype;
	if (dt != y->dtype || ir_numel(x) != ir_numel(y) || (dt != DT_F32 && !ec_isint(dt)))
		return ec_fail(c, "takes f32 or integers, not %s -> %s", ir_dtype_name(dt),
		               ir_dtype_name(y->dtype));
	if (!t || t->kind != TK_CONST || !ec_isint(t->dtype) || ir_numel(t) != 1)
		return ec_fail(c, "axis must be one constant integer");
	int64_t v = ir_get_i64(t, 0);
	int ax = v < -x->rank || v >= x->rank ? -1 : ec_axis((int)v, x->rank);
	if (ax < 0)
		return ec_fail(c, "axis %lld out of range for rank %d", (long long)v, x->rank);
	int64_t outer = ec_prod(x, 0, ax), len = x->dim[ax], inner = ec_prod(x, ax + 1, x->rank);
	int f = dt == DT_F32, rev = c->n->a.cumsum.reverse;
	const char *ty = ec_ctype(dt), *xs = ec_x(c, 0);
	const char *add = f ? "a += x[p];" : "a += (uint64_t)(int64_t)x[p];";
	ec_begin(c, 0);
	ec_line(&c->c, "for (long o = 0; o < %lld; o++) {", (long long)outer);
	ec_line(&c->c, "for (long i = 0; i < %lld; i++) {", (long long)inner);
	ec_line(&c->c, "const %s *const x = %s + o * %lld + i;", ty, xs, (long long)(len * inner));
	ec_line(&c->c, "%s *const y = y0 + o * %lld + i;", ty, (long long)(len * inner));
	ec_line(&c->c, "%s a = 0;", f ? "float" : "uint64_t");
	ec_line(&c->c, "for (long k = 0; k < %lld; k++) {", (long long)len);
	ec_line(&c->c, "const long p = %s;", ec_aff(c, rev ? (len - 1) * inner : 0, "k", rev ? -inner : inner, NULL));
	if (!c->n->a.cumsum.exclusive)
		ec_line(&c->c, "%s", add);
	ec_line(&c->c, "y[p] = (%s)a;", ty);
	if (c->n->a.cumsum.exclusive)
		ec_line(&c->c, "%s", add);
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_end(c);
	return 0;
}

/* ---- dispatch ---- */

int ec_math(Ctx *c)
{
	Op op = c->n->op;
	if (c->n->act.kind != ACT_NONE && !(ir_opflags[op] & (F_UNARY | F_ELTWISE)))
		return ec_fail(c, "internal: fused activation on %s", ir_opname[op]);
	if (ir_opflags[op] & F_UNARY)
		return unary(c);
	if (ir_opflags[op] & F_ELTWISE)
		return binary(c);
	switch (op) {
	case OP_HARDMAX: return hardmax(c);
	case OP_ARGMAX: case OP_ARGMIN: return argext(c);
	case OP_CUMSUM: return cumsum(c);
	default: return reduce(c);
	}
}
