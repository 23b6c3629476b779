/* The passes, one per file, in pipeline order.  Each returns 0 on success
 * and reports user errors through Diag; the pipeline runs ir_verify after each. */
#ifndef POTC_PASSES_H
#define POTC_PASSES_H

#include "ir.h"

/* --quant options (Graph.qcfg points here during a quantized compilation). */
typedef enum { QM_NONE, QM_FIXED, QM_AFFINE } QuantMode;
enum { QC_MAXLAYER = 64, QC_MAXIN = 16 };
typedef struct QuantConfig {
	QuantMode mode;
	int wbits, abits;        /* defaults 8 and 8 */
	int bp_max;              /* --bp max: max-based binary points, no MSE search */
	struct { const char *node; int wbits, abits; } layer[QC_MAXLAYER]; /* 0 = not overridden */
	int nlayer;
	/* calibration samples: for graph input i, nsamples * numel floats */
	int64_t nsamples;
	const float *samples[QC_MAXIN];
	int progress;            /* draw a progress bar on stderr */
	/* power-of-two weights and narrow accumulators (issue 4) */
	int weights;             /* WQ_UNIFORM (default), WQ_POT, WQ_APOT */
	int keep_first_last;     /* first and last Conv/Gemm stay 8-bit uniform (default 1 with pot/apot) */
	int acc_bits;            /* --acc-bits P, 12..32; 0 = 32 */
	int acc_unchecked;       /* --acc-unchecked: P-bit accumulators without enforcement (negative tests only) */
} QuantConfig;

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
/* qdq.c (quantized compilation): QuantizeLinear/DequantizeLinear pairs and
 * QOperator nodes become float ops whose tensors carry the model's own
 * Quant (t->q preset), which qchoose keeps. */
int pass_qdq(Graph *, Diag *);
/* calibrate.c: runs the float evaluator over g->qcfg's samples and sets
 * every float tensor's QStats (range, then a histogram over [-amax, amax]). */
int pass_calibrate(Graph *, Diag *);
/* qchoose.c: a Quant for every float tensor without one: fixed (binary
 * point by least MSE around the max-based one, or max-based) or affine;
 * weights per output channel; tensors that must share (data movement,
 * MaxPool) are tied. */
int pass_qchoose(Graph *, Diag *);
/* qlower.c: the float graph becomes the integer IR: constants quantized
 * (bias int32), dtypes set from Quant, a QNode for every computing node
 * (rescales, clamps, tables), the int32 accumulator bound proven or acc64. */
int pass_qlower(Graph *, Diag *);
/* pot.c: with qcfg->weights pot/apot, the weights of every Conv/Gemm/MatMul
 * (but the first and last with keep_first_last, or a --layer override)
 * become PoT/APoT codes: per output channel the scale minimising the
 * channel's output error on the calibration data, each weight the nearest
 * level; runs between qchoose and qlower. */
int pass_pot(Graph *, Diag *);
/* accbound.c: with qcfg->acc_bits < 32, every Conv/Gemm/MatMul channel's
 * worst-case partial sum is bounded by P bits, by scaling channels down
 * (weights rounded toward zero) or tiling the reduction, whichever loses
 * less on the calibration data; records the proof in the QNode.  Runs after
 * qlower. */
int pass_accbound(Graph *, Diag *);
/* memplan.c: arena offsets for every computed tensor that is not a graph
 * output, buffers reused after their last use; view outputs alias their
 * input; sets Graph.arena_bytes. */
int pass_memplan(Graph *, Diag *);

#endif
