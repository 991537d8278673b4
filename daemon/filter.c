/* The filter's front: mode selection (XDP through filter_bpf.c, else user
 * space), the user-space limiter and lists used at accept(), the ban file
 * kept in step with the live ban set, events, counters and status. */
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "filter.h"
#include "filter_banfile.h"
#include "filter_bpf.h"
#include "filter_table.h"
#include "log.h"
#include "util.h"

_Static_assert(FILTER_STAT_MAX == PF_STAT_MAX, "counter sets differ");
_Static_assert((int)FILTER_REASON_OTHER == (int)PF_REASON_OTHER,
	       "reason codes differ");

#define NS_PER_S 1000000000ULL
#define BAN_MIN_V4 8			/* refuse to ban more than an IPv4 /8 */
#define BAN_MIN_V6 16			/* ... or an IPv6 /16 */
#define SOURCE_IDLE_NS (300 * NS_PER_S) /* forget idle sources after */
#define XDP_GC_INTERVAL_NS (10 * NS_PER_S)
#define LOG_LINES_PER_S 20 /* global cap on drop log lines */
#define LOG_GATE_SLOTS 256

/* Entries of a map walk, sortable like a filter_banlist (both start with the
 * network). */
struct map_entry {
	struct filter_net net;
	struct pf_list_value v;
};

struct map_entries {
	struct map_entry *v;
	size_t n, cap;
};

struct list_ctx {
	struct filter *f;
	filter_list_fn fn;
	void *arg;
	uint64_t now;
	int n;
};

struct top_ctx {
	struct filter_status *st;
	const struct filter *f;
	uint64_t now;
};

struct log_gate {
	uint8_t addr[16];
	uint64_t last_ns;
};

struct filter {
	struct filter_config cfg;
	enum filter_active active;
	char reason[ERR_LEN];	/* why not XDP */
	struct filter_bpf *bpf; /* XDP mode; admin with live pins */
	struct pf_config pfc;
	/* User-space lists and sources (allow: kept in every mode). */
	struct filter_table allow, bans, src;
	struct filter_banfile bf;
	int epfd;
	uint64_t admit[FILTER_STAT_MAX];
	uint64_t (*clock)(void *);
	void *clock_arg;
	uint64_t last_xdp_gc;
	uint64_t log_window, log_suppressed;
	unsigned log_lines;
	struct log_gate gate[LOG_GATE_SLOTS];
};

static const char *const stat_names[FILTER_STAT_MAX] = {
    "packets",	    "syn",     "passed",      "allowed",      "dropped_ban",
    "dropped_rate", "dry_run", "new_sources", "parse_errors", "events_lost",
};

static uint64_t filter_real_clock(void *arg);
static uint64_t filter_now(const struct filter *f);
static uint64_t filter_wall_ns(void);
static void filter_net_key(const struct filter_net *net,
			   struct pf_lpm_key *key);
static void filter_key17(const struct filter_net *net, uint8_t key[17]);
static void filter_key_net(const uint8_t key[17], struct filter_net *net);
static void filter_pf_config(const struct filter_config *cfg, uint32_t flags,
			     struct pf_config *pfc);
static void filter_allow_desired(const struct filter_config *cfg,
				 struct filter_net *nets, size_t *n_r);
static int filter_sync_allow(struct filter *f, int write_map, char *err,
			     size_t errlen);
static int filter_collect_entry(const struct pf_lpm_key *key,
				const struct pf_list_value *val, void *arg);
static int filter_bans_flush(struct filter *f);
static int filter_bans_reload(struct filter *f);
static void filter_bans_sync(struct filter *f, struct filter_banlist *want);
static void filter_rec_to_value(const struct filter *f,
				const struct filter_banrec *rec,
				struct pf_list_value *v);
static void filter_value_to_rec(const struct filter *f,
				const struct filter_net *net,
				const struct pf_list_value *v,
				struct filter_banrec *rec);
static int filter_bans_merge_map(const struct pf_lpm_key *key,
				 const struct pf_list_value *val, void *arg);
static int filter_open_xdp(struct filter *f, char *err, size_t errlen);
static int filter_open_user(struct filter *f, char *err, size_t errlen);
static int filter_events_setup(struct filter *f);
static int filter_log_gate(struct filter *f, const uint8_t addr[16],
			   uint64_t now);
static int filter_log_allowed(struct filter *f, uint64_t now);
static void filter_on_event(const struct pf_event *ev, void *arg);
static void filter_gc(struct filter *f, uint64_t now);
static void filter_source_key(const struct filter *f,
			      const struct filter_net *src, uint8_t key[17]);
static struct filter_table_entry *
filter_source_get(struct filter *f, const uint8_t key[17], uint64_t now);
static int filter_ban_check(struct filter *f, const struct filter_net *net,
			    char *err, size_t errlen);
static struct filter *filter_new(const struct filter_config *cfg);
static int filter_check_config(const struct filter_config *cfg, char *err,
			       size_t errlen);
static void filter_list_one(struct list_ctx *c, const struct filter_net *net,
			    const struct pf_list_value *v);
static int filter_list_map_cb(const struct pf_lpm_key *key,
			      const struct pf_list_value *val, void *arg);
static int filter_list(struct filter *f, enum filter_bpf_list which,
		       filter_list_fn fn, void *arg);
static void filter_top_add(struct top_ctx *c, const uint8_t key[16],
			   unsigned len, const struct pf_source *s);
static void filter_top_map_cb(const uint8_t key[16], const struct pf_source *s,
			      void *arg);
static void filter_count_cb(const struct filter_list_info *info, void *arg);

/* ---- clocks ---------------------------------------------------------- */

static uint64_t
filter_real_clock(void *arg)
{
	(void)arg;
	return util_now_ns();
}

static uint64_t
filter_now(const struct filter *f)
{
	return f->clock(f->clock_arg);
}

static uint64_t
filter_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* Entries already stored move with the clock, so that a ban loaded at
 * open keeps its remaining time. */
void
filter_set_clock(struct filter *f, uint64_t (*now_ns)(void *arg), void *arg)
{
	uint64_t before = filter_now(f), delta;
	struct filter_table *lists[2] = {&f->allow, &f->bans};
	size_t i, k;

	f->clock = now_ns ? now_ns : filter_real_clock;
	f->clock_arg = arg;
	delta = filter_now(f) - before; /* modulo 2^64: works backwards */
	for (k = 0; k < 2; k++) {
		for (i = 0; i < lists[k]->cap; i++) {
			struct pf_list_value *v = &lists[k]->tab[i].v.list;

			if (!lists[k]->tab[i].used)
				continue;
			if (v->expires_ns != 0)
				v->expires_ns += delta;
			v->created_ns += delta;
		}
	}
	for (i = 0; i < f->src.cap; i++) {
		struct pf_source *s = &f->src.tab[i].v.src;

		if (!f->src.tab[i].used)
			continue;
		s->tat += delta;
		s->first_ns += delta;
		s->last_ns += delta;
	}
}

/* ---- keys and names -------------------------------------------------- */

static void
filter_net_key(const struct filter_net *net, struct pf_lpm_key *key)
{
	memset(key, 0, sizeof(*key));
	key->prefixlen = net->prefixlen;
	memcpy(key->addr, net->addr, sizeof(key->addr));
}

const char *
filter_stat_name(int idx)
{
	return idx >= 0 && idx < FILTER_STAT_MAX ? stat_names[idx] : "?";
}

