/* tests/unit/test_config: chatmail.ini defaults (spec section B), derived
 * values, parse_size_mb, exact error texts, unknown keys, ini syntax, and
 * the print -> load round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/config.h"
#include "testutil.h"

static int load(struct config *cfg, const char *text, struct config_error *e)
{
	config_init_defaults(cfg);
	return config_load_buffer(cfg, "t.ini", text, strlen(text), e);
}

static void test_defaults(void **state)
{
	struct config c;
	struct config_error e;

	(void)state;
	assert_int_equal(
		load(&c, "[params]\nmail_domain = chat.example.org\n", &e), 0);
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
	assert_int_equal(c.filtermail_smtp_port_incoming, 10081);
	assert_int_equal(c.filtermail_http_port_incoming, 10082);
	assert_int_equal(c.filtermail_lmtp_port_transport, 10083);
	assert_int_equal(c.postfix_reinject_port, 10025);
	assert_int_equal(c.postfix_reinject_port_incoming, 10026);
	assert_false(c.disable_ipv6);
	assert_false(c.imap_rawlog);
	assert_false(c.imap_compress);
	assert_string_equal(c.turn_socket_path,
			    "/run/chatmail-turn/turn.socket");
	assert_true(c.max_load_1m == 5.0);
	assert_int_equal(c.min_available_memory_mb, 200);
	assert_int_equal(c.min_free_disk_space_mb, 1024);
	assert_int_equal(c.max_imap_connections, 10000);
	assert_int_equal(c.max_smtp_connections, 1000);
	assert_string_equal(c.mailboxes_dir,
			    "/home/vmail/mail/chat.example.org");
	assert_string_equal(c.passdb_path, "/home/vmail/passdb.sqlite");
	assert_int_equal(c.tls_cert_mode, CONFIG_TLS_ACME);
	assert_string_equal(c.tls_cert,
			    "/var/lib/acme/live/chat.example.org/fullchain");
	assert_string_equal(c.tls_key,
			    "/var/lib/acme/live/chat.example.org/privkey");
	assert_false(c.iroh_relay_set);
	assert_string_equal(c.iroh_relay, "https://chat.example.org");
	assert_null(c.mtail_address);
	assert_null(c.unknown_keys);
	/* ringmail's own */
	assert_int_equal(c.io_backend, LOOP_BACKEND_AUTO);
	assert_int_equal(c.tls_ktls, TLS_KTLS_AUTO);
	assert_false(c.uring_debian12);
	assert_int_equal(c.workers, 0);
	assert_int_equal(c.smtp_timeout_ms, 300000);
	assert_int_equal(c.drain_timeout_ms, 30000);
	assert_string_equal(c.nocreate_file, "/etc/chatmail-nocreate");
	assert_string_equal(c.dkim_selector, "opendkim");
	assert_string_equal(c.dkim_key_file, "/etc/dkimkeys/opendkim.private");
	assert_string_equal(c.smtp_listen, "0.0.0.0:25 [::]:25");
	assert_string_equal(c.dovecot_lmtp_socket,
			    "/run/ringmail/dovecot/lmtp");
	config_free(&c);
}

