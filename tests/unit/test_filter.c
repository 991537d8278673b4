/* Unit tests for the filter's user-space side: parsers, the [filter]
 * keys, the GCRA limiter, bans (expiry, CIDR, allow list wins), the ban
 * file shared with posternctl. No BPF here: see test_filter_bpf.c. */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "filter.h"
#include "harness.h"
#include "log.h"
#include "util.h"

#define NS 1000000000ULL

static uint64_t fake_now = 1000 * NS;
static char tmpdir[] = "/tmp/test_filter.XXXXXX";

static uint64_t
fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

/* An AF_INET or AF_INET6 sockaddr from text. */
static const struct sockaddr *
sa(const char *ip)
{
	static struct sockaddr_storage ss[4];
	static int next;
	struct sockaddr_storage *s = &ss[next++ % 4];

	memset(s, 0, sizeof(*s));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)s;

		s6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, ip, &s6->sin6_addr) != 1)
			abort();
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)s;

		s4->sin_family = AF_INET;
		if (inet_pton(AF_INET, ip, &s4->sin_addr) != 1)
			abort();
	}
	return (const struct sockaddr *)s;
}

static struct filter_net
net(const char *s)
{
	struct filter_net n;
	const char *err;

	if (filter_parse_net(s, &n, &err) < 0)
		abort();
	return n;
}

/* A user-space filter on the fake clock: rate/s, burst, optional file. */
static struct filter *
open_user(uint32_t rate, uint32_t burst, const char *ban_file)
{
	struct filter_config cfg;
	struct filter *f;
	char err[256];

	filter_config_defaults(&cfg);
	cfg.mode = FILTER_MODE_USERSPACE;
	cfg.rate = rate;
	cfg.burst = burst;
	if (ban_file != NULL)
		strlcpy(cfg.ban_file, ban_file, sizeof(cfg.ban_file));
	f = filter_open(&cfg, err, sizeof(err));
	if (f == NULL) {
		fprintf(stderr, "filter_open: %s\n", err);
		abort();
	}
	filter_set_clock(f, fake_clock, NULL);
	return f;
}

static void
test_parse_net(void)
{
	static const struct {
		const char *in;
		const char *out; /* NULL: must be refused */
	} cases[] = {
	    {"192.0.2.7", "192.0.2.7/32"},
	    {"192.0.2.7/24", "192.0.2.0/24"},
	    {"192.0.2.0/24", "192.0.2.0/24"},
	    {"198.51.100.255/31", "198.51.100.254/31"},
	    {"0.0.0.0/0", "0.0.0.0/0"},
	    {"2001:db8::1", "2001:db8::1/128"},
	    {"2001:DB8::/32", "2001:db8::/32"},
	    {"2001:db8:1:2:3:4:5:6/64", "2001:db8:1:2::/64"},
	    {"2001:db8::ff/121", "2001:db8::80/121"},
	    {"::ffff:192.0.2.1", "192.0.2.1/32"},
	    {"::1", "::1/128"},
	    {"::/0", "::/0"},
	    {"", NULL},
	    {"/24", NULL},
	    {"192.0.2.1/", NULL},
	    {"192.0.2.1/33", NULL},
	    {"192.0.2.1/-1", NULL},
	    {"192.0.2.1/+1", NULL},
	    {"192.0.2.1/24/8", NULL},
	    {"192.0.2.1/0x10", NULL},
	    {"192.0.2", NULL},
	    {"256.0.0.1", NULL},
	    {" 192.0.2.1", NULL},
	    {"192.0.2.1 ", NULL},
	    {"2001:db8::/129", NULL},
	    {"2001:db8:::1", NULL},
	    {"example.org", NULL},
	    {"192.0.2.1/99999999999999999999999", NULL},
	};
	char out[FILTER_NET_STRLEN];
	struct filter_net n;
	const char *err;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = filter_parse_net(cases[i].in, &n, &err);

		if (cases[i].out == NULL) {
			if (rc != -1)
				fprintf(stderr, "  accepted \"%s\"\n",
					cases[i].in);
			CHECK(rc == -1);
			continue;
		}
		CHECK(rc == 0);
		if (rc != 0) {
			fprintf(stderr, "  refused \"%s\": %s\n", cases[i].in,
				err);
			continue;
		}
		filter_format_net(&n, out, sizeof(out));
		CHECK_STR(out, cases[i].out);
	}
}

