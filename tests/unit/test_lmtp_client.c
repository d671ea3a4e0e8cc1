/* tests/unit/test_lmtp_client: the LMTP client against a real private
 * Dovecot started from the generated config, on each loop backend:
 * delivery to maildir with exact bytes, several recipients, unknown users,
 * quota, Dovecot down, connection reuse, concurrency, abort; plus the
 * ringmail-only IMAP login (master user over loopback) and its refusal.
 * Skips (77) only when the dovecot binary is missing. As root, mail is
 * owned by "nobody"; otherwise everything runs as the current user. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "core/arena.h"
#include "core/conn.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/dovecot/dovecot_conf.h"
#include "core/dovecot/dovecot_run.h"
#include "smtp/lmtp_client.h"
#include "testutil.h"

#define TEST_DEADLINE_MS 30000
#define MAX_RCPTS        4

static char *test_dir;
static char base_dir[512], mail_dir[512], conf_path[512], log_path[512];
static char lmtp_path[600];
static char secret[DOVECOT_SECRET_LEN + 1];
static struct dovecot_settings dset;
static char instance[32];
static char *fake_dir;

/* ---- Dovecot ---- */

static unsigned free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned port;

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static int group_setup(void **state)
{
	struct passwd *pw;

	(void)state;
	if (getenv("RINGMAIL_TEST_LOG") == NULL)
		log_set_level(LOG_LV_WARN);
	test_dir = testutil_mkdtemp("ringmail-lmtp");
	assert_non_null(test_dir);
	/* Dovecot's unprivileged processes must reach base_dir. */
	assert_int_equal(chmod(test_dir, 0755), 0);
	snprintf(base_dir, sizeof(base_dir), "%s/run", test_dir);
	snprintf(mail_dir, sizeof(mail_dir), "%s/mail", test_dir);
	snprintf(conf_path, sizeof(conf_path), "%s/dovecot.conf", test_dir);
	snprintf(log_path, sizeof(log_path), "%s/dovecot.log", test_dir);
	assert_int_equal(mkdir(mail_dir, 0755), 0);

	dovecot_settings_init(&dset);
	dset.base_dir = base_dir;
	dset.mailboxes_dir = mail_dir;
	dset.log_path = log_path;
	dset.imap_port = free_port();
	dset.max_mailbox_size_mb = 1;   /* the quota test fills it */
	dset.max_message_size = 900000; /* quota_max_mail_size */
	dset.imap_hibernate_timeout_ms = 1000;
	dset.max_imap_connections = 100;
	/* unique, so parallel tests' Dovecots never look alike */
	snprintf(instance, sizeof(instance), "rmtest%ld", (long)getpid());
	dset.instance_name = instance;
	if (geteuid() == 0) {
		dset.mail_user = "nobody";
		pw = getpwnam("nobody");
		assert_non_null(pw);
		assert_int_equal(chown(mail_dir, pw->pw_uid, pw->pw_gid), 0);
	}
	assert_int_equal(dovecot_conf_write(&dset, conf_path), 0);
	assert_int_equal(dovecot_secret_new(secret), 0);
	assert_int_equal(dovecot_master_users_write(&dset, secret), 0);
	assert_int_equal(
		dovecot_lmtp_socket_path(&dset, lmtp_path, sizeof(lmtp_path)),
		0);
	assert_int_equal(dovecot_run_start(&dset, conf_path, 20000), 0);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	assert_int_equal(dovecot_run_stop(base_dir, 10000), 0);
	assert_int_equal(dovecot_run_pid(base_dir), -1);
	if (getenv("RINGMAIL_TEST_KEEP") == NULL)
		testutil_rmtree(test_dir);
	free(test_dir);
	return 0;
}

/* ---- loop and pool ---- */

struct fx {
	struct loop *loop;
	struct lmtp_pool *pool;
	enum loop_backend backend;
};

