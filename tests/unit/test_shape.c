/* ir_infer: shapes and dtypes of hand-built graphs against values derived
 * from the ONNX spec (and checked against ONNX's shape inference and the
 * conformance test data where noted), plus one error per bad case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ir.h"

#define DIMS(...) ((const int64_t[]){__VA_ARGS__})
#define INS(...) ((const int[]){__VA_ARGS__})
#define NARGS(...) ((int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))

/* A cmocka test whose unused state argument the body never sees. */
#define TEST(name)                                                       \
	static void name##_body(void);                                   \
	static void name(void **state) { (void)state; name##_body(); }   \
	static void name##_body(void)

static Arena *arena;
static Graph *g;
static Diag diag;

static int setup(void **state)
{
	(void)state;
	arena = arena_new();
	g = ir_graph_new(arena, "t.onnx");
	g->opset = 17;
	diag_init(&diag);
	diag.quiet = 1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	arena_free(arena);
	return 0;
}

/* ---- graph building ---- */

static int input(const char *name, DType dt, int rank, const int64_t *dim)
{
	int t = ir_tensor_new(g, name, dt, rank, dim);
	g->tensor[t].kind = TK_INPUT;
	return t;
}

static int f32(const char *name, int rank, const int64_t *dim)
{
	return input(name, DT_F32, rank, dim);
}

/* A 1-D i64 constant. */
static int ints(const char *name, int n, const int64_t *v)
{
	return ir_const_new(g, name, DT_I64, 1, DIMS(n), v);
}
#define I64S(name, ...) ints(name, NARGS(__VA_ARGS__), DIMS(__VA_ARGS__))

static int scalar(const char *name, DType dt, const void *v)
{
	return ir_const_new(g, name, dt, 0, NULL, v);
}

static int value(const char *name)
{
	return ir_tensor_new(g, name, DT_UNDEF, 0, NULL);
}

/* Node with nin inputs and one new output; returns the node. */
static Node *node(Op op, int nin, const int *in, int *out)
{
	*out = value(NULL);
	int n = ir_node_new(g, op, NULL, nin, in, 1, out);
	return &g->node[n];
}

static Window window(int nsp, const int *k, const int *s)
{
	Window w = {.nsp = nsp, .group = 1};
	for (int i = 0; i < nsp; i++) {
		w.k[i] = k[i];
		w.s[i] = s ? s[i] : 1;
		w.d[i] = 1;
	}
	return w;
}

/* ---- checks ---- */

static void expect(int t, DType dt, int rank, const int64_t *dim)
{
	const Tensor *x = &g->tensor[t];
	assert_int_equal(x->dtype, dt);
	assert_int_equal(x->rank, rank);
	for (int i = 0; i < rank; i++)
		assert_int_equal(x->dim[i], dim[i]);
}
#define EXPECT(t, dt, ...) expect(t, dt, NARGS(__VA_ARGS__), DIMS(__VA_ARGS__))
#define EXPECT_SCALAR(t, dt) expect(t, dt, 0, NULL)

static void infer_ok(void)
{
	int rc = ir_infer(g, &diag);
	if (rc)
		print_error("unexpected: %s\n", diag.last);
	assert_int_equal(rc, 0);
	assert_int_equal(diag.nerr, 0);
}

/* Exactly one error, whose text contains what. */
static void infer_fails(const char *what)
{
	assert_int_equal(ir_infer(g, &diag), 1);
	assert_int_equal(diag.nerr, 1);
	if (!strstr(diag.last, what))
		print_error("message: %s\n", diag.last);
	assert_non_null(strstr(diag.last, what));
	assert_non_null(strstr(diag.last, "t.onnx: node \""));
}

/* ---- Conv and pools ---- */

/* Checked against onnx.shape_inference: [2,16,7,7]. */
TEST(test_conv_pads_strides_dilation_groups)
{
	int x = f32("x", 4, DIMS(2, 8, 17, 20)), w = f32("w", 4, DIMS(16, 2, 3, 5));
	int b = f32("b", 1, DIMS(16)), y;
	Node *n = node(OP_CONV, 3, INS(x, w, b), &y);
	n->a.win = window(2, (const int[]){3, 5}, (const int[]){2, 3});
	n->a.win.d[0] = 2;
	n->a.win.group = 4;
	memcpy(n->a.win.pad, (const int[]){1, 2, 0, 1}, 4 * sizeof(int));
	infer_ok();
	EXPECT(y, DT_F32, 2, 16, 7, 7);
}

TEST(test_conv_1d_no_bias)
{
	int x = f32("x", 3, DIMS(1, 4, 10)), w = f32("w", 3, DIMS(6, 4, 3)), y;
	Node *n = node(OP_CONV, 3, INS(x, w, -1), &y);
	n->a.win = window(1, (const int[]){3}, NULL);
	infer_ok();
	EXPECT(y, DT_F32, 1, 6, 8);
}

/* test_conv_with_autopad_same: SAME_LOWER, k3 s2 on 5x5 -> output_0 [1,1,3,3]. */
TEST(test_conv_autopad_same_lower)
{
	int x = f32("x", 4, DIMS(1, 1, 5, 5)), w = f32("w", 4, DIMS(1, 1, 3, 3)), y;
	Node *n = node(OP_CONV, 2, INS(x, w), &y);
	n->a.win = window(2, (const int[]){3, 3}, (const int[]){2, 2});
	n->a.win.autopad = PAD_SAME_LOWER;
	infer_ok();
	EXPECT(y, DT_F32, 1, 1, 3, 3);
	n = &g->node[0];
	assert_int_equal(n->a.win.autopad, PAD_EXPLICIT);
	for (int i = 0; i < 4; i++)
		assert_int_equal(n->a.win.pad[i], 1);
}

/* SAME with an odd total pad: 7, k4 s2 -> out ceil(7/2) = 4, total pad
 * 3*2 + 4 - 7 = 3; SAME_UPPER puts the extra one at the end, LOWER first. */
TEST(test_conv_autopad_odd_total)
{
	int x = f32("x", 3, DIMS(1, 1, 7)), w = f32("w", 3, DIMS(1, 1, 4)), y1, y2;
	Node *n = node(OP_CONV, 2, INS(x, w), &y1);
	n->a.win = window(1, (const int[]){4}, (const int[]){2});
	n->a.win.autopad = PAD_SAME_UPPER;
	n = node(OP_CONV, 2, INS(x, w), &y2);
	n->a.win = window(1, (const int[]){4}, (const int[]){2});
	n->a.win.autopad = PAD_SAME_LOWER;
	infer_ok();
	EXPECT(y1, DT_F32, 1, 1, 4);
	EXPECT(y2, DT_F32, 1, 1, 4);
	assert_int_equal(g->node[0].a.win.pad[0], 1);
	assert_int_equal(g->node[0].a.win.pad[1], 2);
	assert_int_equal(g->node[1].a.win.pad[0], 2);
	assert_int_equal(g->node[1].a.win.pad[1], 1);
}

TEST(test_conv_autopad_valid)
{
	int x = f32("x", 4, DIMS(1, 1, 5, 6)), w = f32("w", 4, DIMS(2, 1, 3, 3)), y;
	Node *n = node(OP_CONV, 2, INS(x, w), &y);
	n->a.win = window(2, (const int[]){3, 3}, (const int[]){2, 2});
	n->a.win.autopad = PAD_VALID;
	n->a.win.pad[0] = 7;  /* ignored: VALID pads nothing */
	infer_ok();
	EXPECT(y, DT_F32, 1, 2, 2, 2);
	assert_int_equal(g->node[0].a.win.pad[0], 0);
}

/* test_maxpool_2d_same_upper / _same_lower: [1,3,32,32] k2 -> [1,3,32,32]. */
TEST(test_maxpool_same_upper_lower)
{
	int x = f32("x", 4, DIMS(1, 3, 32, 32)), up, lo;
	Node *n = node(OP_MAXPOOL, 1, INS(x), &up);
	n->a.win = window(2, (const int[]){2, 2}, NULL);
	n->a.win.autopad = PAD_SAME_UPPER;
	n = node(OP_MAXPOOL, 1, INS(x), &lo);
	n->a.win = window(2, (const int[]){2, 2}, NULL);
	n->a.win.autopad = PAD_SAME_LOWER;
	infer_ok();
	EXPECT(up, DT_F32, 1, 3, 32, 32);
	EXPECT(lo, DT_F32, 1, 3, 32, 32);
	const int *pu = g->node[0].a.win.pad, *pl = g->node[1].a.win.pad;
	assert_true(pu[0] == 0 && pu[1] == 0 && pu[2] == 1 && pu[3] == 1);
	assert_true(pl[0] == 1 && pl[1] == 1 && pl[2] == 0 && pl[3] == 0);
}

/* test_averagepool_2d_ceil (and test_maxpool_2d_ceil): [1,1,4,4] k3 s2
 * ceil -> [1,1,2,2]; 6x6 gains a window over floor mode (2 -> 3). */
TEST(test_pool_ceil_mode)
{
	int x = f32("x", 4, DIMS(1, 1, 4, 4)), x6 = f32("x6", 4, DIMS(1, 1, 6, 6));
	int y, y6, yf;
	Node *n = node(OP_AVGPOOL, 1, INS(x), &y);
	n->a.win = window(2, (const int[]){3, 3}, (const int[]){2, 2});
	n->a.win.ceil = 1;
	n = node(OP_MAXPOOL, 1, INS(x6), &y6);
	n->a.win = window(2, (const int[]){3, 3}, (const int[]){2, 2});
	n->a.win.ceil = 1;
	n = node(OP_MAXPOOL, 1, INS(x6), &yf);
	n->a.win = window(2, (const int[]){3, 3}, (const int[]){2, 2});
	infer_ok();
	EXPECT(y, DT_F32, 1, 1, 2, 2);
	EXPECT(y6, DT_F32, 1, 1, 3, 3);
	EXPECT(yf, DT_F32, 1, 1, 2, 2);
}

/* ceil_mode never adds a window that would start in the end padding:
 * 5, k2 s2 pad 1+1: windows start at 0, 2, 4 (in the input or the left
 * pad); a 4th would start at 6 = in + pad_begin.  (ONNX 1.12's own
 * inference says 4; PyTorch, onnxruntime and the later ONNX spec say 3.) */
TEST(test_pool_ceil_drops_window_in_end_pad)
{
	int x = f32("x", 4, DIMS(1, 1, 5, 5)), y;
	Node *n = node(OP_MAXPOOL, 1, INS(x), &y);
	n->a.win = window(2, (const int[]){2, 2}, (const int[]){2, 2});
	n->a.win.ceil = 1;
	memcpy(n->a.win.pad, (const int[]){1, 1, 1, 1}, 4 * sizeof(int));
	infer_ok();
	EXPECT(y, DT_F32, 1, 1, 3, 3);
}

/* test_maxpool_2d_dilations: [1,1,4,4] k2 d2 -> [1,1,2,2]; 3-D default;
 * the optional Indices output is i64. */
TEST(test_maxpool_dilation_3d_indices)
{
	int x = f32("x", 4, DIMS(1, 1, 4, 4)), x3 = f32("x3", 5, DIMS(1, 3, 32, 32, 32));
	int y, y3, idx = value("idx");
	Node *n = node(OP_MAXPOOL, 1, INS(x), &y);
	n->a.win = window(2, (const int[]){2, 2}, NULL);
	n->a.win.d[0] = n->a.win.d[1] = 2;
	y3 = value("y3");
	int nn = ir_node_new(g, OP_MAXPOOL, "mp3", 1, INS(x3), 2, INS(y3, idx));
	g->node[nn].a.win = window(3, (const int[]){2, 2, 2}, NULL);
	infer_ok();
	EXPECT(y, DT_F32, 1, 1, 2, 2);
	EXPECT(y3, DT_F32, 1, 3, 31, 31, 31);
	EXPECT(idx, DT_I64, 1, 3, 31, 31, 31);
}

TEST(test_global_pools)
{
	int x = f32("x", 4, DIMS(2, 3, 7, 9)), a, m;
	node(OP_GAVGPOOL, 1, INS(x), &a);
	node(OP_GMAXPOOL, 1, INS(x), &m);
	infer_ok();
	EXPECT(a, DT_F32, 2, 3, 1, 1);
	EXPECT(m, DT_F32, 2, 3, 1, 1);
}

/* ---- other compute ---- */

/* Checked against onnx.shape_inference. */
TEST(test_gemm_matmul)
{
	int a = f32("a", 2, DIMS(4, 3)), b = f32("b", 2, DIMS(5, 4)), c = f32("c", 1, DIMS(5));
	int y, m1, m2, m3, m4;
	Node *n = node(OP_GEMM, 3, INS(a, b, c), &y);
	n->a.gemm.ta = n->a.gemm.tb = 1;
	int p = f32("p", 4, DIMS(2, 1, 3, 4)), q = f32("q", 3, DIMS(5, 4, 6));
	int v = f32("v", 1, DIMS(4)), r = f32("r", 3, DIMS(2, 4, 6)), s = f32("s", 3, DIMS(2, 3, 4));
	node(OP_MATMUL, 2, INS(p, q), &m1);
	node(OP_MATMUL, 2, INS(v, r), &m2);
	node(OP_MATMUL, 2, INS(s, v), &m3);
	node(OP_MATMUL, 2, INS(v, v), &m4);
	infer_ok();
	EXPECT(y, DT_F32, 3, 5);
	EXPECT(m1, DT_F32, 2, 5, 3, 6);
	EXPECT(m2, DT_F32, 2, 6);
	EXPECT(m3, DT_F32, 2, 3);
	EXPECT_SCALAR(m4, DT_F32);
}

TEST(test_batchnorm_softmax_reduce)
{
	int x = f32("x", 3, DIMS(2, 3, 4)), p[4], bn, sm, ls, r1, r2, r3, r4;
	for (int i = 0; i < 4; i++)
		p[i] = f32(NULL, 1, DIMS(3));
	node(OP_BATCHNORM, 5, INS(x, p[0], p[1], p[2], p[3]), &bn);
	node(OP_SOFTMAX, 1, INS(x), &sm)->a.axis.axis = -1;
	Node *n = node(OP_LOGSOFTMAX, 1, INS(x), &ls);
	n->a.axis.axis = 3;  /* legacy: coerce at the end, [24, 1] */
	n->a.axis.legacy = 1;
	int ax = I64S("ax", -1, 0);
	n = node(OP_REDUCESUM, 2, INS(x, ax), &r1);
	n = node(OP_REDUCEMEAN, 2, INS(x, ax), &r2);
	n->a.reduce.keepdims = 1;
	n = node(OP_REDUCEMAX, 1, INS(x), &r3);  /* no axes: all */
	n = node(OP_REDUCEMIN, 2, INS(x, ints("none", 0, NULL)), &r4);
	n->a.reduce.noop_empty = 1;
	infer_ok();
	EXPECT(bn, DT_F32, 2, 3, 4);
	EXPECT(sm, DT_F32, 2, 3, 4);
	EXPECT(ls, DT_F32, 2, 3, 4);
	EXPECT(r1, DT_F32, 3);
	EXPECT(r2, DT_F32, 1, 3, 1);
	EXPECT_SCALAR(r3, DT_F32);
	EXPECT(r4, DT_F32, 2, 3, 4);
}

/* ---- element-wise ---- */

TEST(test_broadcasting)
{
	int a = f32("a", 3, DIMS(2, 1, 4)), b = f32("b", 2, DIMS(3, 1));
	int s1 = f32("s1", 3, DIMS(5, 1, 1)), s2 = f32("s2", 2, DIMS(6, 1)), s3 = f32("s3", 1, DIMS(7));
	int e = f32("e", 1, DIMS(0)), one = f32("one", 0, NULL), y, sum, mx, z, sc;
	node(OP_ADD, 2, INS(a, b), &y);
	node(OP_SUM, 3, INS(s1, s2, s3), &sum);
	node(OP_MAX, 1, INS(a), &mx);
	node(OP_MUL, 2, INS(e, one), &z);
	node(OP_SUB, 2, INS(one, one), &sc);
	infer_ok();
	EXPECT(y, DT_F32, 2, 3, 4);
	EXPECT(sum, DT_F32, 5, 6, 7);
	EXPECT(mx, DT_F32, 2, 1, 4);
	EXPECT(z, DT_F32, 0);
	EXPECT_SCALAR(sc, DT_F32);

	int r, ir;
	assert_int_equal(ir_broadcast(&g->tensor[a], &g->tensor[b], &r, (int64_t[IR_MAXRANK]){0}), 0);
	int64_t d[IR_MAXRANK];
	assert_int_equal(ir_broadcast(&g->tensor[s1], &g->tensor[s3], &ir, d), 0);
	assert_true(ir == 3 && d[0] == 5 && d[1] == 1 && d[2] == 7);
	assert_int_equal(ir_broadcast(&g->tensor[s3], &g->tensor[a], &ir, d), 1);
}

TEST(test_comparison_where_dtypes)
{
	int a = input("a", DT_I64, 2, DIMS(3, 1)), b = input("b", DT_I64, 1, DIMS(4));
	int c = input("c", DT_BOOL, 2, DIMS(3, 1)), eq, lt, w, pr;
	node(OP_EQUAL, 2, INS(a, b), &eq);
	node(OP_LESS, 2, INS(a, b), &lt);
	node(OP_WHERE, 3, INS(c, a, b), &w);
	int x = f32("x", 4, DIMS(1, 3, 2, 2)), sl = f32("slope", 3, DIMS(3, 1, 1));
	node(OP_PRELU, 2, INS(x, sl), &pr);
	infer_ok();
	EXPECT(eq, DT_BOOL, 3, 4);
	EXPECT(lt, DT_BOOL, 3, 4);
	EXPECT(w, DT_I64, 3, 4);
	EXPECT(pr, DT_F32, 1, 3, 2, 2);
}

TEST(test_unary_clip_cast_dropout)
{
	float lo = 0, hi = 6;
	int x = f32("x", 2, DIMS(2, 3)), r, cl, ca, dr, mask = value("mask");
	node(OP_RELU, 1, INS(x), &r);
	node(OP_CLIP, 3, INS(x, scalar("lo", DT_F32, &lo), scalar("hi", DT_F32, &hi)), &cl);
	node(OP_CAST, 1, INS(x), &ca)->a.cast.to = DT_I32;
	dr = value("dr");
	ir_node_new(g, OP_DROPOUT, "drop", 1, INS(x), 2, INS(dr, mask));
	infer_ok();
	EXPECT(r, DT_F32, 2, 3);
	EXPECT(cl, DT_F32, 2, 3);
	EXPECT(ca, DT_I32, 2, 3);
	EXPECT(dr, DT_F32, 2, 3);
	EXPECT(mask, DT_BOOL, 2, 3);
}

/* ---- views and data movement ---- */

TEST(test_reshape)
{
	int x = f32("x", 3, DIMS(2, 3, 4)), z = f32("z", 2, DIMS(0, 3)), y1, y2, y3, y4;
	node(OP_RESHAPE, 2, INS(x, I64S("s1", 0, -1)), &y1);
	node(OP_RESHAPE, 2, INS(x, I64S("s2", -1, 0, 2)), &y2);
	node(OP_RESHAPE, 2, INS(z, I64S("s3", 0, 3)), &y3)->a.reshape.allowzero = 1;
	node(OP_RESHAPE, 2, INS(f32("one", 1, DIMS(1)), ints("s4", 0, NULL)), &y4);
	infer_ok();
	EXPECT(y1, DT_F32, 2, 12);
	EXPECT(y2, DT_F32, 4, 3, 2);  /* checked against onnx.shape_inference */
	EXPECT(y3, DT_F32, 0, 3);
	EXPECT_SCALAR(y4, DT_F32);
}

TEST(test_flatten_squeeze_unsqueeze_transpose)
{
	int x = f32("x", 4, DIMS(2, 3, 4, 5)), o = f32("o", 4, DIMS(1, 3, 1, 5));
	int fl, f0, sq, sa, us, tr, tp;
	node(OP_FLATTEN, 1, INS(x), &fl)->a.axis.axis = -1;
	node(OP_FLATTEN, 1, INS(x), &f0)->a.axis.axis = 0;
	node(OP_SQUEEZE, 1, INS(o), &sq);
	node(OP_SQUEEZE, 2, INS(o, I64S("a1", -2)), &sa);
	node(OP_UNSQUEEZE, 2, INS(f32("u", 2, DIMS(3, 4)), I64S("a2", -1, 0)), &us);
	node(OP_TRANSPOSE, 1, INS(x), &tr);
	Node *n = node(OP_TRANSPOSE, 1, INS(x), &tp);
	n->a.perm.n = 4;
	memcpy(n->a.perm.p, (const int[]){0, 2, 3, 1}, 4 * sizeof(int));
	infer_ok();
	EXPECT(fl, DT_F32, 24, 5);
	EXPECT(f0, DT_F32, 1, 120);
	EXPECT(sq, DT_F32, 3, 5);
	EXPECT(sa, DT_F32, 1, 3, 5);
	EXPECT(us, DT_F32, 1, 3, 4, 1);
	EXPECT(tr, DT_F32, 5, 4, 3, 2);
	EXPECT(tp, DT_F32, 2, 4, 5, 3);
}

TEST(test_concat_pad_expand_tile)
{
	int a = f32("a", 2, DIMS(2, 3)), b = f32("b", 2, DIMS(2, 5)), c, p, e, t;
	node(OP_CONCAT, 3, INS(a, b, a), &c)->a.axis.axis = -1;
	node(OP_PAD, 2, INS(a, I64S("pads", 1, -1, 2, 3)), &p);
	node(OP_EXPAND, 2, INS(f32("x", 2, DIMS(3, 1)), I64S("shape", 2, 1, 4)), &e);
	node(OP_TILE, 2, INS(a, I64S("rep", 3, 0)), &t);
	infer_ok();
	EXPECT(c, DT_F32, 2, 11);
	EXPECT(p, DT_F32, 5, 5);
	EXPECT(e, DT_F32, 2, 3, 4);
	EXPECT(t, DT_F32, 6, 0);
}

/* Checked with numpy: x[9::-1, 7:0:-3] is (10, 3); x[:, 20:-100:-1] keeps 8. */
TEST(test_slice)
{
	int x = f32("x", 2, DIMS(10, 8)), y1, y2, y3, y4;
	int st = I64S("st", -1, 7), en = ints("en", 2, DIMS(INT64_MIN, 0));
	node(OP_SLICE, 5, INS(x, st, en, I64S("ax", 0, -1), I64S("sp", -1, -3)), &y1);
	node(OP_SLICE, 5, INS(x, I64S("s2", 20), I64S("e2", -100), I64S("a2", 1), I64S("p2", -1)), &y2);
	node(OP_SLICE, 5, INS(x, I64S("s3", 2), I64S("e3", 1000), I64S("a3", 1), I64S("p3", 2)), &y3);
	node(OP_SLICE, 3, INS(x, I64S("s4", -3, 5), I64S("e4", INT64_MAX, 2)), &y4);
	infer_ok();
	EXPECT(y1, DT_F32, 10, 3);
	EXPECT(y2, DT_F32, 10, 8);
	EXPECT(y3, DT_F32, 10, 3);
	EXPECT(y4, DT_F32, 3, 0);
}

TEST(test_gather)
{
	int x = f32("x", 3, DIMS(5, 6, 7)), idx = input("idx", DT_I64, 2, DIMS(2, 3));
	int32_t k = -1;
	int y1, y2;
	node(OP_GATHER, 2, INS(x, idx), &y1)->a.axis.axis = 1;
	node(OP_GATHER, 2, INS(x, scalar("k", DT_I32, &k)), &y2)->a.axis.axis = -1;
	infer_ok();
	EXPECT(y1, DT_F32, 5, 2, 3, 7);
	EXPECT(y2, DT_F32, 5, 6);
}

/* ---- shape arithmetic ---- */

TEST(test_shape_size_constofshape_range)
{
	int x = f32("x", 4, DIMS(2, 3, 4, 5)), s1, s2, s3, sz, co, r1, r2, r3;
	node(OP_SHAPE, 1, INS(x), &s1);
	Node *n = node(OP_SHAPE, 1, INS(x), &s2);
	n->a.shape.start = -3;
	n->a.shape.end = -1;
	n->a.shape.has_end = 1;
	n = node(OP_SHAPE, 1, INS(x), &s3);
	n->a.shape.start = 10;
	node(OP_SIZE, 1, INS(x), &sz);
	n = node(OP_CONSTOFSHAPE, 1, INS(I64S("shp", 2, 0, 3)), &co);
	n->a.cast.to = DT_I32;
	int64_t i1 = 10, i2 = 1, i3 = -3;
	float f1 = 0.5f, f2 = 2.0f, f3 = 0.4f;
	node(OP_RANGE, 3, INS(scalar("a", DT_I64, &i1), scalar("b", DT_I64, &i2),
	                      scalar("c", DT_I64, &i3)), &r1);   /* 10, 7, 4 */
	node(OP_RANGE, 3, INS(scalar("d", DT_F32, &f1), scalar("e", DT_F32, &f2),
	                      scalar("f", DT_F32, &f3)), &r2);   /* ceil(3.75) */
	node(OP_RANGE, 3, INS(scalar("g", DT_I64, &i2), scalar("h", DT_I64, &i1),
	                      scalar("i", DT_I64, &i3)), &r3);   /* empty */
	infer_ok();
	EXPECT(s1, DT_I64, 4);
	EXPECT(s2, DT_I64, 2);
	EXPECT(s3, DT_I64, 0);
	EXPECT_SCALAR(sz, DT_I64);
	EXPECT(co, DT_I32, 2, 0, 3);
	EXPECT(r1, DT_I64, 3);
	EXPECT(r2, DT_F32, 4);
	EXPECT(r3, DT_I64, 0);
}

/* A small network in order: Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm. */
TEST(test_chain)
{
	int x = f32("x", 4, DIMS(1, 3, 32, 32)), w = f32("w", 4, DIMS(8, 3, 3, 3));
	int fw = f32("fw", 2, DIMS(10, 8)), c, r, p, f, y;
	Node *n = node(OP_CONV, 2, INS(x, w), &c);
	n->a.win = window(2, (const int[]){3, 3}, (const int[]){2, 2});
	n->a.win.autopad = PAD_SAME_UPPER;
	node(OP_RELU, 1, INS(c), &r);
	node(OP_GAVGPOOL, 1, INS(r), &p);
	node(OP_FLATTEN, 1, INS(p), &f)->a.axis.axis = 1;
	node(OP_GEMM, 2, INS(f, fw), &y)->a.gemm.tb = 1;
	infer_ok();
	EXPECT(c, DT_F32, 1, 8, 16, 16);
	EXPECT(y, DT_F32, 1, 10);
}

/* ---- errors: each one message, no crash ---- */

TEST(test_err_conv_channels)
{
	int x = f32("x", 4, DIMS(1, 6, 8, 8)), w = f32("w", 4, DIMS(4, 2, 3, 3)), y;
	Node *n = node(OP_CONV, 2, INS(x, w), &y);
	n->a.win = window(2, (const int[]){3, 3}, NULL);
	n->a.win.group = 2;   /* C = 6 but w says 2 * 2 = 4 */
	infer_fails("channels");
}

TEST(test_err_conv_group_and_bias)
{
	int x = f32("x", 4, DIMS(1, 6, 8, 8)), w = f32("w", 4, DIMS(5, 2, 3, 3)), y;
	Node *n = node(OP_CONV, 2, INS(x, w), &y);
	n->a.win = window(2, (const int[]){3, 3}, NULL);
	n->a.win.group = 3;   /* M = 5 is not a multiple of 3 */
	infer_fails("multiple of group");
}

TEST(test_err_conv_bias_length)
{
	int x = f32("x", 4, DIMS(1, 2, 8, 8)), w = f32("w", 4, DIMS(4, 2, 3, 3));
	int b = f32("b", 1, DIMS(3)), y;
	node(OP_CONV, 3, INS(x, w, b), &y)->a.win = window(2, (const int[]){3, 3}, NULL);
	infer_fails("bias 'b' [3] must be [4]");
}

TEST(test_err_window_too_large)
{
	int x = f32("x", 4, DIMS(1, 1, 3, 3)), y;
	node(OP_MAXPOOL, 1, INS(x), &y)->a.win = window(2, (const int[]){5, 5}, NULL);
	infer_fails("larger than the padded input");
}

TEST(test_err_broadcast)
{
	int a = f32("a", 2, DIMS(2, 3)), b = f32("b", 1, DIMS(4)), y;
	node(OP_ADD, 2, INS(a, b), &y);
	infer_fails("does not broadcast");
}

TEST(test_err_rank_mismatch)
{
	int a = f32("a", 2, DIMS(2, 3)), b = f32("b", 3, DIMS(1, 2, 3)), y;
	node(OP_CONCAT, 2, INS(a, b), &y)->a.axis.axis = 0;
	infer_fails("does not match");
}

TEST(test_err_axis_range)
{
	int a = f32("a", 2, DIMS(2, 3)), y;
	node(OP_CONCAT, 2, INS(a, a), &y)->a.axis.axis = 2;
	infer_fails("axis 2 is out of range [-2, 1]");
}

TEST(test_err_reshape_product)
{
	int x = f32("x", 2, DIMS(4, 6)), y;
	node(OP_RESHAPE, 2, INS(x, I64S("s", 5, -1)), &y);
	infer_fails("not a multiple of 5");
}

TEST(test_err_reshape_two_unknowns)
{
	int x = f32("x", 2, DIMS(4, 6)), y;
	node(OP_RESHAPE, 2, INS(x, I64S("s", -1, -1)), &y);
	infer_fails("more than one -1");
}

TEST(test_err_not_const)
{
	int x = f32("x", 2, DIMS(4, 6)), sh, y;
	node(OP_SHAPE, 1, INS(x), &sh);
	node(OP_RESHAPE, 2, INS(x, sh), &y);
	infer_fails("shape input '");
	assert_non_null(strstr(diag.last, "is not a constant; potc needs static shapes"));
}

TEST(test_err_negative_dim)
{
	int y;
	node(OP_CONSTOFSHAPE, 1, INS(I64S("s", 2, -1)), &y)->a.cast.to = DT_F32;
	infer_fails("negative dim");
}

TEST(test_err_pad_negative_result)
{
	int x = f32("x", 1, DIMS(3)), y;
	node(OP_PAD, 2, INS(x, I64S("p", -2, -2)), &y);
	infer_fails("negative");
}

TEST(test_err_rank_above_max)
{
	int x = f32("x", 8, DIMS(1, 1, 1, 1, 1, 1, 1, 2)), y;
	node(OP_UNSQUEEZE, 2, INS(x, I64S("a", 0)), &y);
	infer_fails("rank 9");
}

TEST(test_err_int64_overflow)
{
	int x = f32("x", 2, DIMS(1 << 20, 1)), y;
	node(OP_TILE, 2, INS(x, I64S("r", INT64_MAX / 2, 1)), &y);
	infer_fails("repeated overflows int64");
}

TEST(test_err_too_many_elements)
{
	int y;
	node(OP_CONSTOFSHAPE, 1, INS(I64S("s", 65536, 32768)), &y)->a.cast.to = DT_F32;
	infer_fails("elements");
}

TEST(test_err_dim_too_large)
{
	int y;
	node(OP_EXPAND, 2, INS(f32("x", 0, NULL), I64S("s", 1LL << 31, 0)), &y);
	infer_fails("exceeds");
}

/* Each dim fits, the count is 0, but the product overflows on the way. */
TEST(test_err_product_overflow)
{
	int y;
	node(OP_EXPAND, 2, INS(f32("x", 0, NULL), I64S("s", INT32_MAX, INT32_MAX, INT32_MAX, 0)), &y);
	infer_fails("overflows int64");
}

TEST(test_err_reflect_pad)
{
	int x = f32("x", 1, DIMS(3)), y;
	node(OP_PAD, 2, INS(x, I64S("p", 3, 0)), &y)->a.pad.mode = PADMODE_REFLECT;
	infer_fails("smaller than its size");
}

TEST(test_err_constant_node)
{
	int y;
	node(OP_CONSTANT, 0, NULL, &y);
	infer_fails("internal");
}

/* Dead nodes are skipped. */
TEST(test_dead_node_skipped)
{
	int a = f32("a", 2, DIMS(2, 3)), b = f32("b", 1, DIMS(4)), y;
	node(OP_ADD, 2, INS(a, b), &y)->dead = 1;
	infer_ok();
}

TEST(test_err_matmul_inner)
{
	int a = f32("a", 2, DIMS(2, 3)), b = f32("b", 2, DIMS(4, 5)), y;
	node(OP_MATMUL, 2, INS(a, b), &y);
	infer_fails("inner dims");
}

TEST(test_err_slice_step_zero)
{
	int x = f32("x", 1, DIMS(5)), y;
	node(OP_SLICE, 5, INS(x, I64S("s", 0), I64S("e", 5), I64S("a", 0), I64S("p", 0)), &y);
	infer_fails("step of axis 0 is 0");
}

TEST(test_err_gather_index)
{
	int x = f32("x", 1, DIMS(5)), y;
	node(OP_GATHER, 2, INS(x, I64S("i", 1, 5)), &y);
	infer_fails("index 5");
}

TEST(test_err_squeeze_non_one)
{
	int x = f32("x", 2, DIMS(1, 3)), y;
	node(OP_SQUEEZE, 2, INS(x, I64S("a", 1)), &y);
	infer_fails("cannot squeeze axis 1");
}

TEST(test_err_unknown_input_dim)
{
	int x = f32("x", 2, DIMS(-1, 3)), y;
	node(OP_RELU, 1, INS(x), &y);
	infer_fails("potc needs static shapes");
}

TEST(test_err_missing_input_and_stop)
{
	int x = f32("x", 2, DIMS(2, 3)), y, z;
	node(OP_ADD, 2, INS(x, -1), &y);
	node(OP_RELU, 1, INS(y), &z);   /* not reached: inference stops */
	infer_fails("required input 1 is missing");
}

TEST(test_err_range_delta_zero)
{
	int64_t a = 0, b = 5, c = 0;
	int y;
	node(OP_RANGE, 3, INS(scalar("a", DT_I64, &a), scalar("b", DT_I64, &b),
	                      scalar("c", DT_I64, &c)), &y);
	infer_fails("delta is 0");
}

TEST(test_err_dtype_mismatch)
{
	int a = f32("a", 1, DIMS(3)), b = input("b", DT_I64, 1, DIMS(3)), y;
	node(OP_ADD, 2, INS(a, b), &y);
	infer_fails("one dtype");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_conv_pads_strides_dilation_groups),
		T(test_conv_1d_no_bias),
		T(test_conv_autopad_same_lower),
		T(test_conv_autopad_odd_total),
		T(test_conv_autopad_valid),
		T(test_maxpool_same_upper_lower),
		T(test_pool_ceil_mode),
		T(test_pool_ceil_drops_window_in_end_pad),
		T(test_maxpool_dilation_3d_indices),
		T(test_global_pools),
		T(test_gemm_matmul),
		T(test_batchnorm_softmax_reduce),
		T(test_broadcasting),
		T(test_comparison_where_dtypes),
		T(test_unary_clip_cast_dropout),
		T(test_reshape),
		T(test_flatten_squeeze_unsqueeze_transpose),
		T(test_concat_pad_expand_tile),
		T(test_slice),
		T(test_gather),
		T(test_shape_size_constofshape_range),
		T(test_chain),
		T(test_err_conv_channels),
		T(test_err_conv_group_and_bias),
		T(test_err_conv_bias_length),
		T(test_err_window_too_large),
		T(test_err_broadcast),
		T(test_err_rank_mismatch),
		T(test_err_axis_range),
		T(test_err_reshape_product),
		T(test_err_reshape_two_unknowns),
		T(test_err_not_const),
		T(test_err_negative_dim),
		T(test_err_pad_negative_result),
		T(test_err_rank_above_max),
		T(test_err_int64_overflow),
		T(test_err_too_many_elements),
		T(test_err_dim_too_large),
		T(test_err_product_overflow),
		T(test_err_reflect_pad),
		T(test_err_constant_node),
		T(test_dead_node_skipped),
		T(test_err_matmul_inner),
		T(test_err_slice_step_zero),
		T(test_err_gather_index),
		T(test_err_squeeze_non_one),
		T(test_err_unknown_input_dim),
		T(test_err_missing_input_and_stop),
		T(test_err_range_delta_zero),
		T(test_err_dtype_mismatch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
