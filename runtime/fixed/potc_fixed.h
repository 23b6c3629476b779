/* potc_fixed.h: THE definition of potc's integer arithmetic.
 *
 * The integer reference evaluator (host) and the generated C (any target)
 * both compute with these functions, so they agree bit for bit; every other
 * backend must reproduce them exactly (docs/integer-semantics.md).
 *
 * A fixed-point value q with binary point f means the real number q * 2^-f.
 * Rounding is half away from zero everywhere except potc_mul_q31, which is
 * gemmlowp's rounding doubling high multiply (ties toward +infinity).  Every
 * narrowing saturates.
 *
 * Portability: C99, freestanding (only <stdint.h>), no floating point, no
 * undefined behaviour and no implementation-defined behaviour for any
 * argument inside the documented ranges.  In particular no negative value is
 * ever shifted: a signed right shift of a negative number is implementation-
 * defined in C99 and a left shift of one is undefined, so shifts act on
 * magnitudes held in unsigned types, scaling up is done by multiplication,
 * and an unsigned value is converted back to a signed type only when it fits.
 * Compilers turn the sign selections into a few branch-free instructions.
 * 64-bit arithmetic compiles to integer helper calls (__aeabi_lmul,
 * __aeabi_llsr, __aeabi_uldivmod) on 32-bit cores, never to float routines.
 *
 * Each function states its legal argument ranges (CMSIS-NN style); outside
 * them the result is unspecified.  Names starting with potc__ are internal.
 */
#ifndef POTC_FIXED_H
#define POTC_FIXED_H

#include <stdint.h>

/* Pasted into generated model.c, where clang would flag every function the
 * model does not call (-Wunused-function applies to the main file). */
#if defined(__GNUC__)
#define POTC_FN static inline __attribute__((unused))
#else
#define POTC_FN static inline
#endif

/* ---- shifts and saturation ---- */

/* floor(x / 2^n).  x: any int32; n in [0, 31]. */
POTC_FN int32_t potc_asr32(int32_t x, int n)
{
	if (x >= 0)
		return (int32_t)((uint32_t)x >> n);
	/* floor(x / 2^n) = -floor((-x - 1) / 2^n) - 1, and -x - 1 >= 0 fits */
	return -(int32_t)((uint32_t)(-(x + 1)) >> n) - 1;
}

/* floor(x / 2^n).  x: any int64; n in [0, 63]. */
POTC_FN int64_t potc_asr64(int64_t x, int n)
{
	if (x >= 0)
		return (int64_t)((uint64_t)x >> n);
	return -(int64_t)((uint64_t)(-(x + 1)) >> n) - 1;
}

/* x / 2^n rounded half away from zero; n == 0 returns x.
 * x: any int32 (INT32_MIN included); n in [0, 31].
 * The magnitude |x| + 2^(n-1) <= 3 * 2^30 fits uint32, and the quotient
 * <= 2^30 fits int32, so no input overflows. */
POTC_FN int32_t potc_rshift_rnd32(int32_t x, int n)
{
	uint32_t h;
	if (n == 0)
		return x;
	h = (uint32_t)1 << (n - 1);
	if (x >= 0)
		return (int32_t)(((uint32_t)x + h) >> n);
	return -(int32_t)(((uint32_t)0 - (uint32_t)x + h) >> n);
}

/* x / 2^n rounded half away from zero; n == 0 returns x.
 * x: any int64; n in [0, 62].  (|x| + 2^(n-1) < 2^64, quotient <= 2^62.) */
POTC_FN int64_t potc_rshift_rnd64(int64_t x, int n)
{
	uint64_t h;
	if (n == 0)
		return x;
	h = (uint64_t)1 << (n - 1);
	if (x >= 0)
		return (int64_t)(((uint64_t)x + h) >> n);
	return -(int64_t)(((uint64_t)0 - (uint64_t)x + h) >> n);
}

/* x clamped to the signed bits-bit range [-2^(bits-1), 2^(bits-1) - 1].
 * x: any int64; bits in [2, 32]. */
POTC_FN int32_t potc_sat_s(int64_t x, int bits)
{
	int64_t hi = ((int64_t)1 << (bits - 1)) - 1, lo = -hi - 1;
	return (int32_t)(x > hi ? hi : x < lo ? lo : x);
}

/* x clamped to the unsigned bits-bit range [0, 2^bits - 1].
 * x: any int64; bits in [2, 32]. */
