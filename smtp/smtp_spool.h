/* smtp/smtp_spool: the body of one SMTP transaction as DATA brings it in:
 * on the heap up to mem_max octets (256 KiB), past that in an unlinked
 * temporary file (O_TMPFILE, else mkstemp + unlink; mode 0600) in the
 * spool directory, written with write(2) in chunks of SMTP_SPOOL_CHUNK.
 * So concurrent large messages cost a bounded amount of memory each.
 * The header section (up to and with the first empty line) stays in
 * memory for the header rewrite and bounces.
 *
 * No fsync: local mail is durable only once Dovecot answered LMTP 250,
 * and nothing reads a spool file after a restart (the file is unlinked
 * from the start). Writes go to the page cache, so they do not wait for
 * the disk; a loop thread may call this. Loop-thread only otherwise. */
#ifndef RINGMAIL_SMTP_SPOOL_H
#define RINGMAIL_SMTP_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A body above this goes to a file (when a spool directory is set). */
#define SMTP_SPOOL_MEM_DEFAULT (256u * 1024u)
/* File writes and reads go in pieces of this size. */
#define SMTP_SPOOL_CHUNK (64u * 1024u)

struct smtp_spool {
	const char *dir;  /* NULL: memory only (grows to the message limit) */
	uint32_t mem_max; /* memory part */
	uint32_t limit;   /* heap limit in memory-only mode */
	struct buf mem;   /* the body (memory), the header section (file) */
	struct buf wbuf;  /* file: octets not yet written */
	int fd;           /* -1: in memory */
	int err;          /* first write error (-errno), sticky */
	bool hdr_found;   /* file: the header section ended in mem_max */
	bool ended;
	uint64_t len; /* octets appended */
	uint64_t hdr_len;
	uint64_t files; /* bodies that went to a file (for tests) */
};

/* An empty spool; @dir must outlive it (NULL: memory only, up to @limit
 * octets); @mem_max 0: SMTP_SPOOL_MEM_DEFAULT. Allocates nothing. */
void smtp_spool_init(struct smtp_spool *sp, const char *dir, uint32_t mem_max,
		     uint32_t limit);
/* Forget the body (close its file); storage up to 64 KiB is kept. */
void smtp_spool_reset(struct smtp_spool *sp);
void smtp_spool_free(struct smtp_spool *sp);
/* Append body octets. 0, or <0 (-ENOBUFS over the memory-only limit,
 * -errno of the file): the body is lost, later appends are ignored. */
int smtp_spool_append(struct smtp_spool *sp, const void *p, size_t n);
/* The body is complete: write out what is pending, find the header
 * section. 0, or <0 as for append, or -EMSGSIZE: a body in a file whose
 * header section did not end within the memory part (552 5.3.4). */
int smtp_spool_end(struct smtp_spool *sp);

/* After smtp_spool_end: */
static inline uint64_t smtp_spool_size(const struct smtp_spool *sp)
{
	return sp->len;
}
/* The whole body when it is in memory; NULL when it is in a file. */
const uint8_t *smtp_spool_mem(const struct smtp_spool *sp);
/* The header section with its empty line (all of the body if there is
 * none); *@len_r its length. */
const uint8_t *smtp_spool_header(const struct smtp_spool *sp, size_t *len_r);
/* The file, or -1 for a body in memory. Read it with pread; it stays
 * open until reset (dup it to keep it longer). */
int smtp_spool_fd(const struct smtp_spool *sp);
/* Copy up to @n octets at @off into @buf (either kind of body). The
 * count, 0 at the end, or -errno. */
ssize_t smtp_spool_read(const struct smtp_spool *sp, uint64_t off, void *buf,
			size_t n);

/* The length of the header section of @p: up to and with the first empty
 * line (CRLF or LF), or @len when there is none. */
size_t smtp_spool_header_len(const uint8_t *p, size_t len, bool *found_r);

#ifdef __cplusplus
}
#endif

#endif
