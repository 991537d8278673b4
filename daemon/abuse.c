/* Abuse accounting: a small table of recent events per client address and
 * kind, with a sliding window. Issue 4 turns the counts into bans. */
#include <string.h>

#include "abuse.h"
#include "log.h"
#include "util.h"

#define ABUSE_SLOTS 1024
#define ABUSE_WINDOW_MS (15 * 60 * 1000)

struct abuse_slot {
	char addr[64];
	enum abuse_kind kind;
	unsigned count;
	uint64_t first_ms;
};

static struct abuse_slot abuse_table[ABUSE_SLOTS];

static const char *abuse_kind_name(enum abuse_kind kind);
static unsigned abuse_hash(const char *addr, enum abuse_kind kind);

static const char *
abuse_kind_name(enum abuse_kind kind)
{
	switch (kind) {
	case ABUSE_AUTH_FAILURE: return "auth-failure";
	case ABUSE_UNKNOWN_RECIPIENT: return "unknown-recipient";
	case ABUSE_PREGREET: return "pregreet";
	case ABUSE_SMUGGLING: return "smuggling";
	case ABUSE_BAD_COMMANDS: return "bad-commands";
	}
	return "unknown";
}

static unsigned
abuse_hash(const char *addr, enum abuse_kind kind)
{
	unsigned h = 2166136261u ^ (unsigned)kind;

	for (; *addr; addr++)
		h = (h ^ (unsigned char)*addr) * 16777619u;
	return h % ABUSE_SLOTS;
}

unsigned
abuse_report(struct server *srv, const struct peer *peer, enum abuse_kind kind,
	     const char *account)
{
	struct abuse_slot *slot = &abuse_table[abuse_hash(peer->addr, kind)];
	uint64_t now = util_now_ms();

	(void)srv;
	/* One slot per hash bucket: a collision restarts the count, which
	 * only ever under-counts. */
	if (slot->kind != kind || strcmp(slot->addr, peer->addr) != 0 ||
	    now - slot->first_ms > ABUSE_WINDOW_MS) {
		strlcpy(slot->addr, peer->addr, sizeof(slot->addr));
		slot->kind = kind;
		slot->count = 0;
		slot->first_ms = now;
	}
	slot->count++;
	log_info("abuse kind=%s addr=%s account=%s count=%u",
		 abuse_kind_name(kind), peer->addr, account ? account : "-",
		 slot->count);
	return slot->count;
}
