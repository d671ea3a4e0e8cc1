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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter/e2ee.h"
#include "filter/mime_header.h"
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

/* ------------------------------------------------------------------ */
/* Reference MIME: mailparse 0.16's parse_mail transcribed (recursive,
 * on whole slices), then filtermail's check_encrypted and is_securejoin,
 * with the limits and the exactly-two-parts rule of filter/e2ee.h. */

enum {
	REF_FROM = 0,
	REF_SUBJECT,
	REF_CTYPE,
	REF_CTE,
	REF_SECUREJOIN,
	REF_AUTOSUB,
	REF_NKEYS,
};
static const char *const ref_keys[REF_NKEYS] = {
	"from",         "subject",
	"content-type", "content-transfer-encoding",
	"secure-join",  "auto-submitted",
};

struct ref_hdrs {
	bool has[REF_NKEYS];
	char *val[REF_NKEYS];
	size_t len[REF_NKEYS];
};

struct ref_entity {
	struct ref_hdrs h;
	char type[MIME_TYPE_MAX + 1];
	size_t nsub;
	bool limit;
	const uint8_t *body;
	size_t body_len;
};

struct ref_top {
	struct ref_entity top;
	struct ref_entity child[2];
	bool child_multi;
	bool limit;
};

static void ref_hdrs_free(struct ref_hdrs *h)
{
	for (int i = 0; i < REF_NKEYS; i++)
		free(h->val[i]);
	memset(h, 0, sizeof(*h));
}

/* str::lines + trim_start per line, joined with one space. */
static char *ref_normalize(const uint8_t *v, size_t n, size_t *len_r)
{
	char *out = malloc(n + 1);
	size_t o = 0, i = 0, e, k;
	bool first = true;

	if (out == NULL)
		abort();
	while (i <= n) {
		const uint8_t *lf = memchr(v + i, '\n', n - i);

		e = lf != NULL ? (size_t)(lf - v) : n;
		k = e;
		if (lf != NULL && k > i && v[k - 1] == '\r')
			k--;
		if (!first)
			out[o++] = ' ';
		first = false;
		while (i < k && mime_is_ws(v[i]))
			i++;
		memcpy(out + o, v + i, k - i);
		o += k - i;
		if (lf == NULL)
			break;
		i = e + 1;
		if (i == n)
			break; /* lines() makes no empty last line */
	}
	out[o] = '\0';
	*len_r = o;
	return out;
}

/* parse_header: octets used, or -1. */
static long ref_header(const uint8_t *r, size_t n, size_t *kend, size_t *vs,
		       size_t *ve)
{
	enum { INITIAL, KEY, PREVALUE, VALUE, VNL } st = INITIAL;
	size_t ix = 0;
	bool have_key = false;
	uint8_t c = r[0];

	*vs = *ve = 0;
	for (;;) {
		switch (st) {
		case INITIAL:
			if (c == ' ')
				return -1;
			st = KEY;
			continue;
		case KEY:
			if (c == ':') {
				*kend = ix;
				have_key = true;
				st = PREVALUE;
			} else if (c == '\n') {
				*kend = ix;
				have_key = true;
				*vs = *ve = ix;
				return (long)ix + 1;
			}
			break;
		case PREVALUE:
			if (c != ' ') {
				*vs = *ve = ix;
				st = VALUE;
				continue;
			}
			break;
		case VALUE:
			if (c == '\n')
				st = VNL;
			else if (c != '\r')
				*ve = ix + 1;
			break;
		case VNL:
			if (c == ' ' || c == '\t') {
				st = VALUE;
				continue;
			}
			return (long)ix;
		}
		ix++;
		if (ix >= n)
			break;
		c = r[ix];
	}
	if (!have_key) {
		*kend = ix;
		*vs = *ve = ix;
	}
	return (long)ix;
}

static bool ref_key_is(const uint8_t *k, size_t n, const char *name)
{
	if (n != strlen(name))
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = k[i];

		if (c >= 'A' && c <= 'Z')
			c = (uint8_t)(c + 32);
		if (c != (uint8_t)name[i])
			return false;
	}
	return true;
}

