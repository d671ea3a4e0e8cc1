/* smtp/smtp_parse: pure, resumable parser for SMTP command lines
 * (RFC 5321 4.1, 4.5.3.1.4). No I/O, no malloc: the line is collected in
 * the caller-owned parser, so any split of the input gives one result. */
#ifndef RINGMAIL_SMTP_PARSE_H
#define RINGMAIL_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/smtp_reply.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Octets in a command line including CRLF. RFC 5321 4.5.3.1.4 says 512.
 * MAIL and RCPT grow with ESMTP parameters (RFC 1870 4 allows 26 more for
 * SIZE, RFC 4954 5 AUTH= up to 500, DSN ORCPT=), and AUTH carries a SASL
 * initial response, so MAIL, RCPT, AUTH and SASL continuation lines get
 * SMTP_LINE_MAX_LONG, Postfix's line_length_limit. */
#define SMTP_LINE_MAX      512
#define SMTP_LINE_MAX_LONG 2048

enum smtp_parse_status {
	SMTP_PARSE_INVALID = -1, /* the error field says why */
	SMTP_PARSE_AGAIN = 0,    /* all input used, no complete line yet */
	SMTP_PARSE_OK = 1,       /* a complete line or message */
};

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_EHLO,
	SMTP_VERB_HELO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT, /* CHUNKING is not offered: the session rejects it */
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_LINE, /* a SASL response, see smtp_parser_expect_line */
	SMTP_VERB_COUNT
};

/* Why a line is INVALID; smtp_parse_error_reply() gives the reply. Every
 * INVALID line has been used up to and including its LF. */
enum smtp_parse_error {
	SMTP_PERR_NONE = 0,
	SMTP_PERR_TOO_LONG, /* over the limit of its verb (reported at its LF) */
	SMTP_PERR_BARE_LF,  /* ended in LF without CR: the session closes */
	SMTP_PERR_BAD_CHAR, /* NUL, a CR not before LF, DEL or another CTL */
	SMTP_PERR_SYNTAX,   /* empty line, or space before the verb */
};

/* A parsed line; the pointers go into the parser, valid until the next
 * smtp_parse_cmd call. arg is NUL-terminated. */
struct smtp_cmd {
	enum smtp_verb verb;
	const char *name; /* the verb as sent (not terminated) */
	uint16_t name_len;
	const char
		*arg; /* after the verb and its spaces, trailing spaces cut */
	uint16_t arg_len;
	uint32_t line_len; /* octets including CRLF (overlong: all of it) */
};

struct smtp_parser {
	int state;
	bool raw;     /* the next line is a SASL response, not a command */
	uint16_t len; /* octets of the current line held in line[] */
	enum smtp_parse_error error;
	uint64_t skipped; /* octets of an overlong line seen so far */
	struct smtp_cmd cmd;
	char line[SMTP_LINE_MAX_LONG];
};

void smtp_parser_init(struct smtp_parser *p);
/* The next line is a SASL response (after a 334): it is returned whole
 * as SMTP_VERB_LINE with the SMTP_LINE_MAX_LONG limit. */
void smtp_parser_expect_line(struct smtp_parser *p);
/* Parse one line from @data; *@used_r = octets used, never past the LF,
 * so the rest (DATA content, pipelined commands) stays with the caller.
 * OK: p->cmd holds it. AGAIN: all used, a partial line is kept in @p.
 * INVALID: p->error, the whole bad line is used; the parser is ready for
 * the next line. An overlong line is not stored: its octets are counted
 * in p->skipped (a session may drop a peer that never sends LF). */
int smtp_parse_cmd(struct smtp_parser *p, const uint8_t *data, size_t len,
		   size_t *used_r);
/* Is a complete line (or the end of one the parser holds) in @data? The
 * session flushes its replies only when not (RFC 2920 3.2). */
bool smtp_parse_line_ready(const uint8_t *data, size_t len);
/* The verb's name in capitals ("UNKNOWN" for unknown); never NULL. */
const char *smtp_verb_name(enum smtp_verb verb);
/* The reply for an INVALID line; NULL for SMTP_PERR_NONE. */
const struct smtp_reply_def *smtp_parse_error_reply(enum smtp_parse_error e);

#ifdef __cplusplus
}
#endif

#endif
