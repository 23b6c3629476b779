/* Shape rules for ops.def's "ONNX quantization operators": QuantizeLinear,
 * DequantizeLinear, QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger.
 *
 * Besides shapes and dtypes these rules fix the forms of the scales and
 * zero points that the evaluator and the backends then rely on: a
 * parameter has one element (per tensor) or one per channel, laid out as a
 * plain vector, so element c of the channel is always at index c. */
#include <inttypes.h>

#include "shape_impl.h"

static int is_q8(DType t)
{
	return t == DT_U8 || t == DT_I8;
}

/* Input j (if present) has dtype want. */
static int want_dtype(Ctx *c, int j, DType want, const char *role)
{
	const Tensor *t = sh_in(c, j);
	if (t && t->dtype != want)
		return sh_fail(c, "%s '%s' is %s, it must be %s", role, t->name,
		               ir_dtype_name(t->dtype), ir_dtype_name(want));
	return 0;
}

/* Input j (if present) is u8 or i8. */
static int want_q8(Ctx *c, int j, const char *role)
{
	const Tensor *t = sh_in(c, j);
	if (t && !is_q8(t->dtype))
		return sh_fail(c, "%s '%s' is %s, it must be u8 or i8", role, t->name,
		               ir_dtype_name(t->dtype));
	return 0;
}

/* Input j (if present) holds one value, or nch values along its last dim,
 * every other dim 1 (per output channel of a convolution). */
static int want_param(Ctx *c, int j, int64_t nch, const char *what)
{
	const Tensor *t = sh_in(c, j);
	if (!t || ir_numel(t) == 1)
		return 0;
	int ok = ir_numel(t) == nch && t->rank >= 1 && t->dim[t->rank - 1] == nch;
	if (!ok)
		return sh_fail(c, "'%s' %s must hold 1 value or %" PRId64 " (%s)", t->name,
		               sh_tshape(t).s, nch, what);
	return 0;
}

/* A matmul parameter, input j, of matrix m (A: row = 1, one value per row;
 * B: one per column): one value; one per row (column) as a vector, [M, 1]
 * or [1, N], leading 1s allowed; or one per matrix of the batch and row
 * (column): m's batch dims, then [M, 1] ([1, N]).  So element (batch b,
 * row r) is at r, or at b * M + r. */
static int want_mm_param(Ctx *c, int j, const Tensor *m, int row)
{
	const Tensor *t = sh_in(c, j);
	if (!t || ir_numel(t) == 1)
		return 0;
	int r = t->rank;
	int64_t n = m->rank < 2 ? 1 : m->dim[m->rank - (row ? 2 : 1)];
	int at = row && r >= 2 && t->dim[r - 1] == 1 ? r - 2 : r - 1;
	int ok = r >= 1 && r <= m->rank && t->dim[at] == n;
	int flat = ok && ir_numel(t) == n;
	int batched = ok && r == m->rank && r > 2 && at == (row ? r - 2 : r - 1) &&
	              t->dim[row ? r - 1 : r - 2] == 1;
	for (int i = 0; batched && i < r - 2; i++)
		batched = t->dim[i] == m->dim[i];
	if (!flat && !batched)
		return sh_fail(c, "'%s' %s must hold 1 value, or 1 per %s of '%s' %s", t->name,
		               sh_tshape(t).s, row ? "row" : "column", m->name, sh_tshape(m).s);
	return 0;
}

/* Input j (if present) holds exactly one value. */
static int want_one(Ctx *c, int j)
{
	const Tensor *t = sh_in(c, j);
	if (t && ir_numel(t) != 1)
		return sh_fail(c, "'%s' %s must hold one value (per-tensor quantization)", t->name,
		               sh_tshape(t).s);
	return 0;
}

/* The scales of QLinearConv and QLinearMatMul: inputs 1, 4 and 6. */
static int scales_f32(Ctx *c)
{
	return want_dtype(c, 1, DT_F32, "scale") || want_dtype(c, 4, DT_F32, "scale") ||
	       want_dtype(c, 6, DT_F32, "scale");
}

/* QuantizeLinear (x f32 or i32 -> zp's dtype, u8 without one) and
 * DequantizeLinear (u8, i8 or i32 -> f32); scale and zero point one value
 * or one per slice along the axis. */
