/* The float reference evaluator for ops.def's "math, logic and bit ops":
 * trigonometric and other float unary ops, Sign, Round, IsNaN, IsInf, Not,
 * And/Or/Xor, GreaterOrEqual/LessOrEqual, Mod, BitShift, Hardmax, the
 * norm-like reductions, ArgMax/ArgMin and CumSum.
 *
 * Conventions as in eval.c: floats compute in float, in the order
 * backends/c/kernels_math.c prints, so the two agree bit for bit; integers
 * compute in int64 and wrap like two's complement.  Every case C leaves
 * undefined gets a defined result here and in the generated code alike:
 * integer x mod 0 = 0 (as numpy), x mod -1 = 0 (no INT_MIN % -1), a shift
 * by the bit width or more gives 0. */
#include <math.h>
#include <stdlib.h>

#include "eval_impl.h"

/* ---- unary ---- */

/* Round half to even whatever the FP rounding mode: for |x| < 2^23,
 * r = floor(|x|) and d = |x| - r are exact (Sterbenz), so the tie test is
 * exact; from 2^23 on every float is an integer (inf and NaN too). */
static float round_even(float x)
{
	float a = fabsf(x);
	if (!(a < 8388608.0f))
		return x;
	float r = floorf(a), d = a - r;
	if (d > 0.5f || (d == 0.5f && fmodf(r, 2.0f) != 0.0f))
		r += 1.0f;
	return copysignf(r, x);
}

static float unary_f(const Node *n, float x)
{
	float a = n->a.ab.alpha, b = n->a.ab.beta;
	switch (n->op) {
	case OP_SIN: return sinf(x);
	case OP_COS: return cosf(x);
	case OP_TAN: return tanf(x);
	case OP_ASIN: return asinf(x);
	case OP_ACOS: return acosf(x);
	case OP_ATAN: return atanf(x);
	case OP_SINH: return sinhf(x);
	case OP_COSH: return coshf(x);
	case OP_ASINH: return asinhf(x);
	case OP_ACOSH: return acoshf(x);
	case OP_ATANH: return atanhf(x);
	case OP_SIGN: return x > 0 ? 1.0f : x < 0 ? -1.0f : x;
	case OP_ROUND: return round_even(x);
	case OP_THRESHOLDEDRELU: return x > a ? x : 0.0f;
	case OP_SHRINK: return x < -a ? x + b : x > a ? x - b : 0.0f;
	case OP_CELU: return x > 0 ? x : a * expm1f(x / a);
	default: return x;
	}
}

/* IsNaN, IsInf: f32 -> bool. */
static int classify(const Ev *e, int64_t n)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	if (x->dtype != DT_F32 || y->dtype != DT_BOOL)
		return ev_fail(e, "takes f32 and gives bool, not %s -> %s", ir_dtype_name(x->dtype),
		               ir_dtype_name(y->dtype));
	const float *xd = e->in[0];
	uint8_t *yd = e->out[0];
	int pos = e->n->a.isinf.pos, neg = e->n->a.isinf.neg;
	for (int64_t i = 0; i < n; i++)
		yd[i] = e->n->op == OP_ISNAN ? xd[i] != xd[i]
		      : (pos && xd[i] == INFINITY) || (neg && xd[i] == -INFINITY);
	return 0;
}

static int unary(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	Op op = e->n->op;
	int64_t n = ir_numel(y);
	if (ir_numel(x) != n)
		return ev_fail(e, "input and output differ in size");
	if (op == OP_ISNAN || op == OP_ISINF)
		return classify(e, n);
	if (x->dtype != y->dtype)
		return ev_fail(e, "input and output differ in dtype");
	if (op == OP_NOT && x->dtype == DT_BOOL) {
		for (int64_t i = 0; i < n; i++)
			((uint8_t *)e->out[0])[i] = !((const uint8_t *)e->in[0])[i];
		return 0;
	}
	if (op != OP_NOT && x->dtype == DT_F32) {
		for (int64_t i = 0; i < n; i++)
			((float *)e->out[0])[i] = unary_f(e->n, ((const float *)e->in[0])[i]);
		return 0;
	}
	if (op == OP_SIGN && ev_isint(x->dtype) && x->dtype != DT_BOOL) {
		for (int64_t i = 0; i < n; i++) {
			int64_t v = ev_geti(x->dtype, e->in[0], i);
			ev_seti(y->dtype, e->out[0], i, v > 0 ? 1 : v < 0 ? -1 : 0);
		}
		return 0;
	}
	return ev_fail(e, "%s is not supported on %s", ir_opname[op], ir_dtype_name(x->dtype));
}

/* ---- binary ---- */

/* a mod b: fmod = 1 truncates (C's %), fmod = 0 floors (the result takes
 * b's sign, Python's %).  b = 0 and b = -1 give 0. */