static void
filter_key17(const struct filter_net *net, uint8_t key[17])
{
	memcpy(key, net->addr, 16);
	key[16] = (uint8_t)net->prefixlen;
}

static void
filter_key_net(const uint8_t key[17], struct filter_net *net)
{
	memcpy(net->addr, key, 16);
	net->prefixlen = key[16];
}

/* ---- kernel config and allow list ------------------------------------ */

static void
filter_pf_config(const struct filter_config *cfg, uint32_t flags,
		 struct pf_config *pfc)
{
	size_t i;

	memset(pfc, 0, sizeof(*pfc));
	pfc->flags = flags | PF_F_ENABLED | PF_F_EVENTS;
	if (cfg->dry_run)
		pfc->flags |= PF_F_DRY_RUN;
	pfc->v4_prefix = cfg->ipv4_prefix;
	pfc->v6_prefix = cfg->ipv6_prefix;
	/* Precomputed so that the packet path has no division. */
	pfc->interval_ns = (uint64_t)cfg->rate_period_s * NS_PER_S / cfg->rate;
	pfc->burst_ns = pfc->interval_ns * (cfg->burst - 1);
	pfc->event_gap_ns = cfg->log_interval_ms * 1000000ULL;
	for (i = 0; i < cfg->n_ports; i++)
		pfc->ports[cfg->ports[i] >> 6] |= 1ULL << (cfg->ports[i] & 63);
}

/* Loopback is always allowed, so the admin is never locked out locally. */
static void
filter_allow_desired(const struct filter_config *cfg, struct filter_net *nets,
		     size_t *n_r)
{
	const char *err;
	size_t n = 0, i;

	filter_parse_net("127.0.0.0/8", &nets[n++], &err);
	filter_parse_net("::1/128", &nets[n++], &err);
	for (i = 0; i < cfg->n_allow; i++)
		nets[n++] = cfg->allow[i];
	*n_r = n;
}

/* Makes the allow list (the table and, with write_map, the map) exactly
 * the configured one, which drops entries added at run time by
 * filter_allow(). New entries go in before old ones leave, so there is no
 * moment without the loopback entry. */
static int
filter_sync_allow(struct filter *f, int write_map, char *err, size_t errlen)
{
	struct filter_net nets[FILTER_MAX_ALLOW + 2];
	struct map_entries me = {0};
	struct pf_list_value v;
	struct pf_lpm_key key;
	uint8_t k17[17];
	size_t n, i;

	write_map = write_map && f->bpf != NULL;
	filter_allow_desired(&f->cfg, nets, &n);
	for (i = 0; i < f->allow.cap; i++)
		f->allow.tab[i].mark = f->allow.tab[i].used;
	for (i = 0; i < n; i++) {
		struct filter_table_entry *e;

		filter_key17(&nets[i], k17);
		e = filter_table_insert(&f->allow, k17);
		if (e == NULL)
			continue;
		if (e->v.list.created_ns == 0)
			e->v.list.created_ns = filter_now(f);
		e->v.list.reason = PF_REASON_NONE;
		e->mark = 0;
		if (!write_map)
			continue;
		memset(&v, 0, sizeof(v));
		v.created_ns = e->v.list.created_ns;
		filter_net_key(&nets[i], &key);
		if (filter_bpf_list_put(f->bpf, FILTER_BPF_ALLOW, &key, &v) <
		    0) {
			snprintf(err, errlen, "allow list: %s",
				 strerror(errno));
			return -1;
		}
	}
	for (i = 0; i < f->allow.cap;) {
		if (f->allow.tab[i].used && f->allow.tab[i].mark)
			filter_table_del(&f->allow, &f->allow.tab[i]);
		else
			i++;
	}
	if (!write_map)
		return 0;
	/* The map may also hold entries from posternctl or an earlier run. */
	filter_bpf_list_walk(f->bpf, FILTER_BPF_ALLOW, filter_collect_entry,
			     &me);
	for (i = 0; i < me.n; i++) {
		filter_key17(&me.v[i].net, k17);
		if (filter_table_find(&f->allow, k17) != NULL)
			continue;
		filter_net_key(&me.v[i].net, &key);
		filter_bpf_list_del(f->bpf, FILTER_BPF_ALLOW, &key);
	}
	free(me.v);
	return 0;
}

/* ---- the ban file ---------------------------------------------------- */

static void
filter_rec_to_value(const struct filter *f, const struct filter_banrec *rec,
		    struct pf_list_value *v)
{
	uint64_t mono = filter_now(f), wall = filter_wall_ns();
	uint64_t exp = rec->expires * NS_PER_S, cre = rec->created * NS_PER_S;

	memset(v, 0, sizeof(*v));
	v->reason = rec->reason;
	if (rec->expires != 0)
		v->expires_ns = exp > wall ? mono + (exp - wall) : 1;
	/* A ban older than this boot gets the earliest monotonic time. */
	v->created_ns =
	    (cre <= wall && wall - cre < mono) ? mono - (wall - cre) : 1;
}

static void
filter_value_to_rec(const struct filter *f, const struct filter_net *net,
		    const struct pf_list_value *v, struct filter_banrec *rec)
{
	uint64_t mono = filter_now(f), wall = filter_wall_ns();

	memset(rec, 0, sizeof(*rec));
	rec->net = *net;
	rec->reason = v->reason;
	if (v->expires_ns != 0)
		rec->expires =
		    (wall + (v->expires_ns > mono ? v->expires_ns - mono : 0) +
		     NS_PER_S - 1) /
		    NS_PER_S;
	rec->created =
	    (wall - (mono > v->created_ns ? mono - v->created_ns : 0)) /
	    NS_PER_S;
}

static int
filter_collect_entry(const struct pf_lpm_key *key,
		     const struct pf_list_value *val, void *arg)
{
	struct map_entries *me = arg;

	if (me->n == me->cap) {
		me->cap = me->cap ? me->cap * 2 : 64;
		me->v = xrealloc(me->v, me->cap * sizeof(me->v[0]));
	}
	memcpy(me->v[me->n].net.addr, key->addr, 16);
	me->v[me->n].net.prefixlen = key->prefixlen;
	me->v[me->n].v = *val;
	me->n++;
	return 0;
}

/* Makes the live ban set (map or user-space table) equal to want, keeping
 * the hit counters of entries that stay. */
