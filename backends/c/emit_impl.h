/* Private to the C backend (emit_c.c, kernels*.c, driver.c): the line
 * writer, the per-node emission context and the loop-nest helper.
 *
 * Every kernel is one static function per node whose dims are literals:
 *   static void nK_op(const T *restrict x0, ..., T *restrict y0[, float *restrict s])
 * x<j> is runtime input j (graph input, arena tensor or a previous output),
 * y<j> output j, s the node's scratch: arena bytes that no tensor live
 * during the node uses (the arena grows if there is no such gap).  Constant inputs are not parameters: the kernel names their
 * `static const` array (ec_x), printed on first use above the function. */
#ifndef POTC_EMIT_IMPL_H
#define POTC_EMIT_IMPL_H

#include <stdint.h>

#include "emit_c.h"

/* Runtime sources pasted into the generated driver (scripts/embed.cmake). */
extern const char embed_npy_io_h[];
extern const char embed_npy_io_c[];
extern const char embed_driver_h[];
extern const char embed_driver_main_c[];
/* runtime/fixed/potc_fixed.h, pasted at the top of a quantized model.c. */
extern const char embed_potc_fixed_h[];

/* ---- writer (emit_c.c) ----
 * ec_line prints one indented line: a leading '}' closes a level first, a
 * trailing '{' opens one after, so emitters read like the code they print. */
typedef struct {
	FILE *f;
	int depth;
} Out;

void ec_line(Out *, const char *fmt, ...);
/* A float literal that reads back as exactly v ("%.9g" digits, 'f' suffix;
 * INFINITY / NAN from math.h); returns its length, at most 24 bytes. */
int emit_c_fmt_f32(char *buf, float v);

/* A growable string for expressions built from parts (tap sums). */
typedef struct {
	char *s;
	size_t len, cap;
} Str;

void str_printf(Str *, const char *fmt, ...);
void str_free(Str *);

/* ---- where a tensor's bytes are at run time ---- */
typedef enum { LOC_NONE, LOC_INPUT, LOC_OUTPUT, LOC_CONST, LOC_ARENA } LocKind;

typedef struct {
	LocKind kind;
	int idx;        /* graph input / output number, or the CONST tensor id */
	int64_t off;    /* LOC_ARENA: byte offset */
} Loc;

Loc ec_loc(const Graph *, int tensor);

/* ---- per-node emission context (emit_c.c) ---- */
enum { EC_MAXARG = 64, EC_NTARGET = 4 };

typedef struct {
	const Graph *g;
	const EmitC *o;
	Diag *d;
	Out c;                 /* model.c */
	char pfx[64];          /* EmitC.name as an identifier */
	char *printed;         /* per tensor: its const array is in model.c */
	int64_t wbytes;        /* bytes of constant data printed */
	/* integer kernels printed per target under #if (qkernels_conv.c): the
	 * bytes each target's branch adds to wbytes, in eq_target_cond order */
	int64_t wtarget[EC_NTARGET];
	int *first, *last;     /* per arena tensor: its live range in nodes */
	int64_t arena_end;     /* arena bytes including every node's scratch */
	int failed;
	int quant;             /* some tensor has a Quant: integer-only model.c
	                        * (no math.h, potc_fixed.h pasted, scratch s is int32_t *) */
	/* the node being emitted */
	int id;
	const Node *n;
	char fn[48];           /* its function name, "" if it needs no call */
	int begun;             /* its signature is printed */
	int64_t nscratch;      /* scratch bytes it takes */
	char used[EC_MAXARG];  /* runtime input j was named by the body */
} Ctx;

/* Input / output j's tensor, NULL when absent. */
const Tensor *ec_tin(const Ctx *, int j);
const Tensor *ec_tout(const Ctx *, int j);
/* The name input j has inside the kernel: "x<j>" for a runtime input, the
 * constant's array for a CONST one (printed now, so call it before
 * ec_begin for constants). */
