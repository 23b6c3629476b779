/* potc integer IR: everything a pass, a frontend or a backend sees.
 *
 * A Graph is two arrays, tensors and nodes; edges are tensor ids (ints).
 * Invariants (ir_verify checks them between passes):
 *   - nodes are in topological order: every input of node i is a constant,
 *     a graph input, or produced by a node j < i;
 *   - every tensor has at most one producer, and t->producer agrees;
 *   - after ir_infer every non-optional tensor has a static shape (no dim < 0);
 *   - a CONST tensor has data of ir_nbytes(t) bytes; no other tensor has data.
 * All memory hangs off one Arena per compilation and is freed once.
 *
 * Sections follow the file that defines them.
 */
#ifndef POTC_IR_H
#define POTC_IR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { IR_MAXRANK = 8, IR_MAXSP = 3 };

/* ---- types ---- */

typedef enum {
	DT_UNDEF,
	DT_F32,  /* IEEE binary32: the float model */
	DT_F64,  /* only for constants the frontend converts */
	DT_I8, DT_U8, DT_I16, DT_U16, DT_I32, DT_U32,
	DT_I64,  /* shape arithmetic, indices */
	DT_BOOL, /* one byte, 0 or 1 */
	DT_COUNT
} DType;

typedef enum {
#define OP(e, name, flags) OP_##e,
#include "ops.def"
#undef OP
	OP_COUNT
} Op;

enum { F_ELTWISE = 1, F_UNARY = 2, F_VIEW = 4, F_ANYTYPE = 8 };

typedef enum {
	TK_VALUE, /* computed by a node: lives in the arena or a user buffer */
	TK_INPUT, /* graph input: the caller's buffer */
	TK_CONST  /* initializer or folded value: data is set */
} TensorKind;

typedef struct {
	const char *name;
	DType dtype;
	TensorKind kind;
	int rank;                 /* 0 = scalar */
	int64_t dim[IR_MAXRANK];  /* < 0: unknown (before ir_infer) */
	void *data;               /* TK_CONST only: ir_nbytes(t) bytes, row-major */
	int producer;             /* node index, -1 for inputs and constants */
	int is_output;            /* listed in graph outputs */
	/* set by pass_memplan */
	int64_t off;              /* byte offset in the arena, -1 = not in the arena */
	int alias;                /* tensor whose bytes this view shares, -1 = none */
} Tensor;

/* Fused activation applied to a node's (first) output. */
typedef enum {
	ACT_NONE,
	ACT_RELU,      /* max(x, 0) */
	ACT_CLIP,      /* min(max(x, a), b): Relu6 is a=0, b=6 */
	ACT_LEAKY,     /* x < 0 ? a*x : x */
	ACT_HSIGMOID,  /* max(0, min(1, a*x + b)) */
	ACT_HSWISH,    /* x * max(0, min(1, x/6 + 1/2)) */
	ACT_SIGMOID    /* 1/(1+exp(-x)) */
} ActKind;

typedef struct {
	ActKind kind;
	float a, b;
} Act;

typedef enum { PAD_EXPLICIT, PAD_VALID, PAD_SAME_UPPER, PAD_SAME_LOWER } AutoPad;

/* Sliding window of Conv, MaxPool, AveragePool over nsp spatial dims.
 * pad[i] is the begin pad of spatial dim i, pad[nsp+i] its end pad (ONNX
 * order); ir_infer resolves auto_pad into explicit pads. */
typedef struct {
	int nsp;
	int k[IR_MAXSP], s[IR_MAXSP], d[IR_MAXSP];
	int pad[2 * IR_MAXSP];
	AutoPad autopad;
	int group;      /* CONV */
	int ceil;       /* pools: ceil_mode */
	int incl_pad;   /* AVGPOOL: count_include_pad */
	int colmajor;   /* MAXPOOL: Indices number spatial positions column-major (storage_order=1) */
	/* CONVTRANSPOSE: output_padding, and output_shape (0 = absent); ir_infer
	 * folds both into explicit pads, the end pad possibly negative (extra
	 * output rows that only the bias reaches). */
	int outpad[IR_MAXSP];
	int64_t outshape[IR_MAXSP];
} Window;

typedef enum { PADMODE_CONSTANT, PADMODE_REFLECT, PADMODE_EDGE } PadMode;

/* Resize: interpolation, how an output coordinate maps to an input one,
 * and how nearest rounds (RS_NEAREST_SIMPLE: Resize-10 and Upsample, floor
 * when enlarging and ceil when shrinking, as onnxruntime). */