static void
filter_bans_sync(struct filter *f, struct filter_banlist *want)
{
	struct pf_list_value v;
	struct pf_lpm_key key;
	uint8_t k17[17];
	size_t i;

	filter_banlist_sort(want);
	if (f->bpf != NULL) {
		struct map_entries me = {0};

		filter_bpf_list_walk(f->bpf, FILTER_BPF_BAN,
				     filter_collect_entry, &me);
		if (me.n > 1)
			qsort(me.v, me.n, sizeof(me.v[0]), filter_net_cmp);
		for (i = 0; i < me.n; i++) {
			if (bsearch(&me.v[i].net, want->v, want->n,
				    sizeof(want->v[0]), filter_net_cmp))
				continue;
			filter_net_key(&me.v[i].net, &key);
			filter_bpf_list_del(f->bpf, FILTER_BPF_BAN, &key);
		}
		for (i = 0; i < want->n; i++) {
			const struct map_entry *cur;

			filter_rec_to_value(f, &want->v[i], &v);
			cur = bsearch(&want->v[i].net, me.v, me.n,
				      sizeof(me.v[0]), filter_net_cmp);
			/* Same ban, give or take the seconds rounding. */
			if (cur != NULL && cur->v.reason == v.reason &&
			    (cur->v.expires_ns == 0) == (v.expires_ns == 0) &&
			    (cur->v.expires_ns > v.expires_ns
				 ? cur->v.expires_ns - v.expires_ns
				 : v.expires_ns - cur->v.expires_ns) <
				2 * NS_PER_S)
				continue;
			filter_net_key(&want->v[i].net, &key);
			if (filter_bpf_list_put(f->bpf, FILTER_BPF_BAN, &key,
						&v) < 0)
				log_warn("filter ban map update");
		}
		free(me.v);
		return;
	}
	for (i = 0; i < f->bans.cap; i++)
		f->bans.tab[i].mark = f->bans.tab[i].used;
	for (i = 0; i < want->n; i++) {
		struct filter_table_entry *e;
		uint64_t hits;

		filter_key17(&want->v[i].net, k17);
		e = filter_table_insert(&f->bans, k17);
		if (e == NULL) {
			log_warnx("filter ban list full (%zu entries)",
				  f->bans.max);
			break;
		}
		filter_rec_to_value(f, &want->v[i], &v);
		hits = e->v.list.hits;
		if (e->mark && e->v.list.reason == v.reason &&
		    e->v.list.expires_ns / NS_PER_S == v.expires_ns / NS_PER_S)
			v.created_ns = e->v.list.created_ns;
		v.hits = hits;
		v.last_event_ns = e->v.list.last_event_ns;
		e->v.list = v;
		e->mark = 0;
	}
	for (i = 0; i < f->bans.cap;) {
		if (f->bans.tab[i].used && f->bans.tab[i].mark)
			filter_table_del(&f->bans, &f->bans.tab[i]);
		else
			i++;
	}
}

/* Writes our pending changes on top of the current file, then adopts the
 * result (which includes posternctl's edits). Returns 0 or -1. */
static int
filter_bans_flush(struct filter *f)
{
	struct filter_banlist bl = {0};
	int rc;

	if (f->bf.path[0] == '\0' || filter_banfile_lock(&f->bf, LOCK_EX) < 0)
		return -1;
	rc = filter_banfile_read(&f->bf, &bl);
	if (rc == 0) {
		filter_banfile_apply(&f->bf, &bl);
		rc = filter_banfile_write(&f->bf, &bl);
	}
	filter_banfile_unlock(&f->bf);
	if (rc == 0) {
		f->bf.n_pending = 0;
		if (f->active != FILTER_ACTIVE_ADMIN)
			filter_bans_sync(f, &bl);
	}
	filter_banlist_free(&bl);
	return rc;
}

/* The file changed under us (posternctl): adopt it, with our unwritten
 * changes on top. Returns 0 or -1. */
static int
filter_bans_reload(struct filter *f)
{
	struct filter_banlist bl = {0};
	int rc;

	if (f->bf.path[0] == '\0' || filter_banfile_lock(&f->bf, LOCK_SH) < 0)
		return -1;
	rc = filter_banfile_read(&f->bf, &bl);
	filter_banfile_remember(&f->bf);
	filter_banfile_unlock(&f->bf);
	if (rc == 0) {
		filter_banfile_apply(&f->bf, &bl);
		filter_bans_sync(f, &bl);
		log_info("filter bans reloaded from %s: %zu active", f->bf.path,
			 bl.n);
	}
	filter_banlist_free(&bl);
	return rc;
}

/* Queues every pinned ban that the file lacks, so that a restart after
 * a crash (or with keep_attached) loses none. */
static int
filter_bans_merge_map(const struct pf_lpm_key *key,
		      const struct pf_list_value *val, void *arg)
{
	struct filter *f = arg;
	struct filter_net net;
	struct filter_banrec rec;

	if (val->expires_ns != 0 && val->expires_ns <= filter_now(f))
		return 0;
	memcpy(net.addr, key->addr, 16);
	net.prefixlen = key->prefixlen;
	filter_value_to_rec(f, &net, val, &rec);
	filter_banfile_queue(&f->bf, 0, &rec);
	return 0;
}

/* ---- open and close -------------------------------------------------- */

static int
filter_open_xdp(struct filter *f, char *err, size_t errlen)
{
	const char *ifs[FILTER_MAX_IFACES];
	enum filter_bpf_attach want;
	enum filter_bpf_xdp_mode mode;
	struct pf_config old;
	int was_active = 0;
	size_t i, ok = 0;

	if (f->cfg.n_interfaces == 0) {
		snprintf(err, errlen, "no interfaces configured");
		return -1;
	}
	if (filter_bpf_open(&f->bpf, f->cfg.pin_root, err, errlen) < 0)
		return -1;
	if (filter_bpf_config_get(f->bpf, &old) == 0)
		was_active = (old.flags & PF_F_ACTIVE) != 0;
	filter_pf_config(&f->cfg, PF_F_ACTIVE, &f->pfc);
	if (filter_bpf_config_set(f->bpf, &f->pfc) < 0) {
		snprintf(err, errlen, "config map: %s", strerror(errno));
		goto fail;
	}
	if (filter_sync_allow(f, 1, err, errlen) < 0)
		goto fail;
	if (f->bf.path[0] != '\0') {
		/* While a filter stayed active (kept attached, or crashed),
		 * posternctl wrote both the pins and the file: merge. After a
		 * clean stop only the file was edited: it is the truth. */
		if (was_active)
			filter_bpf_list_walk(f->bpf, FILTER_BPF_BAN,
					     filter_bans_merge_map, f);
		if (filter_bans_flush(f) < 0) {
			snprintf(err, errlen, "ban file %.200s: cannot update",
				 f->bf.path);
			goto fail;
		}
	}
	want = f->cfg.attach == FILTER_ATTACH_NATIVE ? FILTER_BPF_ATTACH_NATIVE
	       : f->cfg.attach == FILTER_ATTACH_GENERIC
		   ? FILTER_BPF_ATTACH_GENERIC
		   : FILTER_BPF_ATTACH_AUTO;
	for (i = 0; i < f->cfg.n_interfaces; i++) {
		char e[ERR_LEN];

		ifs[i] = f->cfg.interfaces[i];
		if (filter_bpf_attach(f->bpf, ifs[i], want,
				      f->cfg.keep_attached, &mode, e,
				      sizeof(e)) < 0) {
			log_warnx("filter interface=%s attach failed: %s",
				  ifs[i], e);
			snprintf(err, errlen, "%s", e);
			continue;
		}
		log_info("filter interface=%s xdp=%s", ifs[i],
			 filter_bpf_mode_name(mode));
		ok++;
	}
	if (ok == 0)
		goto fail;
	filter_bpf_detach_stale(f->bpf, ifs, f->cfg.n_interfaces);
	return 0;
fail:
	/* posternctl must not take these pins for a live filter. */
	f->pfc.flags &= ~(uint32_t)PF_F_ACTIVE;
	filter_bpf_config_set(f->bpf, &f->pfc);
	filter_bpf_close(&f->bpf, 0);
	return -1;
}

static int
filter_open_user(struct filter *f, char *err, size_t errlen)
{
	if (filter_sync_allow(f, 1, err, errlen) < 0)
		return -1;
	if (f->bf.path[0] != '\0' && filter_bans_flush(f) < 0) {
		snprintf(err, errlen, "ban file %.200s: cannot update",
			 f->bf.path);
		return -1;
	}
	return 0;
}

/* One fd for the loop: an epoll set holding the ring buffer's epoll fd
 * and an inotify watch on the ban file's directory. */
