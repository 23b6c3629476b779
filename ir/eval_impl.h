/* Private to the float reference evaluator (eval.c, eval_nn.c,
 * eval_data.c): the per-node context, dtype access and the broadcasting
 * index iterator.  Only ir/eval*.c and ir/qeval*.c include this. */
#ifndef POTC_EVAL_IMPL_H
#define POTC_EVAL_IMPL_H

#include <string.h>

#include "ir.h"

/* One node being evaluated: in[j] / out[j] are its data pointers (NULL when
 * absent), the tensors give dtypes and (inferred) shapes. */
typedef struct {
	const Graph *g;
	int id;                  /* node index, for diagnostics */
	const Node *n;
	const void *const *in;
	void *const *out;
	Diag *d;
} Ev;

/* Input j's tensor, or NULL when the optional input is absent. */
const Tensor *ev_tin(const Ev *, int j);
/* Output j's tensor, or NULL when absent. */
const Tensor *ev_tout(const Ev *, int j);
/* Report an error at the node; returns 1 so callers can `return ev_fail(..)`. */
int ev_fail(const Ev *, const char *fmt, ...);
/* 0 if output 0 and every present input among the first nin are f32. */
int ev_want_f32(const Ev *, int nin);
/* An axis attribute in [-rank, rank) made non-negative; -1 if out of range. */
int ev_axis(int axis, int rank);
/* mask[a] = 1 for each axis a Reduce* node reduces (eval_nn.c); 1 on error. */
int ev_reduce_axes(const Ev *, const Tensor *x, char *mask);
/* Product of dims [from, to). */
int64_t ev_prod(const Tensor *, int from, int to);

/* ---- element access by dtype ---- */
int ev_isint(DType);          /* I8..I64 and BOOL: computed as int64 */
int ev_isfloat(DType);        /* F32, F64 */
int64_t ev_geti(DType, const void *, int64_t i);  /* floats truncate */
/* Store v: float dtypes round to nearest; integer dtypes truncate toward
 * zero and saturate (NaN -> 0); BOOL is v != 0. */
void ev_setf(DType, void *, int64_t i, double v);
/* Store v: integer dtypes wrap modulo 2^bits (two's complement, like numpy
 * astype); BOOL is v != 0. */
void ev_seti(DType, void *, int64_t i, int64_t v);

/* Copy element si of src to element di of dst, es bytes each. */
static inline void ev_move(void *dst, int64_t di, const void *src, int64_t si, size_t es)
{
	char *d = (char *)dst + (size_t)di * es;
	const char *s = (const char *)src + (size_t)si * es;
	switch (es) {
	case 1: *d = *s; break;
	case 2: memcpy(d, s, 2); break;
	case 4: memcpy(d, s, 4); break;
	case 8: memcpy(d, s, 8); break;
	default: memcpy(d, s, es); break;
	}
}

/* ---- index iterator ----
 * Walks a shape in row-major order while tracking, for each of nop
 * operands, an element offset: off[k] = sum idx[a] * st[k][a].  A
 * broadcast dim has stride 0; transposes and slices set their own strides.
 * Rank goes up to 2*IR_MAXRANK so Tile can split each dim in two. */
enum { EV_MAXOP = 3, EV_MAXRANK = 2 * IR_MAXRANK };

typedef struct {
	int rank, nop;
	int64_t dim[EV_MAXRANK];
	int64_t idx[EV_MAXRANK];
	int64_t st[EV_MAXOP][EV_MAXRANK];
	int64_t off[EV_MAXOP];
} EvIter;

/* Iterator over t's shape with every stride 0 (callers fill st, off). */
void ev_iter_shape(EvIter *, const Tensor *t, int nop);
/* numpy broadcasting of op[0..nop) to the shape of out; 1 if some operand
 * does not broadcast (then it is unusable). */
int ev_iter_bcast(EvIter *, const Tensor *out, int nop, const Tensor *const *op);
/* Row-major strides of t in elements. */
void ev_strides(const Tensor *t, int64_t *st);

static inline void ev_iter_next(EvIter *it)
{
	for (int a = it->rank - 1; a >= 0; a--) {
		for (int k = 0; k < it->nop; k++)
			it->off[k] += it->st[k][a];
		if (++it->idx[a] < it->dim[a])
			return;
		for (int k = 0; k < it->nop; k++)
			it->off[k] -= it->st[k][a] * it->dim[a];
		it->idx[a] = 0;
	}
}

/* ---- op families: each returns 0 on success, 1 after an ir_error ---- */
/* eval_nn.c */
int ev_conv(const Ev *);
int ev_gemm(const Ev *);
int ev_matmul(const Ev *);
int ev_maxpool(const Ev *);
int ev_avgpool(const Ev *);
int ev_globalpool(const Ev *);
int ev_batchnorm(const Ev *);
int ev_softmax(const Ev *);
int ev_reduce(const Ev *);
/* eval_data.c */
int ev_copy(const Ev *);          /* Identity, Dropout and the views */
int ev_transpose(const Ev *);
int ev_concat(const Ev *);
int ev_pad(const Ev *);
int ev_slice(const Ev *);
int ev_gather(const Ev *);
int ev_expand(const Ev *);
int ev_tile(const Ev *);
int ev_shape(const Ev *);         /* Shape, Size */
int ev_cast(const Ev *);
int ev_constofshape(const Ev *);
int ev_range(const Ev *);
/* eval_struct.c: the ops of ops.def's "structural ops" section */
int ev_struct(const Ev *);
/* eval_math.c: the ops of ops.def's "math, logic and bit ops" section */
int ev_math(const Ev *);
/* eval_qops.c: the ops of ops.def's "ONNX quantization operators" section */
int ev_qops(const Ev *);

/* The whole-graph driver behind ir_eval and ir_qeval (eval.c): a buffer
 * per tensor, freed after its last reader; node_fn computes each node. */
typedef int (*EvNodeFn)(const Graph *, int n, const void *const *in, void *const *out, Diag *);
int ev_run_graph(const Graph *, EvNodeFn node_fn, const void *const *inputs, void *const *outputs,
                 IrObserve observe, void *ctx, Diag *);

#endif