#define RUN_UNTIL(f, cond)                                              \
	do {                                                            \
		uint64_t start_ = loop_now_ms((f)->loop);               \
		while (!(cond)) {                                       \
			assert_true(loop_run_once((f)->loop, 50) >= 0); \
			if (loop_now_ms((f)->loop) - start_ >           \
			    TEST_DEADLINE_MS)                           \
				fail_msg("timeout waiting for " #cond); \
		}                                                       \
	} while (0)

static void fx_setup(struct fx *f, enum loop_backend b, uint32_t body_high,
		     unsigned max_conns)
{
	struct loop_opts o = {.backend = b};
	struct lmtp_settings s = {
		.socket_path = lmtp_path,
		.body_high = body_high,
		.max_conns = max_conns,
	};
	const char *prof = getenv("RINGMAIL_URING_PROFILE");

	memset(f, 0, sizeof(*f));
	o.uring_debian12 = prof != NULL && strcmp(prof, "debian12") == 0;
	assert_int_equal(loop_new(&o, &f->loop), 0);
	f->backend = b;
	f->pool = lmtp_pool_new(f->loop, &s);
	assert_non_null(f->pool);
}

static void fx_teardown(struct fx *f)
{
	lmtp_pool_free(&f->pool);
	RUN_UNTIL(f, loop_conn_count(f->loop) == 0);
	loop_free(&f->loop);
}

/* ---- one delivery ---- */

struct dlv {
	bool done;
	bool writable;
	unsigned n;
	struct lmtp_result res[MAX_RCPTS];
	struct lmtp_txn *t;
	uint64_t begin_ms, done_ms;
};

static void dlv_done(struct lmtp_txn *t, const struct lmtp_result *r,
		     unsigned n, void *arg)
{
	struct dlv *d = arg;

	assert_ptr_equal(t, d->t);
	assert_true(n <= MAX_RCPTS);
	memcpy(d->res, r, n * sizeof(*r));
	d->n = n;
	d->done = true;
	d->t = NULL;
}

static void dlv_writable(struct lmtp_txn *t, void *arg)
{
	struct dlv *d = arg;

	assert_ptr_equal(t, d->t);
	d->writable = true;
}

/* Begin a transaction; the body is fed by dlv_feed. */
static void dlv_begin(struct fx *f, struct dlv *d, struct arena *a,
		      const char *from, const char *const *rcpts, unsigned n,
		      int64_t size)
{
	memset(d, 0, sizeof(*d));
	d->begin_ms = loop_now_ms(f->loop);
	assert_int_equal(lmtp_txn_begin(f->pool, a, from, rcpts, n, size,
					dlv_done, d, &d->t),
			 0);
	lmtp_txn_set_writable(d->t, dlv_writable);
}

/* Feed @body in @chunk-byte pieces, respecting backpressure, finish. */
static void dlv_feed(struct fx *f, struct dlv *d, const char *body, size_t len,
		     size_t chunk)
{
	size_t off = 0, n;

	while (off < len && d->t != NULL && !lmtp_txn_failed(d->t)) {
		n = len - off < chunk ? len - off : chunk;
		assert_int_equal(lmtp_txn_write(d->t, body + off, n), 0);
		off += n;
		if (lmtp_txn_full(d->t)) {
			d->writable = false;
			RUN_UNTIL(f, d->writable || d->done);
		}
	}
	if (d->t != NULL)
		lmtp_txn_finish(d->t);
}

static void deliver(struct fx *f, struct dlv *d, const char *from,
		    const char *const *rcpts, unsigned n, const char *body,
		    size_t len, size_t chunk)
{
	dlv_begin(f, d, NULL, from, rcpts, n, (int64_t)len);
	dlv_feed(f, d, body, len, chunk);
	RUN_UNTIL(f, d->done);
	d->done_ms = loop_now_ms(f->loop);
	assert_int_equal(d->n, n);
}

/* ---- maildir helpers ---- */

/* Number of files in <mail>/<addr>/<sub>/; -1 if the dir is missing. */
static int maildir_count(const char *addr, const char *sub)
{
	char path[1024];
	struct dirent *e;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s/%s", mail_dir, addr, sub);
	dir = opendir(path);
	if (dir == NULL)
		return -1;
	while ((e = readdir(dir)) != NULL) {
		if (e->d_name[0] != '.')
			n++;
	}
	closedir(dir);
	return n;
}

/* The only message in <addr>/new/, malloc'd; its length in *len_r. */
static char *maildir_only(const char *addr, size_t *len_r)
{
	char dpath[1024], path[2048];
	struct dirent *e;
	struct stat st;
	char *data;
	DIR *dir;
	int fd;

	assert_int_equal(maildir_count(addr, "new"), 1);
	snprintf(dpath, sizeof(dpath), "%s/%s/new", mail_dir, addr);
	dir = opendir(dpath);
	assert_non_null(dir);
	while ((e = readdir(dir)) != NULL && e->d_name[0] == '.')
		;
	assert_non_null(e);
	snprintf(path, sizeof(path), "%s/%s", dpath, e->d_name);
	closedir(dir);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	data = malloc((size_t)st.st_size + 1);
	assert_non_null(data);
	assert_int_equal(read(fd, data, (size_t)st.st_size), st.st_size);
	data[st.st_size] = '\0';
	close(fd);
	*len_r = (size_t)st.st_size;
	return data;
}

static bool maildir_exists(const char *addr)
{
	char path[1024];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", mail_dir, addr);
	return stat(path, &st) == 0;
}

/* Processes whose title is exactly "dovecot-<instance>/<name>". */
static int proc_count(const char *name)
{
	char want[128], path[300], buf[256];
	struct dirent *e;
	DIR *dir = opendir("/proc");
	ssize_t n;
	int fd, count = 0;

	assert_non_null(dir);
	snprintf(want, sizeof(want), "dovecot-%s/%s", dset.instance_name, name);
	while ((e = readdir(dir)) != NULL) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		if (strcmp(buf, want) == 0)
			count++;
	}
	closedir(dir);
	return count;
}

/* Lines in the Dovecot log containing @needle. */
static int dovecot_log_count(const char *needle)
{
	FILE *fp = fopen(log_path, "r");
	char line[4096];
	int n = 0;

	if (fp == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (strstr(line, needle) != NULL)
			n++;
	}
	fclose(fp);
	return n;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void addr_for(char *buf, size_t size, const char *what,
		     enum loop_backend b)
{
	snprintf(buf, size, "%s-%s@example.org", what,
		 b == LOOP_BACKEND_URING ? "uring" : "epoll");
}

/* ---- tests ---- */

/* Dot-stuffed lines, bare LF, a last line without newline: Dovecot stores
 * exactly the message (LF line ends in maildir), with only its own
 * Return-Path and Delivered-To on top, and no Received header. */
static void test_deliver_one(void **state)
{
	static const char body[] = "From: a@example.org\r\n"
				   "Subject: dots\r\n"
				   "\r\n"
				   ".hidden\r\n"
				   "..two dots\r\n"
				   ".\r\n"
				   "bare LF line\n"
				   "\r\n"
				   "CR inside\rline\r\n"
				   "last line without newline";
	static const char want_body[] = "From: a@example.org\n"
					"Subject: dots\n"
					"\n"
					".hidden\n"
					"..two dots\n"
					".\n"
					"bare LF line\n"
					"\n"
					"CR inside\rline\n"
					"last line without newline\n";
	static const size_t chunks[] = {1, 3, 7, 4096};
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);
	char addr[128], want[1024];
	const char *rcpt[1] = {addr};
	struct dlv d;
	struct fx f;
	size_t len;
	char *got;

	(void)state;
	for (int i = 0; i < nb; i++) {
		for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]);
		     c++) {
			char what[32];

			snprintf(what, sizeof(what), "one%zu", chunks[c]);
			addr_for(addr, sizeof(addr), what, bs[i]);
			fx_setup(&f, bs[i], 0, 0);
			deliver(&f, &d, "sender@example.org", rcpt, 1, body,
				sizeof(body) - 1, chunks[c]);
			assert_int_equal(d.res[0].code, 250);
			assert_string_equal(d.res[0].status, "2.0.0");
			assert_non_null(strstr(d.res[0].text, "Saved"));
			fx_teardown(&f);
			got = maildir_only(addr, &len);
			snprintf(want, sizeof(want),
				 "Return-Path: <sender@example.org>\n"
				 "Delivered-To: %s\n%s",
				 addr, want_body);
			if (len != strlen(want) || memcmp(got, want, len) != 0)
				fail_msg("stored message differs:\n%s\n"
					 "want:\n%s",
					 got, want);
			assert_null(strstr(got, "Received:"));
			free(got);
		}
	}
}

/* An empty body and one that ends in CRLF get exactly one line end. */
static void test_deliver_edges(void **state)
{
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);
	char addr[128];
	const char *rcpt[1] = {addr};
	struct dlv d;
	struct fx f;
	size_t len;
	char *got;

	(void)state;
	for (int i = 0; i < nb; i++) {
		addr_for(addr, sizeof(addr), "empty", bs[i]);
		fx_setup(&f, bs[i], 0, 0);
		deliver(&f, &d, "", rcpt, 1, "", 0, 16);
		assert_int_equal(d.res[0].code, 250);
		got = maildir_only(addr, &len);
		/* null sender: Return-Path <> */
		assert_non_null(strstr(got, "Return-Path: <>\n"));
		free(got);

		addr_for(addr, sizeof(addr), "crlfend", bs[i]);
		deliver(&f, &d, "s@example.org", rcpt, 1, "A: b\r\n\r\nx\r\n",
			11, 5);
		assert_int_equal(d.res[0].code, 250);
		got = maildir_only(addr, &len);
		assert_non_null(strstr(got, "\nA: b\n\nx\n"));
		assert_int_equal(got[len - 1], '\n');
		assert_int_not_equal(got[len - 2], '\n');
		free(got);
		fx_teardown(&f);
	}
}

