/* The outbound queue runner (see queue.h). Every queued message is kept in
 * memory as its envelope; a one-second tick finds due recipients, groups
 * them by destination and starts attempts within the connection limits.
 * An attempt resolves the destination, tries its addresses in order until
 * one gives an answer, and records each recipient's result. Every change
 * is written back by a "commit" job on a worker, which also writes and
 * delivers the DSNs that are owed, and removes the message once every
 * recipient is final and every report is out. The loop never touches the
 * disk except to read an envelope in queue_schedule and to stat(2) the
 * queue directory for changes made by posternctl. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "dns.h"
#include "dsn.h"
#include "log.h"
#include "maildir.h"
#include "queue.h"
#include "queue_spool.h"
#include "smtp_client.h"
#include "store.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

/* RFC 5321 §4.5.3.1.8: every server takes 100 recipients per message. */
#define QUEUE_RCPTS_PER_SESSION 100
#define QUEUE_TICK_SECONDS 1
#define QUEUE_DSN_RETRY 60 /* seconds before retrying a failed DSN */
#define QUEUE_RELAY_KEY "[relay]"
/* The reply recorded for a recipient delivered into a local Maildir. */
#define QUEUE_LOCAL_REPLY "delivered to mailbox"

struct queue_msg {
	struct queue_env *env;
	int held;
	int gone;	/* deleted by the administrator */
	int active;	/* attempts under way */
	int committing; /* a commit job is on a worker */
	int dirty;	/* changed since the last commit started */
	int64_t dsn_retry_at;
	struct queue_msg *prev, *next;
};

/* Open sessions towards one destination (a domain, or the relay). */
struct queue_dest {
	char key[DNS_NAME_MAX];
	unsigned active;
	struct queue_dest *next;
};

/* One delivery attempt of some recipients of one message. */
struct queue_attempt {
	struct queue_msg *msg;
	struct queue_dest *dest;
	size_t *idx; /* recipient indexes in msg->env */
	size_t n;
	int *settled; /* per idx: result known */
	int *codes;   /* per idx: final code of this attempt */
	char (*replies)[SMTP_CLIENT_REPLY_MAX];
	char (*mtas)[QUEUE_MTA_MAX];
	struct dns_result *dns;
	size_t host_i, addr_i;
	int tls_off;	/* retry the address without TLS */
	int dsn_passed; /* the server took NOTIFY/ORCPT */
	char tls[128];
	char err[SMTP_CLIENT_REPLY_MAX]; /* last session-level error */
	char err_mta[QUEUE_MTA_MAX];
	/* The current session. */
	struct smtp_client *client;
	struct smtp_client_params params;
	struct smtp_client_rcpt *crcpts;
	size_t *cmap; /* crcpts[i] is idx[cmap[i]] */
	size_t nc;
	struct sockaddr_storage sa;
	char host[DNS_NAME_MAX];
	char msg_path[QUEUE_PATH_MAX];
	/* Relay credentials and TLS context as they were when the session
	 * started: a reload (SIGHUP) does not change them under it. */
	char auth_user[QUEUE_RELAY_FIELD_MAX], auth_pass[QUEUE_RELAY_FIELD_MAX];
	SSL_CTX *relay_ctx; /* a reference, or NULL */
	struct queue_attempt *prev, *next;
};

/* A commit: the envelope to write (a snapshot), and the DSN to send. */
struct queue_commit {
	struct queue_msg *msg; /* touched in done only */
	struct queue_env *snap;
	char data_dir[1024];
	char hostname[256];
	char spool_dir[1100];
	uint64_t bounce_size_limit;
	int remove; /* everything final: delete the files */
	/* The DSN. */
	int dsn;	 /* a DSN is to be sent */
	size_t *dsn_idx; /* recipients it reports */
	size_t ndsn;
	char **maildirs; /* local targets of the sender */
	size_t nmaildirs;
	char **remote; /* remote targets of the sender */
	size_t nremote;
	/* Results. */
	int dsn_ok;
	char dsn_queued[QUEUE_ID_LEN + 1];
	int gone;
	int ok;
	char err[ERR_LEN];
};

static struct server *queue_srv;
static const struct queue_config *queue_cfg;
static struct queue_msg *queue_msgs;
static struct queue_dest *queue_dests;
static struct queue_attempt *queue_attempts;
static unsigned queue_active;
static struct event *queue_tick_ev, *queue_kick_ev;
static struct timespec queue_dir_mtime, queue_flush_mtime;
static char queue_dir[QUEUE_PATH_MAX];
static char queue_relay_user[QUEUE_RELAY_FIELD_MAX],
    queue_relay_pass[QUEUE_RELAY_FIELD_MAX];
static SSL_CTX *queue_relay_ctx; /* own context when ca_file is set */

/* Messages */
static struct queue_msg *queue_msg_find(const char *id);
static struct queue_msg *queue_msg_add(struct queue_env *env);
static void queue_msg_free(struct queue_msg *m);
static void queue_load_one(const char *id, void *arg);
static void queue_report_repair(const char *what, const char *name, void *arg);

/* The runner */
static void queue_on_tick(evutil_socket_t fd, short what, void *arg);
static void queue_kick(void);
static void queue_run(void);
static void queue_check_admin(void);
static void queue_expire(struct queue_msg *m, int64_t now);
static void queue_start_due(struct queue_msg *m, int64_t now);
static struct queue_dest *queue_dest_get(const char *key);
static const char *queue_rcpt_domain(const char *addr);

/* Attempts */
static void queue_attempt_start(struct queue_msg *m, struct queue_dest *d,
				const size_t *idx, size_t n);
static void queue_attempt_on_dns(const struct dns_result *res, void *arg);
static void queue_attempt_next(struct queue_attempt *a);
static void queue_attempt_on_done(const struct smtp_client_outcome *o,
				  void *arg);
static void queue_attempt_settle_all(struct queue_attempt *a, int code,
				     const char *reply, const char *mta);
static void queue_attempt_finish(struct queue_attempt *a);
static void queue_attempt_free(struct queue_attempt *a);
static void queue_log_result(const struct queue_msg *m,
			     const struct queue_rcpt *rc, const char *event,
			     const char *tls);

/* Commits and DSNs */
static void queue_commit_maybe(struct queue_msg *m);
static int queue_dsn_targets(struct queue_commit *cm, const char *sender);
static void queue_commit_work(void *arg);
static void queue_commit_done(void *arg);
static int queue_dsn_build(struct queue_commit *cm, char *path, size_t len,
			   uint64_t *size_lf, uint64_t *size_crlf);
