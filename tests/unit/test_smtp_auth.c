/* tests/unit/test_smtp_auth: AUTH PLAIN, table-driven. Each credential
 * case is sent both as an initial response and as a 334 continuation,
 * through smtp_parse_cmd whole, one octet at a time and at every split,
 * then decoded; plus RFC 4648 vectors and the AUTH argument split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/base64.h"
#include "smtp/smtp_auth.h"
#include "smtp/smtp_parse.h"

static size_t b64_encode(const uint8_t *in, size_t n, char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrst"
				"uvwxyz0123456789+/";
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = t[v >> 18 & 63];
		out[o++] = t[v >> 12 & 63];
		out[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	out[o] = '\0';
	return o;
}

struct ccase {
	const char *raw; /* credentials before base64 (NULs inside) */
	size_t raw_len;
	const char *b64; /* or the response as sent, when raw is NULL */
	int err;
	const char *authzid, *authcid, *password;
};

#define C(r, e, z, c, p)                                        \
	{                                                       \
		r, sizeof(r) - 1, NULL, SASL_PLAIN_##e, z, c, p \
	}
#define B(b, e)                                              \
	{                                                    \
		NULL, 0, b, SASL_PLAIN_##e, NULL, NULL, NULL \
	}

static const struct ccase ccases[] = {
	C("\0alice@x.org\0secret99", OK, "", "alice@x.org", "secret99"),
	C("alice@x.org\0alice@x.org\0pw", OK, "alice@x.org", "alice@x.org",
	  "pw"),
	C("\0u\0p\xc3\xa4ss w\"ord\\", OK, "", "u", "p\xc3\xa4ss w\"ord\\"),
	C("\0u\0\x01\x7f\xff", OK, "", "u", "\x01\x7f\xff"),
	C("bob@x.org\0alice@x.org\0pw", ERR_AUTHZID, NULL, NULL, NULL),
	C("Alice@x.org\0alice@x.org\0pw", ERR_AUTHZID, NULL, NULL, NULL),
	C("alice@x.or\0alice@x.org\0pw", ERR_AUTHZID, NULL, NULL, NULL),
	C("\0alice@x.org\0", ERR_EMPTY, NULL, NULL, NULL),
	C("\0\0pw", ERR_EMPTY, NULL, NULL, NULL),
	C("\0\0", ERR_EMPTY, NULL, NULL, NULL),
	C("alicepw", ERR_MALFORMED, NULL, NULL, NULL),
	C("\0alice", ERR_MALFORMED, NULL, NULL, NULL),
	C("\0a\0b\0c", ERR_MALFORMED, NULL, NULL, NULL),
	C("\0a\0b\0", ERR_MALFORMED, NULL, NULL, NULL),
	C("\0", ERR_MALFORMED, NULL, NULL, NULL),
	B("", ERR_MALFORMED),
	B("*", ERR_CANCELLED),
	B("AGFiAGM", ERR_BASE64),
	B("AG=iAGM=", ERR_BASE64),
	B("AGFi=GM=", ERR_BASE64),
	B("AGFiAG=M", ERR_BASE64),
	B("AGFiAG==AGFi", ERR_BASE64),
	B("AGFi\tAGM=", ERR_BASE64),
	B("****", ERR_BASE64),
	B("=AAA", ERR_BASE64),
	B("A===", ERR_BASE64),
	B("AB==", ERR_BASE64), /* non-zero bits under the padding */
	B("AGFiAGN=", ERR_BASE64),
	B("AA==", ERR_MALFORMED),
};

static void check(const char *what, const struct ccase *c, int r,
		  const struct sasl_plain *a)
{
	if (r != c->err)
		fail_msg("%s: error %d want %d", what, r, c->err);
	if (r != SMTP_AUTH_OK) {
		/* Nothing secret is left behind on failure. */
		for (size_t i = 0; i < sizeof(a->buf); i++)
			assert_int_equal(a->buf[i], 0);
		assert_int_equal(a->password_len, 0);
		return;
	}
	assert_int_equal(a->authzid_len, strlen(c->authzid));
	assert_string_equal(a->authzid, c->authzid);
	assert_int_equal(a->authcid_len, strlen(c->authcid));
	assert_string_equal(a->authcid, c->authcid);
	assert_int_equal(a->password_len, strlen(c->password));
	assert_string_equal(a->password, c->password);
}

