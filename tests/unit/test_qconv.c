/* The C backend's integer Conv, Gemm and MatMul (qkernels_conv.c) against
 * the integer evaluator ir_qeval, bit for bit.
 *
 * Each case is a hand-built lowered graph (quantized tensors, a node with
 * a QNode).  It is planned, emitted, and compiled once per target variant
 * (the AVX-512, AVX2, SSE2 and plain C paths under #if, gcc and clang,
 * UBSan), each with -std=c99 -pedantic -Wall -Wextra -Werror; a small main
 * runs NAME_run on several input sets (random, all qmin, all qmax,
 * alternating qmin/qmax) and the outputs must equal ir_qeval's.  Model.c
 * must also compile for a Cortex-M0 when arm-none-eabi-gcc exists.
 * POTC_QCONV_QUICK=1 runs only the first two variants; POTC_KEEP=1 keeps
 * the temporary directories. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emit_c.h"
#include "passes.h"
#include "irtest.h"

/* ---- random numbers (xorshift32: the same cases on every machine) ---- */

static uint32_t rs = 2463534242u;

static uint32_t rnd32(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 17;
	rs ^= rs << 5;
	return rs;
}

/* Uniform in [lo, hi]. */
static int64_t rnd_in(int64_t lo, int64_t hi)
{
	uint64_t r = ((uint64_t)rnd32() << 32) | rnd32();
	return lo + (int64_t)(r % (uint64_t)(hi - lo + 1));
}

/* ---- quantized tensors ---- */

static Quant *qnew(int nch, int axis, int bits, int uns, int32_t zp)
{
	Quant *q = ir_quant_new(arena, nch, axis, bits, uns);
	for (int c = 0; c < nch; c++)
		q->zp[c] = zp;
	return q;
}

static int qtensor(TensorKind kind, int bits, int uns, int32_t zp, int rank, const int64_t *dim)
{
	Quant *q = qnew(1, -1, bits, uns, zp);
	int t = ir_tensor_new(g, NULL, ir_quant_dtype(q), rank, dim);
	g->tensor[t].kind = kind;
	g->tensor[t].q = q;
	return t;
}

static int qinput(int bits, int uns, int32_t zp, int rank, const int64_t *dim)
{
	return qtensor(TK_INPUT, bits, uns, zp, rank, dim);
}

static int qvalue(int bits, int uns, int32_t zp, int rank, const int64_t *dim)
{
	return qtensor(TK_VALUE, bits, uns, zp, rank, dim);
}

/* Constant weights of `bits` bits, one zero point per channel along axis
 * (random in [-zw, zw]). */
static int qweights(int rank, const int64_t *dim, int axis, int bits, int zw)
{
	int nch = (int)dim[axis];
	Quant *q = qnew(nch, axis, bits, 0, 0);
	for (int c = 0; c < nch; c++)
		q->zp[c] = (int32_t)rnd_in(-zw, zw);
	int t = ir_const_new(g, NULL, DT_I8, rank, dim, NULL);
	Tensor *T = &g->tensor[t];
	T->q = q;
	for (int64_t i = 0; i < ir_numel(T); i++)
		((int8_t *)T->data)[i] = (int8_t)rnd_in(ir_qmin(q), ir_qmax(q));
	return t;
}

static int qbias(int64_t n, int64_t range)
{
	int t = ir_const_new(g, NULL, DT_I32, 1, DIMS(n), NULL);
	g->tensor[t].q = qnew(1, -1, 32, 0, 0);
	for (int64_t i = 0; i < n; i++)
		((int32_t *)g->tensor[t].data)[i] = (int32_t)rnd_in(-range, range);
	return t;
}

/* Largest |q - zp| over the tensor's bit range. */
static int64_t maxabs(const Tensor *t)
{
	int64_t a = (int64_t)ir_qmax(t->q) - t->q->zp[0], b = (int64_t)t->q->zp[0] - ir_qmin(t->q);
	return a > b ? a : b;
}

