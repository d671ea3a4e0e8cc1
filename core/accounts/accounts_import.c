/* core/accounts/accounts_import: import a chatmail/relay mailboxes directory.
 *
 * chatmail keeps each account in <mailboxes_dir>/<addr>/: "password" (the
 * "{SHA512-CRYPT}$6$..." hash, no newline; empty = no account; its mtime
 * is the last login, C.3/C.8), an empty "enforceE2EEincoming" (C.10) and
 * "metadata.json" {"devicetoken": {"<token>": <unix_ts>, ...}} or the
 * legacy {"devicetoken": ["t1", ...]} (H.2). Accounts are parsed outside
 * any transaction and applied in batches, one fsync per batch; a crash
 * mid-way is repaired by running the import again (it is idempotent). */
#include "core/accounts/accounts.h"

/* system */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* project */
#include "core/accounts/accounts-int.h"
#include "core/kv.h"
#include "core/log.h"

#define IMPORT_BATCH         128u
#define IMPORT_PASSWORD_MAX  4096
#define IMPORT_METADATA_MAX  (1 << 20)
#define IMPORT_TOKENS_PARSED 1024u
#define IMPORT_JSON_DEPTH    32

struct import_tok {
	char *token;
	size_t len;
	int64_t ts;
};

enum import_outcome {
	IMPORT_NEW,
	IMPORT_UPDATED,
	IMPORT_UNCHANGED,
	IMPORT_CONFLICT, /* exists with another hash: left alone */
};

struct import_ent {
	char name[ACCOUNTS_ADDR_MAX + 1];
	struct accounts_record rec;
	struct import_tok *toks;
	size_t ntoks;
	enum import_outcome outcome; /* set by the transaction */
	unsigned tokens_changed;
};

struct import_ctx {
	struct accounts *a;
	const struct accounts_import_opts *opts;
	struct accounts_import_report *r;
	int64_t now;
	struct import_ent *batch;
	size_t n;
};

