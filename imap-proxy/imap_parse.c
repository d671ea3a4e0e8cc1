/* imap-proxy/imap_parse: IMAP stream framing and argument tokenizer. */
#include "imap-proxy/imap_parse.h"

/* system */
#include <string.h>
#include <strings.h>

#define IMAP_MAX_LINE_DEFAULT 65536u
/* Literal sizes beyond this are clamped (nothing real is that big; the
 * value only has to stay a count the caller can compare). */
#define IMAP_LITERAL_CLAMP (1ull << 48)

enum {
	S_START = 0, /* nothing of a command seen */
	S_TAG,
	S_NAME,
	S_REST,
	S_LITERAL,
	S_SKIP, /* invalid line: up to its LF */
};

/* Literal detection at the end of a line: "{" digits ["+"] "}" [CR] LF */
enum {
	L_NONE = 0,
	L_OPEN,   /* "{" */
	L_DIGITS, /* "{1" */
	L_PLUS,   /* "{1+" */
	L_CLOSE,  /* "{1}" */
	L_CR,     /* "{1}\r" */
};

void imap_parser_init(struct imap_parser *p, bool server, uint32_t max_line)
{
	memset(p, 0, sizeof(*p));
	p->server = server;
	p->max_line = max_line != 0 ? max_line : IMAP_MAX_LINE_DEFAULT;
}

static void imap_parse_cmd_begin(struct imap_parser *p)
{
	p->tag[0] = '\0';
	p->name[0] = '\0';
	p->tag_len = 0;
	p->name_len = 0;
	p->tag_truncated = false;
	p->error = IMAP_PERR_NONE;
	p->literal = 0;
	p->literal_sync = false;
	p->literal_left = 0;
	p->lines = 0;
	p->cmd_len = 0;
	p->line_len = 0;
	p->lit = L_NONE;
}

void imap_parse_drop_literal(struct imap_parser *p)
{
	p->literal_left = 0;
	p->state = S_START;
}

void imap_parse_reset(struct imap_parser *p)
{
	p->literal_left = 0;
	p->state = S_START;
}

bool imap_parse_at_start(const struct imap_parser *p)
{
	return p->state == S_START;
}

/* Literal detection on one octet of the rest of a line. */
static void imap_parse_lit(struct imap_parser *p, uint8_t ch)
{
	if (p->lit == L_CR)
		p->lit = L_NONE;
	switch (ch) {
	case '{':
		p->lit = L_OPEN;
		p->lit_num = 0;
		p->lit_plus = false;
		return;
	case '+':
		p->lit = p->lit == L_DIGITS ? L_PLUS : L_NONE;
		p->lit_plus = p->lit == L_PLUS;
		return;
	case '}':
		p->lit = (p->lit == L_DIGITS || p->lit == L_PLUS) ? L_CLOSE
								  : L_NONE;
		return;
	case '\r':
		p->lit = p->lit == L_CLOSE ? L_CR : L_NONE;
		return;
	default:
		break;
	}
	if (ch >= '0' && ch <= '9' &&
	    (p->lit == L_OPEN || p->lit == L_DIGITS)) {
		p->lit = L_DIGITS;
		if (p->lit_num < IMAP_LITERAL_CLAMP)
			p->lit_num = p->lit_num * 10 + (uint64_t)(ch - '0');
		return;
	}
	p->lit = L_NONE;
}

/* The line ended at its LF in S_TAG/S_NAME/S_REST. */
static enum imap_parse_status imap_parse_eol(struct imap_parser *p)
{
	bool plus_line = p->server && p->tag_len == 1 && p->tag[0] == '+';

	p->lines++;
	if (p->error != IMAP_PERR_NONE) {
		p->state = S_START;
		return IMAP_PARSE_INVALID;
	}
	if (p->state == S_TAG && p->tag_len == 0 && !p->tag_truncated) {
		if (p->server && p->lines > 1) {
			/* "...{3}\r\nabc\r\n": the response ends here. */
			p->state = S_START;
			return IMAP_PARSE_CMD;
		}
		p->error = IMAP_PERR_SYNTAX; /* empty line */
		p->state = S_START;
		return IMAP_PARSE_INVALID;
	}
	if (p->state == S_REST && !plus_line &&
	    (p->lit == L_CLOSE || p->lit == L_CR)) {
		p->literal = p->lit_num;
		p->literal_sync = !p->lit_plus;
		p->literal_left = p->lit_num;
		p->line_len = 0;
		p->lit = L_NONE;
		p->state = p->literal_left > 0 ? S_LITERAL : S_REST;
		return IMAP_PARSE_LITERAL;
	}
	p->state = S_START;
	return IMAP_PARSE_CMD;
}