typedef enum { RS_NEAREST, RS_LINEAR, RS_CUBIC } ResizeMode;
typedef enum {
	RS_HALF_PIXEL, RS_PYTORCH_HALF_PIXEL, RS_ALIGN_CORNERS, RS_ASYMMETRIC,
	RS_TF_HALF_PIXEL_FOR_NN, RS_TF_CROP_AND_RESIZE
} ResizeCoord;
typedef enum {
	RS_ROUND_PREFER_FLOOR, RS_ROUND_PREFER_CEIL, RS_FLOOR, RS_CEIL, RS_NEAREST_SIMPLE
} ResizeNearest;

/* Per-op attributes: which member is valid is given by Node.op. */
typedef union {
	Window win;                                /* CONV, MAXPOOL, AVGPOOL */
	struct { float alpha, beta; int ta, tb; } gemm;   /* GEMM */
	struct { int axis, legacy; } axis;         /* SOFTMAX, LOGSOFTMAX, HARDMAX, CONCAT, FLATTEN, GATHER */
	struct { int keepdims, noop_empty; } reduce;  /* REDUCE* */
	struct { int n, p[IR_MAXRANK]; } perm;     /* TRANSPOSE: n = 0 reverses */
	struct { float alpha, beta; } ab;          /* LEAKYRELU alpha; HARDSIGMOID; ELU alpha; SELU alpha,gamma=beta;
	                                              THRESHOLDEDRELU, CELU alpha; SHRINK alpha=lambd, beta=bias */
	struct { float eps; } bn;                  /* BATCHNORM */
	struct { DType to; double value; } cast;   /* CAST; CONSTOFSHAPE (value of dtype to) */
	struct { PadMode mode; } pad;              /* PAD */
	struct { int allowzero; } reshape;         /* RESHAPE */
	struct { int start, end, has_end; } shape; /* SHAPE (opset 15 slicing) */
	struct { int block, crd; } d2s;            /* DEPTHTOSPACE (crd: mode CRD, else DCR), SPACETODEPTH */
	struct { int axis; float eps; int batch; } norm; /* LAYERNORM axis, eps; INSTNORM eps; GATHERND batch = batch_dims */
	struct { int size; float alpha, beta, bias; } lrn; /* LRN */
	struct { int upper; } trilu;               /* TRILU */
	struct { ResizeMode mode; ResizeCoord coord; ResizeNearest nearest;
	         int exclude; float cubic_a, extrap; } resize; /* RESIZE */
	struct { int axis, keepdims, last; } arg;  /* ARGMAX, ARGMIN: last = select_last_index */
	struct { int fmod; } mod;                  /* MOD: 1 = C fmod (sign of a), 0 = sign of b */
	struct { int left; } shift;                /* BITSHIFT: direction LEFT (1) or RIGHT (0) */
	struct { int pos, neg; } isinf;            /* ISINF: detect_positive, detect_negative */
	struct { int exclusive, reverse; } cumsum; /* CUMSUM */
} Attr;

typedef struct {
	Op op;
	const char *name;   /* ONNX node name, or a synthesised "Op_<index>" */
	int nin, nout;
	int *in;            /* tensor ids; -1 = optional input absent */
	int *out;
	Attr a;
	Act act;            /* fused activation (pass_fuse) */
	int dead;           /* marked for removal by ir_compact */
} Node;

typedef struct Arena Arena;

typedef struct {
	Arena *arena;
	const char *file;   /* model path, for diagnostics */
	const char *name;   /* graph name */
	int opset;          /* default-domain opset the model imports */
	Tensor *tensor; int ntensor, tcap;
	Node *node;     int nnode, ncap;
	int *input;     int ninput;
	int *output;    int noutput;
	int64_t arena_bytes;  /* set by pass_memplan */
} Graph;

/* Diagnostics: printed as they arrive, counted, never abort.
 * Form: "FILE: node "NAME" (OP): error: MESSAGE". */
typedef struct {
	FILE *out;          /* stderr by default */
	int nerr;
	int quiet;          /* count but do not print (tests) */
	char last[512];     /* last message, for tests and the API */
} Diag;

/* ---- arena.c ---- */
Arena *arena_new(void);
void *arena_alloc(Arena *, size_t);           /* zeroed, 16-byte aligned */
char *arena_strdup(Arena *, const char *);
void *arena_dup(Arena *, const void *, size_t);
char *arena_printf(Arena *, const char *fmt, ...);
void arena_free(Arena *);
size_t arena_used(const Arena *);

