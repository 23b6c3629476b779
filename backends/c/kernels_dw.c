/* Depthwise Conv emitters (one input channel per output channel, kernel of
 * at most 64 taps): flat planes, column masks or phase planes, chosen by
 * cv_conv_depthwise.  Shares targets, tiles and the epilogues with
 * kernels_conv.c through conv_impl.h. */
#include <stdlib.h>
#include <string.h>

#include "conv_impl.h"

/* Depthwise, flat.  Output rows are short (7 or 14 pixels: less than one
 * AVX-512 vector), so a channel is computed as one flat loop over
 * q = oy * Wp + ox of its padded plane, whose row pitch Wp the input and
 * the flat result t share: x index = s * q + tap offset.  Columns
 * ox >= OW of each flat row are junk, dropped when t is copied out with
 * the bias and activation.  Channels go in blocks of DW_CB, each phase
 * (copy in, compute, copy out) over the whole block: reading a plane right
 * after writing it would stall on store-to-load forwarding.  The planes
 * are zeroed once; only their interiors are rewritten, so pads stay 0. */
enum { DW_CB = 8 };

typedef struct {
	Conv *v;
	int64_t wp, s, q, cb, plane;
	const char *fn;
} DwFlat;

static DwFlat dw_flat_geom(Ctx *c, Conv *v)
{
	const Geom *G = &v->G;
	DwFlat f = {v, v->pin[2], G->s[2], G->out[1] * v->pin[2], v->M < DW_CB ? v->M : DW_CB, 0,
	            arena_printf(c->g->arena, "n%d_plane", c->id)};
	int64_t last = f.s * (f.q - 1) + (int64_t)(G->k[1] - 1) * G->d[1] * f.wp + (int64_t)(G->k[2] - 1) * G->d[2];
	f.plane = last + 1 > v->plane ? last + 1 : v->plane;
	f.plane = (f.plane + 15) / 16 * 16;
	return f;
}

static void dw_flat_fn(Ctx *c, const DwFlat *f)
{
	const Geom *G = &f->v->G;
	ec_line(&c->c, "static void %s(const float *restrict sp, const float *restrict w, float *restrict t)", f->fn);
	ec_line(&c->c, "{");
	ec_line(&c->c, "for (long q = 0; q < %lld; q++) {", (long long)f->q);
	ec_line(&c->c, "float a = 0.0f;");
	int64_t tap = 0;
	for (int ky = 0; ky < G->k[1]; ky++)
		for (int kx = 0; kx < G->k[2]; kx++, tap++)
			ec_line(&c->c, "a += sp[%s] * w[%lld];",
			        ec_aff(c, (int64_t)ky * G->d[1] * f->wp + (int64_t)kx * G->d[2], "q", f->s, NULL), (long long)tap);
	ec_line(&c->c, "t[q] = a;");
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_line(&c->c, "");
}

