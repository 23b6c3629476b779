/* The ONNX importer on small models made by make_frontend_models.py:
 * initializer encodings, constants, input shapes, attribute normalisation,
 * order, and the errors a user sees. */
#define _POSIX_C_SOURCE 200809L /* mkstemp, fdopen */
#include <float.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frontend_models.h"
#include "onnx.h"

typedef struct {
	Arena *a;
	Diag d;
	Graph *g;
} Load;

static Load *load_shapes(const char *path, const unsigned char *buf, size_t len,
                         const InputShape *s, int ns)
{
	Load *l = calloc(1, sizeof *l);
	l->a = arena_new();
	diag_init(&l->d);
	l->d.quiet = 1;
	l->g = onnx_load_buffer(l->a, path, buf, len, s, ns, &l->d);
	if (l->g) {
		assert_int_equal(ir_verify(l->g, &l->d), 0);
		assert_int_equal(l->d.nerr, 0);
	}
	return l;
}

#define LOAD(m) load_shapes(#m ".onnx", model_##m, sizeof model_##m, NULL, 0)

static void unload(Load *l)
{
	arena_free(l->a);
	free(l);
}

static const Tensor *tensor(const Graph *g, const char *name)
{
	int id = ir_find_tensor(g, name);
	assert_true(id >= 0);
	return &g->tensor[id];
}

static const Node *node(const Graph *g, const char *name)
{
	for (int i = 0; i < g->nnode; i++)
		if (!strcmp(g->node[i].name, name))
			return &g->node[i];
	fail_msg("no node %s", name);
	return NULL;
}

/* Input j of n is a constant with these integer values. */
static void input_i64(const Graph *g, const Node *n, int j, const int64_t *v, int len)
{
	assert_true(j < n->nin);
	assert_true(ir_is_const(g, n->in[j]));
	const Tensor *t = &g->tensor[n->in[j]];
	assert_int_equal(t->dtype, DT_I64);
	assert_int_equal(t->rank, 1);
	assert_int_equal(ir_numel(t), len);
	for (int i = 0; i < len; i++)
		assert_int_equal(ir_get_i64(t, i), v[i]);
}

static void check_w(const Graph *g)
{
	const Tensor *w = tensor(g, "w");
	assert_int_equal(w->kind, TK_CONST);
	assert_int_equal(w->dtype, DT_F32);
	assert_int_equal(w->rank, 2);
	assert_int_equal(w->dim[0], 2);
	assert_int_equal(w->dim[1], 3);
	for (int i = 0; i < 6; i++)
		assert_float_equal(ir_get(w, i), i - 2.5, 0);
}

static void test_raw_init(void **state)
{
	Load *l = LOAD(raw_init);
	assert_non_null(l->g);
	check_w(l->g);
	assert_int_equal(l->g->ninput, 1);
	assert_int_equal(l->g->nnode, 1);
	const Node *n = &l->g->node[0];
	assert_int_equal(n->op, OP_ADD);
	assert_string_equal(l->g->tensor[n->in[0]].name, "x");
	assert_string_equal(l->g->tensor[n->in[1]].name, "w");
	const Tensor *y = &l->g->tensor[l->g->output[0]];
	assert_string_equal(y->name, "y");
	assert_true(y->is_output);
	assert_int_equal(y->dtype, DT_F32);
	unload(l);
}

static void test_typed_init(void **state)
{
	Load *l = LOAD(typed_init);
	assert_non_null(l->g);
	const Graph *g = l->g;
	check_w(g);
	const Tensor *t = tensor(g, "i64");
	assert_int_equal(t->dtype, DT_I64);
	assert_int_equal(ir_get_i64(t, 0), -1);
	assert_int_equal(ir_get_i64(t, 2), (int64_t)1 << 40);
	t = tensor(g, "i8");
	assert_int_equal(t->dtype, DT_I8);
	assert_int_equal(ir_get_i64(t, 0), -128);
	assert_int_equal(ir_get_i64(t, 1), 127);
	t = tensor(g, "b");
	assert_int_equal(t->dtype, DT_BOOL);
	assert_int_equal(ir_get_i64(t, 0), 1);
	assert_int_equal(ir_get_i64(t, 1), 0);
	t = tensor(g, "f64");
	assert_int_equal(t->dtype, DT_F64);
	assert_true(ir_get(t, 1) == -1e300);
	t = tensor(g, "u32");
	assert_int_equal(t->dtype, DT_U32);
	assert_int_equal(ir_get_i64(t, 0), 4000000000LL);
	assert_int_equal(tensor(g, "i8_out")->dtype, DT_I8);
	unload(l);
}

