/* Shape rules for views, data movement and shape arithmetic (see shape.c). */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "shape_impl.h"

/* ---- views and data movement ---- */

/* Dropout-7 (opset 9) gives the mask x's type; from opset 10 it is bool. */
int sh_dropout(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	Shape s = sh_shape_of(x);
	DType mask = c->g->opset >= 1 && c->g->opset < 10 ? x->dtype : DT_BOOL;
	if (sh_scalar_input(c, 1) || sh_scalar_input(c, 2))
		return 1;
	return sh_set_out(c, 0, x->dtype, &s) || sh_set_out(c, 1, mask, &s);
}

/* s holds the explicit dims, infer the index of the -1 (or -1), known the
 * product of the others. */
static int reshape_finish(Ctx *c, const Tensor *x, Shape *s, int infer, int64_t known)
{
	int64_t total = ir_numel(x);
	if (infer < 0 && known != total)
		return sh_fail(c, "shape %s has %" PRId64 " elements but input '%s' %s has %" PRId64,
		            sh_dimstr(s->rank, s->dim).s, known, x->name, sh_tshape(x).s, total);
	if (infer >= 0) {
		if (known == 0 || total % known != 0)
			return sh_fail(c, "cannot infer the -1 in the shape: %" PRId64 " elements of '%s' %s "
			            "are not a multiple of %" PRId64, total, x->name, sh_tshape(x).s, known);
		s->dim[infer] = total / known;
	}
	return sh_set_out(c, 0, x->dtype, s);
}

int sh_reshape(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	int64_t v[IR_MAXRANK], known = 1;
	int nv, infer = -1, zero = 0, allowzero = c->node->a.reshape.allowzero;
	if (sh_const_ints(c, 1, v, IR_MAXRANK, &nv))
		return 1;
	Shape s = {.rank = nv};
	for (int i = 0; i < nv; i++) {
		int64_t d = v[i];
		zero |= d == 0;
		if (d == 0 && !allowzero) {
			if (i >= x->rank)
				return sh_fail(c, "shape %s: 0 at %d copies a dim that input '%s' %s does not have",
				            sh_dimstr(nv, v).s, i, x->name, sh_tshape(x).s);
			d = x->dim[i];
		}
		if (d < -1)
			return sh_fail(c, "shape %s: dim %d is negative", sh_dimstr(nv, v).s, i);
		if (d == -1 && infer >= 0)
			return sh_fail(c, "shape %s has more than one -1", sh_dimstr(nv, v).s);
		if (d == -1) {
			infer = i;
			continue;
		}
		s.dim[i] = d;
		if (__builtin_mul_overflow(known, d, &known))
			return sh_fail(c, "shape %s: element count overflows int64", sh_dimstr(nv, v).s);
	}
	if (allowzero && zero && infer >= 0)
		return sh_fail(c, "shape %s: with allowzero, 0 and -1 cannot both appear", sh_dimstr(nv, v).s);
	return reshape_finish(c, x, &s, infer, known);
}

/* 2-D [sh_prod(d[:axis]), sh_prod(d[axis:])], axis in [-r, r]. */
int sh_flatten(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	int axis = 0;
	if (sh_norm_axis(c, c->node->a.axis.axis, x->rank, 1, &axis))
		return 1;
	Shape s = {.rank = 2};
	if (sh_prod(x->dim, 0, axis, &s.dim[0]) || sh_prod(x->dim, axis, x->rank, &s.dim[1]))
		return sh_fail(c, "flattening '%s' %s overflows int64", x->name, sh_tshape(x).s);
	return sh_set_out(c, 0, x->dtype, &s);
}

/* Without axes (or with an empty axes tensor, as onnxruntime) every size-1
 * dim goes; a named axis must have size 1. */
int sh_squeeze(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	int64_t ax[IR_MAXRANK];
	int nax = 0;
	char drop[IR_MAXRANK] = {0};
	if (sh_in(c, 1) && (sh_const_ints(c, 1, ax, IR_MAXRANK, &nax) || sh_mark_axes(c, ax, nax, x->rank, drop)))
		return 1;
	for (int i = 0; i < x->rank; i++) {
		if (nax == 0)
			drop[i] = x->dim[i] == 1;
		else if (drop[i] && x->dim[i] != 1)
			return sh_fail(c, "cannot squeeze axis %d of '%s' %s: its size is not 1",
			            i, x->name, sh_tshape(x).s);
	}
	Shape s = {0};
	for (int i = 0; i < x->rank; i++)
		if (!drop[i])
			s.dim[s.rank++] = x->dim[i];
	return sh_set_out(c, 0, x->dtype, &s);
}

