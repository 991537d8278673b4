/* Defaults of the outbound queue's settings (see queue_config.h). The
 * retry schedule follows Postfix's minimal_backoff_time (300 s) and
 * maximal_backoff_time (4000 s); the lifetime its maximal_queue_lifetime. */
#include <string.h>

#include "queue_config.h"

void
queue_config_defaults(struct queue_config *qc)
{
	memset(qc, 0, sizeof(*qc));
	qc->min_backoff = 300;
	qc->max_backoff = 4000;
	qc->max_lifetime = 5 * 86400;
	qc->destination_port = 25;
	qc->max_connections = 20;
	qc->max_per_destination = 5;
	qc->connect_timeout = 30;
	qc->command_timeout = 300;
	qc->data_timeout = 600;
	qc->bounce_size_limit = 50000;
	qc->starttls = 1;
	qc->relay_port = 587;
	qc->relay_tls_verify = 1;
}
