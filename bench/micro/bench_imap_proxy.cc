// bench/micro/bench_imap_proxy: the IMAP proxy's per-command work (Google
// Benchmark): the framer over a chat client's command stream and over
// Dovecot's responses (a FETCH of a PGP/MIME message as a literal), whole,
// in 64-octet chunks and one octet at a time; and one IDLE wake-up cycle of
// the IDLE tracker (delivery -> DONE/NOOP/IDLE written -> Dovecot's
// replies sorted into forwarded and swallowed).
// Run: build/release/bench/bench_imap_proxy
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <string>

extern "C" {
#include "imap-proxy/imap_idle.h"
#include "imap-proxy/imap_parse.h"
}

namespace
{

// What Delta Chat sends in one receive loop turn, ten times over.
std::string client_stream()
{
	std::string one = "a1 SELECT INBOX\r\n"
			  "a2 UID FETCH 1:* (FLAGS)\r\n"
			  "a3 IDLE\r\n"
			  "DONE\r\n"
			  "a4 UID FETCH 17 (UID RFC822.SIZE BODY.PEEK[])\r\n"
			  "a5 UID STORE 17 +FLAGS (\\Seen)\r\n"
			  "a6 GETMETADATA \"\" (/private/devicetoken)\r\n"
			  "a7 APPEND Sent (\\Seen) {24+}\r\n"
			  "Subject: x\r\n\r\nhello!\r\n\r\n"
			  "a8 NOOP\r\n";
	std::string s;

	for (int i = 0; i < 10; i++)
		s += one;
	return s;
}

// Dovecot's answer to a FETCH of one ~4 KB message, and friends.
std::string server_stream()
{
	std::string msg = "From: <alice@example.org>\r\nTo: <bob@example.org>"
			  "\r\nSubject: [...]\r\nMIME-Version: 1.0\r\n\r\n";

	while (msg.size() < 4096)
		msg += "wcBMA000000000000000000000000000000000000000000000000"
		       "00000000000000\r\n";
	return "* 18 EXISTS\r\n* 1 RECENT\r\n"
	       "* 18 FETCH (UID 18 RFC822.SIZE " +
	       std::to_string(msg.size()) + " BODY[] {" +
	       std::to_string(msg.size()) + "}\r\n" + msg +
	       ")\r\n"
	       "a4 OK Fetch completed (0.001 + 0.000 secs).\r\n";
}

// range(0): octets per call (0: everything at once). Items: commands.
void frame(benchmark::State &state, const std::string &in, bool server)
{
	const size_t chunk = static_cast<size_t>(state.range(0));
	const uint8_t *p = reinterpret_cast<const uint8_t *>(in.data());
	struct imap_parser ps;
	int64_t cmds = 0;

	for (auto _ : state) {
		size_t off = 0, used;

		imap_parser_init(&ps, server, 0);
		while (off < in.size()) {
			size_t end = chunk == 0 || off + chunk > in.size()
					     ? in.size()
					     : off + chunk;

			while (off < end) {
				enum imap_parse_status r = imap_parse(
					&ps, p + off, end - off, &used);

				off += used;
				if (r == IMAP_PARSE_CMD)
					cmds++;
				else if (r == IMAP_PARSE_INVALID)
					state.SkipWithError("invalid");
				if (used == 0 && r == IMAP_PARSE_AGAIN)
					break;
			}
		}
	}
	state.SetItemsProcessed(cmds);
	state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
				static_cast<int64_t>(in.size()));
}

void BM_FrameClient(benchmark::State &state)
{
	static const std::string in = client_stream();

	frame(state, in, false);
}
BENCHMARK(BM_FrameClient)->Arg(0)->Arg(64)->Arg(1);

void BM_FrameServer(benchmark::State &state)
{
	static const std::string in = server_stream();

	frame(state, in, true);
}
BENCHMARK(BM_FrameServer)->Arg(0)->Arg(64)->Arg(1);

// One delivery to an idling client, as the session drives the tracker.
void BM_IdleWake(benchmark::State &state)
{
	struct imap_idle t;
	char out[IMAP_IDLE_WAKE_MAX + 8];
	int64_t swallowed = 0;

	imap_idle_init(&t);
	imap_idle_client_cmd(&t, "a3", false, "IDLE");
	(void)imap_idle_server_line(&t, "+");
	for (auto _ : state) {
		size_t n = imap_idle_wake(&t, out, sizeof(out));

		benchmark::DoNotOptimize(n);
		// DONE -> tagged a3 OK; NOOP -> * EXISTS, tagged rm.wake OK;
		// IDLE -> "+ idling".
		swallowed +=
			imap_idle_server_line(&t, "a3") == IMAP_IDLE_SWALLOW;
		swallowed +=
			imap_idle_server_line(&t, "*") == IMAP_IDLE_SWALLOW;
		swallowed += imap_idle_server_line(&t, IMAP_IDLE_PTAG) ==
			     IMAP_IDLE_SWALLOW;
		swallowed +=
			imap_idle_server_line(&t, "+") == IMAP_IDLE_SWALLOW;
	}
	if (swallowed != 3 * static_cast<int64_t>(state.iterations()))
		state.SkipWithError("unexpected IDLE tracker verdicts");
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IdleWake);

} // namespace

BENCHMARK_MAIN();
