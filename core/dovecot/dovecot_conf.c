/* core/dovecot/dovecot_conf: render dovecot.conf for ringmail's private
 * Dovecot. Every value that reaches the file is checked against a safe
 * character set, so no input can add a setting or a comment. */
#include "core/dovecot/dovecot_conf.h"

/* system */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* third-party */
#include <openssl/evp.h>

/* project */
#include "core/fsutil.h"
#include "core/log.h"

#define DOVECOT_MAX_MESSAGE_SIZE_DEFAULT 31457280
#define DOVECOT_MAILBOX_MB_DEFAULT       500
#define DOVECOT_IMAP_CONNS_DEFAULT       10000
#define DOVECOT_HIBERNATE_MS_DEFAULT     30000

/* A user resolved once for the whole render. */
struct dovecot_user {
	char name[64];
	uid_t uid;
	gid_t gid;
	char group[64];
};

/* Everything derived from the settings, resolved before printing. */
struct dovecot_ctx {
	const struct dovecot_settings *s;
	struct dovecot_user mail, sock, internal, login;
	char state_dir[PATH_MAX];
	char master_users[PATH_MAX];
	const char *instance;
	unsigned imap_port;
	int64_t mailbox_mb, message_size;
	unsigned imap_conns;
	char *err;
	size_t err_len;
};

static int dovecot_fail(struct dovecot_ctx *x, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int dovecot_fail(struct dovecot_ctx *x, int r, const char *fmt, ...)
{
	va_list ap;

	if (x->err != NULL && x->err_len > 0) {
		va_start(ap, fmt);
		vsnprintf(x->err, x->err_len, fmt, ap);
		va_end(ap);
	}
	return r;
}

void dovecot_settings_init(struct dovecot_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->unprivileged = geteuid() != 0;
	s->imap_port = DOVECOT_IMAP_PORT_DEFAULT;
	s->max_mailbox_size_mb = DOVECOT_MAILBOX_MB_DEFAULT;
	s->max_message_size = DOVECOT_MAX_MESSAGE_SIZE_DEFAULT;
	s->imap_hibernate_timeout_ms = DOVECOT_HIBERNATE_MS_DEFAULT;
	s->max_imap_connections = DOVECOT_IMAP_CONNS_DEFAULT;
}

/* Absolute path made only of characters that need no quoting in
 * dovecot.conf and no escaping in Dovecot's %-variables. */
static bool dovecot_path_ok(const char *p)
{
	if (p == NULL || p[0] != '/' || strlen(p) >= PATH_MAX - 64)
		return false;
	for (; *p != '\0'; p++) {
		char c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '/' || c == '.' ||
		      c == '_' || c == '-' || c == '+' || c == '@'))
			return false;
	}
	return true;
}

static bool dovecot_name_ok(const char *p)
{
	if (p == NULL || *p == '\0' || strlen(p) >= 64)
		return false;
	for (; *p != '\0'; p++) {
		char c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		      c == '.'))
			return false;
	}
	return true;
}

/* Resolve @name (NULL: the current user) to uid, gid and group name. */
static int dovecot_user_resolve(struct dovecot_ctx *x, const char *what,
				const char *name, struct dovecot_user *u)
{
	struct passwd pw, *pwp = NULL;
	struct group gr, *grp = NULL;
	char buf[4096];
	int r;

	if (name == NULL)
		r = getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &pwp);
	else
		r = getpwnam_r(name, &pw, buf, sizeof(buf), &pwp);
	if (r != 0 || pwp == NULL)
		return dovecot_fail(x, -ENOENT, "%s: no such user '%s'", what,
				    name != NULL ? name : "(current)");
	if (!dovecot_name_ok(pw.pw_name))
		return dovecot_fail(x, -EINVAL, "%s: unusable user name '%s'",
				    what, pw.pw_name);
	snprintf(u->name, sizeof(u->name), "%s", pw.pw_name);
	u->uid = pw.pw_uid;
	u->gid = pw.pw_gid;
	r = getgrgid_r(u->gid, &gr, buf, sizeof(buf), &grp);
	if (r != 0 || grp == NULL || !dovecot_name_ok(gr.gr_name))
		return dovecot_fail(x, -ENOENT, "%s: no usable group %u", what,
				    (unsigned)u->gid);
	snprintf(u->group, sizeof(u->group), "%s", gr.gr_name);
	return 0;
}

