/* Lowering to the integer IR (docs/integer-semantics.md, "The integer IR").
 * Every tensor has its Quant (pass_qchoose); this pass computes what the
 * integer code needs from them, with floats, once, at compile time:
 * quantized constants (biases int32 at scale_x * scale_w), per-channel
 * rescales, output clamps (a fused Relu or Clip costs nothing), unary
 * tables, and the proof that each int32 accumulator cannot overflow
 * (otherwise the node accumulates in int64). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

enum { LUT_MAXBITS = 16 };

static const int32_t I32MAX = 2147483647;

static QNode *qnode(Graph *g, Node *n)
{
	QNode *q = arena_alloc(g->arena, sizeof *q);
	const Quant *y = g->tensor[n->out[0]].q;
	q->lo = ir_qmin(y);
	q->hi = ir_qmax(y);
	if (n->act.kind == ACT_RELU) {
		q->lo = q->lo > y->zp[0] ? q->lo : y->zp[0];
	} else if (n->act.kind == ACT_CLIP) {
		int32_t lo = ir_quantize(y, 0, n->act.a), hi = ir_quantize(y, 0, n->act.b);
		q->lo = lo > q->lo ? lo : q->lo;
		q->hi = hi < q->hi ? hi : q->hi;
	}
	n->q = q;
	return q;
}

static Rescale *rescales(Graph *g, int count)
{
	return arena_alloc(g->arena, (size_t)count * sizeof(Rescale));
}

static const Quant *qof(const Graph *g, const Node *n, int j)
{
	return g->tensor[n->in[j]].q;
}

static const Quant *yq(const Graph *g, const Node *n)
{
	return g->tensor[n->out[0]].q;
}

/* ---- Conv, Gemm, MatMul ---- */

static int64_t prod(const Tensor *t, int from, int to)
{
	int64_t p = 1;
	for (int k = from; k < to; k++)
		p *= t->dim[k];
	return p;
}

/* A new int32 bias tensor: channel c's real value (in dot-product units,
 * i.e. C's value * beta / alpha) at scale sx * sw[c]. */
static int bias_tensor(Graph *g, const char *name, const double *real, int64_t nch, const Quant *x,
                       const Quant *w)
{
	int32_t *v = arena_alloc(g->arena, (size_t)nch * sizeof *v);
	Quant *q = ir_quant_new(g->arena, (int)nch, 0, 32, 0);
	for (int64_t c = 0; c < nch; c++) {
		q->scale[c] = x->scale[0] * w->scale[w->nch == 1 ? 0 : c];
		v[c] = ir_quantize(q, (int)c, real[c]);
	}
	int id = ir_const_new(g, arena_printf(g->arena, "%s_q", name), DT_I32, 1, &nch, v);
	g->tensor[id].q = q;
	return id;
}

/* Bias correction (empirical bias correction, Nagel et al. 2019): rounding
 * channel c's weights moves its output by sum_k (w_k - w^_k) x_k, on
 * average mean(x) * sum_k (w_k - w^_k); the bias takes it back.  mean(x)
 * is the input tensor's calibration mean.  Adds to real[c]; 1 if any. */
static int bias_correction(const Graph *g, const Node *n, const Tensor *w, int axis, double *real)
{
	const QStats *st = g->tensor[n->in[0]].st;
	if (!st || st->count == 0 || w->dtype != DT_F32)
		return 0;
	double mean = st->sum / (double)st->count;
	int64_t nch = w->dim[axis], inner = prod(w, axis + 1, w->rank), outer = prod(w, 0, axis);
	int any = 0;
	for (int64_t c = 0; c < nch; c++) {
		double e = 0;
		for (int64_t o = 0; o < outer; o++)
			for (int64_t i = 0; i < inner; i++) {
				int64_t k = (o * nch + c) * inner + i;
				double v = ((const float *)w->data)[k];
				e += v - ir_dequantize(w->q, (int)c, ir_wdecode(w->q, ir_wencode(w->q, (int)c, v)));
			}
		real[c] += mean * e;
		any |= e != 0;
	}
	return any;
}

