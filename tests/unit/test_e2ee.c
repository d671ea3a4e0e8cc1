/* tests/unit/test_e2ee: the streaming E2EE screen on whole messages built
 * in the test around real gpg output (GPGME, a throw-away GNUPGHOME with
 * two keys). Every fixture case of spec M.5 is recreated (encrypted,
 * fake-encrypted, literal, plain, asm, mailer-daemon, mdn, securejoin-vc,
 * securejoin-vc-fake) with its verdict outgoing and incoming, then the
 * armor Version: header, the From rules, parse errors, odd MIME shapes,
 * LF-only messages and the limits. Every message is screened whole, one
 * octet at a time and in random chunks, and the short ones split in two
 * at every position: the facts must not change. */
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
#include <gpgme.h>

#include "filter/e2ee.h"
#include "filter/mime_header.h"
#include "testutil.h"

#define ALICE "alice@example.org"
#define BOB   "bob@example.org"

/* ------------------------------------------------------------------ */
/* Byte buffers */

struct bytes {
	uint8_t *p;
	size_t len, cap;
};

static void bytes_add(struct bytes *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void bytes_str(struct bytes *b, const char *s)
{
	bytes_add(b, s, strlen(s));
}

static void bytes_printf(struct bytes *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void bytes_printf(struct bytes *b, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	assert_true(n >= 0);
	bytes_add(b, s, (size_t)n);
	free(s);
}

static void bytes_free(struct bytes *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* LF line ends to CRLF (gpg armor on Unix), or CRLF to LF. */
static void bytes_crlf(struct bytes *b, bool to_crlf)
{
	struct bytes o = {0};
	size_t i;

	for (i = 0; i < b->len; i++) {
		if (!to_crlf && b->p[i] == '\r' && i + 1 < b->len &&
		    b->p[i + 1] == '\n')
			continue;
		if (to_crlf && b->p[i] == '\n' &&
		    (i == 0 || b->p[i - 1] != '\r'))
			bytes_add(&o, "\r", 1);
		bytes_add(&o, b->p + i, 1);
	}
	bytes_free(b);
	*b = o;
}

/* ------------------------------------------------------------------ */
/* GPGME and gpg in a temporary home */

static char *gpg_home;
static gpgme_ctx_t gpg_ctx;
static gpgme_key_t gpg_alice, gpg_bob;
static const char *gpg_bin;
/* Armored payloads (CRLF) made once. */
static struct bytes arm_two;     /* PKESK PKESK SEIPD */
static struct bytes arm_one;     /* PKESK SEIPD */
static struct bytes arm_sym;     /* SKESK SEIPD */
static struct bytes arm_literal; /* Literal Data */
static struct bytes arm_big;     /* ~1 MiB, partial lengths */

static gpgme_error_t gpg_passphrase(void *hook, const char *uid_hint,
				    const char *info, int prev_bad, int fd)
{
	(void)hook;
	(void)uid_hint;
	(void)info;
	(void)prev_bad;
	return gpgme_io_writen(fd, "secret\n", 7) == 0
		       ? 0
		       : gpgme_error(GPG_ERR_CANCELED);
}

static gpgme_key_t gpg_make_key(const char *uid)
{
	gpgme_genkey_result_t res;
	gpgme_key_t key = NULL;

	if (gpgme_op_createkey(gpg_ctx, uid, "future-default", 0, 0, NULL,
			       GPGME_CREATE_NOPASSWD | GPGME_CREATE_NOEXPIRE) !=
	    0)
		return NULL;
	res = gpgme_op_genkey_result(gpg_ctx);
	if (res == NULL || res->fpr == NULL ||
	    gpgme_get_key(gpg_ctx, res->fpr, &key, 0) != 0)
		return NULL;
	return key;
}

static int gpg_take(gpgme_data_t d, struct bytes *out)
{
	size_t n;
	char *p = gpgme_data_release_and_get_mem(d, &n);

	if (p == NULL)
		return -1;
	memset(out, 0, sizeof(*out));
	bytes_add(out, p, n);
	gpgme_free(p);
	bytes_crlf(out, true);
	return 0;
}

/* Armored, to @keys (NULL: symmetric, passphrase "secret"). */
static int gpg_encrypt(gpgme_key_t *keys, const void *msg, size_t len,
		       struct bytes *out)
{
	gpgme_data_t plain, cipher;

	if (gpgme_data_new_from_mem(&plain, msg, len, 1) != 0 ||
	    gpgme_data_new(&cipher) != 0)
		return -1;
	gpgme_set_armor(gpg_ctx, 1);
	if (gpgme_op_encrypt(gpg_ctx, keys,
			     keys == NULL ? GPGME_ENCRYPT_SYMMETRIC
					  : GPGME_ENCRYPT_ALWAYS_TRUST,
			     plain, cipher) != 0)
		return -1;
	gpgme_data_release(plain);
	return gpg_take(cipher, out);
}

/* gpg --store -z 0 -a: a Literal Data packet, armored. */
static int gpg_store(const char *msg, struct bytes *out)
{
	char in_path[600], out_path[600], buf[4096];
	const char *argv[16];
	size_t n = 0;
	pid_t pid;
	int status;
	FILE *fp;

	snprintf(in_path, sizeof(in_path), "%s/in.txt", gpg_home);
	snprintf(out_path, sizeof(out_path), "%s/out.asc", gpg_home);
	if (testutil_write_file(in_path, msg, strlen(msg)) != 0)
		return -1;
	argv[n++] = gpg_bin;
	argv[n++] = "--homedir";
	argv[n++] = gpg_home;
	argv[n++] = "--batch";
	argv[n++] = "--yes";
	argv[n++] = "--store";
	argv[n++] = "-z";
	argv[n++] = "0";
	argv[n++] = "-a";
	argv[n++] = "-o";
	argv[n++] = out_path;
	argv[n++] = in_path;
	argv[n] = NULL;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execv(gpg_bin, (char *const *)argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return -1;
	fp = fopen(out_path, "rb");
	if (fp == NULL)
		return -1;
	memset(out, 0, sizeof(*out));
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		bytes_add(out, buf, n);
	fclose(fp);
	bytes_crlf(out, true);
	return 0;
}

static int gpg_setup(void **state)
{
	static const char text[] = "Hi! How are you?\n";
	gpgme_key_t one[2], two[3];
	gpgme_engine_info_t info;
	uint8_t *big;
	size_t i;
	int r;

	(void)state;
	gpgme_check_version(NULL);
	gpg_home = testutil_mkdtemp("rm-e2ee");
	if (gpg_home == NULL || gpgme_new(&gpg_ctx) != 0 ||
	    gpgme_ctx_set_engine_info(gpg_ctx, GPGME_PROTOCOL_OpenPGP, NULL,
				      gpg_home) != 0)
		return -1;
	gpgme_set_pinentry_mode(gpg_ctx, GPGME_PINENTRY_MODE_LOOPBACK);
	gpgme_set_passphrase_cb(gpg_ctx, gpg_passphrase, NULL);
	gpg_alice = gpg_make_key("Alice <" ALICE ">");
	gpg_bob = gpg_make_key("Bob <" BOB ">");
	if (gpg_alice == NULL || gpg_bob == NULL)
		return -1;
	for (info = gpgme_ctx_get_engine_info(gpg_ctx); info != NULL;
	     info = info->next) {
		if (info->protocol == GPGME_PROTOCOL_OpenPGP)
			gpg_bin = info->file_name;
	}
	one[0] = gpg_bob;
	one[1] = NULL;
	two[0] = gpg_alice;
	two[1] = gpg_bob;
	two[2] = NULL;
	big = malloc(800000);
	if (big == NULL)
		return -1;
	for (i = 0; i < 800000; i++)
		big[i] = (uint8_t)(i * 2654435761u >> 13);
	r = gpg_encrypt(two, text, strlen(text), &arm_two) |
	    gpg_encrypt(one, text, strlen(text), &arm_one) |
	    gpg_encrypt(NULL, text, strlen(text), &arm_sym) |
	    gpg_encrypt(one, big, 800000, &arm_big) |
	    (gpg_bin != NULL ? gpg_store(text, &arm_literal) : -1);
	free(big);
	return r;
}

static int gpg_teardown(void **state)
{
	const char *gpgconf = gpgme_get_dirinfo("gpgconf-name");
	char cmd[1024];

	(void)state;
	bytes_free(&arm_two);
	bytes_free(&arm_one);
	bytes_free(&arm_sym);
	bytes_free(&arm_literal);
	bytes_free(&arm_big);
	gpgme_key_unref(gpg_alice);
	gpgme_key_unref(gpg_bob);
	gpgme_release(gpg_ctx);
	if (gpgconf != NULL) {
		snprintf(cmd, sizeof(cmd),
			 "%s --homedir %s --kill gpg-agent >/dev/null 2>&1",
			 gpgconf, gpg_home);
		if (system(cmd) != 0)
			fprintf(stderr, "gpgconf --kill failed\n");
	}
	testutil_rmtree(gpg_home);
	free(gpg_home);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Screening: whole, bytewise, split, random chunks */

static struct e2ee_state e2ee_st; /* 6 KiB: not on the stack */

static void screen_steps(const uint8_t *p, size_t n, const size_t *cuts,
			 size_t ncuts, struct e2ee_facts *f)
{
	size_t a = 0, c;

	e2ee_init(&e2ee_st);
	for (c = 0; c < ncuts; c++) {
		e2ee_feed(&e2ee_st, p + a, cuts[c] - a);
		a = cuts[c];
	}
	e2ee_feed(&e2ee_st, p + a, n - a);
	e2ee_finish(&e2ee_st, f);
}

static void facts_same(const struct e2ee_facts *a, const struct e2ee_facts *b)
{
	assert_int_equal(a->size, b->size);
	assert_int_equal(a->parse_error, b->parse_error);
	assert_int_equal(a->encrypted_in, b->encrypted_in);
	assert_int_equal(a->encrypted_out, b->encrypted_out);
	assert_int_equal(a->armor_version, b->armor_version);
	assert_int_equal(a->securejoin, b->securejoin);
	assert_int_equal(a->multipart, b->multipart);
	assert_int_equal(a->parts, b->parts);
	assert_int_equal(a->limits, b->limits);
	assert_string_equal(a->mimetype, b->mimetype);
	assert_string_equal(a->report_type, b->report_type);
	assert_int_equal(a->has_from, b->has_from);
	assert_int_equal(a->from_ok, b->from_ok);
	assert_string_equal(a->from_value, b->from_value);
	assert_string_equal(a->from_addr, b->from_addr);
	assert_int_equal(a->has_subject, b->has_subject);
	assert_int_equal(a->subject_asm, b->subject_asm);
	assert_int_equal(a->asm_header, b->asm_header);
	assert_int_equal(a->has_securejoin, b->has_securejoin);
	assert_int_equal(a->auto_submitted, b->auto_submitted);
	assert_int_equal(a->mailer_daemon, b->mailer_daemon);
	assert_int_equal(a->asm_shape, b->asm_shape);
	assert_int_equal(a->mdn, b->mdn);
	assert_int_equal(a->armor_error, b->armor_error);
	assert_int_equal(a->walk_error, b->walk_error);
	assert_int_equal(a->packets, b->packets);
	assert_memory_equal(a->tags, b->tags, sizeof(a->tags));
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Screen @m every way; the facts of the whole message go to *@f. */
static void screen(const struct bytes *m, struct e2ee_facts *f)
{
	struct e2ee_facts g;
	size_t i, cuts[64], n;
	int r;

	screen_steps(m->p, m->len, NULL, 0, f);
	e2ee_init(&e2ee_st);
	for (i = 0; i < m->len; i++)
		e2ee_feed(&e2ee_st, m->p + i, 1);
	e2ee_finish(&e2ee_st, &g);
	facts_same(f, &g);
	for (r = 0; r < 4; r++) {
		n = 0;
		for (i = 0; i < 64 && m->len > 0; i++) {
			size_t c = (size_t)(rng() % m->len);

			if (n == 0 || c > cuts[n - 1])
				cuts[n++] = c;
		}
		screen_steps(m->p, m->len, cuts, n, &g);
		facts_same(f, &g);
	}
	if (m->len <= 8192) {
		for (i = 1; i < m->len; i++) {
			screen_steps(m->p, m->len, &i, 1, &g);
			facts_same(f, &g);
		}
	}
}

static const char *const to_bob[1] = {BOB};
static const char *const to_alice[1] = {ALICE};
static const char *const to_both[2] = {BOB, ALICE};

/* Verdicts for Alice sending to Bob, and for Bob (enforcing) and an old
 * account (cleartext allowed) receiving it. */
static void expect(const struct e2ee_facts *f, enum e2ee_verdict out,
		   enum e2ee_verdict in_enforcing, enum e2ee_verdict in_open)
{
	assert_int_equal(e2ee_outgoing_allowed(f, ALICE, to_bob, 1), out);
	assert_int_equal(e2ee_incoming_allowed(f, ALICE, BOB, true),
			 in_enforcing);
	assert_int_equal(e2ee_incoming_allowed(f, ALICE, BOB, false), in_open);
}

/* ------------------------------------------------------------------ */
/* Message builders */

struct pgpmime {
	const char *from;        /* From: value */
	const char *ctype;       /* top Content-Type value */
	const char *boundary;    /* delimiters use this */
	const char *p0_hdrs;     /* part 0 header lines */
	const char *p0_body;     /* part 0 body */
	const char *p1_hdrs;     /* part 1 header lines */
	const struct bytes *arm; /* part 1 body */
	bool p1_base64;          /* transfer-encode part 1 in base64 */
	bool p1_qp;              /* ... in quoted-printable */
	const char *extra;       /* a third part (headers, body) */
	const char *preamble;
	const char *epilogue;
	bool no_close; /* no close delimiter */
};

static void b64_encode(struct bytes *out, const uint8_t *p, size_t n)
{
	static const char sym[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
				  "qrstuvwxyz0123456789+/";
	size_t i, col = 0;
	uint32_t q;
	char c[4];

	for (i = 0; i < n; i += 3) {
		q = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			q |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			q |= p[i + 2];
		c[0] = sym[q >> 18 & 63];
		c[1] = sym[q >> 12 & 63];
		c[2] = i + 1 < n ? sym[q >> 6 & 63] : '=';
		c[3] = i + 2 < n ? sym[q & 63] : '=';
		bytes_add(out, c, 4);
		col += 4;
		if (col >= 76) {
			bytes_str(out, "\r\n");
			col = 0;
		}
	}
	bytes_str(out, "\r\n");
}

/* A Delta Chat style PGP/MIME message (fixture encrypted.eml's shape). */
static void make_pgpmime(struct bytes *m, const struct pgpmime *o)
{
	const char *b = o->boundary != NULL ? o->boundary : "Yfrt74qSXmggbOx";

	memset(m, 0, sizeof(*m));
	bytes_printf(
		m,
		"From: %s\r\n"
		"To: " BOB "\r\n"
		"Subject: [...]\r\n"
		"Date: Sun, 15 Oct 2023 16:43:21 +0000\r\n"
		"Message-ID: <Mr.UVyJWZmkCKM.hGzNc6glBE_@example.org>\r\n"
		"Chat-Version: 1.0\r\n"
		"Autocrypt: addr=" ALICE "; prefer-encrypt=mutual;\r\n"
		"\tkeydata=xjMEZSwWjhYJKwYBBAHaRw8BAQdAQBEhqeJh0GueHB6kF/\r\n"
		"\tDUQqYCxARNBVokg/AzT+7LqHrNFzxiYXJiYXpAYzIudGVzdHJ1bi5v\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: %s\r\n"
		"\r\n",
		o->from != NULL ? o->from : ALICE,
		o->ctype != NULL ? o->ctype
				 : "multipart/encrypted; "
				   "protocol=\"application/pgp-encrypted\";\r\n"
				   "\tboundary=\"Yfrt74qSXmggbOx\"");
	bytes_str(m, o->preamble != NULL ? o->preamble : "\r\n");
	bytes_printf(m, "--%s\r\n%s\r\n%s\r\n--%s\r\n%s\r\n", b,
		     o->p0_hdrs != NULL
			     ? o->p0_hdrs
			     : "Content-Description: PGP/MIME version "
			       "identification\r\n"
			       "Content-Type: application/pgp-encrypted\r\n",
		     o->p0_body != NULL ? o->p0_body : "Version: 1\r\n\r\n", b,
		     o->p1_hdrs != NULL
			     ? o->p1_hdrs
			     : "Content-Description: OpenPGP encrypted "
			       "message\r\n"
			       "Content-Disposition: inline; "
			       "filename=\"encrypted.asc\";\r\n"
			       "Content-Type: application/octet-stream; "
			       "name=\"encrypted.asc\"\r\n");
	if (o->p1_base64) {
		b64_encode(m, o->arm->p, o->arm->len);
	} else if (o->p1_qp) {
		for (size_t i = 0; i < o->arm->len; i++) {
			if (o->arm->p[i] == '=')
				bytes_str(m, "=3D");
			else
				bytes_add(m, o->arm->p + i, 1);
		}
	} else
		bytes_add(m, o->arm->p, o->arm->len);
	bytes_str(m, "\r\n");
	if (o->extra != NULL)
		bytes_printf(m, "--%s\r\n%s\r\n", b, o->extra);
	if (!o->no_close)
		bytes_printf(m, "--%s--\r\n", b);
	if (o->epilogue != NULL)
		bytes_str(m, o->epilogue);
}

static void make_plain(struct bytes *m, const char *from, const char *body)
{
	memset(m, 0, sizeof(*m));
	bytes_printf(m,
		     "From: %s\r\n"
		     "To: <" BOB ">\r\n"
		     "Subject: Message from " ALICE "\r\n"
		     "Date: Sun, 15 Oct 2023 16:43:25 +0000\r\n"
		     "Message-ID: <Mr.78MWtlV7RAi.goCFzBhCYfy@example.org>\r\n"
		     "Chat-Version: 1.0\r\n"
		     "MIME-Version: 1.0\r\n"
		     "Content-Type: text/plain; charset=utf-8; format=flowed; "
		     "delsp=no\r\n"
		     "\r\n"
		     "%s",
		     from, body);
}

static void make_securejoin(struct bytes *m, const char *hdr, const char *ctype,
			    const char *body)
{
	memset(m, 0, sizeof(*m));
	bytes_printf(m,
		     "Subject: Message from " ALICE "\r\n"
		     "From: <" ALICE ">\r\n"
		     "To: <" BOB ">\r\n"
		     "Date: Sun, 15 Oct 2023 16:43:25 +0000\r\n"
		     "Message-ID: <Mr.78MWtlV7RAi.goCFzBhCYfy@example.org>\r\n"
		     "Chat-Version: 1.0\r\n"
		     "Secure-Join: %s\r\n"
		     "Secure-Join-Invitenumber: RANDOM-TOKEN\r\n"
		     "MIME-Version: 1.0\r\n"
		     "Content-Type: multipart/mixed; "
		     "boundary=\"Gl92xgZjOShJ5PGH\"\r\n"
		     "\r\n"
		     "\r\n"
		     "--Gl92xgZjOShJ5PGH\r\n"
		     "Content-Type: %s\r\n"
		     "\r\n"
		     "%s\r\n"
		     "\r\n"
		     "--Gl92xgZjOShJ5PGH--\r\n"
		     "\r\n",
		     hdr, ctype, body);
}

static void make_asm(struct bytes *m, const char *subject, const char *ctype)
{
	memset(m, 0, sizeof(*m));
	bytes_printf(
		m,
		"From: " ALICE "\r\n"
		"To: " ALICE "\r\n"
		"Autocrypt-Setup-Message: v1\r\n"
		"Subject: %s\r\n"
		"Date: Tue, 22 Jan 2019 12:56:29 +0100\r\n"
		"Content-type: %s; boundary=\"Y6fyGi9SoGeH8W\"\r\n"
		"\r\n"
		"--Y6fyGi9SoGeH8W\r\n"
		"Content-Type: text/plain\r\n"
		"\r\n"
		"This message contains all information to transfer your "
		"Autocrypt\r\n"
		"settings along with your secret key securely.\r\n"
		"--Y6fyGi9SoGeH8W\r\n"
		"Content-Type: application/autocrypt-setup\r\n"
		"Content-Disposition: attachment; "
		"filename=\"autocrypt-setup-message.html\"\r\n"
		"\r\n"
		"<html><body>\r\n<p>This is the Autocrypt setup file.</p>\r\n"
		"<pre>\r\n",
		subject, ctype);
	/* The passphrase-encrypted key: SKESK SEIPD. */
	bytes_add(m, arm_sym.p, 29);
	bytes_str(m,
		  "Passphrase-Format: numeric9x4\r\nPassphrase-Begin: 17\r\n");
	bytes_add(m, arm_sym.p + 29, arm_sym.len - 29);
	bytes_str(m, "</pre></body></html>\r\n--Y6fyGi9SoGeH8W--\r\n");
}

static void make_report(struct bytes *m, const char *from,
			const char *auto_submitted, const char *report_type)
{
	memset(m, 0, sizeof(*m));
	bytes_printf(m,
		     "Date: Fri, 8 Jul 1994 09:21:47 -0400\r\n"
		     "From: %s\r\n"
		     "Subject: Returned mail: User unknown\r\n"
		     "To: <" BOB ">\r\n"
		     "%s%s%s"
		     "MIME-Version: 1.0\r\n"
		     "Content-Type: multipart/report; report-type=%s;\r\n"
		     "      boundary=\"JAA13167.773673707/EXAMPLE.ORG\"\r\n"
		     "\r\n"
		     "--JAA13167.773673707/EXAMPLE.ORG\r\n"
		     "content-type: text/plain; charset=us-ascii\r\n"
		     "\r\n"
		     "   ----- The following addresses had delivery problems "
		     "-----\r\n"
		     "<nobody@example.net>  (unrecoverable error)\r\n"
		     "\r\n"
		     "--JAA13167.773673707/EXAMPLE.ORG\r\n"
		     "content-type: message/%s\r\n"
		     "\r\n"
		     "Reporting-MTA: dns; example.org\r\n"
		     "\r\n"
		     "Final-Recipient: rfc822;nobody@example.net\r\n"
		     "Action: failed\r\n"
		     "Status: 5.0.0\r\n"
		     "Diagnostic-Code: smtp;\r\n"
		     " 550 user unknown\r\n"
		     "\r\n"
		     "--JAA13167.773673707/EXAMPLE.ORG\r\n"
		     "content-type: message/rfc822\r\n"
		     "\r\n"
		     "[original message goes here]\r\n"
		     "--JAA13167.773673707/EXAMPLE.ORG--\r\n",
		     from, auto_submitted != NULL ? "Auto-Submitted: " : "",
		     auto_submitted != NULL ? auto_submitted : "",
		     auto_submitted != NULL ? "\r\n" : "", report_type,
		     strcmp(report_type, "delivery-status") == 0
			     ? "delivery-status"
			     : "disposition-notification");
}

/* ------------------------------------------------------------------ */
/* Fixture cases of spec M.5 */

static void test_fixture_encrypted(void **state)
{
	struct pgpmime o = {.arm = &arm_two};
	struct e2ee_facts f;
	struct bytes m;

	(void)state;
	make_pgpmime(&m, &o);
	screen(&m, &f);
	assert_false(f.parse_error);
	assert_true(f.encrypted_in);
	assert_true(f.encrypted_out);
	assert_true(f.multipart);
	assert_int_equal(f.parts, 2);
	assert_string_equal(f.mimetype, "multipart/encrypted");
	assert_string_equal(f.from_addr, ALICE);
	assert_int_equal(f.packets, 3);
	assert_int_equal(f.tags[0], OPENPGP_TAG_PKESK);
	assert_int_equal(f.tags[1], OPENPGP_TAG_PKESK);
	assert_int_equal(f.tags[2], OPENPGP_TAG_SEIPD);
	expect(&f, E2EE_ALLOW_ENCRYPTED, E2EE_ALLOW_ENCRYPTED,
	       E2EE_ALLOW_ENCRYPTED);
	assert_int_equal(e2ee_outgoing_allowed(&f, ALICE, to_both, 2),
			 E2EE_ALLOW_ENCRYPTED);
	bytes_free(&m);
	/* Symmetric (SKESK SEIPD) passes the same way. */
	o.arm = &arm_sym;
	make_pgpmime(&m, &o);
	screen(&m, &f);
	assert_true(f.encrypted_out);
	assert_int_equal(f.tags[0], OPENPGP_TAG_SKESK);
	bytes_free(&m);
}

static void test_fixture_fake_encrypted(void **state)
{
	struct e2ee_facts f;
	struct bytes m;

	(void)state;
	make_plain(&m, "<" ALICE ">",
		   "-----BEGIN PGP MESSAGE-----\r\n"
		   "Hi!\r\n"
		   "-----END PGP MESSAGE-----\r\n");
	screen(&m, &f);
	assert_false(f.encrypted_in);
	assert_false(f.multipart);
	assert_string_equal(f.mimetype, "text/plain");
	expect(&f, E2EE_DENY_UNENCRYPTED, E2EE_DENY_UNENCRYPTED,
	       E2EE_ALLOW_CLEARTEXT);
	bytes_free(&m);
}

static void test_fixture_literal(void **state)
{
	struct pgpmime o = {.arm = &arm_literal};
	struct e2ee_facts f;
	struct bytes m;

	(void)state;
	make_pgpmime(&m, &o);
	screen(&m, &f);
	assert_false(f.encrypted_in);
	assert_true(f.multipart);
	assert_int_equal(f.armor_error, OPENPGP_ARMOR_ERR_PACKETS);
	assert_int_equal(f.walk_error, OPENPGP_WALK_ERR_LAST_TAG);
	assert_int_equal(f.tags[0], OPENPGP_TAG_LIT);
	expect(&f, E2EE_DENY_UNENCRYPTED, E2EE_DENY_UNENCRYPTED,
	       E2EE_ALLOW_CLEARTEXT);
	bytes_free(&m);
}

static void test_fixture_plain(void **state)
{
	struct e2ee_facts f;
	struct bytes m;

	(void)state;
	make_plain(&m, "<" ALICE ">", "Hi!\r\n");
	screen(&m, &f);
	assert_false(f.encrypted_in);
	assert_false(f.securejoin);
	assert_true(f.from_ok);
	expect(&f, E2EE_DENY_UNENCRYPTED, E2EE_DENY_UNENCRYPTED,
	       E2EE_ALLOW_CLEARTEXT);
	bytes_free(&m);
}

static void test_fixture_asm(void **state)
{
	struct e2ee_facts f;
	struct bytes m;

	(void)state;
	make_asm(&m, "Autocrypt Setup Message", "multipart/mixed");
	screen(&m, &f);
	assert_false(f.encrypted_in);
	assert_true(f.asm_header);
	assert_true(f.subject_asm);
	assert_true(f.asm_shape);
	assert_int_equal(f.parts, 2);
	/* Only self-sent to exactly one recipient. */
	assert_int_equal(e2ee_outgoing_allowed(&f, ALICE, to_alice, 1),
			 E2EE_ALLOW_ASM);
	assert_int_equal(
		e2ee_outgoing_allowed(&f, "Alice@Example.org", to_alice, 1),
		E2EE_ALLOW_ASM);
	assert_int_equal(e2ee_outgoing_allowed(&f, ALICE, to_both, 2),
			 E2EE_DENY_UNENCRYPTED);
	assert_int_equal(e2ee_outgoing_allowed(&f, ALICE, to_bob, 1),
			 E2EE_DENY_UNENCRYPTED);
	expect(&f, E2EE_DENY_UNENCRYPTED, E2EE_DENY_UNENCRYPTED,
	       E2EE_ALLOW_CLEARTEXT);
	bytes_free(&m);
	/* The Subject must be exact, the type multipart/mixed. */
	make_asm(&m, "Autocrypt Setup Message ", "multipart/mixed");
	screen(&m, &f);
	assert_int_equal(e2ee_outgoing_allowed(&f, ALICE, to_alice, 1),
			 E2EE_DENY_UNENCRYPTED);
	bytes_free(&m);
	make_asm(&m, "autocrypt setup message", "multipart/mixed");
	screen(&m, &f);
	assert_false(f.subject_asm);
	bytes_free(&m);
	make_asm(&m, "Autocrypt Setup Message", "Multipart/Mixed");
	screen(&m, &f);
	assert_int_equal(e2ee_outgoing_allowed(&f, ALICE, to_alice, 1),
			 E2EE_ALLOW_ASM);
	bytes_free(&m);
	make_asm(&m, "Autocrypt Setup Message", "multipart/alternative");
	screen(&m, &f);
	assert_int_equal(e2ee_outgoing_allowed(&f, ALICE, to_alice, 1),
			 E2EE_DENY_UNENCRYPTED);
	bytes_free(&m);
	/* A folded Subject unfolds with one space. */
	make_asm(&m, "Autocrypt\r\n   Setup Message", "multipart/mixed");
	screen(&m, &f);
	assert_true(f.subject_asm);
	bytes_free(&m);
}

static void test_fixture_mailer_daemon(void **state)
{
	struct e2ee_facts f;
	struct bytes m;

	(void)state;
	make_report(&m, "Mail Delivery Subsystem <MAILER-DAEMON@example.org>",
		    "auto-replied ", "delivery-status");
	screen(&m, &f);
	assert_true(f.mailer_daemon);
	assert_true(f.auto_submitted);
	assert_int_equal(f.parts, 3);
	assert_string_equal(f.from_addr, "mailer-daemon@example.org");
	assert_string_equal(f.report_type, "delivery-status");
	assert_int_equal(e2ee_incoming_allowed(&f, "", BOB, true),
			 E2EE_ALLOW_MAILER_DAEMON);
	assert_int_equal(e2ee_incoming_allowed(&f, "", BOB, false),
			 E2EE_ALLOW_MAILER_DAEMON);
	assert_true(e2ee_incoming_resets_sender(&f, ""));
	assert_false(
		e2ee_incoming_resets_sender(&f, "mailer-daemon@EXAMPLE.org"));
	/* Outgoing it is just cleartext. */
	assert_int_equal(e2ee_outgoing_allowed(&f, "mailer-daemon@example.org",
					       to_bob, 1),
			 E2EE_DENY_UNENCRYPTED);
	bytes_free(&m);
	/* Each condition is needed. */
	make_report(&m, "Mail Delivery Subsystem <MAILER-DAEMON@example.org>",
		    NULL, "delivery-status");
	screen(&m, &f);
	assert_false(f.mailer_daemon);
	assert_int_equal(e2ee_incoming_allowed(&f, "", BOB, true),
			 E2EE_DENY_UNENCRYPTED);
	bytes_free(&m);
	make_report(&m, "Mail Delivery Subsystem <MAILER-DAEMON@example.org>",
		    "", "delivery-status");
	screen(&m, &f);
	assert_false(f.mailer_daemon);
	bytes_free(&m);
	make_report(&m, "Postmaster <postmaster@example.org>", "auto-replied",
		    "delivery-status");
	screen(&m, &f);
	assert_false(f.mailer_daemon);
	bytes_free(&m);
}

static void test_fixture_mdn(void **state)
{
	struct e2ee_facts f;
	struct bytes m;

	(void)state;
	make_report(&m, "<" ALICE ">", "auto-replied",
		    "disposition-notification");
	screen(&m, &f);
	assert_true(f.mdn);
	assert_true(f.auto_submitted);
	assert_false(f.mailer_daemon);
	expect(&f, E2EE_DENY_UNENCRYPTED, E2EE_DENY_UNENCRYPTED,
	       E2EE_ALLOW_CLEARTEXT);
	bytes_free(&m);
}

static void test_fixture_securejoin(void **state)
{
	struct e2ee_facts f;
	struct bytes m;

	(void)state;
	make_securejoin(&m, "vc-request", "text/plain; charset=utf-8",
			"Secure-Join: vc-request");
	screen(&m, &f);
	assert_true(f.securejoin);
	assert_true(f.has_securejoin);
	assert_int_equal(f.parts, 1);
	expect(&f, E2EE_ALLOW_SECUREJOIN, E2EE_ALLOW_SECUREJOIN,
	       E2EE_ALLOW_SECUREJOIN);
	bytes_free(&m);
	make_securejoin(&m, "vg-request", "text/plain",
			"  secure-join: VG-REQUEST\r\n\t");
	screen(&m, &f);
	assert_true(f.securejoin);
	bytes_free(&m);
	/* The header is compared exactly. */
	make_securejoin(&m, "VC-request", "text/plain",
			"Secure-Join: vc-request");
	screen(&m, &f);
	assert_false(f.securejoin);
	bytes_free(&m);
	make_securejoin(&m, "vc-request ", "text/plain",
			"Secure-Join: vc-request");
	screen(&m, &f);
	assert_false(f.securejoin);
	bytes_free(&m);
	make_securejoin(&m, "vc-auth", "text/plain", "Secure-Join: vc-auth");
	screen(&m, &f);
	assert_false(f.securejoin);
	bytes_free(&m);
	make_securejoin(&m, "vc-request", "text/html",
			"Secure-Join: vc-request");
	screen(&m, &f);
	assert_false(f.securejoin);
	bytes_free(&m);
	/* Base64 transfer encoding is decoded. */
	make_securejoin(&m, "vc-request",
			"text/plain\r\nContent-Transfer-Encoding: base64",
			"U2VjdXJlLUpvaW46IHZjLXJlcXVlc3Q=");
	screen(&m, &f);
	assert_true(f.securejoin);
	bytes_free(&m);
	/* ...only when the whole value says base64: with a NUL octet after
	 * it (found by fuzz_e2ee), mailparse reads the body as it is. */
	{
		uint8_t *at;

		make_securejoin(&m, "vc-request",
				"text/plain\r\nContent-Transfer-Encoding: "
				"base64@x",
				"U2VjdXJlLUpvaW46IHZjLXJlcXVlc3Q=");
		at = memmem(m.p, m.len, "base64@x", 8);
		assert_non_null(at);
		at[6] = '\0';
		screen(&m, &f);
		assert_false(f.securejoin);
		bytes_free(&m);
	}
}

static void test_fixture_securejoin_fake(void **state)
{
	struct e2ee_facts f;
	struct bytes m;

	(void)state;
	make_securejoin(&m, "vc-request", "text/plain; charset=utf-8",
			"Buy viagra!");
	screen(&m, &f);
	assert_false(f.securejoin);
	expect(&f, E2EE_DENY_UNENCRYPTED, E2EE_DENY_UNENCRYPTED,
	       E2EE_ALLOW_CLEARTEXT);
	bytes_free(&m);
	make_securejoin(&m, "vc-request", "text/plain",
			"Secure-Join: vc-request and more");
	screen(&m, &f);
	assert_false(f.securejoin);
	bytes_free(&m);
}

/* ------------------------------------------------------------------ */
/* Armor Version: header, From rules, parse errors */

static void test_armor_version(void **state)
{
	struct pgpmime o = {0};
	struct bytes arm = {0}, m;
	struct e2ee_facts f;

	(void)state;
	bytes_add(&arm, arm_one.p, 29);
	bytes_str(&arm, "Version: ProtonMail\r\n");
	bytes_add(&arm, arm_one.p + 29, arm_one.len - 29);
	o.arm = &arm;
	make_pgpmime(&m, &o);
	screen(&m, &f);
	assert_true(f.encrypted_in);
	assert_false(f.encrypted_out);
	assert_true(f.armor_version);
	expect(&f, E2EE_DENY_UNENCRYPTED, E2EE_ALLOW_ENCRYPTED,
	       E2EE_ALLOW_ENCRYPTED);
	bytes_free(&m);
	bytes_free(&arm);
	/* Any other armor header fails both ways. */
	bytes_add(&arm, arm_one.p, 29);
	bytes_str(&arm, "Comment: hello\r\n");
	bytes_add(&arm, arm_one.p + 29, arm_one.len - 29);
	make_pgpmime(&m, &o);
	screen(&m, &f);
	assert_false(f.encrypted_in);
	assert_int_equal(f.armor_error, OPENPGP_ARMOR_ERR_BASE64);
	bytes_free(&m);
	bytes_free(&arm);
}

static void test_from_rules(void **state)
{
	static const struct {
		const char *in, *out;
	} addrs[] = {
		{"MAIL FROM:<t1@example.org>", "t1@example.org"},
		{"MAIL FROM:<t2@example.org> SOMETHING=SOMETHING",
		 "t2@example.org"},
		{"MAIL FROM:<SRS1=HHH=example.com==HHH=TT=example.org="
		 "alice@example.net> abc=def",
		 "srs1=hhh=example.com==hhh=tt=example.org=alice@example.net"},
		{"RCPT TO:<t3@example.org>", "t3@example.org"},
		{"Foo Bar <t5@example.org>", "t5@example.org"},
		{"t6@example.org", "t6@example.org"},
		{"  \"Bar, Foo\" <T7@Example.ORG> (comment)", "t7@example.org"},
		{"friends: a@example.org, b@example.org;", "a@example.org"},
		{"t8@example.org (Tee Eight)", "t8@example.org"},
		{"a@example.org, b@example.org", "a@example.org"},
		{"=?utf-8?q?M=C3=BCller=2C_H?= <h@example.org>",
		 "h@example.org"},
		{"", NULL},
		{"undisclosed-recipients:;", NULL},
		{"undisclosed-recipients:", NULL},
		{"Foo Bar", NULL},
		{"a@example.org, bob", NULL},
		{"<nobody>", NULL},
		{"\"unterminated <x@example.org>", NULL},
		{"<x@example.org> junk", "x@example.org"},
		{"x@example.org; y", NULL},
	};
	char out[E2EE_ADDR_MAX + 1];
	struct e2ee_facts f;
	struct bytes m;
	size_t i;
	int r;

	(void)state;
	for (i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		r = mime_addr_extract(addrs[i].in, strlen(addrs[i].in), out,
				      sizeof(out));
		if (addrs[i].out == NULL) {
			assert_int_equal(r, -1);
		} else {
			assert_int_equal(r, (int)strlen(addrs[i].out));
			assert_string_equal(out, addrs[i].out);
		}
	}
	/* Outgoing: From must be MAIL FROM (case aside). */
	make_plain(&m, "Alice <Alice@Example.ORG>", "Hi!\r\n");
	screen(&m, &f);
	assert_string_equal(f.from_value, "Alice <Alice@Example.ORG>");
	assert_string_equal(f.from_addr, ALICE);
	assert_int_equal(
		e2ee_outgoing_allowed(&f, "ALICE@example.org", to_bob, 1),
		E2EE_DENY_UNENCRYPTED);
	assert_int_equal(
		e2ee_outgoing_allowed(&f, "mallory@example.org", to_bob, 1),
		E2EE_DENY_FROM_MISMATCH);
	/* Incoming: a different sender is reset, not refused. */
	assert_true(e2ee_incoming_resets_sender(&f, "srs0=x@example.net"));
	assert_false(e2ee_incoming_resets_sender(&f, "alice@EXAMPLE.org"));
	assert_int_equal(
		e2ee_incoming_allowed(&f, "srs0=x@example.net", BOB, false),
		E2EE_ALLOW_CLEARTEXT);
	bytes_free(&m);
	/* No usable From. */
	make_plain(&m, "undisclosed-recipients:;", "Hi!\r\n");
	screen(&m, &f);
	assert_true(f.has_from);
	assert_false(f.from_ok);
	expect(&f, E2EE_DENY_FROM_HEADER, E2EE_DENY_FROM_HEADER,
	       E2EE_DENY_FROM_HEADER);
	bytes_free(&m);
	memset(&m, 0, sizeof(m));
	bytes_str(&m, "To: " BOB "\r\nSubject: x\r\n\r\nHi!\r\n");
	screen(&m, &f);
	assert_false(f.has_from);
	expect(&f, E2EE_DENY_FROM_HEADER, E2EE_DENY_FROM_HEADER,
	       E2EE_DENY_FROM_HEADER);
	bytes_free(&m);
	/* The first From counts; folded, it unfolds. */
	memset(&m, 0, sizeof(m));
	bytes_str(&m, "From: Alice\r\n <" ALICE ">\r\nFrom: " BOB
		      "\r\n\r\nHi!\r\n");
	screen(&m, &f);
	assert_string_equal(f.from_value, "Alice <" ALICE ">");
	assert_string_equal(f.from_addr, ALICE);
	bytes_free(&m);
	/* A NUL in the address: no C string can hold it, no address. */
	memset(&m, 0, sizeof(m));
	bytes_add(&m, "From: <" ALICE "\0@evil.example>\r\n\r\nHi!\r\n", 48);
	screen(&m, &f);
	assert_true(f.has_from);
	assert_false(f.from_ok);
	bytes_free(&m);
	/* A line without ":" is a field with an empty value: with LF
	 * only, "Content-Type" is one (an empty type, not text/plain). */
	memset(&m, 0, sizeof(m));
	bytes_str(&m, "From: " ALICE "\nContent-Type\nContent-Type: x/y\n\n");
	screen(&m, &f);
	assert_string_equal(f.mimetype, "");
	bytes_free(&m);
	memset(&m, 0, sizeof(m));
	bytes_str(&m, "From: " ALICE "\r\nContent-Type\r\nContent-Type: x/y"
		      "\r\n\r\n");
	screen(&m, &f);
	assert_string_equal(f.mimetype, "x/y");
	bytes_free(&m);
	/* "From :" is another field for mailparse. */
	memset(&m, 0, sizeof(m));
	bytes_str(&m, "From : " ALICE "\r\n\r\nHi!\r\n");
	screen(&m, &f);
	assert_false(f.has_from);
	bytes_free(&m);
	/* Encrypted but forged From is refused before the verdict. */
	{
		struct pgpmime o = {.arm = &arm_two,
				    .from = "mallory@example.org"};

		make_pgpmime(&m, &o);
		screen(&m, &f);
		assert_true(f.encrypted_out);
		assert_int_equal(e2ee_outgoing_allowed(&f, ALICE, to_bob, 1),
				 E2EE_DENY_FROM_MISMATCH);
		assert_int_equal(e2ee_incoming_allowed(&f, ALICE, BOB, true),
				 E2EE_ALLOW_ENCRYPTED);
		assert_true(e2ee_incoming_resets_sender(&f, ALICE));
		bytes_free(&m);
	}
}

static void test_recipient_rules(void **state)
{
	struct e2ee_facts f;
	struct bytes m;

	(void)state;
	make_plain(&m, ALICE, "Hi!\r\n");
	screen(&m, &f);
	assert_int_equal(e2ee_incoming_allowed(&f, ALICE, "", false),
			 E2EE_DENY_UNENCRYPTED);
	assert_int_equal(e2ee_incoming_allowed(&f, ALICE, "bob", false),
			 E2EE_DENY_UNENCRYPTED);
	assert_int_equal(
		e2ee_incoming_allowed(&f, ALICE, "../x@example.org", false),
		E2EE_DENY_UNENCRYPTED);
	assert_int_equal(e2ee_incoming_allowed(&f, ALICE, NULL, false),
			 E2EE_DENY_UNENCRYPTED);
	assert_true(e2ee_verdict_allowed(E2EE_ALLOW_CLEARTEXT));
	assert_false(e2ee_verdict_allowed(E2EE_DENY_UNENCRYPTED));
	assert_string_equal(e2ee_verdict_str(E2EE_DENY_UNENCRYPTED),
			    "unencrypted");
	bytes_free(&m);
}

static void test_parse_errors(void **state)
{
	static const char *const bad[] = {
		/* A header section may not start with a space. */
		" From: " ALICE "\r\n\r\nHi!\r\n",
		/* Nor a field follow a line without ":" with one. */
		"From: " ALICE "\r\nGarbage\r\n Folded: x\r\n\r\nHi!\r\n",
		/* A lone CR where a field would start. */
		"From: " ALICE "\r\n\rX: y\r\n\r\nHi!\r\n",
		"From: " ALICE "\r\n\r",
		/* The same inside a part. */
		"From: " ALICE "\r\nContent-Type: multipart/mixed; "
		"boundary=b\r\n\r\n--b\r\n Content-Type: text/plain\r\n\r\n"
		"x\r\n--b--\r\n",
	};
	static const char *const good[] = {
		/* A tab is not a space here; a lone CR inside a value is
		 * text; a line without ":" is a field. */
		"\tX: y\r\nFrom: " ALICE "\r\n\r\nHi!\r\n",
		"From: " ALICE "\r\nX: a\rb\r\nGarbage\r\n\r\nHi!\r\n",
		/* No body at all. */
		"From: " ALICE "\r\n",
		"From: " ALICE,
		/* A part header after a part boundary line at the end. */
		"From: " ALICE "\r\nContent-Type: multipart/mixed; "
		"boundary=b\r\n\r\n--b\r\n",
	};
	struct e2ee_facts f;
	struct bytes m;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&m, 0, sizeof(m));
		bytes_str(&m, bad[i]);
		screen(&m, &f);
		assert_true(f.parse_error);
		assert_false(f.encrypted_in);
		expect(&f, E2EE_DENY_PARSE, E2EE_DENY_PARSE, E2EE_DENY_PARSE);
		bytes_free(&m);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		memset(&m, 0, sizeof(m));
		bytes_str(&m, good[i]);
		screen(&m, &f);
		assert_false(f.parse_error);
		assert_string_equal(f.from_addr, ALICE);
		bytes_free(&m);
	}
}

/* ------------------------------------------------------------------ */
/* MIME shapes */

static bool shape_encrypted(const struct pgpmime *o)
{
	struct e2ee_facts f;
	struct bytes m;

	make_pgpmime(&m, o);
	screen(&m, &f);
	assert_false(f.parse_error);
	assert_int_equal(f.encrypted_in, f.encrypted_out);
	bytes_free(&m);
	return f.encrypted_in;
}

static void test_shapes_accepted(void **state)
{
	struct pgpmime o = {.arm = &arm_one};

	(void)state;
	assert_true(shape_encrypted(&o));
	/* Type and parameters in any case; boundary unquoted, folded. */
	o.ctype = "Multipart/ENCRYPTED; BOUNDARY=Yfrt74qSXmggbOx";
	assert_true(shape_encrypted(&o));
	o.ctype = "multipart/encrypted;\r\n boundary=\r\n \"Yfrt74qSXmggbOx\"";
	assert_true(shape_encrypted(&o));
	/* A later boundary parameter wins; protocol= is not checked. */
	o.ctype = "multipart/encrypted; boundary=zzz; protocol=foo; "
		  "boundary=Yfrt74qSXmggbOx";
	assert_true(shape_encrypted(&o));
	o.ctype = NULL;
	/* Preamble, epilogue, no close delimiter. */
	o.preamble = "This is an OpenPGP/MIME encrypted message.\r\n";
	o.epilogue = "epilogue --Yfrt74qSXmggbOx\r\n";
	assert_true(shape_encrypted(&o));
	o.preamble = o.epilogue = NULL;
	o.no_close = true;
	assert_true(shape_encrypted(&o));
	o.no_close = false;
	/* A delimiter line is one that starts with the boundary. */
	o.boundary = "Yfrt74qSXmggbOx trailing junk";
	o.no_close = true;
	assert_true(shape_encrypted(&o));
	/* ... so "--<boundary> trailing junk--" is no close delimiter:
	 * an empty third part. */
	o.no_close = false;
	assert_false(shape_encrypted(&o));
	o.boundary = NULL;
	/* "Version: 1" trimmed; type names in any case. */
	o.p0_body = " \t\r\nVersion: 1 \r\n\r\n\r\n";
	assert_true(shape_encrypted(&o));
	o.p0_body = NULL;
	o.p0_hdrs = "Content-Type: Application/PGP-Encrypted\r\n";
	o.p1_hdrs = "content-type: APPLICATION/octet-stream\r\n";
	assert_true(shape_encrypted(&o));
	/* The payload in base64 or quoted-printable transfer encoding. */
	/* Each of the three gpg outputs (random every run; the CRC line
	 * starts with "=" and two hex digits now and then, which a
	 * quoted-printable decoder would eat if it were not "=3D"). */
	for (int k = 0; k < 3; k++) {
		o.arm = k == 0 ? &arm_one : (k == 1 ? &arm_two : &arm_sym);
		o.p1_hdrs = "Content-Type: application/octet-stream\r\n"
			    "Content-Transfer-Encoding: BASE64\r\n";
		o.p1_base64 = true;
		assert_true(shape_encrypted(&o));
		o.p1_base64 = false;
		o.p1_hdrs = "Content-Type: application/octet-stream\r\n"
			    "Content-Transfer-Encoding: quoted-printable\r\n";
		o.p1_qp = true;
		assert_true(shape_encrypted(&o));
		o.p1_qp = false;
	}
	o.arm = &arm_one;
	o.p1_hdrs = "Content-Type: application/octet-stream\r\n"
		    "Content-Transfer-Encoding: 7bit\r\n";
	assert_true(shape_encrypted(&o));
	/* Version part in quoted-printable with a soft break. */
	o.p0_hdrs = "Content-Type: application/pgp-encrypted\r\n"
		    "Content-Transfer-Encoding: quoted-printable\r\n";
	o.p0_body = "Version:=201=\r\n\r\n";
	assert_true(shape_encrypted(&o));
	/* The big one: ~1 MiB with partial body lengths. */
	o.p0_hdrs = o.p0_body = o.p1_hdrs = NULL;
	o.arm = &arm_big;
	assert_true(shape_encrypted(&o));
}

static void test_shapes_refused(void **state)
{
	struct pgpmime o = {.arm = &arm_one};
	struct bytes bad = {0};

	(void)state;
	/* A third part; the version part alone (stricter than upstream). */
	o.extra = "Content-Type: text/plain\r\n\r\nhello\r\n";
	assert_false(shape_encrypted(&o));
	o.extra = NULL;
	{
		struct bytes m = {0};
		struct e2ee_facts f;

		bytes_str(&m, "From: " ALICE "\r\nContent-Type: "
			      "multipart/encrypted; boundary=b\r\n\r\n"
			      "--b\r\nContent-Type: application/pgp-encrypted"
			      "\r\n\r\nVersion: 1\r\n--b--\r\n");
		screen(&m, &f);
		assert_int_equal(f.parts, 1);
		assert_false(f.encrypted_in);
		bytes_free(&m);
	}
	/* Delimiters that are not the boundary: no parts. */
	o.boundary = "other";
	assert_false(shape_encrypted(&o));
	o.boundary = NULL;
	/* Parts swapped or mistyped. */
	o.p0_hdrs = "Content-Type: application/octet-stream\r\n";
	assert_false(shape_encrypted(&o));
	o.p0_hdrs = "Content-Type: text/plain\r\n";
	assert_false(shape_encrypted(&o));
	o.p0_hdrs = NULL;
	o.p1_hdrs = "Content-Type: text/plain\r\n";
	assert_false(shape_encrypted(&o));
	o.p1_hdrs = "Content-Type: application/pgp-encrypted\r\n";
	assert_false(shape_encrypted(&o));
	o.p1_hdrs = NULL;
	o.p0_body = "Version: 2\r\n";
	assert_false(shape_encrypted(&o));
	o.p0_body = "Version:  1\r\n";
	assert_false(shape_encrypted(&o));
	o.p0_body = "";
	assert_false(shape_encrypted(&o));
	o.p0_body = NULL;
	/* Not multipart/encrypted, or no boundary. */
	o.ctype = "multipart/mixed; boundary=\"Yfrt74qSXmggbOx\"";
	assert_false(shape_encrypted(&o));
	o.ctype = "multipart/encrypted";
	assert_false(shape_encrypted(&o));
	o.ctype = "multipart/encrypted; boundary*0=Yfrt74qSXmggbOx";
	assert_false(shape_encrypted(&o));
	o.ctype = "application/pgp-encrypted; boundary=Yfrt74qSXmggbOx";
	assert_false(shape_encrypted(&o));
	o.ctype = NULL;
	/* A nested multipart as the payload part. */
	o.p1_hdrs = "Content-Type: multipart/mixed; boundary=inner\r\n";
	o.arm = &bad;
	bytes_str(&bad, "--inner\r\nContent-Type: application/octet-stream"
			"\r\n\r\n");
	bytes_add(&bad, arm_one.p, arm_one.len);
	bytes_str(&bad, "\r\n--inner--\r\n");
	assert_false(shape_encrypted(&o));
	o.p1_hdrs = NULL;
	/* Bad base64 transfer encoding of the payload. */
	bad.len = 0;
	bytes_add(&bad, arm_one.p, arm_one.len);
	o.arm = &bad;
	o.p1_hdrs = "Content-Type: application/octet-stream\r\n"
		    "Content-Transfer-Encoding: base64\r\n";
	assert_false(shape_encrypted(&o));
	o.p1_hdrs = NULL;
	/* The payload with a line of text after it. */
	bytes_str(&bad, "P.S. hello\r\n");
	assert_false(shape_encrypted(&o));
	bytes_free(&bad);
	o.arm = &arm_one;
	/* Encrypted inside a multipart/mixed. */
	{
		struct bytes m, inner;
		struct e2ee_facts f;

		make_pgpmime(&inner, &o);
		memset(&m, 0, sizeof(m));
		bytes_str(&m,
			  "From: " ALICE "\r\nContent-Type: multipart/mixed;"
			  " boundary=outer\r\n\r\n--outer\r\n");
		bytes_add(&m, inner.p, inner.len);
		bytes_str(&m, "--outer--\r\n");
		screen(&m, &f);
		assert_false(f.encrypted_in);
		assert_int_equal(f.parts, 1);
		bytes_free(&m);
		bytes_free(&inner);
	}
}

/* The CRLF before a delimiter belongs to it; an enclosing boundary ends
 * the inner parts; an empty part. */
static void test_shapes_boundaries(void **state)
{
	static const struct {
		const char *body;
		uint32_t parts;
	} cases[] = {
		{"--b\r\n\r\nA\r\n--b\r\n\r\nB\r\n--b--\r\n", 2},
		{"--b\r\n--b\r\n--b--", 2},
		/* Only after a part is "--" a close delimiter. */
		{"--b--\r\n\r\nA\r\n--b--\r\n", 1},
		/* No part after "--b" LF at the very end, one after CRLF. */
		{"--b\r\n\r\nA\r\n--b\n", 1},
		{"--b\r\n\r\nA\r\n--b\r\n", 2},
		{"--b\r\n\r\nA\r\n--b", 1},
		{"--b\r\n\r\nA\r\n--bX\r\n\r\nB\r\n", 2},
		/* An inner multipart ended by the outer boundary. */
		{"--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n"
		 "--c\r\n\r\nx\r\n--b\r\n\r\nB\r\n--b--\r\n",
		 2},
		/* A boundary that is a prefix of an inner one cuts first:
		 * "--bb" lines are "--b" delimiters. */
		{"--b\r\nContent-Type: multipart/mixed; boundary=bb\r\n\r\n"
		 "--bb\r\n\r\nx\r\n--bb--\r\n--b--\r\n",
		 3},
		{"preamble\r\n--b\r\n\r\nA\r\n--b--\r\nepilogue\r\n--b\r\n", 1},
		{"no delimiter at all\r\n", 0},
		/* LF only. */
		{"--b\n\nA\n--b\n\nB\n--b--\n", 2},
	};
	struct e2ee_facts f;
	struct bytes m;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&m, 0, sizeof(m));
		bytes_str(&m,
			  "From: " ALICE "\r\nContent-Type: multipart/mixed; "
			  "boundary=b\r\n\r\n");
		bytes_str(&m, cases[i].body);
		screen(&m, &f);
		if (f.parts != cases[i].parts)
			fprintf(stderr, "case %zu: %u parts\n", i, f.parts);
		assert_int_equal(f.parts, cases[i].parts);
		bytes_free(&m);
	}
}

static void test_lf_only(void **state)
{
	struct pgpmime o = {.arm = &arm_one};
	struct e2ee_facts f;
	struct bytes m;

	(void)state;
	/* The armor needs CRLF after BEGIN: an LF message is not
	 * encrypted (filtermail sees the same octets). */
	make_pgpmime(&m, &o);
	bytes_crlf(&m, false);
	screen(&m, &f);
	assert_true(f.multipart);
	assert_int_equal(f.parts, 2);
	assert_false(f.encrypted_in);
	assert_int_equal(f.armor_error, OPENPGP_ARMOR_ERR_BEGIN);
	assert_string_equal(f.from_addr, ALICE);
	bytes_free(&m);
	/* Everything else reads the same with LF. */
	make_securejoin(&m, "vc-request", "text/plain",
			"Secure-Join: vc-request");
	bytes_crlf(&m, false);
	screen(&m, &f);
	assert_true(f.securejoin);
	bytes_free(&m);
	make_asm(&m, "Autocrypt Setup Message", "multipart/mixed");
	bytes_crlf(&m, false);
	screen(&m, &f);
	assert_true(f.asm_shape);
	assert_int_equal(f.parts, 2);
	bytes_free(&m);
}

/* ------------------------------------------------------------------ */
/* Limits */

static void test_limits(void **state)
{
	struct pgpmime o = {.arm = &arm_one};
	struct e2ee_facts f;
	struct bytes m = {0}, s = {0};
	int i;

	(void)state;
	/* Nesting deeper than E2EE_DEPTH_MAX. */
	bytes_str(&m, "From: " ALICE "\r\n");
	for (i = 0; i < E2EE_DEPTH_MAX + 4; i++)
		bytes_printf(&m,
			     "Content-Type: multipart/mixed; boundary=l%02d\r\n"
			     "\r\n--l%02d\r\n",
			     i, i);
	bytes_str(&m, "Content-Type: text/plain\r\n\r\ndeep\r\n");
	for (i = E2EE_DEPTH_MAX + 3; i >= 0; i--)
		bytes_printf(&m, "--l%02d--\r\n", i);
	screen(&m, &f);
	assert_true((f.limits & E2EE_LIMIT_DEPTH) != 0);
	assert_int_equal(f.parts, 1);
	assert_false(f.parse_error);
	bytes_free(&m);
	/* A boundary longer than E2EE_BOUNDARY_MAX. */
	for (i = 0; i < E2EE_BOUNDARY_MAX + 1; i++)
		bytes_str(&s, "x");
	o.boundary = (const char *)s.p;
	bytes_printf(&m, "multipart/encrypted; boundary=\"%s\"", s.p);
	o.ctype = (const char *)m.p;
	assert_false(shape_encrypted(&o));
	{
		struct bytes mm;

		make_pgpmime(&mm, &o);
		screen(&mm, &f);
		assert_true((f.limits & E2EE_LIMIT_BOUNDARY) != 0);
		bytes_free(&mm);
	}
	bytes_free(&m);
	/* ... and exactly E2EE_BOUNDARY_MAX is fine. */
	s.len--;
	s.p[s.len] = 0;
	bytes_printf(&m, "multipart/encrypted; boundary=\"%s\"", s.p);
	o.ctype = (const char *)m.p;
	assert_true(shape_encrypted(&o));
	bytes_free(&m);
	bytes_free(&s);
	/* A Content-Type longer than E2EE_CTYPE_MAX. */
	bytes_str(&m, "multipart/encrypted; boundary=Yfrt74qSXmggbOx");
	for (i = 0; i < E2EE_CTYPE_MAX / 8; i++)
		bytes_str(&m, ";\r\n x=12345");
	o.ctype = (const char *)m.p;
	o.boundary = NULL;
	{
		struct bytes mm;

		make_pgpmime(&mm, &o);
		screen(&mm, &f);
		assert_true((f.limits & E2EE_LIMIT_CTYPE) != 0);
		assert_false(f.encrypted_in);
		assert_string_equal(f.mimetype, "multipart/encrypted");
		bytes_free(&mm);
	}
	bytes_free(&m);
	/* A From value longer than E2EE_FROM_MAX: the address is found
	 * only if its ">" was kept. */
	bytes_str(&m, "From: \"");
	for (i = 0; i < E2EE_FROM_MAX; i++)
		bytes_str(&m, "n");
	bytes_str(&m, "\" <" ALICE ">\r\n\r\nHi!\r\n");
	screen(&m, &f);
	assert_true((f.limits & E2EE_LIMIT_FROM) != 0);
	assert_false(f.from_ok);
	bytes_free(&m);
	bytes_str(&m, "From: <" ALICE "> ");
	for (i = 0; i < E2EE_FROM_MAX; i++)
		bytes_str(&m, "(");
	bytes_str(&m, "\r\n\r\nHi!\r\n");
	screen(&m, &f);
	assert_true(f.from_ok);
	bytes_free(&m);
	/* Long lines and many parts cost nothing but time. */
	bytes_str(&m, "From: " ALICE "\r\nX-Long: ");
	for (i = 0; i < 100000; i++)
		bytes_str(&m, "y");
	bytes_str(&m, "\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n");
	for (i = 0; i < 5000; i++)
		bytes_str(&m, "--p\r\n\r\nz\r\n");
	screen(&m, &f);
	assert_int_equal(f.parts, 5000);
	assert_int_equal(f.limits, 0);
	bytes_free(&m);
}

/* Every split point of a few whole messages (screen() does it for any
 * message up to 8 KiB; these are the ones worth naming). */
static void test_split_everywhere(void **state)
{
	struct pgpmime o = {.arm = &arm_one};
	struct e2ee_facts f;
	struct bytes m;

	(void)state;
	make_pgpmime(&m, &o);
	assert_true(m.len <= 8192);
	screen(&m, &f);
	assert_true(f.encrypted_out);
	bytes_free(&m);
	o.p1_hdrs = "Content-Type: application/octet-stream\r\n"
		    "Content-Transfer-Encoding: base64\r\n";
	o.p1_base64 = true;
	make_pgpmime(&m, &o);
	screen(&m, &f);
	assert_true(f.encrypted_out);
	bytes_free(&m);
	make_asm(&m, "Autocrypt Setup Message", "multipart/mixed");
	screen(&m, &f);
	assert_true(f.asm_shape);
	bytes_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture_encrypted),
		cmocka_unit_test(test_fixture_fake_encrypted),
		cmocka_unit_test(test_fixture_literal),
		cmocka_unit_test(test_fixture_plain),
		cmocka_unit_test(test_fixture_asm),
		cmocka_unit_test(test_fixture_mailer_daemon),
		cmocka_unit_test(test_fixture_mdn),
		cmocka_unit_test(test_fixture_securejoin),
		cmocka_unit_test(test_fixture_securejoin_fake),
		cmocka_unit_test(test_armor_version),
		cmocka_unit_test(test_from_rules),
		cmocka_unit_test(test_recipient_rules),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_shapes_accepted),
		cmocka_unit_test(test_shapes_refused),
		cmocka_unit_test(test_shapes_boundaries),
		cmocka_unit_test(test_lf_only),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_split_everywhere),
	};

	return cmocka_run_group_tests(tests, gpg_setup, gpg_teardown);
}
