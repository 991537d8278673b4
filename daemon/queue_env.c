/* The .env text format (see queue_env.h). One "key value" per line; a
 * "rcpt" line starts a recipient and the recipient keys after it belong to
 * it; the last line is "end", so that a truncated file is detected:
 *
 *   postern-queue 1
 *   id 0123456789abcdef
 *   arrival 1700000000
 *   sender alice@example.test        ("<>" for the null reverse-path)
 *   envid QQ+2Bx                     (optional, xtext as received)
 *   ret full                         (optional: full or hdrs)
 *   body 8bitmime                    (optional)
 *   size 1234
 *   auth alice@example.test          (optional)
 *   rcpt bob@remote.test
 *   notify SUCCESS,FAILURE           (optional)
 *   orcpt rfc822;bob@remote.test     (optional)
 *   status pending
 *   dsn owed                         (optional)
 *   attempts 2
 *   next 1700000600
 *   last 1700000300                  (optional)
 *   reply 451 4.7.1 Try again later  (optional)
 *   mta mx.remote.test[127.0.0.2]:25 (optional)
 *   end
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"
#include "queue_env.h"
#include "util.h"

#define QUEUE_ENV_MAGIC "postern-queue 1"

/* A growing output buffer for queue_env_format. */
struct queue_env_buf {
	char *p;
	size_t len, cap;
};

static void queue_env_put(struct queue_env_buf *b, const char *key,
			  const char *value);
static void queue_env_put_num(struct queue_env_buf *b, const char *key,
			      int64_t value);
static int queue_env_parse_int(const char *s, int64_t min, int64_t max,
			       int64_t *out);
static int queue_env_parse_notify(const char *s, int *out);
static int queue_env_set(struct queue_env *env, struct queue_rcpt *rc,
			 const char *key, const char *val,
			 const char **error_r);

struct queue_env *
queue_env_new(void)
{
	return xcalloc(1, sizeof(struct queue_env));
}

void
queue_env_free(struct queue_env **envp)
{
	struct queue_env *env = *envp;

	if (env == NULL)
		return;
	free(env->rcpts);
	free(env);
	*envp = NULL;
}

struct queue_env *
queue_env_dup(const struct queue_env *env)
{
	struct queue_env *copy = xmalloc(sizeof(*copy));

	*copy = *env;
	copy->rcpt_cap = env->nrcpt ? env->nrcpt : 1;
	copy->rcpts = xcalloc(copy->rcpt_cap, sizeof(struct queue_rcpt));
	if (env->nrcpt)
		memcpy(copy->rcpts, env->rcpts,
		       env->nrcpt * sizeof(struct queue_rcpt));
	return copy;
}

struct queue_rcpt *
queue_env_add_rcpt(struct queue_env *env, const char *addr, int notify,
		   const char *orcpt)
{
	struct queue_rcpt *rc;

	if (env->nrcpt >= QUEUE_MAX_RCPTS || addr[0] == '\0' ||
	    strlen(addr) >= QUEUE_ADDR_MAX ||
	    (orcpt && strlen(orcpt) >= QUEUE_ORCPT_MAX))
		return NULL;
	if (env->nrcpt == env->rcpt_cap) {
		env->rcpt_cap = env->rcpt_cap ? env->rcpt_cap * 2 : 4;
		env->rcpts = xrealloc(
		    env->rcpts, env->rcpt_cap * sizeof(struct queue_rcpt));
	}
	rc = &env->rcpts[env->nrcpt++];
	memset(rc, 0, sizeof(*rc));
	strlcpy(rc->addr, addr, sizeof(rc->addr));
	rc->notify = notify;
	if (orcpt)
		strlcpy(rc->orcpt, orcpt, sizeof(rc->orcpt));
	rc->status = QUEUE_RCPT_PENDING;
	return rc;
}

const char *
queue_env_status_name(enum queue_rcpt_status status)
{
	switch (status) {
	case QUEUE_RCPT_PENDING:
		return "pending";
	case QUEUE_RCPT_SENT:
		return "sent";
	case QUEUE_RCPT_FAILED:
		return "failed";
	}
	return "pending";
}

