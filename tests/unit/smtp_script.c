/* tests/unit/smtp_script: the fake transport and the transcript runner.
 *
 * Transcript lines (one per line, '#' comments):
 *   mode mx|submission     tls on|off     local on|off   (before start)
 *   auth ok [LOGIN] | auth fail | auth tempfail REASON
 *   deliver CODE ESC TEXT...     ratelimit on|off     enforce ADDR
 *   start                  create the session (greeting)
 *   send TEXT              TEXT + CRLF; escapes \r \n \t \\ \xHH
 *   send-raw TEXT          TEXT without CRLF (escapes as above)
 *   expect TEXT            the next reply line, exactly
 *   expect-prefix TEXT     the next reply line starts with TEXT
 *   expect-none            nothing more was written
 *   expect-closed          the session asked to close
 *   expect-open            it did not
 *   expect-deliveries N    ops->deliver was called N times so far
 *   expect-delivery SENDER RCPT,RCPT   the last one ("<>" = null)
 *   expect-body-has TEXT / expect-body-lacks TEXT   in the last message
 *   expect-flags N         rewrite flags of the last delivery
 *   expect-auth USER       the last authentication asked for USER
 *   dkim pass|fail|tempfail   verify DKIM (MX); the check answers so
 *   expect-dkim-checks N   ops->dkim_check was called N times so far
 *   expect-dkim-key NAME   the first key the last check needed */
#include "smtp_script.h"

/* system */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* project */
#include "filter/dkim.h"
#include "smtp/smtp_spool.h"

static int smtp_fake_write(void *io, const void *p, size_t n)
{
	struct smtp_fake *f = io;

	f->n_writes++;
	return buf_append(&f->out, p, n);
}

static int smtp_fake_auth(void *io, const char *user, const char *pass,
			  size_t pass_len)
{
	struct smtp_fake *f = io;

	(void)pass;
	(void)pass_len;
	snprintf(f->auth_user, sizeof(f->auth_user), "%s", user);
	f->auth_pending = true;
	f->n_auth++;
	return 0;
}

static bool smtp_fake_rate_ok(void *io, const char *sender, char *detail,
			      size_t detail_len)
{
	struct smtp_fake *f = io;

	(void)sender;
	snprintf(detail, detail_len, "rate-limited, retry in 1000 ms");
	return !f->rate_limited;
}

static bool smtp_fake_enforces(void *io, const char *rcpt)
{
	struct smtp_fake *f = io;

	for (unsigned i = 0; i < f->n_enforce; i++) {
		if (strcmp(f->enforce[i], rcpt) == 0)
			return true;
	}
	return false;
}

static int smtp_fake_deliver(void *io, const struct smtp_delivery *d)
{
	struct smtp_fake *f = io;
	size_t o = 0;

	f->n_deliveries++;
	f->deliver_pending = true;
	snprintf(f->last_sender, sizeof(f->last_sender), "%s",
		 d->lmtp_sender[0] != '\0' ? d->lmtp_sender : "<>");
	snprintf(f->last_mail_from, sizeof(f->last_mail_from), "%s",
		 d->mail_from);
	f->last_rcpts[0] = '\0';
	for (unsigned i = 0; i < d->n_rcpts && o < sizeof(f->last_rcpts); i++) {
		int n = snprintf(f->last_rcpts + o, sizeof(f->last_rcpts) - o,
				 "%s%s", i > 0 ? "," : "", d->rcpts[i]);
		if (n < 0)
			break;
		o += (size_t)n;
	}
	f->last_flags = d->rewrite_flags;
	buf_clear(&f->last_msg);
	f->last_spooled = d->msg == NULL;
	if (d->msg != NULL) {
		(void)buf_append(&f->last_msg, d->msg, d->len);
		return 0;
	}
	/* A body in a file: read it back the way delivery does. */
	for (uint64_t off = 0; off < d->len;) {
		uint8_t chunk[4096];
		ssize_t n =
			smtp_spool_read(d->spool, off, chunk, sizeof(chunk));

		if (n <= 0)
			return -1;
		(void)buf_append(&f->last_msg, chunk, (size_t)n);
		off += (uint64_t)n;
	}
	return 0;
}

static int smtp_fake_dkim_check(void *io, struct dkim_verify *v)
{
	struct smtp_fake *f = io;

	f->n_dkim++;
	f->dkim_pending = true;
	snprintf(f->last_dkim_key, sizeof(f->last_dkim_key), "%s",
		 dkim_verify_nkeys(v) > 0 ? dkim_verify_key_name(v, 0) : "");
	dkim_verify_free(&v);
	return 0;
}

