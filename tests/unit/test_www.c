/* tests/unit/test_www: the site's handler called directly (no network):
 * every route and status, www. redirect, port 80's ACME files and
 * redirects, /new in both modes with chatmail's generation rules, JSON
 * and dclogin: encoding as chatmail's tests have them, the per-address
 * limit (burst, then again after a quiet spell), gzip, the QR PNG. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "core/log.h"
#include "testutil.h"
#include "www/www_new.h"
#include "www/www_qr.h"
#include "www/www_site.h"

static struct www_site_opts opts(const char *webroot)
{
	return (struct www_site_opts){
		.mail_domain = "example.org",
		.mail_domain_bare = "example.org",
		.max_user_send_per_minute = 60,
		.max_mailbox_size_mb = 500,
		.delete_mails_after = 20,
		.delete_inactive_users_after = 90,
		.username_min_length = 9,
		.username_max_length = 9,
		.password_min_length = 9,
		.privacy_mail = "privacy@example.org",
		.privacy_postal = "Some Street 1_*, Town",
		.acme_webroot = webroot,
	};
}

struct call {
	struct http_resp resp;
	struct buf out;
	struct http_field f[4];
};

static const char *field(const struct http_resp *r, const char *name)
{
	for (unsigned i = 0; i < r->n_fields; i++) {
		if (strcmp(r->fields[i].name, name) == 0)
			return r->fields[i].value;
	}
	return NULL;
}

/* Call the handler for @method @target with Host @host. */
static void call(struct www_site *s, struct call *c, const char *method,
		 const char *target, const char *host, bool tls,
		 const char *accept_enc, uint64_t now_ms)
{
	const struct http_handler *h = www_site_handler(s);
	struct http_req req = {
		.method_name = method,
		.target = target,
		.path_len = strcspn(target, "?"),
		.host = host,
		.fields = c->f,
		.version = 11,
		.tls = tls,
		.peer_ip = "192.0.2.1",
		.now_ms = now_ms,
	};

	req.method = http_req_method_parse(method, strlen(method));
	if (accept_enc != NULL) {
		c->f[0] = (struct http_field){"accept-encoding", 15, accept_enc,
					      strlen(accept_enc)};
		req.n_fields = 1;
	}
	buf_init(&c->out, 0);
	memset(&c->resp, 0, sizeof(c->resp));
	c->resp.out = &c->out;
	c->resp.status = 500;
	h->handle(h->arg, &req, &c->resp);
}

static const char *body(struct call *c, size_t *len)
{
	if (c->resp.body != NULL) {
		*len = c->resp.body_len;
		return c->resp.body;
	}
	*len = c->out.len;
	return (const char *)buf_head(&c->out);
}

static bool body_has(struct call *c, const char *needle)
{
	size_t n;
	const char *b = body(c, &n);

	return memmem(b, n, needle, strlen(needle)) != NULL;
}

