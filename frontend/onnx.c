/* ONNX importer: file bytes -> protobuf-c message -> IR graph.
 *
 * Order of work: read and unpack the model, pick the default-domain opset,
 * then initializers, graph inputs, node kinds, Constant nodes, edges and a
 * topological order, the nodes themselves, graph outputs.  Each step reports
 * every error it finds; a step that failed stops the import (later steps
 * would only repeat its errors).  The unpacked message is freed on every
 * path; everything the graph keeps lives in the arena. */
#define _POSIX_C_SOURCE 200809L /* fileno, fstat */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "onnx_impl.h"

enum {
	OPSET_MIN = 1,
	OPSET_MAX = 17,
	MAX_DEPTH = 64,  /* message nesting: real models stay under ~20 */
};

/* protobuf messages are limited to 2 GiB by the format itself. */
#define MAX_FILE ((size_t)INT32_MAX)

const char *onnx_str(const char *s)
{
	return s ? s : "";
}

/* Names come from the file: a newline in one must not break the promise
 * of one line per error. */
static void printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

/* ni < 0: a graph-level error.  Node errors read like ir_error's. */
void onnx_err(Loader *L, int ni, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	printable(msg);
	if (ni < 0) {
		diag_error(L->d, L->path, "%s", msg);
		return;
	}
	char where[300];
	snprintf(where, sizeof where, "%s: node \"%s\" (%s)", L->path, L->nname[ni],
	         onnx_str(L->gp->node[ni]->op_type));
	printable(where);
	diag_error(L->d, where, "%s", msg);
}

/* ---- reading ---- */

/* hint: the file size if known, so a large model is read without copies. */
static unsigned char *read_stream(FILE *f, size_t hint, size_t *len, const char *path, Diag *d)
{
	size_t cap = hint + 1, n = 0;
	unsigned char *buf = malloc(cap);
	while (buf) {
		n += fread(buf + n, 1, cap - n, f);
		if (n < cap)
			break;
		if (cap >= MAX_FILE) {
			diag_error(d, path, "file is larger than 2 GiB; potc reads models up to 2 GiB");
			free(buf);
			return NULL;
		}
		unsigned char *nb = realloc(buf, cap * 2);
		if (!nb)
			free(buf);
		buf = nb;
		cap *= 2;
	}
	if (!buf)
		diag_error(d, path, "out of memory reading the model");
	else if (ferror(f)) {
		diag_error(d, path, "cannot read: %s", strerror(errno));
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

/* Whole file into a malloc'd buffer (freed right after unpacking). */
static unsigned char *read_file(const char *path, size_t *len, Diag *d)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		diag_error(d, path, "cannot open: %s", strerror(errno));
		return NULL;
	}
	struct stat st;
	unsigned char *buf = NULL;
	int known = fstat(fileno(f), &st) == 0;
	size_t hint = known && S_ISREG(st.st_mode) ? (size_t)st.st_size : 1 << 16;
	if (known && S_ISDIR(st.st_mode))
		diag_error(d, path, "is a directory, not an ONNX model");
	else if (known && S_ISREG(st.st_mode) && (uint64_t)st.st_size > MAX_FILE)
		diag_error(d, path, "file is larger than 2 GiB; potc reads models up to 2 GiB");
	else
		buf = read_stream(f, hint, len, path, d);
	fclose(f);
	return buf;
}

/* ---- nesting check ---- */

/* protobuf-c unpacks nested messages recursively with no depth limit, so a
 * few hundred kilobytes of nested attribute graphs overflow the stack.  This
 * walk follows only message-typed fields, bounded by MAX_DEPTH; malformed
 * bytes are left for protobuf-c to reject.  1: too deep. */
static int varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v)
{
	*v = 0;
	for (int s = 0; s < 64 && *i < len; s += 7) {
		uint8_t b = p[(*i)++];
		*v |= (uint64_t)(b & 0x7f) << s;
		if (!(b & 0x80))
			return 1;
	}
	return 0;
}

static int too_deep(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len, int depth)
{
	if (depth > MAX_DEPTH)
		return 1;
	size_t i = 0;
	uint64_t key, v;
	while (i < len && varint(p, len, &i, &key)) {
		switch (key & 7) {
		case 0: if (!varint(p, len, &i, &v)) return 0; break;
		case 1: i += 8; break;
		case 5: i += 4; break;
		case 2: {
			if (!varint(p, len, &i, &v) || v > len - i)
				return 0;
			const ProtobufCFieldDescriptor *f = (key >> 3) > UINT32_MAX ? NULL
				: protobuf_c_message_descriptor_get_field(desc, (unsigned)(key >> 3));
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE
			    && too_deep(f->descriptor, p + i, (size_t)v, depth + 1))
				return 1;
			i += (size_t)v;
			break;
		}
		default: return 0;
		}
	}
	return 0;
}

static Onnx__ModelProto *unpack(const char *path, const void *buf, size_t len, Diag *d)
{
	if (len == 0) {
		diag_error(d, path, "empty file, not an ONNX model");
		return NULL;
	}
	if (too_deep(&onnx__model_proto__descriptor, buf, len, 0)) {
		diag_error(d, path, "not a valid ONNX model (messages nested deeper than %d levels)", MAX_DEPTH);
		return NULL;
	}
	Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
	if (!m)
		diag_error(d, path, "not a valid ONNX model (protobuf parse failed)");
	else if (!m->graph) {
		diag_error(d, path, "not a valid ONNX model (it has no graph)");
		onnx__model_proto__free_unpacked(m, NULL);
		m = NULL;
	}
	return m;
}

/* ---- opset and node kinds ---- */

