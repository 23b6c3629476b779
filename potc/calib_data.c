/* calib_data: see calib_data.h.  Every format is read into an Npy (npy_io's
 * in-memory array: element type, dims, host-order data), matched against
 * the model input's shape, and appended to the float32 result.
 *
 * TensorProto files are parsed by a small protobuf reader here rather than
 * protobuf-c: only frontend/ may know the ONNX schema, and four fields are
 * all a sample needs (dims 1, data_type 2, float_data 4, raw_data 9). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef POTC_HAVE_ZLIB
#include <zlib.h>
#endif

#include "calib_data.h"
#include "npy_io.h"

/* The request: the model input and how to read values for it. */
typedef struct {
	DType dtype;
	int rank;
	const int64_t *dim;
	int64_t per;             /* elements per sample */
	int64_t max;             /* samples wanted; <= 0: all */
	PotcCalibScale scale;
	Diag *d;
} Want;

typedef struct {
	unsigned char *p;
	size_t n;
} Bytes;

enum { MAX_BYTES = 0x7fffffff };   /* npy_io's limit on one array, too */

static int fail(const Want *w, const char *path, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	diag_error(w->d, path, "%s", msg);
	return 1;
}

static int host_big(void)
{
	const uint16_t one = 1;
	return *(const unsigned char *)&one == 0;
}

/* Reverse each element's bytes when the file's byte order is not the host's. */
static void to_host(unsigned char *p, size_t count, size_t size, int file_big)
{
	if (file_big == host_big() || size == 1)
		return;
	for (size_t i = 0; i < count; i++, p += size)
		for (size_t j = 0; j < size / 2; j++) {
			unsigned char t = p[j];
			p[j] = p[size - 1 - j];
			p[size - 1 - j] = t;
		}
}

/* "[4,1,5,5]" */
static const char *shape_str(char *buf, size_t n, int rank, const long *ldim, const int64_t *dim)
{
	size_t k = (size_t)snprintf(buf, n, "[");
	for (int i = 0; i < rank && k < n; i++)
		k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "",
		                      (long long)(ldim ? ldim[i] : dim[i]));
	if (k < n)
		snprintf(buf + k, n - k, "]");
	return buf;
}

/* ---- reading files ---- */

static int read_all(const char *path, Bytes *b, const Want *w)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 1 << 16;
	b->n = 0;
	b->p = NULL;
	if (!f)
		return fail(w, path, "cannot open: %s", strerror(errno));
	for (;;) {
		unsigned char *np = cap > MAX_BYTES + (size_t)1 ? NULL : realloc(b->p, cap);
		if (!np) {
			fclose(f);
			return fail(w, path, "file too large or out of memory");
		}
		b->p = np;
		b->n += fread(b->p + b->n, 1, cap - b->n, f);
		if (b->n < cap)
			break;
		cap *= 2;
	}
	int bad = ferror(f);
	fclose(f);
	return bad ? fail(w, path, "read error") : 0;
}

#ifdef POTC_HAVE_ZLIB
/* Inflate a whole gzip image (one or more members) in place of b. */
static int gunzip(const char *path, Bytes *b, const Want *w)
{
	z_stream z;
	Bytes o = {NULL, 0};
	size_t cap = 1 << 16;
	int r, bad = 0;
	memset(&z, 0, sizeof z);
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return fail(w, path, "zlib initialisation failed");
	z.next_in = b->p;
	z.avail_in = (uInt)b->n;
	for (;;) {
		if (!o.p || o.n == cap) {
			unsigned char *np = o.p && cap >= MAX_BYTES ? NULL : realloc(o.p, o.p ? cap *= 2 : cap);
			if (!np) {
				bad = 2;
				break;
			}
			o.p = np;
		}
		z.next_out = o.p + o.n;
		z.avail_out = (uInt)(cap - o.n);
		r = inflate(&z, Z_NO_FLUSH);
		o.n = cap - z.avail_out;
		if (r == Z_STREAM_END && z.avail_in == 0)
			break;
		if (r == Z_STREAM_END)
			bad = inflateReset(&z) != Z_OK;   /* the next member */
		else if ((r != Z_OK && r != Z_BUF_ERROR) || (z.avail_in == 0 && z.avail_out))
			bad = 1;                          /* corrupt, or the input ended inside a member */
		if (bad)
			break;
	}
	inflateEnd(&z);
	if (bad) {
		free(o.p);
		return fail(w, path, bad == 2 ? "decompressed data too large or out of memory"
		                              : "corrupt or truncated gzip data");
	}
	free(b->p);
	*b = o;
	return 0;
}
#else
static int gunzip(const char *path, Bytes *b, const Want *w)
{
	(void)b;
	return fail(w, path, "gzip-compressed: gunzip it first (this potc was built without zlib)");
}
#endif

