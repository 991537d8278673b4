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
#include "dsn.h"
#include "log.h"
#include "maildir.h"
#include "queue.h"
#include "queue_env.h"
#include "smtp_parse.h"
#include "smtp_tx.h"
#include "store.h"
#include "util.h"

#define SMTP_TX_WBUF 65536

struct smtp_tx {
	struct server *srv;
	char id[17]; /* queue id, in the 250 and the log */
	char session_id[17];
	char helo[256];
	char peer_addr[64];
	int esmtp;

	struct smtp_path from;
	struct smtp_mail_params params;
	size_t nrcpt;
	char first_rcpt[STORE_ADDRESS_MAX];
	char tls_info[128];
	char auth_user[STORE_ADDRESS_MAX];
	int submission;

	struct smtp_tx_rcpts *remote; /* recipients for the outbound queue */
	struct smtp_tx_rcpts *notify_local; /* local ones asking for a
					       success DSN (RFC 3461) */
	struct queue_env *qenv;		    /* their envelope, from commit on */

	/* Submission (RFC 6409 §8.2, §8.3): are Date and Message-ID there? */
	int hdr_done, hdr_line_start, has_date, has_msgid;
	char hdr_prefix[12];
	size_t hdr_prefix_len;
	char *trace; /* the Return-Path + Received block */

	char **maildirs; /* deduplicated delivery targets */
	size_t nmaildirs, maildirs_cap;

	int mode; /* SMTP_TX_DATA or SMTP_TX_BDAT */
	struct smtp_body body;
	int fd;
	char spool_path[1200];
	char *wbuf;
	size_t wlen;
	uint64_t header_bytes, header_lines;
	int too_big, io_error, finished;

	int pending; /* delivery under way */
	struct delivery_job job;
	char name[MAILDIR_NAME_MAX + 1];
	void (*done)(void *arg, const char *reply);
	void *done_arg;
};

/* Recipients with their DSN parameters (NOTIFY, ORCPT), each address
 * once. */
struct smtp_tx_rcpt {
	char addr[STORE_ADDRESS_MAX];
	struct smtp_rcpt_params params;
};

struct smtp_tx_rcpts {
	struct smtp_tx_rcpt *v;
	size_t n, cap;
};

/* Messages sent per account (submission limits) and per client address
 * ([smtp] max_messages_per_ip) in the current hour. */
#define SMTP_TX_RATE_SLOTS 1024
struct smtp_tx_rate {
	char user[STORE_ADDRESS_MAX];
	uint64_t window_start_ms;
	uint64_t count;
};
static struct smtp_tx_rate smtp_tx_rates[SMTP_TX_RATE_SLOTS];