static void dw_flat_body(Ctx *c, const DwFlat *f)
{
	const Conv *v = f->v;
	const Geom *G = &v->G;
	int64_t wp = f->wp, q = f->q, cb = f->cb, plane = f->plane;
	ec_line(&c->c, "float *const t = s + %lld;", (long long)(cb * plane));
	ec_line(&c->c, "memset(s, 0, %lld);", (long long)(cb * plane * 4));
	const char *nv = v->N > 1 ? "n" : "";
	if (*nv)   /* braced: it holds two channel-block loops */
		ec_line(&c->c, "for (long n = 0; n < %lld; n++) {", (long long)v->N);
	int64_t full = v->M / cb * cb;
	for (int blk = 0; blk < 2; blk++) {
		int64_t from = blk ? full : 0, to = blk ? v->M : full, nb = blk ? v->M - full : cb;
		if (from >= to)
			continue;
		ec_line(&c->c, "for (long m0 = %lld; m0 < %lld; m0 += %lld) {", (long long)from, (long long)to,
		        (long long)nb);
		ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)nb);
		ec_line(&c->c, "\tfor (long iy = 0; iy < %lld; iy++)", (long long)G->in[1]);
		ec_line(&c->c, "\t\tmemcpy(s + %s, %s + %s, %lld);",
		        ec_aff(c, G->pb[1] * wp + G->pb[2], "j", plane, "iy", wp, NULL), v->x,
		        ec_aff(c, 0, nv, v->C * G->insz, "m0", G->insz, "j", G->insz, "iy", G->in[2], NULL),
		        (long long)(G->in[2] * 4));
		ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)nb);
		ec_line(&c->c, "\t%s(s + j * %lld, %s + (m0 + j) * %lld, t + j * %lld);", f->fn, (long long)plane, v->w,
		        (long long)G->ksz, (long long)q);
		ec_line(&c->c, "for (long j = 0; j < %lld; j++) {", (long long)nb);
		ec_line(&c->c, "float *const yc = y0 + %s;",
		        ec_aff(c, 0, nv, v->M * G->outsz, "m0", G->outsz, "j", G->outsz, NULL));
		if (v->b)
			ec_line(&c->c, "const float bj = %s[m0 + j];", v->b);
		ec_line(&c->c, "for (long oy = 0; oy < %lld; oy++)", (long long)G->out[1]);
		ec_line(&c->c, "\tfor (long ox = 0; ox < %lld; ox++)", (long long)G->out[2]);
		c->c.depth += 2;
		ec_store(c, arena_printf(c->g->arena, "yc[oy * %lld + ox]", (long long)G->out[2]),
		         arena_printf(c->g->arena, "t[j * %lld + oy * %lld + ox]%s", (long long)q, (long long)wp,
		                      v->b ? " + bj" : ""));
		c->c.depth -= 2;
		ec_line(&c->c, "}");
		ec_line(&c->c, "}");
	}
	if (*nv)
		ec_line(&c->c, "}");
}

/* Depthwise in general (3-D, or unequal strides): per channel a loop
 * along each output row with the taps unrolled, on a padded copy. */
static void dw_rows(Ctx *c, Conv *v)
{
	const Geom *G = &v->G;
	ec_begin(c, v->padded ? v->plane * 4 : 0);
	const char *nv = v->N > 1 ? "n" : "";
	if (*nv)
		ec_line(&c->c, "for (long n = 0; n < %lld; n++)", (long long)v->N);
	ec_line(&c->c, "%sfor (long m = 0; m < %lld; m++) {", *nv ? "\t" : "", (long long)v->M);
	if (v->padded)
		cv_conv_pad_copy(c, v, nv, 1, "m");
	ec_line(&c->c, "const float *const xc = %s;", v->padded ? "s" :
	        arena_printf(c->g->arena, "%s + %s", v->x, ec_aff(c, 0, nv, v->C * G->insz, "m", G->insz, NULL)));
	ec_line(&c->c, "const float *const w = %s + m * %lld;", v->w, (long long)G->ksz);
	ec_line(&c->c, "float *const yc = y0 + %s;", ec_aff(c, 0, nv, v->M * G->outsz, "m", G->outsz, NULL));
	if (v->b)
		ec_line(&c->c, "const float bj = %s[m];", v->b);
	ec_line(&c->c, "for (long oz = 0; oz < %lld; oz++)", (long long)G->out[0]);
	ec_line(&c->c, "for (long oy = 0; oy < %lld; oy++) {", (long long)G->out[1]);
	ec_line(&c->c, "const float *const xr = xc + %s;",
	        ec_aff(c, 0, "oz", G->s[0] * v->pst[0], "oy", G->s[1] * v->pst[1], NULL));
	ec_line(&c->c, "float *const yr = yc + %s;", ec_aff(c, 0, "oz", G->ost[0], "oy", G->ost[1], NULL));
	ec_line(&c->c, "for (long ox = 0; ox < %lld; ox++) {", (long long)G->out[2]);
	ec_line(&c->c, "float a = 0.0f;");
	int64_t t = 0;
	for (int kz = 0; kz < G->k[0]; kz++)
		for (int ky = 0; ky < G->k[1]; ky++)
			for (int kx = 0; kx < G->k[2]; kx++, t++)
				ec_line(&c->c, "a += xr[%s] * w[%lld];",
				        ec_aff(c, (int64_t)kz * G->d[0] * v->pst[0] + (int64_t)ky * G->d[1] * v->pst[1] +
				               (int64_t)kx * G->d[2], "ox", (int64_t)G->s[2], NULL), (long long)t);
	ec_store(c, "yr[ox]", v->b ? "a + bj" : "a");
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_end(c);
}

