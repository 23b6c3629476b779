/* pass_qdq (quantized compilation only): a model that is already quantized
 * becomes a float graph whose tensors carry the model's own quantization
 * (Tensor.q preset), which pass_qchoose keeps and pass_qlower turns into
 * integers.  Two forms are read:
 *   QDQ:       y = DequantizeLinear(QuantizeLinear(x, s, z), s, z) around
 *              float ops, weights as DequantizeLinear(integer constant);
 *   QOperator: QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger on
 *              integer tensors, data movement (MaxPool, Reshape, ...) on
 *              integers between them.
 * Every integer tensor of the model that holds quantized values (output of
 * QuantizeLinear, of a QLinear/Integer op, integer data movement of those,
 * an integer graph input) gets a float "shadow": the float tensor that
 * stands for it, with its Quant.  The rewrites, in node order:
 *   - QuantizeLinear(x, s, z) -> yq: x gets Quant(s, z) and is yq's shadow;
 *     the node dies.  If x already has a different Quant (quantized twice,
 *     or a requantization of a QLinear output), the node becomes a Clip
 *     without bounds whose output has Quant(s, z): pass_qlower's
 *     rescale-and-clamp, exactly a requantization.
 *   - DequantizeLinear(integer constant) -> a float constant (the values
 *     dequantized in double, stored f32) with the Quant preset.
 *   - DequantizeLinear(xq) -> y: every use of y reads xq's shadow; the node
 *     dies.  If its scale or zero point differ from the shadow's Quant (a
 *     model whose Q and DQ disagree), the shadow's (the QuantizeLinear's)
 *     wins: the integers the model computes are the Q's, and potc keeps
 *     them rather than the DQ's reading of them.
 *   - QLinearConv(xq, sx, zx, wq, sw, zw, sy, zy, b) -> yq becomes
 *     Conv(x, w, b) -> y: x and w the shadows (a constant w dequantized),
 *     b = DequantizeLinear(b, scale sx * sw, zp 0) as a constant, y with
 *     Quant(sy, zy) is yq's shadow.  QLinearMatMul likewise with MatMul.
 *   - ConvInteger / MatMulInteger(x, w, zx, zw) -> yq (int32) become
 *     Conv / MatMul of the shadows of x and w read with scale 1 and zp zx,
 *     zw; y's Quant is {bits 32, scale 1, zp 0} (frac 0): the float y holds
 *     exactly the integers the model's int32 holds.  A Cast of yq to float
 *     (what models do next) is then y itself and is removed; a
 *     DequantizeLinear(yq, s) scales it for real and becomes Mul(y, s).
 *   - data movement on a quantized integer tensor moves its shadow instead:
 *     the output becomes float with the same Quant (a Pad value or other
 *     integer constant operand is dequantized with it).
 *   - an integer graph input keeps its dtype and gets the Quant of its
 *     first DequantizeLinear / QLinear reader: it is its own shadow.
 *   - a graph output that is a quantized integer tensor (or was read
 *     through a trailing DequantizeLinear) becomes its shadow, under the
 *     output's name.
 * A Quant has bits 8 (u8, i8) or 32 (i32), is_unsigned for u8, the
 * per-channel axis and values, and frac only when every scale is an exact
 * power of two and every zero point 0.  Anything else that reads a
 * quantized integer tensor (integer arithmetic on it) is refused, as are
 * per-channel scales on activations (pass_qlower has one scale per
 * activation) and scales or zero points that are not constants. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

typedef struct {
	Graph *g;
	Diag *d;
	int nt0;      /* tensors before the pass: fl and isq cover these */
	int *fl;      /* per tensor: its float shadow, -1 */
	char *isq;    /* per tensor: an integer tensor of the model holding quantized values */
	DType *odt;   /* per tensor: its dtype before the pass (move() changes some) */
	int n;        /* the node being rewritten */
} Qdq;

