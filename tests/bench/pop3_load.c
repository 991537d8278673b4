/* pop3_load: the benchmark's POP3 client. One thread drives C clients with
 * epoll; each client takes the next mailbox in turn and does USER, PASS,
 * STAT, UIDL, RETR of every message, DELE of every message and QUIT, until
 * every mailbox has been emptied. It checks that the UIDL listing has one
 * line per message and that the octets retrieved add up to STAT's size.
 *
 * usage: pop3_load -p PORT [-H HOST] [-c CLIENTS] [-n MAILBOXES]
 *                  [-u PREFIX] [-D DOMAIN] [-w PASSWORD] [-L] [-T SECONDS]
 *                  [-I SECONDS]
 *   mailboxes are PREFIX1@DOMAIN .. PREFIX<n>@DOMAIN (default 100, "user",
 *   "bench.test"); -L logs in and quits only (to measure the login cost).
 * Prints key=value lines; exits 0 when every mailbox was emptied. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "bench_net.h"

#define INBUF_SIZE (64 * 1024)
#define MAX_CONN_ERRORS 100

enum pop_state {
	PS_IDLE,
	PS_CONNECTING,
	PS_GREETING,
	PS_USER,
	PS_PASS,
	PS_STAT,
	PS_UIDL,
	PS_RETR,
	PS_DELE,
	PS_QUIT
};

struct conn {
	int fd;
	enum pop_state state;
	int multi;              /* inside a multi-line response */
	uint64_t gen;
	uint64_t box;           /* 1-based mailbox being worked on */
	uint64_t nmsgs;         /* from STAT */
	uint64_t stat_size;
	uint64_t cur;           /* message number of the RETR/DELE in flight */
	uint64_t uidl_lines;
	uint64_t retr_octets;   /* this mailbox, all RETRs */
	uint64_t msg_octets;    /* the RETR in flight */
	uint64_t t_pass;
	uint64_t last_io;
	uint32_t events;
	struct bench_inbuf in;
	struct bench_outbuf out;
};

struct load {
	const char *host;
	const char *port;
	uint64_t clients;
	uint64_t mailboxes;
	const char *prefix;
	const char *domain;
	const char *password;
	int login_only;
	uint64_t run_timeout_us;
	uint64_t io_timeout_us;

	int epfd;
	struct conn *conns;
	uint64_t next_box;
	uint64_t ok_boxes;
	uint64_t failed_boxes;
	uint64_t conn_errors;
	uint64_t messages;
	uint64_t octets;
	uint64_t mismatches;
	uint32_t *login_us;
	uint64_t nlogin;
	uint64_t t_start;
	uint64_t t_last;
	char first_error[256];
};

static void usage(void) __attribute__((noreturn));
static void load_error(struct load *l, const char *what, const char *detail);
static int conn_want(struct load *l, struct conn *c, uint32_t events);
static void conn_open(struct load *l, struct conn *c);
static void conn_close(struct conn *c);
static void conn_fail(struct load *l, struct conn *c, const char *why,
		      const char *detail);
static int conn_send(struct load *l, struct conn *c);
static void conn_command(struct load *l, struct conn *c, enum pop_state next,
			 const char *verb, uint64_t arg);
static void conn_status(struct load *l, struct conn *c, const char *line,
			size_t len);
static void conn_multi_end(struct load *l, struct conn *c);
static void conn_readable(struct load *l, struct conn *c);
static void conn_connected(struct load *l, struct conn *c);
static void report(struct load *l);

static void
usage(void)
{
	fprintf(stderr, "usage: pop3_load -p PORT [-H HOST] [-c CLIENTS] "
		"[-n MAILBOXES] [-u PREFIX] [-D DOMAIN] [-w PASSWORD] [-L] "
		"[-T SECONDS] [-I SECONDS]\n");
	exit(2);
}

static void
load_error(struct load *l, const char *what, const char *detail)
{
	bench_first_error(l->first_error, sizeof(l->first_error), what,
			  detail);
}

static int
conn_want(struct load *l, struct conn *c, uint32_t events)
{
	return bench_epoll_want(l->epfd, c->fd, &c->events, events, c);
}

