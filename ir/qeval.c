/* The integer reference evaluator: the semantic definition of a quantized
 * (--quant) potc model.  A lowered graph (pass_qlower) holds integer
 * tensors with a Quant; a node with a QNode computes by the table of
 * docs/integer-semantics.md ("The integer IR"), with the functions of
 * runtime/fixed/potc_fixed.h that generated code pastes, so every backend
 * can be tested bit for bit against this file.  A node without a QNode
 * moves integers and runs the float evaluator's dtype-generic code.
 *
 * This file holds the shared helpers, the node checks, Conv, Gemm, MatMul,
 * the dispatch and the whole-graph driver; qeval_elt.c the other ops.
 *
 * Besides computing, the evaluator checks what the quantization pass
 * promised: rescales and clamps inside potc_fixed.h's documented ranges,
 * table indices inside the table, and every int32 accumulator (every
 * partial sum) inside int32.  A failure there is a compiler bug, reported
 * as an ir_error rather than computed with undefined behaviour. */
#include <limits.h>
#include <stdlib.h>

#include "qeval_impl.h"

/* ---- helpers ---- */

/* Element i of input t as its integer: a PoT/APoT weight's code decoded
 * (ir_wdecode), any other value as stored. */
static int64_t qe_int(const Tensor *t, const void *data, int64_t i)
{
	int64_t v = ev_geti(t->dtype, data, i);
	return t->q->code != WQ_UNIFORM ? ir_wdecode(t->q, (int32_t)v) : v;
}

int32_t *qe_center(const Ev *e, int j)
{
	const Tensor *t = ev_tin(e, j);
	const Quant *q = t->q;
	if (!q || !qe_intdt(t->dtype)) {
		ev_fail(e, "input %d (\"%s\") is not a quantized integer tensor", j, t->name);
		return NULL;
	}
	if (q->nch > 1 && (q->axis < 0 || q->axis >= t->rank || t->dim[q->axis] != q->nch)) {
		ev_fail(e, "input %d has %d channels on axis %d", j, q->nch, q->axis);
		return NULL;
	}
	int64_t n = ir_numel(t);
	int32_t *v = malloc(n ? (size_t)n * sizeof *v : 1);
	if (!v) {
		ev_fail(e, "out of memory");
		return NULL;
	}
	for (int64_t i = 0; i < n; i++) {
		int64_t x = qe_int(t, e->in[j], i) - q->zp[ir_quant_channel(t, i)];
		if (qe_out32(x)) {
			free(v);
			ev_fail(e, "input %d: q - zp = %lld leaves int32", j, (long long)x);
			return NULL;
		}
		v[i] = (int32_t)x;
	}
	return v;
}

Rescale qe_r(const Ev *e, int64_t c)
{
	const QNode *q = e->n->q;
	return q->r[q->nr == 1 ? 0 : c];
}

int qe_want_r(const Ev *e, int64_t nch)
{
	const QNode *q = e->n->q;
	if (!q->r || (q->nr != 1 && q->nr != nch))
		return ev_fail(e, "has %d rescales for %lld output channels", q->nr, (long long)nch);
	return 0;
}

int32_t qe_rescale(Rescale r, int64_t v, int wide)
{
	if (wide)
		return potc_rescale64(v, r.m, r.n);
	return potc_rescale((int32_t)v, r.m, r.n);
}

void qe_store(const Ev *e, int64_t i, int32_t v)
{
	const Tensor *y = ev_tout(e, 0);
	const QNode *q = e->n->q;
	ev_seti(y->dtype, e->out[0], i, potc_out(v, y->q->zp[0], q->lo, q->hi));
}

/* Why an error and not a wrap: the int32 accumulator is part of the
 * model's semantics only because the pass proved it cannot overflow
 * (acc_worst < acc_limit); a backend accumulating in int32 would hit
 * undefined behaviour here.  So this catches a wrong proof. */
int qe_overflow(const Ev *e, int64_t acc, int64_t at)
{
	return ev_fail(e, "accumulator overflow: %lld leaves int32 at output element %lld "
	               "without acc64 (the pass's int32 bound is wrong)", (long long)acc, (long long)at);
}

