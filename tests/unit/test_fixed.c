/* runtime/fixed/potc_fixed.h against independent references: long double
 * (roundl rounds half away from zero; every value here is exact in its
 * 64-bit mantissa) and 128-bit integer division with explicit remainder
 * handling.  Rounding and saturation are checked exhaustively on dense
 * ranges and at every boundary; the activation approximations over every
 * int8 and every int16 input against double precision, printing the
 * measured maximum errors.  Last, the header must compile alone, warning-free
 * and float-free, with gcc, clang and arm-none-eabi-gcc (Cortex-M0). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include <unistd.h>

#include "../../runtime/fixed/potc_fixed.h"

__extension__ typedef __int128 i128;

static uint64_t rng = 0x9E3779B97F4A7C15u;

/* xorshift64*: reproducible random words. */
static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717u;
}

/* A random int32 whose magnitude has a random bit length, so that small
 * and huge values are equally likely; both signs, INT32_MIN included. */
static int32_t rnd32(void)
{
	uint64_t r = rnd();
	int len = (int)(r % 32);
	int64_t v = (int64_t)((r >> 31) & (((uint64_t)1 << len) - 1));
	return (int32_t)(r & 64 ? -v - 1 : v);
}

static int64_t rnd64(void)
{
	uint64_t r = rnd();
	int len = (int)(r % 64);
	int64_t v = (int64_t)(rnd() & (((uint64_t)1 << len) - 1));
	return r & 64 ? -v - 1 : v;
}

/* Boundary values: 0, +-1, +-2^k, +-2^k+-1, INT32_MIN, INT32_MAX. */
static int edges32(int32_t *e)
{
	int n = 0;
	e[n++] = 0;
	e[n++] = INT32_MIN;
	e[n++] = INT32_MIN + 1;
	e[n++] = INT32_MAX;
	e[n++] = INT32_MAX - 1;
	for (int k = 0; k < 31; k++)
		for (int d = -1; d <= 1; d++) {
			int64_t p = ((int64_t)1 << k) + d;
			if (p <= INT32_MAX) {
				e[n++] = (int32_t)p;
				e[n++] = (int32_t)-p;
			}
		}
	return n;
}

/* ---- references ---- */

/* x / 2^n, ties away from zero: truncating division plus remainder test. */
static i128 ref_rnd(i128 x, int n)
{
	i128 d = (i128)1 << n, q = x / d, r = x % d;
	if (2 * (r < 0 ? -r : r) >= d && n > 0)
		q += x < 0 ? -1 : 1;
	return q;
}

static i128 ref_floor(i128 x, int n)
{
	i128 d = (i128)1 << n, q = x / d;
	return q - (x % d < 0);
}

static i128 ref_clamp(i128 x, i128 lo, i128 hi)
{
	return x < lo ? lo : x > hi ? hi : x;
}

static i128 ref_smin(int bits)
{
	return -((i128)1 << (bits - 1));
}

static i128 ref_smax(int bits)
{
	return ((i128)1 << (bits - 1)) - 1;
}

/* ---- shifts ---- */

static void test_rshift_dense(void **state)
{
	(void)state;
	for (int n = 0; n <= 20; n++)
		for (int32_t x = -70000; x <= 70000; x++) {
			long double want = roundl(ldexpl((long double)x, -n));
			if (potc_rshift_rnd32(x, n) != (int32_t)want || potc_rshift_rnd64(x, n) != (int64_t)want)
				fail_msg("rshift_rnd(%d, %d) = %d, want %.0Lf", x, n, potc_rshift_rnd32(x, n), want);
			if (potc_asr32(x, n) != (int32_t)floorl(ldexpl((long double)x, -n)))
				fail_msg("asr32(%d, %d)", x, n);
		}
}

