/* tests/unit/test_http_client: the HTTP client against real servers on
 * loopback, on each loop backend: Debian's nghttpd (HTTP/2 over TLS,
 * many streams on one connection, counted from its frame log), a python3-h2
 * server (tests/integration/http_harness.py: 410, stalls, RST_STREAM,
 * GOAWAY, TCP close, a low stream limit), python's http.server for the
 * HTTP/1.1 keep-alive fallback (TLS and plain), dnsmasq for DNS, and
 * certificates from a test CA made with openssl(1). Plus the pure parts:
 * the HTTP/1.1 response reader table-driven, whole and byte by byte, and
 * the URL splitter. Exits 77 when nghttpd or python3-h2 is missing. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/dns.h"
#include "core/http/http_client-int.h"
#include "core/http/http_client.h"
#include "core/log.h"
#include "core/loop.h"
#include "testutil.h"

#define NGHTTPD "/usr/sbin/nghttpd"
#define PYTHON  "/usr/bin/python3"
#define DNSMASQ "/usr/sbin/dnsmasq"

static char *dir;
static char ca_crt[512], wrong_ca_crt[512], srv_crt[512], srv_key[512];
static char htdocs[512], nghttpd_log[512], h2_log[512], h1_log[512],
	h1p_log[512], h2s_log[512];
static char harness[512];
static uint16_t nghttpd_port, h2_port, h1_port, h1p_port, h2s_port, dns_port;
static pid_t pids[8];
static unsigned npids;
static bool have_dnsmasq;

/* ---- processes and files ---- */

static uint16_t free_port(int type)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, type, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (void *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (void *)&a, &al), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static pid_t spawn(char *const argv[], const char *out_path)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(out_path != NULL ? out_path : "/dev/null",
			      O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	pids[npids++] = pid;
	return pid;
}

static bool port_open(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok = connect(fd, (void *)&a, sizeof(a)) == 0;

	close(fd);
	return ok;
}

static void wait_port(uint16_t port)
{
	for (int i = 0; i < 500; i++) {
		if (port_open(port))
			return;
		usleep(10000);
	}
	fail_msg("nothing listens on port %u", port);
}

static int run(const char *cmd)
{
	int r = system(cmd);

	return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

/* Lines of @path starting with @prefix. */
static unsigned count_lines(const char *path, const char *prefix)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	unsigned n = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		n += strncmp(line, prefix, strlen(prefix)) == 0;
	fclose(f);
	return n;
}

/* Distinct "[id=N]" session ids in nghttpd's verbose log. */
static unsigned nghttpd_sessions(void)
{
	FILE *f = fopen(nghttpd_log, "r");
	char line[4096];
	unsigned max = 0, id;
	const char *p;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		p = strstr(line, "[id=");
		if (p != NULL && sscanf(p, "[id=%u]", &id) == 1 && id > max)
			max = id;
	}
	fclose(f);
	return max;
}

static void make_certs(void)
{
	char cmd[4096];

	snprintf(
		cmd, sizeof(cmd),
		"cd %s && "
		"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
		"-nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=TestCA "
		"2>/dev/null && "
		"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
		"-nodes -keyout wrong.key -out wrong.crt -days 2 "
		"-subj /CN=WrongCA 2>/dev/null && "
		"openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
		"-nodes -keyout srv.key -out srv.csr -subj /CN=localhost "
		"2>/dev/null && "
		"printf 'subjectAltName=DNS:localhost,DNS:h2.test,"
		"IP:127.0.0.1\\n' > ext && "
		"openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key "
		"-CAcreateserial -out srv.crt -days 2 -extfile ext "
		"2>/dev/null",
		dir);
	assert_int_equal(run(cmd), 0);
	snprintf(ca_crt, sizeof(ca_crt), "%s/ca.crt", dir);
	snprintf(wrong_ca_crt, sizeof(wrong_ca_crt), "%s/wrong.crt", dir);
	snprintf(srv_crt, sizeof(srv_crt), "%s/srv.crt", dir);
	snprintf(srv_key, sizeof(srv_key), "%s/srv.key", dir);
}

static void start_harness(const char *mode, uint16_t port, const char *log,
			  bool tls, const char *max_streams)
{
	char ps[16];
	char *argv[16];
	int n = 0;

	snprintf(ps, sizeof(ps), "%u", port);
	argv[n++] = PYTHON;
	argv[n++] = harness;
	argv[n++] = (char *)mode;
	argv[n++] = "--port";
	argv[n++] = ps;
	argv[n++] = "--log";
	argv[n++] = (char *)log;
	if (tls) {
		argv[n++] = "--cert";
		argv[n++] = srv_crt;
		argv[n++] = "--key";
		argv[n++] = srv_key;
	}
	if (max_streams != NULL) {
		argv[n++] = "--max-streams";
		argv[n++] = (char *)max_streams;
	}
	argv[n] = NULL;
	spawn(argv, NULL);
}

