/* smtp/smtp_addr: recursive-descent over one argument string: path
 * (source route, local part, domain or literal), then space-separated
 * keyword[=value] parameters. Canonical forms are built in the output. */
#include "smtp/smtp_addr.h"

/* system */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool smtp_is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool smtp_is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 5322 3.2.3 atext, ASCII part. */
static bool smtp_is_atext(unsigned char c)
{
	if (smtp_is_alpha(c) || smtp_is_digit(c))
		return true;
	return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* Length (2..4) of the well-formed UTF-8 sequence at @s, or 0 (overlong
 * forms, surrogates and code points past U+10FFFF are refused). */
static size_t smtp_utf8_seq(const unsigned char *s, size_t len)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c == 0xe0)
		n = 3, lo = 0xa0;
	else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef)
		n = 3;
	else if (c == 0xed)
		n = 3, hi = 0x9f;
	else if (c == 0xf0)
		n = 4, lo = 0x90;
	else if (c >= 0xf1 && c <= 0xf3)
		n = 4;
	else if (c == 0xf4)
		n = 4, hi = 0x8f;
	else
		return 0;
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++) {
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	}
	return n;
}

/* A decoded local part, before it is written canonically. */
struct smtp_local {
	char s[SMTP_PATH_MAX];
	size_t len;
	bool utf8;
};

static bool smtp_local_put(struct smtp_local *l, const char *s, size_t n)
{
	if (n > sizeof(l->s) - l->len)
		return false;
	memcpy(l->s + l->len, s, n);
	l->len += n;
	return true;
}

/* Dot-string (RFC 5321 4.1.2) at @s; stops at the first other octet. */
static int smtp_parse_dot_string(const char *s, size_t len, size_t *i_r,
				 struct smtp_local *l)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = *i_r, n;
	bool atom = false; /* inside an atom (not right after a dot) */

	while (i < len) {
		if (smtp_is_atext(u[i])) {
			n = 1;
		} else if (u[i] == '.') {
			if (!atom)
				return SMTP_ADDR_ERR_LOCAL;
			if (!smtp_local_put(l, ".", 1))
				return SMTP_ADDR_ERR_TOO_LONG;
			atom = false;
			i++;
			continue;
		} else if (u[i] >= 0x80) {
			n = smtp_utf8_seq(u + i, len - i);
			if (n == 0)
				return SMTP_ADDR_ERR_LOCAL;
			l->utf8 = true;
		} else {
			break;
		}
		if (!smtp_local_put(l, s + i, n))
			return SMTP_ADDR_ERR_TOO_LONG;
		atom = true;
		i += n;
	}
	if (!atom)
		return SMTP_ADDR_ERR_LOCAL; /* empty or ends in a dot */
	*i_r = i;
	return SMTP_ADDR_OK;
}

/* Quoted-string (RFC 5321 4.1.2) at @s[*i_r] == '"'; decoded into @l. */
static int smtp_parse_quoted(const char *s, size_t len, size_t *i_r,
			     struct smtp_local *l)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = *i_r + 1, n;

	for (;;) {
		if (i >= len)
			return SMTP_ADDR_ERR_LOCAL; /* unterminated */
		if (u[i] == '"')
			break;
		if (u[i] == '\\') {
			i++;
			if (i >= len || u[i] < 32 || u[i] > 126)
				return SMTP_ADDR_ERR_LOCAL;
			n = 1;
		} else if (u[i] >= 32 && u[i] <= 126) {
			n = 1;
		} else if (u[i] >= 0x80) {
			n = smtp_utf8_seq(u + i, len - i);
			if (n == 0)
				return SMTP_ADDR_ERR_LOCAL;
			l->utf8 = true;
		} else {
			return SMTP_ADDR_ERR_LOCAL;
		}
		if (!smtp_local_put(l, s + i, n))
			return SMTP_ADDR_ERR_TOO_LONG;
		i += n;
	}
	*i_r = i + 1;
	return SMTP_ADDR_OK;
}

