/* tests/unit/test_http1: the HTTP/1.1 server session (core/http on
 * libhttp-parser) over memory, table-driven: every case fed whole, one
 * byte at a time, and split in two at every position, with the same
 * responses each way. Keep-alive and pipelining, chunked bodies, Expect,
 * the limits (target, head, fields, body per route) and their statuses,
 * the phases the driver arms deadlines for, and the timeout's 408. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/http/http_server_int.h"
#include "core/log.h"

struct io {
	struct buf out;
	enum http_phase phases[64];
	unsigned n_phases;
	size_t pending;
};

static int io_write(void *arg, const void *p, size_t n)
{
	struct io *io = arg;

	return buf_append(&io->out, p, n);
}

static size_t io_pending(void *arg)
{
	struct io *io = arg;

	return io->pending;
}

static void io_phase(void *arg, enum http_phase ph)
{
	struct io *io = arg;

	if (io->n_phases < 64)
		io->phases[io->n_phases++] = ph;
}

static const struct http_sess_ops io_ops = {
	.write = io_write,
	.pending = io_pending,
	.phase = io_phase,
};

/* The handler: echoes what it was given. /post takes up to 64 octets. */
static size_t t_body_max(void *arg, const struct http_req *req)
{
	(void)arg;
	return req->path_len == 5 && memcmp(req->target, "/post", 5) == 0 ? 64
									  : 0;
}

static void t_handle(void *arg, const struct http_req *req,
		     struct http_resp *resp)
{
	const char *ua = http_req_field(req, "user-agent");

	(void)arg;
	resp->status = 200;
	resp->content_type = "text/plain";
	buf_printf(resp->out, "%s %.*s host=%s v=%d ua=%s body=%zu:%.*s",
		   req->method_name, (int)req->path_len, req->target, req->host,
		   req->version, ua != NULL ? ua : "-", req->body_len,
		   (int)req->body_len, (const char *)req->body);
	if (req->path_len == 6 && memcmp(req->target, "/close", 6) == 0)
		resp->close = true;
}

static const struct http_handler t_handler = {t_body_max, t_handle, NULL};

static struct http_sess_cfg t_cfg(void)
{
	return (struct http_sess_cfg){
		.handler = &t_handler,
		.lim = {.head_max = 1024,
			.target_max = 200,
			.fields_max = 8,
			.streams_max = 4},
		.tls = true,
		.peer_ip = "127.0.0.1",
		.conn_id = 1,
	};
}

/* The responses with the Date line cut out, so they compare. */
static char *strip_date(const struct buf *b)
{
	char *s = malloc(b->len + 1), *d;

	memcpy(s, http_buf_bytes(b), b->len);
	s[b->len] = '\0';
	while ((d = strstr(s, "Date: ")) != NULL) {
		char *e = strstr(d, "\r\n");

		memmove(d, e + 2, strlen(e + 2) + 1);
	}
	return s;
}

enum feed { FEED_WHOLE, FEED_BYTES, FEED_SPLIT };

/* Run @in through a fresh session; the responses (Dates cut), and
 * whether the session finished. */
static char *run(const char *in, size_t n, enum feed how, size_t split,
		 bool *done_r)
{
	struct http_sess_cfg cfg = t_cfg();
	struct io io;
	struct http1_session *s;
	char *out;

	memset(&io, 0, sizeof(io));
	buf_init(&io.out, 0);
	s = http1_session_new(&cfg, &io_ops, &io);
	assert_non_null(s);
	switch (how) {
	case FEED_WHOLE:
		assert_int_equal(http1_session_input(s, (const uint8_t *)in, n),
				 n);
		break;
	case FEED_BYTES:
		for (size_t i = 0; i < n; i++)
			assert_int_equal(http1_session_input(
						 s, (const uint8_t *)in + i, 1),
					 1);
		break;
	case FEED_SPLIT:
		assert_int_equal(
			http1_session_input(s, (const uint8_t *)in, split),
			split);
		assert_int_equal(
			http1_session_input(s, (const uint8_t *)in + split,
					    n - split),
			n - split);
		break;
	}
	*done_r = http1_session_done(s);
	out = strip_date(&io.out);
	http1_session_free(&s);
	buf_free(&io.out);
	return out;
}