static int
filter_events_setup(struct filter *f)
{
	struct epoll_event ev = {.events = EPOLLIN};
	int rb = f->bpf ? filter_bpf_events_fd(f->bpf) : -1;

	if (f->bf.path[0] != '\0') {
		f->bf.inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (f->bf.inotify_fd < 0 ||
		    inotify_add_watch(f->bf.inotify_fd, f->bf.dir,
				      IN_CLOSE_WRITE | IN_MOVED_TO |
					  IN_DELETE) < 0) {
			log_warn("filter inotify %s (edits are seen within a "
				 "second)",
				 f->bf.dir);
			if (f->bf.inotify_fd >= 0)
				close(f->bf.inotify_fd);
			f->bf.inotify_fd = -1;
		}
	}
	if (rb < 0 && f->bf.inotify_fd < 0)
		return 0;
	f->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (f->epfd < 0)
		return -1;
	if (rb >= 0) {
		ev.data.fd = rb;
		if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, rb, &ev) < 0)
			return -1;
	}
	if (f->bf.inotify_fd >= 0) {
		ev.data.fd = f->bf.inotify_fd;
		if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->bf.inotify_fd, &ev) <
		    0)
			return -1;
	}
	return 0;
}

static struct filter *
filter_new(const struct filter_config *cfg)
{
	struct filter *f = xcalloc(1, sizeof(*f));

	f->cfg = *cfg;
	f->active = FILTER_ACTIVE_USERSPACE;
	f->epfd = -1;
	f->bf.lock_fd = f->bf.inotify_fd = -1;
	f->clock = filter_real_clock;
	filter_table_init(&f->allow, FILTER_MAX_ALLOW + 2 + PF_MAX_LIST);
	filter_table_init(&f->bans, PF_MAX_LIST);
	filter_table_init(&f->src, cfg->max_sources);
	return f;
}

static int
filter_check_config(const struct filter_config *cfg, char *err, size_t errlen)
{
	if (cfg->rate == 0 || cfg->rate_period_s == 0 || cfg->burst == 0 ||
	    cfg->ipv4_prefix < 1 || cfg->ipv4_prefix > 32 ||
	    cfg->ipv6_prefix < 1 || cfg->ipv6_prefix > 128 ||
	    cfg->max_sources == 0) {
		snprintf(err, errlen, "invalid filter limits");
		return -1;
	}
	return 0;
}

struct filter *
filter_open(const struct filter_config *cfg, char *err, size_t errlen)
{
	struct filter *f;
	char why[ERR_LEN] = "";
	int xdp = 0;

	if (filter_check_config(cfg, err, errlen) < 0)
		return NULL;
	f = filter_new(cfg);
	if (filter_banfile_init(&f->bf, cfg->ban_file, err, errlen) < 0)
		goto fail;
	if (cfg->mode == FILTER_MODE_USERSPACE) {
		strlcpy(why, "mode = userspace", sizeof(why));
	} else if (cfg->mode == FILTER_MODE_AUTO && cfg->n_interfaces == 0) {
		strlcpy(why, "no interfaces configured", sizeof(why));
	} else if (filter_open_xdp(f, why, sizeof(why)) == 0) {
		xdp = 1;
	} else if (cfg->mode == FILTER_MODE_XDP) {
		snprintf(err, errlen, "XDP filter: %s", why);
		goto fail;
	} else {
		log_warnx("filter XDP unavailable (%s): limiting in user "
			  "space at accept()",
			  why);
	}
	f->active = xdp ? FILTER_ACTIVE_XDP : FILTER_ACTIVE_USERSPACE;
	if (!xdp) {
		strlcpy(f->reason, why, sizeof(f->reason));
		if (filter_open_user(f, err, errlen) < 0)
			goto fail;
	}
	if (filter_events_setup(f) < 0) {
		snprintf(err, errlen, "event fd: %s", strerror(errno));
		goto fail;
	}
	log_info("filter mode=%s rate=%u/%us burst=%u prefix=/%u,/%u%s%s%s",
		 filter_mode_name(f), cfg->rate, cfg->rate_period_s, cfg->burst,
		 cfg->ipv4_prefix, cfg->ipv6_prefix,
		 cfg->dry_run ? " dry_run=yes" : "",
		 f->reason[0] ? " reason=" : "", f->reason);
	return f;
fail:
	filter_close(&f, 1);
	return NULL;
}

struct filter *
filter_open_admin(const struct filter_config *cfg, char *err, size_t errlen)
{
	struct filter *f = filter_new(cfg);
	struct pf_config pfc;
	int rc;

	f->active = FILTER_ACTIVE_ADMIN;
	if (filter_banfile_init(&f->bf, cfg->ban_file, err, errlen) < 0)
		goto fail;
	rc = filter_bpf_open_pinned(&f->bpf, cfg->pin_root, err, errlen);
	if (rc < 0)
		goto fail;
	/* Pins left by a filter that stopped cleanly are not live. */
	if (rc == 0 && (filter_bpf_config_get(f->bpf, &pfc) < 0 ||
			!(pfc.flags & PF_F_ACTIVE)))
		filter_bpf_close(&f->bpf, 1);
	if (f->bpf != NULL)
		f->pfc = pfc;
	if (f->bpf == NULL && f->bf.path[0] == '\0') {
		snprintf(err, errlen,
			 "no active XDP filter under %s and no "
			 "ban_file configured",
			 cfg->pin_root);
		goto fail;
	}
	/* Only to refuse bans the allow list would override anyway. */
	if (filter_sync_allow(f, 0, err, errlen) < 0)
		goto fail;
	return f;
fail:
	filter_close(&f, 1);
	return NULL;
}

int
filter_reconfigure(struct filter *f, const struct filter_config *cfg, char *err,
		   size_t errlen)
{
	const char *ifs[FILTER_MAX_IFACES];
	enum filter_bpf_xdp_mode mode;
	int regroup;
	size_t i, j;

	if (filter_check_config(cfg, err, errlen) < 0)
		return -1;
	if (f->active == FILTER_ACTIVE_ADMIN || cfg->mode != f->cfg.mode ||
	    strcmp(cfg->pin_root, f->cfg.pin_root) != 0 ||
	    strcmp(cfg->ban_file, f->cfg.ban_file) != 0) {
		snprintf(err, errlen,
			 "mode, pin_root or ban_file changed: "
			 "restart needed");
		return -1;
	}
	regroup = cfg->ipv4_prefix != f->cfg.ipv4_prefix ||
		  cfg->ipv6_prefix != f->cfg.ipv6_prefix;
	if (f->active == FILTER_ACTIVE_XDP) {
		for (i = 0; i < f->cfg.n_interfaces; i++) {
			for (j = 0; j < cfg->n_interfaces; j++)
				if (strcmp(f->cfg.interfaces[i],
					   cfg->interfaces[j]) == 0)
					break;
			if (j == cfg->n_interfaces) {
				filter_bpf_detach(f->bpf, f->cfg.interfaces[i]);
				log_info("filter interface=%s detached",
					 f->cfg.interfaces[i]);
			}
		}
		for (i = 0; i < cfg->n_interfaces; i++) {
			char e[ERR_LEN];

			ifs[i] = cfg->interfaces[i];
			if (filter_bpf_attach(
				f->bpf, ifs[i],
				cfg->attach == FILTER_ATTACH_NATIVE
				    ? FILTER_BPF_ATTACH_NATIVE
				: cfg->attach == FILTER_ATTACH_GENERIC
				    ? FILTER_BPF_ATTACH_GENERIC
				    : FILTER_BPF_ATTACH_AUTO,
				cfg->keep_attached, &mode, e, sizeof(e)) < 0)
				log_warnx("filter interface=%s attach failed: "
					  "%s",
					  ifs[i], e);
		}
		filter_pf_config(cfg, PF_F_ACTIVE, &f->pfc);
		if (filter_bpf_config_set(f->bpf, &f->pfc) < 0) {
			snprintf(err, errlen, "config map: %s",
				 strerror(errno));
			return -1;
		}
	}
	f->cfg = *cfg;
	f->src.max = cfg->max_sources;
	if (regroup || f->src.n > f->src.max)
		filter_table_clear(&f->src);
	return filter_sync_allow(f, 1, err, errlen);
}

