/* Loading postern.conf: libinih splits the INI file, our reader counts lines
 * and checks the syntax, and a key table checks and stores every value.
 * Every problem is reported with its file and line, and loading goes on. */
#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "config.h"
#include "delivery.h"
#include "filter_config.h"
#include "log.h"
#include "util.h"

/* Longest line accepted, without the line end. libinih is told to grow its
 * heap line buffer to a little more than this, so that a line is never
 * split in two behind our back. */
#define CONFIG_LINE_MAX 4096
#define CONFIG_MSG_MAX 1024
#define CONFIG_SHOW_MAX 64    /* bytes of a bad value quoted in a message */
#define CONFIG_FILTER_KEYS 32 /* distinct [filter] keys remembered */
#define CONFIG_DAY (24 * 3600ULL)

enum config_section {
	CS_SERVER,
	CS_LOG,
	CS_SMTP,
	CS_POP3,
	CS_TLS,
	CS_SUBMISSION,
	CS_SUBMISSIONS,
	CS_POP3S,
	CS_AUTH,
	CS_FILTER,
	CS_ABUSE,
	CS_QUEUE,
	CS_RELAY,
	CS_DNS,
	CS_COUNT
};

static const char *const config_sections[CS_COUNT] = {
    [CS_SERVER] = "server",
    [CS_LOG] = "log",
    [CS_SMTP] = "smtp",
    [CS_POP3] = "pop3",
    [CS_TLS] = "tls",
    [CS_SUBMISSION] = "submission",
    [CS_SUBMISSIONS] = "submissions",
    [CS_POP3S] = "pop3s",
    [CS_AUTH] = "auth",
    [CS_FILTER] = "filter",
    [CS_ABUSE] = "abuse",
    [CS_QUEUE] = "queue",
    [CS_RELAY] = "relay",
    [CS_DNS] = "dns",
};

enum config_type {
	CT_HOSTNAME,   /* char[]: a host name */
	CT_PATH,       /* char[]: an absolute path */
	CT_UINT,       /* uint64_t in [min, max] */
	CT_SIZE,       /* uint64_t, bytes with K/M/G suffix, in [min, max] */
	CT_LEVEL,      /* int: LOG_LEVEL_* */
	CT_ACTION,     /* int: 1 = reject, 0 = log */
	CT_DURABILITY, /* int: DELIVERY_AUTO / _SYNCFS / _FSYNC */
	CT_BOOL,       /* int: 1 / 0 */
	CT_LISTEN,     /* struct config_listen_list */
	CT_DURATION,   /* uint64_t seconds ("90", "30s", "10m", "2h", "7d",
			  "1w") in [min, max] */
	CT_ADDRLIST,   /* char[]: host:port list, checked like CT_LISTEN */
};

/* One configuration key: where it goes and what it accepts. unit is added
 * to the "expected" part of error messages. */
struct config_key {
	enum config_section section;
	const char *name;
	enum config_type type;
	size_t offset, size;
	uint64_t min, max;
	const char *unit;
};

#define CONFIG_FIELD(m)                                                        \
	offsetof(struct config, m), sizeof(((struct config *)NULL)->m)

