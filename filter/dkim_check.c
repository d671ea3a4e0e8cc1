/* filter/dkim_check: cache, DNS, pool, verdict. */
#include "filter/dkim_check.h"

/* system */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* project */
#include "core/dns.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/pool.h"
#include "filter/dkim_cache.h"

struct dkim_checker {
	struct loop *loop;
	struct pool *pool;
	struct dns_resolver *dns;
	struct dkim_cache *cache;
	uint64_t timeout_ms;
	unsigned refs;
	bool closed;
	struct dkim_check *jobs; /* waiting for DNS */
};

struct dkim_check_key {
	struct dkim_check *job;
	unsigned idx;
	bool miss;
	struct dns_query *q;
};

struct dkim_check {
	struct dkim_checker *ck;
	struct dkim_check *next, **pprev;
	struct dkim_verify *v;
	dkim_check_done_fn *done;
	void *arg;
	unsigned waiting;
	struct dkim_check_key keys[DKIM_KEYS_MAX];
	struct loop_timer later; /* for checks that need no DNS */
	enum dkim_result res;
	char detail[96];
};

static void dkim_checker_unref(struct dkim_checker *ck)
{
	if (--ck->refs > 0)
		return;
	dkim_cache_free(&ck->cache);
	free(ck);
}

int dkim_checker_new(struct loop *l, struct pool *p, const char *dns_server,
		     uint64_t timeout_ms, struct dkim_checker **ck_r)
{
	struct dkim_checker *ck;
	int r;

	*ck_r = NULL;
	ck = calloc(1, sizeof(*ck));
	if (ck == NULL)
		return -ENOMEM;
	ck->loop = l;
	ck->pool = p;
	ck->refs = 1;
	ck->timeout_ms = timeout_ms != 0 ? timeout_ms : DKIM_CHECK_TIMEOUT_MS;
	r = dns_resolver_new(l, dns_server, &ck->dns);
	if (r == 0)
		r = dkim_cache_new(DKIM_CACHE_SIZE, &ck->cache);
	if (r < 0) {
		dns_resolver_free(&ck->dns);
		dkim_cache_free(&ck->cache);
		free(ck);
		return r;
	}
	*ck_r = ck;
	return 0;
}

struct dkim_cache *dkim_checker_cache(struct dkim_checker *ck)
{
	return ck->cache;
}

static void dkim_check_unlist(struct dkim_check *j)
{
	if (j->pprev == NULL)
		return;
	*j->pprev = j->next;
	if (j->next != NULL)
		j->next->pprev = j->pprev;
	j->pprev = NULL;
	j->next = NULL;
}

static void dkim_check_free(struct dkim_check *j)
{
	struct dkim_checker *ck = j->ck;

	dkim_check_unlist(j);
	for (unsigned i = 0; i < DKIM_KEYS_MAX; i++)
		dns_query_cancel(&j->keys[i].q);
	loop_timer_disarm(ck->loop, &j->later);
	dkim_verify_free(&j->v);
	free(j);
	dkim_checker_unref(ck);
}

void dkim_checker_free(struct dkim_checker **ckp)
{
	struct dkim_checker *ck = *ckp;

	if (ck == NULL)
		return;
	*ckp = NULL;
	ck->closed = true;
	while (ck->jobs != NULL)
		dkim_check_free(ck->jobs);
	dns_resolver_free(&ck->dns);
	dkim_checker_unref(ck);
}

/* ---- pool ---- */

static void dkim_check_work(void *arg)
{
	struct dkim_check *j = arg;

	j->res = dkim_verify_finish(j->v);
	snprintf(j->detail, sizeof(j->detail), "%s", dkim_verify_detail(j->v));
}

static void dkim_check_done(void *arg)
{
	struct dkim_check *j = arg;
	struct dkim_checker *ck = j->ck;

	if (!ck->closed) {
		for (unsigned i = 0; i < dkim_verify_nkeys(j->v); i++) {
			if (dkim_verify_key_failed(j->v, i))
				dkim_cache_drop(ck->cache,
						dkim_verify_key_name(j->v, i));
		}
	}
	if (j->done != NULL)
		j->done(j->res, j->detail, j->arg);
	dkim_check_free(j);
}

static void dkim_check_submit(struct dkim_check *j)
{
	int r;

	dkim_check_unlist(j);
	r = pool_submit(j->ck->pool, j->ck->loop, dkim_check_work,
			dkim_check_done, j);
	if (r < 0) {
		j->res = DKIM_RES_TEMPFAIL;
		snprintf(j->detail, sizeof(j->detail), "pool: %s",
			 strerror(-r));
		/* Report from a timer: never from inside a callback chain
		 * that may have started in dkim_check_start. */
		loop_timer_arm(j->ck->loop, &j->later, 0);
	}
}

static void dkim_check_later(struct loop_timer *t, void *arg)
{
	struct dkim_check *j = arg;

	(void)t;
	if (j->res == DKIM_RES_TEMPFAIL && j->detail[0] != '\0') {
		if (j->done != NULL)
			j->done(j->res, j->detail, j->arg);
		dkim_check_free(j);
		return;
	}
	dkim_check_submit(j);
}

