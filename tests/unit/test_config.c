/* tests/unit/test_config: every chatmail.ini default (spec section B) and
 * every [ringmail] default, derived values, parse_size_mb, exact error
 * texts with file:line, unknown-key warning, the iniconfig syntax, the
 * print -> load round trip, config_write_default and `ringmail config`. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/config.h"
#include "testutil.h"

#define UNSET "<unset>"

static int load(struct config *cfg, const char *text, struct config_error *e)
{
	config_init_defaults(cfg);
	memset(e, 0, sizeof(*e));
	return config_load_buffer(cfg, "t.ini", text, strlen(text), e);
}

/* config_print into a malloc'd string (via a temporary file, which also
 * keeps GCC's dangling-pointer analysis away from open_memstream). */
static char *print_str(const struct config *cfg)
{
	FILE *f = tmpfile();
	char *out;
	long len;

	assert_non_null(f);
	config_print(cfg, f);
	len = ftell(f);
	assert_true(len >= 0);
	out = malloc((size_t)len + 1);
	assert_non_null(out);
	rewind(f);
	assert_int_equal(fread(out, 1, (size_t)len, f), (size_t)len);
	out[len] = '\0';
	fclose(f);
	return out;
}

/* Every key with its default as `ringmail config` prints it for
 * mail_domain = chat.example.org (spec B; ours for [ringmail]). */
static const struct {
	const char *section, *key, *value;
} spec_defaults[] = {
	{"params", "mail_domain", "chat.example.org"},
	{"params", "max_user_send_per_minute", "60"},
	{"params", "max_user_send_burst_size", "10"},
	{"params", "max_mailbox_size", "500M"},
	{"params", "max_message_size", "31457280"},
	{"params", "delete_mails_after", "20"},
	{"params", "delete_large_after", "7"},
	{"params", "delete_inactive_users_after", "90"},
	{"params", "username_min_length", "9"},
	{"params", "username_max_length", "9"},
	{"params", "password_min_length", "9"},
	{"params", "www_folder", ""},
	{"params", "filtermail_smtp_port", "10080"},
	{"params", "filtermail_smtp_port_incoming", "10081"},
	{"params", "filtermail_http_port_incoming", "10082"},
	{"params", "filtermail_lmtp_port_transport", "10083"},
	{"params", "postfix_reinject_port", "10025"},
	{"params", "postfix_reinject_port_incoming", "10026"},
	{"params", "mtail_address", UNSET},
	{"params", "disable_ipv6", "false"},
	{"params", "acme_email", ""},
	{"params", "imap_rawlog", "false"},
	{"params", "imap_compress", "false"},
	{"params", "turn_socket_path", "/run/chatmail-turn/turn.socket"},
	{"params", "iroh_relay", UNSET},
	{"params", "privacy_postal", UNSET},
	{"params", "privacy_mail", UNSET},
	{"params", "privacy_pdo", UNSET},
	{"params", "privacy_supervisor", UNSET},
	{"params", "max_load_1m", "5"},
	{"params", "min_available_memory", "200M"},
	{"params", "min_free_disk_space", "1024M"},
	{"params", "max_imap_connections", "10000"},
	{"params", "max_smtp_connections", "1000"},
	{"params", "tls_external_cert_and_key", ""},
	{"params", "mailboxes_dir", "/home/vmail/mail/chat.example.org"},
	{"params", "passdb_path", "/home/vmail/passdb.sqlite"},
	{"ringmail", "smtp_listen", "0.0.0.0:25 [::]:25"},
	{"ringmail", "submission_listen", "0.0.0.0:587 [::]:587"},
	{"ringmail", "submissions_listen", "0.0.0.0:465 [::]:465"},
	{"ringmail", "imap_listen", "0.0.0.0:143 [::]:143"},
	{"ringmail", "imaps_listen", "0.0.0.0:993 [::]:993"},
	{"ringmail", "https_listen", "0.0.0.0:443 [::]:443"},
	{"ringmail", "http_listen", "0.0.0.0:80 [::]:80"},
	{"ringmail", "data_dir", "/var/lib/ringmail"},
	{"ringmail", "tls_cert",
	 "/var/lib/acme/live/chat.example.org/fullchain"},
	{"ringmail", "tls_key", "/var/lib/acme/live/chat.example.org/privkey"},
	{"ringmail", "dovecot_base_dir", "/run/ringmail/dovecot"},
	{"ringmail", "dovecot_lmtp_socket", "/run/ringmail/dovecot/lmtp"},
	{"ringmail", "dovecot_imap_socket", "/run/ringmail/dovecot/imap"},
	{"ringmail", "dovecot_managed", "true"},
	{"ringmail", "dovecot_log", ""},
	{"ringmail", "dovecot_mail_user", ""},
	{"ringmail", "dovecot_imap_port", "10143"},
	{"ringmail", "io_backend", "auto"},
	{"ringmail", "uring_profile", "native"},
	{"ringmail", "tls_ktls", "auto"},
	{"ringmail", "workers", "0"},
	{"ringmail", "pool_threads", "2"},
	{"ringmail", "log_level", "info"},
	{"ringmail", "nocreate_file", "/etc/chatmail-nocreate"},
	{"ringmail", "smtp_timeout", "5m"},
	{"ringmail", "imap_preauth_timeout", "1m"},
	{"ringmail", "smtp_preauth_deadline", "2m"},
	{"ringmail", "imap_preauth_deadline", "2m"},
	{"ringmail", "smtp_max_connections_per_ip", "50"},
	{"ringmail", "imap_max_connections_per_ip", "100"},
	{"ringmail", "drain_timeout", "30s"},
	{"ringmail", "imap_hibernate_timeout", "30s"},
	{"ringmail", "dkim_selector", "opendkim"},
	{"ringmail", "dkim_key_file", "/etc/dkimkeys/opendkim.private"},
	{"ringmail", "dns_server", ""},
	{"ringmail", "tls_trust_file", ""},
	{"ringmail", "push_url", "https://notifications.delta.chat/notify"},
	{"ringmail", "turn_secret_file", ""},
	{"ringmail", "appversions_file", ""},
	{"ringmail", "acme_webroot", "/run/acme/acme-challenge"},
	{"ringmail", "http_header_timeout", "10s"},
	{"ringmail", "http_body_timeout", "30s"},
	{"ringmail", "http_keepalive_timeout", "75s"},
	{"ringmail", "http_new_per_minute", "120"},
	{"ringmail", "http_new_burst", "5"},
};

