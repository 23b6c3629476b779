/* Integer Conv, Gemm and MatMul: the vector pieces every target shares
 * (qconv_impl.h): the output epilogue's plan, the loops over a flat
 * plane's output positions (tiles of vectors, row tiles with constant
 * masks, the row buffer), and the Gemm / MatMul kernels with columns in
 * the vector for AVX-512 VNNI, AVX2 and SSE2. */
#include <stdlib.h>
#include <string.h>

#include "qconv_impl.h"

OutPlan qc_out_plan(const QOut *o)
{
	OutPlan p = {0, 0, 0, 0, 0, o->zy, "cvtepi32", ir_dtype_size(o->yt) == 2};
	int uns = o->yt == DT_U8 || o->yt == DT_U16;
	int32_t dmin = uns ? 0 : p.w16 ? -32768 : -128, dmax = uns ? (p.w16 ? 65535 : 255) : p.w16 ? 32767 : 127;
	if (o->zy == 0) {
		p.lo = o->lo;
		p.hi = o->hi;
		p.maxv = uns || o->lo > dmin;
		p.minv = o->hi < dmax;
		p.cvt = uns ? "cvtusepi32" : "cvtsepi32";
		return p;
	}
	qc_out_bounds(o, &p.lo, &p.hi);
	p.maxv = p.lo > INT32_MIN;
	p.minv = p.hi < INT32_MAX;
	p.addz = 1;
	return p;
}

static void vx_tile(Ctx *c, const Vx *x, int np, int nv, const VxVec *vec)
{
	if (x->kind == VK_VNNI)
		qc_vnni_tile(c, x, np, nv, vec);
	else
		qc_avx2_tile(c, x, np, nv, vec);
}

/* Tiles over the flat range [0, QR) (VO_DIRECT, VO_TBUF) for np channels
 * from m0: nv vectors at a time from q0, the last ones apart. */
static void vx_flat(Ctx *c, const Vx *x, int np)
{
	int L = x->L;
	int64_t nvec = x->QR / L, full = nvec / x->nv, rest = nvec % x->nv;
	int tailv = x->out == VO_DIRECT && x->Q % L ? (int)(x->Q % L) : L;
	int64_t loop = full - (tailv < L && !rest && full > 0);
	VxVec vec[VX_NV];
	for (int k = 0; k < 3; k++) {
		int64_t from = k == 0 ? 0 : k == 1 ? loop * x->nv : full * x->nv, n = k == 0 ? loop : k == 1 ? full - loop : 1;
		int nv = k == 2 ? (int)rest : x->nv;
		if (n <= 0 || nv <= 0)
			continue;
		for (int u = 0; u < nv; u++) {
			vec[u].q = arena_printf(c->g->arena, "q0 + %d", L * u);
			vec[u].yi = vec[u].q;
			vec[u].valid = k && u == nv - 1 ? tailv : L;
		}
		if (k == 0 && n > 1) {
			ec_line(&c->c, "for (long q0 = 0; q0 < %lld; q0 += %d)", (long long)(n * x->nv * L), x->nv * L);
		} else {
			ec_line(&c->c, "{");
			ec_line(&c->c, "const long q0 = %lld;", (long long)(from * L));
		}
		vx_tile(c, x, np, nv, vec);
		if (!(k == 0 && n > 1))
			ec_line(&c->c, "}");
	}
}

/* Tiles of whole output rows (VO_ROWS): per row the vectors that hold
 * outputs (ox < OW), tr rows a tile, masks constant. */
static void vx_rows_tile(Ctx *c, const Vx *x, int np, int tr, int64_t k0, int64_t nk)
{
	const Geom *G = &x->v->G;
	VxVec vec[VX_NV];
	int nv = 0, L = x->L;
	for (int r = 0; r < tr; r++)
		for (int64_t k = k0; k < k0 + nk; k++, nv++) {
			vec[nv].q = arena_printf(c->g->arena, "(oy0 + %d) * %lld + %lld", r, (long long)x->OWp, (long long)(L * k));
			vec[nv].yi = arena_printf(c->g->arena, "(oy0 + %d) * %lld + %lld", r, (long long)G->out[2],
			                          (long long)(L * k));
			vec[nv].valid = G->out[2] - L * k >= L ? L : (int)(G->out[2] - L * k);
		}
	vx_tile(c, x, np, nv, vec);
}

