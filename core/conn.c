/* core/conn: plaintext streams over plain, userspace-TLS or kernel-TLS
 * transports, on top of a loop connection. */
#include "core/conn.h"

/* system */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* project */
#include "core/log.h"
#include "core/tls.h"

#define CONN_INPUT_MAX_DEFAULT (64u * 1024u)
/* One receive completion may land after the input reached its limit. */
#define CONN_INPUT_SLACK (256u * 1024u)
/* Plaintext a session may write before its TLS handshake completes. */
#define CONN_EARLY_OUT_MAX (64u * 1024u)

/* TLS content types (RFC 8446 section 5.1). */
#define CONN_TLS_HANDSHAKE 22
#define CONN_TLS_ALERT     21
#define CONN_TLS_APP_DATA  23

struct conn {
	struct loop *loop;
	struct loop_conn *lc;
	struct tls_conn *tls;
	conn_fn *fn;
	void *arg;

	struct buf in;        /* plaintext for the session */
	struct buf early_out; /* plaintext written before TLS was ready */
	uint32_t input_max;

	enum conn_transport xprt;
	bool tls_ready;
	bool tls_client;
	bool rx_paused;
	bool closing;     /* conn_close called or failure: no more events */
	bool dispatching; /* inside a session callback */
	bool close_pending;

	struct loop_timer timer;
	uint64_t timeout_ms;
	uint64_t last_input_ms;

	uint64_t id;
	uint64_t bytes_in, bytes_out;
	char reason[160];
};

static void conn_loop_event(struct loop_conn *lc, const struct loop_conn_ev *ev,
			    void *arg);

/* ---- helpers ---- */

static void conn_set_reason(struct conn *c, const char *reason)
{
	if (c->reason[0] != '\0')
		return; /* keep the first reason */
	snprintf(c->reason, sizeof(c->reason), "%s", reason);
}

/* Report an event to the session unless the conn is closing. Returns
 * false when the session closed the conn from the callback. */
static bool conn_emit(struct conn *c, enum conn_ev ev)
{
	if (c->closing)
		return false;
	c->dispatching = true;
	c->fn(c, ev, c->arg);
	c->dispatching = false;
	return !c->closing;
}

/* Close after an error or EOF the session did not ask for. */
static void conn_fail(struct conn *c, const char *reason)
{
	conn_set_reason(c, reason);
	conn_close(c, false);
}

static void conn_rx_update(struct conn *c)
{
	bool full = c->in.len >= c->input_max;

	if (c->closing || c->lc == NULL)
		return;
	if (full && !c->rx_paused) {
		c->rx_paused = true;
		loop_conn_recv_pause(c->lc);
	} else if (!full && c->rx_paused) {
		c->rx_paused = false;
		loop_conn_recv_resume(c->lc);
	}
}

/* ---- TLS engine callbacks ---- */

static int conn_tls_out(void *arg, uint8_t record_type, const uint8_t *data,
			size_t len)
{
	struct conn *c = arg;
	int r;

	if (c->lc == NULL)
		return -EPIPE;
	if (record_type != 0)
		r = loop_conn_send_tls_record(c->lc, record_type, data, len);
	else
		r = loop_conn_send(c->lc, data, len);
	if (r == 0)
		c->bytes_out += len;
	return r;
}

static int conn_tls_flush(void *arg, const uint8_t *data, size_t len)
{
	struct conn *c = arg;
	ssize_t w = 0;

	if (c->lc == NULL)
		return 0;
	if (loop_conn_pending(c->lc) == 0) {
		/* Nothing queued ahead: the bytes may go out directly, so the
		 * kernel can take over encryption right after them. */
		w = send(loop_conn_fd(c->lc), data, len,
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0)
			w = 0;
		if ((size_t)w == len) {
			c->bytes_out += len;
			return 1;
		}
	}
	c->bytes_out += (size_t)w;
	(void)conn_tls_out(c, 0, data + w, len - (size_t)w);
	return 0;
}

static void conn_noop(struct conn *c, enum conn_ev ev, void *arg)
{
	(void)c;
	(void)ev;
	(void)arg;
}

static int conn_tls_start(struct conn *c, struct tls_ctx *ctx, const char *sni)
{
	struct tls_conn_io io = {
		.out = conn_tls_out,
		.flush = conn_tls_flush,
		.arg = c,
		.fd = loop_conn_fd(c->lc),
	};

	if (tls_conn_new(ctx, &io, sni, &c->tls) < 0)
		return -1;
	c->xprt = CONN_XPRT_TLS_USER;
	c->tls_ready = false;
	return 0;
}

