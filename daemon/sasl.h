/* Pure SASL helpers shared by SMTP AUTH and POP3 AUTH: strict base64 and
 * the PLAIN (RFC 4616) and LOGIN mechanisms' message decoding. */
#ifndef POSTERN_SASL_H
#define POSTERN_SASL_H

#include <stddef.h>

#define SASL_FIELD_MAX 512
#define SASL_PASSWORD_MAX 512

/* Strict base64 (RFC 4648 §4): the standard alphabet, padding required,
 * no whitespace. Returns 0 and the decoded length, or -1. out must hold
 * inlen / 4 * 3 octets; the result is NUL-terminated when room allows. */
int sasl_base64_decode(const char *in, size_t inlen, unsigned char *out,
		       size_t outcap, size_t *outlen_r);

/* Encodes len octets into out (NUL-terminated). Returns 0, or -1 when out
 * is too small. */
int sasl_base64_encode(const unsigned char *in, size_t len, char *out,
		       size_t outcap);

/* Decodes a PLAIN response (base64 of authzid NUL authcid NUL passwd).
 * authzid must be empty or equal to authcid. Returns 0, or -1 with a static
 * reason in *error_r. The password buffer should be wiped by the caller. */
int sasl_plain_decode(const char *b64, size_t len, char *authcid,
		      size_t authcid_len, char *passwd, size_t passwd_len,
		      const char **error_r);

/* Decodes one LOGIN step (a base64 user name or password) into out as a
 * NUL-free string. Returns 0 or -1. */
int sasl_login_decode(const char *b64, size_t len, char *out, size_t outcap);

#endif
