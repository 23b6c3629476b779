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
	/* quantized compilation (--quant): */
	struct Quant *q;          /* integer tensor with a real meaning (pass_qlower), or NULL */
	struct QStats *st;        /* calibration statistics (pass_calibrate), or NULL */
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
	struct QNode *q;    /* integer semantics of a quantized node, NULL: the op's own */
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
	const struct QuantConfig *qcfg;  /* --quant options, NULL: float compilation */
} Graph;

/* ---- quantization (docs/integer-semantics.md is the reference) ----
 * A quantized tensor holds integers q of its (integer) dtype meaning
 *     real = scale[c] * (q - zp[c]),   q in [qmin, qmax] of `bits`,
 * c the index along `axis` (weights: per output channel) or 0.
 * Fixed point (--quant fixed) is the case scale = 2^-frac, zp = 0. */
typedef struct Quant {
	int bits;          /* 2..32; the dtype is the narrowest that holds them */
	int is_unsigned;   /* q in [0, 2^bits - 1], else [-2^(bits-1), 2^(bits-1) - 1] */
	int axis;          /* channel axis, -1: one scale for the whole tensor */
	int nch;           /* entries below: 1, or dim[axis] */
	double *scale;
	int32_t *zp;
	int *frac;         /* binary points when every scale is 2^-frac and zp = 0, else NULL */
	/* Weights only: how q encodes the integer (ir_wdecode).  WQ_UNIFORM: q
	 * is the integer.  WQ_POT, WQ_APOT: q is a code of `bits` bits, sign in
	 * the top bit, magnitude index m below: PoT m = 0 -> 0, else 2^(m-1);
	 * APoT (sums of two powers of two) m = 0, 1, 2, 3, 4, 5, 6, 7, 8, ... ->
	 * 0, 1, 2, 3, 4, 6, 8, 12, 16, 24, ... (2^j for m = 2j, 3 * 2^(j-1) for
	 * m = 2j + 1 > 1).  Codes are stored u8 (packed by the backends). */
	int code;
} Quant;

enum { WQ_UNIFORM, WQ_POT, WQ_APOT };

/* An integer multiply by a real factor M (potc_rescale in potc_fixed.h):
 *   m == 0: M = 2^-n, a rounding shift (n < 0 shifts left, saturating);
 *   m != 0: M = m * 2^(-31-n), m in [2^30, 2^31): Q31 multiply, then shift. */
typedef struct {
	int32_t m;
	int n;
} Rescale;

/* What a quantized node computes, beyond its op and its tensors' Quant
 * (per-op formulas: docs/integer-semantics.md, "The integer IR"). */
typedef struct QNode {
	int acc64;         /* CONV/GEMM/MATMUL/MUL: accumulate in int64 (the int32 bound failed) */
	int nr;            /* r[]: accumulator -> output, per output channel or 1 */
	Rescale *r;
	int nrin;          /* rin[]: per input (ADD, SUB, CONCAT) into the common sum */
	Rescale *rin;
	int ext;           /* ADD/SUB: extra fraction bits of the sum, removed by one rounding */
	int32_t lo, hi;    /* output clamp: q range of the output's bits, narrowed by a fused Relu/Clip */
	int32_t *lut;      /* unary table y = lut[q - lut_lo], nlut entries (SOFTMAX: exp table) */
	int32_t lut_lo;
	int nlut;
	/* accumulator bound proof (pass_qlower): worst-case |acc| over the
	 * integer input ranges, the limit 2^(P-1) - 1, per output channel max */
	int64_t acc_worst, acc_limit;
	/* Narrow accumulators (pass_accbound, --acc-bits P): the products
	 * (x - zx) * (w - zw) of each output are summed in a P-bit signed
	 * accumulator, in tiles of ktile consecutive products of the reduction
	 * (0: one tile) whose partial sums are added in int32 (int64 if acc64);
	 * the bias joins in that wide register.  pass_accbound proved that no
	 * partial sum of any tile leaves P bits; the result is the same integer
	 * as one wide sum, so only the kernels' register width depends on it. */
	int acc_bits;      /* P: 0 = the wide accumulator only (as acc64 says) */
	int ktile;
	int acc_method;    /* ACC_FITS, ACC_SCALED (channels scaled down), ACC_TILED */
	int acc_scaled;    /* channels scaled down (ACC_SCALED) */
} QNode;

enum { ACC_FITS, ACC_SCALED, ACC_TILED, ACC_UNCHECKED };

/* Calibration statistics of one tensor over the samples (pass_calibrate). */
enum { QSTATS_BINS = 2048 };
typedef struct QStats {
	double min, max;        /* over every element of every sample */
	double amax;            /* max |x|: the histogram spans [-amax, amax] */
	double *hist;           /* QSTATS_BINS counts (NULL until the second pass) */
	int64_t count;
	double sum;             /* of every element: mean = sum / count */
} QStats;

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

/* ---- quant.c (quantization helpers shared by passes, evaluator, backends) ---- */
Quant *ir_quant_new(Arena *, int nch, int axis, int bits, int is_unsigned);
DType ir_quant_dtype(const Quant *);           /* I8/U8 up to 8 bits, I16/U16 up to 16, else I32 */
int32_t ir_qmin(const Quant *);
int32_t ir_qmax(const Quant *);
int ir_quant_channel(const Tensor *, int64_t i); /* entry of t->q that element i uses */
/* clamp(round(real / scale[c]) + zp[c]) to the bits range, rounding half
 * away from zero (NaN -> zp). */
int32_t ir_quantize(const Quant *, int c, double real);
double ir_dequantize(const Quant *, int c, int64_t q);
/* Weights: the integer of code (or of q itself when uniform), and the code
 * of the level nearest real / scale[c] (ties to the smaller magnitude). */
int32_t ir_wdecode(const Quant *, int32_t q);
int32_t ir_wencode(const Quant *, int c, double real);
/* The Rescale for a real factor M > 0: a pure shift when M is a power of
 * two (exactly), else the Q31 form.  M = 0 gives {0, 62} (everything -> 0). */
Rescale ir_rescale(double M);
double ir_rescale_real(Rescale);                /* the factor it applies */
void ir_quant_print(const Quant *, FILE *);     /* "i8 f=5" / "u8 s=0.0123 z=3" / "i8 f=[3..7]x16" */

/* ---- qeval.c (integer reference evaluator: THE semantics of --quant) ---- */
/* As ir_eval_node / ir_eval on a lowered graph: inputs and outputs are the
 * integer tensors (the caller quantizes and dequantizes).  A node with
 * q == NULL is data movement on integers (ir_eval_node); one with q set
 * computes by the formulas of docs/integer-semantics.md, with potc_fixed.h. */
int ir_qeval_node(const Graph *, int n, const void *const *in, void *const *out, Diag *);
int ir_qeval(const Graph *, const void *const *inputs, void *const *outputs,
             IrObserve observe, void *ctx, Diag *);

#endif
