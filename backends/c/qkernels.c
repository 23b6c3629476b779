/* Integer kernels: nodes with a QNode (docs/integer-semantics.md, "The
 * integer IR").  Every kernel computes exactly ir_qeval_node's formula
 * with the potc_fixed.h functions pasted at the top of a quantized model.c,
 * so the generated code is bit-identical to the integer evaluator.
 * Conv, Gemm and MatMul are in qkernels_conv.c.
 *
 * Notation as in the docs: xv = q - zp, R(v) the node's rescale, out(v)
 * = potc_out(v, zp_y, lo, hi).  Rescales, zero points and clamps are
 * literals, so the compiler folds potc_rescale's branches; a few cases
 * are printed in a narrower form that the header makes identical (a pure
 * rounding shift, an int32 sum or product that emit-time bounds show
 * cannot leave int32), which keeps inner loops vectorisable. */
#include <stdlib.h>
#include <string.h>

#include "emit_impl.h"

/* ---- literals and expressions ---- */

/* An int32 as C text: INT32_MIN spelled out (2147483648 is not an int). */
static const char *lit(Ctx *c, int64_t v)
{
	if (v == INT32_MIN)
		return "INT32_MIN";
	if (v == INT64_MIN)
		return "INT64_MIN";
	return arena_printf(c->g->arena, "%lld", (long long)v);
}

/* R(v) = potc_rescale(v, m, n) of an int32 expression v.  The shift form
 * of potc_rescale is potc_requant_shift(v, n, 32), which for |n| <= 31
 * is exactly a rounding right shift or a saturating left shift. */
static const char *rs(Ctx *c, const char *v, Rescale r)
{
	if (r.m == 0 && r.n == 0)
		return v;
	if (r.m == 0 && r.n > 0 && r.n <= 31)
		return arena_printf(c->g->arena, "potc_rshift_rnd32(%s, %d)", v, r.n);
	if (r.m == 0 && r.n < 0 && r.n >= -31)
		return arena_printf(c->g->arena, "potc_lshift_sat32(%s, %d)", v, -r.n);
	return arena_printf(c->g->arena, "potc_rescale(%s, %s, %d)", v, lit(c, r.m), r.n);
}

/* potc_rescale64 of an int64 expression v. */
static const char *rs64(Ctx *c, const char *v, Rescale r)
{
	if (r.m == 0 && r.n == 0)
		return arena_printf(c->g->arena, "potc_sat_s(%s, 32)", v);
	return arena_printf(c->g->arena, "potc_rescale64(%s, %s, %d)", v, lit(c, r.m), r.n);
}

/* The real factor of r, for emit-time bounds only. */
static double rs_real(Rescale r)
{
	double f = r.m ? (double)r.m / 2147483648.0 : 1.0;
	int n = r.n;
	for (; n > 0; n--)
		f /= 2;
	for (; n < 0; n++)
		f *= 2;
	return f;
}

/* ---- tensors' quantization ---- */

typedef struct {
	int32_t zp;
	int64_t lo, hi;       /* range of q: the bit range, or a constant's values */
} QIn;

/* Input j (or output 0 when j < 0): one zero point for the whole tensor
 * (activations; a constant whose channels share it is fine). */
static int qt(Ctx *c, int j, QIn *r)
{
	const Tensor *t = j < 0 ? ec_tout(c, 0) : ec_tin(c, j);
	if (!t || !t->q || !ec_isint(t->dtype) || t->dtype == DT_I64)
		return ec_fail(c, "%s %d is not a quantized integer tensor", j < 0 ? "output" : "input",
		               j < 0 ? 0 : j);
	for (int k = 1; k < t->q->nch; k++)
		if (t->q->zp[k] != t->q->zp[0])
			return ec_fail(c, "%s %d has a zero point per channel; the C backend needs one",
			               j < 0 ? "output" : "input", j < 0 ? 0 : j);
	r->zp = t->q->zp[0];
	r->lo = ir_qmin(t->q);
	r->hi = ir_qmax(t->q);
	if (t->kind == TK_CONST && ir_numel(t) > 0) {
		r->lo = r->hi = ir_get_i64(t, 0);
		for (int64_t i = 1; i < ir_numel(t); i++) {
			int64_t v = ir_get_i64(t, i);
			r->lo = v < r->lo ? v : r->lo;
			r->hi = v > r->hi ? v : r->hi;
		}
	}
	return 0;
}

