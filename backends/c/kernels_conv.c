/* Kernel emitters for the dot-product ops: Conv, Gemm, MatMul.
 *
 * Each is a register tile: np broadcast values times a vector of vb
 * contiguous lanes, accumulated over k and stored once with the bias and
 * activation:
 *
 *     for k:  v_p = x(p, k);  for j < vb: a_p[j] += v_p * vec(k)[j];
 *
 * The j loop is what gcc and clang vectorise; the np x vb accumulators
 * (8 x 16 floats) stay in registers.  Two orientations:
 *   - channels in the vector (Gemm/MatMul columns, Conv output channels
 *     with weights re-laid out to [group][k][m]): any stride, good when
 *     the dot products are long; a Conv then stores its tile transposed;
 *   - pixels in the vector, weights broadcast: for long contiguous pixel
 *     runs (pointwise convs, wide stride-1 rows), contiguous stores.
 * A padded Conv first copies its input into zero-padded scratch, so no tap
 * needs a bounds check.  Depthwise Conv (one input channel per output
 * channel) gets flat loops over whole planes instead (rows are short).
 *
 * Loop shapes matter more than they should: gcc fully unrolls loops of at
 * most 16 iterations with few statements before vectorising, then fails to
 * vectorise the copies; so vector loops here carry several statements, or
 * 64 lanes, or full-length chunks (see chunks()).
 *
 * Every output is a sum from 0 in eval_nn.c's order (input channel, then
 * kernel depth, row, column; or k ascending), then the bias: bit-identical
 * to the reference unless the C compiler contracts into FMAs. */
#include <stdlib.h>
#include <string.h>

#include "emit_impl.h"

enum {
	TILE_NP = 8,       /* broadcast rows per tile */
	TILE_VB = 16,      /* vector lanes per tile */
	TILE_VB_WIDE = 64  /* lanes when there are few rows: gcc fully unrolls short
	                      loops of few statements and then fails to vectorise */
};

/* ---- tiles ---- */

/* float a0[vb], ..., a{np-1}[vb], all zero. */
static void tile_open(Ctx *c, int np, int64_t vb)
{
	Str s = {0}, z = {0};
	for (int p = 0; p < np; p++) {
		str_printf(&s, "%sa%d[%lld]", p ? ", " : "float ", p, (long long)vb);
		str_printf(&z, "a%d[j] = ", p);
	}
	ec_line(&c->c, "%s;", s.s);
	ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)vb);
	ec_line(&c->c, "\t%s0.0f;", z.s);
	str_free(&s);
	str_free(&z);
}

/* a_p[j] += v_p * vec: the vectorised loop; vec reads element j, e.g.
 * "w[j]" or "xk[j * 2]". */
static void tile_fma(Ctx *c, int np, int64_t vb, const char *vec)
{
	ec_line(&c->c, "for (long j = 0; j < %lld; j++) {", (long long)vb);
	for (int p = 0; p < np; p++)
		ec_line(&c->c, "a%d[j] += v%d * %s;", p, p, vec);
	ec_line(&c->c, "}");
}

/* "w[j]" or "w[j * 64]". */
static const char *vec_ref(Ctx *c, const char *base, int64_t st)
{
	if (st == 1)
		return arena_printf(c->g->arena, "%s[j]", base);
	return arena_printf(c->g->arena, "%s[j * %lld]", base, (long long)st);
}

/* const float v0 = base[0], v1 = base[st], ...; */
static void tile_loads(Ctx *c, int np, const char *base, int64_t st)
{
	Str s = {0};
	for (int p = 0; p < np; p++)
		str_printf(&s, "%sv%d = %s[%lld]", p ? ", " : "const float ", p, base, (long long)(p * st));
	ec_line(&c->c, "%s;", s.s);
	str_free(&s);
}

/* Tile sizes for nrows broadcast rows and nv vector outputs. */
static void tile_shape(int64_t nrows, int64_t nv, int *np, int64_t *vb)
{
	*np = nrows < TILE_NP ? (int)nrows : TILE_NP;
	*vb = *np >= 4 ? TILE_VB : TILE_VB_WIDE;
	if (*vb > nv)
		*vb = nv;
}

/* var over [0, total) in chunks of step, each printed by fn(size).  With
 * overlap, a partial last chunk of a vector dim is shifted back to end at
 * total (when total >= step): its first outputs are computed twice,
 * identically, but the vector loop keeps its full literal length instead
 * of a short one that compilers turn into masked or scalar code.  Broadcast
 * dims keep a short last chunk (it just has fewer rows). */
typedef void (*ChunkFn)(Ctx *, const void *arg, int64_t size);

