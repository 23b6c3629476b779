/* Unit tests for the quantization helpers (ir/quant.c) and the choice of
 * binary points (passes/calibrate.c + passes/qchoose.c).  References are
 * computed here directly in double: brute-force MSE on the raw values,
 * exact products for rescales. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "irtest.h"
#include "passes.h"
#include "potc_fixed.h"

/* ---- ir_rescale ---- */

static void rescale_powers_of_two_are_shifts(void **state)
{
	(void)state;
	for (int e = -62; e <= 31; e++) {   /* the shift range [-31, 62] */
		Rescale r = ir_rescale(ldexp(1.0, e));
		assert_int_equal(r.m, 0);
		assert_int_equal(r.n, -e);
	}
}

static void rescale_q31_is_accurate(void **state)
{
	(void)state;
	srand(1);
	for (int i = 0; i < 10000; i++) {
		double M = ldexp(0.5 + rand() / (RAND_MAX + 1.0), rand() % 60 - 40);
		Rescale r = ir_rescale(M);
		if (r.m == 0)
			continue;
		assert_true(r.m >= (1 << 30));
		assert_true(fabs(ir_rescale_real(r) - M) <= M * ldexp(1.0, -30));
		/* potc_rescale agrees with round(x * M) up to the Q31 rounding */
		int32_t x = rand() % 200001 - 100000;
		double want = x * ir_rescale_real(r);
		if (fabs(want) < 1e9) {
			int32_t got = potc_rescale(x, r.m, r.n);
			/* two roundings (Q31 product, then the shift) and m's own error */
			assert_true(fabs(got - want) <= 0.5 + ldexp(0.5, -(r.n > 0 ? r.n : 0)) + fabs(want) * ldexp(1.0, -30));
		}
	}
}

/* ---- ir_quantize ---- */

static void quantize_rounds_half_away_and_saturates(void **state)
{
	(void)state;
	Quant *q = ir_quant_new(arena, 1, -1, 8, 0);
	q->scale[0] = 0.5;
	assert_int_equal(ir_quantize(q, 0, 0.25), 1);     /* 0.5 -> 1 */
	assert_int_equal(ir_quantize(q, 0, -0.25), -1);   /* -0.5 -> -1 */
	assert_int_equal(ir_quantize(q, 0, 0.74), 1);
	assert_int_equal(ir_quantize(q, 0, 1000), 127);
	assert_int_equal(ir_quantize(q, 0, -1000), -128);
	assert_int_equal(ir_quantize(q, 0, NAN), 0);
	Quant *u = ir_quant_new(arena, 1, -1, 4, 1);
	u->scale[0] = 0.1;
	u->zp[0] = 3;
	assert_int_equal(ir_qmax(u), 15);
	assert_int_equal(ir_quantize(u, 0, -1), 0);
	assert_int_equal(ir_quantize(u, 0, 0.5), 8);
	assert_int_equal(ir_quant_dtype(u), DT_U8);
	assert_true(fabs(ir_dequantize(u, 0, 8) - 0.5) < 1e-12);
}

/* ---- binary point choice ---- */

static double mse_fixed(const float *x, int64_t n, int f, int bits, int uns)
{
	double lo = uns ? 0 : -ldexp(1.0, bits - 1), hi = uns ? ldexp(1.0, bits) - 1 : ldexp(1.0, bits - 1) - 1;
	double e = 0;
	for (int64_t i = 0; i < n; i++) {
		double v = ldexp(x[i], f);
		v = v < 0 ? -floor(-v + 0.5) : floor(v + 0.5);
		v = v < lo ? lo : v > hi ? hi : v;
		double d = x[i] - ldexp(v, -f);
		e += d * d;
	}
	return e / (double)n;
}

