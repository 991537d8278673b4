/* smtp_load: the benchmark's SMTP client. One thread drives S sessions with
 * epoll and sends M messages in all, one per session or many per session,
 * and measures the latency from the end of DATA (the last byte of
 * "\r\n.\r\n" written) to the server's 250, which is the time the server
 * takes to make the message durable.
 *
 * usage: smtp_load -p PORT [-H HOST] [-s SESSIONS] [-m MESSAGES] [-d]
 *                  [-b SIZE] [-n MAILBOXES] [-u PREFIX] [-D DOMAIN] [-P]
 *                  [-T SECONDS] [-I SECONDS]
 *   -d  many messages per session (default: one message per session)
 *   -b  message size in bytes, headers included (default 4096)
 *   -n  session i sends to PREFIX<i mod n + 1>@DOMAIN (default 100,
 *       "user", "bench.test")
 *   -P  pipeline MAIL, RCPT and DATA (RFC 2920) in one write
 *   -T  bound on the whole run (default 600 s); -I per-reply timeout (60 s)
 * Prints key=value lines; exits 0 when every message got its 250. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "bench_net.h"

#define LINE_MAX_IN 4096
#define MAX_CONN_ERRORS 1000

enum conn_state {
	CS_IDLE,                /* no connection in this slot */
	CS_CONNECTING,
	CS_GREETING,
	CS_EHLO,
	CS_MAIL,
	CS_RCPT,
	CS_DATA,
	CS_DOT,                 /* message sent, waiting for its reply */
	CS_QUIT
};

struct conn {
	int fd;
	unsigned int slot;
	enum conn_state state;
	uint64_t gen;           /* bumped by each connect of this slot */
	int in_tx;              /* a message is claimed by this session */
	int dot_pending;        /* the end of data is not written yet */
	uint64_t t_dot;
	uint64_t last_io;
	uint32_t events;        /* registered epoll events */
	struct bench_inbuf in;
	struct bench_outbuf out;
};

struct load {
	const char *host;
	const char *port;
	uint64_t sessions;
	uint64_t messages;
	uint64_t size;
	uint64_t mailboxes;
	const char *prefix;
	const char *domain;
	int many;
	int pipeline;
	uint64_t run_timeout_us;
	uint64_t io_timeout_us;

	int epfd;
	struct conn *conns;
	char *body;             /* CRLF lines, size bytes */
	uint64_t next_msg;      /* messages claimed so far */
	uint64_t ok;
	uint64_t failed;
	uint64_t conn_errors;
	uint64_t connects;
	uint32_t *lat_us;
	uint64_t nlat;
	uint64_t t_start;
	uint64_t t_last_ok;
	char first_error[256];
};

static void usage(void) __attribute__((noreturn));
static void load_error(struct load *l, const char *what, const char *detail);
static int conn_want(struct load *l, struct conn *c, uint32_t events);
static void conn_open(struct load *l, struct conn *c);
static void conn_close(struct load *l, struct conn *c);
static void conn_fail(struct load *l, struct conn *c, const char *why,
		      const char *detail);
static int conn_send(struct load *l, struct conn *c);
static void tx_start(struct load *l, struct conn *c);
static int tx_queue_message(struct load *l, struct conn *c);
static void conn_reply(struct load *l, struct conn *c, int code,
		       const char *line, size_t len);
static void conn_readable(struct load *l, struct conn *c);
static void conn_connected(struct load *l, struct conn *c);
static int work_left(const struct load *l);
static void report(struct load *l);