static void
test_parse_duration(void)
{
	static const struct {
		const char *in;
		int ok;
		uint64_t s;
	} cases[] = {
	    {"90", 1, 90},
	    {"30s", 1, 30},
	    {"10m", 1, 600},
	    {"2h", 1, 7200},
	    {"7d", 1, 604800},
	    {"1w", 1, 604800},
	    {"0", 1, 0},
	    {"forever", 1, 0},
	    {"permanent", 1, 0},
	    {"", 0, 0},
	    {"s", 0, 0},
	    {"10x", 0, 0},
	    {"-5", 0, 0},
	    {"1.5h", 0, 0},
	    {"10 m", 0, 0},
	    {"101y", 0, 0},
	    {"99999999999w", 0, 0},
	};
	const char *err;
	uint64_t v;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = filter_parse_duration(cases[i].in, &v, &err);

		CHECK(rc == (cases[i].ok ? 0 : -1));
		if (rc == 0 && cases[i].ok)
			CHECK(v == cases[i].s);
	}
}

static void
test_parse_rate(void)
{
	static const struct {
		const char *in;
		int ok;
		uint32_t n, period;
	} cases[] = {
	    {"10", 1, 10, 1},  {"10/s", 1, 10, 1},	{"600/min", 1, 600, 60},
	    {"5/m", 1, 5, 60}, {"100/h", 1, 100, 3600}, {"1/hour", 1, 1, 3600},
	    {"0", 0, 0, 0},    {"", 0, 0, 0},		{"/s", 0, 0, 0},
	    {"10/d", 0, 0, 0}, {"10/", 0, 0, 0},	{"2000000", 0, 0, 0},
	    {"ten", 0, 0, 0},
	};
	uint32_t n, p;
	const char *err;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = filter_parse_rate(cases[i].in, &n, &p, &err);

		CHECK(rc == (cases[i].ok ? 0 : -1));
		if (rc == 0 && cases[i].ok)
			CHECK(n == cases[i].n && p == cases[i].period);
	}
}

