/* Integer Conv, Gemm and MatMul for power-of-two weights and narrow
 * accumulators (docs/integer-semantics.md, "Power-of-two weights" and
 * "Narrow accumulators"): nodes whose weight Quant has a code (PoT, APoT),
 * or whose QNode has acc_bits in 1..16 or a ktile.  Plain C, bit-identical
 * to ir_qeval_node.
 *
 * PoT/APoT weights stay packed codes; per reduction term the kernel decodes
 * the sign and the exponent(s) and adds or subtracts x shifted left (APoT:
 * two shifted copies), never multiplying an activation by a weight.  Every
 * multiplication these kernels print is index arithmetic by a literal.
 *
 * Accumulators are unsigned (uint16_t for P <= 16, else uint32_t or
 * uint64_t): shifts and sums of unsigned values wrap with defined
 * behaviour, and the bound proof (pass_accbound, or the int32 proof of
 * pass_qlower) guarantees that the true value fits, so the wrapped value
 * read back as signed is the true one.  The read-back is branch-free and
 * free of implementation-defined conversions.
 *
 * Outputs are computed one output channel (Conv) or one row (Gemm) at a
 * time: a wide accumulator per output point in scratch, a tile accumulator
 * beside it; the innermost loop runs along output points (Conv) or columns
 * (Gemm) so that it vectorises with 16-bit lanes.  With -DPOTC_CHECK_ACC a
 * wide shadow of every tile sum is checked against P bits (abort()). */
#include <stdlib.h>
#include <string.h>

#include "emit_impl.h"

typedef struct {
	int code;          /* WQ_* of the weights */
	int cbits;         /* code bits */
	int pw;            /* pack width of the codes: 4, 2, or 0 (one a byte) */
	int P;             /* acc_bits, 0: none */
	int tiled;         /* tile accumulators are used (P in 1..31 or ktile) */
	int check;         /* POTC_CHECK_ACC code is printed (P in 1..31) */
	const char *at;    /* tile accumulator type */
	const char *wt;    /* wide accumulator type */
	const char *ut;    /* type a term is shifted / multiplied in */
	int asz, wsz;      /* their sizes */
	const char *wname; /* the weight array */
	DType wdt;         /* its dtype when uniform */
	int32_t zx;        /* input zero point */
} NK;

static const char *ap(Ctx *c, const char *fmt, int64_t a)
{
	return arena_printf(c->g->arena, fmt, (long long)a);
}

/* Signed value of an unsigned accumulator expression v of type ty
 * (no implementation-defined conversion: only values that fit convert). */
static const char *to_signed(Ctx *c, const char *ty, const char *v)
{
	Arena *A = c->g->arena;
	if (!strcmp(ty, "uint16_t"))
		return arena_printf(A, "((int32_t)(%s) - ((int32_t)((%s) >> 15) << 16))", v, v);
	if (!strcmp(ty, "uint32_t"))
		return arena_printf(A, "((%s) <= 2147483647u ? (int32_t)(%s) : -(int32_t)~(%s) - 1)", v, v, v);
	return arena_printf(A, "((%s) <= (uint64_t)INT64_MAX ? (int64_t)(%s) : -(int64_t)~(%s) - 1)", v, v, v);
}

/* Accumulator types and checks from the QNode and the weight Quant. */
static int nk_init(Ctx *c, NK *k, const Tensor *x, const Tensor *w)
{
	const QNode *q = c->n->q;
	memset(k, 0, sizeof *k);
	if (!x->q || !w->q || !ec_isint(x->dtype) || ir_dtype_size(x->dtype) > 2)
		return ec_fail(c, "input and weights must be quantized 8- or 16-bit integers");
	for (int i = 1; i < x->q->nch; i++)
		if (x->q->zp[i] != x->q->zp[0])
			return ec_fail(c, "input has a zero point per channel");
	k->zx = x->q->zp[0];
	k->code = w->q->code;
	k->cbits = w->q->bits;
	if (k->code != WQ_UNIFORM) {
		if (k->cbits < 2 || k->cbits > 8)
			return ec_fail(c, "weight codes of %d bits (2..8 supported)", k->cbits);
		for (int i = 0; i < w->q->nch; i++)
			if (w->q->zp[i])
				return ec_fail(c, "PoT/APoT weights with a zero point");
		k->pw = ec_pack_width(w->q);
	}
	k->P = q->acc_bits > 0 && q->acc_bits < 32 ? q->acc_bits : 0;
	k->tiled = k->P || q->ktile > 0;
	k->check = k->P > 0;
	k->wt = q->acc64 ? "uint64_t" : "uint32_t";
	k->wsz = q->acc64 ? 8 : 4;
	if (k->P && k->P <= 16)
		k->at = "uint16_t", k->asz = 2;
	else if (k->P)
		k->at = "uint32_t", k->asz = 4;
	else
		k->at = k->wt, k->asz = k->wsz;
	k->ut = k->asz == 8 ? "uint64_t" : "uint32_t";
	if (q->r == NULL || q->nr < 1)
		return ec_fail(c, "internal: QNode without rescales");
	return 0;
}

