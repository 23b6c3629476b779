/* The C backend against the reference evaluator: small hand-built graphs
 * are planned (pass_memplan), emitted with their driver, compiled with
 * $CC (default cc) -std=c99 -pedantic -Wall -Wextra -Werror -O2, run on
 * random .npy inputs, and their outputs compared with ir_eval's (floats
 * within 1e-5 relative; the kernels keep eval's summation order, so most
 * are bit-identical).  Set POTC_KEEP=1 to keep the temporary directories,
 * POTC_TEST_CFLAGS to replace -O2 (e.g. with sanitizers). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emit_c.h"
#include "emit_impl.h"
#include "passes.h"
#include "npy_io.c"

/* ---- graph builder ---- */

enum { MAXIO = 32 };

typedef struct {
	Arena *a;
	Graph *g;
	Diag d;
	int in[MAXIO], nin, out[MAXIO], nout;
	double lo[MAXIO], hi[MAXIO];   /* random range of each input */
	int arena_extern;
	unsigned seed;
} B;

static B *b_new(void)
{
	B *b = calloc(1, sizeof *b);
	b->a = arena_new();
	b->g = ir_graph_new(b->a, "test.onnx");
	diag_init(&b->d);
	b->seed = 12345;
	return b;
}

static void b_free(B *b)
{
	arena_free(b->a);
	free(b);
}

static double rnd(B *b)
{
	b->seed = b->seed * 1103515245u + 12345u;
	return (b->seed >> 8) / (double)(1u << 24);
}

static int b_in(B *b, DType dt, int rank, const int64_t *dim)
{
	char name[16];
	snprintf(name, sizeof name, "in%d", b->nin);
	int t = ir_tensor_new(b->g, name, dt, rank, dim);
	b->g->tensor[t].kind = TK_INPUT;
	b->lo[b->nin] = dt == DT_F32 ? -1 : -5;
	b->hi[b->nin] = dt == DT_F32 ? 1 : 5;
	b->in[b->nin++] = t;
	return t;
}

/* A constant; random floats in [-1, 1] when data is NULL. */
static int b_const(B *b, DType dt, int rank, const int64_t *dim, const void *data)
{
	int t = ir_const_new(b->g, NULL, dt, rank, dim, data);
	if (!data && dt == DT_F32)
		for (int64_t i = 0; i < ir_numel(&b->g->tensor[t]); i++)
			((float *)b->g->tensor[t].data)[i] = (float)(2 * rnd(b) - 1);
	return t;
}

static int b_i64(B *b, int n, const int64_t *v)
{
	int64_t dim[1] = {n};
	return b_const(b, DT_I64, 1, dim, v);
}

static int b_f32(B *b, float v)
{
	return b_const(b, DT_F32, 0, NULL, &v);
}

static int b_val(B *b)
{
	return ir_tensor_new(b->g, NULL, DT_UNDEF, 0, NULL);
}

/* Node op(in...) -> one new tensor; returns the node's index. */
static int b_node(B *b, Op op, int nin, const int *in, int *out)
{
	int y = b_val(b);
	*out = y;
	return ir_node_new(b->g, op, NULL, nin, in, 1, &y);
}

static Node *N(B *b, int id)
{
	return &b->g->node[id];
}

static void b_out(B *b, int t)
{
	b->g->tensor[t].is_output = 1;
	b->out[b->nout++] = t;
}

static void gemm_attr(Node *n, float alpha, float beta, int ta, int tb)
{
	n->a.gemm.alpha = alpha;
	n->a.gemm.beta = beta;
	n->a.gemm.ta = ta;
	n->a.gemm.tb = tb;
}

static void win(Node *n, int nsp, const int *k, const int *s, const int *d, const int *pad)
{
	Window *w = &n->a.win;
	w->nsp = nsp;
	w->group = 1;
	for (int i = 0; i < nsp; i++) {
		w->k[i] = k[i];
		w->s[i] = s ? s[i] : 1;
		w->d[i] = d ? d[i] : 1;
		w->pad[i] = pad ? pad[i] : 0;
		w->pad[nsp + i] = pad ? pad[nsp + i] : 0;
	}
}

/* ---- running ---- */

static const char *cc(void)
{
	const char *c = getenv("CC");
	return c && *c ? c : "cc";
}

/* Extra flags for the generated code, e.g. -fsanitize=address,undefined. */
static const char *cflags(void)
{
	const char *f = getenv("POTC_TEST_CFLAGS");
	return f ? f : "-O2";
}

static NpyType npy_of(DType t)
{
	switch (t) {
	case DT_F32: return NPY_F4;
	case DT_I8: return NPY_I1;
	case DT_U8: return NPY_U1;
	case DT_I16: return NPY_I2;
	case DT_U16: return NPY_U2;
	case DT_I32: return NPY_I4;
	case DT_U32: return NPY_U4;
	case DT_I64: return NPY_I8;
	default: return NPY_B1;
	}
}

static void fill(B *b, int k, const Tensor *t, void *p)
{
	int64_t n = ir_numel(t);
	for (int64_t i = 0; i < n; i++) {
		double v = b->lo[k] + (b->hi[k] - b->lo[k]) * rnd(b);
		switch (t->dtype) {
		case DT_F32: ((float *)p)[i] = (float)v; break;
		case DT_BOOL: ((uint8_t *)p)[i] = v > (b->lo[k] + b->hi[k]) / 2; break;
		default: {
			int64_t iv = (int64_t)floor(v);
			switch (t->dtype) {
			case DT_I8: ((int8_t *)p)[i] = (int8_t)iv; break;
			case DT_U8: ((uint8_t *)p)[i] = (uint8_t)iv; break;
			case DT_I16: ((int16_t *)p)[i] = (int16_t)iv; break;
			case DT_U16: ((uint16_t *)p)[i] = (uint16_t)iv; break;
			case DT_I32: ((int32_t *)p)[i] = (int32_t)iv; break;
			case DT_U32: ((uint32_t *)p)[i] = (uint32_t)iv; break;
			default: ((int64_t *)p)[i] = iv; break;
			}
		}
		}
	}
}

static void npy_save(const char *path, const Tensor *t, const void *data)
{
	long dim[IR_MAXRANK];
	char err[128];
	for (int a = 0; a < t->rank; a++)
		dim[a] = (long)t->dim[a];
	assert_int_equal(npy_write(path, npy_of(t->dtype), t->rank, dim, data, err, sizeof err), 0);
}

static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 255;
}

static void finish(B *b)
{
	Graph *g = b->g;
	g->input = arena_dup(b->a, b->in, sizeof(int) * (size_t)b->nin);
	g->ninput = b->nin;
	g->output = arena_dup(b->a, b->out, sizeof(int) * (size_t)b->nout);
	g->noutput = b->nout;
}

