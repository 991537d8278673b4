/* Maildir storage: delivery (one spool file hard-linked into each
 * recipient's new/, made durable before the SMTP 250), listing for POP3,
 * the POP3 maildrop lock, removal and quota usage. Names are compatible with
 * Dovecot: "<time>.M<usec>P<pid>Q<seq>.<host>,S=<size>,W=<crlf size>".
 * Files are stored with LF line ends; W= is the size with CRLF ends. */
#ifndef POSTERN_MAILDIR_H
#define POSTERN_MAILDIR_H

#include <stddef.h>
#include <stdint.h>

#define MAILDIR_NAME_MAX 255
#define MAILDIR_UIDL_MAX 70 /* RFC 1939 §7: 1..70 chars 0x21..0x7E */

/* Builds data_dir/mail/<domain>/<local> into buf. Refuses (returns -1)
 * components that are empty, ".", "..", contain '/' or NUL, or would not
 * fit. Returns 0 on success. */
int maildir_path(const char *data_dir, const char *domain, const char *local,
		 char *buf, size_t len);

/* Creates path and its tmp/, new/, cur/ (mode 0700) when missing.
 * Returns 0, or -1 with errno. */
int maildir_ensure(const char *path);

/* Writes a fresh unique Dovecot-style file name for a message of size_lf
 * bytes on disk (size_crlf with CRLF line ends) into buf. Thread-safe. */
void maildir_unique_name(char *buf, size_t len, const char *hostname,
			 uint64_t size_lf, uint64_t size_crlf);

/* Delivers the finished spool file into every maildir in maildirs (paths
 * from maildir_path; created when missing): fsyncs the file, links it as
 * new/<name> in each, then fsyncs each new/ directory. On failure removes
 * the links already made, so a message is delivered everywhere or nowhere,
 * and returns -1 with a message in err. The spool file itself is left for
 * the caller to unlink. Blocking: call from a worker thread. */
int maildir_deliver(const char *spool_path, const char *const *maildirs,
		    size_t n, const char *name, char *err, size_t errlen);

/* The first half of maildir_deliver, for group commit (delivery.c): links
 * the spool file as new/<name> into every maildir (created when missing),
 * rolling back on failure, but makes nothing durable: the caller issues
 * one barrier for a whole batch. Returns 0, or -1 with a message in err.
 * Blocking: call from a worker thread. */
int maildir_link(const char *spool_path, const char *const *maildirs, size_t n,
		 const char *name, char *err, size_t errlen);

/* One message of a maildrop, as POP3 sees it. */
struct maildir_msg {
	char *rel;			 /* "new/NAME" or "cur/NAME", owned */
	char uidl[MAILDIR_UIDL_MAX + 1]; /* stable across sessions */
	uint64_t size;			 /* octets with CRLF line ends */
};

/* Lists new/ and cur/ of path, oldest first (by name). Sizes come from W=
 * in the name, otherwise from reading the file. A missing maildir is an
 * empty one. Returns 0 and an owned array, or -1 with errno. */
int maildir_scan(const char *path, struct maildir_msg **msgs_r, size_t *n_r);
void maildir_scan_free(struct maildir_msg **msgs, size_t n);

/* Sum of on-disk sizes (S=, or stat) of new/ and cur/. Returns 0 or -1. */
int maildir_usage(const char *path, uint64_t *bytes_r);

/* The exclusive POP3 maildrop lock. dirfd is the maildir, the base for
 * maildir_open_message and maildir_remove; lockfd is -1, or the lock file
 * where the directory itself cannot be locked. */
struct maildir_lock {
	int dirfd;
	int lockfd;
};

/* Takes the lock: flock on the maildir directory (created when missing),
 * or, where the file system refuses that (NFS emulates flock with write
 * locks, which a directory opened for reading cannot take), on the lock
 * file postern.lock in it. Returns 0, or -1 with errno (EWOULDBLOCK: another
 * session holds it); the lock is then all -1. */
int maildir_lock(const char *path, struct maildir_lock *lock);

/* The lock-file half of maildir_lock, on lock->dirfd. Returns 0 or -1. */
int maildir_lock_file(struct maildir_lock *lock);

/* Releases the lock and closes both descriptors; harmless twice. */
void maildir_unlock(struct maildir_lock *lock);

/* Opens rel ("new/NAME" or "cur/NAME") under the maildir dirfd for
 * reading, without updating its access time where the kernel allows.
 * Returns an fd or -1 with errno. */
int maildir_open_message(int dirfd, const char *rel);

/* Unlinks rel under the maildir dirfd. Returns 0, or -1 with errno
 * (ENOENT counts as done and returns 0). */
int maildir_remove(int dirfd, const char *rel);

#endif
