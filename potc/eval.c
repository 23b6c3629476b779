/* `potc eval`: what quantization costs, measured on a labelled data set.
 * Every sample runs through the float reference evaluator (ir_eval) on the
 * model as optimised for float and, with --quant, through the integer
 * evaluator (ir_qeval) on the lowered model, so the numbers are exactly
 * what the generated code computes.  Reported: top-1 accuracy of both,
 * their top-1 agreement, and for every tensor the two graphs share by name
 * the signal-to-quantization-noise ratio
 *     SQNR = 10 log10(sum x^2 / sum (x - x_hat)^2)
 * over every element of every sample (x float, x_hat the dequantized
 * integer).  --report adds every Quant and accumulator bound as JSON. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib_data.h"
#include "potc.h"

/* The sums behind one tensor's SQNR. */
typedef struct {
	double sig, err;      /* sum x^2, sum (x - x_hat)^2 */
	int64_t count;        /* elements summed */
} Noise;

typedef struct {
	const PotcOptions *o;
	const Graph *gf, *gq;   /* float graph, quantized graph (NULL without --quant) */
	int *match;             /* per gq tensor: the gf tensor of the same name, or -1 */
	float **ref;            /* per gf tensor some gq tensor matches: this sample's values */
	Noise *noise;           /* per gq tensor */
	int64_t batch, ncls;    /* output 0 is [batch, ncls] (batch 1 unless input and output agree) */
	int64_t nsamp;          /* labelled samples seen (model runs times batch) */
	int64_t ok_f, ok_q, agree;
	const char *data_desc;
} Eval;

/* ---- setup ---- */

static int need_f32(const Tensor *t, const char *what, const char *file, Diag *d)
{
	if (t->dtype == DT_F32)
		return 0;
	diag_error(d, file, "eval needs a float32 %s; \"%s\" is %s", what, t->name, ir_dtype_name(t->dtype));
	return 1;
}

/* One float input, a float first output; the quantized graph's are quantized. */
static int check_io(Eval *e, Diag *d)
{
	const char *m = e->o->model;
	const Graph *f = e->gf, *q = e->gq;
	if (f->ninput != 1 || f->noutput < 1) {
		diag_error(d, m, "eval needs a model with one input and an output; this one has %d input(s), %d output(s)",
		           f->ninput, f->noutput);
		return 1;
	}
	if (need_f32(&f->tensor[f->input[0]], "input", m, d) || need_f32(&f->tensor[f->output[0]], "output", m, d))
		return 1;
	if (!q)
		return 0;
	const Tensor *qi = q->ninput == 1 ? &q->tensor[q->input[0]] : NULL;
	const Tensor *qo = q->noutput >= 1 ? &q->tensor[q->output[0]] : NULL;
	if (!qi || !qo || !qi->q || !qo->q || ir_numel(qo) != ir_numel(&f->tensor[f->output[0]])) {
		diag_error(d, m, "the quantized model's input and first output are not quantized tensors like the float model's");
		return 1;
	}
	return 0;
}

/* Which float tensor each quantized tensor is measured against. */
static void match_tensors(Arena *a, Eval *e)
{
	const Graph *f = e->gf, *q = e->gq;
	e->match = arena_alloc(a, (size_t)q->ntensor * sizeof *e->match + 1);
	e->ref = arena_alloc(a, (size_t)f->ntensor * sizeof *e->ref + 1);
	e->noise = arena_alloc(a, (size_t)q->ntensor * sizeof *e->noise + 1);
	for (int t = 0; t < q->ntensor; t++) {
		const Tensor *tq = &q->tensor[t];
		int k = tq->q ? ir_find_tensor(f, tq->name) : -1;
		e->match[t] = -1;
		if (k < 0 || f->tensor[k].dtype != DT_F32 || ir_numel(&f->tensor[k]) != ir_numel(tq) ||
		    (f->tensor[k].kind == TK_CONST) != (tq->kind == TK_CONST))
			continue;
		e->match[t] = k;
		if (!e->ref[k] && tq->kind != TK_CONST)
			e->ref[k] = arena_alloc(a, (size_t)ir_numel(tq) * sizeof(float) + 1);
	}
}

