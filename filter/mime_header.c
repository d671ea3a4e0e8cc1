/* filter/mime_header: Content-Type parameters and the From address, the
 * mailparse way (see the header for the quirks kept on purpose). */
#include "filter/mime_header.h"

/* system */
#include <string.h>

bool mime_is_ws(uint8_t c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

static uint8_t mime_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + ('a' - 'A')) : c;
}

/* Trim ASCII whitespace off both ends of [*p, *p + *n). */
static void mime_trim(const char **p, size_t *n)
{
	while (*n > 0 && mime_is_ws((uint8_t)(*p)[0])) {
		(*p)++;
		(*n)--;
	}
	while (*n > 0 && mime_is_ws((uint8_t)(*p)[*n - 1]))
		(*n)--;
}

static bool mime_name_is(const char *p, size_t n, const char *name)
{
	size_t i;

	if (n != strlen(name))
		return false;
	for (i = 0; i < n; i++) {
		if (mime_lower((uint8_t)p[i]) != (uint8_t)name[i])
			return false;
	}
	return true;
}

void mime_ctype_parse(const char *v, size_t len, struct mime_ctype *out)
{
	const char *seg = v, *end = v + len, *semi, *eq, *name, *val;
	size_t n, name_len, val_len, i;

	memset(out, 0, sizeof(*out));
	semi = memchr(seg, ';', len);
	name = seg;
	name_len = (size_t)((semi != NULL ? semi : end) - seg);
	mime_trim(&name, &name_len);
	n = name_len > MIME_TYPE_MAX ? MIME_TYPE_MAX : name_len;
	out->type_trunc = name_len > MIME_TYPE_MAX;
	for (i = 0; i < n; i++)
		out->type[i] = (char)mime_lower((uint8_t)name[i]);
	out->type[n] = '\0';
	while (semi != NULL) {
		seg = semi + 1;
		semi = memchr(seg, ';', (size_t)(end - seg));
		n = (size_t)((semi != NULL ? semi : end) - seg);
		eq = memchr(seg, '=', n);
		if (eq == NULL)
			continue;
		name = seg;
		name_len = (size_t)(eq - seg);
		mime_trim(&name, &name_len);
		val = eq + 1;
		val_len = (size_t)(seg + n - val);
		mime_trim(&val, &val_len);
		if (val_len > 1 && val[0] == '"' && val[val_len - 1] == '"') {
			val++;
			val_len -= 2;
		}
		if (mime_name_is(name, name_len, "boundary")) {
			out->has_boundary = true;
			out->boundary = val;
			out->boundary_len = val_len;
		} else if (mime_name_is(name, name_len, "report-type")) {
			out->has_report_type = true;
			out->report_type = val;
			out->report_type_len = val_len;
		}
	}
}

/* mailparse addrparse_inner's states (NameWithEncodedWord cannot happen
 * on plain text, which is what extract_address hands it). */
enum {
	MIME_AP_INITIAL = 0,
	MIME_AP_QUOTED_NAME,
	MIME_AP_ESCAPED,
	MIME_AP_AFTER_QUOTED,
	MIME_AP_BRACKETED,
	MIME_AP_AFTER_BRACKETED,
	MIME_AP_UNQUOTED,
	MIME_AP_COMMENT,
};

struct mime_addr_parser {
	int state, comment_ret;
	bool in_group;
	bool group_first;     /* the open group is the first result */
	size_t group_members; /* members of the open group so far */
	size_t group_chars;   /* characters read since its ":" */
	size_t results;       /* results at the top level */
	bool cur_at;          /* the address being read has an "@" */
	bool cur_wanted;      /* ... and would be the answer */
	bool cur_overflow;    /* ... and cannot be out (too long, NUL) */
	bool found;           /* the answer is in out */
	bool overflow;        /* the answer did not fit */
	char *out;
	size_t out_size, out_len;
};

/* Does the address starting now decide the answer? */
static bool mime_ap_wanted(const struct mime_addr_parser *a)
{
	if (a->found)
		return false;
	if (a->in_group)
		return a->group_first && a->group_members == 0;
	return a->results == 0;
}

static void mime_ap_begin(struct mime_addr_parser *a)
{
	a->cur_at = false;
	a->cur_wanted = mime_ap_wanted(a);
	a->cur_overflow = false;
	a->out_len = 0;
}

static void mime_ap_add(struct mime_addr_parser *a, uint8_t c)
{
	if (c == '@')
		a->cur_at = true;
	if (c == '\0')
		a->cur_overflow = true; /* no C string can hold it */
	if (!a->cur_wanted)
		return;
	if (a->out_len + 1 >= a->out_size) {
		a->cur_overflow = true;
		return;
	}
	a->out[a->out_len++] = (char)c;
}

/* SingleInfo::new: the address must contain "@". Returns false on error. */
static bool mime_ap_push(struct mime_addr_parser *a, bool trim)
{
	if (!a->cur_at)
		return false;
	if (a->cur_wanted) {
		while (trim && a->out_len > 0 &&
		       mime_is_ws((uint8_t)a->out[a->out_len - 1]))
			a->out_len--;
		a->out[a->out_len] = '\0';
		a->found = true;
		a->overflow = a->cur_overflow;
	}
	if (a->in_group)
		a->group_members++;
	else
		a->results++;
	a->cur_wanted = false;
	return true;
}

static bool mime_ap_group_open(struct mime_addr_parser *a)
{
	if (a->in_group)
		return false; /* "Found unexpected nested group" */
	a->in_group = true;
	a->group_first = a->results == 0;
	a->group_members = 0;
	a->group_chars = 0;
	a->state = MIME_AP_INITIAL;
	return true;
}

