/* Kernel emitters for ops.def's "ONNX quantization operators" in a float
 * model: QuantizeLinear, DequantizeLinear, QLinearConv, QLinearMatMul,
 * ConvInteger, MatMulInteger.
 *
 * The printed arithmetic is ir/eval_qops.c's, operation for operation:
 * exact int64 sums wrapped to int32, real factors in double
 * ((double)s_x * s_w / s_y), QuantizeLinear's quotient in f32, and one
 * helper per node for sat(round_even(v) + zp) that does not depend on the
 * FP rounding mode.  Scales and zero points may be run-time inputs, so the
 * kernels index them (element 0, or the channel); simple loops, since
 * these nodes matter only until pass_qdq rewrites a quantized model. */
#include <string.h>

#include "emit_impl.h"

/* ---- helpers ---- */

/* "name[c]" or "name[0]" for parameter input j (one value, or one per
 * channel); def when the optional input is absent.  Call before ec_begin
 * (a constant's array is printed on first use). */
static const char *par(Ctx *c, int j, const char *ch, const char *def)
{
	const Tensor *t = ec_tin(c, j);
	if (!t)
		return def;
	const char *name = ec_x(c, j);
	return arena_printf(c->g->arena, "%s[%s]", name, ir_numel(t) == 1 ? "0" : ch);
}

/* Print `static int32_t nK_q(double v, int32_t zp, int32_t lo, int32_t hi)`:
 * eval_qops.c's quant(), halves to even exactly in any rounding mode. */
static const char *emit_quant_fn(Ctx *c)
{
	const char *name = arena_printf(c->g->arena, "n%d_q", c->id);
	ec_line(&c->c, "/* sat(round_even(v) + zp) to [lo, hi]; NaN gives zp.  Below 2^52 floor and the");
	ec_line(&c->c, " * fraction are exact, from 2^52 on every double is an integer. */");
	ec_line(&c->c, "static int32_t %s(double v, int32_t zp, int32_t lo, int32_t hi)", name);
	ec_line(&c->c, "{");
	ec_line(&c->c, "double a, r, d;");
	ec_line(&c->c, "if (v != v)");
	ec_line(&c->c, "\treturn zp;");
	ec_line(&c->c, "a = fabs(v);");
	ec_line(&c->c, "r = a;");
	ec_line(&c->c, "if (a < 4503599627370496.0) {");
	ec_line(&c->c, "r = floor(a);");
	ec_line(&c->c, "d = a - r;");
	ec_line(&c->c, "if (d > 0.5 || (d == 0.5 && fmod(r, 2.0) != 0.0))");
	ec_line(&c->c, "\tr += 1.0;");
	ec_line(&c->c, "}");
	ec_line(&c->c, "r = copysign(r, v) + zp;");
	ec_line(&c->c, "return (int32_t)(r < lo ? lo : r > hi ? hi : r);");
	ec_line(&c->c, "}");
	ec_line(&c->c, "");
	return name;
}

static const char *qrange(DType t)
{
	return t == DT_U8 ? "0, 255" : "-128, 127";
}

/* Channel of element i along axis (per-axis scales): "i / inner % n". */
static const char *axis_channel(Ctx *c, const Tensor *x, int per)
{
	if (!per)
		return "0";
	int axis = ec_axis(c->n->a.axis.axis, x->rank);
	return arena_printf(c->g->arena, "i / %lld %% %lld", (long long)ec_prod(x, axis + 1, x->rank),
	                    (long long)x->dim[axis]);
}

/* ---- QuantizeLinear, DequantizeLinear ---- */

static int quantize(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0);
	int per = ir_numel(ec_tin(c, 1)) != 1;
	if (per && ec_axis(c->n->a.axis.axis, x->rank) < 0)
		return ec_fail(c, "axis %d is out of range for rank %d", c->n->a.axis.axis, x->rank);
	const char *q = emit_quant_fn(c);
	const char *xs = ec_x(c, 0), *s = par(c, 1, "ch", "1"), *zp = par(c, 2, "ch", "0");
	ec_begin(c, 0);
	ec_line(&c->c, "for (long i = 0; i < %lld; i++) {", (long long)ir_numel(x));
	ec_line(&c->c, "const long ch = %s;", axis_channel(c, x, per));
	if (x->dtype == DT_F32)
		ec_line(&c->c, "const float v = %s[i] / %s;", xs, s);
	else
		ec_line(&c->c, "const double v = (double)%s[i] / (double)%s;", xs, s);
	ec_line(&c->c, "(void)ch;");
	ec_line(&c->c, "y0[i] = (%s)%s(v, %s, %s);", ec_ctype(y->dtype), q, zp, qrange(y->dtype));
	ec_line(&c->c, "}");
	ec_end(c);
	return 0;
}

