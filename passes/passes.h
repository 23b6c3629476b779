/* The passes, one per file, in pipeline order.  Each returns 0 on success
 * and reports user errors through Diag; the pipeline runs ir_verify after each. */
#ifndef POTC_PASSES_H
#define POTC_PASSES_H

#include "ir.h"

/* fold.c: infer every shape and evaluate nodes whose inputs are all constant
 * (shape sub-graphs included); requires topological order; establishes
 * static shapes on every tensor and no node with only constant inputs. */
int pass_fold(Graph *, Diag *);
/* bnfold.c: BatchNormalization after Conv/Gemm (sole consumer) merged into
 * the weights and bias; a lone BatchNormalization stays. */
int pass_bnfold(Graph *, Diag *);
/* views.c: Identity and Dropout removed; their consumers read the input. */
int pass_views(Graph *, Diag *);
/* dce.c: nodes whose outputs reach no graph output are removed. */
int pass_dce(Graph *, Diag *);
/* fuse.c: Relu, Clip, LeakyRelu, HardSigmoid, HardSwish, Sigmoid following a
 * Conv/Gemm/MatMul/Add (sole consumer) become that node's Act. */
int pass_fuse(Graph *, Diag *);
/* memplan.c: arena offsets for every computed tensor that is not a graph
 * output, buffers reused after their last use; view outputs alias their
 * input; sets Graph.arena_bytes. */
int pass_memplan(Graph *, Diag *);

#endif
