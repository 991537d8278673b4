/* posternctl: the local administration tool. Adds, removes and lists the
 * domains, mailboxes and aliases of the account store in the data_dir named
 * by postern.conf; the daemon sees each change at its next lookup. Also
 * lists, adds and lifts the connection filter's bans (the ban file and,
 * while an XDP filter runs, its pinned maps) and shows the filter's status. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <crypt.h>
#include <termios.h>
#include <unistd.h>

#include "abuse.h"
#include "config.h"
#include "filter.h"
#include "log.h"
#include "password.h"
#include "queue_admin.h"
#include "store.h"
#include "util.h"

#define CTL_OK 0
#define CTL_ERR 1
#define CTL_USAGE 2

/* libxcrypt refuses longer passphrases. */
#define CTL_PASSWORD_MAX (CRYPT_MAX_PASSPHRASE_SIZE - 1)

struct ctl {
	struct config cfg;
	struct store *store;   /* account commands */
	struct filter *filter; /* CTL_F_FILTER commands */
};

/* ctl_command.flags */
#define CTL_F_FILTER 0x1 /* works on the filter, not the store */

/* A live status older than this is from a posternd that has stopped
 * (it rewrites the file at least every 10 s). */
#define CTL_STATUS_MAX_AGE 30

/* One row per command: the only place that knows the commands, their
 * argument counts (max -1 = no limit) and their usage line. */
struct ctl_command {
	const char *noun;
	const char *verb;
	int min_args, max_args;
	int (*fn)(struct ctl *c, int argc, char **argv);
	const char *args;
	int flags; /* CTL_F_* */
};

/* Commands */
static int ctl_domain_add(struct ctl *c, int argc, char **argv);
static int ctl_domain_del(struct ctl *c, int argc, char **argv);
static int ctl_domain_list(struct ctl *c, int argc, char **argv);
static int ctl_mailbox_add(struct ctl *c, int argc, char **argv);
static int ctl_mailbox_del(struct ctl *c, int argc, char **argv);
static int ctl_mailbox_list(struct ctl *c, int argc, char **argv);
static int ctl_mailbox_passwd(struct ctl *c, int argc, char **argv);
static int ctl_mailbox_quota(struct ctl *c, int argc, char **argv);
static int ctl_mailbox_enable(struct ctl *c, int argc, char **argv);
static int ctl_mailbox_disable(struct ctl *c, int argc, char **argv);
static int ctl_alias_add(struct ctl *c, int argc, char **argv);
static int ctl_alias_del(struct ctl *c, int argc, char **argv);
static int ctl_alias_list(struct ctl *c, int argc, char **argv);
static int ctl_queue_list(struct ctl *c, int argc, char **argv);
static int ctl_queue_show(struct ctl *c, int argc, char **argv);
static int ctl_queue_flush(struct ctl *c, int argc, char **argv);
static int ctl_queue_hold(struct ctl *c, int argc, char **argv);
static int ctl_queue_release(struct ctl *c, int argc, char **argv);
static int ctl_queue_delete(struct ctl *c, int argc, char **argv);
static int ctl_queue_result(int r, const char *err);
static int ctl_ban_list(struct ctl *c, int argc, char **argv);
static int ctl_ban_add(struct ctl *c, int argc, char **argv);
static int ctl_ban_del(struct ctl *c, int argc, char **argv);
static int ctl_filter_status(struct ctl *c, int argc, char **argv);

/* Helpers */
static const struct ctl_command *ctl_command_find(const char *noun,
						  const char *verb);
