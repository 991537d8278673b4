/* Unit tests for config.c: defaults, every key, every kind of error with
 * its line number, several errors in one load, and the listen syntax. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "delivery.h"
#include "harness.h"
#include "log.h"
#include "util.h"

static char tmpdir[] = "/tmp/test_config.XXXXXX";
static char conf_path[600];

#define MAX_ERRORS 32

struct errors {
	int n;
	int line[MAX_ERRORS];
	char msg[MAX_ERRORS][1024];
	char file[MAX_ERRORS][600];
};

static void
collect(const char *file, int line, const char *msg, void *arg)
{
	struct errors *e = arg;

	if (e->n < MAX_ERRORS) {
		e->line[e->n] = line;
		strlcpy(e->msg[e->n], msg, sizeof(e->msg[0]));
		strlcpy(e->file[e->n], file, sizeof(e->file[0]));
	}
	e->n++;
}

static void
write_conf(const char *text, size_t len)
{
	FILE *fp = fopen(conf_path, "w");

	if (fp == NULL) {
		perror(conf_path);
		exit(1);
	}
	if (fwrite(text, 1, len, fp) != len)
		exit(1);
	fclose(fp);
}

/* Loads text over the defaults; returns config_load's count. */
static int
load(const char *text, struct config *cfg, struct errors *e)
{
	int n;

	memset(e, 0, sizeof(*e));
	write_conf(text, strlen(text));
	config_defaults(cfg);
	n = config_load(cfg, conf_path, collect, e);
	if (n != e->n)
		fprintf(stderr, "  count %d != callbacks %d\n", n, e->n);
	return n;
}

static void
dump_errors(const struct errors *e)
{
	int i;

	for (i = 0; i < e->n && i < MAX_ERRORS; i++)
		fprintf(stderr, "    line %d: %s\n", e->line[i], e->msg[i]);
}

/* ------------------------------------------------------------------ */

static void
test_defaults(void)
{
	struct config c;

	config_defaults(&c);
	CHECK(c.hostname[0] != '\0');
	CHECK_STR(c.data_dir, "/var/lib/postern");
	CHECK(c.max_connections == 10000);
	CHECK(c.max_connections_per_ip == 50);
	CHECK(c.worker_threads == 4);
	CHECK(c.log_level == LOG_LEVEL_INFO);
	CHECK(c.smtp_listen.n == 1);
	CHECK_STR(c.smtp_listen.addr[0].host, "0.0.0.0");
	CHECK_STR(c.smtp_listen.addr[0].port, "25");
	CHECK(c.smtp_max_message_size == 26214400);
	CHECK(c.smtp_max_recipients == 100);
	CHECK(c.smtp_max_command_line == 512);
	CHECK(c.smtp_max_text_line == 1000);
	CHECK(c.smtp_max_bad_commands == 20);
	CHECK(c.smtp_max_unknown_recipients == 20);
	CHECK(c.smtp_idle_timeout == 300);
	CHECK(c.smtp_data_timeout == 600);
	CHECK(c.smtp_pregreet_wait_ms == 0);
	CHECK(c.smtp_pregreet_reject == 1);
	CHECK(c.pop3_listen.n == 1);
	CHECK_STR(c.pop3_listen.addr[0].host, "0.0.0.0");
	CHECK_STR(c.pop3_listen.addr[0].port, "110");
	CHECK(c.pop3_max_command_line == 255);
	CHECK(c.pop3_max_bad_commands == 10);
	CHECK(c.pop3_idle_timeout == 600);
	CHECK(c.pop3_auth_fail_delay_ms == 2000);
	CHECK(c.pop3_allow_plaintext == 0);
	CHECK_STR(c.tls_cert, "");
	CHECK_STR(c.tls_key, "");
	CHECK(c.submission_listen.n == 0);
	CHECK(c.submissions_listen.n == 0);
	CHECK(c.pop3s_listen.n == 0);
	CHECK(c.submission_max_messages_per_hour == 200);
	CHECK(c.submission_max_recipients == 100);
	CHECK(c.auth_plaintext_loopback == 0);
	CHECK(c.smtp_auth_on_mx == 0);
	CHECK(c.auth_fail_delay_ms == 2000);
	CHECK(c.durability == DELIVERY_AUTO);
}

