/* bench/client: `ringmail bench`, a client-side harness that measures any
 * chatmail relay over the network as a chat client would (issue 7, spec
 * section L). Blocking sockets, OpenSSL and one thread per simulated
 * client: it is a client tool, never part of the server loop.
 *
 * Layers: bench_net (TCP + TLS, lines, deadlines), bench_proto (pure
 * reply-line parsers, unit-tested), bench_smtp / bench_imap (the two
 * protocol clients), bench_pgp (PGP/MIME made with GPGME at start-up),
 * bench_stats (percentiles, table and JSON output) and bench_cmd (the
 * modes and options). */
#ifndef RINGMAIL_BENCH_CLIENT_H
#define RINGMAIL_BENCH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

/* `ringmail bench`: the entry point of the ringmail-bench executable
 * (bench_main.c), which `ringmail bench` execs; the process exit code,
 * argv[0] = "bench" (or the executable's name when run directly). */
int bench_cmd_run(int argc, char **argv);

#ifdef __cplusplus
extern "C" {
#endif

/* ---- time ---- */

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t bench_now_ns(void);
/* Sleep until @until_ns (monotonic), at most. */
void bench_sleep_until(int64_t until_ns);

/* ---- target and connections (bench_net.c) ---- */

struct bench_target {
	const char *host;   /* address or name to connect to */
	const char *domain; /* mail domain: addresses, SNI, certificate */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	SSL_CTX *tls;  /* client context, shared by all threads */
	bool insecure; /* no certificate verification */
	int io_timeout_ms;
};

/* Resolve @t->host and make the TLS context. 0, or -1 with @err set. */
int bench_target_init(struct bench_target *t, char *err, size_t err_len);
void bench_target_free(struct bench_target *t);

#define BENCH_CONN_BUF 16384

struct bench_conn {
	int fd;
	SSL *ssl; /* NULL: plaintext */
	const struct bench_target *t;
	size_t in_off, in_len;
	uint8_t in[BENCH_CONN_BUF];
	char err[160];
};

/* TCP connect to @port (and a TLS handshake with @tls), bounded by the
 * target's I/O timeout. 0, or -1 with c->err set (and c closed). */
int bench_conn_open(struct bench_conn *c, const struct bench_target *t,
		    uint16_t port, bool tls);
/* TLS handshake on an open plaintext connection (STARTTLS). 0 or -1. */
int bench_conn_starttls(struct bench_conn *c);
void bench_conn_close(struct bench_conn *c);
int bench_conn_write(struct bench_conn *c, const void *p, size_t n);
int bench_conn_printf(struct bench_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* One line without its CRLF into @line (NUL-terminated; longer lines are
 * cut to @cap - 1 and the rest skipped). Waits until @deadline_ns
 * (monotonic; 0: the I/O timeout). Length, BENCH_CONN_TIMEOUT when the
 * deadline passed with no complete line, or -1 on error/EOF. */
#define BENCH_CONN_TIMEOUT (-2)
int bench_conn_readline(struct bench_conn *c, char *line, size_t cap,
			int64_t deadline_ns);
/* Exactly @n octets (an IMAP literal) into @out (up to @cap of them kept,
 * the rest read and dropped). Octets read, or -1. */
long bench_conn_read_n(struct bench_conn *c, size_t n, uint8_t *out,
		       size_t cap);

/* ---- pure reply-line parsers (bench_proto.c) ---- */

/* An SMTP reply line "NNN-text" / "NNN text" / "NNN". The code, or -1
 * when the line is no reply line. *@last_r: true unless "NNN-". */
int bench_smtp_reply_line(const char *line, size_t len, bool *last_r);
/* "retry in N ms" in a 450 rate-limit text (ringmail); -1 if absent. */
long bench_smtp_retry_ms(const char *text);
/* true if the text is a rate-limit reply ("Too much mail from"). */
bool bench_smtp_is_rate_limit(int code, const char *text);

/* IMAP untagged "* N EXISTS": N, or -1. */
long bench_imap_exists(const char *line, size_t len);
/* A line that ends in a literal announcement "{N}" (or "{N+}"): N, or
 * -1. */
long bench_imap_literal(const char *line, size_t len);
/* A tagged status "TAG OK|NO|BAD ...": 1 OK, 0 NO/BAD, -1 other line. */
int bench_imap_tagged(const char *line, size_t len, const char *tag);
/* The Message-ID token in a fetched message: finds "<@prefix" and copies
 * up to the ">" (printable ASCII only) into @out. Length, or -1. Looks
 * in the first @len octets only. */
long bench_msgid_find(const uint8_t *msg, size_t len, const char *prefix,
		      char *out, size_t cap);

/* ---- accounts ---- */

#define BENCH_ADDR_MAX 128
#define BENCH_PASS_LEN 20

struct bench_account {
	char addr[BENCH_ADDR_MAX];
	char pass[BENCH_PASS_LEN + 1];
	/* sender pacing (bench_smtp_sender) */
	unsigned sent;     /* since the last 450 or the switch to it */
	int64_t next_ok;   /* monotonic ns; 0: no known limit */
	bool limited_once; /* has answered 450 */
};

/* A fresh random account: local part of @localpart_len [a-z0-9]. */
void bench_account_make(struct bench_account *a, const char *domain,
			unsigned localpart_len);

/* ---- SMTP client (bench_smtp.c) ---- */

struct bench_smtp {
	struct bench_conn c;
	bool open;
	bool starttls; /* 587 + STARTTLS instead of 465 */
	uint16_t port;
	char last[512]; /* text of the last reply line */
};

/* Connect, greeting, EHLO (and STARTTLS + EHLO). *@t_greet_ns_r: the
 * time from connect() to the 220 greeting (before EHLO); with @starttls
 * to the end of the TLS handshake after 220, EHLO, STARTTLS, 220. 0 or
 * -1. */
int bench_smtp_open(struct bench_smtp *s, const struct bench_target *t,
		    uint16_t port, bool starttls, int64_t *t_greet_ns_r);
/* AUTH PLAIN. The reply code (235 success), or -1. */
int bench_smtp_auth(struct bench_smtp *s, const char *user, const char *pass);
void bench_smtp_quit(struct bench_smtp *s);

/* One message. */
struct bench_send_result {
	int code;        /* final reply code, or the refusing one; -1 I/O */
	int stage;       /* where it ended: 'M' MAIL, 'R' RCPT, 'D' DATA, '.' */
	long retry_ms;   /* from a rate-limit 450, else -1 */
	bool rate_limit; /* 450 "Too much mail from" */
	int64_t t_data;  /* DATA command sent */
	int64_t t_done;  /* final reply read */
};
/* MAIL FROM, RCPT TO, DATA, the message (@msg already dot-stuffed and
 * CRLF, without the final "."), then the final reply. A refusal is
 * followed by RSET. 0 when the message was accepted (250), 1 when
 * refused (see @res), -1 on I/O error (connection closed). */
int bench_smtp_send(struct bench_smtp *s, const char *from, const char *rcpt,
		    const uint8_t *msg, size_t len,
		    struct bench_send_result *res);

/* ---- IMAP client (bench_imap.c) ---- */

struct bench_imap {
	struct bench_conn c;
	bool open;
	unsigned tag;
	long exists;      /* messages in the selected mailbox */
	int64_t exists_t; /* when exists last grew (monotonic ns) */
	bool idling;      /* IDLE sent, "+" seen, DONE not yet */
	char idle_tag[16];
	char last[512];
};

/* Connect (TLS on @tls) and read the greeting; *@t_greet_ns_r: connect()
 * to "* OK". 0 or -1. */
int bench_imap_open(struct bench_imap *m, const struct bench_target *t,
		    uint16_t port, bool tls, int64_t *t_greet_ns_r);
/* LOGIN; 1 OK, 0 NO/BAD, -1 I/O. */
int bench_imap_login(struct bench_imap *m, const char *user, const char *pass);
/* SELECT INBOX; sets m->exists. 1, 0 or -1. */
int bench_imap_select(struct bench_imap *m);
/* IDLE; waits for the continuation. 1, 0 or -1. */
int bench_imap_idle(struct bench_imap *m);
/* While idling, wait for "* N EXISTS" with N > m->exists until
 * @deadline_ns: N (now m->exists), BENCH_CONN_TIMEOUT, or -1. Every
 * command tracks EXISTS in m->exists and m->exists_t. */
long bench_imap_idle_wait(struct bench_imap *m, int64_t deadline_ns);
/* DONE; reads up to the IDLE's tagged OK (updating m->exists). 1, 0, -1. */
int bench_imap_done(struct bench_imap *m);
/* FETCH @from:@to (BODY.PEEK[]); @on_msg is called for each message
 * literal with its octets (the first @cap of them) and the time it was
 * read completely. 1, 0 or -1. */
typedef void bench_imap_msg_fn(void *ctx, const uint8_t *msg, size_t len,
			       int64_t t_read);
int bench_imap_fetch(struct bench_imap *m, long from, long to,
		     bench_imap_msg_fn *on_msg, void *ctx);
void bench_imap_logout(struct bench_imap *m);

/* ---- PGP/MIME (bench_pgp.c) ---- */

/* Make an OpenPGP key in a temporary GNUPGHOME with GPGME, encrypt a
 * chat-sized text of about @plain_size octets to it, and keep the
 * armored CRLF, dot-stuffed multipart/encrypted body (everything after
 * the per-message header fields). The GNUPGHOME, and the gpg-agent it
 * started, are gone when this returns. 0, or -1 with @err set. */
struct bench_pgp {
	uint8_t *body; /* "MIME-Version: ..." to the closing boundary */
	size_t body_len;
};
int bench_pgp_make(struct bench_pgp *p, const char *domain, size_t plain_size,
		   char *err, size_t err_len);
void bench_pgp_free(struct bench_pgp *p);
/* The message for one submission: header fields (From = @from, To,
 * Date, Message-ID <@msgid>) + the body. Length written (< @cap), or 0
 * when @cap is too small. */
size_t bench_pgp_message(const struct bench_pgp *p, const char *from,
			 const char *to, const char *msgid, uint8_t *out,
			 size_t cap);

/* ---- samples and output (bench_stats.c) ---- */

struct bench_samples {
	int64_t *v; /* nanoseconds */
	size_t n, cap;
};
void bench_samples_add(struct bench_samples *s, int64_t ns);
void bench_samples_merge(struct bench_samples *into,
			 const struct bench_samples *from);
void bench_samples_free(struct bench_samples *s);
/* Sorts in place; quantile by nearest rank (q in [0,1]); 0 if empty. */
void bench_samples_sort(struct bench_samples *s);
int64_t bench_samples_q(const struct bench_samples *s, double q);

#ifdef __cplusplus
}
#endif

#endif
