/* tests/unit/test_accounts: core/accounts. chatmail's C.2 rules and their
 * order, admission limits with injected readings, hashes made by OpenSSL
 * and Python verify here and ours verify there, a wrong password never
 * overwrites, racing first logins store one hash, the store on a tiny
 * map, SIGKILL in the middle of creations, tokens, last login, flags,
 * the async wrapper and the brute-force throttle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

/* system */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* project */
#include "core/accounts/accounts-int.h"
#include "core/accounts/accounts.h"
#include "core/kv.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/pool.h"

#define DOMAIN "example.org"
#define PW     "correct-horse"

struct fx {
	char *dir;
	char data[512];
	char nocreate[512];
	struct accounts_sysinfo si;
	struct accounts_policy pol;
	struct accounts *a;
};

static void fx_sysinfo(void *ctx, const char *dir, struct accounts_sysinfo *r)
{
	struct fx *f = ctx;

	(void)dir;
	*r = f->si;
}

static struct fx *fx_new(const char *domain, size_t map)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->dir = testutil_mkdtemp("test_accounts");
	assert_non_null(f->dir);
	snprintf(f->data, sizeof(f->data), "%s/data", f->dir);
	snprintf(f->nocreate, sizeof(f->nocreate), "%s/nocreate", f->dir);
	f->si = (struct accounts_sysinfo){0.2, 8000, 50000};
	accounts_policy_defaults(&f->pol);
	f->pol.mail_domain = domain;
	f->pol.mailboxes_dir = f->dir;
	f->pol.nocreate_file = f->nocreate;
	f->pol.sysinfo = fx_sysinfo;
	f->pol.sysinfo_ctx = f;
	f->pol.initial_map_size = map;
	assert_int_equal(accounts_open(f->data, &f->pol, &f->a), 0);
	return f;
}

static void fx_free(struct fx *f)
{
	accounts_close(&f->a);
	testutil_rmtree(f->dir);
	free(f->dir);
	free(f);
}

static enum accounts_result auth(struct fx *f, const char *addr, const char *pw,
				 struct accounts_auth_info *i)
{
	struct accounts_auth_info tmp;

	return accounts_authenticate(f->a, addr, pw, strlen(pw),
				     i != NULL ? i : &tmp);
}

/* Stderr into a file while @fn runs; returns the captured text. */
static char *capture_stderr_begin(int *saved, char *path, size_t pathsz)
{
	int fd;

	snprintf(path, pathsz, "/tmp/test_accounts_log-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	*saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	return path;
}

static char *capture_stderr_end(int saved, const char *path)
{
	char *buf = calloc(1, 65536);
	int fd;
	ssize_t n;

	dup2(saved, STDERR_FILENO);
	close(saved);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, 65535);
	assert_true(n >= 0);
	close(fd);
	unlink(path);
	fputs(buf, stderr);
	return buf;
}

/* Store @hash verbatim for @addr (what an import does). */
struct put_op {
	struct accounts *a;
	const char *addr;
	struct accounts_record r;
};

static int put_txn(struct kv_txn *txn, void *arg)
{
	struct put_op *op = arg;

	return accounts_record_put_txn(op->a, txn, op->addr, &op->r);
}

static void put_hash(struct accounts *a, const char *addr, const char *hash)
{
	struct put_op op = {.a = a, .addr = addr};

	op.r.version = ACCOUNTS_RECORD_VERSION;
	op.r.flags = ACCOUNTS_F_ENFORCE_E2EE;
	op.r.created = 1;
	snprintf(op.r.hash, sizeof(op.r.hash), "%s", hash);
	assert_int_equal(kv_write(a->kv, put_txn, &op), 0);
}

/* First line of a command's output, without the newline; NULL if the
 * command failed. */
static char *run_line(const char *cmd)
{
	char buf[512];
	FILE *p = popen(cmd, "r");
	char *r = NULL;

	if (p == NULL)
		return NULL;
	if (fgets(buf, sizeof(buf), p) != NULL) {
		buf[strcspn(buf, "\r\n")] = '\0';
		r = strdup(buf);
	}
	if (pclose(p) != 0) {
		free(r);
		r = NULL;
	}
	return r;
}

/* ---- create-on-login */

static void test_create_then_login(void **state)
{
	struct fx *f = fx_new(DOMAIN, 0);
	struct accounts_auth_info info;
	struct accounts_record r, r2;
	char path[64], *log;
	const char *salt, *end;
	int saved;

	(void)state;
	capture_stderr_begin(&saved, path, sizeof(path));
	assert_int_equal(auth(f, "abcdefghi@" DOMAIN, PW, &info),
			 ACCOUNTS_CREATED);
	log = capture_stderr_end(saved, path);
	assert_non_null(
		strstr(log, "info: Created address: abcdefghi@" DOMAIN "\n"));
	free(log);
	assert_string_equal(info.addr, "abcdefghi@" DOMAIN);
	assert_int_equal(info.flags, ACCOUNTS_F_ENFORCE_E2EE);
	assert_int_equal(accounts_lookup(f->a, "abcdefghi@" DOMAIN, &r), 0);
	assert_int_equal(r.version, 1);
	assert_int_equal(r.flags, ACCOUNTS_F_ENFORCE_E2EE);
	assert_true(r.created > 0 && r.last_login == r.created);
	/* "{SHA512-CRYPT}$6$<16>$<86>", no rounds= field */
	assert_memory_equal(r.hash, "{SHA512-CRYPT}$6$", 17);
	assert_null(strstr(r.hash, "rounds="));
	salt = r.hash + 17;
	end = strchr(salt, '$');
	assert_non_null(end);
	assert_int_equal(end - salt, 16);
	assert_int_equal(strlen(end + 1), 86);

	assert_int_equal(auth(f, "abcdefghi@" DOMAIN, PW, &info), ACCOUNTS_OK);
	assert_int_equal(info.flags, ACCOUNTS_F_ENFORCE_E2EE);
	assert_int_equal(auth(f, "abcdefghi@" DOMAIN, "wrong-horse", &info),
			 ACCOUNTS_WRONG_PASSWORD);
	/* Dovecot lower-cases the login name (%Lu) */
	assert_int_equal(auth(f, "ABCdefghi@EXAMPLE.ORG", PW, &info),
			 ACCOUNTS_OK);
	assert_string_equal(info.addr, "abcdefghi@" DOMAIN);
	assert_int_equal(accounts_lookup(f->a, "abcdefghi@" DOMAIN, &r2), 0);
	assert_string_equal(r.hash, r2.hash);
	assert_int_equal(accounts_exists(f->a, "abcdefghi@" DOMAIN), 1);
	assert_int_equal(accounts_exists(f->a, "zzzzzzzzz@" DOMAIN), 0);
	assert_int_equal(accounts_count(f->a), 1);
	fx_free(f);
}

struct rule_case {
	const char *name;
	bool nocreate;
	const char *addr;
	const char *pw;
	struct accounts_sysinfo si;
	enum accounts_result res;
	enum accounts_reason code;
	const char *reason; /* substring, or NULL */
	const char *log;    /* substring of the log, or NULL */
};

