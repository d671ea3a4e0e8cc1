/* core/http/http_client: origins, connections and requests on the loop.
 * An origin (scheme, host, port, verified or not, fixed address) keeps a
 * FIFO of requests waiting for a connection and its connections; each
 * connection resolves (c-ares), connects, handshakes (ALPN h2 or
 * http/1.1) and then carries streams (h2_client.c) or one request at a
 * time (http_client_h1.c). Requests are dispatched from a zero-delay
 * timer per origin, so no done callback ever runs inside
 * http_client_request and callbacks may submit new requests. */
#include "core/http/http_client.h"

/* system */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* project */
#include "core/conn.h"
#include "core/dns.h"
#include "core/http/http_client-int.h"
#include "core/log.h"
#include "core/loop.h"

#define HC_CONNECT_TIMEOUT_MS 10000
#define HC_IDLE_TIMEOUT_MS    60000
#define HC_REQ_TIMEOUT_MS     60000
#define HC_MAX_CONNS          8
#define HC_MAX_QUEUED         65536
#define HC_HDR_MAX            (16u * 1024u)
#define HC_BODY_MAX           (64u * 1024u)
#define HC_REQ_FIELDS_MAX     64
#define HC_OUT_HIGH           (256u * 1024u) /* stop writing above this */

struct hc_conn;

struct hc_req {
	struct hc_req *next, *prev;         /* origin queue */
	struct hc_req *all_next, *all_prev; /* client's live requests */
	struct http_client *cl;
	struct hc_origin *o;
	struct hc_conn *conn; /* carrying it, or NULL while queued */
	bool queued;
	bool retried;
	bool head;
	struct h2c_stream st;
	struct hc_resp resp;
	struct loop_timer deadline;
	uint64_t timeout_ms;
	http_client_done_fn *done;
	void *arg;
	const char *method, *path;
	struct http_field *fields;
	unsigned nfields;
	const uint8_t *body;
	size_t body_len;
	bool has_body;
	/* method, path, fields and body follow in the same allocation */
};

enum hc_conn_state {
	HC_CONN_RESOLVING,
	HC_CONN_CONNECTING,
	HC_CONN_READY,
	HC_CONN_CLOSING,
};

struct hc_conn {
	struct hc_conn *next, *prev;
	struct hc_origin *o;
	struct conn *c;
	struct dns_query *q;
	enum hc_conn_state state;
	bool h2;
	struct h2c *h2c;
	struct hc_req *h1_req; /* HTTP/1.1: the request in flight */
	size_t h1_body_off;    /* of h1_req's body, written so far */
	struct hc_h1 h1p;
	struct loop_timer timer; /* connect timeout, then idle timeout */
	struct sockaddr_storage addrs[DNS_ADDR_MAX];
	socklen_t addr_lens[DNS_ADDR_MAX];
	unsigned naddrs, addr_idx;
	unsigned requests;
	int err;     /* why it failed, set before conn_close */
	uint64_t id; /* of the current conn, for log lines */
	char reason[192];
	char addr_str[64];
};

struct hc_origin {
	struct hc_origin *next;
	struct http_client *cl;
	char *host;      /* as given: SNI and verified name */
	char *authority; /* host[:port], IPv6 in brackets */
	uint16_t port;
	bool plain, insecure;
	struct sockaddr_storage fixed;
	socklen_t fixed_len; /* 0: resolve host */
	struct hc_req *qhead, *qtail;
	unsigned nqueued;
	struct hc_conn *conns;
	bool known_h1; /* the last connection spoke HTTP/1.1 */
	struct loop_timer pump;
};

struct http_client {
	struct loop *loop;
	struct http_client_opts opts;
	char *trust_file;
	struct tls_ctx *tls_verify, *tls_insecure;
	struct hc_origin *origins;
	struct hc_req *reqs;
	unsigned live;
	unsigned conns_open;
	uint64_t conns_opened, requests_done, requests_retried;
};

static void hc_conn_event(struct conn *c, enum conn_ev ev, void *arg);
static void hc_conn_start_connect(struct hc_conn *hc);
static void hc_conn_fail(struct hc_conn *hc, int err, const char *reason);

/* ---- helpers ---- */

static const char *hc_scheme(const struct hc_origin *o)
{
	return o->plain ? "http" : "https";
}

static void hc_addr_format(const struct sockaddr *sa, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(out, len, "%s:%u", ip, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(out, len, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else {
		snprintf(out, len, "?");
	}
}

static void hc_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/* Parse an IP literal host into @ss (with @port); false if not one. */
static bool hc_ip_literal(const char *host, uint16_t port,
			  struct sockaddr_storage *ss, socklen_t *len_r)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		*len_r = sizeof(*in);
		return true;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len_r = sizeof(*in6);
		return true;
	}
	return false;
}

/* Map why a connection ended to the API's error codes. */
static int hc_err_of_reason(const char *reason)
{
	if (strstr(reason, "certificate verify failed") != NULL)
		return -EKEYREJECTED;
	if (strncmp(reason, "tls", 3) == 0)
		return -EPROTO;
	if (strcmp(reason, strerror(ECONNREFUSED)) == 0)
		return -ECONNREFUSED;
	if (strcmp(reason, strerror(ETIMEDOUT)) == 0 ||
	    strcmp(reason, "timeout") == 0)
		return -ETIMEDOUT;
	if (strcmp(reason, strerror(EHOSTUNREACH)) == 0 ||
	    strcmp(reason, strerror(ENETUNREACH)) == 0)
		return -EHOSTUNREACH;
	return -ECONNRESET;
}

