/* The integer reference evaluator's element-wise, pooling, Concat, table
 * and Softmax nodes: one function per row of the table in
 * docs/integer-semantics.md ("The integer IR"), quoted above each.
 * Notation: xv = q - zp, R(v) = potc_rescale(v, r[0]), out(v) = qe_store. */
#include <stdlib.h>

#include "qeval_impl.h"

/* ---- Add, Sub, Mul ---- */

/* Add, Sub: t_i = potc_rescale(xv_i, rin[i]); s = t_a +/- t_b in int64;
 * y = out(potc_sat_s(potc_rshift_rnd64(s, ext), 32)). */
static int32_t add_one(const QNode *q, int sub, int32_t a, int32_t b)
{
	int64_t ta = potc_rescale(a, q->rin[0].m, q->rin[0].n);
	int64_t tb = potc_rescale(b, q->rin[1].m, q->rin[1].n);
	return potc_sat_s(potc_rshift_rnd64(sub ? ta - tb : ta + tb, q->ext), 32);
}

/* Mul: p = xv_a * xv_b in int64; y = out(potc_rescale64(p, r[0])). */
static int32_t mul_one(const QNode *q, int32_t a, int32_t b)
{
	return potc_rescale64((int64_t)a * b, q->r[0].m, q->r[0].n);
}

static int binary_check(const Ev *e)
{
	const QNode *q = e->n->q;
	if (e->n->nin != 2)
		return ev_fail(e, "needs exactly 2 inputs, has %d", e->n->nin);
	if (e->n->op == OP_MUL)
		return qe_want_r(e, 1);
	if (!q->rin || q->nrin != 2)
		return ev_fail(e, "needs 2 input rescales, has %d", q->nrin);
	return 0;
}

/* numpy broadcasting as the float evaluator (ev_iter_bcast). */
int qe_binary(const Ev *e)
{
	const Tensor *to = ev_tout(e, 0), *ops[2] = {ev_tin(e, 0), ev_tin(e, 1)};
	const QNode *q = e->n->q;
	EvIter it;
	if (binary_check(e))
		return 1;
	if (ev_iter_bcast(&it, to, 2, ops))
		return ev_fail(e, "input shapes do not broadcast to the output shape");
	int32_t *a = qe_center(e, 0), *b = a ? qe_center(e, 1) : NULL;
	int64_t n = ir_numel(to);
	for (int64_t i = 0; b && i < n; i++, ev_iter_next(&it)) {
		int32_t va = a[it.off[0]], vb = b[it.off[1]];
		qe_store(e, i, e->n->op == OP_MUL ? mul_one(q, va, vb)
		                                  : add_one(q, e->n->op == OP_SUB, va, vb));
	}
	free(a);
	free(b);
	return !b;
}

/* ---- means and pools ---- */

/* The mean of a sum over cnt elements: potc_div_rnd32(R(s), cnt); s is
 * an int32 sum (callers checked), cnt = 0 (a window of pads only, not
 * counted) gives 0. */
static int32_t mean_of(const Ev *e, int64_t s, int64_t cnt)
{
	int32_t v = qe_rescale(qe_r(e, 0), s, 0);
	return cnt ? potc_div_rnd32(v, (int32_t)cnt) : 0;
}

/* Taps of output o along dim i inside the padded input [-pb, in + pe):
 * the count_include_pad count.  A ceil_mode window running past the end
 * pad counts only up to it, as the float evaluator. */
static int64_t padded_taps(const QGeom *G, int i, int64_t o)
{
	int64_t n = 0;
	for (int t = 0; t < G->w.k[i]; t++) {
		int64_t c = qe_tap(G, i, o, t);
		n += c >= -G->w.pb[i] && c < G->w.in[i] + G->w.pe[i];
	}
	return n;
}

/* Sum of xv over the real (unpadded) elements of output o's window; *n
 * gets their count, *over is set when a partial sum leaves int32. */
