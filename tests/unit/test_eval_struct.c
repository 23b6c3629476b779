/* The structural ops of ops.def (ir/eval_struct.c and their shape rules in
 * ir/shape.c): small hand-built graphs, shapes inferred by ir_infer,
 * values checked against results worked out by hand in the comments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ir.h"

#include "irtest.h"

static int cf(int rank, const int64_t *dim, const float *v)
{
	return ir_const_new(g, NULL, DT_F32, rank, dim, v);
}

static int ci(int rank, const int64_t *dim, const int64_t *v)
{
	return ir_const_new(g, NULL, DT_I64, rank, dim, v);
}

static int out(void)
{
	return ir_tensor_new(g, NULL, DT_UNDEF, 0, NULL);
}

/* A node with nout fresh outputs (ids in y[]). */
static Node *node(Op op, int nin, const int *in, int nout, int *y)
{
	for (int j = 0; j < nout; j++)
		y[j] = out();
	int id = ir_node_new(g, op, NULL, nin, in, nout, y);
	return &g->node[id];
}
#define NODE(op, nout, y, ...) node(op, NARGS(__VA_ARGS__), INS(__VA_ARGS__), nout, y)

/* Infer shapes, then evaluate with tensors y[0..n) as the outputs. */
static int run(const int *y, int n, void **bufs)
{
	if (ir_infer(g, &diag))
		return 1;
	g->output = arena_alloc(arena, sizeof(int) * (size_t)n);
	memcpy(g->output, y, sizeof(int) * (size_t)n);
	g->noutput = n;
	return ir_eval(g, NULL, bufs, NULL, NULL, &diag);
}

static void expect_f(const float *got, const float *want, int n)
{
	for (int i = 0; i < n; i++)
		if (!(fabsf(got[i] - want[i]) <= 1e-5f * fmaxf(1, fabsf(want[i]))))
			fail_msg("element %d: got %.8g, want %.8g", i, got[i], want[i]);
}

static void expect_dims(int t, int rank, const int64_t *dim)
{
	assert_int_equal(g->tensor[t].rank, rank);
	for (int i = 0; i < rank; i++)
		assert_int_equal(g->tensor[t].dim[i], dim[i]);
}

/* ---- Split ---- */

/* x [2,3] = 0..5 split [1,2] along axis 1: [[0],[3]] and [[1,2],[4,5]]. */
static void test_split_sizes(void **state)
{
	(void)state;
	int y[2];
	Node *n = NODE(OP_SPLIT, 2, y, cf(2, DIMS(2, 3), F32(0, 1, 2, 3, 4, 5)), ci(1, DIMS(2), I64(1, 2)));
	n->a.axis.axis = 1;
	float a[2], b[4];
	void *bufs[2] = {a, b};
	assert_int_equal(run(y, 2, bufs), 0);
	expect_dims(y[0], 2, DIMS(2, 1));
	expect_dims(y[1], 2, DIMS(2, 2));
	expect_f(a, F32(0, 3), 2);
	expect_f(b, F32(1, 2, 4, 5), 4);
}

/* Without sizes: equal parts, and 6 does not split into 4. */
static void test_split_equal(void **state)
{
	(void)state;
	int y[3], z[4];
	NODE(OP_SPLIT, 3, y, cf(1, DIMS(6), F32(0, 1, 2, 3, 4, 5)));
	float a[2], b[2], c[2];
	void *bufs[3] = {a, b, c};
	assert_int_equal(run(y, 3, bufs), 0);
	expect_f(c, F32(4, 5), 2);
	g->node[0].dead = 1;
	NODE(OP_SPLIT, 4, z, cf(1, DIMS(6), F32(0, 1, 2, 3, 4, 5)));
	assert_int_not_equal(ir_infer(g, &diag), 0);
	assert_non_null(strstr(diag.last, "4 equal parts"));
}

/* ---- DepthToSpace, SpaceToDepth ---- */

/* x [1,8,1,1] = 0..7, blocksize 2 -> [1,2,2,2].  DCR: y[c,i,j] =
 * x[(2i+j)*2 + c] = 0,2,4,6 | 1,3,5,7; CRD: x[4c + 2i + j] = 0..7.
 * SpaceToDepth undoes DCR. */
static void test_depthtospace(void **state)
{
	(void)state;
	float x[8], dcr[8], crd[8], back[8];
	for (int i = 0; i < 8; i++)
		x[i] = (float)i;
	int y[1], z[1], w[1];
	Node *n = NODE(OP_DEPTHTOSPACE, 1, y, cf(4, DIMS(1, 8, 1, 1), x));
	n->a.d2s.block = 2;
	n = NODE(OP_DEPTHTOSPACE, 1, z, cf(4, DIMS(1, 8, 1, 1), x));
	n->a.d2s.block = 2;
	n->a.d2s.crd = 1;
	n = NODE(OP_SPACETODEPTH, 1, w, y[0]);
	n->a.d2s.block = 2;
	void *bufs[3] = {dcr, crd, back};
	assert_int_equal(run(INS(y[0], z[0], w[0]), 3, bufs), 0);
	expect_dims(y[0], 4, DIMS(1, 2, 2, 2));
	expect_f(dcr, F32(0, 2, 4, 6, 1, 3, 5, 7), 8);
	expect_f(crd, x, 8);
	expect_f(back, x, 8);
}

