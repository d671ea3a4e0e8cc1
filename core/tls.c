/* core/tls: OpenSSL contexts and the per-connection engine over a custom
 * BIO (no socket I/O except the kernel-TLS hand-over). */
#include "core/tls.h"

/* system */
#include <errno.h>
#include <linux/tls.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* third party */
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/core_names.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* project */
#include "core/buf.h"
#include "core/log.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

#define TLS_INPUT_MAX                  (256u * 1024u)
#define TLS_MAX_SNI                    16
#define TLS_BIO_CTRL_SET_KTLS          72
#define TLS_BIO_CTRL_SET_SEND_CTRL_MSG 74
#define TLS_BIO_CTRL_CLEAR_CTRL_MSG    75

struct tls_sni_cert {
	char *name;
	char *cert_file, *key_file;
	SSL_CTX *ctx; /* current generation; swapped on reload */
};

struct tls_ctx {
	struct tls_ctx_opts opts;
	char *cert_file, *key_file, *ca_file;
	const char **alpn; /* copy */
	unsigned char *alpn_wire;
	size_t alpn_wire_len;
	pthread_mutex_t mtx;
	SSL_CTX *ssl; /* current default context (server) or client ctx */
	struct tls_sni_cert sni[TLS_MAX_SNI];
	unsigned nsni;
};

struct tls_conn {
	SSL *ssl;
	BIO *bio;
	struct tls_conn_io io;
	struct buf in;     /* ciphertext fed, not yet read by OpenSSL */
	struct buf out;    /* ciphertext written during one SSL call */
	uint8_t ctrl_type; /* kTLS: next write is a control record */
	bool server;
	bool ktls_tx, ktls_rx;
	bool app_read; /* application data was read */
	bool hs_done;
	char err[160];
	/* Secrets from the keylog callback, for kernel receive. */
	uint8_t client_random[32];
	uint8_t secret[48]; /* 1.2: master secret; 1.3: peer traffic */
	size_t secret_len;
	bool have_secret;
};

static int tls_conn_ex_idx = -1;
static BIO_METHOD *tls_bio_method;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

/* ---- kTLS availability ---- */

static int tls_ktls_state = -1;

static bool tls_ktls_probe(void)
{
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");
	char line[256] = "";
	bool ok = false;

	if (f != NULL) {
		if (fgets(line, sizeof(line), f) != NULL)
			ok = strstr(line, "tls") != NULL;
		fclose(f);
	}
	if (!ok) {
		/* The module may be loadable on first use: try a real
		 * connected loopback pair. */
		int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_addr.s_addr = htonl(0x7f000001)};
		socklen_t al = sizeof(a);

		if (l >= 0 && c >= 0 && bind(l, (void *)&a, sizeof(a)) == 0 &&
		    listen(l, 1) == 0 && getsockname(l, (void *)&a, &al) == 0 &&
		    connect(c, (void *)&a, sizeof(a)) == 0 &&
		    setsockopt(c, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) == 0)
			ok = true;
		if (l >= 0)
			close(l);
		if (c >= 0)
			close(c);
	}
	return ok;
}

bool tls_ktls_available(void)
{
	int s = __atomic_load_n(&tls_ktls_state, __ATOMIC_ACQUIRE);

	if (s < 0) {
		s = tls_ktls_probe() ? 1 : 0;
		__atomic_store_n(&tls_ktls_state, s, __ATOMIC_RELEASE);
	}
	return s == 1;
}

int tls_ktls_mode_parse(const char *s, enum tls_ktls_mode *m_r)
{
	if (strcmp(s, "auto") == 0)
		*m_r = TLS_KTLS_AUTO;
	else if (strcmp(s, "yes") == 0)
		*m_r = TLS_KTLS_YES;
	else if (strcmp(s, "no") == 0)
		*m_r = TLS_KTLS_NO;
	else
		return -1;
	return 0;
}

/* ---- BIO over the engine's buffers ---- */

