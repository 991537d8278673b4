/* One logging API for the daemon and the tools: key=value lines on stderr
 * (foreground and under systemd, where journald picks stderr up). */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <stdarg.h>

#define LOG_LEVEL_WARN 0
#define LOG_LEVEL_INFO 1
#define LOG_LEVEL_DEBUG 2

/* ident prefixes each line; level is one of LOG_LEVEL_*. */
void log_init(const char *ident, int level);
void log_set_level(int level);
int log_get_level(void);

/* log_warn appends ": strerror(errno)"; the x variants do not. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
