/* bench/client/bench_stats: timing samples and their quantiles. */
#include "bench/client/bench_client.h"

/* system */
#include <math.h>
#include <stdlib.h>
#include <string.h>

void bench_samples_add(struct bench_samples *s, int64_t ns)
{
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 64;
		int64_t *nv = realloc(s->v, nc * sizeof(*nv));

		if (nv == NULL)
			return; /* a sample fewer; the count shows it */
		s->v = nv;
		s->cap = nc;
	}
	s->v[s->n++] = ns;
}

void bench_samples_merge(struct bench_samples *into,
			 const struct bench_samples *from)
{
	for (size_t i = 0; i < from->n; i++)
		bench_samples_add(into, from->v[i]);
}

void bench_samples_free(struct bench_samples *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int bench_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

void bench_samples_sort(struct bench_samples *s)
{
	if (s->n > 1)
		qsort(s->v, s->n, sizeof(*s->v), bench_cmp_i64);
}

int64_t bench_samples_q(const struct bench_samples *s, double q)
{
	size_t rank;

	if (s->n == 0)
		return 0;
	rank = (size_t)ceil(q * (double)s->n);
	if (rank < 1)
		rank = 1;
	if (rank > s->n)
		rank = s->n;
	return s->v[rank - 1];
}