static int dovecot_ctx_init(struct dovecot_ctx *x,
			    const struct dovecot_settings *s, char *err,
			    size_t err_len)
{
	const char *mail = s->mail_user;
	int r;

	memset(x, 0, sizeof(*x));
	x->s = s;
	x->err = err;
	x->err_len = err_len;
	if (err != NULL && err_len > 0)
		err[0] = '\0';
	if (!dovecot_path_ok(s->base_dir))
		return dovecot_fail(x, -EINVAL, "base_dir: unsafe or missing");
	if (!dovecot_path_ok(s->mailboxes_dir))
		return dovecot_fail(x, -EINVAL,
				    "mailboxes_dir: unsafe or missing");
	if (s->log_path != NULL && !dovecot_path_ok(s->log_path))
		return dovecot_fail(x, -EINVAL, "log_path: unsafe path");
	if (s->state_dir != NULL)
		snprintf(x->state_dir, sizeof(x->state_dir), "%s",
			 s->state_dir);
	else
		snprintf(x->state_dir, sizeof(x->state_dir), "%s/state",
			 s->base_dir);
	if (!dovecot_path_ok(x->state_dir))
		return dovecot_fail(x, -EINVAL, "state_dir: unsafe path");
	if (s->master_users_file != NULL)
		snprintf(x->master_users, sizeof(x->master_users), "%s",
			 s->master_users_file);
	else
		snprintf(x->master_users, sizeof(x->master_users),
			 "%s/ringmail-master-users", s->base_dir);
	if (!dovecot_path_ok(x->master_users))
		return dovecot_fail(x, -EINVAL,
				    "master_users_file: unsafe path");
	x->instance = s->instance_name != NULL ? s->instance_name : "ringmail";
	if (!dovecot_name_ok(x->instance))
		return dovecot_fail(x, -EINVAL, "instance_name: unsafe");

	if (mail == NULL && !s->unprivileged)
		mail = "vmail";
	if (s->unprivileged && mail != NULL) {
		/* Without root every process runs as the current user. */
		r = dovecot_user_resolve(x, "mail_user", mail, &x->mail);
		if (r < 0)
			return r;
		if (x->mail.uid != geteuid())
			return dovecot_fail(x, -EINVAL,
					    "mail_user: must be the current "
					    "user when Dovecot runs without "
					    "root");
	}
	r = dovecot_user_resolve(x, "mail_user", s->unprivileged ? NULL : mail,
				 &x->mail);
	if (r < 0)
		return r;
	if (x->mail.uid == 0 || x->mail.gid == 0)
		return dovecot_fail(x, -EINVAL,
				    "mail_user: Dovecot refuses root (uid/gid "
				    "0) for mail; run unprivileged or name a "
				    "mail user");
	r = dovecot_user_resolve(x, "socket_user",
				 s->unprivileged ? NULL : s->socket_user,
				 &x->sock);
	if (r < 0)
		return r;
	if (s->unprivileged) {
		x->internal = x->mail;
		x->login = x->mail;
	} else {
		r = dovecot_user_resolve(
			x, "internal_user",
			s->internal_user != NULL ? s->internal_user : "dovecot",
			&x->internal);
		if (r < 0)
			return r;
		r = dovecot_user_resolve(x, "login_user",
					 s->login_user != NULL ? s->login_user
							       : "dovenull",
					 &x->login);
		if (r < 0)
			return r;
	}
	x->imap_port =
		s->imap_port != 0 ? s->imap_port : DOVECOT_IMAP_PORT_DEFAULT;
	if (x->imap_port > 65535)
		return dovecot_fail(x, -EINVAL, "imap_port: out of range");
	x->mailbox_mb = s->max_mailbox_size_mb > 0 ? s->max_mailbox_size_mb
						   : DOVECOT_MAILBOX_MB_DEFAULT;
	x->message_size = s->max_message_size > 0
				  ? s->max_message_size
				  : DOVECOT_MAX_MESSAGE_SIZE_DEFAULT;
	x->imap_conns = s->max_imap_connections > 0
				? s->max_imap_connections
				: DOVECOT_IMAP_CONNS_DEFAULT;
	return 0;
}

