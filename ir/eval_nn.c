/* Reference kernels for the neural-network ops: Conv, Gemm, MatMul, the
 * pools, BatchNormalization, Softmax and the reductions.  All compute in
 * float32 (MaxPool moves any dtype).  Dot products accumulate in float in
 * a fixed order: input channel outermost, then kernel depth, rows,
 * columns (Conv), or k ascending (Gemm, MatMul); the bias is added last. */
#include <math.h>

#include "eval_impl.h"

/* ---- sliding windows ---- */

/* A window op's spatial geometry padded to 3 dims: 1-D and 2-D ops get
 * leading dims of size 1, so one triple loop serves every rank. */
typedef struct {
	int64_t in[3], out[3];
	int k[3], s[3], d[3];
	int pb[3], pe[3];       /* begin and end pads */
	int64_t insz, ksz;      /* elements in one input / kernel plane */
} Geom;

/* Geom is WinGeom plus the plane sizes. */
static int geom(const Ev *e, const Tensor *x, const Tensor *y, Geom *G)
{
	WinGeom w;
	char why[128];
	if (ir_window_geom(&e->n->a.win, x, y, &w, why, sizeof why))
		return ev_fail(e, "%s", why);
	for (int i = 0; i < 3; i++) {
		G->in[i] = w.in[i], G->out[i] = w.out[i];
		G->k[i] = w.k[i], G->s[i] = w.s[i], G->d[i] = w.d[i];
		G->pb[i] = w.pb[i], G->pe[i] = w.pe[i];
	}
	G->insz = G->in[0] * G->in[1] * G->in[2];
	G->ksz = (int64_t)G->k[0] * G->k[1] * G->k[2];
	return 0;
}

/* Input coordinate of output o, kernel tap t along dim i. */
static int64_t tap(const Geom *G, int i, int64_t o, int t)
{
	return o * G->s[i] - G->pb[i] + (int64_t)t * G->d[i];
}

static int inside(const Geom *G, int i, int64_t c)
{
	return c >= 0 && c < G->in[i];
}

/* ---- Conv ---- */

/* Dot product of one output point: x and w point at the group's first
 * input channel and the output channel's kernel. */
static float conv_point(const Geom *G, const float *x, const float *w, int64_t cg, const int64_t *o)
{
	float acc = 0;
	for (int64_t c = 0; c < cg; c++, x += G->insz, w += G->ksz)
		for (int a = 0; a < G->k[0]; a++) {
			int64_t i0 = tap(G, 0, o[0], a);
			for (int b = 0; inside(G, 0, i0) && b < G->k[1]; b++) {
				int64_t i1 = tap(G, 1, o[1], b);
				for (int f = 0; inside(G, 1, i1) && f < G->k[2]; f++) {
					int64_t i2 = tap(G, 2, o[2], f);
					if (inside(G, 2, i2))
						acc += x[(i0 * G->in[1] + i1) * G->in[2] + i2] *
						       w[(a * G->k[1] + b) * G->k[2] + f];
				}
			}
		}
	return acc;
}

static int conv_check(const Ev *e, const Tensor *x, const Tensor *w, const Tensor *y, const Geom *G)
{
	int grp = e->n->a.win.group;
	int64_t C = x->dim[1], M = y->dim[1];
	if (grp < 1 || C % grp || M % grp || x->dim[0] != y->dim[0])
		return ev_fail(e, "group %d does not divide %lld input and %lld output channels",
		               grp, (long long)C, (long long)M);
	if (w->rank != x->rank || w->dim[0] != M || w->dim[1] != C / grp ||
	    ev_prod(w, 2, w->rank) != G->ksz)
		return ev_fail(e, "weight shape does not match input, output and kernel");
	const Tensor *b = ev_tin(e, 2);
	if (b && ir_numel(b) != M)
		return ev_fail(e, "bias has %lld elements for %lld output channels",
		               (long long)ir_numel(b), (long long)M);
	return 0;
}

int ev_conv(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *w = ev_tin(e, 1), *y = ev_tout(e, 0);
	Geom G;
	if (ev_want_f32(e, 3) || geom(e, x, y, &G) || conv_check(e, x, w, y, &G))
		return 1;
	const float *xd = e->in[0], *wd = e->in[1], *bd = ev_tin(e, 2) ? e->in[2] : NULL;
	float *yd = e->out[0];
	int64_t N = x->dim[0], C = x->dim[1], M = y->dim[1];
	int64_t cg = C / e->n->a.win.group, mg = M / e->n->a.win.group;
	int64_t o[3];
	for (int64_t n = 0; n < N; n++)
		for (int64_t m = 0; m < M; m++) {
			const float *xg = xd + (n * C + m / mg * cg) * G.insz;
			const float *wm = wd + m * cg * G.ksz;
			for (o[0] = 0; o[0] < G.out[0]; o[0]++)
				for (o[1] = 0; o[1] < G.out[1]; o[1]++)
					for (o[2] = 0; o[2] < G.out[2]; o[2]++) {
						float acc = conv_point(&G, xg, wm, cg, o);
						*yd++ = bd ? acc + bd[m] : acc;
					}
		}
	return 0;
}

