/* pass_accbound (narrow accumulators, --acc-bits P) on hand-built lowered
 * Gemm graphs.  The expected numbers are computed here from the docs'
 * definition, independently of the pass: the bound of a channel is
 * sum_k max(w_k xlo, w_k xhi) and its mirror; a scaled weight is
 * trunc(w / 2^s) with the smallest s that fits; a tile size fits when
 * every tile of it does.  The proof is then checked by brute force: the
 * adversarial inputs (x = xhi where w > 0, xlo where w < 0, and the mirror)
 * run through ir_qeval_node, which checks every partial sum of every tile
 * against P bits, and the test sums them itself too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "passes.h"

#include "irtest.h"

enum { MAXK = 16, MAXN = 4, NSAMP = 8 };

static QuantConfig cfg;
static float samples[NSAMP * MAXK];
static int gx, gw, gb, gy, gn;     /* the tensors and node of the graph */
static const double SX = 1.0 / 256, SY = 1.0 / 8192;

/* x (u8 input, [1, K], scale 1/256) -> Gemm (w i8 [N, K] tb, per-channel
 * binary points fw[c]; bias i32 at sx * sw[c]) -> y (i16, scale 2^-13). */
static void build(int K, int N, const int32_t *w, const int *fw, const int32_t *bias, int P)
{
	gx = ir_tensor_new(g, "x", DT_U8, 2, DIMS(1, K));
	g->tensor[gx].kind = TK_INPUT;
	Quant *qx = ir_quant_new(arena, 1, -1, 8, 1);
	qx->scale[0] = SX;
	g->tensor[gx].q = qx;
	g->input = arena_dup(arena, &gx, sizeof gx);
	g->ninput = 1;
	int8_t wv[MAXN * MAXK];
	for (int i = 0; i < N * K; i++)
		wv[i] = (int8_t)w[i];
	gw = ir_const_new(g, "w", DT_I8, 2, DIMS(N, K), wv);
	Quant *qw = ir_quant_new(arena, N, 0, 8, 0);
	qw->frac = arena_alloc(arena, (size_t)N * sizeof *qw->frac);
	Quant *qb = ir_quant_new(arena, N, 0, 32, 0);
	for (int c = 0; c < N; c++) {
		qw->frac[c] = fw[c];
		qw->scale[c] = ldexp(1, -fw[c]);
		qb->scale[c] = SX * qw->scale[c];
	}
	g->tensor[gw].q = qw;
	gb = ir_const_new(g, "b", DT_I32, 1, DIMS(N), bias);
	g->tensor[gb].q = qb;
	gy = ir_tensor_new(g, "y", DT_I16, 2, DIMS(1, N));
	Quant *qy = ir_quant_new(arena, 1, -1, 16, 0);
	qy->scale[0] = SY;
	g->tensor[gy].q = qy;
	g->tensor[gy].is_output = 1;
	g->output = arena_dup(arena, &gy, sizeof gy);
	g->noutput = 1;
	gn = ir_node_new(g, OP_GEMM, "gemm", 3, INS(gx, gw, gb), 1, &gy);
	Node *n = &g->node[gn];
	n->a.gemm.tb = 1;
	n->a.gemm.alpha = n->a.gemm.beta = 1;
	n->q = arena_alloc(arena, sizeof *n->q);
	n->q->lo = -32768;
	n->q->hi = 32767;
	n->q->nr = N;
	n->q->r = arena_alloc(arena, (size_t)N * sizeof *n->q->r);
	for (int c = 0; c < N; c++)
		n->q->r[c] = ir_rescale(SX * qw->scale[c] / SY);
	memset(&cfg, 0, sizeof cfg);
	cfg.mode = QM_FIXED;
	cfg.acc_bits = P;
	g->qcfg = &cfg;
}

static int32_t wat(int c, int k, int K)
{
	return ((const int8_t *)g->tensor[gw].data)[c * K + k];
}

/* The docs' bound of weights w[0..K) over x in [0, 255]. */
static int64_t bound(const int32_t *w, int K)
{
	int64_t hi = 0, lo = 0;
	for (int k = 0; k < K; k++) {
		hi += w[k] > 0 ? 255 * w[k] : 0;
		lo += w[k] < 0 ? 255 * w[k] : 0;
	}
	return hi > -lo ? hi : -lo;
}

/* Largest tile size every tile of which fits, 0 if none (brute force). */
static int64_t ref_ktile(const int32_t *w, int K, int64_t limit)
{
	for (int kt = K; kt >= 1; kt--) {
		int ok = 1;
		for (int s = 0; s < K; s += kt)
			ok &= bound(w + s, s + kt < K ? kt : K - s) <= limit;
		if (ok)
			return kt;
	}
	return 0;
}

/* Runs node gemm on the adversarial inputs of channel c (and the mirror);
 * with check, also checks the partial sums of tiles of kt here.  Returns
 * ir_qeval_node's verdict. */