/* Print the weights, element (ch, kk) at ch * K + kk when chmajor else
 * kk * nch + ch; val(i) reads the source element of (ch, kk). */
static void nk_weights(Ctx *c, NK *k, const Tensor *w, int64_t nch, int64_t K, int chmajor, int srcchmajor)
{
	int64_t n = nch * K;
	k->wname = arena_printf(c->g->arena, "%s_nw%d", c->pfx, c->id);
	int32_t *v = calloc((size_t)(n ? n : 1), sizeof *v);
	int32_t lo = 0, hi = 0;
	if (!v) {
		ec_fail(c, "out of memory");
		return;
	}
	for (int64_t ch = 0; ch < nch; ch++)
		for (int64_t kk = 0; kk < K; kk++) {
			int64_t src = srcchmajor ? ch * K + kk : kk * nch + ch;
			int64_t dst = chmajor ? ch * K + kk : kk * nch + ch;
			int32_t e = (int32_t)ir_get_i64(w, src);
			if (k->code == WQ_UNIFORM)
				e -= w->q->zp[ir_quant_channel(w, src)];
			v[dst] = e;
			lo = e < lo ? e : lo;
			hi = e > hi ? e : hi;
		}
	if (k->code != WQ_UNIFORM) {
		uint8_t *b = malloc((size_t)(n ? n : 1));
		for (int64_t i = 0; b && i < n; i++)
			b[i] = (uint8_t)v[i];
		if (!b)
			ec_fail(c, "out of memory");
		else if (k->pw)
			ec_array_packed_data(c, k->wname, DT_U8, k->pw, n, b);
		else
			ec_array(c, k->wname, DT_U8, n, b);
		free(b);
	} else {
		k->wdt = lo >= -128 && hi <= 127 ? DT_I8 : lo >= -32768 && hi <= 32767 ? DT_I16 : DT_I32;
		void *b = malloc((size_t)(n ? n : 1) * 4);
		for (int64_t i = 0; b && i < n; i++) {
			if (k->wdt == DT_I8)
				((int8_t *)b)[i] = (int8_t)v[i];
			else if (k->wdt == DT_I16)
				((int16_t *)b)[i] = (int16_t)v[i];
			else
				((int32_t *)b)[i] = v[i];
		}
		if (!b)
			ec_fail(c, "out of memory");
		else
			ec_array(c, k->wname, k->wdt, n, b);
		free(b);
	}
	free(v);
}

/* Per-channel rescales: literals when there is one, else two arrays. */
static void nk_rescales(Ctx *c, int64_t nch, const char **rm, const char **rn, const char *ch)
{
	const QNode *q = c->n->q;
	if (q->nr == 1) {
		*rm = q->r[0].m == INT32_MIN ? "INT32_MIN" : ap(c, "%lld", q->r[0].m);
		*rn = ap(c, "%lld", q->r[0].n);
		return;
	}
	const char *m = arena_printf(c->g->arena, "%s_nrm%d", c->pfx, c->id);
	const char *n = arena_printf(c->g->arena, "%s_nrn%d", c->pfx, c->id);
	int32_t *mv = malloc((size_t)nch * 4), *nv = malloc((size_t)nch * 4);
	for (int64_t i = 0; mv && nv && i < nch; i++) {
		mv[i] = q->r[i].m;
		nv[i] = q->r[i].n;
	}
	if (mv && nv) {
		ec_array(c, m, DT_I32, nch, mv);
		ec_array(c, n, DT_I32, nch, nv);
	}
	free(mv);
	free(nv);
	*rm = arena_printf(c->g->arena, "%s[%s]", m, ch);
	*rn = arena_printf(c->g->arena, "%s[%s]", n, ch);
}

/* Decode the weight at index expression idx into loop-invariant (Conv)
 * or per-lane (Gemm) constants: PoT/APoT shifts and masks, or the
 * centred integer.  Shift counts stay in [0, 31] (a masked-out term
 * shifts by 31).  With 16-bit tiles the masks are 16-bit and mk1/mk2 keep
 * the bits of x that survive the shift, so that the shifted value fits
 * 16 bits and the arithmetic stays in 16-bit lanes without overflowing
 * int. */
