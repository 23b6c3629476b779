/* The C backend's integer mode against the integer evaluator: small
 * lowered graphs (quantized tensors, QNodes) built by hand are planned,
 * emitted with their driver, compiled (model.c with -mgeneral-regs-only,
 * so any floating point in it is a compile error), run through the
 * driver's --raw mode on random and extreme integer inputs (all qmin,
 * all qmax, alternating), and their outputs compared bit for bit with
 * ir_qeval's.  Also: model.c has no float token, compiles for a
 * Cortex-M0 without pulling in a float routine, runs clean under UBSan
 * (-fsanitize=undefined, on the extreme inputs);
 * the driver's float path quantizes and dequantizes as ir_quantize and
 * ir_dequantize; sub-byte weights pack as emit_impl.h documents.
 * POTC_KEEP=1 keeps the temporary directories. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sys/wait.h>
#include <unistd.h>

#include "emit_c.h"
#include "emit_impl.h"
#include "passes.h"
#include "npy_io.c"
#include "irtest.h"

/* ---- graph builder (on irtest.h's g) ---- */

enum { MAXIO = 8 };
static int ins[MAXIO], nins, outs[MAXIO], nouts;
static unsigned seed;

static int qsetup(void **state)
{
	nins = nouts = 0;
	seed = 2024;
	return setup(state);
}

static uint32_t rnd(void)
{
	seed = seed * 1103515245u + 12345u;
	return seed >> 8;
}

/* A per-tensor Quant; frac >= 0 makes it fixed point (scale 2^-frac). */
static Quant *qq(int bits, int uns, double scale, int32_t zp)
{
	Quant *q = ir_quant_new(arena, 1, -1, bits, uns);
	q->scale[0] = scale;
	q->zp[0] = zp;
	return q;
}

static Quant *qfrac(int bits, int frac)
{
	Quant *q = qq(bits, 0, ldexp(1, -frac), 0);
	q->frac = arena_alloc(arena, sizeof *q->frac);
	q->frac[0] = frac;
	return q;
}

static int tval(Quant *q, int rank, const int64_t *dim)
{
	int t = ir_tensor_new(g, NULL, ir_quant_dtype(q), rank, dim);
	g->tensor[t].q = q;
	return t;
}

static int tin(Quant *q, int rank, const int64_t *dim)
{
	int t = tval(q, rank, dim);
	g->tensor[t].kind = TK_INPUT;
	ins[nins++] = t;
	return t;
}

static void tout(int t)
{
	g->tensor[t].is_output = 1;
	outs[nouts++] = t;
}

/* A quantized constant; random values in q's range when v is NULL. */
static int tconst(Quant *q, int rank, const int64_t *dim, const int32_t *v)
{
	int t = ir_const_new(g, NULL, ir_quant_dtype(q), rank, dim, NULL);
	Tensor *T = &g->tensor[t];
	T->q = q;
	for (int64_t i = 0; i < ir_numel(T); i++) {
		int64_t x = v ? v[i] : ir_qmin(q) + (int64_t)(rnd() % (uint32_t)(ir_qmax(q) - (int64_t)ir_qmin(q) + 1));
		switch (T->dtype) {
		case DT_I8: ((int8_t *)T->data)[i] = (int8_t)x; break;
		case DT_U8: ((uint8_t *)T->data)[i] = (uint8_t)x; break;
		case DT_I16: ((int16_t *)T->data)[i] = (int16_t)x; break;
		case DT_U16: ((uint16_t *)T->data)[i] = (uint16_t)x; break;
		default: ((int32_t *)T->data)[i] = (int32_t)x; break;
		}
	}
	return t;
}

static QNode *qnode(int32_t lo, int32_t hi)
{
	QNode *q = arena_alloc(arena, sizeof *q);
	q->lo = lo;
	q->hi = hi;
	return q;
}

static QNode *with_r(QNode *q, Rescale r)
{
	q->nr = 1;
	q->r = arena_dup(arena, &r, sizeof r);
	return q;
}

static QNode *with_rin(QNode *q, int n, const Rescale *r)
{
	q->nrin = n;
	q->rin = arena_dup(arena, r, sizeof *r * (size_t)n);
	return q;
}

/* Node op(in...) -> out, with its QNode (NULL: data movement). */
static Node *node(Op op, int nin, const int *in, int out, QNode *q)
{
	int n = ir_node_new(g, op, NULL, nin, in, 1, &out);
	g->node[n].q = q;
	return &g->node[n];
}

static void finish(void)
{
	g->input = arena_dup(arena, ins, sizeof(int) * (size_t)nins);
	g->ninput = nins;
	g->output = arena_dup(arena, outs, sizeof(int) * (size_t)nouts);
	g->noutput = nouts;
}

/* ---- running ---- */

