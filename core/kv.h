/* core/kv: a key-value store on LMDB that hides LMDB's recoverable
 * errors, in the spirit of Postfix's slmdb: one environment (a single
 * file, MDB_NOSUBDIR, plus its "-lock" file) holding named tables.
 *
 * Work happens in a transaction callback run by kv_read or kv_write:
 * - MDB_MAP_FULL (in a put, a delete or the commit): the map doubles (up
 *   to kv_opts.max_map_size) and the write callback runs again;
 * - MDB_MAP_RESIZED (another process grew the file): the new size is
 *   adopted and the transaction begins again;
 * - MDB_READERS_FULL: stale reader slots of dead processes are cleared
 *   and the begin retried (a few times, with short sleeps for reads),
 *   then -EAGAIN.
 * So a write callback may run more than once and must start from
 * scratch each time (its effects on its own state included).
 *
 * Durability: no MDB_NOSYNC/NOMETASYNC, so kv_write returns 0 only once
 * the commit is fsync'd; a crash leaves the old or the new state.
 *
 * Threads: an env is shared by all threads of a process (MDB_NOTLS; any
 * thread may read). Writers are serialized by a mutex per env, and LMDB's
 * lock serializes them across processes. kv_read and kv_write are
 * BLOCKING (kv_write fsyncs): not on a loop thread for writes. A callback
 * never starts another transaction (no nesting; it would deadlock).
 *
 * Returns: 0 or a negative errno everywhere; -ENOENT not found, -EEXIST
 * (KV_PUT_NOOVERWRITE), -EINVAL bad key or value size, -ENOSPC map at its
 * maximum, -EAGAIN readers full, -EROFS a write on a KV_F_RDONLY env or in
 * a read transaction, -EIO other LMDB errors (logged). */
#ifndef RINGMAIL_CORE_KV_H
#define RINGMAIL_CORE_KV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct kv_env;
struct kv_table;
struct kv_txn;

#define KV_MAP_DEFAULT ((size_t)64 << 20)
#define KV_MAP_MIN     ((size_t)64 << 10)
#define KV_MAP_MAX     ((size_t)1 << 40)

/* Open the file read-only: kv_write returns -EROFS, tables must exist. */
#define KV_F_RDONLY 0x1u

struct kv_opts {
	const char *name;     /* log prefix ("accounts: map grown ..") */
	size_t map_size;      /* initial map; 0 = KV_MAP_DEFAULT, at least
				 KV_MAP_MIN; a bigger file's size wins */
	size_t max_map_size;  /* growth stops here; 0 = KV_MAP_MAX */
	unsigned max_tables;  /* named tables; 0 = 8 */
	unsigned max_readers; /* reader slots, all processes; 0 = 1024; the
				 first opener of the lock file sets it */
	mode_t mode;          /* of a new file; 0 = 0600 */
	unsigned flags;       /* KV_F_* */
};

/* Counters since kv_env_open (this process). */
struct kv_stats {
	size_t map_size;        /* current map bytes */
	unsigned grows;         /* doubled on MDB_MAP_FULL */
	unsigned adopts;        /* grown by another process */
	unsigned readers_full;  /* MDB_READERS_FULL seen */
	unsigned stale_readers; /* reader slots of dead processes cleared */
};

/* Open (creating unless KV_F_RDONLY) the environment file @path; stale
 * reader slots are cleared. 0 or -errno (logged). */
int kv_env_open(const char *path, const struct kv_opts *o,
		struct kv_env **env_r);
/* Close @*envp (NULL allowed) and set it to NULL; no transaction of it
 * may be running. Its tables go with it. */
void kv_env_close(struct kv_env **envp);
/* The table @name, created if missing (-ENOENT on a RDONLY env). Open
 * tables right after kv_env_open, before other threads use the env. The
 * handle lives as long as the env. 0 or -errno. */
int kv_table_open(struct kv_env *env, const char *name, struct kv_table **t_r);
/* The counters and the current map size; any thread, any time. */
void kv_stats(struct kv_env *env, struct kv_stats *s);

/* A transaction body. Return 0 to commit (kv_write) or finish (kv_read),
 * > 0 to abort without error (kv_read/kv_write return that value), or
 * -errno to abort with that error. */
typedef int kv_txn_fn(struct kv_txn *txn, void *arg);
/* A callback's "nothing to write": abort, no error. */
#define KV_SKIP 1
/* Run @fn in a read transaction. Its return value, or -errno when the
 * transaction could not begin. */
int kv_read(struct kv_env *env, kv_txn_fn *fn, void *arg);
/* Run @fn in a write transaction and commit durably, growing the map
 * and rerunning @fn as needed (see above). 0 committed, @fn's value, or
 * -errno. */
int kv_write(struct kv_env *env, kv_txn_fn *fn, void *arg);

/* Fail with -EEXIST when the key is present. */
#define KV_PUT_NOOVERWRITE 0x1u
/* kv_iterate: start after @from instead of at it. */
#define KV_ITER_AFTER 0x1u

/* *val_r points into the map: valid until the transaction ends or its
 * next write. 0 or -ENOENT (or -errno). */
int kv_get(struct kv_txn *txn, struct kv_table *t, const void *key, size_t klen,
	   const void **val_r, size_t *vlen_r);
/* Store @val under @key (1..kv_key_max octets). 0 or -errno. */
int kv_put(struct kv_txn *txn, struct kv_table *t, const void *key, size_t klen,
	   const void *val, size_t vlen, unsigned flags);
/* 0 or -ENOENT (or -errno). */
int kv_del(struct kv_txn *txn, struct kv_table *t, const void *key,
	   size_t klen);
/* Entries in @t. 0 or -errno. */
int kv_count(struct kv_txn *txn, struct kv_table *t, uint64_t *n_r);

/* One entry (pointers valid during the call only). Return 0 to go on,
 * > 0 to stop (kv_iterate returns it), -errno to fail. */
typedef int kv_iter_fn(const void *key, size_t klen, const void *val,
		       size_t vlen, void *arg);
/* Call @fn for the entries of @t in key order (memcmp, then length),
 * from the first key >= @from (@from NULL: from the start). @fn must not
 * write to @t. 0 at the end, @fn's non-zero value, or -errno. */
int kv_iterate(struct kv_txn *txn, struct kv_table *t, const void *from,
	       size_t flen, unsigned flags, kv_iter_fn *fn, void *arg);
/* The longest key kv_put accepts (LMDB's build limit, 511). */
size_t kv_key_max(struct kv_env *env);

/* ---- the value codec: little-endian fixed-width fields */

static inline void kv_put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void kv_put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void kv_put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t kv_get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t kv_get_u32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline uint64_t kv_get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

#endif
