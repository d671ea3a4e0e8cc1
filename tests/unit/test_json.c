/* tests/unit/test_json: core/json byte by byte. Compaction drops exactly
 * the insignificant white space and keeps strings (escapes included) and
 * numbers as they were; tokens carry type, size and subtree end; the
 * nesting bound holds at exactly JSON_DEPTH_MAX; every invalid input is
 * refused with its offset, every strict prefix of a document too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* system */
#include <stdio.h>
#include <string.h>

/* project */
#include "core/json.h"

#define TOKS 256

static struct json_tok toks[TOKS];

static int parse(const char *in, size_t len, char *out, size_t cap,
		 struct json_err *err)
{
	return json_parse(in, len, toks, TOKS, out, cap, err);
}

static void expect_compact(const char *in, const char *want)
{
	char out[1024];
	struct json_err err = {0, NULL};
	int n = parse(in, strlen(in), out, sizeof(out), &err);

	if (n < 0)
		fail_msg("%s: %s at %zu", in, err.what, err.offset);
	assert_string_equal(out, want);
	/* Compacting the compact form changes nothing. */
	assert_int_equal(parse(want, strlen(want), out, sizeof(out), &err), n);
	assert_string_equal(out, want);
}

static void test_compact(void **state)
{
	(void)state;
	expect_compact(" {\n\t\"a\" : [ 1 , 2 ] ,\r\n  \"b\":\"x y\" }\n",
		       "{\"a\":[1,2],\"b\":\"x y\"}");
	expect_compact("[ ]", "[]");
	expect_compact("{ }", "{}");
	expect_compact(" 0 ", "0");
	expect_compact("-0.5e+10", "-0.5e+10");
	expect_compact("[true ,false, null]", "[true,false,null]");
	/* Strings byte for byte: escapes stay escapes, white space and
	 * structural characters inside them stay. */
	expect_compact(
		"{ \"k\\\"ey\" : \"a\\\\b\\/c\\n\\t\\u00e9 \\ud83d\\ude00"
		" , : [ ] { }\" }",
		"{\"k\\\"ey\":\"a\\\\b\\/c\\n\\t\\u00e9 \\ud83d\\ude00"
		" , : [ ] { }\"}");
	/* Raw UTF-8: two, three and four octets. */
	expect_compact("[\"\xc3\xa9\", \"\xe2\x82\xac\", \"\xf0\x9f\x98\x80\"]",
		       "[\"\xc3\xa9\",\"\xe2\x82\xac\",\"\xf0\x9f\x98\x80\"]");
}

static void test_tokens(void **state)
{
	static const char in[] = "{\"a\":[1,{\"b\":null}],\"c\":\"x\"}";
	char out[64];
	struct json_err err;
	int n;

	(void)state;
	n = parse(in, sizeof(in) - 1, out, sizeof(out), &err);
	/* { "a" [ 1 { "b" null } "c" "x" */
	assert_int_equal(n, 9);
	assert_int_equal(toks[0].type, JSON_OBJECT);
	assert_int_equal(toks[0].size, 2);
	assert_int_equal(toks[0].end, 9);
	assert_int_equal(toks[1].type, JSON_STRING);
	assert_int_equal(toks[1].len, 1);
	assert_int_equal(in[toks[1].start], 'a');
	assert_int_equal(toks[2].type, JSON_ARRAY);
	assert_int_equal(toks[2].size, 2);
	assert_int_equal(toks[2].end, 7);
	assert_int_equal(toks[3].type, JSON_NUMBER);
	assert_int_equal(toks[3].len, 1);
	assert_int_equal(toks[4].type, JSON_OBJECT);
	assert_int_equal(toks[4].end, 7);
	assert_int_equal(toks[6].type, JSON_NULL);
	assert_true(json_str_eq(in, &toks[7], "c"));
	assert_false(json_str_eq(in, &toks[7], "cc"));
	assert_false(json_str_eq(in, &toks[3], "1")); /* not a string */
	/* No output buffer: validation and tokens only. */
	assert_int_equal(
		json_parse(in, sizeof(in) - 1, toks, TOKS, NULL, 0, &err), 9);
	/* Token array full. */
	assert_int_equal(json_parse(in, sizeof(in) - 1, toks, 8, NULL, 0, &err),
			 -1);
	assert_string_equal(err.what, "too many values");
	/* Output buffer too small is an error, never a cut value. */
	assert_int_equal(parse(in, sizeof(in) - 1, out, 10, &err), -1);
	assert_string_equal(err.what, "output buffer too small");
}

static void test_decode(void **state)
{
	static const char in[] = "\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9"
				 "\\u20ac\\ud83d\\ude00\\u0000z\"";
	static const char want[] = "a\"\\/\b\f\n\r\tA\xc3\xa9\xe2\x82\xac"
				   "\xf0\x9f\x98\x80\0z";
	char buf[64];
	struct json_err err;

	(void)state;
	assert_int_equal(parse(in, sizeof(in) - 1, NULL, 0, &err), 1);
	assert_int_equal(json_str_decode(in, &toks[0], buf, sizeof(buf)),
			 sizeof(want) - 1);
	assert_memory_equal(buf, want, sizeof(want));
	/* Exactly enough room, then one octet less. */
	assert_int_equal(json_str_decode(in, &toks[0], buf, sizeof(want)),
			 sizeof(want) - 1);
	assert_int_equal(json_str_decode(in, &toks[0], buf, sizeof(want) - 1),
			 -1);
}

