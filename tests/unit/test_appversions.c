/* tests/unit/test_appversions: imap-proxy/imap_appversions. The built-in
 * default passes the schema and comes out as one line; a pretty-printed
 * file (chatmail's shape, 15 lines) is compacted byte for byte; each
 * schema rule Delta Chat core depends on refuses with the path that is
 * wrong (chatmail's test_appversions cases and more); files that are
 * missing, empty or too large are refused with the reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* system */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* project */
#include "imap-proxy/imap_appversions.h"

#define URL "https://github.com/deltachat/deltachat-android/x.apk"

static const char pretty[] = "{\n"
			     "  \"clients\": [\n"
			     "    {\n"
			     "      \"clientId\": \"deltachat\",\n"
			     "      \"sources\": [\n"
			     "        {\n"
			     "          \"sourceId\": \"gplay\",\n"
			     "          \"versionInteger\": 758,\n"
			     "          \"versionString\": \"2.62.0\",\n"
			     "          \"downloadUrl\": \"" URL "\"\n"
			     "        }\n"
			     "      ]\n"
			     "    }\n"
			     "  ]\n"
			     "}\n";
static const char compact[] =
	"{\"clients\":[{\"clientId\":\"deltachat\",\"sources\":[{\"sourceId\":"
	"\"gplay\",\"versionInteger\":758,\"versionString\":\"2.62.0\","
	"\"downloadUrl\":\"" URL "\"}]}]}";

static char *check_ok(const char *in)
{
	char err[256] = "", *out = NULL;

	if (imap_appversions_compact(in, strlen(in), &out, err, sizeof(err)) <
	    0)
		fail_msg("refused: %s\n%s", err, in);
	assert_non_null(out);
	return out;
}

/* @in refused, the reason containing @why. */
static void check_bad(const char *in, const char *why)
{
	char err[256] = "", *out = (char *)1;

	if (imap_appversions_compact(in, strlen(in), &out, err, sizeof(err)) !=
	    -1)
		fail_msg("accepted: %s", in);
	assert_null(out);
	if (strstr(err, why) == NULL)
		fail_msg("%s: reason \"%s\", want \"%s\"", in, err, why);
}

static void test_default(void **state)
{
	char err[256], *out;

	(void)state;
	assert_int_equal(imap_appversions_read(NULL, &out, err, sizeof(err)),
			 0);
	assert_null(strpbrk(out, "\r\n"));
	assert_true(strncmp(out, "{\"clients\":[{\"", 14) == 0);
	free(out);
	assert_int_equal(imap_appversions_read("", &out, err, sizeof(err)), 0);
	free(out);
}

static void test_pretty_file(void **state)
{
	char *out;

	(void)state;
	out = check_ok(pretty);
	assert_string_equal(out, compact);
	free(out);
	/* Key order is the file's; escapes in values are kept. */
	out = check_ok("{\"clients\":[{\"sources\":[{\"downloadUrl\":"
		       "\"https:\\/\\/download.delta.chat\\/x\","
		       "\"versionString\":\"1\\u00e9\",\"versionInteger\":0,"
		       "\"sourceId\":\"\\u0066droid\"}],\"clientId\":\"x\"}]}");
	assert_string_equal(out, "{\"clients\":[{\"sources\":[{\"downloadUrl\":"
				 "\"https:\\/\\/download.delta.chat\\/x\","
				 "\"versionString\":\"1\\u00e9\","
				 "\"versionInteger\":0,\"sourceId\":"
				 "\"\\u0066droid\"}],\"clientId\":\"x\"}]}");
	free(out);
}

/* The pretty document with @from replaced by @to (once). */
static char *with(const char *from, const char *to)
{
	static char buf[2048];
	const char *at = strstr(compact, from);

	assert_non_null(at);
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - compact), compact, to,
		 at + strlen(from));
	return buf;
}

