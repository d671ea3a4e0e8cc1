/* tests/unit/testutil: helpers shared by the cmocka tests. */
#include "testutil.h"

/* system */
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* project */
#include "core/tls.h"

int testutil_backends(enum loop_backend out[2])
{
	const char *env = getenv("RINGMAIL_IO_BACKEND");
	int n = 0;

	if (env != NULL && strcmp(env, "epoll") == 0) {
		out[n++] = LOOP_BACKEND_EPOLL;
		return n;
	}
	if (env != NULL &&
	    (strcmp(env, "uring") == 0 || strcmp(env, "io_uring") == 0)) {
		out[n++] = LOOP_BACKEND_URING;
		return n;
	}
	if (loop_probe_kernel()->uring)
		out[n++] = LOOP_BACKEND_URING;
	out[n++] = LOOP_BACKEND_EPOLL;
	return n;
}

char *testutil_mkdtemp(const char *prefix)
{
	const char *tmp = getenv("TMPDIR");
	char path[512];

	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(path, sizeof(path), "%s/%s-XXXXXX", tmp, prefix);
	if (mkdtemp(path) == NULL)
		return NULL;
	return strdup(path);
}

static int testutil_rm_one(const char *path, const struct stat *st, int flag,
			   struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int testutil_rmtree(const char *path)
{
	return nftw(path, testutil_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int testutil_write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, data, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

const char *testutil_srcdir(void)
{
	const char *s = getenv("RINGMAIL_SRCDIR");

	return s != NULL ? s : ".";
}

int testutil_make_cert(const char *dir, const char *name, const char *cn)
{
	char crt[1024], key[1024];

	snprintf(crt, sizeof(crt), "%s/%s.crt", dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	return tls_selfsigned_write(crt, key, cn, NULL, 30);
}