/* ---- IDX: 0, 0, type, rank, big-endian uint32 dims, big-endian data ---- */

static const struct {
	int code;
	NpyType type;
} idx_types[] = {
	{0x08, NPY_U1}, {0x09, NPY_I1}, {0x0B, NPY_I2}, {0x0C, NPY_I4}, {0x0D, NPY_F4}, {0x0E, NPY_F8},
};

static int idx_header(const char *path, const Bytes *b, Npy *a, size_t *hdr, const Want *w)
{
	int code = b->n >= 4 ? b->p[2] : -1, rank = b->n >= 4 ? b->p[3] : 0, t = -1;
	if (b->n < 4)
		return fail(w, path, "truncated IDX header");
	for (size_t i = 0; i < sizeof idx_types / sizeof *idx_types; i++)
		if (idx_types[i].code == code)
			t = (int)i;
	if (t < 0)
		return fail(w, path, "unsupported IDX element type 0x%02X (want 0x08 ubyte, 0x09 byte, "
		            "0x0B short, 0x0C int, 0x0D float or 0x0E double)", code);
	if (rank < 1 || rank > NPY_MAXRANK)
		return fail(w, path, "unsupported IDX rank %d", rank);
	*hdr = 4 + 4 * (size_t)rank;
	if (b->n < *hdr)
		return fail(w, path, "truncated IDX header");
	a->type = idx_types[t].type;
	a->rank = rank;
	a->count = 1;
	for (int i = 0; i < rank; i++) {
		const unsigned char *q = b->p + 4 + 4 * i;
		uint32_t d = (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
		if (d > MAX_BYTES || (d && a->count > MAX_BYTES / (long)d))
			return fail(w, path, "IDX dims too large");
		a->dim[i] = (long)d;
		a->count *= (long)d;
	}
	return 0;
}

static int idx_parse(const char *path, const Bytes *b, Npy *a, const Want *w)
{
	size_t hdr = 0, es, need;
	memset(a, 0, sizeof *a);
	if (idx_header(path, b, a, &hdr, w))
		return 1;
	es = npy_size(a->type);
	need = (size_t)a->count * es;
	if (b->n - hdr < need)
		return fail(w, path, "truncated IDX data: %zu bytes, the header promises %zu", b->n - hdr, need);
	if (b->n - hdr > need)
		return fail(w, path, "IDX file has %zu bytes after its data (wrong dims in the header?)",
		            b->n - hdr - need);
	a->data = malloc(need ? need : 1);
	if (!a->data)
		return fail(w, path, "out of memory");
	memcpy(a->data, b->p + hdr, need);
	to_host(a->data, (size_t)a->count, es, 1);
	return 0;
}

/* ---- TensorProto: a minimal protobuf reader ---- */

typedef struct {
	const unsigned char *p, *end;
} Pb;

/* The parts of a TensorProto a sample needs. */
typedef struct {
	Npy a;                       /* rank and dims from field 1 */
	int64_t data_type;           /* field 2 */
	const unsigned char *raw;    /* field 9 */
	size_t nraw;
	int has_raw;
	float *f;                    /* field 4, decoded */
	size_t nf, capf;
	int other;                   /* a typed-data field potc does not read, or 0 */
	int external, segment;
} Tp;

static int pb_varint(Pb *b, uint64_t *v)
{
	*v = 0;
	for (int s = 0; s < 64; s += 7) {
		unsigned char c;
		if (b->p == b->end)
			return 1;
		c = *b->p++;
		*v |= (uint64_t)(c & 0x7F) << s;
		if (!(c & 0x80))
			return 0;
	}
	return 1;
}

/* A length-delimited field's bytes into *s. */
static int pb_bytes(Pb *b, Pb *s)
{
	uint64_t n;
	if (pb_varint(b, &n) || n > (uint64_t)(b->end - b->p))
		return 1;
	s->p = b->p;
	s->end = b->p + n;
	b->p += n;
	return 0;
}

static int pb_skip(Pb *b, int wt)
{
	uint64_t v;
	Pb s;
	size_t k = wt == 1 ? 8 : 4;
	if (wt == 0)
		return pb_varint(b, &v);
	if (wt == 2)
		return pb_bytes(b, &s);
	if ((size_t)(b->end - b->p) < k)
		return 1;
	b->p += k;
	return 0;
}

static int tp_dim(Tp *t, uint64_t v)
{
	if (t->a.rank == NPY_MAXRANK || v > MAX_BYTES)
		return 1;
	t->a.dim[t->a.rank++] = (long)v;
	return 0;
}

/* dims: one varint (wire type 0) or a packed run of them (2). */
static int tp_dims(Pb *b, int wt, Tp *t)
{
	uint64_t v;
	Pb s;
	if (wt == 0)
		return pb_varint(b, &v) || tp_dim(t, v);
	if (wt != 2 || pb_bytes(b, &s))
		return 1;
	while (s.p < s.end)
		if (pb_varint(&s, &v) || tp_dim(t, v))
			return 1;
	return 0;
}

static int tp_float(Tp *t, const unsigned char *q)
{
	uint32_t u = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
	if (t->nf == t->capf) {
		size_t cap = t->capf ? 2 * t->capf : 256;
		float *nf = cap > MAX_BYTES / sizeof(float) ? NULL : realloc(t->f, cap * sizeof(float));
		if (!nf)
			return 1;
		t->f = nf;
		t->capf = cap;
	}
	memcpy(&t->f[t->nf++], &u, sizeof u);
	return 0;
}

/* float_data: one fixed32 (wire type 5) or a packed run (2). */
static int tp_floats(Pb *b, int wt, Tp *t)
{
	Pb s;
	if (wt == 5) {
		if (b->end - b->p < 4)
			return 1;
		b->p += 4;
		return tp_float(t, b->p - 4);
	}
	if (wt != 2 || pb_bytes(b, &s) || (s.end - s.p) % 4)
		return 1;
	for (; s.p < s.end; s.p += 4)
		if (tp_float(t, s.p))
			return 1;
	return 0;
}

static int tp_field(Pb *b, int field, int wt, Tp *t)
{
	uint64_t v;
	Pb s;
	switch (field) {
	case 1: return tp_dims(b, wt, t);
	case 2:
		if (wt != 0 || pb_varint(b, &v))
			return 1;
		t->data_type = (int64_t)v;
		return 0;
	case 4: return tp_floats(b, wt, t);
	case 9:
		if (wt != 2 || pb_bytes(b, &s))
			return 1;
		t->raw = s.p;
		t->nraw = (size_t)(s.end - s.p);
		t->has_raw = 1;
		return 0;
	case 3: t->segment = 1; break;
	case 13: t->external = 1; break;
	case 14:
		if (wt != 0 || pb_varint(b, &v))
			return 1;
		t->external |= v == 1;
		return 0;
	case 5: case 6: case 7: case 10: case 11: t->other = field; break;
	default: break;
	}
	return pb_skip(b, wt);
}

static int tp_parse(const char *path, const Bytes *bytes, Tp *t, const Want *w)
{
	Pb b = {bytes->p, bytes->p + bytes->n};
	while (b.p < b.end) {
		uint64_t key;
		if (pb_varint(&b, &key))
			return fail(w, path, "truncated TensorProto");
		int field = (int)(key >> 3 > 0x7fffffff ? 0 : key >> 3), wt = (int)(key & 7);
		if (field == 0 || wt == 3 || wt == 4 || wt > 5)
			return fail(w, path, "not a TensorProto: field %d has wire type %d", field, wt);
		if (tp_field(&b, field, wt, t))
			return fail(w, path, "truncated or malformed TensorProto (field %d)", field);
	}
	if (t->segment || t->external)
		return fail(w, path, "TensorProto with %s is not supported",
		            t->segment ? "segments" : "external data");
	return 0;
}

/* ONNX TensorProto.DataType to npy_io's types; -1 if unsupported. */
static int tp_type(int64_t dt)
{
	switch (dt) {
	case 1: return NPY_F4;
	case 2: return NPY_U1;
	case 3: return NPY_I1;
	case 4: return NPY_U2;
	case 5: return NPY_I2;
	case 6: return NPY_I4;
	case 7: return NPY_I8;
	case 9: return NPY_B1;
	case 11: return NPY_F8;
	case 12: return NPY_U4;
	case 13: return NPY_U8;
	default: return -1;
	}
}

/* The values of a parsed TensorProto into t->a. */
static int tp_values(const char *path, Tp *t, const Want *w)
{
	char sh[200];
	int type = tp_type(t->data_type);
	Npy *a = &t->a;
	a->count = 1;
	for (int i = 0; i < a->rank; i++) {
		if (a->dim[i] && a->count > MAX_BYTES / a->dim[i])
			return fail(w, path, "TensorProto dims too large");
		a->count *= a->dim[i];
	}
	if (type < 0)
		return fail(w, path, "TensorProto data_type %lld is not supported (float, double or an integer type)",
		            (long long)t->data_type);
	a->type = (NpyType)type;
	size_t es = npy_size(a->type), need = (size_t)a->count * es;
	shape_str(sh, sizeof sh, a->rank, a->dim, NULL);
	if (t->has_raw && t->nraw != need)
		return fail(w, path, "TensorProto raw_data holds %zu bytes, dims %s of %s need %zu",
		            t->nraw, sh, npy_descr(a->type), need);
	if (!t->has_raw && t->nf && (a->type != NPY_F4 || t->nf != (size_t)a->count))
		return fail(w, path, "TensorProto float_data holds %zu values, dims %s of %s need %ld",
		            t->nf, sh, npy_descr(a->type), a->count);
	if (!t->has_raw && !t->nf && a->count)
		return t->other ? fail(w, path, "TensorProto keeps its values in field %d, which potc does not read: "
		                       "save it with raw_data (numpy_helper.from_array does)", t->other)
		                : fail(w, path, "TensorProto has no data (raw_data or float_data)");
	a->data = malloc(need ? need : 1);
	if (!a->data)
		return fail(w, path, "out of memory");
	if (t->has_raw) {
		memcpy(a->data, t->raw, need);
		to_host(a->data, (size_t)a->count, es, 0);
	} else if (need) {
		memcpy(a->data, t->f, need);
	}
	return 0;
}

static int pb_load(const char *path, const Bytes *b, Npy *a, const Want *w)
{
	Tp t;
	memset(&t, 0, sizeof t);
	int r = tp_parse(path, b, &t, w) || tp_values(path, &t, w);
	free(t.f);
	*a = t.a;
	if (r)
		npy_free(a);
	return r;
}

/* ---- matching a file's shape to the input ---- */

/* dims a[0..na) and b[0..nb) equal once every 1 is dropped. */
static int same_squeezed(const long *a, int na, const int64_t *b, int nb)
{
	int i = 0, j = 0;
	for (;;) {
		while (i < na && a[i] == 1)
			i++;
		while (j < nb && b[j] == 1)
			j++;
		if (i == na || j == nb)
			return i == na && j == nb;
		if (a[i++] != b[j++])
			return 0;
	}
}

/* The product of dims after the first, or -1 once it passes limit. */
static int64_t rest_numel(const Npy *a, int64_t limit)
{
	int64_t p = 1;
	for (int i = 1; i < a->rank; i++) {
		if (a->dim[i] && p > limit / a->dim[i])
			return -1;
		p *= a->dim[i];
	}
	return p;
}

/* Samples in a (the header's rules), or -1 if its shape fits no sample. */
static int64_t samples_in(const Npy *a, const Want *w, int by_count)
{
	if (by_count) {
		if (a->rank >= 1 && rest_numel(a, w->per) == w->per)
			return a->dim[0];
		return a->count == w->per ? 1 : -1;
	}
	if (a->rank >= 1 && a->rank == w->rank && a->dim[0] % w->dim[0] == 0) {
		int same = 1;
		for (int i = 1; i < a->rank; i++)
			same &= a->dim[i] == w->dim[i];
		if (same)
			return a->dim[0] / w->dim[0];
	}
	if (a->rank >= 1 && same_squeezed(a->dim + 1, a->rank - 1, w->dim, w->rank))
		return a->dim[0];
	return same_squeezed(a->dim, a->rank, w->dim, w->rank) ? 1 : -1;
}

/* ---- values ---- */

/* (float) of uint8 x under scale s, computed in double: deterministic. */
static float scaled(double x, PotcCalibScale s)
{
	return (float)(s == POTC_CALIB_UNIT ? x / 255.0 : s == POTC_CALIB_SIGNED ? x / 127.5 - 1.0 : x);
}

/* The first total elements of a, as floats, into dst (chunks through
 * npy_convert's widest types). */
static int convert(const char *path, const Npy *a, int64_t total, float *dst, const Want *w)
{
	enum { CHUNK = 4096 };
	int isf = a->type == NPY_F4 || a->type == NPY_F8;
	int inf = w->dtype == DT_F32 || w->dtype == DT_F64;
	PotcCalibScale s = a->type == NPY_U1 && inf ? w->scale : POTC_CALIB_RAW;
	size_t es = npy_size(a->type);
	if (isf && !inf)
		return fail(w, path, "%s data cannot feed the %s model input", npy_descr(a->type), ir_dtype_name(w->dtype));
	void *buf = malloc(CHUNK * 8);   /* CHUNK doubles or int64s */
	if (!buf)
		return fail(w, path, "out of memory");
	for (int64_t off = 0; off < total; off += CHUNK) {
		Npy view = *a;
		view.data = (unsigned char *)a->data + (size_t)off * es;
		view.count = (long)(total - off < CHUNK ? total - off : CHUNK);
		npy_convert(&view, isf ? NPY_F8 : NPY_I8, buf);
		for (long i = 0; i < view.count; i++) {
			double v = isf ? ((const double *)buf)[i] : (double)((const int64_t *)buf)[i];
			if (!isfinite(v)) {
				free(buf);
				return fail(w, path, "sample %lld holds NaN or infinity", (long long)((off + i) / w->per));
			}
			dst[off + i] = scaled(v, s);
		}
	}
	free(buf);
	return 0;
}

/* Append a's samples (as many as still wanted) to out. */
static int append(const char *path, const Npy *a, int by_count, PotcCalib *out, const Want *w)
{
	char got[200], want[200];
	int64_t n = samples_in(a, w, by_count);
	if (n < 0)
		return fail(w, path, "shape %s fits no sample of the model input %s (%lld elements each)",
		            shape_str(got, sizeof got, a->rank, a->dim, NULL),
		            shape_str(want, sizeof want, w->rank, NULL, w->dim), (long long)w->per);
	if (n == 0)
		return fail(w, path, "holds no samples");
	if (w->max > 0 && n > w->max - out->n)
		n = w->max - out->n;
	int64_t total = (out->n + n) * w->per;
	if ((uint64_t)total > SIZE_MAX / sizeof(float))
		return fail(w, path, "too much calibration data");
	float *nd = realloc(out->data, (size_t)total * sizeof(float) + 1);
	if (!nd)
		return fail(w, path, "out of memory");
	out->data = nd;
	if (convert(path, a, n * w->per, nd + out->n * w->per, w))
		return 1;
	out->n += n;
	return 0;
}

/* ---- files and directories ---- */

static int has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), k = strlen(suf);
	return n >= k && strcmp(s + n - k, suf) == 0;
}

