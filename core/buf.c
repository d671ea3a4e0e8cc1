/* core/buf: byte buffer. */
#include "core/buf.h"

/* system */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, uint32_t max)
{
	b->data = NULL;
	b->head = b->len = b->cap = 0;
	b->max = max;
}

void buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b, b->max);
}

uint8_t *buf_reserve(struct buf *b, size_t n)
{
	size_t need, ncap;
	uint8_t *p;

	if (b->head + b->len + n <= b->cap)
		return b->data + b->head + b->len;
	need = (size_t)b->len + n;
	if (b->max != 0 && need > b->max)
		return NULL;
	if (need <= b->cap) {
		/* Enough room once the consumed head is reclaimed. */
		memmove(b->data, b->data + b->head, b->len);
		b->head = 0;
		return b->data + b->len;
	}
	ncap = b->cap ? b->cap : 1024;
	while (ncap < need)
		ncap *= 2;
	if (b->max != 0 && ncap > b->max)
		ncap = b->max;
	if (b->head != 0) {
		memmove(b->data, b->data + b->head, b->len);
		b->head = 0;
	}
	p = realloc(b->data, ncap);
	if (p == NULL)
		return NULL;
	b->data = p;
	b->cap = (uint32_t)ncap;
	return b->data + b->len;
}

void buf_commit(struct buf *b, size_t n)
{
	b->len += (uint32_t)n;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	uint8_t *dst;

	if (n == 0)
		return 0;
	if (b->max != 0 && (size_t)b->len + n > b->max)
		return -ENOBUFS;
	dst = buf_reserve(b, n);
	if (dst == NULL)
		return -ENOMEM;
	memcpy(dst, p, n);
	b->len += (uint32_t)n;
	return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	char small[512], *big;
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n < sizeof(small))
		return buf_append(b, small, (size_t)n);
	if (b->max != 0 && (size_t)b->len + (size_t)n > b->max)
		return -ENOBUFS;
	big = malloc((size_t)n + 1);
	if (big == NULL)
		return -ENOMEM;
	va_start(ap, fmt);
	(void)vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	r = buf_append(b, big, (size_t)n);
	free(big);
	return r;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->head = b->len = 0;
		return;
	}
	b->head += (uint32_t)n;
	b->len -= (uint32_t)n;
}

void buf_clear(struct buf *b)
{
	b->head = b->len = 0;
}
