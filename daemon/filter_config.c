/* The [filter] configuration keys and the parsers shared by config.c,
 * posternctl and the filter: networks (IPv4 stored IPv4-mapped), ban
 * durations, rates, reason names. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <string.h>

#include "filter_config.h"
#include "util.h"

static const char *const reason_names[] = {
    "none",	 "manual",	 "auth", "harvest", "pregreet",
    "smuggling", "bad-commands", "rate", "other",
};

static int filter_parse_bool(const char *s, int *out);
static int filter_split(const char *value, char tokens[][FILTER_NET_STRLEN],
			size_t max, size_t *n_r);

void
filter_config_defaults(struct filter_config *cfg)
{
	static const uint16_t ports[] = {25, 465, 587, 110, 995};
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	cfg->mode = FILTER_MODE_AUTO;
	cfg->attach = FILTER_ATTACH_AUTO;
	cfg->rate = 10;
	cfg->rate_period_s = 1;
	cfg->burst = 20;
	cfg->ipv4_prefix = 32;
	cfg->ipv6_prefix = 64;
	for (i = 0; i < sizeof(ports) / sizeof(ports[0]); i++)
		cfg->ports[cfg->n_ports++] = ports[i];
	strlcpy(cfg->pin_root, FILTER_DEFAULT_PIN_ROOT, sizeof(cfg->pin_root));
	cfg->log_interval_ms = 1000;
	cfg->max_sources = 65536;
}

static int
filter_parse_bool(const char *s, int *out)
{
	if (util_strcaseeq(s, "yes") || util_strcaseeq(s, "true") ||
	    util_strcaseeq(s, "on") || strcmp(s, "1") == 0)
		*out = 1;
	else if (util_strcaseeq(s, "no") || util_strcaseeq(s, "false") ||
		 util_strcaseeq(s, "off") || strcmp(s, "0") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

/* Splits a list on commas and blanks. Returns 0, or -1 when an item is too
 * long or there are more than max. */
static int
filter_split(const char *value, char tokens[][FILTER_NET_STRLEN], size_t max,
	     size_t *n_r)
{
	const char *p = value;
	size_t n = 0, len;

	for (;;) {
		p += strspn(p, ", \t");
		if (*p == '\0')
			break;
		len = strcspn(p, ", \t");
		if (n == max || len >= FILTER_NET_STRLEN)
			return -1;
		memcpy(tokens[n], p, len);
		tokens[n][len] = '\0';
		n++;
		p += len;
	}
	*n_r = n;
	return 0;
}

int
filter_config_add_port(struct filter_config *cfg, uint16_t port)
{
	size_t i;

	for (i = 0; i < cfg->n_ports; i++)
		if (cfg->ports[i] == port)
			return 0;
	if (cfg->n_ports == FILTER_MAX_PORTS || port == 0)
		return -1;
	cfg->ports[cfg->n_ports++] = port;
	return 0;
}

