/* Unit tests for maildir.c on real directories under a mkdtemp(3) root. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "maildir.h"
#include "pop3_parse.h"
#include "util.h"

static char root[PATH_MAX];

/* maildir_deliver and maildir_link share their linking and rollback: the
 * same tests run against both. */
typedef int (*deliver_fn)(const char *, const char *const *, size_t,
			  const char *, char *, size_t);

static void
write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(write(fd, data, len) == (ssize_t)len);
	close(fd);
}

static void
join(char *buf, size_t len, const char *a, const char *b)
{
	int r = snprintf(buf, len, "%s/%s", a, b);

	if (r < 0 || (size_t)r >= len)
		abort();
}

static int
is_dir(const char *path, mode_t *mode_r)
{
	struct stat st;

	if (stat(path, &st) == -1 || !S_ISDIR(st.st_mode))
		return 0;
	if (mode_r)
		*mode_r = st.st_mode & 07777;
	return 1;
}

static int
count_entries(const char *dir)
{
	struct maildir_msg *m;
	size_t n;

	if (maildir_scan(dir, &m, &n) == -1)
		return -1;
	maildir_scan_free(&m, n);
	return (int)n;
}

static void
test_path(void)
{
	static const struct {
		const char *data_dir, *domain, *local;
		size_t len;
		const char *want; /* NULL: refused */
	} t[] = {
	    {"/d", "example.test", "bob", 256, "/d/mail/example.test/bob"},
	    {"/d", "a", "b.c", 256, "/d/mail/a/b.c"},
	    {"/d", "example.test", "..bob", 256, "/d/mail/example.test/..bob"},
	    {"/d", "", "bob", 256, NULL},
	    {"/d", "example.test", "", 256, NULL},
	    {"/d", ".", "bob", 256, NULL},
	    {"/d", "..", "bob", 256, NULL},
	    {"/d", "example.test", ".", 256, NULL},
	    {"/d", "example.test", "..", 256, NULL},
	    {"/d", "../etc", "bob", 256, NULL},
	    {"/d", "example.test", "../../etc", 256, NULL},
	    {"/d", "example.test", "a/b", 256, NULL},
	    {"/d", "/", "bob", 256, NULL},
	    {"/d", "example.test", "/", 256, NULL},
	    {"", "example.test", "bob", 256, NULL},
	    {"/d", "example.test", "bob", 24, NULL}, /* would not fit */
	    {"/d", "example.test", "bob", 25, "/d/mail/example.test/bob"},
	};
	char buf[256], longname[600];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int r = maildir_path(t[i].data_dir, t[i].domain, t[i].local,
				     buf, t[i].len);

		if (t[i].want == NULL) {
			if (r != -1)
				fprintf(stderr, "  case %zu accepted\n", i);
			CHECK(r == -1);
		} else {
			CHECK(r == 0);
			if (r == 0)
				CHECK_STR(buf, t[i].want);
		}
	}
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK(maildir_path("/d", "example.test", longname, buf, sizeof(buf)) ==
	      -1);
	CHECK(maildir_path("/d", longname, "bob", buf, sizeof(buf)) == -1);
}

static void
test_ensure(void)
{
	char md[PATH_MAX], sub[PATH_MAX];
	mode_t mode;

	join(md, sizeof(md), root, "ens/mail/example.test/bob");
	CHECK(maildir_ensure(md) == 0);
	CHECK(is_dir(md, &mode) && mode == 0700);
	join(sub, sizeof(sub), md, "tmp");
	CHECK(is_dir(sub, &mode) && mode == 0700);
	join(sub, sizeof(sub), md, "new");
	CHECK(is_dir(sub, &mode) && mode == 0700);
	join(sub, sizeof(sub), md, "cur");
	CHECK(is_dir(sub, &mode) && mode == 0700);
	/* Idempotent, and repairs a missing subdirectory. */
	CHECK(maildir_ensure(md) == 0);
	CHECK(rmdir(sub) == 0);
	CHECK(maildir_ensure(md) == 0);
	CHECK(is_dir(sub, NULL));
	/* A file in the way is an error, not a silent success. */
	join(sub, sizeof(sub), root, "ens/file");
	write_file(sub, "x", 1);
	join(md, sizeof(md), root, "ens/file/bob");
	CHECK(maildir_ensure(md) == -1 && errno == ENOTDIR);
}

