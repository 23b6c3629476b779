/* main() of a generated driver:
 *   PROG IN0.npy [IN1.npy ...] [-o OUT0.npy ...] [--time N] [--raw]
 * Inputs must have the model's shape, or a leading dim that is a multiple
 * of the model's (then the model runs once per batch and the outputs are
 * stacked along dim 0; an input of exactly the model's shape is shared by
 * every batch).  --time N runs the first batch N more times and prints
 * "median_us X" on stderr.  Exit 1 on a bad file, 2 on bad usage.
 * A quantized model's ports hold integers: the driver quantizes float
 * inputs (round half away from zero, + zp, clamped to the bit range, as
 * potc's ir_quantize) and writes dequantized float32 outputs; with --raw
 * it reads and writes the integer tensors themselves (.npy of the port's
 * integer dtype, no conversion).  Model code never sees a float. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driver.h"

static const char *drv_prog = "driver";

static void drv_usage(const char *why)
{
	fprintf(stderr, "%s: %s\nusage: %s IN0.npy [IN1.npy ...] [-o OUT0.npy ...] [--time N] [--raw]\n",
	        drv_prog, why, drv_prog);
	exit(2);
}

static void drv_die(const char *file, const char *msg)
{
	fprintf(stderr, "%s: %s: %s\n", drv_prog, file, msg);
	exit(1);
}

static void *drv_alloc(size_t n)
{
	void *p = calloc(n ? n : 1, 1);
	if (!p)
		drv_die("driver", "out of memory");
	return p;
}

static void drv_shape_text(int rank, const long *dim, char *buf, size_t len)
{
	size_t k = (size_t)snprintf(buf, len, "(");
	for (int i = 0; i < rank && k < len; i++)
		k += (size_t)snprintf(buf + k, len - k, "%ld%s", dim[i], rank == 1 || i + 1 < rank ? "," : "");
	if (k < len)
		snprintf(buf + k, len - k, ")");
}

/* How many model batches a has: 1 for the model's exact shape, d0 / m0
 * for a multiple of the leading dim, -1 if the shape does not fit. */
static long drv_batches(const Npy *a, const DrvPort *p)
{
	if (a->rank != p->rank)
		return -1;
	for (int i = 1; i < p->rank; i++)
		if (a->dim[i] != p->dim[i])
			return -1;
	if (p->rank == 0 || a->dim[0] == p->dim[0])
		return 1;
	if (p->dim[0] <= 0 || a->dim[0] % p->dim[0])
		return -1;
	return a->dim[0] / p->dim[0];
}

typedef struct {
	const char *in[DRV_NIN > 0 ? DRV_NIN : 1];
	const char *out[DRV_NOUT > 0 ? DRV_NOUT : 1];
	int nin, nout;
	long time;
	int raw;                 /* --raw: integer tensors as they are */
} DrvArgs;

static void drv_args(int argc, char **argv, DrvArgs *a)
{
	memset(a, 0, sizeof *a);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0) {
			if (++i >= argc)
				drv_usage("-o needs a file name");
			if (a->nout >= DRV_NOUT)
				drv_usage("more -o files than model outputs");
			a->out[a->nout++] = argv[i];
		} else if (strcmp(argv[i], "--time") == 0) {
			char *end;
			if (++i >= argc)
				drv_usage("--time needs a count");
			a->time = strtol(argv[i], &end, 10);
			if (*end || a->time < 1)
				drv_usage("--time needs a positive count");
		} else if (strcmp(argv[i], "--raw") == 0) {
			a->raw = 1;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			drv_usage("unknown option");
		} else if (a->nin < DRV_NIN) {
			a->in[a->nin++] = argv[i];
		} else {
			drv_usage("more input files than model inputs");
		}
	}
	if (a->nin != DRV_NIN) {
		char msg[64];
		snprintf(msg, sizeof msg, "the model takes %d input file(s), got %d", DRV_NIN, a->nin);
		drv_usage(msg);
	}
}

/* ir_quantize: clamp(round(v / scale) + zp) with ties away from zero;
 * NaN gives zp. */
static long drv_quantize(const DrvPort *p, double v)
{
	if (v != v)
		return p->zp;
	v /= p->scale;
	/* beyond 2^40 the clamp below decides; inside, truncating x + 0.5 is
	 * floor(x + 0.5) for x >= 0, without libm */
	v = v > 0x1p40 ? 0x1p40 : v < -0x1p40 ? -0x1p40 : v;
	v = (v < 0 ? -(double)(long long)(-v + 0.5) : (double)(long long)(v + 0.5)) + (double)p->zp;
	return v < (double)p->qmin ? p->qmin : v > (double)p->qmax ? p->qmax : (long)v;
}

/* A float input of a quantized port, as its integers in buf. */
static int drv_quantize_all(const Npy *a, const DrvPort *p, void *buf)
{
	double *f = drv_alloc(sizeof *f * (size_t)a->count);
	int bad = npy_convert(a, NPY_F8, f);
	for (long i = 0; !bad && i < a->count; i++)
		npy_seti(p->type, buf, i, drv_quantize(p, f[i]));
	free(f);
	return bad;
}