static void smtp_tx_reply(char *reply, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static struct smtp_tx_rate *smtp_tx_rate_slot(const char *user);
static int smtp_tx_sender_owned(struct server *srv, const char *user,
				const struct smtp_path *from);
static struct queue_env *smtp_tx_queue_env(struct smtp_tx *tx,
					   uint64_t size_crlf);
static void smtp_tx_rcpts_add(struct smtp_tx_rcpts **listp, const char *addr,
			      const struct smtp_rcpt_params *params);
static size_t smtp_tx_rcpts_count(const struct smtp_tx_rcpts *list);
static void smtp_tx_rcpts_free(struct smtp_tx_rcpts **listp);
static void smtp_tx_scan_headers(struct smtp_tx *tx, const char *buf,
				 size_t len);
static int smtp_tx_add_missing_headers(struct smtp_tx *tx);
static enum smtp_tx_verdict smtp_tx_parse_error(const char *error, int is_rcpt,
						char *reply, size_t len);
static int smtp_tx_add_maildir(struct smtp_tx *tx, const char *domain,
			       const char *local);
static int smtp_tx_target_ok(struct smtp_tx *tx, const struct store_target *t,
			     char *reply, size_t len, const char *addr);
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
		smtp_tx_reply(reply, len,
			      "501 5.5.4 Syntax error in "
			      "parameters: %s",
			      error);
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
	if (from.utf8 && !params.smtputf8) {
		/* RFC 6531 §3.4 */
		smtp_tx_reply(reply, len,
			      "553 5.6.7 Non-ASCII address "
			      "without SMTPUTF8");
		*verdict_r = SMTP_TX_REJECT;
		return NULL;
	}
	if (params.body == SMTP_BODY_BINARYMIME) {
		/* BINARYMIME is not advertised (RFC 3030 §3). */
		smtp_tx_reply(reply, len, "555 5.5.4 BINARYMIME not supported");
		*verdict_r = SMTP_TX_SYNTAX;
		return NULL;
	}
	if (params.has_size && params.size > srv->cfg->smtp_max_message_size) {
		smtp_tx_reply(reply, len,
			      "552 5.3.4 Message size exceeds "
			      "fixed maximum message size");
		*verdict_r = SMTP_TX_REJECT;
		return NULL;
	}

	if (srv->cfg->smtp_max_messages_per_ip > 0 &&
	    smtp_tx_rate_slot(client->peer->addr)->count >=
		srv->cfg->smtp_max_messages_per_ip) {
		/* Per-address message rate, like Postfix's
		 * smtpd_client_message_rate_limit: a temporary refusal. */
		log_warnx(
		    "%s smtp rate-limit addr=%s messages_per_hour=%llu",
		    client->session_id, client->peer->addr,
		    (unsigned long long)srv->cfg->smtp_max_messages_per_ip);
		smtp_tx_reply(reply, len,
			      "450 4.7.1 Error: too many messages "
			      "from your address, try again later");
		*verdict_r = SMTP_TX_REJECT;
		return NULL;
	}
	if (client->auth_user[0] != '\0') {
		struct smtp_tx_rate *rate =
		    smtp_tx_rate_slot(client->auth_user);

		if (!smtp_tx_sender_owned(srv, client->auth_user, &from)) {
			smtp_tx_reply(reply, len,
				      "553 5.7.1 <%s@%s>: Sender "
				      "address rejected: not owned by "
				      "user %s",
				      from.local, from.domain,
				      client->auth_user);
			*verdict_r = SMTP_TX_REJECT;
			return NULL;
		}
		if (rate->count >= srv->cfg->submission_max_messages_per_hour) {
			log_warnx("alert smtp rate-limit user=%s "
				  "messages_per_hour=%llu",
				  client->auth_user,
				  (unsigned long long)rate->count);
			smtp_tx_reply(reply, len,
				      "451 4.7.1 Sending rate "
				      "limit exceeded for %s, try again "
				      "later",
				      client->auth_user);
			*verdict_r = SMTP_TX_REJECT;
			return NULL;
		}
	}

	tx = xcalloc(1, sizeof(*tx));
	tx->srv = srv;
	tx->fd = -1;
	strlcpy(tx->tls_info, client->tls_info, sizeof(tx->tls_info));
	strlcpy(tx->auth_user, client->auth_user, sizeof(tx->auth_user));
	tx->submission = client->submission;
	tx->hdr_line_start = 1;
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
	smtp_tx_rcpts_free(&tx->remote);
	smtp_tx_rcpts_free(&tx->notify_local);
	queue_env_free(&tx->qenv);
	free(tx->trace);
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
		tx->maildirs =
		    xrealloc(tx->maildirs, tx->maildirs_cap * sizeof(char *));
	}
	tx->maildirs[tx->nmaildirs++] = xstrdup(path);
	return 0;
}

/* Checks that a target can take the message now: enabled and under quota.
 * Fills reply with the refusal otherwise and returns 0. */
