/* The geometry of a sliding window (Conv, MaxPool, AveragePool) shared by
 * the reference evaluator and the backends, so both read a Window the same
 * way: 1-D and 2-D windows get leading dims of size 1, and auto_pad is
 * resolved from the inferred output size. */
#include <stdio.h>

#include "ir.h"

/* Pads of auto_pad SAME_* / VALID along spatial dim i. */
static void autopad(const Window *w, int i, int64_t in, int64_t out, int *pb, int *pe)
{
	if (w->autopad == PAD_VALID) {
		*pb = *pe = 0;
		return;
	}
	int64_t total = (out - 1) * w->s[i] + (int64_t)(w->k[i] - 1) * w->d[i] + 1 - in;
	total = total < 0 ? 0 : total;
	*pb = (int)(w->autopad == PAD_SAME_UPPER ? total / 2 : total - total / 2);
	*pe = (int)(total - *pb);
}

int ir_window_geom(const Window *w, const Tensor *x, const Tensor *y, WinGeom *G,
                   char *why, size_t nwhy)
{
	int nsp = w->nsp;
	if (nsp < 1 || nsp > 3 || x->rank != nsp + 2 || y->rank != nsp + 2) {
		snprintf(why, nwhy, "needs 1 to 3 spatial dims (input rank %d, window %d)", x->rank, nsp);
		return 1;
	}
	for (int i = 0; i < 3; i++) {
		G->in[i] = G->out[i] = 1;
		G->k[i] = G->s[i] = G->d[i] = 1;
		G->pb[i] = G->pe[i] = 0;
	}
	for (int i = 0; i < nsp; i++) {
		int j = 3 - nsp + i;
		G->in[j] = x->dim[2 + i];
		G->out[j] = y->dim[2 + i];
		G->k[j] = w->k[i];
		G->s[j] = w->s[i];
		G->d[j] = w->d[i];
		G->pb[j] = w->pad[i];
		G->pe[j] = w->pad[nsp + i];
		if (w->autopad != PAD_EXPLICIT)
			autopad(w, i, G->in[j], G->out[j], &G->pb[j], &G->pe[j]);
		if (G->k[j] < 1 || G->s[j] < 1 || G->d[j] < 1) {
			snprintf(why, nwhy, "kernel, stride and dilation must be >= 1");
			return 1;
		}
	}
	return 0;
}