static int close_enough(const Tensor *t, const void *got, const void *want, int64_t *bad)
{
	int64_t n = ir_numel(t), exact = 0;
	if (t->dtype != DT_F32) {
		*bad = -1;
		return memcmp(got, want, ir_nbytes(t)) == 0;
	}
	const float *a = got, *e = want;
	for (int64_t i = 0; i < n; i++) {
		if (a[i] == e[i] || (a[i] != a[i] && e[i] != e[i])) {
			exact++;
			continue;
		}
		if (!(fabsf(a[i] - e[i]) <= 1e-5f * fabsf(e[i]) + 1e-6f)) {
			*bad = i;
			return 0;
		}
	}
	if (exact < n)
		print_message("    %lld of %lld values within tolerance but not bit-identical\n",
		              (long long)(n - exact), (long long)n);
	return 1;
}

typedef struct {
	char dir[64];
	void *in[MAXIO], *ref[MAXIO];
} Run;

/* Infer, plan, evaluate, emit, compile: leaves dir/prog and dir/in*.npy. */
static void build(B *b, Run *r)
{
	Graph *g = b->g;
	finish(b);
	assert_int_equal(ir_infer(g, &b->d), 0);
	assert_int_equal(pass_memplan(g, &b->d), 0);
	assert_int_equal(ir_verify(g, &b->d), 0);
	for (int i = 0; i < b->nin; i++) {
		const Tensor *t = &g->tensor[b->in[i]];
		r->in[i] = calloc(ir_nbytes(t) + 1, 1);
		fill(b, i, t, r->in[i]);
	}
	for (int i = 0; i < b->nout; i++)
		r->ref[i] = calloc(ir_nbytes(&g->tensor[b->out[i]]) + 1, 1);
	assert_int_equal(ir_eval(g, (const void *const *)r->in, r->ref, NULL, NULL, &b->d), 0);
	strcpy(r->dir, "/tmp/potc_emit_XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	char path[3][128];
	snprintf(path[0], sizeof path[0], "%s/model.c", r->dir);
	snprintf(path[1], sizeof path[1], "%s/model.h", r->dir);
	snprintf(path[2], sizeof path[2], "%s/driver.c", r->dir);
	FILE *c = fopen(path[0], "w"), *h = fopen(path[1], "w"), *m = fopen(path[2], "w");
	EmitC o = {.name = "model", .header = "model.h", .source = "test.onnx", .arena_extern = b->arena_extern};
	assert_int_equal(emit_c(g, &o, c, h, &b->d), 0);
	assert_int_equal(emit_c_driver(g, &o, m, &b->d), 0);
	fclose(c);
	fclose(h);
	fclose(m);
	assert_int_equal(sh("%s -std=c99 -pedantic -Wall -Wextra -Werror %s -o %s/prog %s %s -lm", cc(),
	                    cflags(), r->dir, path[0], path[2]), 0);
	for (int i = 0; i < b->nin; i++) {
		char p[128];
		snprintf(p, sizeof p, "%s/in%d.npy", r->dir, i);
		npy_save(p, &g->tensor[b->in[i]], r->in[i]);
	}
}

static void run_free(B *b, Run *r)
{
	for (int i = 0; i < b->nin; i++)
		free(r->in[i]);
	for (int i = 0; i < b->nout; i++)
		free(r->ref[i]);
	if (!getenv("POTC_KEEP"))
		sh("rm -rf %s", r->dir);
	else
		print_message("    kept %s\n", r->dir);
}

static void args(B *b, Run *r, char *buf, size_t len)
{
	size_t k = 0;
	for (int i = 0; i < b->nin; i++)
		k += (size_t)snprintf(buf + k, len - k, " %s/in%d.npy", r->dir, i);
	for (int i = 0; i < b->nout; i++)
		k += (size_t)snprintf(buf + k, len - k, " -o %s/out%d.npy", r->dir, i);
}

/* The generated program's outputs equal the evaluator's. */
static void compare(B *b, Run *r)
{
	for (int i = 0; i < b->nout; i++) {
		char p[128], err[128];
		Npy a;
		const Tensor *t = &b->g->tensor[b->out[i]];
		snprintf(p, sizeof p, "%s/out%d.npy", r->dir, i);
		assert_int_equal(npy_read(p, &a, err, sizeof err), 0);
		assert_int_equal(a.type, npy_of(t->dtype));
		assert_int_equal(a.count, ir_numel(t));
		int64_t bad = -1;
		if (!close_enough(t, a.data, r->ref[i], &bad)) {
			if (bad >= 0)
				print_error("output %d element %lld: got %.9g, want %.9g\n", i, (long long)bad,
				            ((float *)a.data)[bad], ((float *)r->ref[i])[bad]);
			fail_msg("output %d differs from ir_eval (dir %s)", i, r->dir);
		}
		npy_free(&a);
	}
}

static void check(B *b)
{
	Run r = {{0}, {0}, {0}};
	char a[2048];
	build(b, &r);
	args(b, &r, a, sizeof a);
	assert_int_equal(sh("%s/prog%s", r.dir, a), 0);
	compare(b, &r);
	run_free(b, &r);
	b_free(b);
}

#define I64(...) ((const int64_t[]){__VA_ARGS__})
#define INT(...) ((const int[]){__VA_ARGS__})

/* ---- convolutions ---- */

static int conv(B *b, int x, int w, int bias, int nsp, const int *k, const int *s, const int *d,
                const int *pad, int group, int *y)
{
	int in[3] = {x, w, bias};
	int n = b_node(b, OP_CONV, bias >= 0 ? 3 : 2, in, y);
	win(N(b, n), nsp, k, s, d, pad);
	N(b, n)->a.win.group = group;
	return n;
}

static void test_conv_basic(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_F32, 4, I64(1, 1, 28, 28)), y;
	int w = b_const(b, DT_F32, 4, I64(16, 1, 3, 3), NULL), bi = b_const(b, DT_F32, 1, I64(16), NULL);
	int n = conv(b, x, w, bi, 2, INT(3, 3), NULL, NULL, INT(1, 1, 1, 1), 1, &y);
	N(b, n)->act.kind = ACT_RELU;
	b_out(b, y);
	check(b);
}

static void test_conv_multichannel(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_F32, 4, I64(1, 8, 14, 13)), y;
	int w = b_const(b, DT_F32, 4, I64(12, 8, 3, 3), NULL), bi = b_const(b, DT_F32, 1, I64(12), NULL);
	int n = conv(b, x, w, bi, 2, INT(3, 3), NULL, NULL, INT(1, 1, 1, 1), 1, &y);
	N(b, n)->act = (Act){ACT_HSWISH, 0, 0};
	b_out(b, y);
	check(b);
}