/* Two recipients in one transaction: one reply each, both stored. */
static void test_two_rcpts(void **state)
{
	static const char body[] = "Subject: two\r\n\r\nhello both\r\n";
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);
	char a1[128], a2[128];
	const char *rcpts[2] = {a1, a2};
	struct dlv d;
	struct fx f;
	size_t len;
	char *got;

	(void)state;
	for (int i = 0; i < nb; i++) {
		addr_for(a1, sizeof(a1), "twoa", bs[i]);
		addr_for(a2, sizeof(a2), "twob", bs[i]);
		fx_setup(&f, bs[i], 0, 0);
		deliver(&f, &d, "s@example.org", rcpts, 2, body,
			sizeof(body) - 1, 64);
		assert_int_equal(d.res[0].code, 250);
		assert_int_equal(d.res[1].code, 250);
		assert_non_null(strstr(d.res[0].text, a1));
		assert_non_null(strstr(d.res[1].text, a2));
		fx_teardown(&f);
		for (int k = 0; k < 2; k++) {
			got = maildir_only(rcpts[k], &len);
			assert_non_null(strstr(got, "\nhello both\n"));
			free(got);
		}
	}
}

/* With the static userdb (allow_all_users) every address exists: Dovecot
 * accepts and creates the maildir. ringmail must decide who is a user
 * before LMTP (chatmail rejected unknown users at RCPT instead). */
static void test_unknown_user(void **state)
{
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);
	char addr[128];
	const char *rcpt[1] = {addr};
	struct dlv d;
	struct fx f;

	(void)state;
	for (int i = 0; i < nb; i++) {
		addr_for(addr, sizeof(addr), "nosuchuser", bs[i]);
		assert_false(maildir_exists(addr));
		fx_setup(&f, bs[i], 0, 0);
		deliver(&f, &d, "s@example.org", rcpt, 1, "x\r\n", 3, 3);
		assert_int_equal(d.res[0].code, 250);
		fx_teardown(&f);
		assert_true(maildir_exists(addr));
		assert_int_equal(maildir_count(addr, "new"), 1);
	}
}

/* 1 MiB quota: 600 KB fits, the next 600 KB gets Dovecot's 552 5.2.2 for
 * that recipient only, with Dovecot's own text; the other recipient in the
 * same transaction still gets it. The body streams with a small
 * high-water mark so backpressure is exercised. */
static void test_quota(void **state)
{
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);
	char q[128], other[128];
	const char *r1[1] = {q};
	const char *r2[2] = {q, other};
	size_t len = 600 * 1000, off = 0;
	char *body = malloc(len);
	struct dlv d;
	struct fx f;

	(void)state;
	assert_non_null(body);
	off = (size_t)snprintf(body, len, "Subject: big\r\n\r\n");
	while (off + 78 <= len) {
		memset(body + off, 'q', 76);
		memcpy(body + off + 76, "\r\n", 2);
		off += 78;
	}
	len = off;
	for (int i = 0; i < nb; i++) {
		addr_for(q, sizeof(q), "quota", bs[i]);
		addr_for(other, sizeof(other), "quotaother", bs[i]);
		fx_setup(&f, bs[i], 16 * 1024, 0);
		deliver(&f, &d, "s@example.org", r1, 1, body, len, 65536);
		assert_int_equal(d.res[0].code, 250);
		deliver(&f, &d, "s@example.org", r2, 2, body, len, 65536);
		assert_int_equal(d.res[0].code, 552);
		assert_string_equal(d.res[0].status, "5.2.2");
		assert_non_null(
			strstr(d.res[0].text,
			       "Quota exceeded (mailbox for user is full)"));
		assert_int_equal(d.res[1].code, 250);
		fx_teardown(&f);
		assert_int_equal(maildir_count(q, "new"), 1);
		assert_int_equal(maildir_count(other, "new"), 1);
	}
	free(body);
}

/* 100 sequential deliveries share one pooled connection: the client saw
 * one LHLO and Dovecot logged one new LMTP connection. */
static void test_reuse(void **state)
{
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);
	char addr[128];
	const char *rcpt[1] = {addr};
	struct lmtp_stats st;
	struct arena a;
	uint64_t total_us, max_us, t0, t1;
	struct dlv d;
	struct fx f;
	int before;

	(void)state;
	for (int i = 0; i < nb; i++) {
		addr_for(addr, sizeof(addr), "reuse", bs[i]);
		fx_setup(&f, bs[i], 0, 0);
		before = dovecot_log_count(": Connect from local");
		arena_init(&a);
		max_us = 0;
		total_us = now_us();
		for (int k = 0; k < 100; k++) {
			t0 = now_us();
			/* transactions from the caller's arena */
			dlv_begin(&f, &d, &a, "s@example.org", rcpt, 1, -1);
			dlv_feed(&f, &d, "Subject: r\r\n\r\nreuse\r\n", 21,
				 4096);
			RUN_UNTIL(&f, d.done);
			assert_int_equal(d.res[0].code, 250);
			arena_reset(&a);
			t1 = now_us() - t0;
			if (t1 > max_us)
				max_us = t1;
		}
		total_us = now_us() - total_us;
		lmtp_pool_stats(f.pool, &st);
		assert_int_equal(st.connects, 1);
		assert_int_equal(st.txns, 100);
		assert_int_equal(st.txns_reused, 99);
		assert_int_equal(st.rcpt_ok, 100);
		assert_int_equal(st.conns, 1);
		assert_int_equal(st.conns_idle, 1);
		fx_teardown(&f);
		arena_free(&a);
		assert_int_equal(maildir_count(addr, "new"), 100);
		assert_int_equal(
			dovecot_log_count(": Connect from local") - before, 1);
		print_message("lmtp reuse backend=%s: 100 deliveries in %llu "
			      "us (mean %llu us, max %llu us)\n",
			      loop_backend_name(bs[i]),
			      (unsigned long long)total_us,
			      (unsigned long long)total_us / 100,
			      (unsigned long long)max_us);
	}
}

/* 20 transactions at once on a pool of at most 3 connections: all are
 * delivered, the pool never opens more than 3. */
