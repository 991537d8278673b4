/* Unit tests for password.c: yescrypt hashing and constant-time checks. */
#include <string.h>

#include "harness.h"
#include "password.h"

static void
test_hash_verify(void)
{
	char h[256], h2[256];

	CHECK(password_hash("correct horse", h, sizeof(h)) == 0);
	CHECK(strncmp(h, "$y$", 3) == 0);
	CHECK(password_verify("correct horse", h) == 1);
	CHECK(password_verify("correct hors", h) == 0);
	CHECK(password_verify("correct horse ", h) == 0);
	CHECK(password_verify("Correct horse", h) == 0);
	CHECK(password_verify("", h) == 0);

	/* A fresh salt each time: same password, different hash. */
	CHECK(password_hash("correct horse", h2, sizeof(h2)) == 0);
	CHECK(strcmp(h, h2) != 0);
	CHECK(password_verify("correct horse", h2) == 1);
}

static void
test_unusual_passwords(void)
{
	char h[256], longpw[512];

	CHECK(password_hash("p\xc3\xa4ss w\xc3\xb6rd \t:$", h, sizeof(h)) == 0);
	CHECK(password_verify("p\xc3\xa4ss w\xc3\xb6rd \t:$", h) == 1);
	CHECK(password_verify("pass word \t:$", h) == 0);

	memset(longpw, 'x', sizeof(longpw) - 1);
	longpw[sizeof(longpw) - 1] = '\0';
	/* libxcrypt takes up to 511 bytes (CRYPT_MAX_PASSPHRASE_SIZE - 1). */
	CHECK(password_hash(longpw, h, sizeof(h)) == 0);
	CHECK(password_verify(longpw, h) == 1);
	longpw[500] = 'y';
	CHECK(password_verify(longpw, h) == 0);
}

/* Longer passphrases are refused, not silently truncated. */
static void
test_too_long_password(void)
{
	char h[256], longpw[513];

	memset(longpw, 'x', sizeof(longpw) - 1);
	longpw[sizeof(longpw) - 1] = '\0';
	CHECK(password_hash(longpw, h, sizeof(h)) == -1);
	CHECK(h[0] == '\0');
	CHECK(password_hash("x", h, sizeof(h)) == 0);
	CHECK(password_verify(longpw, h) == 0);
}

static void
test_output_too_small(void)
{
	char h[16];

	memset(h, 'z', sizeof(h));
	CHECK(password_hash("secret", h, sizeof(h)) == -1);
	CHECK(h[0] == '\0');
}

static void
test_malformed_hashes(void)
{
	static const char *const bad[] = {
	    "",
	    "*",
	    "*0",
	    "!",
	    "!$y$j9T$abc$def", /* a locked account (shadow style) */
	    "plain-text-password",
	    "abJnggxhB/yWI", /* legacy DES: not accepted */
	    "$",
	    "$y$",
	    "$y$j9T$",
	    "$y$j9T$salt",
	    "$y$!!!$salt$hash",
	    "$zz$whatever$x",
	    "$1$",
	    "$6$rounds=1$",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (password_verify("", bad[i]) != 0 ||
		    password_verify("secret", bad[i]) != 0) {
			fprintf(stderr, "  malformed hash accepted: \"%s\"\n",
				bad[i]);
			CHECK(0);
		}
	}
	CHECK(password_verify("secret", NULL) == 0);
	CHECK(password_verify(NULL, "$y$j9T$x$y") == 0);
}

/* A good hash with its last character changed, or truncated, must fail. */
static void
test_tampered_hash(void)
{
	char h[256];
	size_t len;

	CHECK(password_hash("secret", h, sizeof(h)) == 0);
	len = strlen(h);
	CHECK(password_verify("secret", h) == 1);
	h[len - 1] = h[len - 1] == 'A' ? 'B' : 'A';
	CHECK(password_verify("secret", h) == 0);
	h[len - 1] = '\0';
	CHECK(password_verify("secret", h) == 0);
}

int
main(void)
{
	RUN(test_hash_verify);
	RUN(test_unusual_passwords);
	RUN(test_too_long_password);
	RUN(test_output_too_small);
	RUN(test_malformed_hashes);
	RUN(test_tampered_hash);
	return HARNESS_DONE();
}
