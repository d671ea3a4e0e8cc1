/* www/www_new: /new credentials, their JSON and dclogin: URL. */
#include "www/www_new.h"

/* system */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

static const char www_new_alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
/* Python's ascii_letters + digits + punctuation. */
static const char www_new_pwchars[] =
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/* @n characters drawn uniformly from @set (rejection sampling). */
static int www_new_draw(char *out, size_t n, const char *set)
{
	size_t k = strlen(set), got = 0;
	unsigned limit = 256u - 256u % (unsigned)k;
	unsigned char pool[256];

	while (got < n) {
		ssize_t r = getrandom(pool, sizeof(pool), 0);

		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			return -EIO;
		}
		for (ssize_t i = 0; i < r && got < n; i++) {
			if (pool[i] < limit)
				out[got++] = set[pool[i] % k];
		}
	}
	out[n] = '\0';
	return 0;
}

int www_new_creds(const struct www_new_cfg *c, struct www_new_creds *cr)
{
	size_t dl = strlen(c->mail_domain);
	int r;

	if (c->username_len < 1 || c->password_len < 1 ||
	    c->password_len >= sizeof(cr->password) ||
	    c->username_len + 1 + dl >= sizeof(cr->email))
		return -EINVAL;
	r = www_new_draw(cr->email, c->username_len, www_new_alnum);
	if (r < 0)
		return r;
	cr->email[c->username_len] = '@';
	memcpy(cr->email + c->username_len + 1, c->mail_domain, dl + 1);
	return www_new_draw(cr->password, c->password_len, www_new_pwchars);
}

/* urllib.parse.quote: unreserved characters and @safe stay, the rest is
 * %XX (upper-case hex). */
static int www_new_quote(struct buf *out, const char *s, const char *safe)
{
	int r = 0;

	for (; r == 0 && *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || strchr("_.-~", ch) != NULL ||
		    (ch != 0 && strchr(safe, ch) != NULL))
			r = buf_append(out, s, 1);
		else
			r = buf_printf(out, "%%%02X", ch);
	}
	return r;
}

int www_new_dclogin(const struct www_new_cfg *c, const struct www_new_creds *cr,
		    struct buf *out)
{
	int r = buf_printf(out, "dclogin:");

	r = r < 0 ? r : www_new_quote(out, cr->email, "@[]");
	r = r < 0 ? r : buf_printf(out, "?p=");
	r = r < 0 ? r : www_new_quote(out, cr->password, "");
	r = r < 0 ? r : buf_printf(out, "&v=1");
	if (r == 0 && c->is_ip_relay)
		r = buf_printf(out, "&ih=%s&sh=%s", c->mail_domain_bare,
			       c->mail_domain_bare);
	return r < 0 ? r : buf_printf(out, "&ic=3");
}

/* A JSON string as json.dumps writes ASCII: \" \\ and control escapes. */
static int www_new_jstr(struct buf *out, const char *s, size_t n)
{
	int r = buf_append(out, "\"", 1);

	for (size_t i = 0; r == 0 && i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\')
			r = buf_printf(out, "\\%c", ch);
		else if (ch < 0x20)
			r = buf_printf(out, "\\u%04x", ch);
		else
			r = buf_append(out, &s[i], 1);
	}
	return r < 0 ? r : buf_append(out, "\"", 1);
}

int www_new_json(const struct www_new_cfg *c, const struct www_new_creds *cr,
		 struct buf *out)
{
	int r = buf_printf(out, "{\"email\": ");

	r = r < 0 ? r : www_new_jstr(out, cr->email, strlen(cr->email));
	r = r < 0 ? r : buf_printf(out, ", \"password\": ");
	r = r < 0 ? r : www_new_jstr(out, cr->password, strlen(cr->password));
	if (r == 0 && c->self_signed) {
		struct buf url;

		buf_init(&url, 4096);
		r = www_new_dclogin(c, cr, &url);
		r = r < 0 ? r : buf_printf(out, ", \"dclogin_url\": ");
		r = r < 0 ? r
			  : www_new_jstr(out, (const char *)buf_head(&url),
					 url.len);
		buf_free(&url);
	}
	return r < 0 ? r : buf_append(out, "}", 1);
}