static void queue_commit_free(struct queue_commit *cm);
static int queue_dsn_wanted(const struct queue_env *env,
			    const struct queue_rcpt *rc);
static int queue_rcpt_is_local(const struct queue_rcpt *rc);

/* Setup */
static int queue_read_auth_file(const char *path, char *user, char *pass,
				char *err, size_t errlen);
static int queue_load_relay_ctx(const char *ca_file, SSL_CTX **ctx_r, char *err,
				size_t errlen);
static void queue_errorf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats a message for a log line or a DSN, where truncation only
 * shortens the text. */
static void
queue_errorf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static struct queue_msg *
queue_msg_find(const char *id)
{
	struct queue_msg *m;

	for (m = queue_msgs; m; m = m->next)
		if (strcmp(m->env->id, id) == 0)
			return m;
	return NULL;
}

static struct queue_msg *
queue_msg_add(struct queue_env *env)
{
	struct queue_msg *m = xcalloc(1, sizeof(*m));
	size_t i;

	m->env = env;
	m->held = queue_spool_is_held(queue_srv->cfg->data_dir, env->id);
	for (i = 0; i < env->nrcpt; i++)
		env->rcpts[i].inflight = 0;
	m->next = queue_msgs;
	if (queue_msgs)
		queue_msgs->prev = m;
	queue_msgs = m;
	return m;
}

static void
queue_msg_free(struct queue_msg *m)
{
	if (m->prev)
		m->prev->next = m->next;
	else if (queue_msgs == m)
		queue_msgs = m->next;
	if (m->next)
		m->next->prev = m->prev;
	queue_env_free(&m->env);
	free(m);
}

static void
queue_report_repair(const char *what, const char *name, void *arg)
{
	(void)arg;
	log_warnx("queue recovery: %s file=%s", what, name);
}

/* At start: loads one envelope, quarantining a corrupt one. */
static void
queue_load_one(const char *id, void *arg)
{
	const char *data_dir = queue_srv->cfg->data_dir;
	struct queue_env *env = NULL;
	char err[ERR_LEN], qerr[ERR_LEN];
	int *count = arg;

	if (queue_spool_load(data_dir, id, &env, err, sizeof(err)) != 0) {
		log_warnx("%s queue corrupt-envelope error=\"%s\"", id, err);
		if (queue_spool_quarantine(data_dir, id, qerr, sizeof(qerr)))
			log_warnx("%s queue quarantine-failed error=\"%s\"", id,
				  qerr);
		return;
	}
	queue_msg_add(env);
	(*count)++;
}

/* Reads "user\npassword\n" into user and pass (QUEUE_RELAY_FIELD_MAX
 * each). Returns 0, or -1 with a message in err. */
static int
queue_read_auth_file(const char *path, char *user, char *pass, char *err,
		     size_t errlen)
{
	char buf[600], *nl;
	struct stat st;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "[relay] auth_file %s: %s", path,
			 strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & 007))
		log_warnx("queue relay auth_file %s is readable by others; "
			  "chmod 600 it",
			  path);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		snprintf(err, errlen, "[relay] auth_file %s: empty", path);
		return -1;
	}
	buf[n] = '\0';
	/* Line 1: user name; line 2: password. */
	if ((nl = strchr(buf, '\n')) == NULL) {
		snprintf(err, errlen,
			 "[relay] auth_file %s: expected the "
			 "user name on line 1 and the password on line 2",
			 path);
		explicit_bzero(buf, sizeof(buf));
		return -1;
	}
	*nl = '\0';
	strlcpy(user, buf, QUEUE_RELAY_FIELD_MAX);
	nl[1 + strcspn(nl + 1, "\r\n")] = '\0';
	strlcpy(pass, nl + 1, QUEUE_RELAY_FIELD_MAX);
	explicit_bzero(buf, sizeof(buf));
	if (user[0] == '\0' || pass[0] == '\0') {
		snprintf(err, errlen,
			 "[relay] auth_file %s: empty user name "
			 "or password",
			 path);
		return -1;
	}
	return 0;
}

/* A client context that trusts only ca_file. Returns 0, or -1 with a
 * message in err. */
static int
queue_load_relay_ctx(const char *ca_file, SSL_CTX **ctx_r, char *err,
		     size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		snprintf(err, errlen, "[relay] ca_file %s: cannot load",
			 ca_file);
		SSL_CTX_free(ctx);
		return -1;
	}
	*ctx_r = ctx;
	return 0;
}

int
queue_reload_relay(const struct queue_config *fresh, char *err, size_t errlen)
{
	char user[QUEUE_RELAY_FIELD_MAX] = "", pass[QUEUE_RELAY_FIELD_MAX] = "";
	SSL_CTX *ctx = NULL;

	if (strcmp(fresh->relay_host, queue_cfg->relay_host) != 0 ||
	    fresh->relay_port != queue_cfg->relay_port) {
		snprintf(err, errlen,
			 "a new [relay] host or port needs a restart");
		return -1;
	}
	if (fresh->relay_host[0] == '\0')
		return 0;
	if (fresh->relay_auth_file[0] &&
	    queue_read_auth_file(fresh->relay_auth_file, user, pass, err,
				 errlen) == -1) {
		explicit_bzero(pass, sizeof(pass));
		return -1;
	}
	if (fresh->relay_ca_file[0] &&
	    queue_load_relay_ctx(fresh->relay_ca_file, &ctx, err, errlen) ==
		-1) {
		explicit_bzero(pass, sizeof(pass));
		return -1;
	}
	/* Sessions already running hold their own copies. */
	strlcpy(queue_relay_user, user, sizeof(queue_relay_user));
	strlcpy(queue_relay_pass, pass, sizeof(queue_relay_pass));
	explicit_bzero(pass, sizeof(pass));
	SSL_CTX_free(queue_relay_ctx);
	queue_relay_ctx = ctx;
	return 0;
}