static int64_t imod(int64_t a, int64_t b, int fmod)
{
	if (b == 0 || b == -1)
		return 0;
	int64_t r = a % b;
	if (!fmod && r != 0 && (r < 0) != (b < 0))
		r += b;
	return r;
}

/* Unsigned a shifted by b within bits; b >= bits gives 0. */
static int64_t ishift(int64_t a, int64_t b, int bits, int left)
{
	if (b < 0 || b >= bits)
		return 0;
	return (int64_t)(left ? (uint64_t)a << b : (uint64_t)a >> b);
}

static float binary_f(const Node *n, float a, float b)
{
	switch (n->op) {
	case OP_GREATEREQ: return a >= b;
	case OP_LESSEQ: return a <= b;
	case OP_MOD: return fmodf(a, b);
	default: return 0;
	}
}

static int64_t binary_i(const Node *n, DType dt, int64_t a, int64_t b)
{
	switch (n->op) {
	case OP_AND: return a && b;
	case OP_OR: return a || b;
	case OP_XOR: return !a != !b;
	case OP_GREATEREQ: return a >= b;
	case OP_LESSEQ: return a <= b;
	case OP_MOD: return imod(a, b, n->a.mod.fmod);
	case OP_BITSHIFT: return ishift(a, b, 8 * (int)ir_dtype_size(dt), n->a.shift.left);
	default: return 0;
	}
}

static int is_unsigned(DType t)
{
	return t == DT_U8 || t == DT_U16 || t == DT_U32;
}

/* The dtypes op takes: 0 if dt (both inputs) and the output's fit. */
static int binary_types(const Ev *e, DType dt, DType out)
{
	Op op = e->n->op;
	int ok;
	switch (op) {
	case OP_AND: case OP_OR: case OP_XOR: ok = dt == DT_BOOL && out == DT_BOOL; break;
	case OP_GREATEREQ: case OP_LESSEQ: ok = (dt == DT_F32 || ev_isint(dt)) && out == DT_BOOL; break;
	case OP_MOD:
		ok = out == dt && ((dt == DT_F32 && e->n->a.mod.fmod) || (ev_isint(dt) && dt != DT_BOOL));
		break;
	case OP_BITSHIFT: ok = out == dt && is_unsigned(dt); break;
	default: ok = 0; break;
	}
	if (!ok)
		return ev_fail(e, "%s does not take %s inputs with a %s output%s", ir_opname[op],
		               ir_dtype_name(dt), ir_dtype_name(out),
		               op == OP_MOD && dt == DT_F32 ? " (float Mod needs fmod = 1)" : "");
	return 0;
}

static int binary(const Ev *e)
{
	const Tensor *ta = ev_tin(e, 0), *tb = ev_tin(e, 1), *to = ev_tout(e, 0);
	if (e->n->nin != 2 || !tb)
		return ev_fail(e, "needs exactly 2 inputs");
	if (ta->dtype != tb->dtype)
		return ev_fail(e, "inputs differ in dtype (%s, %s)", ir_dtype_name(ta->dtype),
		               ir_dtype_name(tb->dtype));
	DType dt = ta->dtype;
	if (binary_types(e, dt, to->dtype))
		return 1;
	const Tensor *ops[2] = {ta, tb};
	EvIter it;
	if (ev_iter_bcast(&it, to, 2, ops))
		return ev_fail(e, "input shapes do not broadcast to the output shape");
	int64_t n = ir_numel(to);
	for (int64_t i = 0; i < n; i++, ev_iter_next(&it)) {
		if (dt == DT_F32) {
			float a = ((const float *)e->in[0])[it.off[0]];
			float b = ((const float *)e->in[1])[it.off[1]];
			ev_setf(to->dtype, e->out[0], i, binary_f(e->n, a, b));
		} else {
			int64_t a = ev_geti(dt, e->in[0], it.off[0]);
			int64_t b = ev_geti(dt, e->in[1], it.off[1]);
			ev_seti(to->dtype, e->out[0], i, binary_i(e->n, dt, a, b));
		}
	}
	return 0;
}

/* ---- Hardmax ---- */

/* Softmax's axis rules: legacy (opset < 13) flattens from axis on, where
 * axis may equal the rank. */
