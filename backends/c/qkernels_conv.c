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
 * The requantisation is potc_rescale and potc_out from the pasted
 * potc_fixed.h, or vector code that computes the same function exactly.
 *
 * Plain C comes first (the fallback for every target and every shape); the
 * per-target paths under #if are added where the shapes allow them. */
#include <stdlib.h>
#include <string.h>

#include "emit_impl.h"

/* uint32_t u (a sum modulo 2^32) as the int32_t it stands for, without
 * the implementation-defined conversion of values above INT32_MAX. */
#define U2S(u) "(" u " > 0x7fffffffu ? -(int32_t)~" u " - 1 : (int32_t)" u ")"

/* ---- what every kernel reads from the node ---- */

/* The output side: requantisation per output channel. */
typedef struct {
	DType xt, yt;          /* activation and output dtypes */
	int32_t zx, zy, lo, hi;
	int32_t xmin, xmax;    /* the input's q range */
	int acc64;
	int64_t M;             /* output channels */
	Rescale *r;            /* [M] */
	int r1;                /* one Rescale for all channels */
	int64_t *accb;         /* [M] worst |acc| (from the weights), or NULL */
} QOut;

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
static void put_i32(Ctx *c, const char *name, DType dt, const int32_t *v, int64_t n)
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
 * accumulator) or exactly as int64. */
static void put_bias_h(Ctx *c, const QOut *o, const char *name, const int64_t *bias, const int64_t *sumw, int64_t k,
                       int64_t M, int fold)
{
	int64_t *v = malloc(sizeof *v * (size_t)(M > 0 ? M : 1));
	int32_t *v32 = malloc(sizeof *v32 * (size_t)(M > 0 ? M : 1));
	for (int64_t m = 0; m < M; m++) {
		v[m] = bias[m] - k * sumw[m] + (fold ? half_of(o->r[m % o->M]) : 0);
		uint32_t u = (uint32_t)(uint64_t)v[m];   /* modulo 2^32 */
		v32[m] = u > 0x7fffffffu ? -(int32_t)~u - 1 : (int32_t)u;
	}
	if (o->acc64)
		ec_array(c, name, DT_I64, M, v);
	else
		ec_array(c, name, DT_I32, M, v32);
	free(v);
	free(v32);
}

static void put_bias(Ctx *c, const QOut *o, const char *name, const int64_t *bias, const int64_t *sumw, int64_t k,
                     int64_t M)
{
	put_bias_h(c, o, name, bias, sumw, k, M, 0);
}

/* How the channels' rescales look, for the vector kernels: RF_ONE (one
 * Rescale: literals), RF_SHIFT (rounding right shifts, n in [0, 31]),
 * RF_Q31 (Q31 multiply, then such a shift), RF_ANY. */
enum { RF_ONE, RF_SHIFT, RF_Q31, RF_ANY, RF_PLAIN, RF_SHIFTH, RF_PLAINSH };

static int rform_of(const QOut *o)
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
static int rform_vec(const QOut *o)
{
	int ok = o->accb != NULL;
	for (int64_t m = 0; ok && m < o->M; m++)
		ok = o->r[m].m == 0 && o->r[m].n >= 0 && o->r[m].n <= 31 && o->accb[m] + half_of(o->r[m]) <= INT32_MAX;
	return ok ? RF_SHIFTH : rform_of(o);
}

static int32_t thr_of(Rescale r)
{
	return r.n > 0 ? half_of(r) : INT32_MIN;
}

/* Per-channel tables n<id>_rm (m), _rn (n), _rh (2^(n-1), 0 for n <= 0)
 * as the form needs them (RF_PLAIN and RF_ANY: m and n for potc_rescale;
 * RF_PLAINSH: n for potc_qshr); none for one Rescale. */
static void put_rescale(Ctx *c, const QOut *o, int form)
{
	if (o->r1)
		return;
	int64_t M = o->M;
	int32_t *t = malloc(sizeof *t * (size_t)M * 3);
	for (int64_t m = 0; m < M; m++) {
		t[m] = o->r[m].m;
		t[M + m] = o->r[m].n;
		t[2 * M + m] = form == RF_SHIFTH ? thr_of(o->r[m]) : o->r[m].n > 0 && o->r[m].n <= 31 ?
		               (int32_t)1 << (o->r[m].n - 1) : 0;
	}
	if (form == RF_SHIFTH || form == RF_PLAINSH) {
		put_i32(c, arena_printf(c->g->arena, "n%d_rn", c->id), narrow_of(t + M, M), t + M, M);
		if (form == RF_SHIFTH)
			put_i32(c, arena_printf(c->g->arena, "n%d_rt", c->id), DT_I32, t + 2 * M, M);
		free(t);
		return;
	}
	if (form != RF_SHIFT)
		put_i32(c, arena_printf(c->g->arena, "n%d_rm", c->id), DT_I32, t, M);
	put_i32(c, arena_printf(c->g->arena, "n%d_rn", c->id), narrow_of(t + M, M), t + M, M);
	if (form == RF_SHIFT || form == RF_Q31)
		put_i32(c, arena_printf(c->g->arena, "n%d_rh", c->id), DT_I32, t + 2 * M, M);
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
	"static inline uint32_t potc_qshr(uint32_t y, int n, uint32_t tf, uint32_t lo, uint32_t hi)",
	"{",
	"\tuint32_t u = y ^ 0x80000000u;",
	"\tu -= u < tf;",
	"\tu >>= n;",
	"\treturn u < lo ? lo : u > hi ? hi : u;",
	"}",
	"#endif",
	NULL,
};

static void put_text(Ctx *c, const char *const *lines);

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

