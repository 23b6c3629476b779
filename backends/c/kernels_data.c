/* Kernel emitters for the element-wise ops (broadcasting binary, n-ary,
 * Where, unary, Cast) and data movement (views, Transpose, Concat, Pad,
 * Slice, Gather, Expand, Tile).
 *
 * Most are one loop nest (Nest) over the output with each input's strides
 * (0 where it broadcasts), simplified so contiguous runs become one inner
 * loop.  Float results follow ir/eval.c's formulas; integer arithmetic
 * wraps through uint64_t as eval does, and an integer division by zero
 * (an error in eval) gives 0 rather than undefined behaviour. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "emit_impl.h"

static int is_unsigned(DType t)
{
	return t == DT_U8 || t == DT_U16 || t == DT_U32 || t == DT_BOOL;
}

/* Element i of a constant as a C literal of its dtype. */
static void elem_lit(const Tensor *t, int64_t i, char *buf)
{
	if (t->dtype == DT_F32) {
		emit_c_fmt_f32(buf, ((const float *)t->data)[i]);
		return;
	}
	int64_t v = ir_get_i64(t, i);
	if (v == INT64_MIN)
		strcpy(buf, "INT64_MIN");
	else
		sprintf(buf, "%lld", (long long)v);
}

/* Operand names for a nest: a scalar constant becomes a literal, anything
 * else an array indexed by the nest (ref[k] is "x1[i0 * 4]" or "0.5f"). */
static void operand(Ctx *c, const Nest *n, int k, int j, char *ref, size_t len)
{
	const Tensor *t = ec_tin(c, j);
	if (t->kind == TK_CONST && ir_numel(t) == 1) {
		elem_lit(t, 0, ref);
		return;
	}
	char ix[200];
	nest_index(n, k, ix, sizeof ix);
	snprintf(ref, len, "%s[%s]", ec_x(c, j), ix);
}

/* Copy x0 into y0 along a nest (Transpose, Slice, Expand, Tile, Concat). */
static void nest_copy(Ctx *c, Nest *n, const char *x, const char *y)
{
	char iy[200], ix[200];
	nest_simplify(n);
	nest_open(c, n);
	nest_index(n, 0, iy, sizeof iy);
	nest_index(n, 1, ix, sizeof ix);
	ec_line(&c->c, "%s[%s] = %s[%s];", y, iy, x, ix);
	nest_close(c, n);
}

/* ---- binary, n-ary, Where ---- */

static int is_compare(Op op)
{
	return op == OP_EQUAL || op == OP_LESS || op == OP_GREATER;
}

/* v = op(v, b) for floats, in eval.c's binary_f form. */
static void fold_f(Op op, const char *b, char *buf, size_t len)
{
	switch (op) {
	case OP_SUB: snprintf(buf, len, "v - %s", b); break;
	case OP_MUL: snprintf(buf, len, "v * %s", b); break;
	case OP_DIV: snprintf(buf, len, "v / %s", b); break;
	case OP_POW: snprintf(buf, len, "powf(v, %s)", b); break;
	case OP_MAX: snprintf(buf, len, "v != v || v > %s ? v : %s", b, b); break;
	case OP_MIN: snprintf(buf, len, "v != v || v < %s ? v : %s", b, b); break;
	case OP_PRELU: snprintf(buf, len, "v < 0.0f ? %s * v : v", b); break;
	case OP_EQUAL: snprintf(buf, len, "v == %s", b); break;
	case OP_LESS: snprintf(buf, len, "v < %s", b); break;
	case OP_GREATER: snprintf(buf, len, "v > %s", b); break;
	default: snprintf(buf, len, "v + %s", b); break;
	}
}

/* v = op(v, b) for integers of C type ty: arithmetic wraps through
 * uint64_t; Div truncates, with -1 as a negation and 0 giving 0. */
static void fold_i(Op op, DType dt, const char *b, char *buf, size_t len)
{
	const char *ty = ec_ctype(dt);
	int u = is_unsigned(dt);
	switch (op) {
	case OP_SUB: snprintf(buf, len, "(%s)((uint64_t)v - (uint64_t)%s)", ty, b); break;
	case OP_MUL: snprintf(buf, len, "(%s)((uint64_t)v * (uint64_t)%s)", ty, b); break;
	case OP_DIV:
		if (strcmp(b, "0") == 0)   /* a literal divisor: no dead division by 0 */
			snprintf(buf, len, "0");
		else if (!u && strcmp(b, "-1") == 0)
			snprintf(buf, len, "(%s)(0 - (uint64_t)v)", ty);
		else if (b[0] == '-' || (b[0] >= '0' && b[0] <= '9'))
			snprintf(buf, len, "(%s)(v / %s)", ty, b);
		else if (u)
			snprintf(buf, len, "%s == 0 ? 0 : (%s)(v / %s)", b, ty, b);
		else
			snprintf(buf, len, "%s == 0 ? 0 : %s == -1 ? (%s)(0 - (uint64_t)v) : (%s)(v / %s)",
			         b, b, ty, ty, b);
		break;
	case OP_MAX: snprintf(buf, len, "v > %s ? v : %s", b, b); break;
	case OP_MIN: snprintf(buf, len, "v < %s ? v : %s", b, b); break;
	case OP_PRELU:
		if (u)
			snprintf(buf, len, "v");
		else
			snprintf(buf, len, "v < 0 ? (%s)((uint64_t)v * (uint64_t)%s) : v", ty, b);
		break;
	case OP_EQUAL: snprintf(buf, len, "v == %s", b); break;
	case OP_LESS: snprintf(buf, len, "v < %s", b); break;
	case OP_GREATER: snprintf(buf, len, "v > %s", b); break;
	default: snprintf(buf, len, "(%s)((uint64_t)v + (uint64_t)%s)", ty, b); break;
	}
}

