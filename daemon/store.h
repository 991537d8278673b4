/* The account store: domains, mailboxes and aliases behind a plain C API.
 * The SQLite backend lives in store.c; no SQLite type appears here so that
 * another backend can be added later. Every call is synchronous and cheap
 * (prepared statements); the daemon calls the read functions on its loop. */
#ifndef POSTERN_STORE_H
#define POSTERN_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_LOCAL_MAX 64    /* RFC 5321 §4.5.3.1.1 local-part octets */
#define STORE_DOMAIN_MAX 255  /* RFC 5321 §4.5.3.1.2 */
#define STORE_ADDRESS_MAX 320 /* local + "@" + domain, plus NUL slack */
#define STORE_HASH_MAX 256
#define STORE_MAX_TARGETS 64 /* alias expansion limit */

enum store_result {
	STORE_OK = 0,
	STORE_INVALID,	/* bad syntax of a name or address */
	STORE_EXISTS,	/* already there */
	STORE_NOTFOUND, /* no such domain, mailbox or alias */
	STORE_ERROR,	/* database or I/O error (message in err) */
};

struct store;

struct store_mailbox {
	char local[STORE_LOCAL_MAX + 1];    /* lower case */
	char domain[STORE_DOMAIN_MAX + 1];  /* lower case */
	char password_hash[STORE_HASH_MAX]; /* crypt(3) string, "$y$..." */
	uint64_t quota;			    /* bytes, 0 = unlimited */
	int enabled;
};

/* One final destination of a recipient after alias expansion. */
struct store_target {
	char local[STORE_LOCAL_MAX + 1];
	char domain[STORE_DOMAIN_MAX + 1];
	uint64_t quota; /* 0 = unlimited */
	int enabled;
	int remote; /* domain is not local (issue 3) */
};

enum store_rcpt {
	STORE_RCPT_LOCAL,   /* found: targets filled */
	STORE_RCPT_FOREIGN, /* the domain is not one of ours */
	STORE_RCPT_UNKNOWN, /* our domain, no mailbox, alias or catch-all */
	STORE_RCPT_ERROR,   /* database error */
};

/* Opens (creating when missing) data_dir/postern.db in WAL mode, creating
 * data_dir first, and applies pending schema migrations. Returns STORE_OK
 * and *store_r, or STORE_ERROR with a message in err. */
enum store_result store_open(const char *data_dir, struct store **store_r,
			     char *err, size_t errlen);
void store_close(struct store **store);

/* Syntax checks, 1 = valid. Domains: LDH labels, dots, 1..253 octets, no
 * leading/trailing dot or hyphen in a label. Local parts: dot-atom of
 * letters, digits and !#$&'*+-/=?^_`{|}~ (but not % or !, which are old
 * routing syntax), 1..64 octets, no leading/trailing/double dot. */
int store_check_domain(const char *domain);
int store_check_local(const char *local);

/* Splits and validates "local@domain" into lower-case parts.
 * Returns STORE_OK or STORE_INVALID. */
enum store_result store_split_address(const char *address, char *local,
				      size_t local_len, char *domain,
				      size_t domain_len);

/* Administration. Names are lower-cased; err receives a human message for
 * any result other than STORE_OK. domain_del refuses (STORE_EXISTS) while
 * mailboxes or aliases of the domain remain. */
enum store_result store_domain_add(struct store *s, const char *domain,
				   char *err, size_t errlen);
enum store_result store_domain_del(struct store *s, const char *domain,
				   char *err, size_t errlen);
/* Calls cb once per domain, in name order. */
enum store_result store_domain_list(struct store *s,
				    void (*cb)(const char *domain, void *arg),
				    void *arg, char *err, size_t errlen);
int store_domain_exists(struct store *s, const char *domain);

/* password_hash is a finished crypt(3) string (see password.h). */
enum store_result store_mailbox_add(struct store *s, const char *address,
				    const char *password_hash, uint64_t quota,
				    char *err, size_t errlen);
enum store_result store_mailbox_del(struct store *s, const char *address,
				    char *err, size_t errlen);
enum store_result store_mailbox_set_password(struct store *s,
					     const char *address,
					     const char *password_hash,
					     char *err, size_t errlen);
enum store_result store_mailbox_set_quota(struct store *s, const char *address,
					  uint64_t quota, char *err,
					  size_t errlen);
enum store_result store_mailbox_set_enabled(struct store *s,
					    const char *address, int enabled,
					    char *err, size_t errlen);
/* Lists every mailbox, or those of one domain when domain is not NULL. */
enum store_result store_mailbox_list(struct store *s, const char *domain,
				     void (*cb)(const struct store_mailbox *mb,
						void *arg),
				     void *arg, char *err, size_t errlen);
/* Looks one mailbox up by address (case-insensitive). STORE_NOTFOUND when
 * it does not exist. */
enum store_result store_mailbox_get(struct store *s, const char *address,
				    struct store_mailbox *mb_r);

/* Aliases: source is "local@domain" of a local domain, or "@domain" for the
 * domain's catch-all; targets are full addresses (local or remote). Adding
 * to an existing source adds the new targets. */
enum store_result store_alias_add(struct store *s, const char *source,
				  const char *const *targets, size_t ntargets,
				  char *err, size_t errlen);
/* Deletes the listed targets, or the whole alias when ntargets == 0. */
enum store_result store_alias_del(struct store *s, const char *source,
				  const char *const *targets, size_t ntargets,
				  char *err, size_t errlen);
enum store_result store_alias_list(struct store *s, const char *domain,
				   void (*cb)(const char *source,
					      const char *target, void *arg),
				   void *arg, char *err, size_t errlen);

/* Resolves a recipient (already split, lower case): a mailbox wins, then an
 * alias of the exact address, then the domain's catch-all alias. Alias
 * targets that are local mailboxes are returned as such (one level of
 * aliases to aliases is followed, loops are cut); targets in foreign domains
 * come back with remote = 1. Up to max targets are written. */
enum store_rcpt store_resolve(struct store *s, const char *local,
			      const char *domain, struct store_target *targets,
			      size_t max, size_t *ntargets_r);

#endif