static void
test_config_set(void)
{
	static const struct {
		const char *key, *value;
		int ok;
	} cases[] = {
	    {"mode", "auto", 1},
	    {"mode", "xdp", 1},
	    {"mode", "userspace", 1},
	    {"mode", "XDP", 0},
	    {"xdp_attach", "native", 1},
	    {"xdp_attach", "hw", 0},
	    {"interfaces", "eth0, eth1", 1},
	    {"interfaces", "a/b", 0},
	    {"interfaces", "averyveryverylongname", 0},
	    {"rate", "20/s", 1},
	    {"rate", "fast", 0},
	    {"burst", "40", 1},
	    {"burst", "0", 0},
	    {"ipv4_prefix", "24", 1},
	    {"ipv4_prefix", "33", 0},
	    {"ipv4_prefix", "4", 0},
	    {"ipv6_prefix", "48", 1},
	    {"ipv6_prefix", "129", 0},
	    {"ports", "25,2525", 1},
	    {"ports", "25,0", 0},
	    {"ports", "70000", 0},
	    {"allow", "10.0.0.0/8, 2001:db8::/32", 1},
	    {"allow", "10.0.0.0/33", 0},
	    {"pin_root", "/sys/fs/bpf/x", 1},
	    {"pin_root", "relative", 0},
	    {"ban_file", "/var/lib/postern/bans", 1},
	    {"ban_file", "bans", 0},
	    {"keep_attached", "yes", 1},
	    {"keep_attached", "maybe", 0},
	    {"dry_run", "off", 1},
	    {"log_interval", "5s", 1},
	    {"log_interval", "0", 0},
	    {"max_sources", "1000", 1},
	    {"max_sources", "1", 0},
	    {"nonsense", "1", 0},
	};
	struct filter_config cfg;
	const char *err;
	char out[FILTER_NET_STRLEN];
	size_t i;

	filter_config_defaults(&cfg);
	CHECK(cfg.mode == FILTER_MODE_AUTO && cfg.rate == 10 &&
	      cfg.burst == 20 && cfg.ipv4_prefix == 32 &&
	      cfg.ipv6_prefix == 64 && cfg.n_ports == 5 &&
	      cfg.n_interfaces == 0);
	CHECK_STR(cfg.pin_root, "/sys/fs/bpf/postern");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err = NULL;
		int rc =
		    filter_config_set(&cfg, cases[i].key, cases[i].value, &err);

		if (rc != (cases[i].ok ? 0 : -1))
			fprintf(stderr, "  %s = %s: rc %d\n", cases[i].key,
				cases[i].value, rc);
		CHECK(rc == (cases[i].ok ? 0 : -1));
		if (rc < 0)
			CHECK(err != NULL && err[0] != '\0');
	}
	/* Values after the table: last good assignment wins, bad ones
	 * changed nothing. */
	CHECK(cfg.mode == FILTER_MODE_USERSPACE);
	CHECK(cfg.n_interfaces == 2 && strcmp(cfg.interfaces[1], "eth1") == 0);
	CHECK(cfg.rate == 20 && cfg.rate_period_s == 1 && cfg.burst == 40);
	CHECK(cfg.ipv4_prefix == 24 && cfg.ipv6_prefix == 48);
	CHECK(cfg.n_ports == 2 && cfg.ports[1] == 2525);
	CHECK(cfg.n_allow == 2);
	filter_format_net(&cfg.allow[1], out, sizeof(out));
	CHECK_STR(out, "2001:db8::/32");
	CHECK(cfg.keep_attached == 1 && cfg.dry_run == 0);
	CHECK(cfg.log_interval_ms == 5000 && cfg.max_sources == 1000);
	CHECK(filter_config_add_port(&cfg, 2525) == 0 && cfg.n_ports == 2);
	CHECK(filter_config_add_port(&cfg, 1100) == 0 && cfg.n_ports == 3);
}

static void
test_rate_limit(void)
{
	struct filter *f = open_user(1, 3, NULL);
	struct filter_decision d;
	int i;

	CHECK_STR(filter_mode_name(f), "userspace");
	CHECK_STR(filter_fallback_reason(f), "mode = userspace");
	/* Burst 3, then limited; the first deny is flagged for the log. */
	for (i = 0; i < 3; i++)
		CHECK(filter_admit(f, sa("192.0.2.1"), &d) == FILTER_PASS);
	CHECK(filter_admit(f, sa("192.0.2.1"), &d) == FILTER_DENY_RATE);
	CHECK(d.log == 1);
	CHECK_STR(d.net, "192.0.2.1/32");
	CHECK(filter_admit(f, sa("192.0.2.1"), &d) == FILTER_DENY_RATE);
	CHECK(d.log == 0);
	/* Another source is not affected. */
	CHECK(filter_admit(f, sa("198.51.100.1"), &d) == FILTER_PASS);
	/* A dual-stack socket's view of the same IPv4 peer shares it. */
	CHECK(filter_admit(f, sa("::ffff:192.0.2.1"), &d) == FILTER_DENY_RATE);
	/* One token per second comes back. */
	fake_now += NS;
	CHECK(filter_admit(f, sa("192.0.2.1"), &d) == FILTER_PASS);
	CHECK(filter_admit(f, sa("192.0.2.1"), &d) == FILTER_DENY_RATE);
	/* After a long pause, a full burst again. */
	fake_now += 10 * NS;
	for (i = 0; i < 3; i++)
		CHECK(filter_admit(f, sa("192.0.2.1"), &d) == FILTER_PASS);
	CHECK(filter_admit(f, sa("192.0.2.1"), &d) == FILTER_DENY_RATE);
	/* Loopback is always allowed. */
	for (i = 0; i < 10; i++)
		CHECK(filter_admit(f, sa("127.0.0.1"), &d) ==
		      FILTER_PASS_ALLOWED);
	CHECK(filter_admit(f, sa("::1"), &d) == FILTER_PASS_ALLOWED);
	filter_close(&f, 0);
	CHECK(f == NULL);
}

