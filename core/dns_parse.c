/* core/dns_parse: a DNS response walked once, front to back. */
#include "core/dns_parse.h"

/* system */
#include <string.h>

#define DNS_HDR_LEN    12
#define DNS_TYPE_TXT   16
#define DNS_CLASS_IN   1
#define DNS_LABELS_MAX 128

static uint16_t dns_u16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t dns_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | p[3];
}

/* Skip the name at *@off: labels up to a zero octet or a pointer. */
static int dns_skip_name(const uint8_t *msg, size_t len, size_t *off)
{
	size_t o = *off, total = 0;

	for (unsigned labels = 0; labels <= DNS_LABELS_MAX; labels++) {
		uint8_t c;

		if (o >= len)
			return DNS_PARSE_SHORT;
		c = msg[o];
		if (c == 0) {
			*off = o + 1;
			return DNS_PARSE_OK;
		}
		if ((c & 0xc0) == 0xc0) {
			if (o + 2 > len)
				return DNS_PARSE_SHORT;
			*off = o + 2;
			return DNS_PARSE_OK;
		}
		if ((c & 0xc0) != 0)
			return DNS_PARSE_NAME;
		total += (size_t)c + 1;
		if (total > 255)
			return DNS_PARSE_NAME;
		o += (size_t)c + 1;
	}
	return DNS_PARSE_NAME;
}

/* One TXT RDATA: its character-strings joined into @out's buffer. */
static int dns_take_txt(const uint8_t *rd, size_t rdlen, uint32_t ttl,
			struct dns_txt_answer *out, size_t *used)
{
	size_t need = 0, o;

	for (size_t i = 0; i < rdlen;) {
		size_t k = rd[i];

		if (i + 1 + k > rdlen)
			return DNS_PARSE_RDATA;
		need += k;
		i += 1 + k;
	}
	if (out->n >= DNS_TXT_MAX || *used + need + 1 > sizeof(out->buf)) {
		out->skip++;
		return DNS_PARSE_OK;
	}
	o = *used;
	for (size_t i = 0; i < rdlen;) {
		size_t k = rd[i];

		memcpy(out->buf + o, rd + i + 1, k);
		o += k;
		i += 1 + k;
	}
	out->buf[o] = '\0';
	out->txt[out->n] = out->buf + *used;
	out->len[out->n] = need;
	if (out->n == 0 || ttl < out->ttl)
		out->ttl = ttl;
	out->n++;
	*used = o + 1;
	return DNS_PARSE_OK;
}

int dns_parse_txt(const uint8_t *msg, size_t len, struct dns_txt_answer *out)
{
	unsigned qd, an;
	size_t off = DNS_HDR_LEN, used = 0;
	int r;

	out->n = 0;
	out->ttl = 0;
	out->skip = 0;
	if (len < DNS_HDR_LEN)
		return DNS_PARSE_SHORT;
	if ((msg[2] & 0x80) == 0)
		return DNS_PARSE_NOTANS;
	qd = dns_u16(msg + 4);
	an = dns_u16(msg + 6);
	for (unsigned i = 0; i < qd; i++) {
		r = dns_skip_name(msg, len, &off);
		if (r < 0)
			return r;
		if (off + 4 > len)
			return DNS_PARSE_SHORT;
		off += 4;
	}
	for (unsigned i = 0; i < an; i++) {
		uint16_t type, cls, rdlen;
		uint32_t ttl;

		r = dns_skip_name(msg, len, &off);
		if (r < 0)
			return r;
		if (off + 10 > len)
			return DNS_PARSE_SHORT;
		type = dns_u16(msg + off);
		cls = dns_u16(msg + off + 2);
		ttl = dns_u32(msg + off + 4);
		rdlen = dns_u16(msg + off + 8);
		off += 10;
		if (off + rdlen > len)
			return DNS_PARSE_SHORT;
		/* RFC 2181 8: a TTL with the top bit set counts as 0. */
		if (ttl > INT32_MAX)
			ttl = 0;
		if (type == DNS_TYPE_TXT && cls == DNS_CLASS_IN) {
			r = dns_take_txt(msg + off, rdlen, ttl, out, &used);
			if (r < 0)
				return r;
		}
		off += rdlen;
	}
	return DNS_PARSE_OK;
}