int
queue_init(struct server *srv, const struct queue_config *qc, char *err,
	   size_t errlen)
{
	struct timeval tick = {QUEUE_TICK_SECONDS, 0};
	char serr[ERR_LEN];
	struct stat st;
	int count = 0;

	queue_srv = srv;
	queue_cfg = qc;
	if (queue_spool_init(srv->cfg->data_dir) == -1 ||
	    queue_spool_path(queue_dir, sizeof(queue_dir), srv->cfg->data_dir,
			     NULL, NULL) == -1) {
		snprintf(err, errlen, "cannot create %s/queue: %s",
			 srv->cfg->data_dir, strerror(errno));
		return -1;
	}
	if (queue_spool_scan(srv->cfg->data_dir, 1, NULL, queue_report_repair,
			     NULL, serr, sizeof(serr)) == -1 ||
	    queue_spool_scan(srv->cfg->data_dir, 0, queue_load_one, NULL,
			     &count, serr, sizeof(serr)) == -1) {
		snprintf(err, errlen, "queue recovery: %s", serr);
		return -1;
	}
	if (stat(queue_dir, &st) == 0)
		queue_dir_mtime = st.st_mtim;
	{
		char flush[QUEUE_PATH_MAX + 8];

		snprintf(flush, sizeof(flush), "%s/flush", queue_dir);
		if (stat(flush, &st) == 0)
			queue_flush_mtime = st.st_mtim;
	}
	if (qc->relay_host[0]) {
		if (qc->relay_auth_file[0] &&
		    queue_read_auth_file(qc->relay_auth_file, queue_relay_user,
					 queue_relay_pass, err, errlen) == -1)
			return -1;
		if (qc->relay_ca_file[0] &&
		    queue_load_relay_ctx(qc->relay_ca_file, &queue_relay_ctx,
					 err, errlen) == -1)
			return -1;
	}
	if (dns_init(srv->base, qc->dns_servers, err, errlen) == -1)
		return -1;
	queue_tick_ev =
	    event_new(srv->base, -1, EV_PERSIST, queue_on_tick, NULL);
	queue_kick_ev = evtimer_new(srv->base, queue_on_tick, NULL);
	if (queue_tick_ev == NULL || queue_kick_ev == NULL ||
	    event_add(queue_tick_ev, &tick) == -1)
		fatalx("queue: cannot add the runner timer");
	log_info("queue started messages=%d mode=%s", count,
		 qc->relay_host[0] ? "relay" : "mx");
	queue_kick();
	return 0;
}

void
queue_shutdown(void)
{
	struct queue_attempt *a, *anext;
	struct queue_dest *d, *dnext;

	if (queue_srv == NULL)
		return;
	for (a = queue_attempts; a; a = anext) {
		anext = a->next;
		smtp_client_abort(&a->client);
		queue_attempt_free(a);
	}
	dns_shutdown();
	while (queue_msgs)
		queue_msg_free(queue_msgs);
	for (d = queue_dests; d; d = dnext) {
		dnext = d->next;
		free(d);
	}
	queue_dests = NULL;
	if (queue_tick_ev)
		event_free(queue_tick_ev);
	if (queue_kick_ev)
		event_free(queue_kick_ev);
	queue_tick_ev = queue_kick_ev = NULL;
	if (queue_relay_ctx)
		SSL_CTX_free(queue_relay_ctx);
	queue_relay_ctx = NULL;
	explicit_bzero(queue_relay_pass, sizeof(queue_relay_pass));
	queue_srv = NULL;
}

void
queue_schedule(const char *id)
{
	struct queue_env *env = NULL;
	char err[ERR_LEN];
	int r;

	if (queue_srv == NULL || queue_msg_find(id))
		return;
	/* A small file just written: reading it does not block the loop
	 * in any way that matters. */
	r = queue_spool_load(queue_srv->cfg->data_dir, id, &env, err,
			     sizeof(err));
	if (r != 0) {
		log_warnx("%s queue cannot-schedule error=\"%s\"", id,
			  r == 1 ? "no such envelope" : err);
		return;
	}
	queue_msg_add(env);
	log_info("%s queue queued from=<%s> nrcpt=%zu size=%" PRIu64, id,
		 env->sender, env->nrcpt, env->size);
	queue_kick();
}

/* Runs the scheduler at the next loop iteration (batching schedule calls
 * and attempt completions). */
static void
queue_kick(void)
{
	struct timeval zero = {0, 0};

	if (queue_kick_ev && !evtimer_pending(queue_kick_ev, NULL))
		evtimer_add(queue_kick_ev, &zero);
}

static void
queue_on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	queue_check_admin();
	queue_run();
}

/* posternctl changes files only: a changed queue directory means an .env
 * or .hold may have come or gone; a newer flush file means "now". */
static void
queue_check_admin(void)
{
	char path[QUEUE_PATH_MAX + 8];
	struct queue_msg *m, *next;
	struct stat st;
	size_t i;

	snprintf(path, sizeof(path), "%s/flush", queue_dir);
	if (stat(path, &st) == 0 &&
	    (st.st_mtim.tv_sec != queue_flush_mtime.tv_sec ||
	     st.st_mtim.tv_nsec != queue_flush_mtime.tv_nsec)) {
		queue_flush_mtime = st.st_mtim;
		log_info("queue flush requested");
		for (m = queue_msgs; m; m = m->next)
			for (i = 0; i < m->env->nrcpt; i++)
				if (m->env->rcpts[i].status ==
				    QUEUE_RCPT_PENDING)
					m->env->rcpts[i].next = 0;
	}
	if (stat(queue_dir, &st) == -1 ||
	    (st.st_mtim.tv_sec == queue_dir_mtime.tv_sec &&
	     st.st_mtim.tv_nsec == queue_dir_mtime.tv_nsec))
		return;
	queue_dir_mtime = st.st_mtim;
	for (m = queue_msgs; m; m = next) {
		int held;

		next = m->next;
		/* A commit job may be removing the files right now. */
		if (m->committing)
			continue;
		if (queue_spool_path(path, sizeof(path),
				     queue_srv->cfg->data_dir, m->env->id,
				     ".env") == 0 &&
		    stat(path, &st) == -1 && errno == ENOENT) {
			if (!m->gone)
				log_info("%s queue removed by administrator",
					 m->env->id);
			m->gone = 1;
			if (m->active == 0 && !m->committing)
				queue_msg_free(m);
			continue;
		}
		held =
		    queue_spool_is_held(queue_srv->cfg->data_dir, m->env->id);
		if (held != m->held)
			log_info("%s queue %s", m->env->id,
				 held ? "held" : "released");
		m->held = held;
	}
}

static void
queue_run(void)
{
	struct queue_msg *m, *next;
	int64_t now = (int64_t)time(NULL);

	for (m = queue_msgs; m; m = next) {
		next = m->next;
		if (m->gone)
			continue;
		if (!m->held)
			queue_expire(m, now);
		if (!m->held)
			queue_start_due(m, now);
		queue_commit_maybe(m);
	}
}

/* Pending recipients of a message past its lifetime fail (RFC 3464 Action
 * failed, Status 4.4.7). */
