/* core/config: chatmail.ini reader and the declarative key table. */
#include "core/config.h"

/* system */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONFIG_LINE_MAX (64 * 1024)
#define CONFIG_FILE_MAX (1024 * 1024)

enum config_type {
	CFG_STR,
	CFG_INT,
	CFG_BOOL,    /* chatmail: "true" (any case) is true, else false */
	CFG_SIZE_MB, /* parse_size_mb */
	CFG_BYTES,   /* integer bytes */
	CFG_FLOAT,
	CFG_TIME,    /* 300s, 5m, 1h, 2d, 500ms; bare number = seconds */
	CFG_BACKEND, /* auto|uring|epoll */
	CFG_KTLS,    /* auto|yes|no */
	CFG_LOGLEVEL,
	CFG_PROFILE, /* native|debian12 */
};

struct config_key {
	const char *section;
	const char *name;
	enum config_type type;
	const char *def; /* NULL: unset / derived */
	double min, max; /* for numbers */
	size_t off;
};

#define P(name, type, def, min, max)                  \
	{                                             \
		"params", #name, type, def, min, max, \
			offsetof(struct config, name) \
	}
#define R(name, type, def, min, max)                    \
	{                                               \
		"ringmail", #name, type, def, min, max, \
			offsetof(struct config, name)   \
	}

static const struct config_key config_keys[] = {
	P(mail_domain, CFG_STR, NULL, 0, 0),
	P(max_user_send_per_minute, CFG_INT, "60", 1, 1e6),
	P(max_user_send_burst_size, CFG_INT, "10", 1, 1e6),
	P(max_mailbox_size_mb, CFG_SIZE_MB, "500M", 1, 1e9),
	P(max_message_size, CFG_BYTES, "31457280", 1024, 4e9),
	P(delete_mails_after, CFG_INT, "20", 0, 1e5),
	P(delete_large_after, CFG_INT, "7", 0, 1e5),
	P(delete_inactive_users_after, CFG_INT, "90", 0, 1e5),
	P(username_min_length, CFG_INT, "9", 1, 64),
	P(username_max_length, CFG_INT, "9", 1, 64),
	P(password_min_length, CFG_INT, "9", 1, 1024),
	P(www_folder, CFG_STR, "", 0, 0),
	P(filtermail_smtp_port, CFG_INT, "10080", 1, 65535),
	P(filtermail_smtp_port_incoming, CFG_INT, "10081", 1, 65535),
	P(filtermail_http_port_incoming, CFG_INT, "10082", 1, 65535),
	P(filtermail_lmtp_port_transport, CFG_INT, "10083", 1, 65535),
	P(postfix_reinject_port, CFG_INT, "10025", 1, 65535),
	P(postfix_reinject_port_incoming, CFG_INT, "10026", 1, 65535),
	P(mtail_address, CFG_STR, NULL, 0, 0),
	P(disable_ipv6, CFG_BOOL, "false", 0, 0),
	P(acme_email, CFG_STR, "", 0, 0),
	P(imap_rawlog, CFG_BOOL, "false", 0, 0),
	P(imap_compress, CFG_BOOL, "false", 0, 0),
	P(turn_socket_path, CFG_STR, "/run/chatmail-turn/turn.socket", 0, 0),
	P(iroh_relay, CFG_STR, NULL, 0, 0),
	P(privacy_postal, CFG_STR, NULL, 0, 0),
	P(privacy_mail, CFG_STR, NULL, 0, 0),
	P(privacy_pdo, CFG_STR, NULL, 0, 0),
	P(privacy_supervisor, CFG_STR, NULL, 0, 0),
	P(max_load_1m, CFG_FLOAT, "5", 0, 1e6),
	P(min_available_memory_mb, CFG_SIZE_MB, "200M", 0, 1e9),
	P(min_free_disk_space_mb, CFG_SIZE_MB, "1G", 0, 1e9),
	P(max_imap_connections, CFG_INT, "10000", 1, 1e7),
	P(max_smtp_connections, CFG_INT, "1000", 1, 1e7),
	P(tls_external_cert_and_key, CFG_STR, "", 0, 0),
	P(mailboxes_dir, CFG_STR, NULL, 0, 0),
	P(passdb_path, CFG_STR, "/home/vmail/passdb.sqlite", 0, 0),

	R(smtp_listen, CFG_STR, "0.0.0.0:25 [::]:25", 0, 0),
	R(submission_listen, CFG_STR, "0.0.0.0:587 [::]:587", 0, 0),
	R(submissions_listen, CFG_STR, "0.0.0.0:465 [::]:465", 0, 0),
	R(imap_listen, CFG_STR, "0.0.0.0:143 [::]:143", 0, 0),
	R(imaps_listen, CFG_STR, "0.0.0.0:993 [::]:993", 0, 0),
	R(https_listen, CFG_STR, "0.0.0.0:443 [::]:443", 0, 0),
	R(http_listen, CFG_STR, "0.0.0.0:80 [::]:80", 0, 0),
	R(data_dir, CFG_STR, "/var/lib/ringmail", 0, 0),
	R(tls_cert, CFG_STR, NULL, 0, 0),
	R(tls_key, CFG_STR, NULL, 0, 0),
	R(dovecot_base_dir, CFG_STR, "/run/ringmail/dovecot", 0, 0),
	R(dovecot_lmtp_socket, CFG_STR, NULL, 0, 0),
	R(dovecot_imap_socket, CFG_STR, NULL, 0, 0),
	R(io_backend, CFG_BACKEND, "auto", 0, 0),
	R(uring_debian12, CFG_PROFILE, "native", 0, 0),
	R(tls_ktls, CFG_KTLS, "auto", 0, 0),
	R(workers, CFG_INT, "0", 0, 256),
	R(pool_threads, CFG_INT, "2", 1, 64),
	R(log_level, CFG_LOGLEVEL, "info", 0, 0),
	R(nocreate_file, CFG_STR, "/etc/chatmail-nocreate", 0, 0),
	R(smtp_timeout_ms, CFG_TIME, "300s", 1000, 3600e3),
	R(imap_preauth_timeout_ms, CFG_TIME, "60s", 1000, 3600e3),
	R(drain_timeout_ms, CFG_TIME, "30s", 0, 3600e3),
	R(imap_hibernate_timeout_ms, CFG_TIME, "30s", 0, 3600e3),
	R(dkim_selector, CFG_STR, "opendkim", 0, 0),
	R(dkim_key_file, CFG_STR, "/etc/dkimkeys/opendkim.private", 0, 0),
	R(dns_server, CFG_STR, "", 0, 0),
	R(push_url, CFG_STR, "https://notifications.delta.chat/notify", 0, 0),
	R(turn_secret_file, CFG_STR, "", 0, 0),
	R(appversions_file, CFG_STR, "", 0, 0),
};

