/* Integer Conv, AVX2 and SSE2 (qconv_impl.h): pixels in the vector as in
 * qkernels_vnni.c, with int16 pairs and vpmaddwd (exact: only -32768 *
 * -32768 * 2 wraps, modulo 2^32 like every sum here) instead of u8 quads:
 *   - channel pairs (stride 1): the input as int16 [pair][pixel][2] in
 *     scratch, each tap one vpmaddwd + vpaddd per accumulator with the
 *     channel's two int16 weights broadcast;
 *   - kx pairs (depthwise, strided, few channels): pairs (x[C], x[C + dx])
 *     of one channel, the padded plane split into row and column phases
 *     by the stride so that every tap pair reads its phase at unit stride.
 * u16 inputs are moved to int16 as x - 32768 (the bias takes 32768 * sum
 * w').  SSE2 (the x86-64 baseline) runs the same kernels on 4 lanes. */
#include <stdlib.h>
#include <string.h>

#include "qconv_impl.h"

const Isa qc_isa256 = {8, "_mm256", "__m256i", "q256", "_mm256_loadu_si256((const __m256i *)(const void *)",
                       "_mm256_storeu_si256((__m256i *)(void *)", 0};
const Isa qc_isa128 = {4, "_mm", "__m128i", "q128", "_mm_loadu_si128((const __m128i *)(const void *)",
                       "_mm_storeu_si128((__m128i *)(void *)", 1};

/* ---- AVX2: 8 int32 lanes ----
 * The same helpers on ymm (no masks, no 64-bit arithmetic shift):
 *   shr: sign(x) * ((|x| + h) >> n) with vpsignd;
 *   shrh: as potc_q512_shrh, the compare giving -1 where y < t;
 *   mulq31: the 64-bit product plus 2^62 + 2^30 is positive, so a
 *        logical shift by 31 gives floor((x m + 2^30) / 2^31) + 2^31,
 *        whose low 32 bits flipped in the top bit are the result;
 *   packs: the saturating packs clamp to the output dtype's range for
 *        free (i16 on the way to i8/u8: exact, every value fits). */
const char *const qc_q256_text[] = {
	"#include <immintrin.h>",
	"#ifndef POTC_QPIN",
	"/* Keeps an accumulator in a register between taps: without it gcc",
	" * reassociates the chains of vector adds into trees of products that",
	" * spill (integer adds are associative). */",
	"#if defined(__GNUC__)",
	"#define POTC_QPIN(v) __asm__(\"\" : \"+x\"(v))",
	"#else",
	"#define POTC_QPIN(v) (void)0",
	"#endif",
	"#endif",
	"#ifndef POTC_Q256",
	"#define POTC_Q256",
	"POTC_FN __m256i potc_q256_shr(__m256i x, __m256i n, __m256i h)",
	"{",
	"\treturn _mm256_sign_epi32(_mm256_srlv_epi32(_mm256_add_epi32(_mm256_abs_epi32(x), h), n), x);",
	"}",
	"POTC_FN __m256i potc_q256_shrh(__m256i y, __m256i n, __m256i t)",
	"{",
	"\treturn _mm256_srav_epi32(_mm256_add_epi32(y, _mm256_cmpgt_epi32(t, y)), n);",
	"}",
	"POTC_FN __m256i potc_q256_mulq31(__m256i x, __m256i m)",
	"{",
	"\tconst __m256i c = _mm256_set1_epi64x(((long long)1 << 62) + ((long long)1 << 30));",
	"\tconst __m256i e = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(x, m), c), 31);",
	"\tconst __m256i o = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32),",
	"\t                                                                      _mm256_srli_epi64(m, 32)), c), 31);",
	"\treturn _mm256_xor_si256(_mm256_blend_epi32(e, _mm256_slli_epi64(o, 32), 0xAA), _mm256_set1_epi32(INT32_MIN));",
	"}",
	"POTC_FN __m256i potc_q256_lsat(__m256i x, int l)",
	"{",
	"\tconst __m256i hi = _mm256_set1_epi32(INT32_MAX >> l), lo = _mm256_set1_epi32(~(INT32_MAX >> l));",
	"\tconst __m256i r = _mm256_sllv_epi32(x, _mm256_set1_epi32(l));",
	"\tconst __m256i t = _mm256_blendv_epi8(r, _mm256_set1_epi32(INT32_MAX), _mm256_cmpgt_epi32(x, hi));",
	"\treturn _mm256_blendv_epi8(t, _mm256_set1_epi32(INT32_MIN), _mm256_cmpgt_epi32(lo, x));",
	"}",
	"POTC_FN __m256i potc_q256_rescale(__m256i x, int32_t m, int n)",
	"{",
	"\tif (m == 0) {",
	"\t\tif (n > 32)",
	"\t\t\treturn _mm256_setzero_si256();",
	"\t\tif (n == 32)",
	"\t\t\treturn _mm256_cmpeq_epi32(x, _mm256_set1_epi32(INT32_MIN));",
	"\t\tif (n < 0)",
	"\t\t\treturn potc_q256_lsat(x, -n);",
	"\t} else {",
	"\t\tif (n < 0)",
	"\t\t\treturn potc_q256_mulq31(potc_q256_lsat(x, -n), _mm256_set1_epi32(m));",
	"\t\tx = potc_q256_mulq31(x, _mm256_set1_epi32(m));",
	"\t}",
	"\treturn potc_q256_shr(x, _mm256_set1_epi32(n), _mm256_set1_epi32(n ? (int32_t)1 << (n - 1) : 0));",
	"}",
	"#ifndef POTC_QW1",
	"#define POTC_QW1",
	"/* element i of type t as int16 (short rows: no vector round trip through",
	" * memory, whose loads would wait for the stores) */",
	"POTC_FN int16_t potc_q_w1(const void *p, long i, int t)",
	"{",
	"\tif (t == 0)",
	"\t\treturn (int16_t)((const uint8_t *)p)[i];",
	"\tif (t == 1)",
	"\t\treturn (int16_t)((const int8_t *)p)[i];",
	"\tif (t == 2)",
	"\t\treturn ((const int16_t *)p)[i];",
	"\treturn (int16_t)((int32_t)((const uint16_t *)p)[i] - 32768);",
	"}",
	"#endif",
	"/* 16 elements of type t (0 u8, 1 i8, 2 i16, 3 u16 - 32768) as int16 */",
	"POTC_FN __m256i potc_q256_w16(const void *p, int t)",
	"{",
	"\tif (t == 0)",
	"\t\treturn _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p));",
	"\tif (t == 1)",
	"\t\treturn _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p));",
	"\tif (t == 2)",
	"\t\treturn _mm256_loadu_si256((const __m256i *)p);",
	"\treturn _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)p), _mm256_set1_epi16((short)0x8000));",
	"}",
	"POTC_FN void potc_q256_pair16(int16_t *d, const void *a, const void *b, int t, int pad)",
	"{",
	"\tconst __m256i x = potc_q256_w16(a, t), y = b ? potc_q256_w16(b, t) : _mm256_set1_epi16((short)pad);",
	"\tconst __m256i lo = _mm256_unpacklo_epi16(x, y), hi = _mm256_unpackhi_epi16(x, y);",
	"\t_mm256_storeu_si256((__m256i *)(void *)d, _mm256_permute2x128_si256(lo, hi, 0x20));",
	"\t_mm256_storeu_si256((__m256i *)(void *)(d + 16), _mm256_permute2x128_si256(lo, hi, 0x31));",
	"}",
	"/* Rows a, b (NULL: pad) of n elements of type t as n int16 pairs at d:",
	" * 16 at a time, the last 16 overlapping; short rows through a copy. */",
	"POTC_FN void potc_q256_pairs(int16_t *d, const void *a, const void *b, long n, int t, int pad)",
	"{",
	"\tconst long es = t < 2 ? 1 : 2;",
	"\tif (n >= 16) {",
	"\t\tfor (long i = 0; i < n; i += 16) {",
	"\t\t\tconst long j = i + 16 <= n ? i : n - 16;",
	"\t\t\tpotc_q256_pair16(d + 2 * j, (const char *)a + j * es, b ? (const char *)b + j * es : 0, t, pad);",
	"\t\t}",
	"\t} else {",
	"\t\tfor (long i = 0; i < n; i++) {",
	"\t\t\td[2 * i] = potc_q_w1(a, i, t);",
	"\t\t\td[2 * i + 1] = b ? potc_q_w1(b, i, t) : (int16_t)pad;",
	"\t\t}",
	"\t}",
	"}",
	"#ifndef POTC_QLD32",
	"#define POTC_QLD32",
	"POTC_FN int32_t potc_q_ld32(const unsigned char *p)",
	"{",
	"\tint32_t v;",
	"\tmemcpy(&v, p, 4);",
	"\treturn v;",
	"}",
	"#endif",
	"#endif",
	NULL,
};

