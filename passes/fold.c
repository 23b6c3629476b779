/* pass_fold: shape inference and constant folding, in one walk.
 *
 * Requires: nodes in topological order; graph inputs with static shapes.
 * Establishes: every tensor has its dtype and a static shape; Shape and
 * Size nodes are gone; no node is left whose present inputs are all
 * constant, except one whose outputs exceed MAXFOLD bytes and, under
 * --quant, DequantizeLinear (pass_qdq reads the constant's quantization).
 *
 * Inference and folding share the walk on purpose: a shape-deciding input
 * (Reshape's shape, Slice's starts, Expand's shape...) is usually computed
 * by a shape sub-graph such as Shape -> Gather -> Unsqueeze -> Concat, and
 * ir_infer_node needs it CONST.  Folding each node as soon as it is
 * inferred makes the sub-graph constant before its consumer is reached.
 */
#include <stdlib.h>

#include "passes.h"

/* Folding trades run-time work for constant bytes embedded in the generated
 * program.  Past this size (say a ConstantOfShape or Expand building a big
 * fill) the constant would bloat the binary and the compiler's memory far
 * more than computing it at run time costs, so the node is left alone. */
#define MAXFOLD ((size_t)64 << 20)

static void make_const(Graph *g, int t, void *data)
{
	Tensor *T = &g->tensor[t];
	T->kind = TK_CONST;
	T->data = data;
	T->producer = -1;
}

static int shape_known(const Tensor *t)
{
	for (int i = 0; i < t->rank; i++)
		if (t->dim[i] < 0)
			return 0;
	return 1;
}

static int clamp_axis(int a, int rank)
{
	if (a < 0)
		a += rank;
	return a < 0 ? 0 : a > rank ? rank : a;
}

/* Shape (dims [start:end], opset 15 slicing) and Size depend only on the
 * input's static shape, never on its values. */
static int fold_shape(Graph *g, int i, Diag *d)
{
	Node *n = &g->node[i];
	const Tensor *x = &g->tensor[n->in[0]];
	int y = n->out[0];
	int64_t v[IR_MAXRANK];
	int k = 0;
	if (n->op == OP_SIZE) {
		v[k++] = ir_numel(x);
	} else {
		int s = clamp_axis(n->a.shape.start, x->rank);
		int e = n->a.shape.has_end ? clamp_axis(n->a.shape.end, x->rank) : x->rank;
		for (int a = s; a < e; a++)
			v[k++] = x->dim[a];
	}
	if (ir_numel(&g->tensor[y]) != k || g->tensor[y].dtype != DT_I64) {
		ir_error(d, g, i, "internal: inferred output disagrees with the folded value");
		return 1;
	}
	make_const(g, y, arena_dup(g->arena, v, sizeof(int64_t) * (size_t)k));
	n->dead = 1;
	return 0;
}

static int inputs_const(const Graph *g, const Node *n)
{
	for (int j = 0; j < n->nin; j++)
		if (n->in[j] >= 0 && !ir_is_const(g, n->in[j]))
			return 0;
	return 1;
}

static size_t out_bytes(const Graph *g, const Node *n)
{
	size_t sum = 0;
	for (int j = 0; j < n->nout; j++)
		if (n->out[j] >= 0)
			sum += ir_nbytes(&g->tensor[n->out[j]]);
	return sum;
}

/* Run the reference evaluator on constant inputs; the outputs' buffers come
 * from the arena and become the new constants' data. */
static int fold_eval(Graph *g, int i, Diag *d)
{
	Node *n = &g->node[i];
	const void **in = calloc((size_t)n->nin + 1, sizeof *in);
	void **out = calloc((size_t)n->nout + 1, sizeof *out);
	for (int j = 0; j < n->nin; j++)
		in[j] = n->in[j] >= 0 ? g->tensor[n->in[j]].data : NULL;
	for (int j = 0; j < n->nout; j++)
		if (n->out[j] >= 0)
			out[j] = arena_alloc(g->arena, ir_nbytes(&g->tensor[n->out[j]]));
	int err = ir_eval_node(g, i, (const void *const *)in, (void *const *)out, d);
	for (int j = 0; !err && j < n->nout; j++)
		if (n->out[j] >= 0)
			make_const(g, n->out[j], out[j]);
	if (!err)
		n->dead = 1;
	free(in);
	free(out);
	return err;
}

static int fold_node(Graph *g, int i, Diag *d)
{
	Node *n = &g->node[i];
	if (ir_infer_node(g, i, d))
		return 1;
	if ((n->op == OP_SHAPE || n->op == OP_SIZE) && n->nin >= 1 && n->in[0] >= 0
	    && shape_known(&g->tensor[n->in[0]]))
		return fold_shape(g, i, d);
	if (!inputs_const(g, n) || out_bytes(g, n) > MAXFOLD)
		return 0;
	if (n->op == OP_DEQUANTIZE && g->qcfg)
		return 0;  /* pass_qdq keeps the model's quantization of the constant */
	return fold_eval(g, i, d);
}

int pass_fold(Graph *g, Diag *d)
{
	for (int i = 0; i < g->nnode; i++)
		if (!g->node[i].dead && fold_node(g, i, d))
			return 1;
	ir_compact(g);
	return 0;
}
