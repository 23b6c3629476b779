/* Tensor name lookup for the importer.  Models have tens of thousands of
 * tensors, so a linear ir_find_tensor per edge would be quadratic.  Open
 * addressing with linear probing, kept at most half full, in the arena. */
#include <string.h>

#include "onnx_impl.h"

/* FNV-1a: short names, good enough spread, no allocation. */
static size_t hash(const char *s)
{
	size_t h = (size_t)14695981039346656037ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * (size_t)1099511628211ULL;
	return h;
}

static void alloc_table(NameMap *m, int cap)
{
	m->cap = cap;
	m->key = arena_alloc(m->arena, sizeof *m->key * (size_t)cap);
	m->val = arena_alloc(m->arena, sizeof *m->val * (size_t)cap);
}

void onnx_names_init(NameMap *m, Arena *a, size_t hint)
{
	int cap = 64;
	while ((size_t)cap < 2 * hint && cap < (1 << 30))
		cap *= 2;
	m->arena = a;
	m->n = 0;
	alloc_table(m, cap);
}

/* Slot holding name, or the empty slot where it would go. */
static int slot(const NameMap *m, const char *name)
{
	size_t mask = (size_t)m->cap - 1;
	size_t i = hash(name) & mask;
	while (m->key[i] && strcmp(m->key[i], name) != 0)
		i = (i + 1) & mask;
	return (int)i;
}

int onnx_names_get(const NameMap *m, const char *name)
{
	int i = slot(m, name);
	return m->key[i] ? m->val[i] : -1;
}

/* The old table is left in the arena: growth doubles, so the waste is
 * bounded by the final size. */
static void grow(NameMap *m)
{
	const char **key = m->key;
	int *val = m->val, cap = m->cap;
	alloc_table(m, cap * 2);
	for (int i = 0; i < cap; i++) {
		if (key[i]) {
			int j = slot(m, key[i]);
			m->key[j] = key[i];
			m->val[j] = val[i];
		}
	}
}

int onnx_names_put(NameMap *m, const char *name, int id)
{
	int i = slot(m, name);
	if (m->key[i])
		return m->val[i];
	if (2 * (m->n + 1) > m->cap) {
		grow(m);
		i = slot(m, name);
	}
	m->key[i] = name;
	m->val[i] = id;
	m->n++;
	return -1;
}