/* max |q - zp| over the input's range. */
static double xv_max(const QIn *q)
{
	double a = (double)q->lo - q->zp, b = (double)q->hi - q->zp;
	a = a < 0 ? -a : a;
	b = b < 0 ? -b : b;
	return a > b ? a : b;
}

/* The node's QNode with at least nr rescales and nrin input rescales. */
static const QNode *qnode(Ctx *c, int nr, int nrin)
{
	const QNode *q = c->n->q;
	if (q->nr < nr || (nr && !q->r) || q->nrin < nrin || (nrin && !q->rin)) {
		ec_fail(c, "internal: QNode has %d rescales and %d input rescales, needs %d and %d", q->nr,
		        q->nrin, nr, nrin);
		return NULL;
	}
	if (q->lo > q->hi)
		return ec_fail(c, "internal: QNode clamp [%d, %d] is empty", (int)q->lo, (int)q->hi), NULL;
	return q;
}

/* `(T)out(v)`: the store of every quantized node. */
static const char *outx(Ctx *c, const char *v)
{
	const QNode *q = c->n->q;
	const Tensor *y = ec_tout(c, 0);
	return arena_printf(c->g->arena, "(%s)potc_out(%s, %s, %s, %s)", ec_ctype(y->dtype), v,
	                    lit(c, y->q->zp[0]), lit(c, q->lo), lit(c, q->hi));
}

/* xv of the element e: "((int32_t)e - zp)" ("+ |zp|" for a negative zp),
 * just "(int32_t)e" when zp is 0. */
static const char *centred(Ctx *c, const char *e, int32_t zp)
{
	if (zp == 0)
		return arena_printf(c->g->arena, "(int32_t)%s", e);
	if (zp < 0)
		return arena_printf(c->g->arena, "((int32_t)%s + %lld)", e, -(long long)zp);
	return arena_printf(c->g->arena, "((int32_t)%s - %d)", e, (int)zp);
}

/* Operand j at nest operand k as an int32 centred value "((int32_t)x1[i0] - 3)",
 * a literal for a scalar constant. */
static const char *xv_ref(Ctx *c, const Nest *n, int k, int j, const QIn *q)
{
	const Tensor *t = ec_tin(c, j);
	if (t->kind == TK_CONST && ir_numel(t) == 1)
		return lit(c, ir_get_i64(t, 0) - q->zp);
	char ix[200];
	nest_index(n, k, ix, sizeof ix);
	return centred(c, arena_printf(c->g->arena, "%s[%s]", ec_x(c, j), ix), q->zp);
}

/* Constant arrays print above the function: name them before ec_begin. */
static void name_consts(Ctx *c)
{
	for (int j = 0; j < c->n->nin; j++) {
		const Tensor *t = ec_tin(c, j);
		if (t && t->kind == TK_CONST && ir_numel(t) > 1)
			ec_x(c, j);
	}
}

/* ---- Add, Sub, Mul ---- */