/* stride, dilation, asymmetric pads, groups, no bias, batch 2 */
static void test_conv_strided_grouped(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_F32, 4, I64(2, 4, 17, 15)), y;
	int w = b_const(b, DT_F32, 4, I64(6, 2, 3, 2), NULL);
	int n = conv(b, x, w, -1, 2, INT(3, 2), INT(2, 3), INT(2, 1), INT(2, 0, 1, 3), 2, &y);
	N(b, n)->act = (Act){ACT_LEAKY, 0.1f, 0};
	b_out(b, y);
	check(b);
}

static void test_conv_depthwise(void **state)
{
	(void)state;
	for (int stride = 1; stride <= 2; stride++) {
		B *b = b_new();
		int x = b_in(b, DT_F32, 4, I64(1, 16, 14, 14)), y;
		int w = b_const(b, DT_F32, 4, I64(16, 1, 3, 3), NULL), bi = b_const(b, DT_F32, 1, I64(16), NULL);
		int n = conv(b, x, w, bi, 2, INT(3, 3), INT(stride, stride), NULL, INT(1, 1, 1, 1), 16, &y);
		N(b, n)->act = (Act){ACT_CLIP, 0, 6};
		b_out(b, y);
		check(b);
	}
}

static void test_conv_pointwise(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_F32, 4, I64(1, 16, 14, 14)), y, y2, y3;
	int w = b_const(b, DT_F32, 4, I64(32, 16, 1, 1), NULL), bi = b_const(b, DT_F32, 1, I64(32), NULL);
	int n = conv(b, x, w, bi, 2, INT(1, 1), NULL, NULL, NULL, 1, &y);
	N(b, n)->act = (Act){ACT_HSWISH, 0, 0};
	/* grouped pointwise with an odd row count, batch through a second input */
	int w2 = b_const(b, DT_F32, 4, I64(10, 16, 1, 1), NULL);
	conv(b, y, w2, -1, 2, INT(1, 1), NULL, NULL, NULL, 2, &y2);
	/* 1x1 spatial (after a global pool) */
	int x3 = b_in(b, DT_F32, 4, I64(2, 7, 1, 1));
	int w3 = b_const(b, DT_F32, 4, I64(5, 7, 1, 1), NULL), b3 = b_const(b, DT_F32, 1, I64(5), NULL);
	conv(b, x3, w3, b3, 2, INT(1, 1), NULL, NULL, NULL, 1, &y3);
	b_out(b, y2);
	b_out(b, y3);
	check(b);
}

static void test_conv_1d_3d(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_F32, 3, I64(1, 3, 20)), y;
	int w = b_const(b, DT_F32, 3, I64(4, 3, 5), NULL), bi = b_const(b, DT_F32, 1, I64(4), NULL);
	conv(b, x, w, bi, 1, INT(5), INT(2), NULL, INT(2, 1), 1, &y);
	int x3 = b_in(b, DT_F32, 5, I64(1, 2, 5, 6, 7)), y3;
	int w3 = b_const(b, DT_F32, 5, I64(3, 2, 3, 3, 2), NULL);
	int n = conv(b, x3, w3, -1, 3, INT(3, 3, 2), INT(1, 2, 1), INT(1, 1, 2), INT(1, 0, 1, 1, 1, 0), 1, &y3);
	N(b, n)->act = (Act){ACT_SIGMOID, 0, 0};
	b_out(b, y);
	b_out(b, y3);
	check(b);
}

/* Every Conv code path: run-time weights in both tile orientations, the
 * depthwise variants (same-width masked, flat with junk columns, rows for
 * unequal strides), a channel multiplier, batch 2. */
static void test_conv_variants(void **state)
{
	(void)state;
	B *b = b_new();
	int y[8];
	int x = b_in(b, DT_F32, 4, I64(1, 4, 9, 9)), w = b_in(b, DT_F32, 4, I64(8, 4, 3, 3));
	conv(b, x, w, -1, 2, INT(3, 3), NULL, NULL, INT(1, 1, 1, 1), 1, &y[0]);
	int xp = b_in(b, DT_F32, 4, I64(1, 4, 16, 16)), wp = b_in(b, DT_F32, 4, I64(8, 4, 1, 1));
	conv(b, xp, wp, b_const(b, DT_F32, 1, I64(8), NULL), 2, INT(1, 1), NULL, NULL, NULL, 1, &y[1]);
	int xd = b_in(b, DT_F32, 4, I64(2, 6, 11, 10)), bd = b_const(b, DT_F32, 1, I64(6), NULL);
	conv(b, xd, b_const(b, DT_F32, 4, I64(6, 1, 3, 3), NULL), bd, 2, INT(3, 3), INT(2, 1), NULL,
	     INT(1, 0, 1, 2), 6, &y[2]);
	int n = conv(b, xd, b_const(b, DT_F32, 4, I64(6, 1, 5, 5), NULL), bd, 2, INT(5, 5), NULL, NULL,
	             INT(2, 2, 2, 2), 6, &y[3]);
	N(b, n)->act = (Act){ACT_CLIP, 0, 6};
	conv(b, xd, b_const(b, DT_F32, 4, I64(6, 1, 3, 3), NULL), -1, 2, INT(3, 3), NULL, NULL, NULL, 6, &y[4]);
	conv(b, xd, b_const(b, DT_F32, 4, I64(6, 1, 3, 3), NULL), bd, 2, INT(3, 3), NULL, INT(2, 2),
	     INT(2, 2, 2, 2), 6, &y[5]);
	conv(b, xd, b_const(b, DT_F32, 4, I64(12, 1, 3, 3), NULL), -1, 2, INT(3, 3), INT(2, 2), NULL,
	     INT(1, 1, 1, 1), 6, &y[6]);
	conv(b, xd, b_const(b, DT_F32, 4, I64(6, 1, 3, 3), NULL), bd, 2, INT(3, 3), INT(2, 2), NULL,
	     INT(1, 1, 1, 1), 6, &y[7]);
	for (int i = 0; i < 8; i++)
		b_out(b, y[i]);
	check(b);
}

/* a 7x7 kernel on a small image: rows with no interior at all */
static void test_conv_big_kernel(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_F32, 4, I64(1, 3, 9, 9)), y;
	int w = b_const(b, DT_F32, 4, I64(4, 3, 7, 7), NULL);
	conv(b, x, w, -1, 2, INT(7, 7), INT(2, 2), NULL, INT(3, 3, 3, 3), 1, &y);
	b_out(b, y);
	check(b);
}

/* ---- Gemm, MatMul ---- */

