/* Private to frontend/: the loader state its files share.  The only header
 * in potc that sees protobuf-c and the generated ONNX schema. */
#ifndef POTC_ONNX_IMPL_H
#define POTC_ONNX_IMPL_H

#include "onnx.h"
#include "onnx.pb-c.h"

/* Tensor name -> tensor id, open addressing; keys point at arena strings. */
typedef struct {
	Arena *arena;
	const char **key;
	int *val;
	int cap, n;
} NameMap;

/* One import.  Node indices (ni) are indices into gp->node, ONNX order. */
typedef struct {
	Graph *g;
	Diag *d;
	const char *path;
	const Onnx__GraphProto *gp;
	int opset;
	NameMap names;          /* every tensor the graph can refer to */
	const char **nname;     /* per ONNX node: its name or "<op>_<ni>" */
	int *op;                /* per ONNX node: Op, or -1 unsupported/Constant */
	int *prod;              /* per tensor id: producing ONNX node, -1 */
	int *uses;              /* per tensor id: node inputs + graph outputs naming it */
	int *rank, nrank;       /* per tensor id: rank + 1 where legacy.c knows it */
} Loader;

/* onnx.c */
void onnx_err(Loader *, int ni, const char *fmt, ...);
const char *onnx_str(const char *s); /* NULL -> "" */

/* names.c */
void onnx_names_init(NameMap *, Arena *, size_t hint);
int onnx_names_get(const NameMap *, const char *name);       /* -1 if absent */
int onnx_names_put(NameMap *, const char *name, int id);     /* old id, or -1 if new */

/* tensor.c */
DType onnx_dtype(Loader *, int ni, const char *what, int onnx_type);
int onnx_tensor_const(Loader *, int ni, const char *name, const Onnx__TensorProto *);
int onnx_initializers(Loader *);
int onnx_inputs(Loader *, const InputShape *, int nshapes);
int onnx_constant_nodes(Loader *);
int onnx_const_i64(Loader *, const char *name, const int64_t *v, int n);
int onnx_const_f32(Loader *, const char *name, float v);

/* nodes.c */
int onnx_nodes(Loader *);
int onnx_outputs(Loader *);
int onnx_add_node(Loader *, int ni, Op, const char *what, const int *in, int nin);

/* attrs.c: fills *a and may append normalised inputs to in[] (room for
 * nin + 3); returns the new input count, -1 after reporting an error. */
int onnx_node_attrs(Loader *, int ni, Op, Attr *a, int *in, int nin);

/* legacy.c: rewrites of opset 1 to 8 forms; -1 (or 1) after reporting. */
int onnx_rank(const Loader *, int tensor);  /* -1 if not known before shape inference */
void onnx_track_rank(Loader *, int node);
int onnx_legacy_same(Loader *, int ni, int a, int b);
int onnx_legacy_broadcast(Loader *, int ni, int a, int b, int64_t axis);
int onnx_legacy_slope(Loader *, int ni, int x, int slope);
int onnx_legacy_tile(Loader *, int ni, int x, int tiles, int axis);
int onnx_legacy_bn_stats(Loader *, int ni, int *in);

#endif