static int hardmax(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	if (ev_want_f32(e, 1))
		return 1;
	int r = x->rank, legacy = e->n->a.axis.legacy, ax = e->n->a.axis.axis;
	ax = ax < 0 ? ax + r : ax;
	if (r > 0 && (ax < 0 || ax > r || (ax == r && !legacy)))
		return ev_fail(e, "axis %d out of range for rank %d", e->n->a.axis.axis, r);
	if (ir_numel(x) != ir_numel(y))
		return ev_fail(e, "input and output differ in size");
	int64_t outer = r ? ev_prod(x, 0, ax) : 1;
	int64_t len = legacy ? ev_prod(x, ax, r) : r ? x->dim[ax] : 1;
	int64_t inner = legacy || !r ? 1 : ev_prod(x, ax + 1, r);
	const float *xd = e->in[0];
	float *yd = e->out[0];
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++) {
			int64_t base = o * len * inner + i, best = 0;
			for (int64_t j = 1; j < len; j++)
				if (xd[base + j * inner] > xd[base + best * inner])
					best = j;
			for (int64_t j = 0; j < len; j++)
				yd[base + j * inner] = j == best ? 1.0f : 0.0f;
		}
	return 0;
}

/* ---- reductions ---- */

/* Iterator over x whose off[0] is the output element each x element folds
 * into; 1 if the output's size does not match. */
static int reduce_iter(const Ev *e, const Tensor *x, const Tensor *y, EvIter *it)
{
	char mask[IR_MAXRANK];
	if (ev_reduce_axes(e, x, mask))
		return 1;
	ev_iter_shape(it, x, 1);
	int64_t s = 1;
	for (int a = x->rank - 1; a >= 0; a--) {
		it->st[0][a] = mask[a] ? 0 : s;
		s *= mask[a] ? 1 : x->dim[a];
	}
	if (s != ir_numel(y))
		return ev_fail(e, "output has %lld elements, the reduction gives %lld",
		               (long long)ir_numel(y), (long long)s);
	return 0;
}

/* ReduceLogSumExp: y = m + ln(sum exp(x - m)) with m the max (NaN wins),
 * or m itself when it is infinite (all -inf, or some +inf). */
static int logsumexp(const Ev *e, EvIter *it, const float *x, float *y, int64_t nx, int64_t ny)
{
	float *sum = calloc((size_t)(ny ? ny : 1), sizeof *sum);
	if (!sum)
		return ev_fail(e, "out of memory");
	EvIter again = *it;
	for (int64_t o = 0; o < ny; o++)
		y[o] = -INFINITY;
	for (int64_t i = 0; i < nx; i++, ev_iter_next(it)) {
		float v = x[i], m = y[it->off[0]];
		y[it->off[0]] = v > m || v != v ? v : m;
	}
	for (int64_t i = 0; i < nx; i++, ev_iter_next(&again))
		sum[again.off[0]] += expf(x[i] - y[again.off[0]]);
	for (int64_t o = 0; o < ny; o++)
		y[o] = isinf(y[o]) ? y[o] : y[o] + logf(sum[o]);
	free(sum);
	return 0;
}

static int reduce_f32(const Ev *e, EvIter *it, int64_t nx, int64_t ny)
{
	const float *x = e->in[0];
	float *y = e->out[0];
	Op op = e->n->op;
	if (op == OP_REDUCELOGSUMEXP)
		return logsumexp(e, it, x, y, nx, ny);
	for (int64_t o = 0; o < ny; o++)
		y[o] = 0.0f;
	for (int64_t i = 0; i < nx; i++, ev_iter_next(it)) {
		float v = x[i];
		y[it->off[0]] += op == OP_REDUCEL1 ? fabsf(v) : op == OP_REDUCELOGSUM ? v : v * v;
	}
	for (int64_t o = 0; o < ny; o++)
		y[o] = op == OP_REDUCEL2 ? sqrtf(y[o]) : op == OP_REDUCELOGSUM ? logf(y[o]) : y[o];
	return 0;
}

/* Integer ReduceL1 and ReduceSumSquare, wrapping. */
static void reduce_int(const Ev *e, EvIter *it, DType dt, int64_t nx, int64_t ny)
{
	for (int64_t o = 0; o < ny; o++)
		ev_seti(dt, e->out[0], o, 0);
	for (int64_t i = 0; i < nx; i++, ev_iter_next(it)) {
		uint64_t v = (uint64_t)ev_geti(dt, e->in[0], i);
		uint64_t t = e->n->op == OP_REDUCEL1 ? ((int64_t)v < 0 ? 0 - v : v) : v * v;
		int64_t o = it->off[0];
		ev_seti(dt, e->out[0], o, (int64_t)((uint64_t)ev_geti(dt, e->out[0], o) + t));
	}
}

static int reduce(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	Op op = e->n->op;
	int intok = (op == OP_REDUCEL1 || op == OP_REDUCESUMSQ) && ev_isint(x->dtype) && x->dtype != DT_BOOL;
	if (x->dtype != y->dtype || (x->dtype != DT_F32 && !intok))
		return ev_fail(e, "%s does not take %s (output %s)", ir_opname[op],
		               ir_dtype_name(x->dtype), ir_dtype_name(y->dtype));
	EvIter it;
	if (reduce_iter(e, x, y, &it))
		return 1;
	if (x->dtype == DT_F32)
		return reduce_f32(e, &it, ir_numel(x), ir_numel(y));
	reduce_int(e, &it, x->dtype, ir_numel(x), ir_numel(y));
	return 0;
}