static const struct config_key config_keys[] = {
    {CS_SERVER, "hostname", CT_HOSTNAME, CONFIG_FIELD(hostname), 0, 0, NULL},
    {CS_SERVER, "data_dir", CT_PATH, CONFIG_FIELD(data_dir), 0, 0, NULL},
    {CS_SERVER, "max_connections", CT_UINT, CONFIG_FIELD(max_connections), 1,
     1000000, NULL},
    {CS_SERVER, "max_connections_per_ip", CT_UINT,
     CONFIG_FIELD(max_connections_per_ip), 1, 1000000, NULL},
    {CS_SERVER, "worker_threads", CT_UINT, CONFIG_FIELD(worker_threads), 1, 256,
     NULL},
    {CS_SERVER, "durability", CT_DURABILITY, CONFIG_FIELD(durability), 0, 0,
     NULL},
    {CS_LOG, "level", CT_LEVEL, CONFIG_FIELD(log_level), 0, 0, NULL},
    {CS_SMTP, "listen", CT_LISTEN, CONFIG_FIELD(smtp_listen), 0, 0, NULL},
    {CS_SMTP, "max_message_size", CT_SIZE, CONFIG_FIELD(smtp_max_message_size),
     1024, 4ULL << 30, "bytes"},
    {CS_SMTP, "max_recipients", CT_UINT, CONFIG_FIELD(smtp_max_recipients), 1,
     100000, NULL},
    /* RFC 5321 §4.5.3.1.4 and §4.5.3.1.6: 512 and 1000 octets are the
     * minimum a server must accept; they can only be raised. */
    {CS_SMTP, "max_command_line", CT_UINT, CONFIG_FIELD(smtp_max_command_line),
     512, 65536, "octets"},
    {CS_SMTP, "max_text_line", CT_UINT, CONFIG_FIELD(smtp_max_text_line), 1000,
     1048576, "octets"},
    {CS_SMTP, "max_bad_commands", CT_UINT, CONFIG_FIELD(smtp_max_bad_commands),
     1, 10000, NULL},
    {CS_SMTP, "max_unknown_recipients", CT_UINT,
     CONFIG_FIELD(smtp_max_unknown_recipients), 1, 10000, NULL},
    {CS_SMTP, "max_messages_per_ip", CT_UINT,
     CONFIG_FIELD(smtp_max_messages_per_ip), 0, 100000000, NULL},
    {CS_SMTP, "idle_timeout", CT_UINT, CONFIG_FIELD(smtp_idle_timeout), 1,
     86400, "seconds"},
    {CS_SMTP, "data_timeout", CT_UINT, CONFIG_FIELD(smtp_data_timeout), 1,
     86400, "seconds"},
    {CS_SMTP, "pregreet_wait", CT_UINT, CONFIG_FIELD(smtp_pregreet_wait_ms), 0,
     60000, "milliseconds"},
    {CS_SMTP, "pregreet_action", CT_ACTION, CONFIG_FIELD(smtp_pregreet_reject),
     0, 0, NULL},
    {CS_SMTP, "auth", CT_BOOL, CONFIG_FIELD(smtp_auth_on_mx), 0, 0, NULL},
    {CS_POP3, "listen", CT_LISTEN, CONFIG_FIELD(pop3_listen), 0, 0, NULL},
    /* RFC 2449 §4: 255 octets is the minimum command line length. */
    {CS_POP3, "max_command_line", CT_UINT, CONFIG_FIELD(pop3_max_command_line),
     255, 65536, "octets"},
    {CS_POP3, "max_bad_commands", CT_UINT, CONFIG_FIELD(pop3_max_bad_commands),
     1, 10000, NULL},
    {CS_POP3, "idle_timeout", CT_UINT, CONFIG_FIELD(pop3_idle_timeout), 1,
     86400, "seconds"},
    {CS_POP3, "auth_fail_delay", CT_UINT, CONFIG_FIELD(pop3_auth_fail_delay_ms),
     0, 60000, "milliseconds"},
    {CS_POP3, "allow_plaintext_auth", CT_BOOL,
     CONFIG_FIELD(pop3_allow_plaintext), 0, 0, NULL},
    {CS_TLS, "cert", CT_PATH, CONFIG_FIELD(tls_cert), 0, 0, NULL},
    {CS_TLS, "key", CT_PATH, CONFIG_FIELD(tls_key), 0, 0, NULL},
    {CS_SUBMISSION, "listen", CT_LISTEN, CONFIG_FIELD(submission_listen), 0, 0,
     NULL},
    {CS_SUBMISSION, "max_messages_per_hour", CT_UINT,
     CONFIG_FIELD(submission_max_messages_per_hour), 1, 1000000, NULL},
    {CS_SUBMISSION, "max_recipients", CT_UINT,
     CONFIG_FIELD(submission_max_recipients), 1, 100000, NULL},
    {CS_SUBMISSIONS, "listen", CT_LISTEN, CONFIG_FIELD(submissions_listen), 0,
     0, NULL},
    {CS_POP3S, "listen", CT_LISTEN, CONFIG_FIELD(pop3s_listen), 0, 0, NULL},
    {CS_AUTH, "plaintext_on_loopback", CT_BOOL,
     CONFIG_FIELD(auth_plaintext_loopback), 0, 0, NULL},
    {CS_AUTH, "fail_delay", CT_UINT, CONFIG_FIELD(auth_fail_delay_ms), 0, 60000,
     "milliseconds"},
    /* [filter] keys belong to filter_config_set(); see config_handler. */
    {CS_ABUSE, "auth_failures", CT_UINT, CONFIG_FIELD(abuse.auth_failures), 0,
     100000, NULL},
    {CS_ABUSE, "auth_failures_per_account", CT_UINT,
     CONFIG_FIELD(abuse.auth_failures_account), 0, 100000, NULL},
    {CS_ABUSE, "unknown_recipients", CT_UINT,
     CONFIG_FIELD(abuse.unknown_recipients), 0, 100000, NULL},
    {CS_ABUSE, "pregreet", CT_UINT, CONFIG_FIELD(abuse.pregreet), 0, 100000,
     NULL},
    {CS_ABUSE, "smuggling", CT_UINT, CONFIG_FIELD(abuse.smuggling), 0, 100000,
     NULL},
    {CS_ABUSE, "bad_commands", CT_UINT, CONFIG_FIELD(abuse.bad_commands), 0,
     100000, NULL},
    {CS_ABUSE, "window", CT_DURATION, CONFIG_FIELD(abuse.window), 1,
     30 * CONFIG_DAY, NULL},
    {CS_ABUSE, "ban_time", CT_DURATION, CONFIG_FIELD(abuse.ban_time), 1,
     365 * CONFIG_DAY, NULL},
    {CS_ABUSE, "ban_time_max", CT_DURATION, CONFIG_FIELD(abuse.ban_time_max), 1,
     365 * CONFIG_DAY, NULL},
    {CS_ABUSE, "ban_time_factor", CT_UINT, CONFIG_FIELD(abuse.ban_time_factor),
     1, 100, NULL},
    {CS_ABUSE, "ban_memory", CT_DURATION, CONFIG_FIELD(abuse.ban_memory), 1,
     365 * CONFIG_DAY, NULL},
    {CS_ABUSE, "ban_ipv6_prefix", CT_UINT, CONFIG_FIELD(abuse.ban_ipv6_prefix),
     32, 128, NULL},
    /* The outbound queue (queue_config.h); documented in postern.conf. */
    {CS_QUEUE, "min_backoff", CT_DURATION, CONFIG_FIELD(queue.min_backoff), 1,
     CONFIG_DAY, NULL},
    {CS_QUEUE, "max_backoff", CT_DURATION, CONFIG_FIELD(queue.max_backoff), 1,
     7 * CONFIG_DAY, NULL},
    {CS_QUEUE, "max_lifetime", CT_DURATION, CONFIG_FIELD(queue.max_lifetime), 1,
     100 * CONFIG_DAY, NULL},
    {CS_QUEUE, "destination_port", CT_UINT,
     CONFIG_FIELD(queue.destination_port), 1, 65535, NULL},
    {CS_QUEUE, "max_connections", CT_UINT, CONFIG_FIELD(queue.max_connections),
     1, 10000, NULL},
    {CS_QUEUE, "max_per_destination", CT_UINT,
     CONFIG_FIELD(queue.max_per_destination), 1, 1000, NULL},
    {CS_QUEUE, "connect_timeout", CT_DURATION,
     CONFIG_FIELD(queue.connect_timeout), 1, 3600, NULL},
    {CS_QUEUE, "command_timeout", CT_DURATION,
     CONFIG_FIELD(queue.command_timeout), 1, 3600, NULL},
    {CS_QUEUE, "data_timeout", CT_DURATION, CONFIG_FIELD(queue.data_timeout), 1,
     3600, NULL},
    {CS_QUEUE, "bounce_size_limit", CT_SIZE,
     CONFIG_FIELD(queue.bounce_size_limit), 0, 1ULL << 30, "bytes"},
    {CS_QUEUE, "starttls", CT_BOOL, CONFIG_FIELD(queue.starttls), 0, 0, NULL},
    {CS_RELAY, "host", CT_HOSTNAME, CONFIG_FIELD(queue.relay_host), 0, 0, NULL},
    {CS_RELAY, "port", CT_UINT, CONFIG_FIELD(queue.relay_port), 1, 65535, NULL},
    {CS_RELAY, "auth_file", CT_PATH, CONFIG_FIELD(queue.relay_auth_file), 0, 0,
     NULL},
    {CS_RELAY, "tls_verify", CT_BOOL, CONFIG_FIELD(queue.relay_tls_verify), 0,
     0, NULL},
    {CS_RELAY, "ca_file", CT_PATH, CONFIG_FIELD(queue.relay_ca_file), 0, 0,
     NULL},
    {CS_DNS, "servers", CT_ADDRLIST, CONFIG_FIELD(queue.dns_servers), 0, 0,
     NULL},
};

