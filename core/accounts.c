/* core/accounts: the LMDB store and chatmail's create-on-login.
 *
 * One LMDB environment, <data_dir>/accounts.mdb (MDB_NOSUBDIR, so other
 * modules can keep their own stores in the same directory), with two
 * named databases: "accounts" (address -> record) and "tokens" (address
 * -> device tokens). Values are little-endian with a leading version
 * byte so the format can change later.
 *
 * Durability: the environment is opened without MDB_NOSYNC/NOMETASYNC,
 * so every commit is fsync'd before it returns, and LMDB's copy-on-write
 * pages make a crash leave either the old or the new state (Postfix's
 * slmdb does the same growth and retry dance). MDB_MAP_FULL doubles the
 * map and reruns the transaction; MDB_MAP_RESIZED (another process grew
 * it) adopts the new size; MDB_READERS_FULL clears stale readers and
 * retries, then gives up with -EAGAIN. Changing the map size needs every
 * transaction of this process closed: transactions hold map_lock shared,
 * the resize takes it exclusively. No transaction is ever nested. */
#include "core/accounts.h"

/* system */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* third party */
#include <lmdb.h>

/* project */
#include "core/accounts-int.h"
#include "core/log.h"
#include "core/pool.h"

#define ACCOUNTS_FILE        "accounts.mdb"
#define ACCOUNTS_MAP_DEFAULT ((size_t)64 << 20)
#define ACCOUNTS_MAP_MIN     ((size_t)64 << 10)
#define ACCOUNTS_MAP_MAX     ((size_t)1 << 40)
#define ACCOUNTS_MAX_READERS 1024u
#define ACCOUNTS_WRITE_TRIES 48
#define ACCOUNTS_READ_TRIES  8
#define ACCOUNTS_ITER_BATCH  256u
/* version, flags, created, last_login, hash length */
#define ACCOUNTS_REC_HDR (1u + 4u + 8u + 8u + 2u)
#define ACCOUNTS_TOK_HDR (1u + 2u)
#define ACCOUNTS_TOK_ENT (8u + 2u)

/* ---- little-endian codec */

static void accounts_put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void accounts_put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void accounts_put_i64(uint8_t *p, int64_t s)
{
	uint64_t v = (uint64_t)s;

	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t accounts_get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t accounts_get_u32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static int64_t accounts_get_i64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return (int64_t)v;
}

/* ---- errors, locks, transactions */

int accounts_mdb_errno(int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_READERS_FULL:
		return -EAGAIN;
	case MDB_MAP_FULL:
		return -ENOSPC;
	default:
		return rc > 0 ? -rc : -EIO;
	}
}

/* Grow the map (@twice) or adopt the size another process set. */
static int accounts_map_resize(struct accounts *a, bool twice)
{
	MDB_envinfo info;
	size_t size = 0;
	int rc;

	pthread_rwlock_wrlock(&a->map_lock);
	if (twice) {
		mdb_env_info(a->env, &info);
		if (info.me_mapsize >= ACCOUNTS_MAP_MAX) {
			pthread_rwlock_unlock(&a->map_lock);
			log_err("accounts: map full at %zu MiB, not growing",
				info.me_mapsize >> 20);
			return MDB_MAP_FULL;
		}
		size = info.me_mapsize * 2;
	}
	rc = mdb_env_set_mapsize(a->env, size);
	pthread_rwlock_unlock(&a->map_lock);
	if (rc != 0) {
		log_err("accounts: resizing the map: %s", mdb_strerror(rc));
		return rc;
	}
	if (twice) {
		atomic_fetch_add(&a->map_grows, 1);
		log_info("accounts: map grown to %zu KiB", size >> 10);
	} else {
		atomic_fetch_add(&a->map_adopts, 1);
	}
	return 0;
}

/* A read transaction; on success map_lock is held shared until
 * accounts_read_end. Returns an LMDB code. */