static const char *cc(void)
{
	const char *c = getenv("CC");
	return c && *c ? c : "gcc";
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

static NpyType npy_of(DType t)
{
	switch (t) {
	case DT_I8: return NPY_I1;
	case DT_U8: return NPY_U1;
	case DT_I16: return NPY_I2;
	case DT_U16: return NPY_U2;
	case DT_I32: return NPY_I4;
	default: return NPY_F4;
	}
}

static void put(DType dt, void *p, int64_t i, int64_t v)
{
	switch (dt) {
	case DT_I8: ((int8_t *)p)[i] = (int8_t)v; break;
	case DT_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
	case DT_I16: ((int16_t *)p)[i] = (int16_t)v; break;
	case DT_U16: ((uint16_t *)p)[i] = (uint16_t)v; break;
	default: ((int32_t *)p)[i] = (int32_t)v; break;
	}
}

/* Input values: 0 random in the bit range, 1 all qmin, 2 all qmax,
 * 3 alternating qmin / qmax (offset per input so inputs differ). */
enum { NMODES = 4 };

static void fill(const Tensor *t, int mode, int k, void *p)
{
	int64_t lo = ir_qmin(t->q), hi = ir_qmax(t->q);
	for (int64_t i = 0; i < ir_numel(t); i++) {
		int64_t v = mode == 1 ? lo : mode == 2 ? hi : mode == 3 ? ((i + k) % 2 ? hi : lo)
		          : lo + (int64_t)(rnd() % (uint32_t)(hi - lo + 1));
		put(t->dtype, p, i, v);
	}
}

static void save(const char *path, const Tensor *t, NpyType type, const void *data)
{
	long dim[IR_MAXRANK];
	char err[128];
	for (int a = 0; a < t->rank; a++)
		dim[a] = (long)t->dim[a];
	assert_int_equal(npy_write(path, type, t->rank, dim, data, err, sizeof err), 0);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = calloc((size_t)n + 1, 1);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return s;
}

/* model.c without comments, strings and character constants has no
 * float or double type, no math.h and no floating literal. */
static void no_float_text(const char *path)
{
	char *s = slurp(path), *t = calloc(strlen(s) + 1, 1);
	size_t k = 0;
	for (const char *p = s; *p;) {
		if (p[0] == '/' && p[1] == '*') {
			const char *e = strstr(p + 2, "*/");
			p = e ? e + 2 : p + strlen(p);
			t[k++] = ' ';
		} else if (p[0] == '/' && p[1] == '/') {
			while (*p && *p != '\n')
				p++;
		} else if (*p == '"' || *p == '\'') {
			char qc = *p++;
			while (*p && *p != qc)
				p += p[0] == '\\' && p[1] ? 2 : 1;
			p += *p ? 1 : 0;
			t[k++] = ' ';
		} else {
			t[k++] = *p++;
		}
	}
	for (const char *p = t; *p; p++) {
		int start = p == t || !(p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z') ||
		                        (p[-1] >= 'A' && p[-1] <= 'Z') || (p[-1] >= '0' && p[-1] <= '9'));
		if (start && (strncmp(p, "float", 5) == 0 || strncmp(p, "double", 6) == 0))
			fail_msg("model.c has a floating type: %.40s", p);
		if (strncmp(p, "math.h", 6) == 0)
			fail_msg("model.c includes math.h");
		/* a digit next to a '.' is a floating literal in C (no member
		 * access or ellipsis touches a digit) */
		if (*p == '.' && ((p > t && p[-1] >= '0' && p[-1] <= '9') || (p[1] >= '0' && p[1] <= '9')))
			fail_msg("model.c has a floating literal: %.40s", p > t + 10 ? p - 10 : t);
	}
	free(s);
	free(t);
}

/* For a Cortex-M0 (no FPU): the object references no float routine. */
static void arm_check(const char *dir)
{
	if (sh("command -v arm-none-eabi-gcc >/dev/null 2>&1 && command -v arm-none-eabi-nm >/dev/null 2>&1")) {
		print_message("    arm-none-eabi-gcc absent: Cortex-M0 check skipped\n");
		return;
	}
	assert_int_equal(sh("arm-none-eabi-gcc -std=c99 -pedantic -Wall -Wextra -Werror -mcpu=cortex-m0 "
	                    "-mthumb -mfloat-abi=soft -O2 -c %s/model.c -o %s/model_m0.o", dir, dir), 0);
	assert_int_equal(sh("arm-none-eabi-nm %s/model_m0.o > %s/nm.txt", dir, dir), 0);
	char path[128];
	snprintf(path, sizeof path, "%s/nm.txt", dir);
	char *s = slurp(path);
	static const char *const bad[] = {"__aeabi_f", "__aeabi_d", "__aeabi_i2f", "__aeabi_i2d",
		"__aeabi_l2f", "__aeabi_l2d", "__aeabi_ui2f", "__aeabi_ui2d", "sf3", "df3", "sf2", "df2",
		"sisf", "sidf", "disf", "didf", "__float", "__fix", "__extend", "__trunc", "__addsf",
		"__muldf", NULL};
	for (int i = 0; bad[i]; i++)
		if (strstr(s, bad[i]))
			fail_msg("Cortex-M0 object calls a float routine (%s):\n%s", bad[i], s);
	free(s);
}

static const char *WARN = "-std=c99 -pedantic -Wall -Wextra -Werror";

typedef struct {
	char dir[64];
	int ubsan;     /* also build and run prog_ub under UBSan */
	int float_io;  /* also run the driver's float path */
} Opt;

/* Emit model.c, model.h, driver.c into o->dir; compile prog (and
 * prog_ub).  Returns the emitted weight bytes. */
static int64_t build(Opt *o)
{
	finish();
	assert_int_equal(pass_memplan(g, &diag), 0);
	if (ir_verify(g, &diag))
		fail_msg("ir_verify: %s", diag.last);
	strcpy(o->dir, "/tmp/potc_qemit_XXXXXX");
	assert_non_null(mkdtemp(o->dir));
	char path[3][128];
	snprintf(path[0], sizeof path[0], "%s/model.c", o->dir);
	snprintf(path[1], sizeof path[1], "%s/model.h", o->dir);
	snprintf(path[2], sizeof path[2], "%s/driver.c", o->dir);
	FILE *c = fopen(path[0], "w"), *h = fopen(path[1], "w"), *m = fopen(path[2], "w");
	EmitCSizes sz = {0, 0};
	EmitC eo = {.name = "model", .header = "model.h", .source = "test.onnx", .sizes = &sz};
	int e1 = emit_c(g, &eo, c, h, &diag), e2 = emit_c_driver(g, &eo, m, &diag);
	fclose(c);
	fclose(h);
	fclose(m);
	if (e1 || e2)
		fail_msg("emit: %s (dir %s)", diag.last, o->dir);
	no_float_text(path[0]);
	const char *d = o->dir;
	assert_int_equal(sh("%s %s -mgeneral-regs-only -O2 -c %s/model.c -o %s/model.o", cc(), WARN, d, d), 0);
	assert_int_equal(sh("%s %s -O2 -c %s/driver.c -o %s/driver.o", cc(), WARN, d, d), 0);
	assert_int_equal(sh("%s -o %s/prog %s/model.o %s/driver.o", cc(), d, d, d), 0);
	if (o->ubsan)
		assert_int_equal(sh("%s %s -O1 -g -fsanitize=undefined -fno-sanitize-recover=all -o %s/prog_ub "
		                    "%s/model.c %s/driver.c", cc(), WARN, d, d, d), 0);
	arm_check(d);
	return sz.weight_bytes;
}

static void done(Opt *o)
{
	if (!getenv("POTC_KEEP"))
		sh("rm -rf %s", o->dir);
	else
		print_message("    kept %s\n", o->dir);
}

/* One run of prog (or prog_ub) --raw on inputs of the given mode,
 * compared with ir_qeval bit for bit. */
static void run_mode(Opt *o, const char *prog, int mode)
{
	void *in[MAXIO], *ref[MAXIO];
	char args[1024] = "", p[128], err[128];
	size_t k = 0;
	for (int i = 0; i < nins; i++) {
		const Tensor *t = &g->tensor[ins[i]];
		in[i] = calloc(ir_nbytes(t) + 1, 1);
		fill(t, mode, i, in[i]);
		snprintf(p, sizeof p, "%s/in%d.npy", o->dir, i);
		save(p, t, npy_of(t->dtype), in[i]);
		k += (size_t)snprintf(args + k, sizeof args - k, " %s", p);
	}
	for (int i = 0; i < nouts; i++) {
		ref[i] = calloc(ir_nbytes(&g->tensor[outs[i]]) + 1, 1);
		k += (size_t)snprintf(args + k, sizeof args - k, " -o %s/out%d.npy", o->dir, i);
	}
	if (ir_qeval(g, (const void *const *)in, ref, NULL, NULL, &diag))
		fail_msg("ir_qeval: %s", diag.last);
	assert_int_equal(sh("%s/%s --raw%s", o->dir, prog, args), 0);
	for (int i = 0; i < nouts; i++) {
		const Tensor *t = &g->tensor[outs[i]];
		Npy a;
		snprintf(p, sizeof p, "%s/out%d.npy", o->dir, i);
		assert_int_equal(npy_read(p, &a, err, sizeof err), 0);
		assert_int_equal(a.type, npy_of(t->dtype));
		assert_int_equal(a.count, ir_numel(t));
		if (memcmp(a.data, ref[i], ir_nbytes(t))) {
			for (int64_t j = 0; j < a.count; j++)
				if (ir_load(t->dtype, a.data, j) != ir_load(t->dtype, ref[i], j)) {
					print_error("output %d element %lld: got %g, ir_qeval %g (mode %d)\n", i,
					            (long long)j, ir_load(t->dtype, a.data, j), ir_load(t->dtype, ref[i], j),
					            mode);
					break;
				}
			fail_msg("%s output %d differs from ir_qeval (dir %s)", prog, i, o->dir);
		}
		npy_free(&a);
		free(ref[i]);
	}
	for (int i = 0; i < nins; i++)
		free(in[i]);
}

/* Build, run every input mode (twice random), UBSan on the extremes. */
static void check_opt(Opt *o)
{
	build(o);
	for (int mode = 0; mode < NMODES; mode++)
		run_mode(o, "prog", mode);
	run_mode(o, "prog", 0);
	if (o->ubsan)
		for (int mode = 1; mode < NMODES; mode++)
			run_mode(o, "prog_ub", mode);
	done(o);
}

/* every graph also under UBSan: the extremes are where a shift or an
 * overflow would go wrong */
static void check(void)
{
	Opt o = {"", 1, 0};
	check_opt(&o);
}

/* ---- Add, Sub, Mul ---- */

static void test_add_broadcast(void **state)
{
	(void)state;
	int a = tin(qq(8, 0, 0.05, -3), 4, DIMS(2, 3, 4, 5));
	int b = tin(qq(8, 0, 0.1, 5), 3, DIMS(3, 1, 1));
	int y = tval(qq(8, 0, 0.2, 2), 4, DIMS(2, 3, 4, 5));
	QNode *q = with_rin(qnode(-128, 127), 2, (Rescale[]){ir_rescale(0.73), ir_rescale(1.9)});
	q->ext = 2;
	node(OP_ADD, 2, INS(a, b), y, q);
	/* the same with a fused Relu (lo = zp) and a 64-bit sum */
	int y2 = tval(qq(8, 0, 0.2, 2), 4, DIMS(2, 3, 4, 5));
	QNode *q2 = with_rin(qnode(2, 127), 2, (Rescale[]){ir_rescale(3.0e6), ir_rescale(1.5e7)});
	q2->ext = 40;
	node(OP_ADD, 2, INS(a, b), y2, q2);
	tout(y);
	tout(y2);
	check();
}

static void test_sub_const_u8(void **state)
{
	(void)state;
	Quant *qa = qq(8, 1, 0.02, 128);
	int a = tin(qa, 3, DIMS(4, 6, 5));
	int b = tconst(qq(8, 1, 0.03, 100), 3, DIMS(1, 1, 5), NULL);
	int s = tconst(qq(8, 1, 0.03, 100), 0, NULL, (const int32_t[]){7});
	int y = tval(qq(8, 1, 0.05, 120), 3, DIMS(4, 6, 5));
	int y2 = tval(qq(8, 1, 0.05, 120), 3, DIMS(4, 6, 5));
	QNode *q = with_rin(qnode(0, 255), 2, (Rescale[]){{0, -3}, {0, 1}});
	node(OP_SUB, 2, INS(a, b), y, q);
	/* constant first, a scalar, Q31 rescales with n < 0 (M >= 1) */
	QNode *q2 = with_rin(qnode(10, 200), 2, (Rescale[]){ir_rescale(2.7), ir_rescale(0.3)});
	q2->ext = 1;
	node(OP_SUB, 2, INS(s, a), y2, q2);
	tout(y);
	tout(y2);
	check();
}

static void test_mul(void **state)
{
	(void)state;
	int a = tin(qq(8, 0, 0.05, 0), 2, DIMS(7, 9));
	int b = tin(qq(8, 0, 0.1, -2), 2, DIMS(1, 9));
	int y = tval(qq(8, 0, 0.2, 1), 2, DIMS(7, 9));
	node(OP_MUL, 2, INS(a, b), y, with_r(qnode(-128, 127), ir_rescale(0.025)));
	/* 16-bit operands: the int64 product, a Q31 and a long shift */
	int c = tin(qq(16, 0, 0.001, -5), 2, DIMS(3, 8));
	int d = tin(qq(16, 1, 0.002, 0), 2, DIMS(3, 8));
	int y2 = tval(qq(16, 0, 0.01, 0), 2, DIMS(3, 8));
	int y3 = tval(qq(8, 0, 0.01, 0), 2, DIMS(3, 8));
	node(OP_MUL, 2, INS(c, d), y2, with_r(qnode(-32768, 32767), ir_rescale(2.1e-5)));
	node(OP_MUL, 2, INS(c, d), y3, with_r(qnode(-128, 127), (Rescale){0, 40}));
	tout(y);
	tout(y2);
	tout(y3);
	check();
}

/* ---- pooling and means ---- */

static void avgpool(int x, int y, int incl, int ceil, Rescale r)
{
	Node *n = node(OP_AVGPOOL, 1, INS(x), y, with_r(qnode(-128, 127), r));
	Window *w = &n->a.win;
	w->nsp = 2;
	w->k[0] = w->k[1] = 3;
	w->s[0] = w->s[1] = 2;
	w->d[0] = w->d[1] = 1;
	w->pad[0] = w->pad[1] = w->pad[2] = w->pad[3] = 1;
	w->incl_pad = incl;
	w->ceil = ceil;
}

static void test_avgpool(void **state)
{
	(void)state;
	int x = tin(qq(8, 0, 0.05, -7), 4, DIMS(2, 3, 7, 6));
	for (int incl = 0; incl < 2; incl++) {
		int y = tval(qq(8, 0, 0.04, 3), 4, DIMS(2, 3, 4, 3));
		avgpool(x, y, incl, 0, ir_rescale(1.3));
		tout(y);
	}
	/* ceil_mode: the last column's window runs past the end pad */
	int y = tval(qq(8, 0, 0.04, 3), 4, DIMS(2, 3, 4, 4));
	avgpool(x, y, 1, 1, (Rescale){0, 0});
	tout(y);
	check();
}

static void test_global_pools(void **state)
{
	(void)state;
	int x = tin(qq(8, 1, 0.05, 10), 4, DIMS(2, 5, 4, 4));
	int y = tval(qq(8, 1, 0.02, 0), 4, DIMS(2, 5, 1, 1));
	node(OP_GAVGPOOL, 1, INS(x), y, with_r(qnode(0, 255), ir_rescale(2.5)));
	int x2 = tin(qq(8, 0, 0.05, 4), 4, DIMS(1, 6, 3, 3));
	int y2 = tval(qq(8, 0, 0.07, -1), 4, DIMS(1, 6, 1, 1));
	node(OP_GMAXPOOL, 1, INS(x2), y2, with_r(qnode(-1, 127), ir_rescale(0.05 / 0.07)));
	tout(y);
	tout(y2);
	check();
}

static void test_reducemean(void **state)
{
	(void)state;
	int x = tin(qq(8, 0, 0.05, 3), 4, DIMS(2, 3, 4, 5));
	int ax = ir_const_new(g, NULL, DT_I64, 1, DIMS(2), I64(1, -1));
	int y = tval(qq(8, 0, 0.05, 0), 4, DIMS(2, 1, 4, 1));
	Node *n = node(OP_REDUCEMEAN, 2, INS(x, ax), y, with_r(qnode(-128, 127), ir_rescale(0.9)));
	n->a.reduce.keepdims = 1;
	tout(y);
	check();
}

/* ---- Concat, Relu, Clip ---- */

static void test_concat(void **state)
{
	(void)state;
	int a = tin(qq(8, 0, 0.05, 0), 3, DIMS(2, 3, 4));
	int b = tin(qq(8, 0, 0.1, 5), 3, DIMS(2, 1, 4));
	int c = tconst(qq(8, 0, 0.02, -1), 3, DIMS(2, 2, 4), NULL);
	int y = tval(qq(8, 0, 0.1, 0), 3, DIMS(2, 6, 4));
	Node *n = node(OP_CONCAT, 3, INS(a, b, c), y,
	               with_rin(qnode(-128, 127), 3, (Rescale[]){{0, 1}, {0, 0}, ir_rescale(0.2)}));
	n->a.axis.axis = 1;
	/* data movement: one scale, no QNode */
	Quant *qs = qq(8, 0, 0.05, 2);
	int d = tin(qs, 2, DIMS(3, 2)), e = tin(qs, 2, DIMS(3, 5));
	int y2 = tval(qs, 2, DIMS(3, 7));
	node(OP_CONCAT, 2, INS(d, e), y2, NULL)->a.axis.axis = -1;
	tout(y);
	tout(y2);
	check();
}

static void test_relu_clip(void **state)
{
	(void)state;
	int x = tin(qq(8, 0, 0.05, -5), 2, DIMS(6, 11));
	int y = tval(qq(8, 0, 0.04, -128), 2, DIMS(6, 11));
	node(OP_RELU, 1, INS(x), y, with_r(qnode(-128, 127), ir_rescale(1.25)));
	/* Clip to [-1, 1] real: thresholds in lo, hi; a shift rescale */
	int y2 = tval(qq(8, 0, 0.025, 0), 2, DIMS(6, 11));
	int lo = tconst(qq(8, 0, 0.05, -5), 0, NULL, (const int32_t[]){-25});
	int hi = tconst(qq(8, 0, 0.05, -5), 0, NULL, (const int32_t[]){15});
	node(OP_CLIP, 3, INS(x, lo, hi), y2, with_r(qnode(-40, 40), (Rescale){0, -1}));
	/* fixed point, 16 bits, a left shift that saturates */
	int x3 = tin(qfrac(16, 8), 1, DIMS(50));
	int y3 = tval(qfrac(16, 12), 1, DIMS(50));
	node(OP_RELU, 1, INS(x3), y3, with_r(qnode(0, 32767), (Rescale){0, -4}));
	tout(y);
	tout(y2);
	tout(y3);
	check();
}

/* ---- tables ---- */

static QNode *lut_node(int32_t lo, int32_t hi, int32_t lut_lo, int n)
{
	QNode *q = qnode(lo, hi);
	q->lut_lo = lut_lo;
	q->nlut = n;
	q->lut = arena_alloc(arena, sizeof *q->lut * (size_t)n);
	for (int i = 0; i < n; i++)
		q->lut[i] = lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1));
	return q;
}

