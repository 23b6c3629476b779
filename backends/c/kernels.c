/* Kernel emitters for the pools, BatchNormalization, Softmax and the
 * reductions; the window geometry shared with Conv; the helpers every
 * kernel emitter uses; and the op dispatch.  (Conv, Gemm, MatMul are in
 * kernels_conv.c, element-wise and data movement in kernels_data.c.)
 *
 * Float operations happen in ir/eval_nn.c's order (window sums from 0 in
 * depth, row, column order; reductions from the fold's identity in input
 * order), so the code matches the reference evaluator bit for bit. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "emit_impl.h"

/* ---- small helpers ---- */

/* "v0 * k0 + v1 * k1 + c": an affine index over loop variables; pairs
 * (name, int64_t coef) end with NULL; terms with a zero coefficient or an
 * empty name (a loop that was not printed) are left out. */
const char *ec_aff(Ctx *c, int64_t k0, ...)
{
	Str s = {0};
	va_list ap;
	va_start(ap, k0);
	for (const char *v; (v = va_arg(ap, const char *));) {
		int64_t k = va_arg(ap, int64_t);
		if (!k || !*v)
			continue;
		if (s.len)
			str_printf(&s, " + ");
		if (k == 1)
			str_printf(&s, "%s", v);
		else
			str_printf(&s, "%s * %lld", v, (long long)k);
	}
	va_end(ap);
	if (k0 || !s.len)
		str_printf(&s, s.len ? (k0 < 0 ? " - %lld" : " + %lld") : "%lld",
		           (long long)(s.len && k0 < 0 ? -k0 : k0));
	const char *r = arena_strdup(c->g->arena, s.s);
	str_free(&s);
	return r;
}

/* `dst = ACT(expr);` through a temporary when there is an activation. */
void ec_store(Ctx *c, const char *dst, const char *expr)
{
	if (c->n->act.kind == ACT_NONE) {
		ec_line(&c->c, "%s = %s;", dst, expr);
		return;
	}
	char a[512];
	ec_act(c, "z", a, sizeof a);
	ec_line(&c->c, "{");
	ec_line(&c->c, "const float z = %s;", expr);
	ec_line(&c->c, "%s = %s;", dst, a);
	ec_line(&c->c, "}");
}

int ec_want_f32(Ctx *c, int nin)
{
	const Tensor *t = ec_tout(c, 0);
	if (t->dtype != DT_F32)
		return ec_fail(c, "output is %s; the C backend computes this op in f32 only",
		               ir_dtype_name(t->dtype));
	for (int j = 0; j < nin; j++) {
		t = ec_tin(c, j);
		if (t && t->dtype != DT_F32)
			return ec_fail(c, "input %d is %s; the C backend computes this op in f32 only", j,
			               ir_dtype_name(t->dtype));
	}
	return 0;
}

int64_t ec_prod(const Tensor *t, int from, int to)
{
	int64_t p = 1;
	for (int a = from; a < to; a++)
		p *= t->dim[a];
	return p;
}

int ec_axis(int axis, int rank)
{
	if (axis < -rank || axis >= rank)
		return -1;
	return axis < 0 ? axis + rank : axis;
}

/* ---- sliding-window geometry ----
 * ir_window_geom (ir/window.c) gives the base, shared with the evaluator;
 * here it gains strides, interior ranges and active dims.  A dim
 * is active when it moves (in, out or kernel > 1, or padded); code is
 * printed for active dims only. */

static const char *const OV[3] = {"oz", "oy", "ox"};
static const char *const IV[3] = {"iz", "iy", "ix"};
static const char *const KV[3] = {"kz", "ky", "kx"};

static void interior(Geom *G, int i)
{
	int64_t s = G->s[i], lo = (G->pb[i] + s - 1) / s;
	int64_t num = G->in[i] - 1 + G->pb[i] - (int64_t)(G->k[i] - 1) * G->d[i];
	int64_t hi = num < 0 ? 0 : num / s + 1;
	lo = lo > G->out[i] ? G->out[i] : lo;
	hi = hi > G->out[i] ? G->out[i] : hi;
	G->lo[i] = lo;
	G->hi[i] = hi < lo ? lo : hi;
}