static int
smtp_tx_target_ok(struct smtp_tx *tx, const struct store_target *t, char *reply,
		  size_t len, const char *addr)
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
		smtp_tx_reply(reply, len,
			      "451 4.3.0 <%s>: Temporary lookup "
			      "failure",
			      addr);
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
	size_t n = 0, i, usable = 0, nlocal = 0;
	enum parse_result r;
	enum store_rcpt res;

	if (tx->nrcpt >= cfg->smtp_max_recipients ||
	    (tx->submission && tx->nrcpt >= cfg->submission_max_recipients)) {
		/* RFC 5321 §4.5.3.1.8: 452 for too many recipients. */
		smtp_tx_reply(reply, len, "452 4.5.3 Too many recipients");
		return SMTP_TX_REJECT;
	}
	memset(&to, 0, sizeof(to));
	memset(&params, 0, sizeof(params));
	r = smtp_parse_rcpt(args, &to, &params, &error);
	if (r != PARSE_OK)
		return smtp_tx_parse_error(error, 1, reply, len);

	if (to.utf8 && !tx->params.smtputf8) {
		smtp_tx_reply(reply, len,
			      "553 5.6.7 Non-ASCII address "
			      "without SMTPUTF8");
		return SMTP_TX_REJECT;
	}
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
		smtp_tx_reply(reply, len,
			      "501 5.1.3 Bad recipient address "
			      "syntax");
		return SMTP_TX_SYNTAX;
	}
	{
		char local[SMTP_LOCAL_MAX + 1];

		strlcpy(local, to.local, sizeof(local));
		util_lowercase(local);
		if (!store_check_local(local) &&
		    store_domain_exists(tx->srv->store, domain)) {
			smtp_tx_reply(reply, len,
				      "550 5.1.1 <%s>: Recipient "
				      "address rejected: User unknown",
				      addr);
			return SMTP_TX_UNKNOWN_USER;
		}
		res = store_resolve(tx->srv->store, local, domain, targets,
				    STORE_MAX_TARGETS, &n);
	}
	switch (res) {
	case STORE_RCPT_FOREIGN:
		/* Only authenticated users may relay (RFC 6409 §4.3). */
		if (tx->auth_user[0] != '\0' && !to.had_route) {
			smtp_tx_rcpts_add(&tx->remote, addr, &params);
			goto accepted;
		}
		smtp_tx_reply(reply, len, "554 5.7.1 <%s>: Relay access denied",
			      addr);
		return SMTP_TX_REJECT;
	case STORE_RCPT_UNKNOWN:
		smtp_tx_reply(reply, len,
			      "550 5.1.1 <%s>: Recipient address "
			      "rejected: User unknown",
			      addr);
		return SMTP_TX_UNKNOWN_USER;
	case STORE_RCPT_ERROR:
		smtp_tx_reply(reply, len,
			      "451 4.3.0 <%s>: Temporary lookup "
			      "failure",
			      addr);
		return SMTP_TX_REJECT;
	case STORE_RCPT_LOCAL:
		break;
	}

	/* The first refusal is kept as the reply if no target is usable. */
	smtp_tx_reply(reply, len,
		      "550 5.1.1 <%s>: Recipient address "
		      "rejected: User unknown",
		      addr);
	for (i = 0; i < n; i++) {
		char why[SMTP_REPLY_MAX];

		if (targets[i].remote) {
			/* An alias forwarding elsewhere: the queue sends it
			 * on, with our recipient as the original one. */
			char target[STORE_ADDRESS_MAX + 1];
			struct smtp_rcpt_params fwd;

			char xt[sizeof(fwd.orcpt) - 8];

			memset(&fwd, 0, sizeof(fwd));
			fwd.notify = params.notify;
			/* RFC 3461 §4.2: the client's ORCPT wins; otherwise
			 * our recipient, xtext-encoded ("+" is "+2B"). */
			if (params.orcpt[0])
				strlcpy(fwd.orcpt, params.orcpt,
					sizeof(fwd.orcpt));
			else if (dsn_xtext_encode(addr, xt, sizeof(xt)) >= 0)
				snprintf(fwd.orcpt, sizeof(fwd.orcpt),
					 "rfc822;%s", xt);
			if (snprintf(target, sizeof(target), "%s@%s",
				     targets[i].local,
				     targets[i].domain) >= (int)sizeof(target))
				continue;
			smtp_tx_rcpts_add(&tx->remote, target, &fwd);
			usable++;
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
		nlocal++;
	}
	/* RFC 3461 §4.1: delivered here, so the success report is ours to
	 * give (alias targets elsewhere carry NOTIFY on and report there). */
	if (nlocal > 0 && (params.notify & DSN_NOTIFY_SUCCESS))
		smtp_tx_rcpts_add(&tx->notify_local, addr, &params);
	if (usable == 0)
		return reply[0] == '5' && strncmp(reply, "550 5.1.1", 9) == 0
			   ? SMTP_TX_UNKNOWN_USER
			   : SMTP_TX_REJECT;
accepted:
	if (tx->nrcpt == 0)
		strlcpy(tx->first_rcpt, addr, sizeof(tx->first_rcpt));
	tx->nrcpt++;
	smtp_tx_reply(reply, len, "250 2.1.5 Ok");
	return SMTP_TX_OK;
}

