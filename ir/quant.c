/* Quantization helpers: the compile-time side of the integer IR (float is
 * fine here; generated code never sees it). */
#include <math.h>

#include "ir.h"

Quant *ir_quant_new(Arena *a, int nch, int axis, int bits, int is_unsigned)
{
	Quant *q = arena_alloc(a, sizeof *q);
	q->bits = bits;
	q->is_unsigned = is_unsigned;
	q->axis = axis;
	q->nch = nch;
	q->scale = arena_alloc(a, (size_t)nch * sizeof *q->scale);
	q->zp = arena_alloc(a, (size_t)nch * sizeof *q->zp);
	for (int c = 0; c < nch; c++)
		q->scale[c] = 1;
	return q;
}

DType ir_quant_dtype(const Quant *q)
{
	if (q->code != WQ_UNIFORM)
		return DT_U8;             /* PoT/APoT codes */
	if (q->bits <= 8)
		return q->is_unsigned ? DT_U8 : DT_I8;
	if (q->bits <= 16)
		return q->is_unsigned ? DT_U16 : DT_I16;
	return DT_I32;
}

int32_t ir_qmin(const Quant *q)
{
	return q->is_unsigned ? 0 : (int32_t)(-((int64_t)1 << (q->bits - 1)));
}

int32_t ir_qmax(const Quant *q)
{
	int64_t hi = q->is_unsigned ? ((int64_t)1 << q->bits) - 1 : ((int64_t)1 << (q->bits - 1)) - 1;
	return hi > INT32_MAX ? INT32_MAX : (int32_t)hi;
}

int ir_quant_channel(const Tensor *t, int64_t i)
{
	const Quant *q = t->q;
	if (!q || q->nch == 1 || q->axis < 0)
		return 0;
	int64_t inner = 1;
	for (int k = q->axis + 1; k < t->rank; k++)
		inner *= t->dim[k];
	return (int)((i / inner) % t->dim[q->axis]);
}

int32_t ir_quantize(const Quant *q, int c, double real)
{
	if (real != real)
		return q->zp[c];
	double v = real / q->scale[c];
	v = (v < 0 ? -floor(-v + 0.5) : floor(v + 0.5)) + q->zp[c];
	double lo = ir_qmin(q), hi = ir_qmax(q);
	return (int32_t)(v < lo ? lo : v > hi ? hi : v);
}

double ir_dequantize(const Quant *q, int c, int64_t v)
{
	return q->scale[c] * (double)(v - q->zp[c]);
}

Rescale ir_rescale(double M)
{
	Rescale r = {0, 62};
	if (!(M > 0))
		return r;
	int e;
	double f = frexp(M, &e);            /* M = f * 2^e, f in [0.5, 1) */
	if (f == 0.5) {                      /* a power of two: 2^(e-1) */
		r.n = 1 - e;
		if (r.n < -31)
			r.n = -31;
		if (r.n > 62)
			r.n = 62;
		return r;
	}
	/* M = m * 2^(-31-n) with m = round(f * 2^31) in [2^30, 2^31] */
	double m = floor(f * 2147483648.0 + 0.5);
	int n = -e;
	if (m >= 2147483648.0) {
		m = 1073741824.0;
		n--;
	}
	if (n > 31)                          /* below 2^-62: rounds to zero anyway */
		return (Rescale){0, 62};
	if (n < -31)
		n = -31;
	r.m = (int32_t)m;
	r.n = n;
	return r;
}

double ir_rescale_real(Rescale r)
{
	if (r.m == 0)
		return ldexp(1.0, -r.n);
	return ldexp((double)r.m, -31 - r.n);
}

void ir_quant_print(const Quant *q, FILE *f)
{
	fprintf(f, "%s%d", q->is_unsigned ? "u" : "i", q->bits);
	if (q->nch == 1) {
		if (q->frac)
			fprintf(f, " f=%d", q->frac[0]);
		else
			fprintf(f, " s=%.6g z=%d", q->scale[0], (int)q->zp[0]);
		return;
	}
	if (q->frac) {
		int lo = q->frac[0], hi = q->frac[0];
		for (int c = 1; c < q->nch; c++) {
			lo = q->frac[c] < lo ? q->frac[c] : lo;
			hi = q->frac[c] > hi ? q->frac[c] : hi;
		}
		fprintf(f, " f=[%d..%d]x%d@%d", lo, hi, q->nch, q->axis);
	} else {
		double lo = q->scale[0], hi = q->scale[0];
		for (int c = 1; c < q->nch; c++) {
			lo = q->scale[c] < lo ? q->scale[c] : lo;
			hi = q->scale[c] > hi ? q->scale[c] : hi;
		}
		fprintf(f, " s=[%.3g..%.3g]x%d@%d", lo, hi, q->nch, q->axis);
	}
}

/* Magnitude of code index m (see Quant.code). */
static int32_t level(int code, int32_t m)
{
	if (m == 0)
		return 0;
	if (code == WQ_POT)
		return (int32_t)1 << (m - 1);
	if (m == 1)
		return 1;
	return m % 2 == 0 ? (int32_t)1 << (m / 2) : 3 * ((int32_t)1 << (m / 2 - 1));
}

int32_t ir_wdecode(const Quant *q, int32_t v)
{
	if (q->code == WQ_UNIFORM)
		return v;
	int32_t sign = v >> (q->bits - 1) & 1, m = v & ((1 << (q->bits - 1)) - 1);
	return sign ? -level(q->code, m) : level(q->code, m);
}

int32_t ir_wencode(const Quant *q, int c, double real)
{
	if (q->code == WQ_UNIFORM)
		return ir_quantize(q, c, real);
	double v = real / q->scale[c], a = v < 0 ? -v : v;
	int32_t best = 0, nm = 1 << (q->bits - 1);
	for (int32_t m = 1; m < nm; m++)
		if (fabs(level(q->code, m) - a) < fabs(level(q->code, best) - a))
			best = m;
	return v < 0 && best ? (int32_t)(1 << (q->bits - 1)) | best : best;
}
