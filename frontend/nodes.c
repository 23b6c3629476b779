/* Edges and order.  Every node output becomes a tensor, every input name
 * must resolve to one, the nodes are sorted topologically (ONNX requires the
 * order but exporters and hand edits break it) and built in that order. */
#include <string.h>

#include "onnx_impl.h"

/* Input tensor ids of every node, flattened: node ni's are
 * eid[eoff[ni] .. eoff[ni+1]), -1 for an absent optional input. */
typedef struct {
	int *eid, *eoff;
} Edges;

static int is_node(const Loader *L, size_t ni)
{
	return L->op[ni] != OP_CONSTANT;
}

/* Output tensors of every node but Constants (already constants). */
static int add_outputs(Loader *L)
{
	int bad = 0;
	for (size_t i = 0; i < L->gp->n_node; i++) {
		const Onnx__NodeProto *np = L->gp->node[i];
		for (size_t j = 0; is_node(L, i) && j < np->n_output; j++) {
			const char *name = onnx_str(np->output[j]);
			if (!*name)
				continue;
			int id = ir_tensor_new(L->g, name, DT_UNDEF, 0, NULL);
			if (onnx_names_put(&L->names, L->g->tensor[id].name, id) >= 0) {
				onnx_err(L, (int)i, "output '%s' is already produced by another node, "
				         "an initializer or a graph input", name);
				bad = 1;
			}
		}
	}
	return bad;
}

static void set_producers(Loader *L)
{
	int nt = L->g->ntensor;
	L->prod = arena_alloc(L->g->arena, sizeof(int) * (size_t)(nt + 1));
	L->uses = arena_alloc(L->g->arena, sizeof(int) * (size_t)(nt + 1));
	for (int t = 0; t < nt; t++)
		L->prod[t] = -1;
	for (size_t i = 0; i < L->gp->n_node; i++) {
		const Onnx__NodeProto *np = L->gp->node[i];
		for (size_t j = 0; is_node(L, i) && j < np->n_output; j++)
			if (*onnx_str(np->output[j]))
				L->prod[onnx_names_get(&L->names, np->output[j])] = (int)i;
	}
}

/* Input names -> tensor ids; a name nothing defines is an error. */
static int resolve(Loader *L, Edges *e)
{
	size_t nn = L->gp->n_node, total = 0;
	for (size_t i = 0; i < nn; i++)
		total += is_node(L, i) ? L->gp->node[i]->n_input : 0;
	e->eid = arena_alloc(L->g->arena, sizeof(int) * (total + 1));
	e->eoff = arena_alloc(L->g->arena, sizeof(int) * (nn + 1));
	int bad = 0, k = 0;
	for (size_t i = 0; i < nn; i++) {
		e->eoff[i] = k;
		const Onnx__NodeProto *np = L->gp->node[i];
		for (size_t j = 0; is_node(L, i) && j < np->n_input; j++) {
			const char *name = onnx_str(np->input[j]);
			int id = *name ? onnx_names_get(&L->names, name) : -1;
			if (*name && id < 0) {
				onnx_err(L, (int)i, "input '%s' is not produced by any node, initializer or "
				         "graph input", name);
				bad = 1;
			}
			if (id >= 0)
				L->uses[id]++;
			e->eid[k++] = id;
		}
	}
	e->eoff[nn] = k;
	return bad;
}

static int resolve_outputs(Loader *L)
{
	int bad = 0;
	for (size_t i = 0; i < L->gp->n_output; i++) {
		const char *name = onnx_str(L->gp->output[i]->name);
		int id = onnx_names_get(&L->names, name);
		if (id < 0) {
			onnx_err(L, -1, "graph output '%s' is not produced by any node, initializer or "
			         "graph input", name);
			bad = 1;
		} else {
			L->uses[id]++;
		}
	}
	return bad;
}

/* ---- topological order ---- */

/* Min-heap of node indices: among ready nodes the earliest in the file goes
 * first, so a model that is already in order keeps its order. */
typedef struct {
	int *v, n;
} Heap;

static void heap_push(Heap *h, int x)
{
	int i = h->n++;
	for (; i > 0 && h->v[(i - 1) / 2] > x; i = (i - 1) / 2)
		h->v[i] = h->v[(i - 1) / 2];
	h->v[i] = x;
}