static void test_gemm(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_F32, 2, I64(1, 40)), y1, y2, y3;
	/* Linear: B transposed [N, K], bias [N], relu */
	int w = b_const(b, DT_F32, 2, I64(24, 40), NULL), c = b_const(b, DT_F32, 1, I64(24), NULL);
	int n = b_node(b, OP_GEMM, 3, INT(x, w, c), &y1);
	gemm_attr(N(b, n), 1, 1, 0, 1);
	N(b, n)->act.kind = ACT_RELU;
	/* transposed A, alpha, beta, C [M, 1] */
	int a2 = b_in(b, DT_F32, 2, I64(7, 6));
	int w2 = b_const(b, DT_F32, 2, I64(7, 5), NULL), c2 = b_const(b, DT_F32, 2, I64(6, 1), NULL);
	n = b_node(b, OP_GEMM, 3, INT(a2, w2, c2), &y2);
	gemm_attr(N(b, n), 0.5f, 2.0f, 1, 0);
	/* run-time B, transposed, no C */
	int b3 = b_in(b, DT_F32, 2, I64(9, 7));
	n = b_node(b, OP_GEMM, 2, INT(a2, b3), &y3);
	gemm_attr(N(b, n), 1, 1, 1, 1);
	b_out(b, y1);
	b_out(b, y2);
	b_out(b, y3);
	check(b);
}

static void test_gemm_runtime_c(void **state)
{
	(void)state;
	B *b = b_new();
	int a = b_in(b, DT_F32, 2, I64(5, 8)), c = b_in(b, DT_F32, 2, I64(5, 3)), y;
	int w = b_const(b, DT_F32, 2, I64(8, 3), NULL);
	int n = b_node(b, OP_GEMM, 3, INT(a, w, c), &y);
	gemm_attr(N(b, n), 2, -1.5f, 0, 0);
	b_out(b, y);
	check(b);
}

static void test_matmul(void **state)
{
	(void)state;
	B *b = b_new();
	int a = b_in(b, DT_F32, 4, I64(2, 3, 4, 5)), y1, y2, y3;
	int w = b_const(b, DT_F32, 2, I64(5, 6), NULL);
	int n = b_node(b, OP_MATMUL, 2, INT(a, w), &y1);
	N(b, n)->act.kind = ACT_RELU;
	int v = b_in(b, DT_F32, 1, I64(4)), m = b_const(b, DT_F32, 2, I64(4, 3), NULL);
	b_node(b, OP_MATMUL, 2, INT(v, m), &y2);
	int p = b_in(b, DT_F32, 4, I64(2, 1, 3, 4)), q = b_in(b, DT_F32, 3, I64(5, 4, 2));
	b_node(b, OP_MATMUL, 2, INT(p, q), &y3);
	b_out(b, y1);
	b_out(b, y2);
	b_out(b, y3);
	check(b);
}

/* ---- pools ---- */

static int pool(B *b, Op op, int x, int nsp, const int *k, const int *s, const int *pad, int ceil, int *y)
{
	int n = b_node(b, op, 1, &x, y);
	win(N(b, n), nsp, k, s, NULL, pad);
	N(b, n)->a.win.ceil = ceil;
	return n;
}

static void test_maxpool(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_F32, 4, I64(1, 3, 28, 28)), y1, y2, y3;
	pool(b, OP_MAXPOOL, x, 2, INT(2, 2), INT(2, 2), NULL, 0, &y1);
	int n = pool(b, OP_MAXPOOL, x, 2, INT(3, 3), INT(2, 2), INT(1, 1, 1, 1), 1, &y2);
	N(b, n)->act.kind = ACT_RELU;
	n = pool(b, OP_MAXPOOL, x, 2, INT(3, 2), INT(3, 1), INT(0, 1, 2, 0), 1, &y3);
	N(b, n)->a.win.d[0] = 2;
	b_out(b, y1);
	b_out(b, y2);
	b_out(b, y3);
	check(b);
}

static void test_maxpool_u8_indices(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_U8, 4, I64(2, 2, 9, 7)), y1, y = b_val(b), idx = b_val(b);
	b->lo[0] = 0;
	b->hi[0] = 255;
	pool(b, OP_MAXPOOL, x, 2, INT(3, 3), INT(2, 2), INT(1, 1, 1, 1), 1, &y1);
	int n = ir_node_new(b->g, OP_MAXPOOL, NULL, 1, &x, 2, INT(y, idx));
	win(N(b, n), 2, INT(2, 3), INT(2, 2), NULL, INT(1, 0, 0, 1));
	b_out(b, y1);
	b_out(b, y);
	b_out(b, idx);
	check(b);
}

static void test_avgpool(void **state)
{
	(void)state;
	for (int incl = 0; incl <= 1; incl++) {
		B *b = b_new();
		int x = b_in(b, DT_F32, 4, I64(1, 2, 11, 10)), y1, y2;
		int n = pool(b, OP_AVGPOOL, x, 2, INT(3, 3), INT(2, 2), INT(1, 1, 1, 1), 1, &y1);
		N(b, n)->a.win.incl_pad = incl;
		n = pool(b, OP_AVGPOOL, x, 2, INT(2, 2), INT(2, 2), NULL, 0, &y2);
		N(b, n)->a.win.incl_pad = incl;
		N(b, n)->act = (Act){ACT_HSIGMOID, 0.2f, 0.5f};
		int x1 = b_in(b, DT_F32, 3, I64(1, 2, 10)), y3;
		n = pool(b, OP_AVGPOOL, x1, 1, INT(4), INT(3), INT(2, 3), 1, &y3);
		N(b, n)->a.win.incl_pad = incl;
		b_out(b, y1);
		b_out(b, y2);
		b_out(b, y3);
		check(b);
	}
}

static void test_global_pools(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_F32, 4, I64(1, 19, 7, 7)), y1, y2;
	int n = b_node(b, OP_GAVGPOOL, 1, &x, &y1);
	N(b, n)->act.kind = ACT_RELU;
	b_node(b, OP_GMAXPOOL, 1, &x, &y2);
	b_out(b, y1);
	b_out(b, y2);
	check(b);
}

/* ---- normalisation, softmax, reductions ---- */

static void test_batchnorm(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_F32, 4, I64(2, 3, 4, 5)), y;
	int p[4];
	for (int i = 0; i < 4; i++)
		p[i] = b_const(b, DT_F32, 1, I64(3), NULL);
	float *var = b->g->tensor[p[3]].data;
	for (int i = 0; i < 3; i++)
		var[i] = fabsf(var[i]) + 0.1f;
	int n = b_node(b, OP_BATCHNORM, 5, INT(x, p[0], p[1], p[2], p[3]), &y);
	N(b, n)->a.bn.eps = 1e-5f;
	b_out(b, y);
	check(b);
}

