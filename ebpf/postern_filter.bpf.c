/* Postern's XDP filter: per-source GCRA rate limit on new TCP connections
 * (SYN without ACK) to the mail ports, an LPM ban list with expiry and an
 * allow list that always wins. Kernel side only; see daemon/filter_bpf.c. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "postern_filter.h"

#define MAX_VLAN_TAGS 2
#define MAX_EXT_HDRS 6

/* if_vlan.h is not UAPI: the 4 bytes after the tag's TPID. */
struct vlan_tag {
	__be16 tci;
	__be16 proto;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pf_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} postern_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PF_MAX_SOURCES);
	__type(key, struct in6_addr);
	__type(value, struct pf_source);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} postern_src SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, PF_MAX_LIST);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* mandatory for LPM tries */
	__type(key, struct pf_lpm_key);
	__type(value, struct pf_list_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} postern_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, PF_MAX_LIST);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pf_lpm_key);
	__type(value, struct pf_list_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} postern_ban SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PF_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} postern_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, PF_RINGBUF_SIZE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} postern_events SEC(".maps");

/* A bounds-checked read position in the frame. */
struct cursor {
	void *pos;
	void *end;
};

/* What the parser found: a TCP SYN (no ACK) and its source. */
struct syn_info {
	struct in6_addr src; /* IPv4-mapped for IPv4 */
	__u16 dport;	     /* host order */
	__u8 is_v4;
};

enum parse_result {
	PARSE_OTHER, /* not a new TCP connection: pass untouched */
	PARSE_SYN,
	PARSE_TRUNCATED, /* counted, then passed (fail open) */
};

static __always_inline void
count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&postern_stats, &idx);

	if (v)
		*v += 1;
}

/* Ethernet plus up to two 802.1Q/802.1ad tags the NIC did not strip. */
static __always_inline int
parse_eth(struct cursor *c, __u16 *proto_r)
{
	struct ethhdr *eth = c->pos;
	__u16 proto;
	int i;

	if ((void *)(eth + 1) > c->end)
		return -1;
	proto = eth->h_proto;
	c->pos = eth + 1;
#pragma unroll
	for (i = 0; i < MAX_VLAN_TAGS; i++) {
		struct vlan_tag *tag = c->pos;

		if (proto != bpf_htons(ETH_P_8021Q) &&
		    proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(tag + 1) > c->end)
			return -1;
		proto = tag->proto;
		c->pos = tag + 1;
	}
	*proto_r = proto;
	return 0;
}

/* IPv4 header with options; non-first fragments carry no TCP header. */
static __always_inline enum parse_result
parse_ipv4(struct cursor *c, struct syn_info *si)
{
	struct iphdr *ip = c->pos;
	__u32 hlen;

	if ((void *)(ip + 1) > c->end)
		return PARSE_TRUNCATED;
	hlen = ip->ihl * 4;
	if (hlen < sizeof(*ip))
		return PARSE_TRUNCATED;
	if (ip->protocol != IPPROTO_TCP)
		return PARSE_OTHER;
	if (ip->frag_off & bpf_htons(0x1fff))
		return PARSE_OTHER;
	if (c->pos + hlen > c->end)
		return PARSE_TRUNCATED;
	si->src.in6_u.u6_addr32[0] = 0;
	si->src.in6_u.u6_addr32[1] = 0;
	si->src.in6_u.u6_addr32[2] = bpf_htonl(0xffff);
	si->src.in6_u.u6_addr32[3] = ip->saddr;
	si->is_v4 = 1;
	c->pos += hlen;
	return PARSE_SYN;
}

/* IPv6 and up to MAX_EXT_HDRS extension headers (hop-by-hop, routing,
 * destination options, fragment). ESP, AH and unknown headers pass. */
