/* The float reference evaluator for ops.def's "ONNX quantization
 * operators": QuantizeLinear, DequantizeLinear, QLinearConv, QLinearMatMul,
 * ConvInteger, MatMulInteger, exactly as the ONNX spec defines them.
 *
 * Integer sums are exact in int64 and wrapped to int32 at the end, which
 * is the int32 accumulation the spec allows to overflow.  Real factors are
 * doubles: M = (double)s_x * s_w / s_y, y = acc * M, rounded half to even
 * (independent of the FP rounding mode) and saturated.  QuantizeLinear
 * divides in f32, as the ONNX reference and onnxruntime do, so a quotient
 * that f32 rounds onto a tie rounds as theirs.  backends/c/kernels_qops.c
 * prints the same arithmetic. */
#include <math.h>

#include "eval_impl.h"

/* ---- helpers ---- */

/* Element c of parameter input j (a scale or zero point): one value for
 * the whole tensor, or one per channel (shape_qops.c checked which).
 * Absent: def. */
static double par(const Ev *e, int j, int64_t c, double def)
{
	const Tensor *t = ev_tin(e, j);
	if (!t)
		return def;
	return ir_load(t->dtype, e->in[j], ir_numel(t) == 1 ? 0 : c);
}

/* Halves to even: floor and the fraction are exact below 2^52, and from
 * there on every double is an integer. */
static double round_even(double v)
{
	double a = fabs(v);
	if (!(a < 4503599627370496.0))
		return v;
	double r = floor(a), d = a - r;
	if (d > 0.5 || (d == 0.5 && fmod(r, 2.0) != 0.0))
		r += 1.0;
	return copysign(r, v);
}

/* sat(round_even(v) + zp) into dtype dt (u8 or i8); NaN gives zp. */
static int64_t quant(DType dt, double v, double zp)
{
	double lo = dt == DT_U8 ? 0 : -128, hi = dt == DT_U8 ? 255 : 127;
	if (v != v)
		return (int64_t)zp;
	v = round_even(v) + zp;
	return (int64_t)(v < lo ? lo : v > hi ? hi : v);
}

/* An int64 sum as the int32 accumulator would hold it (mod 2^32). */
static int64_t wrap32(int64_t v)
{
	uint32_t u = (uint32_t)v;
	return u >= 0x80000000u ? (int64_t)u - 0x100000000 : (int64_t)u;
}

/* Channel (slice along axis) of element i of t, for per-axis parameters. */
static int64_t channel(const Tensor *t, int axis, int64_t i)
{
	return i / ev_prod(t, axis + 1, t->rank) % t->dim[axis];
}

/* ---- QuantizeLinear, DequantizeLinear ---- */

static int quantize(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0);
	int axis = ev_axis(e->n->a.axis.axis, x->rank);
	int per = ir_numel(ev_tin(e, 1)) != 1;
	if (per && axis < 0)
		return ev_fail(e, "axis %d is out of range for rank %d", e->n->a.axis.axis, x->rank);
	int64_t n = ir_numel(x);
	for (int64_t i = 0; i < n; i++) {
		int64_t c = per ? channel(x, axis, i) : 0;
		double s = par(e, 1, c, 1), zp = par(e, 2, c, 0), v;
		if (x->dtype == DT_F32) {
			float q = ((const float *)e->in[0])[i] / (float)s;
			v = q;
		} else {
			v = (double)((const int32_t *)e->in[0])[i] / s;
		}
		ev_seti(y->dtype, e->out[0], i, quant(y->dtype, v, zp));
	}
	return 0;
}

static int dequantize(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0);
	int axis = ev_axis(e->n->a.axis.axis, x->rank);
	int per = ir_numel(ev_tin(e, 1)) != 1;
	if (per && axis < 0)
		return ev_fail(e, "axis %d is out of range for rank %d", e->n->a.axis.axis, x->rank);
	int64_t n = ir_numel(x);
	float *y = e->out[0];
	for (int64_t i = 0; i < n; i++) {
		int64_t c = per ? channel(x, axis, i) : 0;
		int64_t d = ev_geti(x->dtype, e->in[0], i) - (int64_t)par(e, 2, c, 0);
		y[i] = (float)((double)d * par(e, 1, c, 1));
	}
	return 0;
}