struct tcase {
	const char *name;
	const char *in;
	const char *want; /* every response, Dates cut */
	bool done;        /* the session ends (Connection: close) */
};

/* "#" stands for the length of the body that follows (expand()). */
#define OK_HEAD                                           \
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" \
	"Content-Length: #\r\n"
#define ERR(code, reason, text)                                       \
	"HTTP/1.1 " #code " " reason "\r\nContent-Type: text/plain; " \
	"charset=utf-8\r\nContent-Length: #"                          \
	"\r\nConnection: close\r\n\r\n" text

/* @want with each "Content-Length: #" made the length of its body (to
 * the next "HTTP/1.1 " or the end). */
static char *expand(const char *want)
{
	char *out = malloc(strlen(want) * 2 + 64);
	const char *p = want;
	size_t o = 0;

	while (*p != '\0') {
		const char *h = strstr(p, "Content-Length: #");

		if (h == NULL) {
			memcpy(out + o, p, strlen(p) + 1);
			return out;
		}
		memcpy(out + o, p, (size_t)(h - p) + 16);
		o += (size_t)(h - p) + 16;
		{
			const char *b = strstr(h, "\r\n\r\n") + 4;
			const char *e = strstr(b, "HTTP/1.1 ");
			size_t n = e != NULL ? (size_t)(e - b) : strlen(b);

			o += (size_t)snprintf(out + o, 24, "%zu", n);
		}
		p = h + 17;
	}
	out[o] = '\0';
	return out;
}

