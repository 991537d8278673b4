/* Unit tests for the outbound queue's files: the .env format (round trip,
 * every malformed input refused), the retry schedule, and the spool and
 * admin operations on a real directory under a mkdtemp(3) root. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dsn.h"
#include "harness.h"
#include "queue_admin.h"
#include "queue_env.h"
#include "queue_spool.h"
#include "util.h"

static char root[256];

static struct queue_env *
sample_env(void)
{
	struct queue_env *env = queue_env_new();
	struct queue_rcpt *rc;

	strlcpy(env->id, "0123456789abcdef", sizeof(env->id));
	env->arrival = 1700000000;
	strlcpy(env->sender, "alice@example.test", sizeof(env->sender));
	strlcpy(env->envid, "QQ+2B314", sizeof(env->envid));
	env->ret = DSN_RET_HDRS;
	env->body_8bit = 1;
	env->size = 4321;
	strlcpy(env->auth, "alice@example.test", sizeof(env->auth));
	rc = queue_env_add_rcpt(env, "bob@remote.test",
				DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE,
				"rfc822;bob@remote.test");
	rc->attempts = 3;
	rc->next = 1700000900;
	rc->last = 1700000600;
	strlcpy(rc->reply, "451 4.7.1 Try again later", sizeof(rc->reply));
	strlcpy(rc->mta, "mx.remote.test[127.0.0.2]:25", sizeof(rc->mta));
	rc = queue_env_add_rcpt(env, "\"odd user\"@remote.test",
				DSN_NOTIFY_NEVER, NULL);
	rc->status = QUEUE_RCPT_FAILED;
	rc->dsn_owed = 1;
	rc = queue_env_add_rcpt(env, "carol@other.test", 0, NULL);
	rc->status = QUEUE_RCPT_SENT;
	return env;
}

static void
test_env_round_trip(void)
{
	struct queue_env *env = sample_env(), *back = NULL;
	const char *why = NULL;
	char *text, *text2;
	size_t len, len2, i;

	text = queue_env_format(env, &len);
	CHECK(len == strlen(text));
	CHECK(strncmp(text, "postern-queue 1\nid 0123456789abcdef\n", 36) == 0);
	CHECK(strstr(text, "\nnotify SUCCESS,FAILURE\n"));
	CHECK(strstr(text, "\nend\n") && text[len - 1] == '\n');
	CHECK(queue_env_parse(text, len, &back, &why) == 0);
	if (back == NULL) {
		fprintf(stderr, "  parse: %s\n", why);
		free(text);
		queue_env_free(&env);
		return;
	}
	CHECK_STR(back->id, env->id);
	CHECK(back->arrival == env->arrival);
	CHECK_STR(back->sender, env->sender);
	CHECK_STR(back->envid, env->envid);
	CHECK(back->ret == DSN_RET_HDRS);
	CHECK(back->body_8bit == 1);
	CHECK(back->size == 4321);
	CHECK_STR(back->auth, env->auth);
	CHECK(back->nrcpt == 3);
	for (i = 0; i < 3 && i < back->nrcpt; i++) {
		CHECK_STR(back->rcpts[i].addr, env->rcpts[i].addr);
		CHECK(back->rcpts[i].notify == env->rcpts[i].notify);
		CHECK_STR(back->rcpts[i].orcpt, env->rcpts[i].orcpt);
		CHECK(back->rcpts[i].status == env->rcpts[i].status);
		CHECK(back->rcpts[i].dsn_owed == env->rcpts[i].dsn_owed);
		CHECK(back->rcpts[i].attempts == env->rcpts[i].attempts);
		CHECK(back->rcpts[i].next == env->rcpts[i].next);
		CHECK(back->rcpts[i].last == env->rcpts[i].last);
		CHECK_STR(back->rcpts[i].reply, env->rcpts[i].reply);
		CHECK_STR(back->rcpts[i].mta, env->rcpts[i].mta);
	}
	/* Formatting the parsed copy gives the same bytes. */
	text2 = queue_env_format(back, &len2);
	CHECK(len2 == len && memcmp(text, text2, len) == 0);
	free(text2);
	free(text);
	queue_env_free(&back);

	/* The null sender and a reply with a line break in it. */
	env->sender[0] = '\0';
	strlcpy(env->rcpts[0].reply, "451 a\r\nb", sizeof(env->rcpts[0].reply));
	text = queue_env_format(env, &len);
	CHECK(strstr(text, "\nsender <>\n"));
	CHECK(strstr(text, "\nreply 451 a??b\n"));
	CHECK(queue_env_parse(text, len, &back, &why) == 0);
	if (back) {
		CHECK_STR(back->sender, "");
		CHECK_STR(back->rcpts[0].reply, "451 a??b");
	}
	queue_env_free(&back);
	free(text);
	queue_env_free(&env);
}

