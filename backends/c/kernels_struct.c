/* Kernel emitters for the structural ops of ops.def: Split, DepthToSpace,
 * SpaceToDepth, GatherElements, GatherND, OneHot, Trilu (byte movers, any
 * dtype), ConvTranspose, InstanceNormalization, LayerNormalization, LRN and
 * Resize (float; nearest Resize moves any dtype).
 *
 * Float operations happen in ir/eval_struct.c's order (see its top
 * comment), so results match the reference evaluator bit for bit unless
 * the C compiler contracts into FMAs.  Run-time indices (GatherElements,
 * GatherND, OneHot) are wrapped and then clamped (or ignored) so that a bad
 * index never reads or writes out of bounds; constant ones are checked and
 * resolved here. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "emit_impl.h"

static int same_dtype(Ctx *c, const Tensor *x, const Tensor *y)
{
	if (!x || !y || x->dtype != y->dtype || !ec_ctype(y->dtype))
		return ec_fail(c, "input and output differ in dtype, or the dtype is unsupported");
	return 0;
}

/* y[...] = x[...] along a simplified nest (operand 0: y, 1: x). */
static void copy_nest(Ctx *c, Nest *n, const char *x, const char *y)
{
	char iy[200], ix[200];
	nest_simplify(n);
	nest_open(c, n);
	nest_index(n, 0, iy, sizeof iy);
	nest_index(n, 1, ix, sizeof ix);
	ec_line(&c->c, "%s[%s] = %s[%s];", y, iy, x, ix);
	nest_close(c, n);
}

static const char *name(Ctx *c, const char *what)
{
	return arena_printf(c->g->arena, "n%d_%s", c->id, what);
}

/* ---- Split ---- */

static int ec_split(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0);
	int axis = ec_axis(c->n->a.axis.axis, x->rank);
	if (axis < 0)
		return ec_fail(c, "axis %d out of range for rank %d", c->n->a.axis.axis, x->rank);
	int64_t xst[IR_MAXRANK], at = 0;
	for (int j = 0; j < c->n->nout; j++) {
		const Tensor *y = ec_tout(c, j);
		if (!y)
			return ec_fail(c, "internal: output %d has no tensor", j);
		if (same_dtype(c, x, y) || y->rank != x->rank || at + y->dim[axis] > x->dim[axis])
			return c->failed ? 1 : ec_fail(c, "output %d does not fit the input", j);
		at += y->dim[axis];
	}
	ec_strides(x, xst);
	const char *xs = ir_numel(x) ? ec_x(c, 0) : NULL;
	ec_begin(c, 0);
	at = 0;
	for (int j = 0; j < c->n->nout; j++) {
		const Tensor *y = ec_tout(c, j);
		if (!ir_numel(y) || !xs) {
			ec_line(&c->c, "(void)y%d;", j);
			at += y->dim[axis];
			continue;
		}
		Nest n;
		nest_init(&n, y->rank, y->dim, 2);
		nest_bcast(&n, 0, y);
		for (int a = 0; a < x->rank; a++)
			n.st[1][a] = xst[a];
		n.base[1] = at * xst[axis];
		ec_line(&c->c, "{");
		copy_nest(c, &n, xs, arena_printf(c->g->arena, "y%d", j));
		ec_line(&c->c, "}");
		at += y->dim[axis];
	}
	ec_end(c);
	return 0;
}

/* ---- DepthToSpace, SpaceToDepth ---- */

/* A copy along a 6-D walk of y in row-major order; the strides into x are
 * ir/eval_struct.c's depthspace_walk. */
static int ec_depthspace(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0);
	int64_t b = c->n->a.d2s.block;
	if (same_dtype(c, x, y) || x->rank != 4 || y->rank != 4 || b < 1 || ir_numel(x) != ir_numel(y))
		return c->failed ? 1 : ec_fail(c, "needs 4-D input and output of one size");
	int64_t N = x->dim[0], C = x->dim[1], H = x->dim[2], W = x->dim[3], hw = H * W;
	int64_t dim[6], st[6];
	if (c->n->op == OP_DEPTHTOSPACE) {
		int64_t Cy = C / (b * b);
		int64_t d[6] = {N, Cy, H, b, W, b};
		int64_t crd[6] = {C * hw, b * b * hw, W, b * hw, 1, hw};
		int64_t dcr[6] = {C * hw, hw, W, b * Cy * hw, 1, Cy * hw};
		memcpy(dim, d, sizeof d);
		memcpy(st, c->n->a.d2s.crd ? crd : dcr, sizeof st);
	} else {
		int64_t d[6] = {N, b, b, C, H / b, W / b};
		int64_t s[6] = {C * hw, W, 1, hw, b * W, b};
		memcpy(dim, d, sizeof d);
		memcpy(st, s, sizeof st);
	}
	Nest n;
	nest_init(&n, 6, dim, 2);
	for (int a = 5, s = 1; a >= 0; s *= (int)dim[a], a--)
		n.st[0][a] = s;
	memcpy(n.st[1], st, sizeof st);
	const char *xs = ec_x(c, 0);
	ec_begin(c, 0);
	copy_nest(c, &n, xs, "y0");
	ec_end(c);
	return 0;
}