static void test_pages(void **state)
{
	struct www_site_opts o = opts("/nonexistent");
	struct www_site *s;
	struct call c;

	(void)state;
	assert_int_equal(www_site_new(&o, &s), 0);
	call(s, &c, "GET", "/", "example.org", true, NULL, 0);
	assert_int_equal(c.resp.status, 200);
	assert_string_equal(c.resp.content_type, "text/html; charset=utf-8");
	assert_true(body_has(&c, "<title>example.org chatmail relay</title>"));
	assert_true(body_has(&c, "<img src=\"/qr-chatmail-invite-example.org"
				 ".png\""));
	assert_true(body_has(&c, "DCACCOUNT:https://example.org/new"));
	assert_true(body_has(&c, "up to 60 messages a minute"));
	assert_true(body_has(&c, "500 MB"));
	assert_true(body_has(&c, "after 20 days"));
	assert_false(body_has(&c, "{{"));
	assert_true(c.resp.vary_encoding);
	assert_null(c.resp.content_encoding);
	buf_free(&c.out);
	/* gzip where asked for, and it inflates to the page. */
	{
		struct call g;
		size_t n, zn;
		const char *pz, *p;
		uint8_t plain[65536];
		uLongf pl = sizeof(plain);
		z_stream z;

		call(s, &c, "GET", "/index.html", "example.org", true, NULL, 0);
		call(s, &g, "GET", "/", "example.org", true, "br, gzip", 0);
		assert_string_equal(g.resp.content_encoding, "gzip");
		p = body(&c, &n);
		pz = body(&g, &zn);
		assert_true(zn < n);
		memset(&z, 0, sizeof(z));
		assert_int_equal(inflateInit2(&z, 31), Z_OK);
		z.next_in = (Bytef *)pz;
		z.avail_in = (uInt)zn;
		z.next_out = plain;
		z.avail_out = (uInt)pl;
		assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
		assert_int_equal(z.total_out, n);
		assert_memory_equal(plain, p, n);
		inflateEnd(&z);
		buf_free(&g.out);
		buf_free(&c.out);
	}
	call(s, &c, "GET", "/privacy.html", "example.org", true, NULL, 0);
	assert_int_equal(c.resp.status, 200);
	assert_true(body_has(&c, "privacy@example.org"));
	/* A value with markdown syntax stays literal text. */
	assert_true(body_has(&c, "Some Street 1_*, Town"));
	buf_free(&c.out);
	call(s, &c, "GET", "/info.html", "example.org", true, NULL, 0);
	assert_int_equal(c.resp.status, 200);
	assert_true(body_has(&c, "9 to\n9 lower-case"));
	buf_free(&c.out);
	call(s, &c, "GET", "/robots.txt", "example.org", true, NULL, 0);
	assert_int_equal(c.resp.status, 200);
	assert_true(body_has(&c, "User-agent: *\nDisallow: /\n"));
	buf_free(&c.out);
	call(s, &c, "GET", "/main.css", "example.org", true, NULL, 0);
	assert_string_equal(c.resp.content_type, "text/css");
	buf_free(&c.out);
	call(s, &c, "GET", "/nope", "example.org", true, NULL, 0);
	assert_int_equal(c.resp.status, 404);
	buf_free(&c.out);
	call(s, &c, "POST", "/", "example.org", true, NULL, 0);
	assert_int_equal(c.resp.status, 405);
	assert_string_equal(field(&c.resp, "Allow"), "GET, HEAD");
	buf_free(&c.out);
	/* www. goes to the bare domain, keeping the target. */
	call(s, &c, "GET", "/info.html?a=1", "www.example.org", true, NULL, 0);
	assert_int_equal(c.resp.status, 301);
	assert_string_equal(field(&c.resp, "Location"),
			    "https://example.org/info.html?a=1");
	buf_free(&c.out);
	/* spec I.3 and I.4 */
	for (int i = 0; i < 2; i++) {
		call(s, &c, "GET",
		     i == 0 ? "/.well-known/autoconfig/mail/config-v1.1.xml"
			    : "/mail/config-v1.1.xml",
		     "example.org", true, NULL, 0);
		assert_int_equal(c.resp.status, 200);
		assert_true(body_has(&c, "<clientConfig version=\"1.1\">"));
		assert_true(body_has(&c, "<displayName>example.org chatmail"
					 "</displayName>"));
		assert_true(body_has(&c, "<port>443</port>\n      <socketType>"
					 "SSL</socketType>"));
		assert_true(body_has(&c, "%EMAILADDRESS%"));
		buf_free(&c.out);
	}
	call(s, &c, "GET", "/.well-known/mta-sts.txt", "mta-sts.example.org",
	     true, NULL, 0);
	assert_int_equal(c.resp.status, 200);
	assert_true(body_has(&c, "version: STSv1\nmode: enforce\nmx: "
				 "example.org\nmax_age: 2419200\n"));
	buf_free(&c.out);
	call(s, &c, "GET", "/qr-chatmail-invite-example.org.png", "example.org",
	     true, NULL, 0);
	assert_int_equal(c.resp.status, 200);
	assert_string_equal(c.resp.content_type, "image/png");
	assert_true(body_has(&c, "\x89PNG\r\n\x1a\n"));
	buf_free(&c.out);
	www_site_free(&s);
}

