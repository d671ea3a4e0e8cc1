/* tests/unit/test_smtp_addr: MAIL/RCPT arguments, paths and ESMTP
 * parameters, table-driven. Each case is parsed from an exact-size copy of
 * the argument (ASan sees any over-read), and as a whole command line run
 * through smtp_parse_cmd whole, one octet at a time and at every split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/smtp_addr.h"
#include "smtp/smtp_parse.h"

enum { F_NULL = 1, F_QUOTED = 2, F_LITERAL = 4, F_UTF8 = 8, F_PM = 16 };

struct acase {
	bool rcpt;
	const char *arg;
	unsigned flags; /* SMTP_ADDR_F_* given to the parser */
	int err;
	const char *addr; /* canonical address (checked when err is OK) */
	unsigned bits;    /* F_*: null, quoted, literal, utf8, postmaster */
	uint64_t size;    /* MAIL: SIZE= (0: none) */
	enum smtp_body body;
	const char *param; /* the parameter an error names */
	uint16_t local_len;
};

#define M(arg, err, addr)                                              \
	{                                                              \
		false, arg, 0, SMTP_ADDR_##err, addr, 0, 0, 0, NULL, 0 \
	}
#define R(arg, err, addr)                                             \
	{                                                             \
		true, arg, 0, SMTP_ADDR_##err, addr, 0, 0, 0, NULL, 0 \
	}

