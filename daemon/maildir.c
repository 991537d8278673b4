/* Maildir storage: path building, delivery by hard links into new/,
 * listing for POP3, the maildrop lock, removal and usage. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "maildir.h"
#include "util.h"

/* The lock file, where a directory cannot be flock'ed (maildir_lock). */
#define MAILDIR_LOCK_FILE "postern.lock"

#define MAILDIR_READ_CHUNK 65536

static int maildir_check_component(const char *s);
static int maildir_mkdir(const char *path, int *created_r);
static int maildir_ensure_created(const char *path, int *created_r);
static int maildir_fsync_parent(const char *path);
static int maildir_check_name(const char *name);
static int maildir_link_each(const char *spool_path,
			     const char *const *maildirs, size_t n,
			     const char *name, unsigned char *linked, char *err,
			     size_t errlen);
static void maildir_unlink_each(const char *const *maildirs, size_t n,
				const char *name, const unsigned char *linked);
static int maildir_name_field(const char *name, const char *key,
			      uint64_t *value_r);
static int maildir_count_crlf_size(int dirfd, const char *name,
				   uint64_t *size_r);
static void maildir_make_uidl(const char *name, char *uidl);
static void maildir_hash_uidl(const char *name, char *uidl);
static const char *maildir_msg_base(const struct maildir_msg *m);
static void maildir_name_time(const char *name, uint64_t *secs_r,
			      uint64_t *usecs_r);
static int maildir_msg_cmp(const void *a, const void *b);
static int maildir_uidl_cmp(const void *a, const void *b);
static void maildir_fix_duplicate_uidls(struct maildir_msg *msgs, size_t n);
static int maildir_scan_dir(const char *path, const char *sub,
			    struct maildir_msg **msgs, size_t *n, size_t *cap);

/* The message counter of maildir_unique_name, shared by all threads. */
static uint64_t maildir_counter;

/* 1 when s may be one path component under data_dir/mail. */
static int
maildir_check_component(const char *s)
{
	if (s == NULL || s[0] == '\0')
		return 0;
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	return strchr(s, '/') == NULL;
}

int
maildir_path(const char *data_dir, const char *domain, const char *local,
	     char *buf, size_t len)
{
	int r;

	if (!maildir_check_component(domain) ||
	    !maildir_check_component(local) || data_dir == NULL ||
	    data_dir[0] == '\0')
		return -1;
	r = snprintf(buf, len, "%s/mail/%s/%s", data_dir, domain, local);
	if (r < 0 || (size_t)r >= len)
		return -1;
	return 0;
}

/* mkdir that reports whether it created the directory. */
static int
maildir_mkdir(const char *path, int *created_r)
{
	if (mkdir(path, 0700) == 0) {
		*created_r = 1;
		return 0;
	}
	if (errno == EEXIST)
		return 0;
	return -1;
}

/* fsyncs the directory that holds path, so that a new entry survives a
 * crash. */