static void test_port80(void **state)
{
	char *dir = testutil_mkdtemp("www-acme");
	char path[512];
	struct www_site_opts o = opts(dir);
	struct www_site *s;
	struct call c;
	size_t n;

	(void)state;
	snprintf(path, sizeof(path), "%s/tok-EN_123", dir);
	assert_int_equal(testutil_write_file(path, "tok-EN_123.keyauth", 18),
			 0);
	assert_int_equal(www_site_new(&o, &s), 0);
	call(s, &c, "GET", "/.well-known/acme-challenge/tok-EN_123",
	     "example.org", false, NULL, 0);
	assert_int_equal(c.resp.status, 200);
	assert_memory_equal(body(&c, &n), "tok-EN_123.keyauth", 18);
	assert_int_equal(n, 18);
	buf_free(&c.out);
	/* Only token characters: no way out of the webroot. */
	call(s, &c, "GET", "/.well-known/acme-challenge/..%2Fetc", "x", false,
	     NULL, 0);
	assert_int_equal(c.resp.status, 404);
	buf_free(&c.out);
	call(s, &c, "GET", "/.well-known/acme-challenge/../../etc/passwd", "x",
	     false, NULL, 0);
	assert_int_equal(c.resp.status, 404);
	buf_free(&c.out);
	call(s, &c, "GET", "/.well-known/acme-challenge/missing", "x", false,
	     NULL, 0);
	assert_int_equal(c.resp.status, 404);
	buf_free(&c.out);
	/* Everything else: to https on the host asked for. */
	call(s, &c, "GET", "/new?x=1", "mta-sts.example.org", false, NULL, 0);
	assert_int_equal(c.resp.status, 301);
	assert_string_equal(field(&c.resp, "Location"),
			    "https://mta-sts.example.org/new?x=1");
	buf_free(&c.out);
	call(s, &c, "GET", "/", "evil\"host", false, NULL, 0);
	assert_string_equal(field(&c.resp, "Location"), "https://example.org/");
	buf_free(&c.out);
	www_site_free(&s);
	testutil_rmtree(dir);
	free(dir);
}

static void check_creds(const char *json, bool dclogin)
{
	const char *e = strstr(json, "{\"email\": \"");
	const char *at, *pw;

	assert_non_null(e);
	e += 11;
	at = strchr(e, '@');
	assert_non_null(at);
	assert_int_equal(at - e, 9);
	for (const char *p = e; p < at; p++)
		assert_non_null(
			strchr("abcdefghijklmnopqrstuvwxyz0123456789", *p));
	assert_memory_equal(at, "@example.org\", \"password\": \"", 28);
	pw = at + 28;
	/* 12 characters, JSON-escaped where needed. */
	{
		size_t k = 0;
		const char *p = pw;

		while (*p != '"') {
			p += *p == '\\' ? 2 : 1;
			k++;
		}
		assert_int_equal(k, 12);
		assert_string_equal(p, dclogin ? p : "\"}");
		if (dclogin)
			assert_memory_equal(
				p, "\", \"dclogin_url\": \"dclogin:", 27);
	}
}

static void test_new(void **state)
{
	struct www_site_opts o = opts("/nonexistent");
	struct www_site *s;
	struct call c;
	char seen[3][64];

	(void)state;
	assert_int_equal(www_site_new(&o, &s), 0);
	call(s, &c, "GET", "/new", "example.org", true, NULL, 0);
	assert_int_equal(c.resp.status, 301);
	assert_string_equal(field(&c.resp, "Location"),
			    "dcaccount:https://example.org/new");
	buf_free(&c.out);
	for (int i = 0; i < 3; i++) {
		call(s, &c, "POST", i == 1 ? "/cgi-bin/newemail.py" : "/new",
		     "example.org", true, NULL, 1000);
		assert_int_equal(c.resp.status, 200);
		assert_string_equal(c.resp.content_type, "application/json");
		assert_true(buf_append(&c.out, "", 1) == 0);
		check_creds((const char *)buf_head(&c.out), false);
		snprintf(seen[i], sizeof(seen[i]), "%s",
			 (const char *)buf_head(&c.out));
		buf_free(&c.out);
	}
	assert_string_not_equal(seen[0], seen[1]);
	assert_string_not_equal(seen[1], seen[2]);
	/* 2 r/s, burst 5: two more pass, the next is refused ... */
	for (int i = 0; i < 3; i++) {
		call(s, &c, "POST", "/new", "example.org", true, NULL, 1000);
		assert_int_equal(c.resp.status, i < 2 ? 200 : 503);
		buf_free(&c.out);
	}
	/* ... and after a quiet spell the address may ask again. */
	call(s, &c, "POST", "/new", "example.org", true, NULL, 1000 + 600);
	assert_int_equal(c.resp.status, 200);
	buf_free(&c.out);
	call(s, &c, "POST", "/new", "example.org", true, NULL, 1000 + 600);
	assert_int_equal(c.resp.status, 503);
	buf_free(&c.out);
	www_site_free(&s);

	/* Self mode: every method gets the JSON with dclogin_url, and the
	 * home page carries a dclogin: QR (SVG) made per request. */
	o.self_signed = true;
	assert_int_equal(www_site_new(&o, &s), 0);
	call(s, &c, "GET", "/new", "example.org", true, NULL, 0);
	assert_int_equal(c.resp.status, 200);
	assert_true(buf_append(&c.out, "", 1) == 0);
	check_creds((const char *)buf_head(&c.out), true);
	assert_non_null(strstr((const char *)buf_head(&c.out), "&v=1&ic=3\"}"));
	buf_free(&c.out);
	call(s, &c, "GET", "/", "example.org", true, NULL, 0);
	assert_int_equal(c.resp.status, 200);
	assert_true(body_has(&c, "<a href=\"dclogin:"));
	assert_true(body_has(&c, "<svg xmlns"));
	assert_false(body_has(&c, "{{invite}}"));
	buf_free(&c.out);
	www_site_free(&s);
}

