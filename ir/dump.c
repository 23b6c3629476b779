/* Text form of the IR, printed by -d PASS.  One line per tensor that is not
 * computed (inputs, constants), one per node, then the outputs:
 *   input  %0 "x" f32[1,1,28,28]
 *   const  %1 "w" f32[8,1,3,3]
 *   %4 "y" f32[1,8,28,28] = Conv(%0, %1, %2) k=3x3 s=1x1 d=1x1 pad=1,1,1,1 group=1 act=relu
 *   output %4
 */
#include "ir.h"

static void shape(const Tensor *t, FILE *f)
{
	fprintf(f, "%s[", ir_dtype_name(t->dtype));
	for (int i = 0; i < t->rank; i++)
		fprintf(f, i ? ",%lld" : "%lld", (long long)t->dim[i]);
	fputc(']', f);
	if (t->q) {
		fputc('{', f);
		ir_quant_print(t->q, f);
		fputc('}', f);
	}
}

/* A QNode in one line: the first rescale, clamp, table and bound. */
static void qnode(const QNode *q, FILE *f)
{
	fprintf(f, " q{lo=%d hi=%d", (int)q->lo, (int)q->hi);
	if (q->nr)
		fprintf(f, " r=%d:%d%s", (int)q->r[0].m, q->r[0].n, q->nr > 1 ? ",..." : "");
	for (int j = 0; j < q->nrin; j++)
		fprintf(f, " rin%d=%d:%d", j, (int)q->rin[j].m, q->rin[j].n);
	if (q->ext)
		fprintf(f, " ext=%d", q->ext);
	if (q->lut)
		fprintf(f, " lut=%d@%d", q->nlut, (int)q->lut_lo);
	if (q->acc_limit)
		fprintf(f, " acc=%lld/%lld%s", (long long)q->acc_worst, (long long)q->acc_limit,
		        q->acc64 ? " acc64" : "");
	fputc('}', f);
}

static void ints(FILE *f, const char *key, const int *v, int n, const char *sep)
{
	fprintf(f, " %s=", key);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s%d", i ? sep : "", v[i]);
}

static void window(const Window *w, int op, FILE *f)
{
	ints(f, "k", w->k, w->nsp, "x");
	ints(f, "s", w->s, w->nsp, "x");
	ints(f, "d", w->d, w->nsp, "x");
	ints(f, "pad", w->pad, 2 * w->nsp, ",");
	if (op == OP_CONV)
		fprintf(f, " group=%d", w->group);
	else
		fprintf(f, " ceil=%d", w->ceil);
	if (op == OP_AVGPOOL)
		fprintf(f, " incl_pad=%d", w->incl_pad);
}

static void attrs(const Node *n, FILE *f)
{
	const Attr *a = &n->a;
	switch (n->op) {
	case OP_CONV: case OP_MAXPOOL: case OP_AVGPOOL: window(&a->win, n->op, f); break;
	case OP_GEMM:
		fprintf(f, " alpha=%g beta=%g ta=%d tb=%d", a->gemm.alpha, a->gemm.beta, a->gemm.ta, a->gemm.tb);
		break;
	case OP_SOFTMAX: case OP_LOGSOFTMAX: case OP_CONCAT: case OP_FLATTEN: case OP_GATHER:
		fprintf(f, " axis=%d", a->axis.axis);
		if (a->axis.legacy)
			fprintf(f, " legacy=1");
		break;
	case OP_REDUCEMEAN: case OP_REDUCEMAX: case OP_REDUCEMIN: case OP_REDUCESUM: case OP_REDUCEPROD:
		fprintf(f, " keepdims=%d noop_empty=%d", a->reduce.keepdims, a->reduce.noop_empty);
		break;
	case OP_TRANSPOSE: ints(f, "perm", a->perm.p, a->perm.n, ","); break;
	case OP_LEAKYRELU: case OP_HARDSIGMOID: case OP_ELU: case OP_SELU:
		fprintf(f, " alpha=%g beta=%g", a->ab.alpha, a->ab.beta);
		break;
	case OP_BATCHNORM: fprintf(f, " eps=%g", a->bn.eps); break;
	case OP_CAST: fprintf(f, " to=%s", ir_dtype_name(a->cast.to)); break;
	case OP_CONSTOFSHAPE: fprintf(f, " to=%s value=%g", ir_dtype_name(a->cast.to), a->cast.value); break;
	case OP_PAD: fprintf(f, " mode=%d", (int)a->pad.mode); break;
	case OP_RESHAPE: fprintf(f, " allowzero=%d", a->reshape.allowzero); break;
	default: break;
	}
}

static const char *const actname[] = {"none", "relu", "clip", "leaky", "hsigmoid", "hswish", "sigmoid"};

static void node(const Graph *g, const Node *n, FILE *f)
{
	for (int j = 0; j < n->nout; j++) {
		if (n->out[j] < 0)
			continue;
		const Tensor *t = &g->tensor[n->out[j]];
		fprintf(f, "%s%%%d \"%s\" ", j ? ", " : "", n->out[j], t->name);
		shape(t, f);
		if (t->off >= 0)
			fprintf(f, "@%lld", (long long)t->off); /* arena offset */
		if (t->alias >= 0)
			fprintf(f, "~%%%d", t->alias);          /* view of that tensor */
	}
	fprintf(f, " = %s(", ir_opname[n->op]);
	for (int j = 0; j < n->nin; j++)
		if (n->in[j] < 0)
			fprintf(f, "%s_", j ? ", " : "");
		else
			fprintf(f, "%s%%%d", j ? ", " : "", n->in[j]);
	fprintf(f, ") \"%s\"", n->name);
	attrs(n, f);
	if (n->act.kind != ACT_NONE)
		fprintf(f, " act=%s(%g,%g)", actname[n->act.kind], n->act.a, n->act.b);
	if (n->q)
		qnode(n->q, f);
	fputc('\n', f);
}

void ir_dump(const Graph *g, FILE *f)
{
	fprintf(f, "graph \"%s\" opset %d\n", g->name, g->opset);
	for (int i = 0; i < g->ntensor; i++) {
		const Tensor *t = &g->tensor[i];
		if (t->kind == TK_VALUE)
			continue;
		fprintf(f, "%s %%%d \"%s\" ", t->kind == TK_INPUT ? "input" : "const", i, t->name);
		shape(t, f);
		if (t->kind == TK_CONST && ir_numel(t) <= 8) {
			fputs(" {", f);
			for (int64_t k = 0; k < ir_numel(t); k++)
				fprintf(f, k ? ",%g" : "%g", ir_get(t, k));
			fputc('}', f);
		}
		fputc('\n', f);
	}
	for (int i = 0; i < g->nnode; i++)
		node(g, &g->node[i], f);
	for (int i = 0; i < g->noutput; i++)
		fprintf(f, "output %%%d\n", g->output[i]);
	if (g->arena_bytes)
		fprintf(f, "arena %lld\n", (long long)g->arena_bytes);
}
