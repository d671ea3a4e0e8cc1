/* core/http/http_client_h1: the HTTP/1.1 side of the client, pure. The
 * response reader is written here rather than taken from a library: a
 * client reads only responses (status line, fields, Content-Length /
 * chunked / until-close bodies), which is a few line rules, and every
 * byte of it is bounded by the accumulator (field bytes and count, body
 * size). Lines are taken whole: an incomplete line stays in the
 * connection's input until its LF arrives (bounded by the field budget). */
#include "core/http/http_client-int.h"

/* system */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define HC_H1_CHUNK_LINE_MAX 1024
#define HC_H1_BODY_MAX_LEN   (1ull << 40)

void hc_h1_init(struct hc_h1 *p, struct hc_resp *resp, bool head)
{
	memset(p, 0, sizeof(*p));
	p->resp = resp;
	p->head = head;
	p->st = HC_H1_STATUS;
}

static int hc_h1_fail(struct hc_h1 *p, int err, const char *why)
{
	snprintf(p->err, sizeof(p->err), "%s", why);
	return err;
}

static bool hc_h1_tchar(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Does the comma list @v (length @n) hold the token @tok? Also reports
 * whether it is the last element. */
static bool hc_h1_list_has(const uint8_t *v, size_t n, const char *tok,
			   bool *last_r)
{
	size_t tl = strlen(tok), i = 0, s, e;
	bool found = false;

	*last_r = false;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e == s)
			continue;
		*last_r = e - s == tl &&
			  strncasecmp((const char *)v + s, tok, tl) == 0;
		if (*last_r)
			found = true;
	}
	return found;
}

/* The status line "HTTP/1.x DDD reason". */
static int hc_h1_status(struct hc_h1 *p, const uint8_t *l, size_t n)
{
	int st;

	if (n < 12 || memcmp(l, "HTTP/1.", 7) != 0 ||
	    (l[7] != '0' && l[7] != '1') || l[8] != ' ' || l[9] < '1' ||
	    l[9] > '5' || l[10] < '0' || l[10] > '9' || l[11] < '0' ||
	    l[11] > '9' || (n > 12 && l[12] != ' '))
		return hc_h1_fail(p, -EPROTO, "bad status line");
	for (size_t i = 12; i < n; i++) {
		if (l[i] == 0 || (l[i] < 0x20 && l[i] != '\t') || l[i] == 0x7f)
			return hc_h1_fail(p, -EPROTO, "bad status line");
	}
	st = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
	p->resp->status = st;
	p->keep_alive = l[7] == '1';
	p->have_len = p->chunked = p->te = false;
	p->remaining = 0;
	return 0;
}

static int hc_h1_content_length(struct hc_h1 *p, const uint8_t *v, size_t n)
{
	uint64_t x = 0;

	if (n == 0)
		return hc_h1_fail(p, -EPROTO, "bad content-length");
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9' || x > HC_H1_BODY_MAX_LEN)
			return hc_h1_fail(p, -EPROTO, "bad content-length");
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	if (p->have_len && x != p->remaining)
		return hc_h1_fail(p, -EPROTO, "conflicting content-length");
	p->have_len = true;
	p->remaining = x;
	return 0;
}

/* One field line "name: value". */
static int hc_h1_field(struct hc_h1 *p, const uint8_t *l, size_t n)
{
	size_t i = 0, vs, ve;
	bool last;

	if (l[0] == ' ' || l[0] == '\t')
		return hc_h1_fail(p, -EPROTO, "obsolete line folding");
	while (i < n && hc_h1_tchar(l[i]))
		i++;
	if (i == 0 || i >= n || l[i] != ':')
		return hc_h1_fail(p, -EPROTO, "bad field line");
	vs = i + 1;
	while (vs < n && (l[vs] == ' ' || l[vs] == '\t'))
		vs++;
	ve = n;
	while (ve > vs && (l[ve - 1] == ' ' || l[ve - 1] == '\t'))
		ve--;
	for (size_t k = vs; k < ve; k++) {
		if (l[k] == 0 || (l[k] < 0x20 && l[k] != '\t') || l[k] == 0x7f)
			return hc_h1_fail(p, -EPROTO, "bad field value");
	}
	if (hc_resp_field(p->resp, l, i, l + vs, ve - vs) < 0)
		return hc_h1_fail(p, -EMSGSIZE, "response fields too large");
	if (i == 14 && strncasecmp((const char *)l, "content-length", 14) == 0)
		return hc_h1_content_length(p, l + vs, ve - vs);
	if (i == 17 &&
	    strncasecmp((const char *)l, "transfer-encoding", 17) == 0) {
		p->te = true;
		p->chunked =
			hc_h1_list_has(l + vs, ve - vs, "chunked", &last) &&
			last;
		return 0;
	}
	if (i == 10 && strncasecmp((const char *)l, "connection", 10) == 0) {
		if (hc_h1_list_has(l + vs, ve - vs, "close", &last))
			p->keep_alive = false;
		else if (hc_h1_list_has(l + vs, ve - vs, "keep-alive", &last))
			p->keep_alive = true;
	}
	return 0;
}

