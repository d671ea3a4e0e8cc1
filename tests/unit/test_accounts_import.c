/* tests/unit/test_accounts_import: accounts_import_chatmail over a
 * chatmail/relay mailboxes tree fabricated here (hashes from our code,
 * OpenSSL and Python's crypt; empty and foreign password files; the
 * enforceE2EEincoming file; metadata.json in both formats, corrupt and
 * with escapes; password mtimes), run twice for idempotence; then the
 * `ringmail import-chatmail` and `ringmail user` commands on it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

/* system */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* project */
#include "core/accounts/accounts-int.h"
#include "core/accounts/accounts.h"

#define DOMAIN "example.org"
#define NOW    ((int64_t)1750000000)
#define DAY    86400

struct tree {
	char *root;
	char mbox[512];
	char data[512];
};

static void tree_mkdir(struct tree *t, const char *name)
{
	char p[1024];

	snprintf(p, sizeof(p), "%s/%s", t->mbox, name);
	assert_int_equal(mkdir(p, 0700), 0);
}

static void tree_file(struct tree *t, const char *name, const char *file,
		      const char *content, int64_t mtime)
{
	char p[1024];

	snprintf(p, sizeof(p), "%s/%s/%s", t->mbox, name, file);
	assert_int_equal(testutil_write_file(p, content, strlen(content)), 0);
	if (mtime != 0) {
		struct timespec ts[2] = {{.tv_sec = (time_t)mtime},
					 {.tv_sec = (time_t)mtime}};

		assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	}
}

static char *our_hash(const char *pw)
{
	char h[ACCOUNTS_HASH_MAX];

	assert_int_equal(accounts_hash_make(pw, h), 0);
	return strdup(h);
}

/* "{SHA512-CRYPT}" + the first line of @cmd, or NULL. */
static char *cmd_hash(const char *cmd)
{
	char buf[512], out[600];
	FILE *p = popen(cmd, "r");
	bool ok;

	if (p == NULL)
		return NULL;
	ok = fgets(buf, sizeof(buf), p) != NULL;
	if (pclose(p) != 0 || !ok || strncmp(buf, "$6$", 3) != 0)
		return NULL;
	buf[strcspn(buf, "\r\n")] = '\0';
	snprintf(out, sizeof(out), "{SHA512-CRYPT}%s", buf);
	return strdup(out);
}

struct notes {
	char text[16384];
	unsigned skipped, warned, progress;
};

static void note_cb(const char *name, bool skipped, const char *reason,
		    void *arg)
{
	struct notes *n = arg;
	size_t len = strlen(n->text);

	snprintf(n->text + len, sizeof(n->text) - len, "%s %s: %s\n",
		 skipped ? "skip" : "warn", name, reason);
	if (skipped)
		n->skipped++;
	else
		n->warned++;
}

static void progress_cb(const struct accounts_import_report *r, void *arg)
{
	struct notes *n = arg;

	(void)r;
	n->progress++;
}

static int run_import(struct accounts *a, const char *mbox, struct notes *n,
		      struct accounts_import_report *r)
{
	struct accounts_import_opts o;

	memset(n, 0, sizeof(*n));
	memset(&o, 0, sizeof(o));
	o.now = NOW;
	o.note = note_cb;
	o.progress = progress_cb;
	o.progress_every = 2;
	o.arg = n;
	return accounts_import_chatmail(a, mbox, &o, r);
}

static bool has(const char *hay, const char *needle)
{
	if (strstr(hay, needle) != NULL)
		return true;
	print_message("missing '%s' in:\n%s\n", needle, hay);
	return false;
}