static const struct acase cases[] = {
	M("FROM:<alice@example.org>", OK, "alice@example.org"),
	/* The domain is lower-cased, the local part kept. */
	M("from:<Alice.B@EXAMPLE.Org>", OK, "Alice.B@example.org"),
	{false, "FROM:<>", 0, SMTP_ADDR_OK, "", F_NULL, 0, 0, NULL, 0},
	M("FROM: <a@b.c>", OK, "a@b.c"),
	M("FROM:   <a@b.c>", OK, "a@b.c"),
	M("FROM:a@b.c", OK, "a@b.c"),
	{false, "FROM:a@b.c SIZE=7", 0, SMTP_ADDR_OK, "a@b.c", 0, 7, 0, NULL,
	 1},
	M("FROM:<a@b.c>   ", OK, "a@b.c"),
	M("FROM:<SRS0=HHH=TT=example.org=alice@example.net>", OK,
	  "SRS0=HHH=TT=example.org=alice@example.net"),
	M("FROM:<a!#$%&'*+-/=?^_`{|}~z@b.c>", OK, "a!#$%&'*+-/=?^_`{|}~z@b.c"),
	/* Parameters. */
	{false, "FROM:<a@b.c> SIZE=1000 BODY=8BITMIME", 0, SMTP_ADDR_OK,
	 "a@b.c", 0, 1000, SMTP_BODY_8BITMIME, NULL, 1},
	{false, "FROM:<a@b.c> body=7bit size=0", 0, SMTP_ADDR_OK, "a@b.c", 0, 0,
	 SMTP_BODY_7BIT, NULL, 1},
	{false, "FROM:<a@b.c> SIZE=18446744073709551615", 0, SMTP_ADDR_OK,
	 "a@b.c", 0, UINT64_MAX, 0, NULL, 1},
	{false, "FROM:<a@b.c> SIZE=18446744073709551616", 0, SMTP_ADDR_ERR_SIZE,
	 NULL, 0, 0, 0, "SIZE=18446744073709551616", 0},
	{false, "FROM:<a@b.c> SIZE=000000000000000000001", 0,
	 SMTP_ADDR_ERR_SIZE, NULL, 0, 0, 0, "SIZE=000000000000000000001", 0},
	{false, "FROM:<a@b.c> SIZE=12a", 0, SMTP_ADDR_ERR_SIZE, NULL, 0, 0, 0,
	 "SIZE=12a", 0},
	{false, "FROM:<a@b.c> SIZE", 0, SMTP_ADDR_ERR_SIZE, NULL, 0, 0, 0,
	 "SIZE", 0},
	{false, "FROM:<a@b.c> SIZE=", 0, SMTP_ADDR_ERR_PARAM, NULL, 0, 0, 0,
	 "SIZE=", 0},
	{false, "FROM:<a@b.c> SIZE=1 SIZE=2", 0, SMTP_ADDR_ERR_PARAM_DUP, NULL,
	 0, 0, 0, "SIZE=2", 0},
	{false, "FROM:<a@b.c> BODY=BINARYMIME", 0, SMTP_ADDR_ERR_PARAM_UNKNOWN,
	 NULL, 0, 0, 0, "BODY=BINARYMIME", 0},
	{false, "FROM:<a@b.c> BODY", 0, SMTP_ADDR_ERR_PARAM_UNKNOWN, NULL, 0, 0,
	 0, "BODY", 0},
	{false, "FROM:<a@b.c> AUTH=<>", 0, SMTP_ADDR_OK, "a@b.c", 0, 0, 0, NULL,
	 1},
	{false, "FROM:<a@b.c> AUTH=a+40b.c RET=HDRS ENVID=x1", 0, SMTP_ADDR_OK,
	 "a@b.c", 0, 0, 0, NULL, 1},
	{false, "FROM:<a@b.c> RET=ALL", 0, SMTP_ADDR_ERR_PARAM, NULL, 0, 0, 0,
	 "RET=ALL", 0},
	{false, "FROM:<a@b.c> AUTH", 0, SMTP_ADDR_ERR_PARAM, NULL, 0, 0, 0,
	 "AUTH", 0},
	{false, "FROM:<a@b.c> X-FOO=bar", 0, SMTP_ADDR_ERR_PARAM_UNKNOWN, NULL,
	 0, 0, 0, "X-FOO=bar", 0},
	{false, "FROM:<a@b.c> =x", 0, SMTP_ADDR_ERR_PARAM, NULL, 0, 0, 0, "=x",
	 0},
	{false, "FROM:<a@b.c> SIZE=1=2", 0, SMTP_ADDR_ERR_PARAM, NULL, 0, 0, 0,
	 "SIZE=1=2", 0},
	{false, "FROM:<a@b.c> SIZE:1", 0, SMTP_ADDR_ERR_PARAM, NULL, 0, 0, 0,
	 "SIZE:1", 0},
	/* SMTPUTF8 (not offered by ringmail: see smtp_addr.h). */
	{false, "FROM:<a@b.c> SMTPUTF8", 0, SMTP_ADDR_ERR_PARAM_UNKNOWN, NULL,
	 0, 0, 0, "SMTPUTF8", 0},
	{false, "FROM:<a@b.c> SMTPUTF8", SMTP_ADDR_F_SMTPUTF8, SMTP_ADDR_OK,
	 "a@b.c", 0, 0, 0, NULL, 1},
	{false, "FROM:<a@b.c> SMTPUTF8=yes", SMTP_ADDR_F_SMTPUTF8,
	 SMTP_ADDR_ERR_PARAM, NULL, 0, 0, 0, "SMTPUTF8=yes", 0},
	M("FROM:<j\xc3\xb6rg@example.org>", ERR_UTF8, NULL),
	{false, "FROM:<j\xc3\xb6rg@example.org> SMTPUTF8", SMTP_ADDR_F_SMTPUTF8,
	 SMTP_ADDR_OK, "j\xc3\xb6rg@example.org", F_UTF8, 0, 0, NULL, 5},
	{false, "FROM:<a@b\xc3\xa4.c\xc3\x84> SMTPUTF8", SMTP_ADDR_F_SMTPUTF8,
	 SMTP_ADDR_OK, "a@b\xc3\xa4.c\xc3\x84", F_UTF8, 0, 0, NULL, 1},
	M("FROM:<a\xff@x.org>", ERR_LOCAL, NULL),
	M("FROM:<a\xc0\xaf@x.org>", ERR_LOCAL, NULL),
	M("FROM:<a\xed\xa0\x80@x.org>", ERR_LOCAL, NULL),
	M("FROM:<a\xc3@x.org>", ERR_LOCAL, NULL),
	M("FROM:<a@x\xc3.org>", ERR_DOMAIN, NULL),
	/* Syntax around the path. */
	M("FROM:", ERR_SYNTAX, NULL),
	M("FROM:   ", ERR_SYNTAX, NULL),
	M("", ERR_SYNTAX, NULL),
	M("FRM:<a@b.c>", ERR_SYNTAX, NULL),
	M("FROM <a@b.c>", ERR_SYNTAX, NULL),
	M("TO:<a@b.c>", ERR_SYNTAX, NULL),
	M("FROM:<a@b.c>x", ERR_PATH, NULL),
	M("FROM:<a@b.c", ERR_PATH, NULL),
	M("FROM:<>x", ERR_PATH, NULL),
	M("FROM:a@b.c>", ERR_PATH, NULL),
	M("FROM:<<a@b.c>>", ERR_LOCAL, NULL),
	M("FROM:<postmaster>", ERR_DOMAIN, NULL),
	M("FROM:<alice>", ERR_DOMAIN, NULL),
	M("FROM:<a b@x.org>", ERR_DOMAIN, NULL),
	/* Source routes are checked and dropped. */
	M("FROM:<@relay.example,@r2.example:a@b.c>", OK, "a@b.c"),
	M("FROM:<@[1.2.3.4]:a@b.c>", OK, "a@b.c"),
	M("FROM:<@:a@b.c>", ERR_DOMAIN, NULL),
	M("FROM:<@relay a@b.c>", ERR_PATH, NULL),
	M("FROM:<@relay,a@b.c>", ERR_PATH, NULL),
	M("FROM:<@x.org>", ERR_PATH, NULL),
	/* Quoted local parts: unquoted when possible, else re-quoted. */
	{false, "FROM:<\"john doe\"@example.org>", 0, SMTP_ADDR_OK,
	 "\"john doe\"@example.org", F_QUOTED, 0, 0, NULL, 10},
	M("FROM:<\"john\"@example.org>", OK, "john@example.org"),
	M("FROM:<\"a.b\"@x.org>", OK, "a.b@x.org"),
	M("FROM:<\"a\\b\"@x.org>", OK, "ab@x.org"),
	{false, "FROM:<\"a\\\"b\"@x.org>", 0, SMTP_ADDR_OK, "\"a\\\"b\"@x.org",
	 F_QUOTED, 0, 0, NULL, 6},
	{false, "FROM:<\"a\\\\b\"@x.org>", 0, SMTP_ADDR_OK, "\"a\\\\b\"@x.org",
	 F_QUOTED, 0, 0, NULL, 6},
	{false, "FROM:<\"a..b\"@x.org>", 0, SMTP_ADDR_OK, "\"a..b\"@x.org",
	 F_QUOTED, 0, 0, NULL, 6},
	{false, "FROM:<\"\"@x.org>", 0, SMTP_ADDR_OK, "\"\"@x.org", F_QUOTED, 0,
	 0, NULL, 2},
	{false, "FROM:<\"a@b\"@x.org>", 0, SMTP_ADDR_OK, "\"a@b\"@x.org",
	 F_QUOTED, 0, 0, NULL, 5},
	M("FROM:<\"unterminated@x.org>", ERR_LOCAL, NULL),
	M("FROM:<\"a\tb\"@x.org>", ERR_LOCAL, NULL),
	M("FROM:<\"a\\\x01\"@x.org>", ERR_LOCAL, NULL),
	M("FROM:<\"a\"b@x.org>", ERR_DOMAIN, NULL),
	/* Dots in a dot-string. */
	M("FROM:<a.b.c@x.org>", OK, "a.b.c@x.org"),
	M("FROM:<a..b@x.org>", ERR_LOCAL, NULL),
	M("FROM:<.a@x.org>", ERR_LOCAL, NULL),
	M("FROM:<a.@x.org>", ERR_LOCAL, NULL),
	M("FROM:<@>", ERR_DOMAIN, NULL),
	/* Domains and address literals. */
	{false, "FROM:<a@[1.2.3.4]>", 0, SMTP_ADDR_OK, "a@[1.2.3.4]", F_LITERAL,
	 0, 0, NULL, 1},
	{false, "FROM:<a@[IPv6:2001:DB8:0::1]>", 0, SMTP_ADDR_OK,
	 "a@[IPv6:2001:db8::1]", F_LITERAL, 0, 0, NULL, 1},
	{false, "FROM:<a@[ipv6:::1]>", 0, SMTP_ADDR_OK, "a@[IPv6:::1]",
	 F_LITERAL, 0, 0, NULL, 1},
	{false, "FROM:<a@[0.0.0.0]>", 0, SMTP_ADDR_OK, "a@[0.0.0.0]", F_LITERAL,
	 0, 0, NULL, 1},
	M("FROM:<a@[1.2.3]>", ERR_DOMAIN, NULL),
	M("FROM:<a@[1.2.3.256]>", ERR_DOMAIN, NULL),
	M("FROM:<a@[01.2.3.4]>", ERR_DOMAIN, NULL),
	M("FROM:<a@[1.2.3.4.5]>", ERR_DOMAIN, NULL),
	M("FROM:<a@[1.2.3.4>", ERR_DOMAIN, NULL),
	M("FROM:<a@[tag:foo]>", ERR_DOMAIN, NULL),
	M("FROM:<a@[IPv6:1.2.3.4]>", ERR_DOMAIN, NULL),
	M("FROM:<a@[IPv6:]>", ERR_DOMAIN, NULL),
	M("FROM:<a@[]>", ERR_DOMAIN, NULL),
	M("FROM:<a@[1.2.3.4]x>", ERR_PATH, NULL),
	M("FROM:<a@_chat.example>", OK, "a@_chat.example"),
	M("FROM:<a@xn--bcher-kva.EXAMPLE>", OK, "a@xn--bcher-kva.example"),
	M("FROM:<a@localhost>", OK, "a@localhost"),
	M("FROM:<a@-x.org>", ERR_DOMAIN, NULL),
	M("FROM:<a@x-.org>", ERR_DOMAIN, NULL),
	M("FROM:<a@x.org->", ERR_DOMAIN, NULL),
	M("FROM:<a@x..org>", ERR_DOMAIN, NULL),
	M("FROM:<a@.x.org>", ERR_DOMAIN, NULL),
	M("FROM:<a@x.org.>", ERR_DOMAIN, NULL),
	M("FROM:<a@>", ERR_DOMAIN, NULL),
	M("FROM:<a@x!y.org>", ERR_PATH, NULL),
	/* RCPT. */
	R("TO:<bob@example.org>", OK, "bob@example.org"),
	R("to: <BOB@Example.ORG>", OK, "BOB@example.org"),
	R("TO:<>", ERR_NULL, NULL),
	R("TO:", ERR_SYNTAX, NULL),
	R("FROM:<a@b.c>", ERR_SYNTAX, NULL),
	{true, "TO:<Postmaster>", 0, SMTP_ADDR_OK, "Postmaster", F_PM, 0, 0,
	 NULL, 10},
	R("TO:<postmaster@example.org>", OK, "postmaster@example.org"),
	/* Quoting a local part does not change it (RFC 5321 4.1.2). */
	{true, "TO:<\"postmaster\">", 0, SMTP_ADDR_OK, "postmaster", F_PM, 0, 0,
	 NULL, 10},
	R("TO:<postmasterx>", ERR_DOMAIN, NULL),
	R("TO:<a@b.c> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b.c", OK, "a@b.c"),
	{true, "TO:<a@b.c> ORCPT=rfc822", 0, SMTP_ADDR_ERR_PARAM, NULL, 0, 0, 0,
	 "ORCPT=rfc822", 0},
	{true, "TO:<a@b.c> NOTIFY", 0, SMTP_ADDR_ERR_PARAM, NULL, 0, 0, 0,
	 "NOTIFY", 0},
	{true, "TO:<a@b.c> NOTIFY=NEVER NOTIFY=NEVER", 0,
	 SMTP_ADDR_ERR_PARAM_DUP, NULL, 0, 0, 0, "NOTIFY=NEVER", 0},
	{true, "TO:<a@b.c> SIZE=10", 0, SMTP_ADDR_ERR_PARAM_UNKNOWN, NULL, 0, 0,
	 0, "SIZE=10", 0},
	R("TO:<j\xc3\xb6rg@example.org>", ERR_UTF8, NULL),
	{true, "TO:<j\xc3\xb6rg@example.org>", SMTP_ADDR_F_UTF8, SMTP_ADDR_OK,
	 "j\xc3\xb6rg@example.org", F_UTF8, 0, 0, NULL, 5},
	R("TO:<a@[1.2.3.4]>", OK, "a@[1.2.3.4]"),
};