#define N_SPEC (sizeof(spec_defaults) / sizeof(*spec_defaults))

/* Find @key's printed value in section @sect of @out: "key = v" gives v,
 * "# key (unset...)" gives UNSET; NULL when absent. Static buffer. */
static const char *printed_value(const char *out, const char *sect,
				 const char *key)
{
	static char val[512];
	char hdr[64];
	const char *p, *end;
	size_t kl = strlen(key);

	snprintf(hdr, sizeof(hdr), "\n[%s]\n", sect);
	p = strstr(out, hdr);
	if (p == NULL)
		return NULL;
	p += strlen(hdr);
	end = strstr(p, "\n[");
	if (end == NULL)
		end = p + strlen(p);
	while (p < end) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		if (n >= kl + 3 && strncmp(p, key, kl) == 0 &&
		    strncmp(p + kl, " = ", 3) == 0) {
			snprintf(val, sizeof(val), "%.*s", (int)(n - kl - 3),
				 p + kl + 3);
			return val;
		}
		if (n == kl + 2 && strncmp(p, key, kl) == 0 &&
		    strncmp(p + kl, " =", 2) == 0)
			return "";
		if (strncmp(p, "# ", 2) == 0 && strncmp(p + 2, key, kl) == 0 &&
		    strncmp(p + 2 + kl, " (unset", 7) == 0)
			return UNSET;
		p += n + (nl != NULL);
	}
	return NULL;
}

static void test_defaults_every_key(void **state)
{
	struct config c;
	struct config_error e;
	char *out;
	size_t keys = 0;

	(void)state;
	assert_int_equal(
		load(&c, "[params]\nmail_domain = chat.example.org\n", &e), 0);
	out = print_str(&c);
	for (size_t i = 0; i < N_SPEC; i++) {
		const char *v = printed_value(out, spec_defaults[i].section,
					      spec_defaults[i].key);
		if (v == NULL || strcmp(v, spec_defaults[i].value) != 0)
			fail_msg("[%s] %s: printed \"%s\", spec \"%s\"",
				 spec_defaults[i].section, spec_defaults[i].key,
				 v ? v : "(missing)", spec_defaults[i].value);
	}
	/* ...and nothing is printed that the spec table does not know. */
	for (const char *p = out; *p != '\0';) {
		size_t n = strcspn(p, "\n");

		if (n > 0 && p[0] != '[' &&
		    !(p[0] == '#' && p[1] == ' ' &&
		      strstr(p, "ringmail:") == p + 2))
			keys++;
		p += n + (p[n] == '\n');
	}
	assert_int_equal(keys, N_SPEC);
	free(out);

	/* The typed values others read. */
	assert_string_equal(c.mail_domain, "chat.example.org");
	assert_false(c.is_ip_relay);
	assert_int_equal(c.max_user_send_per_minute, 60);
	assert_int_equal(c.max_user_send_burst_size, 10);
	assert_int_equal(c.max_mailbox_size_mb, 500);
	assert_int_equal(c.max_message_size, 31457280);
	assert_int_equal(c.delete_mails_after, 20);
	assert_int_equal(c.delete_large_after, 7);
	assert_int_equal(c.delete_inactive_users_after, 90);
	assert_int_equal(c.username_min_length, 9);
	assert_int_equal(c.username_max_length, 9);
	assert_int_equal(c.password_min_length, 9);
	assert_int_equal(c.filtermail_smtp_port, 10080);
	assert_int_equal(c.postfix_reinject_port_incoming, 10026);
	assert_false(c.disable_ipv6);
	assert_false(c.imap_rawlog);
	assert_false(c.imap_compress);
	assert_true(c.max_load_1m == 5.0);
	assert_int_equal(c.min_available_memory_mb, 200);
	assert_int_equal(c.min_free_disk_space_mb, 1024);
	assert_int_equal(c.max_imap_connections, 10000);
	assert_int_equal(c.max_smtp_connections, 1000);
	assert_int_equal(c.tls_cert_mode, CONFIG_TLS_ACME);
	assert_false(c.iroh_relay_set);
	assert_string_equal(c.iroh_relay, "https://chat.example.org");
	assert_null(c.mtail_address);
	assert_null(c.privacy_mail);
	assert_null(c.unknown_keys);
	assert_int_equal(c.io_backend, LOOP_BACKEND_AUTO);
	assert_int_equal(c.tls_ktls, TLS_KTLS_AUTO);
	assert_false(c.uring_debian12);
	assert_int_equal(c.log_level, LOG_LV_INFO);
	assert_int_equal(c.workers, 0);
	assert_int_equal(c.pool_threads, 2);
	assert_int_equal(c.smtp_timeout_ms, 300000);
	assert_int_equal(c.imap_preauth_timeout_ms, 60000);
	assert_int_equal(c.drain_timeout_ms, 30000);
	assert_int_equal(c.imap_hibernate_timeout_ms, 30000);
	config_free(&c);
}

