/* Outbound SMTP on a bufferevent (see smtp_client.h). A small state
 * machine reads one (multi-line) reply at a time; the envelope commands
 * are a list sent either one by one or all at once with PIPELINING
 * (RFC 2920), and their replies are matched to them in order. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "dsn.h"
#include "log.h"
#include "queue_env.h"
#include "smtp_client.h"
#include "tls.h"
#include "util.h"

#define SMTP_CLIENT_LINE_MAX 2048 /* one reply line; RFC 5321 says 512 */
#define SMTP_CLIENT_LINES_MAX 100 /* lines of one multi-line reply */
#define SMTP_CLIENT_CHUNK 65536	  /* message octets read at a time */
#define SMTP_CLIENT_QUIT_WAIT 5	  /* seconds for the reply to QUIT */
#define SMTP_CLIENT_PEER_MAX 320  /* "host[address]:port" */

enum smtp_client_state {
	SC_CONNECTING,
	SC_GREETING,
	SC_EHLO,
	SC_HELO,
	SC_STARTTLS,
	SC_HANDSHAKE,
	SC_AUTH_PLAIN,
	SC_AUTH_LOGIN_USER,
	SC_AUTH_LOGIN_PASS,
	SC_AUTH_LOGIN_DONE,
	SC_ENVELOPE, /* MAIL, RCPT..., DATA replies */
	SC_DATA,     /* streaming the message */
	SC_DATA_END, /* waiting for the reply to "." */
	SC_QUIT,
};

static const char *const smtp_client_state_names[] = {
    [SC_CONNECTING] = "connecting",
    [SC_GREETING] = "waiting for the greeting",
    [SC_EHLO] = "sending EHLO",
    [SC_HELO] = "sending HELO",
    [SC_STARTTLS] = "sending STARTTLS",
    [SC_HANDSHAKE] = "in the TLS handshake",
    [SC_AUTH_PLAIN] = "authenticating",
    [SC_AUTH_LOGIN_USER] = "authenticating",
    [SC_AUTH_LOGIN_PASS] = "authenticating",
    [SC_AUTH_LOGIN_DONE] = "authenticating",
    [SC_ENVELOPE] = "sending the envelope",
    [SC_DATA] = "sending the message",
    [SC_DATA_END] = "waiting for the reply to end of data",
    [SC_QUIT] = "sending QUIT",
};

/* One envelope command; rcpt is the recipient index for RCPT. */
enum smtp_client_cmd_kind { CMD_MAIL, CMD_RCPT, CMD_DATA };

struct smtp_client_cmd {
	enum smtp_client_cmd_kind kind;
	size_t rcpt;
};

/* What EHLO told us. */
struct smtp_client_caps {
	int starttls, pipelining, dsn, eightbit, size, auth_plain, auth_login,
	    auth_any;
	uint64_t size_max;
};

struct smtp_client {
	struct event_base *base;
	const struct smtp_client_params *p;
	smtp_client_done_fn done;
	void *arg;
	struct bufferevent *bev;
	struct event *start_ev; /* defers the connect out of start() */
	enum smtp_client_state state;
	struct smtp_client_caps caps;
	int tls_active, esmtp, tried_tls, finished;
	int busy; /* depth of our callbacks on the stack */
	SSL *ssl; /* owned by the filter bufferevent */

	/* The reply being read. */
	int code;
	size_t nlines;
	char reply[SMTP_CLIENT_REPLY_MAX];
	char lines[SMTP_CLIENT_LINES_MAX][64]; /* EHLO keywords, upper case */

	/* The envelope. */
	struct smtp_client_cmd *cmds;
	size_t ncmds, sent, answered, accepted;
	int mail_ok, mail_code, data_ok;
	char mail_reply[SMTP_CLIENT_REPLY_MAX];

	/* The message. */
	FILE *fp;
	int at_bol, eof;

	struct smtp_client_outcome out;
};

/* Flow */
static void smtp_client_on_start(evutil_socket_t fd, short what, void *arg);
static void smtp_client_on_read(struct bufferevent *bev, void *arg);
static void smtp_client_on_write(struct bufferevent *bev, void *arg);
static void smtp_client_on_event(struct bufferevent *bev, short what,
				 void *arg);
