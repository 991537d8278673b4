/* Abuse accounting: recent events per source and per account in fixed
 * windows, turned into bans in the connection filter with durations that
 * grow for repeat offenders (fail2ban's "bantime.increment", without a
 * database: the memory is this process's, the bans themselves persist). */
#include <sys/queue.h>
#include <sys/random.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abuse.h"
#include "filter.h"
#include "filter_table.h"
#include "log.h"
#include "util.h"

#define ABUSE_BUCKETS 4096
#define ABUSE_MAX_SOURCES 16384
#define ABUSE_MAX_ACCOUNTS 4096
#define ABUSE_ACCOUNT_SOURCES 32 /* contributors remembered per account */
#define ABUSE_ACCOUNT_LEN 256

/* What a source did recently, and its ban history. */
struct abuse_source {
	struct filter_net net; /* what a ban covers */
	unsigned count[ABUSE_KINDS];
	uint64_t first_ms[ABUSE_KINDS]; /* start of each kind's window */
	unsigned bans;			/* ours, each within memory of the
					   previous one's end */
	uint64_t ban_until_ms;		/* end of our last ban; 0 = none */
};

/* Failed logins on one account, from whichever sources. */
struct abuse_account {
	unsigned count;
	uint64_t first_ms;
	struct filter_net src[ABUSE_ACCOUNT_SOURCES];
	size_t n_src;
};

/* A record of either map: hash chain, LRU order, key stored behind. */
struct abuse_node {
	struct abuse_node *hnext;
	TAILQ_ENTRY(abuse_node) lru;
	uint64_t keep_until_ms; /* forgettable after this */
	size_t keylen;
	union {
		struct abuse_source src;
		struct abuse_account acct;
	} u;
	uint8_t key[]; /* keylen bytes */
};

TAILQ_HEAD(abuse_lru, abuse_node);

/* A hash map with least-recently-used eviction: memory stays bounded
 * whatever an attacker does, and forgetting only shortens a later ban. */
struct abuse_map {
	struct abuse_node *bucket[ABUSE_BUCKETS];
	struct abuse_lru lru;
	size_t n, max;
};

static struct abuse_map abuse_sources = {
    .lru = TAILQ_HEAD_INITIALIZER(abuse_sources.lru),
    .max = ABUSE_MAX_SOURCES,
};
static struct abuse_map abuse_accounts = {
    .lru = TAILQ_HEAD_INITIALIZER(abuse_accounts.lru),
    .max = ABUSE_MAX_ACCOUNTS,
};
static uint64_t (*abuse_clock)(void) = util_now_ms;

static const char *abuse_kind_name(enum abuse_kind kind);
static enum filter_reason abuse_kind_reason(enum abuse_kind kind);
static uint64_t abuse_threshold(const struct config *cfg, enum abuse_kind kind);
static unsigned abuse_hash(const uint8_t *key, size_t len);
static struct abuse_node *abuse_map_get(struct abuse_map *m, const uint8_t *key,
					size_t len, uint64_t now);
static void abuse_map_del(struct abuse_map *m, struct abuse_node *node);
static void abuse_map_clear(struct abuse_map *m);
static void abuse_source_key(const struct config *cfg,
			     const struct filter_net *addr,
			     struct filter_net *net);
static struct abuse_node *abuse_source_get(const struct config *cfg,
					   const struct filter_net *net,
					   uint64_t now);
static void abuse_source_keep(const struct config *cfg, struct abuse_node *node,
			      uint64_t now);
static uint64_t abuse_ban_seconds(const struct config *cfg, unsigned level);
static void abuse_ban(struct server *srv, struct abuse_node *node,
		      enum abuse_kind kind, const char *addr,
		      const char *account, uint64_t now);
static void abuse_account_failed(struct server *srv, const char *account,
				 const struct filter_net *net, uint64_t now);
static void abuse_log_safe(const char *in, char *out, size_t len);

static const char *
abuse_kind_name(enum abuse_kind kind)
{
	switch (kind) {
	case ABUSE_AUTH_FAILURE:
		return "auth-failure";
	case ABUSE_UNKNOWN_RECIPIENT:
		return "unknown-recipient";
	case ABUSE_PREGREET:
		return "pregreet";
	case ABUSE_SMUGGLING:
		return "smuggling";
	case ABUSE_BAD_COMMANDS:
		return "bad-commands";
	}
	return "unknown";
}

