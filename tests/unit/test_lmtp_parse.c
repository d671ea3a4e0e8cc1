/* tests/unit/test_lmtp_parse: the LMTP/SMTP reply parser, table-driven,
 * every case fed whole, one byte at a time, and in two halves at every
 * split point. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/lmtp_parse.h"

#define EV_MAX 8

/* What one call sequence produced: OK replies and INVALIDs, in order. */
struct ev {
	int kind; /* LMTP_PARSE_OK or LMTP_PARSE_INVALID */
	unsigned code;
	const char *status;
	const char *text;
	unsigned lines;
	bool truncated;
};

struct parse_case {
	const char *name;
	const char *in;
	size_t in_len; /* 0: strlen(in) */
	struct ev ev[EV_MAX];
	size_t n_ev;
	bool partial_end; /* input ends inside a reply (AGAIN at the end) */
};

#define OK(c, st, tx, nl)                           \
	{                                           \
		LMTP_PARSE_OK, c, st, tx, nl, false \
	}
#define BAD                                                 \
	{                                                   \
		LMTP_PARSE_INVALID, 0, NULL, NULL, 0, false \
	}

static const struct parse_case cases[] = {
	{"single",
	 "250 2.1.0 OK\r\n",
	 0,
	 {OK(250, "2.1.0", "OK", 1)},
	 1,
	 false},
	{"no status",
	 "220 vm Dovecot (Debian) ready.\r\n",
	 0,
	 {OK(220, "", "vm Dovecot (Debian) ready.", 1)},
	 1,
	 false},
	{"code only", "250\r\n", 0, {OK(250, "", "", 1)}, 1, false},
	{"code and space", "354 \r\n", 0, {OK(354, "", "", 1)}, 1, false},
	{"bare LF", "250 2.0.0 ok\n", 0, {OK(250, "2.0.0", "ok", 1)}, 1, false},
	{"lhlo multiline",
	 "250-vm\r\n250-8BITMIME\r\n250-CHUNKING\r\n250-ENHANCEDSTATUSCODES\r\n"
	 "250 PIPELINING\r\n",
	 0,
	 {OK(250, "", "vm\n8BITMIME\nCHUNKING\nENHANCEDSTATUSCODES\nPIPELINING",
	     5)},
	 1,
	 false},
	{"multiline with status",
	 "550-5.1.1 first\r\n550-5.1.1 second\r\n550 5.1.1 third\r\n",
	 0,
	 {OK(550, "5.1.1", "first\nsecond\nthird", 3)},
	 1,
	 false},
	{"quota",
	 "552 5.2.2 <a@b.org> Quota exceeded (mailbox for user is "
	 "full)\r\n",
	 0,
	 {OK(552, "5.2.2",
	     "<a@b.org> Quota exceeded (mailbox for user is full)", 1)},
	 1,
	 false},
	{"status class must match",
	 "250 5.0.0 odd\r\n",
	 0,
	 {OK(250, "", "5.0.0 odd", 1)},
	 1,
	 false},
	{"status needs a space",
	 "250 2.0.0x\r\n",
	 0,
	 {OK(250, "", "2.0.0x", 1)},
	 1,
	 false},
	{"status alone",
	 "250 2.0.0\r\n",
	 0,
	 {OK(250, "2.0.0", "", 1)},
	 1,
	 false},
	{"status too many digits",
	 "451 4.3333.1 x\r\n",
	 0,
	 {OK(451, "", "4.3333.1 x", 1)},
	 1,
	 false},
	{"pipelined replies",
	 "250 2.1.0 OK\r\n250 2.1.5 OK\r\n550 5.1.1 <x@y> nope\r\n354 OK\r\n",
	 0,
	 {OK(250, "2.1.0", "OK", 1), OK(250, "2.1.5", "OK", 1),
	  OK(550, "5.1.1", "<x@y> nope", 1), OK(354, "", "OK", 1)},
	 4,
	 false},
	{"control chars replaced",
	 "250 a\tb\x01\x7f"
	 "c\r\n",
	 0,
	 {OK(250, "", "a?b??c", 1)},
	 1,
	 false},
	{"partial", "250-one\r\n250 tw", 0, {{0}}, 0, true},
	{"bad first digit",
	 "150 nope\r\n250 ok\r\n",
	 0,
	 {BAD, OK(250, "", "ok", 1)},
	 2,
	 false},
	{"letters",
	 "abc\r\n250 ok\r\n",
	 0,
	 {BAD, OK(250, "", "ok", 1)},
	 2,
	 false},
	{"too short", "25\r\n", 0, {BAD}, 1, false},
	{"bad separator", "250x ok\r\n", 0, {BAD}, 1, false},
	{"code change in multiline",
	 "250-a\r\n251 b\r\n250 c\r\n",
	 0,
	 {BAD, OK(250, "", "c", 1)},
	 2,
	 false},
	{"empty line",
	 "\r\n250 ok\r\n",
	 0,
	 {BAD, OK(250, "", "ok", 1)},
	 2,
	 false},
	{"NUL inside", "250 a\0b\r\n", 9, {OK(250, "", "a?b", 1)}, 1, false},
};