/* parse_headers: the body offset, or -1. */
static long ref_headers(const uint8_t *r, size_t n, struct ref_hdrs *h)
{
	size_t ix = 0, kend, vs, ve;
	long used;

	while (ix < n) {
		if (r[ix] == '\n')
			return (long)ix + 1;
		if (r[ix] == '\r') {
			if (ix + 1 < n && r[ix + 1] == '\n')
				return (long)ix + 2;
			return -1;
		}
		used = ref_header(r + ix, n - ix, &kend, &vs, &ve);
		if (used < 0)
			return -1;
		for (int k = 0; k < REF_NKEYS; k++) {
			if (h->has[k] || !ref_key_is(r + ix, kend, ref_keys[k]))
				continue;
			h->has[k] = true;
			h->val[k] =
				ref_normalize(r + ix + vs, ve - vs, &h->len[k]);
		}
		ix += (size_t)used;
	}
	return (long)ix;
}

/* find_from_u8_line_prefix */
static size_t ref_find(const uint8_t *r, size_t n, size_t start,
		       const uint8_t *key, size_t klen)
{
	size_t s = start;
	const uint8_t *hit;

	while (s <= n && n - s >= klen) {
		hit = memmem(r + s, n - s, key, klen);
		if (hit == NULL)
			return SIZE_MAX;
		if ((size_t)(hit - r) == start || hit[-1] == '\n')
			return (size_t)(hit - r);
		s = (size_t)(hit - r) + 1;
	}
	return SIZE_MAX;
}

static size_t ref_strip(const uint8_t *r, size_t start, size_t ix)
{
	if (ix > start && r[ix - 1] == '\n') {
		ix--;
		if (ix > start && r[ix - 1] == '\r')
			ix--;
	}
	return ix;
}

/* parse_mail_recursive; false on a parse error. @top gets the first two
 * children when @depth is 0. */
static bool ref_parse(const uint8_t *r, size_t n, bool digest, unsigned depth,
		      struct ref_entity *e, struct ref_top *top)
{
	struct mime_ctype ct;
	uint8_t b[2 + E2EE_BOUNDARY_MAX];
	size_t bl, bs, be, ps, pbs, pe;
	const uint8_t *lf;
	long ib = ref_headers(r, n, &e->h);
	size_t ix_body;

	if (ib < 0)
		return false;
	ix_body = (size_t)ib;
	if (e->h.has[REF_CTYPE]) {
		size_t len = e->h.len[REF_CTYPE];

		mime_ctype_parse(e->h.val[REF_CTYPE],
				 len > E2EE_CTYPE_MAX ? E2EE_CTYPE_MAX : len,
				 &ct);
		if (len > E2EE_CTYPE_MAX) {
			ct.has_boundary = false;
			e->limit = true;
		}
	} else {
		memset(&ct, 0, sizeof(ct));
		snprintf(ct.type, sizeof(ct.type), "%s",
			 digest ? "message/rfc822" : "text/plain");
	}
	memcpy(e->type, ct.type, sizeof(e->type));
	e->body = r + ix_body;
	e->body_len = n - ix_body;
	if (strncmp(ct.type, "multipart", 9) != 0 || !ct.has_boundary)
		return true;
	if (depth + 1 >= E2EE_DEPTH_MAX ||
	    ct.boundary_len > E2EE_BOUNDARY_MAX) {
		e->limit = true;
		return true;
	}
	if (n <= ix_body)
		return true;
	b[0] = b[1] = '-';
	memcpy(b + 2, ct.boundary, ct.boundary_len);
	bl = 2 + ct.boundary_len;
	digest = strcmp(ct.type, "multipart/digest") == 0;
	bs = ref_find(r, n, ix_body, b, bl);
	if (bs == SIZE_MAX)
		return true;
	be = bs + bl;
	for (;;) {
		lf = be < n ? memchr(r + be, '\n', n - be) : NULL;
		if (lf == NULL)
			break;
		ps = (size_t)(lf - r) + 1;
		pbs = ref_find(r, n, ps, b, bl);
		pe = pbs != SIZE_MAX ? ref_strip(r, ps, pbs) : n;
		{
			struct ref_entity child;
			bool ok;

			memset(&child, 0, sizeof(child));
			ok = ref_parse(r + ps, pe - ps, digest, depth + 1,
				       &child, NULL);
			if (child.limit)
				e->limit = true;
			if (ok && depth == 0 && top != NULL) {
				if (child.nsub > 0)
					top->child_multi = true;
				if (e->nsub < 2) {
					top->child[e->nsub] = child;
					memset(&child, 0, sizeof(child));
				}
			}
			ref_hdrs_free(&child.h);
			if (!ok)
				return false;
		}
		e->nsub++;
		be = pbs != SIZE_MAX ? pbs + bl : n;
		if (be + 2 > n || (r[be] == '-' && r[be + 1] == '-'))
			break;
	}
	return true;
}

