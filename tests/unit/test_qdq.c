/* pass_qdq on hand-built pre-quantized graphs (QDQ and QOperator forms):
 * the structure left behind, and every preset Quant and dequantized
 * constant against the values the test put into the model (scales read
 * as the f32 constants they are, products and dequantized values worked
 * out here in double). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ir.h"
#include "passes.h"

#include "irtest.h"

static QuantConfig cfg = {.mode = QM_AFFINE, .wbits = 8, .abits = 8};

/* ---- graph building ---- */

static int *grow1(int *v, int n, int x)
{
	int *w = arena_alloc(arena, sizeof(int) * (size_t)(n + 1));
	if (n)
		memcpy(w, v, sizeof(int) * (size_t)n);
	w[n] = x;
	return w;
}

static int input(const char *name, DType dt, int rank, const int64_t *dim)
{
	int t = ir_tensor_new(g, name, dt, rank, dim);
	g->tensor[t].kind = TK_INPUT;
	g->input = grow1(g->input, g->ninput++, t);
	return t;
}

static void output(int t)
{
	g->output = grow1(g->output, g->noutput++, t);
	g->tensor[t].is_output = 1;
}

static int cst(const char *name, DType dt, int rank, const int64_t *dim, const void *v)
{
	return ir_const_new(g, name, dt, rank, dim, v);
}

static int f32s(const char *name, float v)
{
	return cst(name, DT_F32, 0, NULL, &v);
}

static int u8s(const char *name, uint8_t v)
{
	return cst(name, DT_U8, 0, NULL, &v);
}

static int value(const char *name)
{
	return ir_tensor_new(g, name, DT_UNDEF, 0, NULL);
}

/* A node with one output; returns its index. */
static int node(Op op, const char *name, int nin, const int *in, int out)
{
	return ir_node_new(g, op, name, nin, in, 1, &out);
}
#define NODE(op, name, out, ...) node(op, name, NARGS(__VA_ARGS__), INS(__VA_ARGS__), out)

/* Q/DQ with the frontend's default axis 1 unless set. */
static int qdq_node(Op op, const char *name, int axis, int nin, const int *in, int out)
{
	int n = node(op, name, nin, in, out);
	g->node[n].a.axis.axis = axis;
	return n;
}
#define QDQ(op, name, axis, out, ...) qdq_node(op, name, axis, NARGS(__VA_ARGS__), INS(__VA_ARGS__), out)

/* 2-D window kh x kw, stride 1, no pads. */
static void window(int n, int kh, int kw)
{
	Window *w = &g->node[n].a.win;
	w->nsp = 2;
	w->k[0] = kh, w->k[1] = kw;
	w->s[0] = w->s[1] = w->d[0] = w->d[1] = 1;
	w->group = 1;
}

static int run_passes(void)
{
	g->qcfg = &cfg;
	if (pass_fold(g, &diag) || ir_verify(g, &diag))
		return 1;
	return pass_qdq(g, &diag) || ir_verify(g, &diag);
}

/* ---- checks ---- */

static int live_ops(Op *ops, int max)
{
	int k = 0;
	for (int i = 0; i < g->nnode; i++)
		if (!g->node[i].dead && k < max)
			ops[k++] = g->node[i].op;
	return k;
}

static void expect_ops(int n, const Op *want)
{
	Op got[16];
	int k = live_ops(got, 16);
	assert_int_equal(k, n);
	for (int i = 0; i < n; i++)
		if (got[i] != want[i])
			fail_msg("node %d is %s, want %s", i, ir_opname[got[i]], ir_opname[want[i]]);
}
#define EXPECT_OPS(...) expect_ops(NARGS(__VA_ARGS__), (const Op[]){__VA_ARGS__})

/* t's preset Quant: bits, signedness, axis, and per channel the scale and
 * zero point (scale compared exactly: both sides are the same doubles). */
