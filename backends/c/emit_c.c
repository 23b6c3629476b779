/* The portable C backend: model.c (weights, one function per node, the
 * static arena, NAME_run) and model.h (sizes, shapes, the prototype).
 *
 * Requires: pass_memplan (every computed tensor has arena bytes, an alias
 * or is a graph output), static shapes.
 * Produces C99 that builds with -Wall -Wextra -Werror -pedantic, with no
 * malloc, VLA or recursion; the only globals are the constant weights and
 * the arena.  Kernels follow ir/eval*.c's order of float operations, so
 * outputs match the reference evaluator up to FMA contraction.
 *
 * Storage: graph inputs and outputs are the caller's buffers, constants
 * `static const` arrays, other tensors arena + off (views: their root's
 * bytes).  A kernel that needs scratch (padded copies) gets the lowest gap
 * of the arena that no tensor live at its node uses; the arena grows only
 * when there is none.  Unsupported ops or dtypes are reported through Diag.
 *
 * This file holds the writer, float formatting, tensor locations, the
 * per-node context, loop nests and the module around the kernels. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "emit_impl.h"

/* ---- writer ---- */

static void out_vline(Out *o, const char *fmt, va_list ap)
{
	char small[512];
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	char *s = small;
	if (n >= (int)sizeof small && (s = malloc((size_t)n + 1)))
		vsnprintf(s, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	if (!s)
		return;
	if (s[0] == '}' && o->depth > 0)
		o->depth--;
	for (int i = 0; i < o->depth && s[0]; i++)
		putc('\t', o->f);
	fputs(s, o->f);
	putc('\n', o->f);
	if (n > 0 && s[n - 1] == '{')
		o->depth++;
	if (s != small)
		free(s);
}

void ec_line(Out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	out_vline(o, fmt, ap);
	va_end(ap);
}

void str_printf(Str *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (b->len + (size_t)n + 1 > b->cap) {
		size_t cap = (b->len + (size_t)n + 1) * 2;
		char *s = realloc(b->s, cap);
		if (!s)
			return;
		b->s = s;
		b->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void str_free(Str *b)
{
	free(b->s);
	memset(b, 0, sizeof *b);
}

/* ---- float literals ---- */

/* 10^e as a double: exact up to 1e22, within an ulp or two beyond, which
 * moves the 9th digit by at most one rounding step (see fmt_f32). */
static double pow10i(int e)
{
	static const double p[23] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
		1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
	double r = 1;
	int a = e < 0 ? -e : e;
	while (a > 22) {
		r *= 1e22;
		a -= 22;
	}
	r *= p[a];
	return e < 0 ? 1 / r : r;
}

/* Nine significant digits, like "%.9g": enough to read back any binary32
 * exactly (FLT_DECIMAL_DIG).  Computed in double instead of printf because
 * weights run to millions of values; the double product's error (< 1e-15
 * relative) can only flip a rounding tie in the 9th digit, and even a whole
 * unit there (1e-8 relative) is far inside a float's half-ulp (3e-8). */
int emit_c_fmt_f32(char *buf, float v)
{
	char *p = buf;
	if (v != v)
		return sprintf(buf, "NAN");
	if (v == INFINITY || v == -INFINITY)
		return sprintf(buf, v < 0 ? "-INFINITY" : "INFINITY");
	if (signbit(v))
		*p++ = '-';
	double d = fabs((double)v);
	if (d == 0) {
		strcpy(p, "0.0f");
		return (int)(p - buf) + 4;
	}
	int e = (int)floor(log10(d));
	uint64_t m = (uint64_t)(d * pow10i(8 - e) + 0.5);
	if (m >= 1000000000u) {
		e++;
		m = (uint64_t)(d * pow10i(8 - e) + 0.5);
	} else if (m < 100000000u) {
		e--;
		m = (uint64_t)(d * pow10i(8 - e) + 0.5);
	}
	if (m >= 1000000000u) {   /* rounded up to the next decade */
		m /= 10;
		e++;
	}
	char dig[10];
	for (int i = 8; i >= 0; i--, m /= 10)
		dig[i] = (char)('0' + m % 10);
	int nd = 9;
	while (nd > 1 && dig[nd - 1] == '0')
		nd--;
	if (e >= -5 && e < 9) {
		if (e < 0) {
			*p++ = '0';
			*p++ = '.';
			for (int i = -1; i > e; i--)
				*p++ = '0';
			for (int i = 0; i < nd; i++)
				*p++ = dig[i];
		} else {
			for (int i = 0; i <= e; i++)
				*p++ = i < nd ? dig[i] : '0';
			*p++ = '.';
			if (nd <= e + 1)
				*p++ = '0';
			for (int i = e + 1; i < nd; i++)
				*p++ = dig[i];
		}
	} else {
		*p++ = dig[0];
		*p++ = '.';
		if (nd == 1)
			*p++ = '0';
		for (int i = 1; i < nd; i++)
			*p++ = dig[i];
		p += sprintf(p, "e%+03d", e);
	}
	*p++ = 'f';
	*p = 0;
	return (int)(p - buf);
}

/* ---- dtypes and literals ---- */

const char *ec_ctype(DType t)
{
	switch (t) {
	case DT_F32: return "float";
	case DT_I8: return "int8_t";
	case DT_U8: return "uint8_t";
	case DT_I16: return "int16_t";
	case DT_U16: return "uint16_t";
	case DT_I32: return "int32_t";
	case DT_U32: return "uint32_t";
	case DT_I64: return "int64_t";
	case DT_BOOL: return "uint8_t";
	default: return NULL;
	}
}

int ec_isint(DType t)
{
	return t >= DT_I8 && t <= DT_I64;
}

const char *ec_lowest(DType t)
{
	switch (t) {
	case DT_F32: return "-INFINITY";
	case DT_I8: return "INT8_MIN";
	case DT_I16: return "INT16_MIN";
	case DT_I32: return "INT32_MIN";
	case DT_I64: return "INT64_MIN";
	default: return "0";
	}
}

const char *ec_highest(DType t)
{
	switch (t) {
	case DT_F32: return "INFINITY";
	case DT_I8: return "INT8_MAX";
	case DT_U8: return "UINT8_MAX";
	case DT_I16: return "INT16_MAX";
	case DT_U16: return "UINT16_MAX";
	case DT_I32: return "INT32_MAX";
	case DT_U32: return "UINT32_MAX";
	case DT_I64: return "INT64_MAX";
	default: return "1";
	}
}

static void int_lit(char *buf, int64_t v, int isunsigned)
{
	if (v == INT64_MIN)
		strcpy(buf, "INT64_MIN");
	else
		sprintf(buf, "%lld%s", (long long)v, isunsigned ? "u" : "");
}

void ec_lit(char *buf, DType dt, double v)
{
	if (dt == DT_F32) {
		emit_c_fmt_f32(buf, (float)v);
		return;
	}
	int64_t i = v != v ? 0 : v >= 0x1p63 ? INT64_MAX : v < -0x1p63 ? INT64_MIN : (int64_t)v;
	int_lit(buf, i, dt == DT_U8 || dt == DT_U16 || dt == DT_U32);
}

void ec_strides(const Tensor *t, int64_t *st)
{
	int64_t s = 1;
	for (int a = t->rank - 1; a >= 0; a--) {
		st[a] = s;
		s *= t->dim[a];
	}
}

/* ---- locations ---- */

static int index_of(const int *ids, int n, int t)
{
	for (int i = 0; i < n; i++)
		if (ids[i] == t)
			return i;
	return -1;
}

/* Inputs and constants are their own storage; a graph output lives in the
 * caller's buffer; a view in its alias's; the rest at arena + off. */
Loc ec_loc(const Graph *g, int t)
{
	for (int hops = 0; t >= 0 && hops <= g->ntensor; hops++) {
		const Tensor *T = &g->tensor[t];
		if (T->kind == TK_INPUT)
			return (Loc){LOC_INPUT, index_of(g->input, g->ninput, t), 0};
		if (T->kind == TK_CONST)
			return (Loc){LOC_CONST, t, 0};
		if (T->is_output)
			return (Loc){LOC_OUTPUT, index_of(g->output, g->noutput, t), 0};
		if (T->alias < 0)
			return T->off >= 0 ? (Loc){LOC_ARENA, 0, T->off} : (Loc){LOC_NONE, 0, 0};
		t = T->alias;
	}
	return (Loc){LOC_NONE, 0, 0};
}

/* ---- constants ---- */

/* Append the elements of a constant to buf, 8 a line, and flush through
 * fwrite: printf per value would take seconds on a ResNet's 11M weights. */
static void put_values(FILE *f, DType dt, int64_t n, const void *data)
{
	enum { CAP = 1 << 16 };
	char *buf = malloc(CAP + 64);
	size_t len = 0;
	if (!buf)
		return;
	for (int64_t i = 0; i < n; i++) {
		if (i % 8 == 0)
			buf[len++] = '\t';
		if (dt == DT_F32) {
			len += (size_t)emit_c_fmt_f32(buf + len, ((const float *)data)[i]);
		} else {
			Tensor t = {.dtype = dt, .data = (void *)data};
			int64_t v = dt == DT_I64 ? ((const int64_t *)data)[i] : (int64_t)ir_get(&t, i);
			int_lit(buf + len, v, dt == DT_U8 || dt == DT_U16 || dt == DT_U32);
			len += strlen(buf + len);
		}
		if (i + 1 < n)
			buf[len++] = ',';
		buf[len++] = i % 8 == 7 || i + 1 == n ? '\n' : ' ';
		if (len >= CAP) {
			fwrite(buf, 1, len, f);
			len = 0;
		}
	}
	fwrite(buf, 1, len, f);
	free(buf);
}

void ec_array(Ctx *c, const char *name, DType dt, int64_t n, const void *data)
{
	const char *ty = ec_ctype(dt);
	if (n == 0) {
		ec_line(&c->c, "static const %s %s[1] = {0};", ty, name);
		return;
	}
	ec_line(&c->c, "static const %s %s[%lld] = {", ty, name, (long long)n);
	put_values(c->c.f, dt, n, data);
	ec_line(&c->c, "};");
	c->wbytes += n * (int64_t)ir_dtype_size(dt);
}

int ec_pack_width(const Quant *q)
{
	return !q || q->bits > 4 ? 0 : q->bits > 2 ? 4 : 2;
}

void ec_array_packed_data(Ctx *c, const char *name, DType dt, int width, int64_t n, const void *data)
{
	int per = 8 / width;
	int64_t nb = (n + per - 1) / per;
	uint8_t *b = calloc((size_t)(nb ? nb : 1), 1);
	if (!b) {
		ec_fail(c, "out of memory");
		return;
	}
	for (int64_t i = 0; i < n; i++) {
		/* the low `width` bits of the two's complement value (of the
		 * value itself when unsigned) */
		uint64_t v = (uint64_t)(int64_t)ir_load(dt, data, i);
		b[i / per] |= (uint8_t)((v & ((1u << width) - 1)) << (i % per * width));
	}
	ec_line(&c->c, "/* %lld %d-bit values, %d a byte, low bits first */", (long long)n, width, per);
	ec_array(c, name, DT_U8, nb, b);
	free(b);
}

void ec_array_packed(Ctx *c, const char *name, const Tensor *w)
{
	int width = ec_pack_width(w->q);
	if (!width)
		ec_array(c, name, w->dtype, ir_numel(w), w->data);
	else
		ec_array_packed_data(c, name, w->dtype, width, ir_numel(w), w->data);
}

/* The array of constant tensor t, printed on first use. */
static const char *const_name(Ctx *c, int t)
{
	const Tensor *T = &c->g->tensor[t];
	char name[32];
	snprintf(name, sizeof name, "c%d", t);
	if (!c->printed[t]) {
		if (c->begun) {
			ec_fail(c, "internal: constant \"%s\" named inside a kernel body", T->name);
		} else {
			ec_line(&c->c, "/* \"%s\" */", T->name);
			ec_array(c, name, T->dtype, ir_numel(T), T->data);
		}
		c->printed[t] = 1;
	}
	return arena_printf(c->g->arena, "c%d", t);
}

/* ---- the node being emitted ---- */

const Tensor *ec_tin(const Ctx *c, int j)
{
	if (j >= c->n->nin || c->n->in[j] < 0)
		return NULL;
	return &c->g->tensor[c->n->in[j]];
}

const Tensor *ec_tout(const Ctx *c, int j)
{
	if (j >= c->n->nout || c->n->out[j] < 0)
		return NULL;
	return &c->g->tensor[c->n->out[j]];
}

/* Constant inputs are named directly; everything else is a parameter. */
static int is_param(const Ctx *c, int j)
{
	const Tensor *t = ec_tin(c, j);
	return t && t->kind != TK_CONST;
}

const char *ec_x(Ctx *c, int j)
{
	if (!is_param(c, j))
		return ec_tin(c, j) ? const_name(c, c->n->in[j]) : "0";
	if (j < EC_MAXARG)
		c->used[j] = 1;
	return arena_printf(c->g->arena, "x%d", j);
}

int ec_fail(Ctx *c, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	ir_error(c->d, c->g, c->id, "%s", msg);
	c->failed = 1;
	return 1;
}

void ec_act(const Ctx *c, const char *v, char *buf, size_t len)
{
	const Act *a = &c->n->act;
	char A[32], B[32];
	emit_c_fmt_f32(A, a->a);
	emit_c_fmt_f32(B, a->b);
	switch (a->kind) {
	case ACT_RELU:
		snprintf(buf, len, "(%s < 0.0f ? 0.0f : %s)", v, v);
		break;
	case ACT_CLIP: {
		char lo[128];
		if (a->a == -INFINITY)
			snprintf(lo, sizeof lo, "%s", v);
		else
			snprintf(lo, sizeof lo, "(%s < %s ? %s : %s)", v, A, A, v);
		if (a->b == INFINITY)
			snprintf(buf, len, "%s", lo);
		else
			snprintf(buf, len, "(%s > %s ? %s : %s)", lo, B, B, lo);
		break;
	}
	case ACT_LEAKY:
		snprintf(buf, len, "(%s < 0.0f ? %s * %s : %s)", v, A, v, v);
		break;
	case ACT_HSIGMOID: {
		char t[96];
		snprintf(t, sizeof t, "(%s * %s + %s)", A, v, B);
		snprintf(buf, len, "(%s < 0.0f ? 0.0f : %s > 1.0f ? 1.0f : %s)", t, t, t);
		break;
	}
	case ACT_HSWISH: {
		char t[96];
		snprintf(t, sizeof t, "(%s / 6.0f + 0.5f)", v);
		snprintf(buf, len, "(%s * (%s < 0.0f ? 0.0f : %s > 1.0f ? 1.0f : %s))", v, t, t, t);
		break;
	}
	case ACT_SIGMOID:
		snprintf(buf, len, "(1.0f / (1.0f + expf(-%s)))", v);
		break;
	default:
		snprintf(buf, len, "%s", v);
		break;
	}
}

static int64_t scratch_at(Ctx *, int64_t size);

/* Parameters (decl != 0) or call arguments of the node's function; both
 * walk the same list so they cannot disagree. */
static void params(Ctx *c, Str *s, int decl, int *uses_arena)
{
	const char *sep = "";
	for (int k = 0; k < c->n->nin + c->n->nout; k++) {
		int isout = k >= c->n->nin, j = isout ? k - c->n->nin : k;
		const Tensor *t = isout ? ec_tout(c, j) : ec_tin(c, j);
		if (!t || (!isout && !is_param(c, j)))
			continue;
		const char *ty = ec_ctype(t->dtype), *cq = isout ? "" : "const ";
		if (decl) {
			str_printf(s, "%s%s%s *restrict %c%d", sep, cq, ty, isout ? 'y' : 'x', j);
			sep = ", ";
			continue;
		}
		int id = isout ? c->n->out[j] : c->n->in[j];
		Loc l = ec_loc(c->g, id);
		str_printf(s, "%s", sep);
		sep = ", ";
		switch (l.kind) {
		case LOC_INPUT: str_printf(s, "in%d", l.idx); break;
		case LOC_OUTPUT: str_printf(s, "out%d", l.idx); break;
		case LOC_CONST: str_printf(s, "%s", const_name(c, l.idx)); break;
		case LOC_ARENA:
			str_printf(s, "(%s%s *)(A + %lld)", cq, ty, (long long)l.off);
			*uses_arena = 1;
			break;
		default:
			ec_fail(c, "internal: tensor \"%s\" has no storage (run pass_memplan)", t->name);
			break;
		}
	}
	if (c->nscratch > 0) {
		if (decl) {
			str_printf(s, "%s%s *restrict s", sep, c->quant ? "int32_t" : "float");
		} else {
			int64_t off = scratch_at(c, c->nscratch);
			if (off + c->nscratch > c->arena_end)
				c->arena_end = off + c->nscratch;
			str_printf(s, "%s(%s *)(A + %lld)", sep, c->quant ? "int32_t" : "float", (long long)off);
			*uses_arena = 1;
		}
	}
}

void ec_begin(Ctx *c, int64_t scratch)
{
	Str s = {0};
	int dummy = 0;
	const char *op = ir_opname[c->n->op];
	char low[32];
	size_t i = 0;
	for (; op[i] && i + 1 < sizeof low; i++)
		low[i] = (char)tolower((unsigned char)op[i]);
	low[i] = 0;
	snprintf(c->fn, sizeof c->fn, "n%d_%s", c->id, low);
	c->nscratch = scratch;
	params(c, &s, 1, &dummy);
	ec_line(&c->c, "static void %s(%s)", c->fn, s.s ? s.s : "void");
	ec_line(&c->c, "{");
	c->begun = 1;
	str_free(&s);
}

void ec_end(Ctx *c)
{
	for (int j = 0; j < c->n->nin && j < EC_MAXARG; j++)
		if (is_param(c, j) && !c->used[j])
			ec_line(&c->c, "(void)x%d;", j);
	ec_line(&c->c, "}");
	ec_line(&c->c, "");
	c->begun = 0;
}

/* ---- loop nests ---- */

void nest_init(Nest *n, int rank, const int64_t *dim, int nop)
{
	memset(n, 0, sizeof *n);
	n->rank = rank;
	n->nop = nop;
	for (int a = 0; a < rank; a++)
		n->dim[a] = dim[a];
}

int nest_bcast(Nest *n, int k, const Tensor *t)
{
	int lead = n->rank - t->rank;
	if (lead < 0)
		return 1;
	int64_t s = 1;
	for (int a = t->rank - 1; a >= 0; a--) {
		if (t->dim[a] != n->dim[lead + a] && t->dim[a] != 1)
			return 1;
		n->st[k][lead + a] = t->dim[a] == 1 ? 0 : s;
		s *= t->dim[a];
	}
	return 0;
}

static void nest_drop(Nest *n, int a)
{
	for (int b = a; b + 1 < n->rank; b++) {
		n->dim[b] = n->dim[b + 1];
		for (int k = 0; k < n->nop; k++)
			n->st[k][b] = n->st[k][b + 1];
	}
	n->rank--;
}

void nest_simplify(Nest *n)
{
	for (int a = n->rank - 1; a >= 0; a--)
		if (n->dim[a] == 1)
			nest_drop(n, a);
	for (int a = n->rank - 2; a >= 0; a--) {
		int ok = 1;
		for (int k = 0; k < n->nop; k++)
			ok &= n->st[k][a] == n->st[k][a + 1] * n->dim[a + 1];
		if (!ok)
			continue;
		n->dim[a] *= n->dim[a + 1];
		for (int k = 0; k < n->nop; k++)
			n->st[k][a] = n->st[k][a + 1];
		nest_drop(n, a + 1);
	}
}

void nest_open(Ctx *c, const Nest *n)
{
	for (int a = 0; a < n->rank; a++)
		ec_line(&c->c, "for (long i%d = 0; i%d < %lld; i%d++) {", a, a, (long long)n->dim[a], a);
}

void nest_close(Ctx *c, const Nest *n)
{
	for (int a = 0; a < n->rank; a++)
		ec_line(&c->c, "}");
}

void nest_index(const Nest *n, int k, char *buf, size_t len)
{
	size_t p = 0;
	buf[0] = 0;
	if (n->base[k])
		p += (size_t)snprintf(buf + p, len - p, "%lld", (long long)n->base[k]);
	for (int a = 0; a < n->rank && p < len; a++) {
		int64_t s = n->st[k][a];
		if (!s)
			continue;
		const char *plus = p ? " + " : "";
		if (s == 1)
			p += (size_t)snprintf(buf + p, len - p, "%si%d", plus, a);
		else
			p += (size_t)snprintf(buf + p, len - p, "%si%d * %lld", plus, a, (long long)s);
	}
	if (!p)
		snprintf(buf, len, "0");
}

/* ---- the module ---- */

typedef struct {
	char **call;      /* per node: the statement in NAME_run, or NULL */
	int uses_arena;
	char *inused, *outused;   /* graph inputs / outputs the calls name */
} Run;

static void sanitize(const char *name, char *out, size_t len)
{
	size_t k = 0;
	if (!name || !*name)
		name = "model";
	if (isdigit((unsigned char)name[0]) || name[0] == '_')
		out[k++] = 'm';
	for (; *name && k + 1 < len; name++)
		out[k++] = isalnum((unsigned char)*name) ? *name : '_';
	out[k] = 0;
}

static void upper(const char *s, char *out, size_t len)
{
	size_t k = 0;
	for (; s[k] && k + 1 < len; k++)
		out[k] = (char)toupper((unsigned char)s[k]);
	out[k] = 0;
}

/* Text safe inside a C comment or string literal. */
static const char *safe(const Graph *g, const char *s)
{
	size_t n = strlen(s);
	char *r = arena_alloc(g->arena, n + 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		r[i] = ch < 32 || ch > 126 || ch == '"' || ch == '\\' || ch == '?' ? '_' : (char)ch;
		if (ch == '/' && i > 0 && s[i - 1] == '*')
			r[i] = '_';
	}
	r[n] = 0;
	return r;
}

static void shape_text(const Tensor *t, char *buf, size_t len)
{
	size_t p = (size_t)snprintf(buf, len, "[");
	for (int a = 0; a < t->rank && p < len; a++)
		p += (size_t)snprintf(buf + p, len - p, "%s%lld", a ? "," : "", (long long)t->dim[a]);
	if (p < len)
		snprintf(buf + p, len - p, "]");
}

static void node_comment(Ctx *c)
{
	Str s = {0};
	char sh[128];
	str_printf(&s, "/* node %d \"%s\" %s:", c->id, safe(c->g, c->n->name), ir_opname[c->n->op]);
	for (int j = 0; j < c->n->nin; j++) {
		const Tensor *t = ec_tin(c, j);
		if (!t)
			continue;
		shape_text(t, sh, sizeof sh);
		str_printf(&s, " %s%s", sh, t->kind == TK_CONST ? "c" : "");
	}
	for (int j = 0; j < c->n->nout; j++) {
		const Tensor *t = ec_tout(c, j);
		if (!t)
			continue;
		shape_text(t, sh, sizeof sh);
		str_printf(&s, " -> %s", sh);
	}
	static const char *const acts[] = {"", "relu", "clip", "leaky", "hsigmoid", "hswish", "sigmoid"};
	if (c->n->act.kind != ACT_NONE && c->n->act.kind <= ACT_SIGMOID)
		str_printf(&s, " +%s", acts[c->n->act.kind]);
	str_printf(&s, " */");
	ec_line(&c->c, "%s", s.s);
	str_free(&s);
}

static int all_empty_outputs(const Ctx *c)
{
	for (int j = 0; j < c->n->nout; j++)
		if (ec_tout(c, j) && ir_numel(ec_tout(c, j)) > 0)
			return 0;
	return 1;
}

/* restrict promises that a node's outputs share no bytes with its inputs;
 * pass_memplan guarantees it (lifetimes include both ends), check anyway. */
static int overlaps(Ctx *c)
{
	const Node *n = c->n;
	for (int j = 0; j < n->nout; j++) {
		Loc lo = n->out[j] >= 0 ? ec_loc(c->g, n->out[j]) : (Loc){LOC_NONE, 0, 0};
		int64_t oe = lo.off + (n->out[j] >= 0 ? (int64_t)ir_nbytes(&c->g->tensor[n->out[j]]) : 0);
		for (int k = 0; lo.kind == LOC_ARENA && k < n->nin; k++) {
			Loc li = n->in[k] >= 0 ? ec_loc(c->g, n->in[k]) : (Loc){LOC_NONE, 0, 0};
			int64_t ie = li.off + (n->in[k] >= 0 ? (int64_t)ir_nbytes(&c->g->tensor[n->in[k]]) : 0);
			if (li.kind == LOC_ARENA && li.off < ie && lo.off < oe && li.off < oe && lo.off < ie)
				return ec_fail(c, "internal: output %d shares arena bytes with input %d", j, k);
		}
	}
	return 0;
}

static int emit_node(Ctx *c, Run *r, int id)
{
	c->id = id;
	c->n = &c->g->node[id];
	c->fn[0] = 0;
	c->begun = 0;
	c->nscratch = 0;
	memset(c->used, 0, sizeof c->used);
	if (c->n->dead || all_empty_outputs(c))
		return 0;
	/* a quantized node's Relu/Clip is in its QNode's lo/hi */
	int qact = c->n->q && (c->n->act.kind == ACT_RELU || c->n->act.kind == ACT_CLIP);
	if (c->n->act.kind != ACT_NONE && !qact && (!ec_tout(c, 0) || ec_tout(c, 0)->dtype != DT_F32))
		return ec_fail(c, "fused activation on a non-float output");
	node_comment(c);
	int nf = c->failed;
	if ((c->n->q ? eq_kernel(c) : ec_kernel(c)) || c->failed != nf)
		return 1;
	if (!c->fn[0])
		return 0;
	if (overlaps(c))
		return 1;
	Str s = {0};
	params(c, &s, 0, &r->uses_arena);
	r->call[id] = arena_printf(c->g->arena, "%s(%s);", c->fn, s.s ? s.s : "");
	for (int k = 0; k < c->n->nin + c->n->nout; k++) {
		int t = k < c->n->nin ? c->n->in[k] : c->n->out[k - c->n->nin];
		Loc l = t >= 0 ? ec_loc(c->g, t) : (Loc){LOC_NONE, 0, 0};
		if (l.kind == LOC_INPUT && l.idx >= 0)
			r->inused[l.idx] = 1;
		if (l.kind == LOC_OUTPUT && l.idx >= 0)
			r->outused[l.idx] = 1;
	}
	str_free(&s);
	return c->failed;
}

static const char *dims_text(const Graph *g, const Tensor *t)
{
	Str s = {0};
	str_printf(&s, "{");
	for (int a = 0; a < t->rank; a++)
		str_printf(&s, "%s%lld", a ? ", " : "", (long long)t->dim[a]);
	str_printf(&s, t->rank ? "}" : "0}");
	const char *r = arena_strdup(g->arena, s.s);
	str_free(&s);
	return r;
}

static void run_params(const Ctx *c, Str *s)
{
	const Graph *g = c->g;
	const char *sep = "";
	if (c->o->arena_extern) {
		str_printf(s, "void *arena");
		sep = ", ";
	}
	for (int i = 0; i < g->ninput; i++, sep = ", ")
		str_printf(s, "%sconst %s *in%d", sep, ec_ctype(g->tensor[g->input[i]].dtype), i);
	for (int i = 0; i < g->noutput; i++, sep = ", ")
		str_printf(s, "%s%s *out%d", sep, ec_ctype(g->tensor[g->output[i]].dtype), i);
	if (!*sep)
		str_printf(s, "void");
}

static int64_t arena_total(const Ctx *c)
{
	return c->arena_end > c->g->arena_bytes ? c->arena_end : c->g->arena_bytes;
}

/* The arena tensor whose bytes t uses, or -1. */
static int arena_root(const Graph *g, int t)
{
	for (int hops = 0; t >= 0 && hops <= g->ntensor; hops++) {
		const Tensor *T = &g->tensor[t];
		if (T->kind != TK_VALUE || T->is_output)
			return -1;
		if (T->alias < 0)
			return T->off >= 0 ? t : -1;
		t = T->alias;
	}
	return -1;
}

/* first/last[t]: the nodes where arena tensor t is live, from its
 * producer to its last reader (through views); -1 for the others. */
static int live_ranges(Ctx *c)
{
	const Graph *g = c->g;
	c->first = malloc(sizeof *c->first * ((size_t)g->ntensor + 1));
	c->last = malloc(sizeof *c->last * ((size_t)g->ntensor + 1));
	if (!c->first || !c->last)
		return 1;
	for (int t = 0; t < g->ntensor; t++)
		c->first[t] = c->last[t] = -1;
	for (int i = 0; i < g->nnode; i++) {
		const Node *n = &g->node[i];
		for (int k = 0; !n->dead && k < n->nin + n->nout; k++) {
			int r = arena_root(g, k < n->nin ? n->in[k] : n->out[k - n->nin]);
			if (r < 0)
				continue;
			c->first[r] = c->first[r] < 0 || i < c->first[r] ? i : c->first[r];
			c->last[r] = i > c->last[r] ? i : c->last[r];
		}
	}
	return 0;
}

static int by_start(const void *pa, const void *pb)
{
	const int64_t *a = pa, *b = pb;
	return a[0] < b[0] ? -1 : a[0] > b[0];
}

/* The lowest 16-aligned gap of size bytes between the arena tensors live
 * at the current node (above them all if there is none). */
static int64_t scratch_at(Ctx *c, int64_t size)
{
	const Graph *g = c->g;
	int64_t (*iv)[2] = malloc(sizeof *iv * ((size_t)g->ntensor + 1)), at = 0;
	int n = 0;
	for (int t = 0; iv && t < g->ntensor; t++)
		if (c->first[t] >= 0 && c->first[t] <= c->id && c->id <= c->last[t]) {
			iv[n][0] = g->tensor[t].off;
			iv[n++][1] = g->tensor[t].off + (int64_t)ir_nbytes(&g->tensor[t]);
		}
	if (iv)
		qsort(iv, (size_t)n, sizeof *iv, by_start);
	for (int i = 0; i < n; i++) {
		if (iv[i][0] >= at + size)
			break;
		if (iv[i][1] > at)
			at = (iv[i][1] + 15) & ~(int64_t)15;
	}
	free(iv);
	return at;
}

static void human(int64_t n, char *buf, size_t len)
{
	if (n < 1024)
		snprintf(buf, len, "%lld bytes", (long long)n);
	else if (n < 1024 * 1024)
		snprintf(buf, len, "%lld bytes (%.1f KiB)", (long long)n, n / 1024.0);
	else
		snprintf(buf, len, "%lld bytes (%.1f MiB)", (long long)n, n / (1024.0 * 1024.0));
}

static void port_macros(Ctx *c, Out *h, const char *P, const char *kind, int i, int t)
{
	const Tensor *T = &c->g->tensor[t];
	ec_line(h, "#define %s_%s%d_NAME \"%s\"", P, kind, i, safe(c->g, T->name));
	ec_line(h, "#define %s_%s%d_DTYPE \"%s\"", P, kind, i, ir_dtype_name(T->dtype));
	ec_line(h, "#define %s_%s%d_RANK %d", P, kind, i, T->rank);
	ec_line(h, "#define %s_%s%d_DIMS %s", P, kind, i, dims_text(c->g, T));
	ec_line(h, "#define %s_%s%d_SIZE %lld", P, kind, i, (long long)ir_numel(T));
	if (T->q) {
		/* for callers converting to and from real values; model.c never
		 * uses the (double) scale */
		const Quant *q = T->q;
		ec_line(h, "#define %s_%s%d_BITS %d", P, kind, i, q->bits);
		char sc[40];
		snprintf(sc, sizeof sc, "%.17g", q->scale[0]);
		if (!strpbrk(sc, ".eEn"))   /* a double literal, also for 1 or 256 */
			strcat(sc, ".0");
		ec_line(h, "#define %s_%s%d_SCALE %s", P, kind, i, sc);
		ec_line(h, "#define %s_%s%d_ZP %ld", P, kind, i, (long)q->zp[0]);
		ec_line(h, "#define %s_%s%d_QMIN %ld", P, kind, i, (long)ir_qmin(q));
		ec_line(h, "#define %s_%s%d_QMAX %ld", P, kind, i, (long)ir_qmax(q));
		if (q->frac)
			ec_line(h, "#define %s_%s%d_FRAC %d", P, kind, i, q->frac[0]);
	}
}

/* Weight bytes of a build for integer-kernel target i: what every build
 * has plus that target's re-laid-out weights (qkernels_conv.c). */
static int64_t weight_bytes(const Ctx *c, int i)
{
	return c->wbytes + c->wtarget[i];
}

static int per_target(const Ctx *c)
{
	for (int i = 1; i < EC_NTARGET; i++)
		if (c->wtarget[i] != c->wtarget[0])
			return 1;
	return 0;
}

/* NAME_WEIGHT_BYTES, under the same #if chain as the kernels when the
 * targets' weight layouts differ in size, so it is exact for the build. */
static void weight_macro(const Ctx *c, Out *h, const char *P)
{
	if (!per_target(c)) {
		ec_line(h, "#define %s_WEIGHT_BYTES %lld", P, (long long)weight_bytes(c, 0));
		return;
	}
	for (int i = 0; i < EC_NTARGET; i++) {
		const char *cond = eq_target_cond(i);
		if (cond)
			ec_line(h, "#%s %s", i ? "elif" : "if", cond);
		else
			ec_line(h, "#else");
		ec_line(h, "#define %s_WEIGHT_BYTES %lld", P, (long long)weight_bytes(c, i));
	}
	ec_line(h, "#endif");
}

static void emit_header(Ctx *c, FILE *hf)
{
	const Graph *g = c->g;
	Out h = {hf, 0};
	char P[64], ram[64], flash[64], guard[80];
	upper(c->pfx, P, sizeof P);
	snprintf(guard, sizeof guard, "%s_H_INCLUDED", P);
	human(arena_total(c), ram, sizeof ram);
	human(weight_bytes(c, EC_NTARGET - 1), flash, sizeof flash);
	Str ps = {0};
	run_params(c, &ps);
	ec_line(&h, "/* Generated by potc from %s: do not edit.", safe(g, c->o->source ? c->o->source : g->file));
	ec_line(&h, " *");
	ec_line(&h, " * RAM: the arena needs %s (intermediate tensors and kernel scratch).", ram);
	ec_line(&h, " * Flash: the weights take %s (static const data)%s.", flash,
	        per_target(c) ? " built as plain C; NAME_WEIGHT_BYTES below gives each target's" : "");
	ec_line(&h, " *");
	ec_line(&h, " * int %s_run(%s);", c->pfx, ps.s);
	ec_line(&h, " *   One inference; returns 0.  Tensors are dense row-major arrays of");
	ec_line(&h, " *   %s_INi_SIZE / %s_OUTi_SIZE elements; buffers must not overlap.", P, P);
	ec_line(&h, " *   Dtypes are in %s_INi_DTYPE / %s_OUTi_DTYPE (f32 = float, i64 = int64_t...).", P, P);
	if (c->o->arena_extern) {
		ec_line(&h, " *   arena: %s_ARENA_BYTES bytes of scratch memory owned by the caller,", P);
		ec_line(&h, " *   aligned to 16 bytes; its contents need not survive between calls.");
		ec_line(&h, " *   Calls with distinct arenas may run concurrently.");
	} else {
		ec_line(&h, " *   The arena is a static array inside the model: not reentrant.");
	}
	ec_line(&h, " *");
	if (c->quant) {
		ec_line(&h, " * Quantized: integers only (no floating point, no libm; any C99 compiler,");
		ec_line(&h, " * cores without an FPU), bit-identical to potc's integer evaluator.");
		ec_line(&h, " * Each port holds integers q meaning %s_*_SCALE * (q - %s_*_ZP), q in", P, P);
		ec_line(&h, " * [%s_*_QMIN, %s_*_QMAX] (%s_*_BITS bits; %s_*_FRAC: SCALE = 2^-FRAC).", P, P, P, P);
		ec_line(&h, " * Quantize inputs as round(x / SCALE) + ZP, ties away from zero, clamped;");
		ec_line(&h, " * dequantize outputs as SCALE * (q - ZP).  For speed build with -O3.");
	} else {
		ec_line(&h, " * Plain C99.  For speed build with -O3 and the target's vector ISA");
		ec_line(&h, " * (e.g. -O3 -march=native); -ffp-contract=fast also allows FMAs, which");
		ec_line(&h, " * changes results in the last bits (without it they are bit-identical to");
		ec_line(&h, " * potc's reference evaluator on the same libm).  Needs -lm.");
	}
	ec_line(&h, " */");
	ec_line(&h, "#ifndef %s", guard);
	ec_line(&h, "#define %s", guard);
	ec_line(&h, "");
	ec_line(&h, "#include <stdint.h>");
	ec_line(&h, "");
	ec_line(&h, "#define %s_ARENA_BYTES %lld", P, (long long)arena_total(c));
	weight_macro(c, &h, P);
	ec_line(&h, "#define %s_NUM_INPUTS %d", P, g->ninput);
	ec_line(&h, "#define %s_NUM_OUTPUTS %d", P, g->noutput);
	for (int i = 0; i < g->ninput; i++)
		port_macros(c, &h, P, "IN", i, g->input[i]);
	for (int i = 0; i < g->noutput; i++)
		port_macros(c, &h, P, "OUT", i, g->output[i]);
	ec_line(&h, "");
	/* printed flat: the writer would indent inside the extern "C" braces */
	fprintf(hf, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n");
	fprintf(hf, "int %s_run(%s);\n", c->pfx, ps.s);
	fprintf(hf, "#ifdef __cplusplus\n}\n#endif\n");
	ec_line(&h, "");
	ec_line(&h, "#endif");
	str_free(&ps);
}

/* Outputs whose value is not already in their buffer: a graph input or a
 * constant listed as an output, or a tensor listed twice. */
static void output_copies(Ctx *c, Run *r)
{
	const Graph *g = c->g;
	for (int i = 0; i < g->noutput; i++) {
		int t = g->output[i];
		Loc l = ec_loc(g, t);
		size_t nb = ir_nbytes(&g->tensor[t]);
		if ((l.kind == LOC_OUTPUT && l.idx == i) || nb == 0)
			continue;
		r->outused[i] = 1;
		switch (l.kind) {
		case LOC_INPUT:
			ec_line(&c->c, "memcpy(out%d, in%d, %zu);", i, l.idx, nb);
			r->inused[l.idx] = 1;
			break;
		case LOC_OUTPUT:
			ec_line(&c->c, "memcpy(out%d, out%d, %zu);", i, l.idx, nb);
			r->outused[l.idx] = 1;
			break;
		case LOC_CONST: ec_line(&c->c, "memcpy(out%d, c%d, %zu);", i, l.idx, nb); break;
		default:
			ec_fail(c, "internal: graph output \"%s\" has no storage", g->tensor[t].name);
			break;
		}
	}
}

static void emit_run(Ctx *c, Run *r)
{
	const Graph *g = c->g;
	int64_t total = arena_total(c);
	Str ps = {0};
	run_params(c, &ps);
	/* Output constants are copied from their arrays: print those first. */
	for (int i = 0; i < g->noutput; i++) {
		Loc l = ec_loc(g, g->output[i]);
		if (l.kind == LOC_CONST && ir_nbytes(&g->tensor[l.idx]))
			const_name(c, l.idx);
	}
	if (!c->o->arena_extern && total > 0) {
		ec_line(&c->c, "/* The arena: every intermediate tensor at a planned offset. */");
		ec_line(&c->c, "static union {");
		ec_line(&c->c, c->quant ? "int64_t align;" : "long double align;");
		ec_line(&c->c, "unsigned char b[%lld];", (long long)total);
		ec_line(&c->c, "} arena;");
		ec_line(&c->c, "");
	}
	ec_line(&c->c, "int %s_run(%s)", c->pfx, ps.s);
	ec_line(&c->c, "{");
	if (r->uses_arena)
		ec_line(&c->c, "unsigned char *A = %s;",
		        c->o->arena_extern ? "(unsigned char *)arena" : "arena.b");
	else if (c->o->arena_extern)
		ec_line(&c->c, "(void)arena;");
	for (int i = 0; i < g->nnode; i++)
		if (r->call[i])
			ec_line(&c->c, "%s", r->call[i]);
	output_copies(c, r);
	for (int i = 0; i < g->ninput; i++)
		if (!r->inused[i])
			ec_line(&c->c, "(void)in%d;", i);
	for (int i = 0; i < g->noutput; i++)
		if (!r->outused[i])
			ec_line(&c->c, "(void)out%d;   /* empty */", i);
	ec_line(&c->c, "return 0;");
	ec_line(&c->c, "}");
	str_free(&ps);
}

/* A quantized graph has some tensor with a Quant. */
static int is_quantized(const Graph *g)
{
	for (int t = 0; t < g->ntensor; t++)
		if (g->tensor[t].q)
			return 1;
	return 0;
}

/* A quantized model.c has no floating point at all (it must run on cores
 * without an FPU): every tensor a live node or the API touches is integer. */
static int check_integer(Ctx *c)
{
	const Graph *g = c->g;
	for (int i = 0; i < g->nnode + g->ninput + g->noutput; i++) {
		const Node *n = i < g->nnode ? &g->node[i] : NULL;
		if (n && n->dead)
			continue;
		int cnt = n ? n->nin + n->nout : 1;
		for (int k = 0; k < cnt; k++) {
			int t = !n ? (i - g->nnode < g->ninput ? g->input[i - g->nnode]
			                                        : g->output[i - g->nnode - g->ninput])
			           : k < n->nin ? n->in[k] : n->out[k - n->nin];
			if (t < 0)
				continue;
			DType dt = g->tensor[t].dtype;
			if (dt == DT_F32 || dt == DT_F64)
				return ec_fail(c, "quantized model: tensor \"%s\" is still %s", g->tensor[t].name,
				               ir_dtype_name(dt));
		}
	}
	return 0;
}

/* Shapes static, dtypes the run API can carry, sizes within `long`. */
static int check_graph(Ctx *c)
{
	const Graph *g = c->g;
	for (int t = 0; t < g->ntensor; t++) {
		const Tensor *T = &g->tensor[t];
		for (int a = 0; a < T->rank; a++)
			if (T->dim[a] < 0)
				return ec_fail(c, "tensor \"%s\" has no static shape", T->name);
		if (ir_numel(T) > 0x7fffffff)
			return ec_fail(c, "tensor \"%s\" has more than 2^31 elements", T->name);
	}
	for (int i = 0; i < g->ninput + g->noutput; i++) {
		const Tensor *T = &g->tensor[i < g->ninput ? g->input[i] : g->output[i - g->ninput]];
		if (!ec_ctype(T->dtype))
			return ec_fail(c, "graph %s \"%s\" is %s, which the C backend does not support",
			               i < g->ninput ? "input" : "output", T->name, ir_dtype_name(T->dtype));
	}
	for (int i = 0; i < g->ninput + g->noutput; i++) {
		const Tensor *T = &g->tensor[i < g->ninput ? g->input[i] : g->output[i - g->ninput]];
		if (T->q && T->q->nch != 1)
			return ec_fail(c, "graph %s \"%s\" has a scale per channel; ports need one",
			               i < g->ninput ? "input" : "output", T->name);
	}
	if (g->arena_bytes > 0x7fffffff - 65536)
		return ec_fail(c, "the arena needs more than 2 GiB");
	return c->quant ? check_integer(c) : 0;
}

static void banner(Ctx *c)
{
	const char *src = c->o->source ? c->o->source : c->g->file;
	ec_line(&c->c, "/* Generated by potc from %s: do not edit.", safe(c->g, src));
	ec_line(&c->c, " * One function per node, dims as literals; %s_run calls them in order. */", c->pfx);
	if (!c->quant)
		ec_line(&c->c, "#include <math.h>");
	ec_line(&c->c, "#include <stdint.h>");
	ec_line(&c->c, "#include <string.h>");
	ec_line(&c->c, "");
	ec_line(&c->c, "#include \"%s\"", safe(c->g, c->o->header ? c->o->header : "model.h"));
	ec_line(&c->c, "");
	if (c->quant) {
		/* integer only: the arithmetic every quantized kernel calls */
		ec_line(&c->c, "/* ---- runtime/fixed/potc_fixed.h (docs/integer-semantics.md) ---- */");
		fputs(embed_potc_fixed_h, c->c.f);
		ec_line(&c->c, "");
		ec_line(&c->c, "/* Element i of packed sub-byte weights (ec_array_packed): signed and");
		ec_line(&c->c, " * unsigned 4-bit fields (two a byte) and 2-bit fields (four a byte),");
		ec_line(&c->c, " * low bits first; (f ^ 8) - 8 sign-extends without shifting a negative. */");
		ec_line(&c->c, "POTC_FN int32_t pk_s4(const uint8_t *p, long i)");
		ec_line(&c->c, "{");
		ec_line(&c->c, "return (int32_t)((p[i >> 1] >> ((i & 1) * 4) & 15) ^ 8) - 8;");
		ec_line(&c->c, "}");
		ec_line(&c->c, "POTC_FN int32_t pk_u4(const uint8_t *p, long i)");
		ec_line(&c->c, "{");
		ec_line(&c->c, "return (int32_t)(p[i >> 1] >> ((i & 1) * 4) & 15);");
		ec_line(&c->c, "}");
		ec_line(&c->c, "POTC_FN int32_t pk_s2(const uint8_t *p, long i)");
		ec_line(&c->c, "{");
		ec_line(&c->c, "return (int32_t)((p[i >> 2] >> ((i & 3) * 2) & 3) ^ 2) - 2;");
		ec_line(&c->c, "}");
		ec_line(&c->c, "POTC_FN int32_t pk_u2(const uint8_t *p, long i)");
		ec_line(&c->c, "{");
		ec_line(&c->c, "return (int32_t)(p[i >> 2] >> ((i & 3) * 2) & 3);");
		ec_line(&c->c, "}");
		ec_line(&c->c, "");
	}
}

int emit_c(const Graph *g, const EmitC *o, FILE *cf, FILE *hf, Diag *d)
{
	Ctx c = {.g = g, .o = o, .d = d, .c = {cf, 0}, .id = -1};
	Run r = {0};
	sanitize(o->name, c.pfx, sizeof c.pfx);
	c.quant = is_quantized(g);
	c.printed = calloc((size_t)g->ntensor + 1, 1);
	int noranges = live_ranges(&c);
	r.call = calloc((size_t)g->nnode + 1, sizeof *r.call);
	r.inused = calloc((size_t)g->ninput + 1, 1);
	r.outused = calloc((size_t)g->noutput + 1, 1);
	int err = !c.printed || noranges || !r.call || !r.inused || !r.outused;
	if (err)
		ir_error(d, g, -1, "out of memory");
	err = err || check_graph(&c);
	if (!err) {
		banner(&c);
		for (int i = 0; i < g->nnode; i++)
			err |= emit_node(&c, &r, i);
	}
	if (!err) {
		c.id = -1;
		emit_run(&c, &r);
		err = c.failed;
	}
	if (!err)
		emit_header(&c, hf);
	if (!err && o->sizes) {
		o->sizes->arena_bytes = arena_total(&c);
		o->sizes->weight_bytes = weight_bytes(&c, EC_NTARGET - 1);   /* plain C */
	}
	free(c.printed);
	free(c.first);
	free(c.last);
	free(r.call);
	free(r.inused);
	free(r.outused);
	return err || c.failed;
}
