/* smtp/lmtp_parse: reply lines are collected into the parser (bounded),
 * then each complete line is checked and folded into the reply. */
#include "smtp/lmtp_parse.h"

/* system */
#include <string.h>

enum {
	LMTP_PST_LINE = 0, /* collecting a line */
	LMTP_PST_SKIP,     /* skipping the rest of an invalid line */
};

void lmtp_parser_init(struct lmtp_parser *p)
{
	p->state = LMTP_PST_LINE;
	p->line_len = 0;
	p->in_reply = false;
	p->error = NULL;
	p->reply.code = 0;
	p->reply.status[0] = '\0';
	p->reply.text[0] = '\0';
	p->reply.text_len = 0;
	p->reply.lines = 0;
	p->reply.truncated = false;
}

static bool lmtp_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* 1 to 3 digits at @s; returns the count or 0. */
static size_t lmtp_digits(const char *s, size_t len)
{
	size_t n = 0;

	while (n < len && n < 4 && lmtp_is_digit(s[n]))
		n++;
	return n >= 1 && n <= 3 ? n : 0;
}

size_t lmtp_parse_status(const char *s, size_t len, char cls)
{
	size_t off, n;

	if (len < 5 || s[0] != cls || s[1] != '.')
		return 0;
	off = 2;
	n = lmtp_digits(s + off, len - off);
	if (n == 0)
		return 0;
	off += n;
	if (off >= len || s[off] != '.')
		return 0;
	off++;
	n = lmtp_digits(s + off, len - off);
	if (n == 0)
		return 0;
	off += n;
	if (off < len && s[off] != ' ')
		return 0;
	return off;
}

static void lmtp_text_append(struct lmtp_reply *r, const char *s, size_t len)
{
	size_t room;

	if (r->lines > 0) {
		if (r->text_len < LMTP_REPLY_TEXT_MAX)
			r->text[r->text_len++] = '\n';
		else
			r->truncated = true;
	}
	room = LMTP_REPLY_TEXT_MAX - r->text_len;
	if (len > room) {
		len = room;
		r->truncated = true;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		r->text[r->text_len++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	r->text[r->text_len] = '\0';
}

/* Drop the reply in progress and report @why. */
static int lmtp_invalid(struct lmtp_parser *p, const char *why)
{
	p->error = why;
	p->in_reply = false;
	p->reply.code = 0;
	p->reply.status[0] = '\0';
	p->reply.text[0] = '\0';
	p->reply.text_len = 0;
	p->reply.lines = 0;
	p->reply.truncated = false;
	return LMTP_PARSE_INVALID;
}

/* One complete line (CR already removed) in p->line. */
static int lmtp_line_done(struct lmtp_parser *p)
{
	struct lmtp_reply *r = &p->reply;
	const char *s = p->line;
	size_t len = p->line_len, st;
	unsigned code;
	bool last;

	if (!p->in_reply) {
		/* First line of a new reply. */
		r->code = 0;
		r->status[0] = '\0';
		r->text[0] = '\0';
		r->text_len = 0;
		r->lines = 0;
		r->truncated = false;
	}
	if (len < 3 || s[0] < '2' || s[0] > '5' || !lmtp_is_digit(s[1]) ||
	    !lmtp_is_digit(s[2]))
		return lmtp_invalid(p, "bad reply code");
	code = (unsigned)(s[0] - '0') * 100 + (unsigned)(s[1] - '0') * 10 +
	       (unsigned)(s[2] - '0');
	if (len == 3)
		last = true;
	else if (s[3] == ' ')
		last = true;
	else if (s[3] == '-')
		last = false;
	else
		return lmtp_invalid(p, "bad separator after code");
	if (p->in_reply && code != r->code)
		return lmtp_invalid(p, "code changed inside a multiline reply");
	if (r->lines >= LMTP_REPLY_LINES_MAX)
		return lmtp_invalid(p, "too many lines");
	r->code = code;
	s += len > 3 ? 4 : 3;
	len -= len > 3 ? 4 : 3;
	st = lmtp_parse_status(s, len, p->line[0]);
	if (st > 0) {
		if (r->lines == 0) {
			memcpy(r->status, s, st);
			r->status[st] = '\0';
		}
		s += st;
		len -= st;
		if (len > 0) {
			s++; /* the space after the status */
			len--;
		}
	}
	lmtp_text_append(r, s, len);
	r->lines++;
	p->in_reply = !last;
	return last ? LMTP_PARSE_OK : LMTP_PARSE_AGAIN;
}

int lmtp_parse_reply(struct lmtp_parser *p, const uint8_t *data, size_t len,
		     size_t *used_r)
{
	size_t i = 0;
	const uint8_t *nl;
	size_t n;
	int r;

	p->error = NULL;
	while (i < len) {
		nl = memchr(data + i, '\n', len - i);
		n = nl != NULL ? (size_t)(nl - (data + i)) : len - i;
		if (p->state == LMTP_PST_SKIP) {
			i += n;
			if (nl == NULL)
				break;
			i++; /* the LF */
			p->state = LMTP_PST_LINE;
			p->line_len = 0;
			continue;
		}
		if (p->line_len + n > LMTP_REPLY_LINE_MAX + 1) {
			/* +1: a CR that belongs before the LF may be here */
			i += n;
			if (nl != NULL)
				i++;
			else
				p->state = LMTP_PST_SKIP;
			p->line_len = 0;
			*used_r = i;
			return lmtp_invalid(p, "reply line too long");
		}
		memcpy(p->line + p->line_len, data + i, n);
		p->line_len += (uint32_t)n;
		i += n;
		if (nl == NULL)
			break;
		i++; /* the LF */
		if (p->line_len > 0 && p->line[p->line_len - 1] == '\r')
			p->line_len--;
		if (p->line_len > LMTP_REPLY_LINE_MAX) {
			p->line_len = 0;
			*used_r = i;
			return lmtp_invalid(p, "reply line too long");
		}
		p->line[p->line_len] = '\0';
		r = lmtp_line_done(p);
		p->line_len = 0;
		if (r != LMTP_PARSE_AGAIN) {
			*used_r = i;
			return r;
		}
	}
	*used_r = i;
	return LMTP_PARSE_AGAIN;
}