static int tls_bio_write(BIO *b, const char *data, int len)
{
	struct tls_conn *t = BIO_get_data(b);
	uint8_t type;

	BIO_clear_retry_flags(b);
	if (t->ctrl_type != 0) {
		/* A control record for kernel TLS: goes out framed. */
		if (t->out.len > 0) {
			if (t->io.out(t->io.arg, 0, buf_head(&t->out),
				      t->out.len) < 0)
				return -1;
			buf_clear(&t->out);
		}
		/* One-shot, as in OpenSSL's socket BIO: 3.0 never clears it. */
		type = t->ctrl_type;
		t->ctrl_type = 0;
		if (t->io.out(t->io.arg, type, (const uint8_t *)data,
			      (size_t)len) < 0)
			return -1;
		return len;
	}
	if (buf_append(&t->out, data, (size_t)len) < 0)
		return -1;
	return len;
}

static int tls_bio_read(BIO *b, char *data, int len)
{
	struct tls_conn *t = BIO_get_data(b);
	size_t n;

	BIO_clear_retry_flags(b);
	if (t->in.len == 0) {
		BIO_set_retry_read(b);
		return -1;
	}
	n = t->in.len < (size_t)len ? t->in.len : (size_t)len;
	memcpy(data, buf_head(&t->in), n);
	buf_consume(&t->in, n);
	return (int)n;
}

static int tls_ktls_set_tx(struct tls_conn *t, void *crypto_info)
{
	/* OpenSSL 3.0's ktls_crypto_info_t on Linux: the kernel struct union
	 * followed by its length (size_t). */
	struct {
		union {
			struct tls12_crypto_info_aes_gcm_128 gcm128;
			struct tls12_crypto_info_aes_gcm_256 gcm256;
			struct tls12_crypto_info_chacha20_poly1305 chacha;
		};
		size_t len;
	} *ci = crypto_info;

	if (t->io.fd < 0)
		return 0;
	if (setsockopt(t->io.fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0 &&
	    errno != EEXIST)
		return 0;
	if (setsockopt(t->io.fd, SOL_TLS, TLS_TX, ci, (socklen_t)ci->len) < 0)
		return 0;
	t->ktls_tx = true;
	return 1;
}

static long tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls_conn *t = BIO_get_data(b);

	switch (cmd) {
	case BIO_CTRL_FLUSH:
		if (t->out.len == 0)
			return 1;
		if (t->ktls_tx) {
			/* Kernel TLS is on: keep the order, that is all. */
			int r = t->io.out(t->io.arg, 0, buf_head(&t->out),
					  t->out.len);

			buf_clear(&t->out);
			return r < 0 ? -1 : 1;
		}
		if (t->io.flush == NULL)
			return 0;
		{
			int r = t->io.flush(t->io.arg, buf_head(&t->out),
					    t->out.len);

			buf_clear(&t->out); /* ownership passed either way */
			return r == 1 ? 1 : 0;
		}
	case TLS_BIO_CTRL_SET_KTLS:
		/* num != 0: transmit (OpenSSL passes SSL3_CC_WRITE).
		 * Receive is installed by us, later. */
		if (num == 0)
			return 0;
		return tls_ktls_set_tx(t, ptr);
	case BIO_CTRL_GET_KTLS_SEND:
		return t->ktls_tx ? 1 : 0;
	case BIO_CTRL_GET_KTLS_RECV:
		return 0;
	case TLS_BIO_CTRL_SET_SEND_CTRL_MSG:
		t->ctrl_type = (uint8_t)num;
		return 1;
	case TLS_BIO_CTRL_CLEAR_CTRL_MSG:
		t->ctrl_type = 0;
		return 1;
	case BIO_CTRL_PENDING:
		return (long)t->in.len;
	case BIO_CTRL_WPENDING:
		return (long)t->out.len;
	case BIO_CTRL_PUSH:
	case BIO_CTRL_POP:
		return 0;
	default:
		return 0;
	}
}

static int tls_bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static int tls_bio_puts(BIO *b, const char *s)
{
	return tls_bio_write(b, s, (int)strlen(s));
}

