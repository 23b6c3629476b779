/* Choosing each float tensor's quantization (RESEARCH.md section 1).
 *
 * Fixed point: a tensor of b bits with binary point f holds q * 2^-f.  The
 * max-based point f0 = (b - 1) - ceil(log2 amax) (b - ceil(log2 max) when
 * the tensor is never negative and so unsigned) never clips; clipping the
 * rare outliers buys resolution for everything else, so --bp mse tries
 * f0 .. f0 + 4 and keeps the least mean squared error over the calibration
 * histogram (rounding error Delta^2 / 12 inside the range, the exact
 * squared excess outside).  Weights: per output channel, the same search
 * scored exactly on the weights themselves.
 *
 * Affine: activations unsigned with a zero point over [min(0, lo),
 * max(0, hi)]; weights symmetric per channel with the scale that minimises
 * the weights' squared error among 0.5 .. 1 times the max-based one.
 *
 * Tensors a data-movement node passes through (Reshape, MaxPool, ...) share
 * one Quant with their source, so those nodes move integers untouched. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

/* FSEARCH: binary points tried past the max-based one.  SMALL_K: a layer
 * whose every output sums at most this many products (a first conv on one
 * channel, a 3x3 depthwise conv) keeps 8-bit weights under --wbits < 8:
 * with so few terms the rounding errors do not average out (MobileNet's
 * depthwise layers at 4 bits cost 6 points of accuracy, at 8 bits under 1),
 * and such layers hold a few percent of the weight bytes.  --layer
 * NAME:wbits=N overrides it. */
enum { FSEARCH = 4, SMALL_K = 16 };

/* The node's bits override (--layer NAME:...), 0 if none. */
static int layer_bits(const Graph *g, int node, int weights)
{
	const QuantConfig *q = g->qcfg;
	if (node < 0)
		return 0;
	for (int i = 0; i < q->nlayer; i++)
		if (strcmp(q->layer[i].node, g->node[node].name) == 0)
			return weights ? q->layer[i].wbits : q->layer[i].abits;
	return 0;
}

static int moves_data(Op op)
{
	switch (op) {
	case OP_IDENTITY: case OP_DROPOUT: case OP_RESHAPE: case OP_FLATTEN: case OP_SQUEEZE:
	case OP_UNSQUEEZE: case OP_TRANSPOSE: case OP_MAXPOOL: case OP_PAD: case OP_SLICE:
	case OP_GATHER: case OP_SPLIT: case OP_EXPAND: case OP_TILE: case OP_DEPTHTOSPACE:
	case OP_SPACETODEPTH: case OP_RESIZE:
		return 1;
	default:
		return 0;
	}
}

/* Is input j of node n a weight (quantized per output channel)?  Sets the
 * channel axis. */
static int weight_axis(const Graph *g, const Node *n, int j, int *axis)
{
	if (j != 1 || !ir_is_const(g, n->in[1]))
		return 0;
	const Tensor *w = &g->tensor[n->in[1]];
	switch (n->op) {
	case OP_CONV: *axis = 0; return 1;
	case OP_GEMM: *axis = n->a.gemm.tb ? 0 : 1; return w->rank == 2;
	case OP_MATMUL: *axis = 1; return w->rank == 2;
	default: return 0;
	}
}

/* Expected squared error of quantizing the histogram with step 2^-f over
 * [lo, hi] (real units). */
static double hist_mse(const QStats *s, double step, double lo, double hi)
{
	double w = 2 * s->amax / QSTATS_BINS, e = 0;
	for (int b = 0; b < QSTATS_BINS; b++) {
		if (s->hist[b] == 0)
			continue;
		double x = -s->amax + (b + 0.5) * w;
		double over = x > hi ? x - hi : x < lo ? lo - x : 0;
		e += s->hist[b] * (over > 0 ? over * over : step * step / 12);
	}
	return e;
}

static int max_point(double amax, int bits, int is_unsigned)
{
	if (!(amax > 0))
		return bits - 1;
	return (is_unsigned ? bits : bits - 1) - (int)ceil(log2(amax));
}

