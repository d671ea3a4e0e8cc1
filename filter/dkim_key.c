/* filter/dkim_key: RSA key generation and the public key record. */
#include "filter/dkim_key.h"

/* system */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* third party */
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

/* project */
#include "core/fsutil.h"

int dkim_keygen(const char *path, unsigned bits, bool force)
{
	EVP_PKEY *pk;
	BIO *b = NULL;
	BUF_MEM *mem;
	struct fsutil_opts o = FSUTIL_OPTS(0600);
	int r = 0;

	if (bits < 1024 || bits > 8192)
		return -EINVAL;
	if (!force && access(path, F_OK) == 0)
		return -EEXIST;
	pk = EVP_RSA_gen(bits);
	if (pk == NULL)
		return -ENOMEM;
	b = BIO_new(BIO_s_mem());
	if (b == NULL ||
	    PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL) != 1) {
		r = -ENOMEM;
		goto out;
	}
	BIO_get_mem_ptr(b, &mem);
	/* The key is never readable by others, not even for a moment
	 * (fsutil creates it 0600). Without @force an existing key stays. */
	if (!force)
		o.flags |= FSUTIL_F_NOREPLACE;
	r = fsutil_write_file(path, mem->data, mem->length, &o);
out:
	BIO_free(b);
	EVP_PKEY_free(pk);
	return r;
}

int dkim_record_value(const char *key_file, char *out, size_t out_len)
{
	unsigned char *der = NULL;
	EVP_PKEY *pk;
	BIO *b;
	char *b64;
	int der_len, n, r = 0;

	b = BIO_new_file(key_file, "r");
	if (b == NULL)
		return errno != 0 ? -errno : -ENOENT;
	pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (pk == NULL || EVP_PKEY_base_id(pk) != EVP_PKEY_RSA) {
		EVP_PKEY_free(pk);
		return -EINVAL;
	}
	/* openssl rsa -pubout: the SubjectPublicKeyInfo in base64. */
	der_len = i2d_PUBKEY(pk, &der);
	EVP_PKEY_free(pk);
	if (der_len <= 0)
		return -EINVAL;
	b64 = malloc(4 * ((size_t)der_len / 3 + 1) + 1);
	if (b64 == NULL) {
		OPENSSL_free(der);
		return -ENOMEM;
	}
	EVP_EncodeBlock((unsigned char *)b64, der, der_len);
	OPENSSL_free(der);
	n = snprintf(out, out_len, "v=DKIM1;k=rsa;p=%s;s=email;t=s", b64);
	if (n < 0 || (size_t)n >= out_len)
		r = -ENOSPC;
	free(b64);
	return r;
}

int dkim_record_line(const char *selector, const char *domain,
		     const char *value, bool single, char *out, size_t out_len)
{
	char name[400];
	size_t len = strlen(value), o;
	int n;

	n = snprintf(name, sizeof(name), "%s._domainkey.%s.", selector, domain);
	if (n < 0 || (size_t)n >= sizeof(name))
		return -ENOSPC;
	n = snprintf(out, out_len, "%-40s 3600   IN  TXT    \"", name);
	if (n < 0 || (size_t)n >= out_len)
		return -ENOSPC;
	o = (size_t)n;
	for (size_t i = 0; i < len; i += 255) {
		size_t k = len - i < 255 ? len - i : 255;

		if (i > 0 && !single) {
			if (o + 3 >= out_len)
				return -ENOSPC;
			memcpy(out + o, "\" \"", 3);
			o += 3;
		}
		if (o + k >= out_len)
			return -ENOSPC;
		memcpy(out + o, value + i, k);
		o += k;
	}
	if (o + 2 > out_len)
		return -ENOSPC;
	out[o++] = '"';
	out[o] = '\0';
	return 0;
}
