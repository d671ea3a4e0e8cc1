/* tests/unit/test_bench_proto: the reply-line parsers of `ringmail bench`
 * (bench/client/bench_proto.c), table-driven, and its line reader
 * (bench_conn_readline, bench_conn_read_n) over a real socketpair, fed
 * whole, one octet at a time and split at every point. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "bench/client/bench_client.h"

struct smtp_case {
	const char *line;
	int code;
	bool last;
};

static const struct smtp_case smtp_cases[] = {
	{"250 2.0.0 Ok", 250, true},
	{"250-PIPELINING", 250, false},
	{"250", 250, true},
	{"220 relay ESMTP", 220, true},
	{"354 End data with <CR><LF>.<CR><LF>", 354, true},
	{"450 4.7.1: Too much mail from <a@b>, rate-limited, retry in 12 ms",
	 450, true},
	{"550-5.1.1 more", 550, false},
	{"25", -1, true},
	{"2500 x", -1, true},
	{"25a ok", -1, true},
	{"650 no such class", -1, true},
	{"150 no", -1, true},
	{"", -1, true},
	{"* OK imap", -1, true},
	{"250\tx", -1, true},
};

static void test_smtp_reply_line(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(smtp_cases) / sizeof(smtp_cases[0]);
	     i++) {
		const struct smtp_case *c = &smtp_cases[i];
		bool last = false;
		int code =
			bench_smtp_reply_line(c->line, strlen(c->line), &last);

		if (code != c->code)
			fail_msg("%s: code %d, want %d", c->line, code,
				 c->code);
		if (code >= 0 && last != c->last)
			fail_msg("%s: last %d", c->line, last);
	}
}

static void test_smtp_rate_limit(void **state)
{
	static const struct {
		const char *text;
		long ms;
	} retry[] = {
		{"450 4.7.1: Too much mail from <a@b>, rate-limited, retry in "
		 "1234 ms",
		 1234},
		{"retry in 0 ms", 0},
		{"retry in ms", -1},
		{"retry in 12", -1},
		{"retry in 12ms", -1},
		{"retry in 1234567890 ms", -1}, /* too many digits */
		{"retry in 999999999 ms", 999999999},
		{"450 4.7.1: Too much mail from <a@b>", -1},
		{"", -1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(retry) / sizeof(retry[0]); i++)
		assert_int_equal(bench_smtp_retry_ms(retry[i].text),
				 retry[i].ms);
	assert_true(bench_smtp_is_rate_limit(
		450, "4.7.1: Too much mail from <x@y>, rate-limited"));
	/* filtermail's text (chatmail/relay) has no retry hint */
	assert_true(bench_smtp_is_rate_limit(
		450, "450 4.7.1: Too much mail from <x@y>"));
	assert_false(bench_smtp_is_rate_limit(451, "Too much mail from"));
	assert_false(bench_smtp_is_rate_limit(450, "4.2.0 greylisted"));
}

