/* Reference kernels for the structural ops of ops.def: Split, DepthToSpace,
 * SpaceToDepth, GatherElements, GatherND, OneHot, Trilu (byte movers, any
 * dtype), and ConvTranspose, InstanceNormalization, LayerNormalization,
 * LRN, Resize (float; Resize's nearest mode moves bytes of any dtype).
 *
 * Float order of operations, which backends/c/kernels_struct.c repeats:
 *   - ConvTranspose: per output point a sum from 0 over input channels of
 *     the group, then kernel taps in row-major order, then + bias;
 *   - InstanceNormalization, LayerNormalization: mean = (sum of x in
 *     order) / n, var = (sum of (x - mean)^2 in order) / n, then
 *     Instance: (x - mean) / sqrt(var + eps) * scale + b,
 *     Layer:    (x - mean) * (1 / sqrt(var + eps)) * scale + b
 *     (LayerNormalization's function body: Mean, D, Var, InvStdDev);
 *   - LRN: sum of x^2 over the channel window in channel order, then
 *     x / pow(bias + (alpha / size) * sum, beta);
 *   - Resize linear / cubic: per output point a sum from 0 over the taps in
 *     row-major order of (w_0 * w_1 * ... left to right) * x. */
#include <math.h>
#include <stdlib.h>

#include "eval_impl.h"

/* ---- Split ---- */

/* Output j takes the next dim[axis] of x along axis. */
static int split(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0);
	int axis = ev_axis(e->n->a.axis.axis, x->rank);
	if (axis < 0)
		return ev_fail(e, "axis %d out of range for rank %d", e->n->a.axis.axis, x->rank);
	size_t es = ir_dtype_size(x->dtype);
	int64_t outer = ev_prod(x, 0, axis), inner = ev_prod(x, axis + 1, x->rank), at = 0;
	for (int j = 0; j < e->n->nout; j++) {
		if (e->n->out[j] < 0)
			return ev_fail(e, "internal: output %d has no tensor", j);
		const Tensor *y = &e->g->tensor[e->n->out[j]];
		if (y->dtype != x->dtype || y->rank != x->rank || at + y->dim[axis] > x->dim[axis])
			return ev_fail(e, "output %d does not fit the input", j);
		size_t chunk = (size_t)(y->dim[axis] * inner) * es;
		for (int64_t o = 0; e->out[j] && o < outer; o++)
			memcpy((char *)e->out[j] + (size_t)o * chunk,
			       (const char *)e->in[0] + ((size_t)(o * x->dim[axis] + at) * (size_t)inner) * es, chunk);
		at += y->dim[axis];
	}
	return 0;
}

/* ---- DepthToSpace, SpaceToDepth ---- */

/* The op as a copy along a 6-D walk of y in row-major order: dims and the
 * matching strides into x.  Shared in shape with the C backend's nest. */
static int depthspace_walk(const Ev *e, int64_t *dim, int64_t *st)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	int64_t b = e->n->a.d2s.block;
	if (x->rank != 4 || y->rank != 4 || b < 1 || ir_numel(x) != ir_numel(y) || x->dtype != y->dtype)
		return ev_fail(e, "needs 4-D input and output of one size and a positive blocksize");
	int64_t N = x->dim[0], C = x->dim[1], H = x->dim[2], W = x->dim[3];
	if (e->n->op == OP_DEPTHTOSPACE) {
		int64_t Cy = C / (b * b), hw = H * W;
		/* y[n, c, h*b+i, w*b+j] walked as [N, Cy, H, b, W, b] */
		int64_t d[6] = {N, Cy, H, b, W, b};
		int64_t crd[6] = {C * hw, b * b * hw, W, b * hw, 1, hw};
		int64_t dcr[6] = {C * hw, hw, W, b * Cy * hw, 1, Cy * hw};
		memcpy(dim, d, sizeof d);
		memcpy(st, e->n->a.d2s.crd ? crd : dcr, sizeof d);
	} else {
		/* y[n, (i*b+j)*C+c, h, w] = x[n, c, h*b+i, w*b+j], walked as [N, b, b, C, H/b, W/b] */
		int64_t d[6] = {N, b, b, C, H / b, W / b};
		int64_t s[6] = {C * H * W, W, 1, H * W, b * W, b};
		memcpy(dim, d, sizeof d);
		memcpy(st, s, sizeof s);
	}
	return 0;
}

