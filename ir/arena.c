/* One arena per compilation: a chain of blocks, bump-allocated, freed once.
 * Large requests get a block of their own so weights do not waste space. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

enum { BLOCK = 1 << 16, ALIGN = 16 };

typedef struct Block Block;
struct Block {
	Block *next;
	size_t used, cap;
	_Alignas(16) unsigned char mem[];
};

struct Arena {
	Block *head;
	size_t total;
};

static Block *block_new(size_t cap, Block *next)
{
	Block *b = malloc(sizeof *b + cap);
	if (!b) {
		fprintf(stderr, "potc: out of memory (%zu bytes)\n", cap);
		exit(70);
	}
	b->next = next;
	b->used = 0;
	b->cap = cap;
	return b;
}

Arena *arena_new(void)
{
	Arena *a = calloc(1, sizeof *a);
	if (!a) {
		fprintf(stderr, "potc: out of memory\n");
		exit(70);
	}
	return a;
}

void *arena_alloc(Arena *a, size_t n)
{
	n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	if (n == 0)
		n = ALIGN;
	Block *b = a->head;
	if (n > BLOCK / 4) {
		/* Big block goes behind the head so the head keeps its free space. */
		Block *big = block_new(n, b ? b->next : NULL);
		if (b)
			b->next = big;
		else
			a->head = big;
		big->used = n;
		a->total += n;
		memset(big->mem, 0, n);
		return big->mem;
	}
	if (!b || b->cap - b->used < n)
		a->head = b = block_new(BLOCK, b);
	void *p = b->mem + b->used;
	b->used += n;
	a->total += n;
	memset(p, 0, n);
	return p;
}

void *arena_dup(Arena *a, const void *p, size_t n)
{
	void *q = arena_alloc(a, n);
	if (n)
		memcpy(q, p, n);
	return q;
}

char *arena_strdup(Arena *a, const char *s)
{
	return arena_dup(a, s, strlen(s) + 1);
}

char *arena_printf(Arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *s = arena_alloc(a, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

size_t arena_used(const Arena *a)
{
	return a->total;
}

void arena_free(Arena *a)
{
	if (!a)
		return;
	for (Block *b = a->head, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	free(a);
}
