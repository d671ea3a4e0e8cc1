/* tests/fuzz/fuzz_smtp_data: the DATA decoder must give the same result
 * whatever the chunking (chunk sizes from the first input octets), and
 * agree with a plain octet-by-octet reference decoder written here. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(c)                                                      \
	do {                                                               \
		if (!(c)) {                                                \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, \
				#c);                                       \
			abort();                                           \
		}                                                          \
	} while (0)

struct fuzz_out {
	uint8_t *buf;
	size_t len, cap;
	const uint8_t *in;
	size_t in_len;
};

static int fuzz_sink(void *ctx, const uint8_t *p, size_t n)
{
	struct fuzz_out *o = ctx;

	/* Spans of the input (no copies), or the one static CR. */
	FUZZ_CHECK((p >= o->in && p + n <= o->in + o->in_len) ||
		   (n == 1 && *p == '\r'));
	FUZZ_CHECK(o->len + n <= o->cap);
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	return 0;
}

struct fuzz_res {
	int status;
	size_t used;
	struct smtp_data d;
};

static void fuzz_feed(const uint8_t *in, size_t len, uint32_t max,
		      uint32_t seed, uint64_t limit, struct fuzz_out *o,
		      struct fuzz_res *res)
{
	size_t off = 0, used, chunk, end;
	int r = SMTP_PARSE_AGAIN;

	o->len = 0;
	o->in = in;
	o->in_len = len;
	smtp_data_init(&res->d, limit, fuzz_sink, o);
	while (off < len && r == SMTP_PARSE_AGAIN) {
		if (max == 0) {
			chunk = len - off;
		} else {
			seed = seed * 1103515245u + 12345u;
			chunk = 1 + (seed >> 16) % max;
		}
		end = off + chunk < len ? off + chunk : len;
		while (off < end) {
			r = smtp_data_parse(&res->d, in + off, end - off,
					    &used);
			FUZZ_CHECK(used <= end - off);
			off += used;
			if (r != SMTP_PARSE_AGAIN)
				break;
			FUZZ_CHECK(off == end);
		}
	}
	res->status = r;
	res->used = off;
	FUZZ_CHECK(res->d.wire == off);
}

/* The reference: RFC 5321 4.5.2 read literally, one octet at a time. */
struct fuzz_ref {
	bool ended;
	size_t used;
	uint64_t size, lines, long_lines, bare_lfs;
	bool has_8bit;
};

static void fuzz_reference(const uint8_t *in, size_t n, uint8_t *out,
			   struct fuzz_ref *ref)
{
	size_t i = 0, o = 0, line = 0;
	bool bol = true;

	memset(ref, 0, sizeof(*ref));
	while (i < n) {
		if (bol && in[i] == '.') {
			if (i + 2 < n && in[i + 1] == '\r' &&
			    in[i + 2] == '\n') {
				ref->ended = true;
				i += 3;
				break;
			}
			i++; /* the leading dot goes */
		}
		bol = false;
		while (i < n) {
			uint8_t c = in[i++];

			out[o++] = c;
			if (c >= 0x80)
				ref->has_8bit = true;
			if (c != '\n') {
				line++;
				continue;
			}
			if (i < 2 || in[i - 2] != '\r') {
				ref->bare_lfs++;
				line++;
				continue;
			}
			/* line counted the CR */
			if (line - 1 > SMTP_DATA_LINE_MAX)
				ref->long_lines++;
			ref->lines++;
			line = 0;
			bol = true;
			break;
		}
	}
	ref->used = i;
	ref->size = o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_out whole_o, chunk_o;
	struct fuzz_res whole, chunked;
	struct fuzz_ref ref;
	uint8_t *ref_out;
	uint64_t limit;
	uint32_t max;

	if (size < 3)
		return 0;
	/* Octet 0: chunk size range; 1: seed; 2: size limit (0: none). */
	max = 1 + (data[0] & 0x1f) * (data[0] & 0x20 ? 97 : 1);
	limit = data[2] == 0 ? 0 : (uint64_t)data[2] * (data[0] >> 6 ? 17 : 1);
	whole_o.cap = chunk_o.cap = size;
	whole_o.buf = malloc(size);
	chunk_o.buf = malloc(size);
	ref_out = malloc(size);
	FUZZ_CHECK(whole_o.buf && chunk_o.buf && ref_out);
	fuzz_feed(data + 3, size - 3, 0, 0, limit, &whole_o, &whole);
	fuzz_feed(data + 3, size - 3, max, data[1], limit, &chunk_o, &chunked);
	fuzz_reference(data + 3, size - 3, ref_out, &ref);

	FUZZ_CHECK(whole.status == chunked.status);
	FUZZ_CHECK(whole.used == chunked.used);
	FUZZ_CHECK(whole.d.error == chunked.d.error);
	FUZZ_CHECK(whole.d.lines == chunked.d.lines);
	FUZZ_CHECK(whole.d.long_lines == chunked.d.long_lines);
	FUZZ_CHECK(whole.d.bare_lfs == chunked.d.bare_lfs);
	FUZZ_CHECK(whole.d.has_8bit == chunked.d.has_8bit);
	/* Sizes are counted lazily, so equal only once the message ended. */
	if (whole.status != SMTP_PARSE_AGAIN)
		FUZZ_CHECK(whole.d.size == chunked.d.size);

	FUZZ_CHECK((whole.status != SMTP_PARSE_AGAIN) == ref.ended);
	FUZZ_CHECK(whole.used == ref.used);
	FUZZ_CHECK(whole.d.lines == ref.lines);
	FUZZ_CHECK(whole.d.long_lines == ref.long_lines);
	FUZZ_CHECK(whole.d.bare_lfs == ref.bare_lfs);
	FUZZ_CHECK(whole.d.has_8bit == ref.has_8bit);
	if (ref.ended) {
		FUZZ_CHECK(whole.d.size == ref.size);
		if (ref.bare_lfs > 0)
			FUZZ_CHECK(whole.d.error == SMTP_DERR_BARE_LF);
		else if (limit != 0 && ref.size > limit)
			FUZZ_CHECK(whole.d.error == SMTP_DERR_TOO_BIG);
		else
			FUZZ_CHECK(whole.d.error == SMTP_DERR_NONE);
	}
	if (whole.status == SMTP_PARSE_OK) {
		FUZZ_CHECK(whole_o.len == ref.size && chunk_o.len == ref.size);
		FUZZ_CHECK(memcmp(whole_o.buf, ref_out, ref.size) == 0);
		FUZZ_CHECK(memcmp(chunk_o.buf, ref_out, ref.size) == 0);
	} else {
		/* Never more than the limit reaches the sink. */
		FUZZ_CHECK(limit == 0 || whole_o.len <= limit);
		FUZZ_CHECK(limit == 0 || chunk_o.len <= limit);
	}
	free(whole_o.buf);
	free(chunk_o.buf);
	free(ref_out);
	return 0;
}