/* Narrow accumulators (QNode.acc_bits P): the running sum of one tile of
 * ktile reduction terms lives in a P-bit register, which pass_accbound
 * proved it cannot leave (ACC_UNCHECKED: nothing was proven, nothing is
 * checked).  Values never change; leaving P bits is a compiler bug. */
typedef struct {
	int on, over;
	int64_t lim, ktile, cur, sum, bad;
} QTile;

static void qe_tile_init(const Ev *e, QTile *t)
{
	const QNode *q = e->n->q;
	t->on = q->acc_bits > 0 && q->acc_bits < 32 && q->acc_method != ACC_UNCHECKED;
	t->lim = t->on ? ((int64_t)1 << (q->acc_bits - 1)) : 0;
	t->ktile = q->ktile > 0 ? q->ktile : INT64_MAX;
	t->cur = -1;
	t->sum = 0;
	t->over = 0;
}

/* Term k (its reduction index) of value v joins its tile's partial sum. */
static void qe_tile_add(QTile *t, int64_t k, int64_t v)
{
	if (!t->on)
		return;
	if (k / t->ktile != t->cur) {
		t->cur = k / t->ktile;
		t->sum = 0;
	}
	t->sum += v;
	if (t->sum < -t->lim || t->sum > t->lim - 1) {
		t->over = 1;
		t->bad = t->sum;
	}
}

static int qe_tile_fail(const Ev *e, const QTile *t, int64_t at)
{
	return ev_fail(e, "narrow accumulator: a partial sum %lld leaves %d bits at output element %lld "
	               "(pass_accbound's bound is wrong)", (long long)t->bad, e->n->q->acc_bits, (long long)at);
}

int qe_geom(const Ev *e, const Tensor *x, const Tensor *y, QGeom *G)
{
	char why[128];
	if (ir_window_geom(&e->n->a.win, x, y, &G->w, why, sizeof why))
		return ev_fail(e, "%s", why);
	G->insz = G->w.in[0] * G->w.in[1] * G->w.in[2];
	G->ksz = (int64_t)G->w.k[0] * G->w.k[1] * G->w.k[2];
	return 0;
}

/* ---- node checks: what potc_fixed.h needs of the QNode ---- */

/* r inside potc_rescale's ranges (wide: potc_rescale64's). */
static int check_rescale(const Ev *e, const char *what, int k, Rescale r, int wide)
{
	int ok = r.m == 0 ? r.n >= (wide ? -62 : -31) && r.n <= 62
	                  : r.m >= (1 << 30) && r.n >= -31 && r.n <= 31;
	if (!ok)
		return ev_fail(e, "%s[%d] = {m %ld, n %d} is outside potc_rescale's range",
		               what, k, (long)r.m, r.n);
	return 0;
}

static void dtype_range(DType t, int64_t *lo, int64_t *hi)
{
	switch (t) {
	case DT_I8: *lo = INT8_MIN, *hi = INT8_MAX; break;
	case DT_U8: *lo = 0, *hi = UINT8_MAX; break;
	case DT_I16: *lo = INT16_MIN, *hi = INT16_MAX; break;
	case DT_U16: *lo = 0, *hi = UINT16_MAX; break;
	default: *lo = INT32_MIN, *hi = INT32_MAX; break;
	}
}

static int check_out(const Ev *e)
{
	const Tensor *y = ev_tout(e, 0);
	const QNode *q = e->n->q;
	int64_t lo, hi;
	if (!y)
		return ev_fail(e, "output 0 is absent");
	if (!y->q || !qe_intdt(y->dtype) || y->q->nch != 1)
		return ev_fail(e, "output \"%s\" is not a per-tensor quantized integer tensor", y->name);
	dtype_range(y->dtype, &lo, &hi);
	if (q->lo > q->hi || q->lo < lo || q->hi > hi)
		return ev_fail(e, "clamp [%ld, %ld] is not inside %s", (long)q->lo, (long)q->hi,
		               ir_dtype_name(y->dtype));
	return 0;
}

