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
 * One rule per op family, chosen by the table at the bottom; the rules for
 * data movement and shape arithmetic are in shape_data.c, the structural
 * ops' in shape_struct.c, the shared context and helpers in shape_impl.h.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "shape_impl.h"

/* ---- helpers ---- */

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
int sh_fail(Ctx *c, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	ir_error(c->d, c->g, c->n, "%s", msg);
	return 1;
}

DimStr sh_dimstr(int rank, const int64_t *dim)
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

DimStr sh_tshape(const Tensor *t)
{
	return sh_dimstr(t->rank, t->dim);
}

/* Input j, or NULL if the optional input is absent. */
const Tensor *sh_in(const Ctx *c, int j)
{
	if (j >= c->node->nin || c->node->in[j] < 0)
		return NULL;
	return &c->g->tensor[c->node->in[j]];
}

Shape sh_shape_of(const Tensor *t)
{
	Shape s = {.rank = t->rank};
	memcpy(s.dim, t->dim, sizeof t->dim);
	return s;
}

int sh_is_int(DType t)
{
	return (t >= DT_I8 && t <= DT_U32) || t == DT_I64;
}

/* Product of dim[from..to); 1 if it overflows int64. */
int sh_prod(const int64_t *dim, int from, int to, int64_t *out)
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
		return sh_fail(c, "%s '%s' would have rank %d; potc supports at most %d",
		            role, name, rank, IR_MAXRANK);
	for (int i = 0; i < rank; i++)
		if (dim[i] < 0)
			return sh_fail(c, "%s '%s' has negative or unknown dim %d in %s; potc needs static shapes",
			            role, name, i, sh_dimstr(rank, dim).s);
	for (int i = 0; i < rank; i++)
		if (dim[i] > MAXNUMEL)
			return sh_fail(c, "%s '%s' %s: dim %d exceeds %d", role, name,
			            sh_dimstr(rank, dim).s, i, MAXNUMEL);
	int64_t n;
	if (sh_prod(dim, 0, rank, &n))
		return sh_fail(c, "%s '%s' %s: element count overflows int64", role, name,
		            sh_dimstr(rank, dim).s);
	if (n > MAXNUMEL)
		return sh_fail(c, "%s '%s' %s has %" PRId64 " elements; potc supports at most %d",
		            role, name, sh_dimstr(rank, dim).s, n, MAXNUMEL);
	return 0;
}

/* Set output j (if present) to dtype dt and shape s; any declared shape is
 * replaced. */
int sh_set_out(Ctx *c, int j, DType dt, const Shape *s)
{
	if (j >= c->node->nout || c->node->out[j] < 0)
		return 0;
	Tensor *t = &c->g->tensor[c->node->out[j]];
	if (check_size(c, "output", t->name, s->rank, s->dim))
		return 1;
	if (t->kind != TK_VALUE)
		return sh_fail(c, "internal: output '%s' is not a computed tensor", t->name);
	t->dtype = dt;
	t->rank = s->rank;
	for (int i = 0; i < IR_MAXRANK; i++)
		t->dim[i] = i < s->rank ? s->dim[i] : -1;
	return 0;
}

/* ONNX axis against rank r: valid in [-r, r-1], or [-r, r] when the axis
 * may point past the last dim (Flatten, legacy Softmax). */
int sh_norm_axis(Ctx *c, int64_t axis, int r, int past_end, int *out)
{
	int64_t hi = past_end ? r : r - 1;
	if (axis < -(int64_t)r || axis > hi)
		return sh_fail(c, "axis %" PRId64 " is out of range [%d, %" PRId64 "] for rank %d",
		            axis, -r, hi, r);
	*out = (int)(axis < 0 ? axis + r : axis);
	return 0;
}