static void
queue_expire(struct queue_msg *m, int64_t now)
{
	struct queue_env *env = m->env;
	size_t i;

	if (now < env->arrival + (int64_t)queue_cfg->max_lifetime)
		return;
	for (i = 0; i < env->nrcpt; i++) {
		struct queue_rcpt *rc = &env->rcpts[i];

		if (rc->status != QUEUE_RCPT_PENDING || rc->inflight)
			continue;
		rc->status = QUEUE_RCPT_FAILED;
		if (rc->reply[0] == '\0')
			strlcpy(rc->reply,
				"451 4.4.7 Message expired before "
				"any delivery attempt",
				sizeof(rc->reply));
		rc->dsn_owed = queue_dsn_wanted(env, rc);
		queue_log_result(m, rc, "expired", NULL);
		m->dirty = 1;
	}
}

static const char *
queue_rcpt_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : "";
}

static struct queue_dest *
queue_dest_get(const char *key)
{
	struct queue_dest *d;

	for (d = queue_dests; d; d = d->next)
		if (util_strcaseeq(d->key, key))
			return d;
	d = xcalloc(1, sizeof(*d));
	strlcpy(d->key, key, sizeof(d->key));
	util_lowercase(d->key);
	d->next = queue_dests;
	queue_dests = d;
	return d;
}

/* Starts attempts for the due recipients of m: one per destination and up
 * to QUEUE_RCPTS_PER_SESSION recipients, within the connection limits. */
static void
queue_start_due(struct queue_msg *m, int64_t now)
{
	struct queue_env *env = m->env;
	size_t i, j, n, *idx;
	int relay = queue_cfg->relay_host[0] != '\0';

	idx = xcalloc(env->nrcpt, sizeof(*idx));
	for (i = 0; i < env->nrcpt; i++) {
		struct queue_rcpt *rc = &env->rcpts[i];
		const char *key;
		struct queue_dest *d;

		if (rc->status != QUEUE_RCPT_PENDING || rc->inflight ||
		    rc->next > now)
			continue;
		if (queue_active >= queue_cfg->max_connections)
			break;
		key = relay ? QUEUE_RELAY_KEY : queue_rcpt_domain(rc->addr);
		d = queue_dest_get(key);
		if (d->active >= queue_cfg->max_per_destination)
			continue;
		/* Everything due for the same destination goes along. */
		n = 0;
		for (j = i; j < env->nrcpt && n < QUEUE_RCPTS_PER_SESSION;
		     j++) {
			struct queue_rcpt *r2 = &env->rcpts[j];

			if (r2->status != QUEUE_RCPT_PENDING || r2->inflight ||
			    r2->next > now)
				continue;
			if (!relay &&
			    !util_strcaseeq(queue_rcpt_domain(r2->addr), key))
				continue;
			idx[n++] = j;
		}
		queue_attempt_start(m, d, idx, n);
	}
	free(idx);
}

static void
queue_attempt_start(struct queue_msg *m, struct queue_dest *d,
		    const size_t *idx, size_t n)
{
	struct queue_attempt *a = xcalloc(1, sizeof(*a));
	size_t i;

	a->msg = m;
	a->dest = d;
	a->n = n;
	a->idx = xcalloc(n, sizeof(*a->idx));
	memcpy(a->idx, idx, n * sizeof(*idx));
	a->settled = xcalloc(n, sizeof(*a->settled));
	a->codes = xcalloc(n, sizeof(*a->codes));
	a->replies = xcalloc(n, sizeof(*a->replies));
	a->mtas = xcalloc(n, sizeof(*a->mtas));
	for (i = 0; i < n; i++)
		m->env->rcpts[idx[i]].inflight = 1;
	queue_spool_path(a->msg_path, sizeof(a->msg_path),
			 queue_srv->cfg->data_dir, m->env->id, ".msg");
	m->active++;
	d->active++;
	queue_active++;
	a->next = queue_attempts;
	if (queue_attempts)
		queue_attempts->prev = a;
	queue_attempts = a;
	if (queue_cfg->relay_host[0])
		dns_resolve_host(queue_cfg->relay_host, queue_attempt_on_dns,
				 a);
	else
		dns_resolve_mx(d->key, queue_attempt_on_dns, a);
}

static void
queue_attempt_on_dns(const struct dns_result *res, void *arg)
{
	struct queue_attempt *a = arg;
	int relay = queue_cfg->relay_host[0] != '\0';
	char reply[SMTP_CLIENT_REPLY_MAX];
	size_t i, keep;

	if (res->status != DNS_OK) {
		if (relay || res->status == DNS_TEMPFAIL) {
			/* A relay host we cannot find is our problem, not
			 * the recipients': never bounce for it. */
			snprintf(reply, sizeof(reply), "451 4.4.3 %s",
				 res->error);
			queue_attempt_settle_all(a, 451, reply, "");
		} else if (res->status == DNS_NULL_MX) {
			/* RFC 7505 §4.2. */
			snprintf(reply, sizeof(reply), "556 5.1.10 %s",
				 res->error);
			queue_attempt_settle_all(a, 556, reply, "");
		} else {
			snprintf(reply, sizeof(reply), "550 5.1.2 %s",
				 res->error);
			queue_attempt_settle_all(a, 550, reply, "");
		}
		queue_attempt_finish(a);
		return;
	}
	a->dns = xmalloc(sizeof(*a->dns));
	*a->dns = *res;
	if (!relay) {
		/* RFC 5321 §5.1: when we are one of the MX hosts, only more
		 * preferred ones may be tried. */
		for (keep = 0; keep < a->dns->nhosts; keep++)
			if (util_strcaseeq(a->dns->hosts[keep].name,
					   queue_srv->cfg->hostname))
				break;
		if (keep < a->dns->nhosts) {
			unsigned pref = a->dns->hosts[keep].pref;

			for (i = 0; i < a->dns->nhosts; i++)
				if (a->dns->hosts[i].pref >= pref)
					break;
			a->dns->nhosts = i;
		}
		if (a->dns->nhosts == 0) {
			snprintf(reply, sizeof(reply),
				 "554 5.4.6 mail for %s "
				 "loops back to myself",
				 a->dest->key);
			queue_attempt_settle_all(a, 554, reply, "");
			queue_attempt_finish(a);
			return;
		}
	}
	queue_attempt_next(a);
}

/* Starts a session with the next address, for the recipients without a
 * result yet; finishes the attempt when none is left. */
