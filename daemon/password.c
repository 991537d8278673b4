/* Password hashing and checking: yescrypt through libxcrypt's reentrant
 * crypt_r(), with the comparison done in constant time. */
#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include "password.h"
#include "util.h"

static int password_consttime_eq(const char *a, const char *b, size_t len);

/* Compares len bytes without an early exit, so the time taken does not tell
 * how many leading characters of a guess were right. */
static int
password_consttime_eq(const char *a, const char *b, size_t len)
{
	volatile unsigned char diff = 0;
	size_t i;

	for (i = 0; i < len; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)b[i];
	return diff == 0;
}

/* The crypt_data is about 32 KiB: it lives on the heap so that worker
 * threads with small stacks can call us. */
int
password_hash(const char *password, char *out, size_t outlen)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd;
	const char *h;
	int ret = -1;

	if (outlen > 0)
		out[0] = '\0';
	/* count 0 = libxcrypt's default cost; NULL rbytes = it reads the
	 * kernel's random source itself. */
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL)
		return -1;
	if ((cd = calloc(1, sizeof(*cd))) == NULL)
		return -1;
	h = crypt_r(password, salt, cd);
	/* libxcrypt signals failure with NULL or a "*0"/"*1" token. */
	if (h == NULL || h[0] != '$')
		goto out;
	if (strlcpy(out, h, outlen) >= outlen) {
		if (outlen > 0)
			explicit_bzero(out, outlen);
		goto out;
	}
	ret = 0;
out:
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	explicit_bzero(salt, sizeof(salt));
	return ret;
}

int
password_verify(const char *password, const char *hash)
{
	struct crypt_data *cd;
	const char *h;
	size_t len;
	int ok = 0;

	/* Only modular "$id$" hashes: an empty field or a legacy DES string
	 * is treated as malformed rather than checked. */
	if (password == NULL || hash == NULL || hash[0] != '$')
		return 0;
	len = strlen(hash);
	if (len >= CRYPT_OUTPUT_SIZE)
		return 0;
	if ((cd = calloc(1, sizeof(*cd))) == NULL)
		return 0;
	h = crypt_r(password, hash, cd);
	/* A hash's length is public; only its content must not leak. */
	if (h != NULL && h[0] == '$' && strlen(h) == len)
		ok = password_consttime_eq(h, hash, len);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}
