/* Group commit of local deliveries (see delivery.h). One batch at a time
 * runs on a worker; jobs arriving meanwhile wait for the next batch. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "delivery.h"
#include "log.h"
#include "queue.h"
#include "queue_spool.h"
#include "worker.h"

static struct server *delivery_srv;
static int delivery_mode;
static int delivery_dirfd = -1; /* data_dir, for syncfs */
static struct delivery_job *delivery_waiting, **delivery_waiting_tail;
static struct delivery_job *delivery_batch; /* in flight on a worker */

static int delivery_link(const char *spool_path, const char *const *maildirs,
			 size_t n, const char *name, char *err, size_t errlen);
static void delivery_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void delivery_start_batch(void);
static void delivery_batch_work(void *arg);
static void delivery_batch_done(void *arg);
static int delivery_barrier(struct delivery_job *batch, char *err,
			    size_t errlen);
static void delivery_unqueue(struct delivery_job *job);

/* Takes back a queue entry whose message will get a 4xx: the client sends
 * it again. Worker thread. */
static void
delivery_unqueue(struct delivery_job *job)
{
	char err[ERR_LEN];

	if (job->queue_id[0] == '\0')
		return;
	if (queue_spool_remove(delivery_srv->cfg->data_dir, job->queue_id, 0,
			       err, sizeof(err)) == -1)
		log_warnx("queue: cannot take back %s: %s", job->queue_id, err);
	job->queue_id[0] = '\0';
}

static int
delivery_link(const char *spool_path, const char *const *maildirs, size_t n,
	      const char *name, char *err, size_t errlen)
{
	return maildir_link(spool_path, maildirs, n, name, err, errlen);
}

/* Error text for a client-invisible log line; truncation is harmless. */
static void
delivery_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* syncfs(2) flushes the device once for a whole batch, where fsync
 * flushes once per file and once per directory (measured in
 * daemon/NOTES.md: faster even for a lone message). It is only trusted on
 * the local disk file systems known to write back everything they hold
 * dirty; on network or FUSE file systems each file is fsynced. */
int
delivery_auto_mode(long f_type)
{
	switch (f_type) {
	case EXT4_SUPER_MAGIC: /* also ext2 and ext3 */
	case XFS_SUPER_MAGIC:
	case BTRFS_SUPER_MAGIC:
	case F2FS_SUPER_MAGIC:
	case TMPFS_MAGIC:
		return DELIVERY_SYNCFS;
	default:
		return DELIVERY_FSYNC;
	}
}