static __always_inline enum parse_result
parse_ipv6(struct cursor *c, struct syn_info *si)
{
	struct ipv6hdr *ip6 = c->pos;
	__u8 next;
	int i;

	if ((void *)(ip6 + 1) > c->end)
		return PARSE_TRUNCATED;
	next = ip6->nexthdr;
	si->src = ip6->saddr;
	si->is_v4 = 0;
	c->pos = ip6 + 1;
#pragma unroll
	for (i = 0; i < MAX_EXT_HDRS; i++) {
		__u8 *h = c->pos;

		if (next == IPPROTO_TCP)
			return PARSE_SYN;
		if ((void *)(h + 8) > c->end) {
			if (next == IPPROTO_HOPOPTS ||
			    next == IPPROTO_ROUTING ||
			    next == IPPROTO_DSTOPTS || next == IPPROTO_FRAGMENT)
				return PARSE_TRUNCATED;
			return PARSE_OTHER;
		}
		switch (next) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			next = h[0];
			c->pos = h + (h[1] + 1) * 8;
			break;
		case IPPROTO_FRAGMENT:
			/* Offset in the upper 13 bits of bytes 2-3. */
			if (((h[2] << 8) | h[3]) & 0xfff8)
				return PARSE_OTHER;
			next = h[0];
			c->pos = h + 8;
			break;
		default:
			return PARSE_OTHER;
		}
	}
	return next == IPPROTO_TCP ? PARSE_SYN : PARSE_OTHER;
}

static __always_inline enum parse_result
parse_frame(struct xdp_md *ctx, const struct pf_config *cfg,
	    struct syn_info *si)
{
	struct cursor c = {
	    .pos = (void *)(long)ctx->data,
	    .end = (void *)(long)ctx->data_end,
	};
	enum parse_result r;
	struct tcphdr *tcp;
	__u16 proto;
	__u32 word;

	if (parse_eth(&c, &proto) < 0)
		return PARSE_TRUNCATED;
	if (proto == bpf_htons(ETH_P_IP))
		r = parse_ipv4(&c, si);
	else if (proto == bpf_htons(ETH_P_IPV6))
		r = parse_ipv6(&c, si);
	else
		return PARSE_OTHER;
	if (r != PARSE_SYN)
		return r;
	tcp = c.pos;
	if ((void *)(tcp + 1) > c.end)
		return PARSE_TRUNCATED;
	if (!tcp->syn || tcp->ack)
		return PARSE_OTHER;
	si->dport = bpf_ntohs(tcp->dest);
	word = (si->dport >> 6) & (PF_PORT_WORDS - 1);
	if (!(cfg->ports[word] & (1ULL << (si->dport & 63))))
		return PARSE_OTHER;
	return PARSE_SYN;
}

/* Keeps the first `bits` bits of a 32-bit word in network order. */
static __always_inline __u32
mask_word(__u32 w, __s32 bits)
{
	if (bits >= 32)
		return w;
	if (bits <= 0)
		return 0;
	return w & bpf_htonl(~0U << (32 - bits));
}

/* The LRU key: the source masked to the configured prefix. */
static __always_inline void
source_key(const struct syn_info *si, const struct pf_config *cfg,
	   struct in6_addr *key)
{
	__s32 bits =
	    si->is_v4 ? 96 + (__s32)cfg->v4_prefix : (__s32)cfg->v6_prefix;

	key->in6_u.u6_addr32[0] = mask_word(si->src.in6_u.u6_addr32[0], bits);
	key->in6_u.u6_addr32[1] =
	    mask_word(si->src.in6_u.u6_addr32[1], bits - 32);
	key->in6_u.u6_addr32[2] =
	    mask_word(si->src.in6_u.u6_addr32[2], bits - 64);
	key->in6_u.u6_addr32[3] =
	    mask_word(si->src.in6_u.u6_addr32[3], bits - 96);
}

static __always_inline void
send_event(struct xdp_md *ctx, const struct pf_config *cfg,
	   const struct syn_info *si, __u8 kind, __u64 cnt, __u64 now)
{
	struct pf_event *ev;

	if (!(cfg->flags & PF_F_EVENTS))
		return;
	ev = bpf_ringbuf_reserve(&postern_events, sizeof(*ev), 0);
	if (!ev) {
		count(PF_STAT_EVENTS_LOST);
		return;
	}
	ev->ts_ns = now;
	__builtin_memcpy(ev->addr, &si->src, sizeof(ev->addr));
	ev->count = cnt;
	ev->ifindex = ctx->ingress_ifindex;
	ev->dport = si->dport;
	ev->kind = kind;
	ev->dry_run = (cfg->flags & PF_F_DRY_RUN) ? 1 : 0;
	bpf_ringbuf_submit(ev, 0);
}