static void nk_decode(Ctx *c, const NK *k, const char *idx, int lanes)
{
	Out *o = &c->c;
	const char *t = k->asz == 2 ? "uint16_t" : k->ut;
	if (k->code == WQ_UNIFORM) {
		ec_line(o, "const int32_t wk = %s[%s];", k->wname, idx);
		return;
	}
	const char *rd = k->pw == 4 ? "pk_u4" : k->pw == 2 ? "pk_u2" : NULL;
	if (rd)
		ec_line(o, "const int32_t cw = %s(%s, %s);", rd, k->wname, idx);
	else
		ec_line(o, "const int32_t cw = (int32_t)%s[%s];", k->wname, idx);
	ec_line(o, "const int32_t mi = cw & %d;", (1 << (k->cbits - 1)) - 1);
	if (!lanes)
		return;
	ec_line(o, "const %s nm = (%s)(0u - (uint32_t)(cw >> %d & 1));", t, t, k->cbits - 1);
	if (k->code == WQ_POT)
		ec_line(o, "const int sh1 = (mi + 31) & 31;");
	else /* APoT: m = 2j -> 2^j; m = 1 -> 1; m = 2j + 1 > 1 -> 2^j + 2^(j-1) */
		ec_line(o, "const int sh1 = mi >> 1, sh2 = ((mi >> 1) + 31) & 31;");
	ec_line(o, "const %s zm1 = (%s)(0u - (uint32_t)(mi != 0));", t, t);
	if (k->code == WQ_APOT)
		ec_line(o, "const %s zm2 = (%s)(0u - (uint32_t)((mi & 1) && mi > 1));", t, t);
	if (k->asz == 2) {
		ec_line(o, "const int mk1 = 0xffff >> sh1;");
		if (k->code == WQ_APOT)
			ec_line(o, "const int mk2 = 0xffff >> sh2;");
	}
}

/* The term of the centred input xv as an expression of the tile's
 * arithmetic: shifts and masks for codes, a product for uniform weights
 * (16-bit tiles: modulo 2^16, in unsigned arithmetic). */
static const char *nk_term(Ctx *c, const NK *k)
{
	Arena *A = c->g->arena;
	int h = k->asz == 2;
	if (k->code == WQ_UNIFORM)
		return h ? "(uint16_t)((uint32_t)(uint16_t)xv * (uint32_t)(uint16_t)wk)"
		         : arena_printf(A, "(%s)xv * (%s)wk", k->ut, k->ut);
	const char *s1 = h ? "((u & mk1) << sh1 & zm1)" : "((u << sh1) & zm1)";
	const char *s2 = h ? "((u & mk2) << sh2 & zm2)" : "((u << sh2) & zm2)";
	if (k->code == WQ_POT)
		return arena_printf(A, "(%s)((%s ^ nm) - nm)", h ? "uint16_t" : k->ut, s1);
	return arena_printf(A, "(%s)(((%s)(%s + %s) ^ nm) - nm)", h ? "uint16_t" : k->ut, h ? "uint16_t" : k->ut, s1,
	                    s2);
}

/* With POTC_CHECK_ACC: the shadow sum sa[p] += the true term (computed
 * again at full width: a 16-bit term may have wrapped), checked. */
static void nk_shadow(Ctx *c, const NK *k, const char *p)
{
	if (!k->check)
		return;
	Out *o = &c->c;
	const char *t;
	if (k->code == WQ_UNIFORM)
		t = "(int64_t)xv * wk";
	else if (k->code == WQ_POT)
		t = "(int64_t)((uint64_t)(int64_t)xv << sh1 & (0 - (uint64_t)(mi != 0)))";
	else
		t = "(int64_t)(((uint64_t)(int64_t)xv << sh1 & (0 - (uint64_t)(mi != 0))) + "
		    "((uint64_t)(int64_t)xv << sh2 & (0 - (uint64_t)((mi & 1) && mi > 1))))";
	ec_line(o, "#ifdef POTC_CHECK_ACC");
	if (k->code == WQ_UNIFORM)
		ec_line(o, "sa[%s] += %s;", p, t);
	else
		ec_line(o, "sa[%s] += cw >> %d & 1 ? -%s : %s;", p, k->cbits - 1, t, t);
	ec_line(o, "if (sa[%s] < -%lldLL || sa[%s] > %lldLL)", p, 1LL << (k->P - 1), p, (1LL << (k->P - 1)) - 1);
	ec_line(o, "\tabort();");
	ec_line(o, "#endif");
}

static void nk_add(Ctx *c, const NK *k, const char *tile, const char *xe, const char *p)
{
	Out *o = &c->c;
	const char *t = k->asz == 2 ? "uint16_t" : k->ut;
	ec_line(o, "const int32_t xv = (int32_t)%s - %d;", xe, (int)k->zx);
	if (k->code != WQ_UNIFORM)
		ec_line(o, "const %s u = (%s)xv;", t, t);
	ec_line(o, "const %s d = %s;", t, nk_term(c, k));
	ec_line(o, "%s = (%s)(%s + d);", tile, k->at, tile);
	nk_shadow(c, k, p);
}