static void chunks(Ctx *c, const char *var, int64_t total, int64_t step, int overlap, ChunkFn fn,
                   const void *arg)
{
	int64_t full = total / step * step;
	if (full) {
		ec_line(&c->c, "for (long %s = 0; %s < %lld; %s += %lld) {", var, var, (long long)full, var,
		        (long long)step);
		fn(c, arg, step);
		ec_line(&c->c, "}");
	}
	if (full < total) {
		ec_line(&c->c, "{");
		int back = overlap && total >= step;
		ec_line(&c->c, "const long %s = %lld;", var, (long long)(back ? total - step : full));
		fn(c, arg, back ? step : total - full);
		ec_line(&c->c, "}");
	}
}

/* "base + off", or just base when off is "0". */
static const char *plus(Ctx *c, const char *base, const char *off)
{
	if (strcmp(off, "0") == 0)
		return base;
	return arena_printf(c->g->arena, "%s + %s", base, off);
}

/* ---- Conv ---- */

typedef struct {
	const char *x, *w, *b;   /* input, weights ([g][k][m] or as given), bias */
	int64_t N, C, M, Cg, Mg, grp;
	int64_t K;               /* Cg * kernel size: the dot-product length */
	int wconst;              /* w is the re-laid-out constant, else [M][K] */
	int padded;              /* the input is copied into zero-padded scratch */
	int64_t pin[3], pst[3];  /* dims and strides of the (padded) input plane */
	int64_t plane;           /* elements of one (padded) input channel */
	Geom G;
} Conv;

static void conv_pad_dims(Conv *v)
{
	const Geom *G = &v->G;
	v->padded = 0;
	for (int i = 0; i < 3; i++) {
		v->pin[i] = G->in[i] + G->pb[i] + G->pe[i];
		v->padded |= G->pb[i] || G->pe[i];
	}
	v->pst[2] = 1;
	v->pst[1] = v->pin[2];
	v->pst[0] = v->pin[1] * v->pin[2];
	v->plane = v->pst[0] * v->pin[0];
}

/* Zero the scratch and copy the input rows of image n (channels [c0,
 * c0 + nc)) into it; s then holds nc padded planes. */
static void conv_pad_copy(Ctx *c, const Conv *v, const char *nv, int64_t nc, const char *c0)
{
	const Geom *G = &v->G;
	ec_line(&c->c, "memset(s, 0, %lld);", (long long)(nc * v->plane * 4));
	const char *iz = G->in[0] > 1 ? "iz" : "";
	ec_line(&c->c, "for (long ch = 0; ch < %lld; ch++)", (long long)nc);
	if (*iz)
		ec_line(&c->c, "for (long iz = 0; iz < %lld; iz++)", (long long)G->in[0]);
	ec_line(&c->c, "\tfor (long iy = 0; iy < %lld; iy++)", (long long)G->in[1]);
	ec_line(&c->c, "\t\tmemcpy(s + %s, %s, %lld);",
	        ec_aff(c, G->pb[0] * v->pst[0] + G->pb[1] * v->pst[1] + G->pb[2], "ch", v->plane, iz,
	               v->pst[0], "iy", v->pst[1], NULL),
	        plus(c, v->x, ec_aff(c, 0, nv, v->C * G->insz, c0, G->insz, "ch", G->insz, iz, G->ist[0], "iy",
	                             G->ist[1], NULL)),
	        (long long)(G->in[2] * 4));
}

/* The k loops of a tile (input channel and kernel taps) and the pointers
 * w (weights of k) and xk (input of tap k for the tile's first pixel). */
static int conv_kloops(Ctx *c, const Conv *v, const char *mb)
{
	const Geom *G = &v->G;
	static const char *const kv[3] = {"kz", "ky", "kx"};
	int open = 0;
	if (v->Cg > 1) {
		ec_line(&c->c, "for (long ci = 0; ci < %lld; ci++)", (long long)v->Cg);
		c->c.depth++;
		open++;
	}
	const char *k[3];
	for (int i = 0; i < 3; i++) {
		k[i] = G->k[i] > 1 ? kv[i] : "";
		if (G->k[i] > 1) {
			ec_line(&c->c, "for (long %s = 0; %s < %d; %s++)", kv[i], kv[i], G->k[i], kv[i]);
			c->c.depth++;
			open++;
		}
	}
	ec_line(&c->c, "{");
	const char *ci = v->Cg > 1 ? "ci" : "";
	const char *kk = ec_aff(c, 0, ci, G->ksz, k[0], G->kst[0], k[1], G->kst[1], k[2], (int64_t)1, NULL);
	if (v->wconst)
		ec_line(&c->c, "const float *const w = wg + (%s) * %lld + %s;", kk, (long long)v->Mg, mb);
	else
		ec_line(&c->c, "const float *const w = wg + %s * %lld + %s;", mb, (long long)v->K, kk);
	ec_line(&c->c, "const float *const xk = xr + %s;",
	        ec_aff(c, 0, ci, v->plane, k[0], G->d[0] * v->pst[0], k[1], G->d[1] * v->pst[1], k[2],
	               (int64_t)G->d[2], NULL));
	return open;
}

