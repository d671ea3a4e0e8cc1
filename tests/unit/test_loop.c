/* tests/unit/test_loop: core/loop on every backend testutil_backends()
 * returns (RINGMAIL_IO_BACKEND=uring|epoll picks one). All traffic is on
 * 127.0.0.1 or unix sockets; every wait is bounded by TEST_DEADLINE_MS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

/* system */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/tls.h>

/* project */
#include "core/buf.h"
#include "core/loop-int.h" /* loop statistics */
#include "core/loop.h"

#define TEST_DEADLINE_MS 30000u
#define TEST_WORKER_ID   7u

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

static uint64_t test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint8_t test_pat(uint64_t i)
{
	return (uint8_t)(i * 131u + (i >> 9) + (i >> 17));
}

/* Run the loop until @cond holds; fail after the deadline. */
#define RUN_UNTIL(l, cond)                                                 \
	do {                                                               \
		uint64_t t0_ = test_now_ms();                              \
		while (!(cond)) {                                          \
			assert_true(loop_run_once((l), 20) >= 0);          \
			if (test_now_ms() - t0_ > TEST_DEADLINE_MS)        \
				fail_msg("timeout waiting for %s", #cond); \
		}                                                          \
	} while (0)

static void run_for(struct loop *l, unsigned ms)
{
	uint64_t t0 = test_now_ms();

	while (test_now_ms() - t0 < ms)
		assert_true(loop_run_once(l, 10) >= 0);
}

static struct loop *loop_make(enum loop_backend b, const struct loop_opts *o)
{
	struct loop_opts opts;
	const char *prof = getenv("RINGMAIL_URING_PROFILE");
	struct loop *l = NULL;

	if (o != NULL)
		opts = *o;
	else
		memset(&opts, 0, sizeof(opts));
	opts.backend = b;
	opts.worker_id = TEST_WORKER_ID;
	opts.uring_debian12 = prof != NULL && strcmp(prof, "debian12") == 0;
	assert_int_equal(loop_new(&opts, &l), 0);
	assert_int_equal(loop_get_backend(l), b);
	return l;
}

#define FOR_EACH_BACKEND(fn)                                       \
	do {                                                       \
		enum loop_backend bs_[2];                          \
		int nb_ = testutil_backends(bs_);                  \
		for (int i_ = 0; i_ < nb_; i_++) {                 \
			print_message("  backend=%s\n",            \
				      loop_backend_name(bs_[i_])); \
			fn(bs_[i_]);                               \
		}                                                  \
	} while (0)

/* ---- sockets ---- */

static int tcp_listener(struct sockaddr_in *a, int backlog)
{
	socklen_t len = sizeof(*a);
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)a, sizeof(*a)), 0);
	assert_int_equal(listen(fd, backlog), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)a, &len), 0);
	return fd;
}

static void fd_timeouts(int fd)
{
	struct timeval tv = {.tv_sec = 10};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int tcp_client(const struct sockaddr_in *a, int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	assert_int_equal(connect(fd, (const struct sockaddr *)a, sizeof(*a)),
			 0);
	fd_timeouts(fd);
	return fd;
}

/* Keep the kernel from swallowing a whole test transfer at once. */
static void small_sndbuf(int fd)
{
	int small = 16384;

	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
}

static void fd_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			fail_msg("write: %zd (%s)", w, strerror(errno));
		b += w;
		n -= (size_t)w;
	}
}

