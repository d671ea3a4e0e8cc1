/* core/dns: c-ares 1.18 driven by the loop (STYLE.md 4: sock state
 * callback arms a poll per socket, ares_process_fd on readiness, the
 * deadline of ares_timeout() on a timer). A query that c-ares still holds
 * when its own deadline passes is reported as a temporary failure at once
 * and freed when c-ares lets go of it. */
#include "core/dns.h"

/* system */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* third party */
#include <ares.h>
#include <arpa/nameser.h>

/* project */
#include "core/log.h"
#include "core/loop.h"

#define DNS_SOCKS_MAX       16
#define DNS_TIMEOUT_DEFAULT 60000
/* c-ares's own per-try timeout and tries; the query deadline caps it. */
#define DNS_TRY_MS 3000
#define DNS_TRIES  5 /* 3+6+12+24+48 s: past the 60 s deadline */

struct dns_sock {
	int fd; /* -1: free */
	unsigned events;
	struct loop_poll *poll;
	struct dns_resolver *r;
};

struct dns_resolver {
	struct loop *loop;
	ares_channel ch;
	bool channel_ok;
	bool destroying;
	struct loop_timer timer; /* ares_timeout() */
	struct dns_sock socks[DNS_SOCKS_MAX];
	unsigned pending;
	struct dns_query *queries; /* every query not yet freed */
	/* ares_query may call back before it returns: then that query
	 * is reported from a timer instead (never from inside the call). */
	struct dns_query *calling;
	bool called;
	int called_status;
};

struct dns_query {
	struct dns_resolver *r;
	struct dns_query *next, **pprev;
	dns_txt_fn *fn;   /* NULL once reported or cancelled */
	dns_addr_fn *afn; /* address lookups: instead of @fn */
	void *arg;
	struct dns_addr_answer *aans; /* a result waiting for @later */
	struct loop_timer deadline;
	struct loop_timer later; /* reports an immediate failure */
	enum dns_status later_st;
	bool in_ares;
};

static int dns_ares_init_once(void)
{
	static int done; /* ares_library_init is needed on Windows only */

	if (!done) {
		if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
			return -ENOMEM;
		done = 1;
	}
	return 0;
}

const char *dns_status_name(enum dns_status st)
{
	switch (st) {
	case DNS_OK:
		return "ok";
	case DNS_NOTFOUND:
		return "notfound";
	case DNS_TEMPFAIL:
		return "tempfail";
	case DNS_ERR_RESPONSE:
		return "bad-response";
	}
	return "?";
}

static void dns_query_free(struct dns_query *q);

static void dns_rearm(struct dns_resolver *r)
{
	struct timeval tv, *tp;
	uint64_t ms;

	if (r->destroying)
		return;
	tp = ares_timeout(r->ch, NULL, &tv);
	if (tp == NULL) {
		loop_timer_disarm(r->loop, &r->timer);
		return;
	}
	ms = (uint64_t)tp->tv_sec * 1000 + (uint64_t)(tp->tv_usec + 999) / 1000;
	loop_timer_arm(r->loop, &r->timer, ms);
}

static void dns_timer_cb(struct loop_timer *t, void *arg)
{
	struct dns_resolver *r = arg;

	(void)t;
	ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_rearm(r);
}

static void dns_poll_cb(struct loop_poll *p, unsigned revents, void *arg)
{
	struct dns_sock *s = arg;
	struct dns_resolver *r = s->r;
	int fd = s->fd;
	ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;

	(void)p;
	if (revents & (LOOP_POLL_IN | LOOP_POLL_ERR))
		rfd = fd;
	if (revents & LOOP_POLL_OUT)
		wfd = fd;
	/* May close the socket: the state callback frees the slot. */
	ares_process_fd(r->ch, rfd, wfd);
	dns_rearm(r);
}

static struct dns_sock *dns_sock_find(struct dns_resolver *r, int fd)
{
	for (unsigned i = 0; i < DNS_SOCKS_MAX; i++) {
		if (r->socks[i].fd == fd)
			return &r->socks[i];
	}
	return NULL;
}