/* ---- pools ---- */

/* One window of a pool: real elements only (pads never win a max). */
typedef struct {
	double max;
	int64_t arg;   /* plane index of the max, -1 if the window is all pad */
	float sum;
	int64_t n;     /* real elements */
} Win;

static void window(const Geom *G, DType dt, const void *x, int64_t base, const int64_t *o, Win *w)
{
	w->max = -INFINITY;
	w->arg = -1;
	w->sum = 0;
	w->n = 0;
	for (int a = 0; a < G->k[0]; a++) {
		int64_t i0 = tap(G, 0, o[0], a);
		for (int b = 0; inside(G, 0, i0) && b < G->k[1]; b++) {
			int64_t i1 = tap(G, 1, o[1], b);
			for (int f = 0; inside(G, 1, i1) && f < G->k[2]; f++) {
				int64_t i2 = tap(G, 2, o[2], f);
				if (!inside(G, 2, i2))
					continue;
				int64_t i = (i0 * G->in[1] + i1) * G->in[2] + i2;
				double v = ir_load(dt, x, base + i);
				w->sum += (float)v;
				w->n++;
				if (w->arg < 0 || v > w->max)
					w->max = v, w->arg = i;
			}
		}
	}
}

/* Taps of output o along dim i inside the padded input [-pb, in + pe): the
 * count_include_pad divisor.  A ceil_mode window running past the end pad
 * counts only up to it, as ONNX's reference and onnxruntime do. */
static int64_t padded_taps(const Geom *G, int i, int64_t o)
{
	int64_t n = 0;
	for (int t = 0; t < G->k[i]; t++) {
		int64_t c = tap(G, i, o, t);
		n += c >= -G->pb[i] && c < G->in[i] + G->pe[i];
	}
	return n;
}

typedef enum { POOL_MAX, POOL_AVG } PoolKind;

/* Spatial offset arg (row-major) renumbered column-major, for MaxPool's
 * storage_order=1: the plane offset stays row-major (ONNX, onnxruntime). */
static int64_t colmajor(const Geom *G, int64_t arg)
{
	int64_t i2 = arg % G->in[2], i1 = arg / G->in[2] % G->in[1], i0 = arg / (G->in[1] * G->in[2]);
	return i0 + G->in[0] * (i1 + G->in[1] * i2);
}

/* Pool every (n, c) plane; idx (MaxPool's optional Indices) gets the
 * flat index into the whole input. */
static void pool(const Ev *e, const Geom *G, PoolKind kind, int64_t planes, int64_t *idx)
{
	DType xt = ev_tin(e, 0)->dtype, yt = ev_tout(e, 0)->dtype;
	int64_t o[3], i = 0;
	Win w;
	for (int64_t p = 0; p < planes; p++)
		for (o[0] = 0; o[0] < G->out[0]; o[0]++)
			for (o[1] = 0; o[1] < G->out[1]; o[1]++)
				for (o[2] = 0; o[2] < G->out[2]; o[2]++, i++) {
					window(G, xt, e->in[0], p * G->insz, o, &w);
					if (kind == POOL_MAX) {
						ev_setf(yt, e->out[0], i, w.max);
						if (idx)
							idx[i] = w.arg < 0 ? -1 : p * G->insz +
							         (e->n->a.win.colmajor ? colmajor(G, w.arg) : w.arg);
						continue;
					}
					int64_t cnt = w.n;
					if (e->n->a.win.incl_pad)
						cnt = padded_taps(G, 0, o[0]) * padded_taps(G, 1, o[1]) *
						      padded_taps(G, 2, o[2]);
					((float *)e->out[0])[i] = cnt ? w.sum / (float)cnt : 0;
				}
}

static int pool_check(const Ev *e, const Tensor *x, const Tensor *y, Geom *G)
{
	if (geom(e, x, y, G))
		return 1;
	if (x->dim[0] != y->dim[0] || x->dim[1] != y->dim[1])
		return ev_fail(e, "batch or channel count differs between input and output");
	return 0;
}