static int
maildir_fsync_parent(const char *path)
{
	char buf[PATH_MAX];
	char *slash;

	if (strlcpy(buf, path, sizeof(buf)) >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	slash = strrchr(buf, '/');
	if (slash == NULL)
		return util_fsync_dir(".");
	if (slash == buf)
		slash[1] = '\0';
	else
		*slash = '\0';
	return util_fsync_dir(buf);
}

/* Like maildir_ensure, and says whether anything was created. Every
 * directory made is made durable by an fsync of its parent. */
static int
maildir_ensure_created(const char *path, int *created_r)
{
	static const char *const subs[] = {"tmp", "new", "cur"};
	char buf[PATH_MAX];
	size_t i;
	char *p;
	int r, made;

	*created_r = 0;
	/* The common case, every delivery: all there already. */
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		struct stat st;

		r = snprintf(buf, sizeof(buf), "%s/%s", path, subs[i]);
		if (r < 0 || (size_t)r >= sizeof(buf) || stat(buf, &st) == -1 ||
		    !S_ISDIR(st.st_mode))
			break;
	}
	if (i == sizeof(subs) / sizeof(subs[0]))
		return 0;
	if (strlcpy(buf, path, sizeof(buf)) >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* mkdir -p, remembering each level we had to create. */
	for (p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		if (p[-1] != '/') {
			char saved = *p;

			*p = '\0';
			made = 0;
			if (maildir_mkdir(buf, &made) == -1)
				return -1;
			if (made && maildir_fsync_parent(buf) == -1)
				return -1;
			*created_r |= made;
			*p = saved;
		}
		if (*p == '\0')
			break;
	}
	made = 0;
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		r = snprintf(buf, sizeof(buf), "%s/%s", path, subs[i]);
		if (r < 0 || (size_t)r >= sizeof(buf)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (maildir_mkdir(buf, &made) == -1)
			return -1;
	}
	if (made) {
		*created_r = 1;
		if (util_fsync_dir(path) == -1)
			return -1;
	}
	return 0;
}

int
maildir_ensure(const char *path)
{
	int created;

	return maildir_ensure_created(path, &created);
}

void
maildir_unique_name(char *buf, size_t len, const char *hostname,
		    uint64_t size_lf, uint64_t size_crlf)
{
	char prefix[96], suffix[64], host[MAILDIR_NAME_MAX + 1];
	size_t cap, hlen = 0, plen, slen;
	struct timeval tv;
	uint64_t seq;
	const char *h;
	int r;

	seq = __atomic_add_fetch(&maildir_counter, 1, __ATOMIC_RELAXED);
	gettimeofday(&tv, NULL);
	r = snprintf(prefix, sizeof(prefix), "%lld.M%ldP%ldQ%" PRIu64 ".",
		     (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(),
		     seq);
	if (r < 0 || (size_t)r >= sizeof(prefix))
		fatalx("maildir_unique_name: prefix truncated");
	plen = (size_t)r;
	r = snprintf(suffix, sizeof(suffix), ",S=%" PRIu64 ",W=%" PRIu64,
		     size_lf, size_crlf);
	if (r < 0 || (size_t)r >= sizeof(suffix))
		fatalx("maildir_unique_name: suffix truncated");
	slen = (size_t)r;

	/* The host part takes what room is left, escaped as Dovecot does:
	 * '/' would split the path and ':' starts the info suffix. An escape
	 * is never cut in half. */
	cap = len < MAILDIR_NAME_MAX + 1 ? len : MAILDIR_NAME_MAX + 1;
	if (cap < plen + slen + 1)
		fatalx("maildir_unique_name: buffer of %zu bytes", len);
	cap -= plen + slen + 1;
	for (h = hostname ? hostname : ""; *h; h++) {
		const char *esc = *h == '/'   ? "\\057"
				  : *h == ':' ? "\\072"
					      : NULL;
		size_t need = esc ? 4 : 1;

		if (hlen + need > cap)
			break;
		if (esc != NULL)
			memcpy(host + hlen, esc, 4);
		else
			host[hlen] = *h;
		hlen += need;
	}
	host[hlen] = '\0';
	r = snprintf(buf, len, "%s%s%s", prefix, host, suffix);
	if (r < 0 || (size_t)r >= len)
		fatalx("maildir_unique_name: name truncated");
}

/* 1 when name may be a message file name in new/. */
static int
maildir_check_name(const char *name)
{
	return maildir_check_component(name) && name[0] != '.';
}

/* Links spool_path as new/<name> into each maildir, creating missing ones,
 * and marks in linked[] the ones it linked (a maildir listed twice is
 * linked once). Returns 0, or -1 with errno and a message in err; the
 * caller takes back what linked[] says. */
static int
maildir_link_each(const char *spool_path, const char *const *maildirs, size_t n,
		  const char *name, unsigned char *linked, char *err,
		  size_t errlen)
{
	char path[PATH_MAX];
	size_t i, j;
	int created, r;

	for (i = 0; i < n; i++) {
		/* The same mailbox twice gets one copy, not a failure. */
		for (j = 0; j < i; j++)
			if (strcmp(maildirs[j], maildirs[i]) == 0)
				break;
		if (j < i)
			continue;
		r = snprintf(path, sizeof(path), "%s/new/%s", maildirs[i],
			     name);
		if (r < 0 || (size_t)r >= sizeof(path)) {
			errno = ENAMETOOLONG;
			snprintf(err, errlen, "maildir path too long");
			return -1;
		}
		r = link(spool_path, path);
		/* The maildir exists on every delivery but the first: make
		 * it only when the link says so. A maildir made here is made
		 * durable at once (its parents are fsynced): a batch barrier
		 * covers only new/ and the file. */
		if (r == -1 && errno == ENOENT) {
			if (maildir_ensure_created(maildirs[i], &created) ==
			    -1) {
				snprintf(err, errlen, "create maildir %s: %s",
					 maildirs[i], strerror(errno));
				return -1;
			}
			r = link(spool_path, path);
		}
		if (r == -1) {
			snprintf(err, errlen, "link %s: %s", path,
				 strerror(errno));
			return -1;
		}
		linked[i] = 1;
	}
	return 0;
}

/* All or nothing: removes the links that linked[] marks and fsyncs their
 * new/ directories, so that a failed delivery does not come back after a
 * crash. A rare path, so the fsync costs nothing in practice. Keeps
 * errno. */
static void
maildir_unlink_each(const char *const *maildirs, size_t n, const char *name,
		    const unsigned char *linked)
{
	char path[PATH_MAX];
	int saved = errno;
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		if (!linked[i])
			continue;
		r = snprintf(path, sizeof(path), "%s/new/%s", maildirs[i],
			     name);
		if (r > 0 && (size_t)r < sizeof(path))
			unlink(path);
		r = snprintf(path, sizeof(path), "%s/new", maildirs[i]);
		if (r > 0 && (size_t)r < sizeof(path))
			util_fsync_dir(path);
	}
	errno = saved;
}

int
maildir_link(const char *spool_path, const char *const *maildirs, size_t n,
	     const char *name, char *err, size_t errlen)
{
	unsigned char *linked;
	int r;

	if (!maildir_check_name(name)) {
		snprintf(err, errlen, "invalid maildir file name");
		errno = EINVAL;
		return -1;
	}
	linked = xcalloc(n ? n : 1, 1);
	r = maildir_link_each(spool_path, maildirs, n, name, linked, err,
			      errlen);
	if (r == -1)
		maildir_unlink_each(maildirs, n, name, linked);
	free(linked);
	return r;
}

int
maildir_deliver(const char *spool_path, const char *const *maildirs, size_t n,
		const char *name, char *err, size_t errlen)
{
	char path[PATH_MAX];
	unsigned char *linked;
	size_t i;
	int fd, saved, r;

	if (!maildir_check_name(name)) {
		snprintf(err, errlen, "invalid maildir file name");
		errno = EINVAL;
		return -1;
	}
	/* The data must be on disk before any name points at it. */
	if ((fd = open(spool_path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "open %s: %s", spool_path,
			 strerror(errno));
		return -1;
	}
	if (fsync(fd) == -1) {
		saved = errno;
		close(fd);
		snprintf(err, errlen, "fsync %s: %s", spool_path,
			 strerror(saved));
		errno = saved;
		return -1;
	}
	close(fd);

	linked = xcalloc(n ? n : 1, 1);
	if (maildir_link_each(spool_path, maildirs, n, name, linked, err,
			      errlen) == -1)
		goto fail;
	for (i = 0; i < n; i++) {
		if (!linked[i])
			continue;
		r = snprintf(path, sizeof(path), "%s/new", maildirs[i]);
		if (r < 0 || (size_t)r >= sizeof(path) ||
		    util_fsync_dir(path) == -1) {
			snprintf(err, errlen, "fsync %s: %s", path,
				 strerror(errno));
			goto fail;
		}
	}
	free(linked);
	return 0;

fail:
	maildir_unlink_each(maildirs, n, name, linked);
	free(linked);
	return -1;
}

/* Finds ",<key>=<digits>" among the comma fields of a maildir base name
 * (before any ':' info). Returns 1 and the value when present. */
static int
maildir_name_field(const char *name, const char *key, uint64_t *value_r)
{
	size_t klen = strlen(key), base = strcspn(name, ":");
	const char *p = name, *end = name + base;

	while ((p = memchr(p, ',', (size_t)(end - p))) != NULL) {
		const char *v = ++p;
		uint64_t x = 0;

		if ((size_t)(end - v) <= klen || memcmp(v, key, klen) != 0 ||
		    v[klen] != '=')
			continue;
		v += klen + 1;
		if (v == end || *v == ',')
			continue;
		for (; v < end && *v != ','; v++) {
			if (*v < '0' || *v > '9' || x > (UINT64_MAX - 9) / 10)
				break;
			x = x * 10 + (uint64_t)(*v - '0');
		}
		if (v == end || *v == ',') {
			*value_r = x;
			return 1;
		}
	}
	return 0;
}

/* The size a message has on the POP3 wire, without dot-stuffing: each LF
 * not already preceded by CR becomes CRLF, and an unfinished last line gets
 * a line end, exactly as pop3_encoder_feed/finish send it. */
static int
maildir_count_crlf_size(int dirfd, const char *name, uint64_t *size_r)
{
	char buf[MAILDIR_READ_CHUNK];
	uint64_t size = 0;
	char prev = '\n';
	ssize_t got, k;
	int fd, saved;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1)
		return -1;
	for (;;) {
		got = read(fd, buf, sizeof(buf));
		if (got == -1 && errno == EINTR)
			continue;
		if (got == -1) {
			saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
		if (got == 0)
			break;
		size += (uint64_t)got;
		for (k = 0; k < got; k++) {
			if (buf[k] == '\n' && prev != '\r')
				size++;
			prev = buf[k];
		}
	}
	close(fd);
	if (size > 0 && prev != '\n')
		size += prev == '\r' ? 1 : 2;
	*size_r = size;
	return 0;
}

/* A UIDL that does not fit RFC 1939 §7 is replaced by a hash of the name
 * before the ':' info, so that it survives flag changes by other MUAs. */
static void
maildir_hash_uidl(const char *name, char *uidl)
{
	uint64_t h1 = 0xcbf29ce484222325ULL, h2 = 0x84222325cbf29ce4ULL;
	size_t i, len = strcspn(name, ":");

	for (i = 0; i < len; i++) {
		h1 = (h1 ^ (unsigned char)name[i]) * 0x100000001b3ULL;
		h2 = (h2 ^ (unsigned char)name[len - 1 - i]) * 0x100000001b3ULL;
	}
	snprintf(uidl, MAILDIR_UIDL_MAX + 1, "%016" PRIx64 "%016" PRIx64, h1,
		 h2);
}

static void
maildir_make_uidl(const char *name, char *uidl)
{
	size_t i, len = strcspn(name, ":,");

	/* RFC 1939 §7: 1 to 70 characters in the range 0x21 to 0x7E. */
	if (len == 0 || len > MAILDIR_UIDL_MAX)
		goto hash;
	for (i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x21 ||
		    (unsigned char)name[i] > 0x7e)
			goto hash;
	memcpy(uidl, name, len);
	uidl[len] = '\0';
	return;
hash:
	maildir_hash_uidl(name, uidl);
}

static const char *
maildir_msg_base(const struct maildir_msg *m)
{
	return m->rel + 4; /* past "new/" or "cur/" */
}

/* The delivery time at the start of a unique name, "<secs>.M<usecs>";
 * missing parts are 0. Dovecot does not pad the microseconds, so names do
 * not sort by time as strings. */
static void
maildir_name_time(const char *name, uint64_t *secs_r, uint64_t *usecs_r)
{
	uint64_t v = 0;

	*secs_r = *usecs_r = 0;
	for (; *name >= '0' && *name <= '9' && v < UINT64_MAX / 10; name++)
		v = v * 10 + (uint64_t)(*name - '0');
	*secs_r = v;
	if (name[0] != '.' || name[1] != 'M')
		return;
	v = 0;
	for (name += 2; *name >= '0' && *name <= '9' && v < UINT64_MAX / 10;
	     name++)
		v = v * 10 + (uint64_t)(*name - '0');
	*usecs_r = v;
}

static int
maildir_msg_cmp(const void *a, const void *b)
{
	const struct maildir_msg *ma = a, *mb = b;
	uint64_t sa, ua, sb, ub;
	int c;

	maildir_name_time(maildir_msg_base(ma), &sa, &ua);
	maildir_name_time(maildir_msg_base(mb), &sb, &ub);
	if (sa != sb)
		return sa < sb ? -1 : 1;
	if (ua != ub)
		return ua < ub ? -1 : 1;
	c = strcmp(maildir_msg_base(ma), maildir_msg_base(mb));
	return c != 0 ? c : strcmp(ma->rel, mb->rel);
}

static int
maildir_uidl_cmp(const void *a, const void *b)
{
	const struct maildir_msg *const *ma = a, *const *mb = b;

	return strcmp((*ma)->uidl, (*mb)->uidl);
}

/* UIDLs must be unique in a maildrop (RFC 1939 §7). Two names that share
 * the part before the first ',' (never the case for our own unique names)
 * both fall back to the hash of their whole base name. */
static void
maildir_fix_duplicate_uidls(struct maildir_msg *msgs, size_t n)
{
	struct maildir_msg **v;
	size_t i, j;

	if (n < 2)
		return;
	v = xcalloc(n, sizeof(*v));
	for (i = 0; i < n; i++)
		v[i] = &msgs[i];
	qsort(v, n, sizeof(*v), maildir_uidl_cmp);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && strcmp(v[i]->uidl, v[j]->uidl) == 0;
		     j++)
			;
		if (j - i < 2)
			continue;
		for (; i < j; i++)
			maildir_hash_uidl(maildir_msg_base(v[i]), v[i]->uidl);
	}
	free(v);
}