static enum filter_reason
abuse_kind_reason(enum abuse_kind kind)
{
	switch (kind) {
	case ABUSE_AUTH_FAILURE:
		return FILTER_REASON_AUTH;
	case ABUSE_UNKNOWN_RECIPIENT:
		return FILTER_REASON_HARVEST;
	case ABUSE_PREGREET:
		return FILTER_REASON_PREGREET;
	case ABUSE_SMUGGLING:
		return FILTER_REASON_SMUGGLING;
	case ABUSE_BAD_COMMANDS:
		return FILTER_REASON_BAD_COMMANDS;
	}
	return FILTER_REASON_OTHER;
}

/* Events of a kind from one source that earn a ban; 0 = never. */
static uint64_t
abuse_threshold(const struct config *cfg, enum abuse_kind kind)
{
	switch (kind) {
	case ABUSE_AUTH_FAILURE:
		return cfg->abuse.auth_failures;
	case ABUSE_UNKNOWN_RECIPIENT:
		return cfg->abuse.unknown_recipients;
	case ABUSE_PREGREET:
		/* pregreet_action = log asks to watch, not to act. */
		return cfg->smtp_pregreet_reject ? cfg->abuse.pregreet : 0;
	case ABUSE_SMUGGLING:
		return cfg->abuse.smuggling;
	case ABUSE_BAD_COMMANDS:
		return cfg->abuse.bad_commands;
	}
	return 0;
}

/* ---- the maps -------------------------------------------------------- */

/* Keyed, because clients choose the keys (account names): they must not
 * be able to pile their records into one chain. */
static unsigned
abuse_hash(const uint8_t *key, size_t len)
{
	static uint64_t seed;
	static int seeded;

	if (!seeded) {
		if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
			seed = util_now_ns();
		seeded = 1;
	}
	return (unsigned)(filter_table_hash(key, len, seed) % ABUSE_BUCKETS);
}

/* The record for key, created (zeroed) when missing, and made the most
 * recently used. Records past their keep time go first; when the map is
 * still full, the least recently used one is dropped. */
static struct abuse_node *
abuse_map_get(struct abuse_map *m, const uint8_t *key, size_t len, uint64_t now)
{
	struct abuse_node *node, *head;
	unsigned h = abuse_hash(key, len);

	for (node = m->bucket[h]; node != NULL; node = node->hnext)
		if (node->keylen == len && memcmp(node->key, key, len) == 0)
			break;
	if (node != NULL) {
		TAILQ_REMOVE(&m->lru, node, lru);
		TAILQ_INSERT_TAIL(&m->lru, node, lru);
		return node;
	}
	while ((head = TAILQ_FIRST(&m->lru)) != NULL &&
	       (head->keep_until_ms <= now || m->n >= m->max))
		abuse_map_del(m, head);
	node = xcalloc(1, sizeof(*node) + len);
	node->keylen = len;
	memcpy(node->key, key, len);
	node->hnext = m->bucket[h];
	m->bucket[h] = node;
	TAILQ_INSERT_TAIL(&m->lru, node, lru);
	m->n++;
	return node;
}

static void
abuse_map_del(struct abuse_map *m, struct abuse_node *node)
{
	struct abuse_node **pp =
	    &m->bucket[abuse_hash(node->key, node->keylen)];

	while (*pp != node)
		pp = &(*pp)->hnext;
	*pp = node->hnext;
	TAILQ_REMOVE(&m->lru, node, lru);
	m->n--;
	free(node);
}

static void
abuse_map_clear(struct abuse_map *m)
{
	struct abuse_node *node;

	while ((node = TAILQ_FIRST(&m->lru)) != NULL)
		abuse_map_del(m, node);
}

void
abuse_reset(void)
{
	abuse_map_clear(&abuse_sources);
	abuse_map_clear(&abuse_accounts);
}

void
abuse_set_clock(uint64_t (*now_ms)(void))
{
	abuse_clock = now_ms != NULL ? now_ms : util_now_ms;
}

/* ---- sources and bans ------------------------------------------------ */

/* The network a source stands for: an IPv4 address, or the IPv6 prefix
 * that one subscriber usually holds whole (a /64), so that rotating
 * addresses inside it gains nothing. */
static void
abuse_source_key(const struct config *cfg, const struct filter_net *addr,
		 struct filter_net *net)
{
	*net = *addr;
	if (!filter_net_is_v4(net))
		net->prefixlen = (unsigned)cfg->abuse.ban_ipv6_prefix;
	filter_net_mask(net->addr, net->prefixlen);
}

