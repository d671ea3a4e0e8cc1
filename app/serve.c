/* app/serve: listeners, workers, signals, systemd notification. */
#include "app/serve.h"

/* system */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* third party */
#include <openssl/ssl.h>
#include <systemd/sd-daemon.h>

/* project */
#include "core/listen.h"
#include "core/log.h"
#include "core/http/http_server.h"
#include "core/proto.h"
#include "imap-proxy/imap_server.h"
#include "smtp/smtp_server.h"

#define SERVE_MAX_LISTENERS 32
#define SERVE_MAX_WORKERS   256
#define SERVE_BACKLOG       1024

static const struct serve_svc_def serve_svc_defs[SERVE_SVC_COUNT] = {
	[SERVE_SVC_SMTP] = {"smtp", false, TLS1_2_VERSION, false},
	[SERVE_SVC_SUBMISSION] = {"submission", false, TLS1_3_VERSION, false},
	[SERVE_SVC_SUBMISSIONS] = {"submissions", true, TLS1_3_VERSION, false},
	[SERVE_SVC_IMAP] = {"imap", false, TLS1_3_VERSION, false},
	[SERVE_SVC_IMAPS] = {"imaps", true, TLS1_3_VERSION, false},
	/* 443 carries IMAP and submission too: TLS 1.3 would be their
	 * minimum, but HTTPS clients may still speak 1.2. The mail
	 * protocols behind ALPN refuse 1.2 themselves. */
	[SERVE_SVC_HTTPS] = {"https", true, TLS1_2_VERSION, true},
	[SERVE_SVC_HTTP] = {"http", false, 0, false},
};

struct serve_listener {
	enum serve_svc svc;
	int fd;
	char addr[136];
	bool activated;
};

struct serve;

struct serve_worker {
	struct serve *srv;
	unsigned idx;
	pthread_t thread;
	struct loop *loop;
	struct loop_listener *li[SERVE_MAX_LISTENERS];
	struct smtp_worker *smtp;
	struct imap_worker *imap;
	struct http_worker *http;
	struct serve_banner_worker banner;
	struct proto proto; /* this loop's copy, bound to its workers */
	int started;        /* 1 ok, -1 failed */
};

struct serve_accept_arg {
	struct serve_worker *w;
	enum serve_svc svc;
};

struct serve {
	const struct serve_settings *st;
	struct tls_ctx *tls[SERVE_SVC_COUNT];
	struct proto proto; /* the rows; workers bind copies */
	const char *alpn[PROTO_ROWS_MAX + 1];
	struct serve_listener ls[SERVE_MAX_LISTENERS];
	unsigned nls;
	struct serve_worker *workers;
	unsigned nworkers;
	struct serve_accept_arg *accept_args; /* nworkers * nls */
	pthread_mutex_t start_mtx;
	pthread_cond_t start_cond;
	unsigned nstarted;
};

const struct serve_svc_def *serve_svc_def(enum serve_svc svc)
{
	return &serve_svc_defs[svc];
}

int serve_svc_by_name(const char *name)
{
	for (int i = 0; i < SERVE_SVC_COUNT; i++) {
		if (strcmp(serve_svc_defs[i].name, name) == 0)
			return i;
	}
	return -1;
}

/* ---- listeners ---- */

static int serve_listeners_systemd(struct serve *srv)
{
	struct listen_sock socks[SERVE_MAX_LISTENERS];
	int n, i, svc;

	n = listen_take_systemd(socks, SERVE_MAX_LISTENERS);
	if (n < 0) {
		log_err("serve: systemd sockets: %s", strerror(-n));
		return -1;
	}
	for (i = 0; i < n; i++) {
		svc = serve_svc_by_name(socks[i].name);
		if (svc < 0) {
			log_err("serve: socket-activated fd %d has name '%s'; "
				"expected one of smtp, submission, "
				"submissions, imap, imaps, https, http",
				socks[i].fd, socks[i].name);
			return -1;
		}
		srv->ls[srv->nls].svc = (enum serve_svc)svc;
		srv->ls[srv->nls].fd = socks[i].fd;
		srv->ls[srv->nls].activated = true;
		snprintf(srv->ls[srv->nls].addr, sizeof(srv->ls[0].addr), "%s",
			 socks[i].addr);
		srv->nls++;
	}
	return n;
}

