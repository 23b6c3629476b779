/* Per-op knowledge of ONNX opsets 1 to 17: input counts, attributes into
 * the IR's Attr union (with the spec's defaults), and attribute forms that
 * later opsets moved to inputs (Slice starts, Pad pads, Squeeze axes, Clip
 * min/max, Reshape shape, ...) rewritten to the input form with constant
 * tensors.  Old semantics that need new nodes (legacy broadcasting, Tile-1)
 * are in legacy.c.
 *
 * Every attribute a parser reads is marked; one left unmarked is an error,
 * so an attribute potc does not implement never changes a result silently.
 * Parsers read an attribute only at the opsets whose schema has it. */
#include <float.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "onnx_impl.h"

typedef Onnx__AttributeProto__AttributeType AType;
#define T(x) ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__##x

enum { MAX_ATTRS = 64 };  /* no ONNX op has half as many */

typedef struct {
	Loader *L;
	int ni;
	const Onnx__NodeProto *np;
	Op op;
	Attr *a;
	int *in, nin;   /* room for nin + 3 */
	int bad;
	unsigned char used[MAX_ATTRS];
} Ctx;

static void err(Ctx *c, const char *fmt, ...)
{
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	onnx_err(c->L, c->ni, "%s", msg);
	c->bad = 1;
}

/* ---- reading attributes ---- */

static const char *type_name(AType t)
{
	switch (t) {
	case T(FLOAT): return "a float";
	case T(INT): return "an int";
	case T(STRING): return "a string";
	case T(TENSOR): return "a tensor";
	case T(GRAPH): return "a graph";
	case T(FLOATS): return "a list of floats";
	case T(INTS): return "a list of ints";
	case T(STRINGS): return "a list of strings";
	default: return "of another type";
	}
}

/* IR version 1 files have no type field: the type is the field set. */
static AType type_of(const Onnx__AttributeProto *at)
{
	if (at->has_type)
		return at->type;
	if (at->has_f) return T(FLOAT);
	if (at->has_i) return T(INT);
	if (at->has_s) return T(STRING);
	if (at->t) return T(TENSOR);
	if (at->g) return T(GRAPH);
	if (at->n_floats) return T(FLOATS);
	if (at->n_ints) return T(INTS);
	if (at->n_strings) return T(STRINGS);
	return T(UNDEFINED);
}

static int list_type(AType t)
{
	return t == T(FLOATS) || t == T(INTS) || t == T(STRINGS);
}

/* The attribute called name, marked read; NULL if absent or mistyped. */
static const Onnx__AttributeProto *find(Ctx *c, const char *name, AType want)
{
	for (size_t i = 0; i < c->np->n_attribute; i++) {
		const Onnx__AttributeProto *at = c->np->attribute[i];
		if (strcmp(onnx_str(at->name), name) != 0)
			continue;
		c->used[i] = 1;
		AType t = type_of(at);
		if (t == want || (t == T(UNDEFINED) && list_type(want)))
			return at;
		onnx_err(c->L, c->ni, "attribute '%s' should be %s, it is %s", name, type_name(want),
		         type_name(t));
		c->bad = 1;
		return NULL;
	}
	return NULL;
}

static int64_t get_int(Ctx *c, const char *name, int64_t def, int64_t lo, int64_t hi)
{
	const Onnx__AttributeProto *at = find(c, name, T(INT));
	if (!at)
		return def;
	if (at->i < lo || at->i > hi) {
		onnx_err(c->L, c->ni, "attribute '%s' = %lld is out of range [%lld, %lld]", name,
		         (long long)at->i, (long long)lo, (long long)hi);
		c->bad = 1;
		return def;
	}
	return at->i;
}

static int get_flag(Ctx *c, const char *name, int def)
{
	return get_int(c, name, def, 0, 1) != 0;
}

static float get_float(Ctx *c, const char *name, float def)
{
	const Onnx__AttributeProto *at = find(c, name, T(FLOAT));
	return at ? at->f : def;
}

/* Up to max ints into v; their count, or -1 if absent (or bad). */
static int get_ints(Ctx *c, const char *name, int64_t *v, int max)
{
	const Onnx__AttributeProto *at = find(c, name, T(INTS));
	if (!at)
		return -1;
	if (at->n_ints > (size_t)max) {
		err(c, "attribute '%s' has %zu values; potc supports at most %d", name, at->n_ints, max);
		return -1;
	}
	if (at->n_ints)
		memcpy(v, at->ints, sizeof(int64_t) * at->n_ints);
	return (int)at->n_ints;
}

/* String attribute into buf (NUL-terminated, truncated to size). */
static const char *get_string(Ctx *c, const char *name, char *buf, size_t size, const char *def)
{
	const Onnx__AttributeProto *at = find(c, name, T(STRING));
	if (!at)
		return def;
	size_t n = at->s.len < size - 1 ? at->s.len : size - 1;
	if (n)
		memcpy(buf, at->s.data, n);
	buf[n] = 0;
	return buf;
}

/* An attribute potc reads but has no use for (Dropout seed, ...). */
static void skip(Ctx *c, const char *name)
{
	for (size_t i = 0; i < c->np->n_attribute; i++)
		if (!strcmp(onnx_str(c->np->attribute[i]->name), name))
			c->used[i] = 1;
}

static int axis_attr(Ctx *c, const char *name, int def, int hi)
{
	return (int)get_int(c, name, def, -IR_MAXRANK, hi);
}

/* ---- new constant inputs ---- */

static void append(Ctx *c, int id)
{
	c->in[c->nin++] = id;
}

static const char *const_name(Ctx *c, const char *what)
{
	return arena_printf(c->L->g->arena, "%s.%s", c->L->nname[c->ni], what);
}

static void append_i64(Ctx *c, const char *what, const int64_t *v, int n)
{
	append(c, onnx_const_i64(c->L, const_name(c, what), v, n));
}

/* An optional ints attribute as an i64 input (absent: no input). */
static void ints_input(Ctx *c, const char *name, int required)
{
	int64_t v[2 * IR_MAXRANK];
	int n = get_ints(c, name, v, IR_MAXRANK);
	if (n >= 0)
		append_i64(c, name, v, n);
	else if (required && !c->bad)
		err(c, "attribute '%s' is required", name);
}

