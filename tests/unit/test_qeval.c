/* The integer reference evaluator (ir/qeval.c) against references written
 * here in double arithmetic from docs/integer-semantics.md's table: each
 * quantized node is built by hand on pseudo-random integers, and the test
 * computes the real-valued accumulator (sums of integer products, exact in
 * double), then the documented rescale and clamp.
 *
 * The rescale reference ref_R models the documented rounding, not the
 * evaluator's code: the pure shift (m == 0) is round(v * 2^-n) half away
 * from zero; the Q31 form is floor(v * m / 2^31 + 1/2) (gemmlowp's ties up)
 * followed by round(. * 2^-n) half away, i.e. two roundings, which is not
 * always round(v * M): so ref_R also checks it stays within 1 of v * M.
 * Values are small enough that every product is exact in double. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ir.h"

#include "irtest.h"

/* ---- random integers ---- */

static uint64_t rng = 0x9E3779B97F4A7C15u;

/* Uniform in [lo, hi] (xorshift64*: reproducible). */
static int32_t rnd(int32_t lo, int32_t hi)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	uint64_t r = (rng * 2685821657736338717u) >> 11;
	return lo + (int32_t)(r % (uint64_t)((int64_t)hi - lo + 1));
}

static int32_t *rnd_array(int64_t n, int32_t lo, int32_t hi)
{
	int32_t *v = arena_alloc(arena, (size_t)n * sizeof *v);
	for (int64_t i = 0; i < n; i++)
		v[i] = rnd(lo, hi);
	return v;
}

/* ---- typed storage ---- */

static void *pack(DType dt, const int32_t *v, int64_t n)
{
	void *p = arena_alloc(arena, (size_t)n * ir_dtype_size(dt) + 1);
	for (int64_t i = 0; i < n; i++)
		switch (dt) {
		case DT_I8: ((int8_t *)p)[i] = (int8_t)v[i]; break;
		case DT_U8: ((uint8_t *)p)[i] = (uint8_t)v[i]; break;
		case DT_I16: ((int16_t *)p)[i] = (int16_t)v[i]; break;
		case DT_U16: ((uint16_t *)p)[i] = (uint16_t)v[i]; break;
		default: ((int32_t *)p)[i] = v[i]; break;
		}
	return p;
}

static int32_t elem(DType dt, const void *p, int64_t i)
{
	return (int32_t)ir_load(dt, p, i);
}

static int dt_bits(DType dt)
{
	return dt == DT_I8 || dt == DT_U8 ? 8 : dt == DT_I16 || dt == DT_U16 ? 16 : 32;
}

static int dt_unsigned(DType dt)
{
	return dt == DT_U8 || dt == DT_U16;
}

/* ---- graph building ---- */

/* Data of the non-constant tensors fed to ir_qeval_node, by tensor id. */
static const void *tdata[256];

static Quant *quant1(DType dt, double s, int32_t zp)
{
	Quant *q = ir_quant_new(arena, 1, -1, dt_bits(dt), dt_unsigned(dt));
	q->scale[0] = s;
	q->zp[0] = zp;
	return q;
}

/* A computed tensor with a per-tensor Quant. */
static int qval(DType dt, double s, int32_t zp, int rank, const int64_t *dim)
{
	int t = ir_tensor_new(g, NULL, dt, rank, dim);
	g->tensor[t].q = quant1(dt, s, zp);
	return t;
}

/* A per-tensor quantized input holding v. */
static int qin(DType dt, double s, int32_t zp, int rank, const int64_t *dim, const int32_t *v)
{
	int t = qval(dt, s, zp, rank, dim);
	tdata[t] = pack(dt, v, ir_numel(&g->tensor[t]));
	return t;
}

/* A constant with nch channels along axis, zero points zp (NULL: 0). */
static int qconst(DType dt, int rank, const int64_t *dim, const int32_t *v, int nch, int axis,
                  const int32_t *zp)
{
	int64_t n = 1;
	for (int a = 0; a < rank; a++)
		n *= dim[a];
	int t = ir_const_new(g, NULL, dt, rank, dim, pack(dt, v, n));
	Quant *q = ir_quant_new(arena, nch, axis, dt_bits(dt), dt_unsigned(dt));
	for (int c = 0; zp && c < nch; c++)
		q->zp[c] = zp[c];
	g->tensor[t].q = q;
	return t;
}

/* A node with a QNode whose clamp is y's full range; valid until the next
 * node is made. */
static Node *qnode(Op op, int nin, const int *in, int y)
{
	int id = ir_node_new(g, op, NULL, nin, in, 1, &y);
	Node *n = &g->node[id];
	n->q = arena_alloc(arena, sizeof *n->q);
	n->q->lo = ir_qmin(g->tensor[y].q);
	n->q->hi = ir_qmax(g->tensor[y].q);
	return n;
}
#define QNODE(op, y, ...) qnode(op, NARGS(__VA_ARGS__), INS(__VA_ARGS__), y)

static Rescale *rs(int n, const Rescale *r)
{
	return arena_dup(arena, r, (size_t)n * sizeof *r);
}
#define RS(...) rs((int)(sizeof((const Rescale[]){__VA_ARGS__}) / sizeof(Rescale)), \
                   (const Rescale[]){__VA_ARGS__})

static void set_r(Node *n, int nr, const Rescale *r)
{
	n->q->nr = nr;
	n->q->r = rs(nr, r);
}

/* ir_qeval_node on the last node made; output 0 goes to out. */
static int eval_last(void *out)
{
	int id = g->nnode - 1;
	const Node *n = &g->node[id];
	const void *in[8] = {0};
	for (int j = 0; j < n->nin; j++) {
		int t = n->in[j];
		in[j] = t < 0 ? NULL : g->tensor[t].kind == TK_CONST ? g->tensor[t].data : tdata[t];
	}
	void *outs[1] = {out};
	return ir_qeval_node(g, id, in, outs, &diag);
}

static void *out_buf(int y)
{
	return arena_alloc(arena, ir_nbytes(&g->tensor[y]) + 1);
}