void
filter_close(struct filter **fp, int keep_attached)
{
	struct filter *f = *fp;

	if (f == NULL)
		return;
	if (f->bf.n_pending > 0)
		filter_bans_flush(f);
	if (f->bpf != NULL && f->active == FILTER_ACTIVE_XDP &&
	    !keep_attached) {
		/* Tell posternctl nothing enforces the pins any more. */
		f->pfc.flags &= ~(uint32_t)PF_F_ACTIVE;
		filter_bpf_config_set(f->bpf, &f->pfc);
	}
	filter_bpf_close(&f->bpf, keep_attached);
	if (f->epfd >= 0)
		close(f->epfd);
	filter_banfile_free(&f->bf);
	filter_table_free(&f->allow);
	filter_table_free(&f->bans);
	filter_table_free(&f->src);
	free(f);
	*fp = NULL;
}

enum filter_active
filter_active_mode(const struct filter *f)
{
	return f->active;
}

const char *
filter_mode_name(const struct filter *f)
{
	switch (f->active) {
	case FILTER_ACTIVE_XDP:
		return "xdp";
	case FILTER_ACTIVE_USERSPACE:
		return "userspace";
	case FILTER_ACTIVE_ADMIN:
		break;
	}
	return "admin";
}

const char *
filter_fallback_reason(const struct filter *f)
{
	return f->reason;
}

/* ---- admission ------------------------------------------------------- */

/* 1 when a deny for addr should be logged: once per log_interval per
 * address, in a small direct-mapped cache (a collision only logs more). */
static int
filter_log_gate(struct filter *f, const uint8_t addr[16], uint64_t now)
{
	struct log_gate *g =
	    &f->gate[filter_table_hash(addr, 16, f->src.seed) % LOG_GATE_SLOTS];
	uint64_t gap = f->cfg.log_interval_ms * 1000000ULL;

	if (memcmp(g->addr, addr, 16) == 0 && g->last_ns != 0 &&
	    now - g->last_ns < gap)
		return 0;
	memcpy(g->addr, addr, 16);
	g->last_ns = now;
	return 1;
}

static void
filter_source_key(const struct filter *f, const struct filter_net *src,
		  uint8_t key[17])
{
	unsigned len = filter_net_is_v4(src) ? 96 + f->cfg.ipv4_prefix
					     : f->cfg.ipv6_prefix;

	memcpy(key, src->addr, 16);
	filter_net_mask(key, len);
	key[16] = (uint8_t)len;
}

/* The source's entry, created when new. When the table is full, idle
 * sources (bucket full again, so they carry no state) go first; failing
 * that one entry is evicted, which only resets its bucket (fails safe). */
static struct filter_table_entry *
filter_source_get(struct filter *f, const uint8_t key[17], uint64_t now)
{
	struct filter_table_entry *e = filter_table_insert(&f->src, key);
	size_t i;

	if (e != NULL)
		return e;
	for (i = 0; i < f->src.cap;) {
		struct filter_table_entry *x = &f->src.tab[i];

		if (x->used && x->v.src.tat <= now)
			filter_table_del(&f->src, x);
		else
			i++;
	}
	if (f->src.n >= f->src.max) {
		i = filter_table_hash(key, 17, f->src.seed) & (f->src.cap - 1);
		while (!f->src.tab[i].used)
			i = (i + 1) & (f->src.cap - 1);
		filter_table_del(&f->src, &f->src.tab[i]);
	}
	return filter_table_insert(&f->src, key);
}

enum filter_verdict
filter_admit(struct filter *f, const struct sockaddr *sa,
	     struct filter_decision *d_r)
{
	struct filter_decision dd = {0};
	struct filter_decision *d = d_r ? d_r : &dd;
	struct pf_list_value lv;
	struct filter_net src;
	struct filter_table_entry *e;
	uint64_t now = filter_now(f), tat, interval, burst_ns;
	uint8_t key[17];
	enum filter_verdict v = FILTER_PASS;

	memset(d, 0, sizeof(*d));
	if (filter_net_from_sockaddr(sa, &src) < 0)
		return FILTER_PASS;
	f->admit[PF_STAT_PACKETS]++;
	f->admit[PF_STAT_SYN]++;
	filter_format_net(&src, d->net, sizeof(d->net));

	if (f->active == FILTER_ACTIVE_XDP) {
		struct pf_list_value av;
		struct pf_lpm_key k;

		/* Ban first: the common (unbanned) case costs one lookup. */
		filter_net_key(&src, &k);
		if (filter_bpf_list_lookup(f->bpf, FILTER_BPF_BAN, &k, &lv) !=
			1 ||
		    (lv.expires_ns != 0 && lv.expires_ns <= now))
			goto pass;
		if (filter_bpf_list_lookup(f->bpf, FILTER_BPF_ALLOW, &k, &av) ==
		    1) {
			v = FILTER_PASS_ALLOWED;
			f->admit[PF_STAT_ALLOWED]++;
			goto pass;
		}
		v = FILTER_DENY_BANNED;
		goto banned;
	}

	if (filter_table_match(&f->allow, src.addr, 128, now) != NULL) {
		f->admit[PF_STAT_ALLOWED]++;
		v = FILTER_PASS_ALLOWED;
		goto pass;
	}
	e = filter_table_match(&f->bans, src.addr, 128, now);
	if (e != NULL) {
		struct filter_net bn;

		e->v.list.hits++;
		lv = e->v.list;
		filter_key_net(e->key, &bn);
		filter_format_net(&bn, d->net, sizeof(d->net));
		v = FILTER_DENY_BANNED;
		goto banned;
	}

