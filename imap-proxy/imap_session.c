/* imap-proxy/imap_session: one client connection: pre-auth commands,
 * authentication, the master-user login to Dovecot, the relay both ways
 * with IDLE tracking and wake-ups, and the chatmail METADATA keys.
 *
 * Bytes in flight. Each direction runs a framer (imap_parse) over the
 * receiving conn's input buffer. The octets of the line being framed stay
 * in that buffer ("held") until the line's end (or a literal) decides
 * what happens to them: forwarded as they are, swallowed (the replies to
 * our wake-up commands), or answered here. Literal data is streamed.
 * Nothing is read from one side while the other side's send queue is over
 * IMAP_SEND_HIGH; DRAINED resumes it. So every buffer is bounded. */
#include "imap-proxy/imap-int.h"

/* system */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* third party */
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* project */
#include "core/accounts/accounts.h"
#include "core/auth/sasl_plain.h"
#include "core/conn.h"
#include "core/dovecot/dovecot_login.h"
#include "core/events.h"
#include "core/log.h"
#include "core/pool.h"

#define IMAP_INPUT_MAX           (64 * 1024)
#define IMAP_PREAUTH_LINE_MAX    8192
#define IMAP_PREAUTH_LITERAL_MAX 4096
#define IMAP_PREAUTH_CMD_MAX     12288
#define IMAP_PREAUTH_BAD_MAX     10
#define IMAP_RELAY_LINE_MAX      65536
#define IMAP_HOLD_MAX            16384
#define IMAP_META_CMD_MAX        16384
#define IMAP_SEND_HIGH           (256 * 1024)
#define IMAP_LOGIN_TAG           "rm.login"
#define IMAP_ID_TAG              "rm.id"
#define IMAP_TURN_VALID_S        (5 * 86400)

_Static_assert(IMAP_PREAUTH_CMD_MAX <= IMAP_SCRATCH_MAX, "scratch");
_Static_assert(IMAP_META_CMD_MAX <= IMAP_SCRATCH_MAX, "scratch");

enum imap_st {
	IMAP_ST_TLS_WAIT = 0, /* implicit TLS handshake */
	IMAP_ST_PREAUTH,
	IMAP_ST_SASL,    /* AUTHENTICATE PLAIN without initial response */
	IMAP_ST_AUTH,    /* the accounts store decides (or throttle delay) */
	IMAP_ST_DOVECOT, /* logging in to Dovecot */
	IMAP_ST_RELAY,
};

static const char *const imap_st_names[] = {"tls",  "preauth", "sasl",
					    "auth", "dovecot", "relay"};

struct imap_sess {
	struct imap_worker *w;
	struct conn *c; /* the client */
	struct conn *d; /* Dovecot */
	struct tls_ctx *tls;
	enum imap_st st;
	unsigned refs;
	bool c_closed;
	bool closing;
	bool counted;
	/* client -> Dovecot */
	struct imap_parser cp;
	size_t c_held;
	bool c_begun;  /* the current command's start was handled */
	bool c_hold;   /* a METADATA command we may answer ourselves */
	bool c_ready;  /* ... complete, waiting for Dovecot to be quiet */
	bool c_failed; /* pre-auth: command refused (literal too large) */
	bool c_pumping, c_repump;
	bool meta_busy; /* SETMETADATA on the pool */
	/* Dovecot -> client */
	struct imap_parser dp;
	size_t d_held;
	int d_verdict; /* -1: not decided for this response */
	bool d_pumping, d_repump;
	bool d_greeted;
	bool saw_bye;
	unsigned d_outstanding; /* client commands Dovecot has not answered */
	struct imap_idle idle;
	/* pre-auth */
	unsigned bad;
	char tag[IMAP_TAG_MAX + 1]; /* the LOGIN/AUTHENTICATE in progress */
	char user[ACCOUNTS_ADDR_MAX + 1];
	char *pass;
	size_t pass_len;
	struct loop_timer auth_timer;
	bool auth_timer_armed;
	struct accounts_throttle_res auth_res;
	struct loop_timer deadline; /* imap_preauth_deadline */
	struct sockaddr_storage peer;
	struct connlimit_key client;
	bool counted_ip; /* holds a per_ip slot */
	char ip[INET6_ADDRSTRLEN];
	/* logged-in sessions of the worker, by address */
	struct imap_sess *unext, **uprev;
	bool present; /* joined the events presence index */
	uint64_t cmds;
};

static void imap_c_pump(struct imap_sess *s);
static void imap_d_pump(struct imap_sess *s);

/* ---- helpers ---- */

static void imap_enter_state(struct imap_sess *s, enum imap_st st)
{
	log_debug("%016" PRIx64 " imap state %s -> %s",
		  s->c != NULL ? conn_id(s->c) : 0, imap_st_names[s->st],
		  imap_st_names[st]);
	s->st = st;
}

static void imap_unref(struct imap_sess *s)
{
	if (--s->refs > 0)
		return;
	if (s->pass != NULL) {
		explicit_bzero(s->pass, s->pass_len);
		free(s->pass);
	}
	free(s);
}

static void imap_write(struct imap_sess *s, const void *p, size_t n)
{
	if (s->c != NULL && !s->closing)
		(void)conn_write(s->c, p, n);
}

