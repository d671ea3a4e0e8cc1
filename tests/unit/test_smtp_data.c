/* tests/unit/test_smtp_data: the DATA decoder, table-driven. Every case is
 * fed whole, one octet at a time and split in two at every position, so
 * the end marker and every dot and CR falls on each chunk boundary. Then
 * a stuff/unstuff round trip over random messages and random chunks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/smtp_data.h"

struct sink {
	uint8_t *buf;
	size_t len, cap;
	const uint8_t *in; /* the input the decoder is fed from */
	size_t in_len;
	size_t calls;
	size_t fail_after; /* fail on this call (1-based); 0: never */
};

/* Appends, and checks that nothing was copied: every span points into
 * the input (or is the one static CR of ".\r<not LF>"). */
static int sink_fn(void *ctx, const uint8_t *p, size_t n)
{
	struct sink *s = ctx;

	assert_true(n > 0);
	if (!(p >= s->in && p + n <= s->in + s->in_len))
		assert_true(n == 1 && *p == '\r');
	s->calls++;
	if (s->fail_after != 0 && s->calls >= s->fail_after)
		return -1;
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2;
		s->buf = realloc(s->buf, s->cap);
		assert_non_null(s->buf);
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	return 0;
}

struct result {
	int status;
	size_t used; /* octets up to and including the end marker */
	struct smtp_data d;
};

/* Feed @in in chunks ending at @cuts[]; stop at the end of the message. */
static void feed(const uint8_t *in, size_t len, const size_t *cuts,
		 size_t ncuts, uint64_t limit, struct sink *s,
		 struct result *res)
{
	size_t a = 0, used;
	int r = SMTP_PARSE_AGAIN;

	s->len = 0;
	s->calls = 0;
	s->in = in;
	s->in_len = len;
	smtp_data_init(&res->d, limit, sink_fn, s);
	for (size_t c = 0; c < ncuts && r == SMTP_PARSE_AGAIN; c++) {
		size_t b = cuts[c];

		while (a < b) {
			r = smtp_data_parse(&res->d, in + a, b - a, &used);
			assert_true(used <= b - a);
			a += used;
			if (r != SMTP_PARSE_AGAIN)
				break;
			assert_int_equal(a, b);
		}
	}
	res->status = r;
	res->used = a;
	assert_int_equal(res->d.wire, a);
}

struct tcase {
	const char *in;
	size_t len; /* 0: strlen */
	uint64_t limit;
	int status;
	enum smtp_data_error err;
	const char *out; /* decoded message, checked when status is OK */
	size_t out_len;  /* 0: strlen(out) */
	size_t used;     /* 0: all of the input */
	uint64_t lines, long_lines, bare_lfs;
	bool has_8bit;
};

static void check(const char *what, const struct tcase *c, size_t len,
		  const struct sink *s, const struct result *r)
{
	size_t out_len =
		c->out != NULL && c->out_len == 0 ? strlen(c->out) : c->out_len;
	size_t used = c->used != 0 ? c->used : len;

	if (r->status != c->status || r->d.error != c->err)
		fail_msg("%s: status %d error %d, want %d %d", what, r->status,
			 r->d.error, c->status, c->err);
	if (c->status != SMTP_PARSE_AGAIN && r->used != used)
		fail_msg("%s: used %zu want %zu", what, r->used, used);
	if (c->status == SMTP_PARSE_OK) {
		if (s->len != out_len ||
		    (out_len > 0 && memcmp(s->buf, c->out, out_len) != 0))
			fail_msg("%s: output %zu octets '%.*s', want %zu", what,
				 s->len, (int)s->len, (char *)s->buf, out_len);
		if (r->d.size != out_len)
			fail_msg("%s: size %llu want %zu", what,
				 (unsigned long long)r->d.size, out_len);
	} else if (c->status == SMTP_PARSE_INVALID && c->limit != 0) {
		/* Rejected: whatever reached the sink is within the limit. */
		assert_true(s->len <= c->limit);
	}
	if (r->d.lines != c->lines || r->d.long_lines != c->long_lines ||
	    r->d.bare_lfs != c->bare_lfs || r->d.has_8bit != c->has_8bit)
		fail_msg("%s: lines %llu long %llu bare_lf %llu 8bit %d, "
			 "want %llu %llu %llu %d",
			 what, (unsigned long long)r->d.lines,
			 (unsigned long long)r->d.long_lines,
			 (unsigned long long)r->d.bare_lfs, r->d.has_8bit,
			 (unsigned long long)c->lines,
			 (unsigned long long)c->long_lines,
			 (unsigned long long)c->bare_lfs, c->has_8bit);
}