/* ---- GatherElements, GatherND ---- */

/* An index of dtype dt read from expr, wrapped by n and clamped into
 * [0, n): "k", declared as a long. */
static void runtime_index(Ctx *c, const char *expr, int64_t n)
{
	ec_line(&c->c, "int64_t v = %s;", expr);
	ec_line(&c->c, "v = v < 0 ? v + %lld : v;", (long long)n);
	ec_line(&c->c, "const long k = v < 0 ? 0 : v >= %lld ? %lld : (long)v;", (long long)n, (long long)(n - 1));
}

/* A constant index tensor wrapped by the dim of each element's position
 * (dims[i % period]); -1 after reporting one out of range. */
static int64_t *const_indices(Ctx *c, const Tensor *t, const int64_t *dims, int period)
{
	int64_t n = ir_numel(t);
	int64_t *k = malloc(sizeof *k * (size_t)(n ? n : 1));
	for (int64_t i = 0; k && i < n; i++) {
		int64_t v = ir_get_i64(t, i), d = dims[i % period];
		k[i] = v < 0 ? v + d : v;
		if (k[i] < 0 || k[i] >= d) {
			free(k);
			ec_fail(c, "index %lld out of range [-%lld, %lld)", (long long)v, (long long)d, (long long)d);
			return NULL;
		}
	}
	return k;
}

static int ec_gatherelem(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *ti = ec_tin(c, 1), *y = ec_tout(c, 0);
	int axis = ec_axis(c->n->a.axis.axis, x->rank);
	if (same_dtype(c, x, y) || axis < 0 || !ec_isint(ti->dtype) || ti->rank != x->rank)
		return c->failed ? 1 : ec_fail(c, "bad axis or indices");
	int64_t xst[IR_MAXRANK], D = x->dim[axis];
	ec_strides(x, xst);
	Nest n;
	nest_init(&n, ti->rank, ti->dim, 3);
	nest_bcast(&n, 0, ti);
	nest_bcast(&n, 1, ti);
	for (int a = 0; a < x->rank; a++)
		n.st[2][a] = a == axis ? 0 : xst[a];
	nest_simplify(&n);
	const char *idx = NULL;
	if (ti->kind == TK_CONST) {
		int64_t *k = const_indices(c, ti, &D, 1);
		if (!k)
			return 1;
		idx = name(c, "idx");
		ec_array(c, idx, DT_I64, ir_numel(ti), k);
		free(k);
	} else {
		idx = ec_x(c, 1);
	}
	const char *xs = ec_x(c, 0);
	char iy[200], ix[200];
	ec_begin(c, 0);
	nest_open(c, &n);
	nest_index(&n, 0, iy, sizeof iy);
	nest_index(&n, 2, ix, sizeof ix);
	if (ti->kind == TK_CONST)
		ec_line(&c->c, "const long k = (long)%s[%s];", idx, iy);
	else
		runtime_index(c, arena_printf(c->g->arena, "%s[%s]", idx, iy), D);
	ec_line(&c->c, "y0[%s] = %s[%s + k * %lld];", iy, xs, ix, (long long)xst[axis]);
	nest_close(c, &n);
	ec_end(c);
	return 0;
}

/* Slab offsets of every (batch, tuple) of constant indices. */
static int gathernd_const(Ctx *c, const Tensor *x, const Tensor *ti, int bd, int m, const char *tab)
{
	int64_t xst[IR_MAXRANK], nrow = ir_numel(ti) / m, tb = ec_prod(ti, bd, ti->rank - 1);
	ec_strides(x, xst);
	int64_t *k = const_indices(c, ti, x->dim + bd, m);
	int64_t *off = malloc(sizeof *off * (size_t)(nrow ? nrow : 1));
	for (int64_t r = 0; k && off && r < nrow; r++) {
		off[r] = bd ? r / tb * xst[bd - 1] : 0;
		for (int q = 0; q < m; q++)
			off[r] += k[r * m + q] * xst[bd + q];
	}
	if (k && off)
		ec_array(c, tab, DT_I64, nrow, off);
	free(off);
	int bad = !k;
	free(k);
	return bad;
}

