/* make bench-filter: the SYN generator's XDP side. xdpgen runs
 * bench_xdpgen with BPF_PROG_TEST_RUN in live-frames mode on a template SYN
 * (Ethernet, IPv4, TCP with MSS): for each frame it draws a new source port
 * and sequence number, recomputes the TCP checksum and redirects the frame
 * to the veth facing the server, which then receives XDP frames as from a
 * NIC. TARGET_IFINDEX (the server-facing veth) is set at build time
 * (-DTARGET_IFINDEX=N) by the runner. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#ifndef TARGET_IFINDEX
#error "build with -DTARGET_IFINDEX=<ifindex of the server-facing veth>"
#endif

#define TCP_LEN 24 /* header with the MSS option, as xdpgen builds it */

/* Key 0: iterations of busy work per frame, which xdpgen adjusts between
 * runs so that frames leave at a steady rate instead of in bursts at the
 * generator's top speed. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} xdpgen_spin SEC(".maps");

static long
xdpgen_spin_one(__u32 i, void *ctx)
{
	__u64 *x = ctx;

	*x = *x * 6364136223846793005ULL + i;
	return 0;
}

SEC("xdp")
int
bench_xdpgen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct tcphdr *tcp = data + sizeof(struct ethhdr) + sizeof(*ip);
	__u32 r = bpf_get_prandom_u32(), key = 0, *spin;
	__u64 x = r;
	__s64 sum;

	if ((void *)tcp + TCP_LEN > end)
		return XDP_ABORTED;
	/* Pages are recycled with the previous frame's bytes, so every
	 * varying field is written again (RFC 9293 3.1: the checksum covers
	 * a pseudo-header, the TCP header and no data here). */
	tcp->source = bpf_htons(1024 + (r % 64512));
	tcp->seq = bpf_get_prandom_u32();
	tcp->check = 0;
	sum = bpf_csum_diff(0, 0, &ip->saddr, 8,
			    bpf_htons(IPPROTO_TCP) + bpf_htons(TCP_LEN));
	sum = bpf_csum_diff(0, 0, (__be32 *)tcp, TCP_LEN, (__u32)sum);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	tcp->check = (__u16)~sum;
	spin = bpf_map_lookup_elem(&xdpgen_spin, &key);
	if (spin != NULL && *spin > 0)
		bpf_loop(*spin, xdpgen_spin_one, &x, 0);
	return bpf_redirect(TARGET_IFINDEX, 0);
}

char LICENSE[] SEC("license") = "GPL";