static void imap_printf(struct imap_sess *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void imap_printf(struct imap_sess *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	imap_write(s, line, (size_t)n);
}

static void imap_close(struct imap_sess *s)
{
	if (s->closing || s->c == NULL)
		return;
	s->closing = true;
	conn_close(s->c, true);
}

static void imap_user_register(struct imap_sess *s)
{
	struct imap_sess **head = &s->w->users[imap_user_bucket(s->user)];

	s->unext = *head;
	if (*head != NULL)
		(*head)->uprev = &s->unext;
	s->uprev = head;
	*head = s;
	/* Without presence the session still works; it only misses the
	 * instant wake-up until its next command. */
	s->present =
		s->w->srv->events != NULL &&
		events_presence_join(s->w->srv->events, s->user, s->w->id) == 0;
	if (s->w->srv->events != NULL && !s->present)
		log_warn("imap: presence of %s not recorded: out of memory",
			 s->user);
}

static void imap_user_unregister(struct imap_sess *s)
{
	if (s->uprev == NULL)
		return;
	if (s->present)
		events_presence_leave(s->w->srv->events, s->user, s->w->id);
	s->present = false;
	*s->uprev = s->unext;
	if (s->unext != NULL)
		s->unext->uprev = s->uprev;
	s->uprev = NULL;
	s->unext = NULL;
}

static const char *imap_capabilities(const struct imap_sess *s)
{
	if (conn_is_tls(s->c))
		return "IMAP4rev1 SASL-IR ID IDLE LITERAL+ AUTH=PLAIN "
		       "XDELTAPUSH XCHATMAIL";
	if (s->tls != NULL)
		return "IMAP4rev1 SASL-IR ID IDLE LITERAL+ STARTTLS "
		       "LOGINDISABLED XDELTAPUSH XCHATMAIL";
	return "IMAP4rev1 SASL-IR ID IDLE LITERAL+ LOGINDISABLED "
	       "XDELTAPUSH XCHATMAIL";
}

static void imap_greet(struct imap_sess *s)
{
	imap_printf(s, "* OK [CAPABILITY %s] ringmail ready.\r\n",
		    imap_capabilities(s));
}

/* ---- pre-auth commands ---- */

#define IMAP_CMD_F_NOARG 0x1u /* takes no arguments */

struct imap_cmd {
	const char *name;
	unsigned flags;
	/* Reply, or start something asynchronous (the state says). */
	void (*run)(struct imap_sess *s, struct imap_args *a);
};

static void imap_do_capability(struct imap_sess *s, struct imap_args *a)
{
	(void)a;
	imap_printf(s,
		    "* CAPABILITY %s\r\n%s OK Pre-login capabilities listed, "
		    "post-login capabilities have more.\r\n",
		    imap_capabilities(s), s->tag);
}

static void imap_do_noop(struct imap_sess *s, struct imap_args *a)
{
	(void)a;
	imap_printf(s, "%s OK NOOP completed.\r\n", s->tag);
}

static void imap_do_logout(struct imap_sess *s, struct imap_args *a)
{
	(void)a;
	imap_printf(s, "* BYE Logging out\r\n%s OK Logout completed.\r\n",
		    s->tag);
	imap_close(s);
}

static void imap_do_id(struct imap_sess *s, struct imap_args *a)
{
	(void)a;
	imap_printf(s,
		    "* ID (\"name\" \"ringmail\")\r\n%s OK ID completed.\r\n",
		    s->tag);
}

static void imap_do_starttls(struct imap_sess *s, struct imap_args *a)
{
	(void)a;
	if (conn_is_tls(s->c)) {
		imap_printf(s, "%s BAD TLS is already active.\r\n", s->tag);
		return;
	}
	if (s->tls == NULL) {
		imap_printf(s, "%s BAD TLS support isn't enabled.\r\n", s->tag);
		return;
	}
	imap_printf(s, "%s OK Begin TLS negotiation now.\r\n", s->tag);
	/* Anything pipelined after STARTTLS came in the clear: gone. */
	s->c_held = 0;
	imap_parse_reset(&s->cp);
	if (conn_starttls(s->c, s->tls) < 0) {
		log_conn(LOG_LV_WARN, conn_id(s->c), "imap starttls failed");
		imap_close(s);
	}
}

static void imap_auth_done(enum accounts_result res,
			   const struct accounts_auth_info *info, void *arg);

/* The reserved attempt ends without a verdict. */
static void imap_auth_cancel(struct imap_sess *s)
{
	accounts_throttle_release(s->w->srv->o.throttle,
				  (struct sockaddr *)&s->peer, s->user,
				  ACCOUNTS_THROTTLE_CANCEL,
				  loop_now_ms(s->w->loop), &s->auth_res);
}

static void imap_auth_timer(struct loop_timer *t, void *arg)
{
	struct imap_sess *s = arg;
	struct imap_server *srv = s->w->srv;
	int r;

	(void)t;
	s->auth_timer_armed = false;
	if (s->c_closed || s->closing) {
		imap_auth_cancel(s);
		imap_unref(s);
		return;
	}
	r = accounts_authenticate_async(srv->o.accounts, srv->o.pool,
					s->w->loop, s->user, s->pass,
					s->pass_len, imap_auth_done, s);
	explicit_bzero(s->pass, s->pass_len);
	free(s->pass);
	s->pass = NULL;
	if (r < 0) {
		imap_auth_cancel(s);
		imap_printf(s,
			    "%s NO [UNAVAILABLE] Temporary authentication "
			    "failure.\r\n",
			    s->tag);
		imap_enter_state(s, IMAP_ST_PREAUTH);
		imap_c_pump(s);
		imap_unref(s);
	}
	/* else the authentication holds the timer's reference */
}

/* Authenticate @user/@pass (then log in to Dovecot). */
static void imap_login_start(struct imap_sess *s, const char *user,
			     size_t user_len, const char *pass, size_t pass_len)
{
	struct imap_worker *w = s->w;
	int64_t delay;

	if (!conn_is_tls(s->c)) {
		imap_printf(s,
			    "%s NO [PRIVACYREQUIRED] Plaintext authentication "
			    "disallowed on non-secure (SSL/TLS) "
			    "connections.\r\n",
			    s->tag);
		return;
	}
	if (user_len == 0 || user_len > ACCOUNTS_ADDR_MAX || pass_len == 0 ||
	    pass_len > ACCOUNTS_PASSWORD_MAX || memchr(user, '\0', user_len)) {
		imap_printf(s,
			    "%s NO [AUTHENTICATIONFAILED] Authentication "
			    "failed.\r\n",
			    s->tag);
		return;
	}
	memcpy(s->user, user, user_len);
	s->user[user_len] = '\0';
	delay = accounts_throttle_reserve(w->srv->o.throttle,
					  (struct sockaddr *)&s->peer, s->user,
					  loop_now_ms(w->loop), &s->auth_res);
	if (delay == ACCOUNTS_THROTTLE_REFUSE) {
		log_conn(LOG_LV_INFO, conn_id(s->c),
			 "imap login user=<%s> result=throttled from=%s",
			 s->user, s->ip);
		imap_printf(s,
			    "%s NO [UNAVAILABLE] Too many failed logins, try "
			    "again later.\r\n",
			    s->tag);
		return;
	}
	s->pass = malloc(pass_len + 1);
	if (s->pass == NULL) {
		imap_auth_cancel(s);
		imap_printf(s, "%s NO [UNAVAILABLE] Out of memory.\r\n",
			    s->tag);
		return;
	}
	memcpy(s->pass, pass, pass_len);
	s->pass[pass_len] = '\0';
	s->pass_len = pass_len;
	imap_enter_state(s, IMAP_ST_AUTH);
	s->refs++;
	s->auth_timer_armed = true;
	loop_timer_arm(w->loop, &s->auth_timer, (uint64_t)delay);
}

static void imap_do_login(struct imap_sess *s, struct imap_args *a)
{
	struct imap_arg u, p, end;

	if (!imap_arg_is_string((imap_args_next(a, &u), &u)) ||
	    !imap_arg_is_string((imap_args_next(a, &p), &p)) ||
	    imap_args_next(a, &end) != IMAP_ARG_EOL) {
		imap_printf(s,
			    "%s BAD Error in IMAP command LOGIN: Invalid "
			    "arguments.\r\n",
			    s->tag);
		return;
	}
	imap_login_start(s, (const char *)u.data, u.len, (const char *)p.data,
			 p.len);
	explicit_bzero((void *)p.data, p.len);
}

/* A PLAIN response (initial or on its own line), base64. */
static void imap_sasl_plain(struct imap_sess *s, const char *b64, size_t len)
{
	struct sasl_plain pl;
	int r;

	if (len == 1 && b64[0] == '*') {
		imap_printf(s, "%s BAD Authentication aborted by client.\r\n",
			    s->tag);
		return;
	}
	r = sasl_plain_decode(b64, len, &pl);
	if (r != SASL_PLAIN_OK) {
		imap_printf(s, "%s %s\r\n", s->tag,
			    r == SASL_PLAIN_ERR_BASE64
				    ? "BAD Invalid base64 data in continued "
				      "response"
				    : "NO [AUTHENTICATIONFAILED] "
				      "Authentication failed.");
		return;
	}
	imap_login_start(s, pl.authcid, pl.authcid_len, pl.password,
			 pl.password_len);
	sasl_plain_wipe(&pl);
}

static void imap_do_authenticate(struct imap_sess *s, struct imap_args *a)
{
	struct imap_arg mech, ir, end;

	imap_args_next(a, &mech);
	if (!imap_arg_is_string(&mech)) {
		imap_printf(s,
			    "%s BAD Error in IMAP command AUTHENTICATE: "
			    "Invalid arguments.\r\n",
			    s->tag);
		return;
	}
	if (!imap_arg_is(&mech, "PLAIN")) {
		imap_printf(s,
			    "%s NO Unsupported authentication mechanism.\r\n",
			    s->tag);
		return;
	}
	if (!conn_is_tls(s->c)) {
		imap_printf(s,
			    "%s NO [PRIVACYREQUIRED] Plaintext authentication "
			    "disallowed on non-secure (SSL/TLS) "
			    "connections.\r\n",
			    s->tag);
		return;
	}
	imap_args_next(a, &ir);
	if (ir.type == IMAP_ARG_EOL) {
		imap_write(s, "+ \r\n", 4);
		imap_enter_state(s, IMAP_ST_SASL);
		return;
	}
	if (!imap_arg_is_string(&ir) ||
	    imap_args_next(a, &end) != IMAP_ARG_EOL) {
		imap_printf(s,
			    "%s BAD Error in IMAP command AUTHENTICATE: "
			    "Invalid arguments.\r\n",
			    s->tag);
		return;
	}
	if (ir.len == 1 && ir.data[0] == '=')
		ir.len = 0; /* RFC 4959: empty initial response */
	imap_sasl_plain(s, (const char *)ir.data, ir.len);
}

static const struct imap_cmd imap_preauth_cmds[] = {
	{"CAPABILITY", IMAP_CMD_F_NOARG, imap_do_capability},
	{"NOOP", 0, imap_do_noop},
	{"LOGOUT", IMAP_CMD_F_NOARG, imap_do_logout},
	{"ID", 0, imap_do_id},
	{"STARTTLS", IMAP_CMD_F_NOARG, imap_do_starttls},
	{"LOGIN", 0, imap_do_login},
	{"AUTHENTICATE", 0, imap_do_authenticate},
	{NULL, 0, NULL},
};

static bool imap_tag_ok(const char *tag)
{
	if (tag[0] == '\0')
		return false;
	for (; *tag != '\0'; tag++) {
		unsigned char ch = (unsigned char)*tag;

		if (ch <= ' ' || ch >= 0x7f || ch == '(' || ch == ')' ||
		    ch == '{' || ch == '%' || ch == '*' || ch == '"' ||
		    ch == '\\' || ch == '+')
			return false;
	}
	return true;
}

static void imap_bad(struct imap_sess *s, const char *tag, const char *text)
{
	imap_printf(s, "%s BAD %s\r\n", tag, text);
	if (++s->bad >= IMAP_PREAUTH_BAD_MAX) {
		imap_printf(s, "* BYE Too many invalid IMAP commands.\r\n");
		imap_close(s);
	}
}

/* A complete pre-auth command is held in the input: answer it. */
static void imap_preauth_dispatch(struct imap_sess *s)
{
	uint8_t *cmd = s->w->scratch;
	size_t len = s->c_held;
	const struct imap_cmd *e;
	struct imap_args a;
	struct imap_arg first;

	memcpy(cmd, buf_head(conn_input(s->c)), len);
	conn_consume(s->c, len);
	s->c_held = 0;
	s->cmds++;
	if (s->st == IMAP_ST_SASL) {
		size_t n = len;

		imap_enter_state(s, IMAP_ST_PREAUTH);
		while (n > 0 && (cmd[n - 1] == '\n' || cmd[n - 1] == '\r'))
			n--;
		imap_sasl_plain(s, (const char *)cmd, n);
		explicit_bzero(cmd, len);
		return;
	}
	if (!imap_tag_ok(s->cp.tag) || s->cp.tag_truncated) {
		imap_bad(s, "*", "Invalid tag.");
		return;
	}
	snprintf(s->tag, sizeof(s->tag), "%s", s->cp.tag);
	if (s->cp.name_len == 0) {
		imap_bad(s, s->tag,
			 "Error in IMAP command received by server.");
		return;
	}
	for (e = imap_preauth_cmds; e->name != NULL; e++) {
		if (strcmp(e->name, s->cp.name) == 0)
			break;
	}
	if (e->name == NULL) {
		imap_bad(s, s->tag,
			 "Error in IMAP command received by server.");
		return;
	}
	imap_args_init(&a, cmd, len);
	if ((e->flags & IMAP_CMD_F_NOARG) != 0) {
		struct imap_args probe = a;

		if (imap_args_next(&probe, &first) != IMAP_ARG_EOL) {
			imap_bad(s, s->tag,
				 "Error in IMAP command: Unexpected "
				 "arguments.");
			return;
		}
	}
	e->run(s, &a);
	explicit_bzero(cmd, len);
}

/* One framing event in the pre-auth states. false: stop pumping. */
static bool imap_preauth_event(struct imap_sess *s, enum imap_parse_status r)
{
	switch (r) {
	case IMAP_PARSE_INVALID:
		conn_consume(s->c, s->c_held);
		s->c_held = 0;
		s->c_failed = false;
		if (s->cp.error == IMAP_PERR_TOO_LONG) {
			imap_printf(s, "* BYE Input line too long.\r\n");
			imap_close(s);
			return false;
		}
		if (s->cp.lines == 1 && s->cp.tag_len == 0)
			return true; /* an empty line: ignored */
		imap_bad(s, "*", "Error in IMAP command received by server.");
		return true;
	case IMAP_PARSE_LITERAL:
		if (s->c_failed || s->st == IMAP_ST_SASL ||
		    s->cp.literal > IMAP_PREAUTH_LITERAL_MAX ||
		    s->c_held + s->cp.literal > IMAP_PREAUTH_CMD_MAX) {
			conn_consume(s->c, s->c_held);
			s->c_held = 0;
			if (s->cp.literal_sync) {
				/* The client waits: refuse, it is over. */
				imap_parse_drop_literal(&s->cp);
				s->c_failed = false;
				imap_bad(s,
					 imap_tag_ok(s->cp.tag) ? s->cp.tag
								: "*",
					 "Literal too large.");
				return !s->closing;
			}
			s->c_failed = true; /* LITERAL+: skip it */
			return true;
		}
		if (s->cp.literal_sync)
			imap_write(s, "+ OK\r\n", 6);
		return true;
	case IMAP_PARSE_CMD:
		if (s->c_failed) {
			conn_consume(s->c, s->c_held);
			s->c_held = 0;
			s->c_failed = false;
			imap_bad(s, imap_tag_ok(s->cp.tag) ? s->cp.tag : "*",
				 "Literal too large.");
			return !s->closing;
		}
		imap_preauth_dispatch(s);
		return !s->closing;
	case IMAP_PARSE_AGAIN:
		break;
	}
	return true;
}

/* ---- the Dovecot side ---- */

static void imap_d_ev(struct conn *c, enum conn_ev ev, void *arg);

static void imap_dovecot_connect(struct imap_sess *s)
{
	struct imap_server *srv = s->w->srv;

	imap_enter_state(s, IMAP_ST_DOVECOT);
	imap_parser_init(&s->dp, true, IMAP_RELAY_LINE_MAX);
	s->d_held = 0;
	s->d_verdict = -1;
	s->d_greeted = false;
	s->refs++;
	s->d = conn_connect(s->w->loop, (struct sockaddr *)&srv->dovecot_addr,
			    sizeof(srv->dovecot_addr), NULL, NULL,
			    IMAP_INPUT_MAX, imap_d_ev, s);
	if (s->d == NULL) {
		s->refs--;
		log_conn(LOG_LV_ERR, conn_id(s->c),
			 "imap dovecot connect failed");
		imap_printf(s,
			    "%s NO [UNAVAILABLE] Mailbox store not "
			    "available.\r\n",
			    s->tag);
		imap_enter_state(s, IMAP_ST_PREAUTH);
	}
}

static void imap_auth_done(enum accounts_result res,
			   const struct accounts_auth_info *info, void *arg)
{
	struct imap_sess *s = arg;
	struct imap_worker *w = s->w;
	bool ok = res == ACCOUNTS_OK || res == ACCOUNTS_CREATED;

	/* The verdict counts even if the client is gone meanwhile. */
	accounts_throttle_release(
		w->srv->o.throttle, (struct sockaddr *)&s->peer, info->addr,
		ok                         ? ACCOUNTS_THROTTLE_SUCCESS
		: res == ACCOUNTS_TEMPFAIL ? ACCOUNTS_THROTTLE_CANCEL
					   : ACCOUNTS_THROTTLE_FAILURE,
		loop_now_ms(w->loop), &s->auth_res);
	if (s->c_closed || s->closing) {
		log_info("imap auth user=<%s> result=%s from=%s (client gone)",
			 info->addr,
			 ok                         ? "ok"
			 : res == ACCOUNTS_TEMPFAIL ? "tempfail"
						    : "failed",
			 s->ip);
		imap_unref(s);
		return;
	}
	log_conn(LOG_LV_INFO, conn_id(s->c),
		 "imap auth user=<%s> result=%s%s%s from=%s", info->addr,
		 res == ACCOUNTS_CREATED    ? "created"
		 : ok                       ? "ok"
		 : res == ACCOUNTS_TEMPFAIL ? "tempfail"
					    : "failed",
		 info->reason[0] != '\0' ? " reason=" : "", info->reason,
		 s->ip);
	if (ok) {
		snprintf(s->user, sizeof(s->user), "%s", info->addr);
		imap_dovecot_connect(s);
		if (s->st == IMAP_ST_PREAUTH)
			imap_c_pump(s); /* the connect failed at once */
	} else {
		imap_printf(s, "%s %s\r\n", s->tag,
			    res == ACCOUNTS_TEMPFAIL
				    ? "NO [UNAVAILABLE] Temporary "
				      "authentication failure."
				    : "NO [AUTHENTICATIONFAILED] "
				      "Authentication failed.");
		imap_enter_state(s, IMAP_ST_PREAUTH);
		imap_c_pump(s);
	}
	imap_unref(s);
}

static void imap_dovecot_fail(struct imap_sess *s, const char *why)
{
	log_conn(LOG_LV_ERR, conn_id(s->c),
		 "imap dovecot login failed user=<%s> reason=\"%s\"", s->user,
		 why);
	imap_printf(s,
		    "%s NO [UNAVAILABLE] Internal error occurred. Refer to "
		    "server log for more information.\r\n",
		    s->tag);
	imap_enter_state(s, IMAP_ST_PREAUTH);
	if (s->d != NULL)
		conn_close(s->d, false);
	imap_c_pump(s);
}

static void imap_dovecot_logged_in(struct imap_sess *s, const uint8_t *line,
				   size_t len)
{
	struct imap_server *srv = s->w->srv;
	size_t skip = sizeof(IMAP_LOGIN_TAG) - 1;

	/* "rm.login OK [CAPABILITY ...] Logged in": the client's tag. */
	imap_write(s, s->tag, strlen(s->tag));
	imap_write(s, line + skip, len - skip);
	imap_enter_state(s, IMAP_ST_RELAY);
	s->cp.max_line = IMAP_RELAY_LINE_MAX;
	imap_idle_init(&s->idle);
	s->d_outstanding = 0;
	conn_set_timeout(s->c, 0); /* Dovecot's autologout rules now */
	loop_timer_disarm(s->w->loop, &s->deadline);
	imap_user_register(s);
	(void)accounts_touch_last_login_async(srv->o.accounts, srv->o.pool,
					      s->user, (int64_t)time(NULL));
	log_conn(LOG_LV_INFO, conn_id(s->c), "imap login user=<%s> from=%s",
		 s->user, s->ip);
}

/* One complete response line during the Dovecot login. */
static void imap_dovecot_line(struct imap_sess *s, const uint8_t *line,
			      size_t len)
{
	struct imap_server *srv = s->w->srv;
	char cmd[512];
	int n;

	if (!s->d_greeted) {
		if (strcmp(s->dp.tag, "*") != 0 ||
		    strcmp(s->dp.name, "OK") != 0) {
			imap_dovecot_fail(s, "no greeting");
			return;
		}
		s->d_greeted = true;
		n = snprintf(
			cmd, sizeof(cmd),
			IMAP_ID_TAG
			" ID (\"x-originating-ip\" \"%s\")\r\n" IMAP_LOGIN_TAG
			" LOGIN \"%s" DOVECOT_MASTER_SEP DOVECOT_MASTER_USER
			"\" \"%s\"\r\n",
			s->ip, s->user, srv->secret);
		if (n > 0 && (size_t)n < sizeof(cmd))
			(void)conn_write(s->d, cmd, (size_t)n);
		explicit_bzero(cmd, sizeof(cmd));
		return;
	}
	if (strcmp(s->dp.tag, IMAP_LOGIN_TAG) != 0)
		return; /* untagged, or the ID reply */
	if (strcmp(s->dp.name, "OK") != 0) {
		imap_dovecot_fail(s, "master login refused");
		return;
	}
	imap_dovecot_logged_in(s, line, len);
}

/* ---- METADATA (spec H.1, H.5) ---- */

struct imap_meta_job {
	struct imap_sess *s;
	struct accounts *accounts;
	char tag[IMAP_TAG_MAX + 1];
	char user[ACCOUNTS_ADDR_MAX + 1];
	int result;
	size_t len;
	char token[]; /* NUL-terminated */
};

static void imap_meta_work(void *arg)
{
	struct imap_meta_job *j = arg;
	int64_t now = (int64_t)time(NULL);

	j->result = accounts_tokens_add(j->accounts, j->user, j->token, j->len,
					now, now);
}

static void imap_meta_done(void *arg)
{
	struct imap_meta_job *j = arg;
	struct imap_sess *s = j->s;

	s->meta_busy = false;
	if (!s->c_closed && !s->closing) {
		if (j->result < 0) {
			log_conn(LOG_LV_ERR, conn_id(s->c),
				 "imap setmetadata user=<%s> error=\"%s\"",
				 j->user, strerror(-j->result));
			imap_printf(s,
				    "%s NO [SERVERBUG] Internal error "
				    "occurred.\r\n",
				    j->tag);
		} else {
			imap_printf(s, "%s OK Setmetadata completed.\r\n",
				    j->tag);
		}
		imap_c_pump(s);
	}
	free(j);
	imap_unref(s);
}

static void imap_meta_value(struct imap_sess *s, const char *entry,
			    const char *value, bool *first, bool server)
{
	char head[160];
	int n;

	n = snprintf(head, sizeof(head), "%s%s", *first ? "" : " ", entry);
	if (*first) {
		imap_printf(s, "* METADATA %s (", server ? "\"\"" : "INBOX");
		*first = false;
	}
	if (n > 0)
		imap_write(s, head, (size_t)n);
	if (value == NULL || value[0] == '\0') {
		imap_write(s, " NIL", 4);
		return;
	}
	imap_printf(s, " {%zu}\r\n", strlen(value));
	imap_write(s, value, strlen(value));
}

/* TURN-REST credentials: <domain>:3478:<expiry>:<base64 HMAC-SHA1>. */
static void imap_meta_turn(struct imap_sess *s, char *out, size_t cap)
{
	struct imap_server *srv = s->w->srv;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned md_len = 0;
	char user[32], b64[64];

	out[0] = '\0';
	snprintf(user, sizeof(user), "%lld",
		 (long long)time(NULL) + IMAP_TURN_VALID_S);
	if (HMAC(EVP_sha1(), srv->turn_secret, (int)strlen(srv->turn_secret),
		 (const unsigned char *)user, strlen(user), md,
		 &md_len) == NULL)
		return;
	EVP_EncodeBlock((unsigned char *)b64, md, (int)md_len);
	snprintf(out, cap, "%s:3478:%s:%s", srv->mail_domain_bare, user, b64);
}

static const char *const imap_meta_server_keys[] = {
	"/shared/vendor/deltachat/irohrelay",
	"/shared/vendor/deltachat/turn",
	"/shared/vendor/deltachat/maxsmtprecipients",
	"/shared/vendor/deltachat/appversions",
	"/shared/admin",
	"/shared/comment",
	NULL,
};

static bool imap_meta_server_key(const struct imap_arg *e)
{
	for (const char *const *k = imap_meta_server_keys; *k != NULL; k++) {
		if (imap_arg_is(e, *k))
			return true;
	}
	return false;
}

/* GETMETADATA: 1 answered, -1 not ours (Dovecot's). */
static int imap_meta_get(struct imap_sess *s, struct imap_args *a)
{
	struct imap_server *srv = s->w->srv;
	struct imap_arg mbox, e;
	struct imap_args scan;
	bool server, paren = false, first = true;
	char turn[256];

	if (imap_args_next(a, &mbox) == IMAP_ARG_LPAREN ||
	    !imap_arg_is_string(&mbox))
		return -1; /* options, or junk: Dovecot answers */
	if (mbox.len == 0 && mbox.type != IMAP_ARG_ATOM)
		server = true;
	else if (imap_arg_is(&mbox, "INBOX"))
		server = false;
	else
		return -1;
	/* Every entry must be one of ours. */
	scan = *a;
	imap_args_next(&scan, &e);
	if (e.type == IMAP_ARG_LPAREN) {
		paren = true;
		imap_args_next(&scan, &e);
	}
	if (e.type == IMAP_ARG_EOL || e.type == IMAP_ARG_RPAREN)
		return -1;
	for (;;) {
		if (!imap_arg_is_string(&e))
			return -1;
		if (server ? !imap_meta_server_key(&e)
			   : !imap_arg_is(&e, "/private/devicetoken"))
			return -1;
		imap_args_next(&scan, &e);
		if (!paren)
			break;
		if (e.type == IMAP_ARG_RPAREN) {
			imap_args_next(&scan, &e);
			break;
		}
	}
	if (e.type != IMAP_ARG_EOL)
		return -1;
	/* Answer, in the order asked. */
	imap_args_next(a, &e);
	if (paren)
		imap_args_next(a, &e);
	while (imap_arg_is_string(&e)) {
		char name[64];
		size_t n = e.len < sizeof(name) - 1 ? e.len : sizeof(name) - 1;

		for (size_t i = 0; i < n; i++) {
			char ch = (char)e.data[i];

			name[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
		}
		name[n] = '\0';
		if (!server) {
			struct accounts_tokens *t = NULL;
			char *joined = NULL;
			size_t total = 0, off = 0;

			if (accounts_tokens_get(srv->o.accounts, s->user,
						(int64_t)time(NULL), &t) == 0) {
				for (size_t i = 0; i < t->n; i++)
					total += t->t[i].len + 1;
				joined = total > 0 ? malloc(total) : NULL;
				for (size_t i = 0; joined && i < t->n; i++) {
					if (off > 0)
						joined[off++] = ' ';
					memcpy(joined + off, t->t[i].token,
					       t->t[i].len);
					off += t->t[i].len;
				}
				if (joined != NULL)
					joined[off] = '\0';
			}
			imap_meta_value(s, name, joined, &first, false);
			free(joined);
			free(t);
		} else if (strcmp(name, "/shared/vendor/deltachat/irohrelay") ==
			   0) {
			imap_meta_value(s, name, srv->iroh_relay, &first, true);
		} else if (strcmp(name, "/shared/vendor/deltachat/turn") == 0) {
			turn[0] = '\0';
			if (srv->turn_secret != NULL)
				imap_meta_turn(s, turn, sizeof(turn));
			imap_meta_value(s, name, turn, &first, true);
		} else if (strcmp(name, "/shared/vendor/deltachat/"
					"maxsmtprecipients") == 0) {
			imap_meta_value(s, name, "1000", &first, true);
		} else if (strcmp(name,
				  "/shared/vendor/deltachat/appversions") ==
			   0) {
			imap_meta_value(s, name, srv->appversions, &first,
					true);
		} else if (strcmp(name, "/shared/admin") == 0) {
			char admin[300] = "";

			if (srv->privacy_mail != NULL)
				snprintf(admin, sizeof(admin), "mailto:%s",
					 srv->privacy_mail);
			imap_meta_value(s, name, admin, &first, true);
		} else {
			imap_meta_value(s, name, NULL, &first, true);
		}
		imap_args_next(a, &e);
	}
	imap_printf(s, ")\r\n%s OK Getmetadata completed.\r\n", s->tag);
	return 1;
}

/* SETMETADATA INBOX (/private/devicetoken "<t>"): 0 started, -1 not ours,
 * 1 answered. */
static int imap_meta_set(struct imap_sess *s, struct imap_args *a)
{
	struct imap_server *srv = s->w->srv;
	struct imap_arg mbox, lp, key, val, rp, end;
	struct imap_meta_job *j;

	imap_args_next(a, &mbox);
	imap_args_next(a, &lp);
	imap_args_next(a, &key);
	imap_args_next(a, &val);
	imap_args_next(a, &rp);
	imap_args_next(a, &end);
	if (!imap_arg_is(&mbox, "INBOX") || lp.type != IMAP_ARG_LPAREN ||
	    !imap_arg_is(&key, "/private/devicetoken") ||
	    (val.type != IMAP_ARG_QUOTED && val.type != IMAP_ARG_LITERAL) ||
	    rp.type != IMAP_ARG_RPAREN || end.type != IMAP_ARG_EOL)
		return -1;
	if (val.len == 0 || val.len > ACCOUNTS_TOKEN_MAX ||
	    memchr(val.data, '\0', val.len) != NULL ||
	    memchr(val.data, ' ', val.len) != NULL) {
		imap_printf(s, "%s NO [METADATA TOOLARGE] Invalid token.\r\n",
			    s->tag);
		return 1;
	}
	j = malloc(sizeof(*j) + val.len + 1);
	if (j == NULL) {
		imap_printf(s, "%s NO [SERVERBUG] Out of memory.\r\n", s->tag);
		return 1;
	}
	j->s = s;
	j->accounts = srv->o.accounts;
	snprintf(j->tag, sizeof(j->tag), "%s", s->tag);
	snprintf(j->user, sizeof(j->user), "%s", s->user);
	memcpy(j->token, val.data, val.len);
	j->token[val.len] = '\0';
	j->len = val.len;
	j->result = 0;
	s->refs++;
	s->meta_busy = true;
	if (pool_submit(srv->o.pool, s->w->loop, imap_meta_work, imap_meta_done,
			j) < 0) {
		s->refs--;
		s->meta_busy = false;
		free(j);
		imap_printf(s, "%s NO [SERVERBUG] Internal error.\r\n", s->tag);
		return 1;
	}
	return 0;
}

/* The held METADATA command is complete and Dovecot is quiet. */
static void imap_meta_run(struct imap_sess *s)
{
	uint8_t *cmd = s->w->scratch;
	size_t len = s->c_held;
	struct imap_args a;
	int r;

	memcpy(cmd, buf_head(conn_input(s->c)), len);
	snprintf(s->tag, sizeof(s->tag), "%s", s->cp.tag);
	imap_args_init(&a, cmd, len);
	if (!imap_tag_ok(s->tag) || s->cp.tag_truncated)
		r = -1;
	else if (strcmp(s->cp.name, "GETMETADATA") == 0)
		r = imap_meta_get(s, &a);
	else
		r = imap_meta_set(s, &a);
	s->c_ready = false;
	s->c_hold = false;
	s->c_begun = false;
	if (r < 0) {
		/* Not ours: Dovecot answers, the octets go as they came. */
		s->d_outstanding++;
		(void)conn_write(s->d, buf_head(conn_input(s->c)), len);
	}
	conn_consume(s->c, len);
	s->c_held = 0;
}

/* ---- relay: client -> Dovecot ---- */

static void imap_c_forward_held(struct imap_sess *s)
{
	if (s->c_held == 0)
		return;
	(void)conn_write(s->d, buf_head(conn_input(s->c)), s->c_held);
	conn_consume(s->c, s->c_held);
	s->c_held = 0;
}

/* The first framing event (or overflow) of a client command. */
static void imap_c_begin(struct imap_sess *s)
{
	s->c_begun = true;
	s->cmds++;
	if (imap_idle_client_idling(&s->idle)) {
		imap_idle_client_done(&s->idle); /* "DONE" (or junk) */
		return;
	}
	imap_idle_client_cmd(&s->idle, s->cp.tag, s->cp.tag_truncated,
			     s->cp.name);
	if (strcmp(s->cp.name, "GETMETADATA") == 0 ||
	    strcmp(s->cp.name, "SETMETADATA") == 0) {
		s->c_hold = true;
		return; /* counted when forwarded */
	}
	s->d_outstanding++;
}

static void imap_c_unhold(struct imap_sess *s)
{
	if (!s->c_hold)
		return;
	s->c_hold = false;
	s->d_outstanding++;
}

static bool imap_relay_c_event(struct imap_sess *s, enum imap_parse_status r)
{
	if (!s->c_begun)
		imap_c_begin(s);
	switch (r) {
	case IMAP_PARSE_LITERAL:
		if (s->c_hold &&
		    (s->cp.literal_sync ||
		     s->c_held + s->cp.literal > IMAP_META_CMD_MAX))
			imap_c_unhold(s); /* Dovecot sends the "+" */
		if (!s->c_hold)
			imap_c_forward_held(s);
		return true;
	case IMAP_PARSE_CMD:
		if (s->c_hold) {
			s->c_ready = true;
			return false; /* imap_c_pump runs it when quiet */
		}
		imap_c_forward_held(s);
		s->c_begun = false;
		return true;
	case IMAP_PARSE_INVALID:
		imap_c_unhold(s);
		imap_c_forward_held(s);
		s->c_begun = false;
		return true;
	case IMAP_PARSE_AGAIN:
		break;
	}
	return true;
}

/* The input past the @held octets already framed, cut at the end of the
 * literal @p is in (its octets go through unframed); 0 when none. */
static size_t imap_unparsed(struct buf *in, size_t held,
			    const struct imap_parser *p, const uint8_t **data_r)
{
	size_t len;

	if (in->len <= held)
		return 0;
	*data_r = buf_head(in) + held;
	len = in->len - held;
	if (imap_parse_in_literal(p) > 0 &&
	    (uint64_t)len > imap_parse_in_literal(p))
		len = (size_t)imap_parse_in_literal(p);
	return len;
}

static void imap_c_pump(struct imap_sess *s)
{
	const uint8_t *data;
	size_t len, used;
	enum imap_parse_status r;

	if (s->c_pumping) {
		s->c_repump = true;
		return;
	}
	s->c_pumping = true;
	for (;;) {
		s->c_repump = false;
		if (s->c == NULL || s->closing)
			break;
		if (s->st == IMAP_ST_AUTH || s->st == IMAP_ST_DOVECOT ||
		    s->st == IMAP_ST_TLS_WAIT)
			break;
		if (s->st == IMAP_ST_RELAY) {
			if (s->d == NULL || s->meta_busy ||
			    conn_pending(s->d) > IMAP_SEND_HIGH)
				break;
			if (s->c_ready) {
				if (s->d_outstanding > 0)
					break; /* imap_d_pump calls back */
				imap_meta_run(s);
				continue;
			}
		}
		len = imap_unparsed(conn_input(s->c), s->c_held, &s->cp, &data);
		if (len == 0)
			break;
		if (s->st == IMAP_ST_RELAY && !s->c_hold &&
		    imap_parse_in_literal(&s->cp) > 0) {
			/* Literal data: straight through. */
			(void)imap_parse(&s->cp, data, len, &used);
			(void)conn_write(s->d, data, used);
			conn_consume(s->c, used);
			continue;
		}
		r = imap_parse(&s->cp, data, len, &used);
		s->c_held += used;
		if (r == IMAP_PARSE_AGAIN) {
			if (s->st != IMAP_ST_RELAY) {
				if (s->c_failed ||
				    s->c_held > IMAP_PREAUTH_CMD_MAX) {
					/* skipping a refused literal */
					conn_consume(s->c, s->c_held);
					s->c_held = 0;
					s->c_failed = true;
				}
				continue;
			}
			if (!s->c_begun && s->c_held > IMAP_HOLD_MAX)
				imap_c_begin(s);
			if (s->c_hold && s->c_held > IMAP_META_CMD_MAX)
				imap_c_unhold(s);
			if (s->c_begun && !s->c_hold &&
			    s->c_held > IMAP_HOLD_MAX)
				imap_c_forward_held(s);
			continue;
		}
		if (s->st == IMAP_ST_RELAY) {
			if (!imap_relay_c_event(s, r))
				continue; /* c_ready: checked above */
		} else if (!imap_preauth_event(s, r)) {
			break;
		}
	}
	s->c_pumping = false;
}

/* ---- relay: Dovecot -> client ---- */

static int imap_d_verdict(struct imap_sess *s)
{
	enum imap_idle_verdict v = imap_idle_server_line(&s->idle, s->dp.tag);
	bool untagged = strcmp(s->dp.tag, "*") == 0;

	if (v == IMAP_IDLE_FORWARD && !untagged &&
	    strcmp(s->dp.tag, "+") != 0 && s->d_outstanding > 0)
		s->d_outstanding--;
	if (untagged && strcmp(s->dp.name, "BYE") == 0)
		s->saw_bye = true;
	return (int)v;
}

static void imap_d_flush_held(struct imap_sess *s)
{
	if (s->d_held == 0)
		return;
	if (s->d_verdict == IMAP_IDLE_FORWARD)
		imap_write(s, buf_head(conn_input(s->d)), s->d_held);
	conn_consume(s->d, s->d_held);
	s->d_held = 0;
}

static void imap_wake(struct imap_sess *s)
{
	char buf[IMAP_IDLE_WAKE_MAX];
	size_t n;

	if (s->st != IMAP_ST_RELAY || s->d == NULL)
		return;
	n = imap_idle_wake(&s->idle, buf, sizeof(buf));
	if (n > 0) {
		(void)conn_write(s->d, buf, n);
		log_debug("%016" PRIx64 " imap wake user=<%s>", conn_id(s->c),
			  s->user);
	}
}

static void imap_d_pump(struct imap_sess *s)
{
	const uint8_t *data;
	size_t len, used;
	enum imap_parse_status r;
	bool c_waiting;

	if (s->d_pumping) {
		s->d_repump = true;
		return;
	}
	s->d_pumping = true;
	for (;;) {
		s->d_repump = false;
		if (s->d == NULL || s->c == NULL || s->closing)
			break;
		if (s->st != IMAP_ST_DOVECOT && s->st != IMAP_ST_RELAY)
			break;
		if (conn_pending(s->c) > IMAP_SEND_HIGH)
			break; /* resumed by the client's DRAINED */
		len = imap_unparsed(conn_input(s->d), s->d_held, &s->dp, &data);
		if (len == 0)
			break;
		if (s->d_verdict >= 0 && imap_parse_in_literal(&s->dp) > 0) {
			(void)imap_parse(&s->dp, data, len, &used);
			if (s->d_verdict == IMAP_IDLE_FORWARD &&
			    s->st == IMAP_ST_RELAY)
				imap_write(s, data, used);
			conn_consume(s->d, used);
			continue;
		}
		r = imap_parse(&s->dp, data, len, &used);
		s->d_held += used;
		if (s->st == IMAP_ST_DOVECOT) {
			if (r == IMAP_PARSE_AGAIN) {
				if (s->d_held > IMAP_HOLD_MAX) {
					imap_dovecot_fail(s, "line too long");
					break;
				}
				continue;
			}
			if (r == IMAP_PARSE_CMD)
				imap_dovecot_line(s, buf_head(conn_input(s->d)),
						  s->d_held);
			if (s->d != NULL) {
				conn_consume(s->d, s->d_held);
				s->d_held = 0;
			}
			if (s->st == IMAP_ST_RELAY)
				imap_c_pump(s); /* what was pipelined */
			continue;
		}
		if (r == IMAP_PARSE_AGAIN) {
			if (s->d_held > IMAP_HOLD_MAX) {
				if (s->d_verdict < 0)
					s->d_verdict = imap_d_verdict(s);
				imap_d_flush_held(s);
			}
			continue;
		}
		if (s->d_verdict < 0)
			s->d_verdict = imap_d_verdict(s);
		imap_d_flush_held(s);
		if (r == IMAP_PARSE_LITERAL)
			continue;
		s->d_verdict = -1;
		if (imap_idle_wake_due(&s->idle))
			imap_wake(s);
		c_waiting = s->c_ready && s->d_outstanding == 0;
		if (c_waiting)
			imap_c_pump(s);
	}
	s->d_pumping = false;
}

static void imap_d_ev(struct conn *c, enum conn_ev ev, void *arg)
{
	struct imap_sess *s = arg;

	(void)c;
	switch (ev) {
	case CONN_EV_DATA:
		imap_d_pump(s);
		break;
	case CONN_EV_DRAINED:
		imap_c_pump(s);
		break;
	case CONN_EV_CLOSED:
		log_debug("%016" PRIx64 " imap dovecot closed reason=\"%s\"",
			  s->c != NULL ? conn_id(s->c) : 0,
			  conn_close_reason(c));
		if (s->d != c) {
			/* An earlier, failed login's connection. */
			imap_unref(s);
			break;
		}
		s->d = NULL;
		if (s->c != NULL && !s->closing) {
			if (s->st == IMAP_ST_DOVECOT) {
				imap_dovecot_fail(s, conn_close_reason(c));
			} else if (s->st == IMAP_ST_RELAY) {
				if (!s->saw_bye)
					imap_printf(s, "* BYE Mailbox store "
						       "disconnected.\r\n");
				imap_close(s);
			}
		}
		imap_unref(s);
		break;
	case CONN_EV_CONNECTED:
	case CONN_EV_TLS_READY:
	case CONN_EV_TIMEOUT:
		break;
	}
}

/* ---- the client side ---- */

static void imap_c_ev(struct conn *c, enum conn_ev ev, void *arg)
{
	struct imap_sess *s = arg;

	switch (ev) {
	case CONN_EV_TLS_READY:
		if (s->st == IMAP_ST_TLS_WAIT) {
			imap_enter_state(s, IMAP_ST_PREAUTH);
			imap_greet(s);
		}
		imap_c_pump(s);
		break;
	case CONN_EV_DATA:
		imap_c_pump(s);
		break;
	case CONN_EV_DRAINED:
		imap_d_pump(s);
		break;
	case CONN_EV_TIMEOUT:
		if (s->st == IMAP_ST_AUTH || s->st == IMAP_ST_DOVECOT)
			break; /* waiting for us, not for the client */
		if (s->st != IMAP_ST_RELAY) {
			imap_printf(s,
				    "* BYE Disconnected for inactivity.\r\n");
			imap_close(s);
		}
		break;
	case CONN_EV_CLOSED:
		/* The slot is free before the line says so. */
		if (s->counted) {
			atomic_fetch_sub(&s->w->srv->conns, 1);
			s->counted = false;
		}
		if (s->counted_ip) {
			connlimit_release(s->w->srv->per_ip, &s->client);
			s->counted_ip = false;
		}
		loop_timer_disarm(s->w->loop, &s->deadline);
		log_conn(LOG_LV_INFO, conn_id(c),
			 "imap disconnect from=%s user=<%s> state=%s "
			 "reason=\"%s\" cmds=%" PRIu64 " wakes=%" PRIu64
			 " in=%" PRIu64 " out=%" PRIu64,
			 s->ip, s->user, imap_st_names[s->st],
			 conn_close_reason(c), s->cmds, s->idle.wakes,
			 conn_bytes_in(c), conn_bytes_out(c));
		s->c_closed = true;
		s->c = NULL;
		imap_user_unregister(s);
		if (s->auth_timer_armed) {
			loop_timer_disarm(s->w->loop, &s->auth_timer);
			s->auth_timer_armed = false;
			imap_auth_cancel(s);
			s->refs--; /* the timer's */
		}
		if (s->d != NULL)
			conn_close(s->d, false);
		imap_unref(s);
		break;
	case CONN_EV_CONNECTED:
		break;
	}
}

/* imap_preauth_deadline passed: counted from accept, whatever the client
 * sent meanwhile (NOOPs, a handshake one byte at a time). */
static void imap_deadline(struct loop_timer *t, void *arg)
{
	struct imap_sess *s = arg;

	(void)t;
	if (s->closing || s->c == NULL || s->st == IMAP_ST_RELAY)
		return;
	log_conn(LOG_LV_INFO, conn_id(s->c),
		 "imap preauth deadline from=%s state=%s after=%" PRIu64 "ms",
		 s->ip, imap_st_names[s->st], s->w->srv->o.preauth_deadline_ms);
	conn_set_close_reason(s->c, "preauth deadline");
	if (s->st != IMAP_ST_TLS_WAIT)
		imap_printf(s, "* BYE Login not completed in time.\r\n");
	imap_close(s);
}

/* Refuse a connection with @bye (NULL: none) before any session. */
static void imap_refuse(int fd, struct conn *c, bool implicit_tls,
			const char *bye)
{
	if (c != NULL) {
		if (bye != NULL)
			(void)conn_write(c, bye, strlen(bye));
		conn_close(c, true);
		return;
	}
	/* 993 cannot say why without a handshake: it just closes. */
	if (!implicit_tls && bye != NULL)
		(void)!write(fd, bye, strlen(bye));
	close(fd);
}

void imap_sess_start(struct imap_worker *w, int fd, struct conn *c,
		     const struct sockaddr *peer, socklen_t peer_len,
		     struct tls_ctx *tls, bool implicit_tls)
{
	struct imap_server *srv = w->srv;
	struct imap_sess *s;
	static const char full[] = "* BYE Too many connections.\r\n";
	char ip[INET6_ADDRSTRLEN], bye[128];
	struct connlimit_key client;
	int taken;

	if (peer == NULL || getnameinfo(peer, peer_len, ip, sizeof(ip), NULL, 0,
					NI_NUMERICHOST) != 0)
		snprintf(ip, sizeof(ip), "unknown");
	if (atomic_fetch_add(&srv->conns, 1) >= srv->o.max_conns) {
		atomic_fetch_sub(&srv->conns, 1);
		log_warn("imap: too many connections "
			 "(max_imap_connections=%u) refused from=%s",
			 srv->o.max_conns, ip);
		imap_refuse(fd, c, implicit_tls, full);
		return;
	}
	client = connlimit_key_of(peer);
	taken = connlimit_take(srv->per_ip, &client, srv->o.max_conns_per_ip);
	if (taken == 0) {
		atomic_fetch_sub(&srv->conns, 1);
		log_warn("imap: too many connections from=%s "
			 "(imap_max_connections_per_ip=%u)",
			 ip, srv->o.max_conns_per_ip);
		snprintf(
			bye, sizeof(bye),
			"* BYE [UNAVAILABLE] Too many connections from %s.\r\n",
			ip);
		imap_refuse(fd, c, implicit_tls, bye);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		atomic_fetch_sub(&srv->conns, 1);
		if (taken > 0)
			connlimit_release(srv->per_ip, &client);
		imap_refuse(fd, c, implicit_tls, NULL);
		return;
	}
	s->w = w;
	s->tls = implicit_tls ? NULL : tls;
	s->refs = 1;
	s->counted = true;
	s->client = client;
	s->counted_ip = taken > 0;
	s->d_verdict = -1;
	loop_timer_init(&s->auth_timer, imap_auth_timer, s);
	loop_timer_init(&s->deadline, imap_deadline, s);
	imap_parser_init(&s->cp, false, IMAP_PREAUTH_LINE_MAX);
	imap_idle_init(&s->idle);
	if (peer != NULL && peer_len <= sizeof(s->peer))
		memcpy(&s->peer, peer, peer_len);
	snprintf(s->ip, sizeof(s->ip), "%s", ip);
	if (c != NULL) {
		s->c = c;
		conn_set_handler(c, imap_c_ev, s);
		if (strcmp(conn_tls_version(c), "TLSv1.3") != 0) {
			/* 443 allows TLS 1.2 for HTTPS; IMAP needs 1.3. */
			static const char old[] = "* BYE TLS 1.3 required.\r\n";

			(void)conn_write(c, old, sizeof(old) - 1);
			s->closing = true;
			conn_close(c, true);
			return;
		}
	} else {
		/* TCP_NODELAY: set by the loop on every connection. */
		s->c = conn_new(w->loop, fd, implicit_tls ? tls : NULL,
				IMAP_INPUT_MAX, imap_c_ev, s);
		if (s->c == NULL) {
			atomic_fetch_sub(&srv->conns, 1);
			if (s->counted_ip)
				connlimit_release(srv->per_ip, &s->client);
			free(s);
			return;
		}
	}
	conn_set_timeout(s->c, srv->o.preauth_timeout_ms);
	if (srv->o.preauth_deadline_ms > 0)
		loop_timer_arm(w->loop, &s->deadline,
			       srv->o.preauth_deadline_ms);
	log_conn(LOG_LV_INFO, conn_id(s->c), "imap connect from=%s%s", s->ip,
		 c != NULL      ? " tls=alpn"
		 : implicit_tls ? " tls=implicit"
				: "");
	if (c != NULL || !implicit_tls) {
		s->st = IMAP_ST_PREAUTH;
		imap_greet(s);
		if (c != NULL)
			imap_c_pump(s);
	}
}

/* ---- wake-ups ---- */

void imap_worker_wake_user(struct imap_worker *w, const char *addr)
{
	struct imap_sess *s = w->users[imap_user_bucket(addr)];

	for (; s != NULL; s = s->unext) {
		if (strcasecmp(s->user, addr) == 0)
			imap_wake(s);
	}
}

void imap_worker_wake_all(struct imap_worker *w)
{
	for (unsigned i = 0; i < IMAP_USER_BUCKETS; i++) {
		for (struct imap_sess *s = w->users[i]; s != NULL; s = s->unext)
			imap_wake(s);
	}
}
