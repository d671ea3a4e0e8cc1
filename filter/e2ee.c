/* filter/e2ee: three layers over the byte stream.
 *  1. Lines. Where a boundary may start a line, the line start is held
 *     (lbuf) until it is known not to be one; the CRLF before a boundary
 *     line is held too (eol, held_cr) and dropped if it is one. Inside a
 *     line, memchr jumps to the next LF.
 *  2. Entities (frames): a header section read byte by byte the way
 *     mailparse's parse_header does, then a body that is a multipart
 *     (whose boundary becomes a candidate for line starts), or a leaf.
 *  3. The bodies of the first two parts of the message: transfer-decoded,
 *     then matched against "Version: 1" or a Secure-Join request, or fed
 *     to the OpenPGP armor check.
 * Header bytes go to the header parser as they come, line ends included,
 * since a header section ending before a boundary reads the same with or
 * without its last CRLF. */
#include "filter/e2ee.h"

/* system */
#include <stdio.h>
#include <string.h>

/* project */
#include "filter/mime_header.h"

_Static_assert(sizeof(((struct e2ee_facts *)0)->mimetype) == MIME_TYPE_MAX + 1,
	       "mimetype buffer");
_Static_assert(E2EE_DEPTH_MAX <= 32, "frames are bits of a uint32_t");
_Static_assert(2 + E2EE_BOUNDARY_MAX <= 255, "blen and llen are uint8_t");

enum { E2EE_K_HEADERS = 0, E2EE_K_LEAF, E2EE_K_MULTI };
enum { E2EE_M_PREAMBLE = 0, E2EE_M_PART, E2EE_M_EPILOGUE };
enum { E2EE_L_LINE = 0, E2EE_L_START, E2EE_L_BLINE };
/* Header parser states (mailparse parse_header / parse_headers). */
enum {
	E2EE_HS_START = 0, /* a field or the empty line */
	E2EE_HS_CR,        /* a CR where a field would start */
	E2EE_HS_KEY,
	E2EE_HS_PREVALUE, /* after ":", skipping spaces */
	E2EE_HS_VALUE,
	E2EE_HS_VALUE_NL, /* after the LF of a value line */
};
/* Fields kept; index into vlen[]. */
enum {
	E2EE_F_NONE = 0,
	E2EE_F_FROM,
	E2EE_F_SUBJECT,
	E2EE_F_CTYPE,
	E2EE_F_CTE,
	E2EE_F_SECUREJOIN,
	E2EE_F_AUTOSUB,
	E2EE_F_ASM,
};
/* What a part body is checked for. */
enum {
	E2EE_R_NONE = 0,
	E2EE_R_VERSION,    /* part 0 application/pgp-encrypted */
	E2EE_R_SECUREJOIN, /* part 0 text/plain */
	E2EE_R_ARMOR,      /* part 1 application/octet-stream */
};
enum { E2EE_PT_OTHER = 0, E2EE_PT_PGP, E2EE_PT_TEXT, E2EE_PT_OCTET };
enum { E2EE_CTE_IDENTITY = 0, E2EE_CTE_BASE64, E2EE_CTE_QP };
enum { E2EE_QP_TEXT = 0, E2EE_QP_EQ, E2EE_QP_EQ_CR, E2EE_QP_EQ_HEX };
enum { E2EE_MT_LEAD = 0, E2EE_MT_MATCH, E2EE_MT_TRAIL, E2EE_MT_FAIL };
/* Why an entity ends. */
enum { E2EE_END_OWN = 0, E2EE_END_ANCESTOR, E2EE_END_EOF };

#define E2EE_D0 (1u << 0) /* the message */
#define E2EE_D1 (1u << 1) /* its parts */
#define E2EE_DN (1u << 2) /* deeper */

static const struct e2ee_field {
	const char *name; /* lower case */
	uint8_t id;
	uint8_t depths;
} e2ee_fields[] = {
	{"from", E2EE_F_FROM, E2EE_D0},
	{"subject", E2EE_F_SUBJECT, E2EE_D0},
	{"content-type", E2EE_F_CTYPE, E2EE_D0 | E2EE_D1 | E2EE_DN},
	{"content-transfer-encoding", E2EE_F_CTE, E2EE_D1},
	{"secure-join", E2EE_F_SECUREJOIN, E2EE_D0},
	{"auto-submitted", E2EE_F_AUTOSUB, E2EE_D0},
	{"autocrypt-setup-message", E2EE_F_ASM, E2EE_D0},
};

static const char e2ee_version_1[] = "Version: 1";
static const char *const e2ee_sj_requests[2] = {
	"secure-join: vc-request",
	"secure-join: vg-request",
};
#define E2EE_SJ_LEN (sizeof("secure-join: vc-request") - 1)

static uint8_t e2ee_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + ('a' - 'A')) : c;
}

/* Rust's u8::is_ascii_whitespace (base64 transfer decoding skips these):
 * no VT, unlike str::trim. */
static bool e2ee_is_b64_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

static bool e2ee_ascii_caseeq(const char *a, const char *b)
{
	for (; *a != '\0' && *b != '\0'; a++, b++) {
		if (e2ee_lower((uint8_t)*a) != e2ee_lower((uint8_t)*b))
			return false;
	}
	return *a == *b;
}

static void e2ee_parse_error(struct e2ee_state *st)
{
	st->dead = true;
	st->facts.parse_error = true;
}

