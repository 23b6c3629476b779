/* The reference evaluator (ir/eval_math.c) and the shape rules for ops.def's
 * "math, logic and bit ops", on one-node graphs checked against values
 * worked out by hand (in the comments): the float unary ops, Round's ties,
 * IsNaN/IsInf/Not, the bool logic and comparisons, Mod and BitShift with
 * their edge cases (mod by 0 and -1, shifts past the width), the norm-like
 * reductions, ArgMax/ArgMin with ties and NaN, Hardmax and CumSum. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ir.h"

#include "irtest.h"

/* ---- graph building ---- */

static int cst(DType dt, int rank, const int64_t *dim, const void *data)
{
	return ir_const_new(g, NULL, dt, rank, dim, data);
}

static int cf(int n, const float *v)
{
	return cst(DT_F32, 1, DIMS(n), v);
}

static int val(DType dt, int rank, const int64_t *dim)
{
	return ir_tensor_new(g, NULL, dt, rank, dim);
}

static Node *node1(Op op, int nin, const int *in, int y)
{
	int id = ir_node_new(g, op, NULL, nin, in, 1, &y);
	return &g->node[id];
}
#define NODE(op, y, ...) node1(op, NARGS(__VA_ARGS__), INS(__VA_ARGS__), y)

/* Run the graph with t as its only output; earlier nodes run again, which
 * is harmless. */
static int run(int t, void *buf)
{
	g->output = arena_alloc(arena, sizeof(int));
	g->output[0] = t;
	g->noutput = 1;
	void *outs[1] = {buf};
	return ir_eval(g, NULL, outs, NULL, NULL, &diag);
}

/* Equal within 1e-6 relative; NaN matches NaN, infinities exactly. */
static void expect_f(const float *got, const float *want, int n)
{
	for (int i = 0; i < n; i++) {
		if (isnan(want[i]) ? isnan(got[i]) : isinf(want[i]) ? got[i] == want[i]
		    : fabsf(got[i] - want[i]) <= 1e-6f * fmaxf(1, fabsf(want[i])))
			continue;
		fail_msg("element %d: got %.9g, want %.9g", i, got[i], want[i]);
	}
}

static void expect_i64(const int64_t *got, const int64_t *want, int n)
{
	for (int i = 0; i < n; i++)
		if (got[i] != want[i])
			fail_msg("element %d: got %lld, want %lld", i, (long long)got[i], (long long)want[i]);
}

/* One-input f32 node over x (n values) into out. */
static int unary_f(Op op, float alpha, float beta, int n, const float *x, float *out)
{
	int y = val(DT_F32, 1, DIMS(n));
	Node *nd = NODE(op, y, cf(n, x));
	nd->a.ab.alpha = alpha, nd->a.ab.beta = beta;
	return run(y, out);
}

/* ---- unary ---- */

/* libm values at 0.5 (acosh at 2), to 8 digits. */
static void test_trig(void **state)
{
	(void)state;
	static const struct { Op op; float x, want; } t[] = {
		{OP_SIN, 0.5f, 0.47942554f}, {OP_COS, 0.5f, 0.87758256f}, {OP_TAN, 0.5f, 0.54630249f},
		{OP_ASIN, 0.5f, 0.52359878f}, {OP_ACOS, 0.5f, 1.04719755f}, {OP_ATAN, 0.5f, 0.46364761f},
		{OP_SINH, 0.5f, 0.52109531f}, {OP_COSH, 0.5f, 1.12762597f}, {OP_ASINH, 0.5f, 0.48121183f},
		{OP_ACOSH, 2.0f, 1.31695790f}, {OP_ATANH, 0.5f, 0.54930614f},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		float out[1];
		assert_int_equal(unary_f(t[i].op, 0, 0, 1, &t[i].x, out), 0);
		expect_f(out, &t[i].want, 1);
	}
}

/* Halves go to the even neighbour; 0.49999997 (just below 0.5) goes to
 * 0; 2^23 + 1 is already an integer; -0.5 rounds to -0. */
static void test_round_half_even(void **state)
{
	(void)state;
	float out[10];
	assert_int_equal(unary_f(OP_ROUND, 0, 0, 10,
	                         F32(0.5f, 1.5f, 2.5f, -0.5f, -2.5f, 0.49999997f, 8388609.0f, 2.4f,
	                             -2.6f, NAN), out), 0);
	expect_f(out, F32(0, 2, 2, 0, -2, 0, 8388609.0f, 2, -3, NAN), 10);
	assert_true(signbit(out[3]));
}

