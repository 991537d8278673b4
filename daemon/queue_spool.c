/* The outbound queue's files (see queue_spool.h). Envelopes are always
 * written under a temporary name and renamed, so that an .env on disk is
 * complete; the order of creation (.msg, then .env) and of removal (.env,
 * then .msg) lets recovery tell an unfinished store from a queued message. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "queue_spool.h"
#include "util.h"

#define QUEUE_ENV_FILE_MAX (64u << 20) /* 100000 recipients fit easily */

static void queue_spool_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int queue_spool_write_env(const char *data_dir,
				 const struct queue_env *env, int durable,
				 char *err, size_t errlen);
static int queue_spool_fsync_file(const char *path, char *err, size_t errlen);
static int queue_spool_exists(const char *path);
static int queue_spool_name_id(const char *name, const char *suffix, char *id);

static void
queue_spool_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int
queue_spool_path(char *buf, size_t len, const char *data_dir, const char *id,
		 const char *suffix)
{
	int n;

	if (id == NULL)
		n = snprintf(buf, len, "%s/queue", data_dir);
	else
		n = snprintf(buf, len, "%s/queue/%s%s", data_dir, id, suffix);
	return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

int
queue_spool_init(const char *data_dir)
{
	char dir[QUEUE_PATH_MAX];

	if (queue_spool_path(dir, sizeof(dir), data_dir, NULL, NULL) == -1) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return util_mkdirs(dir, 0700);
}

static int
queue_spool_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static int
queue_spool_fsync_file(const char *path, char *err, size_t errlen)
{
	int fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		queue_spool_error(err, errlen, "open %s: %s", path,
				  strerror(errno));
		return -1;
	}
	if (fsync(fd) == -1) {
		saved = errno;
		close(fd);
		queue_spool_error(err, errlen, "fsync %s: %s", path,
				  strerror(saved));
		return -1;
	}
	close(fd);
	return 0;
}

/* Writes <id>.env through <id>.env.tmp; with durable set, the file is
 * fsynced before the rename and the directory after it. */
static int
queue_spool_write_env(const char *data_dir, const struct queue_env *env,
		      int durable, char *err, size_t errlen)
{
	char path[QUEUE_PATH_MAX], tmp[QUEUE_PATH_MAX], dir[QUEUE_PATH_MAX];
	char *text;
	size_t len, off = 0;
	ssize_t n;
	int fd, saved;

	if (queue_spool_path(path, sizeof(path), data_dir, env->id, ".env") ||
	    queue_spool_path(tmp, sizeof(tmp), data_dir, env->id, ".env.tmp") ||
	    queue_spool_path(dir, sizeof(dir), data_dir, NULL, NULL)) {
		queue_spool_error(err, errlen, "queue path too long");
		return -1;
	}
	text = queue_env_format(env, &len);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1) {
		queue_spool_error(err, errlen, "create %s: %s", tmp,
				  strerror(errno));
		free(text);
		return -1;
	}
	while (off < len) {
		n = write(fd, text + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			goto fail;
		off += (size_t)n;
	}
	if (durable && fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) == -1)
		goto fail;
	free(text);
	if (durable && util_fsync_dir(dir) == -1) {
		queue_spool_error(err, errlen, "fsync %s: %s", dir,
				  strerror(errno));
		return -1;
	}
	return 0;
fail:
	saved = errno;
	if (fd != -1)
		close(fd);
	unlink(tmp);
	free(text);
	queue_spool_error(err, errlen, "write %s: %s", path, strerror(saved));
	return -1;
}

int
queue_spool_store(const char *data_dir, const char *spool_path,
		  struct queue_env *env, char *id_r, char *err, size_t errlen)
{
	char msg[QUEUE_PATH_MAX];
	int tries;

	for (tries = 0;; tries++) {
		if (!env->id[0] || tries > 0)
			util_random_hex(env->id, QUEUE_ID_LEN / 2);
		if (queue_spool_path(msg, sizeof(msg), data_dir, env->id,
				     ".msg") == -1) {
			queue_spool_error(err, errlen, "queue path too long");
			return -1;
		}
		if (link(spool_path, msg) == 0)
			break;
		/* An id already queued (a caller-chosen one, or a random
		 * collision): pick another. */
		if (errno != EEXIST || tries >= 8) {
			queue_spool_error(err, errlen, "link %s to %s: %s",
					  spool_path, msg, strerror(errno));
			return -1;
		}
	}
	if (queue_spool_write_env(data_dir, env, 0, err, errlen) == -1) {
		unlink(msg);
		return -1;
	}
	if (id_r)
		strlcpy(id_r, env->id, QUEUE_ID_LEN + 1);
	return 0;
}

