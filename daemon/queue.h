/* The outbound queue runner on the event loop: recovery at start, the
 * schedule of due recipients grouped by destination, delivery attempts
 * through dns.c and smtp_client.c, retries with growing intervals, expiry,
 * and delivery status notifications (bounces, success reports) to the
 * sender. The files themselves are queue_spool.c's. */
#ifndef POSTERN_QUEUE_H
#define POSTERN_QUEUE_H

#include <stddef.h>

#include "queue_config.h"
#include "server.h"

/* Starts the queue for srv (srv->base, srv->workers, srv->store,
 * srv->cfg->hostname and data_dir are used; qc must stay valid): creates
 * data_dir/queue (0700), repairs it after a crash (see queue_spool_scan),
 * loads every envelope, sets up the resolver and the relay settings, and
 * starts the runner's one-second timer. Call after the worker pool and the
 * store exist, before the loop runs. Returns 0, or -1 with a message in
 * err (the daemon should not start). */
int queue_init(struct server *srv, const struct queue_config *qc, char *err,
	       size_t errlen);

/* Tells the runner about a message stored with queue_spool_store once it
 * is durable (after the delivery barrier). Loop thread only. Unknown or
 * unreadable ids are logged and ignored. */
void queue_schedule(const char *id);

/* Stops the runner: drops open outbound sessions (their recipients stay
 * pending on disk) and frees everything. Call after the loop has exited
 * and before the worker pool is freed. */
void queue_shutdown(void);

#endif
