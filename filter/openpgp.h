/* filter/openpgp: streaming checks of an OpenPGP message for the E2EE
 * screen (spec D.3): the packet walk of filtermail's check_openpgp_payload
 * and the ASCII-armor rules of its check_armored_payload, both fed in
 * arbitrary chunks. No I/O, no malloc, no copy: the armor is base64-decoded
 * on the fly and packet bodies are skipped by their length. */
#ifndef RINGMAIL_OPENPGP_H
#define RINGMAIL_OPENPGP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Packet tags (RFC 9580 5) the walk cares about. */
#define OPENPGP_TAG_PKESK 1  /* Public-Key Encrypted Session Key */
#define OPENPGP_TAG_SIG   2  /* Signature */
#define OPENPGP_TAG_SKESK 3  /* Symmetric-Key Encrypted Session Key */
#define OPENPGP_TAG_OPS   4  /* One-Pass Signature */
#define OPENPGP_TAG_COMP  8  /* Compressed Data */
#define OPENPGP_TAG_SED   9  /* Symmetrically Encrypted Data (no MDC) */
#define OPENPGP_TAG_LIT   11 /* Literal Data */
#define OPENPGP_TAG_SEIPD 18 /* Sym. Encrypted Integrity Protected Data */

/* Values of the base64 symbols (RFC 4648 4), -1 for any other octet;
 * e2ee's Content-Transfer-Encoding decoder uses it too. */
extern const int8_t openpgp_base64_value[256];

/* More packets than this is not a message anyone sends (one PKESK per
 * recipient key, 1000 recipients at most): the walk fails. */
#define OPENPGP_PACKETS_MAX 4096
/* The first tags are kept for logs and tests. */
#define OPENPGP_TAGS_KEPT 16

/* Why a walk failed; the first reason is kept. */
enum openpgp_walk_error {
	OPENPGP_WALK_OK = 0,
	OPENPGP_WALK_ERR_CTB,   /* a header octet without bit 7 */
	OPENPGP_WALK_ERR_ORDER, /* a packet before the last not PKESK/SKESK */
	OPENPGP_WALK_ERR_TOO_MANY,  /* more than OPENPGP_PACKETS_MAX packets */
	OPENPGP_WALK_ERR_TRUNCATED, /* the data ends inside a header or body */
	OPENPGP_WALK_ERR_EMPTY,     /* no packet at all */
	OPENPGP_WALK_ERR_LAST_TAG,  /* the last packet is not SEIPD */
};

/* The walk over binary packets. Accepted: (PKESK | SKESK)* SEIPD, ending
 * exactly at the end of the data (filtermail check_openpgp_payload).
 * Headers in the new format (1-, 2- and 5-octet lengths, partial body
 * lengths on any packet, as filtermail) and in the old format (filtermail
 * 0.3: tag in bits 5-2, 1-, 2- or 4-octet length, or indeterminate = to the
 * end of the data) follow the same tag rules. An old-format tag is at most
 * 15, so SEIPD is always new-format. SEIPD v2 (AEAD) is tag 18 too and
 * passes; the LibrePGP OCB packet (tag 20) does not. */
struct openpgp_walk {
	uint64_t skip;   /* body octets left in the current (chunk of a) body */
	uint64_t offset; /* octets fed */
	uint32_t len;    /* a multi-octet length being assembled */
	uint32_t packets;  /* packets whose header was read */
	uint32_t partials; /* partial body length chunks */
	uint8_t state;
	uint8_t need;       /* length octets still to read */
	uint8_t tag;        /* of the current packet */
	uint8_t prev_tag;   /* of the packet before it */
	uint8_t error;      /* enum openpgp_walk_error */
	bool partial;       /* the body being skipped is a partial chunk */
	bool old_format;    /* an old-format header was seen */
	bool indeterminate; /* an old-format indeterminate length was seen */
	uint8_t tags[OPENPGP_TAGS_KEPT]; /* tags of the first packets */
};

void openpgp_walk_init(struct openpgp_walk *w);
/* Walk @n more octets. Never fails by itself: errors are kept in w->error
 * and the rest of the input is ignored. */
void openpgp_walk_feed(struct openpgp_walk *w, const uint8_t *p, size_t n);
/* The data has ended: true iff it is (PKESK | SKESK)* SEIPD. w->error says
 * why not. */
bool openpgp_walk_finish(struct openpgp_walk *w);
const char *openpgp_walk_error_str(enum openpgp_walk_error e);

/* Why an armored payload failed; the first reason is kept. */
enum openpgp_armor_error {
	OPENPGP_ARMOR_OK = 0,
	OPENPGP_ARMOR_ERR_BEGIN, /* not "-----BEGIN PGP MESSAGE-----\r\n" */
	OPENPGP_ARMOR_ERR_END,   /* no "-----END PGP MESSAGE-----" at the end */
	OPENPGP_ARMOR_ERR_BASE64,  /* the data is not strict padded base64 */
	OPENPGP_ARMOR_ERR_PACKETS, /* decoded, but the packet walk failed */
};

/* filtermail check_armored_payload on a stream, exactly:
 *  1. the text starts with "-----BEGIN PGP MESSAGE-----" CRLF;
 *  2. after all trailing CRLF pairs it ends with "-----END PGP MESSAGE-----";
 *  3. a first line starting "Version: " is an armor header: it is recorded
 *     in version_header and skipped through its CRLF. Outgoing mail must
 *     have none, incoming mail may (the caller decides, spec D.3.3); any
 *     other armor header fails in base64;
 *  4. CR and LF are dropped, the text is cut at its last "=" (the CRC24
 *     line; without any "=" nothing is cut), and the rest must be strict
 *     base64 (canonical padding, zero trailing bits);
 *  5. the decoded octets pass the packet walk.
 * Nothing is copied: the END marker is matched while it streams by, and
 * whatever follows the last "=" is only remembered as "something". */
struct openpgp_armor {
	struct openpgp_walk walk;
	uint32_t quad;     /* base64 bits of the current quantum */
	uint8_t state;     /* begin / version / version skip / body */
	uint8_t pos;       /* octets matched of the BEGIN line or "Version: " */
	uint8_t end_match; /* octets of the END marker held back */
	uint8_t after_end; /* 0: inside the text, 1: after END, 2: after END CR */
	uint8_t nq;        /* base64 symbols in the current quantum */
	uint8_t npad;      /* "=" in the current quantum */
	uint8_t error;     /* enum openpgp_armor_error */
	bool vskip_cr; /* skipping the Version: line, the last octet was CR */
	bool b64_done; /* a padded quantum ended the base64 */
	bool eq_held;  /* an "=" not yet known to be before the last "=" */
	bool eq_tail;  /* text other than CR/LF after the held "=" */
	bool version_header; /* the armor had a "Version: " header line */
	uint64_t decoded;    /* octets given to the walk */
};

void openpgp_armor_init(struct openpgp_armor *a);
void openpgp_armor_feed(struct openpgp_armor *a, const uint8_t *p, size_t n);
/* The text has ended: true iff it passes as incoming mail. As outgoing
 * mail it passes iff this is true and a->version_header is false. */
bool openpgp_armor_finish(struct openpgp_armor *a);
const char *openpgp_armor_error_str(enum openpgp_armor_error e);

#ifdef __cplusplus
}
#endif

#endif