static int fail(Qdq *q, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	ir_error(q->d, q->g, q->n, "%s", msg);
	return 1;
}

static Tensor *T(Qdq *q, int t)
{
	return &q->g->tensor[t];
}

static Node *N(Qdq *q)
{
	return &q->g->node[q->n];
}

static int in(Qdq *q, int j)
{
	return j >= 0 && j < N(q)->nin ? N(q)->in[j] : -1;
}

static int isq(const Qdq *q, int t)
{
	return t >= 0 && t < q->nt0 && q->isq[t];
}

static int shadow_of(const Qdq *q, int t)
{
	return t >= 0 && t < q->nt0 ? q->fl[t] : -1;
}

static int is_int8(DType t)
{
	return t == DT_U8 || t == DT_I8;
}

/* ---- Quant ---- */

/* frac when every scale is 2^-f exactly and every zero point 0. */
static void set_frac(Graph *g, Quant *qt)
{
	int *f = arena_alloc(g->arena, (size_t)qt->nch * sizeof *f);
	for (int c = 0; c < qt->nch; c++) {
		int e;
		if (qt->zp[c] != 0 || frexp(qt->scale[c], &e) != 0.5)
			return;
		f[c] = 1 - e;
	}
	qt->frac = f;
}

/* Values of parameter input t (-1: none) in one Quant. */
static int64_t nvals(Qdq *q, int t)
{
	return t >= 0 ? ir_numel(T(q, t)) : 1;
}

/* The Quant of integers of dtype dt read with scale input s (-1: 1) and
 * zero point input z (-1: 0), channels along axis when either holds more
 * than one value; scale_mul multiplies every scale (a bias's sx).  NULL
 * after reporting a bad scale. */
static Quant *quant_of(Qdq *q, int s, int z, DType dt, int axis, double scale_mul)
{
	Graph *g = q->g;
	int64_t ns = nvals(q, s), nz = nvals(q, z);
	int nch = (int)(ns > nz ? ns : nz);
	Quant *qt = ir_quant_new(g->arena, nch, nch > 1 ? axis : -1, dt == DT_I32 ? 32 : 8, dt == DT_U8);
	for (int c = 0; c < nch; c++) {
		qt->scale[c] = (s >= 0 ? ir_get(T(q, s), ns == 1 ? 0 : c) : 1.0) * scale_mul;
		qt->zp[c] = z >= 0 ? (int32_t)ir_get_i64(T(q, z), nz == 1 ? 0 : c) : 0;
		if (!(qt->scale[c] > 0) || !isfinite(qt->scale[c])) {
			fail(q, "scale %g of \"%s\" is not positive and finite", qt->scale[c],
			     s >= 0 ? T(q, s)->name : "?");
			return NULL;
		}
	}
	set_frac(g, qt);
	return qt;
}

static int same_quant(const Quant *a, const Quant *b)
{
	if (a == b)
		return 1;
	if (a->bits != b->bits || a->is_unsigned != b->is_unsigned || a->nch != b->nch ||
	    (a->nch > 1 && a->axis != b->axis))
		return 0;
	for (int c = 0; c < a->nch; c++)
		if (a->scale[c] != b->scale[c] || a->zp[c] != b->zp[c])
			return 0;
	return 1;
}

/* Quant of an activation: one scale (pass_qlower's activations have one). */
static Quant *act_quant(Qdq *q, int t, int s, int z, DType dt, const char *what)
{
	int p = nvals(q, s) != 1 ? s : nvals(q, z) != 1 ? z : -1;
	if (p >= 0) {
		fail(q, "%s \"%s\" is quantized per channel or row (\"%s\" has %lld values); potc "
		     "quantizes activations per tensor", what, T(q, t)->name, T(q, p)->name,
		     (long long)ir_numel(T(q, p)));
		return NULL;
	}
	return quant_of(q, s, z, dt, -1, 1.0);
}