/* Shifts of APoT/PoT level m: e1, and e2 (-1: one term). */
static void nk_level(const NK *k, int m, int *e1, int *e2)
{
	*e2 = -1;
	if (k->code == WQ_POT || m == 1) {
		*e1 = k->code == WQ_POT ? m - 1 : 0;
		return;
	}
	*e1 = m >> 1;
	if (m & 1)
		*e2 = *e1 - 1;
}

/* `for (...) { tile += term(xe) }` with the weight the same for the whole
 * loop (Conv: one term of the reduction over a run of output points).
 * For codes, a switch on the magnitude index picks a loop whose shifts are
 * literals (shifts by a constant keep gcc's vector code in 16-bit lanes; a
 * variable count made it widen to 32), and the sign picks an adding or a
 * subtracting loop (a negation mask (d ^ nm) - nm became a vpmullw by
 * +-1). */
static void nk_loop(Ctx *c, const NK *k, const char *forline, const char *tile, const char *xe, const char *p)
{
	Out *o = &c->c;
	if (k->code == WQ_UNIFORM) {
		ec_line(o, "%s", forline);
		nk_add(c, k, tile, xe, p);
		ec_line(o, "}");
		return;
	}
	int h = k->asz == 2;
	const char *t = h ? "uint16_t" : k->ut;
	ec_line(o, "switch (mi) {");
	for (int m = 1; m < 1 << (k->cbits - 1); m++) {
		int e[2];
		nk_level(k, m, &e[0], &e[1]);
		if (e[0] >= k->asz * 8)
			continue; /* 0 modulo the register width (and a proof could not hold) */
		Str wide = {0};
		char tm[2][64];
		int nt = 0;
		for (; nt < 2 && e[nt] >= 0; nt++) {
			if (h)
				snprintf(tm[nt], sizeof tm[nt], "(uint16_t)((u & 0x%x) << %d)", 0xffff >> e[nt], e[nt]);
			else
				snprintf(tm[nt], sizeof tm[nt], "(u << %d)", e[nt]);
			str_printf(&wide, "%s((uint64_t)(int64_t)xv << %d)", nt ? " + " : "", e[nt]);
		}
		ec_line(o, "case %d:", m);
		for (int neg = 1; neg >= 0; neg--) {
			ec_line(o, neg ? "if (cw >> %d & 1) {" : "} else {", k->cbits - 1);
			/* APoT's second shifted copy in a loop of its own: gcc folds
			 * the sum of two copies in one loop into a multiply by 3 */
			for (int i = 1; i < nt; i++) {
				ec_line(o, "%s", forline);
				ec_line(o, "const %s u = (%s)((int32_t)%s - %d);", t, t, xe, (int)k->zx);
				ec_line(o, "%s = (%s)(%s %c %s);", tile, k->at, tile, neg ? '-' : '+', tm[i]);
				ec_line(o, "}");
			}
			ec_line(o, "%s", forline);
			ec_line(o, "const int32_t xv = (int32_t)%s - %d;", xe, (int)k->zx);
			ec_line(o, "const %s u = (%s)xv;", t, t);
			ec_line(o, "%s = (%s)(%s %c %s);", tile, k->at, tile, neg ? '-' : '+', tm[0]);
			if (k->check) {
				const char *v = to_signed(c, "uint64_t", arena_printf(c->g->arena, "(%s)", wide.s));
				ec_line(o, "#ifdef POTC_CHECK_ACC");
				ec_line(o, "sa[%s] %c= %s;", p, neg ? '-' : '+', v);
				ec_line(o, "if (sa[%s] < -%lldLL || sa[%s] > %lldLL)", p, 1LL << (k->P - 1), p,
				        (1LL << (k->P - 1)) - 1);
				ec_line(o, "\tabort();");
				ec_line(o, "#endif");
			}
			ec_line(o, "}");
		}
		ec_line(o, "}");
		ec_line(o, "break;");
		str_free(&wide);
	}
	ec_line(o, "default:");
	ec_line(o, "break;");
	ec_line(o, "}");
}

/* Clear the tile (and its shadow) over n points. */
static void nk_tile_clear(Ctx *c, const NK *k, int64_t n)
{
	ec_line(&c->c, "for (long p = 0; p < %lld; p++)", (long long)n);
	ec_line(&c->c, "\tta[p] = 0;");
	if (k->check) {
		ec_line(&c->c, "#ifdef POTC_CHECK_ACC");
		ec_line(&c->c, "for (long p = 0; p < %lld; p++)", (long long)n);
		ec_line(&c->c, "\tsa[p] = 0;");
		ec_line(&c->c, "#endif");
	}
}

