/* core/http/http_req: helpers of the request/response interface and the
 * access log line both HTTP versions write. */
#include "core/http/http_req.h"

/* system */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* project */
#include "core/http/http_server_int.h"
#include "core/log.h"

const char *http_req_field(const struct http_req *r, const char *name)
{
	size_t n = strlen(name);

	for (unsigned i = 0; i < r->n_fields; i++) {
		if (r->fields[i].name_len == n &&
		    strncasecmp(r->fields[i].name, name, n) == 0)
			return r->fields[i].value;
	}
	return NULL;
}

bool http_req_accepts(const struct http_req *r, const char *coding)
{
	const char *v = http_req_field(r, "accept-encoding");
	size_t n = strlen(coding);

	while (v != NULL && *v != '\0') {
		const char *end = strchr(v, ',');
		size_t len = end != NULL ? (size_t)(end - v) : strlen(v);
		const char *q;

		while (len > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			len--;
		}
		if (len >= n && strncasecmp(v, coding, n) == 0 &&
		    (len == n || v[n] == ';' || v[n] == ' ')) {
			q = memchr(v, '=', len);
			/* "q=0", "q=0.0", "q=0.000" refuse it. */
			if (q == NULL)
				return true;
			for (q++; q < v + len && (*q == '0' || *q == '.'); q++)
				;
			return q < v + len && isdigit((unsigned char)*q);
		}
		v = end != NULL ? end + 1 : NULL;
	}
	return false;
}

enum http_req_method http_req_method_parse(const char *s, size_t n)
{
	static const struct {
		const char *name;
		enum http_req_method m;
	} ms[] = {{"GET", HTTP_M_GET},       {"HEAD", HTTP_M_HEAD},
		  {"POST", HTTP_M_POST},     {"PUT", HTTP_M_PUT},
		  {"DELETE", HTTP_M_DELETE}, {"OPTIONS", HTTP_M_OPTIONS}};

	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		if (strlen(ms[i].name) == n && memcmp(ms[i].name, s, n) == 0)
			return ms[i].m;
	}
	return HTTP_M_OTHER;
}

const char *http_status_reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 204:
		return "No Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 411:
		return "Length Required";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 417:
		return "Expectation Failed";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

bool http_resp_field(struct http_resp *resp, const char *name,
		     const char *value)
{
	if (resp->n_fields >= HTTP_RESP_FIELDS_MAX)
		return false;
	resp->fields[resp->n_fields++] =
		(struct http_field){name, strlen(name), value, strlen(value)};
	return true;
}

void http_resp_text(struct http_resp *resp, int status, const char *text)
{
	resp->status = status;
	resp->content_type = "text/plain; charset=utf-8";
	resp->content_encoding = NULL;
	resp->body = text;
	resp->body_len = strlen(text);
}

/* ---- shared by both versions ---- */

void http_resp_reset(struct http_resp *resp, struct buf *out)
{
	memset(resp, 0, offsetof(struct http_resp, scratch));
	resp->scratch[0] = '\0';
	buf_clear(out);
	resp->out = out;
	resp->status = 500;
}

void http_resp_error(struct http_resp *resp, int status)
{
	static const char *const texts[] = {
		[0] = "error\n",
	};
	char const *t = texts[0];

	switch (status) {
	case 400:
		t = "bad request\n";
		break;
	case 404:
		t = "not found\n";
		break;
	case 405:
		t = "method not allowed\n";
		break;
	case 408:
		t = "request timeout\n";
		break;
	case 411:
		t = "length required\n";
		break;
	case 413:
		t = "content too large\n";
		break;
	case 414:
		t = "uri too long\n";
		break;
	case 417:
		t = "expectation failed\n";
		break;
	case 431:
		t = "request header fields too large\n";
		break;
	case 501:
		t = "not implemented\n";
		break;
	case 503:
		t = "service unavailable\n";
		break;
	case 505:
		t = "http version not supported\n";
		break;
	default:
		break;
	}
	http_resp_text(resp, status, t);
}

void http_resp_body(const struct http_resp *resp, const void **p_r,
		    size_t *len_r)
{
	if (resp->body != NULL) {
		*p_r = resp->body;
		*len_r = resp->body_len;
	} else {
		*p_r = resp->out != NULL ? http_buf_bytes(resp->out) : NULL;
		*len_r = resp->out != NULL ? resp->out->len : 0;
	}
}

/* Printable, bounded copy for a log value (no spaces, quotes or
 * controls), so a request can never forge a log line or a key. */
static void http_log_word(char *out, size_t out_len, const char *s, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 1 < out_len; i++) {
		unsigned char ch = (unsigned char)s[i];

		out[o++] =
			(ch > 0x20 && ch < 0x7f && ch != '"') ? (char)ch : '?';
	}
	if (o == 0 && out_len > 1)
		out[o++] = '-';
	out[o] = '\0';
}

void http_access_log(const struct http_req *req, const struct http_resp *resp,
		     size_t body_len, uint64_t ms)
{
	char method[16], host[80], path[160];
	const char *m = req->method_name != NULL ? req->method_name : "";
	const char *h = req->host != NULL ? req->host : "";
	const char *t = req->target != NULL ? req->target : "";

	http_log_word(method, sizeof(method), m, strlen(m));
	http_log_word(host, sizeof(host), h, strlen(h));
	/* The path only: a query may carry what nobody should log. */
	http_log_word(path, sizeof(path), t,
		      req->target != NULL ? req->path_len : 0);
	log_conn(LOG_LV_INFO, req->conn_id,
		 "http request v=%s tls=%d method=%s host=%s path=%s "
		 "status=%d bytes=%zu ms=%" PRIu64 "%s%s",
		 req->version == 20   ? "2"
		 : req->version == 10 ? "1.0"
				      : "1.1",
		 req->tls ? 1 : 0, method, host, path, resp->status, body_len,
		 ms, resp->log_note != NULL ? " note=" : "",
		 resp->log_note != NULL ? resp->log_note : "");
}

void http_date(char out[32])
{
	static __thread time_t last;
	static __thread char cached[32];
	time_t now = time(NULL);

	if (now != last || cached[0] == '\0') {
		struct tm tm;

		gmtime_r(&now, &tm);
		strftime(cached, sizeof(cached), "%a, %d %b %Y %H:%M:%S GMT",
			 &tm);
		last = now;
	}
	memcpy(out, cached, sizeof(cached));
}
