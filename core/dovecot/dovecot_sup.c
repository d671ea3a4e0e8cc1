/* core/dovecot/dovecot_sup: the Dovecot supervisor thread.
 *
 * One thread per supervisor waits in poll(2) on the master's pidfd and an
 * eventfd that asks it to stop. When the master exits, the thread reaps
 * it, logs how (signal or status) and how long it was up, clears the
 * processes it left in its group (after SIGKILL of the master its children
 * linger for a moment and may still hold the listening sockets), removes
 * the stale master.pid and starts it again after the back-off delay. A
 * restart that fails doubles the delay and tries again. Without pidfds
 * (kernels before 5.3) it polls every 50 ms instead. */
#include "core/dovecot/dovecot_sup.h"

/* system */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* project */
#include "core/log.h"
#include "core/dovecot/dovecot_run.h"

#define DOVECOT_SUP_POLL_MS    50
#define DOVECOT_SUP_GROUP_TERM 2000 /* leftovers: SIGTERM, then SIGKILL */
#define DOVECOT_SUP_GROUP_KILL 3000
#define DOVECOT_SUP_KILL_WAIT  5000

struct dovecot_sup {
	const struct dovecot_settings *s;
	char conf[PATH_MAX];
	uint64_t start_timeout_ms;
	pthread_t thread;
	int stop_fd; /* eventfd: readable once a stop is asked for */
	uint64_t stop_timeout_ms;
	int stop_rc;
	pid_t pid;      /* the running master, -1 when none */
	bool child;     /* ours to reap; false: adopted (started by hand) */
	int pidfd;      /* -1: poll instead */
	uint64_t up_at; /* when it became ready */
};

enum dovecot_sup_wait {
	SUP_WAIT_TIMEOUT = 0,
	SUP_WAIT_EXITED,
	SUP_WAIT_STOP,
};

static uint64_t sup_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int sup_pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

static void sup_track(struct dovecot_sup *sup, pid_t pid, bool child)
{
	sup->pid = pid;
	sup->child = child;
	sup->up_at = sup_now_ms();
	sup->pidfd = sup_pidfd_open(pid);
	if (sup->pidfd < 0 && errno != ENOSYS)
		log_warn("dovecot: pidfd_open pid=%ld: %s; polling instead",
			 (long)pid, strerror(errno));
}

/* Has the master exited? Reaps it (a child) and sets *@status_r (-1 when
 * not ours to know). */
static bool sup_exited(struct dovecot_sup *sup, bool pidfd_ready, int *status_r)
{
	pid_t w;

	*status_r = -1;
	if (sup->child) {
		w = waitpid(sup->pid, status_r, pidfd_ready ? 0 : WNOHANG);
		if (w == sup->pid)
			return true;
		if (w < 0 && errno == ECHILD) {
			*status_r = -1;
			return true;
		}
		return false;
	}
	return pidfd_ready || dovecot_run_pid(sup->s->base_dir) != sup->pid;
}

static void sup_untrack(struct dovecot_sup *sup)
{
	if (sup->pidfd >= 0)
		close(sup->pidfd);
	sup->pidfd = -1;
	sup->pid = -1;
}

/* Wait at most @ms (-1: for ever) for the master to exit or, when
 * @watch_stop, for a stop request. */
static enum dovecot_sup_wait sup_wait(struct dovecot_sup *sup, int64_t ms,
				      bool watch_stop, int *status_r)
{
	uint64_t deadline = ms < 0 ? UINT64_MAX : sup_now_ms() + (uint64_t)ms;
	struct pollfd pfd[2];
	int n, r, tmo;

	for (;;) {
		uint64_t now = sup_now_ms();

		n = 0;
		if (watch_stop)
			pfd[n++] = (struct pollfd){.fd = sup->stop_fd,
						   .events = POLLIN};
		if (sup->pid > 0 && sup->pidfd >= 0)
			pfd[n++] = (struct pollfd){.fd = sup->pidfd,
						   .events = POLLIN};
		if (now >= deadline)
			tmo = 0;
		else if (deadline == UINT64_MAX)
			tmo = -1;
		else
			tmo = (int)(deadline - now);
		if ((sup->pid > 0 && sup->pidfd < 0) &&
		    (tmo < 0 || tmo > DOVECOT_SUP_POLL_MS))
			tmo = DOVECOT_SUP_POLL_MS;
		r = poll(pfd, (nfds_t)n, tmo);
		if (r < 0 && errno != EINTR)
			return SUP_WAIT_TIMEOUT;
		if (watch_stop && r > 0 && pfd[0].revents != 0)
			return SUP_WAIT_STOP;
		if (sup->pid > 0) {
			bool ready = sup->pidfd >= 0 && r > 0 &&
				     pfd[n - 1].revents != 0;

			if ((sup->pidfd < 0 || ready) &&
			    sup_exited(sup, ready, status_r))
				return SUP_WAIT_EXITED;
		}
		if (sup_now_ms() >= deadline)
			return SUP_WAIT_TIMEOUT;
	}
}

static void sup_describe(int status, char *buf, size_t len)
{
	if (status < 0)
		snprintf(buf, len, "status unknown");
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "status %d", WEXITSTATUS(status));
}

/* What a dead master leaves: children for a moment, its pid file. */
static void sup_clear(struct dovecot_sup *sup, pid_t old)
{
	char path[PATH_MAX];
	int left;

	left = dovecot_run_clear_group(old, DOVECOT_SUP_GROUP_TERM,
				       DOVECOT_SUP_GROUP_KILL);
	if (left > 0)
		log_warn("dovecot: %d processes of the old master %ld "
			 "survived SIGKILL",
			 left, (long)old);
	if (dovecot_run_pid(sup->s->base_dir) < 0 &&
	    snprintf(path, sizeof(path), "%s/master.pid", sup->s->base_dir) <
		    (int)sizeof(path))
		(void)unlink(path);
}

