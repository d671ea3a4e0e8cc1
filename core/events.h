/* core/events: the internal "delivered" notification (issue 4 item 7).
 * Delivery raises one event per recipient after Dovecot's LMTP 250;
 * push/ and imap-proxy/ subscribe at boot. Subscribers run on the
 * raising (loop) thread and must not block: they post to their own loop
 * (loop_post) or queue work. */
#ifndef RINGMAIL_CORE_EVENTS_H
#define RINGMAIL_CORE_EVENTS_H

#define EVENTS_SUBSCRIBERS_MAX 8

struct events_delivered {
	const char *rcpt; /* the local address it was delivered to */
	const char *from; /* the From header address ("" if none) */
};

typedef void events_delivered_fn(const struct events_delivered *ev, void *arg);

struct events {
	unsigned n;
	struct {
		events_delivered_fn *fn;
		void *arg;
	} sub[EVENTS_SUBSCRIBERS_MAX];
};

void events_init(struct events *e);
/* Boot time only (before workers start). 0 or -ENOSPC. */
int events_subscribe(struct events *e, events_delivered_fn *fn, void *arg);
/* Call every subscriber, in subscription order. @e may be NULL. */
void events_raise_delivered(const struct events *e, const char *rcpt,
			    const char *from);

#endif
