/* The ban file: the persistent list of bans that posternd and posternctl
 * share. One ban per line, replaced atomically, read-modify-write cycles
 * serialised with flock() on a separate lock file. */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "filter_banfile.h"
#include "log.h"
#include "util.h"

void
filter_banlist_free(struct filter_banlist *bl)
{
	free(bl->v);
	memset(bl, 0, sizeof(*bl));
}

struct filter_banrec *
filter_banlist_find(struct filter_banlist *bl, const struct filter_net *net)
{
	size_t i;

	for (i = 0; i < bl->n; i++)
		if (bl->v[i].net.prefixlen == net->prefixlen &&
		    memcmp(bl->v[i].net.addr, net->addr, 16) == 0)
			return &bl->v[i];
	return NULL;
}

void
filter_banlist_put(struct filter_banlist *bl, const struct filter_banrec *rec)
{
	struct filter_banrec *r = filter_banlist_find(bl, &rec->net);

	if (r != NULL) {
		*r = *rec;
		return;
	}
	if (bl->n == bl->cap) {
		bl->cap = bl->cap ? bl->cap * 2 : 16;
		bl->v = xrealloc(bl->v, bl->cap * sizeof(bl->v[0]));
	}
	bl->v[bl->n++] = *rec;
}

int
filter_banlist_del(struct filter_banlist *bl, const struct filter_net *net)
{
	struct filter_banrec *r = filter_banlist_find(bl, net);

	if (r == NULL)
		return -1;
	*r = bl->v[--bl->n];
	return 0;
}

void
filter_banlist_sort(struct filter_banlist *bl)
{
	if (bl->n > 1)
		qsort(bl->v, bl->n, sizeof(bl->v[0]), filter_net_cmp);
}

int
filter_banfile_init(struct filter_banfile *bf, const char *path, char *err,
		    size_t errlen)
{
	char tmp[1024], lock[1100];
	struct stat st;

	memset(bf, 0, sizeof(*bf));
	bf->lock_fd = bf->inotify_fd = -1;
	if (path[0] == '\0')
		return 0;
	if (strlcpy(bf->path, path, sizeof(bf->path)) >= sizeof(bf->path) ||
	    strlcpy(tmp, path, sizeof(tmp)) >= sizeof(tmp))
		goto toolong;
	strlcpy(bf->dir, dirname(tmp), sizeof(bf->dir));
	strlcpy(tmp, path, sizeof(tmp));
	if (strlcpy(bf->base, basename(tmp), sizeof(bf->base)) >=
	    sizeof(bf->base))
		goto toolong;
	if (util_mkdirs(bf->dir, 0700) < 0) {
		snprintf(err, errlen, "%s: %s", bf->dir, strerror(errno));
		return -1;
	}
	if (snprintf(lock, sizeof(lock), "%s.lock", path) >= (int)sizeof(lock))
		goto toolong;
	bf->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (bf->lock_fd < 0) {
		snprintf(err, errlen, "%s: %s", lock, strerror(errno));
		return -1;
	}
	/* Root (posternctl) creates files the daemon user must open. */
	if (geteuid() == 0 && stat(bf->dir, &st) == 0 &&
	    fchown(bf->lock_fd, st.st_uid, st.st_gid) != 0)
		log_warn("filter chown %s", lock);
	return 0;
toolong:
	snprintf(err, errlen, "ban file path too long");
	return -1;
}

void
filter_banfile_free(struct filter_banfile *bf)
{
	if (bf->lock_fd >= 0)
		close(bf->lock_fd);
	if (bf->inotify_fd >= 0)
		close(bf->inotify_fd);
	free(bf->pending);
	memset(bf, 0, sizeof(*bf));
	bf->lock_fd = bf->inotify_fd = -1;
}

/* Serialises read-modify-write cycles of posternd and posternctl. */
int
filter_banfile_lock(struct filter_banfile *bf, int op)
{
	while (flock(bf->lock_fd, op) != 0) {
		if (errno != EINTR) {
			log_warn("filter lock %s", bf->path);
			return -1;
		}
	}
	return 0;
}

/* 1 when the file is not the version we last read or wrote. */
int
filter_banfile_changed(const struct filter_banfile *bf)
{
	struct stat st;

	if (bf->path[0] == '\0')
		return 0;
	if (stat(bf->path, &st) != 0)
		return bf->exists;
	return !bf->exists || st.st_dev != bf->dev || st.st_ino != bf->ino ||
	       st.st_size != bf->size || st.st_mtim.tv_sec != bf->mtim.tv_sec ||
	       st.st_mtim.tv_nsec != bf->mtim.tv_nsec;
}

void
filter_banfile_remember(struct filter_banfile *bf)
{
	struct stat st;

	bf->exists = stat(bf->path, &st) == 0;
	if (!bf->exists)
		return;
	bf->dev = st.st_dev;
	bf->ino = st.st_ino;
	bf->size = st.st_size;
	bf->mtim = st.st_mtim;
}

