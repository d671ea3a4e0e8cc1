/* core/events: the internal "delivered" notification (issue 4 item 7)
 * and the presence index it is routed by. Delivery raises one event per
 * recipient after Dovecot's LMTP 250; push/ and imap-proxy/ subscribe at
 * boot. A login service records which workers hold a session of a user
 * (events_presence_join/leave), so an event carries the set of workers
 * that need it and a subscriber wakes only those. Subscribers run on the
 * raising (loop) thread and must not block: they post to their own loop
 * (loop_post) or queue work. Presence calls are thread-safe (striped
 * locks); subscribe only at boot. */
#ifndef RINGMAIL_CORE_EVENTS_H
#define RINGMAIL_CORE_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#define EVENTS_SUBSCRIBERS_MAX 8
#define EVENTS_WORKERS_MAX     256 /* loop_worker_id() is 0..255 */

/* A set of worker ids. */
struct events_workers {
	uint64_t bits[EVENTS_WORKERS_MAX / 64];
};

struct events_delivered {
	const char *rcpt; /* the local address it was delivered to */
	const char *from; /* the From header address ("" if none) */
	/* Workers holding a logged-in session of @rcpt when it was raised. */
	struct events_workers where;
};

typedef void events_delivered_fn(const struct events_delivered *ev, void *arg);

struct events_presence;

struct events {
	unsigned n;
	struct {
		events_delivered_fn *fn;
		void *arg;
	} sub[EVENTS_SUBSCRIBERS_MAX];
	struct events_presence *presence;
};

/* 0 or -ENOMEM. Free with events_fini. */
int events_init(struct events *e);
void events_fini(struct events *e);
/* Boot time only (before workers start). 0 or -ENOSPC. */
int events_subscribe(struct events *e, events_delivered_fn *fn, void *arg);
/* Call every subscriber, in subscription order, with the workers where
 * @rcpt is present. @e may be NULL. */
void events_raise_delivered(const struct events *e, const char *rcpt,
			    const char *from);

/* A session of @addr (compared case-insensitively) logged in on @worker;
 * counted, so each join needs one leave. 0, -EINVAL or -ENOMEM. */
int events_presence_join(struct events *e, const char *addr, unsigned worker);
/* One session of @addr on @worker ended (a leave without a join is
 * ignored). */
void events_presence_leave(struct events *e, const char *addr, unsigned worker);
/* Fill @out with the workers where @addr has sessions now. */
void events_presence_where(const struct events *e, const char *addr,
			   struct events_workers *out);

static inline bool events_workers_has(const struct events_workers *w,
				      unsigned worker)
{
	return worker < EVENTS_WORKERS_MAX &&
	       (w->bits[worker / 64] >> (worker % 64) & 1u) != 0;
}

static inline bool events_workers_empty(const struct events_workers *w)
{
	for (unsigned i = 0; i < EVENTS_WORKERS_MAX / 64; i++)
		if (w->bits[i] != 0)
			return false;
	return true;
}

#endif