static void expect_q(int y, const void *got, const int32_t *want)
{
	const Tensor *t = &g->tensor[y];
	int64_t n = ir_numel(t);
	for (int64_t i = 0; i < n; i++)
		if (elem(t->dtype, got, i) != want[i])
			fail_msg("element %lld: got %d, want %d", (long long)i, elem(t->dtype, got, i), want[i]);
}

static int qsetup(void **state)
{
	memset(tdata, 0, sizeof tdata);
	return setup(state);
}

/* ---- the reference arithmetic ---- */

static double rha(double v)
{
	return v < 0 ? -floor(-v + 0.5) : floor(v + 0.5);
}

static double clampd(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static double sat32(double v)
{
	return clampd(v, -2147483648.0, 2147483647.0);
}

/* The documented rescale of v (module comment).  The Q31 form takes an
 * int32, so a wider v saturates first (potc_rescale64). */
static double ref_R(double v, Rescale r)
{
	double y, M = ir_rescale_real(r);
	if (r.m == 0) {
		y = sat32(rha(ldexp(v, -r.n)));
	} else {
		v = sat32(v);
		double u = r.n < 0 ? sat32(ldexp(v, -r.n)) : v;
		y = floor(u * (double)r.m / 2147483648.0 + 0.5);
		if (r.n > 0)
			y = rha(ldexp(y, -r.n));
	}
	if (fabs(v * M) < 1e9 && fabs(y - v * M) > 1)
		fail_msg("reference rescale of %.17g by %.17g gives %.17g", v, M, y);
	return y;
}

static int32_t ref_out(double v, int32_t zp, int32_t lo, int32_t hi)
{
	return (int32_t)clampd(zp + v, lo, hi);
}

/* ---- Conv ---- */

/* A 2-D convolution (1-D: H = kh = 1 and oned) and its quantization. */
typedef struct {
	int64_t N, C, H, W, M, kh, kw;
	int sh, sw, dh, dw, pt, pl, pb, pr, group, oned;
	DType xt, yt;
	int32_t zx, zy, xlo, xhi, wlo, whi;
	const int32_t *zw;       /* per output channel, NULL: 0 */
	const Rescale *r;
	int nr, acc64, nobias, relu;
} ConvT;

static int64_t conv_oh(const ConvT *k)
{
	return (k->H + k->pt + k->pb - (int64_t)k->dh * (k->kh - 1) - 1) / k->sh + 1;
}

static int64_t conv_ow(const ConvT *k)
{
	return (k->W + k->pl + k->pr - (int64_t)k->dw * (k->kw - 1) - 1) / k->sw + 1;
}

/* bias[m] + sum (x - zx)(w - zw[m]) for output (n, m, oh, ow): exact. */
static double ref_conv_acc(const ConvT *k, const int32_t *x, const int32_t *w, const int32_t *b,
                           int64_t n, int64_t m, int64_t oh, int64_t ow)
{
	int64_t cg = k->C / k->group, g0 = m / (k->M / k->group) * cg;
	double acc = b ? b[m] : 0;
	for (int64_t c = 0; c < cg; c++)
		for (int64_t a = 0; a < k->kh; a++)
			for (int64_t f = 0; f < k->kw; f++) {
				int64_t ih = oh * k->sh - k->pt + a * k->dh, iw = ow * k->sw - k->pl + f * k->dw;
				if (ih < 0 || ih >= k->H || iw < 0 || iw >= k->W)
					continue;   /* a pad is the real 0 */
				double xv = x[((n * k->C + g0 + c) * k->H + ih) * k->W + iw] - k->zx;
				double wv = w[((m * cg + c) * k->kh + a) * k->kw + f] - (k->zw ? k->zw[m] : 0);
				acc += xv * wv;
			}
	return acc;
}

static Window conv_win(const ConvT *k)
{
	Window w = {0};
	w.group = k->group;
	if (k->oned) {
		w.nsp = 1;
		w.k[0] = (int)k->kw, w.s[0] = k->sw, w.d[0] = k->dw;
		w.pad[0] = k->pl, w.pad[1] = k->pr;
		return w;
	}
	w.nsp = 2;
	w.k[0] = (int)k->kh, w.k[1] = (int)k->kw;
	w.s[0] = k->sh, w.s[1] = k->sw, w.d[0] = k->dh, w.d[1] = k->dw;
	w.pad[0] = k->pt, w.pad[1] = k->pl, w.pad[2] = k->pb, w.pad[3] = k->pr;
	return w;
}

/* Builds and evaluates the Conv; compares with the reference when the
 * evaluator succeeds.  Returns ir_qeval_node's result; *maxacc gets the
 * largest |accumulator|, *outp (if not NULL) the output. */
static int conv_case(const ConvT *k, double *maxacc, void **outp)
{
	int64_t OH = conv_oh(k), OW = conv_ow(k), cg = k->C / k->group;
	int64_t nx = k->N * k->C * k->H * k->W, nw = k->M * cg * k->kh * k->kw;
	int32_t *x = rnd_array(nx, k->xlo, k->xhi), *w = rnd_array(nw, k->wlo, k->whi);
	int32_t *b = k->nobias ? NULL : rnd_array(k->M, -3000, 3000);
	int r = k->oned ? 3 : 4;
	const int64_t *xd = k->oned ? DIMS(k->N, k->C, k->W) : DIMS(k->N, k->C, k->H, k->W);
	const int64_t *wd = k->oned ? DIMS(k->M, cg, k->kw) : DIMS(k->M, cg, k->kh, k->kw);
	const int64_t *yd = k->oned ? DIMS(k->N, k->M, OW) : DIMS(k->N, k->M, OH, OW);
	int tx = qin(k->xt, 0.02, k->zx, r, xd, x);
	int tw = qconst(DT_I8, r, wd, w, (int)k->M, 0, k->zw);
	int tb = b ? qconst(DT_I32, 1, DIMS(k->M), b, 1, -1, NULL) : -1;
	int y = qval(k->yt, 0.05, k->zy, r, yd);
	Node *n = QNODE(OP_CONV, y, tx, tw, tb);
	n->a.win = conv_win(k);
	set_r(n, k->nr, k->r);
	n->q->acc64 = k->acc64;
	if (k->relu)
		n->q->lo = k->zy, n->act.kind = ACT_RELU;
	int32_t lo = n->q->lo, hi = n->q->hi;
	void *out = out_buf(y);
	int rc = eval_last(out);
	if (outp)
		*outp = out;
	if (rc)
		return rc;
	int32_t *want = arena_alloc(arena, (size_t)ir_numel(&g->tensor[y]) * sizeof *want);
	int64_t i = 0;
	*maxacc = 0;
	for (int64_t bn = 0; bn < k->N; bn++)
		for (int64_t m = 0; m < k->M; m++)
			for (int64_t oh = 0; oh < OH; oh++)
				for (int64_t ow = 0; ow < OW; ow++, i++) {
					double acc = ref_conv_acc(k, x, w, b, bn, m, oh, ow);
					*maxacc = fmax(*maxacc, fabs(acc));
					want[i] = ref_out(ref_R(acc, k->r[k->nr == 1 ? 0 : m]), k->zy, lo, hi);
				}
	expect_q(y, out, want);
	return 0;
}

/* Count of outputs at the clamp bounds: a test that means to saturate
 * checks it does. */
static void expect_saturates(int y, const void *out, int32_t lo, int32_t hi)
{
	int64_t n = ir_numel(&g->tensor[y]), nlo = 0, nhi = 0;
	for (int64_t i = 0; i < n; i++) {
		nlo += elem(g->tensor[y].dtype, out, i) == lo;
		nhi += elem(g->tensor[y].dtype, out, i) == hi;
	}
	if (!nlo || !nhi)
		fail_msg("%lld outputs at lo %d, %lld at hi %d: the test does not saturate both ways",
		         (long long)nlo, lo, (long long)nhi, hi);
}

/* u8 activations with a zero point, per-channel i8 weights (one channel
 * with a weight zero point), pads, per-channel rescales in both forms
 * (shift and Q31 with n > 0, = 0, < 0), u8 output saturating both ways. */
static void test_conv_per_channel(void **state)
{
	(void)state;
	Rescale r[4] = {{0, 9}, ir_rescale(0.00123), ir_rescale(0.7071), ir_rescale(1.37)};
	assert_int_equal(r[0].m, 0);
	assert_true(r[1].m != 0 && r[1].n > 0);
	assert_true(r[2].m != 0 && r[2].n == 0);
	assert_true(r[3].m != 0 && r[3].n < 0);
	ConvT k = {.N = 2, .C = 3, .H = 5, .W = 6, .M = 4, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
	           .dh = 1, .dw = 1, .pt = 1, .pl = 1, .pb = 1, .pr = 1, .group = 1,
	           .xt = DT_U8, .yt = DT_U8, .zx = 37, .zy = 101, .xlo = 0, .xhi = 255,
	           .wlo = -127, .whi = 127, .zw = I32(0, 3, 0, -2), .r = r, .nr = 4};
	double maxacc;
	void *out;
	/* Channels 2 and 3 multiply accumulators of ~1e5 by ~1: saturated. */
	assert_int_equal(conv_case(&k, &maxacc, &out), 0);
	expect_saturates(g->node[g->nnode - 1].out[0], out, 0, 255);
	/* One rescale for every channel (nr = 1). */
	Rescale one = ir_rescale(1.0 / 3000);
	k.r = &one, k.nr = 1, k.zx = 128;
	assert_int_equal(conv_case(&k, &maxacc, NULL), 0);
}

/* Saturation at both ends of an i8 output, then with a fused Relu:
 * lo = zp. */
static void test_conv_saturate_relu(void **state)
{
	(void)state;
	Rescale r = ir_rescale(1.0 / 100);
	ConvT k = {.N = 1, .C = 4, .H = 4, .W = 4, .M = 2, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
	           .dh = 1, .dw = 1, .pt = 1, .pl = 1, .pb = 1, .pr = 1, .group = 1,
	           .xt = DT_I8, .yt = DT_I8, .zx = 0, .zy = -5, .xlo = -128, .xhi = 127,
	           .wlo = -127, .whi = 127, .r = &r, .nr = 1};
	double maxacc;
	void *out;
	assert_int_equal(conv_case(&k, &maxacc, &out), 0);
	expect_saturates(g->node[g->nnode - 1].out[0], out, -128, 127);
	k.relu = 1;
	assert_int_equal(conv_case(&k, &maxacc, &out), 0);
	expect_saturates(g->node[g->nnode - 1].out[0], out, -5, 127);
}

/* Stride 2, dilation 2, asymmetric pads, no bias. */
static void test_conv_stride_dilation(void **state)
{
	(void)state;
	Rescale r = ir_rescale(1.0 / 700);
	ConvT k = {.N = 1, .C = 2, .H = 9, .W = 8, .M = 3, .kh = 3, .kw = 2, .sh = 2, .sw = 3,
	           .dh = 2, .dw = 2, .pt = 0, .pl = 1, .pb = 2, .pr = 1, .group = 1,
	           .xt = DT_I8, .yt = DT_I8, .zy = 4, .xlo = -128, .xhi = 127,
	           .wlo = -127, .whi = 127, .r = &r, .nr = 1, .nobias = 1};
	double maxacc;
	assert_int_equal(conv_case(&k, &maxacc, NULL), 0);
}

/* Depthwise (group = C = M) and a grouped Conv (2 groups of 2 -> 3). */
static void test_conv_groups(void **state)
{
	(void)state;
	Rescale r[6] = {ir_rescale(1.0 / 50), ir_rescale(1.0 / 64), ir_rescale(1.0 / 90),
	                ir_rescale(1.0 / 128), ir_rescale(1.0 / 70), ir_rescale(1.0 / 200)};
	ConvT k = {.N = 1, .C = 3, .H = 5, .W = 5, .M = 3, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
	           .dh = 1, .dw = 1, .pt = 1, .pl = 1, .pb = 1, .pr = 1, .group = 3,
	           .xt = DT_U8, .yt = DT_U8, .zx = 128, .zy = 128, .xlo = 0, .xhi = 255,
	           .wlo = -127, .whi = 127, .zw = I32(1, 0, -1), .r = r, .nr = 3};
	double maxacc;
	assert_int_equal(conv_case(&k, &maxacc, NULL), 0);
	ConvT k2 = {.N = 2, .C = 4, .H = 4, .W = 5, .M = 6, .kh = 2, .kw = 3, .sh = 1, .sw = 2,
	            .dh = 1, .dw = 1, .pt = 1, .pl = 0, .pb = 0, .pr = 2, .group = 2,
	            .xt = DT_I8, .yt = DT_I8, .zx = -3, .zy = 2, .xlo = -128, .xhi = 127,
	            .wlo = -127, .whi = 127, .r = r, .nr = 6};
	assert_int_equal(conv_case(&k2, &maxacc, NULL), 0);
}

/* 1-D Conv (nsp = 1) with dilation and pads. */
static void test_conv_1d(void **state)
{
	(void)state;
	Rescale r = ir_rescale(1.0 / 400);
	ConvT k = {.N = 1, .C = 2, .H = 1, .W = 11, .M = 2, .kh = 1, .kw = 3, .sh = 1, .sw = 2,
	           .dh = 1, .dw = 2, .pl = 2, .pr = 1, .group = 1, .oned = 1,
	           .xt = DT_I8, .yt = DT_I8, .zx = 5, .xlo = -128, .xhi = 127,
	           .wlo = -127, .whi = 127, .r = &r, .nr = 1};
	double maxacc;
	assert_int_equal(conv_case(&k, &maxacc, NULL), 0);
}

/* i16 activations near the top of their range, 1152 taps: the
 * accumulator exceeds int32.  With acc64 the result follows the exact sum
 * (shift rescale exact on int64; the Q31 form saturates the sum to int32
 * first, documented); without, it is a reported compiler bug. */
static void test_conv_acc64_and_overflow(void **state)
{
	(void)state;
	Rescale r[2] = {{0, 26}, {1 << 30, 24}};
	ConvT k = {.N = 1, .C = 128, .H = 3, .W = 3, .M = 2, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
	           .dh = 1, .dw = 1, .group = 1, .xt = DT_I16, .yt = DT_I8, .xlo = 30000,
	           .xhi = 32767, .wlo = 120, .whi = 127, .r = r, .nr = 2, .acc64 = 1};
	double maxacc = 0;
	assert_int_equal(conv_case(&k, &maxacc, NULL), 0);
	assert_true(maxacc > 2147483647.0);
	k.acc64 = 0;
	assert_int_equal(conv_case(&k, &maxacc, NULL), 1);
	assert_non_null(strstr(diag.last, "accumulator overflow"));
}

/* ---- Gemm, MatMul ---- */

/* bias[j] + sum_k (a[i,k] - za)(b[k,j] - zb[j]), B stored [N, K] when tb. */
static double ref_mm(const int32_t *a, int32_t za, const int32_t *b, const int32_t *zb, int tb,
                     const int32_t *bias, int64_t i, int64_t j, int64_t K, int64_t N)
{
	double acc = bias ? bias[j] : 0;
	for (int64_t k = 0; k < K; k++)
		acc += (double)(a[i * K + k] - za) *
		       (b[tb ? j * K + k : k * N + j] - (zb ? zb[j] : 0));
	return acc;
}

static void gemm_case(int tb, int bias)
{
	int64_t M = 3, K = 7, N = 4;
	int32_t *a = rnd_array(M * K, -128, 127), *b = rnd_array(K * N, -127, 127);
	int32_t *c = bias ? rnd_array(N, -5000, 5000) : NULL;
	const int32_t *zb = I32(0, 2, 0, -1);
	Rescale r[4] = {ir_rescale(1.0 / 90), {0, 7}, ir_rescale(1.0 / 150), ir_rescale(1.0 / 33)};
	int ta = qin(DT_I8, 0.1, -3, 2, DIMS(M, K), a);
	int tw = qconst(DT_I8, 2, tb ? DIMS(N, K) : DIMS(K, N), b, (int)N, tb ? 0 : 1, zb);
	int tc = c ? qconst(DT_I32, 1, DIMS(N), c, 1, -1, NULL) : -1;
	int y = qval(DT_I8, 0.2, 6, 2, DIMS(M, N));
	Node *n = QNODE(OP_GEMM, y, ta, tw, tc);
	n->a.gemm.tb = tb, n->a.gemm.alpha = 3, n->a.gemm.beta = 5;   /* folded: ignored */
	set_r(n, 4, r);
	void *out = out_buf(y);
	assert_int_equal(eval_last(out), 0);
	int32_t want[12];
	for (int64_t i = 0; i < M; i++)
		for (int64_t j = 0; j < N; j++)
			want[i * N + j] = ref_out(ref_R(ref_mm(a, -3, b, zb, tb, c, i, j, K, N), r[j]),
			                          6, -128, 127);
	expect_q(y, out, want);
}

static void test_gemm(void **state)
{
	(void)state;
	gemm_case(0, 1);
	gemm_case(1, 1);
	gemm_case(1, 0);
}

/* A [2,3,K] batched against a constant B [K,N] per channel (axis 1). */
static void test_matmul_const_b(void **state)
{
	(void)state;
	int64_t K = 5, N = 3, M = 3;
	int32_t *a = rnd_array(2 * M * K, 0, 255), *b = rnd_array(K * N, -127, 127);
	Rescale r[3] = {ir_rescale(1.0 / 80), ir_rescale(1.0 / 128), ir_rescale(1.0 / 45)};
	int ta = qin(DT_U8, 0.1, 120, 3, DIMS(2, M, K), a);
	int tw = qconst(DT_I8, 2, DIMS(K, N), b, (int)N, 1, NULL);
	int y = qval(DT_U8, 0.2, 128, 3, DIMS(2, M, N));
	Node *n = QNODE(OP_MATMUL, y, ta, tw);
	set_r(n, 3, r);
	void *out = out_buf(y);
	assert_int_equal(eval_last(out), 0);
	int32_t want[18];
	for (int64_t bt = 0; bt < 2; bt++)
		for (int64_t i = 0; i < M; i++)
			for (int64_t j = 0; j < N; j++)
				want[(bt * M + i) * N + j] = ref_out(
					ref_R(ref_mm(a + bt * M * K, 120, b, NULL, 0, NULL, i, j, K, N), r[j]),
					128, 0, 255);
	expect_q(y, out, want);
}

/* Two runtime inputs, per tensor, with zero points: A [2,1,M,K] and
 * B [3,K,N] broadcast to [2,3,M,N]. */
static void test_matmul_runtime_broadcast(void **state)
{
	(void)state;
	int64_t M = 2, K = 4, N = 3;
	int32_t *a = rnd_array(2 * M * K, -128, 127), *b = rnd_array(3 * K * N, -128, 127);
	Rescale r = ir_rescale(1.0 / 210);
	int ta = qin(DT_I8, 0.1, 7, 4, DIMS(2, 1, M, K), a);
	int tbt = qin(DT_I8, 0.1, -9, 3, DIMS(3, K, N), b);
	int y = qval(DT_I8, 0.2, 0, 4, DIMS(2, 3, M, N));
	Node *n = QNODE(OP_MATMUL, y, ta, tbt);
	set_r(n, 1, &r);
	void *out = out_buf(y);
	assert_int_equal(eval_last(out), 0);
	int32_t want[36];
	int32_t zb[3] = {-9, -9, -9};
	for (int64_t p = 0; p < 2; p++)
		for (int64_t q = 0; q < 3; q++)
			for (int64_t i = 0; i < M; i++)
				for (int64_t j = 0; j < N; j++)
					want[((p * 3 + q) * M + i) * N + j] = ref_out(
						ref_R(ref_mm(a + p * M * K, 7, b + q * K * N, zb, 0, NULL, i, j, K, N), r),
						0, -128, 127);
	expect_q(y, out, want);
}

/* ---- Add, Sub, Mul ---- */

/* a [2,3,4] (i8, scale 0.05, zp 3) op b [3,1] (u8, scale 0.13, zp 100)
 * -> [2,3,4] (i8, scale 0.1, zp -2); Add/Sub align both at the output
 * scale with ext extra bits. */
static void binary_case(Op op, int ext)
{
	int32_t *a = rnd_array(24, -128, 127), *b = rnd_array(3, 0, 255);
	double sa = 0.05, sb = 0.13, sy = 0.1;
	int ta = qin(DT_I8, sa, 3, 3, DIMS(2, 3, 4), a);
	int tb = qin(DT_U8, sb, 100, 2, DIMS(3, 1), b);
	int y = qval(DT_I8, sy, -2, 3, DIMS(2, 3, 4));
	Node *n = QNODE(op, y, ta, tb);
	Rescale rin[2] = {ir_rescale(ldexp(sa / sy, ext)), ir_rescale(ldexp(sb / sy, ext))};
	Rescale r = ir_rescale(sa * sb / sy);
	if (op == OP_MUL) {
		set_r(n, 1, &r);
	} else {
		n->q->nrin = 2, n->q->rin = rs(2, rin), n->q->ext = ext;
	}
	void *out = out_buf(y);
	assert_int_equal(eval_last(out), 0);
	int32_t want[24];
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 3; j++)
			for (int k = 0; k < 4; k++) {
				double xa = a[(i * 3 + j) * 4 + k] - 3, xb = b[j] - 100, v;
				if (op == OP_MUL) {
					v = ref_R(xa * xb, r);
				} else {
					double s = ref_R(xa, rin[0]) + (op == OP_SUB ? -1 : 1) * ref_R(xb, rin[1]);
					v = sat32(rha(ldexp(s, -ext)));
				}
				want[(i * 3 + j) * 4 + k] = ref_out(v, -2, -128, 127);
			}
	expect_q(y, out, want);
}

