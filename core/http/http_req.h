/* core/http/http_req: the one request/response interface of the HTTP
 * server. HTTP/1.1 and HTTP/2 sessions both build a struct http_req and
 * ask the same struct http_handler for a struct http_resp, so a handler
 * never knows which version it serves. Handlers run on the loop thread,
 * must not block and answer at once (synchronously). */
#ifndef RINGMAIL_CORE_HTTP_REQ_H
#define RINGMAIL_CORE_HTTP_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/http/http_msg.h"

enum http_req_method {
	HTTP_M_OTHER = 0,
	HTTP_M_GET,
	HTTP_M_HEAD,
	HTTP_M_POST,
	HTTP_M_PUT,
	HTTP_M_DELETE,
	HTTP_M_OPTIONS,
};

/* A complete request. Every pointer stays valid during the handler call
 * only. Strings are NUL-terminated. */
struct http_req {
	enum http_req_method method;
	const char *method_name; /* as sent ("GET") */
	const char *target;      /* request target as sent ("/new?x") */
	size_t path_len;         /* target[0 .. path_len) is the path */
	const char *host;        /* Host / :authority, lower case, no port */
	const struct http_field *fields; /* regular header fields, in order */
	unsigned n_fields;
	const uint8_t *body;
	size_t body_len;
	int version;         /* 10, 11 or 20 */
	bool tls;            /* came over TLS (443) rather than port 80 */
	const char *peer_ip; /* numeric, for the limiter; never stored */
	uint64_t conn_id;
	uint64_t now_ms; /* the loop's monotonic clock */
};

#define HTTP_RESP_FIELDS_MAX 6

/* What the handler fills in. The session sets status 500 and clears the
 * rest before the call. */
struct http_resp {
	int status;
	const char *content_type;     /* NULL: no Content-Type */
	const char *content_encoding; /* "gzip" or NULL */
	/* The body: @body/@body_len when @body is not NULL (it must outlive
	 * the server: static or rendered at start-up), else what the
	 * handler appended to @out (the session's per-request buffer). */
	const void *body;
	size_t body_len;
	struct buf *out;
	struct http_field fields[HTTP_RESP_FIELDS_MAX]; /* extra: Location */
	unsigned n_fields;
	bool vary_encoding;   /* "Vary: Accept-Encoding" */
	bool close;           /* close the connection after it (HTTP/1.1) */
	const char *log_note; /* a word for the access line, or NULL */
	char scratch[1024];   /* room for field values the handler makes */
};

struct http_handler {
	/* After the head: the largest body @req may carry (0: none). A
	 * larger Content-Length or body gets 413 without a handle call. */
	size_t (*body_max)(void *arg, const struct http_req *req);
	/* Answer the complete request @req in @resp. */
	void (*handle)(void *arg, const struct http_req *req,
		       struct http_resp *resp);
	void *arg;
};

/* The value of header @name (case-insensitive), first occurrence; NULL
 * when absent. */
const char *http_req_field(const struct http_req *r, const char *name);
/* Does @req accept @coding ("gzip") by its Accept-Encoding (q=0 refuses)? */
bool http_req_accepts(const struct http_req *r, const char *coding);
/* Method from its name; HTTP_M_OTHER for anything else. */
enum http_req_method http_req_method_parse(const char *s, size_t n);
/* The reason phrase of @status ("Not Found"); "Unknown" if not listed. */
const char *http_status_reason(int status);
/* Add an extra response field (copied pointers, must outlive the
 * response); false when full. */
bool http_resp_field(struct http_resp *resp, const char *name,
		     const char *value);
/* A short text/plain response for an error @status ("not found\n"). */
void http_resp_error(struct http_resp *resp, int status);
/* Set a simple text response: @status with a short text/plain body. */
void http_resp_text(struct http_resp *resp, int status, const char *text);

#endif
