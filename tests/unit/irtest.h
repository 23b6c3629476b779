/* Scaffolding shared by the unit tests that build IR graphs by hand: one
 * arena and graph per test (cmocka setup/teardown), a quiet Diag, and
 * compound-literal shorthands for dims, data and input lists. */
#ifndef POTC_IRTEST_H
#define POTC_IRTEST_H

#include "ir.h"

#define DIMS(...) ((const int64_t[]){__VA_ARGS__})
#define F32(...) ((const float[]){__VA_ARGS__})
#define I64(...) ((const int64_t[]){__VA_ARGS__})
#define I32(...) ((const int32_t[]){__VA_ARGS__})
#define U8(...) ((const uint8_t[]){__VA_ARGS__})
#define INS(...) ((const int[]){__VA_ARGS__})
#define NARGS(...) ((int)(sizeof((const int[]){__VA_ARGS__}) / sizeof(int)))

static Arena *arena;
static Graph *g;
static Diag diag;

static int setup(void **state)
{
	(void)state;
	arena = arena_new();
	g = ir_graph_new(arena, "t.onnx");
	g->opset = 17;
	diag_init(&diag);
	diag.quiet = 1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	arena_free(arena);
	return 0;
}

#endif