static void test_add_sub_mul(void **state)
{
	(void)state;
	binary_case(OP_ADD, 0);
	binary_case(OP_ADD, 6);
	binary_case(OP_SUB, 4);
	binary_case(OP_MUL, 0);
}

/* Add of i16 with a broadcast constant on the left ([4] + [2,4]). */
static void test_add_const_i16(void **state)
{
	(void)state;
	int32_t *a = rnd_array(4, -2000, 2000), *b = rnd_array(8, -32768, 32767);
	int ta = qconst(DT_I16, 1, DIMS(4), a, 1, -1, NULL);
	g->tensor[ta].q->scale[0] = 1.0 / 256;
	int tb = qin(DT_I16, 1.0 / 1024, 0, 2, DIMS(2, 4), b);
	int y = qval(DT_I16, 1.0 / 512, 0, 2, DIMS(2, 4));
	Node *n = QNODE(OP_ADD, y, ta, tb);
	/* The sum at 2^-10 (output 2^-9 plus ext = 1 bit): a * 4, b * 1. */
	Rescale rin[2] = {{0, -2}, {0, 0}};
	n->q->nrin = 2, n->q->rin = rs(2, rin), n->q->ext = 1;
	void *out = out_buf(y);
	assert_int_equal(eval_last(out), 0);
	int32_t want[8];
	for (int i = 0; i < 8; i++)
		want[i] = ref_out(sat32(rha((ref_R(a[i % 4], rin[0]) + ref_R(b[i], rin[1])) / 2)),
		                  0, -32768, 32767);
	expect_q(y, out, want);
}

