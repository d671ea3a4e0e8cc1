/* smtp/smtp_parse: the bytes of a line are copied into the parser until
 * its LF (memchr, one memcpy per input chunk); the complete line is then
 * checked and split into verb and argument. A line that cannot fit is not
 * stored: it is skipped through its LF and reported once, there. */
#include "smtp/smtp_parse.h"

/* system */
#include <string.h>

enum {
	SMTP_PST_LINE = 0, /* collecting a line into p->line */
	SMTP_PST_SKIP,     /* the line overflowed: skipping to its LF */
	SMTP_PST_DONE,     /* p->cmd is valid until the next call */
};

static const char *const smtp_verb_names[SMTP_VERB_COUNT] = {
	[SMTP_VERB_UNKNOWN] = "UNKNOWN", [SMTP_VERB_EHLO] = "EHLO",
	[SMTP_VERB_HELO] = "HELO",       [SMTP_VERB_MAIL] = "MAIL",
	[SMTP_VERB_RCPT] = "RCPT",       [SMTP_VERB_DATA] = "DATA",
	[SMTP_VERB_BDAT] = "BDAT",       [SMTP_VERB_RSET] = "RSET",
	[SMTP_VERB_NOOP] = "NOOP",       [SMTP_VERB_QUIT] = "QUIT",
	[SMTP_VERB_VRFY] = "VRFY",       [SMTP_VERB_EXPN] = "EXPN",
	[SMTP_VERB_HELP] = "HELP",       [SMTP_VERB_STARTTLS] = "STARTTLS",
	[SMTP_VERB_AUTH] = "AUTH",       [SMTP_VERB_LINE] = "LINE",
};

void smtp_parser_init(struct smtp_parser *p)
{
	p->state = SMTP_PST_LINE;
	p->raw = false;
	p->len = 0;
	p->error = SMTP_PERR_NONE;
	p->skipped = 0;
	memset(&p->cmd, 0, sizeof(p->cmd));
	p->line[0] = '\0';
}

void smtp_parser_expect_line(struct smtp_parser *p)
{
	p->raw = true;
}

const char *smtp_verb_name(enum smtp_verb verb)
{
	if ((unsigned)verb >= SMTP_VERB_COUNT)
		return "UNKNOWN";
	return smtp_verb_names[verb];
}

bool smtp_parse_line_ready(const uint8_t *data, size_t len)
{
	return len > 0 && memchr(data, '\n', len) != NULL;
}

/* Four octets folded to lower case and packed; letters only map to
 * themselves (b | 0x20 == 'a' only for 'a' and 'A'). */
#define SMTP_V4(a, b, c, d)                                         \
	((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | \
	 (uint32_t)(d) << 24)

static uint32_t smtp_fold4(const char *s)
{
	return SMTP_V4(s[0] | 0x20, s[1] | 0x20, s[2] | 0x20, s[3] | 0x20);
}

static enum smtp_verb smtp_verb_lookup(const char *s, size_t len)
{
	if (len == 8)
		return smtp_fold4(s) == SMTP_V4('s', 't', 'a', 'r') &&
				       smtp_fold4(s + 4) ==
					       SMTP_V4('t', 't', 'l', 's')
			       ? SMTP_VERB_STARTTLS
			       : SMTP_VERB_UNKNOWN;
	if (len != 4)
		return SMTP_VERB_UNKNOWN;
	switch (smtp_fold4(s)) {
	case SMTP_V4('e', 'h', 'l', 'o'):
		return SMTP_VERB_EHLO;
	case SMTP_V4('h', 'e', 'l', 'o'):
		return SMTP_VERB_HELO;
	case SMTP_V4('m', 'a', 'i', 'l'):
		return SMTP_VERB_MAIL;
	case SMTP_V4('r', 'c', 'p', 't'):
		return SMTP_VERB_RCPT;
	case SMTP_V4('d', 'a', 't', 'a'):
		return SMTP_VERB_DATA;
	case SMTP_V4('b', 'd', 'a', 't'):
		return SMTP_VERB_BDAT;
	case SMTP_V4('r', 's', 'e', 't'):
		return SMTP_VERB_RSET;
	case SMTP_V4('n', 'o', 'o', 'p'):
		return SMTP_VERB_NOOP;
	case SMTP_V4('q', 'u', 'i', 't'):
		return SMTP_VERB_QUIT;
	case SMTP_V4('v', 'r', 'f', 'y'):
		return SMTP_VERB_VRFY;
	case SMTP_V4('e', 'x', 'p', 'n'):
		return SMTP_VERB_EXPN;
	case SMTP_V4('h', 'e', 'l', 'p'):
		return SMTP_VERB_HELP;
	case SMTP_V4('a', 'u', 't', 'h'):
		return SMTP_VERB_AUTH;
	default:
		return SMTP_VERB_UNKNOWN;
	}
}

static bool smtp_is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Control characters other than HTAB, and DEL, are refused anywhere in a
 * line; octets >= 0x80 pass (SMTPUTF8 names are checked by smtp_addr). */
static bool smtp_has_ctl(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return true;
	}
	return false;
}