#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

/* State of one config_load: the reader's current line and what the
 * handler needs to report and detect duplicates. */
struct config_loader {
	struct config *cfg;
	const char *path;
	FILE *fp;
	config_error_fn err_cb;
	void *arg;
	int nerrors;
	int lineno;	      /* line being parsed, 1-based */
	char *line;	      /* current physical line (getline) */
	size_t cap, len, pos; /* its buffer size, length, bytes handed out */
	int key_line[CONFIG_NKEYS]; /* where each key was set, 0 = not yet */
	struct {
		char name[32];
		int line;
	} filter_keys[CONFIG_FILTER_KEYS]; /* [filter] keys set so far */
	size_t n_filter_keys;
};

/* Reading */
static char *config_read(char *str, int num, void *stream);
static void config_check_line(struct config_loader *l);
static const char *config_find_chars_or_comment(const char *s,
						const char *chars);
static int config_section_id(const char *name, size_t len);

/* Values */
static void config_check_pairs(struct config_loader *l);
static void config_filter_key(struct config_loader *l, const char *name,
			      const char *value);
static int config_filter_line(const struct config_loader *l, const char *name);
static void config_filter_finish(struct config_loader *l);
static void config_format_duration(uint64_t s, char *buf, size_t len);
static int config_key_index(enum config_section section, const char *name);
static int config_handler(void *user, const char *section, const char *name,
			  const char *value);
static void config_apply(struct config_loader *l, const struct config_key *k,
			 const char *value);
static void config_error(struct config_loader *l, int line, const char *fmt,
			 ...) __attribute__((format(printf, 3, 4)));
static const char *config_shorten(const char *value, char *buf, size_t len);
static int config_check_hostname(const char *s, size_t len);
static int config_parse_item(const char *s, size_t len,
			     struct config_listen *out, const char **error_r);
static int config_is_space(char c);

/* ------------------------------------------------------------------ */