/* Bytes Dovecot may add to an accepted message (Return-Path,
 * Delivered-To): far more than they take. */
#define DOVECOT_MAIL_SIZE_SLACK 65536

static void dovecot_print_header(const struct dovecot_ctx *x, FILE *f)
{
	const struct dovecot_settings *s = x->s;

	fprintf(f,
		"# Generated by ringmail (core/dovecot/dovecot_conf.c). Do not "
		"edit: ringmail\n"
		"# rewrites it at every start. This Dovecot is a private "
		"mailbox store\n"
		"# that only ringmail talks to; it is Debian's stock "
		"dovecot-imapd and\n"
		"# dovecot-lmtpd 2.3.\n"
		"#\n"
		"# Who can reach it\n"
		"# - Delivery: LMTP on the unix socket %s/lmtp,\n"
		"#   mode 0600, owned by ringmail's user (%s). Only ringmail "
		"(and root)\n"
		"#   can deliver. Dovecot's own default lmtp listener is this "
		"one, so\n"
		"#   the world-writable default socket does not exist.\n"
		"# - Mail access: IMAP on 127.0.0.1:%u only, no TLS "
		"(ringmail\n"
		"#   terminates TLS). Every login is a master-user login: "
		"ringmail\n"
		"#   authenticates as \"%s\" with a 256-bit random secret "
		"that it\n"
		"#   generates at start and keeps in memory; Dovecot only "
		"holds its\n"
		"#   SHA-256 in %s. The normal\n"
		"#   passdb denies everyone, so no user password works "
		"here: users\n"
		"#   authenticate to ringmail (accounts store), never to "
		"Dovecot.\n"
		"#   Threat model: any local process can connect to the "
		"loopback port,\n"
		"#   but without the secret it cannot log in as anyone; "
		"guessing 256\n"
		"#   bits is hopeless. Reading the hash file gives nothing "
		"usable.\n"
		"#   A local attacker who can read ringmail's memory or act "
		"as its\n"
		"#   user (or root) can read all mail anyway.\n"
		"#   Why not a unix socket for IMAP (tighter by file "
		"permissions):\n"
		"#   Dovecot 2.3.19's imap-hibernate rejects clients "
		"without an IP\n"
		"#   address (\"Failed to parse client input: Invalid lip "
		"value\"), so\n"
		"#   hibernation would never work for them, and hibernation "
		"is what\n"
		"#   keeps thousands of idle IMAP clients cheap.\n"
		"#   login_trusted_networks = 127.0.0.1 lets ringmail pass "
		"the real\n"
		"#   client address with ID (x-originating-ip) for "
		"Dovecot's logs.\n"
		"#   The anvil auth penalty is off (as chatmail): every "
		"login comes\n"
		"#   from 127.0.0.1, so one failure would otherwise delay "
		"all users'\n"
		"#   logins for seconds.\n"
		"# - No other TCP listener: imaps port 0, protocols imap "
		"lmtp only.\n"
		"#\n"
		"# Mode: %s.\n\n",
		s->base_dir, x->sock.name, x->imap_port, DOVECOT_MASTER_USER,
		x->master_users,
		s->unprivileged ? "unprivileged (every service runs as "
				  "the current user, no chroot)"
				: "root (services drop to their users)");
}

