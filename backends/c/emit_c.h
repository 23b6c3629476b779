/* Portable C backend: model.c + model.h, and an optional .npy driver. */
#ifndef POTC_EMIT_C_H
#define POTC_EMIT_C_H

#include <stdint.h>
#include <stdio.h>

#include "ir.h"

/* What the generated header states, for `potc info` and the API. */
typedef struct {
	int64_t arena_bytes;   /* NAME_ARENA_BYTES: tensors and kernel scratch */
	int64_t weight_bytes;  /* NAME_WEIGHT_BYTES: constant data in flash */
} EmitCSizes;

typedef struct {
	const char *name;      /* symbol prefix: NAME_run, NAME_ARENA_BYTES, ... */
	const char *header;    /* file name model.c includes, e.g. "model.h" */
	const char *source;    /* the model file it came from, for the banner */
	int arena_extern;      /* caller passes the arena to NAME_run */
	EmitCSizes *sizes;     /* if set, filled in by emit_c */
} EmitC;

/* Requires pass_memplan.  Returns 0, or reports why in d. */
int emit_c(const Graph *, const EmitC *, FILE *c, FILE *h, Diag *);
/* main() reading float32 .npy inputs, writing float32 .npy outputs. */
int emit_c_driver(const Graph *, const EmitC *, FILE *f, Diag *);

#endif