static void test_concurrent(void **state)
{
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);
	char addr[128];
	const char *rcpt[1] = {addr};
	struct lmtp_stats st;
	struct dlv d[20];
	struct fx f;
	bool all;

	(void)state;
	for (int i = 0; i < nb; i++) {
		addr_for(addr, sizeof(addr), "conc", bs[i]);
		fx_setup(&f, bs[i], 0, 3);
		for (int k = 0; k < 20; k++) {
			dlv_begin(&f, &d[k], NULL, "s@example.org", rcpt, 1,
				  -1);
			assert_int_equal(
				lmtp_txn_write(d[k].t,
					       "Subject: c\r\n\r\nc\r\n", 17),
				0);
			lmtp_txn_finish(d[k].t);
		}
		lmtp_pool_stats(f.pool, &st);
		assert_true(st.conns <= 3);
		do {
			all = true;
			for (int k = 0; k < 20; k++)
				all = all && d[k].done;
			lmtp_pool_stats(f.pool, &st);
			assert_true(st.conns <= 3);
			if (!all)
				assert_true(loop_run_once(f.loop, 50) >= 0);
		} while (!all);
		for (int k = 0; k < 20; k++)
			assert_int_equal(d[k].res[0].code, 250);
		lmtp_pool_stats(f.pool, &st);
		/* the first connections may serve all before the third's
		 * LHLO completes */
		assert_true(st.connects >= 1 && st.connects <= 3);
		assert_int_equal(st.txns, 20);
		fx_teardown(&f);
		assert_int_equal(maildir_count(addr, "new"), 20);
	}
}

/* An aborted transaction delivers nothing (its connection is dropped
 * mid-body) and the pool goes on with the next one. */
static void test_abort(void **state)
{
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);
	char a1[128], a2[128];
	const char *r1[1] = {a1};
	const char *r2[1] = {a2};
	struct lmtp_stats st;
	struct dlv d;
	struct fx f;

	(void)state;
	for (int i = 0; i < nb; i++) {
		addr_for(a1, sizeof(a1), "aborted", bs[i]);
		addr_for(a2, sizeof(a2), "afterabort", bs[i]);
		fx_setup(&f, bs[i], 0, 0);
		/* queued, nothing sent yet */
		dlv_begin(&f, &d, NULL, "s@example.org", r1, 1, -1);
		lmtp_txn_abort(&d.t);
		assert_null(d.t);
		/* mid-body on a live connection */
		dlv_begin(&f, &d, NULL, "s@example.org", r1, 1, -1);
		assert_int_equal(lmtp_txn_write(d.t, "Subject: x\r\n\r\n", 14),
				 0);
		for (int k = 0; k < 20; k++)
			assert_true(loop_run_once(f.loop, 5) >= 0);
		assert_int_equal(lmtp_txn_write(d.t, "partial\r\n", 9), 0);
		lmtp_txn_abort(&d.t);
		deliver(&f, &d, "s@example.org", r2, 1, "ok\r\n", 4, 4);
		assert_int_equal(d.res[0].code, 250);
		lmtp_pool_stats(f.pool, &st);
		assert_int_equal(st.txns, 1);
		fx_teardown(&f);
		assert_true(maildir_count(a1, "new") <= 0);
		assert_int_equal(maildir_count(a2, "new"), 1);
	}
}

/* ---- a scripted LMTP server, for what Dovecot never does ---- */

struct fake_script {
	bool pipelining, size;
	unsigned mail_code;       /* 0: 250 */
	unsigned rcpt_codes[4];   /* 0: 250 */
	unsigned data_code;       /* 0: 354 */
	unsigned dot_codes[4];    /* per accepted recipient, 0: 250 */
	const char *bad_after;    /* reply garbage to this command */
	const char *silent_after; /* never answer this command */
	const char *close_after;  /* close instead of answering ("." too) */
};

struct fake {
	struct loop *loop;
	struct loop_listener *li;
	int lfd;
	char path[300];
	const struct fake_script *sc;
	struct conn *c;
	bool data_mode, mute, mail_ok;
	unsigned accepted, rcpts, accepts, max_cmds_per_read;
	struct buf body; /* the last transaction's body as on the wire */
	struct buf cmds; /* every command line received, LF-separated */
};

static void fake_reply(struct fake *fk, const char *s)
{
	assert_int_equal(conn_write(fk->c, s, strlen(s)), 0);
}

static void fake_code(struct fake *fk, unsigned code)
{
	char line[128];

	switch (code / 100) {
	case 2:
		snprintf(line, sizeof(line), "%u 2.0.0 fake ok\r\n", code);
		break;
	case 3:
		snprintf(line, sizeof(line), "%u go ahead\r\n", code);
		break;
	default:
		snprintf(line, sizeof(line), "%u %u.3.0 fake says no\r\n", code,
			 code / 100);
		break;
	}
	fake_reply(fk, line);
}

/* React to the command @cmd; false when the conn was closed. */
static bool fake_command(struct fake *fk, const char *cmd)
{
	const struct fake_script *sc = fk->sc;
	unsigned code;

	assert_int_equal(buf_append(&fk->cmds, cmd, strlen(cmd)), 0);
	assert_int_equal(buf_append(&fk->cmds, "\n", 1), 0);
	if (sc->close_after != NULL &&
	    strncmp(cmd, sc->close_after, strlen(sc->close_after)) == 0) {
		conn_close(fk->c, false);
		return false;
	}
	if (sc->silent_after != NULL &&
	    strncmp(cmd, sc->silent_after, strlen(sc->silent_after)) == 0)
		fk->mute = true;
	if (fk->mute)
		return true; /* from here on, never another reply */
	if (sc->bad_after != NULL &&
	    strncmp(cmd, sc->bad_after, strlen(sc->bad_after)) == 0) {
		fake_reply(fk, "this is no reply\r\n");
		return true;
	}
	if (strcmp(cmd, ".") == 0)
		return true; /* the caller sends the per-recipient replies */
	if (strncmp(cmd, "LHLO ", 5) == 0) {
		fake_reply(fk, "250-fake\r\n250-8BITMIME\r\n");
		if (sc->size)
			fake_reply(fk, "250-SIZE 1000000\r\n");
		if (sc->pipelining)
			fake_reply(fk, "250-PIPELINING\r\n");
		fake_reply(fk, "250 ENHANCEDSTATUSCODES\r\n");
	} else if (strncmp(cmd, "MAIL FROM:", 10) == 0) {
		fk->rcpts = fk->accepted = 0;
		code = sc->mail_code != 0 ? sc->mail_code : 250;
		fk->mail_ok = code == 250;
		fake_code(fk, code);
	} else if (!fk->mail_ok &&
		   (strncmp(cmd, "RCPT", 4) == 0 || strcmp(cmd, "DATA") == 0)) {
		fake_reply(fk, "503 5.5.1 MAIL needed first\r\n");
	} else if (strncmp(cmd, "RCPT TO:", 8) == 0) {
		code = fk->rcpts < 4 ? sc->rcpt_codes[fk->rcpts] : 0;
		fk->rcpts++;
		if (code == 0 || code / 100 == 2)
			fk->accepted++;
		fake_code(fk, code != 0 ? code : 250);
	} else if (strcmp(cmd, "DATA") == 0) {
		code = sc->data_code != 0 ? sc->data_code : 354;
		if (fk->accepted == 0)
			code = 554;
		fake_code(fk, code);
		if (code == 354) {
			fk->data_mode = true;
			buf_clear(&fk->body);
		}
	} else if (strcmp(cmd, "RSET") == 0) {
		fk->rcpts = fk->accepted = 0;
		fk->mail_ok = false;
		fake_code(fk, 250);
	} else {
		fake_reply(fk, "500 5.5.2 unknown command\r\n");
	}
	return true;
}