static const char *type_name(NpyType t)
{
	static const char *const name[NPY_NTYPES] = {
		"float32", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "bool",
	};
	return t < NPY_NTYPES ? name[t] : "?";
}

/* Parse one file, whatever its format, into a; *fmt names the format. */
static int parse_file(const char *path, Npy *a, const char **fmt, const Want *w)
{
	Bytes b;
	char err[256];
	int r;
	if (read_all(path, &b, w) || (b.n >= 2 && b.p[0] == 0x1f && b.p[1] == 0x8b && gunzip(path, &b, w))) {
		free(b.p);
		return 1;
	}
	if (b.n >= 6 && memcmp(b.p, "\x93NUMPY", 6) == 0) {
		*fmt = "npy";
		r = npy_parse(b.p, b.n, a, err, sizeof err) ? fail(w, path, "%s", err) : 0;
	} else if (b.n >= 2 && b.p[0] == 0 && b.p[1] == 0) {
		*fmt = "IDX";
		r = idx_parse(path, &b, a, w);
	} else if (has_suffix(path, ".pb") || has_suffix(path, ".pb.gz")) {
		*fmt = "TensorProto";
		r = pb_load(path, &b, a, w);
	} else {
		r = fail(w, path, "not a .npy, IDX or TensorProto .pb file (unrecognised first bytes)");
	}
	free(b.p);
	return r;
}