static int check_qnode(const Ev *e)
{
	const QNode *q = e->n->q;
	Op op = e->n->op;
	int wide = op == OP_MUL || (q->acc64 && (op == OP_CONV || op == OP_GEMM || op == OP_MATMUL));
	for (int k = 0; q->r && k < q->nr; k++)
		if (check_rescale(e, "r", k, q->r[k], wide))
			return 1;
	for (int k = 0; q->rin && k < q->nrin; k++)
		if (check_rescale(e, "rin", k, q->rin[k], 0))
			return 1;
	if (q->ext < 0 || q->ext > 62)
		return ev_fail(e, "ext %d is outside [0, 62]", q->ext);
	if (q->lut && q->nlut < 1)
		return ev_fail(e, "has a table of %d entries", q->nlut);
	/* A fused Relu or Clip is in lo and hi; anything else must be a node. */
	ActKind a = e->n->act.kind;
	if (a != ACT_NONE && a != ACT_RELU && a != ACT_CLIP)
		return ev_fail(e, "fused activation %d on a quantized node", (int)a);
	return 0;
}

static int static_shape(const Tensor *t)
{
	for (int a = 0; a < t->rank; a++)
		if (t->dim[a] < 0)
			return 0;
	return t->rank >= 0 && t->rank <= IR_MAXRANK;
}

static int check_inputs(const Ev *e)
{
	Op op = e->n->op;
	int need = op == OP_CONV || op == OP_GEMM || op == OP_MATMUL || op == OP_ADD ||
	           op == OP_SUB || op == OP_MUL ? 2 : 1;
	if (e->n->nin < need)
		return ev_fail(e, "needs %d inputs, has %d", need, e->n->nin);
	for (int j = 0; j < e->n->nin; j++) {
		const Tensor *t = ev_tin(e, j);
		if (j < need && !t)
			return ev_fail(e, "input %d is absent", j);
		if (t && !static_shape(t))
			return ev_fail(e, "input %d has no static shape", j);
	}
	return static_shape(ev_tout(e, 0)) ? 0 : ev_fail(e, "output 0 has no static shape");
}

/* ---- Conv ---- */

/* acc + the dot product of one output point (padded taps contribute 0):
 * x and w at the group's first input channel and the output channel's
 * kernel.  *over is set when a partial sum leaves int32. */
static int64_t conv_point(const QGeom *G, const int32_t *x, const int32_t *w, int64_t cg,
                          const int64_t *o, int64_t acc, int *over, QTile *T)
{
	const WinGeom *W = &G->w;
	const int32_t *w0 = w;
	for (int64_t c = 0; c < cg; c++, x += G->insz, w += G->ksz)
		for (int a = 0; a < W->k[0]; a++) {
			int64_t i0 = qe_tap(G, 0, o[0], a);
			for (int b = 0; qe_inside(G, 0, i0) && b < W->k[1]; b++) {
				int64_t i1 = qe_tap(G, 1, o[1], b);
				for (int f = 0; qe_inside(G, 1, i1) && f < W->k[2]; f++) {
					int64_t i2 = qe_tap(G, 2, o[2], f);
					if (!qe_inside(G, 2, i2))
						continue;
					int64_t p = (int64_t)x[(i0 * W->in[1] + i1) * W->in[2] + i2] *
					            w[(a * W->k[1] + b) * W->k[2] + f];
					acc += p;
					*over |= qe_out32(acc);
					qe_tile_add(T, w - w0 + (a * W->k[1] + b) * W->k[2] + f, p);
				}
			}
		}
	return acc;
}

static int conv_check(const Ev *e, const Tensor *x, const Tensor *w, const Tensor *y, const QGeom *G)
{
	int grp = e->n->a.win.group;
	int64_t C = x->dim[1], M = y->dim[1];
	if (grp < 1 || C % grp || M % grp || x->dim[0] != y->dim[0])
		return ev_fail(e, "group %d does not divide %lld input and %lld output channels",
		               grp, (long long)C, (long long)M);
	if (w->rank != x->rank || w->dim[0] != M || w->dim[1] != C / grp ||
	    ev_prod(w, 2, w->rank) != G->ksz)
		return ev_fail(e, "weight shape does not match input, output and kernel");
	const Tensor *b = ev_tin(e, 2);
	if (b && (ir_numel(b) != M || !qe_intdt(b->dtype)))
		return ev_fail(e, "bias must be an integer [%lld]", (long long)M);
	return qe_want_r(e, M);
}

