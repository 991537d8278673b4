/* Helpers shared by the benchmark's load clients; see bench_net.h. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_net.h"

uint64_t
bench_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int
bench_connect_start(const char *host, const char *port)
{
	struct addrinfo hints, *res;
	int fd, one = 1, saved;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(host, port, &hints, &res) != 0) {
		errno = EINVAL;
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd == -1) {
		saved = errno;
		freeaddrinfo(res);
		errno = saved;
		return -1;
	}
	/* Commands are small and sent one at a time, as a real client does:
	 * without TCP_NODELAY, Nagle would add delayed-ACK stalls to the
	 * latency we measure. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, res->ai_addr, res->ai_addrlen) == -1 &&
	    errno != EINPROGRESS) {
		saved = errno;
		close(fd);
		freeaddrinfo(res);
		errno = saved;
		return -1;
	}
	freeaddrinfo(res);
	return fd;
}

int
bench_connect_result(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		return errno;
	return err;
}

uint64_t
bench_raise_nofile(uint64_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return 0;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = want;
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur > rl.rlim_max)
			rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur;
}

int
bench_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out_r)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out_r = v;
	return 0;
}

void
bench_print_cpu(FILE *f)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) == -1)
		return;
	fprintf(f, "user_cpu_s=%ld.%06ld\nsys_cpu_s=%ld.%06ld\n",
		(long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec,
		(long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec);
}

void
bench_inbuf_init(struct bench_inbuf *b, size_t cap)
{
	b->buf = malloc(cap);
	if (b->buf == NULL)
		abort();
	b->cap = cap;
	b->start = b->end = 0;
}

void
bench_inbuf_free(struct bench_inbuf *b)
{
	free(b->buf);
	b->buf = NULL;
	b->cap = b->start = b->end = 0;
}

void
bench_inbuf_reset(struct bench_inbuf *b)
{
	b->start = b->end = 0;
}

enum bench_fill
bench_inbuf_fill(struct bench_inbuf *b, int fd)
{
	int got = 0;
	ssize_t n;

	/* Keep the unconsumed tail (a partial line) at the front. */
	if (b->start > 0) {
		memmove(b->buf, b->buf + b->start, b->end - b->start);
		b->end -= b->start;
		b->start = 0;
	}
	for (;;) {
		if (b->end == b->cap) {
			if (got)
				return BENCH_FILL_DATA;
			errno = EMSGSIZE;
			return BENCH_FILL_ERROR;
		}
		n = read(fd, b->buf + b->end, b->cap - b->end);
		if (n > 0) {
			b->end += (size_t)n;
			got = 1;
			continue;
		}
		if (n == 0)
			return got ? BENCH_FILL_DATA : BENCH_FILL_EOF;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return got ? BENCH_FILL_DATA : BENCH_FILL_AGAIN;
		return BENCH_FILL_ERROR;
	}
}

int
bench_inbuf_line(struct bench_inbuf *b, const char **line_r, size_t *len_r)
{
	const char *p, *nl;

	p = b->buf + b->start;
	nl = memchr(p, '\n', b->end - b->start);
	if (nl == NULL)
		return 0;
	*line_r = p;
	*len_r = (size_t)(nl - p) + 1;
	b->start += *len_r;
	return 1;
}

void
bench_outbuf_init(struct bench_outbuf *o, size_t cap)
{
	o->buf = malloc(cap);
	if (o->buf == NULL)
		abort();
	o->cap = cap;
	o->off = o->len = 0;
}

void
bench_outbuf_free(struct bench_outbuf *o)
{
	free(o->buf);
	o->buf = NULL;
	o->cap = o->off = o->len = 0;
}

int
bench_outbuf_add(struct bench_outbuf *o, const void *p, size_t n)
{
	if (o->off == o->len)
		o->off = o->len = 0;
	if (n > o->cap - o->len)
		return -1;
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	return 0;
}

int
bench_outbuf_printf(struct bench_outbuf *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->off == o->len)
		o->off = o->len = 0;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len)
		return -1;
	o->len += (size_t)n;
	return 0;
}

int
bench_outbuf_flush(struct bench_outbuf *o, int fd)
{
	ssize_t n;

	while (o->off < o->len) {
		n = write(fd, o->buf + o->off, o->len - o->off);
		if (n > 0) {
			o->off += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return -1;
	}
	o->off = o->len = 0;
	return 1;
}

size_t
bench_percentile_index(size_t n, unsigned int p)
{
	size_t rank;

	if (n == 0)
		return 0;
	/* Nearest rank: ceil(p/100 * n), 1-based. */
	rank = (n * p + 99) / 100;
	if (rank == 0)
		rank = 1;
	return rank - 1;
}

void
bench_first_error(char *buf, size_t len, const char *what, const char *detail)
{
	if (buf[0] != '\0')
		return;
	if (snprintf(buf, len, "%s: %.*s", what, 120, detail) >= (int)len)
		buf[len - 1] = '\0';
	/* One line: drop a reply's CRLF. */
	buf[strcspn(buf, "\r\n")] = '\0';
}

int
bench_epoll_want(int epfd, int fd, uint32_t *cur, uint32_t events, void *ptr)
{
	struct epoll_event ev;

	if (*cur == events)
		return 0;
	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.ptr = ptr;
	if (epoll_ctl(epfd, *cur == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd,
		      &ev) == -1)
		return -1;
	*cur = events;
	return 0;
}

int
bench_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}
