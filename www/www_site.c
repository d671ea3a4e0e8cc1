/* www/www_site: the site's pages, assets and routes. */
#include "www/www_site.h"

/* system */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* third party */
#include <cmark.h>
#include <zlib.h>

/* project */
#include "core/log.h"
#include "core/ratelimit.h"
#include "www/www_new.h"
#include "www/www_qr.h"
#include "www_src.h" /* generated from www/src/ */

#define WWW_ACME_MAX   8192
#define WWW_NEW_BODY   4096
#define WWW_INVITE_TAG "<p>{{invite}}</p>"

enum www_kind {
	WWW_STATIC, /* GET/HEAD of a rendered asset */
	WWW_HOME,   /* the home page (dynamic invite in self mode) */
	WWW_NEW,    /* /new, /cgi-bin/newemail.py */
};

struct www_asset {
	const char *path;
	const char *type;
	uint8_t *raw;
	size_t raw_len;
	uint8_t *gz; /* NULL when gzip does not help */
	size_t gz_len;
	enum www_kind kind;
};

#define WWW_ASSETS_MAX 16

struct www_site {
	struct www_site_opts o;
	struct http_handler handler;
	struct www_new_cfg newcfg;
	struct ratelimit *limit;
	struct www_asset assets[WWW_ASSETS_MAX];
	unsigned n_assets;
	/* Self mode: the home page around its per-request invite. */
	char *home_head, *home_tail;
	size_t home_head_len, home_tail_len;
	char www_host[300];
	char qr_path[300];
	char invite_url[300];
};

/* ---- templates ---- */

struct www_var {
	const char *name;
	char value[512];
};

/* Append @s to @out with every ASCII punctuation character backslash-
 * escaped, so a value is always literal text in CommonMark. */
static int www_md_literal(struct buf *out, const char *s)
{
	int r = 0;

	for (; r == 0 && *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20)
			ch = ' ';
		if ((ch >= 0x21 && ch <= 0x2f) || (ch >= 0x3a && ch <= 0x40) ||
		    (ch >= 0x5b && ch <= 0x60) || (ch >= 0x7b && ch <= 0x7e))
			r = buf_append(out, "\\", 1);
		if (r == 0)
			r = buf_append(out, &ch, 1);
	}
	return r;
}

static int www_html_escape(struct buf *out, const char *s)
{
	int r = 0;

	for (; r == 0 && *s != '\0'; s++) {
		switch (*s) {
		case '<':
			r = buf_printf(out, "&lt;");
			break;
		case '>':
			r = buf_printf(out, "&gt;");
			break;
		case '&':
			r = buf_printf(out, "&amp;");
			break;
		case '"':
			r = buf_printf(out, "&quot;");
			break;
		default:
			r = buf_append(out, s, 1);
			break;
		}
	}
	return r;
}

/* Replace {{name}} in @src by the variable's value, escaped by @esc;
 * names not in @vars (like {{invite}}) are kept as they are. */
static int www_fill(const char *src, const struct www_var *vars, unsigned n,
		    int (*esc)(struct buf *, const char *), struct buf *out)
{
	const char *p = src;
	int r = 0;

	while (r == 0 && *p != '\0') {
		const char *open = strstr(p, "{{"), *close;
		unsigned i;

		if (open == NULL)
			return buf_append(out, p, strlen(p));
		close = strstr(open + 2, "}}");
		if (close == NULL)
			return buf_append(out, p, strlen(p));
		r = buf_append(out, p, (size_t)(open - p));
		for (i = 0; r == 0 && i < n; i++) {
			if (strlen(vars[i].name) ==
				    (size_t)(close - open - 2) &&
			    memcmp(vars[i].name, open + 2,
				   (size_t)(close - open - 2)) == 0)
				break;
		}
		if (r == 0 && i < n)
			r = esc(out, vars[i].value);
		else if (r == 0)
			r = buf_append(out, open, (size_t)(close + 2 - open));
		p = close + 2;
	}
	return r;
}