static void dns_sock_state_cb(void *data, ares_socket_t fd, int readable,
			      int writable)
{
	struct dns_resolver *r = data;
	struct dns_sock *s = dns_sock_find(r, fd);
	unsigned ev =
		(readable ? LOOP_POLL_IN : 0) | (writable ? LOOP_POLL_OUT : 0);

	if (ev == 0) {
		if (s != NULL) {
			loop_poll_remove(&s->poll);
			s->fd = -1;
		}
		return;
	}
	if (s == NULL) {
		s = dns_sock_find(r, -1);
		if (s == NULL) {
			log_warn("dns: more than %d c-ares sockets",
				 DNS_SOCKS_MAX);
			return; /* its query times out */
		}
		s->fd = fd;
		s->r = r;
		s->events = ev;
		s->poll = loop_poll_add(r->loop, fd, ev, dns_poll_cb, s);
		if (s->poll == NULL)
			s->fd = -1;
		return;
	}
	if (s->events != ev) {
		s->events = ev;
		(void)loop_poll_modify(s->poll, ev);
	}
}

int dns_resolver_new(struct loop *l, const char *server,
		     struct dns_resolver **r_r)
{
	struct ares_options o;
	struct dns_resolver *r;
	int rc;

	*r_r = NULL;
	if (dns_ares_init_once() < 0)
		return -ENOMEM;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->loop = l;
	for (unsigned i = 0; i < DNS_SOCKS_MAX; i++)
		r->socks[i].fd = -1;
	loop_timer_init(&r->timer, dns_timer_cb, r);
	memset(&o, 0, sizeof(o));
	o.sock_state_cb = dns_sock_state_cb;
	o.sock_state_cb_data = r;
	o.timeout = DNS_TRY_MS;
	o.tries = DNS_TRIES;
	o.flags = ARES_FLAG_EDNS;
	o.ednspsz = 1232;
	rc = ares_init_options(&r->ch, &o,
			       ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS |
				       ARES_OPT_TRIES | ARES_OPT_FLAGS |
				       ARES_OPT_EDNSPSZ);
	if (rc != ARES_SUCCESS) {
		free(r);
		return rc == ARES_ENOMEM ? -ENOMEM : -EINVAL;
	}
	r->channel_ok = true;
	if (server != NULL && server[0] != '\0') {
		rc = ares_set_servers_ports_csv(r->ch, server);
		if (rc != ARES_SUCCESS) {
			dns_resolver_free(&r);
			return -EINVAL;
		}
	}
	*r_r = r;
	return 0;
}

void dns_resolver_free(struct dns_resolver **rp)
{
	struct dns_resolver *r = *rp;

	if (r == NULL)
		return;
	r->destroying = true;
	loop_timer_disarm(r->loop, &r->timer);
	if (r->channel_ok)
		ares_destroy(r->ch); /* runs every callback: EDESTRUCTION */
	/* What c-ares did not hold: failures waiting for their timer. */
	while (r->queries != NULL)
		dns_query_free(r->queries);
	for (unsigned i = 0; i < DNS_SOCKS_MAX; i++) {
		if (r->socks[i].fd >= 0)
			loop_poll_remove(&r->socks[i].poll);
	}
	free(r);
	*rp = NULL;
}

unsigned dns_resolver_pending(const struct dns_resolver *r)
{
	return r->pending;
}

static void dns_query_free(struct dns_query *q)
{
	*q->pprev = q->next;
	if (q->next != NULL)
		q->next->pprev = q->pprev;
	loop_timer_disarm(q->r->loop, &q->deadline);
	loop_timer_disarm(q->r->loop, &q->later);
	q->r->pending--;
	free(q->aans);
	free(q);
}

static void dns_report(struct dns_query *q, enum dns_status st,
		       const struct dns_txt_answer *ans)
{
	dns_txt_fn *fn = q->fn;
	dns_addr_fn *afn = q->afn;

	q->fn = NULL;
	q->afn = NULL;
	loop_timer_disarm(q->r->loop, &q->deadline);
	if (fn != NULL)
		fn(st, ans, q->arg);
	else if (afn != NULL)
		afn(st, st == DNS_OK ? q->aans : NULL, q->arg);
}

