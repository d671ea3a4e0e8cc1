/* tests/unit/test_smtp_spool: the body store of smtp/smtp_spool on a real
 * directory: memory below the threshold, an unlinked 0600 file above it
 * (appends of any size read back the same), the header section finder,
 * the memory-only limit, and reset closing the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* system */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* project */
#include "smtp/smtp_spool.h"
#include "testutil.h"

static void test_header_len(void **state)
{
	static const struct {
		const char *in;
		size_t want;
		bool found;
	} cases[] = {
		{"A: b\r\n\r\nbody", 8, true},
		{"A: b\r\n c\r\n\r\n", 12, true},
		{"\r\nbody\r\n\r\nmore", 2, true},
		{"A: b\n\nbody", 6, true},
		{"A: b\r\nB: c\r\n", 12, false},
		{"A: b\r\n\r", 7, false},
		{"A: b\r\nx\r\r\n\r\n", 12, true},
		{"", 0, false},
	};
	bool found;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = smtp_spool_header_len((const uint8_t *)cases[i].in,
						 strlen(cases[i].in), &found);

		if (n != cases[i].want || found != cases[i].found)
			fail_msg("case %zu: got %zu/%d", i, n, found);
	}
}

/* A body of @len octets appended in pieces of @piece. */
static void test_fill(struct smtp_spool *sp, const uint8_t *body, size_t len,
		      size_t piece)
{
	for (size_t off = 0; off < len; off += piece) {
		size_t n = len - off < piece ? len - off : piece;

		assert_int_equal(smtp_spool_append(sp, body + off, n), 0);
	}
}

static void test_file_body(void **state)
{
	static const size_t pieces[] = {1, 7, 4096, 70000, 1 << 20};
	const size_t len = 300 * 1024;
	char *dir = testutil_mkdtemp("ringmail-spool-");
	uint8_t *body = malloc(len), *back = malloc(len);
	struct smtp_spool sp;
	struct stat st;
	const uint8_t *hdr;
	size_t hdr_len;

	(void)state;
	memcpy(body, "From: <a@x.org>\r\n\r\n", 19);
	for (size_t i = 19; i < len; i++)
		body[i] = (uint8_t)(i * 7 + i / 251);
	for (size_t k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++) {
		smtp_spool_init(&sp, dir, 100000, 0);
		test_fill(&sp, body, len, pieces[k]);
		assert_int_equal(smtp_spool_end(&sp), 0);
		assert_null(smtp_spool_mem(&sp));
		assert_true(smtp_spool_fd(&sp) >= 0);
		assert_int_equal(fstat(smtp_spool_fd(&sp), &st), 0);
		assert_int_equal(st.st_nlink, 0);
		assert_int_equal(st.st_mode & 0777, 0600);
		assert_int_equal(st.st_size, len);
		assert_int_equal(smtp_spool_size(&sp), len);
		hdr = smtp_spool_header(&sp, &hdr_len);
		assert_int_equal(hdr_len, 19);
		assert_memory_equal(hdr, body, 19);
		/* Read back in odd pieces, across every boundary. */
		for (size_t off = 0; off < len;) {
			ssize_t n = smtp_spool_read(&sp, off, back + off, 9999);

			assert_true(n > 0);
			off += (size_t)n;
		}
		assert_int_equal(smtp_spool_read(&sp, len, back, 10), 0);
		assert_memory_equal(back, body, len);
		/* The next body in the same spool starts in memory again. */
		smtp_spool_reset(&sp);
		assert_int_equal(smtp_spool_fd(&sp), -1);
		test_fill(&sp, body, 5000, 333);
		assert_int_equal(smtp_spool_end(&sp), 0);
		assert_non_null(smtp_spool_mem(&sp));
		assert_memory_equal(smtp_spool_mem(&sp), body, 5000);
		smtp_spool_free(&sp);
	}
	testutil_rmtree(dir);
	free(dir);
	free(body);
	free(back);
}

static void test_limits(void **state)
{
	char *dir = testutil_mkdtemp("ringmail-spool-");
	uint8_t big[4096];
	struct smtp_spool sp;

	(void)state;
	memset(big, 'x', sizeof(big));
	/* A header section that does not end in the memory part. */
	smtp_spool_init(&sp, dir, 1024, 0);
	test_fill(&sp, big, sizeof(big), 100);
	assert_int_equal(smtp_spool_append(&sp, "\r\n\r\nbody", 8), 0);
	assert_int_equal(smtp_spool_end(&sp), -EMSGSIZE);
	smtp_spool_free(&sp);
	/* Memory only: the limit holds, later appends are refused. */
	smtp_spool_init(&sp, NULL, 0, 5000);
	test_fill(&sp, big, sizeof(big), 4096);
	assert_int_equal(smtp_spool_append(&sp, big, 1000), -ENOBUFS);
	assert_int_equal(smtp_spool_append(&sp, big, 1), -ENOBUFS);
	assert_int_equal(smtp_spool_end(&sp), -ENOBUFS);
	smtp_spool_reset(&sp);
	test_fill(&sp, big, 4096, 4096);
	assert_int_equal(smtp_spool_end(&sp), 0);
	smtp_spool_free(&sp);
	/* A directory that is not there: the error comes at the switch. */
	smtp_spool_init(&sp, "/nonexistent/ringmail-spool", 1024, 0);
	assert_int_equal(smtp_spool_append(&sp, big, 1000), 0);
	assert_int_equal(smtp_spool_append(&sp, big, 1000), -ENOENT);
	smtp_spool_free(&sp);
	testutil_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_len),
		cmocka_unit_test(test_file_body),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
