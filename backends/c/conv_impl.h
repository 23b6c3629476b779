/* Private to the dot-product kernel emitters (kernels_conv.c, and the
 * depthwise Conv in kernels_dw.c): targets, tiles and the Conv geometry. */
#ifndef POTC_CONV_IMPL_H
#define POTC_CONV_IMPL_H

#include "emit_impl.h"

/* Register budgets.  A tile must fit the register file: one that does
 * not is spilled to the stack by the C compiler and runs at a fraction of
 * the speed (8 x 16 floats of accumulators fit AVX-512's 32 registers;
 * AVX2's 16 ymm registers hold 16 x 8 floats, none left for the operands).
 * So each tiled kernel is printed once per row of targets[], under its
 * preprocessor condition, and the C compiler keeps the one for the target
 * it builds for.  Where GNU C vector types exist, a tile's accumulators are
 * vector variables of the target's width (the tile is exactly the set of
 * registers, whatever the vectoriser thinks); the fallback for any other
 * compiler or target (Cortex-M, MSVC) is plain float arrays and loops. */
typedef struct {
	const char *cond;  /* #if condition; NULL: the fallback (#else) */
	int lanes;         /* floats per vector variable; 0: float arrays */
	int acc;           /* accumulator vectors per tile */
	int np;            /* at most this many broadcast rows per tile */
	int pacc, pnp;     /* the same for Conv with pixels in the vector */
	int dwmask;        /* same-width stride-1 depthwise: column masks (dw_mask), else phase planes */
} Target;

/* One tile: np broadcast rows times vb lanes, as vector variables of
 * `lanes` floats (when lanes divides vb) or float arrays. */
typedef struct {
	int np;
	int64_t vb;
	int lanes;
} Tile;

/* A body printer, called once per target (see cv_per_target_pre). */
typedef void (*BodyFn)(Ctx *, void *arg, const Target *);

/* A Conv being printed. */
typedef struct {
	const char *x, *w, *b;   /* input, weights ([g][k][m] or as given), bias */
	int64_t N, C, M, Cg, Mg, grp;
	int64_t K;               /* Cg * kernel size: the dot-product length */
	int wconst;              /* w is the re-laid-out constant, else [M][K] */
	int padded;              /* the input is copied into zero-padded scratch */
	int64_t pin[3], pst[3];  /* dims and strides of the (padded) input plane */
	int64_t plane;           /* elements of one (padded) input channel */
	Geom G;
	const Target *tg;        /* the target being printed for */
} Conv;

/* kernels_conv.c */
/* The fused activation can run on vectors (all but Sigmoid). */
int cv_vec_act_ok(const Ctx *c);
/* { vf z = init; z = ACT(z); memcpy(dst, &z, ...); }: one vector's store. */
void cv_vec_finish(Ctx *c, const Tile *t, const char *init, const char *dst);
/* The node's function once per target under #if: pre above it, body in it. */
void cv_per_target_pre(Ctx *c, int64_t scratch, BodyFn pre, BodyFn body, void *arg);
/* Zero the scratch and copy the input rows of image nv (channels [c0,
 * c0 + nc)) into it, as nc padded planes. */
void cv_conv_pad_copy(Ctx *c, const Conv *v, const char *nv, int64_t nc, const char *c0);

/* kernels_dw.c: a depthwise Conv (one input channel per output channel). */
void cv_conv_depthwise(Ctx *c, Conv *v);

#endif