static int depthspace(const Ev *e)
{
	int64_t dim[6], st[6];
	if (depthspace_walk(e, dim, st))
		return 1;
	EvIter it;
	ev_iter_shape(&it, ev_tout(e, 0), 1);
	it.rank = 6;
	for (int a = 0; a < 6; a++) {
		it.dim[a] = dim[a];
		it.st[0][a] = st[a];
	}
	const Tensor *y = ev_tout(e, 0);
	size_t es = ir_dtype_size(y->dtype);
	int64_t n = ir_numel(y);
	for (int64_t i = 0; i < n; i++, ev_iter_next(&it))
		ev_move(e->out[0], i, e->in[0], it.off[0], es);
	return 0;
}

/* ---- GatherElements, GatherND ---- */

/* Index v along a dim of size n, negative counting from the end; -1 if
 * out of range. */
static int64_t wrap(int64_t v, int64_t n)
{
	v = v < 0 ? v + n : v;
	return v >= 0 && v < n ? v : -1;
}

static int gatherelem(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *ti = ev_tin(e, 1), *y = ev_tout(e, 0);
	int axis = ev_axis(e->n->a.axis.axis, x->rank);
	if (axis < 0 || ti->rank != x->rank || y->dtype != x->dtype || !ev_isint(ti->dtype))
		return ev_fail(e, "bad axis, indices or output");
	int64_t xst[IR_MAXRANK];
	ev_strides(x, xst);
	EvIter it;
	ev_iter_shape(&it, ti, 1);
	for (int a = 0; a < x->rank; a++)
		it.st[0][a] = a == axis ? 0 : xst[a];
	size_t es = ir_dtype_size(x->dtype);
	int64_t n = ir_numel(ti);
	for (int64_t i = 0; i < n; i++, ev_iter_next(&it)) {
		int64_t k = wrap(ev_geti(ti->dtype, e->in[1], i), x->dim[axis]);
		if (k < 0)
			return ev_fail(e, "index %lld out of range for axis %d of size %lld",
			               (long long)ev_geti(ti->dtype, e->in[1], i), axis, (long long)x->dim[axis]);
		ev_move(e->out[0], i, e->in[0], it.off[0] + k * xst[axis], es);
	}
	return 0;
}

/* For batch b and tuple t: the slab of x at x[b..., idx tuple, :]. */
static int gathernd(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *ti = ev_tin(e, 1), *y = ev_tout(e, 0);
	int bd = e->n->a.norm.batch, q = ti->rank;
	int64_t m = q ? ti->dim[q - 1] : 0;
	if (y->dtype != x->dtype || !ev_isint(ti->dtype) || bd < 0 || m < 1 || bd + m > x->rank)
		return ev_fail(e, "bad batch_dims, indices or output");
	int64_t xst[IR_MAXRANK];
	ev_strides(x, xst);
	int64_t nb = ev_prod(x, 0, bd), slab = ev_prod(x, bd + (int)m, x->rank);
	int64_t nt = ev_prod(ti, bd, q - 1), bstride = bd ? xst[bd - 1] : 0;
	size_t es = ir_dtype_size(x->dtype);
	for (int64_t b = 0; b < nb; b++)
		for (int64_t t = 0; t < nt; t++) {
			int64_t off = b * bstride, row = (b * nt + t) * m;
			for (int64_t k = 0; k < m; k++) {
				int64_t v = ev_geti(ti->dtype, e->in[1], row + k);
				int64_t c = wrap(v, x->dim[bd + k]);
				if (c < 0)
					return ev_fail(e, "index %lld out of range for dim %lld", (long long)v,
					               (long long)(bd + k));
				off += c * xst[bd + k];
			}
			memcpy((char *)e->out[0] + (size_t)((b * nt + t) * slab) * es,
			       (const char *)e->in[0] + (size_t)off * es, (size_t)slab * es);
		}
	return 0;
}

/* ---- OneHot, Trilu ---- */

