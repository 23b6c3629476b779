/* The C backend's kernels for PoT/APoT weights and narrow accumulators
 * (qkernels_narrow.c) against the integer evaluator ir_qeval, bit for bit.
 *
 * Hand-built lowered graphs (as test_qconv.c): the QNode's acc_bits, ktile
 * and acc_method and the weights' code are set here, as pass_pot and
 * pass_accbound will set them.  The reference is ir_qeval on the same
 * graph with the weight tensor holding the decoded integers
 * (ir_wdecode) as a uniform i8 tensor: the docs define a PoT layer as the
 * uniform formula with w the decoded integer.
 *
 * Each graph is emitted once and compiled with gcc and clang (-std=c99
 * -pedantic -Wall -Wextra -Werror), with UBSan and -DPOTC_CHECK_ACC, and
 * for a Cortex-M0 (compile only).  Input sets: random, all qmin, all qmax,
 * alternating, and for Gemm the adversarial rows that drive each column's
 * partial sums to their extremes.  POTC_KEEP=1 keeps the directories. */
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

static uint32_t rs = 88172645u;

static uint32_t rnd32(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 17;
	rs ^= rs << 5;
	return rs;
}

static int64_t rnd_in(int64_t lo, int64_t hi)
{
	uint64_t r = ((uint64_t)rnd32() << 32) | rnd32();
	return lo + (int64_t)(r % (uint64_t)(hi - lo + 1));
}

/* ---- tensors ---- */

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

/* Weights: codes (code != WQ_UNIFORM, every code of `bits` bits, the
 * magnitude index below maxm) or uniform integers of `bits` bits. */