/* Normalise nax axes against rank r into mark[]; a repeated axis is an error. */
int sh_mark_axes(Ctx *c, const int64_t *ax, int nax, int r, char *mark)
{
	for (int i = 0; i < nax; i++) {
		int a = 0;
		if (sh_norm_axis(c, ax[i], r, 0, &a))
			return 1;
		if (mark[a])
			return sh_fail(c, "axis %" PRId64 " is given twice", ax[i]);
		mark[a] = 1;
	}
	return 0;
}

/* The values of input j, a constant integer vector of at most max values. */
int sh_const_ints(Ctx *c, int j, int64_t *v, int max, int *cnt)
{
	const Tensor *t = sh_in(c, j);
	if (!ir_is_const(c->g, c->node->in[j]))
		return sh_fail(c, "shape input '%s' is not a constant; potc needs static shapes", t->name);
	if (!sh_is_int(t->dtype))
		return sh_fail(c, "input '%s' must be an integer tensor, not %s", t->name,
		            ir_dtype_name(t->dtype));
	if (t->rank != 1)
		return sh_fail(c, "input '%s' must be 1-D, has shape %s", t->name, sh_tshape(t).s);
	if (t->dim[0] > max)
		return sh_fail(c, "input '%s' has %" PRId64 " values; at most %d are allowed here",
		            t->name, t->dim[0], max);
	*cnt = (int)t->dim[0];
	for (int i = 0; i < *cnt; i++)
		v[i] = ir_get_i64(t, i);
	return 0;
}

/* Inputs j and k must share a dtype. */
int sh_same_dtype(Ctx *c, int j, int k)
{
	const Tensor *a = sh_in(c, j), *b = sh_in(c, k);
	if (a && b && a->dtype != b->dtype)
		return sh_fail(c, "input '%s' is %s but '%s' is %s; they must have one dtype",
		            a->name, ir_dtype_name(a->dtype), b->name, ir_dtype_name(b->dtype));
	return 0;
}

/* Input j, if present, must hold exactly one element.  The spec says
 * scalar; like onnxruntime, a one-element vector is accepted too. */
int sh_scalar_input(Ctx *c, int j)
{
	const Tensor *t = sh_in(c, j);
	if (t && (t->rank > 1 || ir_numel(t) != 1))
		return sh_fail(c, "input '%s' must be a scalar, has shape %s", t->name, sh_tshape(t).s);
	return 0;
}

/* ---- broadcasting ---- */

/* numpy: align trailing dims; each pair must be equal or hold a 1.
 * out may alias da or db. */
int sh_bcast(int ra, const int64_t *da, int rb, const int64_t *db, int *r, int64_t *out)
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
	return sh_bcast(a->rank, a->dim, b->rank, b->dim, rank, dim);
}

/* Does shape f broadcast to shape t without changing t (ONNX
 * "unidirectional broadcasting")? */
int sh_unidir(int rf, const int64_t *df, int rt, const int64_t *dt)
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
		if (sh_in(c, 0)->dtype != DT_BOOL)
			return sh_fail(c, "condition '%s' is %s, not bool", sh_in(c, 0)->name,
			            ir_dtype_name(sh_in(c, 0)->dtype));
		first = 1;
	}
	if (nd->op == OP_POW)  /* the exponent may have its own type (opset 12) */
		return 0;
	for (int j = first + 1; j < nd->nin; j++)
		if (sh_same_dtype(c, first, j))
			return 1;
	return 0;
}

