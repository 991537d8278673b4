/* Unit tests for store.c: name validation tables, then a real SQLite store
 * in a temporary directory (administration, resolution, persistence,
 * concurrent handles, migrations). */
#include <ftw.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "store.h"
#include "util.h"

static char tmpdir[] = "/tmp/test_store.XXXXXX";
static char datadir[512];
static const char *hash1 =
    "$y$j9T$abcdefghijklmnop$0123456789abcdefghijklmnopqrstuvwxyzABCDEF";
static const char *hash2 =
    "$y$j9T$ponmlkjihgfedcba$0123456789abcdefghijklmnopqrstuvwxyzABCDEF";

/* ------------------------------------------------------------------ */
/* Validation tables */

struct name_case {
	const char *in;
	int valid;
};

static void
test_check_domain(void)
{
	static const struct name_case cases[] = {
	    {"example.org", 1},
	    {"EXAMPLE.ORG", 1},
	    {"a", 1},
	    {"localhost", 1},
	    {"mail.example.co.uk", 1},
	    {"xn--bcher-kva.example", 1},
	    {"a-b.c-d.e", 1},
	    {"123.example", 1},
	    {"a1.b2", 1},
	    {"", 0},
	    {".", 0},
	    {".example.org", 0},
	    {"example.org.", 0},
	    {"example..org", 0},
	    {"-example.org", 0},
	    {"example-.org", 0},
	    {"example.-org", 0},
	    {"example.org-", 0},
	    {"exa_mple.org", 0},
	    {"exa mple.org", 0},
	    {"example.org ", 0},
	    {"ex@mple.org", 0},
	    {"[127.0.0.1]", 0},
	    {"b\xc3\xbc"
	     "cher.example",
	     0},
	    {"example.org\n", 0},
	    {"a/b", 0},
	};
	char buf[400];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (store_check_domain(cases[i].in) != cases[i].valid) {
			fprintf(stderr, "  domain \"%s\": expected %d\n",
				cases[i].in, cases[i].valid);
			CHECK(0);
		}
	}

	/* Label of 63 octets is fine, 64 is not. */
	memset(buf, 'a', 63);
	strlcpy(buf + 63, ".org", sizeof(buf) - 63);
	CHECK(store_check_domain(buf) == 1);
	memset(buf, 'a', 64);
	strlcpy(buf + 64, ".org", sizeof(buf) - 64);
	CHECK(store_check_domain(buf) == 0);

	/* 253 octets in total is fine, 254 is not: 4 x 62 + 3 dots + 2. */
	memset(buf, 0, sizeof(buf));
	for (i = 0; i < 4; i++) {
		memset(buf + i * 63, 'b', 62);
		buf[i * 63 + 62] = '.';
	}
	strlcpy(buf + 252, "c", sizeof(buf) - 252);
	CHECK(strlen(buf) == 253);
	CHECK(store_check_domain(buf) == 1);
	strlcpy(buf + 252, "cc", sizeof(buf) - 252);
	CHECK(strlen(buf) == 254);
	CHECK(store_check_domain(buf) == 0);
}

static void
test_check_local(void)
{
	static const struct name_case cases[] = {
	    {"bob", 1},
	    {"Bob", 1},
	    {"bob.smith", 1},
	    {"bob+tag", 1},
	    {"b", 1},
	    {"0", 1},
	    {"o'hara", 1},
	    {"a#b$c&d*e+f-g/h=i?j^k_l`m{n|o}p~q", 1},
	    {"first.middle.last", 1},
	    {"", 0},
	    {".", 0},
	    {".bob", 0},
	    {"bob.", 0},
	    {"bob..smith", 0},
	    {"bob smith", 0},
	    {"bob@x", 0},
	    {"bob%x", 0},
	    {"bob!x", 0},
	    {"\"bob\"", 0},
	    {"bob(comment)", 0},
	    {"bob,x", 0},
	    {"bob:x", 0},
	    {"bob;x", 0},
	    {"bob<x>", 0},
	    {"bob[x]", 0},
	    {"bob\\x", 0},
	    {"b\xc3\xb6"
	     "b",
	     0},
	    {"bob\t", 0},
	    {"bob\r\n", 0},
	};
	char buf[80];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (store_check_local(cases[i].in) != cases[i].valid) {
			fprintf(stderr, "  local \"%s\": expected %d\n",
				cases[i].in, cases[i].valid);
			CHECK(0);
		}
	}
	memset(buf, 'x', 64);
	buf[64] = '\0';
	CHECK(store_check_local(buf) == 1);
	buf[64] = 'x';
	buf[65] = '\0';
	CHECK(store_check_local(buf) == 0);
}