static void check_mail(const char *what, const struct acase *c, int r,
		       const struct smtp_mail_args *m)
{
	if (r != c->err)
		fail_msg("%s: error %d want %d", what, r, c->err);
	if (r != SMTP_ADDR_OK) {
		if (c->param != NULL &&
		    (m->param_len != strlen(c->param) ||
		     memcmp(m->param, c->param, m->param_len) != 0))
			fail_msg("%s: param '%.*s' want '%s'", what,
				 (int)m->param_len, m->param, c->param);
		return;
	}
	assert_string_equal(m->from.addr, c->addr);
	assert_int_equal(m->from.len, strlen(c->addr));
	assert_int_equal(m->from.null, (c->bits & F_NULL) != 0);
	assert_int_equal(m->from.quoted, (c->bits & F_QUOTED) != 0);
	assert_int_equal(m->from.literal, (c->bits & F_LITERAL) != 0);
	assert_int_equal(m->from.utf8, (c->bits & F_UTF8) != 0);
	assert_false(m->from.postmaster);
	assert_true(m->size == c->size);
	assert_int_equal(m->has_size, strstr(c->arg, "SIZE=") != NULL ||
					      strstr(c->arg, "size=") != NULL);
	assert_int_equal(m->body, c->body);
	if (c->local_len != 0)
		assert_int_equal(m->from.local_len, c->local_len);
	else if (!m->from.null)
		assert_int_equal(m->from.local_len,
				 strchr(c->addr, '@') - c->addr);
}

