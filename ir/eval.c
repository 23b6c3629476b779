/* The float reference evaluator: the semantic definition of potc's float
 * model.  Every op of ops.def is computed here exactly as the ONNX spec
 * (opsets 9-17) defines it, in float32, from tensors whose shapes and
 * dtypes ir_infer has already set.  This file holds the dispatch, the
 * whole-graph driver, the element-wise ops and the shared helpers;
 * eval_nn.c has the neural-network kernels, eval_data.c data movement.
 *
 * Conventions shared by all three files:
 *   - compute ops take and give f32 and compute in float (not double);
 *   - element-wise ops and the shape-arithmetic ops also work on integer
 *     dtypes (computed as int64, wrapping like two's complement);
 *   - F_ANYTYPE ops move bytes of any dtype (ir_dtype_size each);
 *   - an unsupported dtype or shape is an ir_error, never a crash. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

#include "eval_impl.h"

/* ---- shared helpers ---- */

const Tensor *ev_tin(const Ev *e, int j)
{
	if (j >= e->n->nin || e->n->in[j] < 0 || !e->in[j])
		return NULL;
	return &e->g->tensor[e->n->in[j]];
}

const Tensor *ev_tout(const Ev *e, int j)
{
	if (j >= e->n->nout || e->n->out[j] < 0 || !e->out[j])
		return NULL;
	return &e->g->tensor[e->n->out[j]];
}

int ev_fail(const Ev *e, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	ir_error(e->d, e->g, e->id, "%s", msg);
	return 1;
}

int ev_want_f32(const Ev *e, int nin)
{
	const Tensor *t = ev_tout(e, 0);
	if (t->dtype != DT_F32)
		return ev_fail(e, "output is %s, only f32 is supported", ir_dtype_name(t->dtype));
	for (int j = 0; j < nin; j++) {
		t = ev_tin(e, j);
		if (t && t->dtype != DT_F32)
			return ev_fail(e, "input %d is %s, only f32 is supported", j,
			               ir_dtype_name(t->dtype));
	}
	return 0;
}

int ev_axis(int axis, int rank)
{
	if (axis < -rank || axis >= rank)
		return -1;
	return axis < 0 ? axis + rank : axis;
}

int64_t ev_prod(const Tensor *t, int from, int to)
{
	int64_t p = 1;
	for (int i = from; i < to; i++)
		p *= t->dim[i];
	return p;
}

void ev_strides(const Tensor *t, int64_t *st)
{
	int64_t s = 1;
	for (int a = t->rank - 1; a >= 0; a--) {
		st[a] = s;
		s *= t->dim[a];
	}
}

void ev_iter_shape(EvIter *it, const Tensor *t, int nop)
{
	memset(it, 0, sizeof *it);
	it->rank = t->rank;
	it->nop = nop;
	for (int a = 0; a < t->rank; a++)
		it->dim[a] = t->dim[a];
}

int ev_iter_bcast(EvIter *it, const Tensor *out, int nop, const Tensor *const *op)
{
	ev_iter_shape(it, out, nop);
	for (int k = 0; k < nop; k++) {
		const Tensor *t = op[k];
		int lead = out->rank - t->rank;
		if (lead < 0)
			return 1;
		int64_t s = 1;
		for (int a = t->rank - 1; a >= 0; a--) {
			int64_t d = t->dim[a];
			if (d != out->dim[lead + a] && d != 1)
				return 1;
			it->st[k][lead + a] = d == 1 ? 0 : s;
			s *= d;
		}
	}
	return 0;
}

/* ---- element access by dtype ---- */

int ev_isint(DType t)
{
	return t >= DT_I8 && t <= DT_BOOL;
}

int ev_isfloat(DType t)
{
	return t == DT_F32 || t == DT_F64;
}

/* double -> int64, truncating toward zero; out of range saturates, NaN -> 0. */
static int64_t sat64(double v)
{
	if (v != v)
		return 0;
	if (v >= 0x1p63)
		return INT64_MAX;
	if (v < -0x1p63)
		return INT64_MIN;
	return (int64_t)v;
}