static int dequantize(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0);
	int per = ir_numel(ec_tin(c, 1)) != 1;
	if (per && ec_axis(c->n->a.axis.axis, x->rank) < 0)
		return ec_fail(c, "axis %d is out of range for rank %d", c->n->a.axis.axis, x->rank);
	const char *xs = ec_x(c, 0), *s = par(c, 1, "ch", "1"), *zp = par(c, 2, "ch", "0");
	ec_begin(c, 0);
	ec_line(&c->c, "for (long i = 0; i < %lld; i++) {", (long long)ir_numel(x));
	ec_line(&c->c, "const long ch = %s;", axis_channel(c, x, per));
	ec_line(&c->c, "(void)ch;");
	ec_line(&c->c, "y0[i] = (float)((double)((int64_t)%s[i] - (int64_t)%s) * (double)%s);", xs, zp, s);
	ec_line(&c->c, "}");
	ec_end(c);
	return 0;
}

/* ---- QLinearConv, ConvInteger, QLinearMatMul, MatMulInteger ---- */

/* The parameter expressions of one node; sx == NULL for the Integer ops. */
typedef struct {
	int w;                          /* weight / B input */
	const char *zx, *zw, *sx, *sw, *sy, *zy, *bias, *q;
} QPar;

/* The channel expression of parameter input j: flat when it holds at most
 * n values (one per channel), else batched (one per matrix and row). */
static const char *pick(Ctx *c, int j, int64_t n, const char *flat, const char *batched)
{
	const Tensor *t = ec_tin(c, j);
	return t && ir_numel(t) > n ? batched : flat;
}

/* nx, fx, bx: rows (a) or 1 (conv) and their channel expressions; nw, fw,
 * bw: the same for output channels (conv) or columns (b). */
static void qpar(Ctx *c, QPar *p, int64_t nx, const char *fx, const char *bx,
                 int64_t nw, const char *fw, const char *bw)
{
	int ql = c->n->op == OP_QLINEARCONV || c->n->op == OP_QLINEARMATMUL;
	memset(p, 0, sizeof *p);
	p->w = ql ? 3 : 1;
	p->zx = par(c, 2, pick(c, 2, nx, fx, bx), "0");
	p->zw = par(c, ql ? 5 : 3, pick(c, ql ? 5 : 3, nw, fw, bw), "0");
	if (!ql)
		return;
	p->q = emit_quant_fn(c);
	p->sx = par(c, 1, pick(c, 1, nx, fx, bx), "1");
	p->sw = par(c, 4, pick(c, 4, nw, fw, bw), "1");
	p->sy = par(c, 6, "0", "1");
	p->zy = par(c, 7, "0", "0");
	if (c->n->op == OP_QLINEARCONV)
		p->bias = par(c, 8, fw, NULL);
}

/* The accumulator acc (int64, exact) wrapped to int32 and stored in y0[i]:
 * as is, or requantized by (double)sx * sw / sy. */
static void store(Ctx *c, const QPar *p)
{
	const Tensor *y = ec_tout(c, 0);
	if (p->bias)
		ec_line(&c->c, "acc += %s;", p->bias);
	ec_line(&c->c, "{");
	ec_line(&c->c, "const int64_t u = (int64_t)(uint32_t)acc;");
	ec_line(&c->c, "const int32_t a32 = (int32_t)(u >= 2147483648 ? u - 4294967296 : u);");
	if (!p->sx)
		ec_line(&c->c, "y0[i++] = a32;");
	else
		ec_line(&c->c, "y0[i++] = (%s)%s((double)a32 * ((double)%s * (double)%s / (double)%s), %s, %s);",
		        ec_ctype(y->dtype), p->q, p->sx, p->sw, p->sy, p->zy, qrange(y->dtype));
	ec_line(&c->c, "}");
}

/* One spatial tap loop: `for (long a = 0; a < K; a++) { const long iD = ...;
 * if (outside) continue;`. */
static void tap_loop(Ctx *c, const WinGeom *G, int d, const char *t)
{
	ec_line(&c->c, "for (long %s = 0; %s < %d; %s++) {", t, t, G->k[d], t);
	ec_line(&c->c, "const long i%d = o%d * %d - %d + %s * %d;", d, d, G->s[d], G->pb[d], t, G->d[d]);
	ec_line(&c->c, "if (i%d < 0 || i%d >= %lld)", d, d, (long long)G->in[d]);
	ec_line(&c->c, "\tcontinue;");
}

