/* smtp/smtp_server: glue between core/conn and smtp_session. A struct
 * smtp_conn is shared by the connection and an authentication in flight
 * on the pool (STYLE.md rule 15: refcount); a delivery in flight is
 * detached instead when the connection goes. */
#include "smtp/smtp_server.h"

/* system */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* project */
#include "core/accounts/accounts.h"
#include "core/conn.h"
#include "core/connlimit.h"
#include "core/log.h"
#include "core/proto.h"
#include "core/ratelimit.h"
#include "filter/dkim.h"
#include "filter/dkim_check.h"
#include "smtp/lmtp_client.h"
#include "smtp/smtp_deliver.h"
#include "smtp/smtp_reply.h"

#define SMTP_INPUT_MAX (64 * 1024)

/* A reply before any session exists, "421 4.7.0 <host> text", from an
 * SMTP_R_* of smtp_reply.h and its arguments. */
#define SMTP_REFUSE_LINE(buf, host, ...) \
	SMTP_REFUSE_LINE_(buf, host, __VA_ARGS__)
#define SMTP_REFUSE_LINE_(buf, host, code, esc, fmt, ...)                   \
	snprintf((buf), sizeof(buf), "%u %s %s " fmt "\r\n", (code), (esc), \
		 (host), ##__VA_ARGS__)

struct smtp_server {
	struct smtp_server_opts o;
	atomic_uint conns;
	struct connlimit *per_ip;
	struct accounts_throttle *own_throttle; /* when o.throttle was NULL */
};

struct smtp_worker {
	struct smtp_server *srv;
	struct loop *loop;
	struct dkim_checker *dkim; /* NULL without srv->o.dkim */
	struct smtp_deliver_env denv;
};

struct smtp_conn {
	struct smtp_worker *w;
	struct conn *c;
	struct smtp_session *s;
	struct tls_ctx *tls;
	struct smtp_deliver_job *job;
	struct dkim_check *dkim_job;
	struct loop_timer auth_timer; /* throttle delay */
	struct loop_timer deadline;   /* smtp_preauth_deadline */
	struct accounts_throttle_res auth_res;
	struct sockaddr_storage peer;
	struct connlimit_key client;
	enum smtp_mode mode;
	unsigned refs;
	bool closed;         /* CLOSED seen */
	bool closing;        /* conn_close called */
	bool counted_client; /* holds a per_ip slot */
	bool auth_timer_armed;
	char ip[INET6_ADDRSTRLEN];
	/* Credentials held across the throttle delay (wiped after). */
	char user[ACCOUNTS_ADDR_MAX + 1];
	char pass[ACCOUNTS_PASSWORD_MAX + 1];
	size_t pass_len;
};

/* ---- server ---- */

int smtp_server_new(const struct smtp_server_opts *o, struct smtp_server **s_r)
{
	struct smtp_server *s;

	*s_r = NULL;
	if (o->mail_domain == NULL || o->accounts == NULL || o->pool == NULL ||
	    o->lmtp_socket == NULL)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->o = *o;
	if (s->o.hostname == NULL)
		s->o.hostname = o->mail_domain;
	if (s->o.max_conns == 0)
		s->o.max_conns = 1000;
	atomic_init(&s->conns, 0);
	if (connlimit_new(s->o.max_conns, &s->per_ip) < 0 ||
	    (s->o.throttle == NULL &&
	     accounts_throttle_new(0, &s->own_throttle) < 0)) {
		smtp_server_free(&s);
		return -ENOMEM;
	}
	if (s->o.throttle == NULL)
		s->o.throttle = s->own_throttle;
	*s_r = s;
	return 0;
}

void smtp_server_free(struct smtp_server **sp)
{
	struct smtp_server *s = *sp;

	if (s == NULL)
		return;
	connlimit_free(&s->per_ip);
	accounts_throttle_free(&s->own_throttle);
	free(s);
	*sp = NULL;
}

unsigned smtp_server_conns(const struct smtp_server *s)
{
	return atomic_load(&((struct smtp_server *)s)->conns);
}

/* ---- worker ---- */

struct smtp_worker *smtp_worker_new(struct smtp_server *srv, struct loop *l)
{
	struct smtp_worker *w;
	struct lmtp_settings ls;
	uint64_t high;

	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return NULL;
	w->srv = srv;
	w->loop = l;
	memset(&ls, 0, sizeof(ls));
	ls.socket_path = srv->o.lmtp_socket;
	ls.lhlo_name = srv->o.hostname;
	ls.max_conns = 8;
	/* A body in memory is written at once, so the LMTP buffer must
	 * hold it (lmtp_txn_write refuses past 4 x body_high); a spooled
	 * one streams under back-pressure at LMTP's default 256 KiB. */
	high = srv->o.spool_dir != NULL ? 0
					: srv->o.max_message_size / 2 + 65536;
	if (high != 0 && high < 256 * 1024)
		high = 256 * 1024;
	if (high > UINT32_MAX / 4)
		high = UINT32_MAX / 4;
	ls.body_high = (uint32_t)high;
	w->denv.loop = l;
	w->denv.accounts = srv->o.accounts;
	w->denv.events = srv->o.events;
	w->denv.mail_domain = srv->o.mail_domain;
	w->denv.max_message_size = srv->o.max_message_size;
	w->denv.lmtp = lmtp_pool_new(l, &ls);
	if (w->denv.lmtp == NULL) {
		smtp_worker_free(&w);
		return NULL;
	}
	if (srv->o.dkim != NULL) {
		int r = dkim_checker_new(l, srv->o.pool, srv->o.dns_server,
					 srv->o.dkim_timeout_ms, &w->dkim);

		if (r < 0) {
			log_err("smtp: dkim resolver (dns_server=%s): %s",
				srv->o.dns_server != NULL ? srv->o.dns_server
							  : "",
				strerror(-r));
			smtp_worker_free(&w);
			return NULL;
		}
	}
	return w;
}

void smtp_worker_free(struct smtp_worker **wp)
{
	struct smtp_worker *w = *wp;

	if (w == NULL)
		return;
	if (w->denv.lmtp != NULL)
		lmtp_pool_free(&w->denv.lmtp);
	smtp_deliver_env_drop(&w->denv);
	dkim_checker_free(&w->dkim);
	free(w);
	*wp = NULL;
}

/* ---- connection ---- */

static void smtp_conn_unref(struct smtp_conn *sc)
{
	if (--sc->refs > 0)
		return;
	explicit_bzero(sc->pass, sizeof(sc->pass));
	smtp_session_free(&sc->s);
	free(sc);
}

static void smtp_conn_close(struct smtp_conn *sc)
{
	if (sc->closing || sc->closed)
		return;
	sc->closing = true;
	conn_close(sc->c, true);
}

static void smtp_conn_proved(struct smtp_conn *sc);

static void smtp_conn_pump(struct smtp_conn *sc)
{
	enum smtp_session_action act;
	struct buf *in;
	size_t used;

	if (sc->closing || sc->closed || sc->s == NULL)
		return;
	in = conn_input(sc->c);
	used = smtp_session_input(sc->s, buf_head(in), in->len, &act);
	if (used > 0)
		conn_consume(sc->c, used);
	if (loop_timer_armed(&sc->deadline) && smtp_session_proved(sc->s))
		smtp_conn_proved(sc);
	switch (act) {
	case SMTP_ACT_CLOSE:
		smtp_conn_close(sc);
		break;
	case SMTP_ACT_STARTTLS:
		if (conn_starttls(sc->c, sc->tls) < 0) {
			log_warn("%016" PRIx64 " smtp starttls failed",
				 conn_id(sc->c));
			smtp_conn_close(sc);
		}
		break;
	case SMTP_ACT_WAIT:
	case SMTP_ACT_READ:
		break;
	}
}

/* AUTH succeeded or a MAIL was accepted: no pre-auth deadline now. */
static void smtp_conn_proved(struct smtp_conn *sc)
{
	loop_timer_disarm(sc->w->loop, &sc->deadline);
}

/* smtp_preauth_deadline passed: counted from accept, whatever the
 * client sent meanwhile (NOOPs, a handshake one byte at a time). */
static void smtp_conn_deadline(struct loop_timer *t, void *arg)
{
	struct smtp_conn *sc = arg;

	(void)t;
	if (sc->closing || sc->closed)
		return;
	log_info("%016" PRIx64 " smtp preauth deadline from=%s after=%" PRIu64
		 "ms",
		 conn_id(sc->c), sc->ip, sc->w->srv->o.preauth_deadline_ms);
	conn_set_close_reason(sc->c, "preauth deadline");
	if (sc->s != NULL)
		smtp_session_preauth_deadline(sc->s);
	smtp_conn_close(sc);
}

/* ---- session ops ---- */

static int smtp_op_write(void *io, const void *p, size_t n)
{
	struct smtp_conn *sc = io;

	return conn_write(sc->c, p, n);
}

static void smtp_auth_done(enum accounts_result res,
			   const struct accounts_auth_info *info, void *arg)
{
	struct smtp_conn *sc = arg;
	struct smtp_worker *w = sc->w;
	enum smtp_auth_result r;

	switch (res) {
	case ACCOUNTS_OK:
	case ACCOUNTS_CREATED:
		r = SMTP_AUTH_RES_OK;
		break;
	case ACCOUNTS_TEMPFAIL:
		r = SMTP_AUTH_RES_TEMPFAIL;
		break;
	default:
		r = SMTP_AUTH_RES_FAILED;
		break;
	}
	/* The verdict counts even if the client is gone meanwhile. */
	accounts_throttle_release(
		w->srv->o.throttle, (struct sockaddr *)&sc->peer, info->addr,
		r == SMTP_AUTH_RES_OK       ? ACCOUNTS_THROTTLE_SUCCESS
		: r == SMTP_AUTH_RES_FAILED ? ACCOUNTS_THROTTLE_FAILURE
					    : ACCOUNTS_THROTTLE_CANCEL,
		loop_now_ms(w->loop), &sc->auth_res);
	log_info("%016" PRIx64 " smtp auth user=<%s> result=%s%s%s from=%s",
		 sc->c != NULL ? conn_id(sc->c) : 0, info->addr,
		 res == ACCOUNTS_CREATED       ? "created"
		 : r == SMTP_AUTH_RES_OK       ? "ok"
		 : r == SMTP_AUTH_RES_TEMPFAIL ? "tempfail"
					       : "failed",
		 info->reason[0] != '\0' ? " reason=" : "", info->reason,
		 sc->ip);
	if (sc->closed || sc->closing) {
		smtp_conn_unref(sc);
		return;
	}
	smtp_session_auth_done(sc->s, r, info->addr, info->reason);
	if (r == SMTP_AUTH_RES_OK)
		smtp_conn_proved(sc);
	smtp_conn_pump(sc);
	smtp_conn_unref(sc); /* the authentication's reference */
}

/* The reserved attempt ends without a verdict. */
static void smtp_auth_cancel(struct smtp_conn *sc)
{
	accounts_throttle_release(sc->w->srv->o.throttle,
				  (struct sockaddr *)&sc->peer, sc->user,
				  ACCOUNTS_THROTTLE_CANCEL,
				  loop_now_ms(sc->w->loop), &sc->auth_res);
}

/* Runs the authentication with the reference the throttle timer held. */
static void smtp_auth_timer(struct loop_timer *t, void *arg)
{
	struct smtp_conn *sc = arg;
	struct smtp_worker *w = sc->w;
	int r;

	(void)t;
	sc->auth_timer_armed = false;
	if (sc->closed || sc->closing) {
		explicit_bzero(sc->pass, sizeof(sc->pass));
		smtp_auth_cancel(sc);
		smtp_conn_unref(sc);
		return;
	}
	r = accounts_authenticate_async(w->srv->o.accounts, w->srv->o.pool,
					w->loop, sc->user, sc->pass,
					sc->pass_len, smtp_auth_done, sc);
	explicit_bzero(sc->pass, sizeof(sc->pass));
	if (r < 0) {
		smtp_auth_cancel(sc);
		smtp_session_auth_done(sc->s, SMTP_AUTH_RES_TEMPFAIL, "",
				       "service unavailable");
		smtp_conn_pump(sc);
		smtp_conn_unref(sc);
	}
}

static int smtp_op_auth(void *io, const char *user, const char *pass,
			size_t pass_len)
{
	struct smtp_conn *sc = io;
	struct smtp_worker *w = sc->w;
	int64_t delay;

	if (strlen(user) > ACCOUNTS_ADDR_MAX ||
	    pass_len > ACCOUNTS_PASSWORD_MAX)
		return -EINVAL;
	delay = accounts_throttle_reserve(w->srv->o.throttle,
					  (struct sockaddr *)&sc->peer, user,
					  loop_now_ms(w->loop), &sc->auth_res);
	if (delay == ACCOUNTS_THROTTLE_REFUSE) {
		log_info("%016" PRIx64 " smtp auth user=<%s> result=throttled "
			 "from=%s",
			 conn_id(sc->c), user, sc->ip);
		return -EAGAIN;
	}
	snprintf(sc->user, sizeof(sc->user), "%s", user);
	memcpy(sc->pass, pass, pass_len);
	sc->pass_len = pass_len;
	/* Never call back into the session from here: a timer always. */
	sc->refs++;
	sc->auth_timer_armed = true;
	loop_timer_arm(w->loop, &sc->auth_timer, (uint64_t)delay);
	return 0;
}

static bool smtp_op_rate_ok(void *io, const char *sender, char *detail,
			    size_t detail_len)
{
	struct smtp_conn *sc = io;
	struct smtp_worker *w = sc->w;
	uint64_t retry = 0;

	if (w->srv->o.rate == NULL)
		return true;
	if (ratelimit_take(w->srv->o.rate, sender, strlen(sender),
			   loop_now_ms(w->loop), &retry))
		return true;
	snprintf(detail, detail_len, "rate-limited, retry in %llu ms",
		 (unsigned long long)retry);
	return false;
}

static bool smtp_op_enforces(void *io, const char *rcpt)
{
	struct smtp_conn *sc = io;
	struct accounts_record r;

	if (accounts_lookup(sc->w->srv->o.accounts, rcpt, &r) < 0)
		return false; /* unknown: cleartext-OK, then bounced */
	return (r.flags & ACCOUNTS_F_ENFORCE_E2EE) != 0;
}

static void smtp_delivered(const struct smtp_deliver_reply *r, void *arg)
{
	struct smtp_conn *sc = arg;

	sc->job = NULL;
	smtp_session_deliver_done(sc->s, r->code, r->esc, r->text);
	smtp_conn_pump(sc);
}

static int smtp_op_deliver(void *io, const struct smtp_delivery *d)
{
	struct smtp_conn *sc = io;

	return smtp_deliver_start(&sc->w->denv, conn_id(sc->c), d,
				  smtp_delivered, sc, &sc->job);
}

static void smtp_dkim_checked(enum dkim_result res, const char *detail,
			      void *arg)
{
	struct smtp_conn *sc = arg;

	sc->dkim_job = NULL;
	smtp_session_dkim_done(sc->s, (int)res, detail);
	smtp_conn_pump(sc);
}

static int smtp_op_dkim_check(void *io, struct dkim_verify *v)
{
	struct smtp_conn *sc = io;

	if (sc->w->dkim == NULL) {
		dkim_verify_free(&v);
		return -EINVAL;
	}
	return dkim_check_start(sc->w->dkim, v, smtp_dkim_checked, sc,
				&sc->dkim_job);
}

static const struct smtp_session_ops smtp_server_ops = {
	.write = smtp_op_write,
	.auth = smtp_op_auth,
	.rate_ok = smtp_op_rate_ok,
	.rcpt_enforces_e2ee = smtp_op_enforces,
	.deliver = smtp_op_deliver,
	.dkim_check = smtp_op_dkim_check,
};

/* ---- conn events ---- */

static bool smtp_peer_is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)ss;

		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
		       in6->sin6_addr.s6_addr[12] == 127;
	}
	return ss->ss_family == AF_UNIX;
}

