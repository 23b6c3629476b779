/* Narrow accumulators (--acc-bits P; docs/integer-semantics.md, "Narrow
 * accumulators").  For every Conv/Gemm/MatMul the products
 * (x - zx) * (w - zw) of one output are summed in a P-bit register, in
 * tiles of ktile consecutive reduction terms.  This pass proves, per output
 * channel, that no partial sum of any tile can leave P bits, from the
 * integer weights and the integer range the input can take.  Where a
 * channel exceeds P bits it either
 *   - scales the channel down (ACC_SCALED): weights divided by 2^s,
 *     rounded toward zero (|w| never grows), the channel's scale times 2^s,
 *     its rescale and bias following; this changes values, or
 *   - tiles the reduction (ACC_TILED): the largest ktile whose every tile
 *     fits, for every channel; exact, the kernels only add a wide sum per
 *     tile.
 * The choice: scaling when it is the only way (a single product exceeds P
 * bits), or when on the calibration samples it adds less noise to the
 * node's output than SCALE_MAX_DB of SQNR would allow, measured against the
 * output's own rounding noise (LSB^2 / 12 per element).  That noise is a
 * lower bound of the output's real quantization noise, so the rule errs
 * toward tiling, which costs speed and never accuracy.  Without samples the
 * pass tiles. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

enum { ACC_SAMPLES = 64 };  /* calibration samples the choice looks at */
static const double SCALE_MAX_DB = 0.1;

/* One dot-product node: the integer input range and its reduction. */
typedef struct {
	int node;
	int64_t xlo, xhi;       /* xv = q - zx of the input, 0 included */
	int axis;               /* weights' channel axis; -1: B is an activation */
	int64_t nch, K;         /* output channels, reduction length per channel */
	int64_t outer, inner;   /* weight index of channel c, term o*inner + i: (o*nch + c)*inner + i */
	int64_t *thi, *tlo;     /* one channel's prefix sums of each term's max/min (K + 1 each) */
	int pending;            /* exceeds P bits: scaled or tiled, decided later */
	int64_t ktile;          /* largest fitting tile, 0 if a single term exceeds */
	void **cap;             /* the input of each measured sample (ncap) */
	int64_t ncap;
} Dot;

static int64_t prod(const Tensor *t, int from, int to)
{
	int64_t p = 1;
	for (int k = from; k < to; k++)
		p *= t->dim[k];
	return p;
}

/* Ops that only select or move input elements: their output takes values
 * from the input's set, so a clamp before them still holds after. */
static int selects(Op op)
{
	switch (op) {
	case OP_MAXPOOL: case OP_RESHAPE: case OP_FLATTEN: case OP_SQUEEZE: case OP_UNSQUEEZE:
	case OP_TRANSPOSE: case OP_SLICE: case OP_GATHER: case OP_EXPAND: case OP_TILE:
	case OP_SPLIT: case OP_DEPTHTOSPACE: case OP_SPACETODEPTH:
		return 1;
	default:
		return 0;
	}
}

/* The integer range of tensor t's q - zp: its bits, narrowed by the clamp
 * of the node that computed it (through nodes that only move values), and
 * widened to hold 0 (a padded tap contributes 0). */
static void xrange(const Graph *g, int t, int64_t *lo, int64_t *hi)
{
	const Quant *q = g->tensor[t].q;
	int64_t qlo = ir_qmin(q), qhi = ir_qmax(q);
	/* every QNode's output is clamped to [lo, hi]; moving nodes keep the
	 * integers, so the clamp holds in q units whatever their Quant */
	for (int p = g->tensor[t].producer; p >= 0; p = g->tensor[g->node[p].in[0]].producer) {
		const Node *n = &g->node[p];
		if (n->q) {
			qlo = n->q->lo > qlo ? n->q->lo : qlo;
			qhi = n->q->hi < qhi ? n->q->hi : qhi;
			break;
		}
		if (!selects(n->op) || n->nin < 1 || n->in[0] < 0 || !g->tensor[n->in[0]].q)
			break;
	}
	*lo = qlo - q->zp[0] > 0 ? 0 : qlo - q->zp[0];
	*hi = qhi - q->zp[0] < 0 ? 0 : qhi - q->zp[0];
}

static int64_t wget(const Tensor *w, int64_t i)
{
	return ir_wdecode(w->q, (int32_t)ir_get_i64(w, i));
}

