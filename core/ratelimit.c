/* core/ratelimit: GCRA ("theoretical arrival time") per key in an
 * open-addressing table. An entry whose TAT is in the past holds no
 * state (a fresh key behaves the same), so it is free for reuse. */
#include "core/ratelimit.h"

/* system */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RATELIMIT_KEY_MAX 254
#define RATELIMIT_PROBE   32

struct ratelimit_entry {
	uint64_t tat; /* theoretical arrival time (ms); 0 = empty */
	uint64_t hash;
	uint16_t len;
	char key[RATELIMIT_KEY_MAX];
};

struct ratelimit {
	pthread_mutex_t mtx;
	uint64_t interval_ms;  /* one cell every interval */
	uint64_t tolerance_ms; /* (burst - 1) * interval */
	unsigned mask;
	struct ratelimit_entry *e;
};

int ratelimit_new(unsigned per_minute, unsigned burst, unsigned slots,
		  struct ratelimit **rl_r)
{
	struct ratelimit *rl;
	unsigned n = 1;

	*rl_r = NULL;
	if (per_minute < 1 || burst < 1)
		return -EINVAL;
	if (slots == 0)
		slots = 16384;
	while (n < slots && n < (1u << 24))
		n <<= 1;
	rl = calloc(1, sizeof(*rl));
	if (rl == NULL)
		return -ENOMEM;
	rl->e = calloc(n, sizeof(*rl->e));
	if (rl->e == NULL) {
		free(rl);
		return -ENOMEM;
	}
	pthread_mutex_init(&rl->mtx, NULL);
	rl->mask = n - 1;
	rl->interval_ms = 60000u / per_minute;
	if (rl->interval_ms == 0)
		rl->interval_ms = 1;
	rl->tolerance_ms = (uint64_t)(burst - 1) * rl->interval_ms;
	*rl_r = rl;
	return 0;
}

void ratelimit_free(struct ratelimit **rl)
{
	if (*rl == NULL)
		return;
	pthread_mutex_destroy(&(*rl)->mtx);
	free((*rl)->e);
	free(*rl);
	*rl = NULL;
}

/* FNV-1a, 64 bit. */
static uint64_t ratelimit_hash(const char *key, size_t len)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)key[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

/* The entry of @key, or the slot to put it in (the first expired one on
 * the probe path, else the one that expires soonest). */
static struct ratelimit_entry *ratelimit_find(struct ratelimit *rl,
					      const char *key, size_t len,
					      uint64_t h, uint64_t now_ms)
{
	struct ratelimit_entry *free_e = NULL, *oldest = NULL, *e;

	for (unsigned i = 0; i < RATELIMIT_PROBE; i++) {
		e = &rl->e[(h + i) & rl->mask];
		if (e->tat != 0 && e->hash == h && e->len == len &&
		    memcmp(e->key, key, len) == 0)
			return e;
		if (e->tat <= now_ms) {
			if (free_e == NULL)
				free_e = e;
			continue;
		}
		if (oldest == NULL || e->tat < oldest->tat)
			oldest = e;
	}
	e = free_e != NULL ? free_e : oldest;
	e->tat = 0;
	e->hash = h;
	e->len = (uint16_t)len;
	memcpy(e->key, key, len);
	return e;
}

bool ratelimit_take(struct ratelimit *rl, const char *key, size_t key_len,
		    uint64_t now_ms, uint64_t *retry_ms_r)
{
	struct ratelimit_entry *e;
	uint64_t tat;
	bool ok;

	if (key_len > RATELIMIT_KEY_MAX)
		key_len = RATELIMIT_KEY_MAX;
	/* TAT 0 means empty: keep real times above it. */
	now_ms += 1;
	pthread_mutex_lock(&rl->mtx);
	e = ratelimit_find(rl, key, key_len, ratelimit_hash(key, key_len),
			   now_ms);
	tat = e->tat > now_ms ? e->tat : now_ms;
	ok = tat - now_ms <= rl->tolerance_ms;
	if (ok)
		e->tat = tat + rl->interval_ms;
	else if (retry_ms_r != NULL)
		*retry_ms_r = tat - now_ms - rl->tolerance_ms;
	pthread_mutex_unlock(&rl->mtx);
	return ok;
}

unsigned ratelimit_count(struct ratelimit *rl, uint64_t now_ms)
{
	unsigned n = 0;

	pthread_mutex_lock(&rl->mtx);
	for (unsigned i = 0; i <= rl->mask; i++)
		n += rl->e[i].tat > now_ms + 1;
	pthread_mutex_unlock(&rl->mtx);
	return n;
}
