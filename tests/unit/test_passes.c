/* Unit tests for passes/: each pass on hand-built graphs.  Numeric passes
 * are checked against the float reference evaluator running the graph as
 * it was before the pass (an independent copy built the same way); the
 * memory planner is checked by brute force; a few results are compared
 * with golden IR dumps in tests/golden/passes/ (set POTC_UPDATE_GOLDEN=1 to
 * rewrite them after an intended change, then review the diff). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ir.h"
#include "passes.h"

#ifndef SOURCE_DIR
#define SOURCE_DIR "."
#endif

/* ---- graph building ---- */

static Diag diag;

static Graph *new_graph(Arena **a)
{
	*a = arena_new();
	diag_init(&diag);
	diag.quiet = 1;
	return ir_graph_new(*a, "test.onnx");
}

static int *append(Graph *g, int *v, int n, int x)
{
	int *w = arena_alloc(g->arena, sizeof(int) * (size_t)(n + 1));
	if (n)
		memcpy(w, v, sizeof(int) * (size_t)n);
	w[n] = x;
	return w;
}

static int input(Graph *g, const char *name, int rank, const int64_t *dim)
{
	int t = ir_tensor_new(g, name, DT_F32, rank, dim);
	g->tensor[t].kind = TK_INPUT;
	g->input = append(g, g->input, g->ninput, t);
	g->ninput++;
	return t;
}

static void output(Graph *g, int t)
{
	g->output = append(g, g->output, g->noutput, t);
	g->noutput++;
	g->tensor[t].is_output = 1;
}

/* A computed tensor; pass_fold's shape inference fills dtype and shape. */
static int value(Graph *g, const char *name)
{
	return ir_tensor_new(g, name, DT_UNDEF, 0, NULL);
}

static int cf(Graph *g, const char *name, int rank, const int64_t *dim, const float *v)
{
	return ir_const_new(g, name, DT_F32, rank, dim, v);
}

static int ci(Graph *g, const char *name, int rank, const int64_t *dim, const int64_t *v)
{
	return ir_const_new(g, name, DT_I64, rank, dim, v);
}

/* Node with one output; returns the node index. */
static int node(Graph *g, Op op, const char *name, int nin, const int *in, int out)
{
	return ir_node_new(g, op, name, nin, in, 1, &out);
}

/* Stable access to a node just created: evaluating g->node before the call
 * that grows it would read a stale array. */
static Node *nodep(Graph *g, int n)
{
	return &g->node[n];
}

static int op1(Graph *g, Op op, int x, const char *yname)
{
	int y = value(g, yname);
	node(g, op, NULL, 1, &x, y);
	return y;
}

static int op2(Graph *g, Op op, int a, int b, const char *yname)
{
	int y = value(g, yname), in[2] = {a, b};
	node(g, op, NULL, 2, in, y);
	return y;
}

static uint32_t seed = 12345;