static void
test_split_address(void)
{
	static const struct {
		const char *in;
		enum store_result res;
		const char *local, *domain;
	} cases[] = {
	    {"bob@example.org", STORE_OK, "bob", "example.org"},
	    {"Bob.Smith@Example.ORG", STORE_OK, "bob.smith", "example.org"},
	    {"bob+tag@a.b", STORE_OK, "bob+tag", "a.b"},
	    {"x@localhost", STORE_OK, "x", "localhost"},
	    {"", STORE_INVALID, "", ""},
	    {"bob", STORE_INVALID, "", ""},
	    {"@example.org", STORE_INVALID, "", ""},
	    {"bob@", STORE_INVALID, "", ""},
	    {"bob@@example.org", STORE_INVALID, "", ""},
	    {"a@b@example.org", STORE_INVALID, "", ""},
	    {"bob@example..org", STORE_INVALID, "", ""},
	    {"bob@exa_mple.org", STORE_INVALID, "", ""},
	    {".bob@example.org", STORE_INVALID, "", ""},
	    {"bob.@example.org", STORE_INVALID, "", ""},
	    {"bob%relay@example.org", STORE_INVALID, "", ""},
	    {"relay!bob@example.org", STORE_INVALID, "", ""},
	    {"\"bob\"@example.org", STORE_INVALID, "", ""},
	    {"bob@[127.0.0.1]", STORE_INVALID, "", ""},
	    {"<bob@example.org>", STORE_INVALID, "", ""},
	    {" bob@example.org", STORE_INVALID, "", ""},
	    {"bob@example.org ", STORE_INVALID, "", ""},
	};
	char local[STORE_LOCAL_MAX + 1], domain[STORE_DOMAIN_MAX + 1];
	char buf[400];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum store_result r = store_split_address(
		    cases[i].in, local, sizeof(local), domain, sizeof(domain));

		if (r != cases[i].res || strcmp(local, cases[i].local) != 0 ||
		    strcmp(domain, cases[i].domain) != 0) {
			fprintf(stderr,
				"  split \"%s\": got %d \"%s\" \"%s\"\n",
				cases[i].in, r, local, domain);
			CHECK(0);
		}
	}

	/* Output buffers too small for the parts. */
	CHECK(store_split_address("bob@example.org", local, 3, domain,
				  sizeof(domain)) == STORE_INVALID);
	CHECK(store_split_address("bob@example.org", local, sizeof(local),
				  domain, 5) == STORE_INVALID);
	CHECK(store_split_address(NULL, local, sizeof(local), domain,
				  sizeof(domain)) == STORE_INVALID);

	/* 64-octet local part is the limit. */
	memset(buf, 'l', 64);
	strlcpy(buf + 64, "@example.org", sizeof(buf) - 64);
	CHECK(store_split_address(buf, local, sizeof(local), domain,
				  sizeof(domain)) == STORE_OK);
	memset(buf, 'l', 65);
	strlcpy(buf + 65, "@example.org", sizeof(buf) - 65);
	CHECK(store_split_address(buf, local, sizeof(local), domain,
				  sizeof(domain)) == STORE_INVALID);
}

/* ------------------------------------------------------------------ */
/* A real store */

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static struct store *
open_store(void)
{
	struct store *s = NULL;
	char err[256] = "";

	if (store_open(datadir, &s, err, sizeof(err)) != STORE_OK) {
		fprintf(stderr, "  store_open: %s\n", err);
		return NULL;
	}
	return s;
}

static void
list_collect(const char *domain, void *arg)
{
	char *out = arg;
	size_t len = strlen(out);

	snprintf(out + len, 1024 - len, "%s;", domain);
}

static void
mailbox_collect(const struct store_mailbox *mb, void *arg)
{
	char *out = arg;
	size_t len = strlen(out);

	snprintf(out + len, 1024 - len, "%s@%s:%llu:%d;", mb->local, mb->domain,
		 (unsigned long long)mb->quota, mb->enabled);
}

static void
alias_collect(const char *source, const char *target, void *arg)
{
	char *out = arg;
	size_t len = strlen(out);

	snprintf(out + len, 1024 - len, "%s>%s;", source, target);
}

static int
sql_int(const char *path, const char *sql, char *text, size_t textlen)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int v = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			v = sqlite3_column_int(st, 0);
			if (text != NULL && sqlite3_column_text(st, 0))
				strlcpy(
				    text,
				    (const char *)sqlite3_column_text(st, 0),
				    textlen);
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return v;
}