/* ---- the QNode ---- */

enum { R_FIXED, R_AFFINE, R_WILD, R_MIXED };

/* One Rescale of the given form: right shifts, Q31 multipliers of small
 * factors, or anything potc_rescale takes (left shifts, shifts past 31,
 * Q31 with n < 0). */
static Rescale rescale_of(int form, int acc64)
{
	if (form == R_MIXED)
		form = (int)rnd_in(R_FIXED, R_WILD);
	switch (form) {
	case R_FIXED:
		return (Rescale){0, (int)rnd_in(0, 12)};
	case R_AFFINE:
		return (Rescale){(int32_t)rnd_in(1 << 30, 0x7fffffff), (int)rnd_in(0, 12)};
	default:
		switch (rnd_in(0, 4)) {
		case 0: return (Rescale){0, (int)rnd_in(acc64 ? -40 : -31, 0)};
		case 1: return (Rescale){0, (int)rnd_in(25, 62)};
		case 2: return (Rescale){(int32_t)rnd_in(1 << 30, 0x7fffffff), (int)rnd_in(-31, -1)};
		case 3: return (Rescale){(int32_t)rnd_in(1 << 30, 0x7fffffff), (int)rnd_in(13, 31)};
		default: return (Rescale){0, 0};
		}
	}
}

/* A QNode with nr rescales of the form, clamp [lo, hi]; acc64 when the
 * worst |acc| (bound) does not fit int32, as pass_qlower decides. */
static QNode *qnode_new(int nr, int form, int32_t lo, int32_t hi, int64_t bound)
{
	QNode *q = arena_alloc(arena, sizeof *q);
	q->acc64 = bound > INT32_MAX;
	q->nr = nr;
	q->r = arena_alloc(arena, sizeof *q->r * (size_t)nr);
	for (int i = 0; i < nr; i++)
		q->r[i] = rescale_of(form, q->acc64);
	q->lo = lo;
	q->hi = hi;
	q->acc_worst = bound;
	q->acc_limit = INT32_MAX;
	return q;
}

/* Worst |acc| of a dot product per output channel: weights w (elements
 * [ch * K, ch * K + K) of channel ch when chmajor, else column ch of a
 * [K][nch] matrix) against inputs of largest |xv| ax. */
static int64_t dot_bound(const Tensor *w, int64_t nch, int64_t K, int chmajor, int64_t ax, const Tensor *b)
{
	int64_t worst = 0;
	for (int64_t c = 0; c < nch; c++) {
		int64_t s = b ? llabs((long long)ir_get_i64(b, c)) : 0;
		for (int64_t k = 0; k < K; k++) {
			int64_t i = chmajor ? c * K + k : k * nch + c;
			s += ax * llabs((long long)(ir_get_i64(w, i) - w->q->zp[ir_quant_channel(w, i)]));
		}
		worst = s > worst ? s : worst;
	}
	return worst;
}

/* ---- nodes ---- */

typedef struct {
	int nsp, k[3], s[3], d[3], pad[6], group;
} Win;

static int64_t conv_out(int64_t in, int k, int s, int d, int pb, int pe)
{
	return (in + pb + pe - (int64_t)(k - 1) * d - 1) / s + 1;
}

