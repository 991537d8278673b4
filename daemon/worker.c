/* A fixed pool of threads taking jobs from one queue. Completions go back to
 * the loop through a pipe whose read end is an event on the loop's base, so
 * the done callbacks run on the loop thread without locks of their own. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "util.h"
#include "worker.h"

struct worker_job {
	worker_fn work;
	worker_fn done;
	void *arg;
	struct worker_job *next;
};

struct worker_queue {
	struct worker_job *head, *tail;
};

struct worker_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct worker_queue waiting; /* jobs not yet taken by a thread */
	struct worker_queue done;    /* finished, waiting for the loop */
	int stopping;
	int nthreads;
	pthread_t *threads;
	int notify[2]; /* pipe: workers -> loop */
	int notified;  /* a byte is in the pipe */
	struct event *ev_done;
};

static void worker_queue_push(struct worker_queue *q, struct worker_job *job);
static struct worker_job *worker_queue_take_all(struct worker_queue *q);
static void *worker_thread_main(void *arg);
static void worker_on_notify(evutil_socket_t fd, short what, void *arg);

static void
worker_queue_push(struct worker_queue *q, struct worker_job *job)
{
	job->next = NULL;
	if (q->tail)
		q->tail->next = job;
	else
		q->head = job;
	q->tail = job;
}

static struct worker_job *
worker_queue_take_all(struct worker_queue *q)
{
	struct worker_job *all = q->head;

	q->head = q->tail = NULL;
	return all;
}

static void *
worker_thread_main(void *arg)
{
	struct worker_pool *pool = arg;
	struct worker_job *job;
	char byte = 1;
	int wake;

	for (;;) {
		pthread_mutex_lock(&pool->lock);
		while (pool->waiting.head == NULL && !pool->stopping)
			pthread_cond_wait(&pool->cond, &pool->lock);
		if (pool->waiting.head == NULL) {
			pthread_mutex_unlock(&pool->lock);
			return NULL;
		}
		job = pool->waiting.head;
		pool->waiting.head = job->next;
		if (pool->waiting.head == NULL)
			pool->waiting.tail = NULL;
		pthread_mutex_unlock(&pool->lock);

		job->work(job->arg);

		pthread_mutex_lock(&pool->lock);
		worker_queue_push(&pool->done, job);
		/* One byte in the pipe is enough to wake the loop; the loop
		 * drains the whole done queue each time. */
		wake = !pool->notified;
		pool->notified = 1;
		pthread_mutex_unlock(&pool->lock);
		if (wake && write(pool->notify[1], &byte, 1) == -1 &&
		    errno != EAGAIN)
			log_warn("worker: notify");
	}
}

static void
worker_on_notify(evutil_socket_t fd, short what, void *arg)
{
	struct worker_pool *pool = arg;
	struct worker_job *job, *next;
	char buf[64];

	(void)what;
	/* Workers write a byte only while notified is 0, so the pipe holds
	 * at most one: one read empties it. */
	if (read(fd, buf, sizeof(buf)) == -1 && errno != EAGAIN &&
	    errno != EINTR)
		log_warn("worker: notify read");
	pthread_mutex_lock(&pool->lock);
	pool->notified = 0;
	job = worker_queue_take_all(&pool->done);
	pthread_mutex_unlock(&pool->lock);
	for (; job; job = next) {
		next = job->next;
		if (job->done)
			job->done(job->arg);
		free(job);
	}
}

struct worker_pool *
worker_pool_new(struct event_base *base, int nthreads)
{
	struct worker_pool *pool = xcalloc(1, sizeof(*pool));
	int i;

	if (nthreads < 1)
		nthreads = 1;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->cond, NULL);
	if (pipe2(pool->notify, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("worker: pipe");
	pool->ev_done = event_new(base, pool->notify[0], EV_READ | EV_PERSIST,
				  worker_on_notify, pool);
	if (pool->ev_done == NULL || event_add(pool->ev_done, NULL) == -1)
		fatalx("worker: cannot add notify event");
	pool->nthreads = nthreads;
	pool->threads = xcalloc((size_t)nthreads, sizeof(pthread_t));
	for (i = 0; i < nthreads; i++)
		if (pthread_create(&pool->threads[i], NULL, worker_thread_main,
				   pool) != 0)
			fatalx("worker: pthread_create failed");
	return pool;
}

void
worker_submit(struct worker_pool *pool, worker_fn work, worker_fn done,
	      void *arg)
{
	struct worker_job *job = xmalloc(sizeof(*job));

	job->work = work;
	job->done = done;
	job->arg = arg;
	pthread_mutex_lock(&pool->lock);
	worker_queue_push(&pool->waiting, job);
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
}

void
worker_pool_free(struct worker_pool **poolp)
{
	struct worker_pool *pool = *poolp;
	struct worker_job *job, *next;
	int i;

	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = 1;
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	for (i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	for (job = worker_queue_take_all(&pool->done); job; job = next) {
		next = job->next;
		free(job);
	}
	event_free(pool->ev_done);
	close(pool->notify[0]);
	close(pool->notify[1]);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->cond);
	free(pool->threads);
	free(pool);
	*poolp = NULL;
}