static int smtp_conn_start_session(struct smtp_conn *sc)
{
	struct smtp_server *srv = sc->w->srv;
	struct smtp_session_cfg cfg = {
		.mode = sc->mode,
		.hostname = srv->o.hostname,
		.mail_domain = srv->o.mail_domain,
		.max_message_size = srv->o.max_message_size,
		.tls = conn_is_tls(sc->c),
		.tls_available = sc->tls != NULL,
		.client_local = smtp_peer_is_loopback(&sc->peer),
		.conn_id = conn_id(sc->c),
		.dkim = sc->mode == SMTP_MODE_MX ? srv->o.dkim : NULL,
		.spool_dir = srv->o.spool_dir,
	};

	sc->s = smtp_session_new(&cfg, &smtp_server_ops, sc);
	return sc->s != NULL ? 0 : -ENOMEM;
}

static void smtp_conn_closed(struct smtp_conn *sc)
{
	struct smtp_server *srv = sc->w->srv;
	char summary[256] = "";

	sc->closed = true;
	if (sc->job != NULL) {
		smtp_deliver_detach(sc->job);
		sc->job = NULL;
	}
	if (sc->dkim_job != NULL) {
		dkim_check_detach(sc->dkim_job);
		sc->dkim_job = NULL;
	}
	if (sc->s != NULL)
		smtp_session_summary(sc->s, summary, sizeof(summary));
	/* The slot is free before the line says so: whoever reads the
	 * disconnect line may connect again at once. */
	if (sc->counted_client)
		connlimit_release(srv->per_ip, &sc->client);
	atomic_fetch_sub(&srv->conns, 1);
	log_info("%016" PRIx64 " smtp disconnect from=%s reason=%s%s%s "
		 "in=%" PRIu64 " out=%" PRIu64,
		 conn_id(sc->c), sc->ip, conn_close_reason(sc->c),
		 summary[0] != '\0' ? " " : "", summary, conn_bytes_in(sc->c),
		 conn_bytes_out(sc->c));
	if (sc->auth_timer_armed) {
		loop_timer_disarm(sc->w->loop, &sc->auth_timer);
		sc->auth_timer_armed = false;
		smtp_auth_cancel(sc);
		sc->refs--; /* the timer's; the conn's goes below */
	}
	loop_timer_disarm(sc->w->loop, &sc->deadline);
	sc->c = NULL;
	smtp_conn_unref(sc);
}

