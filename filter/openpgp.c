/* filter/openpgp: the packet walk is a byte state machine that skips
 * bodies by count; the armor check is a chain of small stages, each fed one
 * character at a time, with a fast path for runs of base64 in the body:
 *   BEGIN line -> "Version: " line -> END marker held back -> CR/LF dropped
 *   -> cut at the last "=" -> strict base64 -> packet walk. */
#include "filter/openpgp.h"

/* system */
#include <string.h>

const int8_t openpgp_base64_value[256] = {
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63, 52, 53, 54, 55, 56, 57,
	58, 59, 60, 61, -1, -1, -1, -1, -1, -1, -1, 0,  1,  2,  3,  4,  5,  6,
	7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
	25, -1, -1, -1, -1, -1, -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36,
	37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1,
};

/* Walk states. */
enum {
	OPENPGP_WS_HDR = 0, /* at a packet header, or at the end */
	OPENPGP_WS_NEWLEN,  /* first length octet of a new-format header */
	OPENPGP_WS_LEN2,    /* second octet of a two-octet new length */
	OPENPGP_WS_LEN,     /* big-endian length octets (w->need left) */
	OPENPGP_WS_SKIP,    /* inside a body or partial chunk */
	OPENPGP_WS_INDET,   /* an indeterminate body: runs to the end */
	OPENPGP_WS_FAIL,
};

void openpgp_walk_init(struct openpgp_walk *w)
{
	memset(w, 0, sizeof(*w));
	w->state = OPENPGP_WS_HDR;
}

static void openpgp_walk_fail(struct openpgp_walk *w, enum openpgp_walk_error e)
{
	if (w->error == OPENPGP_WALK_OK)
		w->error = (uint8_t)e;
	w->state = OPENPGP_WS_FAIL;
}

/* A body, or one partial chunk of one, of @len octets begins. */
static void openpgp_walk_body(struct openpgp_walk *w, uint64_t len,
			      bool partial)
{
	w->skip = len;
	w->partial = partial;
	if (len > 0)
		w->state = OPENPGP_WS_SKIP;
	else
		w->state = partial ? OPENPGP_WS_NEWLEN : OPENPGP_WS_HDR;
}

/* The first octet of a packet header (the CTB). A packet follows the one
 * before only if that was a session key packet: filtermail returns false
 * as soon as a packet other than PKESK/SKESK is not the last. */
static void openpgp_walk_header(struct openpgp_walk *w, uint8_t b)
{
	if (w->packets > 0 && w->tag != OPENPGP_TAG_PKESK &&
	    w->tag != OPENPGP_TAG_SKESK) {
		openpgp_walk_fail(w, OPENPGP_WALK_ERR_ORDER);
		return;
	}
	if (w->packets >= OPENPGP_PACKETS_MAX) {
		openpgp_walk_fail(w, OPENPGP_WALK_ERR_TOO_MANY);
		return;
	}
	if ((b & 0x80) == 0) {
		openpgp_walk_fail(w, OPENPGP_WALK_ERR_CTB);
		return;
	}
	w->prev_tag = w->tag;
	if ((b & 0x40) != 0) {
		w->tag = b & 0x3f;
		w->state = OPENPGP_WS_NEWLEN;
	} else {
		w->old_format = true;
		w->tag = (b >> 2) & 0x0f;
		if ((b & 3) == 3) {
			w->indeterminate = true;
			w->state = OPENPGP_WS_INDET;
		} else {
			w->need = (uint8_t)(1u << (b & 3)); /* 1, 2 or 4 */
			w->len = 0;
			w->state = OPENPGP_WS_LEN;
		}
	}
	if (w->packets < OPENPGP_TAGS_KEPT)
		w->tags[w->packets] = w->tag;
	w->packets++;
}

