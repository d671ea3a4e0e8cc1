/* tests/fuzz/fuzz_lmtp_reply: the LMTP reply parser must never crash or
 * read out of bounds, must always make progress, and must produce the
 * same replies whether the input comes whole or in small pieces (the
 * first byte picks the piece size). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/lmtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A digest of every result, compared between the two feeding modes. */
struct fuzz_trace {
	uint64_t hash;
	unsigned n_ok, n_bad;
};

static void fuzz_mix(struct fuzz_trace *t, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		t->hash = (t->hash ^ b[i]) * 1099511628211ull;
}

static void fuzz_run(const uint8_t *data, size_t size, size_t step,
		     struct fuzz_trace *t)
{
	static struct lmtp_parser p;
	size_t off = 0, end, used;
	int r;

	memset(t, 0, sizeof(*t));
	t->hash = 14695981039346656037ull;
	lmtp_parser_init(&p);
	while (off < size) {
		end = step == 0 || off + step > size ? size : off + step;
		while (off < end) {
			r = lmtp_parse_reply(&p, data + off, end - off, &used);
			if (used > end - off)
				abort();
			if (r == LMTP_PARSE_AGAIN) {
				if (off + used != end)
					abort();
				off = end;
				break;
			}
			off += used;
			if (r == LMTP_PARSE_OK) {
				if (p.reply.code < 200 || p.reply.code > 599 ||
				    p.reply.text_len > LMTP_REPLY_TEXT_MAX ||
				    strlen(p.reply.text) != p.reply.text_len ||
				    p.reply.lines == 0 ||
				    p.reply.lines > LMTP_REPLY_LINES_MAX)
					abort();
				t->n_ok++;
				fuzz_mix(t, &p.reply.code,
					 sizeof(p.reply.code));
				fuzz_mix(t, p.reply.status,
					 strlen(p.reply.status));
				fuzz_mix(t, p.reply.text, p.reply.text_len);
			} else {
				if (p.error == NULL)
					abort();
				t->n_bad++;
				fuzz_mix(t, "!", 1);
			}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_trace whole, pieces;
	size_t step;

	if (size == 0)
		return 0;
	step = (size_t)(data[0] % 16) + 1;
	data++;
	size--;
	fuzz_run(data, size, 0, &whole);
	fuzz_run(data, size, step, &pieces);
	if (whole.n_ok != pieces.n_ok || whole.hash != pieces.hash)
		abort();
	return 0;
}