static void smtp_conn_ev(struct conn *c, enum conn_ev ev, void *arg)
{
	struct smtp_conn *sc = arg;

	(void)c;
	switch (ev) {
	case CONN_EV_TLS_READY:
		log_info("%016" PRIx64 " smtp tls version=%s ktls=%s%s",
			 conn_id(sc->c), conn_tls_version(sc->c),
			 conn_ktls_tx(sc->c) ? "tx" : "",
			 conn_ktls_rx(sc->c) ? "rx" : "");
		if (sc->s == NULL) {
			if (smtp_conn_start_session(sc) < 0) {
				smtp_conn_close(sc);
				return;
			}
		} else {
			smtp_session_tls_started(sc->s);
		}
		smtp_conn_pump(sc);
		break;
	case CONN_EV_DATA:
		smtp_conn_pump(sc);
		break;
	case CONN_EV_TIMEOUT:
		if (sc->s != NULL && smtp_session_waiting(sc->s))
			break; /* Dovecot or the pool is slow, not the client */
		if (sc->s != NULL)
			smtp_session_timeout(sc->s);
		smtp_conn_close(sc);
		break;
	case CONN_EV_CLOSED:
		smtp_conn_closed(sc);
		break;
	case CONN_EV_CONNECTED:
	case CONN_EV_DRAINED:
		break;
	}
}

