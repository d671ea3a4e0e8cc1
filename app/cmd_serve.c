/* app/cmd_serve: `ringmail serve [--config FILE]`: the accounts store,
 * the pool, the private Dovecot (when managed) and the SMTP server, then
 * the serve runtime. */
#include "app/cmds.h"

/* system */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

/* project */
#include "app/serve.h"
#include "core/accounts/accounts.h"
#include "core/config.h"
#include "core/events.h"
#include "core/http/http_server.h"
#include "core/log.h"
#include "core/pool.h"
#include "core/ratelimit.h"
#include "filter/dkim.h"
#include "imap-proxy/imap_appversions.h"
#include "imap-proxy/imap_server.h"
#include "core/dovecot/dovecot_conf.h"
#include "core/dovecot/dovecot_run.h"
#include "core/dovecot/dovecot_sup.h"
#include "smtp/smtp_server.h"
#include "www/www_site.h"

#define CMD_SERVE_DOVECOT_START_MS 20000
#define CMD_SERVE_DOVECOT_STOP_MS  10000

static void cmd_serve_settings(const struct config *cfg,
			       struct serve_settings *st)
{
	memset(st, 0, sizeof(*st));
	st->mail_domain = cfg->mail_domain;
	st->listen[SERVE_SVC_SMTP] = cfg->smtp_listen;
	st->listen[SERVE_SVC_SUBMISSION] = cfg->submission_listen;
	st->listen[SERVE_SVC_SUBMISSIONS] = cfg->submissions_listen;
	st->listen[SERVE_SVC_IMAP] = cfg->imap_listen;
	st->listen[SERVE_SVC_IMAPS] = cfg->imaps_listen;
	st->listen[SERVE_SVC_HTTPS] = cfg->https_listen;
	st->listen[SERVE_SVC_HTTP] = cfg->http_listen;
	st->tls_cert = cfg->tls_cert;
	st->tls_key = cfg->tls_key;
	st->backend = cfg->io_backend;
	st->uring_debian12 = cfg->uring_debian12;
	st->ktls = cfg->tls_ktls;
	st->workers = cfg->workers;
	st->drain_timeout_ms = cfg->drain_timeout_ms;
	st->idle_timeout_ms = cfg->smtp_timeout_ms;
}

/* Write the Dovecot config from chatmail.ini, start Dovecot and its
 * supervisor (which restarts it whenever it exits). */
static int cmd_serve_dovecot_start(const struct config *cfg,
				   struct dovecot_settings *ds,
				   struct dovecot_sup **sup_r)
{
	char conf[PATH_MAX];
	int r;

	cmd_dovecot_settings(cfg, ds);
	snprintf(conf, sizeof(conf), "%s/ringmail-dovecot.conf", ds->base_dir);
	if (dovecot_conf_write(ds, conf) < 0)
		return -1;
	/* One left over from a crash: stop it, ours has the same base_dir. */
	if (dovecot_run_pid(ds->base_dir) > 0) {
		log_warn("serve: stopping the Dovecot left running in %s",
			 ds->base_dir);
		(void)dovecot_run_stop(ds->base_dir, CMD_SERVE_DOVECOT_STOP_MS);
	}
	r = dovecot_sup_start(ds, conf, CMD_SERVE_DOVECOT_START_MS, sup_r);
	if (r < 0) {
		log_err("serve: Dovecot did not start (%s): %s", conf,
			strerror(-r));
		return -1;
	}
	log_info("serve: dovecot started base_dir=%s lmtp=%s", ds->base_dir,
		 cfg->dovecot_lmtp_socket);
	return 0;
}

/* A small configured file (the TURN secret) as one line
 * with surrounding white space cut; NULL when unset, unreadable or not
 * one line. Start-up only (blocking). */
