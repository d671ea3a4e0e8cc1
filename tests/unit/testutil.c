/* tests/unit/testutil: helpers shared by the cmocka tests. */
#include "testutil.h"

/* system */
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* third party */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

int testutil_backends(enum loop_backend out[2])
{
	const char *env = getenv("RINGMAIL_IO_BACKEND");
	int n = 0;

	if (env != NULL && strcmp(env, "epoll") == 0) {
		out[n++] = LOOP_BACKEND_EPOLL;
		return n;
	}
	if (env != NULL &&
	    (strcmp(env, "uring") == 0 || strcmp(env, "io_uring") == 0)) {
		out[n++] = LOOP_BACKEND_URING;
		return n;
	}
	if (loop_probe_kernel()->uring)
		out[n++] = LOOP_BACKEND_URING;
	out[n++] = LOOP_BACKEND_EPOLL;
	return n;
}

char *testutil_mkdtemp(const char *prefix)
{
	const char *tmp = getenv("TMPDIR");
	char path[512];

	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(path, sizeof(path), "%s/%s-XXXXXX", tmp, prefix);
	if (mkdtemp(path) == NULL)
		return NULL;
	return strdup(path);
}

static int testutil_rm_one(const char *path, const struct stat *st, int flag,
			   struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int testutil_rmtree(const char *path)
{
	return nftw(path, testutil_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int testutil_write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, data, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

const char *testutil_srcdir(void)
{
	const char *s = getenv("RINGMAIL_SRCDIR");

	return s != NULL ? s : ".";
}

int testutil_make_cert(const char *dir, const char *name, const char *cn)
{
	/* Built with the OpenSSL API, not the openssl(1) tool, so that the
	 * tests also run inside the Debian 12 kernel VM (busybox only). */
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *nm;
	X509_EXTENSION *ext = NULL;
	X509V3_CTX v3;
	char path[1024], san[300];
	FILE *f;
	int rc = -1;

	if (pkey == NULL || x == NULL)
		goto out;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)getpid());
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400);
	X509_set_pubkey(x, pkey);
	nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, nm);
	snprintf(san, sizeof(san), "DNS:%s", cn);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	if (ext == NULL || !X509_add_ext(x, ext, -1))
		goto out;
	if (!X509_sign(x, pkey, EVP_sha256()))
		goto out;
	snprintf(path, sizeof(path), "%s/%s.key", dir, name);
	f = fopen(path, "w");
	if (f == NULL)
		goto out;
	PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	snprintf(path, sizeof(path), "%s/%s.crt", dir, name);
	f = fopen(path, "w");
	if (f == NULL)
		goto out;
	PEM_write_X509(f, x);
	fclose(f);
	rc = 0;
out:
	X509_EXTENSION_free(ext);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}
