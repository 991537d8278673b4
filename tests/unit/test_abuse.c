/* Unit tests for abuse.c: thresholds per kind, per-account brute force,
 * escalating ban durations and their memory, the allow list, IPv6
 * grouping, and the duration format. A real user-space filter (no ban
 * file) enforces the bans; both clocks are faked. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abuse.h"
#include "config.h"
#include "filter.h"
#include "harness.h"
#include "log.h"
#include "util.h"

#define MS 1000ULL

static uint64_t now_ms = 1000000;
static struct config cfg;
static struct server srv;

static uint64_t
fake_ms(void)
{
	return now_ms;
}

static uint64_t
fake_ns(void *arg)
{
	(void)arg;
	return now_ms * 1000000ULL;
}

/* A peer from text. */
static struct peer
peer(const char *ip)
{
	struct peer p;

	memset(&p, 0, sizeof(p));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&p.sa;

		s6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, ip, &s6->sin6_addr) != 1)
			abort();
		p.salen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&p.sa;

		s4->sin_family = AF_INET;
		if (inet_pton(AF_INET, ip, &s4->sin_addr) != 1)
			abort();
		p.salen = sizeof(*s4);
	}
	strlcpy(p.addr, ip, sizeof(p.addr));
	return p;
}

/* A fresh daemon context: default config, a user-space filter, no
 * memory of earlier reports. */
static void
start(void)
{
	char err[256];

	filter_close(&srv.filter, 0);
	abuse_reset();
	config_defaults(&cfg);
	cfg.filter.mode = FILTER_MODE_USERSPACE;
	cfg.filter.ban_file[0] = '\0';
	memset(&srv, 0, sizeof(srv));
	srv.cfg = &cfg;
	srv.filter = filter_open(&cfg.filter, err, sizeof(err));
	if (srv.filter == NULL) {
		fprintf(stderr, "filter_open: %s\n", err);
		abort();
	}
	filter_set_clock(srv.filter, fake_ns, NULL);
	abuse_set_clock(fake_ms);
}

static enum filter_verdict
admit(const char *ip, struct filter_decision *d)
{
	struct peer p = peer(ip);

	return filter_admit(srv.filter, (const struct sockaddr *)&p.sa, d);
}

static unsigned
report(const char *ip, enum abuse_kind kind, const char *account)
{
	struct peer p = peer(ip);

	return abuse_report(&srv, &p, kind, account);
}

/* Reports n events of a kind from ip. */
static void
report_n(const char *ip, enum abuse_kind kind, unsigned n)
{
	while (n-- > 0)
		report(ip, kind, NULL);
}

/* The remaining time of the ban that ip meets, 0 when not banned. */
static uint64_t
ban_left(const char *ip)
{
	struct filter_decision d;

	if (admit(ip, &d) != FILTER_DENY_BANNED)
		return 0;
	return d.expires_in_s;
}

static void
test_thresholds_per_kind(void)
{
	static const struct {
		enum abuse_kind kind;
		unsigned threshold;
		enum filter_reason reason;
	} cases[] = {
	    {ABUSE_AUTH_FAILURE, 5, FILTER_REASON_AUTH},
	    {ABUSE_UNKNOWN_RECIPIENT, 20, FILTER_REASON_HARVEST},
	    {ABUSE_PREGREET, 1, FILTER_REASON_PREGREET},
	    {ABUSE_SMUGGLING, 1, FILTER_REASON_SMUGGLING},
	    {ABUSE_BAD_COMMANDS, 3, FILTER_REASON_BAD_COMMANDS},
	};
	struct filter_decision d;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		start();
		report_n("192.0.2.7", cases[i].kind, cases[i].threshold - 1);
		CHECK(admit("192.0.2.7", &d) == FILTER_PASS);
		CHECK(report("192.0.2.7", cases[i].kind, NULL) ==
		      cases[i].threshold);
		CHECK(admit("192.0.2.7", &d) == FILTER_DENY_BANNED);
		CHECK(d.reason == cases[i].reason);
		CHECK(d.expires_in_s == 600);
		CHECK_STR(d.net, "192.0.2.7/32");
		/* Only that source. */
		CHECK(admit("192.0.2.8", &d) == FILTER_PASS);
	}
}

static void
test_window(void)
{
	start();
	report_n("192.0.2.7", ABUSE_AUTH_FAILURE, 4);
	now_ms += 3601 * MS; /* the window (1h) has passed */
	CHECK(report("192.0.2.7", ABUSE_AUTH_FAILURE, NULL) == 1);
	CHECK(ban_left("192.0.2.7") == 0);
	/* Kinds count apart. */
	report_n("192.0.2.7", ABUSE_UNKNOWN_RECIPIENT, 4);
	CHECK(report("192.0.2.7", ABUSE_AUTH_FAILURE, NULL) == 2);
}

static void
test_disabled_and_log_only(void)
{
	start();
	cfg.abuse.auth_failures = 0;
	report_n("192.0.2.7", ABUSE_AUTH_FAILURE, 50);
	CHECK(ban_left("192.0.2.7") == 0);
	/* pregreet_action = log watches only. */
	cfg.smtp_pregreet_reject = 0;
	report_n("192.0.2.8", ABUSE_PREGREET, 5);
	CHECK(ban_left("192.0.2.8") == 0);
}