/* ---- ArgMax, ArgMin ---- */

/* Does v replace the best b so far?  NaN counts as the extreme, as in
 * numpy: the first NaN wins, or the last one with select_last_index. */
static int arg_better_f(float v, float b, int max, int last)
{
	if (b != b)
		return last && v != v;
	if (v != v)
		return 1;
	return max ? v > b || (last && v == b) : v < b || (last && v == b);
}

static int arg_better_i(int64_t v, int64_t b, int max, int last)
{
	return max ? v > b || (last && v == b) : v < b || (last && v == b);
}

static int argext(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	int r = x->rank, ax = ev_axis(e->n->a.arg.axis, r);
	if (y->dtype != DT_I64 || (x->dtype != DT_F32 && !ev_isint(x->dtype)))
		return ev_fail(e, "takes f32 or integers to i64, not %s -> %s", ir_dtype_name(x->dtype),
		               ir_dtype_name(y->dtype));
	if (ax < 0 || x->dim[ax] == 0)
		return ev_fail(e, "axis %d out of range or empty for shape of rank %d", e->n->a.arg.axis, r);
	int64_t outer = ev_prod(x, 0, ax), len = x->dim[ax], inner = ev_prod(x, ax + 1, r);
	int max = e->n->op == OP_ARGMAX, last = e->n->a.arg.last, isf = x->dtype == DT_F32;
	int64_t *yd = e->out[0];
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++) {
			int64_t base = o * len * inner + i, best = 0;
			for (int64_t j = 1; j < len; j++) {
				int64_t v = base + j * inner, b = base + best * inner;
				if (isf ? arg_better_f(((const float *)e->in[0])[v], ((const float *)e->in[0])[b], max, last)
				        : arg_better_i(ev_geti(x->dtype, e->in[0], v), ev_geti(x->dtype, e->in[0], b), max, last))
					best = j;
			}
			yd[o * inner + i] = best;
		}
	return 0;
}

/* ---- CumSum ---- */

/* The axis input: one integer, in [-rank, rank). */
static int cumsum_axis(const Ev *e, int rank, int *ax)
{
	const Tensor *t = ev_tin(e, 1);
	if (!t || !ev_isint(t->dtype) || t->dtype == DT_BOOL || ir_numel(t) != 1)
		return ev_fail(e, "axis must be one integer");
	int64_t v = ev_geti(t->dtype, e->in[1], 0);
	*ax = v < -rank || v >= rank ? -1 : ev_axis((int)v, rank);
	if (*ax < 0)
		return ev_fail(e, "axis %lld out of range for rank %d", (long long)v, rank);
	return 0;
}

/* Running sums along the axis, in walking order (backwards if reverse);
 * exclusive stores the sum before adding the element. */
static int cumsum(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	int ax = 0;
	if (x->dtype != y->dtype || ir_numel(x) != ir_numel(y) ||
	    (x->dtype != DT_F32 && (!ev_isint(x->dtype) || x->dtype == DT_BOOL)))
		return ev_fail(e, "takes f32 or integers, not %s -> %s", ir_dtype_name(x->dtype),
		               ir_dtype_name(y->dtype));
	if (cumsum_axis(e, x->rank, &ax))
		return 1;
	int64_t outer = ev_prod(x, 0, ax), len = x->dim[ax], inner = ev_prod(x, ax + 1, x->rank);
	int excl = e->n->a.cumsum.exclusive, rev = e->n->a.cumsum.reverse;
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++) {
			float fa = 0.0f;
			uint64_t ia = 0;
			for (int64_t k = 0; k < len; k++) {
				int64_t p = o * len * inner + (rev ? len - 1 - k : k) * inner + i;
				if (x->dtype == DT_F32) {
					float v = ((const float *)e->in[0])[p];
					((float *)e->out[0])[p] = excl ? fa : fa + v;
					fa += v;
				} else {
					uint64_t v = (uint64_t)ev_geti(x->dtype, e->in[0], p);
					ev_seti(y->dtype, e->out[0], p, (int64_t)(excl ? ia : ia + v));
					ia += v;
				}
			}
		}
	return 0;
}

/* ---- dispatch ---- */

int ev_math(const Ev *e)
{
	Op op = e->n->op;
	if (ir_opflags[op] & F_UNARY)
		return unary(e);
	if (ir_opflags[op] & F_ELTWISE)
		return binary(e);
	switch (op) {
	case OP_HARDMAX: return hardmax(e);
	case OP_ARGMAX: case OP_ARGMIN: return argext(e);
	case OP_CUMSUM: return cumsum(e);
	default: return reduce(e);
	}
}