static int heap_pop(Heap *h)
{
	int top = h->v[0], x = h->v[--h->n], i = 0;
	for (;;) {
		int c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1] < h->v[c])
			c++;
		if (h->v[c] >= x)
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	h->v[i] = x;
	return top;
}

/* Successors of every node as a flat array (CSR), and in-degrees counted
 * with the same multiplicity (a node may read one tensor twice). */
typedef struct {
	int *indeg, *soff, *succ;
} Deps;

static void deps(const Loader *L, const Edges *e, Deps *dp)
{
	Arena *a = L->g->arena;
	size_t nn = L->gp->n_node;
	int ne = e->eoff[nn];
	dp->indeg = arena_alloc(a, sizeof(int) * (nn + 1));
	dp->soff = arena_alloc(a, sizeof(int) * (nn + 2));
	dp->succ = arena_alloc(a, sizeof(int) * (size_t)(ne + 1));
	for (int k = 0; k < ne; k++)
		if (e->eid[k] >= 0 && L->prod[e->eid[k]] >= 0)
			dp->soff[L->prod[e->eid[k]] + 1]++;
	for (size_t i = 0; i < nn; i++)
		dp->soff[i + 1] += dp->soff[i];
	int *fill = arena_dup(a, dp->soff, sizeof(int) * (nn + 1));
	for (size_t i = 0; i < nn; i++)
		for (int k = e->eoff[i]; k < e->eoff[i + 1]; k++) {
			int p = e->eid[k] >= 0 ? L->prod[e->eid[k]] : -1;
			if (p >= 0) {
				dp->succ[fill[p]++] = (int)i;
				dp->indeg[i]++;
			}
		}
}

/* A node left over by Kahn's algorithm may only sit downstream of a cycle;
 * walking unfinished predecessors from it must enter one.  Reports the first
 * node met twice, which is on the cycle. */
static void report_cycle(Loader *L, const Edges *e, const Deps *dp, int start)
{
	char *seen = arena_alloc(L->g->arena, L->gp->n_node + 1);
	int v = start;
	while (!seen[v]) {
		seen[v] = 1;
		for (int k = e->eoff[v]; k < e->eoff[v + 1]; k++) {
			int p = e->eid[k] >= 0 ? L->prod[e->eid[k]] : -1;
			if (p >= 0 && dp->indeg[p] > 0) {
				v = p;
				break;
			}
		}
	}
	/* v is on the cycle: name the input through which the cycle enters it. */
	for (int k = e->eoff[v]; k < e->eoff[v + 1]; k++) {
		int p = e->eid[k] >= 0 ? L->prod[e->eid[k]] : -1;
		if (p >= 0 && dp->indeg[p] > 0) {
			onnx_err(L, v, "node is part of a dependency cycle (through its input '%s')",
			         L->g->tensor[e->eid[k]].name);
			return;
		}
	}
}

/* Kahn's algorithm; order gets the non-Constant nodes.  Their count, or -1
 * after reporting a cycle. */
static int toposort(Loader *L, const Edges *e, int *order)
{
	size_t nn = L->gp->n_node;
	Deps dp;
	deps(L, e, &dp);
	Heap h = {arena_alloc(L->g->arena, sizeof(int) * (nn + 1)), 0};
	int want = 0, k = 0;
	for (size_t i = 0; i < nn; i++) {
		want += is_node(L, i);
		if (is_node(L, i) && dp.indeg[i] == 0)
			heap_push(&h, (int)i);
	}
	while (h.n) {
		int v = heap_pop(&h);
		order[k++] = v;
		for (int s = dp.soff[v]; s < dp.soff[v + 1]; s++)
			if (--dp.indeg[dp.succ[s]] == 0)
				heap_push(&h, dp.succ[s]);
	}
	if (k == want)
		return k;
	for (size_t i = 0; i < nn; i++)
		if (is_node(L, i) && dp.indeg[i] > 0) {
			report_cycle(L, e, &dp, (int)i);
			break;
		}
	return -1;
}

/* ---- building ---- */

