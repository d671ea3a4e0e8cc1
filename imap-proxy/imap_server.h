/* imap-proxy/imap_server: the IMAP front end (issue 6). Clients connect on
 * 143 (STARTTLS), 993 (implicit TLS) or 443 (ALPN "imap"); ringmail
 * answers the pre-auth commands itself, authenticates with the accounts
 * store (create-on-login, throttled, on the pool), logs in to its
 * private Dovecot on loopback as the master user, then relays both ways
 * with bounded buffers. It follows the client's commands well enough to
 * know when it idles (imap_idle.h): on a delivery event for that user it
 * makes Dovecot resync at once. The chatmail METADATA keys (spec H.1,
 * H.5) are answered from the accounts store and the configuration.
 * One imap_server per process, one imap_worker per loop. */
#ifndef RINGMAIL_IMAP_SERVER_H
#define RINGMAIL_IMAP_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/events.h"

struct accounts;
struct accounts_throttle;
struct conn;
struct loop;
struct pool;
struct proto;
struct tls_ctx;
struct imap_server;
struct imap_worker;

struct imap_server_opts {
	const char *mail_domain;      /* required; the login domain */
	const char *mail_domain_bare; /* TURN realm; NULL: mail_domain */
	unsigned max_conns;           /* max_imap_connections; 0: 10000 */
	/* imap_max_connections_per_ip: what one client (IPv4 address,
	 * IPv6 /64) may hold at once; over it "* BYE" naming the client.
	 * 0: no per-client cap. */
	unsigned max_conns_per_ip;
	uint64_t preauth_timeout_ms; /* idle, before login; 0: 60 s */
	/* imap_preauth_deadline: from accept until the login is done,
	 * however busy the client keeps the connection (TLS handshake
	 * included). 0: none. */
	uint64_t preauth_deadline_ms;
	/* Login throttling shared with SMTP (NULL: the server's own). */
	struct accounts_throttle *throttle;
	struct accounts *accounts;  /* required */
	struct pool *pool;          /* required */
	unsigned dovecot_port;      /* Dovecot IMAP on 127.0.0.1 */
	const char *dovecot_secret; /* master-user secret (copied) */
	/* METADATA values (copied); NULL or "" is served as NIL. */
	const char *iroh_relay;
	const char *turn_secret; /* NULL: no /shared/vendor/deltachat/turn */
	const char *appversions; /* one line of JSON */
	const char *privacy_mail;
};

int imap_server_new(const struct imap_server_opts *o, struct imap_server **s_r);
void imap_server_free(struct imap_server **s);
/* Subscribe to delivery events (boot time, before workers start). */
int imap_server_subscribe(struct imap_server *s, struct events *ev);
unsigned imap_server_conns(const struct imap_server *s);

/* Per loop, on the loop's thread. Free it after the loop ran its last
 * iteration (no posted wake-up may run after). */
struct imap_worker *imap_worker_new(struct imap_server *s, struct loop *l);
void imap_worker_free(struct imap_worker **w);
/* Serve @fd (takes it). @implicit_tls: 993, the greeting follows the
 * handshake; else @tls (may be NULL) is offered with STARTTLS. */
void imap_worker_accept(struct imap_worker *w, int fd,
			const struct sockaddr *peer, socklen_t peer_len,
			struct tls_ctx *tls, bool implicit_tls);
/* Take over @c, a TLS connection whose handshake is done (443, ALPN
 * "imap"): the greeting goes out now. */
void imap_worker_adopt(struct imap_worker *w, struct conn *c,
		       const struct sockaddr *peer, socklen_t peer_len);

/* The IMAP rows of the protocol table (boot time): listeners imap and
 * imaps, ALPN "imap". 0 or proto_add's error. */
int imap_server_proto_add(struct proto *p);
/* In a loop's copy of the table: those rows go to @w. */
void imap_worker_proto_bind(struct proto *p, struct imap_worker *w);

#endif