int64_t ev_geti(DType t, const void *p, int64_t i)
{
	switch (t) {
	case DT_I8: return ((const int8_t *)p)[i];
	case DT_U8: return ((const uint8_t *)p)[i];
	case DT_I16: return ((const int16_t *)p)[i];
	case DT_U16: return ((const uint16_t *)p)[i];
	case DT_I32: return ((const int32_t *)p)[i];
	case DT_U32: return ((const uint32_t *)p)[i];
	case DT_I64: return ((const int64_t *)p)[i];
	case DT_BOOL: return ((const uint8_t *)p)[i] != 0;
	default: return sat64(ir_load(t, p, i));
	}
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

void ev_setf(DType t, void *p, int64_t i, double v)
{
	int64_t x = sat64(v);
	switch (t) {
	case DT_F32: ((float *)p)[i] = (float)v; break;
	case DT_F64: ((double *)p)[i] = v; break;
	case DT_I8: ((int8_t *)p)[i] = (int8_t)clamp64(x, INT8_MIN, INT8_MAX); break;
	case DT_U8: ((uint8_t *)p)[i] = (uint8_t)clamp64(x, 0, UINT8_MAX); break;
	case DT_I16: ((int16_t *)p)[i] = (int16_t)clamp64(x, INT16_MIN, INT16_MAX); break;
	case DT_U16: ((uint16_t *)p)[i] = (uint16_t)clamp64(x, 0, UINT16_MAX); break;
	case DT_I32: ((int32_t *)p)[i] = (int32_t)clamp64(x, INT32_MIN, INT32_MAX); break;
	case DT_U32: ((uint32_t *)p)[i] = (uint32_t)clamp64(x, 0, UINT32_MAX); break;
	case DT_I64: ((int64_t *)p)[i] = x; break;
	case DT_BOOL: ((uint8_t *)p)[i] = v != 0; break;
	default: break;
	}
}

void ev_seti(DType t, void *p, int64_t i, int64_t v)
{
	/* Unsigned conversion is the modular wrap; gcc and clang define the
	 * unsigned -> signed step as two's complement too. */
	switch (t) {
	case DT_F32: ((float *)p)[i] = (float)v; break;
	case DT_F64: ((double *)p)[i] = (double)v; break;
	case DT_I8: ((int8_t *)p)[i] = (int8_t)(uint8_t)v; break;
	case DT_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
	case DT_I16: ((int16_t *)p)[i] = (int16_t)(uint16_t)v; break;
	case DT_U16: ((uint16_t *)p)[i] = (uint16_t)v; break;
	case DT_I32: ((int32_t *)p)[i] = (int32_t)(uint32_t)v; break;
	case DT_U32: ((uint32_t *)p)[i] = (uint32_t)v; break;
	case DT_I64: ((int64_t *)p)[i] = v; break;
	case DT_BOOL: ((uint8_t *)p)[i] = v != 0; break;
	default: break;
	}
}

/* ---- activations and float unary ops ---- */

static float clamp01(float x)
{
	return x < 0 ? 0 : x > 1 ? 1 : x;
}

/* The fused activations of ir.h.  NaN passes through Relu and Clip as
 * numpy's clip lets it. */
static float act(ActKind k, float a, float b, float x)
{
	switch (k) {
	case ACT_NONE: return x;
	case ACT_RELU: return x < 0 ? 0 : x;
	case ACT_CLIP: x = x < a ? a : x; return x > b ? b : x;
	case ACT_LEAKY: return x < 0 ? a * x : x;
	case ACT_HSIGMOID: return clamp01(a * x + b);
	case ACT_HSWISH: return x * clamp01(x / 6 + 0.5f);
	case ACT_SIGMOID: return 1 / (1 + expf(-x));
	}
	return x;
}

/* Softplus ln(exp(x)+1), rewritten so exp cannot overflow. */
static float softplus(float x)
{
	return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x));
}