static void vx_rows(Ctx *c, const Vx *x, int np)
{
	const Geom *G = &x->v->G;
	int64_t OH = G->out[1], kv = (G->out[2] + x->L - 1) / x->L;
	if (kv > VX_NV) {
		ec_line(&c->c, "for (long oy0 = 0; oy0 < %lld; oy0++) {", (long long)OH);
		for (int64_t k0 = 0; k0 < kv; k0 += VX_NV)
			vx_rows_tile(c, x, np, 1, k0, kv - k0 < VX_NV ? kv - k0 : VX_NV);
		ec_line(&c->c, "}");
		return;
	}
	int tr = (int)(VX_NV / kv);
	int64_t full = OH / tr * tr;
	if (full) {
		ec_line(&c->c, "for (long oy0 = 0; oy0 < %lld; oy0 += %d)", (long long)full, tr);
		vx_rows_tile(c, x, np, tr, 0, kv);
	}
	if (full < OH) {
		ec_line(&c->c, "{");
		ec_line(&c->c, "const long oy0 = %lld;", (long long)full);
		vx_rows_tile(c, x, np, (int)(OH - full), 0, kv);
		ec_line(&c->c, "}");
	}
}

/* All output positions of np channels from m0, then the row copies out
 * of the buffer (VO_TBUF). */
void qc_vx_positions(Ctx *c, const Vx *x, int np)
{
	const QConv *v = x->v;
	if (x->out == VO_ROWS) {
		vx_rows(c, x, np);
		return;
	}
	vx_flat(c, x, np);
	if (x->out == VO_TBUF) {
		int64_t ysz = (int64_t)ir_dtype_size(v->o.yt);
		ec_line(&c->c, "for (long p = 0; p < %d; p++)", np);
		ec_line(&c->c, "\tfor (long oy = 0; oy < %lld; oy++)", (long long)v->G.out[1]);
		ec_line(&c->c, "\t\tmemcpy(yg + (m0 + p) * %lld + oy * %lld, ts + (p * %lld + oy * %lld) * %lld, %lld);",
		        (long long)v->G.outsz, (long long)v->G.out[2], (long long)x->QR, (long long)x->OWp, (long long)ysz,
		        (long long)(v->G.out[2] * ysz));
	}
}

void qc_vx_chunk(Ctx *c, const void *arg, int64_t np)
{
	qc_vx_positions(c, ((const VxArg *)arg)->x, (int)np);
}

/* ---- Gemm, MatMul with constant B: AVX-512 VNNI and AVX2 ----
 * Columns in the vector: a row's 4 activation bytes (VNNI) or 2 int16
 * (AVX2, vpmaddwd) broadcast, B as blocks [L-column block][k group][L
 * columns][group], np rows times nv blocks times ns independent partial
 * sums over k (one row, the batch-1 case, needs the splits to keep
 * enough dot products in flight).  Rows are copied into scratch first,
 * flipped to u8 (VNNI) or widened to int16 (AVX2; u16 - 32768), padded
 * to a multiple of the group (pads meet zero weights). */
typedef struct {
	QMm *q;
	const Isa *I;         /* AVX2 or SSE2; NULL: VNNI */
	int avx2, L, G;       /* int16 pairs; lanes, k group */
	int64_t KG, KQ, NB, NBF, Npad;  /* k padded, k groups, column blocks (full ones), columns padded */
	int32_t off;          /* added to the activations in scratch */
	int np, nv, ns;
	int rform;
} Vg;

int qc_vnni_mm_ok(const QMm *q)
{
	if (!q->constb || q->o.acc64 || (q->o.xt != DT_I8 && q->o.xt != DT_U8))
		return 0;
	for (int64_t i = 0; i < q->nbb * q->K * q->N; i++)
		if (q->w[i] < -128 || q->w[i] > 127)
			return 0;
	return 1;
}