static void
queue_attempt_next(struct queue_attempt *a)
{
	const struct queue_env *env = a->msg->env;
	struct smtp_client_params *p = &a->params;
	const struct dns_host *h;
	int relay = queue_cfg->relay_host[0] != '\0';
	uint16_t port;
	size_t i;

	for (;;) {
		if (a->host_i >= a->dns->nhosts) {
			queue_attempt_finish(a);
			return;
		}
		h = &a->dns->hosts[a->host_i];
		if (a->addr_i < h->naddr)
			break;
		a->host_i++;
		a->addr_i = 0;
	}
	free(a->crcpts);
	free(a->cmap);
	a->crcpts = xcalloc(a->n, sizeof(*a->crcpts));
	a->cmap = xcalloc(a->n, sizeof(*a->cmap));
	a->nc = 0;
	for (i = 0; i < a->n; i++) {
		const struct queue_rcpt *rc = &env->rcpts[a->idx[i]];

		if (a->settled[i])
			continue;
		a->crcpts[a->nc].addr = rc->addr;
		a->crcpts[a->nc].notify = rc->notify;
		a->crcpts[a->nc].orcpt = rc->orcpt[0] ? rc->orcpt : NULL;
		a->cmap[a->nc++] = i;
	}
	if (a->nc == 0) {
		queue_attempt_finish(a);
		return;
	}
	memset(&a->sa, 0, sizeof(a->sa));
	memcpy(&a->sa, &h->addr[a->addr_i], h->addrlen[a->addr_i]);
	port = (uint16_t)(relay ? queue_cfg->relay_port
				: queue_cfg->destination_port);
	if (a->sa.ss_family == AF_INET)
		((struct sockaddr_in *)&a->sa)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&a->sa)->sin6_port = htons(port);
	/* Relay: the configured name, which its certificate must carry. */
	strlcpy(a->host, relay ? queue_cfg->relay_host : h->name,
		sizeof(a->host));

	memset(p, 0, sizeof(*p));
	p->log_id = env->id;
	p->helo = queue_srv->cfg->hostname;
	p->host = a->host;
	p->sa = (const struct sockaddr *)&a->sa;
	p->salen = h->addrlen[a->addr_i];
	if (relay) {
		p->tls = SMTP_CLIENT_TLS_MUST;
		p->tls_verify = queue_cfg->relay_tls_verify;
		SSL_CTX_free(a->relay_ctx);
		a->relay_ctx = NULL;
		if (queue_relay_ctx && SSL_CTX_up_ref(queue_relay_ctx))
			a->relay_ctx = queue_relay_ctx;
		p->ssl_ctx = a->relay_ctx ? a->relay_ctx : tls_client_ctx();
		if (queue_relay_user[0]) {
			strlcpy(a->auth_user, queue_relay_user,
				sizeof(a->auth_user));
			strlcpy(a->auth_pass, queue_relay_pass,
				sizeof(a->auth_pass));
			p->auth_user = a->auth_user;
			p->auth_pass = a->auth_pass;
		}
	} else {
		p->tls = (queue_cfg->starttls && !a->tls_off)
			     ? SMTP_CLIENT_TLS_MAY
			     : SMTP_CLIENT_TLS_NONE;
		p->ssl_ctx = p->tls ? tls_client_ctx() : NULL;
		if (p->ssl_ctx == NULL)
			p->tls = SMTP_CLIENT_TLS_NONE;
	}
	p->sender = env->sender;
	p->ret = env->ret;
	p->envid = env->envid;
	p->body_8bit = env->body_8bit;
	p->size = env->size;
	p->msg_path = a->msg_path;
	p->rcpts = a->crcpts;
	p->nrcpt = a->nc;
	p->connect_timeout = (unsigned)queue_cfg->connect_timeout;
	p->command_timeout = (unsigned)queue_cfg->command_timeout;
	p->data_timeout = (unsigned)queue_cfg->data_timeout;
	a->client =
	    smtp_client_start(queue_srv->base, p, queue_attempt_on_done, a);
}

static void
queue_attempt_on_done(const struct smtp_client_outcome *o, void *arg)
{
	struct queue_attempt *a = arg;
	char mta[QUEUE_MTA_MAX], addr[64] = "?";
	size_t i;
	unsigned port = 0;

	a->client = NULL;
	if (a->sa.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&a->sa;
		inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
		port = ntohs(sin->sin_port);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
		port = ntohs(s6->sin6_port);
	}
	snprintf(mta, sizeof(mta), "%s[%s]:%u", a->host, addr, port);

	/* Results that stand, whatever happens next. */
	for (i = 0; i < a->nc; i++) {
		const struct smtp_client_rcpt *cr = &a->crcpts[i];
		size_t k = a->cmap[i];

		if (cr->code == 0)
			continue;
		if (o->result != SMTP_CLIENT_DONE && cr->code / 100 != 5)
			continue;
		a->settled[k] = 1;
		a->codes[k] = cr->code;
		strlcpy(a->replies[k], cr->reply, sizeof(a->replies[k]));
		strlcpy(a->mtas[k], mta, sizeof(a->mtas[k]));
	}
	strlcpy(a->tls, o->tls, sizeof(a->tls));
	a->dsn_passed = o->dsn;

	switch (o->result) {
	case SMTP_CLIENT_DONE:
		/* Anyone left without an answer is deferred. */
		queue_attempt_settle_all(
		    a, 451, o->reply[0] ? o->reply : "451 4.4.2 no reply", mta);
		queue_attempt_finish(a);
		return;
	case SMTP_CLIENT_PERMFAIL:
		queue_attempt_settle_all(a, 550, o->reply, mta);
		queue_attempt_finish(a);
		return;
	case SMTP_CLIENT_TEMPFAIL:
		break;
	}
	/* Session-level trouble: remember it and try the next address. */
	if (o->reply_is_smtp)
		strlcpy(a->err, o->reply, sizeof(a->err));
	else
		queue_errorf(a->err, sizeof(a->err), "451 4.4.1 %s", o->reply);
	strlcpy(a->err_mta, mta, sizeof(a->err_mta));
	log_info("%s queue session-failed relay=%s error=\"%s\"",
		 a->msg->env->id, mta, o->reply);
	if (o->tls_failed && !a->tls_off) {
		/* Opportunistic TLS failed: the same host, in clear. */
		a->tls_off = 1;
	} else {
		a->addr_i++;
	}
	queue_attempt_next(a);
}

/* Gives every recipient without a result this code and reply. */
static void
queue_attempt_settle_all(struct queue_attempt *a, int code, const char *reply,
			 const char *mta)
{
	size_t i;

	for (i = 0; i < a->n; i++) {
		if (a->settled[i])
			continue;
		a->settled[i] = 1;
		a->codes[i] = code;
		strlcpy(a->replies[i], reply, sizeof(a->replies[i]));
		strlcpy(a->mtas[i], mta, sizeof(a->mtas[i]));
	}
}

