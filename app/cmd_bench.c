/* app/cmd_bench: `ringmail bench` runs the separate ringmail-bench
 * executable (bench/client, the client harness that makes PGP/MIME with
 * GPGME), so the daemon itself never links GPGME. The executable is
 * $RINGMAIL_BENCH_BIN when set, else ringmail-bench in the directory of
 * the running ringmail binary; it gets the same arguments. */
#include "app/cmds.h"

/* system */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMD_BENCH_BIN "ringmail-bench"

/* ringmail-bench next to the running binary (/proc/self/exe) into @buf.
 * 0, or -1 with errno set. */
static int cmd_bench_path(char *buf, size_t size)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;
	int len;

	if (n <= 0)
		return -1;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash == NULL) {
		errno = ENOENT;
		return -1;
	}
	*slash = '\0';
	len = snprintf(buf, size, "%s/" CMD_BENCH_BIN, self);
	if (len < 0 || (size_t)len >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int cmd_bench(int argc, char **argv)
{
	const char *env = getenv("RINGMAIL_BENCH_BIN");
	char path[PATH_MAX];
	int len;

	(void)argc;
	if (env != NULL && env[0] != '\0') {
		len = snprintf(path, sizeof(path), "%s", env);
		if (len < 0 || (size_t)len >= sizeof(path)) {
			fprintf(stderr, "ringmail bench: RINGMAIL_BENCH_BIN "
					"is too long\n");
			return 1;
		}
	} else if (cmd_bench_path(path, sizeof(path)) != 0) {
		fprintf(stderr,
			"ringmail bench: cannot find the ringmail binary's "
			"directory (/proc/self/exe): %s\n",
			strerror(errno));
		return 1;
	}
	execv(path, argv);
	fprintf(stderr,
		"ringmail bench: cannot run %s: %s (install " CMD_BENCH_BIN
		" next to ringmail, or set RINGMAIL_BENCH_BIN)\n",
		path, strerror(errno));
	return 1;
}