static void test_lut(void **state)
{
	(void)state;
	int x = tin(qq(8, 0, 0.05, 0), 2, DIMS(4, 33));
	int y = tval(qq(8, 1, 1.0 / 256, 0), 2, DIMS(4, 33));
	node(OP_SIGMOID, 1, INS(x), y, lut_node(0, 255, -128, 256));
	/* 6 bits in int8: the table covers [-32, 31] only */
	int x2 = tin(qq(6, 0, 0.1, 0), 1, DIMS(40));
	int y2 = tval(qq(8, 0, 0.05, 0), 1, DIMS(40));
	node(OP_HARDSWISH, 1, INS(x2), y2, lut_node(-20, 127, -32, 64));
	/* u8 input, i16 output */
	int x3 = tin(qq(8, 1, 0.1, 128), 1, DIMS(30));
	int y3 = tval(qq(12, 0, 0.001, 0), 1, DIMS(30));
	node(OP_TANH, 1, INS(x3), y3, lut_node(-2048, 2047, 0, 256));
	tout(y);
	tout(y2);
	tout(y3);
	check();
}

/* lut[d] = round(exp(-d * scale_x) * 2^30), the docs' exp table. */
static QNode *softmax_node(double sx, int n, Rescale r, int32_t lo, int32_t hi)
{
	QNode *q = with_r(qnode(lo, hi), r);
	q->nlut = n;
	q->lut = arena_alloc(arena, sizeof *q->lut * (size_t)n);
	for (int d = 0; d < n; d++)
		q->lut[d] = (int32_t)floor(exp(-d * sx) * 1073741824.0 + 0.5);
	return q;
}

