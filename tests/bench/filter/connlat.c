/* make bench-filter: a legitimate client's connect latency. Opens --count
 * TCP connections one after another, one every --interval-ms, from --src
 * to --dst:--port, and times each connect() (SYN out to SYN-ACK in); a
 * connection not established within --timeout-ms counts as failed. Stops
 * early after --seconds. Prints one line:
 *   tries=N ok=N failed=N slow=N p50_ms=X p90_ms=X p99_ms=X max_ms=X
 * (percentiles over the successful connects, nearest rank; slow: connects
 * that took 900 ms or more, i.e. waited for a SYN retransmission, whose
 * first timeout is 1 s: RFC 6298 2.1). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_COUNT 10000
#define SLOW_NS 900000000ULL

struct probe {
	struct sockaddr_in src, dst;
	unsigned count, interval_ms, timeout_ms;
	double seconds;
};

static uint64_t probe_now_ns(void);
static void probe_sleep_until(uint64_t t_ns);
static int probe_one(const struct probe *p, uint64_t *ns_r);
static int probe_cmp(const void *a, const void *b);
static double probe_rank(const uint64_t *v, unsigned n, unsigned pct);
static int probe_parse_uint(const char *s, unsigned min, unsigned max,
			    unsigned *out);

static uint64_t
probe_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void
probe_sleep_until(uint64_t t_ns)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(t_ns / 1000000000ULL);
	ts.tv_nsec = (long)(t_ns % 1000000000ULL);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

/* One non-blocking connect, timed from the connect() call until the
 * socket is writable. 0 with the time in *ns_r, or -1 (refused, timed
 * out: reported with its reason on stderr). */
static int
probe_one(const struct probe *p, uint64_t *ns_r)
{
	struct pollfd pfd;
	uint64_t t0;
	socklen_t len = sizeof(int);
	int fd, err = 0, rc;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (const struct sockaddr *)&p->src, sizeof(p->src)) < 0) {
		perror("connlat: bind");
		close(fd);
		return -1;
	}
	t0 = probe_now_ns();
	if (connect(fd, (const struct sockaddr *)&p->dst, sizeof(p->dst)) < 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	pfd.fd = fd;
	pfd.events = POLLOUT;
	do
		rc = poll(&pfd, 1, (int)p->timeout_ms);
	while (rc < 0 && errno == EINTR);
	*ns_r = probe_now_ns() - t0;
	if (rc == 1)
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
	close(fd);
	return rc == 1 && err == 0 ? 0 : -1;
}

static int
probe_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v, in milliseconds. */
static double
probe_rank(const uint64_t *v, unsigned n, unsigned pct)
{
	unsigned k = (pct * n + 99) / 100;

	if (n == 0)
		return 0;
	if (k == 0)
		k = 1;
	return (double)v[k - 1] / 1e6;
}

/* A decimal number from min to max. 0 or -1. */
static int
probe_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"src", required_argument, NULL, 's'},
	    {"dst", required_argument, NULL, 'd'},
	    {"port", required_argument, NULL, 'p'},
	    {"count", required_argument, NULL, 'n'},
	    {"interval-ms", required_argument, NULL, 'i'},
	    {"timeout-ms", required_argument, NULL, 'T'},
	    {"seconds", required_argument, NULL, 't'},
	    {NULL, 0, NULL, 0},
	};
	struct probe p;
	uint64_t *lat, start, ns;
	unsigned tries = 0, ok = 0, slow = 0, port = 0;
	int ch;
	char *end;

	memset(&p, 0, sizeof(p));
	p.src.sin_family = p.dst.sin_family = AF_INET;
	p.count = 100;
	p.interval_ms = 10;
	p.timeout_ms = 3000;
	p.seconds = 30;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
		case 'd':
			if (inet_pton(AF_INET, optarg,
				      ch == 's' ? &p.src.sin_addr
						: &p.dst.sin_addr) != 1)
				goto usage;
			break;
		case 'p':
			if (probe_parse_uint(optarg, 1, 65535, &port) < 0)
				goto usage;
			break;
		case 'n':
			if (probe_parse_uint(optarg, 1, MAX_COUNT, &p.count) <
			    0)
				goto usage;
			break;
		case 'i':
			if (probe_parse_uint(optarg, 0, 60000, &p.interval_ms) <
			    0)
				goto usage;
			break;
		case 'T':
			if (probe_parse_uint(optarg, 1, 60000, &p.timeout_ms) <
			    0)
				goto usage;
			break;
		case 't':
			p.seconds = strtod(optarg, &end);
			if (*end != '\0' || p.seconds <= 0 || p.seconds > 300)
				goto usage;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc || port == 0 || p.src.sin_addr.s_addr == 0 ||
	    p.dst.sin_addr.s_addr == 0)
		goto usage;
	p.dst.sin_port = htons((uint16_t)port);
	if ((lat = calloc(p.count, sizeof(*lat))) == NULL) {
		perror("connlat: calloc");
		return 1;
	}
	start = probe_now_ns();
	while (tries < p.count &&
	       (double)(probe_now_ns() - start) / 1e9 < p.seconds) {
		probe_sleep_until(start +
				  (uint64_t)tries * p.interval_ms * 1000000ULL);
		tries++;
		if (probe_one(&p, &ns) == 0) {
			lat[ok++] = ns;
			slow += ns >= SLOW_NS;
		}
	}
	qsort(lat, ok, sizeof(*lat), probe_cmp);
	printf("tries=%u ok=%u failed=%u slow=%u p50_ms=%.3f p90_ms=%.3f "
	       "p99_ms=%.3f max_ms=%.3f\n",
	       tries, ok, tries - ok, slow, probe_rank(lat, ok, 50),
	       probe_rank(lat, ok, 90), probe_rank(lat, ok, 99),
	       ok ? (double)lat[ok - 1] / 1e6 : 0.0);
	free(lat);
	return 0;
usage:
	fprintf(stderr, "usage: connlat --src IPV4 --dst IPV4 --port PORT "
			"[--count N] [--interval-ms N]\n"
			"               [--timeout-ms N] [--seconds S]\n");
	return 2;
}
