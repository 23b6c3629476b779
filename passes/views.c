/* pass_views: Identity and Dropout (inference: y = x) removed.
 *
 * Requires: topological order.
 * Establishes: every reader of y = Identity(x) or Dropout(x) reads x; the
 * node is gone, except where removing it would lose a copy the graph's
 * interface needs (below), in which case it stays as a plain Identity.
 * A Dropout whose mask output is read or is a graph output is an error.
 *
 * When y is a graph output: if x is computed by a node and is not itself a
 * graph output, x takes y's place in the output list and y's name, so the
 * generated API keeps the ONNX output name.  If x is a graph input, a
 * constant, or already a graph output, the two outputs need distinct
 * buffers (or the input and output would alias), so the Identity stays and
 * the backend copies.
 */
#include "passes.h"

static void replace_uses(Graph *g, int from, int to)
{
	for (int i = 0; i < g->nnode; i++) {
		Node *n = &g->node[i];
		if (n->dead)
			continue;
		for (int j = 0; j < n->nin; j++)
			if (n->in[j] == from)
				n->in[j] = to;
	}
}

static int mask_used(const Graph *g, const Node *n)
{
	int m = n->nout > 1 ? n->out[1] : -1, c;
	return m >= 0 && (g->tensor[m].is_output || ir_consumers(g, m, &c, 1) > 0);
}

/* x replaces y in the graph outputs, under y's name. */
static void promote(Graph *g, int x, int y)
{
	for (int i = 0; i < g->noutput; i++)
		if (g->output[i] == y)
			g->output[i] = x;
	g->tensor[x].is_output = 1;
	g->tensor[x].name = g->tensor[y].name;
	g->tensor[y].is_output = 0;
	g->tensor[y].name = arena_printf(g->arena, "%s_removed", g->tensor[y].name);
}

/* Keep the node as a one-in one-out Identity the backend copies through. */
static void keep_as_identity(Node *n)
{
	n->op = OP_IDENTITY;
	n->nin = 1;
	n->nout = 1;
}

static int remove_view(Graph *g, int i, Diag *d)
{
	Node *n = &g->node[i];
	if (n->op == OP_DROPOUT && mask_used(g, n)) {
		ir_error(d, g, i, "Dropout mask output is not supported");
		return 1;
	}
	int x = n->in[0], y = n->out[0];
	if (g->tensor[y].is_output) {
		const Tensor *X = &g->tensor[x];
		if (X->kind != TK_VALUE || X->is_output) {
			keep_as_identity(n);
			return 0;
		}
		promote(g, x, y);
	}
	n->dead = 1;
	replace_uses(g, y, x);
	return 0;
}

int pass_views(Graph *g, Diag *d)
{
	for (int i = 0; i < g->nnode; i++) {
		Node *n = &g->node[i];
		if (n->dead || (n->op != OP_IDENTITY && n->op != OP_DROPOUT))
			continue;
		if (n->nin < 1 || n->in[0] < 0 || n->nout < 1 || n->out[0] < 0) {
			ir_error(d, g, i, "internal: %s without input or output", ir_opname[n->op]);
			return 1;
		}
		if (remove_view(g, i, d))
			return 1;
	}
	ir_compact(g);
	return 0;
}
