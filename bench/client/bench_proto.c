/* bench/client/bench_proto: the few reply lines `ringmail bench` has to
 * understand, as pure functions over one line (no I/O, no allocation,
 * bounded by the length given). Unit tests: tests/unit/test_bench_proto.c;
 * fuzzer: tests/fuzz/fuzz_bench_proto.c. */
#include "bench/client/bench_client.h"

/* system */
#include <string.h>
#include <strings.h>

static bool bench_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

int bench_smtp_reply_line(const char *line, size_t len, bool *last_r)
{
	int code;

	*last_r = true;
	if (len < 3 || !bench_is_digit(line[0]) || !bench_is_digit(line[1]) ||
	    !bench_is_digit(line[2]) || line[0] < '2' || line[0] > '5')
		return -1;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (len == 3)
		return code;
	if (line[3] == '-')
		*last_r = false;
	else if (line[3] != ' ')
		return -1;
	return code;
}

/* Find @needle (NUL-terminated) in the first @len octets of @hay. */
static const char *bench_memmem(const char *hay, size_t len, const char *needle)
{
	size_t nl = strlen(needle);

	if (nl == 0 || len < nl)
		return NULL;
	for (size_t i = 0; i + nl <= len; i++) {
		if (hay[i] == needle[0] && memcmp(hay + i, needle, nl) == 0)
			return hay + i;
	}
	return NULL;
}

long bench_smtp_retry_ms(const char *text)
{
	const char *p = bench_memmem(text, strlen(text), "retry in ");
	long v = 0;
	int digits = 0;

	if (p == NULL)
		return -1;
	p += 9;
	while (bench_is_digit(*p) && digits < 9) {
		v = v * 10 + (*p - '0');
		p++;
		digits++;
	}
	if (digits == 0 || bench_is_digit(*p) || strncmp(p, " ms", 3) != 0)
		return -1;
	return v;
}

bool bench_smtp_is_rate_limit(int code, const char *text)
{
	return code == 450 &&
	       bench_memmem(text, strlen(text), "Too much mail from") != NULL;
}

/* A decimal number of 1..15 digits at *@pp; advances. -1 if none. */
static long bench_number(const char **pp, const char *end)
{
	const char *p = *pp;
	long v = 0;
	int digits = 0;

	while (p < end && bench_is_digit(*p)) {
		if (++digits > 15)
			return -1;
		v = v * 10 + (*p - '0');
		p++;
	}
	if (digits == 0)
		return -1;
	*pp = p;
	return v;
}

long bench_imap_exists(const char *line, size_t len)
{
	const char *p = line, *end = line + len;
	long n;

	if (len < 2 || p[0] != '*' || p[1] != ' ')
		return -1;
	p += 2;
	n = bench_number(&p, end);
	if (n < 0 || end - p != 7 || strncasecmp(p, " EXISTS", 7) != 0)
		return -1;
	return n;
}

long bench_imap_literal(const char *line, size_t len)
{
	const char *end = line + len, *p;
	long n;

	if (len < 3 || line[len - 1] != '}')
		return -1;
	end = line + len - 1;
	if (end[-1] == '+')
		end--;
	p = end;
	while (p > line && bench_is_digit(p[-1]))
		p--;
	if (p == end || p == line || p[-1] != '{')
		return -1;
	n = bench_number(&p, end);
	return p == end ? n : -1;
}

int bench_imap_tagged(const char *line, size_t len, const char *tag)
{
	size_t tl = strlen(tag);
	const char *p;
	size_t left;

	if (tl == 0 || len <= tl || memcmp(line, tag, tl) != 0 ||
	    line[tl] != ' ')
		return -1;
	p = line + tl + 1;
	left = len - tl - 1;
	if (left >= 2 && strncasecmp(p, "OK", 2) == 0 &&
	    (left == 2 || p[2] == ' '))
		return 1;
	if (left >= 2 && strncasecmp(p, "NO", 2) == 0 &&
	    (left == 2 || p[2] == ' '))
		return 0;
	if (left >= 3 && strncasecmp(p, "BAD", 3) == 0 &&
	    (left == 3 || p[3] == ' '))
		return 0;
	return -1;
}

long bench_msgid_find(const uint8_t *msg, size_t len, const char *prefix,
		      char *out, size_t cap)
{
	size_t pl = strlen(prefix);
	const char *m = (const char *)msg;

	if (cap == 0)
		return -1;
	for (size_t i = 0; i + 1 + pl <= len; i++) {
		size_t j;

		if (m[i] != '<' || memcmp(m + i + 1, prefix, pl) != 0)
			continue;
		for (j = i + 1; j < len && m[j] != '>'; j++) {
			unsigned char ch = (unsigned char)m[j];

			/* printable ASCII only: no line end, no NUL */
			if (ch < 0x21 || ch > 0x7e || j - i > cap)
				break;
		}
		if (j >= len || m[j] != '>' || j - i - 1 >= cap)
			continue;
		memcpy(out, m + i + 1, j - i - 1);
		out[j - i - 1] = '\0';
		return (long)(j - i - 1);
	}
	return -1;
}
