/* core/json: recursive descent, depth bounded, over a length-delimited
 * buffer (no NUL terminator needed). */
#include "core/json.h"

/* system */
#include <string.h>

struct json_p {
	const char *in;
	size_t len, pos;
	struct json_tok *toks;
	unsigned max_toks, n;
	char *out;
	size_t out_cap, out_len;
	bool out_over;
	struct json_err *err;
};

static int json_fail(struct json_p *p, const char *what)
{
	p->err->offset = p->pos;
	p->err->what = what;
	return -1;
}

static void json_emit(struct json_p *p, const char *s, size_t n)
{
	if (p->out == NULL)
		return;
	/* Never more than the input: out_cap > len keeps room for NUL. */
	if (p->out_len + n < p->out_cap) {
		memcpy(p->out + p->out_len, s, n);
		p->out_len += n;
	} else {
		p->out_over = true;
	}
}

static void json_ws(struct json_p *p)
{
	while (p->pos < p->len &&
	       (p->in[p->pos] == ' ' || p->in[p->pos] == '\t' ||
		p->in[p->pos] == '\n' || p->in[p->pos] == '\r'))
		p->pos++;
}

static int json_hex4(const char *s, unsigned *v_r)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*v_r = v;
	return 0;
}

/* One UTF-8 sequence at @s (n octets left): its length, or 0 if invalid
 * (overlong, surrogate, above U+10FFFF, truncated). */
static size_t json_utf8_len(const unsigned char *s, size_t n)
{
	unsigned cp;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1fu;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0fu;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07u;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3fu);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* At the opening quote; leaves pos after the closing one. */
static int json_string(struct json_p *p, uint32_t *start_r, uint32_t *len_r)
{
	size_t start = ++p->pos;
	unsigned v, lo;

	while (p->pos < p->len) {
		unsigned char c = (unsigned char)p->in[p->pos];
		size_t n;

		if (c == '"') {
			*start_r = (uint32_t)start;
			*len_r = (uint32_t)(p->pos - start);
			json_emit(p, p->in + start - 1, p->pos - start + 2);
			p->pos++;
			return 0;
		}
		if (c < 0x20)
			return json_fail(p, "control character in string");
		if (c != '\\') {
			n = json_utf8_len((const unsigned char *)p->in + p->pos,
					  p->len - p->pos);
			if (n == 0)
				return json_fail(p, "invalid UTF-8 in string");
			p->pos += n;
			continue;
		}
		if (p->pos + 1 >= p->len)
			break;
		c = (unsigned char)p->in[p->pos + 1];
		if (strchr("\"\\/bfnrt", c) != NULL && c != '\0') {
			p->pos += 2;
			continue;
		}
		if (c != 'u')
			return json_fail(p, "invalid escape in string");
		if (p->pos + 6 > p->len ||
		    json_hex4(p->in + p->pos + 2, &v) < 0)
			return json_fail(p, "invalid \\u escape");
		if (v >= 0xdc00 && v <= 0xdfff)
			return json_fail(p, "lone surrogate in \\u escape");
		if (v >= 0xd800 && v <= 0xdbff) {
			if (p->pos + 12 > p->len || p->in[p->pos + 6] != '\\' ||
			    p->in[p->pos + 7] != 'u' ||
			    json_hex4(p->in + p->pos + 8, &lo) < 0 ||
			    lo < 0xdc00 || lo > 0xdfff)
				return json_fail(p, "lone surrogate in \\u "
						    "escape");
			p->pos += 6;
		}
		p->pos += 6;
	}
	return json_fail(p, "unterminated string");
}

static bool json_digit(struct json_p *p)
{
	return p->pos < p->len && p->in[p->pos] >= '0' && p->in[p->pos] <= '9';
}

static int json_number(struct json_p *p)
{
	size_t start = p->pos;

	if (p->in[p->pos] == '-')
		p->pos++;
	if (!json_digit(p))
		return json_fail(p, "invalid number");
	if (p->in[p->pos] == '0') {
		p->pos++;
		if (json_digit(p))
			return json_fail(p, "leading zero in number");
	} else {
		while (json_digit(p))
			p->pos++;
	}
	if (p->pos < p->len && p->in[p->pos] == '.') {
		p->pos++;
		if (!json_digit(p))
			return json_fail(p, "invalid number");
		while (json_digit(p))
			p->pos++;
	}
	if (p->pos < p->len && (p->in[p->pos] == 'e' || p->in[p->pos] == 'E')) {
		p->pos++;
		if (p->pos < p->len &&
		    (p->in[p->pos] == '+' || p->in[p->pos] == '-'))
			p->pos++;
		if (!json_digit(p))
			return json_fail(p, "invalid number");
		while (json_digit(p))
			p->pos++;
	}
	json_emit(p, p->in + start, p->pos - start);
	return 0;
}

static int json_value(struct json_p *p, unsigned depth);

static int json_literal(struct json_p *p, const char *word, size_t n)
{
	if (p->len - p->pos < n || memcmp(p->in + p->pos, word, n) != 0)
		return json_fail(p, "invalid literal");
	json_emit(p, word, n);
	p->pos += n;
	return 0;
}