static int qweights(int rank, const int64_t *dim, int axis, int code, int bits, int maxm)
{
	Quant *q = qnew((int)dim[axis], axis, bits, 0, 0);
	q->code = code;
	int t = ir_const_new(g, NULL, ir_quant_dtype(q), rank, dim, NULL);
	Tensor *T = &g->tensor[t];
	T->q = q;
	for (int64_t i = 0; i < ir_numel(T); i++) {
		if (code == WQ_UNIFORM) {
			((int8_t *)T->data)[i] = (int8_t)rnd_in(ir_qmin(q), ir_qmax(q));
			continue;
		}
		int32_t m = (int32_t)rnd_in(0, maxm), s = (int32_t)rnd_in(0, 1);
		((uint8_t *)T->data)[i] = (uint8_t)(s << (bits - 1) | m);
	}
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

/* The decoded integer of weight element i. */
static int32_t wval(const Tensor *w, int64_t i)
{
	return ir_wdecode(w->q, (int32_t)ir_get_i64(w, i));
}

/* The accumulator bound of the docs for output channel ch: the largest
 * partial sum sum_k max(w_k * xlo, w_k * xhi) and its mirror (xlo, xhi
 * the centred input range), over weights w[idx(ch, k)], k < K. */
static int64_t chan_bound(const Tensor *w, int64_t ch, int64_t K, int64_t stk, int64_t stc, int64_t xlo, int64_t xhi)
{
	int64_t up = 0, dn = 0;
	for (int64_t k = 0; k < K; k++) {
		int64_t v = wval(w, ch * stc + k * stk), a = v * xlo, b = v * xhi;
		up += a > b ? a : b;
		dn += a < b ? a : b;
	}
	return up > -dn ? up : -dn;
}

/* Shrink codes of channel ch (magnitude index - 1) until its bound fits
 * `limit`: weights that pass_accbound would accept for P bits. */
static void fit_bound(Tensor *w, int64_t nch, int64_t K, int64_t stk, int64_t stc, int64_t xlo, int64_t xhi,
                      int64_t limit)
{
	int bits = w->q->bits;
	for (int64_t ch = 0; ch < nch; ch++)
		while (chan_bound(w, ch, K, stk, stc, xlo, xhi) > limit) {
			int64_t i = ch * stc + rnd_in(0, K - 1) * stk;
			if (w->q->code == WQ_UNIFORM) {
				((int8_t *)w->data)[i] /= 2;
				continue;
			}
			uint8_t *p = (uint8_t *)w->data + i;
			int32_t m = *p & ((1 << (bits - 1)) - 1);
			if (m)
				*p = (uint8_t)((*p & (1 << (bits - 1))) | (m - 1));
		}
}

/* ---- the QNode ---- */

static QNode *qnode_new(int nr, int32_t lo, int32_t hi, int P, int ktile, int method)
{
	QNode *q = arena_alloc(arena, sizeof *q);
	q->nr = nr;
	q->r = arena_alloc(arena, sizeof *q->r * (size_t)nr);
	for (int i = 0; i < nr; i++)
		q->r[i] = rnd_in(0, 1) ? (Rescale){0, (int)rnd_in(0, 10)}
		                       : (Rescale){(int32_t)rnd_in(1 << 30, 0x7fffffff), (int)rnd_in(0, 10)};
	q->lo = lo;
	q->hi = hi;
	q->acc_limit = INT32_MAX;
	q->acc_bits = P;
	q->ktile = ktile;
	q->acc_method = method;
	return q;
}

typedef struct {
	int code, bits, maxm;  /* weights */
	int P, ktile, method;  /* accumulator */
	int fit;               /* shrink the weights to the P-bit bound */
} Acc;

typedef struct {
	int nsp, k[3], s[3], d[3], pad[6], group;
} Win;

static int64_t conv_out(int64_t in, int k, int s, int d, int pb, int pe)
{
	return (in + pb + pe - (int64_t)(k - 1) * d - 1) / s + 1;
}

/* Conv of x with M output channels; returns y. */
static int qconv(int x, int64_t M, const Win *W, const Acc *A, int relu)
{
	const Tensor *X = &g->tensor[x];
	int64_t wd[5] = {M, X->dim[1] / W->group}, yd[5] = {X->dim[0], M};
	for (int i = 0; i < W->nsp; i++) {
		wd[2 + i] = W->k[i];
		yd[2 + i] = conv_out(X->dim[2 + i], W->k[i], W->s[i], W->d[i], W->pad[i], W->pad[W->nsp + i]);
	}
	int w = qweights(2 + W->nsp, wd, 0, A->code, A->bits, A->maxm);
	int64_t K = ir_numel(&g->tensor[w]) / M;
	int64_t xlo = ir_qmin(X->q) - X->q->zp[0], xhi = ir_qmax(X->q) - X->q->zp[0];
	if (A->fit)
		fit_bound(&g->tensor[w], M, K, 1, K, xlo, xhi, (1 << (A->P - 1)) - 1);
	int b = qbias(M, 1 << 12);
	int y = qtensor(TK_VALUE, 8, 0, 3, 2 + W->nsp, yd);
	int in[3] = {x, w, b};
	int n = ir_node_new(g, OP_CONV, NULL, 3, in, 1, &y);
	Window *wi = &g->node[n].a.win;
	wi->nsp = W->nsp;
	wi->group = W->group;
	for (int i = 0; i < W->nsp; i++) {
		wi->k[i] = W->k[i];
		wi->s[i] = W->s[i];
		wi->d[i] = W->d[i];
		wi->pad[i] = W->pad[i];
		wi->pad[W->nsp + i] = W->pad[W->nsp + i];
	}
	g->node[n].q = qnode_new((int)M, relu ? 3 : -128, 127, A->P, A->ktile, A->method);
	return y;
}

/* Gemm a [R, K] x B (constant [K, N], or [N, K] when tb) + C. */
static int qgemm(int a, int64_t N, int tb, const Acc *A)
{
	const Tensor *X = &g->tensor[a];
	int64_t R = X->dim[0], K = X->dim[1];
	int b = tb ? qweights(2, DIMS(N, K), 0, A->code, A->bits, A->maxm)
	           : qweights(2, DIMS(K, N), 1, A->code, A->bits, A->maxm);
	int64_t xlo = ir_qmin(X->q) - X->q->zp[0], xhi = ir_qmax(X->q) - X->q->zp[0];
	if (A->fit)
		fit_bound(&g->tensor[b], N, K, tb ? 1 : N, tb ? K : 1, xlo, xhi, (1 << (A->P - 1)) - 1);
	int ct = qbias(N, 1 << 12);
	int y = qtensor(TK_VALUE, 8, 0, 0, 2, DIMS(R, N));
	int in[3] = {a, b, ct};
	int n = ir_node_new(g, OP_GEMM, NULL, 3, in, 1, &y);
	g->node[n].a.gemm.alpha = g->node[n].a.gemm.beta = 1;
	g->node[n].a.gemm.tb = tb;
	g->node[n].q = qnode_new((int)N, -128, 127, A->P, A->ktile, A->method);
	return y;
}

/* ---- compile and run ---- */

typedef struct {
	const char *cc, *flags;
	int run;   /* 0: compile model.c only */
} Variant;

static const Variant variants[] = {
	{"gcc", "-O2 -march=native", 1},
	{"gcc", "-O3 -mavx2", 1},
	{"gcc", "-O2 -mgeneral-regs-only", 1},
	{"clang", "-O2 -march=native -Wno-unused-function", 1},
	{"gcc", "-O1 -DPOTC_CHECK_ACC -fsanitize=undefined -fno-sanitize-recover=all", 1},
	{"clang", "-O1 -DPOTC_CHECK_ACC -fsanitize=undefined -fno-sanitize-recover=all -Wno-unused-function", 1},
	{"arm-none-eabi-gcc", "-O2 -mcpu=cortex-m0 -mthumb -mfloat-abi=soft", 0},
};

static const char *const STD = "-std=c99 -pedantic -Wall -Wextra -Werror";

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

/* main.c: reads nset inputs from argv[1], writes the outputs to argv[2]. */
static void write_main(const char *path)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	const Tensor *x = &g->tensor[g->input[0]], *y = &g->tensor[g->output[0]];
	fprintf(f, "#include <stdio.h>\n#include <stdlib.h>\n#include \"model.h\"\n");
	fprintf(f, "static %s in0[%lld];\n", x->dtype == DT_U8 ? "uint8_t" : "int8_t", (long long)ir_numel(x));
	fprintf(f, "static unsigned char out0[%zu];\n", ir_nbytes(y));
	fprintf(f, "int main(int argc, char **argv)\n{\n");
	fprintf(f, "\tFILE *fi = fopen(argv[1], \"rb\"), *fo = fopen(argv[2], \"wb\");\n");
	fprintf(f, "\tint n = atoi(argv[3]);\n\t(void)argc;\n\tif (!fi || !fo) return 1;\n");
	fprintf(f, "\tfor (int s = 0; s < n; s++) {\n");
	fprintf(f, "\t\tif (fread(in0, sizeof in0, 1, fi) != 1) return 2;\n");
	fprintf(f, "\t\tmodel_run(in0, (void *)out0);\n\t\tfwrite(out0, sizeof out0, 1, fo);\n\t}\n");
	fprintf(f, "\tfclose(fi);\n\treturn fclose(fo) != 0;\n}\n");
	fclose(f);
}