static int adversarial(int c, int K, int P, int kt, int check)
{
	int64_t lim = (int64_t)1 << (P - 1);
	int bad = 0;
	for (int mirror = 0; mirror < 2; mirror++) {
		uint8_t x[MAXK];
		int64_t t = 0;
		for (int k = 0; k < K; k++) {
			int pos = wat(c, k, K) > 0;
			x[k] = (uint8_t)(pos != mirror ? 255 : 0);
			t = kt && k % kt == 0 ? 0 : t;
			t += (int64_t)x[k] * wat(c, k, K);
			if (check && (t < -lim || t > lim - 1))
				fail_msg("channel %d: a partial sum %lld leaves %d bits", c, (long long)t, P);
		}
		int16_t y[MAXN];
		const void *in[3] = {x, g->tensor[gw].data, g->tensor[gb].data};
		void *out[1] = {y};
		bad |= ir_qeval_node(g, gn, in, out, &diag);
	}
	return bad;
}

static const int32_t *bias_data(void)
{
	return g->tensor[gb].data;
}

static void test_fits(void **state)
{
	(void)state;
	const int32_t w[] = {1, -1, 20, 3};
	build(4, 1, w, (const int[]){7}, I32(100), 16);
	assert_int_equal(pass_accbound(g, &diag), 0);
	const QNode *q = g->node[gn].q;
	assert_int_equal(q->acc_method, ACC_FITS);
	assert_int_equal(q->acc_bits, 16);
	assert_int_equal(q->acc_limit, 32767);
	assert_int_equal(q->acc_worst, bound(w, 4));
	assert_int_equal(q->ktile, 0);
	for (int k = 0; k < 4; k++)
		assert_int_equal(wat(0, k, 4), w[k]);
	assert_int_equal(bias_data()[0], 100);
	assert_int_equal(adversarial(0, 4, 16, 0, 1), 0);
}

/* A single product over 12 bits: scaling is the only way. */
static void test_scaled(void **state)
{
	(void)state;
	const int32_t w[] = {127, -100, 3, 0, 1, 2, -1, 0};
	const int fw[] = {7, 6};
	build(4, 2, w, fw, I32(1000, -7), 12);
	Rescale r0 = g->node[gn].q->r[0], r1 = g->node[gn].q->r[1];
	assert_int_equal(pass_accbound(g, &diag), 0);
	const QNode *q = g->node[gn].q;
	const Quant *qw = g->tensor[gw].q, *qb = g->tensor[gb].q;
	assert_int_equal(q->acc_method, ACC_SCALED);
	assert_int_equal(q->acc_scaled, 1);
	int s = 0;              /* smallest s with every single product in 12 bits */
	while (255 * (127 >> s) > 2047)
		s++;
	int32_t want[4];
	for (int k = 0; k < 4; k++)
		want[k] = w[k] / (1 << s);    /* C division truncates toward zero */
	for (int k = 0; k < 4; k++) {
		assert_int_equal(wat(0, k, 4), want[k]);
		assert_int_equal(wat(1, k, 4), w[4 + k]);
	}
	assert_int_equal(qw->frac[0], fw[0] - s);
	assert_int_equal(qw->frac[1], fw[1]);
	assert_true(qw->scale[0] == ldexp(1, s - fw[0]));
	assert_true(ir_rescale_real(q->r[0]) == ldexp(ir_rescale_real(r0), s));
	assert_true(ir_rescale_real(q->r[1]) == ir_rescale_real(r1));
	/* bias: the same real value at the new scale sx * sw[0], rounded half away */
	double real = 1000 * SX * ldexp(1, -fw[0]);
	assert_true(qb->scale[0] == SX * qw->scale[0]);
	assert_int_equal(bias_data()[0], (int32_t)round(real / (SX * ldexp(1, s - fw[0]))));
	assert_int_equal(bias_data()[1], -7);
	assert_int_equal(q->ktile, (int)(ref_ktile(want, 4, 2047) == 4 ? 0 : ref_ktile(want, 4, 2047)));
	assert_int_equal(adversarial(0, 4, 12, q->ktile, 1), 0);
	assert_int_equal(adversarial(1, 4, 12, q->ktile, 1), 0);
}

/* Every two products fit 16 bits, three do not: tiles of 2 are exact, and
 * scaling the whole channel into one tile would cost two bits of weight. */
static const int32_t TW[] = {61, 61, -61, 61, 61, 61};

static void fill_samples(double v)
{
	for (int i = 0; i < NSAMP * 6; i++)
		samples[i] = v < 0 ? (float)((i * 37 % 256) / 256.0) : (float)v;
	cfg.nsamples = NSAMP;
	cfg.samples[0] = samples;
}

static void test_tiled(void **state)
{
	(void)state;
	build(6, 1, TW, (const int[]){8}, I32(5), 16);
	fill_samples(-1);
	assert_int_equal(pass_accbound(g, &diag), 0);
	const QNode *q = g->node[gn].q;
	assert_int_equal(q->acc_method, ACC_TILED);
	assert_int_equal(q->ktile, ref_ktile(TW, 6, 32767));
	assert_int_equal(q->ktile, 2);
	assert_int_equal(q->acc_worst, bound(TW, 6));
	for (int k = 0; k < 6; k++)
		assert_int_equal(wat(0, k, 6), TW[k]);
	assert_int_equal(bias_data()[0], 5);
	assert_int_equal(g->tensor[gw].q->frac[0], 8);
	assert_int_equal(adversarial(0, 6, 16, q->ktile, 1), 0);
}

