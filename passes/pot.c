/* Power-of-two weights (--weights pot|apot, docs/integer-semantics.md).
 *
 * qchoose gave every weight a uniform per-channel Quant; here the weights
 * of each Conv/Gemm/MatMul become PoT or APoT codes of --wbits bits (a
 * --layer wbits override: that width, or uniform weights of that width
 * above 6 bits, where code levels would leave int32).  Kept uniform: with keep_first_last
 * the first and last such layers (at 8 bits, where the rounding of a few
 * input channels or of the logits costs most), and layers qchoose kept at 8
 * bits for their short reductions (SMALL_K there: a 3x3 depthwise conv has
 * too few terms for the errors to average out; 4-bit PoT hurts them more
 * than uniform 4 bits).
 *
 * The scale of output channel c minimises the channel's output error on
 * the calibration data.  The exact criterion, (w - w^)^T Sigma (w - w^)
 * with Sigma the second moments of the input patch, needs a K x K matrix
 * per layer (3136^2 for a Gemm after a 7x7x64 map) accumulated over every
 * patch of every sample; we keep its diagonal: the squared weight error
 * weighted by the mean square E[x_k^2] of the input feature k the weight
 * multiplies (a Conv's input channel, averaged over positions; a Gemm's or
 * MatMul's input column).  It drops the cross terms, whose mean part the
 * bias correction of pass_qlower removes anyway.  The moments come from one
 * run of the float evaluator over the calibration samples.
 *
 * Candidate scales: fixed point, 2^-f for f0 - 2 .. f0 + 3, f0 the largest
 * f whose top level still covers max|w_c|; affine, max|w_c| / top level
 * times 0.5 .. 1 (PoT levels repeat every octave, so one octave of factors
 * reaches every placement). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

enum { FBELOW = 2, FABOVE = 3, KEEP_BITS = 8, MAX_CODE_BITS = 6 };

/* Per-feature mean squares of the input of every weighted node. */
typedef struct {
	Graph *g;
	int *slot;          /* tensor id -> index into feat/msq, -1 = not observed */
	int *axis;          /* per slot: the feature axis of that tensor */
	double **msq;       /* per slot: sums of x^2 per feature, then means */
	int64_t *cnt;       /* per slot: elements summed per feature */
} Moments;

/* The weight-carrying nodes: Conv/Gemm/MatMul with a per-channel uniform
 * Quant on a float constant input 1. */
static int is_weighted(const Graph *g, const Node *n, int *axis)
{
	if (n->dead || n->nin < 2 || !ir_is_const(g, n->in[1]))
		return 0;
	const Tensor *w = &g->tensor[n->in[1]];
	if (w->dtype != DT_F32 || !w->q || w->q->code != WQ_UNIFORM)
		return 0;
	switch (n->op) {
	case OP_CONV: *axis = 0; break;
	case OP_GEMM: *axis = n->a.gemm.tb ? 0 : 1; break;
	case OP_MATMUL: *axis = 1; break;
	default: return 0;
	}
	return (n->op == OP_CONV || w->rank == 2) && w->q->axis == *axis && w->q->nch == w->dim[*axis];
}

/* The axis of input x that the reduction runs over per feature. */
static int feature_axis(const Node *n, const Tensor *x)
{
	if (n->op == OP_CONV)
		return 1;
	if (n->op == OP_GEMM)
		return n->a.gemm.ta ? 0 : 1;
	return x->rank - 1;
}

static int64_t inner_of(const Tensor *t, int axis)
{
	int64_t p = 1;
	for (int k = axis + 1; k < t->rank; k++)
		p *= t->dim[k];
	return p;
}

static void record(Moments *m, int t, const void *data)
{
	int s = m->slot[t];
	if (s < 0)
		return;
	const Tensor *x = &m->g->tensor[t];
	int a = m->axis[s];
	int64_t n = ir_numel(x), in = inner_of(x, a), nf = x->dim[a];
	const float *v = data;
	for (int64_t i = 0; i < n; i++)
		m->msq[s][(i / in) % nf] += (double)v[i] * v[i];
	m->cnt[s] += n / nf;
}

static void observe(void *ctx, const Graph *g, int t, const void *data)
{
	(void)g;
	record(ctx, t, data);
}

/* Mean squares of the inputs of the listed nodes over the calibration
 * samples; 1 on an evaluation error. */
