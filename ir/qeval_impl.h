/* Private to the integer reference evaluator (qeval.c: dispatch, driver,
 * Conv, Gemm, MatMul; qeval_elt.c: the other quantized ops).  It reuses
 * the float evaluator's per-node context, dtype access and broadcasting
 * iterator (eval_impl.h): same tensors and indexing, integer arithmetic
 * from potc_fixed.h instead of float. */
#ifndef POTC_QEVAL_IMPL_H
#define POTC_QEVAL_IMPL_H

#include "eval_impl.h"
#include "potc_fixed.h"

/* ---- helpers (qeval.c) ---- */

/* The integer dtypes a quantized tensor may have: i8, u8, i16, u16, i32. */
static inline int qe_intdt(DType t)
{
	return t >= DT_I8 && t <= DT_I32;
}

/* xv = q - zp of every element of input j as int32, each element with
 * its own channel's zero point (ir_quant_channel), malloc'ed: free() it.
 * NULL after an ir_error (no Quant, not an integer dtype, no memory). */
int32_t *qe_center(const Ev *, int j);
/* The node's rescale r[c] for output channel c (r[0] when nr == 1). */
Rescale qe_r(const Ev *, int64_t c);
/* 0 if the node has r[] for nch output channels (nr == 1 or nch). */
int qe_want_r(const Ev *, int64_t nch);
/* R(v): potc_rescale of an int32 v, or potc_rescale64 when wide. */
int32_t qe_rescale(Rescale, int64_t v, int wide);
/* Store out(v) = clamp(zp_y + v, lo, hi) as element i of output 0. */
void qe_store(const Ev *, int64_t i, int32_t v);
/* ir_error for an int32 accumulator the pass claimed cannot overflow. */
int qe_overflow(const Ev *, int64_t acc, int64_t at);

/* v leaves int32: an int32 accumulator would have overflowed. */
static inline int qe_out32(int64_t v)
{
	return v > INT32_MAX || v < INT32_MIN;
}

/* A window's geometry (WinGeom) with the sizes of one input plane and one
 * kernel. */
typedef struct {
	WinGeom w;
	int64_t insz, ksz;
} QGeom;

int qe_geom(const Ev *, const Tensor *x, const Tensor *y, QGeom *);

/* Input coordinate of output o, kernel tap t along dim i. */
static inline int64_t qe_tap(const QGeom *G, int i, int64_t o, int t)
{
	return o * G->w.s[i] - G->w.pb[i] + (int64_t)t * G->w.d[i];
}

static inline int qe_inside(const QGeom *G, int i, int64_t c)
{
	return c >= 0 && c < G->w.in[i];
}

/* ---- op families: 0, or 1 after an ir_error ---- */
/* qeval.c */
int qe_conv(const Ev *);
int qe_gemm(const Ev *);
int qe_matmul(const Ev *);
/* qeval_elt.c */
int qe_binary(const Ev *);      /* Add, Sub, Mul */
int qe_avgpool(const Ev *);
int qe_globalpool(const Ev *);  /* GlobalAveragePool, GlobalMaxPool */
int qe_reducemean(const Ev *);
int qe_concat(const Ev *);
int qe_unary(const Ev *);       /* a table, or Relu / Clip by lo and hi */
int qe_softmax(const Ev *);

#endif