POTC_FN uint32_t potc_sat_u(int64_t x, int bits)
{
	int64_t hi = ((int64_t)1 << bits) - 1;
	return (uint32_t)(x > hi ? hi : x < 0 ? 0 : x);
}

/* potc_sat_s for an int32 argument without 64-bit compares (cheaper on
 * 32-bit cores).  x: any int32; bits in [2, 32]. */
POTC_FN int32_t potc_sat32(int32_t x, int bits)
{
	int32_t hi = (int32_t)(((uint32_t)1 << (bits - 1)) - 1), lo = -hi - 1;
	return x > hi ? hi : x < lo ? lo : x;
}

/* x * 2^n saturated to int32.  x: any int32; n in [0, 31].
 * Multiplies instead of shifting so that negative x is defined; the split
 * x * 2^(n-1) * 2 keeps 2^n itself representable for n == 31. */
POTC_FN int32_t potc_lshift_sat32(int32_t x, int n)
{
	int32_t lim;
	if (n == 0)
		return x;
	lim = (int32_t)1 << (31 - n);   /* in range iff -lim <= x <= lim - 1 */
	if (x > lim - 1)
		return INT32_MAX;
	if (x < -lim)
		return INT32_MIN;
	return x * ((int32_t)1 << (n - 1)) * 2;
}

/* x * 2^n saturated to int64.  x: any int64; n in [0, 62]. */
POTC_FN int64_t potc_lshift_sat64(int64_t x, int n)
{
	int64_t lim;
	if (n == 0)
		return x;
	lim = (int64_t)1 << (63 - n);
	if (x > lim - 1)
		return INT64_MAX;
	if (x < -lim)
		return INT64_MIN;
	return x * ((int64_t)1 << (n - 1)) * 2;
}

/* x / d rounded half away from zero (average pooling, means).
 * x: any int32; d in [1, 2^31 - 1].  Computed on magnitudes in uint32:
 * |x| + d/2 < 2^31 + 2^30 cannot wrap. */
POTC_FN int32_t potc_div_rnd32(int32_t x, int32_t d)
{
	uint32_t u = x >= 0 ? (uint32_t)x : (uint32_t)0 - (uint32_t)x;
	uint32_t q = (u + (uint32_t)d / 2) / (uint32_t)d;
	/* q <= 2^31 only when x == INT32_MIN and d == 1 */
	if (x >= 0)
		return (int32_t)q;
	return q > (uint32_t)INT32_MAX ? INT32_MIN : -(int32_t)q;
}

/* ---- requantisation: power-of-two scales ---- */

/* The fixed-point requantisation y = sat_bits(round(acc * 2^-shift)):
 * shift > 0 rounds right (half away from zero), shift < 0 shifts left with
 * saturation, then the result saturates to `bits` signed bits.  With acc at
 * binary point f_acc and y at f_y, shift = f_acc - f_y.
 * acc: any int32; shift in [-31, 62]; bits in [2, 32]. */
POTC_FN int32_t potc_requant_shift(int32_t acc, int shift, int bits)
{
	if (shift > 31)
		return potc_sat_s(potc_rshift_rnd64(acc, shift), bits);
	if (shift > 0)
		return potc_sat32(potc_rshift_rnd32(acc, shift), bits);
	return potc_sat32(potc_lshift_sat32(acc, -shift), bits);
}

/* potc_requant_shift for a 64-bit accumulator.
 * acc: any int64; shift in [-62, 62]; bits in [2, 32]. */
POTC_FN int32_t potc_requant_shift64(int64_t acc, int shift, int bits)
{
	if (shift > 0)
		return potc_sat_s(potc_rshift_rnd64(acc, shift), bits);
	return potc_sat_s(potc_lshift_sat64(acc, -shift), bits);
}

/* ---- requantisation: affine (gemmlowp / TFLite style) ---- */

/* round(a * b / 2^31) with ties toward +infinity, i.e. floor((a*b + 2^30)
 * / 2^31): gemmlowp's SaturatingRoundingDoublingHighMul, bit for bit (the
 * same as CMSIS-NN's arm_nn_doubling_high_mult).  The one product that
 * does not fit, INT32_MIN * INT32_MIN, saturates to INT32_MAX.
 * a, b: any int32. */
POTC_FN int32_t potc_mul_q31(int32_t a, int32_t b)
{
	if (a == INT32_MIN && b == INT32_MIN)
		return INT32_MAX;
	return (int32_t)potc_asr64((int64_t)a * b + ((int64_t)1 << 30), 31);
}

