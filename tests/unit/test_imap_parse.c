/* tests/unit/test_imap_parse: the IMAP stream framer (client commands and
 * server responses) and the argument tokenizer, table-driven. Every case
 * is fed whole, one octet at a time and split in two at every position;
 * all must give the same events at the same offsets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imap-proxy/imap_parse.h"

#define MAX_EV 16

struct ev {
	int status;
	size_t at; /* offset just after the event */
	char tag[IMAP_TAG_MAX + 1];
	char name[IMAP_NAME_MAX + 1];
	uint64_t literal;
	bool sync;
	bool truncated;
	enum imap_parse_error err;
};

struct want {
	int status;
	const char *tag;
	const char *name;
	uint64_t literal;
	bool sync;
	enum imap_parse_error err;
};

struct tcase {
	const char *label;
	bool server;
	uint32_t max_line;
	const char *in;
	struct want w[MAX_EV];
	size_t nw;
};

#define C IMAP_PARSE_CMD
#define L IMAP_PARSE_LITERAL
#define I IMAP_PARSE_INVALID

static const struct tcase cases[] = {
	{"noop", false, 0, "a1 NOOP\r\n", {{C, "a1", "NOOP", 0, 0, 0}}, 1},
	{"lower-case name",
	 false,
	 0,
	 "x login u p\r\n",
	 {{C, "x", "LOGIN", 0, 0, 0}},
	 1},
	{"bare LF", false, 0, "a NOOP\n", {{C, "a", "NOOP", 0, 0, 0}}, 1},
	{"pipelined",
	 false,
	 0,
	 "a NOOP\r\nb CAPABILITY\r\nc LOGOUT\r\n",
	 {{C, "a", "NOOP", 0, 0, 0},
	  {C, "b", "CAPABILITY", 0, 0, 0},
	  {C, "c", "LOGOUT", 0, 0, 0}},
	 3},
	{"literals",
	 false,
	 0,
	 "a1 LOGIN {5}\r\nhello {3+}\r\nabc\r\nb NOOP\r\n",
	 {{L, "a1", "LOGIN", 5, true, 0},
	  {L, "a1", "LOGIN", 3, false, 0},
	  {C, "a1", "LOGIN", 0, false, 0},
	  {C, "b", "NOOP", 0, 0, 0}},
	 4},
	{"literal with CRLF and braces inside",
	 false,
	 0,
	 "a APPEND INBOX {8}\r\n{1}\r\n\r\nx\r\n",
	 {{L, "a", "APPEND", 8, true, 0}, {C, "a", "APPEND", 8, true, 0}},
	 2},
	{"empty literal",
	 false,
	 0,
	 "a X {0}\r\n\r\n",
	 {{L, "a", "X", 0, true, 0}, {C, "a", "X", 0, true, 0}},
	 2},
	{"binary literal",
	 false,
	 0,
	 "a APPEND INBOX ~{2}\r\nzz\r\n",
	 {{L, "a", "APPEND", 2, true, 0}, {C, "a", "APPEND", 2, true, 0}},
	 2},
	{"not a literal",
	 false,
	 0,
	 "a X {5}x\r\nb X {a}\r\nc X {}\r\n",
	 {{C, "a", "X", 0, 0, 0},
	  {C, "b", "X", 0, 0, 0},
	  {C, "c", "X", 0, 0, 0}},
	 3},
	{"literal after name only in args",
	 false,
	 0,
	 "a {5}\r\n",
	 {{C, "a", "{5}", 0, 0, 0}},
	 1},
	{"DONE", false, 0, "DONE\r\n", {{C, "DONE", "", 0, 0, 0}}, 1},
	{"empty line",
	 false,
	 0,
	 "\r\na NOOP\r\n",
	 {{I, "", "", 0, 0, IMAP_PERR_SYNTAX}, {C, "a", "NOOP", 0, 0, 0}},
	 2},
	{"NUL",
	 false,
	 0,
	 "a NO\0OP\r\nb NOOP\r\n",
	 {{I, "a", NULL, 0, 0, IMAP_PERR_SYNTAX}, {C, "b", "NOOP", 0, 0, 0}},
	 2},
	{"too long",
	 false,
	 16,
	 "a NOOP 0123456789abcdef\r\nb NOOP\r\n",
	 {{I, "a", "NOOP", 0, 0, IMAP_PERR_TOO_LONG},
	  {C, "b", "NOOP", 0, 0, 0}},
	 2},
	{"long line split by a literal",
	 false,
	 16,
	 "a X 0123456 {4}\r\nabcd 0123456789\r\n",
	 {{L, "a", "X", 4, true, 0}, {C, "a", "X", 4, true, 0}},
	 2},
	{"server untagged and tagged",
	 true,
	 0,
	 "* 3 EXISTS\r\n* 1 RECENT\r\na1 OK done\r\n",
	 {{C, "*", "3", 0, 0, 0},
	  {C, "*", "1", 0, 0, 0},
	  {C, "a1", "OK", 0, 0, 0}},
	 3},
	{"server fetch literal",
	 true,
	 0,
	 "* 1 FETCH (BODY[] {5}\r\nab\r\nc)\r\nf OK x\r\n",
	 {{L, "*", "1", 5, true, 0},
	  {C, "*", "1", 5, true, 0},
	  {C, "f", "OK", 0, 0, 0}},
	 3},
	{"server continuation never has a literal",
	 true,
	 0,
	 "+ idling {5}\r\n+\r\n",
	 {{C, "+", "IDLING", 0, 0, 0}, {C, "+", "", 0, 0, 0}},
	 2},
	{"server NUL passes",
	 true,
	 0,
	 "* OK a\0b\r\n",
	 {{C, "*", "OK", 0, 0, 0}},
	 1},
};

