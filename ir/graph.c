/* Graph construction, lookup and renumbering. */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

const char *const ir_opname[OP_COUNT] = {
#define OP(e, name, flags) name,
#include "ops.def"
#undef OP
};

const int ir_opflags[OP_COUNT] = {
#define OP(e, name, flags) flags,
#include "ops.def"
#undef OP
};

int ir_op_lookup(const char *name)
{
	for (int i = 0; i < OP_COUNT; i++)
		if (strcmp(ir_opname[i], name) == 0)
			return i;
	return -1;
}

static const struct { const char *name; size_t size; } dtypes[DT_COUNT] = {
	[DT_UNDEF] = {"undef", 0}, [DT_F32] = {"f32", 4}, [DT_F64] = {"f64", 8},
	[DT_I8] = {"i8", 1},       [DT_U8] = {"u8", 1},   [DT_I16] = {"i16", 2},
	[DT_U16] = {"u16", 2},     [DT_I32] = {"i32", 4}, [DT_U32] = {"u32", 4},
	[DT_I64] = {"i64", 8},     [DT_BOOL] = {"bool", 1},
};

const char *ir_dtype_name(DType t)
{
	return t < DT_COUNT ? dtypes[t].name : "?";
}

size_t ir_dtype_size(DType t)
{
	return t < DT_COUNT ? dtypes[t].size : 0;
}

Graph *ir_graph_new(Arena *a, const char *file)
{
	Graph *g = arena_alloc(a, sizeof *g);
	g->arena = a;
	g->file = file ? arena_strdup(a, file) : "potc";
	g->name = "model";
	return g;
}

/* Arrays grow by copying inside the arena; the old copy is abandoned. */
static void *grow(Arena *a, void *p, int n, int *cap, size_t elem)
{
	if (n < *cap)
		return p;
	int ncap = *cap ? *cap * 2 : 64;
	void *q = arena_alloc(a, (size_t)ncap * elem);
	if (n)
		memcpy(q, p, (size_t)n * elem);
	*cap = ncap;
	return q;
}

int ir_tensor_new(Graph *g, const char *name, DType dt, int rank, const int64_t *dim)
{
	g->tensor = grow(g->arena, g->tensor, g->ntensor, &g->tcap, sizeof(Tensor));
	int id = g->ntensor++;
	Tensor *t = &g->tensor[id];
	memset(t, 0, sizeof *t);
	t->name = name ? arena_strdup(g->arena, name) : arena_printf(g->arena, "t%d", id);
	t->dtype = dt;
	t->kind = TK_VALUE;
	t->rank = rank;
	for (int i = 0; i < IR_MAXRANK; i++)
		t->dim[i] = i < rank && dim ? dim[i] : -1;
	t->producer = -1;
	t->off = -1;
	t->alias = -1;
	return id;
}

int ir_const_new(Graph *g, const char *name, DType dt, int rank, const int64_t *dim, const void *data)
{
	int id = ir_tensor_new(g, name, dt, rank, dim);
	Tensor *t = &g->tensor[id];
	t->kind = TK_CONST;
	size_t n = ir_nbytes(t);
	t->data = data ? arena_dup(g->arena, data, n) : arena_alloc(g->arena, n);
	return id;
}

int ir_node_new(Graph *g, Op op, const char *name, int nin, const int *in, int nout, const int *out)
{
	g->node = grow(g->arena, g->node, g->nnode, &g->ncap, sizeof(Node));
	int id = g->nnode++;
	Node *n = &g->node[id];
	memset(n, 0, sizeof *n);
	n->op = op;
	n->name = name && *name ? arena_strdup(g->arena, name)
	                        : arena_printf(g->arena, "%s_%d", ir_opname[op], id);
	n->nin = nin;
	n->nout = nout;
	n->in = arena_dup(g->arena, in, sizeof(int) * (size_t)nin);
	n->out = arena_dup(g->arena, out, sizeof(int) * (size_t)nout);
	for (int j = 0; j < nout; j++)
		if (out[j] >= 0)
			g->tensor[out[j]].producer = id;
	return id;
}

int64_t ir_numel(const Tensor *t)
{
	int64_t n = 1;
	for (int i = 0; i < t->rank; i++)
		n *= t->dim[i] < 0 ? 0 : t->dim[i];
	return n;
}

