/* filterctl: drives the filter API (daemon/filter.h) for the BATS suite
 * tests/e2e/ratelimit_xdp.bats. "serve" plays posternd (open, admit at
 * accept, events, tick, close); ban/unban/allow/list/status play
 * posternctl (filter_open_admin). Not installed. */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "filter.h"
#include "filter_bpf.h"
#include "log.h"
#include "util.h"

static volatile sig_atomic_t stop;

static void usage(void) __attribute__((noreturn));
static void on_signal(int sig);
static int cmd_serve(const struct filter_config *cfg, int keep, int argc,
		     char **argv);
static int cmd_admit(const struct filter_config *cfg, int argc, char **argv);
static int cmd_admin(const struct filter_config *cfg, const char *cmd, int argc,
		     char **argv);
static void print_ban(const struct filter_list_info *info, void *arg);

static void
usage(void)
{
	fprintf(stderr,
		"usage: filterctl [options] command [args]\n"
		"options: --pin-root DIR --ban-file FILE --mode M --attach M\n"
		"         --iface NAME (repeatable) --rate R --burst N\n"
		"         --ports LIST --allow LIST --ipv4-prefix N\n"
		"         --ipv6-prefix N --keep --dry-run -v\n"
		"commands:\n"
		"  probe                     exit 0 if BPF loads here, else 2\n"
		"  attach                    open, attach, exit leaving it on\n"
		"  serve PORT [SECONDS]      accept loop: 220 or 421 per "
		"connection\n"
		"  admit ADDR[xN]...         admit decisions in one process\n"
		"  ban NET [DURATION [REASON]] | unban NET | allow NET\n"
		"  list | status | uninstall\n");
	exit(1);
}

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static const char *
verdict_name(enum filter_verdict v)
{
	switch (v) {
	case FILTER_PASS:
		return "pass";
	case FILTER_PASS_ALLOWED:
		return "allowed";
	case FILTER_DENY_BANNED:
		return "banned";
	case FILTER_DENY_RATE:
		return "rate";
	}
	return "?";
}

/* Plays posternd: every connection gets one line, "220" when admitted,
 * "421" when refused, and is closed. Runs until a signal or SECONDS. */