static void smtp_client_event(struct smtp_client *c, short what);
static void smtp_client_reply(struct smtp_client *c);
static void smtp_client_finish(struct smtp_client *c);
static void smtp_client_destroy(struct smtp_client *c);
static void smtp_client_leave(struct smtp_client *c);
static void smtp_client_fail(struct smtp_client *c,
			     enum smtp_client_result result, int is_smtp,
			     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void smtp_client_quit(struct smtp_client *c);

/* Steps */
static void smtp_client_send(struct smtp_client *c, int secret, const char *fmt,
			     ...) __attribute__((format(printf, 3, 4)));
static void smtp_client_set_timeout(struct smtp_client *c, unsigned secs);
static void smtp_client_after_hello(struct smtp_client *c);
static void smtp_client_starttls(struct smtp_client *c);
static void smtp_client_auth(struct smtp_client *c);
static void smtp_client_envelope(struct smtp_client *c);
static void smtp_client_send_cmd(struct smtp_client *c, size_t i);
static void smtp_client_envelope_reply(struct smtp_client *c);
static void smtp_client_data_start(struct smtp_client *c);
static void smtp_client_data_pump(struct smtp_client *c);
static void smtp_client_data_reply(struct smtp_client *c);
static void smtp_client_parse_ehlo(struct smtp_client *c);
static void smtp_client_parse_ehlo_values(struct smtp_client *c);
static int smtp_client_read_reply(struct smtp_client *c);
static void smtp_client_peer(const struct smtp_client *c, char *buf,
			     size_t len);
static void smtp_client_tls_error(struct smtp_client *c, char *buf, size_t len);
static void smtp_client_b64(const char *in, size_t inlen, char *out,
			    size_t outlen);

struct smtp_client *
smtp_client_start(struct event_base *base, const struct smtp_client_params *p,
		  smtp_client_done_fn done, void *arg)
{
	struct smtp_client *c = xcalloc(1, sizeof(*c));
	struct timeval zero = {0, 0};

	c->base = base;
	c->p = p;
	c->done = done;
	c->arg = arg;
	c->state = SC_CONNECTING;
	c->start_ev = evtimer_new(base, smtp_client_on_start, c);
	if (c->start_ev == NULL)
		fatalx("smtp_client: evtimer_new failed");
	evtimer_add(c->start_ev, &zero);
	return c;
}

void
smtp_client_abort(struct smtp_client **cp)
{
	struct smtp_client *c = *cp;

	if (c == NULL)
		return;
	if (c->bev)
		bufferevent_free(c->bev);
	if (c->start_ev)
		event_free(c->start_ev);
	if (c->fp)
		fclose(c->fp);
	free(c->cmds);
	free(c);
	*cp = NULL;
}

/* "host[address]:port" for messages. */
static void
smtp_client_peer(const struct smtp_client *c, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	const struct sockaddr *sa = c->p->sa;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
		port = ntohs(sin->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
		port = ntohs(s6->sin6_port);
	}
	snprintf(buf, len, "%s[%s]:%u", c->p->host, addr, port);
}

static void
smtp_client_set_timeout(struct smtp_client *c, unsigned secs)
{
	struct timeval tv = {(time_t)secs, 0};

	bufferevent_set_timeouts(c->bev, &tv, &tv);
}

static void
smtp_client_on_start(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_client *c = arg;
	char peer[SMTP_CLIENT_PEER_MAX];

	(void)fd;
	(void)what;
	c->busy++;
	event_free(c->start_ev);
	c->start_ev = NULL;
	c->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 0,
				 "cannot create a socket");
		smtp_client_leave(c);
		return;
	}
	bufferevent_setcb(c->bev, smtp_client_on_read, NULL,
			  smtp_client_on_event, c);
	smtp_client_set_timeout(c, c->p->connect_timeout);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(c->bev, c->p->sa, (int)c->p->salen) ==
	    -1) {
		smtp_client_peer(c, peer, sizeof(peer));
		smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 0,
				 "connect to %s: %s", peer, strerror(errno));
	}
	smtp_client_leave(c);
}