static void
test_env_parse_errors(void)
{
	static const char head[] = "postern-queue 1\nid 0123456789abcdef\n"
				   "arrival 1\nsender <>\n";
	static const struct {
		const char *text;
		const char *why; /* expected substring of the error */
	} cases[] = {
	    {"", "empty"},
	    {"postern-queue 2\nend\n", "version"},
	    {"postern-queue 1\nid 0123456789abcdef\narrival 1\nsender <>\n"
	     "rcpt a@b\nstatus pending\n",
	     "truncated"},
	    {"postern-queue 1\nid 0123456789abcdef\narrival 1\nsender <>\n"
	     "rcpt a@b\nend",
	     "truncated"},
	    {"postern-queue 1\nid 0123456789abcdef\narrival 1\nsender <>\n"
	     "end\n",
	     "no recipients"},
	    {"postern-queue 1\narrival 1\nsender <>\nrcpt a@b\nend\n",
	     "missing"},
	    {"postern-queue 1\nid 0123456789ABCDEF\nend\n", "bad queue id"},
	    {"postern-queue 1\nid 0123\nend\n", "bad queue id"},
	    {"postern-queue 1\nbogus 1\nend\n", "unknown key"},
	    {"postern-queue 1\narrival x\nend\n", "bad number"},
	    {"postern-queue 1\narrival -1\nend\n", "bad number"},
	    {"postern-queue 1\narrival 12x\nend\n", "bad number"},
	    {"postern-queue 1\nret some\nend\n", "bad ret"},
	    {"postern-queue 1\nbody binary\nend\n", "bad body"},
	    {"postern-queue 1\nsender \nend\n", "empty sender"},
	    {"postern-queue 1\nnovalue\nend\n", "without value"},
	    {"postern-queue 1\nsender a\r\nend\n", "bad line"},
	    {"postern-queue 1\nstatus sent\nend\n", "unknown key"},
	    {"postern-queue 1\nrcpt a@b\nnotify NEVER,SUCCESS\nend\n",
	     "bad notify"},
	    {"postern-queue 1\nrcpt a@b\nnotify SOMETIMES\nend\n",
	     "bad notify"},
	    {"postern-queue 1\nrcpt a@b\nstatus lost\nend\n", "bad status"},
	    {"postern-queue 1\nrcpt a@b\ndsn maybe\nend\n", "bad dsn"},
	    {"postern-queue 1\nrcpt a@b\nattempts 99999999\nend\n",
	     "bad number"},
	    {"postern-queue 1\nrcpt \nend\n", "bad recipient"},
	    {"postern-queue 1\nrcpt a@b\nsize 1\nend\n", "unknown key"},
	    {"postern-queue 1\nend\nid 0123456789abcdef\n", "after end"},
	};
	struct queue_env *env;
	const char *why;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		why = NULL;
		env = NULL;
		CHECK(queue_env_parse(cases[i].text, strlen(cases[i].text),
				      &env, &why) == -1);
		CHECK(env == NULL);
		if (why == NULL || strstr(why, cases[i].why) == NULL) {
			fprintf(stderr, "  case %zu: got \"%s\"\n", i,
				why ? why : "(null)");
			CHECK(0);
		}
		queue_env_free(&env);
	}
	/* A value with an embedded NUL is refused, not cut short. */
	{
		char text[128];
		size_t n = strlen(head);

		memcpy(text, head, n);
		memcpy(text + n, "rcpt a\0b\nend\n", 13);
		CHECK(queue_env_parse(text, n + 13, &env, &why) == -1);
	}
	/* A valid minimal one. */
	{
		char text[128];

		snprintf(text, sizeof(text), "%srcpt a@b\nend\n", head);
		CHECK(queue_env_parse(text, strlen(text), &env, &why) == 0);
		if (env) {
			CHECK(env->nrcpt == 1);
			CHECK(env->rcpts[0].status == QUEUE_RCPT_PENDING);
		}
		queue_env_free(&env);
	}
}