static void
usage(void)
{
	fprintf(stderr, "usage: smtp_load -p PORT [-H HOST] [-s SESSIONS] "
		"[-m MESSAGES] [-d] [-b SIZE] [-n MAILBOXES] [-u PREFIX] "
		"[-D DOMAIN] [-P] [-T SECONDS] [-I SECONDS]\n");
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

static int
work_left(const struct load *l)
{
	return l->next_msg < l->messages &&
	    l->conn_errors < MAX_CONN_ERRORS;
}

static void
conn_open(struct load *l, struct conn *c)
{
	if (!work_left(l))
		return;
	c->fd = bench_connect_start(l->host, l->port);
	if (c->fd == -1) {
		l->conn_errors++;
		load_error(l, "connect", strerror(errno));
		return;
	}
	l->connects++;
	c->gen++;
	c->events = 0;
	c->state = CS_CONNECTING;
	c->last_io = bench_now_us();
	c->dot_pending = 0;
	bench_inbuf_reset(&c->in);
	c->out.off = c->out.len = 0;
	/* One message per session: the session owns its message from the
	 * start, so that no session connects only to find nothing to send. */
	c->in_tx = 0;
	if (!l->many) {
		l->next_msg++;
		c->in_tx = 1;
	}
	if (conn_want(l, c, EPOLLOUT) == -1)
		conn_fail(l, c, "epoll_ctl", strerror(errno));
}

static void
conn_close(struct load *l, struct conn *c)
{
	if (c->state == CS_IDLE)
		return;
	close(c->fd);           /* also drops it from the epoll set */
	c->fd = -1;
	c->events = 0;
	c->state = CS_IDLE;
	c->in_tx = 0;
	(void)l;
}

static void
conn_fail(struct load *l, struct conn *c, const char *why, const char *detail)
{
	if (c->in_tx)
		l->failed++;
	load_error(l, why, detail);
	conn_close(l, c);
}

/* Flushes the output; arms EPOLLOUT while the socket is full. */
static int
conn_send(struct load *l, struct conn *c)
{
	int r = bench_outbuf_flush(&c->out, c->fd);

	if (r == -1) {
		conn_fail(l, c, "write", strerror(errno));
		return -1;
	}
	if (r == 1 && c->dot_pending) {
		c->dot_pending = 0;
		c->t_dot = bench_now_us();
	}
	if (conn_want(l, c, r == 1 ? EPOLLIN : EPOLLIN | EPOLLOUT) == -1) {
		conn_fail(l, c, "epoll_ctl", strerror(errno));
		return -1;
	}
	return 0;
}

static void
tx_start(struct load *l, struct conn *c)
{
	unsigned int box = (unsigned int)(c->slot % l->mailboxes) + 1;

	if (l->many) {
		if (l->next_msg >= l->messages) {
			c->state = CS_QUIT;
			if (bench_outbuf_printf(&c->out, "QUIT\r\n") == 0)
				conn_send(l, c);
			return;
		}
		l->next_msg++;
		c->in_tx = 1;
	}
	if (bench_outbuf_printf(&c->out, "MAIL FROM:<bench@client.test>\r\n")
	    == -1)
		goto full;
	if (l->pipeline &&
	    bench_outbuf_printf(&c->out, "RCPT TO:<%s%u@%s>\r\nDATA\r\n",
				l->prefix, box, l->domain) == -1)
		goto full;
	c->state = CS_MAIL;
	conn_send(l, c);
	return;
full:
	conn_fail(l, c, "output", "buffer full");
}

/* Queues the message and the end-of-data line. The body never has a line
 * starting with "." so no dot-stuffing is needed. */
static int
tx_queue_message(struct load *l, struct conn *c)
{
	char hdr[512];
	unsigned int box = (unsigned int)(c->slot % l->mailboxes) + 1;
	int n;
	size_t hlen, blen;

	n = snprintf(hdr, sizeof(hdr),
		     "From: <bench@client.test>\r\n"
		     "To: <%s%u@%s>\r\n"
		     "Subject: bench message %" PRIu64 "\r\n"
		     "Message-ID: <%" PRIu64 ".%u.%d@client.test>\r\n"
		     "\r\n",
		     l->prefix, box, l->domain, l->next_msg, l->next_msg,
		     c->slot, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(hdr))
		return -1;
	hlen = (size_t)n;
	blen = l->size > hlen ? l->size - hlen : 0;
	if (bench_outbuf_add(&c->out, hdr, hlen) == -1 ||
	    bench_outbuf_add(&c->out, l->body + (l->size - blen), blen) == -1 ||
	    bench_outbuf_add(&c->out, ".\r\n", 3) == -1)
		return -1;
	c->dot_pending = 1;
	return 0;
}

static void
conn_reply(struct load *l, struct conn *c, int code, const char *line,
	   size_t len)
{
	unsigned int box = (unsigned int)(c->slot % l->mailboxes) + 1;
	uint64_t now = bench_now_us(), lat;
	const char *why = "protocol";
	char text[160];
	int r = 0;

	if (snprintf(text, sizeof(text), "%.*s", (int)(len > 150 ? 150 : len),
		     line) < 0)
		text[0] = '\0';
	switch (c->state) {
	case CS_GREETING:
		why = "greeting";
		if (code != 220)
			break;
		r = bench_outbuf_printf(&c->out, "EHLO client.test\r\n");
		c->state = CS_EHLO;
		goto send;
	case CS_EHLO:
		why = "EHLO";
		if (code != 250)
			break;
		tx_start(l, c);
		return;
	case CS_MAIL:
		why = "MAIL";
		if (code != 250)
			break;
		c->state = CS_RCPT;
		if (l->pipeline)
			return;
		r = bench_outbuf_printf(&c->out, "RCPT TO:<%s%u@%s>\r\n",
					l->prefix, box, l->domain);
		goto send;
	case CS_RCPT:
		why = "RCPT";
		if (code != 250)
			break;
		c->state = CS_DATA;
		if (l->pipeline)
			return;
		r = bench_outbuf_printf(&c->out, "DATA\r\n");
		goto send;
	case CS_DATA:
		why = "DATA";
		if (code != 354)
			break;
		r = tx_queue_message(l, c);
		c->state = CS_DOT;
		goto send;
	case CS_DOT:
		if (c->dot_pending) {
			snprintf(text, sizeof(text), "a reply before the end "
				 "of data");
			break;
		}
		c->in_tx = 0;
		if (code == 250) {
			lat = now - c->t_dot;
			l->lat_us[l->nlat++] = lat > UINT32_MAX ? UINT32_MAX :
			    (uint32_t)lat;
			l->ok++;
			l->t_last_ok = now;
		} else {
			l->failed++;
			load_error(l, "end of data", text);
		}
		if (l->many) {
			tx_start(l, c);
			return;
		}
		r = bench_outbuf_printf(&c->out, "QUIT\r\n");
		c->state = CS_QUIT;
		goto send;
	case CS_QUIT:
		conn_close(l, c);
		conn_open(l, c);
		return;
	case CS_IDLE:
	case CS_CONNECTING:
		snprintf(text, sizeof(text), "a reply in an unexpected state");
		break;
	}
	conn_fail(l, c, why, text);
	return;
send:
	if (r == -1) {
		conn_fail(l, c, "output", "buffer full");
		return;
	}
	conn_send(l, c);
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
		/* RFC 5321 §4.2.1: "250-" lines continue a reply; the one
		 * with a space (or nothing) after the code ends it. */
		if (len < 5 || line[0] < '2' || line[0] > '5') {
			conn_fail(l, c, "reply", "malformed");
			return;
		}
		if (line[3] == '-')
			continue;
		conn_reply(l, c, (line[0] - '0') * 100 + (line[1] - '0') * 10 +
			   (line[2] - '0'), line, len);
		/* The reply may have ended this connection (and a new one
		 * may already use the slot). */
		if (c->gen != gen || c->state == CS_IDLE)
			return;
	}
	if (r == BENCH_FILL_EOF) {
		if (c->state == CS_QUIT) {
			conn_close(l, c);
			conn_open(l, c);
			return;
		}
		conn_fail(l, c, "read", "connection closed by the server");
	}
}

