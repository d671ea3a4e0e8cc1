/* core/hash: the one string hash for in-memory tables (djb2, folding
 * ASCII case, as Dovecot's auth_username_format %Lu makes addresses
 * case-insensitive). Unkeyed: use it only for tables whose chains are
 * bounded by something else (sessions per IP, accounts per window). */
#ifndef RINGMAIL_CORE_HASH_H
#define RINGMAIL_CORE_HASH_H

#include <stdint.h>

static inline uint32_t hash_str_ci(const char *s)
{
	uint32_t h = 5381;

	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		h = h * 33 + (ch >= 'A' && ch <= 'Z' ? ch + 32u : ch);
	}
	return h;
}

#endif
