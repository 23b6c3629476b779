/* `potc info`: what a model is made of and what it will cost. */
#include <stdlib.h>
#include <string.h>

#include "emit_c.h"
#include "potc.h"

typedef struct {
	const char *op[256];
	const char *domain[256];
	int count[256];
	int supported[256];
	int n;
} Histogram;

static void count_op(void *ctx, const char *domain, const char *op, int supported)
{
	Histogram *h = ctx;
	for (int i = 0; i < h->n; i++)
		if (strcmp(h->op[i], op) == 0 && strcmp(h->domain[i], domain) == 0) {
			h->count[i]++;
			return;
		}
	if (h->n == 256)
		return;
	h->op[h->n] = strdup(op);
	h->domain[h->n] = strdup(domain);
	h->supported[h->n] = supported;
	h->count[h->n++] = 1;
}

static void print_histogram(Histogram *h)
{
	printf("ops:");
	for (int i = 0; i < h->n; i++)
		printf(" %s%s%s=%d", h->domain[i], *h->domain[i] ? "." : "", h->op[i], h->count[i]);
	printf("\nunsupported:");
	int any = 0;
	for (int i = 0; i < h->n; i++)
		if (!h->supported[i]) {
			printf(" %s%s%s", h->domain[i], *h->domain[i] ? "." : "", h->op[i]);
			any = 1;
		}
	printf("%s\n", any ? "" : " none");
	for (int i = 0; i < h->n; i++) {
		free((void *)h->op[i]);
		free((void *)h->domain[i]);
	}
}

static void print_tensor(const char *what, const Tensor *t)
{
	printf("%s \"%s\" %s[", what, t->name, ir_dtype_name(t->dtype));
	for (int i = 0; i < t->rank; i++)
		printf(i ? "x%lld" : "%lld", (long long)t->dim[i]);
	printf("]\n");
}

/* Multiply-accumulates of one node: the cost model potc reports. */
static int64_t node_macs(const Graph *g, const Node *n)
{
	const Tensor *y = &g->tensor[n->out[0]];
	const Tensor *x = &g->tensor[n->in[0]];
	switch (n->op) {
	case OP_CONV: {
		const Tensor *w = &g->tensor[n->in[1]];
		return ir_numel(y) * (ir_numel(w) / w->dim[0]);
	}
	case OP_GEMM:
		return ir_numel(y) * x->dim[n->a.gemm.ta ? 0 : 1];
	case OP_MATMUL:
		return ir_numel(y) * x->dim[x->rank - 1];
	default:
		return 0;
	}
}

/* Float parameters as the model was exported (before BatchNorm folding). */
static int64_t count_params(const PotcOptions *o, Diag *d)
{
	Arena *a = arena_new();
	Graph *g = potc_load(a, o, "import", d);
	int64_t n = 0;
	for (int i = 0; g && i < g->ntensor; i++)
		if (g->tensor[i].kind == TK_CONST && g->tensor[i].dtype == DT_F32)
			n += ir_numel(&g->tensor[i]);
	arena_free(a);
	return n;
}

/* Arena and flash exactly as the generated header will state them. */
static int emitted_sizes(const Graph *g, EmitCSizes *sz, Diag *d)
{
	FILE *c = tmpfile(), *h = tmpfile();
	EmitC e = {.sizes = sz, .name = "model", .header = "model.h", .source = g->file};
	int err = !c || !h || emit_c(g, &e, c, h, d);
	if (c)
		fclose(c);
	if (h)
		fclose(h);
	return err;
}

static void print_costs(const Graph *g, int64_t params, Diag *d)
{
	int64_t macs = 0;
	for (int i = 0; i < g->nnode; i++)
		macs += node_macs(g, &g->node[i]);
	printf("parameters: %lld\n", (long long)params);
	printf("macs: %lld\n", (long long)macs);
	EmitCSizes sz = {0};
	if (emitted_sizes(g, &sz, d) == 0) {
		printf("weight_bytes: %lld\n", (long long)sz.weight_bytes);
		printf("arena_bytes: %lld\n", (long long)sz.arena_bytes);
	}
}

int potc_cmd_info(const PotcOptions *o, Diag *d)
{
	Histogram h = {0};
	int nnode = onnx_visit_ops(o->model, count_op, &h, d);
	if (nnode < 0)
		return 1;
	printf("model: %s\nnodes: %d\n", o->model, nnode);
	Arena *a = arena_new();
	Graph *g = potc_load(a, o, NULL, d);
	if (g) {
		for (int i = 0; i < g->ninput; i++)
			print_tensor("input", &g->tensor[g->input[i]]);
		for (int i = 0; i < g->noutput; i++)
			print_tensor("output", &g->tensor[g->output[i]]);
		print_costs(g, count_params(o, d), d);
	}
	print_histogram(&h);
	arena_free(a);
	return g == NULL || d->nerr > 0;
}