static int load_file(const char *path, PotcCalib *out, const Want *w)
{
	Npy a;
	const char *fmt = "";
	char sh[120];
	memset(&a, 0, sizeof a);
	if (parse_file(path, &a, &fmt, w))
		return 1;
	int r = append(path, &a, strcmp(fmt, "IDX") == 0, out, w);
	if (!r && !out->desc[0])
		snprintf(out->desc, sizeof out->desc, "%s %s %s%s%s", fmt, type_name(a.type),
		         shape_str(sh, sizeof sh, a.rank, a.dim, NULL),
		         a.type == NPY_U1 && (w->dtype == DT_F32 || w->dtype == DT_F64) ? ", scale " : "",
		         a.type == NPY_U1 && (w->dtype == DT_F32 || w->dtype == DT_F64) ? potc_calib_scale_name(w->scale) : "");
	npy_free(&a);
	return r;
}

/* Natural order: runs of digits compare as numbers (input_2 < input_10). */
static int natcmp(const void *pa, const void *pb)
{
	const char *a = *(const char *const *)pa, *b = *(const char *const *)pb;
	while (*a && *b) {
		if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
			while (*a == '0') a++;
			while (*b == '0') b++;
			size_t na = strspn(a, "0123456789"), nb = strspn(b, "0123456789");
			int c = na != nb ? (na < nb ? -1 : 1) : strncmp(a, b, na);
			if (c)
				return c;
			a += na;
			b += nb;
		} else if (*a != *b) {
			return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
		} else {
			a++;
			b++;
		}
	}
	return *a ? 1 : *b ? -1 : strcmp(*(const char *const *)pa, *(const char *const *)pb);
}