static void record(struct ev *e, int r, size_t at, const struct imap_parser *p)
{
	memset(e, 0, sizeof(*e));
	e->status = r;
	e->at = at;
	snprintf(e->tag, sizeof(e->tag), "%s", p->tag);
	snprintf(e->name, sizeof(e->name), "%s", p->name);
	e->literal = p->literal;
	e->sync = p->literal_sync;
	e->truncated = p->tag_truncated;
	e->err = p->error;
}

/* Feed @in in pieces ending at @cuts; returns the number of events. */
static size_t feed(const struct tcase *t, const size_t *cuts, size_t ncuts,
		   struct ev *evs)
{
	struct imap_parser p;
	size_t a = 0, n = 0, used;
	int r;

	imap_parser_init(&p, t->server, t->max_line);
	for (size_t c = 0; c < ncuts; c++) {
		size_t b = cuts[c];

		while (a < b) {
			r = imap_parse(&p, (const uint8_t *)t->in + a, b - a,
				       &used);
			assert_true(used > 0 && used <= b - a);
			a += used;
			if (r == IMAP_PARSE_AGAIN) {
				assert_int_equal(a, b);
				continue;
			}
			assert_true(n < MAX_EV);
			record(&evs[n++], r, a, &p);
		}
	}
	assert_true(imap_parse_at_start(&p));
	return n;
}

static void check(const struct tcase *t, const char *how, const struct ev *e,
		  size_t n)
{
	if (n != t->nw)
		fail_msg("%s (%s): %zu events, want %zu", t->label, how, n,
			 t->nw);
	for (size_t i = 0; i < n; i++) {
		const struct want *w = &t->w[i];

		if (e[i].status != w->status || e[i].err != w->err)
			fail_msg("%s (%s): event %zu: status %d err %d, want "
				 "%d %d",
				 t->label, how, i, e[i].status, e[i].err,
				 w->status, w->err);
		if (w->tag != NULL && strcmp(e[i].tag, w->tag) != 0)
			fail_msg("%s (%s): event %zu: tag '%s' want '%s'",
				 t->label, how, i, e[i].tag, w->tag);
		if (w->name != NULL && strcmp(e[i].name, w->name) != 0)
			fail_msg("%s (%s): event %zu: name '%s' want '%s'",
				 t->label, how, i, e[i].name, w->name);
		if (w->status == L &&
		    (e[i].literal != w->literal || e[i].sync != w->sync))
			fail_msg("%s (%s): event %zu: literal %llu/%d want "
				 "%llu/%d",
				 t->label, how, i,
				 (unsigned long long)e[i].literal, e[i].sync,
				 (unsigned long long)w->literal, w->sync);
	}
}

static size_t case_len(const struct tcase *t)
{
	/* The NUL cases: the input runs to the last LF. */
	size_t len = strlen(t->in);

	if (strstr(t->label, "NUL") != NULL) {
		const char *p = t->in + len + 1;

		while (*p != '\0')
			p++;
		len = (size_t)(p - t->in);
	}
	return len;
}

static void test_framer(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const struct tcase *t = &cases[k];
		size_t len = case_len(t), n, n2;
		size_t *cuts = malloc((len + 1) * sizeof(*cuts));
		struct ev whole[MAX_EV], other[MAX_EV];

		cuts[0] = len;
		n = feed(t, cuts, 1, whole);
		check(t, "whole", whole, n);
		for (size_t i = 0; i < len; i++)
			cuts[i] = i + 1;
		n2 = feed(t, cuts, len, other);
		check(t, "bytewise", other, n2);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(other[i].at, whole[i].at);
		for (size_t s = 1; s < len; s++) {
			size_t two[2] = {s, len};

			n2 = feed(t, two, 2, other);
			check(t, "split", other, n2);
			for (size_t i = 0; i < n; i++)
				assert_int_equal(other[i].at, whole[i].at);
		}
		free(cuts);
	}
}

