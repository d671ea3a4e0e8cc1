/* smtp/lmtp_client: deliver messages to Dovecot over LMTP (RFC 2033) on
 * its unix socket, from a per-worker pool of persistent, pipelined
 * connections. One transaction: sender + recipients, body streamed in
 * chunks, one result per recipient. Loop-thread only. */
#ifndef RINGMAIL_SMTP_LMTP_CLIENT_H
#define RINGMAIL_SMTP_LMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/loop.h"

struct lmtp_pool;
struct lmtp_txn;

struct lmtp_settings {
	const char *socket_path;     /* Dovecot's LMTP socket; required */
	const char *lhlo_name;       /* NULL: "ringmail" */
	unsigned max_conns;          /* connections per pool; 0: 4 */
	uint64_t connect_timeout_ms; /* connect, greeting, LHLO; 0: 5 s */
	uint64_t reply_timeout_ms;   /* MAIL/RCPT/DATA/RSET replies; 0: 30 s */
	uint64_t data_timeout_ms;    /* replies after the final "."; 0: 120 s */
	uint64_t idle_timeout_ms;    /* close idle pooled conns; 0: 60 s */
	/* Body bytes a transaction holds before Dovecot takes them (and
	 * the send backlog) before lmtp_txn_full says stop; 0: 256 KiB. */
	uint32_t body_high;
};

#define LMTP_RESULT_TEXT_MAX 240

/* The outcome for one recipient: Dovecot's reply, or a 451 made here when
 * Dovecot could not be reached (the SMTP session then answers 451). */
struct lmtp_result {
	unsigned code;   /* 250 delivered; 4xx temporary; 5xx permanent */
	char status[12]; /* enhanced status ("2.0.0"), "" if none */
	char text[LMTP_RESULT_TEXT_MAX];
};

/* Called once per transaction, after lmtp_txn_finish, never from inside an
 * lmtp_* call. @r[i] belongs to recipient i. @t is freed when this
 * returns; one from the caller's arena is not touched again once this is
 * called, so @done may reset that arena. */
typedef void lmtp_done_fn(struct lmtp_txn *t, const struct lmtp_result *r,
			  unsigned n, void *arg);
/* The transaction takes body bytes again after lmtp_txn_full said true. */
typedef void lmtp_writable_fn(struct lmtp_txn *t, void *arg);

struct lmtp_stats {
	uint64_t connects;     /* connections that completed LHLO */
	uint64_t connect_fail; /* attempts that never got there */
	uint64_t txns;         /* transactions completed */
	uint64_t txns_reused;  /* ... on a connection used before */
	uint64_t rcpt_ok, rcpt_temp, rcpt_perm;
	uint64_t retries; /* resent: stale pooled conn, or 451 4.3.0 for all */
	unsigned conns, conns_idle, queued;
};

/* A pool on @l; NULL on bad settings or OOM. */
struct lmtp_pool *lmtp_pool_new(struct loop *l, const struct lmtp_settings *s);
/* Close every connection. Transactions still open are dropped without a
 * callback; finish or abort them first. Run the loop afterwards so the
 * connections finish closing. Sets *p to NULL. */
void lmtp_pool_free(struct lmtp_pool **p);
void lmtp_pool_stats(const struct lmtp_pool *p, struct lmtp_stats *st_r);

/* Start a transaction: MAIL FROM:<@sender> (SIZE=@size when >= 0 and
 * offered), RCPT TO per recipient, DATA, pipelined. Strings are copied;
 * the transaction is allocated from @a (freed with it; NULL: malloc).
 * 0 or -EINVAL (CR, LF, '<' or '>' in an address, no recipient, more
 * than 1000) or -ENOMEM. */
int lmtp_txn_begin(struct lmtp_pool *p, struct arena *a, const char *sender,
		   const char *const *rcpts, unsigned n_rcpts, int64_t size,
		   lmtp_done_fn *done, void *arg, struct lmtp_txn **t_r);
/* Called when the transaction wants body bytes again (optional). */
void lmtp_txn_set_writable(struct lmtp_txn *t, lmtp_writable_fn *fn);
/* Body bytes as they came (not dot-stuffed); bare LF becomes CRLF and
 * lines starting with '.' are stuffed here. 0, or -ENOBUFS when the caller
 * kept writing after lmtp_txn_full said true (the transaction fails). */
int lmtp_txn_write(struct lmtp_txn *t, const void *data, size_t len);
/* True when the caller should stop feeding until the writable callback. */
bool lmtp_txn_full(struct lmtp_txn *t);
/* True when every recipient already has a final failure: the caller may
 * skip the rest of the body and finish. */
bool lmtp_txn_failed(const struct lmtp_txn *t);
/* End of body: send the final "." and wait for the replies. */
void lmtp_txn_finish(struct lmtp_txn *t);
/* Forget a transaction: no callback. A partly sent body is never
 * delivered (its connection is closed). Sets *t to NULL. */
void lmtp_txn_abort(struct lmtp_txn **t);

#endif
