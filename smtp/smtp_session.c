/* smtp/smtp_session: one state machine for MX and submission. Commands go
 * through a table (STYLE.md rule 8): check_* validates sequence and
 * syntax and replies on failure, do_* does the work and may go async.
 * Rules: spec D.1-D.7, F.1-F.3; reply texts: smtp/smtp_reply.h. */
#include "smtp/smtp_session.h"

/* system */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* project */
#include "core/arena.h"
#include "core/buf.h"
#include "core/log.h"
#include "filter/dkim.h"
#include "filter/e2ee.h"
#include "smtp/smtp_auth.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_parse.h"
#include "smtp/smtp_reply.h"
#include "filter/rewrite.h"
#include "smtp/smtp_spool.h"

/* Replies queue up to this before a flush is forced (Postfix flushes a
 * full stream buffer too); the buffer itself is bounded at OUT_MAX. */
#define SMTP_OUT_FLUSH 16384
#define SMTP_OUT_MAX   (256 * 1024)
/* An unterminated line longer than this closes the session. */
#define SMTP_SKIP_MAX (1024 * 1024)

enum smtp_state {
	SMTP_ST_HELO = 0,     /* greeted, waiting for HELO/EHLO */
	SMTP_ST_READY,        /* HELO done, no transaction */
	SMTP_ST_MAIL,         /* MAIL accepted */
	SMTP_ST_DATA,         /* reading message content */
	SMTP_ST_AUTH_LINE,    /* 334 sent, waiting for the response */
	SMTP_ST_WAIT_AUTH,    /* ops->auth pending */
	SMTP_ST_WAIT_DELIVER, /* ops->deliver pending */
	SMTP_ST_CLOSING,      /* QUIT, fatal error: nothing more is read */
	SMTP_ST_WAIT_DKIM,    /* ops->dkim_check pending */
};

static const char *const smtp_state_names[] = {
	"helo",      "ready",        "mail",    "data",      "auth-line",
	"wait-auth", "wait-deliver", "closing", "wait-dkim",
};

struct smtp_session {
	struct smtp_session_cfg cfg;
	const struct smtp_session_ops *ops;
	void *io;
	enum smtp_state state;
	enum smtp_session_action act; /* pending STARTTLS/CLOSE */
	bool tls;
	bool authed;
	bool has_helo;
	bool starttls_pending;
	unsigned errors;
	char helo[SMTP_DOMAIN_MAX + 1];
	char login[SMTP_ADDR_MAX + 1];
	struct buf out;
	struct smtp_parser parser;

	/* The transaction; strings in txn_arena. */
	struct arena txn_arena;
	char mail_from[SMTP_ADDR_MAX + 1];
	bool mail_null;
	int rate; /* 0 not checked, 1 allowed, -1 limited */
	char rate_detail[96];
	const char **rcpts;
	unsigned n_rcpts, rcpt_attempts;
	struct smtp_data data;
	struct smtp_spool spool;
	struct e2ee_state *e2ee;
	struct e2ee_facts facts;
	struct dkim_verify *dkim; /* MX: fed with DATA */
	const char *dkim_sender;  /* the LMTP sender while WAIT_DKIM */

	/* Counters per verb for the disconnect line. */
	unsigned n_cmd[SMTP_VERB_COUNT], n_ok[SMTP_VERB_COUNT];
};

/* ---- state, replies, output ---- */

static void smtp_enter_state(struct smtp_session *s, enum smtp_state st)
{
	if (s->state == st)
		return;
	log_debug("%016" PRIx64 " smtp state %s -> %s", s->cfg.conn_id,
		  smtp_state_names[s->state], smtp_state_names[st]);
	s->state = st;
}

static void smtp_flush(struct smtp_session *s)
{
	if (s->out.len == 0)
		return;
	if (s->ops->write(s->io, buf_head(&s->out), s->out.len) < 0) {
		smtp_enter_state(s, SMTP_ST_CLOSING);
		s->act = SMTP_ACT_CLOSE;
	}
	buf_clear(&s->out);
}

static void smtp_out(struct smtp_session *s, const char *p, size_t n)
{
	if (buf_append(&s->out, p, n) < 0) {
		/* Bounded: a client that never reads its replies. */
		smtp_enter_state(s, SMTP_ST_CLOSING);
		s->act = SMTP_ACT_CLOSE;
	}
	if (s->out.len >= SMTP_OUT_FLUSH)
		smtp_flush(s);
}

/* One reply line "code[-| ]esc text" (STYLE.md rule 11); 4xx and 5xx are
 * logged. @more: a "250-" continuation line. */
static void smtp_vreply(struct smtp_session *s, bool more, unsigned code,
			const char *esc, const char *fmt, va_list ap)
	__attribute__((format(printf, 5, 0)));
static void smtp_vreply(struct smtp_session *s, bool more, unsigned code,
			const char *esc, const char *fmt, va_list ap)
{
	char line[1024], text[900];
	int n;

	n = vsnprintf(text, sizeof(text), fmt, ap);
	if (n < 0)
		text[0] = '\0';
	/* A reply is printable ASCII: no line break, control or 8-bit octet. */
	for (char *p = text; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	}
	n = snprintf(line, sizeof(line), "%u%c%s%s%s\r\n", code,
		     more ? '-' : ' ', esc != NULL ? esc : "",
		     esc != NULL && text[0] != '\0' ? " " : "", text);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	if (code >= 400)
		log_info("%016" PRIx64 " smtp reply: %.*s", s->cfg.conn_id,
			 n - 2, line);
	smtp_out(s, line, (size_t)n);
}