static void ev_check(const struct ev *want, int kind,
		     const struct lmtp_parser *p, const char *name)
{
	if (kind != want->kind)
		fail_msg("%s: got %d want %d", name, kind, want->kind);
	if (kind != LMTP_PARSE_OK)
		return;
	if (p->reply.code != want->code)
		fail_msg("%s: code %u want %u", name, p->reply.code,
			 want->code);
	if (strcmp(p->reply.status, want->status) != 0)
		fail_msg("%s: status '%s' want '%s'", name, p->reply.status,
			 want->status);
	if (strcmp(p->reply.text, want->text) != 0)
		fail_msg("%s: text '%s' want '%s'", name, p->reply.text,
			 want->text);
	assert_int_equal(p->reply.text_len, strlen(want->text));
	assert_int_equal(p->reply.lines, want->lines);
	assert_int_equal(p->reply.truncated, want->truncated);
}

/* Feed @in in pieces of @step bytes (0 = whole), or split at @split. */
static void run_case(const struct parse_case *c, size_t step, size_t split)
{
	struct lmtp_parser *p = malloc(sizeof(*p));
	size_t len = c->in_len != 0 ? c->in_len : strlen(c->in);
	size_t off = 0, n_ev = 0, used, chunk_end;
	const uint8_t *in = (const uint8_t *)c->in;
	int r = LMTP_PARSE_AGAIN;

	assert_non_null(p);
	lmtp_parser_init(p);
	while (off < len) {
		if (step != 0)
			chunk_end = off + step < len ? off + step : len;
		else if (split != 0 && off < split)
			chunk_end = split;
		else
			chunk_end = len;
		while (off < chunk_end) {
			r = lmtp_parse_reply(p, in + off, chunk_end - off,
					     &used);
			assert_true(used <= chunk_end - off);
			off += used;
			if (r == LMTP_PARSE_AGAIN) {
				assert_int_equal(off, chunk_end);
				break;
			}
			assert_true(n_ev < c->n_ev);
			ev_check(&c->ev[n_ev], r, p, c->name);
			if (r == LMTP_PARSE_INVALID)
				assert_non_null(p->error);
			n_ev++;
		}
	}
	if (n_ev != c->n_ev)
		fail_msg("%s (step %zu split %zu): %zu events, want %zu",
			 c->name, step, split, n_ev, c->n_ev);
	/* Nothing left over means the parser sits between replies. */
	assert_int_equal(p->in_reply || p->line_len > 0, c->partial_end);
	free(p);
}

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = cases[i].in_len != 0 ? cases[i].in_len
						  : strlen(cases[i].in);

		run_case(&cases[i], 0, 0);
		run_case(&cases[i], 1, 0);
		run_case(&cases[i], 3, 0);
		for (size_t s = 1; s < len; s++)
			run_case(&cases[i], 0, s);
	}
}

/* A line of exactly LMTP_REPLY_LINE_MAX bytes passes; one more is invalid
 * and the parser resynchronises at the next line, also byte by byte. */
