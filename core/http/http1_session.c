/* core/http/http1_session: the HTTP/1.1 server session on Debian's
 * libhttp-parser (a resumable byte parser: requests may arrive whole, byte
 * by byte or split anywhere). Keep-alive, pipelining (answered in order,
 * paused while output is congested), chunked request bodies, Expect:
 * 100-continue. Every token is copied into the session's own buffers as
 * it arrives, so the input is consumed at once. Bounded: request target,
 * head octets, field count, body per route (the handler's body_max);
 * every refusal is a status and a close, never a hanging connection. */
#include "core/http/http_server_int.h"

/* system */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* third party */
#include <http_parser.h>

/* project */
#include "core/log.h"

#define HTTP1_FIELDS_HARD 128

struct http1_tok {
	uint32_t name_off, name_len, val_off, val_len;
};

enum http1_last {
	HTTP1_LAST_NONE,
	HTTP1_LAST_URL,
	HTTP1_LAST_FIELD,
	HTTP1_LAST_VALUE,
};

struct http1_session {
	struct http_sess_cfg cfg;
	const struct http_sess_ops *ops;
	void *io;
	http_parser parser;
	http_parser_settings settings;
	struct buf head; /* target and field tokens, NUL-terminated */
	struct buf body;
	struct buf out; /* the handler's dynamic body */
	struct buf hdr; /* response head */
	uint32_t url_off, url_len;
	struct http1_tok toks[HTTP1_FIELDS_HARD];
	struct http_field fields[HTTP1_FIELDS_HARD];
	unsigned n_toks;
	enum http1_last last;
	size_t body_max;
	int err_status; /* set by a callback that refused */
	bool in_message;
	bool complete;
	bool done;
	bool head_only; /* HEAD: no body in the response */
	uint64_t started_ms;
	unsigned requests;
};

static struct http1_session *http1_of(http_parser *p)
{
	return p->data;
}

/* Append a token piece; a new token starts after the previous one's
 * NUL. */
static int http1_tok_append(struct http1_session *s, enum http1_last kind,
			    const char *at, size_t n)
{
	bool fresh = s->last != kind;

	if (fresh && s->last != HTTP1_LAST_NONE &&
	    buf_append(&s->head, "", 1) < 0)
		goto too_big;
	if (fresh) {
		uint32_t off = s->head.len;

		switch (kind) {
		case HTTP1_LAST_URL:
			s->url_off = off;
			break;
		case HTTP1_LAST_FIELD:
			if (s->n_toks >= s->cfg.lim.fields_max ||
			    s->n_toks >= HTTP1_FIELDS_HARD)
				goto too_big;
			s->toks[s->n_toks].name_off = off;
			s->toks[s->n_toks].val_off = off;
			s->n_toks++;
			break;
		case HTTP1_LAST_VALUE:
			if (s->n_toks == 0)
				goto bad;
			s->toks[s->n_toks - 1].val_off = off;
			break;
		case HTTP1_LAST_NONE:
			break;
		}
		s->last = kind;
	}
	if (buf_append(&s->head, at, n) < 0)
		goto too_big;
	switch (kind) {
	case HTTP1_LAST_URL:
		s->url_len += (uint32_t)n;
		if (s->url_len > s->cfg.lim.target_max) {
			s->err_status = 414;
			return -1;
		}
		break;
	case HTTP1_LAST_FIELD:
		s->toks[s->n_toks - 1].name_len += (uint32_t)n;
		break;
	case HTTP1_LAST_VALUE:
		s->toks[s->n_toks - 1].val_len += (uint32_t)n;
		break;
	case HTTP1_LAST_NONE:
		break;
	}
	return 0;
too_big:
	s->err_status = kind == HTTP1_LAST_URL ? 414 : 431;
	return -1;
bad:
	s->err_status = 400;
	return -1;
}