static void test_init_as_input(void **state)
{
	Load *l = LOAD(init_as_input);
	assert_non_null(l->g);
	assert_int_equal(l->g->ninput, 1);
	assert_string_equal(l->g->tensor[l->g->input[0]].name, "x");
	check_w(l->g);
	unload(l);
}

static void test_constant_node(void **state)
{
	Load *l = LOAD(constant_node);
	assert_non_null(l->g);
	const Graph *g = l->g;
	assert_int_equal(g->nnode, 3);
	for (int i = 0; i < g->nnode; i++)
		assert_int_not_equal(g->node[i].op, OP_CONSTANT);
	const int64_t shape[] = {3, 2};
	input_i64(g, &g->node[0], 1, shape, 2);
	const Tensor *k = tensor(g, "k");
	assert_int_equal(k->kind, TK_CONST);
	assert_int_equal(k->rank, 0);
	assert_float_equal(ir_get(k, 0), 2.0, 0);
	const Tensor *c = tensor(g, "c");
	assert_int_equal(c->dtype, DT_F32);
	assert_float_equal(ir_get(c, 1), -1.5, 0);
	unload(l);
}

static void test_symbolic_unbound(void **state)
{
	Load *l = LOAD(symbolic);
	assert_null(l->g);
	assert_int_equal(l->d.nerr, 1);
	assert_string_equal(l->d.last, "symbolic.onnx: error: input 'x' dim 2 ('H') is not fixed; "
	                                "pass --input-shape x=1x3x<H>x<W>");
	unload(l);
}

static void test_symbolic_bound(void **state)
{
	InputShape s = {"x", 4, {2, 3, 8, 16}};
	Load *l = load_shapes("s.onnx", model_symbolic, sizeof model_symbolic, &s, 1);
	assert_non_null(l->g);
	const Tensor *x = tensor(l->g, "x");
	assert_int_equal(x->kind, TK_INPUT);
	assert_int_equal(x->rank, 4);
	assert_int_equal(x->dim[0], 2);
	assert_int_equal(x->dim[3], 16);
	unload(l);
}

static void test_binding_errors(void **state)
{
	InputShape rank = {"x", 2, {1, 3}};
	Load *l = load_shapes("s.onnx", model_symbolic, sizeof model_symbolic, &rank, 1);
	assert_null(l->g);
	assert_string_equal(l->d.last, "s.onnx: error: --input-shape x has 2 dims but input 'x' has rank 4");
	unload(l);
	InputShape fixed = {"x", 4, {1, 4, 8, 8}};
	l = load_shapes("s.onnx", model_symbolic, sizeof model_symbolic, &fixed, 1);
	assert_null(l->g);
	assert_string_equal(l->d.last, "s.onnx: error: input 'x' dim 1 is 3 in the model, --input-shape gives 4");
	unload(l);
	InputShape s[] = {{"x", 4, {1, 3, 8, 8}}, {"z", 1, {1}}};
	l = load_shapes("s.onnx", model_symbolic, sizeof model_symbolic, s, 2);
	assert_null(l->g);
	assert_int_equal(l->d.nerr, 1);
	assert_string_equal(l->d.last, "s.onnx: error: --input-shape names 'z', which is not an input of the model");
	unload(l);
}

static void test_batch_only(void **state)
{
	Load *l = LOAD(batch_only);
	assert_non_null(l->g);
	const Tensor *x = tensor(l->g, "x");
	assert_int_equal(x->rank, 2);
	assert_int_equal(x->dim[0], 1);
	assert_int_equal(x->dim[1], 4);
	unload(l);
}

