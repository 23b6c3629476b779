/* Kernel emitters for the dot-product ops: Conv, Gemm, MatMul.
 *
 * Each is a register tile: np broadcast values times a vector of vb
 * contiguous lanes, accumulated over k and stored once with the bias and
 * activation:
 *
 *     for k:  v_p = x(p, k);  a_p[0..vb) += v_p * vec(k)[0..vb);
 *
 * The np x vb accumulators stay in registers: as GNU C vector variables
 * of the target's width, or as float arrays whose j loops the compiler
 * vectorises (the fallback).  Each kernel is printed once per target
 * under #if, with tiles that fit its registers (see targets[]).  Two
 * orientations:
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
 * vectorise the copies; so the fallback's vector loops carry several
 * statements, or 64 lanes, or full-length chunks (see chunks()).
 *
 * Every output is a sum from 0 in eval_nn.c's order (input channel, then
 * kernel depth, row, column; or k ascending), then the bias, then the
 * activation with ec_act's operations: bit-identical to the reference
 * unless the C compiler contracts into FMAs (gcc does by default in GNU
 * mode, not with -std=c99; clang does with -mfma unless -ffp-contract=off).
 * Vector lanes keep each output's own order, so this holds for every
 * target's variant. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conv_impl.h"


/* Float arrays: gcc fully unrolls loops of at most 16 iterations with few
 * statements before vectorising, then fails to vectorise them; so the
 * fallback's vector loops carry several statements, or 64 lanes. */
enum { FB_NP = 8, FB_VB = 16, FB_VB_WIDE = 64 };

/* Shapes measured on the Fashion-MNIST samples (Zen 5; -O3 with
 * -march=native, -mavx2 -mfma, and plain SSE2), each the best or within a
 * few % of it.  Without FMA (SSE2) a multiply-add needs a temporary, and
 * fewer accumulators spill less; there the 14% of junk columns of phase
 * planes cost less than the column masks (20% faster), with AVX2 and
 * AVX-512 it is the other way round (5-25%). */
static const Target targets[] = {
	{"defined(__GNUC__) && defined(__AVX512F__)", 16, 16, 8, 16, 8, 1},
	{"defined(__GNUC__) && defined(__AVX__)", 8, 12, 3, 12, 6, 1},
	{"defined(__GNUC__) && (defined(__SSE2__) || defined(__ARM_NEON))", 4, 8, 2, 12, 6, 0},
	{NULL, 0, 0, FB_NP, 0, FB_NP, 1},
};


static Tile tile_of(const Target *t, int64_t np, int64_t vb)
{
	Tile r = {(int)np, vb, t->lanes && vb % t->lanes == 0 ? t->lanes : 0};
	return r;
}

/* Accumulators a<p>_<q> (vectors) or a<p>[vb] (arrays), all zero. */
static void tile_open(Ctx *c, const Tile *t)
{
	Str s = {0}, z = {0};
	if (t->lanes) {
		ec_line(&c->c, "typedef float vf __attribute__((vector_size(%d)));", t->lanes * 4);
		for (int p = 0; p < t->np; p++)
			for (int64_t q = 0; q < t->vb / t->lanes; q++)
				str_printf(&s, "%sa%d_%lld = {0}", p || q ? ", " : "vf ", p, (long long)q);
		ec_line(&c->c, "%s;", s.s);
		str_free(&s);
		return;
	}
	for (int p = 0; p < t->np; p++) {
		str_printf(&s, "%sa%d[%lld]", p ? ", " : "float ", p, (long long)t->vb);
		str_printf(&z, "a%d[j] = ", p);
	}
	ec_line(&c->c, "%s;", s.s);
	ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)t->vb);
	ec_line(&c->c, "\t%s0.0f;", z.s);
	str_free(&s);
	str_free(&z);
}