static void run_case(const char *label, const struct tcase *c,
		     const uint8_t *in, size_t len)
{
	struct sink s = {0};
	struct result r;
	size_t *cuts = malloc((len + 1) * sizeof(*cuts));
	char what[160];

	assert_non_null(cuts);
	cuts[0] = len;
	snprintf(what, sizeof(what), "%s (whole)", label);
	feed(in, len, cuts, 1, c->limit, &s, &r);
	check(what, c, len, &s, &r);
	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	snprintf(what, sizeof(what), "%s (bytewise)", label);
	feed(in, len, cuts, len, c->limit, &s, &r);
	check(what, c, len, &s, &r);
	for (size_t k = 1; k < len; k++) {
		size_t two[2] = {k, len};

		snprintf(what, sizeof(what), "%s (split at %zu)", label, k);
		feed(in, len, two, 2, c->limit, &s, &r);
		check(what, c, len, &s, &r);
	}
	free(cuts);
	free(s.buf);
}

#define OK    SMTP_PARSE_OK
#define BAD   SMTP_PARSE_INVALID
#define AGAIN SMTP_PARSE_AGAIN
#define NONE  SMTP_DERR_NONE

static const struct tcase cases[] = {
	/* in, len, limit, status, err, out, out_len, used, lines, long,
	 * bare_lf, 8bit */
	{"Hello\r\n.\r\n", 0, 0, OK, NONE, "Hello\r\n", 0, 0, 1, 0, 0, 0},
	/* The DATA line's CRLF counts: an empty message. */
	{".\r\n", 0, 0, OK, NONE, "", 0, 0, 0, 0, 0, 0},
	{"\r\n.\r\n", 0, 0, OK, NONE, "\r\n", 0, 0, 1, 0, 0, 0},
	/* Dot-stuffing undone; a lone leading dot is dropped too. */
	{"..foo\r\n.\r\n", 0, 0, OK, NONE, ".foo\r\n", 0, 0, 1, 0, 0, 0},
	{"...\r\n.\r\n", 0, 0, OK, NONE, "..\r\n", 0, 0, 1, 0, 0, 0},
	{"a\r\n..\r\n.\r\n", 0, 0, OK, NONE, "a\r\n.\r\n", 0, 0, 2, 0, 0, 0},
	{"a\r\n.b\r\n.\r\n", 0, 0, OK, NONE, "a\r\nb\r\n", 0, 0, 2, 0, 0, 0},
	/* Dots not at a line start are text. */
	{"a.\r\n.\r\n", 0, 0, OK, NONE, "a.\r\n", 0, 0, 1, 0, 0, 0},
	{" .\r\n.\r\n", 0, 0, OK, NONE, " .\r\n", 0, 0, 1, 0, 0, 0},
	{"a\r\n.\r\r\n.\r\n", 0, 0, OK, NONE, "a\r\n\r\r\n", 0, 0, 2, 0, 0, 0},
	/* ".\r" not followed by LF: the dot goes, the CR stays. */
	{".\rx\r\n.\r\n", 0, 0, OK, NONE, "\rx\r\n", 0, 0, 1, 0, 0, 0},
	{".\r \r\n.\r\n", 0, 0, OK, NONE, "\r \r\n", 0, 0, 1, 0, 0, 0},
	/* Bare CR is content; CRCRLF is a CR then a line end. */
	{"a\rb\r\n.\r\n", 0, 0, OK, NONE, "a\rb\r\n", 0, 0, 1, 0, 0, 0},
	{"a\r\r\n.\r\n", 0, 0, OK, NONE, "a\r\r\n", 0, 0, 1, 0, 0, 0},
	{"\r\r\r\n.\r\n", 0, 0, OK, NONE, "\r\r\r\n", 0, 0, 1, 0, 0, 0},
	/* The rest after the marker is the next command (pipelining). */
	{"x\r\n.\r\nQUIT\r\n", 0, 0, OK, NONE, "x\r\n", 0, 6, 1, 0, 0, 0},
	{".\r\nMAIL FROM:<a@b>\r\n", 0, 0, OK, NONE, "", 0, 3, 0, 0, 0, 0},
	/* No end yet. */
	{"abc.\r\n", 0, 0, AGAIN, NONE, NULL, 0, 0, 1, 0, 0, 0},
	{"abc\r\n.", 0, 0, AGAIN, NONE, NULL, 0, 0, 1, 0, 0, 0},
	{"abc\r\n.\r", 0, 0, AGAIN, NONE, NULL, 0, 0, 1, 0, 0, 0},
	{"abc\r\n.\n", 0, 0, AGAIN, NONE, NULL, 0, 0, 1, 0, 1, 0},
	/* Bare LF: not a line end, so "\n.\n" and "\r\n.\n" do not end the
	 * message (no smuggling); rejected after the real end marker. */
	{"a\nb\r\n.\r\n", 0, 0, BAD, SMTP_DERR_BARE_LF, NULL, 0, 0, 1, 0, 1, 0},
	{"a\r\n\n.\nMAIL FROM:<x@y>\r\n.\r\nQUIT\r\n", 0, 0, BAD,
	 SMTP_DERR_BARE_LF, NULL, 0, 26, 2, 0, 2, 0},
	{"a\r\n.\nb\r\n.\r\n", 0, 0, BAD, SMTP_DERR_BARE_LF, NULL, 0, 0, 2, 0,
	 1, 0},
	{"\n.\r\n", 0, 0, AGAIN, NONE, NULL, 0, 0, 1, 0, 1, 0},
	/* 8-bit and binary octets pass untouched. */
	{"\xff\xfe\x80"
	 "abc\r\n\x00\x01\x7f\r\n.\r\n",
	 16, 0, OK, NONE,
	 "\xff\xfe\x80"
	 "abc\r\n\x00\x01\x7f\r\n",
	 13, 0, 2, 0, 0, 1},
	{"abcdefg\xe4hijklmnopq\xe5\r\n.\r\n", 0, 0, OK, NONE,
	 "abcdefg\xe4hijklmnopq\xe5\r\n", 0, 0, 1, 0, 0, 1},
	{"plain 7bit\r\n.\r\n", 0, 0, OK, NONE, "plain 7bit\r\n", 0, 0, 1, 0, 0,
	 0},
	/* Size: exactly at the limit passes, one over fails after the end;
	 * the limit counts decoded octets (after unstuffing). */
	{"abc\r\n.\r\n", 0, 5, OK, NONE, "abc\r\n", 0, 0, 1, 0, 0, 0},
	{"abc\r\n.\r\n", 0, 4, BAD, SMTP_DERR_TOO_BIG, NULL, 0, 0, 1, 0, 0, 0},
	{"..\r\n.\r\n", 0, 3, OK, NONE, ".\r\n", 0, 0, 1, 0, 0, 0},
	{"..\r\n.\r\n", 0, 2, BAD, SMTP_DERR_TOO_BIG, NULL, 0, 0, 1, 0, 0, 0},
	{"abc\r\ndef\r\n.\r\nNOOP\r\n", 0, 6, BAD, SMTP_DERR_TOO_BIG, NULL, 0,
	 13, 2, 0, 0, 0},
	{".\r\n", 0, 1, OK, NONE, "", 0, 0, 0, 0, 0, 0},
	/* Too big and a bare LF: the error must not depend on where the
	 * chunks end (the size is counted lazily); bare LF comes first. */
	{"abcdef\r\nx\ny\r\n.\r\n", 0, 3, BAD, SMTP_DERR_BARE_LF, NULL, 0, 0, 2,
	 0, 1, 0},
	{"abcdef\r\nxy\r\nz\n.\r\n.\r\n", 0, 3, BAD, SMTP_DERR_BARE_LF, NULL, 0,
	 0, 3, 0, 1, 0},
};

