/* tests/unit/testutil: helpers shared by the cmocka tests. */
#ifndef RINGMAIL_TESTUTIL_H
#define RINGMAIL_TESTUTIL_H

#include <stddef.h>

#include "core/loop.h"

/* The backends a loop test must run on: RINGMAIL_IO_BACKEND=uring|epoll
 * selects one; unset means both (uring only where the kernel allows).
 * Fills @out (up to 2) and returns the count. */
int testutil_backends(enum loop_backend out[2]);
/* Make a fresh directory under $TMPDIR (or /tmp); returns a malloc'd
 * path. Removed by testutil_rmtree. */
char *testutil_mkdtemp(const char *prefix);
int testutil_rmtree(const char *path);
/* Write @len bytes to @path; 0 or -1. */
int testutil_write_file(const char *path, const void *data, size_t len);
/* The source tree root ($RINGMAIL_SRCDIR or "."). */
const char *testutil_srcdir(void);
/* Create a self-signed certificate and key (P-256) for @cn in @dir as
 * <name>.crt and <name>.key (OpenSSL API, no external tool); 0 or -1. */
int testutil_make_cert(const char *dir, const char *name, const char *cn);

#endif