/* Inputs j... of the node that are scales or zero points: constants. */
static int const_params(Qdq *q, const int *js, int n)
{
	for (int k = 0; k < n; k++) {
		int t = in(q, js[k]);
		if (t >= 0 && !ir_is_const(q->g, t))
			return fail(q, "scale or zero point \"%s\" is not a constant; potc needs the "
			            "model's quantization at compile time", T(q, t)->name);
	}
	return 0;
}

/* ---- tensors ---- */

/* Integer constant x's values dequantized with qt: (v - zp) * scale in
 * double, stored as f32. */
static float *dequant_data(Graph *g, const Tensor *x, Quant *qt)
{
	Tensor like = *x;
	int64_t n = ir_numel(x);
	float *v = arena_alloc(g->arena, (size_t)n * sizeof *v + 1);
	like.q = qt;
	for (int64_t i = 0; i < n; i++)
		v[i] = (float)ir_dequantize(qt, ir_quant_channel(&like, i), ir_get_i64(x, i));
	return v;
}

/* A per-channel qt must run along one axis of tensor t. */
static int fits(Qdq *q, const Quant *qt, int t)
{
	const Tensor *x = T(q, t);
	if (qt->nch > 1 && (qt->axis < 0 || qt->axis >= x->rank || x->dim[qt->axis] != qt->nch))
		return fail(q, "\"%s\" %s has %d scales or zero points that do not run along one of "
		            "its axes (per-matrix quantization is not supported)", x->name,
		            ir_dtype_name(x->dtype), qt->nch);
	return 0;
}

/* A new f32 constant: integer constant t dequantized, carrying qt. */
static int dequant_const(Qdq *q, int t, Quant *qt, const char *name)
{
	float *v = dequant_data(q->g, T(q, t), qt);
	int id = ir_const_new(q->g, name, DT_F32, T(q, t)->rank, T(q, t)->dim, v);
	T(q, id)->q = qt;
	return id;
}

static int is_output(const Graph *g, int t)
{
	for (int i = 0; i < g->noutput; i++)
		if (g->output[i] == t)
			return 1;
	return 0;
}

/* Graph output `from` becomes `to`, which takes the output's name when it
 * is a computed tensor (the user's API keeps its names). */
static int replace_output(Qdq *q, int from, int to)
{
	Graph *g = q->g;
	if (is_output(g, to))
		return fail(q, "graph outputs \"%s\" and \"%s\" become one tensor", T(q, from)->name,
		            T(q, to)->name);
	for (int i = 0; i < g->noutput; i++)
		if (g->output[i] == from)
			g->output[i] = to;
	T(q, from)->is_output = 0;
	T(q, to)->is_output = 1;
	if (T(q, to)->kind == TK_VALUE) {
		const char *name = T(q, from)->name;
		T(q, from)->name = arena_printf(g->arena, "%s.int", name);
		T(q, to)->name = name;
	}
	return 0;
}

/* Every later read of tensor from (node inputs, graph outputs) reads to. */
static int replace_uses(Qdq *q, int from, int to)
{
	Graph *g = q->g;
	for (int i = q->n + 1; i < g->nnode; i++)
		for (int j = 0; !g->node[i].dead && j < g->node[i].nin; j++)
			if (g->node[i].in[j] == from)
				g->node[i].in[j] = to;
	return is_output(g, from) ? replace_output(q, from, to) : 0;
}

/* The float tensor standing for integer tensor t as a reader with scale s,
 * zero point z (inputs, -1 absent) and channel axis sees it; -1 after
 * reporting.  A reader whose parameters differ from the shadow's Quant
 * gets the shadow anyway: the producer's quantization is what the
 * integers mean. */
