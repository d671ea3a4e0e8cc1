/* core/arena: bump allocator in 4 KiB chunks, one per connection or
 * transaction; everything is freed at once (STYLE.md rule 13). */
#ifndef RINGMAIL_CORE_ARENA_H
#define RINGMAIL_CORE_ARENA_H

#include <stddef.h>

#define ARENA_CHUNK_SIZE 4096

struct arena_chunk;

struct arena {
	struct arena_chunk *head; /* newest chunk; older ones linked behind */
	size_t used;              /* bytes used in head */
	size_t total;             /* bytes allocated from the system */
};

/* Start an empty arena; allocates nothing until the first arena_alloc. */
void arena_init(struct arena *a);
/* Return @size bytes aligned to 16, or NULL when the system is out of
 * memory. Memory lives until arena_reset/arena_free. */
void *arena_alloc(struct arena *a, size_t size);
/* Like arena_alloc, zero-filled. */
void *arena_zalloc(struct arena *a, size_t size);
/* Copy @len bytes and a NUL terminator; NULL on OOM. */
char *arena_strndup(struct arena *a, const char *s, size_t len);
/* Free all but the first chunk and forget every allocation. */
void arena_reset(struct arena *a);
/* Release every chunk. The arena may be reused after arena_init. */
void arena_free(struct arena *a);

#endif