int
queue_spool_sync(const char *data_dir, const char *id, char *err, size_t errlen)
{
	char path[QUEUE_PATH_MAX];

	if (queue_spool_path(path, sizeof(path), data_dir, id, ".msg") ||
	    queue_spool_fsync_file(path, err, errlen) ||
	    queue_spool_path(path, sizeof(path), data_dir, id, ".env") ||
	    queue_spool_fsync_file(path, err, errlen))
		return -1;
	if (queue_spool_path(path, sizeof(path), data_dir, NULL, NULL) ||
	    util_fsync_dir(path) == -1) {
		queue_spool_error(err, errlen, "fsync %s: %s", path,
				  strerror(errno));
		return -1;
	}
	return 0;
}

int
queue_spool_save(const char *data_dir, const struct queue_env *env, char *err,
		 size_t errlen)
{
	char msg[QUEUE_PATH_MAX];

	if (queue_spool_path(msg, sizeof(msg), data_dir, env->id, ".msg")) {
		queue_spool_error(err, errlen, "queue path too long");
		return -1;
	}
	if (!queue_spool_exists(msg))
		return 1;
	return queue_spool_write_env(data_dir, env, 1, err, errlen);
}

int
queue_spool_load(const char *data_dir, const char *id, struct queue_env **env_r,
		 char *err, size_t errlen)
{
	char path[QUEUE_PATH_MAX], *text = NULL;
	const char *why = NULL;
	struct stat st;
	size_t off = 0;
	ssize_t n;
	int fd, r = -1;

	*env_r = NULL;
	if (!queue_env_check_id(id)) {
		queue_spool_error(err, errlen, "bad queue id '%s'", id);
		return -1;
	}
	if (queue_spool_path(path, sizeof(path), data_dir, id, ".env")) {
		queue_spool_error(err, errlen, "queue path too long");
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 1;
		queue_spool_error(err, errlen, "open %s: %s", path,
				  strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || st.st_size > QUEUE_ENV_FILE_MAX) {
		queue_spool_error(err, errlen, "%s: unreadable or too large",
				  path);
		goto out;
	}
	text = xmalloc((size_t)st.st_size + 1);
	while (off < (size_t)st.st_size) {
		n = read(fd, text + off, (size_t)st.st_size - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			queue_spool_error(err, errlen, "read %s: %s", path,
					  n == 0 ? "short read"
						 : strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	text[off] = '\0';
	if (queue_env_parse(text, off, env_r, &why) == -1) {
		queue_spool_error(err, errlen, "%s: %s", path, why);
		goto out;
	}
	if (strcmp((*env_r)->id, id) != 0) {
		queue_spool_error(err, errlen, "%s: id inside is %s", path,
				  (*env_r)->id);
		queue_env_free(env_r);
		goto out;
	}
	r = 0;
out:
	free(text);
	close(fd);
	return r;
}

int
queue_spool_remove(const char *data_dir, const char *id, int durable, char *err,
		   size_t errlen)
{
	static const char *const suffixes[] = {".env", ".msg", ".hold"};
	char path[QUEUE_PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		if (queue_spool_path(path, sizeof(path), data_dir, id,
				     suffixes[i])) {
			queue_spool_error(err, errlen, "queue path too long");
			return -1;
		}
		if (unlink(path) == -1 && errno != ENOENT) {
			queue_spool_error(err, errlen, "unlink %s: %s", path,
					  strerror(errno));
			return -1;
		}
	}
	if (durable) {
		if (queue_spool_path(path, sizeof(path), data_dir, NULL,
				     NULL) ||
		    util_fsync_dir(path) == -1) {
			queue_spool_error(err, errlen, "fsync %s: %s", path,
					  strerror(errno));
			return -1;
		}
	}
	return 0;
}

int
queue_spool_quarantine(const char *data_dir, const char *id, char *err,
		       size_t errlen)
{
	static const char *const suffixes[] = {".env", ".msg"};
	char from[QUEUE_PATH_MAX], to[QUEUE_PATH_MAX + 16];
	char dir[QUEUE_PATH_MAX];
	size_t i;
	int n;

	if (queue_spool_path(dir, sizeof(dir), data_dir, NULL, NULL)) {
		queue_spool_error(err, errlen, "queue path too long");
		return -1;
	}
	n = snprintf(to, sizeof(to), "%s/corrupt", dir);
	if (n < 0 || (size_t)n >= sizeof(to) || util_mkdirs(to, 0700) == -1) {
		queue_spool_error(err, errlen, "mkdir %s: %s", to,
				  strerror(errno));
		return -1;
	}
	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		if (queue_spool_path(from, sizeof(from), data_dir, id,
				     suffixes[i])) {
			queue_spool_error(err, errlen, "queue path too long");
			return -1;
		}
		n = snprintf(to, sizeof(to), "%s/corrupt/%s%s", dir, id,
			     suffixes[i]);
		if (n < 0 || (size_t)n >= sizeof(to)) {
			queue_spool_error(err, errlen, "queue path too long");
			return -1;
		}
		if (rename(from, to) == -1 && errno != ENOENT) {
			queue_spool_error(err, errlen, "rename %s: %s", from,
					  strerror(errno));
			return -1;
		}
	}
	return util_fsync_dir(dir) == -1 ? -1 : 0;
}

int
queue_spool_is_held(const char *data_dir, const char *id)
{
	char path[QUEUE_PATH_MAX];

	if (queue_spool_path(path, sizeof(path), data_dir, id, ".hold"))
		return 0;
	return queue_spool_exists(path);
}

/* When name is "<id><suffix>" with a valid id, copies the id and returns
 * 1. */
static int
queue_spool_name_id(const char *name, const char *suffix, char *id)
{
	size_t sl = strlen(suffix);

	if (strlen(name) != QUEUE_ID_LEN + sl ||
	    strcmp(name + QUEUE_ID_LEN, suffix) != 0)
		return 0;
	memcpy(id, name, QUEUE_ID_LEN);
	id[QUEUE_ID_LEN] = '\0';
	return queue_env_check_id(id);
}

int
queue_spool_scan(const char *data_dir, int repair,
		 void (*cb)(const char *id, void *arg),
		 void (*report)(const char *what, const char *name, void *arg),
		 void *arg, char *err, size_t errlen)
{
	char dir[QUEUE_PATH_MAX], path[QUEUE_PATH_MAX], id[QUEUE_ID_LEN + 1];
	DIR *d;
	struct dirent *de;
	int count = 0, changed = 0;

	if (queue_spool_path(dir, sizeof(dir), data_dir, NULL, NULL)) {
		queue_spool_error(err, errlen, "queue path too long");
		return -1;
	}
	if (repair) {
		if ((d = opendir(dir)) == NULL) {
			queue_spool_error(err, errlen, "opendir %s: %s", dir,
					  strerror(errno));
			return -1;
		}
		while ((de = readdir(d)) != NULL) {
			const char *what = NULL;

			if (queue_spool_name_id(de->d_name, ".env.tmp", id)) {
				what = "removed unfinished envelope";
			} else if (queue_spool_name_id(de->d_name, ".msg",
						       id)) {
				queue_spool_path(path, sizeof(path), data_dir,
						 id, ".env");
				if (!queue_spool_exists(path))
					what = "removed message without "
					       "envelope";
			} else if (queue_spool_name_id(de->d_name, ".hold",
						       id)) {
				queue_spool_path(path, sizeof(path), data_dir,
						 id, ".env");
				if (!queue_spool_exists(path))
					what = "removed stale hold flag";
			} else if (queue_spool_name_id(de->d_name, ".env",
						       id)) {
				queue_spool_path(path, sizeof(path), data_dir,
						 id, ".msg");
				if (!queue_spool_exists(path)) {
					if (queue_spool_quarantine(
						data_dir, id, err, errlen) ==
					    -1) {
						closedir(d);
						return -1;
					}
					if (report)
						report("quarantined envelope "
						       "without message",
						       de->d_name, arg);
					changed = 1;
				}
				continue;
			}
			if (what == NULL)
				continue;
			if (unlinkat(dirfd(d), de->d_name, 0) == -1 &&
			    errno != ENOENT) {
				queue_spool_error(err, errlen,
						  "unlink %s/%s: %s", dir,
						  de->d_name, strerror(errno));
				closedir(d);
				return -1;
			}
			changed = 1;
			if (report)
				report(what, de->d_name, arg);
		}
		closedir(d);
		if (changed && util_fsync_dir(dir) == -1) {
			queue_spool_error(err, errlen, "fsync %s: %s", dir,
					  strerror(errno));
			return -1;
		}
	}
	if ((d = opendir(dir)) == NULL) {
		if (errno == ENOENT && !repair)
			return 0;
		queue_spool_error(err, errlen, "opendir %s: %s", dir,
				  strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (!queue_spool_name_id(de->d_name, ".env", id))
			continue;
		count++;
		if (cb)
			cb(id, arg);
	}
	closedir(d);
	return count;
}
