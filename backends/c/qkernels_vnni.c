/* Integer Conv, AVX-512 VNNI (qconv_impl.h).
 *
 * Pixels in the vector: 16 output positions of one output channel per
 * zmm, np channels times nv vectors of accumulators per tile, each tap
 * one vpdpbusd per accumulator with the channel's 4 weight bytes
 * broadcast.  The 4 bytes a lane needs are either 4 input channels of its
 * pixel (channel quads, CQ: the input is re-laid out as [quad][pixel][4]
 * in scratch) or 4 horizontally adjacent taps of one channel (kx quads,
 * XQ, for few input channels: a vpermb of one load gives each lane its
 * window, any stride up to 4).  The output positions are a flat index q
 * over a padded plane of pitch Wp, q = oy * OWp + ox with OWp = Wp / s, so
 * every tap is a constant offset from s * q; columns ox >= OW are junk,
 * dropped by masked stores (when OWp is a multiple of 16) or by copying
 * rows out of a scratch buffer.  s8 inputs are flipped to u8 (x ^ 0x80 =
 * x + 128) on the way into scratch; the bias absorbs 128 * sum w'. */
#include <stdlib.h>
#include <string.h>

#include "qconv_impl.h"

/* potc_rescale and potc_out on 16 int32 lanes, printed once per model.c
 * (the #ifndef keeps later copies out), exactly the scalar functions:
 *   shr: potc_rshift_rnd32 as sign(x) * ((|x| + h) >> n), |x| read as
 *        unsigned (abs(INT32_MIN) is 2^31 there) so nothing wraps;
 *   mulq31: potc_mul_q31 for m in [2^30, 2^31): the exact 64-bit product
 *        plus 2^30, floor-shifted by 31, even and odd lanes apart;
 *   lsat: potc_lshift_sat32; rescale: potc_rescale's cases, one (m, n)
 *        for all lanes (branches fold away when they are constants);
 *   out: potc_out as a clamp to [lo - zp, hi - zp] (saturated to int32 by
 *        the emitter) before adding zp, so the add cannot wrap. */