/* On calibration data where the channel's input is 0, scaling costs
 * nothing measurable: the pass scales (one tile, faster kernels). */
static void test_scaled_by_measure(void **state)
{
	(void)state;
	build(6, 1, TW, (const int[]){8}, I32(5), 16);
	fill_samples(0);
	assert_int_equal(pass_accbound(g, &diag), 0);
	const QNode *q = g->node[gn].q;
	assert_int_equal(q->acc_method, ACC_SCALED);
	assert_int_equal(q->ktile, 0);
	int s = 0;
	int32_t ws[6];
	do {
		for (int k = 0; k < 6; k++)
			ws[k] = TW[k] / (1 << s);
	} while (bound(ws, 6) > 32767 && ++s);
	for (int k = 0; k < 6; k++)
		assert_int_equal(wat(0, k, 6), TW[k] / (1 << s));
	assert_int_equal(g->tensor[gw].q->frac[0], 8 - s);
	assert_int_equal(adversarial(0, 6, 16, 0, 1), 0);
}

/* --acc-unchecked: the numbers recorded, nothing changed or checked. */
static void test_unchecked(void **state)
{
	(void)state;
	const int32_t w[] = {127, -100, 3, 0};
	build(4, 1, w, (const int[]){7}, I32(1000), 12);
	cfg.acc_unchecked = 1;
	assert_int_equal(pass_accbound(g, &diag), 0);
	const QNode *q = g->node[gn].q;
	assert_int_equal(q->acc_method, ACC_UNCHECKED);
	assert_int_equal(q->acc_worst, bound(w, 4));
	assert_int_equal(q->acc_limit, 2047);
	for (int k = 0; k < 4; k++)
		assert_int_equal(wat(0, k, 4), w[k]);
	assert_int_equal(bias_data()[0], 1000);
	assert_int_equal(adversarial(0, 4, 12, 0, 0), 0);    /* evaluated, not checked */
	/* the same node claimed to fit: the evaluator catches the wrong proof */
	g->node[gn].q->acc_method = ACC_FITS;
	assert_int_not_equal(adversarial(0, 4, 12, 0, 0), 0);
	assert_non_null(strstr(diag.last, "narrow accumulator"));
}

/* Conv: the reduction runs input channel outer, kernel window inner (the
 * weight's row-major order), so tiles follow that order.  x [1, 3, 1, 2]
 * under a 1x2 kernel: one output point whose taps are the whole input. */
static void test_conv_tiled(void **state)
{
	(void)state;
	const int32_t w[] = {61, -61, 61, 61, 61, -61};
	build(6, 1, w, (const int[]){8}, I32(5), 16);
	Node *n = &g->node[gn];
	n->op = OP_CONV;
	memset(&n->a.win, 0, sizeof n->a.win);
	n->a.win.nsp = 2;
	n->a.win.k[0] = 1, n->a.win.k[1] = 2;
	n->a.win.s[0] = n->a.win.s[1] = n->a.win.d[0] = n->a.win.d[1] = 1;
	n->a.win.group = 1;
	Tensor *x = &g->tensor[gx], *wt = &g->tensor[gw], *y = &g->tensor[gy];
	x->rank = wt->rank = y->rank = 4;
	memcpy(x->dim, DIMS(1, 3, 1, 2), 4 * sizeof(int64_t));
	memcpy(wt->dim, DIMS(1, 3, 1, 2), 4 * sizeof(int64_t));
	memcpy(y->dim, DIMS(1, 1, 1, 1), 4 * sizeof(int64_t));
	assert_int_equal(pass_accbound(g, &diag), 0);
	const QNode *q = g->node[gn].q;
	assert_int_equal(q->acc_method, ACC_TILED);
	assert_int_equal(q->ktile, ref_ktile(w, 6, 32767));
	assert_int_equal(q->acc_worst, bound(w, 6));
	assert_int_equal(adversarial(0, 6, 16, q->ktile, 1), 0);
	/* one term more per tile and the evaluator sees a partial sum leave */
	g->node[gn].q->ktile++;
	assert_int_not_equal(adversarial(0, 6, 16, 0, 0), 0);
}

/* 32 bits (0): the pass leaves the graph alone. */
static void test_wide(void **state)
{
	(void)state;
	const int32_t w[] = {127, -100, 3, 0};
	build(4, 1, w, (const int[]){7}, I32(1000), 0);
	assert_int_equal(pass_accbound(g, &diag), 0);
	assert_int_equal(g->node[gn].q->acc_bits, 0);
	assert_int_equal(wat(0, 0, 4), 127);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_fits),
		T(test_scaled),
		T(test_tiled),
		T(test_scaled_by_measure),
		T(test_unchecked),
		T(test_conv_tiled),
		T(test_wide),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
#undef T
}