static void check_rcpt(const char *what, const struct acase *c, int r,
		       const struct smtp_rcpt_args *t)
{
	if (r != c->err)
		fail_msg("%s: error %d want %d", what, r, c->err);
	if (r != SMTP_ADDR_OK) {
		if (c->param != NULL &&
		    (t->param_len != strlen(c->param) ||
		     memcmp(t->param, c->param, t->param_len) != 0))
			fail_msg("%s: param '%.*s' want '%s'", what,
				 (int)t->param_len, t->param, c->param);
		return;
	}
	assert_string_equal(t->to.addr, c->addr);
	assert_int_equal(t->to.postmaster, (c->bits & F_PM) != 0);
	assert_int_equal(t->to.utf8, (c->bits & F_UTF8) != 0);
	assert_int_equal(t->dsn, strstr(c->arg, "NOTIFY=") != NULL);
	if (c->local_len != 0)
		assert_int_equal(t->to.local_len, c->local_len);
}

static void parse_and_check(const char *what, const struct acase *c,
			    const char *arg, size_t len)
{
	struct smtp_mail_args m;
	struct smtp_rcpt_args t;

	if (c->rcpt)
		check_rcpt(what, c,
			   smtp_addr_parse_rcpt(arg, len, c->flags, &t), &t);
	else
		check_mail(what, c,
			   smtp_addr_parse_mail(arg, len, c->flags, &m), &m);
}

