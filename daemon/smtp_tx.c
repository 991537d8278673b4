/* One SMTP mail transaction: envelope checks at MAIL and RCPT (recipient
 * policy, relay refusal, quotas), the message streamed into a spool file
 * through the body decoder, and durable delivery on a worker thread. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "delivery.h"
#include "log.h"
#include "maildir.h"
#include "smtp_parse.h"
#include "smtp_tx.h"
#include "store.h"
#include "util.h"

#define SMTP_TX_WBUF 65536

struct smtp_tx {
	struct server *srv;
	char id[17];                 /* queue id, in the 250 and the log */
	char session_id[17];
	char helo[256];
	char peer_addr[64];
	int esmtp;

	struct smtp_path from;
	struct smtp_mail_params params;
	size_t nrcpt;
	char first_rcpt[STORE_ADDRESS_MAX];

	char **maildirs;             /* deduplicated delivery targets */
	size_t nmaildirs, maildirs_cap;

	int mode;                    /* SMTP_TX_DATA or SMTP_TX_BDAT */
	struct smtp_body body;
	int fd;
	char spool_path[1200];
	char *wbuf;
	size_t wlen;
	uint64_t header_bytes, header_lines;
	int too_big, io_error, finished;

	int pending;                 /* delivery under way */
	struct delivery_job job;
	char name[MAILDIR_NAME_MAX + 1];
	void (*done)(void *arg, const char *reply);
	void *done_arg;
};

