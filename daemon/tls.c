/* OpenSSL contexts for the server and client sides (see tls.h). */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "log.h"
#include "tls.h"

static SSL_CTX *tls_server;
static SSL_CTX *tls_client;

static void tls_error(char *err, size_t errlen, const char *what);
static void tls_harden(SSL_CTX *ctx);

static void
tls_error(char *err, size_t errlen, const char *what)
{
	char detail[256];
	unsigned long e = ERR_get_error();

	ERR_error_string_n(e, detail, sizeof(detail));
	snprintf(err, errlen, "%s: %s", what, e ? detail : "unknown error");
	ERR_clear_error();
}

/* TLS 1.2 minimum (RFC 8996 deprecates 1.0 and 1.1) with forward-secret
 * AEAD ciphers only, as Mozilla's "intermediate" profile does. */
static void
tls_harden(SSL_CTX *ctx)
{
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_cipher_list(ctx,
				"ECDHE-ECDSA-AES128-GCM-SHA256:"
				"ECDHE-RSA-AES128-GCM-SHA256:"
				"ECDHE-ECDSA-AES256-GCM-SHA384:"
				"ECDHE-RSA-AES256-GCM-SHA384:"
				"ECDHE-ECDSA-CHACHA20-POLY1305:"
				"ECDHE-RSA-CHACHA20-POLY1305");
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
					 SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE);
}

int
tls_server_load(const char *cert_file, const char *key_file, char *err,
		size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		tls_error(err, errlen, "SSL_CTX_new");
		return -1;
	}
	tls_harden(ctx);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		tls_error(err, errlen, cert_file);
		SSL_CTX_free(ctx);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		tls_error(err, errlen, key_file);
		SSL_CTX_free(ctx);
		return -1;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_error(err, errlen, "key does not match certificate");
		SSL_CTX_free(ctx);
		return -1;
	}
	/* Established SSL objects hold their own reference to the old
	 * context, so replacing it never drops a session. */
	if (tls_server)
		SSL_CTX_free(tls_server);
	tls_server = ctx;
	return 0;
}

SSL_CTX *
tls_server_ctx(void)
{
	return tls_server;
}

SSL_CTX *
tls_client_ctx(void)
{
	if (tls_client == NULL) {
		tls_client = SSL_CTX_new(TLS_client_method());
		if (tls_client == NULL)
			fatalx("SSL_CTX_new (client) failed");
		tls_harden(tls_client);
		if (SSL_CTX_set_default_verify_paths(tls_client) != 1)
			log_warnx("tls: cannot load the system trust store");
	}
	return tls_client;
}

void
tls_describe(SSL *ssl, char *buf, size_t len)
{
	snprintf(buf, len, "%s:%s", SSL_get_version(ssl),
		 SSL_get_cipher_name(ssl));
}