static int group_setup(void **state)
{
	char ps[16], cmd[1024], file[600], dnsp[16], hostrec[64];
	char *ng_argv[16];
	int n = 0;

	(void)state;
	if (access(NGHTTPD, X_OK) != 0 ||
	    run(PYTHON " -c 'import h2' 2>/dev/null") != 0) {
		fprintf(stderr, "skip: needs nghttpd and python3-h2\n");
		exit(77);
	}
	signal(SIGPIPE, SIG_IGN);
	if (getenv("TEST_DEBUG") != NULL)
		log_set_level(LOG_LV_DEBUG);
	dir = testutil_mkdtemp("ringmail-hclient");
	assert_non_null(dir);
	make_certs();
	snprintf(harness, sizeof(harness),
		 "%s/tests/integration/http_harness.py", testutil_srcdir());
	snprintf(htdocs, sizeof(htdocs), "%s/htdocs", dir);
	assert_int_equal(mkdir(htdocs, 0755), 0);
	snprintf(file, sizeof(file), "%s/hello.txt", htdocs);
	assert_int_equal(testutil_write_file(file, "hello over h2\n", 14), 0);
	snprintf(file, sizeof(file), "%s/big.bin", htdocs);
	{
		static char big[200000];

		memset(big, 'x', sizeof(big));
		assert_int_equal(testutil_write_file(file, big, sizeof(big)),
				 0);
	}
	snprintf(nghttpd_log, sizeof(nghttpd_log), "%s/nghttpd.log", dir);
	nghttpd_port = free_port(SOCK_STREAM);
	snprintf(ps, sizeof(ps), "%u", nghttpd_port);
	ng_argv[n++] = NGHTTPD;
	ng_argv[n++] = "-a";
	ng_argv[n++] = "127.0.0.1";
	ng_argv[n++] = "-d";
	ng_argv[n++] = htdocs;
	ng_argv[n++] = "--echo-upload";
	ng_argv[n++] = "-v";
	ng_argv[n++] = ps;
	ng_argv[n++] = srv_key;
	ng_argv[n++] = srv_crt;
	ng_argv[n] = NULL;
	spawn(ng_argv, nghttpd_log);

	snprintf(h2_log, sizeof(h2_log), "%s/h2.log", dir);
	snprintf(h2s_log, sizeof(h2s_log), "%s/h2s.log", dir);
	snprintf(h1_log, sizeof(h1_log), "%s/h1.log", dir);
	snprintf(h1p_log, sizeof(h1p_log), "%s/h1p.log", dir);
	h2_port = free_port(SOCK_STREAM);
	start_harness("h2", h2_port, h2_log, true, NULL);
	h2s_port = free_port(SOCK_STREAM);
	start_harness("h2", h2s_port, h2s_log, true, "2");
	h1_port = free_port(SOCK_STREAM);
	start_harness("h1", h1_port, h1_log, true, NULL);
	h1p_port = free_port(SOCK_STREAM);
	start_harness("h1", h1p_port, h1p_log, false, NULL);

	have_dnsmasq = access(DNSMASQ, X_OK) == 0;
	if (have_dnsmasq) {
		char *dargv[] = {DNSMASQ,
				 "--keep-in-foreground",
				 "--no-resolv",
				 "--no-hosts",
				 "--bind-interfaces",
				 "--listen-address=127.0.0.1",
				 "--user=",
				 "--pid-file=",
				 dnsp,
				 hostrec,
				 "--local=/test/",
				 NULL};

		dns_port = free_port(SOCK_DGRAM);
		snprintf(dnsp, sizeof(dnsp), "--port=%u", dns_port);
		snprintf(hostrec, sizeof(hostrec),
			 "--host-record=h2.test,127.0.0.1");
		spawn(dargv, NULL);
	}
	wait_port(nghttpd_port);
	wait_port(h2_port);
	wait_port(h2s_port);
	wait_port(h1_port);
	wait_port(h1p_port);
	(void)cmd;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	for (unsigned i = 0; i < npids; i++) {
		kill(pids[i], SIGTERM);
		waitpid(pids[i], NULL, 0);
	}
	if (dir != NULL) {
		testutil_rmtree(dir);
		free(dir);
	}
	return 0;
}

/* ---- a client on a loop ---- */

struct fx {
	struct loop *loop;
	struct dns_resolver *dns;
	struct http_client *cl;
};

struct result {
	bool done;
	int err;
	int status;
	char reason[256];
	char version[16];
	char body[256];
	size_t body_len;
	uint64_t conn_id;
	char xbig[8];
};

