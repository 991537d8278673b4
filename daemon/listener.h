/* Listening sockets for SMTP and POP3, accept(), and per-address and total
 * connection admission before a session starts. */
#ifndef POSTERN_LISTENER_H
#define POSTERN_LISTENER_H

#include "server.h"

/* Binds every [smtp] and [pop3] listen address of srv->cfg on srv->base.
 * Returns 0, or -1 after logging which address failed. */
int listener_open_all(struct server *srv);

/* Closes every listening socket (sessions go on). */
void listener_close_all(void);

#endif