/* One tile: np pixels from ox, vb output channels from mb. */
static void conv_tile(Ctx *c, const Conv *v, int np, int64_t vb, const char *mb, const char *rowo)
{
	const Geom *G = &v->G;
	ec_line(&c->c, "{");
	tile_open(c, np, vb);
	int open = conv_kloops(c, v, mb);
	tile_loads(c, np, "xk", G->s[2]);
	tile_fma(c, np, vb, vec_ref(c, "w", v->wconst ? 1 : v->K));
	ec_line(&c->c, "}");
	c->c.depth -= open;
	ec_line(&c->c, "for (long j = 0; j < %lld; j++) {", (long long)vb);
	ec_line(&c->c, "float *const yj = yg + (%s + j) * %lld + %s;", mb, (long long)G->outsz, rowo);
	if (v->b)
		ec_line(&c->c, "const float bj = bg[%s + j];", mb);
	for (int p = 0; p < np; p++) {
		char dst[32], e[32];
		snprintf(dst, sizeof dst, "yj[%d]", p);
		snprintf(e, sizeof e, v->b ? "a%d[j] + bj" : "a%d[j]", p);
		ec_store(c, dst, e);
	}
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
}

typedef struct {
	const Conv *v;
	int64_t vb;
	const char *rowo;
} RowArg;

static void conv_chunk(Ctx *c, const void *arg, int64_t np)
{
	const RowArg *r = arg;
	ec_line(&c->c, "const float *const xr = xrow + %s;", ec_aff(c, 0, "ox", (int64_t)r->v->G.s[2], NULL));
	conv_tile(c, r->v, (int)np, r->vb, "mb", r->rowo);
}

/* The output rows of one block of vb channels from mb: pixel chunks. */
static void conv_rows(Ctx *c, const void *arg, int64_t vb)
{
	const Conv *v = arg;
	const Geom *G = &v->G;
	int np;
	int64_t unused;
	tile_shape(G->out[2], v->Mg, &np, &unused);
	const char *oz = G->out[0] > 1 ? "oz" : "", *oy = G->out[1] > 1 ? "oy" : "";
	if (*oz)
		ec_line(&c->c, "for (long oz = 0; oz < %lld; oz++)", (long long)G->out[0]);
	if (*oy)
		ec_line(&c->c, "for (long oy = 0; oy < %lld; oy++)", (long long)G->out[1]);
	ec_line(&c->c, "{");
	ec_line(&c->c, "const float *const xrow = xg + %s;",
	        ec_aff(c, 0, oz, G->s[0] * v->pst[0], oy, G->s[1] * v->pst[1], NULL));
	RowArg r = {v, vb, ec_aff(c, 0, oz, G->ost[0], oy, G->ost[1], "ox", (int64_t)1, NULL)};
	chunks(c, "ox", G->out[2], np, 0, conv_chunk, &r);
	ec_line(&c->c, "}");
}

static void px_group(Ctx *c, const Conv *v);
static int px_wins(const Conv *v);

/* Group g of image n: full blocks of output channels, then the rest. */
static void conv_group(Ctx *c, const Conv *v, const char *nv, const char *gv)
{
	int np;
	int64_t vb;
	tile_shape(v->G.out[2], v->Mg, &np, &vb);
	const char *src = v->padded ? "s" : v->x;
	int64_t ximg = v->padded ? 0 : v->C * v->plane;
	ec_line(&c->c, "const float *const xg = %s;", plus(c, src, ec_aff(c, 0, nv, ximg, gv, v->Cg * v->plane, NULL)));
	ec_line(&c->c, "float *const yg = %s;",
	        plus(c, "y0", ec_aff(c, 0, nv, v->M * v->G.outsz, gv, v->Mg * v->G.outsz, NULL)));
	ec_line(&c->c, "const float *const wg = %s;", plus(c, v->w, ec_aff(c, 0, gv, v->K * v->Mg, NULL)));
	if (v->b)
		ec_line(&c->c, "const float *const bg = %s;", plus(c, v->b, ec_aff(c, 0, gv, v->Mg, NULL)));
	if (px_wins(v))
		px_group(c, v);
	else
		chunks(c, "mb", v->Mg, vb, 1, conv_rows, v);
}

/* ---- Conv, pixel-vectorised ----
 * The other orientation, for long contiguous pixel runs (pointwise convs,
 * wide stride-1 rows): vector over TILE_VB pixels of one row, broadcast
 * the weights of np output channels.  Stores are then contiguous too. */