/* y[o, j, i] = values[idx[o, i] == j] with idx wrapped by depth; an index
 * out of range gives a row of 'off'. */
static int onehot(const Ev *e)
{
	const Tensor *ti = ev_tin(e, 0), *td = ev_tin(e, 1), *tv = ev_tin(e, 2), *y = ev_tout(e, 0);
	int axis = ev_axis(e->n->a.axis.axis, y->rank);
	int64_t depth = ev_geti(td->dtype, e->in[1], 0);
	if (axis < 0 || y->dtype != tv->dtype || ir_numel(tv) != 2 || y->dim[axis] != depth)
		return ev_fail(e, "bad axis, depth or values");
	int64_t outer = ev_prod(y, 0, axis), inner = ev_prod(y, axis + 1, y->rank);
	size_t es = ir_dtype_size(y->dtype);
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++) {
			int64_t k = wrap(ev_geti(ti->dtype, e->in[0], o * inner + i), depth);
			for (int64_t j = 0; j < depth; j++)
				ev_move(e->out[0], (o * depth + j) * inner + i, e->in[2], j == k, es);
		}
	return 0;
}

static int trilu(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *tk = ev_tin(e, 1), *y = ev_tout(e, 0);
	if (x->rank < 2 || y->dtype != x->dtype || ir_numel(x) != ir_numel(y))
		return ev_fail(e, "needs rank >= 2 and matching output");
	int64_t k = tk && ir_numel(tk) ? ev_geti(tk->dtype, e->in[1], 0) : 0;
	int64_t R = x->dim[x->rank - 2], C = x->dim[x->rank - 1], n = ir_numel(x);
	size_t es = ir_dtype_size(x->dtype);
	int up = e->n->a.trilu.upper;
	for (int64_t i = 0; i < n; i++) {
		int64_t r = i / C % R, c = i % C;
		int keep = up ? c - r >= k : c - r <= k;
		if (keep)
			ev_move(e->out[0], i, e->in[0], i, es);
		else
			memset((char *)e->out[0] + (size_t)i * es, 0, es);
	}
	return 0;
}

/* ---- ConvTranspose ---- */

/* Spatial dims right-aligned into 3 (leading dims of size 1). */
typedef struct {
	int64_t in[3], out[3], k[3], s[3], d[3], pb[3];
	int64_t insz, outsz, ksz;
} Tgeom;

static int tgeom(const Ev *e, const Tensor *x, const Tensor *y, Tgeom *G)
{
	const Window *w = &e->n->a.win;
	int nsp = w->nsp;
	if (nsp < 1 || nsp > 3 || x->rank != nsp + 2 || y->rank != nsp + 2)
		return ev_fail(e, "needs 1 to 3 spatial dims");
	for (int i = 0; i < 3; i++) {
		int j = i - (3 - nsp);
		G->in[i] = j < 0 ? 1 : x->dim[2 + j];
		G->out[i] = j < 0 ? 1 : y->dim[2 + j];
		G->k[i] = j < 0 ? 1 : w->k[j];
		G->s[i] = j < 0 ? 1 : w->s[j];
		G->d[i] = j < 0 ? 1 : w->d[j];
		G->pb[i] = j < 0 ? 0 : w->pad[j];
	}
	G->insz = G->in[0] * G->in[1] * G->in[2];
	G->outsz = G->out[0] * G->out[1] * G->out[2];
	G->ksz = G->k[0] * G->k[1] * G->k[2];
	return 0;
}

/* Input coordinate feeding output o through tap k of dim a, or -1. */
static int64_t tsrc(const Tgeom *G, int a, int64_t o, int64_t k)
{
	int64_t i = o + G->pb[a] - k * G->d[a];
	if (i < 0 || i % G->s[a])
		return -1;
	i /= G->s[a];
	return i < G->in[a] ? i : -1;
}

/* One output point: channels cg of xg (one group), weights wm[c] strided
 * by wcs, taps in row-major order. */