/* ---- sliding windows ---- */

/* Conv without kernel_shape: the weight [M, C/g, k...] says it
 * (QLinearConv's weight is its input 3; a QDQ model's weight is the
 * DequantizeLinear of a constant, which has the shape). */
static int kernel_from_weight(Ctx *c, int64_t *k)
{
	const Graph *g = c->L->g;
	const Tensor *w = &g->tensor[c->in[c->op == OP_QLINEARCONV ? 3 : 1]];
	if (w->kind == TK_VALUE && w->producer >= 0 && g->node[w->producer].op == OP_DEQUANTIZE)
		w = &g->tensor[g->node[w->producer].in[0]];
	if (w->kind == TK_VALUE) {
		err(c, "attribute 'kernel_shape' is absent and the weight's shape is not known");
		return -1;
	}
	if (w->rank < 3 || w->rank > 2 + IR_MAXSP) {
		err(c, "the weight has rank %d; potc convolves 1 to 3 spatial dims", w->rank);
		return -1;
	}
	memcpy(k, w->dim + 2, sizeof(int64_t) * (size_t)(w->rank - 2));
	return w->rank - 2;
}

/* n positive ints (default def) into dst. */
static void spatial(Ctx *c, const char *name, int *dst, int n, int def, int lo)
{
	int64_t v[2 * IR_MAXSP];
	int got = get_ints(c, name, v, 2 * IR_MAXSP);
	if (got >= 0 && got != n) {
		err(c, "attribute '%s' has %d values, the window needs %d", name, got, n);
		return;
	}
	for (int i = 0; i < n; i++) {
		int64_t x = got >= 0 ? v[i] : def;
		if (x < lo || x > INT_MAX) {
			err(c, "attribute '%s' has a bad value (%lld)", name, (long long)x);
			return;
		}
		dst[i] = (int)x;
	}
}

static void autopad(Ctx *c, Window *w)
{
	char buf[32];
	const char *s = get_string(c, "auto_pad", buf, sizeof buf, "NOTSET");
	if (!strcmp(s, "NOTSET"))
		w->autopad = PAD_EXPLICIT;
	else if (!strcmp(s, "VALID"))
		w->autopad = PAD_VALID;
	else if (!strcmp(s, "SAME_UPPER"))
		w->autopad = PAD_SAME_UPPER;
	else if (!strcmp(s, "SAME_LOWER"))
		w->autopad = PAD_SAME_LOWER;
	else
		err(c, "attribute 'auto_pad' = '%s' is not valid", s);
}

/* Conv, ConvTranspose, MaxPool, AveragePool: kernel, strides, dilations,
 * pads, auto_pad.  Dilations: Conv and ConvTranspose always, MaxPool from
 * opset 10, AveragePool from 19. */
static void window(Ctx *c)
{
	Window *w = &c->a->win;
	int64_t k[IR_MAXSP];
	int nk = get_ints(c, "kernel_shape", k, IR_MAXSP);
	int conv = c->op == OP_CONV || c->op == OP_CONVTRANSPOSE || c->op == OP_QLINEARCONV ||
	           c->op == OP_CONVINTEGER;
	if (nk < 0 && !c->bad && conv)
		nk = kernel_from_weight(c, k);
	else if (nk < 0 && !c->bad)
		err(c, "attribute 'kernel_shape' is required");
	if (nk == 0)
		err(c, "attribute 'kernel_shape' is empty");
	if (nk <= 0)
		return;
	w->nsp = nk;
	for (int i = 0; i < nk; i++) {
		if (k[i] < 1 || k[i] > INT_MAX)
			err(c, "attribute 'kernel_shape' has a bad value (%lld)", (long long)k[i]);
		w->k[i] = (int)k[i];
	}
	spatial(c, "strides", w->s, nk, 1, 1);
	if (conv || c->L->opset >= 10)
		spatial(c, "dilations", w->d, nk, 1, 1);
	else
		for (int i = 0; i < nk; i++)
			w->d[i] = 1;
	spatial(c, "pads", w->pad, 2 * nk, 0, 0);
	autopad(c, w);
}

static void p_conv(Ctx *c)
{
	window(c);
	c->a->win.group = (int)get_int(c, "group", 1, 1, INT_MAX);
}

static void p_maxpool(Ctx *c)
{
	window(c);
	if (c->L->opset >= 10)
		c->a->win.ceil = get_flag(c, "ceil_mode", 0);
	/* storage_order only lays out the Indices output. */
	if (c->L->opset >= 8)
		c->a->win.colmajor = get_flag(c, "storage_order", 0);
}

/* AveragePool before opset 7 excludes pads, as count_include_pad = 0 does. */
static void p_avgpool(Ctx *c)
{
	window(c);
	if (c->L->opset >= 10)
		c->a->win.ceil = get_flag(c, "ceil_mode", 0);
	if (c->L->opset >= 7)
		c->a->win.incl_pad = get_flag(c, "count_include_pad", 0);
}

/* ---- other compute ops ---- */

/* A nonzero int is true (the old schemas say "nonzero" for their flags). */
static int get_bool(Ctx *c, const char *name, int def)
{
	return get_int(c, name, def, INT64_MIN, INT64_MAX) != 0;
}

/* Opset < 7: C broadcasts to [M, N] only with broadcast = 1. */
static void p_gemm(Ctx *c)
{
	c->a->gemm.alpha = get_float(c, "alpha", 1.0f);
	c->a->gemm.beta = get_float(c, "beta", 1.0f);
	c->a->gemm.ta = get_bool(c, "transA", 0);
	c->a->gemm.tb = get_bool(c, "transB", 0);
	if (c->L->opset >= 7 || get_bool(c, "broadcast", 0) || c->nin < 3)
		return;
	int r = onnx_rank(c->L, c->in[2]);
	if (r >= 0 && r != 2)
		err(c, "input C '%s' has rank %d; at opset %d it must be [M, N] unless attribute "
		    "'broadcast' = 1", c->L->g->tensor[c->in[2]].name, r, c->L->opset);
}