static void www_vars(const struct www_site_opts *o, struct www_var *v,
		     unsigned *n_r)
{
	unsigned n = 0;

#define WWW_VAR_S(nm, val)                                                 \
	do {                                                               \
		v[n].name = nm;                                            \
		snprintf(v[n].value, sizeof(v[n].value), "%s",             \
			 (val) != NULL && (val)[0] != '\0' ? (val)         \
							   : "(not set)"); \
		n++;                                                       \
	} while (0)
#define WWW_VAR_I(nm, val)                                       \
	do {                                                     \
		v[n].name = nm;                                  \
		snprintf(v[n].value, sizeof(v[n].value), "%lld", \
			 (long long)(val));                      \
		n++;                                             \
	} while (0)
	WWW_VAR_S("mail_domain", o->mail_domain);
	WWW_VAR_I("max_user_send_per_minute", o->max_user_send_per_minute);
	v[n].name = "max_mailbox_size";
	snprintf(v[n].value, sizeof(v[n].value), "%lld MB",
		 (long long)o->max_mailbox_size_mb);
	n++;
	WWW_VAR_I("delete_mails_after", o->delete_mails_after);
	WWW_VAR_I("delete_inactive_users_after",
		  o->delete_inactive_users_after);
	WWW_VAR_I("username_min_length", o->username_min_length);
	WWW_VAR_I("username_max_length", o->username_max_length);
	WWW_VAR_I("password_min_length", o->password_min_length);
	WWW_VAR_S("privacy_postal", o->privacy_postal);
	WWW_VAR_S("privacy_mail", o->privacy_mail);
	WWW_VAR_S("privacy_pdo", o->privacy_pdo);
	WWW_VAR_S("privacy_supervisor", o->privacy_supervisor);
#undef WWW_VAR_S
#undef WWW_VAR_I
	*n_r = n;
}

/* ---- assets ---- */

/* gzip of @p into malloc'd *@gz_r; NULL when it does not help. */
static void www_gzip(const uint8_t *p, size_t n, uint8_t **gz_r, size_t *len_r)
{
	z_stream z;
	uint8_t *out;
	size_t cap = compressBound((uLong)n) + 64;

	*gz_r = NULL;
	*len_r = 0;
	if (n < 256)
		return;
	out = malloc(cap);
	if (out == NULL)
		return;
	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK) {
		free(out);
		return;
	}
	z.next_in = (Bytef *)p;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END || z.total_out >= n) {
		deflateEnd(&z);
		free(out);
		return;
	}
	*len_r = z.total_out;
	*gz_r = out;
	deflateEnd(&z);
}

/* Add an asset (takes @raw, malloc'd); -ENOSPC when full. */
static int www_add(struct www_site *s, const char *path, const char *type,
		   uint8_t *raw, size_t len, enum www_kind kind, bool gzip)
{
	struct www_asset *a;

	if (s->n_assets >= WWW_ASSETS_MAX) {
		free(raw);
		return -ENOSPC;
	}
	a = &s->assets[s->n_assets++];
	a->path = path;
	a->type = type;
	a->raw = raw;
	a->raw_len = len;
	a->kind = kind;
	if (gzip)
		www_gzip(raw, len, &a->gz, &a->gz_len);
	return 0;
}

static uint8_t *www_take(struct buf *b, size_t *len_r)
{
	uint8_t *p = malloc(b->len + 1);

	if (p != NULL) {
		memcpy(p, buf_head(b), b->len);
		p[b->len] = '\0';
		*len_r = b->len;
	}
	buf_free(b);
	return p;
}

/* One page: markdown filled, rendered, put in the layout. */
static int www_page(struct www_site *s, const char *md, const char *title,
		    const struct www_var *vars, unsigned nvars,
		    struct buf *html_r)
{
	struct buf src;
	struct www_var lv[3];
	char *body;
	int r;

	buf_init(&src, 1u << 20);
	r = www_fill(md, vars, nvars, www_md_literal, &src);
	if (r == 0)
		r = buf_append(&src, "", 1);
	if (r < 0) {
		buf_free(&src);
		return r;
	}
	body = cmark_markdown_to_html((const char *)buf_head(&src), src.len - 1,
				      CMARK_OPT_DEFAULT);
	buf_free(&src);
	if (body == NULL)
		return -ENOMEM;
	lv[0].name = "title";
	snprintf(lv[0].value, sizeof(lv[0].value), "%s %s", s->o.mail_domain,
		 title);
	lv[1].name = "mail_domain";
	snprintf(lv[1].value, sizeof(lv[1].value), "%s", s->o.mail_domain);
	buf_init(html_r, 1u << 20);
	/* The layout's {{body}} is the rendered page (already HTML). */
	{
		const char *at = strstr(www_src_layout_html, "{{body}}");
		struct buf head;

		if (at == NULL) {
			free(body);
			return -EINVAL;
		}
		buf_init(&head, 1u << 16);
		r = buf_append(&head, www_src_layout_html,
			       (size_t)(at - www_src_layout_html));
		r = r < 0 ? r : buf_append(&head, "", 1);
		r = r < 0 ? r
			  : www_fill((const char *)buf_head(&head), lv, 2,
				     www_html_escape, html_r);
		r = r < 0 ? r : buf_append(html_r, body, strlen(body));
		r = r < 0 ? r
			  : www_fill(at + strlen("{{body}}"), lv, 2,
				     www_html_escape, html_r);
		buf_free(&head);
	}
	free(body);
	return r;
}