/* ---- pools and means ---- */

/* AveragePool 3x3 stride 2 pad 1 on [1,2,5,5], with and without
 * count_include_pad, rescale 0.75 (Q31 with ties) or 1. */
static void avgpool_case(int incl, Rescale r)
{
	int32_t *x = rnd_array(50, -128, 127);
	int tx = qin(DT_I8, 0.1, 2, 4, DIMS(1, 2, 5, 5), x);
	int y = qval(DT_I8, 0.1, -1, 4, DIMS(1, 2, 3, 3));
	Node *n = QNODE(OP_AVGPOOL, y, tx);
	n->a.win.nsp = 2;
	for (int i = 0; i < 2; i++)
		n->a.win.k[i] = 3, n->a.win.s[i] = 2, n->a.win.d[i] = 1;
	for (int i = 0; i < 4; i++)
		n->a.win.pad[i] = 1;
	n->a.win.incl_pad = incl;
	set_r(n, 1, &r);
	void *out = out_buf(y);
	assert_int_equal(eval_last(out), 0);
	int32_t want[18];
	for (int c = 0, i = 0; c < 2; c++)
		for (int oh = 0; oh < 3; oh++)
			for (int ow = 0; ow < 3; ow++, i++) {
				double s = 0, cnt = 0;
				for (int a = 0; a < 3; a++)
					for (int b = 0; b < 3; b++) {
						int ih = oh * 2 - 1 + a, iw = ow * 2 - 1 + b;
						if (ih < 0 || ih >= 5 || iw < 0 || iw >= 5) {
							cnt += incl;
							continue;
						}
						s += x[(c * 5 + ih) * 5 + iw] - 2;
						cnt++;
					}
				want[i] = ref_out(rha(ref_R(s, r) / cnt), -1, -128, 127);
			}
	expect_q(y, out, want);
}