static size_t smtp_line_limit(enum smtp_verb v)
{
	if (v == SMTP_VERB_LINE || v == SMTP_VERB_MAIL || v == SMTP_VERB_RCPT ||
	    v == SMTP_VERB_AUTH)
		return SMTP_LINE_MAX_LONG;
	return SMTP_LINE_MAX;
}

/* The line in p->line[0..p->len) ended at an LF: fill p->cmd. */
static int smtp_line_done(struct smtp_parser *p)
{
	struct smtp_cmd *c = &p->cmd;
	const char *s = p->line;
	size_t n = p->len, i = 0, end;
	bool raw = p->raw;

	p->raw = false;
	p->state = SMTP_PST_DONE;
	c->line_len = (uint32_t)n + 1;
	p->line[n] = '\0';
	if (!raw) {
		while (i < n && s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			i++;
		c->name = s;
		c->name_len = (uint16_t)i;
		c->verb = smtp_verb_lookup(s, i);
	} else {
		c->name = s;
		c->name_len = 0;
		c->verb = SMTP_VERB_LINE;
	}
	if (c->line_len > smtp_line_limit(c->verb)) {
		p->error = SMTP_PERR_TOO_LONG;
		goto invalid;
	}
	if (n == 0 || s[n - 1] != '\r') {
		p->error = SMTP_PERR_BARE_LF;
		goto invalid;
	}
	n--;
	p->line[n] = '\0';
	if (smtp_has_ctl(s, n)) {
		p->error = SMTP_PERR_BAD_CHAR;
		goto invalid;
	}
	if (raw) {
		c->arg = s;
		c->arg_len = (uint16_t)n;
		return SMTP_PARSE_OK;
	}
	if (c->name_len == 0) {
		p->error = SMTP_PERR_SYNTAX;
		goto invalid;
	}
	while (i < n && smtp_is_space(s[i]))
		i++;
	end = n;
	while (end > i && smtp_is_space(s[end - 1]))
		end--;
	p->line[end] = '\0';
	c->arg = s + i;
	c->arg_len = (uint16_t)(end - i);
	return SMTP_PARSE_OK;
invalid:
	c->arg = p->line + p->len;
	c->arg_len = 0;
	return SMTP_PARSE_INVALID;
}

int smtp_parse_cmd(struct smtp_parser *p, const uint8_t *data, size_t len,
		   size_t *used_r)
{
	const uint8_t *lf;
	size_t n;

	*used_r = 0;
	if (p->state == SMTP_PST_DONE) {
		p->state = SMTP_PST_LINE;
		p->len = 0;
		p->error = SMTP_PERR_NONE;
		p->skipped = 0;
	}
	if (len == 0)
		return SMTP_PARSE_AGAIN;
	lf = memchr(data, '\n', len);
	n = lf != NULL ? (size_t)(lf - data) : len;
	if (p->state == SMTP_PST_LINE && n > sizeof(p->line) - 1 - p->len) {
		/* Cannot be a valid line even for the long limit. */
		p->skipped = p->len;
		p->len = 0;
		p->state = SMTP_PST_SKIP;
	}
	if (p->state == SMTP_PST_SKIP) {
		p->skipped += n;
		if (lf == NULL) {
			*used_r = len;
			return SMTP_PARSE_AGAIN;
		}
		*used_r = n + 1;
		p->state = SMTP_PST_DONE;
		p->raw = false;
		p->error = SMTP_PERR_TOO_LONG;
		p->cmd.verb = SMTP_VERB_UNKNOWN;
		p->cmd.name = p->line;
		p->cmd.name_len = 0;
		p->line[0] = '\0';
		p->cmd.arg = p->line;
		p->cmd.arg_len = 0;
		p->cmd.line_len = (uint32_t)(p->skipped + 1 > UINT32_MAX
						     ? UINT32_MAX
						     : p->skipped + 1);
		return SMTP_PARSE_INVALID;
	}
	memcpy(p->line + p->len, data, n);
	p->len += (uint16_t)n;
	if (lf == NULL) {
		*used_r = len;
		return SMTP_PARSE_AGAIN;
	}
	*used_r = n + 1;
	return smtp_line_done(p);
}

static const struct smtp_reply_def smtp_parse_replies[] = {
	[SMTP_PERR_TOO_LONG] = {SMTP_R_CMD_TOO_LONG},
	[SMTP_PERR_BARE_LF] = {SMTP_R_CMD_BARE_LF},
	[SMTP_PERR_BAD_CHAR] = {SMTP_R_CMD_BAD_SYNTAX},
	[SMTP_PERR_SYNTAX] = {SMTP_R_CMD_BAD_SYNTAX},
};

const struct smtp_reply_def *smtp_parse_error_reply(enum smtp_parse_error e)
{
	if (e == SMTP_PERR_NONE ||
	    (size_t)e >=
		    sizeof(smtp_parse_replies) / sizeof(smtp_parse_replies[0]))
		return NULL;
	return &smtp_parse_replies[e];
}
