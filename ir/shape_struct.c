/* Shape rules for the structural ops: Split, DepthToSpace, ..., Resize (see shape.c). */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "shape_impl.h"

/* ---- structural ops: Split, DepthToSpace, ..., Resize ---- */

/* Sizes along axis: the split input, or nout equal parts. */
static int split_sizes(Ctx *c, int64_t dim, int64_t *v, int nout)
{
	int n = nout;
	if (sh_in(c, 1) && sh_const_ints(c, 1, v, SPLIT_MAX, &n))
		return 1;
	if (!sh_in(c, 1)) {
		if (dim % nout != 0)
			return sh_fail(c, "axis of size %" PRId64 " does not split into %d equal parts", dim, nout);
		for (int j = 0; j < nout; j++)
			v[j] = dim / nout;
	}
	if (n != nout)
		return sh_fail(c, "split has %d sizes for %d outputs", n, nout);
	int64_t sum = 0;
	for (int j = 0; j < n; j++) {
		if (v[j] < 0 || v[j] > dim)
			return sh_fail(c, "split size %" PRId64 " is out of range [0, %" PRId64 "]", v[j], dim);
		sum += v[j];
	}
	if (sum != dim)
		return sh_fail(c, "split sizes add up to %" PRId64 ", the axis has %" PRId64, sum, dim);
	return 0;
}

int sh_split(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	int axis = 0, nout = c->node->nout;
	int64_t v[SPLIT_MAX];
	if (nout > SPLIT_MAX)
		return sh_fail(c, "has %d outputs; potc splits into at most %d", nout, SPLIT_MAX);
	if (sh_norm_axis(c, c->node->a.axis.axis, x->rank, 0, &axis) ||
	    split_sizes(c, x->dim[axis], v, nout))
		return 1;
	Shape s = sh_shape_of(x);
	for (int j = 0; j < nout; j++) {
		s.dim[axis] = v[j];
		if (sh_set_out(c, j, x->dtype, &s))
			return 1;
	}
	return 0;
}

/* DepthToSpace and SpaceToDepth: 4-D, blocksize b moves b*b channels to
 * (or from) a b x b block of pixels. */
int sh_depthspace(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	int64_t b = c->node->a.d2s.block;
	if (x->rank != 4)
		return sh_fail(c, "input '%s' %s must be 4-D [N, C, H, W]", x->name, sh_tshape(x).s);
	if (b < 1)
		return sh_fail(c, "blocksize %" PRId64 " must be positive", b);
	Shape s = sh_shape_of(x);
	if (c->node->op == OP_DEPTHTOSPACE) {
		if (x->dim[1] % (b * b) != 0)
			return sh_fail(c, "%" PRId64 " channels of '%s' are not a multiple of blocksize^2 = %" PRId64,
			            x->dim[1], x->name, b * b);
		s.dim[1] /= b * b;
		s.dim[2] *= b;
		s.dim[3] *= b;
	} else {
		if (x->dim[2] % b != 0 || x->dim[3] % b != 0)
			return sh_fail(c, "height and width of '%s' %s are not multiples of blocksize %" PRId64,
			            x->name, sh_tshape(x).s, b);
		s.dim[1] *= b * b;
		s.dim[2] /= b;
		s.dim[3] /= b;
	}
	return sh_set_out(c, 0, x->dtype, &s);
}

static int index_type(Ctx *c, const Tensor *idx)
{
	if (idx->dtype != DT_I32 && idx->dtype != DT_I64)
		return sh_fail(c, "indices '%s' must be i32 or i64, not %s", idx->name, ir_dtype_name(idx->dtype));
	return 0;
}

/* idx has x's rank and no dim larger than x's, except along axis. */
int sh_gatherelem(Ctx *c)
{
	const Tensor *x = sh_in(c, 0), *idx = sh_in(c, 1);
	int axis = 0;
	if (index_type(c, idx) || sh_norm_axis(c, c->node->a.axis.axis, x->rank, 0, &axis))
		return 1;
	int bad = idx->rank != x->rank;
	for (int i = 0; !bad && i < x->rank; i++)
		bad = i != axis && idx->dim[i] > x->dim[i];
	if (bad)
		return sh_fail(c, "indices '%s' %s must have the rank of '%s' %s and no larger dim outside axis %d",
		            idx->name, sh_tshape(idx).s, x->name, sh_tshape(x).s, axis);
	if (ir_is_const(c->g, c->node->in[1]) && ir_numel(idx) && sh_check_indices(c, idx, x->dim[axis]))
		return 1;
	Shape s = sh_shape_of(idx);
	return sh_set_out(c, 0, x->dtype, &s);
}