static void geom_derive(Geom *G)
{
	G->ist[2] = G->ost[2] = G->kst[2] = 1;
	for (int i = 1; i >= 0; i--) {
		G->ist[i] = G->ist[i + 1] * G->in[i + 1];
		G->ost[i] = G->ost[i + 1] * G->out[i + 1];
		G->kst[i] = G->kst[i + 1] * G->k[i + 1];
	}
	G->insz = G->ist[0] * G->in[0];
	G->outsz = G->ost[0] * G->out[0];
	G->ksz = G->kst[0] * G->k[0];
	G->nd = 0;
	for (int i = 0; i < 3; i++) {
		interior(G, i);
		if (G->in[i] > 1 || G->out[i] > 1 || G->k[i] > 1 || G->pb[i])
			G->ad[G->nd++] = i;
	}
	if (G->nd == 0)
		G->ad[G->nd++] = 2;
}

/* Some output's window crosses the input's border (needs the edge helper). */
static int has_edge(const Geom *G)
{
	for (int q = 0; q < G->nd; q++) {
		int a = G->ad[q];
		if (G->lo[a] > 0 || G->hi[a] < G->out[a])
			return 1;
	}
	return 0;
}

int ec_geom(Ctx *c, const Tensor *x, const Tensor *y, Geom *G)
{
	WinGeom w;
	char why[128];
	if (ir_window_geom(&c->n->a.win, x, y, &w, why, sizeof why))
		return ec_fail(c, "%s", why);
	for (int i = 0; i < 3; i++) {
		G->in[i] = w.in[i], G->out[i] = w.out[i];
		G->k[i] = w.k[i], G->s[i] = w.s[i], G->d[i] = w.d[i];
		G->pb[i] = w.pb[i], G->pe[i] = w.pe[i];
	}
	geom_derive(G);
	return 0;
}

/* The window loops of one output point, inside a helper function whose
 * parameters include the active o* variables: opens a block per active
 * dim, skipping taps outside the input.  The body then indexes the input
 * with win_xidx and the kernel with win_kidx. */
static void win_open(Ctx *c, const Geom *G)
{
	for (int q = 0; q < G->nd; q++) {
		int a = G->ad[q];
		ec_line(&c->c, "for (long %s = 0; %s < %d; %s++) {", KV[a], KV[a], G->k[a], KV[a]);
		ec_line(&c->c, "const long %s = %s;", IV[a],
		        ec_aff(c, -G->pb[a], OV[a], (int64_t)G->s[a], KV[a], (int64_t)G->d[a], NULL));
		ec_line(&c->c, "if (%s < 0 || %s >= %lld)", IV[a], IV[a], (long long)G->in[a]);
		ec_line(&c->c, "\tcontinue;");
	}
}

static void win_close(Ctx *c, const Geom *G)
{
	for (int q = 0; q < G->nd; q++)
		ec_line(&c->c, "}");
}

static const char *win_idx(Ctx *c, const Geom *G, const char *const *v, const int64_t *st)
{
	const char *n[3] = {NULL, NULL, NULL};
	int64_t k[3] = {0, 0, 0};
	for (int q = 0; q < G->nd; q++) {
		n[q] = v[G->ad[q]];
		k[q] = st[G->ad[q]];
	}
	return ec_aff(c, 0, n[0] ? n[0] : "", k[0], n[1] ? n[1] : "", k[1], n[2] ? n[2] : "", k[2], NULL);
}

/* Parameter list of the active output coordinates: "long oy, long ox". */
static const char *win_params(Ctx *c, const Geom *G)
{
	Str s = {0};
	for (int q = 0; q < G->nd; q++)
		str_printf(&s, ", long %s", OV[G->ad[q]]);
	const char *r = arena_strdup(c->g->arena, s.s);
	str_free(&s);
	return r;
}

static const char *win_args(Ctx *c, const Geom *G)
{
	Str s = {0};
	for (int q = 0; q < G->nd; q++)
		str_printf(&s, ", %s", OV[G->ad[q]]);
	const char *r = arena_strdup(c->g->arena, s.s);
	str_free(&s);
	return r;
}

/* Offset of tap (t0, t1, t2) from the row pointer xr of an interior
 * output: the innermost output coordinate is added by the caller. */
static int64_t tap_off(const Geom *G, const int *t)
{
	int64_t off = 0;
	for (int q = 0; q < G->nd; q++) {
		int a = G->ad[q];
		off += (int64_t)t[a] * G->d[a] * G->ist[a];
	}
	return off - G->pb[G->ad[G->nd - 1]];
}

