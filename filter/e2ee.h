/* filter/e2ee: the E2EE screen of chatmail's filtermail (spec D.3-D.7) in
 * one streaming pass over the message as it arrives in SMTP DATA (after
 * dot-unstuffing), in chunks of any size: one octet at a time gives the
 * same facts as the whole message at once. No I/O, no malloc, no copy of
 * the body: everything lives in the caller's struct e2ee_state.
 *
 * The MIME structure is read the way filtermail's parser (the Rust
 * mailparse crate) reads it, so that the verdicts match: header fields
 * unfolded, the first instance of a field counts, a part ends where a line
 * starts with "--" and the boundary of its multipart or of any enclosing
 * one, the CRLF before such a line belongs to it, the Content-Type and
 * Content-Transfer-Encoding of a part pick how its body is decoded.
 * Deliberate differences (none passes as encrypted what is not an
 * OpenPGP message of the required shape):
 *  - a multipart/encrypted needs exactly two parts (upstream also takes
 *    the "Version: 1" part alone, spec D.3.6 and N.1.5);
 *  - RFC 2047 encoded words and RFC 2231 parameters are not decoded (an
 *    encoded Subject is not "Autocrypt Setup Message"; a From display
 *    name stays a name, see mime_addr_extract), and part bodies are not
 *    converted from their charset (a declared UTF-16 armor still reads
 *    as ASCII);
 *  - the limits below: past one, the message is not encrypted and not a
 *    Secure-Join request (facts.limits says which), never a crash. */
#ifndef RINGMAIL_E2EE_H
#define RINGMAIL_E2EE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "filter/openpgp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Nesting of multiparts followed (the message is depth 0). A deeper
 * multipart is read as a leaf: E2EE_LIMIT_DEPTH. */
#define E2EE_DEPTH_MAX 16
/* Boundary parameter length (RFC 2046: 70): E2EE_LIMIT_BOUNDARY. */
#define E2EE_BOUNDARY_MAX 128
/* A Content-Type value kept for parsing: E2EE_LIMIT_CTYPE. */
#define E2EE_CTYPE_MAX 1024
/* The From value kept; past it, without a ">" before, no address. */
#define E2EE_FROM_MAX 1024
/* The From address (RFC 5321 4.5.3.1 path limit). */
#define E2EE_ADDR_MAX 254
/* Subject, Secure-Join, Auto-Submitted, Content-Transfer-Encoding: only
 * compared with short constants, so only this much is kept. */
#define E2EE_SHORT_MAX 48

/* Bits of e2ee_facts.limits. */
#define E2EE_LIMIT_DEPTH    (1u << 0)
#define E2EE_LIMIT_BOUNDARY (1u << 1)
#define E2EE_LIMIT_CTYPE    (1u << 2)
#define E2EE_LIMIT_FROM     (1u << 3) /* From value or address too long */

/* What the SMTP rules need to know about a message. */
struct e2ee_facts {
	uint64_t size; /* octets fed */
	/* The message does not parse the way filtermail's parser needs
	 * (a header section starting with a space or with a lone CR):
	 * "500 Failed to parse message". Nothing else is then set. */
	bool parse_error;
	/* D.3 with the incoming rule (an armor "Version:" header is
	 * tolerated) and with the outgoing rule (it is not). */
	bool encrypted_in;
	bool encrypted_out;
	bool armor_version; /* the payload armor had a "Version:" header */
	bool securejoin;    /* D.4 */
	bool multipart;     /* the message has sub-parts */
	uint32_t parts;     /* how many */
	unsigned limits;    /* E2EE_LIMIT_* */
	/* Top-level Content-Type, lower case ("text/plain" if none). */
	char mimetype[96];
	char report_type[E2EE_SHORT_MAX + 1]; /* its report-type, lower case */
	/* The first From field, unfolded and trimmed ("" if none; cut at
	 * E2EE_FROM_MAX), and the address in it per D.10, lower case. */
	bool has_from;
	bool from_ok; /* from_addr is set */
	char from_value[E2EE_FROM_MAX + 1];
	char from_addr[E2EE_ADDR_MAX + 1];
	bool has_subject;
	bool subject_asm;    /* Subject is exactly "Autocrypt Setup Message" */
	bool asm_header;     /* an Autocrypt-Setup-Message field */
	bool has_securejoin; /* a Secure-Join field */
	bool auto_submitted; /* the first Auto-Submitted field is non-empty */
	bool mailer_daemon;  /* D.7.3: auto-submitted, mailer-daemon@, report */
	bool asm_shape;      /* D.5.e: subject_asm and multipart/mixed */
	bool mdn;            /* multipart/report; disposition-notification */
	/* Why the payload failed (for logs), and its first packet tags. */
	uint8_t armor_error; /* enum openpgp_armor_error */
	uint8_t walk_error;  /* enum openpgp_walk_error */
	uint32_t packets;
	uint8_t tags[OPENPGP_TAGS_KEPT];
};

