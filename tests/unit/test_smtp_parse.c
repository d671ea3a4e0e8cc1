/* tests/unit/test_smtp_parse: the SMTP command-line parser, table-driven.
 * Every case is fed whole, one octet at a time, and split in two at every
 * position; all three must give exactly the expected lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "smtp/smtp_parse.h"

#define MAX_RES 8

/* One result the parser reported. */
struct res {
	int status;
	enum smtp_verb verb;
	enum smtp_parse_error err;
	uint32_t line_len;
	char name[32];
	char arg[SMTP_LINE_MAX_LONG];
	size_t arg_len;
};

/* What a case expects; line_len 0 is not checked. */
struct want {
	int status;
	enum smtp_verb verb;
	enum smtp_parse_error err;
	const char *name;
	const char *arg;
	uint32_t line_len;
};

struct run {
	struct res res[MAX_RES];
	size_t n;
	size_t pending; /* octets of an unfinished last line */
};

/* Feed @in in chunks ending at @cuts (the last must be @len). After an
 * AUTH line without initial response the next line is a SASL response,
 * as the session will arrange. */
static void feed(const uint8_t *in, const size_t *cuts, size_t ncuts,
		 struct run *run)
{
	struct smtp_parser p;
	size_t a = 0, used;
	int r;

	smtp_parser_init(&p);
	memset(run, 0, sizeof(*run));
	for (size_t c = 0; c < ncuts; c++) {
		size_t b = cuts[c];

		while (a < b) {
			r = smtp_parse_cmd(&p, in + a, b - a, &used);
			assert_true(used > 0 && used <= b - a);
			a += used;
			if (r == SMTP_PARSE_AGAIN) {
				assert_int_equal(a, b);
				continue;
			}
			assert_true(run->n < MAX_RES);
			struct res *x = &run->res[run->n++];

			x->status = r;
			x->verb = p.cmd.verb;
			x->err = p.error;
			x->line_len = p.cmd.line_len;
			snprintf(x->name, sizeof(x->name), "%.*s",
				 (int)p.cmd.name_len, p.cmd.name);
			memcpy(x->arg, p.cmd.arg, p.cmd.arg_len);
			x->arg[p.cmd.arg_len] = '\0';
			x->arg_len = p.cmd.arg_len;
			if (r == SMTP_PARSE_OK) {
				/* arg is NUL-terminated in the parser */
				assert_int_equal(p.cmd.arg[p.cmd.arg_len],
						 '\0');
				assert_int_equal(p.error, SMTP_PERR_NONE);
			}
			if (r == SMTP_PARSE_OK &&
			    p.cmd.verb == SMTP_VERB_AUTH &&
			    strcasecmp(p.cmd.arg, "PLAIN") == 0)
				smtp_parser_expect_line(&p);
		}
	}
	run->pending = p.len;
}

static void check(const char *what, const struct run *run, const struct want *w,
		  size_t nw)
{
	if (run->n != nw)
		fail_msg("%s: %zu results, want %zu", what, run->n, nw);
	for (size_t i = 0; i < nw; i++) {
		const struct res *x = &run->res[i];

		if (x->status != w[i].status || x->verb != w[i].verb ||
		    x->err != w[i].err)
			fail_msg("%s: result %zu: status %d verb %s err %d, "
				 "want %d %s %d",
				 what, i, x->status, smtp_verb_name(x->verb),
				 x->err, w[i].status, smtp_verb_name(w[i].verb),
				 w[i].err);
		if (w[i].name != NULL && strcmp(x->name, w[i].name) != 0)
			fail_msg("%s: result %zu: name '%s' want '%s'", what, i,
				 x->name, w[i].name);
		if (w[i].arg != NULL && (x->arg_len != strlen(w[i].arg) ||
					 strcmp(x->arg, w[i].arg) != 0))
			fail_msg("%s: result %zu: arg '%s' want '%s'", what, i,
				 x->arg, w[i].arg);
		if (w[i].line_len != 0 && x->line_len != w[i].line_len)
			fail_msg("%s: result %zu: line_len %u want %u", what, i,
				 x->line_len, w[i].line_len);
	}
}

