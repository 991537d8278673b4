/* The filter's configuration (the [filter] keys) and the parsers that
 * config.c, posternctl and the filter share: networks, durations, rates,
 * ban reasons. Pure: no I/O, no BPF. */
#ifndef POSTERN_FILTER_CONFIG_H
#define POSTERN_FILTER_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define FILTER_MAX_IFACES 8
#define FILTER_MAX_PORTS 32
#define FILTER_MAX_ALLOW 64
#define FILTER_IFNAME_LEN 16 /* IFNAMSIZ */
#define FILTER_NET_STRLEN 64 /* longest "addr/len" plus NUL */
#define FILTER_DEFAULT_PIN_ROOT "/sys/fs/bpf/postern"

enum filter_mode {
	FILTER_MODE_AUTO,      /* XDP if interfaces are set and it loads */
	FILTER_MODE_XDP,       /* XDP or fail to open */
	FILTER_MODE_USERSPACE, /* never load BPF */
};

enum filter_attach {
	FILTER_ATTACH_AUTO, /* native, else generic (logged) */
	FILTER_ATTACH_NATIVE,
	FILTER_ATTACH_GENERIC,
};

/* Same values as PF_REASON_* in ebpf/postern_filter.h. */
enum filter_reason {
	FILTER_REASON_NONE = 0,
	FILTER_REASON_MANUAL,
	FILTER_REASON_AUTH,    /* login failures */
	FILTER_REASON_HARVEST, /* unknown recipients */
	FILTER_REASON_PREGREET,
	FILTER_REASON_SMUGGLING,
	FILTER_REASON_BAD_COMMANDS,
	FILTER_REASON_RATE,
	FILTER_REASON_OTHER,
};

/* A network: 16 address bytes (IPv4 as ::ffff:a.b.c.d) and a prefix
 * length over those 128 bits (an IPv4 /24 is 120). Host bits are zero. */
struct filter_net {
	uint8_t addr[16];
	unsigned prefixlen;
};

/* The [filter] section. filter_config_defaults() fills every field. */
struct filter_config {
	int mode;   /* enum filter_mode; auto */
	int attach; /* enum filter_attach; auto */
	char interfaces[FILTER_MAX_IFACES][FILTER_IFNAME_LEN]; /* none */
	size_t n_interfaces;
	uint32_t rate;			  /* new connections per period; 10 */
	uint32_t rate_period_s;		  /* 1, 60 or 3600; 1 */
	uint32_t burst;			  /* 20 */
	unsigned ipv4_prefix;		  /* sources grouped by /n; 32 */
	unsigned ipv6_prefix;		  /* 64 */
	uint16_t ports[FILTER_MAX_PORTS]; /* 25, 465, 587, 110, 995 */
	size_t n_ports;
	struct filter_net allow[FILTER_MAX_ALLOW]; /* plus loopback, always */
	size_t n_allow;
	char pin_root[256];	  /* /sys/fs/bpf/postern */
	char ban_file[1024];	  /* persistent bans; "" = none */
	int keep_attached;	  /* XDP stays on when posternd stops; no */
	int dry_run;		  /* count and log, never drop; no */
	uint64_t log_interval_ms; /* per-source gap between log lines; 1000 */
	uint32_t max_sources;	  /* user-space limiter table; 65536 */
};

void filter_config_defaults(struct filter_config *cfg);

/* Sets one [filter] key from its text value, as config.c reads them:
 * mode, xdp_attach, interfaces, rate, burst, ipv4_prefix, ipv6_prefix,
 * ports, allow, pin_root, ban_file, keep_attached, dry_run, log_interval,
 * max_sources. List keys replace the whole list. Returns 0, or -1 with a
 * static message in *error_r (unknown key, bad value). */
int filter_config_set(struct filter_config *cfg, const char *key,
		      const char *value, const char **error_r);

/* Adds a port unless present (posternd adds its listen ports). 0 or -1. */
int filter_config_add_port(struct filter_config *cfg, uint16_t port);

/* Parses "192.0.2.7", "192.0.2.0/24", "2001:db8::/32". Host bits are
 * cleared. Returns 0, or -1 with a static message in *error_r. */
int filter_parse_net(const char *s, struct filter_net *net,
		     const char **error_r);

/* "192.0.2.0/24", "2001:db8::/32" (always with the length). */
void filter_format_net(const struct filter_net *net, char *out, size_t outlen);

/* The /128 (or /32) network of an AF_INET or AF_INET6 address; IPv4-mapped
 * IPv6 addresses count as IPv4. Returns 0, or -1 for other families. */
int filter_net_from_sockaddr(const struct sockaddr *sa, struct filter_net *net);

/* Durations for bans: "90" (seconds), "30s", "10m", "2h", "7d", "1w";
 * "0", "forever" or "permanent" give 0 (never expires). 0 or -1. */
int filter_parse_duration(const char *s, uint64_t *seconds_r,
			  const char **error_r);

/* Rates: "10" or "10/s", "600/min" (or "/m"), "100/h". 0 or -1. */
int filter_parse_rate(const char *s, uint32_t *count_r, uint32_t *period_s_r,
		      const char **error_r);

const char *filter_reason_name(enum filter_reason reason);
int filter_reason_parse(const char *s, enum filter_reason *reason_r);

/* Helpers on networks. is_v4: an IPv4-mapped network (prefixlen >= 96).
 * mask: clears the bits after prefixlen. contains: inner lies within
 * outer. cmp: a total order for sorting (qsort/bsearch on any struct that
 * starts with a struct filter_net). */
int filter_net_is_v4(const struct filter_net *net);
void filter_net_mask(uint8_t addr[16], unsigned prefixlen);
int filter_net_contains(const struct filter_net *outer,
			const struct filter_net *inner);
int filter_net_cmp(const void *a, const void *b);

#endif
