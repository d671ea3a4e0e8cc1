/* smtp/lmtp_client: a pool of persistent LMTP connections to Dovecot.
 *
 * Connection states: CONNECTING -> GREETING -> LHLO -> READY, then per
 * transaction TXN (MAIL/RCPT/DATA replies) -> BODY (after 354) -> DOT
 * (one reply per accepted recipient) -> READY. A transaction that ends
 * without DATA goes through RSET. Transactions wait in a FIFO queue until
 * a READY connection takes them; the body is buffered (dot-stuffed, CRLF)
 * until Dovecot's 354 and streamed straight to the socket after it.
 * Callbacks to the caller always run from a zero timer, never from inside
 * an lmtp_* call. */
#include "smtp/lmtp_client.h"

/* system */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>

/* project */
#include "core/buf.h"
#include "core/conn.h"
#include "core/log.h"
#include "smtp/lmtp_parse.h"

#define LMTP_MAX_CONNS_DEFAULT 4
#define LMTP_CONNECT_MS        5000
#define LMTP_REPLY_MS          30000
#define LMTP_DATA_MS           120000
#define LMTP_IDLE_MS           60000
#define LMTP_BODY_HIGH         (256u * 1024u)
#define LMTP_RCPTS_MAX         1000
#define LMTP_ADDR_MAX          512
/* After a failed connect, wait this long before opening another while
 * other connections are still open (no reconnect storm). */
#define LMTP_CONNECT_BACKOFF_MS 1000
/* Body buffers of finished transactions kept for the next ones (no
 * malloc per message once warm; STYLE rule 13). */
#define LMTP_SPARE_MAX 8
#define LMTP_SPARE_CAP (64u * 1024u)

enum lmtp_conn_state {
	LMTP_CST_CONNECTING,
	LMTP_CST_GREETING,
	LMTP_CST_LHLO,
	LMTP_CST_READY,
	LMTP_CST_TXN,  /* MAIL, RCPT and DATA replies pending */
	LMTP_CST_BODY, /* 354 received: the body flows */
	LMTP_CST_DOT,  /* final "." sent: per-recipient replies pending */
	LMTP_CST_RSET,
	LMTP_CST_CLOSING,
};

static const char *const lmtp_cst_names[] = {
	"connecting", "greeting", "lhlo", "ready",   "txn",
	"body",       "dot",      "rset", "closing",
};

struct lmtp_conn {
	struct lmtp_pool *pool; /* NULL once the pool is freed */
	struct conn *c;
	struct lmtp_conn *prev, *next;
	enum lmtp_conn_state state;
	struct lmtp_txn *txn;
	unsigned discard;  /* replies still due for an aborted txn */
	unsigned next_cmd; /* without PIPELINING: next command to send */
	bool pipelining, size_ext;
	bool ever_ready;
	bool detached; /* moved from the pool's conns to its closing list */
	uint64_t id;
	uint64_t txns; /* transactions completed here */
	uint64_t start_ms;
	struct lmtp_parser parser;
};

struct lmtp_txn {
	struct loop *loop;
	struct lmtp_pool *pool; /* not used once complete */
	struct lmtp_conn *conn; /* NULL while queued or once complete */
	struct lmtp_txn *qnext;
	struct arena *arena; /* NULL: malloc'd */
	const char *sender;
	const char **rcpts;
	unsigned n_rcpts;
	int64_t size;
	struct lmtp_result *res;
	unsigned *acc; /* indexes of recipients Dovecot accepted */
	unsigned n_acc;
	unsigned replies;     /* MAIL/RCPT/DATA replies seen */
	unsigned dot_replies; /* replies after the "." */
	struct buf pending;   /* encoded body waiting for 354 */
	bool bol, cr;         /* encoder: at line start; last byte CR */
	bool queued, finished, complete, mail_failed, retried;
	bool blocked; /* lmtp_txn_full said true; writable is due */
	uint64_t body_in;
	uint64_t start_ms;
	uint64_t conn_id; /* last connection, for the log */
	struct loop_timer timer;
	lmtp_done_fn *done;
	lmtp_writable_fn *writable;
	void *arg;
};

struct lmtp_pool {
	struct loop *loop;
	struct lmtp_settings set;
	char lhlo[128];
	struct sockaddr_un addr;
	socklen_t addr_len;
	struct lmtp_conn *conns;
	struct lmtp_conn *closing; /* detached, waiting for CONN_EV_CLOSED */
	unsigned n_conns, n_connecting;
	struct lmtp_txn *qhead, *qtail;
	unsigned queued;
	uint64_t connect_after_ms; /* backoff after a failed connect */
	struct lmtp_stats st;
	struct buf spare[LMTP_SPARE_MAX];
	unsigned n_spare;
};

static void lmtp_pool_dispatch(struct lmtp_pool *p);
static void lmtp_conn_close(struct lmtp_conn *lc, const char *why);
static void lmtp_conn_event(struct conn *c, enum conn_ev ev, void *arg);

/* ---- results ---- */

static void lmtp_result_set(struct lmtp_result *res, unsigned code,
			    const char *status, const char *text)
{
	size_t i;

	res->code = code;
	snprintf(res->status, sizeof(res->status), "%s", status);
	for (i = 0; text[i] != '\0' && i < sizeof(res->text) - 1; i++)
		res->text[i] = text[i] == '\n' ? ' ' : text[i];
	res->text[i] = '\0';
}