/* ---- QLinearConv, ConvInteger ---- */

/* Input indices of the two forms. */
typedef struct {
	int w, zx, zw, sx, sw, sy, zy, b;   /* -1: the op has no such input */
} QIn;

static QIn qconv_inputs(Op op)
{
	if (op == OP_QLINEARCONV || op == OP_QLINEARMATMUL)
		return (QIn){3, 2, 5, 1, 4, 6, 7, op == OP_QLINEARCONV ? 8 : -1};
	return (QIn){1, 2, 3, -1, -1, -1, -1, -1};
}

/* The int32 accumulator of output channel m at output point o: padded
 * taps contribute 0 (as if padded with the zero point). */
static int64_t conv_acc(const Ev *e, const WinGeom *G, const QIn *q, int64_t xoff, int64_t woff,
                        int64_t cg, int64_t zx, int64_t zw, const int64_t *o)
{
	DType xt = ev_tin(e, 0)->dtype, wt = ev_tin(e, q->w)->dtype;
	int64_t insz = G->in[0] * G->in[1] * G->in[2], ksz = (int64_t)G->k[0] * G->k[1] * G->k[2];
	int64_t acc = 0;
	for (int64_t c = 0; c < cg; c++)
		for (int a = 0; a < G->k[0]; a++) {
			int64_t i0 = o[0] * G->s[0] - G->pb[0] + (int64_t)a * G->d[0];
			for (int b = 0; i0 >= 0 && i0 < G->in[0] && b < G->k[1]; b++) {
				int64_t i1 = o[1] * G->s[1] - G->pb[1] + (int64_t)b * G->d[1];
				for (int f = 0; i1 >= 0 && i1 < G->in[1] && f < G->k[2]; f++) {
					int64_t i2 = o[2] * G->s[2] - G->pb[2] + (int64_t)f * G->d[2];
					if (i2 < 0 || i2 >= G->in[2])
						continue;
					int64_t xi = xoff + c * insz + (i0 * G->in[1] + i1) * G->in[2] + i2;
					int64_t wi = woff + c * ksz + ((int64_t)a * G->k[1] + b) * G->k[2] + f;
					acc += (ev_geti(xt, e->in[0], xi) - zx) * (ev_geti(wt, e->in[q->w], wi) - zw);
				}
			}
		}
	return acc;
}

/* Output element i from its accumulator: the int32 itself (ConvInteger,
 * MatMulInteger) or requantized by M. */
static void put(const Ev *e, const QIn *q, int64_t i, int64_t acc, double M)
{
	DType yt = ev_tout(e, 0)->dtype;
	if (q->sx < 0) {
		ev_seti(yt, e->out[0], i, wrap32(acc));
		return;
	}
	ev_seti(yt, e->out[0], i, quant(yt, (double)wrap32(acc) * M, par(e, q->zy, 0, 0)));
}

static int qconv(const Ev *e)
{
	QIn q = qconv_inputs(e->n->op);
	const Tensor *x = ev_tin(e, 0), *w = ev_tin(e, q.w), *y = ev_tout(e, 0);
	WinGeom G;
	char why[128];
	if (ir_window_geom(&e->n->a.win, x, y, &G, why, sizeof why))
		return ev_fail(e, "%s", why);
	int64_t N = x->dim[0], C = x->dim[1], M = y->dim[1], grp = e->n->a.win.group;
	if (grp < 1 || C % grp || M % grp || w->dim[0] != M || w->dim[1] != C / grp)
		return ev_fail(e, "group %lld does not divide %lld input and %lld output channels",
		               (long long)grp, (long long)C, (long long)M);
	int64_t cg = C / grp, mg = M / grp, ksz = ev_prod(w, 2, w->rank);
	int64_t insz = G.in[0] * G.in[1] * G.in[2], zx = (int64_t)par(e, q.zx, 0, 0);
	const int32_t *bias = q.b >= 0 && ev_tin(e, q.b) ? e->in[q.b] : NULL;
	int64_t o[3], i = 0;
	for (int64_t n = 0; n < N; n++)
		for (int64_t m = 0; m < M; m++) {
			int64_t zw = (int64_t)par(e, q.zw, m, 0);
			double Mul = q.sx < 0 ? 0 : par(e, q.sx, 0, 1) * par(e, q.sw, m, 1) / par(e, q.sy, 0, 1);
			int64_t xoff = (n * C + m / mg * cg) * insz, woff = m * cg * ksz;
			for (o[0] = 0; o[0] < G.out[0]; o[0]++)
				for (o[1] = 0; o[1] < G.out[1]; o[1]++)
					for (o[2] = 0; o[2] < G.out[2]; o[2]++, i++) {
						int64_t acc = conv_acc(e, &G, &q, xoff, woff, cg, zx, zw, o);
						put(e, &q, i, acc + (bias ? bias[m] : 0), Mul);
					}
		}
	return 0;
}