static void test_rshift_edges(void **state)
{
	(void)state;
	int32_t e[200];
	int ne = edges32(e);
	for (int n = 0; n <= 31; n++)
		for (int i = 0; i < ne; i++) {
			long double want = roundl(ldexpl((long double)e[i], -n));
			assert_int_equal(potc_rshift_rnd32(e[i], n), (int32_t)want);
			assert_true(potc_rshift_rnd32(e[i], n) == (int32_t)ref_rnd(e[i], n));
			assert_true(potc_asr32(e[i], n) == (int32_t)ref_floor(e[i], n));
		}
	/* the documented extremes */
	assert_int_equal(potc_rshift_rnd32(INT32_MAX, 1), 1 << 30);
	assert_int_equal(potc_rshift_rnd32(INT32_MIN, 31), -1);
	assert_int_equal(potc_rshift_rnd32(INT32_MAX, 31), 1);
	assert_int_equal(potc_rshift_rnd32(-(1 << 30), 31), -1);   /* -0.5 -> -1 */
	assert_int_equal(potc_rshift_rnd32((1 << 30) - 1, 31), 0);
	assert_int_equal(potc_rshift_rnd32(-3, 1), -2);
	assert_int_equal(potc_rshift_rnd32(3, 1), 2);
	assert_int_equal(potc_rshift_rnd32(-5, 2), -1);
	assert_int_equal(potc_rshift_rnd32(-6, 2), -2);
}

static void test_rshift64(void **state)
{
	(void)state;
	const int64_t fixed[] = {0, 1, -1, INT64_MAX, INT64_MIN, INT64_MIN + 1, INT64_MAX - 1,
	                         (int64_t)1 << 62, -((int64_t)1 << 62), ((int64_t)1 << 61) * 3};
	for (int n = 0; n <= 63; n++)
		for (int i = 0; i < 10; i++) {
			if (n <= 62)
				assert_true(potc_rshift_rnd64(fixed[i], n) == (int64_t)ref_rnd(fixed[i], n));
			assert_true(potc_asr64(fixed[i], n) == (int64_t)ref_floor(fixed[i], n));
		}
	for (int k = 0; k < 300000; k++) {
		int64_t x = rnd64();
		int n = (int)(rnd() % 63);
		if (potc_rshift_rnd64(x, n) != (int64_t)ref_rnd(x, n))
			fail_msg("rshift_rnd64(%lld, %d)", (long long)x, n);
		if (potc_asr64(x, n) != (int64_t)ref_floor(x, n))
			fail_msg("asr64(%lld, %d)", (long long)x, n);
	}
}

static void test_lshift_sat(void **state)
{
	(void)state;
	int32_t e[200];
	int ne = edges32(e);
	for (int n = 0; n <= 31; n++) {
		for (int i = 0; i < ne; i++) {
			i128 want = ref_clamp((i128)e[i] * ((i128)1 << n), INT32_MIN, INT32_MAX);
			assert_true(potc_lshift_sat32(e[i], n) == (int32_t)want);
		}
		for (int32_t x = -70000; x <= 70000; x += 7) {
			i128 want = ref_clamp((i128)x * ((i128)1 << n), INT32_MIN, INT32_MAX);
			assert_true(potc_lshift_sat32(x, n) == (int32_t)want);
		}
	}
	for (int k = 0; k < 300000; k++) {
		int64_t x = rnd64();
		int n = (int)(rnd() % 63);
		i128 want = ref_clamp((i128)x * ((i128)1 << n), INT64_MIN, INT64_MAX);
		if (potc_lshift_sat64(x, n) != (int64_t)want)
			fail_msg("lshift_sat64(%lld, %d)", (long long)x, n);
	}
	assert_true(potc_lshift_sat64(INT64_MIN, 0) == INT64_MIN);
	assert_true(potc_lshift_sat64(-1, 62) == -((int64_t)1 << 62));
	assert_true(potc_lshift_sat64(-2, 62) == INT64_MIN);
	assert_true(potc_lshift_sat64(-3, 62) == INT64_MIN);
	assert_int_equal(potc_lshift_sat32(-1, 31), INT32_MIN);
	assert_int_equal(potc_lshift_sat32(1, 31), INT32_MAX);
}

/* ---- saturation ---- */