/* Node n's bias input, created if the correction needs one. */
static void lower_bias(Graph *g, int id, int bias_in, int axis, double alpha, double beta)
{
	Node *n = &g->node[id];
	const Tensor *w = &g->tensor[n->in[1]];
	int64_t nch = w->dim[axis];
	double *real = arena_alloc(g->arena, (size_t)nch * sizeof *real);
	int has = n->nin > bias_in && n->in[bias_in] >= 0;
	const Tensor *b = has ? &g->tensor[n->in[bias_in]] : NULL;
	for (int64_t c = 0; b && c < nch; c++)
		real[c] = beta * ir_get(b, ir_numel(b) == 1 ? 0 : c) / alpha;
	int corr = bias_correction(g, n, w, axis, real);
	if (!has && !corr)
		return;
	int bt = bias_tensor(g, b ? b->name : n->name, real, nch, qof(g, n, 0), w->q);
	n = &g->node[id];
	if (n->nin <= bias_in) {
		int *in = arena_alloc(g->arena, (size_t)(bias_in + 1) * sizeof *in);
		for (int j = 0; j <= bias_in; j++)
			in[j] = j < n->nin ? n->in[j] : -1;
		n->in = in;
		n->nin = bias_in + 1;
	}
	n->in[bias_in] = bt;
}

/* Worst-case accumulator of channel c over x's integer range, as
 * RESEARCH.md section 3's exact condition: the bias plus, per tap, the
 * larger (or smaller) of w*xlo and w*xhi. */
static void acc_bound(QNode *q, const Tensor *w, int axis, const Quant *x, const int32_t *bias)
{
	int64_t nch = w->dim[axis], inner = prod(w, axis + 1, w->rank), outer = prod(w, 0, axis);
	int64_t xlo = ir_qmin(x) - x->zp[0], xhi = ir_qmax(x) - x->zp[0];
	for (int64_t c = 0; c < nch; c++) {
		int64_t hi = bias ? bias[c] : 0, lo = hi;
		int32_t zw = w->q->zp[w->q->nch == 1 ? 0 : c];
		for (int64_t o = 0; o < outer; o++)
			for (int64_t i = 0; i < inner; i++) {
				int64_t wv = ir_wdecode(w->q, (int32_t)ir_get_i64(w, (o * nch + c) * inner + i)) - zw;
				int64_t a = wv * xlo, b = wv * xhi;
				hi += a > b ? a : b;
				lo += a < b ? a : b;
			}
		int64_t worst = hi > -lo ? hi : -lo;
		q->acc_worst = worst > q->acc_worst ? worst : q->acc_worst;
	}
	q->acc_limit = I32MAX;
	q->acc64 = q->acc_worst > q->acc_limit;
}

/* Weight w (input 1) to its integers, in place: data and dtype. */
static void quantize_const(Graph *g, Tensor *t)
{
	if (t->dtype != DT_F32 || !t->q)
		return;
	DType dt = ir_quant_dtype(t->q);
	int64_t n = ir_numel(t);
	void *v = arena_alloc(g->arena, (size_t)n * ir_dtype_size(dt) + 1);
	for (int64_t i = 0; i < n; i++) {
		/* ir_wencode: a weight code, or ir_quantize when uniform */
		int32_t q = ir_wencode(t->q, ir_quant_channel(t, i), ((const float *)t->data)[i]);
		switch (dt) {
		case DT_I8: ((int8_t *)v)[i] = (int8_t)q; break;
		case DT_U8: ((uint8_t *)v)[i] = (uint8_t)q; break;
		case DT_I16: ((int16_t *)v)[i] = (int16_t)q; break;
		case DT_U16: ((uint16_t *)v)[i] = (uint16_t)q; break;
		default: ((int32_t *)v)[i] = q; break;
		}
	}
	t->data = v;
	t->dtype = dt;
}