/* "xr[ox * 2 - 1]": input element of tap t for the interior output ox. */
static void tap_ref(Ctx *c, const Geom *G, const int *t, const char *xr, char *buf, size_t len)
{
	int inner = G->ad[G->nd - 1];
	snprintf(buf, len, "%s[%s]", xr, ec_aff(c, tap_off(G, t), OV[inner], (int64_t)G->s[inner], NULL));
}

/* Next tap in row-major kernel order; 0 after the last. */
static int tap_next(const Geom *G, int *t)
{
	for (int q = G->nd - 1; q >= 0; q--) {
		int a = G->ad[q];
		if (++t[a] < G->k[a])
			return 1;
		t[a] = 0;
	}
	return 0;
}

/* Every output row of a window op: loops over the outer active dims, then
 * for interior rows a fast branch-free loop over the interior of the
 * innermost dim (fast() prints its body, reading the row pointer xr) and
 * the border points through edge() (which prints the statement for one
 * point, seeing the coordinates as o* variables). */
typedef void (*RowFn)(Ctx *, const Geom *, const void *arg);

static void rows(Ctx *c, const Geom *G, const char *ty, const char *x, const char *y, RowFn fast,
                 RowFn edge, const void *arg)
{
	int inner = G->ad[G->nd - 1];
	const char *ov = OV[inner];
	Str cond = {0};
	const char *nm[2] = {"", ""};
	int64_t ik[2] = {0, 0}, ok[2] = {0, 0}, ib = 0;
	int interior = G->hi[inner] > G->lo[inner];
	for (int q = 0; q + 1 < G->nd; q++) {
		int a = G->ad[q];
		ec_line(&c->c, "for (long %s = 0; %s < %lld; %s++) {", OV[a], OV[a], (long long)G->out[a], OV[a]);
		nm[q] = OV[a];
		ik[q] = G->s[a] * G->ist[a];
		ok[q] = G->ost[a];
		ib -= G->pb[a] * G->ist[a];
		interior &= G->hi[a] > G->lo[a];
		if (G->lo[a] > 0)
			str_printf(&cond, "%s%s >= %lld", cond.len ? " && " : "", OV[a], (long long)G->lo[a]);
		if (G->hi[a] < G->out[a])
			str_printf(&cond, "%s%s < %lld", cond.len ? " && " : "", OV[a], (long long)G->hi[a]);
	}
	ec_line(&c->c, "%s *const yr = %s + %s;", ty, y,
	        ec_aff(c, 0, nm[0], ok[0], nm[1], ok[1], NULL));
	if (interior) {
		if (cond.len)
			ec_line(&c->c, "if (%s) {", cond.s);
		ec_line(&c->c, "const %s *const xr = %s + %s;", ty, x, ec_aff(c, ib, nm[0], ik[0], nm[1], ik[1], NULL));
		if (G->lo[inner] > 0) {
			ec_line(&c->c, "for (long %s = 0; %s < %lld; %s++)", ov, ov, (long long)G->lo[inner], ov);
			c->c.depth++;
			edge(c, G, arg);
			c->c.depth--;
		}
		ec_line(&c->c, "for (long %s = %lld; %s < %lld; %s++) {", ov, (long long)G->lo[inner], ov,
		        (long long)G->hi[inner], ov);
		fast(c, G, arg);
		ec_line(&c->c, "}");
		if (G->hi[inner] < G->out[inner]) {
			ec_line(&c->c, "for (long %s = %lld; %s < %lld; %s++)", ov, (long long)G->hi[inner], ov,
			        (long long)G->out[inner], ov);
			c->c.depth++;
			edge(c, G, arg);
			c->c.depth--;
		}
		if (cond.len)
			ec_line(&c->c, "} else {");
	}
	if (!interior || cond.len) {
		ec_line(&c->c, "for (long %s = 0; %s < %lld; %s++)", ov, ov, (long long)G->out[inner], ov);
		c->c.depth++;
		edge(c, G, arg);
		c->c.depth--;
		if (interior)
			ec_line(&c->c, "}");
	}
	for (int q = 0; q + 1 < G->nd; q++)
		ec_line(&c->c, "}");
	str_free(&cond);
}

/* ---- MaxPool, AveragePool ---- */