static void
test_empty_file(void)
{
	struct config c, d;
	struct errors e;

	CHECK(load("", &c, &e) == 0);
	config_defaults(&d);
	CHECK(memcmp(&c, &d, sizeof(c)) == 0);
	CHECK(load("; only a comment\n# another\n\n   \n[server]\n", &c, &e) ==
	      0);
	CHECK(memcmp(&c, &d, sizeof(c)) == 0);
}

static void
test_every_key(void)
{
	static const char text[] = "[server]\n"
				   "hostname = mx1.Example.org\n"
				   "data_dir = /srv/postern\n"
				   "max_connections = 500\n"
				   "max_connections_per_ip = 5\n"
				   "worker_threads = 8\n"
				   "durability = fsync\n"
				   "[log]\n"
				   "level = debug\n"
				   "[smtp]\n"
				   "listen = 127.0.0.1:2525, [::1]:2525\n"
				   "max_message_size = 10M\n"
				   "max_recipients = 50\n"
				   "max_command_line = 1024\n"
				   "max_text_line = 2000\n"
				   "max_bad_commands = 3\n"
				   "max_unknown_recipients = 4\n"
				   "idle_timeout = 60\n"
				   "data_timeout = 120\n"
				   "pregreet_wait = 1500\n"
				   "pregreet_action = log\n"
				   "auth = yes\n"
				   "[pop3]\n"
				   "listen = 127.0.0.1:1110\n"
				   "max_command_line = 300\n"
				   "max_bad_commands = 2\n"
				   "idle_timeout = 30\n"
				   "auth_fail_delay = 0\n"
				   "allow_plaintext_auth = no\n"
				   "[tls]\n"
				   "cert = /etc/postern/cert.pem\n"
				   "key = /etc/postern/key.pem\n"
				   "[submission]\n"
				   "listen = 127.0.0.1:587\n"
				   "max_messages_per_hour = 50\n"
				   "max_recipients = 20\n"
				   "[submissions]\n"
				   "listen = [::1]:465, 127.0.0.1:465\n"
				   "[pop3s]\n"
				   "listen = 127.0.0.1:995\n"
				   "[auth]\n"
				   "plaintext_on_loopback = yes\n"
				   "fail_delay = 500\n";
	struct config c;
	struct errors e;

	CHECK(load(text, &c, &e) == 0);
	dump_errors(&e);
	CHECK_STR(c.hostname, "mx1.Example.org");
	CHECK_STR(c.data_dir, "/srv/postern");
	CHECK(c.max_connections == 500);
	CHECK(c.max_connections_per_ip == 5);
	CHECK(c.worker_threads == 8);
	CHECK(c.log_level == LOG_LEVEL_DEBUG);
	CHECK(c.smtp_listen.n == 2);
	CHECK_STR(c.smtp_listen.addr[0].host, "127.0.0.1");
	CHECK_STR(c.smtp_listen.addr[0].port, "2525");
	CHECK_STR(c.smtp_listen.addr[1].host, "::1");
	CHECK_STR(c.smtp_listen.addr[1].port, "2525");
	CHECK(c.smtp_max_message_size == 10 * 1024 * 1024);
	CHECK(c.smtp_max_recipients == 50);
	CHECK(c.smtp_max_command_line == 1024);
	CHECK(c.smtp_max_text_line == 2000);
	CHECK(c.smtp_max_bad_commands == 3);
	CHECK(c.smtp_max_unknown_recipients == 4);
	CHECK(c.smtp_idle_timeout == 60);
	CHECK(c.smtp_data_timeout == 120);
	CHECK(c.smtp_pregreet_wait_ms == 1500);
	CHECK(c.smtp_pregreet_reject == 0);
	CHECK(c.pop3_listen.n == 1);
	CHECK_STR(c.pop3_listen.addr[0].host, "127.0.0.1");
	CHECK_STR(c.pop3_listen.addr[0].port, "1110");
	CHECK(c.pop3_max_command_line == 300);
	CHECK(c.pop3_max_bad_commands == 2);
	CHECK(c.pop3_idle_timeout == 30);
	CHECK(c.pop3_auth_fail_delay_ms == 0);
	CHECK(c.pop3_allow_plaintext == 0);
	CHECK(c.durability == DELIVERY_FSYNC);
	CHECK(c.smtp_auth_on_mx == 1);
	CHECK_STR(c.tls_cert, "/etc/postern/cert.pem");
	CHECK_STR(c.tls_key, "/etc/postern/key.pem");
	CHECK(c.submission_listen.n == 1);
	CHECK_STR(c.submission_listen.addr[0].port, "587");
	CHECK(c.submission_max_messages_per_hour == 50);
	CHECK(c.submission_max_recipients == 20);
	CHECK(c.submissions_listen.n == 2);
	CHECK_STR(c.submissions_listen.addr[0].host, "::1");
	CHECK(c.pop3s_listen.n == 1);
	CHECK_STR(c.pop3s_listen.addr[0].port, "995");
	CHECK(c.auth_plaintext_loopback == 1);
	CHECK(c.auth_fail_delay_ms == 500);
}