/* Unary float op; lo/hi are Clip's bounds. */
static float unary_f(const Node *n, float x, float lo, float hi)
{
	float a = n->a.ab.alpha, b = n->a.ab.beta;
	switch (n->op) {
	case OP_RELU: return act(ACT_RELU, 0, 0, x);
	case OP_LEAKYRELU: return act(ACT_LEAKY, a, 0, x);
	case OP_CLIP: return act(ACT_CLIP, lo, hi, x);
	case OP_SIGMOID: return act(ACT_SIGMOID, 0, 0, x);
	case OP_HARDSIGMOID: return act(ACT_HSIGMOID, a, b, x);
	case OP_HARDSWISH: return act(ACT_HSWISH, 0, 0, x);
	case OP_TANH: return tanhf(x);
	case OP_EXP: return expf(x);
	case OP_LOG: return logf(x);
	case OP_SQRT: return sqrtf(x);
	case OP_NEG: return -x;
	case OP_ABS: return fabsf(x);
	case OP_RECIPROCAL: return 1 / x;
	case OP_FLOOR: return floorf(x);
	case OP_CEIL: return ceilf(x);
	case OP_ELU: return x < 0 ? a * expm1f(x) : x;
	case OP_SELU: return b * (x <= 0 ? a * expm1f(x) : x);
	case OP_SOFTPLUS: return softplus(x);
	case OP_SOFTSIGN: return x / (1 + fabsf(x));
	case OP_ERF: return erff(x);
	default: return x;
	}
}

/* Unary integer op (only those ONNX defines on integers). */
static int64_t unary_i(Op op, int64_t x, int64_t lo, int64_t hi)
{
	switch (op) {
	case OP_RELU: return x < 0 ? 0 : x;
	case OP_CLIP: x = x < lo ? lo : x; return x > hi ? hi : x;
	case OP_NEG: return (int64_t)(0 - (uint64_t)x);
	case OP_ABS: return x < 0 ? (int64_t)(0 - (uint64_t)x) : x;
	default: return x;
	}
}

static int int_unary_ok(Op op)
{
	return op == OP_RELU || op == OP_CLIP || op == OP_NEG || op == OP_ABS;
}

/* Clip's optional min/max scalars; absent means unbounded. */
static void clip_bounds(const Ev *e, double *lo, double *hi)
{
	const Tensor *tl = ev_tin(e, 1), *th = ev_tin(e, 2);
	*lo = tl && ir_numel(tl) ? ir_load(tl->dtype, e->in[1], 0) : -INFINITY;
	*hi = th && ir_numel(th) ? ir_load(th->dtype, e->in[2], 0) : INFINITY;
}

static void clip_bounds_i(const Ev *e, int64_t *lo, int64_t *hi)
{
	const Tensor *tl = ev_tin(e, 1), *th = ev_tin(e, 2);
	*lo = tl && ir_numel(tl) ? ev_geti(tl->dtype, e->in[1], 0) : INT64_MIN;
	*hi = th && ir_numel(th) ? ev_geti(th->dtype, e->in[2], 0) : INT64_MAX;
}

static int unary(const Ev *e)
{
	const Tensor *ti = ev_tin(e, 0), *to = ev_tout(e, 0);
	Op op = e->n->op;
	if (ti->dtype != to->dtype || ir_numel(ti) != ir_numel(to))
		return ev_fail(e, "input and output differ in dtype or size");
	int64_t n = ir_numel(to);
	if (to->dtype == DT_F32) {
		const float *x = e->in[0];
		float *y = e->out[0];
		double lo, hi;
		clip_bounds(e, &lo, &hi);
		for (int64_t i = 0; i < n; i++)
			y[i] = unary_f(e->n, x[i], (float)lo, (float)hi);
		return 0;
	}
	if (!ev_isint(to->dtype) || to->dtype == DT_BOOL || !int_unary_ok(op))
		return ev_fail(e, "%s is not supported on %s", ir_opname[op], ir_dtype_name(to->dtype));
	int64_t lo, hi;
	clip_bounds_i(e, &lo, &hi);
	for (int64_t i = 0; i < n; i++)
		ev_seti(to->dtype, e->out[0], i, unary_i(op, ev_geti(ti->dtype, e->in[0], i), lo, hi));
	return 0;
}

/* ---- element-wise binary, n-ary and Where ---- */

static int is_compare(Op op)
{
	return op == OP_EQUAL || op == OP_LESS || op == OP_GREATER;
}

/* Max and Min propagate NaN like numpy's maximum and minimum. */
static float binary_f(Op op, float a, float b)
{
	switch (op) {
	case OP_ADD: case OP_SUM: case OP_MEAN: return a + b;
	case OP_SUB: return a - b;
	case OP_MUL: return a * b;
	case OP_DIV: return a / b;
	case OP_POW: return powf(a, b);
	case OP_MAX: return a != a || a > b ? a : b;
	case OP_MIN: return a != a || a < b ? a : b;
	case OP_PRELU: return a < 0 ? b * a : a;
	case OP_EQUAL: return a == b;
	case OP_LESS: return a < b;
	case OP_GREATER: return a > b;
	default: return 0;
	}
}