static void test_table(void **state)
{
	char label[32];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *c = &cases[i];

		snprintf(label, sizeof(label), "case %zu", i);
		run_case(label, c, (const uint8_t *)c->in,
			 c->len != 0 ? c->len : strlen(c->in));
	}
}

/* Lines of 998 and 999 decoded octets; the stuffing dot is not counted. */
static void test_line_length(void **state)
{
	static char in[4000], out[4000];
	struct tcase c = {0};
	size_t n = 0, o = 0;

	(void)state;
	memset(in, 'x', SMTP_DATA_LINE_MAX);
	n = SMTP_DATA_LINE_MAX;
	memcpy(in + n, "\r\n", 2);
	n += 2;
	in[n++] = '.'; /* stuffed: 999 on the wire, 998 decoded */
	memset(in + n, '.', SMTP_DATA_LINE_MAX);
	n += SMTP_DATA_LINE_MAX;
	memcpy(in + n, "\r\n", 2);
	n += 2;
	memcpy(out, in, SMTP_DATA_LINE_MAX + 2);
	o = SMTP_DATA_LINE_MAX + 2;
	memset(out + o, '.', SMTP_DATA_LINE_MAX);
	o += SMTP_DATA_LINE_MAX;
	memcpy(out + o, "\r\n", 2);
	o += 2;
	memcpy(in + n, ".\r\n", 3);
	n += 3;
	c = (struct tcase){NULL, 0, 0, OK, NONE, out, o, 0, 2, 0, 0, 0};
	run_case("998", &c, (uint8_t *)in, n);

	/* 999: counted, not fatal; also with the limit exactly reached. */
	memset(in, 'y', SMTP_DATA_LINE_MAX + 1);
	memcpy(in + SMTP_DATA_LINE_MAX + 1, "\r\nok\r\n.\r\n", 9);
	n = SMTP_DATA_LINE_MAX + 10;
	memcpy(out, in, n - 3);
	c = (struct tcase){NULL, 0, n - 3, OK, NONE, out, n - 3, 0, 2, 1, 0, 0};
	run_case("999", &c, (uint8_t *)in, n);
	/* 999 with a CR inside: the CR counts as a character. */
	in[500] = '\r';
	memcpy(out, in, n - 3);
	run_case("999 cr", &c, (uint8_t *)in, n);
	/* And one over the size limit. */
	c = (struct tcase){NULL, 0, n - 4, BAD, SMTP_DERR_TOO_BIG, NULL, 0, 0,
			   2,    1, 0,     0};
	run_case("999 too big", &c, (uint8_t *)in, n);
}