static void px_tile(Ctx *c, const Conv *v, int np, int64_t vb, const char *rowo)
{
	ec_line(&c->c, "{");
	tile_open(c, np, vb);
	int open = conv_kloops(c, v, "m0");
	tile_loads(c, np, "w", v->wconst ? 1 : v->K);
	tile_fma(c, np, vb, vec_ref(c, "xk", v->G.s[2]));
	ec_line(&c->c, "}");
	c->c.depth -= open;
	/* one store loop for all rows: gcc fully unrolls a short loop of one
	 * statement into scalar code, but vectorises this one */
	for (int p = 0; p < np; p++) {
		ec_line(&c->c, "float *const y%dp = yg + (m0 + %d) * %lld + %s;", p, p, (long long)v->G.outsz, rowo);
		if (v->b)
			ec_line(&c->c, "const float b%dp = bg[m0 + %d];", p, p);
	}
	ec_line(&c->c, "for (long j = 0; j < %lld; j++) {", (long long)vb);
	for (int p = 0; p < np; p++)
		ec_store(c, arena_printf(c->g->arena, "y%dp[j]", p),
		         arena_printf(c->g->arena, v->b ? "a%d[j] + b%dp" : "a%d[j]", p, p));
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
}

static void px_chunk(Ctx *c, const void *arg, int64_t vb)
{
	const RowArg *r = arg;
	ec_line(&c->c, "const float *const xr = xrow + %s;", ec_aff(c, 0, "ox", (int64_t)r->v->G.s[2], NULL));
	px_tile(c, r->v, (int)r->vb, vb, r->rowo);
}

/* The output rows of np channels from m0: pixel chunks of TILE_VB. */
static void px_rows(Ctx *c, const void *arg, int64_t np)
{
	const Conv *v = arg;
	const Geom *G = &v->G;
	const char *oz = G->out[0] > 1 ? "oz" : "", *oy = G->out[1] > 1 ? "oy" : "";
	if (*oz)
		ec_line(&c->c, "for (long oz = 0; oz < %lld; oz++)", (long long)G->out[0]);
	if (*oy)
		ec_line(&c->c, "for (long oy = 0; oy < %lld; oy++)", (long long)G->out[1]);
	ec_line(&c->c, "{");
	ec_line(&c->c, "const float *const xrow = xg + %s;",
	        ec_aff(c, 0, oz, G->s[0] * v->pst[0], oy, G->s[1] * v->pst[1], NULL));
	RowArg r = {v, np, ec_aff(c, 0, oz, G->ost[0], oy, G->ost[1], "ox", (int64_t)1, NULL)};
	chunks(c, "ox", G->out[2], TILE_VB, 1, px_chunk, &r);
	ec_line(&c->c, "}");
}

static void px_group(Ctx *c, const Conv *v)
{
	chunks(c, "m0", v->Mg, TILE_NP, 0, px_rows, v);
}

/* Pixels, not channels, go in the vector when a row's pixels are adjacent
 * in the input and fill whole vectors, or nearly (28 = 16 + an overlapped
 * 16), or when there are too few channels.  Short rows (14: one vector
 * with 2 lanes idle, and the tile's stores run along a row) keep channels:
 * measured on the Fashion-MNIST samples, either choice the other way
 * costs 20-80% on those layers. */
static int px_wins(const Conv *v)
{
	int64_t run = v->G.out[2];
	return (v->G.s[2] == 1 && (run % TILE_VB == 0 || run > TILE_VB + TILE_VB / 2)) ||
	       v->Mg < TILE_NP;
}

/* Weights [M][Cg][taps] re-laid out to [group][k][Mg]: the vector loop
 * then reads contiguous output channels. */
static const char *conv_relayout(Ctx *c, const Conv *v, const Tensor *w)
{
	int64_t n = v->grp * v->K * v->Mg;
	float *t = malloc(sizeof *t * (size_t)(n > 0 ? n : 1));
	const float *src = w->data;
	for (int64_t g = 0; g < v->grp; g++)
		for (int64_t m = 0; m < v->Mg; m++)
			for (int64_t k = 0; k < v->K; k++)
				t[(g * v->K + k) * v->Mg + m] = src[(g * v->Mg + m) * v->K + k];
	const char *name = arena_printf(c->g->arena, "n%d_w", c->id);
	ec_line(&c->c, "/* weights as [group %lld][k %lld][m %lld] */", (long long)v->grp, (long long)v->K,
	        (long long)v->Mg);
	ec_array(c, name, DT_F32, n, t);
	free(t);
	return name;
}

/* A pointwise Conv (1x1 kernel, stride 1, no pad) is one row of all pixels. */
static void conv_flatten_pointwise(Conv *v)
{
	Geom *G = &v->G;
	int pw = G->ksz == 1 && !v->padded;
	for (int i = 0; i < 3; i++)
		pw &= G->s[i] == 1;
	if (!pw || G->out[2] == G->outsz)
		return;
	int64_t n = G->outsz;
	for (int i = 0; i < 3; i++) {
		G->in[i] = G->out[i] = i == 2 ? n : 1;
		G->ist[i] = G->ost[i] = i == 2 ? 1 : n;
	}
	conv_pad_dims(v);
}