static bool smtp_is_dot_atom(const struct smtp_local *l)
{
	const unsigned char *u = (const unsigned char *)l->s;
	bool atom = false;

	for (size_t i = 0; i < l->len; i++) {
		if (u[i] == '.') {
			if (!atom)
				return false;
			atom = false;
		} else if (smtp_is_atext(u[i]) || u[i] >= 0x80) {
			atom = true;
		} else {
			return false;
		}
	}
	return atom;
}

/* Strict dotted quad: four 0..255 without leading zeros. */
static bool smtp_is_ipv4(const char *s, size_t len)
{
	size_t i = 0, parts = 0, digits;
	unsigned v;

	while (parts < 4) {
		digits = 0;
		v = 0;
		while (i < len && smtp_is_digit((unsigned char)s[i]) &&
		       digits < 4) {
			v = v * 10 + (unsigned)(s[i] - '0');
			digits++;
			i++;
		}
		if (digits == 0 || digits > 3 || v > 255 ||
		    (digits > 1 && s[i - digits] == '0'))
			return false;
		parts++;
		if (parts < 4) {
			if (i >= len || s[i] != '.')
				return false;
			i++;
		}
	}
	return i == len;
}

/* Output of the domain parser: canonical, NUL-terminated. */
struct smtp_domain {
	char s[SMTP_DOMAIN_MAX + 1];
	size_t len;
	bool literal;
	bool utf8;
};

/* "[1.2.3.4]" or "[IPv6:...]" at @s[0] == '['. */
static int smtp_parse_literal(const char *s, size_t len, size_t *used_r,
			      struct smtp_domain *d)
{
	const char *end = memchr(s, ']', len);
	const char *in = s + 1;
	size_t n;
	char tmp[INET6_ADDRSTRLEN + 1], txt[INET6_ADDRSTRLEN];
	struct in6_addr a6;

	if (end == NULL)
		return SMTP_ADDR_ERR_DOMAIN;
	n = (size_t)(end - in);
	d->literal = true;
	if (n > 5 && strncasecmp(in, "IPv6:", 5) == 0) {
		if (n - 5 >= sizeof(tmp))
			return SMTP_ADDR_ERR_DOMAIN;
		memcpy(tmp, in + 5, n - 5);
		tmp[n - 5] = '\0';
		if (inet_pton(AF_INET6, tmp, &a6) != 1 ||
		    inet_ntop(AF_INET6, &a6, txt, sizeof(txt)) == NULL)
			return SMTP_ADDR_ERR_DOMAIN;
		d->len = (size_t)snprintf(d->s, sizeof(d->s), "[IPv6:%s]", txt);
	} else if (smtp_is_ipv4(in, n)) {
		d->s[0] = '[';
		memcpy(d->s + 1, in, n);
		d->s[n + 1] = ']';
		d->len = n + 2;
		d->s[d->len] = '\0';
	} else {
		/* General-address-literal (RFC 5321 4.1.3): no tags known. */
		return SMTP_ADDR_ERR_DOMAIN;
	}
	*used_r = n + 2;
	return SMTP_ADDR_OK;
}

/* Labels of letters, digits, '-' (not first or last) and '_' (chatmail's
 * "_name" relays, spec N.1.15; Postfix allows it), or UTF-8 U-labels;
 * lower-cased. Stops at the first octet that cannot continue the name. */
