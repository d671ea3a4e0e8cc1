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
struct http_server;

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
	struct http_server *http; /* NULL: HTTP answers 503 */
};

/* Static facts about each service (listener kind). Which protocol serves
 * it is the protocol table's business (core/proto). */
struct serve_svc_def {
	const char *name; /* also the systemd FileDescriptorName */
	bool implicit_tls;
	int tls_min_version;
	bool alpn; /* dispatched on the negotiated ALPN (443) */
};

const struct serve_svc_def *serve_svc_def(enum serve_svc svc);
/* Service for a systemd socket name; -1 if unknown. */
int serve_svc_by_name(const char *name);

/* Start everything, run until SIGTERM/SIGINT has drained, return the exit
 * status. */
int serve_run(const struct serve_settings *st);

/* What the placeholder entry needs on one loop. */
struct serve_banner_worker {
	struct loop *loop;
	const char *mail_domain;
	uint64_t idle_timeout_ms;
};

struct proto;
/* The table's fallback (each protocol's "not available" reply) and, with
 * @http, the HTTP entry (listener http, ALPN "http/1.1" and none: 503)
 * for a serve without the HTTP server. Boot time; 0 or proto_add's
 * error. */
int serve_banner_proto_add(struct proto *p, bool http);
/* In a loop's copy of the table: those rows go to @bw. */
void serve_banner_proto_bind(struct proto *p, struct serve_banner_worker *bw);

#endif
