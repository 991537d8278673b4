/* make bench-filter: a bounded SYN flood made of XDP frames. Loads
 * xdpgen.bpf.o and runs it with BPF_PROG_TEST_RUN in live-frames mode (as
 * xdp-trafficgen does): the kernel turns a template SYN into frames, the
 * program varies each one and redirects it to the server's veth, so the
 * server receives the flood as from a NIC, in batches. Runs chunks of
 * --chunk frames until --seconds or --count is reached. With --pps, frames
 * leave evenly at that rate: a calibration measures the cost of a call and
 * of a frame, and each frame then does enough busy work (xdpgen_spin) to
 * fill its share of the time, since a chunk sent at full speed would
 * overrun the receiver's ring at any average rate. Prints one line:
 *   sent=N chunks=N seconds=S pps=R cpu_s=C spin=N
 * Only for the bench's own network namespaces: run it inside one. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#define FRAME_LEN 60	     /* Ethernet minimum without FCS */
#define L3_OFF 14	     /* Ethernet header */
#define L4_OFF (L3_OFF + 20) /* IPv4 header without options */
#define TCP_LEN 24	     /* header with one MSS option */
#define MAX_SECONDS 60	     /* hard bounds, whatever is asked */
#define MAX_COUNT 500000000ULL
#define MAX_CHUNK (1 << 24)
#define DEFAULT_CHUNK (1 << 18)
#define MAX_PPS 100000000ULL
#define NS_PER_S 1000000000ULL

struct gen {
	uint8_t frame[FRAME_LEN];
	uint8_t src_mac[6], dst_mac[6];
	struct in_addr src, dst;
	uint16_t dport;
	uint64_t pps;	/* 0 = as fast as possible */
	double seconds; /* time bound */
	uint64_t count; /* frame bound */
	unsigned chunk; /* frames per BPF_PROG_TEST_RUN call */
	int ifindex;	/* the frames' "ingress" device */
	int prog_fd, spin_fd;
	double call_ns;	 /* set-up of one call (paced runs) */
	double frame_ns; /* one frame without busy work */
	double spin_ns;	 /* one unit of busy work */
};

static volatile sig_atomic_t gen_stop;

static void gen_on_signal(int sig);
static int gen_parse_mac(const char *s, uint8_t mac[6]);
static uint64_t gen_now_ns(void);
static void gen_frame_template(struct gen *g);
static uint64_t gen_call(struct gen *g, uint64_t n, uint32_t spin);
static int gen_calibrate(struct gen *g, uint64_t *sent_r);
static uint32_t gen_spin_for(const struct gen *g, uint64_t n);
static int gen_run(struct gen *g);
static int gen_libbpf_print(enum libbpf_print_level level, const char *fmt,
			    va_list ap);

static void
gen_on_signal(int sig)
{
	(void)sig;
	gen_stop = 1;
}

static int
gen_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	int i;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4],
		   &v[5]) != 6)
		return -1;
	for (i = 0; i < 6; i++) {
		if (v[i] > 0xff)
			return -1;
		mac[i] = (uint8_t)v[i];
	}
	return 0;
}

static uint64_t
gen_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* A SYN as Linux sends it: DF, TTL 64, window 64240, MSS 1460. The IPv4
 * checksum is final (RFC 791 3.1); the program fills in the source port,
 * the sequence number and the TCP checksum of each frame. */
static void
gen_frame_template(struct gen *g)
{
	uint8_t *f = g->frame, *ip = f + L3_OFF, *tcp = f + L4_OFF;
	uint32_t sum = 0;
	int i;

	memset(f, 0, FRAME_LEN);
	memcpy(f, g->dst_mac, 6);
	memcpy(f + 6, g->src_mac, 6);
	f[12] = 0x08; /* ETH_P_IP */
	ip[0] = 0x45;
	ip[3] = 20 + TCP_LEN;
	ip[6] = 0x40; /* DF */
	ip[8] = 64;
	ip[9] = 6; /* TCP */
	memcpy(ip + 12, &g->src, 4);
	memcpy(ip + 16, &g->dst, 4);
	for (i = 0; i < 20; i += 2)
		sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	ip[10] = (uint8_t)(~sum >> 8);
	ip[11] = (uint8_t)~sum;
	tcp[2] = (uint8_t)(g->dport >> 8);
	tcp[3] = (uint8_t)g->dport;
	tcp[12] = (TCP_LEN / 4) << 4;
	tcp[13] = 0x02; /* SYN */
	tcp[14] = 64240 >> 8;
	tcp[15] = 64240 & 0xff;
	tcp[20] = 2; /* MSS */
	tcp[21] = 4;
	tcp[22] = 1460 >> 8;
	tcp[23] = 1460 & 0xff;
}

/* One BPF_PROG_TEST_RUN call of n frames at the given busy work per
 * frame. Returns its duration in ns, or 0 when interrupted or failed
 * (errno set; EINTR for a signal). */