/* SSE2: pmaddwd and 32-bit adds exist, vector abs, sign, 32-bit min /
 * max and variable shifts do not: the folded right shift (potc_q128_shrh,
 * one count for all lanes) is vectorised, other rescales go lane by lane
 * through potc_rescale; min / max are compare-and-select. */
const char *const qc_q128_text[] = {
	"#include <emmintrin.h>",
	"#ifndef POTC_QPIN",
	"/* Keeps an accumulator in a register between taps: without it gcc",
	" * reassociates the chains of vector adds into trees of products that",
	" * spill (integer adds are associative). */",
	"#if defined(__GNUC__)",
	"#define POTC_QPIN(v) __asm__(\"\" : \"+x\"(v))",
	"#else",
	"#define POTC_QPIN(v) (void)0",
	"#endif",
	"#endif",
	"#ifndef POTC_Q128",
	"#define POTC_Q128",
	"POTC_FN __m128i potc_q128_shrh(__m128i y, int n, __m128i t)",
	"{",
	"\treturn _mm_sra_epi32(_mm_add_epi32(y, _mm_cmpgt_epi32(t, y)), _mm_cvtsi32_si128(n));",
	"}",
	"/* potc_rshift_rnd32 by n in [0, 31] (h = 2^(n-1)): sign and magnitude */",
	"POTC_FN __m128i potc_q128_shr(__m128i x, int n, int32_t h)",
	"{",
	"\tconst __m128i s = _mm_srai_epi32(x, 31), a = _mm_sub_epi32(_mm_xor_si128(x, s), s);",
	"\tconst __m128i r = _mm_srl_epi32(_mm_add_epi32(a, _mm_set1_epi32(h)), _mm_cvtsi32_si128(n));",
	"\treturn _mm_sub_epi32(_mm_xor_si128(r, s), s);",
	"}",
	"/* potc_mul_q31 for m in [2^30, 2^31): unsigned 32 x 32 products (pmuludq)",
	" * less m * 2^32 where x < 0 are the signed ones; plus 2^62 + 2^30 they are",
	" * positive, so a logical shift by 31 floors; the low 32 bits hold the",
	" * result plus 2^31. */",
	"POTC_FN __m128i potc_q128_mulq31(__m128i x, int32_t m)",
	"{",
	"\tconst __m128i mv = _mm_set1_epi32(m), m32 = _mm_set1_epi64x((long long)m << 32);",
	"\tconst __m128i c = _mm_set1_epi64x(((long long)1 << 62) + ((long long)1 << 30));",
	"\tconst __m128i s = _mm_srai_epi32(x, 31);",
	"\t__m128i e = _mm_mul_epu32(x, mv), o = _mm_mul_epu32(_mm_srli_epi64(x, 32), mv);",
	"\te = _mm_sub_epi64(e, _mm_and_si128(_mm_shuffle_epi32(s, 0xA0), m32));",
	"\to = _mm_sub_epi64(o, _mm_and_si128(_mm_shuffle_epi32(s, 0xF5), m32));",
	"\te = _mm_srli_epi64(_mm_add_epi64(e, c), 31);",
	"\to = _mm_srli_epi64(_mm_add_epi64(o, c), 31);",
	"\tconst __m128i r = _mm_or_si128(_mm_and_si128(e, _mm_set1_epi64x(0xffffffffLL)), _mm_slli_epi64(o, 32));",
	"\treturn _mm_xor_si128(r, _mm_set1_epi32(INT32_MIN));",
	"}",
	"POTC_FN __m128i potc_q128_max(__m128i a, __m128i b)",
	"{",
	"\tconst __m128i m = _mm_cmpgt_epi32(a, b);",
	"\treturn _mm_or_si128(_mm_and_si128(m, a), _mm_andnot_si128(m, b));",
	"}",
	"POTC_FN __m128i potc_q128_min(__m128i a, __m128i b)",
	"{",
	"\tconst __m128i m = _mm_cmpgt_epi32(a, b);",
	"\treturn _mm_or_si128(_mm_and_si128(m, b), _mm_andnot_si128(m, a));",
	"}",
	"POTC_FN __m128i potc_q128_rescale(__m128i x, int32_t m, int n)",
	"{",
	"\tint32_t l[4];",
	"\t_mm_storeu_si128((__m128i *)(void *)l, x);",
	"\tfor (int e = 0; e < 4; e++)",
	"\t\tl[e] = potc_rescale(l[e], m, n);",
	"\treturn _mm_loadu_si128((const __m128i *)(const void *)l);",
	"}",
	"#ifndef POTC_QW1",
	"#define POTC_QW1",
	"/* element i of type t as int16 (short rows: no vector round trip through",
	" * memory, whose loads would wait for the stores) */",
	"POTC_FN int16_t potc_q_w1(const void *p, long i, int t)",
	"{",
	"\tif (t == 0)",
	"\t\treturn (int16_t)((const uint8_t *)p)[i];",
	"\tif (t == 1)",
	"\t\treturn (int16_t)((const int8_t *)p)[i];",
	"\tif (t == 2)",
	"\t\treturn ((const int16_t *)p)[i];",
	"\treturn (int16_t)((int32_t)((const uint16_t *)p)[i] - 32768);",
	"}",
	"#endif",
	"/* 8 elements of type t (0 u8, 1 i8, 2 i16, 3 u16 - 32768) as int16 */",
	"POTC_FN __m128i potc_q128_w8(const void *p, int t)",
	"{",
	"\tconst __m128i z = _mm_setzero_si128();",
	"\tif (t == 0)",
	"\t\treturn _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)p), z);",
	"\tif (t == 1) {",
	"\t\tconst __m128i v = _mm_loadl_epi64((const __m128i *)p);",
	"\t\treturn _mm_unpacklo_epi8(v, _mm_cmpgt_epi8(z, v));",
	"\t}",
	"\tif (t == 2)",
	"\t\treturn _mm_loadu_si128((const __m128i *)p);",
	"\treturn _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), _mm_set1_epi16((short)0x8000));",
	"}",
	"POTC_FN void potc_q128_pair8(int16_t *d, const void *a, const void *b, int t, int pad)",
	"{",
	"\tconst __m128i x = potc_q128_w8(a, t), y = b ? potc_q128_w8(b, t) : _mm_set1_epi16((short)pad);",
	"\t_mm_storeu_si128((__m128i *)(void *)d, _mm_unpacklo_epi16(x, y));",
	"\t_mm_storeu_si128((__m128i *)(void *)(d + 8), _mm_unpackhi_epi16(x, y));",
	"}",
	"POTC_FN void potc_q128_pairs(int16_t *d, const void *a, const void *b, long n, int t, int pad)",
	"{",
	"\tconst long es = t < 2 ? 1 : 2;",
	"\tif (n >= 8) {",
	"\t\tfor (long i = 0; i < n; i += 8) {",
	"\t\t\tconst long j = i + 8 <= n ? i : n - 8;",
	"\t\t\tpotc_q128_pair8(d + 2 * j, (const char *)a + j * es, b ? (const char *)b + j * es : 0, t, pad);",
	"\t\t}",
	"\t} else {",
	"\t\tfor (long i = 0; i < n; i++) {",
	"\t\t\td[2 * i] = potc_q_w1(a, i, t);",
	"\t\t\td[2 * i + 1] = b ? potc_q_w1(b, i, t) : (int16_t)pad;",
	"\t\t}",
	"\t}",
	"}",
	"#ifndef POTC_QLD32",
	"#define POTC_QLD32",
	"POTC_FN int32_t potc_q_ld32(const unsigned char *p)",
	"{",
	"\tint32_t v;",
	"\tmemcpy(&v, p, 4);",
	"\treturn v;",
	"}",
	"#endif",
	"#endif",
	NULL,
};

