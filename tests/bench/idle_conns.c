/* idle_conns: opens N SMTP connections, reads each greeting, sends EHLO,
 * reads its reply and then holds every connection open, so that the
 * benchmark can measure the server's memory per idle connection.
 *
 * usage: idle_conns -p PORT -n N [-H HOST] [-i INFLIGHT] [-C SECONDS]
 *                   [-G SECONDS] [-W SECONDS]
 *   -i  connections not yet greeted at once (default 100): the client
 *       paces itself by greetings, so that it measures how many idle
 *       connections the server holds, not how it absorbs a SYN burst
 *       larger than its listen backlog
 *   -C  give up on one connect after this long (default 10 s)
 *   -G  after the last connect, wait this long for greetings (default 20 s)
 *   -S  stop connecting (or waiting for greetings) when nothing has
 *       progressed for this long (default 5 s): a server that stops
 *       accepting, like Postfix at its process limit, ends the phase
 *   -W  hold at most this long (default 300 s)
 * Prints one "ready ..." line when every connection is greeted (or the
 * bound is reached), then holds until stdin has a line or closes, and
 * prints a "done ..." line: how many the server closed meanwhile. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "bench_net.h"

#define INBUF_SIZE 2048

enum idle_state {
	IS_NEW,                 /* not yet attempted */
	IS_CONNECTING,
	IS_GREETING,
	IS_EHLO,
	IS_HELD,
	IS_FAILED
};

struct conn {
	int fd;
	enum idle_state state;
	uint64_t t_connect;
	struct bench_inbuf in;
};

struct idle {
	const char *host;
	const char *port;
	uint64_t n;
	uint64_t inflight_max;
	uint64_t connect_timeout_us;
	uint64_t greet_wait_us;
	uint64_t hold_max_us;
	uint64_t stall_us;

	int epfd;
	struct conn *conns;
	uint64_t inflight;      /* connecting or waiting for the greeting */
	uint64_t connected;
	uint64_t greeted;
	uint64_t ehlo_ok;
	uint64_t refused;
	uint64_t connect_timeouts;
	uint64_t not_tried;     /* left out after a stall */
	uint64_t rejected;      /* a greeting other than 220 (e.g. 421) */
	uint64_t closed;        /* closed by the server before the hold */
	uint64_t dropped;       /* closed by the server during the hold */
	int holding;
	char first_error[200];
};

static void usage(void) __attribute__((noreturn));
static void idle_error(struct idle *d, const char *what, const char *detail);
static void conn_fail(struct idle *d, struct conn *c, const char *why,
		      const char *detail);
static void conn_start(struct idle *d, struct conn *c);
static void conn_connected(struct idle *d, struct conn *c);
static void conn_readable(struct idle *d, struct conn *c);
static int idle_poll(struct idle *d, int timeout_ms, int *stdin_ready_r);
static uint64_t idle_pending(const struct idle *d);

static void
usage(void)
{
	fprintf(stderr, "usage: idle_conns -p PORT -n N [-H HOST] "
		"[-i INFLIGHT] [-C SECONDS] [-G SECONDS] [-S SECONDS] "
		"[-W SECONDS]\n");
	exit(2);
}

static void
idle_error(struct idle *d, const char *what, const char *detail)
{
	size_t n;

	if (d->first_error[0] != '\0')
		return;
	if (snprintf(d->first_error, sizeof(d->first_error), "%s: %.*s",
		     what, 120, detail) >= (int)sizeof(d->first_error))
		d->first_error[sizeof(d->first_error) - 1] = '\0';
	n = strcspn(d->first_error, "\r\n");
	d->first_error[n] = '\0';
}

static void
conn_fail(struct idle *d, struct conn *c, const char *why, const char *detail)
{
	if (c->state == IS_CONNECTING || c->state == IS_GREETING)
		d->inflight--;
	idle_error(d, why, detail);
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	c->state = IS_FAILED;
	bench_inbuf_free(&c->in);
}

static void
conn_start(struct idle *d, struct conn *c)
{
	struct epoll_event ev;

	c->fd = bench_connect_start(d->host, d->port);
	if (c->fd == -1) {
		d->refused++;
		c->state = IS_FAILED;
		idle_error(d, "connect", strerror(errno));
		return;
	}
	c->state = IS_CONNECTING;
	c->t_connect = bench_now_us();
	d->inflight++;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLOUT;
	ev.data.ptr = c;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, c->fd, &ev) == -1)
		conn_fail(d, c, "epoll_ctl", strerror(errno));
}

