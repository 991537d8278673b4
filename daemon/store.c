/* The account store's SQLite backend: opening and migrating
 * data_dir/postern.db, the prepared statements, and the domain, mailbox and
 * alias operations and recipient resolution declared in store.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "store.h"
#include "util.h"

#define STORE_DB_NAME "postern.db"
#define STORE_BUSY_TIMEOUT_MS 5000

/*
 * Schema migrations, applied in order, each in its own transaction. Entry i
 * takes the schema from version i to i + 1 and must end by setting
 * user_version to i + 1 (a constant, so no SQL is ever built at run time;
 * store_migrate checks it). Never edit an entry once released: append one.
 */
static const char *const store_migrations[] = {
    /* 1: domains, mailboxes and aliases. Names are stored lower case;
     * aliases.source_local is '' for the domain's catch-all. */
    "CREATE TABLE domains ("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE mailboxes ("
    "  local TEXT NOT NULL,"
    "  domain TEXT NOT NULL REFERENCES domains(name),"
    "  password_hash TEXT NOT NULL,"
    "  quota INTEGER NOT NULL DEFAULT 0 CHECK (quota >= 0),"
    "  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),"
    "  created INTEGER NOT NULL,"
    "  PRIMARY KEY (local, domain));"
    /* The foreign keys and the per-domain listings look up by domain. */
    "CREATE INDEX mailboxes_domain ON mailboxes(domain);"
    "CREATE TABLE aliases ("
    "  source_local TEXT NOT NULL,"
    "  source_domain TEXT NOT NULL REFERENCES domains(name),"
    "  target TEXT NOT NULL,"
    "  PRIMARY KEY (source_local, source_domain, target));"
    "CREATE INDEX aliases_domain ON aliases(source_domain);"
    "PRAGMA user_version = 1;",
};

#define STORE_SCHEMA_VERSION                                                   \
	((int)(sizeof(store_migrations) / sizeof(store_migrations[0])))

/* Every statement the store runs, prepared once in store_open. */
enum store_stmt {
	ST_BEGIN_READ,
	ST_BEGIN_WRITE,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_DOMAIN_ADD,
	ST_DOMAIN_DEL,
	ST_DOMAIN_EXISTS,
	ST_DOMAIN_LIST,
	ST_DOMAIN_USAGE,
	ST_MAILBOX_ADD,
	ST_MAILBOX_DEL,
	ST_MAILBOX_GET,
	ST_MAILBOX_SET_PASSWORD,
	ST_MAILBOX_SET_QUOTA,
	ST_MAILBOX_SET_ENABLED,
	ST_MAILBOX_LIST_ALL,
	ST_MAILBOX_LIST_DOMAIN,
	ST_ALIAS_ADD,
	ST_ALIAS_DEL_ALL,
	ST_ALIAS_DEL_ONE,
	ST_ALIAS_TARGETS,
	ST_ALIAS_COUNT,
	ST_ALIAS_LIST_ALL,
	ST_ALIAS_LIST_DOMAIN,
	ST_COUNT
};

static const char *const store_sql[ST_COUNT] = {
    /* IMMEDIATE takes the write lock up front, so a writer waits
     * (busy_timeout) at BEGIN instead of failing half-way through. */
    [ST_BEGIN_READ] = "BEGIN",
    [ST_BEGIN_WRITE] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_DOMAIN_ADD] = "INSERT INTO domains (name, created) VALUES (?1, ?2)",
    [ST_DOMAIN_DEL] = "DELETE FROM domains WHERE name = ?1",
    [ST_DOMAIN_EXISTS] = "SELECT 1 FROM domains WHERE name = ?1",
    [ST_DOMAIN_LIST] = "SELECT name FROM domains ORDER BY name",
    [ST_DOMAIN_USAGE] =
	"SELECT (SELECT count(*) FROM mailboxes WHERE domain = ?1),"
	" (SELECT count(DISTINCT source_local) FROM aliases"
	"  WHERE source_domain = ?1)",
    [ST_MAILBOX_ADD] = "INSERT INTO mailboxes (local, domain, password_hash,"
		       " quota, enabled, created)"
		       " VALUES (?1, ?2, ?3, ?4, 1, ?5)",
    [ST_MAILBOX_DEL] = "DELETE FROM mailboxes WHERE local = ?1 AND domain = ?2",
    [ST_MAILBOX_GET] = "SELECT local, domain, password_hash, quota, enabled"
		       " FROM mailboxes WHERE local = ?1 AND domain = ?2",
    [ST_MAILBOX_SET_PASSWORD] = "UPDATE mailboxes SET password_hash = ?3"
				" WHERE local = ?1 AND domain = ?2",
    [ST_MAILBOX_SET_QUOTA] = "UPDATE mailboxes SET quota = ?3"
			     " WHERE local = ?1 AND domain = ?2",
    [ST_MAILBOX_SET_ENABLED] = "UPDATE mailboxes SET enabled = ?3"
			       " WHERE local = ?1 AND domain = ?2",
    [ST_MAILBOX_LIST_ALL] =
	"SELECT local, domain, password_hash, quota, enabled"
	" FROM mailboxes ORDER BY domain, local",
    [ST_MAILBOX_LIST_DOMAIN] =
	"SELECT local, domain, password_hash, quota, enabled"
	" FROM mailboxes WHERE domain = ?1 ORDER BY local",
    [ST_ALIAS_ADD] = "INSERT INTO aliases (source_local, source_domain,"
		     " target) VALUES (?1, ?2, ?3)",
    [ST_ALIAS_DEL_ALL] = "DELETE FROM aliases"
			 " WHERE source_local = ?1 AND source_domain = ?2",
    [ST_ALIAS_DEL_ONE] = "DELETE FROM aliases WHERE source_local = ?1"
			 " AND source_domain = ?2 AND target = ?3",
    [ST_ALIAS_TARGETS] = "SELECT target FROM aliases"
			 " WHERE source_local = ?1 AND source_domain = ?2"
			 " ORDER BY target",
    [ST_ALIAS_COUNT] = "SELECT count(*) FROM aliases"
		       " WHERE source_local = ?1 AND source_domain = ?2",
    [ST_ALIAS_LIST_ALL] =
	"SELECT source_local, source_domain, target FROM aliases"
	" ORDER BY source_domain, source_local, target",
    [ST_ALIAS_LIST_DOMAIN] =
	"SELECT source_local, source_domain, target FROM aliases"
	" WHERE source_domain = ?1 ORDER BY source_local, target",
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[ST_COUNT];
};

