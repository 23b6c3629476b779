/* Private to shape inference (shape.c, shape_data.c, shape_struct.c): the
 * per-node context, shapes under construction, and the helpers and rules
 * the three files share.  shape.c holds the helpers, element-wise, window
 * and compute rules and the dispatch table; shape_data.c views, data
 * movement and shape arithmetic; shape_struct.c the structural ops. */
#ifndef POTC_SHAPE_IMPL_H
#define POTC_SHAPE_IMPL_H

#include <stdint.h>

#include "ir.h"

/* Generated code and the evaluators index elements with 32-bit ints. */
#define MAXNUMEL INT32_MAX

enum { SPLIT_MAX = 1024 };  /* outputs of one Split */

typedef struct {
	Graph *g;
	Diag *d;
	int n;        /* node index, for diagnostics */
	Node *node;
} Ctx;

/* A shape under construction.  Room for twice IR_MAXRANK so Gather and
 * Unsqueeze can build an over-long result that set_out then rejects. */
typedef struct {
	int rank;
	int64_t dim[2 * IR_MAXRANK];
} Shape;

/* "[1,3,224,224]", returned by value so it can sit in a call's arguments. */
typedef struct {
	char s[2 * IR_MAXRANK * 21 + 4];
} DimStr;

/* shape.c */
int sh_conv_shape(Ctx *c, const Tensor *x, const Tensor *w, const Tensor *b, Shape *s);
int sh_matmul_shape(Ctx *c, const Tensor *a, const Tensor *b, Shape *s);
int sh_bcast(int ra, const int64_t *da, int rb, const int64_t *db, int *r, int64_t *out);
int sh_const_ints(Ctx *c, int j, int64_t *v, int max, int *cnt);
DimStr sh_dimstr(int rank, const int64_t *dim);
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
int sh_fail(Ctx *c, const char *fmt, ...);
const Tensor *sh_in(const Ctx *c, int j);
int sh_is_int(DType t);
int64_t sh_kext(const Window *w, int i);
int sh_mark_axes(Ctx *c, const int64_t *ax, int nax, int r, char *mark);
int sh_norm_axis(Ctx *c, int64_t axis, int r, int past_end, int *out);
int sh_prod(const int64_t *dim, int from, int to, int64_t *out);
int sh_same_dtype(Ctx *c, int j, int k);
int sh_scalar_input(Ctx *c, int j);
int sh_set_out(Ctx *c, int j, DType dt, const Shape *s);
Shape sh_shape_of(const Tensor *t);
DimStr sh_tshape(const Tensor *t);
int sh_unidir(int rf, const int64_t *df, int rt, const int64_t *dt);

/* shape_data.c */
int sh_cast(Ctx *c);
int sh_check_indices(Ctx *c, const Tensor *idx, int64_t n);
int sh_concat(Ctx *c);
int sh_constant(Ctx *c);
int sh_constofshape(Ctx *c);
int sh_dropout(Ctx *c);
int sh_expand(Ctx *c);
int sh_flatten(Ctx *c);
int sh_gather(Ctx *c);
int sh_pad(Ctx *c);
int sh_range(Ctx *c);
int sh_reshape(Ctx *c);
int sh_shape(Ctx *c);
int sh_size(Ctx *c);
int sh_slice(Ctx *c);
int sh_squeeze(Ctx *c);
int sh_tile(Ctx *c);
int sh_transpose(Ctx *c);
int sh_unsqueeze(Ctx *c);

/* shape_struct.c */
int sh_convtranspose(Ctx *c);
int sh_depthspace(Ctx *c);
int sh_gatherelem(Ctx *c);
int sh_gathernd(Ctx *c);
int sh_instnorm(Ctx *c);
int sh_layernorm(Ctx *c);
int sh_lrn(Ctx *c);
int sh_onehot(Ctx *c);
int sh_resize(Ctx *c);
int sh_split(Ctx *c);
int sh_trilu(Ctx *c);

/* shape_qops.c: ops.def's "ONNX quantization operators" */
int sh_quantize(Ctx *c);   /* QuantizeLinear, DequantizeLinear */
int sh_qconv(Ctx *c);      /* QLinearConv, ConvInteger */
int sh_qmatmul(Ctx *c);    /* QLinearMatMul, MatMulInteger */

#endif