#define OK_SI                    \
	{                        \
		0.2, 8000, 50000 \
	}

static const struct rule_case rule_cases[] = {
	/* 1 before everything */
	{"nocreate beats short password", true, "ab@" DOMAIN, "x", OK_SI,
	 ACCOUNTS_REFUSED, ACCOUNTS_R_NOCREATE, NULL,
	 "blocked account creation because '"},
	{"nocreate beats high load",
	 true,
	 "abcdefghi@" DOMAIN,
	 PW,
	 {9.0, 1, 1},
	 ACCOUNTS_REFUSED,
	 ACCOUNTS_R_NOCREATE,
	 NULL,
	 NULL},
	/* 2 before 3, 4, 5, 6 */
	{"short password before bad localpart",
	 false,
	 "AB[]@" DOMAIN,
	 "12345678",
	 {9.0, 1, 1},
	 ACCOUNTS_REFUSED,
	 ACCOUNTS_R_PASSWORD_SHORT,
	 NULL,
	 "Password needs to be at least 9 characters long"},
	{"password length counts characters", false, "abcdefghi@" DOMAIN,
	 "\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4",
	 OK_SI, ACCOUNTS_REFUSED, ACCOUNTS_R_PASSWORD_SHORT, NULL, NULL},
	{"nine characters in 18 bytes is enough", false, "abcdefghj@" DOMAIN,
	 "\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4"
	 "\xc3\xa4",
	 OK_SI, ACCOUNTS_CREATED, ACCOUNTS_R_NONE, NULL, "Created address"},
	/* 3 before 4 */
	{"two @ before localpart length", false, "a@b@" DOMAIN, PW, OK_SI,
	 ACCOUNTS_REFUSED, ACCOUNTS_R_ADDR_FORMAT, NULL,
	 "is not a proper e-mail address"},
	/* 4 before 5 */
	{"localpart too short", false, "abcdefgh@" DOMAIN, PW, OK_SI,
	 ACCOUNTS_REFUSED, ACCOUNTS_R_LOCALPART_LEN, NULL,
	 "has to be between 9 and 9 chars long"},
	{"localpart too long before bad chars", false, "abcde[]ghij@" DOMAIN,
	 PW, OK_SI, ACCOUNTS_REFUSED, ACCOUNTS_R_LOCALPART_LEN, NULL, NULL},
	/* 5 before 6 */
	{"localpart chars before load",
	 false,
	 "abcd[]ghi@" DOMAIN,
	 PW,
	 {9.0, 1, 1},
	 ACCOUNTS_REFUSED,
	 ACCOUNTS_R_LOCALPART_CHARS,
	 NULL,
	 "contains invalid characters"},
	/* 6: load, then memory, then disk */
	{"load",
	 false,
	 "abcdefghi@" DOMAIN,
	 PW,
	 {7.1, 1, 1},
	 ACCOUNTS_REFUSED,
	 ACCOUNTS_R_LOAD,
	 "load avg 7.10 > 5.00",
	 "registration rejected: load avg 7.10 > 5.00"},
	{"memory before disk",
	 false,
	 "abcdefghi@" DOMAIN,
	 PW,
	 {0.1, 150, 1},
	 ACCOUNTS_REFUSED,
	 ACCOUNTS_R_MEMORY,
	 "150M < 200M",
	 "registration rejected: available memory 150M < 200M"},
	{"disk",
	 false,
	 "abcdefghi@" DOMAIN,
	 PW,
	 {0.1, 200, 1023},
	 ACCOUNTS_REFUSED,
	 ACCOUNTS_R_DISK,
	 "1023M < 1024M",
	 "registration rejected: free disk space 1023M < 1024M"},
	{"load at the limit is fine",
	 false,
	 "abcdefghi@" DOMAIN,
	 PW,
	 {5.0, 200, 1024},
	 ACCOUNTS_CREATED,
	 ACCOUNTS_R_NONE,
	 NULL,
	 NULL},
	{"unreadable readings are ignored",
	 false,
	 "abcdefghk@" DOMAIN,
	 PW,
	 {-1, -1, -1},
	 ACCOUNTS_CREATED,
	 ACCOUNTS_R_NONE,
	 NULL,
	 "cannot read the load average"},
	/* before any rule: Dovecot's characters and chatmail's domain */
	{"other domain", false, "abcdefghi@example.com", PW, OK_SI,
	 ACCOUNTS_REFUSED, ACCOUNTS_R_DOMAIN, NULL, NULL},
	{"subdomain", false, "abcdefghi@sub." DOMAIN, PW, OK_SI,
	 ACCOUNTS_REFUSED, ACCOUNTS_R_DOMAIN, NULL, NULL},
	{"domain suffix without @", false, "abcdefghiexample.org", PW, OK_SI,
	 ACCOUNTS_REFUSED, ACCOUNTS_R_DOMAIN, NULL, NULL},
	{"slash", false, "abc/efghi@" DOMAIN, PW, OK_SI, ACCOUNTS_REFUSED,
	 ACCOUNTS_R_INVALID_ADDR, NULL, NULL},
	{"plus sign", false, "abc+efghi@" DOMAIN, PW, OK_SI, ACCOUNTS_REFUSED,
	 ACCOUNTS_R_INVALID_ADDR, NULL, NULL},
	{"empty", false, "", PW, OK_SI, ACCOUNTS_REFUSED,
	 ACCOUNTS_R_INVALID_ADDR, NULL, NULL},
};

static void test_rules_in_order(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rule_cases) / sizeof(rule_cases[0]);
	     i++) {
		const struct rule_case *c = &rule_cases[i];
		struct fx *f = fx_new(DOMAIN, 0);
		struct accounts_auth_info info;
		enum accounts_result res;
		char path[64], *log;
		int saved;

		print_message("  case: %s\n", c->name);
		if (c->nocreate)
			assert_int_equal(
				testutil_write_file(f->nocreate, "", 0), 0);
		f->si = c->si;
		capture_stderr_begin(&saved, path, sizeof(path));
		res = auth(f, c->addr, c->pw, &info);
		log = capture_stderr_end(saved, path);
		assert_int_equal(res, c->res);
		assert_int_equal(info.code, c->code);
		if (c->reason != NULL)
			assert_non_null(strstr(info.reason, c->reason));
		if (c->log != NULL)
			assert_non_null(strstr(log, c->log));
		if (c->res == ACCOUNTS_REFUSED) {
			assert_true(info.reason[0] != '\0');
			assert_int_equal(accounts_count(f->a), 0);
			assert_null(strstr(log, "Created address"));
		}
		free(log);
		fx_free(f);
	}
}

static void test_nocreate_log_text(void **state)
{
	struct fx *f = fx_new(DOMAIN, 0);
	char path[64], *log, want[700];
	int saved;

	(void)state;
	assert_int_equal(testutil_write_file(f->nocreate, "", 0), 0);
	capture_stderr_begin(&saved, path, sizeof(path));
	assert_int_equal(auth(f, "abcdefghi@" DOMAIN, PW, NULL),
			 ACCOUNTS_REFUSED);
	log = capture_stderr_end(saved, path);
	snprintf(want, sizeof(want),
		 "blocked account creation because '%s' exists.\n",
		 f->nocreate);
	assert_non_null(strstr(log, want));
	free(log);
	/* Removing the file allows creation again. */
	unlink(f->nocreate);
	assert_int_equal(auth(f, "abcdefghi@" DOMAIN, PW, NULL),
			 ACCOUNTS_CREATED);
	fx_free(f);
}

