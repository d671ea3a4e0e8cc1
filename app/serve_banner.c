/* app/serve_banner: what each listener answers until its protocol module
 * exists: SMTP 421, IMAP BYE, HTTP 503, after TLS where the port has it.
 * It proves the listener, transport and ALPN plumbing end to end and
 * logs one summary line per connection. */
#include "app/serve.h"

/* system */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* project */
#include "core/log.h"
#include "imap-proxy/imap_server.h"

struct serve_banner {
	enum serve_svc svc;
	const char *mail_domain;
	struct imap_worker *imap; /* 443: where ALPN "imap" goes */
	struct sockaddr_storage peer;
	socklen_t peer_len;
};

/* Which protocol the bytes follow: the port's, or on 443 the ALPN's. */
static const char *serve_banner_proto(struct conn *c, enum serve_svc svc)
{
	const char *alpn;

	switch (svc) {
	case SERVE_SVC_SMTP:
	case SERVE_SVC_SUBMISSION:
	case SERVE_SVC_SUBMISSIONS:
		return "smtp";
	case SERVE_SVC_IMAP:
	case SERVE_SVC_IMAPS:
		return "imap";
	case SERVE_SVC_HTTP:
		return "http/1.1";
	case SERVE_SVC_HTTPS:
	case SERVE_SVC_COUNT:
		break;
	}
	alpn = conn_tls_alpn(c);
	return alpn[0] != '\0' ? alpn : "http/1.1";
}

static void serve_banner_reply(struct conn *c, struct serve_banner *b)
{
	const char *proto = serve_banner_proto(c, b->svc);
	char line[256];
	int n = 0;

	if (strcmp(proto, "smtp") == 0)
		n = snprintf(line, sizeof(line),
			     "421 4.3.2 %s ringmail: SMTP service not "
			     "available yet\r\n",
			     b->mail_domain);
	else if (strcmp(proto, "imap") == 0)
		n = snprintf(line, sizeof(line),
			     "* BYE ringmail: IMAP service not available "
			     "yet\r\n");
	else if (strcmp(proto, "http/1.1") == 0)
		n = snprintf(line, sizeof(line),
			     "HTTP/1.1 503 Service Unavailable\r\n"
			     "Content-Length: 0\r\nConnection: close\r\n\r\n");
	/* h2: nothing to say yet; the handshake itself was the point. */
	if (n > 0)
		(void)conn_write(c, line, (size_t)n);
	conn_close(c, true);
}

static void serve_banner_event(struct conn *c, enum conn_ev ev, void *arg)
{
	struct serve_banner *b = arg;

	switch (ev) {
	case CONN_EV_TLS_READY:
		if (b->imap != NULL && b->svc == SERVE_SVC_HTTPS &&
		    strcmp(conn_tls_alpn(c), "imap") == 0) {
			struct imap_worker *imap = b->imap;
			struct sockaddr_storage peer = b->peer;
			socklen_t peer_len = b->peer_len;

			free(b);
			imap_worker_adopt(imap, c, (struct sockaddr *)&peer,
					  peer_len);
			break;
		}
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
			 serve_svc_def(b->svc)->name, conn_close_reason(c),
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

void serve_banner_start(struct loop *l, int fd, enum serve_svc svc,
			struct tls_ctx *tls, const char *mail_domain,
			uint64_t idle_timeout_ms)
{
	serve_banner_start_mux(l, fd, svc, tls, mail_domain, idle_timeout_ms,
			       NULL, NULL, 0);
}

void serve_banner_start_mux(struct loop *l, int fd, enum serve_svc svc,
			    struct tls_ctx *tls, const char *mail_domain,
			    uint64_t idle_timeout_ms, struct imap_worker *imap,
			    const struct sockaddr *peer, socklen_t peer_len)
{
	struct serve_banner *b = calloc(1, sizeof(*b));
	struct conn *c;

	if (b == NULL) {
		close(fd);
		return;
	}
	b->svc = svc;
	b->mail_domain = mail_domain;
	b->imap = imap;
	if (peer != NULL && peer_len <= sizeof(b->peer)) {
		memcpy(&b->peer, peer, peer_len);
		b->peer_len = peer_len;
	}
	c = conn_new(l, fd, serve_svc_def(svc)->implicit_tls ? tls : NULL, 0,
		     serve_banner_event, b);
	if (c == NULL) {
		free(b);
		return;
	}
	conn_set_timeout(c, idle_timeout_ms);
	if (!serve_svc_def(svc)->implicit_tls)
		serve_banner_reply(c, b);
}