static float convt_point(const Tgeom *G, const float *xg, const float *wm, int64_t cg, int64_t wcs,
                         const int64_t *o)
{
	float acc = 0;
	for (int64_t c = 0; c < cg; c++)
		for (int64_t k0 = 0; k0 < G->k[0]; k0++) {
			int64_t i0 = tsrc(G, 0, o[0], k0);
			for (int64_t k1 = 0; i0 >= 0 && k1 < G->k[1]; k1++) {
				int64_t i1 = tsrc(G, 1, o[1], k1);
				for (int64_t k2 = 0; i1 >= 0 && k2 < G->k[2]; k2++) {
					int64_t i2 = tsrc(G, 2, o[2], k2);
					if (i2 >= 0)
						acc += xg[c * G->insz + (i0 * G->in[1] + i1) * G->in[2] + i2] *
						       wm[c * wcs + (k0 * G->k[1] + k1) * G->k[2] + k2];
				}
			}
		}
	return acc;
}

static int convtranspose(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *w = ev_tin(e, 1), *y = ev_tout(e, 0);
	Tgeom G = {0};
	if (ev_want_f32(e, 3) || tgeom(e, x, y, &G))
		return 1;
	int64_t N = x->dim[0], C = x->dim[1], M = y->dim[1], g = e->n->a.win.group;
	int64_t cg = C / g, mg = M / g;
	if (w->dim[0] != C || w->dim[1] != mg || ir_numel(w) != C * mg * G.ksz)
		return ev_fail(e, "weight shape does not match input, output and group");
	const float *xd = e->in[0], *wd = e->in[1], *bd = ev_tin(e, 2) ? e->in[2] : NULL;
	float *yd = e->out[0];
	int64_t o[3];
	for (int64_t n = 0; n < N; n++)
		for (int64_t m = 0; m < M; m++) {
			const float *xg = xd + (n * C + m / mg * cg) * G.insz;
			const float *wm = wd + (m / mg * cg * mg + m % mg) * G.ksz;
			for (o[0] = 0; o[0] < G.out[0]; o[0]++)
				for (o[1] = 0; o[1] < G.out[1]; o[1]++)
					for (o[2] = 0; o[2] < G.out[2]; o[2]++) {
						float acc = convt_point(&G, xg, wm, cg, mg * G.ksz, o);
						*yd++ = bd ? acc + bd[m] : acc;
					}
		}
	return 0;
}

/* ---- normalisations ---- */

/* Mean and variance of n floats (see the order at the top). */
static void moments(const float *x, int64_t n, float *mean, float *var)
{
	float s = 0, v = 0;
	for (int64_t i = 0; i < n; i++)
		s += x[i];
	*mean = s / (float)n;
	for (int64_t i = 0; i < n; i++) {
		float d = x[i] - *mean;
		v += d * d;
	}
	*var = v / (float)n;
}

static int instnorm(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0);
	if (ev_want_f32(e, 3) || x->rank < 2)
		return 1;
	int64_t N = x->dim[0], C = x->dim[1], sz = ev_prod(x, 2, x->rank);
	const float *xd = e->in[0], *sc = e->in[1], *bi = e->in[2];
	float *yd = e->out[0], eps = e->n->a.norm.eps;
	for (int64_t p = 0; sz && p < N * C; p++) {
		float mean, var;
		moments(xd + p * sz, sz, &mean, &var);
		float sd = sqrtf(var + eps);
		for (int64_t i = 0; i < sz; i++)
			yd[p * sz + i] = (xd[p * sz + i] - mean) / sd * sc[p % C] + bi[p % C];
	}
	return 0;
}

/* Rows of x from axis on; scale and b broadcast over all of x. */
static int layernorm(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *ts = ev_tin(e, 1), *tb = ev_tin(e, 2);
	const Tensor *ops[2] = {ts, tb ? tb : ts};
	int axis = ev_axis(e->n->a.norm.axis, x->rank);
	EvIter it;
	if (ev_want_f32(e, 3) || axis < 0 || ev_iter_bcast(&it, x, 2, ops))
		return ev_fail(e, "bad axis, or scale and bias do not broadcast to x");
	int64_t rows = ev_prod(x, 0, axis), len = ev_prod(x, axis, x->rank);
	const float *xd = e->in[0], *sc = e->in[1], *bi = tb ? e->in[2] : NULL;
	float *yd = e->out[0], *mo = ev_tout(e, 1) ? e->out[1] : NULL, *io = ev_tout(e, 2) ? e->out[2] : NULL;
	for (int64_t r = 0; len && r < rows; r++) {
		float mean, var;
		moments(xd + r * len, len, &mean, &var);
		float inv = 1 / sqrtf(var + e->n->a.norm.eps);
		for (int64_t i = r * len; i < (r + 1) * len; i++, ev_iter_next(&it)) {
			float v = (xd[i] - mean) * inv * sc[it.off[0]];
			yd[i] = bi ? v + bi[it.off[1]] : v;
		}
		if (mo)
			mo[r] = mean;
		if (io)
			io[r] = inv;
	}
	return 0;
}