static int eq_binary(Ctx *c)
{
	const Tensor *y = ec_tout(c, 0);
	int mul = c->n->op == OP_MUL;
	QIn qa, qb, qy;
	if (c->n->nin != 2 || !ec_tin(c, 0) || !ec_tin(c, 1))
		return ec_fail(c, "needs 2 inputs");
	if (qt(c, 0, &qa) || qt(c, 1, &qb) || qt(c, -1, &qy))
		return 1;
	const QNode *q = qnode(c, mul, mul ? 0 : 2);
	if (!q)
		return 1;
	if (!mul && (q->ext < 0 || q->ext > 62))
		return ec_fail(c, "internal: ext %d out of [0, 62]", q->ext);
	Nest n;
	nest_init(&n, y->rank, y->dim, 3);
	nest_bcast(&n, 0, y);
	for (int j = 0; j < 2; j++)
		if (nest_bcast(&n, j + 1, ec_tin(c, j)))
			return ec_fail(c, "input %d does not broadcast to the output shape", j);
	nest_simplify(&n);
	name_consts(c);
	char iy[200];
	const char *ta = xv_ref(c, &n, 1, 0, &qa), *tb = xv_ref(c, &n, 2, 1, &qb), *v;
	if (!mul) {
		ta = rs(c, ta, q->rin[0]);
		tb = rs(c, tb, q->rin[1]);
	}
	ec_begin(c, 0);
	/* the loops, an operand that does not move along the innermost one
	 * (a broadcast row) computed once before it */
	int r = n.rank, hoist[2];
	for (int a = 0; a + 1 < r; a++)
		ec_line(&c->c, "for (long i%d = 0; i%d < %lld; i%d++) {", a, a, (long long)n.dim[a], a);
	for (int j = 0; j < 2; j++)
		if ((hoist[j] = r == 0 || n.st[j + 1][r - 1] == 0))
			ec_line(&c->c, "const int32_t %c = %s;", "ab"[j], j ? tb : ta);
	if (r > 0)
		ec_line(&c->c, "for (long i%d = 0; i%d < %lld; i%d++) {", r - 1, r - 1, (long long)n.dim[r - 1],
		        r - 1);
	for (int j = 0; j < 2; j++)
		if (!hoist[j])
			ec_line(&c->c, "const int32_t %c = %s;", "ab"[j], j ? tb : ta);
	nest_index(&n, 0, iy, sizeof iy);
	if (mul) {
		/* p = xv_a * xv_b in int64; in int32 when it fits (rescale64 of
		 * an int32 value equals rescale of it) */
		if (xv_max(&qa) * xv_max(&qb) <= 2147483647.0)
			v = rs(c, "a * b", q->r[0]);
		else
			v = rs64(c, "(int64_t)a * b", q->r[0]);
	} else {
		const char *op = c->n->op == OP_SUB ? "-" : "+";
		/* |t| <= |xv| * M + 1 (rounding, ties up); the int64 sum of two
		 * int32 is exact, the int32 one too below 2^31 */
		double ba = xv_max(&qa) * rs_real(q->rin[0]) * (1 + 1e-9) + 2;
		double bb = xv_max(&qb) * rs_real(q->rin[1]) * (1 + 1e-9) + 2;
		if (ba + bb < 2147483647.0 && q->ext <= 31)
			v = q->ext ? arena_printf(c->g->arena, "potc_rshift_rnd32(a %s b, %d)", op, q->ext)
			           : arena_printf(c->g->arena, "a %s b", op);
		else
			v = arena_printf(c->g->arena, "potc_sat_s(potc_rshift_rnd64((int64_t)a %s b, %d), 32)", op,
			                 q->ext);
	}
	ec_line(&c->c, "y0[%s] = %s;", iy, outx(c, v));
	for (int a = 0; a < r; a++)
		ec_line(&c->c, "}");
	ec_end(c);
	return 0;
}

/* ---- unary: a table, or Relu / Clip as a rescale and a clamp ---- */

static int lut_vec_fits(const Ctx *, const Tensor *, const Tensor *);
static void lut_bytes_vec(Ctx *, const Tensor *, const char *, const char *, int sign);

static int eq_lut(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0);
	const QNode *q = c->n->q;
	QIn qx;
	if (qt(c, 0, &qx))
		return 1;
	if (q->nlut < 1)
		return ec_fail(c, "internal: empty table");
	void *tab = malloc((size_t)q->nlut * 4);
	if (!tab)
		return ec_fail(c, "out of memory");
	for (int i = 0; i < q->nlut; i++) {
		int32_t v = q->lut[i];
		switch (y->dtype) {
		case DT_I8: ((int8_t *)tab)[i] = (int8_t)v; break;
		case DT_U8: ((uint8_t *)tab)[i] = (uint8_t)v; break;
		case DT_I16: ((int16_t *)tab)[i] = (int16_t)v; break;
		case DT_U16: ((uint16_t *)tab)[i] = (uint16_t)v; break;
		default: ((int32_t *)tab)[i] = v; break;
		}
	}
	char name[32];
	snprintf(name, sizeof name, "n%d_lut", c->id);
	ec_line(&c->c, "/* %s: y = lut[q - %d] */", ir_opname[c->n->op], (int)q->lut_lo);
	ec_array(c, name, y->dtype, q->nlut, tab);
	free(tab);
	const char *xs = ec_x(c, 0);
	int64_t last = (int64_t)q->lut_lo + q->nlut - 1;
	int vec = lut_vec_fits(c, x, y);
	if (vec) {
		ec_line(&c->c, "#if defined(__AVX512BW__) && defined(__AVX512VBMI__)");
		ec_line(&c->c, "#include <immintrin.h>");
		ec_line(&c->c, "#endif");
	}
	ec_begin(c, 0);
	if (vec)
		lut_bytes_vec(c, y, name, xs, x->dtype == DT_I8);
	ec_line(&c->c, "for (long i = %s; i < %lld; i++) {", vec ? "i0" : "0", (long long)ir_numel(y));
	ec_line(&c->c, "int32_t v = %s[i];", xs);
	/* in-range inputs always index the table; others (outside the
	 * tensor's bits, e.g. 6-bit values in int8) are clamped, never read
	 * out of bounds */
	if (qx.lo < q->lut_lo || (x->dtype != DT_I8 && x->dtype != DT_U8 && x->dtype != DT_I16 &&
	                          x->dtype != DT_U16) || ir_qmin(x->q) < q->lut_lo || ir_qmax(x->q) > last)
		return ec_fail(c, "internal: table [%d, %lld] does not cover the input's range",
		               (int)q->lut_lo, (long long)last);
	int64_t dlo = x->dtype == DT_I8 ? -128 : x->dtype == DT_I16 ? -32768 : 0;
	int64_t dhi = x->dtype == DT_I8 ? 127 : x->dtype == DT_U8 ? 255 : x->dtype == DT_I16 ? 32767 : 65535;
	if (dlo < q->lut_lo)
		ec_line(&c->c, "v = v < %s ? %s : v;", lit(c, q->lut_lo), lit(c, q->lut_lo));
	if (dhi > last)
		ec_line(&c->c, "v = v > %s ? %s : v;", lit(c, last), lit(c, last));
	if (q->lut_lo < 0)
		ec_line(&c->c, "y0[i] = %s[v + %lld];", name, -(long long)q->lut_lo);
	else
		ec_line(&c->c, "y0[i] = %s[v - %d];", name, (int)q->lut_lo);
	ec_line(&c->c, "}");
	if (vec)
		ec_line(&c->c, "}");
	ec_end(c);
	return 0;
}