static void add_noise(Noise *n, const Tensor *t, const void *q, const float *x)
{
	int64_t m = ir_numel(t);
	for (int64_t i = 0; i < m; i++) {
		double xh = ir_dequantize(t->q, ir_quant_channel(t, i),
		                           ir_wdecode(t->q, (int32_t)ir_load(t->dtype, q, i)));
		double dx = (double)x[i] - xh;
		n->sig += (double)x[i] * x[i];
		n->err += dx * dx;
	}
	n->count += m;
}

/* Constants are measured once: the weights' own quantization noise. */
static void const_noise(Eval *e)
{
	for (int t = 0; t < e->gq->ntensor; t++) {
		const Tensor *tq = &e->gq->tensor[t];
		if (e->match[t] >= 0 && tq->kind == TK_CONST)
			add_noise(&e->noise[t], tq, tq->data, e->gf->tensor[e->match[t]].data);
	}
}

static int load_graphs(Arena *a, Eval *e, Diag *d)
{
	PotcOptions fo = *e->o;
	int quant = e->o->quant.mode != QM_NONE;
	fo.quant.mode = QM_NONE;
	fo.quant.nlayer = 0;
	fo.calib = NULL;
	if (quant)
		fo.dump = NULL;          /* -d shows the quantized pipeline */
	e->gf = potc_load(a, &fo, "fuse", d);
	if (!e->gf)
		return 1;
	if (quant && !(e->gq = potc_load(a, e->o, NULL, d)))
		return 1;
	if (check_io(e, d))
		return 1;
	const Tensor *x = &e->gf->tensor[e->gf->input[0]], *y = &e->gf->tensor[e->gf->output[0]];
	e->batch = x->rank >= 1 && y->rank >= 2 && x->dim[0] == y->dim[0] && y->dim[0] > 0 ? y->dim[0] : 1;
	e->ncls = ir_numel(y) / e->batch;
	if (e->ncls < 1) {
		diag_error(d, e->o->model, "output \"%s\" is empty: no classes to take the top-1 of", y->name);
		return 1;
	}
	if (quant) {
		match_tensors(a, e);
		const_noise(e);
	}
	return 0;
}

/* Inputs (as the model input's samples) and labels (one per batch row). */
static int load_data(Eval *e, const char *data, const char *labels, PotcCalib *x, PotcCalib *y, Diag *d)
{
	const Tensor *t = &e->gf->tensor[e->gf->input[0]];
	if (potc_calib_load(data, t->dtype, t->rank, t->dim, e->o->eval_limit,
	                    (PotcCalibScale)e->o->calib_scale, x, d))
		return 1;
	e->data_desc = x->desc;
	int64_t want = x->n * e->batch;
	/* As float values (exact for any class index) so that float labels get
	 * the class check below, not a message about model inputs. */
	if (potc_calib_load(labels, DT_F32, 0, NULL, want, POTC_CALIB_RAW, y, d))
		return 1;
	if (y->n < want) {
		diag_error(d, labels, "holds %lld labels for %lld samples in %s",
		           (long long)y->n, (long long)want, data);
		return 1;
	}
	for (int64_t i = 0; i < want; i++)
		if (!(y->data[i] >= 0 && y->data[i] < (float)e->ncls && y->data[i] == floorf(y->data[i]))) {
			diag_error(d, labels, "label %g of sample %lld is not a class 0..%lld of output \"%s\"",
			           y->data[i], (long long)i, (long long)e->ncls - 1,
			           e->gf->tensor[e->gf->output[0]].name);
			return 1;
		}
	return 0;
}

/* ---- running ---- */

static void observe_float(void *ctx, const Graph *g, int t, const void *data)
{
	Eval *e = ctx;
	if (e->ref[t])
		memcpy(e->ref[t], data, (size_t)ir_numel(&g->tensor[t]) * sizeof(float));
}

static void observe_quant(void *ctx, const Graph *g, int t, const void *data)
{
	Eval *e = ctx;
	int k = e->match[t];
	if (k >= 0 && e->ref[k])
		add_noise(&e->noise[t], &g->tensor[t], data, e->ref[k]);
}