static void
conn_open(struct load *l, struct conn *c)
{
	if (l->next_box >= l->mailboxes || l->conn_errors >= MAX_CONN_ERRORS)
		return;
	c->fd = bench_connect_start(l->host, l->port);
	if (c->fd == -1) {
		l->conn_errors++;
		load_error(l, "connect", strerror(errno));
		return;
	}
	c->box = ++l->next_box;
	c->gen++;
	c->events = 0;
	c->state = PS_CONNECTING;
	c->multi = 0;
	c->nmsgs = c->stat_size = c->cur = 0;
	c->uidl_lines = c->retr_octets = c->msg_octets = 0;
	c->last_io = bench_now_us();
	bench_inbuf_reset(&c->in);
	c->out.off = c->out.len = 0;
	if (conn_want(l, c, EPOLLOUT) == -1)
		conn_fail(l, c, "epoll_ctl", strerror(errno));
}

static void
conn_close(struct conn *c)
{
	if (c->state == PS_IDLE)
		return;
	close(c->fd);
	c->fd = -1;
	c->events = 0;
	c->state = PS_IDLE;
}

static void
conn_fail(struct load *l, struct conn *c, const char *why, const char *detail)
{
	l->failed_boxes++;
	load_error(l, why, detail);
	conn_close(c);
}

static int
conn_send(struct load *l, struct conn *c)
{
	int r = bench_outbuf_flush(&c->out, c->fd);

	if (r == -1) {
		conn_fail(l, c, "write", strerror(errno));
		return -1;
	}
	if (conn_want(l, c, r == 1 ? EPOLLIN : EPOLLIN | EPOLLOUT) == -1) {
		conn_fail(l, c, "epoll_ctl", strerror(errno));
		return -1;
	}
	return 0;
}

/* Sends "VERB" or "VERB arg" and moves to next. */
static void
conn_command(struct load *l, struct conn *c, enum pop_state next,
	     const char *verb, uint64_t arg)
{
	int r;

	if (arg > 0)
		r = bench_outbuf_printf(&c->out, "%s %" PRIu64 "\r\n", verb,
					arg);
	else
		r = bench_outbuf_printf(&c->out, "%s\r\n", verb);
	if (r == -1) {
		conn_fail(l, c, "output", "buffer full");
		return;
	}
	c->state = next;
	conn_send(l, c);
}

/* A status line: "+OK ..." or "-ERR ...". */
static void
conn_status(struct load *l, struct conn *c, const char *line, size_t len)
{
	char text[160];
	int ok = len >= 3 && memcmp(line, "+OK", 3) == 0;
	unsigned long long n, size;
	uint32_t lat;

	if (!ok) {
		if (snprintf(text, sizeof(text), "%.*s",
			     (int)(len > 150 ? 150 : len), line) < 0)
			text[0] = '\0';
		conn_fail(l, c, "reply", text);
		return;
	}
	switch (c->state) {
	case PS_GREETING:
		if (bench_outbuf_printf(&c->out, "USER %s%" PRIu64 "@%s\r\n",
					l->prefix, c->box, l->domain) == -1) {
			conn_fail(l, c, "output", "buffer full");
			return;
		}
		c->state = PS_USER;
		conn_send(l, c);
		return;
	case PS_USER:
		if (bench_outbuf_printf(&c->out, "PASS %s\r\n", l->password)
		    == -1) {
			conn_fail(l, c, "output", "buffer full");
			return;
		}
		c->state = PS_PASS;
		c->t_pass = bench_now_us();
		conn_send(l, c);
		return;
	case PS_PASS:
		lat = (uint32_t)(bench_now_us() - c->t_pass);
		if (l->nlogin < l->mailboxes)
			l->login_us[l->nlogin++] = lat;
		if (l->login_only)
			conn_command(l, c, PS_QUIT, "QUIT", 0);
		else
			conn_command(l, c, PS_STAT, "STAT", 0);
		return;
	case PS_STAT:
		if (sscanf(line, "+OK %llu %llu", &n, &size) != 2) {
			conn_fail(l, c, "STAT", "unparsable reply");
			return;
		}
		c->nmsgs = n;
		c->stat_size = size;
		conn_command(l, c, PS_UIDL, "UIDL", 0);
		return;
	case PS_UIDL:
	case PS_RETR:
		/* RFC 1939 §3: a multi-line response follows. */
		c->multi = 1;
		c->msg_octets = 0;
		return;
	case PS_DELE:
		if (c->cur < c->nmsgs) {
			c->cur++;
			conn_command(l, c, PS_DELE, "DELE", c->cur);
		} else {
			conn_command(l, c, PS_QUIT, "QUIT", 0);
		}
		return;
	case PS_QUIT:
		/* RFC 1939 §6: the deletions happen in the UPDATE state,
		 * which this +OK confirms. */
		l->ok_boxes++;
		l->t_last = bench_now_us();
		conn_close(c);
		conn_open(l, c);
		return;
	case PS_IDLE:
	case PS_CONNECTING:
		break;
	}
	conn_fail(l, c, "protocol", "reply in an unexpected state");
}

