/* POP3 server sessions (RFC 1939, RFC 2449 CAPA, RFC 5034 SASL): reading
 * command lines within limits, one dispatch table that gates every command
 * by state, login with the password check on a worker thread, the maildrop
 * and its lock, and RETR/TOP/LIST/UIDL replies streamed as output drains.
 * Parsing and the RETR encoder are pure and live in pop3_parse.c. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "abuse.h"
#include "log.h"
#include "maildir.h"
#include "password.h"
#include "pop3_parse.h"
#include "pop3_session.h"
#include "store.h"
#include "util.h"
#include "worker.h"

/* RFC 1939 §3 states, as bits so that a table row can allow several. */
#define POP3_STATE_AUTHORIZATION 0x01
#define POP3_STATE_TRANSACTION 0x02
#define POP3_STATE_UPDATE 0x04

/* Command flags (CONVENTIONS.md §3). */
#define CMDF_CLEARTEXT                                                         \
	0x01		   /* carries a password: needs TLS, or plaintext      \
			      auth allowed by the configuration */
#define CMDF_SECRET 0x02   /* never log the arguments */
#define CMDF_RAW_ARGS 0x04 /* one argument: the rest of the line */
#define CMDF_LONG_ARGS                                                         \
	0x08 /* arguments may exceed RFC 2449's 40 chars:                      \
		addresses and SASL responses */

/* Handler results (CONVENTIONS.md §3). */
enum pop3_cmd_result {
	CMD_DONE,
	CMD_PENDING, /* an asynchronous step runs; input waits */
	CMD_CLOSE,   /* close once the reply is sent */
	CMD_BAD,     /* replied with an error that counts as a bad command */
};

/* A multi-line reply produced as output drains. */
enum pop3_stream {
	STREAM_NONE,
	STREAM_RETR, /* RETR and TOP: the message file through the encoder */
	STREAM_LIST,
	STREAM_UIDL,
};

#define POP3_OUTPUT_HIWAT (256 * 1024) /* stop reading commands above */
#define POP3_STREAM_HIWAT (64 * 1024)  /* refill streams up to this */
#define POP3_OUTPUT_LOWAT (16 * 1024)  /* write callback below this */
#define POP3_READ_CHUNK (16 * 1024)
#define POP3_LOG_USER_MAX STORE_ADDRESS_MAX

struct pop3_job;

struct pop3_session {
	struct server *srv;
	struct bufferevent *bev;
	struct peer peer;
	char id[17];
	unsigned state;
	int secure; /* TLS active (issue 3: STLS) */

	/* AUTHORIZATION */
	char user[STORE_ADDRESS_MAX + 1]; /* from USER, until PASS */
	int have_user;
	int auth_cont; /* the next line is a SASL response */
	char login_user[POP3_LOG_USER_MAX + 1]; /* printable, for logs */

	/* TRANSACTION: the maildrop, locked */
	char maildir[PATH_MAX];
	int lock_fd;
	struct maildir_msg *msgs;
	size_t nmsgs;
	unsigned char *deleted; /* DELE marks, one per message */

	/* the multi-line reply in progress */
	enum pop3_stream stream;
	int retr_fd;
	struct pop3_encoder enc;
	size_t list_pos;

	struct pop3_job *job;	/* on a worker: the session must live */
	struct event *ev_delay; /* failed-login delay */
	struct event *ev_free;	/* deferred free */
	int delaying;

	unsigned bad_commands;
	unsigned retrieved, removed;
	int closing; /* no more input; free when flushed */
	int free_scheduled;
	int output_blocked; /* reading paused for output */
	int peer_eof;	    /* the client sent EOF */
	int reading;	    /* EV_READ is enabled */
};

enum pop3_job_kind {
	JOB_LOGIN,
	JOB_UPDATE,
};

/* Work handed to a worker thread. The worker only touches the job; the
 * session stays alive (and leaves msgs/deleted alone) until done runs. */
struct pop3_job {
	struct pop3_session *s;
	enum pop3_job_kind kind;

	/* JOB_LOGIN, in */
	char *password; /* owned, wiped on the worker */
	char hash[STORE_HASH_MAX];
	int known; /* the mailbox exists */
	int enabled;
	char maildir[PATH_MAX];
	/* JOB_LOGIN, out */
	int verified;
	int lock_fd;
	int lock_errno; /* maildir_lock failed */
	int scan_errno; /* maildir_scan failed */
	struct maildir_msg *msgs;
	size_t nmsgs;

	/* JOB_UPDATE, in: borrowed from the session */
	const struct maildir_msg *umsgs;
	const unsigned char *udeleted;
	size_t un;
	/* JOB_UPDATE, out */
	unsigned removed, failed;
};

struct pop3_cmd_def {
	const char *verb;
	unsigned states;
	unsigned flags;
	size_t min_args, max_args;
	enum pop3_cmd_result (*handler)(struct pop3_session *s, size_t argc,
					char **argv);
};

/* commands */
static enum pop3_cmd_result pop3_cmd_capa(struct pop3_session *s, size_t argc,
					  char **argv);
static enum pop3_cmd_result pop3_cmd_user(struct pop3_session *s, size_t argc,
					  char **argv);
static enum pop3_cmd_result pop3_cmd_pass(struct pop3_session *s, size_t argc,
					  char **argv);
static enum pop3_cmd_result pop3_cmd_auth(struct pop3_session *s, size_t argc,
					  char **argv);
static enum pop3_cmd_result pop3_cmd_apop(struct pop3_session *s, size_t argc,
					  char **argv);
static enum pop3_cmd_result pop3_cmd_stat(struct pop3_session *s, size_t argc,
					  char **argv);
static enum pop3_cmd_result pop3_cmd_list(struct pop3_session *s, size_t argc,
					  char **argv);
static enum pop3_cmd_result pop3_cmd_retr(struct pop3_session *s, size_t argc,
					  char **argv);
static enum pop3_cmd_result pop3_cmd_top(struct pop3_session *s, size_t argc,
					 char **argv);