/* axes name positions in the output, of rank r + len(axes). */
int sh_unsqueeze(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	int64_t ax[IR_MAXRANK];
	int nax;
	if (sh_const_ints(c, 1, ax, IR_MAXRANK, &nax))
		return 1;
	int r = x->rank + nax;
	if (r > IR_MAXRANK)
		return sh_fail(c, "output would have rank %d; potc supports at most %d", r, IR_MAXRANK);
	char ins[IR_MAXRANK] = {0};
	if (sh_mark_axes(c, ax, nax, r, ins))
		return 1;
	Shape s = {.rank = r};
	for (int i = 0, k = 0; i < r; i++)
		s.dim[i] = ins[i] ? 1 : x->dim[k++];
	return sh_set_out(c, 0, x->dtype, &s);
}

int sh_transpose(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	int np = c->node->a.perm.n, seen[IR_MAXRANK] = {0};
	const int *perm = c->node->a.perm.p;
	if (np != 0 && np != x->rank)
		return sh_fail(c, "perm has %d entries but input '%s' %s has rank %d",
		            np, x->name, sh_tshape(x).s, x->rank);
	Shape s = {.rank = x->rank};
	for (int i = 0; i < x->rank; i++) {
		int p = np ? perm[i] : x->rank - 1 - i;
		if (p < 0 || p >= x->rank || seen[p])
			return sh_fail(c, "perm is not a permutation of 0..%d", x->rank - 1);
		seen[p] = 1;
		s.dim[i] = x->dim[p];
	}
	return sh_set_out(c, 0, x->dtype, &s);
}

/* Equal rank and dtype; dims agree except along axis. */
int sh_concat(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	int axis = 0;
	if (sh_norm_axis(c, c->node->a.axis.axis, x->rank, 0, &axis))
		return 1;
	Shape s = sh_shape_of(x);
	for (int j = 1; j < c->node->nin; j++) {
		const Tensor *t = sh_in(c, j);
		if (!t)
			return sh_fail(c, "input %d is missing", j);
		if (sh_same_dtype(c, 0, j))
			return 1;
		int bad = t->rank != x->rank;
		for (int i = 0; !bad && i < x->rank; i++)
			bad = i != axis && t->dim[i] != x->dim[i];
		if (bad)
			return sh_fail(c, "input '%s' %s does not match '%s' %s outside axis %d",
			            t->name, sh_tshape(t).s, x->name, sh_tshape(x).s, axis);
		s.dim[axis] += t->dim[axis];
	}
	return sh_set_out(c, 0, x->dtype, &s);
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
		return sh_fail(c, "negative pads are supported only in constant mode");
	if (m == PADMODE_REFLECT && (b >= x->dim[i] || e >= x->dim[i]))
		return sh_fail(c, "reflect pads %" PRId64 " and %" PRId64 " of dim %d must be smaller than its size %" PRId64,
		            b, e, i, x->dim[i]);
	if (m == PADMODE_EDGE && x->dim[i] == 0 && (b > 0 || e > 0))
		return sh_fail(c, "edge mode cannot pad the empty dim %d", i);
	return 0;
}

/* pads: all begins, then all ends. */
int sh_pad(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	int64_t p[2 * IR_MAXRANK];
	int np;
	if (sh_const_ints(c, 1, p, 2 * IR_MAXRANK, &np) || sh_scalar_input(c, 2))
		return 1;
	if (np != 2 * x->rank)
		return sh_fail(c, "pads has %d values; input '%s' %s needs %d",
		            np, x->name, sh_tshape(x).s, 2 * x->rank);
	Shape s = {.rank = x->rank};
	for (int i = 0; i < x->rank; i++) {
		int64_t b = p[i], e = p[x->rank + i];
		if (__builtin_add_overflow(x->dim[i], b, &s.dim[i]) ||
		    __builtin_add_overflow(s.dim[i], e, &s.dim[i]))
			return sh_fail(c, "pads %" PRId64 " and %" PRId64 " of dim %d overflow", b, e, i);
		if (s.dim[i] < 0)
			return sh_fail(c, "pads %" PRId64 " and %" PRId64 " leave dim %d of '%s' %s negative",
			            b, e, i, x->name, sh_tshape(x).s);
		if (pad_mode_ok(c, x, i, b, e))
			return 1;
	}
	return sh_set_out(c, 0, x->dtype, &s);
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
	if (sh_const_ints(c, 1, v[0], IR_MAXRANK, n) || sh_const_ints(c, 2, v[1], IR_MAXRANK, &cnt))
		return 1;
	if (cnt != *n)
		return sh_fail(c, "starts has %d values but ends has %d", *n, cnt);
	for (int k = 2; k < 4; k++) {
		for (int i = 0; i < *n; i++)
			v[k][i] = k == 2 ? i : 1;
		if (!sh_in(c, k + 1))
			continue;
		if (sh_const_ints(c, k + 1, v[k], IR_MAXRANK, &cnt))
			return 1;
		if (cnt != *n)
			return sh_fail(c, "%s has %d values but starts has %d", k == 2 ? "axes" : "steps", cnt, *n);
	}
	return 0;
}

