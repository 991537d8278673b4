/* posternd: argument parsing, configuration, the connection filter,
 * directories, the store, the listeners and the event loop. Runs in the
 * foreground and logs to stderr. */
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

#include "abuse.h"
#include "config.h"
#include "delivery.h"
#include "filter.h"
#include "listener.h"
#include "log.h"
#include "queue.h"
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

/* The connection filter on the loop (filter.h) */
static int main_filter_start(struct server *srv);
static void main_filter_on_events(evutil_socket_t fd, short what, void *arg);
static void main_filter_on_tick(evutil_socket_t fd, short what, void *arg);
static void main_filter_publish(struct server *srv, int force);
static void main_config_reload(struct server *srv);
static void main_filter_stop(struct server *srv);

static const char *main_conf_path = CONFIG_DEFAULT_PATH;
static struct event *main_filter_ev_read, *main_filter_ev_tick;

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
		main_config_reload(srv);
		return;
	}
	log_info("signal %d received, stopping", (int)sig);
	listener_close_all();
	event_base_loopexit(srv->base, NULL);
}

/* Puts the filter's events (kernel drop reports, ban file edits by
 * posternctl) and its one-second housekeeping on the loop. 0 or -1. */
static int
main_filter_start(struct server *srv)
{
	struct timeval one = {1, 0};
	int fd = filter_events_fd(srv->filter);

	if (fd >= 0) {
		main_filter_ev_read =
		    event_new(srv->base, fd, EV_READ | EV_PERSIST,
			      main_filter_on_events, srv);
		if (main_filter_ev_read == NULL ||
		    event_add(main_filter_ev_read, NULL) == -1)
			return -1;
	}
	main_filter_ev_tick =
	    event_new(srv->base, -1, EV_PERSIST, main_filter_on_tick, srv);
	if (main_filter_ev_tick == NULL ||
	    event_add(main_filter_ev_tick, &one) == -1)
		return -1;
	main_filter_publish(srv, 1);
	return 0;
}

static void
main_filter_on_events(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	filter_events_consume(srv->filter);
}

static void
main_filter_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	filter_tick(srv->filter);
	main_filter_publish(srv, 0);
}

/* In user-space mode the counters live only in this process: write them
 * to data_dir/filter.status for posternctl when they change, and at least
 * every 10 s so that its age tells whether we still run. In XDP mode
 * posternctl reads the counters from the pinned maps. */
