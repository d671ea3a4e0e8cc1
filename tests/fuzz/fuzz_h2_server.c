/* tests/fuzz/fuzz_h2_server: the HTTP/2 server glue (nghttp2 session,
 * our stream bookkeeping, limits and the shared handler) with the real
 * site behind it. The first octet: bit 0 prepends the client preface (so
 * most inputs get past it), bits 1-6 the chunk size. The server's first
 * octets are always its SETTINGS frame; nothing leaks (ASan) and the
 * session ends cleanly on a timeout. */
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
	static uint64_t now; /* only moves on: the limiter spans runs */

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	struct http_sess_cfg cfg = {
		.handler = fuzz_site(),
		.lim = {.head_max = 2048,
			.target_max = 512,
			.fields_max = 16,
			.streams_max = 8},
		.tls = true,
		.peer_ip = "192.0.2.1",
		.conn_id = 1,
	};
	struct fio io = {0};
	struct h2_session *s;
	size_t chunk;

	if (size < 1)
		return 0;
	chunk = ((data[0] >> 1) & 0x3f) + 1;
	buf_init(&io.out, 0);
	s = h2_session_new(&cfg, &fio_ops, &io);
	FUZZ_CHECK(s != NULL);
	/* SETTINGS: type 4 on stream 0. */
	FUZZ_CHECK(io.out.len >= 9 && buf_head(&io.out)[3] == 4);
	if (data[0] & 1)
		(void)h2_session_input(s, (const uint8_t *)preface,
				       sizeof(preface) - 1);
	for (size_t off = 1; off < size && !h2_session_done(s);) {
		size_t k = size - off < chunk ? size - off : chunk;
		size_t used = h2_session_input(s, data + off, k);

		FUZZ_CHECK(used <= k);
		off += used > 0 ? used : k;
		h2_session_drained(s);
	}
	h2_session_timeout(s);
	FUZZ_CHECK(h2_session_done(s));
	h2_session_free(&s);
	buf_free(&io.out);
	return 0;
}