/* Their tables n<id>_q[5][M] when the channels differ. */
static void put_plain_q(Ctx *c, const QOut *o)
{
	if (o->r1)
		return;
	uint32_t *t = malloc(sizeof *t * (size_t)o->M * 5), k[5];
	for (int64_t m = 0; m < o->M; m++) {
		plain_consts(o, m, k);
		for (int e = 0; e < 5; e++)
			t[e * o->M + m] = k[e];
	}
	ec_array(c, arena_printf(c->g->arena, "n%d_q", c->id), DT_U32, o->M * 5, t);
	free(t);
}

/* const locals n_, tf_, lo_, hi_, z_ of channel expression ch. */
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
	int64_t M = o->M;
	ec_line(&c->c, "const int n_ = (int)n%d_q[%s];", c->id, ch);
	ec_line(&c->c, "const uint32_t tf_ = n%d_q[%lld + %s], lo_ = n%d_q[%lld + %s], hi_ = n%d_q[%lld + %s], "
	        "z_ = n%d_q[%lld + %s];", c->id, (long long)M, ch, c->id, (long long)(2 * M), ch, c->id,
	        (long long)(3 * M), ch, c->id, (long long)(4 * M), ch);
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

typedef struct {
	QOut o;
	Geom G;
	int64_t N, C, M, Cg, Mg, grp, K;  /* K = Cg * kernel size */
	int32_t *w;                       /* [M][K] w - zw, K in (ci, kz, ky, kx) order */
	int64_t *bias, *sumw;             /* [M] */
	int padded;
	int64_t pin[3], pst[3], plane;    /* the (padded) input plane */
	const char *x;
	int64_t scratch;                  /* bytes, the largest any target needs */
} QConv;

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
			int64_t wv = ir_get_i64(w, i) - (w->q ? w->q->zp[ir_quant_channel(w, i)] : 0);
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

