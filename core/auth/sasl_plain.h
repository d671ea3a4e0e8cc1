/* core/auth/sasl_plain: the one SASL PLAIN decoder (RFC 4616), used by
 * SMTP AUTH, IMAP AUTHENTICATE and the web side: base64, then authzid
 * NUL authcid NUL passwd. No I/O, no malloc; credentials are decoded
 * into the caller's struct. Each protocol maps the errors to its own
 * replies. */
#ifndef RINGMAIL_CORE_AUTH_SASL_PLAIN_H
#define RINGMAIL_CORE_AUTH_SASL_PLAIN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Base64 octets of one response: what fits in SMTP's long line (so RFC
 * 4954 section 4's 12288 is never reached); decoded: 3/4 of it. */
#define SASL_PLAIN_B64_MAX 2044
#define SASL_PLAIN_MAX     (SASL_PLAIN_B64_MAX / 4 * 3)

enum sasl_plain_error {
	SASL_PLAIN_OK = 0,
	SASL_PLAIN_ERR_CANCELLED, /* the client sent "*" (RFC 4954 4) */
	SASL_PLAIN_ERR_BASE64,    /* not strict base64 (RFC 4648 4) */
	SASL_PLAIN_ERR_TOO_LONG,  /* over SASL_PLAIN_B64_MAX */
	SASL_PLAIN_ERR_MALFORMED, /* not exactly three NUL-separated parts */
	SASL_PLAIN_ERR_EMPTY,     /* empty authcid or password (RFC 4616 2) */
	SASL_PLAIN_ERR_AUTHZID,   /* authzid given and not equal to authcid */
};

/* Decoded credentials; the three strings are NUL-terminated in buf. */
struct sasl_plain {
	const char *authzid; /* "" when not given */
	const char *authcid;
	const char *password;
	size_t authzid_len, authcid_len, password_len;
	char buf[SASL_PLAIN_MAX + 1];
};

/* Decode a PLAIN response: base64, then the three parts. The authzid must
 * be empty or equal the authcid (ringmail has no master users). Returns
 * an enum sasl_plain_error; on error @out holds no secret. */
int sasl_plain_decode(const char *b64, size_t len, struct sasl_plain *out);
/* Clear the credentials (explicit_bzero) once they have been used. */
void sasl_plain_wipe(struct sasl_plain *out);

#ifdef __cplusplus
}
#endif

#endif