static int64_t argmax(const float *v, int64_t n)
{
	int64_t best = 0;
	for (int64_t i = 1; i < n; i++)
		if (v[i] > v[best])
			best = i;
	return best;
}

/* Scores of both models for one run's batch rows against their labels. */
static void score(Eval *e, const float *yf, const float *yq, const float *label)
{
	for (int64_t b = 0; b < e->batch; b++) {
		int64_t pf = argmax(yf + b * e->ncls, e->ncls), want = (int64_t)label[b];
		e->ok_f += pf == want;
		if (yq) {
			int64_t pq = argmax(yq + b * e->ncls, e->ncls);
			e->ok_q += pq == want;
			e->agree += pq == pf;
		}
	}
	e->nsamp += e->batch;
}

/* Buffers for one run of each graph: outputs, the integer input. */
typedef struct {
	void *fout[64], *qout[64];
	void *qin;
	float *yq;
} Bufs;

static int bufs_new(const Eval *e, Bufs *b)
{
	memset(b, 0, sizeof *b);
	for (int i = 0; i < e->gf->noutput && i < 64; i++)
		if (!(b->fout[i] = malloc(ir_nbytes(&e->gf->tensor[e->gf->output[i]]) + 1)))
			return 1;
	if (!e->gq)
		return 0;
	for (int i = 0; i < e->gq->noutput && i < 64; i++)
		if (!(b->qout[i] = malloc(ir_nbytes(&e->gq->tensor[e->gq->output[i]]) + 1)))
			return 1;
	b->qin = malloc(ir_nbytes(&e->gq->tensor[e->gq->input[0]]) + 1);
	b->yq = malloc((size_t)ir_numel(&e->gq->tensor[e->gq->output[0]]) * sizeof(float) + 1);
	return !b->qin || !b->yq;
}

static void bufs_free(Bufs *b)
{
	for (int i = 0; i < 64; i++) {
		free(b->fout[i]);
		free(b->qout[i]);
	}
	free(b->qin);
	free(b->yq);
}

static int run_sample(Eval *e, Bufs *b, const float *x, const float *label, Diag *d)
{
	const Graph *f = e->gf, *q = e->gq;
	const void *in[1] = {x};
	if (ir_eval(f, in, b->fout, q ? observe_float : NULL, e, d))
		return 1;
	if (!q) {
		score(e, b->fout[0], NULL, label);
		return 0;
	}
	observe_float(e, f, f->input[0], x);
	const Tensor *ti = &q->tensor[q->input[0]];
	potc_quantize(ti, x, b->qin);
	observe_quant(e, q, q->input[0], b->qin);
	in[0] = b->qin;
	if (ir_qeval(q, in, b->qout, observe_quant, e, d))
		return 1;
	potc_dequantize(&q->tensor[q->output[0]], b->qout[0], b->yq);
	score(e, b->fout[0], b->yq, label);
	return 0;
}

/* "eval [#####.....] 1234/10000" on stderr, redrawn at each percent. */
static void progress(int on, int64_t i, int64_t n)
{
	static const char bar[] = "########################################";
	if (!on || (i != n && i * 100 / n == (i - 1) * 100 / n && i))
		return;
	int w = (int)(40 * i / n);
	fprintf(stderr, "\reval [%.*s%*s] %lld/%lld", w, bar, 40 - w, "", (long long)i, (long long)n);
	if (i == n)
		fputc('\n', stderr);
	fflush(stderr);
}

static int run_all(Eval *e, const PotcCalib *x, const PotcCalib *y, Diag *d)
{
	Bufs b;
	int err = bufs_new(e, &b);
	if (err)
		diag_error(d, e->o->model, "out of memory for the evaluation buffers");
	for (int64_t s = 0; !err && s < x->n; s++) {
		progress(e->o->quant.progress, s, x->n);
		err = run_sample(e, &b, x->data + s * x->per_sample, y->data + s * e->batch, d);
	}
	if (!err)
		progress(e->o->quant.progress, x->n, x->n);
	bufs_free(&b);
	return err;
}