void
queue_env_notify_format(int notify, char *buf, size_t len)
{
	static const struct {
		int bit;
		const char *name;
	} names[] = {
	    {DSN_NOTIFY_NEVER, "NEVER"},
	    {DSN_NOTIFY_SUCCESS, "SUCCESS"},
	    {DSN_NOTIFY_FAILURE, "FAILURE"},
	    {DSN_NOTIFY_DELAY, "DELAY"},
	};
	size_t i, o = 0;
	int n;

	buf[0] = '\0';
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(notify & names[i].bit))
			continue;
		n = snprintf(buf + o, len - o, "%s%s", o ? "," : "",
			     names[i].name);
		if (n < 0 || (size_t)n >= len - o)
			return;
		o += (size_t)n;
	}
}

/* Appends "key value\n"; CR, LF and NUL cannot occur in value (it is a C
 * string) except CR and LF, which become '?'. */
static void
queue_env_put(struct queue_env_buf *b, const char *key, const char *value)
{
	size_t kl = strlen(key), vl = strlen(value), i;

	while (b->len + kl + vl + 3 > b->cap) {
		b->cap = b->cap ? b->cap * 2 : 1024;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, key, kl);
	b->len += kl;
	b->p[b->len++] = ' ';
	for (i = 0; i < vl; i++)
		b->p[b->len++] =
		    (value[i] == '\r' || value[i] == '\n') ? '?' : value[i];
	b->p[b->len++] = '\n';
	b->p[b->len] = '\0';
}

static void
queue_env_put_num(struct queue_env_buf *b, const char *key, int64_t value)
{
	char num[32];

	snprintf(num, sizeof(num), "%" PRId64, value);
	queue_env_put(b, key, num);
}

char *
queue_env_format(const struct queue_env *env, size_t *len_r)
{
	struct queue_env_buf b = {NULL, 0, 0};
	char notify[64];
	size_t i;

	queue_env_put(&b, "postern-queue", "1");
	queue_env_put(&b, "id", env->id);
	queue_env_put_num(&b, "arrival", env->arrival);
	queue_env_put(&b, "sender", env->sender[0] ? env->sender : "<>");
	if (env->envid[0])
		queue_env_put(&b, "envid", env->envid);
	if (env->ret == DSN_RET_FULL)
		queue_env_put(&b, "ret", "full");
	else if (env->ret == DSN_RET_HDRS)
		queue_env_put(&b, "ret", "hdrs");
	if (env->body_8bit)
		queue_env_put(&b, "body", "8bitmime");
	queue_env_put_num(&b, "size", (int64_t)env->size);
	if (env->auth[0])
		queue_env_put(&b, "auth", env->auth);
	for (i = 0; i < env->nrcpt; i++) {
		const struct queue_rcpt *rc = &env->rcpts[i];

		queue_env_put(&b, "rcpt", rc->addr);
		if (rc->notify) {
			queue_env_notify_format(rc->notify, notify,
						sizeof(notify));
			queue_env_put(&b, "notify", notify);
		}
		if (rc->orcpt[0])
			queue_env_put(&b, "orcpt", rc->orcpt);
		queue_env_put(&b, "status", queue_env_status_name(rc->status));
		if (rc->dsn_owed)
			queue_env_put(&b, "dsn", "owed");
		queue_env_put_num(&b, "attempts", rc->attempts);
		queue_env_put_num(&b, "next", rc->next);
		if (rc->last)
			queue_env_put_num(&b, "last", rc->last);
		if (rc->reply[0])
			queue_env_put(&b, "reply", rc->reply);
		if (rc->mta[0])
			queue_env_put(&b, "mta", rc->mta);
	}
	queue_env_put(&b, "end", "");
	/* "end " would be odd; the value is empty, drop the space. */
	b.p[b.len - 2] = '\n';
	b.p[--b.len] = '\0';
	*len_r = b.len;
	return b.p;
}