/* Constant index tuples of length m must lie in x's dims [b, b+m). */
static int check_tuples(Ctx *c, const Tensor *x, const Tensor *idx, int b, int m)
{
	int64_t n = ir_numel(idx);
	for (int64_t i = 0; i < n; i++) {
		int64_t v = ir_get_i64(idx, i), d = x->dim[b + i % m];
		if (v < -d || v >= d)
			return sh_fail(c, "index %" PRId64 " in '%s' is out of range [%" PRId64 ", %" PRId64 ")",
			            v, idx->name, -d, d);
	}
	return 0;
}

/* y = idx.shape[:-1] + x.shape[b+m:], m = idx.shape[-1]; the first b
 * (batch_dims) dims of x and idx agree. */
int sh_gathernd(Ctx *c)
{
	const Tensor *x = sh_in(c, 0), *idx = sh_in(c, 1);
	int b = c->node->a.norm.batch, r = x->rank, q = idx->rank;
	if (index_type(c, idx))
		return 1;
	if (r < 1 || q < 1 || b < 0 || b >= r || b >= q)
		return sh_fail(c, "batch_dims %d needs data '%s' %s and indices '%s' %s of larger rank",
		            b, x->name, sh_tshape(x).s, idx->name, sh_tshape(idx).s);
	int64_t m = idx->dim[q - 1];
	if (m < 1 || m > r - b)
		return sh_fail(c, "index tuples of length %" PRId64 " do not fit data '%s' %s after %d batch dims",
		            m, x->name, sh_tshape(x).s, b);
	for (int i = 0; i < b; i++)
		if (x->dim[i] != idx->dim[i])
			return sh_fail(c, "batch dim %d differs between '%s' %s and '%s' %s",
			            i, x->name, sh_tshape(x).s, idx->name, sh_tshape(idx).s);
	if (ir_is_const(c->g, c->node->in[1]) && check_tuples(c, x, idx, b, (int)m))
		return 1;
	Shape s = {.rank = q - 1};
	memcpy(s.dim, idx->dim, sizeof(int64_t) * (size_t)(q - 1));
	for (int i = b + (int)m; i < r; i++)
		s.dim[s.rank++] = x->dim[i];
	return sh_set_out(c, 0, x->dtype, &s);
}

/* depth decides the output shape, so it must be a constant. */
int sh_onehot(Ctx *c)
{
	const Tensor *idx = sh_in(c, 0), *depth = sh_in(c, 1), *val = sh_in(c, 2);
	int axis = 0;
	if (!ir_is_const(c->g, c->node->in[1]))
		return sh_fail(c, "depth input '%s' is not a constant; potc needs static shapes", depth->name);
	if (idx->dtype == DT_BOOL)
		return sh_fail(c, "indices '%s' must be numbers, not bool", idx->name);
	if (sh_scalar_input(c, 1))
		return 1;
	if (val->rank != 1 || val->dim[0] != 2)
		return sh_fail(c, "values '%s' %s must be [2]: off, on", val->name, sh_tshape(val).s);
	double d = ir_get(depth, 0);
	if (!(d >= 1 && d <= MAXNUMEL))
		return sh_fail(c, "depth %g must be at least 1", d);
	if (sh_norm_axis(c, c->node->a.axis.axis, idx->rank + 1, 0, &axis))
		return 1;
	Shape s = {.rank = idx->rank + 1};
	for (int i = 0, k = 0; i < s.rank; i++)
		s.dim[i] = i == axis ? (int64_t)d : idx->dim[k++];
	return sh_set_out(c, 0, val->dtype, &s);
}

int sh_trilu(Ctx *c)
{
	const Tensor *x = sh_in(c, 0), *k = sh_in(c, 1);
	if (x->rank < 2)
		return sh_fail(c, "input '%s' %s must have rank >= 2", x->name, sh_tshape(x).s);
	if (k && (sh_scalar_input(c, 1) || k->dtype != DT_I64))
		return sh_fail(c, "k '%s' must be an i64 scalar", k->name);
	Shape s = sh_shape_of(x);
	return sh_set_out(c, 0, x->dtype, &s);
}