static void fake_event(struct conn *c, enum conn_ev ev, void *arg)
{
	struct fake *fk = arg;
	struct buf *in;
	uint8_t *p, *nl, *end;
	unsigned cmds = 0;
	char line[1100];
	size_t n;

	if (ev == CONN_EV_CLOSED) {
		fk->c = NULL;
		return;
	}
	if (ev != CONN_EV_DATA)
		return;
	in = conn_input(c);
	while (in->len > 0 && fk->c != NULL) {
		p = buf_head(in);
		if (fk->data_mode) {
			/* body up to CRLF "." CRLF; an empty body is ".\r\n" */
			if (in->len >= 3 && fk->body.len == 0 &&
			    memcmp(p, ".\r\n", 3) == 0) {
				n = 0;
				end = p;
			} else {
				end = memmem(p, in->len, "\r\n.\r\n", 5);
				if (end == NULL)
					break; /* wait for more (tests are small) */
				n = (size_t)(end - p) + 2;
				end += 2;
			}
			assert_int_equal(buf_append(&fk->body, p, n), 0);
			conn_consume(c, (size_t)(end - p) + 3);
			fk->data_mode = false;
			fk->mail_ok = false;
			if (!fake_command(fk, ".") || fk->c == NULL)
				return;
			for (unsigned i = 0; i < fk->accepted; i++) {
				unsigned code =
					i < 4 ? fk->sc->dot_codes[i] : 0;

				if (fk->mute)
					break;
				fake_code(fk, code != 0 ? code : 250);
			}
			continue;
		}
		nl = memchr(p, '\n', in->len);
		if (nl == NULL)
			break;
		n = (size_t)(nl - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		assert_true(n < sizeof(line));
		memcpy(line, p, n);
		line[n] = '\0';
		conn_consume(c, (size_t)(nl - p) + 1);
		cmds++;
		if (!fake_command(fk, line))
			return;
	}
	if (cmds > fk->max_cmds_per_read)
		fk->max_cmds_per_read = cmds;
}

static void fake_accept(struct loop_listener *li, int fd,
			const struct sockaddr *peer, socklen_t peer_len,
			void *arg)
{
	struct fake *fk = arg;

	(void)li;
	(void)peer;
	(void)peer_len;
	assert_null(fk->c);
	fk->accepts++;
	fk->data_mode = false;
	fk->c = conn_new(fk->loop, fd, NULL, 0, fake_event, fk);
	assert_non_null(fk->c);
	fake_reply(fk, "220 fake LMTP ready\r\n");
}

/* A loop, a fake server on a unix socket following @sc, and a pool. */
static void fake_setup(struct fx *f, struct fake *fk, enum loop_backend b,
		       const struct fake_script *sc, uint64_t reply_ms)
{
	struct loop_opts o = {.backend = b};
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct lmtp_settings s = {.reply_timeout_ms = reply_ms,
				  .data_timeout_ms = reply_ms};
	const char *prof = getenv("RINGMAIL_URING_PROFILE");
	static unsigned seq;

	memset(f, 0, sizeof(*f));
	memset(fk, 0, sizeof(*fk));
	o.uring_debian12 = prof != NULL && strcmp(prof, "debian12") == 0;
	assert_int_equal(loop_new(&o, &f->loop), 0);
	f->backend = b;
	fk->loop = f->loop;
	fk->sc = sc;
	buf_init(&fk->body, 0);
	buf_init(&fk->cmds, 0);
	snprintf(fk->path, sizeof(fk->path), "%s/fake-%ld-%u.sock", fake_dir,
		 (long)getpid(), seq++);
	memcpy(sun.sun_path, fk->path, strlen(fk->path) + 1);
	fk->lfd =
		socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(fk->lfd >= 0);
	assert_int_equal(bind(fk->lfd, (struct sockaddr *)&sun, sizeof(sun)),
			 0);
	assert_int_equal(listen(fk->lfd, 16), 0);
	fk->li = loop_listen(f->loop, fk->lfd, fake_accept, fk);
	assert_non_null(fk->li);
	s.socket_path = fk->path;
	f->pool = lmtp_pool_new(f->loop, &s);
	assert_non_null(f->pool);
}

static void fake_teardown(struct fx *f, struct fake *fk)
{
	lmtp_pool_free(&f->pool);
	if (fk->c != NULL)
		conn_close(fk->c, false);
	RUN_UNTIL(f, loop_conn_count(f->loop) == 0);
	loop_listener_stop(&fk->li);
	close(fk->lfd);
	unlink(fk->path);
	loop_free(&f->loop);
	buf_free(&fk->body);
	buf_free(&fk->cmds);
}

static bool fake_cmds_has(const struct fake *fk, const char *line)
{
	char want[600];

	snprintf(want, sizeof(want), "\n%s\n", line);
	return (fk->cmds.len >= strlen(line) + 1 &&
		strncmp((const char *)buf_head(&fk->cmds), want + 1,
			strlen(want) - 1) == 0) ||
	       memmem(buf_head(&fk->cmds), fk->cmds.len, want, strlen(want)) !=
		       NULL;
}

/* The body exactly as it goes on the wire: CRLF line ends, dot-stuffed,
 * terminated; commands pipelined; SIZE given when offered. */
static void test_fake_wire(void **state)
{
	static const char body[] = "a\n.b\r\n..c\rd\r\n.";
	static const char wire[] = "a\r\n..b\r\n...c\rd\r\n..\r\n";
	static const struct fake_script sc = {.pipelining = true, .size = true};
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);
	const char *rcpts[2] = {"x@example.org", "y@example.org"};
	struct fake fk;
	struct dlv d;
	struct fx f;

	(void)state;
	for (int i = 0; i < nb; i++) {
		for (size_t chunk = 1; chunk <= 4; chunk += 3) {
			fake_setup(&f, &fk, bs[i], &sc, 0);
			deliver(&f, &d, "s@example.org", rcpts, 2, body,
				sizeof(body) - 1, chunk);
			assert_int_equal(d.res[0].code, 250);
			assert_int_equal(d.res[1].code, 250);
			assert_int_equal(fk.body.len, sizeof(wire) - 1);
			assert_memory_equal(buf_head(&fk.body), wire,
					    sizeof(wire) - 1);
			assert_true(fake_cmds_has(
				&fk, "MAIL FROM:<s@example.org> SIZE=14"));
			assert_true(
				fake_cmds_has(&fk, "RCPT TO:<y@example.org>"));
			assert_true(fk.max_cmds_per_read >= 3);
			fake_teardown(&f, &fk);
		}
	}
}