static void set_frac(Quant *q, int c, int f)
{
	q->frac[c] = f;
	q->scale[c] = ldexp(1.0, -f);
}

static Quant *fixed_act(const Graph *g, const QStats *s, int bits, int bp_max)
{
	int u = s->min >= 0;
	Quant *q = ir_quant_new(g->arena, 1, -1, bits, u);
	q->frac = arena_alloc(g->arena, sizeof *q->frac);
	int f0 = max_point(u ? s->max : s->amax, bits, u), best = f0;
	double beste = INFINITY;
	for (int f = f0; f <= f0 + (bp_max || !s->hist ? 0 : FSEARCH); f++) {
		double step = ldexp(1.0, -f);
		double e = s->hist ? hist_mse(s, step, ir_qmin(q) * step, ir_qmax(q) * step) : 0;
		if (e < beste) {
			beste = e;
			best = f;
		}
	}
	set_frac(q, 0, best);
	return q;
}

static Quant *affine_act(const Graph *g, const QStats *s, int bits)
{
	Quant *q = ir_quant_new(g->arena, 1, -1, bits, 1);
	double lo = fmin(0, s->min), hi = fmax(0, s->max);
	if (!(hi > lo))
		hi = lo + 1;
	q->scale[0] = (hi - lo) / ir_qmax(q);
	double z = -lo / q->scale[0];
	q->zp[0] = (int32_t)floor(z + 0.5);
	return q;
}

/* Squared error of channel c's n values x[i * st] at scale s, zp 0. */
static double weight_mse(const Quant *q, int c, const float *x, int64_t n, int64_t st)
{
	double e = 0;
	for (int64_t i = 0; i < n; i++) {
		double v = x[i * st];
		double d = v - ir_dequantize(q, c, ir_quantize(q, c, v));
		e += d * d;
	}
	return e;
}

static void choose_channel(Quant *q, int c, const float *x, int64_t n, int64_t st, int bp_max)
{
	double amax = 0;
	for (int64_t i = 0; i < n; i++)
		amax = fmax(amax, fabs(x[i * st]));
	if (q->frac) {
		int f0 = max_point(amax, q->bits, 0), best = f0;
		double beste = INFINITY;
		for (int f = f0; f <= f0 + (bp_max ? 0 : FSEARCH); f++) {
			set_frac(q, c, f);
			double e = weight_mse(q, c, x, n, st);
			if (e < beste) {
				beste = e;
				best = f;
			}
		}
		set_frac(q, c, best);
		return;
	}
	double s0 = amax > 0 ? amax / ir_qmax(q) : 1, best = s0, beste = INFINITY;
	for (int k = 20; k >= 10; k--) {
		q->scale[c] = s0 * k / 20;
		double e = weight_mse(q, c, x, n, st);
		if (e < beste) {
			beste = e;
			best = q->scale[c];
		}
	}
	q->scale[c] = best;
}

static int64_t prod(const Tensor *t, int from, int to)
{
	int64_t p = 1;
	for (int k = from; k < to; k++)
		p *= t->dim[k];
	return p;
}

static Quant *weights(const Graph *g, const Tensor *w, int axis, int bits)
{
	const QuantConfig *cfg = g->qcfg;
	int64_t nch = w->dim[axis], inner = prod(w, axis + 1, w->rank), outer = prod(w, 0, axis);
	Quant *q = ir_quant_new(g->arena, (int)nch, axis, bits, 0);
	if (cfg->mode == QM_FIXED)
		q->frac = arena_alloc(g->arena, (size_t)nch * sizeof *q->frac);
	const float *x = w->data;
	float *buf = malloc((size_t)(outer * inner) * sizeof *buf + 1);
	for (int64_t c = 0; c < nch; c++) {
		/* channel c's elements: (o * nch + c) * inner + i */
		for (int64_t o = 0; o < outer; o++)
			memcpy(buf + o * inner, x + (o * nch + c) * inner, (size_t)inner * sizeof *buf);
		choose_channel(q, (int)c, buf, outer * inner, 1, cfg->bp_max);
	}
	free(buf);
	return q;
}