/* The case as a command line through the line parser, in chunks. */
static void via_line(const char *what, const struct acase *c,
		     const uint8_t *line, size_t len, const size_t *cuts,
		     size_t ncuts)
{
	struct smtp_parser p;
	size_t a = 0, used, got = 0;
	bool ctl = false;
	int r;

	for (size_t i = 0; i < len; i++)
		ctl = ctl || (line[i] < 0x20 && line[i] != '\t' && i + 2 < len);
	smtp_parser_init(&p);
	for (size_t k = 0; k < ncuts; k++) {
		while (a < cuts[k]) {
			r = smtp_parse_cmd(&p, line + a, cuts[k] - a, &used);
			a += used;
			if (r == SMTP_PARSE_AGAIN)
				continue;
			if (ctl) {
				/* Control octets stop at the line parser. */
				assert_int_equal(r, SMTP_PARSE_INVALID);
				assert_int_equal(p.error, SMTP_PERR_BAD_CHAR);
				got++;
				continue;
			}
			assert_int_equal(r, SMTP_PARSE_OK);
			assert_int_equal(p.cmd.verb, c->rcpt ? SMTP_VERB_RCPT
							     : SMTP_VERB_MAIL);
			parse_and_check(what, c, p.cmd.arg, p.cmd.arg_len);
			got++;
		}
	}
	assert_int_equal(got, 1);
}

