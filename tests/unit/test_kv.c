/* tests/unit/test_kv: core/kv on real LMDB files. CRUD, key order and
 * iteration, aborts, read-only envs; and the recovery paths: a full map
 * grows and the write succeeds (the callback rerun from scratch), a map
 * at its maximum fails cleanly and recovers after deletes, a map grown
 * by another process is adopted on read and on write, reader slots left
 * by a killed process are cleared, live readers filling the table give
 * -EAGAIN in bounded time and reads work again once they end, and
 * threads writing and reading while the map grows under them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

/* system */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* third party */
#include <lmdb.h>

/* project */
#include "core/kv.h"
#include "core/log.h"

struct fx {
	char *dir;
	char path[512];
	struct kv_opts o;
	struct kv_env *env;
	struct kv_table *t;
};

static struct fx *fx_new(size_t map, size_t max_map, unsigned readers)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->dir = testutil_mkdtemp("test_kv");
	assert_non_null(f->dir);
	snprintf(f->path, sizeof(f->path), "%s/t.mdb", f->dir);
	f->o.name = "kvtest";
	f->o.map_size = map;
	f->o.max_map_size = max_map;
	f->o.max_readers = readers;
	assert_int_equal(kv_env_open(f->path, &f->o, &f->env), 0);
	assert_int_equal(kv_table_open(f->env, "main", &f->t), 0);
	return f;
}