static void test_saturate(void **state)
{
	(void)state;
	for (int bits = 2; bits <= 32; bits++) {
		long double lo = -ldexpl(1, bits - 1), hi = ldexpl(1, bits - 1) - 1, uhi = ldexpl(1, bits) - 1;
		int64_t probe[] = {INT64_MIN, INT64_MAX, 0, -1, 1, (int64_t)lo, (int64_t)lo - 1, (int64_t)lo + 1,
		                   (int64_t)hi, (int64_t)hi - 1, (int64_t)hi + 1, (int64_t)uhi, (int64_t)uhi + 1,
		                   (int64_t)uhi - 1, INT32_MIN, INT32_MAX};
		for (unsigned i = 0; i < sizeof probe / sizeof *probe; i++) {
			long double x = (long double)probe[i];
			long double s = x < lo ? lo : x > hi ? hi : x, u = x < 0 ? 0 : x > uhi ? uhi : x;
			assert_true(potc_sat_s(probe[i], bits) == (int32_t)s);
			assert_true(potc_sat_u(probe[i], bits) == (uint32_t)u);
			if (probe[i] >= INT32_MIN && probe[i] <= INT32_MAX)
				assert_true(potc_sat32((int32_t)probe[i], bits) == (int32_t)s);
		}
	}
	for (int32_t x = -300; x <= 300; x++) {
		assert_int_equal(potc_sat_s(x, 8), x < -128 ? -128 : x > 127 ? 127 : x);
		assert_int_equal(potc_sat_u(x, 8), x < 0 ? 0 : x > 255 ? 255 : x);
		assert_int_equal(potc_sat32(x, 4), x < -8 ? -8 : x > 7 ? 7 : x);
	}
}

static void test_div_rnd(void **state)
{
	(void)state;
	for (int32_t d = 1; d <= 40; d++)
		for (int32_t x = -70000; x <= 70000; x++) {
			int64_t q = x / d, r = x % d;
			if (2 * (r < 0 ? -r : r) >= d)
				q += x < 0 ? -1 : 1;
			if (potc_div_rnd32(x, d) != q)
				fail_msg("div_rnd32(%d, %d) = %d, want %lld", x, d, potc_div_rnd32(x, d), (long long)q);
		}
	int32_t e[200];
	int ne = edges32(e);
	for (int i = 0; i < ne; i++)
		for (int j = 0; j < ne; j++)
			if (e[j] > 0) {
				i128 q = e[i] / e[j], r = e[i] % e[j];
				if (2 * (r < 0 ? -r : r) >= e[j])
					q += e[i] < 0 ? -1 : 1;
				assert_true(potc_div_rnd32(e[i], e[j]) == (int32_t)ref_clamp(q, INT32_MIN, INT32_MAX));
			}
}

/* ---- requantisation ---- */

static i128 ref_requant(i128 acc, int shift, int bits, i128 accmin, i128 accmax)
{
	i128 v = shift >= 0 ? ref_rnd(acc, shift) : ref_clamp(acc * ((i128)1 << -shift), accmin, accmax);
	return ref_clamp(v, ref_smin(bits), ref_smax(bits));
}

static void test_requant_shift(void **state)
{
	(void)state;
	int32_t e[200];
	int ne = edges32(e);
	for (int bits = 2; bits <= 32; bits++)
		for (int shift = -31; shift <= 62; shift++)
			for (int i = 0; i < ne; i++)
				assert_true(potc_requant_shift(e[i], shift, bits) ==
				            (int32_t)ref_requant(e[i], shift, bits, INT32_MIN, INT32_MAX));
	for (int k = 0; k < 500000; k++) {
		int32_t acc = rnd32();
		int shift = (int)(rnd() % 94) - 31, bits = 2 + (int)(rnd() % 31);
		if (potc_requant_shift(acc, shift, bits) != (int32_t)ref_requant(acc, shift, bits, INT32_MIN, INT32_MAX))
			fail_msg("requant_shift(%d, %d, %d)", acc, shift, bits);
		int64_t a64 = rnd64();
		shift = (int)(rnd() % 125) - 62;
		if (potc_requant_shift64(a64, shift, bits) != (int32_t)ref_requant(a64, shift, bits, INT64_MIN, INT64_MAX))
			fail_msg("requant_shift64(%lld, %d, %d)", (long long)a64, shift, bits);
	}
	/* the QFX form y = sat_b(round(acc * 2^-(fx + fw - fy))) */
	assert_int_equal(potc_requant_shift(1000, 4, 8), 63);    /* 62.5 -> 63 */
	assert_int_equal(potc_requant_shift(-1000, 4, 8), -63);
	assert_int_equal(potc_requant_shift(5000, 4, 8), 127);
	assert_int_equal(potc_requant_shift(-5000, 4, 8), -128);
	assert_int_equal(potc_requant_shift(3, -2, 8), 12);
	assert_int_equal(potc_requant_shift(100, -2, 8), 127);
	assert_int_equal(potc_requant_shift(INT32_MIN, 32, 8), -1);
}