static void lmtp_result_reply(struct lmtp_result *res,
			      const struct lmtp_reply *r)
{
	lmtp_result_set(res, r->code, r->status, r->text);
}

/* ---- transactions: callbacks from a zero timer ---- */

/* The body buffer of a new transaction: a spare one when there is. */
static void lmtp_pending_get(struct lmtp_pool *p, struct buf *b)
{
	if (p->n_spare == 0) {
		buf_init(b, 0);
		return;
	}
	*b = p->spare[--p->n_spare];
	buf_clear(b);
}

/* Done with @b: keep it as a spare, or free it. */
static void lmtp_pending_put(struct lmtp_pool *p, struct buf *b)
{
	if (b->data != NULL && b->cap <= LMTP_SPARE_CAP &&
	    p->n_spare < LMTP_SPARE_MAX) {
		p->spare[p->n_spare++] = *b;
		buf_init(b, 0);
		return;
	}
	buf_free(b);
}

static void lmtp_txn_release(struct lmtp_txn *t)
{
	if (t->pending.data != NULL)
		lmtp_pending_put(t->pool, &t->pending);
	if (t->arena == NULL)
		free(t);
}

static void lmtp_txn_timer(struct loop_timer *tm, void *arg)
{
	struct lmtp_txn *t = arg;

	(void)tm;
	if (t->complete && t->finished) {
		if (t->arena != NULL) {
			/* The caller may reset its arena in done: t is not
			 * touched after it. */
			lmtp_txn_release(t);
			t->done(t, t->res, t->n_rcpts, t->arg);
			return;
		}
		t->done(t, t->res, t->n_rcpts, t->arg);
		lmtp_txn_release(t);
		return;
	}
	if (t->blocked && !lmtp_txn_full(t)) {
		t->blocked = false;
		if (t->writable != NULL)
			t->writable(t, t->arg);
	}
}

static void lmtp_txn_kick(struct lmtp_txn *t)
{
	if (!loop_timer_armed(&t->timer))
		loop_timer_arm(t->loop, &t->timer, 0);
}

/* Every recipient has its result: detach, count, log, and call back
 * once the caller has finished. */
static void lmtp_txn_complete(struct lmtp_txn *t)
{
	struct lmtp_pool *p = t->pool;
	unsigned ok = 0, temp = 0, perm = 0;

	if (t->conn != NULL) {
		t->conn->txn = NULL;
		t->conn = NULL;
	}
	t->complete = true;
	lmtp_pending_put(p, &t->pending);
	for (unsigned i = 0; i < t->n_rcpts; i++) {
		unsigned code = t->res[i].code;

		if (lmtp_reply_ok(code))
			ok++;
		else if (code >= 500)
			perm++;
		else
			temp++;
		if (!lmtp_reply_ok(code))
			log_info("%016" PRIx64 " lmtp rcpt=%u code=%u "
				 "status=%s text=\"%s\"",
				 t->conn_id, i, code, t->res[i].status,
				 t->res[i].text);
		log_debug("%016" PRIx64 " lmtp rcpt=%u to=<%s> code=%u",
			  t->conn_id, i, t->rcpts[i], code);
	}
	p->st.txns++;
	p->st.rcpt_ok += ok;
	p->st.rcpt_temp += temp;
	p->st.rcpt_perm += perm;
	log_info("%016" PRIx64 " lmtp txn rcpts=%u ok=%u temp=%u perm=%u "
		 "bytes=%llu ms=%llu",
		 t->conn_id, t->n_rcpts, ok, temp, perm,
		 (unsigned long long)t->body_in,
		 (unsigned long long)(loop_now_ms(t->loop) - t->start_ms));
	if (t->finished || t->blocked)
		lmtp_txn_kick(t);
}

/* Give every recipient without a result this one, then complete. */
static void lmtp_txn_fail_rest(struct lmtp_txn *t, unsigned code,
			       const char *status, const char *text)
{
	for (unsigned i = 0; i < t->n_rcpts; i++) {
		if (t->res[i].code == 0)
			lmtp_result_set(&t->res[i], code, status, text);
	}
	lmtp_txn_complete(t);
}

static void lmtp_queue_push(struct lmtp_pool *p, struct lmtp_txn *t, bool front)
{
	t->queued = true;
	if (front) {
		t->qnext = p->qhead;
		p->qhead = t;
		if (p->qtail == NULL)
			p->qtail = t;
	} else {
		t->qnext = NULL;
		if (p->qtail != NULL)
			p->qtail->qnext = t;
		else
			p->qhead = t;
		p->qtail = t;
	}
	p->queued++;
}

static struct lmtp_txn *lmtp_queue_pop(struct lmtp_pool *p)
{
	struct lmtp_txn *t = p->qhead;

	if (t == NULL)
		return NULL;
	p->qhead = t->qnext;
	if (p->qhead == NULL)
		p->qtail = NULL;
	t->qnext = NULL;
	t->queued = false;
	p->queued--;
	return t;
}

static void lmtp_queue_remove(struct lmtp_pool *p, struct lmtp_txn *t)
{
	struct lmtp_txn **pp = &p->qhead, *prev = NULL;

	while (*pp != NULL && *pp != t) {
		prev = *pp;
		pp = &(*pp)->qnext;
	}
	if (*pp == NULL)
		return;
	*pp = t->qnext;
	if (p->qtail == t)
		p->qtail = prev;
	t->qnext = NULL;
	t->queued = false;
	p->queued--;
}

