/* Integer Conv, Gemm and MatMul (nodes with a QNode; the formula is in
 * docs/integer-semantics.md, "The integer IR"):
 *
 *     acc[c] = bias[c] + sum_k (x_k - zp_x) * (w_ck - zw[c])   (int32, or int64)
 *     y      = potc_out(potc_rescale(acc, r[c]), zp_y, lo, hi)
 *
 * with padded taps contributing 0.  Every kernel computes exactly that, bit
 * for bit, by exact integer algebra:
 *   - weights are re-laid out at compile time as w' = w - zw;
 *   - the kernels multiply raw activations, or raw ones plus a constant
 *     offset o (s8 -> u8 for the u8 x s8 dot-product instructions), and the
 *     bias absorbs the rest: acc = (bias - (zp_x + o) * sum w') + sum (x + o)
 *     * w', computed at compile time in int64.  Pads hold zp_x + o, so a
 *     padded tap adds (zp_x + o) * w' and the bias takes it away again;
 *   - an int32 accumulator is summed modulo 2^32 (uint32_t in C, the
 *     wrapping vector adds and dot products in SIMD): the pass proved the
 *     true sum fits int32, so the sum modulo 2^32 is that sum, whatever the
 *     order and whatever the intermediate values.  C's unsigned arithmetic
 *     makes that free of undefined behaviour; the final conversion back to
 *     int32 is written so that it is defined too (U2S below);
 *   - an int64 accumulator (QNode.acc64) never overflows: products are at
 *     most 2^24 in magnitude.
 *   - an exact int32 sum that keeps zp_x (xv = x - zp_x, the plain C dot
 *     products) has every partial sum inside the pass's bound, in any
 *     order, so signed int32 arithmetic cannot overflow there either.
 * The requantisation is potc_rescale and potc_out from the pasted
 * potc_fixed.h, or code that computes the same function exactly without
 * branches (potc_qshr here, the vector helpers of the other files).
 *
 * Each node is printed once per target under #if (per_target), the target
 * taking the first kernel that fits the node:
 *   AVX-512 VNNI (qkernels_vnni.c): u8 x s8 quads, vpdpbusd;
 *   AVX2, SSE2 (qkernels_avx2.c): int16 pairs, vpmaddwd / pmaddwd;
 *   plain C (here): any shape, dtype and accumulator, what C compilers
 *     vectorise (NEON, other targets) and what a Cortex-M0 compiles;
 * Gemm and MatMul with a constant B share their vector kernel
 * (qkernels_vec.c) between the first three. */
#include <stdlib.h>
#include <string.h>

#include "qconv_impl.h"

/* uint32_t u (a sum modulo 2^32) as the int32_t it stands for, without
 * the implementation-defined conversion of values above INT32_MAX. */
#define U2S(u) "(" u " > 0x7fffffffu ? -(int32_t)~" u " - 1 : (int32_t)" u ")"

/* ---- what every kernel reads from the node ---- */

/* Weight element i as the integer it stands for (a PoT/APoT code
 * decoded). */
static int64_t wget(const Tensor *w, int64_t i)
{
	int64_t q = ir_get_i64(w, i);
	return w->q ? ir_wdecode(w->q, (int32_t)q) : q;
}

static int qt_int(DType t)
{
	return t == DT_I8 || t == DT_U8 || t == DT_I16 || t == DT_U16;
}

/* The common checks and the output side; x is input 0. */
static int qout_init(Ctx *c, QOut *o, const Tensor *x, const Tensor *y, int64_t M)
{
	const QNode *q = c->n->q;
	if (!q || !x || !y || !x->q || !y->q)
		return ec_fail(c, "integer kernel without quantization parameters");
	if (!qt_int(x->dtype) || !qt_int(y->dtype))
		return ec_fail(c, "integer kernel: input %s, output %s (want i8/u8/i16/u16)",
		               ir_dtype_name(x->dtype), ir_dtype_name(y->dtype));
	for (int i = 1; i < x->q->nch; i++)
		if (x->q->zp[i] != x->q->zp[0])
			return ec_fail(c, "integer kernel: per-channel input zero points");
	if (q->nr != 1 && q->nr != M)
		return ec_fail(c, "%d rescales for %lld output channels", q->nr, (long long)M);
	if (q->lo > q->hi)
		return ec_fail(c, "empty output range [%d, %d]", (int)q->lo, (int)q->hi);
	o->xt = x->dtype;
	o->yt = y->dtype;
	o->zx = x->q->zp[0];
	o->xmin = ir_qmin(x->q);
	o->xmax = ir_qmax(x->q);
	o->zy = y->q->zp[0];
	o->lo = q->lo;
	o->hi = q->hi;
	o->acc64 = q->acc64;
	o->M = M;
	o->r = arena_alloc(c->g->arena, sizeof *o->r * (size_t)(M > 0 ? M : 1));
	o->r1 = 1;
	for (int64_t m = 0; m < M; m++) {
		Rescale r = q->r[q->nr == 1 ? 0 : m];
		if ((r.m == 0 && (r.n < -31 || r.n > 62)) || (r.m != 0 && (r.m < (1 << 30) || r.n < -31 || r.n > 31)))
			return ec_fail(c, "rescale {%d, %d} out of range", (int)r.m, r.n);
		o->r[m] = r;
		o->r1 &= r.m == o->r[0].m && r.n == o->r[0].n;
	}
	return 0;
}

/* Narrowest integer dtype holding every v[i]. */
static DType narrow_of(const int32_t *v, int64_t n)
{
	int32_t lo = 0, hi = 0;
	for (int64_t i = 0; i < n; i++) {
		lo = v[i] < lo ? v[i] : lo;
		hi = v[i] > hi ? v[i] : hi;
	}
	if (lo >= -128 && hi <= 127)
		return DT_I8;
	if (lo >= -32768 && hi <= 32767)
		return DT_I16;
	return DT_I32;
}

/* Print int32 values as an array of dtype dt (which holds them all). */
void qc_put_i32(Ctx *c, const char *name, DType dt, const int32_t *v, int64_t n)
{
	size_t es = ir_dtype_size(dt);
	unsigned char *b = malloc(es * (size_t)(n > 0 ? n : 1));
	for (int64_t i = 0; i < n; i++) {
		if (dt == DT_I8) {
			int8_t e = (int8_t)v[i];
			memcpy(b + i * es, &e, es);
		} else if (dt == DT_I16) {
			int16_t e = (int16_t)v[i];
			memcpy(b + i * es, &e, es);
		} else {
			memcpy(b + i * es, &v[i], es);
		}
	}
	ec_array(c, name, dt, n, b);
	free(b);
}

/* 2^(n-1) of a right shift by n (0 for n = 0). */
static int32_t half_of(Rescale r)
{
	return r.m == 0 && r.n > 0 && r.n <= 31 ? (int32_t)1 << (r.n - 1) : 0;
}

/* Folded biases: bias[m] - k * sumw[m], as int32 modulo 2^32 (an int32
 * accumulator) or exactly as int64; narrow: int16 when every value fits
 * (for kernels that read it one element at a time). */
