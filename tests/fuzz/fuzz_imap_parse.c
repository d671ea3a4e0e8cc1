/* tests/fuzz/fuzz_imap_parse: the IMAP framer, as the proxy runs it on the
 * client's commands (first byte bit 0 clear) or Dovecot's responses (set),
 * must never crash, must always make progress, must report the same
 * events at the same offsets whether the input comes whole, byte by byte
 * or in chunks (the second byte picks the size), must refuse sync
 * literals the way the session does (bit 1) and keep framing after that.
 * Each complete command also goes through the argument tokenizer, which
 * must stay inside the command and end. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap-proxy/imap_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(c)                                                      \
	do {                                                               \
		if (!(c)) {                                                \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, \
				#c);                                       \
			abort();                                           \
		}                                                          \
	} while (0)

struct fuzz_trace {
	uint64_t hash;
	unsigned events;
};

static void fuzz_mix(struct fuzz_trace *t, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		t->hash = (t->hash ^ b[i]) * 1099511628211ull;
}

static void fuzz_args(const uint8_t *cmd, size_t len)
{
	static uint8_t copy[1 << 16];
	struct imap_args a;
	struct imap_arg arg;
	unsigned n = 0;

	if (len > sizeof(copy))
		return;
	memcpy(copy, cmd, len);
	imap_args_init(&a, copy, len);
	for (;;) {
		enum imap_arg_type t = imap_args_next(&a, &arg);

		FUZZ_CHECK(n++ <= len + 1);
		if (t == IMAP_ARG_EOL || t == IMAP_ARG_ERROR)
			break;
		if (arg.data != NULL)
			FUZZ_CHECK(arg.data >= copy &&
				   arg.data + arg.len <= copy + len);
	}
}

static void fuzz_run(const uint8_t *data, size_t size, size_t step, bool server,
		     bool refuse, struct fuzz_trace *t)
{
	struct imap_parser p;
	size_t off = 0, end, used, cmd_start = 0;
	int r;

	memset(t, 0, sizeof(*t));
	t->hash = 14695981039346656037ull;
	imap_parser_init(&p, server, 256);
	while (off < size) {
		end = step == 0 || off + step > size ? size : off + step;
		while (off < end) {
			r = imap_parse(&p, data + off, end - off, &used);
			FUZZ_CHECK(used > 0 && used <= end - off);
			off += used;
			if (r == IMAP_PARSE_AGAIN) {
				FUZZ_CHECK(off == end);
				continue;
			}
			t->events++;
			fuzz_mix(t, &r, sizeof(r));
			fuzz_mix(t, &off, sizeof(off));
			fuzz_mix(t, p.tag, p.tag_len);
			fuzz_mix(t, p.name, p.name_len);
			FUZZ_CHECK(p.tag_len <= IMAP_TAG_MAX &&
				   p.name_len <= IMAP_NAME_MAX);
			FUZZ_CHECK(strlen(p.tag) == p.tag_len);
			if (r == IMAP_PARSE_LITERAL) {
				fuzz_mix(t, &p.literal, sizeof(p.literal));
				FUZZ_CHECK(imap_parse_in_literal(&p) ==
					   p.literal);
				FUZZ_CHECK(
					!(server && strcmp(p.tag, "+") == 0));
				if (refuse && p.literal_sync &&
				    p.literal > 16) {
					imap_parse_drop_literal(&p);
					cmd_start = off;
				}
				continue;
			}
			FUZZ_CHECK(imap_parse_in_literal(&p) == 0);
			FUZZ_CHECK(imap_parse_at_start(&p));
			if (r == IMAP_PARSE_CMD)
				fuzz_args(data + cmd_start, off - cmd_start);
			cmd_start = off;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_trace whole, bytes, chunks;
	bool server, refuse;
	size_t step;

	if (size < 2)
		return 0;
	server = (data[0] & 1) != 0;
	refuse = (data[0] & 2) != 0;
	step = 1 + data[1] % 61;
	data += 2;
	size -= 2;
	fuzz_run(data, size, 0, server, refuse, &whole);
	fuzz_run(data, size, 1, server, refuse, &bytes);
	fuzz_run(data, size, step, server, refuse, &chunks);
	FUZZ_CHECK(whole.hash == bytes.hash && whole.events == bytes.events);
	FUZZ_CHECK(whole.hash == chunks.hash && whole.events == chunks.events);
	return 0;
}