int sh_slice(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	int64_t v[4][IR_MAXRANK];
	int n;
	char seen[IR_MAXRANK] = {0};
	if (slice_args(c, v, &n) || sh_mark_axes(c, v[2], n, x->rank, seen))
		return 1;
	Shape s = sh_shape_of(x);
	for (int i = 0; i < n; i++) {
		int a = (int)(v[2][i] < 0 ? v[2][i] + x->rank : v[2][i]);
		if (v[3][i] == 0)
			return sh_fail(c, "step of axis %d is 0", a);
		s.dim[a] = slice_len(x->dim[a], v[0][i], v[1][i], v[3][i]);
	}
	return sh_set_out(c, 0, x->dtype, &s);
}

/* Constant indices must lie in [-n, n). */
int sh_check_indices(Ctx *c, const Tensor *idx, int64_t n)
{
	int64_t cnt = ir_numel(idx);
	for (int64_t i = 0; i < cnt; i++) {
		int64_t v = ir_get_i64(idx, i);
		if (v < -n || v >= n)
			return sh_fail(c, "index %" PRId64 " in '%s' is out of range [%" PRId64 ", %" PRId64 ")",
			            v, idx->name, -n, n);
	}
	return 0;
}

/* y = x.shape[:axis] + idx.shape + x.shape[axis+1:]. */
int sh_gather(Ctx *c)
{
	const Tensor *x = sh_in(c, 0), *idx = sh_in(c, 1);
	int axis = 0;
	if (idx->dtype != DT_I32 && idx->dtype != DT_I64)
		return sh_fail(c, "indices '%s' must be i32 or i64, not %s", idx->name,
		            ir_dtype_name(idx->dtype));
	if (sh_norm_axis(c, c->node->a.axis.axis, x->rank, 0, &axis))
		return 1;
	Shape s = {0};
	for (int i = 0; i < axis; i++)
		s.dim[s.rank++] = x->dim[i];
	for (int i = 0; i < idx->rank; i++)
		s.dim[s.rank++] = idx->dim[i];
	for (int i = axis + 1; i < x->rank; i++)
		s.dim[s.rank++] = x->dim[i];
	if (ir_is_const(c->g, c->node->in[1]) && sh_check_indices(c, idx, x->dim[axis]))
		return 1;
	return sh_set_out(c, 0, x->dtype, &s);
}

/* Bidirectional: y's shape is broadcast(x.shape, shape). */
int sh_expand(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	int64_t v[IR_MAXRANK];
	int nv;
	if (sh_const_ints(c, 1, v, IR_MAXRANK, &nv))
		return 1;
	for (int i = 0; i < nv; i++)
		if (v[i] < 0)
			return sh_fail(c, "shape %s has a negative dim", sh_dimstr(nv, v).s);
	Shape s;
	if (sh_bcast(x->rank, x->dim, nv, v, &s.rank, s.dim))
		return sh_fail(c, "input '%s' %s does not broadcast with shape %s",
		            x->name, sh_tshape(x).s, sh_dimstr(nv, v).s);
	return sh_set_out(c, 0, x->dtype, &s);
}

