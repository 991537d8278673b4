/* SMTP server sessions: greeting (with pregreet detection), reading command
 * lines within limits, one dispatch table that gates every command by
 * state, replies, timeouts and the session's one way out. The transaction
 * itself (MAIL/RCPT/DATA/BDAT content) is in smtp_tx.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "abuse.h"
#include "auth.h"
#include "log.h"
#include "sasl.h"
#include "smtp_parse.h"
#include "smtp_session.h"
#include "smtp_tx.h"
#include "store.h"
#include "tls.h"
#include "util.h"

/* States, as bits so that a table row can allow several. */
#define SMTP_STATE_CONNECTED 0x01 /* before EHLO/HELO */
#define SMTP_STATE_GREETED 0x02	  /* EHLO/HELO seen, no transaction */
#define SMTP_STATE_MAIL 0x04	  /* MAIL accepted, no recipient yet */
#define SMTP_STATE_RCPT 0x08	  /* at least one recipient */
#define SMTP_STATE_BDAT 0x10	  /* BDAT chunks under way */
#define SMTP_STATE_ANY 0x1f

/* How input bytes are read. */
enum smtp_input {
	SMTP_INPUT_COMMAND,
	SMTP_INPUT_SKIP_LINE,	 /* rest of an over-long command line */
	SMTP_INPUT_DATA,	 /* DATA body up to CRLF.CRLF */
	SMTP_INPUT_BDAT,	 /* a BDAT chunk of known size */
	SMTP_INPUT_BDAT_DISCARD, /* a refused BDAT chunk, then a reply */
	SMTP_INPUT_AUTH,	 /* a SASL response line (RFC 4954 §4) */
};

#define SMTP_AUTH_LINE_MAX 12288 /* RFC 4954 §4 */
#define SMTP_AUTH_PLAIN 1
#define SMTP_AUTH_LOGIN 2

/* Handler results (CONVENTIONS.md §3). */
enum smtp_cmd_result {
	CMD_DONE,
	CMD_PENDING, /* an asynchronous step runs; stop reading */
	CMD_CLOSE,   /* close once the reply is sent */
	CMD_BAD,     /* the reply was an error: counts as a bad command */
};

#define SMTP_OUTPUT_HIWAT (256 * 1024)
#define SMTP_INPUT_HIWAT (256 * 1024)

struct smtp_session {
	struct server *srv;
	struct bufferevent *bev;
	struct peer peer;
	char id[17];
	unsigned state;
	enum smtp_input input;
	char helo[256];
	int esmtp;
	struct smtp_tx *tx;

	uint64_t bdat_left; /* octets of the current chunk */
	uint64_t bdat_size;
	int bdat_last;
	char bdat_reply[SMTP_REPLY_MAX]; /* for a discarded chunk */

	unsigned bad_commands;
	unsigned unknown_rcpts;
	unsigned messages;
	int greeted; /* the 220 has been sent */
	int closing; /* no more input; free when flushed */
	int free_scheduled;
	int tls_notify_sent; /* close_notify sent */
	int output_blocked;  /* reading paused for output */
	struct event *ev_greet;

	enum smtp_listener_kind kind;
	int tls;			   /* the connection is encrypted */
	char tls_info[128];		   /* "TLSv1.3:TLS_AES_..." */
	char auth_user[STORE_ADDRESS_MAX]; /* empty until AUTH succeeds */
	struct auth_request *auth;	   /* credential check in flight */
	int auth_mech;			   /* SASL exchange under way */
	char auth_login_user[SASL_FIELD_MAX];
};

struct smtp_command {
	const char *verb;
	unsigned states;
	const char *wrong_state; /* reply when not in states */
	enum smtp_cmd_result (*handler)(struct smtp_session *s,
					const char *args);
};

static enum smtp_cmd_result smtp_cmd_ehlo(struct smtp_session *s,
					  const char *args);
static enum smtp_cmd_result smtp_cmd_helo(struct smtp_session *s,
					  const char *args);
static enum smtp_cmd_result smtp_cmd_mail(struct smtp_session *s,
					  const char *args);
static enum smtp_cmd_result smtp_cmd_rcpt(struct smtp_session *s,
					  const char *args);
static enum smtp_cmd_result smtp_cmd_data(struct smtp_session *s,
					  const char *args);
static enum smtp_cmd_result smtp_cmd_bdat(struct smtp_session *s,
					  const char *args);
static enum smtp_cmd_result smtp_cmd_rset(struct smtp_session *s,
					  const char *args);
static enum smtp_cmd_result smtp_cmd_noop(struct smtp_session *s,
					  const char *args);
static enum smtp_cmd_result smtp_cmd_quit(struct smtp_session *s,
					  const char *args);
static enum smtp_cmd_result smtp_cmd_vrfy(struct smtp_session *s,
					  const char *args);
static enum smtp_cmd_result smtp_cmd_help(struct smtp_session *s,
					  const char *args);
static enum smtp_cmd_result smtp_cmd_starttls(struct smtp_session *s,
					      const char *args);
static enum smtp_cmd_result smtp_cmd_auth(struct smtp_session *s,
					  const char *args);

/* The only place that knows the commands. RFC 5321 §4.1.4 for the order
 * rules; BDAT per RFC 3030 §2. */