#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

/* Names in the file that differ from the struct field names. */
static const struct {
	const char *file_name, *field;
} config_aliases[] = {
	{"max_mailbox_size", "max_mailbox_size_mb"},
	{"min_available_memory", "min_available_memory_mb"},
	{"min_free_disk_space", "min_free_disk_space_mb"},
	{"smtp_timeout", "smtp_timeout_ms"},
	{"imap_preauth_timeout", "imap_preauth_timeout_ms"},
	{"drain_timeout", "drain_timeout_ms"},
	{"imap_hibernate_timeout", "imap_hibernate_timeout_ms"},
	{"uring_profile", "uring_debian12"},
};

static const char *config_file_name(const struct config_key *k)
{
	for (size_t i = 0; i < sizeof(config_aliases) / sizeof(*config_aliases);
	     i++) {
		if (strcmp(config_aliases[i].field, k->name) == 0)
			return config_aliases[i].file_name;
	}
	return k->name;
}

static const struct config_key *config_key_find(const char *section,
						const char *name)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		if (strcmp(config_keys[i].section, section) == 0 &&
		    strcmp(config_file_name(&config_keys[i]), name) == 0)
			return &config_keys[i];
	}
	return NULL;
}

int64_t config_parse_size_mb(const char *s)
{
	char buf[64];
	size_t n = 0, len;
	int64_t mult = 1;
	char *end;
	long long v;

	while (isspace((unsigned char)*s))
		s++;
	len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	if (len == 0 || len >= sizeof(buf))
		return -1;
	for (n = 0; n < len; n++)
		buf[n] = (char)toupper((unsigned char)s[n]);
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == 'B')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == 'G') {
		mult = 1024;
		buf[--n] = '\0';
	} else if (n > 0 && buf[n - 1] == 'M') {
		buf[--n] = '\0';
	}
	if (n == 0 || !isdigit((unsigned char)buf[0]))
		return -1;
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > INT64_MAX / 1024)
		return -1;
	return (int64_t)v * mult;
}

