/* tests/fuzz/fuzz_e2ee: the E2EE screen must never crash, read out of
 * bounds or grow, and must give the same facts whether the message comes
 * whole, one octet at a time or in random chunks (sizes drawn from a
 * generator seeded by the first input octets). The first octet's top bit
 * picks a second mode: the input is an armored payload, checked the same
 * three ways and against a plain transcription of filtermail's
 * check_armored_payload on the whole buffer. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "filter/e2ee.h"
#include "filter/openpgp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct e2ee_state fuzz_st;

static uint64_t fuzz_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Feed in chunks: @max 0 = whole, 1 = bytewise, else random 1..max. */
static void fuzz_screen(const uint8_t *p, size_t n, size_t max, uint64_t seed,
			struct e2ee_facts *f)
{
	size_t off = 0, k;

	e2ee_init(&fuzz_st);
	while (off < n) {
		k = max == 0 ? n - off : (size_t)(fuzz_next(&seed) % max) + 1;
		if (k > n - off)
			k = n - off;
		e2ee_feed(&fuzz_st, p + off, k);
		off += k;
	}
	e2ee_finish(&fuzz_st, f);
}

static bool fuzz_same(const struct e2ee_facts *a, const struct e2ee_facts *b)
{
	return a->size == b->size && a->parse_error == b->parse_error &&
	       a->encrypted_in == b->encrypted_in &&
	       a->encrypted_out == b->encrypted_out &&
	       a->armor_version == b->armor_version &&
	       a->securejoin == b->securejoin && a->multipart == b->multipart &&
	       a->parts == b->parts && a->limits == b->limits &&
	       strcmp(a->mimetype, b->mimetype) == 0 &&
	       strcmp(a->report_type, b->report_type) == 0 &&
	       a->has_from == b->has_from && a->from_ok == b->from_ok &&
	       strcmp(a->from_value, b->from_value) == 0 &&
	       strcmp(a->from_addr, b->from_addr) == 0 &&
	       a->has_subject == b->has_subject &&
	       a->subject_asm == b->subject_asm &&
	       a->asm_header == b->asm_header &&
	       a->has_securejoin == b->has_securejoin &&
	       a->auto_submitted == b->auto_submitted &&
	       a->mailer_daemon == b->mailer_daemon &&
	       a->asm_shape == b->asm_shape && a->mdn == b->mdn &&
	       a->armor_error == b->armor_error &&
	       a->walk_error == b->walk_error && a->packets == b->packets &&
	       memcmp(a->tags, b->tags, sizeof(a->tags)) == 0;
}

/* Facts that must hold whatever the input. */
static void fuzz_invariants(const struct e2ee_facts *f)
{
	const char *const rcpt[1] = {"x@example.org"};

	if (f->encrypted_out && !f->encrypted_in)
		abort();
	if (f->encrypted_in && (!f->multipart || f->parts != 2))
		abort();
	if (f->securejoin && (!f->multipart || f->parts != 1))
		abort();
	if ((f->encrypted_in || f->securejoin) &&
	    (f->limits & ~(unsigned)E2EE_LIMIT_FROM) != 0)
		abort();
	if (f->parse_error && (f->encrypted_in || f->from_ok))
		abort();
	if (strlen(f->from_addr) > E2EE_ADDR_MAX ||
	    (f->from_ok && strchr(f->from_addr, '@') == NULL))
		abort();
	/* The verdicts only read the facts. */
	if (e2ee_outgoing_allowed(f, f->from_addr, rcpt, 1) ==
		    E2EE_ALLOW_ENCRYPTED &&
	    !f->encrypted_out)
		abort();
	if (e2ee_incoming_allowed(f, "", rcpt[0], true) == E2EE_ALLOW_CLEARTEXT)
		abort();
}

/* ------------------------------------------------------------------ */
/* Reference check_armored_payload (see tests/unit/test_openpgp.c) */

static uint64_t ref_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = v << 8 | *p++;
	return v;
}

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

static bool ref_armor(const uint8_t *text, size_t n, bool outgoing)
{
	static const char begin[] = "-----BEGIN PGP MESSAGE-----\r\n";
	static const char end[] = "-----END PGP MESSAGE-----";
	const char *s = (const char *)text, *crlf, *eq = NULL;
	uint8_t *clean, *bin;
	size_t i, m = 0, o = 0;
	uint32_t q;
	int v, pad, k;
	bool ok = false;

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
	for (i = 0; i < n; i++) {
		if (s[i] == '=')
			eq = s + i;
	}
	if (eq != NULL)
		n = (size_t)(eq - s);
	clean = malloc(n + 1);
	bin = malloc(n + 1);
	if (clean == NULL || bin == NULL)
		abort();
	for (i = 0; i < n; i++) {
		if (s[i] != '\r' && s[i] != '\n')
			clean[m++] = (uint8_t)s[i];
	}
	if (m % 4 != 0)
		goto out;
	for (i = 0; i < m; i += 4) {
		q = 0;
		pad = 0;
		for (k = 0; k < 4; k++) {
			if (clean[i + k] == '=') {
				if (i + 4 != m || k < 2)
					goto out;
				pad++;
				q <<= 6;
				continue;
			}
			v = openpgp_base64_value[clean[i + k]];
			if (pad != 0 || v < 0)
				goto out;
			q = q << 6 | (uint32_t)v;
		}
		if ((pad == 1 && (q & 0xff) != 0) ||
		    (pad == 2 && (q & 0xffff) != 0))
			goto out;
		bin[o++] = (uint8_t)(q >> 16);
		if (pad < 2)
			bin[o++] = (uint8_t)(q >> 8);
		if (pad < 1)
			bin[o++] = (uint8_t)q;
	}
	ok = ref_walk(bin, o);
out:
	free(clean);
	free(bin);
	return ok;
}

static bool fuzz_armor(const uint8_t *p, size_t n, size_t max, uint64_t seed,
		       struct openpgp_armor *a)
{
	size_t off = 0, k;

	openpgp_armor_init(a);
	while (off < n) {
		k = max == 0 ? n - off : (size_t)(fuzz_next(&seed) % max) + 1;
		if (k > n - off)
			k = n - off;
		openpgp_armor_feed(a, p + off, k);
		off += k;
	}
	return openpgp_armor_finish(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct e2ee_facts whole, part;
	struct openpgp_armor a, b;
	uint64_t seed;
	size_t max;
	bool in, out;

	if (size < 2)
		return 0;
	seed = ((uint64_t)data[0] << 8 | data[1]) * 0x9e3779b97f4a7c15ull + 1;
	max = (size_t)(data[1] % 64) + 1;
	if ((data[0] & 0x80) != 0) {
		data += 2;
		size -= 2;
		in = fuzz_armor(data, size, 0, seed, &a);
		out = in && !a.version_header;
		if (fuzz_armor(data, size, 1, seed, &b) != in ||
		    b.error != a.error ||
		    fuzz_armor(data, size, max, seed, &b) != in ||
		    b.error != a.error || b.version_header != a.version_header)
			abort();
		if (in != ref_armor(data, size, false) ||
		    out != ref_armor(data, size, true))
			abort();
		return 0;
	}
	data += 2;
	size -= 2;
	fuzz_screen(data, size, 0, seed, &whole);
	fuzz_invariants(&whole);
	fuzz_screen(data, size, 1, seed, &part);
	if (!fuzz_same(&whole, &part))
		abort();
	fuzz_screen(data, size, max, seed, &part);
	if (!fuzz_same(&whole, &part))
		abort();
	return 0;
}