static void on_done(int err, const struct http_client_resp *resp,
		    const char *reason, void *arg)
{
	struct result *r = arg;

	assert_false(r->done); /* exactly once */
	r->done = true;
	r->err = err;
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
	if (resp != NULL) {
		r->status = resp->status;
		snprintf(r->version, sizeof(r->version), "%s", resp->version);
		r->body_len = resp->body_len;
		snprintf(r->body, sizeof(r->body), "%.*s",
			 (int)(resp->body_len < 255 ? resp->body_len : 255),
			 (const char *)resp->body);
		r->conn_id = resp->conn_id;
	}
}

static void fx_open(struct fx *f, enum loop_backend b,
		    const struct http_client_opts *o_in, bool dns_local)
{
	struct loop_opts lo = {.backend = b};
	struct http_client_opts o = {0};
	char server[32];

	memset(f, 0, sizeof(*f));
	if (o_in != NULL)
		o = *o_in;
	assert_int_equal(loop_new(&lo, &f->loop), 0);
	snprintf(server, sizeof(server), "127.0.0.1:%u", dns_port);
	assert_int_equal(
		dns_resolver_new(f->loop, dns_local ? server : NULL, &f->dns),
		0);
	o.dns = f->dns;
	if (o.trust_file == NULL)
		o.trust_file = ca_crt;
	assert_int_equal(http_client_new(f->loop, &o, &f->cl), 0);
}

static void fx_close(struct fx *f)
{
	http_client_free(&f->cl);
	dns_resolver_free(&f->dns);
	/* Let closed connections deliver their last events. */
	for (int i = 0; i < 20 && loop_conn_count(f->loop) > 0; i++)
		loop_run_once(f->loop, 10);
	loop_free(&f->loop);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Run until every one of @n results is done (bounded). */
static void wait_all(struct fx *f, struct result *r, unsigned n,
		     uint64_t max_ms)
{
	uint64_t end = now_ms() + max_ms;
	unsigned left;

	do {
		left = 0;
		for (unsigned i = 0; i < n; i++)
			left += !r[i].done;
		if (left == 0)
			return;
		loop_run_once(f->loop, 10);
	} while (now_ms() < end);
	fail_msg("%u of %u requests not done after %" PRIu64 " ms", left, n,
		 max_ms);
}

static void spin(struct fx *f, uint64_t ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end)
		loop_run_once(f->loop, 10);
}

static struct http_client_req req_to(uint16_t port, const char *path)
{
	struct http_client_req q = {
		.host = "localhost",
		.port = port,
		.path = path,
		.timeout_ms = 10000,
	};

	return q;
}

static void do_one(struct fx *f, const struct http_client_req *q,
		   struct result *r)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(http_client_request(f->cl, q, on_done, r), 0);
	assert_false(r->done); /* never from inside the call */
	wait_all(f, r, 1, 15000);
}

#define FOR_EACH_BACKEND(b)               \
	enum loop_backend bs_[2];         \
	int nb_ = testutil_backends(bs_); \
	for (int bi_ = 0; bi_ < nb_ && ((b) = bs_[bi_], 1); bi_++)

/* ---- nghttpd: many streams over one connection ---- */

static void test_h2_many_streams_one_connection(void **state)
{
	enum loop_backend b;

	(void)state;
	FOR_EACH_BACKEND(b)
	{
		enum { N = 300 };
		static struct result r[N];
		/* Past nghttpd's 100 streams: the rest wait their turn on
		 * the same connection. */
		struct http_client_opts o = {.max_conns_per_origin = 1};
		struct http_client_stats st;
		struct fx f;
		unsigned before = nghttpd_sessions();
		char body[64];

		fx_open(&f, b, &o, false);
		memset(r, 0, sizeof(r));
		for (unsigned i = 0; i < N; i++) {
			struct http_client_req q =
				req_to(nghttpd_port, "/hello.txt");

			if (i % 2 == 1) {
				/* Every other one a POST echoed back. */
				snprintf(body, sizeof(body), "token-%u", i);
				q.path = "/echo";
				q.body = body;
				q.body_len = strlen(body);
			}
			assert_int_equal(
				http_client_request(f.cl, &q, on_done, &r[i]),
				0);
		}
		wait_all(&f, r, N, 20000);
		for (unsigned i = 0; i < N; i++) {
			assert_int_equal(r[i].err, 0);
			assert_int_equal(r[i].status, 200);
			assert_string_equal(r[i].version, "h2");
			if (i % 2 == 1) {
				snprintf(body, sizeof(body), "token-%u", i);
				assert_string_equal(r[i].body, body);
			} else {
				assert_string_equal(r[i].body,
						    "hello over h2\n");
			}
			assert_true(r[i].conn_id == r[0].conn_id);
		}
		http_client_get_stats(f.cl, &st);
		assert_int_equal(st.conns_opened, 1);
		assert_int_equal(st.conns_open, 1);
		assert_int_equal(st.requests_live, 0);
		/* The server saw exactly one more session. */
		fx_close(&f);
		usleep(100000);
		assert_int_equal(nghttpd_sessions(), before + 1);
	}
}

