/* ir_infer: output dtypes and static shapes, node by node, by the ONNX
 * operator spec (opsets 9-17).
 *
 * Requires: nodes in topological order; graph inputs and constants have
 * static shapes; attribute defaults filled in by the frontend (see ir.h).
 * Establishes: every output of a live node has a dtype and a static shape of
 * rank <= IR_MAXRANK and at most MAXNUMEL elements; Conv, ConvTranspose,
 * MaxPool and AveragePool windows carry explicit pads (autopad =
 * PAD_EXPLICIT; ConvTranspose's output_shape and output_padding folded in).
 * A node that breaks a rule gets one error naming it, never a crash.
 *
 * One static rule per op family, chosen by the table at the bottom.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ir.h"

/* Generated code and the evaluators index elements with 32-bit ints. */
#define MAXNUMEL INT32_MAX

typedef struct {
	Graph *g;
	Diag *d;
	int n;        /* node index, for diagnostics */
	Node *node;
} Ctx;

/* A shape under construction.  Room for twice IR_MAXRANK so Gather and
 * Unsqueeze can build an over-long result that set_out then rejects. */
typedef struct {
	int rank;
	int64_t dim[2 * IR_MAXRANK];
} Shape;

/* "[1,3,224,224]", returned by value so it can sit in a call's arguments. */
typedef struct {
	char s[2 * IR_MAXRANK * 21 + 4];
} DimStr;

/* ---- helpers ---- */

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int fail(Ctx *c, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	ir_error(c->d, c->g, c->n, "%s", msg);
	return 1;
}

static DimStr dimstr(int rank, const int64_t *dim)
{
	DimStr r;
	size_t k = 1;
	r.s[0] = '[';
	r.s[1] = 0;
	for (int i = 0; i < rank && i < 2 * IR_MAXRANK; i++)
		k += (size_t)snprintf(r.s + k, sizeof r.s - k, i ? ",%" PRId64 : "%" PRId64, dim[i]);
	snprintf(r.s + k, sizeof r.s - k, "]");
	return r;
}

static DimStr tshape(const Tensor *t)
{
	return dimstr(t->rank, t->dim);
}

/* Input j, or NULL if the optional input is absent. */
static const Tensor *in(const Ctx *c, int j)
{
	if (j >= c->node->nin || c->node->in[j] < 0)
		return NULL;
	return &c->g->tensor[c->node->in[j]];
}

static Shape shape_of(const Tensor *t)
{
	Shape s = {.rank = t->rank};
	memcpy(s.dim, t->dim, sizeof t->dim);
	return s;
}

static int is_int(DType t)
{
	return (t >= DT_I8 && t <= DT_U32) || t == DT_I64;
}

/* Product of dim[from..to); 1 if it overflows int64. */
static int prod(const int64_t *dim, int from, int to, int64_t *out)
{
	int64_t p = 1;
	for (int i = from; i < to; i++)
		if (__builtin_mul_overflow(p, dim[i], &p))
			return 1;
	*out = p;
	return 0;
}

/* Every tensor potc handles: rank <= IR_MAXRANK, dims known and small
 * enough that the element count fits MAXNUMEL (so the int64 arithmetic in
 * the rules below cannot overflow). */
static int check_size(Ctx *c, const char *role, const char *name, int rank, const int64_t *dim)
{
	if (rank < 0 || rank > IR_MAXRANK)
		return fail(c, "%s '%s' would have rank %d; potc supports at most %d",
		            role, name, rank, IR_MAXRANK);
	for (int i = 0; i < rank; i++)
		if (dim[i] < 0)
			return fail(c, "%s '%s' has negative or unknown dim %d in %s; potc needs static shapes",
			            role, name, i, dimstr(rank, dim).s);
	for (int i = 0; i < rank; i++)
		if (dim[i] > MAXNUMEL)
			return fail(c, "%s '%s' %s: dim %d exceeds %d", role, name,
			            dimstr(rank, dim).s, i, MAXNUMEL);
	int64_t n;
	if (prod(dim, 0, rank, &n))
		return fail(c, "%s '%s' %s: element count overflows int64", role, name,
		            dimstr(rank, dim).s);
	if (n > MAXNUMEL)
		return fail(c, "%s '%s' %s has %" PRId64 " elements; potc supports at most %d",
		            role, name, dimstr(rank, dim).s, n, MAXNUMEL);
	return 0;
}

/* Set output j (if present) to dtype dt and shape s; any declared shape is
 * replaced. */
static int set_out(Ctx *c, int j, DType dt, const Shape *s)
{
	if (j >= c->node->nout || c->node->out[j] < 0)
		return 0;
	Tensor *t = &c->g->tensor[c->node->out[j]];
	if (check_size(c, "output", t->name, s->rank, s->dim))
		return 1;
	if (t->kind != TK_VALUE)
		return fail(c, "internal: output '%s' is not a computed tensor", t->name);
	t->dtype = dt;
	t->rank = s->rank;
	for (int i = 0; i < IR_MAXRANK; i++)
		t->dim[i] = i < s->rank ? s->dim[i] : -1;
	return 0;
}

/* ONNX axis against rank r: valid in [-r, r-1], or [-r, r] when the axis
 * may point past the last dim (Flatten, legacy Softmax). */
static int norm_axis(Ctx *c, int64_t axis, int r, int past_end, int *out)
{
	int64_t hi = past_end ? r : r - 1;
	if (axis < -(int64_t)r || axis > hi)
		return fail(c, "axis %" PRId64 " is out of range [%d, %" PRId64 "] for rank %d",
		            axis, -r, hi, r);
	*out = (int)(axis < 0 ? axis + r : axis);
	return 0;
}

/* Normalise nax axes against rank r into mark[]; a repeated axis is an error. */
static int mark_axes(Ctx *c, const int64_t *ax, int nax, int r, char *mark)
{
	for (int i = 0; i < nax; i++) {
		int a = 0;
		if (norm_axis(c, ax[i], r, 0, &a))
			return 1;
		if (mark[a])
			return fail(c, "axis %" PRId64 " is given twice", ax[i]);
		mark[a] = 1;
	}
	return 0;
}

/* The values of input j, a constant integer vector of at most max values. */
static int const_ints(Ctx *c, int j, int64_t *v, int max, int *cnt)
{
	const Tensor *t = in(c, j);
	if (!ir_is_const(c->g, c->node->in[j]))
		return fail(c, "shape input '%s' is not a constant; potc needs static shapes", t->name);
	if (!is_int(t->dtype))
		return fail(c, "input '%s' must be an integer tensor, not %s", t->name,
		            ir_dtype_name(t->dtype));
	if (t->rank != 1)
		return fail(c, "input '%s' must be 1-D, has shape %s", t->name, tshape(t).s);
	if (t->dim[0] > max)
		return fail(c, "input '%s' has %" PRId64 " values; at most %d are allowed here",
		            t->name, t->dim[0], max);
	*cnt = (int)t->dim[0];
	for (int i = 0; i < *cnt; i++)
		v[i] = ir_get_i64(t, i);
	return 0;
}

/* Inputs j and k must share a dtype. */
static int same_dtype(Ctx *c, int j, int k)
{
	const Tensor *a = in(c, j), *b = in(c, k);
	if (a && b && a->dtype != b->dtype)
		return fail(c, "input '%s' is %s but '%s' is %s; they must have one dtype",
		            a->name, ir_dtype_name(a->dtype), b->name, ir_dtype_name(b->dtype));
	return 0;
}

/* Input j, if present, must hold exactly one element.  The spec says
 * scalar; like onnxruntime, a one-element vector is accepted too. */
static int scalar_input(Ctx *c, int j)
{
	const Tensor *t = in(c, j);
	if (t && (t->rank > 1 || ir_numel(t) != 1))
		return fail(c, "input '%s' must be a scalar, has shape %s", t->name, tshape(t).s);
	return 0;
}

/* ---- broadcasting ---- */

/* numpy: align trailing dims; each pair must be equal or hold a 1.
 * out may alias da or db. */
static int bcast(int ra, const int64_t *da, int rb, const int64_t *db, int *r, int64_t *out)
{
	int64_t tmp[IR_MAXRANK];
	int rr = ra > rb ? ra : rb;
	if (rr > IR_MAXRANK)
		return 1;
	for (int i = 0; i < rr; i++) {
		int64_t x = i < rr - ra ? 1 : da[i - (rr - ra)];
		int64_t y = i < rr - rb ? 1 : db[i - (rr - rb)];
		if (x != y && x != 1 && y != 1)
			return 1;
		tmp[i] = x == 1 ? y : x;
	}
	memcpy(out, tmp, (size_t)rr * sizeof *tmp);
	*r = rr;
	return 0;
}

int ir_broadcast(const Tensor *a, const Tensor *b, int *rank, int64_t *dim)
{
	return bcast(a->rank, a->dim, b->rank, b->dim, rank, dim);
}