static int moments(Graph *g, const int *nodes, int nn, Moments *m, Diag *d)
{
	const QuantConfig *q = g->qcfg;
	m->g = g;
	m->slot = arena_alloc(g->arena, (size_t)g->ntensor * sizeof *m->slot);
	m->axis = arena_alloc(g->arena, (size_t)nn * sizeof *m->axis);
	m->msq = arena_alloc(g->arena, (size_t)nn * sizeof *m->msq);
	m->cnt = arena_alloc(g->arena, (size_t)nn * sizeof *m->cnt);
	for (int t = 0; t < g->ntensor; t++)
		m->slot[t] = -1;
	int ns = 0;
	for (int k = 0; k < nn; k++) {
		const Node *n = &g->node[nodes[k]];
		const Tensor *x = &g->tensor[n->in[0]];
		if (m->slot[n->in[0]] >= 0 || x->dtype != DT_F32)
			continue;
		m->axis[ns] = feature_axis(n, x);
		m->msq[ns] = arena_alloc(g->arena, (size_t)x->dim[m->axis[ns]] * sizeof **m->msq);
		m->slot[n->in[0]] = ns++;
	}
	for (int64_t s = 0; s < q->nsamples && g->ninput <= QC_MAXIN; s++) {
		const void *in[QC_MAXIN];
		for (int i = 0; i < g->ninput; i++) {
			in[i] = q->samples[i] + s * ir_numel(&g->tensor[g->input[i]]);
			record(m, g->input[i], in[i]);
		}
		if (ir_eval(g, in, NULL, observe, m, d))
			return 1;
	}
	for (int s = 0; s < ns; s++) {
		int64_t nf = 0;
		for (int t = 0; t < g->ntensor; t++)
			if (m->slot[t] == s)
				nf = g->tensor[t].dim[m->axis[s]];
		for (int64_t f = 0; f < nf; f++)
			m->msq[s][f] = m->cnt[s] ? m->msq[s][f] / (double)m->cnt[s] : 1;
	}
	return 0;
}

/* Channel c's weights as values and the weight each gets in the error. */
typedef struct {
	int64_t n;
	double *v, *wt;
} Chan;

/* Gather output channel c of node nd's weight: its values and the mean
 * square of the input feature each multiplies (1 without calibration). */
static void gather(const Graph *g, const Node *nd, int axis, const double *msq, int64_t c, Chan *ch)
{
	const Tensor *w = &g->tensor[nd->in[1]];
	const float *x = w->data;
	int64_t nch = w->dim[axis], inner = inner_of(w, axis), k = 0;
	int64_t outer = ir_numel(w) / (nch * inner);
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++) {
			int64_t f;
			if (nd->op == OP_CONV) {
				/* [M, C/group, k...]: input channel of group (c / (M/group)) */
				int64_t cg = w->dim[1], ksz = inner / cg, grp = nd->a.win.group > 0 ? nd->a.win.group : 1;
				f = c / (nch / grp) * cg + i / ksz;
			} else {
				f = axis == 0 ? i : o;   /* [N, K] (tb) or [K, N] */
			}
			ch->v[k] = x[(o * nch + c) * inner + i];
			ch->wt[k++] = msq ? msq[f] : 1;
		}
	ch->n = k;
}

/* The weighted squared error of channel c's codes at q's current scale. */
static double chan_err(const Quant *q, int c, const Chan *ch)
{
	double e = 0;
	for (int64_t k = 0; k < ch->n; k++) {
		double r = ch->v[k] - q->scale[c] * ir_wdecode(q, ir_wencode(q, c, ch->v[k]));
		e += ch->wt[k] * r * r;
	}
	return e;
}

static void set_scale(Quant *q, int c, double s, int f)
{
	q->scale[c] = s;
	if (q->frac)
		q->frac[c] = f;
}

/* The scale of channel c among the candidates (header comment). */
static void choose_scale(Quant *q, int c, const Chan *ch)
{
	double amax = 0;
	for (int64_t k = 0; k < ch->n; k++)
		amax = fmax(amax, fabs(ch->v[k]));
	double top = ir_wdecode(q, (1 << (q->bits - 1)) - 1);
	if (!(amax > 0)) {
		set_scale(q, c, 1, 0);
		return;
	}
	double beste = INFINITY, bests = 1;
	int bestf = 0;
	if (q->frac) {
		int f0 = (int)floor(log2(top / amax));
		for (int f = f0 - FBELOW; f <= f0 + FABOVE; f++) {
			set_scale(q, c, ldexp(1.0, -f), f);
			double e = chan_err(q, c, ch);
			if (e < beste) {
				beste = e;
				bestf = f;
			}
		}
		set_scale(q, c, ldexp(1.0, -bestf), bestf);
		return;
	}
	for (int k = 20; k >= 10; k--) {
		set_scale(q, c, amax / top * k / 20, 0);
		double e = chan_err(q, c, ch);
		if (e < beste) {
			beste = e;
			bests = q->scale[c];
		}
	}
	set_scale(q, c, bests, 0);
}

