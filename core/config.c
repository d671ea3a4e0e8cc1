/* core/config: chatmail.ini reader and the declarative key table.
 *
 * The ini syntax is what chatmail's parser (iniconfig) accepts: "[section]"
 * headers, "key = value" or "key: value" (split at the first '=' or ':'),
 * whole-line '#'/';' comments (indented too), no inline comments, values
 * stripped, indented lines continue the previous value (joined with "\n"),
 * duplicate keys and sections are errors. Like configparser (and unlike
 * iniconfig) keys match case-insensitively and an indented line with no
 * value above it is read as a key line. */
#include "core/config.h"

/* system */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONFIG_LINE_MAX  (64 * 1024)
#define CONFIG_FILE_MAX  (1024 * 1024)
#define CONFIG_VALUE_MAX (CONFIG_LINE_MAX - 128)

enum config_type {
	CFG_STR,
	CFG_INT,
	CFG_DAYS,    /* integer days */
	CFG_BOOL,    /* chatmail: "true" (any case) is true, else false */
	CFG_SIZE_MB, /* parse_size_mb */
	CFG_BYTES,   /* integer bytes */
	CFG_FLOAT,
	CFG_TIME,   /* 300s, 5m, 1h, 2d, 500ms; bare number = seconds */
	CFG_ENUM,   /* one of ->names */
	CFG_LISTEN, /* "host:port [v6]:port ..." or "" */
};

struct config_enum {
	const char *name; /* NULL ends the list */
	int value;
	bool alias; /* accepted, never printed */
};

struct config_key {
	const char *section;
	const char *name; /* as written in the file */
	enum config_type type;
	const char *def; /* NULL: unset or derived */
	double min, max; /* numbers: inclusive range */
	size_t off;
	size_t size; /* sizeof the field (CFG_ENUM stores bool or enum) */
	const struct config_enum *names; /* CFG_ENUM */
};

#define CONFIG_FIELD(f) \
	offsetof(struct config, f), sizeof(((struct config *)0)->f)
#define P(name, field, type, def, min, max)                                    \
	{                                                                      \
		"params", name, type, def, min, max, CONFIG_FIELD(field), NULL \
	}
#define R(name, field, type, def, min, max)                                 \
	{                                                                   \
		"ringmail", name, type, def, min, max, CONFIG_FIELD(field), \
			NULL                                                \
	}
#define RE(name, field, def, names)                                         \
	{                                                                   \
		"ringmail", name, CFG_ENUM, def, 0, 0, CONFIG_FIELD(field), \
			names                                               \
	}

static const struct config_enum config_backends[] = {
	{"auto", LOOP_BACKEND_AUTO, false},
	{"uring", LOOP_BACKEND_URING, false},
	{"epoll", LOOP_BACKEND_EPOLL, false},
	{"io_uring", LOOP_BACKEND_URING, true},
	{NULL, 0, false},
};
static const struct config_enum config_ktls[] = {
	{"auto", TLS_KTLS_AUTO, false},
	{"yes", TLS_KTLS_YES, false},
	{"no", TLS_KTLS_NO, false},
	{NULL, 0, false},
};
static const struct config_enum config_log_levels[] = {
	{"error", LOG_LV_ERR, false}, {"warn", LOG_LV_WARN, false},
	{"info", LOG_LV_INFO, false}, {"debug", LOG_LV_DEBUG, false},
	{"err", LOG_LV_ERR, true},    {NULL, 0, false},
};
static const struct config_enum config_uring_profiles[] = {
	{"native", 0, false},
	{"debian12", 1, false},
	{NULL, 0, false},
};

