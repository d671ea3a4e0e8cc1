/* core/accounts/accounts_throttle: brute-force throttling of logins, in memory,
 * one instance shared by every worker of SMTP and IMAP (the policy is in
 * accounts.h). Two fixed-size tables, one keyed by client (IPv4 address
 * or IPv6 /64, core/connlimit's key, so hopping inside one's own prefix
 * does not help) and one by account; keys are 64-bit keyed hashes
 * (random seed per instance), so an entry never holds an address and
 * memory is fixed at creation. A key lives in one bucket of
 * THROTTLE_PROBES entries (a full bucket evicts its least recently
 * failed entry), and each bucket is guarded by one of THROTTLE_STRIPES
 * locks, never more than one held at a time. */
#include "core/accounts/accounts.h"

/* system */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* project */
#include "core/connlimit.h"

#define THROTTLE_DEFAULT_SLOTS 4096u
#define THROTTLE_MAX_SLOTS     (1u << 22)
#define THROTTLE_PROBES        8u
#define THROTTLE_DELAY_MIN_MS  500u
#define THROTTLE_DELAY_MAX_MS  15000u
#define THROTTLE_FORGET_MS     (15u * 60u * 1000u)
#define THROTTLE_WINDOW_MS     60000u
#define THROTTLE_WINDOW_LIMIT  10u
#define THROTTLE_STRIPES       64u

struct accounts_throttle_ent {
	uint64_t key;          /* 0 = free */
	uint64_t last_fail_ms; /* for the delay's decay and for eviction */
	uint64_t win_start_ms;
	uint16_t fails;     /* drives the delay */
	uint16_t win_fails; /* failures in the window from win_start_ms */
};

struct accounts_throttle {
	struct accounts_throttle_ent *ip, *acct;
	unsigned mask;
	uint64_t seed;
	bool locks_init;
	pthread_mutex_t ip_locks[THROTTLE_STRIPES];
	pthread_mutex_t acct_locks[THROTTLE_STRIPES];
};

int accounts_throttle_new(unsigned slots, struct accounts_throttle **t_r)
{
	struct accounts_throttle *t;
	unsigned n = 16;

	*t_r = NULL;
	if (slots == 0)
		slots = THROTTLE_DEFAULT_SLOTS;
	if (slots > THROTTLE_MAX_SLOTS)
		return -EINVAL;
	while (n < slots)
		n <<= 1;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	t->ip = calloc(n, sizeof(*t->ip));
	t->acct = calloc(n, sizeof(*t->acct));
	if (t->ip == NULL || t->acct == NULL) {
		accounts_throttle_free(&t);
		return -ENOMEM;
	}
	t->mask = n - 1;
	for (unsigned i = 0; i < THROTTLE_STRIPES; i++) {
		pthread_mutex_init(&t->ip_locks[i], NULL);
		pthread_mutex_init(&t->acct_locks[i], NULL);
	}
	t->locks_init = true;
	if (getrandom(&t->seed, sizeof(t->seed), 0) != sizeof(t->seed))
		t->seed = (uint64_t)(uintptr_t)t ^ 0x9e3779b97f4a7c15ull;
	*t_r = t;
	return 0;
}

void accounts_throttle_free(struct accounts_throttle **tp)
{
	struct accounts_throttle *t = *tp;

	if (t == NULL)
		return;
	*tp = NULL;
	for (unsigned i = 0; i < THROTTLE_STRIPES && t->locks_init; i++) {
		pthread_mutex_destroy(&t->ip_locks[i]);
		pthread_mutex_destroy(&t->acct_locks[i]);
	}
	free(t->ip);
	free(t->acct);
	free(t);
}

/* Keyed FNV-1a, then splitmix64's finalizer. Never 0. */
static uint64_t throttle_hash(const struct accounts_throttle *t, uint8_t tag,
			      const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t h = t->seed ^ 0xcbf29ce484222325ull;

	h = (h ^ tag) * 0x100000001b3ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return h != 0 ? h : 1;
}

static uint64_t throttle_ip_key(const struct accounts_throttle *t,
				const struct sockaddr *sa)
{
	struct connlimit_key k = connlimit_key_of(sa);
	uint8_t b[8];

	for (unsigned i = 0; i < 8; i++)
		b[i] = (uint8_t)(k.prefix >> (56 - 8 * i));
	return throttle_hash(t, k.family, b, sizeof(b));
}

static uint64_t throttle_acct_key(const struct accounts_throttle *t,
				  const char *addr)
{
	return addr != NULL ? throttle_hash(t, 'a', addr, strlen(addr)) : 0;
}

/* Failures older than THROTTLE_FORGET_MS no longer count. */
static unsigned throttle_fails(const struct accounts_throttle_ent *e,
			       uint64_t now_ms)
{
	if (e->fails == 0 || now_ms - e->last_fail_ms > THROTTLE_FORGET_MS)
		return 0;
	return e->fails;
}

