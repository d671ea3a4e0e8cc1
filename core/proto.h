/* core/proto: the protocol table (HAProxy's mux_proto_list idea). A row
 * maps a listener kind ("submissions") or a negotiated ALPN token ("smtp";
 * "" for none) to a protocol module's entry points; listener code looks
 * rows up and never names a protocol. Modules add their rows at boot into
 * one table; each loop works on its own copy, in which every module binds
 * its per-loop worker (proto_bind). Only tokens with a row are offered in
 * ALPN (proto_alpn_list), so a protocol is offered exactly when it is
 * served. What has no row goes to the fallback entry. Copies are used on
 * their loop's thread only. */
#ifndef RINGMAIL_CORE_PROTO_H
#define RINGMAIL_CORE_PROTO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct conn;
struct loop;
struct tls_ctx;

#define PROTO_ROWS_MAX 32
#define PROTO_KEY_MAX  24

enum proto_kind {
	PROTO_LISTENER, /* key: a listener kind (systemd socket name) */
	PROTO_ALPN,     /* key: an ALPN token; "" = the client sent none */
};

struct proto_row;

/* A module's entry points. Both take ownership (of @fd, of @c); @r is the
 * row that matched (r->worker, r->arg; for the fallback r->key is what
 * was looked up). */
struct proto_ops {
	const char *name; /* for logs: "smtp", "imap", "http" */
	/* A socket from a listener. @tls: the listener's context (NULL on a
	 * plain port); @implicit_tls: the handshake comes first. */
	void (*accept)(const struct proto_row *r, int fd,
		       const struct sockaddr *peer, socklen_t peer_len,
		       struct tls_ctx *tls, bool implicit_tls);
	/* A TLS connection whose handshake is done, routed by its ALPN.
	 * The module sets its handler on @c or closes @c. */
	void (*adopt)(const struct proto_row *r, struct conn *c,
		      const struct sockaddr *peer, socklen_t peer_len);
};

struct proto_row {
	enum proto_kind kind;
	char key[PROTO_KEY_MAX];
	const struct proto_ops *ops;
	int arg;      /* the module's own (e.g. SMTP MX vs submission) */
	void *worker; /* bound per loop */
};

struct proto {
	struct proto_row rows[PROTO_ROWS_MAX];
	unsigned n;
	struct proto_row fallback; /* ops NULL: close what has no row */
};

void proto_init(struct proto *p);
/* Route @kind/@key to @ops with @arg (boot time). Rows keep the order they
 * were added in (the ALPN preference order). 0, -EEXIST (already routed),
 * -ENOSPC or -EINVAL (key too long). */
int proto_add(struct proto *p, enum proto_kind kind, const char *key,
	      const struct proto_ops *ops, int arg);
/* Where nothing routes. */
void proto_set_fallback(struct proto *p, const struct proto_ops *ops);
/* In a loop's copy: @worker for every row (and the fallback) of @ops. */
void proto_bind(struct proto *p, const struct proto_ops *ops, void *worker);
/* The routed ALPN tokens in preference order into @out (NULL-terminated,
 * at most @max - 1 tokens, pointing into @p); the count. */
unsigned proto_alpn_list(const struct proto *p, const char **out, unsigned max);
/* The row for @kind/@key, else the fallback row (a copy in @tmp with @key
 * in it); NULL when there is neither. */
const struct proto_row *proto_find(const struct proto *p, enum proto_kind kind,
				   const char *key, struct proto_row *tmp);

/* Serve @fd from a listener of kind @listener (takes @fd). */
void proto_accept(const struct proto *p, const char *listener, int fd,
		  const struct sockaddr *peer, socklen_t peer_len,
		  struct tls_ctx *tls, bool implicit_tls);
/* Serve @fd from a listener that dispatches on ALPN (443): the TLS
 * handshake with @tls runs here (bounded by @timeout_ms), then the
 * connection goes to the row of its negotiated token. A failed handshake
 * logs "<listener> disconnect". @p must outlive the connection. */
void proto_accept_alpn(const struct proto *p, struct loop *l,
		       const char *listener, int fd,
		       const struct sockaddr *peer, socklen_t peer_len,
		       struct tls_ctx *tls, uint64_t timeout_ms);

#endif