static void
test_open_creates(void)
{
	char path[600], mode[32] = "";
	struct store *s;
	struct stat st;
	mode_t old;

	/* Even with a permissive umask the files must be private. */
	old = umask(0);
	s = open_store();
	umask(old);
	CHECK(s != NULL);
	CHECK(stat(datadir, &st) == 0 && (st.st_mode & 0777) == 0700);
	snprintf(path, sizeof(path), "%s/postern.db", datadir);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(sql_int(path, "PRAGMA user_version", NULL, 0) == 1);
	sql_int(path, "PRAGMA journal_mode", mode, sizeof(mode));
	CHECK_STR(mode, "wal");
	store_close(&s);
	CHECK(s == NULL);
	store_close(&s); /* closing NULL is harmless */
}

static void
test_open_errors(void)
{
	struct store *s = (struct store *)1;
	char err[256] = "", path[600];
	FILE *fp;

	/* data_dir below a regular file cannot be created. */
	snprintf(path, sizeof(path), "%s/afile", tmpdir);
	fp = fopen(path, "w");
	CHECK(fp != NULL);
	if (fp)
		fclose(fp);
	snprintf(path, sizeof(path), "%s/afile/data", tmpdir);
	CHECK(store_open(path, &s, err, sizeof(err)) == STORE_ERROR);
	CHECK(s == NULL);
	CHECK(strstr(err, "cannot create") != NULL);

	/* A file that is not a database. */
	snprintf(path, sizeof(path), "%s/junk", tmpdir);
	CHECK(util_mkdirs(path, 0700) == 0);
	snprintf(path, sizeof(path), "%s/junk/postern.db", tmpdir);
	fp = fopen(path, "w");
	CHECK(fp != NULL);
	if (fp) {
		fputs("this is not an SQLite database, not at all......"
		      "................................................",
		      fp);
		fclose(fp);
	}
	snprintf(path, sizeof(path), "%s/junk", tmpdir);
	err[0] = '\0';
	CHECK(store_open(path, &s, err, sizeof(err)) == STORE_ERROR);
	CHECK(s == NULL);
	CHECK(err[0] != '\0');
}

static void
test_domains(void)
{
	struct store *s = open_store();
	char err[256], out[1024] = "";

	if (s == NULL) {
		CHECK(0);
		return;
	}
	CHECK(store_domain_add(s, "Example.ORG", err, sizeof(err)) == STORE_OK);
	CHECK(store_domain_add(s, "example.org", err, sizeof(err)) ==
	      STORE_EXISTS);
	CHECK_STR(err, "domain example.org already exists");
	CHECK(store_domain_add(s, "b.example", err, sizeof(err)) == STORE_OK);
	CHECK(store_domain_add(s, "bad..name", err, sizeof(err)) ==
	      STORE_INVALID);
	CHECK_STR(err, "invalid domain name: bad..name");
	CHECK(store_domain_add(s, "", err, sizeof(err)) == STORE_INVALID);

	CHECK(store_domain_exists(s, "example.org") == 1);
	CHECK(store_domain_exists(s, "EXAMPLE.org") == 1);
	CHECK(store_domain_exists(s, "other.org") == 0);
	CHECK(store_domain_exists(s, "bad..name") == 0);

	CHECK(store_domain_list(s, list_collect, out, err, sizeof(err)) ==
	      STORE_OK);
	CHECK_STR(out, "b.example;example.org;");

	CHECK(store_domain_del(s, "nope.org", err, sizeof(err)) ==
	      STORE_NOTFOUND);
	CHECK_STR(err, "no such domain: nope.org");
	CHECK(store_domain_del(s, "x..y", err, sizeof(err)) == STORE_INVALID);
	CHECK(store_domain_del(s, "B.Example", err, sizeof(err)) == STORE_OK);
	CHECK(store_domain_exists(s, "b.example") == 0);
	out[0] = '\0';
	CHECK(store_domain_list(s, list_collect, out, err, sizeof(err)) ==
	      STORE_OK);
	CHECK_STR(out, "example.org;");
	store_close(&s);
}

