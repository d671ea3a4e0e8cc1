/* core/dovecot/dovecot_sup: keep ringmail's private Dovecot running. The
 * master runs in the foreground as our child; a supervisor thread of its own
 * (never a loop thread) waits for its exit on a pidfd, logs it, clears
 * what it left behind, and starts it again with back-off: 100 ms, doubled
 * on each quick failure up to 10 s, back to 100 ms once it stayed up for
 * 10 s. A clean stop ends Dovecot and never restarts it. */
#ifndef RINGMAIL_CORE_DOVECOT_SUP_H
#define RINGMAIL_CORE_DOVECOT_SUP_H

#include <stdint.h>

#include "core/dovecot/dovecot_conf.h"

#define DOVECOT_SUP_BACKOFF_MIN_MS 100
#define DOVECOT_SUP_BACKOFF_MAX_MS 10000
#define DOVECOT_SUP_STABLE_MS      10000

struct dovecot_sup;

/* Start Dovecot with the config already written at @conf_path (blocking,
 * at most @start_timeout_ms, also the limit for each restart) and the
 * supervisor thread. @s and its strings must outlive the supervisor.
 * 0, or -errno when Dovecot did not start (nothing is left running). */
int dovecot_sup_start(const struct dovecot_settings *s, const char *conf_path,
		      uint64_t start_timeout_ms, struct dovecot_sup **sup_r);
/* Stop supervising and stop Dovecot: SIGTERM, SIGKILL to its whole group
 * after @timeout_ms; joins the thread, frees, sets *@sup to NULL. 0 or
 * -errno (something of Dovecot's outlived SIGKILL). */
int dovecot_sup_stop(struct dovecot_sup **sup, uint64_t timeout_ms);

#endif