static uint64_t
gen_call(struct gen *g, uint64_t n, uint32_t spin)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts);
	struct xdp_md ctx;
	uint32_t key = 0;
	uint64_t t0;

	if (bpf_map_update_elem(g->spin_fd, &key, &spin, BPF_ANY) < 0)
		return 0;
	memset(&ctx, 0, sizeof(ctx));
	ctx.data_end = FRAME_LEN;
	ctx.ingress_ifindex = (uint32_t)g->ifindex;
	opts.data_in = g->frame;
	opts.data_size_in = FRAME_LEN;
	opts.ctx_in = &ctx;
	opts.ctx_size_in = sizeof(ctx);
	opts.repeat = (int)n;
	opts.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
	opts.batch_size = 64;
	t0 = gen_now_ns();
	if (bpf_prog_test_run_opts(g->prog_fd, &opts) < 0)
		return 0;
	return gen_now_ns() - t0 + 1;
}

/* Paced runs: measures the cost of a call, of a frame without busy work
 * and of one unit of busy work, so that the frames of each call leave
 * evenly at the target rate (a burst at full speed would overrun the
 * receiver's ring at any average rate). 0, or -1 with errno. */
static int
gen_calibrate(struct gen *g, uint64_t *sent_r)
{
	const uint64_t n = 20000, test_spin = 200;
	uint64_t t_call, t_plain, t_spin;

	if ((t_call = gen_call(g, 1, 0)) == 0 ||
	    (t_plain = gen_call(g, n, 0)) == 0 ||
	    (t_spin = gen_call(g, n, test_spin)) == 0)
		return -1;
	*sent_r += 1 + 2 * n;
	g->call_ns = (double)t_call;
	g->frame_ns = (double)(t_plain > t_call ? t_plain - t_call : 1) / n;
	g->spin_ns =
	    (double)(t_spin > t_plain ? t_spin - t_plain : 1) / n / test_spin;
	return 0;
}

/* Busy work per frame so that n frames plus one call's set-up last as
 * long as n frames at the target rate. */
static uint32_t
gen_spin_for(const struct gen *g, uint64_t n)
{
	double want = 1e9 / (double)g->pps - g->call_ns / (double)n;
	double spin = (want - g->frame_ns) / g->spin_ns;

	if (spin <= 0)
		return 0;
	return spin > 1000000 ? 1000000 : (uint32_t)spin;
}

/* Runs chunks until a bound is reached. 0 or -1. */
static int
gen_run(struct gen *g)
{
	struct timespec ts, cpu;
	uint64_t start, now, sent = 0, chunks = 0, due, n, t, left_ns, cap;
	uint64_t limit_ns = (uint64_t)(g->seconds * 1e9);
	uint32_t spin = 0;
	double per_frame;

	start = now = gen_now_ns();
	if (g->pps > 0 && gen_calibrate(g, &sent) < 0)
		goto fail;
	while (!gen_stop && now - start < limit_ns && sent < g->count) {
		n = g->count - sent < g->chunk ? g->count - sent : g->chunk;
		/* The time bound holds within a call too: the last chunk is
		 * cut to what the time left allows at the target rate or,
		 * unpaced, at 5 Mpps (this VM makes 3 to 4). */
		left_ns = limit_ns - (now - start);
		if (g->pps > 0)
			cap = left_ns * g->pps / NS_PER_S + 1;
		else
			cap = left_ns / 200 + 1;
		if (cap < n)
			n = cap;
		if (g->pps > 0)
			spin = gen_spin_for(g, n);
		if ((t = gen_call(g, n, spin)) == 0) {
			if (errno == EINTR)
				break;
			goto fail;
		}
		sent += n;
		chunks++;
		now = gen_now_ns();
		if (g->pps == 0)
			continue;
		/* Learn from this call: what a frame really cost. */
		per_frame =
		    ((double)t - g->call_ns) / (double)n - g->spin_ns * spin;
		if (per_frame > 0)
			g->frame_ns = (g->frame_ns + per_frame) / 2;
		due = start + sent * NS_PER_S / g->pps;
		if (due > start + limit_ns)
			due = start + limit_ns;
		if (due > now) {
			ts.tv_sec = (time_t)(due / 1000000000ULL);
			ts.tv_nsec = (long)(due % 1000000000ULL);
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
					NULL);
			now = gen_now_ns();
		}
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
	printf("sent=%llu chunks=%llu seconds=%.3f pps=%.0f cpu_s=%.3f "
	       "spin=%u\n",
	       (unsigned long long)sent, (unsigned long long)chunks,
	       (double)(now - start) / 1e9,
	       (double)sent * 1e9 / (double)(now > start ? now - start : 1),
	       (double)cpu.tv_sec + (double)cpu.tv_nsec / 1e9, spin);
	return 0;
fail:
	fprintf(stderr, "xdpgen: BPF_PROG_TEST_RUN: %s\n", strerror(errno));
	return -1;
}