void qc_put_bias_h(Ctx *c, const QOut *o, const char *name, const int64_t *bias, const int64_t *sumw, int64_t k,
                       int64_t M, int fold, int narrow)
{
	int64_t *v = malloc(sizeof *v * (size_t)(M > 0 ? M : 1));
	int32_t *v32 = malloc(sizeof *v32 * (size_t)(M > 0 ? M : 1));
	for (int64_t m = 0; m < M; m++) {
		v[m] = bias[m] - k * sumw[m] + (fold ? half_of(o->r[m % o->M]) : 0);
		uint32_t u = (uint32_t)(uint64_t)v[m];   /* modulo 2^32 */
		v32[m] = u > 0x7fffffffu ? -(int32_t)~u - 1 : (int32_t)u;
	}
	int fits16 = !o->acc64 && narrow;
	for (int64_t m = 0; fits16 && m < M; m++)
		fits16 = v32[m] >= -32768 && v32[m] <= 32767;
	if (o->acc64) {
		ec_array(c, name, DT_I64, M, v);
	} else if (fits16) {
		/* read element by element: half the flash, the same values */
		int16_t *v16 = malloc(sizeof *v16 * (size_t)(M > 0 ? M : 1));
		for (int64_t m = 0; m < M; m++)
			v16[m] = (int16_t)v32[m];
		ec_array(c, name, DT_I16, M, v16);
		free(v16);
	} else {
		ec_array(c, name, DT_I32, M, v32);
	}
	free(v);
	free(v32);
}

void qc_put_bias(Ctx *c, const QOut *o, const char *name, const int64_t *bias, const int64_t *sumw, int64_t k,
                     int64_t M)
{
	qc_put_bias_h(c, o, name, bias, sumw, k, M, 0, 0);
}

int qc_rform_of(const QOut *o)
{
	if (o->r1)
		return RF_ONE;
	int shift = 1, q31 = 1;
	for (int64_t m = 0; m < o->M; m++) {
		shift &= o->r[m].m == 0 && o->r[m].n >= 0 && o->r[m].n <= 31;
		q31 &= o->r[m].m != 0 && o->r[m].n >= 0;
	}
	return shift ? RF_SHIFT : q31 ? RF_Q31 : RF_ANY;
}

/* The vector kernels' form: RF_SHIFTH when every channel is a right shift
 * by n in [0, 31] and acc + 2^(n-1) cannot overflow: then the bias
 * carries the 2^(n-1) and the rounding shift of x = y - 2^(n-1) is
 * floor((y - [y < 2^(n-1)]) / 2^n), three instructions (for n = 0 the
 * threshold is INT32_MIN: nothing is subtracted). */
int qc_rform_vec(const QOut *o)
{
	int ok = o->accb != NULL;
	for (int64_t m = 0; ok && m < o->M; m++)
		ok = o->r[m].m == 0 && o->r[m].n >= 0 && o->r[m].n <= 31 && o->accb[m] + half_of(o->r[m]) <= INT32_MAX;
	return ok ? RF_SHIFTH : qc_rform_of(o);
}

int32_t qc_thr_of(Rescale r)
{
	return r.n > 0 ? half_of(r) : INT32_MIN;
}

/* Per-channel tables n<id>_rm (m), _rn (n), _rh (2^(n-1), 0 for n <= 0)
 * as the form needs them (RF_PLAIN and RF_ANY: m and n for potc_rescale;
 * RF_PLAINSH: n for potc_qshr); none for one Rescale. */
void qc_put_rescale(Ctx *c, const QOut *o, int form)
{
	if (o->r1)
		return;
	int64_t M = o->M;
	int32_t *t = malloc(sizeof *t * (size_t)M * 3);
	for (int64_t m = 0; m < M; m++) {
		t[m] = o->r[m].m;
		t[M + m] = o->r[m].n;
		t[2 * M + m] = form == RF_SHIFTH ? qc_thr_of(o->r[m]) : o->r[m].n > 0 && o->r[m].n <= 31 ?
		               (int32_t)1 << (o->r[m].n - 1) : 0;
	}
	if (form == RF_SHIFTH || form == RF_PLAINSH) {
		qc_put_i32(c, arena_printf(c->g->arena, "n%d_rn", c->id), narrow_of(t + M, M), t + M, M);
		if (form == RF_SHIFTH)
			qc_put_i32(c, arena_printf(c->g->arena, "n%d_rt", c->id), DT_I32, t + 2 * M, M);
		free(t);
		return;
	}
	if (form != RF_SHIFT)
		qc_put_i32(c, arena_printf(c->g->arena, "n%d_rm", c->id), DT_I32, t, M);
	qc_put_i32(c, arena_printf(c->g->arena, "n%d_rn", c->id), narrow_of(t + M, M), t + M, M);
	if (form == RF_SHIFT || form == RF_Q31)
		qc_put_i32(c, arena_printf(c->g->arena, "n%d_rh", c->id), DT_I32, t + 2 * M, M);
	free(t);
}

/* "rm" and "rn" of channel expression ch: literals or table entries. */
static void rescale_args(Ctx *c, const QOut *o, const char *ch, const char **rm, const char **rn)
{
	if (o->r1) {
		*rm = arena_printf(c->g->arena, "%ld", (long)o->r[0].m);
		*rn = arena_printf(c->g->arena, "%d", o->r[0].n);
	} else {
		*rm = arena_printf(c->g->arena, "n%d_rm[%s]", c->id, ch);
		*rn = arena_printf(c->g->arena, "n%d_rn[%s]", c->id, ch);
	}
}

/* dst = out(rescale(acc)): acc an int32_t or int64_t expression. */
static void store_q(Ctx *c, const QOut *o, const char *dst, const char *acc, const char *rm, const char *rn)
{
	ec_line(&c->c, "%s = (%s)potc_out(potc_rescale%s(%s, %s, %s), %ld, %ld, %ld);", dst, ec_ctype(o->yt),
	        o->acc64 ? "64" : "", acc, rm, rn, (long)o->zy, (long)o->lo, (long)o->hi);
}

/* The accumulator type and its update `t += x * w` for an int32 (modulo
 * 2^32) or int64 accumulator. */
static const char *acc_type(const QOut *o)
{
	return o->acc64 ? "int64_t" : "uint32_t";
}

static const char *acc_add(Ctx *c, const QOut *o, const char *xe, const char *we)
{
	if (o->acc64)
		return arena_printf(c->g->arena, "(int64_t)%s * %s", xe, we);
	return arena_printf(c->g->arena, "(uint32_t)((int32_t)%s * %s)", xe, we);
}

/* Store accumulator `t[j]` (type acc_type) through an int32 view. */
static void store_acc(Ctx *c, const QOut *o, const char *dst, const char *t, const char *rm, const char *rn)
{
	if (o->acc64) {
		store_q(c, o, dst, t, rm, rn);
		return;
	}
	ec_line(&c->c, "{");
	ec_line(&c->c, "const uint32_t u = %s;", t);
	store_q(c, o, dst, U2S("u"), rm, rn);
	ec_line(&c->c, "}");
}

/* ---- plain C requantisation without branches ----
 * For right shifts (RF_SHIFTH: the bias carries 2^(n-1), y = acc +
 * 2^(n-1) fits int32) plain C needs no branch and no signed shift: with
 * u = y + 2^31 unsigned order is signed order, so u - [y < t] shifted
 * right by n is floor(x'/2^n) + 2^(31-n) for the x' = y - [y < t] of
 * potc_q512_shrh, i.e. potc_rshift_rnd32(acc, n) + 2^(31-n); the clamp
 * bounds carry the same offset, removed after the clamp (U2S restores the
 * sign).  C compilers vectorise this; potc_rescale's branches on the sign
 * they do not, and mispredict on signed data. */
