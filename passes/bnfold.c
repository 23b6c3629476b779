/* pass_bnfold: BatchNormalization merged into the Conv or Gemm before it.
 *
 * Requires: static shapes (pass_fold).  A BatchNormalization y = BN(x) is
 * merged when x is the float output of a Conv, or of a Gemm with a 2-D
 * output (BN over dim 1 = the Gemm's N), that no one else reads and that is
 * not a graph output, and the weights, bias and the four BN parameters are
 * all constant.
 * Establishes: the producer computes y directly from new constant weight and
 * bias tensors; the BN node is gone.  A lone BatchNormalization stays.
 *
 * Per output channel c, with s = scale[c] / sqrt(var[c] + eps):
 *   w'[c,...] = w[c,...] * s        b'[c] = (b[c] - mean[c]) * s + bias[c]
 * The fold is computed in double and stored as float.  The old weights are
 * never written: a weight may be shared with another node.
 */
#include <math.h>
#include <stdlib.h>

#include "passes.h"

enum { BN_SCALE = 1, BN_BIAS, BN_MEAN, BN_VAR };

/* A name no other tensor has, so generated symbols stay distinct. */
static const char *fresh_name(Graph *g, const char *base)
{
	const char *s = base;
	for (int k = 2; ir_find_tensor(g, s) >= 0; k++)
		s = arena_printf(g->arena, "%s_%d", base, k);
	return s;
}

static int new_f32(Graph *g, const char *base, int rank, const int64_t *dim)
{
	return ir_const_new(g, fresh_name(g, base), DT_F32, rank, dim, NULL);
}

/* s[c] = scale[c] / sqrt(var[c] + eps), or NULL if a BN parameter is not a
 * constant of C elements. */
static double *bn_factors(const Graph *g, const Node *bn, int64_t C)
{
	for (int j = BN_SCALE; j <= BN_VAR; j++)
		if (j >= bn->nin || !ir_is_const(g, bn->in[j]) || ir_numel(&g->tensor[bn->in[j]]) != C)
			return NULL;
	double *s = malloc(sizeof *s * (size_t)(C + 1));
	const Tensor *scale = &g->tensor[bn->in[BN_SCALE]];
	const Tensor *var = &g->tensor[bn->in[BN_VAR]];
	for (int64_t c = 0; c < C; c++)
		s[c] = ir_get(scale, c) / sqrt(ir_get(var, c) + (double)bn->a.bn.eps);
	return s;
}

/* b' = (b - mean) * s + bias for channel c, b the producer's own bias. */
static float fold_bias(const Graph *g, const Node *bn, const double *s, int64_t c, double b)
{
	double mean = ir_get(&g->tensor[bn->in[BN_MEAN]], c);
	double bias = ir_get(&g->tensor[bn->in[BN_BIAS]], c);
	return (float)((b - mean) * s[c] + bias);
}

static int is_f32_const(const Graph *g, int t)
{
	return ir_is_const(g, t) && g->tensor[t].dtype == DT_F32;
}

/* Give node p a third input slot (bias / C) if it has fewer. */
static void set_in2(Graph *g, Node *p, int t)
{
	if (p->nin < 3) {
		int *in = arena_alloc(g->arena, sizeof(int) * 3);
		for (int j = 0; j < 3; j++)
			in[j] = j < p->nin ? p->in[j] : -1;
		p->in = in;
		p->nin = 3;
	}
	p->in[2] = t;
}

/* Conv: w[M, C/g, k...], b[M]? */
static int fold_conv(Graph *g, int pi, const Node *bn)
{
	Node *p = &g->node[pi];
	int wi = p->in[1], bi = p->nin > 2 ? p->in[2] : -1;
	if (!is_f32_const(g, wi) || g->tensor[wi].rank < 1 || (bi >= 0 && !is_f32_const(g, bi)))
		return 0;
	int64_t M = g->tensor[wi].dim[0];
	if (bi >= 0 && ir_numel(&g->tensor[bi]) != M)
		return 0;
	double *s = bn_factors(g, bn, M);
	if (!s)
		return 0;
	Tensor w0 = g->tensor[wi];
	int nw = new_f32(g, arena_printf(g->arena, "%s_w", bn->name), w0.rank, w0.dim);
	int nb = new_f32(g, arena_printf(g->arena, "%s_b", bn->name), 1, &M);
	float *w = g->tensor[nw].data, *b = g->tensor[nb].data;
	int64_t per = M ? ir_numel(&w0) / M : 0;
	for (int64_t m = 0; m < M; m++) {
		for (int64_t k = 0; k < per; k++)
			w[m * per + k] = (float)(ir_get(&w0, m * per + k) * s[m]);
		b[m] = fold_bias(g, bn, s, m, bi >= 0 ? ir_get(&g->tensor[bi], m) : 0.0);
	}
	p = &g->node[pi];
	p->in[1] = nw;
	set_in2(g, p, nb);
	free(s);
	return 1;
}

