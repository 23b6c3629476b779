/* Integer Conv, Gemm and MatMul (stubs until written). */
#include "emit_impl.h"

int eq_conv(Ctx *c)
{
	return ec_fail(c, "not yet");
}

int eq_matmul(Ctx *c)
{
	return ec_fail(c, "not yet");
}
