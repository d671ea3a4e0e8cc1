/* tests/fuzz/fuzz_bench_proto: the reply-line parsers of `ringmail bench`
 * on arbitrary lines: no read past the length given, and every accepted
 * line has the shape it was accepted for. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/client/bench_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(c)                                                      \
	do {                                                               \
		if (!(c)) {                                                \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, \
				#c);                                       \
			abort();                                           \
		}                                                          \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy: ASan sees any read past the end. */
	char *line = malloc(size ? size : 1);
	char *text = malloc(size + 1);
	char out[64];
	bool last;
	int code;
	long v;

	if (line == NULL || text == NULL)
		abort();
	memcpy(line, data, size);
	memcpy(text, data, size);
	text[size] = '\0';

	code = bench_smtp_reply_line(line, size, &last);
	if (code >= 0) {
		FUZZ_CHECK(code >= 200 && code <= 599 && size >= 3);
		FUZZ_CHECK(size == 3 || line[3] == ' ' || line[3] == '-');
		FUZZ_CHECK(last == (size == 3 || line[3] == ' '));
	}
	v = bench_smtp_retry_ms(text);
	FUZZ_CHECK(v >= -1 && v < 1000000000);
	if (v >= 0)
		FUZZ_CHECK(strstr(text, "retry in ") != NULL);
	if (bench_smtp_is_rate_limit(450, text))
		FUZZ_CHECK(strstr(text, "Too much mail from") != NULL);

	v = bench_imap_exists(line, size);
	if (v >= 0)
		FUZZ_CHECK(size > 9 && line[0] == '*' && line[1] == ' ');
	v = bench_imap_literal(line, size);
	if (v >= 0)
		FUZZ_CHECK(size >= 3 && line[size - 1] == '}' &&
			   memchr(line, '{', size) != NULL);
	(void)bench_imap_tagged(line, size, "b1");
	v = bench_msgid_find(data, size, "rmb-", out, sizeof(out));
	if (v >= 0) {
		FUZZ_CHECK((size_t)v < sizeof(out) && strlen(out) == (size_t)v);
		FUZZ_CHECK(strncmp(out, "rmb-", 4) == 0);
		FUZZ_CHECK(strchr(out, '>') == NULL);
	}
	free(line);
	free(text);
	return 0;
}