int
filter_config_set(struct filter_config *cfg, const char *key, const char *value,
		  const char **error_r)
{
	char tok[FILTER_MAX_ALLOW][FILTER_NET_STRLEN];
	uint64_t u;
	size_t n, i;

	if (strcmp(key, "mode") == 0) {
		if (strcmp(value, "auto") == 0)
			cfg->mode = FILTER_MODE_AUTO;
		else if (strcmp(value, "xdp") == 0)
			cfg->mode = FILTER_MODE_XDP;
		else if (strcmp(value, "userspace") == 0)
			cfg->mode = FILTER_MODE_USERSPACE;
		else
			goto bad_enum_mode;
		return 0;
	}
	if (strcmp(key, "xdp_attach") == 0) {
		if (strcmp(value, "auto") == 0)
			cfg->attach = FILTER_ATTACH_AUTO;
		else if (strcmp(value, "native") == 0)
			cfg->attach = FILTER_ATTACH_NATIVE;
		else if (strcmp(value, "generic") == 0)
			cfg->attach = FILTER_ATTACH_GENERIC;
		else {
			*error_r = "expected auto, native or generic";
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "interfaces") == 0) {
		if (filter_split(value, tok, FILTER_MAX_IFACES, &n) < 0)
			goto too_many;
		for (i = 0; i < n; i++) {
			if (strlen(tok[i]) >= FILTER_IFNAME_LEN ||
			    strchr(tok[i], '/') != NULL) {
				*error_r = "invalid interface name";
				return -1;
			}
		}
		for (i = 0; i < n; i++)
			strlcpy(cfg->interfaces[i], tok[i],
				sizeof(cfg->interfaces[i]));
		cfg->n_interfaces = n;
		return 0;
	}
	if (strcmp(key, "rate") == 0)
		return filter_parse_rate(value, &cfg->rate, &cfg->rate_period_s,
					 error_r);
	if (strcmp(key, "burst") == 0) {
		if (util_parse_uint(value, 1, 100000, &u) < 0) {
			*error_r = "expected a number from 1 to 100000";
			return -1;
		}
		cfg->burst = (uint32_t)u;
		return 0;
	}
	if (strcmp(key, "ipv4_prefix") == 0 ||
	    strcmp(key, "ipv6_prefix") == 0) {
		int v4 = key[3] == '4';

		if (util_parse_uint(value, v4 ? 8 : 16, v4 ? 32 : 128, &u) <
		    0) {
			*error_r = v4 ? "expected a prefix length from 8 to 32"
				      : "expected a prefix length from 16 to "
					"128";
			return -1;
		}
		if (v4)
			cfg->ipv4_prefix = (unsigned)u;
		else
			cfg->ipv6_prefix = (unsigned)u;
		return 0;
	}
	if (strcmp(key, "ports") == 0) {
		uint16_t ports[FILTER_MAX_PORTS];

		if (filter_split(value, tok, FILTER_MAX_PORTS, &n) < 0)
			goto too_many;
		for (i = 0; i < n; i++) {
			if (util_parse_uint(tok[i], 1, 65535, &u) < 0) {
				*error_r = "expected ports from 1 to 65535";
				return -1;
			}
			ports[i] = (uint16_t)u;
		}
		memcpy(cfg->ports, ports, n * sizeof(ports[0]));
		cfg->n_ports = n;
		return 0;
	}
	if (strcmp(key, "allow") == 0) {
		struct filter_net nets[FILTER_MAX_ALLOW];

		if (filter_split(value, tok, FILTER_MAX_ALLOW, &n) < 0)
			goto too_many;
		for (i = 0; i < n; i++)
			if (filter_parse_net(tok[i], &nets[i], error_r) < 0)
				return -1;
		memcpy(cfg->allow, nets, n * sizeof(nets[0]));
		cfg->n_allow = n;
		return 0;
	}
	if (strcmp(key, "pin_root") == 0) {
		if (value[0] != '/' || strlen(value) >= sizeof(cfg->pin_root)) {
			*error_r = "expected an absolute path";
			return -1;
		}
		strlcpy(cfg->pin_root, value, sizeof(cfg->pin_root));
		return 0;
	}
	if (strcmp(key, "ban_file") == 0) {
		if ((value[0] != '/' && value[0] != '\0') ||
		    strlen(value) >= sizeof(cfg->ban_file)) {
			*error_r = "expected an absolute path";
			return -1;
		}
		strlcpy(cfg->ban_file, value, sizeof(cfg->ban_file));
		return 0;
	}
	if (strcmp(key, "keep_attached") == 0 || strcmp(key, "dry_run") == 0) {
		int *dst = key[0] == 'k' ? &cfg->keep_attached : &cfg->dry_run;

		if (filter_parse_bool(value, dst) < 0) {
			*error_r = "expected yes or no";
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "log_interval") == 0) {
		if (filter_parse_duration(value, &u, error_r) < 0)
			return -1;
		if (u == 0 || u > 3600) {
			*error_r = "expected 1s to 1h";
			return -1;
		}
		cfg->log_interval_ms = u * 1000;
		return 0;
	}
	if (strcmp(key, "max_sources") == 0) {
		if (util_parse_uint(value, 16, 1 << 24, &u) < 0) {
			*error_r = "expected a number from 16 to 16777216";
			return -1;
		}
		cfg->max_sources = (uint32_t)u;
		return 0;
	}
	*error_r = "unknown key";
	return -1;
bad_enum_mode:
	*error_r = "expected auto, xdp or userspace";
	return -1;
too_many:
	*error_r = "too many items, or an item too long";
	return -1;
}

int
filter_net_is_v4(const struct filter_net *net)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
					   0, 0, 0, 0, 0xff, 0xff};

	return net->prefixlen >= 96 && memcmp(net->addr, mapped, 12) == 0;
}

void
filter_net_mask(uint8_t addr[16], unsigned prefixlen)
{
	unsigned i;

	for (i = 0; i < 16; i++) {
		if (prefixlen >= 8 * (i + 1))
			continue;
		if (prefixlen <= 8 * i)
			addr[i] = 0;
		else
			addr[i] &= (uint8_t)(0xff << (8 - (prefixlen - 8 * i)));
	}
}

/* 1 when inner lies within outer. */
int
filter_net_contains(const struct filter_net *outer,
		    const struct filter_net *inner)
{
	uint8_t a[16];

	if (outer->prefixlen > inner->prefixlen)
		return 0;
	memcpy(a, inner->addr, sizeof(a));
	filter_net_mask(a, outer->prefixlen);
	return memcmp(a, outer->addr, sizeof(a)) == 0;
}