static void tree_build(struct tree *t, bool *have_py, bool *have_ossl)
{
	char *h, *py, *ossl, meta[1024];

	t->root = testutil_mkdtemp("test_accounts_import");
	assert_non_null(t->root);
	snprintf(t->mbox, sizeof(t->mbox), "%s/mail", t->root);
	snprintf(t->data, sizeof(t->data), "%s/data", t->root);
	assert_int_equal(mkdir(t->mbox, 0700), 0);

	/* a current account: hash, enforce file, tokens (one expired) */
	tree_mkdir(t, "alice0001@" DOMAIN);
	h = our_hash("alice-pass-1");
	tree_file(t, "alice0001@" DOMAIN, "password", h, NOW - 3 * DAY);
	free(h);
	tree_file(t, "alice0001@" DOMAIN, "enforceE2EEincoming", "", 0);
	snprintf(meta, sizeof(meta),
		 "{\"devicetoken\": {\"tok-a\": %lld, \"tok-b\": %lld, "
		 "\"tok-old\": %lld}}",
		 (long long)(NOW - 100), (long long)(NOW - 200),
		 (long long)(NOW - 100 * DAY));
	tree_file(t, "alice0001@" DOMAIN, "metadata.json", meta, 0);
	/* an account from before 1.6: no enforce file; legacy token list */
	tree_mkdir(t, "bob000002@" DOMAIN);
	h = our_hash("bob-pass-22");
	tree_file(t, "bob000002@" DOMAIN, "password", h, NOW - 10 * DAY);
	free(h);
	tree_file(t, "bob000002@" DOMAIN, "metadata.json",
		  "{\"devicetoken\":[\"legacy-1\",\"legacy-2\"]}", 0);
	/* an empty password file is no account */
	tree_mkdir(t, "empty0003@" DOMAIN);
	tree_file(t, "empty0003@" DOMAIN, "password", "", 0);
	/* schemes we do not take */
	tree_mkdir(t, "md5xxxx04@" DOMAIN);
	tree_file(t, "md5xxxx04@" DOMAIN, "password",
		  "{MD5-CRYPT}$1$saltsalt$abcdefghijklmnopqrstuv", 0);
	tree_mkdir(t, "plain0005@" DOMAIN);
	tree_file(t, "plain0005@" DOMAIN, "password", "{PLAIN}secret", 0);
	/* no password file at all */
	tree_mkdir(t, "nopass006@" DOMAIN);
	/* a corrupt metadata.json: the account still comes over */
	tree_mkdir(t, "corrupt07@" DOMAIN);
	h = our_hash("corrupt-pass-7");
	tree_file(t, "corrupt07@" DOMAIN, "password", h, NOW - DAY);
	free(h);
	tree_file(t, "corrupt07@" DOMAIN, "metadata.json", "{\"devicetoken\"",
		  0);
	/* foreign domain, a name Dovecot never passes on */
	tree_mkdir(t, "other0008@other.org");
	h = our_hash("other-pass-8");
	tree_file(t, "other0008@other.org", "password", h, 0);
	tree_mkdir(t, "Upper0009@" DOMAIN);
	tree_file(t, "Upper0009@" DOMAIN, "password", h, 0);
	free(h);
	/* escapes, unknown keys, a trailing newline on the hash */
	tree_mkdir(t, "escaped10@" DOMAIN);
	h = our_hash("escaped-pass-10");
	snprintf(meta, sizeof(meta), "%s\n", h);
	tree_file(t, "escaped10@" DOMAIN, "password", meta, NOW - 5 * DAY);
	free(h);
	snprintf(meta, sizeof(meta),
		 " { \"other\" : [1, {\"x\": null}, true, false, -1.5e3, "
		 "\"s\\\"\"],\n \"devicetoken\" : { "
		 "\"webpush:https:\\/\\/push.example\\/x|p\\u00e4|a\" : %lld "
		 ", \"emoji-\\ud83d\\ude00\": %lld.0 } } \n",
		 (long long)(NOW - 5), (long long)(NOW - 6));
	tree_file(t, "escaped10@" DOMAIN, "metadata.json", meta, 0);
	/* hashes made by other implementations */
	py = cmd_hash("python3 -W ignore -c 'import crypt; "
		      "print(crypt.crypt(\"python-pass-11\", "
		      "crypt.METHOD_SHA512))' 2>/dev/null");
	*have_py = py != NULL;
	if (py != NULL) {
		tree_mkdir(t, "python011@" DOMAIN);
		tree_file(t, "python011@" DOMAIN, "password", py, NOW - DAY);
		free(py);
	}
	ossl = cmd_hash("openssl passwd -6 -salt 0123456789abcdef "
			"openssl-pass-12 2>/dev/null");
	*have_ossl = ossl != NULL;
	if (ossl != NULL) {
		tree_mkdir(t, "openssl12@" DOMAIN);
		tree_file(t, "openssl12@" DOMAIN, "password", ossl, NOW - DAY);
		free(ossl);
	}
	/* not account directories */
	snprintf(meta, sizeof(meta), "%s/file0013@" DOMAIN, t->mbox);
	assert_int_equal(testutil_write_file(meta, "x", 1), 0);
	snprintf(meta, sizeof(meta), "%s/dovecot-uidlist", t->mbox);
	assert_int_equal(testutil_write_file(meta, "x", 1), 0);
}

static struct accounts *open_store(struct tree *t, const char *domain)
{
	struct accounts_policy pol;
	struct accounts *a = NULL;

