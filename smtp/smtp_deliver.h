/* smtp/smtp_deliver: hand one accepted message to Dovecot over LMTP and
 * turn the per-recipient results into the one reply the SMTP client gets
 * (issue 4 item 6): 250 only after Dovecot took every local recipient;
 * unknown local users are bounced to a local sender's INBOX; a "delivered"
 * event per recipient. Loop-thread only; the job outlives its session if
 * that goes away (nothing already handed to Dovecot is dropped). */
#ifndef RINGMAIL_SMTP_DELIVER_H
#define RINGMAIL_SMTP_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/events.h"
#include "core/loop.h"
#include "smtp/lmtp_client.h"
#include "smtp/smtp_session.h"

struct accounts;
struct smtp_deliver_job;

/* One per worker; must outlive its jobs (smtp_deliver_env_drop). */
struct smtp_deliver_env {
	struct loop *loop;
	struct lmtp_pool *lmtp;
	struct accounts *accounts;
	const struct events *events; /* NULL: none */
	const char *mail_domain;
	uint64_t max_message_size;
	struct smtp_deliver_job *jobs; /* in flight */
	struct smtp_deliver_job *idle; /* finished, kept for reuse */
	unsigned n_idle;
};

struct smtp_deliver_reply {
	unsigned code;
	char esc[12];
	char text[LMTP_RESULT_TEXT_MAX + 64];
};

/* Called once, on the loop thread, never from inside smtp_deliver_*. */
typedef void smtp_deliver_done_fn(const struct smtp_deliver_reply *r,
				  void *arg);

/* Start delivering @d: what is needed later is copied into the job's
 * arena (one per job, reused across messages), a spooled body is read
 * from its own descriptor under LMTP's back-pressure, a body in memory
 * goes to LMTP before this returns. 0 or -ENOMEM; @done is called in all
 * other cases. */
int smtp_deliver_start(struct smtp_deliver_env *env, uint64_t conn_id,
		       const struct smtp_delivery *d,
		       smtp_deliver_done_fn *done, void *arg,
		       struct smtp_deliver_job **job_r);
/* The caller is gone: the job finishes without calling @done. */
void smtp_deliver_detach(struct smtp_deliver_job *job);
/* Worker shutdown, after the LMTP pool was freed: forget every job and
 * free the idle ones. */
void smtp_deliver_env_drop(struct smtp_deliver_env *env);

#endif
