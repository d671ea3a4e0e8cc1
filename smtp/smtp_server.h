/* smtp/smtp_server: runs smtp_session over core/conn for accepted
 * sockets: TLS (implicit or STARTTLS), AUTH through the accounts store
 * (throttled, on the pool), the submission rate limit, delivery through
 * smtp_deliver, connection limits, timeouts and the per-connection log
 * lines. One smtp_server per process, one smtp_worker per loop. */
#ifndef RINGMAIL_SMTP_SMTP_SERVER_H
#define RINGMAIL_SMTP_SMTP_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/events.h"
#include "core/loop.h"
#include "core/tls.h"
#include "smtp/smtp_session.h"

struct accounts;
struct accounts_throttle;
struct conn;
struct proto;
struct dkim_ctx;
struct dkim_signer;
struct pool;
struct ratelimit;
struct smtp_server;
struct smtp_worker;

struct smtp_server_opts {
	const char *hostname;    /* greeting/EHLO; NULL: mail_domain */
	const char *mail_domain; /* required */
	uint64_t max_message_size;
	/* max_smtp_connections: open SMTP connections in all (0: 1000);
	 * over it: 421 4.3.2 "too many connections". */
	unsigned max_conns;
	/* smtp_max_connections_per_ip: what one client (IPv4 address,
	 * IPv6 /64) may hold at once, like Postfix's
	 * smtpd_client_connection_count_limit; over it: 421 4.7.0 naming
	 * the client. 0: no per-client cap. */
	unsigned max_conns_per_ip;
	uint64_t timeout_ms; /* idle timeout (smtp_timeout) */
	/* smtp_preauth_deadline: from accept until AUTH succeeds
	 * (submission) or a MAIL is accepted (MX), however busy the
	 * client keeps the connection (TLS handshake included); then 421
	 * 4.4.2 and close. 0: none. */
	uint64_t preauth_deadline_ms;
	/* Login throttling shared with IMAP (NULL: the server's own). */
	struct accounts_throttle *throttle;
	const char *lmtp_socket;   /* Dovecot's LMTP unix socket */
	struct accounts *accounts; /* required */
	struct pool *pool;         /* required: authentication runs there */
	struct ratelimit *rate;    /* NULL: no submission rate limit */
	const struct events *events;
	/* Port 25 verifies DKIM with it (NULL: no verification); keys
	 * through dns_server ("ip:port", NULL or "": /etc/resolv.conf). */
	struct dkim_ctx *dkim;
	const char *dns_server;
	uint64_t dkim_timeout_ms; /* per key lookup; 0: 60 s */
	/* The relay's signing key (NULL: IP-only relay or no key file):
	 * for what leaves with From @mail_domain through
	 * dkim_sign_start. Local mail and local bounces are not signed:
	 * the signature would be stripped before LMTP (spec E.2). */
	const struct dkim_signer *signer;
	/* Message bodies over 256 KiB are spooled to unlinked files here
	 * (smtp/smtp_spool.h); NULL: in memory, up to max_message_size. */
	const char *spool_dir;
};

/* Strings in @o must outlive the server. 0, -EINVAL or -ENOMEM. */
int smtp_server_new(const struct smtp_server_opts *o, struct smtp_server **s_r);
void smtp_server_free(struct smtp_server **s);
/* Open SMTP connections in all workers. */
unsigned smtp_server_conns(const struct smtp_server *s);

/* Per loop, created and freed on the loop's thread. NULL on error. */
struct smtp_worker *smtp_worker_new(struct smtp_server *s, struct loop *l);
/* After every connection of the loop has closed (loop_conn_close_all
 * and the loop run until empty). */
void smtp_worker_free(struct smtp_worker **w);
/* Serve @fd (takes it): @tls is the context of the port, @implicit_tls
 * for 465/443 (the greeting follows the handshake). */
void smtp_worker_accept(struct smtp_worker *w, int fd,
			const struct sockaddr *peer, socklen_t peer_len,
			enum smtp_mode mode, struct tls_ctx *tls,
			bool implicit_tls);
/* Take over @c, a TLS connection whose handshake is done (443, ALPN
 * "smtp"): a submission session exactly as on 465 (TLS 1.3 required),
 * the greeting goes out now. */
void smtp_worker_adopt(struct smtp_worker *w, struct conn *c,
		       const struct sockaddr *peer, socklen_t peer_len);

/* The SMTP rows of the protocol table (boot time): listeners smtp (MX),
 * submission, submissions, and ALPN "smtp". 0 or proto_add's error. */
int smtp_server_proto_add(struct proto *p);
/* In a loop's copy of the table: those rows go to @w. */
void smtp_worker_proto_bind(struct proto *p, struct smtp_worker *w);

#endif
