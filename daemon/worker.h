/* A small pool of threads for work that must not block the event loop:
 * password hashing, fsync, large SQLite work. A job's work function runs on
 * a worker thread; its done function runs afterwards on the loop thread. */
#ifndef POSTERN_WORKER_H
#define POSTERN_WORKER_H

#include <event2/event.h>

struct worker_pool;

typedef void (*worker_fn)(void *arg);

/* Creates nthreads workers whose completions are delivered on base. */
struct worker_pool *worker_pool_new(struct event_base *base, int nthreads);

/* Queues a job. work(arg) runs on a worker thread and must not touch loop
 * state; done(arg) then runs on the loop thread. arg stays owned by the
 * caller, who must keep it alive until done() has run. */
void worker_submit(struct worker_pool *pool, worker_fn work, worker_fn done,
		   void *arg);

/* Stops the threads after the queued jobs have run; pending done callbacks
 * are not called. Sets *pool to NULL. */
void worker_pool_free(struct worker_pool **pool);

#endif