static void expect_quant(int t, int bits, int is_unsigned, int axis, int nch, const double *scale,
                         const int32_t *zp)
{
	const Quant *q = g->tensor[t].q;
	if (!q)
		fail_msg("tensor \"%s\" has no Quant", g->tensor[t].name);
	assert_int_equal(q->bits, bits);
	assert_int_equal(q->is_unsigned, is_unsigned);
	assert_int_equal(q->nch, nch);
	if (nch > 1)
		assert_int_equal(q->axis, axis);
	for (int c = 0; c < nch; c++) {
		if (q->scale[c] != scale[c])
			fail_msg("\"%s\" channel %d: scale %.17g, want %.17g", g->tensor[t].name, c,
			         q->scale[c], scale[c]);
		assert_int_equal(q->zp[c], zp[c]);
	}
}
#define D(...) ((const double[]){__VA_ARGS__})
#define Z(...) ((const int32_t[]){__VA_ARGS__})

static void expect_floats(int t, int n, const double *want)
{
	const Tensor *x = &g->tensor[t];
	assert_int_equal(x->kind, TK_CONST);
	assert_int_equal(x->dtype, DT_F32);
	assert_int_equal(ir_numel(x), n);
	for (int i = 0; i < n; i++)
		if (((const float *)x->data)[i] != (float)want[i])
			fail_msg("\"%s\"[%d] = %.9g, want %.9g", x->name, i, ((const float *)x->data)[i],
			         (float)want[i]);
}

static const Node *live_node(int k)
{
	for (int i = 0; i < g->nnode; i++)
		if (!g->node[i].dead && k-- == 0)
			return &g->node[i];
	fail_msg("no live node %d", k);
	return NULL;
}

/* ---- QDQ ---- */

/* x -> Q -> DQ -> Conv(DQ(w int8 per channel), DQ(b int32)) -> Q -> DQ -> y:
 * one Conv on x, weights and bias float constants with the model's
 * quantization, y the Conv's output under its own name. */
static void test_qdq_conv(void **state)
{
	(void)state;
	const float sx = 0.05f, sy = 0.2f;
	const float sw[3] = {0.5f, 0.25f, 0.125f};   /* powers of two: frac 1, 2, 3 */
	const float sb[3] = {0.025f, 0.0125f, 0.00625f};
	const int8_t w[6] = {1, -2, 3, 4, -128, 127};
	const int32_t b[3] = {100, -7, 3};
	int x = input("x", DT_F32, 4, DIMS(1, 2, 4, 4));
	int csx = f32s("sx", sx), czx = u8s("zx", 10), csy = f32s("sy", sy), czy = u8s("zy", 128);
	int cw = cst("w", DT_I8, 4, DIMS(3, 2, 1, 1), w);
	int csw = cst("sw", DT_F32, 1, DIMS(3), sw);
	int czw = cst("zw", DT_I8, 1, DIMS(3), (const int8_t[]){0, 0, 0});
	int cb = cst("b", DT_I32, 1, DIMS(3), b), csb = cst("sb", DT_F32, 1, DIMS(3), sb);
	int xq = value("xq"), xd = value("xd"), wd = value("wd"), bd = value("bd");
	int c = value("c"), cq = value("cq"), y = value("y");
	QDQ(OP_QUANTIZE, "qx", 1, xq, x, csx, czx);
	QDQ(OP_DEQUANTIZE, "dqx", 1, xd, xq, csx, czx);
	QDQ(OP_DEQUANTIZE, "dqw", 0, wd, cw, csw, czw);
	QDQ(OP_DEQUANTIZE, "dqb", 0, bd, cb, csb);
	window(NODE(OP_CONV, "conv", c, xd, wd, bd), 1, 1);
	QDQ(OP_QUANTIZE, "qc", 1, cq, c, csy, czy);
	QDQ(OP_DEQUANTIZE, "dqc", 1, y, cq, csy, czy);
	output(y);
	assert_int_equal(run_passes(), 0);

	EXPECT_OPS(OP_CONV);
	const Node *n = live_node(0);
	int xi = n->in[0], wi = n->in[1], bi = n->in[2], yo = n->out[0];
	assert_int_equal(g->tensor[xi].kind, TK_INPUT);
	assert_int_equal(g->input[0], xi);
	expect_quant(xi, 8, 1, -1, 1, D(sx), Z(10));
	assert_null(g->tensor[xi].q->frac);               /* 0.05 is no power of two */
	double ws[6];
	for (int i = 0; i < 6; i++)
		ws[i] = w[i] * (double)sw[i / 2];
	expect_floats(wi, 6, ws);
	expect_quant(wi, 8, 0, 0, 3, D(sw[0], sw[1], sw[2]), Z(0, 0, 0));
	assert_non_null(g->tensor[wi].q->frac);
	assert_int_equal(g->tensor[wi].q->frac[0], 1);
	assert_int_equal(g->tensor[wi].q->frac[1], 2);
	assert_int_equal(g->tensor[wi].q->frac[2], 3);
	expect_floats(bi, 3, D(b[0] * (double)sb[0], b[1] * (double)sb[1], b[2] * (double)sb[2]));
	expect_quant(bi, 32, 0, 0, 3, D(sb[0], sb[1], sb[2]), Z(0, 0, 0));
	assert_int_equal(g->noutput, 1);
	assert_int_equal(g->output[0], yo);
	assert_string_equal(g->tensor[yo].name, "y");
	assert_int_equal(g->tensor[yo].dtype, DT_F32);
	expect_quant(yo, 8, 1, -1, 1, D(sy), Z(128));
}

