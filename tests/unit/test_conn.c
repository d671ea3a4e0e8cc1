/* tests/unit/test_conn: the L1 stream layer through the real loop on each
 * backend: plain and TLS round trips, ALPN, STARTTLS input discard,
 * minimum-version refusal, and kernel TLS where the kernel has it
 * (RINGMAIL_REQUIRE_KTLS=1 makes its absence a failure: used in the
 * Debian 12 kernel VM). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "core/conn.h"
#include "core/listen.h"
#include "core/loop.h"
#include "core/tls.h"
#include "testutil.h"

#define TEST_DEADLINE_MS 20000

static char *test_dir;
static char cert_path[512], key_path[512];

/* One side of a test connection. */
struct peer {
	struct conn *c;
	struct buf got; /* everything received */
	bool tls_ready, connected, closed;
	char alpn[32];
	char peer_cn[64];
	char sni[64];
	char reason[160];
	bool ktls_tx, ktls_rx;
	/* STARTTLS test: server answers the first line and switches. */
	struct tls_ctx *starttls;
	bool switched;
	/* Echo mode: write back whatever arrives. */
	bool echo;
};

struct fixture {
	struct loop *loop;
	struct loop_listener *li;
	int lfd;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	struct tls_ctx *server_tls; /* implicit TLS on accept, or NULL */
	struct peer server;
	struct peer client;
};

static void peer_event(struct conn *c, enum conn_ev ev, void *arg)
{
	struct peer *p = arg;
	struct buf *in;

	switch (ev) {
	case CONN_EV_CONNECTED:
		p->connected = true;
		break;
	case CONN_EV_TLS_READY:
		p->tls_ready = true;
		snprintf(p->alpn, sizeof(p->alpn), "%s", conn_tls_alpn(c));
		snprintf(p->sni, sizeof(p->sni), "%s", conn_tls_sni(c));
		conn_tls_peer_cn(c, p->peer_cn, sizeof(p->peer_cn));
		p->ktls_tx = conn_ktls_tx(c);
		p->ktls_rx = conn_ktls_rx(c);
		break;
	case CONN_EV_DATA:
		in = conn_input(c);
		if (p->starttls != NULL && !p->switched) {
			uint8_t *nl = memchr(buf_head(in), '\n', in->len);

			if (nl == NULL)
				break;
			/* Consume only the STARTTLS line: what follows in
			 * the same packet must be dropped by conn. */
			conn_consume(c, (size_t)(nl - buf_head(in)) + 1);
			(void)conn_write(c, "220 go\r\n", 8);
			assert_int_equal(conn_starttls(c, p->starttls), 0);
			p->switched = true;
			break;
		}
		assert_int_equal(buf_append(&p->got, buf_head(in), in->len), 0);
		if (p->echo)
			assert_int_equal(conn_write(c, buf_head(in), in->len),
					 0);
		conn_consume(c, in->len);
		break;
	case CONN_EV_CLOSED:
		p->closed = true;
		p->c = NULL;
		snprintf(p->reason, sizeof(p->reason), "%s",
			 conn_close_reason(c));
		break;
	case CONN_EV_DRAINED:
	case CONN_EV_TIMEOUT:
		break;
	}
}

static void fixture_accept(struct loop_listener *li, int fd,
			   const struct sockaddr *peer, socklen_t peer_len,
			   void *arg)
{
	struct fixture *f = arg;

	(void)li;
	(void)peer;
	(void)peer_len;
	f->server.c =
		conn_new(f->loop, fd, f->server_tls, 0, peer_event, &f->server);
	assert_non_null(f->server.c);
}

static void fixture_setup(struct fixture *f, enum loop_backend b)
{
	struct loop_opts o = {.backend = b};
	const char *prof = getenv("RINGMAIL_URING_PROFILE");

	memset(f, 0, sizeof(*f));
	o.uring_debian12 = prof != NULL && strcmp(prof, "debian12") == 0;
	assert_int_equal(loop_new(&o, &f->loop), 0);
	assert_int_equal(loop_get_backend(f->loop), b);
	assert_int_equal(
		listen_addr_parse("127.0.0.1:0", &f->addr, &f->addr_len), 0);
	f->lfd = listen_bind((struct sockaddr *)&f->addr, f->addr_len, 64);
	assert_true(f->lfd >= 0);
	f->addr_len = sizeof(f->addr);
	assert_int_equal(
		getsockname(f->lfd, (struct sockaddr *)&f->addr, &f->addr_len),
		0);
	f->li = loop_listen(f->loop, f->lfd, fixture_accept, f);
	assert_non_null(f->li);
	buf_init(&f->server.got, 0);
	buf_init(&f->client.got, 0);
}