/* One multipart level or one entity (message or part) being read. */
struct e2ee_frame {
	uint8_t kind;   /* headers / leaf / multipart */
	uint8_t mstate; /* multipart: preamble / in a part / epilogue */
	uint8_t blen;   /* "--" + boundary */
	bool digest;    /* multipart/digest: parts default to message/rfc822 */
	bool got_bytes; /* the entity has content */
	bool cancel_at_eof; /* empty at the end of data: not a part after all */
	uint32_t parts;     /* sub-parts begun */
	char boundary[2 + E2EE_BOUNDARY_MAX];
};

/* What is known of one of the first two parts of the message. */
struct e2ee_part {
	uint8_t type;    /* pgp-encrypted / text/plain / octet-stream / other */
	bool multipart;  /* it has sub-parts itself */
	bool version_ok; /* body trimmed is "Version: 1" */
	bool sj_ok;      /* body trimmed, lower case, is a vc/vg-request */
	bool armor_ok;   /* the payload passes (incoming rule) */
	bool armor_version;
	uint8_t armor_error, walk_error;
	uint32_t packets;
	uint8_t tags[OPENPGP_TAGS_KEPT];
};

/* The parse state; opaque to callers (about 6.5 KiB). */
struct e2ee_state {
	uint64_t size;
	bool dead;      /* parse error: nothing more to read */
	uint8_t lmode;  /* line start / in a line / rest of a boundary line */
	uint8_t eol;    /* a line end held back: 0, 1 (LF) or 2 (CRLF) */
	bool held_cr;   /* a CR at the end of the input so far */
	uint8_t top;    /* the innermost frame */
	uint32_t cands; /* frames whose boundary a line may start with */
	uint32_t alive; /* candidates still matching the line start */
	uint8_t llen;   /* octets of the line start held in lbuf */
	char lbuf[2 + E2EE_BOUNDARY_MAX + 1];
	/* The rest of a boundary line. */
	uint8_t bl_level;
	bool bl_first;
	bool bl_cr;
	uint8_t bl_rest; /* octets after the boundary, up to 2 counted */
	char bl_c[2];
	/* The header section being read. */
	uint8_t hstate;
	uint8_t hwhich;   /* the field being kept, or 0 */
	uint8_t klen;     /* field name octets kept */
	bool kover;       /* name longer than any field of interest */
	bool hline_start; /* at the start of a value line (trimmed) */
	uint16_t hcr;     /* CRs held at the end of a value line */
	uint32_t hseen;   /* fields whose first instance was taken */
	char key[32];
	uint32_t vlen[8]; /* per field: value octets (kept or not) */
	char ctype[E2EE_CTYPE_MAX];
	char cte[E2EE_SHORT_MAX];
	char from[E2EE_FROM_MAX];
	char subject[E2EE_SHORT_MAX];
	char securejoin[E2EE_SHORT_MAX];
	char autosub[E2EE_SHORT_MAX];
	/* The body of one of the first two parts. */
	uint8_t role; /* what its body is checked for, or 0 */
	uint8_t cte_kind;
	bool cte_err;
	bool b64_done;
	uint8_t b64_n, b64_pad;
	uint32_t b64_quad;
	uint8_t qp_state, qp_hex; /* quoted-printable: state, "=X" kept */
	uint8_t v_state, v_pos, v_alive; /* "Version: 1" */
	uint8_t sj_state, sj_pos;        /* "secure-join: v?-request" */
	uint8_t sj_alive;
	bool sj_hdr;     /* Secure-Join: vc-request or vg-request */
	uint8_t cur_idx; /* index of the depth-1 part being read (255: >1) */
	struct openpgp_armor armor;
	struct e2ee_part part[2];
	bool part_multi; /* some depth-1 part has sub-parts */
	struct e2ee_facts facts;
	struct e2ee_frame frames[E2EE_DEPTH_MAX];
};