/* Whole, byte by byte, and every two-part split must all match @w. */
static void run_case(const char *label, const uint8_t *in, size_t len,
		     const struct want *w, size_t nw)
{
	struct run *run = malloc(sizeof(*run));
	size_t *cuts = malloc((len + 1) * sizeof(*cuts));
	char what[160];

	assert_non_null(run);
	assert_non_null(cuts);
	cuts[0] = len;
	snprintf(what, sizeof(what), "%s (whole)", label);
	feed(in, cuts, 1, run);
	check(what, run, w, nw);
	for (size_t i = 0; i < len; i++)
		cuts[i] = i + 1;
	snprintf(what, sizeof(what), "%s (bytewise)", label);
	feed(in, cuts, len, run);
	check(what, run, w, nw);
	for (size_t k = 1; k < len; k++) {
		size_t two[2] = {k, len};

		snprintf(what, sizeof(what), "%s (split at %zu)", label, k);
		feed(in, two, 2, run);
		check(what, run, w, nw);
	}
	free(cuts);
	free(run);
}

#define OK(v, n, a)                                                   \
	{                                                             \
		SMTP_PARSE_OK, SMTP_VERB_##v, SMTP_PERR_NONE, n, a, 0 \
	}
#define BAD(e)                                                              \
	{                                                                   \
		SMTP_PARSE_INVALID, SMTP_VERB_UNKNOWN, SMTP_PERR_##e, NULL, \
			NULL, 0                                             \
	}
#define BADV(v, e)                                                            \
	{                                                                     \
		SMTP_PARSE_INVALID, SMTP_VERB_##v, SMTP_PERR_##e, NULL, NULL, \
			0                                                     \
	}

struct tcase {
	const char *in;
	size_t len; /* 0: strlen(in) */
	struct want w[MAX_RES];
	size_t nw;
};

