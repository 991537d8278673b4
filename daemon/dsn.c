/* Delivery Status Notifications (RFC 3464, RFC 6522) and xtext (RFC 3461).
 * Everything here writes to or reads from caller-supplied streams. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dsn.h"
#include "util.h"

/* Longest field value we write; RFC 5322 §2.1.1 caps lines at 998. */
#define DSN_VALUE_MAX 900

static void dsn_clean(char *dst, size_t len, const char *src);
static void dsn_date(time_t t, char *buf, size_t len);
static void dsn_orcpt_value(const char *orcpt, char *buf, size_t len);
static void dsn_envid_value(const char *envid, char *buf, size_t len);
static int dsn_write_human(FILE *out, const struct dsn_report *r);
static int dsn_write_status(FILE *out, const struct dsn_report *r);
static int dsn_write_original(FILE *out, FILE *orig, int full);
static int dsn_hexval(int c);

const char *
dsn_action_name(enum dsn_action action)
{
	switch (action) {
	case DSN_ACTION_FAILED:
		return "failed";
	case DSN_ACTION_DELAYED:
		return "delayed";
	case DSN_ACTION_DELIVERED:
		return "delivered";
	case DSN_ACTION_RELAYED:
		return "relayed";
	}
	return "failed";
}

/* Copies text from outside (a remote reply, an address) into a header
 * value: control characters could end the field or start a new one, so
 * they become '?'; the length is capped below the line limit. */
