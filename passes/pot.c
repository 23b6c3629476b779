/* Placeholder until pass_pot lands: without its options there is nothing
 * to do, so doing nothing is correct. */
#include "passes.h"

int pass_pot(Graph *g, Diag *d)
{
	(void)g;
	(void)d;
	return 0;
}