static int ec_gathernd(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *ti = ec_tin(c, 1), *y = ec_tout(c, 0);
	int bd = c->n->a.norm.batch, q = ti->rank;
	int m = q ? (int)ti->dim[q - 1] : 0;
	if (same_dtype(c, x, y) || !ec_isint(ti->dtype) || m < 1 || bd < 0 || bd + m > x->rank)
		return c->failed ? 1 : ec_fail(c, "bad batch_dims or indices");
	int64_t xst[IR_MAXRANK], slab = ec_prod(x, bd + m, x->rank), nrow = ir_numel(ti) / m;
	int64_t tb = ec_prod(ti, bd, q - 1);
	ec_strides(x, xst);
	const char *tab = name(c, "off"), *idx = NULL;
	if (ti->kind == TK_CONST ? gathernd_const(c, x, ti, bd, m, tab) : 0)
		return 1;
	if (ti->kind != TK_CONST)
		idx = ec_x(c, 1);
	const char *xs = ec_x(c, 0);
	ec_begin(c, 0);
	ec_line(&c->c, "for (long r = 0; r < %lld; r++) {", (long long)nrow);
	if (idx) {
		ec_line(&c->c, "long o = %s;", bd ? arena_printf(c->g->arena, "r / %lld * %lld", (long long)tb,
		        (long long)xst[bd - 1]) : "0");
		for (int k = 0; k < m; k++) {
			ec_line(&c->c, "{");
			runtime_index(c, arena_printf(c->g->arena, "%s[r * %d + %d]", idx, m, k), x->dim[bd + k]);
			ec_line(&c->c, "o += k * %lld;", (long long)xst[bd + k]);
			ec_line(&c->c, "}");
		}
	} else {
		ec_line(&c->c, "const long o = (long)%s[r];", tab);
	}
	ec_line(&c->c, "for (long i = 0; i < %lld; i++)", (long long)slab);
	ec_line(&c->c, "\ty0[r * %lld + i] = %s[o + i];", (long long)slab, xs);
	ec_line(&c->c, "}");
	ec_end(c);
	return 0;
}

/* ---- OneHot, Trilu ---- */

/* "k": the index read from expr (any numeric dtype) wrapped by depth D,
 * or -1 when out of range (a row of 'off'). */
static void onehot_index(Ctx *c, DType dt, const char *expr, int64_t D)
{
	if (dt == DT_F32) {
		/* only floats inside (-D-1, D+1) convert: others are out of range anyway */
		ec_line(&c->c, "const float f = %s;", expr);
		ec_line(&c->c, "const long v = f > %lld.0f && f < %lld.0f ? (long)f : %lld;", (long long)(-D - 1),
		        (long long)(D + 1), (long long)D);
	} else {
		ec_line(&c->c, "const int64_t w = %s;", expr);
		ec_line(&c->c, "const long v = w < %lld || w >= %lld ? %lld : (long)w;", (long long)-D,
		        (long long)D, (long long)D);
	}
	ec_line(&c->c, "const long k = v < 0 ? v + %lld : v < %lld ? v : -1;", (long long)D, (long long)D);
}

/* Fill with values[0], then values[1] where each index points. */
static int ec_onehot(Ctx *c)
{
	const Tensor *ti = ec_tin(c, 0), *tv = ec_tin(c, 2), *y = ec_tout(c, 0);
	int axis = ec_axis(c->n->a.axis.axis, y->rank);
	if (same_dtype(c, tv, y) || axis < 0 || !ec_ctype(ti->dtype) || ir_numel(tv) != 2)
		return c->failed ? 1 : ec_fail(c, "bad axis, indices or values");
	int64_t D = y->dim[axis], outer = ec_prod(y, 0, axis), inner = ec_prod(y, axis + 1, y->rank);
	const char *xs = ir_numel(ti) ? ec_x(c, 0) : NULL, *vs = ec_x(c, 2);
	ec_begin(c, 0);
	ec_line(&c->c, "for (long i = 0; i < %lld; i++)", (long long)ir_numel(y));
	ec_line(&c->c, "\ty0[i] = %s[0];", vs);
	if (xs) {
		ec_line(&c->c, "for (long o = 0; o < %lld; o++) {", (long long)outer);
		ec_line(&c->c, "for (long i = 0; i < %lld; i++) {", (long long)inner);
		onehot_index(c, ti->dtype, arena_printf(c->g->arena, "%s[o * %lld + i]", xs, (long long)inner), D);
		ec_line(&c->c, "if (k >= 0)");
		ec_line(&c->c, "\ty0[(o * %lld + k) * %lld + i] = %s[1];", (long long)D, (long long)inner, vs);
		ec_line(&c->c, "}");
		ec_line(&c->c, "}");
	}
	ec_end(c);
	return 0;
}

