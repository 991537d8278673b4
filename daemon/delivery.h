/* Durable local delivery with group commit: finished messages are linked
 * into their Maildirs by a worker in batches, and one durability barrier
 * (syncfs, or per-file and per-directory fsync) covers the whole batch
 * before any of its SMTP 250 replies is sent. While one batch is being
 * made durable the next one gathers, so throughput grows with load instead
 * of being one disk flush per message. */
#ifndef POSTERN_DELIVERY_H
#define POSTERN_DELIVERY_H

#include <stddef.h>

#include "maildir.h"
#include "queue_env.h"
#include "server.h"
#include "util.h"

#define DELIVERY_SYNCFS 0 /* one syncfs(2) per batch */
#define DELIVERY_FSYNC 1  /* fsync each file and each new/ directory */
#define DELIVERY_AUTO 2	  /* syncfs on local disk file systems, else fsync */

struct delivery_job {
	/* Filled by the caller, who keeps them alive until done runs. */
	const char *spool_path;	     /* finished message, LF line ends */
	const char *const *maildirs; /* deduplicated target Maildirs */
	size_t nmaildirs;
	const char *name;	     /* maildir_unique_name() result */
	struct queue_env *queue_env; /* remote recipients, or NULL: the
					message also goes into the
					outbound queue (env->id set) */
	void (*done)(struct delivery_job *job); /* on the loop thread */
	void *arg;
	/* Results, valid in done: ok = on disk everywhere, durably. */
	int ok;
	char err[ERR_LEN];
	char queue_id[QUEUE_ID_LEN + 1]; /* "" when nothing was queued */
	/* Internal. */
	struct delivery_job *next;
};

/* The barrier DELIVERY_AUTO picks for a file system type (statfs f_type):
 * DELIVERY_SYNCFS or DELIVERY_FSYNC. */
int delivery_auto_mode(long f_type);

/* Prepares group commit for srv (data_dir must exist). mode is one of
 * DELIVERY_*; AUTO is resolved here from data_dir's file system. Returns
 * 0, or -1 with errno. */
int delivery_init(struct server *srv, int mode);

/* Queues a job; its done callback runs once every copy is durable or the
 * delivery failed. The spool file is unlinked either way. */
void delivery_submit(struct delivery_job *job);

#endif