static int serve_listeners_bind(struct serve *srv)
{
	for (int svc = 0; svc < SERVE_SVC_COUNT; svc++) {
		const char *p = srv->st->listen[svc];
		char one[136];
		size_t len;

		while (p != NULL && *p != '\0') {
			struct sockaddr_storage ss;
			socklen_t sl;
			int fd;

			p += strspn(p, " \t,");
			len = strcspn(p, " \t,");
			if (len == 0)
				break;
			if (len >= sizeof(one) ||
			    srv->nls >= SERVE_MAX_LISTENERS) {
				log_err("serve: too many or too long listen "
					"addresses for %s",
					serve_svc_defs[svc].name);
				return -1;
			}
			memcpy(one, p, len);
			one[len] = '\0';
			p += len;
			if (listen_addr_parse(one, &ss, &sl) < 0) {
				log_err("serve: %s: invalid listen address "
					"'%s'",
					serve_svc_defs[svc].name, one);
				return -1;
			}
			fd = listen_bind((struct sockaddr *)&ss, sl,
					 SERVE_BACKLOG);
			if (fd < 0) {
				log_err("serve: %s: cannot listen on %s: %s",
					serve_svc_defs[svc].name, one,
					strerror(-fd));
				return -1;
			}
			srv->ls[srv->nls].svc = (enum serve_svc)svc;
			srv->ls[srv->nls].fd = fd;
			listen_fd_name(fd, srv->ls[srv->nls].addr,
				       sizeof(srv->ls[0].addr));
			srv->nls++;
		}
	}
	return 0;
}

/* ---- TLS ---- */

static int serve_tls_setup(struct serve *srv)
{
	for (int svc = 0; svc < SERVE_SVC_COUNT; svc++) {
		struct tls_ctx_opts o = {
			.server = true,
			.cert_file = srv->st->tls_cert,
			.key_file = srv->st->tls_key,
			.min_version = serve_svc_defs[svc].tls_min_version,
			.alpn = serve_svc_defs[svc].alpn ? srv->alpn : NULL,
			.ktls = srv->st->ktls,
		};
		bool used = false;

		if (serve_svc_defs[svc].tls_min_version == 0)
			continue;
		for (unsigned i = 0; i < srv->nls; i++)
			used = used || srv->ls[i].svc == (enum serve_svc)svc;
		if (!used)
			continue;
		if (tls_ctx_new(&o, &srv->tls[svc]) < 0) {
			log_err("serve: %s: TLS setup failed (cert %s, key "
				"%s)",
				serve_svc_defs[svc].name, o.cert_file,
				o.key_file);
			return -1;
		}
	}
	return 0;
}

static void serve_tls_reload(struct serve *srv)
{
	int failed = 0;

	for (int svc = 0; svc < SERVE_SVC_COUNT; svc++) {
		if (srv->tls[svc] != NULL && tls_ctx_reload(srv->tls[svc]) < 0)
			failed++;
	}
	if (failed)
		log_warn("serve: reload: %d TLS contexts kept their previous "
			 "certificate",
			 failed);
	else
		log_info("serve: reload: certificates reloaded");
}

/* ---- workers ---- */

static void serve_accept(struct loop_listener *li, int fd,
			 const struct sockaddr *peer, socklen_t peer_len,
			 void *arg)
{
	struct serve_accept_arg *a = arg;
	const struct serve_svc_def *d = &serve_svc_defs[a->svc];
	struct serve *srv = a->w->srv;

	(void)li;
	if (d->alpn)
		proto_accept_alpn(&a->w->proto, a->w->loop, d->name, fd, peer,
				  peer_len, srv->tls[a->svc],
				  srv->st->idle_timeout_ms);
	else
		proto_accept(&a->w->proto, d->name, fd, peer, peer_len,
			     srv->tls[a->svc], d->implicit_tls);
}