/* The clamp before the packs: with zp_y = 0 the packs' saturation is
 * the dtype's range, so only a narrower lo / hi costs an instruction.
 * (u16 on SSE2: packs of v - 32768, then the top bit flipped.) */
OutPlan qc_out_plan256(const QOut *o)
{
	OutPlan p = qc_out_plan(o);
	int uns = o->yt == DT_U8 || o->yt == DT_U16;
	if (o->zy == 0 && uns)
		p.maxv = o->lo > 0;
	p.cvt = uns ? "packus" : "packs";
	return p;
}

void qc_out256(Ctx *c, const Isa *I, const OutPlan *p, const char *r)
{
	if (p->maxv && I->sse2)
		ec_line(&c->c, "%s = potc_q128_max(%s, _mm_set1_epi32(%ld));", r, r, (long)p->lo);
	else if (p->maxv)
		ec_line(&c->c, "%s = %s_max_epi32(%s, %s_set1_epi32(%ld));", r, I->p, r, I->p, (long)p->lo);
	if (p->minv && I->sse2)
		ec_line(&c->c, "%s = potc_q128_min(%s, _mm_set1_epi32(%ld));", r, r, (long)p->hi);
	else if (p->minv)
		ec_line(&c->c, "%s = %s_min_epi32(%s, %s_set1_epi32(%ld));", r, I->p, r, I->p, (long)p->hi);
	if (p->addz)
		ec_line(&c->c, "%s = %s_add_epi32(%s, %s_set1_epi32(%ld));", r, I->p, r, I->p, (long)p->zy);
}