static int
cmd_serve(const struct filter_config *cfg, int keep, int argc, char **argv)
{
	struct sockaddr_in6 sin6;
	struct filter *f;
	struct pollfd pfd[2];
	uint64_t port, secs = 3600, deadline, next_tick;
	char err[256];
	int ls, one = 1, zero = 0, nfds;

	if (argc < 1 || util_parse_uint(argv[0], 1, 65535, &port) < 0 ||
	    (argc > 1 && util_parse_uint(argv[1], 1, 86400, &secs) < 0))
		usage();
	ls = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ls < 0)
		fatal("socket");
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(ls, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons((uint16_t)port);
	sin6.sin6_addr = in6addr_any;
	if (bind(ls, (struct sockaddr *)&sin6, sizeof(sin6)) < 0 ||
	    listen(ls, 1024) < 0)
		fatal("bind/listen port %" PRIu64, port);
	f = filter_open(cfg, err, sizeof(err));
	if (f == NULL) {
		fprintf(stderr, "filterctl: %s\n", err);
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	printf("ready mode=%s port=%" PRIu64 "\n", filter_mode_name(f), port);
	fflush(stdout);
	deadline = util_now_ms() + secs * 1000;
	next_tick = util_now_ms() + 1000;
	while (!stop && util_now_ms() < deadline) {
		uint64_t now = util_now_ms();
		int timeout = next_tick > now ? (int)(next_tick - now) : 0;

		pfd[0].fd = ls;
		pfd[0].events = POLLIN;
		pfd[1].fd = filter_events_fd(f);
		pfd[1].events = POLLIN;
		nfds = pfd[1].fd >= 0 ? 2 : 1;
		if (poll(pfd, (nfds_t)nfds, timeout) < 0 && errno != EINTR)
			fatal("poll");
		if (nfds == 2 && (pfd[1].revents & POLLIN))
			filter_events_consume(f);
		for (;;) {
			struct sockaddr_storage ss;
			socklen_t sl = sizeof(ss);
			struct filter_decision d;
			char line[160];
			ssize_t w;
			int c;

			c = accept4(ls, (struct sockaddr *)&ss, &sl,
				    SOCK_CLOEXEC);
			if (c < 0)
				break;
			if (filter_admit(f, (struct sockaddr *)&ss, &d) >=
			    FILTER_DENY_BANNED) {
				snprintf(line, sizeof(line),
					 "421 4.7.0 %s %s\r\n",
					 verdict_name(d.verdict), d.net);
				if (d.log)
					log_info("refused net=%s reason=%s",
						 d.net,
						 verdict_name(d.verdict));
			} else {
				snprintf(line, sizeof(line),
					 "220 filterctl ready\r\n");
			}
			w = write(c, line, strlen(line));
			(void)w;
			close(c);
		}
		if (util_now_ms() >= next_tick) {
			filter_tick(f);
			next_tick = util_now_ms() + 1000;
		}
	}
	close(ls);
	filter_close(&f, keep);
	printf("stopped\n");
	return 0;
}

/* ADDR or ADDRxN: N admits each, one line per argument with the counts. */
static int
cmd_admit(const struct filter_config *cfg, int argc, char **argv)
{
	struct filter *f;
	char err[256];
	int i;

	f = filter_open(cfg, err, sizeof(err));
	if (f == NULL) {
		fprintf(stderr, "filterctl: %s\n", err);
		return 1;
	}
	for (i = 0; i < argc; i++) {
		struct sockaddr_storage ss;
		char addr[64], *x;
		uint64_t n = 1, k;
		unsigned counts[4] = {0};

		strlcpy(addr, argv[i], sizeof(addr));
		if ((x = strrchr(addr, 'x')) != NULL) {
			*x = '\0';
			if (util_parse_uint(x + 1, 1, 100000, &n) < 0)
				usage();
		}
		memset(&ss, 0, sizeof(ss));
		if (inet_pton(AF_INET, addr,
			      &((struct sockaddr_in *)&ss)->sin_addr) == 1)
			ss.ss_family = AF_INET;
		else if (inet_pton(AF_INET6, addr,
				   &((struct sockaddr_in6 *)&ss)->sin6_addr) ==
			 1)
			ss.ss_family = AF_INET6;
		else
			usage();
		for (k = 0; k < n; k++)
			counts[filter_admit(f, (struct sockaddr *)&ss, NULL)]++;
		printf("%s pass=%u allowed=%u banned=%u rate=%u\n", addr,
		       counts[FILTER_PASS], counts[FILTER_PASS_ALLOWED],
		       counts[FILTER_DENY_BANNED], counts[FILTER_DENY_RATE]);
	}
	filter_close(&f, 0);
	return 0;
}

static void
print_ban(const struct filter_list_info *info, void *arg)
{
	(void)arg;
	printf("%s reason=%s expires_in=%" PRIu64 "%s hits=%" PRIu64 "\n",
	       info->text, filter_reason_name(info->reason), info->expires_in_s,
	       info->expires_in_s ? "s" : " (permanent)", info->hits);
}

/* Plays posternctl: ban, unban, allow, list, status. */
static int
cmd_admin(const struct filter_config *cfg, const char *cmd, int argc,
	  char **argv)
{
	enum filter_reason reason = FILTER_REASON_MANUAL;
	struct filter_status st;
	struct filter_net net;
	struct filter *f;
	uint64_t secs = 0;
	const char *e;
	char err[256];
	int rc = 0;

	f = filter_open_admin(cfg, err, sizeof(err));
	if (f == NULL) {
		fprintf(stderr, "filterctl: %s\n", err);
		return 1;
	}
	if (strcmp(cmd, "list") == 0) {
		rc = filter_list_bans(f, print_ban, NULL) < 0;
	} else if (strcmp(cmd, "status") == 0) {
		rc = filter_status(f, &st) < 0;
		if (rc == 0)
			filter_status_print(&st, stdout);
	} else {
		if (argc < 1)
			usage();
		if (filter_parse_net(argv[0], &net, &e) < 0) {
			fprintf(stderr, "filterctl: %s: %s\n", argv[0], e);
			filter_close(&f, 1);
			return 1;
		}
		if (strcmp(cmd, "ban") == 0) {
			if (argc > 1 &&
			    filter_parse_duration(argv[1], &secs, &e) < 0) {
				fprintf(stderr, "filterctl: %s\n", e);
				filter_close(&f, 1);
				return 1;
			}
			if (argc > 2 &&
			    filter_reason_parse(argv[2], &reason) < 0)
				usage();
			rc =
			    filter_ban(f, &net, secs, reason, err, sizeof(err));
			if (rc == 1)
				snprintf(err, sizeof(err),
					 "%s is on the allow "
					 "list: not banned",
					 argv[0]);
		} else if (strcmp(cmd, "unban") == 0) {
			rc = filter_unban(f, &net, err, sizeof(err));
			if (rc == 1)
				snprintf(err, sizeof(err), "no ban for %s",
					 argv[0]);
		} else if (strcmp(cmd, "allow") == 0) {
			rc = filter_allow(f, &net, err, sizeof(err));
		} else {
			usage();
		}
		if (rc != 0)
			fprintf(stderr, "filterctl: %s\n", err);
	}
	filter_close(&f, 1);
	return rc != 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"pin-root", required_argument, NULL, 'p'},
	    {"ban-file", required_argument, NULL, 'b'},
	    {"mode", required_argument, NULL, 'm'},
	    {"attach", required_argument, NULL, 'a'},
	    {"iface", required_argument, NULL, 'i'},
	    {"rate", required_argument, NULL, 'r'},
	    {"burst", required_argument, NULL, 'B'},
	    {"ports", required_argument, NULL, 'P'},
	    {"allow", required_argument, NULL, 'A'},
	    {"ipv4-prefix", required_argument, NULL, '4'},
	    {"ipv6-prefix", required_argument, NULL, '6'},
	    {"keep", no_argument, NULL, 'k'},
	    {"dry-run", no_argument, NULL, 'd'},
	    {NULL, 0, NULL, 0},
	};
	static const char *const keys[128] = {
	    ['p'] = "pin_root",	   ['b'] = "ban_file", ['m'] = "mode",
	    ['a'] = "xdp_attach",  ['r'] = "rate",     ['B'] = "burst",
	    ['P'] = "ports",	   ['A'] = "allow",    ['4'] = "ipv4_prefix",
	    ['6'] = "ipv6_prefix",
	};
	struct filter_config cfg;
	const char *e, *cmd;
	char err[256];
	int c, keep = 0, level = LOG_LEVEL_INFO;

	filter_config_defaults(&cfg);
	while ((c = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		if (c == 'v') {
			level = LOG_LEVEL_DEBUG;
		} else if (c == 'k') {
			keep = 1;
		} else if (c == 'd') {
			cfg.dry_run = 1;
		} else if (c == 'i') {
			if (cfg.n_interfaces == FILTER_MAX_IFACES ||
			    strlen(optarg) >= FILTER_IFNAME_LEN)
				usage();
			strlcpy(cfg.interfaces[cfg.n_interfaces++], optarg,
				FILTER_IFNAME_LEN);
		} else if (c > 0 && c < 128 && keys[c] != NULL) {
			if (filter_config_set(&cfg, keys[c], optarg, &e) < 0) {
				fprintf(stderr, "filterctl: --%s %s: %s\n",
					keys[c], optarg, e);
				return 1;
			}
		} else {
			usage();
		}
	}
	if (optind >= argc)
		usage();
	log_init("filterctl", level);
	cmd = argv[optind++];
	argc -= optind;
	argv += optind;
	cfg.keep_attached = keep;
	if (strcmp(cmd, "probe") == 0) {
		if (filter_bpf_probe(err, sizeof(err)) < 0) {
			printf("unavailable: %s\n", err);
			return 2;
		}
		printf("ok\n");
		return 0;
	}
	if (strcmp(cmd, "attach") == 0) {
		struct filter *f;

		cfg.keep_attached = 1;
		f = filter_open(&cfg, err, sizeof(err));
		if (f == NULL) {
			fprintf(stderr, "filterctl: %s\n", err);
			return 1;
		}
		printf("mode=%s\n", filter_mode_name(f));
		filter_close(&f, 1);
		return 0;
	}
	if (strcmp(cmd, "uninstall") == 0) {
		if (filter_bpf_uninstall(cfg.pin_root, err, sizeof(err)) < 0) {
			fprintf(stderr, "filterctl: %s\n", err);
			return 1;
		}
		return 0;
	}
	if (strcmp(cmd, "serve") == 0)
		return cmd_serve(&cfg, keep, argc, argv);
	if (strcmp(cmd, "admit") == 0)
		return cmd_admit(&cfg, argc, argv);
	return cmd_admin(&cfg, cmd, argc, argv);
}