size_t ir_nbytes(const Tensor *t)
{
	return (size_t)ir_numel(t) * ir_dtype_size(t->dtype);
}

int ir_find_tensor(const Graph *g, const char *name)
{
	for (int i = 0; i < g->ntensor; i++)
		if (strcmp(g->tensor[i].name, name) == 0)
			return i;
	return -1;
}

int ir_consumers(const Graph *g, int tensor, int *nodes, int max)
{
	int k = 0;
	for (int i = 0; i < g->nnode; i++) {
		const Node *n = &g->node[i];
		if (n->dead)
			continue;
		for (int j = 0; j < n->nin; j++) {
			if (n->in[j] == tensor) {
				if (k < max)
					nodes[k] = i;
				k++;
				break;
			}
		}
	}
	return k;
}

int ir_is_const(const Graph *g, int t)
{
	return t >= 0 && t < g->ntensor && g->tensor[t].kind == TK_CONST;
}

double ir_load(DType t, const void *p, int64_t i)
{
	switch (t) {
	case DT_F32: return ((const float *)p)[i];
	case DT_F64: return ((const double *)p)[i];
	case DT_I8: return ((const int8_t *)p)[i];
	case DT_U8: return ((const uint8_t *)p)[i];
	case DT_I16: return ((const int16_t *)p)[i];
	case DT_U16: return ((const uint16_t *)p)[i];
	case DT_I32: return ((const int32_t *)p)[i];
	case DT_U32: return ((const uint32_t *)p)[i];
	case DT_I64: return (double)((const int64_t *)p)[i];
	case DT_BOOL: return ((const uint8_t *)p)[i] != 0;
	default: return 0;
	}
}

double ir_get(const Tensor *t, int64_t i)
{
	return ir_load(t->dtype, t->data, i);
}

/* The ops.def section "math, logic and bit ops": rows SIN to CUMSUM, kept
 * contiguous so this range is the whole list (ir/eval_math.c and
 * backends/c/kernels_math.c implement exactly these). */
int ir_is_math_op(Op op)
{
	return op >= OP_SIN && op <= OP_CUMSUM;
}

int64_t ir_get_i64(const Tensor *t, int64_t i)
{
	if (t->dtype == DT_I64)
		return ((const int64_t *)t->data)[i];
	return (int64_t)ir_get(t, i);
}

static void renumber(int *ids, int n, const int *map)
{
	for (int i = 0; i < n; i++)
		if (ids[i] >= 0)
			ids[i] = map[ids[i]];
}

/* Keep live nodes in order, and tensors that a live node touches or that are
 * graph inputs or outputs. */
void ir_compact(Graph *g)
{
	int *map = calloc((size_t)g->ntensor + 1, sizeof *map);
	char *used = calloc((size_t)g->ntensor + 1, 1);
	for (int i = 0; i < g->ninput; i++)
		used[g->input[i]] = 1;
	for (int i = 0; i < g->noutput; i++)
		used[g->output[i]] = 1;
	int nn = 0;
	for (int i = 0; i < g->nnode; i++) {
		Node *n = &g->node[i];
		if (n->dead)
			continue;
		for (int j = 0; j < n->nin; j++)
			if (n->in[j] >= 0)
				used[n->in[j]] = 1;
		for (int j = 0; j < n->nout; j++)
			if (n->out[j] >= 0)
				used[n->out[j]] = 1;
		g->node[nn++] = *n;
	}
	g->nnode = nn;
	int nt = 0;
	for (int i = 0; i < g->ntensor; i++) {
		map[i] = used[i] ? nt : -1;
		if (used[i])
			g->tensor[nt++] = g->tensor[i];
	}
	g->ntensor = nt;
	for (int i = 0; i < nn; i++) {
		renumber(g->node[i].in, g->node[i].nin, map);
		renumber(g->node[i].out, g->node[i].nout, map);
	}
	renumber(g->input, g->ninput, map);
	renumber(g->output, g->noutput, map);
	for (int i = 0; i < nt; i++) {
		Tensor *t = &g->tensor[i];
		t->producer = -1;
		if (t->alias >= 0)
			t->alias = map[t->alias];
	}
	for (int i = 0; i < nn; i++)
		for (int j = 0; j < g->node[i].nout; j++)
			if (g->node[i].out[j] >= 0)
				g->tensor[g->node[i].out[j]].producer = i;
	free(map);
	free(used);
}