static void test_existing_login_while_refusing(void **state)
{
	struct fx *f = fx_new(DOMAIN, 0);
	struct accounts_auth_info info;

	(void)state;
	assert_int_equal(auth(f, "abcdefghi@" DOMAIN, PW, NULL),
			 ACCOUNTS_CREATED);
	/* Everything that refuses creation at once. */
	assert_int_equal(testutil_write_file(f->nocreate, "", 0), 0);
	f->si = (struct accounts_sysinfo){99.0, 1, 1};
	f->pol.password_min_length = 100; /* the store has its own copy */
	assert_int_equal(auth(f, "abcdefghi@" DOMAIN, PW, &info), ACCOUNTS_OK);
	assert_int_equal(auth(f, "abcdefghi@" DOMAIN, "nope-nope-nope", &info),
			 ACCOUNTS_WRONG_PASSWORD);
	assert_int_equal(auth(f, "bcdefghij@" DOMAIN, PW, &info),
			 ACCOUNTS_REFUSED);
	assert_int_equal(info.code, ACCOUNTS_R_NOCREATE);
	fx_free(f);
}

static void test_ip_relay_domain(void **state)
{
	struct fx *f = fx_new("[1.2.3.4]", 0);
	struct accounts_auth_info info;

	(void)state;
	assert_int_equal(auth(f, "abcdefghi@[1.2.3.4]", PW, &info),
			 ACCOUNTS_CREATED);
	assert_string_equal(info.addr, "abcdefghi@[1.2.3.4]");
	assert_int_equal(auth(f, "abcdefghi@[1.2.3.4]", PW, &info),
			 ACCOUNTS_OK);
	assert_int_equal(auth(f, "abcdefghi@1.2.3.4", PW, &info),
			 ACCOUNTS_REFUSED);
	assert_int_equal(info.code, ACCOUNTS_R_DOMAIN);
	assert_int_equal(auth(f, "abcdefghi@[1.2.3.5]", PW, &info),
			 ACCOUNTS_REFUSED);
	fx_free(f);
}

static void test_domain_case_sensitive(void **state)
{
	/* chatmail compares the domain as written; Dovecot lower-cases
	 * the login first, so a mixed-case mail_domain matches nothing. */
	struct fx *f = fx_new("Example.org", 0);
	struct accounts_auth_info info;

	(void)state;
	assert_int_equal(auth(f, "abcdefghi@Example.org", PW, &info),
			 ACCOUNTS_REFUSED);
	assert_int_equal(info.code, ACCOUNTS_R_DOMAIN);
	fx_free(f);
}

static void test_password_edge_cases(void **state)
{
	struct fx *f = fx_new(DOMAIN, 0);
	struct accounts_auth_info info;
	char *big;

	(void)state;
	/* NUL inside: never usable */
	assert_int_equal(accounts_authenticate(f->a, "abcdefghi@" DOMAIN,
					       "abcdefghi\0jkl", 13, &info),
			 ACCOUNTS_REFUSED);
	assert_int_equal(info.code, ACCOUNTS_R_INVALID_PASS);
	assert_int_equal(auth(f, "abcdefghi@" DOMAIN, "abcdefghi", NULL),
			 ACCOUNTS_CREATED);
	assert_int_equal(accounts_authenticate(f->a, "abcdefghi@" DOMAIN,
					       "abcdefghi\0jkl", 13, &info),
			 ACCOUNTS_WRONG_PASSWORD);
	assert_int_equal(accounts_authenticate(f->a, "abcdefghi@" DOMAIN,
					       "abcdefghi", 9, &info),
			 ACCOUNTS_OK);
	/* over the maximum */
	big = malloc(ACCOUNTS_PASSWORD_MAX + 2);
	memset(big, 'x', ACCOUNTS_PASSWORD_MAX + 1);
	big[ACCOUNTS_PASSWORD_MAX + 1] = '\0';
	assert_int_equal(auth(f, "bcdefghij@" DOMAIN, big, &info),
			 ACCOUNTS_REFUSED);
	assert_int_equal(info.code, ACCOUNTS_R_INVALID_PASS);
	big[ACCOUNTS_PASSWORD_MAX] = '\0';
	assert_int_equal(auth(f, "bcdefghij@" DOMAIN, big, &info),
			 ACCOUNTS_CREATED);
	assert_int_equal(auth(f, "bcdefghij@" DOMAIN, big, &info), ACCOUNTS_OK);
	free(big);
	fx_free(f);
}

/* ---- hashes from other implementations, and ours checked by them */

static void test_hash_openssl_and_python(void **state)
{
	struct fx *f = fx_new(DOMAIN, 0);
	struct accounts_record r;
	char cmd[512], hash[300], salt[17];
	char *out;

	(void)state;
	/* openssl passwd -6 -salt <16> */
	out = run_line("openssl passwd -6 -salt abcdefghABCD0123 "
		       "openssl-pass-1 2>/dev/null");
	if (out == NULL) {
		print_message("  openssl not found; skipping that case\n");
	} else {
		assert_memory_equal(out, "$6$abcdefghABCD0123$", 20);
		snprintf(hash, sizeof(hash), "{SHA512-CRYPT}%s", out);
		put_hash(f->a, "opensslxx@" DOMAIN, hash);
		assert_int_equal(
			auth(f, "opensslxx@" DOMAIN, "openssl-pass-1", NULL),
			ACCOUNTS_OK);
		assert_int_equal(
			auth(f, "opensslxx@" DOMAIN, "openssl-pass-2", NULL),
			ACCOUNTS_WRONG_PASSWORD);
		free(out);
	}

	/* Python's crypt module, as chatmail's encrypt_password */
	out = run_line("python3 -W ignore -c 'import crypt; "
		       "print(crypt.crypt(\"python-pass-1\", "
		       "crypt.METHOD_SHA512))' 2>/dev/null");
	if (out == NULL || strncmp(out, "$6$", 3) != 0) {
		print_message("  python3 crypt unavailable; skipping that "
			      "case\n");
	} else {
		snprintf(hash, sizeof(hash), "{SHA512-CRYPT}%s", out);
		put_hash(f->a, "pythonxxx@" DOMAIN, hash);
		assert_int_equal(
			auth(f, "pythonxxx@" DOMAIN, "python-pass-1", NULL),
			ACCOUNTS_OK);
		assert_int_equal(
			auth(f, "pythonxxx@" DOMAIN, "python-pass-2", NULL),
			ACCOUNTS_WRONG_PASSWORD);
	}
	free(out);

	/* ours, recomputed by openssl from our salt */
	assert_int_equal(auth(f, "oursxxxxx@" DOMAIN, "ours-pass-1", NULL),
			 ACCOUNTS_CREATED);
	assert_int_equal(accounts_lookup(f->a, "oursxxxxx@" DOMAIN, &r), 0);
	memcpy(salt, r.hash + 17, 16);
	salt[16] = '\0';
	for (int i = 0; i < 16; i++)
		assert_non_null(strchr("./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				       "abcdefghijklmnopqrstuvwxyz",
				       salt[i]));
	snprintf(cmd, sizeof(cmd),
		 "openssl passwd -6 -salt '%s' ours-pass-1 2>/dev/null", salt);
	out = run_line(cmd);
	if (out != NULL) {
		assert_string_equal(out, r.hash + strlen("{SHA512-CRYPT}"));
		free(out);
	}
	/* and by Python's crypt with our full hash as the salt */
	snprintf(cmd, sizeof(cmd),
		 "python3 -W ignore -c 'import crypt; "
		 "print(crypt.crypt(\"ours-pass-1\", \"%s\"))' 2>/dev/null",
		 r.hash + strlen("{SHA512-CRYPT}"));
	out = run_line(cmd);
	if (out != NULL) {
		assert_string_equal(out, r.hash + strlen("{SHA512-CRYPT}"));
		free(out);
	}
	/* rounds= from elsewhere verifies as well */
	out = run_line("python3 -W ignore -c 'import crypt; "
		       "print(crypt.crypt(\"rounds-pass-1\", "
		       "crypt.mksalt(crypt.METHOD_SHA512, rounds=6000)))' "
		       "2>/dev/null");
	if (out != NULL && strncmp(out, "$6$rounds=6000$", 15) == 0) {
		snprintf(hash, sizeof(hash), "{SHA512-CRYPT}%s", out);
		put_hash(f->a, "roundsxxx@" DOMAIN, hash);
		assert_int_equal(
			auth(f, "roundsxxx@" DOMAIN, "rounds-pass-1", NULL),
			ACCOUNTS_OK);
	}
	free(out);
	/* a scheme we do not handle never verifies */
	put_hash(f->a, "md5xxxxxx@" DOMAIN, "{MD5-CRYPT}$1$abc$def");
	assert_int_equal(auth(f, "md5xxxxxx@" DOMAIN, "anything-1", NULL),
			 ACCOUNTS_WRONG_PASSWORD);
	fx_free(f);
}