/* ---- diag.c ---- */
void diag_init(Diag *);
void ir_error(Diag *, const Graph *, int node, const char *fmt, ...);
void diag_error(Diag *, const char *file, const char *fmt, ...);

/* ---- graph.c ---- */
extern const char *const ir_opname[OP_COUNT];
extern const int ir_opflags[OP_COUNT];
int ir_op_lookup(const char *onnx_name);     /* -1 if unknown */
const char *ir_dtype_name(DType);            /* "f32", "i64", ... */
size_t ir_dtype_size(DType);
Graph *ir_graph_new(Arena *, const char *file);
int ir_tensor_new(Graph *, const char *name, DType, int rank, const int64_t *dim);
int ir_const_new(Graph *, const char *name, DType, int rank, const int64_t *dim, const void *data);
int ir_node_new(Graph *, Op, const char *name, int nin, const int *in, int nout, const int *out);
int64_t ir_numel(const Tensor *);
size_t ir_nbytes(const Tensor *);
int ir_find_tensor(const Graph *, const char *name);  /* -1 if absent */
int ir_consumers(const Graph *, int tensor, int *nodes, int max); /* count, fills up to max */
void ir_compact(Graph *);        /* drop dead nodes and tensors nothing uses; renumber */
double ir_load(DType, const void *, int64_t i); /* element i of an array of that dtype, as double */
double ir_get(const Tensor *, int64_t i);      /* element i of a CONST, as double */
int ir_is_math_op(Op);                         /* the ops.def section SIN..CUMSUM */
int64_t ir_get_i64(const Tensor *, int64_t i); /* element i of an integer CONST */
int ir_is_const(const Graph *, int tensor);    /* tensor >= 0 and CONST */

/* ---- verify.c ---- */
int ir_verify(const Graph *, Diag *);         /* 0 if every invariant holds */

/* ---- dump.c ---- */
void ir_dump(const Graph *, FILE *);

/* ---- shape.c ---- */
/* Output dtypes and shapes of node n from its inputs'; inputs that decide a
 * shape (Reshape shape, Slice starts, ...) must be CONST. Resolves auto_pad. */
int ir_infer_node(Graph *, int n, Diag *);
int ir_infer(Graph *, Diag *);                /* every node, in order */
/* numpy broadcast of a's and b's shapes into rank and dim (room for
 * IR_MAXRANK); 0 on success, 1 if they do not broadcast. */
int ir_broadcast(const Tensor *a, const Tensor *b, int *rank, int64_t *dim);

/* ---- window.c ---- */
/* A Window from x to y over exactly 3 spatial dims (1-D and 2-D windows get
 * leading dims of size 1, so one triple loop serves every rank), auto_pad
 * resolved: what the evaluator and the backends both index by. */
typedef struct {
	int64_t in[3], out[3];
	int k[3], s[3], d[3];
	int pb[3], pe[3];       /* begin and end pads */
} WinGeom;
/* 0, or 1 with the reason in why. */
int ir_window_geom(const Window *, const Tensor *x, const Tensor *y, WinGeom *,
                   char *why, size_t nwhy);

/* ---- eval.c (float reference evaluator) ---- */
/* Compute node n: in[i] points at input i's data (NULL if absent), out[j]
 * at ir_nbytes() of output j.  Shapes must be inferred.  Applies n->act. */
int ir_eval_node(const Graph *, int n, const void *const *in, void *const *out, Diag *);
/* Whole graph: inputs[i] for g->input[i], outputs[i] for g->output[i].
 * observe (may be NULL) sees every computed tensor, for calibration. */
typedef void (*IrObserve)(void *ctx, const Graph *, int tensor, const void *data);
int ir_eval(const Graph *, const void *const *inputs, void *const *outputs,
            IrObserve observe, void *ctx, Diag *);

/* ---- eval_struct.c ---- */
/* Resize node n's sampling along axis a, shared by the evaluator and the
 * backends: for output index o, ntap input indices idx[o*ntap + t] (in
 * [0, in)) and weights w[o*ntap + t]; ok[o] = 0 where tf_crop_and_resize
 * extrapolates.  Arrays hold 4 * out entries; returns ntap, which is
 * ir_resize_ntap(mode) (1 nearest, 2 linear, 4 cubic), or 1 for an axis
 * that every point samples at its own index.  Needs inferred shapes and
 * constant scales, sizes and roi. */
int ir_resize_ntap(ResizeMode);
int ir_resize_axis(const Graph *, const Node *n, int a, int64_t *idx, float *w, char *ok);

#endif