static int config_parse_time_ms(const char *s, uint64_t *ms_r)
{
	char *end;
	double v;
	double mult = 1000;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || v < 0)
		return -1;
	if (strcmp(end, "ms") == 0)
		mult = 1;
	else if (*end == '\0' || strcmp(end, "s") == 0)
		mult = 1000;
	else if (strcmp(end, "m") == 0)
		mult = 60e3;
	else if (strcmp(end, "h") == 0)
		mult = 3600e3;
	else if (strcmp(end, "d") == 0)
		mult = 86400e3;
	else
		return -1;
	*ms_r = (uint64_t)llround(v * mult);
	return 0;
}

static char **config_str_field(struct config *cfg, const struct config_key *k)
{
	return (char **)((char *)cfg + k->off);
}

/* Set one key from its text. Returns NULL or a reason. */
static const char *config_set(struct config *cfg, const struct config_key *k,
			      const char *v, char *why, size_t why_len)
{
	void *field = (char *)cfg + k->off;
	char *end;

	switch (k->type) {
	case CFG_STR: {
		char **sp = config_str_field(cfg, k);
		char *dup = strdup(v);

		if (dup == NULL)
			return "out of memory";
		free(*sp);
		*sp = dup;
		return NULL;
	}
	case CFG_INT: {
		long long x;

		errno = 0;
		x = strtoll(v, &end, 10);
		if (errno != 0 || end == v || *end != '\0')
			return "not an integer";
		if ((double)x < k->min || (double)x > k->max) {
			snprintf(why, why_len, "%lld out of range %.0f..%.0f",
				 x, k->min, k->max);
			return why;
		}
		*(int *)field = (int)x;
		return NULL;
	}
	case CFG_BOOL:
		*(bool *)field = strcasecmp(v, "true") == 0;
		return NULL;
	case CFG_SIZE_MB: {
		int64_t mb = config_parse_size_mb(v);

		if (mb < 0)
			return "invalid size (use e.g. 500M or 1G)";
		if ((double)mb < k->min || (double)mb > k->max)
			return "size out of range";
		*(int64_t *)field = mb;
		return NULL;
	}
	case CFG_BYTES: {
		long long x;

		errno = 0;
		x = strtoll(v, &end, 10);
		if (errno != 0 || end == v || *end != '\0')
			return "not an integer";
		if ((double)x < k->min || (double)x > k->max) {
			snprintf(why, why_len, "%lld out of range %.0f..%.0f",
				 x, k->min, k->max);
			return why;
		}
		*(int64_t *)field = x;
		return NULL;
	}
	case CFG_FLOAT: {
		double x;

		errno = 0;
		x = strtod(v, &end);
		if (errno != 0 || end == v || *end != '\0' || isnan(x))
			return "not a number";
		if (x < k->min || x > k->max)
			return "out of range";
		*(double *)field = x;
		return NULL;
	}
	case CFG_TIME: {
		uint64_t ms;

		if (config_parse_time_ms(v, &ms) < 0)
			return "invalid duration (use e.g. 30s, 5m, 1h)";
		if ((double)ms < k->min || (double)ms > k->max)
			return "duration out of range";
		*(uint64_t *)field = ms;
		return NULL;
	}
	case CFG_BACKEND:
		if (loop_backend_parse(v, (enum loop_backend *)field) < 0)
			return "expected auto, uring or epoll";
		return NULL;
	case CFG_KTLS:
		if (tls_ktls_mode_parse(v, (enum tls_ktls_mode *)field) < 0)
			return "expected auto, yes or no";
		return NULL;
	case CFG_LOGLEVEL:
		if (log_level_parse(v, (enum log_level *)field) < 0)
			return "expected error, warn, info or debug";
		return NULL;
	case CFG_PROFILE:
		if (strcmp(v, "native") == 0)
			*(bool *)field = false;
		else if (strcmp(v, "debian12") == 0)
			*(bool *)field = true;
		else
			return "expected native or debian12";
		return NULL;
	}
	return "unknown type";
}

void config_init_defaults(struct config *cfg)
{
	char why[128];

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		if (config_keys[i].def != NULL)
			(void)config_set(cfg, &config_keys[i],
					 config_keys[i].def, why, sizeof(why));
	}
}