static int64_t align16(int64_t n)
{
	return (n + 15) / 16 * 16;
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
	int shh = !o->acc64 && rform_vec(o) == RF_SHIFTH, flat = plain_flat(v);
	int64_t row = plain_row(v);
	char wn[32], bn[32];
	snprintf(wn, sizeof wn, "n%d_w", c->id);
	snprintf(bn, sizeof bn, "n%d_b", c->id);
	DType wt = narrow_of(v->w, v->M * v->K);
	ec_line(&c->c, "/* w - zw as [m %lld][k %lld]; bias - zp_x * sum(w - zw) */", (long long)v->M, (long long)v->K);
	put_i32(c, wn, wt, v->w, v->M * v->K);
	put_bias_h(c, o, bn, v->bias, v->sumw, o->zx, v->M, shh);
	if (shh) {
		put_text(c, qshr_text);
		put_plain_q(c, o);
	} else {
		put_rescale(c, o, RF_PLAIN);
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
	ec_line(&c->c, "const %s *const w = %s + m * %lld;", ec_ctype(wt), wn, (long long)v->K);
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
	ec_line(&c->c, "const %s wk = w[%s];", wt == DT_I32 ? "int32_t" : "int16_t",
	        ec_aff(c, 0, ci, G->ksz, k[0], G->kst[0], k[1], G->kst[1], k[2], (int64_t)1, NULL));
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

/* A Gemm or MatMul being printed. */
typedef struct {
	QOut o;
	int64_t M, K, N;       /* rows, reduction, columns */
	int constb;            /* B constant: w = B - zw as [K][N] (per batch) */
	int32_t *w;            /* constant B - zw, [nbb][K][N] */
	int64_t *bias, *sumw;  /* [nbb][N] (sumw: over k) */
	int64_t nbb;           /* constant B's batch count (1 for Gemm) */
	int32_t zb;            /* runtime B: its zero point */
	const char *a, *b;     /* names */
	DType bt;              /* runtime B's dtype */
	const Nest *bn;        /* MatMul batch dims: operands y, a, b */
	int64_t scratch;
} QMm;

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
	int shh = rform_vec(o) == RF_SHIFTH;
	int64_t CK = v->grp * v->K;
	char wn[32], bn[32], tn[32];
	snprintf(wn, sizeof wn, "n%d_w", c->id);
	snprintf(bn, sizeof bn, "n%d_b", c->id);
	snprintf(tn, sizeof tn, "n%d_to", c->id);
	DType wt = narrow_of(v->w, v->M * v->K);
	ec_line(&c->c, "/* w - zw as [m %lld][k %lld]; the bias; tap offsets */", (long long)v->M, (long long)v->K);
	put_i32(c, wn, wt, v->w, v->M * v->K);
	put_bias_h(c, o, bn, v->bias, v->sumw, 0, v->M, shh);
	int32_t *to = malloc(sizeof *to * (size_t)CK);
	for (int64_t g = 0, k = 0; g < v->grp; g++)
		for (int64_t ci = 0; ci < v->Cg; ci++)
			for (int a = 0; a < G->k[0]; a++)
				for (int b = 0; b < G->k[1]; b++)
					for (int f = 0; f < G->k[2]; f++, k++)
						to[k] = (int32_t)((g * v->Cg + ci) * v->plane + (int64_t)a * G->d[0] * v->pst[0] +
						                  (int64_t)b * G->d[1] * v->pst[1] + (int64_t)f * G->d[2]);
	put_i32(c, tn, narrow_of(to, CK), to, CK);
	free(to);
	if (shh) {
		put_text(c, qshr_text);
		put_plain_q(c, o);
	} else {
		put_rescale(c, o, RF_PLAIN);
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
	ec_line(&c->c, "const %s *const w = %s + m * %lld;", ec_ctype(wt), wn, (long long)v->K);
	ec_line(&c->c, "int32_t a = %s[m];", bn);
	ec_line(&c->c, "for (long k = 0; k < %lld; k++)", (long long)v->K);
	ec_line(&c->c, "\ta += cg[k] * w[k];");
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
 * same variant); the weight bytes counted are those of the largest. */
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
	int64_t wb = c->wbytes, most = 0;
	for (int i = 0; i < QK_COUNT; i++) {
		if (qconds[i])
			ec_line(&c->c, "#%s %s", i ? "elif" : "if", qconds[i]);
		else
			ec_line(&c->c, "#else");
		c->wbytes = wb;
		e->emit(c, arg, var[i], sc);
		most = c->wbytes - wb > most ? c->wbytes - wb : most;
	}
	ec_line(&c->c, "#endif");
	ec_line(&c->c, "");
	c->wbytes = wb + most;
}

/* Raw lines at file scope (no indentation logic). */
static void put_text(Ctx *c, const char *const *lines)
{
	for (; *lines; lines++) {
		fputs(*lines, c->c.f);
		fputc('\n', c->c.f);
	}
}

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
static const char *const q512_text[] = {
	"#include <immintrin.h>",
	"#ifndef POTC_Q512",
	"#define POTC_Q512",
	"static inline __m512i potc_q512_shr(__m512i x, __m512i n, __m512i h)",
	"{",
	"\tconst __m512i r = _mm512_srlv_epi32(_mm512_add_epi32(_mm512_abs_epi32(x), h), n);",
	"\treturn _mm512_mask_sub_epi32(r, _mm512_cmplt_epi32_mask(x, _mm512_setzero_si512()), _mm512_setzero_si512(), r);",
	"}",
	"static inline __m512i potc_q512_shrh(__m512i y, __m512i n, __m512i t)",
	"{",
	"\treturn _mm512_srav_epi32(_mm512_mask_sub_epi32(y, _mm512_cmplt_epi32_mask(y, t), y, _mm512_set1_epi32(1)), n);",
	"}",
	"static inline __m512i potc_q512_mulq31(__m512i x, __m512i m)",
	"{",
	"\tconst __m512i h = _mm512_set1_epi64((long long)1 << 30);",
	"\tconst __m512i e = _mm512_srai_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, m), h), 31);",
	"\tconst __m512i o = _mm512_srai_epi64(_mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32),",
	"\t                                                                      _mm512_srli_epi64(m, 32)), h), 31);",
	"\treturn _mm512_mask_blend_epi32(0xAAAA, e, _mm512_slli_epi64(o, 32));",
	"}",
	"static inline __m512i potc_q512_lsat(__m512i x, int l)",
	"{",
	"\tconst __m512i hi = _mm512_set1_epi32(INT32_MAX >> l), lo = _mm512_set1_epi32(~(INT32_MAX >> l));",
	"\tconst __m512i r = _mm512_sllv_epi32(x, _mm512_set1_epi32(l));",
	"\tconst __m512i t = _mm512_mask_mov_epi32(r, _mm512_cmpgt_epi32_mask(x, hi), _mm512_set1_epi32(INT32_MAX));",
	"\treturn _mm512_mask_mov_epi32(t, _mm512_cmplt_epi32_mask(x, lo), _mm512_set1_epi32(INT32_MIN));",
	"}",
	"static inline __m512i potc_q512_rescale(__m512i x, int32_t m, int n)",
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
	"static inline __m512i potc_q512_out(__m512i v, int32_t zp, int32_t lo, int32_t hi)",
	"{",
	"\tv = _mm512_min_epi32(_mm512_max_epi32(v, _mm512_set1_epi32(lo)), _mm512_set1_epi32(hi));",
	"\treturn _mm512_add_epi32(v, _mm512_set1_epi32(zp));",
	"}",
	"/* Rows r0..r3 (NULL: pad) of n bytes, each xor f, as n 4-byte quads at d:",
	" * the four 16-byte pieces in one zmm, interleaved by one vpermb. */",
	"static const unsigned char potc_q512_qix[64] = {0, 16, 32, 48, 1, 17, 33, 49, 2, 18, 34, 50, 3, 19, 35, 51, 4, 20, 36, 52, 5, 21, 37, 53, 6, 22, 38, 54, 7, 23, 39, 55, 8, 24, 40, 56, 9, 25, 41, 57, 10, 26, 42, 58, 11, 27, 43, 59, 12, 28, 44, 60, 13, 29, 45, 61, 14, 30, 46, 62, 15, 31, 47, 63};",
	"static inline void potc_q512_quads(unsigned char *d, const unsigned char *r0, const unsigned char *r1,",
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
	"static inline void potc_q512_copyx(unsigned char *d, const unsigned char *r, long n, int f)",
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
	"static inline int32_t potc_q_ld32(const unsigned char *p)",
	"{",
	"\tint32_t v;",
	"\tmemcpy(&v, p, 4);",
	"\treturn v;",
	"}",
	"#endif",
	"#endif",
	NULL,
};

/* [lo - zp, hi - zp] saturated to int32: potc_out's clamp before the add. */
static void out_bounds(const QOut *o, int32_t *lo, int32_t *hi)
{
	int64_t l = (int64_t)o->lo - o->zy, h = (int64_t)o->hi - o->zy;
	*lo = l < INT32_MIN ? INT32_MIN : (int32_t)l;
	*hi = h > INT32_MAX ? INT32_MAX : (int32_t)h;
}

/* ---- Conv, AVX-512 VNNI ----
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
typedef enum { VO_DIRECT, VO_ROWS, VO_TBUF } VOut;

/* Tiles: at most VX_NV vectors of positions by VX_ACC / nv channels.
 * Measured on the Fashion-MNIST samples (Zen 5, gcc 12): 8 to 12
 * accumulators are as fast as 16 to 24 or faster, which make gcc spill
 * (it keeps the epilogue's constants in registers too). */
enum { VX_MAXTAP = 64, VX_ACC = 12, VX_NV = 3 };

/* The intrinsics of a 256- or 128-bit integer kernel (AVX2, SSE2). */
typedef struct {
	int L;                 /* int32 lanes */
	const char *p, *ty, *h; /* "_mm256", "__m256i", "q256" */
	const char *ld, *st;   /* unaligned load and store of a vector */
	int sse2;
} Isa;

static const Isa isa256 = {8, "_mm256", "__m256i", "q256",
                           "_mm256_loadu_si256((const __m256i *)(const void *)", "_mm256_storeu_si256((__m256i *)(void *)", 0};
static const Isa isa128 = {4, "_mm", "__m128i", "q128",
                           "_mm_loadu_si128((const __m128i *)(const void *)", "_mm_storeu_si128((__m128i *)(void *)", 1};

/* The tile kinds: VNNI u8 quads; AVX2 int16 pairs (vpmaddwd). */
typedef enum { VK_VNNI, VK_AVX2 } VKind;

typedef struct {
	QConv *v;
	VKind kind;
	const Isa *isa;          /* AVX2 and SSE2 */
	int L;                   /* lanes: 16 (zmm), 8 (ymm) or 4 (xmm) */
	int unit;                /* plane bytes per flat position */
	int xq, s, nkq;
	int64_t Wp, OWp, Q, QR;  /* plane pitch, output pitch, outputs, rounded to L */
	int64_t ncq, nq, KQ;     /* quads: per tap loop (CQ: channel quads; XQ: channels), taps, per channel */
	int sr;                  /* row phases: padded row R is row R / sr of phase R % sr */
	int64_t PHB, PLB;        /* bytes of one row phase, of one channel (or quad) plane */
	VOut out;
	int np, nv;
	int flip, padb;
	int64_t xbytes, tbytes;
	int64_t off[VX_MAXTAP];  /* tap offsets in bytes */
	int64_t vstep;           /* bytes from one vector to the next */
	int ok;
} Vx;

static int64_t align64(int64_t n)
{
	return (n + 63) / 64 * 64;
}

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
static VOut vx_out_mode(const Geom *G, int64_t owp, int L, int64_t *pitch)
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

static Vx vx_geom(QConv *v, int depthwise)
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
	x.out = vx_out_mode(G, (v->pin[2] + s - 1) / s, 16, &x.OWp);
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
	put_i32(c, name, DT_I32, q, n);
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

/* ---- the vector epilogue: rescale, clamp, convert, store ----
 * After the rescale, potc_out's clamp to [lo, hi] and the narrowing:
 * with zp_y = 0 a saturating convert (vpmovsdb, vpmovusdb after max 0)
 * is the clamp to the dtype's range, so only a narrower lo or hi costs
 * an instruction; otherwise clamp to [lo - zp, hi - zp], add zp and
 * truncate (the values are in range). */
typedef struct {
	int maxv, minv, addz;
	int32_t lo, hi, zy;
	const char *cvt;     /* "cvtsepi32", "cvtusepi32" or "cvtepi32" */
	int w16;             /* 16-bit output */
} OutPlan;

static OutPlan out_plan(const QOut *o)
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
	out_bounds(o, &p.lo, &p.hi);
	p.maxv = p.lo > INT32_MIN;
	p.minv = p.hi < INT32_MAX;
	p.addz = 1;
	return p;
}