/* Sign keeps NaN; ThresholdedRelu(alpha 1); Shrink(lambd 1, bias 0.5);
 * Celu(alpha 2) at -1 is 2 * (exp(-0.5) - 1) = -0.78693868. */
static void test_sign_and_activations(void **state)
{
	(void)state;
	float out[4];
	assert_int_equal(unary_f(OP_SIGN, 0, 0, 4, F32(-2, 0, 3, NAN), out), 0);
	expect_f(out, F32(-1, 0, 1, NAN), 4);
	assert_int_equal(unary_f(OP_THRESHOLDEDRELU, 1, 0, 3, F32(-1, 1, 2), out), 0);
	expect_f(out, F32(0, 0, 2), 3);
	assert_int_equal(unary_f(OP_SHRINK, 1, 0.5f, 4, F32(-2, -0.5f, 0, 2), out), 0);
	expect_f(out, F32(-1.5f, 0, 0, 1.5f), 4);
	assert_int_equal(unary_f(OP_CELU, 2, 0, 2, F32(-1, 3), out), 0);
	expect_f(out, F32(-0.78693868f, 3), 2);
	int32_t iout[3];
	int y = val(DT_I32, 1, DIMS(3));
	NODE(OP_SIGN, y, cst(DT_I32, 1, DIMS(3), I32(-7, 0, 9)));
	assert_int_equal(run(y, iout), 0);
	assert_memory_equal(iout, I32(-1, 0, 1), sizeof iout);
}

/* IsNaN, IsInf(+inf only), Not. */
static void test_classify_not(void **state)
{
	(void)state;
	int x = cf(4, F32(INFINITY, -INFINITY, NAN, 1));
	int nan = val(DT_BOOL, 1, DIMS(4)), inf = val(DT_BOOL, 1, DIMS(4)), not = val(DT_BOOL, 1, DIMS(2));
	NODE(OP_ISNAN, nan, x);
	Node *n = NODE(OP_ISINF, inf, x);
	n->a.isinf.pos = 1, n->a.isinf.neg = 0;
	NODE(OP_NOT, not, cst(DT_BOOL, 1, DIMS(2), U8(0, 1)));
	uint8_t b[4];
	assert_int_equal(run(nan, b), 0);
	assert_memory_equal(b, U8(0, 0, 1, 0), 4);
	assert_int_equal(run(inf, b), 0);
	assert_memory_equal(b, U8(1, 0, 0, 0), 4);
	assert_int_equal(run(not, b), 0);
	assert_memory_equal(b, U8(1, 0), 2);
}

/* ---- binary ---- */

/* a [2,2] against b [2] broadcast along rows. */
static void test_logic_compare(void **state)
{
	(void)state;
	int a = cst(DT_BOOL, 2, DIMS(2, 2), U8(0, 1, 1, 1)), b = cst(DT_BOOL, 1, DIMS(2), U8(1, 0));
	static const struct { Op op; uint8_t want[4]; } t[] = {
		{OP_AND, {0, 0, 1, 0}}, {OP_OR, {1, 1, 1, 1}}, {OP_XOR, {1, 1, 0, 1}},
	};
	uint8_t out[4];
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		int y = val(DT_BOOL, 2, DIMS(2, 2));
		NODE(t[i].op, y, a, b);
		assert_int_equal(run(y, out), 0);
		assert_memory_equal(out, t[i].want, 4);
	}
	int ge = val(DT_BOOL, 1, DIMS(3)), le = val(DT_BOOL, 1, DIMS(3));
	NODE(OP_GREATEREQ, ge, cf(3, F32(1, 2, NAN)), cst(DT_F32, 0, NULL, F32(2)));
	NODE(OP_LESSEQ, le, cst(DT_I64, 1, DIMS(3), I64(INT64_MIN, 5, 6)), cst(DT_I64, 0, NULL, I64(5)));
	assert_int_equal(run(ge, out), 0);
	assert_memory_equal(out, U8(0, 1, 0), 3);
	assert_int_equal(run(le, out), 0);
	assert_memory_equal(out, U8(1, 1, 0), 3);
}

/* 7 mod 3 by sign: fmod=0 gives the divisor's sign (1, 2, -2, -1), fmod=1
 * the dividend's (1, -1, 1, -1); x mod 0 and INT64_MIN mod -1 are 0. */