/* ---- QLinearMatMul, MatMulInteger ---- */

static Tensor batch_of(const Tensor *t, int n)
{
	Tensor b = *t;
	b.rank = n < 0 ? 0 : n;
	return b;
}

/* Index of the parameter input j for batch matrix b, row (column) r of n:
 * shape_qops.c allows one per row, or one per matrix and row. */
static int64_t mm_at(const Ev *e, int j, int64_t n, int64_t b, int64_t r)
{
	const Tensor *t = ev_tin(e, j);
	return t && ir_numel(t) > n ? b * n + r : r;
}

static int qmatmul(const Ev *e)
{
	QIn q = qconv_inputs(e->n->op);
	const Tensor *a = ev_tin(e, 0), *b = ev_tin(e, q.w), *y = ev_tout(e, 0);
	int64_t M = a->rank > 1 ? a->dim[a->rank - 2] : 1, K = a->dim[a->rank - 1];
	int64_t N = b->rank > 1 ? b->dim[b->rank - 1] : 1, K2 = b->dim[b->rank > 1 ? b->rank - 2 : 0];
	int nb = y->rank - (a->rank > 1) - (b->rank > 1);
	Tensor ab = batch_of(a, a->rank - 2), bb = batch_of(b, b->rank - 2), yb = batch_of(y, nb);
	const Tensor *ops[2] = {&ab, &bb};
	EvIter it;
	if (K != K2 || nb < 0 || ir_numel(y) != ir_numel(&yb) * M * N ||
	    ev_iter_bcast(&it, &yb, 2, ops))
		return ev_fail(e, "input shapes do not agree with each other or the output");
	int64_t nbatch = ir_numel(&yb), i = 0;
	for (int64_t t = 0; t < nbatch; t++, ev_iter_next(&it))
		for (int64_t r = 0; r < M; r++)
			for (int64_t col = 0; col < N; col++, i++) {
				int64_t ba = it.off[0], bb = it.off[1], acc = 0;
				int64_t za = (int64_t)par(e, q.zx, mm_at(e, q.zx, M, ba, r), 0);
				int64_t zb = (int64_t)par(e, q.zw, mm_at(e, q.zw, N, bb, col), 0);
				for (int64_t k = 0; k < K; k++)
					acc += (ev_geti(a->dtype, e->in[0], (it.off[0] * M + r) * K + k) - za) *
					       (ev_geti(b->dtype, e->in[q.w], (it.off[1] * K + k) * N + col) - zb);
				double Mul = q.sx < 0 ? 0 : par(e, q.sx, mm_at(e, q.sx, M, ba, r), 1) *
				             par(e, q.sw, mm_at(e, q.sw, N, bb, col), 1) / par(e, q.sy, 0, 1);
				put(e, &q, i, acc, Mul);
			}
	return 0;
}

int ev_qops(const Ev *e)
{
	switch (e->n->op) {
	case OP_QUANTIZE: return quantize(e);
	case OP_DEQUANTIZE: return dequantize(e);
	case OP_QLINEARCONV: case OP_CONVINTEGER: return qconv(e);
	case OP_QLINEARMATMUL: case OP_MATMULINTEGER: return qmatmul(e);
	default: return ev_fail(e, "internal: %s is not a quantization operator", ir_opname[e->n->op]);
	}
}
