/* Helpers shared by the benchmark's load clients (smtp_load, pop3_load,
 * idle_conns): non-blocking connects, buffered line input, monotonic time,
 * the fd limit and the client's own CPU. Each client drives many
 * connections from one thread with epoll, so that the client stays far
 * from being the bottleneck of the server it measures. */
#ifndef BENCH_NET_H
#define BENCH_NET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Microseconds on CLOCK_MONOTONIC. */
uint64_t bench_now_us(void);

/* Starts a non-blocking TCP connect to host:port (numeric). Returns the
 * socket (the connect may still be in progress), or -1 with errno. */
int bench_connect_start(const char *host, const char *port);

/* After EPOLLOUT on a connecting socket: 0 when connected, else the
 * socket error (an errno value). */
int bench_connect_result(int fd);

/* Raises RLIMIT_NOFILE's soft limit to want (capped at the hard limit).
 * Returns the new soft limit. */
uint64_t bench_raise_nofile(uint64_t want);

/* Parses a decimal number in [min, max]. Returns 0, or -1 when s is not
 * such a number. */
int bench_parse_u64(const char *s, uint64_t min, uint64_t max,
		    uint64_t *out_r);

/* Prints "user_cpu_s=... sys_cpu_s=..." of this process to f. */
void bench_print_cpu(FILE *f);

/* A bounded input buffer that yields complete lines. */
struct bench_inbuf {
	char *buf;
	size_t cap;
	size_t start;           /* first unconsumed byte */
	size_t end;             /* one past the last byte read */
};

enum bench_fill {
	BENCH_FILL_DATA,        /* read at least one byte */
	BENCH_FILL_AGAIN,       /* nothing to read now */
	BENCH_FILL_EOF,         /* peer closed */
	BENCH_FILL_ERROR        /* read error (errno), or a line too long */
};

void bench_inbuf_init(struct bench_inbuf *b, size_t cap);
void bench_inbuf_free(struct bench_inbuf *b);
void bench_inbuf_reset(struct bench_inbuf *b);

/* Reads what fd has, until EAGAIN or the buffer is full. */
enum bench_fill bench_inbuf_fill(struct bench_inbuf *b, int fd);

/* Returns 1 and the next line (with its "\n") when a complete line is
 * buffered, else 0. The line stays valid until the next fill. */
int bench_inbuf_line(struct bench_inbuf *b, const char **line_r,
		     size_t *len_r);

/* An output buffer flushed with write(2) as the socket allows. */
struct bench_outbuf {
	char *buf;
	size_t cap;
	size_t off;             /* first unwritten byte */
	size_t len;             /* bytes queued */
};

void bench_outbuf_init(struct bench_outbuf *o, size_t cap);
void bench_outbuf_free(struct bench_outbuf *o);

/* Appends n bytes. Returns 0, or -1 when they do not fit. */
int bench_outbuf_add(struct bench_outbuf *o, const void *p, size_t n);

/* Formats and appends a line (the caller includes "\r\n"). Returns 0, or
 * -1 when it does not fit. */
int bench_outbuf_printf(struct bench_outbuf *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Writes what is queued. Returns 1 when everything went out, 0 when the
 * socket is full (wait for EPOLLOUT), -1 on error (errno). */
int bench_outbuf_flush(struct bench_outbuf *o, int fd);

/* Index of the p-th percentile (nearest rank) of n sorted values. */
size_t bench_percentile_index(size_t n, unsigned int p);

/* Keeps the first error of a run in buf as one line ("what: detail"). */
void bench_first_error(char *buf, size_t len, const char *what,
		       const char *detail);

/* Registers or changes the epoll interest of fd to events (*cur holds the
 * current interest, 0 = not registered), with ptr as the event data.
 * Returns 0 or -1. */
int bench_epoll_want(int epfd, int fd, uint32_t *cur, uint32_t events,
		     void *ptr);

/* qsort comparator for uint32_t. */
int bench_cmp_u32(const void *a, const void *b);

#endif