static void
test_mailboxes(void)
{
	struct store *s = open_store();
	struct store_mailbox mb;
	char err[256], out[1024] = "";

	if (s == NULL) {
		CHECK(0);
		return;
	}
	/* example.org exists from test_domains. */
	CHECK(store_domain_add(s, "other.net", err, sizeof(err)) == STORE_OK);
	CHECK(store_mailbox_add(s, "Bob@Example.org", hash1, 0, err,
				sizeof(err)) == STORE_OK);
	CHECK(store_mailbox_add(s, "bob@example.org", hash1, 0, err,
				sizeof(err)) == STORE_EXISTS);
	CHECK_STR(err, "mailbox bob@example.org already exists");
	CHECK(store_mailbox_add(s, "x@nowhere.org", hash1, 0, err,
				sizeof(err)) == STORE_NOTFOUND);
	CHECK_STR(err, "no such domain: nowhere.org");
	CHECK(store_mailbox_add(s, "x y@example.org", hash1, 0, err,
				sizeof(err)) == STORE_INVALID);
	CHECK_STR(err, "invalid address: x y@example.org");
	CHECK(store_mailbox_add(s, "x@example.org", "", 0, err, sizeof(err)) ==
	      STORE_INVALID);
	CHECK(store_mailbox_add(s, "x@example.org", hash1, UINT64_MAX, err,
				sizeof(err)) == STORE_INVALID);
	CHECK(store_mailbox_add(s, "alice@example.org", hash2, 1048576, err,
				sizeof(err)) == STORE_OK);
	CHECK(store_mailbox_add(s, "carol@other.net", hash2, 5, err,
				sizeof(err)) == STORE_OK);

	CHECK(store_mailbox_get(s, "BOB@example.ORG", &mb) == STORE_OK);
	CHECK_STR(mb.local, "bob");
	CHECK_STR(mb.domain, "example.org");
	CHECK_STR(mb.password_hash, hash1);
	CHECK(mb.quota == 0 && mb.enabled == 1);
	CHECK(store_mailbox_get(s, "nobody@example.org", &mb) ==
	      STORE_NOTFOUND);
	CHECK(store_mailbox_get(s, "bad", &mb) == STORE_INVALID);

	CHECK(store_mailbox_list(s, NULL, mailbox_collect, out, err,
				 sizeof(err)) == STORE_OK);
	CHECK_STR(out, "alice@example.org:1048576:1;bob@example.org:0:1;"
		       "carol@other.net:5:1;");
	out[0] = '\0';
	CHECK(store_mailbox_list(s, "Other.NET", mailbox_collect, out, err,
				 sizeof(err)) == STORE_OK);
	CHECK_STR(out, "carol@other.net:5:1;");
	CHECK(store_mailbox_list(s, "unknown.org", mailbox_collect, out, err,
				 sizeof(err)) == STORE_NOTFOUND);
	CHECK_STR(err, "no such domain: unknown.org");
	CHECK(store_mailbox_list(s, "-bad", mailbox_collect, out, err,
				 sizeof(err)) == STORE_INVALID);

	CHECK(store_mailbox_set_password(s, "bob@example.org", hash2, err,
					 sizeof(err)) == STORE_OK);
	CHECK(store_mailbox_set_quota(s, "bob@example.org", 1000, err,
				      sizeof(err)) == STORE_OK);
	CHECK(store_mailbox_set_enabled(s, "bob@example.org", 0, err,
					sizeof(err)) == STORE_OK);
	CHECK(store_mailbox_get(s, "bob@example.org", &mb) == STORE_OK);
	CHECK_STR(mb.password_hash, hash2);
	CHECK(mb.quota == 1000 && mb.enabled == 0);
	/* Setting the same value again is not "not found". */
	CHECK(store_mailbox_set_enabled(s, "bob@example.org", 0, err,
					sizeof(err)) == STORE_OK);
	CHECK(store_mailbox_set_enabled(s, "bob@example.org", 1, err,
					sizeof(err)) == STORE_OK);
	CHECK(store_mailbox_set_quota(s, "bob@example.org", UINT64_MAX, err,
				      sizeof(err)) == STORE_INVALID);
	CHECK(store_mailbox_set_password(s, "bob@example.org", "", err,
					 sizeof(err)) == STORE_INVALID);

	CHECK(store_mailbox_set_password(s, "zed@example.org", hash2, err,
					 sizeof(err)) == STORE_NOTFOUND);
	CHECK_STR(err, "no such mailbox: zed@example.org");
	CHECK(store_mailbox_set_quota(s, "zed@example.org", 1, err,
				      sizeof(err)) == STORE_NOTFOUND);
	CHECK(store_mailbox_set_enabled(s, "zed@example.org", 1, err,
					sizeof(err)) == STORE_NOTFOUND);
	CHECK(store_mailbox_set_enabled(s, "zed@", 1, err, sizeof(err)) ==
	      STORE_INVALID);
	CHECK(store_mailbox_del(s, "zed@example.org", err, sizeof(err)) ==
	      STORE_NOTFOUND);

	/* A domain with mailboxes cannot go. */
	CHECK(store_domain_del(s, "other.net", err, sizeof(err)) ==
	      STORE_EXISTS);
	CHECK(strstr(err, "1 mailbox") != NULL);
	CHECK(store_mailbox_del(s, "Carol@other.net", err, sizeof(err)) ==
	      STORE_OK);
	CHECK(store_mailbox_get(s, "carol@other.net", &mb) == STORE_NOTFOUND);
	CHECK(store_domain_del(s, "other.net", err, sizeof(err)) == STORE_OK);
	store_close(&s);
}