static int lower_dot(Graph *g, int id, Diag *d)
{
	Node *n = &g->node[id];
	const Quant *x = qof(g, n, 0), *y = yq(g, n);
	Tensor *w = &g->tensor[n->in[1]];
	double alpha = 1, beta = 1;
	int axis = 0, bias_in = n->op == OP_CONV ? 2 : n->op == OP_GEMM ? 2 : -1;
	if (n->op == OP_GEMM) {
		if (n->a.gemm.ta)
			return ir_error(d, g, id, "Gemm with transA has no integer form; transpose A first"), 1;
		alpha = n->a.gemm.alpha;
		beta = n->a.gemm.beta;
		axis = n->a.gemm.tb ? 0 : 1;
		int c = n->nin > 2 ? n->in[2] : -1;
		if (c >= 0 && (!ir_is_const(g, c) || (ir_numel(&g->tensor[c]) != 1 &&
		               ir_numel(&g->tensor[c]) != w->dim[axis])))
			return ir_error(d, g, id, "Gemm's C must be a constant row or scalar to quantize"), 1;
	} else if (n->op == OP_MATMUL) {
		axis = 1;
	}
	QNode *q = qnode(g, n);
	if (!w->q || w->kind != TK_CONST) {   /* MatMul of two activations */
		const Quant *b = w->q;
		q->nr = 1;
		q->r = rescales(g, 1);
		q->r[0] = ir_rescale(x->scale[0] * b->scale[0] / y->scale[0]);
		int64_t k = g->tensor[n->in[0]].dim[g->tensor[n->in[0]].rank - 1];
		int64_t ax = (ir_qmax(x) - x->zp[0]) > (x->zp[0] - ir_qmin(x)) ? ir_qmax(x) - x->zp[0] : x->zp[0] - ir_qmin(x);
		int64_t bx = (ir_qmax(b) - b->zp[0]) > (b->zp[0] - ir_qmin(b)) ? ir_qmax(b) - b->zp[0] : b->zp[0] - ir_qmin(b);
		q->acc_worst = k * ax * bx;
		q->acc_limit = I32MAX;
		q->acc64 = q->acc_worst > q->acc_limit;
		return 0;
	}
	int64_t nch = w->dim[axis];
	if (bias_in >= 0)
		lower_bias(g, id, bias_in, axis, alpha, beta);
	n = &g->node[id];
	w = &g->tensor[n->in[1]];              /* the tensor array may have moved */
	quantize_const(g, w);
	q->nr = (int)nch;
	q->r = rescales(g, q->nr);
	for (int64_t c = 0; c < nch; c++)
		q->r[c] = ir_rescale(alpha * x->scale[0] * w->q->scale[w->q->nch == 1 ? 0 : c] / y->scale[0]);
	const int32_t *bias = bias_in >= 0 && n->nin > bias_in && n->in[bias_in] >= 0 ?
	                      g->tensor[n->in[bias_in]].data : NULL;
	acc_bound(q, w, axis, x, bias);
	if (n->op == OP_GEMM)
		n->a.gemm.alpha = n->a.gemm.beta = 1;
	return 0;
}

/* ---- element-wise, pools, Concat ---- */

/* Bits of magnitude |q - zp| can reach. */
static int mag_bits(const Quant *q)
{
	int64_t m = (int64_t)ir_qmax(q) - q->zp[0];
	int64_t m2 = (int64_t)q->zp[0] - ir_qmin(q);
	m = m > m2 ? m : m2;
	int b = 0;
	while (((int64_t)1 << b) <= m)
		b++;
	return b;
}

/* Add/Sub: both operands rescaled onto the output scale with ext extra
 * fraction bits, summed, rounded once.  ext is as large as it can be
 * without the rescaled operands leaving 2^30 (then the int32 sum of two
 * cannot saturate), at most 16. */
static void lower_add(Graph *g, Node *n)
{
	QNode *q = qnode(g, n);
	const Quant *y = yq(g, n);
	double rmax = 0;
	int bits = 0;
	for (int j = 0; j < 2; j++) {
		const Quant *x = qof(g, n, j);
		rmax = fmax(rmax, x->scale[0] / y->scale[0]);
		bits = mag_bits(x) > bits ? mag_bits(x) : bits;
	}
	int ext = 30 - bits - (int)ceil(log2(rmax > 0 ? rmax : 1));
	ext = ext < 0 ? 0 : ext > 16 ? 16 : ext;
	q->ext = ext;
	q->nrin = 2;
	q->rin = rescales(g, 2);
	for (int j = 0; j < 2; j++)
		q->rin[j] = ir_rescale(ldexp(qof(g, n, j)->scale[0] / y->scale[0], ext));
}

static void lower_one(Graph *g, Node *n, double factor)
{
	QNode *q = qnode(g, n);
	q->nr = 1;
	q->r = rescales(g, 1);
	q->r[0] = ir_rescale(factor);
}

static void lower_concat(Graph *g, Node *n)
{
	QNode *q = qnode(g, n);
	q->nrin = n->nin;
	q->rin = rescales(g, n->nin);
	for (int j = 0; j < n->nin; j++)
		q->rin[j] = ir_rescale(qof(g, n, j)->scale[0] / yq(g, n)->scale[0]);
}

