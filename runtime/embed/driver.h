/* What driver_main.c needs from the part of a generated driver that knows
 * the model: potc prints, between this header and driver_main.c,
 *   #define DRV_NIN n, DRV_NOUT m            (number of model inputs, outputs)
 *   static const DrvPort drv_in[], drv_out[] (at least one entry each)
 *   (quantization from the model header's NAME_INi_SCALE, _ZP, _QMIN, _QMAX)
 *   static int drv_run(void *const *in, void *const *out)
 * where drv_run calls NAME_run on one batch. */
#ifndef DRIVER_H
#define DRIVER_H

#include "npy_io.h"

enum { DRV_MAXRANK = 8 };

typedef struct {
	const char *name;
	NpyType type;            /* element type of the model's buffer */
	int rank;
	long dim[DRV_MAXRANK];
	long size;               /* elements */
	/* A quantized model's port (quant = 1): the buffer holds integers q
	 * meaning scale * (q - zp), q in [qmin, qmax].  The driver quantizes
	 * float inputs and dequantizes outputs unless --raw. */
	int quant;
	double scale;
	long zp, qmin, qmax;
} DrvPort;

#endif
