// bench/micro/bench_dkim: DKIM cost per core (filter/dkim over
// libopendkim, RSA 2048 as chatmail's keys).
//  - Sign: dkim_signer_sign of a chat-sized message (what every bounce
//    and, later, every outgoing message costs on the pool).
//  - Verify: the whole verification of one signed message with its key
//    at hand: feed (body hash) + end + finish (header hash, RSA verify).
//  - Feed: the streaming part alone, which runs on the loop thread as DATA
//    arrives (MB/s).
//  - CheckCached: end of DATA to verdict through the real path a port-25
//    session takes with the key in the worker's cache: dkim_check_start
//    on a loop, dkim_verify_finish on a pool thread, the verdict posted
//    back to the loop. Counters p50_us / p99_us: that added latency.
// Run: build/release/bench/bench_dkim
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

extern "C" {
#include "core/loop.h"
#include "core/pool.h"
#include "filter/dkim.h"
#include "filter/dkim_cache.h"
#include "filter/dkim_check.h"
#include "filter/dkim_key.h"
}

namespace
{

struct BenchKeys {
	struct dkim_ctx *ctx = nullptr;
	struct dkim_signer *signer = nullptr;
	char record[2048];
	char dir[64] = "/tmp/ringmail-bench-dkim-XXXXXX";