static void
smtp_client_send(struct smtp_client *c, int secret, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char line[SMTP_CLIENT_LINE_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		fatalx("smtp_client: command too long");
	log_debug("%s smtp-out > %s", c->p->log_id, secret ? "********" : line);
	evbuffer_add(out, line, (size_t)n);
	evbuffer_add(out, "\r\n", 2);
}

/* Ends the session with a session-level result. */
static void
smtp_client_fail(struct smtp_client *c, enum smtp_client_result result,
		 int is_smtp, const char *fmt, ...)
{
	va_list ap;

	if (c->finished)
		return;
	c->out.result = result;
	c->out.reply_is_smtp = is_smtp;
	va_start(ap, fmt);
	vsnprintf(c->out.reply, sizeof(c->out.reply), fmt, ap);
	va_end(ap);
	smtp_client_quit(c);
}

/* Says QUIT when the connection is usable, then finishes after the reply
 * (or a short wait). */
static void
smtp_client_quit(struct smtp_client *c)
{
	if (c->bev == NULL || c->state == SC_CONNECTING ||
	    c->state == SC_HANDSHAKE || c->state == SC_DATA ||
	    c->state == SC_QUIT) {
		smtp_client_finish(c);
		return;
	}
	c->state = SC_QUIT;
	smtp_client_send(c, 0, "QUIT");
	bufferevent_enable(c->bev, EV_READ);
	smtp_client_set_timeout(c, SMTP_CLIENT_QUIT_WAIT);
}

/* Ends the session: computes the final per-recipient codes and closes the
 * connection; done runs and the client is freed once no callback of ours
 * is on the stack any more (smtp_client_leave). */
static void
smtp_client_finish(struct smtp_client *c)
{
	size_t i;

	if (c->finished)
		return;
	c->finished = 1;
	if (c->out.result != SMTP_CLIENT_DONE) {
		/* Without the final reply nothing was delivered; refusals
		 * given at RCPT still stand. */
		for (i = 0; i < c->p->nrcpt; i++)
			if (c->p->rcpts[i].code / 100 == 2)
				c->p->rcpts[i].code = 0;
	}
	if (c->bev) {
		bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	if (c->fp) {
		fclose(c->fp);
		c->fp = NULL;
	}
	if (c->busy == 0)
		smtp_client_destroy(c);
}

static void
smtp_client_destroy(struct smtp_client *c)
{
	c->done(&c->out, c->arg);
	free(c->cmds);
	free(c);
}

/* Every callback starts with c->busy++ and ends here. */
static void
smtp_client_leave(struct smtp_client *c)
{
	if (--c->busy == 0 && c->finished)
		smtp_client_destroy(c);
}

static void
smtp_client_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_client *c = arg;

	(void)bev;
	c->busy++;
	smtp_client_event(c, what);
	smtp_client_leave(c);
}

static void
smtp_client_event(struct smtp_client *c, short what)
{
	char peer[SMTP_CLIENT_PEER_MAX], why[256];

	smtp_client_peer(c, peer, sizeof(peer));
	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == SC_CONNECTING) {
			c->state = SC_GREETING;
			smtp_client_set_timeout(c, c->p->command_timeout);
			return;
		}
		if (c->state == SC_HANDSHAKE) {
			c->tls_active = 1;
			tls_describe(c->ssl, c->out.tls, sizeof(c->out.tls));
			/* RFC 3207 §4.2: forget what we knew and ask again. */
			memset(&c->caps, 0, sizeof(c->caps));
			c->state = SC_EHLO;
			smtp_client_set_timeout(c, c->p->command_timeout);
			smtp_client_send(c, 0, "EHLO %s", c->p->helo);
			return;
		}
		return;
	}
	if (c->state == SC_QUIT) {
		smtp_client_finish(c);
		return;
	}
	if (c->state == SC_HANDSHAKE) {
		smtp_client_tls_error(c, why, sizeof(why));
		if (c->p->tls == SMTP_CLIENT_TLS_MAY)
			c->out.tls_failed = 1;
		smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 0,
				 "TLS handshake with %s failed: %s", peer, why);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 0,
				 "conversation with %s timed out while %s",
				 peer, smtp_client_state_names[c->state]);
	else if (c->state == SC_CONNECTING)
		smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 0,
				 "connect to %s: %s", peer,
				 strerror(EVUTIL_SOCKET_ERROR()));
	else
		smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 0,
				 "lost connection with %s while %s", peer,
				 smtp_client_state_names[c->state]);
}

static void
smtp_client_tls_error(struct smtp_client *c, char *buf, size_t len)
{
	unsigned long e = c->bev ? bufferevent_get_openssl_error(c->bev) : 0;
	long vr;

	if (c->ssl && c->p->tls_verify &&
	    (vr = SSL_get_verify_result(c->ssl)) != X509_V_OK) {
		snprintf(buf, len, "certificate verification failed: %s",
			 X509_verify_cert_error_string(vr));
		return;
	}
	if (e) {
		ERR_error_string_n(e, buf, len);
		return;
	}
	strlcpy(buf, "connection closed", len);
}

/* Reads one complete reply into c->code, c->reply and (for EHLO) the
 * keyword lines. Returns 1 when a reply is complete, 0 when more input is
 * needed, -1 after failing the session (garbage or too long). */