	/* GCRA, as in the kernel: tat = max(tat, now); over the limit when
	 * tat - now > burst_ns; otherwise tat += interval. */
	interval = (uint64_t)f->cfg.rate_period_s * NS_PER_S / f->cfg.rate;
	burst_ns = interval * (f->cfg.burst - 1);
	filter_source_key(f, &src, key);
	{
		struct filter_net kn;

		filter_key_net(key, &kn);
		filter_format_net(&kn, d->net, sizeof(d->net));
	}
	e = filter_source_get(f, key, now);
	if (e == NULL)
		goto pass;
	if (e->v.src.first_ns == 0) {
		e->v.src.first_ns = now;
		e->v.src.tat = now;
		f->admit[PF_STAT_NEW_SOURCE]++;
	}
	e->v.src.syn_total++;
	e->v.src.last_ns = now;
	tat = e->v.src.tat > now ? e->v.src.tat : now;
	if (tat - now > burst_ns) {
		e->v.src.syn_dropped++;
		f->admit[PF_STAT_DROP_RATE]++;
		d->log = filter_log_gate(f, key, now);
		v = FILTER_DENY_RATE;
		goto deny;
	}
	e->v.src.tat = tat + interval;
	goto pass;

banned:
	f->admit[PF_STAT_DROP_BAN]++;
	d->reason = (enum filter_reason)lv.reason;
	d->expires_in_s = lv.expires_ns == 0
			      ? 0
			      : (lv.expires_ns - now + NS_PER_S - 1) / NS_PER_S;
	d->log = filter_log_gate(f, src.addr, now);
	if (d->log && f->active == FILTER_ACTIVE_XDP) {
		/* Name the ban in the log line; the trie does not return the
		 * matched key, so this walks it (once per log_interval). */
		struct pf_lpm_key bk;
		struct filter_net bn;

		if (filter_bpf_list_match(f->bpf, FILTER_BPF_BAN, src.addr, &bk,
					  &lv) == 1) {
			memcpy(bn.addr, bk.addr, 16);
			bn.prefixlen = bk.prefixlen;
			filter_format_net(&bn, d->net, sizeof(d->net));
		}
	}
deny:
	if (f->cfg.dry_run) {
		f->admit[PF_STAT_DRY_RUN]++;
		d->dry_run = v;
		v = FILTER_PASS;
		goto out;
	}
	d->verdict = v;
	return v;
pass:
	f->admit[PF_STAT_PASSED]++;
out:
	d->verdict = v;
	return v;
}

/* ---- bans and allow entries ------------------------------------------ */

/* Refuses networks wider than an IPv4 /8 or IPv6 /16, and those the allow
 * list covers entirely (1). Returns 0, 1, or -1 with err. */
static int
filter_ban_check(struct filter *f, const struct filter_net *net, char *err,
		 size_t errlen)
{
	struct pf_list_value lv;

	if (filter_net_is_v4(net) ? net->prefixlen < 96 + BAN_MIN_V4
				  : net->prefixlen < BAN_MIN_V6) {
		snprintf(err, errlen,
			 "network too broad to ban (at most an "
			 "IPv4 /%d or an IPv6 /%d)",
			 BAN_MIN_V4, BAN_MIN_V6);
		return -1;
	}
	/* Lookups with the network's own length only see entries at most
	 * that long: a hit is an allow entry covering all of net. */
	if (filter_table_match(&f->allow, net->addr, net->prefixlen,
			       filter_now(f)) != NULL)
		return 1;
	if (f->bpf != NULL) {
		struct pf_lpm_key key;

		filter_net_key(net, &key);
		if (filter_bpf_list_lookup(f->bpf, FILTER_BPF_ALLOW, &key,
					   &lv) == 1)
			return 1;
	}
	return 0;
}

int
filter_ban(struct filter *f, const struct filter_net *n, uint64_t seconds,
	   enum filter_reason reason, char *err, size_t errlen)
{
	struct filter_net net = *n;
	struct pf_list_value v;
	struct pf_lpm_key key;
	struct filter_banrec rec;
	uint64_t now = filter_now(f);
	int rc;

	filter_net_mask(net.addr, net.prefixlen);
	rc = filter_ban_check(f, &net, err, errlen);
	if (rc != 0)
		return rc;
	memset(&v, 0, sizeof(v));
	v.created_ns = now;
	v.expires_ns = seconds ? now + seconds * NS_PER_S : 0;
	v.reason = (uint32_t)reason;
	filter_value_to_rec(f, &net, &v, &rec);

	if (f->active == FILTER_ACTIVE_ADMIN && f->bf.path[0] != '\0') {
		/* posternctl: edit the file now; posternd follows at once. */
		filter_banfile_queue(&f->bf, 0, &rec);
		if (filter_bans_flush(f) < 0) {
			f->bf.n_pending = 0;
			snprintf(err, errlen, "cannot update %.200s",
				 f->bf.path);
			return -1;
		}
	} else {
		filter_banfile_queue(&f->bf, 0, &rec);
	}
	if (f->bpf != NULL) {
		filter_net_key(&net, &key);
		if (filter_bpf_list_put(f->bpf, FILTER_BPF_BAN, &key, &v) < 0) {
			snprintf(err, errlen, "ban map: %s", strerror(errno));
			return -1;
		}
	} else if (f->active == FILTER_ACTIVE_USERSPACE) {
		uint8_t k17[17];
		struct filter_table_entry *e;

		filter_key17(&net, k17);
		e = filter_table_insert(&f->bans, k17);
		if (e == NULL) {
			snprintf(err, errlen, "ban list full");
			return -1;
		}
		v.hits = e->v.list.hits;
		e->v.list = v;
	}
	return 0;
}

int
filter_unban(struct filter *f, const struct filter_net *n, char *err,
	     size_t errlen)
{
	struct filter_net net = *n;
	struct pf_lpm_key key;
	struct filter_banrec rec;
	int found = 0;

	filter_net_mask(net.addr, net.prefixlen);
	memset(&rec, 0, sizeof(rec));
	rec.net = net;
	if (f->bf.path[0] != '\0') {
		struct filter_banlist bl = {0};

		/* Was it in the file? (Read under the lock, as posternctl
		 * may be writing.) */
		if (filter_banfile_lock(&f->bf, LOCK_SH) == 0) {
			filter_banfile_read(&f->bf, &bl);
			filter_banfile_unlock(&f->bf);
		}
		filter_banfile_apply(&f->bf, &bl);
		found = filter_banlist_find(&bl, &net) != NULL;
		filter_banlist_free(&bl);
		filter_banfile_queue(&f->bf, 1, &rec);
		if (f->active == FILTER_ACTIVE_ADMIN &&
		    filter_bans_flush(f) < 0) {
			f->bf.n_pending = 0;
			snprintf(err, errlen, "cannot update %.200s",
				 f->bf.path);
			return -1;
		}
	}
	if (f->bpf != NULL) {
		filter_net_key(&net, &key);
		if (filter_bpf_list_del(f->bpf, FILTER_BPF_BAN, &key) == 0)
			found = 1;
		else if (errno != ENOENT) {
			snprintf(err, errlen, "ban map: %s", strerror(errno));
			return -1;
		}
	} else if (f->active == FILTER_ACTIVE_USERSPACE) {
		uint8_t k17[17];
		struct filter_table_entry *e;

		filter_key17(&net, k17);
		e = filter_table_find(&f->bans, k17);
		if (e != NULL) {
			filter_table_del(&f->bans, e);
			found = 1;
		}
	}
	return found ? 0 : 1;
}

int
filter_allow(struct filter *f, const struct filter_net *n, char *err,
	     size_t errlen)
{
	struct filter_net net = *n;
	struct pf_list_value v;
	struct pf_lpm_key key;

	filter_net_mask(net.addr, net.prefixlen);
	memset(&v, 0, sizeof(v));
	v.created_ns = filter_now(f);
	if (f->bpf != NULL) {
		filter_net_key(&net, &key);
		if (filter_bpf_list_put(f->bpf, FILTER_BPF_ALLOW, &key, &v) <
		    0) {
			snprintf(err, errlen, "allow map: %s", strerror(errno));
			return -1;
		}
	} else if (f->active == FILTER_ACTIVE_ADMIN) {
		snprintf(err, errlen,
			 "the filter runs in user space: add the "
			 "network to [filter] allow instead");
		return -1;
	}
	if (f->active != FILTER_ACTIVE_ADMIN) {
		uint8_t k17[17];
		struct filter_table_entry *e;

		filter_key17(&net, k17);
		e = filter_table_insert(&f->allow, k17);
		if (e == NULL) {
			snprintf(err, errlen, "allow list full");
			return -1;
		}
		e->v.list = v;
	}
	return 0;
}