static int accounts_read_begin(struct accounts *a, MDB_txn **txn_r)
{
	int rc = 0, dead;

	for (int i = 0; i < ACCOUNTS_READ_TRIES; i++) {
		pthread_rwlock_rdlock(&a->map_lock);
		rc = mdb_txn_begin(a->env, NULL, MDB_RDONLY, txn_r);
		if (rc == 0)
			return 0;
		pthread_rwlock_unlock(&a->map_lock);
		if (rc == MDB_MAP_RESIZED) {
			accounts_map_resize(a, false);
		} else if (rc == MDB_READERS_FULL) {
			struct timespec ts = {.tv_nsec = 1000000L << i};

			dead = 0;
			mdb_reader_check(a->env, &dead);
			if (dead == 0 && i + 1 < ACCOUNTS_READ_TRIES)
				nanosleep(&ts, NULL);
		} else {
			break;
		}
	}
	log_err("accounts: read transaction: %s", mdb_strerror(rc));
	return rc;
}

static void accounts_read_end(struct accounts *a, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&a->map_lock);
}

int accounts_write(struct accounts *a, accounts_txn_fn *fn, void *arg)
{
	MDB_txn *txn;
	int rc = MDB_MAP_FULL, dead;

	pthread_mutex_lock(&a->write_lock);
	for (int i = 0; i < ACCOUNTS_WRITE_TRIES; i++) {
		pthread_rwlock_rdlock(&a->map_lock);
		rc = mdb_txn_begin(a->env, NULL, 0, &txn);
		if (rc == 0) {
			rc = fn(a, txn, arg);
			if (rc == 0)
				rc = mdb_txn_commit(txn); /* frees txn */
			else
				mdb_txn_abort(txn);
		}
		pthread_rwlock_unlock(&a->map_lock);
		if (rc == MDB_MAP_FULL) {
			if (accounts_map_resize(a, true) != 0)
				break;
		} else if (rc == MDB_MAP_RESIZED) {
			accounts_map_resize(a, false);
		} else if (rc == MDB_READERS_FULL) {
			dead = 0;
			mdb_reader_check(a->env, &dead);
			if (i >= 2)
				break;
		} else {
			break;
		}
	}
	pthread_mutex_unlock(&a->write_lock);
	if (rc != 0 && rc != ACCOUNTS_TXN_SKIP && rc != MDB_NOTFOUND &&
	    rc != EINVAL)
		log_err("accounts: write transaction: %s", mdb_strerror(rc));
	return rc;
}

/* ---- open, close */

