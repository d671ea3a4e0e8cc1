// bench/micro/bench_smtp_parse: the pure SMTP parsers (Google Benchmark).
// Command lines of a pipelined submission, MAIL/RCPT argument parsing,
// AUTH PLAIN decoding, and the DATA decoder over a 4 MiB message of
// 76-column lines (as PGP/MIME armour), fed in chunks of N octets.
// Run: build/bench/bench_smtp_parse [--benchmark_filter=Data]
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <string>

extern "C" {
#include "smtp/smtp_addr.h"
#include "smtp/smtp_auth.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_parse.h"
}

namespace
{

const char kSession[] =
	"EHLO client.example.org\r\n"
	"MAIL FROM:<alice123@chat.example.org> SIZE=48213 BODY=8BITMIME\r\n"
	"RCPT TO:<bob45678@chat.example.org>\r\n"
	"RCPT TO:<carol789@other.example.net>\r\n"
	"RCPT TO:<dave0123@chat.example.org>\r\n"
	"DATA\r\n"
	"RSET\r\n"
	"NOOP\r\n"
	"VRFY x\r\n"
	"QUIT\r\n";

// Ten commands per session text; @range(0) octets per chunk (0: whole).
void BM_ParseCommands(benchmark::State &state)
{
	std::string in;
	const size_t chunk = static_cast<size_t>(state.range(0));
	struct smtp_parser p;
	size_t lines = 0;

	for (int i = 0; i < 100; i++)
		in += kSession;
	for (auto _ : state) {
		size_t off = 0, used;

		smtp_parser_init(&p);
		while (off < in.size()) {
			size_t end = chunk == 0 || off + chunk > in.size()
					     ? in.size()
					     : off + chunk;

			while (off < end) {
				int r = smtp_parse_cmd(
					&p,
					reinterpret_cast<const uint8_t *>(
						in.data()) +
						off,
					end - off, &used);
				off += used;
				if (r != SMTP_PARSE_AGAIN) {
					lines++;
					benchmark::DoNotOptimize(p.cmd.verb);
				}
			}
		}
	}
	state.SetItemsProcessed(static_cast<int64_t>(lines));
	state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
				static_cast<int64_t>(in.size()));
}
BENCHMARK(BM_ParseCommands)->Arg(0)->Arg(64)->Arg(1);

void BM_ParseMailArgs(benchmark::State &state)
{
	const char arg[] = "FROM:<alice123@Chat.Example.org> SIZE=48213 "
			   "BODY=8BITMIME";
	struct smtp_mail_args m;

	for (auto _ : state) {
		int r = smtp_addr_parse_mail(arg, sizeof(arg) - 1, 0, &m);

		benchmark::DoNotOptimize(r);
		benchmark::DoNotOptimize(m.from.addr[0]);
	}
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseMailArgs);

void BM_ParseRcptQuoted(benchmark::State &state)
{
	const char arg[] = "TO:<\"bob\"@[IPv6:2001:db8::1]> NOTIFY=NEVER";
	struct smtp_rcpt_args t;

	for (auto _ : state) {
		int r = smtp_addr_parse_rcpt(arg, sizeof(arg) - 1, 0, &t);

		benchmark::DoNotOptimize(r);
		benchmark::DoNotOptimize(t.to.addr[0]);
	}
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseRcptQuoted);

void BM_AuthPlain(benchmark::State &state)
{
	// "\0alice123@chat.example.org\0correct horse battery"
	const char b64[] = "AGFsaWNlMTIzQGNoYXQuZXhhbXBsZS5vcmcAY29ycmVjdCBo"
			   "b3JzZSBiYXR0ZXJ5";
	struct sasl_plain a;

	for (auto _ : state) {
		int r = sasl_plain_decode(b64, sizeof(b64) - 1, &a);

		benchmark::DoNotOptimize(r);
		benchmark::DoNotOptimize(a.password[0]);
	}
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AuthPlain);

int bench_sink(void *ctx, const uint8_t *p, size_t n)
{
	auto *total = static_cast<size_t *>(ctx);

	benchmark::DoNotOptimize(p);
	*total += n;
	return 0;
}

// A 4 MiB message: 76-column lines, every 50th starting with a dot
// (stuffed), then the end marker. @range(0) octets per chunk.
void BM_DataDecode(benchmark::State &state)
{
	const size_t chunk = static_cast<size_t>(state.range(0));
	std::string in;
	struct smtp_data d;
	size_t total = 0;

	for (int i = 0; in.size() < (4u << 20); i++) {
		std::string line(76, static_cast<char>('A' + i % 26));

		if (i % 50 == 0)
			line[0] = '.';
		if (i % 50 == 0)
			in += '.';
		in += line;
		in += "\r\n";
	}
	in += ".\r\n";
	for (auto _ : state) {
		size_t off = 0, used;
		int r = SMTP_PARSE_AGAIN;

		smtp_data_init(&d, 0, bench_sink, &total);
		while (off < in.size() && r == SMTP_PARSE_AGAIN) {
			size_t n = in.size() - off < chunk ? in.size() - off
							   : chunk;

			r = smtp_data_parse(
				&d,
				reinterpret_cast<const uint8_t *>(in.data()) +
					off,
				n, &used);
			off += used;
		}
		if (r != SMTP_PARSE_OK)
			state.SkipWithError("decode failed");
	}
	state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
				static_cast<int64_t>(in.size()));
}
BENCHMARK(BM_DataDecode)->Arg(1460)->Arg(16384)->Arg(65536);

} // namespace

BENCHMARK_MAIN();