	BenchKeys()
	{
		char key[128];

		if (mkdtemp(dir) == nullptr)
			abort();
		snprintf(key, sizeof(key), "%s/k.private", dir);
		if (dkim_keygen(key, 2048, false) < 0 ||
		    dkim_record_value(key, record, sizeof(record)) < 0 ||
		    dkim_ctx_new(&ctx) < 0 ||
		    dkim_signer_load(ctx, "peer.test", "sel", key, &signer) < 0)
			abort();
		unlink(key);
		rmdir(dir);
	}
};

BenchKeys &bench_keys()
{
	static BenchKeys k;
	return k;
}

std::string bench_message(size_t body)
{
	std::string m = "From: Alice <alice@peer.test>\r\n"
			"To: <bob@example.org>\r\n"
			"Subject: [...]\r\n"
			"Date: Tue, 01 Dec 2026 21:00:00 +0000\r\n"
			"Message-ID: <bench@peer.test>\r\n"
			"Autocrypt: addr=alice@peer.test; keydata=QUJDRA==\r\n"
			"MIME-Version: 1.0\r\n"
			"Content-Type: multipart/encrypted; "
			"protocol=\"application/pgp-encrypted\"; "
			"boundary=\"b\"\r\n\r\n";
	static const char sym[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
				  "qrstuvwxyz0123456789+/";
	uint64_t x = 88172645463325252ull;

	while (m.size() < body) {
		for (int i = 0; i < 76; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			m += sym[x % 64];
		}
		m += "\r\n";
	}
	return m;
}

std::string bench_signed(size_t body)
{
	std::string m = bench_message(body);
	char *hdr;
	size_t hl;

	if (dkim_signer_sign(bench_keys().signer,
			     reinterpret_cast<const uint8_t *>(m.data()),
			     m.size(), &hdr, &hl) < 0)
		abort();
	std::string s(hdr, hl);
	free(hdr);
	return s + m;
}

void BM_Sign(benchmark::State &state)
{
	const std::string m =
		bench_message(static_cast<size_t>(state.range(0)));
	const uint8_t *p = reinterpret_cast<const uint8_t *>(m.data());

	for (auto _ : state) {
		char *hdr;
		size_t hl;

		if (dkim_signer_sign(bench_keys().signer, p, m.size(), &hdr,
				     &hl) < 0) {
			state.SkipWithError("sign failed");
			break;
		}
		benchmark::DoNotOptimize(hdr);
		free(hdr);
	}
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Sign)->Arg(2048)->Arg(1 << 20)->Unit(benchmark::kMicrosecond);

// Feed + end (+ finish with the key): one whole verification.
enum dkim_result bench_verify(const std::string &m, size_t chunk, bool finish)
{
	struct dkim_verify *v;
	enum dkim_result r;

	if (dkim_verify_new(bench_keys().ctx, &v) < 0)
		abort();
	for (size_t off = 0; off < m.size(); off += chunk)
		dkim_verify_feed(
			v, reinterpret_cast<const uint8_t *>(m.data()) + off,
			std::min(chunk, m.size() - off));
	r = dkim_verify_end(v, "peer.test");
	if (finish && r == DKIM_RES_PASS) {
		dkim_verify_set_key(v, 0, DKIM_KEY_FOUND, bench_keys().record);
		r = dkim_verify_finish(v);
	}
	dkim_verify_free(&v);
	return r;
}

void BM_Verify(benchmark::State &state)
{
	const std::string m = bench_signed(static_cast<size_t>(state.range(0)));

	for (auto _ : state) {
		if (bench_verify(m, 16384, true) != DKIM_RES_PASS) {
			state.SkipWithError("verify failed");
			break;
		}
	}
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Verify)->Arg(2048)->Arg(1 << 20)->Unit(benchmark::kMicrosecond);

void BM_Feed(benchmark::State &state)
{
	const std::string m = bench_signed(static_cast<size_t>(state.range(0)));

	for (auto _ : state)
		benchmark::DoNotOptimize(bench_verify(m, 16384, false));
	state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
				static_cast<int64_t>(m.size()));
}
BENCHMARK(BM_Feed)->Arg(2048)->Arg(1 << 20)->Unit(benchmark::kMicrosecond);

struct BenchCheck {
	struct loop *loop = nullptr;
	bool done = false;
	enum dkim_result res = DKIM_RES_FAIL;
};

void bench_check_done(enum dkim_result res, const char *detail, void *arg)
{
	BenchCheck *b = static_cast<BenchCheck *>(arg);

	(void)detail;
	b->done = true;
	b->res = res;
}

void BM_CheckCached(benchmark::State &state)
{
	const std::string m = bench_signed(2048);
	struct loop_opts lo;
	struct pool *pool = nullptr;
	struct dkim_checker *ck = nullptr;
	std::vector<double> us;
	BenchCheck b;

	memset(&lo, 0, sizeof(lo));
	lo.backend =
		state.range(0) == 0 ? LOOP_BACKEND_EPOLL : LOOP_BACKEND_URING;
	if (loop_new(&lo, &b.loop) < 0 || pool_new(1, &pool) < 0 ||
	    dkim_checker_new(b.loop, pool, "127.0.0.1:9", 0, &ck) < 0) {
		state.SkipWithError("setup failed");
		return;
	}
	(void)loop_run_once(b.loop, 0);
	for (auto _ : state) {
		struct dkim_verify *v;

		state.PauseTiming();
		if (dkim_verify_new(bench_keys().ctx, &v) < 0)
			abort();
		for (size_t off = 0; off < m.size(); off += 16384)
			dkim_verify_feed(
				v,
				reinterpret_cast<const uint8_t *>(m.data()) +
					off,
				std::min<size_t>(16384, m.size() - off));
		(void)dkim_verify_end(v, "peer.test");
		// The worker has the key (TTL an hour from the loop's now).
		dkim_cache_put(dkim_checker_cache(ck),
			       "sel._domainkey.peer.test", bench_keys().record,
			       3600, loop_now_ms(b.loop));
		b.done = false;
		state.ResumeTiming();
		auto t0 = std::chrono::steady_clock::now();
		if (dkim_check_start(ck, v, bench_check_done, &b, nullptr) < 0)
			abort();
		for (int i = 0; !b.done && i < 100000; i++)
			(void)loop_run_once(b.loop, 100);
		auto t1 = std::chrono::steady_clock::now();
		if (!b.done || b.res != DKIM_RES_PASS) {
			state.SkipWithError("check failed");
			break;
		}
		us.push_back(std::chrono::duration<double, std::micro>(t1 - t0)
				     .count());
	}
	if (!us.empty()) {
		std::sort(us.begin(), us.end());
		state.counters["p50_us"] = us[us.size() / 2];
		state.counters["p99_us"] = us[us.size() * 99 / 100];
	}
	state.SetItemsProcessed(state.iterations());
	dkim_checker_free(&ck);
	pool_free(&pool);
	loop_free(&b.loop);
}
// 0: epoll, 1: io_uring.
BENCHMARK(BM_CheckCached)
	->Arg(0)
	->Arg(1)
	->Unit(benchmark::kMicrosecond)
	->UseRealTime();

} // namespace

BENCHMARK_MAIN();