static struct abuse_node *
abuse_source_get(const struct config *cfg, const struct filter_net *net,
		 uint64_t now)
{
	uint8_t key[17];
	struct abuse_node *node;

	memcpy(key, net->addr, 16);
	key[16] = (uint8_t)net->prefixlen;
	node = abuse_map_get(&abuse_sources, key, sizeof(key), now);
	if (node->u.src.net.prefixlen == 0)
		node->u.src.net = *net;
	abuse_source_keep(cfg, node, now);
	return node;
}

/* A source is kept while its windows run and while a ban it got could
 * still make the next one longer. */
static void
abuse_source_keep(const struct config *cfg, struct abuse_node *node,
		  uint64_t now)
{
	uint64_t keep = now + cfg->abuse.window * 1000;
	uint64_t ban = node->u.src.ban_until_ms;

	if (ban != 0 && ban + cfg->abuse.ban_memory * 1000 > keep)
		keep = ban + cfg->abuse.ban_memory * 1000;
	node->keep_until_ms = keep;
}

/* ban_time * factor^level, at most ban_time_max. */
static uint64_t
abuse_ban_seconds(const struct config *cfg, unsigned level)
{
	uint64_t secs = cfg->abuse.ban_time;

	while (level-- > 0 && secs < cfg->abuse.ban_time_max)
		secs *= cfg->abuse.ban_time_factor;
	return secs < cfg->abuse.ban_time_max ? secs : cfg->abuse.ban_time_max;
}

/* Bans the source of node for its offence of kind, unless our own ban of
 * it still runs (a session that goes on misbehaving changes nothing).
 * The counts start again either way. */
static void
abuse_ban(struct server *srv, struct abuse_node *node, enum abuse_kind kind,
	  const char *addr, const char *account, uint64_t now)
{
	const struct config *cfg = srv->cfg;
	struct abuse_source *src = &node->u.src;
	enum filter_reason reason = abuse_kind_reason(kind);
	char net[FILTER_NET_STRLEN], dur[32], err[ERR_LEN], acct[80] = "";
	unsigned level = 0;
	uint64_t secs;
	int rc;

	memset(src->count, 0, sizeof(src->count));
	filter_format_net(&src->net, net, sizeof(net));
	if (account != NULL) {
		char safe[64];

		abuse_log_safe(account, safe, sizeof(safe));
		snprintf(acct, sizeof(acct), " account=%s", safe);
	}
	if (src->ban_until_ms > now) {
		log_debug("abuse already banned net=%s reason=%s", net,
			  filter_reason_name(reason));
		return;
	}
	if (src->ban_until_ms != 0 &&
	    now - src->ban_until_ms <= cfg->abuse.ban_memory * 1000)
		level = src->bans;
	secs = abuse_ban_seconds(cfg, level);
	abuse_format_duration(secs, dur, sizeof(dur));
	if (srv->filter == NULL) {
		log_info("abuse no-filter addr=%s net=%s reason=%s for=%s%s",
			 addr, net, filter_reason_name(reason), dur, acct);
		return;
	}
	rc = filter_ban(srv->filter, &src->net, secs, reason, err, sizeof(err));
	if (rc == 1) {
		/* The allow list exists so that the admin is never locked
		 * out: say what was spared, once per threshold reached. */
		log_info("abuse not-banned addr=%s net=%s reason=%s "
			 "allow-listed=yes%s",
			 addr, net, filter_reason_name(reason), acct);
		return;
	}
	if (rc < 0) {
		log_warnx("abuse ban addr=%s net=%s reason=%s failed: %s", addr,
			  net, filter_reason_name(reason), err);
		return;
	}
	src->bans = level + 1;
	src->ban_until_ms = now + secs * 1000;
	abuse_source_keep(cfg, node, now);
	log_info("abuse ban addr=%s net=%s reason=%s for=%s offence=%u%s", addr,
		 net, filter_reason_name(reason), dur, level + 1, acct);
}

/* Slow brute force: many sources, few tries each, one account. Past the
 * account's threshold every source that failed on it within the window
 * is banned, and so is each one that fails on it afterwards. */