/* Does shape f broadcast to shape t without changing t (ONNX
 * "unidirectional broadcasting")? */
static int unidir(int rf, const int64_t *df, int rt, const int64_t *dt)
{
	if (rf > rt)
		return 0;
	for (int i = 0; i < rf; i++)
		if (df[i] != 1 && df[i] != dt[rt - rf + i])
			return 0;
	return 1;
}

/* ---- element-wise ---- */

static int eltwise_types(Ctx *c)
{
	Node *nd = c->node;
	int first = 0;
	if (nd->op == OP_WHERE) {
		if (in(c, 0)->dtype != DT_BOOL)
			return fail(c, "condition '%s' is %s, not bool", in(c, 0)->name,
			            ir_dtype_name(in(c, 0)->dtype));
		first = 1;
	}
	if (nd->op == OP_POW)  /* the exponent may have its own type (opset 12) */
		return 0;
	for (int j = first + 1; j < nd->nin; j++)
		if (same_dtype(c, first, j))
			return 1;
	return 0;
}

/* Binary and n-ary ops with numpy broadcasting over every input. */
static int eltwise(Ctx *c)
{
	Node *nd = c->node;
	Shape s = {0};
	for (int j = 0; j < nd->nin; j++) {
		const Tensor *t = in(c, j);
		if (!t)
			return fail(c, "input %d is missing", j);
		DimStr before = dimstr(s.rank, s.dim);
		if (bcast(s.rank, s.dim, t->rank, t->dim, &s.rank, s.dim))
			return fail(c, "input '%s' %s does not broadcast with %s", t->name,
			            tshape(t).s, before.s);
	}
	if (eltwise_types(c))
		return 1;
	const Tensor *x = in(c, nd->op == OP_WHERE ? 1 : 0);
	if (nd->op == OP_PRELU && (s.rank != x->rank || memcmp(s.dim, x->dim, sizeof x->dim[0] * (size_t)s.rank)))
		return fail(c, "slope '%s' %s does not broadcast to x %s", in(c, 1)->name,
		            tshape(in(c, 1)).s, tshape(x).s);
	int cmp = nd->op == OP_EQUAL || nd->op == OP_LESS || nd->op == OP_GREATER ||
	          nd->op == OP_GREATEREQ || nd->op == OP_LESSEQ;
	return set_out(c, 0, cmp ? DT_BOOL : x->dtype, &s);
}

/* Same shape and dtype as x; Clip's min and max are scalars. */
static int unary(Ctx *c)
{
	const Tensor *x = in(c, 0);
	for (int j = 1; j < c->node->nin; j++)
		if (scalar_input(c, j) || same_dtype(c, 0, j))
			return 1;
	Shape s = shape_of(x);
	return set_out(c, 0, x->dtype, &s);
}

/* ---- sliding windows: Conv, MaxPool, AveragePool ---- */

static int64_t kext(const Window *w, int i)
{
	return ((int64_t)w->k[i] - 1) * w->d[i] + 1;
}

/* x is [N, C, spatial...] with nsp spatial dims; k, s, d positive. */
static int check_window(Ctx *c, const Window *w, const Tensor *x)
{
	if (x->rank < 3 || x->rank - 2 > IR_MAXSP)
		return fail(c, "input '%s' %s must be [N, C] and 1 to %d spatial dims",
		            x->name, tshape(x).s, IR_MAXSP);
	if (w->nsp != x->rank - 2)
		return fail(c, "window has %d spatial dims but input '%s' %s has %d",
		            w->nsp, x->name, tshape(x).s, x->rank - 2);
	if (w->autopad < PAD_EXPLICIT || w->autopad > PAD_SAME_LOWER)
		return fail(c, "internal: bad auto_pad %d", (int)w->autopad);
	for (int i = 0; i < w->nsp; i++) {
		if (w->k[i] < 1 || w->s[i] < 1 || w->d[i] < 1)
			return fail(c, "spatial dim %d: kernel %d, stride %d and dilation %d must be positive",
			            i, w->k[i], w->s[i], w->d[i]);
		if (kext(w, i) > MAXNUMEL)
			return fail(c, "spatial dim %d: dilated kernel is too large", i);
		if (w->autopad == PAD_EXPLICIT && (w->pad[i] < 0 || w->pad[w->nsp + i] < 0))
			return fail(c, "spatial dim %d: pads %d and %d must not be negative",
			            i, w->pad[i], w->pad[w->nsp + i]);
	}
	return 0;
}

/* auto_pad: SAME pads so that out = ceil(in / stride), the odd pad at the
 * end (SAME_UPPER) or the beginning (SAME_LOWER); VALID pads nothing. */
static void resolve_autopad(Window *w, int i, int64_t in)
{
	int64_t out = (in + w->s[i] - 1) / w->s[i];
	int64_t total = (out - 1) * w->s[i] + kext(w, i) - in;
	if (w->autopad == PAD_VALID || total < 0)
		total = 0;
	int64_t small = total / 2;
	w->pad[i] = (int)(w->autopad == PAD_SAME_LOWER ? total - small : small);
	w->pad[w->nsp + i] = (int)(total - w->pad[i]);
}

/* Output length of spatial dim i, pads explicit. */
static int window_len(Ctx *c, const Window *w, int i, int64_t in, int64_t *out)
{
	int64_t pb = w->pad[i], padded = in + pb + w->pad[w->nsp + i];
	int64_t ek = kext(w, i), s = w->s[i];
	if (padded < ek)
		return fail(c, "spatial dim %d: window %" PRId64 " (kernel %d, dilation %d) is larger "
		            "than the padded input %" PRId64, i, ek, w->k[i], w->d[i], padded);
	int64_t span = padded - ek;
	*out = span / s + 1;
	/* ceil_mode adds a last partial window, but not one that would start
	 * in the end padding (ONNX reference, as PyTorch). */
	if (w->ceil && span % s != 0 && *out * s < in + pb)
		(*out)++;
	return 0;
}

/* Spatial dims of the output into s->dim[2..]; resolves auto_pad. */
static int window_shape(Ctx *c, const Tensor *x, Shape *s)
{
	Window *w = &c->node->a.win;
	s->rank = x->rank;
	for (int i = 0; i < w->nsp; i++) {
		if (w->autopad != PAD_EXPLICIT)
			resolve_autopad(w, i, x->dim[2 + i]);
		if (window_len(c, w, i, x->dim[2 + i], &s->dim[2 + i]))
			return 1;
	}
	w->autopad = PAD_EXPLICIT;
	return 0;
}

/* x [N, C, ...], w [M, C/group, k...], b [M]. */
static int conv_channels(Ctx *c, const Tensor *x, const Tensor *w, const Tensor *b)
{
	int64_t g = c->node->a.win.group, m = w->dim[0];
	if (g < 1)
		return fail(c, "group %" PRId64 " must be positive", g);
	if (m % g != 0)
		return fail(c, "weight '%s' %s: %" PRId64 " output channels are not a multiple of group %" PRId64,
		            w->name, tshape(w).s, m, g);
	if (x->dim[1] != w->dim[1] * g)
		return fail(c, "input '%s' %s has %" PRId64 " channels but weight '%s' %s with group %"
		            PRId64 " expects %" PRId64, x->name, tshape(x).s, x->dim[1], w->name,
		            tshape(w).s, g, w->dim[1] * g);
	if (b && (b->rank != 1 || b->dim[0] != m))
		return fail(c, "bias '%s' %s must be [%" PRId64 "]", b->name, tshape(b).s, m);
	return same_dtype(c, 0, 1) || same_dtype(c, 0, 2);
}

static int conv(Ctx *c)
{
	const Tensor *x = in(c, 0), *w = in(c, 1), *b = in(c, 2);
	Window *win = &c->node->a.win;
	if (check_window(c, win, x))
		return 1;
	if (w->rank != x->rank)
		return fail(c, "weight '%s' %s and input '%s' %s differ in rank",
		            w->name, tshape(w).s, x->name, tshape(x).s);
	for (int i = 0; i < win->nsp; i++)
		if (win->k[i] != w->dim[2 + i])
			return fail(c, "kernel_shape[%d] = %d does not match weight '%s' %s",
			            i, win->k[i], w->name, tshape(w).s);
	if (conv_channels(c, x, w, b))
		return 1;
	Shape s = {.dim = {x->dim[0], w->dim[0]}};
	if (window_shape(c, x, &s))
		return 1;
	return set_out(c, 0, x->dtype, &s);
}

/* MaxPool's optional second output holds int64 indices, same shape. */
static int pool(Ctx *c)
{
	const Tensor *x = in(c, 0);
	if (check_window(c, &c->node->a.win, x))
		return 1;
	Shape s = {.dim = {x->dim[0], x->dim[1]}};
	if (window_shape(c, x, &s))
		return 1;
	return set_out(c, 0, x->dtype, &s) || set_out(c, 1, DT_I64, &s);
}