/* Input set s: random (0, 1), all qmin (2), all qmax (3), alternating (4),
 * then (Gemm, adv) for each column j the row x = qmax where w > 0 and qmin
 * where w < 0, and its mirror, one row of the [R, K] input per (j, sign). */
enum { NPLAIN = 5 };

static void fill_set(const Tensor *t, int s, const Tensor *w, int tb, void *p)
{
	int32_t lo = ir_qmin(t->q), hi = ir_qmax(t->q);
	int64_t n = ir_numel(t), K = t->dim[t->rank - 1];
	for (int64_t i = 0; i < n; i++) {
		int64_t v;
		if (s < NPLAIN) {
			v = s < 2 ? rnd_in(lo, hi) : s == 2 ? lo : s == 3 ? hi : i % 2 ? lo : hi;
		} else {
			int64_t N = w->dim[tb ? 0 : 1], row = i / K, k = i % K;
			int64_t j = (row / 2 + (int64_t)(s - NPLAIN) * (n / K / 2)) % N;
			int32_t wv = wval(w, tb ? j * K + k : k * N + j);
			int up = (wv > 0) == (row % 2 == 0);
			v = wv == 0 ? rnd_in(lo, hi) : up ? hi : lo;
		}
		if (t->dtype == DT_U8)
			((uint8_t *)p)[i] = (uint8_t)v;
		else
			((int8_t *)p)[i] = (int8_t)v;
	}
}