static void
test_unique_name(void)
{
	char a[MAILDIR_NAME_MAX + 1], b[MAILDIR_NAME_MAX + 1];
	char host[300], small[64];
	long long secs;
	long usecs, pid;
	uint64_t q, s, w;
	int n = 0;

	maildir_unique_name(a, sizeof(a), "mx.example.test", 100, 105);
	maildir_unique_name(b, sizeof(b), "mx.example.test", 100, 105);
	CHECK(strcmp(a, b) != 0);
	CHECK(sscanf(a,
		     "%lld.M%ldP%ldQ%" SCNu64 ".mx.example.test,S=%" SCNu64
		     ",W=%" SCNu64 "%n",
		     &secs, &usecs, &pid, &q, &s, &w, &n) == 6);
	CHECK(n == (int)strlen(a));
	CHECK(pid == (long)getpid() && s == 100 && w == 105);
	CHECK(usecs >= 0 && usecs < 1000000);

	/* Dovecot's escapes for '/' and ':'. */
	maildir_unique_name(a, sizeof(a), "a/b:c", 1, 2);
	CHECK(strstr(a, ".a\\057b\\072c,S=1,W=2") != NULL);
	CHECK(strchr(a, '/') == NULL && strchr(a, ':') == NULL);

	/* A huge host name is cut to keep the name within NAME_MAX, and
	 * never in the middle of an escape. */
	memset(host, '/', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	maildir_unique_name(a, sizeof(a), host, 1, 2);
	CHECK(strlen(a) <= MAILDIR_NAME_MAX);
	CHECK(strstr(a, "\\057,S=1,W=2") != NULL);
	maildir_unique_name(small, sizeof(small), "host.example", 1, 2);
	CHECK(strlen(small) < sizeof(small));
	CHECK(strstr(small, ",S=1,W=2") != NULL);
}

#define NAME_THREADS 4
#define NAMES_PER_THREAD 2000

static char thread_names[NAME_THREADS * NAMES_PER_THREAD][MAILDIR_NAME_MAX + 1];

static void *
name_thread(void *arg)
{
	size_t t = (size_t)(uintptr_t)arg, i;

	for (i = 0; i < NAMES_PER_THREAD; i++)
		maildir_unique_name(thread_names[t * NAMES_PER_THREAD + i],
				    MAILDIR_NAME_MAX + 1, "h", 1, 1);
	return NULL;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
test_unique_name_threads(void)
{
	pthread_t th[NAME_THREADS];
	size_t i, dups = 0;

	for (i = 0; i < NAME_THREADS; i++)
		CHECK(pthread_create(&th[i], NULL, name_thread,
				     (void *)(uintptr_t)i) == 0);
	for (i = 0; i < NAME_THREADS; i++)
		pthread_join(th[i], NULL);
	qsort(thread_names, NAME_THREADS * NAMES_PER_THREAD,
	      sizeof(thread_names[0]), cmp_names);
	for (i = 1; i < NAME_THREADS * NAMES_PER_THREAD; i++)
		if (strcmp(thread_names[i - 1], thread_names[i]) == 0)
			dups++;
	CHECK(dups == 0);
}

/* Writes a spool file and returns its path in buf. */
static void
make_spool(char *buf, size_t len, const char *name, const char *data)
{
	char dir[PATH_MAX];

	join(dir, sizeof(dir), root, "spool");
	CHECK(util_mkdirs(dir, 0700) == 0);
	join(buf, len, dir, name);
	write_file(buf, data, strlen(data));
}

static void
deliver_scan(deliver_fn deliver, const char *tag)
{
	static const char body[] = "Subject: hi\n\nline one\n.dot\n";
	char spool[PATH_MAX], md[3][PATH_MAX], name[MAILDIR_NAME_MAX + 1];
	char uidl0[MAILDIR_UIDL_MAX + 1], err[ERR_LEN], path[PATH_MAX];
	const char *mds[4];
	struct maildir_msg *m;
	struct stat st;
	size_t n, i;
	uint64_t usage;
	char sname[64];

	snprintf(sname, sizeof(sname), "%s-msg1", tag);
	make_spool(spool, sizeof(spool), sname, body);
	for (i = 0; i < 3; i++) {
		char rel[64];

		snprintf(rel, sizeof(rel), "dl-%s/mail/example.test/user%zu",
			 tag, i);
		join(md[i], sizeof(md[i]), root, rel);
		mds[i] = md[i];
	}
	mds[3] = md[1]; /* the same mailbox twice gets one copy */
	CHECK(maildir_ensure(md[0]) == 0); /* one exists, two do not */
	maildir_unique_name(name, sizeof(name), "mx.example.test",
			    sizeof(body) - 1, sizeof(body) - 1 + 4);
	CHECK(deliver(spool, mds, 4, name, err, sizeof(err)) == 0);
	CHECK(stat(spool, &st) == 0 && st.st_nlink == 4);

	for (i = 0; i < 3; i++) {
		CHECK(maildir_scan(md[i], &m, &n) == 0);
		CHECK(n == 1);
		if (n != 1)
			continue;
		CHECK(strncmp(m[0].rel, "new/", 4) == 0);
		CHECK_STR(m[0].rel + 4, name);
		CHECK(m[0].size == sizeof(body) - 1 + 4);
		/* The UIDL is the name up to the first ','. */
		CHECK(strncmp(m[0].uidl, name, strlen(m[0].uidl)) == 0);
		CHECK(name[strlen(m[0].uidl)] == ',');
		if (i == 0)
			strlcpy(uidl0, m[0].uidl, sizeof(uidl0));
		else
			CHECK_STR(m[0].uidl, uidl0);
		CHECK(maildir_usage(md[i], &usage) == 0 &&
		      usage == sizeof(body) - 1);
		join(path, sizeof(path), md[i], m[0].rel);
		CHECK(stat(path, &st) == 0 && st.st_size == sizeof(body) - 1);
		maildir_scan_free(&m, n);
		CHECK(m == NULL);
	}

	/* A second delivery lands after the first, and the first keeps its
	 * UIDL across scans. */
	snprintf(sname, sizeof(sname), "%s-msg2", tag);
	make_spool(spool, sizeof(spool), sname, "x\n");
	maildir_unique_name(name, sizeof(name), "mx.example.test", 2, 3);
	CHECK(deliver(spool, mds, 1, name, err, sizeof(err)) == 0);
	CHECK(maildir_scan(md[0], &m, &n) == 0 && n == 2);
	if (n == 2) {
		CHECK_STR(m[0].uidl, uidl0);
		CHECK_STR(m[1].rel + 4, name);
		CHECK(m[1].size == 3);
	}
	maildir_scan_free(&m, n);
}

static void
deliver_rollback(deliver_fn deliver, const char *tag)
{
	char spool[PATH_MAX], md[3][PATH_MAX], name[MAILDIR_NAME_MAX + 1];
	char err[ERR_LEN], path[PATH_MAX];
	const char *mds[3];
	struct stat st;
	size_t i;
	char sname[64];

	snprintf(sname, sizeof(sname), "%s-rb", tag);
	make_spool(spool, sizeof(spool), sname, "data\n");
	for (i = 0; i < 3; i++) {
		char rel[64];

		snprintf(rel, sizeof(rel), "rb-%s/mail/example.test/u%zu", tag,
			 i);
		join(md[i], sizeof(md[i]), root, rel);
		mds[i] = md[i];
	}
	/* The third maildir is broken: new/ is a file, so link() fails
	 * (permissions would not do: tests may run as root). */
	CHECK(util_mkdirs(md[2], 0700) == 0);
	join(path, sizeof(path), md[2], "new");
	write_file(path, "", 0);
	maildir_unique_name(name, sizeof(name), "h", 5, 6);
	err[0] = '\0';
	CHECK(deliver(spool, mds, 3, name, err, sizeof(err)) == -1);
	CHECK(err[0] != '\0');
	CHECK(stat(spool, &st) == 0 && st.st_nlink == 1);
	CHECK(count_entries(md[0]) == 0);
	CHECK(count_entries(md[1]) == 0);

	/* A name clash in the second maildir: the first link is taken
	 * back, the file already there is left alone. */
	CHECK(unlink(path) == 0);
	CHECK(maildir_ensure(md[2]) == 0);
	{
		char newdir[PATH_MAX];

		join(newdir, sizeof(newdir), md[1], "new");
		join(path, sizeof(path), newdir, name);
	}
	write_file(path, "other\n", 6);
	CHECK(deliver(spool, mds, 3, name, err, sizeof(err)) == -1);
	CHECK(strstr(err, "File exists") != NULL);
	CHECK(stat(spool, &st) == 0 && st.st_nlink == 1);
	CHECK(count_entries(md[0]) == 0);
	CHECK(count_entries(md[1]) == 1);
	CHECK(count_entries(md[2]) == 0);
	CHECK(stat(path, &st) == 0 && st.st_size == 6);

	/* Bad names and a missing spool file. */
	CHECK(deliver(spool, mds, 1, "../x", err, sizeof(err)) == -1);
	CHECK(deliver(spool, mds, 1, ".hidden", err, sizeof(err)) == -1);
	join(path, sizeof(path), root, "spool/none");
	CHECK(deliver(path, mds, 1, "n1", err, sizeof(err)) == -1);
	CHECK(count_entries(md[0]) == 0);
}

static void
test_deliver_scan(void)
{
	deliver_scan(maildir_deliver, "deliver");
}

static void
test_deliver_rollback(void)
{
	deliver_rollback(maildir_deliver, "deliver");
}

/* maildir_link: the same links and rollback as maildir_deliver (the
 * durability barrier is the caller's), and an empty list links nothing. */
static void
test_link_scan(void)
{
	deliver_scan(maildir_link, "link");
}

static void
test_link_rollback(void)
{
	char spool[PATH_MAX], err[ERR_LEN];
	struct stat st;

	deliver_rollback(maildir_link, "link");
	make_spool(spool, sizeof(spool), "link-none", "x\n");
	err[0] = '\0';
	CHECK(maildir_link(spool, NULL, 0, "n0", err, sizeof(err)) == 0);
	CHECK(stat(spool, &st) == 0 && st.st_nlink == 1);
	CHECK(maildir_link(spool, NULL, 0, "a/b", err, sizeof(err)) == -1);
	CHECK(errno == EINVAL && err[0] != '\0');
}

/* Sizes without W=: counted from the file, and equal to what the POP3
 * encoder sends minus stuffing and terminator. */
static void
test_scan_sizes(void)
{
	static const struct {
		const char *data;
		uint64_t size;
	} t[] = {
	    {"", 0},	   {"x", 3},	     {"x\n", 3}, {"x\r\n", 3},
	    {"a\nb", 6},   {"a\n\nb\n", 8},  {"a\r", 3}, {"a\rb\n", 5},
	    {"\n\n\n", 6}, {"a\r\nb\nc", 9},
	};
	char md[PATH_MAX], path[PATH_MAX], name[32];
	struct maildir_msg *m;
	size_t i, n;

	join(md, sizeof(md), root, "sizes");
	CHECK(maildir_ensure(md) == 0);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		snprintf(name, sizeof(name), "new/%02zu", i);
		join(path, sizeof(path), md, name);
		write_file(path, t[i].data, strlen(t[i].data));
	}
	CHECK(maildir_scan(md, &m, &n) == 0);
	CHECK(n == sizeof(t) / sizeof(t[0]));
	for (i = 0; i < n && i < sizeof(t) / sizeof(t[0]); i++) {
		struct pop3_encoder e;
		char out[64];
		size_t used, o;

		if (m[i].size != t[i].size)
			fprintf(stderr, "  size case %zu: %" PRIu64 "\n", i,
				m[i].size);
		CHECK(m[i].size == t[i].size);
		CHECK_STR(m[i].uidl, m[i].rel + 4);
		pop3_encoder_init(&e, 0, 0);
		o = pop3_encoder_feed(&e, t[i].data, strlen(t[i].data), out,
				      sizeof(out), &used);
		o += pop3_encoder_finish(&e, out + o);
		CHECK(o - 3 == t[i].size);
	}
	maildir_scan_free(&m, n);
}

static void
test_scan_uidl_order(void)
{
	static const char *const files[] = {
	    "cur/1700000003.M1P1Q1.h,S=5,W=6:2,S",
	    "new/1700000001.M1P1Q1.h,S=5,W=6",
	    "cur/1700000002.M1P1Q1.h:2,",
	    "new/.hidden",
	    "tmp/1600000000.M1P1Q1.h",
	    "new/dup,1",
	    "new/dup,2",
	    "new/has space",
	    "new/"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaa",
	    "new/caf\xc3\xa9",
	    /* microseconds are not padded: 99 comes before 100 */
	    "new/1700000002.M100P1Q2.h,S=5,W=7",
	    "new/1700000002.M99P1Q1.h,S=5,W=7",
	};
	char md[PATH_MAX], path[PATH_MAX], uidls[16][MAILDIR_UIDL_MAX + 1];
	char from[PATH_MAX], to[PATH_MAX];
	struct maildir_msg *m, *m2;
	size_t i, j, n, n2;

	join(md, sizeof(md), root, "order");
	CHECK(maildir_ensure(md) == 0);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		join(path, sizeof(path), md, files[i]);
		write_file(path, "hello", 5);
	}
	join(path, sizeof(path), md, "new/subdir");
	CHECK(mkdir(path, 0700) == 0);
	join(path, sizeof(path), md, "new/link");
	CHECK(symlink("/etc/passwd", path) == 0);

	CHECK(maildir_scan(md, &m, &n) == 0);
	CHECK(n == 10);
	if (n != 10) {
		maildir_scan_free(&m, n);
		return;
	}
	/* Names without a delivery time come first, by name. */
	CHECK(strncmp(m[0].rel, "new/aaaa", 8) == 0 && strlen(m[0].rel) > 74);
	CHECK_STR(m[1].rel, "new/caf\xc3\xa9");
	CHECK_STR(m[2].rel, "new/dup,1");
	CHECK_STR(m[3].rel, "new/dup,2");
	CHECK_STR(m[4].rel, "new/has space");
	/* Then by time, microseconds as numbers. */
	CHECK_STR(m[5].rel, "new/1700000001.M1P1Q1.h,S=5,W=6");
	CHECK_STR(m[6].rel, "cur/1700000002.M1P1Q1.h:2,");
	CHECK_STR(m[7].rel, "new/1700000002.M99P1Q1.h,S=5,W=7");
	CHECK_STR(m[8].rel, "new/1700000002.M100P1Q2.h,S=5,W=7");
	CHECK_STR(m[9].rel, "cur/1700000003.M1P1Q1.h,S=5,W=6:2,S");
	CHECK_STR(m[5].uidl, "1700000001.M1P1Q1.h");
	CHECK_STR(m[6].uidl, "1700000002.M1P1Q1.h");
	CHECK_STR(m[7].uidl, "1700000002.M99P1Q1.h");
	CHECK_STR(m[9].uidl, "1700000003.M1P1Q1.h");
	CHECK(m[5].size == 6 && m[9].size == 6 && m[7].size == 7);
	CHECK(m[6].size == 7); /* "hello" + CRLF, counted from the file */
	/* Names that cannot be UIDLs, and shared prefixes, are hashed:
	 * 32 hex digits, all distinct. */
	for (i = 0; i < 5; i++) {
		CHECK(strlen(m[i].uidl) == 32);
		CHECK(strspn(m[i].uidl, "0123456789abcdef") == 32);
	}
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			CHECK(strcmp(m[i].uidl, m[j].uidl) != 0);
	for (i = 0; i < n; i++)
		strlcpy(uidls[i], m[i].uidl, sizeof(uidls[i]));
	maildir_scan_free(&m, n);

	/* Stable: the same on a second scan, and a message moved to cur/
	 * with flags (as another MUA would) keeps its UIDL. */
	join(from, sizeof(from), md, "new/has space");
	join(to, sizeof(to), md, "cur/has space:2,S");
	CHECK(rename(from, to) == 0);
	CHECK(maildir_scan(md, &m2, &n2) == 0 && n2 == 10);
	for (i = 0; i < n2 && i < 10; i++)
		CHECK_STR(m2[i].uidl, uidls[i]);
	maildir_scan_free(&m2, n2);
}