/* Adds the messages of path/sub to *msgs. A missing directory adds none. */
static int
maildir_scan_dir(const char *path, const char *sub, struct maildir_msg **msgs,
		 size_t *n, size_t *cap)
{
	char dir[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int dfd, r, saved;

	r = snprintf(dir, sizeof(dir), "%s/%s", path, sub);
	if (r < 0 || (size_t)r >= sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd == -1)
		return errno == ENOENT ? 0 : -1;
	if ((d = fdopendir(dfd)) == NULL) {
		saved = errno;
		close(dfd);
		errno = saved;
		return -1;
	}
	for (;;) {
		struct maildir_msg *m;
		uint64_t size;
		size_t nlen;

		errno = 0;
		if ((de = readdir(d)) == NULL) {
			if (errno != 0)
				goto fail;
			break;
		}
		/* Dot files are not messages (maildir(5)); neither are
		 * subdirectories or symlinks. */
		if (de->d_name[0] == '.')
			continue;
		if (de->d_type == DT_UNKNOWN) {
			if (fstatat(dfd, de->d_name, &st,
				    AT_SYMLINK_NOFOLLOW) == -1) {
				if (errno == ENOENT)
					continue;
				goto fail;
			}
			if (!S_ISREG(st.st_mode))
				continue;
		} else if (de->d_type != DT_REG) {
			continue;
		}
		if (!maildir_name_field(de->d_name, "W", &size) &&
		    maildir_count_crlf_size(dfd, de->d_name, &size) == -1) {
			if (errno == ENOENT) /* removed meanwhile */
				continue;
			goto fail;
		}
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 64;
			*msgs = xrealloc(*msgs, *cap * sizeof(**msgs));
		}
		m = &(*msgs)[*n];
		nlen = strlen(de->d_name);
		m->rel = xmalloc(4 + nlen + 1);
		memcpy(m->rel, sub, 3);
		m->rel[3] = '/';
		memcpy(m->rel + 4, de->d_name, nlen + 1);
		maildir_make_uidl(de->d_name, m->uidl);
		m->size = size;
		(*n)++;
	}
	closedir(d);
	return 0;
fail:
	saved = errno;
	closedir(d);
	errno = saved;
	return -1;
}