/* chatmail's test_newmail: quoting of the dclogin: URL. */
static void test_dclogin_encoding(void **state)
{
	struct www_new_cfg cfg = {.mail_domain = "example.org",
				  .mail_domain_bare = "example.org",
				  .self_signed = true};
	struct www_new_creds cr;
	struct buf b;

	(void)state;
	buf_init(&b, 0);
	snprintf(cr.email, sizeof(cr.email), "user@example.org");
	snprintf(cr.password, sizeof(cr.password), "p@ss w+rd/\"\\~");
	assert_int_equal(www_new_dclogin(&cfg, &cr, &b), 0);
	assert_int_equal(buf_append(&b, "", 1), 0);
	assert_string_equal(
		(char *)buf_head(&b),
		"dclogin:user@example.org?p=p%40ss%20w%2Brd%2F%22%5C~"
		"&v=1&ic=3");
	buf_clear(&b);
	assert_int_equal(www_new_json(&cfg, &cr, &b), 0);
	assert_int_equal(buf_append(&b, "", 1), 0);
	assert_string_equal(
		(char *)buf_head(&b),
		"{\"email\": \"user@example.org\", \"password\": \"p@ss w+rd/"
		"\\\"\\\\~\", \"dclogin_url\": \"dclogin:user@example.org?p="
		"p%40ss%20w%2Brd%2F%22%5C~&v=1&ic=3\"}");
	/* An IP relay: the brackets stay, ih/sh carry the address. */
	cfg = (struct www_new_cfg){.mail_domain = "[1.3.3.7]",
				   .mail_domain_bare = "1.3.3.7",
				   .is_ip_relay = true,
				   .self_signed = true};
	snprintf(cr.email, sizeof(cr.email), "abc@[1.3.3.7]");
	snprintf(cr.password, sizeof(cr.password), "x");
	buf_clear(&b);
	assert_int_equal(www_new_dclogin(&cfg, &cr, &b), 0);
	assert_int_equal(buf_append(&b, "", 1), 0);
	assert_string_equal(
		(char *)buf_head(&b),
		"dclogin:abc@[1.3.3.7]?p=x&v=1&ih=1.3.3.7&sh=1.3.3.7"
		"&ic=3");
	/* Generated: the alphabets and lengths of newemail.py. */
	cfg.username_len = 9;
	cfg.password_len = 12;
	assert_int_equal(www_new_creds(&cfg, &cr), 0);
	assert_int_equal(strlen(cr.email), 9 + strlen("@[1.3.3.7]"));
	assert_int_equal(strlen(cr.password), 12);
	buf_free(&b);
}

static void test_qr_png(void **state)
{
	uint8_t *png;
	size_t n;

	(void)state;
	assert_int_equal(
		www_qr_png("DCACCOUNT:https://example.org/new", 8, &png, &n),
		0);
	assert_true(n > 100);
	assert_memory_equal(png, "\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16);
	/* width = (modules + 8) * 8, a multiple of 8 */
	assert_int_equal(
		((png[16] << 24 | png[17] << 16 | png[18] << 8 | png[19]) % 8),
		0);
	free(png);
	assert_int_equal(www_qr_png("x", 0, &png, &n), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pages),
		cmocka_unit_test(test_port80),
		cmocka_unit_test(test_new),
		cmocka_unit_test(test_dclogin_encoding),
		cmocka_unit_test(test_qr_png),
	};

	log_set_level(LOG_LV_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