static void
test_aliases(void)
{
	struct store *s = open_store();
	char err[256], out[1024] = "";
	const char *t1[] = {"Bob@example.org", "friend@remote.example"};
	const char *t2[] = {"alice@example.org"};
	const char *bad[] = {"alice@example.org", "not an address"};
	const char *self[] = {"list@example.org"};
	const char *dup[] = {"carol@example.org", "bob@example.org"};
	const char *many[STORE_MAX_TARGETS + 1];
	char manybuf[STORE_MAX_TARGETS + 1][32];
	size_t i;

	if (s == NULL) {
		CHECK(0);
		return;
	}
	CHECK(store_alias_add(s, "List@Example.org", t1, 2, err, sizeof(err)) ==
	      STORE_OK);
	CHECK(store_alias_add(s, "list@example.org", t2, 1, err, sizeof(err)) ==
	      STORE_OK);
	CHECK(store_alias_add(s, "list@example.org", t2, 1, err, sizeof(err)) ==
	      STORE_EXISTS);
	CHECK_STR(err, "alias list@example.org -> alice@example.org already "
		       "exists");
	/* All or nothing: carol is not added when bob is a duplicate. */
	CHECK(store_alias_add(s, "list@example.org", dup, 2, err,
			      sizeof(err)) == STORE_EXISTS);
	CHECK(store_alias_add(s, "list@example.org", bad, 2, err,
			      sizeof(err)) == STORE_INVALID);
	CHECK_STR(err, "invalid address: not an address");
	CHECK(store_alias_add(s, "list@example.org", self, 1, err,
			      sizeof(err)) == STORE_INVALID);
	CHECK_STR(err, "alias list@example.org cannot point to itself");
	CHECK(store_alias_add(s, "list@example.org", t2, 0, err, sizeof(err)) ==
	      STORE_INVALID);
	CHECK(store_alias_add(s, "x@nowhere.org", t2, 1, err, sizeof(err)) ==
	      STORE_NOTFOUND);
	CHECK_STR(err, "no such domain: nowhere.org");
	CHECK(store_alias_add(s, "bad alias@example.org", t2, 1, err,
			      sizeof(err)) == STORE_INVALID);
	CHECK(store_alias_add(s, "@", t2, 1, err, sizeof(err)) ==
	      STORE_INVALID);
	CHECK(store_alias_add(s, "@Example.Org", t2, 1, err, sizeof(err)) ==
	      STORE_OK);

	CHECK(store_alias_list(s, NULL, alias_collect, out, err, sizeof(err)) ==
	      STORE_OK);
	CHECK_STR(out, "@example.org>alice@example.org;"
		       "list@example.org>alice@example.org;"
		       "list@example.org>bob@example.org;"
		       "list@example.org>friend@remote.example;");
	out[0] = '\0';
	CHECK(store_alias_list(s, "nowhere.org", alias_collect, out, err,
			       sizeof(err)) == STORE_NOTFOUND);

	/* The expansion limit is enforced when adding. */
	for (i = 0; i < STORE_MAX_TARGETS + 1; i++) {
		snprintf(manybuf[i], sizeof(manybuf[i]), "u%zu@remote.example",
			 i);
		many[i] = manybuf[i];
	}
	CHECK(store_alias_add(s, "big@example.org", many, STORE_MAX_TARGETS + 1,
			      err, sizeof(err)) == STORE_INVALID);
	CHECK(strstr(err, "at most") != NULL);
	CHECK(store_alias_add(s, "big@example.org", many, STORE_MAX_TARGETS,
			      err, sizeof(err)) == STORE_OK);
	CHECK(store_alias_add(s, "big@example.org", many + STORE_MAX_TARGETS, 1,
			      err, sizeof(err)) == STORE_INVALID);
	CHECK(store_alias_del(s, "big@example.org", NULL, 0, err,
			      sizeof(err)) == STORE_OK);

	/* Domain with aliases cannot go. */
	CHECK(store_domain_del(s, "example.org", err, sizeof(err)) ==
	      STORE_EXISTS);

	CHECK(store_alias_del(s, "list@example.org", t2, 1, err, sizeof(err)) ==
	      STORE_OK);
	CHECK(store_alias_del(s, "list@example.org", t2, 1, err, sizeof(err)) ==
	      STORE_NOTFOUND);
	CHECK_STR(err, "alias list@example.org has no target "
		       "alice@example.org");
	CHECK(store_alias_del(s, "nolist@example.org", NULL, 0, err,
			      sizeof(err)) == STORE_NOTFOUND);
	CHECK_STR(err, "no such alias: nolist@example.org");
	CHECK(store_alias_del(s, "list@nowhere.org", NULL, 0, err,
			      sizeof(err)) == STORE_NOTFOUND);
	CHECK(store_alias_del(s, "list@example.org", bad + 1, 1, err,
			      sizeof(err)) == STORE_INVALID);
	CHECK(store_alias_del(s, "@example.org", NULL, 0, err, sizeof(err)) ==
	      STORE_OK);
	CHECK(store_alias_del(s, "list@example.org", NULL, 0, err,
			      sizeof(err)) == STORE_OK);
	out[0] = '\0';
	CHECK(store_alias_list(s, "example.org", alias_collect, out, err,
			       sizeof(err)) == STORE_OK);
	CHECK_STR(out, "");
	store_close(&s);
}