/* Dovecot cannot be reached: every queued transaction fails. */
static void lmtp_queue_fail_all(struct lmtp_pool *p, const char *why)
{
	struct lmtp_txn *t;
	char text[LMTP_RESULT_TEXT_MAX];

	snprintf(text, sizeof(text),
		 "Temporary failure: mailbox store unavailable (%s)", why);
	while ((t = lmtp_queue_pop(p)) != NULL)
		lmtp_txn_fail_rest(t, 451, "4.4.1", text);
}

/* ---- body encoding: CRLF line ends, dot-stuffing ---- */

/* Hand encoded bytes on: to the socket after 354, else to pending. */
static int lmtp_txn_out(struct lmtp_txn *t, const uint8_t *p, size_t n)
{
	uint32_t hard = t->pool->set.body_high * 4;
	int r;

	if (n == 0)
		return 0;
	if (t->conn != NULL && t->conn->state == LMTP_CST_BODY) {
		r = conn_write(t->conn->c, p, n);
		return r < 0 ? r : 0;
	}
	if (t->pending.len + n > hard)
		return -ENOBUFS;
	return buf_append(&t->pending, p, n);
}

#define LMTP_SCRATCH 8192

struct lmtp_scratch {
	uint8_t b[LMTP_SCRATCH];
	size_t n;
	int err;
};

static void lmtp_scratch_put(struct lmtp_txn *t, struct lmtp_scratch *s,
			     const uint8_t *p, size_t n)
{
	size_t k;
	int r;

	while (n > 0 && s->err == 0) {
		if (s->n == sizeof(s->b)) {
			r = lmtp_txn_out(t, s->b, s->n);
			if (r < 0) {
				s->err = r;
				return;
			}
			s->n = 0;
		}
		k = sizeof(s->b) - s->n;
		if (k > n)
			k = n;
		memcpy(s->b + s->n, p, k);
		s->n += k;
		p += k;
		n -= k;
	}
}

static int lmtp_scratch_flush(struct lmtp_txn *t, struct lmtp_scratch *s)
{
	if (s->err == 0 && s->n > 0)
		s->err = lmtp_txn_out(t, s->b, s->n);
	s->n = 0;
	return s->err;
}

static int lmtp_encode(struct lmtp_txn *t, const uint8_t *p, size_t len)
{
	struct lmtp_scratch s;
	const uint8_t *nl;
	size_t n;

	s.n = 0;
	s.err = 0;
	while (len > 0 && s.err == 0) {
		if (t->bol && p[0] == '.')
			lmtp_scratch_put(t, &s, (const uint8_t *)".", 1);
		nl = memchr(p, '\n', len);
		n = nl != NULL ? (size_t)(nl - p) : len;
		if (n > 0) {
			lmtp_scratch_put(t, &s, p, n);
			t->cr = p[n - 1] == '\r';
			t->bol = false;
		}
		if (nl == NULL)
			break;
		if (t->cr)
			lmtp_scratch_put(t, &s, (const uint8_t *)"\n", 1);
		else
			lmtp_scratch_put(t, &s, (const uint8_t *)"\r\n", 2);
		t->bol = true;
		t->cr = false;
		p += n + 1;
		len -= n + 1;
	}
	return lmtp_scratch_flush(t, &s);
}

/* The end of the body: CRLF if the last line had none, then ".". */
static int lmtp_encode_end(struct lmtp_txn *t)
{
	static const char crlf_dot[] = "\r\n.\r\n";

	if (t->bol)
		return lmtp_txn_out(t, (const uint8_t *)crlf_dot + 2, 3);
	if (t->cr)
		return lmtp_txn_out(t, (const uint8_t *)crlf_dot + 1, 4);
	return lmtp_txn_out(t, (const uint8_t *)crlf_dot, 5);
}

/* ---- connections ---- */

static void lmtp_conn_set_state(struct lmtp_conn *lc, enum lmtp_conn_state s)
{
	struct lmtp_settings *set = &lc->pool->set;
	uint64_t ms = 0;

	log_debug("%016" PRIx64 " lmtp state %s -> %s", lc->id,
		  lmtp_cst_names[lc->state], lmtp_cst_names[s]);
	lc->state = s;
	switch (s) {
	case LMTP_CST_CONNECTING:
	case LMTP_CST_GREETING:
	case LMTP_CST_LHLO:
		ms = set->connect_timeout_ms;
		break;
	case LMTP_CST_READY:
		ms = set->idle_timeout_ms;
		break;
	case LMTP_CST_TXN:
	case LMTP_CST_RSET:
		ms = set->reply_timeout_ms;
		break;
	case LMTP_CST_DOT:
		ms = set->data_timeout_ms;
		break;
	case LMTP_CST_BODY:
	case LMTP_CST_CLOSING:
		ms = 0;
		break;
	}
	conn_set_timeout(lc->c, ms);
}

static bool lmtp_conn_connecting(const struct lmtp_conn *lc)
{
	return lc->state == LMTP_CST_CONNECTING ||
	       lc->state == LMTP_CST_GREETING || lc->state == LMTP_CST_LHLO;
}