/* The body as filter/e2ee transfer-decodes it; false on a base64 error. */
static bool ref_decode(const struct ref_entity *e, uint8_t **out_r,
		       size_t *len_r)
{
	const uint8_t *p = e->body;
	size_t n = e->body_len, i, o = 0, m = 0;
	uint8_t *out = malloc(n + 1), *clean = malloc(n + 1);
	char cte[32] = "";
	bool ok = true;

	if (out == NULL || clean == NULL)
		abort();
	if (e->h.has[REF_CTE] && e->h.len[REF_CTE] < sizeof(cte)) {
		for (i = 0; i < e->h.len[REF_CTE]; i++) {
			uint8_t c = (uint8_t)e->h.val[REF_CTE][i];

			cte[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		cte[i] = '\0';
		/* mailparse compares the whole value, NUL octets included */
		if (memchr(cte, '\0', i) != NULL)
			cte[0] = '\0';
	}
	if (strcmp(cte, "base64") == 0) {
		for (i = 0; i < n; i++) {
			if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' &&
			    p[i] != '\f' && p[i] != '\r')
				clean[m++] = p[i];
		}
		ok = m % 4 == 0;
		for (i = 0; ok && i < m; i += 4) {
			uint32_t q = 0;
			int pad = 0;

			for (int k = 0; k < 4; k++) {
				uint8_t c = clean[i + k];

				if (c == '=' && k >= 2 && i + 4 == m) {
					pad++;
					q <<= 6;
				} else if (c == '=' || pad != 0 ||
					   openpgp_base64_value[c] < 0) {
					ok = false;
					break;
				} else {
					q = q << 6 |
					    (uint32_t)openpgp_base64_value[c];
				}
			}
			if (!ok)
				break;
			out[o++] = (uint8_t)(q >> 16);
			if (pad < 2)
				out[o++] = (uint8_t)(q >> 8);
			if (pad < 1)
				out[o++] = (uint8_t)q;
		}
	} else if (strcmp(cte, "quoted-printable") == 0) {
		for (i = 0; i < n; i++) {
			int h1, h2;

			if (p[i] != '=') {
				out[o++] = p[i];
				continue;
			}
			if (i + 1 < n && p[i + 1] == '\n') {
				i++;
				continue;
			}
			if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n') {
				i += 2;
				continue;
			}
#define REF_HEX(c)                                   \
	((c) >= '0' && (c) <= '9'   ? (c) - '0'      \
	 : (c) >= 'a' && (c) <= 'f' ? (c) - 'a' + 10 \
	 : (c) >= 'A' && (c) <= 'F' ? (c) - 'A' + 10 \
				    : -1)
			h1 = i + 1 < n ? REF_HEX(p[i + 1]) : -1;
			h2 = i + 2 < n ? REF_HEX(p[i + 2]) : -1;
			if (h1 >= 0 && h2 >= 0) {
				out[o++] = (uint8_t)(h1 << 4 | h2);
				i += 2;
			} else {
				out[o++] = '=';
			}
		}
	} else {
		memcpy(out, p, n);
		o = n;
	}
	free(clean);
	*out_r = out;
	*len_r = o;
	return ok;
}

