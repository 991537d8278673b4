/* posternctl's view of the outbound queue (see queue_admin.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dsn.h"
#include "queue_admin.h"
#include "queue_spool.h"
#include "util.h"

/* State of one queue_admin_list run. */
struct queue_admin_lister {
	const char *data_dir;
	FILE *out;
	int n;
};

static void queue_admin_time(int64_t t, char *buf, size_t len);
static void queue_admin_list_one(const char *id, void *arg);
static int queue_admin_lookup(const char *data_dir, const char *id, char *err,
			      size_t errlen);

static void
queue_admin_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0) {
		strlcpy(buf, "-", len);
		return;
	}
	gmtime_r(&tt, &tm);
	if (strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		strlcpy(buf, "?", len);
}

static void
queue_admin_list_one(const char *id, void *arg)
{
	struct queue_admin_lister *l = arg;
	struct queue_env *env;
	char err[ERR_LEN], when[32];
	size_t i, pending = 0, sent = 0, failed = 0;
	int r;

	r = queue_spool_load(l->data_dir, id, &env, err, sizeof(err));
	if (r == 1)
		return; /* delivered or deleted meanwhile */
	if (r == -1) {
		fprintf(l->out, "%s  (unreadable: %s)\n", id, err);
		return;
	}
	for (i = 0; i < env->nrcpt; i++) {
		switch (env->rcpts[i].status) {
		case QUEUE_RCPT_PENDING:
			pending++;
			break;
		case QUEUE_RCPT_SENT:
			sent++;
			break;
		case QUEUE_RCPT_FAILED:
			failed++;
			break;
		}
	}
	queue_admin_time(env->arrival, when, sizeof(when));
	fprintf(l->out,
		"%s  %s  %" PRIu64 "  <%s>%s  pending=%zu sent=%zu "
		"failed=%zu\n",
		id, when, env->size, env->sender,
		queue_spool_is_held(l->data_dir, id) ? "  held" : "", pending,
		sent, failed);
	l->n++;
	queue_env_free(&env);
}

int
queue_admin_list(const char *data_dir, FILE *out, char *err, size_t errlen)
{
	struct queue_admin_lister l = {data_dir, out, 0};

	if (queue_spool_scan(data_dir, 0, queue_admin_list_one, NULL, &l, err,
			     errlen) == -1)
		return -1;
	fprintf(out, "%d message%s\n", l.n, l.n == 1 ? "" : "s");
	return 0;
}

/* 0 when id names a queued message, else QUEUE_ADMIN_NOTFOUND. */
static int
queue_admin_lookup(const char *data_dir, const char *id, char *err,
		   size_t errlen)
{
	char path[QUEUE_PATH_MAX];
	struct stat st;

	if (!queue_env_check_id(id) ||
	    queue_spool_path(path, sizeof(path), data_dir, id, ".env") ||
	    stat(path, &st) == -1) {
		snprintf(err, errlen, "no such message in the queue: %s", id);
		return QUEUE_ADMIN_NOTFOUND;
	}
	return 0;
}

int
queue_admin_show(const char *data_dir, const char *id, FILE *out, char *err,
		 size_t errlen)
{
	struct queue_env *env;
	char when[32], notify[64];
	size_t i;
	int r;

	if ((r = queue_admin_lookup(data_dir, id, err, errlen)) != 0)
		return r;
	r = queue_spool_load(data_dir, id, &env, err, errlen);
	if (r == 1) {
		snprintf(err, errlen, "no such message in the queue: %s", id);
		return QUEUE_ADMIN_NOTFOUND;
	}
	if (r == -1)
		return -1;
	queue_admin_time(env->arrival, when, sizeof(when));
	fprintf(out, "id: %s\narrival: %s\nsender: <%s>\nsize: %" PRIu64 "\n",
		env->id, when, env->sender, env->size);
	if (env->envid[0])
		fprintf(out, "envid: %s\n", env->envid);
	if (env->ret)
		fprintf(out, "ret: %s\n",
			env->ret == DSN_RET_FULL ? "FULL" : "HDRS");
	if (env->auth[0])
		fprintf(out, "auth: %s\n", env->auth);
	fprintf(out, "held: %s\n",
		queue_spool_is_held(data_dir, id) ? "yes" : "no");
	for (i = 0; i < env->nrcpt; i++) {
		const struct queue_rcpt *rc = &env->rcpts[i];

		fprintf(out, "recipient: <%s>\n  status: %s\n", rc->addr,
			queue_env_status_name(rc->status));
		if (rc->notify) {
			queue_env_notify_format(rc->notify, notify,
						sizeof(notify));
			fprintf(out, "  notify: %s\n", notify);
		}
		if (rc->orcpt[0])
			fprintf(out, "  orcpt: %s\n", rc->orcpt);
		fprintf(out, "  attempts: %u\n", rc->attempts);
		if (rc->status == QUEUE_RCPT_PENDING) {
			queue_admin_time(rc->next, when, sizeof(when));
			fprintf(out, "  next attempt: %s\n", when);
		}
		if (rc->last) {
			queue_admin_time(rc->last, when, sizeof(when));
			fprintf(out, "  last attempt: %s\n", when);
		}
		if (rc->reply[0])
			fprintf(out, "  last reply: %s\n", rc->reply);
		if (rc->mta[0])
			fprintf(out, "  remote: %s\n", rc->mta);
	}
	queue_env_free(&env);
	return 0;
}

int
queue_admin_hold(const char *data_dir, const char *id, char *err, size_t errlen)
{
	char path[QUEUE_PATH_MAX];
	int fd, r;

	if ((r = queue_admin_lookup(data_dir, id, err, errlen)) != 0)
		return r;
	queue_spool_path(path, sizeof(path), data_dir, id, ".hold");
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd == -1) {
		snprintf(err, errlen, "create %s: %s", path, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

int
queue_admin_release(const char *data_dir, const char *id, char *err,
		    size_t errlen)
{
	char path[QUEUE_PATH_MAX];
	int r;

	if ((r = queue_admin_lookup(data_dir, id, err, errlen)) != 0)
		return r;
	queue_spool_path(path, sizeof(path), data_dir, id, ".hold");
	if (unlink(path) == -1 && errno != ENOENT) {
		snprintf(err, errlen, "unlink %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int
queue_admin_delete(const char *data_dir, const char *id, char *err,
		   size_t errlen)
{
	int r;

	if ((r = queue_admin_lookup(data_dir, id, err, errlen)) != 0)
		return r;
	return queue_spool_remove(data_dir, id, 1, err, errlen);
}

int
queue_admin_flush(const char *data_dir, char *err, size_t errlen)
{
	char path[QUEUE_PATH_MAX + 8];
	int fd, n;

	n = snprintf(path, sizeof(path), "%s/queue/flush", data_dir);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errlen, "queue path too long");
		return -1;
	}
	/* The daemon compares the file's mtime with the last one it saw. */
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd == -1 || futimens(fd, NULL) == -1) {
		snprintf(err, errlen, "touch %s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}
