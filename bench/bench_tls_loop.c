/* bench/bench_tls_loop: TLS 1.3 handshakes/s and TLS echo throughput
 * through ringmail's loop + conn layer, on one backend. The server runs
 * on its own thread and loop, the clients on another, over loopback.
 *
 *   bench_tls_loop --backend uring|epoll [--handshakes N] [--parallel P]
 *                  [--echo-mib M] [--ktls auto|yes|no]
 *
 * Prints one line per measure, with the server thread's CPU time so the
 * figures can be read per core. Bounded: stops after N handshakes and
 * M MiB, or after 120 s. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "core/conn.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/tls.h"

#define BENCH_CHUNK   (256u * 1024u)
#define BENCH_LIMIT_S 120

static enum loop_backend bench_backend = LOOP_BACKEND_URING;
static enum tls_ktls_mode bench_ktls = TLS_KTLS_AUTO;
static unsigned bench_handshakes = 2000, bench_parallel = 16;
static unsigned bench_echo_mib = 256;

struct bench_server {
	struct loop *loop;
	struct tls_ctx *tls;
	int lfd;
	struct loop_listener *li;
	pthread_t thread;
	struct timespec cpu0;
};

static double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double bench_thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- server: echo everything ---- */

static void bench_server_event(struct conn *c, enum conn_ev ev, void *arg)
{
	struct buf *in;

	(void)arg;
	if (ev != CONN_EV_DATA)
		return;
	in = conn_input(c);
	if (conn_write(c, buf_head(in), in->len) < 0) {
		conn_close(c, false);
		return;
	}
	conn_consume(c, in->len);
}

static void bench_server_accept(struct loop_listener *li, int fd,
				const struct sockaddr *peer, socklen_t len,
				void *arg)
{
	struct bench_server *s = arg;

	(void)li;
	(void)peer;
	(void)len;
	(void)conn_new(s->loop, fd, s->tls, 0, bench_server_event, s);
}

static double server_cpu_s;

static void *bench_server_main(void *arg)
{
	struct bench_server *s = arg;
	double t0 = bench_thread_cpu();

	(void)loop_run(s->loop);
	server_cpu_s = bench_thread_cpu() - t0;
	return NULL;
}

/* ---- clients ---- */

struct bench_client {
	struct loop *loop;
	struct tls_ctx *tls;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	unsigned started, done, failed, open;
	/* echo */
	uint64_t want, got, sent;
	uint8_t *chunk;
	bool echo;
};

static void bench_client_event(struct conn *c, enum conn_ev ev, void *arg);

static void bench_client_start(struct bench_client *bc)
{
	while (bc->open < bench_parallel && bc->started < bench_handshakes) {
		if (conn_connect(bc->loop, (struct sockaddr *)&bc->addr,
				 bc->addr_len, bc->tls, "localhost", 0,
				 bench_client_event, bc) == NULL) {
			bc->failed++;
			bc->started++;
			continue;
		}
		bc->started++;
		bc->open++;
	}
}

static void bench_echo_push(struct bench_client *bc, struct conn *c)
{
	/* Keep two chunks in flight. */
	while (bc->sent < bc->want && bc->sent < bc->got + 2 * BENCH_CHUNK) {
		if (conn_write(c, bc->chunk, BENCH_CHUNK) < 0) {
			conn_close(c, false);
			return;
		}
		bc->sent += BENCH_CHUNK;
	}
}