static void test_softmax(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_F32, 2, I64(3, 10)), y1, y2, y3;
	b->lo[0] = -20;
	b->hi[0] = 20;
	int n = b_node(b, OP_SOFTMAX, 1, &x, &y1);
	N(b, n)->a.axis.axis = -1;
	int x3 = b_in(b, DT_F32, 3, I64(2, 3, 4));
	n = b_node(b, OP_LOGSOFTMAX, 1, &x3, &y2);
	N(b, n)->a.axis.axis = 1;
	N(b, n)->a.axis.legacy = 1;
	n = b_node(b, OP_SOFTMAX, 1, &x3, &y3);
	N(b, n)->a.axis.axis = 1;
	N(b, n)->a.axis.legacy = 0;
	b_out(b, y1);
	b_out(b, y2);
	b_out(b, y3);
	check(b);
}

static void test_reduce(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_F32, 4, I64(2, 3, 4, 5)), y[6];
	int n = b_node(b, OP_REDUCEMEAN, 2, INT(x, b_i64(b, 2, I64(1, 2))), &y[0]);
	N(b, n)->a.reduce.keepdims = 1;
	n = b_node(b, OP_REDUCEMAX, 1, &x, &y[1]);
	N(b, n)->a.reduce.keepdims = 1;
	n = b_node(b, OP_REDUCESUM, 2, INT(x, b_i64(b, 2, I64(-1, 0))), &y[2]);
	N(b, n)->a.reduce.keepdims = 0;
	n = b_node(b, OP_REDUCEPROD, 2, INT(x, b_i64(b, 1, I64(3))), &y[3]);
	N(b, n)->a.reduce.keepdims = 1;
	n = b_node(b, OP_REDUCEMIN, 2, INT(x, b_i64(b, 0, NULL)), &y[4]);
	N(b, n)->a.reduce.keepdims = 1;
	N(b, n)->a.reduce.noop_empty = 1;
	int xi = b_in(b, DT_I64, 3, I64(3, 4, 2));
	n = b_node(b, OP_REDUCESUM, 2, INT(xi, b_i64(b, 1, I64(1))), &y[5]);
	N(b, n)->a.reduce.keepdims = 1;
	for (int i = 0; i < 6; i++)
		b_out(b, y[i]);
	check(b);
}

/* ---- element-wise ---- */

static void test_eltwise_broadcast(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_F32, 4, I64(1, 4, 3, 3)), c = b_in(b, DT_F32, 3, I64(4, 1, 1)), y[8];
	int n = b_node(b, OP_ADD, 2, INT(x, c), &y[0]);
	N(b, n)->act.kind = ACT_RELU;
	b_node(b, OP_MUL, 2, INT(x, b_f32(b, 0.5f)), &y[1]);
	int r = b_const(b, DT_F32, 1, I64(3), NULL);
	b_node(b, OP_SUB, 2, INT(r, x), &y[2]);
	b_node(b, OP_DIV, 2, INT(x, b_const(b, DT_F32, 2, I64(3, 1), NULL)), &y[3]);
	b_node(b, OP_POW, 2, INT(y[0], b_f32(b, 1.5f)), &y[4]);
	b_node(b, OP_PRELU, 2, INT(x, b_const(b, DT_F32, 3, I64(4, 1, 1), NULL)), &y[5]);
	b_node(b, OP_MAX, 3, INT(x, c, r), &y[6]);
	b_node(b, OP_MEAN, 3, INT(x, c, r), &y[7]);
	for (int i = 0; i < 8; i++)
		b_out(b, y[i]);
	check(b);
}

static void test_eltwise_nary_compare(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_F32, 2, I64(3, 5)), z = b_in(b, DT_F32, 1, I64(5)), y[7];
	b_node(b, OP_MIN, 2, INT(x, z), &y[0]);
	b_node(b, OP_SUM, 3, INT(x, z, x), &y[1]);
	b_node(b, OP_SUM, 1, INT(x), &y[2]);
	b_node(b, OP_LESS, 2, INT(x, z), &y[3]);
	b_node(b, OP_GREATER, 2, INT(x, b_f32(b, 0)), &y[4]);
	b_node(b, OP_EQUAL, 2, INT(x, x), &y[5]);
	b_node(b, OP_WHERE, 3, INT(y[3], x, z), &y[6]);
	for (int i = 0; i < 7; i++)
		b_out(b, y[i]);
	check(b);
}

static void test_eltwise_int(void **state)
{
	(void)state;
	DType types[3] = {DT_I64, DT_I32, DT_U8};
	for (int k = 0; k < 3; k++) {
		B *b = b_new();
		int x = b_in(b, types[k], 2, I64(4, 3)), d = b_in(b, types[k], 1, I64(3)), y[8];
		b->lo[1] = 1;   /* divisors: no division by zero */
		b->hi[1] = 4;
		if (types[k] == DT_U8) {
			b->lo[0] = 0;
			b->hi[0] = 250;
		}
		b_node(b, OP_ADD, 2, INT(x, d), &y[0]);
		b_node(b, OP_SUB, 2, INT(d, x), &y[1]);
		b_node(b, OP_MUL, 2, INT(x, x), &y[2]);
		b_node(b, OP_DIV, 2, INT(x, d), &y[3]);
		b_node(b, OP_MAX, 2, INT(x, d), &y[4]);
		b_node(b, OP_EQUAL, 2, INT(x, d), &y[5]);
		b_node(b, OP_WHERE, 3, INT(y[5], x, d), &y[6]);
		int64_t two = 2;
		int cst = b_const(b, types[k], 0, NULL, NULL);
		if (types[k] == DT_I64)
			memcpy(b->g->tensor[cst].data, &two, 8);
		else
			((char *)b->g->tensor[cst].data)[0] = 2;
		b_node(b, OP_DIV, 2, INT(x, cst), &y[7]);
		for (int i = 0; i < 8; i++)
			b_out(b, y[i]);
		check(b);
	}
}

/* Pow on every mix of float and integer operands (eval's int and float
 * paths). */
static void test_eltwise_mixed(void **state)
{
	(void)state;
	B *b = b_new();
	int f = b_in(b, DT_F32, 1, I64(6)), i = b_in(b, DT_I32, 1, I64(6)), l = b_in(b, DT_I64, 1, I64(6)), y[6];
	b->lo[0] = 0.1;
	b->hi[0] = 3;
	b->lo[1] = -3;
	b->hi[1] = 4;
	b->lo[2] = -2;
	b->hi[2] = 3;
	b_node(b, OP_POW, 2, INT(f, i), &y[0]);
	b_node(b, OP_POW, 2, INT(i, f), &y[1]);
	b_node(b, OP_POW, 2, INT(i, l), &y[2]);
	b_node(b, OP_POW, 2, INT(l, l), &y[3]);
	b_node(b, OP_POW, 2, INT(f, f), &y[4]);
	b_node(b, OP_LESS, 2, INT(l, l), &y[5]);
	for (int k = 0; k < 6; k++)
		b_out(b, y[k]);
	check(b);
}