static bool throttle_idle(const struct accounts_throttle_ent *e,
			  uint64_t now_ms)
{
	return throttle_fails(e, now_ms) == 0 &&
	       now_ms - e->win_start_ms >= THROTTLE_WINDOW_MS;
}

/* Eviction order: free, then idle, then least recently failed. */
static bool throttle_better_victim(const struct accounts_throttle_ent *e,
				   const struct accounts_throttle_ent *v,
				   uint64_t now_ms)
{
	unsigned re = e->key == 0 ? 0 : throttle_idle(e, now_ms) ? 1 : 2;
	unsigned rv = v->key == 0 ? 0 : throttle_idle(v, now_ms) ? 1 : 2;

	if (re != rv)
		return re < rv;
	return e->last_fail_ms < v->last_fail_ms;
}

/* Lock the bucket of @key in the IP (@acct false) or account table and
 * return its first entry; unlock with pthread_mutex_unlock(*@mtx_r). */
static struct accounts_throttle_ent *throttle_lock(struct accounts_throttle *t,
						   bool acct, uint64_t key,
						   pthread_mutex_t **mtx_r)
{
	unsigned base = (unsigned)key & t->mask & ~(THROTTLE_PROBES - 1);
	unsigned stripe = (base / THROTTLE_PROBES) % THROTTLE_STRIPES;

	*mtx_r = acct ? &t->acct_locks[stripe] : &t->ip_locks[stripe];
	pthread_mutex_lock(*mtx_r);
	return acct ? &t->acct[base] : &t->ip[base];
}

/* The entry for @key in the locked @bucket, or NULL; with @create, a new
 * one in place of the bucket's best victim. */
static struct accounts_throttle_ent *
throttle_find(struct accounts_throttle_ent *bucket, uint64_t key, bool create,
	      uint64_t now_ms)
{
	struct accounts_throttle_ent *victim = NULL, *e;

	for (unsigned i = 0; i < THROTTLE_PROBES; i++) {
		e = &bucket[i];
		if (e->key == key)
			return e;
		if (create && (victim == NULL ||
			       throttle_better_victim(e, victim, now_ms)))
			victim = e;
	}
	if (!create)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	victim->key = key;
	victim->win_start_ms = now_ms;
	return victim;
}

static int64_t throttle_delay(unsigned fails)
{
	uint64_t d = THROTTLE_DELAY_MIN_MS;

	if (fails == 0)
		return 0;
	for (unsigned i = 1; i < fails && d < THROTTLE_DELAY_MAX_MS; i++)
		d <<= 1;
	return (int64_t)(d < THROTTLE_DELAY_MAX_MS ? d : THROTTLE_DELAY_MAX_MS);
}

static bool throttle_window_full(const struct accounts_throttle_ent *e,
				 uint64_t now_ms)
{
	return e->win_fails >= THROTTLE_WINDOW_LIMIT &&
	       now_ms - e->win_start_ms < THROTTLE_WINDOW_MS;
}

/* The account's delay, for a client that has failed itself. */
static int64_t throttle_acct_delay(struct accounts_throttle *t,
				   const char *addr, uint64_t now_ms)
{
	struct accounts_throttle_ent *b, *ea;
	pthread_mutex_t *mtx;
	uint64_t key = throttle_acct_key(t, addr);
	int64_t d = 0;

	if (key == 0)
		return 0;
	b = throttle_lock(t, true, key, &mtx);
	ea = throttle_find(b, key, false, now_ms);
	if (ea != NULL)
		d = throttle_delay(throttle_fails(ea, now_ms));
	pthread_mutex_unlock(mtx);
	return d;
}

static void throttle_fail(struct accounts_throttle_ent *e, uint64_t now_ms)
{
	if (throttle_fails(e, now_ms) == 0)
		e->fails = 0;
	if (e->fails < UINT16_MAX)
		e->fails++;
	e->last_fail_ms = now_ms;
	if (now_ms - e->win_start_ms >= THROTTLE_WINDOW_MS) {
		e->win_start_ms = now_ms;
		e->win_fails = 0;
	}
	if (e->win_fails < UINT16_MAX)
		e->win_fails++;
}

/* Check (and with @res, reserve) an attempt from @ip. */
static int64_t throttle_begin(struct accounts_throttle *t,
			      const struct sockaddr *ip, const char *addr,
			      uint64_t now_ms,
			      struct accounts_throttle_res *res)
{
	struct accounts_throttle_ent *b, *e;
	pthread_mutex_t *mtx;
	uint64_t key = throttle_ip_key(t, ip);
	unsigned fails = 0;
	int64_t d, da;

