/* www/www_site: the relay's web site behind core/http (spec I.1-I.4, I.7):
 * home, info and privacy pages rendered at start-up from the markdown in
 * www/src (libcmark) with the relay's values, the stylesheet, robots.txt,
 * the invite QR, `/new` (and its legacy CGI alias), both autoconfig paths,
 * the MTA-STS policy; `www.<domain>` redirects to the bare domain. On
 * port 80: ACME http-01 files from a webroot, else 301 to https. Served
 * from memory, gzip'd where the client takes it. Thread-safe: one site
 * answers every worker. */
#ifndef RINGMAIL_WWW_SITE_H
#define RINGMAIL_WWW_SITE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/http/http_req.h"

struct www_site;

struct www_site_opts {
	const char *mail_domain;      /* "[a.b.c.d]" for an IP relay */
	const char *mail_domain_bare; /* as written in chatmail.ini */
	bool is_ip_relay;
	bool self_signed; /* tls_mode self: /new carries dclogin_url */
	int max_user_send_per_minute;
	int64_t max_mailbox_size_mb;
	int delete_mails_after, delete_inactive_users_after;
	int username_min_length, username_max_length, password_min_length;
	const char *privacy_postal, *privacy_mail, *privacy_pdo,
		*privacy_supervisor;
	const char *acme_webroot; /* port 80's /.well-known/acme-challenge/ */
	unsigned new_per_minute;  /* /new per client address; 0: 120 */
	unsigned new_burst;       /* 0: 5 */
};

/* Render everything (boot time). 0, or <0 with the reason logged. */
int www_site_new(const struct www_site_opts *o, struct www_site **site_r);
void www_site_free(struct www_site **site);
/* The handler to give the HTTP server; valid while @site lives. */
const struct http_handler *www_site_handler(struct www_site *site);

#endif