/* The rows every module serves, in ALPN preference order. */
static int serve_proto_setup(struct serve *srv)
{
	int r;

	proto_init(&srv->proto);
	/* HTTP first: "h2" leads the ALPN preference order. */
	r = srv->st->http != NULL ? http_server_proto_add(&srv->proto) : 0;
	if (r == 0)
		r = serve_banner_proto_add(&srv->proto, srv->st->http == NULL);
	if (r == 0 && srv->st->imap != NULL)
		r = imap_server_proto_add(&srv->proto);
	if (r == 0 && srv->st->smtp != NULL)
		r = smtp_server_proto_add(&srv->proto);
	if (r < 0) {
		log_err("serve: protocol table: %s", strerror(-r));
		return -1;
	}
	proto_alpn_list(&srv->proto, srv->alpn, PROTO_ROWS_MAX + 1);
	return 0;
}

static void serve_worker_started(struct serve_worker *w, int ok)
{
	pthread_mutex_lock(&w->srv->start_mtx);
	w->started = ok;
	w->srv->nstarted++;
	pthread_cond_broadcast(&w->srv->start_cond);
	pthread_mutex_unlock(&w->srv->start_mtx);
}

static void *serve_worker_main(void *arg)
{
	struct serve_worker *w = arg;
	struct serve *srv = w->srv;
	struct loop_opts o = {
		.backend = srv->st->backend,
		.uring_debian12 = srv->st->uring_debian12,
		.worker_id = w->idx,
	};
	int r;

	r = loop_new(&o, &w->loop);
	if (r < 0) {
		log_err("worker %u: loop setup failed: %s", w->idx,
			strerror(-r));
		serve_worker_started(w, -1);
		return NULL;
	}
	w->proto = srv->proto;
	w->banner = (struct serve_banner_worker){
		.loop = w->loop,
		.mail_domain = srv->st->mail_domain,
		.idle_timeout_ms = srv->st->idle_timeout_ms,
	};
	serve_banner_proto_bind(&w->proto, &w->banner);
	if (srv->st->smtp != NULL) {
		w->smtp = smtp_worker_new(srv->st->smtp, w->loop);
		if (w->smtp == NULL) {
			log_err("worker %u: SMTP setup failed", w->idx);
			serve_worker_started(w, -1);
			return NULL;
		}
		smtp_worker_proto_bind(&w->proto, w->smtp);
	}
	if (srv->st->http != NULL) {
		w->http = http_worker_new(srv->st->http, w->loop);
		if (w->http == NULL) {
			log_err("worker %u: HTTP setup failed", w->idx);
			serve_worker_started(w, -1);
			return NULL;
		}
		http_worker_proto_bind(&w->proto, w->http);
	}
	if (srv->st->imap != NULL) {
		w->imap = imap_worker_new(srv->st->imap, w->loop);
		if (w->imap == NULL) {
			log_err("worker %u: IMAP setup failed", w->idx);
			serve_worker_started(w, -1);
			return NULL;
		}
		imap_worker_proto_bind(&w->proto, w->imap);
	}
	for (unsigned i = 0; i < srv->nls; i++) {
		struct serve_accept_arg *a =
			&srv->accept_args[w->idx * srv->nls + i];

		a->w = w;
		a->svc = srv->ls[i].svc;
		w->li[i] = loop_listen(w->loop, srv->ls[i].fd, serve_accept, a);
		if (w->li[i] == NULL) {
			log_err("worker %u: cannot accept on %s", w->idx,
				srv->ls[i].addr);
			serve_worker_started(w, -1);
			return NULL;
		}
	}
	log_info("worker %u: started backend=%s", w->idx,
		 loop_backend_name(loop_get_backend(w->loop)));
	serve_worker_started(w, 1);
	r = loop_run(w->loop);
	if (r < 0)
		log_err("worker %u: loop failed: %s", w->idx, strerror(-r));
	/* Whatever outlived the drain is closed here, so every session
	 * gets its CLOSED event and frees what it holds (bounded). */
	loop_conn_close_all(w->loop);
	for (int i = 0; i < 200 && loop_conn_count(w->loop) > 0; i++)
		(void)loop_run_once(w->loop, 10);
	smtp_worker_free(&w->smtp);
	for (int i = 0; i < 50 && loop_conn_count(w->loop) > 0; i++)
		(void)loop_run_once(w->loop, 10);
	/* Last: no posted wake-up runs after this (loop_free drops them). */
	imap_worker_free(&w->imap);
	/* loop_free drops what is left without callbacks. */
	http_worker_free(&w->http);
	return NULL;
}