/* The terminating "." of a multi-line response. */
static void
conn_multi_end(struct load *l, struct conn *c)
{
	c->multi = 0;
	if (c->state == PS_UIDL) {
		if (c->uidl_lines != c->nmsgs)
			l->mismatches++;
		c->cur = 0;
	} else {
		l->messages++;
		l->octets += c->msg_octets;
		c->retr_octets += c->msg_octets;
	}
	if (c->cur < c->nmsgs) {
		c->cur++;
		conn_command(l, c, PS_RETR, "RETR", c->cur);
		return;
	}
	if (c->retr_octets != c->stat_size) {
		l->mismatches++;
		load_error(l, "size", "octets retrieved differ from STAT");
	}
	if (c->nmsgs == 0) {
		conn_command(l, c, PS_QUIT, "QUIT", 0);
		return;
	}
	c->cur = 1;
	conn_command(l, c, PS_DELE, "DELE", 1);
}

static void
conn_readable(struct load *l, struct conn *c)
{
	enum bench_fill r;
	const char *line;
	size_t len;
	uint64_t gen = c->gen;

	r = bench_inbuf_fill(&c->in, c->fd);
	if (r == BENCH_FILL_AGAIN)
		return;
	if (r == BENCH_FILL_ERROR) {
		conn_fail(l, c, "read", strerror(errno));
		return;
	}
	c->last_io = bench_now_us();
	while (bench_inbuf_line(&c->in, &line, &len)) {
		if (c->multi) {
			if (line[0] == '.' &&
			    (len == 2 || (len == 3 && line[1] == '\r'))) {
				conn_multi_end(l, c);
			} else if (c->state == PS_UIDL) {
				c->uidl_lines++;
			} else {
				/* RFC 1939 §3: a leading "." was doubled. */
				c->msg_octets += line[0] == '.' ? len - 1 : len;
			}
		} else {
			conn_status(l, c, line, len);
		}
		if (c->gen != gen || c->state == PS_IDLE)
			return;
	}
	if (r == BENCH_FILL_EOF)
		conn_fail(l, c, "read", "connection closed by the server");
}

static void
conn_connected(struct load *l, struct conn *c)
{
	int err;

	c->last_io = bench_now_us();
	err = bench_connect_result(c->fd);
	if (err != 0) {
		l->conn_errors++;
		/* Nothing was done to the mailbox: give it back. */
		l->next_box--;
		l->failed_boxes--;
		conn_fail(l, c, "connect", strerror(err));
		return;
	}
	c->state = PS_GREETING;
	if (conn_want(l, c, EPOLLIN) == -1)
		conn_fail(l, c, "epoll_ctl", strerror(errno));
}

static void
report(struct load *l)
{
	double secs = (double)(l->t_last - l->t_start) / 1e6;
	uint64_t p50 = 0, p99 = 0;

	if (l->t_last == 0)
		secs = 0.0;
	qsort(l->login_us, l->nlogin, sizeof(l->login_us[0]), bench_cmp_u32);
	if (l->nlogin > 0) {
		p50 = l->login_us[bench_percentile_index(l->nlogin, 50)];
		p99 = l->login_us[bench_percentile_index(l->nlogin, 99)];
	}
	printf("mailboxes=%" PRIu64 "\nok_mailboxes=%" PRIu64
	       "\nfailed_mailboxes=%" PRIu64 "\nconnect_errors=%" PRIu64
	       "\nmessages=%" PRIu64 "\noctets=%" PRIu64 "\nmismatches=%" PRIu64
	       "\nelapsed_s=%.6f\nmsg_per_s=%.1f\nmb_per_s=%.3f"
	       "\nlogin_p50_us=%" PRIu64 "\nlogin_p99_us=%" PRIu64 "\n",
	       l->mailboxes, l->ok_boxes, l->failed_boxes, l->conn_errors,
	       l->messages, l->octets, l->mismatches, secs,
	       secs > 0 ? (double)l->messages / secs : 0.0,
	       secs > 0 ? (double)l->octets / secs / 1e6 : 0.0, p50, p99);
	bench_print_cpu(stdout);
	printf("first_error=%s\n", l->first_error);
}

