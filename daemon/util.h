/* Small helpers shared by every module: bounded strings, allocation that
 * aborts on failure, random ids, directory creation and fsync. */
#ifndef POSTERN_UTIL_H
#define POSTERN_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ERR_LEN 256

/* Copies src into dst (size bytes), always NUL-terminated.
 * Returns strlen(src); truncation happened when the result >= size. */
size_t strlcpy(char *dst, const char *src, size_t size);

/* Allocation wrappers: abort via fatal() when memory runs out. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/* Writes 2*nbytes lowercase hex characters of randomness plus a NUL into
 * out (which must hold 2*nbytes+1 bytes). */
void util_random_hex(char *out, size_t nbytes);

/* mkdir -p with the given mode for every created component.
 * Returns 0, or -1 with errno set. */
int util_mkdirs(const char *path, mode_t mode);

/* Opens the directory and fsyncs it. Returns 0, or -1 with errno set. */
int util_fsync_dir(const char *path);

/* Monotonic clock in milliseconds / nanoseconds. */
uint64_t util_now_ms(void);
uint64_t util_now_ns(void);

/* Parses a byte size: digits with an optional K, M or G suffix (powers of
 * 1024). Returns 0 and fills *out, or -1 for bad syntax or overflow. */
int util_parse_size(const char *s, uint64_t *out);

/* Parses a decimal unsigned integer in [min, max]. Returns 0 or -1. */
int util_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Copies a client-supplied string for a log line: printable ASCII only,
 * with '?' for anything else and for quotes and backslashes, so that it
 * can neither break the line nor a key="value" field. Cut at outlen - 1. */
void util_log_safe(const char *in, char *out, size_t outlen);

/* ASCII case-insensitive helpers that do not depend on the locale. */
int util_strcaseeq(const char *a, const char *b);
void util_lowercase(char *s);

#endif