static const struct smtp_command smtp_commands[] = {
    {"EHLO", SMTP_STATE_ANY, NULL, smtp_cmd_ehlo},
    {"HELO", SMTP_STATE_ANY, NULL, smtp_cmd_helo},
    {"MAIL", SMTP_STATE_GREETED,
     "503 5.5.1 Error: send HELO/EHLO first or finish the transaction",
     smtp_cmd_mail},
    {"RCPT", SMTP_STATE_MAIL | SMTP_STATE_RCPT,
     "503 5.5.1 Error: need MAIL command", smtp_cmd_rcpt},
    {"DATA", SMTP_STATE_MAIL | SMTP_STATE_RCPT,
     "503 5.5.1 Error: need RCPT command", smtp_cmd_data},
    {"BDAT", SMTP_STATE_ANY, NULL, smtp_cmd_bdat},
    {"RSET", SMTP_STATE_ANY, NULL, smtp_cmd_rset},
    {"NOOP", SMTP_STATE_ANY, NULL, smtp_cmd_noop},
    {"QUIT", SMTP_STATE_ANY, NULL, smtp_cmd_quit},
    {"VRFY", SMTP_STATE_ANY, NULL, smtp_cmd_vrfy},
    {"HELP", SMTP_STATE_ANY, NULL, smtp_cmd_help},
    /* RFC 3207 §4: STARTTLS only outside a transaction. */
    {"STARTTLS", SMTP_STATE_CONNECTED | SMTP_STATE_GREETED,
     "503 5.5.1 Error: STARTTLS not allowed during a transaction",
     smtp_cmd_starttls},
    /* RFC 4954 §4: AUTH after EHLO, never during a transaction. */
    {"AUTH", SMTP_STATE_GREETED,
     "503 5.5.1 Error: send EHLO first, and not during a transaction",
     smtp_cmd_auth},
};

static void smtp_reply(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void smtp_enter_state(struct smtp_session *s, unsigned state);
static void smtp_session_close(struct smtp_session *s, const char *reason);
static void smtp_session_schedule_free(struct smtp_session *s);
static int smtp_session_flush_wait(struct smtp_session *s);
static void smtp_session_on_under_write(struct bufferevent *bev, void *arg);
static void smtp_session_on_under_event(struct bufferevent *bev, short what,
					void *arg);
static void smtp_session_free_cb(evutil_socket_t fd, short what, void *arg);
static void smtp_session_greet(struct smtp_session *s);
static void smtp_session_on_greet_timer(evutil_socket_t fd, short what,
					void *arg);
static void smtp_session_on_read(struct bufferevent *bev, void *arg);
static void smtp_session_on_write(struct bufferevent *bev, void *arg);
static void smtp_session_on_event(struct bufferevent *bev, short what,
				  void *arg);
static void smtp_session_process(struct smtp_session *s);
static int smtp_session_read_command(struct smtp_session *s);
static void smtp_session_dispatch(struct smtp_session *s, const char *line,
				  size_t len);
static void smtp_session_bad_command(struct smtp_session *s);
static int smtp_session_read_body(struct smtp_session *s);
static void smtp_session_data_done(struct smtp_session *s);
static void smtp_session_bdat_chunk_done(struct smtp_session *s);
static void smtp_session_on_delivered(void *arg, const char *reply);
static void smtp_session_end_tx(struct smtp_session *s);
static void smtp_session_set_timeout(struct smtp_session *s, uint64_t secs);
static struct bufferevent *smtp_session_tls_bev(struct smtp_session *s,
						evutil_socket_t fd,
						struct bufferevent *under);
static void smtp_session_setup_bev(struct smtp_session *s);
static int smtp_session_auth_offered(const struct smtp_session *s);
static int smtp_session_auth_allowed(const struct smtp_session *s);
static void smtp_session_auth_line(struct smtp_session *s, const char *line,
				   size_t len);
static void smtp_session_auth_start(struct smtp_session *s, const char *user,
				    char *password);
static void smtp_session_on_auth(void *arg, enum auth_result result,
				 const char *user);

/* A scratch buffer for one command line, shared by all sessions: only the
 * loop thread reads commands. */
static char *smtp_line_buf;
static size_t smtp_line_cap;

static void
smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	char line[SMTP_REPLY_MAX + 64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		fatalx("smtp reply too long");
	if (line[0] == '4' || line[0] == '5')
		log_info("%s smtp failed-command result=\"%s\"", s->id, line);
	evbuffer_add(out, line, (size_t)n);
	evbuffer_add(out, "\r\n", 2);
}

static void
smtp_enter_state(struct smtp_session *s, unsigned state)
{
	if (s->state != state)
		log_debug("%s smtp state %#x -> %#x", s->id, s->state, state);
	s->state = state;
}

static void
smtp_session_set_timeout(struct smtp_session *s, uint64_t secs)
{
	struct timeval tv = {(time_t)secs, 0};

	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

/* Wraps a socket (fd, implicit TLS) or an existing bufferevent (under,
 * STARTTLS) in a server-side TLS bufferevent. Returns NULL when TLS is not
 * configured or OpenSSL fails. */
static struct bufferevent *
smtp_session_tls_bev(struct smtp_session *s, evutil_socket_t fd,
		     struct bufferevent *under)
{
	struct bufferevent *bev = tls_server_bev(s->srv->base, fd, under);

	if (bev != NULL)
		s->tls = 1;
	return bev;
}

static void
smtp_session_setup_bev(struct smtp_session *s)
{
	bufferevent_setcb(s->bev, smtp_session_on_read, smtp_session_on_write,
			  smtp_session_on_event, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SMTP_INPUT_HIWAT);
	smtp_session_set_timeout(s, s->srv->cfg->smtp_idle_timeout);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

void
smtp_session_start(struct server *srv, evutil_socket_t fd,
		   const struct peer *peer, enum smtp_listener_kind kind)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));

	s->srv = srv;
	s->peer = *peer;
	s->kind = kind;
	util_random_hex(s->id, 8);
	s->state = SMTP_STATE_CONNECTED;
	s->input = SMTP_INPUT_COMMAND;
	if (kind == SMTP_LISTENER_SUBMISSIONS) {
		/* RFC 8314 §3: the TLS handshake comes first. */
		s->bev = smtp_session_tls_bev(s, fd, NULL);
	} else {
		s->bev = bufferevent_socket_new(srv->base, fd,
						BEV_OPT_CLOSE_ON_FREE);
	}
	if (s->bev == NULL) {
		log_warnx("%s smtp cannot set up the connection", s->id);
		evutil_closesocket(fd);
		server_session_closed(srv, peer);
		free(s);
		return;
	}
	smtp_session_setup_bev(s);
	log_info("%s smtp connected addr=%s port=%s%s", s->id, peer->addr,
		 peer->port, s->tls ? " tls=implicit" : "");

	if (srv->cfg->smtp_pregreet_wait_ms > 0 && !s->tls) {
		/* Wait before the greeting: a client that talks first is a
		 * bot that does not follow RFC 5321 §3.1. */
		struct timeval tv = {
		    (time_t)(srv->cfg->smtp_pregreet_wait_ms / 1000),
		    (suseconds_t)(srv->cfg->smtp_pregreet_wait_ms % 1000) *
			1000};
		s->ev_greet =
		    evtimer_new(srv->base, smtp_session_on_greet_timer, s);
		evtimer_add(s->ev_greet, &tv);
	} else {
		smtp_session_greet(s);
	}
}