static int ec_trilu(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *tk = ec_tin(c, 1), *y = ec_tout(c, 0);
	if (same_dtype(c, x, y) || x->rank < 2 || ir_numel(x) != ir_numel(y))
		return c->failed ? 1 : ec_fail(c, "needs rank >= 2 and a matching output");
	if (tk && (!ec_isint(tk->dtype) || ir_numel(tk) != 1))
		return ec_fail(c, "k must be one integer");
	int64_t R = x->dim[x->rank - 2], C = x->dim[x->rank - 1], P = ec_prod(x, 0, x->rank - 2);
	char k[32] = "0";
	if (tk && tk->kind == TK_CONST)
		ec_lit(k, DT_I64, (double)ir_get_i64(tk, 0));
	const char *ks = tk && tk->kind != TK_CONST ? ec_x(c, 1) : NULL, *xs = ec_x(c, 0);
	ec_begin(c, 0);
	ec_line(&c->c, "const int64_t k = %s;", ks ? arena_printf(c->g->arena, "%s[0]", ks) : k);
	ec_line(&c->c, "for (long p = 0; p < %lld; p++)", (long long)P);
	ec_line(&c->c, "\tfor (long r = 0; r < %lld; r++)", (long long)R);
	ec_line(&c->c, "\t\tfor (long j = 0; j < %lld; j++) {", (long long)C);
	c->c.depth += 2;
	ec_line(&c->c, "const long i = (p * %lld + r) * %lld + j;", (long long)R, (long long)C);
	ec_line(&c->c, "y0[i] = (int64_t)(j - r) %s k ? %s[i] : 0;", c->n->a.trilu.upper ? ">=" : "<=", xs);
	ec_line(&c->c, "}");
	c->c.depth -= 2;
	ec_end(c);
	return 0;
}

/* ---- ConvTranspose ---- */

/* Output point by gathering: input i feeds output o through tap k when
 * o + pad = i * s + k * d.  Spatial dims right-aligned into z, y, x. */
static const char *const OV[3] = {"oz", "oy", "ox"};
static const char *const IV[3] = {"iz", "iy", "ix"};
static const char *const KV[3] = {"kz", "ky", "kx"};

static void convt_taps(Ctx *c, const int64_t *in, const int64_t *k, const int64_t *s, const int64_t *d,
                       const int64_t *pb)
{
	for (int a = 0; a < 3; a++) {
		ec_line(&c->c, "for (long %s = 0; %s < %lld; %s++) {", KV[a], KV[a], (long long)k[a], KV[a]);
		if (d[a] == 1)
			ec_line(&c->c, "const long t%d = %s - %s + %lld;", a, OV[a], KV[a], (long long)pb[a]);
		else
			ec_line(&c->c, "const long t%d = %s - %s * %lld + %lld;", a, OV[a], KV[a], (long long)d[a],
			        (long long)pb[a]);
		ec_line(&c->c, "if (t%d < 0 || t%d %% %lld != 0 || t%d / %lld >= %lld)", a, a, (long long)s[a],
		        a, (long long)s[a], (long long)in[a]);
		ec_line(&c->c, "\tcontinue;");
		ec_line(&c->c, "{");
		ec_line(&c->c, "const long %s = t%d / %lld;", IV[a], a, (long long)s[a]);
	}
}