static enum pop3_cmd_result pop3_cmd_dele(struct pop3_session *s, size_t argc,
					  char **argv);
static enum pop3_cmd_result pop3_cmd_noop(struct pop3_session *s, size_t argc,
					  char **argv);
static enum pop3_cmd_result pop3_cmd_rset(struct pop3_session *s, size_t argc,
					  char **argv);
static enum pop3_cmd_result pop3_cmd_quit(struct pop3_session *s, size_t argc,
					  char **argv);
static enum pop3_cmd_result pop3_cmd_uidl(struct pop3_session *s, size_t argc,
					  char **argv);

/* input, dispatch and replies */
static void pop3_process_input(struct pop3_session *s);
static void pop3_handle_line(struct pop3_session *s, char *line, size_t len);
static const struct pop3_cmd_def *pop3_find_command(const char *verb);
static void pop3_reply(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static enum pop3_cmd_result pop3_bad(struct pop3_session *s, const char *fmt,
				     ...) __attribute__((format(printf, 2, 3)));
static void pop3_enter_state(struct pop3_session *s, unsigned state);
static int pop3_is_busy(const struct pop3_session *s);
static void pop3_update_reading(struct pop3_session *s);
static int pop3_cleartext_ok(const struct pop3_session *s);
static int pop3_msg_arg(struct pop3_session *s, const char *arg,
			size_t *index_r, enum pop3_cmd_result *res_r);
static void pop3_maildrop_totals(const struct pop3_session *s, size_t *n_r,
				 uint64_t *octets_r);

/* login */
static enum pop3_cmd_result pop3_auth_response(struct pop3_session *s,
					       const char *resp, size_t len);
static enum pop3_cmd_result pop3_login_start(struct pop3_session *s,
					     const char *user,
					     const char *password);
static void pop3_login_work(void *arg);
static void pop3_login_done(void *arg);
static void pop3_dummy_hash_init(void);
static void pop3_log_safe(const char *in, char *out, size_t outlen);

/* streamed replies and UPDATE */
static enum pop3_cmd_result pop3_retr_start(struct pop3_session *s, size_t i,
					    int top, uint64_t lines);
static int pop3_stream_fill(struct pop3_session *s);
static void pop3_stream_stop(struct pop3_session *s);
static void pop3_update_work(void *arg);
static void pop3_update_done(void *arg);

/* lifetime */
static void pop3_on_read(struct bufferevent *bev, void *arg);
static void pop3_on_write(struct bufferevent *bev, void *arg);
static void pop3_on_event(struct bufferevent *bev, short what, void *arg);
static void pop3_on_delay(evutil_socket_t fd, short what, void *arg);
static void pop3_on_free(evutil_socket_t fd, short what, void *arg);
static void pop3_session_close(struct pop3_session *s, const char *reason,
			       int flush);
static void pop3_schedule_free(struct pop3_session *s);
static void pop3_session_free(struct pop3_session *s);
static void pop3_job_free(struct pop3_job **job);

#define ST_AUTH POP3_STATE_AUTHORIZATION
#define ST_TRANS POP3_STATE_TRANSACTION

/* The only place that knows the commands: RFC 1939 §4-§7 for USER, PASS,
 * QUIT, STAT, LIST, RETR, DELE, NOOP, RSET, TOP, UIDL; RFC 2449 §5 CAPA;
 * RFC 5034 AUTH. APOP (RFC 1939 §7) needs the clear password on our side,
 * and we keep only yescrypt hashes, so it is refused and not advertised.
 * STLS (RFC 2595) joins with TLS in issue 3. */
static const struct pop3_cmd_def pop3_commands[] = {
    {"CAPA", ST_AUTH | ST_TRANS, 0, 0, 0, pop3_cmd_capa},
    {"USER", ST_AUTH, CMDF_CLEARTEXT | CMDF_LONG_ARGS, 1, 1, pop3_cmd_user},
    {"PASS", ST_AUTH, CMDF_CLEARTEXT | CMDF_SECRET | CMDF_RAW_ARGS, 1, 1,
     pop3_cmd_pass},
    {"AUTH", ST_AUTH, CMDF_CLEARTEXT | CMDF_SECRET | CMDF_LONG_ARGS, 0, 2,
     pop3_cmd_auth},
    {"APOP", ST_AUTH, CMDF_SECRET | CMDF_RAW_ARGS, 0, 1, pop3_cmd_apop},
    {"STAT", ST_TRANS, 0, 0, 0, pop3_cmd_stat},
    {"LIST", ST_TRANS, 0, 0, 1, pop3_cmd_list},
    {"RETR", ST_TRANS, 0, 1, 1, pop3_cmd_retr},
    {"TOP", ST_TRANS, 0, 2, 2, pop3_cmd_top},
    {"DELE", ST_TRANS, 0, 1, 1, pop3_cmd_dele},
    {"NOOP", ST_TRANS, 0, 0, 0, pop3_cmd_noop},
    {"RSET", ST_TRANS, 0, 0, 0, pop3_cmd_rset},
    {"QUIT", ST_AUTH | ST_TRANS, 0, 0, 0, pop3_cmd_quit},
    {"UIDL", ST_TRANS, 0, 0, 1, pop3_cmd_uidl},
};

/* A hash of a random password, checked when the user does not exist so
 * that an unknown user costs as much time as a wrong password (no user
 * enumeration by timing). Made once, with password_hash's parameters. */
static pthread_once_t pop3_dummy_once = PTHREAD_ONCE_INIT;
static char pop3_dummy_hash[STORE_HASH_MAX];

void
pop3_session_start(struct server *srv, evutil_socket_t fd,
		   const struct peer *peer, int implicit_tls)
{
	struct pop3_session *s;
	struct timeval tv;

	(void)implicit_tls; /* TODO: issue 3 — POP3S handshake */
	s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->peer = *peer;
	s->state = POP3_STATE_AUTHORIZATION;
	s->lock_fd = -1;
	s->retr_fd = -1;
	util_random_hex(s->id, 8);
	s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		log_warnx("%s pop3 cannot create bufferevent addr=%s", s->id,
			  peer->addr);
		evutil_closesocket(fd);
		server_session_closed(srv, peer);
		free(s);
		return;
	}
	s->ev_free = event_new(srv->base, -1, 0, pop3_on_free, s);
	s->ev_delay = evtimer_new(srv->base, pop3_on_delay, s);
	if (s->ev_free == NULL || s->ev_delay == NULL)
		fatalx("pop3: event_new failed");
	bufferevent_setcb(s->bev, pop3_on_read, pop3_on_write, pop3_on_event,
			  s);
	bufferevent_setwatermark(s->bev, EV_WRITE, POP3_OUTPUT_LOWAT, 0);
	tv.tv_sec = (time_t)s->srv->cfg->pop3_idle_timeout;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	log_info("%s pop3 connected addr=%s port=%s", s->id, peer->addr,
		 peer->port);
	pop3_reply(s, "+OK Postern POP3 ready.");
	pop3_update_reading(s);
}