/* a^b by squaring, wrapping; negative b gives the truncated 1/a^|b|. */
static int64_t ipow(int64_t a, int64_t b)
{
	if (b < 0)
		return a == 1 ? 1 : a == -1 ? (b & 1 ? -1 : 1) : 0;
	uint64_t r = 1, x = (uint64_t)a;
	for (; b; b >>= 1, x *= x)
		if (b & 1)
			r *= x;
	return (int64_t)r;
}

/* Integer arithmetic wraps (through uint64_t); Div truncates toward zero.
 * The caller rules out division by zero. */
static int64_t binary_i(Op op, int64_t a, int64_t b)
{
	uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
	switch (op) {
	case OP_ADD: case OP_SUM: case OP_MEAN: return (int64_t)(ua + ub);
	case OP_SUB: return (int64_t)(ua - ub);
	case OP_MUL: return (int64_t)(ua * ub);
	case OP_DIV: return b == -1 ? (int64_t)(0 - ua) : a / b;
	case OP_POW: return ipow(a, b);
	case OP_MAX: return a > b ? a : b;
	case OP_MIN: return a < b ? a : b;
	case OP_PRELU: return a < 0 ? (int64_t)(ua * ub) : a;
	case OP_EQUAL: return a == b;
	case OP_LESS: return a < b;
	case OP_GREATER: return a > b;
	default: return 0;
	}
}

/* Computed on int64 when both operands are integers and so is the result
 * (comparisons: when both operands are); otherwise in float. */
static int int_path(Op op, DType a, DType b, DType out)
{
	return ev_isint(a) && ev_isint(b) && (is_compare(op) || ev_isint(out));
}

/* out = op(a, b), a and b broadcasting to out's shape.  a may be out itself:
 * each element is read before it is written. */
static int binary(const Ev *e, const Tensor *ta, const void *a, const Tensor *tb, const void *b)
{
	const Tensor *to = ev_tout(e, 0);
	const Tensor *ops[2] = {ta, tb};
	Op op = e->n->op;
	EvIter it;
	if (ev_iter_bcast(&it, to, 2, ops))
		return ev_fail(e, "input shapes do not broadcast to the output shape");
	int64_t n = ir_numel(to);
	if (!int_path(op, ta->dtype, tb->dtype, to->dtype)) {
		for (int64_t i = 0; i < n; i++, ev_iter_next(&it)) {
			float x = (float)ir_load(ta->dtype, a, it.off[0]);
			float y = (float)ir_load(tb->dtype, b, it.off[1]);
			ev_setf(to->dtype, e->out[0], i, binary_f(op, x, y));
		}
		return 0;
	}
	for (int64_t i = 0; i < n; i++, ev_iter_next(&it)) {
		int64_t x = ev_geti(ta->dtype, a, it.off[0]);
		int64_t y = ev_geti(tb->dtype, b, it.off[1]);
		if (op == OP_DIV && y == 0)
			return ev_fail(e, "integer division by zero");
		ev_seti(to->dtype, e->out[0], i, binary_i(op, x, y));
	}
	return 0;
}

/* Max, Min, Sum, Mean over 1..n inputs: fold each input into the output. */
static int nary(const Ev *e)
{
	const Tensor *to = ev_tout(e, 0), *t0 = ev_tin(e, 0);
	int nin = e->n->nin;
	if (nin == 1) {
		if (t0->dtype != to->dtype || ir_numel(t0) != ir_numel(to))
			return ev_fail(e, "input and output differ in dtype or size");
		memcpy(e->out[0], e->in[0], ir_nbytes(to));
		return 0;
	}
	for (int j = 1; j < nin; j++) {
		const Tensor *tj = ev_tin(e, j);
		if (!tj)
			return ev_fail(e, "input %d is absent", j);
		if (j == 1 ? binary(e, t0, e->in[0], tj, e->in[1])
		           : binary(e, to, e->out[0], tj, e->in[j]))
			return 1;
	}
	if (e->n->op != OP_MEAN)
		return 0;
	int64_t n = ir_numel(to);
	for (int64_t i = 0; i < n; i++)
		ev_setf(to->dtype, e->out[0], i, (float)ir_load(to->dtype, e->out[0], i) / (float)nin);
	return 0;
}

