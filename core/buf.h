/* core/buf: a byte buffer with a consumed head (STYLE.md rule 14).
 * Invariant: head + len <= cap; bytes live in data[head .. head+len). */
#ifndef RINGMAIL_CORE_BUF_H
#define RINGMAIL_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;
	uint32_t head, len, cap;
	uint32_t max; /* growth limit; 0 = cap is fixed */
};

/* Empty buffer that grows by malloc up to @max bytes. */
void buf_init(struct buf *b, uint32_t max);
/* Release the storage. */
void buf_free(struct buf *b);
/* Append @n bytes; returns 0, or -ENOBUFS when @max would be exceeded
 * (nothing is appended), or -ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);
/* Make room for @n more bytes at the tail; returns a pointer to write to,
 * or NULL. Call buf_commit with what was written. */
uint8_t *buf_reserve(struct buf *b, size_t n);
void buf_commit(struct buf *b, size_t n);
/* Append printf output (no NUL). 0, -ENOBUFS past @max (nothing is
 * appended), -ENOMEM, or -EINVAL for a bad format. */
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Drop @n bytes from the front. */
void buf_consume(struct buf *b, size_t n);
/* Forget the content (keeps storage). */
void buf_clear(struct buf *b);

static inline uint8_t *buf_head(const struct buf *b)
{
	return b->data + b->head;
}

#endif
