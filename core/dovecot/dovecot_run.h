/* core/dovecot/dovecot_run: start and stop ringmail's private Dovecot (its
 * own base_dir, so a system Dovecot is never touched). Blocking: for start-up,
 * shutdown, commands and tests, never on a loop thread. */
#ifndef RINGMAIL_CORE_DOVECOT_RUN_H
#define RINGMAIL_CORE_DOVECOT_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/dovecot/dovecot_conf.h"

/* The dovecot binary: $RINGMAIL_DOVECOT_BIN, else /usr/sbin/dovecot. */
const char *dovecot_run_binary(void);
/* Is that binary there and executable? */
bool dovecot_run_available(void);
/* Run `dovecot -c @conf_path` (it daemonizes) and wait until its LMTP
 * socket accepts (one probe connection), at most @timeout_ms. 0; -ENOENT
 * without the binary; -EALREADY when a live Dovecot owns base_dir; -EIO
 * when dovecot exits non-zero (its message went to our stderr);
 * -ETIMEDOUT. */
int dovecot_run_start(const struct dovecot_settings *s, const char *conf_path,
		      uint64_t timeout_ms);
/* The master pid in <@base_dir>/master.pid if that process is a live
 * dovecot, else -1. */
pid_t dovecot_run_pid(const char *base_dir);
/* SIGTERM that master and wait until it is gone; SIGKILL after
 * @timeout_ms. 0 (also when none runs) or -errno. */
int dovecot_run_stop(const char *base_dir, uint64_t timeout_ms);

/* Run `dovecot -F -c @conf_path` as a child of this process, in a session
 * (and process group) of its own, and wait until it owns base_dir and its
 * LMTP socket accepts, at most @timeout_ms; readable @cancel_fd (-1: none)
 * aborts the wait. 0 with the master's pid in *@pid_r (reap it with
 * waitpid); -ENOENT, -EALREADY (*@pid_r: the live master that owns
 * base_dir), -EIO (it exited), -ETIMEDOUT, -ECANCELED. On failure nothing
 * of the attempt is left running. */
int dovecot_run_spawn(const struct dovecot_settings *s, const char *conf_path,
		      uint64_t timeout_ms, int cancel_fd, pid_t *pid_r);
/* Live (not zombie) processes in process group @pgid (a dead master's
 * children): SIGTERM them, SIGKILL after @term_ms, wait at most @kill_ms
 * more. Returns how many are still alive (0: the group is gone). */
int dovecot_run_clear_group(pid_t pgid, uint64_t term_ms, uint64_t kill_ms);

#endif