const char *ec_x(Ctx *, int j);
/* Print `static const T name[n] = {...};` (a re-laid-out weight). */
void ec_array(Ctx *, const char *name, DType, int64_t n, const void *data);
/* Sub-byte weights (quantized model.c only).  A weight whose Quant has
 * bits <= 4 may be stored packed: ec_pack_width gives the field width, 4
 * (bits 3..4: two fields a byte) or 2 (bits 2: four a byte), 0 for bits
 * > 4 (not packed).  Element i (in the order given: ec_array_packed uses
 * the tensor's row-major order; ec_array_packed_data takes any n values
 * of dtype dt, e.g. a re-laid-out copy) is field i % per of byte i / per,
 * low bits first: bits [k*width, (k+1)*width) of the byte for k = i % per;
 * a field is the value's two's complement low bits (plain bits when
 * unsigned); unused fields of the last byte are 0.  It prints
 * `static const uint8_t name[ceil(n / per)]` and counts those bytes in
 * NAME_WEIGHT_BYTES; ec_array_packed with width 0 prints the tensor
 * unpacked.  Kernels read element i with the helpers every quantized
 * model.c defines after potc_fixed.h: int32_t pk_s4(const uint8_t *p,
 * long i), pk_u4, pk_s2, pk_u2 (no shifts of negative values). */
int ec_pack_width(const Quant *);
void ec_array_packed(Ctx *, const char *name, const Tensor *w);
void ec_array_packed_data(Ctx *, const char *name, DType dt, int width, int64_t n, const void *data);
/* Signature and opening brace of the node's function; scratch bytes > 0
 * adds parameter s. */
void ec_begin(Ctx *, int64_t scratch);
void ec_end(Ctx *);
/* Report a user-visible error at the node; returns 1. */
int ec_fail(Ctx *, const char *fmt, ...);
/* "float", "int64_t", ... ("uint8_t" for bool); NULL if unsupported. */
const char *ec_ctype(DType);
/* Is the dtype a signed / an unsigned integer type of the run API? */
int ec_isint(DType);
/* A literal of dtype dt with value v (floats exactly, integers with a
 * suffix as needed). */
void ec_lit(char *buf, DType dt, double v);
/* Lowest and highest value of dt as C expressions. */
const char *ec_lowest(DType);
const char *ec_highest(DType);
/* Element strides of t (row-major). */
void ec_strides(const Tensor *, int64_t *st);
/* The fused activation of the node applied to the float variable v, as an
 * expression ("v" when there is none). */
void ec_act(const Ctx *, const char *v, char *buf, size_t len);

/* ---- loop nests (emit_c.c) ----
 * A row-major walk over dim[0..rank) with, for each operand k, an element
 * offset base[k] + sum idx[a] * st[k][a].  Operand 0 is usually the
 * output (contiguous), the others inputs (stride 0 broadcasts). */
enum { EC_MAXR = 2 * IR_MAXRANK, EC_MAXOP = 18 };

typedef struct {
	int rank, nop;
	int64_t dim[EC_MAXR];
	int64_t st[EC_MAXOP][EC_MAXR];
	int64_t base[EC_MAXOP];
} Nest;

void nest_init(Nest *, int rank, const int64_t *dim, int nop);
/* Operand k broadcast from tensor t (right-aligned numpy rules); 1 if t
 * does not broadcast to the nest's shape. */
int nest_bcast(Nest *, int k, const Tensor *t);
/* Drop size-1 dims, merge dims every operand walks contiguously. */
void nest_simplify(Nest *);
void nest_open(Ctx *, const Nest *);
void nest_close(Ctx *, const Nest *);
/* Index expression of operand k inside the open nest ("i0 * 196 + i1"). */
void nest_index(const Nest *, int k, char *buf, size_t len);

