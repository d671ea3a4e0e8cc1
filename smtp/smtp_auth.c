/* smtp/smtp_auth: the AUTH argument split and the SMTP replies for SASL
 * PLAIN's errors (the decoder is core/auth/sasl_plain). */
#include "smtp/smtp_auth.h"

/* system */
#include <string.h>
#include <strings.h>

int smtp_auth_parse_cmd(const char *arg, size_t len, struct smtp_auth_cmd *out)
{
	size_t i = 0, m;

	out->mech = SMTP_AUTH_MECH_UNKNOWN;
	out->has_ir = false;
	out->ir = arg + len;
	out->ir_len = 0;
	while (i < len && arg[i] != ' ')
		i++;
	m = i;
	if (m == 0)
		return SMTP_AUTH_ERR_SYNTAX;
	if (m != 5 || strncasecmp(arg, "PLAIN", 5) != 0)
		return SMTP_AUTH_ERR_MECH;
	out->mech = SMTP_AUTH_MECH_PLAIN;
	while (i < len && arg[i] == ' ')
		i++;
	if (i == len)
		return SMTP_AUTH_OK;
	out->has_ir = true;
	out->ir = arg + i;
	out->ir_len = len - i;
	if (memchr(out->ir, ' ', out->ir_len) != NULL)
		return SMTP_AUTH_ERR_SYNTAX;
	if (out->ir_len == 1 && out->ir[0] == '=')
		out->ir_len = 0; /* empty initial response */
	return SMTP_AUTH_OK;
}

static const struct smtp_reply_def smtp_auth_replies[] = {
	[SMTP_AUTH_ERR_SYNTAX] = {SMTP_R_SYNTAX_AUTH},
	[SMTP_AUTH_ERR_MECH] = {SMTP_R_AUTH_MECH},
	[SASL_PLAIN_ERR_CANCELLED] = {SMTP_R_AUTH_ABORTED},
	[SASL_PLAIN_ERR_BASE64] = {SMTP_R_AUTH_BASE64},
	[SASL_PLAIN_ERR_TOO_LONG] = {SMTP_R_AUTH_TOO_LONG},
	[SASL_PLAIN_ERR_MALFORMED] = {SMTP_R_AUTH_FAILED},
	[SASL_PLAIN_ERR_EMPTY] = {SMTP_R_AUTH_FAILED},
	[SASL_PLAIN_ERR_AUTHZID] = {SMTP_R_AUTH_FAILED},
};

const struct smtp_reply_def *smtp_auth_error_reply(int e)
{
	if (e <= SMTP_AUTH_OK || e > SMTP_AUTH_ERR_MECH)
		return NULL;
	return &smtp_auth_replies[e];
}