/* Small value tables: one key, a value, whether it loads, and the field. */
static void
test_value_table(void)
{
	static const struct {
		const char *section, *key, *value;
		int ok;
		uint64_t expect; /* for numeric and enum keys */
	} cases[] = {
	    {"log", "level", "warning", 1, LOG_LEVEL_WARN},
	    {"log", "level", "INFO", 1, LOG_LEVEL_INFO},
	    {"log", "level", "debug", 1, LOG_LEVEL_DEBUG},
	    {"log", "level", "warn", 0, 0},
	    {"log", "level", "", 0, 0},
	    {"smtp", "max_message_size", "1024", 1, 1024},
	    {"smtp", "max_message_size", "1K", 1, 1024},
	    {"smtp", "max_message_size", "2m", 1, 2097152},
	    {"smtp", "max_message_size", "1G", 1, 1073741824},
	    {"smtp", "max_message_size", "4G", 1, 4294967296ULL},
	    {"smtp", "max_message_size", "5G", 0, 0},
	    {"smtp", "max_message_size", "1023", 0, 0},
	    {"smtp", "max_message_size", "10 M", 0, 0},
	    {"smtp", "max_message_size", "10MB", 0, 0},
	    {"smtp", "max_message_size", "-1", 0, 0},
	    {"smtp", "max_message_size", "M", 0, 0},
	    {"smtp", "max_recipients", "1", 1, 1},
	    {"smtp", "max_recipients", "0", 0, 0},
	    {"smtp", "max_recipients", "12x", 0, 0},
	    {"smtp", "max_recipients", "+5", 0, 0},
	    {"smtp", "max_recipients", "99999999999999999999999", 0, 0},
	    {"smtp", "max_command_line", "512", 1, 512},
	    {"smtp", "max_command_line", "511", 0, 0},
	    {"smtp", "max_text_line", "1000", 1, 1000},
	    {"smtp", "max_text_line", "999", 0, 0},
	    {"smtp", "idle_timeout", "0", 0, 0},
	    {"smtp", "idle_timeout", "86400", 1, 86400},
	    {"smtp", "pregreet_wait", "0", 1, 0},
	    {"smtp", "pregreet_wait", "60001", 0, 0},
	    {"smtp", "pregreet_action", "reject", 1, 1},
	    {"smtp", "pregreet_action", "Log", 1, 0},
	    {"smtp", "pregreet_action", "drop", 0, 0},
	    {"pop3", "max_command_line", "255", 1, 255},
	    {"pop3", "max_command_line", "254", 0, 0},
	    {"pop3", "allow_plaintext_auth", "yes", 1, 1},
	    {"pop3", "allow_plaintext_auth", "TRUE", 1, 1},
	    {"pop3", "allow_plaintext_auth", "1", 1, 1},
	    {"pop3", "allow_plaintext_auth", "no", 1, 0},
	    {"pop3", "allow_plaintext_auth", "false", 1, 0},
	    {"pop3", "allow_plaintext_auth", "0", 1, 0},
	    {"pop3", "allow_plaintext_auth", "maybe", 0, 0},
	    {"pop3", "allow_plaintext_auth", "on", 0, 0},
	    {"server", "worker_threads", "256", 1, 256},
	    {"server", "worker_threads", "257", 0, 0},
	    {"server", "hostname", "mail", 1, 0},
	    {"server", "hostname", "mail.example.org", 1, 0},
	    {"server", "hostname", "mail_1.example.org", 0, 0},
	    {"server", "hostname", "-mail.example.org", 0, 0},
	    {"server", "hostname", "mail..example", 0, 0},
	    {"server", "hostname", "\"mail.example.org\"", 0, 0},
	    {"server", "data_dir", "/var/lib/x", 1, 0},
	    {"server", "data_dir", "relative/dir", 0, 0},
	    {"server", "data_dir", "", 0, 0},
	    {"server", "durability", "syncfs", 1, DELIVERY_SYNCFS},
	    {"server", "durability", "FSYNC", 1, DELIVERY_FSYNC},
	    {"server", "durability", "auto", 1, DELIVERY_AUTO},
	    {"server", "durability", "fdatasync", 0, 0},
	    {"submission", "max_messages_per_hour", "0", 0, 0},
	    {"submission", "max_recipients", "100001", 0, 0},
	    {"auth", "fail_delay", "60001", 0, 0},
	    {"auth", "plaintext_on_loopback", "sometimes", 0, 0},
	    {"smtp", "auth", "perhaps", 0, 0},
	    {"pop3s", "listen", "127.0.0.1", 0, 0},
	};
	char text[512];
	struct config c, d;
	struct errors e;
	uint64_t got;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n;

		snprintf(text, sizeof(text), "[%s]\n%s = %s\n",
			 cases[i].section, cases[i].key, cases[i].value);
		n = load(text, &c, &e);
		if (n != (cases[i].ok ? 0 : 1)) {
			fprintf(stderr, "  [%s] %s = '%s': %d errors\n",
				cases[i].section, cases[i].key, cases[i].value,
				n);
			dump_errors(&e);
			CHECK(0);
			continue;
		}
		if (!cases[i].ok) {
			/* The message names key, value and what is wanted;
			 * the default stays. */
			config_defaults(&d);
			CHECK(e.line[0] == 2);
			CHECK(strstr(e.msg[0], cases[i].key) != NULL);
			CHECK(strstr(e.msg[0], "expected") != NULL);
			CHECK(memcmp(&c, &d, sizeof(c)) == 0);
			CHECK_STR(e.file[0], conf_path);
			continue;
		}
		got = cases[i].expect;
		if (strcmp(cases[i].key, "level") == 0)
			got = (uint64_t)c.log_level;
		else if (strcmp(cases[i].key, "max_message_size") == 0)
			got = c.smtp_max_message_size;
		else if (strcmp(cases[i].key, "max_recipients") == 0)
			got = c.smtp_max_recipients;
		else if (strcmp(cases[i].key, "max_command_line") == 0)
			got = strcmp(cases[i].section, "smtp") == 0
				  ? c.smtp_max_command_line
				  : c.pop3_max_command_line;
		else if (strcmp(cases[i].key, "max_text_line") == 0)
			got = c.smtp_max_text_line;
		else if (strcmp(cases[i].key, "idle_timeout") == 0)
			got = c.smtp_idle_timeout;
		else if (strcmp(cases[i].key, "pregreet_wait") == 0)
			got = c.smtp_pregreet_wait_ms;
		else if (strcmp(cases[i].key, "pregreet_action") == 0)
			got = (uint64_t)c.smtp_pregreet_reject;
		else if (strcmp(cases[i].key, "allow_plaintext_auth") == 0)
			got = (uint64_t)c.pop3_allow_plaintext;
		else if (strcmp(cases[i].key, "worker_threads") == 0)
			got = c.worker_threads;
		else if (strcmp(cases[i].key, "durability") == 0)
			got = (uint64_t)c.durability;
		else if (strcmp(cases[i].key, "hostname") == 0)
			CHECK_STR(c.hostname, cases[i].value);
		else if (strcmp(cases[i].key, "data_dir") == 0)
			CHECK_STR(c.data_dir, cases[i].value);
		if (got != cases[i].expect) {
			fprintf(stderr, "  [%s] %s = '%s': got %llu\n",
				cases[i].section, cases[i].key, cases[i].value,
				(unsigned long long)got);
			CHECK(0);
		}
	}
}

