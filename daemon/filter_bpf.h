/* The libbpf side of the filter: loads ebpf/postern_filter.bpf.c through its
 * skeleton with every map pinned under <pin_root>/v<ABI>/, attaches it to
 * interfaces with XDP links, and reads and writes its maps. The front end
 * (filter.c) decides when to use it; the unit tests drive it directly. */
#ifndef POSTERN_FILTER_BPF_H
#define POSTERN_FILTER_BPF_H

#include <stddef.h>
#include <stdint.h>

#include "postern_filter.h"

struct filter_bpf;

/* Which XDP mode to ask for: native (driver) first, then generic. */
enum filter_bpf_attach {
	FILTER_BPF_ATTACH_AUTO,
	FILTER_BPF_ATTACH_NATIVE,
	FILTER_BPF_ATTACH_GENERIC,
};

/* The mode an interface ended up in. */
enum filter_bpf_xdp_mode {
	FILTER_BPF_XDP_NONE, /* our program is not attached */
	FILTER_BPF_XDP_NATIVE,
	FILTER_BPF_XDP_GENERIC,
	FILTER_BPF_XDP_OFFLOAD,
};

enum filter_bpf_list {
	FILTER_BPF_ALLOW,
	FILTER_BPF_BAN,
};

/* Loads the program and creates (or reuses) the pinned maps under
 * <pin_root>/v<PF_ABI_VERSION>/; bpffs is mounted on /sys/fs/bpf when
 * pin_root lies below it and nothing is mounted there yet. pin_root NULL
 * loads without pinning (probe, unit tests). Needs CAP_BPF + CAP_NET_ADMIN
 * (root). Returns 0, or -1 with a message in err. */
int filter_bpf_open(struct filter_bpf **fb_r, const char *pin_root, char *err,
		    size_t errlen);

/* Opens the maps that a running (or stopped, still attached) filter pinned
 * under pin_root, without loading anything: for posternctl and the tools.
 * Returns 0, 1 when nothing is pinned there, or -1 with a message. */
int filter_bpf_open_pinned(struct filter_bpf **fb_r, const char *pin_root,
			   char *err, size_t errlen);

/* Loads and unloads the program without pins. Returns 0 when this machine
 * can run the filter, or -1 with the reason in err. */
int filter_bpf_probe(char *err, size_t errlen);

/* Releases everything. keep_attached: links stay attached through their
 * pins (pinned now if they were not); otherwise they are detached and
 * unpinned. Maps stay pinned either way. Sets *fbp to NULL. */
void filter_bpf_close(struct filter_bpf **fbp, int keep_attached);

/* Detaches every pinned link and removes all pins and the pin directory.
 * Returns 0, or -1 with a message in err. */
int filter_bpf_uninstall(const char *pin_root, char *err, size_t errlen);

/* Attaches the program to ifname: reuses (and updates to this program) a
 * link pinned there by an earlier run, or creates one in the requested mode
 * (AUTO: native, else generic). pin: keep a pin so that the program stays
 * attached after the process exits. Returns 0 with the mode in *mode_r, or
 * -1 with a message. */
int filter_bpf_attach(struct filter_bpf *fb, const char *ifname,
		      enum filter_bpf_attach want, int pin,
		      enum filter_bpf_xdp_mode *mode_r, char *err,
		      size_t errlen);

/* Detaches from ifname (and removes its link pin). Returns 0, or -1 with
 * errno ENOENT when this handle has no link there. */
int filter_bpf_detach(struct filter_bpf *fb, const char *ifname);

/* Detaches and unpins links pinned under the pin directory for interfaces
 * not in keep[0..n-1] (left over from an earlier configuration). */
void filter_bpf_detach_stale(struct filter_bpf *fb, const char *const *keep,
			     size_t n);

/* Links held by this handle: count and the i-th interface and mode. */
size_t filter_bpf_link_count(const struct filter_bpf *fb);
const char *filter_bpf_link_get(const struct filter_bpf *fb, size_t i,
				enum filter_bpf_xdp_mode *mode_r);

