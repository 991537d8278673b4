/* The ban file shared by posternd and posternctl: bans with wall-clock
 * expiry (so they survive a reboot, unlike the kernel's monotonic clock),
 * atomic replacement, a lock for read-modify-write, and the daemon's own
 * changes queued until the next write. Format, one ban per line:
 *   NETWORK EXPIRES CREATED REASON
 * unix seconds, EXPIRES 0 = permanent; '#' starts a comment. */
#ifndef POSTERN_FILTER_BANFILE_H
#define POSTERN_FILTER_BANFILE_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "filter_config.h"

struct filter_banrec {
	struct filter_net net; /* first: sorts with filter_net_cmp */
	uint64_t expires;      /* unix seconds; 0 = permanent */
	uint64_t created;
	uint32_t reason; /* enum filter_reason */
};

struct filter_banlist {
	struct filter_banrec *v;
	size_t n, cap;
};

struct filter_banop {
	int del;
	struct filter_banrec rec;
};

struct filter_banfile {
	char path[1024]; /* "" = no ban file */
	char dir[1024];
	char base[256];
	int lock_fd;
	int inotify_fd; /* owned here, set up by the caller */
	int exists;	/* identity of the version last seen */
	dev_t dev;
	ino_t ino;
	struct timespec mtim;
	off_t size;
	struct filter_banop *pending; /* our changes not yet written */
	size_t n_pending, cap_pending;
};

void filter_banlist_free(struct filter_banlist *bl);
struct filter_banrec *filter_banlist_find(struct filter_banlist *bl,
					  const struct filter_net *net);
/* Adds rec, or replaces the record of the same network. */
void filter_banlist_put(struct filter_banlist *bl,
			const struct filter_banrec *rec);
/* Returns 0, or -1 when there is no record for net. */
int filter_banlist_del(struct filter_banlist *bl, const struct filter_net *net);
void filter_banlist_sort(struct filter_banlist *bl);

/* Prepares bf for path ("" leaves it unused): creates the directory (0700)
 * and the lock file "<path>.lock". Files created as root are given to the
 * directory's owner, so that posternd can use them after dropping root.
 * Returns 0, or -1 with a message in err. */
int filter_banfile_init(struct filter_banfile *bf, const char *path, char *err,
			size_t errlen);
void filter_banfile_free(struct filter_banfile *bf);

/* flock() on the lock file: op is LOCK_SH or LOCK_EX. 0 or -1 (logged). */
int filter_banfile_lock(struct filter_banfile *bf, int op);
void filter_banfile_unlock(struct filter_banfile *bf);

/* 1 when the file is not the version last read or written (someone else
 * wrote it). remember records the current version. */
int filter_banfile_changed(const struct filter_banfile *bf);
void filter_banfile_remember(struct filter_banfile *bf);

/* Reads the file into bl (replacing its contents); expired records are
 * dropped and malformed lines skipped with a warning; a missing file is an
 * empty list. Caller holds the lock. Returns 0, or -1 (logged). */
int filter_banfile_read(struct filter_banfile *bf, struct filter_banlist *bl);

/* Replaces the file with bl atomically (tmp, fsync, rename, fsync dir) and
 * remembers the new version. Caller holds LOCK_EX. 0, or -1 (logged). */
int filter_banfile_write(struct filter_banfile *bf,
			 const struct filter_banlist *bl);

/* Queues one of our changes (nothing when there is no file), and applies
 * the queue to a list read from the file. */
void filter_banfile_queue(struct filter_banfile *bf, int del,
			  const struct filter_banrec *rec);
void filter_banfile_apply(const struct filter_banfile *bf,
			  struct filter_banlist *bl);

#endif
