/* Private to the integer Conv, Gemm and MatMul emitters (qkernels_conv.c,
 * qkernels_vec.c, qkernels_vnni.c, qkernels_avx2.c): what they read from
 * the node, the flat-plane geometry of the vector kernels, and the
 * helpers they share.  docs/integer-semantics.md has the formula every
 * kernel computes; qkernels_conv.c's top comment says how they stay
 * exact. */
#ifndef POTC_QCONV_IMPL_H
#define POTC_QCONV_IMPL_H

#include <stdint.h>

#include "emit_impl.h"

/* The output side: requantisation per output channel. */
typedef struct {
	DType xt, yt;          /* activation and output dtypes */
	int32_t zx, zy, lo, hi;
	int32_t xmin, xmax;    /* the input's q range */
	int acc64;
	int64_t M;             /* output channels */
	Rescale *r;            /* [M] */
	int r1;                /* one Rescale for all channels */
	int64_t *accb;         /* [M] worst |acc| (from the weights), or NULL */
} QOut;

/* How the channels' rescales look, for the vector kernels: RF_ONE (one
 * Rescale: literals), RF_SHIFT (rounding right shifts, n in [0, 31]),
 * RF_Q31 (Q31 multiply, then such a shift), RF_ANY. */
enum { RF_ONE, RF_SHIFT, RF_Q31, RF_ANY, RF_PLAIN, RF_SHIFTH, RF_PLAINSH };

/* A Conv being printed. */
typedef struct {
	QOut o;
	Geom G;
	int64_t N, C, M, Cg, Mg, grp, K;  /* K = Cg * kernel size */
	int32_t *w;                       /* [M][K] w - zw, K in (ci, kz, ky, kx) order */
	const Quant *wq;                  /* the weights' */
	int64_t *bias, *sumw;             /* [M] */
	int padded;
	int64_t pin[3], pst[3], plane;    /* the (padded) input plane */
	const char *x;
	int64_t scratch;                  /* bytes, the largest any target needs */
} QConv;

/* A Gemm or MatMul being printed. */
typedef struct {
	QOut o;
	int64_t M, K, N;       /* rows, reduction, columns */
	int constb;            /* B constant: w = B - zw as [K][N] (per batch) */
	int32_t *w;            /* constant B - zw, [nbb][K][N] */
	const Quant *wq;       /* B's */
	int64_t *bias, *sumw;  /* [nbb][N] (sumw: over k) */
	int64_t nbb;           /* constant B's batch count (1 for Gemm) */
	int32_t zb;            /* runtime B: its zero point */
	const char *a, *b;     /* names */
	DType bt;              /* runtime B's dtype */
	const Nest *bn;        /* MatMul batch dims: operands y, a, b */
	int64_t scratch;
} QMm;

/* Where a flat plane's outputs go (see qkernels_vnni.c). */
typedef enum { VO_DIRECT, VO_ROWS, VO_TBUF } VOut;

/* Tiles: at most VX_NV vectors of positions by VX_ACC / nv channels.
 * Measured on the Fashion-MNIST samples (Zen 5, gcc 12): 8 to 12
 * accumulators are as fast as 16 to 24 or faster, which make gcc spill
 * (it keeps the epilogue's constants in registers too). */
enum { VX_MAXTAP = 64, VX_ACC = 12, VX_NV = 3 };

/* The intrinsics of a 256- or 128-bit integer kernel (AVX2, SSE2). */
typedef struct {
	int L;                 /* int32 lanes */
	const char *p, *ty, *h; /* "_mm256", "__m256i", "q256" */
	const char *ld, *st;   /* unaligned load and store of a vector */
	int sse2;
} Isa;

/* The tile kinds: VNNI u8 quads; AVX2 int16 pairs (vpmaddwd). */
typedef enum { VK_VNNI, VK_AVX2 } VKind;

/* A Conv on flat planes (vector kernels): geometry, tile, scratch. */
typedef struct {
	QConv *v;
	VKind kind;
	const Isa *isa;          /* AVX2 and SSE2 */
	int L;                   /* lanes: 16 (zmm), 8 (ymm) or 4 (xmm) */
	int unit;                /* plane bytes per flat position */
	int xq, s, nkq;
	int64_t Wp, OWp, Q, QR;  /* plane pitch, output pitch, outputs, rounded to L */
	int64_t ncq, nq, KQ;     /* quads: per tap loop (CQ: channel quads; XQ: channels), taps, per channel */
	int sr;                  /* row phases: padded row R is row R / sr of phase R % sr */
	int64_t PHB, PLB;        /* bytes of one row phase, of one channel (or quad) plane */
	VOut out;
	int np, nv;
	int flip, padb;
	int64_t xbytes, tbytes;
	int64_t off[VX_MAXTAP];  /* tap offsets in bytes */
	int64_t vstep;           /* bytes from one vector to the next */
	int ok;
} Vx;