	accounts_policy_defaults(&pol);
	pol.mail_domain = domain;
	pol.nocreate_file = "";
	assert_int_equal(accounts_open(t->data, &pol, &a), 0);
	return a;
}

static enum accounts_result auth(struct accounts *a, const char *addr,
				 const char *pw)
{
	struct accounts_auth_info info;

	return accounts_authenticate(a, addr, pw, strlen(pw), &info);
}

static void test_import_tree(void **state)
{
	struct accounts_import_report r;
	struct accounts_record rec, before;
	struct accounts_tokens *tk;
	struct accounts *a;
	struct notes *n = calloc(1, sizeof(*n));
	struct tree t;
	bool py, ossl;
	unsigned extra;
	char meta[1024];

	(void)state;
	tree_build(&t, &py, &ossl);
	extra = (unsigned)py + (unsigned)ossl;
	a = open_store(&t, DOMAIN);

	assert_int_equal(run_import(a, t.mbox, n, &r), 0);
	print_message("%s", n->text);
	assert_int_equal(r.scanned, 10 + extra);
	assert_int_equal(r.imported, 4 + extra);
	assert_int_equal(r.updated, 0);
	assert_int_equal(r.unchanged, 0);
	assert_int_equal(r.skipped, 6);
	assert_int_equal(n->skipped, 6);
	assert_int_equal(n->progress, (10 + extra) / 2);
	assert_true(has(n->text, "skip empty0003@" DOMAIN
				 ": empty password file (no account)"));
	assert_true(has(n->text, "skip md5xxxx04@" DOMAIN
				 ": password is not a {SHA512-CRYPT}$6$"));
	assert_true(has(n->text, "skip plain0005@" DOMAIN
				 ": password is not a {SHA512-CRYPT}$6$"));
	assert_true(
		has(n->text, "skip nopass006@" DOMAIN ": no password file"));
	assert_true(has(n->text, "skip other0008@other.org: not an address "
				 "of " DOMAIN));
	assert_true(
		has(n->text, "skip Upper0009@" DOMAIN ": not a login name"));
	assert_true(has(n->text,
			"warn corrupt07@" DOMAIN ": corrupt metadata.json"));
	assert_true(has(n->text, "warn alice0001@" DOMAIN
				 ": 1 expired device tokens not imported"));
	/* tok-a, tok-b, legacy-1, legacy-2, two escaped ones */
	assert_int_equal(r.tokens, 6);

	/* alice: hash verifies, mtime is the last login, enforce flag */
	assert_int_equal(accounts_lookup(a, "alice0001@" DOMAIN, &rec), 0);
	assert_int_equal(rec.last_login, NOW - 3 * DAY);
	assert_int_equal(rec.created, 0);
	assert_int_equal(rec.flags, ACCOUNTS_F_ENFORCE_E2EE);
	assert_int_equal(auth(a, "alice0001@" DOMAIN, "alice-pass-1"),
			 ACCOUNTS_OK);
	assert_int_equal(auth(a, "alice0001@" DOMAIN, "alice-pass-2"),
			 ACCOUNTS_WRONG_PASSWORD);
	assert_int_equal(accounts_tokens_get(a, "alice0001@" DOMAIN, NOW, &tk),
			 0);
	assert_int_equal(tk->n, 2);
	assert_string_equal(tk->t[0].token, "tok-a");
	assert_int_equal(tk->t[0].set_at, NOW - 100);
	assert_string_equal(tk->t[1].token, "tok-b");
	assert_int_equal(tk->t[1].set_at, NOW - 200);
	free(tk);
	/* bob: legacy account, legacy tokens stamped with the file mtime
	 * (capped at now) */
	assert_int_equal(accounts_lookup(a, "bob000002@" DOMAIN, &rec), 0);
	assert_int_equal(rec.flags, 0);
	assert_int_equal(rec.last_login, NOW - 10 * DAY);
	assert_int_equal(auth(a, "bob000002@" DOMAIN, "bob-pass-22"),
			 ACCOUNTS_OK);
	assert_int_equal(accounts_tokens_get(a, "bob000002@" DOMAIN, NOW, &tk),
			 0);
	assert_int_equal(tk->n, 2);
	assert_string_equal(tk->t[0].token, "legacy-1");
	assert_int_equal(tk->t[0].set_at, NOW);
	free(tk);
	/* escaped tokens decoded */
	assert_int_equal(auth(a, "escaped10@" DOMAIN, "escaped-pass-10"),
			 ACCOUNTS_OK);
	assert_int_equal(accounts_tokens_get(a, "escaped10@" DOMAIN, NOW, &tk),
			 0);
	assert_int_equal(tk->n, 2);
	assert_string_equal(tk->t[0].token,
			    "webpush:https://push.example/x|p\xc3\xa4|a");
	assert_string_equal(tk->t[1].token, "emoji-\xf0\x9f\x98\x80");
	assert_int_equal(tk->t[1].set_at, NOW - 6);
	free(tk);
	assert_int_equal(auth(a, "corrupt07@" DOMAIN, "corrupt-pass-7"),
			 ACCOUNTS_OK);
	if (py)
		assert_int_equal(auth(a, "python011@" DOMAIN, "python-pass-11"),
				 ACCOUNTS_OK);
	else
		print_message("  python3 crypt unavailable: case skipped\n");
	if (ossl)
		assert_int_equal(
			auth(a, "openssl12@" DOMAIN, "openssl-pass-12"),
			ACCOUNTS_OK);
	/* skipped ones do not exist; an empty password file means the
	 * next login creates the account (chatmail does the same) */
	assert_int_equal(accounts_exists(a, "md5xxxx04@" DOMAIN), 0);
	assert_int_equal(accounts_exists(a, "empty0003@" DOMAIN), 0);
	assert_int_equal(accounts_count(a), 4 + extra);

	/* Again: nothing changes. */
	assert_int_equal(accounts_lookup(a, "alice0001@" DOMAIN, &before), 0);
	assert_int_equal(run_import(a, t.mbox, n, &r), 0);
	assert_int_equal(r.imported, 0);
	assert_int_equal(r.updated, 0);
	assert_int_equal(r.unchanged, 4 + extra);
	assert_int_equal(r.skipped, 6);
	assert_int_equal(r.tokens, 0);
	assert_int_equal(accounts_lookup(a, "alice0001@" DOMAIN, &rec), 0);
	assert_memory_equal(&rec, &before, sizeof(rec));
	assert_int_equal(accounts_count(a), 4 + extra);
	assert_int_equal(accounts_tokens_get(a, "alice0001@" DOMAIN, NOW, &tk),
			 0);
	assert_int_equal(tk->n, 2);
	free(tk);

	/* Changes since: a newer login, a new token, an operator's
	 * allow-cleartext (kept), a conflicting hash (kept, reported). */
	{
		char *h = our_hash("alice-pass-other");

		tree_file(&t, "alice0001@" DOMAIN, "password", h, NOW - DAY);
		free(h);
	}
	tree_file(&t, "escaped10@" DOMAIN, "enforceE2EEincoming", "", 0);
	tree_file(&t, "corrupt07@" DOMAIN, "metadata.json",
		  "{\"devicetoken\": {\"fresh\": 1749999999}}", 0);
	tree_file(&t, "bob000002@" DOMAIN, "password", "", 0);
	assert_int_equal(accounts_set_flag(a, "escaped10@" DOMAIN,
					   ACCOUNTS_F_ALLOW_CLEARTEXT),
			 0);
	snprintf(meta, sizeof(meta), "%s/escaped10@" DOMAIN "/password",
		 t.mbox);
	{
		struct timespec ts[2] = {{.tv_sec = NOW}, {.tv_sec = NOW}};

		assert_int_equal(utimensat(AT_FDCWD, meta, ts, 0), 0);
	}
	assert_int_equal(run_import(a, t.mbox, n, &r), 0);
	print_message("%s", n->text);
	assert_int_equal(r.imported, 0);
	assert_int_equal(r.updated, 2); /* corrupt07 token, escaped10 login */
	assert_int_equal(r.skipped, 8); /* + alice conflict, bob empty */
	assert_true(has(n->text, "skip alice0001@" DOMAIN
				 ": exists here with another password hash"));
	assert_int_equal(auth(a, "alice0001@" DOMAIN, "alice-pass-1"),
			 ACCOUNTS_OK);
	assert_int_equal(accounts_lookup(a, "escaped10@" DOMAIN, &rec), 0);
	assert_int_equal(rec.last_login, NOW);
	assert_int_equal(rec.flags, ACCOUNTS_F_ALLOW_CLEARTEXT);
	assert_int_equal(accounts_exists(a, "bob000002@" DOMAIN), 1);

	/* Without a mail domain every directory is a candidate. */
	accounts_close(&a);
	a = open_store(&t, NULL);
	assert_int_equal(run_import(a, t.mbox, n, &r), 0);
	assert_int_equal(r.imported, 1); /* other0008@other.org */
	assert_int_equal(run_import(a, "/nonexistent/dir", n, &r), -ENOENT);
	accounts_close(&a);
	testutil_rmtree(t.root);
	free(t.root);
	free(n);
}