static void
dsn_clean(char *dst, size_t len, const char *src)
{
	size_t i = 0, max = len - 1;

	if (max > DSN_VALUE_MAX)
		max = DSN_VALUE_MAX;
	for (; src && *src && i < max; src++) {
		unsigned char c = (unsigned char)*src;
		dst[i++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	dst[i] = '\0';
}

/* RFC 5322 §3.3 date-time in UTC; the daemon never sets a locale, so %a
 * and %b are the English names the grammar wants. */
static void
dsn_date(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	if (strftime(buf, len, "%a, %d %b %Y %H:%M:%S +0000", &tm) == 0)
		strlcpy(buf, "Thu, 01 Jan 1970 00:00:00 +0000", len);
}

/* RFC 3464 §2.3.1: Original-Recipient is "address-type ; generic-address"
 * with the ORCPT xtext decoded (RFC 3461 §4.2). When the decoded address
 * would not be safe in a header we keep the encoded form. */
static void
dsn_orcpt_value(const char *orcpt, char *buf, size_t len)
{
	char dec[600], type[64];
	const char *semi = strchr(orcpt, ';');
	size_t tlen, i;

	if (semi == NULL || (tlen = (size_t)(semi - orcpt)) >= sizeof(type)) {
		dsn_clean(buf, len, orcpt);
		return;
	}
	memcpy(type, orcpt, tlen);
	type[tlen] = '\0';
	if (dsn_xtext_decode(semi + 1, dec, sizeof(dec)) < 0) {
		dsn_clean(buf, len, orcpt);
		return;
	}
	for (i = 0; dec[i]; i++)
		if ((unsigned char)dec[i] < 0x20 || dec[i] == 0x7f) {
			dsn_clean(buf, len, orcpt);
			return;
		}
	if (snprintf(buf, len, "%s; %s", type, dec) >= (int)len)
		dsn_clean(buf, len, orcpt);
}

/* RFC 3464 §2.2.1 with RFC 3461 §4.4: the ENVID decoded from xtext, or
 * kept encoded when decoding would yield unsafe characters. */
static void
dsn_envid_value(const char *envid, char *buf, size_t len)
{
	char dec[200];
	size_t i;

	if (dsn_xtext_decode(envid, dec, sizeof(dec)) < 0) {
		dsn_clean(buf, len, envid);
		return;
	}
	for (i = 0; dec[i]; i++)
		if ((unsigned char)dec[i] < 0x20 || dec[i] == 0x7f) {
			dsn_clean(buf, len, envid);
			return;
		}
	dsn_clean(buf, len, dec);
}

int
dsn_return_full(int ret, int any_failed, unsigned long long size,
		unsigned long long size_limit)
{
	/* RFC 3461 §4.3: a report without failures SHOULD carry only the
	 * headers, whatever RET asked. */
	if (ret == DSN_RET_HDRS || !any_failed)
		return 0;
	return size <= size_limit;
}

void
dsn_status_from_reply(const char *reply, char *status, size_t len)
{
	const char *p;
	char cls;
	size_t n;

	cls = (reply && (reply[0] == '2' || reply[0] == '4' || reply[0] == '5'))
		  ? reply[0]
		  : '4';
	/* "NNN x.y.z" or "NNN-x.y.z": class digit, dot, 1-3 digits, dot,
	 * 1-3 digits (RFC 3463 §2). */
	if (reply && strlen(reply) > 5 &&
	    (reply[3] == ' ' || reply[3] == '-') && reply[4] == cls &&
	    reply[5] == '.') {
		p = reply + 6;
		n = strspn(p, "0123456789");
		if (n >= 1 && n <= 3 && p[n] == '.') {
			size_t m = strspn(p + n + 1, "0123456789");
			if (m >= 1 && m <= 3 &&
			    (p[n + 1 + m] == '\0' || p[n + 1 + m] == ' ')) {
				size_t total = 2 + n + 1 + m;
				if (total < len) {
					memcpy(status, reply + 4, total);
					status[total] = '\0';
					return;
				}
			}
		}
	}
	snprintf(status, len, "%c.0.0", cls);
}

static int
dsn_write_human(FILE *out, const struct dsn_report *r)
{
	char addr[DSN_VALUE_MAX + 1], diag[DSN_VALUE_MAX + 1];
	size_t i;
	int any_failed = 0, any_delayed = 0;

	for (i = 0; i < r->nrcpt; i++) {
		any_failed |= r->rcpts[i].action == DSN_ACTION_FAILED;
		any_delayed |= r->rcpts[i].action == DSN_ACTION_DELAYED;
	}
	fprintf(out, "This is the mail system at host %s.\n\n",
		r->reporting_mta);
	if (any_failed)
		fprintf(out, "Your message could not be delivered to one or "
			     "more recipients.\nIt is attached below.\n\n");
	else if (any_delayed)
		fprintf(out, "Your message could not be delivered yet; the "
			     "mail system will keep trying.\n\n");
	else
		fprintf(out, "Your message was successfully delivered to the "
			     "destination(s) listed below.\n\n");
	for (i = 0; i < r->nrcpt; i++) {
		const struct dsn_rcpt *rc = &r->rcpts[i];

		dsn_clean(addr, sizeof(addr), rc->final_rcpt);
		dsn_clean(diag, sizeof(diag), rc->diagnostic);
		fprintf(out, "<%s>: %s%s%s\n", addr,
			dsn_action_name(rc->action), diag[0] ? ": " : "", diag);
	}
	return 0;
}

static int
dsn_write_status(FILE *out, const struct dsn_report *r)
{
	char val[DSN_VALUE_MAX + 1], date[64];
	size_t i;

	/* RFC 3464 §2.2: per-message fields first. */
	fprintf(out, "Reporting-MTA: dns; %s\n", r->reporting_mta);
	if (r->queue_id)
		fprintf(out, "X-Postern-Queue-ID: %s\n", r->queue_id);
	if (r->envid && r->envid[0]) {
		dsn_envid_value(r->envid, val, sizeof(val));
		fprintf(out, "Original-Envelope-Id: %s\n", val);
	}
	if (r->arrival) {
		dsn_date(r->arrival, date, sizeof(date));
		fprintf(out, "Arrival-Date: %s\n", date);
	}
	/* §2.3: one block per recipient, each after a blank line. */
	for (i = 0; i < r->nrcpt; i++) {
		const struct dsn_rcpt *rc = &r->rcpts[i];

		fputc('\n', out);
		if (rc->orcpt && rc->orcpt[0]) {
			dsn_orcpt_value(rc->orcpt, val, sizeof(val));
			fprintf(out, "Original-Recipient: %s\n", val);
		}
		dsn_clean(val, sizeof(val), rc->final_rcpt);
		fprintf(out, "Final-Recipient: rfc822; %s\n", val);
		fprintf(out, "Action: %s\n", dsn_action_name(rc->action));
		dsn_clean(val, sizeof(val), rc->status);
		fprintf(out, "Status: %s\n", val[0] ? val : "5.0.0");
		if (rc->remote_mta && rc->remote_mta[0]) {
			dsn_clean(val, sizeof(val), rc->remote_mta);
			fprintf(out, "Remote-MTA: dns; %s\n", val);
		}
		if (rc->diagnostic && rc->diagnostic[0]) {
			dsn_clean(val, sizeof(val), rc->diagnostic);
			/* §2.3.6: "smtp" when the text is an SMTP reply. */
			if (isdigit((unsigned char)val[0]) &&
			    isdigit((unsigned char)val[1]) &&
			    isdigit((unsigned char)val[2]))
				fprintf(out, "Diagnostic-Code: smtp; %s\n",
					val);
			else
				fprintf(out, "Diagnostic-Code: X-Postern; %s\n",
					val);
		}
		if (rc->last_attempt) {
			dsn_date(rc->last_attempt, date, sizeof(date));
			fprintf(out, "Last-Attempt-Date: %s\n", date);
		}
		if (rc->action == DSN_ACTION_DELAYED && rc->retry_until) {
			dsn_date(rc->retry_until, date, sizeof(date));
			fprintf(out, "Will-Retry-Until: %s\n", date);
		}
	}
	return 0;
}

/* Copies the original: all of it, or the header up to (not including) the
 * first empty line. A message without a body is all header. */
static int
dsn_write_original(FILE *out, FILE *orig, int full)
{
	char buf[8192];
	size_t n;
	int c, at_bol = 1;

	if (full) {
		while ((n = fread(buf, 1, sizeof(buf), orig)) > 0)
			if (fwrite(buf, 1, n, out) != n)
				return -1;
		return ferror(orig) ? -1 : 0;
	}
	while ((c = getc(orig)) != EOF) {
		if (c == '\n' && at_bol)
			break;
		if (putc(c, out) == EOF)
			return -1;
		at_bol = c == '\n';
	}
	if (!at_bol)
		putc('\n', out);
	return ferror(orig) ? -1 : 0;
}

int
dsn_write(FILE *out, const struct dsn_report *r, FILE *orig)
{
	char date[64], to[DSN_VALUE_MAX + 1];
	const char *subject = "Successful Mail Delivery Report";
	size_t i;

	for (i = 0; i < r->nrcpt; i++)
		if (r->rcpts[i].action == DSN_ACTION_DELAYED)
			subject = "Delayed Mail (still being retried)";
	for (i = 0; i < r->nrcpt; i++)
		if (r->rcpts[i].action == DSN_ACTION_FAILED)
			subject = "Undelivered Mail Returned to Sender";
	dsn_date(r->date, date, sizeof(date));
	dsn_clean(to, sizeof(to), r->to);

	/* RFC 3834 §5: Auto-Submitted keeps responders from answering. */
	fprintf(out,
		"From: Mail Delivery System <%s>\n"
		"To: <%s>\n"
		"Subject: %s\n"
		"Date: %s\n"
		"Message-ID: %s\n"
		"Auto-Submitted: auto-replied\n"
		"MIME-Version: 1.0\n"
		"Content-Type: multipart/report; report-type=delivery-status;\n"
		"\tboundary=\"%s\"\n"
		"\n"
		"This is a MIME-encapsulated message.\n"
		"\n"
		"--%s\n"
		"Content-Description: Notification\n"
		"Content-Type: text/plain; charset=utf-8\n"
		"\n",
		r->from, to, subject, date, r->message_id, r->boundary,
		r->boundary);
	dsn_write_human(out, r);
	fprintf(out,
		"\n--%s\n"
		"Content-Description: Delivery report\n"
		"Content-Type: message/delivery-status\n"
		"\n",
		r->boundary);
	dsn_write_status(out, r);
	if (orig) {
		fprintf(out, "\n--%s\n", r->boundary);
		if (r->return_full)
			fprintf(out,
				"Content-Description: Undelivered Message\n"
				"Content-Type: message/rfc822\n\n");
		else
			fprintf(out, "Content-Description: Message Headers\n"
				     "Content-Type: text/rfc822-headers\n\n");
		if (dsn_write_original(out, orig, r->return_full) == -1)
			return -1;
	}
	fprintf(out, "\n--%s--\n", r->boundary);
	if (fflush(out) == EOF || ferror(out))
		return -1;
	return 0;
}

static int
dsn_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
dsn_xtext_encode(const char *in, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *in; in++) {
		unsigned char c = (unsigned char)*in;

		if (c >= '!' && c <= '~' && c != '+' && c != '=') {
			if (o + 1 >= outlen)
				return -1;
			out[o++] = (char)c;
		} else {
			if (o + 3 >= outlen)
				return -1;
			out[o++] = '+';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (o >= outlen)
		return -1;
	out[o] = '\0';
	return (int)o;
}

int
dsn_xtext_decode(const char *in, char *out, size_t outlen)
{
	size_t o = 0;
	int hi, lo;

	for (; *in; in++) {
		unsigned char c = (unsigned char)*in;

		if (c < '!' || c > '~' || c == '=')
			return -1;
		if (c == '+') {
			hi = dsn_hexval((unsigned char)in[1]);
			lo = hi < 0 ? -1 : dsn_hexval((unsigned char)in[2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			c = (unsigned char)(hi << 4 | lo);
			in += 2;
		}
		if (o + 1 >= outlen)
			return -1;
		out[o++] = (char)c;
	}
	if (o >= outlen)
		return -1;
	out[o] = '\0';
	return (int)o;
}