/* ---- replies and small helpers ---- */

static void
pop3_reply(struct pop3_session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

/* Replies to a command that counts as bad (unknown, wrong state, syntax).
 * Past pop3_max_bad_commands the reply says so and the session ends, as
 * nginx's max_errors and Dovecot's CLIENT_MAX_BAD_COMMANDS do. */
static enum pop3_cmd_result
pop3_bad(struct pop3_session *s, const char *fmt, ...)
{
	uint64_t max = s->srv->cfg->pop3_max_bad_commands;
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;

	/* max bad commands are tolerated; the next one ends the session. */
	s->bad_commands++;
	if (s->bad_commands > max) {
		abuse_report(s->srv, &s->peer, ABUSE_BAD_COMMANDS, NULL);
		pop3_reply(s, "-ERR Too many bad commands, closing connection");
		pop3_session_close(s, "bad-commands", 1);
		return CMD_BAD;
	}
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
	return CMD_BAD;
}

static void
pop3_enter_state(struct pop3_session *s, unsigned state)
{
	log_debug("%s pop3 state %u -> %u", s->id, s->state, state);
	s->state = state;
}

/* Busy: a reply or a check is in progress, so the next command waits in
 * the input buffer (RFC 2449 §6.6: pipelined commands run in order). */
static int
pop3_is_busy(const struct pop3_session *s)
{
	return s->job != NULL || s->stream != STREAM_NONE || s->delaying;
}

/* Reads from the socket only when the input can be used: not while busy,
 * while output is piling up, or after EOF. */
static void
pop3_update_reading(struct pop3_session *s)
{
	int want = !s->closing && !pop3_is_busy(s) && !s->output_blocked &&
		   !s->peer_eof;

	if (want && !s->reading)
		bufferevent_enable(s->bev, EV_READ);
	else if (!want && s->reading)
		bufferevent_disable(s->bev, EV_READ);
	s->reading = want;
}

/* Passwords travel in the clear unless TLS is up: allowed only when the
 * configuration says so (RFC 2595 §2.2 asks servers to refuse them). */
static int
pop3_cleartext_ok(const struct pop3_session *s)
{
	return s->secure || s->srv->cfg->pop3_allow_plaintext;
}

/* Resolves a message-number argument to a live message. Returns 0, or -1
 * after replying, with *res_r saying whether it was a bad command. */
static int
pop3_msg_arg(struct pop3_session *s, const char *arg, size_t *index_r,
	     enum pop3_cmd_result *res_r)
{
	const char *err;

	if (pop3_parse_msgnum(arg, s->nmsgs, index_r, &err) != POP3_PARSE_OK) {
		if (strcmp(err, "no such message") != 0) {
			*res_r = pop3_bad(s, "-ERR %s", err);
		} else {
			pop3_reply(s, "-ERR %s", err);
			*res_r = CMD_DONE;
		}
		return -1;
	}
	/* RFC 1939 §5: a message marked as deleted may not be referred to. */
	if (s->deleted[*index_r]) {
		pop3_reply(s, "-ERR message deleted");
		*res_r = CMD_DONE;
		return -1;
	}
	return 0;
}

static void
pop3_maildrop_totals(const struct pop3_session *s, size_t *n_r,
		     uint64_t *octets_r)
{
	size_t i, n = 0;
	uint64_t octets = 0;

	for (i = 0; i < s->nmsgs; i++) {
		if (s->deleted[i])
			continue;
		n++;
		octets += s->msgs[i].size;
	}
	*n_r = n;
	*octets_r = octets;
}

/* Copies a client-supplied name for a log line: printable ASCII only, no
 * quotes or backslashes, cut at outlen - 1. */
static void
pop3_log_safe(const char *in, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; in[i] != '\0' && i + 1 < outlen; i++) {
		unsigned char c = (unsigned char)in[i];

		out[i] = (c < 0x21 || c > 0x7e || c == '"' || c == '\\')
			     ? '?'
			     : (char)c;
	}
	out[i] = '\0';
}

/* ---- input and dispatch ---- */

static void
pop3_on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	pop3_process_input(arg);
}

/* Handles complete lines from the input buffer, in order, until the buffer
 * is empty or a command has to wait. Checks the line length before reading
 * a line, so that input never grows past the limit (RFC 2449 §4). */
static void
pop3_process_input(struct pop3_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer *out = bufferevent_get_output(s->bev);
	uint64_t cfg_max = s->srv->cfg->pop3_max_command_line;

	while (!s->closing && !pop3_is_busy(s)) {
		struct evbuffer_ptr eol;
		size_t max, buffered, n;
		char *line;

		/* Output high-water mark: a client that pipelines without
		 * reading replies waits until it reads them. */
		if (evbuffer_get_length(out) > POP3_OUTPUT_HIWAT) {
			s->output_blocked = 1;
			break;
		}
		buffered = evbuffer_get_length(in);
		if (buffered == 0)
			break;
		/* A SASL response may be longer than a command line (RFC
		 * 5034 §4 exempts it from the 255-octet limit). */
		max = cfg_max > SIZE_MAX ? SIZE_MAX : (size_t)cfg_max;
		if (s->auth_cont && max < POP3_SASL_LINE_MAX)
			max = POP3_SASL_LINE_MAX;
		eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
		if (eol.pos == -1) {
			if (buffered >= max)
				goto too_long;
			break;
		}
		if ((size_t)eol.pos + 1 > max)
			goto too_long;
		/* CRLF or a bare LF, which some clients send. */
		line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
		if (line == NULL)
			break;
		pop3_handle_line(s, line, n);
		/* The line may hold a password. */
		explicit_bzero(line, n);
		free(line);
	}
	if (!s->closing && !pop3_is_busy(s) && s->peer_eof &&
	    evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF).pos == -1) {
		pop3_session_close(s, "disconnected", 1);
		return;
	}
	pop3_update_reading(s);
	return;