/* Store the first `valid` of r's lanes narrowed at dst. */
void qc_store256(Ctx *c, const Isa *I, const OutPlan *p, const char *r, const char *dst, int valid)
{
	ec_line(&c->c, "{");
	if (I->sse2) {
		int u16 = p->w16 && strcmp(p->cvt, "packus") == 0;
		if (u16)
			ec_line(&c->c, "const __m128i q_ = _mm_sub_epi32(%s, _mm_set1_epi32(32768));", r);
		ec_line(&c->c, "const __m128i l_ = %s, h_ = l_;", u16 ? "q_" : r);
		if (u16)
			ec_line(&c->c, "const __m128i p_ = _mm_xor_si128(_mm_packs_epi32(l_, h_), _mm_set1_epi16((short)0x8000));");
		else if (p->w16)
			ec_line(&c->c, "const __m128i p_ = _mm_packs_epi32(l_, h_);");
		else
			ec_line(&c->c, "const __m128i p_ = _mm_%s_epi16(_mm_packs_epi32(l_, h_), _mm_setzero_si128());", p->cvt);
	} else {
		ec_line(&c->c, "const __m128i l_ = _mm256_castsi256_si128(%s), h_ = _mm256_extracti128_si256(%s, 1);", r, r);
		if (p->w16)
			ec_line(&c->c, "const __m128i p_ = _mm_%s_epi32(l_, h_);", p->cvt);
		else
			ec_line(&c->c, "const __m128i p_ = _mm_%s_epi16(_mm_packs_epi32(l_, h_), _mm_setzero_si128());", p->cvt);
	}
	int bytes = valid * (p->w16 ? 2 : 1);
	if (bytes == 16) {
		ec_line(&c->c, "_mm_storeu_si128((__m128i *)(void *)(%s), p_);", dst);
	} else if (bytes == 8) {
		ec_line(&c->c, "_mm_storel_epi64((__m128i *)(void *)(%s), p_);", dst);
	} else {
		ec_line(&c->c, "unsigned char b_[16];");
		ec_line(&c->c, "_mm_storeu_si128((__m128i *)(void *)b_, p_);");
		ec_line(&c->c, "memcpy(%s, b_, %d);", dst, bytes);
	}
	ec_line(&c->c, "}");
}

/* SSE2 vectorises right shifts and Q31 multiplies with n >= 0 (one count
 * for all lanes: pixels in the vector share the channel). */
static int form_of(const Isa *I, int form)
{
	return I->sse2 && form != RF_SHIFTH && form != RF_ONE && form != RF_SHIFT && form != RF_Q31 ? RF_ANY : form;
}

/* One Rescale that SSE2 vectorises. */
static int sse2_one_ok(Rescale r)
{
	return (r.m == 0 && r.n >= 0 && r.n <= 31) || (r.m != 0 && r.n >= 0);
}

static void params256(Ctx *c, const Isa *I, const QOut *o, int form, const char *ch)
{
	int id = c->id;
	const char *T = I->ty, *P = I->p;
	if (I->sse2 && (form == RF_Q31 || form == RF_SHIFT)) {
		if (form == RF_Q31)
			ec_line(&c->c, "const int32_t m_ = n%d_rm[%s];", id, ch);
		ec_line(&c->c, "const int n_ = n%d_rn[%s];", id, ch);
		ec_line(&c->c, "const int32_t h_ = n%d_rh[%s];", id, ch);
		return;
	}
	if (form == RF_Q31)
		ec_line(&c->c, "const %s m_ = %s_set1_epi32(n%d_rm[%s]);", T, P, id, ch);
	if (form == RF_SHIFT || form == RF_Q31)
		ec_line(&c->c, "const %s n_ = %s_set1_epi32(n%d_rn[%s]), h_ = %s_set1_epi32(n%d_rh[%s]);", T, P, id, ch, P, id,
		        ch);
	if (form != RF_SHIFTH)
		return;
	const char *n = o->r1 ? arena_printf(c->g->arena, "%d", o->r[0].n) : arena_printf(c->g->arena, "n%d_rn[%s]", id, ch);
	const char *tt = o->r1 ? arena_printf(c->g->arena, "%ld", (long)qc_thr_of(o->r[0])) :
	                 arena_printf(c->g->arena, "n%d_rt[%s]", id, ch);
	if (I->sse2)
		ec_line(&c->c, "const int n_ = %s;", n);
	else
		ec_line(&c->c, "const %s n_ = %s_set1_epi32(%s);", T, P, n);
	ec_line(&c->c, "const %s t_ = %s_set1_epi32(%s);", T, P, tt);
}