static void conv_tiled(Ctx *c, Conv *v, const Tensor *w)
{
	conv_flatten_pointwise(v);
	v->wconst = w->kind == TK_CONST;
	if (v->wconst)
		v->w = conv_relayout(c, v, w);
	ec_begin(c, v->padded ? v->C * v->plane * 4 : 0);
	const char *nv = v->N > 1 ? "n" : "", *gv = v->grp > 1 ? "g" : "";
	if (*nv)
		ec_line(&c->c, "for (long n = 0; n < %lld; n++) {", (long long)v->N);
	if (v->padded)
		conv_pad_copy(c, v, nv, v->C, "");
	if (*gv)
		ec_line(&c->c, "for (long g = 0; g < %lld; g++) {", (long long)v->grp);
	else
		ec_line(&c->c, "{");
	conv_group(c, v, nv, gv);
	ec_line(&c->c, "}");
	if (*nv)
		ec_line(&c->c, "}");
	ec_end(c);
}

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

static void dw_flat(Ctx *c, Conv *v)
{
	const Geom *G = &v->G;
	int64_t wp = v->pin[2], s = G->s[2], q = G->out[1] * wp, cb = v->M < DW_CB ? v->M : DW_CB;
	int64_t last = s * (q - 1) + (int64_t)(G->k[1] - 1) * G->d[1] * wp + (int64_t)(G->k[2] - 1) * G->d[2];
	int64_t plane = last + 1 > v->plane ? last + 1 : v->plane;
	plane = (plane + 15) / 16 * 16;
	const char *fn = arena_printf(c->g->arena, "n%d_plane", c->id);
	ec_line(&c->c, "static void %s(const float *restrict sp, const float *restrict w, float *restrict t)", fn);
	ec_line(&c->c, "{");
	ec_line(&c->c, "for (long q = 0; q < %lld; q++) {", (long long)q);
	ec_line(&c->c, "float a = 0.0f;");
	int64_t tap = 0;
	for (int ky = 0; ky < G->k[1]; ky++)
		for (int kx = 0; kx < G->k[2]; kx++, tap++)
			ec_line(&c->c, "a += sp[%s] * w[%lld];",
			        ec_aff(c, (int64_t)ky * G->d[1] * wp + (int64_t)kx * G->d[2], "q", s, NULL), (long long)tap);
	ec_line(&c->c, "t[q] = a;");
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_line(&c->c, "");
	ec_begin(c, cb * (plane + q) * 4);
	ec_line(&c->c, "float *const t = s + %lld;", (long long)(cb * plane));
	ec_line(&c->c, "memset(s, 0, %lld);", (long long)(cb * plane * 4));
	const char *nv = v->N > 1 ? "n" : "";
	if (*nv)
		ec_line(&c->c, "for (long n = 0; n < %lld; n++)", (long long)v->N);
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
		ec_line(&c->c, "\t%s(s + j * %lld, %s + (m0 + j) * %lld, t + j * %lld);", fn, (long long)plane, v->w,
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
	ec_end(c);
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
		conv_pad_copy(c, v, nv, 1, "m");
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
 * that. */
static void dw_mask(Ctx *c, Conv *v)
{
	const Geom *G = &v->G;
	int64_t W = G->in[2], H = G->in[1], hw = H * W, q = G->out[1] * W, cb = v->M < DW_CB ? v->M : DW_CB;
	int64_t d0 = G->pb[1] * W + G->pb[2];
	int64_t maxr = (q - 1) + ((int64_t)(G->k[1] - 1) * G->d[1] - G->pb[1]) * W + (int64_t)(G->k[2] - 1) * G->d[2] - G->pb[2];
	int64_t plane = (d0 + (maxr > hw ? maxr : hw) + 1 + 15) / 16 * 16;
	const char *mask[64] = {NULL};
	for (int kx = 0; kx < G->k[2]; kx++) {
		int64_t sh = (int64_t)kx * G->d[2] - G->pb[2];
		if (sh == 0)
			continue;
		unsigned char *t = malloc((size_t)q);
		for (int64_t i = 0; i < q; i++)
			t[i] = i % W + sh >= 0 && i % W + sh < W;
		mask[kx] = arena_printf(c->g->arena, "n%d_m%d", c->id, kx);
		ec_array(c, mask[kx], DT_U8, q, t);
		free(t);
	}
	/* the plane loop in a function of its own: restrict on its parameters
	 * is what keeps gcc from guarding the vector loop with an alias check */
	const char *fn = arena_printf(c->g->arena, "n%d_plane", c->id);
	ec_line(&c->c, "static void %s(const float *restrict sp, const float *restrict w, float *restrict yc%s)", fn,
	        v->b ? ", float bj" : "");
	ec_line(&c->c, "{");
	ec_line(&c->c, "for (long q = 0; q < %lld; q++) {", (long long)q);
	ec_line(&c->c, "float a = 0.0f;");
	int64_t tap = 0;
	for (int ky = 0; ky < G->k[1]; ky++)
		for (int kx = 0; kx < G->k[2]; kx++, tap++) {
			const char *ix = ec_aff(c, ((int64_t)ky * G->d[1] - G->pb[1]) * W + (int64_t)kx * G->d[2] - G->pb[2],
			                        "q", (int64_t)1, NULL);
			if (mask[kx])
				ec_line(&c->c, "a += (%s[q] ? sp[%s] : 0.0f) * w[%lld];", mask[kx], ix, (long long)tap);
			else
				ec_line(&c->c, "a += sp[%s] * w[%lld];", ix, (long long)tap);
		}
	ec_store(c, "yc[q]", v->b ? "a + bj" : "a");
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_line(&c->c, "");
	ec_begin(c, cb * plane * 4);
	ec_line(&c->c, "memset(s, 0, %lld);", (long long)(cb * plane * 4));
	const char *nv = v->N > 1 ? "n" : "";
	if (*nv)
		ec_line(&c->c, "for (long n = 0; n < %lld; n++)", (long long)v->N);
	int64_t full = v->M / cb * cb;
	for (int blk = 0; blk < 2; blk++) {
		int64_t from = blk ? full : 0, to = blk ? v->M : full, nb = blk ? v->M - full : cb;
		if (from >= to)
			continue;
		ec_line(&c->c, "for (long m0 = %lld; m0 < %lld; m0 += %lld) {", (long long)from, (long long)to,
		        (long long)nb);
		ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)nb);
		ec_line(&c->c, "\tmemcpy(s + j * %lld + %lld, %s + %s, %lld);", (long long)plane, (long long)d0, v->x,
		        ec_aff(c, 0, nv, v->C * hw, "m0", hw, "j", hw, NULL), (long long)(hw * 4));
		ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)nb);
		ec_line(&c->c, "\t%s(s + j * %lld + %lld, %s + (m0 + j) * %lld, y0 + %s%s%s%s);", fn, (long long)plane,
		        (long long)d0, v->w, (long long)G->ksz,
		        ec_aff(c, 0, nv, v->M * G->outsz, "m0", G->outsz, "j", G->outsz, NULL), v->b ? ", " : "",
		        v->b ? v->b : "", v->b ? "[m0 + j]" : "");
		ec_line(&c->c, "}");
	}
	ec_end(c);
}