static void
smtp_session_greet(struct smtp_session *s)
{
	s->greeted = 1;
	smtp_reply(s, "220 %s ESMTP Postern", s->srv->cfg->hostname);
}

static void
smtp_session_on_greet_timer(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	if (s->closing)
		return;
	smtp_session_greet(s);
}

static void
smtp_session_on_read(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	if (s->closing)
		return;
	if (!s->greeted) {
		abuse_report(s->srv, &s->peer, ABUSE_PREGREET, NULL);
		log_info("%s smtp pregreet addr=%s", s->id, s->peer.addr);
		if (s->srv->cfg->smtp_pregreet_reject) {
			smtp_reply(s, "554 5.5.1 Protocol error: client "
				      "talked before the greeting");
			smtp_session_close(s, "pregreet");
			return;
		}
		evtimer_del(s->ev_greet);
		smtp_session_greet(s);
	}
	smtp_session_process(s);
}

static void
smtp_session_on_write(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	if (s->closing) {
		if (!smtp_session_flush_wait(s))
			smtp_session_schedule_free(s);
		return;
	}
	if (s->output_blocked) {
		s->output_blocked = 0;
		bufferevent_enable(s->bev, EV_READ);
		smtp_session_process(s);
	}
}

static void
smtp_session_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		SSL *ssl = bufferevent_openssl_get_ssl(s->bev);

		if (ssl)
			tls_describe(ssl, s->tls_info, sizeof(s->tls_info));
		log_info("%s smtp tls established %s", s->id, s->tls_info);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if ((what & BEV_EVENT_READING) && !s->closing) {
			/* RFC 5321 §4.5.3.2: the server may close after its
			 * timeouts, with a 421 (§3.8); the reply is flushed
			 * under the write timeout. */
			smtp_reply(s, "421 4.4.2 %s Error: timeout exceeded",
				   s->srv->cfg->hostname);
			smtp_session_close(s, "timeout");
			return;
		}
		/* The client does not read what we write: give up at once. */
		smtp_session_close(s, "timeout");
		bufferevent_disable(s->bev, EV_WRITE);
		smtp_session_schedule_free(s);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		unsigned long e;
		const char *reason = (what & BEV_EVENT_EOF) ? "eof" : "error";

		while ((e = bufferevent_get_openssl_error(s->bev)) != 0) {
			char buf[256];

			ERR_error_string_n(e, buf, sizeof(buf));
			log_info("%s smtp tls error=\"%s\"", s->id, buf);
			reason = "tls-error";
		}
		smtp_session_close(s, reason);
		smtp_session_schedule_free(s);
	}
}

/* The one exit of a session: logs the disconnect line once, stops
 * reading, and frees the session after the last reply has been sent (or
 * after a pending delivery has finished). */
static void
smtp_session_close(struct smtp_session *s, const char *reason)
{
	if (s->closing)
		return;
	s->closing = 1;
	log_info("%s smtp disconnected reason=%s messages=%u", s->id, reason,
		 s->messages);
	bufferevent_disable(s->bev, EV_READ);
	if (!smtp_session_flush_wait(s))
		smtp_session_schedule_free(s);
}

/* Returns 1 while the last replies are still on their way (a callback
 * then frees the session), 0 when everything has been sent. */
static int
smtp_session_flush_wait(struct smtp_session *s)
{
	return tls_flush_wait(s->bev, &s->tls_notify_sent,
			      smtp_session_on_under_write,
			      smtp_session_on_under_event, s);
}