static void test_imap_lines(void **state)
{
	static const struct {
		const char *line;
		long exists, literal;
	} cases[] = {
		{"* 3 EXISTS", 3, -1},
		{"* 0 exists", 0, -1},
		{"* 12345678 EXISTS", 12345678, -1},
		{"* 3 RECENT", -1, -1},
		{"* 3 EXISTS ", -1, -1},
		{"*  3 EXISTS", -1, -1},
		{"* x EXISTS", -1, -1},
		{"* 1234567890123456 EXISTS", -1, -1}, /* over 15 digits */
		{"b3 OK done", -1, -1},
		{"* 1 FETCH (BODY[] {1203}", -1, 1203},
		{"* 1 FETCH (BODY[] {0}", -1, 0},
		{"* 1 FETCH (BODY[] {12+}", -1, 12},
		{"* 1 FETCH (BODY[] {}", -1, -1},
		{"* 1 FETCH (BODY[] {1a}", -1, -1},
		{"{5}", -1, 5},
		{"5}", -1, -1},
		{"}", -1, -1},
		{"", -1, -1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = strlen(cases[i].line);

		if (bench_imap_exists(cases[i].line, n) != cases[i].exists)
			fail_msg("exists %s", cases[i].line);
		if (bench_imap_literal(cases[i].line, n) != cases[i].literal)
			fail_msg("literal %s", cases[i].line);
	}
	assert_int_equal(bench_imap_tagged("b1 OK LOGIN done", 16, "b1"), 1);
	assert_int_equal(bench_imap_tagged("b1 OK", 5, "b1"), 1);
	assert_int_equal(bench_imap_tagged("b1 NO [AUTH] x", 14, "b1"), 0);
	assert_int_equal(bench_imap_tagged("b1 BAD x", 8, "b1"), 0);
	assert_int_equal(bench_imap_tagged("b12 OK", 6, "b1"), -1);
	assert_int_equal(bench_imap_tagged("b1 OKAY", 7, "b1"), -1);
	assert_int_equal(bench_imap_tagged("* OK", 4, "b1"), -1);
	assert_int_equal(bench_imap_tagged("b1", 2, "b1"), -1);
	assert_int_equal(bench_imap_tagged("b1 OK", 5, ""), -1);
}

static void test_msgid_find(void **state)
{
	static const char msg[] =
		"Return-Path: <x@y>\r\n"
		"In-Reply-To: <rmb-other-1-2@d>\r\n"
		"Message-ID: <rmb-abc-0-17@ringmail.localhost>\r\n\r\nbody";
	char out[64];

	(void)state;
	assert_int_equal(bench_msgid_find((const uint8_t *)msg, strlen(msg),
					  "rmb-abc-", out, sizeof(out)),
			 strlen("rmb-abc-0-17@ringmail.localhost"));
	assert_string_equal(out, "rmb-abc-0-17@ringmail.localhost");
	/* only the first @len octets */
	assert_int_equal(bench_msgid_find((const uint8_t *)msg, 70, "rmb-abc-",
					  out, sizeof(out)),
			 -1);
	/* does not fit: no match rather than a cut id */
	assert_int_equal(bench_msgid_find((const uint8_t *)msg, strlen(msg),
					  "rmb-abc-", out, 10),
			 -1);
	/* no ">" before the line end */
	assert_int_equal(bench_msgid_find((const uint8_t *)"<rmb-abc-1\r\n>",
					  13, "rmb-abc-", out, sizeof(out)),
			 -1);
	/* a NUL or space inside is no id (found by fuzz_bench_proto) */
	assert_int_equal(bench_msgid_find((const uint8_t *)"<rmb-abc-\0x>", 12,
					  "rmb-abc-", out, sizeof(out)),
			 -1);
	assert_int_equal(bench_msgid_find((const uint8_t *)"<rmb-abc- x>", 12,
					  "rmb-abc-", out, sizeof(out)),
			 -1);
	assert_int_equal(bench_msgid_find((const uint8_t *)"<rmb-abc-", 9,
					  "rmb-abc-", out, sizeof(out)),
			 -1);
}

/* ---- the line reader over a socketpair ---- */

static const char stream[] = "220 relay ESMTP\r\n"
			     "250-relay\r\n"
			     "250-PIPELINING\r\n"
			     "250 AUTH PLAIN\n" /* bare LF ends a line too */
			     "\r\n"             /* empty line */
			     "* 1 FETCH (BODY[] {8}\r\n"
			     "ab\r\ncd\r\n)\r\n"
			     "b3 OK done\r\n";
static const char *const want_lines[] = {
	"220 relay ESMTP", "250-relay", "250-PIPELINING", "250 AUTH PLAIN", "",
	"* 1 FETCH (BODY[] {8}",
	/* literal "ab\r\ncd\r\n" read with read_n, then: */
	")", "b3 OK done"};

static void reader_run(size_t chunk)
{
	struct bench_target t;
	struct bench_conn *c = calloc(1, sizeof(*c));
	int sv[2];
	size_t len = sizeof(stream) - 1;
	char line[64];
	uint8_t lit[16];
	pid_t pid;

	assert_non_null(c);
	memset(&t, 0, sizeof(t));
	t.io_timeout_ms = 5000;
	assert_int_equal(
		socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		for (size_t off = 0; off < len; off += chunk) {
			size_t n = len - off < chunk ? len - off : chunk;

			if (write(sv[1], stream + off, n) != (ssize_t)n)
				_exit(1);
			if (chunk < len)
				usleep(200);
		}
		_exit(0);
	}
	close(sv[1]);
	c->fd = sv[0];
	c->t = &t;
	for (size_t i = 0; i < sizeof(want_lines) / sizeof(want_lines[0]);
	     i++) {
		int n = bench_conn_readline(c, line, sizeof(line), 0);

		assert_true(n >= 0);
		assert_int_equal((size_t)n, strlen(want_lines[i]));
		assert_string_equal(line, want_lines[i]);
		if (i == 5) {
			long l = bench_imap_literal(line, (size_t)n);

			assert_int_equal(l, 8);
			assert_int_equal(bench_conn_read_n(c, 8, lit, 5), 8);
			assert_memory_equal(lit, "ab\r\ncd", 5);
		}
	}
	/* EOF */
	assert_int_equal(bench_conn_readline(c, line, sizeof(line), 0), -1);
	close(sv[0]);
	free(c);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
}

static void test_reader_whole(void **state)
{
	(void)state;
	reader_run(sizeof(stream));
}

static void test_reader_bytewise(void **state)
{
	(void)state;
	reader_run(1);
}

static void test_reader_chunks(void **state)
{
	(void)state;
	for (size_t chunk = 2; chunk < 24; chunk++)
		reader_run(chunk);
}

/* A deadline passing in the middle of a line keeps what came so far. */
static void test_reader_timeout_keeps_partial(void **state)
{
	struct bench_target t;
	struct bench_conn *c = calloc(1, sizeof(*c));
	int sv[2];
	char line[64];

	(void)state;
	assert_non_null(c);
	memset(&t, 0, sizeof(t));
	t.io_timeout_ms = 5000;
	assert_int_equal(
		socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	c->fd = sv[0];
	c->t = &t;
	assert_int_equal(write(sv[1], "* 4 EXI", 7), 7);
	assert_int_equal(bench_conn_readline(c, line, sizeof(line),
					     bench_now_ns() + 20000000),
			 BENCH_CONN_TIMEOUT);
	assert_int_equal(write(sv[1], "STS\r\n", 5), 5);
	assert_int_equal(bench_conn_readline(c, line, sizeof(line), 0), 10);
	assert_int_equal(bench_imap_exists(line, 10), 4);
	/* an over-long line is cut, the next one is whole */
	{
		static char big[BENCH_CONN_BUF + 100];

		memset(big, 'x', sizeof(big));
		big[sizeof(big) - 2] = '\r';
		big[sizeof(big) - 1] = '\n';
		assert_int_equal(write(sv[1], big, sizeof(big)),
				 (ssize_t)sizeof(big));
		assert_int_equal(write(sv[1], "250 ok\r\n", 8), 8);
		assert_int_equal(bench_conn_readline(c, line, sizeof(line), 0),
				 (int)sizeof(line) - 1);
		assert_int_equal(bench_conn_readline(c, line, sizeof(line), 0),
				 6);
		assert_string_equal(line, "250 ok");
	}
	close(sv[0]);
	close(sv[1]);
	free(c);
}

static void test_samples(void **state)
{
	struct bench_samples s = {0};

	(void)state;
	assert_int_equal(bench_samples_q(&s, 0.5), 0);
	for (int i = 100; i >= 1; i--)
		bench_samples_add(&s, i);
	bench_samples_sort(&s);
	assert_int_equal(bench_samples_q(&s, 0.5), 50);
	assert_int_equal(bench_samples_q(&s, 0.9), 90);
	assert_int_equal(bench_samples_q(&s, 0.99), 99);
	assert_int_equal(bench_samples_q(&s, 1.0), 100);
	assert_int_equal(bench_samples_q(&s, 0.0), 1);
	bench_samples_free(&s);
	bench_samples_add(&s, -5);
	assert_int_equal(bench_samples_q(&s, 0.99), -5);
	bench_samples_free(&s);
}

static void test_account(void **state)
{
	struct bench_account a, b;

	(void)state;
	bench_account_make(&a, "example.org", 9);
	bench_account_make(&b, "example.org", 9);
	assert_int_equal(strlen(a.addr), 9 + 1 + 11);
	assert_string_equal(a.addr + 9, "@example.org");
	for (int i = 0; i < 9; i++)
		assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz0123456789",
				       a.addr[i]));
	assert_int_equal(strlen(a.pass), BENCH_PASS_LEN);
	assert_string_not_equal(a.addr, b.addr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_smtp_reply_line),
		cmocka_unit_test(test_smtp_rate_limit),
		cmocka_unit_test(test_imap_lines),
		cmocka_unit_test(test_msgid_find),
		cmocka_unit_test(test_reader_whole),
		cmocka_unit_test(test_reader_bytewise),
		cmocka_unit_test(test_reader_chunks),
		cmocka_unit_test(test_reader_timeout_keeps_partial),
		cmocka_unit_test(test_samples),
		cmocka_unit_test(test_account),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
