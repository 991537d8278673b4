/* OpenSSL contexts for the server and client sides (see tls.h). */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/bufferevent_ssl.h>
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
	SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:"
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

struct bufferevent *
tls_server_bev(struct event_base *base, evutil_socket_t fd,
	       struct bufferevent *under)
{
	SSL_CTX *ctx = tls_server_ctx();
	struct bufferevent *bev;
	SSL *ssl;

	if (ctx == NULL || (ssl = SSL_new(ctx)) == NULL)
		return NULL;
	/* OpenSSL 3 reports a close without close_notify as an error; for
	 * line-based protocols it is an EOF like any other, since a cut
	 * cannot turn one command into another. */
	SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (under != NULL)
		bev = bufferevent_openssl_filter_new(base, under, ssl,
						     BUFFEREVENT_SSL_ACCEPTING,
						     BEV_OPT_CLOSE_ON_FREE);
	else
		bev = bufferevent_openssl_socket_new(base, fd, ssl,
						     BUFFEREVENT_SSL_ACCEPTING,
						     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

int
tls_flush_wait(struct bufferevent *bev, int *notify_sent,
	       bufferevent_data_cb under_write,
	       bufferevent_event_cb under_event, void *arg)
{
	struct bufferevent *under;
	SSL *ssl;

	if (evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		bufferevent_enable(bev, EV_WRITE);
		return 1;
	}
	/* RFC 8446 §6.1: close_notify once the last reply is encrypted, so
	 * that the client sees a clean end; we do not wait for its own. */
	ssl = bufferevent_openssl_get_ssl(bev);
	if (ssl != NULL && !*notify_sent && SSL_is_init_finished(ssl)) {
		*notify_sent = 1;
		(void)SSL_shutdown(ssl);
		ERR_clear_error();
	}
	under = bufferevent_get_underlying(bev);
	if (under != NULL &&
	    evbuffer_get_length(bufferevent_get_output(under)) > 0) {
		/* The filter has nothing left to do: listen to the socket
		 * bufferevent below for the last stretch. */
		bufferevent_setcb(under, NULL, under_write, under_event, arg);
		bufferevent_setwatermark(under, EV_WRITE, 0, 0);
		bufferevent_disable(under, EV_READ);
		bufferevent_enable(under, EV_WRITE);
		return 1;
	}
	return 0;
}