/* An address split into its lower-case parts; local is "" for a
 * catch-all alias source. */
struct store_addr {
	char local[STORE_LOCAL_MAX + 1];
	char domain[STORE_DOMAIN_MAX + 1];
};

/* The working set of one store_resolve call. */
struct store_resolution {
	struct store_target *targets;
	size_t max, n;
	/* Alias sources already expanded (and the recipient), to cut loops. */
	struct store_addr seen[STORE_MAX_TARGETS + 2];
	size_t nseen;
};

/* Setup */
static int store_exec(sqlite3 *db, const char *sql, char *err, size_t errlen);
static int store_set_wal(sqlite3 *db, const char *path, char *err,
			 size_t errlen);
static int store_user_version(sqlite3 *db, int *version_r);
static enum store_result store_migrate(struct store *s, char *err,
				       size_t errlen);
static enum store_result store_prepare_all(struct store *s, char *err,
					   size_t errlen);

/* Statement helpers */
static sqlite3_stmt *store_stmt(struct store *s, enum store_stmt id);
static void store_stmt_done(sqlite3_stmt *st);
static int store_bind_text(sqlite3_stmt *st, int idx, const char *text);
static int store_bind_int(sqlite3_stmt *st, int idx, int64_t v);
static int store_step_done(struct store *s, sqlite3_stmt *st, char *err,
			   size_t errlen);
static enum store_result store_begin(struct store *s, enum store_stmt kind,
				     char *err, size_t errlen);
static enum store_result store_commit(struct store *s, char *err,
				      size_t errlen);
static void store_rollback(struct store *s);
static void store_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum store_result store_dberr(struct store *s, char *err, size_t errlen);

/* Names */
static int store_norm_domain(const char *in, char *out, size_t outlen);
static int store_parse_source(const char *source, struct store_addr *a);
static void store_format(const struct store_addr *a, char *buf, size_t len);
static int store_is_atext(unsigned char c);

/* Lookups shared by the operations */
static int store_lookup_domain(struct store *s, const char *domain);
static int store_lookup_mailbox(struct store *s, const char *local,
				const char *domain, struct store_mailbox *mb_r);
static int store_lookup_alias(struct store *s, const char *local,
			      const char *domain,
			      char (*out)[STORE_ADDRESS_MAX], size_t max,
			      size_t *n_r);
static void store_row_mailbox(sqlite3_stmt *st, struct store_mailbox *mb);
static enum store_result
store_mailbox_update(struct store *s, enum store_stmt id, const char *address,
		     const char *text, int64_t num, char *err, size_t errlen);

/* Resolution */
static int store_resolve_add(struct store_resolution *r, const char *local,
			     const char *domain, uint64_t quota, int enabled,
			     int remote);
static int store_resolve_seen(struct store_resolution *r,
			      const struct store_addr *a);
static int store_resolve_target(struct store *s, struct store_resolution *r,
				const char *address, int depth);

/* ------------------------------------------------------------------ */
/* Opening, migrations, closing */

enum store_result
store_open(const char *data_dir, struct store **store_r, char *err,
	   size_t errlen)
{
	char path[PATH_MAX];
	struct store *s = NULL;
	enum store_result res;
	int fd, rc;

	*store_r = NULL;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", data_dir,
			     STORE_DB_NAME) >= sizeof(path)) {
		store_errf(err, errlen, "data directory path too long: %s",
			   data_dir);
		return STORE_ERROR;
	}
	if (util_mkdirs(data_dir, 0700) == -1) {
		store_errf(err, errlen, "cannot create %s: %s", data_dir,
			   strerror(errno));
		return STORE_ERROR;
	}
	/* SQLite would create the file 0644 (less the umask); create it
	 * ourselves so that password hashes are never readable by others.
	 * The -wal and -shm files inherit the database file's mode. */
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1) {
		store_errf(err, errlen, "cannot open %s: %s", path,
			   strerror(errno));
		return STORE_ERROR;
	}
	close(fd);

	s = xcalloc(1, sizeof(*s));
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE, NULL);
	if (rc != SQLITE_OK) {
		store_errf(err, errlen, "cannot open %s: %s", path,
			   s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		res = STORE_ERROR;
		goto fail;
	}
	/* posternctl and the daemon use the database at the same time: wait
	 * for the other's lock instead of failing at once. */
	sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
	/* WAL: readers (the daemon) never block the writer (posternctl).
	 * synchronous=FULL: an admin change that was reported done survives
	 * a power cut (NORMAL may lose the last commits in WAL mode). */
	if (store_set_wal(s->db, path, err, errlen) == -1 ||
	    store_exec(s->db, "PRAGMA synchronous = FULL", err, errlen) ||
	    store_exec(s->db, "PRAGMA foreign_keys = ON", err, errlen)) {
		res = STORE_ERROR;
		goto fail;
	}
	if ((res = store_migrate(s, err, errlen)) != STORE_OK)
		goto fail;
	if ((res = store_prepare_all(s, err, errlen)) != STORE_OK)
		goto fail;
	*store_r = s;
	return STORE_OK;
fail:
	store_close(&s);
	return res;
}

void
store_close(struct store **store)
{
	struct store *s = *store;
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	if (s->db != NULL && sqlite3_close(s->db) != SQLITE_OK)
		log_warnx("store: close: %s", sqlite3_errmsg(s->db));
	free(s);
	*store = NULL;
}

/* Runs constant SQL that needs no parameters (pragmas, migrations,
 * transaction control before the statements exist). Returns 0, or -1 with
 * a message in err. */