/* wa[p] += signed(ta[p]): the tile's partial sum joins the wide sum. */
static void nk_tile_flush(Ctx *c, const NK *k, int64_t n)
{
	ec_line(&c->c, "for (long p = 0; p < %lld; p++)", (long long)n);
	ec_line(&c->c, "\twa[p] += (%s)%s;", k->wt, to_signed(c, k->at, "ta[p]"));
}

/* abort() for the checks: stdlib.h only in a checking build. */
static void nk_check_include(Ctx *c, const NK *k)
{
	if (!k->check)
		return;
	ec_line(&c->c, "#ifdef POTC_CHECK_ACC");
	ec_line(&c->c, "#include <stdlib.h>");
	ec_line(&c->c, "#endif");
}

/* Scratch pointers and the shadow array. */
static void nk_locals(Ctx *c, const NK *k, int64_t n)
{
	ec_line(&c->c, "%s *restrict wa = (%s *)(void *)s;", k->wt, k->wt);
	if (k->tiled)
		ec_line(&c->c, "%s *restrict ta = (%s *)(void *)(wa + %lld);", k->at, k->at, (long long)n);
	else
		ec_line(&c->c, "%s *restrict ta = wa;", k->wt);
	if (k->check) {
		ec_line(&c->c, "#ifdef POTC_CHECK_ACC");
		ec_line(&c->c, "static int64_t sa[%lld];", (long long)n);
		ec_line(&c->c, "#endif");
	}
}

static int64_t nk_scratch(const NK *k, int64_t n)
{
	return n * (k->wsz + (k->tiled ? k->asz : 0));
}

/* y[p] = out(R(signed(wa[p]))) for n points. */
static void nk_store(Ctx *c, const NK *k, const char *dst, int64_t n, const char *rm, const char *rn, const char *ch)
{
	const QNode *q = c->n->q;
	const Tensor *y = ec_tout(c, 0);
	(void)ch;
	ec_line(&c->c, "for (long p = 0; p < %lld; p++) {", (long long)n);
	ec_line(&c->c, "const %s acc = %s;", q->acc64 ? "int64_t" : "int32_t", to_signed(c, k->wt, "wa[p]"));
	ec_line(&c->c, "%s = (%s)potc_out(potc_rescale%s(acc, %s, %s), %d, %d, %d);", dst, ec_ctype(y->dtype),
	        q->acc64 ? "64" : "", rm, rn, (int)y->q->zp[0], (int)q->lo, (int)q->hi);
	ec_line(&c->c, "}");
}

/* The bias into the wide sums (or 0). */
static void nk_bias(Ctx *c, const NK *k, const char *bname, const char *bidx, int64_t n)
{
	ec_line(&c->c, "for (long p = 0; p < %lld; p++)", (long long)n);
	if (bname)
		ec_line(&c->c, "\twa[p] = (%s)(int64_t)%s[%s];", k->wt, bname, bidx);
	else
		ec_line(&c->c, "\twa[p] = 0;");
}

/* ---- Conv, 2-D stride 1: flat planes ----
 * The input plane is copied into scratch with its pads (value zp: xv = 0)
 * and the outputs are computed on a grid as wide as the padded row (the
 * extra columns are discarded), so that each kernel tap is one contiguous
 * loop over OH * Wp points: long vectors even on 14x14 planes.  Every
 * extra column sums real terms of the same weights, so it stays inside
 * the P-bit bound like the real ones (the check does not fire on it). */

typedef struct {
	int64_t N, C, M, cg, mg, K, kt, ksz;
	int64_t Hp, Wp, OH, OW, L, slack;
	const char *bname, *rm, *rn;
} Flat;

static int flat_ok(const WinGeom *G)
{
	return G->in[0] == 1 && G->out[0] == 1 && G->k[0] == 1 && G->s[1] == 1 && G->s[2] == 1;
}

