/* www/www_new: the credentials `/new` hands out (spec I.2, chatmail's
 * newemail.py): a random [a-z0-9] localpart of username_max_length and a
 * password of password_min_length + 3 from letters, digits and ASCII
 * punctuation, from getrandom(2). Nothing is created server-side; the
 * account appears at its first login. */
#ifndef RINGMAIL_WWW_NEW_H
#define RINGMAIL_WWW_NEW_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

#define WWW_NEW_FIELD_MAX 256

struct www_new_cfg {
	const char *mail_domain;      /* "[1.2.3.4]" for an IP relay */
	const char *mail_domain_bare; /* "1.2.3.4" */
	bool is_ip_relay;
	bool self_signed; /* tls_mode self: the JSON carries dclogin_url */
	unsigned username_len;
	unsigned password_len;
};

struct www_new_creds {
	char email[WWW_NEW_FIELD_MAX];
	char password[WWW_NEW_FIELD_MAX];
};

/* Fresh credentials. 0, or -EINVAL (lengths out of range) / -EIO (no
 * randomness). */
int www_new_creds(const struct www_new_cfg *c, struct www_new_creds *cr);
/* chatmail's create_dclogin_url: "dclogin:<email>?p=<pw>&v=1
 * [&ih=<ip>&sh=<ip>]&ic=3", percent-quoted as Python's urllib quote does
 * (email keeps "@[]"). 0 or <0 (@out full). */
int www_new_dclogin(const struct www_new_cfg *c, const struct www_new_creds *cr,
		    struct buf *out);
/* The JSON body as Python's json.dumps writes it:
 * {"email": "...", "password": "..."[, "dclogin_url": "..."]}. */
int www_new_json(const struct www_new_cfg *c, const struct www_new_creds *cr,
		 struct buf *out);

#endif