/* Affine requantisation y = clamp(zp + round(acc * m0 * 2^-31 * 2^-n),
 * lo, hi), as rshift_rnd(mul_q31(acc, m0), n): the real multiplier is
 * M = m0 * 2^(-31-n), m0 normally in [2^30, 2^31 - 1] (M0 in [0.5, 1)).
 * n < 0 (M >= 1) first multiplies acc by 2^-n with saturation (TFLite
 * does the same without saturating).
 * acc: any int32; m0: any int32; n in [-31, 31]; zp: any int32;
 * lo <= hi (e.g. -128, 127 or a fused ReLU's zp, 127). */
POTC_FN int32_t potc_requant_affine(int32_t acc, int32_t m0, int n, int32_t zp,
                                          int32_t lo, int32_t hi)
{
	int64_t y;
	if (n < 0)
		acc = potc_lshift_sat32(acc, -n);
	y = (int64_t)zp + potc_rshift_rnd32(potc_mul_q31(acc, m0), n > 0 ? n : 0);
	return (int32_t)(y > hi ? hi : y < lo ? lo : y);
}

/* ---- the integer IR's rescale (Rescale in ir/ir.h) ---- */

/* round(x * M) saturated to int32, where M = 2^-n when m == 0 (n in
 * [-31, 62]: potc_requant_shift) and M = m * 2^(-31-n) otherwise (m in
 * [2^30, 2^31), n in [-31, 31]: Q31 multiply, ties toward +infinity, then a
 * rounding shift; n < 0 first multiplies x by 2^-n with saturation).
 * x: any int32. */
POTC_FN int32_t potc_rescale(int32_t x, int32_t m, int n)
{
	if (m == 0)
		return potc_requant_shift(x, n, 32);
	if (n < 0)
		return potc_mul_q31(potc_lshift_sat32(x, -n), m);
	return potc_rshift_rnd32(potc_mul_q31(x, m), n);
}

/* potc_rescale of a 64-bit value: the shift form is exact on all of it
 * (n in [-62, 62]); the Q31 form saturates x to int32 first. */
POTC_FN int32_t potc_rescale64(int64_t x, int32_t m, int n)
{
	if (m == 0)
		return potc_requant_shift64(x, n, 32);
	return potc_rescale(potc_sat_s(x, 32), m, n);
}

/* The store of every quantized node: clamp(zp + v, lo, hi) without
 * overflow.  v, zp: any int32; lo <= hi. */
POTC_FN int32_t potc_out(int32_t v, int32_t zp, int32_t lo, int32_t hi)
{
	int64_t y = (int64_t)v + zp;
	return (int32_t)(y < lo ? lo : y > hi ? hi : y);
}

/* ---- activations on fixed-point values ---- */

/* max(x, 0): the binary point is unchanged.  x: any int32. */
POTC_FN int32_t potc_relu(int32_t x)
{
	return x > 0 ? x : 0;
}

/* min(max(x, lo), hi), lo and hi quantised at x's binary point (round half
 * away from zero, saturated), so the result is exact.  lo <= hi. */
POTC_FN int32_t potc_clip(int32_t x, int32_t lo, int32_t hi)
{
	return x < lo ? lo : x > hi ? hi : x;
}

/* LeakyRelu x < 0 ? alpha * x : x, binary point unchanged, with
 * alpha_q = round(alpha * 2^fa): round(x * alpha_q * 2^-fa) for x < 0,
 * saturated to int32.  x: any int32; alpha_q: any int32; fa in [0, 62].
 * Error vs exact alpha: 0.5 LSB + |x| * |alpha - alpha_q 2^-fa|. */
POTC_FN int32_t potc_leaky_fx(int32_t x, int32_t alpha_q, int fa)
{
	if (x >= 0)
		return x;
	return potc_sat_s(potc_rshift_rnd64((int64_t)x * alpha_q, fa), 32);
}

