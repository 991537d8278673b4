/* c-ares on the libevent loop (see dns.h). c-ares tells us through its
 * socket-state callback which sockets to watch; we give each one an event
 * that calls ares_process_fd, and one timer follows ares_timeout(). Results
 * are always handed to the caller from an event of their own, so that a
 * callback never runs inside dns_resolve_*(). */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>

#include "dns.h"
#include "log.h"
#include "util.h"

/* One socket c-ares asked us to watch. */
struct dns_sock {
	ares_socket_t fd;
	struct event *ev;
	struct dns_sock *next;
};

/* One dns_resolve_* call until its callback has run. */
struct dns_query {
	dns_cb cb;
	void *arg;
	struct dns_result *res;
	char name[DNS_NAME_MAX];
	int mx;		   /* MX lookup rather than one host */
	int pending;	   /* outstanding c-ares requests */
	int host_tempfail; /* a host lookup failed temporarily */
	struct event *deliver;
	struct dns_query *prev, *next;
};

/* The argument of one host's address lookup. */
struct dns_addr_lookup {
	struct dns_query *q;
	size_t index;
};

static ares_channel dns_channel;
static int dns_ready;
static struct event_base *dns_base;
static struct event *dns_timer;
static struct dns_sock *dns_socks;
static struct dns_query *dns_queries;

/* Loop integration */
static void dns_sock_state(void *data, ares_socket_t fd, int readable,
			   int writable);
static void dns_on_sock(evutil_socket_t fd, short what, void *arg);
static void dns_on_timer(evutil_socket_t fd, short what, void *arg);
static void dns_rearm(void);

/* Queries */
static struct dns_query *dns_query_new(const char *name, int mx, dns_cb cb,
				       void *arg);
static void dns_query_finish(struct dns_query *q);
static void dns_query_free(struct dns_query *q);
static void dns_on_deliver(evutil_socket_t fd, short what, void *arg);
static void dns_fail(struct dns_query *q, enum dns_status status,
		     const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void dns_on_mx(void *arg, int status, int timeouts, unsigned char *abuf,
		      int alen);
static void dns_lookup_all(struct dns_query *q);
static void dns_lookup_addrs(struct dns_query *q, size_t index);
static void dns_on_addrs(void *arg, int status, int timeouts,
			 struct ares_addrinfo *ai);
static void dns_addrs_done(struct dns_query *q);
static int dns_mx_cmp(const void *a, const void *b);
static int dns_parse_literal(const char *host, struct dns_host *h);

static void
dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns_sock **pp, *s;
	short what;

	(void)data;
	for (pp = &dns_socks; (s = *pp) != NULL; pp = &s->next)
		if (s->fd == fd)
			break;
	if (!readable && !writable) {
		if (s) {
			*pp = s->next;
			event_free(s->ev);
			free(s);
		}
		return;
	}
	what = (short)(EV_PERSIST | (readable ? EV_READ : 0) |
		       (writable ? EV_WRITE : 0));
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		s->fd = fd;
		s->next = dns_socks;
		dns_socks = s;
	} else {
		event_free(s->ev);
	}
	s->ev = event_new(dns_base, fd, what, dns_on_sock, NULL);
	if (s->ev == NULL || event_add(s->ev, NULL) == -1)
		fatalx("dns: cannot watch a resolver socket");
}

static void
dns_on_sock(evutil_socket_t fd, short what, void *arg)
{
	(void)arg;
	ares_process_fd(
	    dns_channel, (what & EV_READ) ? (ares_socket_t)fd : ARES_SOCKET_BAD,
	    (what & EV_WRITE) ? (ares_socket_t)fd : ARES_SOCKET_BAD);
	dns_rearm();
}

static void
dns_on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	ares_process_fd(dns_channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_rearm();
}