/* ---- requests ---- */

static void hc_origin_pump_soon(struct hc_origin *o)
{
	loop_timer_arm(o->cl->loop, &o->pump, 0);
}

static void hc_queue_push(struct hc_origin *o, struct hc_req *r, bool front)
{
	r->queued = true;
	r->conn = NULL;
	if (front) {
		r->prev = NULL;
		r->next = o->qhead;
		if (o->qhead != NULL)
			o->qhead->prev = r;
		else
			o->qtail = r;
		o->qhead = r;
	} else {
		r->next = NULL;
		r->prev = o->qtail;
		if (o->qtail != NULL)
			o->qtail->next = r;
		else
			o->qhead = r;
		o->qtail = r;
	}
	o->nqueued++;
}

static void hc_queue_remove(struct hc_origin *o, struct hc_req *r)
{
	if (!r->queued)
		return;
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		o->qhead = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	else
		o->qtail = r->prev;
	r->next = r->prev = NULL;
	r->queued = false;
	o->nqueued--;
}

static void hc_req_free(struct hc_req *r)
{
	struct http_client *cl = r->cl;

	loop_timer_disarm(cl->loop, &r->deadline);
	if (r->all_prev != NULL)
		r->all_prev->all_next = r->all_next;
	else
		cl->reqs = r->all_next;
	if (r->all_next != NULL)
		r->all_next->all_prev = r->all_prev;
	cl->live--;
	hc_resp_free(&r->resp);
	free(r);
}

/* Report @r's outcome and free it; it must be off every queue/conn. */
static void hc_req_finish(struct hc_req *r, int err, const char *reason,
			  const char *version, uint64_t conn_id)
{
	struct http_field fields[HC_FIELDS_MAX];
	struct http_client_resp resp;
	http_client_done_fn *done = r->done;
	void *arg = r->arg;

	r->cl->requests_done++;
	loop_timer_disarm(r->cl->loop, &r->deadline);
	if (err == 0) {
		hc_resp_view(&r->resp, fields, &resp);
		resp.version = version;
		resp.conn_id = conn_id;
		done(0, &resp, "", arg);
	} else {
		done(err, NULL, reason != NULL ? reason : "", arg);
	}
	hc_req_free(r);
}

static void hc_conn_idle_check(struct hc_conn *hc);

static void hc_req_deadline(struct loop_timer *t, void *arg)
{
	struct hc_req *r = arg;
	struct hc_conn *hc = r->conn;
	char why[64];

	(void)t;
	snprintf(why, sizeof(why), "no response within %" PRIu64 " ms",
		 r->timeout_ms);
	if (r->queued) {
		hc_queue_remove(r->o, r);
	} else if (hc != NULL && hc->h2) {
		h2c_cancel(hc->h2c, &r->st);
		(void)h2c_flush(hc->h2c);
		r->conn = NULL;
		hc_conn_idle_check(hc);
	} else if (hc != NULL) {
		/* HTTP/1.1 cannot abandon a response: the connection goes. */
		hc->h1_req = NULL;
		r->conn = NULL;
		hc_conn_fail(hc, -ETIMEDOUT, "request timeout");
	}
	hc_req_finish(r, -ETIMEDOUT, why, NULL, 0);
}

static bool hc_token_ok(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c))
			return false;
	}
	return true;
}

static bool hc_value_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < ' ' && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/* Fields a caller may not set: the client owns connection framing. */
static bool hc_field_reserved(const char *name, size_t n)
{
	static const char *const names[] = {
		"connection",
		"keep-alive",
		"transfer-encoding",
		"upgrade",
		"host",
		"te",
		"content-length",
		"proxy-connection",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i]) == n &&
		    strncasecmp(name, names[i], n) == 0)
			return true;
	}
	return false;
}

static bool hc_req_valid(const struct http_client_req *q)
{
	const char *path = q->path != NULL ? q->path : "/";

	if (q->host == NULL || q->host[0] == '\0' || strlen(q->host) > 253 ||
	    !hc_value_ok(q->host, strlen(q->host)) ||
	    strpbrk(q->host, " /?#@[]") != NULL)
		return false;
	if (path[0] != '/' || strpbrk(path, " \r\n") != NULL ||
	    !hc_value_ok(path, strlen(path)) || strlen(path) > 8192)
		return false;
	if (q->method != NULL && (!hc_token_ok(q->method, strlen(q->method)) ||
				  strlen(q->method) > 32))
		return false;
	if (q->nfields > HC_REQ_FIELDS_MAX || (q->nfields > 0 && !q->fields))
		return false;
	for (unsigned i = 0; i < q->nfields; i++) {
		const struct http_field *f = &q->fields[i];

		if (!hc_token_ok(f->name, f->name_len) ||
		    !hc_value_ok(f->value, f->value_len) ||
		    hc_field_reserved(f->name, f->name_len))
			return false;
	}
	if (q->addr != NULL &&
	    (q->addr_len > sizeof(struct sockaddr_storage) ||
	     (q->addr->sa_family != AF_INET && q->addr->sa_family != AF_INET6)))
		return false;
	return true;
}

/* ---- origins ---- */