static void ctl_usage(FILE *fp);
static int ctl_usage_error(const struct ctl_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int ctl_result(enum store_result r, const char *err);
static void ctl_config_error(const char *file, int line, const char *msg,
			     void *arg);
static int ctl_drop_privileges(const char *data_dir);
static int ctl_read_password(char *buf, size_t len);
static int ctl_read_line(const char *prompt, int tty, char *buf, size_t len);
static int ctl_parse_size(const char *s, uint64_t *out);
static int ctl_hash_new_password(char *hash, size_t len);
static int ctl_maildir_create(const char *data_dir, const char *local,
			      const char *domain);
static void ctl_print_domain(const char *domain, void *arg);
static void ctl_print_mailbox(const struct store_mailbox *mb, void *arg);
static void ctl_print_alias(const char *source, const char *target, void *arg);
static void ctl_print_ban(const struct filter_list_info *info, void *arg);
static int ctl_parse_net(const char *s, struct filter_net *net);
static int ctl_print_live_status(const char *data_dir, size_t n_bans);

static const struct ctl_command ctl_commands[] = {
    {"domain", "add", 1, 1, ctl_domain_add, "NAME", 0},
    {"domain", "del", 1, 1, ctl_domain_del, "NAME", 0},
    {"domain", "list", 0, 0, ctl_domain_list, "", 0},
    {"mailbox", "add", 1, 3, ctl_mailbox_add, "ADDRESS [--quota BYTES]", 0},
    {"mailbox", "del", 1, 1, ctl_mailbox_del, "ADDRESS", 0},
    {"mailbox", "list", 0, 1, ctl_mailbox_list, "[DOMAIN]", 0},
    {"mailbox", "passwd", 1, 1, ctl_mailbox_passwd, "ADDRESS", 0},
    {"mailbox", "quota", 2, 2, ctl_mailbox_quota, "ADDRESS BYTES", 0},
    {"mailbox", "enable", 1, 1, ctl_mailbox_enable, "ADDRESS", 0},
    {"mailbox", "disable", 1, 1, ctl_mailbox_disable, "ADDRESS", 0},
    {"alias", "add", 2, -1, ctl_alias_add, "SOURCE TARGET...", 0},
    {"alias", "del", 1, -1, ctl_alias_del, "SOURCE [TARGET...]", 0},
    {"alias", "list", 0, 1, ctl_alias_list, "[DOMAIN]", 0},
    {"queue", "list", 0, 0, ctl_queue_list, "", 0},
    {"queue", "show", 1, 1, ctl_queue_show, "ID", 0},
    {"queue", "flush", 0, 0, ctl_queue_flush, "", 0},
    {"queue", "hold", 1, 1, ctl_queue_hold, "ID", 0},
    {"queue", "release", 1, 1, ctl_queue_release, "ID", 0},
    {"queue", "delete", 1, 1, ctl_queue_delete, "ID", 0},
    {"ban", "list", 0, 0, ctl_ban_list, "", CTL_F_FILTER},
    {"ban", "add", 1, 3, ctl_ban_add, "CIDR [--for DURATION]", CTL_F_FILTER},
    {"ban", "del", 1, 1, ctl_ban_del, "CIDR", CTL_F_FILTER},
    {"filter", "status", 0, 0, ctl_filter_status, "", CTL_F_FILTER},
};

#define CTL_NCOMMANDS (sizeof(ctl_commands) / sizeof(ctl_commands[0]))

static const char ctl_help[] =
    "usage: posternctl [-c FILE] COMMAND [ARGUMENT...]\n"
    "\n"
    "Administers the Postern account store kept in the data_dir set by\n"
    "the configuration file. Changes take effect at once.\n"
    "\n"
    "Domains:\n"
    "  domain add NAME\n"
    "  domain del NAME            refused while the domain has mailboxes\n"
    "                             or aliases\n"
    "  domain list\n"
    "\n"
    "Mailboxes (a password is read from standard input: one line, never\n"
    "from the command line):\n"
    "  mailbox add ADDRESS [--quota BYTES]\n"
    "                             also creates the Maildir\n"
    "                             DATA_DIR/mail/DOMAIN/LOCAL\n"
    "  mailbox del ADDRESS        does NOT delete the mail files: remove\n"
    "                             DATA_DIR/mail/DOMAIN/LOCAL yourself\n"
    "  mailbox list [DOMAIN]      prints: address quota enabled|disabled\n"
    "  mailbox passwd ADDRESS\n"
    "  mailbox quota ADDRESS BYTES\n"
    "                             0 = unlimited; K, M, G suffixes allowed\n"
    "  mailbox enable ADDRESS\n"
    "  mailbox disable ADDRESS\n"
    "\n"
    "Aliases (SOURCE is local@domain of a local domain, or @domain for\n"
    "the domain's catch-all; targets are full addresses, local or not):\n"
    "  alias add SOURCE TARGET...\n"
    "  alias del SOURCE [TARGET...]\n"
    "                             without targets, deletes the whole alias\n"
    "  alias list [DOMAIN]        prints: source target\n"
    "\n"
    "Outbound queue (works with the daemon running or stopped; the\n"
    "daemon notices changes within a second):\n"
    "  queue list                 prints: id arrival size <sender> [held]\n"
    "                             and recipient counts by status\n"
    "  queue show ID              envelope and each recipient's status\n"
    "  queue flush                try every pending recipient now\n"
    "  queue hold ID              no delivery attempts until released\n"
    "  queue release ID\n"
    "  queue delete ID            removes the message, without a bounce\n"
    "\n"
    "Connection filter (bans take effect within a second whether posternd\n"
    "runs or not, and survive restarts; CIDR is an address or a network\n"
    "such as 192.0.2.0/24 or 2001:db8::/64):\n"
    "  ban list                   prints: network reason=R expires_in=T\n"
    "                             hits=N\n"
    "  ban add CIDR [--for DURATION]\n"
    "                             DURATION such as 90, 30s, 10m, 2h, 7d,\n"
    "                             1w or forever; default [abuse] ban_time;\n"
    "                             refused for an allow-listed network\n"
    "  ban del CIDR               lifts exactly that ban\n"
    "  filter status              mode, limits, interfaces, counters and\n"
    "                             the sources most limited\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE          configuration file "
    "(default " CONFIG_DEFAULT_PATH ")\n"
    "  -h, --help                 show this help\n"
    "\n"
    "Run as root, posternctl switches to the owner of data_dir first, so\n"
    "that the daemon can read what it creates (ban and filter commands\n"
    "stay root: the XDP filter's maps need it).\n"
    "\n"
    "Exit status: 0 success, 1 error, 2 usage error.\n";

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *conf = CONFIG_DEFAULT_PATH;
	const struct ctl_command *cmd = NULL;
	char err[ERR_LEN];
	struct ctl c;
	int ch, nargs, noun_known = 0, ret;
	size_t i;

	log_init("posternctl", LOG_LEVEL_WARN);
	umask(077);
	while ((ch = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		case 'h':
			fputs(ctl_help, stdout);
			return CTL_OK;
		default:
			ctl_usage(stderr);
			return CTL_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		return ctl_usage_error(NULL, "no command given");
	for (i = 0; i < CTL_NCOMMANDS; i++)
		if (strcmp(ctl_commands[i].noun, argv[0]) == 0)
			noun_known = 1;
	if (argc > 1)
		cmd = ctl_command_find(argv[0], argv[1]);
	if (cmd == NULL) {
		if (!noun_known)
			return ctl_usage_error(NULL, "unknown command '%s'",
					       argv[0]);
		if (argc == 1)
			return ctl_usage_error(NULL, "%s: missing subcommand",
					       argv[0]);
		return ctl_usage_error(NULL, "unknown command '%s %s'", argv[0],
				       argv[1]);
	}
	nargs = argc - 2;
	if (nargs < cmd->min_args ||
	    (cmd->max_args >= 0 && nargs > cmd->max_args))
		return ctl_usage_error(cmd, "%s %s: wrong number of arguments",
				       cmd->noun, cmd->verb);

	memset(&c, 0, sizeof(c));
	config_defaults(&c.cfg);
	if (config_load(&c.cfg, conf, ctl_config_error, NULL) > 0)
		return CTL_ERR;
	if (cmd->flags & CTL_F_FILTER) {
		c.filter = filter_open_admin(&c.cfg.filter, err, sizeof(err));
		if (c.filter == NULL)
			return ctl_err("filter: %s", err);
		ret = cmd->fn(&c, nargs, argv + 2);
		filter_close(&c.filter, 1);
		if (fflush(stdout) == EOF || ferror(stdout))
			return ctl_err("cannot write output: %s",
				       strerror(errno));
		return ret;
	}
	if (ctl_drop_privileges(c.cfg.data_dir) == -1)
		return CTL_ERR;
	if (store_open(c.cfg.data_dir, &c.store, err, sizeof(err)) != STORE_OK)
		return ctl_err("%s", err);
	ret = cmd->fn(&c, nargs, argv + 2);
	store_close(&c.store);
	if (fflush(stdout) == EOF || ferror(stdout))
		return ctl_err("cannot write output: %s", strerror(errno));
	return ret;
}

/* ------------------------------------------------------------------ */
/* The outbound queue: files under data_dir/queue (queue_admin.h); a
 * running daemon notices the changes within a second. */

static int
ctl_queue_result(int r, const char *err)
{
	if (r == 0)
		return CTL_OK;
	return ctl_err("%s", err);
}

static int
ctl_queue_list(struct ctl *c, int argc, char **argv)
{
	char err[ERR_LEN];

	(void)argc;
	(void)argv;
	return ctl_queue_result(
	    queue_admin_list(c->cfg.data_dir, stdout, err, sizeof(err)), err);
}

static int
ctl_queue_show(struct ctl *c, int argc, char **argv)
{
	char err[ERR_LEN];

	(void)argc;
	return ctl_queue_result(queue_admin_show(c->cfg.data_dir, argv[0],
						 stdout, err, sizeof(err)),
				err);
}

static int
ctl_queue_flush(struct ctl *c, int argc, char **argv)
{
	char err[ERR_LEN];

	(void)argc;
	(void)argv;
	return ctl_queue_result(
	    queue_admin_flush(c->cfg.data_dir, err, sizeof(err)), err);
}

static int
ctl_queue_hold(struct ctl *c, int argc, char **argv)
{
	char err[ERR_LEN];

	(void)argc;
	return ctl_queue_result(
	    queue_admin_hold(c->cfg.data_dir, argv[0], err, sizeof(err)), err);
}

static int
ctl_queue_release(struct ctl *c, int argc, char **argv)
{
	char err[ERR_LEN];

	(void)argc;
	return ctl_queue_result(
	    queue_admin_release(c->cfg.data_dir, argv[0], err, sizeof(err)),
	    err);
}

static int
ctl_queue_delete(struct ctl *c, int argc, char **argv)
{
	char err[ERR_LEN];

	(void)argc;
	return ctl_queue_result(
	    queue_admin_delete(c->cfg.data_dir, argv[0], err, sizeof(err)),
	    err);
}

/* ------------------------------------------------------------------ */
/* Domains */

static int
ctl_domain_add(struct ctl *c, int argc, char **argv)
{
	char err[ERR_LEN];

	(void)argc;
	return ctl_result(store_domain_add(c->store, argv[0], err, sizeof(err)),
			  err);
}

static int
ctl_domain_del(struct ctl *c, int argc, char **argv)
{
	char err[ERR_LEN];

	(void)argc;
	return ctl_result(store_domain_del(c->store, argv[0], err, sizeof(err)),
			  err);
}

static int
ctl_domain_list(struct ctl *c, int argc, char **argv)
{
	char err[ERR_LEN];

	(void)argc;
	(void)argv;
	return ctl_result(store_domain_list(c->store, ctl_print_domain, NULL,
					    err, sizeof(err)),
			  err);
}

/* ------------------------------------------------------------------ */
/* Mailboxes */

/* The mailbox row is added first and the Maildir made second: should the
 * Maildir fail, the row is removed again so that nothing half-made stays. */
static int
ctl_mailbox_add(struct ctl *c, int argc, char **argv)
{
	char local[STORE_LOCAL_MAX + 1], domain[STORE_DOMAIN_MAX + 1];
	char hash[STORE_HASH_MAX], err[ERR_LEN], cleanup_err[ERR_LEN];
	const struct ctl_command *cmd = ctl_command_find("mailbox", "add");
	struct store_mailbox mb;
	const char *address = NULL, *quota_arg = NULL;
	uint64_t quota = 0;
	enum store_result r;
	int i;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--quota") == 0) {
			if (i + 1 == argc || quota_arg != NULL)
				return ctl_usage_error(cmd, "--quota needs "
							    "one value");
			quota_arg = argv[++i];
		} else if (strncmp(argv[i], "--quota=", 8) == 0) {
			if (quota_arg != NULL)
				return ctl_usage_error(cmd, "--quota given "
							    "twice");
			quota_arg = argv[i] + 8;
		} else if (argv[i][0] == '-' && argv[i][1] == '-') {
			return ctl_usage_error(cmd, "unknown option '%s'",
					       argv[i]);
		} else if (address == NULL) {
			address = argv[i];
		} else {
			return ctl_usage_error(cmd, "too many arguments");
		}
	}
	if (address == NULL)
		return ctl_usage_error(cmd, "missing ADDRESS");
	if (quota_arg != NULL && ctl_parse_size(quota_arg, &quota) == -1)
		return CTL_ERR;
	if (store_split_address(address, local, sizeof(local), domain,
				sizeof(domain)) != STORE_OK)
		return ctl_err("invalid address: %s", address);
	/* The Maildir is a directory named after the local part. */
	if (strchr(local, '/') != NULL)
		return ctl_err("invalid address: %s ('/' is not allowed in a "
			       "mailbox name)",
			       address);
	/* Fail before asking for a password that would not be used. */
	if (!store_domain_exists(c->store, domain))
		return ctl_err("no such domain: %s", domain);
	if (store_mailbox_get(c->store, address, &mb) == STORE_OK)
		return ctl_err("mailbox %s@%s already exists", local, domain);
	if (ctl_hash_new_password(hash, sizeof(hash)) == -1)
		return CTL_ERR;
	r = store_mailbox_add(c->store, address, hash, quota, err, sizeof(err));
	explicit_bzero(hash, sizeof(hash));
	if (r != STORE_OK)
		return ctl_result(r, err);
	if (ctl_maildir_create(c->cfg.data_dir, local, domain) == -1) {
		if (store_mailbox_del(c->store, address, cleanup_err,
				      sizeof(cleanup_err)) != STORE_OK)
			ctl_err("%s", cleanup_err);
		return CTL_ERR;
	}
	return CTL_OK;
}