static int
gen_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"obj", required_argument, NULL, 'o'},
	    {"ifname", required_argument, NULL, 'i'},
	    {"src-mac", required_argument, NULL, 'm'},
	    {"dst-mac", required_argument, NULL, 'M'},
	    {"src", required_argument, NULL, 's'},
	    {"dst", required_argument, NULL, 'd'},
	    {"dport", required_argument, NULL, 'p'},
	    {"pps", required_argument, NULL, 'r'},
	    {"seconds", required_argument, NULL, 't'},
	    {"count", required_argument, NULL, 'n'},
	    {"chunk", required_argument, NULL, 'c'},
	    {NULL, 0, NULL, 0},
	};
	struct gen g;
	struct sigaction sa;
	struct bpf_object *obj = NULL;
	struct bpf_program *prog;
	struct bpf_map *map;
	const char *path = NULL, *ifname = NULL;
	int ch, have = 0, rc = 1;
	unsigned long v;
	char *end;

	memset(&g, 0, sizeof(g));
	g.seconds = 10;
	g.count = MAX_COUNT;
	g.chunk = DEFAULT_CHUNK;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'o':
			path = optarg;
			have |= 1;
			break;
		case 'i':
			ifname = optarg;
			have |= 2;
			break;
		case 'm':
		case 'M':
			if (gen_parse_mac(optarg, ch == 'm' ? g.src_mac
							    : g.dst_mac) < 0)
				goto usage;
			have |= ch == 'm' ? 4 : 8;
			break;
		case 's':
		case 'd':
			if (inet_pton(AF_INET, optarg,
				      ch == 's' ? &g.src : &g.dst) != 1)
				goto usage;
			have |= ch == 's' ? 16 : 32;
			break;
		case 'p':
			v = strtoul(optarg, &end, 10);
			if (*end != '\0' || v == 0 || v > 65535)
				goto usage;
			g.dport = (uint16_t)v;
			have |= 64;
			break;
		case 'r':
			g.pps = strtoull(optarg, &end, 10);
			if (*end != '\0' || g.pps > MAX_PPS)
				goto usage;
			break;
		case 't':
			g.seconds = strtod(optarg, &end);
			if (*end != '\0' || g.seconds <= 0 ||
			    g.seconds > MAX_SECONDS)
				goto usage;
			break;
		case 'n':
			g.count = strtoull(optarg, &end, 10);
			if (*end != '\0' || g.count == 0 || g.count > MAX_COUNT)
				goto usage;
			break;
		case 'c':
			g.chunk = (unsigned)strtoul(optarg, &end, 10);
			if (*end != '\0' || g.chunk == 0 || g.chunk > MAX_CHUNK)
				goto usage;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc || have != 127)
		goto usage;
	if ((g.ifindex = (int)if_nametoindex(ifname)) == 0) {
		fprintf(stderr, "xdpgen: no interface %s here\n", ifname);
		return 1;
	}
	gen_frame_template(&g);
	libbpf_set_print(gen_libbpf_print);
	obj = bpf_object__open_file(path, NULL);
	if (obj == NULL) {
		fprintf(stderr, "xdpgen: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (bpf_object__load(obj) != 0) {
		fprintf(stderr, "xdpgen: loading %s: %s\n", path,
			strerror(errno));
		goto out;
	}
	prog = bpf_object__find_program_by_name(obj, "bench_xdpgen");
	if (prog == NULL) {
		fprintf(stderr, "xdpgen: no program bench_xdpgen in %s\n",
			path);
		goto out;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = gen_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	g.prog_fd = bpf_program__fd(prog);
	map = bpf_object__find_map_by_name(obj, "xdpgen_spin");
	if (map == NULL) {
		fprintf(stderr, "xdpgen: no map xdpgen_spin in %s\n", path);
		goto out;
	}
	g.spin_fd = bpf_map__fd(map);
	/* Paced: a call a quarter of a second long, or so. */
	if (g.pps > 0 && g.chunk == DEFAULT_CHUNK)
		g.chunk = g.pps / 4 < 10000	  ? 10000
			  : g.pps / 4 > MAX_CHUNK ? MAX_CHUNK
						  : (unsigned)(g.pps / 4);
	if (gen_run(&g) == 0)
		rc = 0;
out:
	bpf_object__close(obj);
	return rc;
usage:
	fprintf(stderr,
		"usage: xdpgen --obj XDPGEN.BPF.O --ifname IF --src-mac MAC "
		"--dst-mac MAC\n"
		"              --src IPV4 --dst IPV4 --dport PORT [--pps N] "
		"[--seconds S (<= %d)]\n"
		"              [--count N] [--chunk N]\n",
		MAX_SECONDS);
	return 2;
}