/* The request as the handler sees it, from the tokens. */
static void http1_req_build(struct http1_session *s, struct http_req *req)
{
	char *base = (char *)buf_head(&s->head);
	const char *q;

	memset(req, 0, sizeof(*req));
	for (unsigned i = 0; i < s->n_toks; i++) {
		struct http1_tok *t = &s->toks[i];

		s->fields[i] = (struct http_field){
			base + t->name_off, t->name_len,
			t->val_len > 0 ? base + t->val_off : "", t->val_len};
	}
	req->fields = s->fields;
	req->n_fields = s->n_toks;
	req->method_name = http_method_str(s->parser.method);
	req->method = http_req_method_parse(req->method_name,
					    strlen(req->method_name));
	req->target = base + s->url_off;
	q = memchr(req->target, '?', s->url_len);
	req->path_len = q != NULL ? (size_t)(q - req->target) : s->url_len;
	req->version = s->parser.http_major == 1 && s->parser.http_minor == 0
			       ? 10
			       : 11;
	req->host = "";
	for (unsigned i = 0; i < s->n_toks; i++) {
		if (s->fields[i].name_len == 4 &&
		    strncasecmp(s->fields[i].name, "host", 4) == 0) {
			/* Lower case, port cut: in place (our copy). */
			char *h = (char *)s->fields[i].value;
			size_t n = s->fields[i].value_len, j;

			for (j = 0; j < n; j++) {
				if (h[j] >= 'A' && h[j] <= 'Z')
					h[j] = (char)(h[j] - 'A' + 'a');
			}
			req->host = h;
			break;
		}
	}
	req->body = http_buf_bytes(&s->body);
	req->body_len = s->body.len;
	req->tls = s->cfg.tls;
	req->peer_ip = s->cfg.peer_ip;
	req->conn_id = s->cfg.conn_id;
	req->now_ms = s->ops->now_ms != NULL ? s->ops->now_ms(s->io) : 0;
}

/* The host value may carry ":port"; cut it once the head is complete. */
static void http1_host_cut(struct http1_session *s)
{
	char *base = (char *)buf_head(&s->head);

	for (unsigned i = 0; i < s->n_toks; i++) {
		struct http1_tok *t = &s->toks[i];

		if (t->name_len == 4 &&
		    strncasecmp(base + t->name_off, "host", 4) == 0) {
			char *h = base + t->val_off;
			char *c = h[0] == '[' ? memchr(h, ']', t->val_len) : h;

			if (c != NULL)
				c = memchr(c, ':',
					   t->val_len - (size_t)(c - h));
			if (c != NULL) {
				t->val_len = (uint32_t)(c - h);
				*c = '\0';
			}
			return;
		}
	}
}

static int http1_on_begin(http_parser *p)
{
	struct http1_session *s = http1_of(p);

	s->in_message = true;
	if (s->ops->now_ms != NULL)
		s->started_ms = s->ops->now_ms(s->io);
	s->ops->phase(s->io, HTTP_PHASE_HEAD);
	return 0;
}

static int http1_on_url(http_parser *p, const char *at, size_t n)
{
	return http1_tok_append(http1_of(p), HTTP1_LAST_URL, at, n);
}

static int http1_on_field(http_parser *p, const char *at, size_t n)
{
	return http1_tok_append(http1_of(p), HTTP1_LAST_FIELD, at, n);
}

static int http1_on_value(http_parser *p, const char *at, size_t n)
{
	return http1_tok_append(http1_of(p), HTTP1_LAST_VALUE, at, n);
}

static int http1_write(struct http1_session *s, const void *p, size_t n)
{
	if (n > 0 && s->ops->write(s->io, p, n) < 0) {
		s->done = true;
		return -1;
	}
	return 0;
}

static int http1_on_headers(http_parser *p)
{
	struct http1_session *s = http1_of(p);
	struct http_req req;
	const char *expect;
	bool has_body =
		(p->flags & F_CHUNKED) != 0 ||
		(p->content_length > 0 && p->content_length != ULLONG_MAX);

	if (buf_append(&s->head, "", 1) < 0) {
		s->err_status = 431;
		return -1;
	}
	s->last = HTTP1_LAST_NONE;
	if (p->http_major != 1) {
		s->err_status = 505;
		return -1;
	}
	if (s->url_len == 0) {
		s->err_status = 400;
		return -1;
	}
	http1_host_cut(s);
	http1_req_build(s, &req);
	if (req.version == 11 && http_req_field(&req, "host") == NULL) {
		s->err_status = 400; /* RFC 9112 3.2 */
		return -1;
	}
	if (p->method == HTTP_CONNECT) {
		s->err_status = 405;
		return -1;
	}
	s->head_only = p->method == HTTP_HEAD;
	s->body_max =
		s->cfg.handler->body_max != NULL
			? s->cfg.handler->body_max(s->cfg.handler->arg, &req)
			: 0;
	if ((p->flags & F_CHUNKED) == 0 && p->content_length != ULLONG_MAX &&
	    p->content_length > s->body_max) {
		s->err_status = 413;
		return -1;
	}
	if ((p->flags & F_CHUNKED) != 0 && s->body_max == 0) {
		s->err_status = 413;
		return -1;
	}
	expect = http_req_field(&req, "expect");
	if (expect != NULL) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

		if (strcasecmp(expect, "100-continue") != 0) {
			s->err_status = 417;
			return -1;
		}
		if (has_body && req.version == 11 &&
		    http1_write(s, cont, sizeof(cont) - 1) < 0)
			return -1;
	}
	s->body.max = (uint32_t)(s->body_max > UINT32_MAX - 1 ? UINT32_MAX - 1
							      : s->body_max);
	if (has_body)
		s->ops->phase(s->io, HTTP_PHASE_BODY);
	return 0;
}