/* Binary and n-ary ops with numpy broadcasting over every input. */
static int eltwise(Ctx *c)
{
	Node *nd = c->node;
	Shape s = {0};
	for (int j = 0; j < nd->nin; j++) {
		const Tensor *t = sh_in(c, j);
		if (!t)
			return sh_fail(c, "input %d is missing", j);
		DimStr before = sh_dimstr(s.rank, s.dim);
		if (sh_bcast(s.rank, s.dim, t->rank, t->dim, &s.rank, s.dim))
			return sh_fail(c, "input '%s' %s does not broadcast with %s", t->name,
			            sh_tshape(t).s, before.s);
	}
	if (eltwise_types(c))
		return 1;
	const Tensor *x = sh_in(c, nd->op == OP_WHERE ? 1 : 0);
	if (nd->op == OP_PRELU && (s.rank != x->rank || memcmp(s.dim, x->dim, sizeof x->dim[0] * (size_t)s.rank)))
		return sh_fail(c, "slope '%s' %s does not broadcast to x %s", sh_in(c, 1)->name,
		            sh_tshape(sh_in(c, 1)).s, sh_tshape(x).s);
	int cmp = nd->op == OP_EQUAL || nd->op == OP_LESS || nd->op == OP_GREATER ||
	          nd->op == OP_GREATEREQ || nd->op == OP_LESSEQ;
	return sh_set_out(c, 0, cmp ? DT_BOOL : x->dtype, &s);
}

/* Same shape and dtype as x; Clip's min and max are scalars. */
static int unary(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	for (int j = 1; j < c->node->nin; j++)
		if (sh_scalar_input(c, j) || sh_same_dtype(c, 0, j))
			return 1;
	Shape s = sh_shape_of(x);
	return sh_set_out(c, 0, x->dtype, &s);
}

/* ---- sliding windows: Conv, MaxPool, AveragePool ---- */

int64_t sh_kext(const Window *w, int i)
{
	return ((int64_t)w->k[i] - 1) * w->d[i] + 1;
}

/* x is [N, C, spatial...] with nsp spatial dims; k, s, d positive. */
static int check_window(Ctx *c, const Window *w, const Tensor *x)
{
	if (x->rank < 3 || x->rank - 2 > IR_MAXSP)
		return sh_fail(c, "input '%s' %s must be [N, C] and 1 to %d spatial dims",
		            x->name, sh_tshape(x).s, IR_MAXSP);
	if (w->nsp != x->rank - 2)
		return sh_fail(c, "window has %d spatial dims but input '%s' %s has %d",
		            w->nsp, x->name, sh_tshape(x).s, x->rank - 2);
	if (w->autopad < PAD_EXPLICIT || w->autopad > PAD_SAME_LOWER)
		return sh_fail(c, "internal: bad auto_pad %d", (int)w->autopad);
	for (int i = 0; i < w->nsp; i++) {
		if (w->k[i] < 1 || w->s[i] < 1 || w->d[i] < 1)
			return sh_fail(c, "spatial dim %d: kernel %d, stride %d and dilation %d must be positive",
			            i, w->k[i], w->s[i], w->d[i]);
		if (sh_kext(w, i) > MAXNUMEL)
			return sh_fail(c, "spatial dim %d: dilated kernel is too large", i);
		if (w->autopad == PAD_EXPLICIT && (w->pad[i] < 0 || w->pad[w->nsp + i] < 0))
			return sh_fail(c, "spatial dim %d: pads %d and %d must not be negative",
			            i, w->pad[i], w->pad[w->nsp + i]);
	}
	return 0;
}

/* auto_pad: SAME pads so that out = ceil(in / stride), the odd pad at the
 * end (SAME_UPPER) or the beginning (SAME_LOWER); VALID pads nothing. */