static void test_softmax(void **state)
{
	(void)state;
	int x = tin(qq(8, 0, 0.1, 3), 2, DIMS(3, 10));
	int y = tval(qq(8, 1, 1.0 / 256, 0), 2, DIMS(3, 10));
	node(OP_SOFTMAX, 1, INS(x), y, softmax_node(0.1, 256, (Rescale){0, 22}, 0, 255))->a.axis.axis = -1;
	/* a middle axis (strided slices), int8 output, Q31 rescale */
	int x2 = tin(qq(8, 0, 0.05, 0), 3, DIMS(2, 5, 3));
	int y2 = tval(qq(8, 0, 1.0 / 255, -128), 3, DIMS(2, 5, 3));
	node(OP_SOFTMAX, 1, INS(x2), y2, softmax_node(0.05, 256, ir_rescale(255.0 / 1073741824.0), -128, 127))
		->a.axis.axis = 1;
	/* legacy (opset < 13): the flattened dims from axis 1 */
	int y3 = tval(qq(8, 1, 1.0 / 256, 0), 3, DIMS(2, 5, 3));
	Node *n = node(OP_SOFTMAX, 1, INS(x2), y3, softmax_node(0.05, 256, (Rescale){0, 22}, 0, 255));
	n->a.axis.axis = 1;
	n->a.axis.legacy = 1;
	tout(y);
	tout(y2);
	tout(y3);
	check();
}