/* gemmlowp's formulation, kept literally: nudge, then truncating division. */
static int32_t gemmlowp_srdhm(int32_t a, int32_t b)
{
	int overflow = a == b && a == INT32_MIN;
	int64_t ab = (int64_t)a * (int64_t)b;
	int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
	int32_t hi = (int32_t)((ab + nudge) / (1ll << 31));
	return overflow ? INT32_MAX : hi;
}

static int32_t ref_mul_q31(int32_t a, int32_t b)
{
	if (a == INT32_MIN && b == INT32_MIN)
		return INT32_MAX;
	return (int32_t)floorl(ldexpl((long double)a * b, -31) + 0.5L);
}

static void test_mul_q31(void **state)
{
	(void)state;
	int32_t e[200];
	int ne = edges32(e);
	for (int i = 0; i < ne; i++)
		for (int j = 0; j < ne; j++) {
			assert_int_equal(potc_mul_q31(e[i], e[j]), ref_mul_q31(e[i], e[j]));
			assert_int_equal(potc_mul_q31(e[i], e[j]), gemmlowp_srdhm(e[i], e[j]));
		}
	for (int k = 0; k < 1000000; k++) {
		int32_t a = (int32_t)(uint32_t)rnd(), b = k & 1 ? rnd32() : (int32_t)(uint32_t)rnd();
		if (potc_mul_q31(a, b) != ref_mul_q31(a, b) || potc_mul_q31(a, b) != gemmlowp_srdhm(a, b))
			fail_msg("mul_q31(%d, %d) = %d, want %d", a, b, potc_mul_q31(a, b), ref_mul_q31(a, b));
	}
	/* ties go toward +infinity: 0.5 -> 1, -0.5 -> 0, -1.5 -> -1 */
	assert_int_equal(potc_mul_q31(1 << 30, 1), 1);
	assert_int_equal(potc_mul_q31(-(1 << 30), 1), 0);
	assert_int_equal(potc_mul_q31(-(3 << 29), 2), -1);
}

static void test_requant_affine(void **state)
{
	(void)state;
	for (int k = 0; k < 1000000; k++) {
		int32_t acc = rnd32(), m0 = (int32_t)(rnd() % (1u << 30)) + (1 << 30);
		int n = (int)(rnd() % 63) - 31;
		int32_t zp = (int32_t)(rnd() % 256) - 128, lo = -128, hi = 127;
		if (k % 3 == 0) {
			zp = rnd32();
			lo = INT32_MIN;
			hi = INT32_MAX;
		}
		i128 a = n < 0 ? ref_clamp((i128)acc * ((i128)1 << -n), INT32_MIN, INT32_MAX) : acc;
		i128 t = ref_floor(a * m0 + ((i128)1 << 30), 31);
		i128 want = ref_clamp(zp + ref_rnd(t, n > 0 ? n : 0), lo, hi);
		if (potc_requant_affine(acc, m0, n, zp, lo, hi) != (int32_t)want)
			fail_msg("requant_affine(%d, %d, %d, %d)", acc, m0, n, zp);
	}
	/* M = 0.75 * 2^-3: 100 * 0.09375 = 9.375 -> 9, + zp */
	assert_int_equal(potc_requant_affine(100, 3 << 29, 3, 5, -128, 127), 14);
	assert_int_equal(potc_requant_affine(-100, 3 << 29, 3, 5, -128, 127), -4);
	assert_int_equal(potc_requant_affine(100000, 3 << 29, 3, 5, -128, 127), 127);
	assert_int_equal(potc_requant_affine(INT32_MAX, INT32_MAX, 0, INT32_MAX, INT32_MIN, INT32_MAX), INT32_MAX);
}

/* ---- activations ---- */

static void test_relu_clip(void **state)
{
	(void)state;
	int32_t e[200];
	int ne = edges32(e);
	for (int i = 0; i < ne; i++) {
		assert_int_equal(potc_relu(e[i]), e[i] > 0 ? e[i] : 0);
		assert_int_equal(potc_clip(e[i], -6, 6), e[i] < -6 ? -6 : e[i] > 6 ? 6 : e[i]);
	}
	/* Relu6 at binary point 4: 6 -> 96 */
	assert_int_equal(potc_clip(200, 0, 96), 96);
	for (int32_t x = -1000; x <= 1000; x++) {
		/* alpha = 0.1 at fa = 15 */
		int32_t aq = 3277;
		long double want = x >= 0 ? x : roundl((long double)x * aq / 32768);
		assert_int_equal(potc_leaky_fx(x, aq, 15), (int32_t)want);
	}
	assert_int_equal(potc_leaky_fx(INT32_MIN, INT32_MIN, 0), INT32_MAX);
}

