/* core/http/h2_server: the HTTP/2 server session on nghttp2
 * (nghttp2_session_mem_recv/mem_send, so it never sees a socket). Each
 * stream collects its head and body within the same limits as HTTP/1.1,
 * then the shared handler answers it; nghttp2 validates the framing and
 * the pseudo-header fields. Concurrent streams are capped (advertised in
 * SETTINGS and enforced), output is paused while the transport holds
 * HTTP_OUT_HIGH octets, and a connection whose streams stall past the
 * deadline gets a GOAWAY. */
#include "core/http/http_server_int.h"

/* system */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* third party */
#include <nghttp2/nghttp2.h>

/* project */
#include "core/log.h"

#define H2_FIELDS_HARD 128
#define H2_NV_MAX      (HTTP_RESP_FIELDS_MAX + 8)

struct h2_tok {
	uint32_t name_off, name_len, val_off, val_len;
};

struct h2_stream {
	struct h2_session *s;
	int32_t id;
	struct buf head; /* name NUL value NUL ... */
	struct h2_tok toks[H2_FIELDS_HARD];
	struct http_field fields[H2_FIELDS_HARD];
	unsigned n_toks;
	int method_tok, path_tok, authority_tok; /* -1: none */
	struct buf body;
	size_t body_max;
	struct buf out;    /* the handler's dynamic body */
	const uint8_t *rb; /* response body being sent */
	size_t rb_len, rb_off;
	uint64_t started_ms;
	bool incomplete;   /* head or body still arriving */
	bool head_pending; /* the head still arriving */
	bool answered;
	int refuse; /* a limit the head broke: the status to answer */
	struct h2_stream *prev, *next;
};

struct h2_session {
	struct http_sess_cfg cfg;
	const struct http_sess_ops *ops;
	void *io;
	nghttp2_session *ng;
	struct h2_stream *streams;
	unsigned n_streams, n_incomplete, n_head_pending;
	enum http_phase phase;
	unsigned requests;
	bool got_frame; /* the preface and a first frame arrived */
	bool done;
};

static void h2_stream_free(struct h2_stream *st)
{
	buf_free(&st->head);
	buf_free(&st->body);
	buf_free(&st->out);
	free(st);
}

static void h2_set_head_pending(struct h2_stream *st, bool v)
{
	if (st->head_pending == v)
		return;
	st->head_pending = v;
	if (v)
		st->s->n_head_pending++;
	else
		st->s->n_head_pending--;
}

static void h2_set_incomplete(struct h2_stream *st, bool v)
{
	if (!v)
		h2_set_head_pending(st, false);
	if (st->incomplete == v)
		return;
	st->incomplete = v;
	if (v)
		st->s->n_incomplete++;
	else
		st->s->n_incomplete--;
}

/* The deadline follows the streams: while a head is arriving, the header
 * timeout; then while a body is, the body timeout; with neither, the
 * keep-alive one. Each is armed when the connection enters it. Before
 * the first frames the header timeout runs (the preface). */
static void h2_phase_update(struct h2_session *s, bool preface_seen)
{
	enum http_phase want = s->n_head_pending > 0 ? HTTP_PHASE_HEAD
			       : s->n_incomplete > 0 ? HTTP_PHASE_BODY
						     : HTTP_PHASE_IDLE;

	if (!preface_seen)
		return;
	if (want != s->phase) {
		s->phase = want;
		s->ops->phase(s->io, want);
	}
}