/* ConvTranspose spatial dim i: output_shape and auto_pad become explicit
 * pads.  total = full - out is split as the ONNX spec says (the odd pad at
 * the beginning, except for SAME_UPPER); a negative total pads nothing at
 * the beginning and leaves extra output rows only the bias reaches, as
 * onnxruntime.  output_padding lowers the end pad. */
static int convt_resolve(Ctx *c, Window *w, int i, int64_t in)
{
	int64_t full = (in - 1) * w->s[i] + sh_kext(w, i) + w->outpad[i], out = -1;
	int same = w->autopad == PAD_SAME_UPPER || w->autopad == PAD_SAME_LOWER;
	if (w->outshape[i] > 0 || same) {
		out = w->outshape[i] > 0 ? w->outshape[i] : in * w->s[i];
		int64_t total = full - out, t = total < 0 ? 0 : total;
		int64_t head = w->autopad == PAD_SAME_UPPER ? t / 2 : t - t / 2;
		if (total < INT32_MIN + 1 || total > INT32_MAX)
			return sh_fail(c, "spatial dim %d: output size %" PRId64 " is out of reach", i, out);
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
		return sh_fail(c, "weight '%s' %s must be [C, M/group, k...] for input '%s' %s and group %" PRId64,
		            w->name, sh_tshape(w).s, x->name, sh_tshape(x).s, g);
	if (b && (b->rank != 1 || b->dim[0] != w->dim[1] * g))
		return sh_fail(c, "bias '%s' %s must be [%" PRId64 "]", b->name, sh_tshape(b).s, w->dim[1] * g);
	return sh_same_dtype(c, 0, 1) || sh_same_dtype(c, 0, 2);
}

/* Output dim i = s*(in-1) + (k-1)*d + 1 - pad_begin - pad_end. */
int sh_convtranspose(Ctx *c)
{
	const Tensor *x = sh_in(c, 0), *w = sh_in(c, 1), *b = sh_in(c, 2);
	Window *win = &c->node->a.win;
	if (x->rank < 3 || x->rank - 2 != win->nsp || win->nsp > IR_MAXSP)
		return sh_fail(c, "input '%s' %s must be [N, C] and %d spatial dims", x->name, sh_tshape(x).s, win->nsp);
	if (convt_channels(c, x, w, b))
		return 1;
	Shape s = {.rank = x->rank, .dim = {x->dim[0], w->dim[1] * win->group}};
	for (int i = 0; i < win->nsp; i++) {
		if (win->k[i] != w->dim[2 + i] || win->s[i] < 1 || win->d[i] < 1 || win->outpad[i] < 0)
			return sh_fail(c, "spatial dim %d: kernel %d (weight %s), stride %d, dilation %d or "
			            "output_padding %d is bad", i, win->k[i], sh_tshape(w).s, win->s[i], win->d[i],
			            win->outpad[i]);
		if (convt_resolve(c, win, i, x->dim[2 + i]))
			return 1;
		s.dim[2 + i] = (x->dim[2 + i] - 1) * win->s[i] + sh_kext(win, i) - win->pad[i] - win->pad[win->nsp + i];
		if (win->pad[i] < 0 || s.dim[2 + i] < 1)
			return sh_fail(c, "spatial dim %d: pads %d and %d leave no output", i, win->pad[i],
			            win->pad[win->nsp + i]);
	}
	win->autopad = PAD_EXPLICIT;
	return sh_set_out(c, 0, x->dtype, &s);
}

/* Per channel (dim 1) parameters of x [N, C, ...]. */
int sh_instnorm(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	if (x->rank < 2)
		return sh_fail(c, "input '%s' %s must be [N, C, ...]", x->name, sh_tshape(x).s);
	for (int j = 1; j < 3; j++) {
		const Tensor *p = sh_in(c, j);
		if (p->rank != 1 || p->dim[0] != x->dim[1] || sh_same_dtype(c, 0, j))
			return sh_fail(c, "'%s' %s must be [%" PRId64 "] of %s", p->name, sh_tshape(p).s, x->dim[1],
			            ir_dtype_name(x->dtype));
	}
	Shape s = sh_shape_of(x);
	return sh_set_out(c, 0, x->dtype, &s);
}

/* scale and b broadcast to x; Mean and InvStdDev are x.shape[:axis]
 * followed by ones. */
int sh_layernorm(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	int axis = 0;
	if (sh_norm_axis(c, c->node->a.norm.axis, x->rank, 0, &axis))
		return 1;
	for (int j = 1; j < 3; j++) {
		const Tensor *p = sh_in(c, j);
		if (p && (!sh_unidir(p->rank, p->dim, x->rank, x->dim) || sh_same_dtype(c, 0, j)))
			return sh_fail(c, "'%s' %s does not broadcast to '%s' %s", p->name, sh_tshape(p).s, x->name,
			            sh_tshape(x).s);
	}
	Shape s = sh_shape_of(x), st = sh_shape_of(x);
	for (int i = axis; i < x->rank; i++)
		st.dim[i] = 1;
	return sh_set_out(c, 0, x->dtype, &s) || sh_set_out(c, 1, DT_F32, &st) || sh_set_out(c, 2, DT_F32, &st);
}

int sh_lrn(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	if (x->rank < 2 || c->node->a.lrn.size < 1)
		return sh_fail(c, "input '%s' %s must be [N, C, ...] and size %d positive", x->name,
		            sh_tshape(x).s, c->node->a.lrn.size);
	Shape s = sh_shape_of(x);
	return sh_set_out(c, 0, x->dtype, &s);
}

/* Input j if present and not empty. */
static const Tensor *nonempty(Ctx *c, int j)
{
	const Tensor *t = sh_in(c, j);
	return t && ir_numel(t) ? t : NULL;
}

/* A constant float vector of n values (Resize's roi and scales); why
 * says why it must be constant. */
static int const_floats(Ctx *c, int j, int n, const char *why)
{
	const Tensor *t = sh_in(c, j);
	if (!ir_is_const(c->g, c->node->in[j]))
		return sh_fail(c, "input '%s' is not a constant; %s", t->name, why);
	if ((t->dtype != DT_F32 && t->dtype != DT_F64) || t->rank != 1 || t->dim[0] != n)
		return sh_fail(c, "input '%s' %s %s must be a float vector of %d values", t->name,
		            ir_dtype_name(t->dtype), sh_tshape(t).s, n);
	return 0;
}

/* Output dims from sizes, or floor(in * scale); roi is read only by
 * tf_crop_and_resize. */
int sh_resize(Ctx *c)
{
	const Tensor *x = sh_in(c, 0), *sc = nonempty(c, 2), *sz = nonempty(c, 3);
	int r = x->rank, n = 0;
	int64_t v[IR_MAXRANK];
	Shape s = {.rank = r};
	if (!sc == !sz)
		return sh_fail(c, "exactly one of scales and sizes must be given");
	if (c->node->a.resize.mode != RS_NEAREST && x->dtype != DT_F32)
		return sh_fail(c, "linear and cubic modes need f32 input, '%s' is %s", x->name, ir_dtype_name(x->dtype));
	if (sz && sh_const_ints(c, 3, v, IR_MAXRANK, &n))
		return 1;
	if ((sz && n != r) || (sc && const_floats(c, 2, r, "potc needs static shapes")))
		return sc ? 1 : sh_fail(c, "sizes has %d values; input '%s' %s needs %d", n, x->name, sh_tshape(x).s, r);
	if (c->node->a.resize.coord == RS_TF_CROP_AND_RESIZE &&
	    (!nonempty(c, 1) || const_floats(c, 1, 2 * r, "potc computes the sampling of tf_crop_and_resize at compile time")))
		return nonempty(c, 1) ? 1 : sh_fail(c, "tf_crop_and_resize needs roi");
	for (int i = 0; i < r; i++) {
		double f = sc ? ir_get(sc, i) : 0;
		if (sc && !(f > 0 && f * (double)x->dim[i] <= MAXNUMEL))
			return sh_fail(c, "scale %g of dim %d must be positive and keep the dim in range", f, i);
		s.dim[i] = sz ? v[i] : (int64_t)floor(f * (double)x->dim[i]);
		if (s.dim[i] < 0 || (x->dim[i] == 0 && s.dim[i] > 0))
			return sh_fail(c, "output dim %d = %" PRId64 " is bad for input '%s' %s", i, s.dim[i], x->name, sh_tshape(x).s);
	}
	return sh_set_out(c, 0, x->dtype, &s);
}