/* Opset < 13 coerces the input to 2-D around axis (default 1). */
static void p_softmax(Ctx *c)
{
	int legacy = c->L->opset < 13;
	c->a->axis.legacy = legacy;
	c->a->axis.axis = axis_attr(c, "axis", legacy ? 1 : -1, IR_MAXRANK - 1);
}

/* Opset < 7: is_test (default 0!) picks inference. */
static void test_mode(Ctx *c)
{
	if (c->L->opset < 7 && !get_bool(c, "is_test", 0))
		err(c, "training mode (attribute 'is_test' = 0, the default) is not supported: potc "
		    "compiles inference, the model must set is_test = 1");
}

/* spatial (opset < 9, still accepted later) = 0 keeps statistics per
 * activation; legacy.c takes those that are per channel anyway. */
static void p_batchnorm(Ctx *c)
{
	c->a->bn.eps = get_float(c, "epsilon", 1e-5f);
	skip(c, "momentum");  /* running statistics: training only */
	test_mode(c);
	if (!get_bool(c, "spatial", 1) && !c->bad)
		c->bad |= onnx_legacy_bn_stats(c->L, c->ni, c->in);
	if (c->L->opset >= 14 && get_int(c, "training_mode", 0, INT64_MIN, INT64_MAX) != 0)
		err(c, "attribute 'training_mode' = 1 is not supported (potc compiles inference)");
}

/* ReduceSum took axes as an input at opset 13, the others at 18. */
static void p_reduce(Ctx *c)
{
	int sum = c->op == OP_REDUCESUM;
	c->a->reduce.keepdims = get_flag(c, "keepdims", 1);
	if (sum ? c->L->opset < 13 : c->L->opset < 18)
		ints_input(c, "axes", 0);
	else
		c->a->reduce.noop_empty = get_flag(c, "noop_with_empty_axes", 0);
}

/* ---- element-wise ---- */

/* Opset < 7 binary ops: no broadcasting unless broadcast = 1, then B's
 * dims match A's from attribute 'axis' on (suffix matching without it). */
static void p_binary(Ctx *c)
{
	if (c->L->opset >= 7)
		return;
	int bc = get_bool(c, "broadcast", 0);
	const Onnx__AttributeProto *axis = find(c, "axis", T(INT));
	if (bc && axis && axis->i < 0)
		err(c, "attribute 'axis' = %lld is negative", (long long)axis->i);
	if (c->bad)
		return;
	int b = !bc ? onnx_legacy_same(c->L, c->ni, c->in[0], c->in[1])
	            : onnx_legacy_broadcast(c->L, c->ni, c->in[0], c->in[1], axis ? axis->i : -1);
	c->bad |= b < 0;
	c->in[1] = b;
}

/* Max, Min, Sum, Mean before opset 8: every input has one shape. */
static void p_variadic(Ctx *c)
{
	for (int j = 1; c->L->opset < 8 && j < c->nin && !c->bad; j++)
		c->bad |= onnx_legacy_same(c->L, c->ni, c->in[0], c->in[j]) < 0;
}

/* Opset < 7: a 1-D slope is per channel. */
static void p_prelu(Ctx *c)
{
	if (c->L->opset >= 7)
		return;
	c->in[1] = onnx_legacy_slope(c->L, c->ni, c->in[0], c->in[1]);
	c->bad |= c->in[1] < 0;
}

static void p_leakyrelu(Ctx *c)
{
	c->a->ab.alpha = get_float(c, "alpha", 0.01f);
}

static void p_hardsigmoid(Ctx *c)
{
	c->a->ab.alpha = get_float(c, "alpha", 0.2f);
	c->a->ab.beta = get_float(c, "beta", 0.5f);
}

static void p_elu(Ctx *c)
{
	c->a->ab.alpha = get_float(c, "alpha", 1.0f);
}

/* Selu-1's defaults were rounded. */
static void p_selu(Ctx *c)
{
	int v1 = c->L->opset < 6;
	c->a->ab.alpha = get_float(c, "alpha", v1 ? 1.6732f : 1.67326319217681884765625f);
	c->a->ab.beta = get_float(c, "gamma", v1 ? 1.0507f : 1.05070102214813232421875f);
}

/* Opset < 11: min/max attributes become scalar inputs.  Clip-6 defaults
 * them to the float range (so it clips infinities); Clip-1 has no defaults,
 * absent stays absent. */
static void p_clip(Ctx *c)
{
	if (c->L->opset >= 11)
		return;
	int v6 = c->L->opset >= 6;
	const Onnx__AttributeProto *lo = find(c, "min", T(FLOAT));
	const Onnx__AttributeProto *hi = find(c, "max", T(FLOAT));
	if (lo || hi || v6)
		append(c, lo || v6 ? onnx_const_f32(c->L, const_name(c, "min"), lo ? lo->f : -FLT_MAX) : -1);
	if (hi || v6)
		append(c, onnx_const_f32(c->L, const_name(c, "max"), hi ? hi->f : FLT_MAX));
}

/* ---- data movement ---- */

/* Inference ignores the ratio; training mode would need random masks. */
static void p_dropout(Ctx *c)
{
	if (c->L->opset < 12) {
		skip(c, "ratio");
		test_mode(c);
		return;
	}
	skip(c, "seed");
	if (c->nin < 3 || c->in[2] < 0)
		return;
	const Tensor *t = &c->L->g->tensor[c->in[2]];
	int on = t->kind != TK_CONST;
	for (int64_t i = 0; !on && i < ir_numel(t); i++)
		on = ir_get(t, i) != 0;
	if (on)
		err(c, "training mode is not supported (input 'training_mode' must be a constant false)");
}

/* Opset < 5: the shape attribute. */
static void p_reshape(Ctx *c)
{
	if (c->L->opset < 5)
		ints_input(c, "shape", 1);
	if (c->L->opset >= 14)
		c->a->reshape.allowzero = get_flag(c, "allowzero", 0);
}

static void p_flatten(Ctx *c)
{
	c->a->axis.axis = axis_attr(c, "axis", 1, IR_MAXRANK);
}

static int present(const Ctx *c, const char *name)
{
	for (size_t i = 0; i < c->np->n_attribute; i++)
		if (!strcmp(onnx_str(c->np->attribute[i]->name), name))
			return 1;
	return 0;
}