const char *const qc_q512_text[] = {
	"#include <immintrin.h>",
	"#ifndef POTC_Q512",
	"#define POTC_Q512",
	"POTC_FN __m512i potc_q512_shr(__m512i x, __m512i n, __m512i h)",
	"{",
	"\tconst __m512i r = _mm512_srlv_epi32(_mm512_add_epi32(_mm512_abs_epi32(x), h), n);",
	"\treturn _mm512_mask_sub_epi32(r, _mm512_cmplt_epi32_mask(x, _mm512_setzero_si512()), _mm512_setzero_si512(), r);",
	"}",
	"POTC_FN __m512i potc_q512_shrh(__m512i y, __m512i n, __m512i t)",
	"{",
	"\treturn _mm512_srav_epi32(_mm512_mask_sub_epi32(y, _mm512_cmplt_epi32_mask(y, t), y, _mm512_set1_epi32(1)), n);",
	"}",
	"POTC_FN __m512i potc_q512_mulq31(__m512i x, __m512i m)",
	"{",
	"\tconst __m512i h = _mm512_set1_epi64((long long)1 << 30);",
	"\tconst __m512i e = _mm512_srai_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, m), h), 31);",
	"\tconst __m512i o = _mm512_srai_epi64(_mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32),",
	"\t                                                                      _mm512_srli_epi64(m, 32)), h), 31);",
	"\treturn _mm512_mask_blend_epi32(0xAAAA, e, _mm512_slli_epi64(o, 32));",
	"}",
	"POTC_FN __m512i potc_q512_lsat(__m512i x, int l)",
	"{",
	"\tconst __m512i hi = _mm512_set1_epi32(INT32_MAX >> l), lo = _mm512_set1_epi32(~(INT32_MAX >> l));",
	"\tconst __m512i r = _mm512_sllv_epi32(x, _mm512_set1_epi32(l));",
	"\tconst __m512i t = _mm512_mask_mov_epi32(r, _mm512_cmpgt_epi32_mask(x, hi), _mm512_set1_epi32(INT32_MAX));",
	"\treturn _mm512_mask_mov_epi32(t, _mm512_cmplt_epi32_mask(x, lo), _mm512_set1_epi32(INT32_MIN));",
	"}",
	"POTC_FN __m512i potc_q512_rescale(__m512i x, int32_t m, int n)",
	"{",
	"\tif (m == 0) {",
	"\t\tif (n > 32)",
	"\t\t\treturn _mm512_setzero_si512();",
	"\t\tif (n == 32)",
	"\t\t\treturn _mm512_maskz_mov_epi32(_mm512_cmpeq_epi32_mask(x, _mm512_set1_epi32(INT32_MIN)), _mm512_set1_epi32(-1));",
	"\t\tif (n < 0)",
	"\t\t\treturn potc_q512_lsat(x, -n);",
	"\t} else {",
	"\t\tif (n < 0)",
	"\t\t\treturn potc_q512_mulq31(potc_q512_lsat(x, -n), _mm512_set1_epi32(m));",
	"\t\tx = potc_q512_mulq31(x, _mm512_set1_epi32(m));",
	"\t}",
	"\treturn potc_q512_shr(x, _mm512_set1_epi32(n), _mm512_set1_epi32(n ? (int32_t)1 << (n - 1) : 0));",
	"}",
	"POTC_FN __m512i potc_q512_out(__m512i v, int32_t zp, int32_t lo, int32_t hi)",
	"{",
	"\tv = _mm512_min_epi32(_mm512_max_epi32(v, _mm512_set1_epi32(lo)), _mm512_set1_epi32(hi));",
	"\treturn _mm512_add_epi32(v, _mm512_set1_epi32(zp));",
	"}",
	"/* Rows r0..r3 (NULL: pad) of n bytes, each xor f, as n 4-byte quads at d:",
	" * the four 16-byte pieces in one zmm, interleaved by one vpermb. */",
	"static const unsigned char potc_q512_qix[64] = {0, 16, 32, 48, 1, 17, 33, 49, 2, 18, 34, 50, 3, 19, 35, 51, 4, 20, 36, 52, 5, 21, 37, 53, 6, 22, 38, 54, 7, 23, 39, 55, 8, 24, 40, 56, 9, 25, 41, 57, 10, 26, 42, 58, 11, 27, 43, 59, 12, 28, 44, 60, 13, 29, 45, 61, 14, 30, 46, 62, 15, 31, 47, 63};",
	"POTC_FN void potc_q512_quads(unsigned char *d, const unsigned char *r0, const unsigned char *r1,",
	"                                   const unsigned char *r2, const unsigned char *r3, long n, int pad, int f)",
	"{",
	"\tconst __m512i ix = _mm512_loadu_si512((const void *)potc_q512_qix), fv = _mm512_set1_epi8((char)f);",
	"\tconst __m128i pv = _mm_set1_epi8((char)(pad ^ f));",
	"\tfor (long i = 0; i < n; i += 16) {",
	"\t\tconst long k = n - i < 16 ? n - i : 16;",
	"\t\tconst __mmask16 m = (__mmask16)(((uint32_t)1 << k) - 1);",
	"\t\t__m512i z = _mm512_castsi128_si512(r0 ? _mm_maskz_loadu_epi8(m, r0 + i) : pv);",
	"\t\tz = _mm512_inserti32x4(z, r1 ? _mm_maskz_loadu_epi8(m, r1 + i) : pv, 1);",
	"\t\tz = _mm512_inserti32x4(z, r2 ? _mm_maskz_loadu_epi8(m, r2 + i) : pv, 2);",
	"\t\tz = _mm512_inserti32x4(z, r3 ? _mm_maskz_loadu_epi8(m, r3 + i) : pv, 3);",
	"\t\tz = _mm512_permutexvar_epi8(ix, _mm512_xor_si512(z, fv));",
	"\t\t_mm512_mask_storeu_epi8(d + 4 * i, k == 16 ? ~(__mmask64)0 : ((__mmask64)1 << (4 * k)) - 1, z);",
	"\t}",
	"}",
	"/* n bytes from r to d, each xor f. */",
	"POTC_FN void potc_q512_copyx(unsigned char *d, const unsigned char *r, long n, int f)",
	"{",
	"\tconst __m512i fv = _mm512_set1_epi8((char)f);",
	"\tfor (long i = 0; i < n; i += 64) {",
	"\t\tconst long k = n - i < 64 ? n - i : 64;",
	"\t\tconst __mmask64 m = k == 64 ? ~(__mmask64)0 : ((__mmask64)1 << k) - 1;",
	"\t\t_mm512_mask_storeu_epi8(d + i, m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, r + i), fv));",
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

/* Can the u8 x s8 instruction take these weights and inputs? */
static int vnni_weights_ok(const QConv *v)
{
	for (int64_t i = 0; i < v->M * v->K; i++)
		if (v->w[i] < -128 || v->w[i] > 127)
			return 0;
	return !v->o.acc64 && (v->o.xt == DT_I8 || v->o.xt == DT_U8);
}

/* Output placement for a flat plane of output pitch owp (returns the
 * pitch to use). */
VOut qc_vx_out_mode(const Geom *G, int64_t owp, int L, int64_t *pitch)
{
	int64_t OW = G->out[2], OH = G->out[1];
	int64_t al = (owp + L - 1) / L * L;
	*pitch = owp;
	if (OH == 1 || OW == owp)
		return VO_DIRECT;
	if (OW * 4 >= al * 3) {
		*pitch = al;
		return VO_ROWS;
	}
	return VO_TBUF;
}

Vx qc_vx_geom(QConv *v, int depthwise)
{
	const Geom *G = &v->G;
	Vx x = {0};
	x.v = v;
	if (G->in[0] != 1 || G->out[0] != 1 || G->k[0] != 1 || !vnni_weights_ok(v))
		return x;
	int OH = (int)G->out[1], s = G->s[2], dx = G->d[2], dy = G->d[1];
	if (OH > 1 && G->s[1] != s)
		return x;
	int kh = G->k[1], kw = G->k[2];
	x.nkq = (kw + 3) / 4;
	int64_t cq = ((v->Cg + 3) / 4) * kh * kw, xqn = v->Cg * kh * x.nkq;
	x.xq = depthwise || s > 1 || xqn < cq;
	if (x.xq && s * 15 + 3 * dx > 63)
		return x;
	x.kind = VK_VNNI;
	x.L = 16;
	x.unit = x.xq ? s : 4;
	x.s = s;
	x.sr = OH > 1 ? s : 1;
	x.out = qc_vx_out_mode(G, (v->pin[2] + s - 1) / s, 16, &x.OWp);
	x.Wp = x.OWp * s;
	x.Q = (OH - 1) * x.OWp + G->out[2];
	x.QR = (x.Q + 15) / 16 * 16;
	/* taps: row ky lies in row phase ky * dy % sr, row ky * dy / sr of it */
	int64_t offmax = 0, rows = (v->pin[1] + x.sr - 1) / x.sr * x.Wp;
	for (int ky = 0; ky < kh; ky++)
		for (int kq = 0; kq < (x.xq ? x.nkq : kw); kq++) {
			int64_t o = (int64_t)ky * dy / x.sr * x.Wp + (x.xq ? 4LL * kq * dx : (int64_t)kq * dx);
			offmax = o > offmax ? o : offmax;
		}
	if (x.xq) {
		int64_t need = x.s * (x.QR - 16) + offmax + 64;
		x.PHB = align64((rows > need ? rows : need) + 1);
	} else {
		int64_t need = x.QR + offmax;
		x.PHB = align64(4 * (rows > need ? rows : need) + 64);
	}
	x.PLB = x.sr * x.PHB;
	x.nq = 0;
	for (int ky = 0; ky < kh; ky++)
		for (int kq = 0; kq < (x.xq ? x.nkq : kw); kq++) {
			if (x.nq >= VX_MAXTAP)
				return x;
			int64_t r = (int64_t)ky * dy;
			int64_t o = r / x.sr * x.Wp + (x.xq ? 4LL * kq * dx : (int64_t)kq * dx);
			x.off[x.nq++] = r % x.sr * x.PHB + (x.xq ? o : 4 * o);
		}
	x.ncq = x.xq ? v->Cg : (v->Cg + 3) / 4;
	x.KQ = x.ncq * x.nq;
	x.vstep = x.xq ? 16LL * s : 64;
	x.flip = v->o.xt == DT_I8 ? 0x80 : 0;
	x.padb = (v->o.zx + (x.flip ? 128 : 0)) & 0xff;
	int64_t nvec = x.QR / 16;
	x.nv = (int)(nvec < VX_NV ? nvec : VX_NV);
	x.np = depthwise ? 1 : (int)(v->Mg < VX_ACC / x.nv ? v->Mg : VX_ACC / x.nv);
	int64_t ysz = (int64_t)ir_dtype_size(v->o.yt);
	x.xbytes = (depthwise ? 1 : v->grp) * x.ncq * x.PLB;
	x.tbytes = x.out == VO_TBUF ? x.np * x.QR * ysz : 0;
	x.ok = 1;
	return x;
}

/* Where padded row R (an expression) of a plane starts: its row phase
 * and its row within the phase. */
static const char *vx_row(Ctx *c, const Vx *x, const char *R)
{
	if (x->sr == 1)
		return arena_printf(c->g->arena, "(%s) * %lld", R, (long long)(x->xq ? x->Wp : 4 * x->Wp));
	return arena_printf(c->g->arena, "(%s) %% %d * %lld + (%s) / %d * %lld", R, x->sr, (long long)x->PHB, R, x->sr,
	                    (long long)(x->xq ? x->Wp : 4 * x->Wp));
}

/* Weights as int32 quads [m][ncq][nq], bytes j = the 4 taps or channels. */
static void vx_put_weights(Ctx *c, const Vx *x, const char *name)
{
	const QConv *v = x->v;
	const Geom *G = &v->G;
	int kh = G->k[1], kw = G->k[2];
	int64_t n = v->M * x->KQ;
	int32_t *q = malloc(sizeof *q * (size_t)(n > 0 ? n : 1));
	for (int64_t m = 0; m < v->M; m++)
		for (int64_t cq = 0; cq < x->ncq; cq++)
			for (int64_t t = 0; t < x->nq; t++) {
				uint32_t u = 0;
				for (int j = 0; j < 4; j++) {
					int64_t ci, ky, kx;
					if (x->xq) {
						ci = cq;
						ky = t / x->nkq;
						kx = t % x->nkq * 4 + j;
					} else {
						ci = cq * 4 + j;
						ky = t / kw;
						kx = t % kw;
					}
					if (ci >= v->Cg || kx >= kw)
						continue;
					int32_t wv = v->w[m * v->K + (ci * kh + ky) * kw + kx];
					u |= (uint32_t)(uint8_t)(int8_t)wv << (8 * j);
				}
				q[(m * x->ncq + cq) * x->nq + t] = u > 0x7fffffffu ? -(int32_t)~u - 1 : (int32_t)u;
			}
	ec_line(&c->c, "/* weights as 4-byte quads [m %lld][%s %lld][tap %lld] */", (long long)v->M,
	        x->xq ? "ci" : "channel quad", (long long)x->ncq, (long long)x->nq);
	qc_put_i32(c, name, DT_I32, q, n);
	free(q);
}

/* The vpermb index giving lane p the bytes s * p + j * dx, j < 4. */
static void vx_put_index(Ctx *c, const Vx *x, const char *name)
{
	uint8_t ix[64];
	for (int p = 0; p < 16; p++)
		for (int j = 0; j < 4; j++)
			ix[4 * p + j] = (uint8_t)(x->s * p + j * x->v->G.d[2]);
	ec_array(c, name, DT_U8, 64, ix);
}

/* Image n's input into the scratch planes (pads were set before): the
 * (flipped) rows; channel quads interleaved for CQ. */
static void vx_fill(Ctx *c, const Vx *x, const char *nv)
{
	const QConv *v = x->v;
	const Geom *G = &v->G;
	const char *img = *nv ? ec_aff(c, 0, nv, v->C * G->insz, NULL) : "";
	if (x->xq) {
		ec_line(&c->c, "for (long ch = 0; ch < %lld; ch++)", (long long)v->C);
		ec_line(&c->c, "\tfor (long iy = 0; iy < %lld; iy++)", (long long)G->in[1]);
		ec_line(&c->c, "\t\tpotc_q512_copyx(xs + %s + %s, (const unsigned char *)%s + %s, %lld, %d);",
		        ec_aff(c, G->pb[2], "ch", x->PLB, NULL), vx_row(c, x, arena_printf(c->g->arena, "iy + %d", G->pb[1])),
		        v->x, ec_aff(c, 0, img, (int64_t)1, "ch", G->insz, "iy", G->in[2], NULL), (long long)G->in[2],
		        x->flip);
		return;
	}
	/* CQ: quad k of group g holds channels g * Cg + 4k + j */
	int64_t rowoff = G->pb[1] * x->Wp + G->pb[2];
	int flat = !v->padded && G->in[2] == x->Wp;
	int64_t n = flat ? G->in[1] * G->in[2] : G->in[2];
	ec_line(&c->c, "for (long k = 0; k < %lld; k++) {", (long long)(v->grp * x->ncq));
	ec_line(&c->c, "const long c0 = k / %lld * %lld + k %% %lld * 4, nc = %lld - k %% %lld * 4;", (long long)x->ncq,
	        (long long)v->Cg, (long long)x->ncq, (long long)v->Cg, (long long)x->ncq);
	ec_line(&c->c, "const unsigned char *const r = (const unsigned char *)%s + %s;", v->x,
	        ec_aff(c, 0, img, (int64_t)1, "c0", G->insz, NULL));
	ec_line(&c->c, "(void)nc;");
	if (!flat)
		ec_line(&c->c, "for (long iy = 0; iy < %lld; iy++)", (long long)G->in[1]);
	const char *r[4];
	for (int j = 0; j < 4; j++) {
		const char *e = arena_printf(c->g->arena, "r + %s", ec_aff(c, j * G->insz, flat ? "" : "iy", G->in[2], NULL));
		r[j] = j == 0 || v->Cg % 4 == 0 ? e : arena_printf(c->g->arena, "nc > %d ? %s : 0", j, e);
	}
	ec_line(&c->c, "%spotc_q512_quads(xs + %s, %s, %s, %s, %s, %lld, %d, %d);", flat ? "" : "\t",
	        ec_aff(c, rowoff * 4, "k", x->PLB, flat ? "" : "iy", x->Wp * 4, NULL), r[0], r[1], r[2], r[3],
	        (long long)n, x->padb, x->flip);
	ec_line(&c->c, "}");
}

/* r = the clamp (and zero point) of r, 16 lanes. */
void qc_out512(Ctx *c, const OutPlan *p, const char *r)
{
	if (p->maxv)
		ec_line(&c->c, "%s = _mm512_max_epi32(%s, _mm512_set1_epi32(%ld));", r, r, (long)p->lo);
	if (p->minv)
		ec_line(&c->c, "%s = _mm512_min_epi32(%s, _mm512_set1_epi32(%ld));", r, r, (long)p->hi);
	if (p->addz)
		ec_line(&c->c, "%s = _mm512_add_epi32(%s, _mm512_set1_epi32(%ld));", r, r, (long)p->zy);
}

/* Store r's 16 lanes narrowed at dst: all (valid 16), the first `valid`,
 * or those of mask expression mk (valid 0). */
void qc_store512(Ctx *c, const OutPlan *p, const char *r, const char *dst, int valid, const char *mk)
{
	const char *e = p->w16 ? "epi16" : "epi8";
	if (valid == 16) {
		if (p->w16)
			ec_line(&c->c, "_mm256_storeu_si256((__m256i *)(void *)(%s), _mm512_%s_epi16(%s));", dst, p->cvt, r);
		else
			ec_line(&c->c, "_mm_storeu_si128((__m128i *)(void *)(%s), _mm512_%s_epi8(%s));", dst, p->cvt, r);
		return;
	}
	if (valid)
		mk = arena_printf(c->g->arena, "0x%x", (1u << valid) - 1);
	ec_line(&c->c, "_mm512_mask_%s_storeu_%s((void *)(%s), (__mmask16)(%s), %s);", p->cvt, e, dst, mk, r);
}

/* Channel ch's rescale vectors (suffix sfx) for the form. */
static void params512(Ctx *c, const QOut *o, int form, const char *ch, const char *sfx)
{
	int id = c->id;
	if (form == RF_Q31)
		ec_line(&c->c, "const __m512i m%s = _mm512_set1_epi32(n%d_rm[%s]);", sfx, id, ch);
	if (form == RF_SHIFT || form == RF_Q31)
		ec_line(&c->c, "const __m512i n%s = _mm512_set1_epi32(n%d_rn[%s]), h%s = _mm512_set1_epi32(n%d_rh[%s]);", sfx,
		        id, ch, sfx, id, ch);
	if (form == RF_SHIFTH && o->r1)
		ec_line(&c->c, "const __m512i n%s = _mm512_set1_epi32(%d), t%s = _mm512_set1_epi32(%ld);", sfx, o->r[0].n, sfx,
		        (long)qc_thr_of(o->r[0]));
	else if (form == RF_SHIFTH)
		ec_line(&c->c, "const __m512i n%s = _mm512_set1_epi32(n%d_rn[%s]), t%s = _mm512_set1_epi32(n%d_rt[%s]);", sfx,
		        id, ch, sfx, id, ch);
}

/* The rescale of acc for channel ch as an expression. */
static const char *rescale512(Ctx *c, const QOut *o, int form, const char *acc, const char *ch, const char *sfx)
{
	Arena *a = c->g->arena;
	switch (form) {
	case RF_ONE:
		return arena_printf(a, "potc_q512_rescale(%s, %ld, %d)", acc, (long)o->r[0].m, o->r[0].n);
	case RF_SHIFT:
		return arena_printf(a, "potc_q512_shr(%s, n%s, h%s)", acc, sfx, sfx);
	case RF_Q31:
		return arena_printf(a, "potc_q512_shr(potc_q512_mulq31(%s, m%s), n%s, h%s)", acc, sfx, sfx, sfx);
	case RF_SHIFTH:
		return arena_printf(a, "potc_q512_shrh(%s, n%s, t%s)", acc, sfx, sfx);
	default:
		return arena_printf(a, "potc_q512_rescale(%s, n%d_rm[%s], n%d_rn[%s])", acc, c->id, ch, c->id, ch);
	}
}

/* One tile: np channels from m0 (of the group) times nv vectors. */
void qc_vnni_tile(Ctx *c, const Vx *x, int np, int nv, const VxVec *vec)
{
	const QConv *v = x->v;
	const QOut *o = &v->o;
	Str s = {0};
	ec_line(&c->c, "{");
	for (int p = 0; p < np; p++)
		for (int u = 0; u < nv; u++)
			if (u)
				str_printf(&s, ", a%d_%d = a%d_0", p, u, p);
			else
				str_printf(&s, "%sa%d_0 = _mm512_set1_epi32(bg[m0 + %d])", p ? ", " : "__m512i ", p, p);
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
		for (int u = 0; u < nv; u++) {
			const char *ld = arena_printf(c->g->arena, "_mm512_loadu_si512((const void *)(p%d + %s%lld))", u, ko,
			                              (long long)x->off[t]);
			if (x->xq)
				ec_line(&c->c, "const __m512i x%d = _mm512_permutexvar_epi8(ix, %s);", u, ld);
			else
				ec_line(&c->c, "const __m512i x%d = %s;", u, ld);
		}
		for (int p = 0; p < np; p++) {
			ec_line(&c->c, "const __m512i w%d = _mm512_set1_epi32(wq[%lld]);", p, (long long)(p * x->KQ + t));
			for (int u = 0; u < nv; u++)
				ec_line(&c->c, "a%d_%d = _mm512_dpbusd_epi32(a%d_%d, x%d, w%d);", p, u, p, u, u, p);
		}
		ec_line(&c->c, "}");
	}
	ec_line(&c->c, "}");
	OutPlan op = qc_out_plan(o);
	int form = qc_rform_vec(o);
	int64_t ysz = (int64_t)ir_dtype_size(o->yt);
	for (int p = 0; p < np; p++) {
		const char *ch = arena_printf(c->g->arena, "mg + m0 + %d", p);
		ec_line(&c->c, "{");
		params512(c, o, form, ch, "");
		for (int u = 0; u < nv; u++) {
			ec_line(&c->c, "{");
			ec_line(&c->c, "__m512i r = %s;", rescale512(c, o, form, arena_printf(c->g->arena, "a%d_%d", p, u), ch, ""));
			qc_out512(c, &op, "r");
			const char *dst = x->out == VO_TBUF ?
			    arena_printf(c->g->arena, "ts + (%lld + %s) * %lld", (long long)(p * x->QR), vec[u].q, (long long)ysz) :
			    arena_printf(c->g->arena, "yg + (m0 + %d) * %lld + %s", p, (long long)v->G.outsz, vec[u].yi);
			qc_store512(c, &op, "r", dst, x->out == VO_TBUF ? 16 : vec[u].valid, NULL);
			ec_line(&c->c, "}");
		}
		ec_line(&c->c, "}");
	}
	ec_line(&c->c, "}");
}