static void
filter_list_one(struct list_ctx *c, const struct filter_net *net,
		const struct pf_list_value *v)
{
	struct filter_list_info info;

	if (v->expires_ns != 0 && v->expires_ns <= c->now)
		return;
	memset(&info, 0, sizeof(info));
	info.net = *net;
	filter_format_net(net, info.text, sizeof(info.text));
	info.reason = (enum filter_reason)v->reason;
	info.expires_in_s =
	    v->expires_ns == 0
		? 0
		: (v->expires_ns - c->now + NS_PER_S - 1) / NS_PER_S;
	info.age_s =
	    c->now > v->created_ns ? (c->now - v->created_ns) / NS_PER_S : 0;
	info.hits = v->hits;
	c->fn(&info, c->arg);
	c->n++;
}

static int
filter_list_map_cb(const struct pf_lpm_key *key,
		   const struct pf_list_value *val, void *arg)
{
	struct filter_net net;

	memcpy(net.addr, key->addr, 16);
	net.prefixlen = key->prefixlen;
	filter_list_one(arg, &net, val);
	return 0;
}

static int
filter_list(struct filter *f, enum filter_bpf_list which, filter_list_fn fn,
	    void *arg)
{
	struct list_ctx c = {f, fn, arg, filter_now(f), 0};
	struct filter_table *t = which == FILTER_BPF_BAN ? &f->bans : &f->allow;
	struct filter_net net;
	size_t i;

	if (f->bpf != NULL) {
		if (filter_bpf_list_walk(f->bpf, which, filter_list_map_cb,
					 &c) < 0)
			return -1;
		return c.n;
	}
	if (f->active == FILTER_ACTIVE_ADMIN) {
		struct filter_banlist bl = {0};
		struct pf_list_value v;

		if (filter_banfile_lock(&f->bf, LOCK_SH) < 0)
			return -1;
		filter_banfile_read(&f->bf, &bl);
		filter_banfile_unlock(&f->bf);
		filter_banlist_sort(&bl);
		for (i = 0; i < bl.n; i++) {
			filter_rec_to_value(f, &bl.v[i], &v);
			filter_list_one(&c, &bl.v[i].net, &v);
		}
		filter_banlist_free(&bl);
		return c.n;
	}
	for (i = 0; i < t->cap; i++) {
		if (!t->tab[i].used)
			continue;
		filter_key_net(t->tab[i].key, &net);
		filter_list_one(&c, &net, &t->tab[i].v.list);
	}
	return c.n;
}

int
filter_list_bans(struct filter *f, filter_list_fn fn, void *arg)
{
	return filter_list(f, FILTER_BPF_BAN, fn, arg);
}

int
filter_list_allow(struct filter *f, filter_list_fn fn, void *arg)
{
	return filter_list(f, FILTER_BPF_ALLOW, fn, arg);
}

/* ---- status ---------------------------------------------------------- */

static void
filter_top_add(struct top_ctx *c, const uint8_t key[16], unsigned len,
	       const struct pf_source *s)
{
	struct filter_status *st = c->st;
	struct filter_source_info *t;
	struct filter_net net;
	size_t i;

	/* Keep the FILTER_TOP_MAX most dropped (then most seen) sources. */
	if (st->n_top == FILTER_TOP_MAX) {
		t = &st->top[FILTER_TOP_MAX - 1];
		if (s->syn_dropped < t->dropped ||
		    (s->syn_dropped == t->dropped && s->syn_total <= t->total))
			return;
		st->n_top--;
	}
	for (i = st->n_top; i > 0; i--) {
		t = &st->top[i - 1];
		if (s->syn_dropped < t->dropped ||
		    (s->syn_dropped == t->dropped && s->syn_total <= t->total))
			break;
		st->top[i] = *t;
	}
	t = &st->top[i];
	memcpy(net.addr, key, 16);
	net.prefixlen = len;
	filter_format_net(&net, t->net, sizeof(t->net));
	t->total = s->syn_total;
	t->dropped = s->syn_dropped;
	t->idle_s = c->now > s->last_ns ? (c->now - s->last_ns) / NS_PER_S : 0;
	st->n_top++;
}

static void
filter_top_map_cb(const uint8_t key[16], const struct pf_source *s, void *arg)
{
	struct top_ctx *c = arg;
	struct filter_net net;

	memcpy(net.addr, key, 16);
	net.prefixlen = 128;
	filter_top_add(c, key,
		       filter_net_is_v4(&net) ? 96 + c->st->ipv4_prefix
					      : c->st->ipv6_prefix,
		       s);
}

static void
filter_count_cb(const struct filter_list_info *info, void *arg)
{
	(void)info;
	(*(size_t *)arg)++;
}

int
filter_status(struct filter *f, struct filter_status *st)
{
	struct top_ctx c = {st, f, 0};
	size_t i;

	memset(st, 0, sizeof(*st));
	st->mode = filter_mode_name(f);
	strlcpy(st->reason, f->reason, sizeof(st->reason));
	st->dry_run = f->cfg.dry_run;
	st->rate = f->cfg.rate;
	st->rate_period_s = f->cfg.rate_period_s;
	st->burst = f->cfg.burst;
	st->ipv4_prefix = f->cfg.ipv4_prefix;
	st->ipv6_prefix = f->cfg.ipv6_prefix;
	memcpy(st->ports, f->cfg.ports, sizeof(st->ports));
	st->n_ports = f->cfg.n_ports;
	memcpy(st->admit, f->admit, sizeof(st->admit));
	st->have_admit = f->active != FILTER_ACTIVE_ADMIN;
	if (f->active == FILTER_ACTIVE_ADMIN) {
		st->mode = f->bpf ? "xdp" : "userspace";
		if (f->bpf == NULL)
			strlcpy(st->reason,
				"no active XDP filter; live "
				"counters are inside posternd",
				sizeof(st->reason));
	}
	if (f->bpf != NULL && f->active == FILTER_ACTIVE_ADMIN) {
		/* What the running filter uses, from its config map. */
		uint32_t p, n = 0;

		st->dry_run = (f->pfc.flags & PF_F_DRY_RUN) != 0;
		st->ipv4_prefix = f->pfc.v4_prefix;
		st->ipv6_prefix = f->pfc.v6_prefix;
		st->burst =
		    f->pfc.interval_ns
			? (uint32_t)(f->pfc.burst_ns / f->pfc.interval_ns) + 1
			: 0;
		st->rate_period_s = 1;
		st->rate = f->pfc.interval_ns
			       ? (uint32_t)(NS_PER_S / f->pfc.interval_ns)
			       : 0;
		if (st->rate == 0 && f->pfc.interval_ns) {
			st->rate_period_s = 3600;
			st->rate =
			    (uint32_t)(3600 * NS_PER_S / f->pfc.interval_ns);
		}
		for (p = 0; p < 65536 && n < FILTER_MAX_PORTS; p++)
			if (f->pfc.ports[p >> 6] & (1ULL << (p & 63)))
				st->ports[n++] = (uint16_t)p;
		st->n_ports = n;
	}
	for (i = 0; i < f->cfg.n_interfaces && i < FILTER_MAX_IFACES; i++) {
		strlcpy(st->ifaces[i].name, f->cfg.interfaces[i],
			sizeof(st->ifaces[i].name));
		st->ifaces[i].xdp = filter_bpf_mode_name(
		    f->bpf ? filter_bpf_query(f->cfg.interfaces[i])
			   : FILTER_BPF_XDP_NONE);
	}
	st->n_ifaces = i;
	c.now = filter_now(f);
	if (f->bpf != NULL) {
		st->have_kernel = filter_bpf_stats(f->bpf, st->kernel) == 0;
		filter_bpf_sources_walk(f->bpf, filter_top_map_cb, &c);
	} else {
		for (i = 0; i < f->src.cap; i++)
			if (f->src.tab[i].used)
				filter_top_add(&c, f->src.tab[i].key,
					       f->src.tab[i].key[16],
					       &f->src.tab[i].v.src);
	}
	filter_list_bans(f, filter_count_cb, &st->n_bans);
	filter_list_allow(f, filter_count_cb, &st->n_allow);
	return 0;
}