/* Take the connection out of the pool; deal with its transaction: a
 * transaction that got no reply yet on a reused connection (Dovecot
 * closed it while idle) is sent again on a fresh one, others fail. */
static void lmtp_conn_detach(struct lmtp_conn *lc, const char *why)
{
	struct lmtp_pool *p = lc->pool;
	struct lmtp_txn *t = lc->txn;
	char text[LMTP_RESULT_TEXT_MAX];

	if (lc->detached || p == NULL)
		return;
	lc->detached = true;
	if (lc->prev != NULL)
		lc->prev->next = lc->next;
	else
		p->conns = lc->next;
	if (lc->next != NULL)
		lc->next->prev = lc->prev;
	lc->prev = NULL;
	lc->next = p->closing;
	if (p->closing != NULL)
		p->closing->prev = lc;
	p->closing = lc;
	p->n_conns--;
	if (lmtp_conn_connecting(lc))
		p->n_connecting--;
	if (!lc->ever_ready) {
		p->st.connect_fail++;
		p->connect_after_ms =
			loop_now_ms(p->loop) + LMTP_CONNECT_BACKOFF_MS;
		log_warn("%016" PRIx64 " lmtp connect failed path=%s "
			 "reason=\"%s\"",
			 lc->id, p->addr.sun_path, why);
	} else {
		log_debug("%016" PRIx64 " lmtp close reason=\"%s\" txns=%llu",
			  lc->id, why, (unsigned long long)lc->txns);
	}
	if (t != NULL) {
		lc->txn = NULL;
		t->conn = NULL;
		if (t->replies == 0 && lc->txns > 0 && !t->retried) {
			t->retried = true;
			p->st.retries++;
			lmtp_queue_push(p, t, true);
		} else {
			snprintf(text, sizeof(text),
				 "Temporary failure: mailbox store "
				 "connection lost (%s)",
				 why);
			lmtp_txn_fail_rest(t, 451, "4.4.2", text);
		}
	}
	if (p->n_conns == 0 && p->queued > 0 && !lc->ever_ready)
		lmtp_queue_fail_all(p, why);
}

static void lmtp_conn_close(struct lmtp_conn *lc, const char *why)
{
	if (lc->state == LMTP_CST_CLOSING)
		return;
	lmtp_conn_detach(lc, why);
	lmtp_conn_set_state(lc, LMTP_CST_CLOSING);
	conn_close(lc->c, false);
}

static int lmtp_conn_open(struct lmtp_pool *p)
{
	struct lmtp_conn *lc = calloc(1, sizeof(*lc));

	if (lc == NULL)
		return -ENOMEM;
	lc->pool = p;
	lc->state = LMTP_CST_CONNECTING;
	lc->start_ms = loop_now_ms(p->loop);
	lmtp_parser_init(&lc->parser);
	lc->c = conn_connect(p->loop, (const struct sockaddr *)&p->addr,
			     p->addr_len, NULL, NULL, 0, lmtp_conn_event, lc);
	if (lc->c == NULL) {
		free(lc);
		p->st.connect_fail++;
		p->connect_after_ms =
			loop_now_ms(p->loop) + LMTP_CONNECT_BACKOFF_MS;
		log_warn("lmtp connect failed path=%s reason=\"%s\"",
			 p->addr.sun_path, "cannot create socket");
		return -EIO;
	}
	lc->id = conn_id(lc->c);
	lc->next = p->conns;
	if (p->conns != NULL)
		p->conns->prev = lc;
	p->conns = lc;
	p->n_conns++;
	p->n_connecting++;
	lmtp_conn_set_state(lc, LMTP_CST_CONNECTING);
	log_debug("%016" PRIx64 " lmtp connect path=%s", lc->id,
		  p->addr.sun_path);
	return 0;
}

static int lmtp_conn_send(struct lmtp_conn *lc, const char *s, size_t n)
{
	int r = conn_write(lc->c, s, n);

	if (r < 0)
		lmtp_conn_close(lc, "write failed");
	return r;
}

/* Command @i of the transaction: 0 MAIL, 1..n RCPT, n+1 DATA. */
static int lmtp_cmd_format(const struct lmtp_conn *lc, const struct lmtp_txn *t,
			   unsigned i, char *buf, size_t size)
{
	int n;

	if (i == 0 && lc->size_ext && t->size >= 0)
		n = snprintf(buf, size, "MAIL FROM:<%s> SIZE=%lld\r\n",
			     t->sender, (long long)t->size);
	else if (i == 0)
		n = snprintf(buf, size, "MAIL FROM:<%s>\r\n", t->sender);
	else if (i <= t->n_rcpts)
		n = snprintf(buf, size, "RCPT TO:<%s>\r\n", t->rcpts[i - 1]);
	else
		n = snprintf(buf, size, "DATA\r\n");
	return n > 0 && (size_t)n < size ? n : -1;
}

/* Send MAIL, every RCPT and DATA in one go (or only MAIL without
 * PIPELINING). */