too_long:
	pop3_reply(s, "-ERR Line too long");
	pop3_session_close(s, "line-too-long", 1);
}

static const struct pop3_cmd_def *
pop3_find_command(const char *verb)
{
	size_t i;

	for (i = 0; i < sizeof(pop3_commands) / sizeof(pop3_commands[0]); i++)
		if (strcmp(pop3_commands[i].verb, verb) == 0)
			return &pop3_commands[i];
	return NULL;
}

/* One line from the client: a SASL continuation, or a command that goes
 * through the table: parse, look up, check state and TLS, split the
 * arguments, then call the handler. */
static void
pop3_handle_line(struct pop3_session *s, char *line, size_t len)
{
	uint64_t cfg_max = s->srv->cfg->pop3_max_command_line;
	const struct pop3_cmd_def *c;
	struct pop3_command cmd;
	char *argv[POP3_ARGS_MAX];
	enum pop3_cmd_result res;
	const char *err;
	size_t argc;

	if (s->auth_cont) {
		s->auth_cont = 0;
		pop3_auth_response(s, line, len);
		return;
	}
	switch (pop3_parse_command(
	    line, len, cfg_max > SIZE_MAX ? SIZE_MAX : (size_t)cfg_max, &cmd,
	    &err)) {
	case POP3_PARSE_OK:
		break;
	case POP3_PARSE_TOO_LONG:
		pop3_reply(s, "-ERR Line too long");
		pop3_session_close(s, "line-too-long", 1);
		return;
	default:
		log_info("%s pop3 failed-command result=\"%s\"", s->id, err);
		/* A keyword that is not 3-4 letters names no command. */
		if (strcmp(err, "invalid command keyword") == 0 ||
		    (cmd.verb[0] != '\0' &&
		     pop3_find_command(cmd.verb) == NULL))
			pop3_bad(s, "-ERR Unknown command");
		else
			pop3_bad(s, "-ERR Syntax error: %s", err);
		return;
	}
	if ((c = pop3_find_command(cmd.verb)) == NULL) {
		log_info("%s pop3 failed-command command=\"%s\" "
			 "result=\"unknown command\"",
			 s->id, cmd.verb);
		pop3_bad(s, "-ERR Unknown command");
		return;
	}
	if (!(c->states & s->state)) {
		log_info("%s pop3 failed-command command=\"%s\" "
			 "result=\"wrong state\"",
			 s->id, c->verb);
		pop3_bad(s, "-ERR Command not valid in this state");
		return;
	}
	/* RFC 2595 §2.2: no clear-text passwords outside TLS unless the
	 * administrator allowed them. STLS (issue 3) sets s->secure. */
	if ((c->flags & CMDF_CLEARTEXT) && !pop3_cleartext_ok(s)) {
		pop3_reply(s, "-ERR [AUTH] Plaintext authentication "
			      "disallowed on non-secure connections");
		return;
	}
	if (c->flags & CMDF_RAW_ARGS) {
		/* RFC 1939 §7: PASS may contain spaces; its one argument
		 * is the rest of the line. */
		argv[0] = cmd.args;
		argc = cmd.args != NULL;
	} else if (pop3_parse_args(cmd.args, argv, c->max_args,
				   (c->flags & CMDF_LONG_ARGS) ? SIZE_MAX
							       : POP3_ARG_MAX,
				   &argc, &err) != POP3_PARSE_OK) {
		pop3_bad(s, "-ERR Syntax error: %s", err);
		return;
	}
	if (argc < c->min_args || argc > c->max_args) {
		pop3_bad(s, "-ERR Syntax error: wrong number of arguments");
		return;
	}
	log_debug("%s pop3 command %s%s", s->id, c->verb,
		  argc == 0		     ? ""
		  : (c->flags & CMDF_SECRET) ? " ********"
					     : " ...");
	res = c->handler(s, argc, argv);
	if (res == CMD_CLOSE)
		pop3_session_close(s, "quit", 1);
}

/* ---- commands ---- */

static enum pop3_cmd_result
pop3_cmd_capa(struct pop3_session *s, size_t argc, char **argv)
{
	int auth = s->state == POP3_STATE_AUTHORIZATION;

	(void)argc;
	(void)argv;
	/* RFC 2449 §5; USER and SASL only while they can be used. */
	pop3_reply(s, "+OK Capability list follows");
	pop3_reply(s, "TOP");
	pop3_reply(s, "UIDL");
	if (auth && pop3_cleartext_ok(s)) {
		pop3_reply(s, "USER");
		pop3_reply(s, "SASL PLAIN");
	}
	pop3_reply(s, "RESP-CODES");
	pop3_reply(s, "AUTH-RESP-CODE");
	pop3_reply(s, "PIPELINING");
	pop3_reply(s, "IMPLEMENTATION Postern");
	pop3_reply(s, ".");
	return CMD_DONE;
}

static enum pop3_cmd_result
pop3_cmd_user(struct pop3_session *s, size_t argc, char **argv)
{
	(void)argc;
	/* The reply is the same for every name, so that USER alone does not
	 * tell which mailboxes exist. A name too long to exist still gets a
	 * PASS that fails in the usual time. */
	if (strlcpy(s->user, argv[0], sizeof(s->user)) >= sizeof(s->user))
		s->user[0] = '\0';
	s->have_user = 1;
	pop3_reply(s, "+OK");
	return CMD_DONE;
}