static const char *const qshr_text[] = {
	"#ifndef POTC_QSHR",
	"#define POTC_QSHR",
	"POTC_FN uint32_t potc_qshr(uint32_t y, int n, uint32_t tf, uint32_t lo, uint32_t hi)",
	"{",
	"\tuint32_t u = y ^ 0x80000000u;",
	"\tu -= u < tf;",
	"\tu >>= n;",
	"\treturn u < lo ? lo : u > hi ? hi : u;",
	"}",
	"#endif",
	NULL,
};

/* The per-channel constants of the branch-free requantisation (computed
 * here): n, the threshold 2^(n-1) + 2^31 (0 for n = 0), the clamp bounds
 * plus 2^(31-n) (saturated to uint32) and zp_y - 2^(31-n). */
static void plain_consts(const QOut *o, int64_t m, uint32_t *k)
{
	int n = o->r[m].n;
	uint32_t b = 0x80000000u >> n;
	int64_t l = (int64_t)o->lo - o->zy + b, h = (int64_t)o->hi - o->zy + b;
	k[0] = (uint32_t)n;
	k[1] = n ? ((uint32_t)1 << (n - 1)) ^ 0x80000000u : 0;
	k[2] = l < 0 ? 0 : (uint32_t)l;
	k[3] = h > 0xffffffffLL ? 0xffffffffu : (uint32_t)h;
	k[4] = (uint32_t)o->zy - b;
}

/* Their table when the channels differ: only each channel's shift n (one
 * byte); plain_params derives the rest per channel at run time, a few
 * instructions outside the pixel loop, instead of 20 flash bytes a channel. */
static void put_plain_q(Ctx *c, const QOut *o)
{
	if (o->r1)
		return;
	uint8_t *t = malloc((size_t)o->M + 1);
	uint32_t k[5];
	for (int64_t m = 0; m < o->M; m++) {
		plain_consts(o, m, k);
		t[m] = (uint8_t)k[0];
	}
	ec_array(c, arena_printf(c->g->arena, "n%d_q", c->id), DT_U8, o->M, t);
	free(t);
}

/* const locals n_, tf_, lo_, hi_, z_ of channel expression ch: the
 * constants of plain_consts, as C. */
static void plain_params(Ctx *c, const QOut *o, const char *ch)
{
	if (o->r1) {
		uint32_t k[5];
		plain_consts(o, 0, k);
		ec_line(&c->c, "const int n_ = %u;", k[0]);
		ec_line(&c->c, "const uint32_t tf_ = %luu, lo_ = %luu, hi_ = %luu, z_ = %luu;", (unsigned long)k[1],
		        (unsigned long)k[2], (unsigned long)k[3], (unsigned long)k[4]);
		return;
	}
	ec_line(&c->c, "const int n_ = (int)n%d_q[%s];", c->id, ch);
	ec_line(&c->c, "const uint32_t b_ = 0x80000000u >> n_;");
	ec_line(&c->c, "const uint32_t tf_ = n_ ? ((uint32_t)1 << (n_ - 1)) ^ 0x80000000u : 0u;");
	ec_line(&c->c, "const int64_t l_ = (int64_t)%lld + b_, h_ = (int64_t)%lld + b_;",
	        (long long)o->lo - o->zy, (long long)o->hi - o->zy);
	ec_line(&c->c, "const uint32_t lo_ = l_ < 0 ? 0u : (uint32_t)l_;");
	ec_line(&c->c, "const uint32_t hi_ = h_ > 0xffffffffLL ? 0xffffffffu : (uint32_t)h_;");
	ec_line(&c->c, "const uint32_t z_ = (uint32_t)%lldLL - b_;", (long long)o->zy);
}

/* dst = the requantised uint32 accumulator expression y (plain_params in
 * scope). */
static void plain_store(Ctx *c, const QOut *o, const char *dst, const char *y)
{
	ec_line(&c->c, "{");
	ec_line(&c->c, "const uint32_t u = potc_qshr(%s, n_, tf_, lo_, hi_) + z_;", y);
	ec_line(&c->c, "%s = (%s)%s;", dst, ec_ctype(o->yt), U2S("u"));
	ec_line(&c->c, "}");
}

/* ---- Conv ---- */

static void qconv_pad_dims(QConv *v)
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

static int qconv_init(Ctx *c, QConv *v)
{
	const Tensor *x = ec_tin(c, 0), *w = ec_tin(c, 1), *b = ec_tin(c, 2), *y = ec_tout(c, 0);
	if (!x || !w || !y)
		return ec_fail(c, "Conv needs an input and weights");
	if (w->kind != TK_CONST || !ec_isint(w->dtype))
		return ec_fail(c, "integer Conv needs constant integer weights");
	v->wq = w->q;
	if (b && (b->kind != TK_CONST || !ec_isint(b->dtype)))
		return ec_fail(c, "integer Conv needs a constant integer bias");
	if (ec_geom(c, x, y, &v->G))
		return 1;
	for (int i = 0; i < 3; i++)
		if (v->G.pb[i] < 0 || v->G.pe[i] < 0)
			return ec_fail(c, "negative pads");
	v->N = x->dim[0];
	v->C = x->dim[1];
	v->M = y->dim[1];
	v->grp = c->n->a.win.group;
	if (v->grp < 1 || v->C % v->grp || v->M % v->grp || x->dim[0] != y->dim[0])
		return ec_fail(c, "group %lld does not divide the channels", (long long)v->grp);
	v->Cg = v->C / v->grp;
	v->Mg = v->M / v->grp;
	v->K = v->Cg * v->G.ksz;
	if (w->rank != x->rank || w->dim[0] != v->M || w->dim[1] != v->Cg || ec_prod(w, 2, w->rank) != v->G.ksz)
		return ec_fail(c, "weight shape does not match input, output and kernel");
	if (b && ir_numel(b) != v->M)
		return ec_fail(c, "bias has %lld elements for %lld output channels", (long long)ir_numel(b),
		               (long long)v->M);
	if (qout_init(c, &v->o, x, y, v->M))
		return 1;
	size_t n = (size_t)(v->M * v->K > 0 ? v->M * v->K : 1);
	v->w = arena_alloc(c->g->arena, sizeof *v->w * n);
	v->bias = arena_alloc(c->g->arena, sizeof *v->bias * (size_t)(v->M + 1));
	v->sumw = arena_alloc(c->g->arena, sizeof *v->sumw * (size_t)(v->M + 1));
	for (int64_t m = 0; m < v->M; m++) {
		for (int64_t k = 0; k < v->K; k++) {
			int64_t i = m * v->K + k;
			int64_t wv = wget(w, i) - (w->q ? w->q->zp[ir_quant_channel(w, i)] : 0);
			v->w[i] = (int32_t)wv;
			v->sumw[m] += wv;
		}
		v->bias[m] = b ? ir_get_i64(b, m) : 0;
	}
	/* the worst |acc| per channel, for the vector kernels' rounding */
	int64_t ax = (int64_t)ir_qmax(x->q) - v->o.zx, bx = (int64_t)v->o.zx - ir_qmin(x->q);
	ax = ax > bx ? ax : bx;
	v->o.accb = arena_alloc(c->g->arena, sizeof *v->o.accb * (size_t)(v->M + 1));
	for (int64_t m = 0; m < v->M; m++) {
		int64_t s = v->bias[m] < 0 ? -v->bias[m] : v->bias[m];
		for (int64_t k = 0; k < v->K; k++)
			s += ax * (v->w[m * v->K + k] < 0 ? -(int64_t)v->w[m * v->K + k] : v->w[m * v->K + k]);
		v->o.accb[m] = s;
	}
	qconv_pad_dims(v);
	v->x = ec_x(c, 0);
	return 0;
}

