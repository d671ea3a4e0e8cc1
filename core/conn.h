/* core/conn: a byte stream for sessions (L1 of STYLE.md section 4). It
 * joins a loop connection (L0) with a transport: plain, userspace TLS or
 * kernel TLS. Sessions see only plaintext and the events below; they never
 * know which backend or transport is active. Loop-thread only. */
#ifndef RINGMAIL_CORE_CONN_H
#define RINGMAIL_CORE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/loop.h"

struct conn;
struct tls_ctx;

enum conn_ev {
	CONN_EV_CONNECTED, /* conn_connect finished (plaintext client) */
	CONN_EV_DATA,      /* new plaintext in conn_input() */
	CONN_EV_TLS_READY, /* handshake done (implicit TLS or STARTTLS) */
	CONN_EV_DRAINED,   /* everything written was handed to the kernel */
	CONN_EV_TIMEOUT,   /* the conn_set_timeout deadline passed */
	CONN_EV_CLOSED,    /* last event: peer closed, error, or conn_close */
};

typedef void conn_fn(struct conn *c, enum conn_ev ev, void *arg);

enum conn_transport {
	CONN_XPRT_PLAIN,
	CONN_XPRT_TLS_USER,   /* OpenSSL in userspace both ways */
	CONN_XPRT_TLS_KERNEL, /* kernel TLS transmit and/or receive */
};

/* Wrap an accepted socket. With @tls the TLS handshake starts at once
 * (implicit TLS); without, the stream is plaintext until conn_starttls.
 * @input_max bounds conn_input() (0 = 64 KiB): when full, receiving pauses
 * until the session consumes. NULL on failure (fd closed). */
struct conn *conn_new(struct loop *l, int fd, struct tls_ctx *tls,
		      uint32_t input_max, conn_fn *fn, void *arg);
/* Client side: connect to @addr (TCP or unix); with @tls a client
 * handshake follows, sending @sni. CONN_EV_CONNECTED (plain) or
 * CONN_EV_TLS_READY (TLS) follows, or CONN_EV_CLOSED on failure. */
struct conn *conn_connect(struct loop *l, const struct sockaddr *addr,
			  socklen_t addr_len, struct tls_ctx *tls,
			  const char *sni, uint32_t input_max, conn_fn *fn,
			  void *arg);

/* Hand the connection to another session (443: after the handshake,
 * by ALPN): later events go to @fn(@arg). */
void conn_set_handler(struct conn *c, conn_fn *fn, void *arg);

/* Plaintext received and not yet consumed. */
struct buf *conn_input(struct conn *c);
/* Drop @n bytes from the input (resumes receiving if it was full). */
void conn_consume(struct conn *c, size_t n);
/* Queue plaintext (encrypted if TLS). 0 or -errno. */
int conn_write(struct conn *c, const void *data, size_t len);
/* Bytes written but not yet handed to the kernel. */
size_t conn_pending(const struct conn *c);
/* Switch to TLS now (server side, after the "220 ready"/"OK Begin TLS"
 * reply was queued): buffered and further-unread plaintext input is
 * discarded, so nothing sent before the handshake is ever seen as if it
 * came over TLS. 0 or -1. */
int conn_starttls(struct conn *c, struct tls_ctx *tls);
/* Deliver CONN_EV_TIMEOUT after @ms of no input (0 disables). */
void conn_set_timeout(struct conn *c, uint64_t ms);
/* Close; with @flush, queued output (and close_notify) goes out first.
 * CONN_EV_CLOSED follows; the conn is freed after that callback. */
void conn_close(struct conn *c, bool flush);

uint64_t conn_id(const struct conn *c);
struct loop *conn_loop(const struct conn *c);
enum conn_transport conn_transport(const struct conn *c);
const char *conn_transport_name(enum conn_transport x);
bool conn_is_tls(const struct conn *c);
/* TLS details ("" when plain): negotiated ALPN, SNI, version, cipher. */
const char *conn_tls_alpn(const struct conn *c);
const char *conn_tls_sni(const struct conn *c);
const char *conn_tls_version(const struct conn *c);
/* The peer certificate's subject CN into @out ("" when none). */
void conn_tls_peer_cn(const struct conn *c, char *out, size_t out_len);
bool conn_ktls_tx(const struct conn *c);
bool conn_ktls_rx(const struct conn *c);
/* Why the connection closed (e.g. "eof", "timeout", "tls: <reason>"). */
const char *conn_close_reason(const struct conn *c);
/* Say why before a conn_close (the first reason given is kept). */
void conn_set_close_reason(struct conn *c, const char *reason);
/* Totals for the disconnect log line. */
uint64_t conn_bytes_in(const struct conn *c);
uint64_t conn_bytes_out(const struct conn *c);

#endif
