/* app/cmd_serve: `ringmail serve [--config FILE]`. */
#include "app/cmds.h"

/* system */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* project */
#include "app/serve.h"
#include "core/config.h"
#include "core/log.h"

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

int cmd_serve(int argc, char **argv)
{
	const char *path = getenv("RINGMAIL_CONFIG");
	struct config cfg;
	struct config_error err;
	struct serve_settings st;
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
	cmd_serve_settings(&cfg, &st);
	rc = serve_run(&st);
	config_free(&cfg);
	return rc;
}