typedef struct {
	const char *pt, *ty;
	int avg;
} PoolArg;

static void pool_edge(Ctx *c, const Geom *G, const void *arg)
{
	const PoolArg *k = arg;
	char dst[32], call[160];
	snprintf(dst, sizeof dst, "yr[%s]", OV[G->ad[G->nd - 1]]);
	snprintf(call, sizeof call, "%s(x%s)", k->pt, win_args(c, G));
	ec_store(c, dst, call);
}

static void pool_fast(Ctx *c, const Geom *G, const void *arg)
{
	const PoolArg *k = arg;
	char dst[32], ref[96];
	snprintf(dst, sizeof dst, "yr[%s]", OV[G->ad[G->nd - 1]]);
	int t[3] = {0, 0, 0};
	tap_ref(c, G, t, "xr", ref, sizeof ref);
	if (k->avg) {
		ec_line(&c->c, "float a = 0.0f;");
		ec_line(&c->c, "a += %s;", ref);
	} else {
		ec_line(&c->c, "%s a = %s;", k->ty, ref);
	}
	while (tap_next(G, t)) {
		tap_ref(c, G, t, "xr", ref, sizeof ref);
		if (k->avg)
			ec_line(&c->c, "a += %s;", ref);
		else
			ec_line(&c->c, "{ const %s v = %s; a = v > a ? v : a; }", k->ty, ref);
	}
	char e[64], kk[32];
	emit_c_fmt_f32(kk, (float)G->ksz);
	snprintf(e, sizeof e, k->avg ? "a / %s" : "a", kk);
	ec_store(c, dst, e);
}

/* count_include_pad divisor: taps inside [-pb, in + pe) per dim. */
static void pool_padcount(Ctx *c, const Geom *G)
{
	ec_line(&c->c, "n = 1;");
	for (int q = 0; q < G->nd; q++) {
		int a = G->ad[q];
		ec_line(&c->c, "{");
		ec_line(&c->c, "long cnt = 0;");
		ec_line(&c->c, "for (long t = 0; t < %d; t++) {", G->k[a]);
		ec_line(&c->c, "const long q = %s;", ec_aff(c, -G->pb[a], OV[a], (int64_t)G->s[a], "t", (int64_t)G->d[a], NULL));
		ec_line(&c->c, "cnt += q >= %d && q < %lld;", -G->pb[a], (long long)(G->in[a] + G->pe[a]));
		ec_line(&c->c, "}");
		ec_line(&c->c, "n *= cnt;");
		ec_line(&c->c, "}");
	}
}

/* One output point over the real taps: the max (pads never win, an
 * all-pad window gives the lowest value) or the mean; with idx, MaxPool's
 * argmax as a plane index. */
static void pool_pt(Ctx *c, const Geom *G, const PoolArg *k, int idx)
{
	DType dt = ec_tin(c, 0)->dtype;
	ec_line(&c->c, "static %s %s(const %s *x%s%s)", k->ty, k->pt, k->ty, win_params(c, G),
	        idx ? ", long *arg" : "");
	ec_line(&c->c, "{");
	if (k->avg) {
		ec_line(&c->c, "float a = 0.0f;");
		ec_line(&c->c, "long n = 0;");
	} else {
		ec_line(&c->c, "%s a = %s;", k->ty, ec_lowest(dt));
		ec_line(&c->c, "int any = 0;");
		if (idx)
			ec_line(&c->c, "*arg = -1;");
	}
	win_open(c, G);
	const char *xi = win_idx(c, G, IV, G->ist);
	if (k->avg) {
		ec_line(&c->c, "a += x[%s];", xi);
		ec_line(&c->c, "n++;");
	} else {
		ec_line(&c->c, "if (!any || x[%s] > a) {", xi);
		ec_line(&c->c, "a = x[%s];", xi);
		ec_line(&c->c, "any = 1;");
		if (idx)
			ec_line(&c->c, "*arg = %s;", xi);
		ec_line(&c->c, "}");
	}
	win_close(c, G);
	if (k->avg && c->n->a.win.incl_pad)
		pool_padcount(c, G);
	if (k->avg)
		ec_line(&c->c, "return n ? a / (float)n : 0.0f;");
	else
		ec_line(&c->c, "return a;");
	ec_line(&c->c, "}");
	ec_line(&c->c, "");
}

