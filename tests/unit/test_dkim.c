/* tests/unit/test_dkim: filter/dkim in process (no DNS: the key records
 * are handed in as dkim_check would): sign then verify, fed whole, one
 * octet at a time and in odd chunks; the verdicts (aligned, another
 * domain, subdomain, body and header changed, wrong key, missing and
 * revoked key, temporary failure, no signature); the key cache (TTL,
 * LRU, drop); TXT record selection; the zone line; core/dns_parse on
 * hand-built responses, whole and cut at every length. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "core/dns.h"
#include "core/dns_parse.h"
#include "filter/dkim.h"
#include "core/loop.h"
#include "core/pool.h"
#include "filter/dkim_cache.h"
#include "filter/dkim_check.h"
#include "filter/dkim_key.h"
#include "testutil.h"

static const char test_msg[] =
	"From: Alice <alice@peer.test>\r\n"
	"To: <bob@example.org>\r\n"
	"Subject: [...]\r\n"
	"Date: Tue, 01 Dec 2026 21:00:00 +0000\r\n"
	"Autocrypt: addr=alice@peer.test; keydata=QUJDRA==\r\n"
	"Content-Type: text/plain\r\n"
	"\r\n"
	"hello\r\n"
	"  world  \r\n";

struct fixture {
	char *dir;
	char key_a[512], key_b[512];
	char rec_a[2048], rec_b[2048];
	struct dkim_ctx *ctx;
	struct dkim_signer *sa, *sb, *sub;
};

static struct fixture fx;

static int setup(void **state)
{
	(void)state;
	fx.dir = testutil_mkdtemp("ringmail-dkim");
	snprintf(fx.key_a, sizeof(fx.key_a), "%s/a.private", fx.dir);
	snprintf(fx.key_b, sizeof(fx.key_b), "%s/b.private", fx.dir);
	if (dkim_keygen(fx.key_a, 2048, false) < 0 ||
	    dkim_keygen(fx.key_b, 1024, false) < 0)
		return -1;
	if (dkim_record_value(fx.key_a, fx.rec_a, sizeof(fx.rec_a)) < 0 ||
	    dkim_record_value(fx.key_b, fx.rec_b, sizeof(fx.rec_b)) < 0)
		return -1;
	if (dkim_ctx_new(&fx.ctx) < 0)
		return -1;
	if (dkim_signer_load(fx.ctx, "peer.test", "sel", fx.key_a, &fx.sa) <
		    0 ||
	    dkim_signer_load(fx.ctx, "other.test", "sel", fx.key_b, &fx.sb) <
		    0 ||
	    dkim_signer_load(fx.ctx, "sub.peer.test", "sel", fx.key_a,
			     &fx.sub) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	dkim_signer_free(&fx.sa);
	dkim_signer_free(&fx.sb);
	dkim_signer_free(&fx.sub);
	dkim_ctx_free(&fx.ctx);
	testutil_rmtree(fx.dir);
	free(fx.dir);
	return 0;
}

/* @msg signed by @s (prepended); malloc'd. */
static char *sign(const struct dkim_signer *s, const char *msg)
{
	char *hdr, *out;
	size_t hl, ml = strlen(msg);

	assert_int_equal(
		dkim_signer_sign(s, (const uint8_t *)msg, ml, &hdr, &hl), 0);
	out = malloc(hl + ml + 1);
	assert_non_null(out);
	memcpy(out, hdr, hl);
	memcpy(out + hl, msg, ml + 1);
	free(hdr);
	return out;
}

static char *replace(const char *msg, const char *from, const char *to)
{
	const char *p = strstr(msg, from);
	size_t fl = strlen(from), tl = strlen(to), ml = strlen(msg);
	char *out;

	assert_non_null(p);
	out = malloc(ml - fl + tl + 1);
	memcpy(out, msg, (size_t)(p - msg));
	memcpy(out + (p - msg), to, tl);
	memcpy(out + (p - msg) + tl, p + fl, ml - (size_t)(p - msg) - fl + 1);
	return out;
}

