/* Listening sockets and admission: the connection filter (bans, rate
 * limits), the total and the per-address connection limits are enforced
 * here, before any session state is allocated. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/listener.h>

#include "filter.h"
#include "listener.h"
#include "log.h"
#include "pop3_session.h"
#include "smtp_session.h"
#include "util.h"

enum listener_proto {
	LISTENER_SMTP,
	LISTENER_SUBMISSION,
	LISTENER_SUBMISSIONS,
	LISTENER_POP3,
	LISTENER_POP3S,
};

static const char *const listener_names[] = {
    "smtp", "submission", "submissions", "pop3", "pop3s",
};

struct listener {
	struct evconnlistener *evl;
	struct server *srv;
	enum listener_proto proto;
	struct listener *next;
};

/* Open sessions per client address: a chained hash table. */
#define PEER_BUCKETS 4096
struct peer_count {
	char addr[64];
	unsigned count;
	struct peer_count *next;
};

static struct listener *listeners;
static struct peer_count *peer_table[PEER_BUCKETS];

static int listener_open_one(struct server *srv, enum listener_proto proto,
			     const struct config_listen *addr);
static void listener_on_accept(struct evconnlistener *evl, evutil_socket_t fd,
			       struct sockaddr *sa, int salen, void *arg);
static void listener_on_error(struct evconnlistener *evl, void *arg);
static void listener_refuse(evutil_socket_t fd, enum listener_proto proto,
			    const struct server *srv, const char *why);
static int listener_filter(struct server *srv, evutil_socket_t fd,
			   enum listener_proto proto, const struct peer *peer);
static struct peer_count **peer_find(const char *addr);

static struct peer_count **
peer_find(const char *addr)
{
	unsigned h = 2166136261u;
	const char *p;
	struct peer_count **pp;

	for (p = addr; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	for (pp = &peer_table[h % PEER_BUCKETS]; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->addr, addr) == 0)
			break;
	return pp;
}

void
server_session_closed(struct server *srv, const struct peer *peer)
{
	struct peer_count **pp = peer_find(peer->addr), *pc = *pp;

	if (srv->connections > 0)
		srv->connections--;
	if (pc == NULL)
		fatalx("listener: closing session of unknown address %s",
		       peer->addr);
	if (--pc->count == 0) {
		*pp = pc->next;
		free(pc);
	}
}

/* Sends a one-line refusal on a socket that gets no session. The socket is
 * fresh, so a short non-blocking send fits in its buffer. */
static void
listener_refuse(evutil_socket_t fd, enum listener_proto proto,
		const struct server *srv, const char *why)
{
	char line[512];
	int n;

	if (proto != LISTENER_POP3 && proto != LISTENER_POP3S)
		n = snprintf(line, sizeof(line), "421 4.7.0 %s Error: %s\r\n",
			     srv->cfg->hostname, why);
	else
		n = snprintf(line, sizeof(line), "-ERR [SYS/TEMP] %s\r\n", why);
	if (n > 0 && (size_t)n < sizeof(line) &&
	    send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == -1)
		log_debug("listener: refusal not sent: %s", strerror(errno));
	close(fd);
}

/* The connection filter's verdict at accept(): 0 to go on, or -1 when the
 * connection was refused (and closed). In XDP mode the kernel has already
 * dropped SYNs over the rate; bans are checked again here for traffic that
 * does not pass the XDP hook (loopback, other interfaces). */
static int
listener_filter(struct server *srv, evutil_socket_t fd,
		enum listener_proto proto, const struct peer *peer)
{
	struct filter_decision d;
	const char *why;

	if (srv->filter == NULL)
		return 0;
	if (filter_admit(srv->filter, (const struct sockaddr *)&peer->sa, &d) <
	    FILTER_DENY_BANNED) {
		if (d.dry_run != FILTER_PASS && d.log)
			log_info("listener: would refuse addr=%s net=%s "
				 "reason=%s dry_run=yes",
				 peer->addr, d.net,
				 d.dry_run == FILTER_DENY_RATE ? "rate"
							       : "banned");
		return 0;
	}
	/* Both answers are temporary, like Postfix smtpd's anvil limits
	 * ("421 4.7.0 ... Error: too many connections from ..."), not like
	 * postscreen's permanent answers to blocklisted clients (550 5.7.1
	 * with enforce, 521 with drop): our bans are automatic and expire,
	 * so an MTA caught by one by mistake queues and retries (4yz is
	 * transient, RFC 5321 §4.2.1; 421 at connection, §3.8) instead of
	 * bouncing its users' mail. */
	if (d.verdict == FILTER_DENY_RATE) {
		why = "too many connections from your address";
		if (d.log)
			log_warnx("listener: refused addr=%s net=%s "
				  "reason=rate",
				  peer->addr, d.net);
	} else {
		why = "your address is temporarily blocked";
		if (d.log)
			log_warnx("listener: refused addr=%s net=%s "
				  "reason=banned ban=%s expires_in=%llus",
				  peer->addr, d.net,
				  filter_reason_name(d.reason),
				  (unsigned long long)d.expires_in_s);
	}
	listener_refuse(fd, proto, srv, why);
	return -1;
}

