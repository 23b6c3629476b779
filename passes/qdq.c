/* Placeholder until the Q/DQ import lands: a float model has nothing to
 * keep, so doing nothing is correct for it. */
#include "passes.h"

int pass_qdq(Graph *g, Diag *d)
{
	(void)g;
	(void)d;
	return 0;
}
