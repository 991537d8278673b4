/* POP3 server sessions (RFC 1939, RFC 2449 CAPA, RFC 5034 SASL, RFC 2595
 * STLS, RFC 8314 POP3S): reading command lines within limits, one dispatch
 * table that gates every command by state and TLS, login through auth.c
 * followed by the maildrop lock and scan on a worker thread, and
 * RETR/TOP/LIST/UIDL replies streamed as output drains. Parsing and the
 * RETR encoder are pure and live in pop3_parse.c. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "abuse.h"
#include "auth.h"
#include "log.h"
#include "maildir.h"
#include "pop3_parse.h"
#include "pop3_session.h"
#include "sasl.h"
#include "store.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

/* RFC 1939 §3 states, as bits so that a table row can allow several. */
#define POP3_STATE_AUTHORIZATION 0x01
#define POP3_STATE_TRANSACTION 0x02
#define POP3_STATE_UPDATE 0x04

/* Command flags (CONVENTIONS.md §3). */
#define CMDF_CLEARTEXT                                                         \
	0x01		   /* carries a password: needs TLS, loopback with     \
			      [auth] plaintext_on_loopback, or                 \
			      [pop3] allow_plaintext_auth */
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
#define POP3_TLS_INFO_MAX 128
#define POP3_REPLY_MAX 512	   /* one reply line, formatted on the stack */
#define POP3_LIST_CHUNK (8 * 1024) /* LIST/UIDL lines handed over at once */

/* What the next client line answers during AUTH (RFC 5034 §4). */
enum pop3_sasl_step {
	POP3_SASL_NONE,
	POP3_SASL_PLAIN,      /* the PLAIN message */
	POP3_SASL_LOGIN_USER, /* LOGIN: the user name */
	POP3_SASL_LOGIN_PASS, /* LOGIN: the password */
};

struct pop3_job;

struct pop3_session {
	struct server *srv;
	struct bufferevent *bev;
	struct peer peer;
	char id[17];
	unsigned state;

	/* TLS */
	int secure;	   /* TLS is on (STLS done, or [pop3s]) */
	int implicit_tls;  /* [pop3s]: the greeting follows the handshake */
	int tls_handshake; /* in progress: no command is read meanwhile */
	int tls_closed;	   /* close_notify sent */
	char tls_info[POP3_TLS_INFO_MAX]; /* "TLSv1.3:TLS_AES_..." */

	/* AUTHORIZATION */
	char user[STORE_ADDRESS_MAX + 1]; /* from USER, until PASS */
	int have_user;
	enum pop3_sasl_step sasl_step;		/* what the next line answers */
	char sasl_user[SASL_FIELD_MAX];		/* AUTH LOGIN: name, until the
						   password comes */
	char login_user[POP3_LOG_USER_MAX + 1]; /* printable, for logs */
	struct auth_request *auth; /* credential check in progress */

	/* TRANSACTION: the maildrop, locked */
	char maildir[PATH_MAX];
	struct maildir_lock lock; /* lock.dirfd: messages open relative to it */
	struct maildir_msg *msgs;
	size_t nmsgs;
	unsigned char *deleted; /* DELE marks, one per message */

	/* the multi-line reply in progress */
	enum pop3_stream stream;
	int retr_fd;
	struct pop3_encoder enc;
	size_t list_pos;

	struct pop3_job *job;  /* on a worker: the session must live */
	struct event *ev_free; /* deferred free */

	unsigned bad_commands;
	unsigned retrieved, removed;
	int closing; /* no more input; free when flushed */
	int free_scheduled;
	int output_blocked; /* reading paused for output */
	int peer_eof;	    /* the client sent EOF */
	int reading;	    /* EV_READ is enabled */
};

enum pop3_job_kind {
	JOB_OPEN,
	JOB_UPDATE,
};

/* Work handed to a worker thread. The worker only touches the job; the
 * session stays alive (and leaves msgs/deleted alone) until done runs. */
struct pop3_job {
	struct pop3_session *s;
	enum pop3_job_kind kind;
	char maildir[PATH_MAX];

	/* JOB_OPEN (after a successful login), out */
	struct maildir_lock lock;
	int lock_errno; /* maildir_lock failed */
	int scan_errno; /* maildir_scan failed */
	struct maildir_msg *msgs;
	size_t nmsgs;