/* r = the clamp (and zero point) of r, 16 lanes. */
static void out512(Ctx *c, const OutPlan *p, const char *r)
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
static void store512(Ctx *c, const OutPlan *p, const char *r, const char *dst, int valid, const char *mk)
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
		        (long)thr_of(o->r[0]));
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

/* A vector of a tile: flat position q (expression), output element yi
 * within the channel's plane (or the row buffer), lanes to store. */
typedef struct {
	const char *q, *yi;
	int valid;
} VxVec;


/* One tile: np channels from m0 (of the group) times nv vectors. */
static void vnni_tile(Ctx *c, const Vx *x, int np, int nv, const VxVec *vec)
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
	OutPlan op = out_plan(o);
	int form = rform_vec(o);
	int64_t ysz = (int64_t)ir_dtype_size(o->yt);
	for (int p = 0; p < np; p++) {
		const char *ch = arena_printf(c->g->arena, "mg + m0 + %d", p);
		ec_line(&c->c, "{");
		params512(c, o, form, ch, "");
		for (int u = 0; u < nv; u++) {
			ec_line(&c->c, "{");
			ec_line(&c->c, "__m512i r = %s;", rescale512(c, o, form, arena_printf(c->g->arena, "a%d_%d", p, u), ch, ""));
			out512(c, &op, "r");
			const char *dst = x->out == VO_TBUF ?
			    arena_printf(c->g->arena, "ts + (%lld + %s) * %lld", (long long)(p * x->QR), vec[u].q, (long long)ysz) :
			    arena_printf(c->g->arena, "yg + (m0 + %d) * %lld + %s", p, (long long)v->G.outsz, vec[u].yi);
			store512(c, &op, "r", dst, x->out == VO_TBUF ? 16 : vec[u].valid, NULL);
			ec_line(&c->c, "}");
		}
		ec_line(&c->c, "}");
	}
	ec_line(&c->c, "}");
}

