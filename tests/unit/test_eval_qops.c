/* The ONNX quantization operators in the float reference evaluator
 * (ir/eval_qops.c) and their shape rules (ir/shape_qops.c): small graphs
 * whose expected integers are worked out by hand in the comments or by a
 * plain double loop here.  The C kernels are checked against ONNX's
 * conformance data by tests/conformance/run.py. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ir.h"

#include "irtest.h"

#define I8(...) ((const int8_t[]){__VA_ARGS__})

static int cst(DType dt, int rank, const int64_t *dim, const void *v)
{
	return ir_const_new(g, NULL, dt, rank, dim, v);
}

static int val(void)
{
	return ir_tensor_new(g, NULL, DT_UNDEF, 0, NULL);
}

static int node(Op op, int nin, const int *in, int y)
{
	return ir_node_new(g, op, NULL, nin, in, 1, &y);
}
#define NODE(op, y, ...) node(op, NARGS(__VA_ARGS__), INS(__VA_ARGS__), y)

static void window(int n, int nsp, const int *k, const int *pad)
{
	Window *w = &g->node[n].a.win;
	w->nsp = nsp;
	for (int i = 0; i < nsp; i++) {
		w->k[i] = k[i];
		w->s[i] = w->d[i] = 1;
		w->pad[i] = pad[i];
		w->pad[nsp + i] = pad[nsp + i];
	}
	w->group = 1;
}

/* Infer, then evaluate the graph (all inputs constant) with y its output
 * into buf; 0 on success. */
static int run(int y, void *buf)
{
	if (ir_infer(g, &diag))
		return 1;
	g->output = arena_alloc(arena, sizeof(int));
	g->output[0] = y;
	g->noutput = 1;
	void *outs[1] = {buf};
	return ir_eval(g, NULL, outs, NULL, NULL, &diag);
}

static void expect_i(DType dt, const void *got, const int64_t *want, int n)
{
	for (int i = 0; i < n; i++) {
		int64_t v = dt == DT_U8 ? ((const uint8_t *)got)[i] : dt == DT_I8 ? ((const int8_t *)got)[i]
		                                                    : ((const int32_t *)got)[i];
		if (v != want[i])
			fail_msg("element %d: got %lld, want %lld", i, (long long)v, (long long)want[i]);
	}
}

/* ---- QuantizeLinear, DequantizeLinear ---- */

/* Halves to even after an f32 division, saturation, NaN -> zero point. */
static void test_quantize_rounding(void **state)
{
	(void)state;
	float x[8] = {5.0f, 7.0f, -5.0f, -7.0f, 1000.0f, -1000.0f, NAN, 0.6f};
	int s = cst(DT_F32, 0, NULL, F32(2.0f)), z = cst(DT_I8, 0, NULL, I8(-3));
	int y = val();
	NODE(OP_QUANTIZE, y, cst(DT_F32, 1, DIMS(8), x), s, z);
	int8_t out[8];
	assert_int_equal(run(y, out), 0);
	assert_int_equal(g->tensor[y].dtype, DT_I8);
	/* 2.5 -> 2, 3.5 -> 4, -2.5 -> -2, -3.5 -> -4, then -3; 500 and -500
	 * saturate; NaN -> zp; 0.3 -> 0 */
	expect_i(DT_I8, out, I64(-1, 1, -5, -7, 127, -128, -3, -3), 8);
}

/* No zero point: uint8, zero point 0. */
static void test_quantize_default_u8(void **state)
{
	(void)state;
	int y = val();
	NODE(OP_QUANTIZE, y, cst(DT_F32, 1, DIMS(3), F32(-1.0f, 1.26f, 300.0f)),
	     cst(DT_F32, 1, DIMS(1), F32(0.5f)));
	uint8_t out[3];
	assert_int_equal(run(y, out), 0);
	assert_int_equal(g->tensor[y].dtype, DT_U8);
	expect_i(DT_U8, out, I64(0, 3, 255), 3);   /* -2 -> 0, 2.52 -> 3, 600 -> 255 */
}