static void fixture_teardown(struct fixture *f)
{
	if (f->server.c != NULL)
		conn_close(f->server.c, false);
	if (f->client.c != NULL)
		conn_close(f->client.c, false);
	for (int i = 0; i < 200 && (f->server.c != NULL || f->client.c != NULL);
	     i++)
		loop_run_once(f->loop, 10);
	loop_listener_stop(&f->li);
	close(f->lfd);
	loop_free(&f->loop);
	buf_free(&f->server.got);
	buf_free(&f->client.got);
	if (f->server_tls != NULL)
		tls_ctx_free(&f->server_tls);
}

/* Run the loop until @cond holds; fail after the deadline. */
#define RUN_UNTIL(f, cond)                                              \
	do {                                                            \
		uint64_t start_ = loop_now_ms((f)->loop);               \
		while (!(cond)) {                                       \
			assert_true(loop_run_once((f)->loop, 50) >= 0); \
			if (loop_now_ms((f)->loop) - start_ >           \
			    TEST_DEADLINE_MS)                           \
				fail_msg("timeout waiting for " #cond); \
		}                                                       \
	} while (0)

static struct tls_ctx *server_ctx(int min, const char *const *alpn,
				  enum tls_ktls_mode ktls)
{
	struct tls_ctx_opts o = {
		.server = true,
		.cert_file = cert_path,
		.key_file = key_path,
		.min_version = min,
		.alpn = alpn,
		.ktls = ktls,
	};
	struct tls_ctx *ctx = NULL;

	assert_int_equal(tls_ctx_new(&o, &ctx), 0);
	return ctx;
}

static struct tls_ctx *client_ctx(int min, int max, const char *const *alpn,
				  const char *ciphers, const char *suites,
				  enum tls_ktls_mode ktls)
{
	struct tls_ctx_opts o = {
		.server = false,
		.min_version = min,
		.max_version = max,
		.alpn = alpn,
		.insecure = true,
		.cipher_list = ciphers,
		.ciphersuites = suites,
		.ktls = ktls,
	};
	struct tls_ctx *ctx = NULL;

	assert_int_equal(tls_ctx_new(&o, &ctx), 0);
	return ctx;
}

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

/* Client writes @n bytes in chunks; the server echoes; check both ways. */
static void round_trip(struct fixture *f, size_t n)
{
	uint8_t *data = malloc(n);
	size_t off = 0, chunk = 65536;

	assert_non_null(data);
	fill_pattern(data, n, (uint32_t)n);
	f->server.echo = true;
	while (off < n) {
		size_t k = n - off < chunk ? n - off : chunk;

		if (f->client.c == NULL || f->server.c == NULL)
			fail_msg("closed during round trip: client \"%s\" "
				 "server \"%s\"",
				 f->client.reason, f->server.reason);
		assert_int_equal(conn_write(f->client.c, data + off, k), 0);
		off += k;
		/* Let the echo flow so neither side queues everything. */
		RUN_UNTIL(f, f->client.got.len + 4 * chunk >= off ||
				     f->client.closed);
	}
	RUN_UNTIL(f, f->client.got.len >= n || f->client.closed);
	if (f->client.closed)
		fail_msg("closed during round trip: client \"%s\" server "
			 "\"%s\"",
			 f->client.reason, f->server.reason);
	assert_int_equal(f->server.got.len, n);
	assert_int_equal(f->client.got.len, n);
	assert_memory_equal(buf_head(&f->server.got), data, n);
	assert_memory_equal(buf_head(&f->client.got), data, n);
	free(data);
}

static void connect_client_sni(struct fixture *f, struct tls_ctx *ctx,
			       const char *sni)
{
	f->client.c =
		conn_connect(f->loop, (struct sockaddr *)&f->addr, f->addr_len,
			     ctx, sni, 0, peer_event, &f->client);
	assert_non_null(f->client.c);
}

static void connect_client(struct fixture *f, struct tls_ctx *ctx)
{
	connect_client_sni(f, ctx, "localhost");
}

static void test_plain_round_trip(void **state)
{
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);

	(void)state;
	for (int i = 0; i < nb; i++) {
		struct fixture f;

		fixture_setup(&f, bs[i]);
		connect_client(&f, NULL);
		RUN_UNTIL(&f, f.client.connected && f.server.c != NULL);
		assert_int_equal(conn_transport(f.client.c), CONN_XPRT_PLAIN);
		round_trip(&f, 1 << 20);
		fixture_teardown(&f);
	}
}