	/* JOB_UPDATE, in: borrowed from the session */
	const struct maildir_msg *umsgs;
	const unsigned char *udeleted;
	size_t un;
	int udirfd;
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
static enum pop3_cmd_result pop3_cmd_stls(struct pop3_session *s, size_t argc,
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
static void pop3_vreply(struct pop3_session *s, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void pop3_reply(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void pop3_reply_lines(struct pop3_session *s, const char *const *lines,
			     size_t n);
static enum pop3_cmd_result pop3_bad(struct pop3_session *s, const char *fmt,
				     ...) __attribute__((format(printf, 2, 3)));
static void pop3_enter_state(struct pop3_session *s, unsigned state);
static int pop3_is_busy(const struct pop3_session *s);
static void pop3_update_reading(struct pop3_session *s);
static int pop3_cleartext_ok(const struct pop3_session *s);
static int pop3_peer_is_loopback(const struct pop3_session *s);
static int pop3_msg_arg(struct pop3_session *s, const char *arg,
			size_t *index_r, enum pop3_cmd_result *res_r);
static void pop3_maildrop_totals(const struct pop3_session *s, size_t *n_r,
				 uint64_t *octets_r);

/* TLS */
static struct bufferevent *pop3_tls_bev(struct pop3_session *s,
					evutil_socket_t fd,
					struct bufferevent *under);
static void pop3_setup_bev(struct pop3_session *s);
static void pop3_greet(struct pop3_session *s);
static void pop3_tls_log_errors(struct pop3_session *s);

/* login */
static void pop3_auth_line(struct pop3_session *s, const char *line,
			   size_t len);
static enum pop3_cmd_result pop3_auth_plain(struct pop3_session *s,
					    const char *resp, size_t len);
static enum pop3_cmd_result pop3_login_start(struct pop3_session *s,
					     const char *user,
					     const char *password);
static void pop3_on_auth(void *arg, enum auth_result result, const char *user);
static void pop3_open_start(struct pop3_session *s, const char *user);
static void pop3_open_work(void *arg);
static void pop3_open_done(void *arg);
static void pop3_forget_login(struct pop3_session *s);

/* streamed replies and UPDATE */
static enum pop3_cmd_result pop3_retr_start(struct pop3_session *s, size_t i,
					    int top, uint64_t lines);
static int pop3_stream_fill(struct pop3_session *s);
static void pop3_list_fill(struct pop3_session *s);
static void pop3_stream_stop(struct pop3_session *s);
static void pop3_update_work(void *arg);
static void pop3_update_done(void *arg);

/* lifetime */
static void pop3_on_read(struct bufferevent *bev, void *arg);
static void pop3_on_write(struct bufferevent *bev, void *arg);
static void pop3_on_event(struct bufferevent *bev, short what, void *arg);
static void pop3_on_under_write(struct bufferevent *bev, void *arg);
static void pop3_on_under_event(struct bufferevent *bev, short what, void *arg);
static void pop3_on_free(evutil_socket_t fd, short what, void *arg);
static int pop3_flush_wait(struct pop3_session *s);
static void pop3_session_close(struct pop3_session *s, const char *reason,
			       int flush);
static void pop3_schedule_free(struct pop3_session *s);
static void pop3_session_free(struct pop3_session *s);
static void pop3_job_free(struct pop3_job **job);

#define ST_AUTH POP3_STATE_AUTHORIZATION
#define ST_TRANS POP3_STATE_TRANSACTION

/* The only place that knows the commands: RFC 1939 §4-§7 for USER, PASS,
 * QUIT, STAT, LIST, RETR, DELE, NOOP, RSET, TOP, UIDL; RFC 2449 §5 CAPA;
 * RFC 5034 AUTH; RFC 2595 §4 STLS, in the AUTHORIZATION state only. APOP
 * (RFC 1939 §7) needs the clear password on our side, and we keep only
 * yescrypt hashes, so it is refused and not advertised. */
static const struct pop3_cmd_def pop3_commands[] = {
    {"CAPA", ST_AUTH | ST_TRANS, 0, 0, 0, pop3_cmd_capa},
    {"STLS", ST_AUTH, 0, 0, 0, pop3_cmd_stls},
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

void
pop3_session_start(struct server *srv, evutil_socket_t fd,
		   const struct peer *peer, int implicit_tls)
{
	struct pop3_session *s;

	s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->peer = *peer;
	s->state = POP3_STATE_AUTHORIZATION;
	s->lock.dirfd = s->lock.lockfd = -1;
	s->retr_fd = -1;
	s->implicit_tls = implicit_tls;
	util_random_hex(s->id, 8);
	/* RFC 8314 §3: on [pop3s] the TLS handshake comes first; the
	 * greeting is sent once it has completed (pop3_on_event). */
	if (implicit_tls)
		s->bev = pop3_tls_bev(s, fd, NULL);
	else
		s->bev = bufferevent_socket_new(srv->base, fd,
						BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		log_warnx("%s pop3 cannot set up the connection addr=%s", s->id,
			  peer->addr);
		evutil_closesocket(fd);
		server_session_closed(srv, peer);
		free(s);
		return;
	}
	s->ev_free = event_new(srv->base, -1, 0, pop3_on_free, s);
	if (s->ev_free == NULL)
		fatalx("pop3: event_new failed");
	pop3_setup_bev(s);
	log_info("%s pop3 connected addr=%s port=%s%s", s->id, peer->addr,
		 peer->port, implicit_tls ? " tls=implicit" : "");
	if (!implicit_tls)
		pop3_greet(s);
	pop3_update_reading(s);
}

static void
pop3_greet(struct pop3_session *s)
{
	pop3_reply(s, "+OK Postern POP3 ready.");
}

/* ---- TLS ---- */

/* Wraps the socket fd ([pop3s]) or the plaintext bufferevent under (STLS)
 * in a server-side TLS bufferevent that starts with the handshake, driven
 * by the loop like any other I/O. Returns NULL when TLS is not configured
 * or OpenSSL fails (fd is then still the caller's; under is untouched). */
static struct bufferevent *
pop3_tls_bev(struct pop3_session *s, evutil_socket_t fd,
	     struct bufferevent *under)
{
	struct bufferevent *bev = tls_server_bev(s->srv->base, fd, under);

	if (bev == NULL)
		return NULL;
	/* No command is read until the handshake is over; the handshake
	 * itself runs whatever EV_READ says. */
	bufferevent_disable(bev, EV_READ);
	s->reading = 0;
	s->secure = 1;
	s->tls_handshake = 1;
	return bev;
}

/* Callbacks, the output low-water mark and the idle timeout of s->bev;
 * again after STLS has put a TLS filter on top. */
static void
pop3_setup_bev(struct pop3_session *s)
{
	struct bufferevent *under = bufferevent_get_underlying(s->bev);
	struct timeval tv;

	bufferevent_setcb(s->bev, pop3_on_read, pop3_on_write, pop3_on_event,
			  s);
	bufferevent_setwatermark(s->bev, EV_WRITE, POP3_OUTPUT_LOWAT, 0);
	tv.tv_sec = (time_t)s->srv->cfg->pop3_idle_timeout;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	/* The TLS filter encrypts into the socket bufferevent below without
	 * limit unless that one has a high-water mark: without it a RETR
	 * would end up whole in memory instead of streamed. */
	if (under != NULL)
		bufferevent_setwatermark(under, EV_WRITE, POP3_OUTPUT_LOWAT,
					 POP3_STREAM_HIWAT);
}

static void
pop3_tls_log_errors(struct pop3_session *s)
{
	unsigned long e;

	while ((e = bufferevent_get_openssl_error(s->bev)) != 0) {
		char buf[256];

		/* libevent also queues its SSL_get_error() code, which is no
		 * OpenSSL error and would read "lib(0)". */
		if (ERR_GET_LIB(e) == 0)
			continue;
		ERR_error_string_n(e, buf, sizeof(buf));
		log_info("%s pop3 tls error=\"%s\"", s->id, buf);
	}
}

/* ---- replies and small helpers ---- */

/* Adds one reply line and its CRLF to the output in one piece. Over TLS
 * every addition to the output is encrypted at once into a TLS record of
 * its own (and on [pop3s] written at once), so a line is never split and
 * multi-line replies are handed over whole (pop3_reply_lines). */
static void
pop3_vreply(struct pop3_session *s, const char *fmt, va_list ap)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	char buf[POP3_REPLY_MAX];
	struct evbuffer *tmp;
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap2);
	va_end(ap2);
	if (n >= 0 && (size_t)n < sizeof(buf) - 2) {
		buf[n] = '\r';
		buf[n + 1] = '\n';
		evbuffer_add(out, buf, (size_t)n + 2);
		return;
	}
	/* Longer than any reply we make; still one piece. */
	if ((tmp = evbuffer_new()) == NULL)
		fatalx("pop3: evbuffer_new failed");
	evbuffer_add_vprintf(tmp, fmt, ap);
	evbuffer_add(tmp, "\r\n", 2);
	evbuffer_add_buffer(out, tmp);
	evbuffer_free(tmp);
}

static void
pop3_reply(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pop3_vreply(s, fmt, ap);
	va_end(ap);
}

/* A multi-line reply from n fixed lines (the status line first, the "."
 * added here), handed to the output in one piece. */
static void
pop3_reply_lines(struct pop3_session *s, const char *const *lines, size_t n)
{
	struct evbuffer *tmp = evbuffer_new();
	size_t i;

	if (tmp == NULL)
		fatalx("pop3: evbuffer_new failed");
	for (i = 0; i < n; i++) {
		evbuffer_add(tmp, lines[i], strlen(lines[i]));
		evbuffer_add(tmp, "\r\n", 2);
	}
	evbuffer_add(tmp, ".\r\n", 3);
	evbuffer_add_buffer(bufferevent_get_output(s->bev), tmp);
	evbuffer_free(tmp);
}

/* Replies to a command that counts as bad (unknown, wrong state, syntax).
 * Past pop3_max_bad_commands the reply says so and the session ends, as
 * nginx's max_errors and Dovecot's CLIENT_MAX_BAD_COMMANDS do. */
static enum pop3_cmd_result
pop3_bad(struct pop3_session *s, const char *fmt, ...)
{
	uint64_t max = s->srv->cfg->pop3_max_bad_commands;
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
	pop3_vreply(s, fmt, ap);
	va_end(ap);
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
	return s->job != NULL || s->auth != NULL || s->stream != STREAM_NONE ||
	       s->tls_handshake;
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
 * configuration says so (RFC 2595 §2.2 asks servers to refuse them), for
 * every client ([pop3] allow_plaintext_auth, the older key) or for
 * loopback clients only ([auth] plaintext_on_loopback: local webmail). */
static int
pop3_cleartext_ok(const struct pop3_session *s)
{
	if (s->secure || s->srv->cfg->pop3_allow_plaintext)
		return 1;
	return s->srv->cfg->auth_plaintext_loopback && pop3_peer_is_loopback(s);
}

/* 127.0.0.0/8, ::1, or 127.0.0.0/8 mapped into IPv6. */
static int
pop3_peer_is_loopback(const struct pop3_session *s)
{
	const struct sockaddr_storage *sa = &s->peer.sa;

	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
		    (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
		       in6->sin6_addr.s6_addr[12] == 127;
	}
	return 0;
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

/* ---- input and dispatch ---- */

static void
pop3_on_read(struct bufferevent *bev, void *arg)
{
	struct pop3_session *s = arg;

	(void)bev;
	if (s->tls_handshake)
		return;
	pop3_process_input(s);
}

/* Handles complete lines from the input buffer, in order, until the buffer
 * is empty or a command has to wait. Checks the line length before reading
 * a line, so that input never grows past the limit (RFC 2449 §4). */
static void
pop3_process_input(struct pop3_session *s)
{
	uint64_t cfg_max = s->srv->cfg->pop3_max_command_line;
	struct evbuffer *in;

	while (!s->closing && !pop3_is_busy(s)) {
		/* Fetched each time: STLS replaces s->bev. */
		struct evbuffer *out = bufferevent_get_output(s->bev);
		struct evbuffer_ptr eol;
		size_t max, buffered, n;
		char *line;

		in = bufferevent_get_input(s->bev);

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
		if (s->sasl_step != POP3_SASL_NONE && max < POP3_SASL_LINE_MAX)
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
	in = bufferevent_get_input(s->bev);
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

	if (s->sasl_step != POP3_SASL_NONE) {
		pop3_auth_line(s, line, len);
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
	 * administrator allowed them; the wording and the [AUTH] code
	 * (RFC 3206 §4) are Dovecot's, which clients already know. */
	if ((c->flags & CMDF_CLEARTEXT) && !pop3_cleartext_ok(s)) {
		log_info("%s pop3 failed-command command=\"%s\" "
			 "result=\"plaintext refused\"",
			 s->id, c->verb);
		pop3_reply(s, "-ERR [AUTH] Plaintext authentication disallowed "
			      "on non-secure (SSL/TLS) connections.");
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
	const char *lines[16];
	size_t n = 0;

	(void)argc;
	(void)argv;
	/* RFC 2449 §5; STLS, USER and SASL only while they can be used
	 * (RFC 2595 §4: not once TLS is on). */
	lines[n++] = "+OK Capability list follows";
	lines[n++] = "TOP";
	lines[n++] = "UIDL";
	if (auth && !s->secure && tls_server_ctx() != NULL)
		lines[n++] = "STLS";
	if (auth && pop3_cleartext_ok(s)) {
		lines[n++] = "USER";
		lines[n++] = "SASL PLAIN LOGIN";
	}
	lines[n++] = "RESP-CODES";
	lines[n++] = "AUTH-RESP-CODE";
	lines[n++] = "PIPELINING";
	lines[n++] = "IMPLEMENTATION Postern";
	pop3_reply_lines(s, lines, n);
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
		static const char *const mechs[] = {"+OK", "PLAIN", "LOGIN"};

		pop3_reply_lines(s, mechs, sizeof(mechs) / sizeof(mechs[0]));
		return CMD_DONE;
	}
	s->have_user = 0;
	if (util_strcaseeq(argv[0], "PLAIN")) {
		if (argc == 2)
			return pop3_auth_plain(s, argv[1], strlen(argv[1]));
		/* RFC 5034 §4: an empty challenge, then the client's
		 * response on a line of its own. */
		pop3_reply(s, "+ ");
		s->sasl_step = POP3_SASL_PLAIN;
		return CMD_DONE;
	}
	if (util_strcaseeq(argv[0], "LOGIN")) {
		if (argc == 2) {
			/* The initial response is the user name. */
			if (sasl_login_decode(argv[1], strlen(argv[1]),
					      s->sasl_user,
					      sizeof(s->sasl_user)) == -1)
				return pop3_bad(s, "-ERR Invalid SASL "
						   "response");
			pop3_reply(s, "+ UGFzc3dvcmQ6"); /* "Password:" */
			s->sasl_step = POP3_SASL_LOGIN_PASS;
			return CMD_DONE;
		}
		pop3_reply(s, "+ VXNlcm5hbWU6"); /* "Username:" */
		s->sasl_step = POP3_SASL_LOGIN_USER;
		return CMD_DONE;
	}
	pop3_reply(s, "-ERR Unsupported authentication mechanism");
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

/* RFC 2595 §4. The reply goes out in clear, then a TLS filter is put on
 * the connection; the handshake runs on the loop and commands are read
 * again once it is done (pop3_on_event). */
static enum pop3_cmd_result
pop3_cmd_stls(struct pop3_session *s, size_t argc, char **argv)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct bufferevent *plain = s->bev, *tls;
	size_t pending;

	(void)argc;
	(void)argv;
	if (s->secure)
		return pop3_bad(s, "-ERR TLS is already active");
	if (tls_server_ctx() == NULL) {
		pop3_reply(s, "-ERR TLS support is not enabled");
		return CMD_DONE;
	}
	if (s->peer_eof) {
		/* The client has shut its side: no handshake can follow. */
		pop3_session_close(s, "disconnected", 0);
		return CMD_DONE;
	}
	pop3_reply(s, "+OK Begin TLS negotiation");
	/* Whatever the client sent after STLS came in clear and must not be
	 * run as if it had come over TLS (CVE-2011-0411): drop it. */
	pending = evbuffer_get_length(in);
	if (pending > 0) {
		log_info("%s pop3 stls-discarded octets=%zu", s->id, pending);
		evbuffer_drain(in, pending);
	}
	tls = pop3_tls_bev(s, -1, plain);
	if (tls == NULL) {
		log_warnx("%s pop3 stls setup failed", s->id);
		pop3_session_close(s, "tls-setup", 1);
		return CMD_DONE;
	}
	s->bev = tls;
	pop3_setup_bev(s);
	/* RFC 2595 §4: nothing learnt before TLS carries over. */
	pop3_forget_login(s);
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
	s->retr_fd = maildir_open_message(s->lock.dirfd, s->msgs[i].rel);
	if (s->retr_fd == -1) {
		log_warn("%s pop3 open %s/%s", s->id, s->maildir,
			 s->msgs[i].rel);
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
	job->lock.dirfd = job->lock.lockfd = -1;
	strlcpy(job->maildir, s->maildir, sizeof(job->maildir));
	job->umsgs = s->msgs;
	job->udeleted = s->deleted;
	job->un = s->nmsgs;
	job->udirfd = s->lock.dirfd;
	s->job = job;
	pop3_update_reading(s);
	worker_submit(s->srv->workers, pop3_update_work, pop3_update_done, job);
	return CMD_PENDING;
}

/* ---- login ---- */

/* One client line during an AUTH exchange (RFC 5034 §4): "*" cancels,
 * anything else is the base64 response the current step expects. */
static void
pop3_auth_line(struct pop3_session *s, const char *line, size_t len)
{
	char password[SASL_PASSWORD_MAX];
	enum pop3_sasl_step step = s->sasl_step;

	s->sasl_step = POP3_SASL_NONE;
	if (len == 1 && line[0] == '*') {
		explicit_bzero(s->sasl_user, sizeof(s->sasl_user));
		pop3_reply(s, "-ERR Authentication cancelled");
		return;
	}
	switch (step) {
	case POP3_SASL_PLAIN:
		pop3_auth_plain(s, line, len);
		return;
	case POP3_SASL_LOGIN_USER:
		if (sasl_login_decode(line, len, s->sasl_user,
				      sizeof(s->sasl_user)) == -1) {
			pop3_bad(s, "-ERR Invalid SASL response");
			return;
		}
		pop3_reply(s, "+ UGFzc3dvcmQ6"); /* "Password:" */
		s->sasl_step = POP3_SASL_LOGIN_PASS;
		return;
	case POP3_SASL_LOGIN_PASS:
		if (sasl_login_decode(line, len, password, sizeof(password)) ==
		    -1) {
			explicit_bzero(s->sasl_user, sizeof(s->sasl_user));
			explicit_bzero(password, sizeof(password));
			pop3_bad(s, "-ERR Invalid SASL response");
			return;
		}
		pop3_login_start(s, s->sasl_user, password);
		explicit_bzero(s->sasl_user, sizeof(s->sasl_user));
		explicit_bzero(password, sizeof(password));
		return;
	case POP3_SASL_NONE:
		break;
	}
	fatalx("pop3: SASL line without a step");
}

/* The AUTH PLAIN response, given with the command or on its own line; "="
 * is an empty initial response (RFC 5034 §4). */
static enum pop3_cmd_result
pop3_auth_plain(struct pop3_session *s, const char *resp, size_t len)
{
	char user[SASL_FIELD_MAX], password[SASL_PASSWORD_MAX];
	enum pop3_cmd_result r;
	const char *err = "invalid";

	if (len == 1 && resp[0] == '=')
		len = 0;
	if (sasl_plain_decode(resp, len, user, sizeof(user), password,
			      sizeof(password), &err) == -1) {
		explicit_bzero(password, sizeof(password));
		log_info("%s pop3 failed-command command=\"AUTH\" "
			 "result=\"%s\"",
			 s->id, err);
		return pop3_bad(s, "-ERR Invalid SASL PLAIN response");
	}
	r = pop3_login_start(s, user, password);
	explicit_bzero(password, sizeof(password));
	return r;
}

/* Hands the credentials to auth.c (store lookup, yescrypt on a worker,
 * failure delay and abuse accounting, all shared with SMTP AUTH). Input
 * waits until the answer. auth_check copies the password; the caller
 * wipes its own. */
static enum pop3_cmd_result
pop3_login_start(struct pop3_session *s, const char *user, const char *password)
{
	util_log_safe(user, s->login_user, sizeof(s->login_user));
	s->auth =
	    auth_check(s->srv, &s->peer, user, password,
		       s->srv->cfg->pop3_auth_fail_delay_ms, pop3_on_auth, s);
	pop3_update_reading(s);
	return CMD_PENDING;
}

/* Loop thread, from auth.c: a failure arrives after the failure delay. On
 * success the maildrop is locked and listed on a worker next. Not called
 * once the session is closing (auth_cancel). */
static void
pop3_on_auth(void *arg, enum auth_result result, const char *user)
{
	struct pop3_session *s = arg;

	s->auth = NULL;
	switch (result) {
	case AUTH_OK:
		pop3_open_start(s, user);
		return;
	case AUTH_FAILED:
		log_info("%s pop3 failed-login user=%s", s->id, s->login_user);
		pop3_reply(s, "-ERR [AUTH] Invalid login");
		break;
	case AUTH_TEMPFAIL:
		log_warnx("%s pop3 credential check failed user=%s", s->id,
			  s->login_user);
		pop3_reply(s, "-ERR [SYS/TEMP] Temporary failure, try later");
		break;
	}
	pop3_process_input(s);
}

/* Starts the maildrop lock and scan of user (the canonical address that
 * auth.c found) on a worker, so that no disk work happens on the loop. */
static void
pop3_open_start(struct pop3_session *s, const char *user)
{
	char local[STORE_LOCAL_MAX + 1], domain[STORE_DOMAIN_MAX + 1];
	struct pop3_job *job;

	util_log_safe(user, s->login_user, sizeof(s->login_user));
	job = xcalloc(1, sizeof(*job));
	job->s = s;
	job->kind = JOB_OPEN;
	job->lock.dirfd = job->lock.lockfd = -1;
	/* store_split_address admits only names that cannot leave the
	 * store; maildir_path checks once more. */
	if (store_split_address(user, local, sizeof(local), domain,
				sizeof(domain)) != STORE_OK ||
	    maildir_path(s->srv->cfg->data_dir, domain, local, job->maildir,
			 sizeof(job->maildir)) == -1) {
		log_warnx("%s pop3 no maildir path user=%s", s->id,
			  s->login_user);
		pop3_job_free(&job);
		pop3_reply(s, "-ERR [SYS/TEMP] Cannot open mailbox");
		pop3_process_input(s);
		return;
	}
	s->job = job;
	pop3_update_reading(s);
	worker_submit(s->srv->workers, pop3_open_work, pop3_open_done, job);
}

/* Worker thread: the maildrop lock, then the listing. */
static void
pop3_open_work(void *arg)
{
	struct pop3_job *job = arg;

	if (maildir_lock(job->maildir, &job->lock) == -1) {
		job->lock_errno = errno;
		return;
	}
	if (maildir_scan(job->maildir, &job->msgs, &job->nmsgs) == -1) {
		job->scan_errno = errno;
		maildir_unlock(&job->lock);
	}
}

/* Loop thread: the outcome of pop3_open_work. */
static void
pop3_open_done(void *arg)
{
	struct pop3_job *job = arg;
	struct pop3_session *s = job->s;

	s->job = NULL;
	if (s->closing) {
		pop3_job_free(&job);
		pop3_schedule_free(s);
		return;
	}
	if (job->lock.dirfd == -1) {
		if (job->lock_errno == EWOULDBLOCK) {
			log_info("%s pop3 failed-login user=%s reason=in-use",
				 s->id, s->login_user);
			/* RFC 2449 §8.1.1 */
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
	s->lock = job->lock;
	job->lock.dirfd = job->lock.lockfd = -1;
	s->msgs = job->msgs;
	s->nmsgs = job->nmsgs;
	job->msgs = NULL;
	s->deleted = xcalloc(s->nmsgs ? s->nmsgs : 1, 1);
	pop3_job_free(&job);
	pop3_enter_state(s, POP3_STATE_TRANSACTION);
	log_info("%s pop3 login user=%s messages=%zu%s%s", s->id, s->login_user,
		 s->nmsgs, s->secure ? " tls=" : "",
		 s->secure ? s->tls_info : "");
	pop3_reply(s, "+OK Logged in.");
	pop3_process_input(s);
}

/* Drops every trace of a login in progress: USER, a SASL exchange. */
static void
pop3_forget_login(struct pop3_session *s)
{
	s->have_user = 0;
	s->sasl_step = POP3_SASL_NONE;
	explicit_bzero(s->user, sizeof(s->user));
	explicit_bzero(s->sasl_user, sizeof(s->sasl_user));
	s->login_user[0] = '\0';
}

static void
pop3_job_free(struct pop3_job **jobp)
{
	struct pop3_job *job = *jobp;

	if (job == NULL)
		return;
	maildir_unlock(&job->lock);
	maildir_scan_free(&job->msgs, job->nmsgs);
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
	char buf[POP3_READ_CHUNK], end[POP3_ENCODER_FINISH_MAX];

	while (s->stream != STREAM_NONE &&
	       evbuffer_get_length(out) < POP3_STREAM_HIWAT) {
		struct evbuffer_iovec vec;
		size_t used, o;
		ssize_t got;

		if (s->stream == STREAM_LIST || s->stream == STREAM_UIDL) {
			pop3_list_fill(s);
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
		if (got > 0) {
			if (evbuffer_reserve_space(out, 2 * got, &vec, 1) < 1)
				fatalx("pop3: evbuffer_reserve_space");
			o = pop3_encoder_feed(&s->enc, buf, (size_t)got,
					      vec.iov_base, vec.iov_len, &used);
			if (used != (size_t)got)
				fatalx("pop3: encoder left input");
			vec.iov_len = o;
			evbuffer_commit_space(out, &vec, 1);
			/* A short read of a regular file is its end: no
			 * extra read() to learn it. */
			if ((size_t)got == sizeof(buf))
				continue;
		}
		o = pop3_encoder_finish(&s->enc, end);
		evbuffer_add(out, end, o);
		pop3_stream_stop(s);
		break;
	}
	return 0;
}

/* Adds up to POP3_LIST_CHUNK octets of LIST or UIDL lines (RFC 1939 §5,
 * §7) to the output in one piece, and the final "." when done. */
static void
pop3_list_fill(struct pop3_session *s)
{
	char buf[POP3_LIST_CHUNK];
	size_t len = 0;
	int r;

	/* A line is at most 20 digits, SP and a 70-octet UIDL, CRLF. */
	while (s->list_pos < s->nmsgs && len + 128 <= sizeof(buf)) {
		size_t i = s->list_pos++;

		if (s->deleted[i])
			continue;
		if (s->stream == STREAM_LIST)
			r = snprintf(buf + len, sizeof(buf) - len,
				     "%zu %" PRIu64 "\r\n", i + 1,
				     s->msgs[i].size);
		else
			r = snprintf(buf + len, sizeof(buf) - len, "%zu %s\r\n",
				     i + 1, s->msgs[i].uidl);
		if (r < 0 || (size_t)r >= sizeof(buf) - len)
			fatalx("pop3: LIST line truncated");
		len += (size_t)r;
	}
	if (s->list_pos >= s->nmsgs) {
		memcpy(buf + len, ".\r\n", 3);
		len += 3;
		s->stream = STREAM_NONE;
	}
	evbuffer_add(bufferevent_get_output(s->bev), buf, len);
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
		if (maildir_remove(job->udirfd, job->umsgs[i].rel) == -1) {
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
		if (!pop3_flush_wait(s))
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
	if (what & BEV_EVENT_CONNECTED) {
		SSL *ssl = bufferevent_openssl_get_ssl(s->bev);

		if (ssl != NULL)
			tls_describe(ssl, s->tls_info, sizeof(s->tls_info));
		log_info("%s pop3 tls established %s", s->id, s->tls_info);
		s->tls_handshake = 0;
		if (s->closing)
			return;
		if (s->implicit_tls)
			pop3_greet(s);
		pop3_process_input(s);
		return;
	}
	if (s->closing) {
		/* Flushing the last reply failed or timed out. */
		bufferevent_disable(s->bev, EV_READ | EV_WRITE);
		pop3_schedule_free(s);
		return;
	}
	if (s->tls_handshake) {
		/* A failed handshake (TLS 1.1 or older, not TLS at all) or a
		 * client that never finishes it: nothing can be said. */
		pop3_tls_log_errors(s);
		pop3_session_close(
		    s, (what & BEV_EVENT_TIMEOUT) ? "timeout" : "tls-handshake",
		    0);
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
		/* Idle: the read timeout, or the TLS filter's write timeout
		 * with nothing left to write. */
		if ((what & BEV_EVENT_READING) ||
		    evbuffer_get_length(bufferevent_get_output(s->bev)) == 0) {
			pop3_reply(s, "-ERR Disconnected for inactivity");
			pop3_session_close(s, "timeout", 1);
		} else {
			pop3_session_close(s, "timeout", 0);
		}
		return;
	}
	pop3_tls_log_errors(s);
	pop3_session_close(s, "io-error", 0);
}

/* While closing after STLS: the socket bufferevent below the TLS filter
 * has sent the last encrypted octets, or failed to. */
static void
pop3_on_under_write(struct bufferevent *bev, void *arg)
{
	(void)bev;
	pop3_schedule_free(arg);
}

static void
pop3_on_under_event(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	bufferevent_disable(bev, EV_READ | EV_WRITE);
	pop3_schedule_free(arg);
}

/* For a closing session: returns 1 while output is still on its way to
 * the kernel, having arranged for a callback when it is, or 0 when all is
 * sent. Under STLS the TLS filter hands its encrypted octets to the
 * socket bufferevent below, and its own write callback says nothing about
 * when those have left; so for the last stretch the session listens to
 * that bufferevent itself (the filter has nothing more to do). */
static int
pop3_flush_wait(struct pop3_session *s)
{
	return tls_flush_wait(s->bev, &s->tls_closed, pop3_on_under_write,
			      pop3_on_under_event, s);
}

/* The one way out. Logs the disconnect line, stops input and either waits
 * for the output to drain (flush) or schedules the free at once. Safe to
 * call from any callback: the session is freed later, from ev_free, and
 * not before a job on a worker has come back. A credential check in
 * progress is cancelled (auth.c frees it). */
static void
pop3_session_close(struct pop3_session *s, const char *reason, int flush)
{
	if (s->closing)
		return;
	s->closing = 1;
	log_info("%s pop3 disconnected reason=%s retrieved=%u deleted=%u",
		 s->id, reason, s->retrieved, s->removed);
	pop3_stream_stop(s);
	auth_cancel(&s->auth);
	pop3_forget_login(s);
	pop3_update_reading(s);
	if (flush && pop3_flush_wait(s))
		return;
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
	maildir_unlock(&s->lock);
	maildir_scan_free(&s->msgs, s->nmsgs);
	free(s->deleted);
	auth_cancel(&s->auth);
	event_free(s->ev_free);
	explicit_bzero(s, sizeof(*s));
	free(s);
	server_session_closed(srv, &peer);
}