/* A DequantizeLinear that reads the integers with other parameters than
 * the QuantizeLinear made them with: the Q's parameters win. */
static void test_qdq_mismatch(void **state)
{
	(void)state;
	int x = input("x", DT_F32, 2, DIMS(2, 3));
	int s1 = f32s("s1", 0.1f), z1 = cst("z1", DT_I8, 0, NULL, (const int8_t[]){-3});
	int s2 = f32s("s2", 0.3f), z2 = cst("z2", DT_I8, 0, NULL, (const int8_t[]){4});
	int xq = value("xq"), xd = value("xd"), y = value("y");
	QDQ(OP_QUANTIZE, "q", 1, xq, x, s1, z1);
	QDQ(OP_DEQUANTIZE, "dq", 1, xd, xq, s2, z2);
	NODE(OP_RELU, "relu", y, xd);
	output(y);
	assert_int_equal(run_passes(), 0);
	EXPECT_OPS(OP_RELU);
	assert_int_equal(live_node(0)->in[0], g->input[0]);
	expect_quant(g->input[0], 8, 0, -1, 1, D(0.1f), Z(-3));
	assert_null(g->tensor[g->output[0]].q);          /* left to calibration */
}

/* x quantized twice with different scales: the second QuantizeLinear
 * becomes a bound-less Clip whose output carries its Quant (a
 * requantization pass_qlower can compute). */
static void test_qdq_requantize(void **state)
{
	(void)state;
	int x = input("x", DT_F32, 1, DIMS(4));
	int s1 = f32s("s1", 0.5f), s2 = f32s("s2", 0.03f), z = u8s("z", 7);
	int q1 = value("q1"), d1 = value("d1"), q2 = value("q2"), d2 = value("d2"), y = value("y");
	QDQ(OP_QUANTIZE, "qa", 1, q1, x, s1, z);
	QDQ(OP_DEQUANTIZE, "da", 1, d1, q1, s1, z);
	QDQ(OP_QUANTIZE, "qb", 1, q2, x, s2, z);
	QDQ(OP_DEQUANTIZE, "db", 1, d2, q2, s2, z);
	NODE(OP_ADD, "add", y, d1, d2);
	output(y);
	assert_int_equal(run_passes(), 0);
	EXPECT_OPS(OP_CLIP, OP_ADD);
	const Node *clip = live_node(0), *add = live_node(1);
	int xi = g->input[0];
	assert_int_equal(clip->nin, 1);
	assert_int_equal(clip->in[0], xi);
	expect_quant(xi, 8, 1, -1, 1, D(0.5), Z(7));
	assert_null(g->tensor[xi].q->frac);              /* 0.5 = 2^-1, but zp 7 */
	expect_quant(clip->out[0], 8, 1, -1, 1, D(0.03f), Z(7));
	assert_int_equal(add->in[0], xi);
	assert_int_equal(add->in[1], clip->out[0]);
}