static ssize_t h2_read_body(nghttp2_session *ng, int32_t id, uint8_t *buf,
			    size_t len, uint32_t *flags,
			    nghttp2_data_source *src, void *user)
{
	struct h2_stream *st = src->ptr;
	size_t n = st->rb_len - st->rb_off;

	(void)ng;
	(void)id;
	(void)user;
	if (n > len)
		n = len;
	if (n > 0)
		memcpy(buf, st->rb + st->rb_off, n);
	st->rb_off += n;
	if (st->rb_off == st->rb_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static nghttp2_nv h2_nv(const char *name, const char *value, size_t vlen)
{
	return (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, strlen(name),
			    vlen, NGHTTP2_NV_FLAG_NONE};
}

/* Submit @resp on @st (nghttp2 copies the fields; the body stays with
 * the stream or is static). */
static void h2_submit(struct h2_stream *st, const struct http_req *req,
		      struct http_resp *resp, bool head_only)
{
	struct h2_session *s = st->s;
	nghttp2_nv nv[H2_NV_MAX];
	nghttp2_data_provider dp = {.source.ptr = st,
				    .read_callback = h2_read_body};
	char status[8], clen[24], date[32];
	char lower[HTTP_RESP_FIELDS_MAX][40];
	const void *body;
	size_t blen, n = 0;

	http_resp_body(resp, &body, &blen);
	snprintf(status, sizeof(status), "%d", resp->status);
	snprintf(clen, sizeof(clen), "%zu", blen);
	http_date(date);
	nv[n++] = h2_nv(":status", status, strlen(status));
	nv[n++] = h2_nv("date", date, strlen(date));
	if (resp->content_type != NULL)
		nv[n++] = h2_nv("content-type", resp->content_type,
				strlen(resp->content_type));
	if (resp->status != 204 && resp->status != 304)
		nv[n++] = h2_nv("content-length", clen, strlen(clen));
	if (resp->content_encoding != NULL)
		nv[n++] = h2_nv("content-encoding", resp->content_encoding,
				strlen(resp->content_encoding));
	if (resp->vary_encoding)
		nv[n++] = h2_nv("vary", "Accept-Encoding", 15);
	for (unsigned i = 0; i < resp->n_fields && n < H2_NV_MAX; i++) {
		/* HTTP/2 field names are lower case (nghttp2 refuses
		 * others): fold a copy. */
		char *lc = lower[i];
		size_t k = resp->fields[i].name_len;

		if (k >= sizeof(lower[i]))
			k = sizeof(lower[i]) - 1;
		for (size_t j = 0; j < k; j++) {
			char ch = resp->fields[i].name[j];

			lc[j] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
		}
		nv[n] = (nghttp2_nv){
			(uint8_t *)lc, (uint8_t *)resp->fields[i].value, k,
			resp->fields[i].value_len, NGHTTP2_NV_FLAG_NONE};
		n++;
	}
	st->rb = body;
	st->rb_len = blen;
	st->rb_off = 0;
	st->answered = true;
	if (nghttp2_submit_response(s->ng, st->id, nv, n,
				    head_only || blen == 0 ? NULL : &dp) != 0)
		(void)nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE,
						st->id, NGHTTP2_INTERNAL_ERROR);
	s->requests++;
	if (req != NULL)
		http_access_log(req, resp, head_only ? 0 : blen,
				s->ops->now_ms != NULL
					? s->ops->now_ms(s->io) - st->started_ms
					: 0);
}

static void h2_req_build(struct h2_stream *st, struct http_req *req)
{
	char *base = (char *)buf_head(&st->head);
	unsigned nf = 0;

	memset(req, 0, sizeof(*req));
	for (unsigned i = 0; i < st->n_toks; i++) {
		struct h2_tok *t = &st->toks[i];

		if (base[t->name_off] == ':')
			continue;
		st->fields[nf++] =
			(struct http_field){base + t->name_off, t->name_len,
					    base + t->val_off, t->val_len};
	}
	req->fields = st->fields;
	req->n_fields = nf;
	req->method_name = st->method_tok >= 0
				   ? base + st->toks[st->method_tok].val_off
				   : "";
	req->method = http_req_method_parse(req->method_name,
					    strlen(req->method_name));
	req->target =
		st->path_tok >= 0 ? base + st->toks[st->path_tok].val_off : "";
	req->path_len = strcspn(req->target, "?");
	req->host = st->authority_tok >= 0
			    ? base + st->toks[st->authority_tok].val_off
			    : "";
	req->body = http_buf_bytes(&st->body);
	req->body_len = st->body.len;
	req->version = 20;
	req->tls = st->s->cfg.tls;
	req->peer_ip = st->s->cfg.peer_ip;
	req->conn_id = st->s->cfg.conn_id;
	req->now_ms =
		st->s->ops->now_ms != NULL ? st->s->ops->now_ms(st->s->io) : 0;
}

/* Refuse @st with @status before its handler (limits). */
static void h2_refuse(struct h2_stream *st, int status)
{
	struct http_resp resp;
	struct http_req req;

	h2_set_incomplete(st, false);
	http_resp_reset(&resp, &st->out);
	http_resp_error(&resp, status);
	resp.log_note = "refused";
	if (buf_append(&st->head, "", 1) == 0) {
		h2_req_build(st, &req);
		req.n_fields = 0;
		h2_submit(st, &req, &resp, false);
	} else {
		h2_submit(st, NULL, &resp, false);
	}
}

static void h2_handle(struct h2_stream *st)
{
	struct http_resp resp;
	struct http_req req;
	const struct http_handler *h = st->s->cfg.handler;

	h2_set_incomplete(st, false);
	h2_req_build(st, &req);
	http_resp_reset(&resp, &st->out);
	h->handle(h->arg, &req, &resp);
	h2_submit(st, &req, &resp, req.method == HTTP_M_HEAD);
}

/* The head is complete: the route's body limit. 0, or refused. */
static int h2_head_done(struct h2_stream *st, bool end_stream)
{
	const struct http_handler *h = st->s->cfg.handler;
	struct http_req req;
	const char *cl;
	char *host;

	if (st->path_tok < 0 || st->method_tok < 0) {
		h2_refuse(st, 400);
		return -1;
	}
	/* :authority (or Host): lower case, port cut, in our copy. */
	if (st->authority_tok < 0) {
		for (unsigned i = 0; i < st->n_toks; i++) {
			if (strcmp((char *)buf_head(&st->head) +
					   st->toks[i].name_off,
				   "host") == 0)
				st->authority_tok = (int)i;
		}
	}
	if (st->authority_tok >= 0) {
		char *c;

		host = (char *)buf_head(&st->head) +
		       st->toks[st->authority_tok].val_off;
		for (c = host; *c != '\0'; c++) {
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c + 32);
		}
		c = host[0] == '[' ? strchr(host, ']') : host;
		if (c != NULL && (c = strchr(c, ':')) != NULL)
			*c = '\0';
	}
	h2_req_build(st, &req);
	if (req.method_name[0] == '\0' ||
	    strcmp(req.method_name, "CONNECT") == 0) {
		h2_refuse(st, 405);
		return -1;
	}
	if (strlen(req.target) > st->s->cfg.lim.target_max) {
		h2_refuse(st, 414);
		return -1;
	}
	st->body_max = h->body_max != NULL ? h->body_max(h->arg, &req) : 0;
	cl = http_req_field(&req, "content-length");
	if (cl != NULL && strtoull(cl, NULL, 10) > st->body_max) {
		h2_refuse(st, 413);
		return -1;
	}
	if (end_stream)
		h2_handle(st);
	return 0;
}