/* Float to integer: truncate toward zero, saturate, NaN -> 0 (ev_setf);
 * the bounds are exact floats (2^31 rather than 2^31 - 1). */
static void cast_from_float(DType to, char *buf, size_t len)
{
	static const struct { DType t; const char *lo, *hi; } b[] = {
		{DT_I8, "-128.0f", "127.0f"}, {DT_U8, "0.0f", "255.0f"},
		{DT_I16, "-32768.0f", "32767.0f"}, {DT_U16, "0.0f", "65535.0f"},
		{DT_I32, "-2147483648.0f", "2147483648.0f"}, {DT_U32, "0.0f", "4294967296.0f"},
		{DT_I64, "-9223372036854775808.0f", "9223372036854775808.0f"},
	};
	for (size_t i = 0; i < sizeof b / sizeof b[0]; i++)
		if (b[i].t == to)
			snprintf(buf, len, "v != v ? 0 : v <= %s ? %s : v >= %s ? %s : (%s)v", b[i].lo,
			         ec_lowest(to), b[i].hi, ec_highest(to), ec_ctype(to));
}

/* How a binary or n-ary op computes (eval.c's int_path): in the inputs'
 * own dtype when they agree; else, for two inputs, in int64_t when both
 * are integers (and so is the result, unless comparing), or in float. */
typedef enum { EM_SAME, EM_I64, EM_F32 } EltMode;

static int elt_check(Ctx *c, DType *dt, EltMode *mode)
{
	Op op = c->n->op;
	const Tensor *y = ec_tout(c, 0);
	int first = op == OP_WHERE ? 1 : 0;
	int need = op == OP_WHERE ? 3 : (op == OP_MAX || op == OP_MIN || op == OP_SUM || op == OP_MEAN) ? 1 : 2;
	if (c->n->nin < need || (op != OP_WHERE && need == 2 && c->n->nin != 2))
		return ec_fail(c, "needs %d inputs, has %d", need, c->n->nin);
	if (c->n->nin + 1 > EC_MAXOP)
		return ec_fail(c, "more than %d inputs", EC_MAXOP - 1);
	for (int j = 0; j < c->n->nin; j++)
		if (!ec_tin(c, j) || !ec_ctype(ec_tin(c, j)->dtype))
			return ec_fail(c, "input %d is absent or of an unsupported dtype", j);
	if (!ec_ctype(y->dtype))
		return ec_fail(c, "output dtype %s is not supported", ir_dtype_name(y->dtype));
	*dt = ec_tin(c, first)->dtype;
	*mode = EM_SAME;
	for (int j = first; j < c->n->nin; j++)
		if (ec_tin(c, j)->dtype != *dt)
			*mode = EM_F32;
	if (op == OP_WHERE) {
		if (*mode != EM_SAME || y->dtype != *dt)
			return ec_fail(c, "needs a bool condition and two inputs of the output's dtype");
		return 0;
	}
	if (*mode != EM_SAME) {
		DType a = ec_tin(c, 0)->dtype, b = ec_tin(c, 1)->dtype;
		if (c->n->nin != 2)
			return ec_fail(c, "inputs differ in dtype");
		if (ec_isint(a) && ec_isint(b) && (is_compare(op) || ec_isint(y->dtype)))
			*mode = EM_I64;
		*dt = *mode == EM_I64 ? DT_I64 : DT_F32;
		return 0;
	}
	if (is_compare(op) ? y->dtype != DT_BOOL : y->dtype != *dt)
		return ec_fail(c, "output dtype %s does not fit inputs of %s", ir_dtype_name(y->dtype),
		               ir_dtype_name(*dt));
	if (*dt == DT_F32 || ec_isint(*dt) || (*dt == DT_BOOL && op == OP_EQUAL))
		return 0;
	return ec_fail(c, "%s on %s is not supported by the C backend", ir_opname[op], ir_dtype_name(*dt));
}

/* Integer a^b as eval.c's ipow: by squaring, wrapping; a negative b gives
 * the truncated 1/a^|b|. */
