/* core/tls_selfsigned: self-signed certificates, for chatmail's "self" TLS
 * mode (IP relays, domains starting with "_"), local relays and tests. */
#include "core/tls.h"

/* system */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* third party */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* project */
#include "core/log.h"

static int tls_selfsigned_add_san(X509 *x, const char *cn,
				  const char *const *sans)
{
	char san[1024];
	size_t off;
	X509_EXTENSION *ext;
	X509V3_CTX v3;
	int ok;

	off = (size_t)snprintf(san, sizeof(san), "DNS:%s", cn);
	for (size_t i = 0; sans != NULL && sans[i] != NULL; i++) {
		int n = snprintf(san + off, sizeof(san) - off, ",%s", sans[i]);

		if (n < 0 || (size_t)n >= sizeof(san) - off)
			return -1;
		off += (size_t)n;
	}
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	if (ext == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

static int tls_selfsigned_write_pem(const char *path, mode_t mode,
				    EVP_PKEY *key, X509 *x)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	FILE *f;
	int ok;

	if (fd < 0)
		return -1;
	f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		return -1;
	}
	ok = key != NULL
		     ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
		     : PEM_write_X509(f, x);
	if (fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

int tls_selfsigned_write(const char *cert_path, const char *key_path,
			 const char *cn, const char *const *sans, int days)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *nm;
	int rc = -1;

	if (pkey == NULL || x == NULL)
		goto out;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x),
			 (long)(time(NULL) ^ (getpid() << 16)));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400);
	X509_set_pubkey(x, pkey);
	nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, nm);
	if (tls_selfsigned_add_san(x, cn, sans) < 0)
		goto out;
	if (!X509_sign(x, pkey, EVP_sha256()))
		goto out;
	if (tls_selfsigned_write_pem(key_path, 0600, pkey, NULL) < 0 ||
	    tls_selfsigned_write_pem(cert_path, 0644, NULL, x) < 0) {
		log_err("tls: cannot write %s / %s: %m", cert_path, key_path);
		goto out;
	}
	rc = 0;
out:
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}