void
config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	queue_config_defaults(&cfg->queue);
	/* gethostname() need not terminate a truncated name. */
	if (gethostname(cfg->hostname, sizeof(cfg->hostname) - 1) == -1 ||
	    cfg->hostname[0] == '\0')
		strlcpy(cfg->hostname, "localhost", sizeof(cfg->hostname));
	strlcpy(cfg->data_dir, "/var/lib/postern", sizeof(cfg->data_dir));
	cfg->max_connections = 10000;
	cfg->max_connections_per_ip = 50;
	cfg->worker_threads = 4;

	cfg->log_level = LOG_LEVEL_INFO;

	strlcpy(cfg->smtp_listen.addr[0].host, "0.0.0.0",
		sizeof(cfg->smtp_listen.addr[0].host));
	strlcpy(cfg->smtp_listen.addr[0].port, "25",
		sizeof(cfg->smtp_listen.addr[0].port));
	cfg->smtp_listen.n = 1;
	cfg->smtp_max_message_size = 25ULL * 1024 * 1024;
	cfg->smtp_max_recipients = 100;
	cfg->smtp_max_command_line = 512;
	cfg->smtp_max_text_line = 1000;
	cfg->smtp_max_bad_commands = 20;
	cfg->smtp_max_unknown_recipients = 20;
	cfg->smtp_idle_timeout = 300;
	cfg->smtp_data_timeout = 600;
	cfg->smtp_pregreet_wait_ms = 0;
	cfg->smtp_pregreet_reject = 1;

	strlcpy(cfg->pop3_listen.addr[0].host, "0.0.0.0",
		sizeof(cfg->pop3_listen.addr[0].host));
	strlcpy(cfg->pop3_listen.addr[0].port, "110",
		sizeof(cfg->pop3_listen.addr[0].port));
	cfg->pop3_listen.n = 1;
	cfg->pop3_max_command_line = 255;
	cfg->pop3_max_bad_commands = 10;
	cfg->pop3_idle_timeout = 600;
	cfg->pop3_auth_fail_delay_ms = 2000;
	cfg->pop3_allow_plaintext = 0;

	/* [tls] cert and key stay empty: no TLS. The [submission],
	 * [submissions] and [pop3s] listen lists stay empty: none. */
	cfg->submission_max_messages_per_hour = 200;
	cfg->submission_max_recipients = 100;
	cfg->auth_plaintext_loopback = 0;
	cfg->smtp_auth_on_mx = 0;
	cfg->auth_fail_delay_ms = 2000;
	cfg->durability = DELIVERY_AUTO;

	filter_config_defaults(&cfg->filter);
	/* What config_load() derives from the final data_dir. */
	strlcpy(cfg->filter.ban_file, "/var/lib/postern/bans",
		sizeof(cfg->filter.ban_file));
	cfg->abuse.auth_failures = 5;
	cfg->abuse.auth_failures_account = 20;
	cfg->abuse.unknown_recipients = 20;
	cfg->abuse.pregreet = 1;
	cfg->abuse.smuggling = 1;
	cfg->abuse.bad_commands = 3;
	cfg->abuse.window = 3600;
	cfg->abuse.ban_time = 600;
	cfg->abuse.ban_time_max = 7 * CONFIG_DAY;
	cfg->abuse.ban_time_factor = 6;
	cfg->abuse.ban_memory = CONFIG_DAY;
	cfg->abuse.ban_ipv6_prefix = 64;
}

int
config_load(struct config *cfg, const char *path, config_error_fn err_cb,
	    void *arg)
{
	struct config_loader l;
	int rc;

	memset(&l, 0, sizeof(l));
	l.cfg = cfg;
	l.path = path;
	l.err_cb = err_cb;
	l.arg = arg;
	if ((l.fp = fopen(path, "re")) == NULL) {
		config_error(&l, 0, "cannot open: %s", strerror(errno));
		return l.nerrors;
	}
	/* Debian's libinih makes these compile-time options run-time
	 * variables. A heap buffer that may grow keeps long lines whole;
	 * no continuation lines, so an indented line is an ordinary one. */
	ini_use_stack = false;
	ini_allow_realloc = true;
	ini_max_line = CONFIG_LINE_MAX + 8;
	ini_allow_multiline = false;
	ini_allow_inline_comments = true;
	ini_allow_no_value = false;
	ini_stop_on_first_error = false;

	rc = ini_parse_stream(config_read, &l, config_handler, &l);
	config_check_pairs(&l);
	config_filter_finish(&l);
	if (ferror(l.fp))
		config_error(&l, l.lineno, "read error: %s", strerror(errno));
	else if (rc == -2)
		config_error(&l, 0, "out of memory");
	else if (rc > 0)
		/* Lines we found bad were blanked, so this is one that our
		 * check missed. */
		config_error(&l, rc, "syntax error");
	fclose(l.fp);
	free(l.line);
	return l.nerrors;
}

/* ------------------------------------------------------------------ */
/* Reading: an fgets() for libinih that knows the line number */

/* Hands libinih the file num - 1 bytes at a time, like fgets(). A new
 * physical line is read (and checked) only when the previous one has been
 * handed out whole, so l->lineno is the line libinih is parsing when it
 * calls the handler. */
static char *
config_read(char *str, int num, void *stream)
{
	struct config_loader *l = stream;
	size_t n;

	if (num < 2)
		return NULL;
	if (l->pos >= l->len) {
		ssize_t got = getline(&l->line, &l->cap, l->fp);

		if (got <= 0)
			return NULL;
		l->len = (size_t)got;
		l->pos = 0;
		l->lineno++;
		config_check_line(l);
	}
	n = l->len - l->pos;
	if (n > (size_t)num - 1)
		n = (size_t)num - 1;
	memcpy(str, l->line + l->pos, n);
	str[n] = '\0';
	l->pos += n;
	return str;
}

/* Mirrors libinih's scan for a character of chars or an inline ';' comment
 * (a ';' after white space), which ends the line's content. */
static const char *
config_find_chars_or_comment(const char *s, const char *chars)
{
	int was_space = 0;

	while (*s && (chars == NULL || strchr(chars, *s) == NULL) &&
	       !(was_space && *s == ';')) {
		was_space = config_is_space(*s);
		s++;
	}
	return s;
}