/* Returns XDP_DROP unless in dry-run mode, where it counts and passes. */
static __always_inline int
drop(const struct pf_config *cfg, __u32 stat)
{
	count(stat);
	if (cfg->flags & PF_F_DRY_RUN) {
		count(PF_STAT_DRY_RUN);
		return XDP_PASS;
	}
	return XDP_DROP;
}

/* One GCRA step for the source; 1 = over the limit. A lost cmpxchg race
 * admits the packet, so the error is bounded by the number of CPUs. */
static __always_inline int
rate_exceeded(const struct pf_config *cfg, struct pf_source *st, __u64 now)
{
	__u64 old = st->tat, tat = old > now ? old : now;

	if (tat - now > cfg->burst_ns)
		return 1;
	__sync_val_compare_and_swap(&st->tat, old, tat + cfg->interval_ns);
	return 0;
}

SEC("xdp")
int
postern_xdp(struct xdp_md *ctx)
{
	struct pf_list_value *lv;
	struct pf_lpm_key lk;
	struct pf_source *st, fresh;
	struct syn_info si = {};
	struct pf_config *cfg;
	struct in6_addr key;
	enum parse_result r;
	__u32 zero = 0;
	__u64 now;

	cfg = bpf_map_lookup_elem(&postern_cfg, &zero);
	if (!cfg || !(cfg->flags & PF_F_ENABLED))
		return XDP_PASS;
	count(PF_STAT_PACKETS);
	r = parse_frame(ctx, cfg, &si);
	if (r == PARSE_TRUNCATED) {
		count(PF_STAT_PARSE_ERR);
		return XDP_PASS;
	}
	if (r != PARSE_SYN)
		return XDP_PASS;
	count(PF_STAT_SYN);
	now = bpf_ktime_get_ns();
	lk.prefixlen = 128; /* LPM lookups use the full length */
	__builtin_memcpy(lk.addr, &si.src, sizeof(lk.addr));

	/* 1. The allow list wins over everything. */
	lv = bpf_map_lookup_elem(&postern_allow, &lk);
	if (lv && (lv->expires_ns == 0 || lv->expires_ns > now)) {
		__sync_fetch_and_add(&lv->hits, 1);
		count(PF_STAT_ALLOWED);
		count(PF_STAT_PASSED);
		return XDP_PASS;
	}

	/* 2. A ban that has not expired (the longest match decides). */
	lv = bpf_map_lookup_elem(&postern_ban, &lk);
	if (lv && (lv->expires_ns == 0 || lv->expires_ns > now)) {
		__u64 hits = __sync_fetch_and_add(&lv->hits, 1) + 1;

		if (now - lv->last_event_ns >= cfg->event_gap_ns) {
			lv->last_event_ns = now;
			send_event(ctx, cfg, &si, PF_EVENT_BAN, hits, now);
		}
		return drop(cfg, PF_STAT_DROP_BAN);
	}

	/* 3. The per-source token bucket. */
	source_key(&si, cfg, &key);
	st = bpf_map_lookup_elem(&postern_src, &key);
	if (!st) {
		fresh = (struct pf_source){
		    .tat = now + cfg->interval_ns,
		    .first_ns = now,
		    .last_ns = now,
		    .syn_total = 1,
		};
		/* NOEXIST: keep the entry if another CPU just created it. */
		bpf_map_update_elem(&postern_src, &key, &fresh, BPF_NOEXIST);
		count(PF_STAT_NEW_SOURCE);
		count(PF_STAT_PASSED);
		return XDP_PASS;
	}
	__sync_fetch_and_add(&st->syn_total, 1);
	st->last_ns = now;
	if (rate_exceeded(cfg, st, now)) {
		__u64 n = __sync_fetch_and_add(&st->syn_dropped, 1) + 1;

		if (now - st->last_event_ns >= cfg->event_gap_ns) {
			st->last_event_ns = now;
			send_event(ctx, cfg, &si, PF_EVENT_RATE, n, now);
		}
		return drop(cfg, PF_STAT_DROP_RATE);
	}
	count(PF_STAT_PASSED);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