static void test_avgpool(void **state)
{
	(void)state;
	Rescale r = ir_rescale(0.75);
	assert_int_not_equal(r.m, 0);
	avgpool_case(0, r);
	avgpool_case(1, r);
	avgpool_case(1, (Rescale){0, 0});
}

/* GlobalAveragePool and GlobalMaxPool on [2,3,4,5], u8 with zp. */
static void test_global_pools(void **state)
{
	(void)state;
	for (int mx = 0; mx < 2; mx++) {
		int32_t *x = rnd_array(120, 0, 255);
		for (int i = 0; i < 20; i++)   /* plane 0 all below zp: a negative max */
			x[i] = rnd(0, 80);
		int tx = qin(DT_U8, 0.1, 90, 4, DIMS(2, 3, 4, 5), x);
		int y = qval(DT_U8, 0.08, 80, 4, DIMS(2, 3, 1, 1));
		Node *n = QNODE(mx ? OP_GMAXPOOL : OP_GAVGPOOL, y, tx);
		Rescale r = ir_rescale(0.1 / 0.08);
		set_r(n, 1, &r);
		void *out = out_buf(y);
		assert_int_equal(eval_last(out), 0);
		int32_t want[6];
		for (int p = 0; p < 6; p++) {
			double s = 0, m = -1e9;
			for (int i = 0; i < 20; i++)
				s += x[p * 20 + i] - 90, m = fmax(m, x[p * 20 + i] - 90);
			want[p] = ref_out(mx ? ref_R(m, r) : rha(ref_R(s, r) / 20), 80, 0, 255);
		}
		expect_q(y, out, want);
	}
}