static void conv_depthwise(Ctx *c, Conv *v)
{
	const Geom *G = &v->G;
	if (G->out[0] == 1 && G->k[0] == 1 && G->in[0] == 1 && G->s[1] == 1 && G->s[2] == 1 &&
	    G->out[2] == G->in[2] && G->k[2] <= 64)
		dw_mask(c, v);
	else if (G->out[0] == 1 && G->k[0] == 1 && G->in[0] == 1 && G->s[1] == G->s[2])
		dw_flat(c, v);
	else
		dw_rows(c, v);
}

int ec_conv(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *w = ec_tin(c, 1), *b = ec_tin(c, 2), *y = ec_tout(c, 0);
	Conv v = {0};
	if (!w)
		return ec_fail(c, "Conv needs a weight input");
	if (ec_want_f32(c, 3) || ec_geom(c, x, y, &v.G))
		return 1;
	v.N = x->dim[0];
	v.C = x->dim[1];
	v.M = y->dim[1];
	v.grp = c->n->a.win.group;
	if (v.grp < 1 || v.C % v.grp || v.M % v.grp || x->dim[0] != y->dim[0])
		return ec_fail(c, "group %lld does not divide the channels", (long long)v.grp);
	v.Cg = v.C / v.grp;
	v.Mg = v.M / v.grp;
	v.K = v.Cg * v.G.ksz;
	if (w->rank != x->rank || w->dim[0] != v.M || w->dim[1] != v.Cg || ec_prod(w, 2, w->rank) != v.G.ksz)
		return ec_fail(c, "weight shape does not match input, output and kernel");
	if (b && ir_numel(b) != v.M)
		return ec_fail(c, "bias has %lld elements for %lld output channels",
		               (long long)ir_numel(b), (long long)v.M);
	conv_pad_dims(&v);
	v.x = ec_x(c, 0);
	v.b = b ? ec_x(c, 2) : NULL;
	if (v.Cg == 1 && v.Mg == 1 && v.G.ksz <= 64) {
		v.w = ec_x(c, 1);
		conv_depthwise(c, &v);
	} else {
		if (w->kind != TK_CONST)
			v.w = ec_x(c, 1);
		conv_tiled(c, &v, w);
	}
	return 0;
}

