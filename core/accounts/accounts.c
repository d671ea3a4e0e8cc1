/* core/accounts/accounts: the store and chatmail's create-on-login.
 *
 * One kv environment (core/kv), <data_dir>/accounts.mdb (a single file,
 * so other modules can keep their own stores in the same directory),
 * with two tables: "accounts" (address -> record) and "tokens" (address
 * -> device tokens, accounts_tokens.c). Values are little-endian with a
 * leading version byte so the format can change later.
 *
 * Durability, map growth, readers-full recovery and write retries are
 * core/kv's: every write below is one kv_write, committed and fsync'd
 * before it returns, and its callback may run more than once. */
#include "core/accounts/accounts.h"

/* system */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* project */
#include "core/accounts/accounts-int.h"
#include "core/kv.h"
#include "core/log.h"
#include "core/pool.h"

#define ACCOUNTS_FILE        "accounts.mdb"
#define ACCOUNTS_MAX_TABLES  4u
#define ACCOUNTS_MAX_READERS 1024u
#define ACCOUNTS_ITER_BATCH  256u
/* version, flags, created, last_login, hash length */
#define ACCOUNTS_REC_HDR (1u + 4u + 8u + 8u + 2u)

/* ---- open, close */

static int accounts_dup(const char *s, char **r)
{
	*r = NULL;
	if (s == NULL)
		return 0;
	*r = strdup(s);
	return *r != NULL ? 0 : -ENOMEM;
}

int accounts_open(const char *data_dir, const struct accounts_policy *policy,
		  struct accounts **a_r)
{
	struct kv_opts ko = {.name = "accounts",
			     .map_size = policy->initial_map_size,
			     .max_tables = ACCOUNTS_MAX_TABLES,
			     .max_readers = ACCOUNTS_MAX_READERS};
	struct accounts *a;
	size_t plen = strlen(data_dir) + sizeof("/" ACCOUNTS_FILE);
	int ret;

