/* Types and constants shared by the XDP program (postern_filter.bpf.c) and
 * its user-space side (daemon/filter_bpf.c): map keys and values, counter
 * indices, event records. Fixed-width types only; nothing else. */
#ifndef POSTERN_EBPF_FILTER_H
#define POSTERN_EBPF_FILTER_H

#include <linux/types.h>

/* Bump whenever a map definition or a struct below changes: pins live in
 * <pin_root>/v<PF_ABI_VERSION>/ and libbpf refuses to reuse a pin whose
 * key/value size, type or max_entries differ. */
#define PF_ABI_VERSION 1

#define PF_MAX_SOURCES 65536 /* postern_src LRU entries */
#define PF_MAX_LIST 16384    /* entries of each LPM trie */
#define PF_RINGBUF_SIZE (256 * 1024)
#define PF_PORT_WORDS 1024 /* 65536 bits of destination ports */

/* pf_config.flags */
#define PF_F_ENABLED 0x1 /* off: every packet passes, nothing counted */
#define PF_F_DRY_RUN 0x2 /* count and report, but never drop */
#define PF_F_EVENTS 0x4	 /* send drop events to the ring buffer */
#define PF_F_ACTIVE 0x8	 /* a daemon owns these maps in XDP mode */

/* The single value of postern_cfg (key 0), written by the daemon at start
 * and on reload. A reader may see a torn mix for one packet; harmless. */
struct pf_config {
	__u32 flags;
	__u32 v4_prefix; /* 1..32: sources grouped by this prefix */
	__u32 v6_prefix; /* 1..128 */
	__u32 pad;
	__u64 interval_ns;	    /* GCRA emission interval: 1 s / rate */
	__u64 burst_ns;		    /* interval * (burst - 1) */
	__u64 event_gap_ns;	    /* at most one event per source per gap */
	__u64 ports[PF_PORT_WORDS]; /* bit p set: SYNs to port p are limited */
};

/* LPM trie key: prefixlen counts bits of addr, network byte order. IPv4 is
 * stored IPv4-mapped (::ffff:a.b.c.d), so an IPv4 /n is prefixlen 96 + n. */
struct pf_lpm_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Value of postern_ban and postern_allow. Times are CLOCK_MONOTONIC ns
 * (bpf_ktime_get_ns); expires_ns 0 means permanent. */
struct pf_list_value {
	__u64 expires_ns;
	__u64 created_ns;
	__u64 hits;
	__u64 last_event_ns;
	__u32 reason; /* PF_REASON_* */
	__u32 pad;
};

/* Per-source state in postern_src, keyed by the masked 16-byte address.
 * tat is the GCRA "theoretical arrival time". */
struct pf_source {
	__u64 tat;
	__u64 first_ns;
	__u64 last_ns;
	__u64 last_event_ns;
	__u64 syn_total;
	__u64 syn_dropped;
};

/* Ban reasons, stored in pf_list_value.reason. */
enum pf_reason {
	PF_REASON_NONE = 0,
	PF_REASON_MANUAL,
	PF_REASON_AUTH,
	PF_REASON_HARVEST,
	PF_REASON_PREGREET,
	PF_REASON_SMUGGLING,
	PF_REASON_BAD_COMMANDS,
	PF_REASON_RATE,
	PF_REASON_OTHER,
	PF_REASON_MAX,
};

/* Indices of the per-CPU postern_stats counters. */
enum pf_stat {
	PF_STAT_PACKETS = 0, /* every frame seen */
	PF_STAT_SYN,	     /* SYN without ACK to a protected port */
	PF_STAT_PASSED,	     /* such SYNs let through */
	PF_STAT_ALLOWED,     /* ... of which on the allow list */
	PF_STAT_DROP_BAN,
	PF_STAT_DROP_RATE,
	PF_STAT_DRY_RUN, /* would have been dropped (dry run) */
	PF_STAT_NEW_SOURCE,
	PF_STAT_PARSE_ERR,   /* truncated headers: passed */
	PF_STAT_EVENTS_LOST, /* ring buffer full */
	PF_STAT_MAX,
};

/* pf_event.kind */
#define PF_EVENT_RATE 1
#define PF_EVENT_BAN 2

/* One drop report in postern_events. */
struct pf_event {
	__u64 ts_ns;
	__u8 addr[16]; /* source address, IPv4-mapped for IPv4 */
	__u64 count;   /* source's dropped SYNs, or the ban's hits */
	__u32 ifindex;
	__u16 dport; /* host byte order */
	__u8 kind;   /* PF_EVENT_* */
	__u8 dry_run;
};

#endif
