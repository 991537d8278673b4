/* posternd: argument parsing, configuration, directories, the store, the
 * listeners and the event loop. Runs in the foreground and logs to stderr. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "delivery.h"
#include "listener.h"
#include "log.h"
#include "server.h"
#include "store.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

static void main_usage(FILE *out);
static void main_config_error(const char *file, int line, const char *msg,
			      void *arg);
static void main_on_signal(evutil_socket_t sig, short what, void *arg);
static int main_prepare_dirs(struct server *srv);
static int main_reload_tls(const struct config *cfg);

/* Loads the certificate and key again; sessions already running keep the
 * context they started with. Returns 0, or -1 when the files are bad (the
 * old certificate then stays in use). */
static int
main_reload_tls(const struct config *cfg)
{
	char err[ERR_LEN];

	if (cfg->tls_cert[0] == '\0')
		return 0;
	if (tls_server_load(cfg->tls_cert, cfg->tls_key, err, sizeof(err))) {
		log_warnx("tls: %s", err);
		return -1;
	}
	log_info("tls certificate loaded cert=%s", cfg->tls_cert);
	return 0;
}

static void
main_usage(FILE *out)
{
	fprintf(out,
		"usage: posternd [-c FILE] [-d] [--check-config]\n"
		"  -c FILE          configuration file (default %s)\n"
		"  -d               debug logging\n"
		"  --check-config   report every configuration problem and "
		"exit\n",
		CONFIG_DEFAULT_PATH);
}

static void
main_config_error(const char *file, int line, const char *msg, void *arg)
{
	(void)arg;
	if (line > 0)
		fprintf(stderr, "%s:%d: %s\n", file, line, msg);
	else
		fprintf(stderr, "%s: %s\n", file, msg);
}

static void
main_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;

	(void)what;
	if (sig == SIGHUP) {
		main_reload_tls(srv->cfg);
		return;
	}
	log_info("signal %d received, stopping", (int)sig);
	listener_close_all();
	event_base_loopexit(srv->base, NULL);
}

/* Creates data_dir, mail/ and spool/, and removes spool files left by a
 * previous run: they belong to transactions that never got their 250. */
static int
main_prepare_dirs(struct server *srv)
{
	char path[1100];
	DIR *dir;
	struct dirent *de;
	int n;

	n = snprintf(path, sizeof(path), "%s/mail", srv->cfg->data_dir);
	if (n < 0 || (size_t)n >= sizeof(path) || util_mkdirs(path, 0700)) {
		log_warn("cannot create %s", path);
		return -1;
	}
	n = snprintf(srv->spool_dir, sizeof(srv->spool_dir), "%s/spool",
		     srv->cfg->data_dir);
	if (n < 0 || (size_t)n >= sizeof(srv->spool_dir) ||
	    util_mkdirs(srv->spool_dir, 0700)) {
		log_warn("cannot create %s", srv->spool_dir);
		return -1;
	}
	if ((dir = opendir(srv->spool_dir)) == NULL) {
		log_warn("opendir %s", srv->spool_dir);
		return -1;
	}
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (unlinkat(dirfd(dir), de->d_name, 0) == 0)
			log_info("removed unfinished spool file %s",
				 de->d_name);
	}
	closedir(dir);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"check-config", no_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *conf_path = CONFIG_DEFAULT_PATH;
	struct config cfg;
	struct server srv;
	struct event *ev_sig[4];
	static const int sigs[4] = {SIGTERM, SIGINT, SIGHUP, 0};
	char err[ERR_LEN];
	int check_only = 0, debug = 0, ch, problems, i;

	while ((ch = getopt_long(argc, argv, "c:dh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 'd':
			debug = 1;
			break;
		case 'C':
			check_only = 1;
			break;
		case 'h':
			main_usage(stdout);
			return 0;
		default:
			main_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		main_usage(stderr);
		return 2;
	}

	log_init("posternd", LOG_LEVEL_INFO);
	config_defaults(&cfg);
	problems = config_load(&cfg, conf_path, main_config_error, NULL);
	if (check_only) {
		if (problems == 0)
			printf("%s: configuration OK\n", conf_path);
		return problems ? 1 : 0;
	}
	if (problems) {
		fprintf(stderr, "posternd: %d configuration problem%s, not "
				"starting\n",
			problems, problems == 1 ? "" : "s");
		return 1;
	}
	log_set_level(debug ? LOG_LEVEL_DEBUG : cfg.log_level);

	memset(&srv, 0, sizeof(srv));
	srv.cfg = &cfg;
	umask(077);
	signal(SIGPIPE, SIG_IGN);
	if (util_mkdirs(cfg.data_dir, 0700) == -1) {
		log_warn("cannot create data_dir %s", cfg.data_dir);
		return 1;
	}
	if (main_prepare_dirs(&srv) == -1)
		return 1;
	if (store_open(cfg.data_dir, &srv.store, err, sizeof(err)) !=
	    STORE_OK) {
		log_warnx("store: %s", err);
		return 1;
	}
	if (cfg.tls_cert[0] != '\0' && main_reload_tls(&cfg) == -1)
		return 1;
	if (cfg.tls_cert[0] == '\0' &&
	    (cfg.submissions_listen.n > 0 || cfg.pop3s_listen.n > 0)) {
		log_warnx("[submissions] and [pop3s] need [tls] cert and key");
		return 1;
	}
	if ((srv.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	srv.workers = worker_pool_new(srv.base, (int)cfg.worker_threads);
	if (delivery_init(&srv, cfg.durability) == -1) {
		log_warn("cannot open data_dir %s", cfg.data_dir);
		return 1;
	}
	if (listener_open_all(&srv) == -1) {
		log_warnx("cannot open listeners, not starting");
		return 1;
	}
	for (i = 0; sigs[i]; i++) {
		ev_sig[i] = evsignal_new(srv.base, sigs[i], main_on_signal,
					 &srv);
		if (ev_sig[i] == NULL || event_add(ev_sig[i], NULL) == -1)
			fatalx("cannot watch signal %d", sigs[i]);
	}
	log_info("posternd started hostname=%s data_dir=%s", cfg.hostname,
		 cfg.data_dir);

	event_base_dispatch(srv.base);

	/* Sessions still open are cut off: nothing they have not seen a 250
	 * for was promised, and spool leftovers are removed at next start. */
	for (i = 0; sigs[i]; i++)
		event_free(ev_sig[i]);
	worker_pool_free(&srv.workers);
	store_close(&srv.store);
	log_info("posternd stopped");
	return 0;
}