/* After STARTTLS, the socket bufferevent below the TLS filter has sent the
 * last encrypted octets of a closing session, or failed to. */
static void
smtp_session_on_under_write(struct bufferevent *bev, void *arg)
{
	(void)bev;
	smtp_session_schedule_free(arg);
}

static void
smtp_session_on_under_event(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	bufferevent_disable(bev, EV_READ | EV_WRITE);
	smtp_session_schedule_free(arg);
}

static void
smtp_session_schedule_free(struct smtp_session *s)
{
	static const struct timeval now = {0, 0};

	if (s->free_scheduled || (s->tx && smtp_tx_is_pending(s->tx)))
		return;
	s->free_scheduled = 1;
	/* Never free inside our own callback chain: do it from the loop. */
	if (event_base_once(s->srv->base, -1, EV_TIMEOUT, smtp_session_free_cb,
			    s, &now) == -1)
		fatalx("event_base_once failed");
}

static void
smtp_session_free_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	smtp_tx_free(&s->tx);
	auth_cancel(&s->auth);
	if (s->ev_greet)
		event_free(s->ev_greet);
	bufferevent_free(s->bev);
	server_session_closed(s->srv, &s->peer);
	free(s);
}

/* Reads and handles as much buffered input as possible, in order, until
 * input runs out, an asynchronous step is pending or output is too full.
 * Pipelined commands (RFC 2920) are answered in order this way. */
static void
smtp_session_process(struct smtp_session *s)
{
	int more = 1;

	while (more && !s->closing && s->auth == NULL &&
	       !(s->tx && smtp_tx_is_pending(s->tx))) {
		struct evbuffer *out = bufferevent_get_output(s->bev);

		if (evbuffer_get_length(out) > SMTP_OUTPUT_HIWAT) {
			s->output_blocked = 1;
			bufferevent_disable(s->bev, EV_READ);
			break;
		}
		switch (s->input) {
		case SMTP_INPUT_COMMAND:
		case SMTP_INPUT_SKIP_LINE:
		case SMTP_INPUT_AUTH:
			more = smtp_session_read_command(s);
			break;
		case SMTP_INPUT_DATA:
		case SMTP_INPUT_BDAT:
		case SMTP_INPUT_BDAT_DISCARD:
			more = smtp_session_read_body(s);
			break;
		}
	}
}

/* Reads one command line and dispatches it. Returns 1 when it made
 * progress, 0 when more input is needed. */
static int
smtp_session_read_command(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t max = s->input == SMTP_INPUT_AUTH
			 ? SMTP_AUTH_LINE_MAX
			 : s->srv->cfg->smtp_max_command_line;
	size_t eol_len = 0, avail = evbuffer_get_length(in), len;
	struct evbuffer_ptr eol;

	if (avail == 0)
		return 0;
	/* Commands may end in CRLF or a bare LF (as Postfix accepts); only
	 * the DATA body insists on CRLF. */
	eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
	if (s->input == SMTP_INPUT_SKIP_LINE) {
		if (eol.pos == -1) {
			evbuffer_drain(in, avail);
			return 0;
		}
		evbuffer_drain(in, (size_t)eol.pos + eol_len);
		s->input = SMTP_INPUT_COMMAND;
		return 1;
	}
	if (eol.pos == -1) {
		if (avail < max)
			return 0;
		/* RFC 5321 §4.5.3.1.4: 512 octets including CRLF. */
		evbuffer_drain(in, avail);
		s->input = SMTP_INPUT_SKIP_LINE;
		s->auth_mech = 0;
		smtp_reply(s, "500 5.5.2 Error: line too long");
		smtp_session_bad_command(s);
		return 1;
	}
	len = (size_t)eol.pos;
	if (len + 2 > max) {
		evbuffer_drain(in, len + eol_len);
		if (s->input == SMTP_INPUT_AUTH) {
			s->input = SMTP_INPUT_COMMAND;
			s->auth_mech = 0;
		}
		smtp_reply(s, "500 5.5.2 Error: line too long");
		smtp_session_bad_command(s);
		return 1;
	}
	if (smtp_line_cap < len + 1) {
		smtp_line_cap = len + 1 > 1024 ? len + 1 : 1024;
		smtp_line_buf = xrealloc(smtp_line_buf, smtp_line_cap);
	}
	evbuffer_remove(in, smtp_line_buf, len);
	evbuffer_drain(in, eol_len);
	smtp_line_buf[len] = '\0';
	if (s->input == SMTP_INPUT_AUTH)
		smtp_session_auth_line(s, smtp_line_buf, len);
	else
		smtp_session_dispatch(s, smtp_line_buf, len);
	/* SASL secrets do not linger in the shared buffer. */
	explicit_bzero(smtp_line_buf, len);
	return 1;
}

static void
smtp_session_bad_command(struct smtp_session *s)
{
	s->bad_commands++;
	if (s->bad_commands > s->srv->cfg->smtp_max_bad_commands &&
	    !s->closing) {
		abuse_report(s->srv, &s->peer, ABUSE_BAD_COMMANDS, NULL);
		smtp_reply(s, "421 4.7.0 %s Error: too many errors",
			   s->srv->cfg->hostname);
		smtp_session_close(s, "too-many-errors");
	}
}

/* Parses the line, finds its table row, checks the state and calls the
 * handler (CONVENTIONS.md §3). */
