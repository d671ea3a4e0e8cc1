/* filter/rewrite: one walk over the header section, field by field;
 * a field to drop or replace ends the current pass-through span. */
#include "filter/rewrite.h"

/* system */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

enum smtp_rw_action {
	SMTP_RW_KEEP = 0,
	SMTP_RW_DROP,
	SMTP_RW_SUBJECT,
};

struct smtp_rw_name {
	const char *name;
	unsigned flags; /* which modes drop it */
};

static const struct smtp_rw_name smtp_rw_drop[] = {
	{"received", REWRITE_SUBMISSION | REWRITE_LMTP},
	{"x-originating-ip", REWRITE_SUBMISSION},
	{"x-mailer", REWRITE_SUBMISSION},
	{"user-agent", REWRITE_SUBMISSION},
	{"dkim-signature", REWRITE_LMTP},
	{"authentication-results", REWRITE_LMTP},
};

static const char smtp_rw_subject_crlf[] = "Subject: [...]\r\n";
static const char smtp_rw_subject_lf[] = "Subject: [...]\n";

/* The end of the line starting at @i (after its LF, or @len). */
static size_t smtp_rw_line_end(const uint8_t *m, size_t len, size_t i)
{
	const uint8_t *lf = memchr(m + i, '\n', len - i);

	return lf != NULL ? (size_t)(lf - m) + 1 : len;
}

/* Is the line at @i empty (the end of the header section)? */
static bool smtp_rw_empty_line(const uint8_t *m, size_t len, size_t i)
{
	return m[i] == '\n' ||
	       (m[i] == '\r' && i + 1 < len && m[i + 1] == '\n');
}

static enum smtp_rw_action smtp_rw_classify(const uint8_t *m, size_t n,
					    unsigned flags)
{
	size_t k = 0, name_len;

	while (k < n && m[k] != ':' && m[k] != '\r' && m[k] != '\n')
		k++;
	if (k >= n || m[k] != ':')
		return SMTP_RW_KEEP;
	name_len = k;
	while (name_len > 0 &&
	       (m[name_len - 1] == ' ' || m[name_len - 1] == '\t'))
		name_len--;
	if ((flags & REWRITE_SUBMISSION) && name_len == 7 &&
	    strncasecmp((const char *)m, "subject", 7) == 0)
		return SMTP_RW_SUBJECT;
	for (size_t i = 0; i < sizeof(smtp_rw_drop) / sizeof(smtp_rw_drop[0]);
	     i++) {
		if ((smtp_rw_drop[i].flags & flags) &&
		    strlen(smtp_rw_drop[i].name) == name_len &&
		    strncasecmp((const char *)m, smtp_rw_drop[i].name,
				name_len) == 0)
			return SMTP_RW_DROP;
	}
	return SMTP_RW_KEEP;
}

/* The walk; with @out NULL it only counts. */
static int smtp_rw_walk(const uint8_t *m, size_t len, unsigned flags,
			rewrite_out_fn *out, void *ctx, uint64_t *size_r)
{
	size_t i = 0, span = 0, end, fend;
	uint64_t size = 0;
	int r;

#define SMTP_RW_EMIT(p, n)                                       \
	do {                                                     \
		size += (n);                                     \
		if (out != NULL && (n) > 0) {                    \
			r = out(ctx, (const uint8_t *)(p), (n)); \
			if (r < 0)                               \
				return r;                        \
		}                                                \
	} while (0)

	while (i < len && !smtp_rw_empty_line(m, len, i)) {
		enum smtp_rw_action a;

		end = smtp_rw_line_end(m, len, i);
		/* A continuation at the very start belongs to nothing. */
		if (m[i] == ' ' || m[i] == '\t') {
			i = end;
			continue;
		}
		fend = end;
		while (fend < len && (m[fend] == ' ' || m[fend] == '\t'))
			fend = smtp_rw_line_end(m, len, fend);
		a = smtp_rw_classify(m + i, end - i, flags);
		if (a != SMTP_RW_KEEP) {
			SMTP_RW_EMIT(m + span, i - span);
			if (a == SMTP_RW_SUBJECT) {
				bool crlf = fend >= 2 && m[fend - 1] == '\n' &&
					    m[fend - 2] == '\r';
				bool lf = fend >= 1 && m[fend - 1] == '\n';

				if (crlf || !lf)
					SMTP_RW_EMIT(
						smtp_rw_subject_crlf,
						sizeof(smtp_rw_subject_crlf) -
							1);
				else
					SMTP_RW_EMIT(
						smtp_rw_subject_lf,
						sizeof(smtp_rw_subject_lf) - 1);
			}
			span = fend;
		}
		i = fend;
	}
	SMTP_RW_EMIT(m + span, len - span);
#undef SMTP_RW_EMIT
	*size_r = size;
	return 0;
}

int rewrite_headers(const uint8_t *msg, size_t len, unsigned flags,
		    rewrite_out_fn *out, void *ctx)
{
	uint64_t size;

	return smtp_rw_walk(msg, len, flags, out, ctx, &size);
}

uint64_t rewrite_size(const uint8_t *msg, size_t len, unsigned flags)
{
	uint64_t size = 0;

	(void)smtp_rw_walk(msg, len, flags, NULL, NULL, &size);
	return size;
}