static const struct config_key config_keys[] = {
	/* [params]: spec section B, same names, defaults and meaning. */
	P("mail_domain", mail_domain, CFG_STR, NULL, 0, 0),
	P("max_user_send_per_minute", max_user_send_per_minute, CFG_INT, "60",
	  1, 1e6),
	P("max_user_send_burst_size", max_user_send_burst_size, CFG_INT, "10",
	  1, 1e6),
	P("max_mailbox_size", max_mailbox_size_mb, CFG_SIZE_MB, "500M", 1, 1e9),
	P("max_message_size", max_message_size, CFG_BYTES, "31457280", 1024,
	  4e9),
	P("delete_mails_after", delete_mails_after, CFG_DAYS, "20", 0, 36500),
	P("delete_large_after", delete_large_after, CFG_DAYS, "7", 0, 36500),
	P("delete_inactive_users_after", delete_inactive_users_after, CFG_DAYS,
	  "90", 0, 36500),
	P("username_min_length", username_min_length, CFG_INT, "9", 1, 64),
	P("username_max_length", username_max_length, CFG_INT, "9", 1, 64),
	P("password_min_length", password_min_length, CFG_INT, "9", 1, 1024),
	P("www_folder", www_folder, CFG_STR, "", 0, 0),
	P("filtermail_smtp_port", filtermail_smtp_port, CFG_INT, "10080", 1,
	  65535),
	P("filtermail_smtp_port_incoming", filtermail_smtp_port_incoming,
	  CFG_INT, "10081", 1, 65535),
	P("filtermail_http_port_incoming", filtermail_http_port_incoming,
	  CFG_INT, "10082", 1, 65535),
	P("filtermail_lmtp_port_transport", filtermail_lmtp_port_transport,
	  CFG_INT, "10083", 1, 65535),
	P("postfix_reinject_port", postfix_reinject_port, CFG_INT, "10025", 1,
	  65535),
	P("postfix_reinject_port_incoming", postfix_reinject_port_incoming,
	  CFG_INT, "10026", 1, 65535),
	P("mtail_address", mtail_address, CFG_STR, NULL, 0, 0),
	P("disable_ipv6", disable_ipv6, CFG_BOOL, "false", 0, 0),
	P("acme_email", acme_email, CFG_STR, "", 0, 0),
	P("imap_rawlog", imap_rawlog, CFG_BOOL, "false", 0, 0),
	P("imap_compress", imap_compress, CFG_BOOL, "false", 0, 0),
	P("turn_socket_path", turn_socket_path, CFG_STR,
	  "/run/chatmail-turn/turn.socket", 0, 0),
	P("iroh_relay", iroh_relay, CFG_STR, NULL, 0, 0),
	P("privacy_postal", privacy_postal, CFG_STR, NULL, 0, 0),
	P("privacy_mail", privacy_mail, CFG_STR, NULL, 0, 0),
	P("privacy_pdo", privacy_pdo, CFG_STR, NULL, 0, 0),
	P("privacy_supervisor", privacy_supervisor, CFG_STR, NULL, 0, 0),
	P("max_load_1m", max_load_1m, CFG_FLOAT, "5", 0, 1e6),
	P("min_available_memory", min_available_memory_mb, CFG_SIZE_MB, "200M",
	  0, 1e9),
	P("min_free_disk_space", min_free_disk_space_mb, CFG_SIZE_MB, "1G", 0,
	  1e9),
	P("max_imap_connections", max_imap_connections, CFG_INT, "10000", 1,
	  1e7),
	P("max_smtp_connections", max_smtp_connections, CFG_INT, "1000", 1,
	  1e7),
	P("tls_external_cert_and_key", tls_external_cert_and_key, CFG_STR, "",
	  0, 0),
	P("mailboxes_dir", mailboxes_dir, CFG_STR, NULL, 0, 0),
	P("passdb_path", passdb_path, CFG_STR, "/home/vmail/passdb.sqlite", 0,
	  0),

	/* [ringmail]: ours; chatmail's tools never read this section. */
	R("smtp_listen", smtp_listen, CFG_LISTEN, "0.0.0.0:25 [::]:25", 0, 0),
	R("submission_listen", submission_listen, CFG_LISTEN,
	  "0.0.0.0:587 [::]:587", 0, 0),
	R("submissions_listen", submissions_listen, CFG_LISTEN,
	  "0.0.0.0:465 [::]:465", 0, 0),
	R("imap_listen", imap_listen, CFG_LISTEN, "0.0.0.0:143 [::]:143", 0, 0),
	R("imaps_listen", imaps_listen, CFG_LISTEN, "0.0.0.0:993 [::]:993", 0,
	  0),
	R("https_listen", https_listen, CFG_LISTEN, "0.0.0.0:443 [::]:443", 0,
	  0),
	R("http_listen", http_listen, CFG_LISTEN, "0.0.0.0:80 [::]:80", 0, 0),
	R("data_dir", data_dir, CFG_STR, "/var/lib/ringmail", 0, 0),
	R("tls_cert", tls_cert, CFG_STR, NULL, 0, 0),
	R("tls_key", tls_key, CFG_STR, NULL, 0, 0),
	R("dovecot_base_dir", dovecot_base_dir, CFG_STR,
	  "/run/ringmail/dovecot", 0, 0),
	R("dovecot_lmtp_socket", dovecot_lmtp_socket, CFG_STR, NULL, 0, 0),
	R("dovecot_imap_socket", dovecot_imap_socket, CFG_STR, NULL, 0, 0),
	R("dovecot_managed", dovecot_managed, CFG_BOOL, "true", 0, 0),
	R("dovecot_log", dovecot_log, CFG_STR, "", 0, 0),
	R("dovecot_mail_user", dovecot_mail_user, CFG_STR, "", 0, 0),
	R("dovecot_imap_port", dovecot_imap_port, CFG_INT, "10143", 1, 65535),
	RE("io_backend", io_backend, "auto", config_backends),
	RE("uring_profile", uring_debian12, "native", config_uring_profiles),
	RE("tls_ktls", tls_ktls, "auto", config_ktls),
	R("workers", workers, CFG_INT, "0", 0, 256),
	R("pool_threads", pool_threads, CFG_INT, "2", 1, 64),
	RE("log_level", log_level, "info", config_log_levels),
	R("nocreate_file", nocreate_file, CFG_STR, "/etc/chatmail-nocreate", 0,
	  0),
	R("smtp_timeout", smtp_timeout_ms, CFG_TIME, "300s", 1000, 3600e3),
	R("imap_preauth_timeout", imap_preauth_timeout_ms, CFG_TIME, "60s",
	  1000, 3600e3),
	R("smtp_preauth_deadline", smtp_preauth_deadline_ms, CFG_TIME, "120s",
	  1000, 3600e3),
	R("imap_preauth_deadline", imap_preauth_deadline_ms, CFG_TIME, "120s",
	  1000, 3600e3),
	R("smtp_max_connections_per_ip", smtp_max_connections_per_ip, CFG_INT,
	  "50", 0, 1e6),
	R("imap_max_connections_per_ip", imap_max_connections_per_ip, CFG_INT,
	  "100", 0, 1e6),
	R("drain_timeout", drain_timeout_ms, CFG_TIME, "30s", 0, 3600e3),
	R("imap_hibernate_timeout", imap_hibernate_timeout_ms, CFG_TIME, "30s",
	  0, 3600e3),
	R("dkim_selector", dkim_selector, CFG_STR, "opendkim", 0, 0),
	R("dkim_key_file", dkim_key_file, CFG_STR,
	  "/etc/dkimkeys/opendkim.private", 0, 0),
	R("dns_server", dns_server, CFG_STR, "", 0, 0),
	R("tls_trust_file", tls_trust_file, CFG_STR, "", 0, 0),
	R("push_url", push_url, CFG_STR,
	  "https://notifications.delta.chat/notify", 0, 0),
	R("turn_secret_file", turn_secret_file, CFG_STR, "", 0, 0),
	R("appversions_file", appversions_file, CFG_STR, "", 0, 0),
	R("acme_webroot", acme_webroot, CFG_STR, "/run/acme/acme-challenge", 0,
	  0),
	R("http_header_timeout", http_header_timeout_ms, CFG_TIME, "10s", 100,
	  3600e3),
	R("http_body_timeout", http_body_timeout_ms, CFG_TIME, "30s", 100,
	  3600e3),
	R("http_keepalive_timeout", http_keepalive_timeout_ms, CFG_TIME, "75s",
	  100, 3600e3),
	R("http_new_per_minute", http_new_per_minute, CFG_INT, "120", 1,
	  100000000),
	R("http_new_burst", http_new_burst, CFG_INT, "5", 1, 100000000),
};