/* A whole 8-bit table on 8-bit data is four 64-byte registers: with
 * AVX-512 VBMI two vpermi2b look up 64 elements in the low and high
 * halves and the index's top bit picks one (the same entries the scalar
 * loop reads). */
static int lut_vec_fits(const Ctx *c, const Tensor *x, const Tensor *y)
{
	const QNode *q = c->n->q;
	int in8 = x->dtype == DT_I8 || x->dtype == DT_U8, out8 = y->dtype == DT_I8 || y->dtype == DT_U8;
	return in8 && out8 && q->nlut == 256 && q->lut_lo == (x->dtype == DT_I8 ? -128 : 0) &&
	       ir_numel(y) >= 64;
}

/* Opens a block declaring i0, the first element the scalar loop does. */
static void lut_bytes_vec(Ctx *c, const Tensor *y, const char *lut, const char *xs, int sign)
{
	ec_line(&c->c, "{");
	ec_line(&c->c, "long i0 = 0;");
	ec_line(&c->c, "#if defined(__AVX512BW__) && defined(__AVX512VBMI__)");
	for (int k = 0; k < 4; k++)
		ec_line(&c->c, "const __m512i t%d = _mm512_loadu_si512((const void *)(%s + %d));", k, lut, 64 * k);
	ec_line(&c->c, "for (; i0 + 64 <= %lld; i0 += 64) {", (long long)ir_numel(y));
	ec_line(&c->c, "__m512i v = _mm512_loadu_si512((const void *)(%s + i0));", xs);
	if (sign)   /* index q + 128: flip the sign bit */
		ec_line(&c->c, "v = _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80));");
	ec_line(&c->c, "__m512i a = _mm512_permutex2var_epi8(t0, v, t1);");
	ec_line(&c->c, "__m512i b = _mm512_permutex2var_epi8(t2, v, t3);");
	ec_line(&c->c, "_mm512_storeu_si512((void *)(y0 + i0), _mm512_mask_blend_epi8(_mm512_movepi8_mask(v), a, b));");
	ec_line(&c->c, "}");
	ec_line(&c->c, "#endif");
}

/* Relu, Clip: y = out(R(xv)); the thresholds are in lo, hi. */
static int eq_clamp(Ctx *c)
{
	const Tensor *y = ec_tout(c, 0);
	QIn qx;
	const QNode *q = qnode(c, 1, 0);
	if (!q || qt(c, 0, &qx))
		return 1;
	if (ir_numel(ec_tin(c, 0)) != ir_numel(y))
		return ec_fail(c, "input and output differ in size");
	const char *xs = ec_x(c, 0);
	const char *xv = centred(c, arena_printf(c->g->arena, "%s[i]", xs), qx.zp);
	ec_begin(c, 0);
	ec_line(&c->c, "for (long i = 0; i < %lld; i++)", (long long)ir_numel(y));
	ec_line(&c->c, "\ty0[i] = %s;", outx(c, rs(c, xv, q->r[0])));
	ec_end(c);
	return 0;
}

