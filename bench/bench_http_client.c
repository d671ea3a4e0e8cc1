/* bench/bench_http_client: requests/s of core/http/http_client over one
 * HTTP/2 connection to Debian's nghttpd on loopback (TLS, certificate
 * made here with tls_selfsigned_write and trusted as tls_trust_file).
 *
 *   bench_http_client [-n REQUESTS] [-w IN_FLIGHT] [-m get|post]
 *                     [-c CONNS]
 *
 * Keeps IN_FLIGHT requests outstanding (a new one from each done
 * callback) until REQUESTS are done; prints requests/s, latency
 * p50/p99 (submission to done) and the client's CPU per request. POST
 * sends a 64-byte body (a push token's size). When h2load (Debian
 * nghttp2-client) is installed, it is run the same way against the same
 * server for comparison. The backend comes from RINGMAIL_IO_BACKEND
 * (default auto). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/dns.h"
#include "core/http/http_client.h"
#include "core/loop.h"
#include "core/tls.h"

#define NGHTTPD "/usr/sbin/nghttpd"

struct bench {
	struct loop *loop;
	struct http_client *cl;
	struct http_client_req req;
	unsigned total, started, done, failed, inflight_max;
	uint64_t *lat_us; /* per request */
	uint64_t *start_us;
	uint64_t conn_id;
	bool mixed_conns;
};

