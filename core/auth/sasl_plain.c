/* core/auth/sasl_plain: the RFC 4616 message split with ringmail's
 * authzid rule, over the strict base64 decoder. */
#include "core/auth/sasl_plain.h"

/* system */
#include <string.h>

/* project */
#include "core/base64.h"

void sasl_plain_wipe(struct sasl_plain *out)
{
	explicit_bzero(out->buf, sizeof(out->buf));
	out->authzid = out->authcid = out->password = out->buf;
	out->authzid_len = out->authcid_len = out->password_len = 0;
}

int sasl_plain_decode(const char *b64, size_t len, struct sasl_plain *out)
{
	const char *nul1, *nul2, *end;
	size_t n;
	int r;

	out->authzid = out->authcid = out->password = out->buf;
	out->authzid_len = out->authcid_len = out->password_len = 0;
	out->buf[0] = '\0';
	if (len == 1 && b64[0] == '*') {
		r = SASL_PLAIN_ERR_CANCELLED;
		goto fail;
	}
	if (len > SASL_PLAIN_B64_MAX) {
		r = SASL_PLAIN_ERR_TOO_LONG;
		goto fail;
	}
	if (base64_decode_strict(b64, len, (uint8_t *)out->buf,
				 sizeof(out->buf) - 1, &n) < 0) {
		r = SASL_PLAIN_ERR_BASE64;
		goto fail;
	}
	out->buf[n] = '\0';
	end = out->buf + n;
	nul1 = memchr(out->buf, '\0', n);
	nul2 = nul1 != NULL ? memchr(nul1 + 1, '\0', (size_t)(end - nul1 - 1))
			    : NULL;
	if (nul2 == NULL || memchr(nul2 + 1, '\0', (size_t)(end - nul2 - 1))) {
		r = SASL_PLAIN_ERR_MALFORMED;
		goto fail;
	}
	out->authzid = out->buf;
	out->authzid_len = (size_t)(nul1 - out->buf);
	out->authcid = nul1 + 1;
	out->authcid_len = (size_t)(nul2 - nul1 - 1);
	out->password = nul2 + 1;
	out->password_len = (size_t)(end - nul2 - 1);
	if (out->authcid_len == 0 || out->password_len == 0) {
		r = SASL_PLAIN_ERR_EMPTY;
		goto fail;
	}
	if (out->authzid_len != 0 &&
	    (out->authzid_len != out->authcid_len ||
	     memcmp(out->authzid, out->authcid, out->authcid_len) != 0)) {
		r = SASL_PLAIN_ERR_AUTHZID;
		goto fail;
	}
	return SASL_PLAIN_OK;
fail:
	sasl_plain_wipe(out);
	return r;
}