static void import_note(struct import_ctx *c, const char *name, bool skipped,
			const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void import_note(struct import_ctx *c, const char *name, bool skipped,
			const char *fmt, ...)
{
	char reason[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (skipped)
		c->r->skipped++;
	if (c->opts->note != NULL)
		c->opts->note(name, skipped, reason, c->opts->arg);
}

/* ---- a minimal JSON reader: just enough for metadata.json. No JSON
 * library is among our dependencies; the input is small and bounded. */

struct import_json {
	const char *p, *end;
	struct import_tok *toks;
	size_t ntoks;
	unsigned dropped;
};

static void json_ws(struct import_json *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
				 *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static bool json_lit(struct import_json *j, char c)
{
	json_ws(j);
	if (j->p < j->end && *j->p == c) {
		j->p++;
		return true;
	}
	return false;
}

static int json_hex4(struct import_json *j, unsigned *v)
{
	*v = 0;
	if (j->end - j->p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char c = *j->p++;

		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	return 0;
}

/* Append code point @cp as UTF-8 if it fits (else mark @over). */
static void json_put_utf8(char *out, size_t cap, size_t *n, unsigned cp,
			  bool *over)
{
	char b[4];
	size_t k;

	if (cp < 0x80) {
		b[0] = (char)cp;
		k = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		k = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		k = 3;
	} else {
		b[0] = (char)(0xf0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		k = 4;
	}
	if (*n + k >= cap) {
		*over = true;
		return;
	}
	memcpy(out + *n, b, k);
	*n += k;
}

/* A string into @out (NUL-terminated, @cap bytes; NULL: just skip it).
 * 0 ok, 1 ok but too long or holding NUL (out unusable), -1 syntax. */
static int json_string(struct import_json *j, char *out, size_t cap,
		       size_t *len_r)
{
	size_t n = 0;
	bool over = out == NULL;
	unsigned cp, lo;

	if (!json_lit(j, '"'))
		return -1;
	while (j->p < j->end && *j->p != '"') {
		unsigned char c = (unsigned char)*j->p++;

		if (c < 0x20)
			return -1;
		if (c != '\\') {
			if (!over && n + 1 < cap)
				out[n++] = (char)c;
			else
				over = true;
			continue;
		}
		if (j->p >= j->end)
			return -1;
		c = (unsigned char)*j->p++;
		switch (c) {
		case '"':
		case '\\':
		case '/':
			cp = c;
			break;
		case 'b':
			cp = '\b';
			break;
		case 'f':
			cp = '\f';
			break;
		case 'n':
			cp = '\n';
			break;
		case 'r':
			cp = '\r';
			break;
		case 't':
			cp = '\t';
			break;
		case 'u':
			if (json_hex4(j, &cp) < 0)
				return -1;
			if (cp >= 0xd800 && cp < 0xdc00 && j->end - j->p >= 6 &&
			    j->p[0] == '\\' && j->p[1] == 'u') {
				j->p += 2;
				if (json_hex4(j, &lo) < 0)
					return -1;
				if (lo >= 0xdc00 && lo < 0xe000)
					cp = 0x10000 + ((cp - 0xd800) << 10) +
					     (lo - 0xdc00);
				else
					cp = 0xfffd;
			} else if (cp >= 0xd800 && cp < 0xe000) {
				cp = 0xfffd;
			}
			if (cp == 0)
				over = true; /* a NUL: unusable as a token */
			break;
		default:
			return -1;
		}
		if (!over)
			json_put_utf8(out, cap, &n, cp, &over);
	}
	if (j->p >= j->end)
		return -1;
	j->p++;
	if (out != NULL && !over)
		out[n] = '\0';
	if (len_r != NULL)
		*len_r = n;
	return over && out != NULL ? 1 : 0;
}

/* A number as an integer (fractions truncated). */
static int json_number(struct import_json *j, int64_t *v)
{
	char buf[40];
	size_t n = 0;
	double d;
	char *end;

	json_ws(j);
	while (j->p < j->end && n + 1 < sizeof(buf) &&
	       strchr("+-0123456789.eE", *j->p) != NULL)
		buf[n++] = *j->p++;
	buf[n] = '\0';
	if (n == 0)
		return -1;
	errno = 0;
	d = strtod(buf, &end);
	if (*end != '\0' || errno != 0 || d != d || d > 9.2e18 || d < -9.2e18)
		return -1;
	*v = (int64_t)d;
	return 0;
}

static int json_word(struct import_json *j, const char *w)
{
	size_t len = strlen(w);

	if ((size_t)(j->end - j->p) < len || memcmp(j->p, w, len) != 0)
		return -1;
	j->p += len;
	return 0;
}

static int json_skip(struct import_json *j, int depth)
{
	int64_t num;

	if (depth > IMPORT_JSON_DEPTH)
		return -1;
	json_ws(j);
	if (j->p >= j->end)
		return -1;
	switch (*j->p) {
	case '"':
		return json_string(j, NULL, 0, NULL);
	case '{':
		j->p++;
		if (json_lit(j, '}'))
			return 0;
		do {
			if (json_string(j, NULL, 0, NULL) < 0 ||
			    !json_lit(j, ':') || json_skip(j, depth + 1) < 0)
				return -1;
		} while (json_lit(j, ','));
		return json_lit(j, '}') ? 0 : -1;
	case '[':
		j->p++;
		if (json_lit(j, ']'))
			return 0;
		do {
			if (json_skip(j, depth + 1) < 0)
				return -1;
		} while (json_lit(j, ','));
		return json_lit(j, ']') ? 0 : -1;
	case 't':
		return json_word(j, "true");
	case 'f':
		return json_word(j, "false");
	case 'n':
		return json_word(j, "null");
	default:
		return json_number(j, &num);
	}
}

static int json_add_token(struct import_json *j, const char *tok, size_t len,
			  int64_t ts)
{
	struct import_tok *t;

	if (j->ntoks >= IMPORT_TOKENS_PARSED || len == 0) {
		j->dropped++;
		return 0;
	}
	if (j->toks == NULL) {
		j->toks = calloc(IMPORT_TOKENS_PARSED, sizeof(*j->toks));
		if (j->toks == NULL)
			return -1;
	}
	t = &j->toks[j->ntoks];
	t->token = malloc(len + 1);
	if (t->token == NULL)
		return -1;
	memcpy(t->token, tok, len + 1);
	t->len = len;
	t->ts = ts;
	j->ntoks++;
	return 0;
}

/* The "devicetoken" value: {"tok": ts, ...} or ["tok", ...] (@now). */
static int json_devicetokens(struct import_json *j, char *tok, int64_t now)
{
	size_t len;
	int64_t ts;
	int rc;

	if (json_lit(j, '{')) {
		if (json_lit(j, '}'))
			return 0;
		do {
			rc = json_string(j, tok, ACCOUNTS_TOKEN_MAX + 1, &len);
			if (rc < 0 || !json_lit(j, ':') ||
			    json_number(j, &ts) < 0)
				return -1;
			if (rc == 1)
				j->dropped++;
			else if (json_add_token(j, tok, len, ts) < 0)
				return -1;
		} while (json_lit(j, ','));
		return json_lit(j, '}') ? 0 : -1;
	}
	if (json_lit(j, '[')) {
		if (json_lit(j, ']'))
			return 0;
		do {
			rc = json_string(j, tok, ACCOUNTS_TOKEN_MAX + 1, &len);
			if (rc < 0)
				return -1;
			if (rc == 1)
				j->dropped++;
			else if (json_add_token(j, tok, len, now) < 0)
				return -1;
		} while (json_lit(j, ','));
		return json_lit(j, ']') ? 0 : -1;
	}
	return json_skip(j, 1);
}

static int json_metadata(struct import_json *j, int64_t now)
{
	char key[32];
	char *tok = malloc(ACCOUNTS_TOKEN_MAX + 1);
	int rc, ret = -1;

	if (tok == NULL)
		return -1;
	if (!json_lit(j, '{'))
		goto out;
	if (json_lit(j, '}')) {
		ret = 0;
		goto out;
	}
	do {
		rc = json_string(j, key, sizeof(key), NULL);
		if (rc < 0 || !json_lit(j, ':'))
			goto out;
		if (rc == 0 && strcmp(key, "devicetoken") == 0)
			rc = json_devicetokens(j, tok, now);
		else
			rc = json_skip(j, 1);
		if (rc < 0)
			goto out;
	} while (json_lit(j, ','));
	if (json_lit(j, '}')) {
		json_ws(j);
		ret = j->p == j->end ? 0 : -1;
	}
out:
	free(tok);
	return ret;
}

/* ---- one account directory */

static void import_ent_clear(struct import_ent *e)
{
	for (size_t i = 0; i < e->ntoks; i++)
		free(e->toks[i].token);
	free(e->toks);
	memset(e, 0, sizeof(*e));
}

/* Read a whole small file at @dfd/@name into a malloc'd buffer. 0, -ENOENT,
 * -EFBIG or -errno. */
static int import_read(int dfd, const char *name, size_t max, char **buf_r,
		       size_t *len_r, struct stat *st)
{
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	size_t len = 0;
	char *buf = NULL;
	ssize_t n;
	int ret = 0;

	*buf_r = NULL;
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		ret = -EINVAL;
		goto out;
	}
	if ((size_t)st->st_size > max) {
		ret = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st->st_size + 1);
	if (buf == NULL) {
		ret = -ENOMEM;
		goto out;
	}
	while (len < (size_t)st->st_size) {
		n = read(fd, buf + len, (size_t)st->st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*buf_r = buf;
	*len_r = len;
out:
	close(fd);
	if (ret < 0)
		free(buf);
	return ret;
}

static void import_metadata(struct import_ctx *c, int adfd,
			    struct import_ent *e)
{
	struct import_json j;
	struct stat st;
	unsigned expired = 0;
	size_t len, kept = 0;
	char *buf;
	int ret;

	ret = import_read(adfd, "metadata.json", IMPORT_METADATA_MAX, &buf,
			  &len, &st);
	if (ret == -ENOENT)
		return;
	if (ret < 0) {
		import_note(c, e->name, false,
			    "metadata.json unreadable (%s); no tokens",
			    strerror(-ret));
		return;
	}
	memset(&j, 0, sizeof(j));
	j.p = buf;
	j.end = buf + len;
	/* Legacy token lists carry no times: stamp them with the file's
	 * mtime (not "now"), so a re-import changes nothing. */
	if (json_metadata(&j, (int64_t)st.st_mtime < c->now
				      ? (int64_t)st.st_mtime
				      : c->now) < 0) {
		/* chatmail reads a corrupt file as {} too */
		import_note(c, e->name, false,
			    "corrupt metadata.json; no tokens imported");
		for (size_t i = 0; i < j.ntoks; i++)
			free(j.toks[i].token);
		free(j.toks);
		free(buf);
		return;
	}
	free(buf);
	for (size_t i = 0; i < j.ntoks; i++) {
		if (j.toks[i].ts > c->now - ACCOUNTS_TOKEN_VALIDITY_S &&
		    j.toks[i].ts < c->now + 60) {
			j.toks[kept++] = j.toks[i];
		} else {
			free(j.toks[i].token);
			expired++;
		}
	}
	if (expired > 0)
		import_note(c, e->name, false,
			    "%u expired device tokens not imported", expired);
	if (j.dropped > 0)
		import_note(c, e->name, false,
			    "%u unusable device tokens not imported",
			    j.dropped);
	e->toks = j.toks;
	e->ntoks = kept;
}

/* Fill @e from <dfd>/<name>/. 0 = import it; -1 = skipped (noted). */
static int import_parse(struct import_ctx *c, int dfd, const char *name,
			struct import_ent *e)
{
	char norm[ACCOUNTS_ADDR_MAX + 1];
	struct stat st;
	size_t len;
	char *pw = NULL;
	int adfd, ret;

	memset(e, 0, sizeof(*e));
	if (accounts_addr_normalize(name, norm, sizeof(norm)) < 0 ||
	    strcmp(norm, name) != 0) {
		import_note(c, name, true,
			    "not a login name Dovecot would pass on");
		return -1;
	}
	if (c->a->policy.mail_domain != NULL &&
	    !accounts_addr_is_local(&c->a->policy, name)) {
		import_note(c, name, true, "not an address of %s",
			    c->a->policy.mail_domain);
		return -1;
	}
	memcpy(e->name, name, strlen(name) + 1);
	adfd = openat(dfd, name,
		      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (adfd < 0) {
		import_note(c, name, true, "cannot open: %s", strerror(errno));
		return -1;
	}
	ret = import_read(adfd, "password", IMPORT_PASSWORD_MAX, &pw, &len,
			  &st);
	if (ret < 0) {
		if (ret == -ENOENT)
			import_note(c, name, true, "no password file");
		else
			import_note(c, name, true,
				    "password file unreadable (%s)",
				    strerror(-ret));
		goto fail;
	}
	while (len > 0 && (pw[len - 1] == '\n' || pw[len - 1] == '\r'))
		pw[--len] = '\0';
	if (len == 0) {
		/* chatmail: "password is empty for: <addr>", no account */
		import_note(c, name, true, "empty password file (no account)");
		goto fail;
	}
	if (!accounts_hash_supported(pw)) {
		import_note(c, name, true,
			    "password is not a " ACCOUNTS_HASH_PREFIX
			    "... hash");
		goto fail;
	}
	e->rec.version = ACCOUNTS_RECORD_VERSION;
	memcpy(e->rec.hash, pw, len + 1);
	e->rec.last_login = (int64_t)st.st_mtime; /* C.8 */
	e->rec.created = 0;                       /* chatmail has no record */
	if (fstatat(adfd, "enforceE2EEincoming", &st, AT_SYMLINK_NOFOLLOW) == 0)
		e->rec.flags |= ACCOUNTS_F_ENFORCE_E2EE;
	import_metadata(c, adfd, e);
	free(pw);
	close(adfd);
	return 0;
fail:
	free(pw);
	close(adfd);
	import_ent_clear(e);
	return -1;
}

/* ---- applying a batch */

static int import_apply_one(struct accounts *a, struct kv_txn *txn,
			    struct import_ent *e, int64_t now)
{
	struct accounts_record cur;
	bool changed = false, tchanged;
	int rc;

	e->tokens_changed = 0;
	rc = accounts_record_get_txn(a, txn, e->name, &cur);
	if (rc == -ENOENT) {
		rc = accounts_record_put_txn(a, txn, e->name, &e->rec);
		if (rc != 0)
			return rc;
		e->outcome = IMPORT_NEW;
	} else if (rc != 0) {
		return rc;
	} else if (strcmp(cur.hash, e->rec.hash) != 0) {
		e->outcome = IMPORT_CONFLICT;
		return 0;
	} else {
		if (e->rec.last_login > cur.last_login) {
			cur.last_login = e->rec.last_login;
			changed = true;
		}
		/* Never undo an operator's allow-cleartext. */
		if ((e->rec.flags & ACCOUNTS_F_ENFORCE_E2EE) &&
		    !(cur.flags &
		      (ACCOUNTS_F_ENFORCE_E2EE | ACCOUNTS_F_ALLOW_CLEARTEXT))) {
			cur.flags |= ACCOUNTS_F_ENFORCE_E2EE;
			changed = true;
		}
		if (changed) {
			rc = accounts_record_put_txn(a, txn, e->name, &cur);
			if (rc != 0)
				return rc;
		}
		e->outcome = IMPORT_UNCHANGED;
	}
	for (size_t i = 0; i < e->ntoks; i++) {
		rc = accounts_tokens_add_txn(a, txn, e->name, e->toks[i].token,
					     e->toks[i].len, e->toks[i].ts, now,
					     &tchanged);
		if (rc != 0)
			return rc;
		if (tchanged)
			e->tokens_changed++;
	}
	if (e->outcome == IMPORT_UNCHANGED && (changed || e->tokens_changed))
		e->outcome = IMPORT_UPDATED;
	return 0;
}

static int import_apply_txn(struct kv_txn *txn, void *arg)
{
	struct import_ctx *c = arg;
	int rc;

	for (size_t i = 0; i < c->n; i++) {
		rc = import_apply_one(c->a, txn, &c->batch[i], c->now);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int import_flush(struct import_ctx *c)
{
	int rc = 0;

	if (c->n > 0)
		rc = kv_write(c->a->kv, import_apply_txn, c);
	for (size_t i = 0; i < c->n; i++) {
		struct import_ent *e = &c->batch[i];

		if (rc != 0) {
			import_ent_clear(e);
			continue;
		}
		switch (e->outcome) {
		case IMPORT_NEW:
			c->r->imported++;
			break;
		case IMPORT_UPDATED:
			c->r->updated++;
			break;
		case IMPORT_UNCHANGED:
			c->r->unchanged++;
			break;
		case IMPORT_CONFLICT:
			import_note(c, e->name, true,
				    "exists here with another password hash; "
				    "kept");
			break;
		}
		c->r->tokens += e->tokens_changed;
		import_ent_clear(e);
	}
	c->n = 0;
	return rc;
}

int accounts_import_chatmail(struct accounts *a, const char *mailboxes_dir,
			     const struct accounts_import_opts *opts,
			     struct accounts_import_report *r)
{
	struct import_ctx c;
	struct dirent *de;
	struct stat st;
	DIR *d = NULL;
	int dfd, ret = 0;

	memset(r, 0, sizeof(*r));
	memset(&c, 0, sizeof(c));
	c.a = a;
	c.opts = opts;
	c.r = r;
	c.now = opts->now != 0 ? opts->now : (int64_t)time(NULL);
	dfd = open(mailboxes_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	d = fdopendir(dfd);
	c.batch = calloc(IMPORT_BATCH, sizeof(*c.batch));
	if (d == NULL || c.batch == NULL) {
		ret = d == NULL ? -errno : -ENOMEM;
		if (d == NULL)
			close(dfd);
		goto out;
	}
	while ((errno = 0, de = readdir(d)) != NULL) {
		if (strchr(de->d_name, '@') == NULL)
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		r->scanned++;
		if (import_parse(&c, dfd, de->d_name, &c.batch[c.n]) == 0)
			c.n++;
		if (c.n == IMPORT_BATCH) {
			ret = import_flush(&c);
			if (ret < 0)
				goto out;
		}
		if (opts->progress != NULL && opts->progress_every > 0 &&
		    r->scanned % opts->progress_every == 0)
			opts->progress(r, opts->arg);
	}
	if (errno != 0)
		ret = -errno;
	if (ret == 0)
		ret = import_flush(&c);
out:
	if (c.batch != NULL) {
		for (size_t i = 0; i < c.n; i++)
			import_ent_clear(&c.batch[i]);
		free(c.batch);
	}
	if (d != NULL)
		closedir(d);
	return ret;
}
