/* core/kv: the LMDB layer (contract in the header).
 *
 * Locks: changing the map size needs every transaction of this process
 * closed (LMDB's rule). Every transaction holds map_lock shared; a
 * resize takes it exclusively (writer preference, so lookups do not
 * starve it). write_lock keeps one writer per process, so a writer that
 * waits never holds map_lock while LMDB's own writer lock blocks it.
 *
 * Recovery: kv_put/kv_del note MDB_MAP_FULL in the transaction (LMDB
 * has then already failed it); kv_write sees the note whatever the
 * callback returned, aborts, grows and reruns. */
#include "core/kv.h"

/* system */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* third party */
#include <lmdb.h>

/* project */
#include "core/log.h"

#define KV_TABLES_DEFAULT  8u
#define KV_READERS_DEFAULT 1024u
#define KV_WRITE_TRIES     48
#define KV_READ_TRIES      8
#define KV_NAME_MAX        64

struct kv_table {
	MDB_dbi dbi;
	char name[KV_NAME_MAX];
};

struct kv_env {
	MDB_env *env;
	char *name, *path;
	size_t max_map;
	unsigned flags;
	pthread_mutex_t write_lock;
	pthread_rwlock_t map_lock;
	atomic_uint grows, adopts, readers_full, stale_readers;
	unsigned ntables, max_tables;
	struct kv_table tables[];
};

struct kv_txn {
	struct kv_env *env;
	MDB_txn *txn;
	bool write;
	int recover; /* an LMDB code kv_write recovers from, or 0 */
};

/* ---- errors */

static int kv_errno(int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_KEYEXIST:
		return -EEXIST;
	case MDB_READERS_FULL:
		return -EAGAIN;
	case MDB_MAP_FULL:
		return -ENOSPC;
	case MDB_BAD_VALSIZE:
		return -EINVAL;
	default:
		return rc > 0 ? -rc : -EIO;
	}
}

/* An operation's LMDB code -> -errno; remembers what kv_write recovers
 * from and logs what nobody expects. */
static int kv_op_result(struct kv_txn *txn, const char *op, int rc)
{
	if (rc == MDB_MAP_FULL && txn->recover == 0)
		txn->recover = rc;
	else if (rc != 0 && rc != MDB_NOTFOUND && rc != MDB_KEYEXIST &&
		 rc != MDB_BAD_VALSIZE && rc != MDB_MAP_FULL)
		log_err("%s: %s: %s", txn->env->name, op, mdb_strerror(rc));
	return kv_errno(rc);
}

/* ---- map size */

/* Double the map (@grow) or adopt the size another process set. 0 or an
 * LMDB code (MDB_MAP_FULL at the maximum). */
static int kv_map_resize(struct kv_env *e, bool grow)
{
	MDB_envinfo info;
	size_t size = 0;
	int rc;

	pthread_rwlock_wrlock(&e->map_lock);
	if (grow) {
		mdb_env_info(e->env, &info);
		if (info.me_mapsize >= e->max_map) {
			pthread_rwlock_unlock(&e->map_lock);
			log_err("%s: map full at %zu KiB, not growing", e->name,
				info.me_mapsize >> 10);
			return MDB_MAP_FULL;
		}
		size = info.me_mapsize * 2;
		if (size > e->max_map)
			size = e->max_map;
	}
	rc = mdb_env_set_mapsize(e->env, size);
	pthread_rwlock_unlock(&e->map_lock);
	if (rc != 0) {
		log_err("%s: resizing the map: %s", e->name, mdb_strerror(rc));
		return rc;
	}
	if (grow) {
		atomic_fetch_add(&e->grows, 1);
		log_info("%s: map grown to %zu KiB", e->name, size >> 10);
	} else {
		atomic_fetch_add(&e->adopts, 1);
	}
	return 0;
}