/* ---- the vector epilogue: rescale, clamp, convert, store ----
 * After the rescale, potc_out's clamp to [lo, hi] and the narrowing:
 * with zp_y = 0 a saturating convert (vpmovsdb, vpmovusdb after max 0)
 * is the clamp to the dtype's range, so only a narrower lo or hi costs
 * an instruction; otherwise clamp to [lo - zp, hi - zp], add zp and
 * truncate (the values are in range). */
typedef struct {
	int maxv, minv, addz;
	int32_t lo, hi, zy;
	const char *cvt;     /* "cvtsepi32", "cvtusepi32" or "cvtepi32" */
	int w16;             /* 16-bit output */
} OutPlan;

/* A vector of a tile: flat position q (expression), output element yi
 * within the channel's plane (or the row buffer), lanes to store. */
typedef struct {
	const char *q, *yi;
	int valid;
} VxVec;

/* The argument of qc_vx_chunk (channel chunks). */
typedef struct {
	const Vx *x;
} VxArg;

/* A printer of one chunk of size positions, channels or rows. */
typedef void (*ChunkFn)(Ctx *, const void *arg, int64_t size);

/* Depthwise planes are filled in blocks of DW_CB channels. */
enum { DW_CB = 8 };

/* AVX2 / SSE2 tiles: at most VY_ACC accumulators, VY_NV vectors of
 * positions (16 registers). */
enum { VY_ACC = 8, VY_NV = 2 };

static inline int64_t align16(int64_t n)
{
	return (n + 15) / 16 * 16;
}

static inline int64_t align64(int64_t n)
{
	return (n + 63) / 64 * 64;
}

/* ---- qkernels_conv.c: shared emit helpers ---- */
void qc_out_bounds(const QOut *o, int32_t *lo, int32_t *hi);
void qc_put_bias(Ctx *c, const QOut *o, const char *name, const int64_t *bias, const int64_t *sumw, int64_t k,
                     int64_t M);
void qc_put_bias_h(Ctx *c, const QOut *o, const char *name, const int64_t *bias, const int64_t *sumw, int64_t k,
                       int64_t M, int fold, int narrow);
void qc_put_i32(Ctx *c, const char *name, DType dt, const int32_t *v, int64_t n);
void qc_put_rescale(Ctx *c, const QOut *o, int form);
void qc_put_text(Ctx *c, const char *const *lines);
int qc_rform_of(const QOut *o);
int qc_rform_vec(const QOut *o);
int32_t qc_thr_of(Rescale r);

/* ---- qkernels_vec.c: output epilogue plan, position loops, vector Gemm/MatMul ---- */
int qc_avx2_mm_ok(const QMm *q);
void qc_even_chunks(Ctx *c, const char *var, int64_t total, int64_t step, ChunkFn fn, const void *arg);
OutPlan qc_out_plan(const QOut *o);
void qc_vec_mm(Ctx *c, QMm *q, int64_t scratch, const Isa *I);
int64_t qc_vec_mm_scratch(QMm *q, const Isa *I);
int qc_vnni_mm_ok(const QMm *q);
void qc_vx_chunk(Ctx *c, const void *arg, int64_t np);
void qc_vx_positions(Ctx *c, const Vx *x, int np);

/* ---- qkernels_vnni.c: AVX-512 VNNI Conv ---- */
void qc_out512(Ctx *c, const OutPlan *p, const char *r);
extern const char *const qc_q512_text[];
void qc_store512(Ctx *c, const OutPlan *p, const char *r, const char *dst, int valid, const char *mk);
void qc_vnni_conv(Ctx *c, QConv *v, int64_t scratch);
void qc_vnni_dw(Ctx *c, QConv *v, int64_t scratch);
int64_t qc_vnni_dw_scratch(QConv *v);
void qc_vnni_tile(Ctx *c, const Vx *x, int np, int nv, const VxVec *vec);
Vx qc_vx_geom(QConv *v, int depthwise);
VOut qc_vx_out_mode(const Geom *G, int64_t owp, int L, int64_t *pitch);

/* ---- qkernels_avx2.c: AVX2 and SSE2 Conv ---- */
void qc_avx2_conv(Ctx *c, QConv *v, int64_t scratch, const Isa *I);
void qc_avx2_dw(Ctx *c, QConv *v, int64_t scratch, const Isa *I);
int64_t qc_avx2_dw_scratch(QConv *v, const Isa *I);
void qc_avx2_tile(Ctx *c, const Vx *x, int np, int nv, const VxVec *vec);
extern const Isa qc_isa128;
extern const Isa qc_isa256;
void qc_out256(Ctx *c, const Isa *I, const OutPlan *p, const char *r);
OutPlan qc_out_plan256(const QOut *o);
extern const char *const qc_q128_text[];
extern const char *const qc_q256_text[];
void qc_store256(Ctx *c, const Isa *I, const OutPlan *p, const char *r, const char *dst, int valid);
Vx qc_vy_geom(QConv *v, int dw, const Isa *I);
int64_t qc_vy_rowbuf(const Vx *x, int64_t nplanes);

#endif