static void lmtp_conn_attach(struct lmtp_conn *lc, struct lmtp_txn *t)
{
	char buf[2048];
	size_t len = 0;
	unsigned last = lc->pipelining ? t->n_rcpts + 1 : 0;
	int n;

	lc->txn = t;
	t->conn = lc;
	t->conn_id = lc->id;
	t->replies = 0;
	t->n_acc = 0;
	t->mail_failed = false;
	lc->next_cmd = last + 1;
	lmtp_conn_set_state(lc, LMTP_CST_TXN);
	for (unsigned i = 0; i <= last; i++) {
		if (len + LMTP_ADDR_MAX + 64 > sizeof(buf)) {
			if (lmtp_conn_send(lc, buf, len) < 0)
				return;
			len = 0;
		}
		n = lmtp_cmd_format(lc, t, i, buf + len, sizeof(buf) - len);
		if (n < 0) {
			lmtp_conn_close(lc, "command too long");
			return;
		}
		len += (size_t)n;
	}
	(void)lmtp_conn_send(lc, buf, len);
}

/* Hand the connection the next queued transaction, or let it idle. */
static void lmtp_conn_ready(struct lmtp_conn *lc)
{
	lmtp_conn_set_state(lc, LMTP_CST_READY);
	lmtp_pool_dispatch(lc->pool);
}

/* The transaction of @lc completed before DATA: reset the session. */
static void lmtp_conn_rset(struct lmtp_conn *lc)
{
	lmtp_conn_set_state(lc, LMTP_CST_RSET);
	(void)lmtp_conn_send(lc, "RSET\r\n", 6);
}

/* 354 arrived: release the buffered body, and the end if it is due. */
static void lmtp_conn_body(struct lmtp_conn *lc)
{
	struct lmtp_txn *t = lc->txn;
	int r = 0;

	lmtp_conn_set_state(lc, LMTP_CST_BODY);
	if (t->pending.len > 0) {
		r = conn_write(lc->c, buf_head(&t->pending), t->pending.len);
		lmtp_pending_put(lc->pool, &t->pending);
	}
	if (r == 0 && t->finished) {
		r = lmtp_encode_end(t);
		if (r == 0)
			lmtp_conn_set_state(lc, LMTP_CST_DOT);
	}
	if (r < 0) {
		lmtp_conn_close(lc, "write failed");
		return;
	}
	if (t->blocked && !lmtp_txn_full(t))
		lmtp_txn_kick(t);
}

/* Every recipient refused with Dovecot's "451 4.3.0 Temporary internal
 * error": what an lmtp process answers once after Dovecot's auth process
 * died under it (its userdb connection was dead; it reconnects for the
 * next lookup). Nothing of the body was sent: send the transaction again,
 * once, after an RSET. True when it was requeued. */
static bool lmtp_txn_retryable(const struct lmtp_txn *t)
{
	if (t->retried || t->mail_failed || t->n_acc > 0)
		return false;
	for (unsigned i = 0; i < t->n_rcpts; i++) {
		if (t->res[i].code != 451 ||
		    strcmp(t->res[i].status, "4.3.0") != 0)
			return false;
	}
	return true;
}

static bool lmtp_txn_retry_internal(struct lmtp_conn *lc, struct lmtp_txn *t)
{
	struct lmtp_pool *p = lc->pool;

	if (!lmtp_txn_retryable(t))
		return false;
	for (unsigned i = 0; i < t->n_rcpts; i++)
		memset(&t->res[i], 0, sizeof(t->res[i]));
	log_info("%016" PRIx64 " lmtp retry reason=\"451 4.3.0 for every "
		 "recipient\"",
		 lc->id);
	t->retried = true;
	p->st.retries++;
	lc->txn = NULL;
	t->conn = NULL;
	lmtp_conn_rset(lc);
	lmtp_queue_push(p, t, true);
	lmtp_pool_dispatch(p);
	return true;
}

/* One reply while MAIL, RCPT and DATA are pending. */
static void lmtp_conn_txn_reply(struct lmtp_conn *lc,
				const struct lmtp_reply *r)
{
	struct lmtp_txn *t = lc->txn;
	unsigned idx = t->replies++;
	char buf[LMTP_ADDR_MAX + 64];
	int n;

	if (idx == 0) {
		if (!lmtp_reply_ok(r->code)) {
			t->mail_failed = true;
			for (unsigned i = 0; i < t->n_rcpts; i++)
				lmtp_result_reply(&t->res[i], r);
		}
	} else if (idx <= t->n_rcpts) {
		if (!t->mail_failed && lmtp_reply_ok(r->code))
			t->acc[t->n_acc++] = idx - 1;
		else if (!t->mail_failed)
			lmtp_result_reply(&t->res[idx - 1], r);
	} else {
		/* DATA */
		if (r->code == 354 && t->n_acc > 0) {
			lmtp_conn_body(lc);
			return;
		}
		if (r->code == 354) {
			/* DATA accepted with no recipient: nothing sane
			 * to send; every recipient already has its result. */
			lmtp_txn_complete(t);
			lmtp_conn_close(lc, "354 without recipients");
			return;
		}
		if (lmtp_txn_retry_internal(lc, t))
			return;
		for (unsigned i = 0; i < t->n_acc; i++)
			lmtp_result_reply(&t->res[t->acc[i]], r);
		lmtp_txn_complete(t);
		lmtp_conn_rset(lc);
		return;
	}
	if (!lc->pipelining) {
		n = lmtp_cmd_format(lc, t, lc->next_cmd++, buf, sizeof(buf));
		if (n < 0)
			lmtp_conn_close(lc, "command too long");
		else
			(void)lmtp_conn_send(lc, buf, (size_t)n);
	}
}