static const struct tcase cases[] = {
	{"simple get", "GET /a?q=1 HTTP/1.1\r\nHost: Example.ORG:443\r\n\r\n",
	 OK_HEAD "\r\nGET /a host=example.org v=11 ua=- body=0:", false},
	{"pipelined keep-alive",
	 "GET /1 HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\n\r\n"
	 "GET /2 HTTP/1.1\r\nHost: b\r\n\r\n",
	 OK_HEAD "\r\nGET /1 host=a v=11 ua=x body=0:" OK_HEAD
		 "\r\nGET /2 host=b v=11 ua=- body=0:",
	 false},
	{"connection close",
	 "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	 "GET /never HTTP/1.1\r\nHost: a\r\n\r\n",
	 OK_HEAD "Connection: close\r\n\r\nGET / host=a v=11 ua=- body=0:",
	 true},
	{"handler closes", "GET /close HTTP/1.1\r\nHost: a\r\n\r\n",
	 OK_HEAD "Connection: close\r\n\r\nGET /close host=a v=11 ua=- "
		 "body=0:",
	 true},
	{"http/1.0 closes", "GET / HTTP/1.0\r\n\r\n",
	 OK_HEAD "Connection: close\r\n\r\nGET / host= v=10 ua=- body=0:",
	 true},
	{"http/1.0 keep-alive",
	 "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	 OK_HEAD "Connection: keep-alive\r\n\r\nGET / host= v=10 ua=- "
		 "body=0:",
	 false},
	{"post with length",
	 "POST /post HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
	 OK_HEAD "\r\nPOST /post host=a v=11 ua=- body=5:hello", false},
	{"post chunked with trailer",
	 "POST /post HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	 "3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nX-Trailer: t\r\n\r\n",
	 OK_HEAD "\r\nPOST /post host=a v=11 ua=- body=7:abcdefg", false},
	{"expect 100-continue",
	 "POST /post HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n"
	 "Expect: 100-continue\r\n\r\nhi",
	 "HTTP/1.1 100 Continue\r\n\r\n" OK_HEAD
	 "\r\nPOST /post host=a v=11 ua=- body=2:hi",
	 false},
	{"expect other", "GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n",
	 ERR(417, "Expectation Failed", "expectation failed\n"), true},
	{"body over the route's limit",
	 "POST /post HTTP/1.1\r\nHost: a\r\nContent-Length: 65\r\n\r\n",
	 ERR(413, "Content Too Large", "content too large\n"), true},
	{"body where the route takes none",
	 "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx",
	 ERR(413, "Content Too Large", "content too large\n"), true},
	{"chunked over the limit",
	 "POST /post HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	 "41\r\n"
	 "0123456789012345678901234567890123456789012345678901234567890123"
	 "4\r\n0\r\n\r\n",
	 ERR(413, "Content Too Large", "content too large\n"), true},
	{"missing host", "GET / HTTP/1.1\r\n\r\n",
	 ERR(400, "Bad Request", "bad request\n"), true},
	{"garbage", "\x01\x02 nonsense\r\n\r\n",
	 ERR(501, "Not Implemented", "not implemented\n"), true},
	{"bad version", "GET / HTTP/9.x\r\nHost: a\r\n\r\n",
	 ERR(505, "HTTP Version Not Supported", "http version not supported\n"),
	 true},
	{"space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
	 ERR(400, "Bad Request", "bad request\n"), true},
	{"bad header line", "GET / HTTP/1.1\r\nHost a\r\n\r\n",
	 ERR(400, "Bad Request", "bad request\n"), true},
	{"connect", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
	 ERR(405, "Method Not Allowed", "method not allowed\n"), true},
	{"too many fields",
	 "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n"
	 "E: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\n\r\n",
	 ERR(431, "Request Header Fields Too Large",
	     "request header fields too large\n"),
	 true},
	{"target too long",
	 "GET /"
	 "0123456789012345678901234567890123456789012345678901234567890123"
	 "0123456789012345678901234567890123456789012345678901234567890123"
	 "0123456789012345678901234567890123456789012345678901234567890123"
	 "0123456789 HTTP/1.1\r\nHost: a\r\n\r\n",
	 ERR(414, "URI Too Long", "uri too long\n"), true},
	{"both length and chunked",
	 "POST /post HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
	 "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	 ERR(400, "Bad Request", "bad request\n"), true},
	{"http/2.0 over the 1.1 parser", "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
	 ERR(505, "HTTP Version Not Supported", "http version not supported\n"),
	 true},
	{"empty field values",
	 "GET / HTTP/1.1\r\nX-Empty:\r\nUser-Agent:\r\nHost: a\r\n"
	 "X-Also: \r\n\r\n",
	 OK_HEAD "\r\nGET / host=a v=11 ua= body=0:", false},
	{"leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	 OK_HEAD "\r\nGET / host=a v=11 ua=- body=0:", false},
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *t = &cases[i];
		size_t n = strlen(t->in);
		bool done;
		char *want = expand(t->in != NULL ? t->want : "");
		char *got = run(t->in, n, FEED_WHOLE, 0, &done);

		if (strcmp(got, want) != 0 || done != t->done)
			fail_msg("%s: whole: got [%s] done=%d", t->name, got,
				 done);
		free(got);
		got = run(t->in, n, FEED_BYTES, 0, &done);
		if (strcmp(got, want) != 0 || done != t->done)
			fail_msg("%s: byte by byte: got [%s]", t->name, got);
		free(got);
		for (size_t k = 0; k <= n; k++) {
			got = run(t->in, n, FEED_SPLIT, k, &done);
			if (strcmp(got, want) != 0 || done != t->done)
				fail_msg("%s: split at %zu: got [%s]", t->name,
					 k, got);
			free(got);
		}
		free(want);
	}
}

static void test_head_too_large(void **state)
{
	char in[2048];
	bool done;
	char *got;

	(void)state;
	snprintf(in, sizeof(in),
		 "GET / HTTP/1.1\r\nHost: a\r\nX: %01500d\r\n\r\n", 0);
	got = run(in, strlen(in), FEED_WHOLE, 0, &done);
	assert_true(done);
	assert_non_null(strstr(got, "HTTP/1.1 431 "));
	free(got);
}

/* The driver arms a deadline per phase: head at once (a new connection),
 * head at a request's first byte, body after its head, idle after it. */
static void test_phases_and_timeout(void **state)
{
	struct http_sess_cfg cfg = t_cfg();
	struct io io;
	struct http1_session *s;
	static const char a[] = "POST /post HTTP/1.1\r\nHost: a\r\n"
				"Content-Length: 4\r\n\r\nab";
	static const char b[] = "cd";
	static const char c[] = "GET /slow HTTP/1.1\r\nHo";
	char *got;

	(void)state;
	memset(&io, 0, sizeof(io));
	buf_init(&io.out, 0);
	s = http1_session_new(&cfg, &io_ops, &io);
	assert_int_equal(io.n_phases, 1);
	assert_int_equal(io.phases[0], HTTP_PHASE_HEAD);
	http1_session_input(s, (const uint8_t *)a, strlen(a));
	assert_int_equal(io.phases[io.n_phases - 1], HTTP_PHASE_BODY);
	http1_session_input(s, (const uint8_t *)b, strlen(b));
	assert_int_equal(io.phases[io.n_phases - 1], HTTP_PHASE_IDLE);
	http1_session_input(s, (const uint8_t *)c, strlen(c));
	assert_int_equal(io.phases[io.n_phases - 1], HTTP_PHASE_HEAD);
	buf_clear(&io.out);
	/* The header deadline passes: 408, then the session ends. */
	http1_session_timeout(s);
	assert_true(http1_session_done(s));
	got = strip_date(&io.out);
	{
		char *want = expand(
			ERR(408, "Request Timeout", "request timeout\n"));

		assert_string_equal(got, want);
		free(want);
	}
	free(got);
	assert_int_equal(http1_session_requests(s), 2);
	http1_session_free(&s);

	/* Idle between requests: the timeout closes quietly. */
	s = http1_session_new(&cfg, &io_ops, &io);
	buf_clear(&io.out);
	http1_session_input(
		s, (const uint8_t *)"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27);
	buf_clear(&io.out);
	http1_session_timeout(s);
	assert_true(http1_session_done(s));
	assert_int_equal(io.out.len, 0);
	http1_session_free(&s);
	buf_free(&io.out);
}

/* Pipelined requests wait while the output is congested. */
static void test_congested(void **state)
{
	struct http_sess_cfg cfg = t_cfg();
	struct io io;
	struct http1_session *s;
	static const char two[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
				  "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
	size_t used;

	(void)state;
	memset(&io, 0, sizeof(io));
	buf_init(&io.out, 0);
	s = http1_session_new(&cfg, &io_ops, &io);
	io.pending = HTTP_OUT_HIGH + 1;
	assert_int_equal(
		http1_session_input(s, (const uint8_t *)two, strlen(two)), 0);
	io.pending = 0;
	used = http1_session_input(s, (const uint8_t *)two, 28);
	assert_int_equal(used, 28);
	assert_non_null(strstr((char *)io.out.data, "GET /1"));
	io.pending = HTTP_OUT_HIGH + 1;
	assert_int_equal(http1_session_input(s, (const uint8_t *)two + 28,
					     strlen(two) - 28),
			 0);
	io.pending = 0;
	assert_int_equal(http1_session_input(s, (const uint8_t *)two + 28,
					     strlen(two) - 28),
			 strlen(two) - 28);
	assert_int_equal(http1_session_requests(s), 2);
	http1_session_free(&s);
	buf_free(&io.out);
}

static void test_accepts(void **state)
{
	struct http_field f = {"Accept-Encoding", 15, "", 0};
	struct http_req r = {.fields = &f, .n_fields = 1};
	static const struct {
		const char *v;
		bool gzip;
	} t[] = {
		{"gzip", true},      {"deflate, gzip;q=0.5", true},
		{"gzip;q=0", false}, {"gzip; q=0.000", false},
		{"br", false},       {"x-gzip", false},
		{"GZIP", true},      {"identity, gzip ;q=1", true},
		{"gzipper", false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		f.value = t[i].v;
		f.value_len = strlen(t[i].v);
		if (http_req_accepts(&r, "gzip") != t[i].gzip)
			fail_msg("accept-encoding [%s]", t[i].v);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_head_too_large),
		cmocka_unit_test(test_phases_and_timeout),
		cmocka_unit_test(test_congested),
		cmocka_unit_test(test_accepts),
	};

	log_set_level(LOG_LV_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