static void smtp_tx_reply(char *reply, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static enum smtp_tx_verdict smtp_tx_parse_error(const char *error,
						int is_rcpt, char *reply,
						size_t len);
static int smtp_tx_add_maildir(struct smtp_tx *tx, const char *domain,
			       const char *local);
static int smtp_tx_target_ok(struct smtp_tx *tx,
			     const struct store_target *t, char *reply,
			     size_t len, const char *addr);
static void smtp_tx_sanitize(char *dst, size_t len, const char *src);
static int smtp_tx_write(struct smtp_tx *tx, const char *buf, size_t len);
static int smtp_tx_flush(struct smtp_tx *tx);
static void smtp_tx_delivered(struct delivery_job *job);

static void
smtp_tx_reply(char *reply, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(reply, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		strlcpy(reply, "451 4.3.0 Internal error", len);
}

/* Maps a parser error to the reply: unknown ESMTP parameters get 555
 * (RFC 5321 §4.1.1.11), parameter syntax 501 5.5.4, and address syntax
 * 501 5.1.7 (sender) or 501 5.1.3 (recipient) per RFC 3463. */
static enum smtp_tx_verdict
smtp_tx_parse_error(const char *error, int is_rcpt, char *reply, size_t len)
{
	if (error == NULL)
		error = "syntax error";
	if (strstr(error, "unknown parameter"))
		smtp_tx_reply(reply, len, "555 5.5.4 Unsupported parameter");
	else if (strstr(error, "param") || strstr(error, "SIZE") ||
		 strstr(error, "BODY") || strstr(error, "NOTIFY") ||
		 strstr(error, "ORCPT") || strstr(error, "ENVID") ||
		 strstr(error, "RET"))
		smtp_tx_reply(reply, len, "501 5.5.4 Syntax error in "
				"parameters: %s", error);
	else
		smtp_tx_reply(reply, len, "501 %s Bad %s address syntax: %s",
			      is_rcpt ? "5.1.3" : "5.1.7",
			      is_rcpt ? "recipient" : "sender", error);
	return SMTP_TX_SYNTAX;
}

struct smtp_tx *
smtp_tx_new(struct server *srv, const struct smtp_tx_client *client,
	    const char *args, enum smtp_tx_verdict *verdict_r, char *reply,
	    size_t len)
{
	struct smtp_tx *tx;
	struct smtp_path from;
	struct smtp_mail_params params;
	const char *error = NULL;
	enum parse_result r;

	memset(&from, 0, sizeof(from));
	memset(&params, 0, sizeof(params));
	r = smtp_parse_mail(args, &from, &params, &error);
	if (r != PARSE_OK) {
		*verdict_r = smtp_tx_parse_error(error, 0, reply, len);
		return NULL;
	}
	if (params.body == SMTP_BODY_BINARYMIME) {
		/* BINARYMIME is not advertised (RFC 3030 §3). */
		smtp_tx_reply(reply, len, "555 5.5.4 BINARYMIME not supported");
		*verdict_r = SMTP_TX_SYNTAX;
		return NULL;
	}
	if (params.has_size && params.size > srv->cfg->smtp_max_message_size) {
		smtp_tx_reply(reply, len, "552 5.3.4 Message size exceeds "
				"fixed maximum message size");
		*verdict_r = SMTP_TX_REJECT;
		return NULL;
	}

	tx = xcalloc(1, sizeof(*tx));
	tx->srv = srv;
	tx->fd = -1;
	util_random_hex(tx->id, 8);
	strlcpy(tx->session_id, client->session_id, sizeof(tx->session_id));
	smtp_tx_sanitize(tx->helo, sizeof(tx->helo), client->helo);
	strlcpy(tx->peer_addr, client->peer->addr, sizeof(tx->peer_addr));
	tx->esmtp = client->esmtp;
	tx->from = from;
	tx->params = params;
	smtp_tx_reply(reply, len, "250 2.1.0 Ok");
	*verdict_r = SMTP_TX_OK;
	return tx;
}

void
smtp_tx_free(struct smtp_tx **txp)
{
	struct smtp_tx *tx = *txp;
	size_t i;

	if (tx == NULL)
		return;
	if (tx->pending)
		fatalx("smtp_tx_free: delivery still pending");
	if (tx->fd != -1)
		close(tx->fd);
	if (tx->spool_path[0])
		unlink(tx->spool_path);
	for (i = 0; i < tx->nmaildirs; i++)
		free(tx->maildirs[i]);
	free(tx->maildirs);
	free(tx->wbuf);
	free(tx);
	*txp = NULL;
}

size_t
smtp_tx_rcpt_count(const struct smtp_tx *tx)
{
	return tx->nrcpt;
}

int
smtp_tx_is_pending(const struct smtp_tx *tx)
{
	return tx->pending;
}

/* Adds a mailbox's Maildir to the delivery list once, however many
 * recipients lead to it. Returns 0, or -1 when the path is refused. */
static int
smtp_tx_add_maildir(struct smtp_tx *tx, const char *domain, const char *local)
{
	char path[1200];
	size_t i;

	if (maildir_path(tx->srv->cfg->data_dir, domain, local, path,
			 sizeof(path)) == -1)
		return -1;
	for (i = 0; i < tx->nmaildirs; i++)
		if (strcmp(tx->maildirs[i], path) == 0)
			return 0;
	if (tx->nmaildirs == tx->maildirs_cap) {
		tx->maildirs_cap = tx->maildirs_cap ? tx->maildirs_cap * 2 : 8;
		tx->maildirs = xrealloc(tx->maildirs,
					tx->maildirs_cap * sizeof(char *));
	}
	tx->maildirs[tx->nmaildirs++] = xstrdup(path);
	return 0;
}

/* Checks that a target can take the message now: enabled and under quota.
 * Fills reply with the refusal otherwise and returns 0. */
static int
smtp_tx_target_ok(struct smtp_tx *tx, const struct store_target *t,
		  char *reply, size_t len, const char *addr)
{
	char path[1200];
	uint64_t used = 0;

	if (!t->enabled) {
		smtp_tx_reply(reply, len, "550 5.2.1 <%s>: Mailbox disabled",
			      addr);
		return 0;
	}
	if (t->quota == 0)
		return 1;
	if (maildir_path(tx->srv->cfg->data_dir, t->domain, t->local, path,
			 sizeof(path)) == -1 ||
	    maildir_usage(path, &used) == -1) {
		smtp_tx_reply(reply, len, "451 4.3.0 <%s>: Temporary lookup "
				"failure", addr);
		return 0;
	}
	if (used + tx->params.size > t->quota) {
		smtp_tx_reply(reply, len, "552 5.2.2 <%s>: Mailbox full", addr);
		return 0;
	}
	return 1;
}

enum smtp_tx_verdict
smtp_tx_rcpt(struct smtp_tx *tx, const char *args, char *reply, size_t len)
{
	struct smtp_path to;
	struct smtp_rcpt_params params;
	struct store_target targets[STORE_MAX_TARGETS];
	const struct config *cfg = tx->srv->cfg;
	char addr[STORE_ADDRESS_MAX + 8], domain[SMTP_DOMAIN_MAX + 1];
	const char *error = NULL;
	size_t n = 0, i, usable = 0;
	enum parse_result r;
	enum store_rcpt res;

	if (tx->nrcpt >= cfg->smtp_max_recipients) {
		/* RFC 5321 §4.5.3.1.8: 452 for too many recipients. */
		smtp_tx_reply(reply, len, "452 4.5.3 Too many recipients");
		return SMTP_TX_REJECT;
	}
	memset(&to, 0, sizeof(to));
	memset(&params, 0, sizeof(params));
	r = smtp_parse_rcpt(args, &to, &params, &error);
	if (r != PARSE_OK)
		return smtp_tx_parse_error(error, 1, reply, len);

	/* RFC 5321 §4.1.1.3: <postmaster> without a domain must work. */
	strlcpy(domain, to.domain[0] ? to.domain : cfg->hostname,
		sizeof(domain));
	util_lowercase(domain);
	if (to.quoted)
		snprintf(addr, sizeof(addr), "\"%s\"@%s", to.local, domain);
	else
		snprintf(addr, sizeof(addr), "%s@%s", to.local, domain);

	/* Old routing syntax in the local part ("user%foreign@local",
	 * "foreign!user@local", "\"user@foreign\"@local") could make a
	 * downstream system relay: refuse it like a foreign domain. */
	if (to.domain_literal || strpbrk(to.local, "%!@") != NULL) {
		smtp_tx_reply(reply, len, "554 5.7.1 <%s>: Relay access denied",
			      addr);
		return SMTP_TX_REJECT;
	}
	if (!to.domain[0] && !util_strcaseeq(to.local, "postmaster")) {
		smtp_tx_reply(reply, len, "501 5.1.3 Bad recipient address "
				"syntax");
		return SMTP_TX_SYNTAX;
	}
	{
		char local[SMTP_LOCAL_MAX + 1];

		strlcpy(local, to.local, sizeof(local));
		util_lowercase(local);
		if (!store_check_local(local) && store_domain_exists(
			tx->srv->store, domain)) {
			smtp_tx_reply(reply, len, "550 5.1.1 <%s>: Recipient "
					"address rejected: User unknown", addr);
			return SMTP_TX_UNKNOWN_USER;
		}
		res = store_resolve(tx->srv->store, local, domain, targets,
				    STORE_MAX_TARGETS, &n);
	}
	switch (res) {
	case STORE_RCPT_FOREIGN:
		smtp_tx_reply(reply, len, "554 5.7.1 <%s>: Relay access denied",
			      addr);
		return SMTP_TX_REJECT;
	case STORE_RCPT_UNKNOWN:
		smtp_tx_reply(reply, len, "550 5.1.1 <%s>: Recipient address "
				"rejected: User unknown", addr);
		return SMTP_TX_UNKNOWN_USER;
	case STORE_RCPT_ERROR:
		smtp_tx_reply(reply, len, "451 4.3.0 <%s>: Temporary lookup "
				"failure", addr);
		return SMTP_TX_REJECT;
	case STORE_RCPT_LOCAL:
		break;
	}

	/* The first refusal is kept as the reply if no target is usable. */
	smtp_tx_reply(reply, len, "550 5.1.1 <%s>: Recipient address "
			"rejected: User unknown", addr);
	for (i = 0; i < n; i++) {
		char why[SMTP_REPLY_MAX];

		if (targets[i].remote) {
			/* TODO: issue 3 — remote alias targets go to the
			 * outbound queue; until then they are skipped. */
			log_warnx("%s smtp skipped-remote-target rcpt=%s "
				  "target=%s@%s", tx->session_id, addr,
				  targets[i].local, targets[i].domain);
			continue;
		}
		if (!smtp_tx_target_ok(tx, &targets[i], why, sizeof(why),
				       addr)) {
			if (usable == 0)
				strlcpy(reply, why, len);
			continue;
		}
		if (smtp_tx_add_maildir(tx, targets[i].domain,
					targets[i].local) == -1)
			continue;
		usable++;
	}
	if (usable == 0)
		return reply[0] == '5' && strncmp(reply, "550 5.1.1", 9) == 0
			       ? SMTP_TX_UNKNOWN_USER
			       : SMTP_TX_REJECT;
	if (tx->nrcpt == 0)
		strlcpy(tx->first_rcpt, addr, sizeof(tx->first_rcpt));
	tx->nrcpt++;
	smtp_tx_reply(reply, len, "250 2.1.5 Ok");
	return SMTP_TX_OK;
}

/* Copies a client-supplied name for a trace header, keeping only
 * characters that cannot break the header. */
static void
smtp_tx_sanitize(char *dst, size_t len, const char *src)
{
	size_t i = 0;

	for (; *src && i + 1 < len; src++) {
		unsigned char c = (unsigned char)*src;
		dst[i++] = (c > 32 && c < 127 && c != '(' && c != ')')
				   ? (char)c
				   : '?';
	}
	dst[i] = '\0';
	if (i == 0)
		strlcpy(dst, "unknown", len);
}

static int
smtp_tx_flush(struct smtp_tx *tx)
{
	size_t off = 0;
	ssize_t n;

	while (off < tx->wlen) {
		n = write(tx->fd, tx->wbuf + off, tx->wlen - off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			log_warn("%s smtp spool write %s", tx->session_id,
				 tx->spool_path);
			tx->io_error = 1;
			tx->wlen = 0;
			return -1;
		}
		off += (size_t)n;
	}
	tx->wlen = 0;
	return 0;
}

static int
smtp_tx_write(struct smtp_tx *tx, const char *buf, size_t len)
{
	if (tx->io_error || tx->too_big)
		return -1;
	if (tx->wlen + len > SMTP_TX_WBUF && smtp_tx_flush(tx) == -1)
		return -1;
	if (len >= SMTP_TX_WBUF) {
		size_t off = 0;
		while (off < len) {
			ssize_t n = write(tx->fd, buf + off, len - off);
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1) {
				tx->io_error = 1;
				return -1;
			}
			off += (size_t)n;
		}
		return 0;
	}
	memcpy(tx->wbuf + tx->wlen, buf, len);
	tx->wlen += len;
	return 0;
}

int
smtp_tx_data_begin(struct smtp_tx *tx, int mode, char *reply, size_t len)
{
	char hdr[2048], date[64];
	const char *with;
	time_t now = time(NULL);
	struct tm tm;
	int n;

	tx->mode = mode;
	smtp_body_init(&tx->body,
		       mode == SMTP_TX_DATA ? SMTP_BODY_MODE_DATA
					    : SMTP_BODY_MODE_BDAT,
		       tx->srv->cfg->smtp_max_text_line);
	n = snprintf(tx->spool_path, sizeof(tx->spool_path), "%s/%s",
		     tx->srv->spool_dir, tx->id);
	if (n < 0 || (size_t)n >= sizeof(tx->spool_path))
		fatalx("spool path too long");
	tx->fd = open(tx->spool_path,
		      O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (tx->fd == -1) {
		log_warn("%s smtp cannot create %s", tx->session_id,
			 tx->spool_path);
		tx->spool_path[0] = '\0';
		smtp_tx_reply(reply, len, "451 4.3.0 Error: local error");
		return -1;
	}
	tx->wbuf = xmalloc(SMTP_TX_WBUF);

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	if (tx->params.smtputf8)
		with = "UTF8SMTP"; /* RFC 6531 §4.3 */
	else
		with = tx->esmtp ? "ESMTP" : "SMTP";
	/* Return-Path (RFC 5321 §4.4) then our trace header. Stored with LF
	 * line ends like the rest of the message. */
	n = snprintf(hdr, sizeof(hdr),
		     "Return-Path: <%s%s%s>\n"
		     "Received: from %s (unknown [%s])\n"
		     "\tby %s (Postern) with %s id %s%s%s%s;\n"
		     "\t%s\n",
		     tx->from.null ? "" : tx->from.local,
		     tx->from.null ? "" : "@",
		     tx->from.null ? "" : tx->from.domain, tx->helo,
		     tx->peer_addr, tx->srv->cfg->hostname, with, tx->id,
		     tx->nrcpt == 1 ? "\n\tfor <" : "",
		     tx->nrcpt == 1 ? tx->first_rcpt : "",
		     tx->nrcpt == 1 ? ">" : "", date);
	if (n < 0 || (size_t)n >= sizeof(hdr))
		fatalx("trace header too long");
	tx->header_bytes = (uint64_t)n;
	tx->header_lines = 5 - (tx->nrcpt == 1 ? 0 : 1);
	smtp_tx_write(tx, hdr, (size_t)n);
	return 0;
}

size_t
smtp_tx_data_feed(struct smtp_tx *tx, const char *buf, size_t len,
		  int *ended_r)
{
	char out[16384];
	size_t total = 0, chunk, outlen, used;
	enum smtp_body_result r;
	uint64_t max = tx->srv->cfg->smtp_max_message_size;

	*ended_r = 0;
	while (total < len) {
		chunk = len - total < sizeof(out) ? len - total : sizeof(out);
		r = smtp_body_feed(&tx->body, buf + total, chunk, out, &outlen,
				   &used);
		total += used;
		/* The size limit is on the message as sent, CRLF counted. */
		if (tx->body.out_bytes + tx->body.lines > max)
			tx->too_big = 1;
		if (outlen > 0)
			smtp_tx_write(tx, out, outlen);
		if (r == SMTP_BODY_END) {
			*ended_r = 1;
			break;
		}
	}
	return total;
}

int
smtp_tx_failed(const struct smtp_tx *tx, char *reply, size_t len)
{
	if (tx->body.bare_cr || tx->body.bare_lf) {
		/* Bare CR or LF could be read as a line end by another
		 * server: refuse rather than guess (SMTP smuggling). */
		smtp_tx_reply(reply, len, "550 5.6.0 Message contains bare "
				"CR or LF characters");
		return 2;
	}
	if (tx->too_big) {
		smtp_tx_reply(reply, len, "552 5.3.4 Message size exceeds "
				"fixed maximum message size");
		return 1;
	}
	if (tx->body.too_long) {
		/* RFC 5321 §4.5.3.1.6 and §4.5.3.1.10. */
		smtp_tx_reply(reply, len, "500 5.5.2 Line too long");
		return 1;
	}
	if (tx->io_error) {
		smtp_tx_reply(reply, len, "451 4.3.0 Error: local error");
		return 1;
	}
	return 0;
}

static void
smtp_tx_delivered(struct delivery_job *job)
{
	struct smtp_tx *tx = job->arg;
	char reply[SMTP_REPLY_MAX];

	tx->pending = 0;
	/* The delivery code has unlinked the spool file. */
	tx->spool_path[0] = '\0';
	if (job->ok) {
		log_info("%s smtp delivered id=%s from=<%s%s%s> nrcpt=%zu "
			 "mailboxes=%zu size=%llu",
			 tx->session_id, tx->id,
			 tx->from.null ? "" : tx->from.local,
			 tx->from.null ? "" : "@",
			 tx->from.null ? "" : tx->from.domain, tx->nrcpt,
			 tx->nmaildirs,
			 (unsigned long long)(tx->body.out_bytes +
					      tx->body.lines));
		smtp_tx_reply(reply, sizeof(reply),
			      "250 2.0.0 Ok: queued as %s", tx->id);
	} else {
		log_warnx("%s smtp delivery-failed id=%s error=\"%s\"",
			  tx->session_id, tx->id, job->err);
		smtp_tx_reply(reply, sizeof(reply),
			      "451 4.3.0 Error: local delivery failed");
	}
	tx->done(tx->done_arg, reply);
}

int
smtp_tx_commit(struct smtp_tx *tx, void (*done)(void *arg, const char *reply),
	       void *arg, char *reply, size_t len)
{
	char last[1];
	uint64_t size_lf, size_crlf;

	if (tx->mode == SMTP_TX_BDAT && !tx->finished) {
		size_t n = smtp_body_finish(&tx->body, last);
		if (n > 0)
			smtp_tx_write(tx, last, n);
	}
	tx->finished = 1;
	if (!tx->io_error && !tx->too_big)
		smtp_tx_flush(tx);
	if (smtp_tx_failed(tx, reply, len))
		return 1;
	if (close(tx->fd) == -1) {
		tx->fd = -1;
		tx->io_error = 1;
		smtp_tx_failed(tx, reply, len);
		return 1;
	}
	tx->fd = -1;
	size_lf = tx->header_bytes + tx->body.out_bytes;
	size_crlf = size_lf + tx->header_lines + tx->body.lines;
	maildir_unique_name(tx->name, sizeof(tx->name),
			    tx->srv->cfg->hostname, size_lf, size_crlf);
	tx->done = done;
	tx->done_arg = arg;
	tx->pending = 1;
	tx->job.spool_path = tx->spool_path;
	tx->job.maildirs = (const char *const *)tx->maildirs;
	tx->job.nmaildirs = tx->nmaildirs;
	tx->job.name = tx->name;
	tx->job.done = smtp_tx_delivered;
	tx->job.arg = tx;
	delivery_submit(&tx->job);
	return 0;
}