static const char *emit_ipow(Ctx *c)
{
	const char *name = arena_printf(c->g->arena, "n%d_ipow", c->id);
	ec_line(&c->c, "static int64_t %s(int64_t a, int64_t b)", name);
	ec_line(&c->c, "{");
	ec_line(&c->c, "uint64_t r = 1, x = (uint64_t)a;");
	ec_line(&c->c, "if (b < 0)");
	ec_line(&c->c, "\treturn a == 1 ? 1 : a == -1 ? (b % 2 ? -1 : 1) : 0;");
	ec_line(&c->c, "for (; b; b /= 2, x *= x)");
	ec_line(&c->c, "\tif (b % 2)");
	ec_line(&c->c, "\t\tr *= x;");
	ec_line(&c->c, "return (int64_t)r;");
	ec_line(&c->c, "}");
	ec_line(&c->c, "");
	return name;
}

/* Operand j read in the compute dtype. */
static void elt_operand(Ctx *c, const Nest *n, int j, EltMode mode, char *buf, size_t len)
{
	char r[240];
	operand(c, n, j + 1, j, r, sizeof r);
	if (mode == EM_SAME)
		snprintf(buf, len, "%s", r);
	else
		snprintf(buf, len, "(%s)%s", mode == EM_I64 ? "int64_t" : "float", r);
}

/* The computed v stored as the output dtype (eval's ev_setf / ev_seti). */
static void elt_result(DType cdt, DType to, char *buf, size_t len)
{
	if (cdt == to)
		snprintf(buf, len, "v");
	else if (to == DT_BOOL)
		snprintf(buf, len, "v != 0");
	else if (to == DT_F32)
		snprintf(buf, len, "(float)v");
	else if (cdt == DT_F32)
		cast_from_float(to, buf, len);
	else
		snprintf(buf, len, "(%s)(uint64_t)v", ec_ctype(to));
}

int ec_eltwise(Ctx *c)
{
	const Tensor *y = ec_tout(c, 0);
	Op op = c->n->op;
	DType dt = DT_UNDEF;
	EltMode mode = EM_SAME;
	if (elt_check(c, &dt, &mode))
		return 1;
	int nin = c->n->nin;
	Nest n;
	nest_init(&n, y->rank, y->dim, nin + 1);
	nest_bcast(&n, 0, y);
	for (int j = 0; j < nin; j++)
		if (nest_bcast(&n, j + 1, ec_tin(c, j)))
			return ec_fail(c, "input %d does not broadcast to the output shape", j);
	nest_simplify(&n);
	for (int j = 0; j < nin; j++)   /* arrays first: they print above the function */
		if (!(ec_tin(c, j)->kind == TK_CONST && ir_numel(ec_tin(c, j)) == 1))
			ec_x(c, j);
	const char *ipow = op == OP_POW && dt != DT_F32 ? emit_ipow(c) : NULL;
	const char *ty = ec_ctype(dt);
	char ref[3][260], iy[200], f[1200], dst[220];
	ec_begin(c, 0);
	nest_open(c, &n);
	nest_index(&n, 0, iy, sizeof iy);
	snprintf(dst, sizeof dst, "y0[%s]", iy);
	if (op == OP_WHERE) {
		for (int j = 0; j < 3; j++)
			operand(c, &n, j + 1, j, ref[j], sizeof ref[j]);
		ec_line(&c->c, "%s = %s ? %s : %s;", dst, ref[0], ref[1], ref[2]);
		nest_close(c, &n);
		ec_end(c);
		return 0;
	}
	elt_operand(c, &n, 0, mode, ref[0], sizeof ref[0]);
	ec_line(&c->c, "%s v = %s;", ty, ref[0]);
	for (int j = 1; j < nin; j++) {
		elt_operand(c, &n, j, mode, ref[1], sizeof ref[1]);
		if (is_compare(op)) {
			fold_f(op, ref[1], f, sizeof f);   /* the same text for every dtype */
			ec_line(&c->c, "%s = %s;", dst, f);
			nest_close(c, &n);
			ec_end(c);
			return 0;
		}
		if (ipow)
			snprintf(f, sizeof f, "(%s)(uint64_t)%s(v, %s)", ty, ipow, ref[1]);
		else if (dt == DT_F32)
			fold_f(op, ref[1], f, sizeof f);
		else
			fold_i(op, dt, ref[1], f, sizeof f);
		ec_line(&c->c, "v = %s;", f);
	}
	if (op == OP_MEAN && nin > 1) {
		char den[32];
		emit_c_fmt_f32(den, (float)nin);
		if (dt == DT_F32)
			ec_line(&c->c, "v = v / %s;", den);
		else
			ec_line(&c->c, "v = (%s)((float)v / %s);", ty, den);
	}
	elt_result(dt, y->dtype, f, sizeof f);
	ec_store(c, dst, f);
	nest_close(c, &n);
	ec_end(c);
	return 0;
}