/* Uniform symmetric weights of `bits`, chosen as qchoose does: fixed, the
 * least squared error among f0 .. f0 + 4 (f0 alone under --bp max);
 * affine, among 0.5 .. 1 times the max-based scale. */
static void uniform_channel(Quant *q, int c, const Chan *ch, int bp_max)
{
	double amax = 0;
	for (int64_t k = 0; k < ch->n; k++)
		amax = fmax(amax, fabs(ch->v[k]));
	double beste = INFINITY, best = 1;
	int bestf = 0, f0 = amax > 0 ? q->bits - 1 - (int)ceil(log2(amax)) : q->bits - 1;
	int nk = q->frac ? (bp_max ? 1 : 5) : 11;
	for (int k = 0; k < nk; k++) {
		int f = f0 + k;
		double s = q->frac ? ldexp(1.0, -f) : (amax > 0 ? amax / ir_qmax(q) : 1) * (20 - k) / 20;
		set_scale(q, c, s, f);
		double e = 0;
		for (int64_t i = 0; i < ch->n; i++) {
			double r = ch->v[i] - ir_dequantize(q, c, ir_quantize(q, c, ch->v[i]));
			e += r * r;
		}
		if (e < beste) {
			beste = e;
			best = s;
			bestf = f;
		}
	}
	set_scale(q, c, best, bestf);
}

/* --layer NAME:wbits=N for node n, 0 if none. */
static int layer_wbits(const Graph *g, int n)
{
	const QuantConfig *q = g->qcfg;
	for (int i = 0; i < q->nlayer; i++)
		if (strcmp(q->layer[i].node, g->node[n].name) == 0)
			return q->layer[i].wbits;
	return 0;
}

/* Node n's weights: codes of `bits` (code != WQ_UNIFORM) or uniform of
 * `bits` re-chosen; msq the input's feature mean squares or NULL. */
static void convert(Graph *g, int n, int axis, int code, int bits, const double *msq)
{
	const Node *nd = &g->node[n];
	Tensor *w = &g->tensor[nd->in[1]];
	Quant *q = w->q;
	int64_t nch = w->dim[axis], per = ir_numel(w) / nch;
	Chan ch = {0, malloc((size_t)per * sizeof *ch.v + 1), malloc((size_t)per * sizeof *ch.wt + 1)};
	q->code = code;
	q->bits = bits;
	for (int c = 0; c < q->nch; c++)
		q->zp[c] = 0;
	for (int64_t c = 0; c < nch; c++) {
		gather(g, nd, axis, msq, c, &ch);
		if (code == WQ_UNIFORM)
			uniform_channel(q, (int)c, &ch, g->qcfg->bp_max);
		else
			choose_scale(q, (int)c, &ch);
	}
	free(ch.v);
	free(ch.wt);
}

int pass_pot(Graph *g, Diag *d)
{
	const QuantConfig *cfg = g->qcfg;
	if (!cfg || cfg->weights == WQ_UNIFORM)
		return 0;
	if (cfg->wbits < 2 || cfg->wbits > MAX_CODE_BITS)
		return ir_error(d, g, -1, "power-of-two weights take 2..%d bits, not %d (larger "
		                "codes name levels beyond int32)", MAX_CODE_BITS, cfg->wbits), 1;
	int *nodes = arena_alloc(g->arena, (size_t)(g->nnode + 1) * sizeof *nodes);
	int *axes = arena_alloc(g->arena, (size_t)(g->nnode + 1) * sizeof *axes), nn = 0;
	for (int n = 0; n < g->nnode; n++)
		if (is_weighted(g, &g->node[n], &axes[nn]))
			nodes[nn++] = n;
	Moments m = {0};
	if (nn && moments(g, nodes, nn, &m, d))
		return 1;
	for (int k = 0; k < nn; k++) {
		int n = nodes[k], lb = layer_wbits(g, n);
		const Node *nd = &g->node[n];
		Quant *q = g->tensor[nd->in[1]].q;
		if (q->code != WQ_UNIFORM)
			continue;                   /* a weight two nodes share: done */
		int s = m.slot && m.slot[nd->in[0]] >= 0 ? m.slot[nd->in[0]] : -1;
		const double *msq = s >= 0 ? m.msq[s] : NULL;
		if (!lb && cfg->keep_first_last && (k == 0 || k == nn - 1)) {
			if (q->bits != KEEP_BITS)
				convert(g, n, axes[k], WQ_UNIFORM, KEEP_BITS, msq);
			continue;
		}
		/* qchoose kept a short-reduction layer wide; an override wider
		 * than any code stays uniform (levels would leave int32) */
		if ((!lb && q->bits != cfg->wbits) || lb > MAX_CODE_BITS)
			continue;
		convert(g, n, axes[k], cfg->weights, lb ? lb : cfg->wbits, msq);
	}
	return 0;
}