/* The handshake just completed: engage kernel receive where possible and
 * release what the session wrote early. */
static bool conn_tls_ready(struct conn *c)
{
	if (tls_conn_ktls_tx(c->tls))
		c->xprt = CONN_XPRT_TLS_KERNEL;
	if (tls_conn_ktls_rx_try(c->tls) == 1) {
		c->xprt = CONN_XPRT_TLS_KERNEL;
		loop_conn_set_tls_records(c->lc);
	}
	c->tls_ready = true;
	log_debug("%016" PRIx64 " tls ready version=%s cipher=%s alpn=%s "
		  "sni=%s ktls_tx=%d ktls_rx=%d",
		  c->id, tls_conn_version(c->tls), tls_conn_cipher(c->tls),
		  tls_conn_alpn(c->tls), tls_conn_sni(c->tls),
		  tls_conn_ktls_tx(c->tls), tls_conn_ktls_rx(c->tls));
	if (c->early_out.len > 0) {
		if (tls_conn_write(c->tls, buf_head(&c->early_out),
				   c->early_out.len) < 0) {
			conn_fail(c, "tls: write failed");
			return false;
		}
		buf_free(&c->early_out);
	}
	return conn_emit(c, CONN_EV_TLS_READY);
}

/* Run the engine over what was fed; hand plaintext to the session. */
static void conn_tls_pump(struct conn *c)
{
	int r;
	uint32_t before;
	char why[140];

	while (!c->closing && c->tls != NULL) {
		before = c->in.len;
		r = tls_conn_process(c->tls, &c->in);
		if (r == -1) {
			snprintf(why, sizeof(why), "tls: %s",
				 tls_conn_error(c->tls));
			conn_fail(c, why);
			return;
		}
		if (r == -2) {
			conn_fail(c, "tls close_notify");
			return;
		}
		if (!c->tls_ready && tls_conn_handshake_done(c->tls) &&
		    !conn_tls_ready(c))
			return;
		if (c->in.len > before) {
			c->last_input_ms = loop_now_ms(c->loop);
			if (!conn_emit(c, CONN_EV_DATA))
				return;
		}
		if (r == 0)
			break;
		if (c->in.len >= c->input_max)
			break; /* resumed by conn_consume */
	}
	conn_rx_update(c);
}

/* ---- input from the loop ---- */

/* Does a decrypted handshake record hold only NewSessionTicket messages
 * (type 4)? Those may be dropped; anything else (KeyUpdate) may not. */
static bool conn_tls_only_tickets(const uint8_t *p, size_t len)
{
	size_t off = 0, mlen;

	if (len == 0)
		return false;
	while (off < len) {
		if (len - off < 4 || p[off] != 4)
			return false;
		mlen = ((size_t)p[off + 1] << 16) | ((size_t)p[off + 2] << 8) |
		       p[off + 3];
		if (mlen > len - off - 4)
			return false;
		off += 4 + mlen;
	}
	return true;
}

static void conn_recv(struct conn *c, const struct loop_conn_ev *ev)
{
	c->bytes_in += ev->len;
	if (c->tls != NULL && tls_conn_ktls_rx(c->tls)) {
		/* The kernel decrypted one record. */
		if (ev->tls_record_type == CONN_TLS_ALERT) {
			conn_fail(c, ev->len >= 2 && ev->data[1] == 0
					     ? "tls close_notify"
					     : "tls alert");
			return;
		}
		if (ev->tls_record_type == CONN_TLS_HANDSHAKE &&
		    conn_tls_only_tickets(ev->data, ev->len))
			return; /* TLS 1.3 session tickets: we do not resume */
		if (ev->tls_record_type != CONN_TLS_APP_DATA) {
			/* Handshake messages after the handshake (a TLS 1.3
			 * KeyUpdate) cannot be handled with kernel receive
			 * on Linux 6.1: close. */
			conn_fail(c, "tls: non-data record on kernel TLS");
			return;
		}
	} else if (c->tls != NULL) {
		if (tls_conn_feed(c->tls, ev->data, ev->len) < 0) {
			conn_fail(c, "tls: input overflow");
			return;
		}
		conn_tls_pump(c);
		return;
	}
	if (buf_append(&c->in, ev->data, ev->len) < 0) {
		conn_fail(c, "input overflow");
		return;
	}
	c->last_input_ms = loop_now_ms(c->loop);
	if (!conn_emit(c, CONN_EV_DATA))
		return;
	conn_rx_update(c);
}