static void test_schema(void **state)
{
	static const char src[] = "{\"sourceId\":\"gplay\",\"versionInteger\":"
				  "758,\"versionString\":\"2.62.0\","
				  "\"downloadUrl\":\"" URL "\"}";
	char *out, doc[2048];

	(void)state;
	/* versionInteger: a u32 as Delta Chat core reads it. */
	check_bad(with("758", "true"), "versionInteger: not a number");
	check_bad(with("758", "-1"), "clients[0].sources[0].versionInteger: "
				     "not an integer in 0..4294967295");
	check_bad(with("758", "4294967296"), "not an integer");
	check_bad(with("758", "99999999999"), "not an integer");
	check_bad(with("758", "\"754\""), "versionInteger: not a number");
	check_bad(with("758", "754.0"), "not an integer");
	check_bad(with("758", "7e2"), "not an integer");
	check_bad(with("758", "null"), "not a number");
	out = check_ok(with("758", "4294967295"));
	free(out);
	out = check_ok(with("758", "0"));
	free(out);
	/* Exact key sets. */
	check_bad(with("\"clientId\"", "\"clientIds\""),
		  "clients[0]: unexpected key \"clientIds\"");
	check_bad(with("\"sources\"", "\"sourcess\""),
		  "unexpected key \"sourcess\"");
	check_bad(with("\"versionString\":\"2.62.0\",", ""),
		  "clients[0].sources[0]: missing key \"versionString\"");
	check_bad(with("\"sourceId\":\"gplay\",",
		       "\"sourceId\":\"gplay\",\"sourceId\":\"x\","),
		  "key \"sourceId\" twice");
	check_bad(with("{\"clients\":", "{\"extra\":1,\"clients\":"),
		  "top level: unexpected key \"extra\"");
	/* Types, non-empty strings and lists. */
	check_bad("[]", "top level: not an object");
	check_bad("{\"clients\":[]}", "clients: empty list");
	check_bad("{\"clients\":{}}", "clients: not a list");
	check_bad(with("[{\"sourceId\"", "[]}]}"), "invalid JSON");
	check_bad(with("\"deltachat\"", "\"\""), "clientId: empty string");
	check_bad(with("\"deltachat\"", "7"), "clientId: not a string");
	check_bad(with("\"2.62.0\"", "\"\""), "versionString: empty string");
	check_bad(with("[{\"sourceId\"", "[1,{\"sourceId\""),
		  "sources[0]: not an object");
	/* URLs only where Delta Chat publishes releases. */
	check_bad(with(URL, "https://example.org/x.apk"),
		  "downloadUrl: not under https://github.com/deltachat/");
	check_bad(with(URL, "http://github.com/deltachat/x"), "not under");
	check_bad(with(URL, "https://github.com/deltachat"), "not under");
	check_bad(with(URL, "https://github.com/deltachat/\\u0000x"),
		  "not under");
	/* Ids unique: a second source or client with the same id. */
	snprintf(doc, sizeof(doc),
		 "{\"clients\":[{\"clientId\":\"d\",\"sources\":[%s,%s]}]}",
		 src, src);
	check_bad(doc, "clients[0].sources[1].sourceId: \"gplay\" twice");
	snprintf(doc, sizeof(doc),
		 "{\"clients\":[{\"clientId\":\"d\",\"sources\":[%s]},"
		 "{\"clientId\":\"\\u0064\",\"sources\":[%s]}]}",
		 src, src);
	check_bad(doc, "clients[1].clientId: \"d\" twice");
	/* Invalid JSON says where. */
	check_bad("{\"clients\":[}", "invalid JSON at offset 12");
}

static void test_files(void **state)
{
	char path[] = "/tmp/ringmail-appv-XXXXXX", err[256], *out;
	char *big;
	FILE *f;
	int fd;

	(void)state;
	assert_int_equal(imap_appversions_read("/nonexistent/appv.json", &out,
					       err, sizeof(err)),
			 -1);
	assert_string_equal(err, "No such file or directory");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	/* Empty. */
	assert_int_equal(imap_appversions_read(path, &out, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "invalid JSON at offset 0"));
	/* The pretty file. */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(pretty, f);
	fclose(f);
	assert_int_equal(imap_appversions_read(path, &out, err, sizeof(err)),
			 0);
	assert_string_equal(out, compact);
	free(out);
	/* Over the size bound (valid JSON padded with white space). */
	big = malloc(IMAP_APPVERSIONS_FILE_MAX + 1);
	assert_non_null(big);
	memset(big, ' ', IMAP_APPVERSIONS_FILE_MAX + 1);
	memcpy(big, compact, sizeof(compact) - 1);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(big, 1, IMAP_APPVERSIONS_FILE_MAX, f),
			 IMAP_APPVERSIONS_FILE_MAX);
	fclose(f);
	assert_int_equal(imap_appversions_read(path, &out, err, sizeof(err)),
			 0);
	free(out);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(big, 1, IMAP_APPVERSIONS_FILE_MAX + 1, f),
			 IMAP_APPVERSIONS_FILE_MAX + 1);
	fclose(f);
	assert_int_equal(imap_appversions_read(path, &out, err, sizeof(err)),
			 -1);
	assert_string_equal(err, "larger than 65536 octets");
	free(big);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default),
		cmocka_unit_test(test_pretty_file),
		cmocka_unit_test(test_schema),
		cmocka_unit_test(test_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