int
maildir_scan(const char *path, struct maildir_msg **msgs_r, size_t *n_r)
{
	struct maildir_msg *msgs = NULL;
	size_t n = 0, cap = 0;
	int saved;

	*msgs_r = NULL;
	*n_r = 0;
	if (maildir_scan_dir(path, "new", &msgs, &n, &cap) == -1 ||
	    maildir_scan_dir(path, "cur", &msgs, &n, &cap) == -1) {
		saved = errno;
		maildir_scan_free(&msgs, n);
		errno = saved;
		return -1;
	}
	/* Unique names start with the delivery time: by name is oldest
	 * first, and the order is the same in every session. */
	if (n > 1)
		qsort(msgs, n, sizeof(*msgs), maildir_msg_cmp);
	maildir_fix_duplicate_uidls(msgs, n);
	*msgs_r = msgs;
	*n_r = n;
	return 0;
}

void
maildir_scan_free(struct maildir_msg **msgs, size_t n)
{
	size_t i;

	if (*msgs == NULL)
		return;
	for (i = 0; i < n; i++)
		free((*msgs)[i].rel);
	free(*msgs);
	*msgs = NULL;
}

int
maildir_usage(const char *path, uint64_t *bytes_r)
{
	static const char *const subs[] = {"new", "cur"};
	uint64_t total = 0, size;
	char dir[PATH_MAX];
	struct dirent *de;
	struct stat st;
	size_t i;
	DIR *d;
	int r, saved;

	*bytes_r = 0;
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		r = snprintf(dir, sizeof(dir), "%s/%s", path, subs[i]);
		if (r < 0 || (size_t)r >= sizeof(dir)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if ((d = opendir(dir)) == NULL) {
			if (errno == ENOENT)
				continue;
			return -1;
		}
		for (;;) {
			errno = 0;
			if ((de = readdir(d)) == NULL) {
				if (errno != 0)
					goto fail;
				break;
			}
			if (de->d_name[0] == '.')
				continue;
			if (maildir_name_field(de->d_name, "S", &size)) {
				total += size;
				continue;
			}
			if (fstatat(dirfd(d), de->d_name, &st,
				    AT_SYMLINK_NOFOLLOW) == -1) {
				if (errno == ENOENT)
					continue;
				goto fail;
			}
			if (S_ISREG(st.st_mode))
				total += (uint64_t)st.st_size;
		}
		closedir(d);
	}
	*bytes_r = total;
	return 0;
fail:
	saved = errno;
	closedir(d);
	errno = saved;
	return -1;
}

