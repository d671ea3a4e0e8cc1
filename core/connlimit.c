/* core/connlimit: per-client connection counts (see connlimit.h). Each
 * key hashes (keyed, random seed per table) to one bucket of
 * CONNLIMIT_WAYS entries; an entry with n == 0 is free. A key lives only
 * in its own bucket, so one stripe lock covers every look-up of it. */
#include "core/connlimit.h"

/* system */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define CONNLIMIT_WAYS    16u
#define CONNLIMIT_STRIPES 64u

struct connlimit_ent {
	uint64_t prefix;
	uint32_t n; /* 0 = free */
	uint8_t family;
};

struct connlimit {
	struct connlimit_ent *ents; /* buckets x CONNLIMIT_WAYS */
	unsigned bucket_mask;
	uint64_t seed;
	pthread_mutex_t locks[CONNLIMIT_STRIPES];
};

struct connlimit_key connlimit_key_of(const struct sockaddr *sa)
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0,    0,
					     0, 0, 0, 0, 0xff, 0xff};
	struct connlimit_key k = {0, 0};
	const struct sockaddr_in6 *s6;
	const struct sockaddr_in *s4;
	const uint8_t *p = NULL;

	if (sa != NULL && sa->sa_family == AF_INET) {
		s4 = (const struct sockaddr_in *)sa;
		p = (const uint8_t *)&s4->sin_addr;
		k.family = 4;
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		s6 = (const struct sockaddr_in6 *)sa;
		if (memcmp(s6->sin6_addr.s6_addr, v4mapped, 12) == 0) {
			p = &s6->sin6_addr.s6_addr[12];
			k.family = 4;
		} else {
			for (unsigned i = 0; i < 8; i++)
				k.prefix = k.prefix << 8 |
					   s6->sin6_addr.s6_addr[i];
			k.family = 6;
		}
	}
	if (p != NULL && k.family == 4)
		k.prefix = (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 |
			   (uint64_t)p[2] << 8 | p[3];
	return k;
}

int connlimit_new(unsigned max_conns, struct connlimit **l_r)
{
	struct connlimit *l;
	unsigned buckets = 16;

	*l_r = NULL;
	if (max_conns == 0)
		max_conns = 1024;
	/* 4 entries per connection, 16 per bucket: with every connection
	 * from another client, a bucket (4 on average) overflows with a
	 * probability of about 1e-6. */
	while (buckets < max_conns / (CONNLIMIT_WAYS / 4) &&
	       buckets < (1u << 24))
		buckets <<= 1;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	l->ents = calloc((size_t)buckets * CONNLIMIT_WAYS, sizeof(*l->ents));
	if (l->ents == NULL) {
		free(l);
		return -ENOMEM;
	}
	l->bucket_mask = buckets - 1;
	if (getrandom(&l->seed, sizeof(l->seed), 0) != sizeof(l->seed))
		l->seed = (uint64_t)(uintptr_t)l ^ 0x9e3779b97f4a7c15ull;
	for (unsigned i = 0; i < CONNLIMIT_STRIPES; i++)
		pthread_mutex_init(&l->locks[i], NULL);
	*l_r = l;
	return 0;
}

void connlimit_free(struct connlimit **lp)
{
	struct connlimit *l = *lp;

	if (l == NULL)
		return;
	*lp = NULL;
	for (unsigned i = 0; i < CONNLIMIT_STRIPES; i++)
		pthread_mutex_destroy(&l->locks[i]);
	free(l->ents);
	free(l);
}

/* splitmix64's finalizer over the seeded key. */
static unsigned connlimit_bucket(const struct connlimit *l,
				 const struct connlimit_key *k)
{
	uint64_t h = l->seed ^ k->prefix ^ ((uint64_t)k->family << 56);

	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return (unsigned)h & l->bucket_mask;
}

/* Lock @k's bucket; returns its first entry. */
static struct connlimit_ent *connlimit_lock(struct connlimit *l,
					    const struct connlimit_key *k,
					    pthread_mutex_t **mtx_r)
{
	unsigned b = connlimit_bucket(l, k);

	*mtx_r = &l->locks[b % CONNLIMIT_STRIPES];
	pthread_mutex_lock(*mtx_r);
	return &l->ents[(size_t)b * CONNLIMIT_WAYS];
}

static bool connlimit_match(const struct connlimit_ent *e,
			    const struct connlimit_key *k)
{
	return e->n > 0 && e->prefix == k->prefix && e->family == k->family;
}

int connlimit_take(struct connlimit *l, const struct connlimit_key *k,
		   unsigned cap)
{
	struct connlimit_ent *b, *e = NULL, *free_e = NULL;
	pthread_mutex_t *mtx;
	int r;

	b = connlimit_lock(l, k, &mtx);
	for (unsigned i = 0; i < CONNLIMIT_WAYS && e == NULL; i++) {
		if (connlimit_match(&b[i], k))
			e = &b[i];
		else if (b[i].n == 0 && free_e == NULL)
			free_e = &b[i];
	}
	if (e == NULL && free_e != NULL) {
		e = free_e;
		e->prefix = k->prefix;
		e->family = k->family;
		e->n = 0;
	}
	if (e == NULL) {
		r = -ENOSPC;
	} else if (cap != 0 && e->n >= cap) {
		r = 0;
	} else {
		e->n++;
		r = 1;
	}
	pthread_mutex_unlock(mtx);
	return r;
}

void connlimit_release(struct connlimit *l, const struct connlimit_key *k)
{
	struct connlimit_ent *b;
	pthread_mutex_t *mtx;

	b = connlimit_lock(l, k, &mtx);
	for (unsigned i = 0; i < CONNLIMIT_WAYS; i++) {
		if (connlimit_match(&b[i], k)) {
			b[i].n--;
			break;
		}
	}
	pthread_mutex_unlock(mtx);
}

unsigned connlimit_count(struct connlimit *l, const struct connlimit_key *k)
{
	struct connlimit_ent *b;
	pthread_mutex_t *mtx;
	unsigned n = 0;

	b = connlimit_lock(l, k, &mtx);
	for (unsigned i = 0; i < CONNLIMIT_WAYS; i++) {
		if (connlimit_match(&b[i], k))
			n = b[i].n;
	}
	pthread_mutex_unlock(mtx);
	return n;
}
