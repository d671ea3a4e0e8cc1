/* tests/fuzz/fuzz_http1: the HTTP/1.1 server session (libhttp-parser and
 * our limits) with the real site behind it. The first octet is the chunk
 * size, the rest is what the client sends. Fed whole and in chunks the
 * responses must be the same (Date lines aside; on garbage, which refusal
 * status may differ, not that it is refused); every response starts
 * "HTTP/1.1 ddd "; once the session is done nothing more is answered. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/http/http_server_int.h"
#include "core/log.h"
#include "www/www_site.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(c)                                                      \
	do {                                                               \
		if (!(c)) {                                                \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, \
				#c);                                       \
			abort();                                           \
		}                                                          \
	} while (0)

struct fio {
	struct buf out;
};

static int fio_write(void *io, const void *p, size_t n)
{
	return buf_append(&((struct fio *)io)->out, p, n);
}

static size_t fio_pending(void *io)
{
	(void)io;
	return 0;
}

static void fio_phase(void *io, enum http_phase ph)
{
	(void)io;
	(void)ph;
}

static uint64_t fio_now(void *io)
{
	/* The site's limiter lives across runs: a clock that only moves
	 * on, ten seconds a call, so it never refuses. */
	static uint64_t now;

	(void)io;
	return now += 10000;
}

static const struct http_sess_ops fio_ops = {fio_write, fio_pending, fio_phase,
					     fio_now};

static const struct http_handler *fuzz_site(void)
{
	static struct www_site *site;

	if (site == NULL) {
		struct www_site_opts o = {
			.mail_domain = "example.org",
			.mail_domain_bare = "example.org",
			.max_user_send_per_minute = 60,
			.max_mailbox_size_mb = 500,
			.delete_mails_after = 20,
			.delete_inactive_users_after = 90,
			.username_min_length = 9,
			.username_max_length = 9,
			.password_min_length = 9,
			.acme_webroot = "/nonexistent",
		};

		log_set_level(LOG_LV_ERR);
		FUZZ_CHECK(www_site_new(&o, &site) == 0);
	}
	return www_site_handler(site);
}

/* The responses with Date lines, /new's random JSON and the lengths
 * (which follow it: escapes) cut. */
static char *fuzz_norm(const struct buf *b)
{
	char *s = malloc(b->len + 1), *d;

	memcpy(s, http_buf_bytes(b), b->len);
	s[b->len] = '\0';
	while ((d = strstr(s, "Date: ")) != NULL) {
		char *e = strstr(d, "\r\n");

		memmove(d, e + 2, strlen(e + 2) + 1);
	}
	while ((d = strstr(s, "Content-Length: ")) != NULL) {
		char *e = strstr(d, "\r\n");

		memmove(d, e + 2, strlen(e + 2) + 1);
	}
	/* The JSON is a whole body: up to the next response. */
	while ((d = strstr(s, "{\"email\": \"")) != NULL) {
		char *e = strstr(d, "HTTP/1.1 ");

		if (e == NULL)
			*d = '\0';
		else
			memmove(d, e, strlen(e) + 1);
	}
	return s;
}

static char *fuzz_run(const uint8_t *p, size_t n, size_t chunk, bool tls)
{
	struct http_sess_cfg cfg = {
		.handler = fuzz_site(),
		.lim = {.head_max = 2048,
			.target_max = 512,
			.fields_max = 16,
			.streams_max = 8},
		.tls = tls,
		.peer_ip = "192.0.2.1",
		.conn_id = 1,
	};
	struct fio io = {0};
	struct http1_session *s;
	char *out;
	size_t off = 0;

	buf_init(&io.out, 0);
	s = http1_session_new(&cfg, &fio_ops, &io);
	FUZZ_CHECK(s != NULL);
	while (off < n) {
		size_t k = n - off < chunk ? n - off : chunk;
		size_t used = http1_session_input(s, p + off, k);

		FUZZ_CHECK(used == k); /* never congested here */
		off += k;
	}
	if (!http1_session_done(s))
		http1_session_timeout(s);
	FUZZ_CHECK(http1_session_done(s));
	out = fuzz_norm(&io.out);
	http1_session_free(&s);
	buf_free(&io.out);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *whole, *parts;
	size_t chunk;
	bool tls;

	if (size < 1)
		return 0;
	chunk = (data[0] & 0x3f) + 1;
	tls = (data[0] & 0x40) == 0;
	whole = fuzz_run(data + 1, size - 1, size, tls);
	parts = fuzz_run(data + 1, size - 1, chunk, tls);
	if (getenv("FUZZ_DEBUG") != NULL && strcmp(whole, parts) != 0)
		fprintf(stderr, "whole:\n%s\nparts:\n%s\n", whole, parts);
	if (strcmp(whole, parts) != 0) {
		/* On garbage, which limit or syntax rule trips first may
		 * depend on where the parser's callbacks split a token; the
		 * answers up to the refusal agree, and both refuse. */
		const char *lw = strstr(whole, "HTTP/1.1 "), *lp;
		const char *tw, *tp;

		for (tw = lw; tw != NULL; tw = strstr(tw + 1, "HTTP/1.1 "))
			lw = tw;
		lp = strstr(parts, "HTTP/1.1 ");
		for (tp = lp; tp != NULL; tp = strstr(tp + 1, "HTTP/1.1 "))
			lp = tp;
		FUZZ_CHECK(lw != NULL && lp != NULL);
		FUZZ_CHECK(lw - whole == lp - parts);
		FUZZ_CHECK(memcmp(whole, parts, (size_t)(lw - whole)) == 0);
		FUZZ_CHECK(lw[9] >= '4' && lp[9] >= '4');
		FUZZ_CHECK(strstr(lw, "Connection: close\r\n") != NULL &&
			   strstr(lp, "Connection: close\r\n") != NULL);
	}
	for (const char *r = whole; (r = strstr(r, "HTTP/1.1 ")) != NULL;
	     r += 9) {
		/* A response head (bodies could hold the string too, but
		 * ours never do): "HTTP/1.1 ddd ". */
		FUZZ_CHECK(r[9] >= '1' && r[9] <= '5' && r[12] == ' ');
	}
	FUZZ_CHECK(whole[0] == '\0' || strncmp(whole, "HTTP/1.1 ", 9) == 0);
	free(whole);
	free(parts);
	return 0;
}
