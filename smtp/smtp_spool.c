/* smtp/smtp_spool: memory first, an unlinked file past mem_max. */
#include "smtp/smtp_spool.h"

/* system */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* project */
#include "core/log.h"

/* Storage a reset keeps for the next message (STYLE rule 13: no malloc
 * per message for the common, small ones). */
#define SMTP_SPOOL_KEEP (64u * 1024u)

size_t smtp_spool_header_len(const uint8_t *p, size_t len, bool *found_r)
{
	size_t i = 0;
	const uint8_t *lf;

	while (i < len) {
		if (p[i] == '\n') {
			*found_r = true;
			return i + 1;
		}
		if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n') {
			*found_r = true;
			return i + 2;
		}
		lf = memchr(p + i, '\n', len - i);
		if (lf == NULL)
			break;
		i = (size_t)(lf - p) + 1;
	}
	*found_r = false;
	return len;
}

void smtp_spool_init(struct smtp_spool *sp, const char *dir, uint32_t mem_max,
		     uint32_t limit)
{
	memset(sp, 0, sizeof(*sp));
	sp->dir = dir;
	sp->mem_max = mem_max != 0 ? mem_max : SMTP_SPOOL_MEM_DEFAULT;
	sp->limit = limit;
	sp->fd = -1;
	buf_init(&sp->mem, dir != NULL ? sp->mem_max : limit);
	buf_init(&sp->wbuf, SMTP_SPOOL_CHUNK);
}

void smtp_spool_reset(struct smtp_spool *sp)
{
	if (sp->fd >= 0)
		close(sp->fd);
	sp->fd = -1;
	sp->err = 0;
	sp->hdr_found = false;
	sp->ended = false;
	sp->len = 0;
	sp->hdr_len = 0;
	buf_clear(&sp->mem);
	buf_clear(&sp->wbuf);
	/* Keep big buffers from living on in idle sessions. */
	if (sp->mem.cap > SMTP_SPOOL_KEEP)
		buf_free(&sp->mem);
	buf_free(&sp->wbuf);
}

void smtp_spool_free(struct smtp_spool *sp)
{
	smtp_spool_reset(sp);
	buf_free(&sp->mem);
}

/* An unlinked file in sp->dir: O_TMPFILE where the file system has it,
 * else a named one removed at once. */
static int smtp_spool_open(struct smtp_spool *sp)
{
	char path[4096];
	int fd, n;

	fd = open(sp->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
		return -errno;
	n = snprintf(path, sizeof(path), "%s/body.XXXXXX", sp->dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (unlink(path) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static int smtp_spool_write_all(int fd, const uint8_t *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int smtp_spool_fail(struct smtp_spool *sp, int err)
{
	if (sp->err == 0) {
		sp->err = err;
		if (err != -ENOBUFS)
			log_warn("smtp spool dir=%s error=\"%s\"",
				 sp->dir != NULL ? sp->dir : "",
				 strerror(-err));
	}
	return err;
}

/* The memory part is full: from now on the body goes to a file. */
static int smtp_spool_to_file(struct smtp_spool *sp)
{
	bool found;
	int fd, r;

	fd = smtp_spool_open(sp);
	if (fd < 0)
		return fd;
	r = smtp_spool_write_all(fd, buf_head(&sp->mem), sp->mem.len);
	if (r < 0) {
		close(fd);
		return r;
	}
	sp->fd = fd;
	sp->files++;
	sp->hdr_len =
		smtp_spool_header_len(buf_head(&sp->mem), sp->mem.len, &found);
	sp->hdr_found = found;
	/* Only the header section is kept in memory. */
	sp->mem.len = found ? (uint32_t)sp->hdr_len : 0;
	return 0;
}

int smtp_spool_append(struct smtp_spool *sp, const void *p, size_t n)
{
	const uint8_t *q = p;
	size_t k;
	int r;

	if (sp->err != 0)
		return sp->err;
	if (sp->fd < 0) {
		if (sp->dir == NULL || sp->mem.len + n <= sp->mem_max) {
			r = buf_append(&sp->mem, q, n);
			if (r < 0)
				return smtp_spool_fail(sp, r);
			sp->len += n;
			return 0;
		}
		k = sp->mem_max - sp->mem.len;
		r = buf_append(&sp->mem, q, k);
		if (r == 0)
			r = smtp_spool_to_file(sp);
		if (r < 0)
			return smtp_spool_fail(sp, r);
		sp->len += k;
		q += k;
		n -= k;
	}
	while (n > 0) {
		k = SMTP_SPOOL_CHUNK - sp->wbuf.len;
		if (k > n)
			k = n;
		r = buf_append(&sp->wbuf, q, k);
		if (r < 0)
			return smtp_spool_fail(sp, r);
		sp->len += k;
		q += k;
		n -= k;
		if (sp->wbuf.len == SMTP_SPOOL_CHUNK) {
			r = smtp_spool_write_all(sp->fd, buf_head(&sp->wbuf),
						 sp->wbuf.len);
			if (r < 0)
				return smtp_spool_fail(sp, r);
			buf_clear(&sp->wbuf);
		}
	}
	return 0;
}

int smtp_spool_end(struct smtp_spool *sp)
{
	bool found;
	int r;

	if (sp->err != 0)
		return sp->err;
	sp->ended = true;
	if (sp->fd < 0) {
		sp->hdr_len = smtp_spool_header_len(buf_head(&sp->mem),
						    sp->mem.len, &found);
		return 0;
	}
	if (sp->wbuf.len > 0) {
		r = smtp_spool_write_all(sp->fd, buf_head(&sp->wbuf),
					 sp->wbuf.len);
		if (r < 0)
			return smtp_spool_fail(sp, r);
	}
	buf_free(&sp->wbuf);
	return sp->hdr_found ? 0 : -EMSGSIZE;
}

const uint8_t *smtp_spool_mem(const struct smtp_spool *sp)
{
	if (sp->fd >= 0)
		return NULL;
	return sp->mem.len > 0 ? buf_head(&sp->mem) : (const uint8_t *)"";
}

const uint8_t *smtp_spool_header(const struct smtp_spool *sp, size_t *len_r)
{
	*len_r = (size_t)sp->hdr_len;
	return sp->mem.len > 0 ? buf_head(&sp->mem) : (const uint8_t *)"";
}

int smtp_spool_fd(const struct smtp_spool *sp)
{
	return sp->fd;
}

ssize_t smtp_spool_read(const struct smtp_spool *sp, uint64_t off, void *buf,
			size_t n)
{
	ssize_t r;

	if (off >= sp->len)
		return 0;
	if (n > sp->len - off)
		n = (size_t)(sp->len - off);
	if (sp->fd < 0) {
		memcpy(buf, buf_head(&sp->mem) + off, n);
		return (ssize_t)n;
	}
	do {
		r = pread(sp->fd, buf, n, (off_t)off);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}