/* Concat-1 defaults axis to 1; from opset 4 it is required. */
static void p_concat(Ctx *c)
{
	if (c->L->opset >= 4 && !present(c, "axis"))
		err(c, "attribute 'axis' is required");
	c->a->axis.axis = axis_attr(c, "axis", 1, IR_MAXRANK - 1);
}

static void p_gather(Ctx *c)
{
	c->a->axis.axis = axis_attr(c, "axis", 0, IR_MAXRANK - 1);
}

static void p_transpose(Ctx *c)
{
	int64_t p[IR_MAXRANK];
	int n = get_ints(c, "perm", p, IR_MAXRANK);
	unsigned seen = 0;
	for (int i = 0; i < n; i++) {
		if (p[i] < 0 || p[i] >= n || (seen >> p[i] & 1)) {
			err(c, "attribute 'perm' is not a permutation (value %lld)", (long long)p[i]);
			return;
		}
		seen |= 1u << p[i];
		c->a->perm.p[i] = (int)p[i];
	}
	c->a->perm.n = n > 0 ? n : 0;
}

static void p_squeeze(Ctx *c)
{
	if (c->L->opset < 13)
		ints_input(c, "axes", c->op == OP_UNSQUEEZE);
}

/* Opset < 10: starts, ends, axes attributes. */
static void p_slice(Ctx *c)
{
	if (c->L->opset >= 10)
		return;
	int64_t s[IR_MAXRANK], e[IR_MAXRANK], ax[IR_MAXRANK];
	int ns = get_ints(c, "starts", s, IR_MAXRANK);
	int ne = get_ints(c, "ends", e, IR_MAXRANK);
	int na = get_ints(c, "axes", ax, IR_MAXRANK);
	if (c->bad)
		return;
	if (ns < 0 || ne < 0) {
		err(c, "attribute '%s' is required", ns < 0 ? "starts" : "ends");
		return;
	}
	if (ns != ne || (na >= 0 && na != ns)) {
		err(c, "attributes 'starts', 'ends' and 'axes' differ in length");
		return;
	}
	append_i64(c, "starts", s, ns);
	append_i64(c, "ends", e, ne);
	if (na >= 0)
		append_i64(c, "axes", ax, na);
}

/* Opset < 11: pads (opset 1: paddings) and value attributes; the pads
 * order (all begins, then all ends) is the same in every form.  Pad-1's
 * example reads paddings as begin/end pairs, but its attribute text and
 * Pad-2's corrected example give all begins first: the text wins. */
static void p_pad(Ctx *c)
{
	char buf[32];
	const char *m = get_string(c, "mode", buf, sizeof buf, "constant");
	if (!strcmp(m, "constant"))
		c->a->pad.mode = PADMODE_CONSTANT;
	else if (!strcmp(m, "reflect"))
		c->a->pad.mode = PADMODE_REFLECT;
	else if (!strcmp(m, "edge"))
		c->a->pad.mode = PADMODE_EDGE;
	else
		err(c, "attribute 'mode' = '%s' is not supported (constant, reflect, edge)", m);
	if (c->L->opset >= 11)
		return;
	int64_t p[2 * IR_MAXRANK];
	const char *name = c->L->opset < 2 ? "paddings" : "pads";
	int n = get_ints(c, name, p, 2 * IR_MAXRANK);
	if (n < 0 || n % 2) {
		if (!c->bad)
			err(c, "attribute '%s' is required, with 2 values per dim", name);
		return;
	}
	append_i64(c, "pads", p, n);
	float v = get_float(c, "value", 0.0f);
	if (v != 0.0f)
		append(c, onnx_const_f32(c->L, const_name(c, "value"), v));
}

/* Tile-1 takes (input, tiles, axis); repeats came with opset 6. */
static void p_tile(Ctx *c)
{
	if (c->L->opset >= 6)
		return;
	int rep = onnx_legacy_tile(c->L, c->ni, c->in[0], c->in[1], c->in[2]);
	c->bad |= rep < 0;
	c->in[1] = rep;
	c->nin = 2;
}

/* ---- shape arithmetic ---- */

/* Cast-1 names the type: "FLOAT", "INT64", ... (TensorProto.DataType,
 * whose value is the index here). */
static int type_by_name(const char *s)
{
	static const char *const names[] = {
		"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64", "STRING",
		"BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16"};
	for (int t = 1; t < (int)(sizeof names / sizeof names[0]); t++)
		if (!strcmp(s, names[t]))
			return t;
	return -1;
}

static void p_cast1(Ctx *c)
{
	char buf[32];
	const char *s = get_string(c, "to", buf, sizeof buf, NULL);
	int t = s ? type_by_name(s) : -1;
	if (!s && !c->bad)
		err(c, "attribute 'to' is required");
	else if (s && t < 0)
		err(c, "attribute 'to' = '%s' is not a TensorProto data type name (FLOAT, INT64, ...)", s);
	if (t < 0)
		return;
	c->a->cast.to = onnx_dtype(c->L, c->ni, "attribute 'to'", t);
	c->bad |= c->a->cast.to == DT_UNDEF;
}

static void p_cast(Ctx *c)
{
	if (c->L->opset < 6) {
		p_cast1(c);
		return;
	}
	const Onnx__AttributeProto *at = find(c, "to", T(INT));
	if (!at) {
		if (!c->bad)
			err(c, "attribute 'to' is required");
		return;
	}
	DType dt = onnx_dtype(c->L, c->ni, "attribute 'to'", at->i < INT_MIN || at->i > INT_MAX ? -1 : (int)at->i);
	c->bad |= dt == DT_UNDEF;
	c->a->cast.to = dt;
}

static void p_constofshape(Ctx *c)
{
	const Onnx__AttributeProto *at = find(c, "value", T(TENSOR));
	c->a->cast.to = DT_F32;
	if (!at || !at->t)
		return;
	int id = onnx_tensor_const(c->L, c->ni, const_name(c, "value"), at->t);
	if (id < 0) {
		c->bad = 1;
		return;
	}
	const Tensor *t = &c->L->g->tensor[id];
	if (ir_numel(t) != 1) {
		err(c, "attribute 'value' must hold one value, it holds %lld", (long long)ir_numel(t));
		return;
	}
	c->a->cast.to = t->dtype;
	c->a->cast.value = ir_get(t, 0);
}