/* ---- gathers, OneHot, Trilu ---- */

/* GatherElements axis 1: [[1,2],[3,4]] at [[0,0],[1,0]] -> [[1,1],[4,3]];
 * GatherND batch_dims 1: [[[0,1],[2,3]],[[4,5],[6,7]]] at [[1],[0]] ->
 * [[2,3],[4,5]]. */
static void test_gathers(void **state)
{
	(void)state;
	int y[1], z[1];
	Node *n = NODE(OP_GATHERELEM, 1, y, cf(2, DIMS(2, 2), F32(1, 2, 3, 4)),
	               ci(2, DIMS(2, 2), I64(0, 0, 1, 0)));
	n->a.axis.axis = 1;
	n = NODE(OP_GATHERND, 1, z, cf(3, DIMS(2, 2, 2), F32(0, 1, 2, 3, 4, 5, 6, 7)),
	         ci(2, DIMS(2, 1), I64(1, 0)));
	n->a.norm.batch = 1;
	float a[4], b[4];
	void *bufs[2] = {a, b};
	assert_int_equal(run(INS(y[0], z[0]), 2, bufs), 0);
	expect_f(a, F32(1, 1, 4, 3), 4);
	expect_dims(z[0], 2, DIMS(2, 2));
	expect_f(b, F32(2, 3, 4, 5), 4);
}

/* Indices 1, -1 (= 2) and 5 (out of range: all off) with depth 3. */
static void test_onehot(void **state)
{
	(void)state;
	int y[1];
	Node *n = NODE(OP_ONEHOT, 1, y, ci(1, DIMS(3), I64(1, -1, 5)), cf(0, NULL, F32(3)),
	               cf(1, DIMS(2), F32(0, 9)));
	n->a.axis.axis = -1;
	float a[9];
	void *bufs[1] = {a};
	assert_int_equal(run(y, 1, bufs), 0);
	expect_dims(y[0], 2, DIMS(3, 3));
	expect_f(a, F32(0, 9, 0, 0, 0, 9, 0, 0, 0), 9);
}

/* Upper with k = 1 keeps j - i >= 1 of [[1,2,3],[4,5,6],[7,8,9]]. */
static void test_trilu(void **state)
{
	(void)state;
	int y[1];
	Node *n = NODE(OP_TRILU, 1, y, cf(2, DIMS(3, 3), F32(1, 2, 3, 4, 5, 6, 7, 8, 9)),
	               ci(0, NULL, I64(1)));
	n->a.trilu.upper = 1;
	float a[9];
	void *bufs[1] = {a};
	assert_int_equal(run(y, 1, bufs), 0);
	expect_f(a, F32(0, 2, 3, 0, 0, 6, 0, 0, 0), 9);
}

/* ---- ConvTranspose ---- */

static Window win1(int k, int s)
{
	Window w = {0};
	w.nsp = 1;
	w.k[0] = k, w.s[0] = s, w.d[0] = 1, w.group = 1;
	return w;
}

/* x = 1,2,3, w = 1,10, stride 2: y[2i + k] += x[i] * w[k] = 1,10,2,20,3,30.
 * pads [1, 0] drop the first; output_padding 1 adds a 0 (+ bias 0.5). */
static void test_convtranspose(void **state)
{
	(void)state;
	int y[1], z[1];
	int x = cf(3, DIMS(1, 1, 3), F32(1, 2, 3)), w = cf(3, DIMS(1, 1, 2), F32(1, 10));
	Node *n = NODE(OP_CONVTRANSPOSE, 1, y, x, w);
	n->a.win = win1(2, 2);
	n->a.win.pad[0] = 1;
	n = NODE(OP_CONVTRANSPOSE, 1, z, x, w, cf(1, DIMS(1), F32(0.5f)));
	n->a.win = win1(2, 2);
	n->a.win.outpad[0] = 1;
	float a[5], b[7];
	void *bufs[2] = {a, b};
	assert_int_equal(run(INS(y[0], z[0]), 2, bufs), 0);
	expect_dims(y[0], 3, DIMS(1, 1, 5));
	expect_f(a, F32(10, 2, 20, 3, 30), 5);
	expect_dims(z[0], 3, DIMS(1, 1, 7));
	expect_f(b, F32(1.5f, 10.5f, 2.5f, 20.5f, 3.5f, 30.5f, 0.5f), 7);
}

/* output_shape 4 with SAME_UPPER: full 6, total pad 2 -> 1 and 1. */
static void test_convtranspose_output_shape(void **state)
{
	(void)state;
	int y[1];
	Node *n = NODE(OP_CONVTRANSPOSE, 1, y, cf(3, DIMS(1, 1, 3), F32(1, 2, 3)), cf(3, DIMS(1, 1, 2), F32(1, 10)));
	n->a.win = win1(2, 2);
	n->a.win.outshape[0] = 4;
	n->a.win.autopad = PAD_SAME_UPPER;
	float a[4];
	void *bufs[1] = {a};
	assert_int_equal(run(y, 1, bufs), 0);
	expect_dims(y[0], 3, DIMS(1, 1, 4));
	expect_f(a, F32(10, 2, 20, 3), 4);
}

