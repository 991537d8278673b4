/* "posternctl queue ..." operations on data_dir/queue. They work whether
 * the daemon runs or not: they only read envelopes, create or remove the
 * <id>.hold flag, remove a message, or touch the flush file; a running
 * daemon notices within a second (it watches the queue directory). */
#ifndef POSTERN_QUEUE_ADMIN_H
#define POSTERN_QUEUE_ADMIN_H

#include <stddef.h>
#include <stdio.h>

/* Results: 0 done, QUEUE_ADMIN_NOTFOUND for an unknown (or malformed) id,
 * -1 for an error described in err. */
#define QUEUE_ADMIN_NOTFOUND 1

/* One line per message: id, arrival (UTC), size, sender, held flag, and
 * recipient counts by status; then a summary line "N messages". */
int queue_admin_list(const char *data_dir, FILE *out, char *err, size_t errlen);

/* Every envelope field of one message and each recipient's status, number
 * of attempts, next attempt, last reply. */
int queue_admin_show(const char *data_dir, const char *id, FILE *out, char *err,
		     size_t errlen);

/* Hold: no delivery attempts until released (the message still expires). */
int queue_admin_hold(const char *data_dir, const char *id, char *err,
		     size_t errlen);
int queue_admin_release(const char *data_dir, const char *id, char *err,
			size_t errlen);

/* Removes the message without any bounce. */
int queue_admin_delete(const char *data_dir, const char *id, char *err,
		       size_t errlen);

/* Asks the daemon to attempt every pending recipient now. */
int queue_admin_flush(const char *data_dir, char *err, size_t errlen);

#endif
