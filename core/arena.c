/* core/arena: bump allocator. */
#include "core/arena.h"

/* system */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct arena_chunk {
	struct arena_chunk *next;
	size_t size; /* usable bytes in data[] */
	_Alignas(16) unsigned char data[];
};

void arena_init(struct arena *a)
{
	arena_init_chunk(a, ARENA_CHUNK_SIZE);
}

void arena_init_chunk(struct arena *a, size_t chunk)
{
	a->head = NULL;
	a->used = 0;
	a->total = 0;
	a->chunk = chunk > sizeof(struct arena_chunk) * 2 ? chunk
							  : ARENA_CHUNK_SIZE;
}

/* Usable bytes of a standard chunk of @a. */
static size_t arena_std_size(const struct arena *a)
{
	return (a->chunk != 0 ? a->chunk : ARENA_CHUNK_SIZE) -
	       sizeof(struct arena_chunk);
}

static struct arena_chunk *arena_chunk_new(const struct arena *a, size_t min)
{
	size_t size = arena_std_size(a);
	struct arena_chunk *c;

	if (min > size)
		size = min;
	c = malloc(sizeof(*c) + size);
	if (c == NULL)
		return NULL;
	c->next = NULL;
	c->size = size;
	return c;
}

void *arena_alloc(struct arena *a, size_t size)
{
	struct arena_chunk *c;
	size_t off;

	if (size > SIZE_MAX / 2)
		return NULL;
	size = (size + 15) & ~(size_t)15;
	if (a->head != NULL && a->head->size - a->used >= size) {
		off = a->used;
		a->used += size;
		return a->head->data + off;
	}
	c = arena_chunk_new(a, size);
	if (c == NULL)
		return NULL;
	a->total += c->size;
	if (a->head != NULL && size > arena_std_size(a) / 4 &&
	    a->head->size - a->used > size / 2) {
		/* A big block goes behind the head so the head's free
		 * space stays usable. */
		c->next = a->head->next;
		a->head->next = c;
		return c->data;
	}
	c->next = a->head;
	a->head = c;
	a->used = size;
	return c->data;
}

void *arena_zalloc(struct arena *a, size_t size)
{
	void *p = arena_alloc(a, size);

	if (p != NULL)
		memset(p, 0, size);
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t len)
{
	char *p = arena_alloc(a, len + 1);

	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void arena_reset(struct arena *a)
{
	struct arena_chunk *c, *next, *keep = NULL;

	for (c = a->head; c != NULL; c = next) {
		next = c->next;
		if (keep == NULL && c->size == arena_std_size(a))
			keep = c; /* one standard-size chunk stays */
		else
			free(c);
	}
	if (keep != NULL)
		keep->next = NULL;
	a->head = keep;
	a->used = 0;
	a->total = keep != NULL ? keep->size : 0;
}

void arena_free(struct arena *a)
{
	struct arena_chunk *c, *next;
	size_t chunk = a->chunk;

	for (c = a->head; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	arena_init_chunk(a, chunk);
}