/* The invite block of the home page (non-self mode: constant). */
static int www_invite_static(struct www_site *s, struct buf *out)
{
	return buf_printf(
		out,
		"<div class=\"invite\"><a href=\"%s\"><img src=\"%s\" "
		"alt=\"QR code: %s\" width=\"320\" height=\"320\">"
		"</a><a class=\"cta\" href=\"%s\">Get a %s "
		"profile</a></div>",
		s->invite_url, s->qr_path, s->invite_url, s->invite_url,
		s->o.mail_domain);
}

/* Self mode: fresh credentials as a dclogin: link and QR, per request. */
static int www_invite_self(struct www_site *s, struct buf *out)
{
	struct www_new_creds cr;
	struct buf url;
	int r;

	buf_init(&url, 4096);
	r = www_new_creds(&s->newcfg, &cr);
	r = r < 0 ? r : www_new_dclogin(&s->newcfg, &cr, &url);
	r = r < 0 ? r : buf_append(&url, "", 1);
	r = r < 0 ? r : buf_printf(out, "<div class=\"invite\"><a href=\"");
	r = r < 0 ? r : www_html_escape(out, (const char *)buf_head(&url));
	r = r < 0 ? r : buf_printf(out, "\">");
	r = r < 0 ? r : www_qr_svg((const char *)buf_head(&url), out);
	r = r < 0 ? r : buf_printf(out, "</a><a class=\"cta\" href=\"");
	r = r < 0 ? r : www_html_escape(out, (const char *)buf_head(&url));
	r = r < 0 ? r
		  : buf_printf(out, "\">Get a %s profile</a></div>",
			       s->o.mail_domain);
	explicit_bzero(&cr, sizeof(cr));
	if (url.data != NULL)
		explicit_bzero(url.data, url.cap);
	buf_free(&url);
	return r;
}

static int www_home(struct www_site *s, const struct www_var *v, unsigned n)
{
	struct buf html, full;
	const char *at;
	size_t len;
	int r = www_page(s, www_src_index_md, "chatmail relay", v, n, &html);

	if (r == 0)
		r = buf_append(&html, "", 1);
	if (r < 0) {
		buf_free(&html);
		return r;
	}
	at = strstr((const char *)buf_head(&html), WWW_INVITE_TAG);
	if (at == NULL) {
		log_err("www: index.md has no {{invite}} paragraph");
		buf_free(&html);
		return -EINVAL;
	}
	if (s->o.self_signed) {
		size_t off = (size_t)(at - (const char *)buf_head(&html));

		s->home_head = strndup((const char *)buf_head(&html), off);
		s->home_tail = strdup(at + strlen(WWW_INVITE_TAG));
		buf_free(&html);
		if (s->home_head == NULL || s->home_tail == NULL)
			return -ENOMEM;
		s->home_head_len = strlen(s->home_head);
		s->home_tail_len = strlen(s->home_tail);
		return www_add(s, "/", "text/html; charset=utf-8", NULL, 0,
			       WWW_HOME, false);
	}
	buf_init(&full, 1u << 20);
	r = buf_append(&full, buf_head(&html),
		       (size_t)(at - (const char *)buf_head(&html)));
	r = r < 0 ? r : www_invite_static(s, &full);
	r = r < 0 ? r
		  : buf_append(&full, at + strlen(WWW_INVITE_TAG),
			       strlen(at + strlen(WWW_INVITE_TAG)));
	buf_free(&html);
	if (r < 0) {
		buf_free(&full);
		return r;
	}
	{
		uint8_t *p = www_take(&full, &len);

		if (p == NULL)
			return -ENOMEM;
		return www_add(s, "/", "text/html; charset=utf-8", p, len,
			       WWW_STATIC, true);
	}
}

static int www_add_page(struct www_site *s, const char *path, const char *md,
			const char *title, const struct www_var *v, unsigned n)
{
	struct buf html;
	uint8_t *p;
	size_t len;
	int r = www_page(s, md, title, v, n, &html);

	if (r < 0) {
		buf_free(&html);
		return r;
	}
	p = www_take(&html, &len);
	if (p == NULL)
		return -ENOMEM;
	return www_add(s, path, "text/html; charset=utf-8", p, len, WWW_STATIC,
		       true);
}

