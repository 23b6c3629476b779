/* Reference kernels for data movement and shape arithmetic.  They move
 * bytes (ir_dtype_size each), so they work on every dtype; the index
 * inputs (pads, starts, indices, ...) may be any integer dtype. */
#include <math.h>

#include "eval_impl.h"

/* Input and output 0 have one dtype and, if same_numel, one element count. */
static int same_type(const Ev *e, int same_numel)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	if (x->dtype != y->dtype)
		return ev_fail(e, "input is %s but output is %s", ir_dtype_name(x->dtype),
		               ir_dtype_name(y->dtype));
	if (same_numel && ir_numel(x) != ir_numel(y))
		return ev_fail(e, "input has %lld elements, output %lld",
		               (long long)ir_numel(x), (long long)ir_numel(y));
	return 0;
}

/* Element i of integer input j (pads, starts, axes, ...). */
static int64_t geti_in(const Ev *e, int j, int64_t i)
{
	return ev_geti(ev_tin(e, j)->dtype, e->in[j], i);
}

static int want_int(const Ev *e, int j)
{
	const Tensor *t = ev_tin(e, j);
	if (t && (!ev_isint(t->dtype) || t->dtype == DT_BOOL))
		return ev_fail(e, "input %d must be an integer tensor", j);
	return 0;
}

/* Dropout in inference: y = x, mask all true.  Training mode with a
 * nonzero ratio is random, which a reference cannot be. */
static int dropout(const Ev *e)
{
	const Tensor *ratio = ev_tin(e, 1), *train = ev_tin(e, 2), *mask = ev_tout(e, 1);
	double r = ratio && ir_numel(ratio) ? ir_load(ratio->dtype, e->in[1], 0) : 0.5;
	if (train && ir_numel(train) && ev_geti(train->dtype, e->in[2], 0) && r != 0)
		return ev_fail(e, "Dropout in training mode is random: not supported");
	for (int64_t i = 0; mask && i < ir_numel(mask); i++)
		ev_seti(mask->dtype, e->out[1], i, 1);
	return 0;
}

/* Identity, Dropout and the views: the bytes do not change. */
int ev_copy(const Ev *e)
{
	if (same_type(e, 1))
		return 1;
	memcpy(e->out[0], e->in[0], ir_nbytes(ev_tout(e, 0)));
	return e->n->op == OP_DROPOUT ? dropout(e) : 0;
}

static void move_all(const Ev *e, EvIter *it)
{
	const Tensor *y = ev_tout(e, 0);
	size_t es = ir_dtype_size(y->dtype);
	int64_t n = ir_numel(y);
	for (int64_t i = 0; i < n; i++, ev_iter_next(it))
		ev_move(e->out[0], i, e->in[0], it->off[0], es);
}

int ev_transpose(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	int r = x->rank, np = e->n->a.perm.n, seen = 0;
	if (same_type(e, 1))
		return 1;
	if ((np && np != r) || y->rank != r)
		return ev_fail(e, "perm has %d entries for rank %d", np, r);
	int64_t st[IR_MAXRANK];
	ev_strides(x, st);
	EvIter it;
	ev_iter_shape(&it, y, 1);
	for (int i = 0; i < r; i++) {
		int p = np ? e->n->a.perm.p[i] : r - 1 - i;
		if (p < 0 || p >= r || (seen >> p & 1) || x->dim[p] != y->dim[i])
			return ev_fail(e, "perm is not a permutation matching the output shape");
		seen |= 1 << p;
		it.st[0][i] = st[p];
	}
	move_all(e, &it);
	return 0;
}

static int concat_check(const Ev *e, const Tensor *y, int axis)
{
	int64_t total = 0;
	for (int j = 0; j < e->n->nin; j++) {
		const Tensor *t = ev_tin(e, j);
		if (!t || t->dtype != y->dtype || t->rank != y->rank)
			return ev_fail(e, "input %d is absent or differs in dtype or rank", j);
		for (int a = 0; a < y->rank; a++)
			if (a != axis && t->dim[a] != y->dim[a])
				return ev_fail(e, "input %d differs in dim %d", j, a);
		total += t->dim[axis];
	}
	if (total != y->dim[axis])
		return ev_fail(e, "inputs add up to %lld along axis %d, output has %lld",
		               (long long)total, axis, (long long)y->dim[axis]);
	return 0;
}

