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
#include <unistd.h>

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

/* Open descriptors of this process. */
static unsigned test_nfds(void)
{
	unsigned n = 0;
	DIR *d = opendir("/proc/self/fd");

	assert_non_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* Entries of @dir besides . and .. */
static unsigned test_dir_entries(const char *dir)
{
	unsigned n = 0;
	struct dirent *de;
	DIR *d = opendir(dir);

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

/* One MX transaction carrying @msg (already dot-stuffed, without the
 * final "."), fed in pieces of @chunk. */
static void test_send(struct smtp_fake *f, const char *msg, size_t chunk)
{
	static const char env[] = "EHLO a.org\r\nMAIL FROM:<a@x.org>\r\n"
				  "RCPT TO:<b@example.org>\r\nDATA\r\n";

	smtp_fake_feed(f, env, sizeof(env) - 1, chunk);
	smtp_fake_feed(f, msg, strlen(msg), chunk);
	smtp_fake_feed(f, ".\r\n", 3, chunk);
}

/* Bodies over spool_mem_max go through an unlinked file and arrive as
 * sent (unstuffed); smaller ones stay in memory; a spooled body whose
 * header section does not end within spool_mem_max gets 552 5.3.4;
 * nothing is left open or on disk afterwards. */
static void test_spooled_body(void **state)
{
	static const size_t chunks[] = {0, 7, 1};
	char *dir = testutil_mkdtemp("ringmail-spool-");
	char *wire = malloc(16384), *want = malloc(16384), *hdr = malloc(8192);
	size_t w = 0, o = 0;
	unsigned fds = test_nfds();
	struct smtp_fake f;

	(void)state;
	assert_non_null(dir);
	w = (size_t)snprintf(wire, 16384,
			     "From: <a@x.org>\r\nSubject: s\r\n"
			     "\r\n");
	memcpy(want, wire, w);
	o = w;
	for (int i = 0; i < 100; i++) {
		w += (size_t)snprintf(wire + w, 16384 - w,
				      "..dot %03d and a line of body text\r\n",
				      i);
		o += (size_t)snprintf(want + o, 16384 - o,
				      ".dot %03d and a line of body text\r\n",
				      i);
	}
	for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
		smtp_fake_init(&f, SMTP_MODE_MX, true);
		f.cfg.spool_dir = dir;
		f.cfg.spool_mem_max = 1024;
		assert_int_equal(smtp_fake_start(&f), 0);
		test_send(&f, wire, chunks[k]);
		assert_int_equal(f.n_deliveries, 1);
		assert_true(f.last_spooled);
		assert_int_equal(f.last_msg.len, o);
		assert_memory_equal(buf_head(&f.last_msg), want, o);
		/* The file is unlinked from the start. */
		assert_int_equal(test_dir_entries(dir), 0);
		/* A small one in the same session stays in memory. */
		test_send(&f, "From: <a@x.org>\r\nSubject: t\r\n\r\nhi\r\n",
			  chunks[k]);
		assert_int_equal(f.n_deliveries, 2);
		assert_false(f.last_spooled);
		assert_int_equal(f.last_msg.len, 35);
		smtp_fake_free(&f);
		assert_int_equal(test_nfds(), fds);
	}

	/* 2000 octets of header fields before the empty line. */
	o = 0;
	for (int i = 0; i < 50; i++)
		o += (size_t)snprintf(hdr + o, 8192 - o,
				      "X-Pad-%02d: 0123456789012345678\r\n", i);
	snprintf(hdr + o, 8192 - o, "%s", wire);
	smtp_fake_init(&f, SMTP_MODE_MX, true);
	f.cfg.spool_dir = dir;
	f.cfg.spool_mem_max = 1024;
	assert_int_equal(smtp_fake_start(&f), 0);
	test_send(&f, hdr, 0);
	assert_int_equal(f.n_deliveries, 0);
	assert_non_null(memmem(buf_head(&f.out), f.out.len,
			       "552 5.3.4 Message header size exceeds limit",
			       43));
	/* The same with the whole message in memory is fine. */
	f.cfg.spool_mem_max = 0;
	smtp_fake_free(&f);
	smtp_fake_init(&f, SMTP_MODE_MX, true);
	f.cfg.spool_dir = dir;
	assert_int_equal(smtp_fake_start(&f), 0);
	test_send(&f, hdr, 0);
	assert_int_equal(f.n_deliveries, 1);
	assert_false(f.last_spooled);
	smtp_fake_free(&f);
	assert_int_equal(test_nfds(), fds);
	assert_int_equal(test_dir_entries(dir), 0);
	testutil_rmtree(dir);
	free(dir);
	free(wire);
	free(want);
	free(hdr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transcripts),
		cmocka_unit_test(test_pipeline_flood),
		cmocka_unit_test(test_pipeline_one_write),
		cmocka_unit_test(test_spooled_body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