/* ---- Gemm, MatMul ---- */

typedef struct {
	int64_t M, K, N;
	const char *a, *b, *y;   /* pointer expressions */
	int64_t am, ak;          /* a(i, k) = a[i * am + k * ak] */
	int64_t bk, bn;          /* b(k, n) = b[k * bk + n * bn] */
	const char *cs;          /* C (Gemm), or NULL */
	int64_t cm, cn;          /* its broadcast strides */
	const char *alpha, *beta;   /* factors, NULL when 1 */
} Mm;

static void mm_tile(Ctx *c, const Mm *q, int np, int64_t vb, const char *i, const char *nb)
{
	ec_line(&c->c, "{");
	tile_open(c, np, vb);
	ec_line(&c->c, "for (long k = 0; k < %lld; k++) {", (long long)q->K);
	ec_line(&c->c, "const float *const w = %s + %s;", q->b, ec_aff(c, 0, "k", q->bk, nb, q->bn, NULL));
	ec_line(&c->c, "const float *const ak = %s + %s;", q->a, ec_aff(c, 0, i, q->am, "k", q->ak, NULL));
	tile_loads(c, np, "ak", q->am);
	tile_fma(c, np, vb, vec_ref(c, "w", q->bn));
	ec_line(&c->c, "}");
	ec_line(&c->c, "for (long j = 0; j < %lld; j++) {", (long long)vb);
	for (int p = 0; p < np; p++) {
		Str e = {0};
		char dst[160];
		snprintf(dst, sizeof dst, "%s[%s]", q->y, ec_aff(c, p * q->N, i, q->N, nb, (int64_t)1, "j", (int64_t)1, NULL));
		str_printf(&e, "%s%sa%d[j]", q->alpha ? q->alpha : "", q->alpha ? " * " : "", p);
		if (q->cs)
			str_printf(&e, " + %s%s%s[%s]", q->beta ? q->beta : "", q->beta ? " * " : "", q->cs,
			           ec_aff(c, p * q->cm, i, q->cm, nb, q->cn, "j", q->cn, NULL));
		ec_store(c, dst, e.s);
		str_free(&e);
	}
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
}

typedef struct {
	const Mm *q;
	int np;
	int64_t vb;
} MmArg;

static void mm_rows(Ctx *c, const void *arg, int64_t np)
{
	const MmArg *m = arg;
	mm_tile(c, m->q, (int)np, m->vb, "i", "nb");
}

static void mm_cols(Ctx *c, const void *arg, int64_t vb)
{
	const MmArg *m = arg;
	MmArg r = {m->q, m->np, vb};
	chunks(c, "i", m->q->M, m->np, 0, mm_rows, &r);
}

/* Column blocks of vb (weights stay hot), rows in chunks of np. */
static void mm_emit(Ctx *c, const Mm *q)
{
	int np;
	int64_t vb;
	tile_shape(q->M, q->N, &np, &vb);
	MmArg m = {q, np, vb};
	chunks(c, "nb", q->N, vb, 1, mm_cols, &m);
}

/* B as [K][N] so the vector loop runs over contiguous outputs: a constant
 * transposed B is re-laid out now, at compile time. */
static const char *gemm_b(Ctx *c, const Tensor *b, int tb, int64_t K, int64_t N, int64_t *bk, int64_t *bn)
{
	*bk = tb ? 1 : N;
	*bn = tb ? K : 1;
	if (!tb || b->kind != TK_CONST)
		return ec_x(c, 1);
	float *t = malloc(sizeof *t * (size_t)(K * N > 0 ? K * N : 1));
	const float *src = b->data;
	for (int64_t k = 0; k < K; k++)
		for (int64_t j = 0; j < N; j++)
			t[k * N + j] = src[j * K + k];
	const char *name = arena_printf(c->g->arena, "n%d_b", c->id);
	ec_line(&c->c, "/* B transposed to [%lld][%lld] */", (long long)K, (long long)N);
	ec_array(c, name, DT_F32, K * N, t);
	free(t);
	*bk = N;
	*bn = 1;
	return name;
}

/* beta * C: for a constant, the float product is taken now (the same one
 * the reference computes at run time). */
static const char *gemm_c(Ctx *c, const Tensor *ct, float beta, const char **scale)
{
	char be[32];
	emit_c_fmt_f32(be, beta);
	*scale = beta != 1.0f ? arena_strdup(c->g->arena, be) : NULL;
	if (ct->kind != TK_CONST || beta == 1.0f)
		return ec_x(c, 2);
	int64_t n = ir_numel(ct);
	float *t = malloc(sizeof *t * (size_t)(n > 0 ? n : 1));
	for (int64_t i = 0; i < n; i++)
		t[i] = beta * ((const float *)ct->data)[i];
	const char *name = arena_printf(c->g->arena, "n%d_c", c->id);
	ec_array(c, name, DT_F32, n, t);
	free(t);
	*scale = NULL;
	return name;
}

