// bench/micro/bench_e2ee: throughput of the streaming E2EE verdict
// (filter/e2ee), in MB/s of message fed through e2ee_feed + e2ee_finish.
// Messages are Delta Chat shaped PGP/MIME, built here: two PKESK and a
// SEIPD with partial body lengths, base64 armored in 64-column lines with
// a CRC line. The verdict never looks inside the ciphertext, so random
// octets cost what real ciphertext costs. Sizes: ~1 MiB (an attachment)
// and ~2 KiB (a chat message); fed whole and in 16 KiB chunks (a TLS
// record). Also the armor check alone, and a cleartext message.
// Run: build-release/bench/bench_e2ee
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "filter/e2ee.h"
#include "filter/openpgp.h"
}

namespace
{

uint64_t bench_rng(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

void bench_b64(std::string &out, const std::vector<uint8_t> &p)
{
	static const char sym[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
				  "qrstuvwxyz0123456789+/";
	size_t col = 0;

	for (size_t i = 0; i < p.size(); i += 3) {
		uint32_t q = static_cast<uint32_t>(p[i]) << 16;

		if (i + 1 < p.size())
			q |= static_cast<uint32_t>(p[i + 1]) << 8;
		if (i + 2 < p.size())
			q |= p[i + 2];
		out += sym[q >> 18 & 63];
		out += sym[q >> 12 & 63];
		out += i + 1 < p.size() ? sym[q >> 6 & 63] : '=';
		out += i + 2 < p.size() ? sym[q & 63] : '=';
		col += 4;
		if (col == 64) {
			out += "\r\n";
			col = 0;
		}
	}
	if (col != 0)
		out += "\r\n";
}

// PKESK PKESK SEIPD(@n octets, 8 KiB partial chunks), armored.
std::string bench_armor(size_t n)
{
	std::vector<uint8_t> bin;
	uint64_t x = 0x2545f4914f6cdd1dull;

	for (int k = 0; k < 2; k++) {
		bin.push_back(0x84); // old format, tag 1, 1-octet length
		bin.push_back(94);
		for (int i = 0; i < 94; i++)
			bin.push_back(static_cast<uint8_t>(bench_rng(&x)));
	}
	bin.push_back(0xc0 | OPENPGP_TAG_SEIPD);
	while (n > 8192) {
		bin.push_back(224 + 13);
		for (int i = 0; i < 8192; i++)
			bin.push_back(static_cast<uint8_t>(bench_rng(&x)));
		n -= 8192;
	}
	if (n >= 192) {
		bin.push_back(static_cast<uint8_t>(((n - 192) >> 8) + 192));
		bin.push_back(static_cast<uint8_t>(n - 192));
	} else {
		bin.push_back(static_cast<uint8_t>(n));
	}
	for (size_t i = 0; i < n; i++)
		bin.push_back(static_cast<uint8_t>(bench_rng(&x)));
	std::string a = "-----BEGIN PGP MESSAGE-----\r\n\r\n";
	bench_b64(a, bin);
	a += "=njUN\r\n-----END PGP MESSAGE-----\r\n";
	return a;
}

std::string bench_message(size_t n)
{
	std::string m =
		"From: alice@example.org\r\n"
		"To: bob@example.org\r\n"
		"Subject: [...]\r\n"
		"Date: Sun, 15 Oct 2023 16:43:21 +0000\r\n"
		"Message-ID: <Mr.UVyJWZmkCKM.hGzNc6glBE_@example.org>\r\n"
		"Chat-Version: 1.0\r\n"
		"Autocrypt: addr=alice@example.org; prefer-encrypt=mutual;\r\n"
		"\tkeydata=xjMEZSwWjhYJKwYBBAHaRw8BAQdAQBEhqeJh0GueHB6kF/"
		"DUQqYC\r\n"
		"\txARNBVokg/"
		"AzT+7LqHrNFzxiYXJiYXpAYzIudGVzdHJ1bi5vcmc+wosEEBYI\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/encrypted; "
		"protocol=\"application/pgp-encrypted\";\r\n"
		"\tboundary=\"YFrteb74qSXmggbOxZL9dRnhymywAi\"\r\n"
		"\r\n\r\n"
		"--YFrteb74qSXmggbOxZL9dRnhymywAi\r\n"
		"Content-Description: PGP/MIME version identification\r\n"
		"Content-Type: application/pgp-encrypted\r\n"
		"\r\n"
		"Version: 1\r\n"
		"\r\n\r\n"
		"--YFrteb74qSXmggbOxZL9dRnhymywAi\r\n"
		"Content-Description: OpenPGP encrypted message\r\n"
		"Content-Disposition: inline; filename=\"encrypted.asc\";\r\n"
		"Content-Type: application/octet-stream; "
		"name=\"encrypted.asc\"\r\n"
		"\r\n";
	m += bench_armor(n);
	m += "\r\n--YFrteb74qSXmggbOxZL9dRnhymywAi--\r\n";
	return m;
}

std::string bench_plain(size_t n)
{
	std::string m = "From: <alice@example.org>\r\n"
			"To: <bob@example.org>\r\n"
			"Subject: Message from alice@example.org\r\n"
			"Chat-Version: 1.0\r\n"
			"MIME-Version: 1.0\r\n"
			"Content-Type: text/plain; charset=utf-8\r\n"
			"\r\n";

	while (m.size() < n)
		m += "Hi! This is a line of a cleartext chat message.\r\n";
	return m;
}

struct e2ee_state bench_st;

// range(1): chunk size (0 = whole).
void BM_E2EE(benchmark::State &state, const std::string &m, bool enc)
{
	const size_t chunk = static_cast<size_t>(state.range(1));
	const uint8_t *p = reinterpret_cast<const uint8_t *>(m.data());
	struct e2ee_facts f;

	for (auto _ : state) {
		e2ee_init(&bench_st);
		for (size_t off = 0; off < m.size();) {
			size_t k = chunk == 0 || chunk > m.size() - off
					   ? m.size() - off
					   : chunk;

			e2ee_feed(&bench_st, p + off, k);
			off += k;
		}
		e2ee_finish(&bench_st, &f);
		benchmark::DoNotOptimize(f.encrypted_out);
	}
	if (f.encrypted_out != enc)
		state.SkipWithError("unexpected verdict");
	state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
				static_cast<int64_t>(m.size()));
	state.counters["msg_bytes"] = static_cast<double>(m.size());
}

void BM_E2EEEncrypted(benchmark::State &state)
{
	const std::string m =
		bench_message(static_cast<size_t>(state.range(0)));

	BM_E2EE(state, m, true);
}
// range(0): SEIPD octets.
BENCHMARK(BM_E2EEEncrypted)
	->Args({1 << 20, 0})
	->Args({1 << 20, 16384})
	->Args({1500, 0})
	->Args({1500, 16384});

void BM_E2EEPlain(benchmark::State &state)
{
	const std::string m = bench_plain(static_cast<size_t>(state.range(0)));

	BM_E2EE(state, m, false);
}
// range(0): message octets.
BENCHMARK(BM_E2EEPlain)->Args({2048, 0})->Args({1 << 20, 16384});

void BM_ArmorOnly(benchmark::State &state)
{
	const std::string a = bench_armor(static_cast<size_t>(state.range(0)));
	const uint8_t *p = reinterpret_cast<const uint8_t *>(a.data());
	struct openpgp_armor arm;
	bool ok = false;

	for (auto _ : state) {
		openpgp_armor_init(&arm);
		openpgp_armor_feed(&arm, p, a.size());
		ok = openpgp_armor_finish(&arm);
		benchmark::DoNotOptimize(ok);
	}
	if (!ok)
		state.SkipWithError("armor refused");
	state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
				static_cast<int64_t>(a.size()));
}
BENCHMARK(BM_ArmorOnly)->Arg(1 << 20);

} // namespace

BENCHMARK_MAIN();