static void test_hash_unit(void **state)
{
	char h1[ACCOUNTS_HASH_MAX], h2[ACCOUNTS_HASH_MAX];

	(void)state;
	assert_int_equal(accounts_hash_make("pw-123456", h1), 0);
	assert_int_equal(accounts_hash_make("pw-123456", h2), 0);
	assert_string_not_equal(h1, h2); /* fresh salts */
	assert_int_equal(accounts_hash_verify("pw-123456", h1), 1);
	assert_int_equal(accounts_hash_verify("pw-123456", h2), 1);
	assert_int_equal(accounts_hash_verify("pw-1234567", h1), 0);
	assert_int_equal(accounts_hash_verify("", h1), 0);
	assert_int_equal(accounts_hash_verify("x", "$6$abc$def"), -EINVAL);
	assert_int_equal(accounts_hash_verify("x", "{SHA512-CRYPT}$6$a b$c"),
			 -EINVAL);
	/* truncated stored hash: never matches */
	h1[40] = '\0';
	assert_int_equal(accounts_hash_verify("pw-123456", h1), 0);
}

/* ---- wrong passwords */

static void test_wrong_password_never_overwrites(void **state)
{
	struct fx *f = fx_new(DOMAIN, 0);
	struct accounts_record r1, r2;

	(void)state;
	assert_int_equal(auth(f, "abcdefghi@" DOMAIN, PW, NULL),
			 ACCOUNTS_CREATED);
	assert_int_equal(accounts_lookup(f->a, "abcdefghi@" DOMAIN, &r1), 0);
	for (int i = 0; i < 5; i++) {
		char pw[32];

		snprintf(pw, sizeof(pw), "other-password-%d", i);
		assert_int_equal(auth(f, "abcdefghi@" DOMAIN, pw, NULL),
				 ACCOUNTS_WRONG_PASSWORD);
	}
	assert_int_equal(auth(f, "abcdefghi@" DOMAIN, "", NULL),
			 ACCOUNTS_WRONG_PASSWORD);
	assert_int_equal(accounts_lookup(f->a, "abcdefghi@" DOMAIN, &r2), 0);
	assert_memory_equal(&r1, &r2, sizeof(r1));
	assert_int_equal(auth(f, "abcdefghi@" DOMAIN, PW, NULL), ACCOUNTS_OK);
	fx_free(f);
}

/* ---- racing first logins */

#define RACERS 16

struct racer {
	struct fx *f;
	pthread_barrier_t *bar;
	char pw[32];
	enum accounts_result res;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(r->bar);
	r->res = auth(r->f, "racingxxx@" DOMAIN, r->pw, NULL);
	return NULL;
}