static int
ctl_mailbox_del(struct ctl *c, int argc, char **argv)
{
	char err[ERR_LEN];

	(void)argc;
	return ctl_result(
	    store_mailbox_del(c->store, argv[0], err, sizeof(err)), err);
}

static int
ctl_mailbox_list(struct ctl *c, int argc, char **argv)
{
	char err[ERR_LEN];

	return ctl_result(
	    store_mailbox_list(c->store, argc > 0 ? argv[0] : NULL,
			       ctl_print_mailbox, NULL, err, sizeof(err)),
	    err);
}

static int
ctl_mailbox_passwd(struct ctl *c, int argc, char **argv)
{
	char hash[STORE_HASH_MAX], err[ERR_LEN];
	struct store_mailbox mb;
	enum store_result r;

	(void)argc;
	switch (store_mailbox_get(c->store, argv[0], &mb)) {
	case STORE_OK:
		break;
	case STORE_INVALID:
		return ctl_err("invalid address: %s", argv[0]);
	case STORE_NOTFOUND:
		return ctl_err("no such mailbox: %s", argv[0]);
	default:
		return ctl_err("cannot read mailbox %s", argv[0]);
	}
	explicit_bzero(mb.password_hash, sizeof(mb.password_hash));
	if (ctl_hash_new_password(hash, sizeof(hash)) == -1)
		return CTL_ERR;
	r = store_mailbox_set_password(c->store, argv[0], hash, err,
				       sizeof(err));
	explicit_bzero(hash, sizeof(hash));
	return ctl_result(r, err);
}