/* Channels c - (size-1)/2 .. c + size/2 (ONNX's floor and ceil). */
static int lrn(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0);
	if (ev_want_f32(e, 1) || x->rank < 2)
		return 1;
	int size = e->n->a.lrn.size;
	int64_t N = x->dim[0], C = x->dim[1], sz = ev_prod(x, 2, x->rank);
	float a = e->n->a.lrn.alpha / (float)size, beta = e->n->a.lrn.beta, bias = e->n->a.lrn.bias;
	const float *xd = e->in[0];
	float *yd = e->out[0];
	for (int64_t n = 0; n < N; n++)
		for (int64_t c = 0; c < C; c++)
			for (int64_t i = 0; i < sz; i++) {
				int64_t lo = c - (size - 1) / 2, hi = c + size / 2;
				float s = 0;
				for (int64_t k = lo < 0 ? 0 : lo; k <= hi && k < C; k++) {
					float v = xd[(n * C + k) * sz + i];
					s += v * v;
				}
				int64_t at = (n * C + c) * sz + i;
				yd[at] = xd[at] / powf(bias + a * s, beta);
			}
	return 0;
}

/* ---- Resize ---- */

int ir_resize_ntap(ResizeMode m)
{
	return m == RS_CUBIC ? 4 : m == RS_LINEAR ? 2 : 1;
}

/* Scale of axis a: the scales input, else sizes / in (ONNX reference);
 * roi[0..1] its tf_crop_and_resize region. */
static double axis_scale(const Graph *g, const Node *n, int a, double *roi)
{
	const Tensor *x = &g->tensor[n->in[0]], *y = &g->tensor[n->out[0]];
	const Tensor *sc = n->nin > 2 && n->in[2] >= 0 ? &g->tensor[n->in[2]] : NULL;
	const Tensor *tr = n->nin > 1 && n->in[1] >= 0 ? &g->tensor[n->in[1]] : NULL;
	roi[0] = 0;
	roi[1] = 1;
	if (tr && tr->kind == TK_CONST && ir_numel(tr) == 2 * x->rank) {
		roi[0] = ir_get(tr, a);
		roi[1] = ir_get(tr, x->rank + a);
	}
	if (sc && sc->kind == TK_CONST && ir_numel(sc) == x->rank)
		return (double)(float)ir_get(sc, a);
	return x->dim[a] ? (double)y->dim[a] / (double)x->dim[a] : 1;
}

/* Input coordinate of output o (ONNX's reference resize, which uses the
 * unrounded output length scale * in where the spec says length_resized). */
static double resize_coord(const Attr *at, int64_t o, int64_t in, int64_t out, double s, const double *roi)
{
	double ow = s * (double)in, x = (double)o;
	switch (at->resize.coord) {
	case RS_HALF_PIXEL: return (x + 0.5) / s - 0.5;
	case RS_PYTORCH_HALF_PIXEL: return out > 1 ? (x + 0.5) / s - 0.5 : 0;
	case RS_ALIGN_CORNERS: return ow == 1 ? 0 : x * (double)(in - 1) / (ow - 1);
	case RS_ASYMMETRIC: return x / s;
	case RS_TF_HALF_PIXEL_FOR_NN: return (x + 0.5) / s;
	case RS_TF_CROP_AND_RESIZE:
		if (ow == 1)
			return (roi[1] - roi[0]) * (double)(in - 1) / 2 + roi[0] * (double)(in - 1);
		return x * (roi[1] - roi[0]) * (double)(in - 1) / (ow - 1) + roi[0] * (double)(in - 1);
	}
	return x;
}