static bool dns_query_live(const struct dns_query *q)
{
	return q->fn != NULL || q->afn != NULL;
}

static void dns_ares_cb(void *arg, int status, int timeouts,
			unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;
	struct dns_txt_answer *ans;
	int r;

	(void)timeouts;
	q->in_ares = false;
	if (q == q->r->calling) {
		q->r->called = true;
		q->r->called_status = status;
		return;
	}
	if (!dns_query_live(q) || status == ARES_EDESTRUCTION ||
	    q->r->destroying) {
		dns_query_free(q);
		return;
	}
	switch (status) {
	case ARES_SUCCESS:
		ans = malloc(sizeof(*ans));
		if (ans == NULL) {
			dns_report(q, DNS_TEMPFAIL, NULL);
			break;
		}
		r = dns_parse_txt(abuf, alen > 0 ? (size_t)alen : 0, ans);
		if (r < 0)
			dns_report(q, DNS_ERR_RESPONSE, NULL);
		else
			dns_report(q, DNS_OK, ans);
		free(ans);
		break;
	case ARES_ENOTFOUND:
	case ARES_ENODATA:
		dns_report(q, DNS_NOTFOUND, NULL);
		break;
	case ARES_EBADRESP:
	case ARES_EFORMERR:
		dns_report(q, DNS_ERR_RESPONSE, NULL);
		break;
	default: /* ETIMEOUT, ESERVFAIL, EREFUSED, ECONNREFUSED, ... */
		dns_report(q, DNS_TEMPFAIL, NULL);
		break;
	}
	dns_query_free(q);
}

static void dns_deadline_cb(struct loop_timer *t, void *arg)
{
	struct dns_query *q = arg;

	(void)t;
	/* c-ares keeps the query until its own tries run out; the
	 * caller hears of the timeout now. */
	dns_report(q, DNS_TEMPFAIL, NULL);
}

static void dns_later_cb(struct loop_timer *t, void *arg)
{
	struct dns_query *q = arg;

	(void)t;
	dns_report(q, q->later_st, NULL);
	if (!q->in_ares)
		dns_query_free(q);
}

/* A query of @r, linked into its list and counted as pending, its timers
 * ready; the caller sets the callback and hands it to c-ares. */
static struct dns_query *dns_query_new(struct dns_resolver *r, void *arg)
{
	struct dns_query *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->r = r;
	q->arg = arg;
	loop_timer_init(&q->deadline, dns_deadline_cb, q);
	loop_timer_init(&q->later, dns_later_cb, q);
	r->pending++;
	q->next = r->queries;
	if (r->queries != NULL)
		r->queries->pprev = &q->next;
	r->queries = q;
	q->pprev = &r->queries;
	q->in_ares = true;
	return q;
}

/* c-ares holds @q: arm its deadline and c-ares's own timer. */
static void dns_query_started(struct dns_query *q, uint64_t timeout_ms)
{
	loop_timer_arm(q->r->loop, &q->deadline,
		       timeout_ms != 0 ? timeout_ms : DNS_TIMEOUT_DEFAULT);
	dns_rearm(q->r);
}

int dns_txt_lookup(struct dns_resolver *r, const char *name,
		   uint64_t timeout_ms, dns_txt_fn *fn, void *arg,
		   struct dns_query **q_r)
{
	struct dns_query *q;

	*q_r = NULL;
	if (name == NULL || name[0] == '\0' || strlen(name) > 253)
		return -EINVAL;
	q = dns_query_new(r, arg);
	if (q == NULL)
		return -ENOMEM;
	q->fn = fn;
	r->calling = q;
	r->called = false;
	ares_query(r->ch, name, ns_c_in, ns_t_txt, dns_ares_cb, q);
	r->calling = NULL;
	if (r->called) {
		/* Failed inside ares_query (no server, bad name, ...). */
		q->later_st = r->called_status == ARES_ENOTFOUND ||
					      r->called_status == ARES_ENODATA
				      ? DNS_NOTFOUND
				      : DNS_TEMPFAIL;
		loop_timer_arm(r->loop, &q->later, 0);
		*q_r = q;
		return 0;
	}
	dns_query_started(q, timeout_ms);
	*q_r = q;
	return 0;
}