static void
conn_connected(struct load *l, struct conn *c)
{
	int err;

	c->last_io = bench_now_us();
	err = bench_connect_result(c->fd);
	if (err != 0) {
		l->conn_errors++;
		/* Nothing was sent: give the message back for a retry. */
		if (!l->many && c->in_tx) {
			l->next_msg--;
			c->in_tx = 0;
		}
		conn_fail(l, c, "connect", strerror(err));
		return;
	}
	c->state = CS_GREETING;
	if (conn_want(l, c, EPOLLIN) == -1)
		conn_fail(l, c, "epoll_ctl", strerror(errno));
}

static void
report(struct load *l)
{
	double secs;
	uint64_t p50 = 0, p90 = 0, p99 = 0, max = 0;

	qsort(l->lat_us, l->nlat, sizeof(l->lat_us[0]), bench_cmp_u32);
	if (l->nlat > 0) {
		p50 = l->lat_us[bench_percentile_index(l->nlat, 50)];
		p90 = l->lat_us[bench_percentile_index(l->nlat, 90)];
		p99 = l->lat_us[bench_percentile_index(l->nlat, 99)];
		max = l->lat_us[l->nlat - 1];
	}
	secs = l->ok > 0 ? (double)(l->t_last_ok - l->t_start) / 1e6 : 0.0;
	printf("messages=%" PRIu64 "\nok=%" PRIu64 "\nfailed=%" PRIu64
	       "\nunsent=%" PRIu64 "\nconnects=%" PRIu64
	       "\nconnect_errors=%" PRIu64 "\nelapsed_s=%.6f\nmsg_per_s=%.1f\n"
	       "lat_p50_us=%" PRIu64 "\nlat_p90_us=%" PRIu64
	       "\nlat_p99_us=%" PRIu64 "\nlat_max_us=%" PRIu64 "\n",
	       l->messages, l->ok, l->failed,
	       l->messages - l->ok - l->failed, l->connects, l->conn_errors,
	       secs, secs > 0 ? (double)l->ok / secs : 0.0, p50, p90, p99, max);
	bench_print_cpu(stdout);
	printf("first_error=%s\n", l->first_error);
}