static int64_t nearest(const Attr *at, double x, double scale)
{
	double f = floor(x), r = x - f;
	if (r == 0)
		return (int64_t)f;
	switch (at->resize.nearest) {
	case RS_ROUND_PREFER_FLOOR: return (int64_t)f + (r > 0.5);
	case RS_ROUND_PREFER_CEIL: return (int64_t)f + (r >= 0.5);
	case RS_FLOOR: return (int64_t)f;
	case RS_CEIL: return (int64_t)f + 1;
	case RS_NEAREST_SIMPLE: return scale < 1 ? (int64_t)ceil(x) : (int64_t)x;
	}
	return (int64_t)f;
}

/* Keys' cubic convolution weights for the 4 taps around a point at ratio r
 * past the second tap (ONNX's cubic_coeffs). */
static void cubic(double r, double A, double *c)
{
	double s = 1 - r;
	c[0] = ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A;
	c[1] = ((A + 2) * r - (A + 3)) * r * r + 1;
	c[2] = ((A + 2) * s - (A + 3)) * s * s + 1;
	c[3] = ((A * (s + 1) - 5 * A) * (s + 1) + 8 * A) * (s + 1) - 4 * A;
}

/* The taps of one output point: first index f and weights c[0..nt). An
 * integral x takes ratio 1 from the tap before (ONNX reference), so the
 * point falls on a tap with weight 1. */
static void taps(const Attr *at, double x, int nt, int64_t *f, double *c)
{
	double fl = floor(x), r = x - fl;
	if (r == 0) {
		fl -= 1;
		r = 1;
	}
	if (nt == 2) {
		c[0] = 1 - r;
		c[1] = r;
		*f = (int64_t)fl;
	} else {
		cubic(r, at->resize.cubic_a, c);
		*f = (int64_t)fl - 1;
	}
}