static void test_sink_failure(void **state)
{
	const char *in = "a\r\nb\r\n..c\r\n.\r\nQUIT\r\n";
	struct sink s = {0};
	struct result r;
	size_t cut = strlen(in);

	(void)state;
	s.fail_after = 1;
	feed((const uint8_t *)in, strlen(in), &cut, 1, 0, &s, &r);
	assert_int_equal(r.status, SMTP_PARSE_INVALID);
	assert_int_equal(r.d.error, SMTP_DERR_SINK);
	assert_int_equal(r.used, strlen(in) - 6);
	assert_int_equal(s.calls, 1);
	assert_int_equal(r.d.lines, 3);
	/* The second call fails: the first span got through. */
	s.fail_after = 2;
	feed((const uint8_t *)in, strlen(in), &cut, 1, 0, &s, &r);
	assert_int_equal(r.d.error, SMTP_DERR_SINK);
	assert_int_equal(s.calls, 2);
	assert_int_equal(s.len, 6);
	assert_memory_equal(s.buf, "a\r\nb\r\n", 6);
	free(s.buf);
}

static void test_done_and_replies(void **state)
{
	struct smtp_data d;
	size_t used;
	const struct smtp_reply_def *r;

	(void)state;
	smtp_data_init(&d, 0, NULL, NULL);
	assert_int_equal(
		smtp_data_parse(&d, (const uint8_t *)"x\r\n.\r\nQ", 7, &used),
		SMTP_PARSE_OK);
	assert_int_equal(used, 6);
	assert_int_equal(d.size, 3);
	/* Once ended it takes nothing more until initialised again. */
	assert_int_equal(smtp_data_parse(&d, (const uint8_t *)"Q", 1, &used),
			 SMTP_PARSE_OK);
	assert_int_equal(used, 0);
	assert_int_equal(smtp_data_parse(&d, (const uint8_t *)"", 0, &used),
			 SMTP_PARSE_OK);
	smtp_data_init(&d, 0, NULL, NULL);
	assert_int_equal(smtp_data_parse(&d, (const uint8_t *)"", 0, &used),
			 SMTP_PARSE_AGAIN);
	assert_int_equal(used, 0);
	assert_null(smtp_data_error_reply(SMTP_DERR_NONE));
	r = smtp_data_error_reply(SMTP_DERR_TOO_BIG);
	assert_int_equal(r->code, 552);
	assert_string_equal(r->esc, "5.3.4");
	assert_string_equal(r->text, "Message size exceeds fixed limit");
	r = smtp_data_error_reply(SMTP_DERR_BARE_LF);
	assert_int_equal(r->code, 550);
	assert_string_equal(r->text, "Error: bare <LF> received");
	assert_non_null(smtp_data_error_reply(SMTP_DERR_SINK));
}