static void fx_free(struct fx *f)
{
	kv_env_close(&f->env);
	testutil_rmtree(f->dir);
	free(f->dir);
	free(f);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct kv_stats stats(struct kv_env *env)
{
	struct kv_stats st;

	kv_stats(env, &st);
	return st;
}

/* ---- generic one-key operations through callbacks */

struct op {
	struct kv_table *t;
	const char *key;
	const char *val;
	unsigned flags;
	char got[256];
	size_t got_len;
	uint64_t n;
	int runs;
};

static int put_cb(struct kv_txn *txn, void *arg)
{
	struct op *op = arg;

	op->runs++;
	return kv_put(txn, op->t, op->key, strlen(op->key), op->val,
		      strlen(op->val), op->flags);
}

static int get_cb(struct kv_txn *txn, void *arg)
{
	struct op *op = arg;
	const void *v;
	size_t len;
	int rc = kv_get(txn, op->t, op->key, strlen(op->key), &v, &len);

	if (rc != 0)
		return rc;
	assert_true(len < sizeof(op->got));
	memcpy(op->got, v, len);
	op->got[len] = '\0';
	op->got_len = len;
	return 0;
}

static int del_cb(struct kv_txn *txn, void *arg)
{
	struct op *op = arg;

	return kv_del(txn, op->t, op->key, strlen(op->key));
}

static int count_cb(struct kv_txn *txn, void *arg)
{
	struct op *op = arg;

	return kv_count(txn, op->t, &op->n);
}

static int put(struct fx *f, struct kv_table *t, const char *k, const char *v)
{
	struct op op = {.t = t, .key = k, .val = v};

	return kv_write(f->env, put_cb, &op);
}

static int get(struct fx *f, struct kv_table *t, const char *k, char *out)
{
	struct op op = {.t = t, .key = k};
	int rc = kv_read(f->env, get_cb, &op);

	if (rc == 0 && out != NULL)
		memcpy(out, op.got, op.got_len + 1);
	return rc;
}

static int del(struct fx *f, struct kv_table *t, const char *k)
{
	struct op op = {.t = t, .key = k};

	return kv_write(f->env, del_cb, &op);
}

static uint64_t count(struct fx *f, struct kv_table *t)
{
	struct op op = {.t = t};

	assert_int_equal(kv_read(f->env, count_cb, &op), 0);
	return op.n;
}

/* ---- CRUD */

static int write_in_read_cb(struct kv_txn *txn, void *arg)
{
	struct op *op = arg;

	assert_int_equal(kv_put(txn, op->t, "k", 1, "v", 1, 0), -EROFS);
	assert_int_equal(kv_del(txn, op->t, "k", 1), -EROFS);
	return 0;
}

static int bad_keys_cb(struct kv_txn *txn, void *arg)
{
	struct op *op = arg;
	size_t max = 511;
	char *big = malloc(max + 2);
	const void *v;
	size_t len;

	assert_non_null(big);
	memset(big, 'k', max + 1);
	assert_int_equal(kv_put(txn, op->t, "", 0, "v", 1, 0), -EINVAL);
	assert_int_equal(kv_put(txn, op->t, big, max + 1, "v", 1, 0), -EINVAL);
	assert_int_equal(kv_get(txn, op->t, big, max + 1, &v, &len), -EINVAL);
	assert_int_equal(kv_del(txn, op->t, "", 0), -EINVAL);
	/* the longest key works */
	assert_int_equal(kv_put(txn, op->t, big, max, "v", 1, 0), 0);
	assert_int_equal(kv_get(txn, op->t, big, max, &v, &len), 0);
	assert_int_equal(len, 1);
	free(big);
	return 0;
}

static void test_crud(void **state)
{
	struct fx *f = fx_new(0, 0, 0);
	struct kv_table *t2, *again;
	struct op op;
	char buf[256];

	(void)state;
	assert_int_equal(kv_key_max(f->env), 511);
	assert_int_equal(get(f, f->t, "alice", buf), -ENOENT);
	assert_int_equal(put(f, f->t, "alice", "one"), 0);
	assert_int_equal(get(f, f->t, "alice", buf), 0);
	assert_string_equal(buf, "one");
	assert_int_equal(put(f, f->t, "alice", "two"), 0);
	assert_int_equal(get(f, f->t, "alice", buf), 0);
	assert_string_equal(buf, "two");
	/* NOOVERWRITE */
	op = (struct op){.t = f->t,
			 .key = "alice",
			 .val = "x",
			 .flags = KV_PUT_NOOVERWRITE};
	assert_int_equal(kv_write(f->env, put_cb, &op), -EEXIST);
	op.key = "bob";
	assert_int_equal(kv_write(f->env, put_cb, &op), 0);
	assert_int_equal(count(f, f->t), 2);
	/* tables are separate; opening one twice gives the same handle */
	assert_int_equal(kv_table_open(f->env, "other", &t2), 0);
	assert_int_equal(kv_table_open(f->env, "other", &again), 0);
	assert_ptr_equal(t2, again);
	assert_int_equal(get(f, t2, "alice", buf), -ENOENT);
	assert_int_equal(put(f, t2, "alice", "elsewhere"), 0);
	assert_int_equal(get(f, f->t, "alice", buf), 0);
	assert_string_equal(buf, "two");
	/* delete */
	assert_int_equal(del(f, f->t, "alice"), 0);
	assert_int_equal(del(f, f->t, "alice"), -ENOENT);
	assert_int_equal(get(f, f->t, "alice", buf), -ENOENT);
	assert_int_equal(get(f, t2, "alice", buf), 0);
	assert_int_equal(count(f, f->t), 1);
	/* writes in a read transaction, bad key sizes */
	op = (struct op){.t = f->t};
	assert_int_equal(kv_read(f->env, write_in_read_cb, &op), 0);
	assert_int_equal(kv_write(f->env, bad_keys_cb, &op), 0);
	/* table names */
	assert_int_equal(kv_table_open(f->env, "", &again), -EINVAL);
	assert_int_equal(kv_table_open(f->env, NULL, &again), -EINVAL);
	/* everything survives a reopen */
	kv_env_close(&f->env);
	assert_null(f->env);
	assert_int_equal(kv_env_open(f->path, &f->o, &f->env), 0);
	assert_int_equal(kv_table_open(f->env, "main", &f->t), 0);
	assert_int_equal(kv_table_open(f->env, "other", &t2), 0);
	assert_int_equal(get(f, f->t, "bob", buf), 0);
	assert_string_equal(buf, "x");
	assert_int_equal(get(f, t2, "alice", buf), 0);
	assert_string_equal(buf, "elsewhere");
	assert_int_equal(count(f, f->t), 2);
	kv_env_close(&f->env);
	kv_env_close(&f->env); /* NULL is fine */
	fx_free(f);
}

/* A callback that writes, then aborts: nothing is committed. */
struct abort_op {
	struct kv_table *t;
	int ret;
};

static int put_then_abort_cb(struct kv_txn *txn, void *arg)
{
	struct abort_op *op = arg;

	assert_int_equal(kv_put(txn, op->t, "ghost", 5, "boo", 3, 0), 0);
	return op->ret;
}

static void test_abort(void **state)
{
	struct fx *f = fx_new(0, 0, 0);
	struct abort_op op = {.t = f->t};

	(void)state;
	op.ret = KV_SKIP;
	assert_int_equal(kv_write(f->env, put_then_abort_cb, &op), KV_SKIP);
	assert_int_equal(get(f, f->t, "ghost", NULL), -ENOENT);
	op.ret = 7; /* any positive value comes back as is */
	assert_int_equal(kv_write(f->env, put_then_abort_cb, &op), 7);
	op.ret = -EPROTO;
	assert_int_equal(kv_write(f->env, put_then_abort_cb, &op), -EPROTO);
	assert_int_equal(get(f, f->t, "ghost", NULL), -ENOENT);
	assert_int_equal(count(f, f->t), 0);
	fx_free(f);
}

/* ---- iteration */

struct iter {
	struct kv_table *t;
	const char *from;
	unsigned flags;
	char seen[32][16];
	unsigned n, stop_at;
	int fail_at;
};

static int iter_one(const void *k, size_t klen, const void *v, size_t vlen,
		    void *arg)
{
	struct iter *it = arg;

	assert_true(klen < 16);
	assert_int_equal(vlen, klen); /* values are the keys here */
	assert_memory_equal(k, v, klen);
	memcpy(it->seen[it->n], k, klen);
	it->seen[it->n][klen] = '\0';
	it->n++;
	if (it->fail_at > 0 && it->n == (unsigned)it->fail_at)
		return -EBADMSG;
	return it->stop_at > 0 && it->n == it->stop_at ? 42 : 0;
}

static int iter_cb(struct kv_txn *txn, void *arg)
{
	struct iter *it = arg;

	return kv_iterate(txn, it->t, it->from,
			  it->from != NULL ? strlen(it->from) : 0, it->flags,
			  iter_one, it);
}

/* In a write transaction: puts are visible to the iteration at once. */
static int iter_in_write_cb(struct kv_txn *txn, void *arg)
{
	struct iter *it = arg;

	assert_int_equal(kv_put(txn, it->t, "aa", 2, "aa", 2, 0), 0);
	return kv_iterate(txn, it->t, NULL, 0, 0, iter_one, it);
}

static void test_iterate(void **state)
{
	struct fx *f = fx_new(0, 0, 0);
	/* key order: bytes, then length ("b" < "ba" < "c") */
	const char *keys[] = {"c", "ba", "b", "a", "bb", "d"};
	const char *order[] = {"a", "b", "ba", "bb", "c", "d"};
	struct iter it;

	(void)state;
	it = (struct iter){.t = f->t};
	assert_int_equal(kv_read(f->env, iter_cb, &it), 0);
	assert_int_equal(it.n, 0);
	for (unsigned i = 0; i < 6; i++)
		assert_int_equal(put(f, f->t, keys[i], keys[i]), 0);
	it = (struct iter){.t = f->t};
	assert_int_equal(kv_read(f->env, iter_cb, &it), 0);
	assert_int_equal(it.n, 6);
	for (unsigned i = 0; i < 6; i++)
		assert_string_equal(it.seen[i], order[i]);
	/* from a key that exists: at it, or after it */
	it = (struct iter){.t = f->t, .from = "ba"};
	assert_int_equal(kv_read(f->env, iter_cb, &it), 0);
	assert_int_equal(it.n, 4);
	assert_string_equal(it.seen[0], "ba");
	it = (struct iter){.t = f->t, .from = "ba", .flags = KV_ITER_AFTER};
	assert_int_equal(kv_read(f->env, iter_cb, &it), 0);
	assert_int_equal(it.n, 3);
	assert_string_equal(it.seen[0], "bb");
	/* from a key that does not: the next one, AFTER or not */
	it = (struct iter){.t = f->t, .from = "bab", .flags = KV_ITER_AFTER};
	assert_int_equal(kv_read(f->env, iter_cb, &it), 0);
	assert_int_equal(it.n, 3);
	assert_string_equal(it.seen[0], "bb");
	it = (struct iter){.t = f->t, .from = "z"};
	assert_int_equal(kv_read(f->env, iter_cb, &it), 0);
	assert_int_equal(it.n, 0);
	/* stop and fail */
	it = (struct iter){.t = f->t, .stop_at = 2};
	assert_int_equal(kv_read(f->env, iter_cb, &it), 42);
	assert_int_equal(it.n, 2);
	it = (struct iter){.t = f->t, .fail_at = 3};
	assert_int_equal(kv_read(f->env, iter_cb, &it), -EBADMSG);
	assert_int_equal(it.n, 3);
	/* in a write transaction */
	it = (struct iter){.t = f->t};
	assert_int_equal(kv_write(f->env, iter_in_write_cb, &it), 0);
	assert_int_equal(it.n, 7);
	assert_string_equal(it.seen[1], "aa");
	fx_free(f);
}

/* ---- read-only */

static void test_rdonly(void **state)
{
	struct fx *f = fx_new(0, 0, 0);
	struct kv_opts ro = f->o;
	struct kv_env *env;
	struct kv_table *t, *missing;
	struct op op;

	(void)state;
	assert_int_equal(put(f, f->t, "k", "v"), 0);
	ro.flags = KV_F_RDONLY;
	assert_int_equal(kv_env_open(f->path, &ro, &env), 0);
	assert_int_equal(kv_table_open(env, "main", &t), 0);
	assert_int_equal(kv_table_open(env, "nosuch", &missing), -ENOENT);
	op = (struct op){.t = t, .key = "k", .val = "w"};
	assert_int_equal(kv_read(env, get_cb, &op), 0);
	assert_string_equal(op.got, "v");
	assert_int_equal(kv_write(env, put_cb, &op), -EROFS);
	assert_int_equal(op.runs, 0);
	kv_env_close(&env);
	/* a file that does not exist is not created */
	snprintf(op.got, sizeof(op.got), "%s/none.mdb", f->dir);
	assert_int_equal(kv_env_open(op.got, &ro, &env), -ENOENT);
	assert_int_equal(access(op.got, F_OK), -1);
	fx_free(f);
}

/* ---- map full: grow and rerun */

#define BULK_VAL 200u

struct bulk_op {
	struct kv_table *t;
	unsigned from, to;
	int runs;
	char tag;
};

static void bulk_key(char *k, size_t ksz, unsigned i)
{
	snprintf(k, ksz, "key%08u", i);
}

static int bulk_cb(struct kv_txn *txn, void *arg)
{
	struct bulk_op *op = arg;
	char k[32], v[BULK_VAL];
	int rc;

	op->runs++;
	for (unsigned i = op->from; i < op->to; i++) {
		bulk_key(k, sizeof(k), i);
		memset(v, op->tag, sizeof(v));
		memcpy(v, k, strlen(k));
		rc = kv_put(txn, op->t, k, strlen(k), v, sizeof(v), 0);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int bulk_write(struct kv_env *env, struct kv_table *t, unsigned from,
		      unsigned to, char tag, int *runs_r)
{
	struct bulk_op op = {.t = t, .from = from, .to = to, .tag = tag};
	int rc = kv_write(env, bulk_cb, &op);

	if (runs_r != NULL)
		*runs_r = op.runs;
	return rc;
}

struct check_op {
	struct kv_table *t;
	unsigned from, to;
	char tag;
	unsigned bad;
};

static int check_cb(struct kv_txn *txn, void *arg)
{
	struct check_op *op = arg;
	char k[32], want[BULK_VAL];
	const void *v;
	size_t len;

	for (unsigned i = op->from; i < op->to; i++) {
		bulk_key(k, sizeof(k), i);
		memset(want, op->tag, sizeof(want));
		memcpy(want, k, strlen(k));
		if (kv_get(txn, op->t, k, strlen(k), &v, &len) != 0 ||
		    len != sizeof(want) || memcmp(v, want, len) != 0)
			op->bad++;
	}
	return 0;
}

static unsigned bulk_check(struct kv_env *env, struct kv_table *t,
			   unsigned from, unsigned to, char tag)
{
	struct check_op op = {.t = t, .from = from, .to = to, .tag = tag};

	assert_int_equal(kv_read(env, check_cb, &op), 0);
	return op.bad;
}

static void test_map_full_grows(void **state)
{
	struct fx *f = fx_new(64 << 10, 0, 0);
	struct kv_stats st;
	int runs;

	(void)state;
	st = stats(f->env);
	assert_int_equal(st.map_size, 64 << 10);
	assert_int_equal(st.grows, 0);
	/* One transaction far bigger than the map: it fails with
	 * MDB_MAP_FULL inside, the map doubles, the callback reruns from
	 * scratch until it fits; the caller only sees 0. */
	assert_int_equal(bulk_write(f->env, f->t, 0, 2000, 'a', &runs), 0);
	st = stats(f->env);
	print_message("  one txn of 2000: %d runs, %u grows, map %zu KiB\n",
		      runs, st.grows, st.map_size >> 10);
	assert_true(runs >= 3);
	assert_int_equal(st.grows, (unsigned)runs - 1);
	assert_true(st.map_size >= (size_t)512 << 10);
	assert_int_equal(count(f, f->t), 2000);
	assert_int_equal(bulk_check(f->env, f->t, 0, 2000, 'a'), 0);
	/* Many small ones, each commit on its own. */
	for (unsigned i = 2000; i < 6000; i++)
		assert_int_equal(bulk_write(f->env, f->t, i, i + 1, 'b', NULL),
				 0);
	assert_true(stats(f->env).grows > st.grows);
	assert_int_equal(count(f, f->t), 6000);
	assert_int_equal(bulk_check(f->env, f->t, 2000, 6000, 'b'), 0);
	/* Reopen with the tiny map: the file's size wins. */
	st = stats(f->env);
	kv_env_close(&f->env);
	assert_int_equal(kv_env_open(f->path, &f->o, &f->env), 0);
	assert_int_equal(kv_table_open(f->env, "main", &f->t), 0);
	/* LMDB rounds the small map up to what the data uses */
	assert_true(stats(f->env).map_size > (size_t)(64 << 10));
	assert_int_equal(stats(f->env).grows, 0);
	assert_int_equal(bulk_check(f->env, f->t, 0, 2000, 'a'), 0);
	assert_int_equal(bulk_write(f->env, f->t, 6000, 6100, 'c', NULL), 0);
	assert_int_equal(count(f, f->t), 6100);
	fx_free(f);
}

/* At max_map_size the write fails cleanly with -ENOSPC, nothing of it
 * is stored, reads go on, it stays full (no growth behind the caller's
 * back), and reopened with a higher maximum the same write fits. (A
 * full LMDB map cannot even delete: every commit needs fresh pages.) */
static void test_map_at_max(void **state)
{
	struct fx *f = fx_new(64 << 10, 256 << 10, 0);
	unsigned n = 0, total;
	int rc = 0;

	(void)state;
	for (; n < 100000; n += 50) {
		rc = bulk_write(f->env, f->t, n, n + 50, 'm', NULL);
		if (rc != 0)
			break;
	}
	assert_int_equal(rc, -ENOSPC);
	total = n;
	print_message("  %u entries fit in 256 KiB\n", total);
	assert_true(total > 0);
	assert_int_equal(stats(f->env).map_size, 256 << 10);
	assert_int_equal(stats(f->env).grows, 2);
	/* the failed transaction left nothing, the committed ones all */
	assert_int_equal(count(f, f->t), total);
	assert_int_equal(bulk_check(f->env, f->t, 0, total, 'm'), 0);
	/* still full a moment later */
	usleep(200 * 1000);
	assert_int_equal(bulk_write(f->env, f->t, total, total + 50, 'm', NULL),
			 -ENOSPC);
	assert_int_equal(stats(f->env).map_size, 256 << 10);
	assert_int_equal(count(f, f->t), total);
	/* a higher limit: the same write fits */
	kv_env_close(&f->env);
	f->o.max_map_size = 1 << 20;
	assert_int_equal(kv_env_open(f->path, &f->o, &f->env), 0);
	assert_int_equal(kv_table_open(f->env, "main", &f->t), 0);
	assert_int_equal(bulk_write(f->env, f->t, total, total + 50, 'm', NULL),
			 0);
	assert_true(stats(f->env).grows >= 1);
	assert_true(stats(f->env).map_size <= 1 << 20);
	assert_int_equal(count(f, f->t), total + 50);
	assert_int_equal(bulk_check(f->env, f->t, 0, total + 50, 'm'), 0);
	fx_free(f);
}

/* ---- a map grown by another process */

static void grow_in_child(const char *path, const struct kv_opts *o,
			  unsigned from, unsigned to)
{
	struct kv_env *env = NULL;
	struct kv_table *t;
	pid_t pid;
	int status;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		log_set_level(LOG_LV_WARN);
		if (kv_env_open(path, o, &env) != 0 ||
		    kv_table_open(env, "main", &t) != 0)
			_exit(3);
		for (unsigned i = from; i < to; i += 10) {
			if (bulk_write(env, t, i, i + 10, 'o', NULL) != 0)
				_exit(4);
		}
		if (stats(env).grows < 2)
			_exit(5);
		kv_env_close(&env);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_map_grown_by_other_process(void **state)
{
	struct fx *f = fx_new(64 << 10, 0, 0);
	struct kv_stats st;

	(void)state;
	assert_int_equal(put(f, f->t, "parent", "here"), 0);
	/* Another process fills the file well past our map. */
	grow_in_child(f->path, &f->o, 0, 3000);
	st = stats(f->env);
	assert_int_equal(st.map_size, 64 << 10);
	assert_int_equal(st.adopts, 0);
	/* A read here meets MDB_MAP_RESIZED and adopts the new size. */
	assert_int_equal(bulk_check(f->env, f->t, 0, 3000, 'o'), 0);
	st = stats(f->env);
	assert_int_equal(st.adopts, 1);
	assert_true(st.map_size >= (size_t)512 << 10);
	assert_int_equal(st.grows, 0);
	assert_int_equal(count(f, f->t), 3001);
	/* Again, and this time a write comes first. */
	grow_in_child(f->path, &f->o, 3000, 12000);
	assert_int_equal(bulk_write(f->env, f->t, 12000, 12100, 'p', NULL), 0);
	print_message("  adopts %u grows %u map %zu KiB\n",
		      stats(f->env).adopts, stats(f->env).grows,
		      stats(f->env).map_size >> 10);
	assert_true(stats(f->env).adopts + stats(f->env).grows >= 2);
	assert_int_equal(count(f, f->t), 12101);
	assert_int_equal(bulk_check(f->env, f->t, 3000, 12000, 'o'), 0);
	assert_int_equal(bulk_check(f->env, f->t, 12000, 12100, 'p'), 0);
	fx_free(f);
}

/* ---- readers full */

/* Another process (plain LMDB) takes every reader slot and is killed
 * with them held: the next read here clears them and succeeds. */
static void test_readers_full_stale(void **state)
{
	struct fx *f = fx_new(0, 0, 4);
	struct kv_stats st;
	char buf[64], c;
	int p[2], status;
	pid_t pid;

	(void)state;
	assert_int_equal(put(f, f->t, "k", "v"), 0);
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		MDB_env *env;
		MDB_txn *txn;

		close(p[0]);
		if (mdb_env_create(&env) != 0 ||
		    mdb_env_set_maxdbs(env, 8) != 0 ||
		    mdb_env_open(env, f->path, MDB_NOSUBDIR | MDB_NOTLS,
				 0600) != 0)
			_exit(3);
		for (int i = 0; i < 4; i++) {
			if (mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0)
				_exit(4);
		}
		/* a fifth is refused: the table really is full */
		if (mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) !=
		    MDB_READERS_FULL)
			_exit(5);
		if (write(p[1], "r", 1) != 1)
			_exit(6);
		pause();
		_exit(7);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	/* The four slots still name the dead process. */
	assert_int_equal(get(f, f->t, "k", buf), 0);
	assert_string_equal(buf, "v");
	st = stats(f->env);
	print_message("  readers_full %u stale_readers %u\n", st.readers_full,
		      st.stale_readers);
	assert_int_equal(st.readers_full, 1);
	assert_int_equal(st.stale_readers, 4);
	/* and the store goes on normally */
	assert_int_equal(put(f, f->t, "k2", "v2"), 0);
	assert_int_equal(get(f, f->t, "k2", buf), 0);
	assert_int_equal(stats(f->env).readers_full, 1);
	fx_free(f);
}

/* Live readers of this process hold every slot: a read gives -EAGAIN in
 * bounded time, writes are not affected, and once they end reads work
 * again (also after a quiet spell). */
struct holder {
	struct fx *f;
	pthread_mutex_t *mu;
	pthread_cond_t *cv;
	int *held;
	bool *release;
};

static int hold_cb(struct kv_txn *txn, void *arg)
{
	struct holder *h = arg;

	(void)txn;
	pthread_mutex_lock(h->mu);
	(*h->held)++;
	pthread_cond_broadcast(h->cv);
	while (!*h->release)
		pthread_cond_wait(h->cv, h->mu);
	pthread_mutex_unlock(h->mu);
	return 0;
}

static void *holder_main(void *arg)
{
	struct holder *h = arg;

	assert_int_equal(kv_read(h->f->env, hold_cb, h), 0);
	return NULL;
}

static void test_readers_full_live(void **state)
{
	struct fx *f = fx_new(0, 0, 2);
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	int held = 0;
	bool release = false;
	struct holder h = {f, &mu, &cv, &held, &release};
	pthread_t th[2];
	double t0, dt;
	char buf[64];

	(void)state;
	assert_int_equal(put(f, f->t, "k", "v"), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, holder_main, &h),
				 0);
	pthread_mutex_lock(&mu);
	while (held < 2)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	t0 = now_s();
	assert_int_equal(get(f, f->t, "k", buf), -EAGAIN);
	dt = now_s() - t0;
	print_message("  -EAGAIN after %.0f ms\n", dt * 1000);
	assert_true(dt >= 0.05 && dt < 2.0);
	assert_true(stats(f->env).readers_full >= 1);
	assert_int_equal(stats(f->env).stale_readers, 0);
	/* a write needs no reader slot */
	assert_int_equal(put(f, f->t, "k", "w"), 0);
	pthread_mutex_lock(&mu);
	release = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(get(f, f->t, "k", buf), 0);
	assert_string_equal(buf, "w");
	sleep(1);
	assert_int_equal(get(f, f->t, "k", buf), 0);
	fx_free(f);
}

/* ---- threads while the map grows */

#define GROW_WRITERS 4
#define GROW_PER     600u

struct grower {
	struct fx *f;
	unsigned id;
	atomic_bool *stop;
	unsigned reads;
};

static void *writer_main(void *arg)
{
	struct grower *g = arg;
	unsigned base = g->id * 100000u;

	for (unsigned i = 0; i < GROW_PER; i += 3)
		assert_int_equal(bulk_write(g->f->env, g->f->t, base + i,
					    base + i + 3, 'w', NULL),
				 0);
	return NULL;
}

static void *reader_main(void *arg)
{
	struct grower *g = arg;

	while (!atomic_load(g->stop)) {
		count(g->f, g->f->t);
		g->reads++;
	}
	return NULL;
}

static void test_threads_while_growing(void **state)
{
	struct fx *f = fx_new(64 << 10, 0, 0);
	struct grower w[GROW_WRITERS], r[2];
	pthread_t wt[GROW_WRITERS], rt[2];
	atomic_bool stop = false;

	(void)state;
	for (unsigned i = 0; i < 2; i++) {
		r[i] = (struct grower){.f = f, .stop = &stop};
		assert_int_equal(
			pthread_create(&rt[i], NULL, reader_main, &r[i]), 0);
	}
	for (unsigned i = 0; i < GROW_WRITERS; i++) {
		w[i] = (struct grower){.f = f, .id = i};
		assert_int_equal(
			pthread_create(&wt[i], NULL, writer_main, &w[i]), 0);
	}
	for (unsigned i = 0; i < GROW_WRITERS; i++)
		pthread_join(wt[i], NULL);
	atomic_store(&stop, true);
	for (unsigned i = 0; i < 2; i++)
		pthread_join(rt[i], NULL);
	print_message("  grows %u, reads %u + %u\n", stats(f->env).grows,
		      r[0].reads, r[1].reads);
	assert_true(stats(f->env).grows >= 3);
	assert_true(r[0].reads > 0 && r[1].reads > 0);
	assert_int_equal(count(f, f->t), GROW_WRITERS * GROW_PER);
	for (unsigned i = 0; i < GROW_WRITERS; i++)
		assert_int_equal(bulk_check(f->env, f->t, i * 100000u,
					    i * 100000u + GROW_PER, 'w'),
				 0);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crud),
		cmocka_unit_test(test_abort),
		cmocka_unit_test(test_iterate),
		cmocka_unit_test(test_rdonly),
		cmocka_unit_test(test_map_full_grows),
		cmocka_unit_test(test_map_at_max),
		cmocka_unit_test(test_map_grown_by_other_process),
		cmocka_unit_test(test_readers_full_stale),
		cmocka_unit_test(test_readers_full_live),
		cmocka_unit_test(test_threads_while_growing),
	};

	log_set_level(LOG_LV_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
