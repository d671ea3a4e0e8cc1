/* imap-proxy/imap_server: the process-wide server, per-loop workers and
 * the delivery events that wake idling sessions. */
#include "imap-proxy/imap_server.h"

/* system */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* project */
#include "core/conn.h"
#include "core/events.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/proto.h"
#include "imap-proxy/imap-int.h"

static char *imap_strdup_or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

int imap_server_new(const struct imap_server_opts *o, struct imap_server **s_r)
{
	struct imap_server *s;

	*s_r = NULL;
	if (o->mail_domain == NULL || o->accounts == NULL || o->pool == NULL ||
	    o->dovecot_secret == NULL ||
	    strlen(o->dovecot_secret) >= IMAP_SECRET_MAX ||
	    o->dovecot_port == 0 || o->dovecot_port > 65535)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->o = *o;
	if (s->o.max_conns == 0)
		s->o.max_conns = 10000;
	if (s->o.preauth_timeout_ms == 0)
		s->o.preauth_timeout_ms = 60000;
	s->mail_domain = strdup(o->mail_domain);
	s->mail_domain_bare =
		strdup(o->mail_domain_bare != NULL ? o->mail_domain_bare
						   : o->mail_domain);
	s->iroh_relay = imap_strdup_or_null(o->iroh_relay);
	s->turn_secret = imap_strdup_or_null(o->turn_secret);
	s->appversions = imap_strdup_or_null(o->appversions);
	s->privacy_mail = imap_strdup_or_null(o->privacy_mail);
	snprintf(s->secret, sizeof(s->secret), "%s", o->dovecot_secret);
	s->dovecot_addr.sin_family = AF_INET;
	s->dovecot_addr.sin_port = htons((uint16_t)o->dovecot_port);
	s->dovecot_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	atomic_init(&s->conns, 0);
	pthread_rwlock_init(&s->workers_lock, NULL);
	if (s->o.throttle == NULL &&
	    accounts_throttle_new(0, &s->own_throttle) == 0)
		s->o.throttle = s->own_throttle;
	if (s->mail_domain == NULL || s->mail_domain_bare == NULL ||
	    s->o.throttle == NULL ||
	    connlimit_new(s->o.max_conns, &s->per_ip) < 0) {
		imap_server_free(&s);
		return -ENOMEM;
	}
	*s_r = s;
	return 0;
}

void imap_server_free(struct imap_server **sp)
{
	struct imap_server *s = *sp;

	if (s == NULL)
		return;
	explicit_bzero(s->secret, sizeof(s->secret));
	free(s->mail_domain);
	free(s->mail_domain_bare);
	free(s->iroh_relay);
	if (s->turn_secret != NULL) {
		explicit_bzero(s->turn_secret, strlen(s->turn_secret));
		free(s->turn_secret);
	}
	free(s->appversions);
	free(s->privacy_mail);
	connlimit_free(&s->per_ip);
	accounts_throttle_free(&s->own_throttle);
	pthread_rwlock_destroy(&s->workers_lock);
	free(s);
	*sp = NULL;
}

unsigned imap_server_conns(const struct imap_server *s)
{
	return atomic_load(&((struct imap_server *)s)->conns);
}

/* ---- delivery events (any thread) -> the workers' inboxes ---- */

static void imap_worker_inbox_run(void *arg)
{
	struct imap_worker *w = arg;
	char addr[ACCOUNTS_ADDR_MAX + 1];
	bool overflow;

	for (;;) {
		pthread_mutex_lock(&w->inbox_mtx);
		overflow = w->inbox_overflow;
		w->inbox_overflow = false;
		if (overflow)
			w->inbox_n = 0;
		if (w->inbox_n == 0) {
			w->inbox_posted = false;
			pthread_mutex_unlock(&w->inbox_mtx);
			break;
		}
		w->inbox_n--;
		memcpy(addr, w->inbox[w->inbox_n], sizeof(addr));
		pthread_mutex_unlock(&w->inbox_mtx);
		imap_worker_wake_user(w, addr);
	}
	if (overflow)
		imap_worker_wake_all(w);
}

/* Queue @rcpt for worker @w and post the inbox run once. */
static void imap_worker_inbox_add(struct imap_worker *w, const char *rcpt,
				  size_t len)
{
	bool post = false;

	pthread_mutex_lock(&w->inbox_mtx);
	if (w->inbox_n < IMAP_INBOX_MAX) {
		memcpy(w->inbox[w->inbox_n], rcpt, len + 1);
		w->inbox_n++;
	} else {
		w->inbox_overflow = true;
	}
	if (!w->inbox_posted)
		post = w->inbox_posted = true;
	pthread_mutex_unlock(&w->inbox_mtx);
	if (post && loop_post(w->loop, imap_worker_inbox_run, w) < 0) {
		pthread_mutex_lock(&w->inbox_mtx);
		w->inbox_posted = false;
		pthread_mutex_unlock(&w->inbox_mtx);
	}
}

