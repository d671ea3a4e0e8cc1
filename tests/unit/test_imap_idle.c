/* tests/unit/test_imap_idle: the IDLE tracker. Scripted sequences (the
 * wake-up, the client's DONE racing with it, deliveries during a wake-up
 * or before Dovecot's "+", refused IDLEs, DONE with a new IDLE
 * pipelined), then many random interleavings of client actions,
 * deliveries and a model of Dovecot (imap_model.c): the client must never
 * see a reply it did not ask for, nor miss one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imap_model.c"

#define FWD IMAP_IDLE_FORWARD
#define SWL IMAP_IDLE_SWALLOW

static void test_wake(void **state)
{
	struct imap_idle t;
	char out[IMAP_IDLE_WAKE_MAX];

	(void)state;
	imap_idle_init(&t);
	assert_int_equal(imap_idle_wake(&t, out, sizeof(out)), 0);
	imap_idle_client_cmd(&t, "a1", false, "IDLE");
	assert_true(imap_idle_client_idling(&t));
	assert_int_equal(imap_idle_server_line(&t, "+"), FWD);
	assert_int_equal(t.state, IMAP_IDLE_ON);
	size_t n = imap_idle_wake(&t, out, sizeof(out));
	assert_true(n > 0);
	out[n] = '\0';
	assert_string_equal(out, "DONE\r\nrm.wake NOOP\r\na1 IDLE\r\n");
	/* Another delivery while it is in flight: nothing written now. */
	assert_int_equal(imap_idle_wake(&t, out, sizeof(out)), 0);
	assert_int_equal(imap_idle_server_line(&t, "a1"), SWL);
	assert_int_equal(imap_idle_server_line(&t, "*"), FWD);
	assert_int_equal(imap_idle_server_line(&t, "rm.wake"), SWL);
	assert_false(imap_idle_wake_due(&t));
	assert_int_equal(imap_idle_server_line(&t, "+"), SWL);
	assert_true(imap_idle_wake_due(&t)); /* the second delivery */
	assert_true(imap_idle_wake(&t, out, sizeof(out)) > 0);
	assert_int_equal(imap_idle_server_line(&t, "a1"), SWL);
	assert_int_equal(imap_idle_server_line(&t, "rm.wake"), SWL);
	assert_int_equal(imap_idle_server_line(&t, "+"), SWL);
	assert_false(imap_idle_wake_due(&t));
	/* The client's DONE: its own tagged reply comes through. */
	imap_idle_client_done(&t);
	assert_false(imap_idle_client_idling(&t));
	assert_int_equal(imap_idle_server_line(&t, "a1"), FWD);
	assert_int_equal(t.state, IMAP_IDLE_NONE);
	assert_int_equal(t.wakes, 2);
	/* Not idling: a delivery writes nothing, "+" for literals pass. */
	assert_int_equal(imap_idle_wake(&t, out, sizeof(out)), 0);
	assert_int_equal(imap_idle_server_line(&t, "+"), FWD);
}

static void test_done_races_wake(void **state)
{
	struct imap_idle t;
	char out[IMAP_IDLE_WAKE_MAX];

	(void)state;
	imap_idle_init(&t);
	imap_idle_client_cmd(&t, "x", false, "IDLE");
	imap_idle_server_line(&t, "+");
	assert_true(imap_idle_wake(&t, out, sizeof(out)) > 0);
	/* DONE arrives before any reply to the wake-up: it goes after our
	 * bytes and ends the re-entered IDLE. */
	imap_idle_client_done(&t);
	assert_int_equal(imap_idle_server_line(&t, "x"), SWL);
	assert_int_equal(imap_idle_server_line(&t, "*"), FWD);
	assert_int_equal(imap_idle_server_line(&t, "+"), SWL);
	/* Dovecot may answer NOOP after IDLE's "+": tags, not order. */
	assert_int_equal(imap_idle_server_line(&t, "rm.wake"), SWL);
	assert_int_equal(imap_idle_server_line(&t, "x"), FWD);
	assert_false(imap_idle_wake_due(&t));
	assert_int_equal(t.state, IMAP_IDLE_NONE);
}

