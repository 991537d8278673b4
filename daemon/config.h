/* The daemon's configuration: an INI file parsed with libinih into one
 * struct config. Every key has a default (config_defaults) and is documented
 * in packaging/postern.conf, which becomes postern.conf(5). */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "queue_config.h"

#include "filter_config.h"

#define CONFIG_DEFAULT_PATH "/etc/postern/postern.conf"
#define CONFIG_MAX_LISTEN 8
/* posternd's snapshot of the filter's live status in user-space mode,
 * under data_dir, for posternctl filter status. */
#define CONFIG_FILTER_STATUS_NAME "filter.status"

/* One "host:port" (IPv6 as "[::1]:port"); host is stored without brackets. */
struct config_listen {
	char host[64];
	char port[8];
};

struct config_listen_list {
	struct config_listen addr[CONFIG_MAX_LISTEN];
	size_t n;
};

/* [abuse]. A threshold counts events from one source within window; 0
 * never bans. Durations are in seconds. */
struct config_abuse {
	uint64_t auth_failures;		/* 5 */
	uint64_t auth_failures_account; /* auth_failures_per_account; 20 */
	uint64_t unknown_recipients;	/* 20 */
	uint64_t pregreet;		/* 1 */
	uint64_t smuggling;		/* 1 */
	uint64_t bad_commands;		/* sessions cut off for errors; 3 */
	uint64_t window;		/* 3600 */
	uint64_t ban_time;		/* the first ban; 600 */
	uint64_t ban_time_max;		/* 604800 */
	uint64_t ban_time_factor;	/* per repeat offence; 6 */
	uint64_t ban_memory;		/* a ban within this after the last
					   one ended is a repeat; 86400 */
	uint64_t ban_ipv6_prefix;	/* 64 */
};

struct config {
	/* [server] */
	char hostname[256];		 /* default: gethostname() */
	char data_dir[1024];		 /* default: /var/lib/postern */
	uint64_t max_connections;	 /* all protocols; default 10000 */
	uint64_t max_connections_per_ip; /* default 50 */
	uint64_t worker_threads;	 /* default 4 */

	/* [log] */
	int log_level; /* level = warning|info|debug; default info */

	/* [smtp] */
	struct config_listen_list smtp_listen; /* default 0.0.0.0:25 */
	uint64_t smtp_max_message_size; /* bytes; default 26214400 (25M) */
	uint64_t smtp_max_recipients;	/* per transaction; default 100 */
	uint64_t smtp_max_command_line; /* octets incl. CRLF; default 512 */
	uint64_t smtp_max_text_line;	/* octets incl. CRLF; default 1000 */
	uint64_t smtp_max_bad_commands; /* default 20 */
	uint64_t smtp_max_unknown_recipients; /* per session; default 20 */
	uint64_t
	    smtp_max_messages_per_ip;	/* per client address and hour,
					   all ports; 0 = no limit (default) */
	uint64_t smtp_idle_timeout;	/* seconds; default 300 */
	uint64_t smtp_data_timeout;	/* seconds; default 600 */
	uint64_t smtp_pregreet_wait_ms; /* 0 disables; default 0 */
	int smtp_pregreet_reject;	/* pregreet_action = reject|log; default
					   reject */

	/* [pop3] */
	struct config_listen_list pop3_listen; /* default 0.0.0.0:110 */
	uint64_t pop3_max_command_line;	  /* octets incl. CRLF; default 255 */
	uint64_t pop3_max_bad_commands;	  /* default 10 */
	uint64_t pop3_idle_timeout;	  /* seconds; default 600 */
	uint64_t pop3_auth_fail_delay_ms; /* default 2000 */
	int pop3_allow_plaintext; /* allow_plaintext_auth = yes|no: logins
				     without TLS from anywhere; default no */

	/* [tls] */
	char tls_cert[1024]; /* PEM chain; empty = no TLS */
	char tls_key[1024];

	/* [submission] (587, STARTTLS) and [submissions] (465, implicit
	 * TLS, RFC 8314); [pop3s] (995, implicit TLS). */
	struct config_listen_list submission_listen;  /* default none */
	struct config_listen_list submissions_listen; /* default none */
	struct config_listen_list pop3s_listen;	      /* default none */
	uint64_t submission_max_messages_per_hour;    /* per account; 200 */
	uint64_t submission_max_recipients;	      /* per message; 100 */

	/* [auth] */
	int auth_plaintext_loopback; /* plaintext_on_loopback = yes|no;
					default no */
	int smtp_auth_on_mx;	     /* [smtp] auth = yes|no; default no */
	uint64_t auth_fail_delay_ms; /* [auth] fail_delay; default 2000 */

	/* [server] durability = auto|syncfs|fsync: the barrier before a 250
	 * (delivery.h); default auto. */
	int durability;

	/* [filter]: the connection filter (filter_config.h). Unless set,
	 * ports also gets every listen port, and ban_file is
	 * <data_dir>/bans. */
	struct filter_config filter;

	/* [abuse]: reports turned into bans (abuse.c); replaced as a whole
	 * on SIGHUP. */
	struct config_abuse abuse;

	/* [queue], [relay], [dns]: the outbound queue (queue_config.h). */
	struct queue_config queue;
};

/* Fills cfg with every default. */
void config_defaults(struct config *cfg);

/* A callback for each problem found while loading: file, line (0 when the
 * problem is not tied to a line) and a message. */
typedef void (*config_error_fn)(const char *file, int line, const char *msg,
				void *arg);

/* Loads path over the defaults already in cfg. Reports every problem (unknown
 * section or key, bad value, syntax error, unreadable file) through err_cb
 * and keeps going. Returns the number of problems (0 = success). */
int config_load(struct config *cfg, const char *path, config_error_fn err_cb,
		void *arg);

/* Parses a comma-separated listen list ("127.0.0.1:2525, [::1]:2525").
 * Returns 0, or -1 with a static message in *error_r. */
int config_parse_listen(const char *value, struct config_listen_list *out,
			const char **error_r);

#endif