static int globalpool(Ctx *c)
{
	const Tensor *x = in(c, 0);
	if (x->rank < 2)
		return fail(c, "input '%s' %s must be [N, C, ...]", x->name, tshape(x).s);
	Shape s = shape_of(x);
	for (int i = 2; i < s.rank; i++)
		s.dim[i] = 1;
	return set_out(c, 0, x->dtype, &s);
}

/* ---- other compute ---- */

/* numpy matmul: a 1-D a is [1, K], a 1-D b is [K, 1], and the added dim is
 * dropped again; the dims before the last two broadcast. */
static int matmul(Ctx *c)
{
	const Tensor *a = in(c, 0), *b = in(c, 1);
	if (a->rank < 1 || b->rank < 1)
		return fail(c, "inputs '%s' %s and '%s' %s must have rank >= 1",
		            a->name, tshape(a).s, b->name, tshape(b).s);
	int64_t m = a->rank > 1 ? a->dim[a->rank - 2] : 1, ka = a->dim[a->rank - 1];
	int64_t kb = b->rank > 1 ? b->dim[b->rank - 2] : b->dim[0];
	int64_t n = b->rank > 1 ? b->dim[b->rank - 1] : 1;
	if (ka != kb)
		return fail(c, "inner dims of '%s' %s and '%s' %s differ",
		            a->name, tshape(a).s, b->name, tshape(b).s);
	Shape s;
	int ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank > 2 ? b->rank - 2 : 0;
	if (bcast(ra, a->dim, rb, b->dim, &s.rank, s.dim))
		return fail(c, "batch dims of '%s' %s and '%s' %s do not broadcast",
		            a->name, tshape(a).s, b->name, tshape(b).s);
	if (a->rank > 1)
		s.dim[s.rank++] = m;
	if (b->rank > 1)
		s.dim[s.rank++] = n;
	return same_dtype(c, 0, 1) || set_out(c, 0, a->dtype, &s);
}

/* A [M, K] (or [K, M] if ta), B [K, N] (or [N, K] if tb), C broadcasts to [M, N]. */
static int gemm(Ctx *c)
{
	const Tensor *a = in(c, 0), *b = in(c, 1), *cc = in(c, 2);
	int ta = c->node->a.gemm.ta != 0, tb = c->node->a.gemm.tb != 0;
	if (a->rank != 2 || b->rank != 2)
		return fail(c, "A '%s' %s and B '%s' %s must be 2-D",
		            a->name, tshape(a).s, b->name, tshape(b).s);
	if (a->dim[1 - ta] != b->dim[tb])
		return fail(c, "inner dims of A '%s' %s (transA %d) and B '%s' %s (transB %d) differ",
		            a->name, tshape(a).s, ta, b->name, tshape(b).s, tb);
	Shape s = {.rank = 2, .dim = {a->dim[ta], b->dim[1 - tb]}};
	if (cc && !unidir(cc->rank, cc->dim, 2, s.dim))
		return fail(c, "C '%s' %s does not broadcast to [M, N] = %s",
		            cc->name, tshape(cc).s, dimstr(2, s.dim).s);
	return same_dtype(c, 0, 1) || same_dtype(c, 0, 2) || set_out(c, 0, a->dtype, &s);
}

/* scale, bias, mean and var hold one value per channel (dim 1; a 1-D x
 * has one channel, as ONNX's own inference says). */
static int batchnorm(Ctx *c)
{
	const Tensor *x = in(c, 0);
	if (x->rank < 1)
		return fail(c, "input '%s' must have rank >= 1", x->name);
	int64_t ch = x->rank > 1 ? x->dim[1] : 1;
	for (int j = 1; j < 5; j++) {
		const Tensor *p = in(c, j);
		if (p->rank != 1 || p->dim[0] != ch)
			return fail(c, "'%s' %s must be [%" PRId64 "], one value per channel of '%s' %s",
			            p->name, tshape(p).s, ch, x->name, tshape(x).s);
	}
	Shape s = shape_of(x);
	return set_out(c, 0, x->dtype, &s);
}

/* Legacy (opset < 13) Softmax coerces x to 2-D at axis like Flatten, so
 * axis == rank is meaningful there. */
static int softmax(Ctx *c)
{
	const Tensor *x = in(c, 0);
	int axis = 0;
	if (norm_axis(c, c->node->a.axis.axis, x->rank, c->node->a.axis.legacy, &axis))
		return 1;
	Shape s = shape_of(x);
	return set_out(c, 0, x->dtype, &s);
}

/* axes absent or empty: every axis, or none with noop_empty. */
static int reduce(Ctx *c)
{
	const Tensor *x = in(c, 0);
	int64_t ax[IR_MAXRANK];
	int nax = 0;
	char red[IR_MAXRANK] = {0};
	if (in(c, 1) && const_ints(c, 1, ax, IR_MAXRANK, &nax))
		return 1;
	if (nax == 0)
		memset(red, !c->node->a.reduce.noop_empty, sizeof red);
	else if (mark_axes(c, ax, nax, x->rank, red))
		return 1;
	Shape s = {0};
	for (int i = 0; i < x->rank; i++)
		if (!red[i])
			s.dim[s.rank++] = x->dim[i];
		else if (c->node->a.reduce.keepdims)
			s.dim[s.rank++] = 1;
	return set_out(c, 0, x->dtype, &s);
}

/* ---- math, logic and bit ops (ops.def's section of that name) ---- */

/* IsNaN, IsInf: x's shape, bool. */
static int classify(Ctx *c)
{
	Shape s = shape_of(in(c, 0));
	return set_out(c, 0, DT_BOOL, &s);
}

/* And/Or/Xor, GreaterOrEqual/LessOrEqual, Mod, BitShift: eltwise's
 * broadcasting, and the dtypes each op takes. */
static int math_eltwise(Ctx *c)
{
	Op op = c->node->op;
	DType dt = in(c, 0)->dtype;
	if (eltwise(c))
		return 1;
	if ((op == OP_AND || op == OP_OR || op == OP_XOR) && dt != DT_BOOL)
		return fail(c, "inputs are %s; %s takes bool", ir_dtype_name(dt), ir_opname[op]);
	if (op == OP_BITSHIFT && dt != DT_U8 && dt != DT_U16 && dt != DT_U32)
		return fail(c, "inputs are %s; BitShift takes u8, u16 or u32", ir_dtype_name(dt));
	if (op == OP_MOD && dt == DT_BOOL)
		return fail(c, "Mod does not take bool");
	if (op == OP_MOD && (dt == DT_F32 || dt == DT_F64) && !c->node->a.mod.fmod)
		return fail(c, "Mod of %s needs attribute fmod = 1", ir_dtype_name(dt));
	return 0;
}

/* ArgMax, ArgMin: i64, the axis dropped or kept as 1. */
static int argext(Ctx *c)
{
	const Tensor *x = in(c, 0);
	int axis = 0;
	if (norm_axis(c, c->node->a.arg.axis, x->rank, 0, &axis))
		return 1;
	if (x->dim[axis] == 0)
		return fail(c, "axis %d of %s is empty: there is no index to return", axis, tshape(x).s);
	Shape s = shape_of(x);
	if (c->node->a.arg.keepdims)
		s.dim[axis] = 1;
	else
		for (s.rank--; axis < s.rank; axis++)
			s.dim[axis] = s.dim[axis + 1];
	return set_out(c, 0, DT_I64, &s);
}

/* CumSum: x's shape; the axis must be one constant integer. */
static int cumsum(Ctx *c)
{
	const Tensor *x = in(c, 0), *t = in(c, 1);
	int axis = 0;
	if (!ir_is_const(c->g, c->node->in[1]))
		return fail(c, "axis input '%s' is not a constant; potc needs static shapes and axes",
		            t->name);
	if (!is_int(t->dtype) || t->rank > 1 || ir_numel(t) != 1)
		return fail(c, "axis input '%s' must hold one integer, it is %s %s", t->name,
		            ir_dtype_name(t->dtype), tshape(t).s);
	if (norm_axis(c, ir_get_i64(t, 0), x->rank, 0, &axis))
		return 1;
	Shape s = shape_of(x);
	return set_out(c, 0, x->dtype, &s);
}

/* ---- views and data movement ---- */

/* Dropout-7 (opset 9) gives the mask x's type; from opset 10 it is bool. */
static int dropout(Ctx *c)
{
	const Tensor *x = in(c, 0);
	Shape s = shape_of(x);
	DType mask = c->g->opset >= 1 && c->g->opset < 10 ? x->dtype : DT_BOOL;
	if (scalar_input(c, 1) || scalar_input(c, 2))
		return 1;
	return set_out(c, 0, x->dtype, &s) || set_out(c, 1, mask, &s);
}

