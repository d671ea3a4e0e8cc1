/* core/dovecot/dovecot_run: fork/exec dovecot (daemonizing, or in the
 * foreground as our child for the supervisor), poll its LMTP socket, stop
 * it by the pid in its own master.pid (checked to be a dovecot process),
 * clear what a dead master left in its process group. */
#include "core/dovecot/dovecot_run.h"

/* system */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* project */
#include "core/log.h"

#define DOVECOT_BIN_DEFAULT "/usr/sbin/dovecot"
#define DOVECOT_POLL_MS     10

const char *dovecot_run_binary(void)
{
	const char *b = getenv("RINGMAIL_DOVECOT_BIN");

	return b != NULL && *b != '\0' ? b : DOVECOT_BIN_DEFAULT;
}

bool dovecot_run_available(void)
{
	return access(dovecot_run_binary(), X_OK) == 0;
}

static uint64_t dovecot_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void dovecot_sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Is @pid alive and not a zombie? Reads /proc so that a zombie nobody
 * reaps (containers without an init) counts as gone. */
static bool dovecot_pid_alive(pid_t pid, char *comm, size_t comm_len)
{
	char path[64], buf[512];
	const char *rp;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* "pid (comm) S ..." — comm may hold spaces and parentheses. */
	rp = strrchr(buf, ')');
	if (rp == NULL || rp[1] != ' ' || rp[2] == 'Z' || rp[2] == 'X')
		return false;
	if (comm != NULL) {
		const char *lp = strchr(buf, '(');
		size_t l = lp != NULL && lp < rp ? (size_t)(rp - lp - 1) : 0;

		if (l >= comm_len)
			l = comm_len - 1;
		if (l > 0)
			memcpy(comm, lp + 1, l);
		comm[l] = '\0';
	}
	return true;
}

pid_t dovecot_run_pid(const char *base_dir)
{
	char path[PATH_MAX], buf[32], comm[64];
	ssize_t n;
	long pid;
	char *end;
	int fd;

	if (snprintf(path, sizeof(path), "%s/master.pid", base_dir) >=
	    (int)sizeof(path))
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	errno = 0;
	pid = strtol(buf, &end, 10);
	if (errno != 0 || end == buf || pid <= 1 || pid > INT_MAX)
		return -1;
	if (!dovecot_pid_alive((pid_t)pid, comm, sizeof(comm)))
		return -1;
	/* Guard against a recycled pid: the master's name is "dovecot". */
	if (strcmp(comm, "dovecot") != 0)
		return -1;
	return (pid_t)pid;
}

/* One connect to the LMTP socket: 0 when it accepts. */
static int dovecot_probe_unix(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd, r = 0;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		r = -errno;
	close(fd);
	return r;
}

int dovecot_run_start(const struct dovecot_settings *s, const char *conf_path,
		      uint64_t timeout_ms)
{
	const char *bin = dovecot_run_binary();
	char sock[PATH_MAX];
	uint64_t t0 = dovecot_now_ms();
	pid_t pid, old;
	int status, r;

	if (!dovecot_run_available())
		return -ENOENT;
	r = dovecot_lmtp_socket_path(s, sock, sizeof(sock));
	if (r < 0)
		return r;
	old = dovecot_run_pid(s->base_dir);
	if (old > 0) {
		log_err("dovecot start base_dir=%s error=\"already running\" "
			"pid=%ld",
			s->base_dir, (long)old);
		return -EALREADY;
	}
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		sigset_t none;

		/* Child: only stdio passes to Dovecot, with no signal
		 * blocked whatever thread forked it. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		close_range(3, ~0u, 0);
		execl(bin, bin, "-c", conf_path, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		log_err("dovecot start conf=%s error=\"dovecot exited with "
			"status %d\"",
			conf_path,
			WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		return -EIO;
	}
	/* The parent exited after daemonizing; the master binds its
	 * listeners around then. */
	for (;;) {
		if (dovecot_run_pid(s->base_dir) > 0 &&
		    dovecot_probe_unix(sock) == 0)
			break;
		if (dovecot_now_ms() - t0 > timeout_ms) {
			log_err("dovecot start base_dir=%s error=\"LMTP socket "
				"not ready\" timeout_ms=%llu",
				s->base_dir, (unsigned long long)timeout_ms);
			return -ETIMEDOUT;
		}
		dovecot_sleep_ms(DOVECOT_POLL_MS);
	}
	log_info("dovecot started pid=%ld base_dir=%s ms=%llu",
		 (long)dovecot_run_pid(s->base_dir), s->base_dir,
		 (unsigned long long)(dovecot_now_ms() - t0));
	return 0;
}

int dovecot_run_stop(const char *base_dir, uint64_t timeout_ms)
{
	pid_t pid = dovecot_run_pid(base_dir);
	uint64_t t0 = dovecot_now_ms();
	bool killed = false;

	if (pid <= 0)
		return 0;
	if (kill(pid, SIGTERM) < 0)
		return errno == ESRCH ? 0 : -errno;
	while (dovecot_pid_alive(pid, NULL, 0)) {
		if (!killed && dovecot_now_ms() - t0 > timeout_ms) {
			log_warn("dovecot stop pid=%ld error=\"still running "
				 "after SIGTERM\" action=SIGKILL",
				 (long)pid);
			if (kill(pid, SIGKILL) < 0 && errno != ESRCH)
				return -errno;
			killed = true;
		}
		if (killed && dovecot_now_ms() - t0 > timeout_ms + 5000)
			return -ETIMEDOUT;
		dovecot_sleep_ms(DOVECOT_POLL_MS);
	}
	log_info("dovecot stopped pid=%ld ms=%llu", (long)pid,
		 (unsigned long long)(dovecot_now_ms() - t0));
	return 0;
}