static void wset(Tensor *w, int64_t i, int32_t v)
{
	switch (w->dtype) {
	case DT_I8: ((int8_t *)w->data)[i] = (int8_t)v; break;
	case DT_U8: ((uint8_t *)w->data)[i] = (uint8_t)v; break;
	case DT_I16: ((int16_t *)w->data)[i] = (int16_t)v; break;
	case DT_U16: ((uint16_t *)w->data)[i] = (uint16_t)v; break;
	default: ((int32_t *)w->data)[i] = v; break;
	}
}

/* Prefix sums of each term's largest and smallest value over the input
 * range, in reduction order, for channel c of d (constant weights), into
 * d->thi and d->tlo: one channel at a time, so memory stays O(K). */
static void prefix(const Graph *g, Dot *d, int64_t c)
{
	const Tensor *w = &g->tensor[g->node[d->node].in[1]];
	int32_t zw = w->q->zp[w->q->nch == 1 ? 0 : c];
	int64_t *hi = d->thi, *lo = d->tlo;
	hi[0] = lo[0] = 0;
	for (int64_t o = 0; o < d->outer; o++)
		for (int64_t i = 0; i < d->inner; i++) {
			int64_t k = o * d->inner + i;
			int64_t wv = wget(w, (o * d->nch + c) * d->inner + i) - zw;
			int64_t a = wv * d->xlo, b = wv * d->xhi;
			hi[k + 1] = hi[k] + (a > b ? a : b);
			lo[k + 1] = lo[k] + (a < b ? a : b);
		}
}

/* Worst |partial sum| of the prefix()ed channel's tiles of kt terms (kt >=
 * K: one tile). */
static int64_t tile_worst(const Dot *d, int64_t kt)
{
	const int64_t *hi = d->thi, *lo = d->tlo;
	int64_t worst = 0;
	for (int64_t s = 0; s < d->K; s += kt) {
		int64_t e = s + kt < d->K ? s + kt : d->K;
		int64_t h = hi[e] - hi[s], l = lo[s] - lo[e];
		worst = h > worst ? h : worst;
		worst = l > worst ? l : worst;
	}
	return worst;
}

/* The largest ktile whose every tile of every channel fits, 0 if none
 * (not monotone in ktile: tiles move, so every size is tried). */
static int64_t best_tile(const Graph *g, Dot *d, int64_t limit)
{
	char *ok = malloc((size_t)d->K + 1);
	if (!ok)
		return 0;
	memset(ok, 1, (size_t)d->K + 1);
	for (int64_t c = 0; c < d->nch; c++) {
		prefix(g, d, c);
		for (int64_t kt = 1; kt <= d->K; kt++)
			ok[kt] = ok[kt] && tile_worst(d, kt) <= limit;
	}
	int64_t kt = d->K;
	while (kt >= 1 && !ok[kt])
		kt--;
	free(ok);
	return kt;
}

/* The worst one-tile sum over the channels of the node's weights. */
static int64_t node_worst(const Graph *g, Dot *d)
{
	int64_t worst = 0;
	for (int64_t c = 0; c < d->nch; c++) {
		prefix(g, d, c);
		int64_t w = tile_worst(d, d->K);
		worst = w > worst ? w : worst;
	}
	return worst;
}

/* MatMul of two activations: every term is bounded by the corners of the
 * two ranges, so the bound is per tensor; only tiling applies. */
static int runtime_b(Graph *g, Dot *d, QNode *q, int64_t limit, int unchecked, Diag *diag)
{
	const Node *n = &g->node[d->node];
	int64_t blo, bhi;
	xrange(g, n->in[1], &blo, &bhi);
	int64_t c[4] = {d->xlo * blo, d->xlo * bhi, d->xhi * blo, d->xhi * bhi}, pmax = 0, pmin = 0;
	for (int k = 0; k < 4; k++) {
		pmax = c[k] > pmax ? c[k] : pmax;
		pmin = c[k] < pmin ? c[k] : pmin;
	}
	int64_t term = pmax > -pmin ? pmax : -pmin;
	q->acc_worst = d->K * term;
	if (q->acc_worst <= limit || unchecked) {
		q->acc_method = q->acc_worst <= limit ? ACC_FITS : ACC_UNCHECKED;
		return 0;
	}
	if (term > limit)
		return ir_error(diag, g, d->node, "--acc-bits %d: one product of the two activations needs "
		                "more bits (%lld)", q->acc_bits, (long long)term), 1;
	q->acc_method = ACC_TILED;
	q->ktile = (int)(limit / term);
	return 0;
}