/* ReduceMean of [2,3,4] over axis 1 (keepdims) and axes {-1, 0}. */
static void test_reducemean(void **state)
{
	(void)state;
	int32_t *x = rnd_array(24, -128, 127);
	Rescale r = ir_rescale(1.0);
	for (int form = 0; form < 2; form++) {
		int tx = qin(DT_I8, 0.1, -7, 3, DIMS(2, 3, 4), x);
		int ax = form ? ir_const_new(g, NULL, DT_I64, 1, DIMS(2), I64(-1, 0))
		              : ir_const_new(g, NULL, DT_I64, 1, DIMS(1), I64(1));
		int y = form ? qval(DT_I8, 0.1, 3, 1, DIMS(3)) : qval(DT_I8, 0.1, 3, 3, DIMS(2, 1, 4));
		Node *n = QNODE(OP_REDUCEMEAN, y, tx, ax);
		n->a.reduce.keepdims = !form;
		set_r(n, 1, &r);
		void *out = out_buf(y);
		assert_int_equal(eval_last(out), 0);
		int32_t want[8];
		for (int o = 0; o < (form ? 3 : 8); o++) {
			double s = 0;
			for (int i = 0; i < 2; i++)
				for (int j = 0; j < 3; j++)
					for (int k = 0; k < 4; k++)
						if (form ? j == o : i == o / 4 && k == o % 4)
							s += x[(i * 3 + j) * 4 + k] + 7;
			want[o] = ref_out(rha(s / (form ? 8 : 3)), 3, -128, 127);
		}
		expect_q(y, out, want);
	}
}

/* ---- Concat ---- */

/* Three inputs with their own scales and zero points along axis 1. */
static void test_concat(void **state)
{
	(void)state;
	int64_t d[3] = {1, 2, 3};
	double s[3] = {0.05, 0.1, 0.3}, sy = 0.1;
	int32_t zp[3] = {0, 10, -20}, *x[3];
	int t[3];
	Rescale rin[3];
	for (int j = 0; j < 3; j++) {
		x[j] = rnd_array(2 * d[j] * 3, -128, 127);
		t[j] = qin(DT_I8, s[j], zp[j], 3, DIMS(2, d[j], 3), x[j]);
		rin[j] = ir_rescale(s[j] / sy);
	}
	int y = qval(DT_I8, sy, 4, 3, DIMS(2, 6, 3));
	Node *n = QNODE(OP_CONCAT, y, t[0], t[1], t[2]);
	n->a.axis.axis = -2;
	n->q->nrin = 3, n->q->rin = rs(3, rin);
	void *out = out_buf(y);
	assert_int_equal(eval_last(out), 0);
	int32_t want[36];
	for (int o = 0, i = 0; o < 2; o++)
		for (int j = 0; j < 3; j++)
			for (int k = 0; k < d[j] * 3; k++, i++)
				want[i] = ref_out(ref_R(x[j][o * d[j] * 3 + k] - zp[j], rin[j]), 4, -128, 127);
	expect_q(y, out, want);
}

/* ---- unary ---- */

static double sigmoid(double v)
{
	return 1 / (1 + exp(-v));
}

/* Sigmoid by a full table (i8 in at 1/16, u8 out at 1/256), then a short
 * table that an input misses: reported. */