static int
smtp_client_read_reply(struct smtp_client *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	char *line;
	size_t len, i, rl;

	for (;;) {
		line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
		if (line == NULL) {
			if (evbuffer_get_length(in) > SMTP_CLIENT_LINE_MAX) {
				smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 0,
						 "reply line too long");
				return -1;
			}
			return 0;
		}
		for (i = 0; i < len; i++)
			if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
				line[i] = '?';
		log_debug("%s smtp-out < %s", c->p->log_id, line);
		if (len < 3 || !isdigit((unsigned char)line[0]) ||
		    !isdigit((unsigned char)line[1]) ||
		    !isdigit((unsigned char)line[2]) ||
		    (len > 3 && line[3] != ' ' && line[3] != '-') ||
		    (c->nlines > 0 && atoi(line) != c->code) ||
		    c->nlines >= SMTP_CLIENT_LINES_MAX) {
			free(line);
			smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 0,
					 "malformed reply from the server");
			return -1;
		}
		if (c->nlines == 0) {
			c->code = atoi(line);
			strlcpy(c->reply, line, sizeof(c->reply));
			if (len > 3)
				c->reply[3] = ' ';
		} else if (len > 4) {
			/* Continuation lines join the first one. */
			rl = strlen(c->reply);
			snprintf(c->reply + rl, sizeof(c->reply) - rl, " %s",
				 line + 4);
		}
		/* The keyword of each EHLO line after the first. */
		if (len > 4) {
			for (i = 0; i + 1 < sizeof(c->lines[0]) &&
				    line[4 + i] && line[4 + i] != ' ';
			     i++)
				c->lines[c->nlines][i] =
				    (char)toupper((unsigned char)line[4 + i]);
			c->lines[c->nlines][i] = '\0';
		} else {
			c->lines[c->nlines][0] = '\0';
		}
		c->nlines++;
		if (len == 3 || line[3] == ' ') {
			free(line);
			return 1;
		}
		free(line);
	}
}

static void
smtp_client_on_read(struct bufferevent *bev, void *arg)
{
	struct smtp_client *c = arg;

	(void)bev;
	c->busy++;
	while (!c->finished && c->bev) {
		if (smtp_client_read_reply(c) <= 0)
			break;
		smtp_client_reply(c);
		c->nlines = 0;
		/* Input that arrives during the handshake or the upload
		 * is not a reply to anything yet. */
		if (c->state == SC_HANDSHAKE || c->state == SC_DATA)
			break;
	}
	smtp_client_leave(c);
}

static void
smtp_client_parse_ehlo(struct smtp_client *c)
{
	size_t i;

	memset(&c->caps, 0, sizeof(c->caps));
	for (i = 1; i < c->nlines; i++) {
		const char *k = c->lines[i];

		if (strcmp(k, "STARTTLS") == 0)
			c->caps.starttls = 1;
		else if (strcmp(k, "PIPELINING") == 0)
			c->caps.pipelining = 1;
		else if (strcmp(k, "DSN") == 0)
			c->caps.dsn = 1;
		else if (strcmp(k, "8BITMIME") == 0)
			c->caps.eightbit = 1;
		else if (strcmp(k, "SIZE") == 0)
			c->caps.size = 1;
		else if (strcmp(k, "AUTH") == 0)
			c->caps.auth_any = 1;
	}
}

/* EHLO lines are kept only as keywords; the SIZE value and the AUTH
 * mechanisms are read from the joined reply text. */
static void
smtp_client_parse_ehlo_values(struct smtp_client *c)
{
	char up[SMTP_CLIENT_REPLY_MAX], *p;
	size_t i;

	for (i = 0; c->reply[i] && i + 1 < sizeof(up); i++)
		up[i] = (char)toupper((unsigned char)c->reply[i]);
	up[i] = '\0';
	if ((p = strstr(up, " SIZE ")) != NULL)
		c->caps.size_max = strtoull(p + 6, NULL, 10);
	if ((p = strstr(up, " AUTH ")) != NULL ||
	    (p = strstr(up, " AUTH=")) != NULL) {
		char *end = p + 6;

		/* Mechanisms run until the next keyword we know of; a
		 * mechanism list is short, so scanning a few words is
		 * enough. */
		for (i = 0; i < 8 && *end; i++) {
			char word[32];
			size_t w = strcspn(end, " ");

			if (w < sizeof(word)) {
				memcpy(word, end, w);
				word[w] = '\0';
				if (strcmp(word, "PLAIN") == 0)
					c->caps.auth_plain = 1;
				else if (strcmp(word, "LOGIN") == 0)
					c->caps.auth_login = 1;
			}
			end += w;
			while (*end == ' ')
				end++;
		}
	}
}