/* Where(c, a, b): moves bytes, so any dtype of a and b. */
static int where(const Ev *e)
{
	const Tensor *to = ev_tout(e, 0);
	const Tensor *ops[3] = {ev_tin(e, 0), ev_tin(e, 1), ev_tin(e, 2)};
	if (ops[1]->dtype != to->dtype || ops[2]->dtype != to->dtype || !ev_isint(ops[0]->dtype))
		return ev_fail(e, "needs a bool condition and two inputs of the output's dtype");
	EvIter it;
	if (ev_iter_bcast(&it, to, 3, ops))
		return ev_fail(e, "input shapes do not broadcast to the output shape");
	size_t es = ir_dtype_size(to->dtype);
	int64_t n = ir_numel(to);
	for (int64_t i = 0; i < n; i++, ev_iter_next(&it)) {
		int c = ev_geti(ops[0]->dtype, e->in[0], it.off[0]) != 0;
		ev_move(e->out[0], i, e->in[c ? 1 : 2], it.off[c ? 1 : 2], es);
	}
	return 0;
}

static int eltwise(const Ev *e)
{
	switch (e->n->op) {
	case OP_WHERE: return where(e);
	case OP_MAX: case OP_MIN: case OP_SUM: case OP_MEAN: return nary(e);
	default: break;
	}
	if (e->n->nin != 2)
		return ev_fail(e, "needs exactly 2 inputs, has %d", e->n->nin);
	return binary(e, ev_tin(e, 0), e->in[0], ev_tin(e, 1), e->in[1]);
}

/* ---- dispatch ---- */

static int dispatch(const Ev *e)
{
	Op op = e->n->op;
	if (ir_is_math_op(op))
		return ev_math(e);
	if (ir_opflags[op] & F_UNARY)
		return unary(e);
	if (ir_opflags[op] & F_ELTWISE)
		return eltwise(e);
	switch (op) {
	case OP_CONV: return ev_conv(e);
	case OP_GEMM: return ev_gemm(e);
	case OP_MATMUL: return ev_matmul(e);
	case OP_MAXPOOL: return ev_maxpool(e);
	case OP_AVGPOOL: return ev_avgpool(e);
	case OP_GAVGPOOL: case OP_GMAXPOOL: return ev_globalpool(e);
	case OP_BATCHNORM: return ev_batchnorm(e);
	case OP_SOFTMAX: case OP_LOGSOFTMAX: return ev_softmax(e);
	case OP_REDUCEMEAN: case OP_REDUCEMAX: case OP_REDUCEMIN:
	case OP_REDUCESUM: case OP_REDUCEPROD: return ev_reduce(e);
	case OP_IDENTITY: case OP_DROPOUT: case OP_RESHAPE: case OP_FLATTEN:
	case OP_SQUEEZE: case OP_UNSQUEEZE: return ev_copy(e);
	case OP_TRANSPOSE: return ev_transpose(e);
	case OP_CONCAT: return ev_concat(e);
	case OP_PAD: return ev_pad(e);
	case OP_SLICE: return ev_slice(e);
	case OP_GATHER: return ev_gather(e);
	case OP_EXPAND: return ev_expand(e);
	case OP_TILE: return ev_tile(e);
	case OP_SHAPE: case OP_SIZE: return ev_shape(e);
	case OP_CAST: return ev_cast(e);
	case OP_CONSTOFSHAPE: return ev_constofshape(e);
	case OP_RANGE: return ev_range(e);
	case OP_SPLIT: case OP_DEPTHTOSPACE: case OP_SPACETODEPTH: case OP_GATHERELEM:
	case OP_GATHERND: case OP_ONEHOT: case OP_TRILU: case OP_CONVTRANSPOSE: case OP_INSTNORM:
	case OP_LAYERNORM: case OP_LRN: case OP_RESIZE: return ev_struct(e);
	case OP_QUANTIZE: case OP_DEQUANTIZE: case OP_QLINEARCONV: case OP_QLINEARMATMUL:
	case OP_CONVINTEGER: case OP_MATMULINTEGER: return ev_qops(e);
	case OP_CONSTANT: return ev_fail(e, "internal: Constant node left in the graph");
	default: return ev_fail(e, "internal: no evaluator for op %d", (int)op);
	}
}