/* ---- unary ---- */

/* Clip's bound j (1 = min, 2 = max) into buf: a literal for a constant,
 * "lo"/"hi" read at run time, or NULL when absent (unbounded). */
static const char *clip_bound(Ctx *c, int j, DType dt, char *buf)
{
	const Tensor *t = ec_tin(c, j);
	if (!t || ir_numel(t) == 0)
		return NULL;
	if (t->kind == TK_CONST) {
		if (dt == DT_F32)
			emit_c_fmt_f32(buf, (float)ir_get(t, 0));
		else
			elem_lit(t, 0, buf);
		return buf;
	}
	snprintf(buf, 32, "%s", j == 1 ? "lo" : "hi");
	return buf;
}

/* The float expression of eval.c's unary_f applied to v. */
static int unary_f(Ctx *c, const char *lo, const char *hi, char *buf, size_t len)
{
	const Node *n = c->n;
	char A[32], B[32];
	emit_c_fmt_f32(A, n->a.ab.alpha);
	emit_c_fmt_f32(B, n->a.ab.beta);
	switch (n->op) {
	case OP_RELU: snprintf(buf, len, "v < 0.0f ? 0.0f : v"); break;
	case OP_LEAKYRELU: snprintf(buf, len, "v < 0.0f ? %s * v : v", A); break;
	case OP_CLIP:
		if (lo && hi)
			snprintf(buf, len, "(v < %s ? %s : v) > %s ? %s : (v < %s ? %s : v)", lo, lo, hi, hi, lo, lo);
		else if (lo || hi)
			snprintf(buf, len, "v %s %s ? %s : v", lo ? "<" : ">", lo ? lo : hi, lo ? lo : hi);
		else
			snprintf(buf, len, "v");
		break;
	case OP_SIGMOID: snprintf(buf, len, "1.0f / (1.0f + expf(-v))"); break;
	case OP_HARDSIGMOID:
		snprintf(buf, len, "(%s * v + %s) < 0.0f ? 0.0f : (%s * v + %s) > 1.0f ? 1.0f : (%s * v + %s)",
		         A, B, A, B, A, B);
		break;
	case OP_HARDSWISH:
		snprintf(buf, len, "v * ((v / 6.0f + 0.5f) < 0.0f ? 0.0f : (v / 6.0f + 0.5f) > 1.0f ? 1.0f : (v / 6.0f + 0.5f))");
		break;
	case OP_TANH: snprintf(buf, len, "tanhf(v)"); break;
	case OP_EXP: snprintf(buf, len, "expf(v)"); break;
	case OP_LOG: snprintf(buf, len, "logf(v)"); break;
	case OP_SQRT: snprintf(buf, len, "sqrtf(v)"); break;
	case OP_NEG: snprintf(buf, len, "-v"); break;
	case OP_ABS: snprintf(buf, len, "fabsf(v)"); break;
	case OP_RECIPROCAL: snprintf(buf, len, "1.0f / v"); break;
	case OP_FLOOR: snprintf(buf, len, "floorf(v)"); break;
	case OP_CEIL: snprintf(buf, len, "ceilf(v)"); break;
	case OP_ELU: snprintf(buf, len, "v < 0.0f ? %s * expm1f(v) : v", A); break;
	case OP_SELU: snprintf(buf, len, "%s * (v <= 0.0f ? %s * expm1f(v) : v)", B, A); break;
	case OP_SOFTPLUS: snprintf(buf, len, "v > 0.0f ? v + log1pf(expf(-v)) : log1pf(expf(v))"); break;
	case OP_SOFTSIGN: snprintf(buf, len, "v / (1.0f + fabsf(v))"); break;
	case OP_ERF: snprintf(buf, len, "erff(v)"); break;
	default: return ec_fail(c, "internal: unary %s", ir_opname[n->op]);
	}
	return 0;
}

/* Integer Relu, Clip, Neg, Abs (eval.c's unary_i), in int64_t. */
static int unary_i(Ctx *c, DType dt, const char *lo, const char *hi, char *buf, size_t len)
{
	int u = is_unsigned(dt);
	switch (c->n->op) {
	case OP_RELU: snprintf(buf, len, u ? "v" : "v < 0 ? 0 : v"); break;
	case OP_NEG: snprintf(buf, len, "(int64_t)(0 - (uint64_t)v)"); break;
	case OP_ABS: snprintf(buf, len, u ? "v" : "v < 0 ? (int64_t)(0 - (uint64_t)v) : v"); break;
	case OP_CLIP:
		if (lo && hi)
			snprintf(buf, len, "(v < %s ? %s : v) > %s ? %s : (v < %s ? %s : v)", lo, lo, hi, hi, lo, lo);
		else if (lo || hi)
			snprintf(buf, len, "v %s %s ? %s : v", lo ? "<" : ">", lo ? lo : hi, lo ? lo : hi);
		else
			snprintf(buf, len, "v");
		break;
	default:
		return ec_fail(c, "%s is not supported on %s", ir_opname[c->n->op], ir_dtype_name(dt));
	}
	return 0;
}