/* ---- Concat ---- */

static int eq_concat(Ctx *c)
{
	const Tensor *y = ec_tout(c, 0);
	int axis = ec_axis(c->n->a.axis.axis, y->rank), nin = c->n->nin;
	QIn qy;
	const QNode *q = qnode(c, 0, nin);
	if (!q || qt(c, -1, &qy))
		return 1;
	if (axis < 0)
		return ec_fail(c, "axis %d out of range for rank %d", c->n->a.axis.axis, y->rank);
	int64_t total = 0, yst[IR_MAXRANK];
	for (int j = 0; j < nin; j++) {
		const Tensor *t = ec_tin(c, j);
		QIn qj;
		if (!t || t->rank != y->rank || qt(c, j, &qj))
			return c->failed ? 1 : ec_fail(c, "input %d is absent or differs in rank", j);
		for (int a = 0; a < y->rank; a++)
			if (a != axis && t->dim[a] != y->dim[a])
				return ec_fail(c, "input %d differs in dim %d", j, a);
		total += t->dim[axis];
	}
	if (total != y->dim[axis])
		return ec_fail(c, "inputs add up to %lld along axis %d, output has %lld", (long long)total,
		               axis, (long long)y->dim[axis]);
	for (int j = 0; j < nin; j++)
		if (ir_numel(ec_tin(c, j)))
			ec_x(c, j);
	ec_strides(y, yst);
	ec_begin(c, 0);
	int64_t at = 0;
	for (int j = 0; j < nin; j++) {
		const Tensor *t = ec_tin(c, j);
		QIn qj;
		qt(c, j, &qj);
		Nest n;
		nest_init(&n, t->rank, t->dim, 2);
		for (int a = 0; a < t->rank; a++)
			n.st[0][a] = yst[a];
		n.base[0] = at * yst[axis];
		nest_bcast(&n, 1, t);
		nest_simplify(&n);
		at += t->dim[axis];
		if (!ir_numel(t))
			continue;
		char iy[200];
		ec_line(&c->c, "{");
		nest_open(c, &n);
		nest_index(&n, 0, iy, sizeof iy);
		const char *xv = xv_ref(c, &n, 1, j, &qj);
		ec_line(&c->c, "y0[%s] = %s;", iy, outx(c, rs(c, xv, q->rin[j])));
		nest_close(c, &n);
		ec_line(&c->c, "}");
	}
	ec_end(c);
	return 0;
}

/* ---- pooling and means ---- */

/* `y = out(div_rnd32(R(s), cnt))` for the int32 sum s: kcnt is the
 * count when it is the same for every output, else -1 and the C variable
 * cnt holds it; a count of 0 (no input tap) stores out(0). */
static void mean_store(Ctx *c, const char *dst, const char *cnt, int64_t kcnt)
{
	const QNode *q = c->n->q;
	const char *r = rs(c, "s", q->r[0]);
	if (kcnt == 0)
		ec_line(&c->c, "%s = %s;", dst, outx(c, "0"));
	else if (kcnt == 1)
		ec_line(&c->c, "%s = %s;", dst, outx(c, r));
	else if (kcnt > 1)
		ec_line(&c->c, "%s = %s;", dst,
		        outx(c, arena_printf(c->g->arena, "potc_div_rnd32(%s, %lld)", r, (long long)kcnt)));
	else
		ec_line(&c->c, "%s = %s;", dst,
		        outx(c, arena_printf(c->g->arena, "%s ? potc_div_rnd32(%s, %s) : 0", cnt, r, cnt)));
}

/* Taps of output o along one dim: the range [klo, khi) that lands inside
 * the input, and the divisor count (inside the padded input when
 * count_include_pad, as ir/eval_nn.c's padded_taps; else the real taps). */
static void taps(const Geom *G, int i, int64_t o, int incl, int64_t *klo, int64_t *khi, int64_t *cnt)
{
	*klo = -1;
	*khi = 0;
	*cnt = 0;
	for (int t = 0; t < G->k[i]; t++) {
		int64_t p = o * G->s[i] - G->pb[i] + (int64_t)t * G->d[i];
		if (p >= 0 && p < G->in[i]) {
			if (*klo < 0)
				*klo = t;
			*khi = t + 1;
		}
		if (incl ? p >= -G->pb[i] && p < G->in[i] + G->pe[i] : p >= 0 && p < G->in[i])
			++*cnt;
	}
	if (*klo < 0)
		*klo = *khi = 0;
}