/* A pointwise Conv (1x1 kernel, stride 1, no pad) is one row of all pixels. */
static void qconv_flatten(QConv *v)
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
	qconv_pad_dims(v);
}

/* Plain C weights: sub-byte fields (ec_array_packed_data, read with
 * pk_s4 / pk_s2: the flash a small core has is the point of 4- and 2-bit
 * weights) when the weights have at most 4 bits and every w - zw fits the
 * field, else the narrowest integer array. */
typedef struct {
	int width;       /* 4 or 2: packed; 0: an array of dt */
	DType dt;
	const char *name;
} PW;

static PW put_plain_w(Ctx *c, const char *name, const Quant *wq, const int32_t *v, int64_t n)
{
	PW p = {0, narrow_of(v, n), name};
	int width = wq ? ec_pack_width(wq) : 0, ok = width > 0;
	for (int64_t i = 0; ok && i < n; i++)
		ok = v[i] >= -(1 << (width - 1)) && v[i] < 1 << (width - 1);
	if (ok) {
		ec_array_packed_data(c, name, DT_I32, width, n, v);
		p.width = width;
		p.dt = DT_I8;
		return p;
	}
	qc_put_i32(c, name, p.dt, v, n);
	return p;
}

/* Weights from element offset off as var: a pointer, or (packed) the
 * offset itself. */
static void plain_w_decl(Ctx *c, const PW *p, const char *var, const char *off)
{
	if (p->width)
		ec_line(&c->c, "const long %s = %s;", var, off);
	else
		ec_line(&c->c, "const %s *const %s = %s + %s;", ec_ctype(p->dt), var, p->name, off);
}

/* Element i of var. */
static const char *plain_w_read(Ctx *c, const PW *p, const char *var, const char *i)
{
	if (p->width)
		return arena_printf(c->g->arena, "pk_s%d(%s, %s + %s)", p->width, p->name, var, i);
	return arena_printf(c->g->arena, "%s[%s]", var, i);
}

/* Plain C: per output channel and output row, a row of accumulators
 * t[OW] in scratch, summed tap by tap along the row (the loop that C
 * compilers vectorise), then requantised.  Padded inputs are copied into
 * scratch planes filled with zp_x first.  Any groups, strides, dilations,
 * 1-3 spatial dims.  At stride 1 the "row" is the whole flat (padded)
 * input volume instead: long loops vectorise, short rows do not (gcc
 * unrolls a 14-iteration loop into scalar code); positions past a row's
 * end are junk, skipped by the stores. */
static int plain_flat(const QConv *v)
{
	const Geom *G = &v->G;
	return G->s[0] == 1 && G->s[1] == 1 && G->s[2] == 1 && G->out[0] * G->out[1] > 1;
}

/* Accumulators a row: OW, or the flat range. */
static int64_t plain_row(const QConv *v)
{
	const Geom *G = &v->G;
	if (!plain_flat(v))
		return G->out[2];
	return (G->out[0] - 1) * v->pst[0] + (G->out[1] - 1) * v->pst[1] + G->out[2];
}

static int64_t plain_conv_scratch(const QConv *v)
{
	int64_t xb = v->padded ? align16(v->C * v->plane * (int64_t)ir_dtype_size(v->o.xt)) : 0;
	return xb + plain_row(v) * (v->o.acc64 ? 8 : 4);
}

/* Fill scratch xp with zp_x and copy image n's rows into the padded
 * planes. */
static void plain_pad_copy(Ctx *c, const QConv *v, const char *tx, const char *nv)
{
	const Geom *G = &v->G;
	int64_t total = v->C * v->plane;
	if (ir_dtype_size(v->o.xt) == 1)
		ec_line(&c->c, "memset(xp, %d, %lld);", (int)(v->o.zx & 0xff), (long long)total);
	else
		ec_line(&c->c, "for (long i = 0; i < %lld; i++) xp[i] = %ld;", (long long)total, (long)v->o.zx);
	const char *iz = G->in[0] > 1 ? "iz" : "";
	ec_line(&c->c, "for (long ch = 0; ch < %lld; ch++)", (long long)v->C);
	if (*iz)
		ec_line(&c->c, "for (long iz = 0; iz < %lld; iz++)", (long long)G->in[0]);
	ec_line(&c->c, "\tfor (long iy = 0; iy < %lld; iy++)", (long long)G->in[1]);
	ec_line(&c->c, "\t\tmemcpy(xp + %s, %s + %s, %lld * sizeof(%s));",
	        ec_aff(c, G->pb[0] * v->pst[0] + G->pb[1] * v->pst[1] + G->pb[2], "ch", v->plane, iz, v->pst[0], "iy",
	               v->pst[1], NULL),
	        v->x, ec_aff(c, 0, nv, v->C * G->insz, "ch", G->insz, iz, G->ist[0], "iy", G->ist[1], NULL),
	        (long long)G->in[2], tx);
}