static void tls_global_init(void)
{
	tls_conn_ex_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	tls_bio_method = BIO_meth_new(
		BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ringmail");
	BIO_meth_set_write(tls_bio_method, tls_bio_write);
	BIO_meth_set_read(tls_bio_method, tls_bio_read);
	BIO_meth_set_puts(tls_bio_method, tls_bio_puts);
	BIO_meth_set_ctrl(tls_bio_method, tls_bio_ctrl);
	BIO_meth_set_create(tls_bio_method, tls_bio_create);
}

/* ---- contexts ---- */

static void tls_log_openssl(const char *what, const char *file)
{
	unsigned long e = ERR_get_error();
	char reason[256] = "unknown error";

	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	log_err("tls: %s: %s: %s", file != NULL ? file : "-", what, reason);
}

/* Keep the secrets kernel receive needs (see tls_conn_ktls_rx_try). */
static void tls_keylog(const SSL *ssl, const char *line)
{
	struct tls_conn *t = SSL_get_ex_data(ssl, tls_conn_ex_idx);
	const char *want;
	const char *p;
	size_t n = 0;

	if (t == NULL)
		return;
	if (strncmp(line, "CLIENT_RANDOM ", 14) == 0)
		want = "CLIENT_RANDOM ";
	else
		want = t->server ? "CLIENT_TRAFFIC_SECRET_0 "
				 : "SERVER_TRAFFIC_SECRET_0 ";
	if (strncmp(line, want, strlen(want)) != 0)
		return;
	p = strchr(line + strlen(want), ' ');
	if (p == NULL)
		return;
	p++;
	while (p[0] != '\0' && p[1] != '\0' && n < sizeof(t->secret)) {
		unsigned int v;

		if (sscanf(p, "%2x", &v) != 1)
			return;
		t->secret[n++] = (uint8_t)v;
		p += 2;
	}
	t->secret_len = n;
	t->have_secret = true;
}

static int tls_alpn_select(SSL *ssl, const unsigned char **out,
			   unsigned char *outlen, const unsigned char *in,
			   unsigned int inlen, void *arg)
{
	struct tls_ctx *ctx = arg;
	unsigned char *sel = NULL;

	(void)ssl;
	if (ctx->alpn_wire == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	/* Server preference order. */
	if (SSL_select_next_proto(&sel, outlen, ctx->alpn_wire,
				  (unsigned)ctx->alpn_wire_len, in,
				  inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static bool tls_name_match(const char *pattern, const char *name)
{
	const char *dot;

	if (strcasecmp(pattern, name) == 0)
		return true;
	if (strncmp(pattern, "*.", 2) != 0)
		return false;
	dot = strchr(name, '.');
	return dot != NULL && dot != name &&
	       strcasecmp(dot + 1, pattern + 2) == 0;
}

static int tls_servername(SSL *ssl, int *al, void *arg)
{
	struct tls_ctx *ctx = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)al;
	if (name == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	pthread_mutex_lock(&ctx->mtx);
	for (unsigned i = 0; i < ctx->nsni; i++) {
		if (tls_name_match(ctx->sni[i].name, name)) {
			SSL_set_SSL_CTX(ssl, ctx->sni[i].ctx);
			break;
		}
	}
	pthread_mutex_unlock(&ctx->mtx);
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *tls_ctx_build(struct tls_ctx *ctx, const char *cert,
			      const char *key)
{
	const struct tls_ctx_opts *o = &ctx->opts;
	SSL_CTX *s = SSL_CTX_new(o->server ? TLS_server_method()
					   : TLS_client_method());

	if (s == NULL) {
		tls_log_openssl("SSL_CTX_new", NULL);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(s, o->min_version ? o->min_version
							: TLS1_2_VERSION);
	if (o->max_version != 0)
		SSL_CTX_set_max_proto_version(s, o->max_version);
	SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION |
				       SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (o->ktls != TLS_KTLS_NO && tls_ktls_available())
		SSL_CTX_set_options(s, SSL_OP_ENABLE_KTLS);
	else
		/* Userspace TLS: an idle connection keeps no 2 x 16 KiB
		 * record buffers (10,000 idle IMAP clients; ~9 KiB less
		 * per connection measured). Not combined with kTLS. */
		SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_mode(s, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				    SSL_MODE_ENABLE_PARTIAL_WRITE);
	SSL_CTX_set_keylog_callback(s, tls_keylog);
	if ((o->cipher_list != NULL &&
	     !SSL_CTX_set_cipher_list(s, o->cipher_list)) ||
	    (o->ciphersuites != NULL &&
	     !SSL_CTX_set_ciphersuites(s, o->ciphersuites))) {
		tls_log_openssl("cipher list", NULL);
		goto fail;
	}
	if (o->server) {
		if (SSL_CTX_use_certificate_chain_file(s, cert) != 1) {
			tls_log_openssl("certificate", cert);
			goto fail;
		}
		if (SSL_CTX_use_PrivateKey_file(s, key, SSL_FILETYPE_PEM) !=
			    1 ||
		    SSL_CTX_check_private_key(s) != 1) {
			tls_log_openssl("private key", key);
			goto fail;
		}
		SSL_CTX_set_alpn_select_cb(s, tls_alpn_select, ctx);
		SSL_CTX_set_tlsext_servername_callback(s, tls_servername);
		SSL_CTX_set_tlsext_servername_arg(s, ctx);
	} else {
		if (ctx->alpn_wire != NULL &&
		    SSL_CTX_set_alpn_protos(s, ctx->alpn_wire,
					    (unsigned)ctx->alpn_wire_len) != 0)
			goto fail;
		if (o->insecure) {
			SSL_CTX_set_verify(s, SSL_VERIFY_NONE, NULL);
		} else {
			SSL_CTX_set_verify(s, SSL_VERIFY_PEER, NULL);
			if ((ctx->ca_file != NULL &&
			     SSL_CTX_load_verify_locations(s, ctx->ca_file,
							   NULL) != 1) ||
			    ((ctx->ca_file == NULL || o->ca_system) &&
			     SSL_CTX_set_default_verify_paths(s) != 1)) {
				tls_log_openssl("CA file", ctx->ca_file);
				goto fail;
			}
		}
	}
	return s;
fail:
	SSL_CTX_free(s);
	return NULL;
}

static char *tls_strdup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

int tls_ctx_new(const struct tls_ctx_opts *opts, struct tls_ctx **ctx_r)
{
	struct tls_ctx *ctx;
	size_t n = 0, wl = 0;

	pthread_once(&tls_once, tls_global_init);
	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL)
		return -1;
	ctx->opts = *opts;
	ctx->cert_file = tls_strdup_or_null(opts->cert_file);
	ctx->key_file = tls_strdup_or_null(opts->key_file);
	ctx->ca_file = tls_strdup_or_null(opts->ca_file);
	pthread_mutex_init(&ctx->mtx, NULL);
	for (n = 0; opts->alpn != NULL && opts->alpn[n] != NULL; n++)
		wl += 1 + strlen(opts->alpn[n]);
	if (wl > 0) {
		size_t off = 0;

		ctx->alpn_wire = malloc(wl);
		for (size_t i = 0; i < n; i++) {
			size_t l = strlen(opts->alpn[i]);

			ctx->alpn_wire[off++] = (unsigned char)l;
			memcpy(ctx->alpn_wire + off, opts->alpn[i], l);
			off += l;
		}
		ctx->alpn_wire_len = wl;
	}
	if (opts->server && (ctx->cert_file == NULL || ctx->key_file == NULL)) {
		log_err("tls: server context needs a certificate and a key");
		tls_ctx_free(&ctx);
		return -1;
	}
	ctx->ssl = tls_ctx_build(ctx, ctx->cert_file, ctx->key_file);
	if (ctx->ssl == NULL) {
		tls_ctx_free(&ctx);
		return -1;
	}
	if (opts->ktls == TLS_KTLS_YES && !tls_ktls_available()) {
		static int warned;

		if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
			log_warn("ktls=unavailable reason=\"no tls ULP in this "
				 "kernel\" fallback=userspace");
	}
	*ctx_r = ctx;
	return 0;
}

int tls_ctx_add_sni_cert(struct tls_ctx *ctx, const char *name,
			 const char *cert_file, const char *key_file)
{
	struct tls_sni_cert *sc;
	SSL_CTX *s;

	if (ctx->nsni >= TLS_MAX_SNI)
		return -1;
	s = tls_ctx_build(ctx, cert_file, key_file);
	if (s == NULL)
		return -1;
	pthread_mutex_lock(&ctx->mtx);
	sc = &ctx->sni[ctx->nsni++];
	sc->name = strdup(name);
	sc->cert_file = strdup(cert_file);
	sc->key_file = strdup(key_file);
	sc->ctx = s;
	pthread_mutex_unlock(&ctx->mtx);
	return 0;
}

int tls_ctx_reload(struct tls_ctx *ctx)
{
	SSL_CTX *def, *sni[TLS_MAX_SNI];
	SSL_CTX *old;

	if (!ctx->opts.server)
		return 0;
	def = tls_ctx_build(ctx, ctx->cert_file, ctx->key_file);
	if (def == NULL)
		return -1;
	for (unsigned i = 0; i < ctx->nsni; i++) {
		sni[i] = tls_ctx_build(ctx, ctx->sni[i].cert_file,
				       ctx->sni[i].key_file);
		if (sni[i] == NULL) {
			for (unsigned k = 0; k < i; k++)
				SSL_CTX_free(sni[k]);
			SSL_CTX_free(def);
			return -1;
		}
	}
	/* Live SSL objects hold their own references: swapping is safe. */
	pthread_mutex_lock(&ctx->mtx);
	old = ctx->ssl;
	ctx->ssl = def;
	SSL_CTX_free(old);
	for (unsigned i = 0; i < ctx->nsni; i++) {
		old = ctx->sni[i].ctx;
		ctx->sni[i].ctx = sni[i];
		SSL_CTX_free(old);
	}
	pthread_mutex_unlock(&ctx->mtx);
	return 0;
}

void tls_ctx_free(struct tls_ctx **ctxp)
{
	struct tls_ctx *ctx = *ctxp;

	if (ctx == NULL)
		return;
	SSL_CTX_free(ctx->ssl);
	for (unsigned i = 0; i < ctx->nsni; i++) {
		SSL_CTX_free(ctx->sni[i].ctx);
		free(ctx->sni[i].name);
		free(ctx->sni[i].cert_file);
		free(ctx->sni[i].key_file);
	}
	pthread_mutex_destroy(&ctx->mtx);
	free(ctx->cert_file);
	free(ctx->key_file);
	free(ctx->ca_file);
	free(ctx->alpn_wire);
	free(ctx);
	*ctxp = NULL;
}

/* ---- connections ---- */

static bool tls_is_ip_literal(const char *s)
{
	struct in6_addr a6;

	return inet_pton(AF_INET, s, &a6) == 1 ||
	       inet_pton(AF_INET6, s, &a6) == 1;
}

int tls_conn_new(struct tls_ctx *ctx, const struct tls_conn_io *io,
		 const char *sni, struct tls_conn **t_r)
{
	struct tls_conn *t = calloc(1, sizeof(*t));
	SSL_CTX *s;

	if (t == NULL)
		return -1;
	t->io = *io;
	t->server = ctx->opts.server;
	buf_init(&t->in, TLS_INPUT_MAX);
	buf_init(&t->out, 0);
	pthread_mutex_lock(&ctx->mtx);
	s = ctx->ssl;
	t->ssl = SSL_new(s); /* takes its own reference on s */
	pthread_mutex_unlock(&ctx->mtx);
	t->bio = BIO_new(tls_bio_method);
	if (t->ssl == NULL || t->bio == NULL)
		goto fail;
	BIO_set_data(t->bio, t);
	SSL_set_bio(t->ssl, t->bio, t->bio);
	SSL_set_ex_data(t->ssl, tls_conn_ex_idx, t);
	if (t->server) {
		SSL_set_accept_state(t->ssl);
	} else {
		SSL_set_connect_state(t->ssl);
		if (sni != NULL && tls_is_ip_literal(sni)) {
			/* RFC 6066 3: no IP literal in SNI; verify the
			 * certificate's iPAddress entries instead. */
			if (!ctx->opts.insecure &&
			    X509_VERIFY_PARAM_set1_ip_asc(
				    SSL_get0_param(t->ssl), sni) != 1)
				goto fail;
		} else if (sni != NULL) {
			SSL_set_tlsext_host_name(t->ssl, sni);
			if (!ctx->opts.insecure)
				SSL_set1_host(t->ssl, sni);
		}
	}
	*t_r = t;
	return 0;
fail:
	if (t->ssl != NULL)
		SSL_free(t->ssl);
	else if (t->bio != NULL)
		BIO_free(t->bio);
	buf_free(&t->in);
	free(t);
	return -1;
}

void tls_conn_free(struct tls_conn **tp)
{
	struct tls_conn *t = *tp;

	if (t == NULL)
		return;
	SSL_free(t->ssl); /* frees the BIO too */
	buf_free(&t->in);
	buf_free(&t->out);
	OPENSSL_cleanse(t->secret, sizeof(t->secret));
	free(t);
	*tp = NULL;
}

int tls_conn_feed(struct tls_conn *t, const uint8_t *data, size_t len)
{
	return buf_append(&t->in, data, len) < 0 ? -1 : 0;
}

/* Hand what the last SSL call produced to the wire. */
static int tls_conn_push(struct tls_conn *t)
{
	int r = 0;

	if (t->out.len > 0) {
		r = t->io.out(t->io.arg, 0, buf_head(&t->out), t->out.len);
		buf_clear(&t->out);
	}
	return r < 0 ? -1 : 0;
}

static void tls_conn_set_error(struct tls_conn *t, const char *what)
{
	unsigned long e = ERR_get_error();
	char reason[128] = "";

	long vr = t->server ? X509_V_OK : SSL_get_verify_result(t->ssl);

	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	if (vr != X509_V_OK) {
		/* Say why the peer's certificate was refused. */
		snprintf(t->err, sizeof(t->err),
			 "%s: certificate verify failed (%s)", what,
			 X509_verify_cert_error_string(vr));
		return;
	}
	snprintf(t->err, sizeof(t->err), "%s%s%s", what, reason[0] ? ": " : "",
		 reason);
}

int tls_conn_process(struct tls_conn *t, struct buf *plain)
{
	int r, err;
	bool progress = false;

	if (!t->hs_done) {
		r = SSL_do_handshake(t->ssl);
		if (tls_conn_push(t) < 0) {
			snprintf(t->err, sizeof(t->err), "output failed");
			return -1;
		}
		if (r != 1) {
			err = SSL_get_error(t->ssl, r);
			if (err == SSL_ERROR_WANT_READ ||
			    err == SSL_ERROR_WANT_WRITE)
				return 0;
			tls_conn_set_error(t, "handshake failed");
			return -1;
		}
		t->hs_done = true;
		progress = true;
	}
	for (;;) {
		size_t room, got = 0;
		uint8_t *dst;

		if (plain->max != 0 && plain->len >= plain->max)
			return 1;
		/* No more plaintext than ciphertext is buffered: do not grow
		 * @plain to 16 KiB for a 20-octet command (an idle TLS
		 * connection kept that buffer: 10,000 idle IMAP clients). */
		room = t->in.len + (size_t)SSL_pending(t->ssl);
		if (room < 512)
			room = 512;
		if (room > 16384)
			room = 16384;
		if (plain->max != 0 && plain->max - plain->len < room)
			room = plain->max - plain->len;
		dst = buf_reserve(plain, room);
		if (dst == NULL)
			return 1;
		r = SSL_read_ex(t->ssl, dst, room, &got);
		if (tls_conn_push(t) < 0) {
			snprintf(t->err, sizeof(t->err), "output failed");
			return -1;
		}
		if (r == 1) {
			buf_commit(plain, got);
			t->app_read = true;
			progress = true;
			continue;
		}
		err = SSL_get_error(t->ssl, r);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
			return progress ? 1 : 0;
		if (err == SSL_ERROR_ZERO_RETURN)
			return -2;
		tls_conn_set_error(t, "read failed");
		return -1;
	}
}

int tls_conn_write(struct tls_conn *t, const uint8_t *data, size_t len)
{
	size_t done = 0, w;

	while (done < len) {
		if (SSL_write_ex(t->ssl, data + done, len - done, &w) != 1) {
			tls_conn_set_error(t, "write failed");
			(void)tls_conn_push(t);
			return -1;
		}
		done += w;
	}
	return tls_conn_push(t);
}

void tls_conn_shutdown(struct tls_conn *t)
{
	(void)SSL_shutdown(t->ssl);
	ERR_clear_error();
	(void)tls_conn_push(t);
}

bool tls_conn_handshake_done(const struct tls_conn *t)
{
	return t->hs_done;
}

const char *tls_conn_alpn(const struct tls_conn *t)
{
	static __thread char alpn[64];
	const unsigned char *p = NULL;
	unsigned int n = 0;

	SSL_get0_alpn_selected(t->ssl, &p, &n);
	if (p == NULL || n == 0 || n >= sizeof(alpn))
		return "";
	memcpy(alpn, p, n);
	alpn[n] = '\0';
	return alpn;
}

const char *tls_conn_sni(const struct tls_conn *t)
{
	const char *s = SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);

	return s != NULL ? s : "";
}

const char *tls_conn_version(const struct tls_conn *t)
{
	return t->hs_done ? SSL_get_version(t->ssl) : "";
}

const char *tls_conn_cipher(const struct tls_conn *t)
{
	const char *c = SSL_get_cipher_name(t->ssl);

	return c != NULL ? c : "";
}

void tls_conn_peer_cn(const struct tls_conn *t, char *out, size_t out_len)
{
	X509 *x = SSL_get1_peer_certificate(t->ssl);

	out[0] = '\0';
	if (x == NULL)
		return;
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
				      out, (int)out_len) < 0)
		out[0] = '\0';
	X509_free(x);
}

const char *tls_conn_error(const struct tls_conn *t)
{
	return t->err;
}

bool tls_conn_ktls_tx(const struct tls_conn *t)
{
	return t->ktls_tx;
}

bool tls_conn_ktls_rx(const struct tls_conn *t)
{
	return t->ktls_rx;
}

/* ---- kernel TLS receive, installed from the key log ---- */

static int tls_kdf(const char *kdf_name, OSSL_PARAM *params, uint8_t *out,
		   size_t out_len)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, kdf_name, NULL);
	EVP_KDF_CTX *kctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
	int ok = kctx != NULL && EVP_KDF_derive(kctx, out, out_len, params) > 0;

	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return ok ? 0 : -1;
}

/* TLS 1.3 HKDF-Expand-Label(secret, label, "", len) (RFC 8446 7.1). */
static int tls13_expand(const char *md, const uint8_t *secret, size_t slen,
			const char *label, uint8_t *out, size_t out_len)
{
	uint8_t info[64];
	size_t ll = strlen(label), n = 0;
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
	OSSL_PARAM p[5];

	info[n++] = (uint8_t)(out_len >> 8);
	info[n++] = (uint8_t)out_len;
	info[n++] = (uint8_t)(6 + ll);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, ll);
	n += ll;
	info[n++] = 0;
	p[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	p[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						(char *)md, 0);
	p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
						 (void *)secret, slen);
	p[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
	p[4] = OSSL_PARAM_construct_end();
	return tls_kdf("HKDF", p, out, out_len);
}

int tls_conn_ktls_rx_try(struct tls_conn *t)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(t->ssl);
	int version = SSL_version(t->ssl);
	uint16_t cid;
	size_t key_len, iv_len;
	uint8_t key[32], iv[12], seq[8] = {0};
	union {
		struct tls12_crypto_info_aes_gcm_128 g128;
		struct tls12_crypto_info_aes_gcm_256 g256;
		struct tls12_crypto_info_chacha20_poly1305 cc;
	} ci;
	socklen_t ci_len;
	const char *md;
	int rc = 0;

	if (t->io.fd < 0 || !t->hs_done || t->ktls_rx || !t->have_secret ||
	    t->in.len > 0 || SSL_pending(t->ssl) > 0 || t->app_read ||
	    !tls_ktls_available() || c == NULL)
		return 0;
	cid = (uint16_t)(SSL_CIPHER_get_id(c) & 0xffff);
	md = SSL_CIPHER_get_handshake_digest(c) != NULL
		     ? EVP_MD_get0_name(SSL_CIPHER_get_handshake_digest(c))
		     : "SHA256";
	memset(&ci, 0, sizeof(ci));
	if (version == TLS1_3_VERSION) {
		/* 0x1301 AES-128-GCM, 0x1302 AES-256-GCM, 0x1303 ChaCha20 */
		key_len = cid == 0x1302 ? 32 : cid == 0x1303 ? 32 : 16;
		if (cid != 0x1301 && cid != 0x1302 && cid != 0x1303)
			goto out;
		iv_len = 12;
		if (tls13_expand(md, t->secret, t->secret_len, "key", key,
				 key_len) < 0 ||
		    tls13_expand(md, t->secret, t->secret_len, "iv", iv,
				 iv_len) < 0)
			goto out;
		/* Nothing from the peer was read under these keys yet. */
	} else if (version == TLS1_2_VERSION) {
		uint8_t kb[2 * 32 + 2 * 4], crand[32], srand[32];
		OSSL_PARAM p[5];
		uint8_t seed[13 + 64];
		size_t mac = 0, fixed_iv = 4;

		if (SSL_CIPHER_is_aead(c) != 1 ||
		    strstr(SSL_CIPHER_get_name(c), "GCM") == NULL)
			goto out;
		key_len = strstr(SSL_CIPHER_get_name(c), "AES256") != NULL ? 32
									   : 16;
		SSL_get_client_random(t->ssl, crand, sizeof(crand));
		SSL_get_server_random(t->ssl, srand, sizeof(srand));
		memcpy(seed, "key expansion", 13);
		memcpy(seed + 13, srand, 32);
		memcpy(seed + 45, crand, 32);
		p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
							(char *)md, 0);
		p[1] = OSSL_PARAM_construct_octet_string(
			OSSL_KDF_PARAM_SECRET, t->secret, t->secret_len);
		p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED,
							 seed, 13 + 64);
		p[3] = OSSL_PARAM_construct_end();
		if (tls_kdf("TLS1-PRF", p, kb,
			    2 * mac + 2 * key_len + 2 * fixed_iv) < 0)
			goto out;
		/* key_block = client_key, server_key, client_iv, server_iv */
		memcpy(key, kb + (t->server ? 0 : key_len), key_len);
		memcpy(iv, kb + 2 * key_len + (t->server ? 0 : fixed_iv),
		       fixed_iv);
		seq[7] = 1; /* the peer's Finished was record 0 */
		iv_len = fixed_iv;
	} else {
		goto out;
	}
	if (key_len == 16 && cid != 0x1303) {
		ci.g128.info.version = version == TLS1_3_VERSION
					       ? TLS_1_3_VERSION
					       : TLS_1_2_VERSION;
		ci.g128.info.cipher_type = TLS_CIPHER_AES_GCM_128;
		memcpy(ci.g128.key, key, 16);
		memcpy(ci.g128.salt, iv, 4);
		if (version == TLS1_3_VERSION)
			memcpy(ci.g128.iv, iv + 4, 8);
		else
			memcpy(ci.g128.iv, seq, 8);
		memcpy(ci.g128.rec_seq, seq, 8);
		ci_len = sizeof(ci.g128);
	} else if (cid != 0x1303) {
		ci.g256.info.version = version == TLS1_3_VERSION
					       ? TLS_1_3_VERSION
					       : TLS_1_2_VERSION;
		ci.g256.info.cipher_type = TLS_CIPHER_AES_GCM_256;
		memcpy(ci.g256.key, key, 32);
		memcpy(ci.g256.salt, iv, 4);
		if (version == TLS1_3_VERSION)
			memcpy(ci.g256.iv, iv + 4, 8);
		else
			memcpy(ci.g256.iv, seq, 8);
		memcpy(ci.g256.rec_seq, seq, 8);
		ci_len = sizeof(ci.g256);
	} else {
		ci.cc.info.version = TLS_1_3_VERSION;
		ci.cc.info.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
		memcpy(ci.cc.key, key, 32);
		memcpy(ci.cc.iv, iv, 12);
		memcpy(ci.cc.rec_seq, seq, 8);
		ci_len = sizeof(ci.cc);
	}
	if (setsockopt(t->io.fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0 &&
	    errno != EEXIST && !t->ktls_tx)
		goto out;
	if (setsockopt(t->io.fd, SOL_TLS, TLS_RX, &ci, ci_len) < 0) {
		log_debug("tls: kernel receive not engaged: %s",
			  strerror(errno));
		goto out;
	}
	t->ktls_rx = true;
	rc = 1;
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(iv, sizeof(iv));
	OPENSSL_cleanse(&ci, sizeof(ci));
	OPENSSL_cleanse(t->secret, sizeof(t->secret));
	t->have_secret = false;
	return rc;
}