/* Per-axis scales and zero points along axis 1 of [2, 2, 2]. */
static void test_quantize_axis(void **state)
{
	(void)state;
	float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	int y = val();
	int n = NODE(OP_QUANTIZE, y, cst(DT_F32, 3, DIMS(2, 2, 2), x),
	             cst(DT_F32, 1, DIMS(2), F32(1.0f, 4.0f)), cst(DT_U8, 1, DIMS(2), U8(10, 20)));
	g->node[n].a.axis.axis = 1;
	uint8_t out[8];
	assert_int_equal(run(y, out), 0);
	/* channel 0: x + 10; channel 1: round(x / 4) + 20 (0.75 -> 1, 1 -> 1, 1.75 -> 2, 2 -> 2) */
	expect_i(DT_U8, out, I64(11, 12, 21, 21, 15, 16, 22, 22), 8);
}

static void test_dequantize(void **state)
{
	(void)state;
	int y = val();
	int n = NODE(OP_DEQUANTIZE, y, cst(DT_I32, 2, DIMS(2, 2), I32(2147483647, -5, 3, -2147483647 - 1)),
	             cst(DT_F32, 1, DIMS(2), F32(0.5f, 0.1f)));
	g->node[n].a.axis.axis = -1;
	float out[4];
	assert_int_equal(run(y, out), 0);
	/* (x - 0) * s in double, rounded once to f32 */
	const double want[4] = {2147483647 * 0.5, -5 * (double)0.1f, 3 * 0.5, -2147483648.0 * (double)0.1f};
	for (int i = 0; i < 4; i++)
		assert_true(out[i] == (float)want[i]);
}

/* ---- QLinearConv, ConvInteger ---- */

/* x [1,1,3,3] u8, zx 2; w [2,1,2,2] i8 per-channel zw and sw; pads 1 on
 * top/left; int32 bias: every output against a double loop. */
static void test_qlinearconv(void **state)
{
	(void)state;
	const uint8_t x[9] = {2, 10, 255, 0, 7, 2, 100, 3, 9};
	const int8_t w[8] = {1, -2, 3, 127, -128, 5, 0, 9};
	const int8_t zw[2] = {1, -4};
	const float sx = 0.05f, sw[2] = {0.02f, 0.007f}, sy = 0.03f;
	const int32_t b[2] = {50, -3000};
	const int zx = 2, zy = 4;
	int in[9] = {cst(DT_U8, 4, DIMS(1, 1, 3, 3), x), cst(DT_F32, 0, NULL, &sx),
	             cst(DT_U8, 0, NULL, U8(2)), cst(DT_I8, 4, DIMS(2, 1, 2, 2), w),
	             cst(DT_F32, 1, DIMS(2), sw), cst(DT_I8, 1, DIMS(2), zw), cst(DT_F32, 0, NULL, &sy),
	             cst(DT_I8, 0, NULL, I8(4)), cst(DT_I32, 1, DIMS(2), b)};
	int y = val();
	window(node(OP_QLINEARCONV, 9, in, y), 2, (const int[]){2, 2}, (const int[]){1, 1, 0, 0});
	int8_t out[18];
	assert_int_equal(run(y, out), 0);
	assert_int_equal(g->tensor[y].rank, 4);
	assert_int_equal(g->tensor[y].dim[2], 3);
	int64_t want[18];
	for (int m = 0; m < 2; m++)
		for (int oh = 0; oh < 3; oh++)
			for (int ow = 0; ow < 3; ow++) {
				int64_t acc = b[m];
				for (int kh = 0; kh < 2; kh++)
					for (int kw = 0; kw < 2; kw++) {
						int ih = oh - 1 + kh, iw = ow - 1 + kw;
						if (ih >= 0 && ih < 3 && iw >= 0 && iw < 3)
							acc += (x[ih * 3 + iw] - zx) * (w[m * 4 + kh * 2 + kw] - zw[m]);
					}
				double v = nearbyint(acc * ((double)sx * sw[m] / sy)) + zy;
				want[(m * 3 + oh) * 3 + ow] = v < -128 ? -128 : v > 127 ? 127 : (int64_t)v;
			}
	expect_i(DT_I8, out, want, 18);
}

/* ConvInteger 1-D, no zero points given: plain int32 sums. */
static void test_convinteger(void **state)
{
	(void)state;
	int y = val();
	window(NODE(OP_CONVINTEGER, y, cst(DT_I8, 3, DIMS(1, 1, 4), I8(-128, 127, 3, -4)),
	            cst(DT_I8, 3, DIMS(1, 1, 2), I8(-128, 2))),
	       1, (const int[]){2}, (const int[]){0, 0});
	int32_t out[3];
	assert_int_equal(run(y, out), 0);
	assert_int_equal(g->tensor[y].dtype, DT_I32);
	/* 16384 + 254, -16256 + 6, -384 - 8 */
	expect_i(DT_I32, out, I64(16638, -16250, -392), 3);
}