static void
smtp_session_dispatch(struct smtp_session *s, const char *line, size_t len)
{
	char verb[SMTP_VERB_MAX + 1];
	const char *args = NULL, *error = NULL;
	const struct smtp_command *cmd = NULL;
	enum smtp_cmd_result r;
	size_t i;

	if (smtp_parse_command(line, len, verb, &args, &error) != PARSE_OK) {
		smtp_reply(s, "500 5.5.2 Error: bad syntax");
		smtp_session_bad_command(s);
		return;
	}
	for (i = 0; i < sizeof(smtp_commands) / sizeof(smtp_commands[0]); i++)
		if (strcmp(smtp_commands[i].verb, verb) == 0) {
			cmd = &smtp_commands[i];
			break;
		}
	if (cmd == NULL) {
		smtp_reply(s, "500 5.5.1 Error: command not recognized");
		smtp_session_bad_command(s);
		return;
	}
	if (!(cmd->states & s->state)) {
		smtp_reply(s, "%s", cmd->wrong_state);
		smtp_session_bad_command(s);
		return;
	}
	log_debug("%s smtp command verb=%s", s->id, verb);
	r = cmd->handler(s, args);
	switch (r) {
	case CMD_DONE:
	case CMD_PENDING:
		break;
	case CMD_BAD:
		smtp_session_bad_command(s);
		break;
	case CMD_CLOSE:
		smtp_session_close(s, "quit");
		break;
	}
}

/* Frees the transaction and returns to the greeted state. */
static void
smtp_session_end_tx(struct smtp_session *s)
{
	smtp_tx_free(&s->tx);
	smtp_enter_state(s, s->helo[0] ? SMTP_STATE_GREETED
				       : SMTP_STATE_CONNECTED);
	s->input = SMTP_INPUT_COMMAND;
	smtp_session_set_timeout(s, s->srv->cfg->smtp_idle_timeout);
}

static enum smtp_cmd_result
smtp_session_hello(struct smtp_session *s, const char *args, int esmtp)
{
	const struct config *cfg = s->srv->cfg;

	if (args[0] == '\0' || strchr(args, ' ') != NULL) {
		smtp_reply(s, "501 5.5.4 Syntax: %s hostname",
			   esmtp ? "EHLO" : "HELO");
		return CMD_BAD;
	}
	/* A new EHLO resets any transaction (RFC 5321 §4.1.4). */
	smtp_session_end_tx(s);
	strlcpy(s->helo, args, sizeof(s->helo));
	s->esmtp = esmtp;
	smtp_enter_state(s, SMTP_STATE_GREETED);
	if (!esmtp) {
		smtp_reply(s, "250 %s", cfg->hostname);
		return CMD_DONE;
	}
	smtp_reply(s, "250-%s", cfg->hostname);
	smtp_reply(s, "250-PIPELINING");
	smtp_reply(s, "250-SIZE %llu",
		   (unsigned long long)cfg->smtp_max_message_size);
	smtp_reply(s, "250-8BITMIME");
	smtp_reply(s, "250-ENHANCEDSTATUSCODES");
	smtp_reply(s, "250-DSN");
	smtp_reply(s, "250-SMTPUTF8");
	if (!s->tls && tls_server_ctx() != NULL)
		smtp_reply(s, "250-STARTTLS");
	/* AUTH is advertised only where it may be used (RFC 4954 §4), so
	 * that clients never send a password in clear. */
	if (smtp_session_auth_offered(s) && smtp_session_auth_allowed(s))
		smtp_reply(s, "250-AUTH PLAIN LOGIN");
	smtp_reply(s, "250 CHUNKING");
	return CMD_DONE;
}

static enum smtp_cmd_result
smtp_cmd_ehlo(struct smtp_session *s, const char *args)
{
	return smtp_session_hello(s, args, 1);
}

static enum smtp_cmd_result
smtp_cmd_helo(struct smtp_session *s, const char *args)
{
	return smtp_session_hello(s, args, 0);
}

static enum smtp_cmd_result
smtp_cmd_mail(struct smtp_session *s, const char *args)
{
	struct smtp_tx_client client = {s->id,
					s->helo,
					s->esmtp,
					&s->peer,
					s->tls_info,
					s->auth_user,
					s->kind != SMTP_LISTENER_MX};
	enum smtp_tx_verdict v;
	char reply[SMTP_REPLY_MAX];

	/* RFC 6409 §4.3 and RFC 4954 §6: submission needs AUTH first. */
	if (s->kind != SMTP_LISTENER_MX && s->auth_user[0] == '\0') {
		smtp_reply(s, "530 5.7.0 Authentication required");
		return CMD_DONE;
	}
	s->tx = smtp_tx_new(s->srv, &client, args, &v, reply, sizeof(reply));
	smtp_reply(s, "%s", reply);
	if (s->tx == NULL)
		return v == SMTP_TX_SYNTAX ? CMD_BAD : CMD_DONE;
	smtp_enter_state(s, SMTP_STATE_MAIL);
	return CMD_DONE;
}

