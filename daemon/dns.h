/* Asynchronous DNS for outbound mail with c-ares on the daemon's event
 * loop: MX lookup with the A/AAAA fallback of RFC 5321 §5.1 and Null MX
 * detection (RFC 7505), or the addresses of one host (a relay host). */
#ifndef POSTERN_DNS_H
#define POSTERN_DNS_H

#include <stddef.h>
#include <sys/socket.h>

#include <event2/event.h>

#define DNS_MAX_HOSTS 16
#define DNS_MAX_ADDRS 8
#define DNS_NAME_MAX 256

enum dns_status {
	DNS_OK,	       /* hosts[] holds at least one host with addresses */
	DNS_NULL_MX,   /* the domain accepts no mail (RFC 7505) */
	DNS_NOT_FOUND, /* permanent: no such domain, or no mail host */
	DNS_TEMPFAIL,  /* time-out, server failure: try again later */
};

struct dns_host {
	char name[DNS_NAME_MAX];
	unsigned pref;
	size_t naddr;
	struct sockaddr_storage addr[DNS_MAX_ADDRS]; /* port 0 */
	socklen_t addrlen[DNS_MAX_ADDRS];
};

struct dns_result {
	enum dns_status status;
	char error[256]; /* for logs and DSNs when not DNS_OK */
	int implicit_mx; /* no MX: the domain's own address */
	size_t nhosts;
	struct dns_host hosts[DNS_MAX_HOSTS]; /* by preference; hosts without
						 addresses are dropped */
};

typedef void (*dns_cb)(const struct dns_result *res, void *arg);

/* Sets up the resolver on base. servers is "host:port, [v6]:port, ..."
 * (the [dns] servers key) or empty for /etc/resolv.conf. Returns 0, or -1
 * with a message in err. */
int dns_init(struct event_base *base, const char *servers, char *err,
	     size_t errlen);

/* Cancels every query (their callbacks are not called) and frees the
 * resolver. */
void dns_shutdown(void);

/* Looks up where mail for domain goes: MX records ordered by preference,
 * each host's A and AAAA addresses; with no MX record the domain's own
 * addresses (implicit MX). cb runs later on the loop thread, never from
 * inside this call; res is valid only during cb. */
void dns_resolve_mx(const char *domain, dns_cb cb, void *arg);

/* Looks up the A and AAAA addresses of host (an IP literal is returned as
 * is) as a result with one host. */
void dns_resolve_host(const char *host, dns_cb cb, void *arg);

#endif
