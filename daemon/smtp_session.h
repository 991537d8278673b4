/* SMTP server sessions (RFC 5321): greeting, command dispatch, replies. */
#ifndef POSTERN_SMTP_SESSION_H
#define POSTERN_SMTP_SESSION_H

#include <event2/util.h>

#include "server.h"

/* What a listening port is for. */
enum smtp_listener_kind {
	SMTP_LISTENER_MX,	   /* [smtp]: inbound mail, port 25 */
	SMTP_LISTENER_SUBMISSION,  /* [submission]: STARTTLS + AUTH, 587 */
	SMTP_LISTENER_SUBMISSIONS, /* [submissions]: implicit TLS, 465 */
};

/* Takes ownership of the connected socket fd (non-blocking) and starts an
 * SMTP session on srv->base. Calls server_session_closed() when it ends. */
void smtp_session_start(struct server *srv, evutil_socket_t fd,
			const struct peer *peer, enum smtp_listener_kind kind);

#endif
