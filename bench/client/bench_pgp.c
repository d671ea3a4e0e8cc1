/* bench/client/bench_pgp: the PGP/MIME message `ringmail bench` submits:
 * real OpenPGP made with GPGME at start-up (a fresh key in a temporary
 * GNUPGHOME, a chat-sized text encrypted to it, ASCII armor), wrapped as
 * RFC 3156 multipart/encrypted the way Delta Chat sends it, so that it
 * passes a chatmail relay's E2EE filter (filter/e2ee.h). Also the random
 * credentials of fresh accounts. */
#include "bench/client/bench_client.h"

/* system */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* third party */
#include <gpgme.h>

#define BENCH_BOUNDARY "rmbench0boundary"

static void bench_random(void *p, size_t n)
{
	uint8_t *b = p;

	while (n > 0) {
		ssize_t r = getrandom(b, n, 0);

		if (r <= 0)
			continue;
		b += r;
		n -= (size_t)r;
	}
}

static void bench_random_alnum(char *out, size_t n)
{
	static const char set[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	uint8_t r[64];

	for (size_t i = 0; i < n; i++) {
		if (i % sizeof(r) == 0)
			bench_random(r, sizeof(r));
		/* 252 = 7 * 36: reject above it for no bias. */
		while (r[i % sizeof(r)] >= 252)
			bench_random(&r[i % sizeof(r)], 1);
		out[i] = set[r[i % sizeof(r)] % 36];
	}
	out[n] = '\0';
}

void bench_account_make(struct bench_account *a, const char *domain,
			unsigned localpart_len)
{
	char lp[65];

	if (localpart_len > 64)
		localpart_len = 64;
	memset(a, 0, sizeof(*a));
	bench_random_alnum(lp, localpart_len);
	snprintf(a->addr, sizeof(a->addr), "%s@%s", lp, domain);
	bench_random_alnum(a->pass, BENCH_PASS_LEN);
}

/* ---- temporary GNUPGHOME ---- */

static int bench_rm_cb(const char *path, const struct stat *st, int flag,
		       struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* gpgconf --homedir @home --kill all: the gpg-agent (and anything else)
 * GPGME started for that home, and only that. */
static void bench_gpg_kill(const char *home)
{
	const char *gpgconf = gpgme_get_dirinfo("gpgconf-name");
	pid_t pid;
	int st;

	if (gpgconf == NULL)
		return;
	pid = fork();
	if (pid < 0)
		return;
	if (pid == 0) {
		execl(gpgconf, gpgconf, "--homedir", home, "--kill", "all",
		      (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		;
}

static int bench_pgp_add(struct bench_pgp *p, size_t *cap, const void *d,
			 size_t n)
{
	if (p->body_len + n + 1 > *cap) {
		size_t nc = (*cap + n + 1) * 2;
		uint8_t *nb = realloc(p->body, nc);

		if (nb == NULL)
			return -1;
		p->body = nb;
		*cap = nc;
	}
	memcpy(p->body + p->body_len, d, n);
	p->body_len += n;
	return 0;
}

/* Append the armor with CRLF line ends, dot-stuffed. */
static int bench_pgp_add_armor(struct bench_pgp *p, size_t *cap, const char *a,
			       size_t n)
{
	size_t i = 0;

	while (i < n) {
		const char *lf = memchr(a + i, '\n', n - i);
		size_t end = lf != NULL ? (size_t)(lf - a) : n;
		size_t le = end;

		if (le > i && a[le - 1] == '\r')
			le--;
		if (a[i] == '.' && bench_pgp_add(p, cap, ".", 1) != 0)
			return -1;
		if (bench_pgp_add(p, cap, a + i, le - i) != 0 ||
		    bench_pgp_add(p, cap, "\r\n", 2) != 0)
			return -1;
		i = end + 1;
	}
	return 0;
}

int bench_pgp_make(struct bench_pgp *p, const char *domain, size_t plain_size,
		   char *err, size_t err_len)
{
	static const char head[] =
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/encrypted; "
		"protocol=\"application/pgp-encrypted\";\r\n"
		" boundary=\"" BENCH_BOUNDARY "\"\r\n"
		"\r\n"
		"--" BENCH_BOUNDARY "\r\n"
		"Content-Type: application/pgp-encrypted\r\n"
		"Content-Description: PGP/MIME version identification\r\n"
		"\r\n"
		"Version: 1\r\n"
		"\r\n"
		"--" BENCH_BOUNDARY "\r\n"
		"Content-Type: application/octet-stream; "
		"name=\"encrypted.asc\"\r\n"
		"Content-Description: OpenPGP encrypted message\r\n"
		"Content-Disposition: inline; filename=\"encrypted.asc\"\r\n"
		"\r\n";
	static const char tail[] = "\r\n--" BENCH_BOUNDARY "--\r\n";
	char home[] = "/tmp/ringmail-bench-gpg-XXXXXX", uid[200];
	gpgme_ctx_t ctx = NULL;
	gpgme_key_t key = NULL, keys[2];
	gpgme_data_t plain = NULL, cipher = NULL;
	gpgme_genkey_result_t gr;
	gpgme_error_t ge;
	char *text = NULL, *armor = NULL;
	size_t cap = 0, alen = 0, tl;
	bool made_home = false;
	int r = -1;

	memset(p, 0, sizeof(*p));
	gpgme_check_version(NULL);
	if (mkdtemp(home) == NULL) {
		snprintf(err, err_len, "mkdtemp %s failed", home);
		goto out;
	}
	made_home = true;
	if ((ge = gpgme_new(&ctx)) != 0 ||
	    (ge = gpgme_ctx_set_engine_info(ctx, GPGME_PROTOCOL_OpenPGP, NULL,
					    home)) != 0) {
		snprintf(err, err_len, "GPGME: %s", gpgme_strerror(ge));
		goto out;
	}
	snprintf(uid, sizeof(uid), "ringmail bench <bench@%s>", domain);
	ge = gpgme_op_createkey(ctx, uid, "future-default", 0, 0, NULL,
				GPGME_CREATE_NOPASSWD | GPGME_CREATE_NOEXPIRE);
	gr = ge == 0 ? gpgme_op_genkey_result(ctx) : NULL;
	if (gr == NULL || gr->fpr == NULL ||
	    (ge = gpgme_get_key(ctx, gr->fpr, &key, 0)) != 0) {
		snprintf(err, err_len, "GPGME key generation: %s",
			 gpgme_strerror(ge));
		goto out;
	}
	/* The cleartext a chat client encrypts: a MIME text part. */
	if (plain_size < 64)
		plain_size = 64;
	text = malloc(plain_size + 1);
	if (text == NULL)
		goto out;
	tl = (size_t)snprintf(
		text, plain_size + 1,
		"Content-Type: text/plain; charset=utf-8\r\n\r\n");
	while (tl < plain_size) {
		text[tl] = (tl % 72 == 71) ? '\n' : (char)('a' + tl % 26);
		tl++;
	}
	if (gpgme_data_new_from_mem(&plain, text, tl, 0) != 0 ||
	    gpgme_data_new(&cipher) != 0)
		goto out;
	gpgme_set_armor(ctx, 1);
	keys[0] = key;
	keys[1] = NULL;
	ge = gpgme_op_encrypt(ctx, keys, GPGME_ENCRYPT_ALWAYS_TRUST, plain,
			      cipher);
	if (ge != 0) {
		snprintf(err, err_len, "GPGME encrypt: %s", gpgme_strerror(ge));
		goto out;
	}
	armor = gpgme_data_release_and_get_mem(cipher, &alen);
	cipher = NULL;
	if (armor == NULL || alen == 0)
		goto out;
	if (bench_pgp_add(p, &cap, head, sizeof(head) - 1) != 0 ||
	    bench_pgp_add_armor(p, &cap, armor, alen) != 0 ||
	    bench_pgp_add(p, &cap, tail, sizeof(tail) - 1) != 0)
		goto out;
	r = 0;
out:
	if (r != 0 && err[0] == '\0')
		snprintf(err, err_len, "cannot make the PGP/MIME message");
	if (armor != NULL)
		gpgme_free(armor);
	gpgme_data_release(cipher);
	gpgme_data_release(plain);
	free(text);
	if (key != NULL)
		gpgme_key_unref(key);
	if (ctx != NULL)
		gpgme_release(ctx);
	if (made_home) {
		bench_gpg_kill(home);
		nftw(home, bench_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	}
	if (r != 0)
		bench_pgp_free(p);
	return r;
}

void bench_pgp_free(struct bench_pgp *p)
{
	free(p->body);
	p->body = NULL;
	p->body_len = 0;
}

size_t bench_pgp_message(const struct bench_pgp *p, const char *from,
			 const char *to, const char *msgid, uint8_t *out,
			 size_t cap)
{
	char date[64];
	struct tm tm;
	time_t now = time(NULL);
	int n;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	n = snprintf((char *)out, cap,
		     "From: <%s>\r\n"
		     "To: <%s>\r\n"
		     "Subject: [...]\r\n"
		     "Date: %s\r\n"
		     "Message-ID: <%s>\r\n"
		     "Chat-Version: 1.0\r\n",
		     from, to, date, msgid);
	if (n < 0 || (size_t)n + p->body_len >= cap)
		return 0;
	memcpy(out + n, p->body, p->body_len);
	return (size_t)n + p->body_len;
}