/* s holds the explicit dims, infer the index of the -1 (or -1), known the
 * product of the others. */
static int reshape_finish(Ctx *c, const Tensor *x, Shape *s, int infer, int64_t known)
{
	int64_t total = ir_numel(x);
	if (infer < 0 && known != total)
		return fail(c, "shape %s has %" PRId64 " elements but input '%s' %s has %" PRId64,
		            dimstr(s->rank, s->dim).s, known, x->name, tshape(x).s, total);
	if (infer >= 0) {
		if (known == 0 || total % known != 0)
			return fail(c, "cannot infer the -1 in the shape: %" PRId64 " elements of '%s' %s "
			            "are not a multiple of %" PRId64, total, x->name, tshape(x).s, known);
		s->dim[infer] = total / known;
	}
	return set_out(c, 0, x->dtype, s);
}

static int reshape(Ctx *c)
{
	const Tensor *x = in(c, 0);
	int64_t v[IR_MAXRANK], known = 1;
	int nv, infer = -1, zero = 0, allowzero = c->node->a.reshape.allowzero;
	if (const_ints(c, 1, v, IR_MAXRANK, &nv))
		return 1;
	Shape s = {.rank = nv};
	for (int i = 0; i < nv; i++) {
		int64_t d = v[i];
		zero |= d == 0;
		if (d == 0 && !allowzero) {
			if (i >= x->rank)
				return fail(c, "shape %s: 0 at %d copies a dim that input '%s' %s does not have",
				            dimstr(nv, v).s, i, x->name, tshape(x).s);
			d = x->dim[i];
		}
		if (d < -1)
			return fail(c, "shape %s: dim %d is negative", dimstr(nv, v).s, i);
		if (d == -1 && infer >= 0)
			return fail(c, "shape %s has more than one -1", dimstr(nv, v).s);
		if (d == -1) {
			infer = i;
			continue;
		}
		s.dim[i] = d;
		if (__builtin_mul_overflow(known, d, &known))
			return fail(c, "shape %s: element count overflows int64", dimstr(nv, v).s);
	}
	if (allowzero && zero && infer >= 0)
		return fail(c, "shape %s: with allowzero, 0 and -1 cannot both appear", dimstr(nv, v).s);
	return reshape_finish(c, x, &s, infer, known);
}

/* 2-D [prod(d[:axis]), prod(d[axis:])], axis in [-r, r]. */
static int flatten(Ctx *c)
{
	const Tensor *x = in(c, 0);
	int axis = 0;
	if (norm_axis(c, c->node->a.axis.axis, x->rank, 1, &axis))
		return 1;
	Shape s = {.rank = 2};
	if (prod(x->dim, 0, axis, &s.dim[0]) || prod(x->dim, axis, x->rank, &s.dim[1]))
		return fail(c, "flattening '%s' %s overflows int64", x->name, tshape(x).s);
	return set_out(c, 0, x->dtype, &s);
}

/* Without axes (or with an empty axes tensor, as onnxruntime) every size-1
 * dim goes; a named axis must have size 1. */
static int squeeze(Ctx *c)
{
	const Tensor *x = in(c, 0);
	int64_t ax[IR_MAXRANK];
	int nax = 0;
	char drop[IR_MAXRANK] = {0};
	if (in(c, 1) && (const_ints(c, 1, ax, IR_MAXRANK, &nax) || mark_axes(c, ax, nax, x->rank, drop)))
		return 1;
	for (int i = 0; i < x->rank; i++) {
		if (nax == 0)
			drop[i] = x->dim[i] == 1;
		else if (drop[i] && x->dim[i] != 1)
			return fail(c, "cannot squeeze axis %d of '%s' %s: its size is not 1",
			            i, x->name, tshape(x).s);
	}
	Shape s = {0};
	for (int i = 0; i < x->rank; i++)
		if (!drop[i])
			s.dim[s.rank++] = x->dim[i];
	return set_out(c, 0, x->dtype, &s);
}

/* axes name positions in the output, of rank r + len(axes). */
static int unsqueeze(Ctx *c)
{
	const Tensor *x = in(c, 0);
	int64_t ax[IR_MAXRANK];
	int nax;
	if (const_ints(c, 1, ax, IR_MAXRANK, &nax))
		return 1;
	int r = x->rank + nax;
	if (r > IR_MAXRANK)
		return fail(c, "output would have rank %d; potc supports at most %d", r, IR_MAXRANK);
	char ins[IR_MAXRANK] = {0};
	if (mark_axes(c, ax, nax, r, ins))
		return 1;
	Shape s = {.rank = r};
	for (int i = 0, k = 0; i < r; i++)
		s.dim[i] = ins[i] ? 1 : x->dim[k++];
	return set_out(c, 0, x->dtype, &s);
}

static int transpose(Ctx *c)
{
	const Tensor *x = in(c, 0);
	int np = c->node->a.perm.n, seen[IR_MAXRANK] = {0};
	const int *perm = c->node->a.perm.p;
	if (np != 0 && np != x->rank)
		return fail(c, "perm has %d entries but input '%s' %s has rank %d",
		            np, x->name, tshape(x).s, x->rank);
	Shape s = {.rank = x->rank};
	for (int i = 0; i < x->rank; i++) {
		int p = np ? perm[i] : x->rank - 1 - i;
		if (p < 0 || p >= x->rank || seen[p])
			return fail(c, "perm is not a permutation of 0..%d", x->rank - 1);
		seen[p] = 1;
		s.dim[i] = x->dim[p];
	}
	return set_out(c, 0, x->dtype, &s);
}

/* Equal rank and dtype; dims agree except along axis. */
static int concat(Ctx *c)
{
	const Tensor *x = in(c, 0);
	int axis = 0;
	if (norm_axis(c, c->node->a.axis.axis, x->rank, 0, &axis))
		return 1;
	Shape s = shape_of(x);
	for (int j = 1; j < c->node->nin; j++) {
		const Tensor *t = in(c, j);
		if (!t)
			return fail(c, "input %d is missing", j);
		if (same_dtype(c, 0, j))
			return 1;
		int bad = t->rank != x->rank;
		for (int i = 0; !bad && i < x->rank; i++)
			bad = i != axis && t->dim[i] != x->dim[i];
		if (bad)
			return fail(c, "input '%s' %s does not match '%s' %s outside axis %d",
			            t->name, tshape(t).s, x->name, tshape(x).s, axis);
		s.dim[axis] += t->dim[axis];
	}
	return set_out(c, 0, x->dtype, &s);
}

/* Negative pads crop (constant mode only).  Reflect needs pads < dim and
 * edge a non-empty dim, as onnxruntime; numpy's repeated reflection is
 * not supported. */
static int pad_mode_ok(Ctx *c, const Tensor *x, int i, int64_t b, int64_t e)
{
	PadMode m = c->node->a.pad.mode;
	if (m == PADMODE_CONSTANT)
		return 0;
	if (b < 0 || e < 0)
		return fail(c, "negative pads are supported only in constant mode");
	if (m == PADMODE_REFLECT && (b >= x->dim[i] || e >= x->dim[i]))
		return fail(c, "reflect pads %" PRId64 " and %" PRId64 " of dim %d must be smaller than its size %" PRId64,
		            b, e, i, x->dim[i]);
	if (m == PADMODE_EDGE && x->dim[i] == 0 && (b > 0 || e > 0))
		return fail(c, "edge mode cannot pad the empty dim %d", i);
	return 0;
}