int ev_concat(const Ev *e)
{
	const Tensor *y = ev_tout(e, 0);
	int axis = ev_axis(e->n->a.axis.axis, y->rank);
	if (axis < 0)
		return ev_fail(e, "axis %d out of range for rank %d", e->n->a.axis.axis, y->rank);
	if (concat_check(e, y, axis))
		return 1;
	size_t es = ir_dtype_size(y->dtype);
	int64_t outer = ev_prod(y, 0, axis), inner = ev_prod(y, axis + 1, y->rank);
	char *o = e->out[0];
	for (int64_t i = 0; i < outer; i++)
		for (int j = 0; j < e->n->nin; j++) {
			size_t chunk = (size_t)(ev_tin(e, j)->dim[axis] * inner) * es;
			memcpy(o, (const char *)e->in[j] + (size_t)i * chunk, chunk);
			o += chunk;
		}
	return 0;
}

/* ---- Pad ---- */

/* Source coordinate of c in a dim of n, or -1 for the constant. */
static int64_t pad_src(PadMode mode, int64_t c, int64_t n)
{
	if (c >= 0 && c < n)
		return c;
	if (mode == PADMODE_CONSTANT)
		return -1;
	if (mode == PADMODE_EDGE || n == 1)
		return c < 0 ? 0 : n - 1;
	/* reflect (numpy 'reflect': the edge is not repeated), period 2(n-1) */
	int64_t p = 2 * (n - 1);
	c %= p;
	c = c < 0 ? c + p : c;
	return c < n ? c : p - c;
}

/* The fill value as the bytes of x's dtype (zero when absent). */
static void pad_value(const Ev *e, DType dt, char *val)
{
	const Tensor *v = ev_tin(e, 2);
	memset(val, 0, 8);
	if (!v || !ir_numel(v))
		return;
	if (v->dtype == dt)
		memcpy(val, e->in[2], ir_dtype_size(dt));
	else if (ev_isint(v->dtype))
		ev_seti(dt, val, 0, ev_geti(v->dtype, e->in[2], 0));
	else
		ev_setf(dt, val, 0, ir_load(v->dtype, e->in[2], 0));
}

static int pad_check(const Ev *e, const Tensor *x, const Tensor *y, int64_t *pb)
{
	int r = x->rank;
	if (same_type(e, 0) || want_int(e, 1))
		return 1;
	if (y->rank != r || ir_numel(ev_tin(e, 1)) != 2 * r)
		return ev_fail(e, "pads must have 2*rank = %d entries", 2 * r);
	for (int a = 0; a < r; a++) {
		pb[a] = geti_in(e, 1, a);
		if (x->dim[a] + pb[a] + geti_in(e, 1, r + a) != y->dim[a])
			return ev_fail(e, "pads do not give the output shape in dim %d", a);
		if (x->dim[a] == 0 && y->dim[a] && e->n->a.pad.mode != PADMODE_CONSTANT)
			return ev_fail(e, "cannot reflect or edge-pad an empty dim");
	}
	return 0;
}

/* Negative pads crop, as the spec allows. */
int ev_pad(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	int64_t pb[IR_MAXRANK], st[IR_MAXRANK];
	if (pad_check(e, x, y, pb))
		return 1;
	char val[8];
	pad_value(e, x->dtype, val);
	ev_strides(x, st);
	size_t es = ir_dtype_size(x->dtype);
	int64_t n = ir_numel(y);
	EvIter it;
	ev_iter_shape(&it, y, 0);
	for (int64_t i = 0; i < n; i++, ev_iter_next(&it)) {
		int64_t off = 0;
		for (int a = 0; a < x->rank && off >= 0; a++) {
			int64_t c = pad_src(e->n->a.pad.mode, it.idx[a] - pb[a], x->dim[a]);
			off = c < 0 ? -1 : off + c * st[a];
		}
		if (off < 0)
			ev_move(e->out[0], i, val, 0, es);
		else
			ev_move(e->out[0], i, e->in[0], off, es);
	}
	return 0;
}

/* ---- Slice, Gather, Expand, Tile ---- */

/* Clamped first index along a dim of n, as the spec clamps starts. */
static int64_t slice_start(int64_t s, int64_t step, int64_t n)
{
	s = s < 0 ? s + n : s;
	if (step > 0)
		return s < 0 ? 0 : s > n ? n : s;
	return s < 0 ? 0 : s > n - 1 ? n - 1 : s;
}