/* Verify @msg fed in chunks of @chunk (0: whole); keys by name from the
 * table: "sel._domainkey.peer.test" etc. *@failed_r: a key failed. */
static enum dkim_result verify(const char *msg, size_t chunk,
			       const char *from_domain, const char *key_peer,
			       enum dkim_key_state st, bool *failed_r)
{
	struct dkim_verify *v;
	size_t len = strlen(msg);
	enum dkim_result r;

	assert_int_equal(dkim_verify_new(fx.ctx, &v), 0);
	if (chunk == 0)
		chunk = len;
	for (size_t off = 0; off < len; off += chunk)
		dkim_verify_feed(v, (const uint8_t *)msg + off,
				 len - off < chunk ? len - off : chunk);
	r = dkim_verify_end(v, from_domain);
	if (r == DKIM_RES_PASS) {
		for (unsigned i = 0; i < dkim_verify_nkeys(v); i++) {
			const char *n = dkim_verify_key_name(v, i);

			if (strcmp(n, "sel._domainkey.peer.test") == 0 ||
			    strcmp(n, "sel._domainkey.sub.peer.test") == 0)
				dkim_verify_set_key(v, i, st, key_peer);
			else if (strcmp(n, "sel._domainkey.other.test") == 0)
				dkim_verify_set_key(v, i, DKIM_KEY_FOUND,
						    fx.rec_b);
			else
				dkim_verify_set_key(v, i, DKIM_KEY_NOTFOUND,
						    NULL);
		}
		r = dkim_verify_finish(v);
	}
	if (failed_r != NULL) {
		*failed_r = false;
		for (unsigned i = 0; i < dkim_verify_nkeys(v); i++)
			*failed_r |= dkim_verify_key_failed(v, i);
	}
	dkim_verify_free(&v);
	return r;
}

static void test_sign_verify_chunks(void **state)
{
	char *m = sign(fx.sa, test_msg);
	static const size_t chunks[] = {0, 1, 2, 7, 64, 1000};

	(void)state;
	assert_true(strncmp(m,
			    "DKIM-Signature: v=1; a=rsa-sha256; "
			    "c=relaxed/simple; d=peer.test;",
			    59) == 0);
	assert_non_null(strstr(m, "s=sel;"));
	assert_null(strstr(m, " l="));
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		bool failed = true;

		assert_int_equal(verify(m, chunks[i], "peer.test", fx.rec_a,
					DKIM_KEY_FOUND, &failed),
				 DKIM_RES_PASS);
		assert_false(failed);
	}
	/* The From domain compares ASCII case-insensitively. */
	assert_int_equal(
		verify(m, 0, "PEER.test", fx.rec_a, DKIM_KEY_FOUND, NULL),
		DKIM_RES_PASS);
	free(m);
}

