/* smtp/smtp_data: a byte state machine only at line starts; inside a line
 * memchr jumps to the next LF. Decoded octets leave as runs of the input:
 * a run ends only where a stuffing dot is dropped or the input ends. */
#include "smtp/smtp_data.h"

/* system */
#include <string.h>

enum {
	SMTP_DST_BOL = 0, /* at the start of a line (after CRLF) */
	SMTP_DST_DOT,     /* "." at the start of a line */
	SMTP_DST_DOT_CR,  /* ".\r" at the start of a line */
	SMTP_DST_TEXT,    /* inside a line */
	SMTP_DST_DONE,    /* the end marker was seen */
};

static const uint8_t smtp_data_cr = '\r';

void smtp_data_init(struct smtp_data *d, uint64_t limit,
		    smtp_data_sink_fn *sink, void *sink_ctx)
{
	memset(d, 0, sizeof(*d));
	d->state = SMTP_DST_BOL;
	d->error = SMTP_DERR_NONE;
	d->limit = limit;
	d->sink = sink;
	d->sink_ctx = sink_ctx;
}

/* Count @n decoded octets and pass them on while the message is good. */
static void smtp_data_emit(struct smtp_data *d, const uint8_t *p, size_t n)
{
	if (n == 0)
		return;
	d->size += n;
	if (d->bare_lfs > 0 || d->sink_failed ||
	    (d->limit != 0 && d->size > d->limit) || d->sink == NULL)
		return;
	if (d->sink(d->sink_ctx, p, n) < 0)
		d->sink_failed = true;
}

static int smtp_data_end(struct smtp_data *d)
{
	if (d->bare_lfs > 0)
		d->error = SMTP_DERR_BARE_LF;
	else if (d->limit != 0 && d->size > d->limit)
		d->error = SMTP_DERR_TOO_BIG;
	else if (d->sink_failed)
		d->error = SMTP_DERR_SINK;
	else
		d->error = SMTP_DERR_NONE;
	return d->error == SMTP_DERR_NONE ? SMTP_PARSE_OK : SMTP_PARSE_INVALID;
}

/* Any octet >= 0x80 in [p, p + n)? Eight at a time. */
static bool smtp_data_any_8bit(const uint8_t *p, size_t n)
{
	uint64_t acc = 0, w;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		acc |= w;
	}
	for (; i < n; i++)
		acc |= p[i];
	return (acc & UINT64_C(0x8080808080808080)) != 0;
}

int smtp_data_parse(struct smtp_data *d, const uint8_t *data, size_t len,
		    size_t *used_r)
{
	const uint8_t *p = data, *end = data + len, *run = data, *lf;
	size_t n;

	*used_r = 0;
	if (d->state == SMTP_DST_DONE)
		return d->error == SMTP_DERR_NONE ? SMTP_PARSE_OK
						  : SMTP_PARSE_INVALID;
	while (p < end) {
		switch (d->state) {
		case SMTP_DST_BOL:
			if (*p == '.') {
				smtp_data_emit(d, run, (size_t)(p - run));
				run = ++p;
				d->state = SMTP_DST_DOT;
				break;
			}
			d->state = SMTP_DST_TEXT;
			d->last_cr = false;
			break;
		case SMTP_DST_DOT:
			if (*p == '\r') {
				run = ++p;
				d->state = SMTP_DST_DOT_CR;
				break;
			}
			/* A stuffed (or lone) leading dot is dropped. */
			d->state = SMTP_DST_TEXT;
			d->last_cr = false;
			break;
		case SMTP_DST_DOT_CR:
			if (*p == '\n') {
				p++;
				d->state = SMTP_DST_DONE;
				d->wire += (uint64_t)(p - data);
				*used_r = (size_t)(p - data);
				return smtp_data_end(d);
			}
			/* ".\r" and more: the dot goes, the CR is content. */
			smtp_data_emit(d, &smtp_data_cr, 1);
			d->line_len = 1;
			d->state = SMTP_DST_TEXT; /* *p is not LF: goes there */
			break;
		case SMTP_DST_TEXT:
			n = (size_t)(end - p);
			lf = memchr(p, '\n', n);
			if (lf != NULL)
				n = (size_t)(lf - p);
			if (!d->has_8bit && smtp_data_any_8bit(p, n))
				d->has_8bit = true;
			if (lf == NULL) {
				d->line_len += n;
				d->last_cr = p[n - 1] == '\r';
				p = end;
				break;
			}
			if (n > 0 ? lf[-1] != '\r' : !d->last_cr) {
				/* Bare LF: content, not a line end. */
				d->bare_lfs++;
				d->line_len += n + 1;
				d->last_cr = false;
				p = lf + 1;
				break;
			}
			d->line_len += n; /* with the CR */
			if (d->line_len - 1 > SMTP_DATA_LINE_MAX)
				d->long_lines++;
			d->lines++;
			d->line_len = 0;
			d->state = SMTP_DST_BOL;
			p = lf + 1;
			break;
		}
	}
	smtp_data_emit(d, run, (size_t)(p - run));
	d->wire += len;
	*used_r = len;
	return SMTP_PARSE_AGAIN;
}

static const struct smtp_reply_def smtp_data_replies[] = {
	[SMTP_DERR_TOO_BIG] = {SMTP_R_TOO_BIG},
	[SMTP_DERR_BARE_LF] = {SMTP_R_DATA_BARE_LF},
	[SMTP_DERR_SINK] = {SMTP_R_DATA_LOCAL},
};

const struct smtp_reply_def *smtp_data_error_reply(enum smtp_data_error e)
{
	if (e == SMTP_DERR_NONE ||
	    (size_t)e >=
		    sizeof(smtp_data_replies) / sizeof(smtp_data_replies[0]))
		return NULL;
	return &smtp_data_replies[e];
}