int ec_unary(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0);
	DType dt = x->dtype;
	if (dt != y->dtype || ir_numel(x) != ir_numel(y))
		return ec_fail(c, "input and output differ in dtype or size");
	if (dt != DT_F32 && !ec_isint(dt))
		return ec_fail(c, "%s on %s is not supported", ir_opname[c->n->op], ir_dtype_name(dt));
	char lob[32], hib[32], e[600];
	const char *lo = NULL, *hi = NULL, *los = NULL, *his = NULL;
	if (c->n->op == OP_CLIP) {
		lo = clip_bound(c, 1, dt, lob);
		hi = clip_bound(c, 2, dt, hib);
		los = lo && ec_tin(c, 1)->kind != TK_CONST ? ec_x(c, 1) : NULL;
		his = hi && ec_tin(c, 2)->kind != TK_CONST ? ec_x(c, 2) : NULL;
	}
	if (dt == DT_F32 ? unary_f(c, lo, hi, e, sizeof e) : unary_i(c, dt, lo, hi, e, sizeof e))
		return 1;
	const char *xs = ec_x(c, 0), *ty = ec_ctype(dt);
	ec_begin(c, 0);
	if (los)
		ec_line(&c->c, "const %s lo = %s[0];", dt == DT_F32 ? "float" : "int64_t", los);
	if (his)
		ec_line(&c->c, "const %s hi = %s[0];", dt == DT_F32 ? "float" : "int64_t", his);
	ec_line(&c->c, "for (long i = 0; i < %lld; i++) {", (long long)ir_numel(y));
	ec_line(&c->c, "const %s v = %s[i];", dt == DT_F32 ? "float" : "int64_t", xs);
	if (dt == DT_F32)
		ec_store(c, "y0[i]", e);
	else
		ec_line(&c->c, "y0[i] = (%s)(%s);", ty, e);
	ec_line(&c->c, "}");
	ec_end(c);
	return 0;
}

/* ---- Cast ---- */

int ec_cast(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0);
	DType from = x->dtype, to = y->dtype;
	if (ir_numel(x) != ir_numel(y))
		return ec_fail(c, "input and output differ in size");
	if (!ec_ctype(from) || !ec_ctype(to))
		return ec_fail(c, "cannot cast %s to %s", ir_dtype_name(from), ir_dtype_name(to));
	char e[300];
	if (to == DT_BOOL)
		snprintf(e, sizeof e, "v != 0");
	else if (to == DT_F32)
		snprintf(e, sizeof e, "(float)v");
	else if (from == DT_F32)
		cast_from_float(to, e, sizeof e);
	else   /* integer to integer: wraps (unsigned conversion is modular) */
		snprintf(e, sizeof e, "(%s)(uint64_t)(int64_t)v", ec_ctype(to));
	const char *xs = ec_x(c, 0);
	ec_begin(c, 0);
	ec_line(&c->c, "for (long i = 0; i < %lld; i++) {", (long long)ir_numel(y));
	ec_line(&c->c, "const %s v = %s[i];", ec_ctype(from), xs);
	ec_line(&c->c, "y0[i] = %s;", e);
	ec_line(&c->c, "}");
	ec_end(c);
	return 0;
}

/* ---- views ---- */

static int same_loc(const Graph *g, int a, int b)
{
	Loc la = ec_loc(g, a), lb = ec_loc(g, b);
	return la.kind == lb.kind && la.idx == lb.idx && la.off == lb.off;
}

/* Identity, Dropout and the reshapes: nothing when the output is a view of
 * the input's bytes (pass_memplan aliases it), else one memcpy (a view
 * that is a graph output).  Dropout's mask is all true. */
int ec_view(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0), *mask = ec_tout(c, 1);
	if (!x || x->dtype != y->dtype || ir_numel(x) != ir_numel(y))
		return ec_fail(c, "input and output differ in dtype or size");
	if (!ec_ctype(y->dtype))
		return ec_fail(c, "dtype %s is not supported", ir_dtype_name(y->dtype));
	int copy = !same_loc(c->g, c->n->in[0], c->n->out[0]);
	if (!copy && !(mask && ir_numel(mask)))
		return 0;
	const char *xs = copy ? ec_x(c, 0) : NULL;
	ec_begin(c, 0);
	if (copy)
		ec_line(&c->c, "memcpy(y0, %s, %zu);", xs, ir_nbytes(y));
	if (mask && ir_numel(mask)) {
		ec_line(&c->c, "for (long i = 0; i < %lld; i++)", (long long)ir_numel(mask));
		ec_line(&c->c, "\ty1[i] = 1;");
	} else if (c->n->nout > 1 && c->n->out[1] >= 0)
		ec_line(&c->c, "(void)y1;");
	if (!copy)
		ec_line(&c->c, "(void)y0;");
	ec_end(c);
	return 0;
}

