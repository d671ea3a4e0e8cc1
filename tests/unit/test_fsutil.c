/* tests/unit/test_fsutil: core/fsutil's atomic write on a real file
 * system. Content, exact mode, owner, NOREPLACE, failures that leave the
 * old file and no temporary file (a directory in the way, a file size
 * limit hit in the middle of the write, a missing directory, a name too
 * long), and two crash tests with no hook in the code under test:
 * - a traced child is stopped at every system call entry and exit of
 *   one write and SIGKILLed there, one run per stop: the target holds the
 *   complete old content up to the rename and the complete new content
 *   from the rename on, and the calls come in the contract's order
 *   (O_EXCL create, write, fsync, rename, directory fsync);
 * - 200 children writing 4 MiB are SIGKILLed after random delays
 *   spanning the whole write: each time the target is complete, old or
 *   new. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

/* system */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* project */
#include "core/fsutil.h"

struct fx {
	char *dir;
	char path[512];
};

static struct fx *fx_new(void)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->dir = testutil_mkdtemp("test_fsutil");
	assert_non_null(f->dir);
	snprintf(f->path, sizeof(f->path), "%s/target", f->dir);
	return f;
}

static void fx_free(struct fx *f)
{
	testutil_rmtree(f->dir);
	free(f->dir);
	free(f);
}

/* Whole file, malloc'd and NUL-terminated; NULL if missing. */
static char *slurp(const char *path, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 4096, len = 0;
	char *buf;
	ssize_t n;

	if (fd < 0)
		return NULL;
	buf = malloc(cap + 1);
	assert_non_null(buf);
	while ((n = read(fd, buf + len, cap - len)) > 0) {
		len += (size_t)n;
		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			assert_non_null(buf);
		}
	}
	assert_true(n == 0);
	close(fd);
	buf[len] = '\0';
	if (len_r != NULL)
		*len_r = len;
	return buf;
}

/* Entries of @dir other than "target"; temporary ones counted apart. */
static unsigned dir_others(const char *dir, unsigned *temps_r, bool remove)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned n = 0, temps = 0;
	char p[1024];

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 ||
		    strcmp(de->d_name, "target") == 0)
			continue;
		n++;
		if (fsutil_is_temp_name(de->d_name) &&
		    strncmp(de->d_name, "target.tmp.", 11) == 0) {
			temps++;
			if (remove) {
				snprintf(p, sizeof(p), "%s/%s", dir,
					 de->d_name);
				unlink(p);
			}
		}
	}
	closedir(d);
	if (temps_r != NULL)
		*temps_r = temps;
	return n;
}

static int write_str(const char *path, const char *s, mode_t mode,
		     unsigned flags)
{
	struct fsutil_opts o = FSUTIL_OPTS(mode);

	o.flags = flags;
	return fsutil_write_file(path, s, strlen(s), &o);
}

/* ---- contract */

static void test_create_and_replace(void **state)
{
	struct fx *f = fx_new();
	char old_link[600], *s;
	struct stat st, st2;
	mode_t um = umask(077);
	int fd;

	(void)state;
	assert_int_equal(write_str(f->path, "first\n", 0640, 0), 0);
	s = slurp(f->path, NULL);
	assert_string_equal(s, "first\n");
	free(s);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640); /* umask not applied */
	assert_int_equal(dir_others(f->dir, NULL, false), 0);
	/* Replace: a new inode, so whoever holds the old one (an open fd,
	 * a hard link) still sees the complete old content. */
	snprintf(old_link, sizeof(old_link), "%s/old-link", f->dir);
	assert_int_equal(link(f->path, old_link), 0);
	fd = open(f->path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write_str(f->path, "second, longer\n", 0604, 0), 0);
	s = slurp(f->path, NULL);
	assert_string_equal(s, "second, longer\n");
	free(s);
	assert_int_equal(stat(f->path, &st2), 0);
	assert_int_equal(st2.st_mode & 07777, 0604);
	assert_true(st2.st_ino != st.st_ino);
	s = slurp(old_link, NULL);
	assert_string_equal(s, "first\n");
	free(s);
	{
		char buf[32] = {0};

		assert_int_equal(read(fd, buf, sizeof(buf) - 1), 6);
		assert_string_equal(buf, "first\n");
	}
	close(fd);
	unlink(old_link);
	/* Empty content, gathered content. */
	assert_int_equal(write_str(f->path, "", 0600, 0), 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, 0);
	{
		struct iovec iov[3] = {{(void *)"ab", 2},
				       {(void *)"", 0},
				       {(void *)"cde\n", 4}};
		struct fsutil_opts o = FSUTIL_OPTS(0600);

		assert_int_equal(fsutil_write_filev(f->path, iov, 3, &o), 0);
		s = slurp(f->path, NULL);
		assert_string_equal(s, "abcde\n");
		free(s);
	}
	/* A relative path (no directory part). */
	{
		char cwd[PATH_MAX];

		assert_non_null(getcwd(cwd, sizeof(cwd)));
		assert_int_equal(chdir(f->dir), 0);
		assert_int_equal(write_str("target", "relative\n", 0600, 0), 0);
		assert_int_equal(chdir(cwd), 0);
		s = slurp(f->path, NULL);
		assert_string_equal(s, "relative\n");
		free(s);
	}
	assert_int_equal(dir_others(f->dir, NULL, false), 0);
	umask(um);
	fx_free(f);
}