enum imap_parse_status imap_parse(struct imap_parser *p, const uint8_t *data,
				  size_t len, size_t *used_r)
{
	size_t i = 0;
	enum imap_parse_status st;

	while (i < len) {
		uint8_t ch;

		if (p->state == S_LITERAL) {
			size_t n = len - i;

			if ((uint64_t)n > p->literal_left)
				n = (size_t)p->literal_left;
			p->literal_left -= n;
			p->cmd_len += n;
			i += n;
			if (p->literal_left == 0)
				p->state = S_REST;
			continue;
		}
		ch = data[i++];
		p->cmd_len++;
		if (p->state == S_START) {
			imap_parse_cmd_begin(p);
			p->state = S_TAG;
		}
		if (ch == '\n') {
			if (p->state == S_SKIP) {
				p->state = S_START;
				*used_r = i;
				return IMAP_PARSE_INVALID;
			}
			st = imap_parse_eol(p);
			*used_r = i;
			return st;
		}
		if (p->state == S_SKIP)
			continue;
		if (++p->line_len > p->max_line) {
			p->error = IMAP_PERR_TOO_LONG;
			p->state = S_SKIP;
			continue;
		}
		if (ch == '\0') {
			/* Never inside the tag or name strings. */
			if (!p->server)
				p->error = IMAP_PERR_SYNTAX;
			ch = '?';
		}
		switch (p->state) {
		case S_TAG:
			if (ch == ' ') {
				p->state = S_NAME;
			} else if (ch == '\r') {
				/* the CR of CRLF (or stray: ignored) */
			} else if (p->tag_len < IMAP_TAG_MAX) {
				p->tag[p->tag_len++] = (char)ch;
				p->tag[p->tag_len] = '\0';
			} else {
				p->tag_truncated = true;
			}
			break;
		case S_NAME:
			if (ch == ' ') {
				p->state = S_REST;
				p->lit = L_NONE;
			} else if (ch == '\r') {
				/* CRLF */
			} else if (p->name_len < IMAP_NAME_MAX) {
				if (ch >= 'a' && ch <= 'z')
					ch = (uint8_t)(ch - 'a' + 'A');
				p->name[p->name_len++] = (char)ch;
				p->name[p->name_len] = '\0';
			}
			break;
		case S_REST:
			imap_parse_lit(p, ch);
			break;
		default:
			break;
		}
	}
	*used_r = i;
	return IMAP_PARSE_AGAIN;
}

/* ---- arguments ---- */

void imap_args_init(struct imap_args *a, uint8_t *buf, size_t len)
{
	uint8_t *p = buf, *end = buf + len;
	int words = 0;

	if (end > p && end[-1] == '\n')
		end--;
	if (end > p && end[-1] == '\r')
		end--;
	/* Skip the tag and the name. */
	while (p < end && words < 2) {
		while (p < end && *p != ' ')
			p++;
		if (p < end)
			p++; /* the SP */
		words++;
	}
	a->p = p;
	a->end = end;
}

static bool imap_atom_char(uint8_t ch)
{
	return ch > ' ' && ch < 0x7f && ch != '(' && ch != ')' && ch != '"' &&
	       ch != '{';
}

enum imap_arg_type imap_args_next(struct imap_args *a, struct imap_arg *arg)
{
	uint8_t *p = a->p, *end = a->end;

	memset(arg, 0, sizeof(*arg));
	while (p < end && *p == ' ')
		p++;
	if (p >= end) {
		a->p = p;
		return arg->type = IMAP_ARG_EOL;
	}
	if (*p == '(' || *p == ')') {
		arg->type = *p == '(' ? IMAP_ARG_LPAREN : IMAP_ARG_RPAREN;
		a->p = p + 1;
		return arg->type;
	}
	if (*p == '"') {
		uint8_t *w = ++p, *start = p;

		while (p < end && *p != '"') {
			if (*p == '\\' && p + 1 < end)
				p++;
			if (*p == '\r' || *p == '\n')
				return arg->type = IMAP_ARG_ERROR;
			*w++ = *p++;
		}
		if (p >= end)
			return arg->type = IMAP_ARG_ERROR;
		arg->type = IMAP_ARG_QUOTED;
		arg->data = start;
		arg->len = (size_t)(w - start);
		a->p = p + 1;
		return arg->type;
	}
	if (*p == '{' || (*p == '~' && p + 1 < end && p[1] == '{')) {
		uint64_t n = 0;
		bool digits = false;

		p += *p == '~' ? 2 : 1;
		while (p < end && *p >= '0' && *p <= '9') {
			if (n > IMAP_LITERAL_CLAMP)
				return arg->type = IMAP_ARG_ERROR;
			n = n * 10 + (uint64_t)(*p++ - '0');
			digits = true;
		}
		if (p < end && *p == '+')
			p++;
		if (!digits || p >= end || *p++ != '}')
			return arg->type = IMAP_ARG_ERROR;
		if (p < end && *p == '\r')
			p++;
		if (p >= end || *p++ != '\n')
			return arg->type = IMAP_ARG_ERROR;
		if ((uint64_t)(end - p) < n)
			return arg->type = IMAP_ARG_ERROR;
		arg->type = IMAP_ARG_LITERAL;
		arg->data = p;
		arg->len = (size_t)n;
		a->p = p + n;
		return arg->type;
	}
	if (!imap_atom_char(*p))
		return arg->type = IMAP_ARG_ERROR;
	arg->data = p;
	while (p < end && imap_atom_char(*p))
		p++;
	if (p < end && *p != ' ' && *p != ')' && *p != '(')
		return arg->type = IMAP_ARG_ERROR;
	arg->type = IMAP_ARG_ATOM;
	arg->len = (size_t)(p - arg->data);
	a->p = p;
	return arg->type;
}

bool imap_arg_is(const struct imap_arg *arg, const char *s)
{
	size_t n = strlen(s);

	return imap_arg_is_string(arg) && arg->len == n &&
	       strncasecmp((const char *)arg->data, s, n) == 0;
}