static long double hsig(long double a, long double b, long double x)
{
	long double z = a * x + b;
	return z < 0 ? 0 : z > 1 ? 1 : z;
}

/* Every x of `bits` bits at binary point fx, alpha and beta quantised with
 * fa = 30 - fx fraction bits (p = 30), output at fy: the error stays within
 * the documented bound, and is exact rounding when alpha is representable. */
static void check_hsig(double alpha, double beta, int bits, int fx, int fy, int swish)
{
	int fa = 30 - fx, p = 30;
	int32_t aq = (int32_t)llroundl(ldexpl(alpha, fa));
	int64_t bq = llroundl(ldexpl(beta, p));
	long double da = fabsl(ldexpl(aq, -fa) - alpha), db = fabsl(ldexpl(bq, -p) - beta);
	long double xlin = (1 + fabsl((long double)beta)) / fabsl((long double)alpha) * 1.01L, maxerr = 0;
	for (int32_t x = -(1 << (bits - 1)); x < (1 << (bits - 1)); x++) {
		long double xr = ldexpl(x, -fx), want, got, bound;
		if (swish) {
			want = xr * hsig(alpha, beta, xr);
			got = ldexpl(potc_hardswish_fx(x, aq, bq, p, fx + p - fy), -fy);
			bound = fabsl(xr) * (fminl(fabsl(xr), xlin) * da + db);
		} else {
			want = hsig(alpha, beta, xr);
			got = ldexpl(potc_hardsigmoid_fx(x, aq, bq, p, p - fy), -fy);
			bound = fminl(fabsl(xr), xlin) * da + db;
		}
		long double err = fabsl(got - want);
		if (da == 0 && db == 0 && got != ldexpl(roundl(ldexpl(want, fy)), -fy))
			fail_msg("hard%s(%d) not correctly rounded", swish ? "swish" : "sigmoid", x);
		if (err > ldexpl(0.5L, -fy) + bound + 1e-15L)
			fail_msg("hard%s x=%d fx=%d: error %Lg", swish ? "swish" : "sigmoid", x, fx, err);
		maxerr = fmaxl(maxerr, err);
	}
	print_message("hard%s alpha=%g beta=%g int%d fx=%d fy=%d: max error %.3Lf LSB\n",
	              swish ? "swish" : "sigmoid", alpha, beta, bits, fx, fy, ldexpl(maxerr, fy));
}

static void test_hard_activations(void **state)
{
	(void)state;
	for (int fx = 2; fx <= 7; fx++) {
		check_hsig(0.2, 0.5, 8, fx, 7, 0);
		check_hsig(0.25, 0.5, 8, fx, 7, 0);
		check_hsig(1 / 6.0, 0.5, 8, fx, fx, 1);
		check_hsig(0.25, 0.5, 8, fx, fx, 1);
	}
	check_hsig(0.2, 0.5, 16, 12, 15, 0);
	check_hsig(0.25, 0.375, 16, 11, 14, 0);
	check_hsig(1 / 6.0, 0.5, 16, 12, 12, 1);
	check_hsig(1 / 6.0, 0.5, 16, 8, 15, 1);
	/* extremes: no overflow anywhere in the documented ranges */
	assert_int_equal(potc_hardsigmoid_fx(INT32_MAX, 1 << 30, (int64_t)1 << 61, 30, 0), 1 << 30);
	assert_int_equal(potc_hardsigmoid_fx(INT32_MIN, 1 << 30, -((int64_t)1 << 61), 30, 30), 0);
	assert_int_equal(potc_hardswish_fx(INT32_MAX, 1 << 30, 0, 30, 30), INT32_MAX);
	assert_int_equal(potc_hardswish_fx(INT32_MIN, -(1 << 30), 0, 30, 0), INT32_MIN);
}

enum { F_EXP, F_SIG, F_TANH };

static int32_t fx_apply(int f, int32_t x, int fx, int fy)
{
	return f == F_EXP ? potc_exp_fx(x, fx, fy) : f == F_SIG ? potc_sigmoid_fx(x, fx, fy) : potc_tanh_fx(x, fx, fy);
}