/* Writing each default explicitly into the file changes nothing: every
 * key is accepted in its section and parses to its default. */
static void test_every_key_settable(void **state)
{
	struct config c;
	struct config_error e;
	char *ref, *out, text[1024];

	(void)state;
	assert_int_equal(
		load(&c, "[params]\nmail_domain = chat.example.org\n", &e), 0);
	ref = print_str(&c);
	config_free(&c);
	for (size_t i = 1; i < N_SPEC; i++) {
		if (strcmp(spec_defaults[i].value, UNSET) == 0)
			continue;
		snprintf(text, sizeof(text),
			 "[params]\nmail_domain = chat.example.org\n%s"
			 "%s = %s\n",
			 strcmp(spec_defaults[i].section, "ringmail") == 0
				 ? "[ringmail]\n"
				 : "",
			 spec_defaults[i].key, spec_defaults[i].value);
		if (load(&c, text, &e) != 0)
			fail_msg("%s: %s", spec_defaults[i].key, e.msg);
		if (c.unknown_keys != NULL)
			fail_msg("%s: unknown", c.unknown_keys);
		out = print_str(&c);
		if (strcmp(out, ref) != 0)
			fail_msg("setting %s to its default changed the "
				 "output:\n%s",
				 spec_defaults[i].key, out);
		free(out);
		config_free(&c);
	}
	free(ref);
}