static void test_depth(void **state)
{
	char in[2 * JSON_DEPTH_MAX + 4], out[sizeof(in)];
	struct json_err err;
	int d;

	(void)state;
	for (d = JSON_DEPTH_MAX; d <= JSON_DEPTH_MAX + 1; d++) {
		memset(in, '[', (size_t)d);
		memset(in + d, ']', (size_t)d);
		in[2 * d] = '\0';
		if (d == JSON_DEPTH_MAX) {
			assert_int_equal(parse(in, (size_t)(2 * d), out,
					       sizeof(out), &err),
					 d);
			assert_string_equal(out, in);
		} else {
			assert_int_equal(parse(in, (size_t)(2 * d), out,
					       sizeof(out), &err),
					 -1);
			assert_string_equal(err.what, "nested too deep");
			assert_int_equal(err.offset, JSON_DEPTH_MAX);
		}
	}
}

struct bad {
	const char *in;
	size_t len; /* 0: strlen */
	size_t offset;
	const char *what;
};

static void test_invalid(void **state)
{
	static const struct bad bad[] = {
		{"", 0, 0, "unexpected end"},
		{"   ", 0, 3, "unexpected end"},
		{"{", 0, 1, "expected a string key"},
		{"[1,]", 0, 3, "unexpected character"},
		{"[1 2]", 0, 3, "expected ',' or ']'"},
		{"{\"a\" 1}", 0, 5, "expected ':'"},
		{"{\"a\":1,}", 0, 7, "expected a string key"},
		{"{\"a\":1 \"b\":2}", 0, 7, "expected ',' or '}'"},
		{"{'a':1}", 0, 1, "expected a string key"},
		{"{1:1}", 0, 1, "expected a string key"},
		{"01", 0, 1, "leading zero in number"},
		{"1.", 0, 2, "invalid number"},
		{"-", 0, 1, "invalid number"},
		{"+1", 0, 0, "unexpected character"},
		{"1e", 0, 2, "invalid number"},
		{".5", 0, 0, "unexpected character"},
		{"tru", 0, 0, "invalid literal"},
		{"nul", 0, 0, "invalid literal"},
		{"True", 0, 0, "unexpected character"},
		{"\"abc", 0, 4, "unterminated string"},
		{"\"ab\\", 0, 3, "unterminated string"},
		{"\"a\x01\"", 0, 2, "control character in string"},
		{"\"a\tb\"", 0, 2, "control character in string"},
		{"\"\\x\"", 0, 1, "invalid escape in string"},
		{"\"\\u12g4\"", 0, 1, "invalid \\u escape"},
		{"\"\\u12\"", 0, 1, "invalid \\u escape"},
		{"\"\\ud800\"", 0, 1, "lone surrogate in \\u escape"},
		{"\"\\ud800\\u0041\"", 0, 1, "lone surrogate in \\u escape"},
		{"\"\\udc00\"", 0, 1, "lone surrogate in \\u escape"},
		{"\"\xff\"", 0, 1, "invalid UTF-8 in string"},
		{"\"\xc0\xaf\"", 0, 1,
		 "invalid UTF-8 in string"}, /* overlong */
		{"\"\xe0\x80\xaf\"", 0, 1,
		 "invalid UTF-8 in string"}, /* overlong */
		{"\"\xed\xa0\x80\"", 0, 1,
		 "invalid UTF-8 in string"}, /* surrogate */
		{"\"\xf4\x90\x80\x80\"", 0, 1, "invalid UTF-8 in string"},
		{"\"\xe2\x82\"", 0, 1, "invalid UTF-8 in string"}, /* cut */
		{"\xef\xbb\xbf{}", 0, 0, "unexpected character"},  /* BOM */
		{"1 2", 0, 2, "text after the value"},
		{"{}x", 0, 2, "text after the value"},
		{"[1]]", 0, 3, "text after the value"},
		{"{}\0", 3, 2, "text after the value"},
		{"\"a\0b\"", 5, 2, "control character in string"},
	};
	struct json_err err;
	char out[64];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = bad[i].len ? bad[i].len : strlen(bad[i].in);

		err.what = NULL;
		if (parse(bad[i].in, len, out, sizeof(out), &err) != -1)
			fail_msg("accepted: %s", bad[i].in);
		if (strcmp(err.what, bad[i].what) != 0 ||
		    err.offset != bad[i].offset)
			fail_msg("%s: got \"%s\" at %zu, want \"%s\" at %zu",
				 bad[i].in, err.what, err.offset, bad[i].what,
				 bad[i].offset);
	}
}

static void test_prefixes(void **state)
{
	static const char doc[] = "{\"clients\":[{\"clientId\":\"d\\u00e9\","
				  "\"n\":[1.5e3,true,null,false]}]}";
	struct json_err err;

	(void)state;
	/* Exact-size copies, so a read past the end shows under ASan. */
	for (size_t n = 0; n < sizeof(doc) - 1; n++) {
		char copy[sizeof(doc)];

		memcpy(copy, doc, n);
		if (parse(copy, n, NULL, 0, &err) != -1)
			fail_msg("prefix of %zu octets accepted", n);
		assert_true(err.offset <= n);
	}
	assert_true(parse(doc, sizeof(doc) - 1, NULL, 0, &err) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compact), cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_decode),  cmocka_unit_test(test_depth),
		cmocka_unit_test(test_invalid), cmocka_unit_test(test_prefixes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
