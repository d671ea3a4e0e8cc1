/* filter/dkim_key: the signing key's files and DNS record: `ringmail dkim
 * keygen` and `ringmail dkim record` (spec E.1, K.3). */
#ifndef RINGMAIL_FILTER_DKIM_KEY_H
#define RINGMAIL_FILTER_DKIM_KEY_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Write a new RSA key of @bits (2048 as opendkim-genkey) as PEM to @path,
 * created with mode 0600 (refused if it exists, unless @force). 0 or
 * -errno (-EEXIST). */
int dkim_keygen(const char *path, unsigned bits, bool force);

/* The TXT value "v=DKIM1;k=rsa;p=<base64 SPKI>;s=email;t=s" for the
 * private key in @key_file, NUL-terminated into @out. 0, -errno of the
 * read, -EINVAL (not a key) or -ENOSPC. */
int dkim_record_value(const char *key_file, char *out, size_t out_len);

/* The zone line `cmdeploy dns` prints for it:
 * '<selector>._domainkey.<domain>.' left-aligned in 40 columns, then
 * ' 3600   IN  TXT    "..."' with the value cut into 255-character
 * strings joined by '" "' (or in one string with @single, the variant
 * cmdeploy offers for DNS providers that want it so). 0 or -ENOSPC. */
int dkim_record_line(const char *selector, const char *domain,
		     const char *value, bool single, char *out, size_t out_len);

#ifdef __cplusplus
}
#endif

#endif