static int64_t win_sum(const QGeom *G, const int32_t *x, const int64_t *o, int64_t *n, int *over)
{
	const WinGeom *W = &G->w;
	int64_t s = 0;
	*n = 0;
	for (int a = 0; a < W->k[0]; a++) {
		int64_t i0 = qe_tap(G, 0, o[0], a);
		for (int b = 0; qe_inside(G, 0, i0) && b < W->k[1]; b++) {
			int64_t i1 = qe_tap(G, 1, o[1], b);
			for (int f = 0; qe_inside(G, 1, i1) && f < W->k[2]; f++) {
				int64_t i2 = qe_tap(G, 2, o[2], f);
				if (!qe_inside(G, 2, i2))
					continue;
				s += x[(i0 * W->in[1] + i1) * W->in[2] + i2];
				*over |= qe_out32(s);
				++*n;
			}
		}
	}
	return s;
}

/* AveragePool: s = sum xv over the window (a pad counts in cnt when
 * count_include_pad, never in s); y = out(potc_div_rnd32(R(s), cnt)). */
static int avgpool_run(const Ev *e, const QGeom *G, const int32_t *xv, int64_t planes)
{
	int64_t o[3], i = 0, n;
	for (int64_t p = 0; p < planes; p++)
		for (o[0] = 0; o[0] < G->w.out[0]; o[0]++)
			for (o[1] = 0; o[1] < G->w.out[1]; o[1]++)
				for (o[2] = 0; o[2] < G->w.out[2]; o[2]++, i++) {
					int over = 0;
					int64_t s = win_sum(G, xv + p * G->insz, o, &n, &over);
					if (over)
						return qe_overflow(e, s, i);
					if (e->n->a.win.incl_pad)
						n = padded_taps(G, 0, o[0]) * padded_taps(G, 1, o[1]) *
						    padded_taps(G, 2, o[2]);
					qe_store(e, i, mean_of(e, s, n));
				}
	return 0;
}

int qe_avgpool(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	QGeom G;
	if (qe_geom(e, x, y, &G) || qe_want_r(e, 1))
		return 1;
	if (x->dim[0] != y->dim[0] || x->dim[1] != y->dim[1])
		return ev_fail(e, "batch or channel count differs between input and output");
	int32_t *xv = qe_center(e, 0);
	int bad = !xv || avgpool_run(e, &G, xv, x->dim[0] * x->dim[1]);
	free(xv);
	return bad;
}

/* GlobalAveragePool: as AveragePool over the whole plane, cnt = its size.
 * GlobalMaxPool: y = out(R(max q - zp_x)) (max xv: zp is per tensor). */
static int globalpool_run(const Ev *e, const int32_t *xv, int64_t planes, int64_t sz)
{
	int max = e->n->op == OP_GMAXPOOL;
	for (int64_t p = 0; p < planes; p++, xv += sz) {
		int64_t s = max ? xv[0] : 0;
		int over = 0;
		for (int64_t i = 0; i < sz; i++) {
			if (max)
				s = xv[i] > s ? xv[i] : s;
			else
				s += xv[i], over |= qe_out32(s);
		}
		if (over)
			return qe_overflow(e, s, p);
		qe_store(e, p, max ? qe_rescale(qe_r(e, 0), s, 0) : mean_of(e, s, sz));
	}
	return 0;
}

int qe_globalpool(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	if (x->rank < 2 || ir_numel(y) != x->dim[0] * x->dim[1])
		return ev_fail(e, "input must be [N, C, ...] and output [N, C, 1, ...]");
	int64_t sz = ev_prod(x, 2, x->rank);
	if (sz < 1 || sz > INT32_MAX)
		return ev_fail(e, "cannot average a plane of %lld elements", (long long)sz);
	if (qe_want_r(e, 1))
		return 1;
	int32_t *xv = qe_center(e, 0);
	int bad = !xv || globalpool_run(e, xv, x->dim[0] * x->dim[1], sz);
	free(xv);
	return bad;
}

/* ReduceMean: s = sum xv over the reduced elements (int32);
 * y = out(potc_div_rnd32(R(s), cnt)), cnt = elements per output. */
static int reduce_run(const Ev *e, EvIter *it, const int32_t *xv, int64_t nx, int64_t ny)
{
	int64_t *s = calloc((size_t)(ny ? ny : 1), sizeof *s);
	int over = 0;
	if (!s)
		return ev_fail(e, "out of memory");
	for (int64_t i = 0; i < nx; i++, ev_iter_next(it)) {
		s[it->off[0]] += xv[i];
		over |= qe_out32(s[it->off[0]]);
	}
	for (int64_t o = 0; !over && o < ny; o++)
		qe_store(e, o, mean_of(e, s[o], nx / ny));
	free(s);
	return over ? ev_fail(e, "accumulator overflow: a ReduceMean sum leaves int32") : 0;
}

