// bench/micro/bench_accounts: core/accounts (Google Benchmark).
//  - Verify: accounts_authenticate of an existing account (LMDB read +
//    SHA512-crypt, 5000 rounds): logins verified per second per thread.
//  - Create: accounts_authenticate of a new address (rules, sysinfo, hash,
//    fsync'd LMDB commit); p50/p99 per creation as counters, next to the
//    same percentiles for verifying, so the added latency is the
//    difference.
//  - Throttle: accounts_throttle_check + record, per login.
//  - Lookup: accounts_lookup hit and miss (every RCPT TO).
// The store lives under $TMPDIR (default /tmp): put it on the disk that
// will hold the data dir, since creation latency is mostly fsync.
// Run: build/bench/bench_accounts [--benchmark_filter=Create]
#include <benchmark/benchmark.h>

#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ftw.h>
#include <string>
#include <vector>

extern "C" {
#include "core/accounts/accounts.h"
#include "core/log.h"
}

namespace
{

const char *const kPassword = "bench-password-123";

int bench_rm_one(const char *path, const struct stat *, int, struct FTW *)
{
	return remove(path);
}

struct Store {
	std::string dir;
	struct accounts *a = nullptr;

	Store()
	{
		const char *tmp = std::getenv("TMPDIR");
		std::string tmpl = std::string(tmp != nullptr ? tmp : "/tmp") +
				   "/bench_accounts-XXXXXX";
		std::vector<char> buf(tmpl.begin(), tmpl.end());
		struct accounts_policy p;

		buf.push_back('\0');
		if (mkdtemp(buf.data()) == nullptr)
			std::abort();
		dir = buf.data();
		accounts_policy_defaults(&p);
		p.mail_domain = "example.org";
		p.mailboxes_dir = dir.c_str();
		p.nocreate_file = "";
		p.password_min_length = 9;
		p.username_min_length = 1;
		p.username_max_length = 32;
		if (accounts_open((dir + "/data").c_str(), &p, &a) != 0)
			std::abort();
	}
	~Store()
	{
		accounts_close(&a);
		nftw(dir.c_str(), bench_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
};

double percentile(std::vector<double> v, double q)
{
	if (v.empty())
		return 0;
	std::sort(v.begin(), v.end());
	return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))];
}

using Clock = std::chrono::steady_clock;

Store *shared_store;
std::atomic<unsigned> shared_users;

void BM_Verify(benchmark::State &state)
{
	struct accounts_auth_info info;
	std::vector<double> lat;

	if (state.thread_index() == 0) {
		log_set_level(LOG_LV_WARN);
		shared_store = new Store();
		for (int i = 0; i < 8; i++) {
			std::string addr =
				"verify" + std::to_string(i) + "@example.org";
			accounts_authenticate(shared_store->a, addr.c_str(),
					      kPassword, strlen(kPassword),
					      &info);
		}
	}
	std::string addr = "verify" + std::to_string(state.thread_index() % 8) +
			   "@example.org";
	for (auto _ : state) {
		auto t0 = Clock::now();
		enum accounts_result r = accounts_authenticate(
			shared_store->a, addr.c_str(), kPassword,
			strlen(kPassword), &info);
		lat.push_back(std::chrono::duration<double, std::milli>(
				      Clock::now() - t0)
				      .count());
		if (r != ACCOUNTS_OK)
			state.SkipWithError("verify failed");
	}
	state.SetItemsProcessed(state.iterations());
	state.counters["p50_ms"] = percentile(lat, 0.50);
	state.counters["p99_ms"] = percentile(lat, 0.99);
	if (state.thread_index() == 0) {
		delete shared_store;
		shared_store = nullptr;
	}
}
BENCHMARK(BM_Verify)->Threads(1)->Threads(2)->UseRealTime();

void BM_Create(benchmark::State &state)
{
	struct accounts_auth_info info;
	std::vector<double> lat;
	Store s;

	log_set_level(LOG_LV_WARN);
	for (auto _ : state) {
		std::string addr = "new" +
				   std::to_string(shared_users.fetch_add(1)) +
				   "@example.org";
		auto t0 = Clock::now();
		enum accounts_result r = accounts_authenticate(
			s.a, addr.c_str(), kPassword, strlen(kPassword), &info);
		lat.push_back(std::chrono::duration<double, std::milli>(
				      Clock::now() - t0)
				      .count());
		if (r != ACCOUNTS_CREATED)
			state.SkipWithError("create failed");
	}
	state.SetItemsProcessed(state.iterations());
	state.counters["p50_ms"] = percentile(lat, 0.50);
	state.counters["p99_ms"] = percentile(lat, 0.99);
}
BENCHMARK(BM_Create)->Iterations(400)->UseRealTime();

void BM_Throttle(benchmark::State &state)
{
	struct accounts_throttle *t = nullptr;
	struct sockaddr_in sin;
	uint64_t now = 1000;
	uint32_t i = 0;

	accounts_throttle_new(4096, &t);
	std::memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	for (auto _ : state) {
		sin.sin_addr.s_addr = htonl(0x0a000000u + (i++ % 20000u));
		const struct sockaddr *sa =
			reinterpret_cast<const struct sockaddr *>(&sin);
		benchmark::DoNotOptimize(accounts_throttle_check(
			t, sa, "someone@example.org", now));
		accounts_throttle_record(t, sa, "someone@example.org",
					 (i & 3) != 0, now++);
	}
	state.SetItemsProcessed(state.iterations());
	accounts_throttle_free(&t);
}
BENCHMARK(BM_Throttle);

// Lookup: accounts_lookup of an existing address (hit) and of an unknown
// one (miss), as at every RCPT TO (E2EE enforcement, unknown user):
// one LMDB read transaction each, over a store of 200 accounts.
void BM_Lookup(benchmark::State &state)
{
	static Store *store;
	struct accounts_auth_info info;
	struct accounts_record rec;
	const bool hit = state.range(0) != 0;
	unsigned i = 0;

	if (store == nullptr) {
		log_set_level(LOG_LV_WARN);
		store = new Store();
		for (int k = 0; k < 200; k++) {
			std::string addr =
				"look" + std::to_string(k) + "@example.org";
			accounts_authenticate(store->a, addr.c_str(), kPassword,
					      strlen(kPassword), &info);
		}
	}
	for (auto _ : state) {
		std::string addr = (hit ? "look" : "nobody") +
				   std::to_string(i++ % 200) + "@example.org";
		int r = accounts_lookup(store->a, addr.c_str(), &rec);

		if ((r == 0) != hit)
			state.SkipWithError("unexpected lookup result");
		benchmark::DoNotOptimize(rec);
	}
	state.SetItemsProcessed(state.iterations());
	if (!hit) {
		delete store;
		store = nullptr;
	}
}
BENCHMARK(BM_Lookup)->ArgName("hit")->Arg(1)->Arg(0);

} // namespace

BENCHMARK_MAIN();