/* @line through the line parser in chunks; the AUTH line is answered
 * as the session will: initial response decoded, or a raw line next. */
static void via_line(const char *what, const struct ccase *c,
		     const uint8_t *line, const size_t *cuts, size_t ncuts)
{
	struct smtp_parser p;
	struct smtp_auth_cmd ac;
	struct sasl_plain a;
	size_t a0 = 0, used, decoded = 0;
	int r;

	smtp_parser_init(&p);
	for (size_t k = 0; k < ncuts; k++) {
		while (a0 < cuts[k]) {
			r = smtp_parse_cmd(&p, line + a0, cuts[k] - a0, &used);
			a0 += used;
			if (r == SMTP_PARSE_AGAIN)
				continue;
			if (r == SMTP_PARSE_INVALID) {
				/* A control octet in a raw response. */
				assert_int_equal(p.error, SMTP_PERR_BAD_CHAR);
				assert_int_equal(c->err, SASL_PLAIN_ERR_BASE64);
				decoded++;
				continue;
			}
			if (p.cmd.verb == SMTP_VERB_AUTH) {
				assert_int_equal(
					smtp_auth_parse_cmd(p.cmd.arg,
							    p.cmd.arg_len, &ac),
					SMTP_AUTH_OK);
				assert_int_equal(ac.mech, SMTP_AUTH_MECH_PLAIN);
				if (!ac.has_ir) {
					smtp_parser_expect_line(&p);
					continue;
				}
				r = sasl_plain_decode(ac.ir, ac.ir_len, &a);
			} else {
				assert_int_equal(p.cmd.verb, SMTP_VERB_LINE);
				r = sasl_plain_decode(p.cmd.arg, p.cmd.arg_len,
						      &a);
			}
			check(what, c, r, &a);
			decoded++;
		}
	}
	assert_int_equal(decoded, 1);
}

static void run_lines(const char *what, const struct ccase *c,
		      const uint8_t *line, size_t len)
{
	size_t *cuts = malloc(len * sizeof(*cuts));

	assert_non_null(cuts);
	cuts[0] = len;
	via_line(what, c, line, cuts, 1);
	for (size_t k = 0; k < len; k++)
		cuts[k] = k + 1;
	via_line(what, c, line, cuts, len);
	for (size_t k = 1; k < len; k++) {
		size_t two[2] = {k, len};

		via_line(what, c, line, two, 2);
	}
	free(cuts);
}

static void test_plain_table(void **state)
{
	char b64[SASL_PLAIN_B64_MAX + 8], what[96];
	uint8_t line[SASL_PLAIN_B64_MAX + 64];
	struct sasl_plain a;
	size_t n, len;

	(void)state;
	for (size_t i = 0; i < sizeof(ccases) / sizeof(ccases[0]); i++) {
		const struct ccase *c = &ccases[i];
		char *exact;

		if (c->raw != NULL)
			n = b64_encode((const uint8_t *)c->raw, c->raw_len,
				       b64);
		else
			n = (size_t)snprintf(b64, sizeof(b64), "%s", c->b64);
		snprintf(what, sizeof(what), "case %zu '%.40s'", i, b64);
		/* Direct, from an exact-size copy. */
		exact = malloc(n + 1);
		assert_non_null(exact);
		memcpy(exact, b64, n);
		check(what, c, sasl_plain_decode(exact, n, &a), &a);
		free(exact);
		/* Initial response ("=" stands for an empty one). */
		len = (size_t)snprintf((char *)line, sizeof(line),
				       "AUTH PLAIN %s\r\n", n > 0 ? b64 : "=");
		run_lines(what, c, line, len);
		/* Continuation after 334. */
		len = (size_t)snprintf((char *)line, sizeof(line),
				       "AUTH PLAIN\r\n%s\r\n", b64);
		run_lines(what, c, line, len);
	}
}