static int
store_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	store_errf(err, errlen, "database error: %s",
		   msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return -1;
}

/* Switches to WAL. SQLite silently keeps the old journal mode where WAL
 * cannot work (no shared memory, e.g. some network file systems): that
 * still works, only readers and the writer then wait for each other. */
static int
store_set_wal(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	const unsigned char *mode;
	int rc;

	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st,
			       NULL) != SQLITE_OK) {
		store_errf(err, errlen, "database error: %s",
			   sqlite3_errmsg(db));
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		mode = sqlite3_column_text(st, 0);
		if (mode == NULL || !util_strcaseeq((const char *)mode, "wal"))
			log_warnx("store: %s: WAL mode unavailable, using %s",
				  path, mode ? (const char *)mode : "?");
	} else {
		store_errf(err, errlen, "database error: %s",
			   sqlite3_errmsg(db));
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

static int
store_user_version(sqlite3 *db, int *version_r)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) !=
	    SQLITE_OK)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*version_r = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* Brings the schema to STORE_SCHEMA_VERSION. The version is read again
 * inside each write transaction, so two processes opening a fresh database
 * at once apply each migration exactly once. */
static enum store_result
store_migrate(struct store *s, char *err, size_t errlen)
{
	int version;

	for (;;) {
		if (store_exec(s->db, "BEGIN IMMEDIATE", err, errlen) == -1)
			return STORE_ERROR;
		if (store_user_version(s->db, &version) == -1) {
			store_errf(err, errlen,
				   "cannot read schema version: %s",
				   sqlite3_errmsg(s->db));
			goto fail;
		}
		if (version > STORE_SCHEMA_VERSION) {
			store_errf(err, errlen,
				   "database schema version %d is newer than "
				   "this program supports (%d)",
				   version, STORE_SCHEMA_VERSION);
			goto fail;
		}
		if (version == STORE_SCHEMA_VERSION)
			break;
		if (version < 0) {
			store_errf(err, errlen, "bad schema version %d",
				   version);
			goto fail;
		}
		if (store_exec(s->db, store_migrations[version], err, errlen) ==
		    -1)
			goto fail;
		{
			int after = -1;

			if (store_user_version(s->db, &after) == -1 ||
			    after != version + 1)
				fatalx("store: migration %d did not set "
				       "user_version to %d",
				       version + 1, version + 1);
		}
		if (store_exec(s->db, "COMMIT", err, errlen) == -1)
			goto fail;
		log_info("store: schema migrated to version %d", version + 1);
	}
	if (store_exec(s->db, "COMMIT", err, errlen) == -1)
		goto fail;
	return STORE_OK;
fail:
	store_exec(s->db, "ROLLBACK", NULL, 0);
	return STORE_ERROR;
}

static enum store_result
store_prepare_all(struct store *s, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(s->db, store_sql[i], -1,
				       SQLITE_PREPARE_PERSISTENT, &s->stmt[i],
				       NULL) != SQLITE_OK) {
			store_errf(err, errlen, "cannot prepare \"%s\": %s",
				   store_sql[i], sqlite3_errmsg(s->db));
			return STORE_ERROR;
		}
	}
	return STORE_OK;
}

/* ------------------------------------------------------------------ */
/* Statement helpers */

/* Returns a prepared statement, ready to bind. Every user ends with
 * store_stmt_done(), which also ends the statement's read snapshot: a
 * statement left un-reset would keep the daemon from seeing posternctl's
 * later changes. */
static sqlite3_stmt *
store_stmt(struct store *s, enum store_stmt id)
{
	return s->stmt[id];
}

static void
store_stmt_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Text is bound without a copy: the caller's string outlives the statement
 * use, which always ends in store_stmt_done() before returning. */
static int
store_bind_text(sqlite3_stmt *st, int idx, const char *text)
{
	return sqlite3_bind_text(st, idx, text, -1, SQLITE_STATIC);
}

static int
store_bind_int(sqlite3_stmt *st, int idx, int64_t v)
{
	return sqlite3_bind_int64(st, idx, v);
}

/* Steps a statement that returns no rows and resets it. Returns the SQLite
 * primary result code, SQLITE_DONE on success; any other code leaves a
 * message in err (callers may replace it with a better one). */
static int
store_step_done(struct store *s, sqlite3_stmt *st, char *err, size_t errlen)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		store_errf(err, errlen, "database error: %s",
			   sqlite3_errmsg(s->db));
	store_stmt_done(st);
	if (rc == SQLITE_ROW)
		rc = SQLITE_DONE;
	return rc & 0xff;
}

static enum store_result
store_begin(struct store *s, enum store_stmt kind, char *err, size_t errlen)
{
	if (store_step_done(s, store_stmt(s, kind), err, errlen) != SQLITE_DONE)
		return STORE_ERROR;
	return STORE_OK;
}

static enum store_result
store_commit(struct store *s, char *err, size_t errlen)
{
	if (store_step_done(s, store_stmt(s, ST_COMMIT), err, errlen) !=
	    SQLITE_DONE) {
		store_rollback(s);
		return STORE_ERROR;
	}
	return STORE_OK;
}

static void
store_rollback(struct store *s)
{
	if (sqlite3_get_autocommit(s->db))
		return; /* SQLite already rolled back (e.g. on SQLITE_FULL) */
	store_step_done(s, store_stmt(s, ST_ROLLBACK), NULL, 0);
}

/* Messages only inform a human, so a truncated one is acceptable. */
static void
store_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static enum store_result
store_dberr(struct store *s, char *err, size_t errlen)
{
	store_errf(err, errlen, "database error: %s", sqlite3_errmsg(s->db));
	return STORE_ERROR;
}

/* ------------------------------------------------------------------ */
/* Names */