static void test_mod(void **state)
{
	(void)state;
	int a = cst(DT_I64, 1, DIMS(6), I64(7, -7, 7, -7, 5, INT64_MIN));
	int b = cst(DT_I64, 1, DIMS(6), I64(3, 3, -3, -3, 0, -1));
	int64_t out[6];
	for (int fm = 0; fm < 2; fm++) {
		int y = val(DT_I64, 1, DIMS(6));
		NODE(OP_MOD, y, a, b)->a.mod.fmod = fm;
		assert_int_equal(run(y, out), 0);
		expect_i64(out, fm ? I64(1, -1, 1, -1, 0, 0) : I64(1, 2, -2, -1, 0, 0), 6);
	}
	/* uint8 200 mod 7 = 4 (no sign games for unsigned) */
	uint8_t u[1];
	int yu = val(DT_U8, 1, DIMS(1));
	NODE(OP_MOD, yu, cst(DT_U8, 1, DIMS(1), U8(200)), cst(DT_U8, 1, DIMS(1), U8(7)));
	assert_int_equal(run(yu, u), 0);
	assert_int_equal(u[0], 4);
	float f[2];
	int yf = val(DT_F32, 1, DIMS(2));
	NODE(OP_MOD, yf, cf(2, F32(5.5f, -5.5f)), cst(DT_F32, 0, NULL, F32(-2)))->a.mod.fmod = 1;
	assert_int_equal(run(yf, f), 0);
	expect_f(f, F32(1.5f, -1.5f), 2);
	/* float Mod needs fmod = 1 */
	int bad = val(DT_F32, 1, DIMS(2));
	NODE(OP_MOD, bad, cf(2, F32(5.5f, -5.5f)), cst(DT_F32, 0, NULL, F32(-2)));
	assert_int_equal(run(bad, f), 1);
	assert_non_null(strstr(diag.last, "fmod = 1"));
}

/* u8: 1 << 7 = 128, 255 << 1 wraps to 254, a shift by 8 gives 0;
 * u32: >> 31 keeps the top bit, >> 32 gives 0. */
static void test_bitshift(void **state)
{
	(void)state;
	uint8_t o8[3];
	int y8 = val(DT_U8, 1, DIMS(3));
	NODE(OP_BITSHIFT, y8, cst(DT_U8, 1, DIMS(3), U8(1, 255, 3)),
	     cst(DT_U8, 1, DIMS(3), U8(7, 1, 8)))->a.shift.left = 1;
	assert_int_equal(run(y8, o8), 0);
	assert_memory_equal(o8, U8(128, 254, 0), 3);
	uint32_t o32[2];
	int y32 = val(DT_U32, 1, DIMS(2));
	NODE(OP_BITSHIFT, y32, cst(DT_U32, 1, DIMS(2), ((const uint32_t[]){0x80000001u, 0xffffffffu})),
	     cst(DT_U32, 1, DIMS(2), ((const uint32_t[]){31, 32})))->a.shift.left = 0;
	assert_int_equal(run(y32, o32), 0);
	assert_int_equal(o32[0], 1);
	assert_int_equal(o32[1], 0);
}

/* ---- reductions ---- */

static int reduce(Op op, int x, int64_t axis, int ny, DType dt)
{
	int y = val(dt, 1, DIMS(ny));
	NODE(op, y, x, cst(DT_I64, 1, DIMS(1), &axis))->a.reduce.keepdims = 0;
	return y;
}

/* x = [[1, -2, 2], [3, 4, 0]] over axis 1: L1 5, 7; L2 3, 5; SumSquare
 * 9, 25.  LogSum of [[1,2,3],[4,5,6]]: ln 6, ln 15.  LogSumExp of
 * [[0, 0], [-inf, -inf], [inf, 1], [1000, 1000]]: ln 2, -inf, inf,
 * 1000 + ln 2 (no overflow). */