static void
test_rate_prefixes(void)
{
	struct filter_config cfg;
	struct filter *f;
	char err[256];

	filter_config_defaults(&cfg);
	cfg.mode = FILTER_MODE_USERSPACE;
	cfg.rate = 1;
	cfg.rate_period_s = 60;
	cfg.burst = 2;
	cfg.ipv4_prefix = 24;
	f = filter_open(&cfg, err, sizeof(err));
	CHECK(f != NULL);
	if (f == NULL)
		return;
	filter_set_clock(f, fake_clock, NULL);
	/* 192.0.2.0/24 is one source; IPv6 by /64. */
	CHECK(filter_admit(f, sa("192.0.2.1"), NULL) == FILTER_PASS);
	CHECK(filter_admit(f, sa("192.0.2.200"), NULL) == FILTER_PASS);
	CHECK(filter_admit(f, sa("192.0.2.99"), NULL) == FILTER_DENY_RATE);
	CHECK(filter_admit(f, sa("192.0.3.1"), NULL) == FILTER_PASS);
	CHECK(filter_admit(f, sa("2001:db8::1"), NULL) == FILTER_PASS);
	CHECK(filter_admit(f, sa("2001:db8::ffff:2"), NULL) == FILTER_PASS);
	CHECK(filter_admit(f, sa("2001:db8::3"), NULL) == FILTER_DENY_RATE);
	CHECK(filter_admit(f, sa("2001:db8:0:1::1"), NULL) == FILTER_PASS);
	/* A rate per minute: one more after 60 s, not after 30 s. */
	fake_now += 30 * NS;
	CHECK(filter_admit(f, sa("192.0.2.1"), NULL) == FILTER_DENY_RATE);
	fake_now += 30 * NS;
	CHECK(filter_admit(f, sa("192.0.2.1"), NULL) == FILTER_PASS);
	filter_close(&f, 0);
}

struct collected {
	char text[8][FILTER_NET_STRLEN];
	struct filter_list_info info[8];
	int n;
};

static void
collect(const struct filter_list_info *info, void *arg)
{
	struct collected *c = arg;

	if (c->n < 8) {
		strlcpy(c->text[c->n], info->text, sizeof(c->text[0]));
		c->info[c->n] = *info;
	}
	c->n++;
}