int
filter_parse_net(const char *s, struct filter_net *net, const char **error_r)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
	int v6 = memchr(s, ':', hlen) != NULL;
	unsigned max = v6 ? 128 : 32;
	uint64_t len = max;

	memset(net, 0, sizeof(*net));
	if (hlen == 0 || hlen >= sizeof(host)) {
		*error_r = "expected an address or network";
		return -1;
	}
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (slash != NULL && (slash[1] < '0' || slash[1] > '9' ||
			      util_parse_uint(slash + 1, 0, max, &len) < 0)) {
		*error_r = v6 ? "prefix length must be 0 to 128"
			      : "prefix length must be 0 to 32";
		return -1;
	}
	if (v6) {
		if (inet_pton(AF_INET6, host, net->addr) != 1) {
			*error_r = "invalid IPv6 address";
			return -1;
		}
		net->prefixlen = (unsigned)len;
	} else {
		if (inet_pton(AF_INET, host, net->addr + 12) != 1) {
			*error_r = "invalid IPv4 address";
			return -1;
		}
		net->addr[10] = net->addr[11] = 0xff;
		net->prefixlen = 96 + (unsigned)len;
	}
	filter_net_mask(net->addr, net->prefixlen);
	return 0;
}

void
filter_format_net(const struct filter_net *net, char *out, size_t outlen)
{
	char a[INET6_ADDRSTRLEN];

	if (filter_net_is_v4(net)) {
		inet_ntop(AF_INET, net->addr + 12, a, sizeof(a));
		snprintf(out, outlen, "%s/%u", a, net->prefixlen - 96);
	} else {
		inet_ntop(AF_INET6, net->addr, a, sizeof(a));
		snprintf(out, outlen, "%s/%u", a, net->prefixlen);
	}
}

int
filter_net_from_sockaddr(const struct sockaddr *sa, struct filter_net *net)
{
	memset(net, 0, sizeof(*net));
	net->prefixlen = 128;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		net->addr[10] = net->addr[11] = 0xff;
		memcpy(net->addr + 12, &sin->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		/* A dual-stack socket's IPv4 peer is ::ffff:a.b.c.d: the
		 * same bytes as our IPv4 form. */
		memcpy(net->addr, &sin6->sin6_addr, 16);
		return 0;
	}
	return -1;
}

int
filter_parse_duration(const char *s, uint64_t *seconds_r, const char **error_r)
{
	static const struct {
		char unit;
		uint64_t mult;
	} units[] = {
	    {'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 604800}};
	char num[24];
	size_t len = strlen(s), i;
	uint64_t mult = 1, v;

	if (strcmp(s, "forever") == 0 || strcmp(s, "permanent") == 0) {
		*seconds_r = 0;
		return 0;
	}
	if (len > 0 && (s[len - 1] < '0' || s[len - 1] > '9')) {
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (s[len - 1] == units[i].unit)
				break;
		if (i == sizeof(units) / sizeof(units[0]))
			goto bad;
		mult = units[i].mult;
		len--;
	}
	if (len == 0 || len >= sizeof(num))
		goto bad;
	memcpy(num, s, len);
	num[len] = '\0';
	if (num[0] < '0' || num[0] > '9' ||
	    util_parse_uint(num, 0, 100ULL * 366 * 86400 / mult, &v) < 0)
		goto bad;
	*seconds_r = v * mult;
	return 0;
bad:
	*error_r = "expected a duration such as 90, 30s, 10m, 2h, 7d or "
		   "forever (at most 100 years)";
	return -1;
}

int
filter_parse_rate(const char *s, uint32_t *count_r, uint32_t *period_s_r,
		  const char **error_r)
{
	static const struct {
		const char *name;
		uint32_t s;
	} periods[] = {{"s", 1},    {"sec", 1},	   {"second", 1},
		       {"m", 60},   {"min", 60},   {"minute", 60},
		       {"h", 3600}, {"hour", 3600}};
	char num[16];
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s), i;
	uint32_t period = 1;
	uint64_t v;

	if (slash != NULL) {
		for (i = 0; i < sizeof(periods) / sizeof(periods[0]); i++)
			if (strcmp(slash + 1, periods[i].name) == 0)
				break;
		if (i == sizeof(periods) / sizeof(periods[0]))
			goto bad;
		period = periods[i].s;
	}
	if (len == 0 || len >= sizeof(num))
		goto bad;
	memcpy(num, s, len);
	num[len] = '\0';
	if (num[0] < '0' || num[0] > '9' ||
	    util_parse_uint(num, 1, 1000000, &v) < 0)
		goto bad;
	*count_r = (uint32_t)v;
	*period_s_r = period;
	return 0;
bad:
	*error_r = "expected a rate such as 10/s, 600/min or 100/h "
		   "(1 to 1000000)";
	return -1;
}

const char *
filter_reason_name(enum filter_reason reason)
{
	if ((size_t)reason >= sizeof(reason_names) / sizeof(reason_names[0]))
		return "other";
	return reason_names[reason];
}

int
filter_reason_parse(const char *s, enum filter_reason *reason_r)
{
	size_t i;

	for (i = 1; i < sizeof(reason_names) / sizeof(reason_names[0]); i++) {
		if (strcmp(s, reason_names[i]) == 0) {
			*reason_r = (enum filter_reason)i;
			return 0;
		}
	}
	return -1;
}

int
filter_net_cmp(const void *a, const void *b)
{
	const struct filter_net *x = a, *y = b;
	int c = memcmp(x->addr, y->addr, 16);

	if (c != 0)
		return c;
	return (x->prefixlen > y->prefixlen) - (x->prefixlen < y->prefixlen);
}
