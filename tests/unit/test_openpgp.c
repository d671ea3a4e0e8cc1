/* tests/unit/test_openpgp: the OpenPGP packet walk and the armor check.
 * Real OpenPGP data is made in the test with GPGME and gpg (a throw-away
 * GNUPGHOME with two keys without passphrase, loopback pinentry):
 * public-key encrypted to one and two keys, symmetric, signed only,
 * literal and compressed data, binary and armored. Hand-built packet
 * headers cover every length form. Every input is checked whole and one
 * octet at a time (short ones also split at every position), and against
 * a plain transcription of filtermail's algorithm on the whole buffer. */
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

#include "filter/openpgp.h"
#include "testutil.h"

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

static void bytes_byte(struct bytes *b, uint8_t c)
{
	bytes_add(b, &c, 1);
}

static void bytes_fill(struct bytes *b, uint8_t c, size_t n)
{
	while (n-- > 0)
		bytes_byte(b, c);
}

static void bytes_free(struct bytes *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* LF line ends (gpg's armor on Unix) to CRLF. */
static void bytes_crlf(struct bytes *b)
{
	struct bytes o = {0};
	size_t i;

	for (i = 0; i < b->len; i++) {
		if (b->p[i] == '\n' && (i == 0 || b->p[i - 1] != '\r'))
			bytes_byte(&o, '\r');
		bytes_byte(&o, b->p[i]);
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

	assert_int_equal(gpgme_op_createkey(
				 gpg_ctx, uid, "future-default", 0, 0, NULL,
				 GPGME_CREATE_NOPASSWD | GPGME_CREATE_NOEXPIRE),
			 0);
	res = gpgme_op_genkey_result(gpg_ctx);
	assert_non_null(res);
	assert_non_null(res->fpr);
	assert_int_equal(gpgme_get_key(gpg_ctx, res->fpr, &key, 0), 0);
	return key;
}

static int gpg_setup(void **state)
{
	gpgme_engine_info_t info;

	(void)state;
	gpgme_check_version(NULL);
	gpg_home = testutil_mkdtemp("rm-openpgp");
	if (gpg_home == NULL)
		return -1;
	if (gpgme_new(&gpg_ctx) != 0 ||
	    gpgme_ctx_set_engine_info(gpg_ctx, GPGME_PROTOCOL_OpenPGP, NULL,
				      gpg_home) != 0)
		return -1;
	gpgme_set_pinentry_mode(gpg_ctx, GPGME_PINENTRY_MODE_LOOPBACK);
	gpgme_set_passphrase_cb(gpg_ctx, gpg_passphrase, NULL);
	gpg_alice = gpg_make_key("Alice <alice@example.org>");
	gpg_bob = gpg_make_key("Bob <bob@example.org>");
	for (info = gpgme_ctx_get_engine_info(gpg_ctx); info != NULL;
	     info = info->next) {
		if (info->protocol == GPGME_PROTOCOL_OpenPGP)
			gpg_bin = info->file_name;
	}
	return gpg_bin != NULL ? 0 : -1;
}

static int gpg_teardown(void **state)
{
	const char *gpgconf = gpgme_get_dirinfo("gpgconf-name");
	char cmd[1024];

	(void)state;
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

static void gpg_take(gpgme_data_t d, struct bytes *out)
{
	size_t n;
	char *p = gpgme_data_release_and_get_mem(d, &n);

	assert_non_null(p);
	memset(out, 0, sizeof(*out));
	bytes_add(out, p, n);
	gpgme_free(p);
}

/* Encrypt to @keys (NULL: symmetric, passphrase "secret"). */
static void gpg_encrypt(gpgme_key_t *keys, bool armor, const void *msg,
			size_t len, struct bytes *out)
{
	gpgme_data_t plain, cipher;

	assert_int_equal(gpgme_data_new_from_mem(&plain, msg, len, 1), 0);
	assert_int_equal(gpgme_data_new(&cipher), 0);
	gpgme_set_armor(gpg_ctx, armor);
	assert_int_equal(gpgme_op_encrypt(gpg_ctx, keys,
					  keys == NULL
						  ? GPGME_ENCRYPT_SYMMETRIC
						  : GPGME_ENCRYPT_ALWAYS_TRUST,
					  plain, cipher),
			 0);
	gpgme_data_release(plain);
	gpg_take(cipher, out);
}

static void gpg_sign(bool armor, const char *msg, struct bytes *out)
{
	gpgme_data_t plain, sig;

	gpgme_signers_clear(gpg_ctx);
	assert_int_equal(gpgme_signers_add(gpg_ctx, gpg_alice), 0);
	assert_int_equal(gpgme_data_new_from_mem(&plain, msg, strlen(msg), 1),
			 0);
	assert_int_equal(gpgme_data_new(&sig), 0);
	gpgme_set_armor(gpg_ctx, armor);
	assert_int_equal(
		gpgme_op_sign(gpg_ctx, plain, sig, GPGME_SIG_MODE_NORMAL), 0);
	gpgme_data_release(plain);
	gpgme_signers_clear(gpg_ctx);
	gpg_take(sig, out);
}

/* The gpg binary for what GPGME does not offer: --store (literal data,
 * compressed unless -z 0) and an uncompressed signature. */
static void gpg_run(const char *const *args, const char *msg, struct bytes *out)
{
	char in_path[600], out_path[600], buf[4096];
	const char *argv[32];
	size_t n = 0, i;
	pid_t pid;
	int status;
	FILE *fp;

	snprintf(in_path, sizeof(in_path), "%s/in.txt", gpg_home);
	snprintf(out_path, sizeof(out_path), "%s/out.gpg", gpg_home);
	assert_int_equal(testutil_write_file(in_path, msg, strlen(msg)), 0);
	argv[n++] = gpg_bin;
	argv[n++] = "--homedir";
	argv[n++] = gpg_home;
	argv[n++] = "--batch";
	argv[n++] = "--yes";
	argv[n++] = "--quiet";
	for (i = 0; args[i] != NULL; i++)
		argv[n++] = args[i];
	argv[n++] = "-o";
	argv[n++] = out_path;
	argv[n++] = in_path;
	argv[n] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execv(gpg_bin, (char *const *)argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	fp = fopen(out_path, "rb");
	assert_non_null(fp);
	memset(out, 0, sizeof(*out));
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		bytes_add(out, buf, n);
	fclose(fp);
}

/* ------------------------------------------------------------------ */
/* Reference: filtermail's algorithms, transcribed, on whole buffers */

static uint64_t ref_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = v << 8 | *p++;
	return v;
}

/* check_openpgp_payload, plus old-format headers and the packet cap. */
static bool ref_walk(const uint8_t *p, size_t len)
{
	uint64_t i = 0, blen;
	unsigned packets = 0, lt;
	uint8_t b, tag;

	while (i < len) {
		b = p[i];
		if ((b & 0x80) == 0 || ++packets > OPENPGP_PACKETS_MAX)
			return false;
		i++;
		if ((b & 0x40) != 0) {
			tag = b & 0x3f;
			for (;;) {
				if (i >= len)
					return false;
				if (p[i] < 224 || p[i] == 255)
					break;
				i += 1 + ((uint64_t)1 << (p[i] & 0x1f));
			}
			if (p[i] < 192) {
				blen = p[i];
				i += 1;
			} else if (p[i] < 224) {
				if (i + 1 >= len)
					return false;
				blen = ((uint64_t)(p[i] - 192) << 8) +
				       p[i + 1] + 192;
				i += 2;
			} else {
				if (i + 4 >= len)
					return false;
				blen = ref_be(p + i + 1, 4);
				i += 5;
			}
		} else {
			tag = (b >> 2) & 0x0f;
			lt = b & 3;
			if (lt == 3) {
				blen = len - i;
			} else {
				if (i + (1u << lt) > len)
					return false;
				blen = ref_be(p + i, 1u << lt);
				i += 1u << lt;
			}
		}
		i += blen;
		if (i == len)
			return tag == OPENPGP_TAG_SEIPD;
		if (tag != OPENPGP_TAG_PKESK && tag != OPENPGP_TAG_SKESK)
			return false;
	}
	return false;
}

/* Rust base64 STANDARD decode: padding required, zero trailing bits. */
static bool ref_b64(const char *s, size_t n, struct bytes *out)
{
	size_t i, k;
	uint32_t q;
	int v, pad;

	if (n % 4 != 0)
		return false;
	for (i = 0; i < n; i += 4) {
		q = 0;
		pad = 0;
		for (k = 0; k < 4; k++) {
			if (s[i + k] == '=') {
				if (i + 4 != n || k < 2)
					return false;
				pad++;
				q <<= 6;
				continue;
			}
			if (pad != 0)
				return false;
			v = openpgp_base64_value[(uint8_t)s[i + k]];
			if (v < 0)
				return false;
			q = q << 6 | (uint32_t)v;
		}
		if ((pad == 1 && (q & 0xff) != 0) ||
		    (pad == 2 && (q & 0xffff) != 0))
			return false;
		bytes_byte(out, (uint8_t)(q >> 16));
		if (pad < 2)
			bytes_byte(out, (uint8_t)(q >> 8));
		if (pad < 1)
			bytes_byte(out, (uint8_t)q);
	}
	return true;
}

/* check_armored_payload. */
static bool ref_armor(const uint8_t *text, size_t n, bool outgoing)
{
	static const char begin[] = "-----BEGIN PGP MESSAGE-----\r\n";
	static const char end[] = "-----END PGP MESSAGE-----";
	const char *s = (const char *)text, *crlf, *eq = NULL;
	struct bytes clean = {0}, bin = {0};
	size_t i;
	bool ok;

	if (n < sizeof(begin) - 1 || memcmp(s, begin, sizeof(begin) - 1) != 0)
		return false;
	s += sizeof(begin) - 1;
	n -= sizeof(begin) - 1;
	while (n >= 2 && s[n - 2] == '\r' && s[n - 1] == '\n')
		n -= 2;
	if (n < sizeof(end) - 1 ||
	    memcmp(s + n - (sizeof(end) - 1), end, sizeof(end) - 1) != 0)
		return false;
	n -= sizeof(end) - 1;
	if (n >= 9 && memcmp(s, "Version: ", 9) == 0) {
		if (outgoing)
			return false;
		crlf = memmem(s, n, "\r\n", 2);
		if (crlf != NULL) {
			n -= (size_t)(crlf + 2 - s);
			s = crlf + 2;
		}
	}
	while (n >= 2 && s[0] == '\r' && s[1] == '\n') {
		s += 2;
		n -= 2;
	}
	for (i = 0; i < n; i++) {
		if (s[i] == '=')
			eq = s + i;
	}
	if (eq != NULL)
		n = (size_t)(eq - s);
	for (i = 0; i < n; i++) {
		if (s[i] != '\r' && s[i] != '\n')
			bytes_byte(&clean, (uint8_t)s[i]);
	}
	ok = ref_b64((const char *)clean.p, clean.len, &bin) &&
	     ref_walk(bin.p, bin.len);
	bytes_free(&clean);
	bytes_free(&bin);
	return ok;
}

/* ------------------------------------------------------------------ */
/* Running the streaming code whole, bytewise and split */

static bool walk_run(const uint8_t *p, size_t n, size_t step,
		     struct openpgp_walk *w)
{
	size_t off, k;

	openpgp_walk_init(w);
	for (off = 0; off < n; off += k) {
		k = step == 0 || step > n - off ? n - off : step;
		openpgp_walk_feed(w, p + off, k);
	}
	return openpgp_walk_finish(w);
}

/* The walk of @p: the same whole and bytewise, and as the reference. */
static bool walk_check(const uint8_t *p, size_t n, struct openpgp_walk *w)
{
	struct openpgp_walk w1;
	bool ok = walk_run(p, n, 0, w), ok1 = walk_run(p, n, 1, &w1);

	assert_int_equal(ok, ok1);
	assert_int_equal(w->error, w1.error);
	assert_int_equal(w->packets, w1.packets);
	assert_int_equal(w->partials, w1.partials);
	assert_memory_equal(w->tags, w1.tags, sizeof(w->tags));
	assert_int_equal(ok, ref_walk(p, n));
	if (n < 600) {
		for (size_t cut = 1; cut < n; cut++) {
			openpgp_walk_init(&w1);
			openpgp_walk_feed(&w1, p, cut);
			openpgp_walk_feed(&w1, p + cut, n - cut);
			assert_int_equal(openpgp_walk_finish(&w1), ok);
			assert_int_equal(w1.error, w->error);
		}
	}
	return ok;
}

static bool armor_run(const uint8_t *p, size_t n, size_t step,
		      struct openpgp_armor *a)
{
	size_t off, k;

	openpgp_armor_init(a);
	for (off = 0; off < n; off += k) {
		k = step == 0 || step > n - off ? n - off : step;
		openpgp_armor_feed(a, p + off, k);
	}
	return openpgp_armor_finish(a);
}

/* The armor check of @p: returns the incoming verdict; *@out_r is the
 * outgoing one. Whole = bytewise = every split = reference. */
static bool armor_check(const uint8_t *p, size_t n, bool *out_r)
{
	struct openpgp_armor a, a1;
	bool in = armor_run(p, n, 0, &a), out;

	out = in && !a.version_header;
	assert_int_equal(armor_run(p, n, 1, &a1), in);
	assert_int_equal(a1.error, a.error);
	assert_int_equal(a1.version_header, a.version_header);
	assert_int_equal(a1.walk.error, a.walk.error);
	assert_int_equal(in, ref_armor(p, n, false));
	assert_int_equal(out, ref_armor(p, n, true));
	if (n < 3000) {
		for (size_t cut = 1; cut < n; cut++) {
			openpgp_armor_init(&a1);
			openpgp_armor_feed(&a1, p, cut);
			openpgp_armor_feed(&a1, p + cut, n - cut);
			assert_int_equal(openpgp_armor_finish(&a1), in);
			assert_int_equal(a1.error, a.error);
		}
	}
	if (out_r != NULL)
		*out_r = out;
	return in;
}

static bool armor_check_str(const char *s, bool *out_r)
{
	return armor_check((const uint8_t *)s, strlen(s), out_r);
}

/* ------------------------------------------------------------------ */
/* Building packets and armor by hand */

static void pkt_new(struct bytes *b, uint8_t tag, uint32_t len, int form)
{
	bytes_byte(b, 0xc0 | tag);
	if (form == 1) {
		assert_true(len < 192);
		bytes_byte(b, (uint8_t)len);
	} else if (form == 2) {
		assert_true(len >= 192 && len < 8384);
		bytes_byte(b, (uint8_t)(((len - 192) >> 8) + 192));
		bytes_byte(b, (uint8_t)(len - 192));
	} else {
		bytes_byte(b, 255);
		bytes_byte(b, (uint8_t)(len >> 24));
		bytes_byte(b, (uint8_t)(len >> 16));
		bytes_byte(b, (uint8_t)(len >> 8));
		bytes_byte(b, (uint8_t)len);
	}
	bytes_fill(b, 0xaa, len);
}

/* lt: 0, 1, 2 (1-, 2-, 4-octet length) or 3 (indeterminate). */
static void pkt_old(struct bytes *b, uint8_t tag, uint32_t len, unsigned lt)
{
	bytes_byte(b, (uint8_t)(0x80 | tag << 2 | lt));
	if (lt == 0)
		bytes_byte(b, (uint8_t)len);
	if (lt == 1) {
		bytes_byte(b, (uint8_t)(len >> 8));
		bytes_byte(b, (uint8_t)len);
	}
	if (lt == 2) {
		bytes_byte(b, (uint8_t)(len >> 24));
		bytes_byte(b, (uint8_t)(len >> 16));
		bytes_byte(b, (uint8_t)(len >> 8));
		bytes_byte(b, (uint8_t)len);
	}
	bytes_fill(b, 0x55, len);
}

/* A new-format packet cut in partial chunks of 2^k octets, then @last. */
static void pkt_partial(struct bytes *b, uint8_t tag, const unsigned *k,
			size_t nk, uint32_t last)
{
	size_t i;

	bytes_byte(b, 0xc0 | tag);
	for (i = 0; i < nk; i++) {
		bytes_byte(b, (uint8_t)(224 + k[i]));
		bytes_fill(b, 0x33, (size_t)1 << k[i]);
	}
	assert_true(last < 192);
	bytes_byte(b, (uint8_t)last);
	bytes_fill(b, 0x44, last);
}

static uint32_t crc24(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xb704ce;
	int i;

	while (n-- > 0) {
		crc ^= (uint32_t)*p++ << 16;
		for (i = 0; i < 8; i++) {
			crc <<= 1;
			if (crc & 0x1000000)
				crc ^= 0x1864cfb;
		}
	}
	return crc & 0xffffff;
}

static void b64_encode(struct bytes *out, const uint8_t *p, size_t n,
		       size_t wrap)
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
		if (wrap != 0 && col >= wrap && i + 3 < n) {
			bytes_str(out, "\r\n");
			col = 0;
		}
	}
}

/* An armored message the way gpg writes it, with CRLF: @hdrs are armor
 * header lines (each with CRLF) or NULL, then the empty line unless
 * @blank is false; @crc false leaves the CRC line out; @end is what comes
 * after the base64 (NULL: the END marker and CRLF). */
static void armor_make(struct bytes *out, const uint8_t *p, size_t n,
		       const char *hdrs, bool blank, bool crc, const char *end)
{
	uint8_t c[3];
	uint32_t v = crc24(p, n);

	memset(out, 0, sizeof(*out));
	bytes_str(out, "-----BEGIN PGP MESSAGE-----\r\n");
	if (hdrs != NULL)
		bytes_str(out, hdrs);
	if (blank)
		bytes_str(out, "\r\n");
	b64_encode(out, p, n, 64);
	bytes_str(out, "\r\n");
	if (crc) {
		c[0] = (uint8_t)(v >> 16);
		c[1] = (uint8_t)(v >> 8);
		c[2] = (uint8_t)v;
		bytes_str(out, "=");
		b64_encode(out, c, 3, 0);
		bytes_str(out, "\r\n");
	}
	bytes_str(out, end != NULL ? end : "-----END PGP MESSAGE-----\r\n");
}

/* ------------------------------------------------------------------ */
/* Real OpenPGP data */

static const char msg_text[] = "Hi! This is a chat message.\n";

static void test_gpg_pkesk(void **state)
{
	struct bytes bin, asc;
	struct openpgp_walk w;
	gpgme_key_t one[2] = {gpg_alice, NULL};
	gpgme_key_t two[3] = {gpg_alice, gpg_bob, NULL};
	bool out;

	(void)state;
	/* Binary, one recipient: gpg 2.2 writes an old-format PKESK. */
	gpg_encrypt(one, false, msg_text, strlen(msg_text), &bin);
	assert_true(walk_check(bin.p, bin.len, &w));
	assert_int_equal(w.packets, 2);
	assert_int_equal(w.tags[0], OPENPGP_TAG_PKESK);
	assert_int_equal(w.tags[1], OPENPGP_TAG_SEIPD);
	assert_true(w.old_format);
	bytes_free(&bin);

	/* Armored, two recipients: PKESK PKESK SEIPD (encrypted.eml). */
	gpg_encrypt(two, true, msg_text, strlen(msg_text), &asc);
	bytes_crlf(&asc);
	assert_true(armor_check(asc.p, asc.len, &out));
	assert_true(out);
	gpg_encrypt(two, false, msg_text, strlen(msg_text), &bin);
	assert_true(walk_check(bin.p, bin.len, &w));
	assert_int_equal(w.packets, 3);
	assert_int_equal(w.tags[1], OPENPGP_TAG_PKESK);
	bytes_free(&bin);

	/* gpg writes armor with LF: the BEGIN line needs CRLF. */
	gpg_encrypt(one, true, msg_text, strlen(msg_text), &bin);
	assert_false(armor_check(bin.p, bin.len, NULL));
	bytes_free(&bin);
	bytes_free(&asc);
}

static void test_gpg_partial(void **state)
{
	struct bytes bin, asc;
	struct openpgp_walk w;
	struct openpgp_armor a;
	gpgme_key_t one[2] = {gpg_alice, NULL};
	uint8_t *big = malloc(200000);
	size_t i;

	(void)state;
	assert_non_null(big);
	for (i = 0; i < 200000; i++)
		big[i] = (uint8_t)(i * 7919 >> 3);
	/* From a pipe gpg streams: SEIPD with partial body lengths. */
	gpg_encrypt(one, false, big, 200000, &bin);
	assert_true(walk_check(bin.p, bin.len, &w));
	assert_true(w.partials > 0);
	assert_int_equal(w.tags[1], OPENPGP_TAG_SEIPD);
	/* Cut anywhere, it is not a message. */
	assert_false(walk_check(bin.p, bin.len - 1, &w));
	assert_int_equal(w.error, OPENPGP_WALK_ERR_TRUNCATED);
	gpg_encrypt(one, true, big, 200000, &asc);
	bytes_crlf(&asc);
	assert_true(armor_run(asc.p, asc.len, 0, &a));
	assert_true(armor_run(asc.p, asc.len, 1, &a));
	assert_true(armor_run(asc.p, asc.len, 4093, &a));
	assert_true(a.walk.partials > 0);
	bytes_free(&bin);
	bytes_free(&asc);
	free(big);
}

static void test_gpg_symmetric(void **state)
{
	struct bytes bin, asc;
	struct openpgp_walk w;
	bool out;

	(void)state;
	gpg_encrypt(NULL, false, msg_text, strlen(msg_text), &bin);
	assert_true(walk_check(bin.p, bin.len, &w));
	assert_int_equal(w.packets, 2);
	assert_int_equal(w.tags[0], OPENPGP_TAG_SKESK);
	assert_int_equal(w.tags[1], OPENPGP_TAG_SEIPD);
	gpg_encrypt(NULL, true, msg_text, strlen(msg_text), &asc);
	bytes_crlf(&asc);
	assert_true(armor_check(asc.p, asc.len, &out));
	assert_true(out);
	bytes_free(&bin);
	bytes_free(&asc);
}

static void test_gpg_signed(void **state)
{
	static const char *const plain_sig[] = {
		"-s", "-z", "0", "-u", "alice@example.org", NULL};
	struct bytes bin, asc;
	struct openpgp_walk w;

	(void)state;
	/* GPGME signs into a compressed packet (indeterminate length). */
	gpg_sign(false, msg_text, &bin);
	assert_false(walk_check(bin.p, bin.len, &w));
	assert_int_equal(w.tags[0], OPENPGP_TAG_COMP);
	assert_true(w.indeterminate);
	assert_int_equal(w.error, OPENPGP_WALK_ERR_LAST_TAG);
	gpg_sign(true, msg_text, &asc);
	bytes_crlf(&asc);
	assert_false(armor_check(asc.p, asc.len, NULL));
	bytes_free(&bin);
	bytes_free(&asc);
	/* Uncompressed: one-pass signature, literal, signature. */
	gpg_run(plain_sig, msg_text, &bin);
	assert_false(walk_check(bin.p, bin.len, &w));
	assert_int_equal(w.tags[0], OPENPGP_TAG_OPS);
	assert_int_equal(w.error, OPENPGP_WALK_ERR_ORDER);
	bytes_free(&bin);
}

static void test_gpg_literal(void **state)
{
	static const char *const store[] = {"--store", "-z", "0", NULL};
	static const char *const store_a[] = {"--store", "-z", "0", "-a", NULL};
	struct bytes bin, asc;
	struct openpgp_walk w;
	struct openpgp_armor a;

	(void)state;
	gpg_run(store, msg_text, &bin);
	assert_false(walk_check(bin.p, bin.len, &w));
	assert_int_equal(w.packets, 1);
	assert_int_equal(w.tags[0], OPENPGP_TAG_LIT);
	assert_int_equal(w.error, OPENPGP_WALK_ERR_LAST_TAG);
	gpg_run(store_a, msg_text, &asc);
	bytes_crlf(&asc);
	assert_false(armor_check(asc.p, asc.len, NULL));
	armor_run(asc.p, asc.len, 0, &a);
	assert_int_equal(a.error, OPENPGP_ARMOR_ERR_PACKETS);
	assert_int_equal(a.walk.tags[0], OPENPGP_TAG_LIT);
	bytes_free(&bin);
	bytes_free(&asc);
}

static void test_gpg_compressed(void **state)
{
	static const char *const store[] = {"--store", NULL};
	static const char *const store_a[] = {"--store", "-a", NULL};
	struct bytes bin, asc;
	struct openpgp_walk w;

	(void)state;
	gpg_run(store, msg_text, &bin);
	assert_false(walk_check(bin.p, bin.len, &w));
	assert_int_equal(w.tags[0], OPENPGP_TAG_COMP);
	assert_true(w.old_format);
	assert_true(w.indeterminate);
	gpg_run(store_a, msg_text, &asc);
	bytes_crlf(&asc);
	assert_false(armor_check(asc.p, asc.len, NULL));
	bytes_free(&bin);
	bytes_free(&asc);
}

/* ------------------------------------------------------------------ */
/* Hand-built packet headers */

static void test_walk_new_lengths(void **state)
{
	static const uint32_t lens[] = {0, 1, 191, 192, 193, 1000, 8383};
	struct openpgp_walk w;
	struct bytes b = {0};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		b.len = 0;
		pkt_new(&b, OPENPGP_TAG_SKESK, 13, 1);
		pkt_new(&b, OPENPGP_TAG_SEIPD, lens[i], lens[i] < 192 ? 1 : 2);
		assert_true(walk_check(b.p, b.len, &w));
		b.len = 0;
		pkt_new(&b, OPENPGP_TAG_PKESK, lens[i], lens[i] < 192 ? 1 : 5);
		pkt_new(&b, OPENPGP_TAG_SEIPD, lens[i], 5);
		assert_true(walk_check(b.p, b.len, &w));
		assert_int_equal(w.packets, 2);
	}
	b.len = 0;
	pkt_new(&b, OPENPGP_TAG_SEIPD, 70000, 5);
	assert_true(walk_check(b.p, b.len, &w));
	/* A length that runs past the end. */
	assert_false(walk_check(b.p, b.len - 1, &w));
	assert_int_equal(w.error, OPENPGP_WALK_ERR_TRUNCATED);
	bytes_free(&b);
}

static void test_walk_partial(void **state)
{
	static const unsigned k1[] = {9};
	static const unsigned k3[] = {9, 0, 12};
	static const unsigned k0[] = {0, 0, 0, 0};
	struct openpgp_walk w;
	struct bytes b = {0};

	(void)state;
	pkt_partial(&b, OPENPGP_TAG_SEIPD, k1, 1, 10);
	assert_true(walk_check(b.p, b.len, &w));
	assert_int_equal(w.partials, 1);
	b.len = 0;
	pkt_new(&b, OPENPGP_TAG_PKESK, 50, 1);
	pkt_partial(&b, OPENPGP_TAG_SEIPD, k3, 3, 0);
	assert_true(walk_check(b.p, b.len, &w));
	assert_int_equal(w.partials, 3);
	/* filtermail takes partial lengths on any packet. */
	b.len = 0;
	pkt_partial(&b, OPENPGP_TAG_PKESK, k0, 4, 3);
	pkt_partial(&b, OPENPGP_TAG_SEIPD, k0, 4, 3);
	assert_true(walk_check(b.p, b.len, &w));
	/* A partial chunk with no final length after it. */
	b.len = 0;
	pkt_partial(&b, OPENPGP_TAG_SEIPD, k1, 1, 0);
	b.len -= 1;
	assert_false(walk_check(b.p, b.len, &w));
	assert_int_equal(w.error, OPENPGP_WALK_ERR_TRUNCATED);
	bytes_free(&b);
}

static void test_walk_old_format(void **state)
{
	struct openpgp_walk w;
	struct bytes b = {0};
	unsigned lt;

	(void)state;
	for (lt = 0; lt < 3; lt++) {
		b.len = 0;
		pkt_old(&b, OPENPGP_TAG_PKESK, 94, lt);
		pkt_old(&b, OPENPGP_TAG_SKESK, 13, lt);
		pkt_new(&b, OPENPGP_TAG_SEIPD, 300, 2);
		assert_true(walk_check(b.p, b.len, &w));
		assert_true(w.old_format);
		assert_int_equal(w.packets, 3);
		/* An old-format tag is at most 15: never SEIPD last. */
		b.len = 0;
		pkt_old(&b, OPENPGP_TAG_PKESK, 10, lt);
		assert_false(walk_check(b.p, b.len, &w));
		assert_int_equal(w.error, OPENPGP_WALK_ERR_LAST_TAG);
	}
	/* Indeterminate: the rest of the data is its body. */
	b.len = 0;
	pkt_new(&b, OPENPGP_TAG_PKESK, 20, 1);
	pkt_old(&b, OPENPGP_TAG_SED, 40, 3);
	assert_false(walk_check(b.p, b.len, &w));
	assert_true(w.indeterminate);
	assert_int_equal(w.error, OPENPGP_WALK_ERR_LAST_TAG);
	b.len = 0;
	pkt_old(&b, OPENPGP_TAG_PKESK, 0, 3);
	pkt_new(&b, OPENPGP_TAG_SEIPD, 20, 1);
	assert_false(walk_check(b.p, b.len, &w));
	/* A 4-octet length past the end. */
	b.len = 0;
	pkt_old(&b, OPENPGP_TAG_PKESK, 10, 2);
	b.p[1] = 0x7f;
	pkt_new(&b, OPENPGP_TAG_SEIPD, 20, 1);
	assert_false(walk_check(b.p, b.len, &w));
	assert_int_equal(w.error, OPENPGP_WALK_ERR_TRUNCATED);
	bytes_free(&b);
}

static void test_walk_rejects(void **state)
{
	struct openpgp_walk w;
	struct bytes b = {0};
	uint8_t hdr2[] = {0xc0 | OPENPGP_TAG_SEIPD, 200};
	uint32_t i;

	(void)state;
	assert_false(walk_check(NULL, 0, &w));
	assert_int_equal(w.error, OPENPGP_WALK_ERR_EMPTY);
	/* Truncated two-octet length. */
	assert_false(walk_check(hdr2, sizeof(hdr2), &w));
	assert_int_equal(w.error, OPENPGP_WALK_ERR_TRUNCATED);
	/* Bit 7 clear: not a packet (base64 of text decodes to this). */
	bytes_str(&b, "Hello");
	assert_false(walk_check(b.p, b.len, &w));
	assert_int_equal(w.error, OPENPGP_WALK_ERR_CTB);
	/* SEIPD then anything: only session keys may come before. */
	b.len = 0;
	pkt_new(&b, OPENPGP_TAG_SEIPD, 10, 1);
	pkt_new(&b, OPENPGP_TAG_SEIPD, 10, 1);
	assert_false(walk_check(b.p, b.len, &w));
	assert_int_equal(w.error, OPENPGP_WALK_ERR_ORDER);
	b.len = 0;
	pkt_new(&b, OPENPGP_TAG_SEIPD, 10, 1);
	bytes_byte(&b, 0);
	assert_false(walk_check(b.p, b.len, &w));
	/* Session key only, SED, LibrePGP OCB (20), signature first. */
	b.len = 0;
	pkt_new(&b, OPENPGP_TAG_PKESK, 10, 1);
	assert_false(walk_check(b.p, b.len, &w));
	assert_int_equal(w.error, OPENPGP_WALK_ERR_LAST_TAG);
	b.len = 0;
	pkt_new(&b, OPENPGP_TAG_SED, 10, 1);
	assert_false(walk_check(b.p, b.len, &w));
	b.len = 0;
	pkt_new(&b, OPENPGP_TAG_PKESK, 10, 1);
	pkt_new(&b, 20, 10, 1);
	assert_false(walk_check(b.p, b.len, &w));
	b.len = 0;
	pkt_new(&b, OPENPGP_TAG_SIG, 10, 1);
	pkt_new(&b, OPENPGP_TAG_SEIPD, 10, 1);
	assert_false(walk_check(b.p, b.len, &w));
	assert_int_equal(w.error, OPENPGP_WALK_ERR_ORDER);
	/* The packet cap: OPENPGP_PACKETS_MAX in all is fine, one more
	 * is not. */
	b.len = 0;
	for (i = 0; i + 1 < OPENPGP_PACKETS_MAX; i++)
		pkt_new(&b, OPENPGP_TAG_PKESK, 2, 1);
	pkt_new(&b, OPENPGP_TAG_SEIPD, 2, 1);
	assert_true(walk_run(b.p, b.len, 0, &w));
	assert_true(ref_walk(b.p, b.len));
	b.len = 0;
	for (i = 0; i < OPENPGP_PACKETS_MAX; i++)
		pkt_new(&b, OPENPGP_TAG_PKESK, 2, 1);
	pkt_new(&b, OPENPGP_TAG_SEIPD, 2, 1);
	assert_false(walk_run(b.p, b.len, 7, &w));
	assert_int_equal(w.error, OPENPGP_WALK_ERR_TOO_MANY);
	assert_false(ref_walk(b.p, b.len));
	bytes_free(&b);
}

/* ------------------------------------------------------------------ */
/* Armor rules */

static void good_payload(struct bytes *b, size_t seipd_len)
{
	memset(b, 0, sizeof(*b));
	pkt_new(b, OPENPGP_TAG_PKESK, 94, 1);
	pkt_new(b, OPENPGP_TAG_PKESK, 94, 1);
	pkt_new(b, OPENPGP_TAG_SEIPD, (uint32_t)seipd_len,
		seipd_len < 192 ? 1 : 2);
}

static void test_armor_basic(void **state)
{
	struct bytes p, a;
	bool out;

	(void)state;
	good_payload(&p, 300);
	armor_make(&a, p.p, p.len, NULL, true, true, NULL);
	assert_true(armor_check(a.p, a.len, &out));
	assert_true(out);
	bytes_free(&a);
	/* 0 to 3 trailing CRLFs. */
	armor_make(&a, p.p, p.len, NULL, true, true,
		   "-----END PGP MESSAGE-----");
	assert_true(armor_check(a.p, a.len, NULL));
	bytes_free(&a);
	armor_make(&a, p.p, p.len, NULL, true, true,
		   "-----END PGP MESSAGE-----\r\n\r\n\r\n");
	assert_true(armor_check(a.p, a.len, NULL));
	bytes_free(&a);
	/* Anything else after END. */
	armor_make(&a, p.p, p.len, NULL, true, true,
		   "-----END PGP MESSAGE-----\n");
	assert_false(armor_check(a.p, a.len, NULL));
	bytes_free(&a);
	armor_make(&a, p.p, p.len, NULL, true, true,
		   "-----END PGP MESSAGE-----\r\n ");
	assert_false(armor_check(a.p, a.len, NULL));
	bytes_free(&a);
	armor_make(&a, p.p, p.len, NULL, true, true,
		   "-----END PGP MESSAGE-----\r\r\n");
	assert_false(armor_check(a.p, a.len, NULL));
	bytes_free(&a);
	bytes_free(&p);
}

static void test_armor_headers(void **state)
{
	struct bytes p, a;
	struct openpgp_armor st;
	bool out;

	(void)state;
	good_payload(&p, 100);
	/* One "Version:" header: incoming only (ProtonMail). */
	armor_make(&a, p.p, p.len, "Version: ProtonMail\r\n", true, true, NULL);
	assert_true(armor_check(a.p, a.len, &out));
	assert_false(out);
	armor_run(a.p, a.len, 0, &st);
	assert_true(st.version_header);
	bytes_free(&a);
	/* Without the empty line after it (filtermail test vector). */
	armor_make(&a, p.p, p.len, "Version: 1\r\n", false, true, NULL);
	assert_true(armor_check(a.p, a.len, &out));
	assert_false(out);
	bytes_free(&a);
	/* Any other header, or a second one, fails in base64. */
	armor_make(&a, p.p, p.len, "Comment: hello\r\n", true, true, NULL);
	assert_false(armor_check(a.p, a.len, NULL));
	bytes_free(&a);
	armor_make(&a, p.p, p.len, "Version: X\r\nComment: y\r\n", true, true,
		   NULL);
	assert_false(armor_check(a.p, a.len, NULL));
	bytes_free(&a);
	armor_make(&a, p.p, p.len, "version: X\r\n", true, true, NULL);
	assert_false(armor_check(a.p, a.len, NULL));
	bytes_free(&a);
	/* Only "Version: " with its space counts; LF does not end it. */
	armor_make(&a, p.p, p.len, "Version:X\r\n", true, true, NULL);
	assert_false(armor_check(a.p, a.len, NULL));
	bytes_free(&a);
	armor_make(&a, p.p, p.len, "Version: X\n", true, true, NULL);
	assert_true(armor_check(a.p, a.len, NULL));
	bytes_free(&a);
	bytes_free(&p);
}

static void test_armor_crc(void **state)
{
	struct bytes p, a;

	(void)state;
	/* 295 octets: base64 ends in "==" padding. Without the CRC line
	 * the text is cut inside the padding. */
	good_payload(&p, 101);
	assert_int_equal(p.len % 3, 1);
	armor_make(&a, p.p, p.len, NULL, true, false, NULL);
	assert_false(armor_check(a.p, a.len, NULL));
	bytes_free(&a);
	armor_make(&a, p.p, p.len, NULL, true, true, NULL);
	assert_true(armor_check(a.p, a.len, NULL));
	bytes_free(&a);
	bytes_free(&p);
	/* No padding: no "=" at all, nothing is cut. */
	good_payload(&p, 100);
	assert_int_equal(p.len % 3, 0);
	armor_make(&a, p.p, p.len, NULL, true, false, NULL);
	assert_true(armor_check(a.p, a.len, NULL));
	bytes_free(&a);
	bytes_free(&p);
	/* Whatever follows the last "=" is not looked at. */
	assert_true(armor_check_str("-----BEGIN PGP MESSAGE-----\r\n\r\n"
				    "0gEA\r\n=not base64 at all!\r\n"
				    "-----END PGP MESSAGE-----\r\n",
				    NULL));
	assert_true(armor_check_str("-----BEGIN PGP MESSAGE-----\r\n\r\n"
				    "0gEA\r\n=\r\n-----END PGP MESSAGE-----",
				    NULL));
	/* An "=" with data after it, then another "=". */
	assert_false(armor_check_str("-----BEGIN PGP MESSAGE-----\r\n\r\n"
				     "0gE=A\r\n=abcd\r\n"
				     "-----END PGP MESSAGE-----\r\n",
				     NULL));
	/* The padding of the last quantum, split by a line end. */
	assert_true(armor_check_str("-----BEGIN PGP MESSAGE-----\r\n\r\n"
				    "0gIAAA=\r\n=\r\n=crc2\r\n"
				    "-----END PGP MESSAGE-----\r\n",
				    NULL));
}

static void test_armor_vectors(void **state)
{
	struct bytes p, a;

	(void)state;
	/* spec D.3 vectors: not base64, empty payload, cleartext. */
	assert_false(armor_check_str("-----BEGIN PGP MESSAGE-----\r\n\r\n"
				     "HELLOWORLD\r\n"
				     "-----END PGP MESSAGE-----\r\n",
				     NULL));
	assert_false(armor_check_str("-----BEGIN PGP MESSAGE-----\r\n\r\n"
				     "=njUN\r\n-----END PGP MESSAGE-----\r\n",
				     NULL));
	assert_false(armor_check_str("-----BEGIN PGP MESSAGE-----\r\n\r\n"
				     "Definitely not base64 encoded.\r\n"
				     "-----END PGP MESSAGE-----",
				     NULL));
	assert_false(armor_check_str("-----END PGP MESSAGE-----", NULL));
	assert_false(armor_check_str("-----BEGIN PGP MESSAGE-----", NULL));
	assert_false(armor_check_str("-----BEGIN PGP MESSAGE-----\r\n"
				     "-----END PGP MESSAGE-----",
				     NULL));
	assert_false(armor_check_str("", NULL));
	/* LF-only armor: the BEGIN line needs its CRLF. */
	assert_false(armor_check_str("-----BEGIN PGP MESSAGE-----\n\n0gEA\n"
				     "-----END PGP MESSAGE-----\n",
				     NULL));
	/* Non-zero trailing bits, a symbol outside the alphabet. */
	assert_false(armor_check_str("-----BEGIN PGP MESSAGE-----\r\n\r\n"
				     "0gEB\r\n0gE=\r\n=abcd\r\n"
				     "-----END PGP MESSAGE-----",
				     NULL));
	assert_false(armor_check_str("-----BEGIN PGP MESSAGE-----\r\n\r\n"
				     "0g-A\r\n-----END PGP MESSAGE-----",
				     NULL));
	/* A line end inside a quantum is fine: only CR and LF go. */
	assert_true(armor_check_str("-----BEGIN PGP MESSAGE-----\r\n\r\n"
				    "0g\r\nEA\n-----END PGP MESSAGE-----",
				    NULL));
	/* A dash run longer than the marker's: one dash is text, and it
	 * comes after the last "=", so it is not looked at. */
	good_payload(&p, 50);
	armor_make(&a, p.p, p.len, NULL, true, true,
		   "------END PGP MESSAGE-----\r\n");
	assert_true(armor_check(a.p, a.len, NULL));
	bytes_free(&a);
	/* A marker inside the text: it is text. */
	armor_make(&a, p.p, p.len, NULL, true, true,
		   "X-----END PGP MESSAGE-----\r\n");
	assert_true(armor_check(a.p, a.len, NULL));
	bytes_free(&a);
	armor_make(&a, p.p, p.len, NULL, true, false,
		   "-----END PGP MESSAGE---- -----END PGP MESSAGE-----\r\n");
	assert_false(armor_check(a.p, a.len, NULL));
	bytes_free(&a);
	bytes_free(&p);
}

/* Mutations of good armors, compared with the reference. */
static void test_armor_random(void **state)
{
	static const char alphabet[] = "-=\r\n VAB0gE+/:PGMESNDaz";
	struct bytes p, a, m = {0};
	struct openpgp_armor st;
	uint64_t x = 88172645463325252ull;
	int iter, k, edits;
	size_t pos, i;
	bool ref;

	(void)state;
	good_payload(&p, 40);
	armor_make(&a, p.p, p.len, "Version: x\r\n", true, true, NULL);
	for (iter = 0; iter < 20000; iter++) {
		m.len = 0;
		bytes_add(&m, a.p, a.len);
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		edits = (int)(x % 4) + 1;
		for (k = 0; k < edits; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			pos = (size_t)(x >> 8) % m.len;
			switch (x % 3) {
			case 0: /* replace */
				m.p[pos] = (uint8_t)
					alphabet[(x >> 40) %
						 (sizeof(alphabet) - 1)];
				break;
			case 1: /* delete */
				memmove(m.p + pos, m.p + pos + 1,
					m.len - pos - 1);
				m.len--;
				break;
			default: /* insert */
				bytes_byte(&m, 0);
				memmove(m.p + pos + 1, m.p + pos,
					m.len - pos - 1);
				m.p[pos] = (uint8_t)
					alphabet[(x >> 40) %
						 (sizeof(alphabet) - 1)];
				break;
			}
			if (m.len == 0)
				break;
		}
		for (int out = 0; out < 2; out++) {
			ref = ref_armor(m.p, m.len, out != 0);
			for (size_t step = 0; step < 4; step++) {
				bool got = armor_run(m.p, m.len,
						     step == 3 ? 7 : step, &st);

				if (out)
					got = got && !st.version_header;
				if (got != ref) {
					fprintf(stderr,
						"mismatch step=%zu "
						"out=%d: ",
						step, out);
					for (i = 0; i < m.len; i++)
						fprintf(stderr, "%02x", m.p[i]);
					fprintf(stderr, "\n");
				}
				assert_int_equal(got, ref);
			}
		}
	}
	bytes_free(&m);
	bytes_free(&a);
	bytes_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gpg_pkesk),
		cmocka_unit_test(test_gpg_partial),
		cmocka_unit_test(test_gpg_symmetric),
		cmocka_unit_test(test_gpg_signed),
		cmocka_unit_test(test_gpg_literal),
		cmocka_unit_test(test_gpg_compressed),
		cmocka_unit_test(test_walk_new_lengths),
		cmocka_unit_test(test_walk_partial),
		cmocka_unit_test(test_walk_old_format),
		cmocka_unit_test(test_walk_rejects),
		cmocka_unit_test(test_armor_basic),
		cmocka_unit_test(test_armor_headers),
		cmocka_unit_test(test_armor_crc),
		cmocka_unit_test(test_armor_vectors),
		cmocka_unit_test(test_armor_random),
	};

	return cmocka_run_group_tests(tests, gpg_setup, gpg_teardown);
}