#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

static const struct config_key *config_key_find(const char *section,
						const char *name)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		if (strcmp(config_keys[i].section, section) == 0 &&
		    strcasecmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	}
	return NULL;
}

static bool config_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

int64_t config_parse_size_mb(const char *s)
{
	char buf[64];
	size_t n, len;
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
	if (buf[n - 1] == 'B')
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
	static const struct {
		const char *suffix;
		double mult;
	} units[] = {
		{"", 1000},  {"ms", 1},     {"s", 1000},
		{"m", 60e3}, {"h", 3600e3}, {"d", 86400e3},
	};
	char *end;
	double v;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || !(v >= 0))
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(*units); i++) {
		if (strcmp(end, units[i].suffix) == 0) {
			v *= units[i].mult;
			if (v > 1e15)
				return -1;
			*ms_r = (uint64_t)llround(v);
			return 0;
		}
	}
	return -1;
}

/* Checks one listen address as core/listen.c will parse it: "host:port"
 * with a numeric IPv4 host, "*:port", ":port" or "[v6]:port". */
static bool config_listen_addr_ok(const char *s, size_t len)
{
	char host[64];
	const char *port_s, *colon;
	size_t hlen;
	unsigned long port = 0;
	unsigned char a[16];

	if (len == 0)
		return false;
	if (s[0] == '[') {
		const char *br = memchr(s, ']', len);

		if (br == NULL || (size_t)(br - s) + 1 >= len || br[1] != ':')
			return false;
		hlen = (size_t)(br - s - 1);
		if (hlen >= sizeof(host))
			return false;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET6, host, a) != 1)
			return false;
		port_s = br + 2;
	} else {
		colon = NULL;
		for (const char *c = s; c < s + len; c++) {
			if (*c == ':')
				colon = c;
		}
		if (colon == NULL)
			return false;
		hlen = (size_t)(colon - s);
		if (hlen >= sizeof(host))
			return false;
		memcpy(host, s, hlen);
		host[hlen] = '\0';
		if (hlen > 0 && strcmp(host, "*") != 0 &&
		    inet_pton(AF_INET, host, a) != 1)
			return false;
		port_s = colon + 1;
	}
	if (port_s >= s + len)
		return false;
	for (const char *c = port_s; c < s + len; c++) {
		if (!isdigit((unsigned char)*c))
			return false;
		port = port * 10 + (unsigned long)(*c - '0');
		if (port > 65535)
			return false;
	}
	return true;
}

