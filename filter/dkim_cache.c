/* filter/dkim_cache: entries in one array, a chained hash over them and
 * a doubly linked LRU list, all by index; strings malloc'd per entry. */
#include "filter/dkim_cache.h"

/* system */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define DKIM_NIL UINT32_MAX

struct dkim_cache_ent {
	char *name, *record;
	uint64_t expires_ms;
	uint32_t hnext;      /* hash chain */
	uint32_t prev, next; /* LRU list (head = most recent); free list */
	bool used;
};

struct dkim_cache {
	struct dkim_cache_ent *e;
	uint32_t *bucket;
	uint32_t cap, nbuckets, count;
	uint32_t head, tail, free_head;
};

static uint32_t dkim_cache_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

int dkim_cache_new(unsigned cap, struct dkim_cache **c_r)
{
	struct dkim_cache *c;

	*c_r = NULL;
	if (cap == 0)
		cap = DKIM_CACHE_SIZE;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->cap = cap;
	c->nbuckets = 1;
	while (c->nbuckets < 2 * cap)
		c->nbuckets <<= 1;
	c->e = calloc(cap, sizeof(*c->e));
	c->bucket = malloc(c->nbuckets * sizeof(*c->bucket));
	if (c->e == NULL || c->bucket == NULL) {
		dkim_cache_free(&c);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < c->nbuckets; i++)
		c->bucket[i] = DKIM_NIL;
	for (uint32_t i = 0; i < cap; i++)
		c->e[i].next = i + 1 < cap ? i + 1 : DKIM_NIL;
	c->free_head = 0;
	c->head = c->tail = DKIM_NIL;
	*c_r = c;
	return 0;
}

void dkim_cache_free(struct dkim_cache **cp)
{
	struct dkim_cache *c = *cp;

	if (c == NULL)
		return;
	if (c->e != NULL) {
		for (uint32_t i = 0; i < c->cap; i++) {
			free(c->e[i].name);
			free(c->e[i].record);
		}
	}
	free(c->e);
	free(c->bucket);
	free(c);
	*cp = NULL;
}

static void dkim_lru_unlink(struct dkim_cache *c, uint32_t i)
{
	struct dkim_cache_ent *e = &c->e[i];

	if (e->prev != DKIM_NIL)
		c->e[e->prev].next = e->next;
	else
		c->head = e->next;
	if (e->next != DKIM_NIL)
		c->e[e->next].prev = e->prev;
	else
		c->tail = e->prev;
}

static void dkim_lru_push(struct dkim_cache *c, uint32_t i)
{
	struct dkim_cache_ent *e = &c->e[i];

	e->prev = DKIM_NIL;
	e->next = c->head;
	if (c->head != DKIM_NIL)
		c->e[c->head].prev = i;
	c->head = i;
	if (c->tail == DKIM_NIL)
		c->tail = i;
}

static uint32_t dkim_cache_find(const struct dkim_cache *c, const char *name,
				uint32_t **link_r)
{
	uint32_t *link = &c->bucket[dkim_cache_hash(name) & (c->nbuckets - 1)];

	while (*link != DKIM_NIL) {
		if (strcmp(c->e[*link].name, name) == 0) {
			if (link_r != NULL)
				*link_r = link;
			return *link;
		}
		link = &c->e[*link].hnext;
	}
	return DKIM_NIL;
}

static void dkim_cache_remove(struct dkim_cache *c, uint32_t i)
{
	uint32_t *link = NULL;

	if (dkim_cache_find(c, c->e[i].name, &link) == i)
		*link = c->e[i].hnext;
	dkim_lru_unlink(c, i);
	free(c->e[i].name);
	free(c->e[i].record);
	c->e[i].name = c->e[i].record = NULL;
	c->e[i].used = false;
	c->e[i].next = c->free_head;
	c->free_head = i;
	c->count--;
}

const char *dkim_cache_get(struct dkim_cache *c, const char *name,
			   uint64_t now_ms)
{
	uint32_t i = dkim_cache_find(c, name, NULL);

	if (i == DKIM_NIL)
		return NULL;
	if (now_ms >= c->e[i].expires_ms) {
		dkim_cache_remove(c, i);
		return NULL;
	}
	dkim_lru_unlink(c, i);
	dkim_lru_push(c, i);
	return c->e[i].record;
}

void dkim_cache_put(struct dkim_cache *c, const char *name, const char *record,
		    uint32_t ttl_s, uint64_t now_ms)
{
	uint32_t i = dkim_cache_find(c, name, NULL), h;
	char *n, *r;

	if (i != DKIM_NIL)
		dkim_cache_remove(c, i);
	if (ttl_s == 0)
		return;
	if (ttl_s > DKIM_CACHE_TTL_MAX)
		ttl_s = DKIM_CACHE_TTL_MAX;
	if (c->free_head == DKIM_NIL)
		dkim_cache_remove(c, c->tail);
	n = strdup(name);
	r = strdup(record);
	if (n == NULL || r == NULL) {
		free(n);
		free(r);
		return;
	}
	i = c->free_head;
	c->free_head = c->e[i].next;
	c->e[i].name = n;
	c->e[i].record = r;
	c->e[i].expires_ms = now_ms + (uint64_t)ttl_s * 1000;
	c->e[i].used = true;
	h = dkim_cache_hash(name) & (c->nbuckets - 1);
	c->e[i].hnext = c->bucket[h];
	c->bucket[h] = i;
	dkim_lru_push(c, i);
	c->count++;
}

void dkim_cache_drop(struct dkim_cache *c, const char *name)
{
	uint32_t i = dkim_cache_find(c, name, NULL);

	if (i != DKIM_NIL)
		dkim_cache_remove(c, i);
}

unsigned dkim_cache_count(const struct dkim_cache *c)
{
	return c->count;
}