static void
test_bans(void)
{
	struct filter *f = open_user(100, 100, NULL);
	struct filter_decision d;
	struct filter_net n;
	struct collected c;
	char err[256];

	n = net("192.0.2.0/24");
	CHECK(filter_ban(f, &n, 60, FILTER_REASON_AUTH, err, sizeof(err)) == 0);
	CHECK(filter_admit(f, sa("192.0.2.5"), &d) == FILTER_DENY_BANNED);
	CHECK_STR(d.net, "192.0.2.0/24");
	CHECK(d.reason == FILTER_REASON_AUTH && d.expires_in_s == 60);
	CHECK(d.log == 1);
	CHECK(filter_admit(f, sa("192.0.2.5"), &d) == FILTER_DENY_BANNED);
	CHECK(d.log == 0);
	CHECK(filter_admit(f, sa("192.0.3.5"), &d) == FILTER_PASS);
	/* Expiry. */
	fake_now += 59 * NS;
	CHECK(filter_admit(f, sa("192.0.2.6"), &d) == FILTER_DENY_BANNED);
	CHECK(d.expires_in_s == 1);
	fake_now += 2 * NS;
	CHECK(filter_admit(f, sa("192.0.2.6"), &d) == FILTER_PASS);
	memset(&c, 0, sizeof(c));
	CHECK(filter_list_bans(f, collect, &c) == 0);
	filter_tick(f);

	/* Permanent bans, IPv6, unban. */
	n = net("2001:db8:1::/48");
	CHECK(filter_ban(f, &n, 0, FILTER_REASON_MANUAL, err, sizeof(err)) ==
	      0);
	fake_now += 1000000 * NS;
	CHECK(filter_admit(f, sa("2001:db8:1:2::3"), &d) == FILTER_DENY_BANNED);
	CHECK(d.expires_in_s == 0 && d.reason == FILTER_REASON_MANUAL);
	memset(&c, 0, sizeof(c));
	CHECK(filter_list_bans(f, collect, &c) == 1);
	CHECK_STR(c.text[0], "2001:db8:1::/48");
	CHECK(c.info[0].hits == 1 && c.info[0].expires_in_s == 0);
	CHECK(filter_unban(f, &n, err, sizeof(err)) == 0);
	CHECK(filter_unban(f, &n, err, sizeof(err)) == 1);
	CHECK(filter_admit(f, sa("2001:db8:1:2::3"), &d) == FILTER_PASS);

	/* Too broad; loopback is never banned. */
	n = net("10.0.0.0/7");
	CHECK(filter_ban(f, &n, 60, FILTER_REASON_MANUAL, err, sizeof(err)) ==
	      -1);
	n = net("2001::/15");
	CHECK(filter_ban(f, &n, 60, FILTER_REASON_MANUAL, err, sizeof(err)) ==
	      -1);
	n = net("127.0.0.1");
	CHECK(filter_ban(f, &n, 60, FILTER_REASON_AUTH, err, sizeof(err)) == 1);
	CHECK(filter_admit(f, sa("127.0.0.1"), &d) == FILTER_PASS_ALLOWED);

	/* The allow list beats a ban that covers it. */
	n = net("198.51.100.9");
	CHECK(filter_allow(f, &n, err, sizeof(err)) == 0);
	n = net("198.51.100.0/24");
	CHECK(filter_ban(f, &n, 0, FILTER_REASON_MANUAL, err, sizeof(err)) ==
	      0);
	CHECK(filter_admit(f, sa("198.51.100.9"), &d) == FILTER_PASS_ALLOWED);
	CHECK(filter_admit(f, sa("198.51.100.8"), &d) == FILTER_DENY_BANNED);
	n = net("198.51.100.9/32");
	CHECK(filter_ban(f, &n, 0, FILTER_REASON_MANUAL, err, sizeof(err)) ==
	      1);

	/* The longest match decides (as in the kernel's trie): an expired
	 * /25 hides the /24 until the next tick removes it. */
	n = net("198.51.100.128/25");
	CHECK(filter_ban(f, &n, 5, FILTER_REASON_AUTH, err, sizeof(err)) == 0);
	fake_now += 6 * NS;
	CHECK(filter_admit(f, sa("198.51.100.130"), &d) == FILTER_PASS);
	filter_tick(f);
	CHECK(filter_admit(f, sa("198.51.100.130"), &d) == FILTER_DENY_BANNED);
	CHECK_STR(d.net, "198.51.100.0/24");
	filter_close(&f, 0);
}

