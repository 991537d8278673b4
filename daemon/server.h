/* The daemon-wide context that every session reaches through one pointer:
 * the event base, the configuration, the store, the worker pool and the
 * connection filter. */
#ifndef POSTERN_SERVER_H
#define POSTERN_SERVER_H

#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "config.h"

struct filter;
struct store;
struct worker_pool;

struct server {
	struct event_base *base;
	struct config *cfg;
	struct store *store;
	struct worker_pool *workers;
	struct filter *filter; /* bans and limits at accept (filter.h) */
	char spool_dir[1100];  /* data_dir/spool: DATA in progress */
	uint64_t connections;  /* open sessions, all protocols */
};

/* A client's address in printable form, for logs and Received headers. */
struct peer {
	struct sockaddr_storage sa;
	socklen_t salen;
	char addr[64]; /* "192.0.2.1" or "2001:db8::1" */
	char port[8];
};

/* Called by a session when it ends, so that the listener can release its
 * per-address connection slot. */
void server_session_closed(struct server *srv, const struct peer *peer);

#endif
