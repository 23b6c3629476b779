/* pass_fuse: activations folded into the node that computes their input.
 *
 * Requires: topological order, static shapes.
 * Establishes: an activation A(x) (Relu, Clip with constant scalar bounds,
 * LeakyRelu, HardSigmoid, HardSwish, Sigmoid) on float32 is gone when x is
 * the first output of a Conv, Gemm, MatMul, Add, MaxPool, AveragePool or
 * GlobalAveragePool with no fused activation yet, x is read by A alone and
 * is not a graph output: that producer now writes A's output with act set.
 * Everything else is left as it was.
 */
#include <math.h>

#include "passes.h"

static int can_absorb(Op op)
{
	switch (op) {
	case OP_CONV: case OP_GEMM: case OP_MATMUL: case OP_ADD:
	case OP_MAXPOOL: case OP_AVGPOOL: case OP_GAVGPOOL:
		return 1;
	default:
		return 0;
	}
}

/* A Clip bound: absent is unbounded; present must be a constant scalar. */
static int clip_bound(const Graph *g, const Node *n, int j, float none, float *v)
{
	int t = j < n->nin ? n->in[j] : -1;
	if (t < 0) {
		*v = none;
		return 1;
	}
	if (!ir_is_const(g, t) || ir_numel(&g->tensor[t]) != 1)
		return 0;
	*v = (float)ir_get(&g->tensor[t], 0);
	return 1;
}

/* The Act node n computes, or ACT_NONE if it is not a fusable activation. */
static Act act_of(const Graph *g, const Node *n)
{
	Act a = {ACT_NONE, 0, 0};
	switch (n->op) {
	case OP_RELU: a.kind = ACT_RELU; break;
	case OP_LEAKYRELU: a.kind = ACT_LEAKY; a.a = n->a.ab.alpha; break;
	case OP_HARDSIGMOID: a = (Act){ACT_HSIGMOID, n->a.ab.alpha, n->a.ab.beta}; break;
	case OP_HARDSWISH: a.kind = ACT_HSWISH; break;
	case OP_SIGMOID: a.kind = ACT_SIGMOID; break;
	case OP_CLIP:
		if ((n->nin < 2 || n->in[1] < 0) && (n->nin < 3 || n->in[2] < 0))
			break;   /* no bounds: an identity, not worth an Act */
		if (clip_bound(g, n, 1, -INFINITY, &a.a) && clip_bound(g, n, 2, INFINITY, &a.b))
			a.kind = ACT_CLIP;
		break;
	default: break;
	}
	/* Integer code clamps a Relu or Clip into the store for free; any other
	 * activation needs its input requantized first, so it stays a node. */
	if (g->qcfg && a.kind != ACT_RELU && a.kind != ACT_CLIP)
		a.kind = ACT_NONE;
	return a;
}

/* The node that may absorb activation node n, or -1. */
static int absorber(const Graph *g, const Node *n)
{
	int x = n->nin > 0 ? n->in[0] : -1, c;
	if (x < 0 || n->nout < 1 || n->out[0] < 0 || n->act.kind != ACT_NONE)
		return -1;
	const Tensor *X = &g->tensor[x];
	if (X->kind != TK_VALUE || X->is_output || X->dtype != DT_F32 || X->producer < 0)
		return -1;
	const Node *p = &g->node[X->producer];
	/* A quantized MaxPool moves integers untouched (no QNode to clamp in). */
	if (p->dead || !can_absorb(p->op) || (g->qcfg && p->op == OP_MAXPOOL) || p->act.kind != ACT_NONE || p->out[0] != x)
		return -1;
	if (g->tensor[n->out[0]].dtype != DT_F32 || ir_consumers(g, x, &c, 1) != 1)
		return -1;
	return X->producer;
}

/* Is tensor t the output of a HardSigmoid(x; 1/6, 1/2) read only by the
 * Mul being looked at?  Then x, else -1. */
static int hsig_of_x(const Graph *g, int t)
{
	const Tensor *T = &g->tensor[t];
	int c;
	if (T->kind != TK_VALUE || T->is_output || T->dtype != DT_F32 || T->producer < 0)
		return -1;
	const Node *h = &g->node[T->producer];
	if (h->dead || h->op != OP_HARDSIGMOID || h->act.kind != ACT_NONE || h->nin < 1 || h->in[0] < 0)
		return -1;
	if (fabsf(h->a.ab.alpha - 1.0f / 6) > 1e-6f || h->a.ab.beta != 0.5f)
		return -1;
	if (g->tensor[h->in[0]].dtype != DT_F32 || ir_consumers(g, t, &c, 1) != 1)
		return -1;
	return h->in[0];
}

/* Mul(x, HardSigmoid(x)) or Mul(HardSigmoid(x), x) -> HardSwish(x). */
static void hswish_patterns(Graph *g)
{
	for (int i = 0; i < g->nnode; i++) {
		Node *m = &g->node[i];
		if (m->dead || m->op != OP_MUL || m->nin != 2 || m->act.kind != ACT_NONE || m->in[0] < 0 ||
		    m->in[1] < 0)
			continue;
		for (int j = 0; j < 2; j++) {
			int h = m->in[j], x = m->in[1 - j];
			if (hsig_of_x(g, h) != x)
				continue;
			g->node[g->tensor[h].producer].dead = 1;
			m->op = OP_HARDSWISH;
			m->nin = 1;
			m->in[0] = x;
			m->a = (Attr){0};
			break;
		}
	}
}

int pass_fuse(Graph *g, Diag *d)
{
	(void)d;
	hswish_patterns(g);
	for (int i = 0; i < g->nnode; i++) {
		Node *n = &g->node[i];
		if (n->dead)
			continue;
		Act a = act_of(g, n);
		int p = a.kind != ACT_NONE ? absorber(g, n) : -1;
		if (p < 0)
			continue;
		g->node[p].act = a;
		g->node[p].out[0] = n->out[0];
		g->tensor[n->out[0]].producer = p;
		n->dead = 1;
	}
	ir_compact(g);
	return 0;
}