/* Conv of x [N, C, spatial...] with M output channels; returns y. */
static int qconv(int x, int64_t M, const Win *W, int wbits, int zw, int bias, int ybits, int yuns, int32_t zy,
                 int form, int relu)
{
	const Tensor *X = &g->tensor[x];
	int64_t wd[5] = {M, X->dim[1] / W->group}, yd[5] = {X->dim[0], M};
	for (int i = 0; i < W->nsp; i++) {
		wd[2 + i] = W->k[i];
		yd[2 + i] = conv_out(X->dim[2 + i], W->k[i], W->s[i], W->d[i], W->pad[i], W->pad[W->nsp + i]);
	}
	int w = qweights(2 + W->nsp, wd, 0, wbits, zw);
	int b = bias ? qbias(M, 1 << 20) : -1;
	int y = qvalue(ybits, yuns, zy, 2 + W->nsp, yd);
	int in[3] = {x, w, b};
	int n = ir_node_new(g, OP_CONV, NULL, b >= 0 ? 3 : 2, in, 1, &y);
	Node *N = &g->node[n];
	Window *wi = &N->a.win;
	wi->nsp = W->nsp;
	wi->group = W->group;
	for (int i = 0; i < W->nsp; i++) {
		wi->k[i] = W->k[i];
		wi->s[i] = W->s[i];
		wi->d[i] = W->d[i];
		wi->pad[i] = W->pad[i];
		wi->pad[W->nsp + i] = W->pad[W->nsp + i];
	}
	const Tensor *Wt = &g->tensor[w];
	int64_t K = ir_numel(Wt) / M;
	Quant *yq = g->tensor[y].q;
	int32_t lo = relu ? zy : ir_qmin(yq), hi = ir_qmax(yq);
	N->q = qnode_new((int)M, form, lo, hi, dot_bound(Wt, M, K, 1, maxabs(X), b >= 0 ? &g->tensor[b] : NULL));
	return y;
}

/* Gemm a [M, K] x B (constant, [K, N] or [N, K] when tb) + C. */
static int qgemm(int a, int64_t N, int tb, int bias, int ybits, int yuns, int32_t zy, int form)
{
	const Tensor *A = &g->tensor[a];
	int64_t M = A->dim[0], K = A->dim[1];
	int b = tb ? qweights(2, DIMS(N, K), 0, 8, 0) : qweights(2, DIMS(K, N), 1, 8, 3);
	int ct = bias ? qbias(N, 1 << 20) : -1;
	int y = qvalue(ybits, yuns, zy, 2, DIMS(M, N));
	int in[3] = {a, b, ct};
	int n = ir_node_new(g, OP_GEMM, NULL, ct >= 0 ? 3 : 2, in, 1, &y);
	Node *Nd = &g->node[n];
	Nd->a.gemm.alpha = Nd->a.gemm.beta = 1;
	Nd->a.gemm.tb = tb;
	Quant *yq = g->tensor[y].q;
	Nd->q = qnode_new((int)N, form, ir_qmin(yq), ir_qmax(yq),
	                  dot_bound(&g->tensor[b], N, K, tb, maxabs(A), ct >= 0 ? &g->tensor[ct] : NULL));
	return y;
}

/* MatMul a x b, output shape given. */
static int qmatmul(int a, int b, int rank, const int64_t *ydim, int form)
{
	const Tensor *A = &g->tensor[a], *B = &g->tensor[b];
	int64_t K = A->dim[A->rank - 1], N = B->rank > 1 ? B->dim[B->rank - 1] : 1;
	int y = qvalue(8, 0, -3, rank, ydim);
	int in[2] = {a, b};
	int n = ir_node_new(g, OP_MATMUL, NULL, 2, in, 1, &y);
	int64_t bound;
	if (B->kind == TK_CONST)
		bound = dot_bound(B, N, K * (ir_numel(B) / (K * N)), 0, maxabs(A), NULL);
	else
		bound = K * maxabs(A) * maxabs(B);
	Quant *yq = g->tensor[y].q;
	g->node[n].q = qnode_new(B->kind == TK_CONST ? (int)N : 1, form, ir_qmin(yq), ir_qmax(yq), bound);
	return y;
}

/* ---- compile and run ---- */

typedef struct {
	const char *cc, *flags;
	int run;   /* 0: compile model.c only */
} Variant;