static void test_parse_size_mb(void **state)
{
	static const struct {
		const char *in;
		int64_t mb;
	} cases[] = {
		{"1G", 1024},  {"500M", 500}, {"500MB", 500}, {" 2g ", 2048},
		{"100", 100},  {"1gb", 1024}, {"0", 0},       {"10K", -1},
		{"10KB", -1},  {"", -1},      {"M", -1},      {"B", -1},
		{"-5M", -1},   {"5X", -1},    {"1.5G", -1},   {"5 M", -1},
		{"200m", 200}, {"3Gb", 3072}, {"7b", 7},      {"1GG", -1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		if (config_parse_size_mb(cases[i].in) != cases[i].mb)
			fail_msg("parse_size_mb(\"%s\") = %lld, want %lld",
				 cases[i].in,
				 (long long)config_parse_size_mb(cases[i].in),
				 (long long)cases[i].mb);
	}
}

static void test_derived(void **state)
{
	struct config c;
	struct config_error e;

	(void)state;
	assert_int_equal(load(&c, "[params]\nmail_domain = 1.2.3.4\n", &e), 0);
	assert_true(c.is_ip_relay);
	assert_string_equal(c.mail_domain, "[1.2.3.4]");
	assert_string_equal(c.mail_domain_bare, "1.2.3.4");
	assert_int_equal(c.tls_cert_mode, CONFIG_TLS_SELF);
	assert_string_equal(c.tls_cert, "/etc/ssl/certs/mailserver.pem");
	assert_string_equal(c.tls_key, "/etc/ssl/private/mailserver.key");
	assert_string_equal(c.mailboxes_dir, "/home/vmail/mail/1.2.3.4");
	assert_string_equal(c.iroh_relay, "https://1.2.3.4");
	config_free(&c);

	assert_int_equal(load(&c, "[params]\nmail_domain = _x.example\n", &e),
			 0);
	assert_false(c.is_ip_relay);
	assert_string_equal(c.mail_domain, "_x.example");
	assert_int_equal(c.tls_cert_mode, CONFIG_TLS_SELF);
	assert_string_equal(c.tls_cert, "/etc/ssl/certs/mailserver.pem");
	assert_string_equal(c.mailboxes_dir, "/home/vmail/mail/_x.example");
	config_free(&c);

	/* Not a valid IPv4 literal: a (strange) domain, acme. */
	assert_int_equal(load(&c, "[params]\nmail_domain = 1.2.3.400\n", &e),
			 0);
	assert_false(c.is_ip_relay);
	assert_int_equal(c.tls_cert_mode, CONFIG_TLS_ACME);
	config_free(&c);

	assert_int_equal(load(&c,
			      "[params]\nmail_domain = d.org\n"
			      "tls_external_cert_and_key =  /c.pem \t/k.pem \n"
			      "iroh_relay =\n"
			      "disable_ipv6 = TRUE\nimap_compress = yes\n"
			      "mailboxes_dir = /srv/mail\n",
			      &e),
			 0);
	assert_int_equal(c.tls_cert_mode, CONFIG_TLS_EXTERNAL);
	assert_string_equal(c.tls_cert, "/c.pem");
	assert_string_equal(c.tls_key, "/k.pem");
	assert_true(c.iroh_relay_set);
	assert_string_equal(c.iroh_relay, "");
	assert_true(c.disable_ipv6);   /* "true" in any case */
	assert_false(c.imap_compress); /* only "true" is true */
	assert_string_equal(c.mailboxes_dir, "/srv/mail");
	config_free(&c);

	/* An explicit [ringmail] tls_cert wins over the derived one. */
	assert_int_equal(load(&c,
			      "[params]\nmail_domain = d.org\n"
			      "iroh_relay =   https://iroh.d.org  \n"
			      "[ringmail]\ntls_cert = /mine.pem\n"
			      "dovecot_base_dir = /tmp/dc\n",
			      &e),
			 0);
	assert_int_equal(c.tls_cert_mode, CONFIG_TLS_ACME);
	assert_string_equal(c.tls_cert, "/mine.pem");
	assert_string_equal(c.tls_key, "/var/lib/acme/live/d.org/privkey");
	assert_true(c.iroh_relay_set);
	assert_string_equal(c.iroh_relay, "https://iroh.d.org");
	assert_string_equal(c.dovecot_lmtp_socket, "/tmp/dc/lmtp");
	assert_string_equal(c.dovecot_imap_socket, "/tmp/dc/imap");
	config_free(&c);
}

#define TLS_EXT_MSG                                                         \
	"t.ini: tls_external_cert_and_key: tls_external_cert_and_key must " \
	"have two space-separated paths: CERT_PATH KEY_PATH"
#define P "[params]\nmail_domain = d\n"

static void test_errors(void **state)
{
	static const struct {
		const char *text, *msg;
	} cases[] = {
		{"[params]\nmax_user_send_per_minute = 1\n",
		 "t.ini: mail_domain: required"},
		{"[params]\nmail_domain =\n", "t.ini: mail_domain: required"},
		{"mail_domain = x\n", "t.ini:1: key outside of a [section]"},
		{"[params]\nmail_domain = a b\n",
		 "t.ini: mail_domain: not a domain name or IPv4 address"},
		{"[params]\nmail_domain = x/y\n",
		 "t.ini: mail_domain: not a domain name or IPv4 address"},
		{"[ringmail]\nworkers = 2\n", "t.ini: no [params] section"},
		{"", "t.ini: no [params] section"},
		{"[Params]\nmail_domain = d\n", "t.ini: no [params] section"},
		{P "max_mailbox_size = 10K\n",
		 "t.ini:3: max_mailbox_size: invalid size (use e.g. 500M or "
		 "1G)"},
		{P "max_mailbox_size = 0\n",
		 "t.ini:3: max_mailbox_size: 0M out of range 1M..1000000000M"},
		{P "username_min_length = abc\n",
		 "t.ini:3: username_min_length: not an integer"},
		{P "username_min_length = 10\n",
		 "t.ini: username_min_length: greater than "
		 "username_max_length"},
		{P "max_message_size = 1e6\n",
		 "t.ini:3: max_message_size: not an integer"},
		{P "delete_mails_after = -1\n",
		 "t.ini:3: delete_mails_after: -1 out of range 0..36500"},
		{P "filtermail_smtp_port = 70000\n",
		 "t.ini:3: filtermail_smtp_port: 70000 out of range 1..65535"},
		{P "max_load_1m = high\n",
		 "t.ini:3: max_load_1m: not a number"},
		{P "max_load_1m = nan\n", "t.ini:3: max_load_1m: not a number"},
		{P "max_load_1m = -1.5\n",
		 "t.ini:3: max_load_1m: -1.5 out of range 0..1e+06"},
		{P "[ringmail]\nworkers = 999\n",
		 "t.ini:4: workers: 999 out of range 0..256"},
		{P "[ringmail]\nio_backend = kqueue\n",
		 "t.ini:4: io_backend: expected auto, uring or epoll"},
		{P "[ringmail]\ntls_ktls = maybe\n",
		 "t.ini:4: tls_ktls: expected auto, yes or no"},
		{P "[ringmail]\nlog_level = loud\n",
		 "t.ini:4: log_level: expected error, warn, info or debug"},
		{P "[ringmail]\nuring_profile = 6.1\n",
		 "t.ini:4: uring_profile: expected native or debian12"},
		{P "[ringmail]\ndrain_timeout = soon\n",
		 "t.ini:4: drain_timeout: invalid duration (use e.g. 30s, 5m, "
		 "1h)"},
		{P "[ringmail]\nsmtp_timeout = 2h\n",
		 "t.ini:4: smtp_timeout: 7200000ms out of range "
		 "1000ms..3600000ms"},
		{P "[ringmail]\nsmtp_listen = 0.0.0.0:25 localhost:25\n",
		 "t.ini:4: smtp_listen: invalid listen address "
		 "\"localhost:25\" "
		 "(use host:port or [v6]:port)"},
		{P "[ringmail]\nimap_listen = [::1]143\n",
		 "t.ini:4: imap_listen: invalid listen address \"[::1]143\" "
		 "(use host:port or [v6]:port)"},
		{P "[ringmail]\nimap_listen = 1.2.3.4:65536\n",
		 "t.ini:4: imap_listen: invalid listen address "
		 "\"1.2.3.4:65536\" (use host:port or [v6]:port)"},
		{P "mail_domain = e\n",
		 "t.ini:3: mail_domain: duplicate (first set on line 2)"},
		{"[params]\nmail_domain = d\n\nMail_Domain: e\n",
		 "t.ini:4: mail_domain: duplicate (first set on line 2)"},
		{P "foo = 1\nfoo = 2\n", "t.ini:4: foo: duplicate"},
		{P "[ringmail]\n[params]\n", "t.ini:4: duplicate section"},
		{P "just a line\n", "t.ini:3: expected 'key = value'"},
		{P "= value\n", "t.ini:3: empty key name"},
		{"[params]\n  continued\nmail_domain = d\n",
		 "t.ini:2: unexpected value continuation"},
		{P "[ringmail]\n  continued\n",
		 "t.ini:4: unexpected value continuation"},
		{P "[params\n", "t.ini:3: bad section header"},
		{P "[]\n", "t.ini:3: bad section header"},
		{P "[params] junk\n", "t.ini:3: bad section header"},
		{P "max_user_send_per_minute = 60\n  70\n",
		 "t.ini:3: max_user_send_per_minute: not an integer"},
		{P "tls_external_cert_and_key = /a\n", TLS_EXT_MSG},
		{P "tls_external_cert_and_key = /a /b /c\n", TLS_EXT_MSG},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct config c;
		struct config_error e;

		if (load(&c, cases[i].text, &e) != -1)
			fail_msg("case %zu loaded: %s", i, cases[i].text);
		if (strcmp(e.msg, cases[i].msg) != 0)
			fail_msg("case %zu: got \"%s\"\nwant \"%s\"", i, e.msg,
				 cases[i].msg);
		config_free(&c);
	}
}

/* Runs @text through config_load_buffer with stderr captured. */
static char *load_capture_stderr(struct config *c, const char *text, int *rc)
{
	struct config_error e;
	char path[] = "/tmp/ringmail-cfg-stderr-XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	char *buf = calloc(1, 4096);
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0 && buf != NULL);
	fflush(stderr);
	dup2(fd, 2);
	*rc = load(c, text, &e);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	if (*rc != 0)
		print_error("load: %s\n", e.msg);
	n = pread(fd, buf, 4095, 0);
	assert_true(n >= 0);
	close(fd);
	unlink(path);
	return buf;
}