/* ---- AVX2: 8 int32 lanes ----
 * The same helpers on ymm (no masks, no 64-bit arithmetic shift):
 *   shr: sign(x) * ((|x| + h) >> n) with vpsignd;
 *   shrh: as potc_q512_shrh, the compare giving -1 where y < t;
 *   mulq31: the 64-bit product plus 2^62 + 2^30 is positive, so a
 *        logical shift by 31 gives floor((x m + 2^30) / 2^31) + 2^31,
 *        whose low 32 bits flipped in the top bit are the result;
 *   packs: the saturating packs clamp to the output dtype's range for
 *        free (i16 on the way to i8/u8: exact, every value fits). */
static const char *const q256_text[] = {
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
	"static inline __m256i potc_q256_shr(__m256i x, __m256i n, __m256i h)",
	"{",
	"\treturn _mm256_sign_epi32(_mm256_srlv_epi32(_mm256_add_epi32(_mm256_abs_epi32(x), h), n), x);",
	"}",
	"static inline __m256i potc_q256_shrh(__m256i y, __m256i n, __m256i t)",
	"{",
	"\treturn _mm256_srav_epi32(_mm256_add_epi32(y, _mm256_cmpgt_epi32(t, y)), n);",
	"}",
	"static inline __m256i potc_q256_mulq31(__m256i x, __m256i m)",
	"{",
	"\tconst __m256i c = _mm256_set1_epi64x(((long long)1 << 62) + ((long long)1 << 30));",
	"\tconst __m256i e = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(x, m), c), 31);",
	"\tconst __m256i o = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32),",
	"\t                                                                      _mm256_srli_epi64(m, 32)), c), 31);",
	"\treturn _mm256_xor_si256(_mm256_blend_epi32(e, _mm256_slli_epi64(o, 32), 0xAA), _mm256_set1_epi32(INT32_MIN));",
	"}",
	"static inline __m256i potc_q256_lsat(__m256i x, int l)",
	"{",
	"\tconst __m256i hi = _mm256_set1_epi32(INT32_MAX >> l), lo = _mm256_set1_epi32(~(INT32_MAX >> l));",
	"\tconst __m256i r = _mm256_sllv_epi32(x, _mm256_set1_epi32(l));",
	"\tconst __m256i t = _mm256_blendv_epi8(r, _mm256_set1_epi32(INT32_MAX), _mm256_cmpgt_epi32(x, hi));",
	"\treturn _mm256_blendv_epi8(t, _mm256_set1_epi32(INT32_MIN), _mm256_cmpgt_epi32(lo, x));",
	"}",
	"static inline __m256i potc_q256_rescale(__m256i x, int32_t m, int n)",
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
	"static inline int16_t potc_q_w1(const void *p, long i, int t)",
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
	"static inline __m256i potc_q256_w16(const void *p, int t)",
	"{",
	"\tif (t == 0)",
	"\t\treturn _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p));",
	"\tif (t == 1)",
	"\t\treturn _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p));",
	"\tif (t == 2)",
	"\t\treturn _mm256_loadu_si256((const __m256i *)p);",
	"\treturn _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)p), _mm256_set1_epi16((short)0x8000));",
	"}",
	"static inline void potc_q256_pair16(int16_t *d, const void *a, const void *b, int t, int pad)",
	"{",
	"\tconst __m256i x = potc_q256_w16(a, t), y = b ? potc_q256_w16(b, t) : _mm256_set1_epi16((short)pad);",
	"\tconst __m256i lo = _mm256_unpacklo_epi16(x, y), hi = _mm256_unpackhi_epi16(x, y);",
	"\t_mm256_storeu_si256((__m256i *)(void *)d, _mm256_permute2x128_si256(lo, hi, 0x20));",
	"\t_mm256_storeu_si256((__m256i *)(void *)(d + 16), _mm256_permute2x128_si256(lo, hi, 0x31));",
	"}",
	"/* Rows a, b (NULL: pad) of n elements of type t as n int16 pairs at d:",
	" * 16 at a time, the last 16 overlapping; short rows through a copy. */",
	"static inline void potc_q256_pairs(int16_t *d, const void *a, const void *b, long n, int t, int pad)",
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
	"static inline int32_t potc_q_ld32(const unsigned char *p)",
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
static const char *const q128_text[] = {
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
	"static inline __m128i potc_q128_shrh(__m128i y, int n, __m128i t)",
	"{",
	"\treturn _mm_sra_epi32(_mm_add_epi32(y, _mm_cmpgt_epi32(t, y)), _mm_cvtsi32_si128(n));",
	"}",
	"/* potc_rshift_rnd32 by n in [0, 31] (h = 2^(n-1)): sign and magnitude */",
	"static inline __m128i potc_q128_shr(__m128i x, int n, int32_t h)",
	"{",
	"\tconst __m128i s = _mm_srai_epi32(x, 31), a = _mm_sub_epi32(_mm_xor_si128(x, s), s);",
	"\tconst __m128i r = _mm_srl_epi32(_mm_add_epi32(a, _mm_set1_epi32(h)), _mm_cvtsi32_si128(n));",
	"\treturn _mm_sub_epi32(_mm_xor_si128(r, s), s);",
	"}",
	"/* potc_mul_q31 for m in [2^30, 2^31): unsigned 32 x 32 products (pmuludq)",
	" * less m * 2^32 where x < 0 are the signed ones; plus 2^62 + 2^30 they are",
	" * positive, so a logical shift by 31 floors; the low 32 bits hold the",
	" * result plus 2^31. */",
	"static inline __m128i potc_q128_mulq31(__m128i x, int32_t m)",
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
	"static inline __m128i potc_q128_max(__m128i a, __m128i b)",
	"{",
	"\tconst __m128i m = _mm_cmpgt_epi32(a, b);",
	"\treturn _mm_or_si128(_mm_and_si128(m, a), _mm_andnot_si128(m, b));",
	"}",
	"static inline __m128i potc_q128_min(__m128i a, __m128i b)",
	"{",
	"\tconst __m128i m = _mm_cmpgt_epi32(a, b);",
	"\treturn _mm_or_si128(_mm_and_si128(m, b), _mm_andnot_si128(m, a));",
	"}",
	"static inline __m128i potc_q128_rescale(__m128i x, int32_t m, int n)",
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
	"static inline int16_t potc_q_w1(const void *p, long i, int t)",
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
	"static inline __m128i potc_q128_w8(const void *p, int t)",
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
	"static inline void potc_q128_pair8(int16_t *d, const void *a, const void *b, int t, int pad)",
	"{",
	"\tconst __m128i x = potc_q128_w8(a, t), y = b ? potc_q128_w8(b, t) : _mm_set1_epi16((short)pad);",
	"\t_mm_storeu_si128((__m128i *)(void *)d, _mm_unpacklo_epi16(x, y));",
	"\t_mm_storeu_si128((__m128i *)(void *)(d + 8), _mm_unpackhi_epi16(x, y));",
	"}",
	"static inline void potc_q128_pairs(int16_t *d, const void *a, const void *b, long n, int t, int pad)",
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
	"static inline int32_t potc_q_ld32(const unsigned char *p)",
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
static OutPlan out_plan256(const QOut *o)
{
	OutPlan p = out_plan(o);
	int uns = o->yt == DT_U8 || o->yt == DT_U16;
	if (o->zy == 0 && uns)
		p.maxv = o->lo > 0;
	p.cvt = uns ? "packus" : "packs";
	return p;
}

static void out256(Ctx *c, const Isa *I, const OutPlan *p, const char *r)
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
static void store256(Ctx *c, const Isa *I, const OutPlan *p, const char *r, const char *dst, int valid)
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
	const char *tt = o->r1 ? arena_printf(c->g->arena, "%ld", (long)thr_of(o->r[0])) :
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
static void avx2_tile(Ctx *c, const Vx *x, int np, int nv, const VxVec *vec)
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
	OutPlan op = out_plan256(o);
	int form = form_of(I, rform_vec(o));
	int64_t ysz = (int64_t)ir_dtype_size(o->yt);
	for (int p = 0; p < np; p++) {
		const char *ch = arena_printf(c->g->arena, "mg + m0 + %d", p);
		ec_line(&c->c, "{");
		params256(c, I, o, form, ch);
		for (int u = 0; u < nv; u++) {
			ec_line(&c->c, "{");
			ec_line(&c->c, "%s r = %s;", T, rescale256(c, I, o, form, arena_printf(c->g->arena, "a%d_%d", p, u), ch));
			out256(c, I, &op, "r");
			const char *dst = x->out == VO_TBUF ?
			    arena_printf(c->g->arena, "ts + (%lld + %s) * %lld", (long long)(p * x->QR), vec[u].q, (long long)ysz) :
			    arena_printf(c->g->arena, "yg + (m0 + %d) * %lld + %s", p, (long long)v->G.outsz, vec[u].yi);
			store256(c, I, &op, "r", dst, x->out == VO_TBUF ? I->L : vec[u].valid);
			ec_line(&c->c, "}");
		}
		ec_line(&c->c, "}");
	}
	ec_line(&c->c, "}");
}

static void vx_tile(Ctx *c, const Vx *x, int np, int nv, const VxVec *vec)
{
	if (x->kind == VK_VNNI)
		vnni_tile(c, x, np, nv, vec);
	else
		avx2_tile(c, x, np, nv, vec);
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
static void vx_positions(Ctx *c, const Vx *x, int np)
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

typedef struct {
	const Vx *x;
} VxArg;

static void vx_chunk(Ctx *c, const void *arg, int64_t np)
{
	vx_positions(c, ((const VxArg *)arg)->x, (int)np);
}

typedef void (*ChunkFn)(Ctx *, const void *arg, int64_t size);
static void even_chunks(Ctx *c, const char *var, int64_t total, int64_t step, ChunkFn fn, const void *arg);

/* The node's arrays and the loads both variants share. */
static void vx_arrays(Ctx *c, const Vx *x, int depthwise)
{
	const QConv *v = x->v;
	const QOut *o = &v->o;
	put_text(c, q512_text);
	vx_put_weights(c, x, arena_printf(c->g->arena, "n%d_wq", c->id));
	put_bias_h(c, o, arena_printf(c->g->arena, "n%d_bq", c->id), v->bias, v->sumw, o->zx + (x->flip ? 128 : 0), v->M,
	           rform_vec(o) == RF_SHIFTH);
	put_rescale(c, o, rform_vec(o));
	if (x->xq)
		vx_put_index(c, x, arena_printf(c->g->arena, "n%d_ix", c->id));
	(void)depthwise;
}

static void vnni_conv(Ctx *c, QConv *v, int64_t scratch)
{
	Vx x = vx_geom(v, 0);
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
	even_chunks(c, "m0", v->Mg, x.np, vx_chunk, &a);
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_end(c);
}

/* Depthwise (one input channel per output channel): per channel the flat
 * loop of vx_positions with kx quads (vpermb windows) of its taps.
 * Planes are filled in blocks of DW_CB channels, each phase over the
 * whole block (reading a plane right after writing it stalls on store
 * forwarding); the pads are written once per call, only the interiors
 * are rewritten. */
enum { DW_CB = 8 };

static void vnni_dw(Ctx *c, QConv *v, int64_t scratch)
{
	Vx x = vx_geom(v, 1);
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
	vx_positions(c, &x, 1);
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_end(c);
}

static int64_t vnni_dw_scratch(QConv *v)
{
	Vx x = vx_geom(v, 1);
	int64_t cb = v->M < DW_CB ? v->M : DW_CB;
	return cb * x.PLB + (x.out == VO_TBUF ? x.QR * (int64_t)ir_dtype_size(v->o.yt) : 0);
}

/* ---- Conv, AVX2 ----
 * Channel pairs (CQ with pairs): the input as int16 [pair][pixel][2] in
 * scratch, each tap one vpmaddwd + vpaddd per accumulator with the
 * channel's two int16 weights broadcast; stride 1.  u16 inputs are moved
 * to int16 as x - 32768 (the bias takes 32768 * sum w').  Depthwise: the
 * padded plane split into s x s phase planes (row and column remainders
 * mod the stride) so every tap reads its phase plane at unit stride,
 * elements widened to int32 lanes, vpmulld per tap. */
enum { VY_ACC = 8, VY_NV = 2 };

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
static Vx vy_geom(QConv *v, int dw, const Isa *I)
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
	x.out = vx_out_mode(G, (v->pin[2] + s - 1) / s, x.L, &x.OWp);
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
static int64_t vy_rowbuf(const Vx *x, int64_t nplanes)
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
	put_i32(c, name, DT_I32, q, n);
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
	put_text(c, x->isa->sse2 ? q128_text : q256_text);
	vy_put_weights(c, x, arena_printf(c->g->arena, "n%d_wq", c->id));
	put_bias_h(c, o, arena_printf(c->g->arena, "n%d_bq", c->id), v->bias, v->sumw,
	           o->zx + avx2_offset(v), v->M, rform_vec(o) == RF_SHIFTH);
	put_rescale(c, o, form_of(x->isa, rform_vec(o)));
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

static void avx2_conv(Ctx *c, QConv *v, int64_t scratch, const Isa *I)
{
	Vx x = vy_geom(v, 0, I);
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
	even_chunks(c, "m0", v->Mg, x.np, vx_chunk, &a);
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_end(c);
}

static void avx2_dw(Ctx *c, QConv *v, int64_t scratch, const Isa *I)
{
	Vx x = vy_geom(v, 1, I);
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
	vx_positions(c, &x, 1);
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_end(c);
}

static int64_t avx2_dw_scratch(QConv *v, const Isa *I)
{
	Vx x = vy_geom(v, 1, I);
	int64_t cb = v->M < DW_CB ? v->M : DW_CB;
	return cb * x.PLB + (x.out == VO_TBUF ? align64(x.QR * (int64_t)ir_dtype_size(v->o.yt)) : 0) + vy_rowbuf(&x, cb);
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

static int vnni_mm_ok(const QMm *q)
{
	if (!q->constb || q->o.acc64 || (q->o.xt != DT_I8 && q->o.xt != DT_U8))
		return 0;
	for (int64_t i = 0; i < q->nbb * q->K * q->N; i++)
		if (q->w[i] < -128 || q->w[i] > 127)
			return 0;
	return 1;
}

static int avx2_mm_ok(const QMm *q)
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
	v.rform = rform_of(&q->o);
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
		put_i32(c, arena_printf(c->g->arena, "n%d_vm", c->id), DT_I32, t, npad);
	put_i32(c, arena_printf(c->g->arena, "n%d_vn", c->id), DT_I32, t + npad, npad);
	if (form == RF_SHIFT || form == RF_Q31)
		put_i32(c, arena_printf(c->g->arena, "n%d_vh", c->id), DT_I32, t + 2 * npad, npad);
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
	put_i32(c, name, v->avx2 ? DT_I16 : DT_I8, w, n);
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
	put_bias(c, &q->o, name, b, sw, k, n);
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
	OutPlan op = x2 ? out_plan256(o) : out_plan(o);
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
				out256(c, v->I, &op, "r");
				store256(c, v->I, &op, "r", dst, valid);
			} else {
				out512(c, &op, "r");
				store512(c, &op, "r", dst, valid, NULL);
			}
			ec_line(&c->c, "}");
		}
	ec_line(&c->c, "}");
}