/* Element type of a node's output; shapes come later (ir_infer). */
static DType out_dtype(const Graph *g, Op op, const Attr *a, const int *in, int nin)
{
	switch (op) {
	case OP_EQUAL: case OP_LESS: case OP_GREATER: return DT_BOOL;
	case OP_GREATEREQ: case OP_LESSEQ: case OP_ISNAN: case OP_ISINF: return DT_BOOL;
	case OP_ARGMAX: case OP_ARGMIN: return DT_I64;
	case OP_SHAPE: case OP_SIZE: return DT_I64;
	case OP_CAST: case OP_CONSTOFSHAPE: return a->cast.to;
	case OP_WHERE: return g->tensor[in[1]].dtype;
	case OP_ONEHOT: return g->tensor[in[2]].dtype;
	case OP_QUANTIZE: return nin > 2 && in[2] >= 0 ? g->tensor[in[2]].dtype : DT_U8;
	case OP_DEQUANTIZE: return DT_F32;
	case OP_QLINEARCONV: case OP_QLINEARMATMUL: return g->tensor[in[7]].dtype;
	case OP_CONVINTEGER: case OP_MATMULINTEGER: return DT_I32;
	default: return g->tensor[in[0]].dtype;
	}
}

static int output_id(const Loader *L, int ni, size_t j)
{
	const Onnx__NodeProto *np = L->gp->node[ni];
	return j < np->n_output && *onnx_str(np->output[j]) ? onnx_names_get(&L->names, np->output[j]) : -1;
}

/* How many of ONNX's outputs the IR node computes: every output of Split,
 * Y, Mean and InvStdDev of LayerNormalization, the first of the others
 * (maxpool_indices() and dropout_mask() add MaxPool's Indices and
 * Dropout's mask when read). */
static int ir_nout(const Loader *L, int ni)
{
	int n = (int)L->gp->node[ni]->n_output;
	switch (L->op[ni]) {
	case OP_SPLIT: return n;
	case OP_LAYERNORM: return n < 3 ? n : 3;
	default: return n < 1 ? n : 1;
	}
}

/* out[0..nout) for the outputs the IR computes; ONNX's optional extra
 * outputs (BatchNormalization statistics, ...) are dropped when nothing
 * reads them. */
static int node_outputs(Loader *L, int ni, int nout, int *out)
{
	const Onnx__NodeProto *np = L->gp->node[ni];
	for (int j = 0; j < nout; j++)
		out[j] = output_id(L, ni, (size_t)j);
	for (size_t j = (size_t)nout; j < np->n_output; j++) {
		int id = output_id(L, ni, j);
		if ((L->op[ni] == OP_DROPOUT || L->op[ni] == OP_MAXPOOL) && j == 1)
			continue; /* dropout_mask() or maxpool_indices() make it */
		if (id >= 0 && L->uses[id]) {
			onnx_err(L, ni, "output %zu ('%s') is used, but potc computes only the first "
			         "output of %s", j, np->output[j], ir_opname[L->op[ni]]);
			return 1;
		}
	}
	return 0;
}

/* A tensor for an unnamed output that must exist anyway: output 0 of a
 * node with others (MaxPool's Indices, LayerNormalization's statistics),
 * and every part of a Split (its size counts). */
static void name_outputs(Loader *L, int ni, int nout, int *out)
{
	int any = 0;
	for (int j = 0; j < nout; j++)
		any |= out[j] >= 0;
	for (int j = 0; any && j < nout; j++)
		if (out[j] < 0 && (j == 0 || L->op[ni] == OP_SPLIT))
			out[j] = ir_tensor_new(L->g, arena_printf(L->g->arena, "%s.out%d", L->nname[ni], j),
			                       DT_UNDEF, 0, NULL);
}

/* Dropout's mask at inference is all ones (no element dropped), of x's
 * shape: Shape(x) -> ConstantOfShape(1), which pass_fold evaluates.  Before
 * opset 10 the mask has x's element type, bool after. */
static void dropout_mask(Loader *L, int ni, int x)
{
	const Onnx__NodeProto *np = L->gp->node[ni];
	int mask = np->n_output > 1 && *onnx_str(np->output[1]) ? onnx_names_get(&L->names, np->output[1]) : -1;
	if (mask < 0 || !L->uses[mask])
		return;
	int shape = onnx_add_node(L, ni, OP_SHAPE, "mask_shape", &x, 1);
	L->g->tensor[shape].dtype = DT_I64;
	L->g->tensor[mask].dtype = L->opset >= 10 ? DT_BOOL : L->g->tensor[x].dtype;
	int id = ir_node_new(L->g, OP_CONSTOFSHAPE, arena_printf(L->g->arena, "%s.mask", L->nname[ni]),
	                     1, &shape, 1, &mask);
	L->g->node[id].a.cast.to = L->g->tensor[mask].dtype;
	L->g->node[id].a.cast.value = 1;
	onnx_track_rank(L, id);
}