/* ---- QLinearMatMul, MatMulInteger ---- */

/* [2,3] x [3,2] with per-column B parameters. */
static void test_qlinearmatmul(void **state)
{
	(void)state;
	const uint8_t a[6] = {1, 2, 3, 200, 100, 0};
	const uint8_t bm[6] = {10, 20, 30, 40, 50, 60};
	const float sa = 0.1f, sb[2] = {0.01f, 0.2f}, sy = 0.05f;
	int in[8] = {cst(DT_U8, 2, DIMS(2, 3), a), cst(DT_F32, 0, NULL, &sa), cst(DT_U8, 0, NULL, U8(3)),
	             cst(DT_U8, 2, DIMS(3, 2), bm), cst(DT_F32, 2, DIMS(1, 2), sb),
	             cst(DT_U8, 2, DIMS(1, 2), U8(30, 5)), cst(DT_F32, 0, NULL, &sy),
	             cst(DT_U8, 0, NULL, U8(100))};
	int y = val();
	node(OP_QLINEARMATMUL, 8, in, y);
	uint8_t out[4];
	assert_int_equal(run(y, out), 0);
	const int zb[2] = {30, 5};
	int64_t want[4];
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 2; j++) {
			int64_t acc = 0;
			for (int k = 0; k < 3; k++)
				acc += (a[i * 3 + k] - 3) * (bm[k * 2 + j] - zb[j]);
			double v = nearbyint(acc * ((double)sa * sb[j] / sy)) + 100;
			want[i * 2 + j] = v < 0 ? 0 : v > 255 ? 255 : (int64_t)v;
		}
	expect_i(DT_U8, out, want, 4);
}

/* Batched A [2,1,2] against B [2,1]; zero points as 1-element vector and scalar. */
static void test_matmulinteger(void **state)
{
	(void)state;
	int y = val();
	NODE(OP_MATMULINTEGER, y, cst(DT_I8, 3, DIMS(2, 1, 2), I8(1, 2, 3, 4)),
	     cst(DT_I8, 2, DIMS(2, 1), I8(5, -6)), cst(DT_I8, 1, DIMS(1), I8(1)),
	     cst(DT_I8, 0, NULL, I8(-1)));
	int32_t out[2];
	assert_int_equal(run(y, out), 0);
	assert_int_equal(g->tensor[y].rank, 3);
	/* (1-1)*6 + (2-1)*(-5) = -5; (3-1)*6 + (4-1)*(-5) = -3 */
	expect_i(DT_I32, out, I64(-5, -3), 2);
}

/* ---- shape rules ---- */

static void expect_infer_error(const char *part)
{
	assert_int_not_equal(ir_infer(g, &diag), 0);
	if (!strstr(diag.last, part))
		fail_msg("error \"%s\" does not say \"%s\"", diag.last, part);
}

static void test_shape_errors(void **state)
{
	(void)state;
	/* zero point of another dtype than x */
	NODE(OP_DEQUANTIZE, val(), cst(DT_U8, 1, DIMS(2), U8(1, 2)), cst(DT_F32, 0, NULL, F32(1.0f)),
	     cst(DT_I8, 0, NULL, I8(0)));
	expect_infer_error("zero point");
	g->node[0].dead = 1;
	/* per-axis scale of the wrong length */
	g->node[NODE(OP_QUANTIZE, val(), cst(DT_F32, 2, DIMS(2, 3), F32(1, 2, 3, 4, 5, 6)),
	             cst(DT_F32, 1, DIMS(2), F32(1.0f, 2.0f)))].a.axis.axis = 1;
	expect_infer_error("one per slice along axis 1");
	g->node[1].dead = 1;
	/* a matmul parameter that is per matrix and per row */
	NODE(OP_MATMULINTEGER, val(), cst(DT_U8, 2, DIMS(2, 3), U8(1, 2, 3, 4, 5, 6)),
	     cst(DT_U8, 2, DIMS(3, 1), U8(1, 2, 3)), cst(DT_U8, 1, DIMS(3), U8(1, 2, 3)));
	expect_infer_error("1 per row");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_quantize_rounding, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quantize_default_u8, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quantize_axis, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dequantize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qlinearconv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_convinteger, setup, teardown),
		cmocka_unit_test_setup_teardown(test_qlinearmatmul, setup, teardown),
		cmocka_unit_test_setup_teardown(test_matmulinteger, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shape_errors, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