/* MaxPool with its Indices output: every point through the helper. */
static void pool_indices(Ctx *c, const Geom *G, const PoolArg *k, int64_t planes)
{
	ec_line(&c->c, "for (long p = 0; p < %lld; p++) {", (long long)planes);
	ec_line(&c->c, "const %s *const x = x0 + p * %lld;", k->ty, (long long)G->insz);
	for (int q = 0; q < G->nd; q++) {
		int a = G->ad[q];
		ec_line(&c->c, "for (long %s = 0; %s < %lld; %s++) {", OV[a], OV[a], (long long)G->out[a], OV[a]);
	}
	const char *o = win_idx(c, G, OV, G->ost);
	ec_line(&c->c, "long arg;");
	ec_store(c, arena_printf(c->g->arena, "y0[p * %lld + %s]", (long long)G->outsz, o),
	      arena_printf(c->g->arena, "%s(x%s, &arg)", k->pt, win_args(c, G)));
	if (c->n->a.win.colmajor) /* storage_order=1: see colmajor() in ir/eval_nn.c */
		ec_line(&c->c, "arg = arg < 0 ? -1 : arg / %lld + %lld * (arg / %lld %% %lld + %lld * (arg %% %lld));",
		        (long long)(G->in[1] * G->in[2]), (long long)G->in[0], (long long)G->in[2],
		        (long long)G->in[1], (long long)G->in[1], (long long)G->in[2]);
	ec_line(&c->c, "y1[p * %lld + %s] = arg < 0 ? -1 : p * %lld + arg;", (long long)G->outsz, o,
	        (long long)G->insz);
	win_close(c, G);
	ec_line(&c->c, "}");
}

int ec_pool(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0), *ti = ec_tout(c, 1);
	int avg = c->n->op == OP_AVGPOOL;
	Geom G;
	if ((avg && ec_want_f32(c, 1)) || ec_geom(c, x, y, &G))
		return 1;
	if (x->dtype != y->dtype || !ec_ctype(x->dtype) || x->dtype == DT_BOOL)
		return ec_fail(c, "input %s and output %s", ir_dtype_name(x->dtype), ir_dtype_name(y->dtype));
	if (x->dim[0] != y->dim[0] || x->dim[1] != y->dim[1])
		return ec_fail(c, "batch or channel count differs between input and output");
	if (ti && (ti->dtype != DT_I64 || ir_numel(ti) != ir_numel(y)))
		return ec_fail(c, "Indices output must be i64 of the output's shape");
	char pt[48];
	snprintf(pt, sizeof pt, "n%d_pt", c->id);
	PoolArg k = {pt, ec_ctype(x->dtype), avg};
	int64_t planes = x->dim[0] * x->dim[1];
	const char *xs = ec_x(c, 0);
	if (ti || has_edge(&G))
		pool_pt(c, &G, &k, ti != NULL);
	ec_begin(c, 0);
	if (ti) {
		pool_indices(c, &G, &k, planes);
		ec_end(c);
		return 0;
	}
	ec_line(&c->c, "for (long p = 0; p < %lld; p++) {", (long long)planes);
	ec_line(&c->c, "const %s *const x = %s + p * %lld;", k.ty, xs, (long long)G.insz);
	ec_line(&c->c, "%s *const y = y0 + p * %lld;", k.ty, (long long)G.outsz);
	rows(c, &G, k.ty, "x", "y", pool_fast, pool_edge, &k);
	ec_line(&c->c, "}");
	ec_end(c);
	return 0;
}

/* GlobalAveragePool, GlobalMaxPool: eight planes at a time so their
 * sums form independent dependency chains (each still in eval's order). */