static void plain_conv(Ctx *c, QConv *v)
{
	const Geom *G = &v->G;
	const QOut *o = &v->o;
	const char *tx = ec_ctype(o->xt), *at = acc_type(o);
	int shh = !o->acc64 && qc_rform_vec(o) == RF_SHIFTH, flat = plain_flat(v);
	int64_t row = plain_row(v);
	char wn[32], bn[32];
	snprintf(wn, sizeof wn, "n%d_w", c->id);
	snprintf(bn, sizeof bn, "n%d_b", c->id);
	ec_line(&c->c, "/* w - zw as [m %lld][k %lld]; bias - zp_x * sum(w - zw) */", (long long)v->M, (long long)v->K);
	PW pw = put_plain_w(c, wn, v->wq, v->w, v->M * v->K);
	DType wt = pw.dt;
	qc_put_bias_h(c, o, bn, v->bias, v->sumw, o->zx, v->M, shh, 1);
	if (shh) {
		qc_put_text(c, qshr_text);
		put_plain_q(c, o);
	} else {
		qc_put_rescale(c, o, RF_PLAIN);
	}
	ec_begin(c, v->scratch);
	int64_t xb = v->padded ? align16(v->C * v->plane * (int64_t)ir_dtype_size(o->xt)) : 0;
	if (v->padded)
		ec_line(&c->c, "%s *const xp = (%s *)(void *)s;", tx, tx);
	ec_line(&c->c, "%s *const t = (%s *)(void *)((unsigned char *)s + %lld);", at, at, (long long)xb);
	const char *nv = v->N > 1 ? "n" : "";
	if (*nv)
		ec_line(&c->c, "for (long n = 0; n < %lld; n++) {", (long long)v->N);
	else
		ec_line(&c->c, "{");
	if (v->padded)
		plain_pad_copy(c, v, tx, nv);
	const char *src = v->padded ? "xp" : v->x;
	int64_t ximg = v->padded ? 0 : v->C * v->plane;
	ec_line(&c->c, "for (long m = 0; m < %lld; m++) {", (long long)v->M);
	const char *gv = v->grp > 1 ? "g" : "";
	if (*gv)
		ec_line(&c->c, "const long g = m / %lld;", (long long)v->Mg);
	plain_w_decl(c, &pw, "w", arena_printf(c->g->arena, "m * %lld", (long long)v->K));
	ec_line(&c->c, "const %s b = (%s)%s[m];", at, at, bn);
	ec_line(&c->c, "const %s *const xg = %s + %s;", tx, src, ec_aff(c, 0, nv, ximg, gv, v->Cg * v->plane, NULL));
	ec_line(&c->c, "%s *const ym = y0 + %s;", ec_ctype(o->yt), ec_aff(c, 0, nv, v->M * G->outsz, "m", G->outsz, NULL));
	if (shh)
		plain_params(c, o, "m");
	const char *oz = G->out[0] > 1 ? "oz" : "", *oy = G->out[1] > 1 ? "oy" : "";
	if (!flat) {
		if (*oz)
			ec_line(&c->c, "for (long oz = 0; oz < %lld; oz++)", (long long)G->out[0]);
		if (*oy)
			ec_line(&c->c, "for (long oy = 0; oy < %lld; oy++)", (long long)G->out[1]);
	}
	ec_line(&c->c, "{");
	ec_line(&c->c, "const %s *const xr = xg + %s;", tx,
	        flat ? "0" : ec_aff(c, 0, oz, G->s[0] * v->pst[0], oy, G->s[1] * v->pst[1], NULL));
	ec_line(&c->c, "for (long ox = 0; ox < %lld; ox++)", (long long)row);
	ec_line(&c->c, "	t[ox] = b;");
	/* the taps: loops over input channel and kernel dims longer than 1 */
	static const char *const kv[3] = {"kz", "ky", "kx"};
	const char *k[3];
	int open = 0;
	if (v->Cg > 1) {
		ec_line(&c->c, "for (long ci = 0; ci < %lld; ci++)", (long long)v->Cg);
		c->c.depth++;
		open++;
	}
	for (int i = 0; i < 3; i++) {
		k[i] = G->k[i] > 1 ? kv[i] : "";
		if (G->k[i] > 1) {
			ec_line(&c->c, "for (long %s = 0; %s < %d; %s++)", kv[i], kv[i], G->k[i], kv[i]);
			c->c.depth++;
			open++;
		}
	}
	const char *ci = v->Cg > 1 ? "ci" : "";
	ec_line(&c->c, "{");
	/* int16 operands: C compilers widen-multiply them (pmullw/pmulhw) */
	ec_line(&c->c, "const %s wk = %s;", wt == DT_I32 ? "int32_t" : "int16_t", plain_w_read(c, &pw, "w",
	        ec_aff(c, 0, ci, G->ksz, k[0], G->kst[0], k[1], G->kst[1], k[2], (int64_t)1, NULL)));
	ec_line(&c->c, "const %s *const xk = xr + %s;", tx,
	        ec_aff(c, 0, ci, v->plane, k[0], G->d[0] * v->pst[0], k[1], G->d[1] * v->pst[1], k[2], (int64_t)G->d[2],
	               NULL));
	ec_line(&c->c, "for (long ox = 0; ox < %lld; ox++)", (long long)row);
	ec_line(&c->c, "	t[ox] += %s;", acc_add(c, o, G->s[2] == 1 ? "xk[ox]" :
	        arena_printf(c->g->arena, "xk[ox * %d]", G->s[2]), "wk"));
	ec_line(&c->c, "}");
	c->c.depth -= open;
	const char *rm, *rn;
	rescale_args(c, o, "m", &rm, &rn);
	if (flat) {
		if (*oz)
			ec_line(&c->c, "for (long oz = 0; oz < %lld; oz++)", (long long)G->out[0]);
		if (*oy)
			ec_line(&c->c, "for (long oy = 0; oy < %lld; oy++)", (long long)G->out[1]);
	}
	ec_line(&c->c, "for (long ox = 0; ox < %lld; ox++)", (long long)G->out[2]);
	c->c.depth++;
	const char *dst = arena_printf(c->g->arena, "ym[%s]", ec_aff(c, 0, oz, G->ost[0], oy, G->ost[1], "ox", (int64_t)1,
	                               NULL));
	const char *ti = flat ? arena_printf(c->g->arena, "t[%s]", ec_aff(c, 0, oz, v->pst[0], oy, v->pst[1], "ox",
	                                     (int64_t)1, NULL)) : "t[ox]";
	if (shh)
		plain_store(c, o, dst, ti);
	else
		store_acc(c, o, dst, ti, rm, rn);
	c->c.depth--;
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_end(c);
}

/* Plain C, dot-product form (long reductions: Cg * kernel >= 32): per
 * output position the K values of its window, xv = x - zp_x as int16
 * (padded taps: 0), gathered into a column through a table of tap
 * offsets, then per output channel a dot product with its weights, the
 * form C compilers turn into pmaddwd / sdot / smlal.  The sum is exact
 * int32 (no zero point folding: every partial sum is within the pass's
 * bound, in any order). */
static int plain_dot_ok(const QConv *v)
{
	return !v->o.acc64 && v->K >= 32 && v->Cg > 1 && (int64_t)v->o.xmin - v->o.zx >= -32768 &&
	       (int64_t)v->o.xmax - v->o.zx <= 32767;
}

static int64_t plain_dot_scratch(const QConv *v)
{
	int64_t xb = v->padded ? v->C * v->plane * (int64_t)ir_dtype_size(v->o.xt) : 0;
	return align16(v->grp * v->K * 2) + xb;
}