int
store_check_domain(const char *domain)
{
	size_t len = 0, label = 0;
	const char *p;

	for (p = domain; *p; p++, len++) {
		unsigned char c = (unsigned char)*p;

		if (c == '.') {
			/* Empty label (leading, trailing or double dot) or
			 * a label ending in a hyphen. */
			if (label == 0 || p[-1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (c == '-') {
			if (label == 0)
				return 0;
		} else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9'))) {
			return 0;
		}
		if (++label > 63)
			return 0;
	}
	if (len == 0 || len > 253 || label == 0 || p[-1] == '-')
		return 0;
	return 1;
}

/* RFC 5322 §3.2.3 atext, without '%' and '!' (source routing). */
static int
store_is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("#$&'*+-/=?^_`{|}~", c) != NULL;
}

/* RFC 5321 §4.1.2 Dot-string; quoted local parts are not accepted. */
int
store_check_local(const char *local)
{
	size_t len = 0;
	const char *p;

	for (p = local; *p; p++, len++) {
		if (*p == '.') {
			if (p == local || p[-1] == '.')
				return 0;
		} else if (!store_is_atext((unsigned char)*p)) {
			return 0;
		}
	}
	if (len == 0 || len > STORE_LOCAL_MAX || p[-1] == '.')
		return 0;
	return 1;
}

enum store_result
store_split_address(const char *address, char *local, size_t local_len,
		    char *domain, size_t domain_len)
{
	const char *at;
	size_t llen;

	if (local_len > 0)
		local[0] = '\0';
	if (domain_len > 0)
		domain[0] = '\0';
	if (address == NULL || (at = strrchr(address, '@')) == NULL)
		return STORE_INVALID;
	llen = (size_t)(at - address);
	if (llen == 0 || llen >= local_len || llen > STORE_LOCAL_MAX)
		return STORE_INVALID;
	if (strlcpy(domain, at + 1, domain_len) >= domain_len) {
		domain[0] = '\0';
		return STORE_INVALID;
	}
	memcpy(local, address, llen);
	local[llen] = '\0';
	if (!store_check_local(local) || !store_check_domain(domain)) {
		local[0] = domain[0] = '\0';
		return STORE_INVALID;
	}
	util_lowercase(local);
	util_lowercase(domain);
	return STORE_OK;
}

/* Copies a domain name lower-cased into out. Returns 1 when valid. */
static int
store_norm_domain(const char *in, char *out, size_t outlen)
{
	if (in == NULL || strlcpy(out, in, outlen) >= outlen ||
	    !store_check_domain(out))
		return 0;
	util_lowercase(out);
	return 1;
}

/* An alias source: "local@domain" or "@domain" (catch-all, local = "").
 * Returns 1 when valid. */
static int
store_parse_source(const char *source, struct store_addr *a)
{
	if (source == NULL)
		return 0;
	if (source[0] == '@') {
		a->local[0] = '\0';
		return store_norm_domain(source + 1, a->domain,
					 sizeof(a->domain));
	}
	return store_split_address(source, a->local, sizeof(a->local),
				   a->domain, sizeof(a->domain)) == STORE_OK;
}

/* Formats an address; an empty local part gives the catch-all "@domain".
 * Both parts fit STORE_ADDRESS_MAX by construction. */
static void
store_format(const struct store_addr *a, char *buf, size_t len)
{
	if ((size_t)snprintf(buf, len, "%s@%s", a->local, a->domain) >= len)
		fatalx("store_format: address does not fit");
}

/* ------------------------------------------------------------------ */
/* Lookups: 1 found, 0 not found, -1 database error */

static int
store_lookup_domain(struct store *s, const char *domain)
{
	sqlite3_stmt *st = store_stmt(s, ST_DOMAIN_EXISTS);
	int rc;

	store_bind_text(st, 1, domain);
	rc = sqlite3_step(st);
	store_stmt_done(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : -1;
}

static void
store_row_mailbox(sqlite3_stmt *st, struct store_mailbox *mb)
{
	const unsigned char *t;
	int64_t quota;

	memset(mb, 0, sizeof(*mb));
	if ((t = sqlite3_column_text(st, 0)) != NULL)
		strlcpy(mb->local, (const char *)t, sizeof(mb->local));
	if ((t = sqlite3_column_text(st, 1)) != NULL)
		strlcpy(mb->domain, (const char *)t, sizeof(mb->domain));
	if ((t = sqlite3_column_text(st, 2)) != NULL)
		strlcpy(mb->password_hash, (const char *)t,
			sizeof(mb->password_hash));
	quota = sqlite3_column_int64(st, 3);
	mb->quota = quota > 0 ? (uint64_t)quota : 0;
	mb->enabled = sqlite3_column_int(st, 4) != 0;
}

static int
store_lookup_mailbox(struct store *s, const char *local, const char *domain,
		     struct store_mailbox *mb_r)
{
	sqlite3_stmt *st = store_stmt(s, ST_MAILBOX_GET);
	int rc;

	store_bind_text(st, 1, local);
	store_bind_text(st, 2, domain);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && mb_r != NULL)
		store_row_mailbox(st, mb_r);
	store_stmt_done(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Reads up to max targets of the alias local@domain into out. The
 * statement is finished before returning, so the caller may run further
 * lookups while walking out. Returns 0 (n_r may be 0) or -1. */
static int
store_lookup_alias(struct store *s, const char *local, const char *domain,
		   char (*out)[STORE_ADDRESS_MAX], size_t max, size_t *n_r)
{
	sqlite3_stmt *st = store_stmt(s, ST_ALIAS_TARGETS);
	size_t n = 0;
	int rc;

	store_bind_text(st, 1, local);
	store_bind_text(st, 2, domain);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);

		if (t == NULL)
			continue;
		if (n == max) {
			log_warnx("store: alias %s@%s has more than %zu "
				  "targets; the rest are ignored",
				  local, domain, max);
			rc = SQLITE_DONE;
			break;
		}
		strlcpy(out[n++], (const char *)t, STORE_ADDRESS_MAX);
	}
	store_stmt_done(st);
	*n_r = n;
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* Domains */

enum store_result
store_domain_add(struct store *s, const char *domain, char *err, size_t errlen)
{
	char d[STORE_DOMAIN_MAX + 1];
	sqlite3_stmt *st;
	int rc;

	if (!store_norm_domain(domain, d, sizeof(d))) {
		store_errf(err, errlen, "invalid domain name: %s", domain);
		return STORE_INVALID;
	}
	st = store_stmt(s, ST_DOMAIN_ADD);
	store_bind_text(st, 1, d);
	store_bind_int(st, 2, (int64_t)time(NULL));
	rc = store_step_done(s, st, err, errlen);
	if (rc == SQLITE_CONSTRAINT) {
		store_errf(err, errlen, "domain %s already exists", d);
		return STORE_EXISTS;
	}
	return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

enum store_result
store_domain_del(struct store *s, const char *domain, char *err, size_t errlen)
{
	char d[STORE_DOMAIN_MAX + 1];
	enum store_result res;
	sqlite3_stmt *st;
	int64_t nmb = 0, nal = 0;
	int rc;

	if (!store_norm_domain(domain, d, sizeof(d))) {
		store_errf(err, errlen, "invalid domain name: %s", domain);
		return STORE_INVALID;
	}
	if ((res = store_begin(s, ST_BEGIN_WRITE, err, errlen)) != STORE_OK)
		return res;
	switch (store_lookup_domain(s, d)) {
	case 0:
		store_errf(err, errlen, "no such domain: %s", d);
		res = STORE_NOTFOUND;
		goto fail;
	case -1:
		res = store_dberr(s, err, errlen);
		goto fail;
	}
	st = store_stmt(s, ST_DOMAIN_USAGE);
	store_bind_text(st, 1, d);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		nmb = sqlite3_column_int64(st, 0);
		nal = sqlite3_column_int64(st, 1);
	}
	store_stmt_done(st);
	if (rc != SQLITE_ROW) {
		res = store_dberr(s, err, errlen);
		goto fail;
	}
	if (nmb > 0 || nal > 0) {
		store_errf(err, errlen,
			   "domain %s still has %lld mailbox%s and %lld "
			   "alias%s; delete them first",
			   d, (long long)nmb, nmb == 1 ? "" : "es",
			   (long long)nal, nal == 1 ? "" : "es");
		res = STORE_EXISTS;
		goto fail;
	}
	st = store_stmt(s, ST_DOMAIN_DEL);
	store_bind_text(st, 1, d);
	if (store_step_done(s, st, err, errlen) != SQLITE_DONE) {
		res = STORE_ERROR;
		goto fail;
	}
	return store_commit(s, err, errlen);
fail:
	store_rollback(s);
	return res;
}

/* cb runs while the listing statement is active: it must not call back
 * into the store (the statement would be reset under it). */
enum store_result
store_domain_list(struct store *s, void (*cb)(const char *domain, void *arg),
		  void *arg, char *err, size_t errlen)
{
	sqlite3_stmt *st = store_stmt(s, ST_DOMAIN_LIST);
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);

		if (t != NULL)
			cb((const char *)t, arg);
	}
	if (rc != SQLITE_DONE)
		store_dberr(s, err, errlen);
	store_stmt_done(st);
	return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

int
store_domain_exists(struct store *s, const char *domain)
{
	char d[STORE_DOMAIN_MAX + 1];

	if (!store_norm_domain(domain, d, sizeof(d)))
		return 0;
	return store_lookup_domain(s, d) == 1;
}

/* ------------------------------------------------------------------ */
/* Mailboxes */

enum store_result
store_mailbox_add(struct store *s, const char *address,
		  const char *password_hash, uint64_t quota, char *err,
		  size_t errlen)
{
	struct store_addr a;
	enum store_result res;
	sqlite3_stmt *st;
	size_t hlen;
	int rc;

	if (store_split_address(address, a.local, sizeof(a.local), a.domain,
				sizeof(a.domain)) != STORE_OK) {
		store_errf(err, errlen, "invalid address: %s", address);
		return STORE_INVALID;
	}
	hlen = password_hash ? strlen(password_hash) : 0;
	if (hlen == 0 || hlen >= STORE_HASH_MAX) {
		store_errf(err, errlen, "invalid password hash for %s@%s",
			   a.local, a.domain);
		return STORE_INVALID;
	}
	if (quota > INT64_MAX) {
		store_errf(err, errlen, "quota too large: %llu",
			   (unsigned long long)quota);
		return STORE_INVALID;
	}
	if ((res = store_begin(s, ST_BEGIN_WRITE, err, errlen)) != STORE_OK)
		return res;
	switch (store_lookup_domain(s, a.domain)) {
	case 0:
		store_errf(err, errlen, "no such domain: %s", a.domain);
		res = STORE_NOTFOUND;
		goto fail;
	case -1:
		res = store_dberr(s, err, errlen);
		goto fail;
	}
	st = store_stmt(s, ST_MAILBOX_ADD);
	store_bind_text(st, 1, a.local);
	store_bind_text(st, 2, a.domain);
	store_bind_text(st, 3, password_hash);
	store_bind_int(st, 4, (int64_t)quota);
	store_bind_int(st, 5, (int64_t)time(NULL));
	rc = store_step_done(s, st, err, errlen);
	if (rc == SQLITE_CONSTRAINT) {
		store_errf(err, errlen, "mailbox %s@%s already exists", a.local,
			   a.domain);
		res = STORE_EXISTS;
		goto fail;
	}
	if (rc != SQLITE_DONE) {
		res = STORE_ERROR;
		goto fail;
	}
	return store_commit(s, err, errlen);
fail:
	store_rollback(s);
	return res;
}

enum store_result
store_mailbox_del(struct store *s, const char *address, char *err,
		  size_t errlen)
{
	return store_mailbox_update(s, ST_MAILBOX_DEL, address, NULL, 0, err,
				    errlen);
}

enum store_result
store_mailbox_set_password(struct store *s, const char *address,
			   const char *password_hash, char *err, size_t errlen)
{
	size_t hlen = password_hash ? strlen(password_hash) : 0;

	if (hlen == 0 || hlen >= STORE_HASH_MAX) {
		store_errf(err, errlen, "invalid password hash for %s",
			   address);
		return STORE_INVALID;
	}
	return store_mailbox_update(s, ST_MAILBOX_SET_PASSWORD, address,
				    password_hash, 0, err, errlen);
}

enum store_result
store_mailbox_set_quota(struct store *s, const char *address, uint64_t quota,
			char *err, size_t errlen)
{
	if (quota > INT64_MAX) {
		store_errf(err, errlen, "quota too large: %llu",
			   (unsigned long long)quota);
		return STORE_INVALID;
	}
	return store_mailbox_update(s, ST_MAILBOX_SET_QUOTA, address, NULL,
				    (int64_t)quota, err, errlen);
}

enum store_result
store_mailbox_set_enabled(struct store *s, const char *address, int enabled,
			  char *err, size_t errlen)
{
	return store_mailbox_update(s, ST_MAILBOX_SET_ENABLED, address, NULL,
				    enabled ? 1 : 0, err, errlen);
}

/* Runs one of the single-row mailbox statements (?1 local, ?2 domain, ?3
 * text when given, else num) and reports a missing mailbox. */
static enum store_result
store_mailbox_update(struct store *s, enum store_stmt id, const char *address,
		     const char *text, int64_t num, char *err, size_t errlen)
{
	struct store_addr a;
	sqlite3_stmt *st;

	if (store_split_address(address, a.local, sizeof(a.local), a.domain,
				sizeof(a.domain)) != STORE_OK) {
		store_errf(err, errlen, "invalid address: %s", address);
		return STORE_INVALID;
	}
	st = store_stmt(s, id);
	store_bind_text(st, 1, a.local);
	store_bind_text(st, 2, a.domain);
	if (id != ST_MAILBOX_DEL) {
		if (text != NULL)
			store_bind_text(st, 3, text);
		else
			store_bind_int(st, 3, num);
	}
	if (store_step_done(s, st, err, errlen) != SQLITE_DONE)
		return STORE_ERROR;
	if (sqlite3_changes(s->db) == 0) {
		store_errf(err, errlen, "no such mailbox: %s@%s", a.local,
			   a.domain);
		return STORE_NOTFOUND;
	}
	return STORE_OK;
}

/* Picks the statement of a list call: the per-domain one (bound to the
 * normalised domain, which must exist) or the one for everything. */
static enum store_result
store_list_start(struct store *s, const char *domain, int st_domain, int st_all,
		 char *d, size_t dlen, sqlite3_stmt **st_r, char *err,
		 size_t errlen)
{
	if (domain == NULL) {
		*st_r = store_stmt(s, st_all);
		return STORE_OK;
	}
	if (!store_norm_domain(domain, d, dlen)) {
		store_errf(err, errlen, "invalid domain name: %s", domain);
		return STORE_INVALID;
	}
	switch (store_lookup_domain(s, d)) {
	case 0:
		store_errf(err, errlen, "no such domain: %s", d);
		return STORE_NOTFOUND;
	case -1:
		return store_dberr(s, err, errlen);
	}
	*st_r = store_stmt(s, st_domain);
	store_bind_text(*st_r, 1, d);
	return STORE_OK;
}

/* cb must not call back into the store (see store_domain_list). An
 * unknown domain is reported as STORE_NOTFOUND rather than an empty list,
 * so a typo does not look like an empty domain. */
enum store_result
store_mailbox_list(struct store *s, const char *domain,
		   void (*cb)(const struct store_mailbox *mb, void *arg),
		   void *arg, char *err, size_t errlen)
{
	char d[STORE_DOMAIN_MAX + 1];
	struct store_mailbox mb;
	sqlite3_stmt *st;
	enum store_result r;
	int rc;

	r = store_list_start(s, domain, ST_MAILBOX_LIST_DOMAIN,
			     ST_MAILBOX_LIST_ALL, d, sizeof(d), &st, err,
			     errlen);
	if (r != STORE_OK)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		store_row_mailbox(st, &mb);
		cb(&mb, arg);
	}
	if (rc != SQLITE_DONE)
		store_dberr(s, err, errlen);
	store_stmt_done(st);
	return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

enum store_result
store_mailbox_get(struct store *s, const char *address,
		  struct store_mailbox *mb_r)
{
	struct store_addr a;

	if (store_split_address(address, a.local, sizeof(a.local), a.domain,
				sizeof(a.domain)) != STORE_OK)
		return STORE_INVALID;
	switch (store_lookup_mailbox(s, a.local, a.domain, mb_r)) {
	case 1:
		return STORE_OK;
	case 0:
		return STORE_NOTFOUND;
	default:
		return STORE_ERROR;
	}
}

/* ------------------------------------------------------------------ */
/* Aliases */

/* All targets are added or none: a duplicate, an invalid target or going
 * over STORE_MAX_TARGETS rolls the whole call back. */
enum store_result
store_alias_add(struct store *s, const char *source, const char *const *targets,
		size_t ntargets, char *err, size_t errlen)
{
	struct store_addr src, t;
	char srcbuf[STORE_ADDRESS_MAX], tbuf[STORE_ADDRESS_MAX];
	enum store_result res;
	sqlite3_stmt *st;
	int64_t count = 0;
	size_t i;
	int rc;

	if (!store_parse_source(source, &src)) {
		store_errf(err, errlen, "invalid alias source: %s", source);
		return STORE_INVALID;
	}
	store_format(&src, srcbuf, sizeof(srcbuf));
	if (ntargets == 0) {
		store_errf(err, errlen, "alias %s: no target given", srcbuf);
		return STORE_INVALID;
	}
	for (i = 0; i < ntargets; i++) {
		if (store_split_address(targets[i], t.local, sizeof(t.local),
					t.domain,
					sizeof(t.domain)) != STORE_OK) {
			store_errf(err, errlen, "invalid address: %s",
				   targets[i]);
			return STORE_INVALID;
		}
		store_format(&t, tbuf, sizeof(tbuf));
		if (strcmp(tbuf, srcbuf) == 0) {
			store_errf(err, errlen,
				   "alias %s cannot point to itself", srcbuf);
			return STORE_INVALID;
		}
	}
	if ((res = store_begin(s, ST_BEGIN_WRITE, err, errlen)) != STORE_OK)
		return res;
	switch (store_lookup_domain(s, src.domain)) {
	case 0:
		store_errf(err, errlen, "no such domain: %s", src.domain);
		res = STORE_NOTFOUND;
		goto fail;
	case -1:
		res = store_dberr(s, err, errlen);
		goto fail;
	}
	for (i = 0; i < ntargets; i++) {
		/* Validated above; only lower-casing is left to redo. */
		store_split_address(targets[i], t.local, sizeof(t.local),
				    t.domain, sizeof(t.domain));
		store_format(&t, tbuf, sizeof(tbuf));
		st = store_stmt(s, ST_ALIAS_ADD);
		store_bind_text(st, 1, src.local);
		store_bind_text(st, 2, src.domain);
		store_bind_text(st, 3, tbuf);
		rc = store_step_done(s, st, err, errlen);
		if (rc == SQLITE_CONSTRAINT) {
			store_errf(err, errlen, "alias %s -> %s already exists",
				   srcbuf, tbuf);
			res = STORE_EXISTS;
			goto fail;
		}
		if (rc != SQLITE_DONE) {
			res = STORE_ERROR;
			goto fail;
		}
	}
	st = store_stmt(s, ST_ALIAS_COUNT);
	store_bind_text(st, 1, src.local);
	store_bind_text(st, 2, src.domain);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		count = sqlite3_column_int64(st, 0);
	store_stmt_done(st);
	if (rc != SQLITE_ROW) {
		res = store_dberr(s, err, errlen);
		goto fail;
	}
	if (count > STORE_MAX_TARGETS) {
		store_errf(err, errlen,
			   "alias %s would have %lld targets (at most %d)",
			   srcbuf, (long long)count, STORE_MAX_TARGETS);
		res = STORE_INVALID;
		goto fail;
	}
	return store_commit(s, err, errlen);
fail:
	store_rollback(s);
	return res;
}

enum store_result
store_alias_del(struct store *s, const char *source, const char *const *targets,
		size_t ntargets, char *err, size_t errlen)
{
	struct store_addr src, t;
	char srcbuf[STORE_ADDRESS_MAX], tbuf[STORE_ADDRESS_MAX];
	enum store_result res;
	sqlite3_stmt *st;
	size_t i;

	if (!store_parse_source(source, &src)) {
		store_errf(err, errlen, "invalid alias source: %s", source);
		return STORE_INVALID;
	}
	store_format(&src, srcbuf, sizeof(srcbuf));
	for (i = 0; i < ntargets; i++) {
		if (store_split_address(targets[i], t.local, sizeof(t.local),
					t.domain,
					sizeof(t.domain)) != STORE_OK) {
			store_errf(err, errlen, "invalid address: %s",
				   targets[i]);
			return STORE_INVALID;
		}
	}
	if ((res = store_begin(s, ST_BEGIN_WRITE, err, errlen)) != STORE_OK)
		return res;
	switch (store_lookup_domain(s, src.domain)) {
	case 0:
		store_errf(err, errlen, "no such domain: %s", src.domain);
		res = STORE_NOTFOUND;
		goto fail;
	case -1:
		res = store_dberr(s, err, errlen);
		goto fail;
	}
	if (ntargets == 0) {
		st = store_stmt(s, ST_ALIAS_DEL_ALL);
		store_bind_text(st, 1, src.local);
		store_bind_text(st, 2, src.domain);
		if (store_step_done(s, st, err, errlen) != SQLITE_DONE) {
			res = STORE_ERROR;
			goto fail;
		}
		if (sqlite3_changes(s->db) == 0) {
			store_errf(err, errlen, "no such alias: %s", srcbuf);
			res = STORE_NOTFOUND;
			goto fail;
		}
	}
	for (i = 0; i < ntargets; i++) {
		store_split_address(targets[i], t.local, sizeof(t.local),
				    t.domain, sizeof(t.domain));
		store_format(&t, tbuf, sizeof(tbuf));
		st = store_stmt(s, ST_ALIAS_DEL_ONE);
		store_bind_text(st, 1, src.local);
		store_bind_text(st, 2, src.domain);
		store_bind_text(st, 3, tbuf);
		if (store_step_done(s, st, err, errlen) != SQLITE_DONE) {
			res = STORE_ERROR;
			goto fail;
		}
		if (sqlite3_changes(s->db) == 0) {
			store_errf(err, errlen, "alias %s has no target %s",
				   srcbuf, tbuf);
			res = STORE_NOTFOUND;
			goto fail;
		}
	}
	return store_commit(s, err, errlen);
fail:
	store_rollback(s);
	return res;
}

/* cb must not call back into the store (see store_domain_list). Sources
 * are given as "local@domain", or "@domain" for a catch-all. */
enum store_result
store_alias_list(struct store *s, const char *domain,
		 void (*cb)(const char *source, const char *target, void *arg),
		 void *arg, char *err, size_t errlen)
{
	char d[STORE_DOMAIN_MAX + 1], srcbuf[STORE_ADDRESS_MAX];
	struct store_addr src;
	sqlite3_stmt *st;
	enum store_result r;
	int rc;

	r = store_list_start(s, domain, ST_ALIAS_LIST_DOMAIN, ST_ALIAS_LIST_ALL,
			     d, sizeof(d), &st, err, errlen);
	if (r != STORE_OK)
		return r;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *l = sqlite3_column_text(st, 0);
		const unsigned char *dm = sqlite3_column_text(st, 1);
		const unsigned char *t = sqlite3_column_text(st, 2);

		if (l == NULL || dm == NULL || t == NULL)
			continue;
		strlcpy(src.local, (const char *)l, sizeof(src.local));
		strlcpy(src.domain, (const char *)dm, sizeof(src.domain));
		store_format(&src, srcbuf, sizeof(srcbuf));
		cb(srcbuf, (const char *)t, arg);
	}
	if (rc != SQLITE_DONE)
		store_dberr(s, err, errlen);
	store_stmt_done(st);
	return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

/* ------------------------------------------------------------------ */
/* Recipient resolution */

/* Appends a target unless it is already there (dedupe). Returns -1 when the
 * caller's array is full. */
static int
store_resolve_add(struct store_resolution *r, const char *local,
		  const char *domain, uint64_t quota, int enabled, int remote)
{
	struct store_target *t;
	size_t i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->targets[i].local, local) == 0 &&
		    strcmp(r->targets[i].domain, domain) == 0)
			return 0;
	if (r->n == r->max)
		return -1;
	t = &r->targets[r->n++];
	memset(t, 0, sizeof(*t));
	strlcpy(t->local, local, sizeof(t->local));
	strlcpy(t->domain, domain, sizeof(t->domain));
	t->quota = quota;
	t->enabled = enabled;
	t->remote = remote;
	return 0;
}