/* ---- DNS ---- */

static void dkim_check_dns_cb(enum dns_status st,
			      const struct dns_txt_answer *ans, void *arg)
{
	struct dkim_check_key *k = arg;
	struct dkim_check *j = k->job;
	struct dkim_checker *ck = j->ck;
	const char *name = dkim_verify_key_name(j->v, k->idx);
	char rec[DKIM_RECORD_MAX + 1];

	k->q = NULL;
	switch (st) {
	case DNS_OK:
		if (ans != NULL &&
		    dkim_record_select(ans->txt, ans->len, ans->n, rec,
				       sizeof(rec))) {
			dkim_verify_set_key(j->v, k->idx, DKIM_KEY_FOUND, rec);
			dkim_cache_put(ck->cache, name, rec, ans->ttl,
				       loop_now_ms(ck->loop));
		} else {
			dkim_verify_set_key(j->v, k->idx, DKIM_KEY_NOTFOUND,
					    NULL);
		}
		break;
	case DNS_NOTFOUND:
		dkim_verify_set_key(j->v, k->idx, DKIM_KEY_NOTFOUND, NULL);
		break;
	default:
		log_info("dkim key %s: dns %s", name, dns_status_name(st));
		dkim_verify_set_key(j->v, k->idx, DKIM_KEY_TEMPFAIL, NULL);
		break;
	}
	if (--j->waiting == 0)
		dkim_check_submit(j);
}

int dkim_check_start(struct dkim_checker *ck, struct dkim_verify *v,
		     dkim_check_done_fn *done, void *arg,
		     struct dkim_check **job_r)
{
	struct dkim_check *j;
	unsigned n = dkim_verify_nkeys(v);
	int r;

	if (job_r != NULL)
		*job_r = NULL;
	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		dkim_verify_free(&v);
		return -ENOMEM;
	}
	j->ck = ck;
	ck->refs++;
	j->v = v;
	j->done = done;
	j->arg = arg;
	loop_timer_init(&j->later, dkim_check_later, j);
	j->next = ck->jobs;
	if (ck->jobs != NULL)
		ck->jobs->pprev = &j->next;
	ck->jobs = j;
	j->pprev = &ck->jobs;
	for (unsigned i = 0; i < n; i++) {
		const char *name = dkim_verify_key_name(v, i);
		const char *rec =
			dkim_cache_get(ck->cache, name, loop_now_ms(ck->loop));

		j->keys[i].job = j;
		j->keys[i].idx = i;
		if (rec != NULL) {
			dkim_verify_set_key(v, i, DKIM_KEY_FOUND, rec);
			continue;
		}
		j->keys[i].miss = true;
		j->waiting++;
	}
	for (unsigned i = 0; i < n; i++) {
		if (!j->keys[i].miss)
			continue;
		r = dns_txt_lookup(ck->dns, dkim_verify_key_name(v, i),
				   ck->timeout_ms, dkim_check_dns_cb,
				   &j->keys[i], &j->keys[i].q);
		if (r == -EINVAL) {
			/* No DNS name (too long): no such key. */
			dkim_verify_set_key(v, i, DKIM_KEY_NOTFOUND, NULL);
			j->waiting--;
			continue;
		}
		if (r < 0) {
			j->done = NULL;
			dkim_check_free(j);
			return r;
		}
	}
	if (j->waiting == 0)
		loop_timer_arm(ck->loop, &j->later, 0);
	if (job_r != NULL)
		*job_r = j;
	return 0;
}

void dkim_check_detach(struct dkim_check *job)
{
	if (job != NULL)
		job->done = NULL;
}

/* ---- signing ---- */

struct dkim_sign_job {
	const struct dkim_signer *s;
	const uint8_t *msg;
	size_t len;
	dkim_sign_done_fn *done;
	void *arg;
	int err;
	char *hdr;
	size_t hdr_len;
};

static void dkim_sign_work(void *arg)
{
	struct dkim_sign_job *j = arg;

	j->err = dkim_signer_sign(j->s, j->msg, j->len, &j->hdr, &j->hdr_len);
}

static void dkim_sign_done(void *arg)
{
	struct dkim_sign_job *j = arg;

	j->done(j->err, j->hdr, j->hdr_len, j->arg);
	free(j);
}

int dkim_sign_start(struct pool *pool, struct loop *origin,
		    const struct dkim_signer *s, const uint8_t *msg, size_t len,
		    dkim_sign_done_fn *done, void *arg)
{
	struct dkim_sign_job *j;
	int r;

	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return -ENOMEM;
	j->s = s;
	j->msg = msg;
	j->len = len;
	j->done = done;
	j->arg = arg;
	r = pool_submit(pool, origin, dkim_sign_work, dkim_sign_done, j);
	if (r < 0)
		free(j);
	return r;
}