/* Depthwise with stride 1 and "same" width (OW == W, e.g. 3x3 pad 1): the
 * flat loop runs over q = oy * W + ox of the output itself, so results go
 * straight to y.  Each channel's plane in scratch is the input with pad
 * rows above and below (one memcpy in); a tap whose column falls outside
 * the row reads 0 where a table marks it invalid.  That adds +-0 to the
 * sum, which leaves it unchanged: a sum that starts at +0 can never be -0
 * in round-to-nearest, so this is exactly eval's skipping of the tap (for
 * finite weights).  Selecting the accumulator instead would also cover
 * infinite weights, but neither clang nor gcc without AVX-512 vectorises
 * that.  The scalar version reads byte tables (gcc vectorises it with
 * AVX2's masked loads, not at all with SSE2); the vector version computes
 * each lane's column as it goes and ANDs the loaded vector with a compare
 * mask (+0.0f where the column is outside), with DW_NU vectors in flight. */
typedef struct {
	Conv *v;
	int64_t W, q, plane, d0, cb;
	const char *fn;
	int64_t wbytes;   /* weight bytes before the first mask tables, or -1 */
	int shifts;       /* some tap reads another column (needs masks) */
	int64_t S, P, R, PL; /* dw_phase's planes when S > 0: stride, pitch, rows, floats a phase */
} DwMask;

/* Tap (ky, kx)'s offset from q, and its column shift. */
static int64_t dw_mask_off(const Geom *G, int64_t W, int ky, int kx, int64_t *sh)
{
	*sh = (int64_t)kx * G->d[2] - G->pb[2];
	return ((int64_t)ky * G->d[1] - G->pb[1]) * W + *sh;
}

/* Tap (ky, kx)'s offset from q in the plane function, and its column
 * shift (0 in phase mode: no masks). */
static int64_t dw_tap_off(const DwMask *m, int ky, int kx, int64_t *sh)
{
	const Geom *G = &m->v->G;
	if (!m->S)
		return dw_mask_off(G, m->W, ky, kx, sh);
	int64_t y = (int64_t)ky * G->d[1], x = (int64_t)kx * G->d[2];
	*sh = 0;
	return (y % m->S * m->S + x % m->S) * m->PL + y / m->S * m->P + x / m->S;
}

/* The scalar plane function, with a byte table per shifted column telling
 * where the tap is inside the row. */
static void dw_mask_scalar(Ctx *c, DwMask *m)
{
	const Geom *G = &m->v->G;
	const char *mask[64] = {NULL};
	int64_t wb = c->wbytes;
	for (int kx = 0; kx < G->k[2]; kx++) {
		int64_t sh;
		dw_mask_off(G, m->W, 0, kx, &sh);
		if (sh == 0)
			continue;
		unsigned char *t = malloc((size_t)m->q);
		for (int64_t i = 0; i < m->q; i++)
			t[i] = i % m->W + sh >= 0 && i % m->W + sh < m->W;
		mask[kx] = arena_printf(c->g->arena, "n%d_m%d", c->id, kx);
		ec_array(c, mask[kx], DT_U8, m->q, t);
		free(t);
	}
	if (m->wbytes >= 0)
		c->wbytes = wb;   /* the same tables again, under another #if */
	else
		m->wbytes = wb;
	ec_line(&c->c, "static void %s(const float *restrict sp, const float *restrict w, float *restrict yc%s)", m->fn,
	        m->v->b ? ", float bj" : "");
	ec_line(&c->c, "{");
	ec_line(&c->c, "for (long q = 0; q < %lld; q++) {", (long long)m->q);
	ec_line(&c->c, "float a = 0.0f;");
	int64_t tap = 0;
	for (int ky = 0; ky < G->k[1]; ky++)
		for (int kx = 0; kx < G->k[2]; kx++, tap++) {
			int64_t sh;
			const char *ix = ec_aff(c, dw_mask_off(G, m->W, ky, kx, &sh), "q", (int64_t)1, NULL);
			if (mask[kx])
				ec_line(&c->c, "a += (%s[q] ? sp[%s] : 0.0f) * w[%lld];", mask[kx], ix, (long long)tap);
			else
				ec_line(&c->c, "a += sp[%s] * w[%lld];", ix, (long long)tap);
		}
	ec_store(c, "yc[q]", m->v->b ? "a + bj" : "a");
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_line(&c->c, "");
}