static char *cmd_serve_read_line(const char *path, const char *what)
{
	char *buf;
	size_t n = 0, a, b;
	FILE *f;

	if (path == NULL || path[0] == '\0')
		return NULL;
	f = fopen(path, "r");
	if (f == NULL) {
		log_warn("serve: %s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	buf = malloc(16385);
	if (buf != NULL)
		n = fread(buf, 1, 16384, f);
	fclose(f);
	if (buf == NULL)
		return NULL;
	buf[n] = '\0';
	for (a = 0; a < n && strchr(" \t\r\n", buf[a]) != NULL; a++)
		;
	for (b = n; b > a && strchr(" \t\r\n", buf[b - 1]) != NULL; b--)
		;
	buf[b] = '\0';
	memmove(buf, buf + a, b - a + 1);
	if (buf[0] == '\0' || strpbrk(buf, "\r\n") != NULL ||
	    strlen(buf) != b - a) {
		log_warn("serve: %s %s: not one line, ignored", what, path);
		free(buf);
		return NULL;
	}
	return buf;
}

/* The IMAP proxy: a fresh master secret for the Dovecot we manage. */
static int cmd_serve_imap_new(const struct config *cfg,
			      const struct dovecot_settings *ds,
			      struct accounts *acc, struct pool *pool,
			      struct accounts_throttle *throttle,
			      struct events *ev, struct imap_server **imap_r)
{
	char secret[DOVECOT_SECRET_LEN + 1];
	char *turn, *appv, err[256];
	int r;

	*imap_r = NULL;
	if (imap_appversions_read(cfg->appversions_file, &appv, err,
				  sizeof(err)) < 0) {
		/* Served as it is to every client: a broken file is a
		 * configuration error, not something to guess around. */
		log_err("serve: appversions_file %s: %s", cfg->appversions_file,
			err);
		return -1;
	}
	log_info("serve: appversions source=%s octets=%zu",
		 cfg->appversions_file[0] != '\0' ? cfg->appversions_file
						  : "built-in",
		 strlen(appv));
	if (dovecot_secret_new(secret) < 0 ||
	    dovecot_master_users_write(ds, secret) < 0) {
		log_err("serve: imap: cannot set up the Dovecot master user");
		free(appv);
		return -1;
	}
	turn = cmd_serve_read_line(cfg->turn_secret_file, "turn_secret_file");
	{
		struct imap_server_opts io = {
			.mail_domain = cfg->mail_domain,
			.mail_domain_bare = cfg->mail_domain_bare,
			.max_conns = (unsigned)cfg->max_imap_connections,
			.preauth_timeout_ms = cfg->imap_preauth_timeout_ms,
			.max_conns_per_ip =
				(unsigned)cfg->imap_max_connections_per_ip,
			.preauth_deadline_ms = cfg->imap_preauth_deadline_ms,
			.throttle = throttle,
			.accounts = acc,
			.pool = pool,
			.dovecot_port = (unsigned)cfg->dovecot_imap_port,
			.dovecot_secret = secret,
			.iroh_relay = cfg->iroh_relay,
			.turn_secret = turn,
			.appversions = appv,
			.privacy_mail = cfg->privacy_mail,
		};

		r = imap_server_new(&io, imap_r);
	}
	explicit_bzero(secret, sizeof(secret));
	if (turn != NULL) {
		explicit_bzero(turn, strlen(turn));
		free(turn);
	}
	free(appv);
	if (r == 0)
		r = imap_server_subscribe(*imap_r, ev);
	if (r < 0) {
		log_err("serve: imap: %s", strerror(-r));
		imap_server_free(imap_r);
		return -1;
	}
	return 0;
}

/* The site (rendered now) and the HTTP server that serves it. */
static int cmd_serve_http_new(const struct config *cfg,
			      struct www_site **site_r,
			      struct http_server **http_r)
{
	struct www_site_opts wo = {
		.mail_domain = cfg->mail_domain,
		.mail_domain_bare = cfg->mail_domain_bare,
		.is_ip_relay = cfg->is_ip_relay,
		.self_signed = cfg->tls_cert_mode == CONFIG_TLS_SELF,
		.max_user_send_per_minute = cfg->max_user_send_per_minute,
		.max_mailbox_size_mb = cfg->max_mailbox_size_mb,
		.delete_mails_after = cfg->delete_mails_after,
		.delete_inactive_users_after = cfg->delete_inactive_users_after,
		.username_min_length = cfg->username_min_length,
		.username_max_length = cfg->username_max_length,
		.password_min_length = cfg->password_min_length,
		.privacy_postal = cfg->privacy_postal,
		.privacy_mail = cfg->privacy_mail,
		.privacy_pdo = cfg->privacy_pdo,
		.privacy_supervisor = cfg->privacy_supervisor,
		.acme_webroot = cfg->acme_webroot,
		.new_per_minute = (unsigned)cfg->http_new_per_minute,
		.new_burst = (unsigned)cfg->http_new_burst,
	};
	struct http_server_opts ho = {
		.header_timeout_ms = cfg->http_header_timeout_ms,
		.body_timeout_ms = cfg->http_body_timeout_ms,
		.keepalive_timeout_ms = cfg->http_keepalive_timeout_ms,
	};
	int r = www_site_new(&wo, site_r);

	if (r < 0)
		return -1;
	ho.handler = www_site_handler(*site_r);
	r = http_server_new(&ho, http_r);
	if (r < 0) {
		log_err("serve: http: %s", strerror(-r));
		return -1;
	}
	return 0;
}

static int cmd_serve_run(const struct config *cfg)
{
	struct serve_settings st;
	struct accounts_policy pol;
	struct accounts *acc = NULL;
	struct pool *pool = NULL;
	struct ratelimit *rate = NULL;
	/* One login throttle for SMTP and IMAP, all workers. */
	struct accounts_throttle *throttle = NULL;
	struct smtp_server *smtp = NULL;
	struct dkim_ctx *dkim = NULL;
	struct dkim_signer *signer = NULL;
	struct imap_server *imap = NULL;
	struct www_site *site = NULL;
	struct http_server *http = NULL;
	struct dovecot_settings ds;
	struct dovecot_sup *sup = NULL;
	struct events ev;
	bool dovecot = false;
	char spool_dir[4096];
	int r, rc = 1;

	if (events_init(&ev) < 0) {
		log_err("serve: events: out of memory");
		return 1;
	}
	accounts_policy_defaults(&pol);
	pol.mail_domain = cfg->mail_domain;
	pol.password_min_length = (unsigned)cfg->password_min_length;
	pol.username_min_length = (unsigned)cfg->username_min_length;
	pol.username_max_length = (unsigned)cfg->username_max_length;
	pol.max_load_1m = cfg->max_load_1m;
	pol.min_available_memory_mb = cfg->min_available_memory_mb;
	pol.min_free_disk_mb = cfg->min_free_disk_space_mb;
	pol.mailboxes_dir = cfg->mailboxes_dir;
	pol.nocreate_file = cfg->nocreate_file;
	r = accounts_open(cfg->data_dir, &pol, &acc);
	if (r < 0) {
		log_err("serve: accounts store in %s: %s", cfg->data_dir,
			strerror(-r));
		goto out;
	}
	/* Large message bodies go to unlinked files here while they are
	 * received and handed to Dovecot (smtp/smtp_spool.h). */
	if (snprintf(spool_dir, sizeof(spool_dir), "%s/spool", cfg->data_dir) >=
		    (int)sizeof(spool_dir) ||
	    (mkdir(spool_dir, 0700) < 0 && errno != EEXIST)) {
		log_err("serve: spool dir %s/spool: %s", cfg->data_dir,
			strerror(errno));
		goto out;
	}
	r = pool_new((unsigned)cfg->pool_threads, &pool);
	if (r < 0) {
		log_err("serve: pool: %s", strerror(-r));
		goto out;
	}
	r = ratelimit_new((unsigned)cfg->max_user_send_per_minute,
			  (unsigned)cfg->max_user_send_burst_size, 0, &rate);
	if (r < 0) {
		log_err("serve: rate limiter: %s", strerror(-r));
		goto out;
	}
	r = accounts_throttle_new(0, &throttle);
	if (r < 0) {
		log_err("serve: login throttle: %s", strerror(-r));
		goto out;
	}
	r = dkim_ctx_new(&dkim);
	if (r < 0) {
		log_err("serve: libopendkim: %s", strerror(-r));
		goto out;
	}
	if (cfg->mail_domain[0] != '[') {
		r = dkim_signer_load(dkim, cfg->mail_domain, cfg->dkim_selector,
				     cfg->dkim_key_file, &signer);
		if (r < 0)
			log_warn("serve: no DKIM signing key %s (%s): mail to "
				 "other relays would go unsigned; create it "
				 "with `ringmail dkim keygen`",
				 cfg->dkim_key_file, strerror(-r));
		else
			log_info("serve: dkim signing domain=%s selector=%s "
				 "key=%s",
				 cfg->mail_domain, cfg->dkim_selector,
				 cfg->dkim_key_file);
	}
	if (cfg->dovecot_managed) {
		if (cmd_serve_dovecot_start(cfg, &ds, &sup) < 0)
			goto out;
		dovecot = true;
	}
	{
		struct smtp_server_opts so = {
			.mail_domain = cfg->mail_domain,
			.max_message_size = (uint64_t)cfg->max_message_size,
			.max_conns = (unsigned)cfg->max_smtp_connections,
			.timeout_ms = cfg->smtp_timeout_ms,
			.max_conns_per_ip =
				(unsigned)cfg->smtp_max_connections_per_ip,
			.preauth_deadline_ms = cfg->smtp_preauth_deadline_ms,
			.throttle = throttle,
			.lmtp_socket = cfg->dovecot_lmtp_socket,
			.accounts = acc,
			.pool = pool,
			.rate = rate,
			.events = &ev,
			.dkim = dkim,
			.dns_server = cfg->dns_server,
			.signer = signer,
			.spool_dir = spool_dir,
		};

		r = smtp_server_new(&so, &smtp);
		if (r < 0) {
			log_err("serve: smtp: %s", strerror(-r));
			goto out;
		}
	}
	if (dovecot &&
	    cmd_serve_imap_new(cfg, &ds, acc, pool, throttle, &ev, &imap) < 0)
		goto out;
	if (cmd_serve_http_new(cfg, &site, &http) < 0)
		goto out;
	cmd_serve_settings(cfg, &st);
	st.smtp = smtp;
	st.imap = imap;
	st.http = http;
	rc = serve_run(&st);
out:
	if (pool != NULL)
		pool_free(&pool); /* drains: no accounts call in flight */
	smtp_server_free(&smtp);
	dkim_signer_free(&signer);
	dkim_ctx_free(&dkim);
	imap_server_free(&imap);
	http_server_free(&http);
	www_site_free(&site);
	events_fini(&ev); /* after every session that joined it */
	ratelimit_free(&rate);
	accounts_throttle_free(&throttle);
	if (acc != NULL)
		accounts_close(&acc);
	if (dovecot) {
		r = dovecot_sup_stop(&sup, CMD_SERVE_DOVECOT_STOP_MS);
		if (r < 0)
			log_warn("serve: stopping Dovecot: %s", strerror(-r));
		else
			log_info("serve: dovecot stopped");
	}
	return rc;
}

int cmd_serve(int argc, char **argv)
{
	const char *path = getenv("RINGMAIL_CONFIG");
	struct config cfg;
	struct config_error err;
	int rc;

	if (path == NULL)
		path = CONFIG_DEFAULT_PATH;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else {
			fprintf(stderr,
				"usage: ringmail serve [--config FILE]\n");
			return 2;
		}
	}
	config_init_defaults(&cfg);
	if (config_load(&cfg, path, &err) < 0) {
		fprintf(stderr, "ringmail: %s\n", err.msg);
		config_free(&cfg);
		return 1;
	}
	log_set_level(cfg.log_level);
	rc = cmd_serve_run(&cfg);
	config_free(&cfg);
	return rc;
}
