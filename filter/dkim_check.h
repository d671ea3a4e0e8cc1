/* filter/dkim_check: one message's DKIM verification from the end of
 * DATA to the verdict, on a worker's loop: the keys its aligned
 * signatures need come from the worker's cache or from DNS (core/dns,
 * c-ares in the loop), then dkim_verify_finish runs on the pool and the
 * verdict comes back on the loop. A key that fails a signature's
 * cryptographic check leaves the cache (spec E.3). */
#ifndef RINGMAIL_FILTER_DKIM_CHECK_H
#define RINGMAIL_FILTER_DKIM_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "filter/dkim.h"

#ifdef __cplusplus
extern "C" {
#endif

struct loop;
struct pool;
struct dkim_checker;
struct dkim_check;

/* filtermail's DNS lookup timeout (spec E.3). */
#define DKIM_CHECK_TIMEOUT_MS 60000

/* One per loop, on its thread: @dns_server as dns_resolver_new takes it,
 * @timeout_ms per key lookup (0 = DKIM_CHECK_TIMEOUT_MS). 0 or -errno. */
int dkim_checker_new(struct loop *l, struct pool *p, const char *dns_server,
		     uint64_t timeout_ms, struct dkim_checker **ck_r);
/* Checks still waiting for DNS end without their callbacks; those on
 * the pool finish there and are then freed. */
void dkim_checker_free(struct dkim_checker **ck);
/* The worker's key cache (tests, benchmarks, metrics). */
struct dkim_cache *dkim_checker_cache(struct dkim_checker *ck);

/* @detail: a short reason for the log, valid during the call. */
typedef void dkim_check_done_fn(enum dkim_result res, const char *detail,
				void *arg);
/* Verify @v, for which dkim_verify_end returned DKIM_RES_PASS; the check
 * owns @v from now on (even on error). @done runs once on the loop
 * thread, never from inside this call. *@job_r (may be NULL) is for
 * dkim_check_detach. 0 or -errno. */
int dkim_check_start(struct dkim_checker *ck, struct dkim_verify *v,
		     dkim_check_done_fn *done, void *arg,
		     struct dkim_check **job_r);
/* The caller is gone: no callback; the check ends by itself. */
void dkim_check_detach(struct dkim_check *job);

/* ---- signing off the loop ---- */

/* @hdr: the malloc'd DKIM-Signature field (the callee frees it), or NULL
 * with @err < 0. */
typedef void dkim_sign_done_fn(int err, char *hdr, size_t hdr_len, void *arg);
/* Sign @msg (the caller keeps it alive until @done) on @pool; @done runs
 * on @origin's thread, never from inside this call. For what leaves with
 * a From domain of @s (bounces, and outbound mail in the federation
 * issue). 0 or -errno. */
int dkim_sign_start(struct pool *pool, struct loop *origin,
		    const struct dkim_signer *s, const uint8_t *msg, size_t len,
		    dkim_sign_done_fn *done, void *arg);

#ifdef __cplusplus
}
#endif

#endif