static void test_reduce_norms(void **state)
{
	(void)state;
	int x = cst(DT_F32, 2, DIMS(2, 3), F32(1, -2, 2, 3, 4, 0));
	int l1 = reduce(OP_REDUCEL1, x, 1, 2, DT_F32), l2 = reduce(OP_REDUCEL2, x, 1, 2, DT_F32);
	int sq = reduce(OP_REDUCESUMSQ, x, -1, 2, DT_F32);
	int ls = reduce(OP_REDUCELOGSUM, cst(DT_F32, 2, DIMS(2, 3), F32(1, 2, 3, 4, 5, 6)), 1, 2, DT_F32);
	int lse = reduce(OP_REDUCELOGSUMEXP, cst(DT_F32, 2, DIMS(4, 2),
	                 F32(0, 0, -INFINITY, -INFINITY, INFINITY, 1, 1000, 1000)), 1, 4, DT_F32);
	float out[4];
	assert_int_equal(run(l1, out), 0);
	expect_f(out, F32(5, 7), 2);
	assert_int_equal(run(l2, out), 0);
	expect_f(out, F32(3, 5), 2);
	assert_int_equal(run(sq, out), 0);
	expect_f(out, F32(9, 25), 2);
	assert_int_equal(run(ls, out), 0);
	expect_f(out, F32(1.79175947f, 2.70805020f), 2);
	assert_int_equal(run(lse, out), 0);
	expect_f(out, F32(0.69314718f, -INFINITY, INFINITY, 1000.69314718f), 4);
	int32_t iout[2];
	int il1 = reduce(OP_REDUCEL1, cst(DT_I32, 2, DIMS(2, 2), I32(-3, 4, INT32_MIN + 1, -5)), 1, 2, DT_I32);
	assert_int_equal(run(il1, iout), 0);
	assert_int_equal(iout[0], 7);
	assert_int_equal(iout[1], -2147483644); /* 2^31 - 1 + 5 = 2^31 + 4 wraps */
}

/* ---- ArgMax, ArgMin, Hardmax, CumSum ---- */

/* [[1, 3, 3], [NaN, 5, NaN]] along axis 1: the first max is 1, the last 2;
 * NaN wins as in numpy, first (0) or last (2). */
static void test_argmax(void **state)
{
	(void)state;
	int x = cst(DT_F32, 2, DIMS(2, 3), F32(1, 3, 3, NAN, 5, NAN));
	int64_t out[3];
	for (int last = 0; last < 2; last++) {
		int y = val(DT_I64, 2, DIMS(2, 1));
		Node *n = NODE(OP_ARGMAX, y, x);
		n->a.arg.axis = -1, n->a.arg.keepdims = 1, n->a.arg.last = last;
		assert_int_equal(run(y, out), 0);
		expect_i64(out, last ? I64(2, 2) : I64(1, 0), 2);
	}
	/* ArgMin over axis 0 of [[3, -1, 3], [-5, -1, 2]]: 1, 0 (tie: first), 1 */
	int y = val(DT_I64, 1, DIMS(3));
	Node *n = NODE(OP_ARGMIN, y, cst(DT_I64, 2, DIMS(2, 3), I64(3, -1, 3, -5, -1, 2)));
	n->a.arg.axis = 0, n->a.arg.keepdims = 0;
	assert_int_equal(run(y, out), 0);
	expect_i64(out, I64(1, 0, 1), 3);
}

/* Legacy (opset < 13) axis 1 of [2, 2, 2] flattens the last two dims: one 1
 * per batch.  Opset 13 axis -1: one 1 per row, ties to the first. */
static void test_hardmax(void **state)
{
	(void)state;
	int x = cst(DT_F32, 3, DIMS(2, 2, 2), F32(1, 4, 3, 2, 7, 7, 0, 7));
	float out[8];
	int y = val(DT_F32, 3, DIMS(2, 2, 2));
	Node *n = NODE(OP_HARDMAX, y, x);
	n->a.axis.axis = 1, n->a.axis.legacy = 1;
	assert_int_equal(run(y, out), 0);
	expect_f(out, F32(0, 1, 0, 0, 1, 0, 0, 0), 8);
	int z = val(DT_F32, 3, DIMS(2, 2, 2));
	n = NODE(OP_HARDMAX, z, x);
	n->a.axis.axis = -1, n->a.axis.legacy = 0;
	assert_int_equal(run(z, out), 0);
	expect_f(out, F32(0, 1, 1, 0, 1, 0, 0, 1), 8);
}

/* [1, 2, 3, 4]: inclusive 1 3 6 10, exclusive 0 1 3 6, reverse 10 9 7 4,
 * reverse exclusive 9 7 4 0; i32 [[1, 2], [3, 4]] along axis -1: 1 3 3 7. */
static void test_cumsum(void **state)
{
	(void)state;
	static const float want[4][4] = {{1, 3, 6, 10}, {0, 1, 3, 6}, {10, 9, 7, 4}, {9, 7, 4, 0}};
	int x = cf(4, F32(1, 2, 3, 4)), ax = cst(DT_I32, 0, NULL, I32(0));
	float out[4];
	for (int k = 0; k < 4; k++) {
		int y = val(DT_F32, 1, DIMS(4));
		Node *n = NODE(OP_CUMSUM, y, x, ax);
		n->a.cumsum.exclusive = k & 1, n->a.cumsum.reverse = k >> 1;
		assert_int_equal(run(y, out), 0);
		expect_f(out, want[k], 4);
	}
	int32_t iout[4];
	int y = val(DT_I32, 2, DIMS(2, 2));
	NODE(OP_CUMSUM, y, cst(DT_I32, 2, DIMS(2, 2), I32(1, 2, 3, 4)), cst(DT_I64, 1, DIMS(1), I64(-1)));
	assert_int_equal(run(y, iout), 0);
	assert_memory_equal(iout, I32(1, 3, 3, 7), sizeof iout);
}