static void
test_dry_run_and_status(void)
{
	struct filter_config cfg;
	struct filter_status st;
	struct filter_decision d;
	struct filter_net n;
	struct filter *f;
	char err[256];
	int i;

	filter_config_defaults(&cfg);
	cfg.mode = FILTER_MODE_USERSPACE;
	cfg.rate = 1;
	cfg.burst = 1;
	cfg.dry_run = 1;
	f = filter_open(&cfg, err, sizeof(err));
	CHECK(f != NULL);
	if (f == NULL)
		return;
	filter_set_clock(f, fake_clock, NULL);
	CHECK(filter_admit(f, sa("192.0.2.1"), &d) == FILTER_PASS);
	CHECK(filter_admit(f, sa("192.0.2.1"), &d) == FILTER_PASS);
	CHECK(d.dry_run == FILTER_DENY_RATE);
	n = net("192.0.2.2");
	CHECK(filter_ban(f, &n, 0, FILTER_REASON_MANUAL, err, sizeof(err)) ==
	      0);
	CHECK(filter_admit(f, sa("192.0.2.2"), &d) == FILTER_PASS);
	CHECK(d.dry_run == FILTER_DENY_BANNED);
	filter_close(&f, 0);

	f = open_user(1, 2, NULL);
	for (i = 0; i < 5; i++)
		filter_admit(f, sa("192.0.2.1"), NULL);
	filter_admit(f, sa("198.51.100.1"), NULL);
	filter_admit(f, sa("127.0.0.1"), NULL);
	n = net("203.0.113.0/24");
	filter_ban(f, &n, 0, FILTER_REASON_MANUAL, err, sizeof(err));
	filter_admit(f, sa("203.0.113.1"), NULL);
	CHECK(filter_status(f, &st) == 0);
	CHECK_STR(st.mode, "userspace");
	CHECK(!st.have_kernel);
	CHECK(st.admit[1] == 8); /* syn */
	CHECK(st.admit[2] == 4); /* passed */
	CHECK(st.admit[3] == 1); /* allowed */
	CHECK(st.admit[4] == 1); /* dropped_ban */
	CHECK(st.admit[5] == 3); /* dropped_rate */
	CHECK(st.n_bans == 1 && st.n_allow == 2);
	CHECK(st.n_top == 2);
	CHECK_STR(st.top[0].net, "192.0.2.1/32");
	CHECK(st.top[0].total == 5 && st.top[0].dropped == 3);
	CHECK_STR(filter_stat_name(5), "dropped_rate");
	filter_close(&f, 0);
}

static void
test_source_table_full(void)
{
	struct filter_config cfg;
	struct filter *f;
	char err[256], ip[32];
	int i, passed = 0;

	filter_config_defaults(&cfg);
	cfg.mode = FILTER_MODE_USERSPACE;
	cfg.rate = 1;
	cfg.burst = 2;
	cfg.max_sources = 16;
	f = filter_open(&cfg, err, sizeof(err));
	CHECK(f != NULL);
	if (f == NULL)
		return;
	filter_set_clock(f, fake_clock, NULL);
	/* A spoofed-source flood churns the table; every new source passes
	 * and the table never grows past its size. */
	for (i = 0; i < 1000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 250, i % 250);
		passed += filter_admit(f, sa(ip), NULL) == FILTER_PASS;
		if (i % 100 == 0)
			fake_now += NS / 10;
	}
	CHECK(passed == 1000);
	/* The limiter still limits a hot source afterwards. */
	CHECK(filter_admit(f, sa("192.0.2.1"), NULL) == FILTER_PASS);
	CHECK(filter_admit(f, sa("192.0.2.1"), NULL) == FILTER_PASS);
	CHECK(filter_admit(f, sa("192.0.2.1"), NULL) == FILTER_DENY_RATE);
	filter_close(&f, 0);
}