	*a_r = NULL;
	if (mkdir(data_dir, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		log_err("accounts: mkdir %s: %s", data_dir, strerror(errno));
		return ret;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	a->policy = *policy;
	ret = accounts_dup(policy->mail_domain, &a->mail_domain);
	if (ret == 0)
		ret = accounts_dup(policy->mailboxes_dir, &a->mailboxes_dir);
	if (ret == 0)
		ret = accounts_dup(policy->nocreate_file, &a->nocreate_file);
	a->path = malloc(plen);
	if (ret < 0 || a->path == NULL) {
		ret = -ENOMEM;
		goto fail;
	}
	snprintf(a->path, plen, "%s/%s", data_dir, ACCOUNTS_FILE);
	a->policy.mail_domain = a->mail_domain;
	a->policy.mailboxes_dir = a->mailboxes_dir;
	a->policy.nocreate_file = a->nocreate_file;

	ret = kv_env_open(a->path, &ko, &a->kv);
	if (ret == 0)
		ret = kv_table_open(a->kv, "accounts", &a->t_accounts);
	if (ret == 0)
		ret = kv_table_open(a->kv, "tokens", &a->t_tokens);
	if (ret < 0)
		goto fail;
	*a_r = a;
	return 0;
fail:
	accounts_close(&a);
	return ret;
}

void accounts_close(struct accounts **ap)
{
	struct accounts *a = *ap;

	if (a == NULL)
		return;
	*ap = NULL;
	kv_env_close(&a->kv);
	free(a->mail_domain);
	free(a->mailboxes_dir);
	free(a->nocreate_file);
	free(a->path);
	free(a);
}

/* ---- records */

bool accounts_key(const char *addr, size_t *len_r)
{
	size_t len = addr != NULL ? strlen(addr) : 0;

	*len_r = len;
	return len > 0 && len <= ACCOUNTS_ADDR_MAX;
}

static int accounts_record_decode(const uint8_t *p, size_t size,
				  struct accounts_record *r)
{
	uint16_t hlen;

	memset(r, 0, sizeof(*r));
	if (size < ACCOUNTS_REC_HDR || p[0] != ACCOUNTS_RECORD_VERSION)
		return -EPROTO;
	hlen = kv_get_u16(p + 21);
	if (hlen >= ACCOUNTS_HASH_MAX || size != ACCOUNTS_REC_HDR + hlen)
		return -EPROTO;
	r->version = p[0];
	r->flags = kv_get_u32(p + 1);
	r->created = (int64_t)kv_get_u64(p + 5);
	r->last_login = (int64_t)kv_get_u64(p + 13);
	memcpy(r->hash, p + ACCOUNTS_REC_HDR, hlen);
	r->hash[hlen] = '\0';
	return 0;
}

int accounts_record_get_txn(struct accounts *a, struct kv_txn *txn,
			    const char *addr, struct accounts_record *r)
{
	const void *v;
	size_t klen, vlen;
	int rc;

	if (!accounts_key(addr, &klen))
		return -ENOENT;
	rc = kv_get(txn, a->t_accounts, addr, klen, &v, &vlen);
	if (rc != 0)
		return rc;
	rc = accounts_record_decode(v, vlen, r);
	if (rc != 0)
		log_err("accounts: unreadable record for %s", addr);
	return rc;
}

int accounts_record_put_txn(struct accounts *a, struct kv_txn *txn,
			    const char *addr, const struct accounts_record *r)
{
	uint8_t buf[ACCOUNTS_REC_HDR + ACCOUNTS_HASH_MAX];
	size_t hlen = strlen(r->hash), klen;

	if (!accounts_key(addr, &klen) || hlen >= ACCOUNTS_HASH_MAX)
		return -EINVAL;
	buf[0] = ACCOUNTS_RECORD_VERSION;
	kv_put_u32(buf + 1, r->flags);
	kv_put_u64(buf + 5, (uint64_t)r->created);
	kv_put_u64(buf + 13, (uint64_t)r->last_login);
	kv_put_u16(buf + 21, (uint16_t)hlen);
	memcpy(buf + ACCOUNTS_REC_HDR, r->hash, hlen);
	return kv_put(txn, a->t_accounts, addr, klen, buf,
		      ACCOUNTS_REC_HDR + hlen, 0);
}

struct accounts_get_op {
	struct accounts *a;
	const char *addr;
	struct accounts_record *r;
};

static int accounts_lookup_txn(struct kv_txn *txn, void *arg)
{
	struct accounts_get_op *op = arg;

	return accounts_record_get_txn(op->a, txn, op->addr, op->r);
}

int accounts_lookup(struct accounts *a, const char *addr,
		    struct accounts_record *r)
{
	struct accounts_get_op op = {.a = a, .addr = addr, .r = r};
	size_t klen;

	if (!accounts_key(addr, &klen))
		return -ENOENT;
	return kv_read(a->kv, accounts_lookup_txn, &op);
}

int accounts_exists(struct accounts *a, const char *addr)
{
	struct accounts_record r;
	int ret = accounts_lookup(a, addr, &r);

	if (ret == -ENOENT)
		return 0;
	return ret == 0 ? 1 : ret;
}

struct accounts_count_op {
	struct accounts *a;
	uint64_t n;
};

static int accounts_count_txn(struct kv_txn *txn, void *arg)
{
	struct accounts_count_op *op = arg;

	return kv_count(txn, op->a->t_accounts, &op->n);
}

int64_t accounts_count(struct accounts *a)
{
	struct accounts_count_op op = {.a = a};
	int ret = kv_read(a->kv, accounts_count_txn, &op);

	return ret < 0 ? ret : (int64_t)op.n;
}

struct accounts_flag_op {
	struct accounts *a;
	const char *addr;
	uint32_t set, clear;
};

static int accounts_flag_txn(struct kv_txn *txn, void *arg)
{
	struct accounts_flag_op *op = arg;
	struct accounts_record r;
	uint32_t flags;
	int rc;

	rc = accounts_record_get_txn(op->a, txn, op->addr, &r);
	if (rc != 0)
		return rc;
	flags = (r.flags & ~op->clear) | op->set;
	if (flags == r.flags)
		return KV_SKIP;
	r.flags = flags;
	return accounts_record_put_txn(op->a, txn, op->addr, &r);
}

int accounts_set_flag(struct accounts *a, const char *addr, uint32_t flag)
{
	struct accounts_flag_op op = {.a = a, .addr = addr};
	int rc;

	if (flag == ACCOUNTS_F_ENFORCE_E2EE) {
		op.set = ACCOUNTS_F_ENFORCE_E2EE;
		op.clear = ACCOUNTS_F_ALLOW_CLEARTEXT;
	} else if (flag == ACCOUNTS_F_ALLOW_CLEARTEXT) {
		op.set = ACCOUNTS_F_ALLOW_CLEARTEXT;
		op.clear = ACCOUNTS_F_ENFORCE_E2EE;
	} else {
		return -EINVAL;
	}
	rc = kv_write(a->kv, accounts_flag_txn, &op);
	return rc == KV_SKIP ? 0 : rc;
}

struct accounts_delete_op {
	struct accounts *a;
	const char *addr;
};

static int accounts_delete_txn(struct kv_txn *txn, void *arg)
{
	struct accounts_delete_op *op = arg;
	size_t klen;
	int rc;

	if (!accounts_key(op->addr, &klen))
		return -ENOENT;
	rc = kv_del(txn, op->a->t_accounts, op->addr, klen);
	if (rc != 0)
		return rc;
	rc = kv_del(txn, op->a->t_tokens, op->addr, klen);
	return rc == -ENOENT ? 0 : rc;
}

int accounts_delete(struct accounts *a, const char *addr)
{
	struct accounts_delete_op op = {.a = a, .addr = addr};

	return kv_write(a->kv, accounts_delete_txn, &op);
}

struct accounts_iter_ent {
	char addr[ACCOUNTS_ADDR_MAX + 1];
	struct accounts_record rec;
};

/* Up to ACCOUNTS_ITER_BATCH records after @last (or from the first),
 * copied out so the caller's callback runs with no transaction open. */
struct accounts_iter_batch {
	struct accounts *a;
	const char *last;
	struct accounts_iter_ent *ents;
	size_t n;
};

static int accounts_iter_one(const void *k, size_t klen, const void *v,
			     size_t vlen, void *arg)
{
	struct accounts_iter_batch *b = arg;
	struct accounts_iter_ent *e = &b->ents[b->n];

	if (klen == 0 || klen > ACCOUNTS_ADDR_MAX ||
	    accounts_record_decode(v, vlen, &e->rec) != 0) {
		log_warn("accounts: skipping an unreadable record");
		return 0;
	}
	memcpy(e->addr, k, klen);
	e->addr[klen] = '\0';
	return ++b->n == ACCOUNTS_ITER_BATCH ? 1 : 0;
}

static int accounts_iter_txn(struct kv_txn *txn, void *arg)
{
	struct accounts_iter_batch *b = arg;
	int rc;

	b->n = 0;
	rc = kv_iterate(txn, b->a->t_accounts, b->last,
			b->last != NULL ? strlen(b->last) : 0, KV_ITER_AFTER,
			accounts_iter_one, b);
	return rc > 0 ? 0 : rc;
}

int accounts_iterate(struct accounts *a, accounts_iter_fn *fn, void *arg)
{
	struct accounts_iter_batch b = {.a = a};
	char last[ACCOUNTS_ADDR_MAX + 1];
	int ret = 0;

	b.ents = calloc(ACCOUNTS_ITER_BATCH, sizeof(*b.ents));
	if (b.ents == NULL)
		return -ENOMEM;
	for (;;) {
		ret = kv_read(a->kv, accounts_iter_txn, &b);
		if (ret != 0)
			break;
		for (size_t i = 0; i < b.n && ret == 0; i++)
			ret = fn(b.ents[i].addr, &b.ents[i].rec, arg);
		if (ret != 0 || b.n < ACCOUNTS_ITER_BATCH)
			break;
		memcpy(last, b.ents[b.n - 1].addr, sizeof(last));
		b.last = last;
	}
	free(b.ents);
	return ret;
}

/* ---- last login (C.8) */

struct accounts_touch_op {
	struct accounts *a;
	const char *addr;
	int64_t day;
};

static int accounts_touch_txn(struct kv_txn *txn, void *arg)
{
	struct accounts_touch_op *op = arg;
	struct accounts_record r;
	int rc;

	rc = accounts_record_get_txn(op->a, txn, op->addr, &r);
	if (rc != 0)
		return rc;
	if (r.last_login == op->day)
		return KV_SKIP;
	r.last_login = op->day;
	return accounts_record_put_txn(op->a, txn, op->addr, &r);
}

int accounts_touch_last_login(struct accounts *a, const char *addr, int64_t now)
{
	struct accounts_touch_op op = {.a = a, .addr = addr};
	struct accounts_record r;
	int ret, rc;

	if (now < 0)
		return -EINVAL;
	op.day = now / 86400 * 86400;
	/* Most logins are on a day already recorded: read first. */
	ret = accounts_lookup(a, addr, &r);
	if (ret < 0 || r.last_login == op.day)
		return ret;
	rc = kv_write(a->kv, accounts_touch_txn, &op);
	return rc == KV_SKIP ? 0 : rc;
}

struct accounts_touch_job {
	struct accounts *a;
	int64_t now;
	char addr[];
};

static void accounts_touch_work(void *arg)
{
	struct accounts_touch_job *j = arg;
	int ret = accounts_touch_last_login(j->a, j->addr, j->now);

	if (ret < 0 && ret != -ENOENT)
		log_warn("accounts: last login of %s not recorded: %s", j->addr,
			 strerror(-ret));
	free(j);
}

int accounts_touch_last_login_async(struct accounts *a, struct pool *pool,
				    const char *addr, int64_t now)
{
	size_t len = strlen(addr);
	struct accounts_touch_job *j = malloc(sizeof(*j) + len + 1);
	int ret;

	if (j == NULL)
		return -ENOMEM;
	j->a = a;
	j->now = now;
	memcpy(j->addr, addr, len + 1);
	ret = pool_submit(pool, NULL, accounts_touch_work, NULL, j);
	if (ret < 0)
		free(j);
	return ret;
}

/* ---- authentication (C.4) */

struct accounts_create_op {
	struct accounts *a;
	const char *addr;
	struct accounts_record rec;      /* to store */
	struct accounts_record existing; /* what a concurrent login stored */
};

static int accounts_create_txn(struct kv_txn *txn, void *arg)
{
	struct accounts_create_op *op = arg;
	int rc;

	/* Re-check under the write lock: a concurrent first login of the
	 * same address may have won. */
	rc = accounts_record_get_txn(op->a, txn, op->addr, &op->existing);
	if (rc == 0)
		return KV_SKIP;
	if (rc != -ENOENT)
		return rc;
	return accounts_record_put_txn(op->a, txn, op->addr, &op->rec);
}

static enum accounts_result accounts_verify(const char *addr,
					    const struct accounts_record *r,
					    const char *pw,
					    struct accounts_auth_info *info)
{
	int ret = accounts_hash_verify(pw, r->hash);

	if (ret == 1) {
		info->flags = r->flags;
		return ACCOUNTS_OK;
	}
	if (ret < 0 && ret != -EINVAL) {
		info->code = ACCOUNTS_R_STORE;
		snprintf(info->reason, sizeof(info->reason), "verify: %s",
			 strerror(-ret));
		return ACCOUNTS_TEMPFAIL;
	}
	if (ret == -EINVAL)
		log_err("accounts: %s has a hash we cannot verify", addr);
	return ACCOUNTS_WRONG_PASSWORD;
}

static enum accounts_result accounts_tempfail(struct accounts_auth_info *info,
					      int err)
{
	info->code = ACCOUNTS_R_STORE;
	snprintf(info->reason, sizeof(info->reason), "store: %s",
		 strerror(err < 0 ? -err : err));
	return ACCOUNTS_TEMPFAIL;
}

enum accounts_result accounts_authenticate(struct accounts *a,
					   const char *addr_in,
					   const char *password, size_t pwlen,
					   struct accounts_auth_info *info)
{
	struct accounts_create_op *op;
	char *pw = NULL;
	bool pw_ok;
	enum accounts_result res;
	int ret, rc;

	memset(info, 0, sizeof(*info));
	/* Dovecot: auth_username_chars, %Lu. */
	if (accounts_addr_normalize(addr_in, info->addr, sizeof(info->addr)) <
	    0) {
		info->code = ACCOUNTS_R_INVALID_ADDR;
		snprintf(info->reason, sizeof(info->reason),
			 "invalid login name");
		return ACCOUNTS_REFUSED;
	}
	/* chatmail: other domains are simply not found. */
	if (!accounts_addr_is_local(&a->policy, info->addr)) {
		info->code = ACCOUNTS_R_DOMAIN;
		snprintf(info->reason, sizeof(info->reason),
			 "not an address of this relay");
		return ACCOUNTS_REFUSED;
	}
	op = calloc(1, sizeof(*op));
	pw_ok = pwlen <= ACCOUNTS_PASSWORD_MAX &&
		memchr(password, '\0', pwlen) == NULL;
	if (pw_ok)
		pw = malloc(pwlen + 1);
	if (op == NULL || (pw_ok && pw == NULL)) {
		res = accounts_tempfail(info, -ENOMEM);
		goto out;
	}
	if (pw != NULL) {
		memcpy(pw, password, pwlen);
		pw[pwlen] = '\0';
	}
	op->a = a;
	op->addr = info->addr;

	ret = accounts_lookup(a, info->addr, &op->existing);
	if (ret == 0) {
		res = pw != NULL ? accounts_verify(info->addr, &op->existing,
						   pw, info)
				 : ACCOUNTS_WRONG_PASSWORD;
		goto out;
	}
	if (ret != -ENOENT) {
		res = accounts_tempfail(info, ret);
		goto out;
	}
	if (accounts_rules_check(&a->policy, info->addr, password, pwlen,
				 info) < 0) {
		res = ACCOUNTS_REFUSED;
		goto out;
	}
	if (pw == NULL) {
		info->code = ACCOUNTS_R_INVALID_PASS;
		snprintf(info->reason, sizeof(info->reason),
			 "password unusable (NUL or over %u bytes)",
			 ACCOUNTS_PASSWORD_MAX);
		res = ACCOUNTS_REFUSED;
		goto out;
	}
	/* Hash outside the write lock: concurrent creations of different
	 * addresses overlap their crypt work. */
	ret = accounts_hash_make(pw, op->rec.hash);
	if (ret < 0) {
		res = accounts_tempfail(info, ret);
		goto out;
	}
	op->rec.version = ACCOUNTS_RECORD_VERSION;
	op->rec.flags = ACCOUNTS_F_ENFORCE_E2EE;
	op->rec.created = (int64_t)time(NULL);
	op->rec.last_login = op->rec.created; /* C.8: not truncated */
	rc = kv_write(a->kv, accounts_create_txn, op);
	if (rc == KV_SKIP) {
		res = accounts_verify(info->addr, &op->existing, pw, info);
		goto out;
	}
	if (rc != 0) {
		res = accounts_tempfail(info, rc);
		goto out;
	}
	info->flags = op->rec.flags;
	log_info("Created address: %s", info->addr);
	res = ACCOUNTS_CREATED;
out:
	if (pw != NULL) {
		explicit_bzero(pw, pwlen);
		free(pw);
	}
	free(op);
	return res;
}

struct accounts_auth_job {
	struct accounts *a;
	accounts_auth_done_fn *done;
	void *arg;
	enum accounts_result res;
	struct accounts_auth_info info;
	size_t pwlen;
	char *pw;
	char addr[]; /* then the password */
};

static void accounts_auth_work(void *arg)
{
	struct accounts_auth_job *j = arg;

	j->res =
		accounts_authenticate(j->a, j->addr, j->pw, j->pwlen, &j->info);
	explicit_bzero(j->pw, j->pwlen);
}

static void accounts_auth_done(void *arg)
{
	struct accounts_auth_job *j = arg;

	j->done(j->res, &j->info, j->arg);
	free(j);
}

int accounts_authenticate_async(struct accounts *a, struct pool *pool,
				struct loop *origin, const char *addr,
				const char *password, size_t pwlen,
				accounts_auth_done_fn *done, void *arg)
{
	struct accounts_auth_job *j;
	size_t alen = strlen(addr);
	int ret;

	if (done == NULL || origin == NULL)
		return -EINVAL;
	if (alen > ACCOUNTS_ADDR_MAX + 1)
		alen = ACCOUNTS_ADDR_MAX + 1; /* still refused as too long */
	if (pwlen > ACCOUNTS_PASSWORD_MAX + 1)
		pwlen = ACCOUNTS_PASSWORD_MAX + 1; /* still refused */
	j = calloc(1, sizeof(*j) + alen + 1 + pwlen + 1);
	if (j == NULL)
		return -ENOMEM;
	j->a = a;
	j->done = done;
	j->arg = arg;
	memcpy(j->addr, addr, alen);
	j->pw = j->addr + alen + 1;
	memcpy(j->pw, password, pwlen);
	j->pwlen = pwlen;
	ret = pool_submit(pool, origin, accounts_auth_work, accounts_auth_done,
			  j);
	if (ret < 0) {
		explicit_bzero(j->pw, pwlen);
		free(j);
	}
	return ret;
}