static void dovecot_print_core(const struct dovecot_ctx *x, FILE *f)
{
	const struct dovecot_settings *s = x->s;

	fprintf(f,
		"instance_name = %s\n"
		"base_dir = %s\n"
		"state_dir = %s\n",
		x->instance, s->base_dir, x->state_dir);
	if (s->log_path != NULL)
		fprintf(f,
			"log_path = %s\n"
			"log_timestamp = \"%%Y-%%m-%%d %%H:%%M:%%S \"\n",
			s->log_path);
	else
		fprintf(f, "log_path = syslog\n");
	fprintf(f,
		"protocols = imap lmtp\n"
		"listen = 127.0.0.1\n"
		"ssl = no\n"
		"shutdown_clients = yes\n"
		"default_internal_user = %s\n"
		"default_internal_group = %s\n"
		"default_login_user = %s\n"
		"# Mail is only ever accessed as %s.\n"
		"first_valid_uid = %u\n"
		"last_valid_uid = %u\n"
		"first_valid_gid = %u\n"
		"last_valid_gid = %u\n"
		"default_client_limit = %u\n\n",
		x->internal.name, x->internal.group, x->login.name,
		x->mail.name, (unsigned)x->mail.uid, (unsigned)x->mail.uid,
		(unsigned)x->mail.gid, (unsigned)x->mail.gid,
		x->imap_conns * 2 > 1000 ? x->imap_conns * 2 : 1000);
}

static void dovecot_print_auth(const struct dovecot_ctx *x, FILE *f)
{
	const struct dovecot_settings *s = x->s;

	fprintf(f,
		"# Authentication: master user only (see the top).\n"
		"auth_mechanisms = plain\n"
		"auth_master_user_separator = " DOVECOT_MASTER_SEP "\n"
		"# chatmail's set: [] for IP relays (user@[1.2.3.4]).\n"
		"auth_username_chars = abcdefghijklmnopqrstuvwxyz"
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ01234567890.-_@[]\n"
		"login_trusted_networks = 127.0.0.1/32\n"
		"passdb {\n"
		"  driver = passwd-file\n"
		"  master = yes\n"
		"  args = %s\n"
		"}\n"
		"passdb {\n"
		"  driver = static\n"
		"  deny = yes\n"
		"  args = nopassword=y\n"
		"}\n"
		"# Every address exists: ringmail decides who is a user "
		"before LMTP\n"
		"# and before login (no dict passdb: Dovecot 2.4 drops it).\n"
		"userdb {\n"
		"  driver = static\n"
		"  args = allow_all_users=yes uid=%u gid=%u home=%s/%%u\n"
		"}\n\n",
		x->master_users, (unsigned)x->mail.uid, (unsigned)x->mail.gid,
		s->mailboxes_dir);
}

static void dovecot_print_mail(const struct dovecot_ctx *x, FILE *f)
{
	const struct dovecot_settings *s = x->s;

	fprintf(f,
		"# Maildir at <mailboxes_dir>/<addr>/ exactly as chatmail: a "
		"migration\n"
		"# is a directory copy. zlib reads chatmail's gzip-stored "
		"messages.\n"
		"mail_location = maildir:%s/%%u\n"
		"mail_plugins = zlib quota\n"
		"namespace inbox {\n"
		"  inbox = yes\n"
		"  mailbox Drafts {\n"
		"    special_use = \\Drafts\n"
		"  }\n"
		"  mailbox Junk {\n"
		"    special_use = \\Junk\n"
		"  }\n"
		"  mailbox Trash {\n"
		"    special_use = \\Trash\n"
		"  }\n"
		"  mailbox Sent {\n"
		"    special_use = \\Sent\n"
		"  }\n"
		"  mailbox \"Sent Messages\" {\n"
		"    special_use = \\Sent\n"
		"  }\n"
		"}\n"
		"plugin {\n"
		"  quota = maildir:User quota\n"
		"  quota_rule = *:storage=%lldM\n"
		"  quota_grace = 0\n"
		"  # ringmail enforces max_message_size itself (552 at "
		"DATA); Dovecot's\n"
		"  # cap leaves room for the Return-Path and Delivered-To "
		"it adds, which\n"
		"  # would otherwise turn a message at the limit into a "
		"451 forever.\n"
		"  quota_max_mail_size = %lld\n",
		s->mailboxes_dir, (long long)x->mailbox_mb,
		(long long)(x->message_size + DOVECOT_MAIL_SIZE_SLACK));
	if (s->compress)
		fprintf(f, "  zlib_save = gz\n");
	fprintf(f, "}\n\n");
}

