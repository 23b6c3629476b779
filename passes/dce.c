/* pass_dce: dead code elimination.
 *
 * Requires: topological order.
 * Establishes: every node has an output that reaches a graph output; the
 * tensors only dead nodes touched are dropped (graph inputs stay, unused or
 * not, since they are the generated function's signature).
 */
#include <stdlib.h>

#include "passes.h"

/* One backward sweep suffices: in topological order every reader of a
 * node's outputs comes after it, so its liveness is final when reached. */
static void mark(Graph *g, char *live)
{
	for (int i = g->nnode - 1; i >= 0; i--) {
		Node *n = &g->node[i];
		int used = 0;
		for (int j = 0; j < n->nout; j++)
			used |= n->out[j] >= 0 && live[n->out[j]];
		if (!used || n->dead) {
			n->dead = 1;
			continue;
		}
		for (int j = 0; j < n->nin; j++)
			if (n->in[j] >= 0)
				live[n->in[j]] = 1;
	}
}

int pass_dce(Graph *g, Diag *d)
{
	(void)d;
	char *live = calloc((size_t)g->ntensor + 1, 1);
	for (int i = 0; i < g->noutput; i++)
		live[g->output[i]] = 1;
	mark(g, live);
	free(live);
	ir_compact(g);
	return 0;
}