/* pads: all begins, then all ends. */
static int pad(Ctx *c)
{
	const Tensor *x = in(c, 0);
	int64_t p[2 * IR_MAXRANK];
	int np;
	if (const_ints(c, 1, p, 2 * IR_MAXRANK, &np) || scalar_input(c, 2))
		return 1;
	if (np != 2 * x->rank)
		return fail(c, "pads has %d values; input '%s' %s needs %d",
		            np, x->name, tshape(x).s, 2 * x->rank);
	Shape s = {.rank = x->rank};
	for (int i = 0; i < x->rank; i++) {
		int64_t b = p[i], e = p[x->rank + i];
		if (__builtin_add_overflow(x->dim[i], b, &s.dim[i]) ||
		    __builtin_add_overflow(s.dim[i], e, &s.dim[i]))
			return fail(c, "pads %" PRId64 " and %" PRId64 " of dim %d overflow", b, e, i);
		if (s.dim[i] < 0)
			return fail(c, "pads %" PRId64 " and %" PRId64 " leave dim %d of '%s' %s negative",
			            b, e, i, x->name, tshape(x).s);
		if (pad_mode_ok(c, x, i, b, e))
			return 1;
	}
	return set_out(c, 0, x->dtype, &s);
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* ONNX Slice: negative start/end count from the end, then clamp to [0, dim]
 * going forward, to [0, dim-1] (start) and [-1, dim-1] (end) going back. */
static int64_t slice_len(int64_t dim, int64_t start, int64_t end, int64_t step)
{
	if (dim == 0)
		return 0;
	if (start < 0)
		start += dim;
	if (end < 0)
		end += dim;
	int64_t hi = step > 0 ? dim : dim - 1;
	start = clamp(start, 0, hi);
	end = clamp(end, step > 0 ? 0 : -1, hi);
	int64_t span = step > 0 ? end - start : start - end;
	if (span <= 0)
		return 0;
	uint64_t st = step > 0 ? (uint64_t)step : 0 - (uint64_t)step;  /* INT64_MIN too */
	return (int64_t)(((uint64_t)span - 1) / st + 1);
}

/* Slice inputs: starts, ends, axes (default 0..n-1), steps (default 1). */
static int slice_args(Ctx *c, int64_t v[4][IR_MAXRANK], int *n)
{
	int cnt;
	if (const_ints(c, 1, v[0], IR_MAXRANK, n) || const_ints(c, 2, v[1], IR_MAXRANK, &cnt))
		return 1;
	if (cnt != *n)
		return fail(c, "starts has %d values but ends has %d", *n, cnt);
	for (int k = 2; k < 4; k++) {
		for (int i = 0; i < *n; i++)
			v[k][i] = k == 2 ? i : 1;
		if (!in(c, k + 1))
			continue;
		if (const_ints(c, k + 1, v[k], IR_MAXRANK, &cnt))
			return 1;
		if (cnt != *n)
			return fail(c, "%s has %d values but starts has %d", k == 2 ? "axes" : "steps", cnt, *n);
	}
	return 0;
}

static int slice(Ctx *c)
{
	const Tensor *x = in(c, 0);
	int64_t v[4][IR_MAXRANK];
	int n;
	char seen[IR_MAXRANK] = {0};
	if (slice_args(c, v, &n) || mark_axes(c, v[2], n, x->rank, seen))
		return 1;
	Shape s = shape_of(x);
	for (int i = 0; i < n; i++) {
		int a = (int)(v[2][i] < 0 ? v[2][i] + x->rank : v[2][i]);
		if (v[3][i] == 0)
			return fail(c, "step of axis %d is 0", a);
		s.dim[a] = slice_len(x->dim[a], v[0][i], v[1][i], v[3][i]);
	}
	return set_out(c, 0, x->dtype, &s);
}

/* Constant indices must lie in [-n, n). */
static int check_indices(Ctx *c, const Tensor *idx, int64_t n)
{
	int64_t cnt = ir_numel(idx);
	for (int64_t i = 0; i < cnt; i++) {
		int64_t v = ir_get_i64(idx, i);
		if (v < -n || v >= n)
			return fail(c, "index %" PRId64 " in '%s' is out of range [%" PRId64 ", %" PRId64 ")",
			            v, idx->name, -n, n);
	}
	return 0;
}

/* y = x.shape[:axis] + idx.shape + x.shape[axis+1:]. */
static int gather(Ctx *c)
{
	const Tensor *x = in(c, 0), *idx = in(c, 1);
	int axis = 0;
	if (idx->dtype != DT_I32 && idx->dtype != DT_I64)
		return fail(c, "indices '%s' must be i32 or i64, not %s", idx->name,
		            ir_dtype_name(idx->dtype));
	if (norm_axis(c, c->node->a.axis.axis, x->rank, 0, &axis))
		return 1;
	Shape s = {0};
	for (int i = 0; i < axis; i++)
		s.dim[s.rank++] = x->dim[i];
	for (int i = 0; i < idx->rank; i++)
		s.dim[s.rank++] = idx->dim[i];
	for (int i = axis + 1; i < x->rank; i++)
		s.dim[s.rank++] = x->dim[i];
	if (ir_is_const(c->g, c->node->in[1]) && check_indices(c, idx, x->dim[axis]))
		return 1;
	return set_out(c, 0, x->dtype, &s);
}

/* Bidirectional: y's shape is broadcast(x.shape, shape). */
static int expand(Ctx *c)
{
	const Tensor *x = in(c, 0);
	int64_t v[IR_MAXRANK];
	int nv;
	if (const_ints(c, 1, v, IR_MAXRANK, &nv))
		return 1;
	for (int i = 0; i < nv; i++)
		if (v[i] < 0)
			return fail(c, "shape %s has a negative dim", dimstr(nv, v).s);
	Shape s;
	if (bcast(x->rank, x->dim, nv, v, &s.rank, s.dim))
		return fail(c, "input '%s' %s does not broadcast with shape %s",
		            x->name, tshape(x).s, dimstr(nv, v).s);
	return set_out(c, 0, x->dtype, &s);
}

static int tile(Ctx *c)
{
	const Tensor *x = in(c, 0);
	int64_t v[IR_MAXRANK];
	int nv;
	if (const_ints(c, 1, v, IR_MAXRANK, &nv))
		return 1;
	if (nv != x->rank)
		return fail(c, "repeats has %d values but input '%s' %s has rank %d",
		            nv, x->name, tshape(x).s, x->rank);
	Shape s = {.rank = nv};
	for (int i = 0; i < nv; i++) {
		if (v[i] < 0)
			return fail(c, "repeats %s: count %d is negative", dimstr(nv, v).s, i);
		if (__builtin_mul_overflow(x->dim[i], v[i], &s.dim[i]))
			return fail(c, "repeats %s: dim %d of '%s' %s repeated overflows int64",
			            dimstr(nv, v).s, i, x->name, tshape(x).s);
	}
	return set_out(c, 0, x->dtype, &s);
}

/* ---- structural ops: Split, DepthToSpace, ..., Resize ---- */

enum { SPLIT_MAX = 1024 };  /* outputs of one Split */

/* Sizes along axis: the split input, or nout equal parts. */
static int split_sizes(Ctx *c, int64_t dim, int64_t *v, int nout)
{
	int n = nout;
	if (in(c, 1) && const_ints(c, 1, v, SPLIT_MAX, &n))
		return 1;
	if (!in(c, 1)) {
		if (dim % nout != 0)
			return fail(c, "axis of size %" PRId64 " does not split into %d equal parts", dim, nout);
		for (int j = 0; j < nout; j++)
			v[j] = dim / nout;
	}
	if (n != nout)
		return fail(c, "split has %d sizes for %d outputs", n, nout);
	int64_t sum = 0;
	for (int j = 0; j < n; j++) {
		if (v[j] < 0 || v[j] > dim)
			return fail(c, "split size %" PRId64 " is out of range [0, %" PRId64 "]", v[j], dim);
		sum += v[j];
	}
	if (sum != dim)
		return fail(c, "split sizes add up to %" PRId64 ", the axis has %" PRId64, sum, dim);
	return 0;
}

static int split(Ctx *c)
{
	const Tensor *x = in(c, 0);
	int axis = 0, nout = c->node->nout;
	int64_t v[SPLIT_MAX];
	if (nout > SPLIT_MAX)
		return fail(c, "has %d outputs; potc splits into at most %d", nout, SPLIT_MAX);
	if (norm_axis(c, c->node->a.axis.axis, x->rank, 0, &axis) ||
	    split_sizes(c, x->dim[axis], v, nout))
		return 1;
	Shape s = shape_of(x);
	for (int j = 0; j < nout; j++) {
		s.dim[axis] = v[j];
		if (set_out(c, j, x->dtype, &s))
			return 1;
	}
	return 0;
}

/* DepthToSpace and SpaceToDepth: 4-D, blocksize b moves b*b channels to
 * (or from) a b x b block of pixels. */
static int depthspace(Ctx *c)
{
	const Tensor *x = in(c, 0);
	int64_t b = c->node->a.d2s.block;
	if (x->rank != 4)
		return fail(c, "input '%s' %s must be 4-D [N, C, H, W]", x->name, tshape(x).s);
	if (b < 1)
		return fail(c, "blocksize %" PRId64 " must be positive", b);
	Shape s = shape_of(x);
	if (c->node->op == OP_DEPTHTOSPACE) {
		if (x->dim[1] % (b * b) != 0)
			return fail(c, "%" PRId64 " channels of '%s' are not a multiple of blocksize^2 = %" PRId64,
			            x->dim[1], x->name, b * b);
		s.dim[1] /= b * b;
		s.dim[2] *= b;
		s.dim[3] *= b;
	} else {
		if (x->dim[2] % b != 0 || x->dim[3] % b != 0)
			return fail(c, "height and width of '%s' %s are not multiples of blocksize %" PRId64,
			            x->name, tshape(x).s, b);
		s.dim[1] *= b * b;
		s.dim[2] /= b;
		s.dim[3] /= b;
	}
	return set_out(c, 0, x->dtype, &s);
}

static int index_type(Ctx *c, const Tensor *idx)
{
	if (idx->dtype != DT_I32 && idx->dtype != DT_I64)
		return fail(c, "indices '%s' must be i32 or i64, not %s", idx->name, ir_dtype_name(idx->dtype));
	return 0;
}

/* idx has x's rank and no dim larger than x's, except along axis. */
static int gatherelem(Ctx *c)
{
	const Tensor *x = in(c, 0), *idx = in(c, 1);
	int axis = 0;
	if (index_type(c, idx) || norm_axis(c, c->node->a.axis.axis, x->rank, 0, &axis))
		return 1;
	int bad = idx->rank != x->rank;
	for (int i = 0; !bad && i < x->rank; i++)
		bad = i != axis && idx->dim[i] > x->dim[i];
	if (bad)
		return fail(c, "indices '%s' %s must have the rank of '%s' %s and no larger dim outside axis %d",
		            idx->name, tshape(idx).s, x->name, tshape(x).s, axis);
	if (ir_is_const(c->g, c->node->in[1]) && ir_numel(idx) && check_indices(c, idx, x->dim[axis]))
		return 1;
	Shape s = shape_of(idx);
	return set_out(c, 0, x->dtype, &s);
}

/* Constant index tuples of length m must lie in x's dims [b, b+m). */
static int check_tuples(Ctx *c, const Tensor *x, const Tensor *idx, int b, int m)
{
	int64_t n = ir_numel(idx);
	for (int64_t i = 0; i < n; i++) {
		int64_t v = ir_get_i64(idx, i), d = x->dim[b + i % m];
		if (v < -d || v >= d)
			return fail(c, "index %" PRId64 " in '%s' is out of range [%" PRId64 ", %" PRId64 ")",
			            v, idx->name, -d, d);
	}
	return 0;
}

/* y = idx.shape[:-1] + x.shape[b+m:], m = idx.shape[-1]; the first b
 * (batch_dims) dims of x and idx agree. */
static int gathernd(Ctx *c)
{
	const Tensor *x = in(c, 0), *idx = in(c, 1);
	int b = c->node->a.norm.batch, r = x->rank, q = idx->rank;
	if (index_type(c, idx))
		return 1;
	if (r < 1 || q < 1 || b < 0 || b >= r || b >= q)
		return fail(c, "batch_dims %d needs data '%s' %s and indices '%s' %s of larger rank",
		            b, x->name, tshape(x).s, idx->name, tshape(idx).s);
	int64_t m = idx->dim[q - 1];
	if (m < 1 || m > r - b)
		return fail(c, "index tuples of length %" PRId64 " do not fit data '%s' %s after %d batch dims",
		            m, x->name, tshape(x).s, b);
	for (int i = 0; i < b; i++)
		if (x->dim[i] != idx->dim[i])
			return fail(c, "batch dim %d differs between '%s' %s and '%s' %s",
			            i, x->name, tshape(x).s, idx->name, tshape(idx).s);
	if (ir_is_const(c->g, c->node->in[1]) && check_tuples(c, x, idx, b, (int)m))
		return 1;
	Shape s = {.rank = q - 1};
	memcpy(s.dim, idx->dim, sizeof(int64_t) * (size_t)(q - 1));
	for (int i = b + (int)m; i < r; i++)
		s.dim[s.rank++] = x->dim[i];
	return set_out(c, 0, x->dtype, &s);
}

/* depth decides the output shape, so it must be a constant. */
static int onehot(Ctx *c)
{
	const Tensor *idx = in(c, 0), *depth = in(c, 1), *val = in(c, 2);
	int axis = 0;
	if (!ir_is_const(c->g, c->node->in[1]))
		return fail(c, "depth input '%s' is not a constant; potc needs static shapes", depth->name);
	if (idx->dtype == DT_BOOL)
		return fail(c, "indices '%s' must be numbers, not bool", idx->name);
	if (scalar_input(c, 1))
		return 1;
	if (val->rank != 1 || val->dim[0] != 2)
		return fail(c, "values '%s' %s must be [2]: off, on", val->name, tshape(val).s);
	double d = ir_get(depth, 0);
	if (!(d >= 1 && d <= MAXNUMEL))
		return fail(c, "depth %g must be at least 1", d);
	if (norm_axis(c, c->node->a.axis.axis, idx->rank + 1, 0, &axis))
		return 1;
	Shape s = {.rank = idx->rank + 1};
	for (int i = 0, k = 0; i < s.rank; i++)
		s.dim[i] = i == axis ? (int64_t)d : idx->dim[k++];
	return set_out(c, 0, val->dtype, &s);
}

static int trilu(Ctx *c)
{
	const Tensor *x = in(c, 0), *k = in(c, 1);
	if (x->rank < 2)
		return fail(c, "input '%s' %s must have rank >= 2", x->name, tshape(x).s);
	if (k && (scalar_input(c, 1) || k->dtype != DT_I64))
		return fail(c, "k '%s' must be an i64 scalar", k->name);
	Shape s = shape_of(x);
	return set_out(c, 0, x->dtype, &s);
}

/* ConvTranspose spatial dim i: output_shape and auto_pad become explicit
 * pads.  total = full - out is split as the ONNX spec says (the odd pad at
 * the beginning, except for SAME_UPPER); a negative total pads nothing at
 * the beginning and leaves extra output rows only the bias reaches, as
 * onnxruntime.  output_padding lowers the end pad. */
static int convt_resolve(Ctx *c, Window *w, int i, int64_t in)
{
	int64_t full = (in - 1) * w->s[i] + kext(w, i) + w->outpad[i], out = -1;
	int same = w->autopad == PAD_SAME_UPPER || w->autopad == PAD_SAME_LOWER;
	if (w->outshape[i] > 0 || same) {
		out = w->outshape[i] > 0 ? w->outshape[i] : in * w->s[i];
		int64_t total = full - out, t = total < 0 ? 0 : total;
		int64_t head = w->autopad == PAD_SAME_UPPER ? t / 2 : t - t / 2;
		if (total < INT32_MIN + 1 || total > INT32_MAX)
			return fail(c, "spatial dim %d: output size %" PRId64 " is out of reach", i, out);
		w->pad[i] = (int)head;
		w->pad[w->nsp + i] = (int)(total - head - w->outpad[i]);
	} else if (w->autopad == PAD_VALID) {
		w->pad[i] = 0;
		w->pad[w->nsp + i] = -w->outpad[i];
	} else {
		w->pad[w->nsp + i] -= w->outpad[i];
	}
	w->outpad[i] = 0;
	w->outshape[i] = 0;
	return 0;
}

/* x [N, C, ...], w [C, M/group, k...], b [M]. */
static int convt_channels(Ctx *c, const Tensor *x, const Tensor *w, const Tensor *b)
{
	int64_t g = c->node->a.win.group;
	if (w->rank != x->rank || g < 1 || x->dim[1] != w->dim[0] || x->dim[1] % g)
		return fail(c, "weight '%s' %s must be [C, M/group, k...] for input '%s' %s and group %" PRId64,
		            w->name, tshape(w).s, x->name, tshape(x).s, g);
	if (b && (b->rank != 1 || b->dim[0] != w->dim[1] * g))
		return fail(c, "bias '%s' %s must be [%" PRId64 "]", b->name, tshape(b).s, w->dim[1] * g);
	return same_dtype(c, 0, 1) || same_dtype(c, 0, 2);
}

/* Output dim i = s*(in-1) + (k-1)*d + 1 - pad_begin - pad_end. */
static int convtranspose(Ctx *c)
{
	const Tensor *x = in(c, 0), *w = in(c, 1), *b = in(c, 2);
	Window *win = &c->node->a.win;
	if (x->rank < 3 || x->rank - 2 != win->nsp || win->nsp > IR_MAXSP)
		return fail(c, "input '%s' %s must be [N, C] and %d spatial dims", x->name, tshape(x).s, win->nsp);
	if (convt_channels(c, x, w, b))
		return 1;
	Shape s = {.rank = x->rank, .dim = {x->dim[0], w->dim[1] * win->group}};
	for (int i = 0; i < win->nsp; i++) {
		if (win->k[i] != w->dim[2 + i] || win->s[i] < 1 || win->d[i] < 1 || win->outpad[i] < 0)
			return fail(c, "spatial dim %d: kernel %d (weight %s), stride %d, dilation %d or "
			            "output_padding %d is bad", i, win->k[i], tshape(w).s, win->s[i], win->d[i],
			            win->outpad[i]);
		if (convt_resolve(c, win, i, x->dim[2 + i]))
			return 1;
		s.dim[2 + i] = (x->dim[2 + i] - 1) * win->s[i] + kext(win, i) - win->pad[i] - win->pad[win->nsp + i];
		if (win->pad[i] < 0 || s.dim[2 + i] < 1)
			return fail(c, "spatial dim %d: pads %d and %d leave no output", i, win->pad[i],
			            win->pad[win->nsp + i]);
	}
	win->autopad = PAD_EXPLICIT;
	return set_out(c, 0, x->dtype, &s);
}

/* Per channel (dim 1) parameters of x [N, C, ...]. */
static int instnorm(Ctx *c)
{
	const Tensor *x = in(c, 0);
	if (x->rank < 2)
		return fail(c, "input '%s' %s must be [N, C, ...]", x->name, tshape(x).s);
	for (int j = 1; j < 3; j++) {
		const Tensor *p = in(c, j);
		if (p->rank != 1 || p->dim[0] != x->dim[1] || same_dtype(c, 0, j))
			return fail(c, "'%s' %s must be [%" PRId64 "] of %s", p->name, tshape(p).s, x->dim[1],
			            ir_dtype_name(x->dtype));
	}
	Shape s = shape_of(x);
	return set_out(c, 0, x->dtype, &s);
}

/* scale and b broadcast to x; Mean and InvStdDev are x.shape[:axis]
 * followed by ones. */
static int layernorm(Ctx *c)
{
	const Tensor *x = in(c, 0);
	int axis = 0;
	if (norm_axis(c, c->node->a.norm.axis, x->rank, 0, &axis))
		return 1;
	for (int j = 1; j < 3; j++) {
		const Tensor *p = in(c, j);
		if (p && (!unidir(p->rank, p->dim, x->rank, x->dim) || same_dtype(c, 0, j)))
			return fail(c, "'%s' %s does not broadcast to '%s' %s", p->name, tshape(p).s, x->name,
			            tshape(x).s);
	}
	Shape s = shape_of(x), st = shape_of(x);
	for (int i = axis; i < x->rank; i++)
		st.dim[i] = 1;
	return set_out(c, 0, x->dtype, &s) || set_out(c, 1, DT_F32, &st) || set_out(c, 2, DT_F32, &st);
}

static int lrn(Ctx *c)
{
	const Tensor *x = in(c, 0);
	if (x->rank < 2 || c->node->a.lrn.size < 1)
		return fail(c, "input '%s' %s must be [N, C, ...] and size %d positive", x->name,
		            tshape(x).s, c->node->a.lrn.size);
	Shape s = shape_of(x);
	return set_out(c, 0, x->dtype, &s);
}

/* Input j if present and not empty. */
static const Tensor *nonempty(Ctx *c, int j)
{
	const Tensor *t = in(c, j);
	return t && ir_numel(t) ? t : NULL;
}

/* A constant float vector of n values (Resize's roi and scales); why
 * says why it must be constant. */
static int const_floats(Ctx *c, int j, int n, const char *why)
{
	const Tensor *t = in(c, j);
	if (!ir_is_const(c->g, c->node->in[j]))
		return fail(c, "input '%s' is not a constant; %s", t->name, why);
	if ((t->dtype != DT_F32 && t->dtype != DT_F64) || t->rank != 1 || t->dim[0] != n)
		return fail(c, "input '%s' %s %s must be a float vector of %d values", t->name,
		            ir_dtype_name(t->dtype), tshape(t).s, n);
	return 0;
}

/* Output dims from sizes, or floor(in * scale); roi is read only by
 * tf_crop_and_resize. */
static int resize(Ctx *c)
{
	const Tensor *x = in(c, 0), *sc = nonempty(c, 2), *sz = nonempty(c, 3);
	int r = x->rank, n = 0;
	int64_t v[IR_MAXRANK];
	Shape s = {.rank = r};
	if (!sc == !sz)
		return fail(c, "exactly one of scales and sizes must be given");
	if (c->node->a.resize.mode != RS_NEAREST && x->dtype != DT_F32)
		return fail(c, "linear and cubic modes need f32 input, '%s' is %s", x->name, ir_dtype_name(x->dtype));
	if (sz && const_ints(c, 3, v, IR_MAXRANK, &n))
		return 1;
	if ((sz && n != r) || (sc && const_floats(c, 2, r, "potc needs static shapes")))
		return sc ? 1 : fail(c, "sizes has %d values; input '%s' %s needs %d", n, x->name, tshape(x).s, r);
	if (c->node->a.resize.coord == RS_TF_CROP_AND_RESIZE &&
	    (!nonempty(c, 1) || const_floats(c, 1, 2 * r, "potc computes the sampling of tf_crop_and_resize at compile time")))
		return nonempty(c, 1) ? 1 : fail(c, "tf_crop_and_resize needs roi");
	for (int i = 0; i < r; i++) {
		double f = sc ? ir_get(sc, i) : 0;
		if (sc && !(f > 0 && f * (double)x->dim[i] <= MAXNUMEL))
			return fail(c, "scale %g of dim %d must be positive and keep the dim in range", f, i);
		s.dim[i] = sz ? v[i] : (int64_t)floor(f * (double)x->dim[i]);
		if (s.dim[i] < 0 || (x->dim[i] == 0 && s.dim[i] > 0))
			return fail(c, "output dim %d = %" PRId64 " is bad for input '%s' %s", i, s.dim[i], x->name, tshape(x).s);
	}
	return set_out(c, 0, x->dtype, &s);
}

/* ---- shape arithmetic ---- */

static int constant(Ctx *c)
{
	return fail(c, "internal: Constant nodes must become constant tensors in the frontend");
}

/* Opset 15 slicing: start and end count from the back when negative and
 * clamp to [0, rank]. */
static int shape(Ctx *c)
{
	const Tensor *x = in(c, 0);
	int64_t r = x->rank, st = c->node->a.shape.start, en = c->node->a.shape.end;
	st = clamp(st < 0 ? st + r : st, 0, r);
	en = c->node->a.shape.has_end ? clamp(en < 0 ? en + r : en, 0, r) : r;
	Shape s = {.rank = 1, .dim = {en > st ? en - st : 0}};
	return set_out(c, 0, DT_I64, &s);
}

static int size(Ctx *c)
{
	Shape s = {0};
	return set_out(c, 0, DT_I64, &s);
}

static int check_to(Ctx *c, DType to)
{
	if (to <= DT_UNDEF || to >= DT_COUNT)
		return fail(c, "target dtype %d is not supported", (int)to);
	return 0;
}

static int cast(Ctx *c)
{
	const Tensor *x = in(c, 0);
	Shape s = shape_of(x);
	return check_to(c, c->node->a.cast.to) || set_out(c, 0, c->node->a.cast.to, &s);
}

/* An empty shape gives a scalar. */
static int constofshape(Ctx *c)
{
	int64_t v[IR_MAXRANK];
	int nv;
	if (const_ints(c, 0, v, IR_MAXRANK, &nv) || check_to(c, c->node->a.cast.to))
		return 1;
	Shape s = {.rank = nv};
	for (int i = 0; i < nv; i++) {
		if (v[i] < 0)
			return fail(c, "shape %s has a negative dim", dimstr(nv, v).s);
		s.dim[i] = v[i];
	}
	return set_out(c, 0, c->node->a.cast.to, &s);
}

/* max(ceil((limit - start) / delta), 0), exactly, in integers. */
static int range_int(Ctx *c, int64_t start, int64_t limit, int64_t delta, int64_t *len)
{
	int64_t span, q;
	if (delta == 0)
		return fail(c, "delta is 0");
	if (__builtin_sub_overflow(limit, start, &span) || (span == INT64_MIN && delta == -1))
		return fail(c, "range [%" PRId64 ", %" PRId64 ") overflows int64", start, limit);
	q = span / delta;  /* truncates; round up when the exact quotient is positive */
	if (span % delta != 0 && (span < 0) == (delta < 0))
		q++;
	*len = q > 0 ? q : 0;
	return 0;
}

/* Floats: limit - start in the input type, then divided in double, as
 * onnxruntime does. */
static int range_float(Ctx *c, const Tensor *const t[3], int64_t *len)
{
	double start = ir_get(t[0], 0), limit = ir_get(t[1], 0), delta = ir_get(t[2], 0);
	double span = t[0]->dtype == DT_F32 ? (double)((float)limit - (float)start) : limit - start;
	if (delta == 0 || !isfinite(delta))
		return fail(c, "delta %g must be finite and non-zero", delta);
	double q = ceil(span / delta);
	if (!(q <= MAXNUMEL))  /* also NaN */
		return fail(c, "range from %g to %g by %g has too many elements", start, limit, delta);
	*len = q > 0 ? (int64_t)q : 0;
	return 0;
}

/* start, limit, delta: constant scalars of one dtype; y has start's dtype. */
static int range(Ctx *c)
{
	const Tensor *t[3] = {in(c, 0), in(c, 1), in(c, 2)};
	for (int j = 0; j < 3; j++) {
		if (!ir_is_const(c->g, c->node->in[j]))
			return fail(c, "shape input '%s' is not a constant; potc needs static shapes", t[j]->name);
		if (scalar_input(c, j) || same_dtype(c, 0, j))
			return 1;
	}
	if (t[0]->dtype == DT_BOOL)
		return fail(c, "Range does not take bool");
	Shape s = {.rank = 1};
	if (is_int(t[0]->dtype)
	    ? range_int(c, ir_get_i64(t[0], 0), ir_get_i64(t[1], 0), ir_get_i64(t[2], 0), &s.dim[0])
	    : range_float(c, t, &s.dim[0]))
		return 1;
	return set_out(c, 0, t[0]->dtype, &s);
}

/* ---- dispatch ---- */

typedef struct {
	int (*fn)(Ctx *);
	int inmin, inmax;  /* inmax -1: any number */
	int outmax;
} Rule;

/* Ops not listed take their rule from their flags (see rule_of). */
static const Rule rules[OP_COUNT] = {
	[OP_CONV] = {conv, 2, 3, 1},
	[OP_GEMM] = {gemm, 2, 3, 1},
	[OP_MATMUL] = {matmul, 2, 2, 1},
	[OP_MAXPOOL] = {pool, 1, 1, 2},
	[OP_AVGPOOL] = {pool, 1, 1, 1},
	[OP_GAVGPOOL] = {globalpool, 1, 1, 1},
	[OP_GMAXPOOL] = {globalpool, 1, 1, 1},
	[OP_BATCHNORM] = {batchnorm, 5, 5, 1},
	[OP_SOFTMAX] = {softmax, 1, 1, 1},
	[OP_LOGSOFTMAX] = {softmax, 1, 1, 1},
	[OP_REDUCEMEAN] = {reduce, 1, 2, 1},
	[OP_REDUCEMAX] = {reduce, 1, 2, 1},
	[OP_REDUCEMIN] = {reduce, 1, 2, 1},
	[OP_REDUCESUM] = {reduce, 1, 2, 1},
	[OP_REDUCEPROD] = {reduce, 1, 2, 1},
	[OP_MAX] = {eltwise, 1, -1, 1},
	[OP_MIN] = {eltwise, 1, -1, 1},
	[OP_SUM] = {eltwise, 1, -1, 1},
	[OP_MEAN] = {eltwise, 1, -1, 1},
	[OP_WHERE] = {eltwise, 3, 3, 1},
	[OP_CLIP] = {unary, 1, 3, 1},
	[OP_IDENTITY] = {unary, 1, 1, 1},
	[OP_DROPOUT] = {dropout, 1, 3, 2},
	[OP_RESHAPE] = {reshape, 2, 2, 1},
	[OP_FLATTEN] = {flatten, 1, 1, 1},
	[OP_SQUEEZE] = {squeeze, 1, 2, 1},
	[OP_UNSQUEEZE] = {unsqueeze, 2, 2, 1},
	[OP_TRANSPOSE] = {transpose, 1, 1, 1},
	[OP_CONCAT] = {concat, 1, -1, 1},
	[OP_PAD] = {pad, 2, 3, 1},
	[OP_SLICE] = {slice, 3, 5, 1},
	[OP_GATHER] = {gather, 2, 2, 1},
	[OP_EXPAND] = {expand, 2, 2, 1},
	[OP_TILE] = {tile, 2, 2, 1},
	[OP_SPLIT] = {split, 1, 2, SPLIT_MAX},
	[OP_DEPTHTOSPACE] = {depthspace, 1, 1, 1},
	[OP_SPACETODEPTH] = {depthspace, 1, 1, 1},
	[OP_GATHERELEM] = {gatherelem, 2, 2, 1},
	[OP_GATHERND] = {gathernd, 2, 2, 1},
	[OP_ONEHOT] = {onehot, 3, 3, 1},
	[OP_TRILU] = {trilu, 1, 2, 1},
	[OP_CONVTRANSPOSE] = {convtranspose, 2, 3, 1},
	[OP_INSTNORM] = {instnorm, 3, 3, 1},
	[OP_LAYERNORM] = {layernorm, 2, 3, 3},
	[OP_LRN] = {lrn, 1, 1, 1},
	[OP_RESIZE] = {resize, 1, 4, 1},
	[OP_CONSTANT] = {constant, 0, -1, 1},
	[OP_SHAPE] = {shape, 1, 1, 1},
	[OP_SIZE] = {size, 1, 1, 1},
	[OP_CAST] = {cast, 1, 1, 1},
	[OP_CONSTOFSHAPE] = {constofshape, 1, 1, 1},
	[OP_RANGE] = {range, 3, 3, 1},
	[OP_ISNAN] = {classify, 1, 1, 1},
	[OP_ISINF] = {classify, 1, 1, 1},
	[OP_HARDMAX] = {softmax, 1, 1, 1},
	[OP_AND] = {math_eltwise, 2, 2, 1},
	[OP_OR] = {math_eltwise, 2, 2, 1},
	[OP_XOR] = {math_eltwise, 2, 2, 1},
	[OP_GREATEREQ] = {math_eltwise, 2, 2, 1},
	[OP_LESSEQ] = {math_eltwise, 2, 2, 1},
	[OP_MOD] = {math_eltwise, 2, 2, 1},
	[OP_BITSHIFT] = {math_eltwise, 2, 2, 1},
	[OP_REDUCEL1] = {reduce, 1, 2, 1},
	[OP_REDUCEL2] = {reduce, 1, 2, 1},
	[OP_REDUCESUMSQ] = {reduce, 1, 2, 1},
	[OP_REDUCELOGSUM] = {reduce, 1, 2, 1},
	[OP_REDUCELOGSUMEXP] = {reduce, 1, 2, 1},
	[OP_ARGMAX] = {argext, 1, 1, 1},
	[OP_ARGMIN] = {argext, 1, 1, 1},
	[OP_CUMSUM] = {cumsum, 2, 2, 1},
};

static Rule rule_of(Op op)
{
	static const Rule un = {unary, 1, 1, 1}, bin = {eltwise, 2, 2, 1}, none = {0};
	if (rules[op].fn)
		return rules[op];
	if (ir_opflags[op] & F_UNARY)
		return un;
	return ir_opflags[op] & F_ELTWISE ? bin : none;
}

/* Input and output counts, required inputs present, every present input
 * with a dtype and a static shape potc can hold. */
static int check_node(Ctx *c, const Rule *r)
{
	Node *nd = c->node;
	if (nd->nin < r->inmin || (r->inmax >= 0 && nd->nin > r->inmax)) {
		if (r->inmax < 0)
			return fail(c, "has %d inputs; expected at least %d", nd->nin, r->inmin);
		if (r->inmin == r->inmax)
			return fail(c, "has %d inputs; expected %d", nd->nin, r->inmin);
		return fail(c, "has %d inputs; expected %d to %d", nd->nin, r->inmin, r->inmax);
	}
	if (nd->nout >= 1 && nd->nout <= r->outmax && nd->out[0] < 0)
		return fail(c, "internal: output 0 is absent");
	if (nd->nout < 1 || nd->nout > r->outmax) {
		if (r->outmax == 1)
			return fail(c, "has %d outputs; potc supports only the first", nd->nout);
		return fail(c, "has %d outputs; expected 1 to %d", nd->nout, r->outmax);
	}
	for (int j = 0; j < nd->nout; j++)
		if (nd->out[j] >= c->g->ntensor)
			return fail(c, "internal: output %d is tensor %d of %d", j, nd->out[j], c->g->ntensor);
	for (int j = 0; j < nd->nin; j++) {
		int id = nd->in[j];
		if (id < 0 && j < r->inmin)
			return fail(c, "required input %d is missing", j);
		if (id < 0)
			continue;
		if (id >= c->g->ntensor)
			return fail(c, "internal: input %d is tensor %d of %d", j, id, c->g->ntensor);
		const Tensor *t = &c->g->tensor[id];
		if (t->dtype <= DT_UNDEF || t->dtype >= DT_COUNT)
			return fail(c, "input '%s' has no dtype", t->name);
		if (check_size(c, "input", t->name, t->rank, t->dim))
			return 1;
	}
	return 0;
}

int ir_infer_node(Graph *g, int n, Diag *d)
{
	if (n < 0 || n >= g->nnode || g->node[n].op < 0 || g->node[n].op >= OP_COUNT) {
		ir_error(d, g, -1, "internal: ir_infer_node on bad node %d", n);
		return 1;
	}
	Ctx c = {g, d, n, &g->node[n]};
	Rule r = rule_of(c.node->op);
	if (!r.fn)
		return fail(&c, "internal: no shape rule for this op");
	if (check_node(&c, &r))
		return 1;
	return r.fn(&c);
}

/* Stops at the first failure: later nodes would only repeat it. */
int ir_infer(Graph *g, Diag *d)
{
	for (int i = 0; i < g->nnode; i++)
		if (!g->node[i].dead && ir_infer_node(g, i, d))
			return 1;
	return 0;
}