static const struct smtp_session_ops smtp_fake_ops = {
	.write = smtp_fake_write,
	.auth = smtp_fake_auth,
	.rate_ok = smtp_fake_rate_ok,
	.rcpt_enforces_e2ee = smtp_fake_enforces,
	.deliver = smtp_fake_deliver,
	.dkim_check = smtp_fake_dkim_check,
};

void smtp_fake_init(struct smtp_fake *f, enum smtp_mode mode, bool tls)
{
	memset(f, 0, sizeof(*f));
	f->cfg.mode = mode;
	f->cfg.hostname = "example.org";
	f->cfg.mail_domain = "example.org";
	f->cfg.max_message_size = 100000;
	f->cfg.tls = tls;
	f->cfg.tls_available = true;
	f->cfg.conn_id = 1;
	f->deliver_code = 250;
	snprintf(f->deliver_esc, sizeof(f->deliver_esc), "2.0.0");
	snprintf(f->deliver_text, sizeof(f->deliver_text), "Ok: queued");
	buf_init(&f->in, 0);
	buf_init(&f->out, 0);
	buf_init(&f->last_msg, 0);
}

int smtp_fake_start(struct smtp_fake *f)
{
	f->s = smtp_session_new(&f->cfg, &smtp_fake_ops, f);
	return f->s != NULL ? 0 : -1;
}

void smtp_fake_free(struct smtp_fake *f)
{
	smtp_session_free(&f->s);
	buf_free(&f->in);
	buf_free(&f->out);
	buf_free(&f->last_msg);
	dkim_ctx_free(&f->dkim_ctx);
}

/* Run the session over what is buffered, answering async calls. */
static void smtp_fake_pump(struct smtp_fake *f)
{
	enum smtp_session_action act;
	size_t used;

	while (!f->closed && f->s != NULL) {
		used = smtp_session_input(f->s, buf_head(&f->in), f->in.len,
					  &act);
		buf_consume(&f->in, used);
		if (act == SMTP_ACT_WAIT && f->auth_pending) {
			f->auth_pending = false;
			smtp_session_auth_done(f->s, f->auth_res,
					       f->auth_login[0] != '\0'
						       ? f->auth_login
						       : f->auth_user,
					       f->auth_reason);
			continue;
		}
		if (act == SMTP_ACT_WAIT && f->dkim_pending) {
			f->dkim_pending = false;
			smtp_session_dkim_done(f->s, f->dkim_res, "fake");
			continue;
		}
		if (act == SMTP_ACT_WAIT && f->deliver_pending) {
			f->deliver_pending = false;
			smtp_session_deliver_done(f->s, f->deliver_code,
						  f->deliver_esc,
						  f->deliver_text);
			continue;
		}
		if (act == SMTP_ACT_STARTTLS) {
			buf_clear(&f->in); /* conn_starttls discards it */
			f->starttls = true;
			f->starttls_count++;
			smtp_session_tls_started(f->s);
			continue;
		}
		if (act == SMTP_ACT_CLOSE)
			f->closed = true;
		break;
	}
}

void smtp_fake_feed(struct smtp_fake *f, const void *data, size_t len,
		    size_t chunk)
{
	const uint8_t *p = data;

	if (chunk == 0)
		chunk = len;
	f->starttls = false;
	for (size_t off = 0; off < len && !f->closed && !f->starttls;) {
		size_t n = len - off < chunk ? len - off : chunk;

		(void)buf_append(&f->in, p + off, n);
		off += n;
		smtp_fake_pump(f);
	}
}

/* ---- transcripts ---- */

static size_t smtp_script_unescape(const char *in, char *out, size_t out_len)
{
	size_t o = 0;

	for (size_t i = 0; in[i] != '\0' && o + 1 < out_len; i++) {
		if (in[i] != '\\' || in[i + 1] == '\0') {
			out[o++] = in[i];
			continue;
		}
		i++;
		switch (in[i]) {
		case 'r':
			out[o++] = '\r';
			break;
		case 'n':
			out[o++] = '\n';
			break;
		case 't':
			out[o++] = '\t';
			break;
		case 'x': {
			char hex[3] = {in[i + 1], in[i + 1] ? in[i + 2] : 0, 0};

			out[o++] = (char)strtoul(hex, NULL, 16);
			i += 2;
			break;
		}
		default:
			out[o++] = in[i];
			break;
		}
	}
	out[o] = '\0';
	return o;
}