/* AveragePool: per active dim a table of each output's tap range and
 * count, then s = sum xv over the range, y = out(div_rnd32(R(s), cnt)). */
static int eq_avgpool(Ctx *c)
{
	static const char *const OV[3] = {"oz", "oy", "ox"}, *const KV[3] = {"kz", "ky", "kx"};
	static const char *const IV[3] = {"iz", "iy", "ix"};
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0);
	QIn qx;
	Geom G;
	const QNode *q = qnode(c, 1, 0);
	if (!q || qt(c, 0, &qx) || ec_geom(c, x, y, &G))
		return 1;
	if (x->dim[0] != y->dim[0] || x->dim[1] != y->dim[1])
		return ec_fail(c, "batch or channel count differs between input and output");
	int incl = c->n->a.win.incl_pad;
	int64_t kcnt = 1;   /* the count when every output has the same, else -1 */
	char tab[3][32];
	for (int qd = 0; qd < G.nd; qd++) {
		int i = G.ad[qd];
		int64_t n = G.out[i], cnt1 = -1;
		int32_t *t = malloc(sizeof *t * (size_t)(3 * n + 1));
		if (!t)
			return ec_fail(c, "out of memory");
		for (int64_t o = 0; o < n; o++) {
			int64_t lo, hi, cnt;
			taps(&G, i, o, incl, &lo, &hi, &cnt);
			t[3 * o] = (int32_t)lo, t[3 * o + 1] = (int32_t)hi, t[3 * o + 2] = (int32_t)cnt;
			cnt1 = o == 0 || cnt == cnt1 ? cnt : -1;
		}
		kcnt = kcnt < 0 || cnt1 < 0 ? -1 : kcnt * cnt1;
		snprintf(tab[i], sizeof tab[i], "n%d_t%d", c->id, i);
		ec_line(&c->c, "/* per output along dim %d: first tap, end tap, divisor */", i);
		ec_array(c, tab[i], DT_I32, 3 * n, t);
		free(t);
	}
	const char *xs = ec_x(c, 0), *ty = ec_ctype(x->dtype);
	Str xi = {0}, yi = {0}, cnt = {0};
	ec_begin(c, 0);
	ec_line(&c->c, "for (long p = 0; p < %lld; p++) {", (long long)(x->dim[0] * x->dim[1]));
	ec_line(&c->c, "const %s *const x = %s + p * %lld;", ty, xs, (long long)G.insz);
	ec_line(&c->c, "%s *const y = y0 + p * %lld;", ec_ctype(y->dtype), (long long)G.outsz);
	for (int qd = 0; qd < G.nd; qd++) {
		int i = G.ad[qd];
		ec_line(&c->c, "for (long %s = 0; %s < %lld; %s++) {", OV[i], OV[i], (long long)G.out[i], OV[i]);
		str_printf(&yi, "%s%s * %lld", yi.len ? " + " : "", OV[i], (long long)G.ost[i]);
		str_printf(&cnt, "%s%s[%s * 3 + 2]", cnt.len ? " * " : "", tab[i], OV[i]);
	}
	ec_line(&c->c, "int32_t s = 0;");
	for (int qd = 0; qd < G.nd; qd++) {
		int i = G.ad[qd];
		ec_line(&c->c, "for (long %s = %s[%s * 3]; %s < %s[%s * 3 + 1]; %s++) {", KV[i], tab[i], OV[i],
		        KV[i], tab[i], OV[i], KV[i]);
		ec_line(&c->c, "const long %s = %s;", IV[i],
		        ec_aff(c, -G.pb[i], OV[i], (int64_t)G.s[i], KV[i], (int64_t)G.d[i], NULL));
		str_printf(&xi, "%s%s * %lld", xi.len ? " + " : "", IV[i], (long long)G.ist[i]);
	}
	ec_line(&c->c, "s += %s;", centred(c, arena_printf(c->g->arena, "x[%s]", xi.s), qx.zp));
	for (int qd = 0; qd < G.nd; qd++)
		ec_line(&c->c, "}");
	if (kcnt < 0)
		ec_line(&c->c, "const int32_t cnt = %s;", cnt.s);
	mean_store(c, arena_printf(c->g->arena, "y[%s]", yi.s), "cnt", kcnt);
	for (int qd = 0; qd < G.nd; qd++)
		ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	str_free(&xi);
	str_free(&yi);
	str_free(&cnt);
	ec_end(c);
	return 0;
}