static void plain_conv_dot(Ctx *c, QConv *v)
{
	const Geom *G = &v->G;
	const QOut *o = &v->o;
	const char *tx = ec_ctype(o->xt);
	int shh = qc_rform_vec(o) == RF_SHIFTH;
	int64_t CK = v->grp * v->K;
	char wn[32], bn[32], tn[32];
	snprintf(wn, sizeof wn, "n%d_w", c->id);
	snprintf(bn, sizeof bn, "n%d_b", c->id);
	snprintf(tn, sizeof tn, "n%d_to", c->id);
	ec_line(&c->c, "/* w - zw as [m %lld][k %lld]; the bias; tap offsets */", (long long)v->M, (long long)v->K);
	PW pw = put_plain_w(c, wn, v->wq, v->w, v->M * v->K);
	qc_put_bias_h(c, o, bn, v->bias, v->sumw, 0, v->M, shh, 1);
	int32_t *to = malloc(sizeof *to * (size_t)CK);
	for (int64_t g = 0, k = 0; g < v->grp; g++)
		for (int64_t ci = 0; ci < v->Cg; ci++)
			for (int a = 0; a < G->k[0]; a++)
				for (int b = 0; b < G->k[1]; b++)
					for (int f = 0; f < G->k[2]; f++, k++)
						to[k] = (int32_t)((g * v->Cg + ci) * v->plane + (int64_t)a * G->d[0] * v->pst[0] +
						                  (int64_t)b * G->d[1] * v->pst[1] + (int64_t)f * G->d[2]);
	qc_put_i32(c, tn, narrow_of(to, CK), to, CK);
	free(to);
	if (shh) {
		qc_put_text(c, qshr_text);
		put_plain_q(c, o);
	} else {
		qc_put_rescale(c, o, RF_PLAIN);
	}
	ec_begin(c, v->scratch);
	ec_line(&c->c, "int16_t *const col = (int16_t *)(void *)s;");
	if (v->padded)
		ec_line(&c->c, "%s *const xp = (%s *)(void *)((unsigned char *)s + %lld);", tx, tx,
		        (long long)align16(CK * 2));
	const char *nv = v->N > 1 ? "n" : "";
	if (*nv)
		ec_line(&c->c, "for (long n = 0; n < %lld; n++) {", (long long)v->N);
	else
		ec_line(&c->c, "{");
	if (v->padded)
		plain_pad_copy(c, v, tx, nv);
	const char *src = v->padded ? "xp" : v->x;
	int64_t ximg = v->padded ? 0 : v->C * v->plane;
	static const char *const ov[3] = {"oz", "oy", "ox"};
	for (int i = 0; i < 3; i++)
		ec_line(&c->c, "for (long %s = 0; %s < %lld; %s++)", ov[i], ov[i], (long long)G->out[i], ov[i]);
	ec_line(&c->c, "{");
	ec_line(&c->c, "const %s *const xq = %s + %s;", tx, src, ec_aff(c, 0, nv, ximg, "oz", G->s[0] * v->pst[0], "oy",
	        G->s[1] * v->pst[1], "ox", (int64_t)G->s[2], NULL));
	ec_line(&c->c, "%s *const yq = y0 + %s;", ec_ctype(o->yt), ec_aff(c, 0, nv, v->M * G->outsz, "oz", G->ost[0], "oy",
	        G->ost[1], "ox", (int64_t)1, NULL));
	ec_line(&c->c, "for (long k = 0; k < %lld; k++)", (long long)CK);
	ec_line(&c->c, "\tcol[k] = (int16_t)((int32_t)xq[%s[k]] - %ld);", tn, (long)o->zx);
	ec_line(&c->c, "for (long m = 0; m < %lld; m++) {", (long long)v->M);
	ec_line(&c->c, "const int16_t *const cg = col + %s;", v->grp > 1 ?
	        arena_printf(c->g->arena, "m / %lld * %lld", (long long)v->Mg, (long long)v->K) : "0");
	plain_w_decl(c, &pw, "w", arena_printf(c->g->arena, "m * %lld", (long long)v->K));
	ec_line(&c->c, "int32_t a = %s[m];", bn);
	ec_line(&c->c, "for (long k = 0; k < %lld; k++)", (long long)v->K);
	ec_line(&c->c, "\ta += cg[k] * %s;", plain_w_read(c, &pw, "w", "k"));
	const char *dst = arena_printf(c->g->arena, "yq[m * %lld]", (long long)G->outsz);
	if (shh) {
		plain_params(c, o, "m");
		plain_store(c, o, dst, "(uint32_t)a");
	} else {
		const char *rm, *rn;
		rescale_args(c, o, "m", &rm, &rn);
		store_q(c, o, dst, "a", rm, rn);
	}
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_end(c);
}

/* ---- targets ----
 * A kernel with a vector variant is printed once per target under #if,
 * like the float kernels (conv_impl.h): the AVX-512 VNNI variant (u8 x s8
 * dot products of 4 bytes into int32 lanes: vpdpbusd), the AVX2 variant
 * (int16 pairs: vpmaddwd, exact: no saturation but the one case
 * -32768 * -32768 * 2, which wraps modulo 2^32 like every other sum here),
 * the same on SSE2's 128 bits (the x86-64 baseline: pmaddwd; fewer
 * rescales vectorised), and plain C for every other compiler and target.  Intrinsics, not GNU
 * vectors: the dot-product instructions have no portable spelling. */
typedef enum { QK_VNNI, QK_AVX2, QK_SSE2, QK_PLAIN, QK_COUNT } QKind;
_Static_assert((int)QK_COUNT == (int)EC_NTARGET, "one weight count per target");

static const char *const qconds[QK_COUNT] = {
	"defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && "
	"defined(__AVX512VNNI__) && defined(__AVX512VBMI__)",
	"defined(__AVX2__)",
	"defined(__SSE2__)",
	NULL,
};

/* What a target prints for a node: a kernel variant (QK_*) and its
 * scratch; emit prints the arrays and the function. */
typedef struct {
	int (*choose)(Ctx *, void *arg, QKind target);   /* the variant, a QKind */
	int64_t (*scratch)(void *arg, int variant);
	void (*emit)(Ctx *, void *arg, int variant, int64_t scratch);
} QEmit;

/* Print the node once per target (or once when every target takes the
 * same variant); the weight bytes count toward that target's total. */
static void per_target(Ctx *c, void *arg, const QEmit *e)
{
	int var[QK_COUNT], same = 1;
	int64_t sc = 0;
	for (int i = 0; i < QK_COUNT; i++) {
		var[i] = e->choose(c, arg, (QKind)i);
		int64_t s = e->scratch(arg, var[i]);
		sc = s > sc ? s : sc;
		same &= var[i] == var[0];
	}
	if (same) {
		e->emit(c, arg, var[0], sc);
		return;
	}
	int64_t wb = c->wbytes;
	for (int i = 0; i < QK_COUNT; i++) {
		if (qconds[i])
			ec_line(&c->c, "#%s %s", i ? "elif" : "if", qconds[i]);
		else
			ec_line(&c->c, "#else");
		c->wbytes = wb;
		e->emit(c, arg, var[i], sc);
		c->wtarget[i] += c->wbytes - wb;   /* only a build for target i has them */
	}
	ec_line(&c->c, "#endif");
	ec_line(&c->c, "");
	c->wbytes = wb;
}

const char *eq_target_cond(int i)
{
	return qconds[i];
}

/* Raw lines at file scope (no indentation logic). */
void qc_put_text(Ctx *c, const char *const *lines)
{
	for (; *lines; lines++) {
		fputs(*lines, c->c.f);
		fputc('\n', c->c.f);
	}
}

/* [lo - zp, hi - zp] saturated to int32: potc_out's clamp before the add. */
void qc_out_bounds(const QOut *o, int32_t *lo, int32_t *hi)
{
	int64_t l = (int64_t)o->lo - o->zy, h = (int64_t)o->hi - o->zy;
	*lo = l < INT32_MIN ? INT32_MIN : (int32_t)l;
	*hi = h > INT32_MAX ? INT32_MAX : (int32_t)h;
}

/* ---- Conv: variants per target ---- */

enum { V_PLAIN, V_VNNI_CONV, V_VNNI_DW, V_AVX2_CONV, V_AVX2_DW, V_SSE2_CONV, V_SSE2_DW };

/* A target takes its own kernel when the node fits it, else the next
 * target's (an AVX-512 machine runs the AVX2 kernels), else plain C. */
static int conv_choose(Ctx *c, void *arg, QKind t)
{
	QConv *v = arg;
	(void)c;
	int dw = v->Cg == 1 && v->Mg == 1;
	if (t == QK_VNNI && qc_vx_geom(v, dw).ok)
		return dw ? V_VNNI_DW : V_VNNI_CONV;
	if ((t == QK_VNNI || t == QK_AVX2) && qc_vy_geom(v, dw, &qc_isa256).ok)
		return dw ? V_AVX2_DW : V_AVX2_CONV;
	if (t == QK_SSE2 && qc_vy_geom(v, dw, &qc_isa128).ok)
		return dw ? V_SSE2_DW : V_SSE2_CONV;
	return V_PLAIN;
}

