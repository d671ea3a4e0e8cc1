/* smtp/smtp_auth: pure parsing of the AUTH argument (RFC 4954) and the
 * SMTP replies for its errors and for SASL PLAIN's (the decoder itself is
 * core/auth/sasl_plain, shared with IMAP). No I/O, no malloc. */
#ifndef RINGMAIL_SMTP_AUTH_H
#define RINGMAIL_SMTP_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/auth/sasl_plain.h"
#include "smtp/smtp_reply.h"

#ifdef __cplusplus
extern "C" {
#endif

enum smtp_auth_mech {
	SMTP_AUTH_MECH_UNKNOWN = 0,
	SMTP_AUTH_MECH_PLAIN, /* the only one offered (spec C.1) */
};

/* Errors of the AUTH argument; they follow enum sasl_plain_error's, so
 * one int carries either. */
enum smtp_auth_error {
	SMTP_AUTH_OK = SASL_PLAIN_OK,
	SMTP_AUTH_ERR_SYNTAX = SASL_PLAIN_ERR_AUTHZID + 1, /* no mechanism, or
							    * junk after the
							    * response */
	SMTP_AUTH_ERR_MECH, /* a mechanism other than PLAIN */
};

/* The AUTH argument: "PLAIN [initial-response]". ir points into the
 * argument; "=" is an empty initial response (RFC 4954 4). */
struct smtp_auth_cmd {
	enum smtp_auth_mech mech;
	bool has_ir;
	const char *ir;
	size_t ir_len;
};

/* Parse the AUTH argument (mechanism case-insensitive). An unknown
 * mechanism gives SMTP_AUTH_ERR_MECH with out->mech UNKNOWN. */
int smtp_auth_parse_cmd(const char *arg, size_t len, struct smtp_auth_cmd *out);
/* The reply for an enum smtp_auth_error or enum sasl_plain_error value;
 * NULL for OK or an unknown value. */
const struct smtp_reply_def *smtp_auth_error_reply(int e);

#ifdef __cplusplus
}
#endif

#endif