int qc_avx2_mm_ok(const QMm *q)
{
	if (!q->constb || q->o.acc64)
		return 0;
	for (int64_t i = 0; i < q->nbb * q->K * q->N; i++)
		if (q->w[i] < -32768 || q->w[i] > 32767)
			return 0;
	return 1;
}

static Vg vg_geom(QMm *q, const Isa *I)
{
	Vg v = {0};
	int avx2 = I != NULL;
	v.q = q;
	v.I = I;
	v.avx2 = avx2;
	v.L = I ? I->L : 16;
	v.G = avx2 ? 2 : 4;
	v.KG = (q->K + v.G - 1) / v.G * v.G;
	v.KQ = v.KG / v.G;
	v.NB = (q->N + v.L - 1) / v.L;
	v.NBF = q->N / v.L;
	v.Npad = v.NB * v.L;
	v.off = avx2 ? (q->o.xt == DT_U16 ? -32768 : 0) : q->o.xt == DT_I8 ? 128 : 0;
	int acc = avx2 ? VY_ACC : VX_ACC;
	v.nv = (int)(v.NB < 4 ? v.NB : 4);
	v.ns = 1;
	v.np = 1;
	if (q->M == 1) {
		v.ns = acc / v.nv;
		v.ns = v.ns > v.KQ ? (int)v.KQ : v.ns;
		v.ns = v.ns < 1 ? 1 : v.ns;
	} else {
		v.np = (int)(q->M < acc / v.nv ? q->M : acc / v.nv);
	}
	v.rform = qc_rform_of(&q->o);
	return v;
}

/* Per-lane rescale tables (padded): n<id>_vm, _vn, _vh (2^(n-1)). */
static void put_lane_rescale(Ctx *c, const QOut *o, int form, int64_t npad)
{
	int32_t *t = calloc((size_t)npad * 3, sizeof *t);
	for (int64_t j = 0; j < npad; j++) {
		Rescale r = o->r[j < o->M ? j : 0];
		t[j] = r.m;
		t[npad + j] = r.n;
		t[2 * npad + j] = r.n > 0 && r.n <= 31 ? (int32_t)1 << (r.n - 1) : 0;
	}
	if (form == RF_Q31 || form == RF_ANY)
		qc_put_i32(c, arena_printf(c->g->arena, "n%d_vm", c->id), DT_I32, t, npad);
	qc_put_i32(c, arena_printf(c->g->arena, "n%d_vn", c->id), DT_I32, t + npad, npad);
	if (form == RF_SHIFT || form == RF_Q31)
		qc_put_i32(c, arena_printf(c->g->arena, "n%d_vh", c->id), DT_I32, t + 2 * npad, npad);
	free(t);
}

/* r = potc_rescale of vector acc with the rescales of columns j..
 * (SSE2: lane by lane but for one Rescale). */
static void lane_rescale(Ctx *c, const Vg *v, const char *r, const char *acc, const char *j)
{
	const QOut *o = &v->q->o;
	int id = c->id, L = v->L;
	const char *P = v->I ? v->I->p : "_mm512", *T = v->I ? v->I->ty : "__m512i", *H = v->I ? v->I->h : "q512";
	const char *ld = v->I ? v->I->ld : "_mm512_loadu_si512((const void *)";
	int form = v->I && v->I->sse2 && v->rform != RF_ONE ? RF_ANY : v->rform;
	switch (form) {
	case RF_ONE:
		ec_line(&c->c, "const %s %s = potc_%s_rescale(%s, %ld, %d);", T, r, H, acc, (long)o->r[0].m, o->r[0].n);
		break;
	case RF_SHIFT:
		ec_line(&c->c, "const %s %s = potc_%s_shr(%s, %s(n%d_vn + %s)), %s(n%d_vh + %s)));", T, r, H, acc, ld, id, j,
		        ld, id, j);
		break;
	case RF_Q31:
		ec_line(&c->c, "const %s %s = potc_%s_shr(potc_%s_mulq31(%s, %s(n%d_vm + %s))), %s(n%d_vn + %s)), "
		        "%s(n%d_vh + %s)));", T, r, H, H, acc, ld, id, j, ld, id, j, ld, id, j);
		break;
	default:
		ec_line(&c->c, "int32_t l_[%d];", L);
		ec_line(&c->c, "%s_storeu_si%d((void *)l_, %s);", P, L * 32, acc);
		ec_line(&c->c, "for (int e = 0; e < %d; e++)", L);
		ec_line(&c->c, "\tl_[e] = potc_rescale(l_[e], n%d_vm[%s + e], n%d_vn[%s + e]);", id, j, id, j);
		ec_line(&c->c, "const %s %s = %s(l_));", T, r, ld);
		break;
	}
}