static void
smtp_client_reply(struct smtp_client *c)
{
	char peer[SMTP_CLIENT_PEER_MAX];

	smtp_client_peer(c, peer, sizeof(peer));
	switch (c->state) {
	case SC_GREETING:
		if (c->code != 220) {
			smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 1, "%s",
					 c->reply);
			return;
		}
		c->state = SC_EHLO;
		smtp_client_send(c, 0, "EHLO %s", c->p->helo);
		return;
	case SC_EHLO:
		if (c->code == 250) {
			c->esmtp = 1;
			smtp_client_parse_ehlo(c);
			smtp_client_parse_ehlo_values(c);
			smtp_client_after_hello(c);
			return;
		}
		if (c->code / 100 == 5 && !c->tls_active) {
			/* RFC 5321 §3.2: fall back to HELO. */
			c->state = SC_HELO;
			smtp_client_send(c, 0, "HELO %s", c->p->helo);
			return;
		}
		smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 1, "%s", c->reply);
		return;
	case SC_HELO:
		if (c->code != 250) {
			smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 1, "%s",
					 c->reply);
			return;
		}
		memset(&c->caps, 0, sizeof(c->caps));
		smtp_client_after_hello(c);
		return;
	case SC_STARTTLS:
		if (c->code == 220) {
			smtp_client_starttls(c);
			return;
		}
		if (c->p->tls == SMTP_CLIENT_TLS_MUST) {
			smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 1,
					 "STARTTLS refused: %s", c->reply);
			return;
		}
		/* Opportunistic: go on without TLS. */
		c->tried_tls = 1;
		smtp_client_after_hello(c);
		return;
	case SC_AUTH_PLAIN:
	case SC_AUTH_LOGIN_DONE:
		if (c->code == 235) {
			smtp_client_envelope(c);
			return;
		}
		smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 1,
				 "authentication failed: %s", c->reply);
		return;
	case SC_AUTH_LOGIN_USER:
	case SC_AUTH_LOGIN_PASS: {
		char b64[1024];
		const char *s = c->state == SC_AUTH_LOGIN_USER
				    ? c->p->auth_user
				    : c->p->auth_pass;

		if (c->code != 334) {
			smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 1,
					 "authentication failed: %s", c->reply);
			return;
		}
		smtp_client_b64(s, strlen(s), b64, sizeof(b64));
		smtp_client_send(c, 1, "%s", b64);
		explicit_bzero(b64, sizeof(b64));
		c->state = c->state == SC_AUTH_LOGIN_USER ? SC_AUTH_LOGIN_PASS
							  : SC_AUTH_LOGIN_DONE;
		return;
	}
	case SC_ENVELOPE:
		smtp_client_envelope_reply(c);
		return;
	case SC_DATA_END:
		smtp_client_data_reply(c);
		return;
	case SC_QUIT:
		smtp_client_finish(c);
		return;
	case SC_CONNECTING:
	case SC_HANDSHAKE:
	case SC_DATA:
		/* A reply nobody asked for: the server is confused. */
		smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 1,
				 "unexpected reply from %s: %s", peer,
				 c->reply);
		return;
	}
}

/* After EHLO/HELO: STARTTLS when wanted and possible, then AUTH, then the
 * transaction. */
static void
smtp_client_after_hello(struct smtp_client *c)
{
	if (!c->tls_active && !c->tried_tls &&
	    c->p->tls != SMTP_CLIENT_TLS_NONE && c->caps.starttls) {
		c->state = SC_STARTTLS;
		smtp_client_send(c, 0, "STARTTLS");
		return;
	}
	if (!c->tls_active && c->p->tls == SMTP_CLIENT_TLS_MUST) {
		smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 0,
				 "TLS is required, but the server does not "
				 "offer STARTTLS");
		return;
	}
	if (c->p->auth_user) {
		smtp_client_auth(c);
		return;
	}
	smtp_client_envelope(c);
}

static void
smtp_client_starttls(struct smtp_client *c)
{
	struct bufferevent *tls_bev;
	struct in6_addr a6;
	struct in_addr a4;

	/* RFC 3207 §5 and the CVE-2011-0411 class: anything the server
	 * sent after its 220 arrived in clear and cannot be trusted. */
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
		smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 0,
				 "data after the STARTTLS reply (response "
				 "injection?)");
		return;
	}
	if (c->p->ssl_ctx == NULL ||
	    (c->ssl = SSL_new(c->p->ssl_ctx)) == NULL) {
		smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 0,
				 "no TLS client context");
		return;
	}
	/* SNI and the name check only make sense for a host name. */
	if (inet_pton(AF_INET, c->p->host, &a4) != 1 &&
	    inet_pton(AF_INET6, c->p->host, &a6) != 1)
		SSL_set_tlsext_host_name(c->ssl, c->p->host);
	if (c->p->tls_verify) {
		SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
		if (SSL_set1_host(c->ssl, c->p->host) != 1) {
			SSL_free(c->ssl);
			c->ssl = NULL;
			smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 0,
					 "cannot set the name to verify");
			return;
		}
	} else {
		SSL_set_verify(c->ssl, SSL_VERIFY_NONE, NULL);
	}
	tls_bev = bufferevent_openssl_filter_new(c->base, c->bev, c->ssl,
						 BUFFEREVENT_SSL_CONNECTING,
						 BEV_OPT_CLOSE_ON_FREE);
	if (tls_bev == NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
		smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 0,
				 "cannot start TLS");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tls_bev, 1);
	c->bev = tls_bev;
	c->state = SC_HANDSHAKE;
	c->tried_tls = 1;
	bufferevent_setcb(c->bev, smtp_client_on_read, NULL,
			  smtp_client_on_event, c);
	smtp_client_set_timeout(c, c->p->command_timeout);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void