/* Posted to each worker on SIGTERM: stop accepting new connections. */
static void serve_worker_stop_accepting(void *arg)
{
	struct serve_worker *w = arg;

	for (unsigned i = 0; i < w->srv->nls; i++) {
		if (w->li[i] != NULL)
			loop_listener_stop(&w->li[i]);
	}
}

struct serve_count {
	struct serve_worker *w;
	pthread_mutex_t *mtx;
	pthread_cond_t *cond;
	unsigned *pending;
	unsigned *total;
};

static void serve_worker_count(void *arg)
{
	struct serve_count *sc = arg;

	pthread_mutex_lock(sc->mtx);
	/* Clients only: pooled LMTP connections to Dovecot stay open. */
	*sc->total += loop_conn_count_inbound(sc->w->loop);
	(*sc->pending)--;
	pthread_cond_signal(sc->cond);
	pthread_mutex_unlock(sc->mtx);
}

/* Open connections across all workers, asked on their own threads. */
static unsigned serve_conn_total(struct serve *srv)
{
	pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
	struct serve_count sc[SERVE_MAX_WORKERS];
	unsigned pending = srv->nworkers, total = 0;

	for (unsigned i = 0; i < srv->nworkers; i++) {
		sc[i] = (struct serve_count){&srv->workers[i], &mtx, &cond,
					     &pending, &total};
		pthread_mutex_lock(&mtx);
		if (loop_post(srv->workers[i].loop, serve_worker_count,
			      &sc[i]) < 0)
			pending--;
		pthread_mutex_unlock(&mtx);
	}
	pthread_mutex_lock(&mtx);
	while (pending > 0)
		pthread_cond_wait(&cond, &mtx);
	pthread_mutex_unlock(&mtx);
	return total;
}

static uint64_t serve_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* SIGTERM: stop accepting, wait (bounded) for connections to finish. */
static void serve_drain(struct serve *srv)
{
	uint64_t deadline = serve_now_ms() + srv->st->drain_timeout_ms;
	unsigned open_conns;

	sd_notify(0, "STOPPING=1");
	for (unsigned i = 0; i < srv->nworkers; i++)
		(void)loop_post(srv->workers[i].loop,
				serve_worker_stop_accepting, &srv->workers[i]);
	log_info("serve: draining timeout_ms=%" PRIu64,
		 srv->st->drain_timeout_ms);
	for (;;) {
		open_conns = serve_conn_total(srv);
		if (open_conns == 0 || serve_now_ms() >= deadline)
			break;
		usleep(50 * 1000);
	}
	log_info("serve: drained open=%u", open_conns);
}

static unsigned serve_worker_count_default(unsigned want)
{
	long n;

	if (want != 0)
		return want > SERVE_MAX_WORKERS ? SERVE_MAX_WORKERS : want;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return n > SERVE_MAX_WORKERS ? SERVE_MAX_WORKERS : (unsigned)n;
}