static void test_unary_float(void **state)
{
	(void)state;
	Op ops[] = {OP_RELU, OP_LEAKYRELU, OP_SIGMOID, OP_HARDSIGMOID, OP_HARDSWISH, OP_TANH, OP_EXP,
	            OP_NEG, OP_ABS, OP_RECIPROCAL, OP_FLOOR, OP_CEIL, OP_ELU, OP_SELU, OP_SOFTPLUS,
	            OP_SOFTSIGN, OP_ERF, OP_LOG, OP_SQRT};
	B *b = b_new();
	int x = b_in(b, DT_F32, 3, I64(2, 3, 7)), p = b_in(b, DT_F32, 1, I64(9));
	b->lo[0] = -4;
	b->hi[0] = 4;
	b->lo[1] = 0.01;
	b->hi[1] = 50;
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		int y, in = ops[i] == OP_LOG || ops[i] == OP_SQRT ? p : x;
		int n = b_node(b, ops[i], 1, &in, &y);
		N(b, n)->a.ab.alpha = ops[i] == OP_SELU ? 1.67326319f : ops[i] == OP_HARDSIGMOID ? 0.2f : 0.3f;
		N(b, n)->a.ab.beta = ops[i] == OP_SELU ? 1.05070102f : 0.5f;
		b_out(b, y);
	}
	int y, yl, yh;
	b_node(b, OP_CLIP, 3, INT(x, b_f32(b, -1), b_f32(b, 2.5f)), &y);
	b_node(b, OP_CLIP, 3, INT(x, -1, b_f32(b, 0.5f)), &yh);
	b_node(b, OP_CLIP, 2, INT(x, b_f32(b, 0.25f)), &yl);
	b_out(b, y);
	b_out(b, yh);
	b_out(b, yl);
	check(b);
}

static void test_unary_int_clip_runtime(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_I32, 1, I64(20)), y[4];
	b_node(b, OP_RELU, 1, &x, &y[0]);
	b_node(b, OP_NEG, 1, &x, &y[1]);
	b_node(b, OP_ABS, 1, &x, &y[2]);
	int lo = b_in(b, DT_I32, 0, NULL), f = b_in(b, DT_F32, 2, I64(3, 4));
	int flo = b_in(b, DT_F32, 0, NULL), fhi = b_in(b, DT_F32, 0, NULL), yf;
	b_node(b, OP_CLIP, 3, INT(x, lo, -1), &y[3]);
	b_node(b, OP_CLIP, 3, INT(f, flo, fhi), &yf);
	for (int i = 0; i < 4; i++)
		b_out(b, y[i]);
	b_out(b, yf);
	check(b);
}

static void test_cast(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_F32, 1, I64(16)), xi = b_in(b, DT_I64, 1, I64(16)), y[6];
	b->lo[0] = -300;
	b->hi[0] = 300;
	b->lo[1] = -100000;
	b->hi[1] = 100000;
	DType to[6] = {DT_I32, DT_U8, DT_BOOL, DT_I8, DT_F32, DT_I16};
	for (int i = 0; i < 6; i++) {
		int n = b_node(b, OP_CAST, 1, i < 4 ? &x : &xi, &y[i]);
		N(b, n)->a.cast.to = to[i];
		b_out(b, y[i]);
	}
	check(b);
}

/* ---- data movement ---- */

static void test_transpose_concat(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_F32, 4, I64(2, 3, 4, 5)), y[4];
	int n = b_node(b, OP_TRANSPOSE, 1, &x, &y[0]);
	N(b, n)->a.perm.n = 4;
	memcpy(N(b, n)->a.perm.p, INT(0, 2, 3, 1), 4 * sizeof(int));
	b_node(b, OP_TRANSPOSE, 1, &x, &y[1]);
	int c = b_const(b, DT_F32, 4, I64(2, 1, 4, 5), NULL);
	n = b_node(b, OP_CONCAT, 3, INT(x, c, x), &y[2]);
	N(b, n)->a.axis.axis = 1;
	int xi = b_in(b, DT_I64, 2, I64(2, 3));
	n = b_node(b, OP_CONCAT, 2, INT(xi, xi), &y[3]);
	N(b, n)->a.axis.axis = -1;
	for (int i = 0; i < 4; i++)
		b_out(b, y[i]);
	check(b);
}

static void test_slice_pad(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_F32, 3, I64(4, 6, 7)), y[6];
	b_node(b, OP_SLICE, 5, INT(x, b_i64(b, 2, I64(1, -1)), b_i64(b, 2, I64(100, -7)),
	                           b_i64(b, 2, I64(2, 1)), b_i64(b, 2, I64(2, -2))), &y[0]);
	b_node(b, OP_SLICE, 3, INT(x, b_i64(b, 1, I64(1)), b_i64(b, 1, I64(3))), &y[1]);
	PadMode modes[3] = {PADMODE_CONSTANT, PADMODE_REFLECT, PADMODE_EDGE};
	for (int m = 0; m < 3; m++) {
		int pads = m ? b_i64(b, 6, I64(0, 2, 1, 1, 3, 2)) : b_i64(b, 6, I64(0, 2, -1, 1, 3, 2));
		int n = b_node(b, OP_PAD, m ? 2 : 3, INT(x, pads, b_f32(b, 1.5f)), &y[2 + m]);
		N(b, n)->a.pad.mode = modes[m];
	}
	int xb = b_in(b, DT_U8, 2, I64(3, 4));
	int n = b_node(b, OP_PAD, 2, INT(xb, b_i64(b, 4, I64(1, 0, 0, 2))), &y[5]);
	N(b, n)->a.pad.mode = PADMODE_CONSTANT;
	for (int i = 0; i < 6; i++)
		b_out(b, y[i]);
	check(b);
}

static void test_gather_expand_tile(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_F32, 3, I64(5, 4, 3)), idx = b_in(b, DT_I64, 2, I64(2, 3)), y[5];
	b->lo[1] = -5;
	b->hi[1] = 5;
	int n = b_node(b, OP_GATHER, 2, INT(x, idx), &y[0]);
	N(b, n)->a.axis.axis = 0;
	n = b_node(b, OP_GATHER, 2, INT(x, b_i64(b, 3, I64(-1, 0, 2))), &y[1]);
	N(b, n)->a.axis.axis = 1;
	int s = b_in(b, DT_F32, 2, I64(3, 1));
	b_node(b, OP_EXPAND, 2, INT(s, b_i64(b, 3, I64(2, 3, 4))), &y[2]);
	b_node(b, OP_TILE, 2, INT(s, b_i64(b, 2, I64(2, 3))), &y[3]);
	n = b_node(b, OP_GATHER, 2, INT(x, b_const(b, DT_I64, 0, NULL, I64(2))), &y[4]);
	N(b, n)->a.axis.axis = -1;
	for (int i = 0; i < 5; i++)
		b_out(b, y[i]);
	check(b);
}