/* Wants a DSN for rc's final status? RFC 3461 §4.1: none for NEVER; a
 * failure unless NOTIFY was given without FAILURE; a success report
 * only for SUCCESS. Never for the null reverse-path (RFC 5321 §4.5.5). */
static int
queue_dsn_wanted(const struct queue_env *env, const struct queue_rcpt *rc)
{
	if (env->sender[0] == '\0' || (rc->notify & DSN_NOTIFY_NEVER))
		return 0;
	if (rc->status == QUEUE_RCPT_FAILED)
		return rc->notify == 0 || (rc->notify & DSN_NOTIFY_FAILURE);
	if (rc->status == QUEUE_RCPT_SENT)
		return (rc->notify & DSN_NOTIFY_SUCCESS) != 0;
	return 0;
}

/* A recipient that queue_add_local_success recorded: final without any
 * attempt and without a next hop. Remote deliveries always have both. */
static int
queue_rcpt_is_local(const struct queue_rcpt *rc)
{
	return rc->status == QUEUE_RCPT_SENT && rc->attempts == 0 &&
	       rc->mta[0] == '\0';
}

int
queue_add_local_success(struct queue_env *env, const char *addr, int notify,
			const char *orcpt)
{
	struct queue_rcpt probe, *rc;

	/* The same policy as for queued recipients: SUCCESS asked for,
	 * not NEVER, never to the null reverse-path. */
	memset(&probe, 0, sizeof(probe));
	probe.notify = notify;
	probe.status = QUEUE_RCPT_SENT;
	if (!queue_dsn_wanted(env, &probe))
		return 0;
	if ((rc = queue_env_add_rcpt(env, addr, notify, orcpt)) == NULL)
		return -1;
	rc->status = QUEUE_RCPT_SENT;
	rc->dsn_owed = 1;
	strlcpy(rc->reply, QUEUE_LOCAL_REPLY, sizeof(rc->reply));
	return 1;
}

static void
queue_log_result(const struct queue_msg *m, const struct queue_rcpt *rc,
		 const char *event, const char *tls)
{
	char reply[QUEUE_REPLY_MAX];
	size_t i;

	strlcpy(reply, rc->reply, sizeof(reply));
	for (i = 0; reply[i]; i++)
		if (reply[i] == '"')
			reply[i] = '\'';
	log_info("%s queue %s rcpt=<%s> relay=%s reply=\"%s\"%s%s "
		 "delay=%llds attempts=%u",
		 m->env->id, event, rc->addr, rc->mta[0] ? rc->mta : "none",
		 reply, tls && tls[0] ? " tls=" : "", tls && tls[0] ? tls : "",
		 (long long)((int64_t)time(NULL) - m->env->arrival),
		 rc->attempts);
}

/* Applies the attempt's results to the message and commits them. */
static void
queue_attempt_finish(struct queue_attempt *a)
{
	struct queue_msg *m = a->msg;
	struct queue_env *env = m->env;
	int64_t now = (int64_t)time(NULL);
	size_t i;

	if (!a->settled || a->n == 0)
		goto out;
	/* Anything still open (no address to try) is deferred with the last
	 * session error. */
	queue_attempt_settle_all(
	    a, 451, a->err[0] ? a->err : "451 4.4.1 No address to connect to",
	    a->err_mta);
	for (i = 0; i < a->n && !m->gone; i++) {
		struct queue_rcpt *rc = &env->rcpts[a->idx[i]];
		int code = a->codes[i];

		rc->inflight = 0;
		rc->attempts++;
		rc->last = now;
		strlcpy(rc->reply, a->replies[i], sizeof(rc->reply));
		strlcpy(rc->mta, a->mtas[i], sizeof(rc->mta));
		if (code / 100 == 2) {
			rc->status = QUEUE_RCPT_SENT;
			/* RFC 3461 §5.2.2: a server without DSN cannot report
			 * success onwards; we say "relayed" for it. */
			rc->dsn_owed =
			    !a->dsn_passed && queue_dsn_wanted(env, rc);
			queue_log_result(m, rc, "delivered", a->tls);
		} else if (code / 100 == 5) {
			rc->status = QUEUE_RCPT_FAILED;
			rc->dsn_owed = queue_dsn_wanted(env, rc);
			queue_log_result(m, rc, "bounced", a->tls);
		} else {
			rc->next =
			    now + (int64_t)queue_env_retry_delay(
				      rc->attempts, queue_cfg->min_backoff,
				      queue_cfg->max_backoff);
			queue_log_result(m, rc, "deferred", a->tls);
			if (now >=
			    env->arrival + (int64_t)queue_cfg->max_lifetime) {
				rc->status = QUEUE_RCPT_FAILED;
				rc->dsn_owed = queue_dsn_wanted(env, rc);
				queue_log_result(m, rc, "expired", NULL);
			}
		}
	}
	m->dirty = 1;
out:
	for (i = 0; i < a->n; i++)
		env->rcpts[a->idx[i]].inflight = 0;
	queue_attempt_free(a);
	if (m->gone && m->active == 0 && !m->committing) {
		queue_msg_free(m);
	} else {
		queue_commit_maybe(m);
	}
	queue_kick();
}

static void
queue_attempt_free(struct queue_attempt *a)
{
	if (a->prev)
		a->prev->next = a->next;
	else if (queue_attempts == a)
		queue_attempts = a->next;
	if (a->next)
		a->next->prev = a->prev;
	a->msg->active--;
	a->dest->active--;
	queue_active--;
	free(a->idx);
	free(a->settled);
	free(a->codes);
	free(a->replies);
	free(a->mtas);
	free(a->dns);
	free(a->crcpts);
	free(a->cmap);
	SSL_CTX_free(a->relay_ctx);
	explicit_bzero(a->auth_pass, sizeof(a->auth_pass));
	free(a);
}

/* Starts a commit job for m when it has changes or owes DSNs and none is
 * running. */
