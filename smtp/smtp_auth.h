/* smtp/smtp_auth: pure parsing for AUTH PLAIN (RFC 4954, RFC 4616): the
 * AUTH argument, base64, and authzid NUL authcid NUL passwd. No I/O, no
 * malloc; credentials are decoded into the caller's struct. */
#ifndef RINGMAIL_SMTP_AUTH_H
#define RINGMAIL_SMTP_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp/smtp_reply.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Base64 octets of one response: what fits in a SMTP_LINE_MAX_LONG line
 * (so the RFC 4954 4 limit of 12288 is never reached); decoded: 3/4. */
#define SMTP_AUTH_B64_MAX   2044
#define SMTP_AUTH_PLAIN_MAX (SMTP_AUTH_B64_MAX / 4 * 3)

enum smtp_auth_mech {
	SMTP_AUTH_MECH_UNKNOWN = 0,
	SMTP_AUTH_MECH_PLAIN, /* the only one offered (spec C.1) */
};

enum smtp_auth_error {
	SMTP_AUTH_OK = 0,
	SMTP_AUTH_ERR_SYNTAX,    /* no mechanism, or junk after the response */
	SMTP_AUTH_ERR_MECH,      /* a mechanism other than PLAIN */
	SMTP_AUTH_ERR_CANCELLED, /* the client sent "*" (RFC 4954 4) */
	SMTP_AUTH_ERR_BASE64,    /* not strict base64 (RFC 4648 4) */
	SMTP_AUTH_ERR_TOO_LONG,  /* over SMTP_AUTH_B64_MAX */
	SMTP_AUTH_ERR_MALFORMED, /* not exactly three NUL-separated parts */
	SMTP_AUTH_ERR_EMPTY,     /* empty authcid or password (RFC 4616 2) */
	SMTP_AUTH_ERR_AUTHZID,   /* authzid given and not equal to authcid */
};

/* The AUTH argument: "PLAIN [initial-response]". ir points into the
 * argument; "=" is an empty initial response (RFC 4954 4). */
struct smtp_auth_cmd {
	enum smtp_auth_mech mech;
	bool has_ir;
	const char *ir;
	size_t ir_len;
};

/* Decoded credentials; the three strings are NUL-terminated in buf. */
struct smtp_auth_plain {
	const char *authzid; /* "" when not given */
	const char *authcid;
	const char *password;
	size_t authzid_len, authcid_len, password_len;
	char buf[SMTP_AUTH_PLAIN_MAX + 1];
};

/* Parse the AUTH argument (mechanism case-insensitive). An unknown
 * mechanism gives SMTP_AUTH_ERR_MECH with out->mech UNKNOWN. */
int smtp_auth_parse_cmd(const char *arg, size_t len, struct smtp_auth_cmd *out);
/* Decode a PLAIN response (initial or after "334 "): base64, then the
 * three parts. The authzid must be empty or equal the authcid (ringmail
 * has no master users). On error @out holds no secret. */
int smtp_auth_plain_decode(const char *b64, size_t len,
			   struct smtp_auth_plain *out);
/* Clear the credentials (explicit_bzero) once they have been used. */
void smtp_auth_plain_wipe(struct smtp_auth_plain *out);
/* Strict base64 (RFC 4648 4, padding required, no spaces) into @out of
 * @outsz; *@out_len_r = octets. 0, or -1 on bad input or no room. */
int smtp_base64_decode(const char *in, size_t len, uint8_t *out, size_t outsz,
		       size_t *out_len_r);
/* The reply for an error; NULL for OK. */
const struct smtp_reply_def *smtp_auth_error_reply(enum smtp_auth_error e);

#ifdef __cplusplus
}
#endif

#endif