void openpgp_walk_feed(struct openpgp_walk *w, const uint8_t *p, size_t n)
{
	const uint8_t *end = p + n;
	uint8_t o;

	w->offset += n;
	while (p < end) {
		switch (w->state) {
		case OPENPGP_WS_SKIP:
			if (w->skip > (uint64_t)(end - p)) {
				w->skip -= (uint64_t)(end - p);
				return;
			}
			p += w->skip;
			w->skip = 0;
			w->state =
				w->partial ? OPENPGP_WS_NEWLEN : OPENPGP_WS_HDR;
			break;
		case OPENPGP_WS_HDR:
			openpgp_walk_header(w, *p++);
			break;
		case OPENPGP_WS_NEWLEN:
			o = *p++;
			if (o < 192) {
				openpgp_walk_body(w, o, false);
			} else if (o < 224) {
				w->len = (uint32_t)(o - 192) << 8;
				w->state = OPENPGP_WS_LEN2;
			} else if (o == 255) {
				w->len = 0;
				w->need = 4;
				w->state = OPENPGP_WS_LEN;
			} else {
				w->partials++;
				openpgp_walk_body(w, (uint64_t)1 << (o & 0x1f),
						  true);
			}
			break;
		case OPENPGP_WS_LEN2:
			w->len += (uint32_t)*p++ + 192;
			openpgp_walk_body(w, w->len, false);
			break;
		case OPENPGP_WS_LEN:
			w->len = w->len << 8 | *p++;
			if (--w->need == 0)
				openpgp_walk_body(w, w->len, false);
			break;
		case OPENPGP_WS_INDET:
		default:
			return;
		}
	}
}

bool openpgp_walk_finish(struct openpgp_walk *w)
{
	switch (w->state) {
	case OPENPGP_WS_FAIL:
		return false;
	case OPENPGP_WS_HDR:
	case OPENPGP_WS_INDET:
		if (w->packets == 0) {
			openpgp_walk_fail(w, OPENPGP_WALK_ERR_EMPTY);
			return false;
		}
		if (w->tag != OPENPGP_TAG_SEIPD) {
			openpgp_walk_fail(w, OPENPGP_WALK_ERR_LAST_TAG);
			return false;
		}
		return true;
	default:
		openpgp_walk_fail(w, OPENPGP_WALK_ERR_TRUNCATED);
		return false;
	}
}

const char *openpgp_walk_error_str(enum openpgp_walk_error e)
{
	switch (e) {
	case OPENPGP_WALK_OK:
		return "ok";
	case OPENPGP_WALK_ERR_CTB:
		return "not a packet header";
	case OPENPGP_WALK_ERR_ORDER:
		return "packet other than PKESK/SKESK before the last";
	case OPENPGP_WALK_ERR_TOO_MANY:
		return "too many packets";
	case OPENPGP_WALK_ERR_TRUNCATED:
		return "truncated packet";
	case OPENPGP_WALK_ERR_EMPTY:
		return "no packets";
	case OPENPGP_WALK_ERR_LAST_TAG:
		return "last packet is not SEIPD";
	}
	return "?";
}

/* Armor states. */
enum {
	OPENPGP_AS_BEGIN = 0, /* matching the BEGIN line */
	OPENPGP_AS_VERSION,   /* matching "Version: " at the start */
	OPENPGP_AS_VSKIP,     /* skipping the Version: line to its CRLF */
	OPENPGP_AS_BODY,
	OPENPGP_AS_FAIL,
};

static const char openpgp_begin[] = "-----BEGIN PGP MESSAGE-----\r\n";
static const char openpgp_end[] = "-----END PGP MESSAGE-----";
static const char openpgp_version[] = "Version: ";
#define OPENPGP_BEGIN_LEN   (sizeof(openpgp_begin) - 1)
#define OPENPGP_END_LEN     (sizeof(openpgp_end) - 1)
#define OPENPGP_VERSION_LEN (sizeof(openpgp_version) - 1)
/* The END marker starts with this many dashes. */
#define OPENPGP_END_DASHES 5

void openpgp_armor_init(struct openpgp_armor *a)
{
	memset(a, 0, sizeof(*a));
	a->state = OPENPGP_AS_BEGIN;
	openpgp_walk_init(&a->walk);
}

static void openpgp_armor_fail(struct openpgp_armor *a,
			       enum openpgp_armor_error e)
{
	if (a->error == OPENPGP_ARMOR_OK)
		a->error = (uint8_t)e;
	a->state = OPENPGP_AS_FAIL;
}

static void openpgp_armor_out(struct openpgp_armor *a, const uint8_t *p,
			      size_t n)
{
	a->decoded += n;
	openpgp_walk_feed(&a->walk, p, n);
}

/* Strict base64 (Rust base64 STANDARD: canonical padding, zero trailing
 * bits) of the text before the last "=". */
