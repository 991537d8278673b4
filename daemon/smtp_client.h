/* One outbound SMTP session on the event loop: connect to one address,
 * EHLO (HELO when EHLO is refused), STARTTLS, AUTH PLAIN or LOGIN, then
 * one mail transaction (pipelined when PIPELINING is offered) with the
 * message streamed from its queue file, LF converted to CRLF and
 * dot-stuffed (RFC 5321 §4.5.2). Which host to try and what to make of the
 * results is the queue's business. */
#ifndef POSTERN_SMTP_CLIENT_H
#define POSTERN_SMTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#define SMTP_CLIENT_REPLY_MAX 512

/* TLS policy. */
#define SMTP_CLIENT_TLS_NONE 0 /* never STARTTLS */
#define SMTP_CLIENT_TLS_MAY 1  /* STARTTLS when offered (RFC 3207) */
#define SMTP_CLIENT_TLS_MUST 2 /* no mail without a TLS session */

struct smtp_client_rcpt {
	/* In: borrowed until done runs. */
	const char *addr;  /* forward-path without <> */
	int notify;	   /* DSN_NOTIFY_* bits, 0 = none */
	const char *orcpt; /* ORCPT as received or NULL */
	/* Out, valid in done: 2xx delivered, 4xx deferred, 5xx failed, 0
	 * unknown (the session ended first; see the outcome's reply). */
	int code;
	char reply[SMTP_CLIENT_REPLY_MAX];
};

struct smtp_client_params {
	const char *log_id;	   /* prefix of debug lines (queue id) */
	const char *helo;	   /* our host name */
	const char *host;	   /* peer name: SNI, certificate name */
	const struct sockaddr *sa; /* address with the port set */
	socklen_t salen;
	int tls;	       /* SMTP_CLIENT_TLS_* */
	int tls_verify;	       /* check the certificate and name */
	SSL_CTX *ssl_ctx;      /* needed unless tls is NONE */
	const char *auth_user; /* NULL: no AUTH; else AUTH required */
	const char *auth_pass;
	const char *sender; /* "" = null reverse-path */
	int ret;	    /* DSN_RET_* */
	const char *envid;  /* xtext or "" */
	int body_8bit;
	uint64_t size;	      /* for SIZE=, CRLF octets */
	const char *msg_path; /* LF line ends */
	struct smtp_client_rcpt *rcpts;
	size_t nrcpt;
	unsigned connect_timeout; /* seconds */
	unsigned command_timeout; /* seconds, per reply */
	unsigned data_timeout;	  /* seconds, for the reply to "." */
};

enum smtp_client_result {
	SMTP_CLIENT_DONE,     /* the transaction ran: read each rcpt's code */
	SMTP_CLIENT_TEMPFAIL, /* session-level temporary failure: try the
				 next address; rcpt codes may hold 5xx */
	SMTP_CLIENT_PERMFAIL, /* a 5xx for the whole message (MAIL, DATA,
				 size): every recipient without a code fails */
};

struct smtp_client_outcome {
	enum smtp_client_result result;
	char reply[SMTP_CLIENT_REPLY_MAX]; /* the server's reply, or ours */
	int reply_is_smtp;		   /* reply came from the server */
	int tls_failed;			   /* STARTTLS offered but the handshake
					      failed: retry this address in clear */
	char tls[128]; /* "TLSv1.3:cipher", "" without TLS */
	int dsn;       /* DSN was offered, NOTIFY/ORCPT passed */
};

struct smtp_client;

typedef void (*smtp_client_done_fn)(const struct smtp_client_outcome *o,
				    void *arg);

/* Starts a session. Everything p points to must stay valid until done has
 * run; done runs exactly once, on the loop thread, never from inside this
 * call, and the client frees itself right after it. Returns the client
 * (for smtp_client_abort only). */
struct smtp_client *smtp_client_start(struct event_base *base,
				      const struct smtp_client_params *p,
				      smtp_client_done_fn done, void *arg);

/* Drops the connection without calling done (daemon shutdown). */
void smtp_client_abort(struct smtp_client **cp);

#endif
