/* tests/unit/test_pool: core/pool. Work runs on pool threads, completions
 * on the submitting loop's thread, pool_free drains; on each backend. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

/* system */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* project */
#include "core/loop.h"
#include "core/pool.h"

#define TEST_DEADLINE_MS 30000u
#define JOBS             2000

static uint64_t test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#define RUN_UNTIL(l, cond)                                                 \
	do {                                                               \
		uint64_t t0_ = test_now_ms();                              \
		while (!(cond)) {                                          \
			assert_true(loop_run_once((l), 20) >= 0);          \
			if (test_now_ms() - t0_ > TEST_DEADLINE_MS)        \
				fail_msg("timeout waiting for %s", #cond); \
		}                                                          \
	} while (0)

static struct loop *loop_make(enum loop_backend b)
{
	struct loop_opts o;
	struct loop *l = NULL;

	memset(&o, 0, sizeof(o));
	o.backend = b;
	assert_int_equal(loop_new(&o, &l), 0);
	return l;
}

#define FOR_EACH_BACKEND(fn)                                       \
	do {                                                       \
		enum loop_backend bs_[2];                          \
		int nb_ = testutil_backends(bs_);                  \
		for (int i_ = 0; i_ < nb_; i_++) {                 \
			print_message("  backend=%s\n",            \
				      loop_backend_name(bs_[i_])); \
			fn(bs_[i_]);                               \
		}                                                  \
	} while (0)

struct ctx {
	pthread_t loop_thread;
	atomic_uint worked;
	unsigned done;
	atomic_uint wrong_thread; /* work on the loop thread, done elsewhere */
	unsigned order_bad;
};

struct job {
	struct ctx *x;
	unsigned seq;
	unsigned delay_us;
	uint64_t in, out;
	bool worked;
};

static void job_work(void *arg)
{
	struct job *j = arg;

	if (pthread_equal(pthread_self(), j->x->loop_thread))
		j->x->wrong_thread++; /* never on the loop thread */
	if (j->delay_us > 0) {
		struct timespec ts = {.tv_nsec = (long)j->delay_us * 1000};

		nanosleep(&ts, NULL);
	}
	j->out = j->in * j->in + 1;
	j->worked = true;
	atomic_fetch_add(&j->x->worked, 1);
}

static void job_done(void *arg)
{
	struct job *j = arg;

	if (!pthread_equal(pthread_self(), j->x->loop_thread))
		j->x->wrong_thread++;
	if (!j->worked || j->out != j->in * j->in + 1)
		j->x->order_bad++;
	j->x->done++;
}

static void results_case(enum loop_backend b)
{
	struct loop *l = loop_make(b);
	struct job *jobs = calloc(JOBS, sizeof(*jobs));
	struct pool *p = NULL;
	struct ctx x;

	assert_non_null(jobs);
	memset(&x, 0, sizeof(x));
	x.loop_thread = pthread_self();
	assert_int_equal(pool_new(3, &p), 0);
	for (unsigned i = 0; i < JOBS; i++) {
		jobs[i] = (struct job){.x = &x, .seq = i, .in = i};
		assert_int_equal(
			pool_submit(p, l, job_work, job_done, &jobs[i]), 0);
	}
	RUN_UNTIL(l, x.done == JOBS);
	assert_int_equal(atomic_load(&x.worked), JOBS);
	assert_int_equal(x.wrong_thread, 0);
	assert_int_equal(x.order_bad, 0);
	pool_free(&p);
	assert_null(p);
	pool_free(&p); /* NULL is fine */
	loop_free(&l);
	free(jobs);
}

static void test_results_on_origin(void **state)
{
	(void)state;
	FOR_EACH_BACKEND(results_case);
}

static void drain_case(enum loop_backend b)
{
	struct loop *l = loop_make(b);
	struct job jobs[64];
	struct pool *p = NULL;
	struct ctx x;

	memset(&x, 0, sizeof(x));
	x.loop_thread = pthread_self();
	assert_int_equal(pool_new(2, &p), 0);
	for (unsigned i = 0; i < 64; i++) {
		jobs[i] = (struct job){
			.x = &x, .seq = i, .in = i, .delay_us = 2000};
		/* Half without a completion. */
		assert_int_equal(pool_submit(p, l, job_work,
					     i % 2 ? job_done : NULL, &jobs[i]),
				 0);
	}
	/* Returns only when every queued job has run. */
	pool_free(&p);
	assert_int_equal(atomic_load(&x.worked), 64);
	for (unsigned i = 0; i < 64; i++)
		assert_true(jobs[i].worked);
	/* The completions are waiting on the loop. */
	assert_int_equal(x.done, 0);
	RUN_UNTIL(l, x.done == 32);
	assert_int_equal(x.wrong_thread, 0);
	loop_free(&l);
}

static void test_free_drains(void **state)
{
	(void)state;
	FOR_EACH_BACKEND(drain_case);
}

/* Two loops on two threads: each gets its own completions. */
struct origin {
	enum loop_backend b;
	struct pool *p;
	struct ctx x;
	struct job jobs[200];
	unsigned fails;
};

static void *origin_thread(void *arg)
{
	struct origin *o = arg;
	struct loop_opts opts;
	struct loop *l = NULL;
	uint64_t t0;

	memset(&opts, 0, sizeof(opts));
	opts.backend = o->b;
	o->x.loop_thread = pthread_self();
	if (loop_new(&opts, &l) < 0) {
		o->fails++;
		return NULL;
	}
	for (unsigned i = 0; i < 200; i++) {
		o->jobs[i] = (struct job){.x = &o->x, .seq = i, .in = i + 7};
		if (pool_submit(o->p, l, job_work, job_done, &o->jobs[i]) < 0)
			o->fails++;
	}
	t0 = test_now_ms();
	while (o->x.done < 200 && test_now_ms() - t0 < TEST_DEADLINE_MS)
		if (loop_run_once(l, 20) < 0)
			o->fails++;
	loop_free(&l);
	return NULL;
}

static void two_origins_case(enum loop_backend b)
{
	struct origin *o = calloc(2, sizeof(*o));
	struct pool *p = NULL;
	pthread_t th[2];

	assert_non_null(o);
	assert_int_equal(pool_new(0, &p), 0);
	for (int i = 0; i < 2; i++) {
		o[i].b = b;
		o[i].p = p;
		assert_int_equal(
			pthread_create(&th[i], NULL, origin_thread, &o[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(o[i].fails, 0);
		assert_int_equal(o[i].x.done, 200);
		assert_int_equal(o[i].x.wrong_thread, 0);
		assert_int_equal(o[i].x.order_bad, 0);
	}
	pool_free(&p);
	free(o);
}

static void test_two_origins(void **state)
{
	(void)state;
	FOR_EACH_BACKEND(two_origins_case);
}

static void test_bad_args(void **state)
{
	struct pool *p = NULL;
	int dummy = 0;

	(void)state;
	assert_int_equal(pool_new(100000, &p), -EINVAL);
	assert_null(p);
	assert_int_equal(pool_new(1, &p), 0);
	assert_int_equal(pool_submit(p, NULL, job_work, job_done, &dummy),
			 -EINVAL);
	assert_int_equal(pool_submit(p, NULL, NULL, NULL, &dummy), -EINVAL);
	pool_free(&p);
}

static atomic_int sig_blocked_in_job = -1;

static void job_sigmask(void *arg)
{
	sigset_t cur;

	(void)arg;
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	atomic_store(&sig_blocked_in_job, sigismember(&cur, SIGTERM) &&
						  sigismember(&cur, SIGHUP) &&
						  sigismember(&cur, SIGINT));
}

/* Pool threads never take process signals, so serve's sigwait() gets
 * every SIGTERM even when the pool was started before serve blocked
 * them: with SIGTERM blocked only on this thread, a SIGTERM to the
 * process stays pending here instead of killing it on a pool thread. */
static void test_threads_block_signals(void **state)
{
	struct pool *p = NULL;
	sigset_t term, pending;
	struct timespec zero = {0, 0};
	int sig;

	(void)state;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	assert_int_equal(pool_new(2, &p), 0); /* SIGTERM not yet blocked */
	assert_int_equal(pool_submit(p, NULL, job_sigmask, NULL, NULL), 0);
	pthread_sigmask(SIG_BLOCK, &term, NULL);
	assert_int_equal(kill(getpid(), SIGTERM), 0);
	pool_free(&p); /* drains: job_sigmask has run */
	assert_int_equal(atomic_load(&sig_blocked_in_job), 1);
	sigpending(&pending);
	assert_true(sigismember(&pending, SIGTERM));
	sig = sigtimedwait(&term, NULL, &zero);
	assert_int_equal(sig, SIGTERM);
	pthread_sigmask(SIG_UNBLOCK, &term, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_results_on_origin),
		cmocka_unit_test(test_free_drains),
		cmocka_unit_test(test_two_origins),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_threads_block_signals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