struct slot {
	struct bench *b;
	unsigned idx;
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void bench_submit(struct bench *b);

static void bench_done(int err, const struct http_client_resp *resp,
		       const char *reason, void *arg)
{
	struct slot *s = arg;
	struct bench *b = s->b;

	b->lat_us[s->idx] = now_us() - b->start_us[s->idx];
	free(s);
	b->done++;
	if (err != 0 || resp->status != 200) {
		if (b->failed++ < 5)
			fprintf(stderr, "request failed: %d %s\n", err, reason);
	} else if (b->conn_id == 0) {
		b->conn_id = resp->conn_id;
	} else if (resp->conn_id != b->conn_id) {
		b->mixed_conns = true;
	}
	if (b->failed > 100) {
		fprintf(stderr, "too many failures\n");
		exit(1);
	}
	if (b->started < b->total)
		bench_submit(b);
}

static void bench_submit(struct bench *b)
{
	struct slot *s = malloc(sizeof(*s));

	s->b = b;
	s->idx = b->started++;
	b->start_us[s->idx] = now_us();
	if (http_client_request(b->cl, &b->req, bench_done, s) < 0) {
		fprintf(stderr, "submit failed\n");
		exit(1);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint16_t free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	bind(fd, (void *)&a, sizeof(a));
	getsockname(fd, (void *)&a, &al);
	close(fd);
	return ntohs(a.sin_port);
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

/* One run of @n requests with @w in flight; prints its line. */
static int bench_run(struct bench *b, unsigned n, unsigned w, const char *label)
{
	uint64_t t0, t1;
	double c0, c1, secs;
	uint64_t *sorted;

	b->total = n;
	b->started = b->done = b->failed = 0;
	b->lat_us = calloc(n, sizeof(uint64_t));
	b->start_us = calloc(n, sizeof(uint64_t));
	c0 = cpu_s();
	t0 = now_us();
	for (unsigned i = 0; i < w && b->started < n; i++)
		bench_submit(b);
	while (b->done < n)
		if (loop_run_once(b->loop, 100) < 0)
			return -1;
	t1 = now_us();
	c1 = cpu_s();
	secs = (double)(t1 - t0) / 1e6;
	sorted = b->lat_us;
	qsort(sorted, n, sizeof(uint64_t), cmp_u64);
	if (label != NULL)
		printf("%-5s n=%u in_flight=%u: %.0f req/s, p50 %.2f ms, "
		       "p99 %.2f ms, client CPU %.1f us/req, failed=%u\n",
		       label, n, w, n / secs, sorted[n / 2] / 1000.0,
		       sorted[(size_t)(n * 0.99)] / 1000.0, (c1 - c0) * 1e6 / n,
		       b->failed);
	free(b->lat_us);
	free(b->start_us);
	return b->failed == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/ringmail-bench-hc-XXXXXX";
	char cert[256], key[256], docs[256], file[300], ps[16];
	static const char *const sans[] = {"DNS:localhost", "IP:127.0.0.1",
					   NULL};
	const char *be_env = getenv("RINGMAIL_IO_BACKEND");
	struct loop_opts lo = {0};
	struct http_client_opts o = {0};
	struct http_client_stats st;
	struct bench b;
	struct dns_resolver *dns = NULL;
	unsigned n = 100000, w = 100, conns = 1;
	bool post = false;
	uint16_t port;
	pid_t pid;
	int opt, fd, rc;

	while ((opt = getopt(argc, argv, "n:w:m:c:")) != -1) {
		switch (opt) {
		case 'n':
			n = (unsigned)atoi(optarg);
			break;
		case 'w':
			w = (unsigned)atoi(optarg);
			break;
		case 'm':
			post = strcmp(optarg, "post") == 0;
			break;
		case 'c':
			conns = (unsigned)atoi(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: %s [-n N] [-w IN_FLIGHT] "
				"[-m get|post] [-c CONNS]\n",
				argv[0]);
			return 2;
		}
	}
	if (access(NGHTTPD, X_OK) != 0) {
		fprintf(stderr, "needs nghttpd (Debian nghttp2-server)\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(cert, sizeof(cert), "%s/c.crt", dir);
	snprintf(key, sizeof(key), "%s/c.key", dir);
	snprintf(docs, sizeof(docs), "%s/docs", dir);
	mkdir(docs, 0755);
	snprintf(file, sizeof(file), "%s/p", docs);
	fd = open(file, O_WRONLY | O_CREAT, 0644);
	if (fd < 0 || write(fd, "ok\n", 3) != 3)
		return 1;
	close(fd);
	if (tls_selfsigned_write(cert, key, "localhost", sans, 2) < 0)
		return 1;
	port = free_port();
	snprintf(ps, sizeof(ps), "%u", port);
	pid = fork();
	if (pid == 0) {
		int nul = open("/dev/null", O_WRONLY);

		dup2(nul, 1);
		dup2(nul, 2);
		execl(NGHTTPD, NGHTTPD, "-a", "127.0.0.1", "-d", docs, "-m",
		      "1000", ps, key, cert, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500 && !port_open(port); i++)
		usleep(10000);

	if (be_env != NULL && loop_backend_parse(be_env, &lo.backend) < 0)
		return 2;
	memset(&b, 0, sizeof(b));
	if (loop_new(&lo, &b.loop) < 0)
		return 1;
	if (dns_resolver_new(b.loop, NULL, &dns) < 0)
		return 1;
	o.dns = dns; /* "localhost" through c-ares (/etc/hosts) */
	o.trust_file = cert;
	o.max_conns_per_origin = conns;
	if (http_client_new(b.loop, &o, &b.cl) < 0)
		return 1;
	b.req.host = "localhost";
	b.req.port = port;
	b.req.timeout_ms = 30000;
	b.req.path = "/p";
	if (post) {
		/* nghttpd answers a POST to a file with the file (its
		 * --echo-upload spools to disk: it measures nghttpd). */
		b.req.body = "0123456789abcdef0123456789abcdef"
			     "0123456789abcdef0123456789abcdef";
		b.req.body_len = 64;
	}
	printf("bench_http_client: backend=%s nghttpd h2 over TLS on "
	       "loopback, max %u connection(s)\n",
	       loop_backend_name(loop_get_backend(b.loop)), conns);
	rc = bench_run(&b, 2000, w, NULL); /* warm-up */
	if (rc == 0)
		rc = bench_run(&b, n, w, post ? "POST" : "GET");
	if (rc == 0 && access("/usr/bin/h2load", X_OK) == 0) {
		char cmd[1024], bodyf[300];

		snprintf(bodyf, sizeof(bodyf), "%s/body", dir);
		fd = open(bodyf, O_WRONLY | O_CREAT, 0644);
		if (fd >= 0) {
			ssize_t wr = write(fd, post ? b.req.body : "",
					   b.req.body_len);

			(void)wr;
			close(fd);
		}
		snprintf(cmd, sizeof(cmd),
			 "/usr/bin/h2load -n %u -c %u -m %u %s%s "
			 "https://127.0.0.1:%u/p 2>&1 | "
			 "sed -n 's/^finished in/h2load (same server): "
			 "finished in/p'",
			 n, conns, w, post ? "-d " : "", post ? bodyf : "",
			 port);
		fflush(stdout);
		if (system(cmd) != 0)
			fprintf(stderr, "h2load failed\n");
		unlink(bodyf);
	}
	http_client_get_stats(b.cl, &st);
	printf("connections opened: %llu%s\n",
	       (unsigned long long)st.conns_opened,
	       b.mixed_conns ? " (requests spread over several)" : "");
	http_client_free(&b.cl);
	dns_resolver_free(&dns);
	loop_free(&b.loop);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	unlink(file);
	rmdir(docs);
	unlink(cert);
	unlink(key);
	rmdir(dir);
	return rc;
}
