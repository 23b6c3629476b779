/* Import with the user's bindings: --input-shape, and --const, which turns a
 * graph input into a constant (shape tensors, indices, a fixed mask) so that
 * what depends on it can be folded at compile time. */
#include <stdlib.h>
#include <string.h>

#include "npy_io.h"
#include "potc.h"

static int read_frozen(const PotcOptions *o, Npy *a, InputShape *sh, int *nsh, Diag *d)
{
	char err[256];
	for (int i = 0; i < o->nfreeze; i++) {
		if (npy_read(o->freeze[i].path, &a[i], err, sizeof err)) {
			diag_error(d, o->freeze[i].path, "%s", err);
			return 1;
		}
		int bound = 0;
		for (int k = 0; k < *nsh; k++)
			bound |= strcmp(sh[k].name, o->freeze[i].name) == 0;
		if (bound || *nsh == POTC_MAXSHAPES || a[i].rank > IR_MAXRANK)
			continue;
		/* The data's shape binds the input's symbolic dims. */
		InputShape *s = &sh[(*nsh)++];
		s->name = o->freeze[i].name;
		s->rank = a[i].rank;
		for (int k = 0; k < a[i].rank; k++)
			s->dim[k] = a[i].dim[k];
	}
	return 0;
}

static int freeze(Graph *g, const char *name, const char *path, const Npy *a, Diag *d)
{
	int k = 0;
	while (k < g->ninput && strcmp(g->tensor[g->input[k]].name, name) != 0)
		k++;
	if (k == g->ninput) {
		diag_error(d, g->file, "--const names '%s', which is not a graph input", name);
		return 1;
	}
	Tensor *t = &g->tensor[g->input[k]];
	int same = a->rank == t->rank && a->count == ir_numel(t);
	for (int i = 0; same && i < t->rank; i++)
		same = a->dim[i] == t->dim[i];
	void *data = same ? arena_alloc(g->arena, ir_nbytes(t) + 1) : NULL;
	if (!same || potc_npy_type(t->dtype) < 0 ||
	    npy_convert(a, (NpyType)potc_npy_type(t->dtype), data)) {
		diag_error(d, path, "does not fit input '%s' (%s, %d dims)", name,
		           ir_dtype_name(t->dtype), t->rank);
		return 1;
	}
	t->kind = TK_CONST;
	t->data = data;
	memmove(&g->input[k], &g->input[k + 1], sizeof(int) * (size_t)(g->ninput - k - 1));
	g->ninput--;
	return 0;
}

Graph *potc_import(Arena *arena, const PotcOptions *o, Diag *d)
{
	InputShape sh[POTC_MAXSHAPES];
	Npy a[POTC_MAXSHAPES] = {{0}};
	int nsh = o->nshape;
	memcpy(sh, o->shape, sizeof(InputShape) * (size_t)nsh);
	Graph *g = NULL;
	if (!read_frozen(o, a, sh, &nsh, d))
		g = onnx_load(arena, o->model, sh, nsh, d);
	for (int i = 0; g && i < o->nfreeze; i++)
		if (freeze(g, o->freeze[i].name, o->freeze[i].path, &a[i], d))
			g = NULL;
	for (int i = 0; i < o->nfreeze; i++)
		npy_free(&a[i]);
	return g;
}