/* LHLO capabilities: one keyword per line of the reply text. */
static void lmtp_conn_caps(struct lmtp_conn *lc, const char *text)
{
	const char *line = text, *end;
	size_t n;

	while (*line != '\0') {
		end = strchr(line, '\n');
		n = end != NULL ? (size_t)(end - line) : strlen(line);
		if (n == 10 && strncasecmp(line, "PIPELINING", 10) == 0)
			lc->pipelining = true;
		if ((n == 4 || (n > 4 && line[4] == ' ')) &&
		    strncasecmp(line, "SIZE", 4) == 0)
			lc->size_ext = true;
		if (end == NULL)
			break;
		line = end + 1;
	}
}

/* One complete reply from Dovecot. */
static void lmtp_conn_reply(struct lmtp_conn *lc, const struct lmtp_reply *r)
{
	struct lmtp_pool *p = lc->pool;
	struct lmtp_txn *t = lc->txn;
	char buf[300];
	int n;

	switch (lc->state) {
	case LMTP_CST_GREETING:
		if (r->code != 220) {
			lmtp_conn_close(lc, "bad greeting");
			return;
		}
		n = snprintf(buf, sizeof(buf), "LHLO %s\r\n", p->lhlo);
		lmtp_conn_set_state(lc, LMTP_CST_LHLO);
		(void)lmtp_conn_send(lc, buf, (size_t)n);
		return;
	case LMTP_CST_LHLO:
		if (r->code != 250) {
			lmtp_conn_close(lc, "LHLO refused");
			return;
		}
		lmtp_conn_caps(lc, r->text);
		lc->ever_ready = true;
		p->n_connecting--;
		p->st.connects++;
		log_debug("%016" PRIx64 " lmtp ready pipelining=%d size=%d "
			  "ms=%llu",
			  lc->id, lc->pipelining, lc->size_ext,
			  (unsigned long long)(loop_now_ms(p->loop) -
					       lc->start_ms));
		lmtp_conn_ready(lc);
		return;
	case LMTP_CST_TXN:
		lmtp_conn_txn_reply(lc, r);
		return;
	case LMTP_CST_DOT:
		if (t == NULL) {
			/* The caller aborted after the "." */
			if (--lc->discard == 0) {
				lc->txns++;
				lmtp_conn_ready(lc);
			}
			return;
		}
		lmtp_result_reply(&t->res[t->acc[t->dot_replies++]], r);
		if (t->dot_replies < t->n_acc)
			return;
		if (lc->txns > 0)
			p->st.txns_reused++;
		lc->txns++;
		lmtp_txn_complete(t);
		lmtp_conn_ready(lc);
		return;
	case LMTP_CST_RSET:
		if (!lmtp_reply_ok(r->code)) {
			lmtp_conn_close(lc, "RSET refused");
			return;
		}
		lc->txns++;
		lmtp_conn_ready(lc);
		return;
	case LMTP_CST_READY:
	case LMTP_CST_BODY:
	case LMTP_CST_CONNECTING:
	case LMTP_CST_CLOSING:
		break;
	}
	/* Dovecot says something unasked (e.g. "421 4.4.2 ... timed out"
	 * before it closes): this connection is done. */
	log_debug("%016" PRIx64 " lmtp unexpected reply state=%s code=%u "
		  "text=\"%s\"",
		  lc->id, lmtp_cst_names[lc->state], r->code, r->text);
	lmtp_conn_close(lc, "unexpected reply");
}

static void lmtp_conn_input(struct lmtp_conn *lc)
{
	struct buf *in = conn_input(lc->c);
	size_t used;
	int r;

	while (in->len > 0 && lc->state != LMTP_CST_CLOSING) {
		r = lmtp_parse_reply(&lc->parser, buf_head(in), in->len, &used);
		conn_consume(lc->c, used);
		if (r == LMTP_PARSE_AGAIN)
			break;
		if (r == LMTP_PARSE_INVALID) {
			log_warn("%016" PRIx64 " lmtp bad reply error=\"%s\"",
				 lc->id, lc->parser.error);
			lmtp_conn_close(lc, "protocol error");
			break;
		}
		lmtp_conn_reply(lc, &lc->parser.reply);
	}
}

static void lmtp_conn_timeout(struct lmtp_conn *lc)
{
	struct lmtp_txn *t = lc->txn;

	if (lc->state == LMTP_CST_READY) {
		lmtp_conn_close(lc, "idle");
		return;
	}
	if (t != NULL) {
		lc->txn = NULL;
		t->conn = NULL;
		lmtp_txn_fail_rest(t, 451, "4.4.2",
				   "Temporary failure: mailbox store timed "
				   "out");
	}
	lmtp_conn_close(lc, "timeout");
}

static void lmtp_conn_event(struct conn *c, enum conn_ev ev, void *arg)
{
	struct lmtp_conn *lc = arg;
	struct lmtp_txn *t;

	switch (ev) {
	case CONN_EV_CONNECTED:
		lmtp_conn_set_state(lc, LMTP_CST_GREETING);
		break;
	case CONN_EV_DATA:
		lmtp_conn_input(lc);
		break;
	case CONN_EV_DRAINED:
		t = lc->txn;
		if (lc->state == LMTP_CST_BODY && t != NULL && t->blocked)
			lmtp_txn_kick(t);
		break;
	case CONN_EV_TIMEOUT:
		lmtp_conn_timeout(lc);
		break;
	case CONN_EV_CLOSED:
		/* Our own closes were detached already; the pool may be
		 * gone (pool == NULL). */
		lmtp_conn_detach(lc, conn_close_reason(c));
		if (lc->pool != NULL) {
			if (lc->prev != NULL)
				lc->prev->next = lc->next;
			else
				lc->pool->closing = lc->next;
			if (lc->next != NULL)
				lc->next->prev = lc->prev;
			lmtp_pool_dispatch(lc->pool);
		}
		free(lc);
		break;
	case CONN_EV_TLS_READY:
		break;
	}
}

