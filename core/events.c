/* core/events: a fixed subscriber list, written at boot, read-only
 * afterwards (so no lock for it on the delivery path), and the presence
 * index: (address, worker) -> session count in a hash table whose
 * buckets are guarded by striped mutexes. */
#include "core/events.h"

/* system */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* project */
#include "core/hash.h"

#define PRESENCE_BUCKETS  4096u
#define PRESENCE_STRIPES  64u
#define PRESENCE_ADDR_MAX 320u

struct presence_entry {
	struct presence_entry *next;
	uint32_t hash;
	uint16_t worker;
	uint32_t count;
	char addr[];
};

struct events_presence {
	pthread_mutex_t stripe[PRESENCE_STRIPES];
	struct presence_entry *bucket[PRESENCE_BUCKETS];
};

int events_init(struct events *e)
{
	memset(e, 0, sizeof(*e));
	e->presence = calloc(1, sizeof(*e->presence));
	if (e->presence == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < PRESENCE_STRIPES; i++)
		pthread_mutex_init(&e->presence->stripe[i], NULL);
	return 0;
}

void events_fini(struct events *e)
{
	struct events_presence *p = e->presence;

	if (p == NULL)
		return;
	for (unsigned i = 0; i < PRESENCE_BUCKETS; i++) {
		while (p->bucket[i] != NULL) {
			struct presence_entry *x = p->bucket[i];

			p->bucket[i] = x->next;
			free(x);
		}
	}
	for (unsigned i = 0; i < PRESENCE_STRIPES; i++)
		pthread_mutex_destroy(&p->stripe[i]);
	free(p);
	e->presence = NULL;
}

int events_subscribe(struct events *e, events_delivered_fn *fn, void *arg)
{
	if (e->n >= EVENTS_SUBSCRIBERS_MAX)
		return -ENOSPC;
	e->sub[e->n].fn = fn;
	e->sub[e->n].arg = arg;
	e->n++;
	return 0;
}

void events_raise_delivered(const struct events *e, const char *rcpt,
			    const char *from)
{
	struct events_delivered ev = {rcpt, from != NULL ? from : "", {{0}}};

	if (e == NULL)
		return;
	events_presence_where(e, rcpt, &ev.where);
	for (unsigned i = 0; i < e->n; i++)
		e->sub[i].fn(&ev, e->sub[i].arg);
}

/* ---- presence ---- */

static pthread_mutex_t *presence_lock(struct events_presence *p, uint32_t h)
{
	pthread_mutex_t *m =
		&p->stripe[(h % PRESENCE_BUCKETS) % PRESENCE_STRIPES];

	pthread_mutex_lock(m);
	return m;
}

int events_presence_join(struct events *e, const char *addr, unsigned worker)
{
	struct events_presence *p = e->presence;
	size_t len = strlen(addr);
	uint32_t h = hash_str_ci(addr);
	struct presence_entry **head, *x;
	pthread_mutex_t *m;

	if (p == NULL || worker >= EVENTS_WORKERS_MAX || len == 0 ||
	    len > PRESENCE_ADDR_MAX)
		return -EINVAL;
	head = &p->bucket[h % PRESENCE_BUCKETS];
	m = presence_lock(p, h);
	for (x = *head; x != NULL; x = x->next) {
		if (x->hash == h && x->worker == worker &&
		    strcasecmp(x->addr, addr) == 0) {
			x->count++;
			pthread_mutex_unlock(m);
			return 0;
		}
	}
	pthread_mutex_unlock(m);
	/* Allocated outside the lock; a racing join of the same pair
	 * only happens on the same worker thread, so it cannot. */
	x = malloc(sizeof(*x) + len + 1);
	if (x == NULL)
		return -ENOMEM;
	x->hash = h;
	x->worker = (uint16_t)worker;
	x->count = 1;
	memcpy(x->addr, addr, len + 1);
	m = presence_lock(p, h);
	x->next = *head;
	*head = x;
	pthread_mutex_unlock(m);
	return 0;
}

void events_presence_leave(struct events *e, const char *addr, unsigned worker)
{
	struct events_presence *p = e->presence;
	uint32_t h = hash_str_ci(addr);
	struct presence_entry **pp, *gone = NULL;
	pthread_mutex_t *m;

	if (p == NULL || worker >= EVENTS_WORKERS_MAX)
		return;
	m = presence_lock(p, h);
	for (pp = &p->bucket[h % PRESENCE_BUCKETS]; *pp != NULL;
	     pp = &(*pp)->next) {
		struct presence_entry *x = *pp;

		if (x->hash == h && x->worker == worker &&
		    strcasecmp(x->addr, addr) == 0) {
			if (--x->count == 0) {
				*pp = x->next;
				gone = x;
			}
			break;
		}
	}
	pthread_mutex_unlock(m);
	free(gone);
}

void events_presence_where(const struct events *e, const char *addr,
			   struct events_workers *out)
{
	struct events_presence *p = e->presence;
	uint32_t h = hash_str_ci(addr);
	pthread_mutex_t *m;

	memset(out, 0, sizeof(*out));
	if (p == NULL)
		return;
	m = presence_lock(p, h);
	for (struct presence_entry *x = p->bucket[h % PRESENCE_BUCKETS];
	     x != NULL; x = x->next) {
		if (x->hash == h && strcasecmp(x->addr, addr) == 0)
			out->bits[x->worker / 64] |= 1ull << (x->worker % 64);
	}
	pthread_mutex_unlock(m);
}