static int
ctl_mailbox_quota(struct ctl *c, int argc, char **argv)
{
	char err[ERR_LEN];
	uint64_t quota;

	(void)argc;
	if (ctl_parse_size(argv[1], &quota) == -1)
		return CTL_ERR;
	return ctl_result(
	    store_mailbox_set_quota(c->store, argv[0], quota, err, sizeof(err)),
	    err);
}

static int
ctl_mailbox_enable(struct ctl *c, int argc, char **argv)
{
	char err[ERR_LEN];

	(void)argc;
	return ctl_result(
	    store_mailbox_set_enabled(c->store, argv[0], 1, err, sizeof(err)),
	    err);
}

static int
ctl_mailbox_disable(struct ctl *c, int argc, char **argv)
{
	char err[ERR_LEN];

	(void)argc;
	return ctl_result(
	    store_mailbox_set_enabled(c->store, argv[0], 0, err, sizeof(err)),
	    err);
}

/* ------------------------------------------------------------------ */
/* Aliases */

static int
ctl_alias_add(struct ctl *c, int argc, char **argv)
{
	char err[ERR_LEN];

	return ctl_result(store_alias_add(c->store, argv[0],
					  (const char *const *)(argv + 1),
					  (size_t)argc - 1, err, sizeof(err)),
			  err);
}

