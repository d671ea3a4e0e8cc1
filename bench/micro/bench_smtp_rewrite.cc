// bench/micro/bench_smtp_rewrite: the SMTP server's per-message header
// work and the LMTP reply parser (Google Benchmark).
//  - Rewrite: rewrite_headers over a Delta Chat-shaped PGP/MIME
//    message (header section of ~1 KB with Received, X-Mailer, Subject,
//    Autocrypt, DKIM-Signature; 4 KB or 64 KB of armor after it), with
//    the submission flags, the LMTP flags and both; messages/s. rewrite_size (the pre-pass that sizes the output)
//    is measured separately.
//  - LmtpReply: lmtp_parse_reply over Dovecot's replies to one LMTP
//    transaction (LHLO multiline, MAIL, RCPT, DATA, final), whole and
//    one byte at a time.
// Run: build/release/bench/bench_smtp_rewrite
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <string>

extern "C" {
#include "smtp/lmtp_parse.h"
#include "filter/rewrite.h"
}

namespace
{

std::string make_message(size_t body)
{
	std::string m =
		"Received: from [192.0.2.7] (helo=client) by relay with "
		"ESMTPSA id 1\r\n\tfor <bob@example.org>; Tue, 1 Dec 2026 "
		"21:00:00 +0000\r\n"
		"Chat-Version: 1.0\r\n"
		"Autocrypt: addr=alice@example.org; prefer-encrypt=mutual; "
		"keydata=\r\n"
		" xjMEZ0000000FgkrBgEEAdpHDwEBB0Cxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxX"
		"\r\n"
		" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxx"
		"\r\n"
		" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxx"
		"\r\n"
		"From: <alice@example.org>\r\n"
		"To: <bob@example.org>\r\n"
		"Subject: [...]\r\n"
		"Date: Tue, 01 Dec 2026 21:00:00 +0000\r\n"
		"Message-ID: <Mr.abcdefghijk.lmnopqrstu@example.org>\r\n"
		"X-Mailer: Delta Chat Desktop 1.50\r\n"
		"User-Agent: Delta Chat\r\n"
		"DKIM-Signature: v=1; a=rsa-sha256; d=example.org; "
		"s=opendkim;\r\n"
		"\tb="
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		"\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/encrypted; "
		"protocol=\"application/pgp-encrypted\";\r\n"
		" boundary=\"b1\"\r\n"
		"\r\n"
		"--b1\r\nContent-Type: application/pgp-encrypted\r\n\r\n"
		"Version: 1\r\n\r\n--b1\r\n"
		"Content-Type: application/octet-stream\r\n\r\n"
		"-----BEGIN PGP MESSAGE-----\r\n\r\n";
	while (m.size() < body)
		m += "wcBMA0000000000000000000000000000000000000000000000000000"
		     "0000000000\r\n";
	m += "-----END PGP MESSAGE-----\r\n\r\n--b1--\r\n";
	return m;
}

int sink(void *ctx, const uint8_t *p, size_t n)
{
	*static_cast<size_t *>(ctx) += n;
	benchmark::DoNotOptimize(p);
	return 0;
}

// range(0): message octets; range(1): flags.
void BM_Rewrite(benchmark::State &state)
{
	const std::string m = make_message(static_cast<size_t>(state.range(0)));
	const unsigned flags = static_cast<unsigned>(state.range(1));
	size_t out = 0;

	for (auto _ : state) {
		if (rewrite_headers(reinterpret_cast<const uint8_t *>(m.data()),
				    m.size(), flags, sink, &out) != 0)
			state.SkipWithError("rewrite failed");
	}
	benchmark::DoNotOptimize(out);
	// The body after the header section is handed on as one span, so
	// the cost is per message, not per octet: no bytes/s here.
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Rewrite)
	->ArgNames({"octets", "flags"})
	->Args({4096, REWRITE_SUBMISSION})
	->Args({4096, REWRITE_LMTP})
	->Args({4096, REWRITE_SUBMISSION | REWRITE_LMTP})
	->Args({65536, REWRITE_SUBMISSION | REWRITE_LMTP});

void BM_RewriteSize(benchmark::State &state)
{
	const std::string m = make_message(static_cast<size_t>(state.range(0)));

	for (auto _ : state)
		benchmark::DoNotOptimize(rewrite_size(
			reinterpret_cast<const uint8_t *>(m.data()), m.size(),
			REWRITE_SUBMISSION | REWRITE_LMTP));
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RewriteSize)->Arg(4096);

const char kLmtpReplies[] =
	"220 relay Dovecot ready.\r\n"
	"250-relay\r\n250-8BITMIME\r\n250-CHUNKING\r\n250-"
	"ENHANCEDSTATUSCODES\r\n"
	"250-PIPELINING\r\n250-SIZE\r\n250-STARTTLS\r\n250 XCLIENT ADDR\r\n"
	"250 2.1.0 OK\r\n"
	"250 2.1.5 OK\r\n"
	"354 OK\r\n"
	"250 2.0.0 <bob@example.org> 3pX9Ls1CMGf+RQAAkRHKuA Saved\r\n";

// range(0): octets per call (0: whole buffer). Items: replies.
void BM_LmtpReply(benchmark::State &state)
{
	const size_t chunk = static_cast<size_t>(state.range(0));
	const size_t len = sizeof(kLmtpReplies) - 1;
	const uint8_t *in = reinterpret_cast<const uint8_t *>(kLmtpReplies);
	struct lmtp_parser p;
	int64_t replies = 0;

	for (auto _ : state) {
		size_t off = 0, used;

		lmtp_parser_init(&p);
		while (off < len) {
			size_t n = chunk == 0 || off + chunk > len ? len - off
								   : chunk;
			size_t end = off + n;

			while (off < end) {
				int r = lmtp_parse_reply(&p, in + off,
							 end - off, &used);
				off += used;
				if (r == LMTP_PARSE_OK)
					replies++;
				else if (r == LMTP_PARSE_INVALID)
					state.SkipWithError("invalid");
			}
		}
	}
	state.SetItemsProcessed(replies);
}
BENCHMARK(BM_LmtpReply)->Arg(0)->Arg(1);

} // namespace

BENCHMARK_MAIN();