void config_free(struct config *cfg)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		if (config_keys[i].type == CFG_STR) {
			char **sp = config_str_field(cfg, &config_keys[i]);

			free(*sp);
			*sp = NULL;
		}
	}
	free(cfg->mail_domain_bare);
	free(cfg->unknown_keys);
	cfg->mail_domain_bare = NULL;
	cfg->unknown_keys = NULL;
}

static char *config_strip(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
			 e[-1] == '\n'))
		*--e = '\0';
	return s;
}

static void config_err(struct config_error *err, const char *file, int line,
		       const char *key, const char *reason)
{
	if (line > 0 && key != NULL)
		snprintf(err->msg, sizeof(err->msg), "%s:%d: %s: %s", file,
			 line, key, reason);
	else if (line > 0)
		snprintf(err->msg, sizeof(err->msg), "%s:%d: %s", file, line,
			 reason);
	else if (key != NULL)
		snprintf(err->msg, sizeof(err->msg), "%s: %s: %s", file, key,
			 reason);
	else
		snprintf(err->msg, sizeof(err->msg), "%s: %s", file, reason);
}

static int config_add_unknown(struct config *cfg, const char *name)
{
	size_t old = cfg->unknown_keys ? strlen(cfg->unknown_keys) : 0;
	char *p = realloc(cfg->unknown_keys, old + strlen(name) + 2);

	if (p == NULL)
		return -1;
	if (old > 0)
		p[old++] = ' ';
	memcpy(p + old, name, strlen(name) + 1);
	cfg->unknown_keys = p;
	return 0;
}

/* Values that depend on others (spec B, "Derived values"). */
static int config_derive(struct config *cfg, const char *file,
			 struct config_error *err)
{
	struct in_addr a4;
	char buf[512];
	char *sp;