static float rnd(void)
{
	seed = seed * 1664525u + 1013904223u;
	return (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static float *rnd_buf(int64_t n)
{
	float *v = malloc(sizeof *v * (size_t)(n + 1));
	for (int64_t i = 0; i < n; i++)
		v[i] = rnd();
	return v;
}

static int conv_node(Graph *g, int x, int w, int b, int y, int k, int pad)
{
	int in[3] = {x, w, b};
	int n = node(g, OP_CONV, NULL, b >= 0 ? 3 : 2, in, y);
	Window *win = &g->node[n].a.win;
	win->nsp = 2;
	for (int i = 0; i < 2; i++) {
		win->k[i] = k;
		win->s[i] = win->d[i] = 1;
		win->pad[i] = win->pad[2 + i] = pad;
	}
	win->group = 1;
	return n;
}

/* ---- running ---- */

static void infer(Graph *g)
{
	assert_int_equal(pass_fold(g, &diag), 0);
	assert_int_equal(ir_verify(g, &diag), 0);
}

/* Evaluate a one-input, one-output graph. */
static void run(const Graph *g, const float *x, float *y)
{
	const void *in[1] = {x};
	void *out[1] = {y};
	assert_int_equal(ir_eval(g, in, out, NULL, NULL, &diag), 0);
}

static void assert_close(const float *a, const float *b, int64_t n, double tol)
{
	for (int64_t i = 0; i < n; i++) {
		double err = fabs((double)a[i] - b[i]), scale = fabs((double)a[i]);
		if (err > tol * (scale > 1 ? scale : 1)) {
			fprintf(stderr, "element %lld: %.9g vs %.9g\n", (long long)i, a[i], b[i]);
			fail();
		}
	}
}

static int count_op(const Graph *g, Op op)
{
	int k = 0;
	for (int i = 0; i < g->nnode; i++)
		k += g->node[i].op == op;
	return k;
}

/* Evaluate `before` and `after` (both one-in one-out, same shapes) on one
 * random input and require agreement within tol. */
static void assert_same_function(const Graph *before, const Graph *after, double tol)
{
	const Tensor *x = &before->tensor[before->input[0]];
	const Tensor *y = &before->tensor[before->output[0]];
	int64_t nx = ir_numel(x), ny = ir_numel(y);
	assert_int_equal(ny, ir_numel(&after->tensor[after->output[0]]));
	float *in = rnd_buf(nx), *ya = calloc((size_t)ny + 1, 4), *yb = calloc((size_t)ny + 1, 4);
	run(before, in, ya);
	run(after, in, yb);
	assert_close(ya, yb, ny, tol);
	free(in);
	free(ya);
	free(yb);
}

/* ---- golden dumps ---- */

static char *read_all(FILE *f)
{
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	rewind(f);
	char *s = calloc((size_t)n + 1, 1);
	if (n > 0 && fread(s, 1, (size_t)n, f) != (size_t)n)
		s[0] = 0;
	return s;
}

static void assert_golden(const Graph *g, const char *name)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/tests/golden/passes/%s.expected", SOURCE_DIR, name);
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	ir_dump(g, tmp);
	char *got = read_all(tmp);
	fclose(tmp);
	if (getenv("POTC_UPDATE_GOLDEN")) {
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fputs(got, f);
		fclose(f);
	}
	FILE *f = fopen(path, "r");
	if (!f)
		fprintf(stderr, "cannot read %s\n", path);
	assert_non_null(f);
	char *want = read_all(f);
	fclose(f);
	if (strcmp(got, want) != 0)
		fprintf(stderr, "%s: dump differs.\n--- expected\n%s--- got\n%s", path, want, got);
	assert_string_equal(got, want);
	free(got);
	free(want);
}

/* ---- pass_fold ---- */

/* y = Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0), [0]), [-1])) */
static Graph *shape_chain(Arena **a)
{
	Graph *g = new_graph(a);
	int64_t xd[3] = {2, 3, 4}, one = 1;
	int64_t zero = 0, m1 = -1;
	int x = input(g, "x", 3, xd);
	int s = op1(g, OP_SHAPE, x, "s");
	int b = value(g, "b"), gin[2] = {s, ci(g, "idx", 0, NULL, &zero)};
	node(g, OP_GATHER, "gather", 2, gin, b);
	int u = op2(g, OP_UNSQUEEZE, b, ci(g, "axes", 1, &one, &zero), "u");
	int c = value(g, "c"), cin[2] = {u, ci(g, "minus1", 1, &one, &m1)};
	node(g, OP_CONCAT, "concat", 2, cin, c);
	int y = op2(g, OP_RESHAPE, x, c, "y");
	output(g, y);
	return g;
}

static void fold_shape_chain(void **state)
{
	(void)state;
	Arena *a;
	Graph *g = shape_chain(&a);
	infer(g);
	assert_int_equal(g->nnode, 1);
	const Node *r = &g->node[0];
	assert_int_equal(r->op, OP_RESHAPE);
	const Tensor *shape = &g->tensor[r->in[1]];
	assert_int_equal(shape->kind, TK_CONST);
	assert_int_equal(shape->dtype, DT_I64);
	assert_int_equal(ir_numel(shape), 2);
	assert_int_equal(ir_get_i64(shape, 0), 2);
	assert_int_equal(ir_get_i64(shape, 1), -1);
	const Tensor *y = &g->tensor[r->out[0]];
	assert_int_equal(y->rank, 2);
	assert_int_equal(y->dim[0], 2);
	assert_int_equal(y->dim[1], 12);
	assert_golden(g, "fold_shape_chain");
	arena_free(a);
}

/* y = Reshape(x, [2,12]) + Expand(Cast<f32>(Range(0, Size(x) / 2, 1)), [2,12])
 *     * ConstantOfShape<f32 1.5>(Shape(Reshape(x, [2,12])))
 * Everything but the Reshape, Add and Mul is shape arithmetic. */
static void fold_arith(void **state)
{
	(void)state;
	Arena *a;
	Graph *g = new_graph(&a);
	int64_t xd[3] = {2, 3, 4}, two = 2, i0 = 0, i1 = 1, i2 = 2, sh[2] = {2, 12};
	int x = input(g, "x", 3, xd);
	int x2 = op2(g, OP_RESHAPE, x, ci(g, "sh", 1, &two, sh), "x2");
	int n = op1(g, OP_SIZE, x, "n");
	int h = op2(g, OP_DIV, n, ci(g, "two", 0, NULL, &i2), "h");
	int r = value(g, "r"), rin[3] = {ci(g, "zero", 0, NULL, &i0), h, ci(g, "one", 0, NULL, &i1)};
	node(g, OP_RANGE, NULL, 3, rin, r);
	int rf = value(g, "rf");
	nodep(g, node(g, OP_CAST, NULL, 1, &r, rf))->a.cast.to = DT_F32;
	int e = op2(g, OP_EXPAND, rf, op1(g, OP_SHAPE, x2, "s2"), "e");
	int k = value(g, "k"), s3 = op1(g, OP_SHAPE, x2, "s3");
	int kn = node(g, OP_CONSTOFSHAPE, NULL, 1, &s3, k);
	g->node[kn].a.cast.to = DT_F32;
	g->node[kn].a.cast.value = 1.5;
	int y = op2(g, OP_MUL, op2(g, OP_ADD, x2, e, "sum"), k, "y");
	output(g, y);
	infer(g);
	assert_int_equal(g->nnode, 3);
	assert_int_equal(count_op(g, OP_RESHAPE) + count_op(g, OP_ADD) + count_op(g, OP_MUL), 3);
	float in[24], out[24];
	for (int i = 0; i < 24; i++)
		in[i] = (float)i * 0.25f;
	run(g, in, out);
	for (int i = 0; i < 24; i++)
		assert_float_equal(out[i], (in[i] + (float)(i % 12)) * 1.5f, 1e-6);
	arena_free(a);
}

/* A fill of more than 64 MiB stays a node instead of becoming a constant. */
static void fold_size_guard(void **state)
{
	(void)state;
	Arena *a;
	Graph *g = new_graph(&a);
	int64_t one = 1, big = ((int64_t)64 << 20) / 4 + 1, four = 4;
	int x = input(g, "x", 1, &one);
	int k = value(g, "k"), s = ci(g, "shape", 1, &one, &big);
	nodep(g, node(g, OP_CONSTOFSHAPE, NULL, 1, &s, k))->a.cast.to = DT_F32;
	int small = value(g, "small"), s4 = ci(g, "shape4", 1, &one, &four);
	nodep(g, node(g, OP_CONSTOFSHAPE, NULL, 1, &s4, small))->a.cast.to = DT_F32;
	output(g, op2(g, OP_ADD, x, k, "y"));
	output(g, op2(g, OP_ADD, x, small, "z"));
	infer(g);
	assert_int_equal(count_op(g, OP_CONSTOFSHAPE), 1);
	assert_int_equal(g->tensor[ir_find_tensor(g, "k")].kind, TK_VALUE);
	assert_int_equal(g->tensor[ir_find_tensor(g, "small")].kind, TK_CONST);
	arena_free(a);
}

/* ---- pass_bnfold ---- */

/* x[1,3,5,5] -> Conv(w[4,3,3,3], b?) -> BN -> y; when share, a second Conv
 * (no BN) reads the same weights and their results are added. */
static Graph *conv_bn(Arena **a, int with_bias, int share)
{
	Graph *g = new_graph(a);
	seed = 99;
	int64_t xd[4] = {1, 3, 5, 5}, wd[4] = {4, 3, 3, 3}, four = 4;
	int x = input(g, "x", 4, xd);
	float *wv = rnd_buf(108), *bv = rnd_buf(4), p[4][4];
	for (int i = 0; i < 4; i++)
		for (int c = 0; c < 4; c++)
			p[i][c] = i == 3 ? 0.5f + rnd() * rnd() : rnd();
	int w = cf(g, "w", 4, wd, wv);
	int b = with_bias ? cf(g, "b", 1, &four, bv) : -1;
	int c = value(g, "c");
	conv_node(g, x, w, b, c, 3, 1);
	int y = value(g, "y"), bin[5] = {c};
	for (int i = 0; i < 4; i++)
		bin[1 + i] = cf(g, NULL, 1, &four, p[i]);
	nodep(g, node(g, OP_BATCHNORM, "bn", 5, bin, y))->a.bn.eps = 1e-5f;
	if (share) {
		int c2 = value(g, "c2");
		conv_node(g, x, w, -1, c2, 3, 1);
		y = op2(g, OP_ADD, y, c2, "sum");
	}
	output(g, y);
	free(wv);
	free(bv);
	return g;
}

static void bnfold_conv_case(int with_bias, int share)
{
	Arena *a1, *a2;
	Graph *ref = conv_bn(&a1, with_bias, share), *g = conv_bn(&a2, with_bias, share);
	infer(ref);
	infer(g);
	const float *wdata = g->tensor[ir_find_tensor(g, "w")].data;
	float w0 = wdata[0];
	assert_int_equal(pass_bnfold(g, &diag), 0);
	assert_int_equal(ir_verify(g, &diag), 0);
	assert_int_equal(count_op(g, OP_BATCHNORM), 0);
	assert_int_equal(g->node[0].nin, 3);
	assert_true(ir_is_const(g, g->node[0].in[2]));
	/* The old weights are untouched (the arena still holds them); the
	 * folded Conv has its own, the other Conv still reads the old ones. */
	assert_float_equal(wdata[0], w0, 0);
	assert_int_not_equal(g->node[0].in[1], ir_find_tensor(g, "w"));
	if (share)
		assert_int_equal(g->node[1].in[1], ir_find_tensor(g, "w"));
	else
		assert_int_equal(ir_find_tensor(g, "w"), -1);
	assert_same_function(ref, g, 1e-5);
	arena_free(a1);
	arena_free(a2);
}

static void bnfold_conv(void **state)
{
	(void)state;
	bnfold_conv_case(1, 0);
	bnfold_conv_case(0, 0);
	bnfold_conv_case(1, 1);
}

/* BN stays when the Conv's output has another reader. */
static void bnfold_keeps_shared_output(void **state)
{
	(void)state;
	Arena *a;
	Graph *g = conv_bn(&a, 1, 0);
	int c = ir_find_tensor(g, "c");
	output(g, op1(g, OP_RELU, c, "other"));
	infer(g);
	assert_int_equal(pass_bnfold(g, &diag), 0);
	assert_int_equal(count_op(g, OP_BATCHNORM), 1);
	arena_free(a);
}

/* Gemm [M=3,K=5] x [K,N=4] with the C shapes Gemm may broadcast. */
static Graph *gemm_bn(Arena **a, int tb, float alpha, float beta, int crank, const int64_t *cdim)
{
	Graph *g = new_graph(a);
	seed = 7;
	int64_t xd[2] = {3, 5}, bd[2] = {tb ? 4 : 5, tb ? 5 : 4}, four = 4;
	int x = input(g, "x", 2, xd);
	float *bv = rnd_buf(20), *cv = rnd_buf(12), p[4][4];
	for (int i = 0; i < 4; i++)
		for (int c = 0; c < 4; c++)
			p[i][c] = i == 3 ? 0.5f + rnd() * rnd() : rnd();
	int in[3] = {x, cf(g, "B", 2, bd, bv), crank >= 0 ? cf(g, "C", crank, cdim, cv) : -1};
	int m = value(g, "m");
	Node *n = nodep(g, node(g, OP_GEMM, "gemm", crank >= 0 ? 3 : 2, in, m));
	n->a.gemm.alpha = alpha;
	n->a.gemm.beta = beta;
	n->a.gemm.tb = tb;
	int y = value(g, "y"), bin[5] = {m};
	for (int i = 0; i < 4; i++)
		bin[1 + i] = cf(g, NULL, 1, &four, p[i]);
	nodep(g, node(g, OP_BATCHNORM, "bn", 5, bin, y))->a.bn.eps = 1e-3f;
	output(g, y);
	free(bv);
	free(cv);
	return g;
}

static void bnfold_gemm(void **state)
{
	(void)state;
	static const struct { int tb; float alpha, beta; int crank; int64_t cdim[2]; } cases[] = {
		{0, 1, 1, -1, {0}}, {1, 0.5f, 2, 1, {4}}, {1, 1, -1, 2, {3, 4}},
		{0, 2, 0.5f, 1, {1}}, {0, 1, 3, 2, {3, 1}}, {1, 1, 1, 2, {1, 4}}, {0, 1, 1, 0, {0}},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		Arena *a1, *a2;
		Graph *ref = gemm_bn(&a1, cases[i].tb, cases[i].alpha, cases[i].beta, cases[i].crank, cases[i].cdim);
		Graph *g = gemm_bn(&a2, cases[i].tb, cases[i].alpha, cases[i].beta, cases[i].crank, cases[i].cdim);
		infer(ref);
		infer(g);
		assert_int_equal(pass_bnfold(g, &diag), 0);
		assert_int_equal(ir_verify(g, &diag), 0);
		assert_int_equal(g->nnode, 1);
		assert_float_equal(g->node[0].a.gemm.beta, 1.0, 0);
		assert_same_function(ref, g, 1e-5);
		arena_free(a1);
		arena_free(a2);
	}
}

/* ---- pass_views ---- */

/* x -> Relu -> r -> Identity -> i -> Dropout -> dr -> Sigmoid -> y */
static void views_chain(void **state)
{
	(void)state;
	Arena *a;
	Graph *g = new_graph(&a);
	int64_t xd[2] = {2, 3};
	int x = input(g, "x", 2, xd);
	int r = op1(g, OP_RELU, x, "r");
	int i = op1(g, OP_IDENTITY, r, "i");
	int dr = value(g, "dr"), mask = value(g, "mask"), outs[2] = {dr, mask};
	ir_node_new(g, OP_DROPOUT, "drop", 1, &i, 2, outs);
	output(g, op1(g, OP_SIGMOID, dr, "y"));
	infer(g);
	assert_int_equal(pass_views(g, &diag), 0);
	assert_int_equal(ir_verify(g, &diag), 0);
	assert_int_equal(g->nnode, 2);
	assert_int_equal(g->node[1].op, OP_SIGMOID);
	assert_int_equal(g->node[1].in[0], g->node[0].out[0]);
	assert_golden(g, "views_chain");
	arena_free(a);
}

/* An Identity graph output: its input takes over the output and its name. */
static void views_output_rename(void **state)
{
	(void)state;
	Arena *a;
	Graph *g = new_graph(&a);
	int64_t xd[2] = {2, 3};
	int x = input(g, "x", 2, xd);
	output(g, op1(g, OP_IDENTITY, op1(g, OP_RELU, x, "r"), "y"));
	infer(g);
	assert_int_equal(pass_views(g, &diag), 0);
	assert_int_equal(ir_verify(g, &diag), 0);
	assert_int_equal(g->nnode, 1);
	int y = g->output[0];
	assert_int_equal(g->node[0].out[0], y);
	assert_string_equal(g->tensor[y].name, "y");
	assert_true(g->tensor[y].is_output);
	arena_free(a);
}

/* Identity from a graph input, and Identity of another output, stay. */
static void views_keeps_copies(void **state)
{
	(void)state;
	Arena *a;
	Graph *g = new_graph(&a);
	int64_t xd[2] = {2, 3};
	int x = input(g, "x", 2, xd);
	output(g, op1(g, OP_IDENTITY, x, "y"));
	int r = op1(g, OP_RELU, x, "r");
	output(g, r);
	int dr = value(g, "z"), mask = value(g, "mask"), outs[2] = {dr, mask};
	ir_node_new(g, OP_DROPOUT, "drop", 1, &r, 2, outs);
	output(g, dr);
	infer(g);
	assert_int_equal(pass_views(g, &diag), 0);
	assert_int_equal(ir_verify(g, &diag), 0);
	assert_int_equal(g->nnode, 3);
	assert_int_equal(count_op(g, OP_IDENTITY), 2);
	assert_int_equal(g->node[2].nout, 1);
	arena_free(a);
}

static void views_dropout_mask(void **state)
{
	(void)state;
	Arena *a;
	Graph *g = new_graph(&a);
	int64_t xd[2] = {2, 3};
	int x = input(g, "x", 2, xd);
	int dr = value(g, "dr"), mask = value(g, "mask"), outs[2] = {dr, mask};
	ir_node_new(g, OP_DROPOUT, "drop", 1, &x, 2, outs);
	output(g, dr);
	output(g, mask);
	infer(g);
	assert_int_not_equal(pass_views(g, &diag), 0);
	assert_non_null(strstr(diag.last, "Dropout mask output is not supported"));
	assert_non_null(strstr(diag.last, "node \"drop\" (Dropout)"));
	arena_free(a);
}

/* ---- pass_dce ---- */

static void dce_removes_unreachable(void **state)
{
	(void)state;
	Arena *a;
	Graph *g = new_graph(&a);
	int64_t xd[2] = {2, 3};
	int x = input(g, "x", 2, xd);
	int r = op1(g, OP_RELU, x, "r");
	int dead = op1(g, OP_SIGMOID, op1(g, OP_TANH, x, "t"), "s");
	op2(g, OP_ADD, dead, r, "dead_too");
	output(g, op1(g, OP_NEG, r, "y"));
	infer(g);
	assert_int_equal(pass_dce(g, &diag), 0);
	assert_int_equal(ir_verify(g, &diag), 0);
	assert_int_equal(g->nnode, 2);
	assert_int_equal(g->node[0].op, OP_RELU);
	assert_int_equal(g->node[1].op, OP_NEG);
	assert_int_equal(ir_find_tensor(g, "t"), -1);
	assert_int_equal(g->ninput, 1);
	arena_free(a);
}

/* ---- pass_fuse ---- */

/* x[1,2,6,6] -> Conv -> Clip(0,6) -> MaxPool -> HardSwish -> GAvgPool
 *   -> Sigmoid -> Flatten -> Gemm -> LeakyRelu -> MatMul -> HardSigmoid
 *   -> Add(bias) -> Relu -> y */
static Graph *fuse_net(Arena **a)
{
	Graph *g = new_graph(a);
	seed = 3;
	int64_t xd[4] = {1, 2, 6, 6}, wd[4] = {3, 2, 3, 3}, three = 3, gd[2] = {3, 4}, md[2] = {4, 2}, two = 2;
	float lo = 0, hi = 6, *wv = rnd_buf(54), *gv = rnd_buf(12), *mv = rnd_buf(8), bias[2] = {0.25f, -0.5f};
	int x = input(g, "x", 4, xd);
	int c = value(g, "c");
	conv_node(g, x, cf(g, "w", 4, wd, wv), cf(g, "b", 1, &three, wv + 20), c, 3, 1);
	int clip = value(g, "clip"), cin[3] = {c, cf(g, "lo", 0, NULL, &lo), cf(g, "hi", 0, NULL, &hi)};
	node(g, OP_CLIP, NULL, 3, cin, clip);
	int p = value(g, "p");
	Window *w = &nodep(g, node(g, OP_MAXPOOL, NULL, 1, &clip, p))->a.win;
	*w = (Window){.nsp = 2, .k = {2, 2}, .s = {2, 2}, .d = {1, 1}};
	int hs = op1(g, OP_HARDSWISH, p, "hs");
	int sg = op1(g, OP_SIGMOID, op1(g, OP_GAVGPOOL, hs, "gap"), "sg");
	int fl = value(g, "fl");
	nodep(g, node(g, OP_FLATTEN, NULL, 1, &sg, fl))->a.axis.axis = 1;
	int gm = value(g, "gm"), gin[2] = {fl, cf(g, "G", 2, gd, gv)};
	Node *gn = nodep(g, node(g, OP_GEMM, NULL, 2, gin, gm));
	gn->a.gemm.alpha = gn->a.gemm.beta = 1;
	int lr = value(g, "lr");
	nodep(g, node(g, OP_LEAKYRELU, NULL, 1, &gm, lr))->a.ab.alpha = 0.1f;
	int mm = op2(g, OP_MATMUL, lr, cf(g, "M", 2, md, mv), "mm");
	int hsg = value(g, "hsg");
	Node *hn = nodep(g, node(g, OP_HARDSIGMOID, NULL, 1, &mm, hsg));
	hn->a.ab.alpha = 0.2f;
	hn->a.ab.beta = 0.5f;
	int ad = op2(g, OP_ADD, hsg, cf(g, "bias", 1, &two, bias), "ad");
	output(g, op1(g, OP_RELU, ad, "y"));
	free(wv);
	free(gv);
	free(mv);
	return g;
}

static void fuse_all_kinds(void **state)
{
	(void)state;
	Arena *a1, *a2;
	Graph *ref = fuse_net(&a1), *g = fuse_net(&a2);
	infer(ref);
	infer(g);
	assert_int_equal(pass_fuse(g, &diag), 0);
	assert_int_equal(ir_verify(g, &diag), 0);
	static const struct { Op op; ActKind act; } want[] = {
		{OP_CONV, ACT_CLIP}, {OP_MAXPOOL, ACT_HSWISH}, {OP_GAVGPOOL, ACT_SIGMOID},
		{OP_FLATTEN, ACT_NONE}, {OP_GEMM, ACT_LEAKY}, {OP_MATMUL, ACT_HSIGMOID},
		{OP_ADD, ACT_RELU},
	};
	assert_int_equal(g->nnode, 7);
	for (int i = 0; i < 7; i++) {
		assert_int_equal(g->node[i].op, want[i].op);
		assert_int_equal(g->node[i].act.kind, want[i].act);
	}
	assert_float_equal(g->node[0].act.a, 0, 0);
	assert_float_equal(g->node[0].act.b, 6, 0);
	assert_float_equal(g->node[4].act.a, 0.1f, 0);
	assert_string_equal(g->tensor[g->output[0]].name, "y");
	assert_same_function(ref, g, 1e-6);
	assert_golden(g, "fuse_all_kinds");
	arena_free(a1);
	arena_free(a2);
}

/* Not fused: a second reader, a graph-output input, an unbounded Clip, a
 * producer that already has an activation, an unsupported producer. */
static void fuse_leaves_unsafe(void **state)
{
	(void)state;
	Arena *a;
	Graph *g = new_graph(&a);
	int64_t xd[2] = {2, 3};
	int x = input(g, "x", 2, xd);
	int s1 = op2(g, OP_ADD, x, x, "s1");
	output(g, op1(g, OP_RELU, s1, "r1"));
	output(g, op1(g, OP_NEG, s1, "n1"));
	int s2 = op2(g, OP_ADD, x, x, "s2");
	output(g, s2);
	output(g, op1(g, OP_RELU, s2, "r2"));
	int s3 = op2(g, OP_ADD, x, x, "s3");
	output(g, op1(g, OP_CLIP, s3, "c3"));
	int s4 = op2(g, OP_SUB, x, x, "s4");
	output(g, op1(g, OP_RELU, s4, "r4"));
	int s5 = op2(g, OP_ADD, x, x, "s5");
	output(g, op1(g, OP_SIGMOID, op1(g, OP_RELU, s5, "r5"), "g5"));
	infer(g);
	int before = g->nnode;
	assert_int_equal(pass_fuse(g, &diag), 0);
	assert_int_equal(ir_verify(g, &diag), 0);
	assert_int_equal(g->nnode, before - 1);   /* only s5's Relu */
	assert_int_equal(count_op(g, OP_SIGMOID), 1);
	arena_free(a);
}

/* HardSigmoid(v; alpha, beta) as a node; returns its output. */
static int hsig(Graph *g, int v, float alpha, float beta, const char *name)
{
	int y = value(g, name);
	Node *n = nodep(g, node(g, OP_HARDSIGMOID, NULL, 1, &v, y));
	n->a.ab.alpha = alpha;
	n->a.ab.beta = beta;
	return y;
}

/* x[1,2,6,6] -> Conv -> Mul(c, HardSigmoid(c)) -> Conv 1x1
 *   -> Mul(HardSigmoid(c2), c2) -> y: PyTorch's opset-13 HardSwish, both
 * operand orders, each folded into its Conv. */
static Graph *hswish_net(Arena **a)
{
	Graph *g = new_graph(a);
	seed = 7;
	int64_t xd[4] = {1, 2, 6, 6}, wd[4] = {3, 2, 3, 3}, w2d[4] = {4, 3, 1, 1}, three = 3;
	float *wv = rnd_buf(54), *w2 = rnd_buf(12);
	for (int i = 0; i < 54; i++)
		wv[i] *= 4;   /* pre-activations well past +-3: both clamps are hit */
	int x = input(g, "x", 4, xd);
	int c = value(g, "c"), c2 = value(g, "c2");
	conv_node(g, x, cf(g, "w", 4, wd, wv), cf(g, "b", 1, &three, wv + 20), c, 3, 1);
	int m = op2(g, OP_MUL, c, hsig(g, c, 1.0f / 6, 0.5f, "hs"), "m");
	conv_node(g, m, cf(g, "w2", 4, w2d, w2), -1, c2, 1, 0);
	output(g, op2(g, OP_MUL, hsig(g, c2, 1.0f / 6, 0.5f, "hs2"), c2, "y"));
	free(wv);
	free(w2);
	return g;
}

static void fuse_hswish_pattern(void **state)
{
	(void)state;
	Arena *a1, *a2;
	Graph *ref = hswish_net(&a1), *g = hswish_net(&a2);
	infer(ref);
	infer(g);
	assert_int_equal(pass_fuse(g, &diag), 0);
	assert_int_equal(ir_verify(g, &diag), 0);
	assert_int_equal(g->nnode, 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(g->node[i].op, OP_CONV);
		assert_int_equal(g->node[i].act.kind, ACT_HSWISH);
	}
	assert_string_equal(g->tensor[g->output[0]].name, "y");
	assert_same_function(ref, g, 1e-6);
	assert_golden(g, "fuse_hswish_pattern");
	arena_free(a1);
	arena_free(a2);
}

/* Left as Mul and HardSigmoid: other alpha or beta, a second reader of the
 * HardSigmoid, a HardSigmoid that is a graph output, a Mul by something
 * other than the HardSigmoid's input. */
static void fuse_hswish_leaves_others(void **state)
{
	(void)state;
	Arena *a;
	Graph *g = new_graph(&a);
	int64_t xd[2] = {2, 3};
	int x = input(g, "x", 2, xd), z = input(g, "z", 2, xd);
	output(g, op2(g, OP_MUL, x, hsig(g, x, 0.2f, 0.5f, "h1"), "m1"));
	output(g, op2(g, OP_MUL, x, hsig(g, x, 1.0f / 6, 0.25f, "h2"), "m2"));
	int h3 = hsig(g, x, 1.0f / 6, 0.5f, "h3");
	output(g, op2(g, OP_MUL, x, h3, "m3"));
	output(g, op1(g, OP_NEG, h3, "n3"));
	int h4 = hsig(g, x, 1.0f / 6, 0.5f, "h4");
	output(g, h4);
	output(g, op2(g, OP_MUL, h4, x, "m4"));
	output(g, op2(g, OP_MUL, z, hsig(g, x, 1.0f / 6, 0.5f, "h5"), "m5"));
	output(g, op2(g, OP_MUL, hsig(g, x, 1.0f / 6 + 1e-7f, 0.5f, "h6"), x, "m6"));
	infer(g);
	assert_int_equal(pass_fuse(g, &diag), 0);
	assert_int_equal(ir_verify(g, &diag), 0);
	assert_int_equal(count_op(g, OP_MUL), 5);
	assert_int_equal(count_op(g, OP_HARDSIGMOID), 5);
	assert_int_equal(count_op(g, OP_HARDSWISH), 1);   /* m6: alpha within 1e-6 */
	arena_free(a);
}

/* ---- pass_memplan ---- */

static int root(const Graph *g, int t)
{
	while (g->tensor[t].alias >= 0)
		t = g->tensor[t].alias;
	return t;
}

static int64_t al16(size_t n)
{
	return ((int64_t)n + 15) & ~(int64_t)15;
}

/* Independent check of a plan: views alias exactly when expected, every
 * other computed non-output tensor has 16-aligned bytes, and tensors alive
 * at the same node never share bytes.  Returns the largest live set. */
static int64_t check_plan(const Graph *g)
{
	int nt = g->ntensor;
	int *first = malloc(sizeof(int) * (size_t)nt), *last = malloc(sizeof(int) * (size_t)nt);
	for (int t = 0; t < nt; t++)
		first[t] = last[t] = -1;
	for (int i = 0; i < g->nnode; i++) {
		const Node *n = &g->node[i];
		int y = n->out[0];
		int view = (ir_opflags[n->op] & F_VIEW) && !g->tensor[y].is_output;
		assert_int_equal(g->tensor[y].alias, view ? root(g, n->in[0]) : -1);
		for (int j = 0; j < n->nout; j++)
			if (n->out[j] >= 0)
				first[n->out[j]] = last[n->out[j]] = i;
		for (int j = 0; j < n->nin; j++)
			if (n->in[j] >= 0 && first[root(g, n->in[j])] >= 0)
				last[root(g, n->in[j])] = i;
	}
	int64_t sum = 0, maxlive = 0;
	for (int t = 0; t < nt; t++) {
		const Tensor *T = &g->tensor[t];
		int owns = T->kind == TK_VALUE && !T->is_output && T->alias < 0;
		assert_int_equal(T->off >= 0, owns);
		if (!owns)
			continue;
		assert_int_equal(T->off % 16, 0);
		assert_true(T->off + (int64_t)ir_nbytes(T) <= g->arena_bytes);
		sum += al16(ir_nbytes(T));
		for (int u = t + 1; u < nt; u++) {
			const Tensor *U = &g->tensor[u];
			if (U->off < 0 || first[u] > last[t] || first[t] > last[u])
				continue;
			assert_true(T->off + (int64_t)ir_nbytes(T) <= U->off || U->off + (int64_t)ir_nbytes(U) <= T->off);
		}
	}
	for (int i = 0; i < g->nnode; i++) {
		int64_t live = 0;
		for (int t = 0; t < nt; t++)
			if (g->tensor[t].off >= 0 && first[t] <= i && i <= last[t])
				live += al16(ir_nbytes(&g->tensor[t]));
		maxlive = live > maxlive ? live : maxlive;
	}
	assert_true(g->arena_bytes <= sum);
	assert_true(g->arena_bytes >= maxlive);
	free(first);
	free(last);
	return maxlive;
}

/* 200 random Add / Relu / Reshape nodes over earlier tensors of random
 * sizes (shapes are set by hand: the planner only needs byte counts). */
static Graph *random_dag(Arena **a, uint32_t s)
{
	Graph *g = new_graph(a);
	seed = s;
	int64_t d = 64, one = 1;
	int pool[256], np = 0;
	for (int i = 0; i < 3; i++)
		pool[np++] = input(g, NULL, 1, &d);
	int shape = ci(g, "shape", 1, &one, &d);
	for (int i = 0; i < 200; i++) {
		int64_t n = 1 + (int64_t)((rnd() + 1) * 2000);
		int kind = (int)((rnd() + 1) * 3) % 3;
		int x = pool[(int)((rnd() + 1) * 0.5f * np) % np];
		int b = pool[np - 1 - (int)((rnd() + 1) * 2) % np];
		int y = ir_tensor_new(g, NULL, DT_F32, 1, &n);
		int in[2] = {x, kind == 2 ? shape : b};
		if (kind == 2)
			g->tensor[y] .dim[0] = g->tensor[x].dim[0];
		node(g, kind == 0 ? OP_RELU : kind == 1 ? OP_ADD : OP_RESHAPE, NULL, kind ? 2 : 1, in, y);
		pool[np++] = y;
		if (rnd() > 0.9f)
			output(g, y);
	}
	output(g, pool[np - 1]);
	return g;
}

static void memplan_random(void **state)
{
	(void)state;
	for (uint32_t s = 1; s <= 20; s++) {
		Arena *a;
		Graph *g = random_dag(&a, s);
		assert_int_equal(ir_verify(g, &diag), 0);
		assert_int_equal(pass_memplan(g, &diag), 0);
		int64_t maxlive = check_plan(g);
		if (s == 1)
			fprintf(stderr, "memplan random DAG: arena %lld, largest live set %lld\n",
			        (long long)g->arena_bytes, (long long)maxlive);
		arena_free(a);
	}
}

/* A MobileNet-like chain with a residual: the plan must reach the largest
 * live set exactly, and views must alias their root. */
static void memplan_chain(void **state)
{
	(void)state;
	Arena *a;
	Graph *g = new_graph(&a);
	int64_t xd[4] = {1, 8, 16, 16}, wd[4] = {8, 8, 1, 1}, wd2[4] = {16, 8, 1, 1}, fd[2] = {1, 4096};
	float w[128] = {0};
	int x = input(g, "x", 4, xd);
	int c1 = value(g, "c1"), c2 = value(g, "c2"), c3 = value(g, "c3");
	conv_node(g, x, cf(g, "w1", 4, wd, w), -1, c1, 1, 0);
	conv_node(g, c1, cf(g, "w2", 4, wd, w), -1, c2, 1, 0);
	int s = op2(g, OP_ADD, c1, c2, "s");
	conv_node(g, s, cf(g, "w3", 4, wd2, w), -1, c3, 1, 0);
	int f = op2(g, OP_RESHAPE, c3, ci(g, "fs", 1, (int64_t[]){2}, fd), "f");
	output(g, op1(g, OP_RELU, op1(g, OP_RELU, f, "r"), "y"));
	infer(g);
	assert_int_equal(pass_memplan(g, &diag), 0);
	int64_t maxlive = check_plan(g);
	assert_int_equal(g->arena_bytes, maxlive);
	int fi = ir_find_tensor(g, "f");
	assert_int_equal(g->tensor[fi].alias, ir_find_tensor(g, "c3"));
	assert_int_equal(g->tensor[fi].off, -1);
	assert_int_equal(g->tensor[x].off, -1);
	assert_int_equal(g->tensor[g->output[0]].off, -1);
	assert_golden(g, "memplan_chain");
	arena_free(a);
}

/* The whole float pipeline on Conv -> BN -> Relu, against the original. */
static void pipeline_conv_bn_relu(void **state)
{
	(void)state;
	Arena *a1, *a2;
	Graph *ref = conv_bn(&a1, 1, 0), *g = conv_bn(&a2, 1, 0);
	output(ref, op1(ref, OP_RELU, ref->output[0], "r"));
	ref->tensor[ref->output[0]].is_output = 0;
	ref->output[0] = ref->output[1];
	ref->noutput = 1;
	output(g, op1(g, OP_RELU, g->output[0], "r"));
	g->tensor[g->output[0]].is_output = 0;
	g->output[0] = g->output[1];
	g->noutput = 1;
	infer(ref);
	infer(g);
	int (*const pass[])(Graph *, Diag *) = {pass_bnfold, pass_views, pass_dce, pass_fuse, pass_memplan};
	for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++) {
		assert_int_equal(pass[i](g, &diag), 0);
		assert_int_equal(ir_verify(g, &diag), 0);
	}
	assert_int_equal(g->nnode, 1);
	assert_int_equal(g->node[0].act.kind, ACT_RELU);
	assert_same_function(ref, g, 1e-5);
	assert_golden(g, "pipeline_conv_bn_relu");
	arena_free(a1);
	arena_free(a2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fold_shape_chain),
		cmocka_unit_test(fold_arith),
		cmocka_unit_test(fold_size_guard),
		cmocka_unit_test(bnfold_conv),
		cmocka_unit_test(bnfold_keeps_shared_output),
		cmocka_unit_test(bnfold_gemm),
		cmocka_unit_test(views_chain),
		cmocka_unit_test(views_output_rename),
		cmocka_unit_test(views_keeps_copies),
		cmocka_unit_test(views_dropout_mask),
		cmocka_unit_test(dce_removes_unreachable),
		cmocka_unit_test(fuse_all_kinds),
		cmocka_unit_test(fuse_leaves_unsafe),
		cmocka_unit_test(fuse_hswish_pattern),
		cmocka_unit_test(fuse_hswish_leaves_others),
		cmocka_unit_test(memplan_random),
		cmocka_unit_test(memplan_chain),
		cmocka_unit_test(pipeline_conv_bn_relu),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
