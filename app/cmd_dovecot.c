/* app/cmd_dovecot: `ringmail dovecot print|config|start|stop [options]`:
 * render, write, start or stop ringmail's private Dovecot. Settings come
 * from chatmail.ini (--config) and are overridden by the options. */
#include "app/cmds.h"

/* system */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* project */
#include "core/config.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/dovecot/dovecot_conf.h"
#include "core/dovecot/dovecot_run.h"

#define CMD_DOVECOT_START_MS 20000
#define CMD_DOVECOT_STOP_MS  10000

static void cmd_dovecot_usage(FILE *f)
{
	fprintf(f,
		"usage: ringmail dovecot print|config|start|stop [options]\n"
		"  --config FILE            chatmail.ini (default: "
		"$RINGMAIL_CONFIG,\n"
		"                           else only the options below)\n"
		"  --base-dir DIR           Dovecot base_dir (sockets, "
		"master.pid)\n"
		"  --conf FILE              config path (default "
		"<base-dir>/ringmail-dovecot.conf)\n"
		"  --mailboxes-dir DIR      maildirs at DIR/<addr>/\n"
		"  --log-path FILE          Dovecot log (default syslog)\n"
		"  --mail-user USER         maildir owner (root mode; "
		"default vmail)\n"
		"  --imap-port N            IMAP on 127.0.0.1:N (default "
		"%d)\n"
		"  --max-mailbox-size MB    quota in MiB\n"
		"  --max-message-size N     bytes\n"
		"  --hibernate-timeout S    seconds, 0 = off\n"
		"  --max-imap-connections N\n"
		"  --unprivileged           run Dovecot without root\n"
		"  --secret-file FILE       config/start: write a new master "
		"secret there\n"
		"                           (mode 0600) and its hash for "
		"Dovecot\n",
		DOVECOT_IMAP_PORT_DEFAULT);
}

static int cmd_dovecot_num(const char *s, long long min, long long max,
			   long long *v_r)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*v_r = v;
	return 0;
}

/* Write @secret to @path, mode 0600, atomically. */
static int cmd_dovecot_secret_file(const char *path, const char *secret)
{
	struct iovec iov[2] = {
		{.iov_base = (void *)secret, .iov_len = strlen(secret)},
		{.iov_base = (void *)"\n", .iov_len = 1}};
	struct fsutil_opts o = FSUTIL_OPTS(0600);

	return fsutil_write_filev(path, iov, 2, &o);
}

void cmd_dovecot_settings(const struct config *cfg, struct dovecot_settings *s)
{
	dovecot_settings_init(s);
	s->base_dir = cfg->dovecot_base_dir;
	s->mailboxes_dir = cfg->mailboxes_dir;
	s->log_path = cfg->dovecot_log[0] != '\0' ? cfg->dovecot_log : NULL;
	s->max_mailbox_size_mb = cfg->max_mailbox_size_mb;
	s->max_message_size = cfg->max_message_size;
	s->imap_hibernate_timeout_ms =
		cfg->imap_compress ? 0 : cfg->imap_hibernate_timeout_ms;
	s->max_imap_connections = (unsigned)cfg->max_imap_connections;
	s->imap_port = (unsigned)cfg->dovecot_imap_port;
	if (cfg->dovecot_mail_user[0] != '\0')
		s->mail_user = cfg->dovecot_mail_user;
}