/* How many leading inputs must be present (their data is read). */
static int min_inputs(Op op)
{
	switch (op) {
	case OP_BATCHNORM: return 5;
	case OP_QLINEARCONV: case OP_QLINEARMATMUL: return 8;
	case OP_SLICE: case OP_WHERE: case OP_RANGE: return 3;
	case OP_CONV: case OP_GEMM: case OP_MATMUL: case OP_PAD: case OP_GATHER:
	case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_POW:
	case OP_PRELU: case OP_EQUAL: case OP_LESS: case OP_GREATER: return 2;
	case OP_QUANTIZE: case OP_DEQUANTIZE: case OP_CONVINTEGER: case OP_MATMULINTEGER: return 2;
	case OP_SHAPE: case OP_SIZE: case OP_CONSTOFSHAPE: case OP_CONSTANT: return 0;
	default: return 1;
	}
}

static int shape_known(const Tensor *t)
{
	if (t->dtype <= DT_UNDEF || t->dtype >= DT_COUNT || t->rank < 0 || t->rank > IR_MAXRANK)
		return 0;
	for (int a = 0; a < t->rank; a++)
		if (t->dim[a] < 0)
			return 0;
	return 1;
}

/* The node's inputs and outputs exist and have static shapes. */
static int check(const Ev *e)
{
	const Node *n = e->n;
	int need = min_inputs(n->op);
	if (n->nin < need)
		return ev_fail(e, "needs %d inputs, has %d", need, n->nin);
	for (int j = 0; j < need; j++)
		if (!ev_tin(e, j))
			return ev_fail(e, "input %d is absent", j);
	for (int j = 0; j < n->nin; j++)
		if (ev_tin(e, j) && !shape_known(ev_tin(e, j)))
			return ev_fail(e, "input %d has no static shape", j);
	if (!ev_tout(e, 0))
		return ev_fail(e, "output 0 is absent");
	for (int j = 0; j < n->nout; j++)
		if (ev_tout(e, j) && !shape_known(ev_tout(e, j)))
			return ev_fail(e, "output %d has no static shape (run ir_infer first)", j);
	return 0;
}

static int apply_act(const Ev *e)
{
	const Act *a = &e->n->act;
	if (a->kind == ACT_NONE)
		return 0;
	const Tensor *t = ev_tout(e, 0);
	if (t->dtype != DT_F32)
		return ev_fail(e, "fused activation on a %s output", ir_dtype_name(t->dtype));
	float *y = e->out[0];
	int64_t n = ir_numel(t);
	for (int64_t i = 0; i < n; i++)
		y[i] = act(a->kind, a->a, a->b, y[i]);
	return 0;
}

int ir_eval_node(const Graph *g, int n, const void *const *in, void *const *out, Diag *d)
{
	Ev e = {g, n, &g->node[n], in, out, d};
	if (check(&e) || dispatch(&e))
		return 1;
	return apply_act(&e);
}

/* ---- whole graph ---- */

/* Buffers of one ir_eval run: data[t] for every tensor, own[t] when it was
 * malloc'ed here, last[t] the last node reading it (outputs: never freed
 * before the end). */
typedef struct {
	const void **data;
	char *own;
	int *last;
	const void **in;
	void **out;
} Run;

static void run_free(const Graph *g, Run *r)
{
	for (int t = 0; r->own && t < g->ntensor; t++)
		if (r->own[t])
			free((void *)r->data[t]);
	free(r->data);
	free(r->own);
	free(r->last);
	free(r->in);
	free(r->out);
}

