/* core/accounts_throttle: brute-force throttling of logins, in memory,
 * one instance per worker (the policy is in accounts.h). Two fixed-size
 * open-addressing tables, one keyed by client (IPv4 address or IPv6 /64,
 * so hopping inside one's own prefix does not help) and one by account;
 * keys are 64-bit keyed hashes (random seed per instance), so an entry
 * never holds an address and memory is fixed at creation. A full probe
 * run evicts its least recently failed entry. Each worker sees only its
 * own clients: with N workers a client spreading connections over them
 * gets at most N times the allowance, which stays small. */
#include "core/accounts.h"

/* system */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define THROTTLE_DEFAULT_SLOTS 4096u
#define THROTTLE_MAX_SLOTS     (1u << 22)
#define THROTTLE_PROBES        8u
#define THROTTLE_DELAY_MIN_MS  500u
#define THROTTLE_DELAY_MAX_MS  15000u
#define THROTTLE_FORGET_MS     (15u * 60u * 1000u)
#define THROTTLE_WINDOW_MS     60000u
#define THROTTLE_WINDOW_LIMIT  10u

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
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0,    0,
					     0, 0, 0, 0, 0xff, 0xff};
	const struct sockaddr_in6 *s6;
	const struct sockaddr_in *s4;

	if (sa != NULL && sa->sa_family == AF_INET) {
		s4 = (const struct sockaddr_in *)sa;
		return throttle_hash(t, 4, &s4->sin_addr, 4);
	}
	if (sa != NULL && sa->sa_family == AF_INET6) {
		s6 = (const struct sockaddr_in6 *)sa;
		if (memcmp(s6->sin6_addr.s6_addr, v4mapped, 12) == 0)
			return throttle_hash(t, 4, &s6->sin6_addr.s6_addr[12],
					     4);
		return throttle_hash(t, 6, s6->sin6_addr.s6_addr, 8);
	}
	return throttle_hash(t, 0, "", 0); /* unix socket, unknown: one */
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

/* The entry for @key, or NULL; with @create, a new one in place of the
 * best victim of the probe run. */
static struct accounts_throttle_ent *
throttle_find(struct accounts_throttle *t, struct accounts_throttle_ent *tbl,
	      uint64_t key, bool create, uint64_t now_ms)
{
	struct accounts_throttle_ent *victim = NULL, *e;

	for (unsigned i = 0; i < THROTTLE_PROBES; i++) {
		e = &tbl[(key + i) & t->mask];
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

int64_t accounts_throttle_check(struct accounts_throttle *t,
				const struct sockaddr *ip, const char *addr,
				uint64_t now_ms)
{
	struct accounts_throttle_ent *e, *ea;
	int64_t d, da;
	unsigned fails;

	e = throttle_find(t, t->ip, throttle_ip_key(t, ip), false, now_ms);
	if (e == NULL)
		return 0;
	if (e->win_fails >= THROTTLE_WINDOW_LIMIT &&
	    now_ms - e->win_start_ms < THROTTLE_WINDOW_MS)
		return ACCOUNTS_THROTTLE_REFUSE;
	fails = throttle_fails(e, now_ms);
	if (fails == 0)
		return 0; /* a client without failures is never delayed */
	d = throttle_delay(fails);
	if (addr != NULL) {
		ea = throttle_find(t, t->acct,
				   throttle_hash(t, 'a', addr, strlen(addr)),
				   false, now_ms);
		if (ea != NULL) {
			da = throttle_delay(throttle_fails(ea, now_ms));
			if (da > d)
				d = da;
		}
	}
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

void accounts_throttle_record(struct accounts_throttle *t,
			      const struct sockaddr *ip, const char *addr,
			      bool ok, uint64_t now_ms)
{
	uint64_t kip = throttle_ip_key(t, ip);
	uint64_t kacct =
		addr != NULL ? throttle_hash(t, 'a', addr, strlen(addr)) : 0;
	struct accounts_throttle_ent *e;

	if (ok) {
		/* The delay resets; the window's count does not, so
		 * mixing good and bad logins keeps the rate limit. */
		e = throttle_find(t, t->ip, kip, false, now_ms);
		if (e != NULL)
			e->fails = 0;
		if (kacct != 0) {
			e = throttle_find(t, t->acct, kacct, false, now_ms);
			if (e != NULL)
				e->fails = 0;
		}
		return;
	}
	throttle_fail(throttle_find(t, t->ip, kip, true, now_ms), now_ms);
	if (kacct != 0)
		throttle_fail(throttle_find(t, t->acct, kacct, true, now_ms),
			      now_ms);
}