/* Idle connections: reused within the idle timeout, closed after it, a
 * new one after a quiet spell. */
static void test_h2_idle_and_quiet_spell(void **state)
{
	enum loop_backend b;

	(void)state;
	FOR_EACH_BACKEND(b)
	{
		struct http_client_opts o = {.idle_timeout_ms = 400};
		struct http_client_req q = req_to(nghttpd_port, "/hello.txt");
		struct http_client_stats st;
		struct result r1, r2, r3;
		struct fx f;

		fx_open(&f, b, &o, false);
		do_one(&f, &q, &r1);
		assert_int_equal(r1.status, 200);
		spin(&f, 150);
		do_one(&f, &q, &r2);
		assert_int_equal(r2.status, 200);
		assert_true(r2.conn_id == r1.conn_id);
		spin(&f, 900); /* quiet spell past the idle timeout */
		http_client_get_stats(f.cl, &st);
		assert_int_equal(st.conns_open, 0);
		do_one(&f, &q, &r3);
		assert_int_equal(r3.err, 0);
		assert_int_equal(r3.status, 200);
		assert_true(r3.conn_id != r1.conn_id);
		http_client_get_stats(f.cl, &st);
		assert_int_equal(st.conns_opened, 2);
		fx_close(&f);
	}
}

/* ---- TLS verification ---- */

static void test_verify_failures(void **state)
{
	enum loop_backend b;

	(void)state;
	FOR_EACH_BACKEND(b)
	{
		struct http_client_opts wrong = {.trust_file = wrong_ca_crt};
		struct http_client_req q = req_to(nghttpd_port, "/hello.txt");
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_port = htons(nghttpd_port),
					.sin_addr.s_addr =
						htonl(INADDR_LOOPBACK)};
		struct result r;
		struct fx f;

		/* A CA that did not sign the server's certificate. */
		fx_open(&f, b, &wrong, false);
		do_one(&f, &q, &r);
		assert_int_equal(r.err, -EKEYREJECTED);
		assert_non_null(strstr(r.reason, "certificate verify failed"));
		/* The same without verification (spec D.9 "_" domains). */
		q.insecure = true;
		do_one(&f, &q, &r);
		assert_int_equal(r.err, 0);
		assert_int_equal(r.status, 200);
		fx_close(&f);

		/* The right CA, a name the certificate does not carry. */
		fx_open(&f, b, NULL, false);
		q = req_to(nghttpd_port, "/hello.txt");
		q.host = "wrong.example";
		q.addr = (const struct sockaddr *)&a;
		q.addr_len = sizeof(a);
		do_one(&f, &q, &r);
		assert_int_equal(r.err, -EKEYREJECTED);
		assert_non_null(strstr(r.reason, "hostname mismatch"));
		/* An IP literal is verified against the IP address SAN. */
		q = req_to(nghttpd_port, "/hello.txt");
		q.host = "127.0.0.1";
		do_one(&f, &q, &r);
		assert_int_equal(r.err, 0);
		assert_int_equal(r.status, 200);
		fx_close(&f);
	}
}

/* ---- connect failures and timeouts ---- */

static void test_connect_refused_and_timeout(void **state)
{
	enum loop_backend b;

	(void)state;
	FOR_EACH_BACKEND(b)
	{
		struct http_client_opts o = {.connect_timeout_ms = 300};
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_addr.s_addr =
						htonl(INADDR_LOOPBACK)};
		socklen_t al = sizeof(a);
		int lfd, fill[4];
		struct http_client_req q;
		struct result r;
		struct fx f;
		uint64_t t0, dt;

		fx_open(&f, b, &o, false);
		/* Nothing listens: refused. */
		q = req_to(free_port(SOCK_STREAM), "/");
		do_one(&f, &q, &r);
		assert_int_equal(r.err, -ECONNREFUSED);

		/* A listener that never accepts, its backlog full: the
		 * TLS handshake (or the SYN) never completes. */
		lfd = socket(AF_INET, SOCK_STREAM, 0);
		assert_int_equal(bind(lfd, (void *)&a, sizeof(a)), 0);
		assert_int_equal(listen(lfd, 0), 0);
		assert_int_equal(getsockname(lfd, (void *)&a, &al), 0);
		for (int i = 0; i < 4; i++) {
			fill[i] =
				socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
			(void)connect(fill[i], (void *)&a, sizeof(a));
		}
		for (int round = 0; round < 2; round++) {
			q = req_to(ntohs(a.sin_port), "/");
			t0 = now_ms();
			do_one(&f, &q, &r);
			dt = now_ms() - t0;
			assert_int_equal(r.err, -ETIMEDOUT);
			assert_non_null(strstr(r.reason, "connect timeout"));
			assert_true(dt >= 290 && dt < 3000);
			/* Again after a quiet spell: the timer is re-armed
			 * per attempt. */
			spin(&f, 500);
		}
		for (int i = 0; i < 4; i++)
			close(fill[i]);
		close(lfd);
		fx_close(&f);
	}
}