static struct h2_stream *h2_stream_of(nghttp2_session *ng, int32_t id)
{
	return nghttp2_session_get_stream_user_data(ng, id);
}

static int h2_on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f,
			       void *user)
{
	struct h2_session *s = user;
	struct h2_stream *st;

	if (f->hd.type != NGHTTP2_HEADERS ||
	    f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if (s->n_streams >= s->cfg.lim.streams_max) {
		(void)nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE,
						f->hd.stream_id,
						NGHTTP2_REFUSED_STREAM);
		return 0;
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	st->s = s;
	st->id = f->hd.stream_id;
	st->method_tok = st->path_tok = st->authority_tok = -1;
	buf_init(&st->head, s->cfg.lim.head_max + 2 * H2_FIELDS_HARD);
	buf_init(&st->body, 0);
	buf_init(&st->out, 1u << 20);
	st->started_ms = s->ops->now_ms != NULL ? s->ops->now_ms(s->io) : 0;
	st->next = s->streams;
	if (s->streams != NULL)
		s->streams->prev = st;
	s->streams = st;
	s->n_streams++;
	h2_set_incomplete(st, true);
	h2_set_head_pending(st, true);
	nghttp2_session_set_stream_user_data(ng, st->id, st);
	return 0;
}

static int h2_on_header(nghttp2_session *ng, const nghttp2_frame *f,
			const uint8_t *name, size_t nlen, const uint8_t *value,
			size_t vlen, uint8_t flags, void *user)
{
	struct h2_stream *st = h2_stream_of(ng, f->hd.stream_id);
	struct h2_tok *t;
	uint32_t off;

	(void)flags;
	(void)user;
	if (st == NULL || st->answered || st->refuse != 0 || !st->head_pending)
		return 0;
	/* Answered when the head is complete (HEADERS + CONTINUATION). */
	if (st->n_toks >= st->s->cfg.lim.fields_max + 4 ||
	    st->n_toks >= H2_FIELDS_HARD ||
	    st->head.len + nlen + vlen >= st->s->cfg.lim.head_max) {
		st->refuse = 431;
		return 0;
	}
	off = st->head.len;
	if (buf_append(&st->head, name, nlen) < 0 ||
	    buf_append(&st->head, "", 1) < 0 ||
	    buf_append(&st->head, value, vlen) < 0 ||
	    buf_append(&st->head, "", 1) < 0) {
		st->refuse = 431;
		return 0;
	}
	t = &st->toks[st->n_toks];
	*t = (struct h2_tok){off, (uint32_t)nlen, off + (uint32_t)nlen + 1,
			     (uint32_t)vlen};
	if (nlen == 7 && memcmp(name, ":method", 7) == 0)
		st->method_tok = (int)st->n_toks;
	else if (nlen == 5 && memcmp(name, ":path", 5) == 0)
		st->path_tok = (int)st->n_toks;
	else if (nlen == 10 && memcmp(name, ":authority", 10) == 0)
		st->authority_tok = (int)st->n_toks;
	st->n_toks++;
	return 0;
}

static int h2_on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f,
			    void *user)
{
	struct h2_stream *st;
	bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

	((struct h2_session *)user)->got_frame = true;
	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	st = h2_stream_of(ng, f->hd.stream_id);
	if (st == NULL || st->answered)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS &&
	    f->headers.cat == NGHTTP2_HCAT_REQUEST) {
		h2_set_head_pending(st, false);
		if (st->refuse != 0)
			h2_refuse(st, st->refuse);
		else
			(void)h2_head_done(st, end);
		return 0;
	}
	if (end)
		h2_handle(st); /* DATA, or trailers, ending the request */
	return 0;
}