static void openpgp_armor_b64(struct openpgp_armor *a, uint8_t c)
{
	uint8_t out[3];
	int v;

	if (a->b64_done)
		goto bad; /* anything after a padded quantum */
	if (c == '=') {
		if (a->nq < 2)
			goto bad;
		a->npad++;
		if (++a->nq < 4)
			return;
		if (a->npad == 2) {
			if ((a->quad & 0x0f) != 0)
				goto bad;
			out[0] = (uint8_t)(a->quad >> 4);
			openpgp_armor_out(a, out, 1);
		} else {
			if ((a->quad & 0x03) != 0)
				goto bad;
			out[0] = (uint8_t)(a->quad >> 10);
			out[1] = (uint8_t)(a->quad >> 2);
			openpgp_armor_out(a, out, 2);
		}
		a->b64_done = true;
		a->nq = 0;
		return;
	}
	v = openpgp_base64_value[c];
	if (v < 0 || a->npad != 0)
		goto bad;
	a->quad = a->quad << 6 | (uint32_t)v;
	if (++a->nq == 4) {
		out[0] = (uint8_t)(a->quad >> 16);
		out[1] = (uint8_t)(a->quad >> 8);
		out[2] = (uint8_t)a->quad;
		openpgp_armor_out(a, out, 3);
		a->nq = 0;
		a->quad = 0;
	}
	return;
bad:
	openpgp_armor_fail(a, OPENPGP_ARMOR_ERR_BASE64);
}

/* A character of the armored text (END marker and trailing CRLFs already
 * taken off). CR and LF are dropped; the text is cut at its last "=": an
 * "=" is held until the next "=" shows it was not the last, and what
 * follows a held "=" only matters by being there, since an "=" with data
 * after it can never decode. */
static void openpgp_armor_text(struct openpgp_armor *a, uint8_t c)
{
	if (c == '\r' || c == '\n')
		return;
	if (c == '=') {
		if (a->eq_held) {
			if (a->eq_tail) {
				openpgp_armor_fail(a, OPENPGP_ARMOR_ERR_BASE64);
				return;
			}
			openpgp_armor_b64(a, '=');
		}
		a->eq_held = true;
		a->eq_tail = false;
		return;
	}
	if (a->eq_held)
		a->eq_tail = true;
	else
		openpgp_armor_b64(a, c);
}

static void openpgp_armor_release(struct openpgp_armor *a, size_t n)
{
	size_t i;

	for (i = 0; i < n && a->state != OPENPGP_AS_FAIL; i++)
		openpgp_armor_text(a, (uint8_t)openpgp_end[i]);
}

/* The END marker and the CRLF pairs after it are held back while they
 * stream by: the text is valid only if they are its very end. */
static void openpgp_armor_body(struct openpgp_armor *a, uint8_t c)
{
	size_t m, dashes;

	if (a->after_end != 0) {
		if (a->after_end == 1 && c == '\r') {
			a->after_end = 2;
			return;
		}
		if (a->after_end == 2 && c == '\n') {
			a->after_end = 1;
			return;
		}
		/* The marker was text after all (the CRLFs are dropped). */
		a->after_end = 0;
		a->end_match = 0;
		openpgp_armor_release(a, OPENPGP_END_LEN);
		if (a->state == OPENPGP_AS_FAIL)
			return;
	}
	m = a->end_match;
	if (c == (uint8_t)openpgp_end[m]) {
		if (++a->end_match == OPENPGP_END_LEN)
			a->after_end = 1;
		return;
	}
	if (m == 0) {
		openpgp_armor_text(a, c);
		return;
	}
	if (c != '-') {
		a->end_match = 0;
		openpgp_armor_release(a, m);
		if (a->state != OPENPGP_AS_FAIL)
			openpgp_armor_text(a, c);
		return;
	}
	/* A dash that does not continue the marker: the longest marker
	 * prefix ending here is the run of trailing dashes plus this one,
	 * at most five. */
	for (dashes = 0; dashes < m && openpgp_end[m - 1 - dashes] == '-';
	     dashes++)
		;
	dashes++;
	if (dashes > OPENPGP_END_DASHES)
		dashes = OPENPGP_END_DASHES;
	a->end_match = (uint8_t)dashes;
	openpgp_armor_release(a, m + 1 - dashes);
}

/* The common case: base64 symbols, CR and LF, with nothing held back and
 * no "=" seen yet. Stops before any other character. */
