/* Credential checks for SMTP AUTH and POP3 logins: the store lookup on the
 * loop, the slow yescrypt verification on a worker, failure accounting
 * through abuse_report() and the failure delay, in one place. */
#ifndef POSTERN_AUTH_H
#define POSTERN_AUTH_H

#include <stdint.h>

#include "server.h"
#include "store.h"

enum auth_result {
	AUTH_OK,
	AUTH_FAILED,   /* unknown user, wrong password or disabled */
	AUTH_TEMPFAIL, /* the store could not be read */
};

struct auth_request;

/* done runs on the loop thread; user is the canonical (lower-case)
 * address, valid only during the call. */
typedef void (*auth_done_fn)(void *arg, enum auth_result result,
			     const char *user);

/* Checks user and password (both copied; the copy of the password is wiped
 * after use). A failure is reported as ABUSE_AUTH_FAILURE and answered
 * after fail_delay_ms. Unknown users cost the same hashing time as known
 * ones, so that timing does not reveal which accounts exist. Returns a
 * handle for auth_cancel(). */
struct auth_request *auth_check(struct server *srv, const struct peer *peer,
				const char *user, const char *password,
				uint64_t fail_delay_ms, auth_done_fn done,
				void *arg);

/* Forgets a request whose owner goes away: done will not be called.
 * Sets *req to NULL. */
void auth_cancel(struct auth_request **req);

#endif