/* B - zw as [batch][column block][k group][L][G] (int8 or int16). */
static void vg_put_weights(Ctx *c, const Vg *v, const char *name)
{
	const QMm *q = v->q;
	int L = v->L, g = v->G;
	int64_t per = v->Npad * v->KG, n = q->nbb * per;
	int32_t *w = calloc((size_t)(n > 0 ? n : 1), sizeof *w);
	for (int64_t bb = 0; bb < q->nbb; bb++)
		for (int64_t k = 0; k < q->K; k++)
			for (int64_t j = 0; j < q->N; j++)
				w[bb * per + ((j / L * v->KQ + k / g) * L + j % L) * g + k % g] = q->w[(bb * q->K + k) * q->N + j];
	ec_line(&c->c, "/* B - zw as [%lld][column block %lld][k group %lld][%d][%d] */", (long long)q->nbb, (long long)v->NB,
	        (long long)v->KQ, L, g);
	qc_put_i32(c, name, v->avx2 ? DT_I16 : DT_I8, w, n);
	free(w);
}

static void put_mm_bias(Ctx *c, const QMm *q, const char *name, int64_t k, int64_t npad)
{
	int64_t n = q->nbb * npad;
	int64_t *b = calloc((size_t)(n > 0 ? n : 1), sizeof *b), *sw = calloc((size_t)(n > 0 ? n : 1), sizeof *sw);
	for (int64_t bb = 0; bb < q->nbb; bb++)
		for (int64_t j = 0; j < q->N; j++) {
			b[bb * npad + j] = q->bias[bb * q->N + j];
			sw[bb * npad + j] = q->sumw[bb * q->N + j];
		}
	qc_put_bias(c, &q->o, name, b, sw, k, n);
	free(b);
	free(sw);
}

/* Rows i0.. (np of them) times blocks nb0.. (nv of them); the last
 * block stores `last` columns. */
