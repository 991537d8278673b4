/* The outbound queue runner on the event loop: recovery at start, the
 * schedule of due recipients grouped by destination, delivery attempts
 * through dns.c and smtp_client.c, retries with growing intervals, expiry,
 * and delivery status notifications (bounces, success reports) to the
 * sender. The files themselves are queue_spool.c's. */
#ifndef POSTERN_QUEUE_H
#define POSTERN_QUEUE_H

#include <stddef.h>

#include "queue_config.h"
#include "queue_env.h"
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

/* SIGHUP: reads the [relay] auth_file and ca_file of fresh again and uses
 * them for the sessions that start from now on. A changed host or port
 * needs a restart. Returns 0, or -1 with a message in err (nothing is
 * changed then). The caller copies fresh's relay settings into the
 * configuration that queue_init was given. */
int queue_reload_relay(const struct queue_config *fresh, char *err,
		       size_t errlen);

/* Tells the runner about a message stored with queue_spool_store once it
 * is durable (after the delivery barrier). Loop thread only. Unknown or
 * unreadable ids are logged and ignored. */
void queue_schedule(const char *id);

/* Success notifications for local deliveries (RFC 3461 §4.1, RFC 3464
 * §2.3.3 "delivered"). Records in env, the queue envelope of a message
 * being committed (env->sender already set; smtp_tx builds it), that addr
 * was accepted for delivery into local Maildirs: the recipient is final at
 * once (status "sent", no next hop, no attempt) and owes a DSN when notify
 * has SUCCESS and the sender is not null. The delivery batch stores the
 * envelope with the message (a hard link of the spool file) under the
 * same durability barrier as the Maildir links, or takes it back when the
 * delivery fails; queue_schedule then sends the report like any other DSN
 * (to the sender's Maildirs, or through the queue to a remote sender) with
 * the message's header attached, and removes the entry. So a crash after
 * the 250 does not lose the report, and the header is read from the
 * queue's own copy, which no POP3 client can delete meanwhile. orcpt may
 * be NULL. Returns 1 when the recipient was added, 0 when no report is
 * wanted (env unchanged), -1 when an argument does not fit. Pure: any
 * thread. */
int queue_add_local_success(struct queue_env *env, const char *addr, int notify,
			    const char *orcpt);

/* Stops the runner: drops open outbound sessions (their recipients stay
 * pending on disk) and frees everything. Call after the loop has exited
 * and before the worker pool is freed. */
void queue_shutdown(void);

#endif