/* ---- results ---- */

static double sqnr_db(const Noise *n)
{
	if (n->err == 0)
		return INFINITY;
	return 10 * log10(n->sig / n->err);
}

static const char *kind_name(const Graph *g, int t)
{
	const Tensor *x = &g->tensor[t];
	return x->kind == TK_CONST ? "const" : x->kind == TK_INPUT ? "input" : ir_opname[g->node[x->producer].op];
}

static void quant_str(const Quant *q, char *buf, size_t n)
{
	FILE *f = fmemopen(buf, n, "w");
	buf[0] = 0;
	if (!f)
		return;
	ir_quant_print(q, f);
	fclose(f);
}

static const char *mode_name(QuantMode m)
{
	return m == QM_FIXED ? "fixed" : m == QM_AFFINE ? "affine" : "none";
}

static double pct(int64_t k, int64_t n)
{
	return n ? 100.0 * (double)k / (double)n : 0;
}

/* The tensors with an SQNR, in the order a reader follows the model:
 * inputs, node outputs in node order, then constants.  Returns the count. */
static int sqnr_rows(const Eval *e, int *rows)
{
	const Graph *q = e->gq;
	int n = 0;
	for (int i = 0; i < q->ninput; i++)
		rows[n++] = q->input[i];
	for (int i = 0; i < q->nnode; i++)
		for (int j = 0; !q->node[i].dead && j < q->node[i].nout; j++)
			if (q->node[i].out[j] >= 0)
				rows[n++] = q->node[i].out[j];
	for (int t = 0; t < q->ntensor; t++)
		if (q->tensor[t].kind == TK_CONST)
			rows[n++] = t;
	int k = 0;
	for (int i = 0; i < n; i++)
		if (e->match[rows[i]] >= 0 && e->noise[rows[i]].count)
			rows[k++] = rows[i];
	return k;
}

static void print_sqnr(const Eval *e, const int *rows, int n)
{
	const Graph *q = e->gq;
	int w = 6;
	for (int i = 0; i < n; i++) {
		int l = (int)strlen(q->tensor[rows[i]].name);
		w = l > w ? l : w;
	}
	printf("\nSQNR per tensor (dB; constants once, the rest over all samples):\n");
	printf("  %-*s  %-17s %-20s %7s\n", w, "tensor", "from", "quant", "SQNR");
	for (int i = 0; i < n; i++) {
		char qs[96];
		int t = rows[i];
		quant_str(q->tensor[t].q, qs, sizeof qs);
		printf("  %-*s  %-17s %-20s %7.2f\n", w, q->tensor[t].name, kind_name(q, t), qs, sqnr_db(&e->noise[t]));
	}
}

static int is_dot(const Node *n)
{
	return n->q && !n->dead && (n->op == OP_CONV || n->op == OP_GEMM || n->op == OP_MATMUL);
}

static const char *acc_method_name(int m)
{
	return m == ACC_SCALED ? "scaled" : m == ACC_TILED ? "tiled" : m == ACC_UNCHECKED ? "unchecked" : "fits";
}

/* log2(limit / worst): bits to spare, negative when the bound exceeds. */
static double acc_margin(const QNode *q)
{
	return q->acc_worst > 0 && q->acc_limit > 0 ? log2((double)q->acc_limit / (double)q->acc_worst) : NAN;
}

/* Per Conv/Gemm/MatMul: the P-bit bound and how pass_accbound kept it. */
static void print_acc(const Graph *g)
{
	int w = 5;
	for (int i = 0; i < g->nnode; i++)
		if (is_dot(&g->node[i]))
			w = (int)strlen(g->node[i].name) > w ? (int)strlen(g->node[i].name) : w;
	printf("\nnarrow accumulators (worst |partial sum| over the input ranges, bias excluded):\n");
	printf("  %-*s  %3s %12s %12s %7s  %s\n", w, "layer", "P", "worst", "limit", "margin", "method");
	for (int i = 0; i < g->nnode; i++) {
		const Node *n = &g->node[i];
		if (!is_dot(n))
			continue;
		const QNode *q = n->q;
		char how[64];
		if (q->acc_method == ACC_SCALED && q->ktile)
			snprintf(how, sizeof how, "scaled %d channel(s), tiled %d", q->acc_scaled, q->ktile);
		else if (q->acc_method == ACC_SCALED)
			snprintf(how, sizeof how, "scaled %d channel(s)", q->acc_scaled);
		else if (q->acc_method == ACC_TILED)
			snprintf(how, sizeof how, "tiled %d", q->ktile);
		else
			snprintf(how, sizeof how, "%s", acc_method_name(q->acc_method));
		printf("  %-*s  %3d %12lld %12lld %7.2f  %s\n", w, n->name, q->acc_bits, (long long)q->acc_worst,
		       (long long)q->acc_limit, acc_margin(q), how);
	}
}

