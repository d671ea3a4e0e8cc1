/* imap-proxy/imap_idle: what the proxy must know about IDLE (RFC 2177) to
 * wake a Dovecot-side IDLE at once after a delivery, and to hide the
 * commands it injects for that. Pure: no I/O; the session feeds it the
 * client's commands and Dovecot's response lines in stream order and
 * writes what it returns.
 *
 * The wake-up: while the client idles, write "DONE", "<ptag> NOOP" and
 * "<client tag> IDLE" to Dovecot in one go. Dovecot ends the IDLE (tagged
 * reply with the client's tag: swallowed), resyncs on NOOP (untagged
 * EXISTS/RECENT/FETCH/EXPUNGE: forwarded; its tagged reply: swallowed)
 * and idles again ("+ idling": swallowed). Dovecot answers in command
 * order, so counting what is due is exact, also when the client's own
 * DONE (forwarded after our bytes) or more deliveries race with it: the
 * client's DONE then ends the re-entered IDLE and its tagged reply, with
 * the client's tag, is the one it gets. */
#ifndef RINGMAIL_IMAP_IDLE_H
#define RINGMAIL_IMAP_IDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap-proxy/imap_parse.h"

/* The tag of the injected NOOP; never a tag Delta Chat uses. */
#define IMAP_IDLE_PTAG "rm.wake"
/* Octets imap_idle_wake may write. */
#define IMAP_IDLE_WAKE_MAX                                              \
	(sizeof("DONE\r\n" IMAP_IDLE_PTAG " NOOP\r\n") + IMAP_TAG_MAX + \
	 sizeof(" IDLE\r\n"))

enum imap_idle_state {
	IMAP_IDLE_NONE = 0, /* the client is not in IDLE */
	IMAP_IDLE_STARTING, /* client sent IDLE; no "+" yet */
	IMAP_IDLE_ON,       /* the client idles */
	IMAP_IDLE_DONE,     /* the client sent DONE; its tagged reply is due */
};

struct imap_idle {
	enum imap_idle_state state;
	char tag[IMAP_TAG_MAX + 1]; /* the client's IDLE tag */
	/* "DONE" then "tag IDLE" pipelined: the next IDLE starts when the
	 * previous one's tagged reply is through. */
	char next_tag[IMAP_TAG_MAX + 1];
	bool next_pending;
	bool next_untracked;
	/* Replies to swallow, in Dovecot's order. */
	unsigned swallow_tagged; /* tagged with the client's IDLE tag */
	unsigned swallow_noop;   /* tagged IMAP_IDLE_PTAG */
	unsigned swallow_cont;   /* "+" continuations */
	bool waking;             /* a wake-up is in flight */
	bool again;              /* a delivery came during it */
	uint64_t wakes;          /* wake-ups written (for the log) */
};

enum imap_idle_verdict {
	IMAP_IDLE_FORWARD = 0,
	IMAP_IDLE_SWALLOW,
};

void imap_idle_init(struct imap_idle *t);
/* A client command starts (tag, upper-cased name as the parser gives). */
void imap_idle_client_cmd(struct imap_idle *t, const char *tag,
			  bool tag_truncated, const char *name);
/* Is the client in IDLE, so that its next line must be DONE? */
bool imap_idle_client_idling(const struct imap_idle *t);
/* The client sent its DONE line. */
void imap_idle_client_done(struct imap_idle *t);
/* One response line from Dovecot starts, first word @tag: pass it on or
 * drop it (with everything up to its end, literals included). */
enum imap_idle_verdict imap_idle_server_line(struct imap_idle *t,
					     const char *tag);
/* A delivery for this user: returns the octets to write to Dovecot now
 * (0 when nothing is to be written: not idling, or a wake-up in flight,
 * in which case another follows once it is done). */
size_t imap_idle_wake(struct imap_idle *t, char *out, size_t cap);
/* After imap_idle_server_line: a delivery came during the last wake-up
 * and the IDLE is back on, so imap_idle_wake must run again. */
bool imap_idle_wake_due(const struct imap_idle *t);

#endif