/* Vector q of the tile's lanes from base (element j at base[j * st]). */
static void tile_vload(Ctx *c, const Tile *t, int64_t q, const char *base, int64_t st)
{
	int64_t o = q * t->lanes * st;
	if (st == 1) {
		ec_line(&c->c, "vf u%lld;", (long long)q);
		ec_line(&c->c, "memcpy(&u%lld, %s + %lld, sizeof u%lld);", (long long)q, base, (long long)o, (long long)q);
		return;
	}
	Str s = {0};
	for (int j = 0; j < t->lanes; j++)
		str_printf(&s, "%s%s[%lld]", j ? ", " : "", base, (long long)(o + j * st));
	ec_line(&c->c, "const vf u%lld = {%s};", (long long)q, s.s);
	str_free(&s);
}

/* a_p += v_p * vec, vec element j being base[j * st]. */
static void tile_fma(Ctx *c, const Tile *t, const char *base, int64_t st)
{
	if (t->lanes) {
		int64_t nv = t->vb / t->lanes;
		for (int64_t q = 0; q < nv; q++)
			tile_vload(c, t, q, base, st);
		for (int p = 0; p < t->np; p++)
			for (int64_t q = 0; q < nv; q++)
				ec_line(&c->c, "a%d_%lld += v%d * u%lld;", p, (long long)q, p, (long long)q);
		return;
	}
	ec_line(&c->c, "for (long j = 0; j < %lld; j++) {", (long long)t->vb);
	for (int p = 0; p < t->np; p++) {
		if (st == 1)
			ec_line(&c->c, "a%d[j] += v%d * %s[j];", p, p, base);
		else
			ec_line(&c->c, "a%d[j] += v%d * %s[j * %lld];", p, p, base, (long long)st);
	}
	ec_line(&c->c, "}");
}

/* Vector accumulators into arrays a<p>[vb] for the stores (no code when
 * the tile was arrays already). */
static void tile_close(Ctx *c, const Tile *t)
{
	if (!t->lanes)
		return;
	for (int p = 0; p < t->np; p++) {
		ec_line(&c->c, "float a%d[%lld];", p, (long long)t->vb);
		for (int64_t q = 0; q < t->vb / t->lanes; q++)
			ec_line(&c->c, "memcpy(a%d + %lld, &a%d_%lld, sizeof a%d_%lld);", p, (long long)(q * t->lanes), p,
			        (long long)q, p, (long long)q);
	}
}

/* ---- vector epilogues ----
 * Bias and activation on the accumulator vectors, then vector stores.
 * Selects are comparison masks (GNU C has no ?: on vectors in C), the
 * arithmetic is ec_act's, operation for operation, so the values are the
 * scalar epilogue's.  Needed because gcc vectorises the scalar form of
 * HardSwish only with AVX-512 masks: elsewhere `x * clamp(x / 6 + 0.5)`
 * stays scalar with branches, which costs more than the tile's FMAs. */

/* Can the node's activation be done on vectors?  (Sigmoid needs expf.) */
int cv_vec_act_ok(const Ctx *c)
{
	return c->n->act.kind != ACT_SIGMOID;
}

/* (vf){v, v, ...}: a constant vector. */
static const char *vsplat(Ctx *c, int lanes, float f)
{
	char lit[32];
	Str s = {0};
	emit_c_fmt_f32(lit, f);
	for (int j = 0; j < lanes; j++)
		str_printf(&s, "%s%s", j ? ", " : "", lit);
	const char *r = arena_printf(c->g->arena, "(vf){%s}", s.s);
	str_free(&s);
	return r;
}

/* z = t clamped to [0, 1], as ec_act's `t < 0 ? 0 : t > 1 ? 1 : t`. */
static void vec_clamp01(Ctx *c, int lanes, const char *z, const char *t)
{
	ec_line(&c->c, "const vi m0 = %s < 0.0f, m1 = %s > 1.0f;", t, t);
	ec_line(&c->c, "%s = (vf)(((vi)%s & ~(m0 | m1)) | ((vi)%s & m1));", z, t, vsplat(c, lanes, 1.0f));
}