int sh_tile(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	int64_t v[IR_MAXRANK];
	int nv;
	if (sh_const_ints(c, 1, v, IR_MAXRANK, &nv))
		return 1;
	if (nv != x->rank)
		return sh_fail(c, "repeats has %d values but input '%s' %s has rank %d",
		            nv, x->name, sh_tshape(x).s, x->rank);
	Shape s = {.rank = nv};
	for (int i = 0; i < nv; i++) {
		if (v[i] < 0)
			return sh_fail(c, "repeats %s: count %d is negative", sh_dimstr(nv, v).s, i);
		if (__builtin_mul_overflow(x->dim[i], v[i], &s.dim[i]))
			return sh_fail(c, "repeats %s: dim %d of '%s' %s repeated overflows int64",
			            sh_dimstr(nv, v).s, i, x->name, sh_tshape(x).s);
	}
	return sh_set_out(c, 0, x->dtype, &s);
}

/* ---- shape arithmetic ---- */

int sh_constant(Ctx *c)
{
	return sh_fail(c, "internal: Constant nodes must become constant tensors in the frontend");
}

/* Opset 15 slicing: start and end count from the back when negative and
 * clamp to [0, rank]. */
int sh_shape(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	int64_t r = x->rank, st = c->node->a.shape.start, en = c->node->a.shape.end;
	st = clamp(st < 0 ? st + r : st, 0, r);
	en = c->node->a.shape.has_end ? clamp(en < 0 ? en + r : en, 0, r) : r;
	Shape s = {.rank = 1, .dim = {en > st ? en - st : 0}};
	return sh_set_out(c, 0, DT_I64, &s);
}

int sh_size(Ctx *c)
{
	Shape s = {0};
	return sh_set_out(c, 0, DT_I64, &s);
}

static int check_to(Ctx *c, DType to)
{
	if (to <= DT_UNDEF || to >= DT_COUNT)
		return sh_fail(c, "target dtype %d is not supported", (int)to);
	return 0;
}

int sh_cast(Ctx *c)
{
	const Tensor *x = sh_in(c, 0);
	Shape s = sh_shape_of(x);
	return check_to(c, c->node->a.cast.to) || sh_set_out(c, 0, c->node->a.cast.to, &s);
}

/* An empty shape gives a scalar. */
int sh_constofshape(Ctx *c)
{
	int64_t v[IR_MAXRANK];
	int nv;
	if (sh_const_ints(c, 0, v, IR_MAXRANK, &nv) || check_to(c, c->node->a.cast.to))
		return 1;
	Shape s = {.rank = nv};
	for (int i = 0; i < nv; i++) {
		if (v[i] < 0)
			return sh_fail(c, "shape %s has a negative dim", sh_dimstr(nv, v).s);
		s.dim[i] = v[i];
	}
	return sh_set_out(c, 0, c->node->a.cast.to, &s);
}

/* max(ceil((limit - start) / delta), 0), exactly, in integers. */
static int range_int(Ctx *c, int64_t start, int64_t limit, int64_t delta, int64_t *len)
{
	int64_t span, q;
	if (delta == 0)
		return sh_fail(c, "delta is 0");
	if (__builtin_sub_overflow(limit, start, &span) || (span == INT64_MIN && delta == -1))
		return sh_fail(c, "range [%" PRId64 ", %" PRId64 ") overflows int64", start, limit);
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
		return sh_fail(c, "delta %g must be finite and non-zero", delta);
	double q = ceil(span / delta);
	if (!(q <= MAXNUMEL))  /* also NaN */
		return sh_fail(c, "range from %g to %g by %g has too many elements", start, limit, delta);
	*len = q > 0 ? (int64_t)q : 0;
	return 0;
}

/* start, limit, delta: constant scalars of one dtype; y has start's dtype. */
int sh_range(Ctx *c)
{
	const Tensor *t[3] = {sh_in(c, 0), sh_in(c, 1), sh_in(c, 2)};
	for (int j = 0; j < 3; j++) {
		if (!ir_is_const(c->g, c->node->in[j]))
			return sh_fail(c, "shape input '%s' is not a constant; potc needs static shapes", t[j]->name);
		if (sh_scalar_input(c, j) || sh_same_dtype(c, 0, j))
			return 1;
	}
	if (t[0]->dtype == DT_BOOL)
		return sh_fail(c, "Range does not take bool");
	Shape s = {.rank = 1};
	if (sh_is_int(t[0]->dtype)
	    ? range_int(c, ir_get_i64(t[0], 0), ir_get_i64(t[1], 0), ir_get_i64(t[2], 0), &s.dim[0])
	    : range_float(c, t, &s.dim[0]))
		return 1;
	return sh_set_out(c, 0, t[0]->dtype, &s);
}