/* Read input i, convert it to the model's type; returns its batch count. */
static long drv_load(const char *path, const DrvPort *p, int raw, void **buf)
{
	Npy a;
	char err[512], want[160], got[160];
	if (npy_read(path, &a, err, sizeof err))
		drv_die(path, err);
	long nb = drv_batches(&a, p);
	if (nb < 0) {
		drv_shape_text(p->rank, p->dim, want, sizeof want);
		drv_shape_text(a.rank, a.dim, got, sizeof got);
		snprintf(err, sizeof err, "shape %s does not fit input \"%s\" %s", got, p->name, want);
		drv_die(path, err);
	}
	*buf = drv_alloc((size_t)a.count * npy_size(p->type));
	if (p->quant && raw ? a.type != p->type || npy_convert(&a, p->type, *buf)
	    : p->quant ? drv_quantize_all(&a, p, *buf) : npy_convert(&a, p->type, *buf)) {
		snprintf(err, sizeof err, "dtype %s does not fit input \"%s\" (%s%s)", npy_descr(a.type), p->name,
		         p->quant && !raw ? "a float type, or --raw with " : "", npy_descr(p->type));
		drv_die(path, err);
	}
	npy_free(&a);
	return nb;
}

static int drv_cmp_double(const void *pa, const void *pb)
{
	double a = *(const double *)pa, b = *(const double *)pb;
	return a < b ? -1 : a > b;
}

static double drv_now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* Run the first batch n times; print the median microseconds. */
static void drv_time(long n, void *const *in, void *const *out)
{
	double *t = drv_alloc(sizeof *t * (size_t)n);
	for (long i = 0; i < n; i++) {
		double t0 = drv_now_us();
		drv_run(in, out);
		t[i] = drv_now_us() - t0;
	}
	qsort(t, (size_t)n, sizeof *t, drv_cmp_double);
	fprintf(stderr, "median_us %.3f\n", n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2);
	free(t);
}

/* Write output p of nb batches; a quantized port dequantized to float32
 * (scale * (q - zp), as potc's ir_dequantize) unless raw. */
static void drv_write(const char *path, const DrvPort *p, long nb, const void *data, int raw)
{
	long dim[DRV_MAXRANK] = {0};
	char err[200];
	float *f = NULL;
	for (int i = 0; i < p->rank; i++)
		dim[i] = p->dim[i];
	if (p->rank > 0)
		dim[0] *= nb;
	if (p->quant && !raw) {
		Npy q;
		memset(&q, 0, sizeof q);
		q.type = p->type;
		q.count = nb * p->size;
		q.data = (void *)data;
		f = drv_alloc(sizeof *f * (size_t)q.count);
		for (long i = 0; i < q.count; i++)
			f[i] = (float)(p->scale * (double)(npy_geti(&q, i) - p->zp));
	}
	if (npy_write(path, f ? NPY_F4 : p->type, p->rank, dim, f ? (const void *)f : data, err, sizeof err))
		drv_die(path, err);
	free(f);
}

int main(int argc, char **argv)
{
	DrvArgs a;
	void *in[DRV_NIN > 0 ? DRV_NIN : 1], *out[DRV_NOUT > 0 ? DRV_NOUT : 1];
	void *cin[DRV_NIN > 0 ? DRV_NIN : 1], *cout[DRV_NOUT > 0 ? DRV_NOUT : 1];
	long nbi[DRV_NIN > 0 ? DRV_NIN : 1], nb = 1;
	if (argc > 0 && argv[0])
		drv_prog = argv[0];
	drv_args(argc, argv, &a);
	for (int i = 0; i < DRV_NIN; i++) {
		nbi[i] = drv_load(a.in[i], &drv_in[i], a.raw, &in[i]);
		if (nbi[i] > 1 && nb > 1 && nbi[i] != nb)
			drv_die(a.in[i], "inputs disagree on the number of batches");
		nb = nbi[i] > nb ? nbi[i] : nb;
	}
	for (int j = 0; j < DRV_NOUT; j++) {
		if (nb > 1 && drv_out[j].rank == 0)
			drv_die("driver", "a scalar output cannot be stacked over batches");
		out[j] = drv_alloc((size_t)(nb * drv_out[j].size) * npy_size(drv_out[j].type));
	}
	for (long b = 0; b < nb; b++) {
		for (int i = 0; i < DRV_NIN; i++)
			cin[i] = (char *)in[i] + (nbi[i] > 1 ? (size_t)(b * drv_in[i].size) * npy_size(drv_in[i].type) : 0);
		for (int j = 0; j < DRV_NOUT; j++)
			cout[j] = (char *)out[j] + (size_t)(b * drv_out[j].size) * npy_size(drv_out[j].type);
		if (drv_run(cin, cout))
			drv_die("model", "run failed");
	}
	if (a.time) {
		for (int i = 0; i < DRV_NIN; i++)
			cin[i] = in[i];
		for (int j = 0; j < DRV_NOUT; j++)
			cout[j] = drv_alloc((size_t)drv_out[j].size * npy_size(drv_out[j].type));
		drv_time(a.time, cin, cout);
		for (int j = 0; j < DRV_NOUT; j++)
			free(cout[j]);
	}
	for (int j = 0; j < a.nout; j++)
		drv_write(a.out[j], &drv_out[j], nb, out[j], a.raw);
	for (int i = 0; i < DRV_NIN; i++)
		free(in[i]);
	for (int j = 0; j < DRV_NOUT; j++)
		free(out[j]);
	return 0;
}
