/* bench/client/bench_imap: the IMAP client of `ringmail bench`, as much
 * of RFC 9051 / RFC 2177 as a chat client's receive loop needs: LOGIN,
 * SELECT INBOX, IDLE until "* N EXISTS", DONE, FETCH of the new
 * messages (BODY.PEEK[], literals read exactly), LOGOUT. */
#include "bench/client/bench_client.h"

/* system */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BENCH_IMAP_MSG_KEEP 8192 /* octets of each fetched message kept */

/* Track "* N EXISTS" on any untagged line. */
static void bench_imap_untagged(struct bench_imap *m, const char *line,
				size_t len)
{
	long n = bench_imap_exists(line, len);

	if (n > m->exists)
		m->exists_t = bench_now_ns();
	if (n >= 0)
		m->exists = n;
}

static void bench_imap_next_tag(struct bench_imap *m, char *tag, size_t cap)
{
	snprintf(tag, cap, "b%u", ++m->tag);
}

/* Read lines up to the tagged status of @tag, skipping literals, and
 * tracking EXISTS. 1 OK, 0 NO/BAD, -1 I/O. */
static int bench_imap_wait_tag(struct bench_imap *m, const char *tag)
{
	char line[1024];

	for (;;) {
		int n = bench_conn_readline(&m->c, line, sizeof(line), 0);
		long lit;
		int st;

		if (n < 0)
			return -1;
		st = bench_imap_tagged(line, (size_t)n, tag);
		if (st >= 0) {
			snprintf(m->last, sizeof(m->last), "%.500s", line);
			return st;
		}
		bench_imap_untagged(m, line, (size_t)n);
		lit = bench_imap_literal(line, (size_t)n);
		if (lit >= 0 &&
		    bench_conn_read_n(&m->c, (size_t)lit, NULL, 0) != lit)
			return -1;
	}
}

int bench_imap_open(struct bench_imap *m, const struct bench_target *t,
		    uint16_t port, bool tls, int64_t *t_greet_ns_r)
{
	int64_t t0 = bench_now_ns();
	char line[512];
	int n;

	m->open = false;
	m->tag = 0;
	m->exists = 0;
	m->exists_t = 0;
	m->idling = false;
	m->last[0] = '\0';
	if (bench_conn_open(&m->c, t, port, tls) != 0)
		return -1;
	n = bench_conn_readline(&m->c, line, sizeof(line), 0);
	if (n < 0)
		goto fail;
	if (strncmp(line, "* OK", 4) != 0 &&
	    strncmp(line, "* PREAUTH", 9) != 0) {
		snprintf(m->c.err, sizeof(m->c.err), "greeting: %.100s", line);
		goto fail;
	}
	if (t_greet_ns_r != NULL)
		*t_greet_ns_r = bench_now_ns() - t0;
	m->open = true;
	return 0;
fail:
	bench_conn_close(&m->c);
	return -1;
}

static int bench_imap_simple(struct bench_imap *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int bench_imap_simple(struct bench_imap *m, const char *fmt, ...)
{
	char tag[16], cmd[600];
	va_list ap;
	int n, r;

	bench_imap_next_tag(m, tag, sizeof(tag));
	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -1;
	if (bench_conn_printf(&m->c, "%s %s\r\n", tag, cmd) != 0)
		return -1;
	r = bench_imap_wait_tag(m, tag);
	if (r < 0)
		m->open = false;
	else if (r == 0)
		snprintf(m->c.err, sizeof(m->c.err), "%.150s", m->last);
	return r;
}

int bench_imap_login(struct bench_imap *m, const char *user, const char *pass)
{
	/* Generated credentials are [a-z0-9.@-]: quoted strings need no
	 * escapes. */
	return bench_imap_simple(m, "LOGIN \"%s\" \"%s\"", user, pass);
}

int bench_imap_select(struct bench_imap *m)
{
	return bench_imap_simple(m, "SELECT INBOX");
}

int bench_imap_idle(struct bench_imap *m)
{
	char line[512];

	bench_imap_next_tag(m, m->idle_tag, sizeof(m->idle_tag));
	if (bench_conn_printf(&m->c, "%s IDLE\r\n", m->idle_tag) != 0)
		return -1;
	for (;;) {
		int n = bench_conn_readline(&m->c, line, sizeof(line), 0);

		if (n < 0)
			return -1;
		if (line[0] == '+') {
			m->idling = true;
			return 1;
		}
		if (bench_imap_tagged(line, (size_t)n, m->idle_tag) >= 0) {
			snprintf(m->c.err, sizeof(m->c.err), "IDLE: %.120s",
				 line);
			return 0;
		}
		bench_imap_untagged(m, line, (size_t)n);
	}
}

long bench_imap_idle_wait(struct bench_imap *m, int64_t deadline_ns)
{
	char line[512];
	long start = m->exists;

	for (;;) {
		int n = bench_conn_readline(&m->c, line, sizeof(line),
					    deadline_ns);

		if (n == BENCH_CONN_TIMEOUT)
			return BENCH_CONN_TIMEOUT;
		if (n < 0)
			return -1;
		bench_imap_untagged(m, line, (size_t)n);
		if (m->exists > start)
			return m->exists;
	}
}

int bench_imap_done(struct bench_imap *m)
{
	int r;

	if (!m->idling)
		return 1;
	m->idling = false;
	if (bench_conn_write(&m->c, "DONE\r\n", 6) != 0)
		return -1;
	r = bench_imap_wait_tag(m, m->idle_tag);
	if (r < 0)
		m->open = false;
	return r;
}

int bench_imap_fetch(struct bench_imap *m, long from, long to,
		     bench_imap_msg_fn *on_msg, void *ctx)
{
	char tag[16], line[1024];
	uint8_t *keep;
	int r = -1;

	keep = malloc(BENCH_IMAP_MSG_KEEP);
	if (keep == NULL)
		return -1;
	bench_imap_next_tag(m, tag, sizeof(tag));
	if (bench_conn_printf(&m->c, "%s FETCH %ld:%ld (BODY.PEEK[])\r\n", tag,
			      from, to) != 0)
		goto out;
	for (;;) {
		int n = bench_conn_readline(&m->c, line, sizeof(line), 0);
		long lit, got;
		int st;

		if (n < 0)
			goto out;
		st = bench_imap_tagged(line, (size_t)n, tag);
		if (st >= 0) {
			r = st;
			if (st == 0)
				snprintf(m->c.err, sizeof(m->c.err),
					 "FETCH: %.120s", line);
			break;
		}
		bench_imap_untagged(m, line, (size_t)n);
		lit = bench_imap_literal(line, (size_t)n);
		if (lit < 0)
			continue;
		got = bench_conn_read_n(&m->c, (size_t)lit, keep,
					BENCH_IMAP_MSG_KEEP);
		if (got != lit)
			goto out;
		if (on_msg != NULL)
			on_msg(ctx, keep,
			       (size_t)lit < BENCH_IMAP_MSG_KEEP
				       ? (size_t)lit
				       : BENCH_IMAP_MSG_KEEP,
			       bench_now_ns());
	}
out:
	free(keep);
	if (r < 0)
		m->open = false;
	return r;
}

void bench_imap_logout(struct bench_imap *m)
{
	if (m->open) {
		if (m->idling)
			(void)bench_imap_done(m);
		if (m->open)
			(void)bench_imap_simple(m, "LOGOUT");
		m->open = false;
	}
	bench_conn_close(&m->c);
}