/* MaxPool's Indices output (i64, flat index into x), when read. */
static int maxpool_indices(Loader *L, int ni, int *out)
{
	const Onnx__NodeProto *np = L->gp->node[ni];
	int id = np->n_output > 1 && *onnx_str(np->output[1]) ? onnx_names_get(&L->names, np->output[1]) : -1;
	if (id < 0 || !L->uses[id])
		return 0;
	L->g->tensor[id].dtype = DT_I64;
	out[1] = id;
	return 1;
}

static int build_node(Loader *L, int ni, const int *eid)
{
	const Onnx__NodeProto *np = L->gp->node[ni];
	Op op = (Op)L->op[ni];
	int *in = arena_alloc(L->g->arena, sizeof(int) * (np->n_input + 3));
	memcpy(in, eid, sizeof(int) * np->n_input);
	Attr a;
	memset(&a, 0, sizeof a);
	int nin = onnx_node_attrs(L, ni, op, &a, in, (int)np->n_input);
	int nout = ir_nout(L, ni);
	int *out = arena_alloc(L->g->arena, sizeof(int) * (size_t)(nout + 2));
	if (nin < 0 || node_outputs(L, ni, nout, out))
		return 1;
	if (op == OP_MAXPOOL)
		nout += maxpool_indices(L, ni, out);
	name_outputs(L, ni, nout, out);
	while (nout > 1 && out[nout - 1] < 0)
		nout--;
	if (nout < 1 || out[0] < 0)
		return 0; /* computes nothing anyone can name */
	for (int j = 0; j < nout; j++)
		if (out[j] >= 0 && L->g->tensor[out[j]].dtype == DT_UNDEF)
			L->g->tensor[out[j]].dtype = out_dtype(L->g, op, &a, in, nin);
	if (op == OP_UPSAMPLE)
		op = OP_RESIZE;  /* p_resize gave it Resize's inputs and attributes */
	int id = ir_node_new(L->g, op, L->nname[ni], nin, in, nout, out);
	L->g->node[id].a = a;
	onnx_track_rank(L, id);
	if (op == OP_DROPOUT)
		dropout_mask(L, ni, in[0]);
	return 0;
}

/* A node the frontend puts ahead of ONNX node ni to rewrite an old form;
 * its one output, named "<ni's name>.<what>", has in[0]'s dtype. */
int onnx_add_node(Loader *L, int ni, Op op, const char *what, const int *in, int nin)
{
	const char *name = arena_printf(L->g->arena, "%s.%s", L->nname[ni], what);
	int out = ir_tensor_new(L->g, name, L->g->tensor[in[0]].dtype, 0, NULL);
	int id = ir_node_new(L->g, op, name, nin, in, 1, &out);
	onnx_track_rank(L, id);
	return out;
}

int onnx_nodes(Loader *L)
{
	if (add_outputs(L))
		return 1;
	set_producers(L);
	Edges e;
	int bad = resolve(L, &e);
	if (resolve_outputs(L) || bad)
		return 1;
	int *order = arena_alloc(L->g->arena, sizeof(int) * (L->gp->n_node + 1));
	int n = toposort(L, &e, order);
	if (n < 0)
		return 1;
	for (int k = 0; k < n; k++)
		if (L->op[order[k]] >= 0)
			bad |= build_node(L, order[k], e.eid + e.eoff[order[k]]);
	return bad;
}

int onnx_outputs(Loader *L)
{
	Graph *g = L->g;
	int bad = 0;
	g->output = arena_alloc(g->arena, sizeof(int) * (L->gp->n_output + 1));
	for (size_t i = 0; i < L->gp->n_output; i++) {
		int id = onnx_names_get(&L->names, onnx_str(L->gp->output[i]->name));
		if (g->tensor[id].is_output) {
			onnx_err(L, -1, "graph output '%s' is listed twice", g->tensor[id].name);
			bad = 1;
			continue;
		}
		g->tensor[id].is_output = 1;
		g->output[g->noutput++] = id;
	}
	if (!g->noutput) {
		onnx_err(L, -1, "the graph has no outputs");
		bad = 1;
	}
	return bad;
}
