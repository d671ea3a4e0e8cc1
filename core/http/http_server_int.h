/* core/http/http_server_int: what the HTTP/1.1 and HTTP/2 server sessions
 * share with each other and with their driver (http_server.c). Sessions
 * are transport-blind: bytes in through *_input, bytes out through the
 * ops vtable, no clock or socket of their own, so tests and fuzzers drive
 * them over memory. */
#ifndef RINGMAIL_CORE_HTTP_SERVER_INT_H
#define RINGMAIL_CORE_HTTP_SERVER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/http/http_req.h"

/* Stop reading pipelined requests while this much output waits. */
#define HTTP_OUT_HIGH (256u * 1024u)

struct http_limits {
	uint32_t head_max;    /* request line + header fields, octets */
	uint32_t target_max;  /* request target, octets */
	uint32_t fields_max;  /* header fields per request */
	uint32_t streams_max; /* concurrent HTTP/2 streams per connection */
};

/* Which deadline the driver should run (each armed afresh, from the
 * loop's clock, when the session enters the phase). */
enum http_phase {
	HTTP_PHASE_IDLE, /* between requests: keep-alive timeout */
	HTTP_PHASE_HEAD, /* a request head is arriving: header timeout */
	HTTP_PHASE_BODY, /* a request body is arriving: body timeout */
};

struct http_sess_ops {
	/* Queue octets for the peer. 0 or <0 (the session then closes). */
	int (*write)(void *io, const void *p, size_t n);
	/* Octets queued and not yet sent. */
	size_t (*pending)(void *io);
	/* The session entered @ph. */
	void (*phase)(void *io, enum http_phase ph);
	/* Monotonic ms (for the access line's duration). */
	uint64_t (*now_ms)(void *io);
};

struct http_sess_cfg {
	const struct http_handler *handler;
	struct http_limits lim;
	bool tls;
	const char *peer_ip;
	uint64_t conn_id;
};

/* ---- HTTP/1.1 (http1_session.c, on libhttp-parser) ---- */
struct http1_session;

/* NULL on allocation failure. The session enters HTTP_PHASE_HEAD at once
 * (a new connection gets the header timeout for its first request). */
struct http1_session *http1_session_new(const struct http_sess_cfg *cfg,
					const struct http_sess_ops *ops,
					void *io);
void http1_session_free(struct http1_session **s);
/* Feed received octets: the count consumed (less than @n while output
 * is congested; feed the rest after the driver's output drained). Once
 * http1_session_done() is true nothing more is read. */
size_t http1_session_input(struct http1_session *s, const uint8_t *p, size_t n);
/* The phase deadline passed: 408 mid-request, then done. */
void http1_session_timeout(struct http1_session *s);
/* The session is finished: close once the output is flushed. */
bool http1_session_done(const struct http1_session *s);
/* Requests answered (for the disconnect line). */
unsigned http1_session_requests(const struct http1_session *s);

/* ---- HTTP/2 (h2_server.c, on nghttp2) ---- */
struct h2_session;

/* Sends the server preface (SETTINGS) through ops->write at once. NULL on
 * failure. */
struct h2_session *h2_session_new(const struct http_sess_cfg *cfg,
				  const struct http_sess_ops *ops, void *io);
void h2_session_free(struct h2_session **s);
/* Feed received octets: the count consumed (see http1_session_input). */
size_t h2_session_input(struct h2_session *s, const uint8_t *p, size_t n);
/* Output drained: send what nghttp2 holds back. */
void h2_session_drained(struct h2_session *s);
/* The phase deadline passed: GOAWAY, then done. */
void h2_session_timeout(struct h2_session *s);
bool h2_session_done(const struct h2_session *s);
unsigned h2_session_requests(const struct h2_session *s);

/* ---- shared (http_req.c) ---- */
/* The bytes of @b, "" (never NULL) while it has no storage. */
static inline const uint8_t *http_buf_bytes(const struct buf *b)
{
	return b->data != NULL ? b->data + b->head : (const uint8_t *)"";
}

/* Clear @resp for the next handler call, body into @out (cleared). */
void http_resp_reset(struct http_resp *resp, struct buf *out);
/* The body @resp carries (its static body or its buffer). */
void http_resp_body(const struct http_resp *resp, const void **p_r,
		    size_t *len_r);
/* One access line: key=value, no client address. */
void http_access_log(const struct http_req *req, const struct http_resp *resp,
		     size_t body_len, uint64_t ms);
/* The IMF-fixdate of now into @out (cached per second, per thread). */
void http_date(char out[32]);

#endif