/* ir_qeval with the weights decoded: the reference. */
static void qeval_decoded(int wt, const void *in, void *out)
{
	Tensor *W = &g->tensor[wt];
	Tensor keep = *W;
	int8_t *dec = NULL;
	if (W->q->code != WQ_UNIFORM) {
		dec = malloc((size_t)ir_numel(W) + 1);
		for (int64_t i = 0; i < ir_numel(W); i++)
			dec[i] = (int8_t)wval(&keep, i);
		Quant *q = arena_dup(arena, W->q, sizeof *W->q);
		q->code = WQ_UNIFORM;
		q->bits = 8;
		W->q = q;
		W->dtype = DT_I8;
		W->data = dec;
	}
	const void *iv[1] = {in};
	void *ov[1] = {out};
	int bad = ir_qeval(g, iv, ov, NULL, NULL, &diag);
	*W = keep;
	free(dec);
	if (bad)
		fail_msg("ir_qeval: %s", diag.last);
}

/* Emit the graph x -> y into a fresh directory (returned). */
static char *emit_dir(int x, int y)
{
	g->input = arena_dup(arena, &x, sizeof(int));
	g->ninput = 1;
	g->output = arena_dup(arena, &y, sizeof(int));
	g->noutput = 1;
	g->tensor[y].is_output = 1;
	assert_int_equal(pass_memplan(g, &diag), 0);
	char *dir = arena_strdup(arena, "/tmp/potc_qnarrow_XXXXXX"), p[256];
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
	return dir;
}

static void done(const char *dir)
{
	if (!getenv("POTC_KEEP"))
		sh("rm -rf %s", dir);
	else
		print_message("    kept %s\n", dir);
}

/* Emit, compile every variant, run nset input sets, compare with the
 * evaluator.  adv: add the adversarial sets (Gemm). */
static void check(int x, int y, int wt, int adv)
{
	char *dir = emit_dir(x, y), p[256];
	const Tensor *X = &g->tensor[x], *W = &g->tensor[wt];
	int tb = g->node[g->tensor[y].producer].op == OP_GEMM && g->node[g->tensor[y].producer].a.gemm.tb;
	int nset = NPLAIN + (adv ? 2 : 0);
	size_t ib = ir_nbytes(X), ob = ir_nbytes(&g->tensor[y]);
	unsigned char *all = malloc(ib * nset), *want = malloc(ob * nset), *got = malloc(ob * nset);
	for (int s = 0; s < nset; s++) {
		fill_set(X, s, W, tb, all + ib * s);
		qeval_decoded(wt, all + ib * s, want + ob * s);
	}
	snprintf(p, sizeof p, "%s/in.bin", dir);
	FILE *f = fopen(p, "wb");
	fwrite(all, ib * nset, 1, f);
	fclose(f);
	for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
		const Variant *V = &variants[v];
		if (!have(V->cc))
			continue;
		if (!V->run) {
			if (sh("cd %s && %s %s %s -c model.c -o model_arm.o", dir, V->cc, STD, V->flags))
				fail_msg("%s %s: model.c does not compile (dir %s)", V->cc, V->flags, dir);
			continue;
		}
		if (sh("cd %s && %s %s %s model.c main.c -o prog", dir, V->cc, STD, V->flags))
			fail_msg("%s %s: does not compile (dir %s)", V->cc, V->flags, dir);
		if (sh("cd %s && ./prog in.bin out.bin %d", dir, nset))
			fail_msg("%s %s: the program failed (dir %s)", V->cc, V->flags, dir);
		snprintf(p, sizeof p, "%s/out.bin", dir);
		f = fopen(p, "rb");
		assert_non_null(f);
		assert_int_equal(fread(got, ob * nset, 1, f), 1);
		fclose(f);
		for (int s = 0; s < nset; s++)
			if (memcmp(got + ob * s, want + ob * s, ob))
				fail_msg("%s %s: input set %d differs from ir_qeval (dir %s)", V->cc, V->flags, s, dir);
	}
	free(all);
	free(want);
	free(got);
	done(dir);
}

/* The weight tensor of the graph's only node. */
static int wt_of(int y)
{
	return g->node[g->tensor[y].producer].in[1];
}