/* x -> Neg -> y over n samples of one value each, quantized fixed 8-bit. */
static const Tensor *calibrated_input(const float *samples, int64_t n, int bits, int bp_max)
{
	static QuantConfig cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.mode = QM_FIXED;
	cfg.wbits = 8;
	cfg.abits = bits;
	cfg.bp_max = bp_max;
	cfg.nsamples = n;
	cfg.samples[0] = samples;
	int x = ir_tensor_new(g, "x", DT_F32, 1, DIMS(1));
	g->tensor[x].kind = TK_INPUT;
	int y = ir_tensor_new(g, "y", DT_F32, 1, DIMS(1));
	g->input = arena_dup(arena, INS(x), sizeof(int));
	g->ninput = 1;
	g->output = arena_dup(arena, INS(y), sizeof(int));
	g->noutput = 1;
	g->tensor[y].is_output = 1;
	ir_node_new(g, OP_NEG, "neg", 1, INS(x), 1, INS(y));
	g->qcfg = &cfg;
	assert_int_equal(pass_calibrate(g, &diag), 0);
	assert_int_equal(pass_qchoose(g, &diag), 0);
	return &g->tensor[x];
}

/* Gaussian values and two outliers.  At 4 bits clipping the outliers buys
 * resolution for everything else, so the MSE point is finer than the
 * max-based one; at 8 bits it is not worth it.  Either way the choice must
 * be (within the histogram's precision) the best point of the search window
 * by a brute-force count on the raw values. */
static void check_mse_point(int bits, int expect_finer)
{
	enum { N = 4000 };
	static float s[N];
	srand(7);
	for (int i = 0; i < N; i++) {
		double u1 = (rand() + 1.0) / (RAND_MAX + 2.0), u2 = rand() / (RAND_MAX + 1.0);
		s[i] = (float)(0.3 * sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));  /* N(0, 0.3) */
	}
	s[0] = 7.5f;
	s[1] = -6.0f;
	const Tensor *x = calibrated_input(s, N, bits, 0);
	assert_non_null(x->q);
	assert_non_null(x->q->frac);
	assert_int_equal(x->q->bits, bits);
	int f0 = bits - 1 - (int)ceil(log2(7.5)), f = x->q->frac[0];
	assert_int_equal(x->q->is_unsigned, 0);
	double best = INFINITY;
	for (int k = f0; k <= f0 + 4; k++)
		best = fmin(best, mse_fixed(s, N, k, bits, 0));
	assert_true(f >= f0 && f <= f0 + 4);
	assert_true(mse_fixed(s, N, f, bits, 0) <= best * 1.05);
	if (expect_finer) {
		assert_true(f > f0);
		assert_true(mse_fixed(s, N, f, bits, 0) < mse_fixed(s, N, f0, bits, 0));
	}
}

static void mse_point_4bit_clips_outliers(void **state)
{
	(void)state;
	check_mse_point(4, 1);
}

static void mse_point_8bit_is_best(void **state)
{
	(void)state;
	check_mse_point(8, 0);
}

static void max_point_never_clips(void **state)
{
	(void)state;
	enum { N = 1000 };
	static float s[N];
	for (int i = 0; i < N; i++)
		s[i] = (float)(i % 100) / 100.0f * 3.0f;      /* [0, 2.97]: unsigned */
	const Tensor *x = calibrated_input(s, N, 8, 1);
	assert_int_equal(x->q->is_unsigned, 1);
	assert_int_equal(x->q->frac[0], 8 - 2);          /* 2.97 < 2^2 */
	for (int i = 0; i < N; i++)
		assert_true(s[i] * 64 <= 255);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rescale_powers_of_two_are_shifts),
		cmocka_unit_test(rescale_q31_is_accurate),
		cmocka_unit_test_setup_teardown(quantize_rounds_half_away_and_saturates, setup, teardown),
		cmocka_unit_test_setup_teardown(mse_point_4bit_clips_outliers, setup, teardown),
		cmocka_unit_test_setup_teardown(mse_point_8bit_is_best, setup, teardown),
		cmocka_unit_test_setup_teardown(max_point_never_clips, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