static bool hc_origin_match(const struct hc_origin *o,
			    const struct http_client_req *q, uint16_t port)
{
	if (o->port != port || o->plain != q->plain ||
	    o->insecure != (q->insecure && !q->plain) ||
	    strcasecmp(o->host, q->host) != 0)
		return false;
	if (q->addr == NULL)
		return o->fixed_len == 0;
	return o->fixed_len == q->addr_len &&
	       memcmp(&o->fixed, q->addr, q->addr_len) == 0;
}

static void hc_origin_pump(struct loop_timer *t, void *arg);

static struct hc_origin *hc_origin_get(struct http_client *cl,
				       const struct http_client_req *q,
				       uint16_t port)
{
	struct hc_origin *o;
	bool v6 = strchr(q->host, ':') != NULL;
	bool dflt = port == (q->plain ? 80 : 443);
	size_t al = strlen(q->host) + 16;

	for (o = cl->origins; o != NULL; o = o->next) {
		if (hc_origin_match(o, q, port))
			return o;
	}
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return NULL;
	o->cl = cl;
	o->host = strdup(q->host);
	o->authority = malloc(al);
	if (o->host == NULL || o->authority == NULL) {
		free(o->host);
		free(o->authority);
		free(o);
		return NULL;
	}
	if (dflt)
		snprintf(o->authority, al, v6 ? "[%s]" : "%s", q->host);
	else
		snprintf(o->authority, al, v6 ? "[%s]:%u" : "%s:%u", q->host,
			 port);
	o->port = port;
	o->plain = q->plain;
	o->insecure = q->insecure && !q->plain;
	if (q->addr != NULL) {
		memcpy(&o->fixed, q->addr, q->addr_len);
		o->fixed_len = q->addr_len;
	}
	loop_timer_init(&o->pump, hc_origin_pump, o);
	o->next = cl->origins;
	cl->origins = o;
	return o;
}

static void hc_origin_free(struct hc_origin *o)
{
	struct hc_origin **pp = &o->cl->origins;

	while (*pp != o)
		pp = &(*pp)->next;
	*pp = o->next;
	loop_timer_disarm(o->cl->loop, &o->pump);
	free(o->host);
	free(o->authority);
	free(o);
}

/* Every queued request of @o fails with @err (its connection attempt
 * failed and no other connection can take them). */
static void hc_origin_fail_queue(struct hc_origin *o, int err,
				 const char *reason)
{
	struct hc_req *list = o->qhead, *r;

	o->qhead = o->qtail = NULL;
	o->nqueued = 0;
	for (r = list; r != NULL; r = r->next)
		r->queued = false;
	/* Done callbacks may queue new requests on @o: they wait for the
	 * next pump, not for this loop. */
	while ((r = list) != NULL) {
		list = r->next;
		r->next = r->prev = NULL;
		hc_req_finish(r, err, reason, NULL, 0);
	}
}

/* ---- connections ---- */

static const char *hc_conn_proto(const struct hc_conn *hc)
{
	if (hc->state < HC_CONN_READY)
		return "none";
	return hc->h2 ? "h2" : "http/1.1";
}

static uint64_t hc_conn_log_id(const struct hc_conn *hc)
{
	return hc->id;
}

static unsigned hc_conn_inflight(const struct hc_conn *hc)
{
	if (hc->h2)
		return hc->h2c != NULL ? h2c_open_streams(hc->h2c) : 0;
	return hc->h1_req != NULL ? 1 : 0;
}

static void hc_conn_unlink(struct hc_conn *hc)
{
	struct hc_origin *o = hc->o;

	if (hc->prev != NULL)
		hc->prev->next = hc->next;
	else
		o->conns = hc->next;
	if (hc->next != NULL)
		hc->next->prev = hc->prev;
	o->cl->conns_open--;
}

static void hc_conn_free(struct hc_conn *hc)
{
	loop_timer_disarm(hc->o->cl->loop, &hc->timer);
	dns_query_cancel(&hc->q);
	h2c_free(&hc->h2c);
	free(hc);
}

/* Close @hc (its CLOSED event finishes the work); @err/@reason say why
 * for what is still waiting on it. */
static void hc_conn_fail(struct hc_conn *hc, int err, const char *reason)
{
	if (hc->err == 0) {
		hc->err = err;
		snprintf(hc->reason, sizeof(hc->reason), "%s", reason);
	}
	loop_timer_disarm(hc->o->cl->loop, &hc->timer);
	if (hc->q != NULL || hc->c == NULL) {
		/* Still resolving: no socket to close. */
		dns_query_cancel(&hc->q);
		hc_conn_event(NULL, CONN_EV_CLOSED, hc);
		return;
	}
	if (hc->state != HC_CONN_CLOSING || err != 0) {
		hc->state = hc->state == HC_CONN_READY ? HC_CONN_CLOSING
						       : hc->state;
		conn_close(hc->c, false);
	}
}