static int serve_start_workers(struct serve *srv)
{
	sigset_t all, old;
	int failed = 0;

	srv->nworkers = serve_worker_count_default(srv->st->workers);
	srv->workers = calloc(srv->nworkers, sizeof(*srv->workers));
	srv->accept_args = calloc((size_t)srv->nworkers * (srv->nls + 1),
				  sizeof(*srv->accept_args));
	if (srv->workers == NULL || srv->accept_args == NULL)
		return -1;
	/* Workers never see the process signals; main() waits for them. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned i = 0; i < srv->nworkers; i++) {
		srv->workers[i].srv = srv;
		srv->workers[i].idx = i;
		if (pthread_create(&srv->workers[i].thread, NULL,
				   serve_worker_main, &srv->workers[i]) != 0) {
			log_err("serve: cannot start worker %u", i);
			srv->nworkers = i;
			failed = 1;
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_lock(&srv->start_mtx);
	while (srv->nstarted < srv->nworkers)
		pthread_cond_wait(&srv->start_cond, &srv->start_mtx);
	pthread_mutex_unlock(&srv->start_mtx);
	for (unsigned i = 0; i < srv->nworkers; i++)
		failed = failed || srv->workers[i].started != 1;
	return failed ? -1 : 0;
}

static void serve_stop_workers(struct serve *srv)
{
	for (unsigned i = 0; i < srv->nworkers; i++) {
		if (srv->workers[i].loop != NULL)
			loop_stop(srv->workers[i].loop);
	}
	for (unsigned i = 0; i < srv->nworkers; i++) {
		pthread_join(srv->workers[i].thread, NULL);
		if (srv->workers[i].loop != NULL)
			loop_free(&srv->workers[i].loop);
	}
}

int serve_run(const struct serve_settings *st)
{
	struct serve srv;
	sigset_t sigs;
	int sig, rc = 1;

	memset(&srv, 0, sizeof(srv));
	srv.st = st;
	pthread_mutex_init(&srv.start_mtx, NULL);
	pthread_cond_init(&srv.start_cond, NULL);

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (serve_listeners_systemd(&srv) < 0)
		goto out;
	if (srv.nls == 0 && serve_listeners_bind(&srv) < 0)
		goto out;
	if (srv.nls == 0) {
		log_err("serve: no listeners configured");
		goto out;
	}
	if (serve_proto_setup(&srv) < 0 || serve_tls_setup(&srv) < 0)
		goto out;
	if (st->ktls != TLS_KTLS_NO && !tls_ktls_available())
		log_info("serve: ktls=unavailable (no 'tls' ULP in this "
			 "kernel); TLS runs in userspace");
	if (serve_start_workers(&srv) < 0)
		goto out_workers;
	for (unsigned i = 0; i < srv.nls; i++)
		log_info("serve: listening service=%s addr=%s%s",
			 serve_svc_defs[srv.ls[i].svc].name, srv.ls[i].addr,
			 srv.ls[i].activated ? " (socket-activated)" : "");
	log_info("serve: ready workers=%u domain=%s", srv.nworkers,
		 st->mail_domain);
	sd_notify(0, "READY=1\nSTATUS=serving");

	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			sd_notify(0, "RELOADING=1");
			serve_tls_reload(&srv);
			sd_notify(0, "READY=1");
			continue;
		}
		log_info("serve: signal=%s", sig == SIGTERM ? "TERM" : "INT");
		break;
	}
	serve_drain(&srv);
	rc = 0;
out_workers:
	serve_stop_workers(&srv);
out:
	for (unsigned i = 0; i < srv.nls; i++)
		close(srv.ls[i].fd);
	for (int svc = 0; svc < SERVE_SVC_COUNT; svc++) {
		if (srv.tls[svc] != NULL)
			tls_ctx_free(&srv.tls[svc]);
	}
	free(srv.workers);
	free(srv.accept_args);
	if (rc == 0)
		log_info("serve: stopped");
	return rc;
}