static int64_t clampi(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* Coordinates far outside the input (a huge roi) clamp before the
 * conversion to an integer, which would overflow; NaN becomes 0. */
static double clampd(double v, double n)
{
	return v != v ? 0 : v < -n - 4 ? -n - 4 : v > 2 * n + 4 ? 2 * n + 4 : v;
}

int ir_resize_axis(const Graph *g, const Node *n, int a, int64_t *idx, float *w, char *ok)
{
	const Attr *at = &n->a;
	int64_t in = g->tensor[n->in[0]].dim[a], out = g->tensor[n->out[0]].dim[a];
	int nt = ir_resize_ntap(at->resize.mode), ident = 1;
	double roi[2], s = axis_scale(g, n, a, roi), c[4];
	for (int64_t o = 0; o < out; o++) {
		double x = resize_coord(at, o, in, out, s, roi);
		ok[o] = at->resize.coord != RS_TF_CROP_AND_RESIZE || (x >= 0 && x <= (double)(in - 1));
		x = clampd(x, (double)in);
		if (nt == 1) {
			idx[o] = clampi(nearest(at, x, s), 0, in - 1);
			w[o] = 1;
			ident &= idx[o] == o && ok[o];
			continue;
		}
		int64_t f;
		double sum = 0;
		taps(at, x, nt, &f, c);
		for (int t = 0; t < nt; t++) {
			if (at->resize.exclude && (f + t < 0 || f + t >= in))
				c[t] = 0;
			sum += c[t];
		}
		for (int t = 0; t < nt; t++) {
			idx[o * nt + t] = clampi(f + t, 0, in - 1);
			w[o * nt + t] = (float)(at->resize.exclude && sum != 0 ? c[t] / sum : c[t]);
			ident &= ok[o] && (w[o * nt + t] == 0 || (w[o * nt + t] == 1 && idx[o * nt + t] == o));
		}
	}
	if (!ident || nt == 1 || in != out)
		return nt;
	for (int64_t o = 0; o < out; o++) {  /* every point on its own input: one tap */
		idx[o] = o;
		w[o] = 1;
	}
	return 1;
}

/* Per-axis tap tables of a Resize node (freed by resize_free). */
typedef struct {
	int r, nt[IR_MAXRANK];
	int64_t *idx[IR_MAXRANK];
	float *w[IR_MAXRANK];
	char *ok[IR_MAXRANK];
} Plan;

static void resize_free(Plan *p)
{
	for (int a = 0; a < p->r; a++) {
		free(p->idx[a]);
		free(p->w[a]);
		free(p->ok[a]);
	}
}

static int resize_plan(const Ev *e, const Tensor *y, Plan *p)
{
	memset(p, 0, sizeof *p);
	p->r = y->rank;
	for (int a = 0; a < y->rank; a++) {
		size_t n = (size_t)y->dim[a] + 1;
		p->idx[a] = malloc(n * 4 * sizeof(int64_t));
		p->w[a] = malloc(n * 4 * sizeof(float));
		p->ok[a] = malloc(n);
		if (!p->idx[a] || !p->w[a] || !p->ok[a]) {
			resize_free(p);
			return ev_fail(e, "out of memory");
		}
		p->nt[a] = ir_resize_axis(e->g, e->n, a, p->idx[a], p->w[a], p->ok[a]);
	}
	return 0;
}

/* Output point o (coordinates): extrapolated, a copied element (nearest)
 * or the weighted sum over the tap grid. */
static void resize_point(const Ev *e, const Plan *p, const int64_t *o, const int64_t *xst, int64_t i)
{
	const Tensor *y = ev_tout(e, 0);
	int r = p->r, t[IR_MAXRANK] = {0};
	for (int a = 0; a < r; a++)
		if (!p->ok[a][o[a]]) {
			ev_setf(y->dtype, e->out[0], i, e->n->a.resize.extrap);
			return;
		}
	if (e->n->a.resize.mode == RS_NEAREST) {
		int64_t off = 0;
		for (int a = 0; a < r; a++)
			off += p->idx[a][o[a]] * xst[a];
		ev_move(e->out[0], i, e->in[0], off, ir_dtype_size(y->dtype));
		return;
	}
	const float *x = e->in[0];
	float acc = 0;
	for (;;) {
		int64_t off = 0;
		float wp = 1;
		for (int a = 0; a < r; a++) {
			int64_t k = o[a] * p->nt[a] + t[a];
			off += p->idx[a][k] * xst[a];
			wp = a ? wp * p->w[a][k] : p->w[a][k];
		}
		acc += wp * x[off];
		int a = r - 1;
		for (; a >= 0 && ++t[a] == p->nt[a]; a--)
			t[a] = 0;
		if (a < 0)
			break;
	}
	((float *)e->out[0])[i] = acc;
}

static int resize(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	if (x->dtype != y->dtype || x->rank != y->rank || (e->n->a.resize.mode != RS_NEAREST && ev_want_f32(e, 1)))
		return ev_fail(e, "input and output differ in dtype or rank, or a float mode on %s",
		               ir_dtype_name(x->dtype));
	Plan p;
	int64_t xst[IR_MAXRANK], o[IR_MAXRANK] = {0}, n = ir_numel(y);
	if (resize_plan(e, y, &p))
		return 1;
	ev_strides(x, xst);
	for (int64_t i = 0; i < n; i++) {
		resize_point(e, &p, o, xst, i);
		for (int a = y->rank - 1; a >= 0 && ++o[a] == y->dim[a]; a--)
			o[a] = 0;
	}
	resize_free(&p);
	return 0;
}

/* ---- dispatch ---- */

int ev_struct(const Ev *e)
{
	switch (e->n->op) {
	case OP_SPLIT: return split(e);
	case OP_DEPTHTOSPACE: case OP_SPACETODEPTH: return depthspace(e);
	case OP_GATHERELEM: return gatherelem(e);
	case OP_GATHERND: return gathernd(e);
	case OP_ONEHOT: return onehot(e);
	case OP_TRILU: return trilu(e);
	case OP_CONVTRANSPOSE: return convtranspose(e);
	case OP_INSTNORM: return instnorm(e);
	case OP_LAYERNORM: return layernorm(e);
	case OP_LRN: return lrn(e);
	case OP_RESIZE: return resize(e);
	default: return ev_fail(e, "internal: %s is not a structural op", ir_opname[e->n->op]);
	}
}