static void dovecot_print_protocols(const struct dovecot_ctx *x, FILE *f)
{
	const struct dovecot_settings *s = x->s;

	fprintf(f, "imap_capability = +XDELTAPUSH XCHATMAIL\n"
		   "# Every IMAP session comes from 127.0.0.1 unless ringmail "
		   "passes the\n"
		   "# client address; ringmail enforces its own limits.\n"
		   "mail_max_userip_connections = 20\n");
	if (s->imap_hibernate_timeout_ms > 0)
		fprintf(f, "imap_hibernate_timeout = %llu secs\n",
			(unsigned long long)(s->imap_hibernate_timeout_ms +
					     999) /
				1000);
	else
		fprintf(f, "imap_hibernate_timeout = 0\n");
	fprintf(f, "# METADATA (RFC 5464): ringmail answers the chatmail keys "
		   "itself\n"
		   "# (imap-proxy); anything else is kept per user here.\n"
		   "mail_attribute_dict = file:%%h/dovecot-attributes\n"
		   "protocol imap {\n"
		   "  mail_plugins = $mail_plugins imap_quota\n"
		   "  imap_metadata = yes\n"
		   "}\n"
		   "# The 250 to the SMTP client waits for Dovecot's reply, "
		   "so a 250 means\n"
		   "# the message is on disk: unlike chatmail (never), LMTP "
		   "fsyncs each\n"
		   "# delivery before it answers.\n"
		   "lmtp_add_received_header = no\n"
		   "protocol lmtp {\n"
		   "  mail_fsync = optimized\n"
		   "}\n\n");
}

static void dovecot_print_services(const struct dovecot_ctx *x, FILE *f)
{
	static const char *const chrooted[] = {
		"anvil",      "ipc",      "old-stats", "imap-urlauth-login",
		"aggregator", "director", NULL,
	};
	const struct dovecot_settings *s = x->s;

	fprintf(f,
		"service lmtp {\n"
		"  user = %s\n"
		"  unix_listener lmtp {\n"
		"    mode = 0600\n"
		"    user = %s\n"
		"  }\n"
		"}\n"
		"service imap-login {\n"
		"  inet_listener imap {\n"
		"    address = 127.0.0.1\n"
		"    port = %u\n"
		"  }\n"
		"  inet_listener imaps {\n"
		"    port = 0\n"
		"  }\n"
		"  service_count = 0\n"
		"  process_min_avail = 1\n"
		"  vsz_limit = 1G\n",
		x->mail.name, x->sock.name, x->imap_port);
	if (s->unprivileged)
		fprintf(f, "  chroot =\n");
	fprintf(f,
		"}\n"
		"service imap {\n"
		"  process_limit = %u\n"
		"  unix_listener imap-master {\n"
		"    user = %s\n"
		"  }\n"
		"}\n"
		"# imap processes (as %s) hand idle clients to "
		"imap-hibernate.\n"
		"service imap-hibernate {\n"
		"  unix_listener imap-hibernate {\n"
		"    mode = 0660\n"
		"    group = %s\n"
		"  }\n"
		"}\n"
		"# No auth penalty: mode 0 means no listener.\n"
		"service anvil {\n"
		"  unix_listener anvil-auth-penalty {\n"
		"    mode = 0\n"
		"  }\n"
		"}\n"
		"# URLAUTH is unused (no imap_urlauth_host): close its "
		"socket.\n"
		"service imap-urlauth-login {\n"
		"  unix_listener imap-urlauth {\n"
		"    mode = 0600\n"
		"  }\n"
		"}\n",
		x->imap_conns, x->internal.name, x->mail.name, x->mail.group);
	if (s->unprivileged) {
		fprintf(f, "# Without root nothing can chroot.\n");
		for (const char *const *n = chrooted; *n != NULL; n++)
			fprintf(f, "service %s {\n  chroot =\n}\n", *n);
	}
}

int dovecot_conf_render(const struct dovecot_settings *s, FILE *f, char *err,
			size_t err_len)
{
	struct dovecot_ctx x;
	int r;

	r = dovecot_ctx_init(&x, s, err, err_len);
	if (r < 0)
		return r;
	dovecot_print_header(&x, f);
	dovecot_print_core(&x, f);
	dovecot_print_auth(&x, f);
	dovecot_print_mail(&x, f);
	dovecot_print_protocols(&x, f);
	dovecot_print_services(&x, f);
	return ferror(f) ? -EIO : 0;
}