static const struct tcase cases[] = {
	{"EHLO mail.example.org\r\n",
	 0,
	 {OK(EHLO, "EHLO", "mail.example.org")},
	 1},
	{"ehlo x\r\n", 0, {OK(EHLO, "ehlo", "x")}, 1},
	{"HeLo  a.b  \r\n", 0, {OK(HELO, "HeLo", "a.b")}, 1},
	{"MAIL FROM:<a@b.c> SIZE=100\r\n",
	 0,
	 {OK(MAIL, "MAIL", "FROM:<a@b.c> SIZE=100")},
	 1},
	{"rcpt TO:<x@y>\r\n", 0, {OK(RCPT, "rcpt", "TO:<x@y>")}, 1},
	{"DATA\r\n", 0, {OK(DATA, "DATA", "")}, 1},
	{"BDAT 100 LAST\r\n", 0, {OK(BDAT, "BDAT", "100 LAST")}, 1},
	{"RSET\r\n", 0, {OK(RSET, "RSET", "")}, 1},
	{"NOOP foo bar\r\n", 0, {OK(NOOP, "NOOP", "foo bar")}, 1},
	{"quit\r\n", 0, {OK(QUIT, "quit", "")}, 1},
	{"VRFY someone\r\n", 0, {OK(VRFY, "VRFY", "someone")}, 1},
	{"EXPN list\r\n", 0, {OK(EXPN, "EXPN", "list")}, 1},
	{"HELP\r\n", 0, {OK(HELP, "HELP", "")}, 1},
	{"STARTTLS\r\n", 0, {OK(STARTTLS, "STARTTLS", "")}, 1},
	{"StartTls \r\n", 0, {OK(STARTTLS, "StartTls", "")}, 1},
	{"AUTH PLAIN AGFiAGM=\r\n", 0, {OK(AUTH, "AUTH", "PLAIN AGFiAGM=")}, 1},
	/* Verb split on HTAB too; the argument keeps inner spaces. */
	{"NOOP\ta  b\r\n", 0, {OK(NOOP, "NOOP", "a  b")}, 1},
	/* Unknown verbs are OK lines with their name. */
	{"XCLIENT ADDR=1.2.3.4\r\n",
	 0,
	 {OK(UNKNOWN, "XCLIENT", "ADDR=1.2.3.4")},
	 1},
	{"MAILX FROM:<a@b>\r\n", 0, {OK(UNKNOWN, "MAILX", "FROM:<a@b>")}, 1},
	{"MAI\r\n", 0, {OK(UNKNOWN, "MAI", "")}, 1},
	{"STARTTLX\r\n", 0, {OK(UNKNOWN, "STARTTLX", "")}, 1},
	{"M@IL x\r\n", 0, {OK(UNKNOWN, "M@IL", "x")}, 1},
	{"GET / HTTP/1.1\r\n", 0, {OK(UNKNOWN, "GET", "/ HTTP/1.1")}, 1},
	/* 8-bit octets pass the line parser. */
	{"EHLO ex\xc3\xa4mple.org\r\n",
	 0,
	 {OK(EHLO, "EHLO", "ex\xc3\xa4mple.org")},
	 1},
	/* Syntax errors, each reported once, then the next line works. */
	{"\r\nNOOP\r\n", 0, {BAD(SYNTAX), OK(NOOP, "NOOP", "")}, 2},
	{" NOOP\r\n", 0, {BAD(SYNTAX)}, 1},
	{"NOOP\nQUIT\r\n", 0, {BADV(NOOP, BARE_LF), OK(QUIT, "QUIT", "")}, 2},
	{"\n", 0, {BAD(BARE_LF)}, 1},
	{"NO\0OP\r\n", 7, {BADV(UNKNOWN, BAD_CHAR)}, 1},
	{"NOOP x\0y\r\n", 10, {BADV(NOOP, BAD_CHAR)}, 1},
	{"NOOP\rX\r\n", 0, {BADV(NOOP, BAD_CHAR)}, 1},
	{"QUIT\r\r\n", 0, {BADV(QUIT, BAD_CHAR)}, 1},
	{"NOOP \x7f\r\n", 0, {BADV(NOOP, BAD_CHAR)}, 1},
	{"NOOP \x1b[0m\r\n", 0, {BADV(NOOP, BAD_CHAR)}, 1},
	/* Pipelining: several lines in one chunk, the rest kept. */
	{"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
	 0,
	 {OK(MAIL, "MAIL", "FROM:<a@b>"), OK(RCPT, "RCPT", "TO:<c@d>"),
	  OK(DATA, "DATA", "")},
	 3},
	{"NOOP\r\nQUI", 0, {OK(NOOP, "NOOP", "")}, 1},
	/* A SASL response after "AUTH PLAIN" is a raw line, then commands
	 * again; "*" cancels (the session's business). */
	{"AUTH PLAIN\r\nAGFiAGM=\r\nNOOP\r\n",
	 0,
	 {OK(AUTH, "AUTH", "PLAIN"), OK(LINE, "", "AGFiAGM="),
	  OK(NOOP, "NOOP", "")},
	 3},
	{"AUTH PLAIN\r\n*\r\n",
	 0,
	 {OK(AUTH, "AUTH", "PLAIN"), OK(LINE, "", "*")},
	 2},
	{"AUTH PLAIN\r\n\r\n",
	 0,
	 {OK(AUTH, "AUTH", "PLAIN"), OK(LINE, "", "")},
	 2},
	{"AUTH PLAIN\r\nab\ncd\r\n",
	 0,
	 {OK(AUTH, "AUTH", "PLAIN"), BADV(LINE, BARE_LF),
	  OK(UNKNOWN, "cd", "")},
	 3},
};

static void test_table(void **state)
{
	char label[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *c = &cases[i];
		size_t len = c->len != 0 ? c->len : strlen(c->in);

		snprintf(label, sizeof(label), "case %zu", i);
		run_case(label, (const uint8_t *)c->in, len, c->w, c->nw);
	}
}