/* MDB_READERS_FULL: clear the slots of dead processes. Their count. */
static int kv_readers_check(struct kv_env *e)
{
	int dead = 0;

	atomic_fetch_add(&e->readers_full, 1);
	if (mdb_reader_check(e->env, &dead) == 0 && dead > 0) {
		atomic_fetch_add(&e->stale_readers, (unsigned)dead);
		log_info("%s: cleared %d stale reader slots", e->name, dead);
	}
	return dead;
}

/* ---- transactions */

/* @keep: end by a commit, which keeps tables opened in the transaction
 * (an abort closes them). */
static int kv_read_txn(struct kv_env *e, kv_txn_fn *fn, void *arg, bool keep)
{
	struct kv_txn t = {.env = e};
	int rc = 0, ret;

	for (int i = 0; i < KV_READ_TRIES; i++) {
		pthread_rwlock_rdlock(&e->map_lock);
		rc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, &t.txn);
		if (rc == 0) {
			ret = fn(&t, arg);
			if (keep && ret == 0)
				mdb_txn_commit(t.txn);
			else
				mdb_txn_abort(t.txn);
			pthread_rwlock_unlock(&e->map_lock);
			return ret;
		}
		pthread_rwlock_unlock(&e->map_lock);
		if (rc == MDB_MAP_RESIZED) {
			kv_map_resize(e, false);
		} else if (rc == MDB_READERS_FULL) {
			/* Live readers: wait 1, 2, 4 .. 64 ms for one to end. */
			struct timespec ts = {.tv_nsec = 1000000L << i};

			if (kv_readers_check(e) == 0 && i + 1 < KV_READ_TRIES)
				nanosleep(&ts, NULL);
		} else {
			break;
		}
	}
	log_err("%s: read transaction: %s", e->name, mdb_strerror(rc));
	return kv_errno(rc);
}

int kv_read(struct kv_env *e, kv_txn_fn *fn, void *arg)
{
	return kv_read_txn(e, fn, arg, false);
}

int kv_write(struct kv_env *e, kv_txn_fn *fn, void *arg)
{
	struct kv_txn t = {.env = e, .write = true};
	int rc = 0, ret = 0;

	if (e->flags & KV_F_RDONLY)
		return -EROFS;
	pthread_mutex_lock(&e->write_lock);
	for (int i = 0; i < KV_WRITE_TRIES; i++) {
		pthread_rwlock_rdlock(&e->map_lock);
		rc = mdb_txn_begin(e->env, NULL, 0, &t.txn);
		if (rc == 0) {
			t.recover = 0;
			ret = fn(&t, arg);
			if (t.recover != 0) {
				mdb_txn_abort(t.txn);
				rc = t.recover;
			} else if (ret != 0) {
				mdb_txn_abort(t.txn);
			} else {
				rc = mdb_txn_commit(t.txn); /* frees it */
			}
		}
		pthread_rwlock_unlock(&e->map_lock);
		if (rc == 0)
			break;
		ret = kv_errno(rc);
		if (rc == MDB_MAP_FULL) {
			if (kv_map_resize(e, true) != 0)
				break;
		} else if (rc == MDB_MAP_RESIZED) {
			kv_map_resize(e, false);
		} else if (rc == MDB_READERS_FULL) {
			kv_readers_check(e);
			if (i >= 2)
				break;
		} else {
			break;
		}
	}
	pthread_mutex_unlock(&e->write_lock);
	if (ret < 0 && ret != -ENOENT && ret != -EINVAL && ret != -EEXIST)
		log_err("%s: write transaction: %s", e->name,
			rc != 0 ? mdb_strerror(rc) : strerror(-ret));
	return ret;
}

/* ---- operations */

static bool kv_key_ok(struct kv_txn *txn, size_t klen)
{
	return klen > 0 &&
	       klen <= (size_t)mdb_env_get_maxkeysize(txn->env->env);
}