static void test_opset9_attrs(void **state)
{
	Load *l = LOAD(opset9_attrs);
	assert_non_null(l->g);
	const Graph *g = l->g;
	assert_int_equal(g->opset, 9);
	const Node *n = node(g, "slice");
	assert_int_equal(n->nin, 4);
	input_i64(g, n, 1, (const int64_t[]){0, 1}, 2);
	input_i64(g, n, 2, (const int64_t[]){1, 1000}, 2);
	input_i64(g, n, 3, (const int64_t[]){0, 2}, 2);
	n = node(g, "pad");
	assert_int_equal(n->nin, 3);
	assert_int_equal(n->a.pad.mode, PADMODE_CONSTANT);
	input_i64(g, n, 1, (const int64_t[]){0, 0, 1, 0, 0, 2}, 6);
	assert_float_equal(ir_get(&g->tensor[n->in[2]], 0), 1.5, 0);
	n = node(g, "squeeze");
	assert_int_equal(n->nin, 2);
	input_i64(g, n, 1, (const int64_t[]){0}, 1);
	input_i64(g, node(g, "unsqueeze"), 1, (const int64_t[]){0}, 1);
	n = node(g, "clip");  /* Clip-6's max defaults to the largest float */
	assert_int_equal(n->nin, 3);
	assert_true(ir_is_const(g, n->in[1]));
	assert_float_equal(ir_get(&g->tensor[n->in[1]], 0), 0.0, 0);
	assert_float_equal(ir_get(&g->tensor[n->in[2]], 0), FLT_MAX, 0);
	n = node(g, "rsum");
	input_i64(g, n, 1, (const int64_t[]){2}, 1);
	assert_int_equal(n->a.reduce.keepdims, 0);
	n = node(g, "softmax");
	assert_int_equal(n->a.axis.legacy, 1);
	assert_int_equal(n->a.axis.axis, 1);
	unload(l);
}

static void test_foreign_import(void **state)
{
	Load *l = LOAD(foreign_import);
	assert_non_null(l->g);
	assert_int_equal(l->g->nnode, 1);
	unload(l);
}

static void test_unordered(void **state)
{
	Load *l = LOAD(unordered);
	assert_non_null(l->g);
	assert_string_equal(l->g->node[0].name, "a");
	assert_string_equal(l->g->node[1].name, "b");
	unload(l);
}

static void test_conv_nokernel(void **state)
{
	Load *l = LOAD(conv_nokernel);
	assert_non_null(l->g);
	const Node *n = node(l->g, "conv");
	const Window *w = &n->a.win;
	assert_int_equal(w->nsp, 2);
	assert_int_equal(w->k[0], 3);
	assert_int_equal(w->k[1], 5);
	assert_int_equal(w->pad[1], 2);
	assert_int_equal(w->s[1], 1);
	assert_int_equal(w->d[0], 1);
	assert_int_equal(w->group, 1);
	assert_int_equal(w->autopad, PAD_EXPLICIT);
	n = node(l->g, "bn");
	assert_int_equal(n->nout, 1);
	assert_float_equal(n->a.bn.eps, 1e-3, 1e-9);
	assert_int_equal(node(l->g, "drop")->nout, 1);
	unload(l);
}

static void test_bad_attr(void **state)
{
	Load *l = LOAD(bad_attr);
	assert_null(l->g);
	assert_string_equal(l->d.last,
	                    "bad_attr.onnx: node \"r\" (Relu): error: attribute 'foo' is not supported at opset 13");
	unload(l);
}

static void test_two_unsupported(void **state)
{
	Load *l = LOAD(two_unsupported);
	assert_null(l->g);
	assert_int_equal(l->d.nerr, 2);
	assert_string_equal(l->d.last, "two_unsupported.onnx: node \"c\" (NonZero): error: unsupported op 'NonZero'");
	unload(l);
}

static void test_untyped_attr(void **state)
{
	Load *l = LOAD(untyped_attr);
	assert_non_null(l->g);
	assert_int_equal(node(l->g, "flatten")->a.axis.axis, 2);
	const Node *n = node(l->g, "selu");
	assert_float_equal(n->a.ab.alpha, 1.67326319217681884765625f, 0);
	assert_float_equal(n->a.ab.beta, 1.05070102214813232421875f, 0);
	n = node(l->g, "clip");
	assert_int_equal(n->nin, 3);
	assert_float_equal(ir_get(&l->g->tensor[n->in[1]], 0), -1.0, 0);
	assert_float_equal(ir_get(&l->g->tensor[n->in[2]], 0), 1.0, 0);
	unload(l);
}