static void
test_retry_delay(void)
{
	static const struct {
		unsigned attempts;
		uint64_t min, max, want;
	} cases[] = {
	    {0, 300, 4000, 0},	   {1, 300, 4000, 300},
	    {2, 300, 4000, 600},   {3, 300, 4000, 1200},
	    {4, 300, 4000, 2400},  {5, 300, 4000, 4000},
	    {50, 300, 4000, 4000}, {1000000, 300, 4000, 4000},
	    {1, 1, 4, 1},	   {2, 1, 4, 2},
	    {3, 1, 4, 4},	   {4, 1, 4, 4},
	    {3, 500, 300, 300},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK(queue_env_retry_delay(cases[i].attempts, cases[i].min,
					    cases[i].max) == cases[i].want);
}

static void
test_notify_format(void)
{
	char buf[64];

	queue_env_notify_format(0, buf, sizeof(buf));
	CHECK_STR(buf, "");
	queue_env_notify_format(DSN_NOTIFY_NEVER, buf, sizeof(buf));
	CHECK_STR(buf, "NEVER");
	queue_env_notify_format(DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE |
				    DSN_NOTIFY_DELAY,
				buf, sizeof(buf));
	CHECK_STR(buf, "SUCCESS,FAILURE,DELAY");
}

static void
write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(write(fd, data, strlen(data)) == (ssize_t)strlen(data));
	close(fd);
}

static int
exists(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0;
}

static void
count_cb(const char *id, void *arg)
{
	(void)id;
	(*(int *)arg)++;
}

static void
test_spool_store_load(void)
{
	char data[512], spool[600], qdir[600], err[ERR_LEN];
	char id[QUEUE_ID_LEN + 1], name[64];
	struct queue_env *env = sample_env(), *back = NULL;
	struct stat st;
	int n = 0;

	snprintf(data, sizeof(data), "%s/store", root);
	snprintf(qdir, sizeof(qdir), "%s/queue", data);
	CHECK(mkdir(data, 0700) == 0);
	CHECK(queue_spool_init(data) == 0);
	CHECK(stat(qdir, &st) == 0 && (st.st_mode & 0777) == 0700);
	snprintf(spool, sizeof(spool), "%s/spoolfile", data);
	write_file(spool, "Subject: x\n\nbody\n");

	env->id[0] = '\0';
	CHECK(queue_spool_store(data, spool, env, id, err, sizeof(err)) == 0);
	CHECK(queue_env_check_id(id));
	CHECK_STR(env->id, id);
	snprintf(name, sizeof(name), "%s.msg", id);
	CHECK(exists(qdir, name));
	snprintf(name, sizeof(name), "%s.env", id);
	CHECK(exists(qdir, name));
	CHECK(queue_spool_sync(data, id, err, sizeof(err)) == 0);

	CHECK(queue_spool_load(data, id, &back, err, sizeof(err)) == 0);
	if (back) {
		CHECK(back->nrcpt == 3);
		CHECK_STR(back->sender, "alice@example.test");
	}
	queue_env_free(&back);
	CHECK(queue_spool_load(data, "ffffffffffffffff", &back, err,
			       sizeof(err)) == 1);
	CHECK(queue_spool_load(data, "../etc/passwd", &back, err,
			       sizeof(err)) == -1);

	/* A second store of the same env gets a different id. */
	{
		char id2[QUEUE_ID_LEN + 1];

		CHECK(queue_spool_store(data, spool, env, id2, err,
					sizeof(err)) == 0);
		CHECK(strcmp(id, id2) != 0);
		CHECK(queue_spool_scan(data, 0, count_cb, NULL, &n, err,
				       sizeof(err)) == 2);
		CHECK(n == 2);
		CHECK(queue_spool_remove(data, id2, 1, err, sizeof(err)) == 0);
	}

	/* save rewrites; after the .msg is gone it refuses. */
	strlcpy(env->id, id, sizeof(env->id));
	env->rcpts[0].attempts = 7;
	CHECK(queue_spool_save(data, env, err, sizeof(err)) == 0);
	CHECK(queue_spool_load(data, id, &back, err, sizeof(err)) == 0);
	CHECK(back && back->rcpts[0].attempts == 7);
	queue_env_free(&back);
	CHECK(queue_spool_remove(data, id, 1, err, sizeof(err)) == 0);
	CHECK(queue_spool_save(data, env, err, sizeof(err)) == 1);
	snprintf(name, sizeof(name), "%s.env", id);
	CHECK(!exists(qdir, name));
	n = 0;
	CHECK(queue_spool_scan(data, 0, count_cb, NULL, &n, err, sizeof(err)) ==
	      0);
	queue_env_free(&env);
}