static int
config_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
	       c == '\f';
}

/* Checks the syntax of the line just read, with libinih's rules, reporting
 * what libinih would only count. A bad line is replaced by an empty one so
 * that libinih does not act on it. Section headers are checked here, since
 * libinih does not tell the handler about a section without keys. */
static void
config_check_line(struct config_loader *l)
{
	const char *p = l->line, *open, *end;
	size_t content = l->len;
	int bad = 0;

	if (content > 0 && l->line[content - 1] == '\n')
		content--;
	if (content > 0 && l->line[content - 1] == '\r')
		content--;
	if (memchr(l->line, '\0', l->len) != NULL) {
		config_error(l, l->lineno, "line contains a NUL byte");
		bad = 1;
		goto out;
	}
	if (content > CONFIG_LINE_MAX) {
		config_error(l, l->lineno,
			     "line too long (more than %d characters)",
			     CONFIG_LINE_MAX);
		bad = 1;
		goto out;
	}
	if (l->lineno == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3; /* UTF-8 byte order mark */
	while (config_is_space(*p))
		p++;
	if (*p == '\0' || *p == ';' || *p == '#')
		return;
	if (*p == '[') {
		open = p + 1;
		end = config_find_chars_or_comment(open, "]");
		if (*end != ']') {
			config_error(l, l->lineno,
				     "syntax error: section header without "
				     "closing ']'");
			bad = 1;
			goto out;
		}
		for (p = end + 1; config_is_space(*p); p++)
			;
		if (*p != '\0' && *p != ';' && *p != '#') {
			config_error(l, l->lineno,
				     "syntax error: unexpected text after "
				     "section header");
			bad = 1;
			goto out;
		}
		if (config_section_id(open, (size_t)(end - open)) == -1)
			config_error(l, l->lineno, "unknown section [%.*s]",
				     end - open > CONFIG_SHOW_MAX
					 ? CONFIG_SHOW_MAX
					 : (int)(end - open),
				     open);
		return;
	}
	end = config_find_chars_or_comment(p, "=:");
	if (*end != '=' && *end != ':') {
		config_error(l, l->lineno,
			     "syntax error: expected 'key = value'");
		bad = 1;
	} else if (end == p) {
		config_error(l, l->lineno,
			     "syntax error: missing key name before '%c'",
			     *end);
		bad = 1;
	}
out:
	if (bad) {
		/* cap > len >= 1, so two bytes fit. */
		l->line[0] = '\n';
		l->line[1] = '\0';
		l->len = 1;
	}
}

/* Maps a section name (surrounding blanks ignored, any case) to its id, or
 * -1 when unknown. */
static int
config_section_id(const char *name, size_t len)
{
	char buf[32];
	size_t i;

	while (len > 0 && config_is_space(*name)) {
		name++;
		len--;
	}
	while (len > 0 && config_is_space(name[len - 1]))
		len--;
	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, name, len);
	buf[len] = '\0';
	for (i = 0; i < CS_COUNT; i++)
		if (util_strcaseeq(buf, config_sections[i]))
			return (int)i;
	return -1;
}

/* ------------------------------------------------------------------ */
/* Values */

/* Called by libinih for each "name = value" with blanks and inline
 * comments removed. Always returns 1: problems are reported here, and a
 * 0 would only make libinih count them again. */
static int
config_handler(void *user, const char *section, const char *name,
	       const char *value)
{
	struct config_loader *l = user;
	const struct config_key *k = NULL;
	char shown[CONFIG_SHOW_MAX + 4];
	int sid;
	size_t i;

	sid = config_section_id(section, strlen(section));
	if (sid == -1) {
		if (section[0] == '\0')
			config_error(
			    l, l->lineno, "key '%s' is outside of any section",
			    config_shorten(name, shown, sizeof(shown)));
		/* else the section header was reported already */
		return 1;
	}
	if (sid == CS_FILTER) {
		config_filter_key(l, name, value);
		return 1;
	}
	for (i = 0; i < CONFIG_NKEYS; i++) {
		if ((int)config_keys[i].section == sid &&
		    util_strcaseeq(config_keys[i].name, name)) {
			k = &config_keys[i];
			break;
		}
	}
	if (k == NULL) {
		config_error(l, l->lineno, "unknown key '%s' in section [%s]",
			     config_shorten(name, shown, sizeof(shown)),
			     config_sections[sid]);
		return 1;
	}
	if (l->key_line[i] != 0) {
		config_error(l, l->lineno,
			     "duplicate key '%s' in section [%s] (first set "
			     "on line %d)",
			     k->name, config_sections[sid], l->key_line[i]);
		return 1;
	}
	l->key_line[i] = l->lineno;
	config_apply(l, k, value);
	return 1;
}

/* Returns the index of a key in config_keys; the key must exist. */
static int
config_key_index(enum config_section section, const char *name)
{
	size_t i;

	for (i = 0; i < CONFIG_NKEYS; i++)
		if (config_keys[i].section == section &&
		    strcmp(config_keys[i].name, name) == 0)
			return (int)i;
	fatalx("config_key_index: no key %s", name);
}

/* Checks keys that only make sense together, once the file is read: a TLS
 * certificate needs its private key and the other way round. */
