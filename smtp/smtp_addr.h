/* smtp/smtp_addr: pure parsers for RFC 5321 4.1.2 paths and the MAIL and
 * RCPT arguments with their ESMTP parameters. No I/O, no malloc; addresses
 * come out in a canonical form inside the caller's struct. */
#ifndef RINGMAIL_SMTP_ADDR_H
#define RINGMAIL_SMTP_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/smtp_reply.h"

#ifdef __cplusplus
extern "C" {
#endif

/* RFC 5321 4.5.3.1: a path is at most 256 octets with its "<" ">" (and
 * any source route), a domain at most 255. The local part is not held to
 * 64: SRS addresses (spec D.10) are often longer, and Postfix takes them. */
#define SMTP_PATH_MAX   256
#define SMTP_ADDR_MAX   254
#define SMTP_DOMAIN_MAX 255
#define SMTP_LABEL_MAX  63

/* Flags. Parsing alone never refuses UTF-8 (RFC 6531); these say when it
 * is allowed. ringmail does not offer SMTPUTF8 (issue 4's EHLO list, and
 * chatmail addresses are ASCII, spec C.2), so sessions pass 0: the
 * SMTPUTF8 parameter gets 555 and a non-ASCII address 553 5.6.7. */
#define SMTP_ADDR_F_SMTPUTF8 (1u << 0) /* MAIL: SMTPUTF8 is offered */
#define SMTP_ADDR_F_UTF8     (1u << 1) /* RCPT: MAIL declared SMTPUTF8 */

enum smtp_addr_error {
	SMTP_ADDR_OK = 0,
	SMTP_ADDR_ERR_SYNTAX,   /* no "FROM:" / "TO:", or no path at all */
	SMTP_ADDR_ERR_PATH,     /* brackets, source route, junk after path */
	SMTP_ADDR_ERR_LOCAL,    /* bad local part (dots, quotes, UTF-8) */
	SMTP_ADDR_ERR_DOMAIN,   /* bad or missing domain or address literal */
	SMTP_ADDR_ERR_TOO_LONG, /* path, domain or label over its limit */
	SMTP_ADDR_ERR_NULL,     /* "<>" where a mailbox is needed (RCPT) */
	SMTP_ADDR_ERR_UTF8,     /* non-ASCII address without SMTPUTF8 */
	SMTP_ADDR_ERR_PARAM,    /* parameter not keyword[=value] */
	SMTP_ADDR_ERR_PARAM_UNKNOWN, /* unknown keyword or BODY value */
	SMTP_ADDR_ERR_PARAM_DUP,     /* a parameter given twice */
	SMTP_ADDR_ERR_SIZE,          /* SIZE= not a number that fits */
};

/* A parsed path. addr is "local@domain" NUL-terminated: the domain in
 * lower case (DNS names and literals are case-insensitive), the local part
 * as sent (RFC 5321 2.4: case is the receiver's business), unquoted when
 * it is a dot-atom ("\"a\"@x" becomes "a@x"), else re-quoted with only the
 * needed backslashes. A source route is dropped (RFC 5321 C). */
struct smtp_path {
	char addr[SMTP_ADDR_MAX + 1]; /* "" for <> */
	uint16_t len;
	uint16_t local_len; /* addr[local_len] is '@' (or the end) */
	bool null;          /* "<>" */
	bool postmaster;    /* "<postmaster>" without domain (RFC 5321 4.5.1) */
	bool quoted;        /* the local part is a quoted string in addr */
	bool literal;       /* the domain is "[1.2.3.4]" or "[IPv6:...]" */
	bool utf8;          /* non-ASCII octets (well-formed UTF-8) */
};

enum smtp_body {
	SMTP_BODY_NONE = 0, /* not given */
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
};

/* The parameter an ERR_PARAM* or ERR_SIZE names is at param (not
 * terminated; points into the argument), for "Unsupported option: %s". */
struct smtp_mail_args {
	struct smtp_path from;
	uint64_t size; /* SIZE=, 0 when not given */
	bool has_size;
	enum smtp_body body;
	bool smtputf8; /* SMTPUTF8 given (and allowed) */
	bool auth;     /* AUTH= given: syntax-checked and ignored (RFC 4954) */
	bool dsn;      /* RET= or ENVID= given: accepted and ignored */
	const char *param;
	uint16_t param_len;
};

struct smtp_rcpt_args {
	struct smtp_path to;
	/* NOTIFY= or ORCPT= given: accepted and ignored, as filtermail does
	 * for Stalwart (spec D.2), though DSN is not offered. */
	bool dsn;
	const char *param;
	uint16_t param_len;
};

/* "FROM:<path> [params]" (the MAIL argument); spaces after the colon and
 * a path without brackets are taken (Postfix strict_rfc821_envelopes=no).
 * Parameters: SIZE, BODY=7BIT|8BITMIME, AUTH, RET, ENVID, and SMTPUTF8 if
 * @flags has SMTP_ADDR_F_SMTPUTF8. Returns an smtp_addr_error. */
int smtp_addr_parse_mail(const char *arg, size_t len, unsigned flags,
			 struct smtp_mail_args *out);
/* "TO:<path> [params]"; <postmaster> is taken, <> is not. Parameters:
 * NOTIFY, ORCPT. A UTF-8 address needs SMTP_ADDR_F_UTF8 in @flags. */
int smtp_addr_parse_rcpt(const char *arg, size_t len, unsigned flags,
			 struct smtp_rcpt_args *out);
/* One path at @s: "<...>" or a bare mailbox (up to SP or the end);
 * *@used_r = its octets. UTF-8 is parsed and flagged, not refused. */
int smtp_addr_parse_path(const char *s, size_t len, struct smtp_path *out,
			 size_t *used_r);

/* What a HELO/EHLO argument is (Postfix reject_invalid_helo_hostname and
 * reject_non_fqdn_helo_hostname, spec F.1). */
enum smtp_helo_kind {
	SMTP_HELO_INVALID = 0,
	SMTP_HELO_FQDN,     /* a domain with a dot, not all-numeric */
	SMTP_HELO_NON_FQDN, /* a valid single label ("localhost") */
	SMTP_HELO_LITERAL,  /* "[1.2.3.4]" or "[IPv6:...]" */
	SMTP_HELO_BARE_IP,  /* "1.2.3.4" without brackets */
};
enum smtp_helo_kind smtp_addr_check_helo(const char *s, size_t len);

/* The reply for an error of MAIL (@rcpt false) or RCPT; NULL for OK. */
const struct smtp_reply_def *smtp_addr_error_reply(enum smtp_addr_error e,
						   bool rcpt);

#ifdef __cplusplus
}
#endif

#endif