/* {(q0 + 0) % W, (q0 + 1) % W, ...}: the columns of a vector at q0. */
static const char *dw_cols(Ctx *c, int lanes, int64_t q0, int64_t W)
{
	Str s = {0};
	for (int j = 0; j < lanes; j++)
		str_printf(&s, "%s%lld", j ? ", " : "", (long long)((q0 + j) % W));
	const char *r = arena_printf(c->g->arena, "{%s}", s.s);
	str_free(&s);
	return r;
}

/* nu vectors of outputs from q, interleaved so that their FMA chains
 * overlap: taps masked by column (AND with a compare mask gives the +0.0f
 * the scalar select does), bias, activation, store.  Vector u's columns
 * are c<u>, from col. */
static void dw_mask_vec_step(Ctx *c, DwMask *m, int lanes, int nu)
{
	const Geom *G = &m->v->G;
	for (int u = 0; u < nu; u++) {
		if (u == 0 && m->shifts)
			ec_line(&c->c, "const vi c0 = col;");
		if (u && m->shifts) {
			ec_line(&c->c, "vi c%d = c%d + %lld;", u, u - 1, (long long)(lanes % m->W));
			ec_line(&c->c, "c%d -= (c%d >= %lld) & %lld;", u, u, (long long)m->W, (long long)m->W);
		}
		ec_line(&c->c, "vf a%d = {0};", u);
	}
	int64_t tap = 0;
	for (int ky = 0; ky < G->k[1]; ky++)
		for (int kx = 0; kx < G->k[2]; kx++, tap++) {
			int64_t sh, off = dw_tap_off(m, ky, kx, &sh);
			ec_line(&c->c, "{");
			for (int u = 0; u < nu; u++) {
				ec_line(&c->c, "vf x%d;", u);
				ec_line(&c->c, "memcpy(&x%d, sp + %s, sizeof x%d);", u,
				        ec_aff(c, off + (int64_t)u * lanes, "q", (int64_t)1, NULL), u);
				if (sh < 0)
					ec_line(&c->c, "x%d = (vf)((vi)x%d & (c%d >= %lld));", u, u, u, (long long)-sh);
				else if (sh > 0)
					ec_line(&c->c, "x%d = (vf)((vi)x%d & (c%d < %lld));", u, u, u, (long long)(m->W - sh));
				ec_line(&c->c, "a%d += x%d * w%lld;", u, u, (long long)tap);
			}
			ec_line(&c->c, "}");
		}
	for (int u = 0; u < nu; u++)
		cv_vec_finish(c, &(Tile){1, lanes, lanes},
		           arena_printf(c->g->arena, m->v->b ? "a%d + bj" : "a%d", u),
		           arena_printf(c->g->arena, "yc + q + %d", u * lanes));
}

/* Advance col by n outputs. */
static void dw_col_step(Ctx *c, const DwMask *m, int64_t n)
{
	int64_t W = m->W;
	if (!m->shifts || n % W == 0)
		return;
	ec_line(&c->c, "col += %lld;", (long long)(n % W));
	ec_line(&c->c, "col -= (col >= %lld) & %lld;", (long long)W, (long long)W);
}

enum { DW_NU = 4 };   /* vectors in flight: a tap chain is 9 dependent FMAs */

/* The vector plane function: blocks of DW_NU vectors, single vectors,
 * then one shifted back to end at q (recomputing a few outputs
 * identically). */