int
main(int argc, char **argv)
{
	struct load load, *l = &load;
	struct epoll_event evs[256];
	uint64_t v, now, deadline, i;
	int ch, n, k, active;

	memset(l, 0, sizeof(*l));
	l->host = "127.0.0.1";
	l->clients = 1;
	l->mailboxes = 100;
	l->prefix = "user";
	l->domain = "bench.test";
	l->password = "benchpw";
	l->run_timeout_us = 600 * 1000000ull;
	l->io_timeout_us = 60 * 1000000ull;
	while ((ch = getopt(argc, argv, "H:p:c:n:u:D:w:LT:I:")) != -1) {
		switch (ch) {
		case 'H': l->host = optarg; break;
		case 'p': l->port = optarg; break;
		case 'c':
			if (bench_parse_u64(optarg, 1, 100000, &l->clients))
				usage();
			break;
		case 'n':
			if (bench_parse_u64(optarg, 1, 1000000, &l->mailboxes))
				usage();
			break;
		case 'u': l->prefix = optarg; break;
		case 'D': l->domain = optarg; break;
		case 'w': l->password = optarg; break;
		case 'L': l->login_only = 1; break;
		case 'T':
			if (bench_parse_u64(optarg, 1, 86400, &v))
				usage();
			l->run_timeout_us = v * 1000000;
			break;
		case 'I':
			if (bench_parse_u64(optarg, 1, 86400, &v))
				usage();
			l->io_timeout_us = v * 1000000;
			break;
		default:
			usage();
		}
	}
	if (l->port == NULL || optind != argc)
		usage();
	signal(SIGPIPE, SIG_IGN);
	if (bench_raise_nofile(l->clients + 64) < l->clients + 16) {
		fprintf(stderr, "pop3_load: RLIMIT_NOFILE too low\n");
		return 2;
	}
	l->conns = calloc(l->clients, sizeof(l->conns[0]));
	l->login_us = calloc(l->mailboxes, sizeof(l->login_us[0]));
	if (l->conns == NULL || l->login_us == NULL)
		abort();
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd == -1) {
		perror("epoll_create1");
		return 2;
	}
	l->t_start = bench_now_us();
	deadline = l->t_start + l->run_timeout_us;
	for (i = 0; i < l->clients; i++) {
		l->conns[i].fd = -1;
		l->conns[i].state = PS_IDLE;
		bench_inbuf_init(&l->conns[i].in, INBUF_SIZE);
		bench_outbuf_init(&l->conns[i].out, 1024);
		conn_open(l, &l->conns[i]);
	}
	for (;;) {
		n = epoll_wait(l->epfd, evs, 256, 100);
		if (n == -1 && errno != EINTR) {
			perror("epoll_wait");
			break;
		}
		for (k = 0; k < n; k++) {
			struct conn *c = evs[k].data.ptr;
			uint32_t e = evs[k].events;

			if (c->state == PS_IDLE)
				continue;
			if (c->state == PS_CONNECTING) {
				conn_connected(l, c);
				continue;
			}
			if (e & EPOLLOUT && c->out.len > 0 &&
			    conn_send(l, c) == -1)
				continue;
			if (e & (EPOLLIN | EPOLLERR | EPOLLHUP))
				conn_readable(l, c);
		}
		now = bench_now_us();
		active = 0;
		for (i = 0; i < l->clients; i++) {
			struct conn *c = &l->conns[i];

			if (c->state == PS_IDLE)
				conn_open(l, c);
			if (c->state == PS_IDLE)
				continue;
			if (now > c->last_io + l->io_timeout_us) {
				conn_fail(l, c, "timeout", "no reply");
				continue;
			}
			active++;
		}
		if (active == 0 && (l->next_box >= l->mailboxes ||
				    l->conn_errors >= MAX_CONN_ERRORS))
			break;
		if (now > deadline) {
			load_error(l, "timeout", "run bound reached");
			break;
		}
	}
	report(l);
	for (i = 0; i < l->clients; i++) {
		if (l->conns[i].state != PS_IDLE)
			close(l->conns[i].fd);
		bench_inbuf_free(&l->conns[i].in);
		bench_outbuf_free(&l->conns[i].out);
	}
	close(l->epfd);
	free(l->conns);
	free(l->login_us);
	return l->ok_boxes == l->mailboxes && l->mismatches == 0 ? 0 : 1;
}