static int shadow(Qdq *q, int t, int s, int z, int axis, double scale_mul)
{
	Tensor *x = T(q, t);
	if (x->kind == TK_CONST) {
		if (!is_int8(x->dtype) && x->dtype != DT_I32)
			return fail(q, "constant \"%s\" is %s; quantized constants are u8, i8 or i32",
			            x->name, ir_dtype_name(x->dtype)), -1;
		Quant *qt = quant_of(q, s, z, x->dtype, axis, scale_mul);
		if (!qt || fits(q, qt, t))
			return -1;
		return dequant_const(q, t, qt, arena_printf(q->g->arena, "%s.real", T(q, t)->name));
	}
	if (shadow_of(q, t) >= 0)
		return shadow_of(q, t);
	if (x->kind == TK_INPUT && is_int8(x->dtype) && t < q->nt0) {
		x->q = act_quant(q, t, s, z, x->dtype, "graph input");
		if (!x->q)
			return -1;
		q->fl[t] = t;
		q->isq[t] = 1;
		return t;
	}
	return fail(q, "\"%s\" (%s) is not a constant, an integer graph input, or the output of "
	            "QuantizeLinear, a QLinear op or data movement of those: potc cannot tell "
	            "its quantization", x->name, ir_dtype_name(x->dtype)), -1;
}

/* A new f32 tensor shaped like t, named "<t>.real" (a graph output takes
 * t's own name back in replace_output). */
static int float_like(Qdq *q, int t)
{
	const char *name = arena_printf(q->g->arena, "%s.real", T(q, t)->name);
	return ir_tensor_new(q->g, name, DT_F32, T(q, t)->rank, T(q, t)->dim);
}

/* Node q->n's output 0 becomes tensor id (its old output loses its producer). */
static void set_output(Qdq *q, int id)
{
	T(q, N(q)->out[0])->producer = -1;
	N(q)->out[0] = id;
	T(q, id)->producer = q->n;
}

/* ---- QuantizeLinear, DequantizeLinear ---- */

static int quantize(Qdq *q)
{
	int x = in(q, 0), y = N(q)->out[0];
	if (const_params(q, (const int[]){1, 2}, 2))
		return 1;
	int xf = isq(q, x) ? shadow_of(q, x) : x;
	if (T(q, xf)->dtype != DT_F32)
		return fail(q, "QuantizeLinear of \"%s\" (%s): potc quantizes float tensors",
		            T(q, x)->name, ir_dtype_name(T(q, x)->dtype));
	Quant *qt;
	if (T(q, xf)->kind == TK_CONST) {
		int axis = N(q)->a.axis.axis < 0 ? N(q)->a.axis.axis + T(q, x)->rank : N(q)->a.axis.axis;
		qt = quant_of(q, in(q, 1), in(q, 2), T(q, y)->dtype, axis, 1.0);
	} else {
		qt = act_quant(q, x, in(q, 1), in(q, 2), T(q, y)->dtype, "activation");
	}
	if (!qt)
		return 1;
	q->isq[y] = 1;
	if (!T(q, xf)->q || same_quant(T(q, xf)->q, qt)) {
		if (!T(q, xf)->q)
			T(q, xf)->q = qt;
		q->fl[y] = xf;
		N(q)->dead = 1;
		return 0;
	}
	/* x is quantized already, differently: requantize with a Clip that has
	 * no bounds (pass_qlower: rescale to the output's scale and clamp). */
	int id = float_like(q, y);
	T(q, id)->q = qt;
	N(q)->op = OP_CLIP;
	N(q)->nin = 1;
	N(q)->in[0] = xf;
	memset(&N(q)->a, 0, sizeof N(q)->a);
	set_output(q, id);
	q->fl[y] = id;
	return 0;
}

/* The Quant of a ConvInteger / MatMulInteger sum: 32 bits, scale 1, zp 0. */
static int is_unit(const Quant *qt)
{
	return qt && qt->bits == 32 && qt->nch == 1 && qt->scale[0] == 1 && qt->zp[0] == 0;
}