int kv_get(struct kv_txn *txn, struct kv_table *t, const void *key, size_t klen,
	   const void **val_r, size_t *vlen_r)
{
	MDB_val k = {.mv_size = klen, .mv_data = (void *)key}, v;
	int rc;

	*val_r = NULL;
	*vlen_r = 0;
	if (!kv_key_ok(txn, klen))
		return -EINVAL;
	rc = mdb_get(txn->txn, t->dbi, &k, &v);
	if (rc != 0)
		return kv_op_result(txn, "get", rc);
	*val_r = v.mv_data;
	*vlen_r = v.mv_size;
	return 0;
}

int kv_put(struct kv_txn *txn, struct kv_table *t, const void *key, size_t klen,
	   const void *val, size_t vlen, unsigned flags)
{
	MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
	MDB_val v = {.mv_size = vlen, .mv_data = (void *)val};

	if (!txn->write)
		return -EROFS;
	if (!kv_key_ok(txn, klen))
		return -EINVAL;
	return kv_op_result(
		txn, "put",
		mdb_put(txn->txn, t->dbi, &k, &v,
			(flags & KV_PUT_NOOVERWRITE) ? MDB_NOOVERWRITE : 0));
}

int kv_del(struct kv_txn *txn, struct kv_table *t, const void *key, size_t klen)
{
	MDB_val k = {.mv_size = klen, .mv_data = (void *)key};

	if (!txn->write)
		return -EROFS;
	if (!kv_key_ok(txn, klen))
		return -EINVAL;
	return kv_op_result(txn, "del", mdb_del(txn->txn, t->dbi, &k, NULL));
}

int kv_count(struct kv_txn *txn, struct kv_table *t, uint64_t *n_r)
{
	MDB_stat st;
	int rc;

	*n_r = 0;
	rc = mdb_stat(txn->txn, t->dbi, &st);
	if (rc != 0)
		return kv_op_result(txn, "stat", rc);
	*n_r = st.ms_entries;
	return 0;
}

int kv_iterate(struct kv_txn *txn, struct kv_table *t, const void *from,
	       size_t flen, unsigned flags, kv_iter_fn *fn, void *arg)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, ret = 0;

	rc = mdb_cursor_open(txn->txn, t->dbi, &cur);
	if (rc != 0)
		return kv_op_result(txn, "cursor", rc);
	if (from != NULL && flen > 0) {
		k.mv_data = (void *)from;
		k.mv_size = flen;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc == 0 && (flags & KV_ITER_AFTER) && k.mv_size == flen &&
		    memcmp(k.mv_data, from, flen) == 0)
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	} else {
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	}
	while (rc == 0) {
		ret = fn(k.mv_data, k.mv_size, v.mv_data, v.mv_size, arg);
		if (ret != 0)
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (ret != 0)
		return ret;
	return rc == MDB_NOTFOUND ? 0 : kv_op_result(txn, "cursor", rc);
}

size_t kv_key_max(struct kv_env *e)
{
	return (size_t)mdb_env_get_maxkeysize(e->env);
}

/* ---- env and tables */

struct kv_table_op {
	const char *name;
	MDB_dbi dbi;
};

static int kv_table_txn(struct kv_txn *txn, void *arg)
{
	struct kv_table_op *op = arg;
	int rc = mdb_dbi_open(txn->txn, op->name, txn->write ? MDB_CREATE : 0,
			      &op->dbi);

	if (rc == MDB_MAP_FULL)
		txn->recover = rc;
	return kv_errno(rc);
}

int kv_table_open(struct kv_env *e, const char *name, struct kv_table **t_r)
{
	struct kv_table_op op = {.name = name};
	struct kv_table *t;
	int ret;

	*t_r = NULL;
	if (name == NULL || name[0] == '\0' || strlen(name) >= KV_NAME_MAX)
		return -EINVAL;
	for (unsigned i = 0; i < e->ntables; i++) {
		if (strcmp(e->tables[i].name, name) == 0) {
			*t_r = &e->tables[i];
			return 0;
		}
	}
	if (e->ntables == e->max_tables)
		return -ENOSPC;
	if (e->flags & KV_F_RDONLY)
		ret = kv_read_txn(e, kv_table_txn, &op, true);
	else
		ret = kv_write(e, kv_table_txn, &op);
	if (ret < 0) {
		log_err("%s: table %s: %s", e->name, name, strerror(-ret));
		return ret;
	}
	t = &e->tables[e->ntables++];
	t->dbi = op.dbi;
	snprintf(t->name, sizeof(t->name), "%s", name);
	*t_r = t;
	return 0;
}