/* c-ares keeps its own retry and time-out clock; this follows it. */
static void
dns_rearm(void)
{
	struct timeval tv, *tvp;

	if (!dns_ready)
		return;
	tvp = ares_timeout(dns_channel, NULL, &tv);
	if (tvp)
		evtimer_add(dns_timer, tvp);
	else
		evtimer_del(dns_timer);
}

int
dns_init(struct event_base *base, const char *servers, char *err, size_t errlen)
{
	struct ares_options opts;
	char csv[1024];
	size_t i, o = 0;
	int r;

	if (dns_ready) {
		snprintf(err, errlen, "resolver already initialised");
		return -1;
	}
	if ((r = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(r));
		return -1;
	}
	dns_base = base;
	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = dns_sock_state;
	opts.timeout = 3000; /* milliseconds per try with ARES_OPT_TIMEOUTMS */
	opts.tries = 3;
	r = ares_init_options(&dns_channel, &opts,
			      ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS |
				  ARES_OPT_TRIES);
	if (r != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares init: %s", ares_strerror(r));
		return -1;
	}
	/* "127.0.0.1:5353, [::1]:53" → the CSV c-ares wants, no spaces. */
	for (i = 0; servers && servers[i]; i++) {
		if (servers[i] == ' ' || servers[i] == '\t')
			continue;
		if (o + 1 >= sizeof(csv)) {
			snprintf(err, errlen, "[dns] servers: list too long");
			ares_destroy(dns_channel);
			return -1;
		}
		csv[o++] = servers[i];
	}
	csv[o] = '\0';
	if (o > 0 && (r = ares_set_servers_ports_csv(dns_channel, csv)) !=
			 ARES_SUCCESS) {
		snprintf(err, errlen, "[dns] servers '%s': %s", csv,
			 ares_strerror(r));
		ares_destroy(dns_channel);
		return -1;
	}
	dns_timer = evtimer_new(base, dns_on_timer, NULL);
	if (dns_timer == NULL)
		fatalx("dns: evtimer_new failed");
	dns_ready = 1;
	return 0;
}

void
dns_shutdown(void)
{
	struct dns_query *q, *next;
	struct dns_sock *s, *snext;

	if (!dns_ready)
		return;
	/* Detach the queries first: ares_destroy calls every pending
	 * callback with ARES_EDESTRUCTION, and those must find nothing. */
	for (q = dns_queries; q; q = next) {
		next = q->next;
		q->cb = NULL;
	}
	ares_destroy(dns_channel);
	dns_ready = 0;
	for (q = dns_queries; q; q = next) {
		next = q->next;
		dns_query_free(q);
	}
	dns_queries = NULL;
	for (s = dns_socks; s; s = snext) {
		snext = s->next;
		event_free(s->ev);
		free(s);
	}
	dns_socks = NULL;
	event_free(dns_timer);
	dns_timer = NULL;
	ares_library_cleanup();
}

static struct dns_query *
dns_query_new(const char *name, int mx, dns_cb cb, void *arg)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));

	q->cb = cb;
	q->arg = arg;
	q->mx = mx;
	q->res = xcalloc(1, sizeof(*q->res));
	strlcpy(q->name, name, sizeof(q->name));
	q->deliver = evtimer_new(dns_base, dns_on_deliver, q);
	if (q->deliver == NULL)
		fatalx("dns: evtimer_new failed");
	q->next = dns_queries;
	if (dns_queries)
		dns_queries->prev = q;
	dns_queries = q;
	return q;
}

static void
dns_query_free(struct dns_query *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else if (dns_queries == q)
		dns_queries = q->next;
	if (q->next)
		q->next->prev = q->prev;
	event_free(q->deliver);
	free(q->res);
	free(q);
}

/* Schedules the callback for the next loop iteration. */
static void
dns_query_finish(struct dns_query *q)
{
	struct timeval zero = {0, 0};

	evtimer_add(q->deliver, &zero);
}

static void
dns_on_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;

	(void)fd;
	(void)what;
	if (q->cb)
		q->cb(q->res, q->arg);
	dns_query_free(q);
}