/* Reads the file (caller holds the lock): one ban per line,
 * "NETWORK EXPIRES CREATED REASON", unix seconds, EXPIRES 0 = permanent.
 * Expired and malformed lines are skipped (the latter with a warning).
 * A missing file is an empty list. Returns 0, or -1. */
int
filter_banfile_read(struct filter_banfile *bf, struct filter_banlist *bl)
{
	char line[512], *tok[4], *save;
	uint64_t now = (uint64_t)time(NULL);
	const char *e;
	int lineno = 0, n;
	FILE *fp;

	bl->n = 0;
	fp = fopen(bf->path, "re");
	if (fp == NULL) {
		if (errno == ENOENT)
			return 0;
		log_warn("filter open %s", bf->path);
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		struct filter_banrec rec;
		enum filter_reason reason;

		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		for (n = 0; n < 4; n++) {
			tok[n] = strtok_r(n == 0 ? line : NULL, " \t", &save);
			if (tok[n] == NULL)
				break;
		}
		if (n == 0 || tok[0][0] == '#')
			continue;
		memset(&rec, 0, sizeof(rec));
		if (n < 4 || filter_parse_net(tok[0], &rec.net, &e) < 0 ||
		    util_parse_uint(tok[1], 0, UINT64_MAX, &rec.expires) < 0 ||
		    util_parse_uint(tok[2], 0, UINT64_MAX, &rec.created) < 0) {
			log_warnx("filter %s:%d: malformed ban, skipped",
				  bf->path, lineno);
			continue;
		}
		rec.reason = filter_reason_parse(tok[3], &reason) == 0
				 ? (uint32_t)reason
				 : FILTER_REASON_OTHER;
		if (rec.expires != 0 && rec.expires <= now)
			continue;
		filter_banlist_put(bl, &rec);
	}
	fclose(fp);
	return 0;
}

/* Replaces the file atomically (tmp, fsync, rename, fsync dir); caller
 * holds the lock. Returns 0, or -1 (logged). */
int
filter_banfile_write(struct filter_banfile *bf, const struct filter_banlist *bl)
{
	char tmp[1100], net[FILTER_NET_STRLEN];
	uint64_t now = (uint64_t)time(NULL);
	struct stat st;
	size_t i;
	FILE *fp;
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", bf->path) >= (int)sizeof(tmp))
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_warn("filter open %s", tmp);
		return -1;
	}
	if (geteuid() == 0 && stat(bf->dir, &st) == 0 &&
	    fchown(fd, st.st_uid, st.st_gid) != 0)
		log_warn("filter chown %s", tmp);
	fp = fdopen(fd, "w");
	if (fp == NULL) {
		close(fd);
		goto fail;
	}
	fprintf(fp, "# postern bans, written by posternd and posternctl: "
		    "NETWORK EXPIRES CREATED REASON\n"
		    "# (unix seconds; EXPIRES 0 = permanent)\n");
	for (i = 0; i < bl->n; i++) {
		const struct filter_banrec *r = &bl->v[i];

		if (r->expires != 0 && r->expires <= now)
			continue;
		filter_format_net(&r->net, net, sizeof(net));
		fprintf(fp, "%s %" PRIu64 " %" PRIu64 " %s\n", net, r->expires,
			r->created,
			filter_reason_name((enum filter_reason)r->reason));
	}
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
		fclose(fp);
		goto fail;
	}
	if (fclose(fp) != 0 || rename(tmp, bf->path) != 0)
		goto fail;
	util_fsync_dir(bf->dir);
	filter_banfile_remember(bf);
	return 0;
fail:
	log_warn("filter write %s", bf->path);
	unlink(tmp);
	return -1;
}

void
filter_banfile_apply(const struct filter_banfile *bf, struct filter_banlist *bl)
{
	size_t i;

	for (i = 0; i < bf->n_pending; i++) {
		if (bf->pending[i].del)
			filter_banlist_del(bl, &bf->pending[i].rec.net);
		else
			filter_banlist_put(bl, &bf->pending[i].rec);
	}
}

void
filter_banfile_queue(struct filter_banfile *bf, int del,
		     const struct filter_banrec *rec)
{
	if (bf->path[0] == '\0')
		return;
	if (bf->n_pending == bf->cap_pending) {
		bf->cap_pending = bf->cap_pending ? bf->cap_pending * 2 : 16;
		bf->pending = xrealloc(bf->pending, bf->cap_pending *
							sizeof(bf->pending[0]));
	}
	bf->pending[bf->n_pending].del = del;
	bf->pending[bf->n_pending].rec = *rec;
	bf->n_pending++;
}

void
filter_banfile_unlock(struct filter_banfile *bf)
{
	flock(bf->lock_fd, LOCK_UN);
}
