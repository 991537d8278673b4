/* Logging to stderr with a timestamp, the program name and a level. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

static const char *log_ident = "postern";
static int log_level = LOG_LEVEL_INFO;

static void log_vwrite(const char *level, const char *fmt, va_list ap,
		       const char *suffix);

void
log_init(const char *ident, int level)
{
	log_ident = ident;
	log_level = level;
	setvbuf(stderr, NULL, _IOLBF, 0);
}

void
log_set_level(int level)
{
	log_level = level;
}

int
log_get_level(void)
{
	return log_level;
}

static void
log_vwrite(const char *level, const char *fmt, va_list ap, const char *suffix)
{
	char msg[2048], stamp[32];
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	fprintf(stderr, "%s.%03ldZ %s %s: %s%s%s\n", stamp,
		ts.tv_nsec / 1000000, log_ident, level, msg, suffix ? ": " : "",
		suffix ? suffix : "");
}

#define LOG_BODY(lvl, name, suffix)                                            \
	do {                                                                   \
		va_list ap;                                                    \
		if (log_level < (lvl))                                         \
			return;                                                \
		va_start(ap, fmt);                                             \
		log_vwrite(name, fmt, ap, suffix);                             \
		va_end(ap);                                                    \
	} while (0)

void
log_warn(const char *fmt, ...)
{
	const char *e = strerror(errno);

	LOG_BODY(LOG_LEVEL_WARN, "warning", e);
}

void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_WARN, "warning", NULL);
}

void
log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_INFO, "info", NULL);
}

void
log_debug(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_DEBUG, "debug", NULL);
}

void
fatal(const char *fmt, ...)
{
	const char *e = strerror(errno);
	va_list ap;

	va_start(ap, fmt);
	log_vwrite("fatal", fmt, ap, e);
	va_end(ap);
	abort();
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite("fatal", fmt, ap, NULL);
	va_end(ap);
	abort();
}