static void
conn_connected(struct idle *d, struct conn *c)
{
	struct epoll_event ev;
	int err = bench_connect_result(c->fd);

	if (err != 0) {
		d->refused++;
		conn_fail(d, c, "connect", strerror(err));
		return;
	}
	d->connected++;
	c->state = IS_GREETING;
	bench_inbuf_init(&c->in, INBUF_SIZE);
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(d->epfd, EPOLL_CTL_MOD, c->fd, &ev) == -1)
		conn_fail(d, c, "epoll_ctl", strerror(errno));
}

static void
conn_readable(struct idle *d, struct conn *c)
{
	static const char ehlo[] = "EHLO idle.client.test\r\n";
	enum bench_fill r;
	const char *line;
	size_t len;

	r = bench_inbuf_fill(&c->in, c->fd);
	if (r == BENCH_FILL_AGAIN)
		return;
	if (r == BENCH_FILL_ERROR) {
		conn_fail(d, c, "read", strerror(errno));
		return;
	}
	while (bench_inbuf_line(&c->in, &line, &len)) {
		if (len < 5)
			continue;
		if (line[3] == '-')
			continue;
		if (c->state == IS_GREETING) {
			if (memcmp(line, "220", 3) != 0) {
				d->rejected++;
				conn_fail(d, c, "greeting", line);
				return;
			}
			d->greeted++;
			d->inflight--;
			/* One small command: the socket buffer takes it. */
			if (write(c->fd, ehlo, sizeof(ehlo) - 1) !=
			    (ssize_t)(sizeof(ehlo) - 1)) {
				conn_fail(d, c, "write", strerror(errno));
				return;
			}
			c->state = IS_EHLO;
		} else if (c->state == IS_EHLO) {
			if (memcmp(line, "250", 3) != 0) {
				conn_fail(d, c, "EHLO", line);
				return;
			}
			d->ehlo_ok++;
			c->state = IS_HELD;
		}
	}
	if (r == BENCH_FILL_EOF) {
		if (d->holding)
			d->dropped++;
		else
			d->closed++;
		conn_fail(d, c, "read", "connection closed by the server");
	}
}

/* One epoll round. Returns -1 on a fatal error. */
static int
idle_poll(struct idle *d, int timeout_ms, int *stdin_ready_r)
{
	struct epoll_event evs[512];
	int n, k;

	n = epoll_wait(d->epfd, evs, 512, timeout_ms);
	if (n == -1)
		return errno == EINTR ? 0 : -1;
	for (k = 0; k < n; k++) {
		struct conn *c = evs[k].data.ptr;

		if (c == NULL) {
			*stdin_ready_r = 1;
			continue;
		}
		if (c->state == IS_CONNECTING)
			conn_connected(d, c);
		else if (c->state != IS_FAILED && c->state != IS_NEW)
			conn_readable(d, c);
	}
	return 0;
}

/* Connections that are neither held nor failed. */
static uint64_t
idle_pending(const struct idle *d)
{
	uint64_t i, p = 0;

	for (i = 0; i < d->n; i++)
		if (d->conns[i].state != IS_HELD &&
		    d->conns[i].state != IS_FAILED)
			p++;
	return p;
}