/* One sliced axis j of the inputs: set its stride and start offset. */
static int slice_axis(const Ev *e, const Tensor *x, const Tensor *y, int64_t j,
                      const int64_t *st, EvIter *it)
{
	const Tensor *tax = ev_tin(e, 3), *tst = ev_tin(e, 4);
	int64_t av = tax ? geti_in(e, 3, j) : j;
	int64_t step = tst ? geti_in(e, 4, j) : 1;
	if (av < -x->rank || av >= x->rank || step == 0)
		return ev_fail(e, "axis %lld out of range or zero step", (long long)av);
	int a = ev_axis((int)av, x->rank);
	int64_t s = slice_start(geti_in(e, 1, j), step, x->dim[a]);
	int64_t last = s + (y->dim[a] - 1) * step;
	if (y->dim[a] && (s < 0 || s >= x->dim[a] || last < 0 || last >= x->dim[a]))
		return ev_fail(e, "output dim %d runs outside the input", a);
	it->st[0][a] = step * st[a];
	it->off[0] += s * st[a];
	return 0;
}

int ev_slice(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	int64_t ns = ir_numel(ev_tin(e, 1)), st[IR_MAXRANK];
	if (same_type(e, 0) || want_int(e, 1) || want_int(e, 3) || want_int(e, 4))
		return 1;
	if (y->rank != x->rank || (ev_tin(e, 3) && ir_numel(ev_tin(e, 3)) != ns) ||
	    (ev_tin(e, 4) && ir_numel(ev_tin(e, 4)) != ns))
		return ev_fail(e, "starts, axes and steps must have one length");
	ev_strides(x, st);
	EvIter it;
	ev_iter_shape(&it, y, 1);
	for (int a = 0; a < x->rank; a++) {
		it.st[0][a] = st[a];
		if (y->dim[a] > x->dim[a])
			return ev_fail(e, "output dim %d is larger than the input's", a);
	}
	for (int64_t j = 0; j < ns; j++)
		if (slice_axis(e, x, y, j, st, &it))
			return 1;
	move_all(e, &it);
	return 0;
}

/* y = take(x, idx, axis): negative indices count from the end. */
int ev_gather(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *ti = ev_tin(e, 1), *y = ev_tout(e, 0);
	int axis = ev_axis(e->n->a.axis.axis, x->rank);
	if (same_type(e, 0) || want_int(e, 1))
		return 1;
	if (axis < 0)
		return ev_fail(e, "axis %d out of range for rank %d", e->n->a.axis.axis, x->rank);
	int64_t outer = ev_prod(x, 0, axis), dim = x->dim[axis];
	int64_t inner = ev_prod(x, axis + 1, x->rank), ni = ir_numel(ti);
	if (ir_numel(y) != outer * ni * inner)
		return ev_fail(e, "output shape does not match input and indices");
	size_t es = ir_dtype_size(x->dtype), chunk = (size_t)inner * es;
	for (int64_t j = 0; j < ni; j++) {
		int64_t k = ev_geti(ti->dtype, e->in[1], j);
		k = k < 0 ? k + dim : k;
		if (k < 0 || k >= dim)
			return ev_fail(e, "index %lld out of range [-%lld, %lld)",
			               (long long)ev_geti(ti->dtype, e->in[1], j), (long long)dim, (long long)dim);
		for (int64_t o = 0; o < outer; o++)
			memcpy((char *)e->out[0] + (size_t)((o * ni + j) * inner) * es,
			       (const char *)e->in[0] + (size_t)((o * dim + k) * inner) * es, chunk);
	}
	return 0;
}

/* Broadcast x to the output shape (the shape input only decided it). */
int ev_expand(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	EvIter it;
	if (same_type(e, 0))
		return 1;
	if (ev_iter_bcast(&it, y, 1, &x))
		return ev_fail(e, "input does not broadcast to the output shape");
	move_all(e, &it);
	return 0;
}

/* Each output dim a of r*n splits into (r, n): the repeat (stride 0) and
 * the input coordinate; row-major order over the split shape is the
 * output's order. */
int ev_tile(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	int64_t st[IR_MAXRANK];
	if (same_type(e, 0))
		return 1;
	if (y->rank != x->rank)
		return ev_fail(e, "output rank %d differs from input rank %d", y->rank, x->rank);
	ev_strides(x, st);
	EvIter it;
	memset(&it, 0, sizeof it);
	it.rank = 2 * x->rank;
	it.nop = 1;
	for (int a = 0; a < x->rank; a++) {
		int64_t n = x->dim[a];
		if (n ? y->dim[a] % n : y->dim[a])
			return ev_fail(e, "output dim %d is not a multiple of the input's", a);
		it.dim[2 * a] = n ? y->dim[a] / n : 0;
		it.dim[2 * a + 1] = n;
		it.st[0][2 * a + 1] = st[a];
	}
	move_all(e, &it);
	return 0;
}