/* var over [0, total) in chunks of at most step, as even as possible,
 * each printed by fn(size). */
static void even_chunks(Ctx *c, const char *var, int64_t total, int64_t step, ChunkFn fn, const void *arg)
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
	even_chunks(c, "nb0", v->NBF, v->nv, vg_blocks, &b);
	if (v->NBF < v->NB) {
		ec_line(&c->c, "{");
		ec_line(&c->c, "const long nb0 = %lld;", (long long)v->NBF);
		vg_tile(c, v, (int)np, 1, (int)(v->q->N - v->NBF * v->L));
		ec_line(&c->c, "}");
	}
}

static void vec_mm(Ctx *c, QMm *q, int64_t scratch, const Isa *I)
{
	int avx2 = I != NULL;
	Vg v = vg_geom(q, I);
	const QOut *o = &q->o;
	char wn[32], bn[32];
	snprintf(wn, sizeof wn, "n%d_wq", c->id);
	snprintf(bn, sizeof bn, "n%d_bq", c->id);
	put_text(c, !I ? q512_text : I->sse2 ? q128_text : q256_text);
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
	even_chunks(c, "i0", q->M, v.np, vg_rows, &a);
	ec_line(&c->c, "}");
	if (q->bn && q->bn->rank)
		nest_close(c, q->bn);
	else
		ec_line(&c->c, "}");
	ec_end(c);
}

