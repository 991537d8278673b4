/* The one interface through which sessions report abuse (failed logins,
 * unknown recipients, pregreet, smuggling attempts, bad commands). Today it
 * counts and logs; the eBPF filter work (issue 4) turns counts into bans. */
#ifndef POSTERN_ABUSE_H
#define POSTERN_ABUSE_H

#include "server.h"

enum abuse_kind {
	ABUSE_AUTH_FAILURE,       /* wrong password (SMTP AUTH or POP3) */
	ABUSE_UNKNOWN_RECIPIENT,  /* address harvesting */
	ABUSE_PREGREET,           /* talked before the greeting */
	ABUSE_SMUGGLING,          /* bare CR/LF in DATA */
	ABUSE_BAD_COMMANDS,       /* disconnected for too many errors */
};

/* Records one event from peer; account may be NULL. Returns the number of
 * events of this kind from this address in the current window, so that a
 * caller can slow down (e.g. login delays). Loop thread only. */
unsigned abuse_report(struct server *srv, const struct peer *peer,
		      enum abuse_kind kind, const char *account);

#endif