/* Admit a connection from @sc->peer: false (and @line holds the reply,
 * "" if none) when the server or the client is over its limit. */
static bool smtp_conn_admit(struct smtp_conn *sc, char *line, size_t line_len)
{
	struct smtp_server *srv = sc->w->srv;
	unsigned open = atomic_fetch_add(&srv->conns, 1);
	char buf[200];
	int r;

	line[0] = '\0';
	if (open >= srv->o.max_conns) {
		atomic_fetch_sub(&srv->conns, 1);
		log_warn("smtp: too many connections (max_smtp_connections=%u) "
			 "refused from=%s",
			 srv->o.max_conns, sc->ip);
		SMTP_REFUSE_LINE(buf, srv->o.hostname, SMTP_R_SERVER_BUSY);
		snprintf(line, line_len, "%s", buf);
		return false;
	}
	sc->client = connlimit_key_of((const struct sockaddr *)&sc->peer);
	r = connlimit_take(srv->per_ip, &sc->client, srv->o.max_conns_per_ip);
	if (r == 0) {
		atomic_fetch_sub(&srv->conns, 1);
		log_warn("smtp: too many connections from=%s "
			 "(smtp_max_connections_per_ip=%u)",
			 sc->ip, srv->o.max_conns_per_ip);
		SMTP_REFUSE_LINE(buf, srv->o.hostname, SMTP_R_TOO_MANY_CONN,
				 sc->ip);
		snprintf(line, line_len, "%s", buf);
		return false;
	}
	sc->counted_client = r > 0;
	return true;
}