static void dw_mask_vec(Ctx *c, DwMask *m, int lanes)
{
	const Geom *G = &m->v->G;
	int64_t nvec = m->q / lanes, blk = nvec / DW_NU * DW_NU * lanes, full = nvec * lanes;
	ec_line(&c->c, "static void %s(const float *restrict sp, const float *restrict w, float *restrict yc%s)", m->fn,
	        m->v->b ? ", float bj" : "");
	ec_line(&c->c, "{");
	ec_line(&c->c, "typedef float vf __attribute__((vector_size(%d)));", lanes * 4);
	if (m->shifts || c->n->act.kind != ACT_NONE)
		ec_line(&c->c, "typedef int vi __attribute__((vector_size(%d)));", lanes * 4);
	Str s = {0};
	for (int64_t t = 0; t < (int64_t)G->k[1] * G->k[2]; t++)
		str_printf(&s, "%sw%lld = w[%lld]", t ? ", " : "const float ", (long long)t, (long long)t);
	ec_line(&c->c, "%s;", s.s);
	str_free(&s);
	if (m->shifts)
		ec_line(&c->c, "vi col = %s;", dw_cols(c, lanes, 0, m->W));
	if (blk) {
		ec_line(&c->c, "for (long q = 0; q < %lld; q += %d) {", (long long)blk, DW_NU * lanes);
		dw_mask_vec_step(c, m, lanes, DW_NU);
		dw_col_step(c, m, (int64_t)DW_NU * lanes);
		ec_line(&c->c, "}");
	}
	if (blk < full) {
		ec_line(&c->c, "for (long q = %lld; q < %lld; q += %d) {", (long long)blk, (long long)full, lanes);
		dw_mask_vec_step(c, m, lanes, 1);
		dw_col_step(c, m, lanes);
		ec_line(&c->c, "}");
	}
	if (full < m->q) {
		ec_line(&c->c, "{");
		ec_line(&c->c, "const long q = %lld;", (long long)(m->q - lanes));
		if (m->shifts)
			ec_line(&c->c, "col = (vi)%s;", dw_cols(c, lanes, m->q - lanes, m->W));
		dw_mask_vec_step(c, m, lanes, 1);
		ec_line(&c->c, "}");
	}
	ec_line(&c->c, "}");
	ec_line(&c->c, "");
}

static void dw_mask_pre(Ctx *c, void *arg, const Target *t)
{
	DwMask *m = arg;
	int lanes = t->lanes && m->q >= t->lanes && cv_vec_act_ok(c) ? t->lanes : 0;
	if (lanes)
		dw_mask_vec(c, m, lanes);
	else
		dw_mask_scalar(c, m);
}

static void dw_mask_body(Ctx *c, void *arg, const Target *t)
{
	DwMask *m = arg;
	Conv *v = m->v;
	const Geom *G = &v->G;
	int64_t hw = G->in[1] * m->W, cb = m->cb, plane = m->plane;
	(void)t;
	ec_line(&c->c, "memset(s, 0, %lld);", (long long)(cb * plane * 4));
	const char *nv = v->N > 1 ? "n" : "";
	if (*nv)   /* braced: it holds two channel-block loops */
		ec_line(&c->c, "for (long n = 0; n < %lld; n++) {", (long long)v->N);
	int64_t full = v->M / cb * cb;
	for (int blk = 0; blk < 2; blk++) {
		int64_t from = blk ? full : 0, to = blk ? v->M : full, nb = blk ? v->M - full : cb;
		if (from >= to)
			continue;
		ec_line(&c->c, "for (long m0 = %lld; m0 < %lld; m0 += %lld) {", (long long)from, (long long)to,
		        (long long)nb);
		ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)nb);
		ec_line(&c->c, "\tmemcpy(s + j * %lld + %lld, %s + %s, %lld);", (long long)plane, (long long)m->d0, v->x,
		        ec_aff(c, 0, nv, v->C * hw, "m0", hw, "j", hw, NULL), (long long)(hw * 4));
		ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)nb);
		ec_line(&c->c, "\t%s(s + j * %lld + %lld, %s + (m0 + j) * %lld, y0 + %s%s%s%s);", m->fn, (long long)plane,
		        (long long)m->d0, v->w, (long long)G->ksz,
		        ec_aff(c, 0, nv, v->M * G->outsz, "m0", G->outsz, "j", G->outsz, NULL), v->b ? ", " : "",
		        v->b ? v->b : "", v->b ? "[m0 + j]" : "");
		ec_line(&c->c, "}");
	}
	if (*nv)
		ec_line(&c->c, "}");
}

static DwMask dw_mask_geom(Ctx *c, Conv *v)
{
	const Geom *G = &v->G;
	DwMask m = {v, G->in[2], G->out[1] * G->in[2], 0, G->pb[1] * G->in[2] + G->pb[2], v->M < DW_CB ? v->M : DW_CB,
	            arena_printf(c->g->arena, "n%d_plane", c->id), -1, 0, 0, 0, 0, 0};
	for (int kx = 0; kx < G->k[2]; kx++)
		m.shifts |= (int64_t)kx * G->d[2] - G->pb[2] != 0;
	int64_t hw = G->in[1] * m.W;
	int64_t maxr = (m.q - 1) + ((int64_t)(G->k[1] - 1) * G->d[1] - G->pb[1]) * m.W +
	               (int64_t)(G->k[2] - 1) * G->d[2] - G->pb[2];
	m.plane = (m.d0 + (maxr > hw ? maxr : hw) + 1 + 15) / 16 * 16;
	return m;
}

