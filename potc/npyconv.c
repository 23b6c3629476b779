/* The .npy element type of each IR dtype (run.c, the --const binding). */
#include "npy_io.h"
#include "potc.h"

int potc_npy_type(DType t)
{
	static const int map[DT_COUNT] = {
		[DT_UNDEF] = -1, [DT_F32] = NPY_F4, [DT_F64] = NPY_F8, [DT_I8] = NPY_I1,
		[DT_U8] = NPY_U1, [DT_I16] = NPY_I2, [DT_U16] = NPY_U2, [DT_I32] = NPY_I4,
		[DT_U32] = NPY_U4, [DT_I64] = NPY_I8, [DT_BOOL] = NPY_B1,
	};
	return t > DT_UNDEF && t < DT_COUNT ? map[t] : -1;
}
