/* Unit tests for dsn.c: xtext both ways, enhanced status extraction, the
 * return policy and the structure of the multipart/report it writes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"
#include "harness.h"

static void
test_xtext_encode(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"", ""},
	    {"user@example.test", "user@example.test"},
	    {"a+b=c", "a+2Bb+3Dc"},
	    {"with space", "with+20space"},
	    {"tab\there", "tab+09here"},
	    {"caf\xc3\xa9", "caf+C3+A9"},
	    {"~!", "~!"},
	    {"\x7f", "+7F"},
	};
	char out[64];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = dsn_xtext_encode(cases[i].in, out, sizeof(out));
		CHECK(n == (int)strlen(cases[i].out));
		CHECK_STR(out, cases[i].out);
	}
	/* Too small: "a+2B" needs 5 bytes with the NUL. */
	CHECK(dsn_xtext_encode("a+", out, 4) == -1);
	CHECK(dsn_xtext_encode("a+", out, 5) == 4);
	CHECK(dsn_xtext_encode("abc", out, 3) == -1);
}

static void
test_xtext_decode(void)
{
	static const struct {
		const char *in, *out; /* out NULL: must fail */
	} cases[] = {
	    {"", ""},
	    {"user@example.test", "user@example.test"},
	    {"a+2Bb+3Dc", "a+b=c"},
	    {"with+20space", "with space"},
	    {"caf+C3+A9", "caf\xc3\xa9"},
	    {"lower+2b", "lower+"},
	    {"+", NULL},
	    {"+2", NULL},
	    {"+2G", NULL},
	    {"+00", NULL},	/* a NUL would cut the string */
	    {"a=b", NULL},	/* '=' is not an xchar */
	    {"a b", NULL},	/* SP is outside "!".."~" */
	    {"\xc3\xa9", NULL}, /* raw 8-bit */
	};
	char out[64];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = dsn_xtext_decode(cases[i].in, out, sizeof(out));
		if (cases[i].out == NULL) {
			if (n != -1)
				fprintf(stderr, "  case %zu\n", i);
			CHECK(n == -1);
		} else {
			CHECK(n == (int)strlen(cases[i].out));
			CHECK_STR(out, cases[i].out);
		}
	}
	CHECK(dsn_xtext_decode("abcd", out, 4) == -1);
	CHECK(dsn_xtext_decode("abc", out, 4) == 3);
}

static void
test_xtext_round_trip(void)
{
	char in[256], enc[800], dec[256];
	int i;

	for (i = 0; i < 255; i++)
		in[i] = (char)(i + 1);
	in[255] = '\0';
	CHECK(dsn_xtext_encode(in, enc, sizeof(enc)) > 0);
	CHECK(dsn_xtext_decode(enc, dec, sizeof(dec)) == 255);
	CHECK(memcmp(in, dec, 256) == 0);
}

static void
test_status_from_reply(void)
{
	static const struct {
		const char *reply, *status;
	} cases[] = {
	    {"550 5.1.1 <x@y>: Recipient address rejected", "5.1.1"},
	    {"451 4.7.1 Greylisted", "4.7.1"},
	    {"250 2.0.0 Ok: queued", "2.0.0"},
	    {"250-2.1.5 Ok", "2.1.5"},
	    {"554 5.123.456 odd", "5.123.456"},
	    {"550 Mailbox unavailable", "5.0.0"},
	    {"550 4.1.1 class mismatch", "5.0.0"},
	    {"550 5.1234.1 too long", "5.0.0"},
	    {"550 5.1.", "5.0.0"},
	    {"421", "4.0.0"},
	    {"", "4.0.0"},
	    {"connection refused", "4.0.0"},
	};
	char status[DSN_STATUS_MAX];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dsn_status_from_reply(cases[i].reply, status, sizeof(status));
		CHECK_STR(status, cases[i].status);
	}
	dsn_status_from_reply(NULL, status, sizeof(status));
	CHECK_STR(status, "4.0.0");
}

static void
test_return_full(void)
{
	CHECK(dsn_return_full(DSN_RET_NONE, 1, 100, 1000) == 1);
	CHECK(dsn_return_full(DSN_RET_NONE, 0, 100, 1000) == 0);
	CHECK(dsn_return_full(DSN_RET_FULL, 0, 100, 1000) == 0);
	CHECK(dsn_return_full(DSN_RET_HDRS, 1, 100, 1000) == 0);
	CHECK(dsn_return_full(DSN_RET_FULL, 1, 5000, 1000) == 0);
}

static const char original[] = "Return-Path: <alice@example.test>\n"
			       "Received: from client\n"
			       "\tby mx.example.test;\n"
			       "Subject: hello\n"
			       "\n"
			       "body line 1\n"
			       "body line 2\n";

