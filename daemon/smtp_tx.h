/* One SMTP mail transaction: MAIL, RCPT, the message data (DATA or BDAT)
 * streamed into a spool file, and the hand-off to durable delivery. The
 * session owns the transaction and does all socket I/O; the functions here
 * decide and fill in the reply text. */
#ifndef POSTERN_SMTP_TX_H
#define POSTERN_SMTP_TX_H

#include <stddef.h>

#include "server.h"

#define SMTP_REPLY_MAX 512

struct smtp_tx;

/* What the session tells the transaction about its client. */
struct smtp_tx_client {
	const char *session_id;
	const char *helo; /* as given, may be empty */
	int esmtp;	  /* EHLO rather than HELO */
	const struct peer *peer;
	const char *tls_info;  /* "" when not encrypted */
	const char *auth_user; /* "" when not authenticated */
	int submission;	       /* a submission port (RFC 6409) */
};

/* Results of MAIL and RCPT. */
enum smtp_tx_verdict {
	SMTP_TX_OK,
	SMTP_TX_REJECT,	      /* a policy or syntax refusal, reply filled */
	SMTP_TX_UNKNOWN_USER, /* refused; counts towards harvesting limits */
	SMTP_TX_SYNTAX,	      /* refused; counts as a bad command */
};

/* Starts a transaction from the argument of MAIL. Returns NULL and fills
 * reply when MAIL is refused. The caller owns the result. */
struct smtp_tx *smtp_tx_new(struct server *srv,
			    const struct smtp_tx_client *client,
			    const char *args, enum smtp_tx_verdict *verdict_r,
			    char *reply, size_t len);
/* Frees the transaction and removes its spool file. Must not be called
 * while a commit is pending (smtp_tx_is_pending). */
void smtp_tx_free(struct smtp_tx **txp);

/* Handles RCPT: parses, resolves the recipient and fills reply. */
enum smtp_tx_verdict smtp_tx_rcpt(struct smtp_tx *tx, const char *args,
				  char *reply, size_t len);
size_t smtp_tx_rcpt_count(const struct smtp_tx *tx);

#define SMTP_TX_DATA 0
#define SMTP_TX_BDAT 1

/* Opens the spool file and writes the trace headers. Returns 0, or -1 with
 * a 4xx reply filled. */
int smtp_tx_data_begin(struct smtp_tx *tx, int mode, char *reply, size_t len);

/* Feeds raw client octets. In DATA mode returns the number consumed and
 * sets *ended_r when CRLF.CRLF was seen (octets after it are not
 * consumed). In BDAT mode consumes everything. */
size_t smtp_tx_data_feed(struct smtp_tx *tx, const char *buf, size_t len,
			 int *ended_r);

/* True once the transaction can no longer succeed (too big, bad line ends,
 * write error); the reply to give at the end is then in reply. */
int smtp_tx_failed(const struct smtp_tx *tx, char *reply, size_t len);

/* Ends the data. On a failed transaction fills reply and returns 1.
 * Otherwise hands the message to a worker for durable delivery and returns
 * 0; done(arg, reply) then runs on the loop thread with the final reply
 * (250 only after every copy is on disk). For BDAT call with last = 1 on
 * the LAST chunk. */
int smtp_tx_commit(struct smtp_tx *tx,
		   void (*done)(void *arg, const char *reply), void *arg,
		   char *reply, size_t len);
int smtp_tx_is_pending(const struct smtp_tx *tx);

#endif
