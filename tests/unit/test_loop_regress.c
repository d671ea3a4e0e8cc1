/* tests/unit/test_loop_regress: loop regressions found outside test_loop.
 * A connection closed from a callback that the pending run delivered
 * (CONNECTED here) is destroyed while it is queued again: it must be
 * freed only when dequeued (use-after-free under ASan before the fix;
 * found by bench_tls_loop on io_uring). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/listen.h"
#include "core/loop.h"
#include "testutil.h"

struct regress {
	int connected, closed, other;
};

static void regress_conn_event(struct loop_conn *c,
			       const struct loop_conn_ev *ev, void *arg)
{
	struct regress *r = arg;

	switch (ev->type) {
	case LOOP_CONN_EV_CONNECTED:
		r->connected++;
		/* queue more work for c, then close it, all inside the
		 * pending run's delivery */
		(void)loop_conn_send(c, "x", 1);
		loop_conn_recv_pause(c);
		loop_conn_close(c, false);
		break;
	case LOOP_CONN_EV_CLOSED:
		r->closed++;
		break;
	default:
		r->other++;
		break;
	}
}

static void regress_accept(struct loop_listener *li, int fd,
			   const struct sockaddr *peer, socklen_t len,
			   void *arg)
{
	(void)li;
	(void)peer;
	(void)len;
	(void)arg;
	close(fd);
}

static void test_close_from_connected(void **state)
{
	enum loop_backend bs[2];
	int nb = testutil_backends(bs);

	(void)state;
	for (int b = 0; b < nb; b++) {
		struct loop_opts o = {.backend = bs[b]};
		struct loop *l = NULL;
		struct loop_listener *li;
		struct sockaddr_storage ss;
		socklen_t sl;
		struct regress r = {0};
		int lfd;

		assert_int_equal(loop_new(&o, &l), 0);
		assert_int_equal(listen_addr_parse("127.0.0.1:0", &ss, &sl), 0);
		lfd = listen_bind((struct sockaddr *)&ss, sl, 64);
		assert_true(lfd >= 0);
		sl = sizeof(ss);
		assert_int_equal(getsockname(lfd, (struct sockaddr *)&ss, &sl),
				 0);
		li = loop_listen(l, lfd, regress_accept, NULL);
		assert_non_null(li);
		for (int k = 0; k < 50; k++) {
			struct loop_conn *c = NULL;

			assert_int_equal(
				loop_conn_connect(l, (struct sockaddr *)&ss, sl,
						  regress_conn_event, &r, &c),
				0);
		}
		for (int k = 0; k < 500 && r.closed < 50; k++)
			assert_true(loop_run_once(l, 10) >= 0);
		/* a few more runs: a stale queued conn would be touched */
		for (int k = 0; k < 5; k++)
			assert_true(loop_run_once(l, 1) >= 0);
		assert_int_equal(r.connected, 50);
		assert_int_equal(r.closed, 50);
		assert_int_equal(r.other, 0);
		assert_int_equal(loop_conn_count(l), 0);
		loop_listener_stop(&li);
		close(lfd);
		loop_free(&l);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_close_from_connected),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