/* Returns 1 when a was already expanded, else records it and returns 0. */
static int
store_resolve_seen(struct store_resolution *r, const struct store_addr *a)
{
	size_t i;

	for (i = 0; i < r->nseen; i++)
		if (strcmp(r->seen[i].local, a->local) == 0 &&
		    strcmp(r->seen[i].domain, a->domain) == 0)
			return 1;
	if (r->nseen < sizeof(r->seen) / sizeof(r->seen[0]))
		r->seen[r->nseen++] = *a;
	return 0;
}

/* Expands one alias target found at depth (1 = target of the recipient's
 * alias, 2 = target of an alias among those). Returns 0, or -1 on a
 * database error. */
static int
store_resolve_target(struct store *s, struct store_resolution *r,
		     const char *address, int depth)
{
	char(*next)[STORE_ADDRESS_MAX] = NULL;
	struct store_mailbox mb;
	struct store_addr a;
	size_t i, n = 0;
	int rc;

	if (store_split_address(address, a.local, sizeof(a.local), a.domain,
				sizeof(a.domain)) != STORE_OK)
		return 0; /* cannot be stored; ignore rather than fail */
	if ((rc = store_lookup_domain(s, a.domain)) == -1)
		return -1;
	if (rc == 0) {
		store_resolve_add(r, a.local, a.domain, 0, 1, 1);
		return 0;
	}
	if ((rc = store_lookup_mailbox(s, a.local, a.domain, &mb)) == -1)
		return -1;
	if (rc == 1) {
		store_resolve_add(r, mb.local, mb.domain, mb.quota, mb.enabled,
				  0);
		return 0;
	}
	/* Only one level of alias to alias; a local target that is neither
	 * a mailbox nor (at depth 1) an alias is dropped. */
	if (depth > 1 || store_resolve_seen(r, &a))
		return 0;
	next = xcalloc(STORE_MAX_TARGETS, sizeof(*next));
	if (store_lookup_alias(s, a.local, a.domain, next, STORE_MAX_TARGETS,
			       &n) == -1) {
		free(next);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (store_resolve_target(s, r, next[i], depth + 1) == -1) {
			free(next);
			return -1;
		}
	}
	free(next);
	return 0;
}

