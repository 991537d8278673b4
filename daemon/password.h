/* Password hashing and checking with libcrypt's yescrypt. Both calls are
 * slow on purpose: the daemon runs them on a worker thread. */
#ifndef POSTERN_PASSWORD_H
#define POSTERN_PASSWORD_H

#include <stddef.h>

/* Hashes password with a fresh yescrypt salt into out ("$y$...").
 * Returns 0, or -1 when libcrypt fails. Thread-safe. */
int password_hash(const char *password, char *out, size_t outlen);

/* Returns 1 when password matches hash, 0 otherwise (also for malformed
 * hashes). Runs in constant time with respect to the comparison.
 * Thread-safe. */
int password_verify(const char *password, const char *hash);

#endif