/* Formats resolved targets as "local@domain[:r][:d]" joined by ';'. */
static enum store_rcpt
resolve(struct store *s, const char *local, const char *domain, char *out,
	size_t outlen)
{
	struct store_target t[STORE_MAX_TARGETS];
	size_t n = 99, i, len;
	enum store_rcpt r;

	r = store_resolve(s, local, domain, t, STORE_MAX_TARGETS, &n);
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		len = strlen(out);
		snprintf(out + len, outlen - len, "%s@%s%s%s;", t[i].local,
			 t[i].domain, t[i].remote ? ":r" : "",
			 t[i].enabled ? "" : ":d");
	}
	if (r != STORE_RCPT_LOCAL && n != 0)
		snprintf(out, outlen, "n=%zu with result %d", n, r);
	return r;
}

static void
add_alias(struct store *s, const char *source, const char *target)
{
	char err[256];
	const char *t[1];

	t[0] = target;
	if (store_alias_add(s, source, t, 1, err, sizeof(err)) != STORE_OK) {
		fprintf(stderr, "  alias %s -> %s: %s\n", source, target, err);
		CHECK(0);
	}
}

static void
test_resolve(void)
{
	struct store *s = open_store();
	struct store_target t[2];
	char err[256], out[2048];
	size_t n;

	if (s == NULL) {
		CHECK(0);
		return;
	}
	/* example.org holds bob (disabled below) and alice from before. */
	CHECK(store_domain_add(s, "res.test", err, sizeof(err)) == STORE_OK);
	CHECK(store_domain_add(s, "empty.test", err, sizeof(err)) == STORE_OK);
	CHECK(store_mailbox_add(s, "m1@res.test", hash1, 100, err,
				sizeof(err)) == STORE_OK);
	CHECK(store_mailbox_add(s, "m2@res.test", hash1, 0, err, sizeof(err)) ==
	      STORE_OK);
	CHECK(store_mailbox_add(s, "off@res.test", hash1, 0, err,
				sizeof(err)) == STORE_OK);
	CHECK(store_mailbox_set_enabled(s, "off@res.test", 0, err,
					sizeof(err)) == STORE_OK);

	/* Mailbox. */
	CHECK(resolve(s, "m1", "res.test", out, sizeof(out)) ==
	      STORE_RCPT_LOCAL);
	CHECK_STR(out, "m1@res.test;");
	CHECK(store_resolve(s, "m1", "res.test", t, 2, &n) == STORE_RCPT_LOCAL);
	CHECK(n == 1 && t[0].quota == 100 && t[0].enabled == 1 &&
	      t[0].remote == 0);
	/* Disabled mailboxes come back as such; the caller decides. */
	CHECK(resolve(s, "off", "res.test", out, sizeof(out)) ==
	      STORE_RCPT_LOCAL);
	CHECK_STR(out, "off@res.test:d;");
	/* Upper case input still finds it. */
	CHECK(resolve(s, "M1", "RES.test", out, sizeof(out)) ==
	      STORE_RCPT_LOCAL);
	CHECK_STR(out, "m1@res.test;");

	/* Unknown and foreign. */
	CHECK(resolve(s, "nobody", "res.test", out, sizeof(out)) ==
	      STORE_RCPT_UNKNOWN);
	CHECK_STR(out, "");
	CHECK(resolve(s, "m1", "elsewhere.org", out, sizeof(out)) ==
	      STORE_RCPT_FOREIGN);
	CHECK(resolve(s, "m1", "bad..domain", out, sizeof(out)) ==
	      STORE_RCPT_FOREIGN);
	CHECK(resolve(s, "bad local", "res.test", out, sizeof(out)) ==
	      STORE_RCPT_UNKNOWN);

	/* Alias to a mailbox, a remote address and a disabled mailbox. */
	add_alias(s, "a1@res.test", "m1@res.test");
	add_alias(s, "a1@res.test", "someone@remote.example");
	add_alias(s, "a1@res.test", "off@res.test");
	CHECK(resolve(s, "a1", "res.test", out, sizeof(out)) ==
	      STORE_RCPT_LOCAL);
	CHECK_STR(out, "m1@res.test;off@res.test:d;"
		       "someone@remote.example:r;");

	/* Alias to an alias (one level followed), with dedupe. */
	add_alias(s, "a2@res.test", "a1@res.test");
	add_alias(s, "a2@res.test", "m1@res.test");
	add_alias(s, "a2@res.test", "m2@res.test");
	CHECK(resolve(s, "a2", "res.test", out, sizeof(out)) ==
	      STORE_RCPT_LOCAL);
	CHECK_STR(out, "m1@res.test;off@res.test:d;"
		       "someone@remote.example:r;m2@res.test;");

	/* A third level is not followed: a3 -> a2 -> a1 -> m1 gives only
	 * a2's direct mailbox targets. */
	add_alias(s, "a3@res.test", "a2@res.test");
	CHECK(resolve(s, "a3", "res.test", out, sizeof(out)) ==
	      STORE_RCPT_LOCAL);
	CHECK_STR(out, "m1@res.test;m2@res.test;");

	/* Loops are cut. */
	add_alias(s, "loop1@res.test", "loop2@res.test");
	add_alias(s, "loop2@res.test", "loop1@res.test");
	CHECK(resolve(s, "loop1", "res.test", out, sizeof(out)) ==
	      STORE_RCPT_UNKNOWN);
	add_alias(s, "loop2@res.test", "m2@res.test");
	CHECK(resolve(s, "loop1", "res.test", out, sizeof(out)) ==
	      STORE_RCPT_LOCAL);
	CHECK_STR(out, "m2@res.test;");

	/* A local target with no mailbox is skipped; if nothing is left,
	 * the recipient is unknown. */
	add_alias(s, "ghost@res.test", "nobody@res.test");
	CHECK(resolve(s, "ghost", "res.test", out, sizeof(out)) ==
	      STORE_RCPT_UNKNOWN);
	add_alias(s, "ghost@res.test", "m1@res.test");
	CHECK(resolve(s, "ghost", "res.test", out, sizeof(out)) ==
	      STORE_RCPT_LOCAL);
	CHECK_STR(out, "m1@res.test;");

	/* Target in another local domain. */
	add_alias(s, "x@res.test", "alice@example.org");
	CHECK(resolve(s, "x", "res.test", out, sizeof(out)) ==
	      STORE_RCPT_LOCAL);
	CHECK_STR(out, "alice@example.org;");

	/* Catch-all: only for names that are neither mailbox nor alias. */
	add_alias(s, "@res.test", "m2@res.test");
	CHECK(resolve(s, "random", "res.test", out, sizeof(out)) ==
	      STORE_RCPT_LOCAL);
	CHECK_STR(out, "m2@res.test;");
	CHECK(resolve(s, "m1", "res.test", out, sizeof(out)) ==
	      STORE_RCPT_LOCAL);
	CHECK_STR(out, "m1@res.test;");
	CHECK(resolve(s, "a1", "res.test", out, sizeof(out)) ==
	      STORE_RCPT_LOCAL);
	CHECK_STR(out, "m1@res.test;off@res.test:d;"
		       "someone@remote.example:r;");
	/* "nobody" is caught, but ghost's dead target is not re-caught. */
	CHECK(resolve(s, "nobody", "res.test", out, sizeof(out)) ==
	      STORE_RCPT_LOCAL);
	CHECK_STR(out, "m2@res.test;");
	/* A catch-all to a remote address. */
	add_alias(s, "@empty.test", "fwd@remote.example");
	CHECK(resolve(s, "anything", "empty.test", out, sizeof(out)) ==
	      STORE_RCPT_LOCAL);
	CHECK_STR(out, "fwd@remote.example:r;");

	/* Only max targets are written. */
	CHECK(store_resolve(s, "a1", "res.test", t, 2, &n) == STORE_RCPT_LOCAL);
	CHECK(n == 2);
	store_close(&s);
}