static int
ctl_alias_del(struct ctl *c, int argc, char **argv)
{
	char err[ERR_LEN];

	return ctl_result(store_alias_del(c->store, argv[0],
					  (const char *const *)(argv + 1),
					  (size_t)argc - 1, err, sizeof(err)),
			  err);
}

static int
ctl_alias_list(struct ctl *c, int argc, char **argv)
{
	char err[ERR_LEN];

	return ctl_result(store_alias_list(c->store, argc > 0 ? argv[0] : NULL,
					   ctl_print_alias, NULL, err,
					   sizeof(err)),
			  err);
}

/* ------------------------------------------------------------------ */
/* Bans and the filter */

static int
ctl_ban_list(struct ctl *c, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (filter_list_bans(c->filter, ctl_print_ban, NULL) < 0)
		return ctl_err("cannot list the bans");
	return CTL_OK;
}

static int
ctl_ban_add(struct ctl *c, int argc, char **argv)
{
	const struct ctl_command *cmd = ctl_command_find("ban", "add");
	const char *cidr = NULL, *dur_arg = NULL, *why;
	char err[ERR_LEN], text[FILTER_NET_STRLEN], dur[32];
	struct filter_net net;
	uint64_t secs = c->cfg.abuse.ban_time;
	int i, rc;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--for") == 0) {
			if (i + 1 == argc || dur_arg != NULL)
				return ctl_usage_error(cmd, "--for needs one "
							    "value");
			dur_arg = argv[++i];
		} else if (strncmp(argv[i], "--for=", 6) == 0) {
			if (dur_arg != NULL)
				return ctl_usage_error(cmd, "--for given "
							    "twice");
			dur_arg = argv[i] + 6;
		} else if (argv[i][0] == '-' && argv[i][1] == '-') {
			return ctl_usage_error(cmd, "unknown option '%s'",
					       argv[i]);
		} else if (cidr == NULL) {
			cidr = argv[i];
		} else {
			return ctl_usage_error(cmd, "too many arguments");
		}
	}
	if (cidr == NULL)
		return ctl_usage_error(cmd, "missing CIDR");
	if (dur_arg != NULL && filter_parse_duration(dur_arg, &secs, &why) < 0)
		return ctl_err("invalid duration: %s (%s)", dur_arg, why);
	if (ctl_parse_net(cidr, &net) == -1)
		return CTL_ERR;
	filter_format_net(&net, text, sizeof(text));
	rc = filter_ban(c->filter, &net, secs, FILTER_REASON_MANUAL, err,
			sizeof(err));
	if (rc == 1)
		return ctl_err("%s is on the allow list ([filter] allow, "
			       "loopback): not banned",
			       text);
	if (rc != 0)
		return ctl_err("%s", err);
	if (secs == 0) {
		printf("banned %s permanently\n", text);
		return CTL_OK;
	}
	abuse_format_duration(secs, dur, sizeof(dur));
	printf("banned %s for %s\n", text, dur);
	return CTL_OK;
}

