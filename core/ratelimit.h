/* core/ratelimit: a keyed GCRA limiter (the token bucket of filtermail's
 * governor, spec D.6): @per_minute cells per minute with a burst of
 * @burst, one entry per key (the MAIL FROM address). Thread-safe (one
 * mutex; a check is a hash probe), bounded (fixed table; when it is full
 * the entry nearest to being forgotten is evicted), in memory only. */
#ifndef RINGMAIL_CORE_RATELIMIT_H
#define RINGMAIL_CORE_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ratelimit;

/* @slots is rounded up to a power of 2 (0: 16384). 0, -EINVAL (rate or
 * burst < 1) or -ENOMEM. */
int ratelimit_new(unsigned per_minute, unsigned burst, unsigned slots,
		  struct ratelimit **rl_r);
void ratelimit_free(struct ratelimit **rl);
/* Take one cell for @key at @now_ms (monotonic). true: allowed; false:
 * limited, and *@retry_ms_r (if not NULL) says when a cell is free. */
bool ratelimit_take(struct ratelimit *rl, const char *key, size_t key_len,
		    uint64_t now_ms, uint64_t *retry_ms_r);
/* Keys held (for tests and metrics). */
unsigned ratelimit_count(struct ratelimit *rl, uint64_t now_ms);

#endif