static void
abuse_account_failed(struct server *srv, const char *account,
		     const struct filter_net *net, uint64_t now)
{
	const struct config *cfg = srv->cfg;
	struct abuse_account *a;
	struct abuse_node *node;
	char key[ABUSE_ACCOUNT_LEN], addr[FILTER_NET_STRLEN], *slash;
	size_t i;

	if (cfg->abuse.auth_failures_account == 0 || account == NULL ||
	    account[0] == '\0')
		return;
	/* Case does not make another account. */
	strlcpy(key, account, sizeof(key));
	util_lowercase(key);
	node = abuse_map_get(&abuse_accounts, (const uint8_t *)key, strlen(key),
			     now);
	node->keep_until_ms = now + cfg->abuse.window * 1000;
	a = &node->u.acct;
	if (a->count == 0 || now - a->first_ms > cfg->abuse.window * 1000) {
		a->count = 0;
		a->n_src = 0;
		a->first_ms = now;
	}
	a->count++;
	for (i = 0; i < a->n_src; i++)
		if (filter_net_cmp(&a->src[i], net) == 0)
			break;
	if (i == a->n_src) {
		if (a->n_src == ABUSE_ACCOUNT_SOURCES) {
			/* Forget the oldest contributor. */
			memmove(&a->src[0], &a->src[1],
				(a->n_src - 1) * sizeof(a->src[0]));
			a->n_src--;
		}
		a->src[a->n_src++] = *net;
	}
	if (a->count < cfg->abuse.auth_failures_account)
		return;
	for (i = 0; i < a->n_src; i++) {
		struct abuse_node *s = abuse_source_get(cfg, &a->src[i], now);

		filter_format_net(&a->src[i], addr, sizeof(addr));
		if ((slash = strchr(addr, '/')) != NULL)
			*slash = '\0';
		abuse_ban(srv, s, ABUSE_AUTH_FAILURE, addr, account, now);
	}
	/* Banned (or spared) now; later failures add and ban again. */
	a->n_src = 0;
}

unsigned
abuse_report(struct server *srv, const struct peer *peer, enum abuse_kind kind,
	     const char *account)
{
	const struct config *cfg = srv->cfg;
	uint64_t now = abuse_clock(), threshold;
	struct filter_net addr, net;
	struct abuse_node *node;
	struct abuse_source *src;
	unsigned count;
	char safe[64];

	abuse_log_safe(account ? account : "-", safe, sizeof(safe));
	if (filter_net_from_sockaddr((const struct sockaddr *)&peer->sa,
				     &addr) < 0) {
		log_info("abuse kind=%s addr=%s account=%s count=1",
			 abuse_kind_name(kind), peer->addr, safe);
		return 1;
	}
	abuse_source_key(cfg, &addr, &net);
	node = abuse_source_get(cfg, &net, now);
	src = &node->u.src;
	if (src->count[kind] == 0 ||
	    now - src->first_ms[kind] > cfg->abuse.window * 1000) {
		src->count[kind] = 0;
		src->first_ms[kind] = now;
	}
	count = ++src->count[kind];
	log_info("abuse kind=%s addr=%s account=%s count=%u",
		 abuse_kind_name(kind), peer->addr, safe, count);
	threshold = abuse_threshold(cfg, kind);
	if (threshold > 0 && count >= threshold)
		abuse_ban(srv, node, kind, peer->addr, NULL, now);
	if (kind == ABUSE_AUTH_FAILURE)
		abuse_account_failed(srv, account, &net, now);
	return count;
}

/* ---- text ------------------------------------------------------------ */

void
abuse_format_duration(uint64_t seconds, char *buf, size_t len)
{
	static const struct {
		uint64_t secs;
		char unit;
	} units[] = {
	    {604800, 'w'}, {86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
	size_t i, n = 0, parts = 0;
	int k;

	if (seconds == 0) {
		snprintf(buf, len, "0s");
		return;
	}
	buf[0] = '\0';
	/* Two units at most: "6d23h" says enough. */
	for (i = 0; i < sizeof(units) / sizeof(units[0]) && parts < 2; i++) {
		uint64_t q = seconds / units[i].secs;

		if (q == 0 && parts == 0)
			continue;
		if (q != 0) {
			k = snprintf(buf + n, len - n, "%" PRIu64 "%c", q,
				     units[i].unit);
			if (k < 0 || (size_t)k >= len - n)
				return;
			n += (size_t)k;
		}
		seconds -= q * units[i].secs;
		parts++;
		if (seconds == 0)
			break;
	}
}

/* An account name as the client sent it, made safe for a key=value log
 * line: printable ASCII without blanks, quotes or '=', at most len - 1. */
static void
abuse_log_safe(const char *in, char *out, size_t len)
{
	size_t i;

	for (i = 0; in[i] != '\0' && i + 1 < len; i++)
		out[i] = (in[i] > ' ' && in[i] < 0x7f && in[i] != '"' &&
			  in[i] != '=')
			     ? in[i]
			     : '?';
	out[i] = '\0';
}