static int ec_convtranspose(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *w = ec_tin(c, 1), *y = ec_tout(c, 0);
	const Window *win = &c->n->a.win;
	int nsp = win->nsp;
	if (ec_want_f32(c, 3))
		return 1;
	if (nsp < 1 || nsp > 3 || x->rank != nsp + 2 || y->rank != nsp + 2 || win->autopad != PAD_EXPLICIT)
		return ec_fail(c, "needs 1 to 3 spatial dims and explicit pads");
	int64_t in[3], out[3], k[3], s[3], d[3], pb[3];
	for (int i = 0; i < 3; i++) {
		int j = i - (3 - nsp);
		in[i] = j < 0 ? 1 : x->dim[2 + j];
		out[i] = j < 0 ? 1 : y->dim[2 + j];
		k[i] = j < 0 ? 1 : win->k[j];
		s[i] = j < 0 ? 1 : win->s[j];
		d[i] = j < 0 ? 1 : win->d[j];
		pb[i] = j < 0 ? 0 : win->pad[j];
	}
	int64_t N = x->dim[0], C = x->dim[1], M = y->dim[1], g = win->group, cg = C / g, mg = M / g;
	int64_t insz = in[0] * in[1] * in[2], outsz = out[0] * out[1] * out[2], ksz = k[0] * k[1] * k[2];
	if (g < 1 || w->dim[0] != C || w->dim[1] != mg || ir_numel(w) != C * mg * ksz)
		return ec_fail(c, "weight shape does not match input, output and group");
	const char *ws = ec_x(c, 1), *bs = ec_tin(c, 2) ? ec_x(c, 2) : NULL, *xs = ec_x(c, 0);
	ec_begin(c, 0);
	ec_line(&c->c, "for (long n = 0; n < %lld; n++) {", (long long)N);
	ec_line(&c->c, "for (long m = 0; m < %lld; m++) {", (long long)M);
	ec_line(&c->c, "const float *const xg = %s + (n * %lld + m / %lld * %lld) * %lld;", xs, (long long)C,
	        (long long)mg, (long long)cg, (long long)insz);
	ec_line(&c->c, "const float *const wm = %s + (m / %lld * %lld + m %% %lld) * %lld;", ws, (long long)mg,
	        (long long)(cg * mg), (long long)mg, (long long)ksz);
	ec_line(&c->c, "float *const yp = y0 + (n * %lld + m) * %lld;", (long long)M, (long long)outsz);
	if (bs)
		ec_line(&c->c, "const float b = %s[m];", bs);
	for (int a = 0; a < 3; a++)
		ec_line(&c->c, "for (long %s = 0; %s < %lld; %s++) {", OV[a], OV[a], (long long)out[a], OV[a]);
	ec_line(&c->c, "float acc = 0.0f;");
	ec_line(&c->c, "for (long ch = 0; ch < %lld; ch++) {", (long long)cg);
	convt_taps(c, in, k, s, d, pb);
	ec_line(&c->c, "acc += xg[ch * %lld + (iz * %lld + iy) * %lld + ix] * wm[ch * %lld + (kz * %lld + ky) * %lld + kx];",
	        (long long)insz, (long long)in[1], (long long)in[2], (long long)(mg * ksz), (long long)k[1],
	        (long long)k[2]);
	for (int a = 0; a < 3; a++) {
		ec_line(&c->c, "}");
		ec_line(&c->c, "}");
	}
	ec_line(&c->c, "}");
	ec_store(c, arena_printf(c->g->arena, "yp[(oz * %lld + oy) * %lld + ox]", (long long)out[1],
	                         (long long)out[2]), bs ? "acc + b" : "acc");
	for (int a = 0; a < 3; a++)
		ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_end(c);
	return 0;
}

/* ---- normalisations ---- */

/* mean and var of the n floats at pointer expression p, into the C
 * variables named mean and var (eval_struct.c's moments). */
static void moments(Ctx *c, const char *p, int64_t n)
{
	char nf[32];
	emit_c_fmt_f32(nf, (float)n);
	ec_line(&c->c, "float sum = 0.0f, sq = 0.0f;");
	ec_line(&c->c, "for (long i = 0; i < %lld; i++)", (long long)n);
	ec_line(&c->c, "\tsum += %s[i];", p);
	ec_line(&c->c, "const float mean = sum / %s;", nf);
	ec_line(&c->c, "for (long i = 0; i < %lld; i++) {", (long long)n);
	ec_line(&c->c, "const float d = %s[i] - mean;", p);
	ec_line(&c->c, "sq += d * d;");
	ec_line(&c->c, "}");
	ec_line(&c->c, "const float var = sq / %s;", nf);
}