static int http1_on_body(http_parser *p, const char *at, size_t n)
{
	struct http1_session *s = http1_of(p);

	if (s->body.len + n > s->body_max || buf_append(&s->body, at, n) < 0) {
		s->err_status = 413;
		return -1;
	}
	return 0;
}

static int http1_on_complete(http_parser *p)
{
	struct http1_session *s = http1_of(p);

	s->complete = true;
	http_parser_pause(p, 1);
	return 0;
}

/* Queue the response: head, then body (none for HEAD, 1xx, 204, 304). */
static void http1_respond(struct http1_session *s, const struct http_req *req,
			  struct http_resp *resp, bool keep_alive)
{
	char date[32];
	const void *body;
	size_t blen;
	int r;

	http_resp_body(resp, &body, &blen);
	http_date(date);
	buf_clear(&s->hdr);
	r = buf_printf(&s->hdr, "HTTP/1.1 %d %s\r\nDate: %s\r\n", resp->status,
		       http_status_reason(resp->status), date);
	if (r == 0 && resp->content_type != NULL)
		r = buf_printf(&s->hdr, "Content-Type: %s\r\n",
			       resp->content_type);
	if (r == 0 && resp->status != 204 && resp->status != 304)
		r = buf_printf(&s->hdr, "Content-Length: %zu\r\n", blen);
	if (r == 0 && resp->content_encoding != NULL)
		r = buf_printf(&s->hdr, "Content-Encoding: %s\r\n",
			       resp->content_encoding);
	if (r == 0 && resp->vary_encoding)
		r = buf_printf(&s->hdr, "Vary: Accept-Encoding\r\n");
	for (unsigned i = 0; r == 0 && i < resp->n_fields; i++)
		r = buf_printf(
			&s->hdr, "%.*s: %.*s\r\n",
			(int)resp->fields[i].name_len, resp->fields[i].name,
			(int)resp->fields[i].value_len, resp->fields[i].value);
	if (r == 0 && !keep_alive)
		r = buf_printf(&s->hdr, "Connection: close\r\n");
	else if (r == 0 && req != NULL && req->version == 10)
		r = buf_printf(&s->hdr, "Connection: keep-alive\r\n");
	if (r == 0)
		r = buf_append(&s->hdr, "\r\n", 2);
	if (r < 0) {
		s->done = true;
		return;
	}
	if (http1_write(s, buf_head(&s->hdr), s->hdr.len) < 0)
		return;
	if (!s->head_only && resp->status != 204 && resp->status != 304)
		(void)http1_write(s, body, blen);
	if (req != NULL)
		http_access_log(req, resp, s->head_only ? 0 : blen,
				s->ops->now_ms != NULL
					? s->ops->now_ms(s->io) - s->started_ms
					: 0);
	s->requests++;
	if (!keep_alive)
		s->done = true;
}

static void http1_reset(struct http1_session *s)
{
	buf_clear(&s->head);
	/* A large body's storage is not kept for the next request. */
	if (s->body.cap > 65536)
		buf_free(&s->body);
	buf_clear(&s->body);
	buf_clear(&s->out);
	s->url_off = s->url_len = 0;
	s->n_toks = 0;
	memset(s->toks, 0, sizeof(s->toks));
	s->last = HTTP1_LAST_NONE;
	s->body_max = 0;
	s->err_status = 0;
	s->in_message = false;
	s->complete = false;
	s->head_only = false;
}