static int
ctl_ban_del(struct ctl *c, int argc, char **argv)
{
	char err[ERR_LEN], text[FILTER_NET_STRLEN];
	struct filter_net net;
	int rc;

	(void)argc;
	if (ctl_parse_net(argv[0], &net) == -1)
		return CTL_ERR;
	filter_format_net(&net, text, sizeof(text));
	rc = filter_unban(c->filter, &net, err, sizeof(err));
	if (rc == 1)
		return ctl_err("no ban for %s (ban list shows them)", text);
	if (rc != 0)
		return ctl_err("%s", err);
	printf("unbanned %s\n", text);
	return CTL_OK;
}

/* The filter's status. With an XDP filter active, the pinned maps hold
 * the live counters. In user-space mode they are inside posternd, which
 * publishes them in data_dir/filter.status; without a recent one, only
 * the configuration and the bans are shown. */
static int
ctl_filter_status(struct ctl *c, int argc, char **argv)
{
	struct filter_status st;

	(void)argc;
	(void)argv;
	memset(&st, 0, sizeof(st));
	if (filter_status(c->filter, &st) == -1)
		return ctl_err("cannot read the filter status: %s",
			       strerror(errno));
	if (st.have_kernel) {
		filter_status_print(&st, stdout);
		printf("live: yes (XDP maps under %s)\n",
		       c->cfg.filter.pin_root);
		return CTL_OK;
	}
	if (ctl_print_live_status(c->cfg.data_dir, st.n_bans) == 0)
		return CTL_OK;
	/* What this configuration asks for, not the admin handle's view. */
	if (c->cfg.filter.mode == FILTER_MODE_USERSPACE)
		strlcpy(st.reason, "mode = userspace", sizeof(st.reason));
	else if (c->cfg.filter.n_interfaces == 0)
		strlcpy(st.reason, "no interfaces configured",
			sizeof(st.reason));
	else
		strlcpy(st.reason, "no active XDP filter", sizeof(st.reason));
	filter_status_print(&st, stdout);
	printf("live: no (posternd is not running with this "
	       "configuration; no counters)\n");
	return CTL_OK;
}

/* Prints posternd's own status file when it is recent, with the number of
 * bans from the ban file (the file may be a second older than an edit).
 * Returns 0 when it printed it, -1 when there is none. */