int
main(int argc, char **argv)
{
	struct idle idle, *d = &idle;
	struct epoll_event ev;
	uint64_t v, i, next = 0, now, t0, t_connected = 0, t_ready, end;
	uint64_t progress, last_progress, t_progress;
	int ch, stdin_ready = 0;
	char buf[256];

	memset(d, 0, sizeof(*d));
	d->host = "127.0.0.1";
	d->inflight_max = 100;
	d->connect_timeout_us = 10 * 1000000ull;
	d->greet_wait_us = 20 * 1000000ull;
	d->hold_max_us = 300 * 1000000ull;
	d->stall_us = 5 * 1000000ull;
	while ((ch = getopt(argc, argv, "H:p:n:i:C:G:S:W:")) != -1) {
		switch (ch) {
		case 'H': d->host = optarg; break;
		case 'p': d->port = optarg; break;
		case 'n':
			if (bench_parse_u64(optarg, 1, 1000000, &d->n))
				usage();
			break;
		case 'i':
			if (bench_parse_u64(optarg, 1, 100000,
					    &d->inflight_max))
				usage();
			break;
		case 'C':
		case 'G':
		case 'S':
		case 'W':
			if (bench_parse_u64(optarg, 1, 86400, &v))
				usage();
			v *= 1000000;
			if (ch == 'C')
				d->connect_timeout_us = v;
			else if (ch == 'G')
				d->greet_wait_us = v;
			else if (ch == 'S')
				d->stall_us = v;
			else
				d->hold_max_us = v;
			break;
		default:
			usage();
		}
	}
	if (d->port == NULL || d->n == 0 || optind != argc)
		usage();
	signal(SIGPIPE, SIG_IGN);
	if (bench_raise_nofile(d->n + 64) < d->n + 16) {
		fprintf(stderr, "idle_conns: RLIMIT_NOFILE too low for %" PRIu64
			" connections (raise the hard limit)\n", d->n);
		return 2;
	}
	d->conns = calloc(d->n, sizeof(d->conns[0]));
	if (d->conns == NULL)
		abort();
	for (i = 0; i < d->n; i++) {
		d->conns[i].fd = -1;
		d->conns[i].state = IS_NEW;
	}
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (d->epfd == -1) {
		perror("epoll_create1");
		return 2;
	}

	/* Connect, a bounded number in flight so that the listen backlog is
	 * not what is measured. */
	t0 = t_progress = bench_now_us();
	last_progress = 0;
	for (;;) {
		while (next < d->n && d->inflight < d->inflight_max)
			conn_start(d, &d->conns[next++]);
		if (idle_poll(d, 20, &stdin_ready) == -1)
			break;
		now = bench_now_us();
		for (i = 0; i < next; i++) {
			struct conn *c = &d->conns[i];

			if (c->state == IS_CONNECTING &&
			    now - c->t_connect > d->connect_timeout_us) {
				d->connect_timeouts++;
				conn_fail(d, c, "connect", "timed out");
			}
		}
		if (next == d->n && d->inflight == 0)
			break;
		progress = d->connected + d->greeted + d->ehlo_ok;
		if (progress != last_progress) {
			last_progress = progress;
			t_progress = now;
		} else if (now - t_progress > d->stall_us) {
			/* The server takes no more: give up on the rest. */
			for (i = 0; i < next; i++)
				if (d->conns[i].state == IS_CONNECTING) {
					d->connect_timeouts++;
					conn_fail(d, &d->conns[i], "connect",
						  "stalled");
				}
			d->not_tried = d->n - next;
			break;
		}
	}
	t_connected = bench_now_us();

	/* Wait for the remaining greetings and EHLO replies. */
	end = t_connected + d->greet_wait_us;
	t_progress = t_connected;
	while (idle_pending(d) > 0 && (now = bench_now_us()) < end &&
	       now - t_progress < d->stall_us) {
		if (idle_poll(d, 50, &stdin_ready) == -1)
			break;
		progress = d->connected + d->greeted + d->ehlo_ok;
		if (progress != last_progress) {
			last_progress = progress;
			t_progress = bench_now_us();
		}
	}
	t_ready = bench_now_us();
	printf("ready n=%" PRIu64 " connected=%" PRIu64 " greeted=%" PRIu64
	       " ehlo_ok=%" PRIu64 " refused=%" PRIu64 " connect_timeouts=%"
	       PRIu64 " not_tried=%" PRIu64 " rejected=%" PRIu64
	       " closed=%" PRIu64
	       " connect_s=%.3f ready_s=%.3f\n",
	       d->n, d->connected, d->greeted, d->ehlo_ok, d->refused,
	       d->connect_timeouts, d->not_tried, d->rejected, d->closed,
	       (double)(t_connected - t0) / 1e6, (double)(t_ready - t0) / 1e6);
	fflush(stdout);

	/* Hold until told to stop. */
	d->holding = 1;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, STDIN_FILENO, &ev) == -1)
		stdin_ready = 1;        /* not pollable (e.g. /dev/null) */
	end = bench_now_us() + d->hold_max_us;
	while (!stdin_ready && bench_now_us() < end)
		if (idle_poll(d, 200, &stdin_ready) == -1)
			break;
	if (stdin_ready)
		(void)!read(STDIN_FILENO, buf, sizeof(buf));
	printf("done dropped=%" PRIu64 " held_s=%.3f\n", d->dropped,
	       (double)(bench_now_us() - t_ready) / 1e6);
	bench_print_cpu(stdout);
	printf("first_error=%s\n", d->first_error);
	fflush(stdout);
	for (i = 0; i < d->n; i++) {
		if (d->conns[i].fd != -1)
			close(d->conns[i].fd);
		if (d->conns[i].in.buf != NULL)
			bench_inbuf_free(&d->conns[i].in);
	}
	close(d->epfd);
	free(d->conns);
	return 0;
}