static void test_literal_left_and_drop(void **state)
{
	struct imap_parser p;
	const char *in = "a LOGIN {100}\r\nb NOOP\r\n";
	size_t used;

	(void)state;
	imap_parser_init(&p, false, 0);
	assert_int_equal(imap_parse(&p, (const uint8_t *)in, strlen(in), &used),
			 IMAP_PARSE_LITERAL);
	assert_int_equal(used, 15);
	assert_int_equal(imap_parse_in_literal(&p), 100);
	/* Refused: the client does not send it; the next line is new. */
	imap_parse_drop_literal(&p);
	assert_true(imap_parse_at_start(&p));
	assert_int_equal(imap_parse(&p, (const uint8_t *)in + used,
				    strlen(in) - used, &used),
			 IMAP_PARSE_CMD);
	assert_string_equal(p.tag, "b");
	assert_string_equal(p.name, "NOOP");
}

static void test_tag_truncated(void **state)
{
	struct imap_parser p;
	char in[200];
	size_t used;

	(void)state;
	memset(in, 't', 100);
	snprintf(in + 100, sizeof(in) - 100, " NOOP\r\n");
	imap_parser_init(&p, false, 0);
	assert_int_equal(imap_parse(&p, (const uint8_t *)in, strlen(in), &used),
			 IMAP_PARSE_CMD);
	assert_true(p.tag_truncated);
	assert_int_equal(p.tag_len, IMAP_TAG_MAX);
	assert_string_equal(p.name, "NOOP");
}

struct arg_want {
	enum imap_arg_type type;
	const char *data;
};

static void args_case(const char *cmd, const struct arg_want *w, size_t nw)
{
	uint8_t buf[256];
	struct imap_args a;
	struct imap_arg arg;
	size_t len = strlen(cmd);

	memcpy(buf, cmd, len);
	imap_args_init(&a, buf, len);
	for (size_t i = 0; i < nw; i++) {
		enum imap_arg_type t = imap_args_next(&a, &arg);

		if (t != w[i].type)
			fail_msg("%s: arg %zu type %d want %d", cmd, i, t,
				 w[i].type);
		if (w[i].data != NULL &&
		    (arg.len != strlen(w[i].data) ||
		     memcmp(arg.data, w[i].data, arg.len) != 0))
			fail_msg("%s: arg %zu '%.*s' want '%s'", cmd, i,
				 (int)arg.len, arg.data, w[i].data);
		if (t == IMAP_ARG_ERROR)
			return;
	}
}

static void test_args(void **state)
{
	static const struct arg_want login[] = {
		{IMAP_ARG_QUOTED, "us\"e\\r"},
		{IMAP_ARG_LITERAL, "p w\r\n"},
		{IMAP_ARG_EOL, NULL},
	};
	static const struct arg_want meta[] = {
		{IMAP_ARG_QUOTED, ""},
		{IMAP_ARG_LPAREN, NULL},
		{IMAP_ARG_ATOM, "/shared/comment"},
		{IMAP_ARG_ATOM, "/shared/admin"},
		{IMAP_ARG_RPAREN, NULL},
		{IMAP_ARG_EOL, NULL},
	};
	static const struct arg_want set[] = {
		{IMAP_ARG_ATOM, "INBOX"},
		{IMAP_ARG_LPAREN, NULL},
		{IMAP_ARG_ATOM, "/private/devicetoken"},
		{IMAP_ARG_QUOTED, "1111"},
		{IMAP_ARG_RPAREN, NULL},
		{IMAP_ARG_EOL, NULL},
	};
	static const struct arg_want lit8[] = {
		{IMAP_ARG_LITERAL, "ab"},
		{IMAP_ARG_LITERAL, "c"},
		{IMAP_ARG_EOL, NULL},
	};
	static const struct arg_want unterminated[] = {
		{IMAP_ARG_ERROR, NULL},
	};
	static const struct arg_want short_lit[] = {
		{IMAP_ARG_ERROR, NULL},
	};
	static const struct arg_want atom_quote[] = {
		{IMAP_ARG_ERROR, NULL},
	};
	struct imap_arg arg = {IMAP_ARG_ATOM, (const uint8_t *)"inbox", 5};

	(void)state;
	args_case("a LOGIN \"us\\\"e\\\\r\" {5}\r\np w\r\n\r\n", login, 3);
	args_case("g GETMETADATA \"\" (/shared/comment /shared/admin)\r\n",
		  meta, 6);
	args_case("s SETMETADATA INBOX (/private/devicetoken \"1111\" )\r\n",
		  set, 6);
	args_case("x X ~{2}\r\nab{1+}\r\nc", lit8, 3);
	args_case("x X \"abc\r\n", unterminated, 1);
	args_case("x X {9}\r\nab\r\n", short_lit, 1);
	args_case("x X ab\"c\r\n", atom_quote, 1);
	assert_true(imap_arg_is(&arg, "INBOX"));
	assert_false(imap_arg_is(&arg, "INBOXX"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_framer),
		cmocka_unit_test(test_literal_left_and_drop),
		cmocka_unit_test(test_tag_truncated),
		cmocka_unit_test(test_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