/* GlobalAveragePool, GlobalMaxPool over each [N, C] plane. */
static int eq_gpool(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0);
	QIn qx;
	const QNode *q = qnode(c, 1, 0);
	if (!q || qt(c, 0, &qx))
		return 1;
	if (x->rank < 2 || ir_numel(y) != x->dim[0] * x->dim[1])
		return ec_fail(c, "input must be [N, C, ...] and output [N, C, 1, ...]");
	int64_t P = x->dim[0] * x->dim[1], sz = ec_prod(x, 2, x->rank);
	const char *xs = ec_x(c, 0);
	ec_begin(c, 0);
	ec_line(&c->c, "for (long p = 0; p < %lld; p++) {", (long long)P);
	ec_line(&c->c, "const %s *const x = %s + p * %lld;", ec_ctype(x->dtype), xs, (long long)sz);
	if (c->n->op == OP_GMAXPOOL) {
		ec_line(&c->c, "int32_t m = %s;", lit(c, sz ? INT32_MIN : qx.zp));
		ec_line(&c->c, "for (long i = 0; i < %lld; i++)", (long long)sz);
		ec_line(&c->c, "\tm = x[i] > m ? x[i] : m;");
		ec_line(&c->c, "y0[p] = %s;", outx(c, rs(c, centred(c, "m", qx.zp), q->r[0])));
	} else {
		ec_line(&c->c, "int32_t s = 0;");
		ec_line(&c->c, "for (long i = 0; i < %lld; i++)", (long long)sz);
		ec_line(&c->c, "\ts += %s;", centred(c, "x[i]", qx.zp));
		mean_store(c, "y0[p]", "0", sz);
	}
	ec_line(&c->c, "}");
	ec_end(c);
	return 0;
}

/* ReduceMean: kept axes outside (o*), reduced axes inside (r*), the sum
 * of one output in a register. */
static int eq_reducemean(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0);
	QIn qx;
	char mask[IR_MAXRANK];
	const QNode *q = qnode(c, 1, 0);
	if (!q || qt(c, 0, &qx) || ec_reduce_mask(c, x, mask))
		return 1;
	int64_t st[IR_MAXRANK], kept = 1, red = 1;
	ec_strides(x, st);
	for (int a = 0; a < x->rank; a++)
		*(mask[a] ? &red : &kept) *= x->dim[a];
	if (kept != ir_numel(y))
		return ec_fail(c, "output has %lld elements, the reduction gives %lld",
		               (long long)ir_numel(y), (long long)kept);
	const char *xs = ec_x(c, 0);
	Str ix = {0};
	ec_begin(c, 0);
	ec_line(&c->c, "long o = 0;");
	for (int a = 0; a < x->rank; a++)
		if (!mask[a] && x->dim[a] > 1) {
			ec_line(&c->c, "for (long o%d = 0; o%d < %lld; o%d++) {", a, a, (long long)x->dim[a], a);
			str_printf(&ix, "%so%d * %lld", ix.len ? " + " : "", a, (long long)st[a]);
		}
	ec_line(&c->c, "int32_t s = 0;");
	for (int a = 0; a < x->rank; a++)
		if (mask[a] && x->dim[a] > 1) {
			ec_line(&c->c, "for (long r%d = 0; r%d < %lld; r%d++) {", a, a, (long long)x->dim[a], a);
			str_printf(&ix, "%sr%d * %lld", ix.len ? " + " : "", a, (long long)st[a]);
		}
	if (red > 0)
		ec_line(&c->c, "s += %s;", centred(c, arena_printf(c->g->arena, "%s[%s]", xs, ix.len ? ix.s : "0"),
		        qx.zp));
	for (int a = 0; a < x->rank; a++)
		if (mask[a] && x->dim[a] > 1)
			ec_line(&c->c, "}");
	mean_store(c, "y0[o++]", "0", red);
	for (int a = 0; a < x->rank; a++)
		if (!mask[a] && x->dim[a] > 1)
			ec_line(&c->c, "}");
	str_free(&ix);
	ec_end(c);
	return 0;
}

/* ---- Softmax ---- */

/* Per slice: m = max q, E_i = lut[m - q_i] (0 past the table), S = sum E
 * in int64, p_i = (E_i 2^30 + S/2) / S, y = out(R(p_i)). */
