/* core/dns_parse: the TXT records of a DNS response message (RFC 1035
 * 4.1, RFC 1464), with their smallest TTL. Pure and bounded: no malloc,
 * every length checked against the message, compression pointers only
 * skipped (owner names are not compared; c-ares's own TXT parser takes
 * every TXT answer the same way). */
#ifndef RINGMAIL_CORE_DNS_PARSE_H
#define RINGMAIL_CORE_DNS_PARSE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DNS_TXT_MAX     16   /* records kept; more are ignored */
#define DNS_TXT_BUF_MAX 8192 /* their text in all */

struct dns_txt_answer {
	unsigned n;
	uint32_t ttl;  /* smallest TTL of the records kept */
	unsigned skip; /* TXT records dropped past the limits */
	/* Each record's strings joined (RFC 6376 3.6.2.2), NUL after each. */
	const char *txt[DNS_TXT_MAX];
	size_t len[DNS_TXT_MAX];
	char buf[DNS_TXT_BUF_MAX];
};

enum dns_parse_error {
	DNS_PARSE_OK = 0,
	DNS_PARSE_SHORT = -1,  /* the message ends inside a field */
	DNS_PARSE_NAME = -2,   /* a bad label or name */
	DNS_PARSE_RDATA = -3,  /* TXT strings overrun their RDATA */
	DNS_PARSE_NOTANS = -4, /* not a response */
};

/* Parse the response @msg of @len octets. DNS_PARSE_OK (zero or more
 * TXT records in @out) or a negative enum dns_parse_error. */
int dns_parse_txt(const uint8_t *msg, size_t len, struct dns_txt_answer *out);

#ifdef __cplusplus
}
#endif

#endif