static int qconv(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0);
	QPar p;
	qpar(c, &p, 1, "0", "0", y->dim[1], "m", "m");
	const Tensor *w = ec_tin(c, p.w);
	WinGeom G;
	char why[128];
	if (ir_window_geom(&c->n->a.win, x, y, &G, why, sizeof why))
		return ec_fail(c, "%s", why);
	int64_t N = x->dim[0], C = x->dim[1], M = y->dim[1], grp = c->n->a.win.group;
	if (grp < 1 || C % grp || M % grp || w->dim[0] != M || w->dim[1] != C / grp)
		return ec_fail(c, "group %lld does not divide %lld input and %lld output channels",
		               (long long)grp, (long long)C, (long long)M);
	int64_t cg = C / grp, mg = M / grp, insz = G.in[0] * G.in[1] * G.in[2];
	int64_t ksz = (int64_t)G.k[0] * G.k[1] * G.k[2];
	const char *xs = ec_x(c, 0), *ws = ec_x(c, p.w);
	ec_begin(c, 0);
	ec_line(&c->c, "long i = 0;");
	ec_line(&c->c, "for (long n = 0; n < %lld; n++)", (long long)N);
	ec_line(&c->c, "for (long m = 0; m < %lld; m++) {", (long long)M);
	ec_line(&c->c, "const int64_t zx = (int64_t)%s, zw = (int64_t)%s;", p.zx, p.zw);
	ec_line(&c->c, "const long xo = (n * %lld + m / %lld * %lld) * %lld, wo = m * %lld;",
	        (long long)C, (long long)mg, (long long)cg, (long long)insz, (long long)(cg * ksz));
	for (int d = 0; d < 3; d++)
		ec_line(&c->c, "for (long o%d = 0; o%d < %lld; o%d++)", d, d, (long long)G.out[d], d);
	ec_line(&c->c, "{");
	ec_line(&c->c, "int64_t acc = 0;");
	ec_line(&c->c, "for (long ci = 0; ci < %lld; ci++)", (long long)cg);
	tap_loop(c, &G, 0, "ka");
	tap_loop(c, &G, 1, "kb");
	tap_loop(c, &G, 2, "kc");
	ec_line(&c->c, "acc += ((int64_t)%s[xo + ci * %lld + (i0 * %lld + i1) * %lld + i2] - zx) *", xs,
	        (long long)insz, (long long)G.in[1], (long long)G.in[2]);
	ec_line(&c->c, "       ((int64_t)%s[wo + ci * %lld + (ka * %d + kb) * %d + kc] - zw);", ws,
	        (long long)ksz, G.k[1], G.k[2]);
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	store(c, &p);
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_end(c);
	return 0;
}

static Tensor batch_of(const Tensor *t, int n)
{
	Tensor b = *t;
	b.rank = n < 0 ? 0 : n;
	return b;
}

static int qmatmul(Ctx *c)
{
	const Tensor *a = ec_tin(c, 0), *y = ec_tout(c, 0);
	const Tensor *b = ec_tin(c, c->n->op == OP_QLINEARMATMUL ? 3 : 1);
	int64_t M = a->rank > 1 ? a->dim[a->rank - 2] : 1, K = a->dim[a->rank - 1];
	int64_t N = b->rank > 1 ? b->dim[b->rank - 1] : 1, K2 = b->dim[b->rank > 1 ? b->rank - 2 : 0];
	QPar p;
	qpar(c, &p, M, "r", arena_printf(c->g->arena, "ao / %lld * %lld + r", (long long)(M * K), (long long)M),
	     N, "col", arena_printf(c->g->arena, "bo / %lld * %lld + col", (long long)(K * N), (long long)N));
	int nb = y->rank - (a->rank > 1) - (b->rank > 1);
	Tensor ab = batch_of(a, a->rank - 2), bb = batch_of(b, b->rank - 2), yb = batch_of(y, nb);
	Nest bn;
	if (K != K2 || nb < 0 || ir_numel(y) != ir_numel(&yb) * M * N)
		return ec_fail(c, "input shapes do not agree with each other or the output");
	nest_init(&bn, yb.rank, yb.dim, 3);
	if (nest_bcast(&bn, 1, &ab) || nest_bcast(&bn, 2, &bb))
		return ec_fail(c, "batch dims do not broadcast");
	for (int r = 0; r < bn.rank; r++) {
		bn.st[1][r] *= M * K;
		bn.st[2][r] *= K * N;
	}
	nest_simplify(&bn);
	const char *as = ec_x(c, 0), *bs = ec_x(c, p.w);
	char ia[200], ib[200];
	ec_begin(c, 0);
	ec_line(&c->c, "long i = 0;");
	nest_open(c, &bn);
	nest_index(&bn, 1, ia, sizeof ia);
	nest_index(&bn, 2, ib, sizeof ib);
	ec_line(&c->c, "const long ao = %s, bo = %s;", ia, ib);
	ec_line(&c->c, "for (long r = 0; r < %lld; r++)", (long long)M);
	ec_line(&c->c, "for (long col = 0; col < %lld; col++) {", (long long)N);
	ec_line(&c->c, "const int64_t za = (int64_t)%s, zb = (int64_t)%s;", p.zx, p.zw);
	ec_line(&c->c, "int64_t acc = 0;");
	ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)K);
	ec_line(&c->c, "\tacc += ((int64_t)%s[ao + r * %lld + j] - za) * ((int64_t)%s[bo + j * %lld + col] - zb);",
	        as, (long long)K, bs, (long long)N);
	store(c, &p);
	ec_line(&c->c, "}");
	nest_close(c, &bn);
	ec_end(c);
	return 0;
}

int ec_qops(Ctx *c)
{
	switch (c->n->op) {
	case OP_QUANTIZE: return quantize(c);
	case OP_DEQUANTIZE: return dequantize(c);
	case OP_QLINEARCONV: case OP_CONVINTEGER: return qconv(c);
	case OP_QLINEARMATMUL: case OP_MATMULINTEGER: return qmatmul(c);
	default: return ec_fail(c, "internal: %s is not a quantization operator", ir_opname[c->n->op]);
	}
}