static void mime_ap_group_close(struct mime_addr_parser *a)
{
	a->in_group = false;
	a->results++;
	a->state = MIME_AP_INITIAL;
}

/* One character; false on a parse error. */
static bool mime_ap_char(struct mime_addr_parser *a, uint8_t c)
{
	if (a->in_group)
		a->group_chars++;
	switch (a->state) {
	case MIME_AP_INITIAL:
		if (mime_is_ws(c))
			return true;
		if (c == '"') {
			a->state = MIME_AP_QUOTED_NAME;
		} else if (c == '<') {
			a->state = MIME_AP_BRACKETED;
			mime_ap_begin(a);
		} else if (c == ';') {
			if (!a->in_group)
				return false;
			mime_ap_group_close(a);
		} else {
			a->state = MIME_AP_UNQUOTED;
			mime_ap_begin(a);
			mime_ap_add(a, c);
		}
		return true;
	case MIME_AP_QUOTED_NAME:
		if (c == '\\')
			a->state = MIME_AP_ESCAPED;
		else if (c == '"')
			a->state = MIME_AP_AFTER_QUOTED;
		return true;
	case MIME_AP_ESCAPED:
		a->state = MIME_AP_QUOTED_NAME;
		return true;
	case MIME_AP_AFTER_QUOTED:
		if (mime_is_ws(c))
			return true;
		if (c == '<') {
			a->state = MIME_AP_BRACKETED;
			mime_ap_begin(a);
		} else if (c == ':') {
			return mime_ap_group_open(a);
		} else if (c == '"') {
			a->state = MIME_AP_QUOTED_NAME; /* more of the name */
		}
		return true; /* any other character joins the name */
	case MIME_AP_BRACKETED:
		if (c == '>') {
			a->state = MIME_AP_AFTER_BRACKETED;
			return mime_ap_push(a, false);
		}
		mime_ap_add(a, c);
		return true;
	case MIME_AP_AFTER_BRACKETED:
		if (mime_is_ws(c))
			return true;
		if (c == ',') {
			a->state = MIME_AP_INITIAL;
		} else if (c == ';') {
			if (a->in_group)
				mime_ap_group_close(a);
			else
				a->state = MIME_AP_INITIAL;
		} else if (c == '(') {
			a->comment_ret = MIME_AP_AFTER_BRACKETED;
			a->state = MIME_AP_COMMENT;
		} else {
			return false;
		}
		return true;
	case MIME_AP_UNQUOTED:
		if (c == '<') {
			/* What was read is a display name. */
			a->state = MIME_AP_BRACKETED;
			mime_ap_begin(a);
		} else if (c == ',') {
			a->state = MIME_AP_INITIAL;
			return mime_ap_push(a, true);
		} else if (c == ';') {
			if (!mime_ap_push(a, true))
				return false;
			if (a->in_group)
				mime_ap_group_close(a);
			else
				a->state = MIME_AP_INITIAL;
		} else if (c == ':') {
			a->cur_wanted = false; /* it was a group name */
			return mime_ap_group_open(a);
		} else if (c == '(') {
			a->comment_ret = MIME_AP_UNQUOTED;
			a->state = MIME_AP_COMMENT;
		} else {
			mime_ap_add(a, c);
		}
		return true;
	case MIME_AP_COMMENT:
		if (c == ')')
			a->state = a->comment_ret;
		return true;
	}
	return false;
}

/* End of input: the checks after addrparse_inner's loop. */
static bool mime_ap_end(struct mime_addr_parser *a)
{
	if (a->in_group) {
		/* A group whose ":" is the last character gets an empty
		 * list (mailparse returns before its loop). */
		if (a->group_chars != 0)
			return false;
		mime_ap_group_close(a);
		return true;
	}
	switch (a->state) {
	case MIME_AP_INITIAL:
	case MIME_AP_AFTER_BRACKETED:
		return true;
	case MIME_AP_UNQUOTED:
		return mime_ap_push(a, true);
	default:
		return false;
	}
}

/* Leading repeats of @prefix (lower case) in the lower-cased text. */
static void mime_skip_prefixes(const char **p, size_t *n, const char *prefix)
{
	size_t plen = strlen(prefix), i;

	for (;;) {
		if (*n < plen)
			return;
		for (i = 0; i < plen; i++) {
			if (mime_lower((uint8_t)(*p)[i]) != (uint8_t)prefix[i])
				return;
		}
		*p += plen;
		*n -= plen;
	}
}

int mime_addr_extract(const char *v, size_t len, char *out, size_t out_size)
{
	struct mime_addr_parser a;
	const char *gt;
	size_t i;

	if (out_size == 0)
		return -1;
	out[0] = '\0';
	mime_trim(&v, &len);
	mime_skip_prefixes(&v, &len, "mail from:");
	mime_skip_prefixes(&v, &len, "rcpt to:");
	gt = memchr(v, '>', len);
	if (gt != NULL)
		len = (size_t)(gt - v) + 1;
	memset(&a, 0, sizeof(a));
	a.state = MIME_AP_INITIAL;
	a.out = out;
	a.out_size = out_size;
	for (i = 0; i < len; i++) {
		if (!mime_ap_char(&a, mime_lower((uint8_t)v[i])))
			return -1;
	}
	if (!mime_ap_end(&a) || !a.found || a.overflow) {
		out[0] = '\0';
		return -1;
	}
	return (int)strlen(out);
}