static void conv_flat(Ctx *c, NK *k, const WinGeom *G, Flat *F)
{
	Out *o = &c->c;
	const Tensor *x = ec_tin(c, 0);
	const char *xt = ec_ctype(x->dtype);
	int64_t xsz = (int64_t)ir_dtype_size(x->dtype), plane = F->Hp * F->Wp;
	int64_t acc = F->L * (k->wsz + (k->tiled ? k->asz : 0));
	ec_begin(c, acc + (F->C * plane + F->slack) * xsz);
	const char *xn = ec_x(c, 0);
	nk_locals(c, k, F->L);
	ec_line(o, "%s *restrict xp = (%s *)(void *)((unsigned char *)(void *)s + %lld);", xt, xt, (long long)acc);
	ec_line(o, "for (long n = 0; n < %lld; n++) {", (long long)F->N);
	/* the padded copy of batch n */
	ec_line(o, "for (long i = 0; i < %lld; i++)", (long long)(F->C * plane + F->slack));
	ec_line(o, "\txp[i] = (%s)%d;", xt, (int)k->zx);
	ec_line(o, "for (long ch = 0; ch < %lld; ch++)", (long long)F->C);
	ec_line(o, "for (long r = 0; r < %lld; r++)", (long long)G->in[1]);
	ec_line(o, "\tmemcpy(xp + ch * %lld + (r + %d) * %lld + %d, %s + ((n * %lld + ch) * %lld + r) * %lld, %lld);",
	        (long long)plane, G->pb[1], (long long)F->Wp, G->pb[2], xn, (long long)F->C, (long long)G->in[1],
	        (long long)G->in[2], (long long)(G->in[2] * xsz));
	ec_line(o, "for (long m = 0; m < %lld; m++) {", (long long)F->M);
	ec_line(o, "const long xg = m / %lld * %lld;", (long long)F->mg, (long long)(F->cg * plane));
	nk_bias(c, k, F->bname, "m", F->L);
	if (k->tiled) {
		ec_line(o, "for (long k0 = 0; k0 < %lld; k0 += %lld) {", (long long)F->K, (long long)F->kt);
		ec_line(o, "const long k1 = k0 + %lld < %lld ? k0 + %lld : %lld;", (long long)F->kt, (long long)F->K,
		        (long long)F->kt, (long long)F->K);
		nk_tile_clear(c, k, F->L);
		ec_line(o, "for (long k = k0; k < k1; k++) {");
	} else {
		ec_line(o, "for (long k = 0; k < %lld; k++) {", (long long)F->K);
	}
	ec_line(o, "const long ci = k / %lld, r = k %% %lld;", (long long)F->ksz, (long long)F->ksz);
	nk_decode(c, k, ap(c, "m * %lld + k", F->K), 0);
	ec_line(o, "const long rb = xg + ci * %lld + r / %d * %lld + r %% %d * %d;", (long long)plane, G->k[2],
	        (long long)(G->d[1] * F->Wp), G->k[2], G->d[2]);
	nk_loop(c, k, ap(c, "for (long p = 0; p < %lld; p++) {", F->L), "ta[p]", "xp[rb + p]", "p");
	ec_line(o, "}");
	if (k->tiled) {
		nk_tile_flush(c, k, F->L);
		ec_line(o, "}");
	}
	/* the real columns only */
	const QNode *q = c->n->q;
	const Tensor *y = ec_tout(c, 0);
	ec_line(o, "for (long oy = 0; oy < %lld; oy++)", (long long)F->OH);
	ec_line(o, "for (long ox = 0; ox < %lld; ox++) {", (long long)F->OW);
	ec_line(o, "const %s acc = %s;", q->acc64 ? "int64_t" : "int32_t",
	        to_signed(c, k->wt, ap(c, "wa[oy * %lld + ox]", F->Wp)));
	ec_line(o, "y0[((n * %lld + m) * %lld + oy) * %lld + ox] = (%s)potc_out(potc_rescale%s(acc, %s, %s), %d, %d, %d);",
	        (long long)F->M, (long long)F->OH, (long long)F->OW, ec_ctype(y->dtype), q->acc64 ? "64" : "", F->rm,
	        F->rn, (int)y->q->zp[0], (int)q->lo, (int)q->hi);
	ec_line(o, "}");
	ec_line(o, "}");
	ec_line(o, "}");
	ec_end(c);
}

/* ---- Conv ---- */