/* Sleep @ms, or less when @cancel_fd becomes readable: true then. */
static bool dovecot_wait_cancel(int cancel_fd, unsigned ms)
{
	struct pollfd pfd = {.fd = cancel_fd, .events = POLLIN};
	int r;

	if (cancel_fd < 0) {
		dovecot_sleep_ms(ms);
		return false;
	}
	r = poll(&pfd, 1, (int)ms);
	return r > 0 && (pfd.revents & (POLLIN | POLLERR | POLLHUP)) != 0;
}

/* Kill a failed attempt's whole group and reap its master. */
static void dovecot_spawn_abort(pid_t pid)
{
	int status;

	(void)kill(-pid, SIGKILL);
	(void)kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	(void)dovecot_run_clear_group(pid, 0, 2000);
}

int dovecot_run_spawn(const struct dovecot_settings *s, const char *conf_path,
		      uint64_t timeout_ms, int cancel_fd, pid_t *pid_r)
{
	const char *bin = dovecot_run_binary();
	char sock[PATH_MAX];
	uint64_t t0 = dovecot_now_ms();
	pid_t pid, old, w;
	int status, r;

	*pid_r = -1;
	if (!dovecot_run_available())
		return -ENOENT;
	r = dovecot_lmtp_socket_path(s, sock, sizeof(sock));
	if (r < 0)
		return r;
	old = dovecot_run_pid(s->base_dir);
	if (old > 0) {
		*pid_r = old;
		return -EALREADY;
	}
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		struct sigaction dfl = {.sa_handler = SIG_DFL};
		sigset_t none;
		int nul;

		/* Child: a session of its own (a terminal's Ctrl-C and our
		 * process group stay ours; its children share its group),
		 * default signals, nothing inherited but stderr. */
		(void)setsid();
		sigaction(SIGPIPE, &dfl, NULL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		nul = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
		}
		close_range(3, ~0u, 0);
		execl(bin, bin, "-F", "-c", conf_path, (char *)NULL);
		_exit(127);
	}
	for (;;) {
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid) {
			log_err("dovecot start conf=%s error=\"dovecot exited "
				"with %s %d\"",
				conf_path,
				WIFSIGNALED(status) ? "signal" : "status",
				WIFSIGNALED(status) ? WTERMSIG(status)
						    : WEXITSTATUS(status));
			(void)dovecot_run_clear_group(pid, 0, 2000);
			return -EIO;
		}
		if (dovecot_run_pid(s->base_dir) == pid &&
		    dovecot_probe_unix(sock) == 0)
			break;
		if (dovecot_now_ms() - t0 > timeout_ms) {
			log_err("dovecot start base_dir=%s error=\"LMTP socket "
				"not ready\" timeout_ms=%llu",
				s->base_dir, (unsigned long long)timeout_ms);
			dovecot_spawn_abort(pid);
			return -ETIMEDOUT;
		}
		if (dovecot_wait_cancel(cancel_fd, DOVECOT_POLL_MS)) {
			dovecot_spawn_abort(pid);
			return -ECANCELED;
		}
	}
	log_info("dovecot started pid=%ld base_dir=%s foreground=1 ms=%llu",
		 (long)pid, s->base_dir,
		 (unsigned long long)(dovecot_now_ms() - t0));
	*pid_r = pid;
	return 0;
}

/* Live members of process group @pgid, from /proc (zombies do not
 * count: they hold no socket, and their reaper may be slow). */
static int dovecot_group_count(pid_t pgid)
{
	char path[300], buf[512];
	struct dirent *de;
	const char *rp;
	int n = 0, fd;
	long pg;
	ssize_t len;
	DIR *d;
	char st;

	d = opendir("/proc");
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		/* "pid (comm) S ppid pgrp ..." */
		rp = strrchr(buf, ')');
		if (rp == NULL || sscanf(rp + 1, " %c %*d %ld", &st, &pg) != 2)
			continue;
		if (pg == (long)pgid && st != 'Z' && st != 'X')
			n++;
	}
	closedir(d);
	return n;
}

int dovecot_run_clear_group(pid_t pgid, uint64_t term_ms, uint64_t kill_ms)
{
	uint64_t t0 = dovecot_now_ms();
	bool killed = false;
	int n;

	if (pgid <= 1)
		return 0;
	n = dovecot_group_count(pgid);
	if (n == 0)
		return 0;
	/* The group exists (it has live members), so its id is not
	 * anybody else's. */
	(void)kill(-pgid, term_ms > 0 ? SIGTERM : SIGKILL);
	killed = term_ms == 0;
	for (;;) {
		dovecot_sleep_ms(DOVECOT_POLL_MS);
		n = dovecot_group_count(pgid);
		if (n == 0)
			return 0;
		if (!killed && dovecot_now_ms() - t0 >= term_ms) {
			log_warn("dovecot: %d processes of group %ld still "
				 "running after SIGTERM action=SIGKILL",
				 n, (long)pgid);
			(void)kill(-pgid, SIGKILL);
			killed = true;
			t0 = dovecot_now_ms();
			term_ms = 0;
		}
		if (killed && dovecot_now_ms() - t0 >= kill_ms)
			return n;
	}
}