int
delivery_init(struct server *srv, int mode)
{
	struct statfs sf;

	delivery_srv = srv;
	delivery_waiting = NULL;
	delivery_waiting_tail = &delivery_waiting;
	delivery_dirfd =
	    open(srv->cfg->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (delivery_dirfd == -1)
		return -1;
	if (mode == DELIVERY_AUTO)
		mode = fstatfs(delivery_dirfd, &sf) == -1
			   ? DELIVERY_FSYNC
			   : delivery_auto_mode((long)sf.f_type);
	delivery_mode = mode;
	log_info("delivery: durability barrier %s",
		 mode == DELIVERY_SYNCFS ? "syncfs" : "fsync");
	return 0;
}

void
delivery_submit(struct delivery_job *job)
{
	job->next = NULL;
	job->ok = 0;
	job->err[0] = '\0';
	*delivery_waiting_tail = job;
	delivery_waiting_tail = &job->next;
	if (delivery_batch == NULL)
		delivery_start_batch();
}

static void
delivery_start_batch(void)
{
	if (delivery_waiting == NULL)
		return;
	delivery_batch = delivery_waiting;
	delivery_waiting = NULL;
	delivery_waiting_tail = &delivery_waiting;
	worker_submit(delivery_srv->workers, delivery_batch_work,
		      delivery_batch_done, delivery_batch);
}

/* Makes everything linked by this batch durable. Returns 0 or -1. */
static int
delivery_barrier(struct delivery_job *batch, char *err, size_t errlen)
{
	struct delivery_job *job;
	size_t i, j;
	int fd;

	if (delivery_mode == DELIVERY_SYNCFS) {
		/* One flush of the file system covers every file and every
		 * directory entry of the batch. */
		if (syncfs(delivery_dirfd) == -1) {
			delivery_error(err, errlen, "syncfs: %s",
				       strerror(errno));
			return -1;
		}
		return 0;
	}
	for (job = batch; job; job = job->next) {
		if (!job->ok)
			continue;
		fd = open(job->spool_path, O_RDONLY | O_CLOEXEC);
		if (fd == -1 || fsync(fd) == -1) {
			delivery_error(err, errlen, "fsync %s: %s",
				       job->spool_path, strerror(errno));
			if (fd != -1)
				close(fd);
			return -1;
		}
		close(fd);
	}
	/* Queue entries: their .msg, .env and the queue directory. */
	for (job = batch; job; job = job->next)
		if (job->ok && job->queue_id[0] &&
		    queue_spool_sync(delivery_srv->cfg->data_dir, job->queue_id,
				     err, errlen) == -1)
			return -1;
	/* Each new/ directory once per batch, however many messages. */
	for (job = batch; job; job = job->next) {
		if (!job->ok)
			continue;
		for (i = 0; i < job->nmaildirs; i++) {
			struct delivery_job *prev;
			char path[1300];
			int seen = 0;

			for (prev = batch; prev != job && !seen;
			     prev = prev->next)
				for (j = 0; prev->ok && j < prev->nmaildirs;
				     j++)
					if (strcmp(prev->maildirs[j],
						   job->maildirs[i]) == 0)
						seen = 1;
			if (seen)
				continue;
			if (snprintf(path, sizeof(path), "%s/new",
				     job->maildirs[i]) >= (int)sizeof(path) ||
			    util_fsync_dir(path) == -1) {
				delivery_error(err, errlen, "fsync %s: %s",
					       path, strerror(errno));
				return -1;
			}
		}
	}
	return 0;
}

static void
delivery_batch_work(void *arg)
{
	struct delivery_job *batch = arg, *job;
	const char *data_dir = delivery_srv->cfg->data_dir;
	char err[ERR_LEN];
	int any = 0;

	for (job = batch; job; job = job->next) {
		job->queue_id[0] = '\0';
		job->ok = 1;
		/* Remote recipients first: the queue entry is a hard link of
		 * the spool file, made durable by the same barrier. */
		if (job->queue_env &&
		    queue_spool_store(data_dir, job->spool_path, job->queue_env,
				      job->queue_id, job->err,
				      sizeof(job->err)) == -1)
			job->ok = 0;
		if (job->ok && job->nmaildirs > 0 &&
		    delivery_link(job->spool_path, job->maildirs,
				  job->nmaildirs, job->name, job->err,
				  sizeof(job->err)) == -1) {
			job->ok = 0;
			delivery_unqueue(job);
		}
		any |= job->ok;
	}
	if (any && delivery_barrier(batch, err, sizeof(err)) == -1) {
		/* Not known to be durable: the clients get a 4xx and retry. */
		for (job = batch; job; job = job->next)
			if (job->ok) {
				job->ok = 0;
				strlcpy(job->err, err, sizeof(job->err));
				delivery_unqueue(job);
			}
	}
	for (job = batch; job; job = job->next)
		unlink(job->spool_path);
}

static void
delivery_batch_done(void *arg)
{
	struct delivery_job *job = arg, *next;

	delivery_batch = NULL;
	/* Start the next batch before the callbacks, which may submit. */
	delivery_start_batch();
	for (; job; job = next) {
		next = job->next;
		if (job->ok && job->queue_id[0])
			queue_schedule(job->queue_id);
		job->done(job);
	}
}