/* ---- QOperator ---- */

/* uint8 graph input -> QLinearConv (per-channel uint8 weights with zero
 * points, int32 bias, int8 output) -> Reshape on int8 -> QLinearMatMul
 * (constant int8 B) -> uint8 graph output. */
static void test_qop_conv_matmul(void **state)
{
	(void)state;
	const float sx = 0.02f, sy = 0.07f, sb = 0.01f, sy2 = 0.3f;
	const float sw[2] = {0.04f, 0.003f};
	const uint8_t w[8] = {0, 3, 255, 9, 5, 5, 6, 200};
	const uint8_t zw[2] = {3, 5};
	const int32_t b[2] = {-40, 1000};
	int8_t B[24];
	for (int i = 0; i < 24; i++)
		B[i] = (int8_t)(i * 11 - 120);
	int x = input("x", DT_U8, 4, DIMS(1, 1, 3, 3));
	int csx = f32s("sx", sx), czx = u8s("zx", 12);
	int cw = cst("w", DT_U8, 4, DIMS(2, 1, 2, 2), w), csw = cst("sw", DT_F32, 1, DIMS(2), sw);
	int czw = cst("zw", DT_U8, 1, DIMS(2), zw), cb = cst("b", DT_I32, 1, DIMS(2), b);
	int csy = f32s("sy", sy), czy = cst("zy", DT_I8, 0, NULL, (const int8_t[]){-5});
	int shape = cst("shape", DT_I64, 1, DIMS(2), I64(1, 8));
	int cB = cst("B", DT_I8, 2, DIMS(8, 3), B), csb = f32s("sb", sb);
	int czb = cst("zb", DT_I8, 0, NULL, (const int8_t[]){2});
	int csy2 = f32s("sy2", sy2), czy2 = u8s("zy2", 128);
	int c = value("c"), f = value("f"), yq = value("yq");
	window(NODE(OP_QLINEARCONV, "conv", c, x, csx, czx, cw, csw, czw, csy, czy, cb), 2, 2);
	NODE(OP_RESHAPE, "flat", f, c, shape);
	NODE(OP_QLINEARMATMUL, "fc", yq, f, csy, czy, cB, csb, czb, csy2, czy2);
	output(yq);
	assert_int_equal(run_passes(), 0);

	EXPECT_OPS(OP_CONV, OP_RESHAPE, OP_MATMUL);
	const Node *conv = live_node(0), *flat = live_node(1), *fc = live_node(2);
	int xi = conv->in[0];
	assert_int_equal(xi, g->input[0]);
	assert_int_equal(g->tensor[xi].dtype, DT_U8);     /* an integer input stays */
	expect_quant(xi, 8, 1, -1, 1, D(sx), Z(12));
	double ws[8];
	for (int i = 0; i < 8; i++)
		ws[i] = (w[i] - zw[i / 4]) * (double)sw[i / 4];
	expect_floats(conv->in[1], 8, ws);
	expect_quant(conv->in[1], 8, 1, 0, 2, D(sw[0], sw[1]), Z(3, 5));
	double bs[2] = {(double)sx * sw[0], (double)sx * sw[1]};
	expect_floats(conv->in[2], 2, D(b[0] * bs[0], b[1] * bs[1]));
	expect_quant(conv->in[2], 32, 0, 0, 2, bs, Z(0, 0));
	int co = conv->out[0];
	assert_int_equal(g->tensor[co].dtype, DT_F32);
	expect_quant(co, 8, 0, -1, 1, D(sy), Z(-5));
	assert_int_equal(flat->in[0], co);
	assert_int_equal(g->tensor[flat->out[0]].dtype, DT_F32);
	expect_quant(flat->out[0], 8, 0, -1, 1, D(sy), Z(-5));
	assert_int_equal(fc->in[0], flat->out[0]);
	double Bs[24];
	for (int i = 0; i < 24; i++)
		Bs[i] = (B[i] - 2) * (double)sb;
	expect_floats(fc->in[1], 24, Bs);
	expect_quant(fc->in[1], 8, 0, -1, 1, D(sb), Z(2));
	int yo = fc->out[0];
	assert_int_equal(g->output[0], yo);
	assert_string_equal(g->tensor[yo].name, "yq");
	assert_int_equal(g->tensor[yo].dtype, DT_F32);
	expect_quant(yo, 8, 1, -1, 1, D(sy2), Z(128));
}