/* Views: a reshape inside the arena (aliased), one that is a graph output
 * (copied), an input and a constant listed as outputs, a tensor listed
 * twice. */
static void test_views_and_outputs(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_F32, 2, I64(4, 6)), r1, a1, r2, fl, sq;
	b_node(b, OP_RESHAPE, 2, INT(x, b_i64(b, 3, I64(2, 2, 6))), &r1);
	b_node(b, OP_ADD, 2, INT(r1, r1), &a1);
	b_node(b, OP_RESHAPE, 2, INT(a1, b_i64(b, 2, I64(6, 4))), &r2);
	int n = b_node(b, OP_FLATTEN, 1, &a1, &fl);
	N(b, n)->a.axis.axis = 1;
	b_node(b, OP_UNSQUEEZE, 2, INT(fl, b_i64(b, 1, I64(0))), &sq);
	int c = b_const(b, DT_F32, 1, I64(3), NULL);
	b_out(b, r2);
	b_out(b, x);
	b_out(b, c);
	b_out(b, sq);
	b_out(b, r2);
	check(b);
}

static void test_arena_extern(void **state)
{
	(void)state;
	B *b = b_new();
	b->arena_extern = 1;
	int x = b_in(b, DT_F32, 4, I64(1, 2, 6, 6)), y1, y2;
	int w = b_const(b, DT_F32, 4, I64(3, 2, 3, 3), NULL);
	conv(b, x, w, -1, 2, INT(3, 3), NULL, NULL, INT(1, 1, 1, 1), 1, &y1);
	b_node(b, OP_SIGMOID, 1, &y1, &y2);
	b_out(b, y2);
	check(b);
}

/* A Fashion-MNIST-sized CNN, end to end. */
static void test_small_cnn(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_F32, 4, I64(1, 1, 28, 28)), t, p, u, q, f, g, h;
	int n = conv(b, x, b_const(b, DT_F32, 4, I64(16, 1, 3, 3), NULL), b_const(b, DT_F32, 1, I64(16), NULL),
	             2, INT(3, 3), NULL, NULL, INT(1, 1, 1, 1), 1, &t);
	N(b, n)->act.kind = ACT_RELU;
	pool(b, OP_MAXPOOL, t, 2, INT(2, 2), INT(2, 2), NULL, 0, &p);
	n = conv(b, p, b_const(b, DT_F32, 4, I64(32, 16, 3, 3), NULL), b_const(b, DT_F32, 1, I64(32), NULL),
	         2, INT(3, 3), NULL, NULL, INT(1, 1, 1, 1), 1, &u);
	N(b, n)->act.kind = ACT_RELU;
	pool(b, OP_MAXPOOL, u, 2, INT(2, 2), INT(2, 2), NULL, 0, &q);
	n = b_node(b, OP_FLATTEN, 1, &q, &f);
	N(b, n)->a.axis.axis = 1;
	n = b_node(b, OP_GEMM, 3, INT(f, b_const(b, DT_F32, 2, I64(64, 1568), NULL),
	                              b_const(b, DT_F32, 1, I64(64), NULL)), &g);
	gemm_attr(N(b, n), 1, 1, 0, 1);
	N(b, n)->act.kind = ACT_RELU;
	n = b_node(b, OP_GEMM, 3, INT(g, b_const(b, DT_F32, 2, I64(10, 64), NULL),
	                              b_const(b, DT_F32, 1, I64(10), NULL)), &h);
	gemm_attr(N(b, n), 1, 1, 0, 1);
	b_out(b, h);
	check(b);
}

/* The driver: batches stacked along dim 0, --time, and its errors. */
static void test_driver(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_F32, 2, I64(1, 6)), y;
	int n = b_node(b, OP_GEMM, 3, INT(x, b_const(b, DT_F32, 2, I64(4, 6), NULL), b_const(b, DT_F32, 1, I64(4), NULL)), &y);
	gemm_attr(N(b, n), 1, 1, 0, 1);
	b_out(b, y);
	Run r = {{0}, {0}, {0}};
	build(b, &r);
	/* three batches: each row is one run */
	float in3[18], one[6], want[12];
	for (int i = 0; i < 18; i++)
		in3[i] = (float)(i % 7) * 0.3f - 1;
	for (int k = 0; k < 3; k++) {
		memcpy(one, in3 + 6 * k, sizeof one);
		void *o[1] = {want + 4 * k};
		const void *in[1] = {one};
		assert_int_equal(ir_eval(b->g, in, o, NULL, NULL, &b->d), 0);
	}
	char p[160], err[128];
	long d3[2] = {3, 6};
	snprintf(p, sizeof p, "%s/in3.npy", r.dir);
	assert_int_equal(npy_write(p, NPY_F4, 2, d3, in3, err, sizeof err), 0);
	assert_int_equal(sh("%s/prog %s -o %s/o3.npy --time 5 2>%s/time.txt", r.dir, p, r.dir, r.dir), 0);
	snprintf(p, sizeof p, "%s/o3.npy", r.dir);
	Npy a;
	assert_int_equal(npy_read(p, &a, err, sizeof err), 0);
	assert_int_equal(a.rank, 2);
	assert_int_equal(a.dim[0], 3);
	Tensor t12 = {.dtype = DT_F32, .rank = 1, .dim = {12}};
	int64_t bad;
	assert_true(close_enough(&t12, a.data, want, &bad));
	npy_free(&a);
	assert_int_equal(sh("grep -q '^median_us [0-9.]*$' %s/time.txt", r.dir), 0);
	/* f64 input is converted */
	double dd[6] = {1, 2, 3, 4, 5, 6};
	long d1[2] = {1, 6};
	snprintf(p, sizeof p, "%s/f8.npy", r.dir);
	assert_int_equal(npy_write(p, NPY_F8, 2, d1, dd, err, sizeof err), 0);
	assert_int_equal(sh("%s/prog %s -o %s/o8.npy", r.dir, p, r.dir), 0);
	/* wrong dtype, wrong shape, not npy, missing file: exit 1 */
	snprintf(p, sizeof p, "%s/i8.npy", r.dir);
	assert_int_equal(npy_write(p, NPY_I8, 2, d1, dd, err, sizeof err), 0);
	assert_int_equal(sh("%s/prog %s 2>/dev/null", r.dir, p), 1);
	long d5[2] = {1, 5};
	snprintf(p, sizeof p, "%s/s5.npy", r.dir);
	assert_int_equal(npy_write(p, NPY_F4, 2, d5, in3, err, sizeof err), 0);
	assert_int_equal(sh("%s/prog %s 2>/dev/null", r.dir, p), 1);
	assert_int_equal(sh("%s/prog %s/model.c 2>/dev/null", r.dir, r.dir), 1);
	assert_int_equal(sh("%s/prog %s/nope.npy 2>/dev/null", r.dir, r.dir), 1);
	/* bad usage: exit 2 */
	assert_int_equal(sh("%s/prog 2>/dev/null", r.dir), 2);
	assert_int_equal(sh("%s/prog %s/in0.npy --bogus 2>/dev/null", r.dir, r.dir), 2);
	assert_int_equal(sh("%s/prog %s/in0.npy -o 2>/dev/null", r.dir, r.dir), 2);
	assert_int_equal(sh("%s/prog %s/in0.npy --time 0 2>/dev/null", r.dir, r.dir), 2);
	assert_int_equal(sh("%s/prog %s/in0.npy %s/in0.npy 2>/dev/null", r.dir, r.dir, r.dir), 2);
	run_free(b, &r);
	b_free(b);
}