/* Range statistics of a float constant operand (Add's bias, Mul's scale). */
static QStats const_stats(const Tensor *t)
{
	QStats s = {INFINITY, -INFINITY, 0, NULL, 0, 0};
	for (int64_t i = 0; i < ir_numel(t); i++) {
		double v = ((const float *)t->data)[i];
		s.min = fmin(s.min, v);
		s.max = fmax(s.max, v);
	}
	s.amax = fmax(fabs(s.min), fabs(s.max));
	return s;
}

static Quant *activation(const Graph *g, const QStats *s, int bits)
{
	if (g->qcfg->mode == QM_AFFINE)
		return affine_act(g, s, bits);
	return fixed_act(g, s, bits, g->qcfg->bp_max);
}

static int choose_output(Graph *g, int n, Diag *d)
{
	const Node *nd = &g->node[n];
	int bits = layer_bits(g, n, 0);
	bits = bits ? bits : g->qcfg->abits;
	for (int j = 0; j < nd->nout; j++) {
		Tensor *t = nd->out[j] >= 0 ? &g->tensor[nd->out[j]] : NULL;
		if (!t || t->dtype != DT_F32 || t->q)
			continue;
		if (moves_data(nd->op)) {
			t->q = g->tensor[nd->in[0]].q;
			continue;
		}
		if (!t->st || t->st->count == 0) {
			ir_error(d, g, n, "tensor \"%s\" has no calibration statistics: give --calib FILE", t->name);
			return 1;
		}
		t->q = activation(g, t->st, bits);
	}
	return 0;
}

/* Weights and float constant operands of node n. */
static void choose_inputs(Graph *g, int n)
{
	const Node *nd = &g->node[n];
	for (int j = 0; j < nd->nin; j++) {
		Tensor *t = nd->in[j] >= 0 ? &g->tensor[nd->in[j]] : NULL;
		int axis;
		if (!t || t->kind != TK_CONST || t->dtype != DT_F32 || t->q)
			continue;
		if (weight_axis(g, nd, j, &axis)) {
			int bits = layer_bits(g, n, 1);
			if (!bits)
				bits = g->qcfg->wbits < 8 && ir_numel(t) / t->dim[axis] <= SMALL_K ? 8 : g->qcfg->wbits;
			t->q = weights(g, t, axis, bits);
		} else if (nd->op == OP_ADD || nd->op == OP_SUB || nd->op == OP_MUL || nd->op == OP_CONCAT) {
			QStats s = const_stats(t);
			Quant *q = activation(g, &s, g->qcfg->abits);
			t->q = q;
		}
		/* biases, Clip bounds, Pad values: pass_qlower, from their consumers */
	}
}

/* Every --layer names a node of the graph (as the dump shows them). */
static int check_layers(const Graph *g, Diag *d)
{
	const QuantConfig *q = g->qcfg;
	for (int i = 0; i < q->nlayer; i++) {
		int n = 0;
		while (n < g->nnode && strcmp(g->node[n].name, q->layer[i].node) != 0)
			n++;
		if (n == g->nnode) {
			ir_error(d, g, -1, "--layer %s: no node of that name (-d qchoose lists the node names)",
			         q->layer[i].node);
			return 1;
		}
	}
	return 0;
}

int pass_qchoose(Graph *g, Diag *d)
{
	if (!g->qcfg)
		return 0;
	if (check_layers(g, d))
		return 1;
	for (int i = 0; i < g->ninput; i++) {
		Tensor *t = &g->tensor[g->input[i]];
		if (t->dtype != DT_F32 || t->q)
			continue;
		if (!t->st || t->st->count == 0) {
			ir_error(d, g, -1, "input \"%s\" has no calibration statistics: give --calib FILE", t->name);
			return 1;
		}
		t->q = activation(g, t->st, g->qcfg->abits);
	}
	for (int n = 0; n < g->nnode; n++) {
		choose_inputs(g, n);
		if (choose_output(g, n, d))
			return 1;
	}
	return 0;
}