static int h2_on_data(nghttp2_session *ng, uint8_t flags, int32_t id,
		      const uint8_t *data, size_t len, void *user)
{
	struct h2_stream *st = h2_stream_of(ng, id);

	(void)flags;
	(void)user;
	if (st == NULL || st->answered)
		return 0;
	if (st->body.len + len > st->body_max ||
	    buf_append(&st->body, data, len) < 0)
		h2_refuse(st, 413);
	return 0;
}

static int h2_on_close(nghttp2_session *ng, int32_t id, uint32_t code,
		       void *user)
{
	struct h2_session *s = user;
	struct h2_stream *st = h2_stream_of(ng, id);

	(void)code;
	if (st == NULL)
		return 0;
	nghttp2_session_set_stream_user_data(ng, id, NULL);
	h2_set_incomplete(st, false);
	if (st->prev != NULL)
		st->prev->next = st->next;
	else
		s->streams = st->next;
	if (st->next != NULL)
		st->next->prev = st->prev;
	s->n_streams--;
	h2_stream_free(st);
	return 0;
}

/* Hand nghttp2's pending frames to the transport (paused while it is
 * congested; resumed by h2_session_drained). */
static void h2_flush(struct h2_session *s)
{
	while (!s->done && s->ops->pending(s->io) <= HTTP_OUT_HIGH) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(s->ng, &data);

		if (n < 0) {
			log_conn(LOG_LV_INFO, s->cfg.conn_id,
				 "http h2 error=\"%s\"",
				 nghttp2_strerror((int)n));
			s->done = true;
			break;
		}
		if (n == 0)
			break;
		if (s->ops->write(s->io, data, (size_t)n) < 0)
			s->done = true;
	}
	if (!s->done && !nghttp2_session_want_read(s->ng) &&
	    !nghttp2_session_want_write(s->ng))
		s->done = true;
}

