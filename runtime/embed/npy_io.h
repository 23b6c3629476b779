/* npy_io: a small reader and writer of NumPy .npy files (format versions
 * 1.0, 2.0 and 3.0), for the drivers potc generates and for tests.
 *
 * Host-side code: it allocates with malloc.  Only little-endian ('<') or
 * byte-sized ('|') element types, C order (or Fortran order where that is
 * the same bytes); no object arrays.  Data is returned in host byte order.
 * Written against C99 so it can be pasted into generated drivers. */
#ifndef NPY_IO_H
#define NPY_IO_H

#include <stddef.h>

typedef enum {
	NPY_F4, NPY_F8,
	NPY_I1, NPY_U1, NPY_I2, NPY_U2, NPY_I4, NPY_U4, NPY_I8, NPY_U8,
	NPY_B1,
	NPY_NTYPES
} NpyType;

enum { NPY_MAXRANK = 32 };

typedef struct {
	NpyType type;
	int rank;
	long dim[NPY_MAXRANK];
	long count;          /* elements: the product of dim */
	void *data;          /* count elements, host byte order; malloc'ed */
} Npy;

/* Bytes per element of t. */
size_t npy_size(NpyType t);
/* The dtype string of t, e.g. "<f4" or "|b1". */
const char *npy_descr(NpyType t);
/* Read path into *a.  Returns 0, or 1 with a one-line reason in err. */
int npy_read(const char *path, Npy *a, char *err, size_t errlen);
/* Parse a whole .npy image of n bytes (what npy_read does after reading). */
int npy_parse(const unsigned char *buf, size_t n, Npy *a, char *err, size_t errlen);
/* Write count = prod(dim) elements of type t from data (host order). */
int npy_write(const char *path, NpyType t, int rank, const long *dim, const void *data,
              char *err, size_t errlen);
void npy_free(Npy *a);
/* Convert a's elements to type `to` into dst (a->count elements).  Allowed:
 * f4/f8 to f4/f8; any integer or bool to any integer; anything to bool
 * (!= 0).  Integers wrap like C casts.  Returns 0, or 1 if not allowed. */
int npy_convert(const Npy *a, NpyType to, void *dst);

#endif