/* The bound of node d->node; sets pending when it must be enforced. */
static int bound_node(Graph *g, Dot *d, int P, int unchecked, Diag *diag)
{
	Node *n = &g->node[d->node];
	QNode *q = n->q;
	const Tensor *x = &g->tensor[n->in[0]], *w = &g->tensor[n->in[1]];
	int64_t limit = ((int64_t)1 << (P - 1)) - 1;
	q->acc_bits = P;
	q->acc_limit = limit;
	q->acc_worst = 0;
	q->ktile = 0;
	q->acc_scaled = 0;
	xrange(g, n->in[0], &d->xlo, &d->xhi);
	d->K = x->dim[x->rank - 1];
	if (!w->q || w->kind != TK_CONST)
		return runtime_b(g, d, q, limit, unchecked, diag);
	d->axis = n->op == OP_CONV ? 0 : n->op == OP_GEMM && n->a.gemm.tb ? 0 : 1;
	d->nch = w->dim[d->axis];
	d->outer = prod(w, 0, d->axis);
	d->inner = prod(w, d->axis + 1, w->rank);
	d->K = d->outer * d->inner;
	d->thi = arena_alloc(g->arena, (size_t)(d->K + 1) * sizeof *d->thi);
	d->tlo = arena_alloc(g->arena, (size_t)(d->K + 1) * sizeof *d->tlo);
	q->acc_worst = node_worst(g, d);
	if (q->acc_worst <= limit) {
		q->acc_method = ACC_FITS;
		return 0;
	}
	if (unchecked) {
		q->acc_method = ACC_UNCHECKED;
		return 0;
	}
	d->pending = 1;
	d->ktile = best_tile(g, d, limit);
	return 0;
}

/* ---- scaling a channel down ---- */

/* The weight of largest magnitude <= |v| >> s, v's sign, as q stores it. */
static int32_t shrink(const Quant *q, int32_t code, int s)
{
	int32_t v = ir_wdecode(q, code), a = (v < 0 ? -v : v) >> s;
	if (q->code == WQ_UNIFORM)
		return v < 0 ? -a : a;
	int32_t best = 0, nm = 1 << (q->bits - 1);
	for (int32_t m = 1; m < nm; m++)
		if (ir_wdecode(q, m) <= a && ir_wdecode(q, m) > ir_wdecode(q, best))
			best = m;
	return v < 0 && best ? (int32_t)(1 << (q->bits - 1)) | best : best;
}

static Quant *quant_copy(Arena *a, const Quant *q)
{
	Quant *c = arena_dup(a, q, sizeof *q);
	c->scale = arena_dup(a, q->scale, (size_t)q->nch * sizeof *q->scale);
	c->zp = arena_dup(a, q->zp, (size_t)q->nch * sizeof *q->zp);
	if (q->frac)
		c->frac = arena_dup(a, q->frac, (size_t)q->nch * sizeof *q->frac);
	return c;
}

/* What scaling replaces, to put it back. */
typedef struct {
	void *wdata, *bdata;
	Quant *wq, *bq;
	Rescale *r;
} Saved;

/* Channel c of d's weights divided by 2^s (toward zero), in place. */
static void scale_weights(Graph *g, const Dot *d, int64_t c, int s)
{
	Tensor *w = &g->tensor[g->node[d->node].in[1]];
	for (int64_t o = 0; o < d->outer; o++)
		for (int64_t i = 0; i < d->inner; i++) {
			int64_t k = (o * d->nch + c) * d->inner + i;
			wset(w, k, shrink(w->q, (int32_t)ir_get_i64(w, k), s));
		}
	w->q->scale[c] = ldexp(w->q->scale[c], s);
	if (w->q->frac)
		w->q->frac[c] -= s;
}

/* Channel c's worst |sum| with its weights shrunk by 2^s (term: the
 * worst single product instead). */