/* ---- data movement on integers (n->q == NULL) ---- */

static void test_data_movement(void **state)
{
	(void)state;
	Quant *q = qq(8, 0, 0.05, -4);
	int x = tin(q, 4, DIMS(1, 2, 5, 5));
	int pads = ir_const_new(g, NULL, DT_I64, 1, DIMS(8), I64(0, 0, 1, 1, 0, 0, 1, 1));
	int val = tconst(q, 0, NULL, (const int32_t[]){-100});
	int p = tval(q, 4, DIMS(1, 2, 7, 7));
	node(OP_PAD, 3, INS(x, pads, val), p, NULL);
	int m = tval(q, 4, DIMS(1, 2, 4, 4));
	Window *w = &node(OP_MAXPOOL, 1, INS(p), m, NULL)->a.win;
	w->nsp = 2;
	w->k[0] = w->k[1] = 3;
	w->s[0] = w->s[1] = 2;
	w->d[0] = w->d[1] = 1;
	w->pad[0] = w->pad[1] = w->pad[2] = w->pad[3] = 1;
	int t = tval(q, 4, DIMS(1, 4, 4, 2));
	Node *tn = node(OP_TRANSPOSE, 1, INS(m), t, NULL);
	tn->a.perm.n = 4;
	memcpy(tn->a.perm.p, (int[]){0, 2, 3, 1}, sizeof(int) * 4);
	int shape = ir_const_new(g, NULL, DT_I64, 1, DIMS(2), I64(4, 8));
	int r = tval(q, 2, DIMS(4, 8));
	node(OP_RESHAPE, 2, INS(t, shape), r, NULL);
	int st = ir_const_new(g, NULL, DT_I64, 1, DIMS(1), I64(1));
	int en = ir_const_new(g, NULL, DT_I64, 1, DIMS(1), I64(7));
	int axs = ir_const_new(g, NULL, DT_I64, 1, DIMS(1), I64(1));
	int sl = tval(q, 2, DIMS(4, 6));
	node(OP_SLICE, 4, INS(r, st, en, axs), sl, NULL);
	/* u8 and i16 through MaxPool and Flatten */
	Quant *qu = qq(8, 1, 0.1, 128), *qs = qq(16, 0, 0.001, 0);
	int xu = tin(qu, 4, DIMS(1, 1, 4, 4)), xs = tin(qs, 4, DIMS(1, 3, 2, 2));
	int mu = tval(qu, 4, DIMS(1, 1, 2, 2));
	w = &node(OP_MAXPOOL, 1, INS(xu), mu, NULL)->a.win;
	w->nsp = 2;
	w->k[0] = w->k[1] = w->s[0] = w->s[1] = 2;
	w->d[0] = w->d[1] = 1;
	int fs = tval(qs, 2, DIMS(1, 12));
	node(OP_FLATTEN, 1, INS(xs), fs, NULL)->a.axis.axis = 1;
	tout(sl);
	tout(mu);
	tout(fs);
	Opt o = {"", 1, 0};
	check_opt(&o);
}