int sh_quantize(Ctx *c)
{
	const Tensor *x = sh_in(c, 0), *s = sh_in(c, 1), *z = sh_in(c, 2);
	int q = c->node->op == OP_QUANTIZE;
	if (q && x->dtype != DT_F32 && x->dtype != DT_I32)
		return sh_fail(c, "input '%s' is %s, it must be f32 or i32", x->name, ir_dtype_name(x->dtype));
	if (!q && !is_q8(x->dtype) && x->dtype != DT_I32)
		return sh_fail(c, "input '%s' is %s, it must be u8, i8 or i32", x->name,
		               ir_dtype_name(x->dtype));
	if (want_dtype(c, 1, DT_F32, "scale") || (q ? want_q8(c, 2, "zero point")
	                                            : want_dtype(c, 2, x->dtype, "zero point")))
		return 1;
	if (ir_numel(s) != 1) {
		int axis = 0;
		if (sh_norm_axis(c, c->node->a.axis.axis, x->rank, 0, &axis))
			return 1;
		if (s->rank != 1 || s->dim[0] != x->dim[axis])
			return sh_fail(c, "scale '%s' %s must hold 1 value or %" PRId64 " (one per slice "
			               "along axis %d of '%s' %s)", s->name, sh_tshape(s).s, x->dim[axis],
			               axis, x->name, sh_tshape(x).s);
	}
	if (z && (z->rank != s->rank || ir_numel(z) != ir_numel(s)))
		return sh_fail(c, "zero point '%s' %s and scale '%s' %s differ in shape", z->name,
		               sh_tshape(z).s, s->name, sh_tshape(s).s);
	Shape o = sh_shape_of(x);
	return sh_set_out(c, 0, q ? (z ? z->dtype : DT_U8) : DT_F32, &o);
}

/* QLinearConv (x, sx, zx, w, sw, zw, sy, zy, b?) and ConvInteger (x, w,
 * zx?, zw?): Conv's shape; w's parameters per tensor or per output channel. */
int sh_qconv(Ctx *c)
{
	int ql = c->node->op == OP_QLINEARCONV;
	int iw = ql ? 3 : 1, izx = 2, izw = ql ? 5 : 3;
	const Tensor *x = sh_in(c, 0), *w = sh_in(c, iw), *b = ql ? sh_in(c, 8) : NULL;
	Shape s;
	if (want_q8(c, 0, "input") || want_q8(c, iw, "weight") ||
	    want_dtype(c, izx, x->dtype, "input zero point") ||
	    want_dtype(c, izw, w->dtype, "weight zero point") || sh_conv_shape(c, x, w, b, &s))
		return 1;
	int64_t m = w->dim[0];
	if (want_one(c, izx) || want_param(c, izw, m, "one per output channel"))
		return 1;
	if (!ql)
		return sh_set_out(c, 0, DT_I32, &s);
	if (scales_f32(c))
		return 1;
	if (want_q8(c, 7, "output zero point") || want_dtype(c, 8, DT_I32, "bias") ||
	    want_one(c, 1) || want_param(c, 4, m, "one per output channel") ||
	    want_one(c, 6) || want_one(c, 7))
		return 1;
	return sh_set_out(c, 0, sh_in(c, 7)->dtype, &s);
}

/* QLinearMatMul (a, sa, za, b, sb, zb, sy, zy) and MatMulInteger (a, b,
 * za?, zb?): numpy matmul; a's parameters per tensor or per row, b's per
 * tensor or per column. */
int sh_qmatmul(Ctx *c)
{
	int ql = c->node->op == OP_QLINEARMATMUL;
	int ib = ql ? 3 : 1, iza = 2, izb = ql ? 5 : 3;
	const Tensor *a = sh_in(c, 0), *b = sh_in(c, ib);
	Shape s;
	if (want_q8(c, 0, "input A") || want_q8(c, ib, "input B") ||
	    want_dtype(c, iza, a->dtype, "A zero point") ||
	    want_dtype(c, izb, b->dtype, "B zero point") || sh_matmul_shape(c, a, b, &s))
		return 1;
	if (want_mm_param(c, iza, a, 1) || want_mm_param(c, izb, b, 0))
		return 1;
	if (!ql)
		return sh_set_out(c, 0, DT_I32, &s);
	if (scales_f32(c))
		return 1;
	if (want_q8(c, 7, "output zero point") || want_mm_param(c, 1, a, 1) ||
	    want_mm_param(c, 4, b, 0) || want_one(c, 6) || want_one(c, 7))
		return 1;
	return sh_set_out(c, 0, sh_in(c, 7)->dtype, &s);
}