/* Clip's bounds become the clamp; its bound inputs go. */
static void lower_clip(Graph *g, Node *n)
{
	const Quant *y = yq(g, n);
	lower_one(g, n, qof(g, n, 0)->scale[0] / y->scale[0]);
	if (n->op == OP_RELU) {
		n->q->lo = n->q->lo > y->zp[0] ? n->q->lo : y->zp[0];
		return;
	}
	for (int j = 1; j < n->nin && j < 3; j++) {
		if (n->in[j] < 0)
			continue;
		int32_t v = ir_quantize(y, 0, ir_get(&g->tensor[n->in[j]], 0));
		if (j == 1)
			n->q->lo = v > n->q->lo ? v : n->q->lo;
		else
			n->q->hi = v < n->q->hi ? v : n->q->hi;
		n->in[j] = -1;
	}
}

/* ---- tables ---- */

static double hsig(double x, double a, double b)
{
	double v = a * x + b;
	return v < 0 ? 0 : v > 1 ? 1 : v;
}

/* The exact real function of a unary op; 1 if the op has none here. */
static int unary_real(const Node *n, double x, double *y)
{
	double a = n->a.ab.alpha, b = n->a.ab.beta;
	switch (n->op) {
	case OP_LEAKYRELU: *y = x < 0 ? a * x : x; break;
	case OP_HARDSIGMOID: *y = hsig(x, a, b); break;
	case OP_HARDSWISH: *y = x * hsig(x, 1.0 / 6, 0.5); break;
	case OP_SIGMOID: *y = 1 / (1 + exp(-x)); break;
	case OP_TANH: *y = tanh(x); break;
	case OP_EXP: *y = exp(x); break;
	case OP_ELU: *y = x < 0 ? a * (exp(x) - 1) : x; break;
	case OP_SELU: *y = b * (x <= 0 ? a * (exp(x) - 1) : x); break;
	case OP_CELU: *y = x > 0 ? x : a * (exp(x / a) - 1); break;
	case OP_SOFTPLUS: *y = log1p(exp(x)); break;
	case OP_SOFTSIGN: *y = x / (1 + fabs(x)); break;
	case OP_ERF: *y = erf(x); break;
	case OP_NEG: *y = -x; break;
	case OP_ABS: *y = fabs(x); break;
	case OP_SQRT: *y = sqrt(x); break;
	case OP_THRESHOLDEDRELU: *y = x > a ? x : 0; break;
	default: return 1;
	}
	return 0;
}

static int lower_table(Graph *g, int id, Diag *d)
{
	Node *n = &g->node[id];
	const Quant *x = qof(g, n, 0), *y = yq(g, n);
	double v;
	if (unary_real(n, 0, &v))
		return ir_error(d, g, id, "%s has no integer form under --quant", ir_opname[n->op]), 1;
	if (x->bits > LUT_MAXBITS)
		return ir_error(d, g, id, "%s on a %d-bit input: at most %d bits (--abits)", ir_opname[n->op],
		                x->bits, LUT_MAXBITS), 1;
	QNode *q = qnode(g, n);
	q->lut_lo = ir_qmin(x);
	q->nlut = (int)((int64_t)ir_qmax(x) - ir_qmin(x) + 1);
	q->lut = arena_alloc(g->arena, (size_t)q->nlut * sizeof *q->lut);
	for (int i = 0; i < q->nlut; i++) {
		unary_real(n, ir_dequantize(x, 0, q->lut_lo + i), &v);
		int32_t t = ir_quantize(y, 0, v);          /* NaN (sqrt < 0): zp */
		q->lut[i] = t < q->lo ? q->lo : t > q->hi ? q->hi : t;
	}
	return 0;
}

/* Softmax: lut[d] = exp(-d * scale_x) in Q30 for d = max - q. */
static int lower_softmax(Graph *g, int id, Diag *d)
{
	Node *n = &g->node[id];
	const Quant *x = qof(g, n, 0);
	if (x->bits > LUT_MAXBITS)
		return ir_error(d, g, id, "Softmax on a %d-bit input: at most %d bits (--abits)", x->bits,
		                LUT_MAXBITS), 1;
	lower_one(g, n, ldexp(1.0, -30) / yq(g, n)->scale[0]);
	QNode *q = n->q;
	q->nlut = (int)((int64_t)ir_qmax(x) - ir_qmin(x) + 1);
	q->lut = arena_alloc(g->arena, (size_t)q->nlut * sizeof *q->lut);
	for (int i = 0; i < q->nlut; i++)
		q->lut[i] = (int32_t)floor(ldexp(exp(-i * x->scale[0]), 30) + 0.5);
	return 0;
}

/* ---- data movement ---- */