static enum pop3_cmd_result
pop3_cmd_pass(struct pop3_session *s, size_t argc, char **argv)
{
	enum pop3_cmd_result r;

	(void)argc;
	if (!s->have_user)
		return pop3_bad(s, "-ERR No user name given, send USER first");
	/* RFC 1939 §7: after PASS, success or not, USER starts over. */
	s->have_user = 0;
	r = pop3_login_start(s, s->user, argv[0]);
	explicit_bzero(s->user, sizeof(s->user));
	return r;
}

static enum pop3_cmd_result
pop3_cmd_auth(struct pop3_session *s, size_t argc, char **argv)
{
	/* Not in RFC 5034, but what Outlook and others send to list the
	 * mechanisms; Dovecot answers it the same way. */
	if (argc == 0) {
		pop3_reply(s, "+OK");
		pop3_reply(s, "PLAIN");
		pop3_reply(s, ".");
		return CMD_DONE;
	}
	if (!util_strcaseeq(argv[0], "PLAIN")) {
		pop3_reply(s, "-ERR Unsupported authentication mechanism");
		return CMD_DONE;
	}
	s->have_user = 0;
	if (argc == 2)
		return pop3_auth_response(s, argv[1], strlen(argv[1]));
	/* RFC 5034 §4: an empty challenge, then the client's response on a
	 * line of its own. */
	pop3_reply(s, "+ ");
	s->auth_cont = 1;
	return CMD_DONE;
}

static enum pop3_cmd_result
pop3_cmd_apop(struct pop3_session *s, size_t argc, char **argv)
{
	(void)argc;
	(void)argv;
	/* APOP needs the clear password on the server; we store only
	 * yescrypt hashes, and the greeting carries no timestamp. */
	pop3_reply(s, "-ERR APOP not supported");
	return CMD_DONE;
}

static enum pop3_cmd_result
pop3_cmd_stat(struct pop3_session *s, size_t argc, char **argv)
{
	uint64_t octets;
	size_t n;

	(void)argc;
	(void)argv;
	/* RFC 1939 §5: "+OK nn mm", deleted messages not counted. */
	pop3_maildrop_totals(s, &n, &octets);
	pop3_reply(s, "+OK %zu %" PRIu64, n, octets);
	return CMD_DONE;
}

static enum pop3_cmd_result
pop3_cmd_list(struct pop3_session *s, size_t argc, char **argv)
{
	enum pop3_cmd_result res;
	uint64_t octets;
	size_t i, n;

	if (argc == 1) {
		if (pop3_msg_arg(s, argv[0], &i, &res) == -1)
			return res;
		pop3_reply(s, "+OK %zu %" PRIu64, i + 1, s->msgs[i].size);
		return CMD_DONE;
	}
	pop3_maildrop_totals(s, &n, &octets);
	pop3_reply(s, "+OK %zu messages (%" PRIu64 " octets)", n, octets);
	s->stream = STREAM_LIST;
	s->list_pos = 0;
	pop3_stream_fill(s);
	return CMD_DONE;
}

static enum pop3_cmd_result
pop3_cmd_uidl(struct pop3_session *s, size_t argc, char **argv)
{
	enum pop3_cmd_result res;
	size_t i;

	if (argc == 1) {
		if (pop3_msg_arg(s, argv[0], &i, &res) == -1)
			return res;
		pop3_reply(s, "+OK %zu %s", i + 1, s->msgs[i].uidl);
		return CMD_DONE;
	}
	pop3_reply(s, "+OK");
	s->stream = STREAM_UIDL;
	s->list_pos = 0;
	pop3_stream_fill(s);
	return CMD_DONE;
}

/* Opens message i and starts streaming it; RETR when top is 0. */
static enum pop3_cmd_result
pop3_retr_start(struct pop3_session *s, size_t i, int top, uint64_t lines)
{
	char path[PATH_MAX];
	int r;

	r = snprintf(path, sizeof(path), "%s/%s", s->maildir, s->msgs[i].rel);
	if (r < 0 || (size_t)r >= sizeof(path)) {
		pop3_reply(s, "-ERR [SYS/TEMP] Cannot open message");
		return CMD_DONE;
	}
	s->retr_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (s->retr_fd == -1) {
		log_warn("%s pop3 open %s", s->id, path);
		pop3_reply(s, "-ERR [SYS/TEMP] Cannot open message");
		return CMD_DONE;
	}
	if (top)
		pop3_reply(s, "+OK top of message follows");
	else
		pop3_reply(s, "+OK %" PRIu64 " octets", s->msgs[i].size);
	pop3_encoder_init(&s->enc, top, lines);
	s->stream = STREAM_RETR;
	if (!top)
		s->retrieved++;
	pop3_stream_fill(s);
	return CMD_DONE;
}

static enum pop3_cmd_result
pop3_cmd_retr(struct pop3_session *s, size_t argc, char **argv)
{
	enum pop3_cmd_result res;
	size_t i;

	(void)argc;
	if (pop3_msg_arg(s, argv[0], &i, &res) == -1)
		return res;
	return pop3_retr_start(s, i, 0, 0);
}

static enum pop3_cmd_result
pop3_cmd_top(struct pop3_session *s, size_t argc, char **argv)
{
	enum pop3_cmd_result res;
	const char *err;
	uint64_t lines;
	size_t i;

	(void)argc;
	if (pop3_msg_arg(s, argv[0], &i, &res) == -1)
		return res;
	/* RFC 1939 §7: the line count is a non-negative number. */
	if (pop3_parse_number(argv[1], UINT64_MAX, &lines, &err) !=
	    POP3_PARSE_OK)
		return pop3_bad(s, "-ERR Invalid number of lines");
	return pop3_retr_start(s, i, 1, lines);
}

