/* An open-addressing hash table for the user-space filter: keys are a
 * 16-byte address plus a prefix length (17 bytes); values are a list entry
 * (bans, allow) or a limiter source, as in the kernel's maps. */
#ifndef POSTERN_FILTER_TABLE_H
#define POSTERN_FILTER_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "filter_config.h"
#include "postern_filter.h"

struct filter_table_entry {
	uint8_t key[17]; /* masked address, prefix length */
	uint8_t used;
	uint8_t mark; /* free for the owner: sweep flag during a sync */
	union {
		struct pf_list_value list;
		struct pf_source src;
	} v;
};

/* Iterate with: for (i = 0; i < t->cap; i++) if (t->tab[i].used) ... */
struct filter_table {
	struct filter_table_entry *tab;
	size_t cap, n, max;
	uint64_t seed;
	uint32_t by_len[129]; /* entries per prefix length */
};

/* A keyed 64-bit hash of n bytes. */
uint64_t filter_table_hash(const uint8_t *p, size_t n, uint64_t seed);

/* An empty table that will hold at most max entries (it grows on demand).
 * free releases the memory; clear empties it. */
void filter_table_init(struct filter_table *t, size_t max);
void filter_table_free(struct filter_table *t);
void filter_table_clear(struct filter_table *t);

/* The entry for key, or NULL. */
struct filter_table_entry *filter_table_find(const struct filter_table *t,
					     const uint8_t key[17]);

/* The entry for key: the existing one, or a new zeroed one; NULL when the
 * table holds max entries. Pointers into the table stay valid until the
 * next insert or delete. */
struct filter_table_entry *filter_table_insert(struct filter_table *t,
					       const uint8_t key[17]);

/* Deletes e. An entry from further on may move into *e, so a sweep that
 * deletes must look at the same slot again. */
void filter_table_del(struct filter_table *t, struct filter_table_entry *e);

/* For list tables: the longest entry containing addr with a prefix length
 * <= maxlen; NULL when there is none or when that entry has expired at now
 * (the longest match decides, as in the kernel's LPM trie). */
struct filter_table_entry *filter_table_match(const struct filter_table *t,
					      const uint8_t addr[16],
					      unsigned maxlen, uint64_t now);

#endif