/* Only the workers where the recipient is logged in hear of it. */
static void imap_server_delivered(const struct events_delivered *ev, void *arg)
{
	struct imap_server *s = arg;
	size_t len = strlen(ev->rcpt);

	if (len > ACCOUNTS_ADDR_MAX || events_workers_empty(&ev->where))
		return;
	pthread_rwlock_rdlock(&s->workers_lock);
	for (unsigned i = 0; i < IMAP_WORKERS_MAX; i++) {
		struct imap_worker *w = s->workers[i];

		if (w != NULL && events_workers_has(&ev->where, i))
			imap_worker_inbox_add(w, ev->rcpt, len);
	}
	pthread_rwlock_unlock(&s->workers_lock);
}

int imap_server_subscribe(struct imap_server *s, struct events *ev)
{
	s->events = ev;
	return events_subscribe(ev, imap_server_delivered, s);
}

/* ---- workers ---- */

struct imap_worker *imap_worker_new(struct imap_server *s, struct loop *l)
{
	struct imap_worker *w = calloc(1, sizeof(*w));
	bool ok = false;

	if (w == NULL)
		return NULL;
	w->srv = s;
	w->loop = l;
	w->id = loop_worker_id(l);
	pthread_mutex_init(&w->inbox_mtx, NULL);
	pthread_rwlock_wrlock(&s->workers_lock);
	if (w->id < IMAP_WORKERS_MAX && s->workers[w->id] == NULL) {
		s->workers[w->id] = w;
		ok = true;
	}
	pthread_rwlock_unlock(&s->workers_lock);
	if (!ok) {
		imap_worker_free(&w);
		return NULL;
	}
	return w;
}

void imap_worker_free(struct imap_worker **wp)
{
	struct imap_worker *w = *wp;

	if (w == NULL)
		return;
	pthread_rwlock_wrlock(&w->srv->workers_lock);
	if (w->id < IMAP_WORKERS_MAX && w->srv->workers[w->id] == w)
		w->srv->workers[w->id] = NULL;
	pthread_rwlock_unlock(&w->srv->workers_lock);
	pthread_mutex_destroy(&w->inbox_mtx);
	free(w);
	*wp = NULL;
}

void imap_worker_accept(struct imap_worker *w, int fd,
			const struct sockaddr *peer, socklen_t peer_len,
			struct tls_ctx *tls, bool implicit_tls)
{
	imap_sess_start(w, fd, NULL, peer, peer_len, tls, implicit_tls);
}

void imap_worker_adopt(struct imap_worker *w, struct conn *c,
		       const struct sockaddr *peer, socklen_t peer_len)
{
	imap_sess_start(w, -1, c, peer, peer_len, NULL, true);
}

/* ---- the IMAP rows of the protocol table ---- */

static void imap_proto_accept(const struct proto_row *r, int fd,
			      const struct sockaddr *peer, socklen_t peer_len,
			      struct tls_ctx *tls, bool implicit_tls)
{
	imap_worker_accept(r->worker, fd, peer, peer_len, tls, implicit_tls);
}

static void imap_proto_adopt(const struct proto_row *r, struct conn *c,
			     const struct sockaddr *peer, socklen_t peer_len)
{
	imap_worker_adopt(r->worker, c, peer, peer_len);
}

static const struct proto_ops imap_proto_ops = {
	.name = "imap",
	.accept = imap_proto_accept,
	.adopt = imap_proto_adopt,
};

int imap_server_proto_add(struct proto *p)
{
	int r = proto_add(p, PROTO_LISTENER, "imap", &imap_proto_ops, 0);

	r = r < 0 ? r
		  : proto_add(p, PROTO_LISTENER, "imaps", &imap_proto_ops, 0);
	r = r < 0 ? r : proto_add(p, PROTO_ALPN, "imap", &imap_proto_ops, 0);
	return r;
}

void imap_worker_proto_bind(struct proto *p, struct imap_worker *w)
{
	proto_bind(p, &imap_proto_ops, w);
}

unsigned imap_user_bucket(const char *addr)
{
	/* Case-insensitive: RCPT TO may differ in case from the login
	 * (Dovecot lower-cases both, auth_username_format %Lu). */
	return hash_str_ci(addr) % IMAP_USER_BUCKETS;
}