static void
report_cb(const char *what, const char *name, void *arg)
{
	(void)what;
	(void)name;
	(*(int *)arg) += 100;
}

static void
test_spool_recovery(void)
{
	char data[512], qdir[600], path[1024], err[ERR_LEN];
	char *text;
	struct queue_env *env = sample_env();
	size_t len;
	int n = 0;

	snprintf(data, sizeof(data), "%s/recover", root);
	snprintf(qdir, sizeof(qdir), "%s/queue", data);
	CHECK(mkdir(data, 0700) == 0);
	CHECK(queue_spool_init(data) == 0);
	text = queue_env_format(env, &len);

	/* A complete message. */
	snprintf(path, sizeof(path), "%s/1111111111111111.msg", qdir);
	write_file(path, "x\n");
	strlcpy(env->id, "1111111111111111", sizeof(env->id));
	free(text);
	text = queue_env_format(env, &len);
	snprintf(path, sizeof(path), "%s/1111111111111111.env", qdir);
	write_file(path, text);
	/* A store interrupted before its envelope. */
	snprintf(path, sizeof(path), "%s/2222222222222222.msg", qdir);
	write_file(path, "x\n");
	snprintf(path, sizeof(path), "%s/2222222222222222.env.tmp", qdir);
	write_file(path, "postern-queue 1\n");
	/* An envelope whose message is gone. */
	snprintf(path, sizeof(path), "%s/3333333333333333.env", qdir);
	write_file(path, text);
	/* A stale hold flag, and a foreign file that is left alone. */
	snprintf(path, sizeof(path), "%s/4444444444444444.hold", qdir);
	write_file(path, "");
	snprintf(path, sizeof(path), "%s/README", qdir);
	write_file(path, "keep\n");

	/* Without repair nothing changes. */
	CHECK(queue_spool_scan(data, 0, count_cb, report_cb, &n, err,
			       sizeof(err)) == 2);
	CHECK(n == 2);
	CHECK(exists(qdir, "2222222222222222.msg"));

	n = 0;
	CHECK(queue_spool_scan(data, 1, count_cb, report_cb, &n, err,
			       sizeof(err)) == 1);
	CHECK(n == 4 * 100 + 1);
	CHECK(exists(qdir, "1111111111111111.msg"));
	CHECK(exists(qdir, "1111111111111111.env"));
	CHECK(!exists(qdir, "2222222222222222.msg"));
	CHECK(!exists(qdir, "2222222222222222.env.tmp"));
	CHECK(!exists(qdir, "3333333333333333.env"));
	CHECK(exists(qdir, "corrupt/3333333333333333.env"));
	CHECK(!exists(qdir, "4444444444444444.hold"));
	CHECK(exists(qdir, "README"));

	/* A corrupt envelope is reported by load, and quarantine keeps it. */
	snprintf(path, sizeof(path), "%s/1111111111111111.env", qdir);
	write_file(path, "postern-queue 1\nid 1111111111111111\n");
	{
		struct queue_env *back = NULL;

		CHECK(queue_spool_load(data, "1111111111111111", &back, err,
				       sizeof(err)) == -1);
		CHECK(strstr(err, "truncated") != NULL);
	}
	CHECK(queue_spool_quarantine(data, "1111111111111111", err,
				     sizeof(err)) == 0);
	CHECK(exists(qdir, "corrupt/1111111111111111.env"));
	CHECK(exists(qdir, "corrupt/1111111111111111.msg"));
	free(text);
	queue_env_free(&env);
}

static char *
capture(int (*fn)(const char *, const char *, FILE *, char *, size_t),
	const char *data, const char *id, int *r)
{
	char *buf = NULL, err[ERR_LEN];
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	*r = fn(data, id, out, err, sizeof(err));
	fclose(out);
	return buf;
}