static int
ctl_print_live_status(const char *data_dir, size_t n_bans)
{
	char path[4096], line[512];
	struct stat st;
	time_t now = time(NULL);
	FILE *fp;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", data_dir,
			     CONFIG_FILTER_STATUS_NAME) >= sizeof(path) ||
	    (fp = fopen(path, "re")) == NULL)
		return -1;
	if (fstat(fileno(fp), &st) == -1 ||
	    now - st.st_mtime > CTL_STATUS_MAX_AGE) {
		fclose(fp);
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (strncmp(line, "bans: ", 6) == 0)
			printf("bans: %zu\n", n_bans);
		else
			fputs(line, stdout);
	}
	fclose(fp);
	printf("live: yes (posternd, %llds ago)\n",
	       (long long)(now - st.st_mtime));
	return 0;
}

/* Parses an address or network; prints why not. 0 or -1. */
static int
ctl_parse_net(const char *s, struct filter_net *net)
{
	const char *why;

	if (filter_parse_net(s, net, &why) == -1) {
		ctl_err("invalid network: %s (%s)", s, why);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Output */

static void
ctl_print_domain(const char *domain, void *arg)
{
	(void)arg;
	printf("%s\n", domain);
}

static void
ctl_print_mailbox(const struct store_mailbox *mb, void *arg)
{
	(void)arg;
	printf("%s@%s %llu %s\n", mb->local, mb->domain,
	       (unsigned long long)mb->quota,
	       mb->enabled ? "enabled" : "disabled");
}

static void
ctl_print_alias(const char *source, const char *target, void *arg)
{
	(void)arg;
	printf("%s %s\n", source, target);
}

static void
ctl_print_ban(const struct filter_list_info *info, void *arg)
{
	char expires[32];

	(void)arg;
	if (info->expires_in_s == 0)
		strlcpy(expires, "never", sizeof(expires));
	else
		abuse_format_duration(info->expires_in_s, expires,
				      sizeof(expires));
	printf("%s reason=%s expires_in=%s hits=%llu\n", info->text,
	       filter_reason_name(info->reason), expires,
	       (unsigned long long)info->hits);
}

static const struct ctl_command *
ctl_command_find(const char *noun, const char *verb)
{
	size_t i;

	for (i = 0; i < CTL_NCOMMANDS; i++)
		if (strcmp(ctl_commands[i].noun, noun) == 0 &&
		    strcmp(ctl_commands[i].verb, verb) == 0)
			return &ctl_commands[i];
	return NULL;
}

static void
ctl_usage(FILE *fp)
{
	fputs("usage: posternctl [-c FILE] COMMAND [ARGUMENT...]\n"
	      "       (posternctl --help lists the commands)\n",
	      fp);
}

/* Reports a usage problem, with the command's own usage line when known,
 * and returns the usage exit status. */
static int
ctl_usage_error(const struct ctl_command *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("posternctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (cmd != NULL)
		fprintf(stderr, "usage: posternctl [-c FILE] %s %s%s%s\n",
			cmd->noun, cmd->verb, cmd->args[0] ? " " : "",
			cmd->args);
	else
		ctl_usage(stderr);
	return CTL_USAGE;
}

static int
ctl_err(const char *fmt, ...)
{
	va_list ap;

	fputs("posternctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CTL_ERR;
}

static int
ctl_result(enum store_result r, const char *err)
{
	if (r == STORE_OK)
		return CTL_OK;
	return ctl_err("%s", err);
}

static void
ctl_config_error(const char *file, int line, const char *msg, void *arg)
{
	(void)arg;
	if (line > 0)
		fprintf(stderr, "posternctl: %s:%d: %s\n", file, line, msg);
	else
		fprintf(stderr, "posternctl: %s: %s\n", file, msg);
}

/* ------------------------------------------------------------------ */
/* Privileges, passwords, sizes, Maildirs */

/* Run by root, becomes the owner of data_dir (the daemon's user), so that
 * the database and Maildirs it creates stay readable by the daemon. A
 * missing data_dir, or one owned by root, leaves us as we are. */
static int
ctl_drop_privileges(const char *data_dir)
{
	struct stat st;

	if (geteuid() != 0 || stat(data_dir, &st) == -1 || st.st_uid == 0)
		return 0;
	if (setgroups(0, NULL) == -1 || setgid(st.st_gid) == -1 ||
	    setuid(st.st_uid) == -1) {
		ctl_err("cannot switch to the owner of %s (uid %u): %s",
			data_dir, (unsigned)st.st_uid, strerror(errno));
		return -1;
	}
	return 0;
}

static int
ctl_parse_size(const char *s, uint64_t *out)
{
	if (util_parse_size(s, out) == -1) {
		ctl_err("invalid size: %s (expected bytes with an optional K, "
			"M or G suffix)",
			s);
		return -1;
	}
	return 0;
}

/* Reads the new password (see ctl_read_password) and hashes it into hash.
 * Returns 0, or -1 after printing why. */
static int
ctl_hash_new_password(char *hash, size_t len)
{
	char pw[CTL_PASSWORD_MAX + 1];
	int r;

	if (ctl_read_password(pw, sizeof(pw)) == -1)
		return -1;
	r = password_hash(pw, hash, len);
	explicit_bzero(pw, sizeof(pw));
	if (r == -1) {
		ctl_err("cannot hash the password");
		return -1;
	}
	return 0;
}

/* A password comes from standard input, never from argv (where ps and
 * shell history would see it). On a terminal it is asked for twice without
 * echo; otherwise the first line is taken. Returns 0, or -1 after printing
 * why. */
static int
ctl_read_password(char *buf, size_t len)
{
	char again[CTL_PASSWORD_MAX + 1];
	int tty = isatty(STDIN_FILENO), r;

	if (ctl_read_line("Password: ", tty, buf, len) == -1)
		return -1;
	if (!tty)
		return 0;
	r = ctl_read_line("Retype password: ", tty, again, sizeof(again));
	if (r == 0 && strcmp(buf, again) != 0) {
		ctl_err("the passwords do not match");
		r = -1;
	}
	explicit_bzero(again, sizeof(again));
	if (r == -1)
		explicit_bzero(buf, len);
	return r;
}

static int
ctl_read_line(const char *prompt, int tty, char *buf, size_t len)
{
	struct termios old, noecho;
	char *line = NULL;
	size_t cap = 0, n;
	ssize_t got;
	int echo_off = 0, ret = -1;

	if (tty) {
		fputs(prompt, stderr);
		fflush(stderr);
		if (tcgetattr(STDIN_FILENO, &old) == 0) {
			noecho = old;
			noecho.c_lflag &= ~(tcflag_t)ECHO;
			echo_off =
			    tcsetattr(STDIN_FILENO, TCSAFLUSH, &noecho) == 0;
		}
	}
	got = getline(&line, &cap, stdin);
	if (echo_off) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (got <= 0) {
		ctl_err("no password on standard input");
		goto out;
	}
	n = (size_t)got;
	if (line[n - 1] == '\n')
		line[--n] = '\0';
	if (n > 0 && line[n - 1] == '\r')
		line[--n] = '\0';
	if (strlen(line) != n) {
		ctl_err("the password contains a NUL byte");
		goto out;
	}
	if (n == 0) {
		ctl_err("empty password refused");
		goto out;
	}
	if (n >= len) {
		ctl_err("password too long (at most %zu characters)", len - 1);
		goto out;
	}
	memcpy(buf, line, n + 1);
	ret = 0;
out:
	if (line != NULL)
		explicit_bzero(line, cap);
	free(line);
	return ret;
}

/* Creates data_dir/mail/<domain>/<local>/{tmp,new,cur}, mode 0700, the
 * layout maildir_path() uses. Returns 0, or -1 after printing why. */
static int
ctl_maildir_create(const char *data_dir, const char *local, const char *domain)
{
	static const char *const subdirs[] = {"tmp", "new", "cur"};
	char path[4096], sub[4096];
	struct stat st;
	size_t i;

	if ((size_t)snprintf(path, sizeof(path), "%s/mail/%s/%s", data_dir,
			     domain, local) >= sizeof(path)) {
		ctl_err("Maildir path too long for %s@%s", local, domain);
		return -1;
	}
	if (stat(path, &st) == 0)
		fprintf(stderr,
			"posternctl: note: reusing the existing Maildir %s "
			"and the mail in it\n",
			path);
	for (i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path,
				     subdirs[i]) >= sizeof(sub)) {
			ctl_err("Maildir path too long for %s@%s", local,
				domain);
			return -1;
		}
		if (util_mkdirs(sub, 0700) == -1) {
			ctl_err("cannot create Maildir %s: %s", sub,
				strerror(errno));
			return -1;
		}
	}
	return 0;
}