static int64_t shifted_worst(const Graph *g, const Dot *d, int64_t c, int s, int term)
{
	const Tensor *w = &g->tensor[g->node[d->node].in[1]];
	int64_t hi = 0, lo = 0;
	for (int64_t o = 0; o < d->outer; o++)
		for (int64_t i = 0; i < d->inner; i++) {
			int32_t code = (int32_t)ir_get_i64(w, (o * d->nch + c) * d->inner + i);
			int64_t wv = ir_wdecode(w->q, shrink(w->q, code, s));
			int64_t x = wv * d->xlo, y = wv * d->xhi;
			int64_t h = x > y ? x : y, l = x < y ? x : y;
			hi = term ? (h > hi ? h : hi) : hi + h;
			lo = term ? (l < lo ? l : lo) : lo + l;
		}
	return hi > -lo ? hi : -lo;
}

/* The smallest s >= 0 whose scaled channel c fits P bits in one tile (or,
 * term, whose every single product fits). */
static int channel_shift(const Graph *g, const Dot *d, int64_t c, int64_t limit, int term)
{
	int s = 0;
	while (s < 31 && shifted_worst(g, d, c, s, term) > limit)
		s++;
	return s;
}

/* Scale every violating channel of d (term: only as far as every single
 * product fits); the old arrays go to *sv.  Returns the channels scaled. */
static int scale_node(Graph *g, Dot *d, int64_t limit, int term, Saved *sv)
{
	Node *n = &g->node[d->node];
	Tensor *w = &g->tensor[n->in[1]];
	Tensor *b = n->nin > 2 && n->in[2] >= 0 ? &g->tensor[n->in[2]] : NULL;
	QNode *q = n->q;
	*sv = (Saved){w->data, b ? b->data : NULL, w->q, b ? b->q : NULL, q->r};
	w->data = arena_dup(g->arena, w->data, ir_nbytes(w));
	w->q = quant_copy(g->arena, w->q);
	q->r = arena_dup(g->arena, q->r, (size_t)q->nr * sizeof *q->r);
	if (b) {
		b->data = arena_dup(g->arena, b->data, ir_nbytes(b));
		b->q = quant_copy(g->arena, b->q);
	}
	int scaled = 0;
	for (int64_t c = 0; c < d->nch; c++) {
		int s = channel_shift(g, d, c, limit, term);
		if (s == 0)
			continue;
		scale_weights(g, d, c, s);
		/* M = sx sw[c] / sy grows by 2^s exactly: the Q31 mantissa stays */
		q->r[q->nr == 1 ? 0 : c].n -= s;
		if (b) {
			int64_t bc = b->q->nch == 1 ? 0 : c;
			double real = ir_dequantize(b->q, (int)bc, ir_get_i64(b, c));
			b->q->scale[bc] = ldexp(b->q->scale[bc], s);
			if (b->q->frac)
				b->q->frac[bc] -= s;
			((int32_t *)b->data)[c] = ir_quantize(b->q, (int)bc, real);
		}
		scaled++;
	}
	return scaled;
}

static void unscale(Graph *g, Dot *d, const Saved *sv)
{
	Node *n = &g->node[d->node];
	Tensor *w = &g->tensor[n->in[1]];
	w->data = sv->wdata;
	w->q = sv->wq;
	n->q->r = sv->r;
	if (sv->bdata) {
		g->tensor[n->in[2]].data = sv->bdata;
		g->tensor[n->in[2]].q = sv->bq;
	}
}

/* Scaling needs per-channel weights with their own rescale, a weight
 * tensor this node alone reads, and a bias with a Quant. */
static int can_scale(const Graph *g, const Dot *d)
{
	const Node *n = &g->node[d->node];
	const Tensor *w = &g->tensor[n->in[1]];
	const Tensor *b = n->nin > 2 && n->in[2] >= 0 ? &g->tensor[n->in[2]] : NULL;
	int users[2];
	for (int c = 0; c < w->q->nch; c++)
		if (w->q->zp[c])
			return 0;     /* shrinking w would not shrink w - zw */
	return w->q->nch == d->nch && n->q->nr == d->nch && ir_consumers(g, n->in[1], users, 2) == 1 &&
	       (!b || (b->q && b->dtype == DT_I32 && ir_numel(b) == d->nch));
}

/* ---- measuring on the calibration samples ---- */

typedef struct {
	Dot *dots;
	int ndot;
	int64_t s;              /* sample being run */
	int64_t nsamp;
} Cap;