static void
main_filter_publish(struct server *srv, int force)
{
	static struct filter_status last;
	static uint64_t last_ms;
	struct filter_status st;
	char path[1100], tmp[1200];
	FILE *fp;
	int n;

	memset(&st, 0, sizeof(st));
	if (filter_active_mode(srv->filter) != FILTER_ACTIVE_USERSPACE ||
	    filter_status(srv->filter, &st) == -1)
		return;
	if (!force && util_now_ms() - last_ms < 10000 &&
	    memcmp(st.admit, last.admit, sizeof(st.admit)) == 0 &&
	    st.n_bans == last.n_bans)
		return;
	n = snprintf(path, sizeof(path), "%s/" CONFIG_FILTER_STATUS_NAME,
		     srv->cfg->data_dir);
	if (n < 0 || (size_t)n >= sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return;
	if ((fp = fopen(tmp, "we")) == NULL) {
		log_warn("filter status %s", tmp);
		return;
	}
	filter_status_print(&st, fp);
	if (fclose(fp) == EOF || rename(tmp, path) == -1) {
		log_warn("filter status %s", path);
		unlink(tmp);
		return;
	}
	last = st;
	last_ms = util_now_ms();
}

/* SIGHUP: reads the configuration again and applies its [filter] and
 * [abuse] sections and the [relay] credentials and CA; a bad file changes
 * nothing. Other settings need a restart. */
static void
main_config_reload(struct server *srv)
{
	struct config *fresh = xmalloc(sizeof(*fresh));
	struct queue_config *qc = &srv->cfg->queue;
	char err[ERR_LEN];
	int problems;

	config_defaults(fresh);
	problems = config_load(fresh, main_conf_path, main_config_error, NULL);
	if (problems > 0) {
		log_warnx("reload: %d configuration problem%s in %s: "
			  "nothing changed",
			  problems, problems == 1 ? "" : "s", main_conf_path);
		free(fresh);
		return;
	}
	if (filter_reconfigure(srv->filter, &fresh->filter, err, sizeof(err)) ==
	    -1) {
		log_warnx("reload: filter: %s", err);
	} else {
		srv->cfg->filter = fresh->filter;
		srv->cfg->abuse = fresh->abuse;
		log_info("reload: filter and abuse settings applied");
	}
	if (queue_reload_relay(&fresh->queue, err, sizeof(err)) == -1) {
		log_warnx("reload: relay: %s", err);
	} else if (qc->relay_host[0]) {
		strlcpy(qc->relay_auth_file, fresh->queue.relay_auth_file,
			sizeof(qc->relay_auth_file));
		strlcpy(qc->relay_ca_file, fresh->queue.relay_ca_file,
			sizeof(qc->relay_ca_file));
		qc->relay_tls_verify = fresh->queue.relay_tls_verify;
		log_info("reload: relay credentials and ca_file applied");
	}
	free(fresh);
}

/* Takes the filter off the loop and closes it: XDP is detached unless
 * [filter] keep_attached; pending bans are written to the ban file. */
static void
main_filter_stop(struct server *srv)
{
	char path[1100];
	int n;

	if (main_filter_ev_read != NULL)
		event_free(main_filter_ev_read);
	if (main_filter_ev_tick != NULL)
		event_free(main_filter_ev_tick);
	main_filter_ev_read = main_filter_ev_tick = NULL;
	if (srv->filter != NULL &&
	    filter_active_mode(srv->filter) == FILTER_ACTIVE_USERSPACE) {
		n = snprintf(path, sizeof(path),
			     "%s/" CONFIG_FILTER_STATUS_NAME,
			     srv->cfg->data_dir);
		if (n > 0 && (size_t)n < sizeof(path))
			unlink(path);
	}
	filter_close(&srv->filter, srv->cfg->filter.keep_attached);
	abuse_reset();
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
			main_conf_path = optarg;
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
		fprintf(stderr,
			"posternd: %d configuration problem%s, not "
			"starting\n",
			problems, problems == 1 ? "" : "s");
		return 1;
	}
	log_set_level(debug ? LOG_LEVEL_DEBUG : cfg.log_level);

	memset(&srv, 0, sizeof(srv));
	srv.cfg = &cfg;
	umask(077);
	signal(SIGPIPE, SIG_IGN);
	/* First, while we are root: loading and attaching XDP needs it. */
	if ((srv.filter = filter_open(&cfg.filter, err, sizeof(err))) == NULL) {
		log_warnx("filter: %s", err);
		return 1;
	}
	if (util_mkdirs(cfg.data_dir, 0700) == -1) {
		log_warn("cannot create data_dir %s", cfg.data_dir);
		goto fail;
	}
	if (main_prepare_dirs(&srv) == -1)
		goto fail;
	if (store_open(cfg.data_dir, &srv.store, err, sizeof(err)) !=
	    STORE_OK) {
		log_warnx("store: %s", err);
		goto fail;
	}
	if (cfg.tls_cert[0] != '\0' && main_reload_tls(&cfg) == -1)
		goto fail;
	if (cfg.tls_cert[0] == '\0' &&
	    (cfg.submissions_listen.n > 0 || cfg.pop3s_listen.n > 0)) {
		log_warnx("[submissions] and [pop3s] need [tls] cert and key");
		goto fail;
	}
	if ((srv.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	srv.workers = worker_pool_new(srv.base, (int)cfg.worker_threads);
	if (delivery_init(&srv, cfg.durability) == -1) {
		log_warn("cannot open data_dir %s", cfg.data_dir);
		goto fail;
	}
	/* The queue recovers what a crash left before mail comes in. */
	if (queue_init(&srv, &cfg.queue, err, sizeof(err)) == -1) {
		log_warnx("queue: %s", err);
		goto fail;
	}
	if (main_filter_start(&srv) == -1) {
		log_warnx("filter: cannot watch its events");
		goto fail;
	}
	if (listener_open_all(&srv) == -1) {
		log_warnx("cannot open listeners, not starting");
		goto fail;
	}
	for (i = 0; sigs[i]; i++) {
		ev_sig[i] =
		    evsignal_new(srv.base, sigs[i], main_on_signal, &srv);
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
	/* Outbound sessions are dropped; their recipients stay pending. */
	queue_shutdown();
	worker_pool_free(&srv.workers);
	store_close(&srv.store);
	main_filter_stop(&srv);
	log_info("posternd stopped");
	return 0;
fail:
	main_filter_stop(&srv);
	return 1;
}
