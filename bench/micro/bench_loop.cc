// bench/micro/bench_loop: core/loop micro-benchmarks (Google Benchmark).
// Timer heap operations, loop_post wake-ups, and a 64-byte ping-pong over
// loopback TCP between two connections of one loop, per backend.
// Run: build/bench/bench_loop [--benchmark_filter=Echo]
#include <benchmark/benchmark.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

extern "C" {
#include "core/loop.h"
}

namespace
{

struct loop *bench_loop_new(enum loop_backend b)
{
	struct loop_opts o;
	struct loop *l = nullptr;

	std::memset(&o, 0, sizeof(o));
	o.backend = b;
	if (loop_new(&o, &l) < 0)
		return nullptr;
	return l;
}

void bench_timer_nop(struct loop_timer *, void *)
{
}

void BM_TimerArmDisarm(benchmark::State &state)
{
	const size_t n = static_cast<size_t>(state.range(0));
	struct loop *l = bench_loop_new(LOOP_BACKEND_EPOLL);
	std::vector<struct loop_timer> t(n);

	for (auto &x : t)
		loop_timer_init(&x, bench_timer_nop, nullptr);
	for (auto _ : state) {
		for (size_t i = 0; i < n; i++)
			loop_timer_arm(l, &t[i], (i * 7919u) % 60000u);
		for (size_t i = 0; i < n; i++)
			loop_timer_disarm(l, &t[(i * 31u) % n]);
	}
	state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
	loop_free(&l);
}
BENCHMARK(BM_TimerArmDisarm)->Arg(64)->Arg(10000);

void bench_post_count(void *arg)
{
	++*static_cast<unsigned *>(arg);
}

void BM_Post(benchmark::State &state)
{
	auto b = static_cast<enum loop_backend>(state.range(0));
	struct loop *l = bench_loop_new(b);
	unsigned seen = 0, want = 0;

	if (l == nullptr) {
		state.SkipWithError("backend unavailable");
		return;
	}
	for (auto _ : state) {
		loop_post(l, bench_post_count, &seen);
		want++;
		while (seen != want)
			loop_run_once(l, 100);
	}
	state.SetLabel(loop_backend_name(b));
	loop_free(&l);
}
BENCHMARK(BM_Post)->Arg(LOOP_BACKEND_URING)->Arg(LOOP_BACKEND_EPOLL);

struct echo {
	struct loop *l;
	struct loop_conn *cli;
	struct loop_conn *srv;
	size_t got;
	bool connected;
};

void echo_srv_cb(struct loop_conn *c, const struct loop_conn_ev *ev, void *)
{
	if (ev->type == LOOP_CONN_EV_RECV)
		loop_conn_send(c, ev->data, ev->len);
}

void echo_cli_cb(struct loop_conn *, const struct loop_conn_ev *ev, void *arg)
{
	auto *e = static_cast<struct echo *>(arg);

	if (ev->type == LOOP_CONN_EV_CONNECTED)
		e->connected = true;
	else if (ev->type == LOOP_CONN_EV_RECV)
		e->got += ev->len;
}

void echo_accept(struct loop_listener *, int fd, const struct sockaddr *,
		 socklen_t, void *arg)
{
	auto *e = static_cast<struct echo *>(arg);

	e->srv = loop_conn_new(e->l, fd, echo_srv_cb, e);
}

void BM_Echo(benchmark::State &state)
{
	auto b = static_cast<enum loop_backend>(state.range(0));
	struct echo e = {};
	struct sockaddr_in sa = {};
	socklen_t len = sizeof(sa);
	struct loop_listener *li;
	char msg[64];
	int lfd;

	e.l = bench_loop_new(b);
	if (e.l == nullptr) {
		state.SkipWithError("backend unavailable");
		return;
	}
	std::memset(msg, 'p', sizeof(msg));
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(lfd, reinterpret_cast<struct sockaddr *>(&sa), sizeof(sa));
	listen(lfd, 4);
	getsockname(lfd, reinterpret_cast<struct sockaddr *>(&sa), &len);
	li = loop_listen(e.l, lfd, echo_accept, &e);
	loop_conn_connect(e.l, reinterpret_cast<struct sockaddr *>(&sa),
			  sizeof(sa), echo_cli_cb, &e, &e.cli);
	for (int i = 0; i < 1000 && (!e.connected || e.srv == nullptr); i++)
		loop_run_once(e.l, 10);
	for (auto _ : state) {
		size_t want = e.got + sizeof(msg);

		loop_conn_send(e.cli, msg, sizeof(msg));
		while (e.got < want)
			loop_run_once(e.l, 100);
	}
	state.SetLabel(loop_backend_name(b));
	loop_listener_stop(&li);
	loop_free(&e.l);
	close(lfd);
}
BENCHMARK(BM_Echo)->Arg(LOOP_BACKEND_URING)->Arg(LOOP_BACKEND_EPOLL);

} // namespace

BENCHMARK_MAIN();