/* Builds a report into a memory buffer; returns it (caller frees). */
static char *
build(const struct dsn_report *r, int with_orig)
{
	FILE *out, *orig = NULL;
	char *buf = NULL;
	size_t len = 0;

	out = open_memstream(&buf, &len);
	if (with_orig)
		orig = fmemopen((void *)(uintptr_t)original,
				sizeof(original) - 1, "r");
	CHECK(dsn_write(out, r, orig) == 0);
	fclose(out);
	if (orig)
		fclose(orig);
	return buf;
}

static void
test_report_failed(void)
{
	struct dsn_rcpt rc[2] = {
	    {"bob@remote.test", "rfc822;Bob+2Bx@remote.test", DSN_ACTION_FAILED,
	     "5.1.1", "mx.remote.test",
	     "550 5.1.1 <bob@remote.test>: no such user", 1700000000, 0},
	    {"carol@remote.test", NULL, DSN_ACTION_FAILED, "4.4.7", NULL,
	     "451 4.4.1\r\nInjected: header", 0, 0},
	};
	struct dsn_report r = {
	    .reporting_mta = "mx.example.test",
	    .from = "MAILER-DAEMON@mx.example.test",
	    .to = "alice@example.test",
	    .message_id = "<0123.dsn@mx.example.test>",
	    .boundary = "BOUNDARY/1",
	    .queue_id = "0123456789abcdef",
	    .envid = "QQ+2B314",
	    .arrival = 1700000000,
	    .date = 1700000100,
	    .return_full = 1,
	    .rcpts = rc,
	    .nrcpt = 2,
	};
	char *s = build(&r, 1);

	CHECK(strstr(s, "Subject: Undelivered Mail Returned to Sender\n"));
	CHECK(strstr(s, "To: <alice@example.test>\n"));
	CHECK(strstr(s, "Auto-Submitted: auto-replied\n"));
	CHECK(strstr(
	    s, "Content-Type: multipart/report; "
	       "report-type=delivery-status;\n\tboundary=\"BOUNDARY/1\""));
	CHECK(strstr(s, "\n--BOUNDARY/1\nContent-Description: Delivery "
			"report\nContent-Type: message/delivery-status\n\n"
			"Reporting-MTA: dns; mx.example.test\n"));
	CHECK(strstr(s, "Original-Envelope-Id: QQ+314\n"));
	CHECK(strstr(s, "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\n"));
	CHECK(strstr(s,
		     "\n\nOriginal-Recipient: rfc822; Bob+x@remote.test\n"
		     "Final-Recipient: rfc822; bob@remote.test\n"
		     "Action: failed\nStatus: 5.1.1\n"
		     "Remote-MTA: dns; mx.remote.test\n"
		     "Diagnostic-Code: smtp; 550 5.1.1 <bob@remote.test>: "
		     "no such user\n"
		     "Last-Attempt-Date: Tue, 14 Nov 2023 22:13:20 +0000\n"));
	/* A CR LF in remote text cannot start a new field. */
	CHECK(
	    strstr(s, "Diagnostic-Code: smtp; 451 4.4.1??Injected: header\n"));
	CHECK(strstr(s, "\nInjected:") == NULL);
	CHECK(strstr(s, "Content-Type: message/rfc822\n\nReturn-Path: "
			"<alice@example.test>\n"));
	CHECK(strstr(s, "body line 2\n\n--BOUNDARY/1--\n"));
	free(s);
}

static void
test_report_headers_only(void)
{
	struct dsn_rcpt rc = {"bob@remote.test",
			      NULL,
			      DSN_ACTION_RELAYED,
			      "2.0.0",
			      "mx.remote.test",
			      "250 2.0.0 Ok",
			      0,
			      0};
	struct dsn_report r = {
	    .reporting_mta = "mx.example.test",
	    .from = "MAILER-DAEMON@mx.example.test",
	    .to = "alice@example.test",
	    .message_id = "<x@y>",
	    .boundary = "B",
	    .date = 0,
	    .return_full = 0,
	    .rcpts = &rc,
	    .nrcpt = 1,
	};
	char *s = build(&r, 1);

	CHECK(strstr(s, "Subject: Successful Mail Delivery Report\n"));
	CHECK(strstr(s, "Action: relayed\nStatus: 2.0.0\n"));
	CHECK(strstr(s, "Original-Envelope-Id") == NULL);
	CHECK(strstr(s, "Content-Type: text/rfc822-headers\n\nReturn-Path: "
			"<alice@example.test>\n"));
	CHECK(strstr(s, "Subject: hello\n\n--B--\n"));
	CHECK(strstr(s, "body line") == NULL);
	free(s);

	/* Without the original there is no third part. */
	s = build(&r, 0);
	CHECK(strstr(s, "rfc822-headers") == NULL);
	CHECK(strstr(s, "\n--B--\n"));
	free(s);
}

int
main(void)
{
	RUN(test_xtext_encode);
	RUN(test_xtext_decode);
	RUN(test_xtext_round_trip);
	RUN(test_status_from_reply);
	RUN(test_return_full);
	RUN(test_report_failed);
	RUN(test_report_headers_only);
	return HARNESS_DONE();
}