smtp_client_auth(struct smtp_client *c)
{
	char raw[1024], b64[1500];
	size_t ul = strlen(c->p->auth_user), pl = strlen(c->p->auth_pass);

	if (!c->esmtp || !c->caps.auth_any ||
	    (!c->caps.auth_plain && !c->caps.auth_login)) {
		smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 0,
				 "the relay host offers no AUTH PLAIN or "
				 "LOGIN");
		return;
	}
	if (c->caps.auth_plain && ul + pl + 2 <= sizeof(raw)) {
		/* RFC 4616: authzid NUL authcid NUL passwd. */
		raw[0] = '\0';
		memcpy(raw + 1, c->p->auth_user, ul);
		raw[1 + ul] = '\0';
		memcpy(raw + 2 + ul, c->p->auth_pass, pl);
		smtp_client_b64(raw, ul + pl + 2, b64, sizeof(b64));
		c->state = SC_AUTH_PLAIN;
		smtp_client_send(c, 1, "AUTH PLAIN %s", b64);
		explicit_bzero(raw, sizeof(raw));
		explicit_bzero(b64, sizeof(b64));
		return;
	}
	c->state = SC_AUTH_LOGIN_USER;
	smtp_client_send(c, 0, "AUTH LOGIN");
}

/* Builds the command list and sends MAIL (and, pipelining, the rest). */
static void
smtp_client_envelope(struct smtp_client *c)
{
	size_t i, n = 0;

	if (c->caps.size && c->caps.size_max > 0 &&
	    c->p->size > c->caps.size_max) {
		smtp_client_fail(c, SMTP_CLIENT_PERMFAIL, 0,
				 "552 5.3.4 Message size %llu exceeds the "
				 "limit of %llu of the receiving server",
				 (unsigned long long)c->p->size,
				 (unsigned long long)c->caps.size_max);
		return;
	}
	c->cmds = xcalloc(c->p->nrcpt + 2, sizeof(*c->cmds));
	c->cmds[n++].kind = CMD_MAIL;
	for (i = 0; i < c->p->nrcpt; i++) {
		c->cmds[n].kind = CMD_RCPT;
		c->cmds[n++].rcpt = i;
	}
	c->cmds[n++].kind = CMD_DATA;
	c->ncmds = n;
	c->state = SC_ENVELOPE;
	if (c->caps.pipelining) {
		/* RFC 2920 §3.1: DATA may end the group. */
		for (i = 0; i < n; i++)
			smtp_client_send_cmd(c, i);
	} else {
		smtp_client_send_cmd(c, 0);
	}
}

static void
smtp_client_send_cmd(struct smtp_client *c, size_t i)
{
	const struct smtp_client_params *p = c->p;
	char params[1200], notify[64];
	size_t o = 0;
	int n;

	params[0] = '\0';
	c->sent = i + 1;
	switch (c->cmds[i].kind) {
	case CMD_MAIL:
		if (c->caps.size) {
			n = snprintf(params + o, sizeof(params) - o,
				     " SIZE=%llu", (unsigned long long)p->size);
			o += (size_t)n;
		}
		if (p->body_8bit && c->caps.eightbit) {
			n = snprintf(params + o, sizeof(params) - o,
				     " BODY=8BITMIME");
			o += (size_t)n;
		}
		/* RFC 3461 §4.3, §4.4: only to a server that offers DSN. */
		if (c->caps.dsn && p->ret) {
			n = snprintf(params + o, sizeof(params) - o, " RET=%s",
				     p->ret == DSN_RET_FULL ? "FULL" : "HDRS");
			o += (size_t)n;
		}
		if (c->caps.dsn && p->envid && p->envid[0])
			snprintf(params + o, sizeof(params) - o, " ENVID=%s",
				 p->envid);
		smtp_client_send(c, 0, "MAIL FROM:<%s>%s", p->sender, params);
		return;
	case CMD_RCPT: {
		const struct smtp_client_rcpt *rc = &p->rcpts[c->cmds[i].rcpt];

		if (c->caps.dsn && rc->notify) {
			/* The same words and order as RFC 3461 §4.1. */
			queue_env_notify_format(rc->notify, notify,
						sizeof(notify));
			n = snprintf(params, sizeof(params), " NOTIFY=%s",
				     notify);
			o = (size_t)n;
		}
		if (c->caps.dsn && rc->orcpt && rc->orcpt[0])
			snprintf(params + o, sizeof(params) - o, " ORCPT=%s",
				 rc->orcpt);
		smtp_client_send(c, 0, "RCPT TO:<%s>%s", rc->addr, params);
		return;
	}
	case CMD_DATA:
		smtp_client_send(c, 0, "DATA");
		return;
	}
}