/* acc[m] = bias[m] + sum xv * (w - zw[m]); y = out(R_m(acc)). */
static int conv_run(const Ev *e, const QGeom *G, const int32_t *xv, const int32_t *wv)
{
	const Tensor *x = ev_tin(e, 0), *y = ev_tout(e, 0), *b = ev_tin(e, 2);
	int64_t N = x->dim[0], C = x->dim[1], M = y->dim[1];
	int64_t cg = C / e->n->a.win.group, mg = M / e->n->a.win.group;
	int64_t o[3], i = 0;
	int wide = e->n->q->acc64;
	for (int64_t n = 0; n < N; n++)
		for (int64_t m = 0; m < M; m++) {
			const int32_t *xg = xv + (n * C + m / mg * cg) * G->insz;
			const int32_t *wm = wv + m * cg * G->ksz;
			int64_t bias = b ? ev_geti(b->dtype, e->in[2], m) : 0;
			for (o[0] = 0; o[0] < G->w.out[0]; o[0]++)
				for (o[1] = 0; o[1] < G->w.out[1]; o[1]++)
					for (o[2] = 0; o[2] < G->w.out[2]; o[2]++, i++) {
						int over = 0;
						QTile T;
						qe_tile_init(e, &T);
						int64_t acc = conv_point(G, xg, wm, cg, o, bias, &over, &T);
						if (over && !wide)
							return qe_overflow(e, acc, i);
						if (T.over)
							return qe_tile_fail(e, &T, i);
						qe_store(e, i, qe_rescale(qe_r(e, m), acc, wide));
					}
		}
	return 0;
}

int qe_conv(const Ev *e)
{
	const Tensor *x = ev_tin(e, 0), *w = ev_tin(e, 1), *y = ev_tout(e, 0);
	QGeom G;
	if (qe_geom(e, x, y, &G) || conv_check(e, x, w, y, &G))
		return 1;
	int32_t *xv = qe_center(e, 0), *wv = xv ? qe_center(e, 1) : NULL;
	int bad = !wv || conv_run(e, &G, xv, wv);
	free(xv);
	free(wv);
	return bad;
}

/* ---- Gemm, MatMul ---- */

/* y[y0 + i*N + j] = out(R_j(c[j] + sum_k a[i,k] * b[k,j])), b stored
 * [N, K] when tb; c is Gemm's bias (NULL: 0). */
static int mm_block(const Ev *e, const int32_t *a, const int32_t *b, int tb, const Tensor *c,
                    int64_t M, int64_t K, int64_t N, int64_t y0)
{
	int wide = e->n->q->acc64;
	for (int64_t i = 0; i < M; i++)
		for (int64_t j = 0; j < N; j++) {
			int64_t acc = c ? ev_geti(c->dtype, e->in[2], j) : 0;
			int over = 0;
			QTile T;
			qe_tile_init(e, &T);
			for (int64_t k = 0; k < K; k++) {
				int64_t p = (int64_t)a[i * K + k] * b[tb ? j * K + k : k * N + j];
				acc += p;
				over |= qe_out32(acc);
				qe_tile_add(&T, k, p);
			}
			if (over && !wide)
				return qe_overflow(e, acc, y0 + i * N + j);
			if (T.over)
				return qe_tile_fail(e, &T, y0 + i * N + j);
			qe_store(e, y0 + i * N + j, qe_rescale(qe_r(e, j), acc, wide));
		}
	return 0;
}

/* Lowered Gemm: ta = 0, alpha and beta folded (ignored), C [N] or absent. */
int qe_gemm(const Ev *e)
{
	const Tensor *a = ev_tin(e, 0), *b = ev_tin(e, 1), *c = ev_tin(e, 2), *y = ev_tout(e, 0);
	int tb = e->n->a.gemm.tb;
	if (e->n->a.gemm.ta || a->rank != 2 || b->rank != 2 || y->rank != 2)
		return ev_fail(e, "a quantized Gemm needs ta = 0 and 2-D A, B, Y");
	int64_t M = a->dim[0], K = a->dim[1], N = b->dim[tb ? 0 : 1];
	if (b->dim[tb ? 1 : 0] != K || y->dim[0] != M || y->dim[1] != N)
		return ev_fail(e, "A, B and Y shapes do not agree");
	if (c && (ir_numel(c) != N || !qe_intdt(c->dtype)))
		return ev_fail(e, "C must be an integer [%lld]", (long long)N);
	if (qe_want_r(e, N))
		return 1;
	int32_t *av = qe_center(e, 0), *bv = av ? qe_center(e, 1) : NULL;
	int bad = !bv || mm_block(e, av, bv, tb, c, M, K, N, 0);
	free(av);
	free(bv);
	return bad;
}