int ev_maxpool(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0), *ti = ev_tout(e, 1);
	Geom G;
	if (pool_check(e, x, y, &G))
		return 1;
	if (x->dtype != y->dtype || x->dtype == DT_BOOL)
		return ev_fail(e, "input %s and output %s", ir_dtype_name(x->dtype), ir_dtype_name(y->dtype));
	if (ti && (ti->dtype != DT_I64 || ir_numel(ti) != ir_numel(y)))
		return ev_fail(e, "Indices output must be i64 of the output's shape");
	pool(e, &G, POOL_MAX, x->dim[0] * x->dim[1], ti ? e->out[1] : NULL);
	return 0;
}

int ev_avgpool(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	Geom G;
	if (ev_want_f32(e, 1) || pool_check(e, x, y, &G))
		return 1;
	pool(e, &G, POOL_AVG, x->dim[0] * x->dim[1], NULL);
	return 0;
}

/* GlobalAveragePool, GlobalMaxPool: one value per (n, c) plane. */
int ev_globalpool(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	if (ev_want_f32(e, 1))
		return 1;
	if (x->rank < 2 || ir_numel(y) != x->dim[0] * x->dim[1])
		return ev_fail(e, "input must be [N, C, ...] and output [N, C, 1, ...]");
	int64_t planes = x->dim[0] * x->dim[1], sz = ev_prod(x, 2, x->rank);
	const float *xd = e->in[0];
	float *yd = e->out[0];
	for (int64_t p = 0; p < planes; p++, xd += sz) {
		float acc = e->n->op == OP_GMAXPOOL ? -INFINITY : 0;
		for (int64_t i = 0; i < sz; i++)
			acc = e->n->op == OP_GMAXPOOL ? (xd[i] > acc ? xd[i] : acc) : acc + xd[i];
		yd[p] = e->n->op == OP_GMAXPOOL ? acc : acc / (float)sz;
	}
	return 0;
}

/* ---- Gemm, MatMul ---- */

int ev_gemm(const Ev *e)
{
	const Tensor *a = ev_tin(e, 0), *b = ev_tin(e, 1), *c = ev_tin(e, 2), *y = ev_tout(e, 0);
	if (ev_want_f32(e, 3))
		return 1;
	int ta = e->n->a.gemm.ta, tb = e->n->a.gemm.tb;
	if (a->rank != 2 || b->rank != 2 || y->rank != 2)
		return ev_fail(e, "A, B and Y must be 2-D");
	int64_t M = a->dim[ta ? 1 : 0], K = a->dim[ta ? 0 : 1], N = b->dim[tb ? 0 : 1];
	if (b->dim[tb ? 1 : 0] != K || y->dim[0] != M || y->dim[1] != N)
		return ev_fail(e, "A, B and Y shapes do not agree");
	EvIter it;
	if (c && ev_iter_bcast(&it, y, 1, &c))
		return ev_fail(e, "C does not broadcast to [%lld, %lld]", (long long)M, (long long)N);
	const float *A = e->in[0], *B = e->in[1], *C = c ? e->in[2] : NULL;
	float *Y = e->out[0], alpha = e->n->a.gemm.alpha, beta = e->n->a.gemm.beta;
	for (int64_t i = 0; i < M; i++)
		for (int64_t j = 0; j < N; j++) {
			float acc = 0;
			for (int64_t k = 0; k < K; k++)
				acc += A[ta ? k * M + i : i * K + k] * B[tb ? j * K + k : k * N + j];
			Y[i * N + j] = c ? alpha * acc + beta * C[it.off[0]] : alpha * acc;
			if (c)
				ev_iter_next(&it);
		}
	return 0;
}

/* t's leading dims [0, n) as a tensor of its own (MatMul's batch dims). */
static Tensor batch_of(const Tensor *t, int n)
{
	Tensor b = *t;
	b.rank = n < 0 ? 0 : n;
	return b;
}

/* y[M, N] = a[M, K] b[K, N], k ascending. */
static void matmul_block(const float *a, const float *b, float *y, int64_t M, int64_t K, int64_t N)
{
	for (int64_t i = 0; i < M; i++)
		for (int64_t j = 0; j < N; j++) {
			float acc = 0;
			for (int64_t k = 0; k < K; k++)
				acc += a[i * K + k] * b[k * N + j];
			y[i * N + j] = acc;
		}
}

/* numpy matmul: a 1-D a is a row [1, K], a 1-D b a column [K, 1] (the
 * added dim is not in the output); batch dims broadcast. */