/* One reply of the envelope group, matched to the oldest unanswered
 * command. */
static void
smtp_client_envelope_reply(struct smtp_client *c)
{
	struct smtp_client_cmd *cmd;

	if (c->answered >= c->sent) {
		smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 1,
				 "unexpected reply: %s", c->reply);
		return;
	}
	cmd = &c->cmds[c->answered++];
	switch (cmd->kind) {
	case CMD_MAIL:
		c->mail_code = c->code;
		c->mail_ok = c->code / 100 == 2;
		strlcpy(c->mail_reply, c->reply, sizeof(c->mail_reply));
		if (!c->mail_ok && !c->caps.pipelining) {
			smtp_client_fail(c,
					 c->code / 100 == 5
					     ? SMTP_CLIENT_PERMFAIL
					     : SMTP_CLIENT_TEMPFAIL,
					 1, "%s", c->reply);
			return;
		}
		break;
	case CMD_RCPT: {
		struct smtp_client_rcpt *rc = &c->p->rcpts[cmd->rcpt];

		if (!c->mail_ok)
			break; /* 503s after a refused MAIL say nothing */
		rc->code = c->code;
		strlcpy(rc->reply, c->reply, sizeof(rc->reply));
		if (c->code / 100 == 2)
			c->accepted++;
		break;
	}
	case CMD_DATA:
		if (c->code == 354) {
			c->data_ok = 1;
			smtp_client_data_start(c);
			return;
		}
		if (!c->mail_ok) {
			smtp_client_fail(c,
					 c->mail_code / 100 == 5
					     ? SMTP_CLIENT_PERMFAIL
					     : SMTP_CLIENT_TEMPFAIL,
					 1, "%s", c->mail_reply);
			return;
		}
		/* DATA refused: the accepted recipients share its fate. */
		{
			size_t i;

			for (i = 0; i < c->p->nrcpt; i++) {
				struct smtp_client_rcpt *rc = &c->p->rcpts[i];
				if (rc->code / 100 == 2) {
					rc->code =
					    c->code / 100 == 2 ? 451 : c->code;
					strlcpy(rc->reply, c->reply,
						sizeof(rc->reply));
				}
			}
		}
		c->out.result = SMTP_CLIENT_DONE;
		smtp_client_quit(c);
		return;
	}
	if (c->caps.pipelining)
		return;
	/* One at a time: the next command, or stop when no recipient was
	 * accepted (no DATA for nobody). */
	if (c->answered == c->ncmds - 1 && c->accepted == 0) {
		c->out.result = SMTP_CLIENT_DONE;
		smtp_client_quit(c);
		return;
	}
	smtp_client_send_cmd(c, c->answered);
}

static void
smtp_client_data_start(struct smtp_client *c)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	c->state = SC_DATA;
	c->at_bol = 1;
	if (c->accepted == 0 || !c->mail_ok) {
		/* RFC 2920 §3.1: DATA accepted with no valid recipient:
		 * send an empty message, which the server must refuse. */
		evbuffer_add(bufferevent_get_output(c->bev), ".\r\n", 3);
		c->eof = 1;
		c->state = SC_DATA_END;
		return;
	}
	if ((c->fp = fopen(c->p->msg_path, "re")) == NULL) {
		smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 0,
				 "cannot open the queued message: %s",
				 strerror(errno));
		return;
	}
	/* RFC 5321 §4.4: Return-Path belongs to final delivery; ours, at
	 * the top of the stored message, is not sent on. */
	n = getline(&line, &cap, c->fp);
	if (n > 0 && strncasecmp(line, "Return-Path:", 12) == 0) {
		while ((n = getline(&line, &cap, c->fp)) > 0 &&
		       (line[0] == ' ' || line[0] == '\t'))
			;
	}
	if (n > 0) {
		/* The first line after it goes out through the pump. */
		struct evbuffer *out = bufferevent_get_output(c->bev);
		ssize_t i;

		for (i = 0; i < n; i++) {
			if (c->at_bol && line[i] == '.')
				evbuffer_add(out, ".", 1);
			if (line[i] == '\n') {
				evbuffer_add(out, "\r\n", 2);
				c->at_bol = 1;
			} else {
				evbuffer_add(out, &line[i], 1);
				c->at_bol = 0;
			}
		}
	}
	free(line);
	if (ferror(c->fp)) {
		smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 0,
				 "cannot read the queued message");
		return;
	}
	/* Reading stays off while we send: a long upload is not a silent
	 * server. The write callback refills below the low-water mark. */
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setwatermark(c->bev, EV_WRITE, SMTP_CLIENT_CHUNK, 0);
	bufferevent_setcb(c->bev, smtp_client_on_read, smtp_client_on_write,
			  smtp_client_on_event, c);
	smtp_client_data_pump(c);
}

