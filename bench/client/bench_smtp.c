/* bench/client/bench_smtp: the SMTP submission client of `ringmail
 * bench`: 465 (TLS from the first byte) or 587 + STARTTLS, EHLO, AUTH
 * PLAIN, one transaction at a time (no pipelining, so the time of each
 * step is its own). */
#include "bench/client/bench_client.h"

/* system */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* third party */
#include <openssl/evp.h>

/* Read one (multi-line) reply. The code, or -1 (I/O or garbage). */
static int bench_smtp_reply(struct bench_smtp *s)
{
	char line[512];

	for (int lines = 0; lines < 100; lines++) {
		int n = bench_conn_readline(&s->c, line, sizeof(line), 0);
		bool last;
		int code;

		if (n < 0)
			return -1;
		code = bench_smtp_reply_line(line, (size_t)n, &last);
		if (code < 0) {
			snprintf(s->c.err, sizeof(s->c.err),
				 "not an SMTP reply: %.60s", line);
			return -1;
		}
		if (last) {
			snprintf(s->last, sizeof(s->last), "%.500s", line);
			return code;
		}
	}
	snprintf(s->c.err, sizeof(s->c.err), "reply too long");
	return -1;
}

static int bench_smtp_cmd(struct bench_smtp *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int bench_smtp_cmd(struct bench_smtp *s, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf) ||
	    bench_conn_write(&s->c, buf, (size_t)n) != 0)
		return -1;
	return bench_smtp_reply(s);
}

static int bench_smtp_expect(struct bench_smtp *s, int got, int want,
			     const char *what)
{
	if (got == want)
		return 0;
	if (got >= 0)
		snprintf(s->c.err, sizeof(s->c.err), "%s: %.120s", what,
			 s->last);
	return -1;
}

int bench_smtp_open(struct bench_smtp *s, const struct bench_target *t,
		    uint16_t port, bool starttls, int64_t *t_greet_ns_r)
{
	int64_t t0 = bench_now_ns();

	s->open = false;
	s->port = port;
	s->starttls = starttls;
	s->last[0] = '\0';
	if (bench_conn_open(&s->c, t, port, !starttls) != 0)
		return -1;
	if (bench_smtp_expect(s, bench_smtp_reply(s), 220, "greeting") != 0)
		goto fail;
	if (t_greet_ns_r != NULL && !starttls)
		*t_greet_ns_r = bench_now_ns() - t0;
	if (bench_smtp_expect(
		    s,
		    bench_smtp_cmd(s, "EHLO %s\r\n", "bench.ringmail.invalid"),
		    250, "EHLO") != 0)
		goto fail;
	if (starttls) {
		if (bench_smtp_expect(s,
				      bench_smtp_cmd(s, "%s", "STARTTLS\r\n"),
				      220, "STARTTLS") != 0 ||
		    bench_conn_starttls(&s->c) != 0)
			goto fail;
		if (t_greet_ns_r != NULL)
			*t_greet_ns_r = bench_now_ns() - t0;
		if (bench_smtp_expect(s,
				      bench_smtp_cmd(s, "EHLO %s\r\n",
						     "bench.ringmail.invalid"),
				      250, "EHLO") != 0)
			goto fail;
	}
	s->open = true;
	return 0;
fail:
	bench_conn_close(&s->c);
	return -1;
}

int bench_smtp_auth(struct bench_smtp *s, const char *user, const char *pass)
{
	unsigned char plain[2 * BENCH_ADDR_MAX + 8];
	char b64[sizeof(plain) * 2];
	size_t ul = strlen(user), pl = strlen(pass);
	int code;

	if (ul >= BENCH_ADDR_MAX || pl >= BENCH_ADDR_MAX)
		return -1;
	plain[0] = '\0';
	memcpy(plain + 1, user, ul);
	plain[1 + ul] = '\0';
	memcpy(plain + 2 + ul, pass, pl);
	EVP_EncodeBlock((unsigned char *)b64, plain, (int)(2 + ul + pl));
	code = bench_smtp_cmd(s, "AUTH PLAIN %s\r\n", b64);
	if (code < 0)
		s->open = false;
	return code;
}

void bench_smtp_quit(struct bench_smtp *s)
{
	if (s->open) {
		(void)bench_smtp_cmd(s, "%s", "QUIT\r\n");
		s->open = false;
	}
	bench_conn_close(&s->c);
}

/* After a refusal inside a transaction. */
static int bench_smtp_rset(struct bench_smtp *s)
{
	return bench_smtp_cmd(s, "%s", "RSET\r\n") == 250 ? 0 : -1;
}

int bench_smtp_send(struct bench_smtp *s, const char *from, const char *rcpt,
		    const uint8_t *msg, size_t len,
		    struct bench_send_result *res)
{
	int code;

	memset(res, 0, sizeof(*res));
	res->retry_ms = -1;
	res->stage = 'M';
	code = bench_smtp_cmd(s, "MAIL FROM:<%s>\r\n", from);
	if (code < 0)
		goto io;
	if (code != 250)
		goto refused;
	res->stage = 'R';
	code = bench_smtp_cmd(s, "RCPT TO:<%s>\r\n", rcpt);
	if (code < 0)
		goto io;
	if (code != 250)
		goto refused;
	res->stage = 'D';
	res->t_data = bench_now_ns();
	code = bench_smtp_cmd(s, "%s", "DATA\r\n");
	if (code < 0)
		goto io;
	if (code != 354)
		goto refused;
	res->stage = '.';
	if (bench_conn_write(&s->c, msg, len) != 0 ||
	    bench_conn_write(&s->c, ".\r\n", 3) != 0)
		goto io;
	code = bench_smtp_reply(s);
	res->t_done = bench_now_ns();
	res->code = code;
	if (code < 0)
		goto io;
	if (code == 250)
		return 0;
	return 1; /* the transaction is over after the final reply */
refused:
	res->code = code;
	res->t_done = bench_now_ns();
	res->rate_limit = bench_smtp_is_rate_limit(code, s->last);
	if (res->rate_limit)
		res->retry_ms = bench_smtp_retry_ms(s->last);
	if (bench_smtp_rset(s) != 0)
		goto io_closed;
	return 1;
io:
	res->code = -1;
io_closed:
	s->open = false;
	bench_conn_close(&s->c);
	return -1;
}
