/* smtp/smtp_data: pure, resumable DATA decoder (RFC 5321 4.1.1.4, 4.5.2):
 * finds "\r\n.\r\n", undoes dot-stuffing and hands the message to a sink
 * as spans of the caller's input. No I/O, no malloc, no copy. */
#ifndef RINGMAIL_SMTP_DATA_H
#define RINGMAIL_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/smtp_parse.h"
#include "smtp/smtp_reply.h"

#ifdef __cplusplus
extern "C" {
#endif

/* RFC 5322 2.1.1: at most 998 characters per line, CRLF excluded. A
 * longer line is counted in long_lines, never rejected. */
#define SMTP_DATA_LINE_MAX 998

/* Receives decoded message octets, in order; the message keeps its CRLF
 * line ends, the one before the final dot included. @p points into the
 * input given to smtp_data_parse (or to a static "\r"). Return 0, or <0 to
 * get no more octets: the message then ends as SMTP_DERR_SINK. */
typedef int smtp_data_sink_fn(void *ctx, const uint8_t *p, size_t n);

/* Why the message is refused, decided at the end marker so that every
 * split of the input gives the same answer (the first that applies):
 * the stream stays in step and the session may go on with the next
 * command. */
enum smtp_data_error {
	SMTP_DERR_NONE = 0,
	/* An LF without CR before it. Policy: reject like Postfix
	 * smtpd_forbid_bare_newline=reject (and filtermail, spec N.1.6):
	 * only CRLF ends a line, so only CRLF "." CRLF ends the message and
	 * "\n.\n" cannot smuggle a second message; the session replies 550
	 * 5.5.2 and may close. A bare CR is message content. */
	SMTP_DERR_BARE_LF,
	SMTP_DERR_TOO_BIG, /* more than limit octets (552 5.3.4) */
	SMTP_DERR_SINK,    /* the sink returned <0 */
};

/* While decoding, bare_lfs > 0, size > limit or sink_failed already mean
 * the message will be refused; the sink then gets nothing more. */
struct smtp_data {
	int state;
	bool last_cr;     /* the last octet seen was CR (inside a line) */
	bool has_8bit;    /* an octet >= 0x80 was seen */
	bool sink_failed; /* the sink returned <0 */
	enum smtp_data_error error; /* set at the end marker */
	uint64_t line_len; /* decoded octets of the current line so far */
	uint64_t limit;    /* max message octets, 0 = none */
	uint64_t size;  /* decoded octets so far (given to the sink or not) */
	uint64_t wire;  /* input octets used, end marker included */
	uint64_t lines; /* complete lines (CRLF) of the message */
	uint64_t long_lines; /* lines over SMTP_DATA_LINE_MAX */
	uint64_t bare_lfs;   /* LFs without CR */
	smtp_data_sink_fn *sink;
	void *sink_ctx;
};

/* Start decoding after "354": the CRLF of the DATA line counts as the
 * one before a possible first-line ".". @sink may be NULL. */
void smtp_data_init(struct smtp_data *d, uint64_t limit,
		    smtp_data_sink_fn *sink, void *sink_ctx);
/* Decode from @data; *@used_r = octets used. AGAIN: all used, no end
 * yet. OK: the message ended, *@used_r includes ".\r\n" and the rest is
 * the next command (pipelining). INVALID: it ended too, but d->error is
 * set. After OK/INVALID, init again. */
int smtp_data_parse(struct smtp_data *d, const uint8_t *data, size_t len,
		    size_t *used_r);
/* The reply for an error; NULL for SMTP_DERR_NONE. */
const struct smtp_reply_def *smtp_data_error_reply(enum smtp_data_error e);

#ifdef __cplusplus
}
#endif

#endif