/* Depthwise with stride s (both dims), vectors.  On the way in, the
 * padded plane is split into s x s phase planes by the remainders of row
 * and column mod s, so that every tap reads its phase plane at unit
 * stride: y(oy, ox) = sum over taps of
 *     P[ky d % s][kx d % s][oy + ky d / s][ox + kx d / s].
 * The plane function is then dw_mask's flat loop over q = oy * P + ox with
 * the phase pitch P = ceil(Wp / s): no masks, P - OW junk columns a row
 * (dropped when the rows are copied out), and no strided loads. */
typedef struct {
	DwFlat f;      /* the scalar fallback's geometry */
	DwMask m;      /* the vector plane function's */
	int64_t blk;   /* floats of phase planes per channel */
	int64_t qa;    /* floats of flat result per channel */
} DwPhase;

static int dw_phase_lanes(Ctx *c, const DwPhase *d, const Target *t)
{
	return t->lanes && d->m.q >= t->lanes && cv_vec_act_ok(c) ? t->lanes : 0;
}

static void dw_phase_pre(Ctx *c, void *arg, const Target *t)
{
	DwPhase *d = arg;
	int lanes = dw_phase_lanes(c, d, t);
	if (lanes)
		dw_mask_vec(c, &d->m, lanes);
	else
		dw_flat_fn(c, &d->f);
}

/* Input row iy of channel j into its phase planes: for each column phase
 * rx, every s-th input column from the first that lands in it. */
static void dw_phase_copy_row(Ctx *c, const DwPhase *d)
{
	const Conv *v = d->m.v;
	const Geom *G = &v->G;
	int64_t S = d->m.S;
	ec_line(&c->c, "const long py = iy + %d;", G->pb[1]);
	ec_line(&c->c, "float *const dr = s + j * %lld + py %% %lld * %lld + py / %lld * %lld;", (long long)d->blk,
	        (long long)S, (long long)(S * d->m.PL), (long long)S, (long long)d->m.P);
	for (int64_t rx = 0; rx < S; rx++) {
		int64_t ix0 = ((rx - G->pb[2]) % S + S) % S, n = ix0 < G->in[2] ? (G->in[2] - 1 - ix0) / S + 1 : 0;
		if (!n)
			continue;
		ec_line(&c->c, "for (long k = 0; k < %lld; k++)", (long long)n);
		ec_line(&c->c, "\tdr[%s] = xr[%s];", ec_aff(c, rx * d->m.PL + (ix0 + G->pb[2]) / S, "k", (int64_t)1, NULL),
		        ec_aff(c, ix0, "k", S, NULL));
	}
}

static void dw_phase_body(Ctx *c, void *arg, const Target *t)
{
	DwPhase *d = arg;
	if (!dw_phase_lanes(c, d, t)) {
		dw_flat_body(c, &d->f);
		return;
	}
	const Conv *v = d->m.v;
	const Geom *G = &v->G;
	int64_t cb = d->m.cb;
	ec_line(&c->c, "float *const t = s + %lld;", (long long)(cb * d->blk));
	ec_line(&c->c, "memset(s, 0, %lld);", (long long)(cb * d->blk * 4));
	const char *nv = v->N > 1 ? "n" : "";
	if (*nv)
		ec_line(&c->c, "for (long n = 0; n < %lld; n++) {", (long long)v->N);
	int64_t full = v->M / cb * cb;
	for (int blk = 0; blk < 2; blk++) {
		int64_t from = blk ? full : 0, to = blk ? v->M : full, nb = blk ? v->M - full : cb;
		if (from >= to)
			continue;
		ec_line(&c->c, "for (long m0 = %lld; m0 < %lld; m0 += %lld) {", (long long)from, (long long)to,
		        (long long)nb);
		ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)nb);
		ec_line(&c->c, "for (long iy = 0; iy < %lld; iy++) {", (long long)G->in[1]);
		ec_line(&c->c, "const float *const xr = %s + %s;", v->x,
		        ec_aff(c, 0, nv, v->C * G->insz, "m0", G->insz, "j", G->insz, "iy", G->in[2], NULL));
		dw_phase_copy_row(c, d);
		ec_line(&c->c, "}");
		ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)nb);
		ec_line(&c->c, "\t%s(s + j * %lld, %s + (m0 + j) * %lld, t + j * %lld%s%s%s);", d->m.fn, (long long)d->blk,
		        v->w, (long long)G->ksz, (long long)d->qa, v->b ? ", " : "", v->b ? v->b : "",
		        v->b ? "[m0 + j]" : "");
		ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)nb);
		ec_line(&c->c, "\tfor (long oy = 0; oy < %lld; oy++)", (long long)G->out[1]);
		ec_line(&c->c, "\t\tmemcpy(y0 + %s, t + j * %lld + oy * %lld, %lld);",
		        ec_aff(c, 0, nv, v->M * G->outsz, "m0", G->outsz, "j", G->outsz, "oy", G->out[2], NULL),
		        (long long)d->qa, (long long)d->m.P, (long long)(G->out[2] * 4));
		ec_line(&c->c, "}");
	}
	if (*nv)
		ec_line(&c->c, "}");
}

