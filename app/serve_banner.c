/* app/serve_banner: the HTTP entry of the protocol table when serve runs
 * without the HTTP server (port 80, and on 443 ALPN "http/1.1" or none:
 * 503), and the table's fallback row: a listener or token without a module answers
 * its protocol's "not available" reply (SMTP 421, IMAP BYE, else HTTP
 * 503), after TLS where the port has it, and closes. One summary line per
 * connection. */
#include "app/serve.h"

/* system */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* project */
#include "core/log.h"
#include "core/proto.h"

struct serve_banner {
	const struct serve_banner_worker *bw;
	char name[PROTO_KEY_MAX]; /* for the log line */
	char reply[PROTO_KEY_MAX];
};

/* Which "not available" reply a listener kind or an ALPN token gets. */
static const char *serve_banner_family(const char *key)
{
	static const char *const smtp[] = {"smtp", "submission", "submissions",
					   NULL};
	static const char *const imap[] = {"imap", "imaps", NULL};

	for (int i = 0; smtp[i] != NULL; i++) {
		if (strcmp(key, smtp[i]) == 0)
			return "smtp";
	}
	for (int i = 0; imap[i] != NULL; i++) {
		if (strcmp(key, imap[i]) == 0)
			return "imap";
	}
	return "http";
}

static void serve_banner_reply(struct conn *c, struct serve_banner *b)
{
	char line[256];
	int n;

	if (strcmp(b->reply, "smtp") == 0)
		n = snprintf(line, sizeof(line),
			     "421 4.3.2 %s ringmail: SMTP service not "
			     "available yet\r\n",
			     b->bw->mail_domain);
	else if (strcmp(b->reply, "imap") == 0)
		n = snprintf(line, sizeof(line),
			     "* BYE ringmail: IMAP service not available "
			     "yet\r\n");
	else
		n = snprintf(line, sizeof(line),
			     "HTTP/1.1 503 Service Unavailable\r\n"
			     "Content-Length: 0\r\nConnection: close\r\n\r\n");
	if (n > 0 && (size_t)n < sizeof(line))
		(void)conn_write(c, line, (size_t)n);
	conn_close(c, true);
}

static void serve_banner_event(struct conn *c, enum conn_ev ev, void *arg)
{
	struct serve_banner *b = arg;

	switch (ev) {
	case CONN_EV_TLS_READY:
		serve_banner_reply(c, b);
		break;
	case CONN_EV_DATA:
		conn_consume(c, conn_input(c)->len);
		break;
	case CONN_EV_TIMEOUT:
		conn_close(c, false);
		break;
	case CONN_EV_CLOSED:
		log_conn(LOG_LV_INFO, conn_id(c),
			 "%s disconnect reason=\"%s\" transport=%s tls=%s "
			 "alpn=%s sni=%s ktls_tx=%d ktls_rx=%d in=%" PRIu64
			 " out=%" PRIu64,
			 b->name, conn_close_reason(c),
			 conn_transport_name(conn_transport(c)),
			 conn_tls_version(c)[0] ? conn_tls_version(c) : "-",
			 conn_tls_alpn(c)[0] ? conn_tls_alpn(c) : "-",
			 conn_tls_sni(c)[0] ? conn_tls_sni(c) : "-",
			 conn_ktls_tx(c), conn_ktls_rx(c), conn_bytes_in(c),
			 conn_bytes_out(c));
		free(b);
		break;
	case CONN_EV_CONNECTED:
	case CONN_EV_DRAINED:
		break;
	}
}

static struct serve_banner *serve_banner_new(const struct proto_row *r,
					     const char *name)
{
	struct serve_banner *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->bw = r->worker;
	snprintf(b->name, sizeof(b->name), "%s", name);
	snprintf(b->reply, sizeof(b->reply), "%s", serve_banner_family(r->key));
	return b;
}

static void serve_banner_accept(const struct proto_row *r, int fd,
				const struct sockaddr *peer, socklen_t peer_len,
				struct tls_ctx *tls, bool implicit_tls)
{
	struct serve_banner *b = serve_banner_new(r, r->key);
	struct conn *c;

	(void)peer;
	(void)peer_len;
	if (b == NULL) {
		close(fd);
		return;
	}
	c = conn_new(b->bw->loop, fd, implicit_tls ? tls : NULL, 0,
		     serve_banner_event, b);
	if (c == NULL) {
		free(b);
		return;
	}
	conn_set_timeout(c, b->bw->idle_timeout_ms);
	if (!implicit_tls)
		serve_banner_reply(c, b);
}

static void serve_banner_adopt(const struct proto_row *r, struct conn *c,
			       const struct sockaddr *peer, socklen_t peer_len)
{
	struct serve_banner *b = serve_banner_new(r, "https");

	(void)peer;
	(void)peer_len;
	if (b == NULL) {
		conn_close(c, false);
		return;
	}
	conn_set_handler(c, serve_banner_event, b);
	conn_set_timeout(c, b->bw->idle_timeout_ms);
	serve_banner_reply(c, b);
}

static const struct proto_ops serve_banner_ops = {
	.name = "http",
	.accept = serve_banner_accept,
	.adopt = serve_banner_adopt,
};

int serve_banner_proto_add(struct proto *p, bool http)
{
	/* h2 is not routed here, so not offered: a client offering it
	 * falls back to HTTP/1.1 and gets the 503 instead of a closed
	 * stream. */
	int r = 0;

	if (http) {
		r = proto_add(p, PROTO_LISTENER, "http", &serve_banner_ops, 0);
		r = r < 0 ? r
			  : proto_add(p, PROTO_ALPN, "http/1.1",
				      &serve_banner_ops, 0);
		r = r < 0 ? r
			  : proto_add(p, PROTO_ALPN, "", &serve_banner_ops, 0);
	}
	proto_set_fallback(p, &serve_banner_ops);
	return r;
}

void serve_banner_proto_bind(struct proto *p, struct serve_banner_worker *bw)
{
	proto_bind(p, &serve_banner_ops, bw);
}
