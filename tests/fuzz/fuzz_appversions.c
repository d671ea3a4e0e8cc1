/* tests/fuzz/fuzz_appversions: core/json and imap-proxy/imap_appversions
 * on any octets (an operator's file). Never a crash or a read past the
 * input; what json_parse accepts compacts to a value no longer than the
 * input, with no line break or tab anywhere (those can only be
 * insignificant white space), that parses again to the same tokens and
 * compacts to itself; every token lies inside the input and its subtree
 * ends after it; what imap_appversions accepts is exactly that compact
 * form. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "imap-proxy/imap_appversions.h"

#define FUZZ_TOKS 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct json_tok toks[FUZZ_TOKS], toks2[FUZZ_TOKS];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy, *out, *out2, *appv = NULL, err[256], dec[64];
	struct json_err je;
	int n, n2, r;

	if (size > IMAP_APPVERSIONS_FILE_MAX)
		return 0;
	/* Exact-size copies: ASan sees any read past the end. */
	copy = malloc(size + 1);
	out = malloc(size + 1);
	out2 = malloc(size + 1);
	if (copy == NULL || out == NULL || out2 == NULL)
		abort();
	memcpy(copy, data, size);
	n = json_parse(copy, size, toks, FUZZ_TOKS, out, size + 1, &je);
	if (n < 0 && (je.what == NULL || je.offset > size))
		abort();
	if (n >= 0) {
		size_t olen = strlen(out);

		if (n == 0 || olen > size || strpbrk(out, "\n\r\t") != NULL)
			abort();
		for (int i = 0; i < n; i++) {
			if ((size_t)toks[i].start + toks[i].len > size ||
			    toks[i].end <= (uint32_t)i ||
			    toks[i].end > (uint32_t)n)
				abort();
			if (toks[i].type == JSON_STRING)
				(void)json_str_decode(copy, &toks[i], dec,
						      sizeof(dec));
		}
		if (toks[0].end != (uint32_t)n)
			abort();
		n2 = json_parse(out, olen, toks2, FUZZ_TOKS, out2, olen + 1,
				&je);
		if (n2 != n || strcmp(out, out2) != 0)
			abort();
		for (int i = 0; i < n; i++) {
			if (toks2[i].type != toks[i].type ||
			    toks2[i].size != toks[i].size ||
			    toks2[i].end != toks[i].end ||
			    (toks[i].type != JSON_OBJECT &&
			     toks[i].type != JSON_ARRAY &&
			     toks2[i].len != toks[i].len))
				abort();
		}
	}
	r = imap_appversions_compact(copy, size, &appv, err, sizeof(err));
	if (r == 0 && (n < 0 || strcmp(appv, out) != 0))
		abort();
	if (r < 0 && (appv != NULL || memchr(err, '\0', sizeof(err)) == NULL))
		abort();
	free(appv);
	free(copy);
	free(out);
	free(out2);
	return 0;
}