static int
queue_env_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;
	int neg = s[0] == '-';

	if (s[neg] < '0' || s[neg] > '9')
		return -1;
	v = strtoll(s, &end, 10);
	if (*end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Parses "NEVER" or a comma list of SUCCESS, FAILURE, DELAY. */
static int
queue_env_parse_notify(const char *s, int *out)
{
	char word[16];
	const char *e;
	size_t len;
	int bits = 0;

	for (;;) {
		e = strchr(s, ',');
		len = e ? (size_t)(e - s) : strlen(s);
		if (len == 0 || len >= sizeof(word))
			return -1;
		memcpy(word, s, len);
		word[len] = '\0';
		if (strcmp(word, "NEVER") == 0)
			bits |= DSN_NOTIFY_NEVER;
		else if (strcmp(word, "SUCCESS") == 0)
			bits |= DSN_NOTIFY_SUCCESS;
		else if (strcmp(word, "FAILURE") == 0)
			bits |= DSN_NOTIFY_FAILURE;
		else if (strcmp(word, "DELAY") == 0)
			bits |= DSN_NOTIFY_DELAY;
		else
			return -1;
		if (e == NULL)
			break;
		s = e + 1;
	}
	/* RFC 3461 §4.1: NEVER stands alone. */
	if ((bits & DSN_NOTIFY_NEVER) && bits != DSN_NOTIFY_NEVER)
		return -1;
	*out = bits;
	return 0;
}

/* Applies one line. rc is the current recipient or NULL before the first
 * "rcpt" line. */
static int
queue_env_set(struct queue_env *env, struct queue_rcpt *rc, const char *key,
	      const char *val, const char **error_r)
{
	int64_t n;

#define COPY(dst)                                                              \
	do {                                                                   \
		if (strlcpy(dst, val, sizeof(dst)) >= sizeof(dst)) {           \
			*error_r = "value too long";                           \
			return -1;                                             \
		}                                                              \
	} while (0)
#define NUM(dst, min, max)                                                     \
	do {                                                                   \
		if (queue_env_parse_int(val, min, max, &n) == -1) {            \
			*error_r = "bad number";                               \
			return -1;                                             \
		}                                                              \
		dst = n;                                                       \
	} while (0)

	if (rc == NULL) {
		if (strcmp(key, "id") == 0) {
			if (!queue_env_check_id(val)) {
				*error_r = "bad queue id";
				return -1;
			}
			COPY(env->id);
		} else if (strcmp(key, "arrival") == 0) {
			NUM(env->arrival, 0, INT64_MAX);
		} else if (strcmp(key, "sender") == 0) {
			if (strcmp(val, "<>") == 0)
				env->sender[0] = '\0';
			else if (val[0] == '\0') {
				*error_r = "empty sender";
				return -1;
			} else
				COPY(env->sender);
		} else if (strcmp(key, "envid") == 0) {
			COPY(env->envid);
		} else if (strcmp(key, "ret") == 0) {
			if (strcmp(val, "full") == 0)
				env->ret = DSN_RET_FULL;
			else if (strcmp(val, "hdrs") == 0)
				env->ret = DSN_RET_HDRS;
			else {
				*error_r = "bad ret";
				return -1;
			}
		} else if (strcmp(key, "body") == 0) {
			if (strcmp(val, "8bitmime") != 0) {
				*error_r = "bad body";
				return -1;
			}
			env->body_8bit = 1;
		} else if (strcmp(key, "size") == 0) {
			NUM(env->size, 0, INT64_MAX);
		} else if (strcmp(key, "auth") == 0) {
			COPY(env->auth);
		} else {
			*error_r = "unknown key";
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "notify") == 0) {
		if (queue_env_parse_notify(val, &rc->notify) == -1) {
			*error_r = "bad notify";
			return -1;
		}
	} else if (strcmp(key, "orcpt") == 0) {
		COPY(rc->orcpt);
	} else if (strcmp(key, "status") == 0) {
		if (strcmp(val, "pending") == 0)
			rc->status = QUEUE_RCPT_PENDING;
		else if (strcmp(val, "sent") == 0)
			rc->status = QUEUE_RCPT_SENT;
		else if (strcmp(val, "failed") == 0)
			rc->status = QUEUE_RCPT_FAILED;
		else {
			*error_r = "bad status";
			return -1;
		}
	} else if (strcmp(key, "dsn") == 0) {
		if (strcmp(val, "owed") != 0) {
			*error_r = "bad dsn";
			return -1;
		}
		rc->dsn_owed = 1;
	} else if (strcmp(key, "attempts") == 0) {
		NUM(rc->attempts, 0, 1000000);
	} else if (strcmp(key, "next") == 0) {
		NUM(rc->next, 0, INT64_MAX);
	} else if (strcmp(key, "last") == 0) {
		NUM(rc->last, 0, INT64_MAX);
	} else if (strcmp(key, "reply") == 0) {
		COPY(rc->reply);
	} else if (strcmp(key, "mta") == 0) {
		COPY(rc->mta);
	} else {
		*error_r = "unknown key";
		return -1;
	}
	return 0;
#undef COPY
#undef NUM
}

int
queue_env_parse(const char *text, size_t len, struct queue_env **env_r,
		const char **error_r)
{
	struct queue_env *env;
	struct queue_rcpt *rc = NULL;
	char line[QUEUE_ORCPT_MAX + 64], *val;
	const char *p = text, *end = text + len, *nl;
	size_t ll;
	int lineno = 0, ended = 0, have_sender = 0, have_arrival = 0;

	*env_r = NULL;
	env = queue_env_new();
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL) {
			*error_r = "truncated (no line end)";
			goto fail;
		}
		ll = (size_t)(nl - p);
		if (ended) {
			*error_r = "data after end";
			goto fail;
		}
		if (ll >= sizeof(line) || memchr(p, '\0', ll) != NULL ||
		    memchr(p, '\r', ll) != NULL) {
			*error_r = "bad line";
			goto fail;
		}
		memcpy(line, p, ll);
		line[ll] = '\0';
		p = nl + 1;
		if (lineno++ == 0) {
			if (strcmp(line, QUEUE_ENV_MAGIC) != 0) {
				*error_r = "not a queue envelope (version)";
				goto fail;
			}
			continue;
		}
		if (strcmp(line, "end") == 0) {
			ended = 1;
			continue;
		}
		val = strchr(line, ' ');
		if (val == NULL) {
			*error_r = "line without value";
			goto fail;
		}
		*val++ = '\0';
		if (strcmp(line, "rcpt") == 0) {
			rc = queue_env_add_rcpt(env, val, 0, NULL);
			if (rc == NULL) {
				*error_r = "bad recipient";
				goto fail;
			}
			continue;
		}
		if (rc == NULL && strcmp(line, "sender") == 0)
			have_sender = 1;
		if (rc == NULL && strcmp(line, "arrival") == 0)
			have_arrival = 1;
		if (queue_env_set(env, rc, line, val, error_r) == -1)
			goto fail;
	}
	if (lineno == 0) {
		*error_r = "empty file";
		goto fail;
	}
	if (!ended) {
		*error_r = "truncated (no end line)";
		goto fail;
	}
	if (!env->id[0] || !have_sender || !have_arrival) {
		*error_r = "missing id, sender or arrival";
		goto fail;
	}
	if (env->nrcpt == 0) {
		*error_r = "no recipients";
		goto fail;
	}
	*env_r = env;
	return 0;
fail:
	queue_env_free(&env);
	return -1;
}

int
queue_env_check_id(const char *id)
{
	size_t i;

	for (i = 0; i < QUEUE_ID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		      (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return id[QUEUE_ID_LEN] == '\0';
}

uint64_t
queue_env_retry_delay(unsigned attempts, uint64_t min_backoff,
		      uint64_t max_backoff)
{
	uint64_t d = min_backoff;
	unsigned i;

	if (attempts == 0)
		return 0;
	for (i = 1; i < attempts && d < max_backoff; i++)
		d *= 2;
	return d < max_backoff ? d : max_backoff;
}