static const Variant variants[] = {
	{"gcc", "-O2 -march=native", 1},
	{"gcc", "-O2 -mavx2 -mfma", 1},
	{"gcc", "-O2", 1},                       /* x86-64 baseline: SSE2 */
	{"gcc", "-O2 -mgeneral-regs-only", 1},   /* plain C, no vector registers */
	{"clang", "-O2 -march=native", 1},
	{"clang", "-O2 -mavx2", 1},
	{"clang", "-O2", 1},
	{"gcc", "-O1 -march=native -fsanitize=undefined -fno-sanitize-recover=all", 1},
	{"gcc", "-O1 -mavx2 -fsanitize=undefined -fno-sanitize-recover=all", 1},
	{"gcc", "-O1 -fsanitize=undefined -fno-sanitize-recover=all", 1},
	{"arm-none-eabi-gcc", "-O2 -mcpu=cortex-m0 -mthumb -mfloat-abi=soft", 0},
};

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

static int have(const char *cc)
{
	return sh("command -v %s >/dev/null 2>&1", cc) == 0;
}

/* main.c: reads nset input sets from argv[1], writes the outputs to argv[2]. */
static void write_main(const char *path)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "#include <stdio.h>\n#include <stdlib.h>\n#include \"model.h\"\n");
	for (int i = 0; i < g->ninput; i++) {
		const Tensor *t = &g->tensor[g->input[i]];
		const char *ty = t->dtype == DT_U8 ? "uint8_t" : t->dtype == DT_I8 ? "int8_t" :
		                 t->dtype == DT_U16 ? "uint16_t" : "int16_t";
		fprintf(f, "static %s in%d[%lld];\n", ty, i, (long long)ir_numel(t));
	}
	const Tensor *y = &g->tensor[g->output[0]];
	fprintf(f, "static unsigned char out0[%zu];\n", ir_nbytes(y));
	fprintf(f, "int main(int argc, char **argv)\n{\n");
	fprintf(f, "\tFILE *fi = fopen(argv[1], \"rb\"), *fo = fopen(argv[2], \"wb\");\n");
	fprintf(f, "\tint n = atoi(argv[3]);\n\t(void)argc;\n\tif (!fi || !fo) return 1;\n");
	fprintf(f, "\tfor (int s = 0; s < n; s++) {\n");
	for (int i = 0; i < g->ninput; i++)
		fprintf(f, "\t\tif (fread(in%d, sizeof in%d, 1, fi) != 1) return 2;\n", i, i);
	fprintf(f, "\t\tmodel_run(");
	for (int i = 0; i < g->ninput; i++)
		fprintf(f, "in%d, ", i);
	fprintf(f, "(void *)out0);\n\t\tfwrite(out0, sizeof out0, 1, fo);\n\t}\n");
	fprintf(f, "\tfclose(fi);\n\treturn fclose(fo) != 0;\n}\n");
	fclose(f);
}

enum { NSET = 6 };

/* Input set s of tensor t: random (0, 1), all qmin (2), all qmax (3),
 * alternating (4, 5). */
static void fill_set(const Tensor *t, int s, void *p)
{
	int32_t lo = ir_qmin(t->q), hi = ir_qmax(t->q);
	for (int64_t i = 0; i < ir_numel(t); i++) {
		int64_t v = s < 2 ? rnd_in(lo, hi) : s == 2 ? lo : s == 3 ? hi : (i + s) % 2 ? lo : hi;
		switch (t->dtype) {
		case DT_I8: ((int8_t *)p)[i] = (int8_t)v; break;
		case DT_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
		case DT_I16: ((int16_t *)p)[i] = (int16_t)v; break;
		default: ((uint16_t *)p)[i] = (uint16_t)v; break;
		}
	}
}

