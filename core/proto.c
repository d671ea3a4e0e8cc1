/* core/proto: the protocol table and the ALPN dispatcher of 443. */
#include "core/proto.h"

/* system */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* project */
#include "core/conn.h"
#include "core/log.h"

/* A 443 connection until its handshake is done. */
struct proto_mux {
	const struct proto *p;
	const char *listener;
	struct sockaddr_storage peer;
	socklen_t peer_len;
};

void proto_init(struct proto *p)
{
	memset(p, 0, sizeof(*p));
}

int proto_add(struct proto *p, enum proto_kind kind, const char *key,
	      const struct proto_ops *ops, int arg)
{
	struct proto_row *r;

	if (strlen(key) >= PROTO_KEY_MAX || ops == NULL)
		return -EINVAL;
	for (unsigned i = 0; i < p->n; i++) {
		if (p->rows[i].kind == kind && strcmp(p->rows[i].key, key) == 0)
			return -EEXIST;
	}
	if (p->n >= PROTO_ROWS_MAX)
		return -ENOSPC;
	r = &p->rows[p->n++];
	r->kind = kind;
	snprintf(r->key, sizeof(r->key), "%s", key);
	r->ops = ops;
	r->arg = arg;
	r->worker = NULL;
	return 0;
}

void proto_set_fallback(struct proto *p, const struct proto_ops *ops)
{
	memset(&p->fallback, 0, sizeof(p->fallback));
	p->fallback.ops = ops;
}

void proto_bind(struct proto *p, const struct proto_ops *ops, void *worker)
{
	for (unsigned i = 0; i < p->n; i++) {
		if (p->rows[i].ops == ops)
			p->rows[i].worker = worker;
	}
	if (p->fallback.ops == ops)
		p->fallback.worker = worker;
}

unsigned proto_alpn_list(const struct proto *p, const char **out, unsigned max)
{
	unsigned n = 0;

	if (max == 0)
		return 0;
	for (unsigned i = 0; i < p->n && n + 1 < max; i++) {
		if (p->rows[i].kind == PROTO_ALPN && p->rows[i].key[0] != '\0')
			out[n++] = p->rows[i].key;
	}
	out[n] = NULL;
	return n;
}

const struct proto_row *proto_find(const struct proto *p, enum proto_kind kind,
				   const char *key, struct proto_row *tmp)
{
	for (unsigned i = 0; i < p->n; i++) {
		if (p->rows[i].kind == kind && strcmp(p->rows[i].key, key) == 0)
			return &p->rows[i];
	}
	if (p->fallback.ops == NULL)
		return NULL;
	*tmp = p->fallback;
	tmp->kind = kind;
	snprintf(tmp->key, sizeof(tmp->key), "%s", key);
	return tmp;
}

void proto_accept(const struct proto *p, const char *listener, int fd,
		  const struct sockaddr *peer, socklen_t peer_len,
		  struct tls_ctx *tls, bool implicit_tls)
{
	struct proto_row tmp;
	const struct proto_row *r =
		proto_find(p, PROTO_LISTENER, listener, &tmp);

	if (r == NULL || r->ops->accept == NULL) {
		log_warn("proto: no protocol for listener %s", listener);
		close(fd);
		return;
	}
	r->ops->accept(r, fd, peer, peer_len, tls, implicit_tls);
}

/* After the hand-over: whatever the adopter did not take is closed. */
static void proto_orphan_event(struct conn *c, enum conn_ev ev, void *arg)
{
	(void)arg;
	if (ev != CONN_EV_CLOSED)
		conn_close(c, false);
}

static void proto_mux_adopt(struct conn *c, struct proto_mux *m)
{
	struct sockaddr_storage peer = m->peer;
	socklen_t peer_len = m->peer_len;
	const struct proto *p = m->p;
	struct proto_row tmp;
	const struct proto_row *r;

	/* The adopter sets its own handler; until then (or if it only
	 * closes) events go nowhere harmful. */
	conn_set_handler(c, proto_orphan_event, NULL);
	free(m);
	r = proto_find(p, PROTO_ALPN, conn_tls_alpn(c), &tmp);
	if (r == NULL || r->ops->adopt == NULL) {
		log_conn(LOG_LV_WARN, conn_id(c),
			 "proto: no protocol for alpn=%s",
			 conn_tls_alpn(c)[0] ? conn_tls_alpn(c) : "-");
		conn_close(c, false);
		return;
	}
	r->ops->adopt(r, c, (struct sockaddr *)&peer, peer_len);
}

static void proto_mux_event(struct conn *c, enum conn_ev ev, void *arg)
{
	struct proto_mux *m = arg;

	switch (ev) {
	case CONN_EV_TLS_READY:
		proto_mux_adopt(c, m);
		break;
	case CONN_EV_DATA:
		conn_consume(c, conn_input(c)->len);
		break;
	case CONN_EV_TIMEOUT:
		conn_close(c, false);
		break;
	case CONN_EV_CLOSED:
		/* Only before the hand-over: the handshake failed. */
		log_conn(LOG_LV_INFO, conn_id(c),
			 "%s disconnect reason=\"%s\" transport=%s tls=%s "
			 "alpn=%s sni=%s in=%" PRIu64 " out=%" PRIu64,
			 m->listener, conn_close_reason(c),
			 conn_transport_name(conn_transport(c)),
			 conn_tls_version(c)[0] ? conn_tls_version(c) : "-",
			 conn_tls_alpn(c)[0] ? conn_tls_alpn(c) : "-",
			 conn_tls_sni(c)[0] ? conn_tls_sni(c) : "-",
			 conn_bytes_in(c), conn_bytes_out(c));
		free(m);
		break;
	case CONN_EV_CONNECTED:
	case CONN_EV_DRAINED:
		break;
	}
}

void proto_accept_alpn(const struct proto *p, struct loop *l,
		       const char *listener, int fd,
		       const struct sockaddr *peer, socklen_t peer_len,
		       struct tls_ctx *tls, uint64_t timeout_ms)
{
	struct proto_mux *m = calloc(1, sizeof(*m));
	struct conn *c;

	if (m == NULL || tls == NULL) {
		free(m);
		close(fd);
		return;
	}
	m->p = p;
	m->listener = listener;
	if (peer != NULL && peer_len <= sizeof(m->peer)) {
		memcpy(&m->peer, peer, peer_len);
		m->peer_len = peer_len;
	}
	c = conn_new(l, fd, tls, 0, proto_mux_event, m);
	if (c == NULL) {
		free(m);
		return;
	}
	conn_set_timeout(c, timeout_ms);
}
