/* core/http/http_server: joins core/conn connections to the HTTP/1.1 and
 * HTTP/2 sessions, runs their phase deadlines on the loop's timers and
 * writes the connection lines. */
#include "core/http/http_server.h"

/* system */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* project */
#include "core/conn.h"
#include "core/http/http_server_int.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/proto.h"

#define HTTP_INPUT_MAX (64u * 1024u)

struct http_server {
	struct http_server_opts o;
	struct http_limits lim;
};

struct http_worker {
	struct http_server *srv;
	struct loop *loop;
};

struct http_conn {
	struct http_worker *w;
	struct conn *c;
	struct loop_timer timer;
	struct http1_session *h1;
	struct h2_session *h2;
	enum http_phase phase;
	bool tls;
	bool closing;
	char ip[64];
};

static int http_conn_write(void *io, const void *p, size_t n)
{
	struct http_conn *hc = io;

	return conn_write(hc->c, p, n);
}

static size_t http_conn_pending(void *io)
{
	struct http_conn *hc = io;

	return conn_pending(hc->c);
}

static void http_conn_phase(void *io, enum http_phase ph)
{
	struct http_conn *hc = io;
	const struct http_server_opts *o = &hc->w->srv->o;
	uint64_t ms = ph == HTTP_PHASE_HEAD   ? o->header_timeout_ms
		      : ph == HTTP_PHASE_BODY ? o->body_timeout_ms
					      : o->keepalive_timeout_ms;

	hc->phase = ph;
	/* From the loop's clock, refreshed when its wait returned: a
	 * connection that comes after a quiet spell gets its full time. */
	loop_timer_arm(hc->w->loop, &hc->timer, ms);
}

static uint64_t http_conn_now(void *io)
{
	struct http_conn *hc = io;

	return loop_now_ms(hc->w->loop);
}

static const struct http_sess_ops http_conn_ops = {
	.write = http_conn_write,
	.pending = http_conn_pending,
	.phase = http_conn_phase,
	.now_ms = http_conn_now,
};

static bool http_conn_done(const struct http_conn *hc)
{
	return hc->h2 != NULL   ? h2_session_done(hc->h2)
	       : hc->h1 != NULL ? http1_session_done(hc->h1)
				: true;
}

static void http_conn_finish(struct http_conn *hc)
{
	if (hc->closing)
		return;
	hc->closing = true;
	loop_timer_disarm(hc->w->loop, &hc->timer);
	conn_close(hc->c, true);
}

/* Feed what is buffered; close once the session is finished. */
static void http_conn_feed(struct http_conn *hc)
{
	struct buf *in = conn_input(hc->c);
	size_t used;

	if (hc->closing)
		return;
	if (in->len > 0) {
		used = hc->h2 != NULL
			       ? h2_session_input(hc->h2, buf_head(in), in->len)
			       : http1_session_input(hc->h1, buf_head(in),
						     in->len);
		conn_consume(hc->c, used);
	}
	if (http_conn_done(hc))
		http_conn_finish(hc);
}

static void http_conn_timer(struct loop_timer *t, void *arg)
{
	struct http_conn *hc = arg;

	(void)t;
	if (hc->closing)
		return;
	log_conn(LOG_LV_DEBUG, conn_id(hc->c), "http timeout phase=%s",
		 hc->phase == HTTP_PHASE_HEAD   ? "head"
		 : hc->phase == HTTP_PHASE_BODY ? "body"
						: "idle");
	if (hc->h2 != NULL)
		h2_session_timeout(hc->h2);
	else
		http1_session_timeout(hc->h1);
	http_conn_finish(hc);
}

static void http_conn_ev(struct conn *c, enum conn_ev ev, void *arg)
{
	struct http_conn *hc = arg;

	switch (ev) {
	case CONN_EV_DATA:
		http_conn_feed(hc);
		break;
	case CONN_EV_DRAINED:
		if (hc->h2 != NULL && !hc->closing)
			h2_session_drained(hc->h2);
		http_conn_feed(hc);
		break;
	case CONN_EV_TIMEOUT:
		http_conn_finish(hc);
		break;
	case CONN_EV_CLOSED:
		loop_timer_disarm(hc->w->loop, &hc->timer);
		log_conn(LOG_LV_INFO, conn_id(c),
			 "http disconnect reason=\"%s\" v=%s transport=%s "
			 "tls=%s alpn=%s sni=%s requests=%u in=%" PRIu64
			 " out=%" PRIu64,
			 conn_close_reason(c), hc->h2 != NULL ? "2" : "1.1",
			 conn_transport_name(conn_transport(c)),
			 conn_tls_version(c)[0] ? conn_tls_version(c) : "-",
			 conn_tls_alpn(c)[0] ? conn_tls_alpn(c) : "-",
			 conn_tls_sni(c)[0] ? conn_tls_sni(c) : "-",
			 hc->h2 != NULL   ? h2_session_requests(hc->h2)
			 : hc->h1 != NULL ? http1_session_requests(hc->h1)
					  : 0,
			 conn_bytes_in(c), conn_bytes_out(c));
		http1_session_free(&hc->h1);
		h2_session_free(&hc->h2);
		free(hc);
		break;
	case CONN_EV_CONNECTED:
	case CONN_EV_TLS_READY:
		break;
	}
}