/* ---- a chain, under UBSan ---- */

static void test_chain_ubsan(void **state)
{
	(void)state;
	Quant *qx = qq(8, 0, 0.05, 1);
	int x = tin(qx, 4, DIMS(1, 4, 6, 6));
	int a = tval(qq(8, 0, 0.05, 0), 4, DIMS(1, 4, 6, 6));
	node(OP_RELU, 1, INS(x), a, with_r(qnode(0, 127), (Rescale){0, 0}));
	int b = tval(qq(8, 0, 0.1, -3), 4, DIMS(1, 4, 6, 6));
	QNode *qa = with_rin(qnode(-128, 127), 2, (Rescale[]){ir_rescale(0.5), ir_rescale(0.5)});
	qa->ext = 1;
	node(OP_ADD, 2, INS(a, x), b, qa);
	int m = tval(qq(8, 0, 0.2, 0), 4, DIMS(1, 4, 6, 6));
	node(OP_MUL, 2, INS(b, a), m, with_r(qnode(-128, 127), ir_rescale(0.025)));
	int p = tval(qq(8, 0, 0.2, 0), 4, DIMS(1, 4, 3, 3));
	Node *n = node(OP_AVGPOOL, 1, INS(m), p, with_r(qnode(-128, 127), (Rescale){0, 0}));
	n->a.win.nsp = 2;
	n->a.win.k[0] = n->a.win.k[1] = n->a.win.s[0] = n->a.win.s[1] = 2;
	n->a.win.d[0] = n->a.win.d[1] = 1;
	int gp = tval(qq(8, 0, 0.2, 0), 4, DIMS(1, 4, 1, 1));
	node(OP_GAVGPOOL, 1, INS(p), gp, with_r(qnode(-128, 127), ir_rescale(0.7)));
	int sh_ = ir_const_new(g, NULL, DT_I64, 1, DIMS(2), I64(1, 4));
	int f = tval(qq(8, 0, 0.2, 0), 2, DIMS(1, 4));
	node(OP_RESHAPE, 2, INS(gp, sh_), f, NULL);
	int s = tval(qq(8, 1, 1.0 / 256, 0), 2, DIMS(1, 4));
	node(OP_SOFTMAX, 1, INS(f), s, softmax_node(0.2, 256, (Rescale){0, 22}, 0, 255))->a.axis.axis = 1;
	tout(s);
	tout(m);
	Opt o = {"", 1, 0};
	check_opt(&o);
}