static void
config_check_pairs(struct config_loader *l)
{
	int cert = config_key_index(CS_TLS, "cert");
	int key = config_key_index(CS_TLS, "key");
	int ban = config_key_index(CS_ABUSE, "ban_time");
	int ban_max = config_key_index(CS_ABUSE, "ban_time_max");

	if (l->cfg->abuse.ban_time > l->cfg->abuse.ban_time_max)
		config_error(l,
			     l->key_line[ban] ? l->key_line[ban]
					      : l->key_line[ban_max],
			     "key 'ban_time' in section [abuse] is longer "
			     "than 'ban_time_max'");
	if ((l->cfg->tls_cert[0] == '\0') == (l->cfg->tls_key[0] == '\0'))
		return;
	if (l->cfg->tls_cert[0] != '\0')
		config_error(l, l->key_line[cert],
			     "key 'cert' in section [tls] needs 'key' too");
	else
		config_error(l, l->key_line[key],
			     "key 'key' in section [tls] needs 'cert' too");
}

/* A [filter] key: filter_config_set() knows the keys and their values;
 * this adds the line-numbered report and the duplicate check. */
static void
config_filter_key(struct config_loader *l, const char *name, const char *value)
{
	char key[32], shown[CONFIG_SHOW_MAX + 4], vshown[CONFIG_SHOW_MAX + 4];
	const char *why = NULL;
	int first;

	if (strlcpy(key, name, sizeof(key)) >= sizeof(key)) {
		config_error(l, l->lineno,
			     "unknown key '%s' in section [filter]",
			     config_shorten(name, shown, sizeof(shown)));
		return;
	}
	util_lowercase(key);
	if ((first = config_filter_line(l, key)) != 0) {
		config_error(l, l->lineno,
			     "duplicate key '%s' in section [filter] (first "
			     "set on line %d)",
			     key, first);
		return;
	}
	if (filter_config_set(&l->cfg->filter, key, value, &why) == 0) {
		if (l->n_filter_keys < CONFIG_FILTER_KEYS) {
			strlcpy(l->filter_keys[l->n_filter_keys].name, key,
				sizeof(l->filter_keys[0].name));
			l->filter_keys[l->n_filter_keys++].line = l->lineno;
		}
		return;
	}
	if (strcmp(why, "unknown key") == 0)
		config_error(l, l->lineno,
			     "unknown key '%s' in section [filter]",
			     config_shorten(name, shown, sizeof(shown)));
	else
		config_error(l, l->lineno,
			     "bad value '%s' for key '%s' in section [filter]: "
			     "%s",
			     config_shorten(value, vshown, sizeof(vshown)), key,
			     why);
}

/* The line where a [filter] key was set, or 0. */
static int
config_filter_line(const struct config_loader *l, const char *name)
{
	size_t i;

	for (i = 0; i < l->n_filter_keys; i++)
		if (strcmp(l->filter_keys[i].name, name) == 0)
			return l->filter_keys[i].line;
	return 0;
}

/* Defaults of [filter] that depend on other sections: every listen port
 * is protected unless ports was set, and bans are kept in data_dir. */
static void
config_filter_finish(struct config_loader *l)
{
	const struct config_listen_list *lists[] = {
	    &l->cfg->smtp_listen,	 &l->cfg->submission_listen,
	    &l->cfg->submissions_listen, &l->cfg->pop3_listen,
	    &l->cfg->pop3s_listen,
	};
	struct filter_config *fc = &l->cfg->filter;
	uint64_t port;
	size_t i, j;
	int n;

	if (config_filter_line(l, "ports") == 0) {
		for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
			for (j = 0; j < lists[i]->n; j++) {
				if (util_parse_uint(lists[i]->addr[j].port, 1,
						    65535, &port) == 0 &&
				    filter_config_add_port(fc,
							   (uint16_t)port) == 0)
					continue;
				config_error(l, 0,
					     "[filter] cannot protect listen "
					     "port %s: more than %d ports; "
					     "set 'ports' in [filter]",
					     lists[i]->addr[j].port,
					     FILTER_MAX_PORTS);
				return;
			}
		}
	}
	if (config_filter_line(l, "ban_file") == 0) {
		n = snprintf(fc->ban_file, sizeof(fc->ban_file), "%s/bans",
			     l->cfg->data_dir);
		if (n < 0 || (size_t)n >= sizeof(fc->ban_file))
			config_error(l, 0,
				     "data_dir too long for the default "
				     "[filter] ban_file");
	}
}

/* "30s", "10m", "2h", "7d", "1w": the largest unit that divides s. */
static void
config_format_duration(uint64_t s, char *buf, size_t len)
{
	static const struct {
		uint64_t secs;
		char unit;
	} units[] = {{604800, 'w'}, {86400, 'd'}, {3600, 'h'}, {60, 'm'}};
	size_t i;

	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (s != 0 && s % units[i].secs == 0) {
			snprintf(buf, len, "%llu%c",
				 (unsigned long long)(s / units[i].secs),
				 units[i].unit);
			return;
		}
	}
	snprintf(buf, len, "%llus", (unsigned long long)s);
}

/* Checks value against k and stores it; a bad value is reported and the
 * default stays. */