void e2ee_init(struct e2ee_state *st)
{
	memset(st, 0, sizeof(*st));
	st->lmode = E2EE_L_LINE;
	st->frames[0].kind = E2EE_K_HEADERS;
	st->hstate = E2EE_HS_START;
}

/* ------------------------------------------------------------------ */
/* Header fields */

static char *e2ee_field_buf(struct e2ee_state *st, uint8_t id, size_t *cap_r)
{
	switch (id) {
	case E2EE_F_FROM:
		*cap_r = sizeof(st->from);
		return st->from;
	case E2EE_F_SUBJECT:
		*cap_r = sizeof(st->subject);
		return st->subject;
	case E2EE_F_CTYPE:
		*cap_r = sizeof(st->ctype);
		return st->ctype;
	case E2EE_F_CTE:
		*cap_r = sizeof(st->cte);
		return st->cte;
	case E2EE_F_SECUREJOIN:
		*cap_r = sizeof(st->securejoin);
		return st->securejoin;
	case E2EE_F_AUTOSUB:
		*cap_r = sizeof(st->autosub);
		return st->autosub;
	default:
		*cap_r = 0;
		return NULL;
	}
}

/* Append to the value of the field being kept (counted past its cap). */
static void e2ee_hput(struct e2ee_state *st, uint8_t c)
{
	uint8_t id = st->hwhich;
	size_t cap;
	char *buf = e2ee_field_buf(st, id, &cap);

	if (st->vlen[id] < cap)
		buf[st->vlen[id]] = (char)c;
	if (st->vlen[id] < UINT32_MAX)
		st->vlen[id]++;
}

/* A value character: every line of a value is trimmed at its start
 * (mailparse normalizes with str::lines and trim_start). */
static void e2ee_hval(struct e2ee_state *st, uint8_t c)
{
	if (st->hline_start) {
		if (mime_is_ws(c))
			return;
		st->hline_start = false;
	}
	e2ee_hput(st, c);
}

static void e2ee_hfield_begin(struct e2ee_state *st)
{
	unsigned depth =
		st->top == 0 ? E2EE_D0 : (st->top == 1 ? E2EE_D1 : E2EE_DN);
	size_t i;

	st->hwhich = E2EE_F_NONE;
	st->hcr = 0;
	st->hline_start = true;
	if (st->kover)
		return;
	for (i = 0; i < sizeof(e2ee_fields) / sizeof(e2ee_fields[0]); i++) {
		const struct e2ee_field *fd = &e2ee_fields[i];

		if (strlen(fd->name) != st->klen ||
		    memcmp(fd->name, st->key, st->klen) != 0)
			continue;
		if ((fd->depths & depth) == 0 ||
		    (st->hseen & (1u << fd->id)) != 0)
			return; /* only the first instance counts */
		st->hseen |= 1u << fd->id;
		st->hwhich = fd->id;
		st->vlen[fd->id] = 0;
		return;
	}
}

static void e2ee_body_begin(struct e2ee_state *st);

/* One octet of a header section. */
static void e2ee_hbyte(struct e2ee_state *st, uint8_t c)
{
	switch (st->hstate) {
	case E2EE_HS_START:
	start:
		if (c == '\n') {
			e2ee_body_begin(st);
			return;
		}
		if (c == '\r') {
			st->hstate = E2EE_HS_CR;
			return;
		}
		if (c == ' ') {
			/* "Header cannot start with a space" */
			e2ee_parse_error(st);
			return;
		}
		st->klen = 0;
		st->kover = false;
		st->hstate = E2EE_HS_KEY;
		/* fall through */
	case E2EE_HS_KEY:
		if (c == ':') {
			e2ee_hfield_begin(st);
			st->hstate = E2EE_HS_PREVALUE;
		} else if (c == '\n') {
			/* A line without ":" is a field named by the whole
			 * line with an empty value, and the next line is not
			 * its continuation ("Content-Type" LF is an empty
			 * Content-Type for mailparse). */
			e2ee_hfield_begin(st);
			st->hwhich = E2EE_F_NONE;
			st->hstate = E2EE_HS_START;
		} else if (st->klen < sizeof(st->key)) {
			st->key[st->klen++] = (char)e2ee_lower(c);
		} else {
			st->kover = true;
		}
		return;
	case E2EE_HS_CR:
		if (c == '\n')
			e2ee_body_begin(st);
		else
			e2ee_parse_error(st); /* "unexpected lone CR" */
		return;
	case E2EE_HS_PREVALUE:
		if (c == ' ')
			return;
		st->hstate = E2EE_HS_VALUE;
		/* fall through */
	case E2EE_HS_VALUE:
		if (c == '\n') {
			st->hstate = E2EE_HS_VALUE_NL;
		} else if (c == '\r') {
			if (st->hcr < UINT16_MAX)
				st->hcr++;
		} else if (st->hwhich != E2EE_F_NONE) {
			for (; st->hcr > 0; st->hcr--)
				e2ee_hval(st, '\r');
			e2ee_hval(st, c);
		}
		return;
	case E2EE_HS_VALUE_NL:
		if (c == ' ' || c == '\t') {
			/* A folded line: str::lines drops one CR before the
			 * LF, the lines are joined with one space. */
			if (st->hwhich != E2EE_F_NONE) {
				for (; st->hcr > 1; st->hcr--)
					e2ee_hval(st, '\r');
				e2ee_hput(st, ' ');
				st->hline_start = true;
			}
			st->hcr = 0;
			st->hstate = E2EE_HS_VALUE;
			return;
		}
		st->hwhich =
			E2EE_F_NONE; /* trailing CRs are not in the value */
		st->hstate = E2EE_HS_START;
		goto start;
	}
}