/* DequantizeLinear(sum, s) of a ConvInteger / MatMulInteger sum is a real
 * scaling of the float sum f (unlike a QuantizeLinear's integers, whose
 * real meaning is the Q's): the node becomes Mul(f, s). */
static int scale_sum(Qdq *q, int f)
{
	int s = in(q, 1), z = in(q, 2);
	if (ir_numel(T(q, s)) != 1 || (z >= 0 && (ir_numel(T(q, z)) != 1 || ir_get_i64(T(q, z), 0) != 0)))
		return fail(q, "DequantizeLinear of the integer sum \"%s\" with a zero point or per "
		            "channel scales is not supported", T(q, in(q, 0))->name);
	Node *n = N(q);
	n->op = OP_MUL;
	n->nin = 2;
	n->in[0] = f;
	memset(&n->a, 0, sizeof n->a);
	if (T(q, s)->rank != 0)        /* a one-element vector would broadcast to rank 1 */
		n->in[1] = ir_const_new(q->g, arena_printf(q->g->arena, "%s.scalar", T(q, s)->name),
		                        DT_F32, 0, NULL, T(q, s)->data);
	return 0;
}

static int dequantize(Qdq *q)
{
	int x = in(q, 0), y = N(q)->out[0];
	if (const_params(q, (const int[]){1, 2}, 2))
		return 1;
	Tensor *xt = T(q, x);
	int axis = N(q)->a.axis.axis < 0 ? N(q)->a.axis.axis + xt->rank : N(q)->a.axis.axis;
	if (xt->kind == TK_CONST) {
		/* the output itself becomes the dequantized constant */
		Quant *qt = quant_of(q, in(q, 1), in(q, 2), xt->dtype, axis, 1.0);
		if (!qt || fits(q, qt, x))
			return 1;
		Tensor *yt = T(q, y);
		yt->kind = TK_CONST;
		yt->data = dequant_data(q->g, xt, qt);
		yt->q = qt;
		yt->producer = -1;
		N(q)->dead = 1;
		return 0;
	}
	int f = shadow(q, x, in(q, 1), in(q, 2), axis, 1.0);
	if (f < 0)
		return 1;
	if (is_unit(T(q, f)->q))
		return scale_sum(q, f);
	N(q)->dead = 1;
	return replace_uses(q, y, f);
}

/* ---- QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger ---- */

/* Input positions of one op (-1: it has none). */
typedef struct {
	int x, sx, zx, w, sw, zw, sy, zy, b;
} QIns;

static QIns qins(Op op)
{
	switch (op) {
	case OP_QLINEARCONV: return (QIns){0, 1, 2, 3, 4, 5, 6, 7, 8};
	case OP_QLINEARMATMUL: return (QIns){0, 1, 2, 3, 4, 5, 6, 7, -1};
	default: return (QIns){0, -1, 2, 1, -1, 3, -1, -1, -1};
	}
}

static int qlinear(Qdq *q)
{
	QIns k = qins(N(q)->op);
	int conv = N(q)->op == OP_QLINEARCONV || N(q)->op == OP_CONVINTEGER;
	if (const_params(q, (const int[]){k.sx, k.zx, k.sw, k.zw, k.sy, k.zy, k.b}, 7))
		return 1;
	int y = N(q)->out[0], w = in(q, k.w);
	int xf = shadow(q, in(q, k.x), in(q, k.sx), in(q, k.zx), -1, 1.0);
	if (xf < 0)
		return 1;
	int waxis = conv ? 0 : T(q, w)->rank - 1;
	int wf = shadow(q, w, in(q, k.sw), in(q, k.zw), waxis, 1.0);
	if (wf < 0)
		return 1;
	int bf = -1;
	if (in(q, k.b) >= 0) {     /* b at scale sx * sw[c], zp 0 */
		double sx = ir_get(T(q, in(q, k.sx)), 0);
		bf = shadow(q, in(q, k.b), in(q, k.sw), -1, 0, sx);
		if (bf < 0)
			return 1;
	}
	Quant *qt;
	if (k.sy >= 0) {
		qt = act_quant(q, y, in(q, k.sy), in(q, k.zy), T(q, y)->dtype, "output");
		if (!qt)
			return 1;
	} else {          /* the int32 sum itself: scale 1, zp 0 */
		qt = ir_quant_new(q->g->arena, 1, -1, 32, 0);
		set_frac(q->g, qt);
	}
	int id = float_like(q, y);
	T(q, id)->q = qt;
	Node *n = N(q);
	n->op = conv ? OP_CONV : OP_MATMUL;
	n->in = arena_alloc(q->g->arena, 3 * sizeof *n->in);
	n->nin = bf >= 0 ? 3 : 2;
	n->in[0] = xf;
	n->in[1] = wf;
	n->in[2] = bf;
	set_output(q, id);
	q->fl[y] = id;
	q->isq[y] = 1;
	return 0;
}