static void test_syntax_and_unknown(void **state)
{
	struct config c;
	static const char text[] =
		"# comment\n"
		"; another\n"
		"[params] # trailing comment on a header\n"
		"  MAIL_DOMAIN : chat.example.org  \r\n"
		"max_user_send_per_minute=80\n"
		"privacy_postal = Line one\n"
		"    line two\n"
		"    # an indented comment is not part of the value\n"
		"\n"
		"\tline: three = 3\n"
		"privacy_mail =\n"
		"    admin@example.org\n"
		"acme_email = a@b.c # not a comment\n"
		"passthrough_senders = x@y\n"
		"   continued unknown value\n"
		"max_load_1m = 0.75\n"
		"\n"
		"[other]\n"
		"mail_domain = ignored.example\n"
		"whatever = 1\n"
		"[ringmail]\n"
		"   Pool_Threads = 3\n"
		"smtp_listen = 127.0.0.1:2525,[::1]:2525\n"
		"submission_listen =\n"
		"\t127.0.0.1:587\n"
		"\t:588 *:589\n"
		"http_listen =\n"
		"log_level = debug\n"
		"bogus_key = 1\n"
		"uring_profile = debian12\n"
		"io_backend = io_uring\n"
		"smtp_timeout = 90\n"
		"drain_timeout = 1.5s\n";
	char *err;
	int rc;

	(void)state;
	err = load_capture_stderr(&c, text, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(c.mail_domain, "chat.example.org");
	assert_int_equal(c.max_user_send_per_minute, 80);
	/* indented with nothing above to continue: a key line */
	assert_int_equal(c.pool_threads, 3);
	assert_string_equal(c.privacy_postal,
			    "Line one\nline two\nline: three = 3");
	assert_string_equal(c.privacy_mail, "admin@example.org");
	assert_string_equal(c.acme_email, "a@b.c # not a comment");
	assert_true(c.max_load_1m == 0.75);
	assert_string_equal(c.smtp_listen, "127.0.0.1:2525 [::1]:2525");
	assert_string_equal(c.submission_listen, "127.0.0.1:587 :588 *:589");
	assert_string_equal(c.http_listen, "");
	assert_int_equal(c.log_level, LOG_LV_DEBUG);
	assert_true(c.uring_debian12);
	assert_int_equal(c.io_backend, LOOP_BACKEND_URING);
	assert_int_equal(c.smtp_timeout_ms, 90000);
	assert_int_equal(c.drain_timeout_ms, 1500);
	/* Removed in chatmail 1.11 and ours-unknown: reported, not fatal;
	 * keys of other sections are not ours to judge. */
	assert_string_equal(c.unknown_keys, "passthrough_senders bogus_key");
	assert_non_null(strstr(err, "WARNING: chatmail.ini contains settings "
				    "that have no effect: passthrough_senders "
				    "bogus_key\n"));
	free(err);
	config_free(&c);

	/* No unknown keys, no warning. */
	err = load_capture_stderr(&c, "[params]\nmail_domain = d\n", &rc);
	assert_int_equal(rc, 0);
	assert_null(strstr(err, "WARNING"));
	free(err);
	config_free(&c);
}

static void test_limits(void **state)
{
	struct config c;
	struct config_error e;
	size_t n = 70000;
	char *text = malloc(2 * 1024 * 1024);
	size_t len;

	(void)state;
	memcpy(text, "[params]\nmail_domain = ", 23);
	memset(text + 23, 'a', n);
	memcpy(text + 23 + n, "\n", 2);
	assert_int_equal(load(&c, text, &e), -1);
	assert_string_equal(e.msg, "t.ini:2: line too long");
	config_free(&c);

	/* 64 KiB exactly is still a line. */
	len = (size_t)snprintf(text, 100, "[params]\nmail_domain = d\n#");
	memset(text + len, 'x', 65535);
	memcpy(text + len + 65535, "\n", 2);
	assert_int_equal(load(&c, text, &e), 0);
	config_free(&c);

	/* A value may take 64 KiB - 128 bytes, so that it prints in a line. */
	len = (size_t)snprintf(text, 100,
			       "[params]\nmail_domain = d\n"
			       "acme_email=");
	memset(text + len, 'x', 65536 - 128);
	memcpy(text + len + 65536 - 128, "\n", 2);
	assert_int_equal(load(&c, text, &e), 0);
	assert_int_equal(strlen(c.acme_email), 65536 - 128);
	config_free(&c);
	memcpy(text + len + 65536 - 128, "x\n", 3);
	assert_int_equal(load(&c, text, &e), -1);
	assert_string_equal(e.msg, "t.ini:3: acme_email: value too long");
	config_free(&c);

	/* Over 1 MiB in total (comment lines). */
	len = (size_t)snprintf(text, 100, "[params]\nmail_domain = d\n");
	while (len <= 1024 * 1024) {
		memset(text + len, '#', 999);
		text[len + 999] = '\n';
		len += 1000;
	}
	config_init_defaults(&c);
	assert_int_equal(config_load_buffer(&c, "t.ini", text, len, &e), -1);
	assert_string_equal(e.msg, "t.ini: file larger than 1 MiB");
	config_free(&c);

	config_init_defaults(&c);
	assert_int_equal(config_load_buffer(&c, "t.ini",
					    "[params]\nmail_domain = d\0x\n",
					    28, &e),
			 -1);
	assert_string_equal(e.msg, "t.ini: file contains a NUL byte");
	config_free(&c);
	free(text);
}

static void assert_round_trip(const char *text)
{
	struct config a, b;
	struct config_error e;
	char *out, *out2;

	if (load(&a, text, &e) != 0)
		fail_msg("load: %s", e.msg);
	out = print_str(&a);
	if (load(&b, out, &e) != 0)
		fail_msg("reload of printed config failed: %s\n%s", e.msg, out);
	out2 = print_str(&b);
	assert_string_equal(out, out2);
	assert_null(b.unknown_keys);
	assert_string_equal(a.mail_domain, b.mail_domain);
	assert_string_equal(a.mail_domain_bare, b.mail_domain_bare);
	assert_int_equal(a.is_ip_relay, b.is_ip_relay);
	assert_int_equal(a.tls_cert_mode, b.tls_cert_mode);
	assert_int_equal(a.iroh_relay_set, b.iroh_relay_set);
	assert_string_equal(a.iroh_relay, b.iroh_relay);
	assert_true(a.max_load_1m == b.max_load_1m);
	assert_int_equal(a.drain_timeout_ms, b.drain_timeout_ms);
	assert_int_equal(a.max_mailbox_size_mb, b.max_mailbox_size_mb);
	config_free(&a);
	config_free(&b);
	free(out);
	free(out2);
}

/* config_print output loads back to the same configuration. */
static void test_round_trip(void **state)
{
	struct config a;
	struct config_error e;
	char *out;

	(void)state;
	assert_round_trip("[params]\nmail_domain = chat.example.org\n");
	assert_round_trip("[params]\nmail_domain = 10.0.0.1\n"
			  "max_mailbox_size = 2G\n[ringmail]\n"
			  "io_backend = epoll\ntls_ktls = no\n"
			  "drain_timeout = 1500ms\nsmtp_timeout = 3600s\n");
	assert_round_trip("[params]\nmail_domain = d.org\n"
			  "tls_external_cert_and_key = /c /k\n"
			  "iroh_relay =\nmtail_address = 127.0.0.1\n"
			  "max_load_1m = 0.1\n"
			  "privacy_postal = A\n  B\n  C\n"
			  "[ringmail]\nhttps_listen =\n"
			  "smtp_listen = [::1]:25\n\t127.0.0.1:25\n"
			  "log_level = err\nimap_hibernate_timeout = 0\n");

	assert_int_equal(load(&a,
			      "[params]\nmail_domain = 10.0.0.1\n"
			      "max_mailbox_size = 2G\n"
			      "[ringmail]\ndrain_timeout = 1500ms\n",
			      &e),
			 0);
	out = print_str(&a);
	assert_non_null(strstr(out, "\nmail_domain = 10.0.0.1\n"));
	assert_non_null(strstr(out, "\nmax_mailbox_size = 2048M\n"));
	assert_non_null(strstr(out, "\ndrain_timeout = 1500ms\n"));
	assert_non_null(strstr(out, "\n# iroh_relay (unset: local relay "
				    "https://10.0.0.1)\n"));
	free(out);
	config_free(&a);
}

static void test_load_file(void **state)
{
	char *dir = testutil_mkdtemp("ringmail-cfg");
	char path[512], want[600];
	struct config c;
	struct config_error e;
	static const char text[] = "[params]\nmail_domain = f.org\n";

	(void)state;
	snprintf(path, sizeof(path), "%s/chatmail.ini", dir);
	assert_int_equal(testutil_write_file(path, text, sizeof(text) - 1), 0);
	config_init_defaults(&c);
	assert_int_equal(config_load(&c, path, &e), 0);
	assert_string_equal(c.mail_domain, "f.org");
	config_free(&c);

	config_init_defaults(&c);
	snprintf(path, sizeof(path), "%s/missing.ini", dir);
	assert_int_equal(config_load(&c, path, &e), -1);
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	assert_string_equal(e.msg, want);
	config_free(&c);

	/* Errors name the file as given. */
	snprintf(path, sizeof(path), "%s/bad.ini", dir);
	assert_int_equal(
		testutil_write_file(path, "[params]\nworkers = 1\n", 21), 0);
	config_init_defaults(&c);
	assert_int_equal(config_load(&c, path, &e), -1);
	snprintf(want, sizeof(want), "%s: mail_domain: required", path);
	assert_string_equal(e.msg, want);
	config_free(&c);
	testutil_rmtree(dir);
	free(dir);
}

static void test_write_default(void **state)
{
	struct config c;
	struct config_error e;
	struct config_local l = {"ringmail.localhost", NULL, 10000,
				 "/tmp/rm run"};
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	f = open_memstream(&out, &len);
	assert_int_equal(config_write_default(f, &l), 0);
	fclose(f);
	assert_int_equal(load(&c, out, &e), 0);
	assert_null(c.unknown_keys);
	assert_string_equal(c.mail_domain, "ringmail.localhost");
	assert_string_equal(c.smtp_listen, "127.0.0.1:10025");
	assert_string_equal(c.submission_listen, "127.0.0.1:10587");
	assert_string_equal(c.submissions_listen, "127.0.0.1:10465");
	assert_string_equal(c.imap_listen, "127.0.0.1:10143");
	assert_string_equal(c.imaps_listen, "127.0.0.1:10993");
	assert_string_equal(c.https_listen, "127.0.0.1:10443");
	assert_string_equal(c.http_listen, "127.0.0.1:10080");
	assert_string_equal(c.mailboxes_dir, "/tmp/rm run/mail");
	assert_string_equal(c.data_dir, "/tmp/rm run/data");
	assert_string_equal(c.tls_cert, "/tmp/rm run/tls.crt");
	assert_string_equal(c.tls_key, "/tmp/rm run/tls.key");
	assert_string_equal(c.nocreate_file, "/tmp/rm run/nocreate");
	assert_string_equal(c.dovecot_lmtp_socket, "/tmp/rm run/dovecot/lmtp");
	config_free(&c);
	free(out);

	l.addr = "::1";
	l.port_offset = 0;
	out = NULL;
	f = open_memstream(&out, &len);
	assert_int_equal(config_write_default(f, &l), 0);
	fclose(f);
	assert_int_equal(load(&c, out, &e), 0);
	assert_string_equal(c.smtp_listen, "[::1]:25");
	config_free(&c);
	free(out);

	out = NULL;
	f = open_memstream(&out, &len);
	l.mail_domain = "a b";
	assert_int_equal(config_write_default(f, &l), -EINVAL);
	l.mail_domain = "ok.example";
	l.run_dir = "/x\ny";
	assert_int_equal(config_write_default(f, &l), -EINVAL);
	l.run_dir = "/x";
	l.port_offset = 65000;
	assert_int_equal(config_write_default(f, &l), -EINVAL);
	l.run_dir = NULL;
	l.port_offset = 0;
	assert_int_equal(config_write_default(f, &l), -EINVAL);
	fclose(f);
	assert_int_equal(len, 0);
	free(out);
}

/* deploy/chatmail.ini.example loads, names every key, and each of its
 * "#key = value" lines, uncommented on its own, states the default. */
static void test_example_file(void **state)
{
	char path[1024], text[2048];
	struct config c;
	struct config_error e;
	char *ex, *ref, *out;
	FILE *f;
	long len;
	size_t defaults = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/deploy/chatmail.ini.example",
		 testutil_srcdir());
	f = fopen(path, "r");
	if (f == NULL)
		fail_msg("%s: cannot open", path);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	ex = malloc((size_t)len + 1);
	assert_int_equal(fread(ex, 1, (size_t)len, f), (size_t)len);
	ex[len] = '\0';
	fclose(f);

	config_init_defaults(&c);
	if (config_load(&c, path, &e) != 0)
		fail_msg("%s", e.msg);
	assert_null(c.unknown_keys);
	assert_string_equal(c.mail_domain, "chat.example.org");
	ref = print_str(&c);
	config_free(&c);

	for (size_t i = 0; i < N_SPEC; i++) {
		char a[128], b[128], d[128];

		snprintf(a, sizeof(a), "\n#%s =", spec_defaults[i].key);
		snprintf(b, sizeof(b), "\n# %s =", spec_defaults[i].key);
		snprintf(d, sizeof(d), "\n%s =", spec_defaults[i].key);
		if (strstr(ex, a) == NULL && strstr(ex, b) == NULL &&
		    strstr(ex, d) == NULL)
			fail_msg("example lacks %s", spec_defaults[i].key);
	}
	for (const char *p = ex, *sect = "params"; *p != '\0';) {
		size_t n = strcspn(p, "\n");

		if (strncmp(p, "[ringmail]", 10) == 0)
			sect = "ringmail";
		if (n > 1 && p[0] == '#' && p[1] != ' ' && p[1] != '#' &&
		    memchr(p, '=', n) != NULL) {
			snprintf(text, sizeof(text),
				 "[params]\nmail_domain = chat.example.org\n"
				 "%s%.*s\n",
				 strcmp(sect, "ringmail") == 0 ? "[ringmail]\n"
							       : "",
				 (int)n - 1, p + 1);
			if (load(&c, text, &e) != 0)
				fail_msg("example line '%.*s': %s", (int)n, p,
					 e.msg);
			assert_null(c.unknown_keys);
			out = print_str(&c);
			if (strcmp(out, ref) != 0)
				fail_msg("example line '%.*s' is not the "
					 "default",
					 (int)n, p);
			free(out);
			config_free(&c);
			defaults++;
		}
		p += n + (p[n] == '\n');
	}
	/* all but mail_domain and the unset-by-default ones */
	assert_int_equal(defaults, N_SPEC - 1 - 6);
	free(ref);
	free(ex);
}