/* Plan, emit, compile every variant, run, compare with ir_qeval. */
static void check(int nin, const int *ins, int out)
{
	g->input = arena_dup(arena, ins, sizeof(int) * (size_t)nin);
	g->ninput = nin;
	g->output = arena_dup(arena, &out, sizeof(int));
	g->noutput = 1;
	g->tensor[out].is_output = 1;
	assert_int_equal(pass_memplan(g, &diag), 0);
	char dir[64] = "/tmp/potc_qconv_XXXXXX", p[256];
	assert_non_null(mkdtemp(dir));
	snprintf(p, sizeof p, "%s/model.c", dir);
	FILE *c = fopen(p, "w");
	snprintf(p, sizeof p, "%s/model.h", dir);
	FILE *h = fopen(p, "w");
	EmitC o = {.name = "model", .header = "model.h", .source = "test.onnx"};
	int err = emit_c(g, &o, c, h, &diag);
	fclose(c);
	fclose(h);
	if (err)
		fail_msg("emit_c: %s", diag.last);
	snprintf(p, sizeof p, "%s/main.c", dir);
	write_main(p);
	/* the input sets and the evaluator's outputs */
	size_t inb = 0, ob = ir_nbytes(&g->tensor[out]);
	for (int i = 0; i < nin; i++)
		inb += ir_nbytes(&g->tensor[ins[i]]);
	unsigned char *all = malloc(inb * NSET + 1), *want = malloc(ob * NSET + 1), *got = malloc(ob * NSET + 1);
	for (int s = 0; s < NSET; s++) {
		const void *iv[8];
		unsigned char *q = all + inb * s;
		for (int i = 0; i < nin; i++) {
			iv[i] = q;
			fill_set(&g->tensor[ins[i]], s, q);
			q += ir_nbytes(&g->tensor[ins[i]]);
		}
		void *ov[1] = {want + ob * s};
		if (ir_qeval(g, iv, ov, NULL, NULL, &diag))
			fail_msg("ir_qeval: %s", diag.last);
	}
	snprintf(p, sizeof p, "%s/in.bin", dir);
	FILE *f = fopen(p, "wb");
	fwrite(all, inb * NSET, 1, f);
	fclose(f);
	int nv = getenv("POTC_QCONV_QUICK") ? 2 : (int)(sizeof variants / sizeof variants[0]);
	for (int v = 0; v < nv; v++) {
		const Variant *V = &variants[v];
		if (!have(V->cc))
			continue;
		const char *std = "-std=c99 -pedantic -Wall -Wextra -Werror";
		if (!V->run) {
			if (sh("cd %s && %s %s %s -c model.c -o model_arm.o", dir, V->cc, std, V->flags))
				fail_msg("%s %s: model.c does not compile (dir %s)", V->cc, V->flags, dir);
			continue;
		}
		if (sh("cd %s && %s %s %s model.c main.c -o prog", dir, V->cc, std, V->flags))
			fail_msg("%s %s: does not compile (dir %s)", V->cc, V->flags, dir);
		if (sh("cd %s && ./prog in.bin out.bin %d", dir, NSET))
			fail_msg("%s %s: the program failed (dir %s)", V->cc, V->flags, dir);
		snprintf(p, sizeof p, "%s/out.bin", dir);
		f = fopen(p, "rb");
		assert_non_null(f);
		assert_int_equal(fread(got, ob * NSET, 1, f), 1);
		fclose(f);
		for (int s = 0; s < NSET; s++)
			if (memcmp(got + ob * s, want + ob * s, ob)) {
				size_t i = 0;
				while (got[ob * s + i] == want[ob * s + i])
					i++;
				fail_msg("%s %s: input set %d differs from ir_qeval at byte %zu: %d, want %d (dir %s)", V->cc,
				         V->flags, s, i, got[ob * s + i], want[ob * s + i], dir);
			}
	}
	free(all);
	free(want);
	free(got);
	if (!getenv("POTC_KEEP"))
		sh("rm -rf %s", dir);
	else
		print_message("    kept %s\n", dir);
}

static void check1(int x, int y)
{
	check(1, &x, y);
}

/* ---- cases ---- */

static void test_conv_first_layer(void **state)
{
	(void)state;
	int x = qinput(8, 1, 0, 4, DIMS(1, 1, 28, 28));
	Win W = {2, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1};
	check1(x, qconv(x, 16, &W, 8, 0, 1, 8, 1, 0, R_FIXED, 1));
}