static enum pop3_cmd_result
pop3_cmd_dele(struct pop3_session *s, size_t argc, char **argv)
{
	const char *err;
	size_t i;

	(void)argc;
	if (pop3_parse_msgnum(argv[0], s->nmsgs, &i, &err) != POP3_PARSE_OK) {
		if (strcmp(err, "no such message") != 0)
			return pop3_bad(s, "-ERR %s", err);
		pop3_reply(s, "-ERR %s", err);
		return CMD_DONE;
	}
	if (s->deleted[i]) {
		pop3_reply(s, "-ERR message %zu already deleted", i + 1);
		return CMD_DONE;
	}
	/* RFC 1939 §5: only marked; removed in the UPDATE state. */
	s->deleted[i] = 1;
	pop3_reply(s, "+OK message %zu deleted", i + 1);
	return CMD_DONE;
}

static enum pop3_cmd_result
pop3_cmd_noop(struct pop3_session *s, size_t argc, char **argv)
{
	(void)argc;
	(void)argv;
	pop3_reply(s, "+OK");
	return CMD_DONE;
}

static enum pop3_cmd_result
pop3_cmd_rset(struct pop3_session *s, size_t argc, char **argv)
{
	uint64_t octets;
	size_t n;

	(void)argc;
	(void)argv;
	memset(s->deleted, 0, s->nmsgs);
	pop3_maildrop_totals(s, &n, &octets);
	pop3_reply(s, "+OK maildrop has %zu messages (%" PRIu64 " octets)", n,
		   octets);
	return CMD_DONE;
}

static enum pop3_cmd_result
pop3_cmd_quit(struct pop3_session *s, size_t argc, char **argv)
{
	struct pop3_job *job;
	size_t i;

	(void)argc;
	(void)argv;
	if (s->state == POP3_STATE_AUTHORIZATION) {
		pop3_reply(s, "+OK Bye");
		return CMD_CLOSE;
	}
	/* RFC 1939 §6: QUIT from TRANSACTION enters UPDATE, which removes
	 * the marked messages; any other end of the session removes none. */
	pop3_enter_state(s, POP3_STATE_UPDATE);
	for (i = 0; i < s->nmsgs && !s->deleted[i]; i++)
		;
	if (i == s->nmsgs) {
		pop3_reply(s, "+OK Bye");
		return CMD_CLOSE;
	}
	job = xcalloc(1, sizeof(*job));
	job->s = s;
	job->kind = JOB_UPDATE;
	job->lock_fd = -1;
	strlcpy(job->maildir, s->maildir, sizeof(job->maildir));
	job->umsgs = s->msgs;
	job->udeleted = s->deleted;
	job->un = s->nmsgs;
	s->job = job;
	pop3_update_reading(s);
	worker_submit(s->srv->workers, pop3_update_work, pop3_update_done, job);
	return CMD_PENDING;
}

/* ---- login ---- */

/* The response to AUTH PLAIN, given with the command or on its own line:
 * "*" cancels (RFC 5034 §4), "=" is an empty initial response. */
static enum pop3_cmd_result
pop3_auth_response(struct pop3_session *s, const char *resp, size_t len)
{
	char authcid[STORE_ADDRESS_MAX + 1], passwd[POP3_SASL_DECODED_MAX];
	enum pop3_cmd_result r;
	const char *err;

	if (len == 1 && resp[0] == '*') {
		pop3_reply(s, "-ERR Authentication cancelled");
		return CMD_DONE;
	}
	if (len == 1 && resp[0] == '=')
		len = 0;
	if (pop3_parse_sasl_plain(resp, len, authcid, sizeof(authcid), passwd,
				  sizeof(passwd), &err) != POP3_PARSE_OK) {
		log_info("%s pop3 failed-command command=\"AUTH\" "
			 "result=\"%s\"",
			 s->id, err);
		return pop3_bad(s, "-ERR Invalid SASL PLAIN response");
	}
	r = pop3_login_start(s, authcid, passwd);
	explicit_bzero(passwd, sizeof(passwd));
	return r;
}

/* Looks the mailbox up (cheap, on the loop) and hands the password check,
 * the lock and the scan to a worker. Input waits until the answer. */
static enum pop3_cmd_result
pop3_login_start(struct pop3_session *s, const char *user, const char *password)
{
	char local[STORE_LOCAL_MAX + 1], domain[STORE_DOMAIN_MAX + 1];
	struct store_mailbox mb;
	struct pop3_job *job;
	enum store_result sr = STORE_NOTFOUND;
	int r;

	pop3_log_safe(user, s->login_user, sizeof(s->login_user));
	job = xcalloc(1, sizeof(*job));
	job->s = s;
	job->kind = JOB_LOGIN;
	job->lock_fd = -1;
	memset(&mb, 0, sizeof(mb));
	/* store_split_address admits only names that cannot leave the
	 * store; maildir_path checks once more. */
	if (user[0] != '\0' &&
	    store_split_address(user, local, sizeof(local), domain,
				sizeof(domain)) == STORE_OK)
		sr = store_mailbox_get(s->srv->store, user, &mb);
	if (sr == STORE_ERROR) {
		log_warnx("%s pop3 store lookup failed user=%s", s->id,
			  s->login_user);
		pop3_job_free(&job);
		pop3_reply(s, "-ERR [SYS/TEMP] Temporary failure, try later");
		return CMD_DONE;
	}
	if (sr == STORE_OK) {
		if (maildir_path(s->srv->cfg->data_dir, mb.domain, mb.local,
				 job->maildir, sizeof(job->maildir)) == -1) {
			log_warnx("%s pop3 no maildir path user=%s", s->id,
				  s->login_user);
			pop3_job_free(&job);
			pop3_reply(s, "-ERR [SYS/TEMP] Cannot open mailbox");
			return CMD_DONE;
		}
		job->known = 1;
		job->enabled = mb.enabled;
		strlcpy(job->hash, mb.password_hash, sizeof(job->hash));
		r = snprintf(s->login_user, sizeof(s->login_user), "%s@%s",
			     mb.local, mb.domain);
		if (r < 0 || (size_t)r >= sizeof(s->login_user))
			pop3_log_safe(user, s->login_user,
				      sizeof(s->login_user));
	}
	explicit_bzero(&mb, sizeof(mb));
	job->password = xstrdup(password);
	s->job = job;
	pop3_update_reading(s);
	worker_submit(s->srv->workers, pop3_login_work, pop3_login_done, job);
	return CMD_PENDING;
}