int ev_matmul(const Ev *e)
{
	const Tensor *a = ev_tin(e, 0), *b = ev_tin(e, 1), *y = ev_tout(e, 0);
	if (ev_want_f32(e, 2))
		return 1;
	if (a->rank < 1 || b->rank < 1)
		return ev_fail(e, "inputs must have rank >= 1");
	int64_t M = a->rank > 1 ? a->dim[a->rank - 2] : 1, K = a->dim[a->rank - 1];
	int64_t N = b->rank > 1 ? b->dim[b->rank - 1] : 1, K2 = b->dim[b->rank > 1 ? b->rank - 2 : 0];
	int nb = y->rank - (a->rank > 1) - (b->rank > 1);
	Tensor ab = batch_of(a, a->rank - 2), bb = batch_of(b, b->rank - 2), yb = batch_of(y, nb);
	const Tensor *ops[2] = {&ab, &bb};
	EvIter it;
	if (K != K2 || nb < 0 || ir_numel(y) != ir_numel(&yb) * M * N ||
	    ev_iter_bcast(&it, &yb, 2, ops))
		return ev_fail(e, "input shapes do not agree with each other or the output");
	int64_t nbatch = ir_numel(&yb);
	for (int64_t i = 0; i < nbatch; i++, ev_iter_next(&it))
		matmul_block((const float *)e->in[0] + it.off[0] * M * K,
		             (const float *)e->in[1] + it.off[1] * K * N,
		             (float *)e->out[0] + i * M * N, M, K, N);
	return 0;
}

/* ---- BatchNormalization ---- */

/* (x - mean) / sqrt(var + eps) * scale + bias, in ONNX's reference order. */
int ev_batchnorm(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	if (ev_want_f32(e, 5))
		return 1;
	if (x->rank < 2 || ir_numel(x) != ir_numel(y))
		return ev_fail(e, "input must be [N, C, ...] and match the output");
	int64_t N = x->dim[0], C = x->dim[1], sz = ev_prod(x, 2, x->rank);
	for (int j = 1; j < 5; j++)
		if (ir_numel(ev_tin(e, j)) != C)
			return ev_fail(e, "input %d must have %lld elements", j, (long long)C);
	const float *xd = e->in[0], *s = e->in[1], *b = e->in[2], *mu = e->in[3], *var = e->in[4];
	float *yd = e->out[0];
	for (int64_t n = 0; n < N; n++)
		for (int64_t c = 0; c < C; c++) {
			float sd = sqrtf(var[c] + e->n->a.bn.eps);
			for (int64_t i = 0; i < sz; i++, xd++, yd++)
				*yd = (*xd - mu[c]) / sd * s[c] + b[c];
		}
	return 0;
}

/* ---- Softmax, LogSoftmax ---- */

/* Softmax over len elements spaced inner apart; the max is subtracted
 * first so exp cannot overflow. */
static void softmax_row(const float *x, float *y, int64_t len, int64_t inner, int islog)
{
	float mx = -INFINITY, sum = 0;
	for (int64_t i = 0; i < len; i++)
		mx = x[i * inner] > mx ? x[i * inner] : mx;
	for (int64_t i = 0; i < len; i++)
		sum += expf(x[i * inner] - mx);
	for (int64_t i = 0; i < len; i++)
		y[i * inner] = islog ? x[i * inner] - mx - logf(sum) : expf(x[i * inner] - mx) / sum;
}

/* legacy (opset < 13): rows are the flattened dims from axis on; else the
 * single dim axis. */
int ev_softmax(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	if (ev_want_f32(e, 1))
		return 1;
	int r = x->rank, legacy = e->n->a.axis.legacy;
	int axis = r == 0 ? 0 : ev_axis(e->n->a.axis.axis, r);
	if (axis < 0 || ir_numel(x) != ir_numel(y))
		return ev_fail(e, "axis %d out of range for rank %d", e->n->a.axis.axis, r);
	int64_t outer = ev_prod(x, 0, axis);
	int64_t len = legacy ? ev_prod(x, axis, r) : r ? x->dim[axis] : 1;
	int64_t inner = legacy || !r ? 1 : ev_prod(x, axis + 1, r);
	const float *xd = e->in[0];
	float *yd = e->out[0];
	int islog = e->n->op == OP_LOGSOFTMAX;
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++) {
			int64_t base = o * len * inner + i;
			softmax_row(xd + base, yd + base, len, inner, islog);
		}
	return 0;
}

/* ---- reductions ---- */

/* mask[a] = 1 for each reduced axis; 1 on error.  Absent or empty axes
 * reduce everything, unless noop_empty (then mask stays 0). */