/* A fixed vector ("\0ab\0c"), then wiping. */
static void test_vector_and_wipe(void **state)
{
	struct sasl_plain a;

	(void)state;
	assert_int_equal(sasl_plain_decode("AGFiAGM=", 8, &a), SMTP_AUTH_OK);
	assert_string_equal(a.authcid, "ab");
	assert_string_equal(a.password, "c");
	sasl_plain_wipe(&a);
	assert_int_equal(a.password_len, 0);
	for (size_t i = 0; i < sizeof(a.buf); i++)
		assert_int_equal(a.buf[i], 0);
}

static void test_sizes(void **state)
{
	static uint8_t raw[SASL_PLAIN_MAX + 8];
	static char b64[SASL_PLAIN_B64_MAX + 16];
	struct sasl_plain a;
	size_t n;

	(void)state;
	/* The largest response: 1533 octets, 2044 base64 characters. */
	memset(raw, 'p', sizeof(raw));
	raw[0] = '\0';
	memcpy(raw + 1, "user@x.org", 10);
	raw[11] = '\0';
	n = b64_encode(raw, SASL_PLAIN_MAX, b64);
	assert_int_equal(n, SASL_PLAIN_B64_MAX);
	assert_int_equal(sasl_plain_decode(b64, n, &a), SMTP_AUTH_OK);
	assert_int_equal(a.password_len, SASL_PLAIN_MAX - 12);
	assert_string_equal(a.authcid, "user@x.org");
	/* Four more characters: too long (before any decoding). */
	n = b64_encode(raw, SASL_PLAIN_MAX + 1, b64);
	assert_int_equal(n, SASL_PLAIN_B64_MAX + 4);
	assert_int_equal(sasl_plain_decode(b64, n, &a),
			 SASL_PLAIN_ERR_TOO_LONG);
	memset(b64, '!', sizeof(b64));
	assert_int_equal(sasl_plain_decode(b64, sizeof(b64), &a),
			 SASL_PLAIN_ERR_TOO_LONG);
	/* The largest fits an AUTH line of the long limit. */
	assert_true(SASL_PLAIN_B64_MAX + 2 <= SMTP_LINE_MAX_LONG);
}

static void test_base64_vectors(void **state)
{
	static const struct {
		const char *in, *out;
	} v[] = {
		{"", ""},
		{"Zg==", "f"},
		{"Zm8=", "fo"},
		{"Zm9v", "foo"},
		{"Zm9vYg==", "foob"},
		{"Zm9vYmE=", "fooba"},
		{"Zm9vYmFy", "foobar"},
		{"+/+/", "\xfb\xff\xbf"},
	};
	uint8_t out[16];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(base64_decode_strict(v[i].in, strlen(v[i].in),
						      out, sizeof(out), &n),
				 0);
		assert_int_equal(n, strlen(v[i].out));
		assert_memory_equal(out, v[i].out, n);
	}
	/* No room: refused, not truncated. */
	assert_int_equal(base64_decode_strict("Zm9vYmFy", 8, out, 5, &n), -1);
	assert_int_equal(base64_decode_strict("Zm9vYmFy", 8, out, 6, &n), 0);
	assert_int_equal(base64_decode_strict("Zm9vYg==", 8, out, 4, &n), 0);
	assert_int_equal(base64_decode_strict("Zm9v\r\n", 6, out, 16, &n), -1);
	assert_int_equal(base64_decode_strict("Zm9-", 4, out, 16, &n), -1);
	assert_int_equal(base64_decode_strict("Zm9_", 4, out, 16, &n), -1);
}