static int lower_move(Graph *g, int id, Diag *d)
{
	Node *n = &g->node[id];
	if (n->op == OP_RESIZE && n->a.resize.mode != RS_NEAREST)
		return ir_error(d, g, id, "Resize (linear, cubic) has no integer form under --quant; only nearest"), 1;
	if (n->op == OP_PAD && n->nin > 2 && n->in[2] >= 0) {
		const Tensor *v = &g->tensor[n->in[2]];
		const Quant *x = qof(g, n, 0);
		int32_t q = ir_quantize(x, 0, v->dtype == DT_F32 ? ir_get(v, 0) : 0);
		int64_t one = 1;
		int t = ir_const_new(g, "pad_value_q", ir_quant_dtype(x), 0, &one, NULL);
		g->tensor[t].q = g->tensor[g->node[id].in[0]].q;
		Tensor *pt = &g->tensor[t];
		switch (pt->dtype) {
		case DT_I8: *(int8_t *)pt->data = (int8_t)q; break;
		case DT_U8: *(uint8_t *)pt->data = (uint8_t)q; break;
		case DT_I16: *(int16_t *)pt->data = (int16_t)q; break;
		case DT_U16: *(uint16_t *)pt->data = (uint16_t)q; break;
		default: *(int32_t *)pt->data = q; break;
		}
		g->node[id].in[2] = t;
	}
	return 0;
}

/* ---- the pass ---- */

static int lower_node(Graph *g, int id, Diag *d)
{
	Node *n = &g->node[id];
	if (n->nout < 1 || n->out[0] < 0 || !g->tensor[n->out[0]].q)
		return 0;          /* no float output: shape or index arithmetic */
	for (int j = 0; j < n->nin; j++) {
		const Tensor *t = n->in[j] >= 0 ? &g->tensor[n->in[j]] : NULL;
		if (j == 0 && t && t->dtype == DT_F32 && !t->q)
			return ir_error(d, g, id, "input \"%s\" has no quantization", t->name), 1;
	}
	switch (n->op) {
	case OP_CONV: case OP_GEMM: case OP_MATMUL:
		return lower_dot(g, id, d);
	case OP_ADD: case OP_SUB:
		lower_add(g, n);
		return 0;
	case OP_MUL:
		lower_one(g, n, qof(g, n, 0)->scale[0] * qof(g, n, 1)->scale[0] / yq(g, n)->scale[0]);
		return 0;
	case OP_AVGPOOL: case OP_GAVGPOOL: case OP_REDUCEMEAN: case OP_GMAXPOOL:
		lower_one(g, n, qof(g, n, 0)->scale[0] / yq(g, n)->scale[0]);
		return 0;
	case OP_CONCAT:
		lower_concat(g, n);
		return 0;
	case OP_RELU: case OP_CLIP:
		lower_clip(g, n);
		return 0;
	case OP_SOFTMAX:
		return lower_softmax(g, id, d);
	default:
		break;
	}
	if (ir_opflags[n->op] & F_UNARY)
		return lower_table(g, id, d);
	if (ir_opflags[n->op] & F_ANYTYPE)
		return lower_move(g, id, d);
	return ir_error(d, g, id, "%s has no integer form under --quant", ir_opname[n->op]), 1;
}

/* Nodes whose inputs must share one Quant with their output (they move
 * integers) got it from pass_qchoose; other float constants (Add's operand)
 * are quantized here. */
static void set_dtypes(Graph *g)
{
	for (int t = 0; t < g->ntensor; t++) {
		Tensor *tt = &g->tensor[t];
		if (!tt->q || tt->dtype != DT_F32)
			continue;
		if (tt->kind == TK_CONST)
			quantize_const(g, tt);
		else
			tt->dtype = ir_quant_dtype(tt->q);
	}
}

/* Every float value left is a bug: the integer code has no float. */
static int check_integer(const Graph *g, Diag *d)
{
	for (int n = 0; n < g->nnode; n++) {
		const Node *nd = &g->node[n];
		for (int j = 0; j < nd->nout; j++)
			if (nd->out[j] >= 0 && g->tensor[nd->out[j]].dtype == DT_F32)
				return ir_error(d, g, n, "output \"%s\" stays float under --quant",
				                g->tensor[nd->out[j]].name), 1;
	}
	return 0;
}

int pass_qlower(Graph *g, Diag *d)
{
	if (!g->qcfg)
		return 0;
	for (int n = 0; n < g->nnode; n++)
		if (lower_node(g, n, d))
			return 1;
	set_dtypes(g);
	ir_compact(g);
	return check_integer(g, d);
}