int ec_gpool(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0);
	if (ec_want_f32(c, 1))
		return 1;
	if (x->rank < 2 || ir_numel(y) != x->dim[0] * x->dim[1])
		return ec_fail(c, "input must be [N, C, ...] and output [N, C, 1, ...]");
	int mx = c->n->op == OP_GMAXPOOL;
	int64_t P = x->dim[0] * x->dim[1], sz = ec_prod(x, 2, x->rank), p8 = P / 8 * 8;
	const char *xs = ec_x(c, 0);
	char den[32], e[64];
	emit_c_fmt_f32(den, (float)sz);
	ec_begin(c, 0);
	for (int blk = 0; blk < 2; blk++) {
		int64_t from = blk ? p8 : 0, to = blk ? P : p8, w = blk ? 1 : 8;
		if (from >= to)
			continue;
		ec_line(&c->c, "for (long p = %lld; p < %lld; p += %lld) {", (long long)from, (long long)to, (long long)w);
		ec_line(&c->c, "float a[%lld];", (long long)w);
		ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)w);
		ec_line(&c->c, "\ta[j] = %s;", mx ? "-INFINITY" : "0.0f");
		ec_line(&c->c, "for (long i = 0; i < %lld; i++) {", (long long)sz);
		ec_line(&c->c, "for (long j = 0; j < %lld; j++) {", (long long)w);
		ec_line(&c->c, "const float v = %s[(p + j) * %lld + i];", xs, (long long)sz);
		ec_line(&c->c, mx ? "a[j] = v > a[j] ? v : a[j];" : "a[j] += v;");
		ec_line(&c->c, "}");
		ec_line(&c->c, "}");
		ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)w);
		c->c.depth++;
		snprintf(e, sizeof e, mx ? "a[j]" : "a[j] / %s", den);
		ec_store(c, "y0[p + j]", e);
		c->c.depth--;
		ec_line(&c->c, "}");
	}
	ec_end(c);
	return 0;
}

/* ---- BatchNormalization ---- */

int ec_batchnorm(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0);
	if (ec_want_f32(c, 5))
		return 1;
	if (x->rank < 2 || ir_numel(x) != ir_numel(y))
		return ec_fail(c, "input must be [N, C, ...] and match the output");
	int64_t N = x->dim[0], C = x->dim[1], sz = ec_prod(x, 2, x->rank);
	const char *p[5];
	for (int j = 0; j < 5; j++) {
		if (!ec_tin(c, j) || (j && ir_numel(ec_tin(c, j)) != C))
			return ec_fail(c, "input %d must have %lld elements", j, (long long)C);
		p[j] = ec_x(c, j);
	}
	char eps[32];
	emit_c_fmt_f32(eps, c->n->a.bn.eps);
	ec_begin(c, 0);
	ec_line(&c->c, "for (long n = 0; n < %lld; n++) {", (long long)N);
	ec_line(&c->c, "for (long ch = 0; ch < %lld; ch++) {", (long long)C);
	ec_line(&c->c, "const float sd = sqrtf(%s[ch] + %s);", p[4], eps);
	ec_line(&c->c, "const float mu = %s[ch], sc = %s[ch], bi = %s[ch];", p[3], p[1], p[2]);
	ec_line(&c->c, "const long o = (n * %lld + ch) * %lld;", (long long)C, (long long)sz);
	ec_line(&c->c, "for (long i = 0; i < %lld; i++)", (long long)sz);
	c->c.depth++;
	ec_store(c, "y0[o + i]", arena_printf(c->g->arena, "(%s[o + i] - mu) / sd * sc + bi", p[0]));
	c->c.depth--;
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_end(c);
	return 0;
}

/* ---- Softmax, LogSoftmax ---- */

int ec_softmax(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0);
	if (ec_want_f32(c, 1))
		return 1;
	int r = x->rank, legacy = c->n->a.axis.legacy;
	int axis = r == 0 ? 0 : ec_axis(c->n->a.axis.axis, r);
	if (axis < 0 || ir_numel(x) != ir_numel(y))
		return ec_fail(c, "axis %d out of range for rank %d", c->n->a.axis.axis, r);
	int64_t outer = ec_prod(x, 0, axis);
	int64_t len = legacy ? ec_prod(x, axis, r) : r ? x->dim[axis] : 1;
	int64_t inner = legacy || !r ? 1 : ec_prod(x, axis + 1, r);
	int islog = c->n->op == OP_LOGSOFTMAX;
	const char *xs = ec_x(c, 0);
	ec_begin(c, 0);
	ec_line(&c->c, "for (long o = 0; o < %lld; o++) {", (long long)outer);
	ec_line(&c->c, "for (long i = 0; i < %lld; i++) {", (long long)inner);
	ec_line(&c->c, "const float *const x = %s + o * %lld + i;", xs, (long long)(len * inner));
	ec_line(&c->c, "float *const y = y0 + o * %lld + i;", (long long)(len * inner));
	ec_line(&c->c, "float mx = -INFINITY, sum = 0.0f;");
	ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)len);
	ec_line(&c->c, "\tmx = x[j * %lld] > mx ? x[j * %lld] : mx;", (long long)inner, (long long)inner);
	if (islog) {
		ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)len);
		ec_line(&c->c, "\tsum += expf(x[j * %lld] - mx);", (long long)inner);
		ec_line(&c->c, "{");
		ec_line(&c->c, "const float ls = logf(sum);");
		ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)len);
		ec_line(&c->c, "\ty[j * %lld] = x[j * %lld] - mx - ls;", (long long)inner, (long long)inner);
		ec_line(&c->c, "}");
	} else {
		ec_line(&c->c, "for (long j = 0; j < %lld; j++) {", (long long)len);
		ec_line(&c->c, "y[j * %lld] = expf(x[j * %lld] - mx);", (long long)inner, (long long)inner);
		ec_line(&c->c, "sum += y[j * %lld];", (long long)inner);
		ec_line(&c->c, "}");
		ec_line(&c->c, "for (long j = 0; j < %lld; j++)", (long long)len);
		ec_line(&c->c, "\ty[j * %lld] /= sum;", (long long)inner);
	}
	ec_line(&c->c, "}");
	ec_line(&c->c, "}");
	ec_end(c);
	return 0;
}