enum store_rcpt
store_resolve(struct store *s, const char *local, const char *domain,
	      struct store_target *targets, size_t max, size_t *ntargets_r)
{
	struct store_resolution *r;
	char(*first)[STORE_ADDRESS_MAX] = NULL;
	struct store_mailbox mb;
	struct store_addr rcpt;
	enum store_rcpt ret = STORE_RCPT_ERROR;
	size_t i, n = 0;
	int rc;

	*ntargets_r = 0;
	if (!store_norm_domain(domain, rcpt.domain, sizeof(rcpt.domain)))
		return STORE_RCPT_FOREIGN;
	r = xcalloc(1, sizeof(*r));
	r->targets = targets;
	r->max = max;
	/* One read transaction: the whole expansion sees one snapshot even
	 * while posternctl commits changes. */
	if (store_begin(s, ST_BEGIN_READ, NULL, 0) != STORE_OK)
		goto out;
	if ((rc = store_lookup_domain(s, rcpt.domain)) != 1) {
		ret = rc == 0 ? STORE_RCPT_FOREIGN : STORE_RCPT_ERROR;
		goto out;
	}
	if (strlcpy(rcpt.local, local, sizeof(rcpt.local)) >=
		sizeof(rcpt.local) ||
	    !store_check_local(rcpt.local)) {
		ret = STORE_RCPT_UNKNOWN;
		goto out;
	}
	util_lowercase(rcpt.local);
	if ((rc = store_lookup_mailbox(s, rcpt.local, rcpt.domain, &mb)) == -1)
		goto out;
	if (rc == 1) {
		store_resolve_add(r, mb.local, mb.domain, mb.quota, mb.enabled,
				  0);
		ret = STORE_RCPT_LOCAL;
		goto out;
	}
	store_resolve_seen(r, &rcpt);
	first = xcalloc(STORE_MAX_TARGETS, sizeof(*first));
	if (store_lookup_alias(s, rcpt.local, rcpt.domain, first,
			       STORE_MAX_TARGETS, &n) == -1)
		goto out;
	/* RFC 5321 §2.3.5: the domain is ours, so the catch-all takes any
	 * local part that is neither a mailbox nor an alias. */
	if (n == 0 && store_lookup_alias(s, "", rcpt.domain, first,
					 STORE_MAX_TARGETS, &n) == -1)
		goto out;
	for (i = 0; i < n; i++)
		if (store_resolve_target(s, r, first[i], 1) == -1)
			goto out;
	ret = r->n > 0 ? STORE_RCPT_LOCAL : STORE_RCPT_UNKNOWN;
out:
	if (ret == STORE_RCPT_ERROR)
		log_warnx("store: resolving %s@%s: %s", local, domain,
			  sqlite3_errmsg(s->db));
	if (!sqlite3_get_autocommit(s->db))
		store_commit(s, NULL, 0);
	*ntargets_r = ret == STORE_RCPT_LOCAL ? r->n : 0;
	free(first);
	free(r);
	return ret;
}
