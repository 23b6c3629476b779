/* pass_memplan: arena offsets for the tensors computed inside the model.
 *
 * Requires: final node order (the last pass before emission) and static
 * shapes.
 * Establishes:
 *   - the output y of a view op (F_VIEW: Reshape, Flatten, Squeeze,
 *     Unsqueeze, a remaining Identity, Dropout's first output) that is not a
 *     graph output has y.alias = the root tensor whose bytes it reads (the
 *     chain of views followed to its end; the root may be a graph input,
 *     a constant or a graph output) and no bytes of its own (off = -1);
 *     a view that is a graph output is not aliased: the backend copies;
 *   - every other computed tensor that is not a graph output has off >= 0,
 *     a multiple of 16, and any two such tensors whose lifetimes overlap
 *     have disjoint byte ranges [off, off + nbytes);
 *   - graph inputs, outputs and constants have off = -1;
 *   - Graph.arena_bytes covers every offset (0 if nothing needs the arena).
 *
 * Lifetime of tensor t, in node indices: from its producer to its last
 * reader, inclusive; a view's readers count as readers of its root.  Both
 * ends are inclusive, so a node's outputs never share bytes with its inputs
 * (no kernel has to work in place).
 *
 * Placement is the offline "greedy by size" scheme (as in TensorFlow Lite):
 * tensors largest first, each at the best-fitting gap (the smallest that
 * holds it) among the already placed tensors whose lifetimes overlap its
 * own, else above them all.  Placing big tensors first lets later small
 * ones fill the holes between them, which on MobileNet-like chains comes
 * close to the largest simultaneously live set.
 */
#include <assert.h>
#include <stdlib.h>

#include "passes.h"

typedef struct {
	int t;                 /* tensor id */
	int start, end;        /* lifetime, node indices inclusive */
	int64_t size, off;     /* bytes rounded up to 16, offset (-1 unplaced) */
} Buf;

static int64_t align16(int64_t n)
{
	return (n + 15) & ~(int64_t)15;
}

static int root_of(const Graph *g, int t)
{
	while (g->tensor[t].alias >= 0)
		t = g->tensor[t].alias;
	return t;
}

static int needs_alias(const Graph *g, const Node *n)
{
	if (!(ir_opflags[n->op] & F_VIEW) || n->nin < 1 || n->in[0] < 0 || n->nout < 1 || n->out[0] < 0)
		return 0;
	const Tensor *y = &g->tensor[n->out[0]];
	return y->kind == TK_VALUE && !y->is_output;
}

static void set_aliases(Graph *g)
{
	for (int i = 0; i < g->ntensor; i++) {
		g->tensor[i].off = -1;
		g->tensor[i].alias = -1;
	}
	for (int i = 0; i < g->nnode; i++) {
		const Node *n = &g->node[i];
		if (needs_alias(g, n))
			g->tensor[n->out[0]].alias = root_of(g, n->in[0]);
	}
}

static int owns_bytes(const Tensor *t)
{
	return t->kind == TK_VALUE && !t->is_output && t->alias < 0;
}

/* Lifetimes of the tensors that own arena bytes; *nb receives their count.
 * slot[t] is t's index in the result, -1 for the others. */
static Buf *lifetimes(const Graph *g, int *slot, int *nb)
{
	Buf *b = calloc((size_t)g->ntensor + 1, sizeof *b);
	int k = 0;
	for (int i = 0; i < g->ntensor; i++)
		slot[i] = -1;
	for (int i = 0; i < g->nnode; i++) {
		const Node *n = &g->node[i];
		for (int j = 0; j < n->nin; j++) {
			int t = n->in[j] >= 0 ? root_of(g, n->in[j]) : -1;
			if (t >= 0 && slot[t] >= 0 && b[slot[t]].end < i)
				b[slot[t]].end = i;
		}
		for (int j = 0; j < n->nout; j++) {
			int t = n->out[j];
			if (t < 0 || !owns_bytes(&g->tensor[t]))
				continue;
			b[k] = (Buf){t, i, i, align16((int64_t)ir_nbytes(&g->tensor[t])), -1};
			slot[t] = k++;
		}
	}
	*nb = k;
	return b;
}

static int live_together(const Buf *a, const Buf *b)
{
	return a->start <= b->end && b->start <= a->end;
}

static int by_size_desc(const void *pa, const void *pb)
{
	const Buf *a = *(Buf *const *)pa, *b = *(Buf *const *)pb;
	if (a->size != b->size)
		return a->size > b->size ? -1 : 1;
	if (a->start != b->start)
		return a->start - b->start;
	return a->t - b->t;
}

static int by_off(const void *pa, const void *pb)
{
	const Buf *a = *(Buf *const *)pa, *b = *(Buf *const *)pb;
	return a->off < b->off ? -1 : a->off > b->off;
}

/* Best-fit offset for b among placed[0..np) (sorted here by offset). */
static int64_t best_fit(const Buf *b, Buf **placed, int np, Buf **tmp)
{
	int nt = 0;
	for (int i = 0; i < np; i++)
		if (live_together(b, placed[i]))
			tmp[nt++] = placed[i];
	qsort(tmp, (size_t)nt, sizeof *tmp, by_off);
	int64_t top = 0, best = -1, bestgap = INT64_MAX;
	for (int i = 0; i < nt; i++) {
		int64_t gap = tmp[i]->off - top;
		if (gap >= b->size && gap < bestgap) {
			best = top;
			bestgap = gap;
		}
		if (tmp[i]->off + tmp[i]->size > top)
			top = tmp[i]->off + tmp[i]->size;
	}
	return best >= 0 ? best : top;
}

static int64_t place(Buf *b, int nb)
{
	Buf **order = malloc(sizeof *order * (size_t)(nb + 1));
	Buf **tmp = malloc(sizeof *tmp * (size_t)(nb + 1));
	for (int i = 0; i < nb; i++)
		order[i] = &b[i];
	qsort(order, (size_t)nb, sizeof *order, by_size_desc);
	int64_t total = 0;
	for (int i = 0; i < nb; i++) {
		order[i]->off = best_fit(order[i], order, i, tmp);
		if (order[i]->off + order[i]->size > total)
			total = order[i]->off + order[i]->size;
	}
	free(order);
	free(tmp);
	return total;
}

#ifndef NDEBUG
/* A bad plan makes generated code corrupt its own activations silently, so
 * every pair is checked again here, independently of how it was placed. */
static int plan_ok(const Buf *b, int nb, int64_t total)
{
	for (int i = 0; i < nb; i++) {
		if (b[i].off < 0 || b[i].off % 16 || b[i].off + b[i].size > total)
			return 0;
		for (int j = i + 1; j < nb; j++)
			if (live_together(&b[i], &b[j]) && b[i].size && b[j].size
			    && b[i].off < b[j].off + b[j].size && b[j].off < b[i].off + b[i].size)
				return 0;
	}
	return 1;
}
#endif

int pass_memplan(Graph *g, Diag *d)
{
	(void)d;
	int nb;
	int *slot = malloc(sizeof *slot * ((size_t)g->ntensor + 1));
	set_aliases(g);
	Buf *b = lifetimes(g, slot, &nb);
	g->arena_bytes = place(b, nb);
#ifndef NDEBUG
	assert(plan_ok(b, nb, g->arena_bytes));
#endif
	for (int i = 0; i < nb; i++)
		g->tensor[b[i].t].off = b[i].off;
	free(b);
	free(slot);
	return 0;
}