static int smtp_parse_name(const char *s, size_t len, size_t *used_r,
			   struct smtp_domain *d)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, label = 0, n;

	d->len = 0;
	while (i < len) {
		if (smtp_is_alpha(u[i]) || smtp_is_digit(u[i]) || u[i] == '-' ||
		    u[i] == '_') {
			if (u[i] == '-' && label == 0)
				return SMTP_ADDR_ERR_DOMAIN;
			n = 1;
		} else if (u[i] >= 0x80) {
			n = smtp_utf8_seq(u + i, len - i);
			if (n == 0)
				return SMTP_ADDR_ERR_DOMAIN;
			d->utf8 = true;
		} else if (u[i] == '.') {
			if (label == 0 || u[i - 1] == '-')
				return SMTP_ADDR_ERR_DOMAIN;
			label = 0;
			n = 1;
		} else {
			break;
		}
		if (d->len + n > SMTP_DOMAIN_MAX)
			return SMTP_ADDR_ERR_TOO_LONG;
		for (size_t k = 0; k < n; k++) {
			unsigned char c = u[i + k];

			d->s[d->len++] =
				(char)(c >= 'A' && c <= 'Z' ? c | 0x20 : c);
		}
		if (u[i] != '.') {
			label += n;
			if (label > SMTP_LABEL_MAX)
				return SMTP_ADDR_ERR_TOO_LONG;
		}
		i += n;
	}
	if (label == 0 || u[i - 1] == '-')
		return SMTP_ADDR_ERR_DOMAIN; /* empty, trailing dot or '-' */
	d->s[d->len] = '\0';
	*used_r = i;
	return SMTP_ADDR_OK;
}

static int smtp_parse_domain(const char *s, size_t len, size_t *used_r,
			     struct smtp_domain *d)
{
	d->len = 0;
	d->literal = false;
	d->utf8 = false;
	d->s[0] = '\0';
	if (len == 0)
		return SMTP_ADDR_ERR_DOMAIN;
	if (s[0] == '[')
		return smtp_parse_literal(s, len, used_r, d);
	return smtp_parse_name(s, len, used_r, d);
}

/* A-d-l (RFC 5321 4.1.2) after '<': "@dom,@dom:"; checked, then dropped. */
static int smtp_skip_route(const char *s, size_t len, size_t *i_r)
{
	struct smtp_domain d;
	size_t i = *i_r, used;
	int r;

	for (;;) {
		if (i >= len || s[i] != '@')
			return SMTP_ADDR_ERR_PATH;
		i++;
		r = smtp_parse_domain(s + i, len - i, &used, &d);
		if (r != SMTP_ADDR_OK)
			return r;
		i += used;
		if (i < len && s[i] == ',') {
			i++;
			continue;
		}
		if (i < len && s[i] == ':')
			break;
		return SMTP_ADDR_ERR_PATH;
	}
	*i_r = i + 1;
	return SMTP_ADDR_OK;
}

/* Write the local part of @l canonically into out->addr. */
static int smtp_put_local(struct smtp_path *out, const struct smtp_local *l)
{
	size_t o = 0;

	if (smtp_is_dot_atom(l)) {
		if (l->len > SMTP_ADDR_MAX)
			return SMTP_ADDR_ERR_TOO_LONG;
		memcpy(out->addr, l->s, l->len);
		o = l->len;
	} else {
		out->quoted = true;
		out->addr[o++] = '"';
		for (size_t i = 0; i < l->len; i++) {
			if (o + 3 > SMTP_ADDR_MAX)
				return SMTP_ADDR_ERR_TOO_LONG;
			if (l->s[i] == '"' || l->s[i] == '\\')
				out->addr[o++] = '\\';
			out->addr[o++] = l->s[i];
		}
		out->addr[o++] = '"';
	}
	out->local_len = (uint16_t)o;
	out->len = (uint16_t)o;
	out->addr[o] = '\0';
	return SMTP_ADDR_OK;
}

static void smtp_path_clear(struct smtp_path *out)
{
	out->addr[0] = '\0';
	out->len = 0;
	out->local_len = 0;
	out->null = false;
	out->postmaster = false;
	out->quoted = false;
	out->literal = false;
	out->utf8 = false;
}

