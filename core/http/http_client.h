/* core/http/http_client: an HTTP client on a worker's loop for push and
 * federation (/mxdeliv). HTTP/2 over TLS (ALPN h2) with many concurrent
 * requests on one connection per origin (scheme, host, port), more
 * connections only when the server's SETTINGS_MAX_CONCURRENT_STREAMS is
 * reached; HTTP/1.1 keep-alive (one request at a time per connection)
 * when the server does not negotiate h2. TLS verifies the server against
 * the system store plus an optional trust file, and its name. DNS goes
 * through the loop's c-ares resolver. Retrying failed requests is the
 * caller's business (a stream the server refused unprocessed, RST
 * REFUSED_STREAM or past a GOAWAY, is re-sent once on a new connection).
 * One client per loop; loop-thread only. */
#ifndef RINGMAIL_CORE_HTTP_HTTP_CLIENT_H
#define RINGMAIL_CORE_HTTP_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/http/http_msg.h"
#include "core/tls.h"

struct loop;
struct dns_resolver;
struct http_client;

struct http_client_opts {
	/* Resolver for host names; NULL: only requests with a fixed
	 * address (or an IP literal host) can be made. */
	struct dns_resolver *dns;
	/* Extra trusted CA certificates (PEM) besides the system store
	 * ([ringmail] tls_trust_file); NULL or "" = system store only. */
	const char *trust_file;
	/* Offer only http/1.1 in ALPN (tests, servers with broken h2). */
	bool no_h2;
	enum tls_ktls_mode ktls;
	uint64_t connect_timeout_ms;   /* DNS+TCP+TLS per attempt; 0 = 10 s */
	uint64_t idle_timeout_ms;      /* idle connection closed; 0 = 60 s */
	unsigned max_conns_per_origin; /* 0 = 8 */
	unsigned max_queued;           /* requests not yet done; 0 = 65536 */
	uint32_t max_header_bytes;     /* response fields; 0 = 16 KiB */
	/* Concurrent streams we open per h2 connection at most, whatever
	 * the server allows; 0 = 1000. */
	unsigned max_streams;
};

/* One request. Everything is copied by http_client_request. */
struct http_client_req {
	const char *method; /* NULL = "POST" if a body is given, else "GET" */
	bool plain;         /* http:// (HTTP/1.1 only) instead of https:// */
	const char *host;   /* DNS name or IP literal: SNI, Host, verified */
	uint16_t port;      /* 0 = 443 (80 when plain) */
	const char *path;   /* "/notify"; NULL = "/" */
	/* Connect here instead of resolving @host (tests, an MX address
	 * already resolved); the port in it is used as given. */
	const struct sockaddr *addr;
	socklen_t addr_len;
	const struct http_field *fields; /* extra request fields */
	unsigned nfields;
	const void *body;
	size_t body_len;
	/* From submission to the whole response; 0 = 60 s. */
	uint64_t timeout_ms;
	size_t body_max; /* response body bound; 0 = 64 KiB */
	/* Accept any certificate (spec D.9 "_" domains). Such requests
	 * never share a connection with verified ones. */
	bool insecure;
};

struct http_client_resp {
	int status;                      /* 100..599 */
	const char *version;             /* "h2" or "http/1.1" */
	const struct http_field *fields; /* names lower-case */
	unsigned nfields;
	const uint8_t *body;
	size_t body_len;
	uint64_t conn_id; /* the connection it came over (logs, tests) */
};

/* @err is 0 with @resp set, or: -ETIMEDOUT (request deadline or connect
 * timeout), -ECONNREFUSED, -ECONNRESET (connection or stream lost before
 * the whole response), -EKEYREJECTED (certificate or name not verified),
 * -EPROTO (TLS or HTTP protocol error), -EMSGSIZE (response fields or
 * body over their bounds), -EHOSTUNREACH (no such host / no address),
 * -EAGAIN (DNS temporary failure), -ECANCELED (client freed: never
 * called back then). @reason says it for a log line ("" when ok). @resp
 * and @reason are valid during the call only. */
typedef void http_client_done_fn(int err, const struct http_client_resp *resp,
				 const char *reason, void *arg);

/* A client on @l; 0, -EINVAL (a bad trust file: logged) or -ENOMEM. */
int http_client_new(struct loop *l, const struct http_client_opts *opts,
		    struct http_client **cl_r);
/* Close every connection; pending requests end without callbacks. Not
 * from inside a done callback. Sets *@cl to NULL. */
void http_client_free(struct http_client **cl);

/* Start @req; @done runs exactly once, never from inside this call.
 * 0, -EINVAL (bad request), -ENOBUFS (max_queued reached), -ENOMEM. */
int http_client_request(struct http_client *cl,
			const struct http_client_req *req,
			http_client_done_fn *done, void *arg);

/* Split "https://host[:port][/path]" (or http://, "[v6]" hosts) into
 * @req's plain/host/port/path, pointing into @buf (a copy of @url).
 * 0 or -EINVAL. */
int http_client_parse_url(const char *url, char *buf, size_t buf_len,
			  struct http_client_req *req);

/* The first field @name (lower-case) of @resp, or NULL. */
const char *http_client_resp_field(const struct http_client_resp *resp,
				   const char *name);

struct http_client_stats {
	unsigned conns_open;       /* connected or connecting now */
	uint64_t conns_opened;     /* connection attempts in all */
	unsigned requests_live;    /* submitted and not yet done */
	uint64_t requests_done;    /* done callbacks, any outcome */
	uint64_t requests_retried; /* refused unprocessed, re-sent */
};
void http_client_get_stats(const struct http_client *cl,
			   struct http_client_stats *st);

#endif
