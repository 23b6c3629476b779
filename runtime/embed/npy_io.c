/* npy_io: see npy_io.h.  The format: the magic "\x93NUMPY", major and
 * minor version bytes, a little-endian header length (2 bytes in 1.0, 4 in
 * 2.0 and 3.0), then a Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (1, 28, 28), }
 * padded with spaces and a newline, then the raw elements. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npy_io.h"

static const struct {
	const char *descr;
	size_t size;
} npy_types[NPY_NTYPES] = {
	{"<f4", 4}, {"<f8", 8},
	{"|i1", 1}, {"|u1", 1}, {"<i2", 2}, {"<u2", 2}, {"<i4", 4}, {"<u4", 4},
	{"<i8", 8}, {"<u8", 8},
	{"|b1", 1},
};

size_t npy_size(NpyType t)
{
	return t < NPY_NTYPES ? npy_types[t].size : 0;
}

const char *npy_descr(NpyType t)
{
	return t < NPY_NTYPES ? npy_types[t].descr : "?";
}

static int npy_fail(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
	return 1;
}

static int npy_little(void)
{
	const uint16_t one = 1;
	return *(const unsigned char *)&one == 1;
}

/* Reverse each element's bytes on a big-endian host. */
static void npy_swap(unsigned char *p, size_t count, size_t size)
{
	if (npy_little() || size == 1)
		return;
	for (size_t i = 0; i < count; i++, p += size)
		for (size_t j = 0; j < size / 2; j++) {
			unsigned char t = p[j];
			p[j] = p[size - 1 - j];
			p[size - 1 - j] = t;
		}
}

/* The value after key in the header dict, or NULL. */
static const char *npy_find(const char *h, const char *key)
{
	char q1[40], q2[40];
	snprintf(q1, sizeof q1, "'%s'", key);
	snprintf(q2, sizeof q2, "\"%s\"", key);
	const char *p = strstr(h, q1);
	if (!p)
		p = strstr(h, q2);
	if (!p)
		return NULL;
	p += strlen(q1);
	while (*p == ' ')
		p++;
	if (*p++ != ':')
		return NULL;
	while (*p == ' ')
		p++;
	return p;
}

static int npy_parse_descr(const char *v, NpyType *t)
{
	char d[8];
	size_t n = 0;
	if (!v || (*v != '\'' && *v != '"'))
		return 1;
	char q = *v++;
	while (*v && *v != q && n + 1 < sizeof d)
		d[n++] = *v++;
	d[n] = 0;
	if (*v != q || n != 3)
		return 1;
	for (int i = 0; i < NPY_NTYPES; i++) {
		const char *s = npy_types[i].descr;
		/* '|' and '=' (native) are as good as '<' for byte-sized types */
		int same = strcmp(d + 1, s + 1) == 0;
		if (same && (d[0] == s[0] || (s[0] == '|' && (d[0] == '<' || d[0] == '=')) ||
		             (s[0] == '<' && d[0] == '=' && npy_little()))) {
			*t = (NpyType)i;
			return 0;
		}
	}
	return 1;
}

static int npy_parse_shape(const char *v, Npy *a)
{
	if (!v || *v != '(')
		return 1;
	v++;
	a->rank = 0;
	a->count = 1;
	for (;;) {
		while (*v == ' ' || *v == ',')
			v++;
		if (*v == ')')
			return 0;
		if (*v < '0' || *v > '9' || a->rank == NPY_MAXRANK)
			return 1;
		char *end;
		long d = strtol(v, &end, 10);
		if (end == v || d < 0 || (d && a->count > 0x7fffffffL / d))
			return 1;
		a->dim[a->rank++] = d;
		a->count *= d;
		v = end;
	}
}

/* Fortran order is accepted when it is the same bytes as C order. */
static int npy_parse_order(const char *v, const Npy *a)
{
	if (!v)
		return 1;
	if (strncmp(v, "False", 5) == 0)
		return 0;
	if (strncmp(v, "True", 4) != 0)
		return 1;
	int big = 0;
	for (int i = 0; i < a->rank; i++)
		big += a->dim[i] > 1;
	return big > 1;
}

static uint32_t npy_le(const unsigned char *p, int n)
{
	uint32_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int npy_parse(const unsigned char *buf, size_t n, Npy *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof *a);
	if (n < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
		return npy_fail(err, errlen, "not a .npy file (bad magic)");
	int major = buf[6], lenbytes = major == 1 ? 2 : 4;
	if (major < 1 || major > 3)
		return npy_fail(err, errlen, "unsupported .npy format version");
	if (n < (size_t)(8 + lenbytes))
		return npy_fail(err, errlen, "truncated .npy header");
	size_t hlen = npy_le(buf + 8, lenbytes), start = 8 + (size_t)lenbytes;
	if (hlen > n - start)
		return npy_fail(err, errlen, "truncated .npy header");
	char *h = malloc(hlen + 1);
	if (!h)
		return npy_fail(err, errlen, "out of memory");
	memcpy(h, buf + start, hlen);
	h[hlen] = 0;
	int bad = npy_parse_descr(npy_find(h, "descr"), &a->type);
	if (bad) {
		free(h);
		return npy_fail(err, errlen, "unsupported dtype (want <f4, <f8, <i8, <i4, ... little-endian)");
	}
	bad = npy_parse_shape(npy_find(h, "shape"), a) || npy_parse_order(npy_find(h, "fortran_order"), a);
	free(h);
	if (bad)
		return npy_fail(err, errlen, "bad or unsupported .npy header (shape or fortran_order)");
	size_t need = (size_t)a->count * npy_size(a->type);
	if (n - start - hlen < need)
		return npy_fail(err, errlen, "truncated .npy data");
	a->data = malloc(need ? need : 1);
	if (!a->data)
		return npy_fail(err, errlen, "out of memory");
	memcpy(a->data, buf + start + hlen, need);
	npy_swap(a->data, (size_t)a->count, npy_size(a->type));
	return 0;
}

int npy_read(const char *path, Npy *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof *a);
	FILE *f = fopen(path, "rb");
	if (!f)
		return npy_fail(err, errlen, "cannot open file");
	size_t cap = 1 << 16, n = 0;
	unsigned char *buf = malloc(cap);
	while (buf) {
		n += fread(buf + n, 1, cap - n, f);
		if (n < cap)
			break;
		unsigned char *nb = realloc(buf, cap * 2);
		if (!nb) {
			free(buf);
			buf = NULL;
			break;
		}
		buf = nb;
		cap *= 2;
	}
	int rerr = ferror(f);
	fclose(f);
	if (!buf)
		return npy_fail(err, errlen, "out of memory");
	int r = rerr ? npy_fail(err, errlen, "read error") : npy_parse(buf, n, a, err, errlen);
	free(buf);
	return r;
}