static DwPhase dw_phase_geom(Ctx *c, Conv *v)
{
	const Geom *G = &v->G;
	DwPhase d = {dw_flat_geom(c, v), {0}, 0, 0};
	int64_t S = G->s[2], xmax = (int64_t)(G->k[2] - 1) * G->d[2] / S;
	d.m.v = v;
	d.m.fn = d.f.fn;
	d.m.cb = d.f.cb;
	d.m.S = S;
	d.m.P = (v->pin[2] + S - 1) / S;
	d.m.R = (v->pin[1] + S - 1) / S;
	d.m.PL = (d.m.R * d.m.P + xmax + 15) / 16 * 16;
	d.m.q = G->out[1] * d.m.P;
	d.m.W = d.m.P;
	d.blk = S * S * d.m.PL;
	d.qa = (d.m.q + 15) / 16 * 16;
	return d;
}

/* Scratch bytes of either variant. */
static int64_t dw_phase_scratch(const DwPhase *d)
{
	int64_t vec = d->m.cb * (d->blk + d->qa), sc = d->f.cb * (d->f.plane + d->f.q);
	return (vec > sc ? vec : sc) * 4;
}

static void dw_phase(Ctx *c, Conv *v)
{
	DwPhase d = dw_phase_geom(c, v);
	cv_per_target_pre(c, dw_phase_scratch(&d), dw_phase_pre, dw_phase_body, &d);
}

/* Same-width stride-1 depthwise: column masks or phase planes, as the
 * target prefers. */
typedef struct {
	DwMask m;
	DwPhase p;
} DwSame;

static void dw_same_pre(Ctx *c, void *arg, const Target *t)
{
	DwSame *d = arg;
	if (t->dwmask)
		dw_mask_pre(c, &d->m, t);
	else
		dw_phase_pre(c, &d->p, t);
}

static void dw_same_body(Ctx *c, void *arg, const Target *t)
{
	DwSame *d = arg;
	if (t->dwmask)
		dw_mask_body(c, &d->m, t);
	else
		dw_phase_body(c, &d->p, t);
}

static void dw_same(Ctx *c, Conv *v)
{
	DwSame d = {dw_mask_geom(c, v), dw_phase_geom(c, v)};
	int64_t mask = d.m.cb * d.m.plane * 4, phase = dw_phase_scratch(&d.p);
	/* the plane loop in a function of its own: restrict on its parameters
	 * is what keeps gcc from guarding the vector loop with an alias check */
	cv_per_target_pre(c, mask > phase ? mask : phase, dw_same_pre, dw_same_body, &d);
}

void cv_conv_depthwise(Ctx *c, Conv *v)
{
	const Geom *G = &v->G;
	if (G->out[0] == 1 && G->k[0] == 1 && G->in[0] == 1 && G->s[1] == 1 && G->s[2] == 1 &&
	    G->out[2] == G->in[2] && G->k[2] <= 64)
		dw_same(c, v);
	else if (G->out[0] == 1 && G->k[0] == 1 && G->in[0] == 1 && G->s[1] == G->s[2])
		dw_phase(c, v);
	else
		dw_rows(c, v);
}