/* The entity ends inside its header section: an empty body. */
static void e2ee_headers_end(struct e2ee_state *st)
{
	if (st->hstate == E2EE_HS_CR) {
		e2ee_parse_error(st);
		return;
	}
	if (st->hstate == E2EE_HS_KEY)
		e2ee_hfield_begin(st); /* a name without ":" at the end */
	st->hwhich = E2EE_F_NONE;
	e2ee_body_begin(st);
}

static void e2ee_header_begin(struct e2ee_state *st)
{
	st->hstate = E2EE_HS_START;
	st->hwhich = E2EE_F_NONE;
	st->hseen = 0;
	st->klen = 0;
	st->hcr = 0;
}

/* A kept value as a string (its first @cap octets if longer); false if
 * the field was not there. */
static bool e2ee_field_str(struct e2ee_state *st, uint8_t id, const char **v_r,
			   size_t *len_r, bool *trunc_r)
{
	size_t cap;
	const char *buf = e2ee_field_buf(st, id, &cap);

	if ((st->hseen & (1u << id)) == 0)
		return false;
	*v_r = buf;
	*len_r = st->vlen[id] < cap ? st->vlen[id] : cap;
	*trunc_r = st->vlen[id] > cap;
	return true;
}

static bool e2ee_field_is(struct e2ee_state *st, uint8_t id, const char *s)
{
	const char *v;
	size_t len;
	bool trunc;

	return e2ee_field_str(st, id, &v, &len, &trunc) && !trunc &&
	       len == strlen(s) && memcmp(v, s, len) == 0;
}

/* Secure-Join: exactly "vc-request" or "vg-request" (no trimming of the
 * end: mailparse keeps trailing blanks). Kept apart from the facts since
 * D.4 needs the body too. */
static bool e2ee_sj_header(struct e2ee_state *st)
{
	return e2ee_field_is(st, E2EE_F_SECUREJOIN, "vc-request") ||
	       e2ee_field_is(st, E2EE_F_SECUREJOIN, "vg-request");
}

/* ------------------------------------------------------------------ */
/* Top-level facts, known once the message header section is read */

static void e2ee_top_facts(struct e2ee_state *st, const struct mime_ctype *ct)
{
	struct e2ee_facts *f = &st->facts;
	const char *v;
	size_t len, i;
	bool trunc;

	memcpy(f->mimetype, ct->type, sizeof(f->mimetype));
	if (ct->has_report_type) {
		for (i = 0; i < ct->report_type_len && i < E2EE_SHORT_MAX; i++)
			f->report_type[i] =
				(char)e2ee_lower((uint8_t)ct->report_type[i]);
		f->report_type[i] = '\0';
	}
	if (e2ee_field_str(st, E2EE_F_FROM, &v, &len, &trunc)) {
		f->has_from = true;
		while (len > 0 && mime_is_ws((uint8_t)v[0])) {
			v++;
			len--;
		}
		if (!trunc) {
			while (len > 0 && mime_is_ws((uint8_t)v[len - 1]))
				len--;
		}
		memcpy(f->from_value, v, len);
		f->from_value[len] = '\0';
		if (trunc)
			f->limits |= E2EE_LIMIT_FROM;
		/* Cut text is good only up to a ">" (D.10 cuts there). */
		if (!trunc || memchr(v, '>', len) != NULL)
			f->from_ok =
				mime_addr_extract(v, len, f->from_addr,
						  sizeof(f->from_addr)) >= 0;
	}
	if (e2ee_field_str(st, E2EE_F_SUBJECT, &v, &len, &trunc)) {
		f->has_subject = true;
		f->subject_asm = e2ee_field_is(st, E2EE_F_SUBJECT,
					       "Autocrypt Setup Message");
	}
	f->has_securejoin = (st->hseen & (1u << E2EE_F_SECUREJOIN)) != 0;
	f->auto_submitted = (st->hseen & (1u << E2EE_F_AUTOSUB)) != 0 &&
			    st->vlen[E2EE_F_AUTOSUB] > 0;
	f->asm_header = (st->hseen & (1u << E2EE_F_ASM)) != 0;
	st->sj_hdr = e2ee_sj_header(st);
	f->asm_shape =
		f->subject_asm && strcmp(f->mimetype, "multipart/mixed") == 0;
	f->mailer_daemon = f->auto_submitted && f->from_ok &&
			   strncmp(f->from_addr, "mailer-daemon@", 14) == 0 &&
			   strcmp(f->mimetype, "multipart/report") == 0;
	f->mdn = strcmp(f->mimetype, "multipart/report") == 0 &&
		 strcmp(f->report_type, "disposition-notification") == 0;
}

/* ------------------------------------------------------------------ */
/* Part bodies */

static uint8_t e2ee_part_type(const char *mimetype)
{
	if (strcmp(mimetype, "application/pgp-encrypted") == 0)
		return E2EE_PT_PGP;
	if (strcmp(mimetype, "text/plain") == 0)
		return E2EE_PT_TEXT;
	if (strcmp(mimetype, "application/octet-stream") == 0)
		return E2EE_PT_OCTET;
	return E2EE_PT_OTHER;
}