static void print_table(const Eval *e)
{
	const QuantConfig *c = &e->o->quant;
	printf("model      %s\n", e->o->model);
	printf("data       %s\n", e->data_desc);
	printf("samples    %lld\n", (long long)e->nsamp);
	if (e->gq)
		printf("quant      %s, wbits %d, abits %d, bp %s, %d layer override(s)\n", mode_name(c->mode),
		       c->wbits, c->abits, c->bp_max ? "max" : "mse", c->nlayer);
	printf("\n%-22s %8s\n", "", "top-1");
	printf("%-22s %7.2f%%\n", "float", pct(e->ok_f, e->nsamp));
	if (!e->gq)
		return;
	char name[64];
	snprintf(name, sizeof name, "%s w%d/a%d", mode_name(c->mode), c->wbits, c->abits);
	printf("%-22s %7.2f%%\n", name, pct(e->ok_q, e->nsamp));
	printf("%-22s %7.2f%%\n", "agreement", pct(e->agree, e->nsamp));
	int *rows = malloc(((size_t)e->gq->ntensor * 2 + 1) * sizeof *rows);
	if (rows)
		print_sqnr(e, rows, sqnr_rows(e, rows));
	free(rows);
	if (c->acc_bits > 0 && c->acc_bits < 32)
		print_acc(e->gq);
}

/* ---- JSON report ---- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

/* A finite number, or null (JSON has no infinity). */
static void json_num(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.17g", v);
	else
		fputs("null", f);
}

static void json_quant(FILE *f, const Graph *g, int t)
{
	const Tensor *x = &g->tensor[t];
	const Quant *q = x->q;
	fprintf(f, "    {\"name\": ");
	json_str(f, x->name);
	fprintf(f, ", \"kind\": \"%s\", \"output\": %s, \"dtype\": \"%s\", \"bits\": %d, \"unsigned\": %s, "
	        "\"axis\": %d,\n", x->kind == TK_CONST ? "const" : x->kind == TK_INPUT ? "input" : "value",
	        x->is_output ? "true" : "false", ir_dtype_name(x->dtype), q->bits, q->is_unsigned ? "true" : "false",
	        q->axis);
	fprintf(f, "     \"scale\": [");
	for (int c = 0; c < q->nch; c++) {
		fputs(c ? ", " : "", f);
		json_num(f, q->scale[c]);
	}
	fprintf(f, "], \"zero_point\": [");
	for (int c = 0; c < q->nch; c++)
		fprintf(f, "%s%d", c ? ", " : "", (int)q->zp[c]);
	fprintf(f, "], \"frac\": ");
	if (!q->frac)
		fputs("null", f);
	for (int c = 0; q->frac && c < q->nch; c++)
		fprintf(f, "%s%d", c ? ", " : "[", q->frac[c]);
	fprintf(f, "%s}", q->frac ? "]" : "");
}

static void json_node(FILE *f, const Graph *g, int i)
{
	const Node *n = &g->node[i];
	const QNode *q = n->q;
	double margin = acc_margin(q);
	fprintf(f, "    {\"name\": ");
	json_str(f, n->name);
	fprintf(f, ", \"op\": \"%s\", \"acc64\": %s, \"acc_worst\": %lld, \"acc_limit\": %lld, \"margin_bits\": ",
	        ir_opname[n->op], q->acc64 ? "true" : "false", (long long)q->acc_worst, (long long)q->acc_limit);
	json_num(f, margin);
	if (is_dot(n) && q->acc_bits)
		fprintf(f, ", \"acc_bits\": %d, \"acc_method\": \"%s\", \"ktile\": %d, \"scaled_channels\": %d",
		        q->acc_bits, acc_method_name(q->acc_method), q->ktile, q->acc_scaled);
	fputc('}', f);
}