static void test_table(void **state)
{
	char what[200];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct acase *c = &cases[i];
		size_t alen = strlen(c->arg), llen = alen + 7;
		char *exact = malloc(alen + 1);
		uint8_t *line = malloc(llen);
		size_t *cuts = malloc(llen * sizeof(*cuts));

		assert_non_null(exact);
		assert_non_null(line);
		assert_non_null(cuts);
		/* Exact size, not terminated: over-reads trip ASan. */
		memcpy(exact, c->arg, alen);
		snprintf(what, sizeof(what), "case %zu '%s'", i, c->arg);
		parse_and_check(what, c, exact, alen);
		/* Every prefix must parse without reading past it. */
		for (size_t k = 0; k < alen; k++) {
			struct smtp_mail_args m;
			struct smtp_rcpt_args t;
			char *pre = malloc(k + 1);

			assert_non_null(pre);
			memcpy(pre, c->arg, k);
			if (c->rcpt)
				(void)smtp_addr_parse_rcpt(pre, k, c->flags,
							   &t);
			else
				(void)smtp_addr_parse_mail(pre, k, c->flags,
							   &m);
			free(pre);
		}
		memcpy(line, c->rcpt ? "RCPT " : "MAIL ", 5);
		memcpy(line + 5, c->arg, alen);
		memcpy(line + 5 + alen, "\r\n", 2);
		cuts[0] = llen;
		via_line(what, c, line, llen, cuts, 1);
		for (size_t k = 0; k < llen; k++)
			cuts[k] = k + 1;
		via_line(what, c, line, llen, cuts, llen);
		for (size_t k = 1; k < llen; k++) {
			size_t two[2] = {k, llen};

			via_line(what, c, line, llen, two, 2);
		}
		free(cuts);
		free(line);
		free(exact);
	}
}