static void hc_conn_timer(struct loop_timer *t, void *arg)
{
	struct hc_conn *hc = arg;
	struct http_client *cl = hc->o->cl;
	char why[96];

	(void)t;
	if (hc->state < HC_CONN_READY) {
		snprintf(why, sizeof(why),
			 "connect timeout after %" PRIu64 " ms",
			 cl->opts.connect_timeout_ms);
		/* Try the next address if there is one. */
		hc->err = 0;
		hc->reason[0] = '\0';
		hc_conn_fail(hc, -ETIMEDOUT, why);
		return;
	}
	if (hc->state == HC_CONN_READY && hc_conn_inflight(hc) == 0) {
		log_debug("%016" PRIx64
			  " http-client idle close origin=%s://%s "
			  "proto=%s requests=%u",
			  hc_conn_log_id(hc), hc_scheme(hc->o),
			  hc->o->authority, hc_conn_proto(hc), hc->requests);
		hc->state = HC_CONN_CLOSING;
		if (hc->h2) {
			h2c_goaway(hc->h2c);
			(void)h2c_flush(hc->h2c);
		}
		snprintf(hc->reason, sizeof(hc->reason), "idle");
		conn_close(hc->c, true);
	}
}

/* Arm the idle timer when nothing is in flight. */
static void hc_conn_idle_check(struct hc_conn *hc)
{
	struct http_client *cl = hc->o->cl;

	if (hc->state != HC_CONN_READY)
		return;
	if (hc_conn_inflight(hc) == 0) {
		if (hc->h2 && h2c_going_away(hc->h2c)) {
			hc_conn_fail(hc, -ECONNRESET, "server going away");
			return;
		}
		loop_timer_arm(cl->loop, &hc->timer, cl->opts.idle_timeout_ms);
	} else {
		loop_timer_disarm(cl->loop, &hc->timer);
	}
}

/* h2c ops */

static int hc_h2_send(void *arg, const uint8_t *data, size_t len)
{
	struct hc_conn *hc = arg;

	return conn_write(hc->c, data, len);
}

static bool hc_h2_can_send(void *arg)
{
	struct hc_conn *hc = arg;

	return hc->c != NULL && conn_pending(hc->c) < HC_OUT_HIGH;
}

static void hc_h2_stream_done(void *arg, struct h2c_stream *s, int err,
			      bool refused, const char *reason)
{
	struct hc_conn *hc = arg;
	struct hc_req *r =
		(struct hc_req *)((char *)s - offsetof(struct hc_req, st));

	r->conn = NULL;
	if (err != 0 && refused && !r->retried) {
		/* Never processed by the server: safe to send again. */
		r->retried = true;
		hc->o->cl->requests_retried++;
		hc_resp_free(&r->resp);
		hc_resp_init(&r->resp, hc->o->cl->opts.max_header_bytes,
			     r->resp.body.max);
		hc_queue_push(hc->o, r, true);
		hc_origin_pump_soon(hc->o);
		return;
	}
	hc_req_finish(r, err, reason, "h2", hc_conn_log_id(hc));
}

static const struct h2c_ops hc_h2_ops = {
	.send = hc_h2_send,
	.can_send = hc_h2_can_send,
	.stream_done = hc_h2_stream_done,
};

static void hc_conn_start_h2(struct hc_conn *hc, struct hc_req *r)
{
	struct hc_origin *o = hc->o;
	struct h2c_req hr = {
		.method = r->method,
		.scheme = hc_scheme(o),
		.authority = o->authority,
		.path = r->path,
		.fields = r->fields,
		.nfields = r->nfields,
	};
	int32_t id;

	r->conn = hc;
	r->st.resp = &r->resp;
	r->st.body = r->has_body ? r->body : NULL;
	r->st.body_len = r->body_len;
	id = h2c_submit(hc->h2c, &r->st, &hr);
	if (id < 0) {
		r->conn = NULL;
		hc_req_finish(r, -EPROTO, "h2: cannot open a stream", NULL, 0);
		return;
	}
	hc->requests++;
}

/* HTTP/1.1: write the body while the output is below its mark. */
static void hc_h1_write_body(struct hc_conn *hc)
{
	struct hc_req *r = hc->h1_req;
	size_t n;

	while (r != NULL && hc->h1_body_off < r->body_len &&
	       conn_pending(hc->c) < HC_OUT_HIGH) {
		n = r->body_len - hc->h1_body_off;
		if (n > 64 * 1024)
			n = 64 * 1024;
		if (conn_write(hc->c, r->body + hc->h1_body_off, n) < 0) {
			hc_conn_fail(hc, -ECONNRESET, "write failed");
			return;
		}
		hc->h1_body_off += n;
	}
}

static void hc_conn_h1_input(struct hc_conn *hc);

static void hc_conn_start_h1(struct hc_conn *hc, struct hc_req *r)
{
	struct buf head;
	int rc;

	buf_init(&head, 64 * 1024);
	rc = hc_h1_write_head(&head, r->method, hc->o->authority, r->path,
			      r->fields, r->nfields, r->body_len, r->has_body);
	if (rc < 0) {
		buf_free(&head);
		hc_req_finish(r, -EINVAL, "request head too large", NULL, 0);
		return;
	}
	r->conn = hc;
	hc->h1_req = r;
	hc->h1_body_off = 0;
	hc_h1_init(&hc->h1p, &r->resp, r->head);
	hc->requests++;
	rc = conn_write(hc->c, buf_head(&head), head.len);
	buf_free(&head);
	if (rc < 0) {
		hc_conn_fail(hc, -ECONNRESET, "write failed");
		return;
	}
	hc_h1_write_body(hc);
	if (hc->state == HC_CONN_READY && conn_input(hc->c)->len > 0)
		hc_conn_h1_input(hc);
}

