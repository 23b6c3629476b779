/* Old-opset semantics the IR has no form for, rewritten with IR ops while
 * the nodes are built (attrs.c reads the attributes and calls these):
 *   - legacy broadcasting (opset < 7: Add ... Greater with broadcast = 1 and
 *     axis; PRelu's per-channel slope): B's dims sit at A's dims from axis
 *     on, so B gets trailing 1s and numpy broadcasting does the rest;
 *   - Tile-1's (tiles, axis) inputs become a repeats vector;
 *   - BatchNormalization spatial = 0 with statistics that are per channel
 *     anyway gets rank-1 statistics.
 * These need ranks before shape inference (which needs folding, a pass),
 * so ranks are propagated here node by node, as far as they follow from
 * input ranks and constant inputs alone; -1 where they do not. */
#include <stdio.h>
#include <string.h>

#include "onnx_impl.h"

/* L->rank holds rank + 1 so that zeroed memory means unknown. */
int onnx_rank(const Loader *L, int t)
{
	if (t < 0)
		return -1;
	const Tensor *x = &L->g->tensor[t];
	if (x->kind != TK_VALUE)
		return x->rank;
	return t < L->nrank ? L->rank[t] - 1 : -1;
}

static void set_rank(Loader *L, int t, int r)
{
	if (t >= L->nrank) {
		int n = L->g->ntensor > 2 * L->nrank ? L->g->ntensor + 16 : 2 * L->nrank;
		int *v = arena_alloc(L->g->arena, sizeof(int) * (size_t)n);
		if (L->nrank)
			memcpy(v, L->rank, sizeof(int) * (size_t)L->nrank);
		L->rank = v;
		L->nrank = n;
	}
	L->rank[t] = r + 1;
}

/* Length of a constant 1-D tensor (a shape or axes input), -1 otherwise. */
static int const_len(const Loader *L, int t)
{
	if (t < 0 || L->g->tensor[t].kind != TK_CONST || L->g->tensor[t].rank != 1)
		return -1;
	return (int)L->g->tensor[t].dim[0];
}

static int matmul_rank(int a, int b)
{
	if (a < 0 || b < 0)
		return -1;
	if (a == 1 || b == 1)
		return a + b - 2;  /* the 1-D operand's dim is contracted away */
	return a > b ? a : b;
}

static int max_rank(const Loader *L, const Node *n)
{
	int r = 0;
	for (int j = 0; j < n->nin; j++) {
		int rj = onnx_rank(L, n->in[j]);
		if (rj < 0 && n->in[j] >= 0)
			return -1;
		r = rj > r ? rj : r;
	}
	return r;
}

/* Reduce and Squeeze drop their axes; absent axes mean all (or, for
 * Squeeze, the size-1 dims, which need the shape). */
static int reduced_rank(const Loader *L, const Node *n, int r)
{
	int k = n->nin > 1 ? const_len(L, n->in[1]) : -1;
	if (r < 0)
		return -1;
	if (n->op != OP_SQUEEZE && n->a.reduce.keepdims)
		return r;
	if (k > 0)
		return r - k;
	if (n->op == OP_SQUEEZE || (n->nin > 1 && n->in[1] >= 0 && k < 0))
		return -1;
	return n->a.reduce.noop_empty ? r : 0;
}

static int out_rank(const Loader *L, const Node *n)
{
	int r0 = onnx_rank(L, n->in[0]);
	int r1 = n->nin > 1 ? onnx_rank(L, n->in[1]) : -1;
	int k;
	switch (n->op) {
	case OP_GEMM: case OP_FLATTEN: return 2;
	case OP_SHAPE: case OP_RANGE: return 1;
	case OP_SIZE: return 0;
	case OP_MATMUL: return matmul_rank(r0, r1);
	case OP_GATHER: return r0 < 0 || r1 < 0 ? -1 : r0 + r1 - 1;
	case OP_RESHAPE: return const_len(L, n->in[1]);
	case OP_CONSTOFSHAPE: return const_len(L, n->in[0]);
	case OP_EXPAND:
		k = const_len(L, n->in[1]);
		return k < 0 || r0 < 0 ? -1 : k > r0 ? k : r0;
	case OP_UNSQUEEZE:
		k = const_len(L, n->in[1]);
		return k < 0 || r0 < 0 ? -1 : r0 + k;
	case OP_SQUEEZE: case OP_REDUCEMEAN: case OP_REDUCEMAX: case OP_REDUCEMIN:
	case OP_REDUCESUM: case OP_REDUCEPROD: case OP_REDUCEL1: case OP_REDUCEL2:
	case OP_REDUCESUMSQ: case OP_REDUCELOGSUM: case OP_REDUCELOGSUMEXP:
		return reduced_rank(L, n, r0);
	case OP_ARGMAX: case OP_ARGMIN:
		return r0 < 0 ? -1 : n->a.arg.keepdims ? r0 : r0 - 1;
	default:
		/* the rest keep their first input's rank */
		return ir_opflags[n->op] & F_ELTWISE ? max_rank(L, n) : r0;
	}
}