static int www_add_text(struct www_site *s, const char *path, const char *type,
			struct buf *b)
{
	size_t len;
	uint8_t *p = www_take(b, &len);

	if (p == NULL)
		return -ENOMEM;
	return www_add(s, path, type, p, len, WWW_STATIC, true);
}

/* spec I.3: the autoconfig document. */
static int www_autoconfig(struct www_site *s, struct buf *b)
{
	const char *d = s->o.mail_domain;
	int r = buf_printf(b,
			   "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			   "<clientConfig version=\"1.1\">\n"
			   "  <emailProvider id=\"%s\">\n"
			   "    <domain>%s</domain>\n"
			   "    <displayName>%s chatmail</displayName>\n"
			   "    <displayShortName>%s</displayShortName>\n",
			   d, d, d, d);
	static const struct {
		const char *kind;
		unsigned port;
		const char *sock;
	} srv[] = {
		{"imap", 993, "SSL"},      {"imap", 143, "STARTTLS"},
		{"imap", 443, "SSL"},      {"smtp", 465, "SSL"},
		{"smtp", 587, "STARTTLS"}, {"smtp", 443, "SSL"},
	};

	for (size_t i = 0; r == 0 && i < sizeof(srv) / sizeof(srv[0]); i++)
		r = buf_printf(b,
			       "    <%sServer type=\"%s\">\n"
			       "      <hostname>%s</hostname>\n"
			       "      <port>%u</port>\n"
			       "      <socketType>%s</socketType>\n"
			       "      <authentication>password-cleartext"
			       "</authentication>\n"
			       "      <username>%%EMAILADDRESS%%</username>\n"
			       "    </%sServer>\n",
			       strcmp(srv[i].kind, "imap") == 0 ? "incoming"
								: "outgoing",
			       srv[i].kind, d, srv[i].port, srv[i].sock,
			       strcmp(srv[i].kind, "imap") == 0 ? "incoming"
								: "outgoing");
	return r < 0 ? r
		     : buf_printf(b, "  </emailProvider>\n</clientConfig>\n");
}

static int www_assets(struct www_site *s)
{
	struct www_var v[16];
	unsigned n;
	struct buf b;
	uint8_t *png;
	size_t png_len;
	int r;

	www_vars(&s->o, v, &n);
	r = www_home(s, v, n);
	r = r < 0 ? r
		  : www_add_page(s, "/info.html", www_src_info_md, "info", v,
				 n);
	r = r < 0 ? r
		  : www_add_page(s, "/privacy.html", www_src_privacy_md,
				 "privacy policy", v, n);
	if (r < 0)
		return r;
	buf_init(&b, 1u << 16);
	r = buf_append(&b, www_src_main_css, strlen(www_src_main_css));
	r = r < 0 ? r : www_add_text(s, "/main.css", "text/css", &b);
	buf_init(&b, 1u << 16);
	r = r < 0 ? r : buf_printf(&b, "User-agent: *\nDisallow: /\n");
	r = r < 0 ? r : www_add_text(s, "/robots.txt", "text/plain", &b);
	buf_init(&b, 1u << 16);
	r = r < 0 ? r : www_autoconfig(s, &b);
	r = r < 0 ? r
		  : www_add_text(s,
				 "/.well-known/autoconfig/mail/"
				 "config-v1.1.xml",
				 "text/xml", &b);
	buf_init(&b, 1u << 16);
	r = r < 0 ? r : www_autoconfig(s, &b);
	r = r < 0 ? r
		  : www_add_text(s, "/mail/config-v1.1.xml", "text/xml", &b);
	buf_init(&b, 1u << 16);
	r = r < 0 ? r
		  : buf_printf(&b,
			       "version: STSv1\nmode: enforce\nmx: %s\n"
			       "max_age: 2419200\n",
			       s->o.mail_domain);
	r = r < 0 ? r
		  : www_add_text(s, "/.well-known/mta-sts.txt", "text/plain",
				 &b);
	buf_free(&b);
	if (r < 0)
		return r;
	r = www_qr_png(s->invite_url + 0, 8, &png, &png_len);
	if (r < 0)
		return r;
	r = www_add(s, s->qr_path, "image/png", png, png_len, WWW_STATIC,
		    false);
	r = r < 0 ? r
		  : www_add(s, "/new", "application/json", NULL, 0, WWW_NEW,
			    false);
	r = r < 0 ? r
		  : www_add(s, "/cgi-bin/newemail.py", "application/json", NULL,
			    0, WWW_NEW, false);
	return r;
}