static void test_conv_multichannel(void **state)
{
	(void)state;
	int x = qinput(8, 0, 0, 4, DIMS(1, 16, 14, 14));
	Win W = {2, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1};
	check1(x, qconv(x, 32, &W, 8, 0, 1, 8, 0, 0, R_AFFINE, 0));
}

/* u8 with a zero point, weights with zero points, 16-bit output */
static void test_conv_zero_points(void **state)
{
	(void)state;
	int x = qinput(8, 1, 37, 4, DIMS(1, 12, 9, 11));
	Win W = {2, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1};
	check1(x, qconv(x, 20, &W, 8, 9, 1, 16, 0, -300, R_MIXED, 0));
}

/* stride, dilation, asymmetric pads, groups, no bias, batch 2 */
static void test_conv_strided_grouped(void **state)
{
	(void)state;
	int x = qinput(8, 1, 3, 4, DIMS(2, 4, 17, 15));
	Win W = {2, {3, 2}, {2, 3}, {2, 1}, {2, 0, 1, 3}, 2};
	check1(x, qconv(x, 6, &W, 8, 2, 0, 8, 0, 5, R_MIXED, 1));
}

static void test_conv_depthwise(void **state)
{
	(void)state;
	for (int s = 1; s <= 2; s++) {
		int x = qinput(8, 0, -5, 4, DIMS(1, 16, 14, 14));
		Win W = {2, {3, 3}, {s, s}, {1, 1}, {1, 1, 1, 1}, 16};
		check1(x, qconv(x, 16, &W, 8, 0, 1, 8, 1, 10, R_AFFINE, 0));
		teardown(NULL);
		setup(NULL);
	}
}

static void test_conv_pointwise(void **state)
{
	(void)state;
	int x = qinput(8, 1, 0, 4, DIMS(1, 16, 14, 14));
	Win W = {2, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 1};
	check1(x, qconv(x, 32, &W, 8, 0, 1, 8, 1, 0, R_FIXED, 1));
}

static void test_conv_pointwise_small(void **state)
{
	(void)state;
	int x = qinput(8, 0, 0, 4, DIMS(1, 32, 7, 7));
	Win W = {2, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 1};
	check1(x, qconv(x, 64, &W, 8, 0, 1, 8, 0, 0, R_AFFINE, 0));
}

/* 1-D, i16 input with a zero point */
static void test_conv_1d(void **state)
{
	(void)state;
	int x = qinput(16, 0, 100, 3, DIMS(1, 3, 50));
	Win W = {1, {5}, {2}, {1}, {2, 1}, 1};
	check1(x, qconv(x, 7, &W, 8, 0, 1, 8, 0, 0, R_MIXED, 0));
}

static void test_conv_3d(void **state)
{
	(void)state;
	int x = qinput(8, 0, 0, 5, DIMS(1, 2, 5, 6, 7));
	Win W = {3, {3, 2, 3}, {1, 2, 1}, {1, 1, 2}, {1, 0, 1, 1, 1, 2}, 1};
	check1(x, qconv(x, 4, &W, 8, 0, 1, 8, 0, 0, R_FIXED, 0));
}

/* 16-bit activations with a long reduction: the int64 accumulator */
static void test_conv_acc64(void **state)
{
	(void)state;
	int x = qinput(16, 1, 1000, 4, DIMS(1, 64, 6, 6));
	Win W = {2, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1};
	int y = qconv(x, 8, &W, 8, 0, 1, 8, 0, 0, R_WILD, 0);
	assert_true(g->node[g->nnode - 1].q->acc64);
	check1(x, y);
}

/* every kind of rescale, left shifts and shifts past 31 included */
static void test_conv_rescales(void **state)
{
	(void)state;
	int x = qinput(8, 0, 0, 4, DIMS(1, 8, 6, 6));
	Win W = {2, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1};
	check1(x, qconv(x, 40, &W, 8, 0, 1, 8, 0, 0, R_WILD, 0));
}