/* ---- shape rules ---- */

static int infer(Op op, int nin, const int *in, Node **np)
{
	int y = val(DT_UNDEF, 0, NULL);
	Node *n = node1(op, nin, in, y);
	if (np)
		*np = n;
	return ir_infer_node(g, g->nnode - 1, &diag) ? -1 : y;
}

static void expect_shape(int t, DType dt, int rank, const int64_t *dim)
{
	assert_true(t >= 0);
	assert_int_equal(g->tensor[t].dtype, dt);
	assert_int_equal(g->tensor[t].rank, rank);
	for (int i = 0; i < rank; i++)
		assert_int_equal(g->tensor[t].dim[i], dim[i]);
}

static void test_shape_rules(void **state)
{
	(void)state;
	int x = val(DT_F32, 3, DIMS(2, 3, 4)), xi = val(DT_I32, 2, DIMS(2, 3));
	Node *n;
	/* ArgMax drops the axis (or keeps it as 1) and gives i64 */
	int y = val(DT_UNDEF, 0, NULL);
	n = node1(OP_ARGMAX, 1, &x, y);
	n->a.arg.axis = 1;
	assert_int_equal(ir_infer_node(g, g->nnode - 1, &diag), 0);
	expect_shape(y, DT_I64, 2, DIMS(2, 4));
	n->a.arg.keepdims = 1, n->a.arg.axis = -1;
	assert_int_equal(ir_infer_node(g, g->nnode - 1, &diag), 0);
	expect_shape(y, DT_I64, 3, DIMS(2, 3, 1));
	expect_shape(infer(OP_ISINF, 1, &x, NULL), DT_BOOL, 3, DIMS(2, 3, 4));
	expect_shape(infer(OP_GREATEREQ, 2, INS(x, val(DT_F32, 1, DIMS(4))), NULL), DT_BOOL, 3, DIMS(2, 3, 4));
	expect_shape(infer(OP_MOD, 2, INS(xi, xi), NULL), DT_I32, 2, DIMS(2, 3));
	int ax = cst(DT_I64, 0, NULL, I64(-2));
	expect_shape(infer(OP_CUMSUM, 2, INS(xi, ax), NULL), DT_I32, 2, DIMS(2, 3));
	int axr = cst(DT_I64, 1, DIMS(1), I64(3));
	n = NULL;
	y = infer(OP_REDUCEL2, 2, INS(x, cst(DT_I64, 1, DIMS(1), I64(1))), &n);
	expect_shape(y, DT_F32, 2, DIMS(2, 4));
	/* the errors */
	assert_int_equal(infer(OP_MOD, 2, INS(x, x), NULL), -1);
	assert_non_null(strstr(diag.last, "fmod = 1"));
	assert_int_equal(infer(OP_BITSHIFT, 2, INS(xi, xi), NULL), -1);
	assert_non_null(strstr(diag.last, "u8, u16 or u32"));
	assert_int_equal(infer(OP_AND, 2, INS(x, x), NULL), -1);
	assert_non_null(strstr(diag.last, "takes bool"));
	assert_int_equal(infer(OP_CUMSUM, 2, INS(xi, axr), NULL), -1);
	assert_non_null(strstr(diag.last, "out of range"));
	assert_int_equal(infer(OP_CUMSUM, 2, INS(xi, val(DT_I64, 0, NULL)), NULL), -1);
	assert_non_null(strstr(diag.last, "not a constant"));
	int empty = val(DT_F32, 2, DIMS(2, 0));
	y = val(DT_UNDEF, 0, NULL);
	node1(OP_ARGMIN, 1, &empty, y)->a.arg.axis = 1;
	assert_int_equal(ir_infer_node(g, g->nnode - 1, &diag), 1);
	assert_non_null(strstr(diag.last, "empty"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_trig),
		T(test_round_half_even),
		T(test_sign_and_activations),
		T(test_classify_not),
		T(test_logic_compare),
		T(test_mod),
		T(test_bitshift),
		T(test_reduce_norms),
		T(test_argmax),
		T(test_hardmax),
		T(test_cumsum),
		T(test_shape_rules),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