static void
queue_commit_maybe(struct queue_msg *m)
{
	struct queue_env *env = m->env;
	struct queue_commit *cm;
	int64_t now = (int64_t)time(NULL);
	size_t i, owed = 0, open = 0;

	if (m->gone || m->committing)
		return;
	for (i = 0; i < env->nrcpt; i++) {
		if (env->rcpts[i].dsn_owed)
			owed++;
		if (env->rcpts[i].status == QUEUE_RCPT_PENDING ||
		    env->rcpts[i].inflight)
			open++;
	}
	if (!m->dirty && (owed == 0 || now < m->dsn_retry_at) &&
	    !(open == 0 && owed == 0))
		return;
	cm = xcalloc(1, sizeof(*cm));
	cm->msg = m;
	cm->snap = queue_env_dup(env);
	strlcpy(cm->data_dir, queue_srv->cfg->data_dir, sizeof(cm->data_dir));
	strlcpy(cm->hostname, queue_srv->cfg->hostname, sizeof(cm->hostname));
	strlcpy(cm->spool_dir, queue_srv->spool_dir, sizeof(cm->spool_dir));
	cm->bounce_size_limit = queue_cfg->bounce_size_limit;
	if (owed > 0 && now >= m->dsn_retry_at) {
		cm->dsn_idx = xcalloc(owed, sizeof(*cm->dsn_idx));
		for (i = 0; i < env->nrcpt; i++)
			if (env->rcpts[i].dsn_owed)
				cm->dsn_idx[cm->ndsn++] = i;
		switch (queue_dsn_targets(cm, env->sender)) {
		case 1:
			cm->dsn = 1;
			break;
		case 0:
			/* Nobody to tell: the sender is gone or null. */
			log_warnx("%s queue dsn-dropped to=<%s> reason=\"no "
				  "such sender\"",
				  env->id, env->sender);
			for (i = 0; i < cm->ndsn; i++) {
				env->rcpts[cm->dsn_idx[i]].dsn_owed = 0;
				cm->snap->rcpts[cm->dsn_idx[i]].dsn_owed = 0;
			}
			owed = 0;
			break;
		default:
			m->dsn_retry_at = now + QUEUE_DSN_RETRY;
			break;
		}
	}
	cm->remove = open == 0 && (owed == 0 || cm->dsn);
	m->committing = 1;
	m->dirty = 0;
	worker_submit(queue_srv->workers, queue_commit_work, queue_commit_done,
		      cm);
}

/* Where a DSN to sender goes: its Maildirs when the address is ours (an
 * alias may add remote targets), or the sender itself through the queue.
 * Returns 1 when there is somewhere to send it, 0 when there is nobody,
 * -1 on a store error (try later). Loop thread: the store is read here. */
static int
queue_dsn_targets(struct queue_commit *cm, const char *sender)
{
	struct store_target targets[STORE_MAX_TARGETS];
	char local[STORE_LOCAL_MAX + 1], domain[STORE_DOMAIN_MAX + 1];
	char path[1200];
	size_t n = 0, i;

	if (sender[0] == '\0')
		return 0;
	cm->maildirs = xcalloc(STORE_MAX_TARGETS, sizeof(char *));
	cm->remote = xcalloc(STORE_MAX_TARGETS, sizeof(char *));
	if (store_split_address(sender, local, sizeof(local), domain,
				sizeof(domain)) != STORE_OK) {
		/* Odd syntax (a quoted local part): not one of ours. */
		cm->remote[cm->nremote++] = xstrdup(sender);
		return 1;
	}
	switch (store_resolve(queue_srv->store, local, domain, targets,
			      STORE_MAX_TARGETS, &n)) {
	case STORE_RCPT_FOREIGN:
		cm->remote[cm->nremote++] = xstrdup(sender);
		return 1;
	case STORE_RCPT_UNKNOWN:
		return 0;
	case STORE_RCPT_ERROR:
		return -1;
	case STORE_RCPT_LOCAL:
		break;
	}
	for (i = 0; i < n; i++) {
		char addr[STORE_ADDRESS_MAX + 2];

		if (targets[i].remote) {
			if (snprintf(addr, sizeof(addr), "%s@%s",
				     targets[i].local,
				     targets[i].domain) >= (int)sizeof(addr))
				continue;
			cm->remote[cm->nremote++] = xstrdup(addr);
			continue;
		}
		if (maildir_path(cm->data_dir, targets[i].domain,
				 targets[i].local, path, sizeof(path)) == -1)
			continue;
		cm->maildirs[cm->nmaildirs++] = xstrdup(path);
	}
	return cm->nmaildirs + cm->nremote > 0 ? 1 : 0;
}

/* Writes the DSN for cm->dsn_idx into a new spool file. Returns 0 and the
 * path, or -1 with cm->err. Worker thread. */
static int
queue_dsn_build(struct queue_commit *cm, char *path, size_t len,
		uint64_t *size_lf, uint64_t *size_crlf)
{
	const struct queue_env *env = cm->snap;
	struct dsn_rcpt *rcpts;
	struct dsn_report r;
	char from[300], msgid[400], boundary[64], msgpath[QUEUE_PATH_MAX];
	char rnd[17], (*status)[DSN_STATUS_MAX], (*mta)[QUEUE_MTA_MAX];
	char *buf = NULL;
	size_t blen = 0, i, off;
	FILE *mem, *orig;
	int fd, any_failed = 0, result = -1;

	util_random_hex(rnd, 8);
	snprintf(path, len, "%s/%s.dsn", cm->spool_dir, rnd);
	snprintf(from, sizeof(from), "MAILER-DAEMON@%s", cm->hostname);
	snprintf(msgid, sizeof(msgid), "<%s.%s.dsn@%s>", env->id, rnd,
		 cm->hostname);
	snprintf(boundary, sizeof(boundary), "%s.%s/%s", env->id, rnd,
		 "postern");
	rcpts = xcalloc(cm->ndsn, sizeof(*rcpts));
	status = xcalloc(cm->ndsn, sizeof(*status));
	mta = xcalloc(cm->ndsn, sizeof(*mta));
	for (i = 0; i < cm->ndsn; i++) {
		const struct queue_rcpt *rc = &env->rcpts[cm->dsn_idx[i]];

		rcpts[i].final_rcpt = rc->addr;
		rcpts[i].orcpt = rc->orcpt[0] ? rc->orcpt : NULL;
		if (queue_rcpt_is_local(rc)) {
			/* RFC 3464 §2.3.3: we put it into the mailbox. */
			rcpts[i].action = DSN_ACTION_DELIVERED;
			strlcpy(status[i], "2.0.0", sizeof(status[i]));
		} else if (rc->status == QUEUE_RCPT_SENT) {
			rcpts[i].action = DSN_ACTION_RELAYED;
			dsn_status_from_reply(rc->reply, status[i],
					      sizeof(status[i]));
		} else {
			rcpts[i].action = DSN_ACTION_FAILED;
			any_failed = 1;
			/* A temporary reply on a failed recipient means it
			 * expired (RFC 3463: 4.4.7 delivery time expired). */
			if (rc->reply[0] == '5')
				dsn_status_from_reply(rc->reply, status[i],
						      sizeof(status[i]));
			else
				strlcpy(status[i], "4.4.7", sizeof(status[i]));
		}
		rcpts[i].status = status[i];
		/* Remote-MTA wants the host name: "host[addr]:port". */
		strlcpy(mta[i], rc->mta, sizeof(mta[i]));
		mta[i][strcspn(mta[i], "[")] = '\0';
		rcpts[i].remote_mta = mta[i][0] ? mta[i] : NULL;
		rcpts[i].diagnostic = rc->reply;
		rcpts[i].last_attempt = (time_t)rc->last;
	}
	memset(&r, 0, sizeof(r));
	r.reporting_mta = cm->hostname;
	r.from = from;
	r.to = env->sender;
	r.message_id = msgid;
	r.boundary = boundary;
	r.queue_id = env->id;
	r.envid = env->envid[0] ? env->envid : NULL;
	r.arrival = (time_t)env->arrival;
	r.date = time(NULL);
	r.return_full = dsn_return_full(env->ret, any_failed, env->size,
					cm->bounce_size_limit);
	r.rcpts = rcpts;
	r.nrcpt = cm->ndsn;

	queue_spool_path(msgpath, sizeof(msgpath), cm->data_dir, env->id,
			 ".msg");
	orig = fopen(msgpath, "re");
	mem = open_memstream(&buf, &blen);
	/* RFC 5321 §4.4: final delivery records the (null) reverse-path;
	 * on the way out smtp_client.c drops this line again. */
	if (mem == NULL || fputs("Return-Path: <>\n", mem) == EOF ||
	    dsn_write(mem, &r, orig) == -1) {
		queue_errorf(cm->err, sizeof(cm->err), "cannot build the DSN");
		if (mem)
			fclose(mem);
		goto out;
	}
	fclose(mem);
	*size_lf = blen;
	*size_crlf = blen;
	for (i = 0; i < blen; i++)
		if (buf[i] == '\n')
			(*size_crlf)++;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1) {
		queue_errorf(cm->err, sizeof(cm->err), "create %s: %s", path,
			     strerror(errno));
		goto out;
	}
	for (off = 0; off < blen;) {
		ssize_t n = write(fd, buf + off, blen - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			queue_errorf(cm->err, sizeof(cm->err), "write %s: %s",
				     path, strerror(errno));
			close(fd);
			unlink(path);
			goto out;
		}
		off += (size_t)n;
	}
	if (close(fd) == -1) {
		unlink(path);
		goto out;
	}
	result = 0;
