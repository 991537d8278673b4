/* Settings of the outbound queue: the [queue], [relay] and [dns] sections
 * of postern.conf. A struct of its own so that config.h can embed it
 * (struct config's "queue" member) and the queue can be tested without the
 * rest of the configuration. */
#ifndef POSTERN_QUEUE_CONFIG_H
#define POSTERN_QUEUE_CONFIG_H

/* Longest relay user name or password, with its NUL. */
#define QUEUE_RELAY_FIELD_MAX 256

#include <stdint.h>

struct queue_config {
	/* [queue] */
	uint64_t min_backoff;	      /* seconds; default 300 */
	uint64_t max_backoff;	      /* seconds; default 4000 */
	uint64_t max_lifetime;	      /* seconds; default 432000 (5 days) */
	uint64_t destination_port;    /* port of remote MXs; default 25 */
	uint64_t max_connections;     /* outbound sessions at once; 20 */
	uint64_t max_per_destination; /* sessions per domain; default 5 */
	uint64_t connect_timeout;     /* seconds; default 30 */
	uint64_t command_timeout;     /* seconds per reply; default 300 */
	uint64_t data_timeout;	      /* seconds for the reply to "."; 600 */
	uint64_t bounce_size_limit;   /* bytes of the original returned in
					 full in a bounce; default 50000 */
	int starttls;		      /* opportunistic STARTTLS to MXs; yes */

	/* [relay] */
	char relay_host[256];	    /* "" = deliver to MXs; default "" */
	uint64_t relay_port;	    /* default 587 */
	char relay_auth_file[1024]; /* "user\npassword\n", mode 0600 or
				       0640; "" = no AUTH */
	int relay_tls_verify;	    /* check the relay's certificate; yes */
	char relay_ca_file[1024];   /* "" = the system trust store */

	/* [dns] */
	char dns_servers[512]; /* "host:port, ..."; "" = resolv.conf */
};

/* Fills qc with every default. */
void queue_config_defaults(struct queue_config *qc);

#endif