static void
test_scan_missing(void)
{
	char md[PATH_MAX];
	struct maildir_msg *m;
	uint64_t usage = 1;
	size_t n = 1;

	join(md, sizeof(md), root, "nothing/here");
	CHECK(maildir_scan(md, &m, &n) == 0);
	CHECK(n == 0 && m == NULL);
	CHECK(maildir_usage(md, &usage) == 0 && usage == 0);
}

static void
test_lock(void)
{
	char md[PATH_MAX], path[PATH_MAX];
	struct maildir_lock l1, l2, l3, f1, f2;

	join(md, sizeof(md), root, "lock/mail/example.test/bob");
	CHECK(maildir_lock(md, &l1) == 0); /* creates the maildir */
	CHECK(l1.dirfd >= 0 && l1.lockfd == -1);
	/* The lock is on the directory itself: no lock file. */
	join(path, sizeof(path), md, "postern.lock");
	CHECK(access(path, F_OK) == -1 && errno == ENOENT);
	join(path, sizeof(path), md, "new");
	CHECK(is_dir(path, NULL));
	CHECK(fcntl(l1.dirfd, F_GETFD) & FD_CLOEXEC);
	CHECK(faccessat(l1.dirfd, "new", F_OK, 0) == 0);

	errno = 0;
	CHECK(maildir_lock(md, &l2) == -1 && errno == EWOULDBLOCK);
	CHECK(l2.dirfd == -1 && l2.lockfd == -1);
	maildir_unlock(&l1);
	CHECK(l1.dirfd == -1 && l1.lockfd == -1);
	maildir_unlock(&l1); /* harmless twice */
	CHECK(maildir_lock(md, &l3) == 0);
	maildir_unlock(&l3);

	/* The lock file, for file systems that cannot flock a directory:
	 * made on first use, exclusive, closed by maildir_unlock. */
	f1.dirfd = open(md, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	f2.dirfd = open(md, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	f1.lockfd = f2.lockfd = -1;
	CHECK(maildir_lock_file(&f1) == 0);
	join(path, sizeof(path), md, "postern.lock");
	CHECK(access(path, F_OK) == 0);
	CHECK(fcntl(f1.lockfd, F_GETFD) & FD_CLOEXEC);
	errno = 0;
	CHECK(maildir_lock_file(&f2) == -1 && errno == EWOULDBLOCK);
	maildir_unlock(&f1);
	maildir_unlock(&f2);
	CHECK(f1.dirfd == -1 && f1.lockfd == -1);
	CHECK(f2.dirfd == -1 && f2.lockfd == -1);

	/* A maildir path that is a file. */
	join(path, sizeof(path), root, "lock/file");
	write_file(path, "", 0);
	CHECK(maildir_lock(path, &l1) == -1);
	CHECK(l1.dirfd == -1 && l1.lockfd == -1);
}

static void
test_remove(void)
{
	static const char *const bad[] = {
	    "../x",    "new/../x", "new/..", "new/.",	    "new/",   "tmp/x",
	    "new/a/b", "x",	   "",	     "/etc/passwd", "cur//x",
	};
	char md[PATH_MAX], path[PATH_MAX], buf[8];
	size_t i;
	struct maildir_lock lock;
	int dirfd, fd;

	join(md, sizeof(md), root, "rm");
	CHECK(maildir_lock(md, &lock) == 0);
	dirfd = lock.dirfd;
	join(path, sizeof(path), md, "new/a");
	write_file(path, "a\n", 2);
	join(path, sizeof(path), md, "cur/b:2,S");
	write_file(path, "b\n", 2);
	CHECK(count_entries(md) == 2);
	CHECK((fd = maildir_open_message(dirfd, "new/a")) >= 0);
	CHECK(read(fd, buf, sizeof(buf)) == 2 && memcmp(buf, "a\n", 2) == 0);
	close(fd);
	CHECK(maildir_open_message(dirfd, "new/zz") == -1 && errno == ENOENT);
	CHECK(maildir_remove(dirfd, "new/a") == 0);
	CHECK(maildir_remove(dirfd, "new/a") == 0); /* ENOENT is done */
	CHECK(maildir_remove(dirfd, "cur/b:2,S") == 0);
	CHECK(count_entries(md) == 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		CHECK(maildir_remove(dirfd, bad[i]) == -1 && errno == EINVAL);
		errno = 0;
		CHECK(maildir_open_message(dirfd, bad[i]) == -1 &&
		      errno == EINVAL);
	}
	maildir_unlock(&lock);
}

static void
test_usage(void)
{
	char md[PATH_MAX], path[PATH_MAX];
	uint64_t usage = 0;

	join(md, sizeof(md), root, "usage");
	CHECK(maildir_ensure(md) == 0);
	join(path, sizeof(path), md, "new/1.M1P1Q1.h,S=1000,W=1010");
	write_file(path, "tiny", 4); /* S= wins: no stat needed */
	join(path, sizeof(path), md, "cur/2.M1P1Q1.h:2,S");
	write_file(path, "12345", 5);
	join(path, sizeof(path), md, "new/.ignored");
	write_file(path, "123456789", 9);
	join(path, sizeof(path), md, "tmp/3");
	write_file(path, "123456789", 9);
	CHECK(maildir_usage(md, &usage) == 0);
	CHECK(usage == 1005);
}

static void
rm_rf(const char *path)
{
	char cmd[PATH_MAX + 16];

	if (snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path) < (int)sizeof(cmd))
		CHECK(system(cmd) == 0);
}

int
main(void)
{
	char tmpl[] = "/tmp/test_maildir.XXXXXX";

	if (mkdtemp(tmpl) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	strlcpy(root, tmpl, sizeof(root));
	RUN(test_path);
	RUN(test_ensure);
	RUN(test_unique_name);
	RUN(test_unique_name_threads);
	RUN(test_deliver_scan);
	RUN(test_deliver_rollback);
	RUN(test_link_scan);
	RUN(test_link_rollback);
	RUN(test_scan_sizes);
	RUN(test_scan_uidl_order);
	RUN(test_scan_missing);
	RUN(test_lock);
	RUN(test_remove);
	RUN(test_usage);
	rm_rf(root);
	return HARNESS_DONE();
}