static void test_lut_unary(void **state)
{
	(void)state;
	int32_t *lut = arena_alloc(arena, 256 * sizeof *lut), *x = rnd_array(64, -128, 127);
	for (int q = -128; q < 128; q++)
		lut[q + 128] = (int32_t)clampd(rha(sigmoid(q / 16.0) * 256), 0, 255);
	int tx = qin(DT_I8, 1.0 / 16, 0, 2, DIMS(8, 8), x);
	int y = qval(DT_U8, 1.0 / 256, 0, 2, DIMS(8, 8));
	Node *n = QNODE(OP_SIGMOID, y, tx);
	n->q->lut = lut, n->q->lut_lo = -128, n->q->nlut = 256;
	void *out = out_buf(y);
	assert_int_equal(eval_last(out), 0);
	int32_t want[64];
	for (int i = 0; i < 64; i++)
		want[i] = (int32_t)clampd(rha(sigmoid(x[i] / 16.0) * 256), 0, 255);
	expect_q(y, out, want);
	n = QNODE(OP_SIGMOID, qval(DT_U8, 1.0 / 256, 0, 2, DIMS(8, 8)), tx);
	n->q->lut = lut + 118, n->q->lut_lo = -10, n->q->nlut = 20;
	assert_int_equal(eval_last(out_buf(n->out[0])), 1);
	assert_non_null(strstr(diag.last, "outside the table"));
}

/* Relu (lo = zp_y, rescale 2^-1) and Clip(0, 6) at the same scale;
 * binary scales keep the real-valued reference exact. */
static void test_relu_clip(void **state)
{
	(void)state;
	int32_t *x = rnd_array(40, -128, 127);
	int tx = qin(DT_I8, 0.125, -4, 2, DIMS(5, 8), x);
	int y = qval(DT_I8, 0.25, -9, 2, DIMS(5, 8));
	Node *n = QNODE(OP_RELU, y, tx);
	Rescale half = {0, 1};
	set_r(n, 1, &half);
	n->q->lo = -9;
	void *out = out_buf(y);
	assert_int_equal(eval_last(out), 0);
	int32_t want[40];
	for (int i = 0; i < 40; i++)   /* quantize(relu(real x)) at the output scale */
		want[i] = (int32_t)clampd(-9 + rha(fmax(0, (x[i] + 4) * 0.125) / 0.25), -128, 127);
	expect_q(y, out, want);
	/* Clip(0, 6) at scale 1/8, zp 5 in and out: thresholds 5 and 53. */
	int tx2 = qin(DT_I8, 0.125, 5, 2, DIMS(5, 8), x);
	y = qval(DT_I8, 0.125, 5, 2, DIMS(5, 8));
	n = QNODE(OP_CLIP, y, tx2);
	Rescale one = {0, 0};
	set_r(n, 1, &one);
	n->q->lo = 5 + (int32_t)rha(0 / 0.125), n->q->hi = 5 + (int32_t)rha(6 / 0.125);
	assert_int_equal(eval_last(out), 0);
	for (int i = 0; i < 40; i++)
		want[i] = 5 + (int32_t)rha(clampd((x[i] - 5) * 0.125, 0, 6) / 0.125);
	expect_q(y, out, want);
}

/* ---- Softmax ---- */

/* Softmax of x (i8, scale sx, zp 3) over rows of len spaced inner apart,
 * out yt at scale sy, zp 0: exact per the table, and within 1/2 LSB + the
 * table's error of the real softmax; every row sums to ~1. */
static void softmax_check(const int32_t *x, double sx, const int32_t *lut, int64_t outer,
                          int64_t len, int64_t inner, DType yt, double sy, const void *out,
                          Rescale r)
{
	double hi = yt == DT_U8 ? 255 : 2147483647.0;
	for (int64_t o = 0; o < outer; o++)
		for (int64_t in = 0; in < inner; in++) {
			int64_t base = o * len * inner + in, S = 0, m = -1000;
			double real = 0, sum = 0;
			for (int64_t i = 0; i < len; i++)
				m = x[base + i * inner] > m ? x[base + i * inner] : m;
			for (int64_t i = 0; i < len; i++)
				S += lut[m - x[base + i * inner]], real += exp((x[base + i * inner] - m) * sx);
			for (int64_t i = 0; i < len; i++) {
				int64_t E = lut[m - x[base + i * inner]];
				int64_t p = (E * ((int64_t)1 << 30) + S / 2) / S;
				int32_t want = ref_out(ref_R((double)p, r), 0, 0, (int32_t)hi);
				int32_t got = elem(yt, out, base + i * inner);
				if (got != want)
					fail_msg("element %lld: got %d, want %d", (long long)(base + i * inner), got, want);
				/* u8 at 1/256 cannot hold 1: it saturates at 255/256 */
				double pr = fmin(exp((x[base + i * inner] - m) * sx) / real, hi * sy);
				assert_true(fabs(got * sy - pr) <= 0.5 * sy + 1e-6);
				sum += got * sy;
			}
			assert_true(fabs(sum - 1) <= len * (0.5 * sy + 1e-6));
		}
}

/* Along dim 1 and legacy (dims 1.. flattened) to u8 at 1/256; then the
 * Q30 probabilities themselves (i32 output, rescale 1) to see their
 * rounding. */
static void test_softmax(void **state)
{
	(void)state;
	double sx = 1.0 / 8;
	int32_t *lut = arena_alloc(arena, 256 * sizeof *lut);
	for (int d = 0; d < 256; d++)
		lut[d] = (int32_t)rha(exp(-d * sx) * 1073741824.0);
	for (int form = 0; form < 3; form++) {
		int legacy = form == 1;
		DType yt = form == 2 ? DT_I32 : DT_U8;
		double sy = form == 2 ? ldexp(1, -30) : 1.0 / 256;
		Rescale r = {0, form == 2 ? 0 : 22};   /* Q30 -> 2^-8 */
		int32_t *x = rnd_array(2 * 3 * 4, -60, 60);
		int tx = qin(DT_I8, sx, 3, 3, DIMS(2, 3, 4), x);
		int y = qval(yt, sy, 0, 3, DIMS(2, 3, 4));
		Node *n = QNODE(OP_SOFTMAX, y, tx);
		n->a.axis.axis = 1, n->a.axis.legacy = legacy;
		n->q->lut = lut, n->q->nlut = 256;
		set_r(n, 1, &r);
		void *out = out_buf(y);
		assert_int_equal(eval_last(out), 0);
		if (legacy)
			softmax_check(x, sx, lut, 2, 12, 1, yt, sy, out, r);
		else
			softmax_check(x, sx, lut, 2, 3, 4, yt, sy, out, r);
	}
}