void e2ee_init(struct e2ee_state *st);
/* Octets of the message, in order, CRLF line ends (LF alone is read as a
 * line end too). */
void e2ee_feed(struct e2ee_state *st, const uint8_t *data, size_t len);
/* The message has ended: fill *@facts_r. The state must be initialised
 * again before reuse. */
void e2ee_finish(struct e2ee_state *st, struct e2ee_facts *facts_r);

/* A verdict of the SMTP rules. Denials are <0 with the reply the session
 * gives; allowances >0 say why (for the D.11 log lines: ENCRYPTED and
 * SECUREJOIN log "Filtering encrypted mail.", the others "Filtering
 * unencrypted mail."). */
enum e2ee_verdict {
	E2EE_DENY_PARSE = -4,       /* 500 Failed to parse message */
	E2EE_DENY_FROM_HEADER = -3, /* 500 Invalid FROM header: <value> */
	E2EE_DENY_FROM_MISMATCH =
		-2, /* 500 Invalid FROM <from> for <mail from> */
	E2EE_DENY_UNENCRYPTED =
		-1, /* 523 Encryption Needed: Invalid Unencrypted Mail */
	E2EE_ALLOW_ENCRYPTED = 1,
	E2EE_ALLOW_SECUREJOIN,
	E2EE_ALLOW_ASM, /* outgoing: self-sent Autocrypt Setup Message */
	E2EE_ALLOW_MAILER_DAEMON, /* incoming: cleartext bounce */
	E2EE_ALLOW_CLEARTEXT,     /* incoming: recipient takes cleartext */
};

/* D.5 DATA rules in their order: parse, From header, From = MAIL FROM
 * (ASCII case-insensitive), encrypted (outgoing rule) or Secure-Join,
 * self-sent Autocrypt Setup Message (one recipient equal to the From
 * address, Subject, multipart/mixed), else 523. @mail_from is the MAIL
 * FROM address, @rcpts the RCPT TO addresses. */
enum e2ee_verdict e2ee_outgoing_allowed(const struct e2ee_facts *f,
					const char *mail_from,
					const char *const *rcpts, size_t n);
/* D.7 for one recipient, in order: parse, From header, encrypted
 * (incoming rule) or Secure-Join, mailer-daemon bounce, then the
 * recipient's cleartext rule: allowed iff @rcpt is non-empty, has "@", no
 * "/", and @rcpt_enforces_e2ee is false (its enforceE2EEincoming file).
 * The message is refused with 523 if any recipient is denied. */
enum e2ee_verdict e2ee_incoming_allowed(const struct e2ee_facts *f,
					const char *mail_from, const char *rcpt,
					bool rcpt_enforces_e2ee);
/* D.7.1: incoming mail whose From address differs from MAIL FROM (ASCII
 * case-insensitive) is passed on with the null sender "<>". */
bool e2ee_incoming_resets_sender(const struct e2ee_facts *f,
				 const char *mail_from);
static inline bool e2ee_verdict_allowed(enum e2ee_verdict v)
{
	return v > 0;
}
const char *e2ee_verdict_str(enum e2ee_verdict v);

#ifdef __cplusplus
}
#endif

#endif