/* max(0, min(1, alpha * x + beta)) in fixed point.  With x at binary point
 * fx, alpha_q = round(alpha * 2^fa) and the inner point p = fx + fa:
 *   z = clamp(x * alpha_q + beta_q, 0, 2^p),  beta_q = round(beta * 2^p),
 *   y = round(z * 2^-s) at binary point fy = p - s.
 * z is exact, so with alpha and beta representable y is the correctly
 * rounded (half away from zero) HardSigmoid; otherwise the error is at most
 * 0.5 * 2^-fy + |x_real| * 2^-(fa+1) + 2^-(p+1) in real units, where only
 * |x_real| <= (1 + |beta|) / |alpha| (the linear part) matters.
 * x: any int32; alpha_q in [-2^30, 2^30]; beta_q in [-2^61, 2^61];
 * p in [0, 30]; s in [0, p].  Result in [0, 2^(p-s)]. */
POTC_FN int32_t potc_hardsigmoid_fx(int32_t x, int32_t alpha_q, int64_t beta_q, int p, int s)
{
	int64_t one = (int64_t)1 << p;
	int64_t z = (int64_t)x * alpha_q + beta_q;
	z = z < 0 ? 0 : z > one ? one : z;
	return (int32_t)potc_rshift_rnd64(z, s);
}

/* HardSwish x * max(0, min(1, alpha * x + beta)) (ONNX: alpha = 1/6,
 * beta = 1/2): h = the clamped z of potc_hardsigmoid_fx at point
 * p = fx + fa, then y = sat32(round(x * h * 2^-s)) at binary point
 * fy = fx + p - s.  Exact up to the final rounding when alpha and beta are
 * representable; otherwise the error adds |x_real| times HardSigmoid's
 * alpha/beta error.
 * x: any int32; alpha_q in [-2^30, 2^30]; beta_q in [-2^61, 2^61];
 * p in [0, 30]; s in [0, 62]. */
POTC_FN int32_t potc_hardswish_fx(int32_t x, int32_t alpha_q, int64_t beta_q, int p, int s)
{
	int64_t one = (int64_t)1 << p;
	int64_t h = (int64_t)x * alpha_q + beta_q;
	h = h < 0 ? 0 : h > one ? one : h;
	return potc_sat_s(potc_rshift_rnd64(x * h, s), 32);   /* |x * h| <= 2^61 */
}

/* ---- exp, sigmoid, tanh ---- */

/* 2^(r / 2^30) in Q30, for r in [0, 2^30): result in [2^30, 2^31).
 * Two 32-entry tables take the top ten bits of r (2^(i/32) and
 * 2^(j/1024)); the low twenty bits, e = r mod 2^20 < 2^-10 in real terms,
 * use 2^e ~ 1 + t + t^2/2 with t = e ln 2 (truncation error < 2^-33).
 * Relative error < 2^-29 (table and product rounding). */
POTC_FN uint32_t potc__exp2_q30(uint32_t r)
{
	static const uint32_t hi[32] = {
		1073741824, 1097253708, 1121280436, 1145833280, 1170923762, 1196563654,
		1222764986, 1249540052, 1276901417, 1304861917, 1333434672, 1362633090,
		1392470869, 1422962010, 1454120821, 1485961921, 1518500250, 1551751076,
		1585730000, 1620452965, 1655936265, 1692196547, 1729250827, 1767116489,
		1805811301, 1845353420, 1885761398, 1927054196, 1969251188, 2012372174,
		2056437387, 2101467502,
	};
	static const uint32_t lo[32] = {
		1073741824, 1074468888, 1075196443, 1075924492, 1076653033, 1077382068,
		1078111597, 1078841619, 1079572136, 1080303147, 1081034654, 1081766656,
		1082499153, 1083232146, 1083965636, 1084699622, 1085434106, 1086169087,
		1086904565, 1087640541, 1088377016, 1089113990, 1089851462, 1090589434,
		1091327906, 1092066877, 1092806349, 1093546322, 1094286796, 1095027771,
		1095769248, 1096511227,
	};
	const uint64_t ln2_q30 = 744261118;            /* round(ln 2 * 2^30) */
	uint64_t p = ((uint64_t)hi[r >> 25] * lo[(r >> 20) & 31] + (1u << 29)) >> 30;
	uint64_t t = ((uint64_t)(r & 0xFFFFF) * ln2_q30 + (1u << 29)) >> 30;  /* < 2^20 */
	uint64_t c = ((uint64_t)1 << 30) + t + ((t * t + (1u << 30)) >> 31);
	p = (p * c + (1u << 29)) >> 30;
	return p < 0x7FFFFFFF ? (uint32_t)p : 0x7FFFFFFF;  /* r near 2^30 may round up to 2^31 */
}