static void
config_apply(struct config_loader *l, const struct config_key *k,
	     const char *value)
{
	char *field = (char *)l->cfg + k->offset;
	const char *sec = config_sections[k->section];
	char shown[CONFIG_SHOW_MAX + 4];
	const char *why;
	uint64_t v;
	size_t len = strlen(value);

	switch (k->type) {
	case CT_HOSTNAME:
		if (len >= k->size || !config_check_hostname(value, len))
			break;
		strlcpy(field, value, k->size);
		return;
	case CT_PATH:
		if (value[0] != '/' || len >= k->size)
			break;
		strlcpy(field, value, k->size);
		return;
	case CT_UINT:
		if (util_parse_uint(value, k->min, k->max, &v) == -1)
			break;
		memcpy(field, &v, sizeof(v));
		return;
	case CT_SIZE:
		if (util_parse_size(value, &v) == -1 || v < k->min ||
		    v > k->max)
			break;
		memcpy(field, &v, sizeof(v));
		return;
	case CT_LEVEL: {
		int level;

		if (util_strcaseeq(value, "warning"))
			level = LOG_LEVEL_WARN;
		else if (util_strcaseeq(value, "info"))
			level = LOG_LEVEL_INFO;
		else if (util_strcaseeq(value, "debug"))
			level = LOG_LEVEL_DEBUG;
		else
			break;
		memcpy(field, &level, sizeof(level));
		return;
	}
	case CT_ACTION: {
		int reject;

		if (util_strcaseeq(value, "reject"))
			reject = 1;
		else if (util_strcaseeq(value, "log"))
			reject = 0;
		else
			break;
		memcpy(field, &reject, sizeof(reject));
		return;
	}
	case CT_DURABILITY: {
		int mode;

		if (util_strcaseeq(value, "syncfs"))
			mode = DELIVERY_SYNCFS;
		else if (util_strcaseeq(value, "fsync"))
			mode = DELIVERY_FSYNC;
		else if (util_strcaseeq(value, "auto"))
			mode = DELIVERY_AUTO;
		else
			break;
		memcpy(field, &mode, sizeof(mode));
		return;
	}
	case CT_BOOL: {
		int b;

		if (util_strcaseeq(value, "yes") ||
		    util_strcaseeq(value, "true") || strcmp(value, "1") == 0)
			b = 1;
		else if (util_strcaseeq(value, "no") ||
			 util_strcaseeq(value, "false") ||
			 strcmp(value, "0") == 0)
			b = 0;
		else
			break;
		memcpy(field, &b, sizeof(b));
		return;
	}
	case CT_DURATION:
		if (filter_parse_duration(value, &v, &why) == -1 ||
		    v < k->min || v > k->max)
			break;
		memcpy(field, &v, sizeof(v));
		return;
	case CT_LISTEN: {
		struct config_listen_list list;

		if (config_parse_listen(value, &list, &why) == -1) {
			config_error(
			    l, l->lineno,
			    "bad value '%s' for key '%s' in section "
			    "[%s]: %s; expected host:port or "
			    "[IPv6]:port, comma-separated",
			    config_shorten(value, shown, sizeof(shown)),
			    k->name, sec, why);
			return;
		}
		memcpy(field, &list, sizeof(list));
		return;
	}
	case CT_ADDRLIST: {
		struct config_listen_list list;

		/* Checked like a listen list, kept as text for dns.c. */
		if (len >= k->size) {
			why = "the list is too long";
		} else if (config_parse_listen(value, &list, &why) == 0) {
			strlcpy(field, value, k->size);
			return;
		}
		config_error(l, l->lineno,
			     "bad value '%s' for key '%s' in section [%s]: "
			     "%s; expected host:port or [IPv6]:port, "
			     "comma-separated",
			     config_shorten(value, shown, sizeof(shown)),
			     k->name, sec, why);
		return;
	}
	}

	/* Only a bad value's beginning is quoted, so that the explanation
	 * always fits in the message. */
	value = config_shorten(value, shown, sizeof(shown));
	switch (k->type) {
	case CT_HOSTNAME:
		why = "a host name (letters, digits, '-' and '.')";
		break;
	case CT_PATH:
		why = len >= k->size ? "an absolute path (this one is too long)"
				     : "an absolute path";
		break;
	case CT_UINT:
		config_error(l, l->lineno,
			     "bad value '%s' for key '%s' in section [%s]: "
			     "expected a whole number from %llu to %llu%s%s",
			     value, k->name, sec, (unsigned long long)k->min,
			     (unsigned long long)k->max, k->unit ? " " : "",
			     k->unit ? k->unit : "");
		return;
	case CT_SIZE:
		config_error(l, l->lineno,
			     "bad value '%s' for key '%s' in section [%s]: "
			     "expected a size in bytes with an optional K, M "
			     "or G suffix, from %lluK to %lluG",
			     value, k->name, sec,
			     (unsigned long long)(k->min >> 10),
			     (unsigned long long)(k->max >> 30));
		return;
	case CT_LEVEL:
		why = "warning, info or debug";
		break;
	case CT_ACTION:
		why = "reject or log";
		break;
	case CT_DURABILITY:
		why = "auto, syncfs or fsync";
		break;
	case CT_BOOL:
		why = "yes or no";
		break;
	case CT_DURATION: {
		char lo[24], hi[24];

		config_format_duration(k->min, lo, sizeof(lo));
		config_format_duration(k->max, hi, sizeof(hi));
		config_error(l, l->lineno,
			     "bad value '%s' for key '%s' in section [%s]: "
			     "expected a duration such as 90, 30s, 10m, 2h, "
			     "7d or 1w, from %s to %s",
			     value, k->name, sec, lo, hi);
		return;
	}
	default:
		why = "something else";
		break;
	}
	config_error(l, l->lineno,
		     "bad value '%s' for key '%s' in section [%s]: expected %s",
		     value, k->name, sec, why);
}

