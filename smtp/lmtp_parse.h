/* smtp/lmtp_parse: pure, resumable parser for SMTP/LMTP server replies
 * (RFC 5321 4.2, enhanced status codes RFC 3463). No I/O, no malloc. */
#ifndef RINGMAIL_SMTP_LMTP_PARSE_H
#define RINGMAIL_SMTP_LMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A reply line longer than this (without CRLF) is invalid. RFC 5321 says
 * 512; Dovecot's texts stay far below, 1000 leaves room for others. */
#define LMTP_REPLY_LINE_MAX 1000
/* A multiline reply with more lines than this is invalid. */
#define LMTP_REPLY_LINES_MAX 64
/* Reply text kept (lines joined by '\n'); the rest is cut, not invalid. */
#define LMTP_REPLY_TEXT_MAX 1024

enum lmtp_parse_status {
	LMTP_PARSE_INVALID = -1, /* p->error says why; see lmtp_parse_reply */
	LMTP_PARSE_AGAIN = 0,    /* everything consumed, no complete reply */
	LMTP_PARSE_OK = 1,       /* p->reply holds one complete reply */
};

struct lmtp_reply {
	unsigned code;   /* 200..599 */
	char status[12]; /* enhanced status "2.1.5", "" when absent */
	/* Text of every line without code and status, joined with '\n';
	 * control characters are replaced by '?'. NUL-terminated. */
	char text[LMTP_REPLY_TEXT_MAX + 1];
	uint32_t text_len;
	unsigned lines;
	bool truncated; /* text was longer than LMTP_REPLY_TEXT_MAX */
};

struct lmtp_parser {
	int state;
	uint32_t line_len;
	bool in_reply; /* a "NNN-" line was seen: the reply continues */
	const char *error;
	struct lmtp_reply reply;
	char line[LMTP_REPLY_LINE_MAX + 1];
};

void lmtp_parser_init(struct lmtp_parser *p);
/* Parse from @data until one reply is complete; *@used_r = bytes used.
 * OK: the reply is in p->reply until the next call. AGAIN: all of @data
 * was used. INVALID: a bad line (or too many lines) was seen; its bytes
 * that were present are used, the rest of it up to LF is skipped by the
 * next calls, and the reply in progress is dropped. */
int lmtp_parse_reply(struct lmtp_parser *p, const uint8_t *data, size_t len,
		     size_t *used_r);
/* Does "NNN" fall in 2xx, 4xx, 5xx? */
static inline bool lmtp_reply_ok(unsigned code)
{
	return code >= 200 && code < 300;
}
/* Parse an enhanced status code at @s ("c.sss.ddd" then SP or end) whose
 * class must be @cls ('2', '4' or '5'). Returns its length or 0. */
size_t lmtp_parse_status(const char *s, size_t len, char cls);

#endif
