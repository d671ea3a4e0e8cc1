/* core/fsutil: durable file writes.
 *
 * fsutil_write_file replaces (or creates) a whole file so that @path
 * names either the complete old file or the complete new one at every
 * moment, also when the process is killed at any point, and after a
 * crash of the machine on a file system that honours fsync. The steps:
 * a fresh temporary file "<path>.tmp.XXXXXX" in the same directory
 * (O_CREAT|O_EXCL|O_CLOEXEC|O_NOFOLLOW, mode 0600), its owner and exact
 * mode set before any content, every octet written, fsync, close, rename
 * over @path (or link for FSUTIL_F_NOREPLACE), fsync of the directory.
 *
 * On an error before the rename the temporary file is unlinked and @path
 * is untouched. A process killed between creating and renaming leaves a
 * temporary file (a name ending in ".tmp.XXXXXX") that never replaces
 * anything. Blocking (fsync): never on a loop thread of `serve`. */
#ifndef RINGMAIL_CORE_FSUTIL_H
#define RINGMAIL_CORE_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Fail with -EEXIST when @path exists (linked into place, not renamed). */
#define FSUTIL_F_NOREPLACE 0x1u

struct fsutil_opts {
	mode_t mode; /* the new file's exact mode (the umask is not applied) */
	uid_t uid;   /* owner, (uid_t)-1 = the writer's */
	gid_t gid;   /* group, (gid_t)-1 = the writer's */
	unsigned flags; /* FSUTIL_F_* */
};

/* Options for @mode, owner and group left as they come, no flags. */
#define FSUTIL_OPTS(m)         \
	((struct fsutil_opts){ \
		.mode = (m), .uid = (uid_t)-1, .gid = (gid_t)-1, .flags = 0})

/* Atomically make @path hold @len octets of @data (see above). 0 when
 * the new file is in place and synced; -errno otherwise: -EEXIST
 * (NOREPLACE), and an error after the rename (the directory fsync) means
 * the new file is in place but perhaps not yet durable. */
int fsutil_write_file(const char *path, const void *data, size_t len,
		      const struct fsutil_opts *o);
/* The same with the content gathered from @iov[0..@iovcnt). */
int fsutil_write_filev(const char *path, const struct iovec *iov, size_t iovcnt,
		       const struct fsutil_opts *o);
/* true when @name (a directory entry) is one of our temporary names for
 * some file: "<anything>.tmp.XXXXXX" with six characters of [a-z0-9]. */
bool fsutil_is_temp_name(const char *name);

#endif