int cmd_dovecot(int argc, char **argv)
{
	const char *cfg_path = getenv("RINGMAIL_CONFIG");
	const char *conf = NULL, *secret_file = NULL, *verb;
	struct dovecot_settings s;
	struct config cfg;
	struct config_error cerr;
	char conf_buf[PATH_MAX], secret[DOVECOT_SECRET_LEN + 1], err[256];
	long long v;
	int rc = 1, r;

	if (argc < 2) {
		cmd_dovecot_usage(stderr);
		return 2;
	}
	verb = argv[1];
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			cfg_path = argv[++i];
	}
	dovecot_settings_init(&s);
	config_init_defaults(&cfg);
	if (cfg_path != NULL && *cfg_path != '\0') {
		if (config_load(&cfg, cfg_path, &cerr) < 0) {
			fprintf(stderr, "ringmail: %s\n", cerr.msg);
			goto out;
		}
		cmd_dovecot_settings(&cfg, &s);
	}
	for (int i = 2; i < argc; i++) {
		const char *o = argv[i], *a = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(o, "--unprivileged") == 0) {
			s.unprivileged = true;
			continue;
		}
		if (a == NULL)
			goto usage;
		i++;
		if (strcmp(o, "--config") == 0)
			continue;
		else if (strcmp(o, "--base-dir") == 0)
			s.base_dir = a;
		else if (strcmp(o, "--conf") == 0)
			conf = a;
		else if (strcmp(o, "--mailboxes-dir") == 0)
			s.mailboxes_dir = a;
		else if (strcmp(o, "--log-path") == 0)
			s.log_path = a;
		else if (strcmp(o, "--mail-user") == 0)
			s.mail_user = a;
		else if (strcmp(o, "--secret-file") == 0)
			secret_file = a;
		else if (strcmp(o, "--imap-port") == 0 &&
			 cmd_dovecot_num(a, 1, 65535, &v) == 0)
			s.imap_port = (unsigned)v;
		else if (strcmp(o, "--max-mailbox-size") == 0 &&
			 cmd_dovecot_num(a, 1, 1 << 30, &v) == 0)
			s.max_mailbox_size_mb = v;
		else if (strcmp(o, "--max-message-size") == 0 &&
			 cmd_dovecot_num(a, 1, INT64_MAX, &v) == 0)
			s.max_message_size = v;
		else if (strcmp(o, "--hibernate-timeout") == 0 &&
			 cmd_dovecot_num(a, 0, 86400, &v) == 0)
			s.imap_hibernate_timeout_ms = (uint64_t)v * 1000;
		else if (strcmp(o, "--max-imap-connections") == 0 &&
			 cmd_dovecot_num(a, 1, 1000000, &v) == 0)
			s.max_imap_connections = (unsigned)v;
		else
			goto usage;
	}
	if (s.base_dir == NULL) {
		fprintf(stderr, "ringmail dovecot: --base-dir or --config "
				"needed\n");
		goto usage;
	}
	if (conf == NULL) {
		snprintf(conf_buf, sizeof(conf_buf), "%s/ringmail-dovecot.conf",
			 s.base_dir);
		conf = conf_buf;
	}

	if (strcmp(verb, "stop") == 0) {
		r = dovecot_run_stop(s.base_dir, CMD_DOVECOT_STOP_MS);
		rc = r < 0 ? 1 : 0;
		goto out;
	}
	if (strcmp(verb, "print") == 0) {
		r = dovecot_conf_render(&s, stdout, err, sizeof(err));
		if (r < 0)
			fprintf(stderr, "ringmail dovecot: %s\n", err);
		rc = r < 0 ? 1 : 0;
		goto out;
	}
	if (strcmp(verb, "config") != 0 && strcmp(verb, "start") != 0)
		goto usage;
	if (dovecot_conf_write(&s, conf) < 0)
		goto out;
	if (secret_file != NULL) {
		if (dovecot_secret_new(secret) < 0 ||
		    dovecot_master_users_write(&s, secret) < 0)
			goto out;
		r = cmd_dovecot_secret_file(secret_file, secret);
		explicit_bzero(secret, sizeof(secret));
		if (r < 0) {
			fprintf(stderr, "ringmail dovecot: %s: %s\n",
				secret_file, strerror(-r));
			goto out;
		}
	}
	if (strcmp(verb, "start") == 0 &&
	    dovecot_run_start(&s, conf, CMD_DOVECOT_START_MS) < 0)
		goto out;
	printf("%s\n", conf);
	rc = 0;
	goto out;
usage:
	cmd_dovecot_usage(stderr);
	rc = 2;
out:
	config_free(&cfg);
	return rc;
}