static void test_overlong(void **state)
{
	size_t max = LMTP_REPLY_LINE_MAX;
	char *in = malloc(max + 64);
	struct lmtp_parser *p = malloc(sizeof(*p));
	size_t used, off;
	int r;

	(void)state;
	assert_non_null(in);
	assert_non_null(p);
	/* exactly the limit */
	memcpy(in, "250 ", 4);
	memset(in + 4, 'x', max - 4);
	memcpy(in + max, "\r\n", 2);
	lmtp_parser_init(p);
	r = lmtp_parse_reply(p, (uint8_t *)in, max + 2, &used);
	assert_int_equal(r, LMTP_PARSE_OK);
	assert_int_equal(used, max + 2);
	if (max - 4 > LMTP_REPLY_TEXT_MAX) {
		assert_int_equal(p->reply.text_len, LMTP_REPLY_TEXT_MAX);
		assert_true(p->reply.truncated);
	} else {
		assert_int_equal(p->reply.text_len, max - 4);
		assert_false(p->reply.truncated);
	}

	/* one byte over, then a good reply: whole and byte by byte */
	memcpy(in, "250 ", 4);
	memset(in + 4, 'y', max - 3);
	memcpy(in + max + 1, "\r\n250 ok\r\n", 10);
	for (int bytewise = 0; bytewise < 2; bytewise++) {
		int got_bad = 0, got_ok = 0;

		lmtp_parser_init(p);
		off = 0;
		while (off < max + 11) {
			size_t n = bytewise ? 1 : max + 11 - off;

			r = lmtp_parse_reply(p, (uint8_t *)in + off, n, &used);
			off += used;
			if (r == LMTP_PARSE_INVALID) {
				assert_string_equal(p->error,
						    "reply line too long");
				got_bad++;
			} else if (r == LMTP_PARSE_OK) {
				assert_int_equal(p->reply.code, 250);
				assert_string_equal(p->reply.text, "ok");
				got_ok++;
			}
		}
		assert_int_equal(got_bad, 1);
		assert_int_equal(got_ok, 1);
	}
	free(in);
	free(p);
}

/* Too many continuation lines make the reply invalid. */
static void test_too_many_lines(void **state)
{
	struct lmtp_parser p;
	size_t used, off = 0;
	int r, bad = 0;
	char line[32];

	(void)state;
	lmtp_parser_init(&p);
	for (int i = 0; i < LMTP_REPLY_LINES_MAX + 5; i++) {
		snprintf(line, sizeof(line), "250-l%d\r\n", i);
		off = 0;
		while (off < strlen(line)) {
			r = lmtp_parse_reply(&p, (uint8_t *)line + off,
					     strlen(line) - off, &used);
			off += used;
			if (r == LMTP_PARSE_INVALID)
				bad++;
			assert_int_not_equal(r, LMTP_PARSE_OK);
		}
	}
	assert_true(bad >= 1);
}

/* Long multiline text is cut at LMTP_REPLY_TEXT_MAX and flagged. */
static void test_text_truncated(void **state)
{
	struct lmtp_parser p;
	char buf[4096];
	size_t len = 0, used;
	int r;

	(void)state;
	for (int i = 0; i < 20; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len,
					"250-%s\r\n",
					"0123456789012345678901234567890123456"
					"7890123456789012345678901234567890");
	len += (size_t)snprintf(buf + len, sizeof(buf) - len, "250 end\r\n");
	lmtp_parser_init(&p);
	r = lmtp_parse_reply(&p, (uint8_t *)buf, len, &used);
	assert_int_equal(r, LMTP_PARSE_OK);
	assert_int_equal(used, len);
	assert_true(p.reply.truncated);
	assert_int_equal(p.reply.text_len, LMTP_REPLY_TEXT_MAX);
	assert_int_equal(strlen(p.reply.text), LMTP_REPLY_TEXT_MAX);
	assert_int_equal(p.reply.lines, 21);
}

static void test_status_helper(void **state)
{
	(void)state;
	assert_int_equal(lmtp_parse_status("2.0.0", 5, '2'), 5);
	assert_int_equal(lmtp_parse_status("5.2.2 x", 7, '5'), 5);
	assert_int_equal(lmtp_parse_status("4.123.456 x", 11, '4'), 9);
	assert_int_equal(lmtp_parse_status("4.1234.4", 8, '4'), 0);
	assert_int_equal(lmtp_parse_status("4.1.", 4, '4'), 0);
	assert_int_equal(lmtp_parse_status("4..1", 4, '4'), 0);
	assert_int_equal(lmtp_parse_status("2.0.0", 5, '5'), 0);
	assert_int_equal(lmtp_parse_status("2.0.0:", 6, '2'), 0);
	assert_true(lmtp_reply_ok(250));
	assert_false(lmtp_reply_ok(354));
	assert_false(lmtp_reply_ok(452));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_overlong),
		cmocka_unit_test(test_too_many_lines),
		cmocka_unit_test(test_text_truncated),
		cmocka_unit_test(test_status_helper),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