static struct smtp_tx_rate *
smtp_tx_rate_slot(const char *user)
{
	struct smtp_tx_rate *r;
	unsigned h = 2166136261u;
	const char *p;
	uint64_t now = util_now_ms();

	for (p = user; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	r = &smtp_tx_rates[h % SMTP_TX_RATE_SLOTS];
	/* A colliding account restarts the window: limits can only be
	 * under-counted, never charged to the wrong user for long. */
	if (strcmp(r->user, user) != 0 ||
	    now - r->window_start_ms > 3600 * 1000) {
		strlcpy(r->user, user, sizeof(r->user));
		r->window_start_ms = now;
		r->count = 0;
	}
	return r;
}

/* An authenticated user may send as their own address or as an alias
 * that delivers to their mailbox (RFC 6409 §6.1 leaves the policy to us;
 * Postfix calls it reject_sender_login_mismatch). */
static int
smtp_tx_sender_owned(struct server *srv, const char *user,
		     const struct smtp_path *from)
{
	struct store_target targets[STORE_MAX_TARGETS];
	char local[SMTP_LOCAL_MAX + 1], addr[STORE_ADDRESS_MAX + 1];
	size_t n = 0, i;

	/* The null sender (autoreplies, RFC 3834) is allowed, as Postfix's
	 * reject_sender_login_mismatch does. */
	if (from->null)
		return 1;
	if (from->quoted || from->domain_literal)
		return 0;
	strlcpy(local, from->local, sizeof(local));
	util_lowercase(local);
	if (snprintf(addr, sizeof(addr), "%s@%s", local, from->domain) >=
	    (int)sizeof(addr))
		return 0;
	if (strcmp(addr, user) == 0)
		return 1;
	if (store_resolve(srv->store, local, from->domain, targets,
			  STORE_MAX_TARGETS, &n) != STORE_RCPT_LOCAL)
		return 0;
	for (i = 0; i < n; i++) {
		if (snprintf(addr, sizeof(addr), "%s@%s", targets[i].local,
			     targets[i].domain) >= (int)sizeof(addr))
			continue;
		if (!targets[i].remote && strcmp(addr, user) == 0)
			return 1;
	}
	return 0;
}

/* Appends addr with its parameters unless it is already listed (the first
 * RCPT's parameters stay); creates the list on first use. */
static void
smtp_tx_rcpts_add(struct smtp_tx_rcpts **listp, const char *addr,
		  const struct smtp_rcpt_params *params)
{
	struct smtp_tx_rcpts *l = *listp;
	size_t i;

	if (l == NULL)
		l = *listp = xcalloc(1, sizeof(*l));
	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i].addr, addr) == 0)
			return;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 4;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	strlcpy(l->v[l->n].addr, addr, sizeof(l->v[l->n].addr));
	l->v[l->n].params = *params;
	l->n++;
}