static void
test_reconfigure(void)
{
	struct filter_config cfg;
	struct filter_net n;
	struct filter *f;
	const char *e;
	char err[256];
	int i;

	filter_config_defaults(&cfg);
	cfg.mode = FILTER_MODE_USERSPACE;
	cfg.rate = 1;
	cfg.burst = 2;
	f = filter_open(&cfg, err, sizeof(err));
	CHECK(f != NULL);
	if (f == NULL)
		return;
	filter_set_clock(f, fake_clock, NULL);
	n = net("192.0.2.50");
	CHECK(filter_allow(f, &n, err, sizeof(err)) == 0);
	for (i = 0; i < 5; i++)
		CHECK(filter_admit(f, sa("192.0.2.50"), NULL) ==
		      FILTER_PASS_ALLOWED);
	CHECK(filter_admit(f, sa("192.0.2.1"), NULL) == FILTER_PASS);
	CHECK(filter_admit(f, sa("192.0.2.1"), NULL) == FILTER_PASS);
	CHECK(filter_admit(f, sa("192.0.2.1"), NULL) == FILTER_DENY_RATE);
	/* A larger burst and a configured allow entry; the run-time one is
	 * gone. Mode changes need a restart. */
	cfg.burst = 10;
	CHECK(filter_config_set(&cfg, "allow", "198.51.100.0/24", &e) == 0);
	CHECK(filter_reconfigure(f, &cfg, err, sizeof(err)) == 0);
	for (i = 0; i < 7; i++)
		CHECK(filter_admit(f, sa("192.0.2.1"), NULL) == FILTER_PASS);
	CHECK(filter_admit(f, sa("192.0.2.50"), NULL) == FILTER_PASS);
	CHECK(filter_admit(f, sa("198.51.100.7"), NULL) == FILTER_PASS_ALLOWED);
	/* Bans inside an allowed network are refused; wider ones are not. */
	n = net("198.51.100.7");
	CHECK(filter_ban(f, &n, 0, FILTER_REASON_AUTH, err, sizeof(err)) == 1);
	n = net("198.51.0.0/16");
	CHECK(filter_ban(f, &n, 0, FILTER_REASON_AUTH, err, sizeof(err)) == 0);
	CHECK(filter_admit(f, sa("198.51.100.7"), NULL) == FILTER_PASS_ALLOWED);
	CHECK(filter_admit(f, sa("198.51.99.7"), NULL) == FILTER_DENY_BANNED);
	cfg.mode = FILTER_MODE_XDP;
	CHECK(filter_reconfigure(f, &cfg, err, sizeof(err)) == -1);
	CHECK(strstr(err, "restart") != NULL);
	filter_close(&f, 0);
}