int
maildir_lock(const char *path, struct maildir_lock *lock)
{
	int saved;

	lock->dirfd = lock->lockfd = -1;
	if (maildir_ensure(path) == -1)
		return -1;
	lock->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lock->dirfd == -1)
		return -1;
	/* RFC 1939 §8: one exclusive-access lock per maildrop, on the
	 * directory so that a login creates no file. flock locks belong to
	 * the open file, so two sessions of one process exclude each other
	 * too. */
	if (flock(lock->dirfd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno != EWOULDBLOCK && maildir_lock_file(lock) == 0)
		return 0;
	saved = errno;
	maildir_unlock(lock);
	errno = saved;
	return -1;
}

int
maildir_lock_file(struct maildir_lock *lock)
{
	lock->lockfd = openat(lock->dirfd, MAILDIR_LOCK_FILE,
			      O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock->lockfd == -1)
		return -1;
	return flock(lock->lockfd, LOCK_EX | LOCK_NB);
}

void
maildir_unlock(struct maildir_lock *lock)
{
	if (lock->lockfd >= 0)
		close(lock->lockfd);
	if (lock->dirfd >= 0)
		close(lock->dirfd);
	lock->dirfd = lock->lockfd = -1;
}

/* Only names that maildir_scan hands out: new/NAME or cur/NAME. */
static int
maildir_check_rel(const char *rel)
{
	if ((strncmp(rel, "new/", 4) != 0 && strncmp(rel, "cur/", 4) != 0) ||
	    !maildir_check_component(rel + 4)) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int
maildir_open_message(int dirfd, const char *rel)
{
	int fd;

	if (maildir_check_rel(rel) == -1)
		return -1;
	/* O_NOATIME spares a journalled inode update per first read; only
	 * the file's owner may ask for it. */
	fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOATIME);
	if (fd == -1 && errno == EPERM)
		fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	return fd;
}

int
maildir_remove(int dirfd, const char *rel)
{
	if (maildir_check_rel(rel) == -1)
		return -1;
	if (unlinkat(dirfd, rel, 0) == -1 && errno != ENOENT)
		return -1;
	return 0;
}