/* Element (m, n) of Gemm's C under unidirectional broadcast to [M, N]. */
static double c_at(const Tensor *c, int64_t m, int64_t n)
{
	if (c->rank == 0)
		return ir_get(c, 0);
	if (c->rank == 1)
		return ir_get(c, c->dim[0] == 1 ? 0 : n);
	int64_t r = c->dim[0] == 1 ? 0 : m, k = c->dim[1] == 1 ? 0 : n;
	return ir_get(c, r * c->dim[1] + k);
}

/* 1 if C (broadcast to [M, N]) varies along M, 0 if not, -1 if it does
 * not broadcast.  A C that varies along M is materialised as [M, N], any
 * other as [N]. */
static int c_varies_m(const Tensor *c, int64_t M, int64_t N)
{
	if (c->rank > 2 || (c->rank >= 1 && c->dim[c->rank - 1] != 1 && c->dim[c->rank - 1] != N))
		return -1;
	if (c->rank == 2 && c->dim[0] != 1 && c->dim[0] != M)
		return -1;
	return c->rank == 2 && c->dim[0] != 1;
}

/* Gemm: Y = alpha*op(A)op(B) + beta*C, BN over N.  Scaling column n of
 * op(B) by s[n] scales Y's column n; C' = (beta*C - mean)*s + bias and
 * beta becomes 1.  alpha stays as it is. */
static int fold_gemm(Graph *g, int pi, const Node *bn)
{
	Node *p = &g->node[pi];
	const Tensor *y = &g->tensor[p->out[0]];
	int bi = p->in[1], ci = p->nin > 2 ? p->in[2] : -1;
	if (y->rank != 2 || !is_f32_const(g, bi) || g->tensor[bi].rank != 2
	    || (ci >= 0 && !is_f32_const(g, ci)))
		return 0;
	int64_t M = y->dim[0], N = y->dim[1];
	if (g->tensor[bi].dim[p->a.gemm.tb ? 0 : 1] != N)
		return 0;
	int vm = ci >= 0 ? c_varies_m(&g->tensor[ci], M, N) : 0;
	if (vm < 0)
		return 0;
	int64_t cM = vm ? M : 1;
	double *s = bn_factors(g, bn, N);
	if (!s)
		return 0;
	Tensor b0 = g->tensor[bi];
	int64_t cdim[2] = {cM, N};
	int nbw = new_f32(g, arena_printf(g->arena, "%s_w", bn->name), 2, b0.dim);
	int nc = new_f32(g, arena_printf(g->arena, "%s_b", bn->name), vm ? 2 : 1, vm ? cdim : &N);
	float *w = g->tensor[nbw].data, *c = g->tensor[nc].data;
	p = &g->node[pi];
	for (int64_t r = 0; r < b0.dim[0]; r++)
		for (int64_t k = 0; k < b0.dim[1]; k++)
			w[r * b0.dim[1] + k] = (float)(ir_get(&b0, r * b0.dim[1] + k) * s[p->a.gemm.tb ? r : k]);
	for (int64_t m = 0; m < cM; m++)
		for (int64_t n = 0; n < N; n++) {
			double cv = ci >= 0 ? (double)p->a.gemm.beta * c_at(&g->tensor[ci], m, n) : 0.0;
			c[m * N + n] = fold_bias(g, bn, s, n, cv);
		}
	p->in[1] = nbw;
	set_in2(g, p, nc);
	p->a.gemm.beta = 1.0f;
	free(s);
	return 1;
}

/* The producer of BN node i's input if it may absorb the BN, else -1. */
static int absorber(const Graph *g, int i)
{
	const Node *bn = &g->node[i];
	int x = bn->in[0];
	if (x < 0 || g->tensor[x].kind != TK_VALUE || g->tensor[x].is_output
	    || g->tensor[x].dtype != DT_F32)
		return -1;
	int p = g->tensor[x].producer, c;
	if (p < 0 || g->node[p].dead || g->node[p].out[0] != x || g->node[p].act.kind != ACT_NONE)
		return -1;
	if (g->node[p].op != OP_CONV && g->node[p].op != OP_GEMM)
		return -1;
	if (g->node[p].nin < 2 || ir_consumers(g, x, &c, 1) != 1)
		return -1;
	return p;
}

static void fold_bn(Graph *g, int i)
{
	int p = absorber(g, i);
	if (p < 0)
		return;
	Node *bn = &g->node[i];
	int ok = g->node[p].op == OP_CONV ? fold_conv(g, p, bn) : fold_gemm(g, p, bn);
	if (!ok)
		return;
	bn = &g->node[i];
	int y = bn->out[0];
	g->node[p].out[0] = y;
	g->node[p].act = bn->act;
	g->tensor[y].producer = p;
	bn->dead = 1;
}

int pass_bnfold(Graph *g, Diag *d)
{
	(void)d;
	for (int i = 0; i < g->nnode; i++)
		if (!g->node[i].dead && g->node[i].op == OP_BATCHNORM && g->node[i].nin == 5)
			fold_bn(g, i);
	ir_compact(g);
	return 0;
}