static int
file_contains(const char *path, const char *needle)
{
	char buf[4096];
	FILE *fp = fopen(path, "r");
	size_t n;

	if (fp == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

static void
test_ban_file(void)
{
	struct filter_config cfg;
	struct filter *f, *admin;
	struct filter_net n;
	struct collected c;
	char path[256], err[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/state/bans", tmpdir);
	/* Bans survive close + open (the daemon's restart). */
	f = open_user(100, 100, path);
	n = net("192.0.2.7");
	CHECK(filter_ban(f, &n, 3600, FILTER_REASON_AUTH, err, sizeof(err)) ==
	      0);
	filter_tick(f); /* writes the file */
	CHECK(file_contains(path, "192.0.2.7/32 "));
	CHECK(file_contains(path, " auth\n"));
	n = net("2001:db8::/64");
	CHECK(filter_ban(f, &n, 0, FILTER_REASON_HARVEST, err, sizeof(err)) ==
	      0);
	filter_close(&f, 0); /* flushes pending */
	CHECK(file_contains(path, "2001:db8::/64 0 "));
	f = open_user(100, 100, path);
	CHECK(filter_admit(f, sa("192.0.2.7"), NULL) == FILTER_DENY_BANNED);
	CHECK(filter_admit(f, sa("2001:db8::99"), NULL) == FILTER_DENY_BANNED);

	/* posternctl: an admin handle edits the file; the daemon follows
	 * through its event fd at once. */
	filter_config_defaults(&cfg);
	strlcpy(cfg.ban_file, path, sizeof(cfg.ban_file));
	snprintf(cfg.pin_root, sizeof(cfg.pin_root), "%s/nopins", tmpdir);
	admin = filter_open_admin(&cfg, err, sizeof(err));
	CHECK(admin != NULL);
	if (admin == NULL) {
		fprintf(stderr, "  admin: %s\n", err);
		filter_close(&f, 0);
		return;
	}
	CHECK_STR(filter_mode_name(admin), "admin");
	n = net("127.0.0.2");
	CHECK(filter_ban(admin, &n, 60, FILTER_REASON_MANUAL, err,
			 sizeof(err)) == 1);
	memset(&c, 0, sizeof(c));
	CHECK(filter_list_allow(admin, collect, &c) == 2);
	CHECK(filter_events_fd(f) >= 0);
	n = net("203.0.113.0/24");
	CHECK(filter_ban(admin, &n, 600, FILTER_REASON_MANUAL, err,
			 sizeof(err)) == 0);
	CHECK(filter_admit(f, sa("203.0.113.9"), NULL) == FILTER_PASS);
	CHECK(filter_events_consume(f) >= 1);
	CHECK(filter_admit(f, sa("203.0.113.9"), NULL) == FILTER_DENY_BANNED);
	n = net("192.0.2.7");
	CHECK(filter_unban(admin, &n, err, sizeof(err)) == 0);
	CHECK(filter_unban(admin, &n, err, sizeof(err)) == 1);
	filter_events_consume(f);
	CHECK(filter_admit(f, sa("192.0.2.7"), NULL) == FILTER_PASS);
	/* Without the event fd, the next tick notices. */
	n = net("198.51.100.0/24");
	CHECK(filter_ban(admin, &n, 600, FILTER_REASON_MANUAL, err,
			 sizeof(err)) == 0);
	filter_tick(f);
	CHECK(filter_admit(f, sa("198.51.100.1"), NULL) == FILTER_DENY_BANNED);
	/* The admin lists what the file holds. */
	memset(&c, 0, sizeof(c));
	CHECK(filter_list_bans(admin, collect, &c) == 3);
	/* A daemon ban made meanwhile is merged, not lost, when both
	 * write. */
	n = net("192.0.2.99");
	CHECK(filter_ban(f, &n, 600, FILTER_REASON_AUTH, err, sizeof(err)) ==
	      0);
	n = net("192.0.2.98");
	CHECK(filter_ban(admin, &n, 600, FILTER_REASON_MANUAL, err,
			 sizeof(err)) == 0);
	filter_events_consume(f);
	filter_tick(f);
	CHECK(filter_admit(f, sa("192.0.2.99"), NULL) == FILTER_DENY_BANNED);
	CHECK(filter_admit(f, sa("192.0.2.98"), NULL) == FILTER_DENY_BANNED);
	CHECK(file_contains(path, "192.0.2.99/32 "));
	CHECK(file_contains(path, "192.0.2.98/32 "));
	filter_close(&admin, 0);
	filter_close(&f, 0);

	/* Expired and malformed lines are skipped; the rest loads. */
	fp = fopen(path, "w");
	CHECK(fp != NULL);
	if (fp == NULL)
		return;
	fprintf(fp, "# comment\n\n192.0.2.1/32 1 1 auth\n"
		    "garbage line here\n192.0.2.300/32 0 0 auth\n"
		    "192.0.2.2/32 0 0 nosuchreason\n");
	fclose(fp);
	f = open_user(100, 100, path);
	CHECK(filter_admit(f, sa("192.0.2.1"), NULL) == FILTER_PASS);
	CHECK(filter_admit(f, sa("192.0.2.2"), NULL) == FILTER_DENY_BANNED);
	memset(&c, 0, sizeof(c));
	CHECK(filter_list_bans(f, collect, &c) == 1);
	CHECK(c.info[0].reason == FILTER_REASON_OTHER);
	filter_close(&f, 0);
}

static void
test_admin_needs_something(void)
{
	struct filter_config cfg;
	char err[256] = "";

	filter_config_defaults(&cfg);
	snprintf(cfg.pin_root, sizeof(cfg.pin_root), "%s/nopins", tmpdir);
	CHECK(filter_open_admin(&cfg, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "no active XDP filter") != NULL);
}

static void
cleanup(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
}

int
main(void)
{
	log_init("test_filter", LOG_LEVEL_WARN);
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_parse_net);
	RUN(test_parse_duration);
	RUN(test_parse_rate);
	RUN(test_config_set);
	RUN(test_rate_limit);
	RUN(test_rate_prefixes);
	RUN(test_bans);
	RUN(test_dry_run_and_status);
	RUN(test_source_table_full);
	RUN(test_reconfigure);
	RUN(test_ban_file);
	RUN(test_admin_needs_something);
	cleanup();
	return HARNESS_DONE();
}
