/* filter/dkim_cache: a worker's cache of DKIM key records by DNS name
 * (spec E.3: about 1000 entries, least recently used evicted first), each
 * kept no longer than its TTL. No negative entries. One thread. */
#ifndef RINGMAIL_FILTER_DKIM_CACHE_H
#define RINGMAIL_FILTER_DKIM_CACHE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DKIM_CACHE_SIZE 1000
/* A longer TTL is cut to this (a day, as resolvers commonly do). */
#define DKIM_CACHE_TTL_MAX 86400

struct dkim_cache;

/* 0 or -ENOMEM; @cap 0 = DKIM_CACHE_SIZE. */
int dkim_cache_new(unsigned cap, struct dkim_cache **c_r);
void dkim_cache_free(struct dkim_cache **c);
/* The record for @name, or NULL (absent or expired at @now_ms). Valid
 * until the next call on the cache. */
const char *dkim_cache_get(struct dkim_cache *c, const char *name,
			   uint64_t now_ms);
/* Keep @record for @ttl_s seconds (0: not kept). */
void dkim_cache_put(struct dkim_cache *c, const char *name, const char *record,
		    uint32_t ttl_s, uint64_t now_ms);
void dkim_cache_drop(struct dkim_cache *c, const char *name);
unsigned dkim_cache_count(const struct dkim_cache *c);

#ifdef __cplusplus
}
#endif

#endif