/* ---- (1) bit-exactness ---- */

static const Win W3 = {2, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1};

static void conv_case(int uns, const Win *W, int64_t C, int64_t M, const Acc *A)
{
	int x = qtensor(TK_INPUT, 8, uns, uns ? 17 : -2, 4, DIMS(1, C, 11, 13));
	int y = qconv(x, M, W, A, 0);
	check(x, y, wt_of(y), 0);
	teardown(NULL);
	setup(NULL);
}

static void test_pot_conv(void **state)
{
	(void)state;
	Win st = {2, {3, 2}, {2, 3}, {1, 2}, {2, 0, 1, 3}, 2};
	Win dw = {2, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 8};
	for (int code = WQ_POT; code <= WQ_APOT; code++)
		for (int bits = 3; bits <= 4; bits++) {
			Acc A = {code, bits, (1 << (bits - 1)) - 1, 0, 0, ACC_FITS, 0};
			conv_case(0, &W3, 6, 10, &A);
			conv_case(1, &st, 4, 6, &A);
			conv_case(0, &dw, 8, 8, &A);
		}
}

static void test_pot_gemm(void **state)
{
	(void)state;
	for (int code = WQ_POT; code <= WQ_APOT; code++)
		for (int tb = 0; tb <= 1; tb++) {
			Acc A = {code, 4, 7, 0, 0, ACC_FITS, 0};
			int x = qtensor(TK_INPUT, 8, tb, tb ? 100 : 0, 2, DIMS(3, 37));
			int y = qgemm(x, 21, tb, &A);
			check(x, y, wt_of(y), 1);
			teardown(NULL);
			setup(NULL);
		}
}

/* acc_bits 16 with and without ktile, uniform and PoT weights that fit */
static void test_acc16_conv(void **state)
{
	(void)state;
	Win dw = {2, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 8};
	Win st = {2, {3, 2}, {2, 3}, {1, 2}, {2, 0, 1, 3}, 2};
	int ktiles[3] = {0, 9, 20};
	for (int t = 0; t < 3; t++) {
		Acc U = {WQ_UNIFORM, 8, 0, 16, ktiles[t], ktiles[t] ? ACC_TILED : ACC_FITS, 1};
		conv_case(1, &W3, 3, 5, &U);
		Acc P = {WQ_POT, 4, 7, 16, ktiles[t], ACC_FITS, 1};
		conv_case(0, &W3, 8, 12, &P);
		conv_case(1, &dw, 8, 8, &P);
		Acc Q = {WQ_APOT, 3, 3, 12, ktiles[t], ACC_FITS, 1};
		conv_case(0, &W3, 4, 4, &Q);
		conv_case(1, &st, 4, 6, &Q);  /* strided: the general (not flat) loops */
		conv_case(0, &st, 4, 6, &U);
	}
}

static void test_acc16_gemm(void **state)
{
	(void)state;
	int ktiles[3] = {0, 8, 13};
	for (int t = 0; t < 3; t++)
		for (int code = WQ_POT; code <= WQ_APOT; code++) {
			Acc A = {code, 4, 7, 16, ktiles[t], ACC_FITS, 1};
			int x = qtensor(TK_INPUT, 8, 0, 0, 2, DIMS(2 * 24, 64));
			int y = qgemm(x, 24, t % 2, &A);
			check(x, y, wt_of(y), 1);
			teardown(NULL);
			setup(NULL);
		}
}


/* MatMul a [2, 3, K] x B (constant [K, N]): batch rows flattened. */
static void test_matmul(void **state)
{
	(void)state;
	for (int code = WQ_UNIFORM; code <= WQ_APOT; code++) {
		Acc A = {code, code == WQ_UNIFORM ? 8 : 4, 7, 16, 10, ACC_TILED, 1};
		int64_t K = 40, N = 12;
		int x = qtensor(TK_INPUT, 8, 0, 0, 3, DIMS(2, 3, K));
		int b = qweights(2, DIMS(K, N), 1, A.code, A.bits, A.maxm);
		fit_bound(&g->tensor[b], N, K, N, 1, -128, 127, (1 << 15) - 1);
		int y = qtensor(TK_VALUE, 8, 0, -3, 3, DIMS(2, 3, N));
		int in[2] = {x, b};
		int n = ir_node_new(g, OP_MATMUL, NULL, 2, in, 1, &y);
		g->node[n].q = qnode_new((int)N, -128, 127, A.P, A.ktile, A.method);
		check(x, y, b, 0);
		teardown(NULL);
		setup(NULL);
	}
}