static int accounts_open_dbs(struct accounts *a, MDB_txn *txn, void *arg)
{
	int rc;

	(void)arg;
	rc = mdb_dbi_open(txn, "accounts", MDB_CREATE, &a->dbi_accounts);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "tokens", MDB_CREATE, &a->dbi_tokens);
	return rc;
}

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
	pthread_rwlockattr_t rwa;
	struct accounts *a;
	size_t plen = strlen(data_dir) + sizeof("/" ACCOUNTS_FILE);
	size_t map = policy->initial_map_size;
	int rc, ret, dead = 0;

	*a_r = NULL;
	if (mkdir(data_dir, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		log_err("accounts: mkdir %s: %s", data_dir, strerror(errno));
		return ret;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	pthread_mutex_init(&a->write_lock, NULL);
	/* Writer preference: a resize is not starved by lookups. */
	pthread_rwlockattr_init(&rwa);
	pthread_rwlockattr_setkind_np(
		&rwa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&a->map_lock, &rwa);
	pthread_rwlockattr_destroy(&rwa);
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

	if (map == 0)
		map = ACCOUNTS_MAP_DEFAULT;
	if (map < ACCOUNTS_MAP_MIN)
		map = ACCOUNTS_MAP_MIN;
	rc = mdb_env_create(&a->env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(a->env, 4);
	if (rc == 0)
		rc = mdb_env_set_maxreaders(a->env, ACCOUNTS_MAX_READERS);
	if (rc == 0)
		rc = mdb_env_set_mapsize(a->env, map);
	/* NOTLS: read transactions are not tied to threads (pool threads
	 * and loop threads both read). No NOSYNC: commits are durable. */
	if (rc == 0)
		rc = mdb_env_open(a->env, a->path, MDB_NOSUBDIR | MDB_NOTLS,
				  0600);
	if (rc != 0) {
		log_err("accounts: open %s: %s", a->path, mdb_strerror(rc));
		ret = accounts_mdb_errno(rc);
		goto fail;
	}
	rc = mdb_reader_check(a->env, &dead);
	if (rc == 0 && dead > 0)
		log_info("accounts: cleared %d stale reader slots", dead);
	rc = accounts_write(a, accounts_open_dbs, NULL);
	if (rc != 0) {
		ret = accounts_mdb_errno(rc);
		goto fail;
	}
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
	if (a->env != NULL)
		mdb_env_close(a->env);
	pthread_rwlock_destroy(&a->map_lock);
	pthread_mutex_destroy(&a->write_lock);
	free(a->mail_domain);
	free(a->mailboxes_dir);
	free(a->nocreate_file);
	free(a->path);
	free(a);
}

/* ---- records */

static bool accounts_key(const char *addr, MDB_val *k)
{
	size_t len = addr != NULL ? strlen(addr) : 0;

	k->mv_data = (void *)addr;
	k->mv_size = len;
	return len > 0 && len <= ACCOUNTS_ADDR_MAX;
}

static int accounts_record_decode(const MDB_val *v, struct accounts_record *r)
{
	const uint8_t *p = v->mv_data;
	uint16_t hlen;

	memset(r, 0, sizeof(*r));
	if (v->mv_size < ACCOUNTS_REC_HDR || p[0] != ACCOUNTS_RECORD_VERSION)
		return EPROTO;
	hlen = accounts_get_u16(p + 21);
	if (hlen >= ACCOUNTS_HASH_MAX || v->mv_size != ACCOUNTS_REC_HDR + hlen)
		return EPROTO;
	r->version = p[0];
	r->flags = accounts_get_u32(p + 1);
	r->created = accounts_get_i64(p + 5);
	r->last_login = accounts_get_i64(p + 13);
	memcpy(r->hash, p + ACCOUNTS_REC_HDR, hlen);
	r->hash[hlen] = '\0';
	return 0;
}

int accounts_record_get_txn(struct accounts *a, MDB_txn *txn, const char *addr,
			    struct accounts_record *r)
{
	MDB_val k, v;
	int rc;

	if (!accounts_key(addr, &k))
		return MDB_NOTFOUND;
	rc = mdb_get(txn, a->dbi_accounts, &k, &v);
	if (rc != 0)
		return rc;
	rc = accounts_record_decode(&v, r);
	if (rc != 0)
		log_err("accounts: unreadable record for %s", addr);
	return rc;
}

int accounts_record_put_txn(struct accounts *a, MDB_txn *txn, const char *addr,
			    const struct accounts_record *r)
{
	uint8_t buf[ACCOUNTS_REC_HDR + ACCOUNTS_HASH_MAX];
	size_t hlen = strlen(r->hash);
	MDB_val k, v;

	if (!accounts_key(addr, &k) || hlen >= ACCOUNTS_HASH_MAX)
		return EINVAL;
	buf[0] = ACCOUNTS_RECORD_VERSION;
	accounts_put_u32(buf + 1, r->flags);
	accounts_put_i64(buf + 5, r->created);
	accounts_put_i64(buf + 13, r->last_login);
	accounts_put_u16(buf + 21, (uint16_t)hlen);
	memcpy(buf + ACCOUNTS_REC_HDR, r->hash, hlen);
	v.mv_data = buf;
	v.mv_size = ACCOUNTS_REC_HDR + hlen;
	return mdb_put(txn, a->dbi_accounts, &k, &v, 0);
}

int accounts_lookup(struct accounts *a, const char *addr,
		    struct accounts_record *r)
{
	MDB_txn *txn;
	MDB_val k;
	int rc;

	if (!accounts_key(addr, &k))
		return -ENOENT;
	rc = accounts_read_begin(a, &txn);
	if (rc != 0)
		return accounts_mdb_errno(rc);
	rc = accounts_record_get_txn(a, txn, addr, r);
	accounts_read_end(a, txn);
	return accounts_mdb_errno(rc);
}

int accounts_exists(struct accounts *a, const char *addr)
{
	struct accounts_record r;
	int ret = accounts_lookup(a, addr, &r);

	if (ret == -ENOENT)
		return 0;
	return ret == 0 ? 1 : ret;
}

int64_t accounts_count(struct accounts *a)
{
	MDB_txn *txn;
	MDB_stat st;
	int rc;

	rc = accounts_read_begin(a, &txn);
	if (rc != 0)
		return accounts_mdb_errno(rc);
	rc = mdb_stat(txn, a->dbi_accounts, &st);
	accounts_read_end(a, txn);
	if (rc != 0)
		return accounts_mdb_errno(rc);
	return (int64_t)st.ms_entries;
}

struct accounts_flag_op {
	const char *addr;
	uint32_t set, clear;
};

static int accounts_flag_txn(struct accounts *a, MDB_txn *txn, void *arg)
{
	struct accounts_flag_op *op = arg;
	struct accounts_record r;
	uint32_t flags;
	int rc;

	rc = accounts_record_get_txn(a, txn, op->addr, &r);
	if (rc != 0)
		return rc;
	flags = (r.flags & ~op->clear) | op->set;
	if (flags == r.flags)
		return ACCOUNTS_TXN_SKIP;
	r.flags = flags;
	return accounts_record_put_txn(a, txn, op->addr, &r);
}

int accounts_set_flag(struct accounts *a, const char *addr, uint32_t flag)
{
	struct accounts_flag_op op = {.addr = addr};
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
	rc = accounts_write(a, accounts_flag_txn, &op);
	return rc == ACCOUNTS_TXN_SKIP ? 0 : accounts_mdb_errno(rc);
}

static int accounts_delete_txn(struct accounts *a, MDB_txn *txn, void *arg)
{
	MDB_val k;
	int rc;

	if (!accounts_key(arg, &k))
		return MDB_NOTFOUND;
	rc = mdb_del(txn, a->dbi_accounts, &k, NULL);
	if (rc != 0)
		return rc;
	rc = mdb_del(txn, a->dbi_tokens, &k, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int accounts_delete(struct accounts *a, const char *addr)
{
	return accounts_mdb_errno(
		accounts_write(a, accounts_delete_txn, (void *)addr));
}

struct accounts_iter_ent {
	char addr[ACCOUNTS_ADDR_MAX + 1];
	struct accounts_record rec;
};

/* Copy up to ACCOUNTS_ITER_BATCH records after @last (or from the first)
 * into @ents. Returns an LMDB code; *n_r set. */
static int accounts_iter_batch(struct accounts *a, const char *last,
			       struct accounts_iter_ent *ents, size_t *n_r)
{
	MDB_cursor *cur = NULL;
	MDB_txn *txn;
	MDB_val k, v;
	MDB_cursor_op op = MDB_FIRST;
	size_t n = 0;
	int rc;

	*n_r = 0;
	rc = accounts_read_begin(a, &txn);
	if (rc != 0)
		return rc;
	rc = mdb_cursor_open(txn, a->dbi_accounts, &cur);
	if (rc != 0)
		goto out;
	if (last != NULL) {
		k.mv_data = (void *)last;
		k.mv_size = strlen(last);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc == 0 && k.mv_size == strlen(last) &&
		    memcmp(k.mv_data, last, k.mv_size) == 0)
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
		op = MDB_NEXT;
	} else {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
		op = MDB_NEXT;
	}
	while (rc == 0 && n < ACCOUNTS_ITER_BATCH) {
		if (k.mv_size == 0 || k.mv_size > ACCOUNTS_ADDR_MAX ||
		    accounts_record_decode(&v, &ents[n].rec) != 0) {
			log_warn("accounts: skipping an unreadable record");
		} else {
			memcpy(ents[n].addr, k.mv_data, k.mv_size);
			ents[n].addr[k.mv_size] = '\0';
			n++;
		}
		rc = mdb_cursor_get(cur, &k, &v, op);
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	accounts_read_end(a, txn);
	*n_r = n;
	return rc;
}

int accounts_iterate(struct accounts *a, accounts_iter_fn *fn, void *arg)
{
	struct accounts_iter_ent *ents;
	char last[ACCOUNTS_ADDR_MAX + 1];
	bool have_last = false;
	size_t n;
	int rc, ret = 0;

	ents = calloc(ACCOUNTS_ITER_BATCH, sizeof(*ents));
	if (ents == NULL)
		return -ENOMEM;
	for (;;) {
		rc = accounts_iter_batch(a, have_last ? last : NULL, ents, &n);
		if (rc != 0) {
			ret = accounts_mdb_errno(rc);
			break;
		}
		for (size_t i = 0; i < n && ret == 0; i++)
			ret = fn(ents[i].addr, &ents[i].rec, arg);
		if (ret != 0 || n < ACCOUNTS_ITER_BATCH)
			break;
		memcpy(last, ents[n - 1].addr, sizeof(last));
		have_last = true;
	}
	free(ents);
	return ret;
}

/* ---- last login (C.8) */

struct accounts_touch_op {
	const char *addr;
	int64_t day;
};

static int accounts_touch_txn(struct accounts *a, MDB_txn *txn, void *arg)
{
	struct accounts_touch_op *op = arg;
	struct accounts_record r;
	int rc;

	rc = accounts_record_get_txn(a, txn, op->addr, &r);
	if (rc != 0)
		return rc;
	if (r.last_login == op->day)
		return ACCOUNTS_TXN_SKIP;
	r.last_login = op->day;
	return accounts_record_put_txn(a, txn, op->addr, &r);
}

int accounts_touch_last_login(struct accounts *a, const char *addr, int64_t now)
{
	struct accounts_touch_op op = {.addr = addr};
	struct accounts_record r;
	int ret, rc;

	if (now < 0)
		return -EINVAL;
	op.day = now / 86400 * 86400;
	/* Most logins are on a day already recorded: read first. */
	ret = accounts_lookup(a, addr, &r);
	if (ret < 0 || r.last_login == op.day)
		return ret;
	rc = accounts_write(a, accounts_touch_txn, &op);
	return rc == ACCOUNTS_TXN_SKIP ? 0 : accounts_mdb_errno(rc);
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

/* ---- device tokens */

struct accounts_tok {
	const uint8_t *p;
	uint16_t len;
	int64_t ts;
};

static bool accounts_token_valid(int64_t ts, int64_t now)
{
	return ts > now - ACCOUNTS_TOKEN_VALIDITY_S && ts < now + 60;
}

/* Parse a stored list into @t (pointers into @v). EPROTO when corrupt. */
static int accounts_tokens_decode(const MDB_val *v, struct accounts_tok *t,
				  size_t *n_r)
{
	const uint8_t *p = v->mv_data, *end = p + v->mv_size;
	size_t n;

	*n_r = 0;
	if (v->mv_size < ACCOUNTS_TOK_HDR || p[0] != ACCOUNTS_TOKENS_VERSION)
		return EPROTO;
	n = accounts_get_u16(p + 1);
	if (n > ACCOUNTS_TOKENS_MAX)
		return EPROTO;
	p += ACCOUNTS_TOK_HDR;
	for (size_t i = 0; i < n; i++) {
		if ((size_t)(end - p) < ACCOUNTS_TOK_ENT)
			return EPROTO;
		t[i].ts = accounts_get_i64(p);
		t[i].len = accounts_get_u16(p + 8);
		p += ACCOUNTS_TOK_ENT;
		if ((size_t)(end - p) < t[i].len)
			return EPROTO;
		t[i].p = p;
		p += t[i].len;
	}
	*n_r = n;
	return p == end ? 0 : EPROTO;
}

static int accounts_tokens_read_txn(struct accounts *a, MDB_txn *txn,
				    const MDB_val *k, struct accounts_tok *t,
				    size_t *n_r)
{
	MDB_val v;
	int rc;

	*n_r = 0;
	rc = mdb_get(txn, a->dbi_tokens, (MDB_val *)k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	rc = accounts_tokens_decode(&v, t, n_r);
	if (rc != 0) {
		/* Like chatmail's corrupt metadata.json: read as empty. */
		log_warn("accounts: corrupt token list for %.*s, dropped",
			 (int)k->mv_size, (const char *)k->mv_data);
		*n_r = 0;
	}
	return 0;
}

/* Replace the stored list by @t[0..n) (delete when empty). */
static int accounts_tokens_write_txn(struct accounts *a, MDB_txn *txn,
				     const MDB_val *k,
				     const struct accounts_tok *t, size_t n)
{
	size_t size = ACCOUNTS_TOK_HDR;
	uint8_t *buf, *p;
	MDB_val v;
	int rc;

	if (n == 0) {
		rc = mdb_del(txn, a->dbi_tokens, (MDB_val *)k, NULL);
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	for (size_t i = 0; i < n; i++)
		size += ACCOUNTS_TOK_ENT + t[i].len;
	buf = malloc(size);
	if (buf == NULL)
		return ENOMEM;
	buf[0] = ACCOUNTS_TOKENS_VERSION;
	accounts_put_u16(buf + 1, (uint16_t)n);
	p = buf + ACCOUNTS_TOK_HDR;
	for (size_t i = 0; i < n; i++) {
		accounts_put_i64(p, t[i].ts);
		accounts_put_u16(p + 8, t[i].len);
		memcpy(p + ACCOUNTS_TOK_ENT, t[i].p, t[i].len);
		p += ACCOUNTS_TOK_ENT + t[i].len;
	}
	v.mv_data = buf;
	v.mv_size = size;
	rc = mdb_put(txn, a->dbi_tokens, (MDB_val *)k, &v, 0);
	free(buf);
	return rc;
}

int accounts_tokens_add_txn(struct accounts *a, MDB_txn *txn, const char *addr,
			    const char *token, size_t len, int64_t set_at,
			    int64_t now, bool *changed_r)
{
	struct accounts_tok t[ACCOUNTS_TOKENS_MAX + 1];
	size_t n, kept = 0, oldest = 0;
	bool found = false;
	MDB_val k;
	int rc;

	*changed_r = false;
	if (!accounts_key(addr, &k) || len == 0 || len > ACCOUNTS_TOKEN_MAX)
		return EINVAL;
	if (!accounts_token_valid(set_at, now))
		return 0;
	rc = accounts_tokens_read_txn(a, txn, &k, t, &n);
	if (rc != 0)
		return rc;
	/* Prune what expired, refresh a match. */
	for (size_t i = 0; i < n; i++) {
		if (!accounts_token_valid(t[i].ts, now)) {
			*changed_r = true;
			continue;
		}
		t[kept] = t[i];
		if (t[kept].len == len && memcmp(t[kept].p, token, len) == 0) {
			found = true;
			if (set_at > t[kept].ts) {
				t[kept].ts = set_at;
				*changed_r = true;
			}
		}
		kept++;
	}
	if (!found) {
		if (kept == ACCOUNTS_TOKENS_MAX) {
			for (size_t i = 1; i < kept; i++) {
				if (t[i].ts < t[oldest].ts)
					oldest = i;
			}
			memmove(&t[oldest], &t[oldest + 1],
				(kept - oldest - 1) * sizeof(*t));
			kept--;
		}
		t[kept].p = (const uint8_t *)token;
		t[kept].len = (uint16_t)len;
		t[kept].ts = set_at;
		kept++;
		*changed_r = true;
	}
	if (!*changed_r)
		return 0;
	return accounts_tokens_write_txn(a, txn, &k, t, kept);
}

struct accounts_token_op {
	const char *addr, *token;
	size_t len;
	int64_t set_at, now;
	bool changed;
};

static int accounts_tokens_add_cb(struct accounts *a, MDB_txn *txn, void *arg)
{
	struct accounts_token_op *op = arg;
	int rc;

	rc = accounts_tokens_add_txn(a, txn, op->addr, op->token, op->len,
				     op->set_at, op->now, &op->changed);
	if (rc == 0 && !op->changed)
		return ACCOUNTS_TXN_SKIP;
	return rc;
}

int accounts_tokens_add(struct accounts *a, const char *addr, const char *token,
			size_t len, int64_t set_at, int64_t now)
{
	struct accounts_token_op op = {.addr = addr,
				       .token = token,
				       .len = len,
				       .set_at = set_at,
				       .now = now};
	int rc = accounts_write(a, accounts_tokens_add_cb, &op);

	if (rc == ACCOUNTS_TXN_SKIP)
		return 0;
	if (rc != 0)
		return accounts_mdb_errno(rc);
	return 1;
}

static int accounts_tokens_remove_cb(struct accounts *a, MDB_txn *txn,
				     void *arg)
{
	struct accounts_tok t[ACCOUNTS_TOKENS_MAX + 1];
	struct accounts_token_op *op = arg;
	size_t n, kept = 0;
	MDB_val k;
	int rc;

	if (!accounts_key(op->addr, &k))
		return MDB_NOTFOUND;
	rc = accounts_tokens_read_txn(a, txn, &k, t, &n);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (t[i].len == op->len &&
		    memcmp(t[i].p, op->token, op->len) == 0)
			continue;
		t[kept++] = t[i];
	}
	if (kept == n)
		return MDB_NOTFOUND;
	return accounts_tokens_write_txn(a, txn, &k, t, kept);
}

int accounts_tokens_remove(struct accounts *a, const char *addr,
			   const char *token, size_t len)
{
	struct accounts_token_op op = {
		.addr = addr, .token = token, .len = len};

	return accounts_mdb_errno(
		accounts_write(a, accounts_tokens_remove_cb, &op));
}

int accounts_tokens_get(struct accounts *a, const char *addr, int64_t now,
			struct accounts_tokens **r)
{
	struct accounts_tok t[ACCOUNTS_TOKENS_MAX + 1];
	struct accounts_tokens *out;
	size_t n = 0, valid = 0, size;
	MDB_txn *txn;
	MDB_val k;
	char *s;
	int rc;

	*r = NULL;
	if (!accounts_key(addr, &k))
		return -EINVAL;
	rc = accounts_read_begin(a, &txn);
	if (rc != 0)
		return accounts_mdb_errno(rc);
	rc = accounts_tokens_read_txn(a, txn, &k, t, &n);
	if (rc != 0) {
		accounts_read_end(a, txn);
		return accounts_mdb_errno(rc);
	}
	size = sizeof(*out);
	for (size_t i = 0; i < n; i++) {
		if (accounts_token_valid(t[i].ts, now)) {
			size += sizeof(out->t[0]) + t[i].len + 1u;
			valid++;
		}
	}
	out = malloc(size);
	if (out == NULL) {
		accounts_read_end(a, txn);
		return -ENOMEM;
	}
	out->n = valid;
	s = (char *)&out->t[valid];
	valid = 0;
	for (size_t i = 0; i < n; i++) {
		if (!accounts_token_valid(t[i].ts, now))
			continue;
		memcpy(s, t[i].p, t[i].len);
		s[t[i].len] = '\0';
		out->t[valid].token = s;
		out->t[valid].len = t[i].len;
		out->t[valid].set_at = t[i].ts;
		s += t[i].len + 1u;
		valid++;
	}
	accounts_read_end(a, txn);
	*r = out;
	return 0;
}

/* ---- authentication (C.4) */

struct accounts_create_op {
	const char *addr;
	struct accounts_record rec;      /* to store */
	struct accounts_record existing; /* what a concurrent login stored */
};

static int accounts_create_txn(struct accounts *a, MDB_txn *txn, void *arg)
{
	struct accounts_create_op *op = arg;
	int rc;

	/* Re-check under the write lock: a concurrent first login of the
	 * same address may have won. */
	rc = accounts_record_get_txn(a, txn, op->addr, &op->existing);
	if (rc == 0)
		return ACCOUNTS_TXN_SKIP;
	if (rc != MDB_NOTFOUND)
		return rc;
	return accounts_record_put_txn(a, txn, op->addr, &op->rec);
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
	rc = accounts_write(a, accounts_create_txn, op);
	if (rc == ACCOUNTS_TXN_SKIP) {
		res = accounts_verify(info->addr, &op->existing, pw, info);
		goto out;
	}
	if (rc != 0) {
		res = accounts_tempfail(info, accounts_mdb_errno(rc));
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