static size_t
smtp_tx_rcpts_count(const struct smtp_tx_rcpts *list)
{
	return list ? list->n : 0;
}

static void
smtp_tx_rcpts_free(struct smtp_tx_rcpts **listp)
{
	if (*listp == NULL)
		return;
	free((*listp)->v);
	free(*listp);
	*listp = NULL;
}

/* Watches the header section of a submitted message for Date: and
 * Message-ID: (stored text, LF line ends). */
static void
smtp_tx_scan_headers(struct smtp_tx *tx, const char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len && !tx->hdr_done; i++) {
		char c = buf[i];

		if (tx->hdr_line_start && c == '\n') {
			tx->hdr_done = 1; /* the empty line ends headers */
			break;
		}
		if (c == '\n') {
			tx->hdr_line_start = 1;
			tx->hdr_prefix_len = 0;
			continue;
		}
		if (tx->hdr_line_start || tx->hdr_prefix_len > 0) {
			tx->hdr_line_start = 0;
			if (tx->hdr_prefix_len < sizeof(tx->hdr_prefix)) {
				tx->hdr_prefix[tx->hdr_prefix_len++] =
				    (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
				if (tx->hdr_prefix_len == 5 &&
				    memcmp(tx->hdr_prefix, "date:", 5) == 0)
					tx->has_date = 1;
				if (tx->hdr_prefix_len == 11 &&
				    memcmp(tx->hdr_prefix, "message-id:", 11) ==
					0)
					tx->has_msgid = 1;
			}
			if (tx->hdr_prefix_len >= sizeof(tx->hdr_prefix))
				tx->hdr_prefix_len = sizeof(tx->hdr_prefix);
		}
	}
}

/* RFC 6409 §8.2 and §8.3: a submission server may add a missing Date and
 * Message-ID. They go after our trace headers, so the spool file is
 * rewritten once; mail clients nearly always send both. Returns 0 or -1. */