/* INI details libinih and our reader must agree on. */
static void
test_syntax_accepted(void)
{
	struct config c;
	struct errors e;

	/* CRLF, BOM, inline comments, ':' separator, indentation, upper case
	 * section and key names, blanks around the section name. */
	CHECK(load("\xEF\xBB\xBF[SMTP]\r\n"
		   "max_recipients = 7 ; a comment\r\n"
		   "  Max_Bad_Commands: 9\r\n"
		   "[ pop3 ]   ; trailing comment\n"
		   "\tidle_timeout=11\n"
		   "# comment\n"
		   "; comment\n"
		   "[log]\n"
		   "level = debug", /* no final newline */
		   &c, &e) == 0);
	dump_errors(&e);
	CHECK(c.smtp_max_recipients == 7);
	CHECK(c.smtp_max_bad_commands == 9);
	CHECK(c.pop3_idle_timeout == 11);
	CHECK(c.log_level == LOG_LEVEL_DEBUG);

	/* A ';' without a blank before it belongs to the value. */
	CHECK(load("[server]\ndata_dir = /a;b\n", &c, &e) == 0);
	CHECK_STR(c.data_dir, "/a;b");
}

/* A line far longer than libinih's default 200 bytes stays whole. */
static void
test_long_line(void)
{
	char text[2048], dir[1100];
	struct config c;
	struct errors e;

	memset(dir, 'd', sizeof(dir));
	dir[0] = '/';
	dir[1000] = '\0';
	snprintf(text, sizeof(text),
		 "[server]\ndata_dir = %s\nworker_threads = 2\n", dir);
	CHECK(load(text, &c, &e) == 0);
	dump_errors(&e);
	CHECK_STR(c.data_dir, dir);
	CHECK(c.worker_threads == 2);

	/* 1023 characters is the most data_dir takes. */
	dir[1000] = 'd';
	dir[1024] = '\0';
	snprintf(text, sizeof(text), "[server]\ndata_dir = %s\n", dir);
	CHECK(load(text, &c, &e) == 1);
	CHECK(e.line[0] == 2 && strstr(e.msg[0], "too long") != NULL);
}

