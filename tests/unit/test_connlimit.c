/* tests/unit/test_connlimit: core/connlimit. The client key (IPv4,
 * IPv4-mapped, IPv6 /64), the cap per client, release, the bucket
 * overflow answer, and counts kept exactly by threads taking and
 * releasing at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* system */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/un.h>

/* project */
#include "core/connlimit.h"

static struct sockaddr_storage addr_of(const char *s)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(s, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, s, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, s, &s4->sin_addr), 1);
	}
	return ss;
}

static struct connlimit_key key_of(const char *s)
{
	struct sockaddr_storage ss = addr_of(s);

	return connlimit_key_of((const struct sockaddr *)&ss);
}

static bool key_eq(struct connlimit_key a, struct connlimit_key b)
{
	return a.prefix == b.prefix && a.family == b.family;
}

static void test_key(void **state)
{
	struct connlimit_key k;
	struct sockaddr_un un;

	(void)state;
	k = key_of("192.0.2.7");
	assert_int_equal(k.family, 4);
	assert_int_equal(k.prefix, 0xc0000207u);
	/* IPv4-mapped IPv6 is the IPv4 client */
	assert_true(key_eq(key_of("::ffff:192.0.2.7"), k));
	assert_false(key_eq(key_of("192.0.2.8"), k));
	/* one IPv6 /64 is one client, the next /64 is not */
	k = key_of("2001:db8:1:2::1");
	assert_int_equal(k.family, 6);
	assert_true(key_eq(key_of("2001:db8:1:2:ffff:ffff:ffff:ffff"), k));
	assert_false(key_eq(key_of("2001:db8:1:3::1"), k));
	/* an IPv6 address whose top 64 bits equal an IPv4 key's prefix is
	 * still another client (family) */
	assert_false(key_eq(key_of("0:0:c000:207::"), key_of("192.0.2.7")));
	/* unix sockets and unknown peers are all one client */
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	k = connlimit_key_of((const struct sockaddr *)&un);
	assert_int_equal(k.family, 0);
	assert_true(key_eq(connlimit_key_of(NULL), k));
}

static void test_cap(void **state)
{
	struct connlimit *l = NULL;
	struct connlimit_key a = key_of("127.0.0.1");
	struct connlimit_key b = key_of("127.0.0.2");
	struct connlimit_key v6 = key_of("2001:db8::1");

	(void)state;
	assert_int_equal(connlimit_new(100, &l), 0);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(connlimit_take(l, &a, 3), 1);
	/* a holds its cap: the fourth is refused, b is not kept out */
	assert_int_equal(connlimit_take(l, &a, 3), 0);
	assert_int_equal(connlimit_count(l, &a), 3);
	assert_int_equal(connlimit_take(l, &b, 3), 1);
	assert_int_equal(connlimit_take(l, &v6, 3), 1);
	assert_int_equal(connlimit_count(l, &b), 1);
	/* a slot given back is usable again, once */
	connlimit_release(l, &a);
	assert_int_equal(connlimit_count(l, &a), 2);
	assert_int_equal(connlimit_take(l, &a, 3), 1);
	assert_int_equal(connlimit_take(l, &a, 3), 0);
	/* cap 0: counted, never refused */
	for (unsigned i = 0; i < 10; i++)
		assert_int_equal(connlimit_take(l, &b, 0), 1);
	assert_int_equal(connlimit_count(l, &b), 11);
	for (unsigned i = 0; i < 11; i++)
		connlimit_release(l, &b);
	assert_int_equal(connlimit_count(l, &b), 0);
	/* releasing an unknown client changes nothing */
	connlimit_release(l, &b);
	assert_int_equal(connlimit_count(l, &b), 0);
	assert_int_equal(connlimit_count(l, &a), 3);
	connlimit_free(&l);
	assert_null(l);
}

/* The table is sized for max_conns distinct clients at once: as many
 * clients as that, each holding one connection, are all counted, and
 * their slots come back. A full bucket answers -ENOSPC, never a wrong
 * count for another client. */
static void test_many_clients(void **state)
{
	struct connlimit *l = NULL;
	struct sockaddr_in sin;
	struct connlimit_key k;
	unsigned counted = 0, nospc = 0;
	int r;

	(void)state;
	assert_int_equal(connlimit_new(4096, &l), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	for (uint32_t i = 0; i < 4096; i++) {
		sin.sin_addr.s_addr = htonl(0x0a000000u + i);
		k = connlimit_key_of((const struct sockaddr *)&sin);
		r = connlimit_take(l, &k, 1);
		assert_true(r == 1 || r == -ENOSPC);
		if (r == 1)
			counted++;
		else
			nospc++;
	}
	print_message("  4096 clients: %u counted, %u in a full bucket\n",
		      counted, nospc);
	assert_true(counted >= 4096 - 4);
	for (uint32_t i = 0; i < 4096; i++) {
		sin.sin_addr.s_addr = htonl(0x0a000000u + i);
		k = connlimit_key_of((const struct sockaddr *)&sin);
		assert_true(connlimit_count(l, &k) <= 1);
		connlimit_release(l, &k);
		assert_int_equal(connlimit_count(l, &k), 0);
	}
	connlimit_free(&l);

	/* far more clients than the table holds: bounded, no false "over
	 * the cap" for anyone */
	assert_int_equal(connlimit_new(16, &l), 0);
	for (uint32_t i = 0; i < 100000; i++) {
		sin.sin_addr.s_addr = htonl(0x0b000000u + i);
		k = connlimit_key_of((const struct sockaddr *)&sin);
		r = connlimit_take(l, &k, 1);
		assert_true(r == 1 || r == -ENOSPC);
	}
	connlimit_free(&l);
}

#define THREADS    4
#define ROUNDS     20000
#define THREAD_CAP 1000000u

struct worker_arg {
	struct connlimit *l;
	unsigned id;
};

static void *worker(void *p)
{
	struct worker_arg *a = p;
	struct connlimit_key shared = key_of("198.51.100.1");
	struct connlimit_key own;
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0xcb007100u + a->id);
	own = connlimit_key_of((const struct sockaddr *)&sin);
	for (unsigned i = 0; i < ROUNDS; i++) {
		if (connlimit_take(a->l, &shared, THREAD_CAP) != 1)
			return (void *)1;
		if (connlimit_take(a->l, &own, THREAD_CAP) != 1)
			return (void *)1;
		if (i % 2 == 0) {
			connlimit_release(a->l, &shared);
			connlimit_release(a->l, &own);
		}
	}
	return NULL;
}

/* Worker threads counting one shared client and their own at once: no
 * count lost or doubled. */
static void test_threads(void **state)
{
	struct connlimit *l = NULL;
	struct worker_arg args[THREADS];
	pthread_t th[THREADS];
	struct connlimit_key shared = key_of("198.51.100.1");
	void *ret;

	(void)state;
	assert_int_equal(connlimit_new(1000, &l), 0);
	for (unsigned i = 0; i < THREADS; i++) {
		args[i].l = l;
		args[i].id = i;
		assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]),
				 0);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(th[i], &ret), 0);
		assert_null(ret);
	}
	assert_int_equal(connlimit_count(l, &shared), THREADS * ROUNDS / 2);
	for (unsigned i = 0; i < THREADS; i++) {
		struct sockaddr_in sin;
		struct connlimit_key own;

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(0xcb007100u + i);
		own = connlimit_key_of((const struct sockaddr *)&sin);
		assert_int_equal(connlimit_count(l, &own), ROUNDS / 2);
	}
	connlimit_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_many_clients),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