void onnx_track_rank(Loader *L, int node)
{
	const Node *n = &L->g->node[node];
	int r = out_rank(L, n);
	for (int j = 0; r >= 0 && j < (n->op == OP_SPLIT ? n->nout : 1); j++)  /* Split: every part */
		if (n->out[j] >= 0)
			set_rank(L, n->out[j], r);
}

/* ---- legacy broadcasting ---- */

/* t (rank r) with k trailing 1s: Unsqueeze at axes r .. r+k-1. */
static int trailing_ones(Loader *L, int ni, int t, int r, int k)
{
	int64_t axes[IR_MAXRANK];
	for (int i = 0; i < k; i++)
		axes[i] = r + i;
	const char *name = arena_printf(L->g->arena, "%s.broadcast.axes", L->nname[ni]);
	int in[2] = {t, onnx_const_i64(L, name, axes, k)};
	return onnx_add_node(L, ni, OP_UNSQUEEZE, "broadcast", in, 2);
}

static const char *tname(const Loader *L, int t)
{
	return L->g->tensor[t].name;
}

/* "(rank 4)", or the dims of an input or constant: "[1,2,3,4]". */
static const char *rank_str(const Loader *L, int t)
{
	const Tensor *x = &L->g->tensor[t];
	if (x->kind == TK_VALUE)
		return arena_printf(L->g->arena, "(rank %d)", onnx_rank(L, t));
	char buf[IR_MAXRANK * 21 + 3];
	size_t k = 0;
	buf[k++] = '[';
	for (int i = 0; i < x->rank; i++)
		k += (size_t)snprintf(buf + k, sizeof buf - k, i ? ",%lld" : "%lld", (long long)x->dim[i]);
	snprintf(buf + k, sizeof buf - k, "]");
	return arena_strdup(L->g->arena, buf);
}

/* A node output with no producer: the node failed or is unsupported, which
 * is reported already; its unknown rank needs no second message. */
static int failed(const Loader *L, int t)
{
	return L->g->tensor[t].kind == TK_VALUE && L->g->tensor[t].producer < 0;
}

/* Ranks, or for inputs and constants shapes, that differ. */
static int shapes_differ(const Loader *L, int a, int b)
{
	const Tensor *A = &L->g->tensor[a], *B = &L->g->tensor[b];
	int ra = onnx_rank(L, a), rb = onnx_rank(L, b);
	if (ra < 0 || rb < 0)
		return 0;
	if (ra != rb)
		return 1;
	return A->kind != TK_VALUE && B->kind != TK_VALUE
	       && memcmp(A->dim, B->dim, sizeof(int64_t) * (size_t)ra) != 0;
}

/* Before numpy broadcasting inputs had one shape.  What potc can see of a
 * mismatch is an error; numpy broadcasting agrees with the rest. */
int onnx_legacy_same(Loader *L, int ni, int a, int b)
{
	if (!shapes_differ(L, a, b))
		return b;
	Op op = (Op)L->op[ni];
	int variadic = op == OP_MAX || op == OP_MIN || op == OP_SUM || op == OP_MEAN;
	onnx_err(L, ni, "inputs '%s' %s and '%s' %s differ in shape; at opset %d %s", tname(L, a),
	         rank_str(L, a), tname(L, b), rank_str(L, b), L->opset,
	         variadic ? "they must not (broadcasting came with opset 8)"
	                  : "that needs attribute 'broadcast' = 1");
	return -1;
}

/* Opset < 7 broadcasting of b against a: b's dims match a's from axis on
 * (axis < 0: suffix matching, which is numpy's rule when rank b <= rank a).
 * Returns the tensor to use for b, -1 after reporting. */