static void race(struct fx *f, bool same_pw, struct racer *rs)
{
	pthread_barrier_t bar;
	pthread_t th[RACERS];

	pthread_barrier_init(&bar, NULL, RACERS);
	for (int i = 0; i < RACERS; i++) {
		rs[i].f = f;
		rs[i].bar = &bar;
		snprintf(rs[i].pw, sizeof(rs[i].pw), "racing-pass-%02d",
			 same_pw ? 0 : i);
		assert_int_equal(
			pthread_create(&th[i], NULL, racer_main, &rs[i]), 0);
	}
	for (int i = 0; i < RACERS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
}

static void test_concurrent_first_logins(void **state)
{
	struct racer rs[RACERS];
	struct fx *f = fx_new(DOMAIN, 0);
	int created = 0, ok = 0, wrong = 0, winner = -1;

	(void)state;
	memset(rs, 0, sizeof(rs));
	race(f, true, rs);
	for (int i = 0; i < RACERS; i++) {
		created += rs[i].res == ACCOUNTS_CREATED;
		ok += rs[i].res == ACCOUNTS_OK;
	}
	assert_int_equal(created, 1);
	assert_int_equal(ok, RACERS - 1);
	assert_int_equal(accounts_count(f->a), 1);
	assert_int_equal(auth(f, "racingxxx@" DOMAIN, "racing-pass-00", NULL),
			 ACCOUNTS_OK);
	fx_free(f);

	/* Different passwords: one wins, the others are wrong. */
	f = fx_new(DOMAIN, 0);
	memset(rs, 0, sizeof(rs));
	race(f, false, rs);
	created = ok = 0;
	for (int i = 0; i < RACERS; i++) {
		if (rs[i].res == ACCOUNTS_CREATED) {
			created++;
			winner = i;
		}
		ok += rs[i].res == ACCOUNTS_OK;
		wrong += rs[i].res == ACCOUNTS_WRONG_PASSWORD;
	}
	assert_int_equal(created, 1);
	assert_int_equal(ok, 0);
	assert_int_equal(wrong, RACERS - 1);
	assert_int_equal(auth(f, "racingxxx@" DOMAIN, rs[winner].pw, NULL),
			 ACCOUNTS_OK);
	assert_int_equal(auth(f, "racingxxx@" DOMAIN,
			      rs[(winner + 1) % RACERS].pw, NULL),
			 ACCOUNTS_WRONG_PASSWORD);
	fx_free(f);
}

/* ---- LMDB map growth */

static int count_cb(const char *addr, const struct accounts_record *r,
		    void *arg)
{
	unsigned *n = arg;
	char want[64];

	if (addr[0] != 'g')
		return 0; /* not one of the bulk ones */
	snprintf(want, sizeof(want), "g%08u@" DOMAIN, *n);
	assert_string_equal(addr, want); /* address order */
	assert_int_equal(r->version, 1);
	(*n)++;
	return 0;
}

/* The store on a 64 KiB map: core/kv grows it under the accounts (its
 * recovery paths have their own tests in test_kv). */
static void test_map_growth(void **state)
{
	struct fx *f = fx_new(DOMAIN, 64 << 10);
	struct accounts_record r;
	struct kv_stats st;
	unsigned n = 0;
	char addr[64], hash[ACCOUNTS_HASH_MAX];

	(void)state;
	/* A real hash (our own format) padded out so pages fill fast. */
	assert_int_equal(accounts_hash_make("growth-pass", hash), 0);
	for (unsigned i = 0; i < 3000; i++) {
		snprintf(addr, sizeof(addr), "g%08u@" DOMAIN, i);
		put_hash(f->a, addr, hash);
	}
	kv_stats(f->a->kv, &st);
	assert_true(st.grows >= 3);
	assert_int_equal(accounts_count(f->a), 3000);
	assert_int_equal(accounts_iterate(f->a, count_cb, &n), 0);
	assert_int_equal(n, 3000);
	/* Creation through the normal path still works after growth. */
	assert_int_equal(auth(f, "g00001234@" DOMAIN, "growth-pass", NULL),
			 ACCOUNTS_OK);
	/* Reopen with the tiny map: the file's size wins. */
	accounts_close(&f->a);
	assert_int_equal(accounts_open(f->data, &f->pol, &f->a), 0);
	assert_int_equal(accounts_count(f->a), 3000);
	assert_int_equal(accounts_lookup(f->a, "g00002999@" DOMAIN, &r), 0);
	assert_int_equal(auth(f, "newaccxxx@" DOMAIN, PW, NULL),
			 ACCOUNTS_CREATED);
	fx_free(f);
}

/* ---- crash in the middle of creations */

static void crash_child(const char *data, const struct accounts_policy *pol,
			int wfd, unsigned base)
{
	struct accounts_auth_info info;
	struct accounts *a = NULL;
	char addr[64];

	log_set_level(LOG_LV_WARN);
	if (accounts_open(data, pol, &a) != 0)
		_exit(3);
	for (unsigned i = base;; i++) {
		snprintf(addr, sizeof(addr), "c%08u@" DOMAIN, i);
		if (accounts_authenticate(a, addr, "crash-pass-1", 12, &info) !=
		    ACCOUNTS_CREATED)
			_exit(4);
		/* Confirm only after the call returned. */
		if (write(wfd, &i, sizeof(i)) != sizeof(i))
			_exit(5);
		if (i % 7 == 0) /* readers and other writes in flight too */
			accounts_touch_last_login(a, addr, (int64_t)i * 86400);
	}
}

static void test_crash_consistency(void **state)
{
	struct fx *f = fx_new(DOMAIN, 64 << 10);
	unsigned *confirmed = NULL, nconf = 0, cap = 0;
	struct accounts_policy pol = f->pol;
	unsigned seed = (unsigned)time(NULL);

	(void)state;
	print_message("  seed %u\n", seed);
	srand(seed);
	accounts_close(&f->a);
	for (int round = 0; round < 6; round++) {
		int p[2], status;
		unsigned v;
		pid_t pid;
		struct timespec ts;
		ssize_t n;

		assert_int_equal(pipe(p), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			crash_child(f->data, &pol, p[1],
				    (unsigned)round * 1000000u);
		}
		close(p[1]);
		/* Let it create some, then kill at a random moment. */
		ts.tv_sec = 0;
		ts.tv_nsec = (long)(50 + rand() % 250) * 1000000L;
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		assert_true(WIFSIGNALED(status));
		while ((n = read(p[0], &v, sizeof(v))) == sizeof(v)) {
			if (nconf == cap) {
				cap = cap ? cap * 2 : 256;
				confirmed = realloc(confirmed,
						    cap * sizeof(*confirmed));
				assert_non_null(confirmed);
			}
			confirmed[nconf++] = v;
		}
		close(p[0]);

		/* The store opens cleanly and holds every confirmed one. */
		assert_int_equal(accounts_open(f->data, &pol, &f->a), 0);
		assert_true(accounts_count(f->a) >= (int64_t)nconf);
		print_message("  round %d: %u confirmed, %lld stored\n", round,
			      nconf, (long long)accounts_count(f->a));
		for (unsigned i = 0; i < nconf; i++) {
			char addr[64];

			snprintf(addr, sizeof(addr), "c%08u@" DOMAIN,
				 confirmed[i]);
			assert_int_equal(accounts_exists(f->a, addr), 1);
		}
		/* Verify the passwords of a sample (crypt is slow). */
		for (unsigned i = 0; i < nconf; i += 1 + nconf / 20) {
			char addr[64];

			snprintf(addr, sizeof(addr), "c%08u@" DOMAIN,
				 confirmed[i]);
			assert_int_equal(auth(f, addr, "crash-pass-1", NULL),
					 ACCOUNTS_OK);
		}
		accounts_close(&f->a);
	}
	assert_true(nconf > 0);
	free(confirmed);
	assert_int_equal(accounts_open(f->data, &pol, &f->a), 0);
	fx_free(f);
}

/* ---- last login, flags, delete, iterate */

static void test_last_login(void **state)
{
	struct fx *f = fx_new(DOMAIN, 0);
	struct accounts_record r;
	int64_t day = 20000 * 86400LL;

	(void)state;
	assert_int_equal(auth(f, "abcdefghi@" DOMAIN, PW, NULL),
			 ACCOUNTS_CREATED);
	assert_int_equal(
		accounts_touch_last_login(f->a, "abcdefghi@" DOMAIN, day + 777),
		0);
	assert_int_equal(accounts_lookup(f->a, "abcdefghi@" DOMAIN, &r), 0);
	assert_int_equal(r.last_login, day);
	assert_int_equal(accounts_touch_last_login(f->a, "abcdefghi@" DOMAIN,
						   day + 86399),
			 0);
	assert_int_equal(accounts_lookup(f->a, "abcdefghi@" DOMAIN, &r), 0);
	assert_int_equal(r.last_login, day);
	assert_int_equal(accounts_touch_last_login(f->a, "abcdefghi@" DOMAIN,
						   day + 86400),
			 0);
	assert_int_equal(accounts_lookup(f->a, "abcdefghi@" DOMAIN, &r), 0);
	assert_int_equal(r.last_login, day + 86400);
	assert_int_equal(
		accounts_touch_last_login(f->a, "nobodyxxx@" DOMAIN, day),
		-ENOENT);
	fx_free(f);
}

static int collect_cb(const char *addr, const struct accounts_record *r,
		      void *arg)
{
	unsigned *n = arg;

	(void)addr;
	(void)r;
	return ++(*n) == 2 ? 42 : 0;
}

static void test_flags_delete_iterate(void **state)
{
	struct fx *f = fx_new(DOMAIN, 0);
	struct accounts_auth_info info;
	struct accounts_record r;
	unsigned n = 0;

	(void)state;
	assert_int_equal(auth(f, "abcdefghi@" DOMAIN, PW, NULL),
			 ACCOUNTS_CREATED);
	assert_int_equal(auth(f, "bcdefghij@" DOMAIN, PW, NULL),
			 ACCOUNTS_CREATED);
	assert_int_equal(auth(f, "cdefghijk@" DOMAIN, PW, NULL),
			 ACCOUNTS_CREATED);
	assert_int_equal(accounts_set_flag(f->a, "abcdefghi@" DOMAIN,
					   ACCOUNTS_F_ALLOW_CLEARTEXT),
			 0);
	assert_int_equal(accounts_lookup(f->a, "abcdefghi@" DOMAIN, &r), 0);
	assert_int_equal(r.flags, ACCOUNTS_F_ALLOW_CLEARTEXT);
	assert_int_equal(auth(f, "abcdefghi@" DOMAIN, PW, &info), ACCOUNTS_OK);
	assert_int_equal(info.flags, ACCOUNTS_F_ALLOW_CLEARTEXT);
	assert_int_equal(accounts_set_flag(f->a, "abcdefghi@" DOMAIN,
					   ACCOUNTS_F_ENFORCE_E2EE),
			 0);
	assert_int_equal(accounts_set_flag(f->a, "abcdefghi@" DOMAIN,
					   ACCOUNTS_F_ENFORCE_E2EE),
			 0);
	assert_int_equal(accounts_lookup(f->a, "abcdefghi@" DOMAIN, &r), 0);
	assert_int_equal(r.flags, ACCOUNTS_F_ENFORCE_E2EE);
	assert_int_equal(accounts_set_flag(f->a, "abcdefghi@" DOMAIN, 0x80),
			 -EINVAL);
	assert_int_equal(accounts_set_flag(f->a, "nobodyxxx@" DOMAIN,
					   ACCOUNTS_F_ENFORCE_E2EE),
			 -ENOENT);
	/* iterate stops on the callback's value */
	assert_int_equal(accounts_iterate(f->a, collect_cb, &n), 42);
	assert_int_equal(n, 2);
	assert_int_equal(accounts_tokens_add(f->a, "bcdefghij@" DOMAIN, "tok",
					     3, 1000, 1000),
			 1);
	assert_int_equal(accounts_delete(f->a, "bcdefghij@" DOMAIN), 0);
	assert_int_equal(accounts_delete(f->a, "bcdefghij@" DOMAIN), -ENOENT);
	assert_int_equal(accounts_exists(f->a, "bcdefghij@" DOMAIN), 0);
	assert_int_equal(accounts_count(f->a), 2);
	{
		struct accounts_tokens *t;

		assert_int_equal(accounts_tokens_get(f->a, "bcdefghij@" DOMAIN,
						     1000, &t),
				 0);
		assert_int_equal(t->n, 0);
		free(t);
	}
	/* Deleted: the next login creates it afresh, with a new hash. */
	assert_int_equal(auth(f, "bcdefghij@" DOMAIN, "another-pass", NULL),
			 ACCOUNTS_CREATED);
	fx_free(f);
}

/* ---- device tokens */

static void test_tokens(void **state)
{
	struct fx *f = fx_new(DOMAIN, 0);
	const char *u = "abcdefghi@" DOMAIN;
	struct accounts_tokens *t;
	int64_t now = 1700000000;
	char tok[32];

	(void)state;
	assert_int_equal(accounts_tokens_add(f->a, u, "1111", 4, now, now), 1);
	assert_int_equal(
		accounts_tokens_add(f->a, u, "2222", 4, now + 1, now + 1), 1);
	/* same token again: refreshed, order kept */
	assert_int_equal(
		accounts_tokens_add(f->a, u, "1111", 4, now + 5, now + 5), 1);
	assert_int_equal(
		accounts_tokens_add(f->a, u, "1111", 4, now + 2, now + 5), 0);
	assert_int_equal(accounts_tokens_get(f->a, u, now + 5, &t), 0);
	assert_int_equal(t->n, 2);
	assert_string_equal(t->t[0].token, "1111");
	assert_int_equal(t->t[0].set_at, now + 5);
	assert_string_equal(t->t[1].token, "2222");
	assert_int_equal(t->t[1].len, 4);
	free(t);
	/* 90 days after its last set, 2222 is gone; 1111 (set 4 s later)
	 * is still there for those 4 seconds */
	assert_int_equal(
		accounts_tokens_get(f->a, u,
				    now + 1 + ACCOUNTS_TOKEN_VALIDITY_S, &t),
		0);
	assert_int_equal(t->n, 1);
	assert_string_equal(t->t[0].token, "1111");
	free(t);
	/* from the future (> 60 s): not valid */
	assert_int_equal(accounts_tokens_get(f->a, u, now - 120, &t), 0);
	assert_int_equal(t->n, 0);
	free(t);
	assert_int_equal(
		accounts_tokens_add(f->a, u, "3333", 4, now + 3600, now), 0);
	/* remove */
	assert_int_equal(accounts_tokens_remove(f->a, u, "2222", 4), 0);
	assert_int_equal(accounts_tokens_remove(f->a, u, "2222", 4), -ENOENT);
	assert_int_equal(accounts_tokens_get(f->a, u, now + 10, &t), 0);
	assert_int_equal(t->n, 1);
	free(t);
	/* bounded: the oldest goes */
	for (unsigned i = 0; i < ACCOUNTS_TOKENS_MAX + 5; i++) {
		snprintf(tok, sizeof(tok), "many-%03u", i);
		assert_int_equal(accounts_tokens_add(f->a, u, tok, strlen(tok),
						     now + 10 + i, now + 200),
				 1);
	}
	assert_int_equal(accounts_tokens_get(f->a, u, now + 200, &t), 0);
	assert_int_equal(t->n, ACCOUNTS_TOKENS_MAX);
	assert_string_equal(t->t[0].token, "many-005");
	free(t);
	/* limits */
	assert_int_equal(accounts_tokens_add(f->a, u, "", 0, now, now),
			 -EINVAL);
	fx_free(f);
}

/* ---- async */

struct async_ctx {
	pthread_t loop_thread;
	int done;
	bool wrong_thread;
	enum accounts_result res[2];
	char addr[2][ACCOUNTS_ADDR_MAX + 1];
};

static void async_done(enum accounts_result res,
		       const struct accounts_auth_info *info, void *arg)
{
	struct async_ctx *c = arg;

	if (!pthread_equal(pthread_self(), c->loop_thread))
		c->wrong_thread = true;
	c->res[c->done] = res;
	snprintf(c->addr[c->done], sizeof(c->addr[0]), "%s", info->addr);
	c->done++;
}

static void test_async(void **state)
{
	struct fx *f = fx_new(DOMAIN, 0);
	struct loop_opts o;
	struct loop *l = NULL;
	struct pool *p = NULL;
	struct async_ctx c;
	char addr[64], pw[64];
	time_t t0;

	(void)state;
	memset(&c, 0, sizeof(c));
	memset(&o, 0, sizeof(o));
	o.backend = LOOP_BACKEND_EPOLL;
	assert_int_equal(loop_new(&o, &l), 0);
	assert_int_equal(pool_new(2, &p), 0);
	c.loop_thread = pthread_self();
	snprintf(addr, sizeof(addr), "ASYNCxxxx@" DOMAIN);
	snprintf(pw, sizeof(pw), PW);
	assert_int_equal(accounts_authenticate_async(f->a, p, l, addr, pw,
						     strlen(pw), async_done,
						     &c),
			 0);
	/* the caller's buffers may go away at once */
	memset(addr, 'X', sizeof(addr) - 1);
	memset(pw, 'Y', sizeof(pw) - 1);
	t0 = time(NULL);
	while (c.done < 1 && time(NULL) - t0 < 30)
		assert_true(loop_run_once(l, 50) >= 0);
	assert_int_equal(c.done, 1);
	assert_int_equal(c.res[0], ACCOUNTS_CREATED);
	assert_string_equal(c.addr[0], "asyncxxxx@" DOMAIN);
	assert_int_equal(accounts_authenticate_async(f->a, p, l,
						     "asyncxxxx@" DOMAIN, "bad",
						     3, async_done, &c),
			 0);
	while (c.done < 2 && time(NULL) - t0 < 30)
		assert_true(loop_run_once(l, 50) >= 0);
	assert_int_equal(c.res[1], ACCOUNTS_WRONG_PASSWORD);
	assert_false(c.wrong_thread);
	assert_int_equal(accounts_touch_last_login_async(
				 f->a, p, "asyncxxxx@" DOMAIN, 86400 * 3),
			 0);
	pool_free(&p); /* drains the fire-and-forget job */
	{
		struct accounts_record r;

		assert_int_equal(accounts_lookup(f->a, "asyncxxxx@" DOMAIN, &r),
				 0);
		assert_int_equal(r.last_login, 86400 * 3);
	}
	assert_int_equal(accounts_authenticate_async(f->a, NULL, NULL, "a", "b",
						     1, async_done, &c),
			 -EINVAL);
	loop_free(&l);
	fx_free(f);
}

/* ---- throttling */

static struct sockaddr_storage ip_of(const char *s)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(s, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, s, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, s, &s4->sin_addr), 1);
	}
	return ss;
}