static void
pop3_dummy_hash_init(void)
{
	char pw[33];

	util_random_hex(pw, 16);
	if (password_hash(pw, pop3_dummy_hash, sizeof(pop3_dummy_hash)) == -1)
		pop3_dummy_hash[0] = '\0';
	explicit_bzero(pw, sizeof(pw));
}

/* Worker thread: the slow yescrypt check, then, on success, the maildrop
 * lock and listing, so that no disk work happens on the loop. */
static void
pop3_login_work(void *arg)
{
	struct pop3_job *job = arg;

	pthread_once(&pop3_dummy_once, pop3_dummy_hash_init);
	job->verified = password_verify(
	    job->password, job->known ? job->hash : pop3_dummy_hash);
	explicit_bzero(job->password, strlen(job->password));
	free(job->password);
	job->password = NULL;
	if (!job->verified || !job->known || !job->enabled)
		return;
	job->lock_fd = maildir_lock(job->maildir);
	if (job->lock_fd == -1) {
		job->lock_errno = errno;
		return;
	}
	if (maildir_scan(job->maildir, &job->msgs, &job->nmsgs) == -1) {
		job->scan_errno = errno;
		maildir_unlock(&job->lock_fd);
	}
}

/* Loop thread: the outcome of pop3_login_work. */
static void
pop3_login_done(void *arg)
{
	struct pop3_job *job = arg;
	struct pop3_session *s = job->s;
	const char *reason;

	s->job = NULL;
	if (s->closing) {
		pop3_job_free(&job);
		pop3_schedule_free(s);
		return;
	}
	if (!job->verified || !job->known || !job->enabled) {
		reason = !job->known	  ? "unknown-user"
			 : !job->verified ? "bad-password"
					  : "disabled";
		log_info("%s pop3 failed-login user=%s reason=%s", s->id,
			 s->login_user, reason);
		if (!job->verified)
			abuse_report(s->srv, &s->peer, ABUSE_AUTH_FAILURE,
				     s->login_user);
		pop3_job_free(&job);
		/* A wrong guess costs time: the reply comes after a delay,
		 * with input held back meanwhile. */
		{
			uint64_t ms = s->srv->cfg->pop3_auth_fail_delay_ms;
			struct timeval tv;

			tv.tv_sec = (time_t)(ms / 1000);
			tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
			s->delaying = 1;
			evtimer_add(s->ev_delay, &tv);
		}
		return;
	}
	if (job->lock_fd == -1) {
		if (job->lock_errno == EWOULDBLOCK) {
			log_info("%s pop3 failed-login user=%s reason=in-use",
				 s->id, s->login_user);
			pop3_reply(s, "-ERR [IN-USE] Mailbox is locked by "
				      "another session");
		} else {
			errno =
			    job->lock_errno ? job->lock_errno : job->scan_errno;
			log_warn("%s pop3 cannot open maildrop user=%s", s->id,
				 s->login_user);
			pop3_reply(s, "-ERR [SYS/TEMP] Cannot open mailbox");
		}
		pop3_job_free(&job);
		pop3_process_input(s);
		return;
	}
	strlcpy(s->maildir, job->maildir, sizeof(s->maildir));
	s->lock_fd = job->lock_fd;
	job->lock_fd = -1;
	s->msgs = job->msgs;
	s->nmsgs = job->nmsgs;
	job->msgs = NULL;
	s->deleted = xcalloc(s->nmsgs ? s->nmsgs : 1, 1);
	pop3_job_free(&job);
	pop3_enter_state(s, POP3_STATE_TRANSACTION);
	log_info("%s pop3 login user=%s messages=%zu", s->id, s->login_user,
		 s->nmsgs);
	pop3_reply(s, "+OK Logged in.");
	pop3_process_input(s);
}

static void
pop3_on_delay(evutil_socket_t fd, short what, void *arg)
{
	struct pop3_session *s = arg;

	(void)fd;
	(void)what;
	s->delaying = 0;
	pop3_reply(s, "-ERR [AUTH] Invalid login");
	pop3_process_input(s);
}

static void
pop3_job_free(struct pop3_job **jobp)
{
	struct pop3_job *job = *jobp;

	if (job == NULL)
		return;
	if (job->password != NULL) {
		explicit_bzero(job->password, strlen(job->password));
		free(job->password);
	}
	maildir_unlock(&job->lock_fd);
	maildir_scan_free(&job->msgs, job->nmsgs);
	explicit_bzero(job->hash, sizeof(job->hash));
	free(job);
	*jobp = NULL;
}

/* ---- streamed replies ---- */

/* Adds to the output until it holds POP3_STREAM_HIWAT octets or the reply
 * is complete; the write callback calls again as the output drains.
 * Returns -1 when the session had to be closed (read error). */
static int
pop3_stream_fill(struct pop3_session *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	char buf[POP3_READ_CHUNK];

	while (s->stream != STREAM_NONE &&
	       evbuffer_get_length(out) < POP3_STREAM_HIWAT) {
		struct evbuffer_iovec vec;
		size_t used, o;
		ssize_t got;

		if (s->stream == STREAM_LIST || s->stream == STREAM_UIDL) {
			size_t i = s->list_pos++;

			if (i >= s->nmsgs) {
				pop3_reply(s, ".");
				s->stream = STREAM_NONE;
			} else if (s->deleted[i]) {
				continue;
			} else if (s->stream == STREAM_LIST) {
				pop3_reply(s, "%zu %" PRIu64, i + 1,
					   s->msgs[i].size);
			} else {
				pop3_reply(s, "%zu %s", i + 1, s->msgs[i].uidl);
			}
			continue;
		}

		/* TOP may have all it wants before the end of the file. */
		got = pop3_encoder_is_done(&s->enc)
			  ? 0
			  : read(s->retr_fd, buf, sizeof(buf));
		if (got == -1 && errno == EINTR)
			continue;
		if (got == -1) {
			/* "+OK" is out already: all we can do is hang up,
			 * so the client does not take a partial message. */
			log_warn("%s pop3 read message", s->id);
			pop3_session_close(s, "io-error", 0);
			return -1;
		}
		if (got == 0) {
			char end[POP3_ENCODER_FINISH_MAX];

			o = pop3_encoder_finish(&s->enc, end);
			evbuffer_add(out, end, o);
			pop3_stream_stop(s);
			break;
		}
		if (evbuffer_reserve_space(out, 2 * got, &vec, 1) < 1)
			fatalx("pop3: evbuffer_reserve_space");
		o = pop3_encoder_feed(&s->enc, buf, (size_t)got, vec.iov_base,
				      vec.iov_len, &used);
		if (used != (size_t)got)
			fatalx("pop3: encoder left input");
		vec.iov_len = o;
		evbuffer_commit_space(out, &vec, 1);
	}
	return 0;
}