/* 4-bit weights, 4-bit activations */
static void test_conv_4bit(void **state)
{
	(void)state;
	int x = qinput(4, 0, 0, 4, DIMS(1, 8, 10, 10));
	Win W = {2, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1};
	check1(x, qconv(x, 16, &W, 4, 0, 1, 4, 0, 0, R_FIXED, 0));
}

/* few input channels and stride 2: kx quads in windows */
static void test_conv_strided_rgb(void **state)
{
	(void)state;
	int x = qinput(8, 1, 0, 4, DIMS(1, 3, 32, 33));
	Win W = {2, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 1};
	check1(x, qconv(x, 8, &W, 8, 0, 1, 8, 1, 7, R_FIXED, 0));
}

/* groups of 6 channels: channel quads, the second one half empty */
static void test_conv_grouped_quads(void **state)
{
	(void)state;
	int x = qinput(8, 0, -2, 4, DIMS(1, 12, 10, 10));
	Win W = {2, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 2};
	check1(x, qconv(x, 8, &W, 8, 0, 1, 8, 0, 0, R_FIXED, 0));
}

/* rows longer than a tile, dilation along x */
static void test_conv_wide_dilated(void **state)
{
	(void)state;
	int x = qinput(8, 0, 0, 4, DIMS(1, 2, 5, 70));
	Win W = {2, {3, 3}, {1, 1}, {1, 2}, {1, 2, 1, 2}, 1};
	check1(x, qconv(x, 5, &W, 8, 0, 1, 8, 0, 0, R_FIXED, 0));
}

/* depth multiplier 2: one input channel, two outputs a group */
static void test_conv_depth_multiplier(void **state)
{
	(void)state;
	int x = qinput(8, 1, 128, 4, DIMS(1, 4, 9, 9));
	Win W = {2, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 4};
	check1(x, qconv(x, 8, &W, 8, 0, 1, 8, 0, 0, R_AFFINE, 1));
}

/* stride 3 depthwise with dilation, batch 2 */
static void test_conv_depthwise_s3(void **state)
{
	(void)state;
	int x = qinput(8, 0, 0, 4, DIMS(2, 5, 20, 19));
	Win W = {2, {3, 3}, {3, 3}, {2, 2}, {2, 2, 2, 2}, 5};
	check1(x, qconv(x, 5, &W, 8, 0, 1, 16, 0, 0, R_MIXED, 0));
}

/* 16-bit activations on the int16 kernels: u16 (moved by -32768), i16 */
static void test_conv_16bit(void **state)
{
	(void)state;
	int x = qinput(16, 1, 30000, 4, DIMS(1, 3, 8, 9));
	Win W = {2, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1};
	check1(x, qconv(x, 6, &W, 8, 0, 1, 16, 1, 100, R_FIXED, 0));
	teardown(NULL);
	setup(NULL);
	x = qinput(16, 0, -50, 4, DIMS(1, 4, 7, 7));
	Win D = {2, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 4};
	check1(x, qconv(x, 4, &D, 8, 0, 1, 16, 0, 0, R_AFFINE, 0));
}

/* kernels of several targets in one model.c (helpers printed once) */
static void test_conv_chain(void **state)
{
	(void)state;
	int x = qinput(8, 1, 5, 4, DIMS(1, 8, 10, 10));
	Win W = {2, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1};
	int y1 = qconv(x, 8, &W, 8, 20, 1, 8, 1, 3, R_FIXED, 1);      /* w - zw beyond int8: int16 kernels */
	int y2 = qconv(y1, 8, &W, 8, 0, 1, 8, 0, 0, R_AFFINE, 0);
	Win D = {2, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 8};
	check1(x, qconv(y2, 8, &D, 8, 0, 1, 8, 0, 0, R_FIXED, 0));
}

static void test_gemm_tb(void **state)
{
	(void)state;
	int a = qinput(8, 1, 0, 2, DIMS(1, 1568));
	check1(a, qgemm(a, 64, 1, 1, 8, 1, 0, R_FIXED));
}