/* ConvInteger -> Cast(float) -> Mul: a float Conv whose output is the
 * int32 sum itself (scale 1, zp 0, frac 0); the Cast goes. */
static void test_convinteger(void **state)
{
	(void)state;
	const int8_t w[4] = {1, -1, 2, 7};
	int x = input("x", DT_I8, 4, DIMS(1, 1, 2, 2));
	int cw = cst("w", DT_I8, 4, DIMS(1, 1, 2, 2), w);
	int czx = cst("zx", DT_I8, 0, NULL, (const int8_t[]){-2});
	int czw = cst("zw", DT_I8, 0, NULL, (const int8_t[]){1});
	int k = f32s("k", 0.001f);
	int yi = value("yi"), yf = value("yf"), y = value("y");
	window(NODE(OP_CONVINTEGER, "conv", yi, x, cw, czx, czw), 2, 2);
	g->node[NODE(OP_CAST, "cast", yf, yi)].a.cast.to = DT_F32;
	NODE(OP_MUL, "scale", y, yf, k);
	output(y);
	assert_int_equal(run_passes(), 0);
	EXPECT_OPS(OP_CONV, OP_MUL);
	const Node *conv = live_node(0), *mul = live_node(1);
	assert_int_equal(conv->nin, 2);
	expect_quant(conv->in[0], 8, 0, -1, 1, D(1), Z(-2));
	expect_floats(conv->in[1], 4, D(0, -2, 1, 6));
	expect_quant(conv->in[1], 8, 0, -1, 1, D(1), Z(1));
	int co = conv->out[0];
	expect_quant(co, 32, 0, -1, 1, D(1), Z(0));
	assert_non_null(g->tensor[co].q->frac);
	assert_int_equal(g->tensor[co].q->frac[0], 0);
	assert_int_equal(mul->in[0], co);
}

/* MatMulInteger -> DequantizeLinear(sum, s): the sum scaled for real,
 * a Mul by s (the sum's own Quant stays scale 1). */
