/* core/base64: the strict decoder. */
#include "core/base64.h"

/* system */
#include <stdbool.h>

static int base64_val(unsigned char c)
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

int base64_decode_strict(const char *in, size_t len, uint8_t *out, size_t outsz,
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
			v[k] = base64_val(u[i + k]);
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