static void test_gemm_small(void **state)
{
	(void)state;
	int a = qinput(8, 1, 12, 2, DIMS(3, 37));
	check1(a, qgemm(a, 10, 0, 0, 8, 0, 0, R_AFFINE));
}

static void test_gemm_i16(void **state)
{
	(void)state;
	int a = qinput(16, 0, -7, 2, DIMS(2, 40));
	check1(a, qgemm(a, 33, 1, 1, 16, 0, 0, R_MIXED));
}

/* 2-bit weights (packed four a byte in the plain C kernel) */
static void test_gemm_2bit(void **state)
{
	(void)state;
	int a = qinput(8, 0, 0, 2, DIMS(2, 40));
	int b = qweights(2, DIMS(12, 40), 0, 2, 0);
	int y = qvalue(8, 0, 0, 2, DIMS(2, 12));
	int in[2] = {a, b};
	int n = ir_node_new(g, OP_GEMM, NULL, 2, in, 1, &y);
	g->node[n].a.gemm.alpha = g->node[n].a.gemm.beta = 1;
	g->node[n].a.gemm.tb = 1;
	g->node[n].q = qnode_new(12, R_FIXED, -128, 127, dot_bound(&g->tensor[b], 12, 40, 1, 128, NULL));
	check1(a, y);
}

static void test_matmul_const(void **state)
{
	(void)state;
	int a = qinput(8, 0, 4, 3, DIMS(2, 3, 20));
	int b = qweights(2, DIMS(20, 24), 1, 8, 2);
	check1(a, qmatmul(a, b, 3, DIMS(2, 3, 24), R_AFFINE));
}

/* a batch of constant B matrices, 16-bit output */
static void test_matmul_const_batched(void **state)
{
	(void)state;
	int a = qinput(8, 1, 9, 3, DIMS(2, 3, 21));
	int b = qweights(3, DIMS(2, 21, 35), 2, 8, 0);
	const Tensor *A = &g->tensor[a], *B = &g->tensor[b];
	int y = qtensor(TK_VALUE, 16, 0, 11, 3, DIMS(2, 3, 35));
	int in[2] = {a, b};
	int n = ir_node_new(g, OP_MATMUL, NULL, 2, in, 1, &y);
	Quant *yq = g->tensor[y].q;
	g->node[n].q = qnode_new(35, R_FIXED, ir_qmin(yq), ir_qmax(yq), dot_bound(B, 35, 42, 0, maxabs(A), NULL));
	check1(a, y);
}

static void test_matmul_runtime(void **state)
{
	(void)state;
	int a = qinput(8, 0, 3, 3, DIMS(2, 3, 5));
	int b = qinput(8, 1, 120, 3, DIMS(1, 5, 4));
	int ins[2] = {a, b};
	check(2, ins, qmatmul(a, b, 3, DIMS(2, 3, 4), R_FIXED));
}

static void test_matmul_vector(void **state)
{
	(void)state;
	int a = qinput(16, 0, 0, 1, DIMS(9));
	int b = qinput(8, 0, 0, 2, DIMS(9, 6));
	int ins[2] = {a, b};
	check(2, ins, qmatmul(a, b, 1, DIMS(6), R_MIXED));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_conv_first_layer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conv_multichannel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conv_zero_points, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conv_strided_grouped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conv_depthwise, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conv_pointwise, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conv_pointwise_small, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conv_1d, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conv_3d, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conv_acc64, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conv_rescales, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conv_4bit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conv_strided_rgb, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conv_grouped_quads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conv_wide_dilated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conv_depth_multiplier, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conv_depthwise_s3, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conv_16bit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conv_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gemm_tb, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gemm_small, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gemm_i16, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gemm_2bit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_matmul_const, setup, teardown),
		cmocka_unit_test_setup_teardown(test_matmul_const_batched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_matmul_runtime, setup, teardown),
		cmocka_unit_test_setup_teardown(test_matmul_vector, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