static int eq_softmax(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0);
	QIn qx;
	const QNode *q = qnode(c, 1, 0);
	if (!q || qt(c, 0, &qx))
		return 1;
	if (!q->lut || q->nlut < 1)
		return ec_fail(c, "internal: Softmax without its exp table");
	int r = x->rank, legacy = c->n->a.axis.legacy;
	int axis = r == 0 ? 0 : ec_axis(c->n->a.axis.axis, r);
	if (axis < 0 || ir_numel(x) != ir_numel(y))
		return ec_fail(c, "axis %d out of range for rank %d", c->n->a.axis.axis, r);
	int64_t outer = ec_prod(x, 0, axis);
	int64_t len = legacy ? ec_prod(x, axis, r) : r ? x->dim[axis] : 1;
	int64_t inner = legacy || !r ? 1 : ec_prod(x, axis + 1, r);
	/* m - q_i lies in [0, qmax - qmin]: index the table only below nlut */
	int64_t span = ir_qmax(x->q) - (int64_t)ir_qmin(x->q);
	char name[32];
	snprintf(name, sizeof name, "n%d_exp", c->id);
	ec_line(&c->c, "/* Softmax: exp(-d * scale_x) in Q30 */");
	ec_array(c, name, DT_I32, q->nlut, q->lut);
	const char *xs = ec_x(c, 0), *ty = ec_ctype(x->dtype);
	const char *E = span < q->nlut ? arena_printf(c->g->arena, "%s[m - x[j * %lld]]", name, (long long)inner)
	                               : arena_printf(c->g->arena, "(m - x[j * %lld] < %d ? %s[m - x[j * %lld]] : 0)",
	                                              (long long)inner, q->nlut, name, (long long)inner);
	ec_begin(c, 0);
	ec_line(&c->c, "for (long o = 0; o < %lld; o++) {", (long long)outer);
	ec_line(&c->c, "for (long i = 0; i < %lld; i++) {", (long long)inner);
	ec_line(&c->c, "const %s *const x = %s + o * %lld + i;", ty, xs, (long long)(len * inner));
	ec_line(&c->c, "%s *const y = y0 + o * %lld + i;", ec_ctype(y->dtype), (long long)(len * inner));
	ec_line(&c->c, "int32_t m = x[0];");
	ec_line(&c->c, "int64_t S = 0;");
	ec_line(&c->c, "for (long j = 1; j < %lld; j++)", (long long)len);
	ec_line(&c->c, "\tm = x[j * %lld] > m ? x[j * %lld] : m;", (long long)inner, (long long)inner);
	ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)len);
	ec_line(&c->c, "\tS += %s;", E);
	ec_line(&c->c, "for (long j = 0; j < %lld; j++) {", (long long)len);
	ec_line(&c->c, "const int64_t e = %s;", E);
	ec_line(&c->c, "const int32_t p = (int32_t)((e * 1073741824 + S / 2) / S);");
	ec_line(&c->c, "y[j * %lld] = %s;", (long long)inner, outx(c, rs(c, "p", q->r[0])));
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_end(c);
	return 0;
}

/* ---- dispatch ---- */

int eq_kernel(Ctx *c)
{
	const Tensor *y = ec_tout(c, 0);
	if (!y || !y->q || !ec_isint(y->dtype) || y->dtype == DT_I64 || y->dtype == DT_U32)
		return ec_fail(c, "a quantized node needs a quantized integer output");
	if (eq_narrow_wanted(c))
		return c->n->op == OP_CONV ? eq_narrow_conv(c) : eq_narrow_matmul(c);
	switch (c->n->op) {
	case OP_CONV: return eq_conv(c);
	case OP_GEMM: case OP_MATMUL: return eq_matmul(c);
	case OP_ADD: case OP_SUB: case OP_MUL: return eq_binary(c);
	case OP_AVGPOOL: return eq_avgpool(c);
	case OP_GAVGPOOL: case OP_GMAXPOOL: return eq_gpool(c);
	case OP_REDUCEMEAN: return eq_reducemean(c);
	case OP_CONCAT: return eq_concat(c);
	case OP_SOFTMAX: return eq_softmax(c);
	default:
		break;
	}
	if (ir_opflags[c->n->op] & F_UNARY) {
		if (c->n->q->lut)
			return eq_lut(c);
		if (c->n->op == OP_RELU || c->n->op == OP_CLIP)
			return eq_clamp(c);
	}
	return ec_fail(c, "the C backend has no integer kernel for %s", ir_opname[c->n->op]);
}
