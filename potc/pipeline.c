/* The pipeline: ONNX -> IR -> passes -> C.  The list below is the whole
 * compiler; ir_verify runs after every pass and -d dumps the IR. */
#include <stdlib.h>
#include <string.h>

#include "calib_data.h"
#include "emit_c.h"
#include "passes.h"
#include "potc.h"

typedef int (*PassFn)(Graph *, Diag *);

static const struct {
	const char *name;
	PassFn run;
} pipeline[] = {
	{"fold", pass_fold},       /* static shapes, constant sub-graphs evaluated */
	{"bnfold", pass_bnfold},   /* BatchNormalization into Conv/Gemm weights */
	{"views", pass_views},     /* Identity, Dropout gone */
	{"dce", pass_dce},         /* nodes that reach no output gone */
	{"fuse", pass_fuse},       /* activations into their producer */
	/* --quant only (each returns at once without Graph.qcfg) */
	{"qdq", pass_qdq},             /* the model's own Q/DQ scales kept as Quant */
	{"calibrate", pass_calibrate}, /* ranges and histograms over --calib */
	{"qchoose", pass_qchoose},     /* bits, binary point / scale per tensor */
	{"pot", pass_pot},             /* --weights pot|apot: weights as power-of-two codes */
	{"qlower", pass_qlower},       /* the integer IR */
	{"accbound", pass_accbound},   /* --acc-bits P: every accumulator proven to fit P bits */
	{"memplan", pass_memplan}, /* arena offsets, views aliased */
};

const char *const potc_passes[] = {"import", "fold", "bnfold", "views", "dce", "fuse", "qdq", "calibrate",
                                   "qchoose", "pot", "qlower", "accbound", "memplan", NULL};

static int wants_dump(const PotcOptions *o, const char *pass)
{
	if (!o->dump)
		return 0;
	if (strcmp(o->dump, "all") == 0)
		return 1;
	size_t n = strlen(pass);
	for (const char *p = o->dump; (p = strstr(p, pass)); p += n)
		if ((p == o->dump || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
			return 1;
	return 0;
}

static void dump(const PotcOptions *o, const Graph *g, const char *pass)
{
	if (!wants_dump(o, pass))
		return;
	FILE *f = o->dump_out ? o->dump_out : stderr;
	fprintf(f, "## after %s\n", pass);
	ir_dump(g, f);
}

/* The --quant configuration of g, calibration samples read (one file feeds
 * the graph's single float input).  The samples live in the arena. */
static int quant_config(Graph *g, const PotcOptions *o, Diag *d)
{
	QuantConfig *q = arena_dup(g->arena, &o->quant, sizeof o->quant);
	g->qcfg = q;
	q->nsamples = 0;
	if (!o->calib)
		return 0;
	if (g->ninput != 1 || g->tensor[g->input[0]].dtype != DT_F32) {
		diag_error(d, o->model, "--calib feeds a model with one float input; this one has %d input(s)",
		           g->ninput);
		return 1;
	}
	const Tensor *t = &g->tensor[g->input[0]];
	PotcCalib c;
	if (potc_calib_load(o->calib, t->dtype, t->rank, t->dim, o->calib_count,
	                    (PotcCalibScale)o->calib_scale, &c, d))
		return 1;
	q->nsamples = c.n;                 /* each one a whole model input */
	q->samples[0] = arena_dup(g->arena, c.data, (size_t)(q->nsamples * ir_numel(t)) * sizeof(float));
	potc_calib_free(&c);
	return 0;
}

Graph *potc_load(Arena *a, const PotcOptions *o, const char *stop, Diag *d)
{
	Graph *g = potc_import(a, o, d);
	if (!g || ir_verify(g, d))
		return NULL;
	if (o->quant.mode != QM_NONE && quant_config(g, o, d))
		return NULL;
	dump(o, g, "import");
	if (stop && strcmp(stop, "import") == 0)
		return g;
	for (size_t i = 0; i < sizeof pipeline / sizeof pipeline[0]; i++) {
		if (pipeline[i].run(g, d) || d->nerr || ir_verify(g, d))
			return NULL;
		dump(o, g, pipeline[i].name);
		if (stop && strcmp(stop, pipeline[i].name) == 0)
			break;
	}
	return g;
}

/* "dir/model.c" -> "dir/model.h" and stem "model". */
static char *with_ext(Arena *a, const char *path, const char *ext)
{
	const char *dot = strrchr(path, '.');
	const char *slash = strrchr(path, '/');
	size_t n = dot && (!slash || dot > slash) ? (size_t)(dot - path) : strlen(path);
	return arena_printf(a, "%.*s%s", (int)n, path, ext);
}

static const char *basename_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

static FILE *open_out(const char *path, Diag *d)
{
	FILE *f = fopen(path, "w");
	if (!f)
		diag_error(d, path, "cannot write this file");
	return f;
}

static int close_out(FILE *f, const char *path, Diag *d)
{
	if (ferror(f) | fclose(f)) {
		diag_error(d, path, "write failed");
		return 1;
	}
	return 0;
}

static int write_outputs(const Graph *g, const PotcOptions *o, Arena *a, Diag *d)
{
	char *hpath = with_ext(a, o->out, ".h");
	char *stem = with_ext(a, basename_of(o->out), "");
	EmitC e = {.name = o->name ? o->name : stem, .header = basename_of(hpath),
	           .source = o->model, .arena_extern = o->arena_extern};
	FILE *c = open_out(o->out, d);
	FILE *h = c ? open_out(hpath, d) : NULL;
	if (!h) {
		if (c)
			fclose(c);
		return 1;
	}
	int err = emit_c(g, &e, c, h, d);
	err |= close_out(c, o->out, d);
	err |= close_out(h, hpath, d);
	if (!err && o->driver) {
		FILE *m = open_out(o->driver, d);
		if (!m)
			return 1;
		err |= emit_c_driver(g, &e, m, d);
		err |= close_out(m, o->driver, d);
	}
	return err;
}

int potc_compile(const PotcOptions *o, Diag *d)
{
	Arena *a = arena_new();
	Graph *g = potc_load(a, o, NULL, d);
	int err = !g || write_outputs(g, o, a, d);
	if (err && o->out) {
		/* Never leave half-written output that a build could pick up. */
		remove(o->out);
	}
	arena_free(a);
	return err;
}