#define SA(x) ((const struct sockaddr *)&(x))

static void test_throttle(void **state)
{
	struct accounts_throttle *t = NULL;
	struct sockaddr_storage a1 = ip_of("192.0.2.1");
	struct sockaddr_storage a2 = ip_of("192.0.2.2");
	struct sockaddr_storage m1 = ip_of("::ffff:192.0.2.1");
	struct sockaddr_storage v6a = ip_of("2001:db8:1:2::1");
	struct sockaddr_storage v6b = ip_of("2001:db8:1:2:ffff::9");
	struct sockaddr_storage v6c = ip_of("2001:db8:1:3::1");
	const char *x = "victimxxx@" DOMAIN;
	uint64_t now = 1000000;
	int64_t prev = 0, d;

	(void)state;
	assert_int_equal(accounts_throttle_new(64, &t), 0);
	assert_int_equal(accounts_throttle_check(t, SA(a1), x, now), 0);
	/* delays grow with failures, capped */
	for (int i = 1; i <= 8; i++) {
		accounts_throttle_record(t, SA(a1), x, false, now);
		d = accounts_throttle_check(t, SA(a1), x, now);
		print_message("  after %d failures: %lld ms\n", i,
			      (long long)d);
		assert_true(d > prev || d == 15000);
		assert_true(d >= 500 && d <= 15000);
		prev = d;
		now += (uint64_t)d; /* the attacker waits it out */
	}
	assert_int_equal(prev, 15000);
	/* the IPv4-mapped form is the same client */
	assert_int_equal(accounts_throttle_check(t, SA(m1), x, now), 15000);
	/* someone else logging in to the attacked account: no delay */
	assert_int_equal(accounts_throttle_check(t, SA(a2), x, now), 0);
	accounts_throttle_record(t, SA(a2), x, true, now);
	assert_int_equal(accounts_throttle_check(t, SA(a2), x, now), 0);
	/* forgotten 15 min after the last failure */
	assert_int_equal(accounts_throttle_check(t, SA(a1), NULL,
						 now + 15 * 60 * 1000 + 1),
			 0);
	accounts_throttle_free(&t);
	assert_null(t);

	/* the rate limit: 10 failures in a minute (parallel connections
	 * do not wait for each other) */
	assert_int_equal(accounts_throttle_new(0, &t), 0);
	now = 5000000;
	for (int i = 0; i < 9; i++)
		accounts_throttle_record(t, SA(v6a), x, false, now + i);
	assert_true(accounts_throttle_check(t, SA(v6a), x, now + 10) > 0);
	accounts_throttle_record(t, SA(v6a), x, false, now + 10);
	assert_int_equal(accounts_throttle_check(t, SA(v6a), x, now + 11),
			 ACCOUNTS_THROTTLE_REFUSE);
	/* the whole /64 is one client; the next /64 is not */
	assert_int_equal(accounts_throttle_check(t, SA(v6b), NULL, now + 11),
			 ACCOUNTS_THROTTLE_REFUSE);
	assert_int_equal(accounts_throttle_check(t, SA(v6c), x, now + 11), 0);
	/* a success does not lift the limit */
	accounts_throttle_record(t, SA(v6a), "ownaccxxx@" DOMAIN, true,
				 now + 12);
	assert_int_equal(accounts_throttle_check(t, SA(v6a), x, now + 13),
			 ACCOUNTS_THROTTLE_REFUSE);
	/* the window passes */
	assert_true(accounts_throttle_check(t, SA(v6a), x, now + 60001) !=
		    ACCOUNTS_THROTTLE_REFUSE);
	/* account failures delay only clients that failed themselves */
	accounts_throttle_record(t, SA(a1), NULL, false, now + 60002);
	d = accounts_throttle_check(t, SA(a1), x, now + 60003);
	assert_true(d >= 15000); /* x has 10 failures from v6a */
	assert_int_equal(accounts_throttle_check(t, SA(a1), "otheraccx@" DOMAIN,
						 now + 60003),
			 500);
	assert_int_equal(accounts_throttle_check(t, SA(a2), x, now + 60003), 0);
	accounts_throttle_free(&t);
}