static void test_owner(void **state)
{
	struct fx *f = fx_new();
	struct fsutil_opts o = FSUTIL_OPTS(0640);
	struct stat st;

	(void)state;
	/* Our own ids always work. */
	o.uid = geteuid();
	o.gid = getegid();
	assert_int_equal(fsutil_write_file(f->path, "x", 1, &o), 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_uid, geteuid());
	if (geteuid() == 0) {
		/* As root: a group only (as dovecot_conf does), then both. */
		o = FSUTIL_OPTS(0640);
		o.gid = 65534;
		assert_int_equal(fsutil_write_file(f->path, "y", 1, &o), 0);
		assert_int_equal(stat(f->path, &st), 0);
		assert_int_equal(st.st_uid, 0);
		assert_int_equal(st.st_gid, 65534);
		assert_int_equal(st.st_mode & 07777, 0640);
		o.uid = 65534;
		assert_int_equal(fsutil_write_file(f->path, "z", 1, &o), 0);
		assert_int_equal(stat(f->path, &st), 0);
		assert_int_equal(st.st_uid, 65534);
	} else {
		/* Not root: giving the file away fails, the old one stays. */
		o.uid = geteuid() + 1;
		assert_int_equal(fsutil_write_file(f->path, "y", 1, &o),
				 -EPERM);
		assert_int_equal(stat(f->path, &st), 0);
		assert_int_equal(st.st_size, 1);
	}
	assert_int_equal(dir_others(f->dir, NULL, false), 0);
	fx_free(f);
}

static void test_noreplace(void **state)
{
	struct fx *f = fx_new();
	struct stat st;
	char *s;

	(void)state;
	assert_int_equal(write_str(f->path, "key\n", 0600, FSUTIL_F_NOREPLACE),
			 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_nlink, 1); /* the temporary name is gone */
	assert_int_equal(
		write_str(f->path, "other\n", 0600, FSUTIL_F_NOREPLACE),
		-EEXIST);
	s = slurp(f->path, NULL);
	assert_string_equal(s, "key\n");
	free(s);
	assert_int_equal(dir_others(f->dir, NULL, false), 0);
	fx_free(f);
}