/* Opset 15 slicing of the shape; clamping to +-(IR_MAXRANK+1) keeps the
 * meaning (ONNX clamps to [0, rank] anyway) and fits an int. */
static void p_shape(Ctx *c)
{
	if (c->L->opset < 15)
		return;
	const int64_t lim = IR_MAXRANK + 1;
	int64_t s = get_int(c, "start", 0, INT64_MIN, INT64_MAX);
	const Onnx__AttributeProto *e = find(c, "end", T(INT));
	c->a->shape.start = (int)(s < -lim ? -lim : s > lim ? lim : s);
	c->a->shape.has_end = e != NULL;
	if (e)
		c->a->shape.end = (int)(e->i < -lim ? -lim : e->i > lim ? lim : e->i);
}

/* ---- math, logic and bit ops ---- */

static void p_thresholdedrelu(Ctx *c)
{
	c->a->ab.alpha = get_float(c, "alpha", 1.0f);
}

static void p_shrink(Ctx *c)
{
	c->a->ab.alpha = get_float(c, "lambd", 0.5f);
	c->a->ab.beta = get_float(c, "bias", 0.0f);
}

static void p_celu(Ctx *c)
{
	c->a->ab.alpha = get_float(c, "alpha", 1.0f);
}

static void p_isinf(Ctx *c)
{
	c->a->isinf.pos = get_bool(c, "detect_positive", 1);
	c->a->isinf.neg = get_bool(c, "detect_negative", 1);
}

static void p_mod(Ctx *c)
{
	c->a->mod.fmod = get_bool(c, "fmod", 0);
}

static void p_bitshift(Ctx *c)
{
	char buf[16];
	const char *s = get_string(c, "direction", buf, sizeof buf, NULL);
	if (!s && !c->bad)
		err(c, "attribute 'direction' is required");
	else if (s && strcmp(s, "LEFT") && strcmp(s, "RIGHT"))
		err(c, "attribute 'direction' = '%s' is not LEFT or RIGHT", s);
	c->a->shift.left = s && !strcmp(s, "LEFT");
}

/* select_last_index came with opset 12. */
static void p_argext(Ctx *c)
{
	c->a->arg.axis = axis_attr(c, "axis", 0, IR_MAXRANK - 1);
	c->a->arg.keepdims = get_flag(c, "keepdims", 1);
	if (c->L->opset >= 12)
		c->a->arg.last = get_flag(c, "select_last_index", 0);
}

static void p_cumsum(Ctx *c)
{
	c->a->cumsum.exclusive = get_bool(c, "exclusive", 0);
	c->a->cumsum.reverse = get_bool(c, "reverse", 0);
}

/* ---- structural ops ---- */

/* Split-1 takes split as an input or an attribute, Split-2 and -11 as an
 * attribute, Split-13 as an input. */
static void p_split(Ctx *c)
{
	c->a->axis.axis = axis_attr(c, "axis", 0, IR_MAXRANK - 1);
	if (c->L->opset >= 13)
		return;
	const Onnx__AttributeProto *at = find(c, "split", T(INTS));
	if (!at)
		return;
	if (c->nin > 1 && c->in[1] >= 0) {
		err(c, "split is given both as an input and as an attribute");
		return;
	}
	c->nin = 1;
	append(c, onnx_const_i64(c->L, const_name(c, "split"), at->ints, (int)at->n_ints));
}

static int required_int(Ctx *c, const char *name, int64_t lo)
{
	if (!present(c, name)) {
		err(c, "attribute '%s' is required", name);
		return 0;
	}
	return (int)get_int(c, name, lo, lo, INT_MAX);
}

/* DepthToSpace's mode came with opset 11 (before: DCR). */
static void p_depthspace(Ctx *c)
{
	char buf[8];
	c->a->d2s.block = required_int(c, "blocksize", 1);
	if (c->op != OP_DEPTHTOSPACE || c->L->opset < 11)
		return;
	const char *m = get_string(c, "mode", buf, sizeof buf, "DCR");
	c->a->d2s.crd = !strcmp(m, "CRD");
	if (strcmp(m, "CRD") && strcmp(m, "DCR"))
		err(c, "attribute 'mode' = '%s' is not DCR or CRD", m);
}

/* batch_dims came with opset 12. */
static void p_gathernd(Ctx *c)
{
	if (c->L->opset >= 12)
		c->a->norm.batch = (int)get_int(c, "batch_dims", 0, 0, IR_MAXRANK);
}

static void p_onehot(Ctx *c)
{
	c->a->axis.axis = axis_attr(c, "axis", -1, IR_MAXRANK);
}

static void p_trilu(Ctx *c)
{
	c->a->trilu.upper = get_bool(c, "upper", 1);
}

/* A window as Conv's, plus output_padding and output_shape (spatial dims,
 * or all dims of which the spatial ones count). */
static void p_convtranspose(Ctx *c)
{
	Window *w = &c->a->win;
	int64_t v[IR_MAXSP + 2];
	window(c);
	w->group = (int)get_int(c, "group", 1, 1, INT_MAX);
	if (c->bad || w->nsp < 1)
		return;
	spatial(c, "output_padding", w->outpad, w->nsp, 0, 0);
	int n = get_ints(c, "output_shape", v, IR_MAXSP + 2);
	if (n >= 0 && n != w->nsp && n != w->nsp + 2) {
		err(c, "attribute 'output_shape' has %d values, the window needs %d", n, w->nsp);
		return;
	}
	for (int i = 0; n > 0 && i < w->nsp; i++) {
		w->outshape[i] = v[n - w->nsp + i];
		if (w->outshape[i] < 1 || w->outshape[i] > INT32_MAX)
			err(c, "attribute 'output_shape' has a bad value (%lld)", (long long)w->outshape[i]);
	}
}

static void p_instnorm(Ctx *c)
{
	c->a->norm.eps = get_float(c, "epsilon", 1e-5f);
}