static int ec_instnorm(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0);
	if (ec_want_f32(c, 3) || x->rank < 2)
		return c->failed ? 1 : ec_fail(c, "input must be [N, C, ...]");
	int64_t C = x->dim[1], P = x->dim[0] * C, sz = ec_prod(x, 2, x->rank);
	const char *sc = ec_x(c, 1), *bi = ec_x(c, 2), *xs = ec_x(c, 0);
	char eps[32];
	emit_c_fmt_f32(eps, c->n->a.norm.eps);
	ec_begin(c, 0);
	ec_line(&c->c, "for (long p = 0; p < %lld; p++) {", (long long)P);
	ec_line(&c->c, "const float *const x = %s + p * %lld;", xs, (long long)sz);
	moments(c, "x", sz);
	ec_line(&c->c, "const float sd = sqrtf(var + %s);", eps);
	ec_line(&c->c, "const float sc = %s[p %% %lld], bi = %s[p %% %lld];", sc, (long long)C, bi, (long long)C);
	ec_line(&c->c, "for (long i = 0; i < %lld; i++)", (long long)sz);
	c->c.depth++;
	ec_store(c, arena_printf(c->g->arena, "y0[p * %lld + i]", (long long)sz), "(x[i] - mean) / sd * sc + bi");
	c->c.depth--;
	ec_line(&c->c, "}");
	ec_end(c);
	return 0;
}

/* Statistics per row (into the Mean / InvStdDev outputs or scratch), then
 * y over a nest that broadcasts scale and b to x. */
static int ec_layernorm(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *ts = ec_tin(c, 1), *tb = ec_tin(c, 2);
	int axis = ec_axis(c->n->a.norm.axis, x->rank);
	if (ec_want_f32(c, 3) || axis < 0)
		return c->failed ? 1 : ec_fail(c, "axis %d out of range", c->n->a.norm.axis);
	int64_t rows = ec_prod(x, 0, axis), len = ec_prod(x, axis, x->rank);
	Nest n;
	nest_init(&n, x->rank, x->dim, 3);
	nest_bcast(&n, 0, x);
	if (nest_bcast(&n, 1, ts) || (tb && nest_bcast(&n, 2, tb)))
		return ec_fail(c, "scale or bias does not broadcast to the input");
	nest_simplify(&n);
	const Tensor *tm = ec_tout(c, 1), *ti = ec_tout(c, 2);
	int64_t scratch = (tm ? 0 : rows) + (ti ? 0 : rows);
	const char *sc = ec_x(c, 1), *bi = tb ? ec_x(c, 2) : NULL, *xs = ec_x(c, 0);
	char eps[32], iy[200], is[200], ib[200];
	emit_c_fmt_f32(eps, c->n->a.norm.eps);
	ec_begin(c, scratch * (int64_t)sizeof(float));
	ec_line(&c->c, "float *const mo = %s;", tm ? "y1" : "s");
	ec_line(&c->c, "float *const io = %s;", ti ? "y2" : tm ? "s" : arena_printf(c->g->arena, "s + %lld", (long long)rows));
	ec_line(&c->c, "for (long r = 0; r < %lld; r++) {", (long long)rows);
	ec_line(&c->c, "const float *const x = %s + r * %lld;", xs, (long long)len);
	moments(c, "x", len);
	ec_line(&c->c, "mo[r] = mean;");
	ec_line(&c->c, "io[r] = 1.0f / sqrtf(var + %s);", eps);
	ec_line(&c->c, "}");
	nest_open(c, &n);
	nest_index(&n, 0, iy, sizeof iy);
	nest_index(&n, 1, is, sizeof is);
	nest_index(&n, 2, ib, sizeof ib);
	ec_line(&c->c, "const long q = %s, r = q / %lld;", iy, (long long)len);
	ec_line(&c->c, "const float v = (%s[q] - mo[r]) * io[r] * %s[%s];", xs, sc, is);
	ec_store(c, "y0[q]", bi ? arena_printf(c->g->arena, "v + %s[%s]", bi, ib) : "v");
	nest_close(c, &n);
	ec_end(c);
	return 0;
}

