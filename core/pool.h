/* core/pool: a small pool of threads for blocking or CPU-heavy work
 * (SHA512-crypt, fsync'd LMDB writes, RSA). Results come back to the
 * submitting loop's thread as completions via loop_post(). */
#ifndef RINGMAIL_CORE_POOL_H
#define RINGMAIL_CORE_POOL_H

struct loop;
struct pool;

typedef void pool_work_fn(void *arg); /* runs on a pool thread */
typedef void pool_done_fn(void *arg); /* runs on the origin loop thread */

/* Start @nthreads threads (0 = 2). 0 or -errno. */
int pool_new(unsigned nthreads, struct pool **pool_r);
/* Finish queued work, join the threads, free. Sets *pool to NULL. */
void pool_free(struct pool **pool);
/* Run @work(@arg) on a pool thread, then @done(@arg) on @origin's thread
 * (if @done is not NULL). Thread-safe. 0 or -errno. */
int pool_submit(struct pool *p, struct loop *origin, pool_work_fn *work,
		pool_done_fn *done, void *arg);

#endif
