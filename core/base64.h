/* core/base64: strict base64 decoding (RFC 4648 section 4: the standard
 * alphabet, padding required, no whitespace, canonical trailing bits).
 * Pure: no I/O, no malloc. */
#ifndef RINGMAIL_CORE_BASE64_H
#define RINGMAIL_CORE_BASE64_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Decode @len octets of @in into @out of @outsz; *@out_len_r = octets.
 * 0, or -1 on bad input or no room. */
int base64_decode_strict(const char *in, size_t len, uint8_t *out, size_t outsz,
			 size_t *out_len_r);

#ifdef __cplusplus
}
#endif

#endif