int npy_write(const char *path, NpyType t, int rank, const long *dim, const void *data,
              char *err, size_t errlen)
{
	char h[64 + 24 * NPY_MAXRANK];
	long count = 1;
	int k = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': (", npy_descr(t));
	if (t >= NPY_NTYPES || rank < 0 || rank > NPY_MAXRANK)
		return npy_fail(err, errlen, "bad type or rank");
	for (int i = 0; i < rank; i++) {
		k += snprintf(h + k, sizeof h - (size_t)k, "%ld%s", dim[i], rank == 1 || i + 1 < rank ? ", " : "");
		count *= dim[i];
	}
	if (rank == 1)
		k -= 1;   /* "(5,)" */
	k += snprintf(h + k, sizeof h - (size_t)k, "), }");
	/* Pad so the data starts at a multiple of 64 bytes, newline last. */
	int total = 10 + k + 1;
	int pad = (64 - total % 64) % 64;
	memset(h + k, ' ', (size_t)pad);
	k += pad;
	h[k++] = '\n';
	unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(k & 255),
	                         (unsigned char)(k >> 8)};
	size_t es = npy_size(t), nb = (size_t)count * es;
	unsigned char *body = malloc(nb ? nb : 1);
	if (!body)
		return npy_fail(err, errlen, "out of memory");
	if (nb)
		memcpy(body, data, nb);
	npy_swap(body, (size_t)count, es);
	FILE *f = fopen(path, "wb");
	if (!f) {
		free(body);
		return npy_fail(err, errlen, "cannot create file");
	}
	int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(h, 1, (size_t)k, f) == (size_t)k &&
	         fwrite(body, 1, nb, f) == nb;
	ok &= fclose(f) == 0;
	free(body);
	return ok ? 0 : npy_fail(err, errlen, "write error");
}

void npy_free(Npy *a)
{
	free(a->data);
	a->data = NULL;
}

static int npy_isint(NpyType t)
{
	return t >= NPY_I1 && t <= NPY_B1;
}

/* Element i as int64 (integers) or double (floats). */
static int64_t npy_geti(const Npy *a, long i)
{
	const void *p = a->data;
	switch (a->type) {
	case NPY_I1: return ((const int8_t *)p)[i];
	case NPY_U1: case NPY_B1: return ((const uint8_t *)p)[i];
	case NPY_I2: return ((const int16_t *)p)[i];
	case NPY_U2: return ((const uint16_t *)p)[i];
	case NPY_I4: return ((const int32_t *)p)[i];
	case NPY_U4: return ((const uint32_t *)p)[i];
	case NPY_I8: return ((const int64_t *)p)[i];
	case NPY_U8: return (int64_t)((const uint64_t *)p)[i];
	default: return 0;
	}
}

static double npy_getf(const Npy *a, long i)
{
	if (a->type == NPY_F4)
		return ((const float *)a->data)[i];
	if (a->type == NPY_F8)
		return ((const double *)a->data)[i];
	return (double)npy_geti(a, i);
}

static void npy_seti(NpyType t, void *p, long i, int64_t v)
{
	switch (t) {
	case NPY_I1: ((int8_t *)p)[i] = (int8_t)v; break;
	case NPY_U1: ((uint8_t *)p)[i] = (uint8_t)v; break;
	case NPY_I2: ((int16_t *)p)[i] = (int16_t)v; break;
	case NPY_U2: ((uint16_t *)p)[i] = (uint16_t)v; break;
	case NPY_I4: ((int32_t *)p)[i] = (int32_t)v; break;
	case NPY_U4: ((uint32_t *)p)[i] = (uint32_t)v; break;
	case NPY_I8: ((int64_t *)p)[i] = v; break;
	case NPY_U8: ((uint64_t *)p)[i] = (uint64_t)v; break;
	case NPY_B1: ((uint8_t *)p)[i] = v != 0; break;
	default: break;
	}
}

int npy_convert(const Npy *a, NpyType to, void *dst)
{
	int from_float = a->type == NPY_F4 || a->type == NPY_F8;
	int to_float = to == NPY_F4 || to == NPY_F8;
	if (to_float != from_float && to != NPY_B1)
		return 1;
	for (long i = 0; i < a->count; i++) {
		if (to == NPY_F4)
			((float *)dst)[i] = (float)npy_getf(a, i);
		else if (to == NPY_F8)
			((double *)dst)[i] = npy_getf(a, i);
		else if (to == NPY_B1)
			((uint8_t *)dst)[i] = from_float ? npy_getf(a, i) != 0 : npy_geti(a, i) != 0;
		else if (npy_isint(a->type))
			npy_seti(to, dst, i, npy_geti(a, i));
	}
	return 0;
}