/* The daemon keeps its handle open while posternctl changes the data: the
 * daemon's next call must see the change. */
static void
test_two_handles(void)
{
	struct store *daemon = open_store(), *ctl = open_store();
	struct store_mailbox mb;
	char err[256], out[1024];

	if (daemon == NULL || ctl == NULL) {
		CHECK(0);
		store_close(&daemon);
		store_close(&ctl);
		return;
	}
	CHECK(resolve(daemon, "new", "two.test", out, sizeof(out)) ==
	      STORE_RCPT_FOREIGN);
	CHECK(store_domain_add(ctl, "two.test", err, sizeof(err)) == STORE_OK);
	CHECK(resolve(daemon, "new", "two.test", out, sizeof(out)) ==
	      STORE_RCPT_UNKNOWN);
	CHECK(store_mailbox_add(ctl, "new@two.test", hash1, 0, err,
				sizeof(err)) == STORE_OK);
	CHECK(resolve(daemon, "new", "two.test", out, sizeof(out)) ==
	      STORE_RCPT_LOCAL);
	CHECK(store_mailbox_get(daemon, "new@two.test", &mb) == STORE_OK);
	CHECK_STR(mb.password_hash, hash1);
	CHECK(store_mailbox_set_password(ctl, "new@two.test", hash2, err,
					 sizeof(err)) == STORE_OK);
	CHECK(store_mailbox_get(daemon, "new@two.test", &mb) == STORE_OK);
	CHECK_STR(mb.password_hash, hash2);
	/* And the other way round. */
	CHECK(store_mailbox_del(daemon, "new@two.test", err, sizeof(err)) ==
	      STORE_OK);
	CHECK(store_mailbox_get(ctl, "new@two.test", &mb) == STORE_NOTFOUND);
	CHECK(store_domain_del(ctl, "two.test", err, sizeof(err)) == STORE_OK);
	store_close(&daemon);
	store_close(&ctl);
}