static void test_failures(void **state)
{
	struct fx *f = fx_new();
	char p[1024], name[300], *s;
	struct stat st;
	unsigned temps;
	pid_t pid;
	int status;

	(void)state;
	/* No such directory. */
	snprintf(p, sizeof(p), "%s/nodir/target", f->dir);
	assert_int_equal(write_str(p, "x", 0600, 0), -ENOENT);
	/* Names that are not files. */
	snprintf(p, sizeof(p), "%s/", f->dir);
	assert_int_equal(write_str(p, "x", 0600, 0), -EISDIR);
	snprintf(p, sizeof(p), "%s/..", f->dir);
	assert_int_equal(write_str(p, "x", 0600, 0), -EISDIR);
	/* A name too long for a temporary name next to it. */
	memset(name, 'n', 250);
	name[250] = '\0';
	snprintf(p, sizeof(p), "%s/%s", f->dir, name);
	assert_int_equal(write_str(p, "x", 0600, 0), -ENAMETOOLONG);
	assert_int_equal(dir_others(f->dir, NULL, false), 0);
	/* A directory in the way: everything up to the rename worked, the
	 * rename fails; the directory and its content stay, no temp. */
	assert_int_equal(mkdir(f->path, 0700), 0);
	snprintf(p, sizeof(p), "%s/inside", f->path);
	assert_int_equal(testutil_write_file(p, "in", 2), 0);
	assert_int_equal(write_str(f->path, "x", 0600, 0), -EISDIR);
	assert_int_equal(write_str(f->path, "x", 0600, FSUTIL_F_NOREPLACE),
			 -EEXIST);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(dir_others(f->dir, NULL, false), 0);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(rmdir(f->path), 0);
	/* The file size limit hit in the middle of writing 1 MiB (in a
	 * child: the limit is per process): -EFBIG, old file intact. */
	assert_int_equal(write_str(f->path, "old\n", 0600, 0), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = {64 << 10, 64 << 10};
		size_t len = 1 << 20;
		char *big = malloc(len);
		struct fsutil_opts o = FSUTIL_OPTS(0600);
		int r;

		signal(SIGXFSZ, SIG_IGN);
		if (big == NULL || setrlimit(RLIMIT_FSIZE, &rl) < 0)
			_exit(90);
		memset(big, 'b', len);
		r = fsutil_write_file(f->path, big, len, &o);
		_exit(r == -EFBIG ? 0 : 91);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	s = slurp(f->path, NULL);
	assert_string_equal(s, "old\n");
	free(s);
	assert_int_equal(dir_others(f->dir, &temps, false), 0);
	fx_free(f);
}

static void test_temp_name(void **state)
{
	(void)state;
	assert_true(fsutil_is_temp_name("a.conf.tmp.abc123"));
	assert_true(fsutil_is_temp_name("x.tmp.zzzzzz"));
	assert_false(fsutil_is_temp_name(".tmp.abc123"));
	assert_false(fsutil_is_temp_name("a.conf.tmp.ABC123"));
	assert_false(fsutil_is_temp_name("a.conf.tmp.abc12"));
	assert_false(fsutil_is_temp_name("a.conf.tmp.abc1234"));
	assert_false(fsutil_is_temp_name("a.conf"));
	assert_false(fsutil_is_temp_name("a.tmpXabc123"));
}

/* ---- content by version: a header and a pattern, checkable whole */

static void fill(char *buf, size_t len, unsigned version)
{
	int n = snprintf(buf, len, "version %08u\n", version);

	for (size_t i = (size_t)n; i < len; i++)
		buf[i] = (char)('a' + (i * 7 + version * 13) % 26);
}

/* The version @path holds, complete; -1 if it is anything else. */
static long check_version(const char *path, size_t want_len, char *scratch)
{
	size_t len;
	char *s = slurp(path, &len);
	unsigned v;
	long r = -1;

	if (s == NULL)
		return -1;
	if (len == want_len && sscanf(s, "version %08u\n", &v) == 1) {
		fill(scratch, len, v);
		if (memcmp(s, scratch, len) == 0)
			r = v;
	}
	free(s);
	return r;
}

/* ---- crash test 1: killed at every system call of one write */

#define TRACE_LEN  (256u << 10)
#define TRACE_MAX  256
#define TRACE_DONE (-1)
#define TRACE_NONE (-2) /* ptrace is not permitted here */

struct sc {
	bool entry;
	unsigned long nr;
	unsigned long long args[3];
	long long rval;
};

/* Run one write of version 2 over version 1 in a traced child; kill it
 * at stop @kill_at (1-based; 0 = never). Records the stops in @sc when
 * given. Returns the number of stops seen, TRACE_DONE if the child
 * completed and exited 0, or TRACE_NONE. */
static int traced_write(const char *path, const char *data, int kill_at,
			struct sc *sc, int *nsc_r)
{
	int status, stops = 0, sig = 0;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct fsutil_opts o = FSUTIL_OPTS(0600);

		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0)
			_exit(90);
		raise(SIGSTOP);
		_exit(fsutil_write_file(path, data, TRACE_LEN, &o) == 0 ? 0
									: 91);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 90)
		return TRACE_NONE;
	assert_true(WIFSTOPPED(status));
	assert_int_equal(ptrace(PTRACE_SETOPTIONS, pid, NULL,
				(void *)(long)(PTRACE_O_TRACESYSGOOD |
					       PTRACE_O_EXITKILL)),
			 0);
	for (;;) {
		assert_int_equal(
			ptrace(PTRACE_SYSCALL, pid, NULL, (void *)(long)sig),
			0);
		sig = 0;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (WIFEXITED(status)) {
			assert_int_equal(WEXITSTATUS(status), 0);
			if (nsc_r != NULL)
				*nsc_r = stops;
			return TRACE_DONE;
		}
		assert_true(WIFSTOPPED(status));
		if (WSTOPSIG(status) != (SIGTRAP | 0x80)) {
			sig = WSTOPSIG(status); /* pass it on */
			continue;
		}
		if (sc != NULL && stops < TRACE_MAX) {
			struct __ptrace_syscall_info in;
			struct sc *x = &sc[stops];

			memset(&in, 0, sizeof(in));
			assert_true(ptrace(PTRACE_GET_SYSCALL_INFO, pid,
					   (void *)sizeof(in), &in) > 0);
			x->entry = in.op == PTRACE_SYSCALL_INFO_ENTRY;
			if (x->entry) {
				x->nr = (unsigned long)in.entry.nr;
				for (int i = 0; i < 3; i++)
					x->args[i] = in.entry.args[i];
			} else if (in.op == PTRACE_SYSCALL_INFO_EXIT) {
				x->rval = in.exit.rval;
				if (stops > 0)
					x->nr = sc[stops - 1].nr;
			}
		}
		stops++;
		if (stops == kill_at) {
			kill(pid, SIGKILL);
			assert_int_equal(waitpid(pid, &status, 0), pid);
			assert_true(WIFSIGNALED(status));
			return stops;
		}
	}
}