static int64_t vec_mm_scratch(QMm *q, const Isa *I)
{
	Vg v = vg_geom(q, I);
	return q->M * v.KG * (I ? 2 : 1) + 64;
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
	if (t == QK_VNNI && vx_geom(v, dw).ok)
		return dw ? V_VNNI_DW : V_VNNI_CONV;
	if ((t == QK_VNNI || t == QK_AVX2) && vy_geom(v, dw, &isa256).ok)
		return dw ? V_AVX2_DW : V_AVX2_CONV;
	if (t == QK_SSE2 && vy_geom(v, dw, &isa128).ok)
		return dw ? V_SSE2_DW : V_SSE2_CONV;
	return V_PLAIN;
}

static int64_t conv_scratch(void *arg, int var)
{
	QConv *v = arg;
	const Isa *I = var == V_SSE2_CONV || var == V_SSE2_DW ? &isa128 : &isa256;
	Vx x;
	switch (var) {
	case V_VNNI_DW:
		return vnni_dw_scratch(v);
	case V_VNNI_CONV:
		x = vx_geom(v, 0);
		return x.xbytes + x.tbytes;
	case V_AVX2_DW:
	case V_SSE2_DW:
		return avx2_dw_scratch(v, I);
	case V_AVX2_CONV:
	case V_SSE2_CONV:
		x = vy_geom(v, 0, I);
		return x.xbytes + align64(x.tbytes) + vy_rowbuf(&x, v->C);
	default:
		return plain_dot_ok(v) ? plain_dot_scratch(v) : plain_conv_scratch(v);
	}
}