/* ---- Transpose, Concat ---- */

static int same_dtype(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0);
	if (!x || x->dtype != y->dtype || !ec_ctype(y->dtype))
		return ec_fail(c, "input and output differ in dtype, or the dtype is unsupported");
	return 0;
}

int ec_transpose(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0);
	int r = x->rank, np = c->n->a.perm.n, seen = 0;
	if (same_dtype(c))
		return 1;
	if ((np && np != r) || y->rank != r)
		return ec_fail(c, "perm has %d entries for rank %d", np, r);
	int64_t st[IR_MAXRANK];
	ec_strides(x, st);
	Nest n;
	nest_init(&n, y->rank, y->dim, 2);
	nest_bcast(&n, 0, y);
	for (int i = 0; i < r; i++) {
		int p = np ? c->n->a.perm.p[i] : r - 1 - i;
		if (p < 0 || p >= r || (seen >> p & 1) || x->dim[p] != y->dim[i])
			return ec_fail(c, "perm is not a permutation matching the output shape");
		seen |= 1 << p;
		n.st[1][i] = st[p];
	}
	const char *xs = ec_x(c, 0);
	ec_begin(c, 0);
	nest_copy(c, &n, xs, "y0");
	ec_end(c);
	return 0;
}

int ec_concat(Ctx *c)
{
	const Tensor *y = ec_tout(c, 0);
	int axis = ec_axis(c->n->a.axis.axis, y->rank);
	if (axis < 0)
		return ec_fail(c, "axis %d out of range for rank %d", c->n->a.axis.axis, y->rank);
	int64_t total = 0, yst[IR_MAXRANK];
	const char *xs[EC_MAXARG];
	if (c->n->nin > EC_MAXARG)
		return ec_fail(c, "more than %d inputs", EC_MAXARG);
	for (int j = 0; j < c->n->nin; j++) {
		const Tensor *t = ec_tin(c, j);
		if (!t || t->dtype != y->dtype || t->rank != y->rank || !ec_ctype(t->dtype))
			return ec_fail(c, "input %d is absent or differs in dtype or rank", j);
		for (int a = 0; a < y->rank; a++)
			if (a != axis && t->dim[a] != y->dim[a])
				return ec_fail(c, "input %d differs in dim %d", j, a);
		total += t->dim[axis];
		xs[j] = ir_numel(t) ? ec_x(c, j) : NULL;
	}
	if (total != y->dim[axis])
		return ec_fail(c, "inputs add up to %lld along axis %d, output has %lld",
		               (long long)total, axis, (long long)y->dim[axis]);
	ec_strides(y, yst);
	ec_begin(c, 0);
	int64_t at = 0;
	for (int j = 0; j < c->n->nin; j++) {
		const Tensor *t = ec_tin(c, j);
		Nest n;
		nest_init(&n, t->rank, t->dim, 2);
		for (int a = 0; a < t->rank; a++)
			n.st[0][a] = yst[a];
		n.base[0] = at * yst[axis];
		nest_bcast(&n, 1, t);
		if (xs[j]) {
			ec_line(&c->c, "{");
			nest_copy(c, &n, xs[j], "y0");
			ec_line(&c->c, "}");
		}
		at += t->dim[axis];
	}
	ec_end(c);
	return 0;
}

/* ---- Pad ---- */

/* Source coordinate of c in a dim of n, -1 for the constant (eval_data.c). */
static int64_t pad_src(PadMode mode, int64_t c, int64_t n)
{
	if (c >= 0 && c < n)
		return c;
	if (mode == PADMODE_CONSTANT)
		return -1;
	if (mode == PADMODE_EDGE || n == 1)
		return c < 0 ? 0 : n - 1;
	int64_t p = 2 * (n - 1);
	c %= p;
	c = c < 0 ? c + p : c;
	return c < n ? c : p - c;
}

/* The fill value as a literal of dt: a constant input, or 0. */
static int pad_value(Ctx *c, DType dt, char *buf, int *runtime)
{
	const Tensor *v = ec_tin(c, 2);
	*runtime = 0;
	strcpy(buf, dt == DT_F32 ? "0.0f" : "0");
	if (!v || !ir_numel(v))
		return 0;
	if (v->kind != TK_CONST) {
		if (v->dtype != dt)
			return ec_fail(c, "a run-time pad value must have the input's dtype");
		*runtime = 1;
		snprintf(buf, 32, "%s[0]", ec_x(c, 2));
		return 0;
	}
	if (dt == DT_F32)
		emit_c_fmt_f32(buf, (float)ir_get(v, 0));
	else
		elem_lit(v, 0, buf);
	return 0;
}

/* Every output element from a per-dim table of source coordinates (-1 =
 * the pad value): reflect and edge modes, and cropping, in one form. */