static void vg_tile(Ctx *c, const Vg *v, int np, int nv, int last)
{
	const QMm *q = v->q;
	const QOut *o = &q->o;
	int ns = v->ns, L = v->L, x2 = v->avx2;
	const char *T = x2 ? v->I->ty : "__m512i", *P = x2 ? v->I->p : "_mm512";
	const char *ld = x2 ? v->I->ld : "_mm512_loadu_si512((const void *)";
	Str s = {0};
	ec_line(&c->c, "{");
	for (int p = 0; p < np; p++)
		for (int u = 0; u < nv; u++)
			for (int k = 0; k < ns; k++) {
				if (k)
					str_printf(&s, ", a%d_%d_%d = %s_setzero_si%d()", p, u, k, P, L * 32);
				else
					str_printf(&s, "%sa%d_%d_0 = %s(bb + (nb0 + %d) * %d))", s.len ? ", " : arena_printf(c->g->arena,
					           "%s ", T), p, u, ld, u, L);
			}
	ec_line(&c->c, "%s;", s.s);
	str_free(&s);
	int64_t full = v->KQ / ns * ns, bstep = (int64_t)L * v->G * (x2 ? 2 : 1);
	for (int tail = 0; tail < 2; tail++) {
		int64_t from = tail ? full : 0, to = tail ? v->KQ : full;
		int step = tail ? 1 : ns;
		if (from >= to)
			continue;
		ec_line(&c->c, "for (long k = %lld; k < %lld; k += %d) {", (long long)from, (long long)to, step);
		for (int k = 0; k < step; k++)
			for (int u = 0; u < nv; u++)
				ec_line(&c->c, "const %s w%d_%d = %s((const char *)wb + ((nb0 + %d) * %lld + k + %d) * %lld));", T, u, k,
				        ld, u, (long long)v->KQ, k, (long long)bstep);
		for (int p = 0; p < np; p++)
			for (int k = 0; k < step; k++) {
				ec_line(&c->c, "{");
				ec_line(&c->c, "const %s b = %s_set1_epi32(potc_q_ld32(abp + (i0 + %d) * %lld + (k + %d) * 4));", T,
				        P, p, (long long)(v->KG * (x2 ? 2 : 1)), k);
				for (int u = 0; u < nv; u++) {
					if (x2)
						ec_line(&c->c, "a%d_%d_%d = %s_add_epi32(a%d_%d_%d, %s_madd_epi16(b, w%d_%d));", p, u, k, P, p,
						        u, k, P, u, k);
					else
						ec_line(&c->c, "a%d_%d_%d = _mm512_dpbusd_epi32(a%d_%d_%d, b, w%d_%d);", p, u, k, p, u, k, u, k);
				}
				ec_line(&c->c, "}");
			}
		ec_line(&c->c, "}");
	}
	OutPlan op = x2 ? qc_out_plan256(o) : qc_out_plan(o);
	for (int p = 0; p < np; p++)
		for (int u = 0; u < nv; u++) {
			ec_line(&c->c, "{");
			for (int k = 1; k < ns; k++)
				ec_line(&c->c, "a%d_%d_0 = %s_add_epi32(a%d_%d_0, a%d_%d_%d);", p, u, P, p, u, p, u, k);
			ec_line(&c->c, "const long j = (nb0 + %d) * %d;", u, L);
			lane_rescale(c, v, "t", arena_printf(c->g->arena, "a%d_%d_0", p, u), "j");
			ec_line(&c->c, "%s r = t;", T);
			const char *dst = arena_printf(c->g->arena, "py + (i0 + %d) * %lld + j", p, (long long)q->N);
			int valid = u == nv - 1 ? last : L;
			if (x2) {
				qc_out256(c, v->I, &op, "r");
				qc_store256(c, v->I, &op, "r", dst, valid);
			} else {
				qc_out512(c, &op, "r");
				qc_store512(c, &op, "r", dst, valid, NULL);
			}
			ec_line(&c->c, "}");
		}
	ec_line(&c->c, "}");
}

/* var over [0, total) in chunks of at most step, as even as possible,
 * each printed by fn(size). */
void qc_even_chunks(Ctx *c, const char *var, int64_t total, int64_t step, ChunkFn fn, const void *arg)
{
	if (total <= 0)
		return;
	int64_t n = (total + step - 1) / step, big = (total + n - 1) / n, nbig = total - n * (big - 1);
	for (int k = 0; k < 2; k++) {
		int64_t from = k ? nbig * big : 0, to = k ? total : nbig * big, sz = k ? big - 1 : big;
		if (from >= to || sz <= 0)
			continue;
		if (to - from == sz) {
			ec_line(&c->c, "{");
			ec_line(&c->c, "const long %s = %lld;", var, (long long)from);
		} else {
			ec_line(&c->c, "for (long %s = %lld; %s < %lld; %s += %lld) {", var, (long long)from, var, (long long)to,
			        var, (long long)sz);
		}
		fn(c, arg, sz);
		ec_line(&c->c, "}");
	}
}

typedef struct {
	const Vg *v;
	int np;
} VgArg;

static void vg_blocks(Ctx *c, const void *arg, int64_t nv)
{
	const VgArg *a = arg;
	vg_tile(c, a->v, a->np, (int)nv, a->v->L);
}