/* ---- pool ---- */

static void lmtp_pool_dispatch(struct lmtp_pool *p)
{
	struct lmtp_conn *lc;
	unsigned soon = p->n_connecting;
	uint64_t now;

	while (p->qhead != NULL) {
		for (lc = p->conns; lc != NULL; lc = lc->next) {
			if (lc->state == LMTP_CST_READY && lc->txn == NULL)
				break;
		}
		if (lc == NULL)
			break;
		lmtp_conn_attach(lc, lmtp_queue_pop(p));
	}
	if (p->qhead == NULL)
		return;
	/* A connection waiting for its RSET reply is free in a moment. */
	for (lc = p->conns; lc != NULL; lc = lc->next) {
		if (lc->state == LMTP_CST_RSET)
			soon++;
	}
	while (p->queued > soon && p->n_conns < p->set.max_conns) {
		now = loop_now_ms(p->loop);
		if (p->n_conns > 0 && now < p->connect_after_ms)
			break; /* others are open: wait for them */
		if (lmtp_conn_open(p) < 0) {
			if (p->n_conns == 0)
				lmtp_queue_fail_all(p, "cannot connect");
			break;
		}
		soon++;
	}
}

struct lmtp_pool *lmtp_pool_new(struct loop *l, const struct lmtp_settings *s)
{
	struct lmtp_pool *p;
	size_t len;

