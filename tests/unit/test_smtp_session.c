/* tests/unit/test_smtp_session: every tests/proto/<name>.smtp transcript run
 * against the real session through the in-memory transport, with input
 * given whole, in 7-octet pieces and one octet at a time (STYLE.md rule
 * 20-21); plus properties that a transcript cannot state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* system */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* project */
#include "smtp_script.c"
#include "testutil.h"

static int test_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_transcripts(void **state)
{
	static const size_t chunks[] = {0, 7, 1};
	char dir[4096], path[4200], err[4096];
	char *names[256];
	unsigned n = 0, failed = 0;
	struct dirent *de;
	DIR *d;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/tests/proto", testutil_srcdir());
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL && n < 256) {
		size_t len = strlen(de->d_name);

		if (len > 5 && strcmp(de->d_name + len - 5, ".smtp") == 0)
			names[n++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), test_cmp);
	assert_true(n >= 10);
	for (unsigned i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]);
		     k++) {
			if (smtp_script_run(path, chunks[k], err, sizeof(err)) <
			    0) {
				fprintf(stderr, "FAIL (chunk %zu) %s\n",
					chunks[k], err);
				failed++;
			}
		}
		free(names[i]);
	}
	printf("%u transcripts, %u failures\n", n, failed);
	assert_int_equal(failed, 0);
}

/* A client that pipelines many commands without reading gets every reply,
 * in order, and the buffered output stays bounded by flushing. */
static void test_pipeline_flood(void **state)
{
	struct smtp_fake f;
	char *in;
	size_t len = 0, lines = 0;
	const size_t n = 5000;

	(void)state;
	smtp_fake_init(&f, SMTP_MODE_MX, true);
	assert_int_equal(smtp_fake_start(&f), 0);
	in = malloc(n * 6 + 16);
	assert_non_null(in);
	for (size_t i = 0; i < n; i++) {
		memcpy(in + len, "NOOP\r\n", 6);
		len += 6;
	}
	smtp_fake_feed(&f, in, len, 0);
	for (size_t i = 0; i < f.out.len; i++)
		lines += buf_head(&f.out)[i] == '\n';
	assert_int_equal(lines, n + 1); /* and the greeting */
	assert_false(f.closed);
	free(in);
	smtp_fake_free(&f);
}

/* Replies to a pipelined group leave in one write: nothing is flushed
 * while a complete command is still waiting in the input (RFC 2920). */
static void test_pipeline_one_write(void **state)
{
	static const char grp[] = "MAIL FROM:<a@x.org>\r\nRCPT TO:<b@example."
				  "org>\r\nRCPT TO:<c@x.org>\r\nNOOP\r\n";
	struct smtp_fake f;
	unsigned before;

	(void)state;
	smtp_fake_init(&f, SMTP_MODE_MX, true);
	assert_int_equal(smtp_fake_start(&f), 0);
	smtp_fake_feed(&f, "EHLO a.org\r\n", 12, 0);
	before = f.n_writes;
	smtp_fake_feed(&f, grp, sizeof(grp) - 1, 0);
	assert_int_equal(f.n_writes, before + 1);
	/* The last command still partial: the first three flush together
	 * when the input runs dry, the fourth after its LF. */
	before = f.n_writes;
	smtp_fake_feed(&f, "RSET\r\nNOO", 9, 0);
	assert_int_equal(f.n_writes, before + 1);
	smtp_fake_feed(&f, "P\r\n", 3, 0);
	assert_int_equal(f.n_writes, before + 2);
	smtp_fake_free(&f);

	/* The same group one octet at a time: each reply leaves alone. */
	smtp_fake_init(&f, SMTP_MODE_MX, true);
	assert_int_equal(smtp_fake_start(&f), 0);
	smtp_fake_feed(&f, "EHLO a.org\r\n", 12, 1);
	before = f.n_writes;
	smtp_fake_feed(&f, grp, sizeof(grp) - 1, 1);
	assert_int_equal(f.n_writes, before + 4);
	smtp_fake_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transcripts),
		cmocka_unit_test(test_pipeline_flood),
		cmocka_unit_test(test_pipeline_one_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