/* z = ACT(z) for the vector variable z. */
static void vec_act(Ctx *c, int lanes, const char *z)
{
	const Act *a = &c->n->act;
	char A[32], B[32];
	emit_c_fmt_f32(A, a->a);
	emit_c_fmt_f32(B, a->b);
	switch (a->kind) {
	case ACT_RELU:
		ec_line(&c->c, "%s = (vf)((vi)%s & ~(%s < 0.0f));", z, z, z);
		break;
	case ACT_CLIP:
		if (a->a != -INFINITY)
			ec_line(&c->c, "%s = (vf)(((vi)%s & (%s < %s)) | ((vi)%s & ~(%s < %s)));", z, vsplat(c, lanes, a->a),
			        z, A, z, z, A);
		if (a->b != INFINITY)
			ec_line(&c->c, "%s = (vf)(((vi)%s & (%s > %s)) | ((vi)%s & ~(%s > %s)));", z, vsplat(c, lanes, a->b),
			        z, B, z, z, B);
		break;
	case ACT_LEAKY:
		ec_line(&c->c, "%s = (vf)(((vi)(%s * %s) & (%s < 0.0f)) | ((vi)%s & ~(%s < 0.0f)));", z, A, z, z, z, z);
		break;
	case ACT_HSIGMOID:
		ec_line(&c->c, "{");
		ec_line(&c->c, "const vf t = %s * %s + %s;", A, z, B);
		vec_clamp01(c, lanes, z, "t");
		ec_line(&c->c, "}");
		break;
	case ACT_HSWISH:
		ec_line(&c->c, "{");
		ec_line(&c->c, "const vf t = %s / 6.0f + 0.5f;", z);
		ec_line(&c->c, "vf s;");
		vec_clamp01(c, lanes, "s", "t");
		ec_line(&c->c, "%s = %s * s;", z, z);
		ec_line(&c->c, "}");
		break;
	default:
		break;
	}
}

/* Opens the epilogue's block, with the mask type when the activation
 * needs it. */
static void vec_open(Ctx *c, const Tile *t)
{
	ec_line(&c->c, "{");
	if (c->n->act.kind != ACT_NONE)
		ec_line(&c->c, "typedef int vi __attribute__((vector_size(%d)));", t->lanes * 4);
}

/* "a<p>_<q>" or "a<p>_<q> + bias". */
static const char *vec_acc(Ctx *c, int p, int64_t q, const char *bias)
{
	if (bias)
		return arena_printf(c->g->arena, "a%d_%lld + %s", p, (long long)q, bias);
	return arena_printf(c->g->arena, "a%d_%lld", p, (long long)q);
}