/* ---- the scriptable h2 server ---- */

static void test_h2_status_and_request_timeout(void **state)
{
	enum loop_backend b;

	(void)state;
	FOR_EACH_BACKEND(b)
	{
		struct http_client_req q = req_to(h2_port, "/status/410");
		struct http_client_stats st;
		struct result r, r2, r3;
		struct fx f;
		uint64_t t0, dt;

		fx_open(&f, b, NULL, false);
		do_one(&f, &q, &r);
		assert_int_equal(r.err, 0);
		assert_int_equal(r.status, 410);
		assert_string_equal(r.body, "status 410");

		/* A stalled stream times out; the connection stays. */
		q = req_to(h2_port, "/stall");
		q.timeout_ms = 300;
		t0 = now_ms();
		do_one(&f, &q, &r2);
		dt = now_ms() - t0;
		assert_int_equal(r2.err, -ETIMEDOUT);
		assert_true(dt >= 290 && dt < 3000);
		spin(&f, 300); /* quiet spell */
		q = req_to(h2_port, "/ok");
		do_one(&f, &q, &r3);
		assert_int_equal(r3.err, 0);
		assert_int_equal(r3.status, 200);
		assert_true(r3.conn_id == r.conn_id);
		http_client_get_stats(f.cl, &st);
		assert_int_equal(st.conns_opened, 1);
		fx_close(&f);
	}
}

static void test_h2_server_goes_away(void **state)
{
	enum loop_backend b;

	(void)state;
	FOR_EACH_BACKEND(b)
	{
		enum { N = 10 };
		struct result r[N];
		struct http_client_stats st;
		struct http_client_req q;
		struct fx f;

		fx_open(&f, b, NULL, false);
		/* RST_STREAM on one stream: only that request fails. */
		memset(r, 0, sizeof(r));
		for (unsigned i = 0; i < 3; i++) {
			q = req_to(h2_port, i == 1 ? "/rst" : "/ok");
			assert_int_equal(
				http_client_request(f.cl, &q, on_done, &r[i]),
				0);
		}
		wait_all(&f, r, 3, 10000);
		assert_int_equal(r[0].status, 200);
		assert_int_equal(r[1].err, -ECONNRESET);
		assert_non_null(strstr(r[1].reason, "INTERNAL_ERROR"));
		assert_int_equal(r[2].status, 200);
		assert_true(r[0].conn_id == r[2].conn_id);

		/* GOAWAY naming the first stream last: the others were
		 * never processed and are re-sent on a new connection.
		 * (All ten go out together: the server's SETTINGS are in.) */
		memset(r, 0, sizeof(r));
		for (unsigned i = 0; i < N; i++) {
			q = req_to(h2_port, i == 0 ? "/goaway" : "/ok");
			assert_int_equal(
				http_client_request(f.cl, &q, on_done, &r[i]),
				0);
		}
		wait_all(&f, r, N, 10000);
		for (unsigned i = 0; i < N; i++) {
			assert_int_equal(r[i].err, 0);
			assert_int_equal(r[i].status, 200);
		}
		http_client_get_stats(f.cl, &st);
		assert_true(st.requests_retried >= 1);
		assert_true(st.conns_opened >= 2);

		/* TCP closed mid-stream: everything in flight fails. */
		memset(r, 0, sizeof(r));
		q = req_to(h2_port, "/stall");
		assert_int_equal(http_client_request(f.cl, &q, on_done, &r[0]),
				 0);
		spin(&f, 100);
		q = req_to(h2_port, "/close");
		assert_int_equal(http_client_request(f.cl, &q, on_done, &r[1]),
				 0);
		wait_all(&f, r, 2, 10000);
		assert_int_equal(r[0].err, -ECONNRESET);
		assert_int_equal(r[1].err, -ECONNRESET);
		/* And the next request gets a new connection. */
		q = req_to(h2_port, "/ok");
		do_one(&f, &q, &r[2]);
		assert_int_equal(r[2].status, 200);
		fx_close(&f);
	}
}

