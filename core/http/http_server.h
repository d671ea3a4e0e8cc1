/* core/http/http_server: the HTTP server on the loop. One handler (the
 * site, www/) answers HTTP/1.1 and HTTP/2 alike; this module owns the
 * connections, the protocol table rows (port 80's listener, ALPN "h2",
 * "http/1.1" and none on 443), the per-phase deadlines and the
 * connection lines of the log. */
#ifndef RINGMAIL_CORE_HTTP_SERVER_H
#define RINGMAIL_CORE_HTTP_SERVER_H

#include <stdint.h>

#include "core/http/http_req.h"

struct loop;
struct proto;
struct http_server;
struct http_worker;

struct http_server_opts {
	const struct http_handler *handler; /* must outlive the server */
	uint64_t header_timeout_ms;    /* first byte -> end of head; 0: 10 s */
	uint64_t body_timeout_ms;      /* end of head -> end of body; 0: 30 s */
	uint64_t keepalive_timeout_ms; /* idle between requests; 0: 75 s */
	uint32_t head_max;             /* request line + fields; 0: 16 KiB */
	uint32_t target_max;           /* request target; 0: 8 KiB */
	uint32_t fields_max;           /* fields per request; 0: 64 */
	uint32_t streams_max;          /* concurrent h2 streams; 0: 100 */
};

/* Boot time. 0, -EINVAL (no handler) or -ENOMEM. */
int http_server_new(const struct http_server_opts *o,
		    struct http_server **srv_r);
void http_server_free(struct http_server **srv);
/* The server's state on one loop (its thread). NULL on failure. */
struct http_worker *http_worker_new(struct http_server *srv, struct loop *l);
/* After the loop closed every connection. */
void http_worker_free(struct http_worker **w);

/* The HTTP rows, "h2" first: listener "http" (80), ALPN "h2",
 * "http/1.1" and "" (none). 0 or proto_add's error. */
int http_server_proto_add(struct proto *p);
/* In a loop's copy of the table: those rows go to @w. */
void http_worker_proto_bind(struct proto *p, struct http_worker *w);

#endif