	if (s->socket_path == NULL)
		return NULL;
	len = strlen(s->socket_path);
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	if (len == 0 || len >= sizeof(p->addr.sun_path)) {
		free(p);
		return NULL;
	}
	p->loop = l;
	p->set = *s;
	p->set.socket_path = NULL;
	p->set.lhlo_name = NULL;
	snprintf(p->lhlo, sizeof(p->lhlo), "%s",
		 s->lhlo_name != NULL ? s->lhlo_name : "ringmail");
	if (p->set.max_conns == 0)
		p->set.max_conns = LMTP_MAX_CONNS_DEFAULT;
	if (p->set.connect_timeout_ms == 0)
		p->set.connect_timeout_ms = LMTP_CONNECT_MS;
	if (p->set.reply_timeout_ms == 0)
		p->set.reply_timeout_ms = LMTP_REPLY_MS;
	if (p->set.data_timeout_ms == 0)
		p->set.data_timeout_ms = LMTP_DATA_MS;
	if (p->set.idle_timeout_ms == 0)
		p->set.idle_timeout_ms = LMTP_IDLE_MS;
	if (p->set.body_high == 0)
		p->set.body_high = LMTP_BODY_HIGH;
	p->addr.sun_family = AF_UNIX;
	memcpy(p->addr.sun_path, s->socket_path, len + 1);
	p->addr_len =
		(socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	return p;
}

void lmtp_pool_free(struct lmtp_pool **pp)
{
	struct lmtp_pool *p = *pp;
	struct lmtp_conn *lc, *next;
	struct lmtp_txn *t;

	if (p == NULL)
		return;
	*pp = NULL;
	while ((t = lmtp_queue_pop(p)) != NULL)
		loop_timer_disarm(p->loop, &t->timer);
	for (lc = p->conns; lc != NULL; lc = next) {
		next = lc->next;
		if (lc->txn != NULL) {
			loop_timer_disarm(p->loop, &lc->txn->timer);
			lc->txn->conn = NULL;
			lc->txn = NULL;
		}
		lc->pool = NULL;
		lc->detached = true;
		lc->state = LMTP_CST_CLOSING;
		conn_close(lc->c, false);
	}
	for (lc = p->closing; lc != NULL; lc = lc->next)
		lc->pool = NULL;
	while (p->n_spare > 0)
		buf_free(&p->spare[--p->n_spare]);
	free(p);
}

void lmtp_pool_stats(const struct lmtp_pool *p, struct lmtp_stats *st_r)
{
	unsigned idle = 0;

	*st_r = p->st;
	for (const struct lmtp_conn *lc = p->conns; lc != NULL; lc = lc->next)
		if (lc->state == LMTP_CST_READY && lc->txn == NULL)
			idle++;
	st_r->conns = p->n_conns;
	st_r->conns_idle = idle;
	st_r->queued = p->queued;
}

/* ---- transactions: API ---- */

static bool lmtp_addr_ok(const char *s, bool empty_ok)
{
	size_t n = strlen(s);

	if (n == 0)
		return empty_ok;
	if (n > LMTP_ADDR_MAX)
		return false;
	return strpbrk(s, "\r\n<> ") == NULL;
}

int lmtp_txn_begin(struct lmtp_pool *p, struct arena *a, const char *sender,
		   const char *const *rcpts, unsigned n_rcpts, int64_t size,
		   lmtp_done_fn *done, void *arg, struct lmtp_txn **t_r)
{
	size_t need, off, slen, rlen;
	struct lmtp_txn *t;
	uint8_t *mem;

	*t_r = NULL;
	if (sender == NULL || !lmtp_addr_ok(sender, true) || n_rcpts == 0 ||
	    n_rcpts > LMTP_RCPTS_MAX || done == NULL)
		return -EINVAL;
	slen = strlen(sender) + 1;
	need = sizeof(*t) +
	       n_rcpts * (sizeof(struct lmtp_result) + sizeof(char *) +
			  sizeof(unsigned)) +
	       slen;
	for (unsigned i = 0; i < n_rcpts; i++) {
		if (rcpts[i] == NULL || !lmtp_addr_ok(rcpts[i], false))
			return -EINVAL;
		need += strlen(rcpts[i]) + 1;
	}
	mem = a != NULL ? arena_zalloc(a, need) : calloc(1, need);
	if (mem == NULL)
		return -ENOMEM;
	t = (struct lmtp_txn *)mem;
	off = sizeof(*t);
	t->res = (struct lmtp_result *)(mem + off);
	off += n_rcpts * sizeof(struct lmtp_result);
	t->rcpts = (const char **)(mem + off);
	off += n_rcpts * sizeof(char *);
	t->acc = (unsigned *)(mem + off);
	off += n_rcpts * sizeof(unsigned);
	memcpy(mem + off, sender, slen);
	t->sender = (const char *)(mem + off);
	off += slen;
	for (unsigned i = 0; i < n_rcpts; i++) {
		rlen = strlen(rcpts[i]) + 1;
		memcpy(mem + off, rcpts[i], rlen);
		t->rcpts[i] = (const char *)(mem + off);
		off += rlen;
	}
	t->loop = p->loop;
	t->pool = p;
	t->arena = a;
	t->n_rcpts = n_rcpts;
	t->size = size;
	t->bol = true;
	t->done = done;
	t->arg = arg;
	t->start_ms = loop_now_ms(p->loop);
	lmtp_pending_get(p, &t->pending);
	loop_timer_init(&t->timer, lmtp_txn_timer, t);
	lmtp_queue_push(p, t, false);
	lmtp_pool_dispatch(p);
	*t_r = t;
	return 0;
}

void lmtp_txn_set_writable(struct lmtp_txn *t, lmtp_writable_fn *fn)
{
	t->writable = fn;
}

bool lmtp_txn_full(struct lmtp_txn *t)
{
	uint32_t high;

	if (t->complete)
		return false;
	high = t->pool->set.body_high;
	if (t->pending.len >= high ||
	    (t->conn != NULL && t->conn->state == LMTP_CST_BODY &&
	     conn_pending(t->conn->c) >= high)) {
		t->blocked = true;
		return true;
	}
	return false;
}

bool lmtp_txn_failed(const struct lmtp_txn *t)
{
	/* Not final while it may still be sent again. */
	if (!t->complete && lmtp_txn_retryable(t))
		return false;
	for (unsigned i = 0; i < t->n_rcpts; i++) {
		if (t->res[i].code == 0 || lmtp_reply_ok(t->res[i].code))
			return false;
	}
	return true;
}

int lmtp_txn_write(struct lmtp_txn *t, const void *data, size_t len)
{
	struct lmtp_conn *lc = t->conn;
	int r;

	if (t->complete || t->finished)
		return 0; /* failed already: the body goes nowhere */
	t->body_in += len;
	r = lmtp_encode(t, data, len);
	if (r == 0)
		return 0;
	log_warn("%016" PRIx64 " lmtp body overflow pending=%u error=\"%s\"",
		 t->conn_id, t->pending.len, strerror(-r));
	if (t->queued)
		lmtp_queue_remove(t->pool, t);
	if (lc != NULL) {
		lc->txn = NULL;
		t->conn = NULL;
		lmtp_conn_close(lc, "body overflow");
	}
	lmtp_txn_fail_rest(t, 451, "4.3.0",
			   "Temporary failure: local error, body overflow");
	return -ENOBUFS;
}

void lmtp_txn_finish(struct lmtp_txn *t)
{
	struct lmtp_conn *lc = t->conn;
	int r;

	if (t->finished)
		return;
	t->finished = true;
	if (t->complete) {
		lmtp_txn_kick(t);
		return;
	}
	if (lc == NULL || lc->state != LMTP_CST_BODY)
		return; /* the "." goes out after the 354 */
	r = lmtp_encode_end(t);
	if (r < 0) {
		lmtp_conn_close(lc, "write failed");
		return;
	}
	lmtp_conn_set_state(lc, LMTP_CST_DOT);
}

void lmtp_txn_abort(struct lmtp_txn **tp)
{
	struct lmtp_txn *t = *tp;
	struct lmtp_conn *lc;

	if (t == NULL)
		return;
	*tp = NULL;
	loop_timer_disarm(t->loop, &t->timer);
	lc = t->conn;
	if (t->queued) {
		lmtp_queue_remove(t->pool, t);
	} else if (lc != NULL) {
		lc->txn = NULL;
		t->conn = NULL;
		if (lc->state == LMTP_CST_DOT)
			lc->discard = t->n_acc - t->dot_replies;
		else
			lmtp_conn_close(lc, "transaction aborted");
	}
	lmtp_txn_release(t);
}