/* ---- errors ---- */

static void test_unsupported_and_bad_qnode(void **state)
{
	(void)state;
	int32_t *x = rnd_array(4, -10, 10);
	int ta = qin(DT_I8, 0.1, 0, 1, DIMS(4), x), tb = qin(DT_I8, 0.1, 0, 1, DIMS(4), x);
	int y = qval(DT_I8, 0.1, 0, 1, DIMS(4));
	QNODE(OP_DIV, y, ta, tb);
	assert_int_equal(eval_last(out_buf(y)), 1);
	assert_non_null(strstr(diag.last, "Div"));
	/* a Q31 multiplier below 2^30 is outside potc_rescale's range */
	Node *n = QNODE(OP_MUL, y, ta, tb);
	set_r(n, 1, &(Rescale){12345, 3});
	assert_int_equal(eval_last(out_buf(y)), 1);
	assert_non_null(strstr(diag.last, "range"));
}

/* ---- whole graph ---- */

typedef struct {
	int calls;
	int tensor[8];
} Seen;

static void observe(void *ctx, const Graph *gr, int t, const void *data)
{
	Seen *s = ctx;
	(void)gr;
	assert_non_null(data);
	if (s->calls < 8)
		s->tensor[s->calls] = t;
	s->calls++;
}

/* x i8 [1,1,6,6] -> Conv 3x3 pad 1 (2 channels, fused Relu) -> MaxPool 2x2
 * (no QNode: moves integers) -> GlobalAveragePool -> [1,2,1,1]. */
static void test_graph(void **state)
{
	(void)state;
	int32_t *x = rnd_array(36, -128, 127), *w = rnd_array(18, -127, 127);
	int32_t *b = rnd_array(2, -500, 500);
	Rescale r[2] = {ir_rescale(1.0 / 150), ir_rescale(1.0 / 250)}, one = {0, 0};
	int tx = qval(DT_I8, 0.05, 1, 4, DIMS(1, 1, 6, 6));
	int tw = qconst(DT_I8, 4, DIMS(2, 1, 3, 3), w, 2, 0, NULL);
	int tb = qconst(DT_I32, 1, DIMS(2), b, 1, -1, NULL);
	int y1 = qval(DT_I8, 0.1, -3, 4, DIMS(1, 2, 6, 6));
	int y2 = qval(DT_I8, 0.1, -3, 4, DIMS(1, 2, 3, 3));
	int y3 = qval(DT_I8, 0.1, -3, 4, DIMS(1, 2, 1, 1));
	Node *n = QNODE(OP_CONV, y1, tx, tw, tb);
	n->a.win = (Window){.nsp = 2, .k = {3, 3}, .s = {1, 1}, .d = {1, 1},
	                    .pad = {1, 1, 1, 1}, .group = 1};
	set_r(n, 2, r);
	n->q->lo = -3, n->act.kind = ACT_RELU;
	int id = ir_node_new(g, OP_MAXPOOL, NULL, 1, &y1, 1, &y2);
	g->node[id].a.win = (Window){.nsp = 2, .k = {2, 2}, .s = {2, 2}, .d = {1, 1}};
	n = QNODE(OP_GAVGPOOL, y3, y2);
	set_r(n, 1, &one);
	g->input = arena_dup(arena, &tx, sizeof tx), g->ninput = 1;
	g->output = arena_dup(arena, &y3, sizeof y3), g->noutput = 1;
	int8_t xin[36], got[2];
	for (int i = 0; i < 36; i++)
		xin[i] = (int8_t)x[i];
	const void *ins[1] = {xin};
	void *outs[1] = {got};
	Seen seen = {0};
	assert_int_equal(ir_qeval(g, ins, outs, observe, &seen, &diag), 0);
	assert_int_equal(seen.calls, 3);
	assert_int_equal(seen.tensor[0], y1);
	assert_int_equal(seen.tensor[1], y2);
	assert_int_equal(seen.tensor[2], y3);
	for (int m = 0; m < 2; m++) {
		double c1[36], s = 0;
		for (int oh = 0; oh < 6; oh++)
			for (int ow = 0; ow < 6; ow++) {
				double acc = b[m];
				for (int a = 0; a < 3; a++)
					for (int f = 0; f < 3; f++) {
						int ih = oh - 1 + a, iw = ow - 1 + f;
						if (ih >= 0 && ih < 6 && iw >= 0 && iw < 6)
							acc += (double)(x[ih * 6 + iw] - 1) * w[m * 9 + a * 3 + f];
					}
				c1[oh * 6 + ow] = ref_out(ref_R(acc, r[m]), -3, -3, 127);
			}
		for (int ph = 0; ph < 3; ph++)
			for (int pw = 0; pw < 3; pw++)
				s += fmax(fmax(c1[ph * 12 + pw * 2], c1[ph * 12 + pw * 2 + 1]),
				          fmax(c1[ph * 12 + 6 + pw * 2], c1[ph * 12 + 7 + pw * 2])) + 3;
		assert_int_equal(got[m], ref_out(rha(s / 9), -3, -128, 127));
	}
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, qsetup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_conv_per_channel),
		T(test_conv_saturate_relu),
		T(test_conv_stride_dilation),
		T(test_conv_groups),
		T(test_conv_1d),
		T(test_conv_acc64_and_overflow),
		T(test_gemm),
		T(test_matmul_const_b),
		T(test_matmul_runtime_broadcast),
		T(test_add_sub_mul),
		T(test_add_const_i16),
		T(test_avgpool),
		T(test_global_pools),
		T(test_reducemean),
		T(test_concat),
		T(test_lut_unary),
		T(test_relu_clip),
		T(test_softmax),
		T(test_unsupported_and_bad_qnode),
		T(test_graph),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
#undef T
}