/* Serve @fd, or with @fd -1 the handed-over @c (TLS done). */
static void smtp_conn_start(struct smtp_worker *w, int fd, struct conn *c,
			    const struct sockaddr *peer, socklen_t peer_len,
			    enum smtp_mode mode, struct tls_ctx *tls,
			    bool implicit_tls)
{
	struct smtp_server *srv = w->srv;
	struct smtp_conn *sc;
	char line[256];

	sc = calloc(1, sizeof(*sc));
	if (sc == NULL) {
		if (c != NULL)
			conn_close(c, false);
		else
			close(fd);
		return;
	}
	sc->w = w;
	sc->mode = mode;
	sc->tls = tls;
	sc->refs = 1;
	loop_timer_init(&sc->auth_timer, smtp_auth_timer, sc);
	loop_timer_init(&sc->deadline, smtp_conn_deadline, sc);
	if (peer != NULL && peer_len <= sizeof(sc->peer))
		memcpy(&sc->peer, peer, peer_len);
	if (peer == NULL || getnameinfo(peer, peer_len, sc->ip, sizeof(sc->ip),
					NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(sc->ip, sizeof(sc->ip), "unknown");

	if (!smtp_conn_admit(sc, line, sizeof(line))) {
		/* Postfix answers 421 before closing; with implicit TLS
		 * there is no cheap way to say it before the handshake
		 * (an adopted connection has had its handshake). */
		if (line[0] != '\0' && c != NULL)
			(void)conn_write(c, line, strlen(line));
		else if (line[0] != '\0' && !implicit_tls)
			(void)!write(fd, line, strlen(line));
		if (c != NULL)
			conn_close(c, true);
		else
			close(fd);
		free(sc);
		return;
	}
	if (c != NULL)
		conn_set_handler(c, smtp_conn_ev, sc);
	sc->c = c != NULL ? c
			  : conn_new(w->loop, fd, implicit_tls ? tls : NULL,
				     SMTP_INPUT_MAX, smtp_conn_ev, sc);
	if (sc->c == NULL) {
		if (sc->counted_client)
			connlimit_release(srv->per_ip, &sc->client);
		atomic_fetch_sub(&srv->conns, 1);
		free(sc);
		return;
	}
	conn_set_timeout(sc->c, srv->o.timeout_ms);
	if (srv->o.preauth_deadline_ms > 0)
		loop_timer_arm(w->loop, &sc->deadline,
			       srv->o.preauth_deadline_ms);
	log_info("%016" PRIx64 " smtp connect from=%s mode=%s%s",
		 conn_id(sc->c), sc->ip,
		 mode == SMTP_MODE_MX ? "mx" : "submission",
		 c != NULL      ? " tls=alpn"
		 : implicit_tls ? " tls=implicit"
				: "");
	if (c != NULL)
		smtp_conn_ev(c, CONN_EV_TLS_READY, sc); /* as after 465's */
	else if (!implicit_tls && smtp_conn_start_session(sc) < 0)
		smtp_conn_close(sc);
}

void smtp_worker_accept(struct smtp_worker *w, int fd,
			const struct sockaddr *peer, socklen_t peer_len,
			enum smtp_mode mode, struct tls_ctx *tls,
			bool implicit_tls)
{
	smtp_conn_start(w, fd, NULL, peer, peer_len, mode, tls, implicit_tls);
}

void smtp_worker_adopt(struct smtp_worker *w, struct conn *c,
		       const struct sockaddr *peer, socklen_t peer_len)
{
	if (strcmp(conn_tls_version(c), "TLSv1.3") != 0) {
		/* 443 allows TLS 1.2 for HTTPS; 465 refuses it, so does
		 * submission here. */
		char line[80];
		int n = snprintf(line, sizeof(line), "%d %s %s\r\n",
				 SMTP_R_TLS13_REQUIRED);

		log_conn(LOG_LV_INFO, conn_id(c),
			 "smtp disconnect reason=tls-version tls=%s",
			 conn_tls_version(c));
		if (n > 0 && (size_t)n < sizeof(line))
			(void)conn_write(c, line, (size_t)n);
		conn_close(c, true);
		return;
	}
	smtp_conn_start(w, -1, c, peer, peer_len, SMTP_MODE_SUBMISSION, NULL,
			true);
}

/* ---- the SMTP rows of the protocol table ---- */

static void smtp_proto_accept(const struct proto_row *r, int fd,
			      const struct sockaddr *peer, socklen_t peer_len,
			      struct tls_ctx *tls, bool implicit_tls)
{
	smtp_worker_accept(r->worker, fd, peer, peer_len,
			   (enum smtp_mode)r->arg, tls, implicit_tls);
}

static void smtp_proto_adopt(const struct proto_row *r, struct conn *c,
			     const struct sockaddr *peer, socklen_t peer_len)
{
	smtp_worker_adopt(r->worker, c, peer, peer_len);
}

static const struct proto_ops smtp_proto_ops = {
	.name = "smtp",
	.accept = smtp_proto_accept,
	.adopt = smtp_proto_adopt,
};

int smtp_server_proto_add(struct proto *p)
{
	int r = 0;

	r = r < 0 ? r
		  : proto_add(p, PROTO_LISTENER, "smtp", &smtp_proto_ops,
			      SMTP_MODE_MX);
	r = r < 0 ? r
		  : proto_add(p, PROTO_LISTENER, "submission", &smtp_proto_ops,
			      SMTP_MODE_SUBMISSION);
	r = r < 0 ? r
		  : proto_add(p, PROTO_LISTENER, "submissions", &smtp_proto_ops,
			      SMTP_MODE_SUBMISSION);
	r = r < 0 ? r
		  : proto_add(p, PROTO_ALPN, "smtp", &smtp_proto_ops,
			      SMTP_MODE_SUBMISSION);
	return r;
}

void smtp_worker_proto_bind(struct proto *p, struct smtp_worker *w)
{
	proto_bind(p, &smtp_proto_ops, w);
}