static void tls_round_trip_case(enum loop_backend b, int max_version, size_t n)
{
	struct fixture f;
	struct tls_ctx *cctx;

	fixture_setup(&f, b);
	f.server_tls = server_ctx(TLS1_2_VERSION, NULL, TLS_KTLS_AUTO);
	cctx = client_ctx(TLS1_2_VERSION, max_version, NULL, NULL, NULL,
			  TLS_KTLS_AUTO);
	connect_client(&f, cctx);
	RUN_UNTIL(&f, (f.client.tls_ready && f.server.tls_ready) ||
			      f.client.closed);
	assert_true(conn_is_tls(f.client.c));
	assert_string_equal(conn_tls_version(f.server.c),
			    max_version == TLS1_2_VERSION ? "TLSv1.2"
							  : "TLSv1.3");
	round_trip(&f, n);
	/* The server sends a large block on its own, too. */
	{
		uint8_t *big = malloc(n);

		fill_pattern(big, n, 7);
		f.server.echo = false;
		buf_clear(&f.client.got);
		if (f.server.c == NULL)
			fail_msg("server closed: %s", f.server.reason);
		assert_int_equal(conn_write(f.server.c, big, n), 0);
		RUN_UNTIL(&f, f.client.got.len >= n || f.client.closed);
		assert_memory_equal(buf_head(&f.client.got), big, n);
		free(big);
	}
	fixture_teardown(&f);
	tls_ctx_free(&cctx);
}

static void test_tls_round_trip(void **state)
{
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);

	(void)state;
	for (int i = 0; i < nb; i++) {
		tls_round_trip_case(bs[i], 0, 1 << 20);
		tls_round_trip_case(bs[i], TLS1_2_VERSION, 1 << 20);
	}
}

static void test_tls_alpn(void **state)
{
	static const char *const srv_alpn[] = {"h2", "http/1.1", "imap", "smtp",
					       NULL};
	static const char *const imap[] = {"imap", NULL};
	static const char *const both[] = {"smtp", "h2", NULL};
	static const char *const none[] = {"xmpp", NULL};
	const char *const *offers[] = {imap, both, none};
	const char *expect[] = {"imap", "h2", ""};
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);

	(void)state;
	for (int i = 0; i < nb; i++) {
		for (int k = 0; k < 3; k++) {
			struct fixture f;
			struct tls_ctx *cctx;

			fixture_setup(&f, bs[i]);
			f.server_tls = server_ctx(TLS1_2_VERSION, srv_alpn,
						  TLS_KTLS_AUTO);
			cctx = client_ctx(TLS1_2_VERSION, 0, offers[k], NULL,
					  NULL, TLS_KTLS_AUTO);
			connect_client(&f, cctx);
			RUN_UNTIL(&f,
				  (f.client.tls_ready && f.server.tls_ready) ||
					  f.client.closed);
			assert_string_equal(f.server.alpn, expect[k]);
			assert_string_equal(f.client.alpn, expect[k]);
			fixture_teardown(&f);
			tls_ctx_free(&cctx);
		}
	}
}

/* The server picks its certificate by the client's SNI; exact names and
 * one-label wildcards match, anything else gets the default. */
