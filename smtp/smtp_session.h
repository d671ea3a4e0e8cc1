/* smtp/smtp_session: the SMTP server state machine for ports 25, 587 and
 * 465 (and ALPN "smtp" on 443), independent of the transport. Bytes go in
 * through smtp_session_input; replies leave through ops->write, flushed
 * only when no complete command is left (RFC 2920); the session asks its
 * driver for STARTTLS, close, authentication and delivery, and the two
 * async ones come back through smtp_session_auth_done and
 * smtp_session_deliver_done. No I/O and no clock of its own, so whole
 * sessions run over an in-memory transport (tests, fuzzing). */
#ifndef RINGMAIL_SMTP_SESSION_H
#define RINGMAIL_SMTP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/smtp_addr.h"

struct dkim_ctx;
struct dkim_verify;
struct smtp_spool;

#ifdef __cplusplus
extern "C" {
#endif

struct smtp_session;

enum smtp_mode {
	SMTP_MODE_MX = 0,     /* 25: STARTTLS before MAIL, no AUTH */
	SMTP_MODE_SUBMISSION, /* 587 (STARTTLS) and 465 (implicit TLS) */
};

/* Postfix smtpd_recipient_limit and smtpd_hard_error_limit. */
#define SMTP_RCPT_MAX        1000
#define SMTP_HARD_ERROR_MAX  20
#define SMTP_SESSION_LOG_MAX 128

struct smtp_session_cfg {
	enum smtp_mode mode;
	const char *hostname;    /* greeting and EHLO (the mail domain) */
	const char *mail_domain; /* local recipients: <local>@mail_domain */
	uint64_t max_message_size;
	bool tls;           /* the transport is TLS already (465, 443) */
	bool tls_available; /* STARTTLS may be offered (a context exists) */
	bool client_local;  /* loopback client: HELO name not checked */
	uint64_t conn_id;   /* for log lines */
	/* MX: verify DKIM (spec D.7 step 5, E.3) with this library handle;
	 * NULL: no verification (tests of other rules, FILTERMAIL_SKIP_DKIM
	 * of filtermail's tests). */
	struct dkim_ctx *dkim;
	/* Bodies over spool_mem_max (0: SMTP_SPOOL_MEM_DEFAULT) go to an
	 * unlinked file in this directory (smtp/smtp_spool.h); NULL: every
	 * body stays in memory, up to max_message_size. */
	const char *spool_dir;
	uint32_t spool_mem_max;
};

/* A message ready for delivery: the driver hands it to Dovecot and
 * answers with smtp_session_deliver_done. Valid until then. */
struct smtp_delivery {
	bool submission;
	const char *mail_from;   /* MAIL FROM as given ("" for <>) */
	const char *lmtp_sender; /* envelope sender to use ("" = <>) */
	const char *from_addr;   /* the From header address ("" if none) */
	const char *const *rcpts;
	unsigned n_rcpts;
	/* The message as received (CRLF, unstuffed): smtp_spool_* reads
	 * it wherever it is; @msg is the whole of it when it is in memory,
	 * NULL when it is in a file. */
	const struct smtp_spool *spool;
	const uint8_t *msg;
	size_t len;
	unsigned rewrite_flags; /* REWRITE_* to apply on the way */
};

/* What the driver provides. All are called on the session's thread and
 * must not block; none may call back into the session. */
struct smtp_session_ops {
	/* Queue reply octets for the client. 0 or <0 (the session ends). */
	int (*write)(void *io, const void *p, size_t n);
	/* Start authentication of @user/@pass (PLAIN); the answer comes
	 * with smtp_session_auth_done. 0, or <0: 454 temporary failure. */
	int (*auth)(void *io, const char *user, const char *pass,
		    size_t pass_len);
	/* Submission rate limit for @sender (spec D.6). true: allowed;
	 * false: limited, @detail says until when (governor's detail). */
	bool (*rate_ok)(void *io, const char *sender, char *detail,
			size_t detail_len);
	/* Does @rcpt (a local address) refuse cleartext (spec C.10)? */
	bool (*rcpt_enforces_e2ee)(void *io, const char *rcpt);
	/* Deliver @d; the answer comes with smtp_session_deliver_done. 0,
	 * or <0: 451 temporary failure. */
	int (*deliver)(void *io, const struct smtp_delivery *d);
	/* MX with cfg.dkim: fetch the keys of @v and verify (the driver
	 * owns @v from now on, even on failure); the answer comes with
	 * smtp_session_dkim_done. 0, or <0: 451 temporary failure. */
	int (*dkim_check)(void *io, struct dkim_verify *v);
};

/* What smtp_session_input wants next from the driver. */
enum smtp_session_action {
	SMTP_ACT_READ = 0, /* feed more input when it arrives */
	SMTP_ACT_WAIT,     /* an auth/deliver call is pending */
	SMTP_ACT_STARTTLS, /* switch to TLS (220 written), then feed */
	SMTP_ACT_CLOSE,    /* close after the written replies */
};

/* A new session; the greeting is written at once. NULL on OOM. The
 * strings in @cfg must outlive the session. */
struct smtp_session *smtp_session_new(const struct smtp_session_cfg *cfg,
				      const struct smtp_session_ops *ops,
				      void *io);
void smtp_session_free(struct smtp_session **s);
/* Process @data; returns the octets used (the rest stays with the
 * driver, e.g. while an async call is pending). *@act_r says what next. */
size_t smtp_session_input(struct smtp_session *s, const uint8_t *data,
			  size_t len, enum smtp_session_action *act_r);
/* The transport is TLS now (after SMTP_ACT_STARTTLS): the session
 * forgets HELO and everything else said before (RFC 3207 4.2). */
void smtp_session_tls_started(struct smtp_session *s);

/* Result of ops->auth. @login is the authenticated address (lower case);
 * @res is the accounts_result (0 OK, 1 CREATED, 2 WRONG_PASSWORD, 3
 * REFUSED, 4 TEMPFAIL) and @reason its text for TEMPFAIL. */
enum smtp_auth_result {
	SMTP_AUTH_RES_OK = 0,
	SMTP_AUTH_RES_FAILED,   /* 535 */
	SMTP_AUTH_RES_TEMPFAIL, /* 454 */
};
void smtp_session_auth_done(struct smtp_session *s, enum smtp_auth_result res,
			    const char *login, const char *reason);
/* Result of ops->deliver: the one reply for the client's DATA. */
void smtp_session_deliver_done(struct smtp_session *s, unsigned code,
			       const char *esc, const char *text);

/* Result of ops->dkim_check: an enum dkim_result (filter/dkim.h) and a
 * reason for the log. */
void smtp_session_dkim_done(struct smtp_session *s, int dkim_result,
			    const char *detail);

/* The idle timeout passed: 421 and SMTP_ACT_CLOSE semantics (the driver
 * closes after the write). */
void smtp_session_timeout(struct smtp_session *s);
/* The pre-auth deadline passed: 421 4.4.2 (the driver closes after). */
void smtp_session_preauth_deadline(struct smtp_session *s);
/* The client has authenticated, or had a MAIL accepted. */
bool smtp_session_proved(const struct smtp_session *s);
/* The server is shutting down: 421 (the driver closes after it). */
void smtp_session_shutdown(struct smtp_session *s);

/* Counters for the disconnect line "helo=1 mail=2 rcpt=3 data=2 ..." */
void smtp_session_summary(const struct smtp_session *s, char *out,
			  size_t out_len);
bool smtp_session_waiting(const struct smtp_session *s);

#ifdef __cplusplus
}
#endif

#endif