static void resolve_autopad(Window *w, int i, int64_t in)
{
	int64_t out = (in + w->s[i] - 1) / w->s[i];
	int64_t total = (out - 1) * w->s[i] + sh_kext(w, i) - in;
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
	int64_t ek = sh_kext(w, i), s = w->s[i];
	if (padded < ek)
		return sh_fail(c, "spatial dim %d: window %" PRId64 " (kernel %d, dilation %d) is larger "
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
		return sh_fail(c, "group %" PRId64 " must be positive", g);
	if (m % g != 0)
		return sh_fail(c, "weight '%s' %s: %" PRId64 " output channels are not a multiple of group %" PRId64,
		            w->name, sh_tshape(w).s, m, g);
	if (x->dim[1] != w->dim[1] * g)
		return sh_fail(c, "input '%s' %s has %" PRId64 " channels but weight '%s' %s with group %"
		            PRId64 " expects %" PRId64, x->name, sh_tshape(x).s, x->dim[1], w->name,
		            sh_tshape(w).s, g, w->dim[1] * g);
	if (b && (b->rank != 1 || b->dim[0] != m))
		return sh_fail(c, "bias '%s' %s must be [%" PRId64 "]", b->name, sh_tshape(b).s, m);
	return 0;
}

/* Conv's output shape (any dtypes; QLinearConv and ConvInteger share it). */
int sh_conv_shape(Ctx *c, const Tensor *x, const Tensor *w, const Tensor *b, Shape *s)
{
	Window *win = &c->node->a.win;
	if (check_window(c, win, x))
		return 1;
	if (w->rank != x->rank)
		return sh_fail(c, "weight '%s' %s and input '%s' %s differ in rank",
		            w->name, sh_tshape(w).s, x->name, sh_tshape(x).s);
	for (int i = 0; i < win->nsp; i++)
		if (win->k[i] != w->dim[2 + i])
			return sh_fail(c, "kernel_shape[%d] = %d does not match weight '%s' %s",
			            i, win->k[i], w->name, sh_tshape(w).s);
	if (conv_channels(c, x, w, b))
		return 1;
	*s = (Shape){.dim = {x->dim[0], w->dim[0]}};
	return window_shape(c, x, s);
}

static int conv(Ctx *c)
{
	const Tensor *x = sh_in(c, 0), *w = sh_in(c, 1), *b = sh_in(c, 2);
	Shape s;
	if (sh_conv_shape(c, x, w, b, &s) || sh_same_dtype(c, 0, 1) || sh_same_dtype(c, 0, 2))
		return 1;
	return sh_set_out(c, 0, x->dtype, &s);
}

/* MaxPool's optional second output holds int64 indices, same shape. */
static int pool(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	if (check_window(c, &c->node->a.win, x))
		return 1;
	Shape s = {.dim = {x->dim[0], x->dim[1]}};
	if (window_shape(c, x, &s))
		return 1;
	return sh_set_out(c, 0, x->dtype, &s) || sh_set_out(c, 1, DT_I64, &s);
}

static int globalpool(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	if (x->rank < 2)
		return sh_fail(c, "input '%s' %s must be [N, C, ...]", x->name, sh_tshape(x).s);
	Shape s = sh_shape_of(x);
	for (int i = 2; i < s.rank; i++)
		s.dim[i] = 1;
	return sh_set_out(c, 0, x->dtype, &s);
}

/* ---- other compute ---- */

/* numpy matmul: a 1-D a is [1, K], a 1-D b is [K, 1], and the added dim is
 * dropped again; the dims before the last two broadcast.  Any dtypes
 * (QLinearMatMul and MatMulInteger share it). */
int sh_matmul_shape(Ctx *c, const Tensor *a, const Tensor *b, Shape *s)
{
	if (a->rank < 1 || b->rank < 1)
		return sh_fail(c, "inputs '%s' %s and '%s' %s must have rank >= 1",
		            a->name, sh_tshape(a).s, b->name, sh_tshape(b).s);
	int64_t m = a->rank > 1 ? a->dim[a->rank - 2] : 1, ka = a->dim[a->rank - 1];
	int64_t kb = b->rank > 1 ? b->dim[b->rank - 2] : b->dim[0];
	int64_t n = b->rank > 1 ? b->dim[b->rank - 1] : 1;
	if (ka != kb)
		return sh_fail(c, "inner dims of '%s' %s and '%s' %s differ",
		            a->name, sh_tshape(a).s, b->name, sh_tshape(b).s);
	int ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank > 2 ? b->rank - 2 : 0;
	if (sh_bcast(ra, a->dim, rb, b->dim, &s->rank, s->dim))
		return sh_fail(c, "batch dims of '%s' %s and '%s' %s do not broadcast",
		            a->name, sh_tshape(a).s, b->name, sh_tshape(b).s);
	if (a->rank > 1)
		s->dim[s->rank++] = m;
	if (b->rank > 1)
		s->dim[s->rank++] = n;
	return 0;
}

static int matmul(Ctx *c)
{
	const Tensor *a = sh_in(c, 0);
	Shape s;
	if (sh_matmul_shape(c, a, sh_in(c, 1), &s) || sh_same_dtype(c, 0, 1))
		return 1;
	return sh_set_out(c, 0, a->dtype, &s);
}

/* A [M, K] (or [K, M] if ta), B [K, N] (or [N, K] if tb), C broadcasts to [M, N]. */
static int gemm(Ctx *c)
{
	const Tensor *a = sh_in(c, 0), *b = sh_in(c, 1), *cc = sh_in(c, 2);
	int ta = c->node->a.gemm.ta != 0, tb = c->node->a.gemm.tb != 0;
	if (a->rank != 2 || b->rank != 2)
		return sh_fail(c, "A '%s' %s and B '%s' %s must be 2-D",
		            a->name, sh_tshape(a).s, b->name, sh_tshape(b).s);
	if (a->dim[1 - ta] != b->dim[tb])
		return sh_fail(c, "inner dims of A '%s' %s (transA %d) and B '%s' %s (transB %d) differ",
		            a->name, sh_tshape(a).s, ta, b->name, sh_tshape(b).s, tb);
	Shape s = {.rank = 2, .dim = {a->dim[ta], b->dim[1 - tb]}};
	if (cc && !sh_unidir(cc->rank, cc->dim, 2, s.dim))
		return sh_fail(c, "C '%s' %s does not broadcast to [M, N] = %s",
		            cc->name, sh_tshape(cc).s, sh_dimstr(2, s.dim).s);
	return sh_same_dtype(c, 0, 1) || sh_same_dtype(c, 0, 2) || sh_set_out(c, 0, a->dtype, &s);
}

/* scale, bias, mean and var hold one value per channel (dim 1; a 1-D x
 * has one channel, as ONNX's own inference says). */
static int batchnorm(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	if (x->rank < 1)
		return sh_fail(c, "input '%s' must have rank >= 1", x->name);
	int64_t ch = x->rank > 1 ? x->dim[1] : 1;
	for (int j = 1; j < 5; j++) {
		const Tensor *p = sh_in(c, j);
		if (p->rank != 1 || p->dim[0] != ch)
			return sh_fail(c, "'%s' %s must be [%" PRId64 "], one value per channel of '%s' %s",
			            p->name, sh_tshape(p).s, ch, x->name, sh_tshape(x).s);
	}
	Shape s = sh_shape_of(x);
	return sh_set_out(c, 0, x->dtype, &s);
}

/* Legacy (opset < 13) Softmax coerces x to 2-D at axis like Flatten, so
 * axis == rank is meaningful there. */
static int softmax(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	int axis = 0;
	if (sh_norm_axis(c, c->node->a.axis.axis, x->rank, c->node->a.axis.legacy, &axis))
		return 1;
	Shape s = sh_shape_of(x);
	return sh_set_out(c, 0, x->dtype, &s);
}

/* axes absent or empty: every axis, or none with noop_empty. */
static int reduce(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	int64_t ax[IR_MAXRANK];
	int nax = 0;
	char red[IR_MAXRANK] = {0};
	if (sh_in(c, 1) && sh_const_ints(c, 1, ax, IR_MAXRANK, &nax))
		return 1;
	if (nax == 0)
		memset(red, !c->node->a.reduce.noop_empty, sizeof red);
	else if (sh_mark_axes(c, ax, nax, x->rank, red))
		return 1;
	Shape s = {0};
	for (int i = 0; i < x->rank; i++)
		if (!red[i])
			s.dim[s.rank++] = x->dim[i];
		else if (c->node->a.reduce.keepdims)
			s.dim[s.rank++] = 1;
	return sh_set_out(c, 0, x->dtype, &s);
}

/* ---- math, logic and bit ops (ops.def's section of that name) ---- */

/* IsNaN, IsInf: x's shape, bool. */
static int classify(Ctx *c)
{
	Shape s = sh_shape_of(sh_in(c, 0));
	return sh_set_out(c, 0, DT_BOOL, &s);
}

/* And/Or/Xor, GreaterOrEqual/LessOrEqual, Mod, BitShift: eltwise's
 * broadcasting, and the dtypes each op takes. */
static int math_eltwise(Ctx *c)
{
	Op op = c->node->op;
	DType dt = sh_in(c, 0)->dtype;
	if (eltwise(c))
		return 1;
	if ((op == OP_AND || op == OP_OR || op == OP_XOR) && dt != DT_BOOL)
		return sh_fail(c, "inputs are %s; %s takes bool", ir_dtype_name(dt), ir_opname[op]);
	if (op == OP_BITSHIFT && dt != DT_U8 && dt != DT_U16 && dt != DT_U32)
		return sh_fail(c, "inputs are %s; BitShift takes u8, u16 or u32", ir_dtype_name(dt));
	if (op == OP_MOD && dt == DT_BOOL)
		return sh_fail(c, "Mod does not take bool");
	if (op == OP_MOD && (dt == DT_F32 || dt == DT_F64) && !c->node->a.mod.fmod)
		return sh_fail(c, "Mod of %s needs attribute fmod = 1", ir_dtype_name(dt));
	return 0;
}

/* ArgMax, ArgMin: i64, the axis dropped or kept as 1. */
static int argext(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	int axis = 0;
	if (sh_norm_axis(c, c->node->a.arg.axis, x->rank, 0, &axis))
		return 1;
	if (x->dim[axis] == 0)
		return sh_fail(c, "axis %d of %s is empty: there is no index to return", axis, sh_tshape(x).s);
	Shape s = sh_shape_of(x);
	if (c->node->a.arg.keepdims)
		s.dim[axis] = 1;
	else
		for (s.rank--; axis < s.rank; axis++)
			s.dim[axis] = s.dim[axis + 1];
	return sh_set_out(c, 0, DT_I64, &s);
}

/* CumSum: x's shape; the axis must be one constant integer. */
static int cumsum(Ctx *c)
{
	const Tensor *x = sh_in(c, 0), *t = sh_in(c, 1);
	int axis = 0;
	if (!ir_is_const(c->g, c->node->in[1]))
		return sh_fail(c, "axis input '%s' is not a constant; potc needs static shapes and axes",
		            t->name);
	if (!sh_is_int(t->dtype) || t->rank > 1 || ir_numel(t) != 1)
		return sh_fail(c, "axis input '%s' must hold one integer, it is %s %s", t->name,
		            ir_dtype_name(t->dtype), sh_tshape(t).s);
	if (sh_norm_axis(c, ir_get_i64(t, 0), x->rank, 0, &axis))
		return 1;
	Shape s = sh_shape_of(x);
	return sh_set_out(c, 0, x->dtype, &s);
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
	[OP_DROPOUT] = {sh_dropout, 1, 3, 2},
	[OP_RESHAPE] = {sh_reshape, 2, 2, 1},
	[OP_FLATTEN] = {sh_flatten, 1, 1, 1},
	[OP_SQUEEZE] = {sh_squeeze, 1, 2, 1},
	[OP_UNSQUEEZE] = {sh_unsqueeze, 2, 2, 1},
	[OP_TRANSPOSE] = {sh_transpose, 1, 1, 1},
	[OP_CONCAT] = {sh_concat, 1, -1, 1},
	[OP_PAD] = {sh_pad, 2, 3, 1},
	[OP_SLICE] = {sh_slice, 3, 5, 1},
	[OP_GATHER] = {sh_gather, 2, 2, 1},
	[OP_EXPAND] = {sh_expand, 2, 2, 1},
	[OP_TILE] = {sh_tile, 2, 2, 1},
	[OP_SPLIT] = {sh_split, 1, 2, SPLIT_MAX},
	[OP_DEPTHTOSPACE] = {sh_depthspace, 1, 1, 1},
	[OP_SPACETODEPTH] = {sh_depthspace, 1, 1, 1},
	[OP_GATHERELEM] = {sh_gatherelem, 2, 2, 1},
	[OP_GATHERND] = {sh_gathernd, 2, 2, 1},
	[OP_ONEHOT] = {sh_onehot, 3, 3, 1},
	[OP_TRILU] = {sh_trilu, 1, 2, 1},
	[OP_CONVTRANSPOSE] = {sh_convtranspose, 2, 3, 1},
	[OP_INSTNORM] = {sh_instnorm, 3, 3, 1},
	[OP_LAYERNORM] = {sh_layernorm, 2, 3, 3},
	[OP_LRN] = {sh_lrn, 1, 1, 1},
	[OP_RESIZE] = {sh_resize, 1, 4, 1},
	[OP_CONSTANT] = {sh_constant, 0, -1, 1},
	[OP_SHAPE] = {sh_shape, 1, 1, 1},
	[OP_SIZE] = {sh_size, 1, 1, 1},
	[OP_CAST] = {sh_cast, 1, 1, 1},
	[OP_CONSTOFSHAPE] = {sh_constofshape, 1, 1, 1},
	[OP_RANGE] = {sh_range, 3, 3, 1},
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
	[OP_QUANTIZE] = {sh_quantize, 2, 3, 1},
	[OP_DEQUANTIZE] = {sh_quantize, 2, 3, 1},
	[OP_QLINEARCONV] = {sh_qconv, 8, 9, 1},
	[OP_QLINEARMATMUL] = {sh_qmatmul, 8, 8, 1},
	[OP_CONVINTEGER] = {sh_qconv, 2, 4, 1},
	[OP_MATMULINTEGER] = {sh_qmatmul, 2, 4, 1},
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
			return sh_fail(c, "has %d inputs; expected at least %d", nd->nin, r->inmin);
		if (r->inmin == r->inmax)
			return sh_fail(c, "has %d inputs; expected %d", nd->nin, r->inmin);
		return sh_fail(c, "has %d inputs; expected %d to %d", nd->nin, r->inmin, r->inmax);
	}
	if (nd->nout >= 1 && nd->nout <= r->outmax && nd->out[0] < 0)
		return sh_fail(c, "internal: output 0 is absent");
	if (nd->nout < 1 || nd->nout > r->outmax) {
		if (r->outmax == 1)
			return sh_fail(c, "has %d outputs; potc supports only the first", nd->nout);
		return sh_fail(c, "has %d outputs; expected 1 to %d", nd->nout, r->outmax);
	}
	for (int j = 0; j < nd->nout; j++)
		if (nd->out[j] >= c->g->ntensor)
			return sh_fail(c, "internal: output %d is tensor %d of %d", j, nd->out[j], c->g->ntensor);
	for (int j = 0; j < nd->nin; j++) {
		int id = nd->in[j];
		if (id < 0 && j < r->inmin)
			return sh_fail(c, "required input %d is missing", j);
		if (id < 0)
			continue;
		if (id >= c->g->ntensor)
			return sh_fail(c, "internal: input %d is tensor %d of %d", j, id, c->g->ntensor);
		const Tensor *t = &c->g->tensor[id];
		if (t->dtype <= DT_UNDEF || t->dtype >= DT_COUNT)
			return sh_fail(c, "input '%s' has no dtype", t->name);
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
		return sh_fail(&c, "internal: no shape rule for this op");
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