int ec_gemm(Ctx *c)
{
	const Tensor *a = ec_tin(c, 0), *b = ec_tin(c, 1), *ct = ec_tin(c, 2), *y = ec_tout(c, 0);
	if (!b || ec_want_f32(c, 3))
		return 1;
	int ta = c->n->a.gemm.ta, tb = c->n->a.gemm.tb;
	float alpha = c->n->a.gemm.alpha;
	if (a->rank != 2 || b->rank != 2 || y->rank != 2)
		return ec_fail(c, "A, B and Y must be 2-D");
	int64_t M = a->dim[ta ? 1 : 0], K = a->dim[ta ? 0 : 1], N = b->dim[tb ? 0 : 1];
	if (b->dim[tb ? 1 : 0] != K || y->dim[0] != M || y->dim[1] != N)
		return ec_fail(c, "A, B and Y shapes do not agree");
	Nest cn;
	int64_t yd[2] = {M, N};
	nest_init(&cn, 2, yd, 2);
	if (ct && nest_bcast(&cn, 1, ct))
		return ec_fail(c, "C does not broadcast to [%lld, %lld]", (long long)M, (long long)N);
	Mm q = {M, K, N, ec_x(c, 0), NULL, "y0", ta ? 1 : K, ta ? M : 1, 0, 0, NULL, cn.st[1][0],
	        cn.st[1][1], NULL, NULL};
	q.b = gemm_b(c, b, tb, K, N, &q.bk, &q.bn);
	if (ct)
		q.cs = gemm_c(c, ct, c->n->a.gemm.beta, &q.beta);
	if (alpha != 1.0f) {
		char al[32];
		emit_c_fmt_f32(al, alpha);
		q.alpha = arena_strdup(c->g->arena, al);
	}
	ec_begin(c, 0);
	mm_emit(c, &q);
	ec_end(c);
	return 0;
}

static Tensor batch_of(const Tensor *t, int n)
{
	Tensor b = *t;
	b.rank = n < 0 ? 0 : n;
	return b;
}

int ec_matmul(Ctx *c)
{
	const Tensor *a = ec_tin(c, 0), *b = ec_tin(c, 1), *y = ec_tout(c, 0);
	if (!b || ec_want_f32(c, 2))
		return 1;
	if (a->rank < 1 || b->rank < 1)
		return ec_fail(c, "inputs must have rank >= 1");
	int64_t M = a->rank > 1 ? a->dim[a->rank - 2] : 1, K = a->dim[a->rank - 1];
	int64_t N = b->rank > 1 ? b->dim[b->rank - 1] : 1, K2 = b->dim[b->rank > 1 ? b->rank - 2 : 0];
	int nb = y->rank - (a->rank > 1) - (b->rank > 1);
	Tensor ab = batch_of(a, a->rank - 2), bb = batch_of(b, b->rank - 2), yb = batch_of(y, nb);
	Nest bn;
	if (K != K2 || nb < 0 || ir_numel(y) != ir_numel(&yb) * M * N)
		return ec_fail(c, "input shapes do not agree with each other or the output");
	nest_init(&bn, yb.rank, yb.dim, 3);
	if (nest_bcast(&bn, 1, &ab) || nest_bcast(&bn, 2, &bb))
		return ec_fail(c, "batch dims do not broadcast");
	nest_bcast(&bn, 0, &yb);
	for (int r = 0; r < bn.rank; r++) {
		bn.st[0][r] *= M * N;
		bn.st[1][r] *= M * K;
		bn.st[2][r] *= K * N;
	}
	nest_simplify(&bn);
	const char *as = ec_x(c, 0), *bs = ec_x(c, 1);
	char iy[128], ia[128], ib[128];
	ec_begin(c, 0);
	nest_open(c, &bn);
	nest_index(&bn, 0, iy, sizeof iy);
	nest_index(&bn, 1, ia, sizeof ia);
	nest_index(&bn, 2, ib, sizeof ib);
	ec_line(&c->c, "const float *const pa = %s + %s;", as, ia);
	ec_line(&c->c, "const float *const pb = %s + %s;", bs, ib);
	ec_line(&c->c, "float *const py = y0 + %s;", iy);
	Mm q = {M, K, N, "pa", "pb", "py", K, 1, N, 1, NULL, 0, 0, NULL, NULL};
	mm_emit(c, &q);
	nest_close(c, &bn);
	ec_end(c);
	return 0;
}