	b = throttle_lock(t, false, key, &mtx);
	e = throttle_find(b, key, res != NULL, now_ms);
	if (e != NULL && throttle_window_full(e, now_ms)) {
		pthread_mutex_unlock(mtx);
		return ACCOUNTS_THROTTLE_REFUSE;
	}
	if (e != NULL)
		fails = throttle_fails(e, now_ms);
	if (res != NULL) {
		/* Counted as a failure from now until it is released: a
		 * parallel attempt sees it (issue 11 item 8). */
		throttle_fail(e, now_ms);
		res->held = true;
		res->at_ms = now_ms;
		res->win_start_ms = e->win_start_ms;
	}
	pthread_mutex_unlock(mtx);
	if (fails == 0)
		return 0; /* a client without failures is never delayed */
	d = throttle_delay(fails);
	da = throttle_acct_delay(t, addr, now_ms);
	return da > d ? da : d;
}

int64_t accounts_throttle_check(struct accounts_throttle *t,
				const struct sockaddr *ip, const char *addr,
				uint64_t now_ms)
{
	return throttle_begin(t, ip, addr, now_ms, NULL);
}

int64_t accounts_throttle_reserve(struct accounts_throttle *t,
				  const struct sockaddr *ip, const char *addr,
				  uint64_t now_ms,
				  struct accounts_throttle_res *res)
{
	memset(res, 0, sizeof(*res));
	return throttle_begin(t, ip, addr, now_ms, res);
}

/* A success: the delays reset; the window's count does not, so mixing
 * good and bad logins keeps the rate limit. */
static void throttle_success(struct accounts_throttle *t, uint64_t kip,
			     uint64_t kacct, uint64_t now_ms)
{
	struct accounts_throttle_ent *b, *e;
	pthread_mutex_t *mtx;

	b = throttle_lock(t, false, kip, &mtx);
	e = throttle_find(b, kip, false, now_ms);
	if (e != NULL)
		e->fails = 0;
	pthread_mutex_unlock(mtx);
	if (kacct == 0)
		return;
	b = throttle_lock(t, true, kacct, &mtx);
	e = throttle_find(b, kacct, false, now_ms);
	if (e != NULL)
		e->fails = 0;
	pthread_mutex_unlock(mtx);
}

static void throttle_acct_fail(struct accounts_throttle *t, uint64_t kacct,
			       uint64_t now_ms)
{
	struct accounts_throttle_ent *b;
	pthread_mutex_t *mtx;

	if (kacct == 0)
		return;
	b = throttle_lock(t, true, kacct, &mtx);
	throttle_fail(throttle_find(b, kacct, true, now_ms), now_ms);
	pthread_mutex_unlock(mtx);
}

void accounts_throttle_record(struct accounts_throttle *t,
			      const struct sockaddr *ip, const char *addr,
			      bool ok, uint64_t now_ms)
{
	struct accounts_throttle_ent *b;
	pthread_mutex_t *mtx;
	uint64_t kip = throttle_ip_key(t, ip);
	uint64_t kacct = throttle_acct_key(t, addr);

	if (ok) {
		throttle_success(t, kip, kacct, now_ms);
		return;
	}
	b = throttle_lock(t, false, kip, &mtx);
	throttle_fail(throttle_find(b, kip, true, now_ms), now_ms);
	pthread_mutex_unlock(mtx);
	throttle_acct_fail(t, kacct, now_ms);
}

void accounts_throttle_release(struct accounts_throttle *t,
			       const struct sockaddr *ip, const char *addr,
			       enum accounts_throttle_outcome outcome,
			       uint64_t now_ms,
			       struct accounts_throttle_res *res)
{
	struct accounts_throttle_ent *b, *e;
	pthread_mutex_t *mtx;
	uint64_t kip = throttle_ip_key(t, ip);

	if (!res->held)
		return;
	res->held = false;
	switch (outcome) {
	case ACCOUNTS_THROTTLE_FAILURE:
		/* The client's failure is the reservation itself. */
		throttle_acct_fail(t, throttle_acct_key(t, addr), now_ms);
		return;
	case ACCOUNTS_THROTTLE_SUCCESS:
	case ACCOUNTS_THROTTLE_CANCEL:
		break;
	}
	/* Take the reservation back (if the entry and its window are still
	 * the ones it was counted in). */
	b = throttle_lock(t, false, kip, &mtx);
	e = throttle_find(b, kip, false, now_ms);
	if (e != NULL) {
		if (e->fails > 0 && e->last_fail_ms >= res->at_ms)
			e->fails--;
		if (e->win_fails > 0 && e->win_start_ms == res->win_start_ms)
			e->win_fails--;
	}
	pthread_mutex_unlock(mtx);
	if (outcome == ACCOUNTS_THROTTLE_SUCCESS)
		throttle_success(t, kip, throttle_acct_key(t, addr), now_ms);
}
