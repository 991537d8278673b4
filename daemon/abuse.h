/* The one interface through which sessions report abuse (failed logins,
 * unknown recipients, pregreet, smuggling attempts, bad commands). Counts
 * per source and per account within [abuse] window turn into bans in the
 * connection filter (filter.h), longer for each repeat offence. */
#ifndef POSTERN_ABUSE_H
#define POSTERN_ABUSE_H

#include <stddef.h>
#include <stdint.h>

#include "server.h"

enum abuse_kind {
	ABUSE_AUTH_FAILURE,	 /* wrong password (SMTP AUTH or POP3) */
	ABUSE_UNKNOWN_RECIPIENT, /* address harvesting */
	ABUSE_PREGREET,		 /* talked before the greeting */
	ABUSE_SMUGGLING,	 /* bare CR/LF in DATA */
	ABUSE_BAD_COMMANDS,	 /* disconnected for too many errors */
};
#define ABUSE_KINDS 5

/* Records one event from peer; account (the login name tried) may be NULL.
 * A source is the peer's address, an IPv6 one widened to [abuse]
 * ban_ipv6_prefix. When the source reaches the threshold of the kind, or
 * an account its auth_failures_per_account (then every source that failed
 * on that account is banned), the source is banned through srv->filter
 * for ban_time, times ban_time_factor for each earlier ban that ended
 * less than ban_memory ago, at most ban_time_max. Allow-listed sources are
 * only logged. Returns the number of events of this kind from this source
 * in the current window, so that a caller can slow down. Loop thread only;
 * srv->filter may be NULL (counts and logs only). */
unsigned abuse_report(struct server *srv, const struct peer *peer,
		      enum abuse_kind kind, const char *account);

/* Forgets every source and account (tests, shutdown). */
void abuse_reset(void);

/* Replaces the monotonic millisecond clock (tests); NULL restores it. */
void abuse_set_clock(uint64_t (*now_ms)(void));

/* Formats seconds for people: "45s", "10m", "1h30m", "6d23h", "2w". */
void abuse_format_duration(uint64_t seconds, char *buf, size_t len);

#endif