int eq_narrow_conv(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *w = ec_tin(c, 1), *b = ec_tin(c, 2), *y = ec_tout(c, 0);
	NK k;
	WinGeom G;
	char why[128];
	if (!x || !w || w->kind != TK_CONST)
		return ec_fail(c, "needs constant weights");
	if (ir_window_geom(&c->n->a.win, x, y, &G, why, sizeof why))
		return ec_fail(c, "%s", why);
	if (nk_init(c, &k, x, w))
		return 1;
	int grp = c->n->a.win.group;
	int64_t N = x->dim[0], C = x->dim[1], M = y->dim[1], cg = C / grp, mg = M / grp;
	int64_t insz = G.in[0] * G.in[1] * G.in[2], outsz = G.out[0] * G.out[1] * G.out[2];
	int64_t ksz = (int64_t)G.k[0] * G.k[1] * G.k[2], K = cg * ksz;
	int64_t kt = c->n->q->ktile > 0 && c->n->q->ktile < K ? c->n->q->ktile : K;
	if (b && (b->kind != TK_CONST || ir_numel(b) != M))
		return ec_fail(c, "bias must be a constant [%lld]", (long long)M);
	if (c->n->q->nr != 1 && c->n->q->nr != M)
		return ec_fail(c, "internal: %d rescales for %lld channels", c->n->q->nr, (long long)M);
	const char *bname = b ? ec_x(c, 2) : NULL, *rm, *rn;
	nk_weights(c, &k, w, M, K, 1, 1);
	nk_rescales(c, M, &rm, &rn, "m");
	if (c->failed)
		return 1;
	nk_check_include(c, &k);
	if (flat_ok(&G)) {
		Flat F = {N, C, M, cg, mg, K, kt, ksz, 0, 0, G.out[1], G.out[2], 0, 0, bname, rm, rn};
		F.Hp = G.in[1] + G.pb[1] + G.pe[1];
		F.Wp = G.in[2] + G.pb[2] + G.pe[2];
		F.L = F.OH * F.Wp;
		F.slack = (int64_t)(G.k[2] - 1) * G.d[2];
		conv_flat(c, &k, &G, &F);
		return c->failed;
	}
	ec_begin(c, nk_scratch(&k, outsz));
	Out *o = &c->c;
	const char *xn = ec_x(c, 0);
	nk_locals(c, &k, outsz);
	ec_line(o, "for (long n = 0; n < %lld; n++)", (long long)N);
	ec_line(o, "for (long m = 0; m < %lld; m++) {", (long long)M);
	ec_line(o, "const long xg = (n * %lld + m / %lld * %lld) * %lld;", (long long)C, (long long)mg, (long long)cg,
	        (long long)insz);
	nk_bias(c, &k, bname, "m", outsz);
	if (k.tiled) {
		ec_line(o, "for (long k0 = 0; k0 < %lld; k0 += %lld) {", (long long)K, (long long)kt);
		ec_line(o, "const long k1 = k0 + %lld < %lld ? k0 + %lld : %lld;", (long long)kt, (long long)K,
		        (long long)kt, (long long)K);
		nk_tile_clear(c, &k, outsz);
		ec_line(o, "for (long k = k0; k < k1; k++) {");
	} else {
		ec_line(o, "for (long k = 0; k < %lld; k++) {", (long long)K);
	}
	/* term k: input channel k / ksz, kernel tap k % ksz (the kernel's natural order) */
	ec_line(o, "const long ci = k / %lld, r = k %% %lld;", (long long)ksz, (long long)ksz);
	ec_line(o, "const long f0 = r / %lld, f1 = r / %lld %% %lld, f2 = r %% %lld;", (long long)G.k[1] * G.k[2],
	        (long long)G.k[2], (long long)G.k[1], (long long)G.k[2]);
	nk_decode(c, &k, ap(c, "m * %lld + k", K), 0);
	ec_line(o, "const long a0 = f0 * %d - %d, a1 = f1 * %d - %d, a2 = f2 * %d - %d;", G.d[0], G.pb[0], G.d[1],
	        G.pb[1], G.d[2], G.pb[2]);
	/* outputs whose innermost tap is inside: [lo2, hi2) */
	ec_line(o, "const long lo2 = a2 >= 0 ? 0 : (%d - 1 - a2) / %d;", G.s[2], G.s[2]);
	ec_line(o, "long hi2 = a2 > %lld ? 0 : (%lld - a2) / %d + 1;", (long long)G.in[2] - 1, (long long)G.in[2] - 1,
	        G.s[2]);
	ec_line(o, "hi2 = hi2 < %lld ? hi2 : %lld;", (long long)G.out[2], (long long)G.out[2]);
	ec_line(o, "for (long o0 = 0; o0 < %lld; o0++) {", (long long)G.out[0]);
	ec_line(o, "const long i0 = o0 * %d + a0;", G.s[0]);
	ec_line(o, "if (i0 < 0 || i0 >= %lld)", (long long)G.in[0]);
	ec_line(o, "\tcontinue;");
	ec_line(o, "for (long o1 = 0; o1 < %lld; o1++) {", (long long)G.out[1]);
	ec_line(o, "const long i1 = o1 * %d + a1;", G.s[1]);
	ec_line(o, "if (i1 < 0 || i1 >= %lld)", (long long)G.in[1]);
	ec_line(o, "\tcontinue;");
	ec_line(o, "const long rb = xg + ci * %lld + (i0 * %lld + i1) * %lld + a2;", (long long)insz, (long long)G.in[1],
	        (long long)G.in[2]);
	ec_line(o, "const long ob = (o0 * %lld + o1) * %lld;", (long long)G.out[1], (long long)G.out[2]);
	nk_loop(c, &k, "for (long o2 = lo2; o2 < hi2; o2++) {", "ta[ob + o2]",
	        G.s[2] == 1 ? arena_printf(c->g->arena, "%s[rb + o2]", xn)
	                    : arena_printf(c->g->arena, "%s[rb + o2 * %d]", xn, G.s[2]),
	        "ob + o2");
	ec_line(o, "}");
	ec_line(o, "}");
	ec_line(o, "}");
	if (k.tiled) {
		nk_tile_flush(c, &k, outsz);
		ec_line(o, "}");
	}
	nk_store(c, &k, arena_printf(c->g->arena, "y0[(n * %lld + m) * %lld + p]", (long long)M, (long long)outsz), outsz, rm, rn, "m");
	ec_line(o, "}");
	ec_end(c);
	return 0;
}