/* The *.pb names in dir, sorted; NULL with *n = -1 on error. */
static char **list_pb(const char *path, int *n, const Want *w)
{
	DIR *dir = opendir(path);
	struct dirent *e;
	char **v = NULL;
	int cap = 0;
	*n = 0;
	if (!dir) {
		fail(w, path, "cannot open directory: %s", strerror(errno));
		*n = -1;
		return NULL;
	}
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.' || !has_suffix(e->d_name, ".pb"))
			continue;
		if (*n == cap) {
			char **nv = realloc(v, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *v);
			if (!nv)
				break;
			v = nv;
		}
		if (!(v[*n] = strdup(e->d_name)))
			break;
		(*n)++;
	}
	closedir(dir);
	if (*n)
		qsort(v, (size_t)*n, sizeof *v, natcmp);
	return v;
}

static int load_dir(const char *path, PotcCalib *out, const Want *w)
{
	int n, r = 0, nread = 0;
	char **name = list_pb(path, &n, w);
	if (n < 0)
		return 1;
	if (n == 0)
		r = fail(w, path, "no .pb files in the directory");
	for (int i = 0; i < n && !r && (w->max <= 0 || out->n < w->max); i++) {
		size_t len = strlen(path) + strlen(name[i]) + 2;
		char *full = malloc(len);
		if (!full) {
			r = fail(w, path, "out of memory");
			break;
		}
		snprintf(full, len, "%s/%s", path, name[i]);
		r = load_file(full, out, w);   /* the first file names the format in desc */
		free(full);
		nread++;
	}
	if (!r) {
		char first[sizeof out->desc];
		memcpy(first, out->desc, sizeof first);
		int k = snprintf(out->desc, sizeof out->desc, "%d of %d .pb files, the first ", nread, n);
		size_t room = sizeof out->desc - (size_t)k - 1;   /* k < 60: always room */
		strncat(out->desc, first, room);
	}
	for (int i = 0; i < n; i++)
		free(name[i]);
	free(name);
	return r;
}

