/* Integer kernels: nodes with a QNode (docs/integer-semantics.md, "The
 * integer IR").  Every kernel computes exactly ir_qeval_node's formula
 * with the potc_fixed.h functions pasted at the top of a quantized model.c,
 * so the generated code is bit-identical to the integer evaluator.
 * Conv, Gemm and MatMul are in qkernels_conv.c. */
#include <stdlib.h>
#include <string.h>

#include "emit_impl.h"

int eq_kernel(Ctx *c)
{
	switch (c->n->op) {
	case OP_CONV: return eq_conv(c);
	case OP_GEMM: case OP_MATMUL: return eq_matmul(c);
	default:
		return ec_fail(c, "the C backend has no integer kernel for %s", ir_opname[c->n->op]);
	}
}