/* Whether our program (by name) is attached to ifname, and how.
 * Returns FILTER_BPF_XDP_NONE when it is not or the query fails. */
enum filter_bpf_xdp_mode filter_bpf_query(const char *ifname);

const char *filter_bpf_mode_name(enum filter_bpf_xdp_mode mode);

/* The program fd (-1 for a pinned-maps-only handle), for test runs. */
int filter_bpf_prog_fd(const struct filter_bpf *fb);

/* postern_cfg. Return 0, or -1 with errno. */
int filter_bpf_config_set(struct filter_bpf *fb, const struct pf_config *cfg);
int filter_bpf_config_get(struct filter_bpf *fb, struct pf_config *cfg);

/* Exact-key operations on a list. put replaces the value but keeps the hit
 * counter of an existing entry. Return 0, or -1 with errno (del and get:
 * ENOENT when there is no such entry). */
int filter_bpf_list_put(struct filter_bpf *fb, enum filter_bpf_list list,
			const struct pf_lpm_key *key,
			const struct pf_list_value *val);
int filter_bpf_list_del(struct filter_bpf *fb, enum filter_bpf_list list,
			const struct pf_lpm_key *key);
int filter_bpf_list_get(struct filter_bpf *fb, enum filter_bpf_list list,
			const struct pf_lpm_key *key,
			struct pf_list_value *val);

/* The kernel's lookup: the longest entry containing key->addr whose
 * prefix length is at most key->prefixlen (so with the length of a network,
 * a hit is an entry covering all of it). Returns 1 with the value, 0 when
 * nothing matches, -1 on error. */
int filter_bpf_list_lookup(struct filter_bpf *fb, enum filter_bpf_list list,
			   const struct pf_lpm_key *key,
			   struct pf_list_value *val_r);

/* Longest-prefix lookup of one address (16 bytes, IPv4-mapped), as the
 * program does. Returns 1 with the entry's key and value, 0 when nothing
 * matches, -1 on error. key_r may be NULL. */
int filter_bpf_list_match(struct filter_bpf *fb, enum filter_bpf_list list,
			  const uint8_t addr[16], struct pf_lpm_key *key_r,
			  struct pf_list_value *val_r);

/* Calls fn for each entry until it returns non-zero. Returns the number of
 * entries visited, or -1 on error. */
typedef int (*filter_bpf_list_fn)(const struct pf_lpm_key *key,
				  const struct pf_list_value *val, void *arg);
int filter_bpf_list_walk(struct filter_bpf *fb, enum filter_bpf_list list,
			 filter_bpf_list_fn fn, void *arg);

/* Removes every entry of a list. Returns 0, or -1 with errno. */
int filter_bpf_list_clear(struct filter_bpf *fb, enum filter_bpf_list list);

/* Sums the per-CPU counters into out[PF_STAT_MAX]. Returns 0 or -1. */
int filter_bpf_stats(struct filter_bpf *fb, uint64_t out[PF_STAT_MAX]);

/* Calls fn for each tracked source (masked key, state). Returns the count
 * or -1. The LRU may change underneath: best effort, bounded. */
typedef void (*filter_bpf_source_fn)(const uint8_t key[16],
				     const struct pf_source *st, void *arg);
int filter_bpf_sources_walk(struct filter_bpf *fb, filter_bpf_source_fn fn,
			    void *arg);

/* The ring buffer of drop events: an fd to poll for input (-1 when there is
 * none) and a non-blocking drain calling fn per event. consume returns the
 * number of events, or -1. */
typedef void (*filter_bpf_event_fn)(const struct pf_event *ev, void *arg);
int filter_bpf_events_fd(const struct filter_bpf *fb);
int filter_bpf_events_consume(struct filter_bpf *fb, filter_bpf_event_fn fn,
			      void *arg);

#endif