/* Validate a listen list and normalise its separators (space, tab, comma,
 * newline from continuation lines) to single spaces. */
static const char *config_listen_parse(const char *v, char **out_r, char *why,
				       size_t why_len)
{
	size_t vlen = strlen(v), o = 0;
	char *out = malloc(vlen + 1);
	const char *p = v;

	if (out == NULL)
		return "out of memory";
	for (;;) {
		size_t n;

		p += strspn(p, " \t\r\n,");
		if (*p == '\0')
			break;
		n = strcspn(p, " \t\r\n,");
		if (!config_listen_addr_ok(p, n)) {
			snprintf(why, why_len,
				 "invalid listen address \"%.*s\" (use "
				 "host:port or [v6]:port)",
				 (int)(n > 64 ? 64 : n), p);
			free(out);
			return why;
		}
		if (o > 0)
			out[o++] = ' ';
		memcpy(out + o, p, n);
		o += n;
		p += n;
	}
	out[o] = '\0';
	*out_r = out;
	return NULL;
}

static char **config_str_field(struct config *cfg, const struct config_key *k)
{
	return (char **)(void *)((char *)cfg + k->off);
}

static int config_parse_ll(const char *v, long long *x_r)
{
	char *end;

	if (*v == '\0' || isspace((unsigned char)*v))
		return -1;
	errno = 0;
	*x_r = strtoll(v, &end, 10);
	return errno != 0 || end == v || *end != '\0' ? -1 : 0;
}

/* Set one key from its text. Returns NULL or a reason (maybe in @why). */
static const char *config_set(struct config *cfg, const struct config_key *k,
			      const char *v, char *why, size_t why_len)
{
	void *field = (char *)cfg + k->off;
	long long x;

	switch (k->type) {
	case CFG_STR:
	case CFG_LISTEN: {
		char **sp = config_str_field(cfg, k);
		char *dup;

		if (k->type == CFG_LISTEN) {
			const char *r =
				config_listen_parse(v, &dup, why, why_len);
			if (r != NULL)
				return r;
		} else {
			dup = strdup(v);
			if (dup == NULL)
				return "out of memory";
		}
		free(*sp);
		*sp = dup;
		return NULL;
	}
	case CFG_INT:
	case CFG_DAYS:
	case CFG_BYTES:
		if (config_parse_ll(v, &x) < 0)
			return "not an integer";
		if ((double)x < k->min || (double)x > k->max) {
			snprintf(why, why_len, "%lld out of range %.0f..%.0f",
				 x, k->min, k->max);
			return why;
		}
		if (k->type == CFG_BYTES)
			*(int64_t *)field = x;
		else
			*(int *)field = (int)x;
		return NULL;
	case CFG_BOOL:
		*(bool *)field = strcasecmp(v, "true") == 0;
		return NULL;
	case CFG_SIZE_MB: {
		int64_t mb = config_parse_size_mb(v);

		if (mb < 0)
			return "invalid size (use e.g. 500M or 1G)";
		if ((double)mb < k->min || (double)mb > k->max) {
			snprintf(why, why_len,
				 "%lldM out of range %.0fM..%.0fM",
				 (long long)mb, k->min, k->max);
			return why;
		}
		*(int64_t *)field = mb;
		return NULL;
	}
	case CFG_FLOAT: {
		char *end;
		double d;

		if (*v == '\0' || isspace((unsigned char)*v))
			return "not a number";
		errno = 0;
		d = strtod(v, &end);
		if (errno != 0 || end == v || *end != '\0' || !isfinite(d))
			return "not a number";
		if (d < k->min || d > k->max) {
			snprintf(why, why_len, "%g out of range %g..%g", d,
				 k->min, k->max);
			return why;
		}
		*(double *)field = d;
		return NULL;
	}
	case CFG_TIME: {
		uint64_t ms;

		if (config_parse_time_ms(v, &ms) < 0)
			return "invalid duration (use e.g. 30s, 5m, 1h)";
		if ((double)ms < k->min || (double)ms > k->max) {
			snprintf(why, why_len,
				 "%llums out of range %.0fms..%.0fms",
				 (unsigned long long)ms, k->min, k->max);
			return why;
		}
		*(uint64_t *)field = ms;
		return NULL;
	}
	case CFG_ENUM: {
		size_t o, i = 0, total = 0;

		for (const struct config_enum *e = k->names; e->name != NULL;
		     e++) {
			if (strcmp(e->name, v) == 0) {
				if (k->size == sizeof(bool)) {
					*(bool *)field = e->value != 0;
				} else {
					int iv = e->value;

					memcpy(field, &iv, sizeof(iv));
				}
				return NULL;
			}
		}
		/* "expected auto, uring or epoll" */
		for (const struct config_enum *e = k->names; e->name != NULL;
		     e++)
			total += !e->alias;
		o = (size_t)snprintf(why, why_len, "expected");
		for (const struct config_enum *e = k->names;
		     e->name != NULL && o < why_len; e++) {
			if (e->alias)
				continue;
			o += (size_t)snprintf(why + o, why_len - o, "%s %s",
					      i == 0           ? ""
					      : i + 1 == total ? " or"
							       : ",",
					      e->name);
			i++;
		}
		return why;
	}
	}
	return "unknown type";
}