int ec_pad(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0), *tp = ec_tin(c, 1);
	int r = x->rank;
	PadMode mode = c->n->a.pad.mode;
	if (same_dtype(c))
		return 1;
	if (!tp || tp->kind != TK_CONST || !ec_isint(tp->dtype) || ir_numel(tp) != 2 * r || y->rank != r)
		return ec_fail(c, "pads must be a constant integer tensor of 2*rank = %d entries", 2 * r);
	int64_t st[IR_MAXRANK];
	ec_strides(x, st);
	for (int a = 0; a < r; a++) {
		if (x->dim[a] + ir_get_i64(tp, a) + ir_get_i64(tp, r + a) != y->dim[a])
			return ec_fail(c, "pads do not give the output shape in dim %d", a);
		if (x->dim[a] == 0 && y->dim[a] && mode != PADMODE_CONSTANT)
			return ec_fail(c, "cannot reflect or edge-pad an empty dim");
	}
	char val[48];
	int rt;
	if (pad_value(c, x->dtype, val, &rt))
		return 1;
	const char *xs = ir_numel(x) ? ec_x(c, 0) : NULL;
	/* Tables, one per dim, of source offsets (coordinate * stride). */
	char name[IR_MAXRANK][32];
	for (int a = 0; a < r; a++) {
		int64_t pb = ir_get_i64(tp, a), n = y->dim[a];
		int64_t *tab = malloc(sizeof *tab * (size_t)(n ? n : 1));
		for (int64_t i = 0; i < n; i++) {
			int64_t s = pad_src(mode, i - pb, x->dim[a]);
			tab[i] = s < 0 ? -1 : s * st[a];
		}
		snprintf(name[a], sizeof name[a], "n%d_t%d", c->id, a);
		ec_array(c, name[a], DT_I64, n, tab);
		free(tab);
	}
	ec_begin(c, 0);
	ec_line(&c->c, "long o = 0;");
	for (int a = 0; a < r; a++) {
		ec_line(&c->c, "for (long i%d = 0; i%d < %lld; i%d++) {", a, a, (long long)y->dim[a], a);
		ec_line(&c->c, "const int64_t s%d = %s[i%d];", a, name[a], a);
		ec_line(&c->c, "if (s%d < 0) {", a);
		ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)ec_prod(y, a + 1, r));
		ec_line(&c->c, "\ty0[o++] = %s;", val);
		ec_line(&c->c, "continue;");
		ec_line(&c->c, "}");
	}
	Str sum = {0};
	for (int a = 0; a < r; a++)
		str_printf(&sum, "%ss%d", a ? " + " : "", a);
	if (xs)
		ec_line(&c->c, "y0[o++] = %s[%s];", xs, r ? sum.s : "0");
	else
		ec_line(&c->c, "y0[o++] = %s;", val);
	str_free(&sum);
	for (int a = 0; a < r; a++)
		ec_line(&c->c, "}");
	ec_end(c);
	return 0;
}

/* ---- Slice, Gather, Expand, Tile ---- */

static int64_t slice_start(int64_t s, int64_t step, int64_t n)
{
	s = s < 0 ? s + n : s;
	if (step > 0)
		return s < 0 ? 0 : s > n ? n : s;
	return s < 0 ? 0 : s > n - 1 ? n - 1 : s;
}

static int const_int(Ctx *c, int j, int64_t ns)
{
	const Tensor *t = ec_tin(c, j);
	if (t && (t->kind != TK_CONST || !ec_isint(t->dtype) || ir_numel(t) != ns))
		return ec_fail(c, "input %d must be a constant integer tensor of %lld entries", j, (long long)ns);
	return 0;
}

int ec_slice(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0), *ts = ec_tin(c, 1);
	if (same_dtype(c) || !ts)
		return ts ? 1 : ec_fail(c, "starts are absent");
	int64_t ns = ir_numel(ts), st[IR_MAXRANK];
	if (const_int(c, 1, ns) || const_int(c, 3, ns) || const_int(c, 4, ns))
		return 1;
	if (y->rank != x->rank)
		return ec_fail(c, "output rank differs from the input's");
	ec_strides(x, st);
	Nest n;
	nest_init(&n, y->rank, y->dim, 2);
	nest_bcast(&n, 0, y);
	for (int a = 0; a < x->rank; a++)
		n.st[1][a] = st[a];
	for (int64_t j = 0; j < ns; j++) {
		int64_t av = ec_tin(c, 3) ? ir_get_i64(ec_tin(c, 3), j) : j;
		int64_t step = ec_tin(c, 4) ? ir_get_i64(ec_tin(c, 4), j) : 1;
		if (av < -x->rank || av >= x->rank || step == 0)
			return ec_fail(c, "axis %lld out of range or zero step", (long long)av);
		int a = ec_axis((int)av, x->rank);
		int64_t s = slice_start(ir_get_i64(ts, j), step, x->dim[a]);
		int64_t last = s + (y->dim[a] - 1) * step;
		if (y->dim[a] && (s < 0 || s >= x->dim[a] || last < 0 || last >= x->dim[a]))
			return ec_fail(c, "output dim %d runs outside the input", a);
		n.st[1][a] = step * st[a];
		n.base[1] += s * st[a];
	}
	const char *xs = ec_x(c, 0);
	ec_begin(c, 0);
	nest_copy(c, &n, xs, "y0");
	ec_end(c);
	return 0;
}