/* Cast of a ConvInteger / MatMulInteger sum to float: the shadow holds it. */
static int cast(Qdq *q)
{
	int x = in(q, 0), f = shadow_of(q, x);
	const Quant *qt = f >= 0 ? T(q, f)->q : NULL;
	int unit = qt && T(q, N(q)->out[0])->dtype == DT_F32;
	for (int c = 0; unit && c < qt->nch; c++)
		unit = qt->scale[c] == 1 && qt->zp[c] == 0;
	if (!unit)
		return fail(q, "Cast reads the quantized tensor \"%s\" as integers; potc reads "
		            "quantized tensors through DequantizeLinear", T(q, x)->name);
	N(q)->dead = 1;
	return replace_uses(q, N(q)->out[0], f);
}

/* ---- data movement ---- */

static int moves_data(Op op)
{
	switch (op) {
	case OP_IDENTITY: case OP_DROPOUT: case OP_RESHAPE: case OP_FLATTEN: case OP_SQUEEZE:
	case OP_UNSQUEEZE: case OP_TRANSPOSE: case OP_MAXPOOL: case OP_PAD: case OP_SLICE:
	case OP_GATHER: case OP_SPLIT: case OP_EXPAND: case OP_TILE: case OP_DEPTHTOSPACE:
	case OP_SPACETODEPTH: case OP_RESIZE: case OP_CONCAT:
		return 1;
	default:
		return 0;
	}
}

/* Data movement of quantized integers moves the shadow: the outputs of
 * input 0's dtype get its Quant (and the shadow's dtype). */
static int move(Qdq *q)
{
	Node *n = N(q);
	int x = n->in[0], f = shadow_of(q, x);
	DType dt = q->odt[x];
	const Quant *qt = T(q, f)->q;
	for (int j = 0; j < n->nin; j++) {
		int t = n->in[j];
		if (t < 0 || (t < q->nt0 ? q->odt[t] : T(q, t)->dtype) != dt)
			continue;               /* indices, shapes */
		if (isq(q, t) && !same_quant(T(q, shadow_of(q, t))->q, qt))
			return fail(q, "inputs \"%s\" and \"%s\" are quantized differently; %s moves "
			            "integers of one quantization", T(q, x)->name, T(q, t)->name,
			            ir_opname[n->op]);
		if (isq(q, t)) {
			n->in[j] = shadow_of(q, t);
		} else if (T(q, t)->kind == TK_CONST && T(q, f)->dtype == DT_F32) {
			n->in[j] = dequant_const(q, t, (Quant *)qt,
			                         arena_printf(q->g->arena, "%s.real", T(q, t)->name));
			n = N(q);
		} else if (T(q, t)->kind != TK_CONST) {
			return fail(q, "\"%s\" is an integer tensor of no known quantization next to "
			            "the quantized \"%s\"", T(q, t)->name, T(q, x)->name);
		}
	}
	for (int j = 0; j < n->nout; j++) {
		int y = n->out[j];
		if (y < 0 || T(q, y)->dtype != dt)
			continue;               /* MaxPool's indices */
		T(q, y)->dtype = T(q, f)->dtype;
		T(q, y)->q = (Quant *)qt;
		q->fl[y] = y;
		q->isq[y] = 1;
	}
	return 0;
}