static void test_verdicts(void **state)
{
	char *m = sign(fx.sa, test_msg), *x;
	bool failed;

	(void)state;
	/* No signature at all. */
	assert_int_equal(verify(test_msg, 0, "peer.test", fx.rec_a,
				DKIM_KEY_FOUND, NULL),
			 DKIM_RES_NOSIG);
	assert_int_equal(verify(test_msg, 1, "peer.test", fx.rec_a,
				DKIM_KEY_FOUND, NULL),
			 DKIM_RES_NOSIG);
	/* The signature is of another domain than From. */
	assert_int_equal(
		verify(m, 0, "elsewhere.test", fx.rec_a, DKIM_KEY_FOUND, NULL),
		DKIM_RES_FAIL);
	free(m);
	m = sign(fx.sb, test_msg); /* d=other.test, From @peer.test */
	assert_int_equal(
		verify(m, 0, "peer.test", fx.rec_a, DKIM_KEY_FOUND, NULL),
		DKIM_RES_FAIL);
	assert_int_equal(
		verify(m, 0, "other.test", fx.rec_a, DKIM_KEY_FOUND, NULL),
		DKIM_RES_PASS);
	free(m);
	m = sign(fx.sub, test_msg); /* d=sub.peer.test: no relaxation */
	assert_int_equal(
		verify(m, 0, "peer.test", fx.rec_a, DKIM_KEY_FOUND, NULL),
		DKIM_RES_FAIL);
	free(m);
	m = sign(fx.sa, test_msg);
	/* Body changed: body hash; the key did not fail. */
	x = replace(m, "hello", "hellO");
	assert_int_equal(
		verify(x, 3, "peer.test", fx.rec_a, DKIM_KEY_FOUND, &failed),
		DKIM_RES_FAIL);
	assert_false(failed);
	free(x);
	/* Header changed: the signature fails with the key. */
	x = replace(m, "Subject: [...]", "Subject: [..]");
	assert_int_equal(
		verify(x, 0, "peer.test", fx.rec_a, DKIM_KEY_FOUND, &failed),
		DKIM_RES_FAIL);
	assert_true(failed);
	free(x);
	/* Another key under the name. */
	assert_int_equal(
		verify(m, 0, "peer.test", fx.rec_b, DKIM_KEY_FOUND, &failed),
		DKIM_RES_FAIL);
	assert_true(failed);
	/* No key, a revoked key, a key that could not be fetched. */
	assert_int_equal(
		verify(m, 0, "peer.test", NULL, DKIM_KEY_NOTFOUND, &failed),
		DKIM_RES_FAIL);
	assert_false(failed);
	assert_int_equal(verify(m, 0, "peer.test",
				"v=DKIM1; k=rsa; p=", DKIM_KEY_FOUND, NULL),
			 DKIM_RES_FAIL);
	assert_int_equal(verify(m, 0, "peer.test", "not a key record",
				DKIM_KEY_FOUND, NULL),
			 DKIM_RES_FAIL);
	assert_int_equal(
		verify(m, 0, "peer.test", NULL, DKIM_KEY_TEMPFAIL, NULL),
		DKIM_RES_TEMPFAIL);
	/* An aligned valid signature among others passes; a temporary
	 * failure of one key does not matter then. */
	x = sign(fx.sb, m);
	assert_int_equal(
		verify(x, 0, "peer.test", fx.rec_a, DKIM_KEY_FOUND, NULL),
		DKIM_RES_PASS);
	free(x);
	/* Past DKIM_KEYS_MAX aligned signatures the rest are ignored: ten
	 * broken ones in front hide a good one. */
	x = strdup(m);
	for (int i = 0; i < 10; i++) {
		char *y = sign(fx.sa, test_msg);
		size_t yl, xl = strlen(x);
		char *z, *b;

		/* y's signature field, its b= value changed, before x. */
		y[strstr(y, "\r\nFrom:") - y + 2] = '\0';
		b = strstr(y, "\tb=");
		assert_non_null(b);
		b += 3;
		*b = *b == 'A' ? 'B' : 'A';
		yl = strlen(y);
		z = malloc(yl + xl + 1);
		memcpy(z, y, yl);
		memcpy(z + yl, x, xl + 1);
		free(x);
		free(y);
		x = z;
	}
	assert_int_equal(
		verify(x, 0, "peer.test", fx.rec_a, DKIM_KEY_FOUND, NULL),
		DKIM_RES_FAIL);
	free(x);
	/* A broken extra signature field does no harm either. */
	x = replace(m, "From: Alice",
		    "DKIM-Signature: v=1; d=peer.test; b=yy\r\nFrom: Alice");
	assert_int_equal(
		verify(x, 0, "peer.test", fx.rec_a, DKIM_KEY_FOUND, NULL),
		DKIM_RES_PASS);
	free(x);
	/* Only a broken one: signatures present, none valid. */
	x = replace(test_msg, "From: Alice",
		    "DKIM-Signature: v=1; d=peer.test; b=yy\r\nFrom: Alice");
	assert_int_equal(
		verify(x, 0, "peer.test", fx.rec_a, DKIM_KEY_FOUND, NULL),
		DKIM_RES_FAIL);
	free(x);
	free(m);
}

