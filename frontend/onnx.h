/* ONNX frontend: the only code that knows protobuf-c and ONNX's schema. */
#ifndef POTC_ONNX_H
#define POTC_ONNX_H

#include "ir.h"

/* A user's binding of an input's dims (--input-shape NAME=1x3x48x192). */
typedef struct {
	const char *name;
	int rank;
	int64_t dim[IR_MAXRANK];
} InputShape;

/* Parse the model at path into a graph in topological order.  Symbolic or
 * unknown input dims take their value from shapes[], a leading batch dim
 * defaults to 1, any other unbound dim is an error.  Returns NULL (with
 * errors in d) on any problem; unsupported ops are each reported. */
Graph *onnx_load(Arena *, const char *path, const InputShape *shapes, int nshapes, Diag *);
Graph *onnx_load_buffer(Arena *, const char *path, const void *buf, size_t len,
                        const InputShape *shapes, int nshapes, Diag *);

/* For `potc info`: every node's (domain, op_type) and whether potc supports
 * it, in graph order.  Returns the node count, -1 if the file is unreadable. */
typedef void (*OnnxOpVisit)(void *ctx, const char *domain, const char *op_type, int supported);
int onnx_visit_ops(const char *path, OnnxOpVisit, void *ctx, Diag *);

#endif