/* ---- the pass ---- */

static int other(Qdq *q)
{
	Node *n = N(q);
	for (int j = 0; j < n->nin; j++)
		if (isq(q, n->in[j]))
			return fail(q, "%s reads the quantized tensor \"%s\" as integers; under --quant "
			            "potc reads quantized tensors only through DequantizeLinear, QLinearConv, "
			            "QLinearMatMul, ConvInteger, MatMulInteger and data movement",
			            ir_opname[n->op], T(q, n->in[j])->name);
	return 0;
}

static int rewrite(Qdq *q)
{
	Op op = N(q)->op;
	switch (op) {
	case OP_QUANTIZE: return quantize(q);
	case OP_DEQUANTIZE: return dequantize(q);
	case OP_QLINEARCONV: case OP_QLINEARMATMUL: case OP_CONVINTEGER: case OP_MATMULINTEGER:
		return qlinear(q);
	case OP_CAST:
		return isq(q, in(q, 0)) ? cast(q) : 0;
	default:
		if (moves_data(op) && isq(q, in(q, 0)))
			return move(q);
		return other(q);
	}
}

/* Quantized integer graph outputs become their shadows. */
static int outputs(Qdq *q)
{
	for (int i = 0; i < q->g->noutput; i++) {
		int o = q->g->output[i], f = shadow_of(q, o);
		if (isq(q, o) && f != o && replace_output(q, o, f))
			return 1;
	}
	return 0;
}

/* A preset weight Quant must be per output channel where pass_qlower
 * expects it: Conv axis 0, Gemm the output column, MatMul axis 1. */
static int check_weights(Qdq *q)
{
	Graph *g = q->g;
	for (q->n = 0; q->n < g->nnode; q->n++) {
		const Node *n = N(q);
		int w = n->nin > 1 ? n->in[1] : -1;
		const Quant *qt = w >= 0 && ir_is_const(g, w) ? T(q, w)->q : NULL;
		if (!qt || qt->nch == 1 || (n->op != OP_CONV && n->op != OP_GEMM && n->op != OP_MATMUL))
			continue;
		int want = n->op == OP_CONV ? 0 : n->op == OP_GEMM && n->a.gemm.tb ? 0 : 1;
		if (qt->axis != want)
			return fail(q, "weight \"%s\" is quantized along axis %d; %s needs axis %d (one "
			            "scale per output channel)", T(q, w)->name, qt->axis, ir_opname[n->op], want);
	}
	return 0;
}

int pass_qdq(Graph *g, Diag *d)
{
	if (!g->qcfg)
		return 0;
	Qdq q = {g, d, g->ntensor, NULL, NULL, NULL, -1};
	q.fl = malloc(((size_t)g->ntensor + 1) * sizeof *q.fl);
	q.isq = calloc((size_t)g->ntensor + 1, 1);
	q.odt = malloc(((size_t)g->ntensor + 1) * sizeof *q.odt);
	int bad = !q.fl || !q.isq || !q.odt;
	for (int t = 0; !bad && t < g->ntensor; t++) {
		q.fl[t] = -1;
		q.odt[t] = g->tensor[t].dtype;
	}
	for (q.n = 0; !bad && q.n < g->nnode; q.n++)
		if (!g->node[q.n].dead)
			bad = rewrite(&q);
	q.n = -1;
	bad = bad || outputs(&q);
	free(q.fl);
	free(q.isq);
	free(q.odt);
	if (bad)
		return 1;
	ir_compact(g);
	return check_weights(&q);
}
