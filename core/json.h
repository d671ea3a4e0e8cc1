/* core/json: a strict, bounded JSON reader (RFC 8259) for the few small
 * files ringmail loads at start-up. Pure: no I/O, no allocation. One pass
 * validates (UTF-8 in strings, escapes, lone surrogates refused, number
 * grammar, nesting at most JSON_DEPTH_MAX), fills a flat token array in
 * document order and optionally writes the compact form: the same value
 * without insignificant white space, strings and numbers byte for byte. */
#ifndef RINGMAIL_CORE_JSON_H
#define RINGMAIL_CORE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define JSON_DEPTH_MAX 32

enum json_type {
	JSON_OBJECT,
	JSON_ARRAY,
	JSON_STRING,
	JSON_NUMBER,
	JSON_TRUE,
	JSON_FALSE,
	JSON_NULL,
};

struct json_tok {
	enum json_type type;
	uint32_t start, len; /* in the input; strings: inside the quotes */
	uint32_t size;       /* object: members; array: elements */
	uint32_t end;        /* index of the first token after this value */
};

struct json_err {
	size_t offset;    /* where in the input */
	const char *what; /* static text, e.g. "expected ':'" */
};

/* Parse exactly one value (white space around it allowed) of @in[0..@len)
 * into @toks (an object member is its key token, then its value's). With
 * @out non-NULL, the compact form goes there NUL-terminated (@out_cap =
 * @len + 1 always suffices). The token count, or -1 with @err set. */
int json_parse(const char *in, size_t len, struct json_tok *toks,
	       unsigned max_toks, char *out, size_t out_cap,
	       struct json_err *err);

/* String token @t decoded into @buf (UTF-8, NUL-terminated; it may contain
 * NULs from \u0000): its length, or -1 when it needs more than @cap - 1. */
ssize_t json_str_decode(const char *in, const struct json_tok *t, char *buf,
			size_t cap);
/* Whether string token @t decodes to exactly @s. */
bool json_str_eq(const char *in, const struct json_tok *t, const char *s);

#endif