static void test_tls_sni(void **state)
{
	static const struct {
		const char *sni, *cn;
	} cases[] = {
		{"mta-sts.example.org", "mta-sts.example.org"},
		{"MTA-STS.Example.ORG", "mta-sts.example.org"},
		{"www.wild.test", "*.wild.test"},
		{"a.b.wild.test", "localhost"},
		{"other.test", "localhost"},
	};
	char crt[600], key[600], wcrt[600], wkey[600];
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);

	(void)state;
	assert_int_equal(
		testutil_make_cert(test_dir, "sts", "mta-sts.example.org"), 0);
	assert_int_equal(testutil_make_cert(test_dir, "wild", "*.wild.test"),
			 0);
	snprintf(crt, sizeof(crt), "%s/sts.crt", test_dir);
	snprintf(key, sizeof(key), "%s/sts.key", test_dir);
	snprintf(wcrt, sizeof(wcrt), "%s/wild.crt", test_dir);
	snprintf(wkey, sizeof(wkey), "%s/wild.key", test_dir);
	for (int i = 0; i < nb; i++) {
		for (size_t k = 0; k < sizeof(cases) / sizeof(*cases); k++) {
			struct fixture f;
			struct tls_ctx *cctx;

			fixture_setup(&f, bs[i]);
			f.server_tls =
				server_ctx(TLS1_2_VERSION, NULL, TLS_KTLS_AUTO);
			assert_int_equal(
				tls_ctx_add_sni_cert(f.server_tls,
						     "mta-sts.example.org", crt,
						     key),
				0);
			assert_int_equal(tls_ctx_add_sni_cert(f.server_tls,
							      "*.wild.test",
							      wcrt, wkey),
					 0);
			cctx = client_ctx(TLS1_2_VERSION, 0, NULL, NULL, NULL,
					  TLS_KTLS_AUTO);
			connect_client_sni(&f, cctx, cases[k].sni);
			RUN_UNTIL(&f,
				  (f.client.tls_ready && f.server.tls_ready) ||
					  f.client.closed);
			assert_string_equal(f.client.peer_cn, cases[k].cn);
			assert_string_equal(f.server.sni, cases[k].sni);
			fixture_teardown(&f);
			tls_ctx_free(&cctx);
		}
	}
}

static void test_tls_min_version_refused(void **state)
{
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);

	(void)state;
	for (int i = 0; i < nb; i++) {
		struct fixture f;
		struct tls_ctx *cctx;

		fixture_setup(&f, bs[i]);
		f.server_tls = server_ctx(TLS1_3_VERSION, NULL, TLS_KTLS_AUTO);
		cctx = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION, NULL, NULL,
				  NULL, TLS_KTLS_AUTO);
		connect_client(&f, cctx);
		RUN_UNTIL(&f, f.client.closed && f.server.closed);
		assert_false(f.server.tls_ready);
		assert_false(f.client.tls_ready);
		assert_non_null(strstr(f.server.reason, "tls"));
		fixture_teardown(&f);
		tls_ctx_free(&cctx);
	}
}

/* Garbage instead of a ClientHello: the server closes with a TLS reason,
 * nothing reaches the session. */
static void test_tls_garbage(void **state)
{
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);
	static const char junk[] = "EHLO not-tls.example\r\n\x16\x03\x01\xff";

	(void)state;
	for (int i = 0; i < nb; i++) {
		struct fixture f;
		int fd;

		fixture_setup(&f, bs[i]);
		f.server_tls = server_ctx(TLS1_2_VERSION, NULL, TLS_KTLS_AUTO);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		assert_int_equal(
			connect(fd, (struct sockaddr *)&f.addr, f.addr_len), 0);
		assert_int_equal(write(fd, junk, sizeof(junk) - 1),
				 (ssize_t)(sizeof(junk) - 1));
		RUN_UNTIL(&f, f.server.closed);
		assert_false(f.server.tls_ready);
		assert_int_equal(f.server.got.len, 0);
		assert_memory_equal(f.server.reason, "tls: ", 5);
		close(fd);
		fixture_teardown(&f);
	}
}

/* The client pipelines "STARTTLS" and an injected command in one packet
 * before the handshake: the server must never see the injected bytes. */