/* ---- (3) negative control: weights past the 16-bit bound, unchecked ---- */

/* A Gemm whose columns' worst partial sums exceed 2^15 (every weight
 * +-64, K = 64, int8 input), acc_bits 16, ACC_UNCHECKED: the checking
 * build must abort on the adversarial rows; the plain build runs and
 * (wrapping) differs from the wide result, which is why the proof or the
 * check is needed. */
static void test_check_traps(void **state)
{
	(void)state;
	Acc A = {WQ_POT, 4, 7, 16, 0, ACC_UNCHECKED, 0};
	int x = qtensor(TK_INPUT, 8, 0, 0, 2, DIMS(8, 64));
	int y = qgemm(x, 4, 0, &A);
	Tensor *W = &g->tensor[wt_of(y)];
	for (int64_t i = 0; i < ir_numel(W); i++)
		((uint8_t *)W->data)[i] = (uint8_t)((rnd32() & 8) | 7);
	assert_true(chan_bound(W, 0, 64, 4, 1, -128, 127) > 32767);
	char *dir = emit_dir(x, y), p[256];
	const Tensor *X = &g->tensor[x];
	size_t ib = ir_nbytes(X), ob = ir_nbytes(&g->tensor[y]);
	unsigned char *in = malloc(ib), *want = malloc(ob), *got = malloc(ob);
	fill_set(X, NPLAIN, W, 0, in);
	qeval_decoded(wt_of(y), in, want);
	snprintf(p, sizeof p, "%s/in.bin", dir);
	FILE *f = fopen(p, "wb");
	fwrite(in, ib, 1, f);
	fclose(f);
	if (sh("cd %s && gcc %s -O1 -DPOTC_CHECK_ACC -fsanitize=undefined -fno-sanitize-recover=all model.c main.c "
	       "-o prog", dir, STD))
		fail_msg("the checking build does not compile (dir %s)", dir);
	if (sh("cd %s && ./prog in.bin out.bin 1 2>/dev/null", dir) == 0)
		fail_msg("POTC_CHECK_ACC did not trap on an overflowing 16-bit accumulator (dir %s)", dir);
	if (sh("cd %s && gcc %s -O2 model.c main.c -o prog && ./prog in.bin out.bin 1", dir, STD))
		fail_msg("the plain build failed (dir %s)", dir);
	snprintf(p, sizeof p, "%s/out.bin", dir);
	f = fopen(p, "rb");
	assert_non_null(f);
	assert_int_equal(fread(got, ob, 1, f), 1);
	fclose(f);
	assert_true(memcmp(got, want, ob) != 0);
	free(in);
	free(want);
	free(got);
	done(dir);
}

/* ---- (4) no multiplication in a PoT kernel ---- */

/* The text of function fn in file path (signature to the first line that
 * is a lone closing brace), malloc'ed. */
static char *fn_text(const char *path, const char *fn)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char line[4096], *out = calloc(1, 1);
	size_t len = 0;
	int in = 0;
	while (fgets(line, sizeof line, f)) {
		if (!in && strncmp(line, "static void ", 12) == 0 && strstr(line, fn))
			in = 1;
		if (!in)
			continue;
		size_t l = strlen(line);
		out = realloc(out, len + l + 1);
		memcpy(out + len, line, l + 1);
		len += l;
		if (strcmp(line, "}\n") == 0)
			break;
	}
	fclose(f);
	return out;
}

/* The PoT Conv of the CNN sample's second layer (16 -> 32 channels,
 * 14x14, 3x3), APoT and PoT, 16- and 32-bit accumulators.  Two checks:
 * (a) text: the kernel's every binary '*' (written " * " by the emitter;
 * pointer declarations and casts have no space after the star) has an
 * integer literal on its right: all multiplications are index arithmetic
 * by a constant, none takes an activation or a weight; (b) code: gcc
 * -O3 -march=native and -O3 -mavx2 compile model.c (this one node) without any vector
 * multiply (pmull*, pmadd*, vpmull*, vpmadd*): the hot loop shifts. */