static void
test_line_too_long(void)
{
	char *text = malloc(10000);
	struct config c;
	struct errors e;

	if (text == NULL)
		return;
	size_t start;

	strlcpy(text, "[server]\nhostname = ", 10000);
	start = strlen(text);
	memset(text + start, 'h', 5000);
	text[start + 5000] = '\0';
	strlcpy(text + strlen(text), "\n[smtp]\nmax_recipients = 0\n", 1000);
	CHECK(load(text, &c, &e) == 2);
	CHECK(e.line[0] == 2 && strstr(e.msg[0], "too long") != NULL);
	/* The rest of the file is still read, with the right line numbers. */
	CHECK(e.line[1] == 4 && strstr(e.msg[1], "max_recipients") != NULL);
	free(text);
}

/* Each kind of problem, at its line. */
static void
test_error_table(void)
{
	static const struct {
		const char *text;
		int line;
		const char *msg;
	} cases[] = {
	    {"[server]\n[nosuch]\n", 2, "unknown section [nosuch]"},
	    {"[server]\nnosuch = 1\n", 2,
	     "unknown key 'nosuch' in section [server]"},
	    {"[smtp]\nhostname = x\n", 2,
	     "unknown key 'hostname' in section [smtp]"},
	    {"[smtp]\nmax_recipients = lots\n", 2,
	     "bad value 'lots' for key 'max_recipients' in section "
	     "[smtp]: expected a whole number from 1 to 100000"},
	    {"[smtp]\nidle_timeout = 0\n", 2,
	     "bad value '0' for key 'idle_timeout' in section [smtp]: "
	     "expected a whole number from 1 to 86400 seconds"},
	    {"[log]\nlevel = loud\n", 2,
	     "bad value 'loud' for key 'level' in section [log]: "
	     "expected warning, info or debug"},
	    {"[smtp]\nlisten = 1.2.3.4\n", 2,
	     "bad value '1.2.3.4' for key 'listen' in section [smtp]: "
	     "missing ':' and port; expected host:port or [IPv6]:port, "
	     "comma-separated"},
	    {"[smtp]\n\nmax_recipients = 5\nmax_recipients = 6\n", 4,
	     "duplicate key 'max_recipients' in section [smtp] (first set "
	     "on line 3)"},
	    {"[smtp]\nlisten\n", 2, "syntax error: expected 'key = value'"},
	    {"[smtp]\nlisten ; = 1\n", 2,
	     "syntax error: expected 'key = value'"},
	    {"[smtp\n", 1, "syntax error: section header without closing ']'"},
	    {"[smtp] junk\n", 1,
	     "syntax error: unexpected text after section header"},
	    {"[smtp]\n= 5\n", 2, "syntax error: missing key name before '='"},
	    {"max_recipients = 5\n", 1,
	     "key 'max_recipients' is outside of any section"},
	    {"[tls]\ncert = /etc/c.pem\n", 2,
	     "key 'cert' in section [tls] needs 'key' too"},
	    {"[tls]\n\nkey = /etc/k.pem\n", 3,
	     "key 'key' in section [tls] needs 'cert' too"},
	};
	struct config c;
	struct errors e;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (load(cases[i].text, &c, &e) != 1 ||
		    e.line[0] != cases[i].line ||
		    strcmp(e.msg[0], cases[i].msg) != 0) {
			fprintf(stderr, "  case %zu:\n", i);
			dump_errors(&e);
			CHECK(0);
		}
	}
}