static bool is_rename(unsigned long nr)
{
#ifdef SYS_renameat
	if (nr == SYS_renameat)
		return true;
#endif
	return nr == SYS_renameat2;
}

static void test_crash_every_syscall(void **state)
{
	struct fx *f = fx_new();
	char *v1 = malloc(TRACE_LEN), *v2 = malloc(TRACE_LEN);
	char *scratch = malloc(TRACE_LEN);
	struct sc *sc = calloc(TRACE_MAX, sizeof(*sc));
	int r, total, create_exit = -1, write_at = -1, fsync_file = -1;
	int rename_entry = -1, fsync_dir = -1, first_new = -1;
	long long tmpfd = -1, dirfd = -1;
	struct fsutil_opts o = FSUTIL_OPTS(0600);
	unsigned temps;

	(void)state;
	assert_non_null(v1);
	assert_non_null(v2);
	assert_non_null(scratch);
	assert_non_null(sc);
	fill(v1, TRACE_LEN, 1);
	fill(v2, TRACE_LEN, 2);
	assert_int_equal(fsutil_write_file(f->path, v1, TRACE_LEN, &o), 0);
	/* A full run, recording every stop. */
	r = traced_write(f->path, v2, 0, sc, &total);
	if (r == TRACE_NONE) {
		print_message("  ptrace not permitted here, skipped\n");
		fx_free(f);
		skip();
	}
	assert_int_equal(r, TRACE_DONE);
	assert_true(total < TRACE_MAX);
	assert_int_equal(check_version(f->path, TRACE_LEN, scratch), 2);
	/* The order the contract promises. */
	for (int i = 0; i < total; i++) {
		if (!sc[i].entry)
			continue;
		if (sc[i].nr == SYS_openat && (sc[i].args[2] & O_DIRECTORY) &&
		    i + 1 < total)
			dirfd = sc[i + 1].rval;
		if (sc[i].nr == SYS_openat && (sc[i].args[2] & O_EXCL) &&
		    create_exit < 0) {
			assert_true(sc[i].args[2] & O_CLOEXEC);
			assert_true(sc[i].args[2] & O_CREAT);
			assert_int_equal(sc[i].args[0], dirfd);
			create_exit = i + 1;
			tmpfd = sc[i + 1].rval;
			assert_true(tmpfd >= 0);
		}
		if (sc[i].nr == SYS_write &&
		    (long long)sc[i].args[0] == tmpfd && write_at < 0)
			write_at = i;
		if (sc[i].nr == SYS_fsync &&
		    (long long)sc[i].args[0] == tmpfd && fsync_file < 0)
			fsync_file = i;
		if (is_rename(sc[i].nr) && rename_entry < 0)
			rename_entry = i;
		if (sc[i].nr == SYS_fsync &&
		    (long long)sc[i].args[0] == dirfd && rename_entry >= 0)
			fsync_dir = i;
	}
	print_message("  %d stops: dir fd %lld, create at %d (fd %lld), "
		      "write %d, fsync %d, rename %d, dir fsync %d\n",
		      total, dirfd, create_exit, tmpfd, write_at, fsync_file,
		      rename_entry, fsync_dir);
	assert_true(dirfd >= 0);
	assert_true(create_exit > 0);
	assert_true(write_at > create_exit);
	assert_true(fsync_file > write_at);
	assert_true(rename_entry > fsync_file);
	assert_true(fsync_dir > rename_entry);
	assert_int_equal(sc[rename_entry + 1].rval, 0);

	/* Kill at each stop in turn, from the old file every time. */
	for (int k = 1; k <= total; k++) {
		long v;

		assert_int_equal(fsutil_write_file(f->path, v1, TRACE_LEN, &o),
				 0);
		assert_int_equal(traced_write(f->path, v2, k, NULL, NULL), k);
		v = check_version(f->path, TRACE_LEN, scratch);
		/* complete old or complete new, never anything else */
		assert_true(v == 1 || v == 2);
		if (v == 2 && first_new < 0)
			first_new = k;
		if (first_new >= 0)
			assert_int_equal(v, 2); /* never back to old */
		dir_others(f->dir, &temps, true);
		/* a temporary file exists only between create and rename */
		if (k - 1 < create_exit || k - 1 > rename_entry)
			assert_int_equal(temps, 0);
		else
			assert_int_equal(temps, 1);
	}
	/* new exactly from the stop after the rename ran (its exit stop) */
	print_message("  new content from stop %d on\n", first_new);
	assert_int_equal(first_new, rename_entry + 2);
	free(v1);
	free(v2);
	free(scratch);
	free(sc);
	fx_free(f);
}