/* ---- normalisations ---- */

/* Rows [1,3] and [0,4]: means 2, 2; variances 1, 4; 1/sd 1, 0.5;
 * y = (x - mean) * inv * [1,2] + [0,1] = [-1,3] and [-1,3]. */
static void test_layernorm(void **state)
{
	(void)state;
	int y[3];
	Node *n = NODE(OP_LAYERNORM, 3, y, cf(2, DIMS(2, 2), F32(1, 3, 0, 4)), cf(1, DIMS(2), F32(1, 2)),
	               cf(1, DIMS(2), F32(0, 1)));
	n->a.norm.axis = -1;
	float a[4], m[2], inv[2];
	void *bufs[3] = {a, m, inv};
	assert_int_equal(run(y, 3, bufs), 0);
	expect_dims(y[1], 2, DIMS(2, 1));
	expect_f(a, F32(-1, 3, -1, 3), 4);
	expect_f(m, F32(2, 2), 2);
	expect_f(inv, F32(1, 0.5f), 2);
}

/* InstanceNormalization of [1,3]: mean 2, var 1 -> (x - 2) * 2 + 1. */
static void test_instnorm(void **state)
{
	(void)state;
	int y[1];
	NODE(OP_INSTNORM, 1, y, cf(3, DIMS(1, 1, 2), F32(1, 3)), cf(1, DIMS(1), F32(2)), cf(1, DIMS(1), F32(1)));
	float a[2];
	void *bufs[1] = {a};
	assert_int_equal(run(y, 1, bufs), 0);
	expect_f(a, F32(-1, 3), 2);
}

/* LRN size 2, alpha 2, beta 1, bias 1 on channels 1, 2: channel 0 sums
 * channels 0..1 (5): 1 / (1 + 2/2 * 5) = 1/6; channel 1 only itself (4):
 * 2 / 5. */
static void test_lrn(void **state)
{
	(void)state;
	int y[1];
	Node *n = NODE(OP_LRN, 1, y, cf(4, DIMS(1, 2, 1, 1), F32(1, 2)));
	n->a.lrn.size = 2, n->a.lrn.alpha = 2, n->a.lrn.beta = 1, n->a.lrn.bias = 1;
	float a[2];
	void *bufs[1] = {a};
	assert_int_equal(run(y, 1, bufs), 0);
	expect_f(a, F32(1.0f / 6, 0.4f), 2);
}

/* ---- Resize ---- */

/* [0, 10] scaled by 2.  half_pixel linear samples at -0.25, 0.25, 0.75,
 * 1.25 (clamped): 0, 2.5, 7.5, 10; align_corners at 0, 1/3, 2/3, 1;
 * asymmetric nearest at 0, 0.5, 1, 1.5: round_prefer_floor 0,0,1,1 and
 * round_prefer_ceil 0,1,1,(2 clamped to 1). */
static void test_resize(void **state)
{
	(void)state;
	struct { ResizeMode m; ResizeCoord c; ResizeNearest r; float want[4]; } k[] = {
		{RS_LINEAR, RS_HALF_PIXEL, RS_ROUND_PREFER_FLOOR, {0, 2.5f, 7.5f, 10}},
		{RS_LINEAR, RS_ALIGN_CORNERS, RS_ROUND_PREFER_FLOOR, {0, 10.0f / 3, 20.0f / 3, 10}},
		{RS_NEAREST, RS_ASYMMETRIC, RS_ROUND_PREFER_FLOOR, {0, 0, 10, 10}},
		{RS_NEAREST, RS_ASYMMETRIC, RS_ROUND_PREFER_CEIL, {0, 10, 10, 10}},
	};
	int x = cf(1, DIMS(2), F32(0, 10)), sc = cf(1, DIMS(1), F32(2));
	for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
		int y[1];
		Node *n = NODE(OP_RESIZE, 1, y, x, -1, sc);
		n->a.resize.mode = k[i].m, n->a.resize.coord = k[i].c, n->a.resize.nearest = k[i].r;
		float a[4];
		void *bufs[1] = {a};
		assert_int_equal(run(y, 1, bufs), 0);
		expect_f(a, k[i].want, 4);
		g->node[g->nnode - 1].dead = 1;
	}
}

/* Both scales and sizes, or neither, is an error. */
static void test_resize_errors(void **state)
{
	(void)state;
	int y[1];
	NODE(OP_RESIZE, 1, y, cf(1, DIMS(2), F32(0, 10)));
	assert_int_not_equal(ir_infer(g, &diag), 0);
	assert_non_null(strstr(diag.last, "exactly one of scales and sizes"));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_split_sizes), T(test_split_equal), T(test_depthtospace), T(test_gathers),
		T(test_onehot), T(test_trilu), T(test_convtranspose), T(test_convtranspose_output_shape),
		T(test_layernorm), T(test_instnorm), T(test_lrn), T(test_resize), T(test_resize_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