/* ---- shape arithmetic ---- */

/* Shape (dims [start, end) of x, opset 15) and Size; x's data is unused. */
int ev_shape(const Ev *e)
{
	const Node *n = e->n;
	const Tensor *y = ev_tout(e, 0);
	if (n->nin < 1 || n->in[0] < 0)
		return ev_fail(e, "input 0 is absent");
	const Tensor *x = &e->g->tensor[n->in[0]];
	if (!ev_isint(y->dtype) && !ev_isfloat(y->dtype))
		return ev_fail(e, "output dtype %s", ir_dtype_name(y->dtype));
	if (n->op == OP_SIZE) {
		if (ir_numel(y) != 1)
			return ev_fail(e, "output must be a scalar");
		ev_seti(y->dtype, e->out[0], 0, ir_numel(x));
		return 0;
	}
	int s = n->a.shape.start;
	s = s < 0 ? s + x->rank : s;
	s = s < 0 ? 0 : s > x->rank ? x->rank : s;
	int64_t cnt = ir_numel(y);
	if (y->rank != 1 || s + cnt > x->rank)
		return ev_fail(e, "output has %lld dims of a rank %d input from %d",
		               (long long)cnt, x->rank, s);
	for (int64_t i = 0; i < cnt; i++)
		ev_seti(y->dtype, e->out[0], i, x->dim[s + i]);
	return 0;
}

/* float -> integer truncates toward zero and saturates (NaN -> 0);
 * integer -> narrower integer wraps (two's complement); -> bool is != 0. */
int ev_cast(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	if (ir_numel(x) != ir_numel(y))
		return ev_fail(e, "input and output differ in size");
	if ((!ev_isint(x->dtype) && !ev_isfloat(x->dtype)) ||
	    (!ev_isint(y->dtype) && !ev_isfloat(y->dtype)))
		return ev_fail(e, "cannot cast %s to %s", ir_dtype_name(x->dtype), ir_dtype_name(y->dtype));
	int64_t n = ir_numel(x);
	for (int64_t i = 0; i < n; i++) {
		if (ev_isint(x->dtype))
			ev_seti(y->dtype, e->out[0], i, ev_geti(x->dtype, e->in[0], i));
		else
			ev_setf(y->dtype, e->out[0], i, ir_load(x->dtype, e->in[0], i));
	}
	return 0;
}

/* Filled with cast.value in the output's dtype (the frontend set it from
 * 'to'). */
int ev_constofshape(const Ev *e)
{
	const Tensor *y = ev_tout(e, 0);
	double v = e->n->a.cast.value;
	if (!ev_isint(y->dtype) && !ev_isfloat(y->dtype))
		return ev_fail(e, "output dtype %s", ir_dtype_name(y->dtype));
	int64_t n = ir_numel(y);
	for (int64_t i = 0; i < n; i++)
		ev_setf(y->dtype, e->out[0], i, v);
	return 0;
}

/* y[i] = start + i * delta, for as many elements as the output has;
 * f32 in float, integers in int64. */
int ev_range(const Ev *e)
{
	const Tensor *ts = ev_tin(e, 0), *td = ev_tin(e, 2), *y = ev_tout(e, 0);
	if (!ir_numel(ts) || !ir_numel(td) || y->rank != 1)
		return ev_fail(e, "start and delta must be scalars, the output 1-D");
	if (ev_isint(y->dtype) && y->dtype != DT_BOOL) {
		int64_t s = ev_geti(ts->dtype, e->in[0], 0), d = ev_geti(td->dtype, e->in[2], 0);
		for (int64_t i = 0; i < y->dim[0]; i++)
			ev_seti(y->dtype, e->out[0], i, (int64_t)((uint64_t)s + (uint64_t)i * (uint64_t)d));
		return 0;
	}
	if (!ev_isfloat(y->dtype))
		return ev_fail(e, "output dtype %s", ir_dtype_name(y->dtype));
	float s = (float)ir_load(ts->dtype, e->in[0], 0), d = (float)ir_load(td->dtype, e->in[2], 0);
	for (int64_t i = 0; i < y->dim[0]; i++)
		ev_setf(y->dtype, e->out[0], i, s + (float)i * d);
	return 0;
}