static enum smtp_cmd_result
smtp_cmd_rcpt(struct smtp_session *s, const char *args)
{
	char reply[SMTP_REPLY_MAX];
	enum smtp_tx_verdict v;

	v = smtp_tx_rcpt(s->tx, args, reply, sizeof(reply));
	smtp_reply(s, "%s", reply);
	switch (v) {
	case SMTP_TX_OK:
		smtp_enter_state(s, SMTP_STATE_RCPT);
		return CMD_DONE;
	case SMTP_TX_UNKNOWN_USER:
		s->unknown_rcpts++;
		abuse_report(s->srv, &s->peer, ABUSE_UNKNOWN_RECIPIENT, NULL);
		if (s->unknown_rcpts >
		    s->srv->cfg->smtp_max_unknown_recipients) {
			smtp_reply(s,
				   "421 4.7.0 %s Error: too many unknown "
				   "recipients",
				   s->srv->cfg->hostname);
			smtp_session_close(s, "too-many-unknown-recipients");
		}
		return CMD_DONE;
	case SMTP_TX_SYNTAX:
		return CMD_BAD;
	case SMTP_TX_REJECT:
		break;
	}
	return CMD_DONE;
}

static enum smtp_cmd_result
smtp_cmd_data(struct smtp_session *s, const char *args)
{
	char reply[SMTP_REPLY_MAX];

	if (args[0] != '\0') {
		smtp_reply(s, "501 5.5.4 Syntax: DATA");
		return CMD_BAD;
	}
	if (smtp_tx_rcpt_count(s->tx) == 0) {
		smtp_reply(s, "554 5.5.1 Error: no valid recipients");
		return CMD_DONE;
	}
	if (smtp_tx_data_begin(s->tx, SMTP_TX_DATA, reply, sizeof(reply))) {
		smtp_reply(s, "%s", reply);
		smtp_session_end_tx(s);
		return CMD_DONE;
	}
	s->input = SMTP_INPUT_DATA;
	smtp_session_set_timeout(s, s->srv->cfg->smtp_data_timeout);
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	return CMD_DONE;
}

static enum smtp_cmd_result
smtp_cmd_bdat(struct smtp_session *s, const char *args)
{
	const char *error = NULL;
	char reply[SMTP_REPLY_MAX];
	uint64_t size;
	int last;

	if (smtp_parse_bdat(args, &size, &last, &error) != PARSE_OK) {
		/* Without a size the chunk cannot be skipped: what follows
		 * will be read as commands and fail on its own. */
		smtp_reply(s, "501 5.5.4 Syntax: BDAT size [LAST]");
		return CMD_BAD;
	}
	s->bdat_left = size;
	s->bdat_size = size;
	s->bdat_last = last;
	smtp_session_set_timeout(s, s->srv->cfg->smtp_data_timeout);
	/* A refused BDAT still has its chunk read and dropped (RFC 3030 §2)
	 * before the reply, so that the octets are never taken for commands. */
	if (!(s->state & (SMTP_STATE_MAIL | SMTP_STATE_RCPT | SMTP_STATE_BDAT)))
		strlcpy(s->bdat_reply, "503 5.5.1 Error: need MAIL command",
			sizeof(s->bdat_reply));
	else if (smtp_tx_rcpt_count(s->tx) == 0)
		strlcpy(s->bdat_reply, "554 5.5.1 Error: no valid recipients",
			sizeof(s->bdat_reply));
	else
		s->bdat_reply[0] = '\0';
	if (s->bdat_reply[0]) {
		s->input = SMTP_INPUT_BDAT_DISCARD;
		return CMD_DONE;
	}
	if (!(s->state & SMTP_STATE_BDAT)) {
		if (smtp_tx_data_begin(s->tx, SMTP_TX_BDAT, reply,
				       sizeof(reply))) {
			strlcpy(s->bdat_reply, reply, sizeof(s->bdat_reply));
			smtp_session_end_tx(s);
			s->input = SMTP_INPUT_BDAT_DISCARD;
			return CMD_DONE;
		}
		smtp_enter_state(s, SMTP_STATE_BDAT);
	}
	s->input = SMTP_INPUT_BDAT;
	return CMD_DONE;
}

static enum smtp_cmd_result
smtp_cmd_rset(struct smtp_session *s, const char *args)
{
	(void)args;
	smtp_session_end_tx(s);
	smtp_reply(s, "250 2.0.0 Ok");
	return CMD_DONE;
}

static enum smtp_cmd_result
smtp_cmd_noop(struct smtp_session *s, const char *args)
{
	(void)args;
	smtp_reply(s, "250 2.0.0 Ok");
	return CMD_DONE;
}

static enum smtp_cmd_result
smtp_cmd_quit(struct smtp_session *s, const char *args)
{
	(void)args;
	smtp_reply(s, "221 2.0.0 Bye");
	return CMD_CLOSE;
}

static enum smtp_cmd_result
smtp_cmd_vrfy(struct smtp_session *s, const char *args)
{
	if (args[0] == '\0') {
		smtp_reply(s, "501 5.5.4 Syntax: VRFY address");
		return CMD_BAD;
	}
	/* RFC 5321 §3.5.3: 252 when we will not verify (no harvesting). */
	smtp_reply(s, "252 2.5.2 Cannot VRFY user, but will accept message "
		      "and attempt delivery");
	return CMD_DONE;
}

static enum smtp_cmd_result
smtp_cmd_help(struct smtp_session *s, const char *args)
{
	(void)args;
	smtp_reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT "
		      "RSET NOOP QUIT VRFY HELP STARTTLS AUTH");
	return CMD_DONE;
}

