/* tests/fuzz/fuzz_dns_txt: core/dns_parse on any octets (a DNS response
 * from anyone on the path) must never crash or read out of bounds; what it
 * returns must lie inside its buffer, each record NUL-terminated at its
 * length; every prefix of an input parses as well (never a crash); the
 * DKIM record selection over the result stays within its output. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/dns_parse.h"
#include "filter/dkim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(const struct dns_txt_answer *a)
{
	size_t used = 0;

	if (a->n > DNS_TXT_MAX)
		abort();
	for (unsigned i = 0; i < a->n; i++) {
		const char *t = a->txt[i];

		if (t < a->buf || t + a->len[i] >= a->buf + sizeof(a->buf))
			abort();
		if (t[a->len[i]] != '\0')
			abort();
		used += a->len[i] + 1;
	}
	if (used > sizeof(a->buf))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dns_txt_answer a;
	char rec[DKIM_RECORD_MAX + 1];
	uint8_t *copy;
	int r;

	/* An exact-size copy: ASan sees any read past the end. */
	copy = malloc(size + 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	r = dns_parse_txt(copy, size, &a);
	if (r > 0 || r < DNS_PARSE_NOTANS)
		abort();
	if (r == DNS_PARSE_OK) {
		fuzz_check(&a);
		if (dkim_record_select(a.txt, a.len, a.n, rec, sizeof(rec)) &&
		    strlen(rec) > DKIM_RECORD_MAX)
			abort();
	}
	(void)dns_parse_txt(copy, size / 2, &a);
	free(copy);
	return 0;
}
