/* core/http/h2_client: an nghttp2 client session over byte callbacks
 * (mem_recv / mem_send). It knows streams and frames, never sockets,
 * TLS or timers: http_client.c drives it, fuzz_h2_client feeds it. */
#include "core/http/http_client-int.h"

/* system */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* third party */
#include <nghttp2/nghttp2.h>

#define H2C_OUT_MAX      (16u * 1024u) /* frames gathered per send */
#define H2C_CONN_WINDOW  (1 << 20)     /* connection receive window */
#define H2C_PEER_STREAMS 100           /* assumed until the server's SETTINGS */
#define H2C_NV_MAX       (4 + 64)
#define H2C_LAST_STREAM  0x7fffff00 /* stop opening streams near 2^31 */

struct h2c {
	nghttp2_session *s;
	const struct h2c_ops *ops;
	void *arg;
	struct h2c_stream *streams; /* open, in no particular order */
	unsigned nstreams, max_streams;
	bool dead, goaway_recv, goaway_sent;
	bool settings_recv; /* the server's first SETTINGS came */
	uint8_t *out;
	size_t out_len;
	char reason[128];
};

/* ---- stream list ---- */

static void h2c_link(struct h2c *h, struct h2c_stream *s)
{
	s->prev = NULL;
	s->next = h->streams;
	if (h->streams != NULL)
		h->streams->prev = s;
	h->streams = s;
	h->nstreams++;
}

static void h2c_unlink(struct h2c *h, struct h2c_stream *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		h->streams = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
	h->nstreams--;
}

static struct h2c_stream *h2c_stream_of(struct h2c *h, int32_t id)
{
	return nghttp2_session_get_stream_user_data(h->s, id);
}

/* ---- nghttp2 callbacks ---- */

static int h2c_on_header(nghttp2_session *session, const nghttp2_frame *frame,
			 const uint8_t *name, size_t namelen,
			 const uint8_t *value, size_t valuelen, uint8_t flags,
			 void *user_data)
{
	struct h2c *h = user_data;
	struct h2c_stream *s;
	unsigned st = 0;

	(void)session;
	(void)flags;
	if (frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	s = h2c_stream_of(h, frame->hd.stream_id);
	if (s == NULL || s->err != 0)
		return 0;
	if (s->final_status) {
		/* Trailers: counted, not kept. */
		if (hc_resp_count(s->resp, namelen, valuelen) < 0)
			goto too_big;
		return 0;
	}
	if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
		/* nghttp2 checked it is three digits. */
		for (size_t i = 0; i < valuelen && i < 3; i++)
			st = st * 10 + (unsigned)(value[i] - '0');
		if (st >= 200) {
			s->resp->status = (int)st;
			s->final_status = true;
		} else {
			hc_resp_reset(s->resp); /* 1xx: the real one follows */
		}
		return 0;
	}
	if (hc_resp_field(s->resp, name, namelen, value, valuelen) < 0)
		goto too_big;
	return 0;
too_big:
	s->err = -EMSGSIZE;
	return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
}

static int h2c_on_data(nghttp2_session *session, uint8_t flags,
		       int32_t stream_id, const uint8_t *data, size_t len,
		       void *user_data)
{
	struct h2c *h = user_data;
	struct h2c_stream *s = h2c_stream_of(h, stream_id);

	(void)flags;
	if (s == NULL || s->err != 0)
		return 0;
	if (hc_resp_data(s->resp, data, len) < 0) {
		s->err = -EMSGSIZE;
		nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id,
					  NGHTTP2_CANCEL);
	}
	return 0;
}

static int h2c_on_frame_recv(nghttp2_session *session,
			     const nghttp2_frame *frame, void *user_data)
{
	struct h2c *h = user_data;
	struct h2c_stream *s;

	(void)session;
	switch (frame->hd.type) {
	case NGHTTP2_HEADERS:
	case NGHTTP2_DATA:
		if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
			break;
		s = h2c_stream_of(h, frame->hd.stream_id);
		if (s != NULL)
			s->end_seen = true;
		break;
	case NGHTTP2_GOAWAY:
		h->goaway_recv = true;
		break;
	case NGHTTP2_SETTINGS:
		if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
			h->settings_recv = true;
		break;
	default:
		break;
	}
	return 0;
}

static int h2c_on_frame_send(nghttp2_session *session,
			     const nghttp2_frame *frame, void *user_data)
{
	struct h2c *h = user_data;
	struct h2c_stream *s;

	(void)session;
	if (frame->hd.type == NGHTTP2_HEADERS) {
		s = h2c_stream_of(h, frame->hd.stream_id);
		if (s != NULL)
			s->hdrs_sent = true;
	}
	return 0;
}

static int h2c_on_frame_not_send(nghttp2_session *session,
				 const nghttp2_frame *frame, int lib_error_code,
				 void *user_data)
{
	struct h2c *h = user_data;
	struct h2c_stream *s;

	(void)session;
	(void)lib_error_code;
	if (frame->hd.type == NGHTTP2_HEADERS) {
		s = h2c_stream_of(h, frame->hd.stream_id);
		if (s != NULL)
			s->not_sent = true;
	}
	return 0;
}