/* Length limits: labels 63, domain 255, address 254, path 256. */
static void test_limits(void **state)
{
	char arg[700], want[300];
	struct smtp_mail_args m;
	size_t n;

	(void)state;
	/* A 63-octet label passes, 64 does not. */
	n = (size_t)snprintf(arg, sizeof(arg), "FROM:<a@%063d.org>", 0);
	assert_int_equal(smtp_addr_parse_mail(arg, n, 0, &m), SMTP_ADDR_OK);
	n = (size_t)snprintf(arg, sizeof(arg), "FROM:<a@%064d.org>", 0);
	assert_int_equal(smtp_addr_parse_mail(arg, n, 0, &m),
			 SMTP_ADDR_ERR_TOO_LONG);
	/* A 253-octet domain is fine as a domain, but the address gets 255
	 * octets; a 257-octet domain (in a route) is too long itself. */
	n = (size_t)snprintf(arg, sizeof(arg),
			     "FROM:<a@%063d.%063d.%063d.%061d>", 0, 0, 0, 0);
	assert_int_equal(smtp_addr_parse_mail(arg, n, 0, &m),
			 SMTP_ADDR_ERR_TOO_LONG);
	n = (size_t)snprintf(arg, sizeof(arg),
			     "FROM:<@%063d.%063d.%063d.%063d.a:a@b.c>", 0, 0, 0,
			     0);
	assert_int_equal(smtp_addr_parse_mail(arg, n, 0, &m),
			 SMTP_ADDR_ERR_TOO_LONG);
	/* Address of exactly 254 octets (path 256 with brackets) passes. */
	memset(want, 'x', 248);
	memcpy(want + 248, "@b.org", 7);
	n = (size_t)snprintf(arg, sizeof(arg), "FROM:<%s>", want);
	assert_int_equal(smtp_addr_parse_mail(arg, n, 0, &m), SMTP_ADDR_OK);
	assert_string_equal(m.from.addr, want);
	assert_int_equal(m.from.len, 254);
	assert_int_equal(m.from.local_len, 248);
	/* Without brackets the same limit holds. */
	assert_int_equal(smtp_addr_parse_mail(arg, n, 0, &m), SMTP_ADDR_OK);
	n = (size_t)snprintf(arg, sizeof(arg), "FROM:%s", want);
	assert_int_equal(smtp_addr_parse_mail(arg, n, 0, &m), SMTP_ADDR_OK);
	/* 255 octets: too long. */
	memset(want, 'x', 249);
	memcpy(want + 249, "@b.org", 7);
	n = (size_t)snprintf(arg, sizeof(arg), "FROM:<%s>", want);
	assert_int_equal(smtp_addr_parse_mail(arg, n, 0, &m),
			 SMTP_ADDR_ERR_TOO_LONG);
	n = (size_t)snprintf(arg, sizeof(arg), "FROM:%s", want);
	assert_int_equal(smtp_addr_parse_mail(arg, n, 0, &m),
			 SMTP_ADDR_ERR_TOO_LONG);
	/* A source route counts toward the 256 of the path. */
	memset(want, 'x', 244);
	memcpy(want + 244, "@b.org", 7);
	n = (size_t)snprintf(arg, sizeof(arg), "FROM:<@r.org:%s>", want);
	assert_int_equal(smtp_addr_parse_mail(arg, n, 0, &m),
			 SMTP_ADDR_ERR_TOO_LONG);
	memcpy(want + 241, "@b.org", 7); /* path of exactly 256 */
	n = (size_t)snprintf(arg, sizeof(arg), "FROM:<@r.org:%s>", want);
	assert_int_equal(smtp_addr_parse_mail(arg, n, 0, &m), SMTP_ADDR_OK);
	memset(want, 'x', 242);
	memcpy(want + 242, "@b.org", 7); /* 257 */
	n = (size_t)snprintf(arg, sizeof(arg), "FROM:<@r.org:%s>", want);
	assert_int_equal(smtp_addr_parse_mail(arg, n, 0, &m),
			 SMTP_ADDR_ERR_TOO_LONG);
	/* A huge local part stops at the buffer, no overflow. */
	memset(arg, 'y', sizeof(arg));
	memcpy(arg, "FROM:<", 6);
	assert_int_equal(smtp_addr_parse_mail(arg, sizeof(arg), 0, &m),
			 SMTP_ADDR_ERR_TOO_LONG);
	arg[6] = '"';
	assert_int_equal(smtp_addr_parse_mail(arg, sizeof(arg), 0, &m),
			 SMTP_ADDR_ERR_TOO_LONG);
	/* Re-quoting that needs escapes stays inside the address. */
	n = (size_t)snprintf(arg, sizeof(arg), "FROM:<\"");
	for (int i = 0; i < 120; i++)
		n += (size_t)snprintf(arg + n, sizeof(arg) - n, "\\\"");
	n += (size_t)snprintf(arg + n, sizeof(arg) - n, "\"@b.org>");
	assert_int_equal(smtp_addr_parse_mail(arg, n, 0, &m), SMTP_ADDR_OK);
	assert_int_equal(m.from.len, 2 + 240 + 6);
}

static void test_path_direct(void **state)
{
	struct smtp_path p;
	size_t used;

	(void)state;
	assert_int_equal(smtp_addr_parse_path("<a@b.c> SIZE=1", 14, &p, &used),
			 SMTP_ADDR_OK);
	assert_int_equal(used, 7);
	assert_string_equal(p.addr, "a@b.c");
	assert_int_equal(smtp_addr_parse_path("<>", 2, &p, &used),
			 SMTP_ADDR_OK);
	assert_true(p.null);
	assert_int_equal(used, 2);
	assert_int_equal(smtp_addr_parse_path("", 0, &p, &used),
			 SMTP_ADDR_ERR_SYNTAX);
	assert_int_equal(smtp_addr_parse_path("<", 1, &p, &used),
			 SMTP_ADDR_ERR_LOCAL);
	assert_int_equal(smtp_addr_parse_path("x@Y.Z", 5, &p, &used),
			 SMTP_ADDR_OK);
	assert_string_equal(p.addr, "x@y.z");
	assert_int_equal(used, 5);
}

