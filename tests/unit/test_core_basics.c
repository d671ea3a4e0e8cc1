/* tests/unit/test_core_basics: arena, buf, listen address parsing, log
 * levels. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/listen.h"
#include "core/log.h"

static void test_arena(void **state)
{
	struct arena a;
	char *p[1000];
	void *big;
	size_t kept;

	(void)state;
	arena_init(&a);
	for (int i = 0; i < 1000; i++) {
		p[i] = arena_alloc(&a, 1 + (size_t)(i % 37));
		assert_non_null(p[i]);
		assert_int_equal((uintptr_t)p[i] % 16, 0);
		memset(p[i], i & 0xff, 1 + (size_t)(i % 37));
	}
	/* Earlier blocks are untouched by later ones. */
	for (int i = 0; i < 1000; i++)
		for (int k = 0; k < 1 + i % 37; k++)
			assert_int_equal((unsigned char)p[i][k], i & 0xff);
	big = arena_zalloc(&a, 100000);
	assert_non_null(big);
	assert_int_equal(((unsigned char *)big)[99999], 0);
	assert_string_equal(arena_strndup(&a, "hello world", 5), "hello");
	assert_true(a.total >= 100000);
	arena_reset(&a);
	assert_true(a.total <= ARENA_CHUNK_SIZE);
	assert_non_null(arena_alloc(&a, 10));
	arena_free(&a);
	assert_null(a.head);

	/* A bigger chunk is kept across resets, even when a big block
	 * went behind it: the next transaction mallocs nothing. */
	arena_init_chunk(&a, 16384);
	assert_non_null(arena_alloc(&a, 100));
	assert_non_null(arena_alloc(&a, 20000)); /* a block behind the head */
	assert_true(a.total > 36000);
	for (int round = 0; round < 3; round++) {
		arena_reset(&a);
		assert_true(a.total <= 16384 && a.total > 16000);
		kept = a.total;
		assert_non_null(arena_alloc(&a, 12000));
		assert_int_equal(a.total, kept);
	}
	arena_free(&a);
	assert_null(a.head);
	assert_non_null(arena_alloc(&a, 100)); /* same chunk size again */
	assert_true(a.total >= 16000);
	arena_free(&a);
}

static void test_buf(void **state)
{
	struct buf b;
	uint8_t data[3000];

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;
	buf_init(&b, 4096);
	assert_int_equal(buf_append(&b, data, 3000), 0);
	assert_int_equal(b.len, 3000);
	buf_consume(&b, 1000);
	assert_int_equal(b.len, 2000);
	assert_int_equal(buf_head(&b)[0], (uint8_t)1000);
	/* 2000 + 2000 fits the 4096 limit after compaction. */
	assert_int_equal(buf_append(&b, data, 2000), 0);
	assert_int_equal(b.len, 4000);
	assert_int_equal(buf_head(&b)[1999], (uint8_t)2999);
	assert_int_equal(buf_head(&b)[2000], 0);
	/* Over the limit: refused, nothing appended. */
	assert_int_equal(buf_append(&b, data, 200), -ENOBUFS);
	assert_int_equal(b.len, 4000);
	buf_consume(&b, 5000);
	assert_int_equal(b.len, 0);
	buf_free(&b);
}

static void test_buf_printf(void **state)
{
	struct buf b;
	char big[2000];

	(void)state;
	buf_init(&b, 0);
	assert_int_equal(buf_printf(&b, "a%d-%s", 1, "x"), 0);
	assert_int_equal(buf_printf(&b, "%s", ""), 0);
	assert_int_equal(b.len, 4);
	assert_memory_equal(buf_head(&b), "a1-x", 4);
	/* Longer than the stack buffer: formatted whole, not cut. */
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(buf_printf(&b, "<%s>", big), 0);
	assert_int_equal(b.len, 4 + 2 + sizeof(big) - 1);
	assert_int_equal(buf_head(&b)[4], '<');
	assert_int_equal(buf_head(&b)[b.len - 1], '>');
	buf_free(&b);

	/* Bounded: what would pass @max is refused whole; an exact fit
	 * is taken, small and large. */
	buf_init(&b, 10);
	assert_int_equal(buf_printf(&b, "%s", "123456"), 0);
	assert_int_equal(buf_printf(&b, "%s", "12345"), -ENOBUFS);
	assert_int_equal(b.len, 6);
	assert_int_equal(buf_printf(&b, "%d", 7890), 0);
	assert_int_equal(b.len, 10);
	assert_memory_equal(buf_head(&b), "1234567890", 10);
	buf_free(&b);
	buf_init(&b, 1999);
	assert_int_equal(buf_printf(&b, "%s", big), 0);
	assert_int_equal(b.len, 1999);
	assert_int_equal(buf_printf(&b, "x"), -ENOBUFS);
	buf_free(&b);
}

static void test_listen_addr_parse(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	static const char *const bad[] = {
		"",        "25",       "1.2.3:25",      "[::1]25",    "[::1:25",
		"host:25", "1.2.3.4:", "1.2.3.4:70000", "1.2.3.4:2x", NULL};

	(void)state;
	assert_int_equal(listen_addr_parse("127.0.0.1:25", &ss, &len), 0);
	assert_int_equal(s4->sin_family, AF_INET);
	assert_int_equal(ntohs(s4->sin_port), 25);
	assert_int_equal(ntohl(s4->sin_addr.s_addr), 0x7f000001);
	assert_int_equal(listen_addr_parse(":587", &ss, &len), 0);
	assert_int_equal(s4->sin_addr.s_addr, htonl(INADDR_ANY));
	assert_int_equal(listen_addr_parse("*:465", &ss, &len), 0);
	assert_int_equal(ntohs(s4->sin_port), 465);
	assert_int_equal(listen_addr_parse("[::1]:993", &ss, &len), 0);
	assert_int_equal(s6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(s6->sin6_port), 993);
	assert_int_equal(len, sizeof(*s6));
	for (int i = 0; bad[i] != NULL; i++)
		assert_int_equal(listen_addr_parse(bad[i], &ss, &len), -EINVAL);
}

static void test_listen_bind(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char name[136];
	int fd, fd2;

	(void)state;
	assert_int_equal(listen_addr_parse("127.0.0.1:0", &ss, &len), 0);
	fd = listen_bind((struct sockaddr *)&ss, len, 16);
	assert_true(fd >= 0);
	listen_fd_name(fd, name, sizeof(name));
	assert_memory_equal(name, "127.0.0.1:", 10);
	/* The same port twice: EADDRINUSE, reported as -errno. */
	assert_int_equal(listen_addr_parse(name, &ss, &len), 0);
	fd2 = listen_bind((struct sockaddr *)&ss, len, 16);
	assert_int_equal(fd2, -EADDRINUSE);
	close(fd);
}

static void test_log_levels(void **state)
{
	enum log_level lv;

	(void)state;
	assert_int_equal(log_level_parse("debug", &lv), 0);
	assert_int_equal(lv, LOG_LV_DEBUG);
	assert_int_equal(log_level_parse("warn", &lv), 0);
	assert_int_equal(lv, LOG_LV_WARN);
	assert_int_equal(log_level_parse("loud", &lv), -1);
	log_set_level(LOG_LV_ERR);
	assert_int_equal(log_get_level(), LOG_LV_ERR);
	log_set_level(LOG_LV_INFO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arena),
		cmocka_unit_test(test_buf),
		cmocka_unit_test(test_buf_printf),
		cmocka_unit_test(test_listen_addr_parse),
		cmocka_unit_test(test_listen_bind),
		cmocka_unit_test(test_log_levels),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