/* "Trimmed, it equals one of the targets" (all of length @tlen). */
static void e2ee_match(uint8_t *state, uint8_t *pos, uint8_t *alive,
		       const char *const *targets, size_t nt, size_t tlen,
		       bool icase, const uint8_t *p, size_t n)
{
	size_t i, k;
	uint8_t c, t;

	for (i = 0; i < n; i++) {
		c = p[i];
		switch (*state) {
		case E2EE_MT_LEAD:
			if (mime_is_ws(c))
				break;
			*state = E2EE_MT_MATCH;
			*pos = 0;
			*alive = (uint8_t)((1u << nt) - 1);
			/* fall through */
		case E2EE_MT_MATCH:
			if (*pos == tlen) {
				*state = mime_is_ws(c) ? E2EE_MT_TRAIL
						       : E2EE_MT_FAIL;
				break;
			}
			for (k = 0; k < nt; k++) {
				t = (uint8_t)targets[k][*pos];
				if ((icase ? e2ee_lower(c) : c) != t)
					*alive &= (uint8_t) ~(1u << k);
			}
			if (*alive == 0)
				*state = E2EE_MT_FAIL;
			else
				(*pos)++;
			break;
		case E2EE_MT_TRAIL:
			if (!mime_is_ws(c))
				*state = E2EE_MT_FAIL;
			break;
		default:
			return;
		}
	}
}

static bool e2ee_match_ok(uint8_t state, uint8_t pos, size_t tlen)
{
	return state == E2EE_MT_TRAIL ||
	       (state == E2EE_MT_MATCH && pos == tlen);
}

/* Transfer-decoded octets of a part body. */
static void e2ee_role(struct e2ee_state *st, const uint8_t *p, size_t n)
{
	static const char *const version[1] = {e2ee_version_1};

	switch (st->role) {
	case E2EE_R_VERSION:
		e2ee_match(&st->v_state, &st->v_pos, &st->v_alive, version, 1,
			   sizeof(e2ee_version_1) - 1, false, p, n);
		break;
	case E2EE_R_SECUREJOIN:
		e2ee_match(&st->sj_state, &st->sj_pos, &st->sj_alive,
			   e2ee_sj_requests, 2, E2EE_SJ_LEN, true, p, n);
		break;
	case E2EE_R_ARMOR:
		openpgp_armor_feed(&st->armor, p, n);
		break;
	}
}

/* base64 as mailparse decodes a body: ASCII whitespace skipped, padding
 * required, trailing bits not checked (data_encoding MIME permissive).
 * Symbols after a padded quantum are an error. */
static void e2ee_b64(struct e2ee_state *st, const uint8_t *p, size_t n)
{
	uint8_t out[192];
	size_t i, o = 0;
	int v;

	for (i = 0; i < n && !st->cte_err; i++) {
		uint8_t c = p[i];

		if (e2ee_is_b64_ws(c))
			continue;
		if (st->b64_done) {
			st->cte_err = true;
			break;
		}
		if (c == '=') {
			if (st->b64_n < 2) {
				st->cte_err = true;
				break;
			}
			st->b64_pad++;
			if (++st->b64_n < 4)
				continue;
			if (st->b64_pad == 2) {
				out[o++] = (uint8_t)(st->b64_quad >> 4);
			} else {
				out[o++] = (uint8_t)(st->b64_quad >> 10);
				out[o++] = (uint8_t)(st->b64_quad >> 2);
			}
			st->b64_done = true;
			st->b64_n = 0;
			continue;
		}
		v = openpgp_base64_value[c];
		if (v < 0 || st->b64_pad != 0) {
			st->cte_err = true;
			break;
		}
		st->b64_quad = st->b64_quad << 6 | (uint32_t)v;
		if (++st->b64_n == 4) {
			out[o++] = (uint8_t)(st->b64_quad >> 16);
			out[o++] = (uint8_t)(st->b64_quad >> 8);
			out[o++] = (uint8_t)st->b64_quad;
			st->b64_n = 0;
			st->b64_quad = 0;
		}
		if (o + 3 > sizeof(out)) {
			e2ee_role(st, out, o);
			o = 0;
		}
	}
	if (o > 0 && !st->cte_err)
		e2ee_role(st, out, o);
}