/* Everything wrong at once: each problem reported, in order, and the good
 * keys between them still applied. */
static void
test_many_errors(void)
{
	static const char text[] =
	    "[server]\n"		   /* 1 */
	    "worker_threads = 2\n"	   /* 2 */
	    "bogus = 1\n"		   /* 3 */
	    "[weird]\n"			   /* 4 */
	    "whatever = 1\n"		   /* 5: not reported again */
	    "[smtp]\n"			   /* 6 */
	    "max_recipients = x\n"	   /* 7 */
	    "this line is wrong\n"	   /* 8 */
	    "max_bad_commands = 5\n"	   /* 9 */
	    "[pop3\n"			   /* 10 */
	    "idle_timeout = 99\n"	   /* 11: still in [smtp] */
	    "[smtp]\n"			   /* 12 */
	    "max_bad_commands = 6\n"	   /* 13 */
	    "[pop3]\n"			   /* 14 */
	    "listen = [::1]:99999\n"	   /* 15 */
	    "allow_plaintext_auth = no\n"; /* 16 */
	static const int lines[] = {3, 4, 7, 8, 10, 13, 15};
	struct config c;
	struct errors e;
	size_t i;

	CHECK(load(text, &c, &e) == 7);
	for (i = 0; i < 7; i++)
		if (e.line[i] != lines[i]) {
			dump_errors(&e);
			CHECK(0);
			break;
		}
	CHECK(strstr(e.msg[5], "first set on line 9") != NULL);
	CHECK(c.worker_threads == 2);
	CHECK(c.smtp_max_bad_commands == 5);
	CHECK(c.smtp_idle_timeout == 99);
	CHECK(c.pop3_allow_plaintext == 0);
	CHECK(c.pop3_listen.n == 1); /* default kept */
}

static void
test_nul_byte(void)
{
	static const char text[] = "[smtp]\nmax_re\0cipients = 5\n"
				   "max_bad_commands = 5\n";
	struct config c;
	struct errors e;

	memset(&e, 0, sizeof(e));
	write_conf(text, sizeof(text) - 1);
	config_defaults(&c);
	CHECK(config_load(&c, conf_path, collect, &e) == 1);
	CHECK(e.line[0] == 2 && strstr(e.msg[0], "NUL") != NULL);
	CHECK(c.smtp_max_recipients == 100);
	CHECK(c.smtp_max_bad_commands == 5);
}