/* Without PIPELINING every command waits for the previous reply. */
static void test_fake_no_pipelining(void **state)
{
	static const struct fake_script sc = {.pipelining = false};
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);
	const char *rcpts[2] = {"x@example.org", "y@example.org"};
	struct fake fk;
	struct dlv d;
	struct fx f;

	(void)state;
	for (int i = 0; i < nb; i++) {
		fake_setup(&f, &fk, bs[i], &sc, 0);
		deliver(&f, &d, "s@example.org", rcpts, 2, "hi\r\n", 4, 4);
		assert_int_equal(d.res[0].code, 250);
		assert_int_equal(d.res[1].code, 250);
		assert_int_equal(fk.max_cmds_per_read, 1);
		assert_true(fake_cmds_has(&fk, "MAIL FROM:<s@example.org>"));
		fake_teardown(&f, &fk);
	}
}

/* MAIL refused: every recipient gets that reply; the session is reset
 * and the same connection serves the next transaction. */
static void test_fake_mail_refused(void **state)
{
	static struct fake_script sc = {.pipelining = true, .mail_code = 451};
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);
	const char *rcpts[2] = {"x@example.org", "y@example.org"};
	struct lmtp_stats st;
	struct fake fk;
	struct dlv d;
	struct fx f;

	(void)state;
	for (int i = 0; i < nb; i++) {
		sc.mail_code = 451;
		fake_setup(&f, &fk, bs[i], &sc, 0);
		deliver(&f, &d, "s@example.org", rcpts, 2, "hi\r\n", 4, 4);
		for (int k = 0; k < 2; k++) {
			assert_int_equal(d.res[k].code, 451);
			assert_string_equal(d.res[k].status, "4.3.0");
			assert_string_equal(d.res[k].text, "fake says no");
		}
		sc.mail_code = 0;
		deliver(&f, &d, "s@example.org", rcpts, 1, "hi\r\n", 4, 4);
		assert_int_equal(d.res[0].code, 250);
		RUN_UNTIL(&f, fake_cmds_has(&fk, "RSET"));
		lmtp_pool_stats(f.pool, &st);
		assert_int_equal(st.connects, 1);
		assert_int_equal(fk.accepts, 1);
		fake_teardown(&f, &fk);
	}
}

/* One recipient refused at RCPT, one accepted: one reply after the "."
 * and it belongs to the accepted one. Then all refused: the transaction
 * reports failed before the body, DATA is refused, nothing is sent. */
static void test_fake_rcpt_mixed(void **state)
{
	static struct fake_script sc = {.pipelining = true};
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);
	const char *rcpts[3] = {"x@example.org", "y@example.org",
				"z@example.org"};
	struct fake fk;
	struct dlv d;
	struct fx f;

	(void)state;
	for (int i = 0; i < nb; i++) {
		memset(&sc, 0, sizeof(sc));
		sc.pipelining = true;
		sc.rcpt_codes[0] = 550;
		sc.rcpt_codes[2] = 452;
		sc.dot_codes[0] = 251;
		fake_setup(&f, &fk, bs[i], &sc, 0);
		deliver(&f, &d, "s@example.org", rcpts, 3, "hi\r\n", 4, 4);
		assert_int_equal(d.res[0].code, 550);
		assert_string_equal(d.res[0].status, "5.3.0");
		assert_int_equal(d.res[1].code, 251);
		assert_int_equal(d.res[2].code, 452);

		sc.rcpt_codes[1] = 550;
		dlv_begin(&f, &d, NULL, "s@example.org", rcpts, 3, -1);
		RUN_UNTIL(&f, lmtp_txn_failed(d.t));
		assert_int_equal(lmtp_txn_write(d.t, "ignored\r\n", 9), 0);
		lmtp_txn_finish(d.t);
		RUN_UNTIL(&f, d.done);
		assert_int_equal(d.res[0].code, 550);
		assert_int_equal(d.res[1].code, 550);
		assert_int_equal(d.res[2].code, 452);
		RUN_UNTIL(&f, fake_cmds_has(&fk, "RSET"));
		fake_teardown(&f, &fk);
	}
}

/* DATA refused: the accepted recipients get that reply; RSET follows. */
static void test_fake_data_refused(void **state)
{
	static const struct fake_script sc = {.pipelining = true,
					      .data_code = 452};
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);
	const char *rcpts[1] = {"x@example.org"};
	struct fake fk;
	struct dlv d;
	struct fx f;

	(void)state;
	for (int i = 0; i < nb; i++) {
		fake_setup(&f, &fk, bs[i], &sc, 0);
		deliver(&f, &d, "s@example.org", rcpts, 1, "hi\r\n", 4, 4);
		assert_int_equal(d.res[0].code, 452);
		RUN_UNTIL(&f, fake_cmds_has(&fk, "RSET"));
		fake_teardown(&f, &fk);
	}
}

/* Garbage, silence and a dropped connection become 451 4.4.2 for every
 * recipient still open; the pool then uses a fresh connection. */