static void
test_persistence(void)
{
	struct store *s = open_store();
	struct store_mailbox mb;
	char err[256], out[1024] = "";

	if (s == NULL) {
		CHECK(0);
		return;
	}
	CHECK(store_domain_add(s, "persist.test", err, sizeof(err)) ==
	      STORE_OK);
	CHECK(store_mailbox_add(s, "p@persist.test", hash1, 42, err,
				sizeof(err)) == STORE_OK);
	add_alias(s, "alias@persist.test", "p@persist.test");
	store_close(&s);

	s = open_store();
	if (s == NULL) {
		CHECK(0);
		return;
	}
	CHECK(store_domain_exists(s, "persist.test") == 1);
	CHECK(store_mailbox_get(s, "p@persist.test", &mb) == STORE_OK);
	CHECK(mb.quota == 42);
	CHECK(store_alias_list(s, "persist.test", alias_collect, out, err,
			       sizeof(err)) == STORE_OK);
	CHECK_STR(out, "alias@persist.test>p@persist.test;");
	CHECK(resolve(s, "alias", "persist.test", out, sizeof(out)) ==
	      STORE_RCPT_LOCAL);
	CHECK_STR(out, "p@persist.test;");
	store_close(&s);
}

static void
test_migrations(void)
{
	char path[700], dir[600], err[256] = "";
	struct store *s = NULL;
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/postern.db", datadir);
	/* Reopening does not re-apply anything. */
	CHECK(sql_int(path, "PRAGMA user_version", NULL, 0) == 1);
	s = open_store();
	CHECK(s != NULL);
	store_close(&s);
	CHECK(sql_int(path, "PRAGMA user_version", NULL, 0) == 1);
	CHECK(sql_int(path,
		      "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
		      " AND name IN ('domains', 'mailboxes', 'aliases')",
		      NULL, 0) == 3);

	/* A database from a newer program is refused, untouched. */
	snprintf(dir, sizeof(dir), "%s/newer", tmpdir);
	CHECK(util_mkdirs(dir, 0700) == 0);
	snprintf(path, sizeof(path), "%s/postern.db", dir);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL) ==
	      SQLITE_OK);
	sqlite3_close(db);
	CHECK(store_open(dir, &s, err, sizeof(err)) == STORE_ERROR);
	CHECK(s == NULL);
	CHECK(strstr(err, "newer") != NULL);
	CHECK(sql_int(path, "PRAGMA user_version", NULL, 0) == 99);
}

int
main(void)
{
	int ret;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(datadir, sizeof(datadir), "%s/data", tmpdir);

	RUN(test_check_domain);
	RUN(test_check_local);
	RUN(test_split_address);
	RUN(test_open_creates);
	RUN(test_open_errors);
	RUN(test_domains);
	RUN(test_mailboxes);
	RUN(test_aliases);
	RUN(test_resolve);
	RUN(test_two_handles);
	RUN(test_persistence);
	RUN(test_migrations);

	ret = HARNESS_DONE();
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return ret;
}