/* ---- the header and the driver's float path ---- */

static void test_header_and_float_io(void **state)
{
	(void)state;
	Quant *qx = qq(8, 1, 0.0123, 17), *qy = qfrac(16, 9);
	int x = tin(qx, 2, DIMS(3, 4));
	int y = tval(qy, 2, DIMS(3, 4));
	node(OP_RELU, 1, INS(x), y, with_r(qnode(0, 32767), ir_rescale(0.0123 * 512)));
	tout(y);
	Opt o = {"", 0, 1};
	build(&o);
	char path[128];
	snprintf(path, sizeof path, "%s/model.h", o.dir);
	char *h = slurp(path);
	char want[160];
	snprintf(want, sizeof want, "#define MODEL_IN0_SCALE %.17g\n", 0.0123);
	static const char *const lines[] = {"#define MODEL_IN0_DTYPE \"u8\"\n", "#define MODEL_IN0_BITS 8\n",
		"#define MODEL_IN0_ZP 17\n", "#define MODEL_IN0_QMIN 0\n", "#define MODEL_IN0_QMAX 255\n",
		"#define MODEL_OUT0_DTYPE \"i16\"\n", "#define MODEL_OUT0_BITS 16\n", "#define MODEL_OUT0_ZP 0\n",
		"#define MODEL_OUT0_QMIN -32768\n", "#define MODEL_OUT0_QMAX 32767\n", "#define MODEL_OUT0_FRAC 9\n",
		"#define MODEL_OUT0_SCALE 0.001953125\n", NULL};
	assert_non_null(strstr(h, want));
	for (int i = 0; lines[i]; i++)
		if (!strstr(h, lines[i]))
			fail_msg("model.h lacks %s", lines[i]);
	assert_null(strstr(h, "MODEL_IN0_FRAC"));
	free(h);
	/* float input: values around the range, ties, and beyond */
	const Tensor *tx = &g->tensor[x], *ty = &g->tensor[y];
	float xf[12] = {0, -0.5f, 3.0f, 1e9f, -1e9f, 0.0123f * 2.5f, -0.0123f * 2.5f, 0.5f, 1.0f, 2.0f, 0.2f, 0.00615f};
	uint8_t xq[12];
	int16_t yq[12];
	for (int i = 0; i < 12; i++)
		xq[i] = (uint8_t)ir_quantize(qx, 0, xf[i]);
	snprintf(path, sizeof path, "%s/inf.npy", o.dir);
	save(path, tx, NPY_F4, xf);
	assert_int_equal(sh("%s/prog %s -o %s/outf.npy", o.dir, path, o.dir), 0);
	assert_int_equal(ir_qeval(g, (const void *const[]){xq}, (void *const[]){yq}, NULL, NULL, &diag), 0);
	Npy a;
	char err[128];
	snprintf(path, sizeof path, "%s/outf.npy", o.dir);
	assert_int_equal(npy_read(path, &a, err, sizeof err), 0);
	assert_int_equal(a.type, NPY_F4);
	assert_int_equal(a.count, ir_numel(ty));
	for (int i = 0; i < 12; i++)
		assert_true(((float *)a.data)[i] == (float)ir_dequantize(qy, 0, yq[i]));
	npy_free(&a);
	/* --raw insists on the integer dtype */
	snprintf(path, sizeof path, "%s/inf.npy", o.dir);
	assert_int_equal(sh("%s/prog --raw %s -o %s/o.npy 2>/dev/null", o.dir, path, o.dir), 1);
	done(&o);
}

