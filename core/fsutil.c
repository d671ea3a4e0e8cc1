/* core/fsutil: durable file writes (the contract is in the header).
 *
 * Everything after the split of @path works relative to one directory
 * descriptor, so the temporary file, the rename and the directory fsync
 * all concern the same directory even if a path component is renamed
 * meanwhile. */
#include "core/fsutil.h"

/* system */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FSUTIL_TMP_SUFFIX ".tmp."
#define FSUTIL_TMP_RAND   6
#define FSUTIL_TMP_TRIES  16

static const char fsutil_alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";

/* Six random characters; getrandom, or the clock and a counter when
 * the pool is not ready (O_EXCL makes any name safe, only not unique). */
static void fsutil_tmp_rand(char out[FSUTIL_TMP_RAND])
{
	static _Atomic unsigned seq;
	uint8_t r[FSUTIL_TMP_RAND];
	struct timespec ts;

	if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		uint64_t v;

		clock_gettime(CLOCK_REALTIME, &ts);
		v = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32) ^
		    ((uint64_t)seq++ * 0x9e3779b97f4a7c15ull);
		for (int i = 0; i < FSUTIL_TMP_RAND; i++)
			r[i] = (uint8_t)(v >> (8 * i));
	}
	for (int i = 0; i < FSUTIL_TMP_RAND; i++)
		out[i] = fsutil_alnum[r[i] % (sizeof(fsutil_alnum) - 1)];
}

bool fsutil_is_temp_name(const char *name)
{
	size_t len = strlen(name), sl = sizeof(FSUTIL_TMP_SUFFIX) - 1;
	const char *p;

	if (len <= sl + FSUTIL_TMP_RAND)
		return false;
	p = name + len - FSUTIL_TMP_RAND - sl;
	if (memcmp(p, FSUTIL_TMP_SUFFIX, sl) != 0)
		return false;
	for (p += sl; *p != '\0'; p++) {
		if (strchr(fsutil_alnum, *p) == NULL)
			return false;
	}
	return true;
}

/* Open @path's directory; *base_r points into @path. -errno. */
static int fsutil_open_dir(const char *path, const char **base_r)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	size_t dlen;
	int fd;

	if (slash == NULL) {
		*base_r = path;
		snprintf(dir, sizeof(dir), ".");
	} else {
		*base_r = slash + 1;
		dlen = slash == path ? 1 : (size_t)(slash - path);
		if (dlen >= sizeof(dir))
			return -ENAMETOOLONG;
		memcpy(dir, path, dlen);
		dir[dlen] = '\0';
	}
	if (**base_r == '\0' || strcmp(*base_r, ".") == 0 ||
	    strcmp(*base_r, "..") == 0)
		return -EISDIR;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Create the temporary file next to @base; its name goes to @tmp. */
static int fsutil_create_tmp(int dfd, const char *base, char *tmp, size_t tmpsz)
{
	char rnd[FSUTIL_TMP_RAND];
	int n, fd;

	for (int i = 0; i < FSUTIL_TMP_TRIES; i++) {
		fsutil_tmp_rand(rnd);
		n = snprintf(tmp, tmpsz, "%s" FSUTIL_TMP_SUFFIX "%.*s", base,
			     FSUTIL_TMP_RAND, rnd);
		if (n < 0 || (size_t)n >= tmpsz)
			return -ENAMETOOLONG;
		fd = openat(dfd, tmp,
			    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
				    O_NOFOLLOW,
			    0600);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

static int fsutil_write_all(int fd, const struct iovec *iov, size_t iovcnt)
{
	for (size_t i = 0; i < iovcnt; i++) {
		const char *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;

		while (left > 0) {
			ssize_t w = write(fd, p, left);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -errno;
			if (w == 0)
				return -EIO;
			p += w;
			left -= (size_t)w;
		}
	}
	return 0;
}

/* Put the synced temporary file in place of @base. */
static int fsutil_install(int dfd, const char *tmp, const char *base,
			  unsigned flags)
{
	if (flags & FSUTIL_F_NOREPLACE) {
		if (linkat(dfd, tmp, dfd, base, 0) < 0)
			return -errno;
		/* Both names are the same complete file now; only the
		 * temporary one goes. */
		(void)unlinkat(dfd, tmp, 0);
		return 0;
	}
	return renameat(dfd, tmp, dfd, base) < 0 ? -errno : 0;
}

int fsutil_write_filev(const char *path, const struct iovec *iov, size_t iovcnt,
		       const struct fsutil_opts *o)
{
	char tmp[NAME_MAX + 1];
	const char *base;
	int dfd, fd, r;

	dfd = fsutil_open_dir(path, &base);
	if (dfd < 0)
		return dfd;
	fd = fsutil_create_tmp(dfd, base, tmp, sizeof(tmp));
	if (fd < 0) {
		close(dfd);
		return fd;
	}
	/* Owner first: changing it may clear set-id bits of the mode. */
	r = 0;
	if ((o->uid != (uid_t)-1 || o->gid != (gid_t)-1) &&
	    fchown(fd, o->uid, o->gid) < 0)
		r = -errno;
	if (r == 0 && fchmod(fd, o->mode) < 0)
		r = -errno;
	if (r == 0)
		r = fsutil_write_all(fd, iov, iovcnt);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0)
		r = fsutil_install(dfd, tmp, base, o->flags);
	if (r < 0) {
		(void)unlinkat(dfd, tmp, 0);
		close(dfd);
		return r;
	}
	/* The rename itself is durable only once the directory is. Some
	 * file systems cannot sync a directory (EINVAL): nothing to do. */
	if (fsync(dfd) < 0 && errno != EINVAL)
		r = -errno;
	close(dfd);
	return r;
}

int fsutil_write_file(const char *path, const void *data, size_t len,
		      const struct fsutil_opts *o)
{
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};

	return fsutil_write_filev(path, &iov, 1, o);
}