/* exp(x * 2^-fx) at binary point fy, saturated to [0, INT32_MAX]:
 * y ~ round(exp(x_real) * 2^fy).  exp(x) = 2^k * 2^r with k = floor(x log2 e)
 * and r in [0, 1), from potc__exp2_q30.  Error: at most
 * 0.5 LSB + 2^-26 * exp(x_real) * 2^fy (measured 2^-27.4 over every int8
 * and int16 input; the table gives 2^-29, log2 e rounded to Q30 adds
 * |x_real| * 2^-31, small for every input that neither saturates nor
 * vanishes).
 * x: any int32; fx in [0, 31]; fy in [-31, 31].
 * For softmax use x - max(x) <= 0 so that the result is in [0, 2^fy]. */
POTC_FN int32_t potc_exp_fx(int32_t x, int fx, int fy)
{
	const int64_t log2e_q30 = 1549082005;          /* round(log2(e) * 2^30) */
	int q = fx + 30;
	int64_t v = (int64_t)x * log2e_q30;            /* x log2 e at point q; |v| < 2^62 */
	int64_t k = potc_asr64(v, q);                  /* integer part, floor */
	uint64_t r = (uint64_t)v & (((uint64_t)1 << q) - 1);   /* v - k 2^q, in [0, 2^q) */
	uint32_t m = potc__exp2_q30((uint32_t)(r >> fx));       /* Q30, [2^30, 2^31) */
	int64_t s = 30 - (int64_t)fy - k;              /* y = m * 2^-s */
	if (s < 0)
		return INT32_MAX;                           /* m * 2 >= 2^31 */
	if (s > 31)
		return 0;                                   /* m / 2^32 < 1/2 */
	return potc_rshift_rnd32((int32_t)m, (int)s);
}

/* exp(-|x| * 2^-fx) in Q30, in [0, 2^30].  x: any int32; fx in [0, 31]. */
POTC_FN uint32_t potc__exp_neg_q30(int32_t x, int fx)
{
	return (uint32_t)potc_exp_fx(x > 0 ? -x : x, fx, 30);
}

/* round(num * 2^fy / den) half away from zero, num in [0, 2^31],
 * den in [2^30, 2^31], fy in [0, 30]: result <= 2^(fy+1). */
POTC_FN int32_t potc__ratio(uint32_t num, uint32_t den, int fy)
{
	return (int32_t)((((uint64_t)num << fy) + den / 2) / den);
}

/* sigmoid(x * 2^-fx) = 1 / (1 + exp(-x_real)) at binary point fy, in
 * [0, 2^fy].  With E = exp(-|x_real|) in Q30: sigmoid(|x|) = 2^30 / (2^30
 * + E) and sigmoid(-|x|) = E / (2^30 + E), one correctly rounded division.
 * Error: at most 0.5 LSB + 2^-29 in real units (E's error; measured
 * 2^-30.7 by tests/unit/test_fixed.c).
 * x: any int32; fx in [0, 31]; fy in [0, 30]. */
POTC_FN int32_t potc_sigmoid_fx(int32_t x, int fx, int fy)
{
	uint32_t e = potc__exp_neg_q30(x, fx), one = (uint32_t)1 << 30;
	return potc__ratio(x >= 0 ? one : e, one + e, fy);
}

/* tanh(x * 2^-fx) at binary point fy, in [-2^fy, 2^fy]:
 * tanh(|x|) = (1 - E) / (1 + E) with E = exp(-2|x_real|) in Q30, sign
 * restored afterwards, so tanh(-x) = -tanh(x) exactly.
 * Error: at most 0.5 LSB + 2^-28 in real units (measured 2^-29.8).
 * x: any int32; fx in [0, 31]; fy in [0, 30]. */
POTC_FN int32_t potc_tanh_fx(int32_t x, int fx, int fy)
{
	uint32_t e, one = (uint32_t)1 << 30;
	int32_t y, nx = x > 0 ? -x : x;                 /* -|x|, never overflows */
	if (fx > 0) {
		e = potc__exp_neg_q30(nx, fx - 1);          /* same integer, half the point: 2x */
	} else {
		/* exp(-2|x|) for |x| > 2^29 is 0 in Q30; up to that 2x fits */
		e = nx < -(1 << 29) ? 0 : potc__exp_neg_q30(nx * 2, 0);
	}
	y = potc__ratio(one - e, one + e, fy);
	return x < 0 ? -y : y;
}

#endif