void config_init_defaults(struct config *cfg)
{
	char why[160];

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
		if (config_keys[i].type == CFG_STR ||
		    config_keys[i].type == CFG_LISTEN) {
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

/* Is @name already one of the space-separated words of @list? */
static bool config_word_in(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; p != NULL && *p != '\0';) {
		size_t w = strcspn(p, " ");

		if (w == n && memcmp(p, name, n) == 0)
			return true;
		p += w;
		p += strspn(p, " ");
	}
	return false;
}

static int config_add_unknown(struct config *cfg, const char *name)
{
	size_t old = cfg->unknown_keys ? strlen(cfg->unknown_keys) : 0;
	size_t n = strlen(name);
	char *p = realloc(cfg->unknown_keys, old + n + 2);

	if (p == NULL)
		return -1;
	if (old > 0)
		p[old++] = ' ';
	memcpy(p + old, name, n + 1);
	cfg->unknown_keys = p;
	return 0;
}

static char *config_strdup_printf(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static char *config_strdup_printf(const char *fmt, ...)
{
	va_list ap;
	int n;
	char *s;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	s = malloc((size_t)n + 1);
	if (s == NULL)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* Set *@sp to a fresh copy unless it is already set (a key in the file
 * wins over the derived default). */
static int config_default_str(char **sp, char *value)
{
	if (value == NULL)
		return -1;
	if (*sp != NULL) {
		free(value);
		return 0;
	}
	*sp = value;
	return 0;
}

static bool config_domain_ok(const char *d)
{
	size_t n = strlen(d);

	return n > 0 && n <= 253 &&
	       strspn(d, "abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == n;
}

/* Values that depend on others (spec B, "Derived values"). */
static int config_derive(struct config *cfg, const char *file,
			 struct config_error *err)
{
	const char *tk = cfg->tls_external_cert_and_key;
	const char *ws = " \t\r\n\f\v";
	struct in_addr a4;
	int r = 0;

	if (cfg->mail_domain == NULL || cfg->mail_domain[0] == '\0') {
		config_err(err, file, 0, "mail_domain", "required");
		return -1;
	}
	if (!config_domain_ok(cfg->mail_domain)) {
		config_err(err, file, 0, "mail_domain",
			   "not a domain name or IPv4 address");
		return -1;
	}
	free(cfg->mail_domain_bare);
	cfg->mail_domain_bare = strdup(cfg->mail_domain);
	if (cfg->mail_domain_bare == NULL)
		goto oom;
	cfg->is_ip_relay = inet_pton(AF_INET, cfg->mail_domain, &a4) == 1;
	if (cfg->is_ip_relay) {
		char *s = config_strdup_printf("[%s]", cfg->mail_domain_bare);
		if (s == NULL)
			goto oom;
		free(cfg->mail_domain);
		cfg->mail_domain = s;
	}
	/* Python's str.split(): any whitespace, exactly two words. */
	if (tk != NULL && tk[strspn(tk, ws)] != '\0') {
		const char *w1 = tk + strspn(tk, ws), *w2, *rest;
		size_t n1 = strcspn(w1, ws), n2;

		w2 = w1 + n1 + strspn(w1 + n1, ws);
		n2 = strcspn(w2, ws);
		rest = w2 + n2 + strspn(w2 + n2, ws);
		if (n2 == 0 || *rest != '\0') {
			config_err(err, file, 0, "tls_external_cert_and_key",
				   "tls_external_cert_and_key must have two "
				   "space-separated paths: CERT_PATH KEY_PATH");
			return -1;
		}
		cfg->tls_cert_mode = CONFIG_TLS_EXTERNAL;
		r |= config_default_str(&cfg->tls_cert, strndup(w1, n1));
		r |= config_default_str(&cfg->tls_key, strndup(w2, n2));
	} else if (cfg->is_ip_relay || cfg->mail_domain_bare[0] == '_') {
		cfg->tls_cert_mode = CONFIG_TLS_SELF;
		r |= config_default_str(
			&cfg->tls_cert,
			strdup("/etc/ssl/certs/mailserver.pem"));
		r |= config_default_str(
			&cfg->tls_key,
			strdup("/etc/ssl/private/mailserver.key"));
	} else {
		cfg->tls_cert_mode = CONFIG_TLS_ACME;
		r |= config_default_str(
			&cfg->tls_cert,
			config_strdup_printf("/var/lib/acme/live/%s/fullchain",
					     cfg->mail_domain_bare));
		r |= config_default_str(
			&cfg->tls_key,
			config_strdup_printf("/var/lib/acme/live/%s/privkey",
					     cfg->mail_domain_bare));
	}
	r |= config_default_str(&cfg->mailboxes_dir,
				config_strdup_printf("/home/vmail/mail/%s",
						     cfg->mail_domain_bare));
	/* Values are stored stripped, as chatmail strips iroh_relay. */
	cfg->iroh_relay_set = cfg->iroh_relay != NULL;
	r |= config_default_str(
		&cfg->iroh_relay,
		config_strdup_printf("https://%s", cfg->mail_domain_bare));
	r |= config_default_str(
		&cfg->dovecot_lmtp_socket,
		config_strdup_printf("%s/lmtp", cfg->dovecot_base_dir));
	r |= config_default_str(
		&cfg->dovecot_imap_socket,
		config_strdup_printf("%s/imap", cfg->dovecot_base_dir));
	if (r != 0)
		goto oom;
	if (cfg->username_min_length > cfg->username_max_length) {
		config_err(err, file, 0, "username_min_length",
			   "greater than username_max_length");
		return -1;
	}
	return 0;
oom:
	config_err(err, file, 0, NULL, "out of memory");
	return -1;
}

/* The entry being read: its key line and its value with continuations. */
struct config_pending {
	const struct config_key *k; /* NULL for an unknown key */
	char name[128];
	int line;
	char *val;
	size_t len, cap;
	bool active;
};

static int config_pending_append(struct config_pending *pe, const char *s,
				 bool newline)
{
	size_t n = strlen(s), need = pe->len + n + 2;

	if (need > pe->cap) {
		size_t cap = pe->cap ? pe->cap : 256;
		char *p;

		while (cap < need)
			cap *= 2;
		p = realloc(pe->val, cap);
		if (p == NULL)
			return -1;
		pe->val = p;
		pe->cap = cap;
	}
	if (newline)
		pe->val[pe->len++] = '\n';
	memcpy(pe->val + pe->len, s, n + 1);
	pe->len += n;
	return 0;
}

/* Apply the finished entry. */
static int config_pending_flush(struct config *cfg, struct config_pending *pe,
				const char *name, struct config_error *err)
{
	char why[160];
	const char *reason;

	if (!pe->active)
		return 0;
	pe->active = false;
	if (pe->k == NULL)
		return 0;
	reason = config_set(cfg, pe->k, pe->val != NULL ? pe->val : "", why,
			    sizeof(why));
	if (reason != NULL) {
		config_err(err, name, pe->line, pe->name, reason);
		return -1;
	}
	return 0;
}

int config_load_buffer(struct config *cfg, const char *name, const char *text,
		       size_t len, struct config_error *err)
{
	char section[128] = "";
	bool in_section = false, in_ours = false;
	bool have_params = false, have_ringmail = false;
	struct config_pending pe;
	int seen_line[CONFIG_NKEYS];
	const char *p = text, *end = text + len;
	char *line = NULL;
	int lineno = 0, rc = -1;

	memset(&pe, 0, sizeof(pe));
	memset(seen_line, 0, sizeof(seen_line));
	if (len > CONFIG_FILE_MAX) {
		config_err(err, name, 0, NULL, "file larger than 1 MiB");
		return -1;
	}
	if (memchr(text, '\0', len) != NULL) {
		config_err(err, name, 0, NULL, "file contains a NUL byte");
		return -1;
	}
	line = malloc(CONFIG_LINE_MAX + 1);
	if (line == NULL) {
		config_err(err, name, 0, NULL, "out of memory");
		return -1;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (nl != NULL ? nl : end) - p;
		char *s, *e, *sep, *key, *val;
		const struct config_key *k;

		lineno++;
		if (n > CONFIG_LINE_MAX) {
			config_err(err, name, lineno, NULL, "line too long");
			goto out;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		p = nl != NULL ? nl + 1 : end;
		/* rstrip; then a blank or comment line changes nothing */
		e = line + n;
		while (e > line && (config_is_space(e[-1]) || e[-1] == '\n'))
			*--e = '\0';
		s = line;
		while (config_is_space(*s))
			s++;
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (s != line && pe.active) {
			/* indented: continues the value above */
			if (config_pending_append(&pe, s, pe.len > 0) < 0)
				goto oom;
			continue;
		}
		/* With nothing to continue, an indented line is read like any
		 * other (configparser; iniconfig would refuse it). */
		if (s != line && *s != '[' && strpbrk(s, "=:") == NULL) {
			config_err(err, name, lineno, NULL,
				   "unexpected value continuation");
			goto out;
		}
		if (config_pending_flush(cfg, &pe, name, err) < 0)
			goto out;
		if (*s == '[') {
			size_t sl;

			s[strcspn(s, "#;")] = '\0';
			e = s + strlen(s);
			while (e > s && config_is_space(e[-1]))
				*--e = '\0';
			sl = (size_t)(e - s);
			if (sl < 3 || e[-1] != ']') {
				config_err(err, name, lineno, NULL,
					   "bad section header");
				goto out;
			}
			if (sl - 2 >= sizeof(section)) {
				config_err(err, name, lineno, NULL,
					   "section name too long");
				goto out;
			}
			memcpy(section, s + 1, sl - 2);
			section[sl - 2] = '\0';
			in_section = true;
			in_ours = false;
			if (strcmp(section, "params") == 0 ||
			    strcmp(section, "ringmail") == 0) {
				bool *have = section[0] == 'p' ? &have_params
							       : &have_ringmail;
				if (*have) {
					config_err(err, name, lineno, NULL,
						   "duplicate section");
					goto out;
				}
				*have = true;
				in_ours = true;
			}
			continue;
		}
		sep = strpbrk(s, "=:");
		if (sep == NULL) {
			config_err(err, name, lineno, NULL,
				   "expected 'key = value'");
			goto out;
		}
		if (!in_section) {
			config_err(err, name, lineno, NULL,
				   "key outside of a [section]");
			goto out;
		}
		*sep = '\0';
		key = s;
		e = sep;
		while (e > key && config_is_space(e[-1]))
			*--e = '\0';
		val = sep + 1;
		while (config_is_space(*val))
			val++;
		if (*key == '\0') {
			config_err(err, name, lineno, NULL, "empty key name");
			goto out;
		}
		if (strlen(key) >= sizeof(pe.name)) {
			config_err(err, name, lineno, NULL, "key too long");
			goto out;
		}
		/* so that config_print's "key = value" fits in a line */
		if (strlen(val) > CONFIG_VALUE_MAX) {
			config_err(err, name, lineno, key, "value too long");
			goto out;
		}
		for (char *c = key; *c != '\0'; c++)
			*c = (char)tolower((unsigned char)*c);
		pe.active = true;
		pe.line = lineno;
		pe.len = 0;
		if (config_pending_append(&pe, val, false) < 0)
			goto oom;
		snprintf(pe.name, sizeof(pe.name), "%s", key);
		pe.k = NULL;
		if (!in_ours)
			continue; /* another program's section */
		k = config_key_find(section, key);
		if (k == NULL) {
			if (config_word_in(cfg->unknown_keys, key)) {
				config_err(err, name, lineno, key, "duplicate");
				goto out;
			}
			if (config_add_unknown(cfg, key) < 0)
				goto oom;
			continue;
		}
		if (seen_line[k - config_keys] != 0) {
			char why[64];

			snprintf(why, sizeof(why),
				 "duplicate (first set on line %d)",
				 seen_line[k - config_keys]);
			config_err(err, name, lineno, key, why);
			goto out;
		}
		seen_line[k - config_keys] = lineno;
		pe.k = k;
	}
	if (config_pending_flush(cfg, &pe, name, err) < 0)
		goto out;
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
	goto out;
oom:
	config_err(err, name, lineno, NULL, "out of memory");
out:
	free(pe.val);
	free(line);
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
	if (ferror(f)) {
		config_err(err, path, 0, NULL, strerror(errno));
		fclose(f);
		free(data);
		return -1;
	}
	fclose(f);
	rc = config_load_buffer(cfg, path, data, n, err);
	free(data);
	return rc;
}

/* The shortest "%.*g" that reads back to the same double. */
static void config_print_double(double d, FILE *f)
{
	char buf[40];

	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	fputs(buf, f);
}

static void config_print_time(uint64_t ms, FILE *f)
{
	if (ms == 0)
		fputs("0s", f);
	else if (ms % 86400000 == 0)
		fprintf(f, "%llud", (unsigned long long)(ms / 86400000));
	else if (ms % 3600000 == 0)
		fprintf(f, "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms % 60000 == 0)
		fprintf(f, "%llum", (unsigned long long)(ms / 60000));
	else if (ms % 1000 == 0)
		fprintf(f, "%llus", (unsigned long long)(ms / 1000));
	else
		fprintf(f, "%llums", (unsigned long long)ms);
}

static void config_print_value(const struct config *cfg,
			       const struct config_key *k, FILE *f)
{
	const void *field = (const char *)cfg + k->off;

	switch (k->type) {
	case CFG_STR:
	case CFG_LISTEN: {
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
	case CFG_DAYS:
		fprintf(f, "%d", *(const int *)field);
		break;
	case CFG_BOOL:
		fputs(*(const bool *)field ? "true" : "false", f);
		break;
	case CFG_SIZE_MB:
		fprintf(f, "%lldM", (long long)*(const int64_t *)field);
		break;
	case CFG_BYTES:
		fprintf(f, "%lld", (long long)*(const int64_t *)field);
		break;
	case CFG_FLOAT:
		config_print_double(*(const double *)field, f);
		break;
	case CFG_TIME:
		config_print_time(*(const uint64_t *)field, f);
		break;
	case CFG_ENUM: {
		int v = 0;

		if (k->size == sizeof(bool))
			v = *(const bool *)field;
		else
			memcpy(&v, field, sizeof(v));
		for (const struct config_enum *e = k->names; e->name != NULL;
		     e++) {
			if (e->value == v && !e->alias) {
				fputs(e->name, f);
				break;
			}
		}
		break;
	}
	}
}

void config_print(const struct config *cfg, FILE *f)
{
	const char *sect = "";

	fputs("# ringmail: effective configuration\n", f);
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_key *k = &config_keys[i];
		bool is_str = k->type == CFG_STR || k->type == CFG_LISTEN;

		if (strcmp(sect, k->section) != 0) {
			fprintf(f, "\n[%s]\n", k->section);
			sect = k->section;
		}
		if (k->off == offsetof(struct config, mail_domain)) {
			fprintf(f, "mail_domain = %s\n",
				cfg->mail_domain_bare ? cfg->mail_domain_bare
						      : "");
			continue;
		}
		if (is_str &&
		    *(char *const *)((const char *)cfg + k->off) == NULL) {
			fprintf(f, "# %s (unset)\n", k->name);
			continue;
		}
		if (k->off == offsetof(struct config, iroh_relay) &&
		    !cfg->iroh_relay_set) {
			/* Setting it would turn the local iroh relay off. */
			fprintf(f, "# iroh_relay (unset: local relay %s)\n",
				cfg->iroh_relay);
			continue;
		}
		if (is_str &&
		    **(char *const *)((const char *)cfg + k->off) == '\0') {
			fprintf(f, "%s =\n", k->name);
			continue;
		}
		fprintf(f, "%s = ", k->name);
		config_print_value(cfg, k, f);
		fputc('\n', f);
	}
}

int config_write_default(FILE *f, const struct config_local *l)
{
	static const struct {
		const char *key;
		int port;
	} svcs[] = {
		{"smtp_listen", 25},         {"submission_listen", 587},
		{"submissions_listen", 465}, {"imap_listen", 143},
		{"imaps_listen", 993},       {"https_listen", 443},
		{"http_listen", 80},
	};
	const char *addr = l->addr != NULL ? l->addr : "127.0.0.1";
	bool v6 = strchr(addr, ':') != NULL;
	const char *strs[3] = {l->mail_domain, addr, l->run_dir};

	for (size_t i = 0; i < 3; i++) {
		if (strs[i] == NULL || strs[i][0] == '\0' ||
		    strpbrk(strs[i], "\r\n") != NULL)
			return -EINVAL;
	}
	if (!config_domain_ok(l->mail_domain) || l->port_offset < 0 ||
	    l->port_offset > 65535 - 993)
		return -EINVAL;
	fprintf(f,
		"# chatmail.ini for a local ringmail test relay (ringmail "
		"init).\n"
		"# Every other key keeps its default: ringmail config "
		"--config FILE\n"
		"[params]\n"
		"mail_domain = %s\n"
		"mailboxes_dir = %s/mail\n"
		"\n[ringmail]\n",
		l->mail_domain, l->run_dir);
	for (size_t i = 0; i < sizeof(svcs) / sizeof(*svcs); i++)
		fprintf(f, "%s = %s%s%s:%d\n", svcs[i].key, v6 ? "[" : "", addr,
			v6 ? "]" : "", svcs[i].port + l->port_offset);
	fprintf(f,
		"data_dir = %s/data\n"
		"tls_cert = %s/tls.crt\n"
		"tls_key = %s/tls.key\n"
		"nocreate_file = %s/nocreate\n"
		"dovecot_base_dir = %s/dovecot\n",
		l->run_dir, l->run_dir, l->run_dir, l->run_dir, l->run_dir);
	return ferror(f) ? -EIO : 0;
}