/* The node's arrays and the loads both variants share. */
static void vx_arrays(Ctx *c, const Vx *x, int depthwise)
{
	const QConv *v = x->v;
	const QOut *o = &v->o;
	qc_put_text(c, qc_q512_text);
	vx_put_weights(c, x, arena_printf(c->g->arena, "n%d_wq", c->id));
	qc_put_bias_h(c, o, arena_printf(c->g->arena, "n%d_bq", c->id), v->bias, v->sumw, o->zx + (x->flip ? 128 : 0), v->M,
	           qc_rform_vec(o) == RF_SHIFTH, 0);
	qc_put_rescale(c, o, qc_rform_vec(o));
	if (x->xq)
		vx_put_index(c, x, arena_printf(c->g->arena, "n%d_ix", c->id));
	(void)depthwise;
}

void qc_vnni_conv(Ctx *c, QConv *v, int64_t scratch)
{
	Vx x = qc_vx_geom(v, 0);
	const QOut *o = &v->o;
	vx_arrays(c, &x, 0);
	ec_begin(c, scratch);
	ec_line(&c->c, "unsigned char *const xs = (unsigned char *)s;");
	if (x.tbytes)
		ec_line(&c->c, "unsigned char *const ts = xs + %lld;", (long long)x.xbytes);
	if (x.xq)
		ec_line(&c->c, "const __m512i ix = _mm512_loadu_si512((const void *)n%d_ix);", c->id);
	/* the pads (and the interiors, rewritten per image) */
	if (v->padded || x.Wp != v->G.in[2])
		ec_line(&c->c, "memset(xs, %d, %lld);", x.padb, (long long)x.xbytes);
	const char *nv = v->N > 1 ? "n" : "";
	if (*nv)
		ec_line(&c->c, "for (long n = 0; n < %lld; n++) {", (long long)v->N);
	else
		ec_line(&c->c, "{");
	vx_fill(c, &x, nv);
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

/* Depthwise (one input channel per output channel): per channel the flat
 * loop of qc_vx_positions with kx quads (vpermb windows) of its taps.
 * Planes are filled in blocks of DW_CB channels, each phase over the
 * whole block (reading a plane right after writing it stalls on store
 * forwarding); the pads are written once per call, only the interiors
 * are rewritten. */

void qc_vnni_dw(Ctx *c, QConv *v, int64_t scratch)
{
	Vx x = qc_vx_geom(v, 1);
	const QOut *o = &v->o;
	const Geom *G = &v->G;
	vx_arrays(c, &x, 1);
	int64_t cb = v->M < DW_CB ? v->M : DW_CB;
	ec_begin(c, scratch);
	ec_line(&c->c, "unsigned char *const xs = (unsigned char *)s;");
	if (x.out == VO_TBUF)
		ec_line(&c->c, "unsigned char *const ts = xs + %lld;", (long long)(cb * x.PLB));
	ec_line(&c->c, "const __m512i ix = _mm512_loadu_si512((const void *)n%d_ix);", c->id);
	ec_line(&c->c, "memset(xs, %d, %lld);", x.padb, (long long)(cb * x.PLB));
	const char *nv = v->N > 1 ? "n" : "";
	if (*nv)
		ec_line(&c->c, "for (long n = 0; n < %lld; n++)", (long long)v->N);
	ec_line(&c->c, "for (long mb = 0; mb < %lld; mb += %lld) {", (long long)v->M, (long long)cb);
	ec_line(&c->c, "const long nb = %lld - mb < %lld ? %lld - mb : %lld;", (long long)v->M, (long long)cb,
	        (long long)v->M, (long long)cb);
	ec_line(&c->c, "for (long j = 0; j < nb; j++)");
	ec_line(&c->c, "\tfor (long iy = 0; iy < %lld; iy++)", (long long)G->in[1]);
	ec_line(&c->c, "\t\tpotc_q512_copyx(xs + %s + %s, (const unsigned char *)%s + %s, %lld, %d);",
	        ec_aff(c, G->pb[2], "j", x.PLB, NULL), vx_row(c, &x, arena_printf(c->g->arena, "iy + %d", G->pb[1])), v->x,
	        ec_aff(c, 0, nv, v->C * G->insz, "mb", G->insz, "j", G->insz, "iy", G->in[2], NULL), (long long)G->in[2],
	        x.flip);
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

int64_t qc_vnni_dw_scratch(QConv *v)
{
	Vx x = qc_vx_geom(v, 1);
	int64_t cb = v->M < DW_CB ? v->M : DW_CB;
	return cb * x.PLB + (x.out == VO_TBUF ? x.QR * (int64_t)ir_dtype_size(v->o.yt) : 0);
}