/* { vf z = init; z = ACT(z); memcpy(dst, &z, ...); } */
void cv_vec_finish(Ctx *c, const Tile *t, const char *init, const char *dst)
{
	ec_line(&c->c, "{");
	ec_line(&c->c, "vf z = %s;", init);
	vec_act(c, t->lanes, "z");
	ec_line(&c->c, "memcpy(%s, &z, sizeof z);", dst);
	ec_line(&c->c, "}");
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

/* Rows per tile: at most max, and as even as the chunks can be (14 rows
 * at most 6 a tile are 5 + 5 + 4, not 6 + 6 + 2: a tile of 2 rows has
 * too few accumulators to hide the FMA latency). */
static int even_rows(int64_t nrows, int max)
{
	if (nrows <= max)
		return (int)(nrows > 0 ? nrows : 1);
	int64_t n = (nrows + max - 1) / max;
	return (int)((nrows + n - 1) / n);
}

/* Tile shape for nrows broadcast rows and nv vector outputs, given at
 * most maxnp rows and acc accumulator vectors: as many rows as allowed
 * (split evenly), then as many vectors as the accumulators left allow.
 * (A cost model of FMAs, loads and latency picked shapes with fewer rows
 * and more vectors that measured 20-50% slower.) */
static void tile_shape(const Target *t, int maxnp, int acc, int64_t nrows, int64_t nv, int *np, int64_t *vb)
{
	*np = even_rows(nrows, maxnp);
	if (!t->lanes) {
		*vb = *np >= 4 ? FB_VB : FB_VB_WIDE;
		if (*vb > nv)
			*vb = nv;
		return;
	}
	int64_t nvec = acc / *np > 0 ? acc / *np : 1;
	if (nvec > nv / t->lanes)
		nvec = nv / t->lanes;
	*vb = nvec > 0 ? nvec * t->lanes : nv;   /* fewer than lanes outputs: arrays */
}

/* The tile shape of the dot-product kernels (Gemm, MatMul, Conv with
 * channels in the vector). */
static void mm_shape(const Target *t, int64_t nrows, int64_t nv, int *np, int64_t *vb)
{
	tile_shape(t, t->np, t->acc, nrows, nv, np, vb);
}

/* Print the node's function once per target, each under its #if / #elif
 * / #else: pre(c, arg, target) (NULL: nothing) prints what goes above it
 * (helpers, tables), body(c, arg, target) its body. */

void cv_per_target_pre(Ctx *c, int64_t scratch, BodyFn pre, BodyFn body, void *arg)
{
	int n = (int)(sizeof targets / sizeof targets[0]);
	for (int i = 0; i < n; i++) {
		if (targets[i].cond)
			ec_line(&c->c, "#%s %s", i ? "elif" : "if", targets[i].cond);
		else
			ec_line(&c->c, "#else");
		if (pre)
			pre(c, arg, &targets[i]);
		ec_begin(c, scratch);
		body(c, arg, &targets[i]);
		ec_end(c);
	}
	ec_line(&c->c, "#endif");
	ec_line(&c->c, "");
}

static void per_target(Ctx *c, int64_t scratch, BodyFn body, void *arg)
{
	cv_per_target_pre(c, scratch, NULL, body, arg);
}

/* var over [from, to) in steps of step, each printed by fn(step): a loop,
 * or a block when there is one step. */
typedef void (*ChunkFn)(Ctx *, const void *arg, int64_t size);

static void steps(Ctx *c, const char *var, int64_t from, int64_t to, int64_t step, ChunkFn fn, const void *arg)
{
	if (from >= to)
		return;
	if (to - from == step) {
		ec_line(&c->c, "{");
		ec_line(&c->c, "const long %s = %lld;", var, (long long)from);
	} else {
		ec_line(&c->c, "for (long %s = %lld; %s < %lld; %s += %lld) {", var, (long long)from, var, (long long)to,
		        var, (long long)step);
	}
	fn(c, arg, step);
	ec_line(&c->c, "}");
}

/* var over [0, total) in chunks of at most step, each printed by
 * fn(size).  With overlap (vector dims), a partial last chunk is shifted
 * back to end at total (when total >= step): its first outputs are
 * computed twice, identically, but the vector loop keeps its full length
 * instead of a short one that compilers turn into masked or scalar code.
 * Broadcast dims are split as evenly as chunks of one size and of one less
 * allow (14 rows by at most 6: 5 + 5 + 4), so no tile is left with too few
 * rows to hide the FMA latency. */
static void chunks(Ctx *c, const char *var, int64_t total, int64_t step, int overlap, ChunkFn fn,
                   const void *arg)
{
	if (total <= 0)
		return;
	if (!overlap) {
		int64_t n = (total + step - 1) / step, big = (total + n - 1) / n, nbig = total - n * (big - 1);
		steps(c, var, 0, nbig * big, big, fn, arg);
		steps(c, var, nbig * big, total, big - 1, fn, arg);
		return;
	}
	int64_t full = total / step * step;
	if (full)
		steps(c, var, 0, full, step, fn, arg);
	if (full < total) {
		int back = total >= step;
		ec_line(&c->c, "{");
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
void cv_conv_pad_copy(Ctx *c, const Conv *v, const char *nv, int64_t nc, const char *c0)
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

/* Bias and activation on a channels-in-the-vector tile, into arrays
 * a<p>[vb] that the caller stores transposed. */
static void conv_vec_finish(Ctx *c, const Conv *v, const Tile *t, const char *mb)
{
	int64_t nv = t->vb / t->lanes;
	for (int p = 0; p < t->np; p++)
		ec_line(&c->c, "float a%d[%lld];", p, (long long)t->vb);
	vec_open(c, t);
	for (int64_t q = 0; q < nv && v->b; q++) {
		ec_line(&c->c, "vf b%lld;", (long long)q);
		ec_line(&c->c, "memcpy(&b%lld, bg + %s + %lld, sizeof b%lld);", (long long)q, mb, (long long)(q * t->lanes),
		        (long long)q);
	}
	for (int p = 0; p < t->np; p++)
		for (int64_t q = 0; q < nv; q++)
			cv_vec_finish(c, t, vec_acc(c, p, q, v->b ? arena_printf(c->g->arena, "b%lld", (long long)q) : NULL),
			           arena_printf(c->g->arena, "a%d + %lld", p, (long long)(q * t->lanes)));
	ec_line(&c->c, "}");
}

/* One tile: np pixels from ox, vb output channels from mb. */
static void conv_tile(Ctx *c, const Conv *v, int np, int64_t vb, const char *mb, const char *rowo)
{
	const Geom *G = &v->G;
	Tile t = tile_of(v->tg, np, vb);
	ec_line(&c->c, "{");
	tile_open(c, &t);
	int open = conv_kloops(c, v, mb);
	tile_loads(c, np, "xk", G->s[2]);
	tile_fma(c, &t, "w", v->wconst ? 1 : v->K);
	ec_line(&c->c, "}");
	c->c.depth -= open;
	int vec = t.lanes && cv_vec_act_ok(c);
	if (vec)
		conv_vec_finish(c, v, &t, mb);
	else
		tile_close(c, &t);
	ec_line(&c->c, "for (long j = 0; j < %lld; j++) {", (long long)vb);
	ec_line(&c->c, "float *const yj = yg + (%s + j) * %lld + %s;", mb, (long long)G->outsz, rowo);
	if (v->b && !vec)
		ec_line(&c->c, "const float bj = bg[%s + j];", mb);
	for (int p = 0; p < np; p++) {
		char dst[32], e[32];
		snprintf(dst, sizeof dst, "yj[%d]", p);
		snprintf(e, sizeof e, v->b && !vec ? "a%d[j] + bj" : "a%d[j]", p);
		if (vec)
			ec_line(&c->c, "%s = %s;", dst, e);
		else
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
	mm_shape(v->tg, G->out[2], v->Mg, &np, &unused);
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
	mm_shape(v->tg, v->G.out[2], v->Mg, &np, &vb);
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
 * wide stride-1 rows): vector over a chunk of pixels of one row, broadcast
 * the weights of np output channels.  Stores are then contiguous too. */
static void px_tile(Ctx *c, const Conv *v, int np, int64_t vb, const char *rowo)
{
	Tile t = tile_of(v->tg, np, vb);
	ec_line(&c->c, "{");
	tile_open(c, &t);
	int open = conv_kloops(c, v, "m0");
	tile_loads(c, np, "w", v->wconst ? 1 : v->K);
	tile_fma(c, &t, "xk", v->G.s[2]);
	ec_line(&c->c, "}");
	c->c.depth -= open;
	for (int p = 0; p < np; p++) {
		ec_line(&c->c, "float *const y%dp = yg + (m0 + %d) * %lld + %s;", p, p, (long long)v->G.outsz, rowo);
		if (v->b)
			ec_line(&c->c, "const float b%dp = bg[m0 + %d];", p, p);
	}
	if (t.lanes && cv_vec_act_ok(c)) {
		vec_open(c, &t);
		for (int p = 0; p < np; p++)
			for (int64_t q = 0; q < vb / t.lanes; q++)
				cv_vec_finish(c, &t, vec_acc(c, p, q, v->b ? arena_printf(c->g->arena, "b%dp", p) : NULL),
				           arena_printf(c->g->arena, "y%dp + %lld", p, (long long)(q * t.lanes)));
		ec_line(&c->c, "}");
		ec_line(&c->c, "}");
		return;
	}
	tile_close(c, &t);
	/* one store loop for all rows: gcc fully unrolls a short loop of one
	 * statement into scalar code, but vectorises this one */
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

/* Pixels-in-the-vector tile: np channels by vb pixels of a row. */
static void px_shape(const Conv *v, int *np, int64_t *vb)
{
	const Target *t = v->tg;
	tile_shape(t, t->pnp, t->pacc, v->Mg, v->G.out[2], np, vb);
	if (!t->lanes)
		*vb = FB_VB;
}

/* The output rows of np channels from m0: pixel chunks. */
static void px_rows(Ctx *c, const void *arg, int64_t np)
{
	const Conv *v = arg;
	const Geom *G = &v->G;
	int unused;
	int64_t vb;
	px_shape(v, &unused, &vb);
	const char *oz = G->out[0] > 1 ? "oz" : "", *oy = G->out[1] > 1 ? "oy" : "";
	if (*oz)
		ec_line(&c->c, "for (long oz = 0; oz < %lld; oz++)", (long long)G->out[0]);
	if (*oy)
		ec_line(&c->c, "for (long oy = 0; oy < %lld; oy++)", (long long)G->out[1]);
	ec_line(&c->c, "{");
	ec_line(&c->c, "const float *const xrow = xg + %s;",
	        ec_aff(c, 0, oz, G->s[0] * v->pst[0], oy, G->s[1] * v->pst[1], NULL));
	RowArg r = {v, np, ec_aff(c, 0, oz, G->ost[0], oy, G->ost[1], "ox", (int64_t)1, NULL)};
	chunks(c, "ox", G->out[2], vb, 1, px_chunk, &r);
	ec_line(&c->c, "}");
}

static void px_group(Ctx *c, const Conv *v)
{
	int np;
	int64_t unused;
	px_shape(v, &np, &unused);
	chunks(c, "m0", v->Mg, np, 0, px_rows, v);
}

/* Pixels, not channels, go in the vector when a row's pixels are adjacent
 * in the input and fill whole 16-pixel chunks, or nearly (28 = 16 + an
 * overlapped 16), or when there are too few channels.  Short rows (14: 2
 * lanes of 16 idle, and the tile's stores run along a row) keep channels:
 * measured on the Fashion-MNIST samples, either choice the other way
 * costs 20-80% on those layers with 16-float arrays, and 5-60% with the
 * AVX2 tiles; with SSE2's the two are within a few % on pointwise layers,
 * but 14-wide rows still want channels.  So one rule for all targets. */
enum { PX_RUN = 16, PX_MINCH = 8 };

static int px_wins(const Conv *v)
{
	int64_t run = v->G.out[2];
	return (v->G.s[2] == 1 && (run % PX_RUN == 0 || run > PX_RUN + PX_RUN / 2)) || v->Mg < PX_MINCH;
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

static void conv_body(Ctx *c, void *arg, const Target *t)
{
	Conv *v = arg;
	v->tg = t;
	const char *nv = v->N > 1 ? "n" : "", *gv = v->grp > 1 ? "g" : "";
	if (*nv)
		ec_line(&c->c, "for (long n = 0; n < %lld; n++) {", (long long)v->N);
	if (v->padded)
		cv_conv_pad_copy(c, v, nv, v->C, "");
	if (*gv)
		ec_line(&c->c, "for (long g = 0; g < %lld; g++) {", (long long)v->grp);
	else
		ec_line(&c->c, "{");
	conv_group(c, v, nv, gv);
	ec_line(&c->c, "}");
	if (*nv)
		ec_line(&c->c, "}");
}

static void conv_tiled(Ctx *c, Conv *v, const Tensor *w)
{
	conv_flatten_pointwise(v);
	v->wconst = w->kind == TK_CONST;
	if (v->wconst)
		v->w = conv_relayout(c, v, w);
	per_target(c, v->padded ? v->C * v->plane * 4 : 0, conv_body, v);
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
		cv_conv_depthwise(c, &v);
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
	const Target *tg;        /* the target being printed for */
} Mm;

/* y = alpha * acc + beta * C, activated, stored as vectors (C's column
 * stride cn is 1, or 0: one value per row). */
static void mm_vec_finish(Ctx *c, const Mm *q, const Tile *t, const char *i, const char *nb)
{
	vec_open(c, t);
	for (int p = 0; p < t->np; p++)
		for (int64_t v = 0; v < t->vb / t->lanes; v++) {
			int64_t j = v * t->lanes;
			Str e = {0};
			str_printf(&e, "%s%s%s", q->alpha ? q->alpha : "", q->alpha ? " * " : "", vec_acc(c, p, v, NULL));
			if (q->cs && q->cn == 1) {
				ec_line(&c->c, "vf c%d_%lld;", p, (long long)v);
				ec_line(&c->c, "memcpy(&c%d_%lld, %s + %s, sizeof c%d_%lld);", p, (long long)v, q->cs,
				        ec_aff(c, p * q->cm + j, i, q->cm, nb, (int64_t)1, NULL), p, (long long)v);
				str_printf(&e, " + %s%sc%d_%lld", q->beta ? q->beta : "", q->beta ? " * " : "", p, (long long)v);
			} else if (q->cs) {
				str_printf(&e, " + %s%s%s[%s]", q->beta ? q->beta : "", q->beta ? " * " : "", q->cs,
				           ec_aff(c, p * q->cm, i, q->cm, NULL));
			}
			cv_vec_finish(c, t, e.s, arena_printf(c->g->arena, "%s + %s", q->y,
			                                   ec_aff(c, p * q->N + j, i, q->N, nb, (int64_t)1, NULL)));
			str_free(&e);
		}
	ec_line(&c->c, "}");
}

static void mm_tile(Ctx *c, const Mm *q, int np, int64_t vb, const char *i, const char *nb)
{
	Tile t = tile_of(q->tg, np, vb);
	ec_line(&c->c, "{");
	tile_open(c, &t);
	ec_line(&c->c, "for (long k = 0; k < %lld; k++) {", (long long)q->K);
	ec_line(&c->c, "const float *const w = %s + %s;", q->b, ec_aff(c, 0, "k", q->bk, nb, q->bn, NULL));
	ec_line(&c->c, "const float *const ak = %s + %s;", q->a, ec_aff(c, 0, i, q->am, "k", q->ak, NULL));
	tile_loads(c, np, "ak", q->am);
	tile_fma(c, &t, "w", q->bn);
	ec_line(&c->c, "}");
	if (t.lanes && cv_vec_act_ok(c) && (!q->cs || q->cn <= 1)) {
		mm_vec_finish(c, q, &t, i, nb);
		ec_line(&c->c, "}");
		return;
	}
	tile_close(c, &t);
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
	mm_shape(q->tg, q->M, q->N, &np, &vb);
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

static void gemm_body(Ctx *c, void *arg, const Target *t)
{
	Mm *q = arg;
	q->tg = t;
	mm_emit(c, q);
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
	        cn.st[1][1], NULL, NULL, NULL};
	q.b = gemm_b(c, b, tb, K, N, &q.bk, &q.bn);
	if (ct)
		q.cs = gemm_c(c, ct, c->n->a.gemm.beta, &q.beta);
	if (alpha != 1.0f) {
		char al[32];
		emit_c_fmt_f32(al, alpha);
		q.alpha = arena_strdup(c->g->arena, al);
	}
	per_target(c, 0, gemm_body, &q);
	return 0;
}

static Tensor batch_of(const Tensor *t, int n)
{
	Tensor b = *t;
	b.rank = n < 0 ? 0 : n;
	return b;
}

typedef struct {
	const Nest *bn;          /* batch dims */
	const char *a, *b;       /* input names */
	Mm q;
} MatMulArg;

static void matmul_body(Ctx *c, void *arg, const Target *t)
{
	MatMulArg *m = arg;
	char iy[128], ia[128], ib[128];
	nest_open(c, m->bn);
	nest_index(m->bn, 0, iy, sizeof iy);
	nest_index(m->bn, 1, ia, sizeof ia);
	nest_index(m->bn, 2, ib, sizeof ib);
	ec_line(&c->c, "const float *const pa = %s + %s;", m->a, ia);
	ec_line(&c->c, "const float *const pb = %s + %s;", m->b, ib);
	ec_line(&c->c, "float *const py = y0 + %s;", iy);
	m->q.tg = t;
	mm_emit(c, &m->q);
	nest_close(c, m->bn);
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
	MatMulArg m = {&bn, as, bs, {M, K, N, "pa", "pb", "py", K, 1, N, 1, NULL, 0, 0, NULL, NULL, NULL}};
	per_target(c, 0, matmul_body, &m);
	return 0;
}