static struct http_conn *http_conn_alloc(struct http_worker *w,
					 const struct sockaddr *peer,
					 socklen_t peer_len)
{
	struct http_conn *hc = calloc(1, sizeof(*hc));

	if (hc == NULL)
		return NULL;
	hc->w = w;
	loop_timer_init(&hc->timer, http_conn_timer, hc);
	if (peer == NULL || getnameinfo(peer, peer_len, hc->ip, sizeof(hc->ip),
					NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(hc->ip, sizeof(hc->ip), "unknown");
	return hc;
}

/* Start the session on a connection that is ready for HTTP. */
static void http_conn_start(struct http_conn *hc, bool h2)
{
	struct http_sess_cfg cfg = {
		.handler = hc->w->srv->o.handler,
		.lim = hc->w->srv->lim,
		.tls = hc->tls,
		.peer_ip = hc->ip,
		.conn_id = conn_id(hc->c),
	};

	if (h2)
		hc->h2 = h2_session_new(&cfg, &http_conn_ops, hc);
	else
		hc->h1 = http1_session_new(&cfg, &http_conn_ops, hc);
	if (hc->h1 == NULL && hc->h2 == NULL) {
		log_conn(LOG_LV_WARN, conn_id(hc->c),
			 "http: session setup failed (out of memory)");
		http_conn_finish(hc);
		return;
	}
	log_conn(LOG_LV_DEBUG, conn_id(hc->c), "http connect v=%s tls=%d",
		 h2 ? "2" : "1.1", hc->tls ? 1 : 0);
	http_conn_feed(hc); /* what came with the handshake */
}

static void http_proto_accept(const struct proto_row *r, int fd,
			      const struct sockaddr *peer, socklen_t peer_len,
			      struct tls_ctx *tls, bool implicit_tls)
{
	struct http_worker *w = r->worker;
	struct http_conn *hc = http_conn_alloc(w, peer, peer_len);

	(void)tls;
	(void)implicit_tls;
	if (hc == NULL) {
		close(fd);
		return;
	}
	/* Port 80 is plaintext; an HTTPS listener goes through ALPN. */
	hc->c = conn_new(w->loop, fd, NULL, HTTP_INPUT_MAX, http_conn_ev, hc);
	if (hc->c == NULL) {
		free(hc);
		return;
	}
	http_conn_start(hc, false);
}

static void http_proto_adopt(const struct proto_row *r, struct conn *c,
			     const struct sockaddr *peer, socklen_t peer_len)
{
	struct http_worker *w = r->worker;
	struct http_conn *hc = http_conn_alloc(w, peer, peer_len);

	if (hc == NULL) {
		conn_close(c, false);
		return;
	}
	hc->c = c;
	hc->tls = true;
	conn_set_handler(c, http_conn_ev, hc);
	conn_set_timeout(c, 0); /* our own phase deadlines rule */
	http_conn_start(hc, strcmp(conn_tls_alpn(c), "h2") == 0);
}

static const struct proto_ops http_proto_ops = {
	.name = "http",
	.accept = http_proto_accept,
	.adopt = http_proto_adopt,
};

int http_server_proto_add(struct proto *p)
{
	int r = proto_add(p, PROTO_LISTENER, "http", &http_proto_ops, 0);

	r = r < 0 ? r : proto_add(p, PROTO_ALPN, "h2", &http_proto_ops, 0);
	r = r < 0 ? r
		  : proto_add(p, PROTO_ALPN, "http/1.1", &http_proto_ops, 0);
	r = r < 0 ? r : proto_add(p, PROTO_ALPN, "", &http_proto_ops, 0);
	return r;
}

void http_worker_proto_bind(struct proto *p, struct http_worker *w)
{
	proto_bind(p, &http_proto_ops, w);
}

int http_server_new(const struct http_server_opts *o,
		    struct http_server **srv_r)
{
	struct http_server *srv;

	*srv_r = NULL;
	if (o->handler == NULL || o->handler->handle == NULL)
		return -EINVAL;
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return -ENOMEM;
	srv->o = *o;
	if (srv->o.header_timeout_ms == 0)
		srv->o.header_timeout_ms = 10000;
	if (srv->o.body_timeout_ms == 0)
		srv->o.body_timeout_ms = 30000;
	if (srv->o.keepalive_timeout_ms == 0)
		srv->o.keepalive_timeout_ms = 75000;
	srv->lim = (struct http_limits){
		.head_max = o->head_max != 0 ? o->head_max : 16384,
		.target_max = o->target_max != 0 ? o->target_max : 8192,
		.fields_max = o->fields_max != 0 ? o->fields_max : 64,
		.streams_max = o->streams_max != 0 ? o->streams_max : 100,
	};
	*srv_r = srv;
	return 0;
}

void http_server_free(struct http_server **srv)
{
	free(*srv);
	*srv = NULL;
}

struct http_worker *http_worker_new(struct http_server *srv, struct loop *l)
{
	struct http_worker *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->srv = srv;
	w->loop = l;
	return w;
}

void http_worker_free(struct http_worker **w)
{
	free(*w);
	*w = NULL;
}