static void conv_emit(Ctx *c, void *arg, int var, int64_t scratch)
{
	QConv *v = arg;
	v->scratch = scratch;
	switch (var) {
	case V_VNNI_DW: vnni_dw(c, v, scratch); break;
	case V_VNNI_CONV: vnni_conv(c, v, scratch); break;
	case V_AVX2_DW: avx2_dw(c, v, scratch, &isa256); break;
	case V_AVX2_CONV: avx2_conv(c, v, scratch, &isa256); break;
	case V_SSE2_DW: avx2_dw(c, v, scratch, &isa128); break;
	case V_SSE2_CONV: avx2_conv(c, v, scratch, &isa128); break;
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
static void plain_mm_rows(Ctx *c, const QMm *q, const char *wb, const char *bb, const char *wt)
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
		ec_line(&c->c, "const %s *const wk = %s + k * %lld;", wt, wb, (long long)q->N);
		ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)q->N);
		ec_line(&c->c, "\tt[j] += %s;", acc_add(c, o, "ak", "wk[j]"));
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
	const char *at = acc_type(o), *wt = "int8_t";
	char wn[32], bn[32];
	snprintf(wn, sizeof wn, "n%d_w", c->id);
	snprintf(bn, sizeof bn, "n%d_b", c->id);
	if (q->constb) {
		DType d = narrow_of(q->w, q->nbb * q->K * q->N);
		wt = ec_ctype(d);
		ec_line(&c->c, "/* B - zw as [%lld][k %lld][n %lld]; bias - zp_a * sum_k(B - zw) */", (long long)q->nbb,
		        (long long)q->K, (long long)q->N);
		put_i32(c, wn, d, q->w, q->nbb * q->K * q->N);
		put_bias(c, o, bn, q->bias, q->sumw, o->zx, q->nbb * q->N);
	}
	put_rescale(c, o, RF_PLAIN);
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
		ec_line(&c->c, "const %s *const wb = %s + bo * %lld;", wt, wn, (long long)q->K);
		ec_line(&c->c, "const %s *const bb = %s + bo;", o->acc64 ? "int64_t" : "int32_t", bn);
		plain_mm_rows(c, q, "wb", "bb", wt);
	} else {
		ec_line(&c->c, "const %s *const pb = %s + %s;", ec_ctype(q->bt), q->b, ib);
		plain_mm_rows(c, q, NULL, NULL, wt);
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
	q->w = arena_alloc(c->g->arena, sizeof *q->w * (size_t)(nbb * K * N > 0 ? nbb * K * N : 1));
	q->sumw = arena_alloc(c->g->arena, sizeof *q->sumw * (size_t)(nbb * N + 1));
	q->bias = arena_alloc(c->g->arena, sizeof *q->bias * (size_t)(nbb * N + 1));
	for (int64_t bb = 0; bb < nbb; bb++)
		for (int64_t k = 0; k < K; k++)
			for (int64_t j = 0; j < N; j++) {
				int64_t i = bb * K * N + (tb ? j * K + k : k * N + j);
				int64_t wv = ir_get_i64(b, i) - (b->q ? b->q->zp[ir_quant_channel(b, i)] : 0);
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
	if (t == QK_VNNI && vnni_mm_ok(q))
		return M_VNNI;
	if ((t == QK_VNNI || t == QK_AVX2) && avx2_mm_ok(q))
		return M_AVX2;
	if (t == QK_SSE2 && avx2_mm_ok(q))
		return M_SSE2;
	return M_PLAIN;
}

static const Isa *mm_isa(int var)
{
	return var == M_AVX2 ? &isa256 : var == M_SSE2 ? &isa128 : NULL;
}

static int64_t mm_scratch(void *arg, int var)
{
	QMm *q = arg;
	if (var != M_PLAIN)
		return vec_mm_scratch(q, mm_isa(var));
	return q->N * (q->o.acc64 ? 8 : 4);
}

static void mm_emit_var(Ctx *c, void *arg, int var, int64_t scratch)
{
	QMm *q = arg;
	q->scratch = scratch;
	if (var != M_PLAIN)
		vec_mm(c, q, scratch, mm_isa(var));
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