/* Input j of n is made by an Unsqueeze of tensor src at these axes. */
static void unsqueezed(const Graph *g, const Node *n, int j, const char *src, const int64_t *axes,
                       int naxes)
{
	const Tensor *t = &g->tensor[n->in[j]];
	assert_true(t->producer >= 0 && t->producer < (int)(n - g->node));
	const Node *u = &g->node[t->producer];
	assert_int_equal(u->op, OP_UNSQUEEZE);
	assert_string_equal(g->tensor[u->in[0]].name, src);
	input_i64(g, u, 1, axes, naxes);
}

static void test_legacy_broadcast(void **state)
{
	Load *l = LOAD(legacy_broadcast);
	assert_non_null(l->g);
	const Graph *g = l->g;
	assert_int_equal(g->opset, 6);
	const Node *n = node(g, "add");
	unsqueezed(g, n, 1, "b", (const int64_t[]){2}, 1);  /* [3,4] at axis 1 of 4 dims */
	assert_string_equal(g->tensor[n->in[1]].name, "add.broadcast");
	assert_string_equal(g->tensor[node(g, "mul")->in[1]].name, "c");  /* already trailing */
	assert_int_equal(node(g, "relu")->nin, 1);
	n = node(g, "sub");  /* A's rank comes through Add, Mul, Relu */
	unsqueezed(g, n, 1, "v", (const int64_t[]){1, 2, 3}, 3);
	assert_string_equal(g->tensor[node(g, "div")->in[1]].name, "x");
	unsqueezed(g, node(g, "prelu"), 1, "s", (const int64_t[]){1, 2}, 2);  /* per channel */
	assert_int_equal(g->nnode, 9);
	unload(l);
}

static void test_legacy_cast(void **state)
{
	Load *l = LOAD(legacy_cast);
	assert_non_null(l->g);
	const Graph *g = l->g;
	assert_int_equal(node(g, "cast_i")->a.cast.to, DT_I32);
	assert_int_equal(tensor(g, "i")->dtype, DT_I32);
	assert_int_equal(node(g, "cast_f")->a.cast.to, DT_F32);
	assert_int_equal(tensor(g, "y")->dtype, DT_F32);
	const Node *n = node(g, "selu");
	assert_float_equal(n->a.ab.alpha, 1.6732f, 0);
	assert_float_equal(n->a.ab.beta, 1.0507f, 0);
	n = node(g, "clip");
	assert_int_equal(n->nin, 3);
	assert_int_equal(n->in[1], -1);
	assert_float_equal(ir_get(&g->tensor[n->in[2]], 0), 1.0, 0);
	unload(l);
}

static void test_legacy_opset1(void **state)
{
	Load *l = LOAD(legacy_opset1);
	assert_non_null(l->g);
	const Graph *g = l->g;
	const Node *n = node(g, "pad");
	assert_int_equal(n->nin, 2);
	assert_int_equal(n->a.pad.mode, PADMODE_EDGE);
	input_i64(g, n, 1, (const int64_t[]){0, 0, 1, 2}, 4);
	assert_int_equal(node(g, "concat")->a.axis.axis, 1);
	n = node(g, "reshape");
	assert_int_equal(n->nin, 2);
	input_i64(g, n, 1, (const int64_t[]){1, 2, -1, 1}, 4);
	n = node(g, "bn");
	for (int j = 1; j < 5; j++) {
		const Tensor *t = &g->tensor[n->in[j]];
		assert_int_equal(t->kind, TK_CONST);
		assert_int_equal(t->rank, 1);
		assert_int_equal(t->dim[0], 2);
	}
	assert_int_equal(node(g, "drop")->nin, 1);
	n = node(g, "tile");
	assert_int_equal(n->nin, 2);
	input_i64(g, n, 1, (const int64_t[]){1, 3, 1, 1}, 4);
	unload(l);
}

/* Each model of error_models fails with exactly its one message. */
static void test_error_models(void **state)
{
	for (size_t i = 0; i < sizeof error_models / sizeof error_models[0]; i++) {
		char path[64];
		snprintf(path, sizeof path, "%s.onnx", error_models[i].name);
		Load *l = load_shapes(path, error_models[i].bytes, error_models[i].len, NULL, 0);
		if (l->g)
			fail_msg("%s loaded", path);
		assert_string_equal(l->d.last, error_models[i].error);
		if (l->d.nerr != 1)
			fail_msg("%s: %d errors", path, l->d.nerr);
		unload(l);
	}
}