static void
test_escalation(void)
{
	static const uint64_t want[] = {600,	3600,	21600,
					129600, 604800, 604800};
	size_t i;

	start();
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		report_n("192.0.2.7", ABUSE_SMUGGLING, 1);
		CHECK(ban_left("192.0.2.7") == want[i]);
		/* More reports while banned change nothing. */
		report_n("192.0.2.7", ABUSE_SMUGGLING, 3);
		CHECK(ban_left("192.0.2.7") == want[i]);
		now_ms += want[i] * MS + 1;
		CHECK(ban_left("192.0.2.7") == 0);
	}
	/* Within ban_memory (1d) of the end: still a repeat. */
	now_ms += 86399 * MS;
	report_n("192.0.2.7", ABUSE_SMUGGLING, 1);
	CHECK(ban_left("192.0.2.7") == 604800);
	/* Past it: a first offence again. */
	now_ms += (604800 + 86401) * MS;
	report_n("192.0.2.7", ABUSE_SMUGGLING, 1);
	CHECK(ban_left("192.0.2.7") == 600);
}

static void
test_account_brute_force(void)
{
	char ip[32];
	int i;

	start();
	cfg.abuse.auth_failures_account = 6;
	/* Two failures from each of three sources: the per-source
	 * threshold (5) is not reached, the account's (6) is. */
	for (i = 1; i <= 3; i++) {
		snprintf(ip, sizeof(ip), "192.0.2.%d", i);
		report(ip, ABUSE_AUTH_FAILURE, "victim@example.test");
		CHECK(ban_left(ip) == 0);
		report(ip, ABUSE_AUTH_FAILURE,
		       i == 2 ? "Victim@Example.TEST" : "victim@example.test");
	}
	for (i = 1; i <= 3; i++) {
		snprintf(ip, sizeof(ip), "192.0.2.%d", i);
		CHECK(ban_left(ip) == 600);
	}
	/* A newcomer on the same account is banned at once ... */
	report("192.0.2.4", ABUSE_AUTH_FAILURE, "victim@example.test");
	CHECK(ban_left("192.0.2.4") == 600);
	/* ... one on another account is not. */
	report("192.0.2.5", ABUSE_AUTH_FAILURE, "other@example.test");
	CHECK(ban_left("192.0.2.5") == 0);
	/* After the window the account starts again. */
	now_ms += 3601 * MS;
	report("192.0.2.6", ABUSE_AUTH_FAILURE, "victim@example.test");
	CHECK(ban_left("192.0.2.6") == 0);
}

static void
test_allow_list_never_banned(void)
{
	struct filter_decision d;

	start();
	report_n("127.0.0.1", ABUSE_AUTH_FAILURE, 20);
	CHECK(admit("127.0.0.1", &d) == FILTER_PASS_ALLOWED);
	report_n("::1", ABUSE_SMUGGLING, 3);
	CHECK(admit("::1", &d) == FILTER_PASS_ALLOWED);
}

static void
test_ipv6_prefix(void)
{
	struct filter_decision d;

	start();
	/* Rotating addresses inside one /64 counts as one source. */
	report("2001:db8::1", ABUSE_AUTH_FAILURE, NULL);
	report("2001:db8::2", ABUSE_AUTH_FAILURE, NULL);
	report("2001:db8::3", ABUSE_AUTH_FAILURE, NULL);
	report("2001:db8::4", ABUSE_AUTH_FAILURE, NULL);
	CHECK(report("2001:db8::5", ABUSE_AUTH_FAILURE, NULL) == 5);
	CHECK(admit("2001:db8::ffff", &d) == FILTER_DENY_BANNED);
	CHECK_STR(d.net, "2001:db8::/64");
	CHECK(admit("2001:db8:0:1::1", &d) == FILTER_PASS);

	start();
	cfg.abuse.ban_ipv6_prefix = 128;
	report_n("2001:db8::1", ABUSE_SMUGGLING, 1);
	CHECK(admit("2001:db8::1", &d) == FILTER_DENY_BANNED);
	CHECK_STR(d.net, "2001:db8::1/128");
	CHECK(admit("2001:db8::2", &d) == FILTER_PASS);
}

static void
test_many_sources(void)
{
	char ip[32];
	int i;

	/* More sources than the table holds: older ones are forgotten
	 * (memory stays bounded) and the newest still count. */
	start();
	for (i = 0; i < 20000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 250, i % 250);
		report(ip, ABUSE_AUTH_FAILURE, NULL);
	}
	CHECK(report("10.79.249.1", ABUSE_AUTH_FAILURE, NULL) == 2);
	CHECK(report("10.0.0.1", ABUSE_AUTH_FAILURE, NULL) == 1);
}

static void
test_format_duration(void)
{
	static const struct {
		uint64_t s;
		const char *want;
	} cases[] = {
	    {0, "0s"},	      {45, "45s"},	 {600, "10m"},
	    {3599, "59m59s"}, {3600, "1h"},	 {5400, "1h30m"},
	    {90061, "1d1h"},  {604799, "6d23h"}, {1209600, "2w"},
	};
	char buf[32];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		abuse_format_duration(cases[i].s, buf, sizeof(buf));
		CHECK_STR(buf, cases[i].want);
	}
	abuse_format_duration(5400, buf, 3); /* truncated, terminated */
	CHECK(strlen(buf) < 3);
}

int
main(void)
{
	log_init("test_abuse", LOG_LEVEL_WARN);
	RUN(test_thresholds_per_kind);
	RUN(test_window);
	RUN(test_disabled_and_log_only);
	RUN(test_escalation);
	RUN(test_account_brute_force);
	RUN(test_allow_list_never_banned);
	RUN(test_ipv6_prefix);
	RUN(test_many_sources);
	RUN(test_format_duration);
	filter_close(&srv.filter, 0);
	abuse_reset();
	return HARNESS_DONE();
}
