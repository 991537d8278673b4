/* Strict base64 and SASL PLAIN/LOGIN decoding (see sasl.h). OpenSSL does
 * the base64 arithmetic; the checks around it make it strict. */
#include <string.h>

#include <openssl/evp.h>

#include "sasl.h"

static int sasl_is_b64(char c);

static int
sasl_is_b64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int
sasl_base64_decode(const char *in, size_t inlen, unsigned char *out,
		   size_t outcap, size_t *outlen_r)
{
	size_t i, pad = 0, need;
	int n;

	if (inlen == 0) {
		*outlen_r = 0;
		if (outcap > 0)
			out[0] = '\0';
		return 0;
	}
	if (inlen % 4 != 0 || inlen > 1 << 20)
		return -1;
	if (in[inlen - 1] == '=')
		pad++;
	if (in[inlen - 2] == '=')
		pad++;
	for (i = 0; i < inlen - pad; i++)
		if (!sasl_is_b64(in[i]))
			return -1;
	need = inlen / 4 * 3;
	if (need > outcap)
		return -1;
	n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)inlen);
	if (n < 0 || (size_t)n < pad)
		return -1;
	*outlen_r = (size_t)n - pad;
	if (*outlen_r < outcap)
		out[*outlen_r] = '\0';
	return 0;
}

int
sasl_base64_encode(const unsigned char *in, size_t len, char *out,
		   size_t outcap)
{
	if ((len + 2) / 3 * 4 + 1 > outcap)
		return -1;
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return 0;
}

int
sasl_plain_decode(const char *b64, size_t len, char *authcid,
		  size_t authcid_len, char *passwd, size_t passwd_len,
		  const char **error_r)
{
	unsigned char buf[3 * SASL_FIELD_MAX + 4];
	const char *authzid, *user, *pass;
	size_t n, zlen, ulen, plen;

	if (sasl_base64_decode(b64, len, buf, sizeof(buf) - 1, &n) == -1) {
		*error_r = "invalid base64";
		return -1;
	}
	buf[n] = '\0';
	/* authzid NUL authcid NUL passwd, no other NUL (RFC 4616 §2). */
	authzid = (const char *)buf;
	zlen = strnlen(authzid, n);
	if (zlen >= n) {
		*error_r = "malformed PLAIN message";
		goto fail;
	}
	user = authzid + zlen + 1;
	ulen = strnlen(user, n - zlen - 1);
	if (zlen + 1 + ulen >= n) {
		*error_r = "malformed PLAIN message";
		goto fail;
	}
	pass = user + ulen + 1;
	plen = n - zlen - 1 - ulen - 1;
	if (strnlen(pass, plen) != plen || ulen == 0 || plen == 0) {
		*error_r = "malformed PLAIN message";
		goto fail;
	}
	if (zlen > 0 && strcmp(authzid, user) != 0) {
		*error_r = "authorization identity not allowed";
		goto fail;
	}
	if (ulen >= authcid_len || plen >= passwd_len) {
		*error_r = "credentials too long";
		goto fail;
	}
	memcpy(authcid, user, ulen + 1);
	memcpy(passwd, pass, plen + 1);
	explicit_bzero(buf, sizeof(buf));
	return 0;
fail:
	explicit_bzero(buf, sizeof(buf));
	return -1;
}

int
sasl_login_decode(const char *b64, size_t len, char *out, size_t outcap)
{
	unsigned char buf[SASL_FIELD_MAX + 4];
	size_t n;

	if (sasl_base64_decode(b64, len, buf, sizeof(buf) - 1, &n) == -1 ||
	    n == 0 || n >= outcap || memchr(buf, '\0', n) != NULL) {
		explicit_bzero(buf, sizeof(buf));
		return -1;
	}
	memcpy(out, buf, n);
	out[n] = '\0';
	explicit_bzero(buf, sizeof(buf));
	return 0;
}