static const char *rescale256(Ctx *c, const Isa *I, const QOut *o, int form, const char *acc, const char *ch)
{
	Arena *a = c->g->arena;
	const char *h = I->h;
	if (I->sse2 && form == RF_ONE && sse2_one_ok(o->r[0])) {
		Rescale r = o->r[0];
		int32_t hh = r.n > 0 ? (int32_t)1 << (r.n - 1) : 0;
		if (r.m == 0)
			return arena_printf(a, "potc_q128_shr(%s, %d, %ld)", acc, r.n, (long)hh);
		return arena_printf(a, "potc_q128_shr(potc_q128_mulq31(%s, %ld), %d, %ld)", acc, (long)r.m, r.n, (long)hh);
	}
	switch (form) {
	case RF_ONE:
		return arena_printf(a, "potc_%s_rescale(%s, %ld, %d)", h, acc, (long)o->r[0].m, o->r[0].n);
	case RF_SHIFT:
		return arena_printf(a, "potc_%s_shr(%s, n_, h_)", h, acc);
	case RF_Q31:
		return arena_printf(a, "potc_%s_shr(potc_%s_mulq31(%s, m_), n_, h_)", h, h, acc);
	case RF_SHIFTH:
		return arena_printf(a, "potc_%s_shrh(%s, n_, t_)", h, acc);
	default:
		return arena_printf(a, "potc_%s_rescale(%s, n%d_rm[%s], n%d_rn[%s])", h, acc, c->id, ch, c->id, ch);
	}
}

/* One AVX2 / SSE2 tile: np channels from m0 times nv vectors of L
 * positions, int16 pairs (vpmaddwd). */
void qc_avx2_tile(Ctx *c, const Vx *x, int np, int nv, const VxVec *vec)
{
	const QConv *v = x->v;
	const QOut *o = &v->o;
	const Isa *I = x->isa;
	const char *T = I->ty, *P = I->p;
	Str s = {0};
	ec_line(&c->c, "{");
	for (int p = 0; p < np; p++)
		for (int u = 0; u < nv; u++)
			if (u)
				str_printf(&s, ", a%d_%d = a%d_0", p, u, p);
			else
				str_printf(&s, "%sa%d_0 = %s_set1_epi32(bg[m0 + %d])", p ? ", " : arena_printf(c->g->arena, "%s ", T), p,
				           P, p);
	ec_line(&c->c, "%s;", s.s);
	str_free(&s);
	for (int u = 0; u < nv; u++)
		ec_line(&c->c, "const unsigned char *const p%d = xg + (%s) * %d;", u, vec[u].q, x->unit);
	ec_line(&c->c, "const int32_t *wq = wg + m0 * %lld;", (long long)x->KQ);
	if (x->ncq > 1)
		ec_line(&c->c, "for (long k = 0, ko = 0; k < %lld; k++, ko += %lld, wq += %lld) {", (long long)x->ncq,
		        (long long)x->PLB, (long long)x->nq);
	else
		ec_line(&c->c, "{");
	const char *ko = x->ncq > 1 ? "ko + " : "";
	for (int64_t t = 0; t < x->nq; t++) {
		ec_line(&c->c, "{");
		for (int u = 0; u < nv; u++)
			ec_line(&c->c, "const %s x%d = %s(p%d + %s%lld));", T, u, I->ld, u, ko, (long long)x->off[t]);
		for (int p = 0; p < np; p++) {
			ec_line(&c->c, "const %s w%d = %s_set1_epi32(wq[%lld]);", T, p, P, (long long)(p * x->KQ + t));
			for (int u = 0; u < nv; u++)
				ec_line(&c->c, "a%d_%d = %s_add_epi32(a%d_%d, %s_madd_epi16(x%d, w%d));", p, u, P, p, u, P, u, p);
		}
		for (int p = 0; p < np; p++)
			for (int u = 0; u < nv; u++)
				ec_line(&c->c, "POTC_QPIN(a%d_%d);", p, u);
		ec_line(&c->c, "}");
	}
	ec_line(&c->c, "}");
	OutPlan op = qc_out_plan256(o);
	int form = form_of(I, qc_rform_vec(o));
	int64_t ysz = (int64_t)ir_dtype_size(o->yt);
	for (int p = 0; p < np; p++) {
		const char *ch = arena_printf(c->g->arena, "mg + m0 + %d", p);
		ec_line(&c->c, "{");
		params256(c, I, o, form, ch);
		for (int u = 0; u < nv; u++) {
			ec_line(&c->c, "{");
			ec_line(&c->c, "%s r = %s;", T, rescale256(c, I, o, form, arena_printf(c->g->arena, "a%d_%d", p, u), ch));
			qc_out256(c, I, &op, "r");
			const char *dst = x->out == VO_TBUF ?
			    arena_printf(c->g->arena, "ts + (%lld + %s) * %lld", (long long)(p * x->QR), vec[u].q, (long long)ysz) :
			    arena_printf(c->g->arena, "yg + (m0 + %d) * %lld + %s", p, (long long)v->G.outsz, vec[u].yi);
			qc_store256(c, I, &op, "r", dst, x->out == VO_TBUF ? I->L : vec[u].valid);
			ec_line(&c->c, "}");
		}
		ec_line(&c->c, "}");
	}
	ec_line(&c->c, "}");
}

static int avx2_ok(const QConv *v)
{
	if (v->o.acc64)
		return 0;
	for (int64_t i = 0; i < v->M * v->K; i++)
		if (v->w[i] < -32768 || v->w[i] > 32767)
			return 0;
	return 1;
}

/* The offset added to inputs on their way into scratch (int16). */
static int32_t avx2_offset(const QConv *v)
{
	return v->o.xt == DT_U16 ? -32768 : 0;
}

/* AVX2 planes: channel pairs (CQ) at stride 1, or (xq) kx pairs
 * (x[C], x[C + dx]) of one channel, split into row and column phases by
 * the stride so every tap pair reads its phase plane at unit stride. */