/* The empty line after the fields: pick how the body is delimited. */
static int hc_h1_fields_end(struct hc_h1 *p)
{
	int st = p->resp->status;

	if (st >= 100 && st < 200) {
		if (st == 101)
			return hc_h1_fail(p, -EPROTO, "unexpected 101");
		hc_resp_reset(p->resp); /* 100 Continue, 103: skip */
		p->st = HC_H1_STATUS;
		return 0;
	}
	if (p->head || st == 204 || st == 304) {
		p->st = HC_H1_DONE;
		return 0;
	}
	if (p->te) {
		/* RFC 9112 6.3: Transfer-Encoding overrides Content-Length;
		 * without chunked last the body runs until close. */
		p->have_len = false;
		if (p->chunked) {
			p->st = HC_H1_CHUNK_SIZE;
		} else {
			p->keep_alive = false;
			p->st = HC_H1_BODY_EOF;
		}
		return 0;
	}
	if (p->have_len) {
		p->st = p->remaining > 0 ? HC_H1_BODY_LEN : HC_H1_DONE;
		return 0;
	}
	p->keep_alive = false;
	p->st = HC_H1_BODY_EOF;
	return 0;
}

static int hc_h1_chunk_size(struct hc_h1 *p, const uint8_t *l, size_t n)
{
	uint64_t x = 0;
	size_t i = 0;

	while (i < n &&
	       ((l[i] >= '0' && l[i] <= '9') || (l[i] >= 'a' && l[i] <= 'f') ||
		(l[i] >= 'A' && l[i] <= 'F'))) {
		uint8_t c = l[i];
		unsigned d = c <= '9'   ? (unsigned)(c - '0')
			     : c <= 'F' ? (unsigned)(c - 'A' + 10)
					: (unsigned)(c - 'a' + 10);

		if (x > HC_H1_BODY_MAX_LEN)
			return hc_h1_fail(p, -EPROTO, "chunk too large");
		x = x * 16 + d;
		i++;
	}
	while (i < n && (l[i] == ' ' || l[i] == '\t'))
		i++;
	if (i == 0 || (i < n && l[i] != ';'))
		return hc_h1_fail(p, -EPROTO, "bad chunk size");
	p->remaining = x;
	p->st = x > 0 ? HC_H1_CHUNK_DATA : HC_H1_TRAILERS;
	return 0;
}

/* Take one line (without CR LF) from @data; 0 when no whole line yet. */
static size_t hc_h1_line(const uint8_t *data, size_t len, size_t *line_len_r)
{
	const uint8_t *lf = memchr(data, '\n', len);
	size_t n;

	if (lf == NULL)
		return 0;
	n = (size_t)(lf - data);
	*line_len_r = n > 0 && data[n - 1] == '\r' ? n - 1 : n;
	return n + 1;
}