static void test_matmulinteger_dequantize(void **state)
{
	(void)state;
	int a = input("a", DT_U8, 2, DIMS(1, 3));
	int cb = cst("b", DT_I8, 2, DIMS(3, 2), (const int8_t[]){1, 2, 3, 4, 5, 6});
	int za = u8s("za", 100), s = cst("s", DT_F32, 1, DIMS(1), F32(0.0625f));
	int yi = value("yi"), y = value("y");
	NODE(OP_MATMULINTEGER, "mm", yi, a, cb, za);
	QDQ(OP_DEQUANTIZE, "dq", 1, y, yi, s);
	output(y);
	assert_int_equal(run_passes(), 0);
	EXPECT_OPS(OP_MATMUL, OP_MUL);
	const Node *mm = live_node(0), *mul = live_node(1);
	expect_quant(mm->in[0], 8, 1, -1, 1, D(1), Z(100));
	expect_floats(mm->in[1], 6, D(1, 2, 3, 4, 5, 6));
	expect_quant(mm->out[0], 32, 0, -1, 1, D(1), Z(0));
	assert_int_equal(mul->in[0], mm->out[0]);
	expect_floats(mul->in[1], 1, D(0.0625));
	assert_int_equal(g->tensor[mul->in[1]].rank, 0);
	assert_int_equal(g->output[0], mul->out[0]);
	assert_null(g->tensor[mul->out[0]].q);
}

/* ---- what it refuses ---- */

static void expect_error(const char *part)
{
	g->qcfg = &cfg;
	assert_int_equal(pass_fold(g, &diag), 0);
	assert_int_not_equal(pass_qdq(g, &diag), 0);
	if (!strstr(diag.last, part))
		fail_msg("error \"%s\" does not say \"%s\"", diag.last, part);
}

static void test_refuse_runtime_scale(void **state)
{
	(void)state;
	int x = input("x", DT_F32, 1, DIMS(4)), s = input("s", DT_F32, 0, NULL);
	int xq = value("xq"), y = value("y");
	QDQ(OP_QUANTIZE, "q", 1, xq, x, s, u8s("z", 0));
	QDQ(OP_DEQUANTIZE, "dq", 1, y, xq, s);
	output(y);
	expect_error("scale or zero point \"s\" is not a constant");
}

static void test_refuse_integer_arithmetic(void **state)
{
	(void)state;
	int x = input("x", DT_F32, 1, DIMS(4)), s = f32s("s", 0.1f), z = u8s("z", 0);
	int xq = value("xq"), y = value("y");
	QDQ(OP_QUANTIZE, "q", 1, xq, x, s, z);
	NODE(OP_ADD, "add", y, xq, xq);
	output(y);
	expect_error("Add reads the quantized tensor \"xq\" as integers");
}

static void test_refuse_per_channel_activation(void **state)
{
	(void)state;
	int x = input("x", DT_F32, 2, DIMS(2, 3));
	int s = cst("s", DT_F32, 1, DIMS(3), F32(0.1f, 0.2f, 0.3f));
	int z = cst("z", DT_U8, 1, DIMS(3), U8(0, 0, 0));
	int xq = value("xq"), y = value("y");
	QDQ(OP_QUANTIZE, "q", 1, xq, x, s, z);
	QDQ(OP_DEQUANTIZE, "dq", 1, y, xq, s, z);
	output(y);
	expect_error("potc quantizes activations per tensor");
}

/* A float compilation: the pass leaves everything alone. */
static void test_float_untouched(void **state)
{
	(void)state;
	int x = input("x", DT_F32, 1, DIMS(4)), s = f32s("s", 0.1f), z = u8s("z", 0);
	int xq = value("xq"), y = value("y");
	QDQ(OP_QUANTIZE, "q", 1, xq, x, s, z);
	QDQ(OP_DEQUANTIZE, "dq", 1, y, xq, s, z);
	output(y);
	assert_int_equal(pass_fold(g, &diag), 0);
	assert_int_equal(pass_qdq(g, &diag), 0);
	EXPECT_OPS(OP_QUANTIZE, OP_DEQUANTIZE);
	assert_null(g->tensor[x].q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_qdq_conv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qdq_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qdq_requantize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qop_conv_matmul, setup, teardown),
		cmocka_unit_test_setup_teardown(test_convinteger, setup, teardown),
		cmocka_unit_test_setup_teardown(test_matmulinteger_dequantize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_runtime_scale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_integer_arithmetic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_per_channel_activation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_float_untouched, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