/* ---- the commands, against the built binary */

static int run_cmd(const char *cmd, char *out, size_t outsz)
{
	FILE *p = popen(cmd, "r");
	size_t n = 0, k;
	int st;

	assert_non_null(p);
	while (n + 1 < outsz && (k = fread(out + n, 1, outsz - n - 1, p)) > 0)
		n += k;
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_commands(void **state)
{
	const char *bin = getenv("RINGMAIL_BIN");
	char cmd[2048], out[8192];
	struct tree t;
	bool py, ossl;

	(void)state;
	if (bin == NULL || access(bin, X_OK) != 0) {
		print_message("  RINGMAIL_BIN not set: skipped\n");
		skip();
	}
	tree_build(&t, &py, &ossl);
	snprintf(cmd, sizeof(cmd),
		 "%s import-chatmail --data-dir %s --mail-domain " DOMAIN
		 " %s 2>&1",
		 bin, t.data, t.mbox);
	assert_int_equal(run_cmd(cmd, out, sizeof(out)), 0);
	print_message("%s", out);
	snprintf(cmd, sizeof(cmd), "imported %u, updated 0, skipped 6",
		 4u + (unsigned)py + (unsigned)ossl);
	assert_true(has(out, cmd));
	assert_true(has(out, "skipped empty0003@" DOMAIN
			     ": empty password file (no account)"));
	assert_true(has(out, "warning: corrupt07@" DOMAIN));
	/* idempotent */
	snprintf(cmd, sizeof(cmd),
		 "%s import-chatmail --data-dir %s --mail-domain " DOMAIN
		 " %s 2>&1",
		 bin, t.data, t.mbox);
	assert_int_equal(run_cmd(cmd, out, sizeof(out)), 0);
	assert_true(has(out, "imported 0, updated 0, skipped 6"));

	snprintf(cmd, sizeof(cmd), "%s user --data-dir %s list", bin, t.data);
	assert_int_equal(run_cmd(cmd, out, sizeof(out)), 0);
	assert_true(has(out, "alice0001@" DOMAIN "\nbob000002@" DOMAIN
			     "\ncorrupt07@" DOMAIN "\nescaped10@" DOMAIN "\n"));
	snprintf(cmd, sizeof(cmd),
		 "%s user --data-dir %s show alice0001@" DOMAIN, bin, t.data);
	assert_int_equal(run_cmd(cmd, out, sizeof(out)), 0);
	print_message("%s", out);
	assert_true(has(out, "password:            {SHA512-CRYPT}\n"));
	assert_null(strstr(out, "$6$")); /* the hash is not shown */
	assert_true(has(out, "enforceE2EEincoming: yes"));
	assert_true(has(out, "created:             unknown"));
	snprintf(cmd, sizeof(cmd),
		 "%s user --data-dir %s allow-cleartext alice0001@" DOMAIN
		 " && %s user --data-dir %s show alice0001@" DOMAIN,
		 bin, t.data, bin, t.data);
	assert_int_equal(run_cmd(cmd, out, sizeof(out)), 0);
	assert_true(has(out, "enforceE2EEincoming: no"));
	assert_true(has(out, "allow-cleartext:     yes"));
	snprintf(cmd, sizeof(cmd),
		 "%s user --data-dir %s enforce-e2ee alice0001@" DOMAIN
		 " && %s user --data-dir %s show alice0001@" DOMAIN,
		 bin, t.data, bin, t.data);
	assert_int_equal(run_cmd(cmd, out, sizeof(out)), 0);
	assert_true(has(out, "enforceE2EEincoming: yes"));
	snprintf(cmd, sizeof(cmd),
		 "%s user --data-dir %s delete bob000002@" DOMAIN, bin, t.data);
	assert_int_equal(run_cmd(cmd, out, sizeof(out)), 0);
	snprintf(cmd, sizeof(cmd),
		 "%s user --data-dir %s show bob000002@" DOMAIN " 2>&1", bin,
		 t.data);
	assert_int_equal(run_cmd(cmd, out, sizeof(out)), 1);
	assert_true(has(out, "no such account: bob000002@" DOMAIN));
	snprintf(cmd, sizeof(cmd), "%s user --data-dir %s frobnicate 2>&1", bin,
		 t.data);
	assert_int_equal(run_cmd(cmd, out, sizeof(out)), 2);
	snprintf(cmd, sizeof(cmd), "%s import-chatmail 2>&1", bin);
	assert_int_equal(run_cmd(cmd, out, sizeof(out)), 2);
	testutil_rmtree(t.root);
	free(t.root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_import_tree),
		cmocka_unit_test(test_commands),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