static void
pop3_stream_stop(struct pop3_session *s)
{
	if (s->retr_fd >= 0) {
		close(s->retr_fd);
		s->retr_fd = -1;
	}
	s->stream = STREAM_NONE;
}

/* ---- UPDATE ---- */

/* Worker thread: removes the marked messages, then makes the removals
 * durable. Reads the session's arrays, which the loop leaves alone while
 * the job is out. */
static void
pop3_update_work(void *arg)
{
	struct pop3_job *job = arg;
	char dir[PATH_MAX];
	size_t i;
	int r;

	for (i = 0; i < job->un; i++) {
		if (!job->udeleted[i])
			continue;
		if (maildir_remove(job->maildir, job->umsgs[i].rel) == -1) {
			log_warn("pop3 remove %s/%s", job->maildir,
				 job->umsgs[i].rel);
			job->failed++;
		} else {
			job->removed++;
		}
	}
	r = snprintf(dir, sizeof(dir), "%s/new", job->maildir);
	if (r > 0 && (size_t)r < sizeof(dir))
		util_fsync_dir(dir);
	r = snprintf(dir, sizeof(dir), "%s/cur", job->maildir);
	if (r > 0 && (size_t)r < sizeof(dir))
		util_fsync_dir(dir);
}

static void
pop3_update_done(void *arg)
{
	struct pop3_job *job = arg;
	struct pop3_session *s = job->s;

	s->job = NULL;
	s->removed += job->removed;
	if (!s->closing) {
		/* RFC 1939 §6 */
		if (job->failed)
			pop3_reply(s, "-ERR [SYS/TEMP] some deleted messages "
				      "not removed");
		else
			pop3_reply(s, "+OK Bye");
		pop3_job_free(&job);
		pop3_session_close(s, "quit", 1);
		return;
	}
	pop3_job_free(&job);
	pop3_schedule_free(s);
}

/* ---- lifetime ---- */

static void
pop3_on_write(struct bufferevent *bev, void *arg)
{
	struct pop3_session *s = arg;
	struct evbuffer *out = bufferevent_get_output(bev);

	if (s->closing) {
		if (evbuffer_get_length(out) == 0)
			pop3_schedule_free(s);
		return;
	}
	if (s->stream != STREAM_NONE) {
		if (pop3_stream_fill(s) == -1 || s->stream != STREAM_NONE)
			return;
	}
	if (s->output_blocked && evbuffer_get_length(out) <= POP3_OUTPUT_LOWAT)
		s->output_blocked = 0;
	pop3_process_input(s);
}

static void
pop3_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct pop3_session *s = arg;

	(void)bev;
	if (s->closing) {
		/* Flushing the last reply failed or timed out. */
		bufferevent_disable(s->bev, EV_READ | EV_WRITE);
		pop3_schedule_free(s);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* Commands already received still run (the client may have
		 * sent "DELE 1\r\nQUIT\r\n" and shut its side); the session
		 * ends once they are done. */
		s->peer_eof = 1;
		pop3_process_input(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (what & BEV_EVENT_READING) {
			pop3_reply(s, "-ERR Disconnected for inactivity");
			pop3_session_close(s, "timeout", 1);
		} else {
			pop3_session_close(s, "timeout", 0);
		}
		return;
	}
	pop3_session_close(s, "io-error", 0);
}

/* The one way out. Logs the disconnect line, stops input and either waits
 * for the output to drain (flush) or schedules the free at once. Safe to
 * call from any callback: the session is freed later, from ev_free, and
 * not before a job on a worker has come back. */
static void
pop3_session_close(struct pop3_session *s, const char *reason, int flush)
{
	if (s->closing)
		return;
	s->closing = 1;
	log_info("%s pop3 disconnected reason=%s retrieved=%u deleted=%u",
		 s->id, reason, s->retrieved, s->removed);
	pop3_stream_stop(s);
	if (s->delaying) {
		evtimer_del(s->ev_delay);
		s->delaying = 0;
	}
	pop3_update_reading(s);
	if (flush && evbuffer_get_length(bufferevent_get_output(s->bev)) > 0) {
		/* The write callback fires when all is sent. */
		bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
		bufferevent_enable(s->bev, EV_WRITE);
		return;
	}
	bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	pop3_schedule_free(s);
}

static void
pop3_schedule_free(struct pop3_session *s)
{
	if (s->job != NULL || s->free_scheduled)
		return;
	s->free_scheduled = 1;
	event_active(s->ev_free, EV_TIMEOUT, 0);
}

static void
pop3_on_free(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pop3_session_free(arg);
}

static void
pop3_session_free(struct pop3_session *s)
{
	struct server *srv = s->srv;
	struct peer peer = s->peer;

	bufferevent_free(s->bev);
	pop3_stream_stop(s);
	maildir_unlock(&s->lock_fd);
	maildir_scan_free(&s->msgs, s->nmsgs);
	free(s->deleted);
	event_free(s->ev_delay);
	event_free(s->ev_free);
	explicit_bzero(s, sizeof(*s));
	free(s);
	server_session_closed(srv, &peer);
}