void
filter_status_print(const struct filter_status *st, FILE *out)
{
	size_t i;
	int k;

	fprintf(out, "mode: %s\n", st->mode);
	if (st->reason[0] != '\0')
		fprintf(out, "reason: %s\n", st->reason);
	fprintf(out, "rate: %u/%us\nburst: %u\nprefix: ipv4 /%u, ipv6 /%u\n",
		st->rate, st->rate_period_s, st->burst, st->ipv4_prefix,
		st->ipv6_prefix);
	fprintf(out, "dry_run: %s\nports:", st->dry_run ? "yes" : "no");
	for (i = 0; i < st->n_ports; i++)
		fprintf(out, "%s%u", i ? ", " : " ", st->ports[i]);
	fprintf(out, "\n");
	for (i = 0; i < st->n_ifaces; i++)
		fprintf(out, "interface: %s xdp=%s\n", st->ifaces[i].name,
			st->ifaces[i].xdp);
	fprintf(out, "bans: %zu\nallow: %zu\n", st->n_bans, st->n_allow);
	if (st->have_kernel)
		for (k = 0; k < FILTER_STAT_MAX; k++)
			fprintf(out, "kernel.%s: %" PRIu64 "\n",
				filter_stat_name(k), st->kernel[k]);
	for (k = 0; st->have_admit && k < FILTER_STAT_MAX; k++)
		if (k != PF_STAT_PARSE_ERR && k != PF_STAT_EVENTS_LOST)
			fprintf(out, "accept.%s: %" PRIu64 "\n",
				filter_stat_name(k), st->admit[k]);
	for (i = 0; i < st->n_top; i++)
		fprintf(out,
			"source: %s total=%" PRIu64 " dropped=%" PRIu64
			" idle=%" PRIu64 "s\n",
			st->top[i].net, st->top[i].total, st->top[i].dropped,
			st->top[i].idle_s);
}

/* ---- events and housekeeping ----------------------------------------- */

/* A global cap on drop log lines, so that a flood from many sources does
 * not flood the log: LOG_LINES_PER_S, then one summary line. */
static int
filter_log_allowed(struct filter *f, uint64_t now)
{
	if (now - f->log_window >= NS_PER_S) {
		if (f->log_suppressed > 0)
			log_info("filter suppressed=%" PRIu64 " drop events",
				 f->log_suppressed);
		f->log_window = now;
		f->log_lines = 0;
		f->log_suppressed = 0;
	}
	if (f->log_lines >= LOG_LINES_PER_S) {
		f->log_suppressed++;
		return 0;
	}
	f->log_lines++;
	return 1;
}

static void
filter_on_event(const struct pf_event *ev, void *arg)
{
	struct filter *f = arg;
	char ifname[IF_NAMESIZE] = "?";
	struct filter_net net;
	char addr[FILTER_NET_STRLEN];
	char *slash;

	if (!filter_log_allowed(f, filter_now(f)))
		return;
	memcpy(net.addr, ev->addr, 16);
	net.prefixlen = 128;
	filter_format_net(&net, addr, sizeof(addr));
	if ((slash = strchr(addr, '/')) != NULL)
		*slash = '\0';
	if (ev->ifindex == 0 || if_indextoname(ev->ifindex, ifname) == NULL)
		strlcpy(ifname, "?", sizeof(ifname));
	log_info("filter dropped addr=%s port=%u reason=%s count=%" PRIu64
		 " interface=%s%s",
		 addr, ev->dport, ev->kind == PF_EVENT_BAN ? "banned" : "rate",
		 (uint64_t)ev->count, ifname,
		 ev->dry_run ? " dry_run=yes" : "");
}

int
filter_events_fd(struct filter *f)
{
	return f->epfd;
}

int
filter_events_consume(struct filter *f)
{
	char buf[4096]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	int n = 0, changed = 0;
	ssize_t r;

	if (f->bpf != NULL && f->active == FILTER_ACTIVE_XDP) {
		int k = filter_bpf_events_consume(f->bpf, filter_on_event, f);

		if (k > 0)
			n += k;
	}
	if (f->bf.inotify_fd >= 0) {
		while ((r = read(f->bf.inotify_fd, buf, sizeof(buf))) > 0) {
			char *p = buf;

			while (p < buf + r) {
				const struct inotify_event *ie =
				    (const void *)p;

				if (ie->len > 0 &&
				    strcmp(ie->name, f->bf.base) == 0)
					changed = 1;
				p += sizeof(*ie) + ie->len;
			}
		}
	}
	if (changed && filter_banfile_changed(&f->bf)) {
		filter_bans_reload(f);
		n++;
	}
	return n;
}

static void
filter_gc(struct filter *f, uint64_t now)
{
	size_t i;

	if (f->active == FILTER_ACTIVE_USERSPACE) {
		for (i = 0; i < f->bans.cap;) {
			struct filter_table_entry *e = &f->bans.tab[i];

			if (e->used && e->v.list.expires_ns != 0 &&
			    e->v.list.expires_ns <= now)
				filter_table_del(&f->bans, e);
			else
				i++;
		}
		for (i = 0; i < f->src.cap;) {
			struct filter_table_entry *e = &f->src.tab[i];

			if (e->used && e->v.src.tat <= now &&
			    now - e->v.src.last_ns > SOURCE_IDLE_NS)
				filter_table_del(&f->src, e);
			else
				i++;
		}
		return;
	}
	if (f->active == FILTER_ACTIVE_XDP &&
	    now - f->last_xdp_gc >= XDP_GC_INTERVAL_NS) {
		struct map_entries me = {0};
		struct pf_lpm_key key;

		f->last_xdp_gc = now;
		filter_bpf_list_walk(f->bpf, FILTER_BPF_BAN,
				     filter_collect_entry, &me);
		for (i = 0; i < me.n; i++) {
			if (me.v[i].v.expires_ns == 0 ||
			    me.v[i].v.expires_ns > now)
				continue;
			filter_net_key(&me.v[i].net, &key);
			filter_bpf_list_del(f->bpf, FILTER_BPF_BAN, &key);
		}
		free(me.v);
	}
}

void
filter_tick(struct filter *f)
{
	uint64_t now = filter_now(f);

	if (f->active == FILTER_ACTIVE_ADMIN)
		return;
	filter_gc(f, now);
	if (f->bf.path[0] == '\0')
		return;
	if (f->bf.n_pending > 0)
		filter_bans_flush(f);
	else if (filter_banfile_changed(&f->bf))
		filter_bans_reload(f);
}