static void
listener_on_accept(struct evconnlistener *evl, evutil_socket_t fd,
		   struct sockaddr *sa, int salen, void *arg)
{
	struct listener *l = arg;
	struct server *srv = l->srv;
	struct peer peer;
	struct peer_count **pp, *pc;
	int err;

	(void)evl;
	memset(&peer, 0, sizeof(peer));
	memcpy(&peer.sa, sa, (size_t)salen);
	peer.salen = (socklen_t)salen;
	err = getnameinfo(sa, (socklen_t)salen, peer.addr, sizeof(peer.addr),
			  peer.port, sizeof(peer.port),
			  NI_NUMERICHOST | NI_NUMERICSERV);
	if (err != 0) {
		log_warnx("listener: getnameinfo: %s", gai_strerror(err));
		close(fd);
		return;
	}
	/* An IPv4-mapped IPv6 address is logged and counted as IPv4. */
	if (strncmp(peer.addr, "::ffff:", 7) == 0 && strchr(peer.addr + 7, '.'))
		memmove(peer.addr, peer.addr + 7, strlen(peer.addr + 7) + 1);

	if (listener_filter(srv, fd, l->proto, &peer) == -1)
		return;

	if (srv->connections >= srv->cfg->max_connections) {
		log_warnx("listener: refused addr=%s reason=max-connections",
			  peer.addr);
		listener_refuse(fd, l->proto, srv, "too many connections");
		return;
	}
	pp = peer_find(peer.addr);
	pc = *pp;
	if (pc && pc->count >= srv->cfg->max_connections_per_ip) {
		log_warnx("listener: refused addr=%s "
			  "reason=max-connections-per-ip",
			  peer.addr);
		listener_refuse(fd, l->proto, srv,
				"too many connections from your address");
		return;
	}
	if (pc == NULL) {
		pc = xcalloc(1, sizeof(*pc));
		strlcpy(pc->addr, peer.addr, sizeof(pc->addr));
		*pp = pc;
	}
	pc->count++;
	srv->connections++;
	switch (l->proto) {
	case LISTENER_SMTP:
		smtp_session_start(srv, fd, &peer, SMTP_LISTENER_MX);
		break;
	case LISTENER_SUBMISSION:
		smtp_session_start(srv, fd, &peer, SMTP_LISTENER_SUBMISSION);
		break;
	case LISTENER_SUBMISSIONS:
		smtp_session_start(srv, fd, &peer, SMTP_LISTENER_SUBMISSIONS);
		break;
	case LISTENER_POP3:
		pop3_session_start(srv, fd, &peer, 0);
		break;
	case LISTENER_POP3S:
		pop3_session_start(srv, fd, &peer, 1);
		break;
	}
}

static void
listener_on_error(struct evconnlistener *evl, void *arg)
{
	(void)arg;
	/* EMFILE and friends: pause briefly rather than spin. */
	log_warn("listener: accept");
	evconnlistener_disable(evl);
	evconnlistener_enable(evl);
}

static int
listener_open_one(struct server *srv, enum listener_proto proto,
		  const struct config_listen *addr)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct listener *l;
	int fd = -1, one = 1, err;
	const char *name = listener_names[proto];

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	err = getaddrinfo(addr->host[0] ? addr->host : NULL, addr->port, &hints,
			  &res);
	if (err != 0) {
		log_warnx("listen %s %s:%s: %s", name, addr->host, addr->port,
			  gai_strerror(err));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family,
			    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd == -1)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
				   sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, 4096) == 0)
			break;
		log_warn("listen %s %s:%s", name, addr->host, addr->port);
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		return -1;

	l = xcalloc(1, sizeof(*l));
	l->srv = srv;
	l->proto = proto;
	l->evl = evconnlistener_new(
	    srv->base, listener_on_accept, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (l->evl == NULL) {
		close(fd);
		free(l);
		log_warnx("listen %s: evconnlistener_new failed", name);
		return -1;
	}
	evconnlistener_set_error_cb(l->evl, listener_on_error);
	l->next = listeners;
	listeners = l;
	log_info("listening %s on %s%s%s:%s", name,
		 strchr(addr->host, ':') ? "[" : "", addr->host,
		 strchr(addr->host, ':') ? "]" : "", addr->port);
	return 0;
}

int
listener_open_all(struct server *srv)
{
	const struct config *cfg = srv->cfg;
	const struct config_listen_list *lists[] = {
	    [LISTENER_SMTP] = &cfg->smtp_listen,
	    [LISTENER_SUBMISSION] = &cfg->submission_listen,
	    [LISTENER_SUBMISSIONS] = &cfg->submissions_listen,
	    [LISTENER_POP3] = &cfg->pop3_listen,
	    [LISTENER_POP3S] = &cfg->pop3s_listen,
	};
	size_t p, i;

	for (p = 0; p < sizeof(lists) / sizeof(lists[0]); p++)
		for (i = 0; i < lists[p]->n; i++)
			if (listener_open_one(srv, (enum listener_proto)p,
					      &lists[p]->addr[i]) == -1)
				return -1;
	return 0;
}

void
listener_close_all(void)
{
	struct listener *l, *next;

	for (l = listeners; l; l = next) {
		next = l->next;
		evconnlistener_free(l->evl);
		free(l);
	}
	listeners = NULL;
}