static int
smtp_tx_add_missing_headers(struct smtp_tx *tx)
{
	char path[1300], added[512], date[64], *hdr;
	time_t now = time(NULL);
	struct tm tm;
	off_t off;
	int in = -1, out = -1, saved, m;
	size_t n;
	ssize_t r;

	if (snprintf(path, sizeof(path), "%s.hdr", tx->spool_path) >=
	    (int)sizeof(path))
		return -1;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	m = snprintf(added, sizeof(added), "%s%s%s%s%s%s%s",
		     tx->has_date ? "" : "Date: ", tx->has_date ? "" : date,
		     tx->has_date ? "" : "\n",
		     tx->has_msgid ? "" : "Message-ID: <",
		     tx->has_msgid ? "" : tx->id, tx->has_msgid ? "" : "@",
		     tx->has_msgid ? "" : tx->srv->cfg->hostname);
	if (m < 0 || (size_t)m + 3 >= sizeof(added))
		return -1;
	if (!tx->has_msgid)
		memcpy(added + m, ">\n", 3);
	n = strlen(tx->trace) + strlen(added);
	hdr = xmalloc(n + 1);
	memcpy(hdr, tx->trace, strlen(tx->trace));
	memcpy(hdr + strlen(tx->trace), added, strlen(added) + 1);
	if ((in = open(tx->spool_path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    (out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			0600)) == -1 ||
	    write(out, hdr, n) != (ssize_t)n)
		goto fail;
	off = (off_t)tx->header_bytes;
	do {
		r = copy_file_range(in, &off, out, NULL, 1 << 20, 0);
	} while (r > 0);
	if (r < 0 || close(out) == -1) {
		out = -1;
		goto fail;
	}
	close(in);
	if (rename(path, tx->spool_path) == -1) {
		unlink(path);
		free(hdr);
		return -1;
	}
	tx->header_lines += (tx->has_date ? 0 : 1) + (tx->has_msgid ? 0 : 1);
	tx->header_bytes = (uint64_t)n;
	free(hdr);
	return 0;
fail:
	saved = errno;
	free(hdr);
	if (in != -1)
		close(in);
	if (out != -1)
		close(out);
	unlink(path);
	errno = saved;
	return -1;
}

/* Copies a client-supplied name for a trace header, keeping only
 * characters that cannot break the header. */
static void
smtp_tx_sanitize(char *dst, size_t len, const char *src)
{
	size_t i = 0;

	for (; *src && i + 1 < len; src++) {
		unsigned char c = (unsigned char)*src;
		dst[i++] =
		    (c > 32 && c < 127 && c != '(' && c != ')') ? (char)c : '?';
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
	tx->fd =
	    open(tx->spool_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
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
	/* RFC 3848 protocol types: S = TLS, A = authenticated; RFC 6531
	 * §4.3 adds the UTF8 forms. */
	{
		static const char *const withs[2][2][2] = {
		    {{"ESMTP", "ESMTPA"}, {"ESMTPS", "ESMTPSA"}},
		    {{"UTF8SMTP", "UTF8SMTPA"}, {"UTF8SMTPS", "UTF8SMTPSA"}},
		};
		int tls = tx->tls_info[0] != '\0';
		int auth = tx->auth_user[0] != '\0';

		if (!tx->esmtp && !tx->params.smtputf8 && !tls && !auth)
			with = "SMTP";
		else
			with = withs[tx->params.smtputf8 != 0][tls][auth];
	}
	/* Return-Path (RFC 5321 §4.4) then our trace header. Stored with LF
	 * line ends like the rest of the message. */
	n = snprintf(
	    hdr, sizeof(hdr),
	    "Return-Path: <%s%s%s>\n"
	    "Received: from %s (unknown [%s])%s%s%s\n"
	    "\tby %s (Postern) with %s id %s%s%s%s;\n"
	    "\t%s\n",
	    tx->from.null ? "" : tx->from.local, tx->from.null ? "" : "@",
	    tx->from.null ? "" : tx->from.domain, tx->helo, tx->peer_addr,
	    tx->tls_info[0] ? "\n\t(using " : "", tx->tls_info,
	    tx->tls_info[0] ? ")" : "", tx->srv->cfg->hostname, with, tx->id,
	    tx->nrcpt == 1 ? "\n\tfor <" : "",
	    tx->nrcpt == 1 ? tx->first_rcpt : "", tx->nrcpt == 1 ? ">" : "",
	    date);
	if (n < 0 || (size_t)n >= sizeof(hdr))
		fatalx("trace header too long");
	tx->header_bytes = (uint64_t)n;
	tx->header_lines =
	    5 - (tx->nrcpt == 1 ? 0 : 1) + (tx->tls_info[0] ? 1 : 0);
	tx->trace = xstrdup(hdr);
	smtp_tx_write(tx, hdr, (size_t)n);
	return 0;
}

size_t
smtp_tx_data_feed(struct smtp_tx *tx, const char *buf, size_t len, int *ended_r)
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
		if (outlen > 0) {
			if (tx->submission && !tx->hdr_done)
				smtp_tx_scan_headers(tx, out, outlen);
			smtp_tx_write(tx, out, outlen);
		}
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
		smtp_tx_reply(reply, len,
			      "550 5.6.0 Message contains bare "
			      "CR or LF characters");
		return 2;
	}
	if (tx->too_big) {
		smtp_tx_reply(reply, len,
			      "552 5.3.4 Message size exceeds "
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
		if (tx->auth_user[0] != '\0')
			smtp_tx_rate_slot(tx->auth_user)->count++;
		/* Client addresses and accounts share the table: an address
		 * never contains '@', an account always does. */
		smtp_tx_rate_slot(tx->peer_addr)->count++;
		log_info(
		    "%s smtp delivered id=%s from=<%s%s%s> nrcpt=%zu "
		    "mailboxes=%zu size=%llu",
		    tx->session_id, tx->id, tx->from.null ? "" : tx->from.local,
		    tx->from.null ? "" : "@",
		    tx->from.null ? "" : tx->from.domain, tx->nrcpt,
		    tx->nmaildirs,
		    (unsigned long long)(tx->body.out_bytes + tx->body.lines));
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

/* The outbound queue's envelope, under the transaction's id so that
 * "queued as" and the queue log lines match: the remote recipients, and
 * the local ones that owe a success report (queue_add_local_success: the
 * queue sends those reports once the delivery is durable). Returns NULL
 * when nothing is to be queued. */
static struct queue_env *
smtp_tx_queue_env(struct smtp_tx *tx, uint64_t size_crlf)
{
	struct queue_env *env = queue_env_new();
	const struct smtp_tx_rcpt *rc;
	size_t i;

	strlcpy(env->id, tx->id, sizeof(env->id));
	env->arrival = (int64_t)time(NULL);
	if (!tx->from.null)
		snprintf(env->sender, sizeof(env->sender),
			 tx->from.quoted ? "\"%s\"@%s" : "%s@%s",
			 tx->from.local, tx->from.domain);
	strlcpy(env->envid, tx->params.envid, sizeof(env->envid));
	env->ret = tx->params.ret;
	env->body_8bit = tx->params.body == SMTP_BODY_8BITMIME;
	env->size = size_crlf;
	strlcpy(env->auth, tx->auth_user, sizeof(env->auth));
	for (i = 0; i < smtp_tx_rcpts_count(tx->remote); i++) {
		rc = &tx->remote->v[i];
		queue_env_add_rcpt(env, rc->addr, rc->params.notify,
				   rc->params.orcpt[0] ? rc->params.orcpt
						       : NULL);
	}
	for (i = 0; i < smtp_tx_rcpts_count(tx->notify_local); i++) {
		rc = &tx->notify_local->v[i];
		if (queue_add_local_success(
			env, rc->addr, rc->params.notify,
			rc->params.orcpt[0] ? rc->params.orcpt : NULL) == -1)
			log_warnx("%s smtp dsn-skipped id=%s rcpt=<%s> "
				  "reason=\"address too long\"",
				  tx->session_id, tx->id, rc->addr);
	}
	if (env->nrcpt == 0)
		queue_env_free(&env);
	return env;
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
	if (tx->submission && (!tx->has_date || !tx->has_msgid) &&
	    smtp_tx_add_missing_headers(tx) == -1) {
		log_warn("%s smtp cannot add headers", tx->session_id);
		tx->io_error = 1;
		smtp_tx_failed(tx, reply, len);
		return 1;
	}
	if (close(tx->fd) == -1) {
		tx->fd = -1;
		tx->io_error = 1;
		smtp_tx_failed(tx, reply, len);
		return 1;
	}
	tx->fd = -1;
	size_lf = tx->header_bytes + tx->body.out_bytes;
	size_crlf = size_lf + tx->header_lines + tx->body.lines;
	maildir_unique_name(tx->name, sizeof(tx->name), tx->srv->cfg->hostname,
			    size_lf, size_crlf);
	tx->done = done;
	tx->done_arg = arg;
	tx->pending = 1;
	tx->job.spool_path = tx->spool_path;
	tx->job.maildirs = (const char *const *)tx->maildirs;
	tx->job.nmaildirs = tx->nmaildirs;
	tx->job.name = tx->name;
	queue_env_free(&tx->qenv);
	if (smtp_tx_rcpts_count(tx->remote) +
		smtp_tx_rcpts_count(tx->notify_local) >
	    0)
		tx->qenv = smtp_tx_queue_env(tx, size_crlf);
	tx->job.queue_env = tx->qenv;
	tx->job.done = smtp_tx_delivered;
	tx->job.arg = tx;
	delivery_submit(&tx->job);
	return 0;
}
