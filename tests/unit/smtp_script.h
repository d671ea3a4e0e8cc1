/* tests/unit/smtp_script: an in-memory transport for smtp_session (STYLE.md
 * rules 21-22) and an interpreter for tests/proto/<name>.smtp transcripts.
 * Shared by test_smtp_session.c and tests/fuzz/fuzz_smtp_session.c. */
#ifndef RINGMAIL_TESTS_SMTP_SCRIPT_H
#define RINGMAIL_TESTS_SMTP_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "smtp/smtp_session.h"

#define SMTP_FAKE_ENFORCE_MAX 8

struct smtp_fake {
	struct smtp_session *s;
	struct smtp_session_cfg cfg;
	struct buf in;  /* received, not yet consumed */
	struct buf out; /* everything the session wrote */
	size_t out_read;
	unsigned n_writes; /* ops->write calls (flushes) */
	bool closed;
	bool starttls; /* STARTTLS happened in the current feed */
	unsigned starttls_count;
	/* How the fake answers. */
	enum smtp_auth_result auth_res;
	char auth_login[256]; /* "" = the user as given */
	char auth_reason[64];
	bool rate_limited;
	unsigned deliver_code;
	char deliver_esc[16], deliver_text[128];
	char enforce[SMTP_FAKE_ENFORCE_MAX][64];
	unsigned n_enforce;
	/* What the session asked for. */
	bool auth_pending, deliver_pending;
	char auth_user[256];
	unsigned n_auth, n_deliveries;
	char last_sender[256], last_mail_from[256];
	char last_rcpts[2048];
	unsigned last_flags;
	struct buf last_msg;
	bool last_spooled; /* the body came from a spool file */
	/* DKIM (directive "dkim pass|fail|tempfail"): the session parses
	 * the signatures with libopendkim; the fake answers the check. */
	struct dkim_ctx *dkim_ctx;
	int dkim_res; /* enum dkim_result */
	bool dkim_pending;
	unsigned n_dkim;
	char last_dkim_key[320];
};

void smtp_fake_init(struct smtp_fake *f, enum smtp_mode mode, bool tls);
/* Create the session (the greeting goes to out). 0 or -1. */
int smtp_fake_start(struct smtp_fake *f);
void smtp_fake_free(struct smtp_fake *f);
/* Receive @data in pieces of @chunk octets (0: all at once); pending
 * auth/deliver calls are answered at once, STARTTLS drops the rest of
 * @data (it was sent before the handshake). */
void smtp_fake_feed(struct smtp_fake *f, const void *data, size_t len,
		    size_t chunk);

/* Run the transcript @path with @chunk; 0 on success, else -1 with the
 * failing line and reason in @err. */
int smtp_script_run(const char *path, size_t chunk, char *err, size_t err_len);

#endif