	if (cfg->mail_domain == NULL || cfg->mail_domain[0] == '\0') {
		config_err(err, file, 0, "mail_domain", "required");
		return -1;
	}
	if (strlen(cfg->mail_domain) > 253 ||
	    strspn(cfg->mail_domain,
		   "abcdefghijklmnopqrstuvwxyz"
		   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") !=
		    strlen(cfg->mail_domain)) {
		config_err(err, file, 0, "mail_domain",
			   "not a domain name or IPv4 address");
		return -1;
	}
	free(cfg->mail_domain_bare);
	cfg->mail_domain_bare = strdup(cfg->mail_domain);
	if (inet_pton(AF_INET, cfg->mail_domain, &a4) == 1) {
		cfg->is_ip_relay = true;
		snprintf(buf, sizeof(buf), "[%s]", cfg->mail_domain_bare);
		free(cfg->mail_domain);
		cfg->mail_domain = strdup(buf);
	}
	if (cfg->tls_external_cert_and_key != NULL &&
	    cfg->tls_external_cert_and_key[0] != '\0') {
		char c1[256], c2[256], c3[2];

		if (sscanf(cfg->tls_external_cert_and_key, "%255s %255s %1s",
			   c1, c2, c3) != 2) {
			config_err(err, file, 0, "tls_external_cert_and_key",
				   "tls_external_cert_and_key must have two "
				   "space-separated paths: CERT_PATH KEY_PATH");
			return -1;
		}
		cfg->tls_cert_mode = CONFIG_TLS_EXTERNAL;
		if (cfg->tls_cert == NULL)
			cfg->tls_cert = strdup(c1);
		if (cfg->tls_key == NULL)
			cfg->tls_key = strdup(c2);
	} else if (cfg->is_ip_relay || cfg->mail_domain_bare[0] == '_') {
		cfg->tls_cert_mode = CONFIG_TLS_SELF;
		if (cfg->tls_cert == NULL)
			cfg->tls_cert = strdup("/etc/ssl/certs/mailserver.pem");
		if (cfg->tls_key == NULL)
			cfg->tls_key =
				strdup("/etc/ssl/private/mailserver.key");
	} else {
		cfg->tls_cert_mode = CONFIG_TLS_ACME;
		if (cfg->tls_cert == NULL) {
			snprintf(buf, sizeof(buf),
				 "/var/lib/acme/live/%s/fullchain",
				 cfg->mail_domain_bare);
			cfg->tls_cert = strdup(buf);
		}
		if (cfg->tls_key == NULL) {
			snprintf(buf, sizeof(buf),
				 "/var/lib/acme/live/%s/privkey",
				 cfg->mail_domain_bare);
			cfg->tls_key = strdup(buf);
		}
	}
	if (cfg->mailboxes_dir == NULL) {
		snprintf(buf, sizeof(buf), "/home/vmail/mail/%s",
			 cfg->mail_domain_bare);
		cfg->mailboxes_dir = strdup(buf);
	}
	cfg->iroh_relay_set = cfg->iroh_relay != NULL;
	if (cfg->iroh_relay == NULL) {
		snprintf(buf, sizeof(buf), "https://%s", cfg->mail_domain_bare);
		cfg->iroh_relay = strdup(buf);
	} else {
		sp = strdup(config_strip(cfg->iroh_relay));
		free(cfg->iroh_relay);
		cfg->iroh_relay = sp;
	}
	if (cfg->dovecot_lmtp_socket == NULL) {
		snprintf(buf, sizeof(buf), "%s/lmtp", cfg->dovecot_base_dir);
		cfg->dovecot_lmtp_socket = strdup(buf);
	}
	if (cfg->dovecot_imap_socket == NULL) {
		snprintf(buf, sizeof(buf), "%s/imap", cfg->dovecot_base_dir);
		cfg->dovecot_imap_socket = strdup(buf);
	}
	if (cfg->username_min_length > cfg->username_max_length) {
		config_err(err, file, 0, "username_min_length",
			   "greater than username_max_length");
		return -1;
	}
	return 0;
}

int config_load_buffer(struct config *cfg, const char *name, const char *text,
		       size_t len, struct config_error *err)
{
	char section[64] = "";
	char *copy, *line, *next;
	const struct config_key *last = NULL;
	char last_name[128] = "";
	int lineno = 0, last_line = 0;
	bool have_params = false;
	char seen[CONFIG_NKEYS];
	char why[160];
	int rc = -1;

	memset(seen, 0, sizeof(seen));
	if (len > CONFIG_FILE_MAX) {
		config_err(err, name, 0, NULL, "file larger than 1 MiB");
		return -1;
	}
	copy = malloc(len + 1);
	if (copy == NULL) {
		config_err(err, name, 0, NULL, "out of memory");
		return -1;
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	for (line = copy; line != NULL && *line != '\0'; line = next) {
		char *nl = strchr(line, '\n'), *p, *sep, *key, *val;
		const struct config_key *k;
		const char *reason;

		next = nl != NULL ? nl + 1 : NULL;
		if (nl != NULL)
			*nl = '\0';
		lineno++;
		if (strlen(line) > CONFIG_LINE_MAX) {
			config_err(err, name, lineno, NULL, "line too long");
			goto out;
		}
		if ((line[0] == ' ' || line[0] == '\t') && last != NULL &&
		    config_strip(line)[0] != '\0') {
			/* configparser continuation line: append. */
			char **sp;
			size_t a, b;
			char *joined;

			p = config_strip(line);
			if (last->type != CFG_STR) {
				config_err(err, name, lineno, last_name,
					   "continuation line for a non-text "
					   "value");
				goto out;
			}
			sp = config_str_field(cfg, last);
			a = strlen(*sp);
			b = strlen(p);
			joined = malloc(a + b + 2);
			if (joined == NULL)
				goto out;
			memcpy(joined, *sp, a);
			joined[a] = '\n';
			memcpy(joined + a + 1, p, b + 1);
			free(*sp);
			*sp = joined;
			continue;
		}
		p = config_strip(line);
		if (*p == '\0' || *p == '#' || *p == ';')
			continue;
		last = NULL;
		if (*p == '[') {
			char *e = strchr(p, ']');

			if (e == NULL ||
			    (size_t)(e - p - 1) >= sizeof(section)) {
				config_err(err, name, lineno, NULL,
					   "bad section header");
				goto out;
			}
			memcpy(section, p + 1, (size_t)(e - p - 1));
			section[e - p - 1] = '\0';
			if (strcmp(section, "params") == 0)
				have_params = true;
			continue;
		}
		sep = strpbrk(p, "=:");
		if (sep == NULL) {
			config_err(err, name, lineno, NULL,
				   "expected 'key = value'");
			goto out;
		}
		if (section[0] == '\0') {
			config_err(err, name, lineno, NULL,
				   "key outside of a [section]");
			goto out;
		}
		*sep = '\0';
		key = config_strip(p);
		val = config_strip(sep + 1);
		for (char *c = key; *c != '\0'; c++)
			*c = (char)tolower((unsigned char)*c);
		snprintf(last_name, sizeof(last_name), "%s", key);
		k = config_key_find(section, key);
		if (k == NULL) {
			if (strcmp(section, "params") == 0 ||
			    strcmp(section, "ringmail") == 0)
				config_add_unknown(cfg, key);
			continue;
		}
		if (seen[k - config_keys]) {
			snprintf(why, sizeof(why),
				 "duplicate (first set on line %d)", last_line);
			config_err(err, name, lineno, key, why);
			goto out;
		}
		seen[k - config_keys] = 1;
		last_line = lineno;
		reason = config_set(cfg, k, val, why, sizeof(why));
		if (reason != NULL) {
			config_err(err, name, lineno, key, reason);
			goto out;
		}
		last = k;
	}
	if (!have_params) {
		config_err(err, name, 0, NULL, "no [params] section");
		goto out;
	}
	if (config_derive(cfg, name, err) < 0)
		goto out;
	if (cfg->unknown_keys != NULL)
		log_warn("WARNING: chatmail.ini contains settings that have no "
			 "effect: %s",
			 cfg->unknown_keys);
	rc = 0;
out:
	free(copy);
	return rc;
}

int config_load(struct config *cfg, const char *path, struct config_error *err)
{
	FILE *f = fopen(path, "r");
	char *data;
	size_t n;
	int rc;

	if (f == NULL) {
		config_err(err, path, 0, NULL, strerror(errno));
		return -1;
	}
	data = malloc(CONFIG_FILE_MAX + 1);
	if (data == NULL) {
		fclose(f);
		config_err(err, path, 0, NULL, "out of memory");
		return -1;
	}
	n = fread(data, 1, CONFIG_FILE_MAX + 1, f);
	fclose(f);
	rc = config_load_buffer(cfg, path, data, n, err);
	free(data);
	return rc;
}

static void config_print_value(const struct config *cfg,
			       const struct config_key *k, FILE *f)
{
	const void *field = (const char *)cfg + k->off;

	switch (k->type) {
	case CFG_STR: {
		const char *s = *(char *const *)field;

		/* Multi-line values print as continuation lines. */
		for (; s != NULL && *s != '\0'; s++) {
			if (*s == '\n')
				fputs("\n\t", f);
			else
				fputc(*s, f);
		}
		break;
	}
	case CFG_INT:
		fprintf(f, "%d", *(const int *)field);
		break;
	case CFG_BOOL:
		fprintf(f, "%s", *(const bool *)field ? "true" : "false");
		break;
	case CFG_SIZE_MB:
		fprintf(f, "%lldM", (long long)*(const int64_t *)field);
		break;
	case CFG_BYTES:
		fprintf(f, "%lld", (long long)*(const int64_t *)field);
		break;
	case CFG_FLOAT:
		fprintf(f, "%g", *(const double *)field);
		break;
	case CFG_TIME:
		fprintf(f, "%llums",
			(unsigned long long)*(const uint64_t *)field);
		break;
	case CFG_BACKEND:
		fprintf(f, "%s",
			*(const enum loop_backend *)field == LOOP_BACKEND_AUTO
				? "auto"
				: loop_backend_name(
					  *(const enum loop_backend *)field));
		break;
	case CFG_KTLS: {
		static const char *const m[] = {"auto", "yes", "no"};

		fprintf(f, "%s", m[*(const enum tls_ktls_mode *)field]);
		break;
	}
	case CFG_LOGLEVEL: {
		static const char *const m[] = {"fatal", "error", "warn",
						"info", "debug"};

		fprintf(f, "%s", m[*(const enum log_level *)field]);
		break;
	}
	case CFG_PROFILE:
		fprintf(f, "%s", *(const bool *)field ? "debian12" : "native");
		break;
	}
}

void config_print(const struct config *cfg, FILE *f)
{
	const char *sect = "";

	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_key *k = &config_keys[i];

		if (strcmp(sect, k->section) != 0) {
			fprintf(f, "%s[%s]\n", sect[0] ? "\n" : "", k->section);
			sect = k->section;
		}
		if (k->type == CFG_STR &&
		    *(char *const *)((const char *)cfg + k->off) == NULL) {
			fprintf(f, "# %s (unset)\n", config_file_name(k));
			continue;
		}
		if (strcmp(k->name, "mail_domain") == 0) {
			fprintf(f, "mail_domain = %s\n",
				cfg->mail_domain_bare ? cfg->mail_domain_bare
						      : "");
			continue;
		}
		fprintf(f, "%s = ", config_file_name(k));
		config_print_value(cfg, k, f);
		fputc('\n', f);
	}
}