static void *copy_data(const Tensor *t, const void *data)
{
	void *v = malloc(ir_nbytes(t) + 1);
	if (v)
		memcpy(v, data, ir_nbytes(t));
	return v;
}

static void capture(void *ctx, const Graph *g, int t, const void *data)
{
	Cap *c = ctx;
	for (int i = 0; i < c->ndot; i++) {
		Dot *d = &c->dots[i];
		if (d->cap && g->node[d->node].in[0] == t && !d->cap[c->s])
			d->cap[c->s] = copy_data(&g->tensor[t], data);
	}
}

/* Sample s of graph input i, quantized as the input's Quant says. */
static void *quantize_input(const Graph *g, int i, int64_t s)
{
	const Tensor *t = &g->tensor[g->input[i]];
	int64_t m = ir_numel(t);
	const float *x = g->qcfg->samples[i] + s * m;
	Tensor tmp = *t;
	tmp.kind = TK_CONST;
	tmp.data = malloc(ir_nbytes(t) + 1);
	if (!tmp.data)
		return NULL;
	for (int64_t k = 0; k < m; k++)
		wset(&tmp, k, ir_quantize(t->q, ir_quant_channel(t, k), x[k]));
	return tmp.data;
}

/* Runs the (unscaled) graph over the samples, keeping each pending
 * node's input.  Returns the samples captured. */
static int64_t run_samples(Graph *g, Dot *dots, int ndot, Diag *diag)
{
	const QuantConfig *cfg = g->qcfg;
	int64_t ns = cfg->nsamples < ACC_SAMPLES ? cfg->nsamples : ACC_SAMPLES;
	if (ns < 1 || g->ninput > QC_MAXIN)
		return 0;
	for (int i = 0; i < g->ninput; i++)
		if (!cfg->samples[i] || !g->tensor[g->input[i]].q)
			return 0;
	Cap c = {dots, ndot, 0, ns};
	for (int i = 0; i < ndot; i++)
		if (dots[i].pending) {
			dots[i].cap = arena_alloc(g->arena, (size_t)ns * sizeof *dots[i].cap);
			dots[i].ncap = ns;
		}
	Diag quiet = *diag;
	quiet.quiet = 1;
	for (c.s = 0; c.s < ns; c.s++) {
		const void *in[QC_MAXIN] = {0};
		int bad = 0;
		for (int i = 0; i < g->ninput; i++) {
			in[i] = quantize_input(g, i, c.s);
			bad |= !in[i];
		}
		for (int i = 0; !bad && i < g->ninput; i++)
			capture(&c, g, g->input[i], in[i]);
		bad = bad || ir_qeval(g, in, NULL, capture, &c, &quiet);
		for (int i = 0; i < g->ninput; i++)
			free((void *)in[i]);
		if (bad)
			return c.s;
	}
	return ns;
}

/* Sum of squared differences (in output LSB) of node d's output, scaled
 * vs unscaled, over the captured inputs; -1 if it cannot run. */
static double added_noise(Graph *g, Dot *d, int64_t ns, const Saved *sv, int64_t *count, Diag *diag)
{
	const Node *n = &g->node[d->node];
	const Tensor *y = &g->tensor[n->out[0]];
	void *ya = malloc(ir_nbytes(y) + 1), *yb = malloc(ir_nbytes(y) + 1);
	const void *in[3];
	void *out[1];
	Rescale *rs = n->q->r;
	Diag quiet = *diag;
	quiet.quiet = 1;
	double err = 0;
	*count = 0;
	for (int64_t s = 0; ya && yb && s < ns && err >= 0; s++) {
		in[0] = d->cap[s];
		in[1] = g->tensor[n->in[1]].data;
		in[2] = n->nin > 2 && n->in[2] >= 0 ? g->tensor[n->in[2]].data : NULL;
		out[0] = ya;
		if (!in[0] || ir_qeval_node(g, d->node, in, out, &quiet)) {
			err = -1;
			break;
		}
		in[1] = sv->wdata;
		in[2] = sv->bdata;
		out[0] = yb;
		/* the unscaled node: old weights, bias, rescales, Quants */
		Tensor *w = &g->tensor[n->in[1]];
		Quant *wq = w->q, *bq = in[2] ? g->tensor[n->in[2]].q : NULL;
		w->q = sv->wq;
		n->q->r = sv->r;
		if (bq)
			g->tensor[n->in[2]].q = sv->bq;
		int bad = ir_qeval_node(g, d->node, in, out, &quiet);
		w->q = wq;
		n->q->r = rs;
		if (bq)
			g->tensor[n->in[2]].q = bq;
		if (bad) {
			err = -1;
			break;
		}
		for (int64_t i = 0; i < ir_numel(y); i++) {
			double e = ir_load(y->dtype, ya, i) - ir_load(y->dtype, yb, i);
			err += e * e;
		}
		*count += ir_numel(y);
	}
	free(ya);
	free(yb);
	return ya && yb ? err : -1;
}