static int run_init(const Graph *g, Run *r, const void *const *inputs, Diag *d)
{
	int maxio = 1;
	for (int i = 0; i < g->nnode; i++) {
		maxio = g->node[i].nin > maxio ? g->node[i].nin : maxio;
		maxio = g->node[i].nout > maxio ? g->node[i].nout : maxio;
	}
	size_t nt = (size_t)g->ntensor + 1;
	r->data = calloc(nt, sizeof *r->data);
	r->own = calloc(nt, 1);
	r->last = calloc(nt, sizeof *r->last);
	r->in = calloc((size_t)maxio, sizeof *r->in);
	r->out = calloc((size_t)maxio, sizeof *r->out);
	if (!r->data || !r->own || !r->last || !r->in || !r->out) {
		ir_error(d, g, -1, "out of memory in the evaluator");
		return 1;
	}
	for (int t = 0; t < g->ntensor; t++) {
		r->data[t] = g->tensor[t].kind == TK_CONST ? g->tensor[t].data : NULL;
		r->last[t] = -1;
	}
	for (int i = 0; i < g->ninput; i++) {
		if (!inputs || !inputs[i]) {
			ir_error(d, g, -1, "no data for graph input %d", i);
			return 1;
		}
		r->data[g->input[i]] = inputs[i];
	}
	for (int i = 0; i < g->nnode; i++)
		for (int j = 0; !g->node[i].dead && j < g->node[i].nin; j++)
			if (g->node[i].in[j] >= 0)
				r->last[g->node[i].in[j]] = i;
	for (int i = 0; i < g->noutput; i++)
		r->last[g->output[i]] = INT_MAX;
	return 0;
}

/* Point r->in / r->out at node i's buffers, allocating its outputs. */
static int bind_node(const Graph *g, Run *r, int i, Diag *d)
{
	const Node *n = &g->node[i];
	for (int j = 0; j < n->nin; j++) {
		int t = n->in[j];
		r->in[j] = t >= 0 ? r->data[t] : NULL;
		if (t >= 0 && !r->data[t]) {
			ir_error(d, g, i, "input \"%s\" has no value", g->tensor[t].name);
			return 1;
		}
	}
	for (int j = 0; j < n->nout; j++) {
		int t = n->out[j];
		r->out[j] = NULL;
		if (t < 0)
			continue;
		size_t nb = ir_nbytes(&g->tensor[t]);
		r->out[j] = malloc(nb ? nb : 1);
		if (!r->out[j]) {
			ir_error(d, g, i, "out of memory for \"%s\"", g->tensor[t].name);
			return 1;
		}
		if (r->own[t])
			free((void *)r->data[t]);
		r->data[t] = r->out[j];
		r->own[t] = 1;
	}
	return 0;
}

/* Free what node i was the last to read, and outputs nothing reads. */
static void release(const Graph *g, Run *r, int i)
{
	const Node *n = &g->node[i];
	for (int k = 0; k < n->nin + n->nout; k++) {
		int t = k < n->nin ? n->in[k] : n->out[k - n->nin];
		if (t >= 0 && r->own[t] && r->last[t] <= i) {
			free((void *)r->data[t]);
			r->data[t] = NULL;
			r->own[t] = 0;
		}
	}
}

static int run_nodes(const Graph *g, Run *r, EvNodeFn node_fn, IrObserve observe, void *ctx, Diag *d)
{
	for (int i = 0; i < g->nnode; i++) {
		const Node *n = &g->node[i];
		if (n->dead)
			continue;
		if (bind_node(g, r, i, d) ||
		    node_fn(g, i, r->in, (void *const *)r->out, d))
			return 1;
		for (int j = 0; observe && j < n->nout; j++)
			if (n->out[j] >= 0)
				observe(ctx, g, n->out[j], r->out[j]);
		release(g, r, i);
	}
	return 0;
}

int ev_run_graph(const Graph *g, EvNodeFn node_fn, const void *const *inputs, void *const *outputs,
                 IrObserve observe, void *ctx, Diag *d)
{
	Run r = {0};
	int bad = run_init(g, &r, inputs, d) || run_nodes(g, &r, node_fn, observe, ctx, d);
	for (int i = 0; !bad && i < g->noutput; i++) {
		int t = g->output[i];
		if (!r.data[t]) {
			ir_error(d, g, -1, "graph output \"%s\" was not computed", g->tensor[t].name);
			bad = 1;
		} else if (outputs && outputs[i]) {
			memcpy(outputs[i], r.data[t], ir_nbytes(&g->tensor[t]));
		}
	}
	run_free(g, &r);
	return bad;
}

int ir_eval(const Graph *g, const void *const *inputs, void *const *outputs,
            IrObserve observe, void *ctx, Diag *d)
{
	return ev_run_graph(g, ir_eval_node, inputs, outputs, observe, ctx, d);
}