/* Full column blocks in chunks, then the partial one. */
static void vg_rows(Ctx *c, const void *arg, int64_t np)
{
	const VgArg *a = arg;
	const Vg *v = a->v;
	VgArg b = {v, (int)np};
	qc_even_chunks(c, "nb0", v->NBF, v->nv, vg_blocks, &b);
	if (v->NBF < v->NB) {
		ec_line(&c->c, "{");
		ec_line(&c->c, "const long nb0 = %lld;", (long long)v->NBF);
		vg_tile(c, v, (int)np, 1, (int)(v->q->N - v->NBF * v->L));
		ec_line(&c->c, "}");
	}
}

void qc_vec_mm(Ctx *c, QMm *q, int64_t scratch, const Isa *I)
{
	int avx2 = I != NULL;
	Vg v = vg_geom(q, I);
	const QOut *o = &q->o;
	char wn[32], bn[32];
	snprintf(wn, sizeof wn, "n%d_wq", c->id);
	snprintf(bn, sizeof bn, "n%d_bq", c->id);
	qc_put_text(c, !I ? qc_q512_text : I->sse2 ? qc_q128_text : qc_q256_text);
	vg_put_weights(c, &v, wn);
	put_mm_bias(c, q, bn, o->zx + v.off, v.Npad);
	if (v.rform != RF_ONE)
		put_lane_rescale(c, o, I && I->sse2 ? RF_ANY : v.rform, v.Npad);
	ec_begin(c, scratch);
	const char *at = avx2 ? "int16_t" : "unsigned char";
	ec_line(&c->c, "%s *const ab = (%s *)(void *)s;", at, at);
	char iy[128] = "0", ia[128] = "0", ib[128] = "0";
	if (q->bn && q->bn->rank) {
		nest_open(c, q->bn);
		nest_index(q->bn, 0, iy, sizeof iy);
		nest_index(q->bn, 1, ia, sizeof ia);
		nest_index(q->bn, 2, ib, sizeof ib);
	} else {
		ec_line(&c->c, "{");
	}
	ec_line(&c->c, "const %s *const pa = %s + %s;", ec_ctype(o->xt), q->a, ia[0] ? ia : "0");
	ec_line(&c->c, "%s *const py = y0 + %s;", ec_ctype(o->yt), iy[0] ? iy : "0");
	ec_line(&c->c, "const long bo = (%s) / %lld;", ib[0] ? ib : "0", (long long)(q->K * q->N));
	ec_line(&c->c, "const %s *const wb = %s + bo * %lld;", avx2 ? "int16_t" : "int8_t", wn, (long long)(v.Npad * v.KG));
	ec_line(&c->c, "const int32_t *const bb = %s + bo * %lld;", bn, (long long)v.Npad);
	ec_line(&c->c, "(void)bo;");
	ec_line(&c->c, "for (long i = 0; i < %lld; i++) {", (long long)q->M);
	if (avx2)
		ec_line(&c->c, "for (long k = 0; k < %lld; k++) ab[i * %lld + k] = (int16_t)((int32_t)pa[i * %lld + k] + %ld);",
		        (long long)q->K, (long long)v.KG, (long long)q->K, (long)v.off);
	else
		ec_line(&c->c, "for (long k = 0; k < %lld; k++) ab[i * %lld + k] = (unsigned char)(pa[i * %lld + k] ^ %d);",
		        (long long)q->K, (long long)v.KG, (long long)q->K, v.off ? 0x80 : 0);
	if (v.KG > q->K)
		ec_line(&c->c, "for (long k = %lld; k < %lld; k++) ab[i * %lld + k] = 0;", (long long)q->K, (long long)v.KG,
		        (long long)v.KG);
	ec_line(&c->c, "}");
	ec_line(&c->c, "{");
	ec_line(&c->c, "const unsigned char *const abp = (const unsigned char *)ab;");
	VgArg a = {&v, 1};
	qc_even_chunks(c, "i0", q->M, v.np, vg_rows, &a);
	ec_line(&c->c, "}");
	if (q->bn && q->bn->rank)
		nest_close(c, q->bn);
	else
		ec_line(&c->c, "}");
	ec_end(c);
}

int64_t qc_vec_mm_scratch(QMm *q, const Isa *I)
{
	Vg v = vg_geom(q, I);
	return q->M * v.KG * (I ? 2 : 1) + 64;
}