static void hc_conn_h1_input(struct hc_conn *hc)
{
	struct buf *in = conn_input(hc->c);
	struct hc_req *r = hc->h1_req;
	size_t used = 0;
	int rc;

	if (r == NULL) {
		if (in->len > 0)
			hc_conn_fail(hc, -EPROTO,
				     "http/1.1: data without a request");
		return;
	}
	rc = hc_h1_parse(&hc->h1p, buf_head(in), in->len, &used);
	conn_consume(hc->c, used);
	if (rc == HC_H1_AGAIN)
		return;
	hc->h1_req = NULL;
	r->conn = NULL;
	if (rc < 0) {
		hc_conn_fail(hc, rc, hc->h1p.err);
		hc_req_finish(r, rc, hc->h1p.err, NULL, 0);
		return;
	}
	if (!hc->h1p.keep_alive || hc->h1_body_off < r->body_len)
		hc_conn_fail(hc, 0, "no keep-alive");
	else if (conn_input(hc->c)->len > 0)
		hc_conn_fail(hc, -EPROTO, "http/1.1: data after the response");
	else
		hc_conn_idle_check(hc);
	hc_req_finish(r, 0, NULL, "http/1.1", hc_conn_log_id(hc));
	hc_origin_pump_soon(hc->o);
}

static void hc_conn_h2_input(struct hc_conn *hc)
{
	struct buf *in = conn_input(hc->c);
	int rc;

	rc = h2c_feed(hc->h2c, buf_head(in), in->len);
	if (hc->c != NULL)
		conn_consume(hc->c, in->len);
	if (rc < 0) {
		hc_conn_fail(hc, -EPROTO, h2c_reason(hc->h2c));
		return;
	}
	if (h2c_flush(hc->h2c) < 0 || !h2c_alive(hc->h2c)) {
		hc_conn_fail(hc, -ECONNRESET,
			     h2c_reason(hc->h2c)[0] ? h2c_reason(hc->h2c)
						    : "h2 session ended");
		return;
	}
	hc_conn_idle_check(hc);
	if (hc->o->nqueued > 0)
		hc_origin_pump_soon(hc->o);
}

static void hc_conn_ready(struct hc_conn *hc)
{
	struct http_client *cl = hc->o->cl;
	const char *alpn = conn_is_tls(hc->c) ? conn_tls_alpn(hc->c) : "";

	loop_timer_disarm(cl->loop, &hc->timer);
	hc->h2 = strcmp(alpn, "h2") == 0;
	if (hc->h2 && h2c_new(&hc_h2_ops, hc, cl->opts.max_streams,
			      cl->opts.max_header_bytes, &hc->h2c) < 0) {
		hc_conn_fail(hc, -ENOMEM, "out of memory");
		return;
	}
	hc->state = HC_CONN_READY;
	hc->o->known_h1 = !hc->h2;
	log_debug("%016" PRIx64 " http-client ready origin=%s://%s addr=%s "
		  "proto=%s tls=%s",
		  hc_conn_log_id(hc), hc_scheme(hc->o), hc->o->authority,
		  hc->addr_str, hc_conn_proto(hc),
		  conn_is_tls(hc->c) ? conn_tls_version(hc->c) : "none");
	if (hc->h2 && h2c_flush(hc->h2c) < 0) {
		hc_conn_fail(hc, -ECONNRESET, h2c_reason(hc->h2c));
		return;
	}
	hc_conn_idle_check(hc);
	hc_origin_pump_soon(hc->o);
}

static void hc_conn_closed(struct hc_conn *hc)
{
	struct hc_origin *o = hc->o;
	struct http_client *cl = o->cl;
	bool connecting = hc->state < HC_CONN_READY;
	const char *reason = hc->reason;
	struct hc_req *r;
	int err = hc->err;
	bool others = false;

	if (reason[0] == '\0')
		reason = "closed";
	if (connecting) {
		if (err == 0)
			err = hc_err_of_reason(reason);
		log_warn("%016" PRIx64 " http-client connect failed "
			 "origin=%s://%s addr=%s reason=\"%s\"",
			 hc_conn_log_id(hc), hc_scheme(o), o->authority,
			 hc->addr_str[0] ? hc->addr_str : "-", reason);
		if (err != -EKEYREJECTED && hc->addr_idx + 1 < hc->naddrs) {
			hc->addr_idx++;
			hc->err = 0;
			hc->reason[0] = '\0';
			hc->c = NULL;
			hc_conn_start_connect(hc);
			return;
		}
	} else {
		if (err == 0)
			err = -ECONNRESET;
		log_debug("%016" PRIx64 " http-client close origin=%s://%s "
			  "proto=%s requests=%u reason=\"%s\"",
			  hc_conn_log_id(hc), hc_scheme(o), o->authority,
			  hc_conn_proto(hc), hc->requests, reason);
	}
	hc_conn_unlink(hc);
	if (hc->h2c != NULL)
		h2c_abort(hc->h2c, err == 0 ? -ECONNRESET : err, reason);
	if ((r = hc->h1_req) != NULL) {
		hc->h1_req = NULL;
		r->conn = NULL;
		if (hc_h1_eof(&hc->h1p) == HC_H1_OK)
			hc_req_finish(r, 0, NULL, "http/1.1", 0);
		else
			hc_req_finish(r, -ECONNRESET,
				      "connection closed mid-response", NULL,
				      0);
	}
	if (connecting) {
		for (struct hc_conn *x = o->conns; x != NULL; x = x->next)
			if (x->state != HC_CONN_CLOSING)
				others = true;
		if (!others)
			hc_origin_fail_queue(o, err, reason);
	}
	hc_conn_free(hc);
	(void)cl;
	hc_origin_pump_soon(o);
}