static void test_starttls_discards_plaintext(void **state)
{
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);

	(void)state;
	for (int i = 0; i < nb; i++) {
		struct fixture f;
		int fd;
		SSL_CTX *sctx;
		SSL *ssl;
		char line[64];
		size_t got = 0;
		static const char injected[] =
			"STARTTLS\r\nRCPT TO:<evil@example.org>\r\n";

		fixture_setup(&f, bs[i]);
		f.server.starttls =
			server_ctx(TLS1_2_VERSION, NULL, TLS_KTLS_AUTO);
		/* A blocking OpenSSL client on its own socket, driven
		 * between loop iterations. */
		fd = socket(AF_INET, SOCK_STREAM, 0);
		assert_int_equal(
			connect(fd, (struct sockaddr *)&f.addr, f.addr_len), 0);
		assert_int_equal(write(fd, injected, sizeof(injected) - 1),
				 (ssize_t)(sizeof(injected) - 1));
		RUN_UNTIL(&f, f.server.switched);
		/* Read "220 go\r\n" in plaintext. */
		while (got < 8) {
			ssize_t r;

			loop_run_once(f.loop, 10);
			r = recv(fd, line + got, 8 - got, MSG_DONTWAIT);
			if (r > 0)
				got += (size_t)r;
		}
		assert_memory_equal(line, "220 go\r\n", 8);
		sctx = SSL_CTX_new(TLS_client_method());
		ssl = SSL_new(sctx);
		SSL_set_fd(ssl, fd);
		SSL_set_connect_state(ssl);
		/* Drive the client handshake non-blocking, running the
		 * server's loop in between. */
		assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
		for (int k = 0; k < 4000; k++) {
			int r = SSL_do_handshake(ssl);

			if (r == 1)
				break;
			assert_true(
				SSL_get_error(ssl, r) == SSL_ERROR_WANT_READ ||
				SSL_get_error(ssl, r) == SSL_ERROR_WANT_WRITE);
			loop_run_once(f.loop, 5);
		}
		RUN_UNTIL(&f, f.server.tls_ready);
		assert_int_equal(SSL_write(ssl, "HELLO\r\n", 7), 7);
		RUN_UNTIL(&f, f.server.got.len >= 7 || f.server.closed);
		assert_int_equal(f.server.got.len, 7);
		assert_memory_equal(buf_head(&f.server.got), "HELLO\r\n", 7);
		SSL_free(ssl);
		SSL_CTX_free(sctx);
		close(fd);
		fixture_teardown(&f);
		tls_ctx_free(&f.server.starttls);
	}
}

/* Kernel TLS: transmit for TLS 1.3; transmit and receive for TLS 1.2.
 * Without kernel support, tls_ktls=yes must fall back to userspace. */
static void ktls_case(enum loop_backend b, int version, const char *ciphers,
		      const char *suites, bool have_ktls)
{
	struct fixture f;
	struct tls_ctx *cctx;

	fixture_setup(&f, b);
	f.server_tls = server_ctx(TLS1_2_VERSION, NULL, TLS_KTLS_YES);
	cctx = client_ctx(version, version, NULL, ciphers, suites,
			  TLS_KTLS_YES);
	connect_client(&f, cctx);
	RUN_UNTIL(&f, (f.client.tls_ready && f.server.tls_ready) ||
			      f.client.closed || f.server.closed);
	assert_true(f.server.tls_ready);
	if (have_ktls) {
		assert_true(f.server.ktls_tx);
		if (version == TLS1_2_VERSION)
			assert_true(f.server.ktls_rx);
		assert_int_equal(conn_transport(f.server.c),
				 CONN_XPRT_TLS_KERNEL);
	} else {
		assert_false(f.server.ktls_tx);
		assert_false(f.server.ktls_rx);
		assert_int_equal(conn_transport(f.server.c),
				 CONN_XPRT_TLS_USER);
	}
	round_trip(&f, 256 * 1024);
	fixture_teardown(&f);
	tls_ctx_free(&cctx);
}

static void test_ktls(void **state)
{
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);
	bool have = tls_ktls_available();
	const char *req = getenv("RINGMAIL_REQUIRE_KTLS");

	(void)state;
	if (req != NULL && strcmp(req, "1") == 0 && !have)
		fail_msg("RINGMAIL_REQUIRE_KTLS=1 but the kernel has no kTLS");
	for (int i = 0; i < nb; i++) {
		ktls_case(bs[i], TLS1_3_VERSION, NULL, "TLS_AES_128_GCM_SHA256",
			  have);
		ktls_case(bs[i], TLS1_3_VERSION, NULL, "TLS_AES_256_GCM_SHA384",
			  have);
		ktls_case(bs[i], TLS1_2_VERSION,
			  "ECDHE-ECDSA-AES128-GCM-SHA256", NULL, have);
	}
}

static int group_setup(void **state)
{
	(void)state;
	test_dir = testutil_mkdtemp("ringmail-conn");
	assert_non_null(test_dir);
	assert_int_equal(testutil_make_cert(test_dir, "srv", "localhost"), 0);
	snprintf(cert_path, sizeof(cert_path), "%s/srv.crt", test_dir);
	snprintf(key_path, sizeof(key_path), "%s/srv.key", test_dir);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	testutil_rmtree(test_dir);
	free(test_dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_round_trip),
		cmocka_unit_test(test_tls_round_trip),
		cmocka_unit_test(test_tls_alpn),
		cmocka_unit_test(test_tls_sni),
		cmocka_unit_test(test_tls_min_version_refused),
		cmocka_unit_test(test_tls_garbage),
		cmocka_unit_test(test_starttls_discards_plaintext),
		cmocka_unit_test(test_ktls),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