/* stash_type sets the precision of the statistics: potc has float only. */
static void p_layernorm(Ctx *c)
{
	c->a->norm.axis = axis_attr(c, "axis", -1, IR_MAXRANK - 1);
	c->a->norm.eps = get_float(c, "epsilon", 1e-5f);
	int64_t st = get_int(c, "stash_type", 1, INT64_MIN, INT64_MAX);
	if (st != 1)
		err(c, "attribute 'stash_type' = %lld is not supported (potc computes the statistics "
		    "in float, stash_type 1)", (long long)st);
}

static void p_lrn(Ctx *c)
{
	c->a->lrn.size = required_int(c, "size", 1);
	c->a->lrn.alpha = get_float(c, "alpha", 1e-4f);
	c->a->lrn.beta = get_float(c, "beta", 0.75f);
	c->a->lrn.bias = get_float(c, "bias", 1.0f);
}

/* Index of s in names[0..n), or -1 after reporting. */
static int pick(Ctx *c, const char *attr, const char *s, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(s, names[i]))
			return i;
	err(c, "attribute '%s' = '%s' is not supported", attr, s);
	return -1;
}

/* Resize-11 attributes (the enums of ir.h list the names in order). */
static void resize11(Ctx *c)
{
	static const char *const coord[] = {"half_pixel", "pytorch_half_pixel", "align_corners",
		"asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"};
	static const char *const near[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
	char buf[32];
	int k = pick(c, "coordinate_transformation_mode",
	             get_string(c, "coordinate_transformation_mode", buf, sizeof buf, "half_pixel"), coord, 6);
	c->a->resize.coord = k < 0 ? RS_HALF_PIXEL : (ResizeCoord)k;
	k = pick(c, "nearest_mode", get_string(c, "nearest_mode", buf, sizeof buf, "round_prefer_floor"), near, 4);
	c->a->resize.nearest = k < 0 ? RS_ROUND_PREFER_FLOOR : (ResizeNearest)k;
	c->a->resize.cubic_a = get_float(c, "cubic_coeff_a", -0.75f);
	c->a->resize.exclude = get_bool(c, "exclude_outside", 0);
	c->a->resize.extrap = get_float(c, "extrapolation_value", 0.0f);
}

/* Inputs into Resize-13's form (x, roi?, scales?, sizes?): Upsample-7's
 * scales attribute, Upsample-9's and Resize-10's (x, scales). */
static void resize_inputs(Ctx *c)
{
	int upsample = c->op == OP_UPSAMPLE, v = c->L->opset;
	if (upsample && v < 9) {
		const Onnx__AttributeProto *at = find(c, "scales", T(FLOATS));
		if (!at) {
			if (!c->bad)
				err(c, "attribute 'scales' is required");
			return;
		}
		int64_t dim = (int64_t)at->n_floats;
		c->in[c->nin++] = -1;
		append(c, ir_const_new(c->L->g, const_name(c, "scales"), DT_F32, 1, &dim, at->floats));
		return;
	}
	if ((upsample || v < 11) && c->nin != 2) {
		err(c, "takes 2 inputs (X, scales) at opset %d, it has %d", v, c->nin);
		return;
	}
	if (!upsample && v >= 11 && v < 13 && c->nin < 3) {
		err(c, "takes 3 or 4 inputs (X, roi, scales, sizes) at opset %d, it has %d", v, c->nin);
		return;
	}
	if (upsample || v < 11) {
		c->in[2] = c->in[1];
		c->in[1] = -1;
		c->nin = 3;
	}
}

/* Resize-10, Upsample-7 and -9 sample at x / scale (asymmetric) and round
 * nearest down when enlarging, up when shrinking (onnxruntime). */
static void p_resize(Ctx *c)
{
	static const char *const mode[] = {"nearest", "linear", "cubic"};
	char buf[16];
	int upsample = c->op == OP_UPSAMPLE, v = c->L->opset;
	if (upsample && (v < 7 || v > 9)) {
		err(c, v < 7 ? "Upsample before opset 7 (experimental) is not supported"
		             : "Upsample is deprecated from opset 10 (use Resize)");
		return;
	}
	int k = pick(c, "mode", get_string(c, "mode", buf, sizeof buf, "nearest"), mode,
	             upsample || v < 11 ? 2 : 3);
	c->a->resize.mode = k < 0 ? RS_NEAREST : (ResizeMode)k;
	if (!upsample && v >= 11) {
		resize11(c);
	} else {
		c->a->resize.coord = RS_ASYMMETRIC;
		c->a->resize.nearest = RS_NEAREST_SIMPLE;
		c->a->resize.cubic_a = -0.75f;
	}
	if (!c->bad)
		resize_inputs(c);
}

/* ---- quantization operators ---- */

/* QuantizeLinear, DequantizeLinear: per-axis scales came with opset 13;
 * before, the scale is one value and the axis is never read. */
static void p_qlinear(Ctx *c)
{
	c->a->axis.axis = 1;
	if (c->L->opset >= 13)
		c->a->axis.axis = axis_attr(c, "axis", 1, IR_MAXRANK - 1);
}

/* ---- dispatch ---- */

typedef void (*Parser)(Ctx *);

static const Parser parsers[OP_COUNT] = {
	[OP_CONV] = p_conv, [OP_MAXPOOL] = p_maxpool, [OP_AVGPOOL] = p_avgpool,
	[OP_GEMM] = p_gemm, [OP_SOFTMAX] = p_softmax, [OP_LOGSOFTMAX] = p_softmax,
	[OP_BATCHNORM] = p_batchnorm,
	[OP_REDUCEMEAN] = p_reduce, [OP_REDUCEMAX] = p_reduce, [OP_REDUCEMIN] = p_reduce,
	[OP_REDUCESUM] = p_reduce, [OP_REDUCEPROD] = p_reduce,
	[OP_LEAKYRELU] = p_leakyrelu, [OP_HARDSIGMOID] = p_hardsigmoid, [OP_ELU] = p_elu,
	[OP_SELU] = p_selu, [OP_CLIP] = p_clip, [OP_PRELU] = p_prelu,
	[OP_ADD] = p_binary, [OP_SUB] = p_binary, [OP_MUL] = p_binary, [OP_DIV] = p_binary,
	[OP_POW] = p_binary, [OP_EQUAL] = p_binary, [OP_LESS] = p_binary, [OP_GREATER] = p_binary,
	[OP_MAX] = p_variadic, [OP_MIN] = p_variadic, [OP_SUM] = p_variadic, [OP_MEAN] = p_variadic,
	[OP_TILE] = p_tile,
	[OP_DROPOUT] = p_dropout, [OP_RESHAPE] = p_reshape, [OP_FLATTEN] = p_flatten,
	[OP_SQUEEZE] = p_squeeze, [OP_UNSQUEEZE] = p_squeeze, [OP_TRANSPOSE] = p_transpose,
	[OP_CONCAT] = p_concat, [OP_PAD] = p_pad, [OP_SLICE] = p_slice, [OP_GATHER] = p_gather,
	[OP_SHAPE] = p_shape, [OP_CAST] = p_cast, [OP_CONSTOFSHAPE] = p_constofshape,
	[OP_SPLIT] = p_split, [OP_DEPTHTOSPACE] = p_depthspace, [OP_SPACETODEPTH] = p_depthspace,
	[OP_GATHERELEM] = p_gather, [OP_GATHERND] = p_gathernd, [OP_ONEHOT] = p_onehot,
	[OP_TRILU] = p_trilu, [OP_CONVTRANSPOSE] = p_convtranspose, [OP_INSTNORM] = p_instnorm,
	[OP_LAYERNORM] = p_layernorm, [OP_LRN] = p_lrn, [OP_RESIZE] = p_resize, [OP_UPSAMPLE] = p_resize,
	[OP_THRESHOLDEDRELU] = p_thresholdedrelu, [OP_SHRINK] = p_shrink, [OP_CELU] = p_celu,
	[OP_ISINF] = p_isinf, [OP_HARDMAX] = p_softmax,
	[OP_AND] = p_binary, [OP_OR] = p_binary, [OP_XOR] = p_binary,
	[OP_MOD] = p_mod, [OP_BITSHIFT] = p_bitshift,
	[OP_REDUCEL1] = p_reduce, [OP_REDUCEL2] = p_reduce, [OP_REDUCESUMSQ] = p_reduce,
	[OP_REDUCELOGSUM] = p_reduce, [OP_REDUCELOGSUMEXP] = p_reduce,
	[OP_ARGMAX] = p_argext, [OP_ARGMIN] = p_argext, [OP_CUMSUM] = p_cumsum,
	[OP_QUANTIZE] = p_qlinear, [OP_DEQUANTIZE] = p_qlinear,
	[OP_QLINEARCONV] = p_conv, [OP_CONVINTEGER] = p_conv,
};

/* ONNX input counts {min, max} in the input form; max -1: any number.
 * Ops not listed take one input. */
static const struct { signed char lo, hi; } arity[OP_COUNT] = {
	[OP_CONV] = {2, 3}, [OP_GEMM] = {2, 3}, [OP_MATMUL] = {2, 2},
	[OP_BATCHNORM] = {5, 5},
	[OP_REDUCEMEAN] = {1, 2}, [OP_REDUCEMAX] = {1, 2}, [OP_REDUCEMIN] = {1, 2},
	[OP_REDUCESUM] = {1, 2}, [OP_REDUCEPROD] = {1, 2},
	[OP_ADD] = {2, 2}, [OP_SUB] = {2, 2}, [OP_MUL] = {2, 2}, [OP_DIV] = {2, 2},
	[OP_POW] = {2, 2}, [OP_PRELU] = {2, 2},
	[OP_MAX] = {1, -1}, [OP_MIN] = {1, -1}, [OP_SUM] = {1, -1}, [OP_MEAN] = {1, -1},
	[OP_EQUAL] = {2, 2}, [OP_LESS] = {2, 2}, [OP_GREATER] = {2, 2}, [OP_WHERE] = {3, 3},
	[OP_CLIP] = {1, 3}, [OP_DROPOUT] = {1, 3}, [OP_RESHAPE] = {2, 2},
	[OP_SQUEEZE] = {1, 2}, [OP_UNSQUEEZE] = {2, 2}, [OP_CONCAT] = {1, -1},
	[OP_PAD] = {2, 3}, [OP_SLICE] = {3, 5}, [OP_GATHER] = {2, 2}, [OP_EXPAND] = {2, 2},
	[OP_TILE] = {2, 2}, [OP_RANGE] = {3, 3},
	[OP_SPLIT] = {1, 2}, [OP_GATHERELEM] = {2, 2}, [OP_GATHERND] = {2, 2}, [OP_ONEHOT] = {3, 3},
	[OP_TRILU] = {1, 2}, [OP_CONVTRANSPOSE] = {2, 3}, [OP_INSTNORM] = {3, 3},
	[OP_LAYERNORM] = {2, 3}, [OP_RESIZE] = {1, 4}, [OP_UPSAMPLE] = {1, 2},
	[OP_AND] = {2, 2}, [OP_OR] = {2, 2}, [OP_XOR] = {2, 2}, [OP_GREATEREQ] = {2, 2},
	[OP_LESSEQ] = {2, 2}, [OP_MOD] = {2, 2}, [OP_BITSHIFT] = {2, 2}, [OP_CUMSUM] = {2, 2},
	[OP_REDUCEL1] = {1, 2}, [OP_REDUCEL2] = {1, 2}, [OP_REDUCESUMSQ] = {1, 2},
	[OP_REDUCELOGSUM] = {1, 2}, [OP_REDUCELOGSUMEXP] = {1, 2},
	[OP_QUANTIZE] = {2, 3}, [OP_DEQUANTIZE] = {2, 3}, [OP_QLINEARCONV] = {8, 9},
	[OP_QLINEARMATMUL] = {8, 8}, [OP_CONVINTEGER] = {2, 4}, [OP_MATMULINTEGER] = {2, 4},
};

/* Does this opset give op the attribute form (one data input)? */
static int attr_form(Op op, int opset)
{
	switch (op) {
	case OP_RESHAPE: return opset < 5;
	case OP_SLICE: return opset < 10;
	case OP_PAD: case OP_CLIP: return opset < 11;
	case OP_DROPOUT: return opset < 12;
	case OP_SPLIT: return opset >= 2 && opset < 13;
	case OP_UPSAMPLE: return opset < 9;
	case OP_SQUEEZE: case OP_UNSQUEEZE: case OP_REDUCESUM: return opset < 13;
	case OP_REDUCEMEAN: case OP_REDUCEMAX: case OP_REDUCEMIN: case OP_REDUCEPROD: return opset < 18;
	case OP_REDUCEL1: case OP_REDUCEL2: case OP_REDUCESUMSQ: case OP_REDUCELOGSUM:
	case OP_REDUCELOGSUMEXP: return opset < 18;
	default: return 0;
	}
}

/* Input count and required inputs, before any normalisation. */
static int check_arity(Ctx *c)
{
	int lo = arity[c->op].lo ? arity[c->op].lo : 1;
	int hi = arity[c->op].lo ? arity[c->op].hi : 1;
	if (attr_form(c->op, c->L->opset))
		lo = hi = 1;
	if ((c->op == OP_GEMM && c->L->opset < 11) || (c->op == OP_TILE && c->L->opset < 6))
		lo = hi = 3;  /* Gemm's C was required; Tile-1 (input, tiles, axis) */
	if (c->nin < lo || (hi >= 0 && c->nin > hi)) {
		char range[32];
		snprintf(range, sizeof range, hi < 0 ? "at least %d" : lo == hi ? "%d" : "%d to %d", lo, hi);
		onnx_err(c->L, c->ni, "takes %s input%s at opset %d, it has %d", range,
		         hi == 1 ? "" : "s", c->L->opset, c->nin);
		return 1;
	}
	for (int j = 0; j < c->nin; j++)
		if (c->in[j] < 0 && (j < lo || hi < 0)) {
			onnx_err(c->L, c->ni, "input %d is required but empty", j);
			return 1;
		}
	return 0;
}

static int check_names(Ctx *c)
{
	const Onnx__NodeProto *np = c->np;
	if (np->n_attribute > MAX_ATTRS) {
		onnx_err(c->L, c->ni, "has %zu attributes; no ONNX op has that many", np->n_attribute);
		return 1;
	}
	for (size_t i = 0; i < np->n_attribute; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp(onnx_str(np->attribute[i]->name), onnx_str(np->attribute[j]->name))) {
				onnx_err(c->L, c->ni, "attribute '%s' is given twice", onnx_str(np->attribute[i]->name));
				return 1;
			}
	return 0;
}

/* Opset each op first appears in (0: opset 1). */
static const signed char since[OP_COUNT] = {
	[OP_EXPAND] = 8, [OP_WHERE] = 9, [OP_ERF] = 9, [OP_CONSTOFSHAPE] = 9, [OP_RANGE] = 11,
	[OP_HARDSWISH] = 14,
	[OP_ONEHOT] = 9, [OP_RESIZE] = 10, [OP_GATHERELEM] = 11, [OP_GATHERND] = 11, [OP_TRILU] = 14,
	[OP_LAYERNORM] = 17,
	[OP_SIN] = 7, [OP_COS] = 7, [OP_TAN] = 7, [OP_ASIN] = 7, [OP_ACOS] = 7, [OP_ATAN] = 7,
	[OP_SINH] = 9, [OP_COSH] = 9, [OP_ASINH] = 9, [OP_ACOSH] = 9, [OP_ATANH] = 9,
	[OP_SIGN] = 9, [OP_ISNAN] = 9, [OP_SHRINK] = 9, [OP_ISINF] = 10, [OP_THRESHOLDEDRELU] = 10,
	[OP_MOD] = 10, [OP_ROUND] = 11, [OP_BITSHIFT] = 11, [OP_CUMSUM] = 11, [OP_CELU] = 12,
	[OP_GREATEREQ] = 12, [OP_LESSEQ] = 12,
	[OP_QUANTIZE] = 10, [OP_DEQUANTIZE] = 10, [OP_QLINEARCONV] = 10, [OP_QLINEARMATMUL] = 10,
	[OP_CONVINTEGER] = 10, [OP_MATMULINTEGER] = 10,
};

static int check_since(Ctx *c)
{
	if (c->L->opset >= since[c->op])
		return 0;
	onnx_err(c->L, c->ni, "op %s does not exist at opset %d (it came with opset %d)",
	         ir_opname[c->op], c->L->opset, since[c->op]);
	return 1;
}

/* Opset before which op had the no-op attribute consumed_inputs. */
static const signed char consumed_until[OP_COUNT] = {
	[OP_BATCHNORM] = 6, [OP_ADD] = 6, [OP_SUB] = 6, [OP_MUL] = 6, [OP_DIV] = 6,
	[OP_MAX] = 6, [OP_MIN] = 6, [OP_SUM] = 6, [OP_MEAN] = 6, [OP_PRELU] = 6, [OP_RELU] = 6,
	[OP_LEAKYRELU] = 6, [OP_CLIP] = 6, [OP_SIGMOID] = 6, [OP_HARDSIGMOID] = 6, [OP_TANH] = 6,
	[OP_EXP] = 6, [OP_LOG] = 6, [OP_SQRT] = 6, [OP_NEG] = 6, [OP_ABS] = 6, [OP_RECIPROCAL] = 6,
	[OP_FLOOR] = 6, [OP_CEIL] = 6, [OP_ELU] = 6, [OP_SELU] = 6, [OP_DROPOUT] = 6,
	[OP_RESHAPE] = 5, [OP_INSTNORM] = 6,
};

static void check_unread(Ctx *c)
{
	if (c->L->opset < consumed_until[c->op])
		skip(c, "consumed_inputs");  /* in-place hints for a Caffe2 runtime */
	for (size_t i = 0; i < c->np->n_attribute; i++)
		if (!c->used[i]) {
			onnx_err(c->L, c->ni, "attribute '%s' is not supported at opset %d",
			         onnx_str(c->np->attribute[i]->name), c->L->opset);
			c->bad = 1;
		}
}

int onnx_node_attrs(Loader *L, int ni, Op op, Attr *a, int *in, int nin)
{
	Ctx c = {.L = L, .ni = ni, .np = L->gp->node[ni], .op = op, .a = a, .in = in, .nin = nin};
	if (check_names(&c) || check_since(&c) || check_arity(&c))
		return -1;
	if (parsers[op])
		parsers[op](&c);
	if (!c.bad)
		check_unread(&c);
	return c.bad ? -1 : c.nin;
}