static void test_no_multiply(void **state)
{
	(void)state;
	for (int code = WQ_POT; code <= WQ_APOT; code++)
		for (int P = 0; P <= 16; P += 16) {
			Acc A = {code, 4, 7, P, 0, ACC_FITS, P > 0};
			int x = qtensor(TK_INPUT, 8, 1, 0, 4, DIMS(1, 16, 14, 14));
			int y = qconv(x, 32, &W3, &A, 1);
			QNode *q = g->node[g->tensor[y].producer].q;
			q->nr = 1;
			q->r[0] = (Rescale){0, 7};
			char *dir = emit_dir(x, y), p[256];
			snprintf(p, sizeof p, "%s/model.c", dir);
			char *t = fn_text(p, "n0_conv(");
			assert_non_null(strstr(t, "switch (mi)"));
			for (const char *s = strstr(t, " * "); s; s = strstr(s + 1, " * "))
				if (s[3] < '0' || s[3] > '9')
					fail_msg("a multiplication by a non-literal in the PoT kernel: \"%.40s\" (dir %s)", s - 20,
					         dir);
			free(t);
			for (int v = 0; v < 2 && have("objdump"); v++)
				if (sh("cd %s && gcc %s -O3 %s -c model.c -o m.o", dir, STD, v ? "-mavx2" : "-march=native") ||
				    sh("cd %s && objdump -d --no-show-raw-insn m.o > f.s && test -s f.s", dir) ||
				    sh("cd %s && ! grep -Eq 'p(mul|madd)' f.s", dir))
					fail_msg("the compiled PoT kernel has a vector multiply (dir %s/f.s)", dir);
			done(dir);
			teardown(NULL);
			setup(NULL);
		}
}

/* ---- models for bench/qnarrow.sh ---- */

/* With POTC_QNARROW_BENCH=dir: the CNN sample's second Conv (u8 16x14x14
 * -> 32 channels, 3x3, pad 1) as dir/<name>/model.c for uniform, PoT and
 * APoT weights with 32- and 16-bit accumulators (weights fitted to 16
 * bits in both, so the two compute the same numbers). */
static void test_bench_models(void **state)
{
	(void)state;
	const char *root = getenv("POTC_QNARROW_BENCH");
	if (!root)
		return;
	static const struct {
		const char *name;
		int code, P, ktile;
	} m[] = {
		{"u8_acc32_eqconv", WQ_UNIFORM, 0, 0}, {"u8_acc32", WQ_UNIFORM, 0, 144},
		{"u8_acc16", WQ_UNIFORM, 16, 0},      {"pot4_acc32", WQ_POT, 0, 0},
		{"pot4_acc16", WQ_POT, 16, 0},        {"apot4_acc32", WQ_APOT, 0, 0},
		{"apot4_acc16", WQ_APOT, 16, 0},
	};
	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
		Acc A = {m[i].code, m[i].code == WQ_UNIFORM ? 8 : 4, 7, 16, m[i].ktile, ACC_FITS, 1};
		int x = qtensor(TK_INPUT, 8, 1, 0, 4, DIMS(1, 16, 14, 14));
		int y = qconv(x, 32, &W3, &A, 1);
		g->node[g->tensor[y].producer].q->acc_bits = m[i].P;
		char *dir = emit_dir(x, y);
		assert_int_equal(sh("mkdir -p %s && rm -rf %s/%s && mv %s %s/%s", root, root, m[i].name, dir, root,
		                    m[i].name), 0);
		teardown(NULL);
		setup(NULL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pot_conv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pot_gemm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acc16_conv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acc16_gemm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_matmul, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_traps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_multiply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bench_models, setup, teardown),
	};
	const struct CMUnitTest bench[] = {
		cmocka_unit_test_setup_teardown(test_bench_models, setup, teardown),
	};
	if (getenv("POTC_QNARROW_BENCH"))
		return cmocka_run_group_tests(bench, NULL, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
