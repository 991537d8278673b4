/* The connection filter: per-source rate limits on new connections, bans
 * with expiry and an allow list that always wins. It runs in the kernel
 * (XDP, filter_bpf.c) where it can, otherwise in user space at accept();
 * one front for posternd, posternctl and the test tools. */
#ifndef POSTERN_FILTER_H
#define POSTERN_FILTER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "filter_config.h"

#define FILTER_TOP_MAX 10
#define FILTER_STAT_MAX 10 /* = PF_STAT_MAX, same indices */

/* What a handle actually does. */
enum filter_active {
	FILTER_ACTIVE_XDP,	 /* kernel limits; bans in the pinned maps */
	FILTER_ACTIVE_USERSPACE, /* everything at accept() */
	FILTER_ACTIVE_ADMIN,	 /* filter_open_admin: edits bans, no limiter */
};

struct filter;

/* Opens the filter for posternd: mode xdp or auto loads the XDP program,
 * reusing the maps pinned under pin_root (bans and counters survive a
 * restart), sets the limits and allow list, attaches to the interfaces and
 * loads the ban file; auto falls back to user space with a warning, xdp
 * fails. Call as root, before dropping privileges. Returns the handle, or
 * NULL with a message in err. */
struct filter *filter_open(const struct filter_config *cfg, char *err,
			   size_t errlen);

/* Opens the running filter's state for posternctl: the ban file and, when
 * an XDP filter is active, its pinned maps. No program is loaded; bans and
 * allow entries are written where posternd picks them up at once. Returns
 * NULL with a message when there is nothing to manage. */
struct filter *filter_open_admin(const struct filter_config *cfg, char *err,
				 size_t errlen);

/* Applies a reloaded configuration in place: limits, ports, prefixes,
 * allow list, dry run, log interval and (XDP) the interface set. A change
 * of mode, pin_root or ban_file needs close + open. 0, or -1 with err. */
int filter_reconfigure(struct filter *f, const struct filter_config *cfg,
		       char *err, size_t errlen);

/* Flushes the ban file and releases the handle. keep_attached: XDP stays
 * attached (pinned) and keeps enforcing while posternd is down; otherwise
 * it is detached. Maps stay pinned either way. Sets *fp to NULL. */
void filter_close(struct filter **fp, int keep_attached);

enum filter_active filter_active_mode(const struct filter *f);

/* "xdp", "userspace" or "admin". */
const char *filter_mode_name(const struct filter *f);

/* Why the filter is not in XDP mode ("" when it is). */
const char *filter_fallback_reason(const struct filter *f);

enum filter_verdict {
	FILTER_PASS,
	FILTER_PASS_ALLOWED, /* on the allow list: never limited */
	FILTER_DENY_BANNED,
	FILTER_DENY_RATE,
};

/* Details of a verdict for the reply and the log line. */
struct filter_decision {
	enum filter_verdict verdict;
	enum filter_verdict dry_run; /* deny turned into PASS by dry_run */
	int log; /* first deny of this source in log_interval */
	char net[FILTER_NET_STRLEN]; /* the ban (or the address, in XDP
					mode), or the rate-limited source */
	enum filter_reason reason;   /* of the ban */
	uint64_t expires_in_s;	     /* of the ban; 0 = permanent */
};

/* The check at accept(): allow list, bans, and in user-space mode the
 * per-source rate limit. In XDP mode the kernel already limited the rate,
 * but bans are checked again for traffic that bypasses XDP (loopback,
 * other interfaces). Counts the decision. d_r may be NULL. */
enum filter_verdict filter_admit(struct filter *f, const struct sockaddr *sa,
				 struct filter_decision *d_r);

/* Bans net for seconds (0 = permanent), replacing an existing ban of the
 * same network. Returns 0, 1 when the allow list covers net (nothing is
 * banned), or -1 with a message (too broad, list full, I/O). */
int filter_ban(struct filter *f, const struct filter_net *net, uint64_t seconds,
	       enum filter_reason reason, char *err, size_t errlen);

/* Lifts the ban of exactly net. Returns 0, 1 when there is no such ban,
 * or -1 with a message. */
int filter_unban(struct filter *f, const struct filter_net *net, char *err,
		 size_t errlen);

/* Adds net to the allow list until the next open or reconfigure, which
 * restore the configured list (permanent entries belong in [filter]
 * allow). posternctl can do this only while an XDP filter is active.
 * Returns 0, or -1 with a message. */
int filter_allow(struct filter *f, const struct filter_net *net, char *err,
		 size_t errlen);

struct filter_list_info {
	struct filter_net net;
	char text[FILTER_NET_STRLEN];
	enum filter_reason reason;
	uint64_t expires_in_s; /* 0 = permanent */
	uint64_t age_s;	       /* since it was set */
	uint64_t hits;	       /* connections it stopped (or passed) */
};

typedef void (*filter_list_fn)(const struct filter_list_info *info, void *arg);

/* Calls fn for every ban (allow entry) that has not expired. Returns the
 * number listed, or -1. */
int filter_list_bans(struct filter *f, filter_list_fn fn, void *arg);
int filter_list_allow(struct filter *f, filter_list_fn fn, void *arg);

struct filter_source_info {
	char net[FILTER_NET_STRLEN]; /* the source's rate key */
	uint64_t total;		     /* new connections seen */
	uint64_t dropped;	     /* over the limit */
	uint64_t idle_s;	     /* since the last one */
};

struct filter_status {
	const char *mode; /* "xdp", "userspace" */
	char reason[256]; /* why not XDP, or "" */
	int dry_run;
	uint32_t rate, rate_period_s, burst;
	unsigned ipv4_prefix, ipv6_prefix;
	uint16_t ports[FILTER_MAX_PORTS];
	size_t n_ports;
	struct {
		char name[FILTER_IFNAME_LEN];
		const char *xdp; /* "native", "generic", "none" */
	} ifaces[FILTER_MAX_IFACES];
	size_t n_ifaces;
	int have_kernel;		  /* kernel[] is valid (XDP) */
	uint64_t kernel[FILTER_STAT_MAX]; /* XDP counters, PF_STAT_* order */
	int have_admit; /* admit[] is valid (not in posternctl) */
	uint64_t admit[FILTER_STAT_MAX]; /* filter_admit counters */
	size_t n_bans, n_allow;
	struct filter_source_info top[FILTER_TOP_MAX]; /* most dropped */
	size_t n_top;
};

/* Fills st. Returns 0, or -1 with errno. */
int filter_status(struct filter *f, struct filter_status *st);

/* Prints st as "key: value" lines (posternctl filter status). */
void filter_status_print(const struct filter_status *st, FILE *out);

/* "packets", "syn", "passed", "allowed", "dropped_ban", ... */
const char *filter_stat_name(int idx);

/* An fd that becomes readable when there is work for
 * filter_events_consume(): kernel drop events or an edit of the ban file
 * by posternctl. -1 when there is none. Add it to the event loop. */
int filter_events_fd(struct filter *f);

/* Non-blocking: logs drop events (rate-limited lines) and applies ban
 * file edits. Returns the number of items handled, or -1. */
int filter_events_consume(struct filter *f);

/* Call about once a second: drops expired bans, writes pending bans to the
 * ban file, notices edits that inotify missed, forgets idle sources. */
void filter_tick(struct filter *f);

/* Replaces the monotonic clock (tests). now_ns returns CLOCK_MONOTONIC-
 * like nanoseconds; the kernel side keeps using the real clock. */
void filter_set_clock(struct filter *f, uint64_t (*now_ns)(void *arg),
		      void *arg);

#endif
