/* POP3 sessions (RFC 1939, 2449, 5034). */
#ifndef POSTERN_POP3_SESSION_H
#define POSTERN_POP3_SESSION_H

#include <event2/util.h>

#include "server.h"

/* Takes ownership of the connected socket fd (non-blocking) and starts a
 * POP3 session on srv->base: greets, then serves commands until QUIT, a
 * timeout or an error. implicit_tls: the [pop3s] port (RFC 8314), where
 * the TLS handshake comes first. Calls server_session_closed() when it
 * ends. */
void pop3_session_start(struct server *srv, evutil_socket_t fd,
			const struct peer *peer, int implicit_tls);

#endif