static void test_signer_wants(void **state)
{
	struct dkim_signer *s = NULL;

	(void)state;
	assert_true(dkim_signer_wants(fx.sa, "alice@peer.test"));
	assert_true(dkim_signer_wants(fx.sa, "MAILER-DAEMON@Peer.Test"));
	assert_false(dkim_signer_wants(fx.sa, "alice@sub.peer.test"));
	assert_false(dkim_signer_wants(fx.sa, "alice@other.test"));
	assert_false(dkim_signer_wants(fx.sa, ""));
	/* IP-only relays sign nothing; a non-key is refused. */
	assert_int_equal(
		dkim_signer_load(fx.ctx, "[127.0.0.1]", "sel", fx.key_a, &s),
		-22);
	assert_int_equal(
		dkim_signer_new(fx.ctx, "peer.test", "sel", "x", 1, &s), -22);
	assert_null(s);
}

static void test_keygen_mode(void **state)
{
	struct stat st;

	(void)state;
	assert_int_equal(stat(fx.key_a, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(dkim_keygen(fx.key_a, 2048, false), -17); /* EEXIST */
}

static void test_record_line(void **state)
{
	char line[4096], value[600];

	(void)state;
	memset(value, 'a', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	assert_int_equal(dkim_record_line("opendkim", "x.org", value, false,
					  line, sizeof(line)),
			 0);
	/* 40 columns of name, 255 + 255 + 89 octets in three strings. */
	assert_true(strncmp(line,
			    "opendkim._domainkey.x.org.               3600   "
			    "IN  TXT    \"",
			    60) == 0);
	assert_int_equal(strlen(line), 60 + 599 + 2 * 3 + 1);
	assert_int_equal(line[60 + 255], '"');
	assert_int_equal(line[60 + 255 + 3 + 255], '"');
	assert_int_equal(dkim_record_line("opendkim", "x.org", value, true,
					  line, sizeof(line)),
			 0);
	assert_int_equal(strlen(line), 60 + 599 + 1);
	assert_int_equal(
		dkim_record_line("opendkim", "x.org", value, false, line, 100),
		-28);
	assert_true(strncmp(fx.rec_a, "v=DKIM1;k=rsa;p=MIIBIjAN", 24) == 0);
}

static void test_record_select(void **state)
{
	const char *t1[] = {"v=spf1 -all", "v=DKIM1; k=rsa;\t p=AB CD"};
	const char *t2[] = {"other", "k=rsa; p=XY"};
	const char *t3[] = {"nothing", "here"};
	size_t l1[] = {11, 24}, l2[] = {5, 11}, l3[] = {7, 4};
	char out[64];

	(void)state;
	assert_true(dkim_record_select(t1, l1, 2, out, sizeof(out)));
	assert_string_equal(out, "v=DKIM1;k=rsa;p=ABCD");
	assert_true(dkim_record_select(t2, l2, 2, out, sizeof(out)));
	assert_string_equal(out, "k=rsa;p=XY");
	assert_false(dkim_record_select(t3, l3, 2, out, sizeof(out)));
	assert_false(dkim_record_select(t1, l1, 2, out, 8));
	assert_false(dkim_record_select(t1, l1, 0, out, sizeof(out)));
}

static void test_cache(void **state)
{
	struct dkim_cache *c;
	char name[64];

	(void)state;
	assert_int_equal(dkim_cache_new(4, &c), 0);
	assert_null(dkim_cache_get(c, "a", 0));
	dkim_cache_put(c, "a", "ra", 10, 1000);
	dkim_cache_put(c, "z", "rz", 0, 1000); /* TTL 0: not kept */
	assert_string_equal(dkim_cache_get(c, "a", 10999), "ra");
	assert_null(dkim_cache_get(c, "a", 11000)); /* expired */
	assert_null(dkim_cache_get(c, "z", 1000));
	assert_int_equal(dkim_cache_count(c), 0);
	/* LRU: b c d e fill it; reading b makes c the oldest. */
	dkim_cache_put(c, "b", "rb", 100, 0);
	dkim_cache_put(c, "c", "rc", 100, 0);
	dkim_cache_put(c, "d", "rd", 100, 0);
	dkim_cache_put(c, "e", "re", 100, 0);
	assert_string_equal(dkim_cache_get(c, "b", 1), "rb");
	dkim_cache_put(c, "f", "rf", 100, 0);
	assert_int_equal(dkim_cache_count(c), 4);
	assert_null(dkim_cache_get(c, "c", 1));
	assert_string_equal(dkim_cache_get(c, "b", 1), "rb");
	assert_string_equal(dkim_cache_get(c, "f", 1), "rf");
	/* Replace, drop. */
	dkim_cache_put(c, "b", "rb2", 100, 0);
	assert_string_equal(dkim_cache_get(c, "b", 1), "rb2");
	dkim_cache_drop(c, "b");
	assert_null(dkim_cache_get(c, "b", 1));
	assert_int_equal(dkim_cache_count(c), 3);
	/* A TTL beyond a day is cut to a day. */
	dkim_cache_put(c, "g", "rg", 1000000, 0);
	assert_non_null(dkim_cache_get(c, "g", 86399999));
	assert_null(dkim_cache_get(c, "g", 86400000));
	dkim_cache_free(&c);
	/* Many names through the default size. */
	assert_int_equal(dkim_cache_new(0, &c), 0);
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "s%d._domainkey.d.test", i);
		dkim_cache_put(c, name, name, 60, 0);
	}
	assert_int_equal(dkim_cache_count(c), DKIM_CACHE_SIZE);
	assert_string_equal(dkim_cache_get(c, name, 1), name);
	assert_null(dkim_cache_get(c, "s0._domainkey.d.test", 1));
	dkim_cache_free(&c);
}

/* ---- core/dns_parse ---- */

static size_t dns_name(uint8_t *p, const char *name)
{
	size_t o = 0;

	while (*name != '\0') {
		const char *dot = strchr(name, '.');
		size_t k = dot != NULL ? (size_t)(dot - name) : strlen(name);

		p[o++] = (uint8_t)k;
		memcpy(p + o, name, k);
		o += k;
		name += k + (dot != NULL);
	}
	p[o++] = 0;
	return o;
}

/* A response for @q with answers built by the caller after *@off. */
static size_t dns_head(uint8_t *p, const char *q, unsigned an)
{
	size_t o;

	memset(p, 0, 12);
	p[0] = 0x12;
	p[2] = 0x81;
	p[3] = 0x80;
	p[5] = 1;
	p[7] = (uint8_t)an;
	o = 12 + dns_name(p + 12, q);
	p[o++] = 0;
	p[o++] = 16;
	p[o++] = 0;
	p[o++] = 1;
	return o;
}

static size_t dns_rr(uint8_t *p, uint16_t type, uint32_t ttl,
		     const char *const *strs, unsigned n)
{
	size_t o = 0, rd;

	p[o++] = 0xc0; /* pointer to the question's name */
	p[o++] = 12;
	p[o++] = (uint8_t)(type >> 8);
	p[o++] = (uint8_t)type;
	p[o++] = 0;
	p[o++] = 1;
	p[o++] = (uint8_t)(ttl >> 24);
	p[o++] = (uint8_t)(ttl >> 16);
	p[o++] = (uint8_t)(ttl >> 8);
	p[o++] = (uint8_t)ttl;
	rd = o;
	o += 2;
	for (unsigned i = 0; i < n; i++) {
		size_t k = strlen(strs[i]);

		p[o++] = (uint8_t)k;
		memcpy(p + o, strs[i], k);
		o += k;
	}
	p[rd] = (uint8_t)((o - rd - 2) >> 8);
	p[rd + 1] = (uint8_t)(o - rd - 2);
	return o;
}

static void test_dns_parse(void **state)
{
	static uint8_t m[4096];
	static struct dns_txt_answer a;
	const char *two[] = {"v=DKIM1; k=rsa; ", "p=ABC"};
	const char *one[] = {"v=spf1 -all"};
	const char *cname[] = {"\003foo"};
	size_t o;

	(void)state;
	o = dns_head(m, "sel._domainkey.peer.test", 3);
	o += dns_rr(m + o, 5, 50, cname, 1); /* a CNAME: skipped */
	o += dns_rr(m + o, 16, 3600, one, 1);
	o += dns_rr(m + o, 16, 300, two, 2);
	assert_int_equal(dns_parse_txt(m, o, &a), DNS_PARSE_OK);
	assert_int_equal(a.n, 2);
	assert_int_equal(a.ttl, 300);
	assert_string_equal(a.txt[0], "v=spf1 -all");
	assert_string_equal(a.txt[1], "v=DKIM1; k=rsa; p=ABC");
	assert_int_equal(a.len[1], 21);
	/* Cut anywhere inside: an error, never a read past the end. */
	for (size_t cut = 0; cut < o; cut++) {
		uint8_t *c = malloc(cut + 1);

		memcpy(c, m, cut);
		assert_true(dns_parse_txt(c, cut, &a) < 0);
		free(c);
	}
	/* A string overrunning its RDATA. */
	m[o - 6] = 200;
	assert_int_equal(dns_parse_txt(m, o, &a), DNS_PARSE_RDATA);
	/* A query is no answer; a label with 0x40 is bad. */
	o = dns_head(m, "x.test", 0);
	m[2] = 0x01;
	assert_int_equal(dns_parse_txt(m, o, &a), DNS_PARSE_NOTANS);
	m[2] = 0x81;
	assert_int_equal(dns_parse_txt(m, o, &a), DNS_PARSE_OK);
	assert_int_equal(a.n, 0);
	m[12] = 0x41;
	assert_int_equal(dns_parse_txt(m, o, &a), DNS_PARSE_NAME);
	/* More records than kept: counted as skipped. */
	o = dns_head(m, "x.test", 20);
	for (int i = 0; i < 20; i++)
		o += dns_rr(m + o, 16, 60, one, 1);
	assert_int_equal(dns_parse_txt(m, o, &a), DNS_PARSE_OK);
	assert_int_equal(a.n, DNS_TXT_MAX);
	assert_int_equal(a.skip, 20 - DNS_TXT_MAX);
}

/* ---- the async halves on a real loop and pool ---- */

struct async_res {
	bool done;
	int err;
	enum dkim_result res;
	char *hdr;
	size_t hdr_len;
};

static void async_signed(int err, char *hdr, size_t hdr_len, void *arg)
{
	struct async_res *a = arg;

	a->done = true;
	a->err = err;
	a->hdr = hdr;
	a->hdr_len = hdr_len;
}

static void async_checked(enum dkim_result res, const char *detail, void *arg)
{
	struct async_res *a = arg;

	(void)detail;
	a->done = true;
	a->res = res;
}

static void async_wait(struct loop *l, struct async_res *a)
{
	for (int i = 0; i < 2000 && !a->done; i++)
		assert_true(loop_run_once(l, 50) >= 0);
	assert_true(a->done);
}

static void async_dns(enum dns_status st, const struct dns_txt_answer *ans,
		      void *arg)
{
	struct async_res *a = arg;

	(void)ans;
	a->done = true;
	a->err = (int)st;
}

static struct dkim_verify *ended(const char *msg)
{
	struct dkim_verify *v;

	assert_int_equal(dkim_verify_new(fx.ctx, &v), 0);
	dkim_verify_feed(v, (const uint8_t *)msg, strlen(msg));
	assert_int_equal(dkim_verify_end(v, "peer.test"), DKIM_RES_PASS);
	return v;
}

static void test_async(void **state)
{
	enum loop_backend be[2];
	int nb = testutil_backends(be);

	(void)state;
	for (int b = 0; b < nb; b++) {
		struct loop_opts lo = {.backend = be[b]};
		struct dkim_checker *ck;
		struct async_res a;
		struct loop *l;
		struct pool *p;
		char *m;
		const char *name = "sel._domainkey.peer.test";

		assert_int_equal(loop_new(&lo, &l), 0);
		assert_int_equal(pool_new(1, &p), 0);
		/* core/dns: a name c-ares refuses at once is still reported
		 * later, from the loop; a resolver freed with queries in
		 * flight or waiting calls nobody back. */
		{
			struct dns_resolver *r;
			struct dns_query *q, *q2;

			assert_int_equal(dns_resolver_new(l, "nonsense", &r),
					 -22);
			assert_null(r);
			assert_int_equal(dns_resolver_new(l, "127.0.0.1:9", &r),
					 0);
			memset(&a, 0, sizeof(a));
			assert_int_equal(dns_txt_lookup(r, "bad..name", 0,
							async_dns, &a, &q),
					 0);
			assert_false(a.done);
			async_wait(l, &a);
			assert_int_equal(a.err, DNS_TEMPFAIL);
			memset(&a, 0, sizeof(a));
			assert_int_equal(dns_txt_lookup(r, "x.test", 0,
							async_dns, &a, &q),
					 0);
			assert_int_equal(dns_txt_lookup(r, "bad..name", 0,
							async_dns, &a, &q2),
					 0);
			assert_int_equal(dns_resolver_pending(r), 2);
			dns_query_cancel(&q2);
			assert_null(q2);
			dns_resolver_free(&r);
			assert_int_equal(loop_run_once(l, 0) >= 0, 1);
			assert_false(a.done);
		}
		/* Signing on the pool. */
		memset(&a, 0, sizeof(a));
		assert_int_equal(
			dkim_sign_start(p, l, fx.sa, (const uint8_t *)test_msg,
					strlen(test_msg), async_signed, &a),
			0);
		assert_false(a.done);
		async_wait(l, &a);
		assert_int_equal(a.err, 0);
		m = malloc(a.hdr_len + sizeof(test_msg));
		memcpy(m, a.hdr, a.hdr_len);
		memcpy(m + a.hdr_len, test_msg, sizeof(test_msg));
		free(a.hdr);
		assert_int_equal(verify(m, 0, "peer.test", fx.rec_a,
					DKIM_KEY_FOUND, NULL),
				 DKIM_RES_PASS);
		/* Discard port: nothing answers, a lookup fails at once. */
		assert_int_equal(
			dkim_checker_new(l, p, "127.0.0.1:9", 2000, &ck), 0);
		/* The key in the cache: no DNS at all. */
		dkim_cache_put(dkim_checker_cache(ck), name, fx.rec_a, 60,
			       loop_now_ms(l));
		memset(&a, 0, sizeof(a));
		assert_int_equal(
			dkim_check_start(ck, ended(m), async_checked, &a, NULL),
			0);
		assert_false(a.done);
		async_wait(l, &a);
		assert_int_equal(a.res, DKIM_RES_PASS);
		assert_non_null(dkim_cache_get(dkim_checker_cache(ck), name,
					       loop_now_ms(l)));
		/* A cached key the signature fails with leaves the cache. */
		dkim_cache_put(dkim_checker_cache(ck), name, fx.rec_b, 60,
			       loop_now_ms(l));
		memset(&a, 0, sizeof(a));
		assert_int_equal(
			dkim_check_start(ck, ended(m), async_checked, &a, NULL),
			0);
		async_wait(l, &a);
		assert_int_equal(a.res, DKIM_RES_FAIL);
		assert_null(dkim_cache_get(dkim_checker_cache(ck), name,
					   loop_now_ms(l)));
		/* Not cached and DNS unreachable: temporary failure. */
		memset(&a, 0, sizeof(a));
		assert_int_equal(
			dkim_check_start(ck, ended(m), async_checked, &a, NULL),
			0);
		async_wait(l, &a);
		assert_int_equal(a.res, DKIM_RES_TEMPFAIL);
		/* Freed with a check in flight: no callback, no leak. */
		memset(&a, 0, sizeof(a));
		assert_int_equal(
			dkim_check_start(ck, ended(m), async_checked, &a, NULL),
			0);
		dkim_checker_free(&ck);
		assert_int_equal(loop_run_once(l, 0) >= 0, 1);
		assert_false(a.done);
		free(m);
		pool_free(&p);
		loop_free(&l);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_verify_chunks),
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_signer_wants),
		cmocka_unit_test(test_keygen_mode),
		cmocka_unit_test(test_record_line),
		cmocka_unit_test(test_record_select),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_dns_parse),
		cmocka_unit_test(test_async),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