/* Scaled or tiled, for one pending node. */
static int decide(Graph *g, Dot *d, int64_t limit, int64_t ns, Diag *diag)
{
	QNode *q = g->node[d->node].q;
	if (!can_scale(g, d)) {
		if (d->ktile == 0)
			return ir_error(diag, g, d->node, "--acc-bits %d: a single product exceeds %d bits and "
			                "these weights cannot be scaled per channel", q->acc_bits, q->acc_bits), 1;
		q->acc_method = ACC_TILED;
		q->ktile = (int)d->ktile;
		return 0;
	}
	Saved sv;
	if (d->ktile == 0) {
		/* a single product exceeds P bits: scale only as far as each
		 * product fits, then tile (scaling all the way loses far more) */
		q->acc_scaled = scale_node(g, d, limit, 1, &sv);
		q->acc_method = ACC_SCALED;
		d->ktile = best_tile(g, d, limit);
		q->ktile = d->ktile >= d->K ? 0 : (int)d->ktile;
		q->acc_worst = node_worst(g, d);
		return 0;
	}
	int scaled = scale_node(g, d, limit, 0, &sv);
	int keep = 0;
	if (ns > 0) {
		int64_t count;
		double err = added_noise(g, d, ns, &sv, &count, diag);
		/* allowed: SCALE_MAX_DB of SQNR over a noise floor of LSB^2/12 */
		keep = err >= 0 && err <= (pow(10, SCALE_MAX_DB / 10) - 1) * (double)count / 12;
	}
	if (keep) {
		q->acc_method = ACC_SCALED;
		q->acc_scaled = scaled;
		q->ktile = 0;
		q->acc_worst = node_worst(g, d);
	} else {
		unscale(g, d, &sv);
		q->acc_method = ACC_TILED;
		q->ktile = (int)d->ktile;
	}
	return 0;
}

static void free_caps(Dot *dots, int ndot)
{
	for (int i = 0; i < ndot; i++)
		for (int64_t s = 0; dots[i].cap && s < dots[i].ncap; s++)
			free(dots[i].cap[s]);
}

int pass_accbound(Graph *g, Diag *diag)
{
	const QuantConfig *cfg = g->qcfg;
	if (!cfg || cfg->acc_bits < 12 || cfg->acc_bits > 31)
		return 0;
	int P = cfg->acc_bits;
	int64_t limit = ((int64_t)1 << (P - 1)) - 1;
	Dot *dots = arena_alloc(g->arena, (size_t)g->nnode * sizeof *dots + 1);
	int nd = 0, npend = 0;
	for (int i = 0; i < g->nnode; i++) {
		Node *n = &g->node[i];
		if (n->dead || !n->q || (n->op != OP_CONV && n->op != OP_GEMM && n->op != OP_MATMUL))
			continue;
		Dot *d = &dots[nd++];
		d->node = i;
		d->axis = -1;
		if (bound_node(g, d, P, cfg->acc_unchecked, diag))
			return 1;
		npend += d->pending;
	}
	if (!npend)
		return 0;
	/* The measurement runs the graph before any decision: no narrow
	 * checks yet (the evaluator would reject the pending nodes). */
	for (int i = 0; i < nd; i++)
		if (dots[i].pending)
			g->node[dots[i].node].q->acc_method = ACC_UNCHECKED;
	int64_t ns = run_samples(g, dots, nd, diag);
	int bad = 0;
	for (int i = 0; i < nd && !bad; i++)
		if (dots[i].pending)
			bad = decide(g, &dots[i], limit, ns, diag);
	free_caps(dots, nd);
	return bad;
}