static void smtp_reply(struct smtp_session *s, unsigned code, const char *esc,
		       const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void smtp_reply(struct smtp_session *s, unsigned code, const char *esc,
		       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	smtp_vreply(s, false, code, esc, fmt, ap);
	va_end(ap);
}

static void smtp_reply_more(struct smtp_session *s, unsigned code,
			    const char *esc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void smtp_reply_more(struct smtp_session *s, unsigned code,
			    const char *esc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	smtp_vreply(s, true, code, esc, fmt, ap);
	va_end(ap);
}

/* A reply from a table (parser/addr/auth errors), with an optional span
 * for the texts that name a parameter. */
static void smtp_reply_def(struct smtp_session *s,
			   const struct smtp_reply_def *d, const char *p,
			   size_t n)
{
	char text[600];
	size_t i = 0, o = 0;

	/* The table texts have at most one "%.*s" and no other directive
	 * but "%%"; expand it here rather than pass a non-literal format. */
	while (d->text[i] != '\0' && o + 1 < sizeof(text)) {
		if (strncmp(d->text + i, "%.*s", 4) == 0) {
			for (size_t k = 0; k < n && o + 1 < sizeof(text); k++)
				text[o++] = p[k];
			i += 4;
		} else if (strncmp(d->text + i, "%%", 2) == 0) {
			text[o++] = '%';
			i += 2;
		} else {
			text[o++] = d->text[i++];
		}
	}
	text[o] = '\0';
	smtp_reply(s, d->code, d->esc, "%s", text);
}

/* Postfix smtpd_hard_error_limit: count an error reply. */
static void smtp_error(struct smtp_session *s)
{
	if (++s->errors < SMTP_HARD_ERROR_MAX)
		return;
	smtp_reply(s, SMTP_R_TOO_MANY_ERR);
	smtp_enter_state(s, SMTP_ST_CLOSING);
	s->act = SMTP_ACT_CLOSE;
}

/* ---- transaction ---- */

static void smtp_txn_reset(struct smtp_session *s)
{
	arena_reset(&s->txn_arena);
	s->mail_from[0] = '\0';
	s->mail_null = false;
	s->rate = 0;
	s->rate_detail[0] = '\0';
	s->rcpts = NULL;
	s->n_rcpts = 0;
	s->rcpt_attempts = 0;
	smtp_spool_reset(&s->spool);
	dkim_verify_free(&s->dkim);
	if (s->state == SMTP_ST_MAIL || s->state == SMTP_ST_DATA)
		smtp_enter_state(s, s->has_helo ? SMTP_ST_READY : SMTP_ST_HELO);
}

static bool smtp_is_local_domain(const struct smtp_session *s, const char *addr,
				 uint16_t local_len)
{
	return addr[local_len] == '@' &&
	       strcasecmp(addr + local_len + 1, s->cfg.mail_domain) == 0;
}

/* ---- commands ---- */

struct smtp_session_cmd;
typedef int smtp_check_fn(struct smtp_session *s, const struct smtp_cmd *c);
typedef int smtp_do_fn(struct smtp_session *s, const struct smtp_cmd *c);

#define SMTP_CMD_F_NOARG  (1u << 0) /* takes no argument: 501 */
#define SMTP_CMD_F_HELO   (1u << 1) /* needs HELO/EHLO first */
#define SMTP_CMD_F_NO_TXN (1u << 2) /* not inside a MAIL transaction */

struct smtp_session_cmd {
	enum smtp_verb verb;
	unsigned flags;
	smtp_check_fn *check;
	smtp_do_fn *run;
};

static void smtp_helo_common(struct smtp_session *s, const struct smtp_cmd *c)
{
	size_t n = c->arg_len;

	if (n > SMTP_DOMAIN_MAX)
		n = SMTP_DOMAIN_MAX;
	memcpy(s->helo, c->arg, n);
	s->helo[n] = '\0';
	s->has_helo = true;
	smtp_txn_reset(s);
	smtp_enter_state(s, SMTP_ST_READY);
}

static int smtp_do_ehlo(struct smtp_session *s, const struct smtp_cmd *c)
{
	if (c->arg_len == 0) {
		smtp_reply(s, SMTP_R_SYNTAX_EHLO);
		return -1;
	}
	smtp_helo_common(s, c);
	smtp_reply_more(s, 250, NULL, "%s", s->cfg.hostname);
	smtp_reply_more(s, 250, NULL, "%s", SMTP_EHLO_PIPELINING);
	smtp_reply_more(s, 250, NULL, SMTP_EHLO_SIZE,
			(unsigned long long)s->cfg.max_message_size);
	smtp_reply_more(s, 250, NULL, "%s", SMTP_EHLO_VRFY);
	if (!s->tls && s->cfg.tls_available)
		smtp_reply_more(s, 250, NULL, "%s", SMTP_EHLO_STARTTLS);
	if (s->tls && s->cfg.mode == SMTP_MODE_SUBMISSION)
		smtp_reply_more(s, 250, NULL, "%s", SMTP_EHLO_AUTH);
	smtp_reply_more(s, 250, NULL, "%s", SMTP_EHLO_ENHANCED);
	smtp_reply(s, 250, NULL, "%s", SMTP_EHLO_8BITMIME);
	return 1;
}

static int smtp_do_helo(struct smtp_session *s, const struct smtp_cmd *c)
{
	if (c->arg_len == 0) {
		smtp_reply(s, SMTP_R_SYNTAX_HELO);
		return -1;
	}
	smtp_helo_common(s, c);
	smtp_reply(s, 250, NULL, "%s", s->cfg.hostname);
	return 1;
}

static int smtp_check_mail(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	if (!s->tls) {
		smtp_reply(s, SMTP_R_STARTTLS_FIRST);
		return -1;
	}
	if (s->state == SMTP_ST_MAIL) {
		smtp_reply(s, SMTP_R_NESTED_MAIL);
		return -1;
	}
	if (s->cfg.mode == SMTP_MODE_SUBMISSION && !s->authed) {
		smtp_reply(s, SMTP_R_AUTH_FIRST);
		return -1;
	}
	return 0;
}

static int smtp_do_mail(struct smtp_session *s, const struct smtp_cmd *c)
{
	struct smtp_mail_args a;
	const struct smtp_reply_def *d;
	int e;

	e = smtp_addr_parse_mail(c->arg, c->arg_len, 0, &a);
	if (e != SMTP_ADDR_OK) {
		d = smtp_addr_error_reply((enum smtp_addr_error)e, false);
		smtp_reply_def(s, d, a.param != NULL ? a.param : "",
			       a.param != NULL ? a.param_len : 0);
		return -1;
	}
	if (a.has_size && s->cfg.max_message_size != 0 &&
	    a.size > s->cfg.max_message_size) {
		smtp_reply(s, SMTP_R_TOO_BIG);
		return -1;
	}
	smtp_txn_reset(s);
	/* Addresses are case-insensitive here (Dovecot's %Lu): keep the
	 * MAIL FROM as given for the From comparison, which ignores case. */
	memcpy(s->mail_from, a.from.addr, a.from.len + 1u);
	s->mail_null = a.from.null;
	smtp_enter_state(s, SMTP_ST_MAIL);
	smtp_reply(s, SMTP_R_MAIL_OK);
	return 1;
}

static int smtp_check_rcpt(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	if (s->state != SMTP_ST_MAIL) {
		smtp_reply(s, SMTP_R_NEED_MAIL);
		return -1;
	}
	return 0;
}

/* Submission restrictions Postfix evaluates at RCPT (smtpd_delay_reject):
 * HELO name, then sender login, then filtermail's MAIL FROM rules. */
static int smtp_rcpt_submission(struct smtp_session *s)
{
	enum smtp_helo_kind k;

	if (!s->cfg.client_local) {
		k = smtp_addr_check_helo(s->helo, strlen(s->helo));
		if (k == SMTP_HELO_INVALID || k == SMTP_HELO_BARE_IP) {
			smtp_reply(s, SMTP_R_HELO_INVALID, s->helo);
			return -1;
		}
		if (k == SMTP_HELO_NON_FQDN) {
			smtp_reply(s, SMTP_R_HELO_NON_FQDN, s->helo);
			return -1;
		}
	}
	if (s->mail_null || strcasecmp(s->mail_from, s->login) != 0) {
		smtp_reply(s, SMTP_R_NOT_OWNER, s->mail_from, s->login);
		return -1;
	}
	if (s->rate == 0) {
		s->rate = s->ops->rate_ok(s->io, s->mail_from, s->rate_detail,
					  sizeof(s->rate_detail))
				  ? 1
				  : -1;
	}
	if (s->rate < 0) {
		smtp_reply(s, SMTP_R_RATE_LIMIT, s->mail_from, s->rate_detail);
		return -1;
	}
	return 0;
}

static int smtp_do_rcpt(struct smtp_session *s, const struct smtp_cmd *c)
{
	struct smtp_rcpt_args a;
	const struct smtp_reply_def *d;
	const char **grown;
	char *addr;
	int e;

	s->rcpt_attempts++;
	e = smtp_addr_parse_rcpt(c->arg, c->arg_len, 0, &a);
	if (e != SMTP_ADDR_OK) {
		d = smtp_addr_error_reply((enum smtp_addr_error)e, true);
		smtp_reply_def(s, d, a.param != NULL ? a.param : "",
			       a.param != NULL ? a.param_len : 0);
		return -1;
	}
	if (a.to.postmaster && a.to.local_len == a.to.len) {
		/* <postmaster> without a domain is ours (RFC 5321 4.5.1). */
		if (snprintf(a.to.addr, sizeof(a.to.addr), "postmaster@%s",
			     s->cfg.mail_domain) >= (int)sizeof(a.to.addr)) {
			smtp_reply(s, SMTP_R_BAD_RCPT);
			return -1;
		}
		a.to.local_len = 10;
		a.to.len = (uint16_t)strlen(a.to.addr);
	}
	if (s->n_rcpts >= SMTP_RCPT_MAX) {
		smtp_reply(s, SMTP_R_TOO_MANY_RCPT);
		return -1;
	}
	if (s->cfg.mode == SMTP_MODE_SUBMISSION) {
		if (smtp_rcpt_submission(s) < 0)
			return -1;
		if (!smtp_is_local_domain(s, a.to.addr, a.to.local_len)) {
			smtp_reply(s, SMTP_R_REMOTE_UNAVAIL);
			return -1;
		}
	} else if (!smtp_is_local_domain(s, a.to.addr, a.to.local_len)) {
		smtp_reply(s, SMTP_R_RELAY_DENIED, a.to.addr);
		return -1;
	}
	/* Local mailboxes are case-insensitive (Dovecot %Lu, spec C.2). */
	for (uint16_t i = 0; i < a.to.len; i++) {
		if (a.to.addr[i] >= 'A' && a.to.addr[i] <= 'Z')
			a.to.addr[i] = (char)(a.to.addr[i] - 'A' + 'a');
	}
	for (unsigned i = 0; i < s->n_rcpts; i++) {
		if (strcmp(s->rcpts[i], a.to.addr) == 0) {
			/* Delivered once, as Postfix does. */
			smtp_reply(s, SMTP_R_RCPT_OK);
			return 1;
		}
	}
	if ((s->n_rcpts & (s->n_rcpts - 1)) == 0) {
		unsigned cap = s->n_rcpts == 0 ? 4 : s->n_rcpts * 2;

		grown = arena_alloc(&s->txn_arena, cap * sizeof(*grown));
		if (grown == NULL) {
			smtp_reply(s, SMTP_R_OOM);
			smtp_enter_state(s, SMTP_ST_CLOSING);
			s->act = SMTP_ACT_CLOSE;
			return -1;
		}
		if (s->n_rcpts > 0)
			memcpy(grown, s->rcpts, s->n_rcpts * sizeof(*grown));
		s->rcpts = grown;
	}
	addr = arena_strndup(&s->txn_arena, a.to.addr, a.to.len);
	if (addr == NULL) {
		smtp_reply(s, SMTP_R_OOM);
		smtp_enter_state(s, SMTP_ST_CLOSING);
		s->act = SMTP_ACT_CLOSE;
		return -1;
	}
	s->rcpts[s->n_rcpts++] = addr;
	smtp_reply(s, SMTP_R_RCPT_OK);
	return 1;
}

static int smtp_data_sink(void *ctx, const uint8_t *p, size_t n)
{
	struct smtp_session *s = ctx;

	e2ee_feed(s->e2ee, p, n);
	if (s->dkim != NULL)
		dkim_verify_feed(s->dkim, p, n);
	return smtp_spool_append(&s->spool, p, n) < 0 ? -1 : 0;
}

static int smtp_check_data(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	if (s->state != SMTP_ST_MAIL) {
		smtp_reply(s, SMTP_R_NEED_MAIL);
		return -1;
	}
	if (s->n_rcpts == 0) {
		if (s->rcpt_attempts == 0)
			smtp_reply(s, SMTP_R_NEED_RCPT);
		else
			smtp_reply(s, SMTP_R_NO_VALID_RCPT);
		return -1;
	}
	return 0;
}

static int smtp_do_data(struct smtp_session *s, const struct smtp_cmd *c)
{
	uint64_t max = s->cfg.max_message_size;

	(void)c;
	smtp_spool_reset(&s->spool);
	e2ee_init(s->e2ee);
	dkim_verify_free(&s->dkim);
	if (s->cfg.mode == SMTP_MODE_MX && s->cfg.dkim != NULL &&
	    dkim_verify_new(s->cfg.dkim, &s->dkim) < 0) {
		smtp_reply(s, SMTP_R_OOM);
		smtp_enter_state(s, SMTP_ST_CLOSING);
		s->act = SMTP_ACT_CLOSE;
		return -1;
	}
	smtp_data_init(&s->data, max, smtp_data_sink, s);
	smtp_enter_state(s, SMTP_ST_DATA);
	smtp_reply(s, SMTP_R_DATA_GO);
	return 0; /* counted as done when delivered */
}

static int smtp_do_rset(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	smtp_txn_reset(s);
	smtp_reply(s, SMTP_R_OK);
	return 1;
}

static int smtp_do_noop(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	smtp_reply(s, SMTP_R_OK);
	return 1;
}

static int smtp_do_quit(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	smtp_reply(s, SMTP_R_BYE);
	smtp_enter_state(s, SMTP_ST_CLOSING);
	s->act = SMTP_ACT_CLOSE;
	return 1;
}

static int smtp_do_vrfy(struct smtp_session *s, const struct smtp_cmd *c)
{
	if (c->arg_len == 0) {
		smtp_reply(s, SMTP_R_SYNTAX_VRFY);
		return -1;
	}
	smtp_reply(s, SMTP_R_VRFY);
	return 1;
}

static int smtp_do_help(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	smtp_reply(s, SMTP_R_HELP,
		   "EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY STARTTLS "
		   "AUTH HELP");
	return 1;
}

static int smtp_do_not_implemented(struct smtp_session *s,
				   const struct smtp_cmd *c)
{
	(void)c;
	smtp_reply(s, SMTP_R_NOT_IMPLEMENTED);
	return -1;
}

static int smtp_do_unknown(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	smtp_reply(s, SMTP_R_CMD_UNKNOWN);
	return -1;
}

static int smtp_check_starttls(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	if (s->tls) {
		smtp_reply(s, SMTP_R_TLS_ACTIVE);
		return -1;
	}
	if (!s->cfg.tls_available) {
		smtp_reply(s, SMTP_R_TLS_UNAVAIL);
		return -1;
	}
	return 0;
}

static int smtp_do_starttls(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	smtp_reply(s, SMTP_R_STARTTLS_GO);
	s->starttls_pending = true;
	s->act = SMTP_ACT_STARTTLS;
	return 1;
}

static int smtp_check_auth(struct smtp_session *s, const struct smtp_cmd *c)
{
	(void)c;
	if (s->cfg.mode != SMTP_MODE_SUBMISSION) {
		smtp_reply(s, SMTP_R_AUTH_NOT_ENABLED);
		return -1;
	}
	if (!s->tls) {
		smtp_reply(s, SMTP_R_AUTH_TLS_FIRST);
		return -1;
	}
	if (s->authed) {
		smtp_reply(s, SMTP_R_AUTH_ALREADY);
		return -1;
	}
	if (s->state == SMTP_ST_MAIL) {
		smtp_reply(s, SMTP_R_MAIL_IN_TRANS);
		return -1;
	}
	return 0;
}

/* Decode a PLAIN response and hand the credentials to the driver. */
static int smtp_auth_response(struct smtp_session *s, const char *b64,
			      size_t len)
{
	struct sasl_plain cred;
	int e;

	if (len == 1 && b64[0] == '*') {
		smtp_reply(s, SMTP_R_AUTH_ABORTED);
		return -1;
	}
	e = sasl_plain_decode(b64, len, &cred);
	if (e != SMTP_AUTH_OK) {
		smtp_reply_def(s, smtp_auth_error_reply(e), "", 0);
		return -1;
	}
	smtp_enter_state(s, SMTP_ST_WAIT_AUTH);
	e = s->ops->auth(s->io, cred.authcid, cred.password, cred.password_len);
	sasl_plain_wipe(&cred);
	if (e < 0) {
		smtp_enter_state(s, SMTP_ST_READY);
		smtp_reply(s, SMTP_R_AUTH_TEMPFAIL, "service unavailable");
		return -1;
	}
	return 0;
}

static int smtp_do_auth(struct smtp_session *s, const struct smtp_cmd *c)
{
	struct smtp_auth_cmd a;
	int e;

	e = smtp_auth_parse_cmd(c->arg, c->arg_len, &a);
	if (e != SMTP_AUTH_OK) {
		smtp_reply_def(s, smtp_auth_error_reply(e), "", 0);
		return -1;
	}
	if (!a.has_ir) {
		smtp_reply(s, 334, NULL, "%s", "");
		smtp_parser_expect_line(&s->parser);
		smtp_enter_state(s, SMTP_ST_AUTH_LINE);
		return 0;
	}
	return smtp_auth_response(s, a.ir, a.ir_len);
}

static const struct smtp_session_cmd smtp_cmds[] = {
	{SMTP_VERB_EHLO, 0, NULL, smtp_do_ehlo},
	{SMTP_VERB_HELO, 0, NULL, smtp_do_helo},
	{SMTP_VERB_MAIL, SMTP_CMD_F_HELO, smtp_check_mail, smtp_do_mail},
	{SMTP_VERB_RCPT, SMTP_CMD_F_HELO, smtp_check_rcpt, smtp_do_rcpt},
	{SMTP_VERB_DATA, SMTP_CMD_F_HELO | SMTP_CMD_F_NOARG, smtp_check_data,
	 smtp_do_data},
	{SMTP_VERB_BDAT, 0, NULL, smtp_do_not_implemented},
	{SMTP_VERB_RSET, SMTP_CMD_F_NOARG, NULL, smtp_do_rset},
	{SMTP_VERB_NOOP, 0, NULL, smtp_do_noop},
	{SMTP_VERB_QUIT, 0, NULL, smtp_do_quit},
	{SMTP_VERB_VRFY, 0, NULL, smtp_do_vrfy},
	{SMTP_VERB_EXPN, 0, NULL, smtp_do_not_implemented},
	{SMTP_VERB_HELP, 0, NULL, smtp_do_help},
	{SMTP_VERB_STARTTLS, SMTP_CMD_F_NOARG, smtp_check_starttls,
	 smtp_do_starttls},
	{SMTP_VERB_AUTH, SMTP_CMD_F_HELO | SMTP_CMD_F_NO_TXN, smtp_check_auth,
	 smtp_do_auth},
	{SMTP_VERB_UNKNOWN, 0, NULL, smtp_do_unknown},
};

static const struct smtp_session_cmd *smtp_cmd_find(enum smtp_verb v)
{
	size_t n = sizeof(smtp_cmds) / sizeof(smtp_cmds[0]);

	for (size_t i = 0; i < n - 1; i++) {
		if (smtp_cmds[i].verb == v)
			return &smtp_cmds[i];
	}
	return &smtp_cmds[n - 1];
}

static void smtp_dispatch(struct smtp_session *s, const struct smtp_cmd *c)
{
	const struct smtp_session_cmd *def = smtp_cmd_find(c->verb);
	int r;

	s->n_cmd[def->verb]++;
	if ((def->flags & SMTP_CMD_F_NOARG) && c->arg_len > 0) {
		smtp_reply(s, SMTP_R_SYNTAX_NOARG, smtp_verb_name(c->verb));
		smtp_error(s);
		return;
	}
	if ((def->flags & SMTP_CMD_F_HELO) && !s->has_helo) {
		smtp_reply(s, SMTP_R_NEED_HELO);
		smtp_error(s);
		return;
	}
	if (def->check != NULL && def->check(s, c) < 0) {
		smtp_error(s);
		return;
	}
	r = def->run(s, c);
	if (r < 0)
		smtp_error(s);
	else if (r > 0)
		s->n_ok[def->verb]++;
}

/* ---- end of DATA: the verdict, then delivery ---- */

/* The From header value for a reply: printable ASCII, at most 200. */
static void smtp_safe_value(const char *in, char *out, size_t out_len)
{
	size_t o = 0;

	for (size_t i = 0; in[i] != '\0' && o + 1 < out_len && i < 200; i++)
		out[o++] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : '?';
	out[o] = '\0';
}

static void smtp_verdict_reply(struct smtp_session *s,
			       const struct e2ee_facts *f, enum e2ee_verdict v)
{
	char val[256];

	switch (v) {
	case E2EE_DENY_PARSE:
		smtp_reply(s, SMTP_R_PARSE_FAILED, "invalid header section");
		break;
	case E2EE_DENY_FROM_HEADER:
		smtp_safe_value(f->from_value, val, sizeof(val));
		smtp_reply(s, SMTP_R_INVALID_FROM_HDR, val);
		break;
	case E2EE_DENY_FROM_MISMATCH:
		smtp_reply(s, SMTP_R_INVALID_FROM, f->from_addr, s->mail_from);
		break;
	default:
		log_info("%016" PRIx64 " Rejected unencrypted mail from: %s",
			 s->cfg.conn_id, s->mail_from);
		smtp_reply(s, SMTP_R_ENCRYPTION_NEEDED);
		break;
	}
}

/* D.5 (submission) or D.7 (MX). Returns the LMTP sender or NULL after a
 * rejection reply. */
static const char *smtp_verdict(struct smtp_session *s,
				const struct e2ee_facts *f)
{
	enum e2ee_verdict v;
	bool enc;

	if (s->cfg.mode == SMTP_MODE_SUBMISSION) {
		v = e2ee_outgoing_allowed(f, s->mail_from, s->rcpts,
					  s->n_rcpts);
		enc = v == E2EE_ALLOW_ENCRYPTED || v == E2EE_ALLOW_SECUREJOIN;
		if (v != E2EE_DENY_PARSE && v != E2EE_DENY_FROM_HEADER &&
		    v != E2EE_DENY_FROM_MISMATCH)
			log_info("%016" PRIx64 " Outgoing: Filtering %s mail.",
				 s->cfg.conn_id,
				 enc ? "encrypted" : "unencrypted");
		if (!e2ee_verdict_allowed(v)) {
			smtp_verdict_reply(s, f, v);
			return NULL;
		}
		return s->mail_from;
	}
	v = E2EE_ALLOW_CLEARTEXT;
	for (unsigned i = 0; i < s->n_rcpts; i++) {
		v = e2ee_incoming_allowed(
			f, s->mail_from, s->rcpts[i],
			s->ops->rcpt_enforces_e2ee(s->io, s->rcpts[i]));
		if (i == 0 && v > 0) {
			if (v == E2EE_ALLOW_ENCRYPTED ||
			    v == E2EE_ALLOW_SECUREJOIN)
				log_info("%016" PRIx64
					 " Incoming: Filtering encrypted mail.",
					 s->cfg.conn_id);
			else if (v == E2EE_ALLOW_MAILER_DAEMON)
				log_info("%016" PRIx64
					 " Incoming: Filtering mailer-daemon "
					 "message from %s",
					 s->cfg.conn_id, f->from_addr);
			else
				log_info("%016" PRIx64
					 " Incoming: Filtering unencrypted "
					 "mail.",
					 s->cfg.conn_id);
		}
		if (!e2ee_verdict_allowed(v)) {
			smtp_verdict_reply(s, f, v);
			return NULL;
		}
	}
	/* DKIM verification of the From domain goes here (issue 5). */
	return e2ee_incoming_resets_sender(f, s->mail_from) ? "" : s->mail_from;
}

static void smtp_deliver_msg(struct smtp_session *s, const struct e2ee_facts *f,
			     const char *sender);

/* D.7 step 5, the origin check: DKIM of the From domain (E.3). 1: go on
 * to delivery (a domain literal is exempt), 0: verification pending, -1:
 * rejected (replied). */
static int smtp_dkim_start(struct smtp_session *s, const struct e2ee_facts *f,
			   const char *sender)
{
	const char *at = f->from_ok ? strrchr(f->from_addr, '@') : NULL;
	const char *dom = at != NULL ? at + 1 : "";
	struct dkim_verify *v;
	enum dkim_result res;

	if (dom[0] == '[')
		return 1;
	if (s->dkim == NULL) {
		smtp_reply(s, SMTP_R_LOCAL_TEMPFAIL);
		smtp_txn_reset(s);
		return -1;
	}
	res = dkim_verify_end(s->dkim, dom);
	if (res != DKIM_RES_PASS) {
		log_info("%016" PRIx64 " dkim result=%s from_domain=%s "
			 "detail=%s",
			 s->cfg.conn_id, dkim_result_name(res), dom,
			 dkim_verify_detail(s->dkim));
		if (res == DKIM_RES_NOSIG)
			smtp_reply(s, SMTP_R_NO_DKIM);
		else
			smtp_reply(s, SMTP_R_BAD_DKIM);
		smtp_txn_reset(s);
		return -1;
	}
	v = s->dkim;
	s->dkim = NULL;
	s->dkim_sender = sender;
	smtp_enter_state(s, SMTP_ST_WAIT_DKIM);
	if (s->ops->dkim_check(s->io, v) < 0) {
		smtp_enter_state(s, SMTP_ST_MAIL);
		smtp_reply(s, SMTP_R_DKIM_TEMPFAIL);
		smtp_txn_reset(s);
		return -1;
	}
	return 0;
}

static void smtp_data_done(struct smtp_session *s, int r)
{
	struct e2ee_facts *f;
	const char *sender;

	smtp_enter_state(s, SMTP_ST_MAIL);
	if (r == SMTP_PARSE_INVALID) {
		const struct smtp_reply_def *def =
			smtp_data_error_reply(s->data.error);

		smtp_reply(s, def->code, def->esc, "%s", def->text);
		if (s->data.error == SMTP_DERR_BARE_LF) {
			/* Postfix smtpd_forbid_bare_newline: reply, close. */
			smtp_enter_state(s, SMTP_ST_CLOSING);
			s->act = SMTP_ACT_CLOSE;
			return;
		}
		smtp_txn_reset(s);
		smtp_error(s);
		return;
	}
	r = smtp_spool_end(&s->spool);
	if (r < 0) {
		if (r == -EMSGSIZE)
			smtp_reply(s, SMTP_R_HDR_TOO_BIG);
		else
			smtp_reply(s, SMTP_R_DATA_LOCAL);
		smtp_txn_reset(s);
		return;
	}
	f = &s->facts;
	e2ee_finish(s->e2ee, f);
	sender = smtp_verdict(s, f);
	if (sender == NULL) {
		smtp_txn_reset(s);
		return;
	}
	if (s->cfg.mode == SMTP_MODE_MX && s->cfg.dkim != NULL &&
	    smtp_dkim_start(s, f, sender) <= 0)
		return; /* rejected, or verification pending */
	smtp_deliver_msg(s, f, sender);
}

/* Hand the accepted message to the driver for delivery. */
static void smtp_deliver_msg(struct smtp_session *s, const struct e2ee_facts *f,
			     const char *sender)
{
	struct smtp_delivery d;

	memset(&d, 0, sizeof(d));
	d.submission = s->cfg.mode == SMTP_MODE_SUBMISSION;
	d.mail_from = s->mail_from;
	d.lmtp_sender = sender;
	d.from_addr = f->from_ok ? f->from_addr : "";
	d.rcpts = s->rcpts;
	d.n_rcpts = s->n_rcpts;
	d.spool = &s->spool;
	d.msg = smtp_spool_mem(&s->spool);
	d.len = (size_t)smtp_spool_size(&s->spool);
	d.rewrite_flags = REWRITE_LMTP;
	if (d.submission)
		d.rewrite_flags |= REWRITE_SUBMISSION;
	smtp_enter_state(s, SMTP_ST_WAIT_DELIVER);
	if (s->ops->deliver(s->io, &d) < 0) {
		smtp_enter_state(s, SMTP_ST_MAIL);
		smtp_reply(s, SMTP_R_LOCAL_TEMPFAIL);
		smtp_txn_reset(s);
	}
}

/* ---- public ---- */

struct smtp_session *smtp_session_new(const struct smtp_session_cfg *cfg,
				      const struct smtp_session_ops *ops,
				      void *io)
{
	struct smtp_session *s;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->e2ee = malloc(sizeof(*s->e2ee));
	if (s->e2ee == NULL) {
		free(s);
		return NULL;
	}
	s->cfg = *cfg;
	s->ops = ops;
	s->io = io;
	s->tls = cfg->tls;
	s->state = SMTP_ST_HELO;
	buf_init(&s->out, SMTP_OUT_MAX);
	smtp_spool_init(&s->spool, cfg->spool_dir, cfg->spool_mem_max,
			cfg->max_message_size == 0 ||
					cfg->max_message_size > UINT32_MAX - 1
				? UINT32_MAX - 1
				: (uint32_t)cfg->max_message_size);
	arena_init(&s->txn_arena);
	smtp_parser_init(&s->parser);
	smtp_reply(s, SMTP_R_GREETING, cfg->hostname);
	smtp_flush(s);
	return s;
}

void smtp_session_free(struct smtp_session **sp)
{
	struct smtp_session *s = *sp;

	if (s == NULL)
		return;
	buf_free(&s->out);
	smtp_spool_free(&s->spool);
	arena_free(&s->txn_arena);
	dkim_verify_free(&s->dkim);
	free(s->e2ee);
	free(s);
	*sp = NULL;
}

static bool smtp_busy(const struct smtp_session *s)
{
	return s->state == SMTP_ST_WAIT_AUTH ||
	       s->state == SMTP_ST_WAIT_DELIVER ||
	       s->state == SMTP_ST_WAIT_DKIM || s->state == SMTP_ST_CLOSING ||
	       s->act != SMTP_ACT_READ;
}

/* One complete command line (or SASL response). */
static void smtp_line(struct smtp_session *s, int r)
{
	const struct smtp_reply_def *d;

	if (r == SMTP_PARSE_INVALID) {
		if (s->state == SMTP_ST_AUTH_LINE) {
			smtp_enter_state(s, SMTP_ST_READY);
			smtp_reply(s, SMTP_R_AUTH_TOO_LONG);
			smtp_error(s);
			return;
		}
		d = smtp_parse_error_reply(s->parser.error);
		smtp_reply(s, d->code, d->esc, "%s", d->text);
		if (s->parser.error == SMTP_PERR_BARE_LF) {
			smtp_enter_state(s, SMTP_ST_CLOSING);
			s->act = SMTP_ACT_CLOSE;
			return;
		}
		smtp_error(s);
		return;
	}
	if (s->state == SMTP_ST_AUTH_LINE) {
		smtp_enter_state(s, SMTP_ST_READY);
		if (smtp_auth_response(s, s->parser.cmd.arg,
				       s->parser.cmd.arg_len) < 0)
			smtp_error(s);
		return;
	}
	smtp_dispatch(s, &s->parser.cmd);
}

size_t smtp_session_input(struct smtp_session *s, const uint8_t *data,
			  size_t len, enum smtp_session_action *act_r)
{
	size_t off = 0, used;
	int r;

	while (!smtp_busy(s) && off < len) {
		if (s->state == SMTP_ST_DATA) {
			r = smtp_data_parse(&s->data, data + off, len - off,
					    &used);
			off += used;
			if (r == SMTP_PARSE_AGAIN)
				break;
			smtp_data_done(s, r);
			continue;
		}
		r = smtp_parse_cmd(&s->parser, data + off, len - off, &used);
		off += used;
		if (r == SMTP_PARSE_AGAIN) {
			if (s->parser.skipped > SMTP_SKIP_MAX) {
				smtp_reply(s, SMTP_R_CMD_TOO_LONG);
				smtp_enter_state(s, SMTP_ST_CLOSING);
				s->act = SMTP_ACT_CLOSE;
			}
			break;
		}
		smtp_line(s, r);
	}
	if (s->state == SMTP_ST_CLOSING && s->act == SMTP_ACT_READ)
		s->act = SMTP_ACT_CLOSE;
	/* RFC 2920 3.2: flush when no complete command is left (or the
	 * next step needs the replies out: TLS, close, waiting). */
	if (s->act != SMTP_ACT_READ ||
	    !(s->state != SMTP_ST_DATA &&
	      smtp_parse_line_ready(data + off, len - off)))
		smtp_flush(s);
	*act_r = s->state == SMTP_ST_WAIT_AUTH ||
				 s->state == SMTP_ST_WAIT_DELIVER ||
				 s->state == SMTP_ST_WAIT_DKIM
			 ? SMTP_ACT_WAIT
			 : s->act;
	if (s->act == SMTP_ACT_STARTTLS)
		s->act = SMTP_ACT_READ; /* reported once */
	return off;
}

void smtp_session_tls_started(struct smtp_session *s)
{
	s->tls = true;
	s->starttls_pending = false;
	s->has_helo = false;
	s->authed = false;
	s->helo[0] = '\0';
	smtp_txn_reset(s);
	smtp_parser_init(&s->parser);
	smtp_enter_state(s, SMTP_ST_HELO);
}

void smtp_session_auth_done(struct smtp_session *s, enum smtp_auth_result res,
			    const char *login, const char *reason)
{
	if (s->state != SMTP_ST_WAIT_AUTH)
		return;
	smtp_enter_state(s, SMTP_ST_READY);
	switch (res) {
	case SMTP_AUTH_RES_OK:
		snprintf(s->login, sizeof(s->login), "%s", login);
		s->authed = true;
		s->n_ok[SMTP_VERB_AUTH]++;
		smtp_reply(s, SMTP_R_AUTH_OK);
		break;
	case SMTP_AUTH_RES_TEMPFAIL:
		smtp_reply(s, SMTP_R_AUTH_TEMPFAIL,
			   reason != NULL && reason[0] != '\0' ? reason
							       : "try later");
		smtp_error(s);
		break;
	default:
		smtp_reply(s, SMTP_R_AUTH_FAILED);
		smtp_error(s);
		break;
	}
}

void smtp_session_deliver_done(struct smtp_session *s, unsigned code,
			       const char *esc, const char *text)
{
	if (s->state != SMTP_ST_WAIT_DELIVER)
		return;
	smtp_enter_state(s, SMTP_ST_MAIL);
	if (code >= 200 && code < 300)
		s->n_ok[SMTP_VERB_DATA]++;
	smtp_reply(s, code, esc != NULL && esc[0] != '\0' ? esc : NULL, "%s",
		   text);
	smtp_txn_reset(s);
}

void smtp_session_timeout(struct smtp_session *s)
{
	smtp_reply(s, SMTP_R_TIMEOUT);
	smtp_enter_state(s, SMTP_ST_CLOSING);
	s->act = SMTP_ACT_CLOSE;
	smtp_flush(s);
}

void smtp_session_preauth_deadline(struct smtp_session *s)
{
	smtp_reply(s, SMTP_R_PREAUTH_DEADLINE);
	smtp_enter_state(s, SMTP_ST_CLOSING);
	s->act = SMTP_ACT_CLOSE;
	smtp_flush(s);
}

bool smtp_session_proved(const struct smtp_session *s)
{
	return s->authed || s->n_ok[SMTP_VERB_MAIL] > 0;
}

void smtp_session_shutdown(struct smtp_session *s)
{
	smtp_reply(s, SMTP_R_SHUTDOWN);
	smtp_enter_state(s, SMTP_ST_CLOSING);
	s->act = SMTP_ACT_CLOSE;
	smtp_flush(s);
}

bool smtp_session_waiting(const struct smtp_session *s)
{
	return s->state == SMTP_ST_WAIT_AUTH ||
	       s->state == SMTP_ST_WAIT_DELIVER ||
	       s->state == SMTP_ST_WAIT_DKIM;
}

void smtp_session_dkim_done(struct smtp_session *s, int dkim_result,
			    const char *detail)
{
	const char *at;

	if (s->state != SMTP_ST_WAIT_DKIM)
		return;
	smtp_enter_state(s, SMTP_ST_MAIL);
	at = s->facts.from_ok ? strrchr(s->facts.from_addr, '@') : NULL;
	log_info("%016" PRIx64 " dkim result=%s from_domain=%s detail=%s",
		 s->cfg.conn_id,
		 dkim_result_name((enum dkim_result)dkim_result),
		 at != NULL ? at + 1 : "", detail != NULL ? detail : "");
	switch (dkim_result) {
	case DKIM_RES_PASS:
		smtp_deliver_msg(s, &s->facts, s->dkim_sender);
		break;
	case DKIM_RES_TEMPFAIL:
		smtp_reply(s, SMTP_R_DKIM_TEMPFAIL);
		smtp_txn_reset(s);
		break;
	default:
		smtp_reply(s, SMTP_R_BAD_DKIM);
		smtp_txn_reset(s);
		break;
	}
}

void smtp_session_summary(const struct smtp_session *s, char *out,
			  size_t out_len)
{
	size_t o = 0;
	int n;

	out[0] = '\0';
	for (int v = 0; v < SMTP_VERB_COUNT && o < out_len; v++) {
		char name[16];
		size_t k;

		if (s->n_cmd[v] == 0)
			continue;
		snprintf(name, sizeof(name), "%s", smtp_verb_name(v));
		for (k = 0; name[k] != '\0'; k++)
			name[k] = (char)(name[k] >= 'A' && name[k] <= 'Z'
						 ? name[k] - 'A' + 'a'
						 : name[k]);
		if (s->n_ok[v] == s->n_cmd[v])
			n = snprintf(out + o, out_len - o, "%s%s=%u",
				     o > 0 ? " " : "", name, s->n_cmd[v]);
		else
			n = snprintf(out + o, out_len - o, "%s%s=%u/%u",
				     o > 0 ? " " : "", name, s->n_ok[v],
				     s->n_cmd[v]);
		if (n < 0)
			break;
		o += (size_t)n;
	}
}
