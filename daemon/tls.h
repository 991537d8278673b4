/* OpenSSL contexts: the server context (certificate and key from [tls],
 * TLS 1.2 minimum, a modern cipher policy, reloadable on SIGHUP without
 * touching sessions already established) and the client context used for
 * outbound SMTP (opportunistic or required STARTTLS). */
#ifndef POSTERN_TLS_H
#define POSTERN_TLS_H

#include <stddef.h>

#include <event2/bufferevent.h>
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

/* A server-side TLS bufferevent that starts with the handshake: over the
 * socket fd (implicit TLS) when under is NULL, else as a filter over the
 * plaintext bufferevent under (STARTTLS/STLS; it takes under over and frees
 * it with itself). A close without close_notify counts as a plain EOF.
 * Returns NULL when no certificate is configured or OpenSSL fails. */
struct bufferevent *tls_server_bev(struct event_base *base, evutil_socket_t fd,
				   struct bufferevent *under);

/* For a session that is closing: returns 1 while its output is still on
 * the way to the kernel, 0 once everything is sent. While the bufferevent
 * itself holds output, its own write callback fires when that is written
 * (with the low-water mark set to 0 here). Once it is empty, a TLS session
 * sends close_notify (once: *notify_sent), and under a TLS filter the
 * encrypted octets may still sit in the socket bufferevent below: then
 * under_write or under_event (called with arg) reports when they have
 * left or failed. */
int tls_flush_wait(struct bufferevent *bev, int *notify_sent,
		   bufferevent_data_cb under_write,
		   bufferevent_event_cb under_event, void *arg);

/* "TLSv1.3:TLS_AES_256_GCM_SHA384" style description of an established
 * connection, for Received headers and logs. */
void tls_describe(SSL *ssl, char *buf, size_t len);

#endif