int smtp_addr_parse_path(const char *s, size_t len, struct smtp_path *out,
			 size_t *used_r)
{
	struct smtp_local l;
	struct smtp_domain d;
	size_t i = 0, used, raw;
	bool bracket = len > 0 && s[0] == '<';
	int r;

	smtp_path_clear(out);
	*used_r = 0;
	l.len = 0;
	l.utf8 = false;
	if (bracket) {
		i = 1;
		if (i < len && s[i] == '>') {
			out->null = true;
			i++;
			goto end;
		}
		if (i < len && s[i] == '@') {
			r = smtp_skip_route(s, len, &i);
			if (r != SMTP_ADDR_OK)
				return r;
		}
	} else if (len == 0 || s[0] == ' ') {
		return SMTP_ADDR_ERR_SYNTAX;
	}
	if (i < len && s[i] == '"')
		r = smtp_parse_quoted(s, len, &i, &l);
	else
		r = smtp_parse_dot_string(s, len, &i, &l);
	if (r != SMTP_ADDR_OK)
		return r;
	r = smtp_put_local(out, &l);
	if (r != SMTP_ADDR_OK)
		return r;
	out->utf8 = l.utf8;
	if (i < len && s[i] == '@') {
		i++;
		r = smtp_parse_domain(s + i, len - i, &used, &d);
		if (r != SMTP_ADDR_OK)
			return r;
		i += used;
		if ((size_t)out->len + 1 + d.len > SMTP_ADDR_MAX)
			return SMTP_ADDR_ERR_TOO_LONG;
		out->addr[out->len++] = '@';
		memcpy(out->addr + out->len, d.s, d.len + 1);
		out->len = (uint16_t)(out->len + d.len);
		out->literal = d.literal;
		out->utf8 = out->utf8 || d.utf8;
	} else if (!out->quoted && l.len == 10 &&
		   strncasecmp(l.s, "postmaster", 10) == 0) {
		out->postmaster = true; /* RFC 5321 4.1.1.3 */
	} else {
		return SMTP_ADDR_ERR_DOMAIN;
	}
	if (bracket) {
		if (i >= len || s[i] != '>')
			return SMTP_ADDR_ERR_PATH;
		i++;
	}
end:
	if (i < len && s[i] != ' ')
		return SMTP_ADDR_ERR_PATH;
	raw = bracket ? i : i + 2;
	if (raw > SMTP_PATH_MAX)
		return SMTP_ADDR_ERR_TOO_LONG;
	*used_r = i;
	return SMTP_ADDR_OK;
}

/* One "keyword[=value]" at @s[*i_r] (after spaces). Returns 1 with the
 * parts, 0 at the end of @s, or SMTP_ADDR_ERR_PARAM (*tok set). */
struct smtp_param {
	const char *tok, *kw, *val;
	size_t tok_len, kw_len, val_len;
	bool has_val;
};

static int smtp_next_param(const char *s, size_t len, size_t *i_r,
			   struct smtp_param *p)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = *i_r, k;

	while (i < len && s[i] == ' ')
		i++;
	if (i >= len) {
		*i_r = i;
		return 0;
	}
	p->tok = s + i;
	for (k = i; k < len && s[k] != ' '; k++)
		;
	p->tok_len = k - i;
	*i_r = k;
	p->kw = s + i;
	if (!smtp_is_alpha(u[i]) && !smtp_is_digit(u[i]))
		return -SMTP_ADDR_ERR_PARAM;
	while (i < k &&
	       (smtp_is_alpha(u[i]) || smtp_is_digit(u[i]) || u[i] == '-'))
		i++;
	p->kw_len = (size_t)(s + i - p->kw);
	p->has_val = false;
	p->val = s + i;
	p->val_len = 0;
	if (i == k)
		return 1;
	if (s[i] != '=')
		return -SMTP_ADDR_ERR_PARAM;
	i++;
	p->has_val = true;
	p->val = s + i;
	p->val_len = k - i;
	if (p->val_len == 0)
		return -SMTP_ADDR_ERR_PARAM;
	for (; i < k; i++) {
		if (u[i] < 33 || u[i] > 126 || u[i] == '=')
			return -SMTP_ADDR_ERR_PARAM;
	}
	return 1;
}