static int64_t conv_scratch(void *arg, int var)
{
	QConv *v = arg;
	const Isa *I = var == V_SSE2_CONV || var == V_SSE2_DW ? &qc_isa128 : &qc_isa256;
	Vx x;
	switch (var) {
	case V_VNNI_DW:
		return qc_vnni_dw_scratch(v);
	case V_VNNI_CONV:
		x = qc_vx_geom(v, 0);
		return x.xbytes + x.tbytes;
	case V_AVX2_DW:
	case V_SSE2_DW:
		return qc_avx2_dw_scratch(v, I);
	case V_AVX2_CONV:
	case V_SSE2_CONV:
		x = qc_vy_geom(v, 0, I);
		return x.xbytes + align64(x.tbytes) + qc_vy_rowbuf(&x, v->C);
	default:
		return plain_dot_ok(v) ? plain_dot_scratch(v) : plain_conv_scratch(v);
	}
}

static void conv_emit(Ctx *c, void *arg, int var, int64_t scratch)
{
	QConv *v = arg;
	v->scratch = scratch;
	switch (var) {
	case V_VNNI_DW: qc_vnni_dw(c, v, scratch); break;
	case V_VNNI_CONV: qc_vnni_conv(c, v, scratch); break;
	case V_AVX2_DW: qc_avx2_dw(c, v, scratch, &qc_isa256); break;
	case V_AVX2_CONV: qc_avx2_conv(c, v, scratch, &qc_isa256); break;
	case V_SSE2_DW: qc_avx2_dw(c, v, scratch, &qc_isa128); break;
	case V_SSE2_CONV: qc_avx2_conv(c, v, scratch, &qc_isa128); break;
	default:
		if (plain_dot_ok(v))
			plain_conv_dot(c, v);
		else
			plain_conv(c, v);
		break;
	}
}

int eq_conv(Ctx *c)
{
	QConv v = {0};
	if (qconv_init(c, &v))
		return 1;
	qconv_flatten(&v);
	QEmit e = {conv_choose, conv_scratch, conv_emit};
	per_target(c, &v, &e);
	return 0;
}

/* ---- Gemm, MatMul ---- */

/* y row i (of the batch at pa / pb / py): t[N] accumulators. */
static void plain_mm_rows(Ctx *c, const QMm *q, const PW *pw, const char *bb)
{
	const QOut *o = &q->o;
	const char *at = acc_type(o), *rm, *rn;
	ec_line(&c->c, "for (long i = 0; i < %lld; i++) {", (long long)q->M);
	ec_line(&c->c, "const %s *const ai = pa + i * %lld;", ec_ctype(o->xt), (long long)q->K);
	if (q->constb)
		ec_line(&c->c, "for (long j = 0; j < %lld; j++) t[j] = (%s)%s[j];", (long long)q->N, at, bb);
	else
		ec_line(&c->c, "for (long j = 0; j < %lld; j++) t[j] = 0;", (long long)q->N);
	ec_line(&c->c, "for (long k = 0; k < %lld; k++) {", (long long)q->K);
	if (q->constb) {
		ec_line(&c->c, "const int32_t ak = ai[k];");
		if (pw->width)
			ec_line(&c->c, "const long wk = wb + k * %lld;", (long long)q->N);
		else
			ec_line(&c->c, "const %s *const wk = wb + k * %lld;", ec_ctype(pw->dt), (long long)q->N);
		ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)q->N);
		ec_line(&c->c, "\tt[j] += %s;", acc_add(c, o, "ak", plain_w_read(c, pw, "wk", "j")));
	} else {
		ec_line(&c->c, "const int32_t ak = (int32_t)ai[k] - %ld;", (long)o->zx);
		ec_line(&c->c, "const %s *const bk = pb + k * %lld;", ec_ctype(q->bt), (long long)q->N);
		ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)q->N);
		ec_line(&c->c, "\tt[j] += %s;", acc_add(c, o, "ak", arena_printf(c->g->arena, "((int32_t)bk[j] - %ld)",
		        (long)q->zb)));
	}
	ec_line(&c->c, "}");
	rescale_args(c, o, "j", &rm, &rn);
	ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)q->N);
	c->c.depth++;
	store_acc(c, o, arena_printf(c->g->arena, "py[i * %lld + j]", (long long)q->N), "t[j]", rm, rn);
	c->c.depth--;
	ec_line(&c->c, "}");
}

static void plain_mm(Ctx *c, QMm *q)
{
	const QOut *o = &q->o;
	const char *at = acc_type(o);
	PW pw = {0, DT_I8, NULL};
	char wn[32], bn[32];
	snprintf(wn, sizeof wn, "n%d_w", c->id);
	snprintf(bn, sizeof bn, "n%d_b", c->id);
	if (q->constb) {
		ec_line(&c->c, "/* B - zw as [%lld][k %lld][n %lld]; bias - zp_a * sum_k(B - zw) */", (long long)q->nbb,
		        (long long)q->K, (long long)q->N);
		pw = put_plain_w(c, arena_strdup(c->g->arena, wn), q->wq, q->w, q->nbb * q->K * q->N);
		qc_put_bias(c, o, bn, q->bias, q->sumw, o->zx, q->nbb * q->N);
	}
	qc_put_rescale(c, o, RF_PLAIN);
	ec_begin(c, q->scratch);
	ec_line(&c->c, "%s *const t = (%s *)(void *)s;", at, at);
	char iy[128] = "0", ia[128] = "0", ib[128] = "0";
	if (q->bn) {
		nest_open(c, q->bn);
		nest_index(q->bn, 0, iy, sizeof iy);
		nest_index(q->bn, 1, ia, sizeof ia);
		nest_index(q->bn, 2, ib, sizeof ib);
		if (!iy[0])
			strcpy(iy, "0");
		if (!ia[0])
			strcpy(ia, "0");
		if (!ib[0])
			strcpy(ib, "0");
	} else {
		ec_line(&c->c, "{");
	}
	ec_line(&c->c, "const %s *const pa = %s + %s;", ec_ctype(o->xt), q->a, ia);
	ec_line(&c->c, "%s *const py = y0 + %s;", ec_ctype(o->yt), iy);
	if (q->constb) {
		/* b's batch offset is in K * N elements; the bias's in N */
		ec_line(&c->c, "const long bo = (%s) / %lld;", ib, (long long)q->K);
		plain_w_decl(c, &pw, "wb", arena_printf(c->g->arena, "bo * %lld", (long long)q->K));
		ec_line(&c->c, "const %s *const bb = %s + bo;", o->acc64 ? "int64_t" : "int32_t", bn);
		plain_mm_rows(c, q, &pw, "bb");
	} else {
		ec_line(&c->c, "const %s *const pb = %s + %s;", ec_ctype(q->bt), q->b, ib);
		plain_mm_rows(c, q, &pw, NULL);
	}
	if (q->bn)
		nest_close(c, q->bn);
	else
		ec_line(&c->c, "}");
	ec_end(c);
}

/* Constant B (batch-major [nbb][K][N] after relayout) minus its zero
 * points, with sums over k. */