/* ---- API ---- */

int potc_calib_scale_parse(const char *name, PotcCalibScale *s)
{
	static const char *const names[] = {"unit", "raw", "signed"};
	for (int i = 0; i < 3; i++)
		if (name && strcmp(name, names[i]) == 0) {
			*s = (PotcCalibScale)i;
			return 0;
		}
	return 1;
}

const char *potc_calib_scale_name(PotcCalibScale s)
{
	return s == POTC_CALIB_RAW ? "raw" : s == POTC_CALIB_SIGNED ? "signed" : "unit";
}

/* The request, with the input's shape checked. */
static int want_init(Want *w, const char *path, DType dtype, int rank, const int64_t *dim)
{
	char sh[200];
	w->per = 1;
	if (dtype <= DT_UNDEF || dtype >= DT_COUNT)
		return fail(w, path, "the model input has no data type");
	if (rank < 0 || rank > IR_MAXRANK)
		return fail(w, path, "the model input has rank %d", rank);
	for (int i = 0; i < rank; i++) {
		if (dim[i] < 1 || w->per > (int64_t)MAX_BYTES / dim[i])
			return fail(w, path, "the model input's shape %s is not static and positive (bind it with --input-shape)",
			            shape_str(sh, sizeof sh, rank, NULL, dim));
		w->per *= dim[i];
	}
	return 0;
}

int potc_calib_load(const char *path, DType dtype, int rank, const int64_t *dim,
                    int64_t max_count, PotcCalibScale scale, PotcCalib *out, Diag *d)
{
	Want w = {dtype, rank, dim, 1, max_count, scale, d};
	struct stat st;
	int r;
	memset(out, 0, sizeof *out);
	if (!path)
		return fail(&w, "potc", "no calibration file given");
	if (want_init(&w, path, dtype, rank, dim))
		return 1;
	out->per_sample = w.per;
	if (stat(path, &st) != 0)
		return fail(&w, path, "cannot open: %s", strerror(errno));
	r = S_ISDIR(st.st_mode) ? load_dir(path, out, &w) : load_file(path, out, &w);
	if (r) {
		potc_calib_free(out);
		return 1;
	}
	return 0;
}

void potc_calib_free(PotcCalib *c)
{
	free(c->data);
	c->data = NULL;
	c->n = 0;
}