int
main(int argc, char **argv)
{
	struct load load, *l = &load;
	struct epoll_event evs[256];
	uint64_t v, now, deadline, quit_deadline = 0, i;
	int ch, n, k, active;
	size_t off;

	memset(l, 0, sizeof(*l));
	l->host = "127.0.0.1";
	l->sessions = 1;
	l->messages = 1;
	l->size = 4096;
	l->mailboxes = 100;
	l->prefix = "user";
	l->domain = "bench.test";
	l->run_timeout_us = 600 * 1000000ull;
	l->io_timeout_us = 60 * 1000000ull;
	while ((ch = getopt(argc, argv, "H:p:s:m:db:n:u:D:PT:I:")) != -1) {
		switch (ch) {
		case 'H': l->host = optarg; break;
		case 'p': l->port = optarg; break;
		case 's':
			if (bench_parse_u64(optarg, 1, 100000, &l->sessions))
				usage();
			break;
		case 'm':
			if (bench_parse_u64(optarg, 1, 100000000, &l->messages))
				usage();
			break;
		case 'd': l->many = 1; break;
		case 'b':
			if (bench_parse_u64(optarg, 16, 64 << 20, &l->size))
				usage();
			break;
		case 'n':
			if (bench_parse_u64(optarg, 1, 1000000, &l->mailboxes))
				usage();
			break;
		case 'u': l->prefix = optarg; break;
		case 'D': l->domain = optarg; break;
		case 'P': l->pipeline = 1; break;
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
	if (bench_raise_nofile(l->sessions + 64) < l->sessions + 16) {
		fprintf(stderr, "smtp_load: RLIMIT_NOFILE too low for %" PRIu64
			" sessions\n", l->sessions);
		return 2;
	}

	/* The body: 78 'x' and CRLF per line, so a message of any size is
	 * the tail of it and always ends in CRLF. */
	l->body = malloc(l->size);
	l->lat_us = calloc(l->messages, sizeof(l->lat_us[0]));
	l->conns = calloc(l->sessions, sizeof(l->conns[0]));
	if (l->body == NULL || l->lat_us == NULL || l->conns == NULL)
		abort();
	for (off = 0; off < l->size; off++)
		l->body[off] = (l->size - off) % 80 == 2 ? '\r' :
		    (l->size - off) % 80 == 1 ? '\n' : 'x';

	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd == -1) {
		perror("epoll_create1");
		return 2;
	}
	l->t_start = bench_now_us();
	deadline = l->t_start + l->run_timeout_us;
	for (i = 0; i < l->sessions; i++) {
		struct conn *c = &l->conns[i];

		c->slot = (unsigned int)i;
		c->fd = -1;
		c->state = CS_IDLE;
		bench_inbuf_init(&c->in, LINE_MAX_IN);
		bench_outbuf_init(&c->out, l->size + 2048);
		conn_open(l, c);
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

			if (c->state == CS_IDLE)
				continue;
			if (c->state == CS_CONNECTING) {
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
		for (i = 0; i < l->sessions; i++) {
			struct conn *c = &l->conns[i];

			if (c->state == CS_IDLE) {
				/* A failed session is replaced while work
				 * is left. */
				conn_open(l, c);
				if (c->state == CS_IDLE)
					continue;
			}
			if (now > c->last_io + l->io_timeout_us) {
				conn_fail(l, c, "timeout", "no reply");
				continue;
			}
			active++;
		}
		if (l->ok + l->failed >= l->messages && quit_deadline == 0)
			quit_deadline = now + 5000000;
		if (active == 0 && !work_left(l))
			break;
		if (now > deadline) {
			load_error(l, "timeout", "run bound reached");
			break;
		}
		if (quit_deadline != 0 && now > quit_deadline)
			break;
	}
	report(l);
	for (i = 0; i < l->sessions; i++) {
		if (l->conns[i].state != CS_IDLE)
			close(l->conns[i].fd);
		bench_inbuf_free(&l->conns[i].in);
		bench_outbuf_free(&l->conns[i].out);
	}
	close(l->epfd);
	free(l->conns);
	free(l->lat_us);
	free(l->body);
	return l->ok == l->messages ? 0 : 1;
}