static bool smtp_kw_is(const struct smtp_param *p, const char *name)
{
	size_t n = strlen(name);

	return p->kw_len == n && strncasecmp(p->kw, name, n) == 0;
}

static bool smtp_val_is(const struct smtp_param *p, const char *v)
{
	size_t n = strlen(v);

	return p->val_len == n && strncasecmp(p->val, v, n) == 0;
}

/* SIZE value: 1..20 digits that fit in uint64_t. */
static bool smtp_parse_size(const struct smtp_param *p, uint64_t *v_r)
{
	uint64_t v = 0;

	if (!p->has_val || p->val_len > 20)
		return false;
	for (size_t i = 0; i < p->val_len; i++) {
		unsigned d = (unsigned char)p->val[i] - '0';

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*v_r = v;
	return true;
}

/* Parameters seen, for duplicates. */
enum {
	SMTP_P_SIZE = 1 << 0,
	SMTP_P_BODY = 1 << 1,
	SMTP_P_AUTH = 1 << 2,
	SMTP_P_UTF8 = 1 << 3,
	SMTP_P_RET = 1 << 4,
	SMTP_P_ENVID = 1 << 5,
	SMTP_P_NOTIFY = 1 << 6,
	SMTP_P_ORCPT = 1 << 7,
};

static int smtp_mail_param(const struct smtp_param *p, unsigned flags,
			   unsigned *seen, struct smtp_mail_args *out)
{
	unsigned bit;

	if (smtp_kw_is(p, "SIZE"))
		bit = SMTP_P_SIZE;
	else if (smtp_kw_is(p, "BODY"))
		bit = SMTP_P_BODY;
	else if (smtp_kw_is(p, "AUTH"))
		bit = SMTP_P_AUTH;
	else if (smtp_kw_is(p, "SMTPUTF8") && (flags & SMTP_ADDR_F_SMTPUTF8))
		bit = SMTP_P_UTF8;
	else if (smtp_kw_is(p, "RET"))
		bit = SMTP_P_RET;
	else if (smtp_kw_is(p, "ENVID"))
		bit = SMTP_P_ENVID;
	else
		return SMTP_ADDR_ERR_PARAM_UNKNOWN;
	if (*seen & bit)
		return SMTP_ADDR_ERR_PARAM_DUP;
	*seen |= bit;
	switch (bit) {
	case SMTP_P_SIZE:
		if (!smtp_parse_size(p, &out->size))
			return SMTP_ADDR_ERR_SIZE;
		out->has_size = true;
		return SMTP_ADDR_OK;
	case SMTP_P_BODY:
		if (smtp_val_is(p, "7BIT"))
			out->body = SMTP_BODY_7BIT;
		else if (smtp_val_is(p, "8BITMIME"))
			out->body = SMTP_BODY_8BITMIME;
		else /* BINARYMIME needs CHUNKING, not offered */
			return SMTP_ADDR_ERR_PARAM_UNKNOWN;
		return SMTP_ADDR_OK;
	case SMTP_P_AUTH:
		if (!p->has_val)
			return SMTP_ADDR_ERR_PARAM;
		out->auth = true;
		return SMTP_ADDR_OK;
	case SMTP_P_UTF8:
		if (p->has_val)
			return SMTP_ADDR_ERR_PARAM;
		out->smtputf8 = true;
		return SMTP_ADDR_OK;
	case SMTP_P_RET:
		if (!smtp_val_is(p, "FULL") && !smtp_val_is(p, "HDRS"))
			return SMTP_ADDR_ERR_PARAM;
		out->dsn = true;
		return SMTP_ADDR_OK;
	default: /* ENVID */
		if (!p->has_val)
			return SMTP_ADDR_ERR_PARAM;
		out->dsn = true;
		return SMTP_ADDR_OK;
	}
}

static int smtp_rcpt_param(const struct smtp_param *p, unsigned *seen,
			   struct smtp_rcpt_args *out)
{
	unsigned bit;

	if (smtp_kw_is(p, "NOTIFY"))
		bit = SMTP_P_NOTIFY;
	else if (smtp_kw_is(p, "ORCPT"))
		bit = SMTP_P_ORCPT;
	else
		return SMTP_ADDR_ERR_PARAM_UNKNOWN;
	if (*seen & bit)
		return SMTP_ADDR_ERR_PARAM_DUP;
	*seen |= bit;
	if (!p->has_val ||
	    (bit == SMTP_P_ORCPT && memchr(p->val, ';', p->val_len) == NULL))
		return SMTP_ADDR_ERR_PARAM;
	out->dsn = true;
	return SMTP_ADDR_OK;
}

/* "FROM:" or "TO:" then spaces; the path starts at *i_r. */
static int smtp_args_start(const char *arg, size_t len, const char *kw,
			   size_t *i_r)
{
	size_t n = strlen(kw), i;

	if (len < n || strncasecmp(arg, kw, n) != 0)
		return SMTP_ADDR_ERR_SYNTAX;
	for (i = n; i < len && arg[i] == ' '; i++)
		;
	if (i == len)
		return SMTP_ADDR_ERR_SYNTAX;
	*i_r = i;
	return SMTP_ADDR_OK;
}

int smtp_addr_parse_mail(const char *arg, size_t len, unsigned flags,
			 struct smtp_mail_args *out)
{
	struct smtp_param p;
	unsigned seen = 0;
	size_t i, used;
	int r;

	out->size = 0;
	out->has_size = false;
	out->body = SMTP_BODY_NONE;
	out->smtputf8 = out->auth = out->dsn = false;
	out->param = NULL;
	out->param_len = 0;
	smtp_path_clear(&out->from);
	r = smtp_args_start(arg, len, "FROM:", &i);
	if (r != SMTP_ADDR_OK)
		return r;
	r = smtp_addr_parse_path(arg + i, len - i, &out->from, &used);
	if (r != SMTP_ADDR_OK)
		return r;
	if (out->from.postmaster)
		return SMTP_ADDR_ERR_DOMAIN; /* only a recipient may lack it */
	i += used;
	while ((r = smtp_next_param(arg, len, &i, &p)) == 1) {
		r = smtp_mail_param(&p, flags, &seen, out);
		if (r != SMTP_ADDR_OK)
			goto bad_param;
	}
	if (r < 0) {
		r = -r;
		goto bad_param;
	}
	if (out->from.utf8 && !out->smtputf8)
		return SMTP_ADDR_ERR_UTF8;
	return SMTP_ADDR_OK;
bad_param:
	out->param = p.tok;
	out->param_len = (uint16_t)p.tok_len;
	return r;
}

int smtp_addr_parse_rcpt(const char *arg, size_t len, unsigned flags,
			 struct smtp_rcpt_args *out)
{
	struct smtp_param p;
	unsigned seen = 0;
	size_t i, used;
	int r;

	out->dsn = false;
	out->param = NULL;
	out->param_len = 0;
	smtp_path_clear(&out->to);
	r = smtp_args_start(arg, len, "TO:", &i);
	if (r != SMTP_ADDR_OK)
		return r;
	r = smtp_addr_parse_path(arg + i, len - i, &out->to, &used);
	if (r != SMTP_ADDR_OK)
		return r;
	if (out->to.null)
		return SMTP_ADDR_ERR_NULL;
	i += used;
	while ((r = smtp_next_param(arg, len, &i, &p)) == 1) {
		r = smtp_rcpt_param(&p, &seen, out);
		if (r != SMTP_ADDR_OK)
			goto bad_param;
	}
	if (r < 0) {
		r = -r;
		goto bad_param;
	}
	if (out->to.utf8 && !(flags & SMTP_ADDR_F_UTF8))
		return SMTP_ADDR_ERR_UTF8;
	return SMTP_ADDR_OK;
bad_param:
	out->param = p.tok;
	out->param_len = (uint16_t)p.tok_len;
	return r;
}

enum smtp_helo_kind smtp_addr_check_helo(const char *s, size_t len)
{
	struct smtp_domain d;
	size_t used, last;

	if (len == 0)
		return SMTP_HELO_INVALID;
	if (s[0] == '[') {
		if (smtp_parse_literal(s, len, &used, &d) != SMTP_ADDR_OK ||
		    used != len)
			return SMTP_HELO_INVALID;
		return SMTP_HELO_LITERAL;
	}
	if (smtp_is_ipv4(s, len))
		return SMTP_HELO_BARE_IP;
	d.utf8 = false;
	if (smtp_parse_name(s, len, &used, &d) != SMTP_ADDR_OK || used != len ||
	    d.utf8)
		return SMTP_HELO_INVALID;
	/* All-numeric last label: a mangled address, not a name. */
	last = d.len;
	while (last > 0 && d.s[last - 1] != '.')
		last--;
	if (strspn(d.s + last, "0123456789") == d.len - last)
		return SMTP_HELO_INVALID;
	return last == 0 ? SMTP_HELO_NON_FQDN : SMTP_HELO_FQDN;
}

static const struct smtp_reply_def smtp_addr_replies_mail[] = {
	[SMTP_ADDR_ERR_SYNTAX] = {SMTP_R_SYNTAX_MAIL},
	[SMTP_ADDR_ERR_PATH] = {SMTP_R_BAD_SENDER},
	[SMTP_ADDR_ERR_LOCAL] = {SMTP_R_BAD_SENDER},
	[SMTP_ADDR_ERR_DOMAIN] = {SMTP_R_BAD_SENDER},
	[SMTP_ADDR_ERR_TOO_LONG] = {SMTP_R_BAD_SENDER},
	[SMTP_ADDR_ERR_NULL] = {SMTP_R_BAD_SENDER},
	[SMTP_ADDR_ERR_UTF8] = {SMTP_R_NEED_SMTPUTF8},
	[SMTP_ADDR_ERR_PARAM] = {SMTP_R_BAD_PARAM},
	[SMTP_ADDR_ERR_PARAM_UNKNOWN] = {SMTP_R_UNSUPPORTED_OPT},
	[SMTP_ADDR_ERR_PARAM_DUP] = {SMTP_R_DUP_PARAM},
	[SMTP_ADDR_ERR_SIZE] = {SMTP_R_BAD_SIZE},
};

static const struct smtp_reply_def smtp_addr_replies_rcpt[] = {
	[SMTP_ADDR_ERR_SYNTAX] = {SMTP_R_SYNTAX_RCPT},
	[SMTP_ADDR_ERR_PATH] = {SMTP_R_BAD_RCPT},
	[SMTP_ADDR_ERR_LOCAL] = {SMTP_R_BAD_RCPT},
	[SMTP_ADDR_ERR_DOMAIN] = {SMTP_R_BAD_RCPT},
	[SMTP_ADDR_ERR_TOO_LONG] = {SMTP_R_BAD_RCPT},
	[SMTP_ADDR_ERR_NULL] = {SMTP_R_BAD_RCPT},
	[SMTP_ADDR_ERR_UTF8] = {SMTP_R_NEED_SMTPUTF8},
	[SMTP_ADDR_ERR_PARAM] = {SMTP_R_BAD_PARAM},
	[SMTP_ADDR_ERR_PARAM_UNKNOWN] = {SMTP_R_UNSUPPORTED_OPT},
	[SMTP_ADDR_ERR_PARAM_DUP] = {SMTP_R_DUP_PARAM},
	[SMTP_ADDR_ERR_SIZE] = {SMTP_R_BAD_SIZE},
};

const struct smtp_reply_def *smtp_addr_error_reply(enum smtp_addr_error e,
						   bool rcpt)
{
	if (e <= SMTP_ADDR_OK || e > SMTP_ADDR_ERR_SIZE)
		return NULL;
	return rcpt ? &smtp_addr_replies_rcpt[e] : &smtp_addr_replies_mail[e];
}
