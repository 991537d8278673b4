/* Asynchronous credential checks (see auth.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "abuse.h"
#include "auth.h"
#include "log.h"
#include "password.h"
#include "sasl.h"
#include "util.h"
#include "worker.h"

struct auth_request {
	struct server *srv;
	struct peer peer;
	char user[STORE_ADDRESS_MAX];
	char password[SASL_PASSWORD_MAX];
	char hash[STORE_HASH_MAX];
	int known;    /* the mailbox exists and is enabled */
	int verified; /* set by the worker */
	int store_error;
	int cancelled;
	int in_worker;
	struct event *ev_delay;
	uint64_t fail_delay_ms;
	auth_done_fn done;
	void *arg;
};

static pthread_once_t auth_dummy_once = PTHREAD_ONCE_INIT;
static char auth_dummy_hash[STORE_HASH_MAX];

static void auth_dummy_init(void);
static void auth_work(void *arg);
static void auth_work_done(void *arg);
static void auth_on_delay(evutil_socket_t fd, short what, void *arg);
static void auth_finish(struct auth_request *req, enum auth_result result);
static void auth_free(struct auth_request *req);

static void
auth_dummy_init(void)
{
	if (password_hash("postern-no-such-user", auth_dummy_hash,
			  sizeof(auth_dummy_hash)) == -1)
		auth_dummy_hash[0] = '\0';
}

struct auth_request *
auth_check(struct server *srv, const struct peer *peer, const char *user,
	   const char *password, uint64_t fail_delay_ms, auth_done_fn done,
	   void *arg)
{
	struct auth_request *req = xcalloc(1, sizeof(*req));
	struct store_mailbox mb;
	enum store_result r;

	req->srv = srv;
	req->peer = *peer;
	req->fail_delay_ms = fail_delay_ms;
	req->done = done;
	req->arg = arg;
	strlcpy(req->user, user, sizeof(req->user));
	util_lowercase(req->user);
	if (strlcpy(req->password, password, sizeof(req->password)) >=
	    sizeof(req->password))
		req->password[0] = '\0'; /* too long: can never match */
	r = store_mailbox_get(srv->store, req->user, &mb);
	if (r == STORE_OK && mb.enabled) {
		req->known = 1;
		strlcpy(req->hash, mb.password_hash, sizeof(req->hash));
	} else if (r == STORE_ERROR) {
		req->store_error = 1;
	}
	explicit_bzero(&mb, sizeof(mb));
	req->in_worker = 1;
	worker_submit(srv->workers, auth_work, auth_work_done, req);
	return req;
}

static void
auth_work(void *arg)
{
	struct auth_request *req = arg;

	if (req->known) {
		req->verified = password_verify(req->password, req->hash);
	} else {
		pthread_once(&auth_dummy_once, auth_dummy_init);
		(void)password_verify(req->password, auth_dummy_hash);
		req->verified = 0;
	}
	explicit_bzero(req->password, sizeof(req->password));
}

static void
auth_work_done(void *arg)
{
	struct auth_request *req = arg;
	char name[STORE_ADDRESS_MAX];
	struct timeval tv;

	req->in_worker = 0;
	if (req->cancelled) {
		auth_free(req);
		return;
	}
	if (req->store_error) {
		auth_finish(req, AUTH_TEMPFAIL);
		return;
	}
	util_log_safe(req->user, name, sizeof(name));
	if (req->known && req->verified) {
		log_info("auth success user=%s addr=%s", name, req->peer.addr);
		auth_finish(req, AUTH_OK);
		return;
	}
	log_info("auth failed user=%s addr=%s", name, req->peer.addr);
	abuse_report(req->srv, &req->peer, ABUSE_AUTH_FAILURE, req->user);
	/* The delay slows guessing; the session reads nothing meanwhile. */
	tv.tv_sec = (time_t)(req->fail_delay_ms / 1000);
	tv.tv_usec = (suseconds_t)(req->fail_delay_ms % 1000) * 1000;
	req->ev_delay = evtimer_new(req->srv->base, auth_on_delay, req);
	evtimer_add(req->ev_delay, &tv);
}

static void
auth_on_delay(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	auth_finish(arg, AUTH_FAILED);
}

static void
auth_finish(struct auth_request *req, enum auth_result result)
{
	req->done(req->arg, result, req->user);
	auth_free(req);
}

static void
auth_free(struct auth_request *req)
{
	if (req->ev_delay)
		event_free(req->ev_delay);
	explicit_bzero(req, sizeof(*req));
	free(req);
}

void
auth_cancel(struct auth_request **reqp)
{
	struct auth_request *req = *reqp;

	if (req == NULL)
		return;
	*reqp = NULL;
	if (req->in_worker) {
		req->cancelled = 1;
		return;
	}
	auth_free(req);
}
