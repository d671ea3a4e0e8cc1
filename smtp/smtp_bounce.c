/* smtp/smtp_bounce: texts as Postfix's bounce(8) writes them, so that
 * clients and chatmail's tests recognise them ("Undelivered Mail Returned
 * to Sender", "Mail Delivery System"). */
#include "smtp/smtp_bounce.h"

/* system */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* project */
#include "core/buf.h"

#define SMTP_BOUNCE_TEXT_MAX 400 /* keeps every line under 998 */

static bool smtp_bounce_field_ok(const char *s)
{
	return s != NULL && s[0] != '\0' && strpbrk(s, "\r\n") == NULL;
}

static bool smtp_bounce_contains(const uint8_t *h, size_t n, const char *s)
{
	size_t k = strlen(s);

	for (size_t i = 0; k <= n && i + k <= n; i++) {
		if (memcmp(h + i, s, k) == 0)
			return true;
	}
	return false;
}

int smtp_bounce_build(const struct smtp_bounce *b, char **out_r, size_t *len_r)
{
	char date[64], boundary[96];
	struct buf o;
	struct tm tm;
	time_t t = (time_t)b->now;
	int r = 0;

	*out_r = NULL;
	*len_r = 0;
	if (!smtp_bounce_field_ok(b->mail_domain) ||
	    !smtp_bounce_field_ok(b->sender) ||
	    !smtp_bounce_field_ok(b->unique) || b->n_rcpts == 0 ||
	    b->rcpts == NULL)
		return -EINVAL;
	for (unsigned i = 0; i < b->n_rcpts; i++) {
		if (!smtp_bounce_field_ok(b->rcpts[i].addr) ||
		    !smtp_bounce_field_ok(b->rcpts[i].status) ||
		    b->rcpts[i].text == NULL ||
		    strpbrk(b->rcpts[i].text, "\r\n") != NULL)
			return -EINVAL;
	}
	snprintf(boundary, sizeof(boundary), "%.60s/%.30s", b->unique,
		 b->mail_domain);
	if (b->orig_headers_len > 0 &&
	    smtp_bounce_contains(b->orig_headers, b->orig_headers_len,
				 boundary))
		return -EINVAL;
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	buf_init(&o, 0);

#define P(...)                                           \
	do {                                             \
		if (r == 0)                              \
			r = buf_printf(&o, __VA_ARGS__); \
	} while (0)

	P("From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", b->mail_domain);
	P("To: <%s>\r\n", b->sender);
	P("Subject: Undelivered Mail Returned to Sender\r\n");
	P("Date: %s\r\n", date);
	P("Message-ID: <%.60s@%s>\r\n", b->unique, b->mail_domain);
	P("Auto-Submitted: auto-replied\r\n");
	P("MIME-Version: 1.0\r\n");
	P("Content-Type: multipart/report; report-type=delivery-status;\r\n"
	  "\tboundary=\"%s\"\r\n",
	  boundary);
	P("\r\nThis is a MIME-encapsulated message.\r\n\r\n");
	P("--%s\r\n", boundary);
	P("Content-Description: Notification\r\n"
	  "Content-Type: text/plain; charset=us-ascii\r\n\r\n");
	P("This is the mail system at host %s.\r\n\r\n", b->mail_domain);
	P("I'm sorry to have to inform you that your message could not\r\n"
	  "be delivered to one or more recipients. It's attached below.\r\n"
	  "\r\n");
	for (unsigned i = 0; i < b->n_rcpts; i++)
		P("<%s>: %.*s\r\n", b->rcpts[i].addr, SMTP_BOUNCE_TEXT_MAX,
		  b->rcpts[i].text);
	P("\r\n--%s\r\n", boundary);
	P("Content-Description: Delivery report\r\n"
	  "Content-Type: message/delivery-status\r\n\r\n");
	P("Reporting-MTA: dns; %s\r\n", b->mail_domain);
	P("Arrival-Date: %s\r\n", date);
	for (unsigned i = 0; i < b->n_rcpts; i++) {
		P("\r\nFinal-Recipient: rfc822; %s\r\n", b->rcpts[i].addr);
		P("Action: failed\r\n");
		P("Status: %s\r\n", b->rcpts[i].status);
		P("Diagnostic-Code: smtp; %u %s %.*s\r\n", b->rcpts[i].code,
		  b->rcpts[i].status, SMTP_BOUNCE_TEXT_MAX, b->rcpts[i].text);
	}
	if (b->orig_headers_len > 0) {
		P("\r\n--%s\r\n", boundary);
		P("Content-Description: Undelivered Message Headers\r\n"
		  "Content-Type: text/rfc822-headers\r\n\r\n");
		/* Bare LF becomes CRLF; the header section keeps its
		 * final empty line out. */
		for (size_t i = 0; r == 0 && i < b->orig_headers_len; i++) {
			uint8_t c = b->orig_headers[i];

			if (c == '\n' &&
			    (i == 0 || b->orig_headers[i - 1] != '\r'))
				r = buf_append(&o, "\r", 1) < 0 ? -ENOMEM : 0;
			if (r == 0 && c == '\r' &&
			    (i + 1 >= b->orig_headers_len ||
			     b->orig_headers[i + 1] != '\n'))
				continue; /* a bare CR goes */
			if (r == 0)
				r = buf_append(&o, &c, 1) < 0 ? -ENOMEM : 0;
		}
		if (r == 0 && o.len >= 2 &&
		    memcmp(buf_head(&o) + o.len - 2, "\r\n", 2) != 0)
			P("\r\n");
	}
	P("\r\n--%s--\r\n", boundary);
#undef P
	if (r < 0) {
		buf_free(&o);
		return r;
	}
	*out_r = (char *)buf_head(&o);
	*len_r = o.len;
	return 0;
}
