/* The envelope of a queued message: sender, DSN parameters, and each
 * recipient with its delivery status. Pure: formatting to and parsing from
 * the text kept in data_dir/queue/<id>.env, and the retry schedule. */
#ifndef POSTERN_QUEUE_ENV_H
#define POSTERN_QUEUE_ENV_H

#include <stddef.h>
#include <stdint.h>

#define QUEUE_ID_LEN 16	    /* lower-case hex */
#define QUEUE_ADDR_MAX 520  /* quoted local part, "@", domain, NUL */
#define QUEUE_ENVID_MAX 101 /* RFC 3461 §4.4: 100 octets of xtext */
#define QUEUE_ORCPT_MAX 501 /* RFC 3461 §4.2: 500 octets */
#define QUEUE_REPLY_MAX 512
#define QUEUE_MTA_MAX 320 /* "host[address]:port" */
#define QUEUE_MAX_RCPTS 100000

enum queue_rcpt_status {
	QUEUE_RCPT_PENDING, /* not delivered yet, will be tried */
	QUEUE_RCPT_SENT,    /* accepted by the next server */
	QUEUE_RCPT_FAILED,  /* permanent failure or expired */
};

struct queue_rcpt {
	char addr[QUEUE_ADDR_MAX];   /* forward-path without <> */
	int notify;		     /* DSN_NOTIFY_* bits; 0 = not given */
	char orcpt[QUEUE_ORCPT_MAX]; /* as received, "" = none */
	enum queue_rcpt_status status;
	int dsn_owed; /* a DSN about the final status is due */
	unsigned attempts;
	int64_t next;		     /* unix time of the next attempt */
	int64_t last;		     /* unix time of the last attempt, 0 */
	char reply[QUEUE_REPLY_MAX]; /* last reply or error, "" = none */
	char mta[QUEUE_MTA_MAX];     /* who gave it, "" = nobody/us */
	/* In memory only, never written: */
	int inflight; /* an attempt is under way */
};

struct queue_env {
	char id[QUEUE_ID_LEN + 1];
	int64_t arrival;	     /* unix time */
	char sender[QUEUE_ADDR_MAX]; /* "" = null reverse-path */
	char envid[QUEUE_ENVID_MAX]; /* xtext as received, "" = none */
	int ret;		     /* DSN_RET_* */
	int body_8bit;		     /* BODY=8BITMIME was given */
	uint64_t size;		     /* octets with CRLF line ends */
	char auth[QUEUE_ADDR_MAX];   /* submitting user, "" = none */
	struct queue_rcpt *rcpts;
	size_t nrcpt, rcpt_cap;
};

/* A new empty envelope; the caller owns it. */
struct queue_env *queue_env_new(void);
void queue_env_free(struct queue_env **envp);

/* A deep copy (inflight flags are copied too). */
struct queue_env *queue_env_dup(const struct queue_env *env);

/* Appends a pending recipient, due at once. orcpt may be NULL. Returns the
 * new recipient, or NULL when an argument does not fit or there are too
 * many recipients. */
struct queue_rcpt *queue_env_add_rcpt(struct queue_env *env, const char *addr,
				      int notify, const char *orcpt);

/* Formats env as the .env text; returns a malloc'd NUL-terminated string
 * (length in *len_r). Characters that could break the line format (CR, LF,
 * NUL) never occur in the output: they are replaced by '?'. */
char *queue_env_format(const struct queue_env *env, size_t *len_r);

/* Parses the .env text. Returns 0 and an owned *env_r, or -1 with a static
 * message in *error_r (unknown key, bad value, missing field, truncated
 * file: the text must end with the "end" line). */
int queue_env_parse(const char *text, size_t len, struct queue_env **env_r,
		    const char **error_r);

/* 1 when id is QUEUE_ID_LEN lower-case hex digits. */
int queue_env_check_id(const char *id);

/* Seconds to wait after the attempts-th failed attempt (1-based): the
 * minimum back-off doubled each time, capped at the maximum, in the manner
 * of Postfix's minimal_backoff_time / maximal_backoff_time. */
uint64_t queue_env_retry_delay(unsigned attempts, uint64_t min_backoff,
			       uint64_t max_backoff);

/* "pending", "sent", "failed". */
const char *queue_env_status_name(enum queue_rcpt_status status);

/* Formats NOTIFY bits as in RFC 3461 ("NEVER", "SUCCESS,FAILURE", ...)
 * into buf; "" for 0. */
void queue_env_notify_format(int notify, char *buf, size_t len);

#endif
