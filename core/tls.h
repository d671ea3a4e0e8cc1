/* core/tls: OpenSSL 3.0 contexts and a per-connection TLS engine that
 * works on the loop's buffers (custom BIO, no SSL_set_fd, no socket I/O of
 * its own except the kernel-TLS hand-over). The engine is pure enough to be
 * unit-tested with two engines wired back to back in memory. */
#ifndef RINGMAIL_CORE_TLS_H
#define RINGMAIL_CORE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct tls_ctx;
struct tls_conn;

enum tls_ktls_mode { TLS_KTLS_AUTO = 0, TLS_KTLS_YES, TLS_KTLS_NO };
/* Parse "auto|yes|no"; -1 on unknown. */
int tls_ktls_mode_parse(const char *s, enum tls_ktls_mode *m_r);

struct tls_ctx_opts {
	bool server;
	const char *cert_file; /* PEM chain; server (required) */
	const char *key_file;  /* PEM key; server (required) */
	int min_version;       /* TLS1_2_VERSION or TLS1_3_VERSION */
	int max_version;       /* 0 = the library's highest */
	/* OpenSSL cipher strings: TLS <= 1.2 list and TLS 1.3 suites;
	 * NULL = OpenSSL's defaults. */
	const char *cipher_list;
	const char *ciphersuites;
	/* Server: protocols it accepts, in its order of preference, e.g.
	 * {"h2", "http/1.1", "imap", "smtp", NULL}. With none in common
	 * the handshake still succeeds with no ALPN. Client: offered list. */
	const char *const *alpn;
	enum tls_ktls_mode ktls;
	/* Client only: verify the server against @ca_file (or the system
	 * store when NULL) unless @insecure; with @ca_system as well the
	 * system store is trusted besides @ca_file. The name given as SNI
	 * to tls_conn_new is the name verified (an IP literal is matched
	 * against the certificate's IP addresses and not sent as SNI). */
	const char *ca_file;
	bool ca_system;
	bool insecure;
};

/* Build a context; 0 or -1 with the reason logged ("file: reason"). */
int tls_ctx_new(const struct tls_ctx_opts *opts, struct tls_ctx **ctx_r);
/* Server: an extra certificate chosen when the client's SNI equals
 * @name (case-insensitive; "*.example.org" matches one label). */
int tls_ctx_add_sni_cert(struct tls_ctx *ctx, const char *name,
			 const char *cert_file, const char *key_file);
/* Re-read every certificate and key; handshakes started later use them,
 * live connections keep theirs. On failure the old ones stay: -1. */
int tls_ctx_reload(struct tls_ctx *ctx);
void tls_ctx_free(struct tls_ctx **ctx);

/* Where the engine's output goes: ciphertext (or, once kernel TLS
 * transmit is engaged, plaintext) to put on the wire in order.
 * @record_type is 0 for ordinary bytes, else the content type of one
 * control record to send through kernel TLS. Returns 0 or -errno. */
typedef int tls_out_fn(void *arg, uint8_t record_type, const uint8_t *data,
		       size_t len);
/* Called on BIO flush before kernel TLS transmit is engaged; takes
 * ownership of @data either way (the engine never emits it again). Writes
 * it straight to the socket now if nothing else is queued, without
 * blocking. Returns 1 if all of it is on the wire (kernel TLS may be
 * engaged), 0 if any of it had to be queued (kernel TLS is then not
 * engaged; the queued bytes go out in order with later output). */
typedef int tls_flush_fn(void *arg, const uint8_t *data, size_t len);

struct tls_conn_io {
	tls_out_fn *out;
	tls_flush_fn *flush; /* may be NULL: no kernel TLS */
	void *arg;
	int fd; /* the socket, for kernel TLS; -1 for none */
};

/* A new engine for one connection. @sni: client side server name. */
int tls_conn_new(struct tls_ctx *ctx, const struct tls_conn_io *io,
		 const char *sni, struct tls_conn **t_r);
void tls_conn_free(struct tls_conn **t);

/* Feed ciphertext received from the network. */
int tls_conn_feed(struct tls_conn *t, const uint8_t *data, size_t len);
/* Advance the handshake and decrypt what was fed, appending plaintext to
 * @plain (grown up to its max). Returns 1 on progress, 0 if more input is
 * needed, -1 on a fatal TLS error (reason via tls_conn_error), -2 when the
 * peer sent close_notify. Call again while it returns 1. */
int tls_conn_process(struct tls_conn *t, struct buf *plain);
/* Encrypt plaintext (only after the handshake). 0 or -1. */
int tls_conn_write(struct tls_conn *t, const uint8_t *data, size_t len);
/* Queue close_notify. */
void tls_conn_shutdown(struct tls_conn *t);

bool tls_conn_handshake_done(const struct tls_conn *t);
/* Negotiated ALPN protocol ("" when none), SNI seen by the server (or
 * ""), protocol version name ("TLSv1.3"), cipher name. */
const char *tls_conn_alpn(const struct tls_conn *t);
const char *tls_conn_sni(const struct tls_conn *t);
const char *tls_conn_version(const struct tls_conn *t);
const char *tls_conn_cipher(const struct tls_conn *t);
/* The peer certificate's subject CN into @out ("" when none). */
void tls_conn_peer_cn(const struct tls_conn *t, char *out, size_t out_len);
/* Why the last call failed (OpenSSL's reason string), or "". */
const char *tls_conn_error(const struct tls_conn *t);

/* Kernel TLS state of this connection: transmit engaged by OpenSSL, and
 * receive installed by tls_conn_ktls_rx_try(). */
bool tls_conn_ktls_tx(const struct tls_conn *t);
bool tls_conn_ktls_rx(const struct tls_conn *t);
/* After the handshake, with no ciphertext left unprocessed, install the
 * peer's traffic keys as kernel TLS receive on the socket (TLS 1.2 and
 * 1.3, AES-GCM and ChaCha20). Returns 1 when engaged (from then on the
 * socket yields plaintext records, which bypass this engine), 0 when not
 * possible (reason logged at debug). */
int tls_conn_ktls_rx_try(struct tls_conn *t);

/* Write a new P-256 key (mode 0600) and a self-signed certificate for
 * @cn, valid @days, with extra subjectAltName entries @sans ("DNS:x",
 * "IP:1.2.3.4"; NULL-terminated, may be NULL). 0 or -1. */
int tls_selfsigned_write(const char *cert_path, const char *key_path,
			 const char *cn, const char *const *sans, int days);

/* Is the kernel's "tls" ULP usable on this host (probed once)? */
bool tls_ktls_available(void);

#endif