/* "<verb> xxx...\r\n" of exactly @total octets, then "QUIT\r\n". */
static size_t make_line(char *buf, const char *verb, size_t total)
{
	size_t n = strlen(verb);

	memcpy(buf, verb, n);
	buf[n] = ' ';
	memset(buf + n + 1, 'x', total - n - 3);
	memcpy(buf + total - 2, "\r\nQUIT\r\n", 8);
	return total + 6;
}

static void test_line_limits(void **state)
{
	static char buf[12000];
	char arg[SMTP_LINE_MAX_LONG];
	struct want w[2] = {OK(QUIT, "QUIT", ""), OK(QUIT, "QUIT", "")};
	size_t len;

	(void)state;
	/* Exactly 512 with CRLF: fine; 513: too long, then QUIT works. */
	len = make_line(buf, "NOOP", SMTP_LINE_MAX);
	memset(arg, 'x', SMTP_LINE_MAX - 7);
	arg[SMTP_LINE_MAX - 7] = '\0';
	w[0] = (struct want)OK(NOOP, "NOOP", arg);
	w[0].line_len = SMTP_LINE_MAX;
	run_case("noop 512", (uint8_t *)buf, len, w, 2);
	len = make_line(buf, "NOOP", SMTP_LINE_MAX + 1);
	w[0] = (struct want)BADV(NOOP, TOO_LONG);
	w[0].line_len = SMTP_LINE_MAX + 1;
	run_case("noop 513", (uint8_t *)buf, len, w, 2);
	len = make_line(buf, "EHLO", 600);
	w[0] = (struct want)BADV(EHLO, TOO_LONG);
	run_case("ehlo 600", (uint8_t *)buf, len, w, 2);
	/* MAIL, RCPT and AUTH may use 2048. */
	len = make_line(buf, "RCPT", 600);
	w[0] = (struct want)OK(RCPT, "RCPT", NULL);
	w[0].line_len = 600;
	run_case("rcpt 600", (uint8_t *)buf, len, w, 2);
	len = make_line(buf, "MAIL", SMTP_LINE_MAX_LONG);
	memset(arg, 'x', SMTP_LINE_MAX_LONG - 7);
	arg[SMTP_LINE_MAX_LONG - 7] = '\0';
	w[0] = (struct want)OK(MAIL, "MAIL", arg);
	w[0].line_len = SMTP_LINE_MAX_LONG;
	run_case("mail 2048", (uint8_t *)buf, len, w, 2);
	len = make_line(buf, "AUTH", SMTP_LINE_MAX_LONG);
	w[0] = (struct want)OK(AUTH, "AUTH", NULL);
	run_case("auth 2048", (uint8_t *)buf, len, w, 2);
	/* One over the long limit: not stored, skipped, reported once. */
	len = make_line(buf, "MAIL", SMTP_LINE_MAX_LONG + 1);
	w[0] = (struct want)BAD(TOO_LONG);
	w[0].line_len = SMTP_LINE_MAX_LONG + 1;
	run_case("mail 2049", (uint8_t *)buf, len, w, 2);
	len = make_line(buf, "NOOP", 10000);
	w[0].line_len = 10000;
	run_case("noop 10000", (uint8_t *)buf, len, w, 2);
	/* A bare LF at the end of an overlong line: too long wins. */
	len = make_line(buf, "NOOP", 3000);
	buf[2998] = 'x';
	w[0].line_len = 3000;
	run_case("long bare lf", (uint8_t *)buf, len, w, 2);
}