/* ---- packed sub-byte weights ---- */

static void test_packed(void **state)
{
	(void)state;
	/* a trivial quantized model gives a model.c with the pk_ helpers */
	int x = tin(qq(8, 0, 0.05, 0), 1, DIMS(4));
	int y = tval(qq(8, 0, 0.05, 0), 1, DIMS(4));
	node(OP_RELU, 1, INS(x), y, with_r(qnode(0, 127), (Rescale){0, 0}));
	tout(y);
	Opt o = {"", 0, 0};
	build(&o);
	int w4 = tconst(qq(4, 0, 0.1, 0), 1, DIMS(13), NULL);
	int u4 = tconst(qq(3, 1, 0.1, 0), 1, DIMS(9), NULL);
	int w2 = tconst(qq(2, 0, 0.1, 0), 1, DIMS(11), NULL);
	int w8 = tconst(qq(8, 0, 0.1, 0), 1, DIMS(5), NULL);
	char path[128];
	snprintf(path, sizeof path, "%s/t.c", o.dir);
	FILE *f = fopen(path, "w");
	fprintf(f, "#include <stdio.h>\n#include \"model.c\"\n");
	Ctx c;
	memset(&c, 0, sizeof c);
	c.g = g;
	c.d = &diag;
	c.c.f = f;
	c.quant = 1;
	assert_int_equal(ec_pack_width(g->tensor[w4].q), 4);
	assert_int_equal(ec_pack_width(g->tensor[u4].q), 4);
	assert_int_equal(ec_pack_width(g->tensor[w2].q), 2);
	assert_int_equal(ec_pack_width(g->tensor[w8].q), 0);
	ec_array_packed(&c, "w4", &g->tensor[w4]);
	assert_int_equal(c.wbytes, 7);
	ec_array_packed(&c, "u4", &g->tensor[u4]);
	assert_int_equal(c.wbytes, 12);
	ec_array_packed(&c, "w2", &g->tensor[w2]);
	assert_int_equal(c.wbytes, 15);
	ec_array_packed(&c, "w8", &g->tensor[w8]);
	assert_int_equal(c.wbytes, 20);
	/* the program prints every element through the helpers */
	fprintf(f, "int main(void)\n{\n\tlong i;\n");
	fprintf(f, "\tfor (i = 0; i < 13; i++) printf(\"%%d \", (int)pk_s4(w4, i));\n");
	fprintf(f, "\tfor (i = 0; i < 9; i++) printf(\"%%d \", (int)pk_u4(u4, i));\n");
	fprintf(f, "\tfor (i = 0; i < 11; i++) printf(\"%%d \", (int)pk_s2(w2, i));\n");
	fprintf(f, "\tfor (i = 0; i < 5; i++) printf(\"%%d \", (int)w8[i]);\n");
	fprintf(f, "\treturn 0;\n}\n");
	fclose(f);
	assert_int_equal(sh("%s %s -O2 -o %s/t %s/t.c && %s/t > %s/t.txt", cc(), WARN, o.dir, o.dir, o.dir, o.dir), 0);
	Str want = {0};
	const int ts[4] = {w4, u4, w2, w8};
	for (int k = 0; k < 4; k++)
		for (int64_t i = 0; i < ir_numel(&g->tensor[ts[k]]); i++)
			str_printf(&want, "%d ", (int)ir_get_i64(&g->tensor[ts[k]], i));
	snprintf(path, sizeof path, "%s/t.txt", o.dir);
	char *got = slurp(path);
	assert_string_equal(got, want.s);
	/* the bytes themselves: w4 element 0 in the low nibble of byte 0 */
	snprintf(path, sizeof path, "%s/t.c", o.dir);
	char *src = slurp(path);
	const Tensor *t4 = &g->tensor[w4];
	char first[64];
	snprintf(first, sizeof first, "static const uint8_t w4[7] = {\n\t%du,",
	         (int)(((ir_get_i64(t4, 0) & 15) | (ir_get_i64(t4, 1) & 15) << 4)));
	assert_non_null(strstr(src, first));
	free(src);
	free(got);
	str_free(&want);
	done(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add_broadcast, qsetup, teardown),
		cmocka_unit_test_setup_teardown(test_sub_const_u8, qsetup, teardown),
		cmocka_unit_test_setup_teardown(test_mul, qsetup, teardown),
		cmocka_unit_test_setup_teardown(test_avgpool, qsetup, teardown),
		cmocka_unit_test_setup_teardown(test_global_pools, qsetup, teardown),
		cmocka_unit_test_setup_teardown(test_reducemean, qsetup, teardown),
		cmocka_unit_test_setup_teardown(test_concat, qsetup, teardown),
		cmocka_unit_test_setup_teardown(test_relu_clip, qsetup, teardown),
		cmocka_unit_test_setup_teardown(test_lut, qsetup, teardown),
		cmocka_unit_test_setup_teardown(test_softmax, qsetup, teardown),
		cmocka_unit_test_setup_teardown(test_data_movement, qsetup, teardown),
		cmocka_unit_test_setup_teardown(test_chain_ubsan, qsetup, teardown),
		cmocka_unit_test_setup_teardown(test_header_and_float_io, qsetup, teardown),
		cmocka_unit_test_setup_teardown(test_packed, qsetup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
