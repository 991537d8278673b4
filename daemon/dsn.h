/* Delivery Status Notifications: the multipart/report message of RFC 3464
 * (with RFC 6522's report container) and the xtext encoding of RFC 3461.
 * Pure: no files, no logging; the caller hands in stdio streams. */
#ifndef POSTERN_DSN_H
#define POSTERN_DSN_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

/* RFC 3461 §4.1 NOTIFY bits, the same values smtp_parse.h uses. 0 means
 * the parameter was not given (failures are then reported). */
#define DSN_NOTIFY_NEVER 1
#define DSN_NOTIFY_SUCCESS 2
#define DSN_NOTIFY_FAILURE 4
#define DSN_NOTIFY_DELAY 8

/* RFC 3461 §4.3 RET, the same values smtp_parse.h uses. */
#define DSN_RET_NONE 0
#define DSN_RET_FULL 1
#define DSN_RET_HDRS 2

#define DSN_STATUS_MAX 16 /* "5.123.123" and a NUL, with slack */

/* RFC 3464 §2.3.3 action values. */
enum dsn_action {
	DSN_ACTION_FAILED,
	DSN_ACTION_DELAYED,
	DSN_ACTION_DELIVERED,
	DSN_ACTION_RELAYED,
};

/* One per-recipient block. Strings are borrowed for the call. */
struct dsn_rcpt {
	const char *final_rcpt; /* the address we tried, without <> */
	const char *orcpt;	/* ORCPT as received ("rfc822;xtext") or NULL */
	enum dsn_action action;
	const char *status;	/* "5.1.1"; see dsn_status_from_reply */
	const char *remote_mta; /* host name of the server that answered */
	const char *diagnostic; /* that server's reply, or our own text */
	time_t last_attempt;	/* 0: field omitted */
	time_t retry_until;	/* Will-Retry-Until for delayed; 0: omitted */
};

/* The whole report. Strings are borrowed for the call. */
struct dsn_report {
	const char *reporting_mta; /* our host name */
	const char *from;	   /* "MAILER-DAEMON@host" */
	const char *to;		   /* the original envelope sender */
	const char *message_id;	   /* "<...>" of the report itself */
	const char *boundary;	   /* MIME boundary, unique to this report */
	const char *queue_id; /* for the human part and X-Postfix-like id */
	const char *envid;    /* ENVID as received (xtext) or NULL */
	time_t arrival;	      /* when the original arrived */
	time_t date;	      /* Date: of the report */
	int return_full;      /* 1: message/rfc822, 0: headers only */
	const struct dsn_rcpt *rcpts;
	size_t nrcpt;
};

/* Writes the report to out with LF line ends (as messages are stored).
 * orig is the original message (LF line ends), returned whole as
 * message/rfc822 when return_full is set, otherwise its header as
 * text/rfc822-headers (RFC 6522 §3); NULL leaves the third part out.
 * Returns 0, or -1 when reading orig or writing out failed. */
int dsn_write(FILE *out, const struct dsn_report *r, FILE *orig);

/* The report's return policy for RET and the actions it reports
 * (RFC 3461 §4.3): RET=HDRS → headers, RET=FULL → full, no RET → full for
 * failures, headers for success reports; a message larger than
 * size_limit bytes is returned as headers only. */
int dsn_return_full(int ret, int any_failed, unsigned long long size,
		    unsigned long long size_limit);

/* Copies the enhanced status code (RFC 3463) of an SMTP reply such as
 * "550 5.1.1 <x>: unknown" into status when its class matches the reply
 * code's, else a generic one ("5.0.0", "4.0.0", "2.0.0"). */
void dsn_status_from_reply(const char *reply, char *status, size_t len);

const char *dsn_action_name(enum dsn_action action);

/* RFC 3461 §4: xtext. Encoding escapes '+', '=' and every octet outside
 * "!".."~" as "+XX". Returns the encoded length, or -1 when out (outlen
 * bytes with the NUL) is too small. */
int dsn_xtext_encode(const char *in, char *out, size_t outlen);

/* Decodes xtext. Hex digits must be upper case per the RFC; lower case is
 * accepted too. Returns the decoded length, or -1 for bad syntax ('+' not
 * followed by two hex digits, an octet outside "!".."~", a decoded NUL)
 * or when out is too small. */
int dsn_xtext_decode(const char *in, char *out, size_t outlen);

#endif
