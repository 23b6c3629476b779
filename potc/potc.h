/* potc's library API: what the CLI uses and what a build tool can embed.
 * Every function reports user errors through Diag and returns nonzero. */
#ifndef POTC_H
#define POTC_H

#include <stdio.h>

#include "ir.h"
#include "onnx.h"
#include "passes.h"

enum { POTC_MAXSHAPES = 32 };

typedef struct {
	const char *model;          /* path of the .onnx file */
	const char *out;            /* OUT.c; OUT.h is written beside it */
	const char *name;           /* symbol prefix; default: OUT's stem */
	const char *driver;         /* MAIN.c to write, or NULL */
	int arena_extern;           /* NAME_run takes the arena as an argument */
	InputShape shape[POTC_MAXSHAPES];
	int nshape;
	/* --const NAME=FILE.npy: the input becomes a constant with that data */
	struct { const char *name, *path; } freeze[POTC_MAXSHAPES];
	int nfreeze;
	const char *dump;           /* "fold,fuse", "all" or NULL: ir_dump after those passes */
	FILE *dump_out;             /* stderr if NULL */
	/* quantized compilation: quant.mode != QM_NONE */
	QuantConfig quant;
	const char *calib;          /* --calib FILE */
	int64_t calib_count;        /* --calib-count N, 0 = all */
	int calib_scale;            /* PotcCalibScale for integer data (--calib-scale) */
	int64_t eval_limit;         /* `potc eval --limit N`: the first N samples, 0 = all */
} PotcOptions;

/* onnx_load with the --input-shape and --const bindings applied (import.c). */
Graph *potc_import(Arena *, const PotcOptions *, Diag *);
/* Load and lower a model through the whole pipeline (or up to and including
 * pass `stop`, when not NULL).  NULL on error. */
Graph *potc_load(Arena *, const PotcOptions *, const char *stop, Diag *);
/* Compile opt->model to opt->out (+ header, + driver). */
int potc_compile(const PotcOptions *, Diag *);
/* `potc info`: print inputs, outputs, op histogram, parameters, MACs,
 * arena and weight bytes, and the unsupported ops (info.c). */
int potc_cmd_info(const PotcOptions *, Diag *);
/* `potc run`: the float reference evaluator on .npy files, or with
 * o->quant.mode set the integer one on the quantized model, its float
 * inputs quantized and its outputs dequantized (run.c). */
int potc_cmd_run(const PotcOptions *, const char *const *in, int nin,
                 const char *const *out, int nout, Diag *);
/* The caller's side of a quantized graph input or output t (t->q set, an
 * integer dtype): ir_numel(t) floats to integers (ir_quantize: rounding
 * half away from zero, saturating) and back (ir_dequantize) (run.c). */
void potc_quantize(const Tensor *t, const float *x, void *q);
void potc_dequantize(const Tensor *t, const void *q, float *x);
/* `potc eval`: top-1 accuracy of the float model on data (model inputs)
 * against labels (integer classes), and with o->quant.mode set the
 * quantized model's, their agreement and per-tensor SQNR; report (may be
 * NULL) gets all of it as JSON, with every Quant and accumulator bound (eval.c). */
/* `potc eval --sweep KEY=LO:HI[:STEP]`: top-1 per value of KEY (acc-bits,
 * or wbits for uniform, pot and apot weights). */
int potc_cmd_sweep(const PotcOptions *, const char *data, const char *labels, const char *key,
                   int lo, int hi, int step, Diag *);
int potc_cmd_eval(const PotcOptions *, const char *data, const char *labels,
                  const char *report, Diag *);
/* The npy_io element type (NpyType) of an IR dtype, -1 if none. */
int potc_npy_type(DType);
/* Names of the pipeline's passes in order, NULL-terminated. */
extern const char *const potc_passes[];

#endif