/* t's leading dims [0, n) as a tensor of its own (MatMul's batch dims). */
static Tensor batch_of(const Tensor *t, int n)
{
	Tensor b = *t;
	b.rank = n < 0 ? 0 : n;
	return b;
}

/* numpy matmul as the float evaluator: 1-D operands promoted, batch dims
 * broadcast; output channel (rescale index) = column. */
static int matmul_run(const Ev *e, const int32_t *av, const int32_t *bv)
{
	const Tensor *a = ev_tin(e, 0), *b = ev_tin(e, 1), *y = ev_tout(e, 0);
	int64_t M = a->rank > 1 ? a->dim[a->rank - 2] : 1, K = a->dim[a->rank - 1];
	int64_t N = b->rank > 1 ? b->dim[b->rank - 1] : 1, K2 = b->dim[b->rank > 1 ? b->rank - 2 : 0];
	int nb = y->rank - (a->rank > 1) - (b->rank > 1);
	Tensor ab = batch_of(a, a->rank - 2), bb = batch_of(b, b->rank - 2), yb = batch_of(y, nb);
	const Tensor *ops[2] = {&ab, &bb};
	EvIter it;
	if (K != K2 || nb < 0 || ir_numel(y) != ir_numel(&yb) * M * N ||
	    ev_iter_bcast(&it, &yb, 2, ops))
		return ev_fail(e, "input shapes do not agree with each other or the output");
	if (qe_want_r(e, N))
		return 1;
	int64_t nbatch = ir_numel(&yb);
	for (int64_t i = 0; i < nbatch; i++, ev_iter_next(&it))
		if (mm_block(e, av + it.off[0] * M * K, bv + it.off[1] * K * N, 0, NULL, M, K, N, i * M * N))
			return 1;
	return 0;
}

int qe_matmul(const Ev *e)
{
	if (ev_tin(e, 0)->rank < 1 || ev_tin(e, 1)->rank < 1)
		return ev_fail(e, "inputs must have rank >= 1");
	int32_t *av = qe_center(e, 0), *bv = av ? qe_center(e, 1) : NULL;
	int bad = !bv || matmul_run(e, av, bv);
	free(av);
	free(bv);
	return bad;
}

/* ---- dispatch ---- */

static int dispatch(const Ev *e)
{
	Op op = e->n->op;
	if (e->n->q->lut && op != OP_SOFTMAX)
		return ir_opflags[op] & F_UNARY ? qe_unary(e)
		                                : ev_fail(e, "a table on a quantized %s node", ir_opname[op]);
	switch (op) {
	case OP_CONV: return qe_conv(e);
	case OP_GEMM: return qe_gemm(e);
	case OP_MATMUL: return qe_matmul(e);
	case OP_ADD: case OP_SUB: case OP_MUL: return qe_binary(e);
	case OP_AVGPOOL: return qe_avgpool(e);
	case OP_GAVGPOOL: case OP_GMAXPOOL: return qe_globalpool(e);
	case OP_REDUCEMEAN: return qe_reducemean(e);
	case OP_CONCAT: return qe_concat(e);
	case OP_RELU: case OP_CLIP: return qe_unary(e);
	case OP_SOFTMAX: return qe_softmax(e);
	default: return ev_fail(e, "no integer semantics for a quantized %s node", ir_opname[op]);
	}
}

int ir_qeval_node(const Graph *g, int n, const void *const *in, void *const *out, Diag *d)
{
	if (!g->node[n].q)
		return ir_eval_node(g, n, in, out, d);
	Ev e = {g, n, &g->node[n], in, out, d};
	if (check_out(&e) || check_inputs(&e) || check_qnode(&e))
		return 1;
	return dispatch(&e);
}

/* The whole graph: ir_eval's driver with the integer node evaluator. */
int ir_qeval(const Graph *g, const void *const *inputs, void *const *outputs,
             IrObserve observe, void *ctx, Diag *d)
{
	return ev_run_graph(g, ir_qeval_node, inputs, outputs, observe, ctx, d);
}