/* ---- reductions ---- */

int ec_reduce_mask(Ctx *c, const Tensor *x, char *mask)
{
	const Tensor *ta = ec_tin(c, 1);
	int64_t na = ta ? ir_numel(ta) : 0;
	memset(mask, na == 0 && !c->n->a.reduce.noop_empty, IR_MAXRANK);
	if (ta && ta->kind != TK_CONST)
		return ec_fail(c, "axes must be a constant");
	if (ta && !ec_isint(ta->dtype))
		return ec_fail(c, "axes must be an integer tensor");
	for (int64_t i = 0; i < na; i++) {
		int64_t v = ir_get_i64(ta, i);
		int a = v < -x->rank || v >= x->rank ? -1 : ec_axis((int)v, x->rank);
		if (a < 0)
			return ec_fail(c, "axis %lld out of range for rank %d", (long long)v, x->rank);
		mask[a] = 1;
	}
	return 0;
}

/* The fold of acc and v, for float or (wrapping) integer dtypes. */
static void reduce_fold(Op op, DType dt, const char *acc, const char *v, char *buf, size_t len)
{
	const char *ty = ec_ctype(dt);
	if (op == OP_REDUCEMAX || op == OP_REDUCEMIN) {
		const char *cmp = op == OP_REDUCEMAX ? ">" : "<";
		if (dt == DT_F32)
			snprintf(buf, len, "%s %s %s || %s != %s ? %s : %s", v, cmp, acc, v, v, v, acc);
		else
			snprintf(buf, len, "%s %s %s ? %s : %s", v, cmp, acc, v, acc);
	} else if (dt == DT_F32) {
		snprintf(buf, len, "%s %s %s", acc, op == OP_REDUCEPROD ? "*" : "+", v);
	} else {
		snprintf(buf, len, "(%s)((uint64_t)%s %s (uint64_t)%s)", ty, acc,
		         op == OP_REDUCEPROD ? "*" : "+", v);
	}
}