static bool ref_trim_eq(const uint8_t *p, size_t n, const char *t, bool icase)
{
	size_t tl = strlen(t);

	while (n > 0 && mime_is_ws(p[0])) {
		p++;
		n--;
	}
	while (n > 0 && mime_is_ws(p[n - 1]))
		n--;
	if (n != tl)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];

		if (icase && c >= 'A' && c <= 'Z')
			c = (uint8_t)(c + 32);
		if (c != (uint8_t)t[i])
			return false;
	}
	return true;
}

static bool ref_val_is(const struct ref_hdrs *h, int k, const char *s)
{
	return h->has[k] && h->len[k] == strlen(s) &&
	       memcmp(h->val[k], s, h->len[k]) == 0;
}

/* Compare the streaming facts @f with the reference on @data. */
static void ref_compare(const uint8_t *data, size_t size,
			const struct e2ee_facts *f)
{
	struct ref_top t;
	uint8_t *body;
	size_t blen;
	bool ok, enc_in = false, enc_out = false, sj = false;
	unsigned structural =
		E2EE_LIMIT_DEPTH | E2EE_LIMIT_BOUNDARY | E2EE_LIMIT_CTYPE;

	memset(&t, 0, sizeof(t));
	ok = ref_parse(data, size, false, 0, &t.top, &t);
	if (ok != !f->parse_error)
		abort();
	if (!ok)
		goto out;
	if (((f->limits & structural) != 0) != t.top.limit)
		abort();
	if (f->parts != t.top.nsub)
		abort();
	if (strcmp(f->mimetype, t.top.type) != 0)
		abort();
	if (t.top.h.has[REF_FROM] && t.top.h.len[REF_FROM] <= E2EE_FROM_MAX) {
		char addr[E2EE_ADDR_MAX + 1];
		const char *v = t.top.h.val[REF_FROM];
		size_t n = t.top.h.len[REF_FROM];
		bool from_ok = mime_addr_extract(v, n, addr, sizeof(addr)) >= 0;

		if (from_ok != f->from_ok ||
		    (from_ok && strcmp(addr, f->from_addr) != 0))
			abort();
	}
	if (ref_val_is(&t.top.h, REF_SUBJECT, "Autocrypt Setup Message") !=
	    f->subject_asm)
		abort();
	if ((t.top.h.has[REF_AUTOSUB] && t.top.h.len[REF_AUTOSUB] > 0) !=
	    f->auto_submitted)
		abort();
	if (t.top.limit)
		goto out;
	if (t.top.nsub == 2 && strcmp(t.top.type, "multipart/encrypted") == 0 &&
	    !t.child_multi &&
	    strcmp(t.child[0].type, "application/pgp-encrypted") == 0 &&
	    strcmp(t.child[1].type, "application/octet-stream") == 0) {
		bool v_ok = ref_decode(&t.child[0], &body, &blen) &&
			    ref_trim_eq(body, blen, "Version: 1", false);

		free(body);
		if (ref_decode(&t.child[1], &body, &blen)) {
			enc_in = v_ok && ref_armor(body, blen, false);
			enc_out = v_ok && ref_armor(body, blen, true);
		}
		free(body);
	}
	if (t.top.nsub == 1 && !t.child_multi &&
	    (ref_val_is(&t.top.h, REF_SECUREJOIN, "vc-request") ||
	     ref_val_is(&t.top.h, REF_SECUREJOIN, "vg-request")) &&
	    strcmp(t.child[0].type, "text/plain") == 0) {
		if (ref_decode(&t.child[0], &body, &blen))
			sj = ref_trim_eq(body, blen, "secure-join: vc-request",
					 true) ||
			     ref_trim_eq(body, blen, "secure-join: vg-request",
					 true);
		free(body);
	}
	if (enc_in != f->encrypted_in || enc_out != f->encrypted_out ||
	    sj != f->securejoin)
		abort();
out:
	ref_hdrs_free(&t.top.h);
	ref_hdrs_free(&t.child[0].h);
	ref_hdrs_free(&t.child[1].h);
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
	ref_compare(data, size, &whole);
	fuzz_screen(data, size, 1, seed, &part);
	if (!fuzz_same(&whole, &part))
		abort();
	fuzz_screen(data, size, max, seed, &part);
	if (!fuzz_same(&whole, &part))
		abort();
	return 0;
}
