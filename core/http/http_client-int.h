/* core/http/http_client-int: what the client's parts share: the bounded
 * response accumulator, the HTTP/2 glue (h2_client.c: nghttp2 over byte
 * callbacks, no I/O) and the HTTP/1.1 request writer and response reader
 * (http_client_h1.c: pure). Both are transport-blind so the fuzzers and
 * unit tests feed them server bytes directly. */
#ifndef RINGMAIL_CORE_HTTP_HTTP_CLIENT_INT_H
#define RINGMAIL_CORE_HTTP_HTTP_CLIENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/http/http_client.h"
#include "core/http/http_msg.h"

#define HC_FIELDS_MAX 100 /* response fields kept; more: -EMSGSIZE */

/* ---- response accumulator (http_client_resp.c) ---- */

struct hc_resp {
	int status;
	unsigned nfields;
	uint32_t hdr_bytes, hdr_max;
	struct buf fields; /* "name\0value\0" per field, names lower-case */
	struct buf body;
};

void hc_resp_init(struct hc_resp *r, uint32_t hdr_max, size_t body_max);
void hc_resp_free(struct hc_resp *r);
/* Forget status and fields (an HTTP/1.1 1xx response was skipped). */
void hc_resp_reset(struct hc_resp *r);
/* Count @nlen + @vlen against the field bytes without keeping the field
 * (trailers). 0 or -EMSGSIZE. */
int hc_resp_count(struct hc_resp *r, size_t nlen, size_t vlen);
/* Keep one field (name lower-cased). 0 or -EMSGSIZE (bytes or count). */
int hc_resp_field(struct hc_resp *r, const uint8_t *name, size_t nlen,
		  const uint8_t *value, size_t vlen);
/* Append body bytes. 0 or -EMSGSIZE. */
int hc_resp_data(struct hc_resp *r, const uint8_t *data, size_t len);
/* The caller's view of @r; @fields has room for HC_FIELDS_MAX. */
void hc_resp_view(const struct hc_resp *r, struct http_field *fields,
		  struct http_client_resp *out);

/* ---- HTTP/2 glue (h2_client.c) ---- */

struct h2c;

/* One request stream; the caller embeds it and keeps it (and @body)
 * alive until stream_done or h2c_cancel. */
struct h2c_stream {
	struct h2c_stream *next, *prev; /* the session's open streams */
	struct hc_resp *resp;
	const uint8_t *body;
	size_t body_len, body_off;
	int32_t id;
	int err;           /* a bound hit while receiving */
	bool final_status; /* a non-1xx :status came */
	bool end_seen;     /* END_STREAM received */
	bool hdrs_sent;    /* our HEADERS frame went out */
	bool not_sent;     /* nghttp2 gave up sending it */
};

struct h2c_req {
	const char *method, *scheme, *authority, *path;
	const struct http_field *fields;
	unsigned nfields;
};

struct h2c_ops {
	/* Bytes for the wire, in order; 0 or -errno (the session is then
	 * dead: the caller closes the connection). */
	int (*send)(void *arg, const uint8_t *data, size_t len);
	/* May more be written now? (output backpressure) */
	bool (*can_send)(void *arg);
	/* @s ended: @err 0 with the whole response in s->resp, else
	 * -errno with @reason; @refused: the server never processed it,
	 * so it may be sent again. @s is no longer the session's. */
	void (*stream_done)(void *arg, struct h2c_stream *s, int err,
			    bool refused, const char *reason);
};

/* A client session; its preface and SETTINGS go out with the first
 * h2c_flush. @max_streams caps our concurrent streams, @hdr_max is
 * advertised as SETTINGS_MAX_HEADER_LIST_SIZE. 0 or -ENOMEM. */
int h2c_new(const struct h2c_ops *ops, void *arg, unsigned max_streams,
	    uint32_t hdr_max, struct h2c **h_r);
/* Free without any callback (the caller ends its streams). */
void h2c_free(struct h2c **h);
/* Server bytes. 0, or -EPROTO with the session dead (h2c_reason). */
int h2c_feed(struct h2c *h, const uint8_t *data, size_t len);
/* Hand pending frames to ops->send while ops->can_send. 0 or -errno. */
int h2c_flush(struct h2c *h);
/* Open a stream for @r with @s (resp, body set by the caller). Returns
 * the stream id (> 0) or -errno. Sent with the next h2c_flush. */
int32_t h2c_submit(struct h2c *h, struct h2c_stream *s,
		   const struct h2c_req *r);
/* Reset @s (RST_STREAM CANCEL); no stream_done for it. */
void h2c_cancel(struct h2c *h, struct h2c_stream *s);
/* End every open stream with @err (connection lost): stream_done for
 * each, refused when its HEADERS never went out. */
void h2c_abort(struct h2c *h, int err, const char *reason);
/* Start a graceful close: GOAWAY(NO_ERROR), no new streams. */
void h2c_goaway(struct h2c *h);
/* Can one more stream be opened now? (Before the server's first
 * SETTINGS only one stream is opened.) */
bool h2c_can_submit(const struct h2c *h);
/* Open streams, and whether the session is still usable at all (no
 * fatal error, not both sides done). */
unsigned h2c_open_streams(const struct h2c *h);
bool h2c_alive(const struct h2c *h);
bool h2c_going_away(const struct h2c *h);
/* Has the server's first SETTINGS frame come? */
bool h2c_settings_known(const struct h2c *h);
/* Why the session died ("" when alive). */
const char *h2c_reason(const struct h2c *h);

/* ---- HTTP/1.1 (http_client_h1.c) ---- */

enum hc_h1_state {
	HC_H1_STATUS = 0,
	HC_H1_FIELDS,
	HC_H1_BODY_LEN,
	HC_H1_BODY_EOF,
	HC_H1_CHUNK_SIZE,
	HC_H1_CHUNK_DATA,
	HC_H1_CHUNK_END,
	HC_H1_TRAILERS,
	HC_H1_DONE,
};

#define HC_H1_AGAIN 0
#define HC_H1_OK    1

struct hc_h1 {
	enum hc_h1_state st;
	struct hc_resp *resp;
	uint64_t remaining; /* body or chunk bytes still to come */
	bool head;          /* the request was HEAD: no body */
	bool keep_alive;    /* the connection may carry another request */
	bool have_len, chunked, te;
	char err[96];
};

/* Start reading the response to one request into @resp. */
void hc_h1_init(struct hc_h1 *p, struct hc_resp *resp, bool head);
/* Parse server bytes; *@used_r of them consumed (an incomplete line is
 * left for the next call). HC_H1_AGAIN, HC_H1_OK (response complete;
 * bytes after it are not consumed), -EPROTO or -EMSGSIZE (p->err). */
int hc_h1_parse(struct hc_h1 *p, const uint8_t *data, size_t len,
		size_t *used_r);
/* The server closed: HC_H1_OK when that ends a body read until close,
 * else -ECONNRESET. */
int hc_h1_eof(struct hc_h1 *p);
/* Append one request's head to @out: request line, Host, Content-Length
 * (when @body_len or a body method), @fields. 0 or -errno. */
int hc_h1_write_head(struct buf *out, const char *method, const char *host,
		     const char *path, const struct http_field *fields,
		     unsigned nfields, size_t body_len, bool has_body);

#endif