Vx qc_vy_geom(QConv *v, int dw, const Isa *I)
{
	const Geom *G = &v->G;
	Vx x = {0};
	x.v = v;
	if (G->in[0] != 1 || G->out[0] != 1 || G->k[0] != 1 || !avx2_ok(v))
		return x;
	int OH = (int)G->out[1], s = G->s[2], dx = G->d[2], dy = G->d[1];
	if (OH > 1 && G->s[1] != s)
		return x;
	int kh = G->k[1], kw = G->k[2];
	x.nkq = (kw + 1) / 2;
	x.xq = dw || s > 1 || (int64_t)v->Cg * x.nkq < (v->Cg + 1) / 2 * (int64_t)kw;
	x.kind = VK_AVX2;
	x.isa = I;
	x.L = I->L;
	x.unit = 4;
	x.s = s;
	x.sr = OH > 1 ? s : 1;
	int sc = x.xq ? s : 1, nk = x.xq ? x.nkq : kw, step = x.xq ? 2 : 1;
	x.out = qc_vx_out_mode(G, (v->pin[2] + s - 1) / s, x.L, &x.OWp);
	x.Wp = x.OWp;            /* positions a row of a (phase) plane */
	x.Q = (OH - 1) * x.OWp + G->out[2];
	x.QR = (x.Q + x.L - 1) / x.L * x.L;
	int64_t offmax = 0, rows = (v->pin[1] + x.sr - 1) / x.sr * x.Wp;
	for (int ky = 0; ky < kh; ky++)
		for (int kq = 0; kq < nk; kq++) {
			int64_t o = (int64_t)ky * dy / x.sr * x.Wp + (int64_t)kq * step * dx / sc;
			offmax = o > offmax ? o : offmax;
		}
	int64_t need = x.QR + offmax;
	x.PHB = align64((rows > need ? rows : need) * 4 + 64);
	x.PLB = x.sr * sc * x.PHB;
	x.nq = 0;
	for (int ky = 0; ky < kh; ky++)
		for (int kq = 0; kq < nk; kq++) {
			if (x.nq >= VX_MAXTAP)
				return x;
			int64_t r = (int64_t)ky * dy, cc = (int64_t)kq * step * dx;
			x.off[x.nq++] = (r % x.sr * sc + cc % sc) * x.PHB + (r / x.sr * x.Wp + cc / sc) * 4;
		}
	x.ncq = x.xq ? v->Cg : (v->Cg + 1) / 2;
	x.KQ = x.ncq * x.nq;
	x.vstep = 4LL * x.L;
	int64_t nvec = x.QR / x.L;
	x.nv = (int)(nvec < VY_NV ? nvec : VY_NV);
	x.np = dw ? 1 : (int)(v->Mg < VY_ACC / x.nv ? v->Mg : VY_ACC / x.nv);
	x.xbytes = (dw ? 1 : v->grp) * x.ncq * x.PLB;
	x.tbytes = x.out == VO_TBUF ? x.np * x.QR * (int64_t)ir_dtype_size(v->o.yt) : 0;
	x.ok = 1;
	return x;
}

/* Bytes of the kx-pair fill's row planes for nplanes planes. */
static int64_t vy_tw(const Vx *x);
int64_t qc_vy_rowbuf(const Vx *x, int64_t nplanes)
{
	return x->xq ? align64(nplanes * x->v->pin[1] * vy_tw(x) * 2) : 0;
}

/* Weights as int32 [m][pair or channel][tap pair]: two int16, the even
 * channel (or tap) low. */
static void vy_put_weights(Ctx *c, const Vx *x, const char *name)
{
	const QConv *v = x->v;
	int64_t ksz = v->G.ksz, n = v->M * x->KQ;
	int32_t *q = malloc(sizeof *q * (size_t)(n > 0 ? n : 1));
	for (int64_t m = 0; m < v->M; m++)
		for (int64_t cq = 0; cq < x->ncq; cq++)
			for (int64_t t = 0; t < x->nq; t++) {
				uint32_t u = 0;
				for (int j = 0; j < 2; j++) {
					int64_t ci = x->xq ? cq : cq * 2 + j, kw = v->G.k[2];
					int64_t ky = x->xq ? t / x->nkq : t / kw, kx = x->xq ? t % x->nkq * 2 + j : t % kw;
					if (ci < v->Cg && kx < kw)
						u |= (uint32_t)(uint16_t)(int16_t)v->w[m * v->K + ci * ksz + ky * kw + kx] << (16 * j);
				}
				q[(m * x->ncq + cq) * x->nq + t] = u > 0x7fffffffu ? -(int32_t)~u - 1 : (int32_t)u;
			}
	qc_put_i32(c, name, DT_I32, q, n);
	free(q);
}

/* Set every element of the scratch planes to the pad value. */
static void vy_pads(Ctx *c, const Vx *x, int64_t bytes)
{
	const QConv *v = x->v;
	int32_t pad = v->o.zx + avx2_offset(v);
	ec_line(&c->c, "for (long i = 0; i < %lld; i++)", (long long)(bytes / 2));
	ec_line(&c->c, "\t((uint16_t *)(void *)xs)[i] = %uu;", (unsigned)(pad & 0xffff));
}