static void read_exact(int fd, void *p, size_t n)
{
	uint8_t *b = p;

	while (n > 0) {
		ssize_t r = read(fd, b, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			fail_msg("read: %zd (%s), %zu octets missing", r,
				 r < 0 ? strerror(errno) : "EOF", n);
		b += r;
		n -= (size_t)r;
	}
}

/* Read what is there without blocking, checking the pattern. */
static void drain_verify(int fd, uint64_t *off, unsigned *bad)
{
	uint8_t b[65536];
	ssize_t r;

	for (int i = 0; i < 32; i++) {
		r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (r <= 0)
			return;
		for (ssize_t k = 0; k < r; k++)
			if (b[k] != test_pat(*off + (uint64_t)k))
				(*bad)++;
		*off += (uint64_t)r;
	}
}

/* ---- event recorder ---- */

struct rec {
	struct loop *l;
	struct loop_conn *c;
	uint64_t id;
	struct buf got;
	uint64_t total;
	unsigned connected, recvs, sents, eofs, errors, closed, after_close;
	int err;
	bool close_called;
	uint64_t eof_at;
	bool verify; /* check test_pat instead of storing */
	unsigned bad;
	uint8_t types[32];
	size_t type_lens[32];
	unsigned ntypes;
	void (*on_recv)(struct rec *r, const struct loop_conn_ev *ev);
	void *user;
};

static void rec_init(struct rec *r, struct loop *l)
{
	memset(r, 0, sizeof(*r));
	r->l = l;
	buf_init(&r->got, 0);
}

static void rec_close(struct rec *r, bool flush)
{
	r->close_called = true;
	loop_conn_close(r->c, flush);
}

static void rec_cb(struct loop_conn *c, const struct loop_conn_ev *ev,
		   void *arg)
{
	struct rec *r = arg;

	assert_ptr_equal(c, r->c);
	if (r->close_called && ev->type != LOOP_CONN_EV_CLOSED)
		r->after_close++;
	switch (ev->type) {
	case LOOP_CONN_EV_CONNECTED:
		r->connected++;
		break;
	case LOOP_CONN_EV_RECV:
		assert_true(ev->len > 0);
		assert_int_equal(r->eofs, 0);
		r->recvs++;
		if (r->ntypes < 32) {
			r->types[r->ntypes] = ev->tls_record_type;
			r->type_lens[r->ntypes++] = ev->len;
		}
		if (r->verify) {
			for (size_t k = 0; k < ev->len; k++)
				if (ev->data[k] != test_pat(r->total + k))
					r->bad++;
		} else {
			assert_int_equal(buf_append(&r->got, ev->data, ev->len),
					 0);
		}
		r->total += ev->len;
		if (r->on_recv != NULL)
			r->on_recv(r, ev);
		break;
	case LOOP_CONN_EV_SENT:
		r->sents++;
		break;
	case LOOP_CONN_EV_EOF:
		r->eofs++;
		r->eof_at = r->total;
		break;
	case LOOP_CONN_EV_ERROR:
		assert_true(ev->err < 0);
		r->errors++;
		r->err = ev->err;
		break;
	case LOOP_CONN_EV_CLOSED:
		r->closed++;
		r->c = NULL;
		break;
	}
}

struct acceptor {
	struct loop *l;
	struct loop_listener *li;
	struct rec *rec; /* wrap the accepted fd into rec */
	int fds[16];
	struct sockaddr_storage peers[16];
	socklen_t peer_lens[16];
	unsigned n;
	bool stop_in_cb;
};

static void acc_cb(struct loop_listener *li, int fd,
		   const struct sockaddr *peer, socklen_t peer_len, void *arg)
{
	struct acceptor *a = arg;

	assert_ptr_equal(li, a->li);
	if (a->rec != NULL) {
		a->rec->c = loop_conn_new(a->l, fd, rec_cb, a->rec);
		assert_non_null(a->rec->c);
		a->rec->id = loop_conn_id(a->rec->c);
	} else {
		assert_true(a->n < 16);
		a->fds[a->n] = fd;
		assert_true(peer_len <= sizeof(a->peers[0]));
		memcpy(&a->peers[a->n], peer, peer_len);
		a->peer_lens[a->n] = peer_len;
	}
	a->n++;
	if (a->stop_in_cb)
		loop_listener_stop(&a->li);
}

/* A client socket (blocking, returned) connected to a loop conn in @r. */
static int pair_setup(struct loop *l, struct rec *r, int client_rcvbuf)
{
	struct acceptor a;
	struct sockaddr_in sa;
	int lfd, cfd;

	memset(&a, 0, sizeof(a));
	a.l = l;
	a.rec = r;
	lfd = tcp_listener(&sa, 16);
	a.li = loop_listen(l, lfd, acc_cb, &a);
	assert_non_null(a.li);
	cfd = tcp_client(&sa, client_rcvbuf);
	RUN_UNTIL(l, r->c != NULL);
	loop_listener_stop(&a.li);
	close(lfd);
	return cfd;
}

static void rec_finish(struct rec *r)
{
	if (r->c != NULL) {
		rec_close(r, false);
		RUN_UNTIL(r->l, r->closed == 1);
	}
	assert_int_equal(r->closed, 1);
	assert_int_equal(r->after_close, 0);
	buf_free(&r->got);
}

/* ---- basics ---- */

static void test_names_and_opts(void **state)
{
	enum loop_backend b;
	struct loop_opts o;
	struct loop *l = NULL;
	const struct loop_probe *p = loop_probe_kernel();

	(void)state;
	assert_int_equal(loop_backend_parse("auto", &b), 0);
	assert_int_equal(b, LOOP_BACKEND_AUTO);
	assert_int_equal(loop_backend_parse("io_uring", &b), 0);
	assert_int_equal(b, LOOP_BACKEND_URING);
	assert_int_equal(loop_backend_parse("uring", &b), 0);
	assert_int_equal(loop_backend_parse("epoll", &b), 0);
	assert_int_equal(b, LOOP_BACKEND_EPOLL);
	assert_int_equal(loop_backend_parse("kqueue", &b), -1);
	assert_string_equal(loop_backend_name(LOOP_BACKEND_URING), "uring");
	assert_string_equal(loop_backend_name(LOOP_BACKEND_EPOLL), "epoll");
	print_message("  probe: uring=%d errno=%d defer_taskrun=%d buf_ring=%d "
		      "recv_ms=%d accept_ms=%d poll_ms=%d ktls_ulp=%d\n",
		      p->uring, p->uring_errno, p->uring_defer_taskrun,
		      p->uring_buf_ring, p->uring_recv_multishot,
		      p->uring_accept_multishot, p->uring_poll_multishot,
		      p->ktls_ulp);
	assert_true(p->uring || p->uring_errno != 0);

	memset(&o, 0, sizeof(o));
	o.buf_count = 3; /* not a power of two */
	assert_int_equal(loop_new(&o, &l), -EINVAL);
	o.buf_count = 0;
	o.worker_id = 256;
	assert_int_equal(loop_new(&o, &l), -EINVAL);
	assert_null(l);

	/* AUTO picks io_uring whenever it is usable. */
	o.worker_id = 3;
	assert_int_equal(loop_new(&o, &l), 0);
	assert_int_equal(loop_get_backend(l), loop_uring_usable(p)
						      ? LOOP_BACKEND_URING
						      : LOOP_BACKEND_EPOLL);
	assert_int_equal(loop_worker_id(l), 3);
	assert_int_equal(loop_conn_count(l), 0);
	assert_true(loop_run_once(l, 0) >= 0);
	loop_free(&l);
	assert_null(l);
	loop_free(&l); /* NULL is fine */
}

/* ---- accept ---- */

static void accept_case(enum loop_backend b)
{
	struct loop *l = loop_make(b, NULL);
	struct acceptor a;
	struct sockaddr_in sa, local;
	socklen_t len;
	int lfd, cfd[8];

	memset(&a, 0, sizeof(a));
	a.l = l;
	lfd = tcp_listener(&sa, 16);
	a.li = loop_listen(l, lfd, acc_cb, &a);
	assert_non_null(a.li);
	for (int i = 0; i < 5; i++)
		cfd[i] = tcp_client(&sa, 0);
	RUN_UNTIL(l, a.n == 5);
	for (unsigned i = 0; i < a.n; i++) {
		const struct sockaddr_in *peer =
			(const struct sockaddr_in *)&a.peers[i];
		bool matched = false;

		assert_true(fcntl(a.fds[i], F_GETFL) & O_NONBLOCK);
		assert_true(fcntl(a.fds[i], F_GETFD) & FD_CLOEXEC);
		assert_int_equal(a.peer_lens[i], sizeof(*peer));
		assert_int_equal(peer->sin_family, AF_INET);
		assert_int_equal(ntohl(peer->sin_addr.s_addr), INADDR_LOOPBACK);
		for (int k = 0; k < 5; k++) {
			len = sizeof(local);
			getsockname(cfd[k], (struct sockaddr *)&local, &len);
			matched = matched || local.sin_port == peer->sin_port;
		}
		assert_true(matched);
	}
	/* Stopped: nothing more is accepted (the kernel queues it). */
	loop_listener_stop(&a.li);
	assert_null(a.li);
	cfd[5] = tcp_client(&sa, 0);
	run_for(l, 150);
	assert_int_equal(a.n, 5);

	/* A listener stopped from its own callback takes exactly one,
	 * even when more are ready at once. */
	a.li = loop_listen(l, lfd, acc_cb, &a);
	assert_non_null(a.li);
	a.stop_in_cb = true;
	cfd[6] = tcp_client(&sa, 0);
	cfd[7] = tcp_client(&sa, 0);
	RUN_UNTIL(l, a.n == 6);
	run_for(l, 100);
	assert_int_equal(a.n, 6);
	assert_null(a.li);

	/* Not a listening socket. */
	assert_null(loop_listen(l, cfd[0], acc_cb, &a));

	for (unsigned i = 0; i < a.n; i++)
		close(a.fds[i]);
	for (int i = 0; i < 8; i++)
		close(cfd[i]);
	close(lfd);
	loop_free(&l);
}

static void test_accept(void **state)
{
	(void)state;
	FOR_EACH_BACKEND(accept_case);
}

/* ---- receive, send, ids ---- */

static void recv_send_case(enum loop_backend b)
{
	struct loop *l = loop_make(b, NULL);
	struct rec r;
	char reply[8];
	uint64_t id;
	int cfd;

	rec_init(&r, l);
	cfd = pair_setup(l, &r, 0);
	id = loop_conn_id(r.c);
	assert_int_equal(id >> 56, TEST_WORKER_ID);
	assert_ptr_equal(loop_conn_find(l, id), r.c);
	assert_ptr_equal(loop_conn_loop(r.c), l);
	assert_true(loop_conn_fd(r.c) >= 0);
	assert_int_equal(loop_conn_count(l), 1);

	write_all(cfd, "hello ", 6);
	RUN_UNTIL(l, r.total == 6);
	write_all(cfd, "world", 5);
	write_all(cfd, "!", 1);
	RUN_UNTIL(l, r.total == 12);
	assert_memory_equal(buf_head(&r.got), "hello world!", 12);
	assert_int_equal(r.types[0], 0); /* no TLS record mode */

	assert_int_equal(loop_conn_send(r.c, "rep", 3), 0);
	assert_int_equal(loop_conn_send(r.c, "ly", 2), 0);
	assert_int_equal(loop_conn_send(r.c, "", 0), 0);
	assert_true(loop_conn_pending(r.c) == 5);
	RUN_UNTIL(l, r.sents >= 1);
	assert_int_equal(loop_conn_pending(r.c), 0);
	read_exact(cfd, reply, 5);
	assert_memory_equal(reply, "reply", 5);
	assert_int_equal(r.errors, 0);

	rec_finish(&r);
	assert_null(loop_conn_find(l, id));
	assert_int_equal(loop_conn_count(l), 0);
	assert_int_equal(read(cfd, reply, 1), 0); /* our FIN */
	close(cfd);
	loop_free(&l);
}

static void test_recv_send(void **state)
{
	(void)state;
	FOR_EACH_BACKEND(recv_send_case);
}

/* ---- large send ---- */

static void send_large_case(enum loop_backend b)
{
	const uint64_t total = 6u << 20;
	const size_t chunk = 256u << 10;
	struct loop *l = loop_make(b, NULL);
	uint8_t *tmp = malloc(chunk);
	uint64_t sent = 0, got = 0;
	unsigned bad = 0;
	struct rec r;
	int cfd;

	assert_non_null(tmp);
	rec_init(&r, l);
	cfd = pair_setup(l, &r, 32768);
	fd_nonblock(cfd);
	small_sndbuf(loop_conn_fd(r.c));
	{
		uint64_t t0 = test_now_ms();

		while (got < total) {
			while (sent < total &&
			       loop_conn_pending(r.c) < (1u << 20)) {
				size_t n = total - sent < chunk
						   ? (size_t)(total - sent)
						   : chunk;

				for (size_t k = 0; k < n; k++)
					tmp[k] = test_pat(sent + k);
				assert_int_equal(loop_conn_send(r.c, tmp, n),
						 0);
				sent += n;
			}
			assert_true(loop_run_once(l, 5) >= 0);
			drain_verify(cfd, &got, &bad);
			if (test_now_ms() - t0 > TEST_DEADLINE_MS)
				fail_msg("large send: timeout at %" PRIu64
					 " of %" PRIu64,
					 got, total);
		}
	}
	assert_int_equal(bad, 0);
	assert_int_equal(got, total);
	RUN_UNTIL(l, loop_conn_pending(r.c) == 0 && r.sents >= 1);
	print_message("    sends=%" PRIu64 " partial=%" PRIu64 "\n",
		      l->stats.sends, l->stats.partial_sends);
	assert_true(l->stats.partial_sends > 0);
	assert_true(l->stats.sends > 8);
	assert_int_equal(r.errors, 0);
	rec_finish(&r);
	close(cfd);
	free(tmp);
	loop_free(&l);
}

static void test_send_large(void **state)
{
	(void)state;
	FOR_EACH_BACKEND(send_large_case);
}

static void send_limit_case(enum loop_backend b)
{
	struct loop_opts o;
	struct loop *l;
	static uint8_t big[64 << 10];
	struct rec r;
	int cfd;

	memset(&o, 0, sizeof(o));
	o.send_max = sizeof(big);
	l = loop_make(b, &o);
	rec_init(&r, l);
	cfd = pair_setup(l, &r, 0);
	assert_int_equal(loop_conn_send(r.c, big, sizeof(big) - 100), 0);
	assert_int_equal(loop_conn_send(r.c, big, 200), -ENOBUFS);
	assert_int_equal(loop_conn_send_tls_record(r.c, 22, big, 200),
			 -ENOBUFS);
	assert_int_equal(loop_conn_pending(r.c), sizeof(big) - 100);
	assert_int_equal(loop_conn_send(r.c, big, 100), 0);
	assert_int_equal(loop_conn_send_tls_record(r.c, 0, big, 1), -EINVAL);
	rec_finish(&r);
	/* Closed: sending is refused. */
	close(cfd);
	loop_free(&l);
}

static void test_send_limit(void **state)
{
	(void)state;
	FOR_EACH_BACKEND(send_limit_case);
}

/* ---- TLS records on a plain socket keep their order ---- */

static void tls_order_case(enum loop_backend b)
{
	const size_t first = 1u << 20;
	struct loop *l = loop_make(b, NULL);
	uint8_t *big = malloc(first), tail[26];
	struct rec r;
	int cfd;

	assert_non_null(big);
	memset(big, 'x', first);
	rec_init(&r, l);
	cfd = pair_setup(l, &r, 8192);
	small_sndbuf(loop_conn_fd(r.c));
	/* A big first send keeps one in flight while the rest queues. */
	assert_int_equal(loop_conn_send(r.c, big, first), 0);
	assert_true(loop_run_once(l, 0) >= 0);
	assert_true(loop_conn_pending(r.c) > 0);
	assert_int_equal(loop_conn_send(r.c, "AAAAAAAAAA", 10), 0);
	assert_int_equal(loop_conn_send_tls_record(r.c, 22, "BBBBB", 5), 0);
	assert_int_equal(loop_conn_send(r.c, "CCC", 3), 0);
	assert_int_equal(loop_conn_send(r.c, "CCCC", 4), 0);
	assert_int_equal(loop_conn_send_tls_record(r.c, 21, "DE", 2), 0);
	assert_int_equal(loop_conn_send_tls_record(r.c, 21, "FG", 2), 0);
	assert_true(loop_conn_pending(r.c) > 26);
	{
		uint64_t got = 0, t0 = test_now_ms();
		uint8_t b8[65536];

		fd_nonblock(cfd);
		while (got < first) {
			ssize_t n = recv(cfd, b8,
					 first - got < sizeof(b8)
						 ? (size_t)(first - got)
						 : sizeof(b8),
					 MSG_DONTWAIT);

			if (n > 0) {
				for (ssize_t k = 0; k < n; k++)
					assert_int_equal(b8[k], 'x');
				got += (uint64_t)n;
			}
			assert_true(loop_run_once(l, 5) >= 0);
			if (test_now_ms() - t0 > TEST_DEADLINE_MS)
				fail_msg("timeout");
		}
	}
	RUN_UNTIL(l, loop_conn_pending(r.c) == 0);
	fd_timeouts(cfd);
	fcntl(cfd, F_SETFL, fcntl(cfd, F_GETFL) & ~O_NONBLOCK);
	read_exact(cfd, tail, sizeof(tail));
	assert_memory_equal(tail, "AAAAAAAAAABBBBBCCCCCCCDEFG", sizeof(tail));
	rec_finish(&r);
	close(cfd);
	free(big);
	loop_free(&l);
}

static void test_tls_record_order(void **state)
{
	(void)state;
	FOR_EACH_BACKEND(tls_order_case);
}

/* ---- EOF ---- */

static void eof_case(enum loop_backend b)
{
	struct loop *l = loop_make(b, NULL);
	struct rec r;
	char ok[2];
	int cfd;

	rec_init(&r, l);
	cfd = pair_setup(l, &r, 0);
	write_all(cfd, "bye", 3);
	shutdown(cfd, SHUT_WR);
	RUN_UNTIL(l, r.eofs == 1);
	assert_int_equal(r.eof_at, 3);
	assert_memory_equal(buf_head(&r.got), "bye", 3);
	run_for(l, 50);
	assert_int_equal(r.eofs, 1);
	/* Half-closed: we can still answer. */
	assert_int_equal(loop_conn_send(r.c, "ok", 2), 0);
	RUN_UNTIL(l, r.sents == 1);
	read_exact(cfd, ok, 2);
	assert_memory_equal(ok, "ok", 2);
	rec_finish(&r);
	assert_int_equal(read(cfd, ok, 1), 0);
	close(cfd);
	loop_free(&l);
}

static void test_eof(void **state)
{
	(void)state;
	FOR_EACH_BACKEND(eof_case);
}

/* ---- peer reset: ERROR; handler hand-over ---- */

static void reset_case(enum loop_backend b)
{
	struct loop *l = loop_make(b, NULL);
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	struct rec r, r2;
	int cfd;

	rec_init(&r, l);
	rec_init(&r2, l);
	cfd = pair_setup(l, &r, 0);
	/* Events go to the new handler from now on. */
	r2.c = r.c;
	r2.id = r.id;
	loop_conn_set_handler(r.c, rec_cb, &r2);
	write_all(cfd, "x", 1);
	RUN_UNTIL(l, r2.total == 1);
	assert_int_equal(r.recvs, 0);
	setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(cfd); /* RST */
	RUN_UNTIL(l, r2.errors == 1 || r2.eofs == 1);
	if (r2.errors == 1)
		assert_int_equal(r2.err, -ECONNRESET);
	/* Sending into the reset socket fails (ERROR at most once). */
	(void)loop_conn_send(r2.c, "y", 1);
	run_for(l, 50);
	assert_true(r2.errors <= 1);
	assert_true(r2.errors == 1 || r2.eofs == 1);
	rec_finish(&r2);
	assert_int_equal(r.closed, 0);
	buf_free(&r.got);
	loop_free(&l);
}

static void test_reset(void **state)
{
	(void)state;
	FOR_EACH_BACKEND(reset_case);
}

/* ---- timers ---- */

struct tlog {
	struct loop *l;
	int order[64];
	int n;
	int periodic_left;
	uint64_t last_deadline;
};

struct ttimer {
	struct loop_timer t;
	struct tlog *log;
	int id;
	uint64_t armed_at, after;
};

static void ttimer_fire(struct loop_timer *t, void *arg)
{
	struct ttimer *tt = arg;
	struct tlog *log = tt->log;

	assert_ptr_equal(t, &tt->t);
	assert_false(loop_timer_armed(t));
	/* Never early. */
	assert_true(loop_now_ms(log->l) >= tt->armed_at + tt->after);
	/* In deadline order. */
	assert_true(t->deadline_ms >= log->last_deadline);
	log->last_deadline = t->deadline_ms;
	assert_true(log->n < 64);
	log->order[log->n++] = tt->id;
	if (tt->id == 9 && --log->periodic_left > 0) {
		tt->armed_at = loop_now_ms(log->l);
		loop_timer_arm(log->l, t, tt->after);
	}
}

static void tt_arm(struct ttimer *tt, uint64_t after)
{
	tt->armed_at = loop_now_ms(tt->log->l);
	tt->after = after;
	loop_timer_arm(tt->log->l, &tt->t, after);
}

static void timers_case(enum loop_backend b)
{
	struct loop *l = loop_make(b, NULL);
	struct tlog log;
	struct ttimer t[6];
	static const int want[] = {5, 2, 3, 1};

	memset(&log, 0, sizeof(log));
	log.l = l;
	for (int i = 0; i < 6; i++) {
		t[i].log = &log;
		t[i].id = i;
		loop_timer_init(&t[i].t, ttimer_fire, &t[i]);
		assert_false(loop_timer_armed(&t[i].t));
	}
	tt_arm(&t[1], 60);
	tt_arm(&t[2], 20);
	tt_arm(&t[3], 40);
	tt_arm(&t[4], 30);
	tt_arm(&t[5], 200);
	assert_true(loop_timer_armed(&t[4].t));
	loop_timer_disarm(l, &t[4].t);
	loop_timer_disarm(l, &t[4].t); /* twice is fine */
	assert_false(loop_timer_armed(&t[4].t));
	tt_arm(&t[5], 5); /* re-arm earlier */
	RUN_UNTIL(l, log.n == 4);
	assert_memory_equal(log.order, want, sizeof(want));
	run_for(l, 80);
	assert_int_equal(log.n, 4); /* the disarmed one never fires */

	/* Re-arm later: fires once, at the later time. */
	tt_arm(&t[0], 10);
	tt_arm(&t[0], 50);
	run_for(l, 30);
	assert_int_equal(log.n, 4);
	RUN_UNTIL(l, log.n == 5);
	assert_int_equal(log.order[4], 0);

	/* Periodic from its own callback; a 0 ms timer fires too. */
	t[5].id = 9;
	log.periodic_left = 3;
	tt_arm(&t[5], 0);
	RUN_UNTIL(l, log.n == 8);
	run_for(l, 30);
	assert_int_equal(log.n, 8);

	/* Many timers fire in deadline order. */
	{
		struct ttimer many[64];

		log.n = 0;
		log.last_deadline = 0;
		for (int i = 0; i < 64; i++) {
			many[i].log = &log;
			many[i].id = i;
			loop_timer_init(&many[i].t, ttimer_fire, &many[i]);
			tt_arm(&many[i], (uint64_t)((i * 37) % 64));
		}
		for (int i = 0; i < 64; i += 2)
			loop_timer_disarm(l, &many[i].t);
		RUN_UNTIL(l, log.n == 32);
		run_for(l, 100);
		assert_int_equal(log.n, 32);
		for (int i = 0; i < 32; i++)
			assert_true(log.order[i] % 2 == 1);
		for (int i = 0; i < 64; i++)
			assert_false(loop_timer_armed(&many[i].t));
	}
	loop_free(&l);
}

static void test_timers(void **state)
{
	(void)state;
	FOR_EACH_BACKEND(timers_case);
}

/* ---- close with operations in flight ---- */

static void close_in_recv(struct rec *r, const struct loop_conn_ev *ev)
{
	(void)ev;
	if (!r->close_called)
		rec_close(r, false);
}

static void close_inflight_case(enum loop_backend b)
{
	const size_t n = 3u << 20;
	struct loop *l = loop_make(b, NULL);
	uint8_t *big = calloc(1, n), chunk[4096];
	struct rec r, r2, r3;
	int cfd, cfd2, cfd3;
	ssize_t got;

	assert_non_null(big);
	/* Receive armed, a big send stuck in flight (the peer reads
	 * nothing), then close. */
	rec_init(&r, l);
	cfd = pair_setup(l, &r, 8192);
	small_sndbuf(loop_conn_fd(r.c));
	assert_int_equal(loop_conn_send(r.c, big, n), 0);
	run_for(l, 100);
	assert_true(loop_conn_pending(r.c) > 0);
	rec_close(&r, false);
	rec_close(&r, false); /* idempotent */
	assert_null(loop_conn_find(l, r.id));
	RUN_UNTIL(l, r.closed == 1);
	run_for(l, 100);
	assert_int_equal(r.closed, 1);
	assert_int_equal(r.after_close, 0);
	assert_int_equal(r.sents, 0);
	/* The peer sees the end: EOF or a reset once the buffers drain. */
	for (int i = 0; i < 10000; i++) {
		got = read(cfd, chunk, sizeof(chunk));
		if (got <= 0)
			break;
	}
	assert_true(got <= 0);
	close(cfd);
	buf_free(&r.got);

	/* Close from inside RECV while the peer keeps writing. */
	rec_init(&r2, l);
	r2.on_recv = close_in_recv;
	cfd2 = pair_setup(l, &r2, 0);
	fd_nonblock(cfd2);
	for (int i = 0; i < 200 && r2.closed == 0; i++) {
		(void)send(cfd2, chunk, sizeof(chunk), MSG_NOSIGNAL);
		assert_true(loop_run_once(l, 2) >= 0);
	}
	RUN_UNTIL(l, r2.closed == 1);
	run_for(l, 50);
	assert_int_equal(r2.recvs, 1);
	assert_int_equal(r2.after_close, 0);
	close(cfd2);
	buf_free(&r2.got);

	/* Close before the loop ever ran the new connection. */
	rec_init(&r3, l);
	cfd3 = pair_setup(l, &r3, 0);
	assert_int_equal(loop_conn_send(r3.c, "x", 1), 0);
	loop_conn_recv_pause(r3.c);
	rec_close(&r3, false);
	assert_int_equal(loop_conn_send(r3.c, "y", 1), -EPIPE);
	RUN_UNTIL(l, r3.closed == 1);
	assert_int_equal(r3.after_close, 0);
	close(cfd3);
	buf_free(&r3.got);
	assert_int_equal(loop_conn_count(l), 0);
	free(big);
	loop_free(&l);
}

static void test_close_inflight(void **state)
{
	(void)state;
	FOR_EACH_BACKEND(close_inflight_case);
}

/* ---- close with flush ---- */

static void close_flush_case(enum loop_backend b)
{
	const size_t n = 2u << 20;
	struct loop *l = loop_make(b, NULL);
	uint8_t *big = malloc(n), c1;
	uint64_t got = 0;
	unsigned bad = 0;
	struct rec r, r2;
	int cfd, cfd2;

	assert_non_null(big);
	for (size_t k = 0; k < n; k++)
		big[k] = test_pat(k);
	rec_init(&r, l);
	cfd = pair_setup(l, &r, 16384);
	small_sndbuf(loop_conn_fd(r.c));
	fd_nonblock(cfd);
	assert_int_equal(loop_conn_send(r.c, big, n / 2), 0);
	assert_int_equal(loop_conn_send(r.c, big + n / 2, n / 2), 0);
	rec_close(&r, true);
	{
		uint64_t t0 = test_now_ms();

		while (got < n || r.closed == 0) {
			assert_true(loop_run_once(l, 5) >= 0);
			drain_verify(cfd, &got, &bad);
			if (test_now_ms() - t0 > TEST_DEADLINE_MS)
				fail_msg("flush: timeout at %" PRIu64, got);
		}
	}
	assert_int_equal(got, n);
	assert_int_equal(bad, 0);
	assert_int_equal(r.closed, 1);
	assert_int_equal(r.sents, 0); /* nothing but CLOSED after close */
	assert_int_equal(r.after_close, 0);
	fd_timeouts(cfd);
	fcntl(cfd, F_SETFL, fcntl(cfd, F_GETFL) & ~O_NONBLOCK);
	assert_int_equal(read(cfd, &c1, 1), 0);
	close(cfd);
	buf_free(&r.got);

	/* Flush with an empty queue closes at once; a second close without
	 * flush cuts a pending flush short. */
	rec_init(&r2, l);
	cfd2 = pair_setup(l, &r2, 8192);
	rec_close(&r2, true);
	RUN_UNTIL(l, r2.closed == 1);
	close(cfd2);
	buf_free(&r2.got);

	rec_init(&r2, l);
	cfd2 = pair_setup(l, &r2, 8192);
	small_sndbuf(loop_conn_fd(r2.c));
	assert_int_equal(loop_conn_send(r2.c, big, n), 0);
	loop_conn_close(r2.c, true);
	r2.close_called = true;
	run_for(l, 50);
	assert_int_equal(r2.closed, 0); /* still flushing: peer not reading */
	loop_conn_close(r2.c, false);
	RUN_UNTIL(l, r2.closed == 1);
	close(cfd2);
	buf_free(&r2.got);
	free(big);
	loop_free(&l);
}

static void test_close_flush(void **state)
{
	(void)state;
	FOR_EACH_BACKEND(close_flush_case);
}

/* ---- many connections ---- */

#define MANY_N 500

struct many;

struct many_cli {
	struct many *m;
	struct loop_conn *c;
	char msg[32];
	size_t len, got;
};

struct many {
	struct loop *l;
	struct many_cli cli[MANY_N];
	unsigned accepted, connected, srv_closed, cli_closed, errors;
};

static void many_srv_cb(struct loop_conn *c, const struct loop_conn_ev *ev,
			void *arg)
{
	struct many *m = arg;

	switch (ev->type) {
	case LOOP_CONN_EV_RECV:
		assert_int_equal(loop_conn_send(c, ev->data, ev->len), 0);
		break;
	case LOOP_CONN_EV_EOF:
		loop_conn_close(c, true);
		break;
	case LOOP_CONN_EV_ERROR:
		m->errors++;
		loop_conn_close(c, false);
		break;
	case LOOP_CONN_EV_CLOSED:
		m->srv_closed++;
		break;
	default:
		break;
	}
}

static void many_accept(struct loop_listener *li, int fd,
			const struct sockaddr *peer, socklen_t peer_len,
			void *arg)
{
	struct many *m = arg;

	(void)li;
	(void)peer;
	(void)peer_len;
	assert_non_null(loop_conn_new(m->l, fd, many_srv_cb, m));
	m->accepted++;
}

static void many_cli_cb(struct loop_conn *c, const struct loop_conn_ev *ev,
			void *arg)
{
	struct many_cli *k = arg;

	switch (ev->type) {
	case LOOP_CONN_EV_CONNECTED:
		k->m->connected++;
		assert_ptr_equal(loop_conn_find(k->m->l, loop_conn_id(c)), c);
		assert_int_equal(loop_conn_send(c, k->msg, k->len), 0);
		break;
	case LOOP_CONN_EV_RECV:
		assert_true(k->got + ev->len <= k->len);
		assert_memory_equal(ev->data, k->msg + k->got, ev->len);
		k->got += ev->len;
		if (k->got == k->len)
			loop_conn_close(c, false);
		break;
	case LOOP_CONN_EV_ERROR:
	case LOOP_CONN_EV_EOF:
		k->m->errors++;
		loop_conn_close(c, false);
		break;
	case LOOP_CONN_EV_CLOSED:
		k->c = NULL;
		k->m->cli_closed++;
		break;
	default:
		break;
	}
}

static void many_case(enum loop_backend b)
{
	struct many *m = calloc(1, sizeof(*m));
	struct loop_listener *li;
	struct sockaddr_in sa;
	struct rlimit rl;
	uint64_t t0;
	int lfd;

	assert_non_null(m);
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < 4 * MANY_N) {
		rl.rlim_cur =
			rl.rlim_max < 4 * MANY_N ? rl.rlim_max : 4 * MANY_N;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	m->l = loop_make(b, NULL);
	lfd = tcp_listener(&sa, 1024);
	li = loop_listen(m->l, lfd, many_accept, m);
	assert_non_null(li);
	t0 = test_now_ms();
	for (int i = 0; i < MANY_N; i++) {
		struct many_cli *k = &m->cli[i];

		k->m = m;
		k->len = (size_t)snprintf(k->msg, sizeof(k->msg),
					  "ping %d from client\n", i);
		assert_int_equal(loop_conn_connect(m->l, (struct sockaddr *)&sa,
						   sizeof(sa), many_cli_cb, k,
						   &k->c),
				 0);
	}
	RUN_UNTIL(m->l, m->cli_closed == MANY_N && m->srv_closed == MANY_N);
	print_message("    %d connections echoed in %" PRIu64 " ms\n", MANY_N,
		      test_now_ms() - t0);
	assert_int_equal(m->errors, 0);
	assert_int_equal(m->accepted, MANY_N);
	assert_int_equal(m->connected, MANY_N);
	assert_int_equal(loop_conn_count(m->l), 0);
	loop_listener_stop(&li);
	close(lfd);
	loop_free(&m->l);
	free(m);
}

static void test_many_conns(void **state)
{
	(void)state;
	FOR_EACH_BACKEND(many_case);
}

/* ---- foreign fds ---- */

struct pctx {
	struct loop_poll *p;
	unsigned calls;
	unsigned last;
	bool read_it, remove_in_cb;
	int fd;
};

static void pctx_cb(struct loop_poll *p, unsigned revents, void *arg)
{
	struct pctx *x = arg;
	uint8_t b[64];

	assert_ptr_equal(p, x->p);
	x->calls++;
	x->last = revents;
	if (x->read_it)
		(void)read(x->fd, b, sizeof(b));
	if (x->remove_in_cb)
		loop_poll_remove(&x->p);
}

static void *efd_writer(void *arg)
{
	int fd = *(int *)arg;
	struct timespec ts = {.tv_nsec = 20 * 1000000};

	nanosleep(&ts, NULL);
	(void)eventfd_write(fd, 1);
	return NULL;
}

static void poll_case(enum loop_backend b)
{
	struct loop *l = loop_make(b, NULL);
	struct pctx x, y;
	pthread_t th;
	unsigned before;
	uint8_t c;
	int pfd[2], efd;

	assert_int_equal(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
	memset(&x, 0, sizeof(x));
	x.fd = pfd[0];
	x.p = loop_poll_add(l, pfd[0], LOOP_POLL_IN, pctx_cb, &x);
	assert_non_null(x.p);
	run_for(l, 50);
	assert_int_equal(x.calls, 0);
	assert_int_equal(write(pfd[1], "z", 1), 1);
	RUN_UNTIL(l, x.calls >= 1);
	assert_true(x.last & LOOP_POLL_IN);
	/* Level-triggered: not read, so it keeps coming. */
	before = x.calls;
	for (int i = 0; i < 5; i++)
		assert_true(loop_run_once(l, 10) >= 0);
	assert_true(x.calls >= before + 3);
	assert_int_equal(read(pfd[0], &c, 1), 1);
	run_for(l, 20);
	before = x.calls;
	run_for(l, 50);
	assert_int_equal(x.calls, before);
	/* Masked: nothing; unmasked: again. */
	assert_int_equal(loop_poll_modify(x.p, 0), 0);
	assert_int_equal(write(pfd[1], "z", 1), 1);
	run_for(l, 50);
	assert_int_equal(x.calls, before);
	assert_int_equal(loop_poll_modify(x.p, LOOP_POLL_IN), 0);
	RUN_UNTIL(l, x.calls > before);
	/* Hang-up reads as readable (EOF) for an IN poll. */
	x.read_it = true;
	run_for(l, 30);
	before = x.calls;
	close(pfd[1]);
	RUN_UNTIL(l, x.calls > before);
	assert_true(x.last & LOOP_POLL_IN);
	loop_poll_remove(&x.p);
	assert_null(x.p);
	before = x.calls;
	run_for(l, 50);
	assert_int_equal(x.calls, before);
	close(pfd[0]);

	/* OUT on a pipe's write end; removed from its own callback. */
	assert_int_equal(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
	memset(&y, 0, sizeof(y));
	y.remove_in_cb = true;
	y.p = loop_poll_add(l, pfd[1], LOOP_POLL_OUT, pctx_cb, &y);
	assert_non_null(y.p);
	RUN_UNTIL(l, y.calls == 1);
	assert_true(y.last & LOOP_POLL_OUT);
	run_for(l, 50);
	assert_int_equal(y.calls, 1);
	close(pfd[0]);
	close(pfd[1]);

	/* An eventfd written by another thread. */
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	memset(&y, 0, sizeof(y));
	y.fd = efd;
	y.read_it = true;
	y.p = loop_poll_add(l, efd, LOOP_POLL_IN, pctx_cb, &y);
	assert_int_equal(pthread_create(&th, NULL, efd_writer, &efd), 0);
	RUN_UNTIL(l, y.calls == 1);
	pthread_join(th, NULL);
	run_for(l, 50);
	assert_int_equal(y.calls, 1);
	loop_poll_remove(&y.p);
	loop_poll_remove(&y.p); /* NULL: no-op */
	close(efd);
	loop_free(&l);
}

static void test_poll_foreign(void **state)
{
	(void)state;
	FOR_EACH_BACKEND(poll_case);
}

/* ---- loop_post and loop_stop from other threads ---- */

#define POST_N 1000

struct postctx {
	struct loop *l;
	pthread_t loop_thread;
	unsigned seen;
	unsigned next[2];
	unsigned bad;
};

struct postmsg {
	struct postctx *x;
	unsigned src, seq;
};

static struct postmsg post_msgs[2][POST_N];

static void post_handler(void *arg)
{
	struct postmsg *m = arg;
	struct postctx *x = m->x;

	if (!pthread_equal(pthread_self(), x->loop_thread))
		x->bad++;
	if (m->seq != x->next[m->src])
		x->bad++;
	x->next[m->src] = m->seq + 1;
	x->seen++;
}

static void *post_thread(void *arg)
{
	struct postmsg *msgs = arg;

	/* No cmocka asserts off the main thread. */
	for (unsigned i = 0; i < POST_N; i++)
		if (loop_post(msgs[i].x->l, post_handler, &msgs[i]) != 0)
			abort();
	return NULL;
}

static void *stop_thread(void *arg)
{
	struct timespec ts = {.tv_nsec = 30 * 1000000};

	nanosleep(&ts, NULL);
	loop_stop(arg);
	return NULL;
}

static void post_case(enum loop_backend b)
{
	struct postctx x;
	pthread_t th[2];
	uint64_t t0;

	memset(&x, 0, sizeof(x));
	x.l = loop_make(b, NULL);
	x.loop_thread = pthread_self();
	for (unsigned s = 0; s < 2; s++)
		for (unsigned i = 0; i < POST_N; i++)
			post_msgs[s][i] = (struct postmsg){&x, s, i};
	for (unsigned s = 0; s < 2; s++)
		assert_int_equal(
			pthread_create(&th[s], NULL, post_thread, post_msgs[s]),
			0);
	RUN_UNTIL(x.l, x.seen == 2 * POST_N);
	for (unsigned s = 0; s < 2; s++)
		pthread_join(th[s], NULL);
	assert_int_equal(x.bad, 0);

	/* From the loop's own thread too. */
	post_msgs[0][0].seq = POST_N;
	assert_int_equal(loop_post(x.l, post_handler, &post_msgs[0][0]), 0);
	RUN_UNTIL(x.l, x.seen == 2 * POST_N + 1);

	/* loop_stop from another thread ends a blocked loop_run... */
	t0 = test_now_ms();
	assert_int_equal(pthread_create(&th[0], NULL, stop_thread, x.l), 0);
	assert_int_equal(loop_run(x.l), 0);
	pthread_join(th[0], NULL);
	assert_true(test_now_ms() - t0 < 5000);
	/* ...and a stop before loop_run is not lost. */
	loop_stop(x.l);
	assert_int_equal(loop_run(x.l), 0);
	assert_int_equal(x.bad, 0);
	loop_free(&x.l);
}

static void test_post(void **state)
{
	(void)state;
	FOR_EACH_BACKEND(post_case);
}

/* ---- stale ids ---- */

static void find_case(enum loop_backend b)
{
	struct loop *l = loop_make(b, NULL);
	struct rec r1, r2;
	uint64_t id1, id2;
	int c1, c2;

	rec_init(&r1, l);
	c1 = pair_setup(l, &r1, 0);
	id1 = r1.id;
	assert_ptr_equal(loop_conn_find(l, id1), r1.c);
	rec_finish(&r1);
	assert_null(loop_conn_find(l, id1));

	rec_init(&r2, l);
	c2 = pair_setup(l, &r2, 0);
	id2 = r2.id;
	assert_true(id1 != id2);
	if ((uint32_t)id1 == (uint32_t)id2) /* same slot, new generation */
		assert_true(((id1 >> 32) & 0xffffff) !=
			    ((id2 >> 32) & 0xffffff));
	assert_null(loop_conn_find(l, id1));
	assert_ptr_equal(loop_conn_find(l, id2), r2.c);
	assert_null(loop_conn_find(l, id2 ^ (1ull << 56))); /* worker */
	assert_null(loop_conn_find(l, id2 ^ (1ull << 32))); /* generation */
	assert_null(loop_conn_find(l, (id2 & ~0xffffffffull) | 0xfffffff0u));
	assert_null(loop_conn_find(l, 0));
	/* Closing already: not found any more. */
	rec_close(&r2, false);
	assert_null(loop_conn_find(l, id2));
	RUN_UNTIL(l, r2.closed == 1);
	buf_free(&r2.got);
	close(c1);
	close(c2);
	loop_free(&l);
}

static void test_find_stale(void **state)
{
	(void)state;
	FOR_EACH_BACKEND(find_case);
}

/* ---- pause / resume ---- */

static void pause_in_recv(struct rec *r, const struct loop_conn_ev *ev)
{
	(void)ev;
	if (r->recvs == 1)
		loop_conn_recv_pause(r->c);
}

struct toggle {
	struct rec *r;
	struct loop_timer t;
	unsigned pauses;
};

static void toggle_resume(struct loop_timer *t, void *arg)
{
	struct toggle *g = arg;

	(void)t;
	if (g->r->c != NULL)
		loop_conn_recv_resume(g->r->c);
}

static void toggle_on_recv(struct rec *r, const struct loop_conn_ev *ev)
{
	struct toggle *g = r->user;

	(void)ev;
	if (r->recvs % 3 == 0) {
		loop_conn_recv_pause(r->c);
		loop_conn_recv_pause(r->c); /* twice is fine */
		g->pauses++;
		loop_timer_arm(r->l, &g->t, 1);
	}
}

static void pause_case(enum loop_backend b)
{
	const size_t more = 48u << 10;
	struct loop *l = loop_make(b, NULL);
	uint8_t *data = malloc(more);
	struct toggle g;
	unsigned recvs;
	uint64_t sent = 0;
	struct rec r;
	int cfd;

	assert_non_null(data);
	for (size_t k = 0; k < more; k++)
		data[k] = test_pat(k);
	rec_init(&r, l);
	r.verify = true;
	r.on_recv = pause_in_recv;
	cfd = pair_setup(l, &r, 0);
	write_all(cfd, data, 1000);
	RUN_UNTIL(l, r.recvs == 1);
	recvs = r.recvs;
	write_all(cfd, data + 1000, more - 1000);
	run_for(l, 150);
	assert_int_equal(r.recvs, recvs); /* paused: nothing delivered */
	shutdown(cfd, SHUT_WR);
	run_for(l, 100);
	assert_int_equal(r.eofs, 0); /* EOF waits behind the data */
	loop_conn_recv_resume(r.c);
	loop_conn_recv_resume(r.c);
	RUN_UNTIL(l, r.total == more && r.eofs == 1);
	assert_int_equal(r.eof_at, more);
	assert_int_equal(r.bad, 0);
	rec_finish(&r);
	close(cfd);

	/* Pause and resume (from a timer) over and over while streaming. */
	rec_init(&r, l);
	r.verify = true;
	memset(&g, 0, sizeof(g));
	g.r = &r;
	loop_timer_init(&g.t, toggle_resume, &g);
	r.user = &g;
	r.on_recv = toggle_on_recv;
	cfd = pair_setup(l, &r, 0);
	fd_nonblock(cfd);
	{
		const uint64_t total = 1u << 20;
		uint8_t chunk[8192];
		uint64_t t0 = test_now_ms();

		while (r.total < total) {
			if (sent < total) {
				size_t n = sizeof(chunk);
				ssize_t w;

				if (total - sent < n)
					n = (size_t)(total - sent);
				for (size_t k = 0; k < n; k++)
					chunk[k] = test_pat(sent + k);
				w = send(cfd, chunk, n, MSG_NOSIGNAL);
				if (w > 0)
					sent += (uint64_t)w;
			}
			assert_true(loop_run_once(l, 2) >= 0);
			if (test_now_ms() - t0 > TEST_DEADLINE_MS)
				fail_msg("toggle: timeout");
		}
	}
	assert_int_equal(r.bad, 0);
	assert_true(g.pauses > 3);
	loop_timer_disarm(l, &g.t);
	rec_finish(&r);
	close(cfd);
	free(data);
	loop_free(&l);
}

static void test_pause_resume(void **state)
{
	(void)state;
	FOR_EACH_BACKEND(pause_case);
}

/* ---- connect ---- */

static void connect_case(enum loop_backend b)
{
	struct loop *l = loop_make(b, NULL);
	struct sockaddr_in sa, dead;
	struct sockaddr_un ua;
	struct acceptor a;
	struct rec cli, srv, bad;
	char *dir, path[400];
	int lfd, ufd;

	/* TCP; bytes queued before CONNECTED go out after it. */
	lfd = tcp_listener(&sa, 16);
	memset(&a, 0, sizeof(a));
	a.l = l;
	a.rec = &srv;
	rec_init(&srv, l);
	rec_init(&cli, l);
	a.li = loop_listen(l, lfd, acc_cb, &a);
	assert_int_equal(loop_conn_connect(l, (struct sockaddr *)&sa,
					   sizeof(sa), rec_cb, &cli, &cli.c),
			 0);
	assert_int_equal(loop_conn_send(cli.c, "early", 5), 0);
	RUN_UNTIL(l, cli.connected == 1 && srv.total == 5);
	assert_memory_equal(buf_head(&srv.got), "early", 5);
	/* Both TCP ends send without Nagle delay. */
	{
		int v = 0;
		socklen_t vl = sizeof(v);

		assert_int_equal(getsockopt(loop_conn_fd(srv.c), IPPROTO_TCP,
					    TCP_NODELAY, &v, &vl),
				 0);
		assert_int_equal(v, 1);
		v = 0;
		assert_int_equal(getsockopt(loop_conn_fd(cli.c), IPPROTO_TCP,
					    TCP_NODELAY, &v, &vl),
				 0);
		assert_int_equal(v, 1);
	}
	/* Both ends are open; only the accepted one is inbound. */
	assert_int_equal(loop_conn_count(l), 2);
	assert_int_equal(loop_conn_count_inbound(l), 1);
	assert_int_equal(loop_conn_send(srv.c, "back", 4), 0);
	RUN_UNTIL(l, cli.total == 4);
	assert_memory_equal(buf_head(&cli.got), "back", 4);
	rec_finish(&cli);
	RUN_UNTIL(l, srv.eofs == 1);
	assert_int_equal(loop_conn_count(l), 1);
	assert_int_equal(loop_conn_count_inbound(l), 1);
	rec_finish(&srv);
	assert_int_equal(loop_conn_count_inbound(l), 0);
	loop_listener_stop(&a.li);
	close(lfd);

	/* Unix stream socket. */
	dir = testutil_mkdtemp("ringmail-loop");
	assert_non_null(dir);
	snprintf(path, sizeof(path), "%s/s", dir);
	memset(&ua, 0, sizeof(ua));
	ua.sun_family = AF_UNIX;
	assert_true(strlen(path) < sizeof(ua.sun_path));
	memcpy(ua.sun_path, path, strlen(path) + 1);
	ufd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_int_equal(bind(ufd, (struct sockaddr *)&ua, sizeof(ua)), 0);
	assert_int_equal(listen(ufd, 16), 0);
	rec_init(&srv, l);
	rec_init(&cli, l);
	memset(&a, 0, sizeof(a));
	a.l = l;
	a.rec = &srv;
	a.li = loop_listen(l, ufd, acc_cb, &a);
	assert_non_null(a.li);
	assert_int_equal(loop_conn_connect(l, (struct sockaddr *)&ua,
					   sizeof(ua), rec_cb, &cli, &cli.c),
			 0);
	RUN_UNTIL(l, cli.connected == 1 && srv.c != NULL);
	assert_int_equal(loop_conn_send(cli.c, "unix", 4), 0);
	RUN_UNTIL(l, srv.total == 4);
	assert_memory_equal(buf_head(&srv.got), "unix", 4);
	rec_finish(&cli);
	rec_finish(&srv);
	loop_listener_stop(&a.li);
	close(ufd);
	unlink(path);

	/* Refused (a port nobody listens on) and a missing unix path. */
	lfd = tcp_listener(&dead, 1);
	close(lfd);
	rec_init(&bad, l);
	assert_int_equal(loop_conn_connect(l, (struct sockaddr *)&dead,
					   sizeof(dead), rec_cb, &bad, &bad.c),
			 0);
	RUN_UNTIL(l, bad.errors == 1);
	assert_int_equal(bad.err, -ECONNREFUSED);
	assert_int_equal(bad.connected, 0);
	rec_finish(&bad);

	rec_init(&bad, l);
	assert_int_equal(loop_conn_connect(l, (struct sockaddr *)&ua,
					   sizeof(ua), rec_cb, &bad, &bad.c),
			 0);
	RUN_UNTIL(l, bad.errors == 1);
	assert_true(bad.err == -ENOENT || bad.err == -ECONNREFUSED);
	rec_finish(&bad);
	assert_int_equal(loop_conn_connect(l, (struct sockaddr *)&ua, 0, rec_cb,
					   &bad, &bad.c),
			 -EINVAL);
	testutil_rmtree(dir);
	free(dir);
	assert_int_equal(loop_conn_count(l), 0);
	assert_int_equal(loop_conn_count_inbound(l), 0);
	loop_free(&l);
}

static void test_connect(void **state)
{
	(void)state;
	FOR_EACH_BACKEND(connect_case);
}

/* ---- receive with a tiny buffer ring ---- */

static void stall_case(enum loop_backend b)
{
	const uint64_t total = 2u << 20;
	struct loop_opts o;
	struct loop *l;
	uint8_t chunk[65536];
	uint64_t sent = 0, t0;
	struct rec r;
	int cfd;

	memset(&o, 0, sizeof(o));
	o.buf_count = 2;
	o.buf_size = 512;
	l = loop_make(b, &o);
	rec_init(&r, l);
	r.verify = true;
	cfd = pair_setup(l, &r, 0);
	fd_nonblock(cfd);
	t0 = test_now_ms();
	while (r.total < total) {
		if (sent < total) {
			size_t n = sizeof(chunk);
			ssize_t w;

			if (total - sent < n)
				n = (size_t)(total - sent);
			for (size_t k = 0; k < n; k++)
				chunk[k] = test_pat(sent + k);
			w = send(cfd, chunk, n, MSG_NOSIGNAL);
			if (w > 0)
				sent += (uint64_t)w;
		}
		assert_true(loop_run_once(l, 2) >= 0);
		if (test_now_ms() - t0 > TEST_DEADLINE_MS)
			fail_msg("stall: timeout at %" PRIu64, r.total);
	}
	assert_int_equal(r.bad, 0);
	assert_int_equal(r.errors, 0);
	print_message("    recvs=%u stalls=%" PRIu64 "\n", r.recvs,
		      l->stats.rx_stalls);
	/* Never more than a buffer at a time. */
	for (unsigned i = 0; i < r.ntypes; i++)
		assert_true(r.type_lens[i] <= 512);
	if (b == LOOP_BACKEND_URING)
		assert_true(l->stats.rx_stalls > 0);
	rec_finish(&r);
	close(cfd);
	loop_free(&l);
}

static void test_rx_stall(void **state)
{
	(void)state;
	FOR_EACH_BACKEND(stall_case);
}

/* ---- loop_free with everything still open ---- */

static void nop_poll(struct loop_poll *p, unsigned revents, void *arg)
{
	(void)p;
	(void)revents;
	(void)arg;
}

static void nop_timer(struct loop_timer *t, void *arg)
{
	(void)t;
	(void)arg;
}

static void free_open_case(enum loop_backend b)
{
	struct loop *l = loop_make(b, NULL);
	static uint8_t big[1 << 20];
	struct sockaddr_in sa;
	struct loop_timer t;
	struct acceptor a;
	struct rec r, r2;
	int lfd, cfd, cfd2, pfd[2];

	rec_init(&r, l);
	rec_init(&r2, l);
	cfd = pair_setup(l, &r, 8192);
	cfd2 = pair_setup(l, &r2, 0);
	assert_int_equal(loop_conn_send(r.c, big, sizeof(big)), 0);
	loop_conn_recv_pause(r2.c);
	lfd = tcp_listener(&sa, 4);
	memset(&a, 0, sizeof(a));
	a.l = l;
	a.li = loop_listen(l, lfd, acc_cb, &a);
	assert_int_equal(pipe2(pfd, O_CLOEXEC | O_NONBLOCK), 0);
	assert_non_null(loop_poll_add(l, pfd[0], LOOP_POLL_IN, nop_poll, NULL));
	loop_timer_init(&t, nop_timer, NULL);
	loop_timer_arm(l, &t, 10000);
	assert_int_equal(loop_post(l, free, NULL), 0);
	run_for(l, 50);
	assert_int_equal(loop_post(l, free, NULL), 0);
	loop_free(&l); /* no callbacks, no leaks (ASan checks) */
	assert_int_equal(r.closed, 0);
	buf_free(&r.got);
	buf_free(&r2.got);
	close(cfd);
	close(cfd2);
	close(lfd);
	close(pfd[0]);
	close(pfd[1]);
}

static void test_free_open(void **state)
{
	(void)state;
	FOR_EACH_BACKEND(free_open_case);
}

/* ---- built on one thread, run on another ---- */

struct other {
	atomic_uint accepted, posted;
};

static void other_accept(struct loop_listener *li, int fd,
			 const struct sockaddr *peer, socklen_t peer_len,
			 void *arg)
{
	struct other *o = arg;

	(void)li;
	(void)peer;
	(void)peer_len;
	if (write(fd, "hi", 2) == 2)
		atomic_fetch_add(&o->accepted, 1);
	close(fd);
}

static void other_post(void *arg)
{
	struct other *o = arg;

	atomic_fetch_add(&o->posted, 1);
}

static void *other_run(void *arg)
{
	return (void *)(intptr_t)loop_run(arg);
}

static void other_thread_case(enum loop_backend b)
{
	struct loop *l = loop_make(b, NULL);
	struct loop_listener *li;
	struct sockaddr_in sa;
	struct other o;
	pthread_t th;
	void *rc = NULL;
	char hi[2];
	uint64_t t0;
	int lfd, cfd;

	atomic_init(&o.accepted, 0);
	atomic_init(&o.posted, 0);
	lfd = tcp_listener(&sa, 4);
	li = loop_listen(l, lfd, other_accept, &o);
	assert_non_null(li);
	assert_int_equal(pthread_create(&th, NULL, other_run, l), 0);
	cfd = tcp_client(&sa, 0);
	read_exact(cfd, hi, 2);
	assert_memory_equal(hi, "hi", 2);
	assert_int_equal(loop_post(l, other_post, &o), 0);
	t0 = test_now_ms();
	while (atomic_load(&o.posted) == 0 &&
	       test_now_ms() - t0 < TEST_DEADLINE_MS) {
		struct timespec ts = {.tv_nsec = 1000000};

		nanosleep(&ts, NULL);
	}
	assert_int_equal(atomic_load(&o.posted), 1);
	loop_stop(l);
	pthread_join(th, &rc);
	assert_int_equal((intptr_t)rc, 0);
	assert_int_equal(atomic_load(&o.accepted), 1);
	/* Freed here, after the thread that ran it has gone. */
	loop_free(&l);
	close(cfd);
	close(lfd);
}

static void test_other_thread(void **state)
{
	(void)state;
	FOR_EACH_BACKEND(other_thread_case);
}

/* ---- kernel TLS: record types both ways ---- */

/* ---- a timer armed after a quiet spell ---- */

/* A loop idle for longer than a timer's period, then woken by an accept
 * (or a post from another thread) whose handler arms that timer: the timer
 * must run its whole period in real time. It once fired at once, because
 * the backends dispatch inside their wait and the clock was refreshed only
 * after it, so the handler armed from the time the quiet spell began. */
#define QUIET_SPELL_MS 400u
#define QUIET_TIMER_MS 250u

struct quiet {
	struct loop *l;
	struct loop_timer t;
	uint64_t armed_real, fired_real;
	bool fired;
	int fd;
};

static void quiet_fire(struct loop_timer *t, void *arg)
{
	struct quiet *q = arg;

	(void)t;
	q->fired_real = test_now_ms();
	q->fired = true;
}

static void quiet_arm(struct quiet *q)
{
	q->armed_real = test_now_ms();
	loop_timer_arm(q->l, &q->t, QUIET_TIMER_MS);
}

static void quiet_accept(struct loop_listener *li, int fd,
			 const struct sockaddr *peer, socklen_t peer_len,
			 void *arg)
{
	struct quiet *q = arg;

	(void)li;
	(void)peer;
	(void)peer_len;
	q->fd = fd;
	quiet_arm(q);
}

static void quiet_post(void *arg)
{
	quiet_arm(arg);
}

struct quiet_waker {
	const struct sockaddr_in *sa; /* connect to it, or post when NULL */
	struct quiet *q;
	int cfd;
};

static void *quiet_wake(void *arg)
{
	struct quiet_waker *w = arg;
	struct timespec ts = {.tv_sec = QUIET_SPELL_MS / 1000,
			      .tv_nsec = (QUIET_SPELL_MS % 1000) * 1000000L};

	nanosleep(&ts, NULL);
	if (w->sa != NULL)
		w->cfd = tcp_client(w->sa, 0);
	else
		assert_int_equal(loop_post(w->q->l, quiet_post, w->q), 0);
	return NULL;
}

static void quiet_round(struct quiet *q, const struct sockaddr_in *sa,
			int wait_ms)
{
	struct quiet_waker w = {.sa = sa, .q = q, .cfd = -1};
	pthread_t th;

	q->fired = false;
	q->armed_real = 0;
	assert_int_equal(pthread_create(&th, NULL, quiet_wake, &w), 0);
	/* One wait covers the whole quiet spell: no timer is armed, so
	 * the loop sleeps in the kernel until the waker acts. */
	while (q->armed_real == 0)
		assert_true(loop_run_once(q->l, wait_ms) >= 0);
	pthread_join(th, NULL);
	RUN_UNTIL(q->l, q->fired);
	/* Whole milliseconds on both clocks: allow one of rounding. */
	if (q->fired_real + 1 < q->armed_real + QUIET_TIMER_MS)
		fail_msg("timer armed after %u ms of quiet fired after %llu ms "
			 "instead of %u",
			 QUIET_SPELL_MS,
			 (unsigned long long)(q->fired_real - q->armed_real),
			 QUIET_TIMER_MS);
	if (w.cfd >= 0)
		close(w.cfd);
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
}

static void quiet_case(enum loop_backend b)
{
	struct loop *l = loop_make(b, NULL);
	struct loop_listener *li;
	struct sockaddr_in sa;
	struct quiet q;
	int lfd;

	memset(&q, 0, sizeof(q));
	q.l = l;
	q.fd = -1;
	loop_timer_init(&q.t, quiet_fire, &q);
	lfd = tcp_listener(&sa, 4);
	li = loop_listen(l, lfd, quiet_accept, &q);
	assert_non_null(li);
	/* Woken by an accept, waiting without a limit and with one
	 * longer than the spell; then by a post from another thread. */
	quiet_round(&q, &sa, -1);
	quiet_round(&q, &sa, 5000);
	quiet_round(&q, NULL, -1);
	loop_listener_stop(&li);
	close(lfd);
	loop_free(&l);
}

static void test_quiet_then_timer(void **state)
{
	(void)state;
	FOR_EACH_BACKEND(quiet_case);
}

static int ktls_install(int fd, int dir)
{
	struct tls12_crypto_info_aes_gcm_128 ci;

	if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0)
		return -errno;
	memset(&ci, 0, sizeof(ci));
	ci.info.version = TLS_1_2_VERSION;
	ci.info.cipher_type = TLS_CIPHER_AES_GCM_128;
	memset(ci.key, 0x42, sizeof(ci.key));
	memset(ci.iv, 0x17, sizeof(ci.iv));
	memset(ci.salt, 0x05, sizeof(ci.salt));
	if (setsockopt(fd, SOL_TLS, dir, &ci, sizeof(ci)) < 0)
		return -errno;
	return 0;
}

static void ktls_case(enum loop_backend b)
{
	struct loop *l = loop_make(b, NULL);
	struct rec rx, tx;
	int cfd, r;

	rec_init(&rx, l);
	rec_init(&tx, l);
	cfd = pair_setup(l, &rx, 0);
	r = ktls_install(cfd, TLS_TX);
	if (r == 0)
		r = ktls_install(loop_conn_fd(rx.c), TLS_RX);
	if (r < 0) {
		print_message("    kTLS unavailable here: %s\n", strerror(-r));
		assert_null(getenv("RINGMAIL_REQUIRE_KTLS"));
		rec_finish(&rx);
		close(cfd);
		loop_free(&l);
		return;
	}
	loop_conn_set_tls_records(rx.c);
	fd_nonblock(cfd);
	tx.c = loop_conn_new(l, cfd, rec_cb, &tx);
	assert_non_null(tx.c);
	assert_int_equal(loop_conn_send(tx.c, "hello", 5), 0);
	assert_int_equal(loop_conn_send_tls_record(tx.c, 22, "\x01\x02\x03", 3),
			 0);
	assert_int_equal(loop_conn_send(tx.c, "world", 5), 0);
	RUN_UNTIL(l, rx.total == 13);
	assert_int_equal(rx.ntypes, 3);
	assert_int_equal(rx.types[0], 23);
	assert_int_equal(rx.type_lens[0], 5);
	assert_int_equal(rx.types[1], 22);
	assert_int_equal(rx.type_lens[1], 3);
	assert_int_equal(rx.types[2], 23);
	assert_memory_equal(buf_head(&rx.got), "hello\x01\x02\x03world", 13);
	assert_int_equal(rx.errors, 0);
	rec_finish(&tx);
	RUN_UNTIL(l, rx.eofs == 1 || rx.errors == 1);
	rec_finish(&rx);
	loop_free(&l);
}

static void test_ktls_records(void **state)
{
	(void)state;
	if (!loop_probe_kernel()->ktls_ulp &&
	    getenv("RINGMAIL_REQUIRE_KTLS") == NULL) {
		print_message("  no kernel TLS here: skipped\n");
		skip();
	}
	FOR_EACH_BACKEND(ktls_case);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_and_opts),
		cmocka_unit_test(test_accept),
		cmocka_unit_test(test_recv_send),
		cmocka_unit_test(test_send_large),
		cmocka_unit_test(test_send_limit),
		cmocka_unit_test(test_tls_record_order),
		cmocka_unit_test(test_eof),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_timers),
		cmocka_unit_test(test_close_inflight),
		cmocka_unit_test(test_close_flush),
		cmocka_unit_test(test_many_conns),
		cmocka_unit_test(test_poll_foreign),
		cmocka_unit_test(test_post),
		cmocka_unit_test(test_find_stale),
		cmocka_unit_test(test_pause_resume),
		cmocka_unit_test(test_connect),
		cmocka_unit_test(test_rx_stall),
		cmocka_unit_test(test_free_open),
		cmocka_unit_test(test_other_thread),
		cmocka_unit_test(test_quiet_then_timer),
		cmocka_unit_test(test_ktls_records),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