/* The next reply line (without CRLF) into @line; false if none. */
static bool smtp_script_next_line(struct smtp_fake *f, char *line,
				  size_t line_len)
{
	const char *p = (const char *)buf_head(&f->out) + f->out_read;
	size_t left = f->out.len - f->out_read, n;
	const char *lf = memchr(p, '\n', left);

	if (lf == NULL)
		return false;
	n = (size_t)(lf - p);
	if (n > 0 && p[n - 1] == '\r')
		n--;
	if (n >= line_len)
		n = line_len - 1;
	memcpy(line, p, n);
	line[n] = '\0';
	f->out_read += (size_t)(lf - p) + 1;
	return true;
}

static bool smtp_script_body_has(struct smtp_fake *f, const char *needle)
{
	size_t n = strlen(needle);
	const uint8_t *p = buf_head(&f->last_msg);

	for (size_t i = 0; n <= f->last_msg.len && i + n <= f->last_msg.len;
	     i++) {
		if (memcmp(p + i, needle, n) == 0)
			return true;
	}
	return false;
}

#define SCRIPT_FAIL(...)                                           \
	do {                                                       \
		snprintf(err, err_len, "%s:%u: ", path, lineno);   \
		snprintf(err + strlen(err), err_len - strlen(err), \
			 __VA_ARGS__);                             \
		goto out;                                          \
	} while (0)