/* Image n's channel pairs into scratch (pads set before). */
static void vy_fill_pairs(Ctx *c, const Vx *x, const char *nv)
{
	const QConv *v = x->v;
	const Geom *G = &v->G;
	const char *tx = ec_ctype(v->o.xt);
	int tcode = v->o.xt == DT_U8 ? 0 : v->o.xt == DT_I8 ? 1 : v->o.xt == DT_I16 ? 2 : 3;
	int32_t pad = v->o.zx + avx2_offset(v);
	const char *img = *nv ? ec_aff(c, 0, nv, v->C * G->insz, NULL) : "";
	int flat = !v->padded && G->in[2] == x->Wp;
	ec_line(&c->c, "for (long k = 0; k < %lld; k++) {", (long long)(v->grp * x->ncq));
	ec_line(&c->c, "const long c0 = k / %lld * %lld + k %% %lld * 2;", (long long)x->ncq, (long long)v->Cg,
	        (long long)x->ncq);
	ec_line(&c->c, "const %s *const r0 = %s + %s;", tx, v->x, ec_aff(c, 0, img, (int64_t)1, "c0", G->insz, NULL));
	const char *b = v->Cg % 2 == 0 ? arena_printf(c->g->arena, "r0 + %lld", (long long)G->insz) :
	                arena_printf(c->g->arena, "k %% %lld * 2 + 1 < %lld ? r0 + %lld : 0", (long long)x->ncq,
	                             (long long)v->Cg, (long long)G->insz);
	if (flat) {
		ec_line(&c->c, "potc_%s_pairs((int16_t *)(void *)(xs + k * %lld), r0, %s, %lld, %d, %d);", x->isa->h,
		        (long long)x->PLB, b, (long long)G->insz, tcode, (int)(int16_t)pad);
	} else {
		ec_line(&c->c, "const %s *const r1 = %s;", tx, b);
		ec_line(&c->c, "for (long iy = 0; iy < %lld; iy++)", (long long)G->in[1]);
		ec_line(&c->c, "\tpotc_%s_pairs((int16_t *)(void *)(xs + %s), r0 + iy * %lld, r1 ? r1 + iy * %lld : 0, %lld, "
		        "%d, %d);", x->isa->h, ec_aff(c, (G->pb[1] * x->Wp + G->pb[2]) * 4, "k", x->PLB, "iy", x->Wp * 4, NULL),
		        (long long)G->in[2], (long long)G->in[2], (long long)G->in[2], tcode, (int)(int16_t)pad);
	}
	ec_line(&c->c, "}");
}

static void vy_arrays(Ctx *c, const Vx *x)
{
	const QConv *v = x->v;
	const QOut *o = &v->o;
	qc_put_text(c, x->isa->sse2 ? qc_q128_text : qc_q256_text);
	vy_put_weights(c, x, arena_printf(c->g->arena, "n%d_wq", c->id));
	qc_put_bias_h(c, o, arena_printf(c->g->arena, "n%d_bq", c->id), v->bias, v->sumw,
	           o->zx + avx2_offset(v), v->M, qc_rform_vec(o) == RF_SHIFTH, 0);
	qc_put_rescale(c, o, form_of(x->isa, qc_rform_vec(o)));
}

/* The kx-pair fill, in two passes so that no load reads a store just
 * made (store-to-load forwarding fails on loads spanning several stores,
 * a stall per row): first the rows of every plane widened into padded
 * int16 row planes (tb, pads set once), then for each column phase cp
 * the pairs (T[s j + cp], T[s j + cp + dx]) of every position j.  var
 * runs over count planes, src is the input channel of plane var. */
static int64_t vy_tw(const Vx *x)
{
	return (x->s * x->Wp + x->v->G.d[2] + 23) / 16 * 16;
}

static void vy_fill_xq(Ctx *c, const Vx *x, const char *var, const char *count, const char *src)
{
	const QConv *v = x->v;
	const Geom *G = &v->G;
	const char *tx = ec_ctype(v->o.xt);
	int s = x->s, dx = G->d[2];
	int64_t tw = vy_tw(x), th = v->pin[1];
	const char *cv = avx2_offset(v) ? "(int16_t)((int32_t)r[i] - 32768)" : "(int16_t)r[i]";
	ec_line(&c->c, "for (long %s = 0; %s < %s; %s++)", var, var, count, var);
	ec_line(&c->c, "\tfor (long iy = 0; iy < %lld; iy++) {", (long long)G->in[1]);
	c->c.depth++;
	ec_line(&c->c, "const %s *const r = %s + (%s) * %lld + iy * %lld;", tx, v->x, src, (long long)G->insz,
	        (long long)G->in[2]);
	ec_line(&c->c, "int16_t *const tr = tb + (%s * %lld + iy + %d) * %lld + %d;", var, (long long)th, G->pb[1],
	        (long long)tw, G->pb[2]);
	ec_line(&c->c, "for (long i = 0; i < %lld; i++)", (long long)G->in[2]);
	ec_line(&c->c, "\ttr[i] = %s;", cv);
	ec_line(&c->c, "}");
	c->c.depth--;
	ec_line(&c->c, "for (long %s = 0; %s < %s; %s++)", var, var, count, var);
	ec_line(&c->c, "\tfor (long R = %d; R < %lld; R++) {", G->pb[1], (long long)(G->pb[1] + G->in[1]));
	c->c.depth++;
	ec_line(&c->c, "const int16_t *const tr = tb + (%s * %lld + R) * %lld;", var, (long long)th, (long long)tw);
	ec_line(&c->c, "int16_t *const d = (int16_t *)(void *)(xs + %s * %lld + R %% %d * %lld + R / %d * %lld);", var,
	        (long long)x->PLB, x->sr, (long long)(s * x->PHB), x->sr, (long long)(x->Wp * 4));
	for (int cp = 0; cp < s; cp++) {
		int64_t po = cp * x->PHB / 2;
		if (s == 1) {   /* pairs of two shifted copies: unpacks */
			ec_line(&c->c, "potc_%s_pairs(d, tr, tr + %d, %lld, 2, 0);", x->isa->h, dx, (long long)x->Wp);
			continue;
		}
		if (s == 2 && dx == 1) {   /* (T[2j + cp], T[2j + cp + 1]): the row itself */
			ec_line(&c->c, "memcpy(d + %lld, tr + %d, %lld);", (long long)po, cp, (long long)(x->Wp * 4));
			continue;
		}
		ec_line(&c->c, "for (long j = 0; j < %lld; j++) {", (long long)x->Wp);
		ec_line(&c->c, "d[%s] = tr[%s];", ec_aff(c, po, "j", (int64_t)2, NULL), ec_aff(c, cp, "j", (int64_t)s, NULL));
		ec_line(&c->c, "d[%s] = tr[%s];", ec_aff(c, po + 1, "j", (int64_t)2, NULL),
		        ec_aff(c, cp + dx, "j", (int64_t)s, NULL));
		ec_line(&c->c, "}");
	}
	ec_line(&c->c, "}");
	c->c.depth--;
}