static void test_delivery_before_continuation(void **state)
{
	struct imap_idle t;
	char out[IMAP_IDLE_WAKE_MAX];

	(void)state;
	imap_idle_init(&t);
	imap_idle_client_cmd(&t, "i", false, "IDLE");
	assert_int_equal(imap_idle_wake(&t, out, sizeof(out)), 0);
	assert_int_equal(imap_idle_server_line(&t, "+"), FWD);
	assert_true(imap_idle_wake_due(&t));
}

static void test_refused(void **state)
{
	struct imap_idle t;
	char out[IMAP_IDLE_WAKE_MAX];

	(void)state;
	/* The client's IDLE refused. */
	imap_idle_init(&t);
	imap_idle_client_cmd(&t, "i", false, "IDLE");
	assert_int_equal(imap_idle_server_line(&t, "i"), FWD);
	assert_int_equal(t.state, IMAP_IDLE_NONE);
	/* Our re-IDLE refused: the refusal reaches the client as the end
	 * of its IDLE; no "+" is waited for any more. */
	imap_idle_client_cmd(&t, "j", false, "IDLE");
	imap_idle_server_line(&t, "+");
	assert_true(imap_idle_wake(&t, out, sizeof(out)) > 0);
	assert_int_equal(imap_idle_server_line(&t, "j"), SWL);
	assert_int_equal(imap_idle_server_line(&t, "rm.wake"), SWL);
	assert_int_equal(imap_idle_server_line(&t, "j"), FWD);
	assert_int_equal(t.swallow_cont, 0);
	assert_int_equal(imap_idle_server_line(&t, "+"), FWD);
}

static void test_pipelined_new_idle(void **state)
{
	struct imap_idle t;
	char out[IMAP_IDLE_WAKE_MAX];

	(void)state;
	imap_idle_init(&t);
	imap_idle_client_cmd(&t, "a", false, "IDLE");
	imap_idle_server_line(&t, "+");
	imap_idle_client_done(&t);
	imap_idle_client_cmd(&t, "b", false, "IDLE");
	assert_int_equal(imap_idle_server_line(&t, "a"), FWD);
	assert_int_equal(t.state, IMAP_IDLE_STARTING);
	assert_string_equal(t.tag, "b");
	assert_int_equal(imap_idle_server_line(&t, "+"), FWD);
	assert_true(imap_idle_wake(&t, out, sizeof(out)) > 0);
}

static void test_untracked_tags(void **state)
{
	struct imap_idle t;
	char out[IMAP_IDLE_WAKE_MAX];

	(void)state;
	imap_idle_init(&t);
	imap_idle_client_cmd(&t, "rm.wake", false, "IDLE");
	imap_idle_server_line(&t, "+");
	assert_true(imap_idle_client_idling(&t));
	assert_int_equal(imap_idle_wake(&t, out, sizeof(out)), 0);
	imap_idle_init(&t);
	imap_idle_client_cmd(&t, "long", true, "IDLE");
	imap_idle_server_line(&t, "+");
	assert_int_equal(imap_idle_wake(&t, out, sizeof(out)), 0);
}

static void test_random_interleavings(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	unsigned wakes = 0, swallowed = 0;

	(void)state;
	for (unsigned run = 0; run < 3000; run++) {
		struct model m;
		unsigned steps = 20 + run % 200;

		model_init(&m);
		for (unsigned i = 0; i < steps && m.err[0] == '\0'; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			model_step(&m, (uint8_t)x);
		}
		if (!model_finish(&m))
			fail_msg("run %u: %s", run, m.err);
		wakes += m.wakes;
		swallowed += m.swallowed;
	}
	/* The runs did exercise the wake-up. */
	assert_true(wakes > 1000);
	assert_true(swallowed >= 3 * wakes);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wake),
		cmocka_unit_test(test_done_races_wake),
		cmocka_unit_test(test_delivery_before_continuation),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_pipelined_new_idle),
		cmocka_unit_test(test_untracked_tags),
		cmocka_unit_test(test_random_interleavings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