size_t h2_session_input(struct h2_session *s, const uint8_t *p, size_t n)
{
	ssize_t r;

	if (s->done)
		return n;
	if (s->ops->pending(s->io) > HTTP_OUT_HIGH)
		return 0; /* resumed when the output drained */
	r = nghttp2_session_mem_recv(s->ng, p, n);
	if (r < 0) {
		log_conn(LOG_LV_INFO, s->cfg.conn_id, "http h2 error=\"%s\"",
			 nghttp2_strerror((int)r));
		/* A bad preface or framing: nghttp2 queued a GOAWAY where
		 * it could; send it and end. */
		if (r != NGHTTP2_ERR_NOMEM)
			(void)nghttp2_session_terminate_session(
				s->ng, NGHTTP2_PROTOCOL_ERROR);
		h2_flush(s);
		s->done = true;
		return n;
	}
	h2_phase_update(s, s->got_frame);
	h2_flush(s);
	return (size_t)r;
}

void h2_session_drained(struct h2_session *s)
{
	h2_flush(s);
}

void h2_session_timeout(struct h2_session *s)
{
	if (s->done)
		return;
	log_conn(LOG_LV_INFO, s->cfg.conn_id,
		 "http h2 timeout streams=%u incomplete=%u", s->n_streams,
		 s->n_incomplete);
	(void)nghttp2_session_terminate_session(s->ng, NGHTTP2_NO_ERROR);
	h2_flush(s);
	s->done = true;
}

bool h2_session_done(const struct h2_session *s)
{
	return s->done;
}

unsigned h2_session_requests(const struct h2_session *s)
{
	return s->requests;
}

struct h2_session *h2_session_new(const struct http_sess_cfg *cfg,
				  const struct http_sess_ops *ops, void *io)
{
	struct h2_session *s = calloc(1, sizeof(*s));
	nghttp2_session_callbacks *cb = NULL;
	nghttp2_option *opt = NULL;
	nghttp2_settings_entry iv[] = {
		{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg->lim.streams_max},
		{NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, cfg->lim.head_max},
	};

	if (s == NULL)
		return NULL;
	s->cfg = *cfg;
	s->ops = ops;
	s->io = io;
	if (nghttp2_session_callbacks_new(&cb) != 0 ||
	    nghttp2_option_new(&opt) != 0)
		goto fail;
	nghttp2_session_callbacks_set_on_begin_headers_callback(
		cb, h2_on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, h2_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb,
							     h2_on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb,
								  h2_on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2_on_close);
	/* Refuse streams past the limit even before the peer acked our
	 * SETTINGS. */
	nghttp2_option_set_max_reserved_remote_streams(opt, 0);
	if (nghttp2_session_server_new2(&s->ng, cb, s, opt) != 0)
		goto fail;
	nghttp2_session_callbacks_del(cb);
	nghttp2_option_del(opt);
	cb = NULL;
	opt = NULL;
	if (nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv,
				    sizeof(iv) / sizeof(iv[0])) != 0)
		goto fail;
	s->phase = HTTP_PHASE_HEAD;
	ops->phase(io, HTTP_PHASE_HEAD);
	h2_flush(s);
	return s;
fail:
	nghttp2_session_callbacks_del(cb);
	nghttp2_option_del(opt);
	if (s->ng != NULL)
		nghttp2_session_del(s->ng);
	free(s);
	return NULL;
}

void h2_session_free(struct h2_session **sp)
{
	struct h2_session *s = *sp;

	if (s == NULL)
		return;
	nghttp2_session_del(s->ng); /* closes streams: h2_on_close frees */
	while (s->streams != NULL) {
		struct h2_stream *st = s->streams;

		s->streams = st->next;
		h2_stream_free(st);
	}
	free(s);
	*sp = NULL;
}