static void test_throttle_bounded(void **state)
{
	struct accounts_throttle *t = NULL;
	struct sockaddr_in sin;
	uint64_t now = 1000;

	(void)state;
	assert_int_equal(accounts_throttle_new(16, &t), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	/* Far more clients than slots: old ones are evicted, the latest
	 * stay tracked. */
	for (uint32_t i = 0; i < 100000; i++) {
		sin.sin_addr.s_addr = htonl(0x0a000000u + i);
		accounts_throttle_record(t, (struct sockaddr *)&sin,
					 "abcdefghi@" DOMAIN, false, now + i);
	}
	assert_true(accounts_throttle_check(t, (struct sockaddr *)&sin, NULL,
					    now + 100000) > 0);
	accounts_throttle_free(&t);
	assert_int_equal(accounts_throttle_new(1u << 30, &t), -EINVAL);
	assert_null(t);
}

/* Issue 11 item 8: parallel attempts reserve their failure before the
 * hash check, so 300 at once from one client get no more checks than
 * the window allows; a success elsewhere is not slowed; a reservation
 * without a verdict (tempfail, client gone) is given back. */
static void test_throttle_reserve(void **state)
{
	struct accounts_throttle *t = NULL;
	struct accounts_throttle_res res[300];
	struct sockaddr_storage a1 = ip_of("192.0.2.1");
	struct sockaddr_storage m1 = ip_of("::ffff:192.0.2.1");
	struct sockaddr_storage a2 = ip_of("192.0.2.2");
	const char *x = "victimxxx@" DOMAIN;
	uint64_t now = 7000000;
	unsigned admitted = 0, refused = 0;
	int64_t d, prev = -1;

	(void)state;
	assert_int_equal(accounts_throttle_new(0, &t), 0);
	/* 300 at once (the IPv4-mapped form is the same client) */
	for (unsigned i = 0; i < 300; i++) {
		d = accounts_throttle_reserve(t, i % 2 ? SA(m1) : SA(a1), x,
					      now, &res[i]);
		if (d == ACCOUNTS_THROTTLE_REFUSE) {
			assert_false(res[i].held);
			refused++;
			continue;
		}
		assert_true(res[i].held);
		/* each waits longer than the one before, as if in turn */
		assert_true(d > prev || d == 15000);
		prev = d;
		admitted++;
	}
	print_message("  300 parallel: %u admitted (last delay %lld ms), "
		      "%u refused\n",
		      admitted, (long long)prev, refused);
	assert_int_equal(admitted, 10);
	assert_int_equal(refused, 290);
	/* while they are in flight nothing more gets through */
	assert_int_equal(accounts_throttle_check(t, SA(a1), x, now + 1),
			 ACCOUNTS_THROTTLE_REFUSE);
	/* another client with the right password: not delayed */
	assert_int_equal(
		accounts_throttle_reserve(t, SA(a2), x, now + 1, &res[299]), 0);
	accounts_throttle_release(t, SA(a2), x, ACCOUNTS_THROTTLE_SUCCESS,
				  now + 2, &res[299]);
	assert_false(res[299].held);
	assert_int_equal(accounts_throttle_check(t, SA(a2), x, now + 3), 0);
	/* the verdicts come: all wrong */
	for (unsigned i = 0; i < 10; i++)
		accounts_throttle_release(t, SA(a1), x,
					  ACCOUNTS_THROTTLE_FAILURE,
					  now + 100 + i, &res[i]);
	/* releasing twice is harmless */
	accounts_throttle_release(t, SA(a1), x, ACCOUNTS_THROTTLE_SUCCESS,
				  now + 200, &res[0]);
	assert_int_equal(accounts_throttle_check(t, SA(a1), x, now + 300),
			 ACCOUNTS_THROTTLE_REFUSE);
	/* after the window: admitted again (delayed: it has failed), and a
	 * correct password resets the delay */
	now += 60000 + 1;
	d = accounts_throttle_reserve(t, SA(a1), "ownaccxxx@" DOMAIN, now,
				      &res[0]);
	assert_int_equal(d, 15000);
	accounts_throttle_release(t, SA(a1), "ownaccxxx@" DOMAIN,
				  ACCOUNTS_THROTTLE_SUCCESS, now + d, &res[0]);
	assert_int_equal(accounts_throttle_check(t, SA(a1), "ownaccxxx@" DOMAIN,
						 now + d + 1),
			 0);
	accounts_throttle_free(&t);

	/* a cancelled reservation is given back: 10 in flight, all
	 * cancelled (tempfail, or the clients left during their delay),
	 * and the client is neither refused nor delayed */
	assert_int_equal(accounts_throttle_new(0, &t), 0);
	now = 9000000;
	for (unsigned i = 0; i < 10; i++)
		assert_true(accounts_throttle_reserve(t, SA(a1), x, now,
						      &res[i]) >= 0);
	assert_int_equal(accounts_throttle_check(t, SA(a1), x, now),
			 ACCOUNTS_THROTTLE_REFUSE);
	for (unsigned i = 0; i < 10; i++)
		accounts_throttle_release(t, SA(a1), x,
					  ACCOUNTS_THROTTLE_CANCEL, now + 1,
					  &res[i]);
	assert_int_equal(accounts_throttle_check(t, SA(a1), x, now + 2), 0);
	accounts_throttle_free(&t);
}

struct throttle_thread {
	struct accounts_throttle *t;
	unsigned admitted;
};

static void *throttle_thread_run(void *p)
{
	struct throttle_thread *a = p;
	struct sockaddr_storage ip = ip_of("203.0.113.9");
	struct accounts_throttle_res res;

	for (unsigned i = 0; i < 1000; i++) {
		if (accounts_throttle_reserve(a->t, SA(ip), NULL, 1000000,
					      &res) != ACCOUNTS_THROTTLE_REFUSE)
			a->admitted++;
	}
	return NULL;
}

/* One instance shared by worker threads: the window limit holds across
 * all of them together. */
static void test_throttle_threads(void **state)
{
	struct throttle_thread a[4];
	pthread_t th[4];
	struct accounts_throttle *t = NULL;
	unsigned total = 0;

	(void)state;
	assert_int_equal(accounts_throttle_new(0, &t), 0);
	for (unsigned i = 0; i < 4; i++) {
		a[i].t = t;
		a[i].admitted = 0;
		assert_int_equal(pthread_create(&th[i], NULL,
						throttle_thread_run, &a[i]),
				 0);
	}
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		total += a[i].admitted;
	}
	assert_int_equal(total, 10);
	accounts_throttle_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_then_login),
		cmocka_unit_test(test_rules_in_order),
		cmocka_unit_test(test_nocreate_log_text),
		cmocka_unit_test(test_existing_login_while_refusing),
		cmocka_unit_test(test_ip_relay_domain),
		cmocka_unit_test(test_domain_case_sensitive),
		cmocka_unit_test(test_password_edge_cases),
		cmocka_unit_test(test_hash_unit),
		cmocka_unit_test(test_hash_openssl_and_python),
		cmocka_unit_test(test_wrong_password_never_overwrites),
		cmocka_unit_test(test_concurrent_first_logins),
		cmocka_unit_test(test_map_growth),
		cmocka_unit_test(test_crash_consistency),
		cmocka_unit_test(test_last_login),
		cmocka_unit_test(test_flags_delete_iterate),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_async),
		cmocka_unit_test(test_throttle),
		cmocka_unit_test(test_throttle_bounded),
		cmocka_unit_test(test_throttle_reserve),
		cmocka_unit_test(test_throttle_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