/* The axes mask as the float evaluator (ev_reduce_axes); keepdims only
 * changes the output's shape, not its element order. */
int qe_reducemean(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	char mask[IR_MAXRANK];
	EvIter it;
	if (ev_reduce_axes(e, x, mask) || qe_want_r(e, 1))
		return 1;
	/* Output strides over the kept dims; a reduced dim has stride 0. */
	ev_iter_shape(&it, x, 1);
	int64_t ny = 1, nx = ir_numel(x);
	for (int a = x->rank - 1; a >= 0; a--) {
		it.st[0][a] = mask[a] ? 0 : ny;
		ny *= mask[a] ? 1 : x->dim[a];
	}
	if (ny != ir_numel(y) || nx / (ny ? ny : 1) > INT32_MAX)
		return ev_fail(e, "output has %lld elements, the reduction gives %lld",
		               (long long)ir_numel(y), (long long)ny);
	int32_t *xv = qe_center(e, 0);
	int bad = !xv || reduce_run(e, &it, xv, nx, ny);
	free(xv);
	return bad;
}

/* ---- Concat ---- */

/* Element of input j: y = out(potc_rescale(xv, rin[j])).  Input j fills
 * columns [at, at + dim_j) of the axis in every outer slice. */
static int concat_one(const Ev *e, int j, int64_t outer, int64_t inner, int64_t at)
{
	const Tensor *x = ev_tin(e, j), *y = ev_tout(e, 0);
	int ax = ev_axis(e->n->a.axis.axis, y->rank);
	int64_t chunk = x->dim[ax] * inner, ystride = y->dim[ax] * inner;
	Rescale r = e->n->q->rin[j];
	int32_t *xv = qe_center(e, j);
	for (int64_t o = 0; xv && o < outer; o++)
		for (int64_t k = 0; k < chunk; k++)
			qe_store(e, o * ystride + at * inner + k, potc_rescale(xv[o * chunk + k], r.m, r.n));
	free(xv);
	return !xv;
}

int qe_concat(const Ev *e)
{
	const Tensor *y = ev_tout(e, 0);
	int ax = ev_axis(e->n->a.axis.axis, y->rank), nin = e->n->nin;
	if (ax < 0)
		return ev_fail(e, "axis %d out of range for rank %d", e->n->a.axis.axis, y->rank);
	if (!e->n->q->rin || e->n->q->nrin != nin)
		return ev_fail(e, "has %d input rescales for %d inputs", e->n->q->nrin, nin);
	int64_t outer = ev_prod(y, 0, ax), inner = ev_prod(y, ax + 1, y->rank), at = 0;
	for (int j = 0; j < nin; j++) {
		const Tensor *x = ev_tin(e, j);
		if (!x || x->rank != y->rank || ir_numel(x) != outer * x->dim[ax] * inner)
			return ev_fail(e, "input %d does not fit the output's shape", j);
		at += x->dim[ax];
	}
	if (at != y->dim[ax])
		return ev_fail(e, "inputs give %lld along the axis, the output has %lld",
		               (long long)at, (long long)y->dim[ax]);
	at = 0;
	for (int j = 0; j < nin; at += ev_tin(e, j)->dim[ax], j++)
		if (concat_one(e, j, outer, inner, at))
			return 1;
	return 0;
}

/* ---- unary: a table, or Relu / Clip ---- */

/* y = lut[q - lut_lo]: the entries are final outputs (already out()), so
 * each must lie in [lo, hi]. */
static int unary_lut(const Ev *e, const Tensor *x, const Tensor *y)
{
	const QNode *q = e->n->q;
	int64_t n = ir_numel(y);
	if (!qe_intdt(x->dtype))
		return ev_fail(e, "input is %s, not a quantized integer", ir_dtype_name(x->dtype));
	for (int64_t i = 0; i < n; i++) {
		int64_t k = ev_geti(x->dtype, e->in[0], i) - q->lut_lo;
		if (k < 0 || k >= q->nlut)
			return ev_fail(e, "input %lld is outside the table [%ld, %ld]", (long long)(k + q->lut_lo),
			               (long)q->lut_lo, (long)(q->lut_lo + q->nlut - 1));
		if (q->lut[k] < q->lo || q->lut[k] > q->hi)
			return ev_fail(e, "table entry %lld = %ld is outside [%ld, %ld]", (long long)k,
			               (long)q->lut[k], (long)q->lo, (long)q->hi);
		ev_seti(y->dtype, e->out[0], i, q->lut[k]);
	}
	return 0;
}