/* A SASL response line has the long limit too. */
static void test_raw_limit(void **state)
{
	static char buf[4200];
	struct want w[3] = {OK(AUTH, "AUTH", "PLAIN"), OK(LINE, "", NULL),
			    OK(QUIT, "QUIT", "")};
	size_t len;

	(void)state;
	memcpy(buf, "AUTH PLAIN\r\n", 12);
	memset(buf + 12, 'A', SMTP_LINE_MAX_LONG - 2);
	memcpy(buf + 12 + SMTP_LINE_MAX_LONG - 2, "\r\nQUIT\r\n", 8);
	len = 12 + SMTP_LINE_MAX_LONG + 6;
	w[1].line_len = SMTP_LINE_MAX_LONG;
	run_case("raw 2048", (uint8_t *)buf, len, w, 3);
	memset(buf + 12, 'A', SMTP_LINE_MAX_LONG - 1);
	memcpy(buf + 12 + SMTP_LINE_MAX_LONG - 1, "\r\nQUIT\r\n", 8);
	len++;
	w[1] = (struct want)BAD(TOO_LONG);
	run_case("raw 2049", (uint8_t *)buf, len, w, 3);
}

/* The parser never uses octets past the LF: DATA content and pipelined
 * commands stay with the caller. */
static void test_used_stops_at_lf(void **state)
{
	struct smtp_parser p;
	const char *in = "DATA\r\nSubject: x\r\n";
	size_t used;

	(void)state;
	smtp_parser_init(&p);
	assert_int_equal(
		smtp_parse_cmd(&p, (const uint8_t *)in, strlen(in), &used),
		SMTP_PARSE_OK);
	assert_int_equal(used, 6);
	assert_int_equal(p.cmd.verb, SMTP_VERB_DATA);
	assert_int_equal(p.cmd.line_len, 6);
	/* Empty input: nothing used. */
	assert_int_equal(smtp_parse_cmd(&p, (const uint8_t *)in, 0, &used),
			 SMTP_PARSE_AGAIN);
	assert_int_equal(used, 0);
	/* An overlong line counts its octets as it goes. */
	smtp_parser_init(&p);
	for (int i = 0; i < 100; i++) {
		char x[100];

		memset(x, 'x', sizeof(x));
		assert_int_equal(
			smtp_parse_cmd(&p, (uint8_t *)x, sizeof(x), &used),
			SMTP_PARSE_AGAIN);
	}
	assert_int_equal(p.skipped, 10000);
	assert_int_equal(p.len, 0);
}

static void test_line_ready(void **state)
{
	(void)state;
	assert_false(smtp_parse_line_ready((const uint8_t *)"", 0));
	assert_false(smtp_parse_line_ready((const uint8_t *)"NOOP", 4));
	assert_false(smtp_parse_line_ready((const uint8_t *)"NOOP\r", 5));
	assert_true(smtp_parse_line_ready((const uint8_t *)"NOOP\r\n", 6));
	assert_true(smtp_parse_line_ready((const uint8_t *)"\n", 1));
	assert_true(smtp_parse_line_ready((const uint8_t *)"a\nb", 3));
}

static void test_names_and_replies(void **state)
{
	const struct smtp_reply_def *r;

	(void)state;
	assert_string_equal(smtp_verb_name(SMTP_VERB_STARTTLS), "STARTTLS");
	assert_string_equal(smtp_verb_name(SMTP_VERB_UNKNOWN), "UNKNOWN");
	assert_string_equal(smtp_verb_name((enum smtp_verb)999), "UNKNOWN");
	for (int v = 0; v < SMTP_VERB_COUNT; v++)
		assert_non_null(smtp_verb_name((enum smtp_verb)v));
	assert_null(smtp_parse_error_reply(SMTP_PERR_NONE));
	r = smtp_parse_error_reply(SMTP_PERR_TOO_LONG);
	assert_int_equal(r->code, 500);
	assert_string_equal(r->esc, "5.5.2");
	assert_string_equal(r->text, "Error: command too long");
	r = smtp_parse_error_reply(SMTP_PERR_BARE_LF);
	assert_int_equal(r->code, 550);
	assert_string_equal(r->text, "Error: bare <LF> received");
	r = smtp_parse_error_reply(SMTP_PERR_SYNTAX);
	assert_int_equal(r->code, 500);
	assert_string_equal(r->text, "Error: bad syntax");
	assert_non_null(smtp_parse_error_reply(SMTP_PERR_BAD_CHAR));
}