/* Channels c - (size-1)/2 .. c + size/2, clipped to the tensor. */
static int ec_lrn(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0);
	if (ec_want_f32(c, 1) || x->rank < 2)
		return c->failed ? 1 : ec_fail(c, "input must be [N, C, ...]");
	int size = c->n->a.lrn.size;
	int64_t N = x->dim[0], C = x->dim[1], sz = ec_prod(x, 2, x->rank);
	char a[32], beta[32], bias[32];
	emit_c_fmt_f32(a, c->n->a.lrn.alpha / (float)size);
	emit_c_fmt_f32(beta, c->n->a.lrn.beta);
	emit_c_fmt_f32(bias, c->n->a.lrn.bias);
	const char *xs = ec_x(c, 0);
	ec_begin(c, 0);
	ec_line(&c->c, "for (long n = 0; n < %lld; n++) {", (long long)N);
	ec_line(&c->c, "for (long ch = 0; ch < %lld; ch++) {", (long long)C);
	ec_line(&c->c, "const long lo = ch < %d ? 0 : ch - %d, hi = ch + %d < %lld ? ch + %d : %lld;",
	        (size - 1) / 2, (size - 1) / 2, size / 2, (long long)C, size / 2, (long long)(C - 1));
	ec_line(&c->c, "for (long i = 0; i < %lld; i++) {", (long long)sz);
	ec_line(&c->c, "float s = 0.0f;");
	ec_line(&c->c, "for (long k = lo; k <= hi; k++) {");
	ec_line(&c->c, "const float v = %s[(n * %lld + k) * %lld + i];", xs, (long long)C, (long long)sz);
	ec_line(&c->c, "s += v * v;");
	ec_line(&c->c, "}");
	ec_line(&c->c, "{");
	ec_line(&c->c, "const long at = (n * %lld + ch) * %lld + i;", (long long)C, (long long)sz);
	ec_store(c, "y0[at]", arena_printf(c->g->arena, "%s[at] / powf(%s + %s * s, %s)", xs, bias, a, beta));
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_end(c);
	return 0;
}

/* ---- Resize ---- */

/* v as a literal of dt, saturated into dt's range (eval's ev_setf). */
static void sat_lit(char *buf, DType dt, double v)
{
	static const struct { DType t; double lo, hi; } r[] = {
		{DT_I8, -128, 127}, {DT_U8, 0, 255}, {DT_I16, -32768, 32767}, {DT_U16, 0, 65535},
		{DT_I32, -2147483648.0, 2147483647.0}, {DT_U32, 0, 4294967295.0},
	};
	if (dt == DT_BOOL) {
		strcpy(buf, v != 0 ? "1" : "0");
		return;
	}
	for (size_t i = 0; dt != DT_F32 && i < sizeof r / sizeof r[0]; i++)
		if (r[i].t == dt)
			v = v != v ? 0 : v < r[i].lo ? r[i].lo : v > r[i].hi ? r[i].hi : v;
	ec_lit(buf, dt, v);
}

/* Per-axis sampling of a Resize (ir_resize_axis): tables printed as
 * arrays unless the axis is the identity; ok tables only where
 * tf_crop_and_resize extrapolates somewhere. */
typedef struct {
	int nt[IR_MAXRANK], ident[IR_MAXRANK], anyok[IR_MAXRANK];
	const char *idx[IR_MAXRANK], *w[IR_MAXRANK], *ok[IR_MAXRANK];
} RPlan;

static int resize_tables(Ctx *c, const Tensor *y, RPlan *p)
{
	int r = y->rank;
	for (int a = 0; a < r; a++) {
		int64_t n = y->dim[a];
		int64_t *idx = malloc(sizeof *idx * (size_t)(4 * n + 1));
		float *w = malloc(sizeof *w * (size_t)(4 * n + 1));
		char *ok = malloc((size_t)n + 1);
		if (!idx || !w || !ok) {
			free(idx), free(w), free(ok);
			return ec_fail(c, "out of memory");
		}
		int nt = p->nt[a] = ir_resize_axis(c->g, c->n, a, idx, w, ok);
		p->ident[a] = nt == 1 && ec_tin(c, 0)->dim[a] == n;
		p->anyok[a] = 0;
		for (int64_t o = 0; o < n; o++) {
			p->ident[a] &= idx[o] == o && ok[o];
			p->anyok[a] |= !ok[o];
		}
		if (!p->ident[a]) {
			p->idx[a] = arena_printf(c->g->arena, "n%d_i%d", c->id, a);
			ec_array(c, p->idx[a], DT_I64, nt * n, idx);
		}
		if (!p->ident[a] && c->n->a.resize.mode != RS_NEAREST) {
			p->w[a] = arena_printf(c->g->arena, "n%d_w%d", c->id, a);
			ec_array(c, p->w[a], DT_F32, nt * n, w);
		}
		if (p->anyok[a]) {
			uint8_t *u = malloc((size_t)n + 1);
			for (int64_t o = 0; u && o < n; o++)
				u[o] = (uint8_t)ok[o];
			p->ok[a] = arena_printf(c->g->arena, "n%d_ok%d", c->id, a);
			ec_array(c, p->ok[a], DT_U8, n, u);
			free(u);
		}
		free(idx), free(w), free(ok);
	}
	return 0;
}

