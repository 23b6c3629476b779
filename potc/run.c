/* `potc run`: the float reference evaluator on .npy files, with the same
 * batching rule as the generated driver: an input whose leading dim is a
 * multiple of the model's is run slice by slice and the outputs stacked. */
#include <stdlib.h>
#include <string.h>

#include "npy_io.h"
#include "potc.h"

/* How many model-sized slices file a holds for input t (0 = wrong shape). */
static long slices(const Npy *a, const Tensor *t)
{
	if (t->rank == 0)
		return a->count == 1;
	if (a->rank != t->rank || t->dim[0] < 1 || a->dim[0] % t->dim[0])
		return 0;
	for (int i = 1; i < t->rank; i++)
		if (a->dim[i] != t->dim[i])
			return 0;
	return a->dim[0] / t->dim[0];
}

static int load_inputs(const Graph *g, const char *const *path, Npy *a, void **buf,
                       long *nslice, Diag *d)
{
	char err[256];
	*nslice = -1;
	for (int i = 0; i < g->ninput; i++) {
		const Tensor *t = &g->tensor[g->input[i]];
		if (npy_read(path[i], &a[i], err, sizeof err)) {
			diag_error(d, path[i], "%s", err);
			return 1;
		}
		long n = slices(&a[i], t);
		if (n == 0 || (*nslice >= 0 && n != *nslice)) {
			diag_error(d, path[i], "shape does not fit input \"%s\" (%lld elements per sample)%s",
			           t->name, (long long)ir_numel(t), n ? " or differs in count from another input" : "");
			return 1;
		}
		*nslice = n;
		buf[i] = malloc((size_t)a[i].count * ir_dtype_size(t->dtype) + 1);
		if (npy_convert(&a[i], (NpyType)potc_npy_type(t->dtype), buf[i])) {
			diag_error(d, path[i], "%s data cannot feed %s input \"%s\"",
			           npy_descr(a[i].type), ir_dtype_name(t->dtype), t->name);
			return 1;
		}
	}
	return 0;
}

static int write_outputs(const Graph *g, const char *const *path, void **buf, long nslice, Diag *d)
{
	char err[256];
	for (int i = 0; i < g->noutput; i++) {
		const Tensor *t = &g->tensor[g->output[i]];
		long dim[IR_MAXRANK + 1];
		int rank = t->rank;
		for (int k = 0; k < rank; k++)
			dim[k] = (long)t->dim[k];
		if (rank == 0 && nslice > 1)
			dim[rank++] = 1;
		dim[0] *= nslice;
		if (npy_write(path[i], (NpyType)potc_npy_type(t->dtype), rank, dim, buf[i], err, sizeof err)) {
			diag_error(d, path[i], "%s", err);
			return 1;
		}
	}
	return 0;
}

static int evaluate(const Graph *g, void **in, void **out, long nslice, Diag *d)
{
	const void *ip[64];
	void *op[64];
	for (long s = 0; s < nslice; s++) {
		for (int i = 0; i < g->ninput; i++)
			ip[i] = (char *)in[i] + s * ir_nbytes(&g->tensor[g->input[i]]);
		for (int i = 0; i < g->noutput; i++)
			op[i] = (char *)out[i] + s * ir_nbytes(&g->tensor[g->output[i]]);
		if (ir_eval(g, ip, op, NULL, NULL, d))
			return 1;
	}
	return 0;
}

static int run_graph(const Graph *g, const char *const *in, const char *const *out, Diag *d)
{
	Npy a[64] = {{0}};
	void *ibuf[64] = {0}, *obuf[64] = {0};
	long nslice = 1;
	int err = load_inputs(g, in, a, ibuf, &nslice, d);
	if (!err) {
		for (int i = 0; i < g->noutput; i++)
			obuf[i] = calloc(1, (size_t)nslice * ir_nbytes(&g->tensor[g->output[i]]) + 1);
		err = evaluate(g, ibuf, obuf, nslice, d) || write_outputs(g, out, obuf, nslice, d);
	}
	for (int i = 0; i < 64; i++) {
		npy_free(&a[i]);
		free(ibuf[i]);
		free(obuf[i]);
	}
	return err;
}

int potc_cmd_run(const PotcOptions *o, const char *const *in, int nin,
                 const char *const *out, int nout, Diag *d)
{
	Arena *a = arena_new();
	/* The reference runs the model as imported (shapes folded), not as
	 * optimised, so it checks the optimisations too. */
	Graph *g = potc_load(a, o, "fold", d);
	int err = !g;
	if (g && (nin != g->ninput || nout != g->noutput || nin > 64 || nout > 64)) {
		diag_error(d, o->model, "the model has %d input(s) and %d output(s); got %d .npy input(s) and %d -o",
		           g->ninput, g->noutput, nin, nout);
		err = 1;
	}
	if (!err)
		err = run_graph(g, in, out, d);
	arena_free(a);
	return err;
}