static void hc_conn_event(struct conn *c, enum conn_ev ev, void *arg)
{
	struct hc_conn *hc = arg;

	switch (ev) {
	case CONN_EV_CONNECTED:
	case CONN_EV_TLS_READY:
		if (hc->state < HC_CONN_READY)
			hc_conn_ready(hc);
		break;
	case CONN_EV_DATA:
		if (hc->state == HC_CONN_READY ||
		    hc->state == HC_CONN_CLOSING) {
			if (hc->h2)
				hc_conn_h2_input(hc);
			else
				hc_conn_h1_input(hc);
		}
		break;
	case CONN_EV_DRAINED:
		if (hc->state == HC_CONN_READY && hc->h2)
			(void)h2c_flush(hc->h2c);
		else if (hc->state == HC_CONN_READY)
			hc_h1_write_body(hc);
		break;
	case CONN_EV_TIMEOUT:
		break;
	case CONN_EV_CLOSED:
		if (c != NULL && hc->reason[0] == '\0')
			snprintf(hc->reason, sizeof(hc->reason), "%s",
				 conn_close_reason(c));
		hc->c = NULL;
		hc_conn_closed(hc);
		break;
	}
}

static void hc_conn_start_connect(struct hc_conn *hc)
{
	struct hc_origin *o = hc->o;
	struct http_client *cl = o->cl;
	struct tls_ctx *tls = NULL;
	const struct sockaddr *sa = (const void *)&hc->addrs[hc->addr_idx];

	hc->state = HC_CONN_CONNECTING;
	hc_addr_format(sa, hc->addr_str, sizeof(hc->addr_str));
	if (!o->plain)
		tls = o->insecure ? cl->tls_insecure : cl->tls_verify;
	cl->conns_opened++;
	loop_timer_arm(cl->loop, &hc->timer, cl->opts.connect_timeout_ms);
	hc->c = conn_connect(cl->loop, sa, hc->addr_lens[hc->addr_idx], tls,
			     tls != NULL ? o->host : NULL,
			     cl->opts.max_header_bytes + 64 * 1024,
			     hc_conn_event, hc);
	if (hc->c != NULL)
		hc->id = conn_id(hc->c);
	if (hc->c == NULL) {
		snprintf(hc->reason, sizeof(hc->reason), "connect: %s",
			 strerror(errno != 0 ? errno : ENOMEM));
		hc->err = -ECONNRESET;
		hc_conn_event(NULL, CONN_EV_CLOSED, hc);
	}
}

static void hc_conn_resolved(enum dns_status st,
			     const struct dns_addr_answer *ans, void *arg)
{
	struct hc_conn *hc = arg;
	char why[96];

	hc->q = NULL;
	if (st != DNS_OK) {
		snprintf(why, sizeof(why), "dns: %s", dns_status_name(st));
		hc->err = st == DNS_NOTFOUND ? -EHOSTUNREACH : -EAGAIN;
		snprintf(hc->reason, sizeof(hc->reason), "%s", why);
		hc_conn_event(NULL, CONN_EV_CLOSED, hc);
		return;
	}
	hc->naddrs = ans->n;
	for (unsigned i = 0; i < ans->n; i++) {
		memcpy(&hc->addrs[i], &ans->addr[i], ans->len[i]);
		hc->addr_lens[i] = ans->len[i];
		hc_set_port(&hc->addrs[i], hc->o->port);
	}
	loop_timer_disarm(hc->o->cl->loop, &hc->timer);
	hc_conn_start_connect(hc);
}

/* Open one more connection for @o. */
static void hc_conn_open(struct hc_origin *o)
{
	struct http_client *cl = o->cl;
	struct hc_conn *hc = calloc(1, sizeof(*hc));
	int rc;

	if (hc == NULL) {
		hc_origin_fail_queue(o, -ENOMEM, "out of memory");
		return;
	}
	hc->o = o;
	loop_timer_init(&hc->timer, hc_conn_timer, hc);
	hc->next = o->conns;
	if (o->conns != NULL)
		o->conns->prev = hc;
	o->conns = hc;
	cl->conns_open++;
	if (o->fixed_len != 0) {
		memcpy(&hc->addrs[0], &o->fixed, o->fixed_len);
		hc->addr_lens[0] = o->fixed_len;
		hc->naddrs = 1;
		hc_conn_start_connect(hc);
		return;
	}
	if (hc_ip_literal(o->host, o->port, &hc->addrs[0], &hc->addr_lens[0])) {
		hc->naddrs = 1;
		hc_conn_start_connect(hc);
		return;
	}
	hc->state = HC_CONN_RESOLVING;
	if (cl->opts.dns == NULL) {
		hc->err = -EHOSTUNREACH;
		snprintf(hc->reason, sizeof(hc->reason), "dns: no resolver");
		hc_conn_event(NULL, CONN_EV_CLOSED, hc);
		return;
	}
	loop_timer_arm(cl->loop, &hc->timer, cl->opts.connect_timeout_ms);
	rc = dns_addr_lookup(cl->opts.dns, o->host, AF_UNSPEC,
			     cl->opts.connect_timeout_ms, hc_conn_resolved, hc,
			     &hc->q);
	if (rc < 0) {
		hc->err = rc == -EINVAL ? -EHOSTUNREACH : rc;
		snprintf(hc->reason, sizeof(hc->reason), "dns: %s",
			 strerror(-rc));
		hc_conn_event(NULL, CONN_EV_CLOSED, hc);
	}
}