static int h2c_on_stream_close(nghttp2_session *session, int32_t stream_id,
			       uint32_t error_code, void *user_data)
{
	struct h2c *h = user_data;
	struct h2c_stream *s = h2c_stream_of(h, stream_id);
	char reason[96];
	int err = 0;
	bool refused = false;

	if (s == NULL)
		return 0;
	nghttp2_session_set_stream_user_data(session, stream_id, NULL);
	h2c_unlink(h, s);
	reason[0] = '\0';
	if (s->err != 0) {
		err = s->err;
		snprintf(reason, sizeof(reason), "response over its bounds");
	} else if (s->end_seen && s->final_status) {
		err = 0;
	} else if (s->not_sent || !s->hdrs_sent ||
		   error_code == NGHTTP2_REFUSED_STREAM) {
		err = -ECONNRESET;
		refused = true;
		snprintf(reason, sizeof(reason), "stream refused by server");
	} else {
		err = -ECONNRESET;
		snprintf(reason, sizeof(reason), "stream reset (%s)",
			 nghttp2_http2_strerror(error_code));
	}
	h->ops->stream_done(h->arg, s, err, refused, reason);
	return 0;
}

static ssize_t h2c_read_body(nghttp2_session *session, int32_t stream_id,
			     uint8_t *buf, size_t length, uint32_t *data_flags,
			     nghttp2_data_source *source, void *user_data)
{
	struct h2c *h = user_data;
	struct h2c_stream *s = h2c_stream_of(h, stream_id);
	size_t n;

	(void)session;
	(void)source;
	if (s == NULL)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* cancelled */
	n = s->body_len - s->body_off;
	if (n > length)
		n = length;
	memcpy(buf, s->body + s->body_off, n);
	s->body_off += n;
	if (s->body_off == s->body_len)
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

/* ---- API ---- */

int h2c_new(const struct h2c_ops *ops, void *arg, unsigned max_streams,
	    uint32_t hdr_max, struct h2c **h_r)
{
	nghttp2_session_callbacks *cbs = NULL;
	nghttp2_option *opt = NULL;
	struct h2c *h;
	nghttp2_settings_entry iv[] = {
		{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
		{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
		{NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, hdr_max},
	};
	int rc = -ENOMEM;

	*h_r = NULL;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	h->ops = ops;
	h->arg = arg;
	h->max_streams = max_streams != 0 ? max_streams : 1000;
	h->out = malloc(H2C_OUT_MAX);
	if (h->out == NULL || nghttp2_session_callbacks_new(&cbs) != 0 ||
	    nghttp2_option_new(&opt) != 0)
		goto out;
	nghttp2_session_callbacks_set_on_header_callback(cbs, h2c_on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs,
								  h2c_on_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs,
							     h2c_on_frame_recv);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs,
							     h2c_on_frame_send);
	nghttp2_session_callbacks_set_on_frame_not_send_callback(
		cbs, h2c_on_frame_not_send);
	nghttp2_session_callbacks_set_on_stream_close_callback(
		cbs, h2c_on_stream_close);
	nghttp2_option_set_peer_max_concurrent_streams(opt, H2C_PEER_STREAMS);
	nghttp2_option_set_max_reserved_remote_streams(opt, 0);
	if (nghttp2_session_client_new2(&h->s, cbs, h, opt) != 0)
		goto out;
	if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv,
				    sizeof(iv) / sizeof(iv[0])) != 0 ||
	    nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0,
						  H2C_CONN_WINDOW) != 0)
		goto out;
	rc = 0;
out:
	nghttp2_session_callbacks_del(cbs);
	nghttp2_option_del(opt);
	if (rc < 0) {
		h2c_free(&h);
		return rc;
	}
	*h_r = h;
	return 0;
}

void h2c_free(struct h2c **hp)
{
	struct h2c *h = *hp;

	if (h == NULL)
		return;
	if (h->s != NULL)
		nghttp2_session_del(h->s); /* no stream_close callbacks */
	free(h->out);
	free(h);
	*hp = NULL;
}

static void h2c_die(struct h2c *h, const char *what, int lib_err)
{
	if (!h->dead)
		snprintf(h->reason, sizeof(h->reason), "%s: %s", what,
			 nghttp2_strerror(lib_err));
	h->dead = true;
}

int h2c_feed(struct h2c *h, const uint8_t *data, size_t len)
{
	ssize_t r;

	if (h->dead)
		return -EPROTO;
	r = nghttp2_session_mem_recv(h->s, data, len);
	if (r < 0) {
		h2c_die(h, "h2 protocol error", (int)r);
		return -EPROTO;
	}
	return 0;
}