/* mkdir -p with @mode for the directories it creates. */
static int dovecot_mkdirs(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Write @len bytes to @path atomically (core/fsutil). */
static int dovecot_file_replace(const char *path, const void *data, size_t len,
				mode_t mode, gid_t gid)
{
	struct fsutil_opts o = FSUTIL_OPTS(mode);

	o.gid = gid;
	return fsutil_write_file(path, data, len, &o);
}

int dovecot_conf_write(const struct dovecot_settings *s, const char *path)
{
	char err[256];
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int r;

	f = open_memstream(&text, &len);
	if (f == NULL)
		return -ENOMEM;
	r = dovecot_conf_render(s, f, err, sizeof(err));
	if (fclose(f) != 0 && r == 0)
		r = -ENOMEM;
	if (r < 0) {
		log_err("dovecot config path=%s error=\"%s\"", path,
			err[0] != '\0' ? err : strerror(-r));
		goto out;
	}
	r = dovecot_mkdirs(s->base_dir, 0755);
	if (r < 0) {
		log_err("dovecot config base_dir=%s error=\"%s\"", s->base_dir,
			strerror(-r));
		goto out;
	}
	r = dovecot_file_replace(path, text, len, 0644, (gid_t)-1);
	if (r < 0)
		log_err("dovecot config path=%s error=\"%s\"", path,
			strerror(-r));
out:
	free(text);
	return r;
}

int dovecot_lmtp_socket_path(const struct dovecot_settings *s, char *buf,
			     size_t size)
{
	int n = snprintf(buf, size, "%s/lmtp", s->base_dir);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int dovecot_secret_new(char secret_r[DOVECOT_SECRET_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t raw[DOVECOT_SECRET_LEN / 2];
	size_t got = 0;
	ssize_t n;

	while (got < sizeof(raw)) {
		n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(raw); i++) {
		secret_r[2 * i] = hex[raw[i] >> 4];
		secret_r[2 * i + 1] = hex[raw[i] & 0xf];
	}
	secret_r[DOVECOT_SECRET_LEN] = '\0';
	return 0;
}

int dovecot_master_users_write(const struct dovecot_settings *s,
			       const char *secret)
{
	static const char hex[] = "0123456789abcdef";
	struct dovecot_ctx x;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned md_len = 0;
	char line[256], err[256];
	size_t len;
	mode_t mode = 0600;
	gid_t gid = (gid_t)-1;
	int r;

	r = dovecot_ctx_init(&x, s, err, sizeof(err));
	if (r < 0) {
		log_err("dovecot master users error=\"%s\"", err);
		return r;
	}
	if (secret == NULL || strlen(secret) < 32)
		return -EINVAL;
	if (EVP_Digest(secret, strlen(secret), md, &md_len, EVP_sha256(),
		       NULL) != 1)
		return -EIO;
	len = (size_t)snprintf(line, sizeof(line), "%s:{SHA256.HEX}",
			       DOVECOT_MASTER_USER);
	for (unsigned i = 0; i < md_len && len + 3 < sizeof(line); i++) {
		line[len++] = hex[md[i] >> 4];
		line[len++] = hex[md[i] & 0xf];
	}
	line[len++] = '\n';
	if (!s->unprivileged && geteuid() == 0) {
		/* Root: readable by Dovecot's auth process (its group). */
		gid = x.internal.gid;
		mode = 0640;
	} else if (!s->unprivileged) {
		/* ringmail without root for a Dovecot with root: the hash of
		 * a 256-bit secret is safe to show. */
		mode = 0644;
	}
	r = dovecot_mkdirs(s->base_dir, 0755);
	if (r == 0)
		r = dovecot_file_replace(x.master_users, line, len, mode, gid);
	if (r < 0)
		log_err("dovecot master users path=%s error=\"%s\"",
			x.master_users, strerror(-r));
	return r;
}