static long double ref_apply(int f, long double x)
{
	return f == F_EXP ? expl(x) : f == F_SIG ? 1 / (1 + expl(-x)) : tanhl(x);
}

/* Documented bounds: exp 0.5 LSB + 2^-26 relative; sigmoid 0.5 LSB + 2^-29,
 * tanh 0.5 LSB + 2^-28 in real units.  Returns the worst excess over the
 * 0.5 LSB (relative for exp, real for the others). */
static long double check_smooth(int f, int32_t x0, int32_t x1, int fx, int fy)
{
	long double worst = 0;
	for (int64_t x = x0; x <= x1; x++) {
		long double want = ldexpl(ref_apply(f, ldexpl((long double)x, -fx)), fy);
		int32_t y = fx_apply(f, (int32_t)x, fx, fy);
		if (f == F_EXP && want >= 2147483647.5L) {
			if (y != INT32_MAX)
				fail_msg("exp(%lld, fx=%d, fy=%d) = %d, want saturation", (long long)x, fx, fy, y);
			continue;
		}
		long double excess = fabsl(y - want) - 0.5L;
		long double rel = f == F_EXP ? excess / want : ldexpl(excess, -fy);
		long double lim = f == F_EXP ? ldexpl(1, -26) : ldexpl(1, f == F_SIG ? -29 : -28);
		if (excess > 0 && rel > lim)
			fail_msg("%s(%lld, fx=%d, fy=%d) = %d, want %.3Lf", f == F_EXP ? "exp" : f == F_SIG ? "sigmoid" : "tanh",
			         (long long)x, fx, fy, y, want);
		worst = fmaxl(worst, rel);
	}
	return worst;
}

static void test_exp_sigmoid_tanh(void **state)
{
	(void)state;
	static const char *name[] = {"exp", "sigmoid", "tanh"};
	for (int f = F_EXP; f <= F_TANH; f++) {
		long double w8 = 0, w16 = 0;
		/* every int8 input at every binary point 0..7 */
		for (int fx = 0; fx <= 7; fx++)
			for (int fy = f == F_EXP ? -8 : 0; fy <= 30; fy++)
				w8 = fmaxl(w8, check_smooth(f, -128, 127, fx, fy));
		/* every int16 input at binary points 8..15 and typical outputs */
		static const int fys[] = {0, 7, 12, 14, 15, 20, 30};
		for (int fx = 0; fx <= 15; fx += 3)
			for (int i = 0; i < 7; i++)
				w16 = fmaxl(w16, check_smooth(f, -32768, 32767, fx, fys[i]));
		print_message("%s: excess over 0.5 LSB, int8 inputs %.3Lg (2^%.1f), int16 inputs %.3Lg (2^%.1f)%s\n",
		              name[f], w8, (double)log2l(w8), w16, (double)log2l(w16), f == F_EXP ? " relative" : " real");
	}
	/* extremes of every argument range */
	for (int fx = 0; fx <= 31; fx++) {
		for (int fy = 0; fy <= 30; fy++) {
			assert_int_equal(potc_tanh_fx(0, fx, fy), 0);
			assert_int_equal(potc_sigmoid_fx(0, fx, fy), fy ? 1 << (fy - 1) : 1);
		}
		check_smooth(F_EXP, INT32_MIN, INT32_MIN + 5, fx, 0);
		check_smooth(F_EXP, INT32_MAX - 5, INT32_MAX, fx, 0);
		check_smooth(F_SIG, INT32_MIN, INT32_MIN + 5, fx, 30);
		check_smooth(F_SIG, INT32_MAX - 5, INT32_MAX, fx, 30);
		check_smooth(F_TANH, INT32_MIN, INT32_MIN + 5, fx, 30);
		check_smooth(F_TANH, INT32_MAX - 5, INT32_MAX, fx, 30);
		for (int fy = -31; fy <= 31; fy++)
			check_smooth(F_EXP, -70, 70, fx, fy);
	}
	/* one dense stretch of the Q30 exponential table itself */
	for (uint32_t r = 0; r < (1u << 30); r += 4099) {
		long double want = ldexpl(exp2l(ldexpl(r, -30)), 30);
		assert_true(fabsl(potc__exp2_q30(r) - want) <= want * ldexpl(1, -28));
	}
	assert_true(potc__exp2_q30((1u << 30) - 1) <= 0x7FFFFFFFu);
}