static void
smtp_client_on_write(struct bufferevent *bev, void *arg)
{
	struct smtp_client *c = arg;

	(void)bev;
	c->busy++;
	if (c->state == SC_DATA && !c->finished)
		smtp_client_data_pump(c);
	smtp_client_leave(c);
}

/* Adds the next chunk of the message, converted to CRLF and dot-stuffed
 * (RFC 5321 §4.5.2), or the end-of-data marker. */
static void
smtp_client_data_pump(struct smtp_client *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char in[SMTP_CLIENT_CHUNK / 2], conv[SMTP_CLIENT_CHUNK + 8];
	size_t n, i, o = 0;

	if (evbuffer_get_length(out) >= SMTP_CLIENT_CHUNK)
		return;
	n = fread(in, 1, sizeof(in), c->fp);
	for (i = 0; i < n; i++) {
		if (c->at_bol && in[i] == '.')
			conv[o++] = '.';
		if (in[i] == '\n') {
			conv[o++] = '\r';
			conv[o++] = '\n';
			c->at_bol = 1;
		} else {
			conv[o++] = in[i];
			c->at_bol = 0;
		}
	}
	if (o > 0)
		evbuffer_add(out, conv, o);
	if (ferror(c->fp)) {
		smtp_client_fail(c, SMTP_CLIENT_TEMPFAIL, 0,
				 "cannot read the queued message");
		return;
	}
	if (n > 0 && !feof(c->fp))
		return;
	/* The last line always ends with CRLF before the dot. */
	if (!c->at_bol)
		evbuffer_add(out, "\r\n", 2);
	evbuffer_add(out, ".\r\n", 3);
	fclose(c->fp);
	c->fp = NULL;
	c->state = SC_DATA_END;
	bufferevent_setcb(c->bev, smtp_client_on_read, NULL,
			  smtp_client_on_event, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	smtp_client_set_timeout(c, c->p->data_timeout);
	bufferevent_enable(c->bev, EV_READ);
	/* A reply may already be buffered. */
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		smtp_client_on_read(c->bev, c);
}

static void
smtp_client_data_reply(struct smtp_client *c)
{
	size_t i;

	for (i = 0; i < c->p->nrcpt; i++) {
		struct smtp_client_rcpt *rc = &c->p->rcpts[i];

		if (rc->code / 100 != 2)
			continue;
		/* RFC 5321 §4.2.5: the reply to "." is for every
		 * recipient accepted at RCPT. */
		rc->code = c->code;
		strlcpy(rc->reply, c->reply, sizeof(rc->reply));
	}
	c->out.result = SMTP_CLIENT_DONE;
	strlcpy(c->out.reply, c->reply, sizeof(c->out.reply));
	c->out.reply_is_smtp = 1;
	c->out.dsn = c->caps.dsn;
	smtp_client_set_timeout(c, c->p->command_timeout);
	smtp_client_quit(c);
}

/* Standard base64 (RFC 4648 §4) for SASL. */
static void
smtp_client_b64(const char *in, size_t inlen, char *out, size_t outlen)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s = (const unsigned char *)in;
	size_t i, o = 0;

	for (i = 0; i + 2 < inlen && o + 5 < outlen; i += 3) {
		out[o++] = tab[s[i] >> 2];
		out[o++] = tab[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
		out[o++] = tab[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
		out[o++] = tab[s[i + 2] & 63];
	}
	if (i < inlen && o + 5 < outlen) {
		out[o++] = tab[s[i] >> 2];
		if (i + 1 < inlen) {
			out[o++] = tab[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
			out[o++] = tab[(s[i + 1] & 15) << 2];
		} else {
			out[o++] = tab[(s[i] & 3) << 4];
			out[o++] = '=';
		}
		out[o++] = '=';
	}
	out[o] = '\0';
}
