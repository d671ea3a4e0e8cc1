/* app/serve: the `ringmail serve` runtime: listeners, worker threads with
 * one loop each, TLS contexts per service, signals (SIGHUP reload, SIGTERM
 * drain) and systemd notification. */
#ifndef RINGMAIL_APP_SERVE_H
#define RINGMAIL_APP_SERVE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/conn.h"
#include "core/loop.h"
#include "core/tls.h"

enum serve_svc {
	SERVE_SVC_SMTP = 0,    /* 25: MX, STARTTLS */
	SERVE_SVC_SUBMISSION,  /* 587: STARTTLS */
	SERVE_SVC_SUBMISSIONS, /* 465: implicit TLS */
	SERVE_SVC_IMAP,        /* 143: STARTTLS */
	SERVE_SVC_IMAPS,       /* 993: implicit TLS */
	SERVE_SVC_HTTPS,       /* 443: implicit TLS, ALPN dispatch */
	SERVE_SVC_HTTP,        /* 80 */
	SERVE_SVC_COUNT,
};

/* What `serve` needs, derived from the configuration. */
struct smtp_server;
struct imap_server;
struct imap_worker;

struct serve_settings {
	const char *mail_domain;
	const char *listen[SERVE_SVC_COUNT]; /* space-separated host:port */
	const char *tls_cert, *tls_key;
	enum loop_backend backend;
	bool uring_debian12;
	enum tls_ktls_mode ktls;
	unsigned workers; /* 0 = CPUs */
	uint64_t drain_timeout_ms;
	uint64_t idle_timeout_ms;
	struct smtp_server *smtp; /* NULL: SMTP ports answer 421 */
	struct imap_server *imap; /* NULL: IMAP ports answer BYE */
};

/* Static facts about each service. */
struct serve_svc_def {
	const char *name; /* also the systemd FileDescriptorName */
	bool implicit_tls;
	int tls_min_version;
	const char *const *alpn;
};

const struct serve_svc_def *serve_svc_def(enum serve_svc svc);
/* Service for a systemd socket name; -1 if unknown. */
int serve_svc_by_name(const char *name);

/* Start everything, run until SIGTERM/SIGINT has drained, return the exit
 * status. */
int serve_run(const struct serve_settings *st);

/* The per-connection session placeholder until the protocol modules
 * land: answers with each protocol's "service not available" reply. */
void serve_banner_start(struct loop *l, int fd, enum serve_svc svc,
			struct tls_ctx *tls, const char *mail_domain,
			uint64_t idle_timeout_ms);
/* The same for 443 with an IMAP worker: ALPN "imap" goes to @imap. */
void serve_banner_start_mux(struct loop *l, int fd, enum serve_svc svc,
			    struct tls_ctx *tls, const char *mail_domain,
			    uint64_t idle_timeout_ms, struct imap_worker *imap,
			    const struct sockaddr *peer, socklen_t peer_len);

#endif