/* Runs the ringmail binary (RINGMAIL_BIN, set by ctest). */
static int run_bin(const char *args, char *out, size_t out_len)
{
	const char *bin = getenv("RINGMAIL_BIN");
	char cmd[1024];
	FILE *p;
	size_t n;
	int st;

	snprintf(cmd, sizeof(cmd), "%s %s 2>&1", bin, args);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, out_len - 1, p);
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cmd_config(void **state)
{
	char *dir, good[512], bad[512], args[1200];
	char *out = malloc(65536);
	static const char g[] = "[params]\nmail_domain = cmd.example\n";
	static const char b[] = "[params]\nmail_domain = cmd.example\n"
				"[ringmail]\nworkers = many\n";

	(void)state;
	if (getenv("RINGMAIL_BIN") == NULL ||
	    access(getenv("RINGMAIL_BIN"), X_OK) != 0) {
		free(out);
		skip();
	}
	dir = testutil_mkdtemp("ringmail-cfgcmd");
	snprintf(good, sizeof(good), "%s/good.ini", dir);
	snprintf(bad, sizeof(bad), "%s/bad.ini", dir);
	assert_int_equal(testutil_write_file(good, g, sizeof(g) - 1), 0);
	assert_int_equal(testutil_write_file(bad, b, sizeof(b) - 1), 0);

	snprintf(args, sizeof(args), "config --config '%s'", good);
	assert_int_equal(run_bin(args, out, 65536), 0);
	assert_non_null(strstr(out, "\nmail_domain = cmd.example\n"));
	assert_non_null(strstr(out, "\nmax_mailbox_size = 500M\n"));
	assert_non_null(strstr(out, "\n[ringmail]\n"));
	assert_non_null(strstr(out, "\ndrain_timeout = 30s\n"));

	snprintf(args, sizeof(args), "config --check '%s'", good);
	assert_int_equal(run_bin(args, out, 65536), 0);
	assert_string_equal(out, "");

	snprintf(args, sizeof(args), "config --check '%s'", bad);
	assert_int_equal(run_bin(args, out, 65536), 1);
	snprintf(args, sizeof(args),
		 "ringmail: %s:4: workers: not an integer\n", bad);
	assert_string_equal(out, args);

	snprintf(args, sizeof(args), "config --config '%s/none.ini'", dir);
	assert_int_equal(run_bin(args, out, 65536), 1);
	assert_non_null(strstr(out, "none.ini: No such file or directory"));

	assert_int_equal(run_bin("config --bogus", out, 65536), 2);
	testutil_rmtree(dir);
	free(dir);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_every_key),
		cmocka_unit_test(test_every_key_settable),
		cmocka_unit_test(test_parse_size_mb),
		cmocka_unit_test(test_derived),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_syntax_and_unknown),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_write_default),
		cmocka_unit_test(test_example_file),
		cmocka_unit_test(test_cmd_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
