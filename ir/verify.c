/* ir_verify: the invariants of ir.h, checked between passes.  A failure
 * here is a bug in potc, reported as an error so tests see it. */
#include <stdlib.h>

#include "ir.h"

static int check_tensor(const Graph *g, int id, Diag *d)
{
	const Tensor *t = &g->tensor[id];
	if (t->dtype <= DT_UNDEF || t->dtype >= DT_COUNT) {
		ir_error(d, g, t->producer, "internal: tensor \"%s\" has no dtype", t->name);
		return 1;
	}
	if (t->rank < 0 || t->rank > IR_MAXRANK) {
		ir_error(d, g, t->producer, "internal: tensor \"%s\" has rank %d", t->name, t->rank);
		return 1;
	}
	if ((t->kind == TK_CONST) != (t->data != NULL)) {
		ir_error(d, g, t->producer, "internal: tensor \"%s\": data only on constants", t->name);
		return 1;
	}
	if (t->kind != TK_VALUE && t->producer >= 0) {
		ir_error(d, g, t->producer, "internal: %s \"%s\" has a producer",
		         t->kind == TK_CONST ? "constant" : "input", t->name);
		return 1;
	}
	return 0;
}

static int check_node(const Graph *g, int i, char *ready, Diag *d)
{
	const Node *n = &g->node[i];
	if (n->op < 0 || n->op >= OP_COUNT || n->dead) {
		ir_error(d, g, i, "internal: bad or dead node left in graph");
		return 1;
	}
	for (int j = 0; j < n->nin; j++) {
		int t = n->in[j];
		if (t < -1 || t >= g->ntensor) {
			ir_error(d, g, i, "internal: input %d is tensor %d of %d", j, t, g->ntensor);
			return 1;
		}
		if (t >= 0 && !ready[t]) {
			ir_error(d, g, i, "input \"%s\" is used before it is computed (cycle or bad order)",
			         g->tensor[t].name);
			return 1;
		}
	}
	for (int j = 0; j < n->nout; j++) {
		int t = n->out[j];
		if (t < 0)
			continue;
		if (t >= g->ntensor || ready[t] || g->tensor[t].producer != i) {
			ir_error(d, g, i, "internal: output %d has another producer", j);
			return 1;
		}
		ready[t] = 1;
	}
	return 0;
}

int ir_verify(const Graph *g, Diag *d)
{
	int bad = 0;
	char *ready = calloc((size_t)g->ntensor + 1, 1);
	for (int i = 0; i < g->ntensor; i++) {
		bad |= check_tensor(g, i, d);
		ready[i] = g->tensor[i].kind != TK_VALUE;
	}
	for (int i = 0; i < g->ninput; i++)
		if (g->tensor[g->input[i]].kind != TK_INPUT) {
			ir_error(d, g, -1, "internal: graph input %d is not an input tensor", i);
			bad = 1;
		}
	for (int i = 0; !bad && i < g->nnode; i++)
		bad |= check_node(g, i, ready, d);
	for (int i = 0; !bad && i < g->noutput; i++)
		if (!ready[g->output[i]]) {
			ir_error(d, g, -1, "graph output \"%s\" is never computed",
			         g->tensor[g->output[i]].name);
			bad = 1;
		}
	free(ready);
	return bad;
}
