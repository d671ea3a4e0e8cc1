/* smtp/smtp_auth: AUTH argument split, a strict base64 decoder, and the
 * RFC 4616 message split with ringmail's authzid rule. */
#include "smtp/smtp_auth.h"

/* system */
#include <string.h>
#include <strings.h>

static int smtp_b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int smtp_base64_decode(const char *in, size_t len, uint8_t *out, size_t outsz,
		       size_t *out_len_r)
{
	const unsigned char *u = (const unsigned char *)in;
	size_t o = 0;
	int v[4];

	*out_len_r = 0;
	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		size_t pad = 0;

		for (int k = 0; k < 4; k++) {
			if (u[i + k] == '=' && last && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad > 0) /* "x=x=" */
				return -1;
			v[k] = smtp_b64_val(u[i + k]);
			if (v[k] < 0)
				return -1;
		}
		/* The unused bits before padding must be zero (canonical). */
		if ((pad == 1 && (v[2] & 0x3) != 0) ||
		    (pad == 2 && (v[1] & 0xf) != 0))
			return -1;
		if (o + 3 - pad > outsz)
			return -1;
		out[o++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[o++] = (uint8_t)((v[1] & 0xf) << 4 | v[2] >> 2);
		if (pad < 1)
			out[o++] = (uint8_t)((v[2] & 0x3) << 6 | v[3]);
	}
	*out_len_r = o;
	return 0;
}

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

void smtp_auth_plain_wipe(struct smtp_auth_plain *out)
{
	explicit_bzero(out->buf, sizeof(out->buf));
	out->authzid = out->authcid = out->password = out->buf;
	out->authzid_len = out->authcid_len = out->password_len = 0;
}

int smtp_auth_plain_decode(const char *b64, size_t len,
			   struct smtp_auth_plain *out)
{
	const char *nul1, *nul2, *end;
	size_t n;
	int r;

	out->authzid = out->authcid = out->password = out->buf;
	out->authzid_len = out->authcid_len = out->password_len = 0;
	out->buf[0] = '\0';
	if (len == 1 && b64[0] == '*') {
		r = SMTP_AUTH_ERR_CANCELLED;
		goto fail;
	}
	if (len > SMTP_AUTH_B64_MAX) {
		r = SMTP_AUTH_ERR_TOO_LONG;
		goto fail;
	}
	if (smtp_base64_decode(b64, len, (uint8_t *)out->buf,
			       sizeof(out->buf) - 1, &n) < 0) {
		r = SMTP_AUTH_ERR_BASE64;
		goto fail;
	}
	out->buf[n] = '\0';
	end = out->buf + n;
	nul1 = memchr(out->buf, '\0', n);
	nul2 = nul1 != NULL ? memchr(nul1 + 1, '\0', (size_t)(end - nul1 - 1))
			    : NULL;
	if (nul2 == NULL || memchr(nul2 + 1, '\0', (size_t)(end - nul2 - 1))) {
		r = SMTP_AUTH_ERR_MALFORMED;
		goto fail;
	}
	out->authzid = out->buf;
	out->authzid_len = (size_t)(nul1 - out->buf);
	out->authcid = nul1 + 1;
	out->authcid_len = (size_t)(nul2 - nul1 - 1);
	out->password = nul2 + 1;
	out->password_len = (size_t)(end - nul2 - 1);
	if (out->authcid_len == 0 || out->password_len == 0) {
		r = SMTP_AUTH_ERR_EMPTY;
		goto fail;
	}
	if (out->authzid_len != 0 &&
	    (out->authzid_len != out->authcid_len ||
	     memcmp(out->authzid, out->authcid, out->authcid_len) != 0)) {
		r = SMTP_AUTH_ERR_AUTHZID;
		goto fail;
	}
	return SMTP_AUTH_OK;
fail:
	smtp_auth_plain_wipe(out);
	return r;
}

static const struct smtp_reply_def smtp_auth_replies[] = {
	[SMTP_AUTH_ERR_SYNTAX] = {SMTP_R_SYNTAX_AUTH},
	[SMTP_AUTH_ERR_MECH] = {SMTP_R_AUTH_MECH},
	[SMTP_AUTH_ERR_CANCELLED] = {SMTP_R_AUTH_ABORTED},
	[SMTP_AUTH_ERR_BASE64] = {SMTP_R_AUTH_BASE64},
	[SMTP_AUTH_ERR_TOO_LONG] = {SMTP_R_AUTH_TOO_LONG},
	[SMTP_AUTH_ERR_MALFORMED] = {SMTP_R_AUTH_FAILED},
	[SMTP_AUTH_ERR_EMPTY] = {SMTP_R_AUTH_FAILED},
	[SMTP_AUTH_ERR_AUTHZID] = {SMTP_R_AUTH_FAILED},
};

const struct smtp_reply_def *smtp_auth_error_reply(enum smtp_auth_error e)
{
	if (e <= SMTP_AUTH_OK || e > SMTP_AUTH_ERR_AUTHZID)
		return NULL;
	return &smtp_auth_replies[e];
}
