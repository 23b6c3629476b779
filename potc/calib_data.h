/* calib_data: the calibration samples behind `--calib FILE` and
 * `--calib-count N`, read into one float32 array [N, ...input shape].
 *
 * FILE may be
 *   - a .npy file (any numeric dtype; float32, float64 and uint8 are the
 *     usual ones): the leading dim counts samples, or the file is exactly
 *     one sample without a batch dim;
 *   - a directory of ONNX TensorProto files (*.pb, e.g. input_0.pb,
 *     input_1.pb, ...), one sample each (or a batch of them), taken in
 *     natural name order (input_2 before input_10); a single .pb file is
 *     accepted too;
 *   - an IDX file (the MNIST format: ubyte, byte, short, int, float or
 *     double elements), leading dim = samples, matched to the input by
 *     element count, so uint8 images [N,H,W] feed [1,1,H,W] or [1,H,W,1];
 *     gzip-compressed files (.gz) when potc is built with zlib
 *     (POTC_HAVE_ZLIB), otherwise a clear error asking to gunzip.
 *
 * Matching a file's shape to the model input of shape D (product S):
 *   1. same rank, dim 0 a multiple of D[0], the other dims equal (the batch
 *      rule of `potc run`): N = dim0 / D[0];
 *   2. the dims after the first equal D with all 1s dropped: N = dim 0;
 *   3. all dims equal D with 1s dropped: N = 1.
 * IDX files match by element count (prod(dims[1:]) == S, else numel == S).
 * Anything else is an error naming both shapes (NHWC data for an NCHW model
 * is refused, not silently reinterpreted).
 *
 * Values: floating-point data is taken as is (NaN or infinity is an error)
 * and only feeds a floating-point input.  uint8 data feeding a float input
 * is scaled by PotcCalibScale; every other integer type, and uint8 data
 * feeding an integer input, is taken as its value.
 *
 * Host code: allocates with malloc; every user error (missing file, bad
 * magic, truncation, unsupported type, a shape that fits no input, zero
 * samples) is one diag_error line starting with the offending path. */
#ifndef POTC_CALIB_DATA_H
#define POTC_CALIB_DATA_H

#include <stdint.h>

#include "ir.h"

typedef enum {
	POTC_CALIB_UNIT,    /* x / 255: [0, 1] (the default) */
	POTC_CALIB_RAW,     /* x: [0, 255] */
	POTC_CALIB_SIGNED   /* x / 127.5 - 1: [-1, 1] */
} PotcCalibScale;

typedef struct {
	float *data;          /* n * per_sample values, malloc'ed */
	int64_t n;            /* samples */
	int64_t per_sample;   /* elements of one model input: the product of its dims */
	char desc[160];       /* what was read, e.g. "IDX uint8 [3,5,5], scale unit" */
} PotcCalib;

/* "unit", "raw" or "signed" into *s; 1 if name is none of them. */
int potc_calib_scale_parse(const char *name, PotcCalibScale *s);
const char *potc_calib_scale_name(PotcCalibScale);

/* Read up to max_count samples (all when max_count <= 0) from path for a
 * model input of dtype `dtype` and shape dim[0..rank-1] (static, every dim
 * >= 1).  Returns 0 and fills *out, or 1 after one diag_error, with *out
 * empty.  Free with potc_calib_free. */
int potc_calib_load(const char *path, DType dtype, int rank, const int64_t *dim,
                    int64_t max_count, PotcCalibScale scale, PotcCalib *out, Diag *d);
void potc_calib_free(PotcCalib *);

#endif