static void test_fake_failures(void **state)
{
	static struct fake_script sc;
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);
	const char *rcpts[2] = {"x@example.org", "y@example.org"};
	const char *when[] = {"RCPT", "DATA", "."};
	struct fake fk;
	struct dlv d;
	struct fx f;

	(void)state;
	for (int i = 0; i < nb; i++) {
		for (int w = 0; w < 3; w++) {
			for (int kind = 0; kind < 3; kind++) {
				memset(&sc, 0, sizeof(sc));
				sc.pipelining = true;
				if (kind == 0)
					sc.bad_after = when[w];
				else if (kind == 1)
					sc.silent_after = when[w];
				else
					sc.close_after = when[w];
				fake_setup(&f, &fk, bs[i], &sc, 300);
				deliver(&f, &d, "s@example.org", rcpts, 2,
					"hi\r\n", 4, 4);
				for (int k = 0; k < 2; k++) {
					if (d.res[k].code != 451)
						fail_msg(
							"%s after %s: %u %s %s",
							kind == 0   ? "garbage"
							: kind == 1 ? "silence"
								    : "close",
							when[w], d.res[k].code,
							d.res[k].status,
							d.res[k].text);
					assert_string_equal(d.res[k].status,
							    "4.4.2");
				}
				if (kind == 1)
					assert_non_null(
						strstr(d.res[0].text, "timed"));
				fake_teardown(&f, &fk);
			}
		}
	}
}

/* ---- IMAP over the ringmail-only path (blocking, test thread) ---- */

struct imap {
	int fd;
	char buf[65536];
	size_t len;
};

static void imap_connect(struct imap *m)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct timeval tv = {.tv_sec = 20};

	m->len = 0;
	m->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(m->fd >= 0);
	assert_int_equal(
		setsockopt(m->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)dset.imap_port);
	assert_int_equal(connect(m->fd, (struct sockaddr *)&sin, sizeof(sin)),
			 0);
}

/* Read until a line starting with @prefix; everything read is in m->buf. */
static void imap_read_until(struct imap *m, const char *prefix)
{
	size_t plen = strlen(prefix);
	ssize_t n;

	for (;;) {
		char *line = m->buf;
		char *nl;

		m->buf[m->len] = '\0';
		while ((nl = strstr(line, "\r\n")) != NULL) {
			if (strncmp(line, prefix, plen) == 0)
				return;
			line = nl + 2;
		}
		assert_true(m->len < sizeof(m->buf) - 1);
		n = read(m->fd, m->buf + m->len, sizeof(m->buf) - 1 - m->len);
		/* With SO_RCVTIMEO the kernel reports EINTR rather than
		 * restarting, e.g. for io_uring task work of a freed ring. */
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail_msg("imap: connection ended waiting for '%s' "
				 "(read %zd: %s): %s",
				 prefix, n, n < 0 ? strerror(errno) : "eof",
				 m->buf);
		m->len += (size_t)n;
	}
}

/* Send "<tag> <cmd>"; everything up to the tagged reply is in m->buf. */
static void imap_cmd(struct imap *m, const char *tag, const char *cmd)
{
	char line[512], pre[32];
	int n = snprintf(line, sizeof(line), "%s %s\r\n", tag, cmd);

	m->len = 0;
	assert_int_equal(write(m->fd, line, (size_t)n), n);
	snprintf(pre, sizeof(pre), "%s ", tag);
	imap_read_until(m, pre);
}

/* Does a line of m->buf start with @start? */
static bool imap_has_line(const struct imap *m, const char *start)
{
	const char *p = m->buf;
	size_t n = strlen(start);

	while (p != NULL) {
		if (strncmp(p, start, n) == 0)
			return true;
		p = strstr(p, "\r\n");
		if (p != NULL)
			p += 2;
	}
	return false;
}

/* ringmail's login: "<addr>*ringmail" + secret, then SELECT INBOX shows
 * what LMTP delivered; SASL PLAIN with authzid works the same way. */
static void test_imap_login(void **state)
{
	enum loop_backend bs[2];
	char addr[128], cmd[512], sasl[256], b64[400];
	size_t sl;
	struct imap m;

	(void)state;
	(void)testutil_backends(bs);
	addr_for(addr, sizeof(addr), "reuse", bs[0]);

	imap_connect(&m);
	imap_read_until(&m, "* OK");
	snprintf(cmd, sizeof(cmd), "LOGIN %s*%s %s", addr, DOVECOT_MASTER_USER,
		 secret);
	imap_cmd(&m, "a1", cmd);
	assert_true(imap_has_line(&m, "a1 OK"));
	imap_cmd(&m, "a2", "SELECT INBOX");
	assert_true(imap_has_line(&m, "a2 OK"));
	assert_non_null(strstr(m.buf, "* 100 EXISTS"));
	imap_cmd(&m, "a3", "LOGOUT");
	close(m.fd);

	/* AUTHENTICATE PLAIN: authzid=<addr>, authcid=ringmail */
	sl = (size_t)snprintf(sasl, sizeof(sasl), "%s%c%s%c%s", addr, 0,
			      DOVECOT_MASTER_USER, 0, secret);
	assert_int_equal(EVP_EncodeBlock((unsigned char *)b64,
					 (unsigned char *)sasl, (int)sl) > 0,
			 1);
	imap_connect(&m);
	imap_read_until(&m, "* OK");
	snprintf(cmd, sizeof(cmd), "AUTHENTICATE PLAIN %s", b64);
	imap_cmd(&m, "b1", cmd);
	assert_true(imap_has_line(&m, "b1 OK"));
	imap_cmd(&m, "b2", "STATUS INBOX (MESSAGES)");
	assert_non_null(strstr(m.buf, "(MESSAGES 100)"));
	close(m.fd);
}

/* Hibernation works on this path: an IDLE session is handed to
 * imap-hibernate after imap_hibernate_timeout (1 s here) and still sees
 * a delivery at once. */
static void test_imap_hibernate_idle(void **state)
{
	enum loop_backend bs[2];
	char addr[128], cmd[512];
	const char *rcpt[1] = {addr};
	struct imap m;
	struct dlv d;
	struct fx f;

	(void)state;
	(void)testutil_backends(bs);
	addr_for(addr, sizeof(addr), "idle", bs[0]);
	fx_setup(&f, bs[0], 0, 0);
	deliver(&f, &d, "s@example.org", rcpt, 1, "first\r\n", 7, 7);
	assert_int_equal(d.res[0].code, 250);

	imap_connect(&m);
	imap_read_until(&m, "* OK");
	snprintf(cmd, sizeof(cmd), "LOGIN %s*%s %s", addr, DOVECOT_MASTER_USER,
		 secret);
	imap_cmd(&m, "a1", cmd);
	assert_true(imap_has_line(&m, "a1 OK"));
	imap_cmd(&m, "a2", "SELECT INBOX");
	assert_non_null(strstr(m.buf, "* 1 EXISTS"));
	m.len = 0;
	assert_int_equal(write(m.fd, "a3 IDLE\r\n", 9), 9);
	imap_read_until(&m, "+ ");
	assert_int_equal(proc_count("imap"), 1);
	/* 1 s of idling, then Dovecot moves the session; bounded at 30 s
	 * for a loaded machine (5 s was too little under parallel tests). */
	for (int k = 0; k < 600 && proc_count("imap") > 0; k++)
		usleep(50 * 1000);
	/* the session now lives in imap-hibernate, no imap process */
	assert_int_equal(proc_count("imap"), 0);
	assert_true(proc_count("imap-hibernate") >= 1);
	deliver(&f, &d, "s@example.org", rcpt, 1, "second\r\n", 8, 8);
	assert_int_equal(d.res[0].code, 250);
	m.len = 0;
	imap_read_until(&m, "* 2 EXISTS");
	assert_int_equal(write(m.fd, "DONE\r\n", 6), 6);
	imap_read_until(&m, "a3 OK");
	imap_cmd(&m, "a4", "LOGOUT");
	close(m.fd);
	fx_teardown(&f);
	assert_int_equal(dovecot_log_count("Couldn't hibernate"), 0);
	assert_int_equal(dovecot_log_count("Failed to unhibernate"), 0);
}

