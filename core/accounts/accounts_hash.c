/* core/accounts/accounts_hash: chatmail's password hashes. chatmail stores
 * "{SHA512-CRYPT}" + crypt(pw, METHOD_SHA512): "$6$", a 16-character salt
 * from the crypt alphabet, default 5000 rounds (so no "rounds=" field).
 * libxcrypt's crypt_gensalt_rn("$6$", 5000) gives exactly that form. */
#include "core/accounts/accounts-int.h"

/* system */
#include <crypt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* project */
#include "core/log.h"

#define ACCOUNTS_HASH_ROUNDS  5000ul
#define ACCOUNTS_HASH_SALTLEN 16u

bool accounts_hash_supported(const char *stored)
{
	size_t plen = strlen(ACCOUNTS_HASH_PREFIX);
	size_t len;

	if (strncmp(stored, ACCOUNTS_HASH_PREFIX, plen) != 0)
		return false;
	len = strlen(stored);
	if (len >= ACCOUNTS_HASH_MAX || len < plen + 2)
		return false;
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)stored[i] <= ' ' ||
		    (unsigned char)stored[i] >= 0x7f)
			return false;
	}
	return true;
}

/* Equal strings, in time that depends only on the lengths. */
static bool accounts_hash_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t n = la > lb ? la : lb;
	unsigned char diff = la != lb;

	for (size_t i = 0; i < n; i++) {
		unsigned char ca = i < la ? (unsigned char)a[i] : 0;
		unsigned char cb = i < lb ? (unsigned char)b[i] : 0;

		diff |= ca ^ cb;
	}
	return diff == 0;
}

int accounts_hash_make(const char *pw, char out[ACCOUNTS_HASH_MAX])
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = NULL;
	const char *h;
	size_t plen = strlen("{SHA512-CRYPT}");
	int ret = -EIO;

	if (crypt_gensalt_rn("$6$", ACCOUNTS_HASH_ROUNDS, NULL, 0, setting,
			     sizeof(setting)) == NULL) {
		ret = errno != 0 ? -errno : -EIO;
		log_err("accounts: crypt_gensalt: %s", strerror(-ret));
		goto out;
	}
	/* "$6$" + salt, nothing else: the chatmail form. */
	if (strlen(setting) != 3 + ACCOUNTS_HASH_SALTLEN) {
		log_err("accounts: unexpected salt form '%s'", setting);
		goto out;
	}
	cd = calloc(1, sizeof(*cd));
	if (cd == NULL) {
		ret = -ENOMEM;
		goto out;
	}
	h = crypt_r(pw, setting, cd);
	if (h == NULL || h[0] != '$' || strlen(h) + plen >= ACCOUNTS_HASH_MAX) {
		log_err("accounts: crypt_r failed");
		goto out;
	}
	memcpy(out, "{SHA512-CRYPT}", plen);
	memcpy(out + plen, h, strlen(h) + 1);
	ret = 0;
out:
	if (cd != NULL) {
		explicit_bzero(cd, sizeof(*cd));
		free(cd);
	}
	return ret;
}

int accounts_hash_verify(const char *pw, const char *stored)
{
	size_t plen = strlen("{SHA512-CRYPT}");
	struct crypt_data *cd;
	const char *h;
	int ret;

	if (!accounts_hash_supported(stored))
		return -EINVAL;
	cd = calloc(1, sizeof(*cd));
	if (cd == NULL)
		return -ENOMEM;
	h = crypt_r(pw, stored + plen, cd);
	if (h == NULL || h[0] != '$')
		ret = 0; /* libxcrypt's "*0"/"*1": a malformed setting */
	else
		ret = accounts_hash_equal(h, stored + plen) ? 1 : 0;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ret;
}