void dns_query_cancel(struct dns_query **qp)
{
	struct dns_query *q = *qp;

	if (q == NULL)
		return;
	*qp = NULL;
	q->fn = NULL;
	q->afn = NULL;
	loop_timer_disarm(q->r->loop, &q->deadline);
	if (loop_timer_armed(&q->later)) {
		dns_query_free(q);
		return;
	}
	/* In c-ares still: freed by dns_ares_cb. */
}

/* ---- A / AAAA through ares_getaddrinfo ---- */

static enum dns_status dns_status_of(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return DNS_OK;
	case ARES_ENOTFOUND:
	case ARES_ENODATA:
	case ARES_ENONAME:
		return DNS_NOTFOUND;
	case ARES_EBADRESP:
	case ARES_EFORMERR:
		return DNS_ERR_RESPONSE;
	default:
		return DNS_TEMPFAIL;
	}
}

/* Copy @ai's addresses into a new answer; NULL when none or no memory. */
static struct dns_addr_answer *dns_addr_collect(const struct ares_addrinfo *ai)
{
	struct dns_addr_answer *a;
	const struct ares_addrinfo_node *n;

	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL;
	a->ttl = UINT32_MAX;
	for (n = ai != NULL ? ai->nodes : NULL;
	     n != NULL && a->n < DNS_ADDR_MAX; n = n->ai_next) {
		if ((n->ai_family != AF_INET && n->ai_family != AF_INET6) ||
		    n->ai_addrlen > sizeof(a->addr[0]))
			continue;
		memcpy(&a->addr[a->n], n->ai_addr, n->ai_addrlen);
		a->len[a->n] = (socklen_t)n->ai_addrlen;
		if (n->ai_ttl >= 0 && (uint32_t)n->ai_ttl < a->ttl)
			a->ttl = (uint32_t)n->ai_ttl;
		a->n++;
	}
	if (a->ttl == UINT32_MAX)
		a->ttl = 0;
	if (a->n == 0) {
		free(a);
		return NULL;
	}
	return a;
}

static void dns_addr_cb(void *arg, int status, int timeouts,
			struct ares_addrinfo *res)
{
	struct dns_query *q = arg;
	enum dns_status st = dns_status_of(status);

	(void)timeouts;
	q->in_ares = false;
	if (status == ARES_SUCCESS) {
		q->aans = dns_addr_collect(res);
		if (q->aans == NULL)
			st = DNS_NOTFOUND; /* nothing usable */
	}
	if (res != NULL)
		ares_freeaddrinfo(res);
	if (q == q->r->calling) {
		/* Answered inside ares_getaddrinfo (hosts file, literal):
		 * reported from a timer. */
		q->r->called = true;
		q->later_st = st;
		return;
	}
	if (!dns_query_live(q) || status == ARES_EDESTRUCTION ||
	    q->r->destroying) {
		dns_query_free(q);
		return;
	}
	dns_report(q, st, NULL);
	dns_query_free(q);
}

int dns_addr_lookup(struct dns_resolver *r, const char *name, int family,
		    uint64_t timeout_ms, dns_addr_fn *fn, void *arg,
		    struct dns_query **q_r)
{
	struct ares_addrinfo_hints h;
	struct dns_query *q;

	*q_r = NULL;
	if (name == NULL || name[0] == '\0' || strlen(name) > 253 ||
	    (family != AF_UNSPEC && family != AF_INET && family != AF_INET6))
		return -EINVAL;
	q = dns_query_new(r, arg);
	if (q == NULL)
		return -ENOMEM;
	q->afn = fn;
	memset(&h, 0, sizeof(h));
	h.ai_family = family;
	h.ai_socktype = SOCK_STREAM;
	r->calling = q;
	r->called = false;
	ares_getaddrinfo(r->ch, name, NULL, &h, dns_addr_cb, q);
	r->calling = NULL;
	if (r->called) {
		loop_timer_arm(r->loop, &q->later, 0);
		*q_r = q;
		return 0;
	}
	dns_query_started(q, timeout_ms);
	*q_r = q;
	return 0;
}
