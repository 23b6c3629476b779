/* Diagnostics carry a location: model file, node name and op type.
 * User errors are collected and counted, never abort. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ir.h"

void diag_init(Diag *d)
{
	memset(d, 0, sizeof *d);
	d->out = stderr;
}

static void emit(Diag *d, const char *prefix, const char *fmt, va_list ap)
{
	char msg[400];
	vsnprintf(msg, sizeof msg, fmt, ap);
	snprintf(d->last, sizeof d->last, "%.200s%.300s", prefix, msg);
	d->nerr++;
	if (!d->quiet)
		fprintf(d->out ? d->out : stderr, "%s\n", d->last);
}

void diag_error(Diag *d, const char *file, const char *fmt, ...)
{
	char prefix[256];
	snprintf(prefix, sizeof prefix, "%s: error: ", file ? file : "potc");
	va_list ap;
	va_start(ap, fmt);
	emit(d, prefix, fmt, ap);
	va_end(ap);
}

/* node < 0: a graph-level error (inputs, outputs, initializers). */
void ir_error(Diag *d, const Graph *g, int node, const char *fmt, ...)
{
	char prefix[256];
	const char *file = g && g->file ? g->file : "potc";
	if (g && node >= 0 && node < g->nnode) {
		const Node *n = &g->node[node];
		snprintf(prefix, sizeof prefix, "%s: node \"%s\" (%s): error: ", file,
		         n->name ? n->name : "?", ir_opname[n->op]);
	} else {
		snprintf(prefix, sizeof prefix, "%s: error: ", file);
	}
	va_list ap;
	va_start(ap, fmt);
	emit(d, prefix, fmt, ap);
	va_end(ap);
}