int onnx_legacy_broadcast(Loader *L, int ni, int a, int b, int64_t axis)
{
	int ra = onnx_rank(L, a), rb = onnx_rank(L, b);
	if (rb == 0 || (axis < 0 && (ra < 0 || rb < 0 || rb <= ra)))
		return b;
	if (ra < 0 || rb < 0) {
		if (failed(L, a) || failed(L, b))
			return -1;
		onnx_err(L, ni, "attribute 'axis' needs the rank of input '%s', which potc cannot tell "
		         "before shape inference", tname(L, ra < 0 ? a : b));
		return -1;
	}
	if (rb > ra || axis > ra - rb) {
		char at[32] = "";
		if (axis >= 0)
			snprintf(at, sizeof at, " at axis %lld", (long long)axis);
		onnx_err(L, ni, "input '%s' (rank %d) does not fit in input '%s' (rank %d)%s",
		         tname(L, b), rb, tname(L, a), ra, at);
		return -1;
	}
	return axis == ra - rb ? b : trailing_ones(L, ni, b, rb, ra - (int)axis - rb);
}

/* Before opset 7 a 1-D slope is per channel (axis 1) unless it has one
 * value; numpy would align it with the last dim instead. */
int onnx_legacy_slope(Loader *L, int ni, int x, int slope)
{
	const Tensor *s = &L->g->tensor[slope];
	if (onnx_rank(L, slope) != 1 || (s->kind != TK_VALUE && s->dim[0] == 1))
		return slope;
	int rx = onnx_rank(L, x);
	if (rx < 0) {
		if (failed(L, x))
			return -1;
		onnx_err(L, ni, "a 1-D slope is per channel at opset %d, but potc cannot tell the rank "
		         "of input '%s' before shape inference", L->opset, tname(L, x));
		return -1;
	}
	return rx <= 2 ? slope : trailing_ones(L, ni, slope, 1, rx - 2);
}

/* ---- Tile-1 ---- */

/* One integral value of a constant tensor into *v; 1 if it is not that. */
static int const_scalar(const Loader *L, int t, int64_t *v)
{
	const Tensor *x = &L->g->tensor[t];
	if (x->kind != TK_CONST || ir_numel(x) != 1)
		return 1;
	double d = ir_get(x, 0);
	if (!(d > -1e18 && d < 1e18) || d != (double)(int64_t)d)
		return 1;
	*v = (int64_t)d;
	return 0;
}

/* Tile-1 repeats x tiles times along axis: repeats is 1 but at axis. */
int onnx_legacy_tile(Loader *L, int ni, int x, int tiles, int axis)
{
	int64_t n, ax, rep[IR_MAXRANK];
	int r = onnx_rank(L, x);
	if (const_scalar(L, tiles, &n) || const_scalar(L, axis, &ax) || n < 0) {
		onnx_err(L, ni, "inputs 'tiles' and 'axis' must be constants holding one integer "
		         "(tiles >= 0)");
		return -1;
	}
	if (r < 0) {
		if (failed(L, x))
			return -1;
		onnx_err(L, ni, "potc cannot tell the rank of input '%s' before shape inference",
		         tname(L, x));
		return -1;
	}
	if (ax < -r || ax >= r) {
		onnx_err(L, ni, "input 'axis' = %lld is out of range for input '%s' of rank %d",
		         (long long)ax, tname(L, x), r);
		return -1;
	}
	for (int i = 0; i < r; i++)
		rep[i] = i == (ax < 0 ? ax + r : ax) ? n : 1;
	const char *name = arena_printf(L->g->arena, "%s.repeats", L->nname[ni]);
	return onnx_const_i64(L, name, rep, r);
}

/* ---- BatchNormalization spatial = 0 ---- */

/* Per-activation statistics [C, D1, ...] over x [N, C, D1, ...]: potc's
 * BatchNormalization is per channel, which is the same thing when x has no
 * dims past C or the statistics are constants with every Di = 1.  in[1..4]
 * become rank-1; 0 on success, 1 after reporting. */
int onnx_legacy_bn_stats(Loader *L, int ni, int *in)
{
	int rx = onnx_rank(L, in[0]);
	if (rx >= 0 && rx <= 2)
		return 0;
	for (int j = 1; j < 5; j++) {
		const Tensor *t = &L->g->tensor[in[j]];
		int64_t c = t->rank ? t->dim[0] : 1;
		if (t->kind != TK_CONST) {
			onnx_err(L, ni, "attribute 'spatial' = 0 (per-activation statistics) needs constant "
			         "statistics; '%s' is computed", t->name);
			return 1;
		}
		if (ir_numel(t) != c) {
			onnx_err(L, ni, "attribute 'spatial' = 0 (per-activation statistics) is supported only "
			         "when they are per channel anyway; '%s' holds %lld values for %lld channels",
			         t->name, (long long)ir_numel(t), (long long)c);
			return 1;
		}
		if (t->rank != 1)
			in[j] = ir_const_new(L->g, arena_printf(L->g->arena, "%s.per_channel", t->name),
			                     t->dtype, 1, &c, t->data);
	}
	return 0;
}