static void test_auth_cmd(void **state)
{
	static const struct {
		const char *arg;
		int err;
		enum smtp_auth_mech mech;
		bool has_ir;
		const char *ir;
	} t[] = {
		{"PLAIN", SMTP_AUTH_OK, SMTP_AUTH_MECH_PLAIN, false, ""},
		{"plain", SMTP_AUTH_OK, SMTP_AUTH_MECH_PLAIN, false, ""},
		{"PLAIN AGFiAGM=", SMTP_AUTH_OK, SMTP_AUTH_MECH_PLAIN, true,
		 "AGFiAGM="},
		{"PLAIN   AGFiAGM=", SMTP_AUTH_OK, SMTP_AUTH_MECH_PLAIN, true,
		 "AGFiAGM="},
		{"PLAIN =", SMTP_AUTH_OK, SMTP_AUTH_MECH_PLAIN, true, ""},
		{"PLAIN ==", SMTP_AUTH_OK, SMTP_AUTH_MECH_PLAIN, true, "=="},
		{"PLAIN a b", SMTP_AUTH_ERR_SYNTAX, SMTP_AUTH_MECH_PLAIN, true,
		 NULL},
		{"", SMTP_AUTH_ERR_SYNTAX, SMTP_AUTH_MECH_UNKNOWN, false, NULL},
		{" PLAIN", SMTP_AUTH_ERR_SYNTAX, SMTP_AUTH_MECH_UNKNOWN, false,
		 NULL},
		{"LOGIN", SMTP_AUTH_ERR_MECH, SMTP_AUTH_MECH_UNKNOWN, false,
		 NULL},
		{"CRAM-MD5 abc", SMTP_AUTH_ERR_MECH, SMTP_AUTH_MECH_UNKNOWN,
		 false, NULL},
		{"PLAINX", SMTP_AUTH_ERR_MECH, SMTP_AUTH_MECH_UNKNOWN, false,
		 NULL},
		{"PLAI", SMTP_AUTH_ERR_MECH, SMTP_AUTH_MECH_UNKNOWN, false,
		 NULL},
	};
	struct smtp_auth_cmd c;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t n = strlen(t[i].arg);
		char *exact = malloc(n + 1);
		int r;

		assert_non_null(exact);
		memcpy(exact, t[i].arg, n);
		r = smtp_auth_parse_cmd(exact, n, &c);
		if (r != t[i].err || c.mech != t[i].mech ||
		    c.has_ir != t[i].has_ir)
			fail_msg("auth '%s': %d %d %d", t[i].arg, r, c.mech,
				 c.has_ir);
		if (t[i].ir != NULL) {
			assert_int_equal(c.ir_len, strlen(t[i].ir));
			assert_memory_equal(c.ir, t[i].ir, c.ir_len);
		}
		free(exact);
	}
}

static void test_replies(void **state)
{
	const struct smtp_reply_def *r;

	(void)state;
	assert_null(smtp_auth_error_reply(SMTP_AUTH_OK));
	assert_null(smtp_auth_error_reply((enum smtp_auth_error)42));
	r = smtp_auth_error_reply(SASL_PLAIN_ERR_AUTHZID);
	assert_int_equal(r->code, 535);
	assert_string_equal(r->esc, "5.7.8");
	r = smtp_auth_error_reply(SASL_PLAIN_ERR_CANCELLED);
	assert_int_equal(r->code, 501);
	assert_string_equal(r->text, "Authentication aborted");
	r = smtp_auth_error_reply(SMTP_AUTH_ERR_MECH);
	assert_int_equal(r->code, 504);
	r = smtp_auth_error_reply(SASL_PLAIN_ERR_BASE64);
	assert_int_equal(r->code, 501);
	r = smtp_auth_error_reply(SASL_PLAIN_ERR_TOO_LONG);
	assert_int_equal(r->code, 500);
	for (int e = SASL_PLAIN_ERR_CANCELLED; e <= SMTP_AUTH_ERR_MECH; e++)
		assert_non_null(smtp_auth_error_reply(e));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_table),
		cmocka_unit_test(test_vector_and_wipe),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_base64_vectors),
		cmocka_unit_test(test_auth_cmd),
		cmocka_unit_test(test_replies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