/* Dovecot stopped: every recipient gets a 451 and nothing is written;
 * a pooled connection that died meanwhile is retried once, then the
 * failure is reported. After a restart the same pool delivers again. */
static void test_dovecot_down(void **state)
{
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);
	char a1[128], a2[128];
	const char *rcpts[2] = {a1, a2};
	struct lmtp_stats st;
	struct fx f[2];
	struct dlv d;

	(void)state;
	/* One pool per backend, each with a live idle connection. */
	for (int i = 0; i < nb; i++) {
		addr_for(a1, sizeof(a1), "beforedown", bs[i]);
		fx_setup(&f[i], bs[i], 0, 0);
		deliver(&f[i], &d, "s@example.org", rcpts, 1, "x\r\n", 3, 3);
		assert_int_equal(d.res[0].code, 250);
	}
	assert_int_equal(dovecot_run_stop(base_dir, 10000), 0);
	for (int i = 0; i < nb; i++) {
		addr_for(a1, sizeof(a1), "downa", bs[i]);
		addr_for(a2, sizeof(a2), "downb", bs[i]);
		deliver(&f[i], &d, "s@example.org", rcpts, 2,
			"Subject: lost?\r\n\r\nno\r\n", 23, 5);
		for (int k = 0; k < 2; k++) {
			assert_int_equal(d.res[k].code / 100, 4);
			assert_int_equal(d.res[k].status[0], '4');
		}
		assert_false(maildir_exists(a1));
		assert_false(maildir_exists(a2));
		/* A second one on the now empty pool: connect fails. */
		deliver(&f[i], &d, "s@example.org", rcpts, 2, "x\r\n", 3, 3);
		assert_int_equal(d.res[0].code, 451);
		assert_string_equal(d.res[0].status, "4.4.1");
		assert_int_equal(d.res[1].code, 451);
		lmtp_pool_stats(f[i].pool, &st);
		assert_int_equal(st.retries, 1);
		assert_true(st.connect_fail >= 2);
		assert_int_equal(st.conns, 0);
	}
	assert_int_equal(dovecot_run_start(&dset, conf_path, 20000), 0);
	for (int i = 0; i < nb; i++) {
		addr_for(a1, sizeof(a1), "afterdown", bs[i]);
		deliver(&f[i], &d, "s@example.org", rcpts, 1, "back\r\n", 6, 6);
		assert_int_equal(d.res[0].code, 250);
		fx_teardown(&f[i]);
		assert_int_equal(maildir_count(a1, "new"), 1);
	}
}

/* Without the secret nobody logs in: a wrong secret, and a user's own
 * name with any password (the normal passdb denies everyone). The auth
 * penalty is off, so ringmail's next login is not delayed. IP-relay
 * addresses (user@[1.2.3.4]) are valid user names. */
static void test_imap_login_refused(void **state)
{
	char cmd[512];
	struct imap m;
	uint64_t t0;

	(void)state;
	imap_connect(&m);
	imap_read_until(&m, "* OK");
	snprintf(cmd, sizeof(cmd), "LOGIN someone@example.org*%s %.*sx",
		 DOVECOT_MASTER_USER, DOVECOT_SECRET_LEN - 1, secret);
	imap_cmd(&m, "a1", cmd);
	assert_non_null(strstr(m.buf, "a1 NO [AUTHENTICATIONFAILED]"));
	snprintf(cmd, sizeof(cmd), "LOGIN someone@example.org %s", secret);
	imap_cmd(&m, "a2", cmd);
	assert_non_null(strstr(m.buf, "a2 NO [AUTHENTICATIONFAILED]"));
	t0 = now_us();
	snprintf(cmd, sizeof(cmd), "LOGIN user@[192.0.2.1]*%s %s",
		 DOVECOT_MASTER_USER, secret);
	imap_cmd(&m, "a3", cmd);
	assert_true(imap_has_line(&m, "a3 OK"));
	if (now_us() - t0 > 1000000)
		fail_msg("login after failures took %llu us (auth penalty?)",
			 (unsigned long long)(now_us() - t0));
	close(m.fd);
}

int main(void)
{
	const struct CMUnitTest fake_tests[] = {
		cmocka_unit_test(test_fake_wire),
		cmocka_unit_test(test_fake_no_pipelining),
		cmocka_unit_test(test_fake_mail_refused),
		cmocka_unit_test(test_fake_rcpt_mixed),
		cmocka_unit_test(test_fake_data_refused),
		cmocka_unit_test(test_fake_failures),
	};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deliver_one),
		cmocka_unit_test(test_deliver_edges),
		cmocka_unit_test(test_two_rcpts),
		cmocka_unit_test(test_unknown_user),
		cmocka_unit_test(test_quota),
		cmocka_unit_test(test_reuse),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_abort),
		cmocka_unit_test(test_imap_login),
		cmocka_unit_test(test_imap_hibernate_idle),
		cmocka_unit_test(test_dovecot_down),
		cmocka_unit_test(test_imap_login_refused),
	};
	int r;

	if (getenv("RINGMAIL_TEST_LOG") == NULL)
		log_set_level(LOG_LV_FATAL);
	fake_dir = testutil_mkdtemp("ringmail-lmtp-fake");
	if (fake_dir == NULL)
		return 1;
	r = cmocka_run_group_tests_name("fake LMTP server", fake_tests, NULL,
					NULL);
	testutil_rmtree(fake_dir);
	free(fake_dir);
	if (r != 0)
		return r;
	if (!dovecot_run_available()) {
		printf("SKIP: %s not found\n", dovecot_run_binary());
		return 77;
	}
	return cmocka_run_group_tests_name("real Dovecot", tests, group_setup,
					   group_teardown);
}