static void
test_unreadable(void)
{
	char path[700];
	struct config c;
	struct errors e;

	memset(&e, 0, sizeof(e));
	snprintf(path, sizeof(path), "%s/does-not-exist.conf", tmpdir);
	config_defaults(&c);
	CHECK(config_load(&c, path, collect, &e) == 1);
	CHECK(e.line[0] == 0);
	CHECK_STR(e.file[0], path);
	CHECK(strstr(e.msg[0], "No such file") != NULL);

	/* A directory opens but cannot be read. */
	memset(&e, 0, sizeof(e));
	CHECK(config_load(&c, tmpdir, collect, &e) == 1);
	CHECK(strstr(e.msg[0], "read error") != NULL);

	/* No callback: still counted. */
	CHECK(config_load(&c, path, NULL, NULL) == 1);
}

static void
test_listen_table(void)
{
	static const struct {
		const char *in;
		int ok;
		size_t n;
		const char *first_host, *first_port, *last_host, *last_port;
	} cases[] = {
	    {"127.0.0.1:25", 1, 1, "127.0.0.1", "25", "127.0.0.1", "25"},
	    {"0.0.0.0:25", 1, 1, "0.0.0.0", "25", "0.0.0.0", "25"},
	    {"[::1]:2525", 1, 1, "::1", "2525", "::1", "2525"},
	    {"[::]:25", 1, 1, "::", "25", "::", "25"},
	    {"[2001:db8::1]:65535", 1, 1, "2001:db8::1", "65535", "2001:db8::1",
	     "65535"},
	    {"[::ffff:127.0.0.1]:1", 1, 1, "::ffff:127.0.0.1", "1",
	     "::ffff:127.0.0.1", "1"},
	    {"localhost:25", 1, 1, "localhost", "25", "localhost", "25"},
	    {"mail.example.org:587", 1, 1, "mail.example.org", "587",
	     "mail.example.org", "587"},
	    {"127.0.0.1:025", 1, 1, "127.0.0.1", "25", "127.0.0.1", "25"},
	    {" 127.0.0.1:25 ,\t[::1]:25 ", 1, 2, "127.0.0.1", "25", "::1",
	     "25"},
	    {"a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8", 1, 8, "a", "1", "h", "8"},
	    {"", 1, 0, NULL, NULL, NULL, NULL},
	    {"   ", 1, 0, NULL, NULL, NULL, NULL},
	    {"a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8,i:9", 0, 0, NULL, NULL, NULL,
	     NULL},
	    {"127.0.0.1", 0, 0, NULL, NULL, NULL, NULL},
	    {"127.0.0.1:", 0, 0, NULL, NULL, NULL, NULL},
	    {":25", 0, 0, NULL, NULL, NULL, NULL},
	    {"127.0.0.1:0", 0, 0, NULL, NULL, NULL, NULL},
	    {"127.0.0.1:65536", 0, 0, NULL, NULL, NULL, NULL},
	    {"127.0.0.1:123456", 0, 0, NULL, NULL, NULL, NULL},
	    {"127.0.0.1:-1", 0, 0, NULL, NULL, NULL, NULL},
	    {"127.0.0.1:2x", 0, 0, NULL, NULL, NULL, NULL},
	    {"127.0.0.1: 25", 0, 0, NULL, NULL, NULL, NULL},
	    {"127.0.0.1 :25", 0, 0, NULL, NULL, NULL, NULL},
	    {"256.0.0.1:25", 0, 0, NULL, NULL, NULL, NULL},
	    {"1.2.3:25", 0, 0, NULL, NULL, NULL, NULL},
	    {"::1:25", 0, 0, NULL, NULL, NULL, NULL},
	    {"[::1:25", 0, 0, NULL, NULL, NULL, NULL},
	    {"[::1]25", 0, 0, NULL, NULL, NULL, NULL},
	    {"[::1]:", 0, 0, NULL, NULL, NULL, NULL},
	    {"[]:25", 0, 0, NULL, NULL, NULL, NULL},
	    {"[127.0.0.1]:25", 0, 0, NULL, NULL, NULL, NULL},
	    {"[::g]:25", 0, 0, NULL, NULL, NULL, NULL},
	    {"bad_host:25", 0, 0, NULL, NULL, NULL, NULL},
	    {"127.0.0.1:25,", 0, 0, NULL, NULL, NULL, NULL},
	    {",127.0.0.1:25", 0, 0, NULL, NULL, NULL, NULL},
	    {"127.0.0.1:25,,[::1]:25", 0, 0, NULL, NULL, NULL, NULL},
	    {"127.0.0.1:25;[::1]:25", 0, 0, NULL, NULL, NULL, NULL},
	    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	     "aaaa.example:25",
	     0, 0, NULL, NULL, NULL, NULL},
	};
	struct config_listen_list out;
	const char *why;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r;

		memset(&out, 0x5a, sizeof(out));
		out.n = 77;
		why = NULL;
		r = config_parse_listen(cases[i].in, &out, &why);
		if (r != (cases[i].ok ? 0 : -1)) {
			fprintf(stderr, "  listen \"%s\": got %d (%s)\n",
				cases[i].in, r, why ? why : "");
			CHECK(0);
			continue;
		}
		if (!cases[i].ok) {
			/* A message, and the output untouched. */
			CHECK(why != NULL && why[0] != '\0');
			CHECK(out.n == 77);
			continue;
		}
		CHECK(out.n == cases[i].n);
		if (out.n == 0 || out.n != cases[i].n)
			continue;
		CHECK_STR(out.addr[0].host, cases[i].first_host);
		CHECK_STR(out.addr[0].port, cases[i].first_port);
		CHECK_STR(out.addr[out.n - 1].host, cases[i].last_host);
		CHECK_STR(out.addr[out.n - 1].port, cases[i].last_port);
	}
}