/* The server allows 2 streams: more connections, at most the limit. */
static void test_h2_stream_limit_opens_connections(void **state)
{
	enum loop_backend b;

	(void)state;
	FOR_EACH_BACKEND(b)
	{
		enum { N = 8 };
		struct http_client_opts o = {.max_conns_per_origin = 3};
		struct result r[N];
		struct http_client_stats st;
		unsigned before = count_lines(h2s_log, "conn ");
		struct fx f;

		fx_open(&f, b, &o, false);
		memset(r, 0, sizeof(r));
		/* One first, so the server's SETTINGS are known. */
		{
			struct http_client_req q = req_to(h2s_port, "/ok");

			do_one(&f, &q, &r[0]);
		}
		memset(r, 0, sizeof(r));
		for (unsigned i = 0; i < N; i++) {
			struct http_client_req q =
				req_to(h2s_port, "/delay/300");

			assert_int_equal(
				http_client_request(f.cl, &q, on_done, &r[i]),
				0);
		}
		wait_all(&f, r, N, 10000);
		for (unsigned i = 0; i < N; i++)
			assert_int_equal(r[i].status, 200);
		http_client_get_stats(f.cl, &st);
		assert_int_equal(st.conns_opened, 3);
		assert_int_equal(count_lines(h2s_log, "conn ") - before, 3);
		fx_close(&f);
	}
}

static void test_bounds(void **state)
{
	enum loop_backend b;

	(void)state;
	FOR_EACH_BACKEND(b)
	{
		struct http_client_opts o = {.max_queued = 4,
					     .max_header_bytes = 2048};
		struct http_client_req q = req_to(nghttpd_port, "/big.bin");
		struct result r, rq[5];
		struct fx f;

		fx_open(&f, b, &o, false);
		q.body_max = 1000;
		do_one(&f, &q, &r);
		assert_int_equal(r.err, -EMSGSIZE);
		q.body_max = 300000;
		do_one(&f, &q, &r);
		assert_int_equal(r.err, 0);
		assert_int_equal(r.body_len, 200000);
		/* A response header over the bound: h2 and http/1.1. */
		q = req_to(h2_port, "/bighdr/4000");
		do_one(&f, &q, &r);
		assert_int_equal(r.err, -EMSGSIZE);
		q = req_to(h1_port, "/bighdr/4000");
		do_one(&f, &q, &r);
		assert_int_equal(r.err, -EMSGSIZE);
		q = req_to(h1_port, "/bighdr/1000");
		do_one(&f, &q, &r);
		assert_int_equal(r.err, 0);
		/* The queue bound. */
		memset(rq, 0, sizeof(rq));
		q = req_to(nghttpd_port, "/hello.txt");
		for (unsigned i = 0; i < 4; i++)
			assert_int_equal(
				http_client_request(f.cl, &q, on_done, &rq[i]),
				0);
		assert_int_equal(http_client_request(f.cl, &q, on_done, &rq[4]),
				 -ENOBUFS);
		wait_all(&f, rq, 4, 10000);
		/* Bad requests. */
		q.path = "no-slash";
		assert_int_equal(http_client_request(f.cl, &q, on_done, &r),
				 -EINVAL);
		fx_close(&f);
	}
}

/* ---- HTTP/1.1 fallback ---- */

static void test_h1_fallback_keep_alive(void **state)
{
	enum loop_backend b;

	(void)state;
	FOR_EACH_BACKEND(b)
	{
		enum { N = 20 };
		struct http_client_opts o = {.max_conns_per_origin = 1};
		struct result r[N];
		unsigned conns = count_lines(h1_log, "conn ");
		unsigned reqs = count_lines(h1_log, "req ");
		char body[32];
		struct fx f;

		fx_open(&f, b, &o, false);
		memset(r, 0, sizeof(r));
		for (unsigned i = 0; i < N; i++) {
			struct http_client_req q = req_to(h1_port, "/echo");

			snprintf(body, sizeof(body), "tok%u", i);
			q.body = body;
			q.body_len = strlen(body);
			assert_int_equal(
				http_client_request(f.cl, &q, on_done, &r[i]),
				0);
		}
		wait_all(&f, r, N, 15000);
		for (unsigned i = 0; i < N; i++) {
			snprintf(body, sizeof(body), "tok%u", i);
			assert_int_equal(r[i].err, 0);
			assert_string_equal(r[i].version, "http/1.1");
			assert_string_equal(r[i].body, body);
		}
		/* One TCP connection carried all of them. */
		assert_int_equal(count_lines(h1_log, "conn ") - conns, 1);
		assert_int_equal(count_lines(h1_log, "req ") - reqs, N);

		/* A status, and a quiet spell keeps the connection. */
		{
			struct http_client_req q =
				req_to(h1_port, "/status/410");
			struct result r1;

			spin(&f, 300);
			do_one(&f, &q, &r1);
			assert_int_equal(r1.status, 410);
			assert_int_equal(count_lines(h1_log, "conn ") - conns,
					 1);
		}
		/* Server closing mid-response. */
		{
			struct http_client_req q = req_to(h1_port, "/close");
			struct result r1;

			do_one(&f, &q, &r1);
			assert_int_equal(r1.err, -ECONNRESET);
		}
		fx_close(&f);
	}
}