/* The header's sizes and prototype. */
static void test_header(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_I64, 1, I64(3)), y;
	b_node(b, OP_MUL, 2, INT(x, x), &y);
	b_out(b, y);
	finish(b);
	assert_int_equal(ir_infer(b->g, &b->d), 0);
	assert_int_equal(pass_memplan(b->g, &b->d), 0);
	char *cs = NULL, *hs = NULL;
	size_t cn, hn;
	FILE *c = open_memstream(&cs, &cn), *h = open_memstream(&hs, &hn);
	EmitC o = {.name = "my-net 2", .header = "x.h", .source = "m.onnx"};
	assert_int_equal(emit_c(b->g, &o, c, h, &b->d), 0);
	fclose(c);
	fclose(h);
	assert_non_null(strstr(hs, "#define MY_NET_2_ARENA_BYTES 0"));
	assert_non_null(strstr(hs, "#define MY_NET_2_NUM_INPUTS 1"));
	assert_non_null(strstr(hs, "#define MY_NET_2_IN0_DIMS {3}"));
	assert_non_null(strstr(hs, "#define MY_NET_2_OUT0_SIZE 3"));
	assert_non_null(strstr(hs, "int my_net_2_run(const int64_t *in0, int64_t *out0);"));
	assert_non_null(strstr(cs, "#include \"x.h\""));
	free(cs);
	free(hs);
	b_free(b);
}

/* Unsupported things are diagnosed, not crashed on. */
static void test_errors(void **state)
{
	(void)state;
	B *b = b_new();
	int x = b_in(b, DT_F32, 1, I64(4)), y;
	b_node(b, OP_SHAPE, 1, &x, &y);
	b_out(b, y);
	finish(b);
	b->d.quiet = 1;
	assert_int_equal(ir_infer(b->g, &b->d), 0);
	assert_int_equal(pass_memplan(b->g, &b->d), 0);
	FILE *c = fopen("/dev/null", "w"), *h = fopen("/dev/null", "w");
	EmitC o = {.name = "m", .header = "m.h", .source = "m.onnx"};
	assert_int_not_equal(emit_c(b->g, &o, c, h, &b->d), 0);
	assert_non_null(strstr(b->d.last, "folded"));
	fclose(c);
	fclose(h);
	b_free(b);
}

/* Every float prints as a literal that reads back as the same bits. */
static void test_float_literals(void **state)
{
	(void)state;
	char buf[64];
	uint32_t s = 1;
	for (int i = 0; i < 2000000; i++) {
		s = s * 1664525u + 1013904223u;
		uint32_t bits = i < 64 ? (uint32_t)i << 26 | (uint32_t)i : s;
		float f, g;
		memcpy(&f, &bits, 4);
		if (f != f)
			continue;
		int n = emit_c_fmt_f32(buf, f);
		assert_true(n > 0 && n < 24);
		if (isinf(f))
			continue;
		assert_int_equal(buf[n - 1], 'f');
		assert_true(strchr(buf, '.') || strchr(buf, 'e'));
		g = strtof(buf, NULL);
		if (memcmp(&f, &g, 4) != 0)
			fail_msg("%.9g printed as %s", (double)f, buf);
	}
	emit_c_fmt_f32(buf, 1.0f);
	assert_string_equal(buf, "1.0f");
	emit_c_fmt_f32(buf, 0.5f);
	assert_string_equal(buf, "0.5f");
	emit_c_fmt_f32(buf, -0.0f);
	assert_string_equal(buf, "-0.0f");
	emit_c_fmt_f32(buf, 1e-5f);
	assert_string_equal(buf, "9.99999975e-06f");
	emit_c_fmt_f32(buf, 100.0f);
	assert_string_equal(buf, "100.0f");
	emit_c_fmt_f32(buf, -INFINITY);
	assert_string_equal(buf, "-INFINITY");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_float_literals),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_conv_basic),
		cmocka_unit_test(test_conv_multichannel),
		cmocka_unit_test(test_conv_strided_grouped),
		cmocka_unit_test(test_conv_depthwise),
		cmocka_unit_test(test_conv_pointwise),
		cmocka_unit_test(test_conv_1d_3d),
		cmocka_unit_test(test_conv_big_kernel),
		cmocka_unit_test(test_conv_variants),
		cmocka_unit_test(test_gemm),
		cmocka_unit_test(test_gemm_runtime_c),
		cmocka_unit_test(test_matmul),
		cmocka_unit_test(test_maxpool),
		cmocka_unit_test(test_maxpool_u8_indices),
		cmocka_unit_test(test_avgpool),
		cmocka_unit_test(test_global_pools),
		cmocka_unit_test(test_batchnorm),
		cmocka_unit_test(test_softmax),
		cmocka_unit_test(test_reduce),
		cmocka_unit_test(test_eltwise_broadcast),
		cmocka_unit_test(test_eltwise_nary_compare),
		cmocka_unit_test(test_eltwise_int),
		cmocka_unit_test(test_eltwise_mixed),
		cmocka_unit_test(test_unary_float),
		cmocka_unit_test(test_unary_int_clip_runtime),
		cmocka_unit_test(test_cast),
		cmocka_unit_test(test_transpose_concat),
		cmocka_unit_test(test_slice_pad),
		cmocka_unit_test(test_gather_expand_tile),
		cmocka_unit_test(test_views_and_outputs),
		cmocka_unit_test(test_arena_extern),
		cmocka_unit_test(test_small_cnn),
		cmocka_unit_test(test_driver),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