static enum smtp_cmd_result
smtp_cmd_starttls(struct smtp_session *s, const char *args)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct bufferevent *tls;
	size_t pending;

	if (args[0] != '\0') {
		smtp_reply(s, "501 5.5.4 Syntax: STARTTLS");
		return CMD_BAD;
	}
	if (s->tls) {
		smtp_reply(s, "503 5.5.1 Error: TLS already active");
		return CMD_BAD;
	}
	if (tls_server_ctx() == NULL) {
		smtp_reply(s, "454 4.7.0 TLS not available");
		return CMD_DONE;
	}
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	/* Anything the client sent after STARTTLS in clear could be read
	 * as if it came over TLS (CVE-2011-0411): drop it. */
	pending = evbuffer_get_length(in);
	if (pending > 0) {
		log_info("%s smtp starttls-discarded octets=%zu", s->id,
			 pending);
		evbuffer_drain(in, pending);
	}
	tls = smtp_session_tls_bev(s, -1, s->bev);
	if (tls == NULL) {
		log_warnx("%s smtp starttls setup failed", s->id);
		smtp_session_close(s, "tls-setup");
		return CMD_DONE;
	}
	s->bev = tls;
	smtp_session_setup_bev(s);
	/* RFC 3207 §4.2: forget everything learnt before TLS. */
	smtp_session_end_tx(s);
	s->helo[0] = '\0';
	s->auth_user[0] = '\0';
	smtp_enter_state(s, SMTP_STATE_CONNECTED);
	return CMD_DONE;
}

static int
smtp_session_auth_offered(const struct smtp_session *s)
{
	return s->kind != SMTP_LISTENER_MX || s->srv->cfg->smtp_auth_on_mx;
}

/* Passwords only over TLS, except on loopback when the configuration
 * says so explicitly (local webmail, tests). */
static int
smtp_session_auth_allowed(const struct smtp_session *s)
{
	if (s->tls)
		return 1;
	return s->srv->cfg->auth_plaintext_loopback &&
	       (strncmp(s->peer.addr, "127.", 4) == 0 ||
		strcmp(s->peer.addr, "::1") == 0);
}

static enum smtp_cmd_result
smtp_cmd_auth(struct smtp_session *s, const char *args)
{
	char mech[16], user[SASL_FIELD_MAX], password[SASL_PASSWORD_MAX];
	const char *initial, *error = NULL;
	size_t mlen;

	if (!smtp_session_auth_offered(s)) {
		smtp_reply(s, "503 5.5.1 Error: authentication not enabled");
		return CMD_BAD;
	}
	if (s->auth_user[0]) {
		smtp_reply(s, "503 5.5.1 Error: already authenticated");
		return CMD_BAD;
	}
	if (!smtp_session_auth_allowed(s)) {
		/* RFC 3207 §4 */
		smtp_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
		return CMD_DONE;
	}
	mlen = strcspn(args, " ");
	if (mlen == 0 || mlen >= sizeof(mech)) {
		smtp_reply(s, "501 5.5.4 Syntax: AUTH mechanism");
		return CMD_BAD;
	}
	memcpy(mech, args, mlen);
	mech[mlen] = '\0';
	initial = args[mlen] == ' ' ? args + mlen + 1 : NULL;
	if (util_strcaseeq(mech, "PLAIN")) {
		if (initial == NULL) {
			s->auth_mech = SMTP_AUTH_PLAIN;
			s->input = SMTP_INPUT_AUTH;
			smtp_reply(s, "334 ");
			return CMD_DONE;
		}
		/* RFC 4954 §4: "=" is an empty initial response. */
		if (strcmp(initial, "=") == 0 ||
		    sasl_plain_decode(initial, strlen(initial), user,
				      sizeof(user), password, sizeof(password),
				      &error) == -1) {
			smtp_reply(s, "501 5.5.2 Cannot decode response");
			return CMD_BAD;
		}
		smtp_session_auth_start(s, user, password);
		return CMD_PENDING;
	}
	if (util_strcaseeq(mech, "LOGIN")) {
		s->auth_mech = SMTP_AUTH_LOGIN;
		s->input = SMTP_INPUT_AUTH;
		s->auth_login_user[0] = '\0';
		if (initial != NULL) {
			if (sasl_login_decode(
				initial, strlen(initial), s->auth_login_user,
				sizeof(s->auth_login_user)) == -1) {
				s->auth_mech = 0;
				s->input = SMTP_INPUT_COMMAND;
				smtp_reply(s, "501 5.5.2 Cannot decode "
					      "response");
				return CMD_BAD;
			}
			smtp_reply(s, "334 UGFzc3dvcmQ6"); /* "Password:" */
			return CMD_DONE;
		}
		smtp_reply(s, "334 VXNlcm5hbWU6"); /* "Username:" */
		return CMD_DONE;
	}
	smtp_reply(s, "504 5.5.4 Unrecognized authentication type");
	return CMD_BAD;
}