static void json_sqnr(FILE *f, const Eval *e)
{
	const Graph *q = e->gq;
	int *rows = malloc(((size_t)q->ntensor * 2 + 1) * sizeof *rows);
	int n = rows ? sqnr_rows(e, rows) : 0;
	fprintf(f, "  \"sqnr\": [");
	for (int i = 0; i < n; i++) {
		int t = rows[i];
		fprintf(f, "%s\n    {\"tensor\": ", i ? "," : "");
		json_str(f, q->tensor[t].name);
		fprintf(f, ", \"from\": \"%s\", \"db\": ", kind_name(q, t));
		json_num(f, sqnr_db(&e->noise[t]));
		fprintf(f, ", \"signal\": ");
		json_num(f, e->noise[t].sig);
		fprintf(f, ", \"noise\": ");
		json_num(f, e->noise[t].err);
		fputc('}', f);
	}
	fprintf(f, "\n  ],\n");
	free(rows);
}

static void json_config(FILE *f, const Eval *e)
{
	const PotcOptions *o = e->o;
	const QuantConfig *c = &o->quant;
	fprintf(f, "  \"quant\": {\"mode\": \"%s\", \"wbits\": %d, \"abits\": %d, \"bp\": \"%s\", "
	        "\"acc_bits\": %d, \"acc_unchecked\": %s, \"calib\": ", mode_name(c->mode), c->wbits, c->abits,
	        c->bp_max ? "max" : "mse", c->acc_bits ? c->acc_bits : 32, c->acc_unchecked ? "true" : "false");
	if (o->calib)
		json_str(f, o->calib);
	else
		fputs("null", f);
	fprintf(f, ", \"calib_count\": %lld, \"calib_scale\": \"%s\", \"layers\": [",
	        (long long)o->calib_count, potc_calib_scale_name((PotcCalibScale)o->calib_scale));
	for (int i = 0; i < c->nlayer; i++) {
		fprintf(f, "%s{\"node\": ", i ? ", " : "");
		json_str(f, c->layer[i].node);
		fprintf(f, ", \"wbits\": %d, \"abits\": %d}", c->layer[i].wbits, c->layer[i].abits);
	}
	fprintf(f, "]},\n");
}

static void json_quantized(FILE *f, const Eval *e)
{
	const Graph *q = e->gq;
	json_config(f, e);
	fprintf(f, "  \"quant_correct\": %lld,\n  \"quant_top1\": ", (long long)e->ok_q);
	json_num(f, e->nsamp ? (double)e->ok_q / (double)e->nsamp : NAN);
	fprintf(f, ",\n  \"agree\": %lld,\n  \"agreement\": ", (long long)e->agree);
	json_num(f, e->nsamp ? (double)e->agree / (double)e->nsamp : NAN);
	fprintf(f, ",\n");
	json_sqnr(f, e);
	int first = 1;
	fprintf(f, "  \"tensors\": [");
	for (int t = 0; t < q->ntensor; t++)
		if (q->tensor[t].q) {
			fprintf(f, "%s\n", first ? "" : ",");
			json_quant(f, q, t);
			first = 0;
		}
	fprintf(f, "\n  ],\n  \"nodes\": [");
	first = 1;
	for (int i = 0; i < q->nnode; i++)
		if (q->node[i].q && !q->node[i].dead) {
			fprintf(f, "%s\n", first ? "" : ",");
			json_node(f, q, i);
			first = 0;
		}
	fprintf(f, "\n  ],\n");
}