/* Constant indices are checked and normalised now; run-time ones are
 * wrapped once and clamped, so a bad index cannot read out of bounds. */
int ec_gather(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *ti = ec_tin(c, 1), *y = ec_tout(c, 0);
	int axis = x ? ec_axis(c->n->a.axis.axis, x->rank) : -1;
	if (same_dtype(c) || !ti)
		return 1;
	if (axis < 0 || !ec_isint(ti->dtype))
		return ec_fail(c, "axis %d out of range, or indices not integer", c->n->a.axis.axis);
	int64_t outer = ec_prod(x, 0, axis), dim = x->dim[axis];
	int64_t inner = ec_prod(x, axis + 1, x->rank), ni = ir_numel(ti);
	if (ir_numel(y) != outer * ni * inner)
		return ec_fail(c, "output shape does not match input and indices");
	const char *idx;
	if (ti->kind == TK_CONST) {
		int64_t *k = malloc(sizeof *k * (size_t)(ni ? ni : 1));
		for (int64_t j = 0; j < ni; j++) {
			int64_t v = ir_get_i64(ti, j);
			k[j] = v < 0 ? v + dim : v;
			if (k[j] < 0 || k[j] >= dim) {
				free(k);
				return ec_fail(c, "index %lld out of range [-%lld, %lld)", (long long)v,
				               (long long)dim, (long long)dim);
			}
		}
		idx = arena_printf(c->g->arena, "n%d_idx", c->id);
		ec_array(c, idx, DT_I64, ni, k);
		free(k);
	} else {
		idx = ec_x(c, 1);
	}
	const char *xs = ec_x(c, 0);
	ec_begin(c, 0);
	ec_line(&c->c, "for (long j = 0; j < %lld; j++) {", (long long)ni);
	ec_line(&c->c, "long k = (long)%s[j];", idx);
	if (ti->kind != TK_CONST) {
		ec_line(&c->c, "k = k < 0 ? k + %lld : k;", (long long)dim);
		ec_line(&c->c, "k = k < 0 ? 0 : k >= %lld ? %lld : k;", (long long)dim, (long long)(dim - 1));
	}
	ec_line(&c->c, "for (long o = 0; o < %lld; o++)", (long long)outer);
	ec_line(&c->c, "\tfor (long i = 0; i < %lld; i++)", (long long)inner);
	ec_line(&c->c, "\t\ty0[(o * %lld + j) * %lld + i] = %s[(o * %lld + k) * %lld + i];", (long long)ni,
	        (long long)inner, xs, (long long)dim, (long long)inner);
	ec_line(&c->c, "}");
	ec_end(c);
	return 0;
}

int ec_expand(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0);
	if (same_dtype(c))
		return 1;
	Nest n;
	nest_init(&n, y->rank, y->dim, 2);
	nest_bcast(&n, 0, y);
	if (nest_bcast(&n, 1, x))
		return ec_fail(c, "input does not broadcast to the output shape");
	const char *xs = ec_x(c, 0);
	ec_begin(c, 0);
	nest_copy(c, &n, xs, "y0");
	ec_end(c);
	return 0;
}

/* Output dim a of r*n splits into (repeat r: stride 0, coordinate n). */
int ec_tile(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0);
	if (same_dtype(c))
		return 1;
	if (y->rank != x->rank)
		return ec_fail(c, "output rank %d differs from input rank %d", y->rank, x->rank);
	int64_t xst[IR_MAXRANK], yst[IR_MAXRANK], dim[EC_MAXR];
	ec_strides(x, xst);
	ec_strides(y, yst);
	for (int a = 0; a < x->rank; a++) {
		int64_t n = x->dim[a];
		if (n ? y->dim[a] % n : y->dim[a])
			return ec_fail(c, "output dim %d is not a multiple of the input's", a);
		dim[2 * a] = n ? y->dim[a] / n : 0;
		dim[2 * a + 1] = n;
	}
	Nest nn;
	nest_init(&nn, 2 * x->rank, dim, 2);
	for (int a = 0; a < x->rank; a++) {
		nn.st[0][2 * a] = x->dim[a] * yst[a];
		nn.st[0][2 * a + 1] = yst[a];
		nn.st[1][2 * a + 1] = xst[a];
	}
	const char *xs = ec_x(c, 0);
	ec_begin(c, 0);
	nest_copy(c, &nn, xs, "y0");
	ec_end(c);
	return 0;
}