static void bench_client_event(struct conn *c, enum conn_ev ev, void *arg)
{
	struct bench_client *bc = arg;

	switch (ev) {
	case CONN_EV_TLS_READY:
		if (bc->echo) {
			bench_echo_push(bc, c);
			break;
		}
		bc->done++;
		conn_close(c, false);
		break;
	case CONN_EV_DATA:
		bc->got += conn_input(c)->len;
		conn_consume(c, conn_input(c)->len);
		if (bc->got >= bc->want) {
			conn_close(c, false);
			break;
		}
		bench_echo_push(bc, c);
		break;
	case CONN_EV_CLOSED:
		bc->open--;
		if (!bc->echo && !conn_is_tls(c))
			bc->failed++;
		if (!bc->echo)
			bench_client_start(bc);
		break;
	default:
		break;
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_tls_loop [--backend uring|epoll] "
			"[--handshakes N] [--parallel P] [--echo-mib M] "
			"[--ktls auto|yes|no]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct bench_server srv;
	struct bench_client bc;
	struct loop_opts o = {0};
	struct tls_ctx_opts so = {0}, co = {0};
	char dir[] = "/tmp/bench-tls-XXXXXX", crt[128], key[128];
	double t0, t1;

	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--backend") == 0) {
			if (loop_backend_parse(argv[++i], &bench_backend) < 0)
				usage();
		} else if (strcmp(argv[i], "--handshakes") == 0) {
			bench_handshakes = (unsigned)atoi(argv[++i]);
		} else if (strcmp(argv[i], "--parallel") == 0) {
			bench_parallel = (unsigned)atoi(argv[++i]);
		} else if (strcmp(argv[i], "--echo-mib") == 0) {
			bench_echo_mib = (unsigned)atoi(argv[++i]);
		} else if (strcmp(argv[i], "--ktls") == 0) {
			if (tls_ktls_mode_parse(argv[++i], &bench_ktls) < 0)
				usage();
		} else {
			usage();
		}
	}
	log_set_level(LOG_LV_WARN);
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(crt, sizeof(crt), "%s/c.crt", dir);
	snprintf(key, sizeof(key), "%s/c.key", dir);
	if (tls_selfsigned_write(crt, key, "localhost", NULL, 2) < 0)
		return 1;

	memset(&srv, 0, sizeof(srv));
	o.backend = bench_backend;
	so = (struct tls_ctx_opts){.server = true,
				   .cert_file = crt,
				   .key_file = key,
				   .min_version = TLS1_3_VERSION,
				   .ktls = bench_ktls};
	co = (struct tls_ctx_opts){.min_version = TLS1_3_VERSION,
				   .insecure = true,
				   .ktls = bench_ktls};
	if (loop_new(&o, &srv.loop) < 0 || tls_ctx_new(&so, &srv.tls) < 0)
		return 1;
	memset(&bc, 0, sizeof(bc));
	o.worker_id = 1;
	if (loop_new(&o, &bc.loop) < 0 || tls_ctx_new(&co, &bc.tls) < 0)
		return 1;
	listen_addr_parse("127.0.0.1:0", &bc.addr, &bc.addr_len);
	srv.lfd = listen_bind((struct sockaddr *)&bc.addr, bc.addr_len, 1024);
	bc.addr_len = sizeof(bc.addr);
	getsockname(srv.lfd, (struct sockaddr *)&bc.addr, &bc.addr_len);
	srv.li = loop_listen(srv.loop, srv.lfd, bench_server_accept, &srv);
	pthread_create(&srv.thread, NULL, bench_server_main, &srv);

	/* Handshakes: P at a time, each connection closes when ready. */
	t0 = bench_now();
	bench_client_start(&bc);
	while ((bc.done + bc.failed < bench_handshakes || bc.open > 0) &&
	       bench_now() - t0 < BENCH_LIMIT_S)
		loop_run_once(bc.loop, 100);
	t1 = bench_now();
	printf("backend=%s tls13_handshakes=%u failed=%u parallel=%u "
	       "seconds=%.3f handshakes_per_s=%.0f\n",
	       loop_backend_name(bench_backend), bc.done, bc.failed,
	       bench_parallel, t1 - t0, bc.done / (t1 - t0));

	/* Echo: one connection, M MiB each way. */
	bc.echo = true;
	bc.want = (uint64_t)bench_echo_mib << 20;
	bc.chunk = malloc(BENCH_CHUNK);
	memset(bc.chunk, 'x', BENCH_CHUNK);
	bc.open = 1;
	t0 = bench_now();
	if (conn_connect(bc.loop, (struct sockaddr *)&bc.addr, bc.addr_len,
			 bc.tls, "localhost", 0, bench_client_event,
			 &bc) == NULL)
		return 1;
	while (bc.open > 0 && bench_now() - t0 < BENCH_LIMIT_S)
		loop_run_once(bc.loop, 100);
	t1 = bench_now();
	printf("backend=%s tls13_echo_mib=%u seconds=%.3f "
	       "mib_per_s_each_way=%.1f complete=%d\n",
	       loop_backend_name(bench_backend), bench_echo_mib, t1 - t0,
	       (double)bc.got / (1 << 20) / (t1 - t0), bc.got >= bc.want);

	loop_stop(srv.loop);
	pthread_join(srv.thread, NULL);
	printf("backend=%s server_thread_cpu_s=%.3f\n",
	       loop_backend_name(bench_backend), server_cpu_s);
	unlink(crt);
	unlink(key);
	rmdir(dir);
	free(bc.chunk);
	return 0;
}
