/* The outbound queue on disk: data_dir/queue/<id>.msg (the message, LF line
 * ends, a hard link of the finished spool file) and <id>.env (its envelope,
 * queue_env.h), plus <id>.hold while an administrator holds it and the
 * "flush" file whose mtime asks the daemon to try everything now.
 * Every function here blocks on the file system: call it from a worker
 * thread or from a tool, never from the event loop (except at start-up). */
#ifndef POSTERN_QUEUE_SPOOL_H
#define POSTERN_QUEUE_SPOOL_H

#include <stddef.h>

#include "queue_env.h"

#define QUEUE_PATH_MAX 1200

/* Builds data_dir/queue/<id><suffix> (suffix ".msg", ".env", ".hold";
 * id NULL: the queue directory itself, suffix ignored). Returns 0, or -1
 * when it does not fit. */
int queue_spool_path(char *buf, size_t len, const char *data_dir,
		     const char *id, const char *suffix);

/* Creates data_dir/queue (0700) when missing. Returns 0, or -1 with errno. */
int queue_spool_init(const char *data_dir);

/* Puts a finished message into the queue: gives env a fresh id when
 * env->id is empty (written to id_r, QUEUE_ID_LEN + 1 bytes), hard-links
 * spool_path as <id>.msg, then writes <id>.env (through a temporary name,
 * so that an .env is always complete). Makes nothing durable: the caller
 * issues the barrier (syncfs of data_dir, or queue_spool_sync). Arrival
 * time and pending recipients' next attempt are taken as given. Returns 0,
 * or -1 with a message in err (nothing is left behind). */
int queue_spool_store(const char *data_dir, const char *spool_path,
		      struct queue_env *env, char *id_r, char *err,
		      size_t errlen);

/* The durability barrier for one message in fsync mode: fsyncs <id>.msg,
 * <id>.env and the queue directory. Returns 0, or -1 with err. */
int queue_spool_sync(const char *data_dir, const char *id, char *err,
		     size_t errlen);

/* Replaces <id>.env durably: temporary file, fsync, rename, fsync of the
 * directory. Refuses (returns 1) when <id>.msg no longer exists, i.e. an
 * administrator deleted the message meanwhile. Returns 0, 1, or -1 with
 * err. */
int queue_spool_save(const char *data_dir, const struct queue_env *env,
		     char *err, size_t errlen);

/* Reads and parses <id>.env. Returns 0 and an owned *env_r, 1 when the
 * file does not exist, or -1 with err (unreadable or corrupt). */
int queue_spool_load(const char *data_dir, const char *id,
		     struct queue_env **env_r, char *err, size_t errlen);

/* Removes a message: <id>.env first (so that a crash leaves a .msg without
 * an envelope, which recovery removes), then <id>.msg and <id>.hold, then
 * fsyncs the directory when durable is set. Returns 0, or -1 with err. */
int queue_spool_remove(const char *data_dir, const char *id, int durable,
		       char *err, size_t errlen);

/* Moves <id>.env and <id>.msg into data_dir/queue/corrupt/ so that a bad
 * envelope is kept for the administrator instead of being deleted. */
int queue_spool_quarantine(const char *data_dir, const char *id, char *err,
			   size_t errlen);

/* 1 when <id>.hold exists. */
int queue_spool_is_held(const char *data_dir, const char *id);

/* Lists the queue: calls cb for every id that has an .env, in directory
 * order. With repair set (the daemon at start, when nothing else writes
 * the queue; kill -9 at any moment loses no accepted message) it first
 * removes temporary envelope files, .msg files without an .env (a store
 * that never got its 250) and .hold files without a message, and
 * quarantines .env files without a .msg; report (may be NULL) is told
 * about each. Without repair nothing is changed. Returns the number of
 * ids reported through cb, or -1 with err. */
int queue_spool_scan(const char *data_dir, int repair,
		     void (*cb)(const char *id, void *arg),
		     void (*report)(const char *what, const char *name,
				    void *arg),
		     void *arg, char *err, size_t errlen);

#endif