static size_t openpgp_armor_fast(struct openpgp_armor *a, const uint8_t *p,
				 size_t n)
{
	uint8_t out[192];
	size_t i = 0, o = 0;
	uint32_t quad = a->quad;
	unsigned nq = a->nq;
	int v;

	for (; i < n; i++) {
		v = openpgp_base64_value[p[i]];
		if (v < 0) {
			if (p[i] == '\r' || p[i] == '\n')
				continue;
			break;
		}
		quad = quad << 6 | (uint32_t)v;
		if (++nq == 4) {
			out[o++] = (uint8_t)(quad >> 16);
			out[o++] = (uint8_t)(quad >> 8);
			out[o++] = (uint8_t)quad;
			nq = 0;
			quad = 0;
			if (o == sizeof(out)) {
				openpgp_armor_out(a, out, o);
				o = 0;
			}
		}
	}
	if (o > 0)
		openpgp_armor_out(a, out, o);
	a->quad = quad;
	a->nq = (uint8_t)nq;
	return i;
}

void openpgp_armor_feed(struct openpgp_armor *a, const uint8_t *p, size_t n)
{
	const uint8_t *end = p + n;
	size_t i;
	uint8_t c;

	while (p < end) {
		switch (a->state) {
		case OPENPGP_AS_BEGIN:
			if (*p++ != (uint8_t)openpgp_begin[a->pos]) {
				openpgp_armor_fail(a, OPENPGP_ARMOR_ERR_BEGIN);
				break;
			}
			if (++a->pos == OPENPGP_BEGIN_LEN) {
				a->pos = 0;
				a->state = OPENPGP_AS_VERSION;
			}
			break;
		case OPENPGP_AS_VERSION:
			c = *p++;
			if (c == (uint8_t)openpgp_version[a->pos]) {
				if (++a->pos == OPENPGP_VERSION_LEN) {
					a->version_header = true;
					a->vskip_cr = false;
					a->state = OPENPGP_AS_VSKIP;
				}
				break;
			}
			/* Not an armor header: replay what matched. */
			a->state = OPENPGP_AS_BODY;
			for (i = 0; i < a->pos && a->state == OPENPGP_AS_BODY;
			     i++)
				openpgp_armor_body(a,
						   (uint8_t)openpgp_version[i]);
			if (a->state == OPENPGP_AS_BODY)
				openpgp_armor_body(a, c);
			break;
		case OPENPGP_AS_VSKIP:
			/* split_once("\r\n"): up to the first CRLF pair. */
			c = *p++;
			if (c == '\n' && a->vskip_cr)
				a->state = OPENPGP_AS_BODY;
			a->vskip_cr = c == '\r';
			break;
		case OPENPGP_AS_BODY:
			if (a->end_match == 0 && a->after_end == 0 &&
			    !a->eq_held && !a->b64_done && a->npad == 0) {
				p += openpgp_armor_fast(a, p,
							(size_t)(end - p));
				if (p == end)
					break;
			}
			openpgp_armor_body(a, *p++);
			break;
		default:
			return;
		}
	}
}

bool openpgp_armor_finish(struct openpgp_armor *a)
{
	switch (a->state) {
	case OPENPGP_AS_FAIL:
		return false;
	case OPENPGP_AS_BEGIN:
		openpgp_armor_fail(a, OPENPGP_ARMOR_ERR_BEGIN);
		return false;
	case OPENPGP_AS_BODY:
		if (a->after_end == 1)
			break;
		/* fall through */
	default: /* the END marker never came, or was on the Version: line */
		openpgp_armor_fail(a, OPENPGP_ARMOR_ERR_END);
		return false;
	}
	if (a->nq != 0) {
		openpgp_armor_fail(a, OPENPGP_ARMOR_ERR_BASE64);
		return false;
	}
	if (!openpgp_walk_finish(&a->walk)) {
		openpgp_armor_fail(a, OPENPGP_ARMOR_ERR_PACKETS);
		return false;
	}
	return true;
}

const char *openpgp_armor_error_str(enum openpgp_armor_error e)
{
	switch (e) {
	case OPENPGP_ARMOR_OK:
		return "ok";
	case OPENPGP_ARMOR_ERR_BEGIN:
		return "no BEGIN PGP MESSAGE line";
	case OPENPGP_ARMOR_ERR_END:
		return "no END PGP MESSAGE at the end";
	case OPENPGP_ARMOR_ERR_BASE64:
		return "bad base64";
	case OPENPGP_ARMOR_ERR_PACKETS:
		return "packet walk failed";
	}
	return "?";
}