out:
	if (orig)
		fclose(orig);
	free(buf);
	free(rcpts);
	free(status);
	free(mta);
	return result;
}

static void
queue_commit_work(void *arg)
{
	struct queue_commit *cm = arg;
	char spool[QUEUE_PATH_MAX];
	uint64_t size_lf = 0, size_crlf = 0;
	size_t i;
	int r;

	if (cm->dsn && queue_dsn_build(cm, spool, sizeof(spool), &size_lf,
				       &size_crlf) == 0) {
		int ok = 1;

		if (cm->nmaildirs > 0) {
			char name[MAILDIR_NAME_MAX + 1];

			maildir_unique_name(name, sizeof(name), cm->hostname,
					    size_lf, size_crlf);
			if (maildir_deliver(spool,
					    (const char *const *)cm->maildirs,
					    cm->nmaildirs, name, cm->err,
					    sizeof(cm->err)) == -1)
				ok = 0;
		}
		if (ok && cm->nremote > 0) {
			struct queue_env *dsn_env = queue_env_new();

			dsn_env->arrival = (int64_t)time(NULL);
			dsn_env->size = size_crlf;
			for (i = 0; i < cm->nremote; i++)
				queue_env_add_rcpt(dsn_env, cm->remote[i], 0,
						   NULL);
			if (queue_spool_store(cm->data_dir, spool, dsn_env,
					      cm->dsn_queued, cm->err,
					      sizeof(cm->err)) == -1 ||
			    queue_spool_sync(cm->data_dir, cm->dsn_queued,
					     cm->err, sizeof(cm->err)) == -1)
				ok = 0;
			queue_env_free(&dsn_env);
		}
		unlink(spool);
		cm->dsn_ok = ok;
		if (ok)
			for (i = 0; i < cm->ndsn; i++)
				cm->snap->rcpts[cm->dsn_idx[i]].dsn_owed = 0;
	}
	if (cm->remove && (!cm->dsn || cm->dsn_ok)) {
		cm->ok = queue_spool_remove(cm->data_dir, cm->snap->id, 1,
					    cm->err, sizeof(cm->err)) == 0;
		return;
	}
	cm->remove = 0;
	r = queue_spool_save(cm->data_dir, cm->snap, cm->err, sizeof(cm->err));
	cm->ok = r == 0;
	cm->gone = r == 1;
}

static void
queue_commit_done(void *arg)
{
	struct queue_commit *cm = arg;
	struct queue_msg *m = cm->msg;
	size_t i;

	m->committing = 0;
	if (cm->dsn) {
		if (cm->dsn_ok) {
			for (i = 0; i < cm->ndsn; i++)
				m->env->rcpts[cm->dsn_idx[i]].dsn_owed = 0;
			log_info("%s queue dsn-sent to=<%s> nrcpt=%zu%s%s",
				 m->env->id, m->env->sender, cm->ndsn,
				 cm->dsn_queued[0] ? " queued-as=" : "",
				 cm->dsn_queued);
			if (cm->dsn_queued[0])
				queue_schedule(cm->dsn_queued);
		} else {
			log_warnx("%s queue dsn-failed to=<%s> error=\"%s\"",
				  m->env->id, m->env->sender, cm->err);
			m->dsn_retry_at = (int64_t)time(NULL) + QUEUE_DSN_RETRY;
		}
	}
	if (cm->gone)
		m->gone = 1;
	if (!cm->ok && !cm->gone) {
		log_warnx("%s queue write-failed error=\"%s\"", m->env->id,
			  cm->err);
		m->dirty = 1; /* try again at the next tick */
	}
	if (cm->remove && cm->ok) {
		log_info("%s queue removed", m->env->id);
		m->gone = 1;
	}
	if (m->gone && m->active == 0)
		queue_msg_free(m);
	queue_commit_free(cm);
}

static void
queue_commit_free(struct queue_commit *cm)
{
	size_t i;

	for (i = 0; i < cm->nmaildirs; i++)
		free(cm->maildirs[i]);
	for (i = 0; i < cm->nremote; i++)
		free(cm->remote[i]);
	free(cm->maildirs);
	free(cm->remote);
	free(cm->dsn_idx);
	queue_env_free(&cm->snap);
	free(cm);
}