int ec_reduce(Ctx *c)
{
	const Tensor *x = ec_tin(c, 0), *y = ec_tout(c, 0);
	char mask[IR_MAXRANK];
	if (ec_reduce_mask(c, x, mask))
		return 1;
	DType dt = x->dtype;
	if (dt != y->dtype || (dt != DT_F32 && !ec_isint(dt)))
		return ec_fail(c, "input %s and output %s: f32 or integer only", ir_dtype_name(dt),
		               ir_dtype_name(y->dtype));
	Nest n;
	nest_init(&n, x->rank, x->dim, 2);
	int64_t s = 1;
	for (int a = x->rank - 1; a >= 0; a--) {
		n.st[0][a] = mask[a] ? 0 : s;
		s *= mask[a] ? 1 : x->dim[a];
	}
	if (s != ir_numel(y))
		return ec_fail(c, "output has %lld elements, the reduction gives %lld",
		               (long long)ir_numel(y), (long long)s);
	nest_bcast(&n, 1, x);
	nest_simplify(&n);
	Op op = c->n->op;
	const char *ty = ec_ctype(dt), *xs = ec_x(c, 0);
	const char *init = op == OP_REDUCEMAX ? ec_lowest(dt) : op == OP_REDUCEMIN ? ec_highest(dt)
	                 : op == OP_REDUCEPROD ? (dt == DT_F32 ? "1.0f" : "1") : (dt == DT_F32 ? "0.0f" : "0");
	char iy[160], ix[160], acc[200], v[200], f[600];
	ec_begin(c, 0);
	ec_line(&c->c, "for (long i = 0; i < %lld; i++)", (long long)s);
	ec_line(&c->c, "\ty0[i] = %s;", init);
	if (ir_numel(x) > 0) {
		nest_open(c, &n);
		nest_index(&n, 0, iy, sizeof iy);
		nest_index(&n, 1, ix, sizeof ix);
		snprintf(acc, sizeof acc, "y0[%s]", iy);
		snprintf(v, sizeof v, "%s[%s]", xs, ix);
		ec_line(&c->c, "const %s v = %s;", ty, v);
		reduce_fold(op, dt, acc, "v", f, sizeof f);
		ec_line(&c->c, "%s = %s;", acc, f);
		nest_close(c, &n);
	}
	if (op == OP_REDUCEMEAN && ir_numel(x) > 0) {
		int64_t cnt = ir_numel(x) / (s ? s : 1);
		char den[32];
		if (dt == DT_F32)
			emit_c_fmt_f32(den, (float)cnt);
		else
			snprintf(den, sizeof den, "%lld", (long long)cnt);
		ec_line(&c->c, "for (long i = 0; i < %lld; i++)", (long long)s);
		ec_line(&c->c, "\ty0[i] = (%s)(y0[i] / %s);", ty, den);
	}
	ec_end(c);
	return 0;
}

/* ---- dispatch ---- */

int ec_kernel(Ctx *c)
{
	Op op = c->n->op;
	if (ir_is_math_op(op))
		return ec_math(c);
	if (ir_opflags[op] & F_UNARY)
		return ec_unary(c);
	if (ir_opflags[op] & F_ELTWISE)
		return ec_eltwise(c);
	switch (op) {
	case OP_CONV: return ec_conv(c);
	case OP_GEMM: return ec_gemm(c);
	case OP_MATMUL: return ec_matmul(c);
	case OP_MAXPOOL: case OP_AVGPOOL: return ec_pool(c);
	case OP_GAVGPOOL: case OP_GMAXPOOL: return ec_gpool(c);
	case OP_BATCHNORM: return ec_batchnorm(c);
	case OP_SOFTMAX: case OP_LOGSOFTMAX: return ec_softmax(c);
	case OP_REDUCEMEAN: case OP_REDUCEMAX: case OP_REDUCEMIN:
	case OP_REDUCESUM: case OP_REDUCEPROD: return ec_reduce(c);
	case OP_IDENTITY: case OP_DROPOUT: case OP_RESHAPE: case OP_FLATTEN:
	case OP_SQUEEZE: case OP_UNSQUEEZE: return ec_view(c);
	case OP_TRANSPOSE: return ec_transpose(c);
	case OP_CONCAT: return ec_concat(c);
	case OP_PAD: return ec_pad(c);
	case OP_SLICE: return ec_slice(c);
	case OP_GATHER: return ec_gather(c);
	case OP_EXPAND: return ec_expand(c);
	case OP_TILE: return ec_tile(c);
	case OP_SPLIT: case OP_DEPTHTOSPACE: case OP_SPACETODEPTH: case OP_GATHERELEM:
	case OP_GATHERND: case OP_ONEHOT: case OP_TRILU: case OP_CONVTRANSPOSE: case OP_INSTNORM:
	case OP_LAYERNORM: case OP_LRN: case OP_RESIZE: return ec_struct(c);
	case OP_CAST: return ec_cast(c);
	case OP_QUANTIZE: case OP_DEQUANTIZE: case OP_QLINEARCONV: case OP_QLINEARMATMUL:
	case OP_CONVINTEGER: case OP_MATMULINTEGER: return ec_qops(c);
	case OP_SHAPE: case OP_SIZE: case OP_CONSTOFSHAPE: case OP_RANGE: case OP_CONSTANT:
		return ec_fail(c, "%s must be folded to a constant before code generation",
		               ir_opname[op]);
	default:
		return ec_fail(c, "the C backend has no kernel for %s", ir_opname[op]);
	}
}