static void test_not_onnx(void **state)
{
	static const unsigned char junk[] = {0xff, 0xff, 0xff, 0xff, 0x07, 0x13};
	Load *l = load_shapes("j.onnx", junk, sizeof junk, NULL, 0);
	assert_null(l->g);
	assert_string_equal(l->d.last, "j.onnx: error: not a valid ONNX model (protobuf parse failed)");
	unload(l);
	l = load_shapes("e.onnx", junk, 0, NULL, 0);
	assert_null(l->g);
	assert_string_equal(l->d.last, "e.onnx: error: empty file, not an ONNX model");
	unload(l);
	static const unsigned char nograph[] = {0x08, 0x07}; /* ir_version 7 */
	l = load_shapes("n.onnx", nograph, sizeof nograph, NULL, 0);
	assert_null(l->g);
	assert_string_equal(l->d.last, "n.onnx: error: not a valid ONNX model (it has no graph)");
	unload(l);
}

/* graph { node { attribute { g { node { ... } } } } } nested 10000 deep:
 * protobuf-c alone would overflow the stack. */
static void test_deep_nesting(void **state)
{
	enum { DEPTH = 10000 };
	size_t cap = DEPTH * 3 * 6 + 16, n = cap, len = 0;
	unsigned char *buf = malloc(cap);
	static const unsigned char fields[] = {6, 5, 1}; /* attribute.g, node.attribute, graph.node */
	for (int i = 0; i < 3 * DEPTH + 1; i++) {
		unsigned f = i < 3 * DEPTH ? fields[i % 3] : 7; /* model.graph */
		unsigned char v[10];
		int k = 0;
		size_t x = len;
		do {
			v[k++] = (unsigned char)((x & 0x7f) | (x > 0x7f ? 0x80 : 0));
			x >>= 7;
		} while (x);
		n -= (size_t)k;
		memcpy(buf + n, v, (size_t)k);
		buf[--n] = (unsigned char)(f << 3 | 2);
		len = cap - n;
	}
	Load *l = load_shapes("deep.onnx", buf + n, len, NULL, 0);
	assert_null(l->g);
	assert_string_equal(l->d.last,
	                    "deep.onnx: error: not a valid ONNX model (messages nested deeper than 64 levels)");
	unload(l);
	free(buf);
}

typedef struct {
	int ok, bad;
} Count;

static void count(void *ctx, const char *domain, const char *op, int supported)
{
	Count *c = ctx;
	assert_string_equal(domain, "");
	if (supported)
		c->ok++;
	else
		c->bad++;
	(void)op;
}

static void test_visit_ops(void **state)
{
	char path[] = "/tmp/potc_test_frontend_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "wb");
	fwrite(model_two_unsupported, 1, sizeof model_two_unsupported, f);
	fclose(f);
	Diag d;
	diag_init(&d);
	d.quiet = 1;
	Count c = {0, 0};
	assert_int_equal(onnx_visit_ops(path, count, &c, &d), 2);
	assert_int_equal(c.bad, 2);
	remove(path);
	assert_int_equal(onnx_visit_ops(path, count, &c, &d), -1);
	assert_int_equal(d.nerr, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raw_init),
		cmocka_unit_test(test_typed_init),
		cmocka_unit_test(test_init_as_input),
		cmocka_unit_test(test_constant_node),
		cmocka_unit_test(test_symbolic_unbound),
		cmocka_unit_test(test_symbolic_bound),
		cmocka_unit_test(test_binding_errors),
		cmocka_unit_test(test_batch_only),
		cmocka_unit_test(test_opset9_attrs),
		cmocka_unit_test(test_foreign_import),
		cmocka_unit_test(test_unordered),
		cmocka_unit_test(test_conv_nokernel),
		cmocka_unit_test(test_bad_attr),
		cmocka_unit_test(test_two_unsupported),
		cmocka_unit_test(test_untyped_attr),
		cmocka_unit_test(test_legacy_broadcast),
		cmocka_unit_test(test_legacy_cast),
		cmocka_unit_test(test_legacy_opset1),
		cmocka_unit_test(test_error_models),
		cmocka_unit_test(test_not_onnx),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_visit_ops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