/* Formats a reply line as the session will: the SMTP_R_* macro puts a
 * literal format in the call, so -Wformat checks its arguments. */
static void __attribute__((format(printf, 5, 6)))
fmt_reply(char *buf, size_t size, int code, const char *esc, const char *fmt,
	  ...)
{
	va_list ap;
	int n;

	n = snprintf(buf, size, "%d%s%s ", code, esc != NULL ? " " : "",
		     esc != NULL ? esc : "");
	assert_true(n > 0 && (size_t)n < size);
	va_start(ap, fmt);
	vsnprintf(buf + n, size - (size_t)n, fmt, ap);
	va_end(ap);
}

/* The chatmail texts the session must send verbatim (spec F.2, D.5, C.7,
 * D.12); a typo here would break chatmail's online tests. */
static void test_reply_texts(void **state)
{
	char l[256];

	(void)state;
	fmt_reply(l, sizeof(l), SMTP_R_STARTTLS_FIRST);
	assert_string_equal(l, "530 5.7.0 Must issue a STARTTLS command first");
	fmt_reply(l, sizeof(l), SMTP_R_ENCRYPTION_NEEDED);
	assert_string_equal(l,
			    "523 Encryption Needed: Invalid Unencrypted Mail");
	fmt_reply(l, sizeof(l), SMTP_R_RATE_LIMIT, "a@b.org",
		  "rate-limited until x");
	assert_string_equal(l, "450 4.7.1: Too much mail from <a@b.org>, "
			       "rate-limited until x");
	fmt_reply(l, sizeof(l), SMTP_R_INVALID_FROM, "x@y", "a@b");
	assert_string_equal(l, "500 Invalid FROM <x@y> for <a@b>");
	fmt_reply(l, sizeof(l), SMTP_R_TOO_BIG);
	assert_string_equal(l, "552 5.3.4 Message size exceeds fixed limit");
	fmt_reply(l, sizeof(l), SMTP_R_VRFY);
	assert_int_equal(strncmp(l, "252 2.0.0 ", 10), 0);
	fmt_reply(l, sizeof(l), SMTP_R_RELAY_DENIED, "x@other.org");
	assert_string_equal(l, "554 5.7.1 <x@other.org>: Relay access denied");
	fmt_reply(l, sizeof(l), SMTP_R_NOT_OWNER, "x@c.org", "y@c.org");
	assert_string_equal(l, "553 5.7.1 <x@c.org>: Sender address rejected: "
			       "not owned by user y@c.org");
	fmt_reply(l, sizeof(l), SMTP_R_NO_DKIM);
	assert_string_equal(l, "554 5.7.1 No DKIM signature found");
	fmt_reply(l, sizeof(l), SMTP_R_BAD_DKIM);
	assert_string_equal(l, "554 5.7.1 No valid DKIM signature found");
	fmt_reply(l, sizeof(l), SMTP_R_UNSUPPORTED_OPT, 3, "SMTPUTF8");
	assert_string_equal(l, "555 5.5.4 Unsupported option: SMT");
	fmt_reply(l, sizeof(l), SMTP_R_TOO_BIG_MXDELIV);
	assert_string_equal(l, "552 Message exceeds maximum size");
	fmt_reply(l, sizeof(l), SMTP_R_INVALID_FROM_ADDR, "x");
	assert_string_equal(l, "500 Invalid from address <x>");
	fmt_reply(l, sizeof(l), SMTP_R_DATA_GO);
	assert_string_equal(l, "354 End data with <CR><LF>.<CR><LF>");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_line_limits),
		cmocka_unit_test(test_raw_limit),
		cmocka_unit_test(test_used_stops_at_lf),
		cmocka_unit_test(test_line_ready),
		cmocka_unit_test(test_names_and_replies),
		cmocka_unit_test(test_reply_texts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