/* A refused request: the status, then close. */
static void http1_fail(struct http1_session *s, int status)
{
	struct http_resp resp;
	struct http_req req;
	bool have_req = s->url_len > 0 && s->head.len > 0;

	http_resp_reset(&resp, &s->out);
	http_resp_error(&resp, status);
	if (have_req) {
		/* What arrived of the request, for the access line. */
		if (buf_append(&s->head, "", 1) < 0)
			have_req = false;
	}
	if (have_req) {
		http1_req_build(s, &req);
		req.n_fields = 0;
		req.host = "";
	}
	resp.log_note = "refused";
	http1_respond(s, have_req ? &req : NULL, &resp, false);
	if (!have_req)
		log_conn(LOG_LV_INFO, s->cfg.conn_id,
			 "http request v=1.1 tls=%d status=%d note=refused",
			 s->cfg.tls ? 1 : 0, status);
	s->done = true;
}

static void http1_handle(struct http1_session *s)
{
	struct http_resp resp;
	struct http_req req;
	bool keep = http_should_keep_alive(&s->parser) && !s->parser.upgrade;

	if (buf_append(&s->head, "", 1) < 0) {
		http1_fail(s, 431);
		return;
	}
	http1_req_build(s, &req);
	http_resp_reset(&resp, &s->out);
	s->cfg.handler->handle(s->cfg.handler->arg, &req, &resp);
	http1_respond(s, &req, &resp, keep && !resp.close);
}

static int http1_status_of(struct http1_session *s, enum http_errno e)
{
	if (s->err_status != 0)
		return s->err_status;
	switch (e) {
	case HPE_HEADER_OVERFLOW:
		return 431;
	case HPE_INVALID_VERSION:
		return 505;
	case HPE_INVALID_METHOD:
		return 501;
	default:
		return 400;
	}
}

size_t http1_session_input(struct http1_session *s, const uint8_t *p, size_t n)
{
	size_t used = 0;

	while (!s->done && used < n) {
		size_t k;
		enum http_errno e;

		if (s->ops->pending(s->io) > HTTP_OUT_HIGH)
			break; /* resumed when the output drained */
		k = http_parser_execute(&s->parser, &s->settings,
					(const char *)p + used, n - used);
		used += k;
		e = HTTP_PARSER_ERRNO(&s->parser);
		if (e == HPE_PAUSED && s->complete) {
			http1_handle(s);
			if (s->parser.upgrade)
				s->done = true;
			http1_reset(s);
			http_parser_pause(&s->parser, 0);
			if (!s->done)
				s->ops->phase(s->io, HTTP_PHASE_IDLE);
			continue;
		}
		if (e != HPE_OK) {
			http1_fail(s, http1_status_of(s, e));
			break;
		}
		if (k == 0)
			break;
	}
	/* A finished session reads no more: the rest is dropped. */
	return s->done ? n : used;
}

void http1_session_timeout(struct http1_session *s)
{
	if (s->done)
		return;
	if (s->in_message) {
		http1_fail(s, 408);
		return;
	}
	s->done = true; /* idle keep-alive connection: close quietly */
}

bool http1_session_done(const struct http1_session *s)
{
	return s->done;
}

unsigned http1_session_requests(const struct http1_session *s)
{
	return s->requests;
}

struct http1_session *http1_session_new(const struct http_sess_cfg *cfg,
					const struct http_sess_ops *ops,
					void *io)
{
	struct http1_session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->cfg = *cfg;
	s->ops = ops;
	s->io = io;
	/* +1 per token for its NUL. */
	buf_init(&s->head, cfg->lim.head_max + cfg->lim.fields_max * 2 + 2);
	buf_init(&s->body, 0);
	buf_init(&s->out, 1u << 20);
	buf_init(&s->hdr, 8192);
	s->body.max = 1; /* set per request */
	http_parser_init(&s->parser, HTTP_REQUEST);
	s->parser.data = s;
	http_parser_settings_init(&s->settings);
	s->settings.on_message_begin = http1_on_begin;
	s->settings.on_url = http1_on_url;
	s->settings.on_header_field = http1_on_field;
	s->settings.on_header_value = http1_on_value;
	s->settings.on_headers_complete = http1_on_headers;
	s->settings.on_body = http1_on_body;
	s->settings.on_message_complete = http1_on_complete;
	ops->phase(io, HTTP_PHASE_HEAD);
	return s;
}

void http1_session_free(struct http1_session **sp)
{
	struct http1_session *s = *sp;

	if (s == NULL)
		return;
	buf_free(&s->head);
	buf_free(&s->body);
	buf_free(&s->out);
	buf_free(&s->hdr);
	free(s);
	*sp = NULL;
}