static void conn_free(struct conn *c)
{
	loop_timer_disarm(c->loop, &c->timer);
	if (c->tls != NULL)
		tls_conn_free(&c->tls);
	buf_free(&c->in);
	buf_free(&c->early_out);
	free(c);
}

static void conn_loop_event(struct loop_conn *lc, const struct loop_conn_ev *ev,
			    void *arg)
{
	struct conn *c = arg;

	(void)lc;
	switch (ev->type) {
	case LOOP_CONN_EV_CONNECTED:
		if (c->tls != NULL)
			conn_tls_pump(c); /* sends the ClientHello */
		else
			(void)conn_emit(c, CONN_EV_CONNECTED);
		break;
	case LOOP_CONN_EV_RECV:
		if (!c->closing)
			conn_recv(c, ev);
		break;
	case LOOP_CONN_EV_SENT:
		if (!c->closing)
			(void)conn_emit(c, CONN_EV_DRAINED);
		break;
	case LOOP_CONN_EV_EOF:
		conn_fail(c, "eof");
		break;
	case LOOP_CONN_EV_ERROR:
		conn_fail(c, strerror(-ev->err));
		break;
	case LOOP_CONN_EV_CLOSED:
		c->lc = NULL;
		c->closing = false; /* let the final event through */
		(void)conn_emit(c, CONN_EV_CLOSED);
		conn_free(c);
		break;
	}
}

static void conn_timer_fire(struct loop_timer *t, void *arg)
{
	struct conn *c = arg;
	uint64_t now = loop_now_ms(c->loop);
	uint64_t due = c->last_input_ms + c->timeout_ms;

	(void)t;
	if (c->closing || c->timeout_ms == 0)
		return;
	if (now < due) {
		loop_timer_arm(c->loop, &c->timer, due - now);
		return;
	}
	conn_set_reason(c, "timeout");
	(void)conn_emit(c, CONN_EV_TIMEOUT);
}

/* ---- public API ---- */

static struct conn *conn_alloc(struct loop *l, uint32_t input_max, conn_fn *fn,
			       void *arg)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->loop = l;
	c->fn = fn;
	c->arg = arg;
	c->input_max = input_max != 0 ? input_max : CONN_INPUT_MAX_DEFAULT;
	buf_init(&c->in, c->input_max + CONN_INPUT_SLACK);
	buf_init(&c->early_out, CONN_EARLY_OUT_MAX);
	loop_timer_init(&c->timer, conn_timer_fire, c);
	c->last_input_ms = loop_now_ms(l);
	c->xprt = CONN_XPRT_PLAIN;
	return c;
}

struct conn *conn_new(struct loop *l, int fd, struct tls_ctx *tls,
		      uint32_t input_max, conn_fn *fn, void *arg)
{
	struct conn *c = conn_alloc(l, input_max, fn, arg);

	if (c == NULL) {
		close(fd);
		return NULL;
	}
	c->lc = loop_conn_new(l, fd, conn_loop_event, c);
	if (c->lc == NULL) {
		conn_free(c);
		return NULL;
	}
	c->id = loop_conn_id(c->lc);
	if (tls != NULL && conn_tls_start(c, tls, NULL) < 0) {
		c->fn = conn_noop; /* the caller never saw this conn */
		conn_fail(c, "tls: setup failed");
		return NULL;
	}
	return c;
}

struct conn *conn_connect(struct loop *l, const struct sockaddr *addr,
			  socklen_t addr_len, struct tls_ctx *tls,
			  const char *sni, uint32_t input_max, conn_fn *fn,
			  void *arg)
{
	struct conn *c = conn_alloc(l, input_max, fn, arg);

	if (c == NULL)
		return NULL;
	if (loop_conn_connect(l, addr, addr_len, conn_loop_event, c, &c->lc) <
	    0) {
		conn_free(c);
		return NULL;
	}
	c->id = loop_conn_id(c->lc);
	c->tls_client = tls != NULL;
	if (tls != NULL && conn_tls_start(c, tls, sni) < 0) {
		c->fn = conn_noop; /* the caller never saw this conn */
		conn_fail(c, "tls: setup failed");
		return NULL;
	}
	return c;
}