static void test_h1_plain_and_more_connections(void **state)
{
	enum loop_backend b;

	(void)state;
	FOR_EACH_BACKEND(b)
	{
		enum { N = 6 };
		struct http_client_opts o = {.max_conns_per_origin = 3};
		struct result r[N];
		unsigned conns = count_lines(h1p_log, "conn ");
		struct fx f;

		fx_open(&f, b, &o, false);
		memset(r, 0, sizeof(r));
		for (unsigned i = 0; i < N; i++) {
			struct http_client_req q =
				req_to(h1p_port, "/delay/200");

			q.plain = true;
			assert_int_equal(
				http_client_request(f.cl, &q, on_done, &r[i]),
				0);
		}
		wait_all(&f, r, N, 15000);
		for (unsigned i = 0; i < N; i++) {
			assert_int_equal(r[i].err, 0);
			assert_string_equal(r[i].body, "delayed");
		}
		/* Busy HTTP/1.1 connections: more of them, up to 3. */
		assert_int_equal(count_lines(h1p_log, "conn ") - conns, 3);
		fx_close(&f);
	}
}

/* ---- DNS through c-ares ---- */

static void test_dns(void **state)
{
	enum loop_backend b;

	(void)state;
	if (!have_dnsmasq) {
		fprintf(stderr, "skip test_dns: no dnsmasq\n");
		return;
	}
	FOR_EACH_BACKEND(b)
	{
		struct http_client_req q = req_to(nghttpd_port, "/hello.txt");
		struct result r;
		struct fx f;

		fx_open(&f, b, NULL, true);
		q.host = "h2.test";
		for (int i = 0; i < 100 && !port_open(dns_port); i++)
			usleep(10000); /* (UDP: no real check; give it time) */
		do_one(&f, &q, &r);
		assert_int_equal(r.err, 0);
		assert_int_equal(r.status, 200);
		q.host = "nope.test";
		do_one(&f, &q, &r);
		assert_int_equal(r.err, -EHOSTUNREACH);
		fx_close(&f);
	}
}

/* ---- pure parts ---- */

struct h1_case {
	const char *in;
	bool head;
	int want; /* HC_H1_OK, HC_H1_AGAIN (needs EOF), or -errno */
	int status;
	const char *body;
	bool keep_alive;
};

static const struct h1_case h1_cases[] = {
	{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false, HC_H1_OK, 200,
	 "ok", true},
	{"HTTP/1.1 410 Gone\r\ncontent-length: 0\r\n\r\n", false, HC_H1_OK, 410,
	 "", true},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	 "2\r\nab\r\n3;x=y\r\ncde\r\n0\r\nT: v\r\n\r\n",
	 false, HC_H1_OK, 200, "abcde", true},
	{"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"
	 "Content-Length: 1\r\n\r\nx",
	 false, HC_H1_OK, 201, "x", true},
	{"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nz",
	 false, HC_H1_OK, 200, "z", false},
	{"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nz", false, HC_H1_OK, 200,
	 "z", false},
	{"HTTP/1.1 200 OK\n\nuntil close", false, HC_H1_AGAIN, 200,
	 "until close", false},
	{"HTTP/1.1 204 No Content\r\n\r\n", false, HC_H1_OK, 204, "", true},
	{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, HC_H1_OK, 200,
	 "", true},
	{"\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, HC_H1_OK,
	 200, "", true},
	{"HTTP/1.1 2000 OK\r\n\r\n", false, -EPROTO, 0, NULL, false},
	{"HTTP/2 200\r\n\r\n", false, -EPROTO, 0, NULL, false},
	{"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", false, -EPROTO, 0, NULL,
	 false},
	{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
	 false, -EPROTO, 0, NULL, false},
	{"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, -EPROTO, 0,
	 NULL, false},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false,
	 -EPROTO, 0, NULL, false},
	{"HTTP/1.1 200 OK\r\nbad field\r\n\r\n", false, -EPROTO, 0, NULL,
	 false},
	{"HTTP/1.1 101 Switching\r\n\r\n", false, -EPROTO, 0, NULL, false},
	{"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n0123456789abcdefghij",
	 false, -EMSGSIZE, 0, NULL, false}, /* body_max 16 */
};