int kv_env_open(const char *path, const struct kv_opts *o,
		struct kv_env **env_r)
{
	pthread_rwlockattr_t rwa;
	struct kv_env *e;
	unsigned tables =
		o->max_tables != 0 ? o->max_tables : KV_TABLES_DEFAULT;
	size_t map = o->map_size != 0 ? o->map_size : KV_MAP_DEFAULT;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned envflags = MDB_NOSUBDIR | MDB_NOTLS;
	int rc, ret, dead = 0;

	*env_r = NULL;
	e = calloc(1, sizeof(*e) + tables * sizeof(e->tables[0]));
	if (e == NULL)
		return -ENOMEM;
	pthread_mutex_init(&e->write_lock, NULL);
	pthread_rwlockattr_init(&rwa);
	pthread_rwlockattr_setkind_np(
		&rwa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&e->map_lock, &rwa);
	pthread_rwlockattr_destroy(&rwa);
	e->max_tables = tables;
	e->flags = o->flags;
	e->max_map = o->max_map_size != 0 ? o->max_map_size : KV_MAP_MAX;
	e->max_map -= e->max_map % page;
	if (e->max_map < KV_MAP_MIN)
		e->max_map = KV_MAP_MIN;
	if (map < KV_MAP_MIN)
		map = KV_MAP_MIN;
	if (map > e->max_map)
		map = e->max_map;
	e->name = strdup(o->name != NULL ? o->name : "kv");
	e->path = strdup(path);
	if (e->name == NULL || e->path == NULL) {
		ret = -ENOMEM;
		goto fail;
	}
	if (e->flags & KV_F_RDONLY)
		envflags |= MDB_RDONLY;
	rc = mdb_env_create(&e->env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(e->env, tables);
	if (rc == 0)
		rc = mdb_env_set_maxreaders(
			e->env, o->max_readers != 0 ? o->max_readers
						    : KV_READERS_DEFAULT);
	if (rc == 0)
		rc = mdb_env_set_mapsize(e->env, map);
	if (rc == 0)
		rc = mdb_env_open(e->env, path, envflags,
				  o->mode != 0 ? o->mode : 0600);
	if (rc != 0) {
		log_err("%s: open %s: %s", e->name, path, mdb_strerror(rc));
		ret = kv_errno(rc);
		goto fail;
	}
	if (mdb_reader_check(e->env, &dead) == 0 && dead > 0) {
		atomic_fetch_add(&e->stale_readers, (unsigned)dead);
		log_info("%s: cleared %d stale reader slots", e->name, dead);
	}
	*env_r = e;
	return 0;
fail:
	kv_env_close(&e);
	return ret;
}

void kv_env_close(struct kv_env **envp)
{
	struct kv_env *e = *envp;

	if (e == NULL)
		return;
	*envp = NULL;
	if (e->env != NULL)
		mdb_env_close(e->env);
	pthread_rwlock_destroy(&e->map_lock);
	pthread_mutex_destroy(&e->write_lock);
	free(e->name);
	free(e->path);
	free(e);
}

void kv_stats(struct kv_env *e, struct kv_stats *s)
{
	MDB_envinfo info;

	memset(s, 0, sizeof(*s));
	/* No map_lock: kv_stats may run inside a transaction callback. */
	if (mdb_env_info(e->env, &info) == 0)
		s->map_size = info.me_mapsize;
	s->grows = atomic_load(&e->grows);
	s->adopts = atomic_load(&e->adopts);
	s->readers_full = atomic_load(&e->readers_full);
	s->stale_readers = atomic_load(&e->stale_readers);
}