int smtp_script_run(const char *path, size_t chunk, char *err, size_t err_len)
{
	static char raw[65536], arg[65536];
	char got[2048];
	struct smtp_fake f;
	FILE *fp;
	unsigned lineno = 0;
	int rc = -1;

	smtp_fake_init(&f, SMTP_MODE_MX, false);
	fp = fopen(path, "r");
	if (fp == NULL) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		smtp_fake_free(&f);
		return -1;
	}
	while (fgets(raw, sizeof(raw), fp) != NULL) {
		char *cmd = raw, *a;
		size_t n = strlen(raw);

		lineno++;
		while (n > 0 && (raw[n - 1] == '\n' || raw[n - 1] == '\r'))
			raw[--n] = '\0';
		if (n == 0 || raw[0] == '#')
			continue;
		a = strchr(raw, ' ');
		if (a != NULL)
			*a++ = '\0';
		else
			a = raw + n;
		if (strcmp(cmd, "mode") == 0) {
			f.cfg.mode = strcmp(a, "submission") == 0
					     ? SMTP_MODE_SUBMISSION
					     : SMTP_MODE_MX;
		} else if (strcmp(cmd, "tls") == 0) {
			f.cfg.tls = strcmp(a, "on") == 0;
		} else if (strcmp(cmd, "local") == 0) {
			f.cfg.client_local = strcmp(a, "on") == 0;
		} else if (strcmp(cmd, "ratelimit") == 0) {
			f.rate_limited = strcmp(a, "on") == 0;
		} else if (strcmp(cmd, "enforce") == 0) {
			if (f.n_enforce < SMTP_FAKE_ENFORCE_MAX)
				snprintf(f.enforce[f.n_enforce++],
					 sizeof(f.enforce[0]), "%s", a);
		} else if (strcmp(cmd, "auth") == 0) {
			char *rest = strchr(a, ' ');

			if (rest != NULL)
				*rest++ = '\0';
			f.auth_login[0] = f.auth_reason[0] = '\0';
			if (strcmp(a, "ok") == 0) {
				f.auth_res = SMTP_AUTH_RES_OK;
				if (rest != NULL)
					snprintf(f.auth_login,
						 sizeof(f.auth_login), "%s",
						 rest);
			} else if (strcmp(a, "tempfail") == 0) {
				f.auth_res = SMTP_AUTH_RES_TEMPFAIL;
				snprintf(f.auth_reason, sizeof(f.auth_reason),
					 "%s", rest != NULL ? rest : "");
			} else {
				f.auth_res = SMTP_AUTH_RES_FAILED;
			}
		} else if (strcmp(cmd, "deliver") == 0) {
			if (sscanf(a, "%u %15s", &f.deliver_code,
				   f.deliver_esc) != 2)
				SCRIPT_FAIL("deliver CODE ESC TEXT");
			a = strchr(a, ' ');
			a = a != NULL ? strchr(a + 1, ' ') : NULL;
			snprintf(f.deliver_text, sizeof(f.deliver_text), "%s",
				 a != NULL ? a + 1 : "");
		} else if (strcmp(cmd, "dkim") == 0) {
			if (f.dkim_ctx == NULL && dkim_ctx_new(&f.dkim_ctx) < 0)
				SCRIPT_FAIL("dkim_ctx_new failed");
			f.cfg.dkim = f.dkim_ctx;
			f.dkim_res = strcmp(a, "pass") == 0 ? DKIM_RES_PASS
				     : strcmp(a, "tempfail") == 0
					     ? DKIM_RES_TEMPFAIL
					     : DKIM_RES_FAIL;
		} else if (strcmp(cmd, "expect-dkim-checks") == 0) {
			if (f.n_dkim != (unsigned)atoi(a))
				SCRIPT_FAIL("%u DKIM checks, expected %s",
					    f.n_dkim, a);
		} else if (strcmp(cmd, "expect-dkim-key") == 0) {
			if (strcmp(f.last_dkim_key, a) != 0)
				SCRIPT_FAIL("DKIM key \"%s\", expected \"%s\"",
					    f.last_dkim_key, a);
		} else if (strcmp(cmd, "start") == 0) {
			if (smtp_fake_start(&f) < 0)
				SCRIPT_FAIL("session_new failed");
		} else if (strcmp(cmd, "send") == 0 ||
			   strcmp(cmd, "send-raw") == 0) {
			size_t len =
				smtp_script_unescape(a, arg, sizeof(arg) - 2);

			if (f.s == NULL)
				SCRIPT_FAIL("send before start");
			if (strcmp(cmd, "send") == 0) {
				arg[len++] = '\r';
				arg[len++] = '\n';
			}
			smtp_fake_feed(&f, arg, len, chunk);
		} else if (strcmp(cmd, "expect") == 0 ||
			   strcmp(cmd, "expect-prefix") == 0) {
			if (!smtp_script_next_line(&f, got, sizeof(got)))
				SCRIPT_FAIL("expected \"%s\", got nothing", a);
			if (strcmp(cmd, "expect") == 0
				    ? strcmp(got, a) != 0
				    : strncmp(got, a, strlen(a)) != 0)
				SCRIPT_FAIL("expected \"%s\", got \"%s\"", a,
					    got);
		} else if (strcmp(cmd, "expect-none") == 0) {
			if (smtp_script_next_line(&f, got, sizeof(got)))
				SCRIPT_FAIL("expected nothing, got \"%s\"",
					    got);
		} else if (strcmp(cmd, "expect-closed") == 0) {
			if (!f.closed)
				SCRIPT_FAIL("session still open");
		} else if (strcmp(cmd, "expect-open") == 0) {
			if (f.closed)
				SCRIPT_FAIL("session closed");
		} else if (strcmp(cmd, "expect-deliveries") == 0) {
			if (f.n_deliveries != (unsigned)atoi(a))
				SCRIPT_FAIL("%u deliveries, expected %s",
					    f.n_deliveries, a);
		} else if (strcmp(cmd, "expect-delivery") == 0) {
			char want[2304];

			snprintf(want, sizeof(want), "%s %s", f.last_sender,
				 f.last_rcpts);
			if (f.n_deliveries == 0 || strcmp(want, a) != 0)
				SCRIPT_FAIL("delivery \"%s\", expected \"%s\"",
					    want, a);
		} else if (strcmp(cmd, "expect-body-has") == 0 ||
			   strcmp(cmd, "expect-body-lacks") == 0) {
			bool has;

			smtp_script_unescape(a, arg, sizeof(arg));
			has = smtp_script_body_has(&f, arg);
			if (has != (strcmp(cmd, "expect-body-has") == 0))
				SCRIPT_FAIL("body %s \"%s\"",
					    has ? "has" : "lacks", a);
		} else if (strcmp(cmd, "expect-flags") == 0) {
			if (f.last_flags != (unsigned)atoi(a))
				SCRIPT_FAIL("flags %u, expected %s",
					    f.last_flags, a);
		} else if (strcmp(cmd, "expect-auth") == 0) {
			if (strcmp(f.auth_user, a) != 0)
				SCRIPT_FAIL("auth user \"%s\", expected "
					    "\"%s\"",
					    f.auth_user, a);
		} else {
			SCRIPT_FAIL("unknown directive \"%s\"", cmd);
		}
	}
	rc = 0;
out:
	fclose(fp);
	smtp_fake_free(&f);
	return rc;
}