/* Returns value, or its first CONFIG_SHOW_MAX bytes and "..." in buf. */
static const char *
config_shorten(const char *value, char *buf, size_t len)
{
	if (strlen(value) <= CONFIG_SHOW_MAX || len < CONFIG_SHOW_MAX + 4)
		return value;
	memcpy(buf, value, CONFIG_SHOW_MAX);
	memcpy(buf + CONFIG_SHOW_MAX, "...", 4);
	return buf;
}

/* Letters, digits, '-' and '.', in non-empty labels that neither start
 * nor end with '-'. */
static int
config_check_hostname(const char *s, size_t len)
{
	size_t i, label = 0;

	if (len == 0 || len > 253)
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9') || c == '-') {
			if (c == '-' && label == 0)
				return 0;
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return s[len - 1] != '-';
}

/* Message lines are built here and handed to the caller's callback. */
static void
config_error(struct config_loader *l, int line, const char *fmt, ...)
{
	char msg[CONFIG_MSG_MAX];
	va_list ap;

	l->nerrors++;
	if (l->err_cb == NULL)
		return;
	va_start(ap, fmt);
	/* A truncated message is still worth showing. */
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	l->err_cb(l->path, line, msg, l->arg);
}

/* ------------------------------------------------------------------ */
/* Listen lists */

int
config_parse_listen(const char *value, struct config_listen_list *out,
		    const char **error_r)
{
	struct config_listen_list list;
	const char *p = value, *e;
	size_t len;

	memset(&list, 0, sizeof(list));
	while (config_is_space(*p))
		p++;
	if (*p == '\0') {
		*out = list; /* no listener */
		return 0;
	}
	for (;;) {
		while (config_is_space(*p))
			p++;
		for (e = p; *e != '\0' && *e != ','; e++)
			;
		len = (size_t)(e - p);
		while (len > 0 && config_is_space(p[len - 1]))
			len--;
		if (len == 0) {
			*error_r = "empty address in the list";
			return -1;
		}
		if (list.n == CONFIG_MAX_LISTEN) {
			*error_r = "too many addresses (at most 8)";
			return -1;
		}
		if (config_parse_item(p, len, &list.addr[list.n], error_r) ==
		    -1)
			return -1;
		list.n++;
		if (*e == '\0')
			break;
		p = e + 1;
	}
	*out = list;
	return 0;
}

/* Parses one "host:port" or "[v6]:port" of len bytes. */
static int
config_parse_item(const char *s, size_t len, struct config_listen *out,
		  const char **error_r)
{
	const char *host, *port, *colon = NULL;
	size_t hlen, plen, i;
	unsigned long pnum = 0;
	unsigned char addr[sizeof(struct in6_addr)];

	if (s[0] == '[') {
		const char *rb = memchr(s, ']', len);

		if (rb == NULL) {
			*error_r = "missing ']' after the IPv6 address";
			return -1;
		}
		host = s + 1;
		hlen = (size_t)(rb - host);
		if ((size_t)(rb - s) + 1 >= len || rb[1] != ':') {
			*error_r = "expected ':' and a port after ']'";
			return -1;
		}
		port = rb + 2;
	} else {
		for (i = 0; i < len; i++)
			if (s[i] == ':')
				colon = s + i;
		if (colon == NULL) {
			*error_r = "missing ':' and port";
			return -1;
		}
		host = s;
		hlen = (size_t)(colon - s);
		if (memchr(host, ':', hlen) != NULL) {
			*error_r = "an IPv6 address must be in brackets, as "
				   "in [::1]:25";
			return -1;
		}
		port = colon + 1;
	}
	plen = len - (size_t)(port - s);
	if (hlen == 0) {
		*error_r = "missing host before the port";
		return -1;
	}
	if (hlen >= sizeof(out->host)) {
		*error_r = "host too long";
		return -1;
	}
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	if (s[0] == '[') {
		if (inet_pton(AF_INET6, out->host, addr) != 1) {
			*error_r = "bad IPv6 address";
			return -1;
		}
	} else if (strspn(out->host, "0123456789.") == hlen) {
		if (inet_pton(AF_INET, out->host, addr) != 1) {
			*error_r = "bad IPv4 address";
			return -1;
		}
	} else if (!config_check_hostname(out->host, hlen)) {
		*error_r = "bad host name";
		return -1;
	}
	if (plen == 0 || plen > 5) {
		*error_r = "bad port (expected 1 to 65535)";
		return -1;
	}
	for (i = 0; i < plen; i++) {
		if (port[i] < '0' || port[i] > '9') {
			*error_r = "bad port (expected 1 to 65535)";
			return -1;
		}
		pnum = pnum * 10 + (unsigned long)(port[i] - '0');
	}
	if (pnum < 1 || pnum > 65535) {
		*error_r = "bad port (expected 1 to 65535)";
		return -1;
	}
	/* Canonical form: no leading zeros. */
	if ((size_t)snprintf(out->port, sizeof(out->port), "%lu", pnum) >=
	    sizeof(out->port))
		fatalx("config_parse_item: port does not fit");
	return 0;
}