static int e2ee_hex(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = e2ee_lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* quoted-printable, leniently: "=XX" (either case), soft line breaks
 * "=" CRLF and "=" LF; any other "=" stays as it is. */
static void e2ee_qp(struct e2ee_state *st, const uint8_t *p, size_t n)
{
	uint8_t out[192], c;
	size_t i, o = 0;
	int h;

	for (i = 0; i < n; i++) {
		if (o + 3 > sizeof(out)) {
			e2ee_role(st, out, o);
			o = 0;
		}
		c = p[i];
	again:
		switch (st->qp_state) {
		case E2EE_QP_TEXT:
			if (c == '=')
				st->qp_state = E2EE_QP_EQ;
			else
				out[o++] = c;
			break;
		case E2EE_QP_EQ:
			if (c == '\n') {
				st->qp_state = E2EE_QP_TEXT;
			} else if (c == '\r') {
				st->qp_state = E2EE_QP_EQ_CR;
			} else if (e2ee_hex(c) >= 0) {
				st->qp_hex = c;
				st->qp_state = E2EE_QP_EQ_HEX;
			} else {
				out[o++] = '=';
				st->qp_state = E2EE_QP_TEXT;
				goto again;
			}
			break;
		case E2EE_QP_EQ_CR:
			st->qp_state = E2EE_QP_TEXT;
			if (c == '\n')
				break;
			out[o++] = '=';
			out[o++] = '\r';
			goto again;
		case E2EE_QP_EQ_HEX:
			st->qp_state = E2EE_QP_TEXT;
			if ((h = e2ee_hex(c)) >= 0) {
				out[o++] = (uint8_t)(e2ee_hex(st->qp_hex) << 4 |
						     h);
				break;
			}
			out[o++] = '=';
			out[o++] = st->qp_hex;
			goto again;
		}
	}
	if (o > 0)
		e2ee_role(st, out, o);
}

static void e2ee_body(struct e2ee_state *st, const uint8_t *p, size_t n)
{
	switch (st->cte_kind) {
	case E2EE_CTE_BASE64:
		e2ee_b64(st, p, n);
		break;
	case E2EE_CTE_QP:
		e2ee_qp(st, p, n);
		break;
	default:
		e2ee_role(st, p, n);
		break;
	}
}

/* The body of part 0 or 1 has ended: record what it was. */
static void e2ee_body_end(struct e2ee_state *st)
{
	struct e2ee_part *pt = &st->part[st->cur_idx];
	uint8_t tail[2];

	if (st->cte_kind == E2EE_CTE_BASE64 && st->b64_n != 0)
		st->cte_err = true;
	if (st->cte_kind == E2EE_CTE_QP && st->qp_state != E2EE_QP_TEXT) {
		/* A dangling "=", "=" CR or "=X" is text. */
		tail[0] = '=';
		tail[1] = st->qp_state == E2EE_QP_EQ_CR ? '\r' : st->qp_hex;
		e2ee_role(st, tail, st->qp_state == E2EE_QP_EQ ? 1 : 2);
	}
	switch (st->role) {
	case E2EE_R_VERSION:
		pt->version_ok = !st->cte_err &&
				 e2ee_match_ok(st->v_state, st->v_pos,
					       sizeof(e2ee_version_1) - 1);
		break;
	case E2EE_R_SECUREJOIN:
		pt->sj_ok =
			!st->cte_err &&
			e2ee_match_ok(st->sj_state, st->sj_pos, E2EE_SJ_LEN);
		break;
	case E2EE_R_ARMOR:
		pt->armor_ok = openpgp_armor_finish(&st->armor) && !st->cte_err;
		pt->armor_version = st->armor.version_header;
		pt->armor_error = st->armor.error;
		pt->walk_error = st->armor.walk.error;
		pt->packets = st->armor.walk.packets;
		memcpy(pt->tags, st->armor.walk.tags, sizeof(pt->tags));
		break;
	}
	st->role = E2EE_R_NONE;
}

/* ------------------------------------------------------------------ */
/* Entities */

/* The header section of the top frame is complete: what is its body? */
static void e2ee_body_begin(struct e2ee_state *st)
{
	struct e2ee_frame *f = &st->frames[st->top];
	struct mime_ctype ct;
	const char *v;
	size_t len;
	bool trunc;

	if (e2ee_field_str(st, E2EE_F_CTYPE, &v, &len, &trunc)) {
		mime_ctype_parse(v, len, &ct);
		if (trunc) {
			/* The parameters may be cut: no boundary. */
			st->facts.limits |= E2EE_LIMIT_CTYPE;
			ct.has_boundary = false;
			ct.has_report_type = false;
		}
	} else {
		/* RFC 2045 5.2, RFC 2046 5.1.5 (as mailparse) */
		memset(&ct, 0, sizeof(ct));
		snprintf(ct.type, sizeof(ct.type), "%s",
			 st->top > 0 && st->frames[st->top - 1].digest
				 ? "message/rfc822"
				 : "text/plain");
	}
	if (st->top == 0)
		e2ee_top_facts(st, &ct);
	f->kind = E2EE_K_LEAF;
	if (strncmp(ct.type, "multipart", 9) == 0 && ct.has_boundary) {
		if (st->top + 1 >= E2EE_DEPTH_MAX) {
			st->facts.limits |= E2EE_LIMIT_DEPTH;
		} else if (ct.boundary_len > E2EE_BOUNDARY_MAX) {
			st->facts.limits |= E2EE_LIMIT_BOUNDARY;
		} else {
			f->kind = E2EE_K_MULTI;
			f->mstate = E2EE_M_PREAMBLE;
			f->blen = (uint8_t)(2 + ct.boundary_len);
			f->boundary[0] = '-';
			f->boundary[1] = '-';
			memcpy(f->boundary + 2, ct.boundary, ct.boundary_len);
			f->digest = strcmp(ct.type, "multipart/digest") == 0;
			f->parts = 0;
			st->cands |= 1u << st->top;
		}
	}
	if (st->top != 1 || st->cur_idx > 1)
		return;
	st->part[st->cur_idx].type = e2ee_part_type(ct.type);
	if (f->kind != E2EE_K_LEAF)
		return;
	if (st->cur_idx == 0 && st->part[0].type == E2EE_PT_PGP) {
		st->role = E2EE_R_VERSION;
	} else if (st->cur_idx == 0 && st->part[0].type == E2EE_PT_TEXT) {
		st->role = E2EE_R_SECUREJOIN;
	} else if (st->cur_idx == 1 && st->part[1].type == E2EE_PT_OCTET) {
		st->role = E2EE_R_ARMOR;
		openpgp_armor_init(&st->armor);
	} else {
		return;
	}
	/* mailparse lower-cases the value and takes base64 and
	 * quoted-printable; anything else is read as it is. */
	st->cte_kind = E2EE_CTE_IDENTITY;
	if (e2ee_field_str(st, E2EE_F_CTE, &v, &len, &trunc) && !trunc) {
		char low[sizeof(st->cte) + 1];
		size_t i;

		for (i = 0; i < len; i++)
			low[i] = (char)e2ee_lower((uint8_t)v[i]);
		low[len] = '\0';
		/* The whole value: "base64" NUL "x" is no base64. */
		if (len == 6 && memcmp(low, "base64", 6) == 0)
			st->cte_kind = E2EE_CTE_BASE64;
		else if (len == 16 && memcmp(low, "quoted-printable", 16) == 0)
			st->cte_kind = E2EE_CTE_QP;
	}
	st->cte_err = false;
	st->b64_done = false;
	st->b64_n = 0;
	st->b64_pad = 0;
	st->b64_quad = 0;
	st->qp_state = E2EE_QP_TEXT;
	st->v_state = E2EE_MT_LEAD;
	st->sj_state = E2EE_MT_LEAD;
}

/* The top frame @j ends. */
static void e2ee_entity_end(struct e2ee_state *st, unsigned j, int why)
{
	struct e2ee_frame *f = &st->frames[j];

	if (f->kind == E2EE_K_HEADERS)
		e2ee_headers_end(st);
	if (st->dead)
		return;
	if (j == 1 && f->kind == E2EE_K_LEAF && st->role != E2EE_R_NONE)
		e2ee_body_end(st);
	st->cands &= ~(1u << j);
	if (j == 0)
		return;
	/* A part whose boundary line is followed at once by the end of the
	 * enclosing part (or by the end of data after "--b" LF) was never
	 * there for mailparse: no LF left in what follows the boundary. */
	if (!f->got_bytes && (why == E2EE_END_ANCESTOR ||
			      (why == E2EE_END_EOF && f->cancel_at_eof))) {
		st->frames[j - 1].parts--;
		if (j == 1 && st->cur_idx < 2)
			memset(&st->part[st->cur_idx], 0, sizeof(st->part[0]));
		return;
	}
	if (j == 1 && f->kind == E2EE_K_MULTI && f->parts > 0) {
		st->part_multi = true;
		if (st->cur_idx < 2)
			st->part[st->cur_idx].multipart = true;
	}
}

/* Octets of the top entity. */
static void e2ee_deliver(struct e2ee_state *st, const uint8_t *p, size_t n)
{
	struct e2ee_frame *f;

	while (n > 0 && !st->dead) {
		f = &st->frames[st->top];
		f->got_bytes = true;
		switch (f->kind) {
		case E2EE_K_HEADERS:
			e2ee_hbyte(st, *p++);
			n--;
			break;
		case E2EE_K_LEAF:
			if (st->role != E2EE_R_NONE && st->top == 1)
				e2ee_body(st, p, n);
			return;
		default:
			return;
		}
	}
}

/* ------------------------------------------------------------------ */
/* Lines and boundaries */

static const uint8_t e2ee_crlf[2] = {'\r', '\n'};

/* The held line end and line start were content after all. */
static void e2ee_flush_start(struct e2ee_state *st)
{
	if (st->eol != 0)
		e2ee_deliver(st, st->eol == 2 ? e2ee_crlf : e2ee_crlf + 1,
			     st->eol);
	st->eol = 0;
	if (st->llen > 0)
		e2ee_deliver(st, (const uint8_t *)st->lbuf, st->llen);
	st->llen = 0;
}

static void e2ee_line_start(struct e2ee_state *st)
{
	st->lmode = st->cands != 0 ? E2EE_L_START : E2EE_L_LINE;
	st->llen = 0;
	st->alive = st->cands;
}

static void e2ee_bline_byte(struct e2ee_state *st, uint8_t c);

/* A line starts with the boundary of frame @k: the entities inside it
 * end, and the rest of the line decides what comes next. */
static void e2ee_boundary(struct e2ee_state *st, unsigned k)
{
	unsigned j, i, blen = st->frames[k].blen, llen = st->llen;

	st->eol = 0; /* the line end before a boundary is part of it */
	for (j = st->top; j > k && !st->dead; j--) {
		e2ee_entity_end(st, j,
				j - 1 == k ? E2EE_END_OWN : E2EE_END_ANCESTOR);
		st->top = (uint8_t)(j - 1);
	}
	if (st->dead)
		return;
	st->bl_level = (uint8_t)k;
	st->bl_first = st->frames[k].mstate == E2EE_M_PREAMBLE;
	st->bl_cr = false;
	st->bl_rest = 0;
	st->lmode = E2EE_L_BLINE;
	st->llen = 0;
	for (i = blen; i < llen; i++)
		e2ee_bline_byte(st, (uint8_t)st->lbuf[i]);
}

/* One octet at a line start where a boundary may begin: -1 if the line
 * cannot be a boundary line (the octet is not used), 0 if it still may,
 * 1 if it is one (now handled). */
static int e2ee_start_byte(struct e2ee_state *st, uint8_t c)
{
	uint32_t alive = st->alive;
	unsigned n = st->llen, k;
	const struct e2ee_frame *f;

	for (k = 0; k <= st->top; k++) {
		if ((alive & (1u << k)) == 0)
			continue;
		f = &st->frames[k];
		if (n < f->blen && (uint8_t)f->boundary[n] != c)
			alive &= ~(1u << k);
	}
	st->alive = alive;
	if (alive == 0)
		return -1;
	st->lbuf[st->llen++] = (char)c;
	/* The outermost boundary wins: mailparse cuts the enclosing part
	 * first. Wait while an outer one may still match. */
	k = (unsigned)__builtin_ctz(alive);
	if (n + 1 < st->frames[k].blen)
		return 0;
	e2ee_boundary(st, k);
	return 1;
}

/* The rest of a boundary line has ended with its LF. */
static void e2ee_bline_end(struct e2ee_state *st)
{
	unsigned k = st->bl_level;
	struct e2ee_frame *f = &st->frames[k], *part;
	unsigned rest = st->bl_rest - (st->bl_cr ? 1u : 0u);
	unsigned eol_len = st->bl_cr ? 2u : 1u;

	if (!st->bl_first && rest >= 2 && st->bl_c[0] == '-' &&
	    st->bl_c[1] == '-') {
		/* The close delimiter: the rest is epilogue. mailparse
		 * only looks for it after a part. */
		f->mstate = E2EE_M_EPILOGUE;
		st->cands &= ~(1u << k);
	} else {
		f->mstate = E2EE_M_PART;
		if (k == 0)
			st->cur_idx = f->parts < 255 ? (uint8_t)f->parts : 255;
		f->parts++;
		st->top = (uint8_t)(k + 1);
		part = &st->frames[k + 1];
		memset(part, 0, sizeof(*part));
		part->kind = E2EE_K_HEADERS;
		/* mailparse stops when fewer than two octets follow a
		 * boundary: "--b" LF at the very end starts no part. */
		part->cancel_at_eof = !st->bl_first && rest + eol_len < 2;
		e2ee_header_begin(st);
		st->role = E2EE_R_NONE;
	}
	e2ee_line_start(st);
}

static void e2ee_bline_byte(struct e2ee_state *st, uint8_t c)
{
	if (c == '\n') {
		e2ee_bline_end(st);
		return;
	}
	if (st->bl_rest < 2)
		st->bl_c[st->bl_rest] = (char)c;
	if (st->bl_rest < 3)
		st->bl_rest++;
	st->bl_cr = c == '\r';
}

/* Inside a line: up to and including its LF. Returns where it stopped. */
static const uint8_t *e2ee_line(struct e2ee_state *st, const uint8_t *p,
				const uint8_t *end)
{
	const uint8_t *lf, *run;
	size_t n;

	/* A header section takes its line ends at once; without candidate
	 * boundaries nothing can be cut either. */
	if (st->frames[st->top].kind == E2EE_K_HEADERS || st->cands == 0) {
		/* Only a header section can make new candidates: past
		 * the last one, the rest is read by nobody. */
		if (st->frames[st->top].kind != E2EE_K_HEADERS)
			return end;
		lf = memchr(p, '\n', (size_t)(end - p));
		if (lf == NULL) {
			e2ee_deliver(st, p, (size_t)(end - p));
			return end;
		}
		e2ee_deliver(st, p, (size_t)(lf + 1 - p));
		if (st->cands != 0)
			e2ee_line_start(st);
		return lf + 1;
	}
	if (st->held_cr) {
		st->held_cr = false;
		if (*p == '\n') {
			st->eol = 2;
			e2ee_line_start(st);
			return p + 1;
		}
		e2ee_deliver(st, e2ee_crlf, 1);
	}
	/* Every boundary line starts with "-": a line end followed by
	 * anything else is content, and the run goes on (the fast path for
	 * the lines of an armored payload). */
	run = p;
	for (;;) {
		lf = memchr(p, '\n', (size_t)(end - p));
		if (lf == NULL) {
			n = (size_t)(end - run);
			if (end[-1] == '\r') {
				n--;
				st->held_cr = true;
			}
			e2ee_deliver(st, run, n);
			return end;
		}
		if (lf + 1 == end || lf[1] == '-')
			break;
		p = lf + 1;
	}
	n = (size_t)(lf - run);
	st->eol = 1;
	if (n > 0 && lf[-1] == '\r') {
		n--;
		st->eol = 2;
	}
	e2ee_deliver(st, run, n);
	e2ee_line_start(st);
	return lf + 1;
}

void e2ee_feed(struct e2ee_state *st, const uint8_t *data, size_t len)
{
	const uint8_t *p = data, *end = data + len;
	int r;

	st->size += len;
	while (p < end && !st->dead) {
		switch (st->lmode) {
		case E2EE_L_START:
			r = e2ee_start_byte(st, *p);
			if (r < 0) {
				e2ee_flush_start(st);
				st->lmode = E2EE_L_LINE;
			} else {
				p++;
			}
			break;
		case E2EE_L_BLINE:
			e2ee_bline_byte(st, *p++);
			break;
		default:
			p = e2ee_line(st, p, end);
			break;
		}
	}
}

/* ------------------------------------------------------------------ */
/* The verdict */

void e2ee_finish(struct e2ee_state *st, struct e2ee_facts *facts_r)
{
	struct e2ee_facts *f = &st->facts;
	const struct e2ee_part *p0 = &st->part[0], *p1 = &st->part[1];
	bool structural;
	int j;

	if (!st->dead) {
		switch (st->lmode) {
		case E2EE_L_START:
			e2ee_flush_start(st);
			break;
		case E2EE_L_BLINE:
			/* No LF after the boundary: no part follows. */
			st->frames[st->bl_level].mstate = E2EE_M_EPILOGUE;
			break;
		default:
			if (st->held_cr)
				e2ee_deliver(st, e2ee_crlf, 1);
			st->held_cr = false;
			break;
		}
		for (j = st->top; j >= 0 && !st->dead; j--) {
			e2ee_entity_end(st, (unsigned)j, E2EE_END_EOF);
			st->top = (uint8_t)(j > 0 ? j - 1 : 0);
		}
	}
	f->size = st->size;
	if (st->dead) {
		memset(f, 0, sizeof(*f));
		f->size = st->size;
		f->parse_error = true;
		*facts_r = *f;
		return;
	}
	f->multipart =
		st->frames[0].kind == E2EE_K_MULTI && st->frames[0].parts > 0;
	f->parts = f->multipart ? st->frames[0].parts : 0;
	structural = (f->limits & (E2EE_LIMIT_DEPTH | E2EE_LIMIT_BOUNDARY |
				   E2EE_LIMIT_CTYPE)) != 0;
	/* D.3 (exactly two parts: see the header). */
	f->encrypted_in = f->multipart && !structural &&
			  strcmp(f->mimetype, "multipart/encrypted") == 0 &&
			  f->parts == 2 && !st->part_multi &&
			  p0->type == E2EE_PT_PGP && p0->version_ok &&
			  p1->type == E2EE_PT_OCTET && p1->armor_ok;
	f->armor_version = p1->armor_version;
	f->encrypted_out = f->encrypted_in && !p1->armor_version;
	f->armor_error = p1->armor_error;
	f->walk_error = p1->walk_error;
	f->packets = p1->packets;
	memcpy(f->tags, p1->tags, sizeof(f->tags));
	/* D.4 */
	f->securejoin = st->sj_hdr && f->multipart && !structural &&
			f->parts == 1 && !st->part_multi &&
			p0->type == E2EE_PT_TEXT && p0->sj_ok;
	*facts_r = *f;
}

enum e2ee_verdict e2ee_outgoing_allowed(const struct e2ee_facts *f,
					const char *mail_from,
					const char *const *rcpts, size_t n)
{
	if (f->parse_error)
		return E2EE_DENY_PARSE;
	if (!f->from_ok)
		return E2EE_DENY_FROM_HEADER;
	if (!e2ee_ascii_caseeq(mail_from != NULL ? mail_from : "",
			       f->from_addr))
		return E2EE_DENY_FROM_MISMATCH;
	if (f->encrypted_out)
		return E2EE_ALLOW_ENCRYPTED;
	if (f->securejoin)
		return E2EE_ALLOW_SECUREJOIN;
	/* filtermail compares the recipient with the From address as a
	 * string (it equals MAIL FROM but for case by now). */
	if (n == 1 && rcpts[0] != NULL && strcmp(rcpts[0], f->from_addr) == 0 &&
	    f->asm_shape)
		return E2EE_ALLOW_ASM;
	return E2EE_DENY_UNENCRYPTED;
}

enum e2ee_verdict e2ee_incoming_allowed(const struct e2ee_facts *f,
					const char *mail_from, const char *rcpt,
					bool rcpt_enforces_e2ee)
{
	(void)mail_from; /* a different sender is reset, not refused */
	if (f->parse_error)
		return E2EE_DENY_PARSE;
	if (!f->from_ok)
		return E2EE_DENY_FROM_HEADER;
	if (f->encrypted_in)
		return E2EE_ALLOW_ENCRYPTED;
	if (f->securejoin)
		return E2EE_ALLOW_SECUREJOIN;
	if (f->mailer_daemon)
		return E2EE_ALLOW_MAILER_DAEMON;
	if (rcpt != NULL && rcpt[0] != '\0' && strchr(rcpt, '@') != NULL &&
	    strchr(rcpt, '/') == NULL && !rcpt_enforces_e2ee)
		return E2EE_ALLOW_CLEARTEXT;
	return E2EE_DENY_UNENCRYPTED;
}

bool e2ee_incoming_resets_sender(const struct e2ee_facts *f,
				 const char *mail_from)
{
	return f->from_ok &&
	       !e2ee_ascii_caseeq(mail_from != NULL ? mail_from : "",
				  f->from_addr);
}

const char *e2ee_verdict_str(enum e2ee_verdict v)
{
	switch (v) {
	case E2EE_DENY_PARSE:
		return "parse-error";
	case E2EE_DENY_FROM_HEADER:
		return "invalid-from-header";
	case E2EE_DENY_FROM_MISMATCH:
		return "from-mismatch";
	case E2EE_DENY_UNENCRYPTED:
		return "unencrypted";
	case E2EE_ALLOW_ENCRYPTED:
		return "encrypted";
	case E2EE_ALLOW_SECUREJOIN:
		return "securejoin";
	case E2EE_ALLOW_ASM:
		return "autocrypt-setup-message";
	case E2EE_ALLOW_MAILER_DAEMON:
		return "mailer-daemon";
	case E2EE_ALLOW_CLEARTEXT:
		return "cleartext-allowed";
	}
	return "?";
}