/* One client line during a SASL exchange. */
static void
smtp_session_auth_line(struct smtp_session *s, const char *line, size_t len)
{
	char user[SASL_FIELD_MAX], password[SASL_PASSWORD_MAX];
	const char *error = NULL;
	int mech = s->auth_mech;

	s->input = SMTP_INPUT_COMMAND;
	s->auth_mech = 0;
	if (len == 1 && line[0] == '*') {
		/* RFC 4954 §4: the client cancels. */
		smtp_reply(s, "501 5.7.0 Authentication aborted");
		return;
	}
	if (mech == SMTP_AUTH_PLAIN) {
		if (sasl_plain_decode(line, len, user, sizeof(user), password,
				      sizeof(password), &error) == -1) {
			smtp_reply(s, "501 5.5.2 Cannot decode response");
			smtp_session_bad_command(s);
			return;
		}
		smtp_session_auth_start(s, user, password);
		return;
	}
	if (s->auth_login_user[0] == '\0') {
		if (sasl_login_decode(line, len, s->auth_login_user,
				      sizeof(s->auth_login_user)) == -1) {
			smtp_reply(s, "501 5.5.2 Cannot decode response");
			smtp_session_bad_command(s);
			return;
		}
		s->auth_mech = SMTP_AUTH_LOGIN;
		s->input = SMTP_INPUT_AUTH;
		smtp_reply(s, "334 UGFzc3dvcmQ6");
		return;
	}
	if (sasl_login_decode(line, len, password, sizeof(password)) == -1) {
		smtp_reply(s, "501 5.5.2 Cannot decode response");
		smtp_session_bad_command(s);
		return;
	}
	smtp_session_auth_start(s, s->auth_login_user, password);
}

/* Hands the credentials to auth.c; input waits until the answer. The
 * password buffer is wiped here. */
static void
smtp_session_auth_start(struct smtp_session *s, const char *user,
			char *password)
{
	s->auth = auth_check(s->srv, &s->peer, user, password,
			     s->srv->cfg->auth_fail_delay_ms,
			     smtp_session_on_auth, s);
	explicit_bzero(password, strlen(password));
	explicit_bzero(s->auth_login_user, sizeof(s->auth_login_user));
}

static void
smtp_session_on_auth(void *arg, enum auth_result result, const char *user)
{
	struct smtp_session *s = arg;

	s->auth = NULL;
	switch (result) {
	case AUTH_OK:
		strlcpy(s->auth_user, user, sizeof(s->auth_user));
		log_info("%s smtp authenticated user=%s", s->id, user);
		smtp_reply(s, "235 2.7.0 Authentication successful");
		break;
	case AUTH_FAILED:
		smtp_reply(s, "535 5.7.8 Authentication credentials invalid");
		smtp_session_bad_command(s);
		break;
	case AUTH_TEMPFAIL:
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		break;
	}
	smtp_session_process(s);
}

/* Moves body octets from the input buffer into the transaction (or drops
 * them for a refused BDAT). Returns 1 when it made progress. */
static int
smtp_session_read_body(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer_iovec vec;
	size_t avail = evbuffer_get_length(in), take, used;
	int ended = 0;

	if (s->input != SMTP_INPUT_DATA && s->bdat_left == 0) {
		smtp_session_bdat_chunk_done(s);
		return 1;
	}
	if (avail == 0)
		return 0;
	if (s->input == SMTP_INPUT_BDAT_DISCARD) {
		take = avail < s->bdat_left ? avail : (size_t)s->bdat_left;
		evbuffer_drain(in, take);
		s->bdat_left -= take;
		return 1;
	}
	if (evbuffer_peek(in, -1, NULL, &vec, 1) < 1)
		return 0;
	take = vec.iov_len;
	if (s->input == SMTP_INPUT_BDAT && take > s->bdat_left)
		take = (size_t)s->bdat_left;
	used = smtp_tx_data_feed(s->tx, vec.iov_base, take, &ended);
	evbuffer_drain(in, used);
	if (s->input == SMTP_INPUT_BDAT) {
		s->bdat_left -= used;
		return 1;
	}
	if (ended)
		smtp_session_data_done(s);
	return 1;
}

/* Ends DATA or the LAST BDAT chunk: either an immediate refusal, or a
 * delivery on a worker whose completion sends the reply. */
static void
smtp_session_data_done(struct smtp_session *s)
{
	char reply[SMTP_REPLY_MAX];
	int failed;

	s->input = SMTP_INPUT_COMMAND;
	failed = smtp_tx_failed(s->tx, reply, sizeof(reply));
	if (failed == 2)
		abuse_report(s->srv, &s->peer, ABUSE_SMUGGLING, NULL);
	if (smtp_tx_commit(s->tx, smtp_session_on_delivered, s, reply,
			   sizeof(reply))) {
		smtp_reply(s, "%s", reply);
		smtp_session_end_tx(s);
	}
}

static void
smtp_session_bdat_chunk_done(struct smtp_session *s)
{
	char reply[SMTP_REPLY_MAX];

	if (s->input == SMTP_INPUT_BDAT_DISCARD) {
		s->input = SMTP_INPUT_COMMAND;
		smtp_reply(s, "%s", s->bdat_reply);
		return;
	}
	if (s->bdat_last) {
		smtp_session_data_done(s);
		return;
	}
	s->input = SMTP_INPUT_COMMAND;
	smtp_session_set_timeout(s, s->srv->cfg->smtp_idle_timeout);
	/* RFC 3030 §2: after a failed chunk the client must not send more;
	 * the transaction is over. */
	if (smtp_tx_failed(s->tx, reply, sizeof(reply))) {
		smtp_reply(s, "%s", reply);
		smtp_session_end_tx(s);
		return;
	}
	smtp_reply(s, "250 2.0.0 %llu octets received",
		   (unsigned long long)s->bdat_size);
}

static void
smtp_session_on_delivered(void *arg, const char *reply)
{
	struct smtp_session *s = arg;

	if (reply[0] == '2')
		s->messages++;
	if (!s->closing)
		smtp_reply(s, "%s", reply);
	smtp_session_end_tx(s);
	if (s->closing) {
		smtp_session_schedule_free(s);
		return;
	}
	smtp_session_process(s);
}
