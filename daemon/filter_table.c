/* The open-addressing hash table behind the user-space filter: ban and
 * allow lists keyed by network, and the limiter's per-source state. Linear
 * probing with backward-shift deletion (no tombstones), a random seed per
 * table. */
#include <sys/random.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "filter_table.h"
#include "util.h"

#define TAB_MIN_CAP 64

/* A keyed mix (random seed per table), so that chosen source addresses
 * cannot be precomputed into long probe chains. */
uint64_t
filter_table_hash(const uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL), w;
	size_t i, k;

	for (i = 0; i < n; i += 8) {
		k = n - i < 8 ? n - i : 8;
		w = 0;
		memcpy(&w, p + i, k);
		h ^= w;
		h *= 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 31;
	}
	h ^= h >> 29;
	h *= 0x94d049bb133111ebULL;
	return h ^ (h >> 32);
}

void
filter_table_init(struct filter_table *t, size_t max)
{
	memset(t, 0, sizeof(*t));
	t->max = max;
	if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(t->seed))
		t->seed = util_now_ns() ^ (uint64_t)getpid();
}

void
filter_table_free(struct filter_table *t)
{
	free(t->tab);
	t->tab = NULL;
	t->cap = t->n = 0;
	memset(t->by_len, 0, sizeof(t->by_len));
}

void
filter_table_clear(struct filter_table *t)
{
	if (t->tab != NULL)
		memset(t->tab, 0, t->cap * sizeof(t->tab[0]));
	t->n = 0;
	memset(t->by_len, 0, sizeof(t->by_len));
}

struct filter_table_entry *
filter_table_find(const struct filter_table *t, const uint8_t key[17])
{
	size_t i, mask;

	if (t->cap == 0)
		return NULL;
	mask = t->cap - 1;
	for (i = filter_table_hash(key, 17, t->seed) & mask; t->tab[i].used;
	     i = (i + 1) & mask)
		if (memcmp(t->tab[i].key, key, 17) == 0)
			return &t->tab[i];
	return NULL;
}

/* Returns the entry for key: the existing one, or a new zeroed one; NULL
 * when the table holds max entries. Pointers into the table stay valid
 * until the next insert or delete. */
struct filter_table_entry *
filter_table_insert(struct filter_table *t, const uint8_t key[17])
{
	struct filter_table_entry *e = filter_table_find(t, key);
	size_t i, mask;

	if (e != NULL)
		return e;
	if (t->n >= t->max)
		return NULL;
	if ((t->n + 1) * 4 > t->cap * 3) {
		/* Grow (x2) and rehash; capacity stays a power of two. */
		struct filter_table old = *t;
		size_t j;

		t->cap = old.cap ? old.cap * 2 : TAB_MIN_CAP;
		t->tab = xcalloc(t->cap, sizeof(t->tab[0]));
		for (j = 0; j < old.cap; j++) {
			if (!old.tab[j].used)
				continue;
			mask = t->cap - 1;
			for (i = filter_table_hash(old.tab[j].key, 17,
						   t->seed) &
				 mask;
			     t->tab[i].used; i = (i + 1) & mask)
				;
			t->tab[i] = old.tab[j];
		}
		free(old.tab);
	}
	mask = t->cap - 1;
	for (i = filter_table_hash(key, 17, t->seed) & mask; t->tab[i].used;
	     i = (i + 1) & mask)
		;
	e = &t->tab[i];
	memset(e, 0, sizeof(*e));
	memcpy(e->key, key, 17);
	e->used = 1;
	t->n++;
	t->by_len[key[16]]++;
	return e;
}

/* Backward-shift deletion: no tombstones, probe chains stay short. An
 * entry from further on may move into *e, so a sweep re-examines it. */
void
filter_table_del(struct filter_table *t, struct filter_table_entry *e)
{
	size_t mask = t->cap - 1, i = (size_t)(e - t->tab), j = i, k;

	t->by_len[e->key[16]]--;
	t->n--;
	for (;;) {
		j = (j + 1) & mask;
		if (!t->tab[j].used)
			break;
		k = filter_table_hash(t->tab[j].key, 17, t->seed) & mask;
		/* Move j back to i unless its home lies cyclically in
		 * (i, j]. */
		if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		t->tab[i] = t->tab[j];
		i = j;
	}
	memset(&t->tab[i], 0, sizeof(t->tab[i]));
}

/* Longest entry containing addr with a prefix length <= maxlen that has
 * not expired at now (list entries only). */
struct filter_table_entry *
filter_table_match(const struct filter_table *t, const uint8_t addr[16],
		   unsigned maxlen, uint64_t now)
{
	struct filter_table_entry *e;
	uint8_t key[17];
	int len;

	for (len = (int)maxlen; len >= 0; len--) {
		if (t->by_len[len] == 0)
			continue;
		memcpy(key, addr, 16);
		filter_net_mask(key, (unsigned)len);
		key[16] = (uint8_t)len;
		e = filter_table_find(t, key);
		if (e == NULL)
			continue;
		/* The longest match decides, as in the kernel's trie. */
		if (e->v.list.expires_ns != 0 && e->v.list.expires_ns <= now)
			return NULL;
		return e;
	}
	return NULL;
}
