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
	size_t chunk;             /* chunk size; 0: ARENA_CHUNK_SIZE */
};

/* Start an empty arena; allocates nothing until the first arena_alloc. */
void arena_init(struct arena *a);
/* The same with chunks of @chunk bytes (a transaction that needs more
 * than 4 KiB every time keeps one bigger chunk across resets). */
void arena_init_chunk(struct arena *a, size_t chunk);
/* Return @size bytes aligned to 16, or NULL when the system is out of
 * memory. Memory lives until arena_reset/arena_free. */
void *arena_alloc(struct arena *a, size_t size);
/* Like arena_alloc, zero-filled. */
void *arena_zalloc(struct arena *a, size_t size);
/* Copy @len bytes and a NUL terminator; NULL on OOM. */
char *arena_strndup(struct arena *a, const char *s, size_t len);
/* Free all but one standard-size chunk and forget every allocation. */
void arena_reset(struct arena *a);
/* Release every chunk. The arena may be reused after arena_init. */
void arena_free(struct arena *a);

#endif