static void mm_const_b(Ctx *c, QMm *q, const Tensor *b, int tb, const Tensor *bias)
{
	int64_t K = q->K, N = q->N, nbb = q->nbb;
	q->wq = b->q;
	q->w = arena_alloc(c->g->arena, sizeof *q->w * (size_t)(nbb * K * N > 0 ? nbb * K * N : 1));
	q->sumw = arena_alloc(c->g->arena, sizeof *q->sumw * (size_t)(nbb * N + 1));
	q->bias = arena_alloc(c->g->arena, sizeof *q->bias * (size_t)(nbb * N + 1));
	for (int64_t bb = 0; bb < nbb; bb++)
		for (int64_t k = 0; k < K; k++)
			for (int64_t j = 0; j < N; j++) {
				int64_t i = bb * K * N + (tb ? j * K + k : k * N + j);
				int64_t wv = wget(b, i) - (b->q ? b->q->zp[ir_quant_channel(b, i)] : 0);
				q->w[(bb * K + k) * N + j] = (int32_t)wv;
				q->sumw[bb * N + j] += wv;
			}
	for (int64_t bb = 0; bb < nbb; bb++)
		for (int64_t j = 0; j < N; j++)
			q->bias[bb * N + j] = bias ? ir_get_i64(bias, j) : 0;
}

enum { M_PLAIN, M_VNNI, M_AVX2, M_SSE2 };

static int mm_choose(Ctx *c, void *arg, QKind t)
{
	QMm *q = arg;
	(void)c;
	if (t == QK_VNNI && qc_vnni_mm_ok(q))
		return M_VNNI;
	if ((t == QK_VNNI || t == QK_AVX2) && qc_avx2_mm_ok(q))
		return M_AVX2;
	if (t == QK_SSE2 && qc_avx2_mm_ok(q))
		return M_SSE2;
	return M_PLAIN;
}

static const Isa *mm_isa(int var)
{
	return var == M_AVX2 ? &qc_isa256 : var == M_SSE2 ? &qc_isa128 : NULL;
}

static int64_t mm_scratch(void *arg, int var)
{
	QMm *q = arg;
	if (var != M_PLAIN)
		return qc_vec_mm_scratch(q, mm_isa(var));
	return q->N * (q->o.acc64 ? 8 : 4);
}

static void mm_emit_var(Ctx *c, void *arg, int var, int64_t scratch)
{
	QMm *q = arg;
	q->scratch = scratch;
	if (var != M_PLAIN)
		qc_vec_mm(c, q, scratch, mm_isa(var));
	else
		plain_mm(c, q);
}

static int mm_emit(Ctx *c, QMm *q)
{
	QEmit e = {mm_choose, mm_scratch, mm_emit_var};
	per_target(c, q, &e);
	return 0;
}

static int eq_gemm(Ctx *c)
{
	const Tensor *a = ec_tin(c, 0), *b = ec_tin(c, 1), *ct = ec_tin(c, 2), *y = ec_tout(c, 0);
	QMm q = {0};
	if (!a || !b || !y)
		return ec_fail(c, "Gemm needs A and B");
	int tb = c->n->a.gemm.tb;
	if (c->n->a.gemm.ta)
		return ec_fail(c, "integer Gemm with transA (the quantization pass removes it)");
	if (a->rank != 2 || b->rank != 2 || y->rank != 2)
		return ec_fail(c, "A, B and Y must be 2-D");
	q.M = a->dim[0];
	q.K = a->dim[1];
	q.N = b->dim[tb ? 0 : 1];
	if (b->dim[tb ? 1 : 0] != q.K || y->dim[0] != q.M || y->dim[1] != q.N)
		return ec_fail(c, "A, B and Y shapes do not agree");
	if (b->kind != TK_CONST || !ec_isint(b->dtype))
		return ec_fail(c, "integer Gemm needs a constant integer B");
	if (ct && (ct->kind != TK_CONST || !ec_isint(ct->dtype) || ir_numel(ct) != q.N))
		return ec_fail(c, "integer Gemm needs a constant integer C of %lld elements", (long long)q.N);
	if (qout_init(c, &q.o, a, y, q.N))
		return 1;
	q.constb = 1;
	q.nbb = 1;
	mm_const_b(c, &q, b, tb, ct);
	q.a = ec_x(c, 0);
	return mm_emit(c, &q);
}

static Tensor batch_of(const Tensor *t, int n)
{
	Tensor b = *t;
	b.rank = n < 0 ? 0 : n;
	return b;
}

static int eq_matmul_op(Ctx *c)
{
	const Tensor *a = ec_tin(c, 0), *b = ec_tin(c, 1), *y = ec_tout(c, 0);
	QMm q = {0};
	if (!a || !b || !y)
		return ec_fail(c, "MatMul needs two inputs");
	if (a->rank < 1 || b->rank < 1)
		return ec_fail(c, "inputs must have rank >= 1");
	q.M = a->rank > 1 ? a->dim[a->rank - 2] : 1;
	q.K = a->dim[a->rank - 1];
	q.N = b->rank > 1 ? b->dim[b->rank - 1] : 1;
	int64_t K2 = b->dim[b->rank > 1 ? b->rank - 2 : 0];
	int nb = y->rank - (a->rank > 1) - (b->rank > 1);
	Tensor ab = batch_of(a, a->rank - 2), bb = batch_of(b, b->rank - 2), yb = batch_of(y, nb);
	Nest *bn = arena_alloc(c->g->arena, sizeof *bn);
	if (q.K != K2 || nb < 0 || ir_numel(y) != ir_numel(&yb) * q.M * q.N)
		return ec_fail(c, "input shapes do not agree with each other or the output");
	nest_init(bn, yb.rank, yb.dim, 3);
	if (nest_bcast(bn, 1, &ab) || nest_bcast(bn, 2, &bb))
		return ec_fail(c, "batch dims do not broadcast");
	nest_bcast(bn, 0, &yb);
	for (int r = 0; r < bn->rank; r++) {
		bn->st[0][r] *= q.M * q.N;
		bn->st[1][r] *= q.M * q.K;
		bn->st[2][r] *= q.K * q.N;
	}
	nest_simplify(bn);
	q.bn = bn;
	if (qout_init(c, &q.o, a, y, q.N))
		return 1;
	if (!ec_isint(b->dtype))
		return ec_fail(c, "integer MatMul: B is %s", ir_dtype_name(b->dtype));
	if (b->kind == TK_CONST) {
		q.constb = 1;
		q.nbb = ir_numel(b) / (q.K * q.N > 0 ? q.K * q.N : 1);
		mm_const_b(c, &q, b, 0, NULL);
	} else {
		if (!b->q || !qt_int(b->dtype))
			return ec_fail(c, "integer MatMul: runtime B needs i8/u8/i16/u16 with a quantization");
		for (int i = 1; i < b->q->nch; i++)
			if (b->q->zp[i] != b->q->zp[0])
				return ec_fail(c, "integer MatMul: runtime B with per-channel zero points");
		q.zb = b->q->zp[0];
		q.bt = b->dtype;
		q.b = ec_x(c, 1);
	}
	q.a = ec_x(c, 0);
	return mm_emit(c, &q);
}

int eq_matmul(Ctx *c)
{
	if (c->n->op == OP_GEMM)
		return eq_gemm(c);
	return eq_matmul_op(c);
}