void conn_set_handler(struct conn *c, conn_fn *fn, void *arg)
{
	c->fn = fn;
	c->arg = arg;
}

struct buf *conn_input(struct conn *c)
{
	return &c->in;
}

void conn_consume(struct conn *c, size_t n)
{
	bool was_full = c->in.len >= c->input_max;

	buf_consume(&c->in, n);
	if (was_full && c->tls != NULL && !c->closing && !c->dispatching) {
		/* The engine may hold more decrypted-but-undelivered data. */
		conn_tls_pump(c);
		return;
	}
	conn_rx_update(c);
}

int conn_write(struct conn *c, const void *data, size_t len)
{
	int r;

	if (c->closing || c->lc == NULL)
		return -EPIPE;
	if (len == 0)
		return 0;
	if (c->tls == NULL) {
		r = loop_conn_send(c->lc, data, len);
		if (r == 0)
			c->bytes_out += len;
		return r;
	}
	if (!c->tls_ready)
		return buf_append(&c->early_out, data, len);
	return tls_conn_write(c->tls, data, len) < 0 ? -EIO : 0;
}

size_t conn_pending(const struct conn *c)
{
	return c->lc != NULL ? loop_conn_pending(c->lc) : 0;
}

int conn_starttls(struct conn *c, struct tls_ctx *tls)
{
	if (c->tls != NULL || c->closing)
		return -1;
	/* Anything the client sent after its STARTTLS command arrived in
	 * plaintext: it must never be read as if it came over TLS. */
	buf_clear(&c->in);
	if (conn_tls_start(c, tls, NULL) < 0)
		return -1;
	conn_rx_update(c);
	return 0;
}

void conn_set_timeout(struct conn *c, uint64_t ms)
{
	c->timeout_ms = ms;
	if (ms == 0) {
		loop_timer_disarm(c->loop, &c->timer);
		return;
	}
	c->last_input_ms = loop_now_ms(c->loop);
	loop_timer_arm(c->loop, &c->timer, ms);
}

void conn_close(struct conn *c, bool flush)
{
	if (c->closing || c->lc == NULL)
		return;
	conn_set_reason(c, "closed");
	if (flush && c->tls != NULL && c->tls_ready)
		tls_conn_shutdown(c->tls);
	c->closing = true;
	loop_timer_disarm(c->loop, &c->timer);
	loop_conn_close(c->lc, flush);
}

uint64_t conn_id(const struct conn *c)
{
	return c->id;
}

struct loop *conn_loop(const struct conn *c)
{
	return c->loop;
}

enum conn_transport conn_transport(const struct conn *c)
{
	return c->xprt;
}

const char *conn_transport_name(enum conn_transport x)
{
	switch (x) {
	case CONN_XPRT_PLAIN:
		return "plain";
	case CONN_XPRT_TLS_USER:
		return "tls";
	case CONN_XPRT_TLS_KERNEL:
		return "ktls";
	}
	return "?";
}

bool conn_is_tls(const struct conn *c)
{
	return c->tls != NULL;
}

const char *conn_tls_alpn(const struct conn *c)
{
	return c->tls != NULL ? tls_conn_alpn(c->tls) : "";
}

const char *conn_tls_sni(const struct conn *c)
{
	return c->tls != NULL ? tls_conn_sni(c->tls) : "";
}

const char *conn_tls_version(const struct conn *c)
{
	return c->tls != NULL ? tls_conn_version(c->tls) : "";
}

void conn_tls_peer_cn(const struct conn *c, char *out, size_t out_len)
{
	if (c->tls != NULL)
		tls_conn_peer_cn(c->tls, out, out_len);
	else if (out_len > 0)
		out[0] = '\0';
}

bool conn_ktls_tx(const struct conn *c)
{
	return c->tls != NULL && tls_conn_ktls_tx(c->tls);
}

bool conn_ktls_rx(const struct conn *c)
{
	return c->tls != NULL && tls_conn_ktls_rx(c->tls);
}

const char *conn_close_reason(const struct conn *c)
{
	return c->reason[0] != '\0' ? c->reason : "open";
}

void conn_set_close_reason(struct conn *c, const char *reason)
{
	conn_set_reason(c, reason);
}

uint64_t conn_bytes_in(const struct conn *c)
{
	return c->bytes_in;
}

uint64_t conn_bytes_out(const struct conn *c)
{
	return c->bytes_out;
}
