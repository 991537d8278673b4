/* OpenSSL contexts: the server context (certificate and key from [tls],
 * TLS 1.2 minimum, a modern cipher policy, reloadable on SIGHUP without
 * touching sessions already established) and the client context used for
 * outbound SMTP (opportunistic or required STARTTLS). */
#ifndef POSTERN_TLS_H
#define POSTERN_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* Loads cert_file (PEM, chain allowed) and key_file into a new server
 * context that replaces the current one. Sessions that already hold an SSL
 * object keep the old context alive through OpenSSL's reference counting.
 * Returns 0, or -1 with a message in err (the old context stays). */
int tls_server_load(const char *cert_file, const char *key_file, char *err,
		    size_t errlen);

/* The current server context, or NULL when no certificate is configured.
 * Valid until the next tls_server_load(); SSL_new() takes a reference. */
SSL_CTX *tls_server_ctx(void);

/* The client context for outbound SMTP: TLS 1.2 minimum, system trust
 * store loaded; verification is the caller's choice per connection
 * (opportunistic TLS to MXs does not verify, a relay host may). */
SSL_CTX *tls_client_ctx(void);

/* "TLSv1.3:TLS_AES_256_GCM_SHA384" style description of an established
 * connection, for Received headers and logs. */
void tls_describe(SSL *ssl, char *buf, size_t len);

#endif
