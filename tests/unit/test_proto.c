/* tests/unit/test_proto: core/proto's table. Rows by listener kind and by
 * ALPN token (with "" for none), duplicates refused, the fallback row
 * carrying the key looked up, per-loop binding, the ALPN list offering
 * exactly the routed tokens in the order added, and proto_accept handing
 * the socket to the row's entry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* system */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* project */
#include "core/proto.h"

static int accepted_fd = -1;
static const struct proto_row *accepted_row;

static void test_accept(const struct proto_row *r, int fd,
			const struct sockaddr *peer, socklen_t peer_len,
			struct tls_ctx *tls, bool implicit_tls)
{
	(void)peer;
	(void)peer_len;
	(void)tls;
	(void)implicit_tls;
	accepted_fd = fd;
	accepted_row = r;
}

static const struct proto_ops mail_ops = {"mail", test_accept, NULL};
static const struct proto_ops web_ops = {"web", test_accept, NULL};
static const struct proto_ops other_ops = {"other", test_accept, NULL};

static void test_rows_and_alpn_list(void **state)
{
	struct proto p;
	const char *alpn[8];
	struct proto_row tmp;
	const struct proto_row *r;

	(void)state;
	proto_init(&p);
	assert_int_equal(proto_add(&p, PROTO_ALPN, "http/1.1", &web_ops, 0), 0);
	assert_int_equal(proto_add(&p, PROTO_ALPN, "", &web_ops, 0), 0);
	assert_int_equal(proto_add(&p, PROTO_ALPN, "smtp", &mail_ops, 7), 0);
	assert_int_equal(proto_add(&p, PROTO_LISTENER, "smtp", &mail_ops, 3),
			 0);
	assert_int_equal(proto_add(&p, PROTO_ALPN, "smtp", &other_ops, 0),
			 -EEXIST);
	assert_int_equal(proto_add(&p, PROTO_ALPN, "a-token-far-too-long-here",
				   &other_ops, 0),
			 -EINVAL);
	/* Offered: the routed tokens in the order added; "" is not one. */
	assert_int_equal(proto_alpn_list(&p, alpn, 8), 2);
	assert_string_equal(alpn[0], "http/1.1");
	assert_string_equal(alpn[1], "smtp");
	assert_null(alpn[2]);
	/* A short @out: still NULL-terminated. */
	assert_int_equal(proto_alpn_list(&p, alpn, 2), 1);
	assert_null(alpn[1]);
	/* Same key, two kinds: two rows. */
	r = proto_find(&p, PROTO_ALPN, "smtp", &tmp);
	assert_non_null(r);
	assert_int_equal(r->arg, 7);
	r = proto_find(&p, PROTO_LISTENER, "smtp", &tmp);
	assert_int_equal(r->arg, 3);
	/* No h2 row: not found, not offered, and without a fallback NULL. */
	assert_null(proto_find(&p, PROTO_ALPN, "h2", &tmp));
	r = proto_find(&p, PROTO_ALPN, "", &tmp);
	assert_ptr_equal(r->ops, &web_ops);
}

static void test_fallback_and_bind(void **state)
{
	struct proto boot, loop_a, loop_b;
	struct proto_row tmp;
	const struct proto_row *r;
	int wa, wb, wf;
	int sv[2];

	(void)state;
	proto_init(&boot);
	assert_int_equal(
		proto_add(&boot, PROTO_LISTENER, "imaps", &mail_ops, 0), 0);
	proto_set_fallback(&boot, &other_ops);
	loop_a = boot;
	loop_b = boot;
	proto_bind(&loop_a, &mail_ops, &wa);
	proto_bind(&loop_a, &other_ops, &wf);
	proto_bind(&loop_b, &mail_ops, &wb);
	r = proto_find(&loop_a, PROTO_LISTENER, "imaps", &tmp);
	assert_ptr_equal(r->worker, &wa);
	r = proto_find(&loop_b, PROTO_LISTENER, "imaps", &tmp);
	assert_ptr_equal(r->worker, &wb);
	/* The boot table is untouched. */
	r = proto_find(&boot, PROTO_LISTENER, "imaps", &tmp);
	assert_null(r->worker);
	/* The fallback row tells its entry what was asked for. */
	r = proto_find(&loop_a, PROTO_LISTENER, "http", &tmp);
	assert_ptr_equal(r, &tmp);
	assert_ptr_equal(r->ops, &other_ops);
	assert_ptr_equal(r->worker, &wf);
	assert_string_equal(r->key, "http");
	assert_int_equal(r->kind, PROTO_LISTENER);

	/* proto_accept: the socket goes to the row's entry. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	proto_accept(&loop_b, "imaps", sv[0], NULL, 0, NULL, true);
	assert_int_equal(accepted_fd, sv[0]);
	assert_ptr_equal(accepted_row->worker, &wb);
	proto_accept(&loop_a, "smtp", sv[1], NULL, 0, NULL, false);
	assert_int_equal(accepted_fd, sv[1]);
	assert_string_equal(accepted_row->key, "smtp");
	assert_ptr_equal(accepted_row->ops, &other_ops);
	close(sv[0]);
	close(sv[1]);
}

static void test_full_table(void **state)
{
	struct proto p;
	char key[16];

	(void)state;
	proto_init(&p);
	for (int i = 0; i < PROTO_ROWS_MAX; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(proto_add(&p, PROTO_ALPN, key, &web_ops, 0),
				 0);
	}
	assert_int_equal(proto_add(&p, PROTO_ALPN, "one-more", &web_ops, 0),
			 -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows_and_alpn_list),
		cmocka_unit_test(test_fallback_and_bind),
		cmocka_unit_test(test_full_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