static void test_parse_size_mb(void **state)
{
	static const struct {
		const char *in;
		int64_t mb;
	} cases[] = {
		{"1G", 1024}, {"500M", 500}, {"500MB", 500}, {" 2g ", 2048},
		{"100", 100}, {"1gb", 1024}, {"0", 0},       {"10K", -1},
		{"", -1},     {"M", -1},     {"-5M", -1},    {"5X", -1},
		{"1.5G", -1},
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
	assert_string_equal(c.mailboxes_dir, "/home/vmail/mail/1.2.3.4");
	config_free(&c);

	assert_int_equal(load(&c, "[params]\nmail_domain = _x.example\n", &e),
			 0);
	assert_int_equal(c.tls_cert_mode, CONFIG_TLS_SELF);
	config_free(&c);

	assert_int_equal(load(&c,
			      "[params]\nmail_domain = d.org\n"
			      "tls_external_cert_and_key = /c.pem /k.pem\n"
			      "iroh_relay =\n",
			      &e),
			 0);
	assert_int_equal(c.tls_cert_mode, CONFIG_TLS_EXTERNAL);
	assert_string_equal(c.tls_cert, "/c.pem");
	assert_string_equal(c.tls_key, "/k.pem");
	assert_true(c.iroh_relay_set);
	assert_string_equal(c.iroh_relay, "");
	config_free(&c);
}

static void test_errors(void **state)
{
	static const struct {
		const char *text, *msg;
	} cases[] = {
		{"[params]\nmax_user_send_per_minute = 1\n",
		 "t.ini: mail_domain: required"},
		{"mail_domain = x\n", "t.ini:1: key outside of a [section]"},
		{"[params]\nmail_domain = a b\n",
		 "t.ini: mail_domain: not a domain name or IPv4 address"},
		{"[params]\nmail_domain = x/y\n",
		 "t.ini: mail_domain: not a domain name or IPv4 address"},
		{"[ringmail]\nworkers = 2\n", "t.ini: no [params] section"},
		{"[params]\nmail_domain = d\nmax_mailbox_size = 10K\n",
		 "t.ini:3: max_mailbox_size: invalid size (use e.g. 500M or "
		 "1G)"},
		{"[params]\nmail_domain = d\nusername_min_length = abc\n",
		 "t.ini:3: username_min_length: not an integer"},
		{"[params]\nmail_domain = d\n[ringmail]\nworkers = 999\n",
		 "t.ini:4: workers: 999 out of range 0..256"},
		{"[params]\nmail_domain = d\n[ringmail]\nio_backend = kqueue\n",
		 "t.ini:4: io_backend: expected auto, uring or epoll"},
		{"[params]\nmail_domain = d\n[ringmail]\ntls_ktls = maybe\n",
		 "t.ini:4: tls_ktls: expected auto, yes or no"},
		{"[params]\nmail_domain = d\n[ringmail]\ndrain_timeout = "
		 "soon\n",
		 "t.ini:4: drain_timeout: invalid duration (use e.g. 30s, 5m, "
		 "1h)"},
		{"[params]\nmail_domain = d\nmail_domain = e\n",
		 "t.ini:3: mail_domain: duplicate (first set on line 2)"},
		{"[params]\nmail_domain = d\njust a line\n",
		 "t.ini:3: expected 'key = value'"},
		{"[params]\nmail_domain = d\ntls_external_cert_and_key = /a\n",
		 "t.ini: tls_external_cert_and_key: tls_external_cert_and_key "
		 "must have two space-separated paths: CERT_PATH KEY_PATH"},
		{"[params]\nmail_domain = d\ntls_external_cert_and_key = /a /b "
		 "/c\n",
		 "t.ini: tls_external_cert_and_key: tls_external_cert_and_key "
		 "must have two space-separated paths: CERT_PATH KEY_PATH"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct config c;
		struct config_error e;

		memset(&e, 0, sizeof(e));
		assert_int_equal(load(&c, cases[i].text, &e), -1);
		assert_string_equal(e.msg, cases[i].msg);
		config_free(&c);
	}
}

static void test_syntax_and_unknown(void **state)
{
	struct config c;
	struct config_error e;
	static const char text[] = "# comment\n"
				   "; another\n"
				   "[params]\n"
				   "  MAIL_DOMAIN : chat.example.org  \n"
				   "max_user_send_per_minute=80\n"
				   "privacy_postal = Line one\n"
				   "    line two\n"
				   "passthrough_senders = x@y\n"
				   "\n"
				   "[ringmail]\n"
				   "smtp_listen = 127.0.0.1:2525\n"
				   "log_level = debug\n"
				   "bogus_key = 1\n"
				   "uring_profile = debian12\n"
				   "smtp_timeout = 5m\n";

	(void)state;
	assert_int_equal(load(&c, text, &e), 0);
	assert_string_equal(c.mail_domain, "chat.example.org");
	assert_int_equal(c.max_user_send_per_minute, 80);
	assert_string_equal(c.privacy_postal, "Line one\nline two");
	assert_string_equal(c.smtp_listen, "127.0.0.1:2525");
	assert_int_equal(c.log_level, LOG_LV_DEBUG);
	assert_true(c.uring_debian12);
	assert_int_equal(c.smtp_timeout_ms, 300000);
	/* Removed in chatmail 1.11 and ours-unknown: reported, not fatal. */
	assert_string_equal(c.unknown_keys, "passthrough_senders bogus_key");
	config_free(&c);
}

static void test_line_too_long(void **state)
{
	struct config c;
	struct config_error e;
	size_t n = 70000;
	char *text = malloc(n + 64);

	(void)state;
	memcpy(text, "[params]\nmail_domain = ", 23);
	memset(text + 23, 'a', n);
	memcpy(text + 23 + n, "\n", 2);
	assert_int_equal(load(&c, text, &e), -1);
	assert_string_equal(e.msg, "t.ini:2: line too long");
	config_free(&c);
	free(text);
}

/* config_print output loads back to the same configuration. */
static void test_round_trip(void **state)
{
	struct config a, b;
	struct config_error e;
	char *out = NULL, *out2 = NULL;
	size_t len = 0, len2 = 0;
	FILE *f;

	(void)state;
	assert_int_equal(load(&a,
			      "[params]\nmail_domain = 10.0.0.1\n"
			      "max_mailbox_size = 2G\n[ringmail]\n"
			      "io_backend = epoll\ntls_ktls = no\n"
			      "drain_timeout = 1500ms\n",
			      &e),
			 0);
	f = open_memstream(&out, &len);
	config_print(&a, f);
	fclose(f);
	assert_non_null(strstr(out, "max_mailbox_size = 2048M\n"));
	assert_non_null(strstr(out, "io_backend = epoll\n"));
	if (load(&b, out, &e) != 0)
		fail_msg("reload of printed config failed: %s", e.msg);
	f = open_memstream(&out2, &len2);
	config_print(&b, f);
	fclose(f);
	assert_string_equal(out, out2);
	assert_string_equal(b.mail_domain, "[10.0.0.1]");
	assert_int_equal(b.drain_timeout_ms, 1500);
	assert_int_equal(b.tls_ktls, TLS_KTLS_NO);
	config_free(&a);
	config_free(&b);
	free(out);
	free(out2);
}

static void test_load_file(void **state)
{
	char *dir = testutil_mkdtemp("ringmail-cfg");
	char path[512];
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
	assert_non_null(strstr(e.msg, "missing.ini: No such file"));
	config_free(&c);
	testutil_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_parse_size_mb),
		cmocka_unit_test(test_derived),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_syntax_and_unknown),
		cmocka_unit_test(test_line_too_long),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_load_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
