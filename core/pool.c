/* core/pool: threads for blocking work. One mutex + condvar queue of
 * malloc'd jobs; each result goes back to the submitting loop with
 * loop_post(). */
#include "core/pool.h"

/* system */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* project */
#include "core/log.h"
#include "core/loop.h"

#define POOL_DEFAULT_THREADS 2u
#define POOL_MAX_THREADS     256u

struct pool_job {
	struct pool_job *next;
	struct loop *origin;
	pool_work_fn *work;
	pool_done_fn *done;
	void *arg;
};

struct pool {
	pthread_mutex_t mtx;
	pthread_cond_t cond;
	struct pool_job *head, *tail;
	bool stopping;
	unsigned nthreads;
	pthread_t *threads;
};

/* loop_post only fails when malloc does; the completion must not be
 * lost, so keep trying. */
static void pool_post_done(struct pool_job *j)
{
	struct timespec ts = {.tv_nsec = 1000000};
	bool warned = false;

	while (loop_post(j->origin, j->done, j->arg) < 0) {
		if (!warned) {
			log_err("pool: cannot post a completion, retrying");
			warned = true;
		}
		nanosleep(&ts, NULL);
	}
}

static void *pool_thread_main(void *arg)
{
	struct pool *p = arg;
	struct pool_job *j;

	for (;;) {
		pthread_mutex_lock(&p->mtx);
		while (p->head == NULL && !p->stopping)
			pthread_cond_wait(&p->cond, &p->mtx);
		j = p->head;
		if (j == NULL) { /* stopping and drained */
			pthread_mutex_unlock(&p->mtx);
			return NULL;
		}
		p->head = j->next;
		if (p->head == NULL)
			p->tail = NULL;
		pthread_mutex_unlock(&p->mtx);

		j->work(j->arg);
		if (j->done != NULL)
			pool_post_done(j);
		free(j);
	}
}

int pool_new(unsigned nthreads, struct pool **pool_r)
{
	struct pool *p;
	sigset_t all, old;
	int r = 0;

	if (nthreads == 0)
		nthreads = POOL_DEFAULT_THREADS;
	if (nthreads > POOL_MAX_THREADS)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	p->threads = calloc(nthreads, sizeof(*p->threads));
	if (p->threads == NULL) {
		free(p);
		return -ENOMEM;
	}
	pthread_mutex_init(&p->mtx, NULL);
	pthread_cond_init(&p->cond, NULL);
	/* Pool threads never take process signals: a SIGTERM delivered to
	 * one of them would kill the process instead of reaching the
	 * sigwait() in serve. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned i = 0; i < nthreads; i++) {
		r = pthread_create(&p->threads[i], NULL, pool_thread_main, p);
		if (r != 0)
			break;
		p->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		log_err("pool: cannot start thread %u: %s", p->nthreads,
			strerror(r));
		pool_free(&p);
		return -r;
	}
	*pool_r = p;
	return 0;
}

void pool_free(struct pool **pp)
{
	struct pool *p = *pp;

	if (p == NULL)
		return;
	*pp = NULL;
	pthread_mutex_lock(&p->mtx);
	p->stopping = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mtx);
	/* Threads leave only once the queue is empty. */
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->mtx);
	free(p->threads);
	free(p);
}

int pool_submit(struct pool *p, struct loop *origin, pool_work_fn *work,
		pool_done_fn *done, void *arg)
{
	struct pool_job *j;

	if (work == NULL || (done != NULL && origin == NULL))
		return -EINVAL;
	j = malloc(sizeof(*j));
	if (j == NULL)
		return -ENOMEM;
	j->next = NULL;
	j->origin = origin;
	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&p->mtx);
	if (p->stopping) {
		pthread_mutex_unlock(&p->mtx);
		free(j);
		return -ESHUTDOWN;
	}
	if (p->tail != NULL)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->mtx);
	return 0;
}