/* ---- dispatch ---- */

static void hc_origin_pump(struct loop_timer *t, void *arg)
{
	struct hc_origin *o = arg;
	struct http_client *cl = o->cl;
	struct hc_conn *hc, *next;
	struct hc_req *r;
	unsigned usable = 0, connecting = 0;

	(void)t;
	for (hc = o->conns; hc != NULL; hc = next) {
		next = hc->next;
		if (hc->state == HC_CONN_CLOSING)
			continue;
		usable++;
		if (hc->state != HC_CONN_READY) {
			connecting++;
			continue;
		}
		if (hc->h2) {
			/* Its capacity is not known before the server's
			 * SETTINGS: count it as still connecting. */
			if (hc->h2c != NULL && !h2c_settings_known(hc->h2c))
				connecting++;
			if (hc->h2c == NULL || !h2c_can_submit(hc->h2c))
				continue;
			while (o->qhead != NULL && h2c_can_submit(hc->h2c)) {
				r = o->qhead;
				hc_queue_remove(o, r);
				hc_conn_start_h2(hc, r);
			}
			if (h2c_flush(hc->h2c) < 0) {
				hc_conn_fail(hc, -ECONNRESET,
					     h2c_reason(hc->h2c));
				continue;
			}
			hc_conn_idle_check(hc);
		} else if (hc->h1_req == NULL && o->qhead != NULL) {
			r = o->qhead;
			hc_queue_remove(o, r);
			hc_conn_start_h1(hc, r);
			if (hc->state == HC_CONN_READY)
				hc_conn_idle_check(hc);
		}
	}
	/* More connections: one at a time for h2 (or not yet known), as
	 * many as there are waiting requests for HTTP/1.1. */
	while (o->nqueued > 0 && usable < cl->opts.max_conns_per_origin &&
	       (connecting == 0 || (o->known_h1 && connecting < o->nqueued))) {
		hc_conn_open(o);
		usable++;
		connecting++;
		if (o->conns == NULL)
			break; /* failed at once: the queue was failed */
	}
	if (o->conns == NULL && o->nqueued == 0 && !loop_timer_armed(&o->pump))
		hc_origin_free(o);
}

/* ---- API ---- */

static void hc_conn_ignore(struct conn *c, enum conn_ev ev, void *arg)
{
	(void)c;
	(void)ev;
	(void)arg;
}

int http_client_new(struct loop *l, const struct http_client_opts *opts,
		    struct http_client **cl_r)
{
	static const char *const alpn_h2[] = {"h2", "http/1.1", NULL};
	static const char *const alpn_h1[] = {"http/1.1", NULL};
	struct http_client *cl;
	struct tls_ctx_opts to;

	*cl_r = NULL;
	cl = calloc(1, sizeof(*cl));
	if (cl == NULL)
		return -ENOMEM;
	cl->loop = l;
	cl->opts = *opts;
	if (cl->opts.connect_timeout_ms == 0)
		cl->opts.connect_timeout_ms = HC_CONNECT_TIMEOUT_MS;
	if (cl->opts.idle_timeout_ms == 0)
		cl->opts.idle_timeout_ms = HC_IDLE_TIMEOUT_MS;
	if (cl->opts.max_conns_per_origin == 0)
		cl->opts.max_conns_per_origin = HC_MAX_CONNS;
	if (cl->opts.max_queued == 0)
		cl->opts.max_queued = HC_MAX_QUEUED;
	if (cl->opts.max_header_bytes == 0)
		cl->opts.max_header_bytes = HC_HDR_MAX;
	if (opts->trust_file != NULL && opts->trust_file[0] != '\0') {
		cl->trust_file = strdup(opts->trust_file);
		if (cl->trust_file == NULL) {
			free(cl);
			return -ENOMEM;
		}
	}
	cl->opts.trust_file = cl->trust_file;
	memset(&to, 0, sizeof(to));
	to.server = false;
	to.alpn = opts->no_h2 ? alpn_h1 : alpn_h2;
	to.ktls = opts->ktls;
	to.ca_file = cl->trust_file;
	to.ca_system = true;
	if (tls_ctx_new(&to, &cl->tls_verify) < 0) {
		http_client_free(&cl);
		return -EINVAL;
	}
	to.insecure = true;
	to.ca_file = NULL;
	if (tls_ctx_new(&to, &cl->tls_insecure) < 0) {
		http_client_free(&cl);
		return -EINVAL;
	}
	*cl_r = cl;
	return 0;
}

void http_client_free(struct http_client **clp)
{
	struct http_client *cl = *clp;
	struct hc_origin *o;
	struct hc_conn *hc;

	if (cl == NULL)
		return;
	while ((o = cl->origins) != NULL) {
		while ((hc = o->conns) != NULL) {
			o->conns = hc->next;
			if (hc->c != NULL) {
				conn_set_handler(hc->c, hc_conn_ignore, NULL);
				conn_close(hc->c, false);
			}
			hc_conn_free(hc);
		}
		o->conns = NULL;
		hc_origin_free(o);
	}
	while (cl->reqs != NULL)
		hc_req_free(cl->reqs);
	tls_ctx_free(&cl->tls_verify);
	tls_ctx_free(&cl->tls_insecure);
	free(cl->trust_file);
	free(cl);
	*clp = NULL;
}