/* ---- Gemm, MatMul ---- */

/* Gemm a [M, K] x B + C (B constant, [K, N] or [N, K] when tb); MatMul
 * a [..., K] x B with B a constant [K, N] (rows of a's leading dims). */
int eq_narrow_matmul(Ctx *c)
{
	const Tensor *a = ec_tin(c, 0), *w = ec_tin(c, 1), *y = ec_tout(c, 0);
	const Tensor *b = c->n->op == OP_GEMM ? ec_tin(c, 2) : NULL;
	int tb = c->n->op == OP_GEMM && c->n->a.gemm.tb;
	NK k;
	if (!a || !w || w->kind != TK_CONST || w->rank != 2 || a->rank < 1)
		return ec_fail(c, "needs a constant 2-D weight matrix");
	if (c->n->op == OP_GEMM && (c->n->a.gemm.ta || a->rank != 2))
		return ec_fail(c, "a quantized Gemm needs ta = 0 and a 2-D A");
	int64_t K = a->dim[a->rank - 1], N = w->dim[tb ? 0 : 1], R = K ? ir_numel(a) / K : 0;
	if (w->dim[tb ? 1 : 0] != K || ir_numel(y) != R * N)
		return ec_fail(c, "A, B and Y shapes do not agree");
	if (b && (b->kind != TK_CONST || ir_numel(b) != N))
		return ec_fail(c, "C must be a constant [%lld]", (long long)N);
	if (c->n->q->nr != 1 && c->n->q->nr != N)
		return ec_fail(c, "internal: %d rescales for %lld columns", c->n->q->nr, (long long)N);
	if (nk_init(c, &k, a, w))
		return 1;
	int64_t kt = c->n->q->ktile > 0 && c->n->q->ktile < K ? c->n->q->ktile : K;
	const char *bname = b ? ec_x(c, 2) : NULL, *rm, *rn;
	/* weights re-laid out [K][N]: the column loop is the vector one */
	nk_weights(c, &k, w, N, K, 0, tb);
	nk_rescales(c, N, &rm, &rn, "p");
	if (c->failed)
		return 1;
	nk_check_include(c, &k);
	ec_begin(c, nk_scratch(&k, N));
	Out *o = &c->c;
	const char *xn = ec_x(c, 0);
	nk_locals(c, &k, N);
	ec_line(o, "for (long i = 0; i < %lld; i++) {", (long long)R);
	nk_bias(c, &k, bname, "p", N);
	if (k.tiled) {
		ec_line(o, "for (long k0 = 0; k0 < %lld; k0 += %lld) {", (long long)K, (long long)kt);
		ec_line(o, "const long k1 = k0 + %lld < %lld ? k0 + %lld : %lld;", (long long)kt, (long long)K,
		        (long long)kt, (long long)K);
		nk_tile_clear(c, &k, N);
		ec_line(o, "for (long k = k0; k < k1; k++) {");
	} else {
		ec_line(o, "for (long k = 0; k < %lld; k++) {", (long long)K);
	}
	ec_line(o, "const long xi = i * %lld + k;", (long long)K);
	ec_line(o, "for (long j = 0; j < %lld; j++) {", (long long)N);
	nk_decode(c, &k, ap(c, "k * %lld + j", N), 1);
	nk_add(c, &k, "ta[j]", arena_printf(c->g->arena, "%s[xi]", xn), "j");
	ec_line(o, "}");
	ec_line(o, "}");
	if (k.tiled) {
		nk_tile_flush(c, &k, N);
		ec_line(o, "}");
	}
	nk_store(c, &k, arena_printf(c->g->arena, "y0[i * %lld + p]", (long long)N), N, rm, rn, "p");
	ec_line(o, "}");
	ec_end(c);
	return 0;
}

int eq_narrow_wanted(const Ctx *c)
{
	const Node *n = c->n;
	if (n->op != OP_CONV && n->op != OP_GEMM && n->op != OP_MATMUL)
		return 0;
	const Tensor *w = ec_tin(c, 1);
	return (w && w->q && w->q->code != WQ_UNIFORM) || (n->q->acc_bits >= 1 && n->q->acc_bits <= 16) ||
	       n->q->ktile > 0;
}