/* The row planes' pads (set once: only their interiors are rewritten). */
static void vy_rowbuf_pads(Ctx *c, const Vx *x, int64_t at, int64_t nplanes)
{
	const QConv *v = x->v;
	int32_t pad = v->o.zx + avx2_offset(v);
	ec_line(&c->c, "int16_t *const tb = (int16_t *)(void *)(xs + %lld);", (long long)at);
	ec_line(&c->c, "for (long i = 0; i < %lld; i++)", (long long)(nplanes * v->pin[1] * vy_tw(x)));
	ec_line(&c->c, "\ttb[i] = %d;", (int)(int16_t)pad);
}

void qc_avx2_conv(Ctx *c, QConv *v, int64_t scratch, const Isa *I)
{
	Vx x = qc_vy_geom(v, 0, I);
	const QOut *o = &v->o;
	vy_arrays(c, &x);
	ec_begin(c, scratch);
	ec_line(&c->c, "unsigned char *const xs = (unsigned char *)s;");
	if (x.tbytes)
		ec_line(&c->c, "unsigned char *const ts = xs + %lld;", (long long)x.xbytes);
	if (v->padded || x.Wp != v->G.in[2] || x.xq || v->Cg % 2)
		vy_pads(c, &x, x.xbytes);
	if (x.xq)
		vy_rowbuf_pads(c, &x, x.xbytes + align64(x.tbytes), v->C);
	const char *nv = v->N > 1 ? "n" : "";
	if (*nv)
		ec_line(&c->c, "for (long n = 0; n < %lld; n++) {", (long long)v->N);
	else
		ec_line(&c->c, "{");
	if (x.xq) {
		vy_fill_xq(c, &x, "ch", arena_printf(c->g->arena, "%lld", (long long)v->C),
		           *nv ? arena_printf(c->g->arena, "n * %lld + ch", (long long)v->C) : "ch");
	} else {
		vy_fill_pairs(c, &x, nv);
	}
	const char *gv = v->grp > 1 ? "g" : "";
	if (*gv)
		ec_line(&c->c, "for (long g = 0; g < %lld; g++) {", (long long)v->grp);
	else
		ec_line(&c->c, "{");
	ec_line(&c->c, "const unsigned char *const xg = xs + %s;", ec_aff(c, 0, gv, x.ncq * x.PLB, NULL));
	ec_line(&c->c, "const int32_t *const wg = n%d_wq + %s;", c->id, ec_aff(c, 0, gv, v->Mg * x.KQ, NULL));
	ec_line(&c->c, "const int32_t *const bg = n%d_bq + %s;", c->id, ec_aff(c, 0, gv, v->Mg, NULL));
	ec_line(&c->c, "const long mg = %s;", ec_aff(c, 0, gv, v->Mg, NULL));
	ec_line(&c->c, "%s *const yg = y0 + %s;", ec_ctype(o->yt),
	        ec_aff(c, 0, nv, v->M * v->G.outsz, gv, v->Mg * v->G.outsz, NULL));
	ec_line(&c->c, "(void)mg;");
	VxArg a = {&x};
	qc_even_chunks(c, "m0", v->Mg, x.np, qc_vx_chunk, &a);
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_end(c);
}

void qc_avx2_dw(Ctx *c, QConv *v, int64_t scratch, const Isa *I)
{
	Vx x = qc_vy_geom(v, 1, I);
	const QOut *o = &v->o;
	const Geom *G = &v->G;
	vy_arrays(c, &x);
	int64_t cb = v->M < DW_CB ? v->M : DW_CB, tsz = x.out == VO_TBUF ? align64(x.QR * (int64_t)ir_dtype_size(o->yt)) : 0;
	ec_begin(c, scratch);
	ec_line(&c->c, "unsigned char *const xs = (unsigned char *)s;");
	if (x.out == VO_TBUF)
		ec_line(&c->c, "unsigned char *const ts = xs + %lld;", (long long)(cb * x.PLB));
	vy_pads(c, &x, cb * x.PLB);
	vy_rowbuf_pads(c, &x, cb * x.PLB + tsz, cb);
	const char *nv = v->N > 1 ? "n" : "";
	if (*nv)
		ec_line(&c->c, "for (long n = 0; n < %lld; n++)", (long long)v->N);
	ec_line(&c->c, "for (long mb = 0; mb < %lld; mb += %lld) {", (long long)v->M, (long long)cb);
	ec_line(&c->c, "const long nb = %lld - mb < %lld ? %lld - mb : %lld;", (long long)v->M, (long long)cb,
	        (long long)v->M, (long long)cb);
	vy_fill_xq(c, &x, "j", "nb", *nv ? arena_printf(c->g->arena, "n * %lld + mb + j", (long long)v->C) : "mb + j");
	ec_line(&c->c, "for (long j = 0; j < nb; j++) {");
	ec_line(&c->c, "const long mg = mb + j, m0 = 0;");
	ec_line(&c->c, "const unsigned char *const xg = xs + j * %lld;", (long long)x.PLB);
	ec_line(&c->c, "const int32_t *const wg = n%d_wq + mg * %lld;", c->id, (long long)x.KQ);
	ec_line(&c->c, "const int32_t *const bg = n%d_bq + mg;", c->id);
	ec_line(&c->c, "%s *const yg = y0 + %s;", ec_ctype(o->yt), ec_aff(c, 0, nv, v->M * G->outsz, "mg", G->outsz, NULL));
	qc_vx_positions(c, &x, 1);
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_end(c);
}

int64_t qc_avx2_dw_scratch(QConv *v, const Isa *I)
{
	Vx x = qc_vy_geom(v, 1, I);
	int64_t cb = v->M < DW_CB ? v->M : DW_CB;
	return cb * x.PLB + (x.out == VO_TBUF ? align64(x.QR * (int64_t)ir_dtype_size(v->o.yt)) : 0) + qc_vy_rowbuf(&x, cb);
}