/* Source offset of the tap: sum over axes of index * stride. */
static const char *tap_off(Ctx *c, const RPlan *p, int r, const int64_t *xst, int taps)
{
	Str s = {0};
	for (int a = 0; a < r; a++) {
		const char *plus = s.len ? " + " : "";
		if (p->ident[a])
			str_printf(&s, "%si%d * %lld", plus, a, (long long)xst[a]);
		else if (!taps || p->nt[a] == 1)
			str_printf(&s, "%s%s[i%d] * %lld", plus, p->idx[a], a, (long long)xst[a]);
		else
			str_printf(&s, "%s%s[i%d * %d + t%d] * %lld", plus, p->idx[a], a, p->nt[a], a, (long long)xst[a]);
	}
	const char *res = arena_strdup(c->g->arena, s.len ? s.s : "0");
	str_free(&s);
	return res;
}

/* The weighted sum over the tap grid: loops over the axes with more than
 * one tap, weight product in axis order, then acc += wp * x. */
static void resize_sum(Ctx *c, const RPlan *p, int r, const int64_t *xst, const char *xs)
{
	Str w = {0};
	int open = 0;
	ec_line(&c->c, "float acc = 0.0f;");
	for (int a = 0; a < r; a++)
		if (!p->ident[a] && p->nt[a] > 1) {
			ec_line(&c->c, "for (long t%d = 0; t%d < %d; t%d++) {", a, a, p->nt[a], a);
			open++;
			str_printf(&w, "%s%s[i%d * %d + t%d]", w.len ? " * " : "", p->w[a], a, p->nt[a], a);
		}
	ec_line(&c->c, "acc += %s%s%s[%s];", w.len ? w.s : "", w.len ? " * " : "", xs, tap_off(c, p, r, xst, 1));
	for (int k = 0; k < open; k++)
		ec_line(&c->c, "}");
	str_free(&w);
}

static int ec_resize(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0);
	int r = y->rank, nearest = c->n->a.resize.mode == RS_NEAREST;
	if (same_dtype(c, x, y) || x->rank != r || (!nearest && ec_want_f32(c, 1)))
		return 1;
	RPlan p;
	int64_t xst[IR_MAXRANK];
	ec_strides(x, xst);
	if (resize_tables(c, y, &p))
		return 1;
	const char *xs = ec_x(c, 0);
	char ex[48];
	sat_lit(ex, y->dtype, c->n->a.resize.extrap);
	Str cond = {0};
	for (int a = 0; a < r; a++)
		if (p.anyok[a])
			str_printf(&cond, "%s!%s[i%d]", cond.len ? " || " : "", p.ok[a], a);
	ec_begin(c, 0);
	ec_line(&c->c, "long q = 0;");
	for (int a = 0; a < r; a++)
		ec_line(&c->c, "for (long i%d = 0; i%d < %lld; i%d++) {", a, a, (long long)y->dim[a], a);
	if (cond.len) {
		ec_line(&c->c, "if (%s) {", cond.s);
		ec_line(&c->c, "y0[q++] = %s;", ex);
		ec_line(&c->c, "continue;");
		ec_line(&c->c, "}");
	}
	if (nearest) {
		ec_line(&c->c, "y0[q++] = %s[%s];", xs, tap_off(c, &p, r, xst, 0));
	} else {
		ec_line(&c->c, "{");
		resize_sum(c, &p, r, xst, xs);
		ec_store(c, "y0[q++]", "acc");
		ec_line(&c->c, "}");
	}
	for (int a = 0; a < r; a++)
		ec_line(&c->c, "}");
	str_free(&cond);
	ec_end(c);
	return 0;
}

/* ---- dispatch ---- */

int ec_struct(Ctx *c)
{
	switch (c->n->op) {
	case OP_SPLIT: return ec_split(c);
	case OP_DEPTHTOSPACE: case OP_SPACETODEPTH: return ec_depthspace(c);
	case OP_GATHERELEM: return ec_gatherelem(c);
	case OP_GATHERND: return ec_gathernd(c);
	case OP_ONEHOT: return ec_onehot(c);
	case OP_TRILU: return ec_trilu(c);
	case OP_CONVTRANSPOSE: return ec_convtranspose(c);
	case OP_INSTNORM: return ec_instnorm(c);
	case OP_LAYERNORM: return ec_layernorm(c);
	case OP_LRN: return ec_lrn(c);
	case OP_RESIZE: return ec_resize(c);
	default: return ec_fail(c, "internal: %s is not a structural op", ir_opname[c->n->op]);
	}
}