static void
dns_fail(struct dns_query *q, enum dns_status status, const char *fmt, ...)
{
	va_list ap;

	q->res->status = status;
	q->res->nhosts = 0;
	va_start(ap, fmt);
	vsnprintf(q->res->error, sizeof(q->res->error), fmt, ap);
	va_end(ap);
	dns_query_finish(q);
}

static int
dns_mx_cmp(const void *a, const void *b)
{
	const struct dns_host *x = a, *y = b;

	return x->pref < y->pref ? -1 : x->pref > y->pref;
}

static void
dns_on_mx(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;
	struct dns_result *res;
	struct ares_mx_reply *mx = NULL, *m;
	size_t n;
	int r;

	(void)timeouts;
	if (q->cb == NULL)
		return; /* shutting down; dns_shutdown frees q */
	q->pending--;
	res = q->res;
	switch (status) {
	case ARES_SUCCESS:
		break;
	case ARES_ENODATA:
		/* RFC 5321 §5.1: no MX records, the domain itself is the
		 * one mail host, with preference 0. */
		res->implicit_mx = 1;
		res->nhosts = 1;
		strlcpy(res->hosts[0].name, q->name,
			sizeof(res->hosts[0].name));
		dns_lookup_all(q);
		return;
	case ARES_ENOTFOUND:
		dns_fail(q, DNS_NOT_FOUND,
			 "Host or domain name not found: "
			 "%s (MX lookup: NXDOMAIN)",
			 q->name);
		return;
	default:
		dns_fail(q, DNS_TEMPFAIL, "MX lookup of %s failed: %s", q->name,
			 ares_strerror(status));
		return;
	}
	if ((r = ares_parse_mx_reply(abuf, alen, &mx)) != ARES_SUCCESS) {
		if (r == ARES_ENODATA) {
			res->implicit_mx = 1;
			res->nhosts = 1;
			strlcpy(res->hosts[0].name, q->name,
				sizeof(res->hosts[0].name));
			dns_lookup_all(q);
			return;
		}
		dns_fail(q, DNS_TEMPFAIL, "bad MX reply for %s: %s", q->name,
			 ares_strerror(r));
		return;
	}
	for (m = mx, n = 0; m; m = m->next) {
		/* RFC 7505 §3: a single MX of "." means no mail is accepted.
		 * c-ares returns the root name as "". */
		if (m->host[0] == '\0' || strcmp(m->host, ".") == 0) {
			ares_free_data(mx);
			dns_fail(q, DNS_NULL_MX,
				 "Domain %s does not accept "
				 "mail (null MX)",
				 q->name);
			return;
		}
		if (n < DNS_MAX_HOSTS) {
			strlcpy(res->hosts[n].name, m->host,
				sizeof(res->hosts[n].name));
			res->hosts[n].pref = m->priority;
			n++;
		}
	}
	ares_free_data(mx);
	if (n == 0) {
		dns_fail(q, DNS_TEMPFAIL, "empty MX answer for %s", q->name);
		return;
	}
	qsort(res->hosts, n, sizeof(res->hosts[0]), dns_mx_cmp);
	res->nhosts = n;
	dns_lookup_all(q);
}

/* Starts the address lookups of every host. c-ares may answer some of
 * them at once (from /etc/hosts, or a failure): the extra reference held
 * across the loop keeps the query from finishing half-started. */
static void
dns_lookup_all(struct dns_query *q)
{
	size_t i;

	q->pending++;
	for (i = 0; i < q->res->nhosts; i++)
		dns_lookup_addrs(q, i);
	if (--q->pending == 0)
		dns_addrs_done(q);
}

/* Starts the A/AAAA lookup of hosts[index]. */
static void
dns_lookup_addrs(struct dns_query *q, size_t index)
{
	struct ares_addrinfo_hints hints;
	struct dns_addr_lookup *l = xmalloc(sizeof(*l));

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	l->q = q;
	l->index = index;
	q->pending++;
	ares_getaddrinfo(dns_channel, q->res->hosts[index].name, NULL, &hints,
			 dns_on_addrs, l);
	dns_rearm();
}