/* Clean stop: SIGTERM, then SIGKILL to the group after the timeout. */
static int sup_terminate(struct dovecot_sup *sup)
{
	uint64_t t0 = sup_now_ms();
	pid_t pid = sup->pid;
	int status, r = 0;

	if (pid <= 0)
		return 0;
	(void)kill(pid, SIGTERM);
	if (sup_wait(sup, (int64_t)sup->stop_timeout_ms, false, &status) !=
	    SUP_WAIT_EXITED) {
		log_warn("dovecot stop pid=%ld error=\"still running after "
			 "SIGTERM\" action=SIGKILL",
			 (long)pid);
		(void)kill(-pid, SIGKILL);
		(void)kill(pid, SIGKILL);
		if (sup_wait(sup, DOVECOT_SUP_KILL_WAIT, false, &status) !=
		    SUP_WAIT_EXITED)
			r = -ETIMEDOUT;
	}
	if (r == 0) {
		sup_untrack(sup);
		sup_clear(sup, pid);
	}
	log_info("dovecot stopped pid=%ld ms=%llu", (long)pid,
		 (unsigned long long)(sup_now_ms() - t0));
	return r;
}

static void *sup_main(void *arg)
{
	struct dovecot_sup *sup = arg;
	uint64_t delay = DOVECOT_SUP_BACKOFF_MIN_MS, down_at, up_ms;
	char how[32];
	unsigned attempt;
	pid_t old, pid;
	int status, r;

	for (;;) {
		if (sup_wait(sup, -1, true, &status) == SUP_WAIT_STOP) {
			sup->stop_rc = sup_terminate(sup);
			return NULL;
		}
		down_at = sup_now_ms();
		up_ms = down_at - sup->up_at;
		old = sup->pid;
		sup_untrack(sup);
		if (up_ms >= DOVECOT_SUP_STABLE_MS)
			delay = DOVECOT_SUP_BACKOFF_MIN_MS;
		sup_describe(status, how, sizeof(how));
		log_warn("dovecot: master exited (%s) pid=%ld up_ms=%llu, "
			 "restarting in %llu ms",
			 how, (long)old, (unsigned long long)up_ms,
			 (unsigned long long)delay);
		sup_clear(sup, old);
		for (attempt = 1;; attempt++) {
			if (sup_wait(sup, (int64_t)delay, true, &status) ==
			    SUP_WAIT_STOP) {
				sup->stop_rc = 0;
				return NULL;
			}
			r = dovecot_run_spawn(sup->s, sup->conf,
					      sup->start_timeout_ms,
					      sup->stop_fd, &pid);
			delay = delay * 2 > DOVECOT_SUP_BACKOFF_MAX_MS
					? DOVECOT_SUP_BACKOFF_MAX_MS
					: delay * 2;
			if (r == 0 || r == -EALREADY)
				break;
			if (r == -ECANCELED) {
				sup->stop_rc = 0;
				return NULL;
			}
			log_warn("dovecot: restart failed (%s) attempt=%u, "
				 "retrying in %llu ms",
				 strerror(-r), attempt,
				 (unsigned long long)delay);
		}
		/* Someone started one by hand meanwhile: watch that one. */
		sup_track(sup, pid, r == 0);
		log_info("dovecot: restarted pid=%ld%s down_ms=%llu "
			 "attempts=%u",
			 (long)pid, r == 0 ? "" : " (adopted)",
			 (unsigned long long)(sup_now_ms() - down_at), attempt);
	}
}

int dovecot_sup_start(const struct dovecot_settings *s, const char *conf_path,
		      uint64_t start_timeout_ms, struct dovecot_sup **sup_r)
{
	struct dovecot_sup *sup;
	sigset_t all, old;
	pid_t pid;
	int r;

	*sup_r = NULL;
	sup = calloc(1, sizeof(*sup));
	if (sup == NULL)
		return -ENOMEM;
	sup->s = s;
	sup->start_timeout_ms = start_timeout_ms;
	sup->pid = -1;
	sup->pidfd = -1;
	if (snprintf(sup->conf, sizeof(sup->conf), "%s", conf_path) >=
	    (int)sizeof(sup->conf)) {
		free(sup);
		return -ENAMETOOLONG;
	}
	sup->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sup->stop_fd < 0) {
		r = -errno;
		free(sup);
		return r;
	}
	r = dovecot_run_spawn(s, conf_path, start_timeout_ms, -1, &pid);
	if (r < 0) {
		close(sup->stop_fd);
		free(sup);
		return r;
	}
	sup_track(sup, pid, true);
	/* The thread never takes the process signals (SIGTERM is for the
	 * main thread's sigwait). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(&sup->thread, NULL, sup_main, sup);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		sup->stop_timeout_ms = 5000;
		(void)sup_terminate(sup);
		close(sup->stop_fd);
		free(sup);
		return -r;
	}
	*sup_r = sup;
	return 0;
}

int dovecot_sup_stop(struct dovecot_sup **supp, uint64_t timeout_ms)
{
	struct dovecot_sup *sup = *supp;
	uint64_t one = 1;
	int r;

	if (sup == NULL)
		return 0;
	*supp = NULL;
	sup->stop_timeout_ms = timeout_ms;
	if (write(sup->stop_fd, &one, sizeof(one)) != sizeof(one))
		log_warn("dovecot: cannot wake the supervisor: %s",
			 strerror(errno));
	pthread_join(sup->thread, NULL);
	r = sup->stop_rc;
	sup_untrack(sup);
	close(sup->stop_fd);
	free(sup);
	return r;
}