int h2c_flush(struct h2c *h)
{
	const uint8_t *data;
	ssize_t n;
	int r;

	if (h->dead)
		return -EPROTO;
	while (h->ops->can_send(h->arg)) {
		n = nghttp2_session_mem_send(h->s, &data);
		if (n < 0) {
			h2c_die(h, "h2 send", (int)n);
			return -EPROTO;
		}
		if (n == 0)
			break;
		if (h->out_len + (size_t)n > H2C_OUT_MAX && h->out_len > 0) {
			r = h->ops->send(h->arg, h->out, h->out_len);
			h->out_len = 0;
			if (r < 0)
				goto fail;
		}
		if ((size_t)n >= H2C_OUT_MAX) {
			r = h->ops->send(h->arg, data, (size_t)n);
			if (r < 0)
				goto fail;
			continue;
		}
		memcpy(h->out + h->out_len, data, (size_t)n);
		h->out_len += (size_t)n;
	}
	if (h->out_len > 0) {
		r = h->ops->send(h->arg, h->out, h->out_len);
		h->out_len = 0;
		if (r < 0)
			goto fail;
	}
	return 0;
fail:
	h->dead = true;
	snprintf(h->reason, sizeof(h->reason), "write failed: %s",
		 strerror(-r));
	return r;
}

static nghttp2_nv h2c_nv(const char *name, size_t nlen, const char *value,
			 size_t vlen)
{
	nghttp2_nv nv = {
		.name = (uint8_t *)(uintptr_t)name,
		.value = (uint8_t *)(uintptr_t)value,
		.namelen = nlen,
		.valuelen = vlen,
		.flags = NGHTTP2_NV_FLAG_NONE,
	};

	return nv;
}

int32_t h2c_submit(struct h2c *h, struct h2c_stream *s, const struct h2c_req *r)
{
	nghttp2_nv nv[H2C_NV_MAX];
	nghttp2_data_provider dp = {
		.source.ptr = s,
		.read_callback = h2c_read_body,
	};
	size_t n = 0;
	int32_t id;

	if (!h2c_can_submit(h))
		return -EAGAIN;
	if (r->nfields > H2C_NV_MAX - 4)
		return -EINVAL;
	nv[n++] = h2c_nv(":method", 7, r->method, strlen(r->method));
	nv[n++] = h2c_nv(":scheme", 7, r->scheme, strlen(r->scheme));
	nv[n++] = h2c_nv(":authority", 10, r->authority, strlen(r->authority));
	nv[n++] = h2c_nv(":path", 5, r->path, strlen(r->path));
	for (unsigned i = 0; i < r->nfields; i++)
		nv[n++] = h2c_nv(r->fields[i].name, r->fields[i].name_len,
				 r->fields[i].value, r->fields[i].value_len);
	s->id = 0;
	s->err = 0;
	s->body_off = 0;
	s->final_status = s->end_seen = s->hdrs_sent = s->not_sent = false;
	id = nghttp2_submit_request(h->s, NULL, nv, n,
				    s->body != NULL ? &dp : NULL, s);
	if (id < 0)
		return id == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO;
	s->id = id;
	h2c_link(h, s);
	return id;
}

void h2c_cancel(struct h2c *h, struct h2c_stream *s)
{
	if (s->id <= 0 || h2c_stream_of(h, s->id) != s)
		return;
	nghttp2_session_set_stream_user_data(h->s, s->id, NULL);
	h2c_unlink(h, s);
	nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, s->id,
				  NGHTTP2_CANCEL);
}

void h2c_abort(struct h2c *h, int err, const char *reason)
{
	struct h2c_stream *s;

	h->dead = true;
	if (h->reason[0] == '\0')
		snprintf(h->reason, sizeof(h->reason), "%s", reason);
	while ((s = h->streams) != NULL) {
		nghttp2_session_set_stream_user_data(h->s, s->id, NULL);
		h2c_unlink(h, s);
		h->ops->stream_done(h->arg, s, err,
				    !s->hdrs_sent || s->not_sent, reason);
	}
}

void h2c_goaway(struct h2c *h)
{
	if (h->goaway_sent || h->dead)
		return;
	h->goaway_sent = true;
	nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE,
			      nghttp2_session_get_last_proc_stream_id(h->s),
			      NGHTTP2_NO_ERROR, NULL, 0);
}

bool h2c_can_submit(const struct h2c *h)
{
	uint32_t peer;

	if (h->dead || h->goaway_recv || h->goaway_sent)
		return false;
	if (nghttp2_session_get_next_stream_id(h->s) > H2C_LAST_STREAM)
		return false;
	/* Until the server said how many streams it takes, one: a lone
	 * request does not wait, a burst does not overrun its limit. */
	if (!h->settings_recv)
		return h->nstreams == 0;
	peer = nghttp2_session_get_remote_settings(
		h->s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
	return h->nstreams < peer && h->nstreams < h->max_streams;
}

unsigned h2c_open_streams(const struct h2c *h)
{
	return h->nstreams;
}

bool h2c_alive(const struct h2c *h)
{
	return !h->dead && (nghttp2_session_want_read(h->s) ||
			    nghttp2_session_want_write(h->s));
}

bool h2c_settings_known(const struct h2c *h)
{
	return h->settings_recv;
}

bool h2c_going_away(const struct h2c *h)
{
	return h->goaway_recv || h->goaway_sent;
}

const char *h2c_reason(const struct h2c *h)
{
	return h->reason;
}