static void
dns_on_addrs(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct dns_addr_lookup *l = arg;
	struct dns_query *q = l->q;
	size_t index = l->index;
	struct dns_host *h;
	struct ares_addrinfo_node *node;

	(void)timeouts;
	free(l);
	if (q->cb == NULL) {
		/* Shutting down; dns_shutdown frees q. */
		if (ai)
			ares_freeaddrinfo(ai);
		return;
	}
	q->pending--;
	h = &q->res->hosts[index];
	if (status == ARES_SUCCESS && ai) {
		for (node = ai->nodes; node && h->naddr < DNS_MAX_ADDRS;
		     node = node->ai_next) {
			if ((node->ai_family != AF_INET &&
			     node->ai_family != AF_INET6) ||
			    node->ai_addrlen > sizeof(h->addr[0]))
				continue;
			memset(&h->addr[h->naddr], 0, sizeof(h->addr[0]));
			memcpy(&h->addr[h->naddr], node->ai_addr,
			       node->ai_addrlen);
			h->addrlen[h->naddr] = (socklen_t)node->ai_addrlen;
			h->naddr++;
		}
	} else if (status != ARES_ENOTFOUND && status != ARES_ENODATA) {
		q->host_tempfail = 1;
	}
	if (ai)
		ares_freeaddrinfo(ai);
	if (q->pending == 0)
		dns_addrs_done(q);
}

/* Every address lookup has answered: drop hosts without addresses. */
static void
dns_addrs_done(struct dns_query *q)
{
	struct dns_result *res = q->res;
	size_t i, n = 0;

	for (i = 0; i < res->nhosts; i++)
		if (res->hosts[i].naddr > 0) {
			if (n != i)
				res->hosts[n] = res->hosts[i];
			n++;
		}
	res->nhosts = n;
	if (n > 0) {
		res->status = DNS_OK;
		dns_query_finish(q);
	} else if (q->host_tempfail) {
		dns_fail(q, DNS_TEMPFAIL,
			 "cannot resolve the mail hosts of "
			 "%s",
			 q->name);
	} else if (res->implicit_mx || !q->mx) {
		/* No MX and no address: the domain takes no mail. */
		dns_fail(q, DNS_NOT_FOUND,
			 "Host or domain name not found: "
			 "%s has no MX and no address",
			 q->name);
	} else {
		/* MX records that point nowhere may be fixed soon. */
		dns_fail(q, DNS_TEMPFAIL, "no address for any MX host of %s",
			 q->name);
	}
}

static int
dns_parse_literal(const char *host, struct dns_host *h)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&h->addr[0];
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&h->addr[0];

	memset(&h->addr[0], 0, sizeof(h->addr[0]));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		h->addrlen[0] = sizeof(*sin);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		h->addrlen[0] = sizeof(*sin6);
	} else {
		return 0;
	}
	h->naddr = 1;
	strlcpy(h->name, host, sizeof(h->name));
	return 1;
}

void
dns_resolve_mx(const char *domain, dns_cb cb, void *arg)
{
	struct dns_query *q = dns_query_new(domain, 1, cb, arg);

	q->pending++;
	ares_query(dns_channel, domain, ns_c_in, ns_t_mx, dns_on_mx, q);
	dns_rearm();
}

void
dns_resolve_host(const char *host, dns_cb cb, void *arg)
{
	struct dns_query *q = dns_query_new(host, 0, cb, arg);

	q->res->nhosts = 1;
	if (dns_parse_literal(host, &q->res->hosts[0])) {
		q->res->status = DNS_OK;
		dns_query_finish(q);
		return;
	}
	strlcpy(q->res->hosts[0].name, host, sizeof(q->res->hosts[0].name));
	dns_lookup_all(q);
}