static void
test_admin(void)
{
	char data[512], spool[600], qdir[600], err[ERR_LEN];
	char id[QUEUE_ID_LEN + 1], name[700], *out = NULL;
	struct queue_env *env = sample_env();
	size_t len = 0;
	FILE *fp;
	struct stat st1, st2;
	int r;

	snprintf(data, sizeof(data), "%s/admin", root);
	snprintf(qdir, sizeof(qdir), "%s/queue", data);
	CHECK(mkdir(data, 0700) == 0);
	CHECK(queue_spool_init(data) == 0);
	snprintf(spool, sizeof(spool), "%s/spoolfile", data);
	write_file(spool, "Subject: x\n\nbody\n");
	env->id[0] = '\0';
	CHECK(queue_spool_store(data, spool, env, id, err, sizeof(err)) == 0);

	fp = open_memstream(&out, &len);
	CHECK(queue_admin_list(data, fp, err, sizeof(err)) == 0);
	fclose(fp);
	CHECK(strstr(out, id) != NULL);
	CHECK(strstr(out, "<alice@example.test>") != NULL);
	CHECK(strstr(out, "pending=1 sent=1 failed=1") != NULL);
	CHECK(strstr(out, "\n1 message\n") != NULL);
	CHECK(strstr(out, "held") == NULL);
	free(out);

	out = capture(queue_admin_show, data, id, &r);
	CHECK(r == 0);
	CHECK(strstr(out, "recipient: <bob@remote.test>\n  status: pending\n"
			  "  notify: SUCCESS,FAILURE\n") != NULL);
	CHECK(strstr(out, "  last reply: 451 4.7.1 Try again later\n"));
	CHECK(strstr(out, "held: no\n"));
	free(out);
	out = capture(queue_admin_show, data, "0000000000000000", &r);
	CHECK(r == QUEUE_ADMIN_NOTFOUND);
	free(out);
	out = capture(queue_admin_show, data, "../../x", &r);
	CHECK(r == QUEUE_ADMIN_NOTFOUND);
	free(out);

	CHECK(queue_admin_hold(data, id, err, sizeof(err)) == 0);
	CHECK(queue_spool_is_held(data, id));
	out = capture(queue_admin_show, data, id, &r);
	CHECK(strstr(out, "held: yes\n"));
	free(out);
	CHECK(queue_admin_release(data, id, err, sizeof(err)) == 0);
	CHECK(!queue_spool_is_held(data, id));
	CHECK(queue_admin_hold(data, "ffffffffffffffff", err, sizeof(err)) ==
	      QUEUE_ADMIN_NOTFOUND);

	CHECK(queue_admin_flush(data, err, sizeof(err)) == 0);
	CHECK(stat(data, &st1) == 0);
	snprintf(name, sizeof(name), "%s/flush", qdir);
	CHECK(stat(name, &st1) == 0);
	usleep(20000);
	CHECK(queue_admin_flush(data, err, sizeof(err)) == 0);
	CHECK(stat(name, &st2) == 0);
	CHECK(st2.st_mtim.tv_sec != st1.st_mtim.tv_sec ||
	      st2.st_mtim.tv_nsec != st1.st_mtim.tv_nsec);

	CHECK(queue_admin_hold(data, id, err, sizeof(err)) == 0);
	CHECK(queue_admin_delete(data, id, err, sizeof(err)) == 0);
	snprintf(name, sizeof(name), "%s.msg", id);
	CHECK(!exists(qdir, name));
	snprintf(name, sizeof(name), "%s.hold", id);
	CHECK(!exists(qdir, name));
	CHECK(queue_admin_delete(data, id, err, sizeof(err)) ==
	      QUEUE_ADMIN_NOTFOUND);
	queue_env_free(&env);
}

int
main(void)
{
	char cmd[300];
	int rc;

	snprintf(root, sizeof(root), "/tmp/test_queue.XXXXXX");
	if (mkdtemp(root) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_env_round_trip);
	RUN(test_env_parse_errors);
	RUN(test_retry_delay);
	RUN(test_notify_format);
	RUN(test_spool_store_load);
	RUN(test_spool_recovery);
	RUN(test_admin);
	rc = HARNESS_DONE();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
	return rc;
}