/* With a table: unary_lut.  Relu, Clip: y = out(R(xv)), the thresholds
 * are in lo and hi (Clip's min and max inputs are not read). */
int qe_unary(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	if (ir_numel(x) != ir_numel(y))
		return ev_fail(e, "input and output differ in size");
	if (e->n->q->lut)
		return unary_lut(e, x, y);
	if (qe_want_r(e, 1))
		return 1;
	int32_t *xv = qe_center(e, 0);
	int64_t n = ir_numel(y);
	for (int64_t i = 0; xv && i < n; i++)
		qe_store(e, i, qe_rescale(qe_r(e, 0), xv[i], 0));
	free(xv);
	return !xv;
}

/* ---- Softmax ---- */

/* E = lut[d] for d = max q - q >= 0: round(exp(-d * scale_x) * 2^30). */
static int softmax_e(const Ev *e, int64_t d, int64_t *E)
{
	const QNode *q = e->n->q;
	if (d >= q->nlut)
		return ev_fail(e, "exp table of %d entries has no entry %lld", q->nlut, (long long)d);
	*E = q->lut[d];
	if (*E < 0 || *E > (1 << 30))
		return ev_fail(e, "exp table entry %lld = %lld is outside [0, 2^30]", (long long)d,
		               (long long)*E);
	return 0;
}

/* One slice of len elements spaced inner apart from element base:
 * m = max q; E_i = lut[m - q_i]; S = sum E_i (int64);
 * p_i = (E_i * 2^30 + S/2) / S (Q30, in [0, 2^30]); y = out(R(p_i)). */
static int softmax_row(const Ev *e, int64_t base, int64_t len, int64_t inner)
{
	DType xt = ev_tin(e, 0)->dtype;
	const void *x = e->in[0];
	int64_t m = ev_geti(xt, x, base), S = 0, E;
	for (int64_t i = 1; i < len; i++)
		m = ev_geti(xt, x, base + i * inner) > m ? ev_geti(xt, x, base + i * inner) : m;
	for (int64_t i = 0; i < len; i++) {
		if (softmax_e(e, m - ev_geti(xt, x, base + i * inner), &E))
			return 1;
		S += E;
	}
	if (S <= 0)
		return ev_fail(e, "exp table sums to %lld over a slice", (long long)S);
	for (int64_t i = 0; i < len; i++) {
		softmax_e(e, m - ev_geti(xt, x, base + i * inner), &E);
		int32_t p = (int32_t)((E * ((int64_t)1 << 30) + S / 2) / S);
		qe_store(e, base + i * inner, qe_rescale(qe_r(e, 0), p, 0));
	}
	return 0;
}

/* The slices as the float evaluator: legacy (opset < 13) flattens the
 * dims from axis on into one slice, else the single dim axis. */
int qe_softmax(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	const QNode *q = e->n->q;
	int r = x->rank, legacy = e->n->a.axis.legacy;
	int axis = r == 0 ? 0 : ev_axis(e->n->a.axis.axis, r);
	if (axis < 0 || ir_numel(x) != ir_numel(y))
		return ev_fail(e, "axis %d out of range for rank %d", e->n->a.axis.axis, r);
	if (!qe_intdt(x->dtype))
		return ev_fail(e, "input is %s, not a quantized integer", ir_dtype_name(x->dtype));
	if (!q->lut || q->lut_lo != 0)
		return ev_fail(e, "needs an exp table indexed from 0");
	if (qe_want_r(e, 1))
		return 1;
	int64_t outer = ev_prod(x, 0, axis);
	int64_t len = legacy ? ev_prod(x, axis, r) : r ? x->dim[axis] : 1;
	int64_t inner = legacy || !r ? 1 : ev_prod(x, axis + 1, r);
	for (int64_t o = 0; len > 0 && o < outer; o++)
		for (int64_t i = 0; i < inner; i++)
			if (softmax_row(e, o * len * inner + i, len, inner))
				return 1;
	return 0;
}