/* ---- routes ---- */

static const struct www_asset *www_find(const struct www_site *s,
					const struct http_req *req)
{
	const char *path = req->target;
	size_t n = req->path_len;

	if (n == 11 && memcmp(path, "/index.html", 11) == 0) {
		path = "/";
		n = 1;
	}
	for (unsigned i = 0; i < s->n_assets; i++) {
		if (strlen(s->assets[i].path) == n &&
		    memcmp(s->assets[i].path, path, n) == 0)
			return &s->assets[i];
	}
	return NULL;
}

static void www_redirect(struct http_resp *resp, const char *scheme,
			 const char *host, const struct http_req *req)
{
	int n = snprintf(resp->scratch, sizeof(resp->scratch), "%s%s%s", scheme,
			 host, req->target);

	if (n < 0 || (size_t)n >= sizeof(resp->scratch)) {
		http_resp_text(resp, 414, "uri too long\n");
		return;
	}
	http_resp_text(resp, 301, "moved permanently\n");
	http_resp_field(resp, "Location", resp->scratch);
}

/* A Host value fit to put in a redirect: [a-z0-9.-], or an IP literal. */
static bool www_host_ok(const char *h)
{
	if (h == NULL || h[0] == '\0' || strlen(h) > 253)
		return false;
	for (; *h != '\0'; h++) {
		if (!((*h >= 'a' && *h <= 'z') || (*h >= '0' && *h <= '9') ||
		      strchr(".-[]:", *h) != NULL))
			return false;
	}
	return true;
}

/* Port 80: ACME http-01 files, everything else to https. */
static void www_plain(struct www_site *s, const struct http_req *req,
		      struct http_resp *resp)
{
	static const char pfx[] = "/.well-known/acme-challenge/";
	const size_t pl = sizeof(pfx) - 1;
	char path[4096];
	const char *tok;
	size_t tl;
	int fd;
	ssize_t got;
	uint8_t *dst;

	if (req->path_len < pl || memcmp(req->target, pfx, pl) != 0) {
		www_redirect(resp, "https://",
			     www_host_ok(req->host) ? req->host
						    : s->o.mail_domain,
			     req);
		return;
	}
	if (req->method != HTTP_M_GET && req->method != HTTP_M_HEAD) {
		http_resp_error(resp, 405);
		http_resp_field(resp, "Allow", "GET, HEAD");
		return;
	}
	tok = req->target + pl;
	tl = req->path_len - pl;
	for (size_t i = 0; i < tl; i++) {
		char ch = tok[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			tl = 0;
	}
	if (tl == 0 || tl > 256 ||
	    snprintf(path, sizeof(path), "%s/%.*s", s->o.acme_webroot, (int)tl,
		     tok) >= (int)sizeof(path)) {
		http_resp_error(resp, 404);
		return;
	}
	/* A token file is tiny and the webroot is acmetool's tmpfs
	 * (/run/acme): read in place. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		http_resp_error(resp, 404);
		return;
	}
	dst = buf_reserve(resp->out, WWW_ACME_MAX);
	got = dst != NULL ? read(fd, dst, WWW_ACME_MAX) : -1;
	close(fd);
	if (got < 0) {
		http_resp_error(resp, 404);
		return;
	}
	buf_commit(resp->out, (size_t)got);
	resp->status = 200;
	resp->content_type = "text/plain";
	resp->log_note = "acme";
}

static void www_new(struct www_site *s, const struct http_req *req,
		    struct http_resp *resp)
{
	struct www_new_creds cr;

	if (!s->o.self_signed &&
	    (req->method == HTTP_M_GET || req->method == HTTP_M_HEAD)) {
		/* Browsers: hand the invite to the installed app. */
		snprintf(resp->scratch, sizeof(resp->scratch),
			 "dcaccount:https://%s/new", s->o.mail_domain);
		http_resp_text(resp, 301, "moved permanently\n");
		http_resp_field(resp, "Location", resp->scratch);
		return;
	}
	if (!ratelimit_take(s->limit, req->peer_ip, strlen(req->peer_ip),
			    req->now_ms, NULL)) {
		/* nginx limit_req's status. */
		http_resp_error(resp, 503);
		resp->log_note = "limited";
		return;
	}
	if (www_new_creds(&s->newcfg, &cr) < 0 ||
	    www_new_json(&s->newcfg, &cr, resp->out) < 0) {
		explicit_bzero(&cr, sizeof(cr));
		buf_clear(resp->out);
		http_resp_error(resp, 500);
		return;
	}
	explicit_bzero(&cr, sizeof(cr));
	resp->status = 200;
	resp->content_type = "application/json";
	resp->log_note = "new";
}