static int write_report(const Eval *e, FILE *f, const char *path, const char *data, const char *labels,
                        Diag *d)
{
	fprintf(f, "{\n  \"model\": ");
	json_str(f, e->o->model);
	fprintf(f, ",\n  \"data\": ");
	json_str(f, data);
	fprintf(f, ",\n  \"labels\": ");
	json_str(f, labels);
	fprintf(f, ",\n  \"samples\": %lld,\n  \"float_correct\": %lld,\n  \"float_top1\": ",
	        (long long)e->nsamp, (long long)e->ok_f);
	json_num(f, e->nsamp ? (double)e->ok_f / (double)e->nsamp : NAN);
	fprintf(f, ",\n");
	if (e->gq)
		json_quantized(f, e);
	else
		fprintf(f, "  \"quant\": null,\n");
	fprintf(f, "  \"classes\": %lld\n}\n", (long long)e->ncls);
	if (ferror(f) | fclose(f)) {
		diag_error(d, path, "write failed");
		return 1;
	}
	return 0;
}

int potc_cmd_eval(const PotcOptions *o, const char *data, const char *labels,
                  const char *report, Diag *d)
{
	/* The report file is opened first: a bad path fails before the run. */
	FILE *f = report ? fopen(report, "w") : NULL;
	if (report && !f) {
		diag_error(d, report, "cannot write this file");
		return 1;
	}
	Arena *a = arena_new();
	Eval e = {.o = o};
	PotcCalib x = {0}, y = {0};
	int err = load_graphs(a, &e, d) || load_data(&e, data, labels, &x, &y, d) || run_all(&e, &x, &y, d);
	if (!err)
		print_table(&e);
	if (f && !err)
		err = write_report(&e, f, report, data, labels, d);
	else if (f)
		fclose(f);
	if (f && err)
		remove(report);
	potc_calib_free(&x);
	potc_calib_free(&y);
	arena_free(a);
	return err;
}

/* ---- --sweep ---- */

/* One point: quantized top-1 (and float top-1) with options o, no table. */
static int sweep_point(const PotcOptions *o, const PotcCalib *x, const PotcCalib *y, double *ftop,
                       double *qtop, Diag *d)
{
	Arena *a = arena_new();
	Eval e = {.o = o};
	int err = load_graphs(a, &e, d) || run_all(&e, x, y, d);
	if (!err) {
		*ftop = pct(e.ok_f, e.nsamp);
		*qtop = pct(e.ok_q, e.nsamp);
	}
	arena_free(a);
	return err;
}

static const char *const weight_names[] = {"uniform", "pot", "apot"};

/* `potc eval --sweep acc-bits=LO:HI[:STEP]` prints top-1 against the
 * accumulator width; `--sweep wbits=LO:HI` against weight bits for
 * uniform, PoT and APoT weights (codes stop at 6 bits). */
int potc_cmd_sweep(const PotcOptions *o, const char *data, const char *labels, const char *key, int lo,
                   int hi, int step, Diag *d)
{
	Arena *a = arena_new();
	Eval e0 = {.o = o};
	PotcCalib x = {0}, y = {0};
	int err = load_graphs(a, &e0, d) || load_data(&e0, data, labels, &x, &y, d);
	arena_free(a);
	int wb = strcmp(key, "wbits") == 0;
	if (!err)
		printf("%-10s %-8s %8s %8s %8s\n", key, "weights", "float", "quant", "drop");
	for (int w = 0; !err && w < (wb ? 3 : 1); w++) {
		for (int v = lo; !err && v <= hi; v += step) {
			PotcOptions p = *o;
			if (wb) {
				if (w && v > 6)
					continue;   /* PoT/APoT codes: 2..6 bits */
				p.quant.weights = w;
				p.quant.keep_first_last = w != 0;
				p.quant.wbits = v;
			} else {
				p.quant.acc_bits = v >= 32 ? 0 : v;
			}
			double ft = 0, qt = 0;
			err = sweep_point(&p, &x, &y, &ft, &qt, d);
			if (!err)
				printf("%-10d %-8s %7.2f%% %7.2f%% %8.2f\n", v,
				       weight_names[wb ? w : p.quant.weights], ft, qt, ft - qt);
			fflush(stdout);
		}
	}
	potc_calib_free(&x);
	potc_calib_free(&y);
	return err;
}