static uint64_t rng_state = 88172645463325252ULL;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)rng_state;
}

/* Random messages (CRLF lines, many starting with dots, CRs and 8-bit
 * octets inside), dot-stuffed as a client would, then decoded in random
 * chunks: the sink must see the message back exactly. */
static void test_round_trip(void **state)
{
	const size_t msg_max = 200000;
	uint8_t *msg = malloc(msg_max), *wire = malloc(msg_max * 2 + 16);
	struct sink s = {0};
	struct result r;
	size_t cuts[4096];

	(void)state;
	assert_non_null(msg);
	assert_non_null(wire);
	for (int iter = 0; iter < 200; iter++) {
		size_t m = 0, w = 0, nc = 0, pos = 0;
		size_t target = rng() % msg_max;

		while (m + 1100 < target) {
			size_t ll = rng() % 8 == 0 ? rng() % 1100 : rng() % 80;

			for (size_t k = 0; k < ll; k++) {
				uint32_t x = rng() % 16;

				msg[m++] =
					x == 0   ? '.'
					: x == 1 ? '\r'
					: x == 2 ? (uint8_t)(0x80 + rng() % 128)
						 : (uint8_t)('a' + x);
			}
			if (m > 0 && msg[m - 1] == '\r')
				msg[m - 1] = 'z';
			msg[m++] = '\r';
			msg[m++] = '\n';
		}
		/* RFC 5321 4.5.2: a line that starts with a dot gets one more. */
		for (size_t k = 0; k < m; k++) {
			if (msg[k] == '.' &&
			    (k == 0 || (msg[k - 1] == '\n' && k >= 2 &&
					msg[k - 2] == '\r')))
				wire[w++] = '.';
			wire[w++] = msg[k];
		}
		memcpy(wire + w, ".\r\nNOOP\r\n", 9);
		w += 9;
		while (pos < w && nc < 4095) {
			pos += 1 + rng() % (rng() % 2 ? 7 : 3000);
			cuts[nc++] = pos < w ? pos : w;
		}
		cuts[nc - 1] = w;
		feed(wire, w, cuts, nc, 0, &s, &r);
		assert_int_equal(r.status, SMTP_PARSE_OK);
		assert_int_equal(r.used, w - 6);
		assert_int_equal(s.len, m);
		assert_memory_equal(s.buf, msg, m);
		assert_int_equal(r.d.size, m);
	}
	free(s.buf);
	free(msg);
	free(wire);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_line_length),
		cmocka_unit_test(test_sink_failure),
		cmocka_unit_test(test_done_and_replies),
		cmocka_unit_test(test_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