static void www_handle(void *arg, const struct http_req *req,
		       struct http_resp *resp)
{
	struct www_site *s = arg;
	const struct www_asset *a;

	if (!req->tls) {
		www_plain(s, req, resp);
		return;
	}
	if (strcmp(req->host, s->www_host) == 0) {
		www_redirect(resp, "https://", s->o.mail_domain, req);
		return;
	}
	a = www_find(s, req);
	if (a == NULL) {
		http_resp_error(resp, 404);
		return;
	}
	if (a->kind == WWW_NEW) {
		www_new(s, req, resp);
		return;
	}
	if (req->method != HTTP_M_GET && req->method != HTTP_M_HEAD) {
		http_resp_error(resp, 405);
		http_resp_field(resp, "Allow", "GET, HEAD");
		return;
	}
	resp->status = 200;
	resp->content_type = a->type;
	if (a->kind == WWW_HOME) {
		int r = buf_append(resp->out, s->home_head, s->home_head_len);

		r = r < 0 ? r : www_invite_self(s, resp->out);
		r = r < 0 ? r
			  : buf_append(resp->out, s->home_tail,
				       s->home_tail_len);
		if (r < 0) {
			buf_clear(resp->out);
			http_resp_error(resp, 500);
		}
		return;
	}
	if (a->gz != NULL) {
		resp->vary_encoding = true;
		if (http_req_accepts(req, "gzip")) {
			resp->body = a->gz;
			resp->body_len = a->gz_len;
			resp->content_encoding = "gzip";
			return;
		}
	}
	resp->body = a->raw;
	resp->body_len = a->raw_len;
}

static size_t www_body_max(void *arg, const struct http_req *req)
{
	struct www_site *s = arg;
	const struct www_asset *a = req->tls ? www_find(s, req) : NULL;

	/* /new takes (and ignores) a small form body. */
	return a != NULL && a->kind == WWW_NEW ? WWW_NEW_BODY : 0;
}

int www_site_new(const struct www_site_opts *o, struct www_site **site_r)
{
	struct www_site *s;
	int r;

	*site_r = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->o = *o;
	s->newcfg = (struct www_new_cfg){
		.mail_domain = o->mail_domain,
		.mail_domain_bare = o->mail_domain_bare,
		.is_ip_relay = o->is_ip_relay,
		.self_signed = o->self_signed,
		.username_len = (unsigned)o->username_max_length,
		.password_len = (unsigned)o->password_min_length + 3,
	};
	snprintf(s->www_host, sizeof(s->www_host), "www.%s", o->mail_domain);
	snprintf(s->qr_path, sizeof(s->qr_path), "/qr-chatmail-invite-%s.png",
		 o->mail_domain);
	snprintf(s->invite_url, sizeof(s->invite_url),
		 "DCACCOUNT:https://%s/new", o->mail_domain);
	r = ratelimit_new(o->new_per_minute != 0 ? o->new_per_minute : 120,
			  o->new_burst != 0 ? o->new_burst : 5, 0, &s->limit);
	if (r == 0)
		r = www_assets(s);
	if (r < 0) {
		log_err("www: cannot render the site: %s", strerror(-r));
		www_site_free(&s);
		return r;
	}
	s->handler = (struct http_handler){
		.body_max = www_body_max,
		.handle = www_handle,
		.arg = s,
	};
	log_info("www: site rendered domain=%s pages=%u self_signed=%d "
		 "acme_webroot=%s",
		 o->mail_domain, s->n_assets, o->self_signed ? 1 : 0,
		 o->acme_webroot);
	*site_r = s;
	return 0;
}

void www_site_free(struct www_site **sp)
{
	struct www_site *s = *sp;

	if (s == NULL)
		return;
	for (unsigned i = 0; i < s->n_assets; i++) {
		free(s->assets[i].raw);
		free(s->assets[i].gz);
	}
	free(s->home_head);
	free(s->home_tail);
	ratelimit_free(&s->limit);
	free(s);
	*sp = NULL;
}

const struct http_handler *www_site_handler(struct www_site *s)
{
	return &s->handler;
}