int hc_h1_parse(struct hc_h1 *p, const uint8_t *data, size_t len,
		size_t *used_r)
{
	size_t off = 0, adv, ll, n, lim;
	const uint8_t *l;
	int r;

	*used_r = 0;
	while (p->st != HC_H1_DONE) {
		const uint8_t *d = data + off;
		size_t avail = len - off;

		switch (p->st) {
		case HC_H1_STATUS:
		case HC_H1_FIELDS:
		case HC_H1_TRAILERS:
		case HC_H1_CHUNK_SIZE:
		case HC_H1_CHUNK_END:
			lim = p->st == HC_H1_CHUNK_SIZE ||
					      p->st == HC_H1_CHUNK_END
				      ? HC_H1_CHUNK_LINE_MAX
				      : p->resp->hdr_max - p->resp->hdr_bytes;
			adv = hc_h1_line(d, avail, &ll);
			if (adv == 0) {
				/* +1: the CR of a line whose LF is to come. */
				if (avail > lim + 1)
					return hc_h1_fail(
						p, -EMSGSIZE,
						"response line too long");
				*used_r = off;
				return HC_H1_AGAIN;
			}
			if (ll > lim)
				return hc_h1_fail(p, -EMSGSIZE,
						  "response line too long");
			l = d;
			if (p->st == HC_H1_STATUS) {
				/* RFC 9112 2.2: empty lines before the status
				 * line are ignored (each counted). */
				if (hc_resp_count(p->resp, ll > 0 ? ll : 1, 0) <
				    0)
					return hc_h1_fail(
						p, -EMSGSIZE,
						"status line too long");
				if (ll == 0) {
					off += adv;
					continue;
				}
				r = hc_h1_status(p, l, ll);
				if (r == 0)
					p->st = HC_H1_FIELDS;
			} else if (p->st == HC_H1_FIELDS) {
				r = ll == 0 ? hc_h1_fields_end(p)
					    : hc_h1_field(p, l, ll);
			} else if (p->st == HC_H1_TRAILERS) {
				if (ll == 0) {
					p->st = HC_H1_DONE;
					r = 0;
				} else {
					r = hc_resp_count(p->resp, ll, 0) < 0
						    ? hc_h1_fail(p, -EMSGSIZE,
								 "trailers too "
								 "large")
						    : 0;
				}
			} else if (p->st == HC_H1_CHUNK_SIZE) {
				r = hc_h1_chunk_size(p, l, ll);
			} else {
				r = ll == 0 ? 0
					    : hc_h1_fail(p, -EPROTO,
							 "bad chunk end");
				p->st = HC_H1_CHUNK_SIZE;
			}
			if (r < 0)
				return r;
			off += adv;
			break;
		case HC_H1_BODY_LEN:
		case HC_H1_CHUNK_DATA:
		case HC_H1_BODY_EOF:
			if (avail == 0) {
				*used_r = off;
				return HC_H1_AGAIN;
			}
			n = avail;
			if (p->st != HC_H1_BODY_EOF && n > p->remaining)
				n = (size_t)p->remaining;
			if (hc_resp_data(p->resp, d, n) < 0)
				return hc_h1_fail(p, -EMSGSIZE,
						  "response body too large");
			off += n;
			if (p->st == HC_H1_BODY_EOF)
				break;
			p->remaining -= n;
			if (p->remaining == 0)
				p->st = p->st == HC_H1_BODY_LEN
						? HC_H1_DONE
						: HC_H1_CHUNK_END;
			break;
		case HC_H1_DONE:
			break;
		}
	}
	*used_r = off;
	return HC_H1_OK;
}

int hc_h1_eof(struct hc_h1 *p)
{
	if (p->st == HC_H1_BODY_EOF) {
		p->st = HC_H1_DONE;
		return HC_H1_OK;
	}
	if (p->st == HC_H1_DONE)
		return HC_H1_OK;
	snprintf(p->err, sizeof(p->err), "connection closed mid-response");
	return -ECONNRESET;
}

int hc_h1_write_head(struct buf *out, const char *method, const char *host,
		     const char *path, const struct http_field *fields,
		     unsigned nfields, size_t body_len, bool has_body)
{
	int r;

	r = buf_printf(out, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path,
		       host);
	if (r == 0 && (has_body || body_len > 0))
		r = buf_printf(out, "Content-Length: %zu\r\n", body_len);
	for (unsigned i = 0; r == 0 && i < nfields; i++)
		r = buf_printf(out, "%.*s: %.*s\r\n", (int)fields[i].name_len,
			       fields[i].name, (int)fields[i].value_len,
			       fields[i].value);
	if (r == 0)
		r = buf_append(out, "\r\n", 2);
	return r;
}
