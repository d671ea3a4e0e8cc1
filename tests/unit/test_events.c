/* tests/unit/test_events: the delivered event and its presence index. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/events.h"

struct seen {
	unsigned n;
	char rcpt[64], from[64];
	struct events_workers where;
};

static void on_delivered(const struct events_delivered *ev, void *arg)
{
	struct seen *s = arg;

	s->n++;
	snprintf(s->rcpt, sizeof(s->rcpt), "%s", ev->rcpt);
	snprintf(s->from, sizeof(s->from), "%s", ev->from);
	s->where = ev->where;
}

static unsigned count_workers(const struct events_workers *w)
{
	unsigned n = 0;

	for (unsigned i = 0; i < EVENTS_WORKERS_MAX; i++)
		n += events_workers_has(w, i);
	return n;
}

static void test_subscribe_and_raise(void **state)
{
	struct events e;
	struct seen a = {0}, b = {0};

	(void)state;
	assert_int_equal(events_init(&e), 0);
	assert_int_equal(events_subscribe(&e, on_delivered, &a), 0);
	assert_int_equal(events_subscribe(&e, on_delivered, &b), 0);
	for (unsigned i = 2; i < EVENTS_SUBSCRIBERS_MAX; i++)
		assert_int_equal(events_subscribe(&e, on_delivered, &b), 0);
	assert_int_equal(events_subscribe(&e, on_delivered, &b), -ENOSPC);
	events_raise_delivered(&e, "x@example.org", NULL);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.rcpt, "x@example.org");
	assert_string_equal(a.from, "");
	/* Nobody is logged in: every subscriber hears it, with no worker. */
	assert_true(events_workers_empty(&a.where));
	assert_int_equal(b.n, EVENTS_SUBSCRIBERS_MAX - 1);
	events_raise_delivered(NULL, "x@example.org", "y@example.org");
	assert_int_equal(a.n, 1);
	events_fini(&e);
	events_fini(&e); /* twice is fine */
}

static void test_presence(void **state)
{
	struct events e;
	struct events_workers w;
	struct seen a = {0};

	(void)state;
	assert_int_equal(events_init(&e), 0);
	assert_int_equal(events_subscribe(&e, on_delivered, &a), 0);
	assert_int_equal(events_presence_join(&e, "u@example.org", 3), 0);
	assert_int_equal(events_presence_join(&e, "U@Example.ORG", 3), 0);
	assert_int_equal(events_presence_join(&e, "u@example.org", 200), 0);
	assert_int_equal(events_presence_join(&e, "v@example.org", 7), 0);
	assert_int_equal(events_presence_join(&e, "u@example.org", 256),
			 -EINVAL);
	assert_int_equal(events_presence_join(&e, "", 1), -EINVAL);

	events_raise_delivered(&e, "u@EXAMPLE.org", "v@example.org");
	assert_int_equal(a.n, 1);
	assert_string_equal(a.from, "v@example.org");
	assert_true(events_workers_has(&a.where, 3));
	assert_true(events_workers_has(&a.where, 200));
	assert_int_equal(count_workers(&a.where), 2);

	/* Counted: worker 3 holds two sessions of u. */
	events_presence_leave(&e, "u@example.org", 3);
	events_presence_where(&e, "u@example.org", &w);
	assert_true(events_workers_has(&w, 3));
	events_presence_leave(&e, "u@example.org", 3);
	events_presence_where(&e, "u@example.org", &w);
	assert_false(events_workers_has(&w, 3));
	assert_true(events_workers_has(&w, 200));
	/* A leave without a join changes nothing. */
	events_presence_leave(&e, "u@example.org", 3);
	events_presence_leave(&e, "nobody@example.org", 5);
	events_presence_where(&e, "u@example.org", &w);
	assert_int_equal(count_workers(&w), 1);
	events_presence_leave(&e, "u@example.org", 200);
	events_presence_where(&e, "u@example.org", &w);
	assert_true(events_workers_empty(&w));
	/* v is untouched; an address that only shares a prefix is not v. */
	events_presence_where(&e, "v@example.org", &w);
	assert_true(events_workers_has(&w, 7));
	events_presence_where(&e, "v@example.orgx", &w);
	assert_true(events_workers_empty(&w));
	events_fini(&e); /* frees what is still joined (v) */
}

/* Many addresses, so buckets hold chains and stripes are shared. */
static void test_presence_many(void **state)
{
	struct events e;
	struct events_workers w;
	char addr[64];

	(void)state;
	assert_int_equal(events_init(&e), 0);
	for (unsigned i = 0; i < 20000; i++) {
		snprintf(addr, sizeof(addr), "user%u@example.org", i);
		assert_int_equal(events_presence_join(&e, addr, i % 4), 0);
	}
	for (unsigned i = 0; i < 20000; i += 2) {
		snprintf(addr, sizeof(addr), "user%u@example.org", i);
		events_presence_leave(&e, addr, i % 4);
	}
	for (unsigned i = 0; i < 20000; i++) {
		snprintf(addr, sizeof(addr), "user%u@example.org", i);
		events_presence_where(&e, addr, &w);
		assert_int_equal(count_workers(&w), i % 2);
		if (i % 2 == 1)
			assert_true(events_workers_has(&w, i % 4));
	}
	events_fini(&e);
}

/* Each worker thread joins and leaves its own sessions while another
 * thread raises events, as serve does; nothing is lost or doubled. */
struct churn {
	struct events *e;
	unsigned worker;
};

static void *churn_run(void *arg)
{
	struct churn *c = arg;
	char addr[64];

	for (unsigned round = 0; round < 200; round++) {
		for (unsigned i = 0; i < 50; i++) {
			snprintf(addr, sizeof(addr), "c%u@example.org", i);
			assert_int_equal(
				events_presence_join(c->e, addr, c->worker), 0);
		}
		for (unsigned i = 0; i < 50; i++) {
			snprintf(addr, sizeof(addr), "c%u@example.org", i);
			events_presence_leave(c->e, addr, c->worker);
		}
	}
	/* Leave one joined, to be seen afterwards. */
	assert_int_equal(
		events_presence_join(c->e, "c0@example.org", c->worker), 0);
	return NULL;
}

static void test_presence_threads(void **state)
{
	struct events e;
	struct events_workers w;
	struct churn c[4];
	pthread_t th[4];
	struct seen a = {0};

	(void)state;
	assert_int_equal(events_init(&e), 0);
	assert_int_equal(events_subscribe(&e, on_delivered, &a), 0);
	for (unsigned i = 0; i < 4; i++) {
		c[i].e = &e;
		c[i].worker = i * 60;
		assert_int_equal(pthread_create(&th[i], NULL, churn_run, &c[i]),
				 0);
	}
	for (unsigned i = 0; i < 2000; i++)
		events_raise_delivered(&e, "c1@example.org", "");
	for (unsigned i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(a.n, 2000);
	events_presence_where(&e, "c0@example.org", &w);
	assert_int_equal(count_workers(&w), 4);
	for (unsigned i = 0; i < 4; i++)
		assert_true(events_workers_has(&w, i * 60));
	events_presence_where(&e, "c1@example.org", &w);
	assert_true(events_workers_empty(&w));
	events_fini(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subscribe_and_raise),
		cmocka_unit_test(test_presence),
		cmocka_unit_test(test_presence_many),
		cmocka_unit_test(test_presence_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
