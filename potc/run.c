/* `potc run`: the reference evaluator on .npy files, with the same
 * batching rule as the generated driver: an input whose leading dim is a
 * multiple of the model's is run slice by slice and the outputs stacked.
 * With --quant the model is compiled to the integer IR and run by the
 * integer evaluator, which defines what the generated code computes; its
 * quantized inputs and outputs are float32 on the caller's side. */
#include <stdlib.h>
#include <string.h>

#include "npy_io.h"
#include "potc.h"

/* The caller's dtype of a graph input or output: float for a quantized one. */
static DType host_dtype(const Tensor *t)
{
	return t->q ? DT_F32 : t->dtype;
}

static size_t host_bytes(const Tensor *t)
{
	return (size_t)ir_numel(t) * ir_dtype_size(host_dtype(t));
}

/* q into element i of an integer array of dtype dt (a Quant's dtypes). */
static void store_int(DType dt, void *p, int64_t i, int32_t q)
{
	switch (dt) {
	case DT_I8: ((int8_t *)p)[i] = (int8_t)q; break;
	case DT_U8: ((uint8_t *)p)[i] = (uint8_t)q; break;
	case DT_I16: ((int16_t *)p)[i] = (int16_t)q; break;
	case DT_U16: ((uint16_t *)p)[i] = (uint16_t)q; break;
	default: ((int32_t *)p)[i] = q; break;
	}
}

void potc_quantize(const Tensor *t, const float *x, void *q)
{
	int64_t n = ir_numel(t);
	for (int64_t i = 0; i < n; i++)
		store_int(t->dtype, q, i, ir_quantize(t->q, ir_quant_channel(t, i), x[i]));
}

void potc_dequantize(const Tensor *t, const void *q, float *x)
{
	int64_t n = ir_numel(t);
	for (int64_t i = 0; i < n; i++)
		x[i] = (float)ir_dequantize(t->q, ir_quant_channel(t, i), (int64_t)ir_load(t->dtype, q, i));
}

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
		buf[i] = malloc((size_t)a[i].count * ir_dtype_size(host_dtype(t)) + 1);
		if (npy_convert(&a[i], (NpyType)potc_npy_type(host_dtype(t)), buf[i])) {
			diag_error(d, path[i], "%s data cannot feed %s input \"%s\"",
			           npy_descr(a[i].type), ir_dtype_name(host_dtype(t)), t->name);
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
		if (npy_write(path[i], (NpyType)potc_npy_type(host_dtype(t)), rank, dim, buf[i], err, sizeof err)) {
			diag_error(d, path[i], "%s", err);
			return 1;
		}
	}
	return 0;
}

/* Integer buffers of the quantized inputs and outputs, NULL for the rest. */
typedef struct {
	void *in[64], *out[64];
} QBufs;

/* One slice through the integer evaluator: quantize, run, dequantize. */
static int qeval_slice(const Graph *g, const void **ip, void **op, QBufs *q, Diag *d)
{
	const void *in[64];
	void *out[64];
	for (int i = 0; i < g->ninput; i++) {
		const Tensor *t = &g->tensor[g->input[i]];
		if (t->q)
			potc_quantize(t, ip[i], q->in[i]);
		in[i] = t->q ? q->in[i] : ip[i];
	}
	for (int i = 0; i < g->noutput; i++)
		out[i] = g->tensor[g->output[i]].q ? q->out[i] : op[i];
	if (ir_qeval(g, in, out, NULL, NULL, d))
		return 1;
	for (int i = 0; i < g->noutput; i++)
		if (g->tensor[g->output[i]].q)
			potc_dequantize(&g->tensor[g->output[i]], q->out[i], op[i]);
	return 0;
}

static int evaluate(const Graph *g, void **in, void **out, long nslice, QBufs *q, Diag *d)
{
	const void *ip[64];
	void *op[64];
	for (long s = 0; s < nslice; s++) {
		for (int i = 0; i < g->ninput; i++)
			ip[i] = (char *)in[i] + s * host_bytes(&g->tensor[g->input[i]]);
		for (int i = 0; i < g->noutput; i++)
			op[i] = (char *)out[i] + s * host_bytes(&g->tensor[g->output[i]]);
		if (q ? qeval_slice(g, ip, op, q, d) : ir_eval(g, ip, op, NULL, NULL, d))
			return 1;
	}
	return 0;
}

static void qbufs_new(const Graph *g, QBufs *q)
{
	for (int i = 0; i < g->ninput; i++)
		if (g->tensor[g->input[i]].q)
			q->in[i] = malloc(ir_nbytes(&g->tensor[g->input[i]]) + 1);
	for (int i = 0; i < g->noutput; i++)
		if (g->tensor[g->output[i]].q)
			q->out[i] = malloc(ir_nbytes(&g->tensor[g->output[i]]) + 1);
}

static int run_graph(const Graph *g, int quant, const char *const *in, const char *const *out, Diag *d)
{
	Npy a[64] = {{0}};
	void *ibuf[64] = {0}, *obuf[64] = {0};
	QBufs q = {{0}, {0}};
	long nslice = 1;
	int err = load_inputs(g, in, a, ibuf, &nslice, d);
	if (!err) {
		for (int i = 0; i < g->noutput; i++)
			obuf[i] = calloc(1, (size_t)nslice * host_bytes(&g->tensor[g->output[i]]) + 1);
		if (quant)
			qbufs_new(g, &q);
		err = evaluate(g, ibuf, obuf, nslice, quant ? &q : NULL, d) || write_outputs(g, out, obuf, nslice, d);
	}
	for (int i = 0; i < 64; i++) {
		npy_free(&a[i]);
		free(ibuf[i]);
		free(obuf[i]);
		free(q.in[i]);
		free(q.out[i]);
	}
	return err;
}

int potc_cmd_run(const PotcOptions *o, const char *const *in, int nin,
                 const char *const *out, int nout, Diag *d)
{
	Arena *a = arena_new();
	/* The float reference runs the model as imported (shapes folded), not
	 * as optimised, so it checks the optimisations too; the integer one
	 * runs the lowered model, which is what the integer IR defines. */
	int quant = o->quant.mode != QM_NONE;
	Graph *g = potc_load(a, o, quant ? NULL : "fold", d);
	int err = !g;
	if (g && (nin != g->ninput || nout != g->noutput || nin > 64 || nout > 64)) {
		diag_error(d, o->model, "the model has %d input(s) and %d output(s); got %d .npy input(s) and %d -o",
		           g->ninput, g->noutput, nin, nout);
		err = 1;
	}
	if (!err)
		err = run_graph(g, quant, in, out, d);
	arena_free(a);
	return err;
}