int http_client_request(struct http_client *cl, const struct http_client_req *q,
			http_client_done_fn *done, void *arg)
{
	const char *method = q->method;
	const char *path = q->path != NULL ? q->path : "/";
	uint16_t port = q->port != 0 ? q->port : (q->plain ? 80 : 443);
	size_t ml, pl, sz, fsz = 0;
	struct hc_origin *o;
	struct hc_req *r;
	char *p;

	if (!hc_req_valid(q) || done == NULL)
		return -EINVAL;
	if (cl->live >= cl->opts.max_queued)
		return -ENOBUFS;
	if (method == NULL)
		method = q->body != NULL ? "POST" : "GET";
	ml = strlen(method);
	pl = strlen(path);
	for (unsigned i = 0; i < q->nfields; i++)
		fsz += q->fields[i].name_len + q->fields[i].value_len + 2;
	sz = sizeof(*r) + q->nfields * sizeof(struct http_field) + ml + 1 + pl +
	     1 + fsz + q->body_len;
	o = hc_origin_get(cl, q, port);
	if (o == NULL)
		return -ENOMEM;
	r = malloc(sz);
	if (r == NULL) {
		hc_origin_pump_soon(o); /* frees an unused origin */
		return -ENOMEM;
	}
	memset(r, 0, sizeof(*r));
	r->cl = cl;
	r->o = o;
	r->done = done;
	r->arg = arg;
	r->fields = (struct http_field *)(r + 1);
	r->nfields = q->nfields;
	p = (char *)(r->fields + q->nfields);
	memcpy(p, method, ml + 1);
	r->method = p;
	p += ml + 1;
	memcpy(p, path, pl + 1);
	r->path = p;
	p += pl + 1;
	for (unsigned i = 0; i < q->nfields; i++) {
		const struct http_field *f = &q->fields[i];

		for (size_t k = 0; k < f->name_len; k++) {
			char ch = f->name[k];

			p[k] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
		}
		p[f->name_len] = '\0';
		r->fields[i].name = p;
		r->fields[i].name_len = f->name_len;
		p += f->name_len + 1;
		memcpy(p, f->value, f->value_len);
		p[f->value_len] = '\0';
		r->fields[i].value = p;
		r->fields[i].value_len = f->value_len;
		p += f->value_len + 1;
	}
	if (q->body_len > 0)
		memcpy(p, q->body, q->body_len);
	r->body = (const uint8_t *)p;
	r->body_len = q->body_len;
	r->has_body = q->body != NULL;
	r->head = strcmp(method, "HEAD") == 0;
	hc_resp_init(&r->resp, cl->opts.max_header_bytes,
		     q->body_max != 0 ? q->body_max : HC_BODY_MAX);
	r->timeout_ms = q->timeout_ms != 0 ? q->timeout_ms : HC_REQ_TIMEOUT_MS;
	loop_timer_init(&r->deadline, hc_req_deadline, r);
	loop_timer_arm(cl->loop, &r->deadline, r->timeout_ms);
	r->all_next = cl->reqs;
	if (cl->reqs != NULL)
		cl->reqs->all_prev = r;
	cl->reqs = r;
	cl->live++;
	hc_queue_push(o, r, false);
	hc_origin_pump_soon(o);
	return 0;
}

int http_client_parse_url(const char *url, char *buf, size_t buf_len,
			  struct http_client_req *req)
{
	const char *p, *hs, *he, *ps;
	unsigned long port = 0;
	size_t hl, pl;
	char *e;

	if (strncasecmp(url, "https://", 8) == 0) {
		req->plain = false;
		p = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		req->plain = true;
		p = url + 7;
	} else {
		return -EINVAL;
	}
	if (*p == '[') {
		hs = p + 1;
		he = strchr(hs, ']');
		if (he == NULL)
			return -EINVAL;
		p = he + 1;
	} else {
		hs = p;
		p += strcspn(p, ":/?#");
		he = p;
	}
	if (*p == ':') {
		port = strtoul(p + 1, &e, 10);
		if (e == p + 1 || port == 0 || port > 65535)
			return -EINVAL;
		p = e;
	}
	if (*p == '\0')
		ps = "/";
	else if (*p == '/')
		ps = p;
	else
		return -EINVAL;
	hl = (size_t)(he - hs);
	pl = strlen(ps);
	if (hl == 0 || hl + pl + 2 > buf_len)
		return -EINVAL;
	memcpy(buf, hs, hl);
	buf[hl] = '\0';
	memcpy(buf + hl + 1, ps, pl + 1);
	req->host = buf;
	req->path = buf + hl + 1;
	req->port = (uint16_t)port;
	return 0;
}

void http_client_get_stats(const struct http_client *cl,
			   struct http_client_stats *st)
{
	st->conns_open = cl->conns_open;
	st->conns_opened = cl->conns_opened;
	st->requests_live = cl->live;
	st->requests_done = cl->requests_done;
	st->requests_retried = cl->requests_retried;
}