/* ---- the header alone, on every compiler we target ---- */

static int have(const char *tool)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

/* A translation unit that instantiates every function in the header. */
static void write_user(const char *path)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "#include \"%s/runtime/fixed/potc_fixed.h\"\n"
	           "int32_t use(int32_t x, int n, int64_t w);\n"
	           "int32_t use(int32_t x, int n, int64_t w)\n{\n"
	           "\tint32_t s = potc_asr32(x, n) + (int32_t)potc_asr64(w, n) + potc_rshift_rnd32(x, n);\n"
	           "\ts += (int32_t)potc_rshift_rnd64(w, n) + potc_sat_s(w, n) + (int32_t)potc_sat_u(w, n);\n"
	           "\ts += potc_sat32(x, n) + potc_lshift_sat32(x, n) + (int32_t)potc_lshift_sat64(w, n);\n"
	           "\ts += potc_div_rnd32(x, n + 1) + potc_requant_shift(x, n, 8) + potc_requant_shift64(w, n, 8);\n"
	           "\ts += potc_mul_q31(x, s) + potc_requant_affine(x, s, n, 3, -128, 127);\n"
	           "\ts += potc_relu(x) + potc_clip(x, -5, 5) + potc_leaky_fx(x, 13, n);\n"
	           "\ts += potc_hardsigmoid_fx(x, 7, w, 20, n) + potc_hardswish_fx(x, 7, w, 20, n);\n"
	           "\ts += potc_exp_fx(x, n, 15) + potc_sigmoid_fx(x, n, 15) + potc_tanh_fx(x, n, 15);\n"
	           "\treturn s;\n}\n",
	        SOURCE_DIR);
	fclose(f);
}

/* Compile with cc and flags; with nm, also require that the object's
 * undefined symbols are only integer helpers (no soft-float, no libm). */
static void cross_check(const char *cc, const char *flags, const char *nm)
{
	char src[128], obj[128], cmd[1024];
	if (!have(cc)) {
		print_message("skipped: %s not found on PATH\n", cc);
		return;
	}
	snprintf(src, sizeof src, "/tmp/potc_fixed_use_%ld.c", (long)getpid());
	snprintf(obj, sizeof obj, "/tmp/potc_fixed_use_%ld.o", (long)getpid());
	write_user(src);
	const char *opts[] = {"-O0", "-O2", "-Os"};
	for (int i = 0; i < 3; i++) {
		snprintf(cmd, sizeof cmd, "%s -std=c99 -Wall -Wextra -Werror -pedantic -Wconversion -Wshadow %s %s -c %s -o %s",
		         cc, flags, opts[i], src, obj);
		if (system(cmd) != 0)
			fail_msg("header does not compile cleanly: %s", cmd);
		if (nm && have(nm)) {
			snprintf(cmd, sizeof cmd, "%s -u %s | awk '{print $NF}' | "
			         "grep -v -x -E '__aeabi_(lmul|uidiv|idiv|uidivmod|idivmod|uldivmod|ldivmod|llsr|llsl|lasr)' | "
			         "grep . && exit 1 || exit 0", nm, obj);
			if (system(cmd) != 0)
				fail_msg("the object needs non-integer routines (listed above): %s %s", cc, opts[i]);
		}
	}
	print_message("ok: %s %s\n", cc, flags);
	remove(src);
	remove(obj);
}

static void test_compiles_everywhere(void **state)
{
	(void)state;
	cross_check("gcc", "", NULL);
	cross_check("gcc", "-mgeneral-regs-only", NULL);
	cross_check("clang", "", NULL);
	cross_check("arm-none-eabi-gcc", "-mcpu=cortex-m0 -mthumb -mfloat-abi=soft", "arm-none-eabi-nm");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rshift_dense),
		cmocka_unit_test(test_rshift_edges),
		cmocka_unit_test(test_rshift64),
		cmocka_unit_test(test_lshift_sat),
		cmocka_unit_test(test_saturate),
		cmocka_unit_test(test_div_rnd),
		cmocka_unit_test(test_requant_shift),
		cmocka_unit_test(test_mul_q31),
		cmocka_unit_test(test_requant_affine),
		cmocka_unit_test(test_relu_clip),
		cmocka_unit_test(test_hard_activations),
		cmocka_unit_test(test_exp_sigmoid_tanh),
		cmocka_unit_test(test_compiles_everywhere),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