static void test_helo(void **state)
{
	static const struct {
		const char *s;
		enum smtp_helo_kind k;
	} t[] = {
		{"mail.example.org", SMTP_HELO_FQDN},
		{"MAIL.Example.ORG", SMTP_HELO_FQDN},
		{"_relay.example", SMTP_HELO_FQDN},
		{"localhost", SMTP_HELO_NON_FQDN},
		{"[127.0.0.1]", SMTP_HELO_LITERAL},
		{"[IPv6:::1]", SMTP_HELO_LITERAL},
		{"192.168.1.2", SMTP_HELO_BARE_IP},
		{"", SMTP_HELO_INVALID},
		{"mail.example.123", SMTP_HELO_INVALID},
		{"1.2.3", SMTP_HELO_INVALID},
		{"[1.2.3.4", SMTP_HELO_INVALID},
		{"[1.2.3.4]x", SMTP_HELO_INVALID},
		{"a..b", SMTP_HELO_INVALID},
		{"host.example.org.", SMTP_HELO_INVALID},
		{"-host.org", SMTP_HELO_INVALID},
		{"host name", SMTP_HELO_INVALID},
		{"h\xc3\xa4st.org", SMTP_HELO_INVALID},
		{"host/x", SMTP_HELO_INVALID},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t n = strlen(t[i].s);
		char *exact = malloc(n + 1);

		assert_non_null(exact);
		memcpy(exact, t[i].s, n);
		if (smtp_addr_check_helo(exact, n) != t[i].k)
			fail_msg("helo '%s': %d want %d", t[i].s,
				 smtp_addr_check_helo(exact, n), t[i].k);
		free(exact);
	}
}

static void test_replies(void **state)
{
	const struct smtp_reply_def *r;

	(void)state;
	assert_null(smtp_addr_error_reply(SMTP_ADDR_OK, false));
	assert_null(smtp_addr_error_reply((enum smtp_addr_error)99, true));
	r = smtp_addr_error_reply(SMTP_ADDR_ERR_SYNTAX, false);
	assert_int_equal(r->code, 501);
	assert_string_equal(r->text, "Syntax: MAIL FROM:<address>");
	r = smtp_addr_error_reply(SMTP_ADDR_ERR_SYNTAX, true);
	assert_string_equal(r->text, "Syntax: RCPT TO:<address>");
	r = smtp_addr_error_reply(SMTP_ADDR_ERR_DOMAIN, false);
	assert_string_equal(r->esc, "5.1.7");
	assert_string_equal(r->text, "Bad sender address syntax");
	r = smtp_addr_error_reply(SMTP_ADDR_ERR_NULL, true);
	assert_string_equal(r->esc, "5.1.3");
	assert_string_equal(r->text, "Bad recipient address syntax");
	r = smtp_addr_error_reply(SMTP_ADDR_ERR_PARAM_UNKNOWN, false);
	assert_int_equal(r->code, 555);
	assert_string_equal(r->text, "Unsupported option: %.*s");
	r = smtp_addr_error_reply(SMTP_ADDR_ERR_UTF8, true);
	assert_int_equal(r->code, 553);
	assert_string_equal(r->esc, "5.6.7");
	r = smtp_addr_error_reply(SMTP_ADDR_ERR_SIZE, false);
	assert_string_equal(r->text, "Bad message size syntax");
	for (int e = SMTP_ADDR_ERR_SYNTAX; e <= SMTP_ADDR_ERR_SIZE; e++) {
		assert_non_null(smtp_addr_error_reply(e, false)->text);
		assert_non_null(smtp_addr_error_reply(e, true)->text);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_path_direct),
		cmocka_unit_test(test_helo),
		cmocka_unit_test(test_replies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