static int h1_run(const struct h1_case *c, size_t step, struct hc_resp *resp,
		  struct hc_h1 *p)
{
	size_t len = strlen(c->in), have = 0, off = 0, used;
	uint8_t buf[512];
	int r = HC_H1_AGAIN;

	hc_resp_init(resp, 200, 16);
	hc_h1_init(p, resp, c->head);
	/* Feed @step new bytes at a time; unconsumed ones stay. */
	while (off < len || have > 0) {
		size_t n = len - off < step ? len - off : step;

		memcpy(buf + have, c->in + off, n);
		have += n;
		off += n;
		r = hc_h1_parse(p, buf, have, &used);
		memmove(buf, buf + used, have - used);
		have -= used;
		if (r != HC_H1_AGAIN || (n == 0 && used == 0))
			break;
	}
	if (r == HC_H1_AGAIN && off == len && c->want == HC_H1_AGAIN)
		r = hc_h1_eof(p) == HC_H1_OK ? HC_H1_AGAIN : -ECONNRESET;
	return r;
}

static void test_h1_reader(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(h1_cases) / sizeof(h1_cases[0]); i++) {
		const struct h1_case *c = &h1_cases[i];
		size_t steps[] = {strlen(c->in), 1, 2, 7};

		for (size_t s = 0; s < 4; s++) {
			struct hc_resp resp;
			struct hc_h1 p;
			int r = h1_run(c, steps[s], &resp, &p);

			if (r != c->want)
				fail_msg("case %zu step %zu: %d want %d (%s)",
					 i, steps[s], r, c->want, p.err);
			if (c->want >= 0) {
				assert_int_equal(resp.status, c->status);
				assert_int_equal(resp.body.len,
						 strlen(c->body));
				assert_memory_equal(buf_head(&resp.body),
						    c->body, resp.body.len);
				assert_int_equal(p.keep_alive, c->keep_alive);
			}
			hc_resp_free(&resp);
		}
	}
}

static void test_h1_reader_field_bound(void **state)
{
	char in[1024];
	struct hc_resp resp;
	struct hc_h1 p;
	size_t used;

	(void)state;
	/* An unterminated field line longer than the budget. */
	snprintf(in, sizeof(in), "HTTP/1.1 200 OK\r\nX: %0300d", 0);
	hc_resp_init(&resp, 200, 16);
	hc_h1_init(&p, &resp, false);
	assert_int_equal(
		hc_h1_parse(&p, (const uint8_t *)in, strlen(in), &used),
		-EMSGSIZE);
	hc_resp_free(&resp);
}

static void test_parse_url(void **state)
{
	struct http_client_req q;
	char buf[256];

	(void)state;
	memset(&q, 0, sizeof(q));
	assert_int_equal(
		http_client_parse_url("https://notifications.delta.chat/notify",
				      buf, sizeof(buf), &q),
		0);
	assert_string_equal(q.host, "notifications.delta.chat");
	assert_string_equal(q.path, "/notify");
	assert_int_equal(q.port, 0);
	assert_false(q.plain);
	assert_int_equal(http_client_parse_url("http://[::1]:8080", buf,
					       sizeof(buf), &q),
			 0);
	assert_string_equal(q.host, "::1");
	assert_string_equal(q.path, "/");
	assert_int_equal(q.port, 8080);
	assert_true(q.plain);
	assert_int_equal(http_client_parse_url("https://h:443/a?b=c", buf,
					       sizeof(buf), &q),
			 0);
	assert_string_equal(q.path, "/a?b=c");
	assert_int_equal(
		http_client_parse_url("ftp://x/", buf, sizeof(buf), &q),
		-EINVAL);
	assert_int_equal(
		http_client_parse_url("https://:80/", buf, sizeof(buf), &q),
		-EINVAL);
	assert_int_equal(
		http_client_parse_url("https://h:99999/", buf, sizeof(buf), &q),
		-EINVAL);
	assert_int_equal(
		http_client_parse_url("https://h?x", buf, sizeof(buf), &q),
		-EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_h1_reader),
		cmocka_unit_test(test_h1_reader_field_bound),
		cmocka_unit_test(test_parse_url),
		cmocka_unit_test(test_h2_many_streams_one_connection),
		cmocka_unit_test(test_h2_idle_and_quiet_spell),
		cmocka_unit_test(test_verify_failures),
		cmocka_unit_test(test_connect_refused_and_timeout),
		cmocka_unit_test(test_h2_status_and_request_timeout),
		cmocka_unit_test(test_h2_server_goes_away),
		cmocka_unit_test(test_h2_stream_limit_opens_connections),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_h1_fallback_keep_alive),
		cmocka_unit_test(test_h1_plain_and_more_connections),
		cmocka_unit_test(test_dns),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