static int default_domain(const char *dom)
{
	return !dom || !*dom || !strcmp(dom, "ai.onnx");
}

/* The default-domain opset; other domains matter only if a node uses them. */
static int opset(const Onnx__ModelProto *m, const char *path, Diag *d)
{
	int64_t v = -1;
	for (size_t i = 0; i < m->n_opset_import; i++) {
		const Onnx__OperatorSetIdProto *o = m->opset_import[i];
		if (!default_domain(o->domain))
			continue;
		if (v >= 0 && o->version != v) {
			diag_error(d, path, "model imports the default ONNX opset twice (%lld and %lld)",
			           (long long)v, (long long)o->version);
			return -1;
		}
		v = o->version;
	}
	if (v < 0) {
		diag_error(d, path, "model imports no default ONNX opset (potc supports %d to %d)",
		           OPSET_MIN, OPSET_MAX);
		return -1;
	}
	if (v < OPSET_MIN || v > OPSET_MAX) {
		diag_error(d, path, "opset %lld not supported (potc supports %d to %d)", (long long)v,
		           OPSET_MIN, OPSET_MAX);
		return -1;
	}
	return (int)v;
}

/* Name used in messages and in the IR: ONNX names are optional. */
static void name_nodes(Loader *L)
{
	size_t n = L->gp->n_node;
	L->nname = arena_alloc(L->g->arena, sizeof(char *) * (n + 1));
	L->op = arena_alloc(L->g->arena, sizeof(int) * (n + 1));
	for (size_t i = 0; i < n; i++) {
		const Onnx__NodeProto *np = L->gp->node[i];
		L->nname[i] = *onnx_str(np->name)
		              ? np->name
		              : arena_printf(L->g->arena, "%s_%zu", onnx_str(np->op_type), i);
	}
}

/* Op of every node; -1 (reported) for those potc cannot compile. */
static int classify(Loader *L)
{
	int bad = 0;
	for (size_t i = 0; i < L->gp->n_node; i++) {
		const Onnx__NodeProto *np = L->gp->node[i];
		const char *type = onnx_str(np->op_type);
		L->op[i] = -1;
		if (!default_domain(np->domain))
			onnx_err(L, (int)i, "domain '%s' is not supported (potc compiles the default ONNX domain)",
			         np->domain);
		else if ((L->op[i] = ir_op_lookup(type)) < 0)
			onnx_err(L, (int)i, "unsupported op '%s'", type);
		bad |= L->op[i] < 0;
	}
	return bad;
}

/* ---- the graph ---- */

static Graph *build(Arena *a, const char *path, const Onnx__ModelProto *m,
                    const InputShape *shapes, int nshapes, Diag *d)
{
	int v = opset(m, path, d);
	if (v < 0)
		return NULL;
	const Onnx__GraphProto *gp = m->graph;
	Loader L = {.g = ir_graph_new(a, path), .d = d, .path = path, .gp = gp, .opset = v};
	L.g->opset = v;
	if (*onnx_str(gp->name))
		L.g->name = arena_strdup(a, gp->name);
	onnx_names_init(&L.names, a, gp->n_initializer + gp->n_input + 2 * gp->n_node);
	name_nodes(&L);
	if (onnx_initializers(&L) || onnx_inputs(&L, shapes, nshapes))
		return NULL;
	int bad = classify(&L);
	if (onnx_constant_nodes(&L))
		return NULL;
	if (onnx_nodes(&L) || onnx_outputs(&L) || bad)
		return NULL;
	ir_compact(L.g);
	return L.g;
}

/* Builds from the unpacked message, then frees it. */
static Graph *load(Arena *a, const char *path, Onnx__ModelProto *m, const InputShape *shapes,
                   int nshapes, Diag *d)
{
	int nerr = d->nerr;
	Graph *g = build(a, path, m, shapes, nshapes, d);
	onnx__model_proto__free_unpacked(m, NULL);
	return d->nerr > nerr ? NULL : g;
}

Graph *onnx_load_buffer(Arena *a, const char *path, const void *buf, size_t len,
                        const InputShape *shapes, int nshapes, Diag *d)
{
	path = path ? path : "model.onnx";
	Onnx__ModelProto *m = unpack(path, buf, len, d);
	return m ? load(a, path, m, shapes, nshapes, d) : NULL;
}

/* The file's bytes are freed as soon as they are unpacked: with the message
 * and the arena's copy of the weights, three copies would be at peak. */
Graph *onnx_load(Arena *a, const char *path, const InputShape *shapes, int nshapes, Diag *d)
{
	size_t len = 0;
	unsigned char *buf = read_file(path, &len, d);
	if (!buf)
		return NULL;
	Onnx__ModelProto *m = unpack(path, buf, len, d);
	free(buf);
	return m ? load(a, path, m, shapes, nshapes, d) : NULL;
}

int onnx_visit_ops(const char *path, OnnxOpVisit visit, void *ctx, Diag *d)
{
	size_t len = 0;
	unsigned char *buf = read_file(path, &len, d);
	if (!buf)
		return -1;
	Onnx__ModelProto *m = unpack(path, buf, len, d);
	free(buf);
	if (!m)
		return -1;
	const Onnx__GraphProto *gp = m->graph;
	for (size_t i = 0; i < gp->n_node; i++) {
		const Onnx__NodeProto *np = gp->node[i];
		const char *type = onnx_str(np->op_type);
		int ok = default_domain(np->domain) && ir_op_lookup(type) >= 0;
		if (visit)
			visit(ctx, onnx_str(np->domain), type, ok);
	}
	int n = (int)gp->n_node;
	onnx__model_proto__free_unpacked(m, NULL);
	return n;
}
