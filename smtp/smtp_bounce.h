/* smtp/smtp_bounce: the delivery status notification (RFC 3464, RFC 6522)
 * ringmail puts into a local sender's INBOX when a recipient on this relay
 * does not exist or refused the message for good (spec N.1.4). Pure. */
#ifndef RINGMAIL_SMTP_BOUNCE_H
#define RINGMAIL_SMTP_BOUNCE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct smtp_bounce_rcpt {
	const char *addr;
	unsigned code;      /* 550 */
	const char *status; /* "5.1.1" */
	const char *text;   /* the reason */
};

struct smtp_bounce {
	/* From: MAILER-DAEMON@<mail_domain>; Reporting-MTA, Message-ID */
	const char *mail_domain;
	const char *sender; /* the original envelope sender: To: */
	const struct smtp_bounce_rcpt *rcpts;
	unsigned n_rcpts;
	/* The original header section, attached as text/rfc822-headers
	 * (skipped when empty). */
	const uint8_t *orig_headers;
	size_t orig_headers_len;
	int64_t now;        /* unix seconds: Date, Arrival-Date */
	const char *unique; /* random token: Message-ID, boundary */
};

/* The whole message, CRLF line ends, into malloc'd *@out_r (caller
 * frees), *@len_r octets. 0, -EINVAL (missing field, CR/LF in a field,
 * no recipient, the boundary occurs in the headers) or -ENOMEM. */
int smtp_bounce_build(const struct smtp_bounce *b, char **out_r, size_t *len_r);

#ifdef __cplusplus
}
#endif

#endif
