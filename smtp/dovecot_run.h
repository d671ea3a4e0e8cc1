/* smtp/dovecot_run: start and stop ringmail's private Dovecot (its own
 * base_dir, so a system Dovecot is never touched). Blocking: for start-up,
 * shutdown, commands and tests, never on a loop thread. */
#ifndef RINGMAIL_SMTP_DOVECOT_RUN_H
#define RINGMAIL_SMTP_DOVECOT_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "smtp/dovecot_conf.h"

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

#endif