/* ---- crash test 2: SIGKILL at random moments */

#define RANDOM_LEN    (4u << 20)
#define RANDOM_ROUNDS 200
#define RANDOM_SECS   120.0

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Fork a child writing @data; kill it after @delay_us (< 0: never). 1
 * if it was killed, 0 if it finished first. */
static int random_round(const char *path, const char *data, long delay_us)
{
	struct timespec ts = {delay_us / 1000000, (delay_us % 1000000) * 1000};
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct fsutil_opts o = FSUTIL_OPTS(0600);

		_exit(fsutil_write_file(path, data, RANDOM_LEN, &o) == 0 ? 0
									 : 91);
	}
	if (delay_us >= 0) {
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status)) {
		assert_int_equal(WTERMSIG(status), SIGKILL);
		return 1;
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	return 0;
}

static void test_crash_random(void **state)
{
	struct fx *f = fx_new();
	char *next = malloc(RANDOM_LEN), *scratch = malloc(RANDOM_LEN);
	struct fsutil_opts o = FSUTIL_OPTS(0600);
	unsigned seed = (unsigned)time(NULL), temps, left = 0;
	unsigned old = 0, new = 0, killed = 0, cur = 1, rounds = 0;
	double t0, full = 0;
	long span_us;

	(void)state;
	assert_non_null(next);
	assert_non_null(scratch);
	srand(seed);
	fill(next, RANDOM_LEN, cur);
	assert_int_equal(fsutil_write_file(f->path, next, RANDOM_LEN, &o), 0);
	/* How long one whole write takes here, fork to reap. */
	for (int i = 0; i < 3; i++) {
		double t = now_s();

		fill(next, RANDOM_LEN, ++cur);
		assert_int_equal(random_round(f->path, next, -1), 0);
		t = now_s() - t;
		full = t > full ? t : full;
		assert_int_equal(check_version(f->path, RANDOM_LEN, scratch),
				 cur);
	}
	span_us = (long)(full * 1.5e6) + 1;
	print_message("  seed %u, one write %.1f ms, kills within %.1f ms\n",
		      seed, full * 1000, (double)span_us / 1000);
	t0 = now_s();
	for (; rounds < RANDOM_ROUNDS && now_s() - t0 < RANDOM_SECS; rounds++) {
		long v;

		fill(next, RANDOM_LEN, cur + 1);
		killed += random_round(f->path, next, rand() % span_us);
		v = check_version(f->path, RANDOM_LEN, scratch);
		/* complete old or complete new, never a mix or nothing */
		assert_true(v == (long)cur || v == (long)cur + 1);
		if (v == (long)cur) {
			old++;
		} else {
			new ++;
			cur++;
		}
		dir_others(f->dir, &temps, true);
		left += temps;
	}
	print_message("  %u rounds in %.1f s: %u killed; old %u, new %u; "
		      "%u temporary files left by kills\n",
		      rounds, now_s() - t0, killed, old, new, left);
	assert_true(rounds >= 50);
	/* the kills landed both before and after the rename */
	assert_true(old > 0);
	assert_true(new > 0);
	assert_true(left <= killed);
	free(next);
	free(scratch);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_and_replace),
		cmocka_unit_test(test_owner),
		cmocka_unit_test(test_noreplace),
		cmocka_unit_test(test_failures),
		cmocka_unit_test(test_temp_name),
		cmocka_unit_test(test_crash_every_syscall),
		cmocka_unit_test(test_crash_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