/* An empty listen value in the file means no listener for that protocol. */
static void
test_listen_empty_in_file(void)
{
	struct config c;
	struct errors e;

	CHECK(load("[pop3]\nlisten =\n[smtp]\nlisten = [::1]:25\n", &c, &e) ==
	      0);
	CHECK(c.pop3_listen.n == 0);
	CHECK(c.smtp_listen.n == 1);
	CHECK_STR(c.smtp_listen.addr[0].host, "::1");
}

/* durability = auto: syncfs only where the file system is a local disk
 * one; network and FUSE file systems get per-file fsync. */
static void
test_durability_auto(void)
{
	CHECK(delivery_auto_mode(0xEF53) == DELIVERY_SYNCFS);	  /* ext4 */
	CHECK(delivery_auto_mode(0x58465342) == DELIVERY_SYNCFS); /* xfs */
	CHECK(delivery_auto_mode(0x9123683E) == DELIVERY_SYNCFS); /* btrfs */
	CHECK(delivery_auto_mode(0x6969) == DELIVERY_FSYNC);	  /* nfs */
	CHECK(delivery_auto_mode(0x65735546) == DELIVERY_FSYNC);  /* fuse */
	CHECK(delivery_auto_mode(0xFF534D42) == DELIVERY_FSYNC);  /* cifs */
	CHECK(delivery_auto_mode(0) == DELIVERY_FSYNC);
}

int
main(void)
{
	int ret;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(conf_path, sizeof(conf_path), "%s/postern.conf", tmpdir);

	RUN(test_defaults);
	RUN(test_empty_file);
	RUN(test_every_key);
	RUN(test_value_table);
	RUN(test_syntax_accepted);
	RUN(test_long_line);
	RUN(test_line_too_long);
	RUN(test_error_table);
	RUN(test_many_errors);
	RUN(test_nul_byte);
	RUN(test_unreadable);
	RUN(test_listen_table);
	RUN(test_listen_empty_in_file);
	RUN(test_durability_auto);

	ret = HARNESS_DONE();
	unlink(conf_path);
	rmdir(tmpdir);
	return ret;
}
