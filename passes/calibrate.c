/* Calibration: the float evaluator runs every calibration sample and each
 * float tensor records its range, then (second run) a histogram over
 * [-amax, amax] that pass_qchoose scores binary points against.  Two runs
 * instead of one with a growing histogram keep the bins exact and the code
 * short; calibration sets are small (hundreds of samples). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "passes.h"

typedef struct {
	Graph *g;
	int second;   /* 0: ranges, 1: histograms */
	int bad;      /* a NaN or infinity was seen */
	int badt;
} Cal;

static void record(Cal *c, Tensor *t, const float *x)
{
	QStats *s = t->st;
	int64_t n = ir_numel(t);
	if (!c->second) {
		for (int64_t i = 0; i < n; i++) {
			double v = x[i];
			if (!isfinite(v)) {
				c->bad = 1;
				c->badt = (int)(t - c->g->tensor);
				return;
			}
			s->sum += v;
			s->min = v < s->min ? v : s->min;
			s->max = v > s->max ? v : s->max;
		}
		s->count += n;
		return;
	}
	if (!(s->amax > 0))
		return;
	double k = QSTATS_BINS / (2 * s->amax);
	for (int64_t i = 0; i < n; i++) {
		int b = (int)((x[i] + s->amax) * k);
		s->hist[b < 0 ? 0 : b >= QSTATS_BINS ? QSTATS_BINS - 1 : b] += 1;
	}
}

static void observe(void *ctx, const Graph *g, int t, const void *data)
{
	Cal *c = ctx;
	Tensor *tt = &c->g->tensor[t];
	(void)g;
	if (tt->st && !c->bad)
		record(c, tt, data);
}

static void progress(const QuantConfig *q, int run, int64_t s)
{
	if (!q->progress)
		return;
	int64_t total = 2 * q->nsamples, done = run * q->nsamples + s + 1;
	int w = (int)(40 * done / total);
	fprintf(stderr, "\rcalibrating [%.*s%*s] %lld/%lld", w, "########################################",
	        40 - w, "", (long long)done, (long long)total);
	if (done == total)
		fputc('\n', stderr);
}

static int run_samples(Cal *c, Diag *d)
{
	const QuantConfig *q = c->g->qcfg;
	Graph *g = c->g;
	for (int64_t s = 0; s < q->nsamples; s++) {
		const void *in[QC_MAXIN];
		for (int i = 0; i < g->ninput; i++) {
			Tensor *t = &g->tensor[g->input[i]];
			in[i] = q->samples[i] + s * ir_numel(t);
			if (t->st)
				record(c, t, in[i]);
		}
		if (ir_eval(g, in, NULL, observe, c, d))
			return 1;
		if (c->bad) {
			ir_error(d, g, g->tensor[c->badt].producer,
			         "calibration sample %lld makes tensor \"%s\" NaN or infinite",
			         (long long)s, g->tensor[c->badt].name);
			return 1;
		}
		progress(q, c->second, s);
	}
	return 0;
}

int pass_calibrate(Graph *g, Diag *d)
{
	const QuantConfig *q = g->qcfg;
	if (!q || q->nsamples == 0)
		return 0;
	if (g->ninput > QC_MAXIN)
		return ir_error(d, g, -1, "calibration supports at most %d inputs", QC_MAXIN), 1;
	for (int t = 0; t < g->ntensor; t++) {
		Tensor *tt = &g->tensor[t];
		if (tt->dtype != DT_F32 || tt->kind == TK_CONST || tt->q)
			continue;
		tt->st = arena_alloc(g->arena, sizeof *tt->st);
		tt->st->min = INFINITY;
		tt->st->max = -INFINITY;
	}
	Cal c = {.g = g};
	if (run_samples(&c, d))
		return 1;
	for (int t = 0; t < g->ntensor; t++) {
		QStats *s = g->tensor[t].st;
		if (!s)
			continue;
		s->amax = fmax(fabs(s->min), fabs(s->max));
		s->hist = arena_alloc(g->arena, QSTATS_BINS * sizeof *s->hist);
	}
	c.second = 1;
	return run_samples(&c, d);
}