/* Object or array, at its opening bracket. */
static int json_container(struct json_p *p, struct json_tok *t, unsigned depth)
{
	bool obj = p->in[p->pos] == '{';
	char close = obj ? '}' : ']';

	if (depth >= JSON_DEPTH_MAX)
		return json_fail(p, "nested too deep");
	json_emit(p, p->in + p->pos, 1);
	p->pos++;
	json_ws(p);
	if (p->pos < p->len && p->in[p->pos] == close) {
		json_emit(p, &close, 1);
		p->pos++;
		return 0;
	}
	for (;;) {
		json_ws(p);
		if (obj) {
			if (p->pos >= p->len || p->in[p->pos] != '"')
				return json_fail(p, "expected a string key");
			if (json_value(p, depth + 1) < 0)
				return -1;
			json_ws(p);
			if (p->pos >= p->len || p->in[p->pos] != ':')
				return json_fail(p, "expected ':'");
			json_emit(p, ":", 1);
			p->pos++;
			json_ws(p);
		}
		if (json_value(p, depth + 1) < 0)
			return -1;
		t->size++;
		json_ws(p);
		if (p->pos < p->len && p->in[p->pos] == ',') {
			json_emit(p, ",", 1);
			p->pos++;
			continue;
		}
		if (p->pos < p->len && p->in[p->pos] == close) {
			json_emit(p, &close, 1);
			p->pos++;
			return 0;
		}
		return json_fail(p, obj ? "expected ',' or '}'"
					: "expected ',' or ']'");
	}
}

static int json_value(struct json_p *p, unsigned depth)
{
	struct json_tok *t;
	unsigned idx;
	int r;

	if (p->pos >= p->len)
		return json_fail(p, "unexpected end");
	if (p->n >= p->max_toks)
		return json_fail(p, "too many values");
	idx = p->n++;
	t = &p->toks[idx];
	memset(t, 0, sizeof(*t));
	t->start = (uint32_t)p->pos;
	switch (p->in[p->pos]) {
	case '{':
	case '[':
		t->type = p->in[p->pos] == '{' ? JSON_OBJECT : JSON_ARRAY;
		r = json_container(p, t, depth);
		break;
	case '"':
		t->type = JSON_STRING;
		r = json_string(p, &t->start, &t->len);
		break;
	case 't':
		t->type = JSON_TRUE;
		r = json_literal(p, "true", 4);
		break;
	case 'f':
		t->type = JSON_FALSE;
		r = json_literal(p, "false", 5);
		break;
	case 'n':
		t->type = JSON_NULL;
		r = json_literal(p, "null", 4);
		break;
	default:
		if (p->in[p->pos] != '-' &&
		    (p->in[p->pos] < '0' || p->in[p->pos] > '9'))
			return json_fail(p, "unexpected character");
		t->type = JSON_NUMBER;
		r = json_number(p);
		break;
	}
	if (r < 0)
		return -1;
	if (t->type != JSON_STRING)
		t->len = (uint32_t)(p->pos - t->start);
	t->end = p->n;
	return 0;
}

int json_parse(const char *in, size_t len, struct json_tok *toks,
	       unsigned max_toks, char *out, size_t out_cap,
	       struct json_err *err)
{
	struct json_p p = {
		.in = in,
		.len = len,
		.toks = toks,
		.max_toks = max_toks,
		.out = out_cap > 0 ? out : NULL,
		.out_cap = out_cap,
		.err = err,
	};

	if (len > UINT32_MAX)
		return json_fail(&p, "too long");
	json_ws(&p);
	if (json_value(&p, 0) < 0)
		return -1;
	json_ws(&p);
	if (p.pos != len)
		return json_fail(&p, "text after the value");
	if (p.out != NULL) {
		if (p.out_over)
			return json_fail(&p, "output buffer too small");
		p.out[p.out_len] = '\0';
	}
	return (int)p.n;
}

/* Append code point @cp as UTF-8. */
static size_t json_put_utf8(char *d, unsigned cp)
{
	if (cp < 0x80) {
		d[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		d[0] = (char)(0xc0 | (cp >> 6));
		d[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		d[0] = (char)(0xe0 | (cp >> 12));
		d[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		d[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	d[0] = (char)(0xf0 | (cp >> 18));
	d[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	d[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	d[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

ssize_t json_str_decode(const char *in, const struct json_tok *t, char *buf,
			size_t cap)
{
	const char *s = in + t->start, *e = s + t->len;
	size_t n = 0;
	char tmp[4];

	if (t->type != JSON_STRING || cap == 0)
		return -1;
	while (s < e) {
		size_t k = 1;
		unsigned cp, lo;

		/* Validated by json_parse: escapes are complete. */
		if (*s != '\\') {
			tmp[0] = *s++;
		} else if (s[1] != 'u') {
			static const char from[] = "\"\\/bfnrt";
			static const char to[] = "\"\\/\b\f\n\r\t";

			tmp[0] = to[strchr(from, s[1]) - from];
			s += 2;
		} else {
			(void)json_hex4(s + 2, &cp);
			s += 6;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				(void)json_hex4(s + 2, &lo);
				s += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				     (lo - 0xdc00);
			}
			k = json_put_utf8(tmp, cp);
		}
		if (n + k >= cap)
			return -1;
		memcpy(buf + n, tmp, k);
		n += k;
	}
	buf[n] = '\0';
	return (ssize_t)n;
}

bool json_str_eq(const char *in, const struct json_tok *t, const char *s)
{
	char buf[256];
	ssize_t n = json_str_decode(in, t, buf, sizeof(buf));

	return n >= 0 && (size_t)n == strlen(s) &&
	       memcmp(buf, s, (size_t)n) == 0;
}