int ev_reduce_axes(const Ev *e, const Tensor *x, char *mask)
{
	const Tensor *ta = ev_tin(e, 1);
	int64_t na = ta ? ir_numel(ta) : 0;
	memset(mask, na == 0 && !e->n->a.reduce.noop_empty, IR_MAXRANK);
	if (ta && !ev_isint(ta->dtype))
		return ev_fail(e, "axes must be an integer tensor");
	for (int64_t i = 0; i < na; i++) {
		int64_t v = ev_geti(ta->dtype, e->in[1], i);
		int a = v < -x->rank || v >= x->rank ? -1 : ev_axis((int)v, x->rank);
		if (a < 0)
			return ev_fail(e, "axis %lld out of range for rank %d", (long long)v, x->rank);
		mask[a] = 1;
	}
	return 0;
}

static float reduce_f(Op op, float acc, float v)
{
	switch (op) {
	case OP_REDUCEMAX: return v > acc || v != v ? v : acc;
	case OP_REDUCEMIN: return v < acc || v != v ? v : acc;
	case OP_REDUCEPROD: return acc * v;
	default: return acc + v;
	}
}

static int64_t reduce_i(Op op, int64_t acc, int64_t v)
{
	switch (op) {
	case OP_REDUCEMAX: return v > acc ? v : acc;
	case OP_REDUCEMIN: return v < acc ? v : acc;
	case OP_REDUCEPROD: return (int64_t)((uint64_t)acc * (uint64_t)v);
	default: return (int64_t)((uint64_t)acc + (uint64_t)v);
	}
}

/* The identity of op's fold, stored in y[i]. */
static void reduce_init(const Ev *e, int64_t i, int isint)
{
	Op op = e->n->op;
	DType yt = ev_tout(e, 0)->dtype;
	if (isint)
		ev_seti(yt, e->out[0], i, op == OP_REDUCEMAX ? INT64_MIN :
		        op == OP_REDUCEMIN ? INT64_MAX : op == OP_REDUCEPROD);
	else
		ev_setf(yt, e->out[0], i, op == OP_REDUCEMAX ? -INFINITY :
		        op == OP_REDUCEMIN ? INFINITY : op == OP_REDUCEPROD);
}

/* Walk x with it.off[0] the output element each input element folds into;
 * floats fold in float, integers in int64 (wrapping). */
static void reduce_run(const Ev *e, EvIter *it, int64_t nx, int64_t ny)
{
	DType xt = ev_tin(e, 0)->dtype, yt = ev_tout(e, 0)->dtype;
	Op op = e->n->op;
	int isint = ev_isint(xt);
	for (int64_t i = 0; i < ny; i++)
		reduce_init(e, i, isint);
	for (int64_t i = 0; i < nx; i++, ev_iter_next(it)) {
		int64_t o = it->off[0];
		if (isint)
			ev_seti(yt, e->out[0], o, reduce_i(op, ev_geti(yt, e->out[0], o), ev_geti(xt, e->in[0], i)));
		else
			ev_setf(yt, e->out[0], o, reduce_f(op, (float)ir_load(yt, e->out[0], o),
			                                 (float)ir_load(xt, e->in[0], i)));
	}
	if (op != OP_REDUCEMEAN || nx == 0)
		return;
	int64_t cnt = nx / (ny ? ny : 1);
	for (int64_t i = 0; i < ny; i++)
		ev_setf(yt, e->out[0], i, isint ? (double)(ev_geti(yt, e->out[0], i) / cnt)
		                                : (float)ir_load(yt, e->out[0], i) / (float)cnt);
}

int ev_reduce(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	char mask[IR_MAXRANK];
	if (ev_reduce_axes(e, x, mask))
		return 1;
	if (x->dtype != y->dtype || (x->dtype != DT_F32 && (!ev_isint(x->dtype) || x->dtype == DT_BOOL)))
		return ev_fail(e, "input %s and output %s: f32 or integer only",
		               ir_dtype_name(x->dtype), ir_dtype_name(y->dtype));
	/* Output strides over the kept dims; a reduced dim has stride 0. */
	EvIter it;
	ev_iter_shape(&it, x, 1);
	int64_t s = 1;
	for (int a = x->rank - 1; a >= 0; a--) {
		it.st[0][a] = mask[a] ? 0 : s;
		s *= mask[a] ? 1 : x->dim[a];
	}
	if (s != ir_numel(y))
		return ev_fail(e, "output has %lld elements, the reduction gives %lld",
		               (long long)ir_numel(y), (long long)s);
	reduce_run(e, &it, ir_numel(x), s);
	return 0;
}