/* ---- helpers shared by the kernel emitters (kernels.c) ---- */
/* "v0 * k0 + v1 * k1 + c": an affine index; pairs (name, int64_t coef)
 * end with NULL; zero coefficients and empty names are left out. */
const char *ec_aff(Ctx *, int64_t k0, ...);
/* `dst = ACT(expr);`, through a temporary z when there is an activation. */
void ec_store(Ctx *, const char *dst, const char *expr);
/* 0 if output 0 and the first nin present inputs are f32, else an error. */
int ec_want_f32(Ctx *, int nin);
int64_t ec_prod(const Tensor *, int from, int to);
/* axis in [-rank, rank) made non-negative; -1 if out of range. */
int ec_axis(int axis, int rank);

/* A sliding window's geometry, as in eval_nn.c: 1-D and 2-D windows get
 * leading dims of size 1.  A dim is active when it moves (in, out or
 * kernel > 1, or padded). */
typedef struct {
	int64_t in[3], out[3];
	int k[3], s[3], d[3], pb[3], pe[3];
	int64_t ist[3], ost[3], kst[3];   /* strides of input, output, kernel */
	int64_t insz, outsz, ksz;
	int64_t lo[3], hi[3];             /* outputs whose window is all inside */
	int nd, ad[3];                    /* active dims, outermost first */
} Geom;

/* Geometry of node c->id's window from input x to output y; pads explicit. */
int ec_geom(Ctx *, const Tensor *x, const Tensor *y, Geom *);

/* ---- kernels (kernels.c, kernels_conv.c, kernels_data.c) ---- */
/* Emit node c->id's function; sets c->fn ("" when no call is needed). */
int ec_kernel(Ctx *);
int ec_conv(Ctx *);
int ec_gemm(Ctx *);
int ec_matmul(Ctx *);
int ec_pool(Ctx *);
int ec_gpool(Ctx *);
int ec_batchnorm(Ctx *);
int ec_softmax(Ctx *);
int ec_reduce(Ctx *);
/* mask[a] = 1 for each axis a Reduce* node reduces (its axes input, or
 * all axes unless noop_empty); an error for bad or run-time axes. */
int ec_reduce_mask(Ctx *, const Tensor *x, char *mask);
int ec_eltwise(Ctx *);
int ec_unary(Ctx *);
int ec_cast(Ctx *);
int ec_view(Ctx *);
int ec_transpose(Ctx *);
int ec_concat(Ctx *);
int ec_pad(Ctx *);
int ec_slice(Ctx *);
int ec_gather(Ctx *);
int ec_expand(Ctx *);
int ec_tile(Ctx *);
/* kernels_struct.c: the ops of ops.def's "structural ops" section */
int ec_struct(Ctx *);
/* kernels_math.c: the ops of ops.def's "math, logic and bit ops" section */
int ec_math(Ctx *);
/* kernels_qops.c: the ops of ops.def's "ONNX quantization operators" section */
int ec_qops(Ctx *);

/* ---- integer kernels: nodes with a QNode (docs/integer-semantics.md) ----
 * Every function body computes exactly what ir_qeval_node computes, with
 * the potc_fixed.h functions pasted at the top of a quantized model.c. */
int eq_kernel(Ctx *);   /* qkernels.c: dispatch on c->n->op */
/* The preprocessor condition of integer-kernel target i (0 .. EC_NTARGET-1),
 * NULL for the last (#else: plain C). */
const char *eq_target_cond(int i);
int eq_conv(Ctx *);     /* qkernels_conv.c: CONV (depthwise included) */
int eq_matmul(Ctx *);   /* qkernels_conv.c: GEMM and MATMUL */
/* qkernels_narrow.c: CONV and GEMM/MATMUL whose weights are PoT/APoT codes
 * or whose QNode has acc_bits in 1..16 or a ktile (eq_narrow_wanted). */
int eq_narrow_wanted(const Ctx *);
int eq_narrow_conv(Ctx *);
int eq_narrow_matmul(Ctx *);

#endif
