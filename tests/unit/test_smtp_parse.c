/* Unit tests for smtp_parse.c: command lines, MAIL/RCPT paths and
 * parameters, BDAT arguments, and the body decoder fed whole, one byte at
 * a time and at random split points. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "smtp_parse.h"

/* A string literal and its length (it may hold NUL octets). */
#define L(s) s, sizeof(s) - 1

/* smtp_path flags expected by the path tables. */
#define F_NULL 0x01
#define F_QUOTED 0x02
#define F_ROUTE 0x04
#define F_LITERAL 0x08
#define F_UTF8 0x10

/* Body flags. */
#define B_CR 0x01
#define B_LF 0x02
#define B_LONG 0x04

#define ALL SIZE_MAX /* consumed: the whole input */

/*
 * Command lines
 */

struct cmd_case {
	const char *line;
	size_t len;
	enum parse_result res;
	const char *verb;
	const char *args;
};

static const struct cmd_case cmd_cases[] = {
    {L("QUIT"), PARSE_OK, "QUIT", ""},
    {L("quit"), PARSE_OK, "QUIT", ""},
    {L("QuIt"), PARSE_OK, "QUIT", ""},
    {L("QUIT   "), PARSE_OK, "QUIT", ""},
    {L("QUIT "), PARSE_OK, "QUIT", ""},
    {L("NOOP x"), PARSE_OK, "NOOP", "x"},
    {L("EHLO mail.example.org"), PARSE_OK, "EHLO", "mail.example.org"},
    {L("MAIL FROM:<a@b.example>"), PARSE_OK, "MAIL", "FROM:<a@b.example>"},
    {L("mail   from:<a@b> SIZE=1 "), PARSE_OK, "MAIL", "from:<a@b> SIZE=1 "},
    {L("AUTH PLAIN dGVzdA=="), PARSE_OK, "AUTH", "PLAIN dGVzdA=="},
    {L("NOOP a\tb"), PARSE_OK, "NOOP", "a\tb"},
    {L("NOOP caf\xc3\xa9"), PARSE_OK, "NOOP", "caf\xc3\xa9"},
    {L("NOOP \xff"), PARSE_OK, "NOOP", "\xff"},
    {L("ABCDEFGHIJKLMNO"), PARSE_OK, "ABCDEFGHIJKLMNO", ""},
    {L("ABCDEFGHIJKLMNO arg"), PARSE_OK, "ABCDEFGHIJKLMNO", "arg"},
    {L("ABCDEFGHIJKLMNOP"), PARSE_INVALID, NULL, NULL},
    {L(""), PARSE_INVALID, NULL, NULL},
    {L(" "), PARSE_INVALID, NULL, NULL},
    {L(" QUIT"), PARSE_INVALID, NULL, NULL},
    {L("QU1T"), PARSE_INVALID, NULL, NULL},
    {L("X-FOO"), PARSE_INVALID, NULL, NULL},
    {L("MAIL\tFROM:<>"), PARSE_INVALID, NULL, NULL},
    {L("MAIL:FROM"), PARSE_INVALID, NULL, NULL},
    {L("\tQUIT"), PARSE_INVALID, NULL, NULL},
    {L("QUIT\r"), PARSE_INVALID, NULL, NULL},
    {L("QUIT\n"), PARSE_INVALID, NULL, NULL},
    {L("NOOP a\rb"), PARSE_INVALID, NULL, NULL},
    {L("NOOP a\nb"), PARSE_INVALID, NULL, NULL},
    {L("NOOP a\0b"), PARSE_INVALID, NULL, NULL},
    {L("QU\0IT"), PARSE_INVALID, NULL, NULL},
    {L("NOOP \x01"), PARSE_INVALID, NULL, NULL},
    {L("NOOP \x1b[0m"), PARSE_INVALID, NULL, NULL},
    {L("NOOP \x7f"), PARSE_INVALID, NULL, NULL},
    {L("\xc3\x89HLO x"), PARSE_INVALID, NULL, NULL},
};

static void
test_command(void)
{
	size_t i;

	for (i = 0; i < sizeof(cmd_cases) / sizeof(cmd_cases[0]); i++) {
		const struct cmd_case *tc = &cmd_cases[i];
		char verb[SMTP_VERB_MAX + 1];
		const char *args = NULL, *error = NULL;
		enum parse_result r;
		/* An exact-size copy: ASan catches any read past len. */
		char *line = malloc(tc->len ? tc->len : 1);

		memcpy(line, tc->line, tc->len);
		r = smtp_parse_command(line, tc->len, verb, &args, &error);
		if (r != tc->res)
			fprintf(stderr, "  command case %zu\n", i);
		CHECK(r == tc->res);
		if (r == PARSE_OK && tc->res == PARSE_OK) {
			CHECK_STR(verb, tc->verb);
			/* args runs to the end of the line. */
			CHECK(strlen(tc->args) ==
			      (args[0] == '\0'
				   ? 0
				   : tc->len - (size_t)(args - line)));
			CHECK(args[0] == '\0' ||
			      memcmp(args, tc->args, strlen(tc->args)) == 0);
		} else if (r != PARSE_OK) {
			CHECK(error != NULL && error[0] != '\0');
			CHECK(args != NULL);
		}
		free(line);
	}
}

/* With a NUL-terminated line, args is a C string (what MAIL/RCPT need). */
static void
test_command_args_string(void)
{
	static const char line[] = "RCPT  TO:<x@y.example> NOTIFY=NEVER";
	char verb[SMTP_VERB_MAX + 1];
	const char *args, *error;

	CHECK(smtp_parse_command(line, strlen(line), verb, &args, &error) ==
	      PARSE_OK);
	CHECK_STR(verb, "RCPT");
	CHECK_STR(args, "TO:<x@y.example> NOTIFY=NEVER");
}

/*
 * Paths
 */

struct path_case {
	const char *args;
	enum parse_result res;
	const char *local;
	const char *domain;
	int flags;
	const char *error; /* NULL: any */
};

/* MAIL paths; parameters are tested separately. */
static const struct path_case mail_path_cases[] = {
    {"FROM:<user@example.org>", PARSE_OK, "user", "example.org", 0, NULL},
    {"from:<user@example.org>", PARSE_OK, "user", "example.org", 0, NULL},
    {"FrOm:<User@Example.ORG>", PARSE_OK, "User", "example.org", 0, NULL},
    {"FROM: <user@example.org>", PARSE_OK, "user", "example.org", 0, NULL},
    {"FROM:   <user@example.org>", PARSE_OK, "user", "example.org", 0, NULL},
    {"FROM:<user@example.org>   ", PARSE_OK, "user", "example.org", 0, NULL},
    {"FROM:<>", PARSE_OK, "", "", F_NULL, NULL},
    {"FROM: <>", PARSE_OK, "", "", F_NULL, NULL},
    {"FROM:<> SIZE=10", PARSE_OK, "", "", F_NULL, NULL},
    {"FROM:<first.last@sub.example.org>", PARSE_OK, "first.last",
     "sub.example.org", 0, NULL},
    {"FROM:<a+tag@x.example>", PARSE_OK, "a+tag", "x.example", 0, NULL},
    {"FROM:<!#$%&'*+-/=?^_`{|}~@x.example>", PARSE_OK, "!#$%&'*+-/=?^_`{|}~",
     "x.example", 0, NULL},
    {"FROM:<u@localhost>", PARSE_OK, "u", "localhost", 0, NULL},
    {"FROM:<u@a-b.c-d.example>", PARSE_OK, "u", "a-b.c-d.example", 0, NULL},
    {"FROM:<u@xn--bcher-kva.example>", PARSE_OK, "u", "xn--bcher-kva.example",
     0, NULL},
    {"FROM:<u@123.example>", PARSE_OK, "u", "123.example", 0, NULL},
    {"FROM:<u@1.2.3.4>", PARSE_OK, "u", "1.2.3.4", 0, NULL},
    /* Open-relay tricks: syntax accepted, flagged for the policy layer. */
    {"FROM:<user%foreign@local.example>", PARSE_OK, "user%foreign",
     "local.example", 0, NULL},
    {"FROM:<host!user@local.example>", PARSE_OK, "host!user", "local.example",
     0, NULL},
    {"FROM:<\"user@foreign\"@local.example>", PARSE_OK, "user@foreign",
     "local.example", F_QUOTED, NULL},
    {"FROM:<@relay.example:user@foreign.example>", PARSE_OK, "user",
     "foreign.example", F_ROUTE, NULL},
    {"FROM:<@a.example,@b.example:user@d.example>", PARSE_OK, "user",
     "d.example", F_ROUTE, NULL},
    {"FROM:<@[192.0.2.1]:user@d.example>", PARSE_OK, "user", "d.example",
     F_ROUTE, NULL},
    {"FROM:<user@foreign@local.example>", PARSE_INVALID, NULL, NULL, 0,
     "too many @ in path"},
    {"FROM:<a@b@c@d>", PARSE_INVALID, NULL, NULL, 0, NULL},
    /* Quoted local parts. */
    {"FROM:<\"john doe\"@x.example>", PARSE_OK, "john doe", "x.example",
     F_QUOTED, NULL},
    {"FROM:<\"a\\\"b\"@x.example>", PARSE_OK, "a\"b", "x.example", F_QUOTED,
     NULL},
    {"FROM:<\"a\\\\b\"@x.example>", PARSE_OK, "a\\b", "x.example", F_QUOTED,
     NULL},
    {"FROM:<\"\\a\"@x.example>", PARSE_OK, "a", "x.example", F_QUOTED, NULL},
    {"FROM:<\"user\"@x.example>", PARSE_OK, "user", "x.example", F_QUOTED,
     NULL},
    {"FROM:<\"\"@x.example>", PARSE_OK, "", "x.example", F_QUOTED, NULL},
    {"FROM:<\"a..b.\"@x.example>", PARSE_OK, "a..b.", "x.example", F_QUOTED,
     NULL},
    {"FROM:<\"a>b\"@x.example>", PARSE_OK, "a>b", "x.example", F_QUOTED, NULL},
    {"FROM:<\"unterminated@x.example>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<\"a\tb\"@x.example>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<\"a\\\tb\"@x.example>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<\"a\\", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<\"a\"b@x.example>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<a\"b\"@x.example>", PARSE_INVALID, NULL, NULL, 0, NULL},
    /* Address literals. */
    {"FROM:<u@[192.0.2.1]>", PARSE_OK, "u", "[192.0.2.1]", F_LITERAL, NULL},
    {"FROM:<u@[0.0.0.0]>", PARSE_OK, "u", "[0.0.0.0]", F_LITERAL, NULL},
    {"FROM:<u@[255.255.255.255]>", PARSE_OK, "u", "[255.255.255.255]",
     F_LITERAL, NULL},
    {"FROM:<u@[010.001.0.1]>", PARSE_OK, "u", "[010.001.0.1]", F_LITERAL, NULL},
    {"FROM:<u@[IPv6:2001:db8::1]>", PARSE_OK, "u", "[IPv6:2001:db8::1]",
     F_LITERAL, NULL},
    {"FROM:<u@[ipv6:2001:DB8::1]>", PARSE_OK, "u", "[ipv6:2001:DB8::1]",
     F_LITERAL, NULL},
    {"FROM:<u@[IPv6:::1]>", PARSE_OK, "u", "[IPv6:::1]", F_LITERAL, NULL},
    {"FROM:<u@[IPv6:::ffff:192.0.2.1]>", PARSE_OK, "u",
     "[IPv6:::ffff:192.0.2.1]", F_LITERAL, NULL},
    {"FROM:<u@[256.0.0.1]>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<u@[1.2.3]>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<u@[1.2.3.4.5]>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<u@[1.2.3.0004]>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<u@[1..3.4]>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<u@[]>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<u@[IPv6:2001:db8::g]>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<u@[IPv6:1:2:3:4:5:6:7:8:9]>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<u@[IPv6:]>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<u@[2001:db8::1]>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<u@[x-tag:abc]>", PARSE_INVALID, NULL, NULL, 0,
     "unsupported address literal"},
    {"FROM:<u@[1.2.3.4>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<u@[1.2.3.4]x>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<u@[1.2 .3.4]>", PARSE_INVALID, NULL, NULL, 0, NULL},
    /* SMTPUTF8 (RFC 6531). */
    {"FROM:<j\xc3\xb6rg@b\xc3\xbc"
     "cher.example>",
     PARSE_OK, "j\xc3\xb6rg",
     "b\xc3\xbc"
     "cher.example",
     F_UTF8, NULL},
    {"FROM:<\xe7\x94\xa8\xe6\x88\xb7@Example.ORG>", PARSE_OK,
     "\xe7\x94\xa8\xe6\x88\xb7", "example.org", F_UTF8, NULL},
    {"FROM:<u@\xe4\xbe\x8b\xe3\x81\x88.JP>", PARSE_OK, "u",
     "\xe4\xbe\x8b\xe3\x81\x88.jp", F_UTF8, NULL},
    {"FROM:<\"\xf0\x9f\x98\x80 x\"@x.example>", PARSE_OK, "\xf0\x9f\x98\x80 x",
     "x.example", F_UTF8 | F_QUOTED, NULL},
    {"FROM:<\xc3@x.example>", PARSE_INVALID, NULL, NULL, 0,
     "invalid UTF-8 in local part"},
    {"FROM:<\xc0\xaf@x.example>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<\xe0\x80\xaf@x.example>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<\xed\xa0\x80@x.example>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<\xf4\x90\x80\x80@x.example>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<\xf5\x80\x80\x80@x.example>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<\xff@x.example>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<\x80@x.example>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<u@x\xc3.example>", PARSE_INVALID, NULL, NULL, 0,
     "invalid UTF-8 in domain"},
    {"FROM:<\"\xe2\x82\"@x.example>", PARSE_INVALID, NULL, NULL, 0, NULL},
    /* Bad syntax. */
    {"FROM:user@example.org", PARSE_INVALID, NULL, NULL, 0,
     "path must be enclosed in <>"},
    {"FROM:<user@example.org", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:user@example.org>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM <user@example.org>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM :<user@example.org>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"TO:<user@example.org>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROMX:<user@example.org>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<user>", PARSE_INVALID, NULL, NULL, 0, "missing @domain in path"},
    {"FROM:<postmaster>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<user@>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<@example.org>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<.user@example.org>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<user.@example.org>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<us..er@example.org>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<us er@example.org>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<us(er)@example.org>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<us,er@example.org>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<us\\er@example.org>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<user@example..org>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<user@.example.org>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<user@example.org.>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<user@-example.org>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<user@example-.org>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<user@exa_mple.org>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<user@exa mple.org>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<user@example.org >", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:< user@example.org>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<user@example.org>x", PARSE_INVALID, NULL, NULL, 0,
     "invalid character after path"},
    {"FROM:<user@example.org><x@y>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<user@example.org>\tSIZE=1", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<<user@example.org>>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<@relay.example user@x.example>", PARSE_INVALID, NULL, NULL, 0,
     NULL},
    {"FROM:<@relay.example,user@x.example>", PARSE_INVALID, NULL, NULL, 0,
     "invalid source route"},
    {"FROM:<@relay.example,:user@x.example>", PARSE_INVALID, NULL, NULL, 0,
     NULL},
    {"FROM:<@:user@x.example>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<@relay.example:>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<@relay.example:<>>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"FROM:<u@x.example\x7f>", PARSE_INVALID, NULL, NULL, 0, NULL},
};

/* RCPT paths. */
static const struct path_case rcpt_path_cases[] = {
    {"TO:<user@example.org>", PARSE_OK, "user", "example.org", 0, NULL},
    {"to:<user@EXAMPLE.org>", PARSE_OK, "user", "example.org", 0, NULL},
    {"To: <user@example.org>", PARSE_OK, "user", "example.org", 0, NULL},
    {"TO:<postmaster>", PARSE_OK, "postmaster", "", 0, NULL},
    {"TO:<PostMaster>", PARSE_OK, "postmaster", "", 0, NULL},
    {"TO:<POSTMASTER> NOTIFY=NEVER", PARSE_OK, "postmaster", "", 0, NULL},
    {"TO:<Postmaster@Example.org>", PARSE_OK, "Postmaster", "example.org", 0,
     NULL},
    {"TO:<\"postmaster\">", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"TO:<@relay.example:postmaster>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"TO:<postmasters>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"TO:<>", PARSE_INVALID, NULL, NULL, 0, "null path not allowed"},
    {"TO:<user>", PARSE_INVALID, NULL, NULL, 0, NULL},
    /* Open-relay tricks. */
    {"TO:<user%foreign.example@local.example>", PARSE_OK,
     "user%foreign.example", "local.example", 0, NULL},
    {"TO:<foreign.example!user@local.example>", PARSE_OK,
     "foreign.example!user", "local.example", 0, NULL},
    {"TO:<\"user@foreign.example\"@local.example>", PARSE_OK,
     "user@foreign.example", "local.example", F_QUOTED, NULL},
    {"TO:<@local.example:user@foreign.example>", PARSE_OK, "user",
     "foreign.example", F_ROUTE, NULL},
    {"TO:<@a.example,@b.example:user@d.example>", PARSE_OK, "user", "d.example",
     F_ROUTE, NULL},
    {"TO:<user@foreign.example@local.example>", PARSE_INVALID, NULL, NULL, 0,
     "too many @ in path"},
    {"TO:<user@[192.0.2.7]>", PARSE_OK, "user", "[192.0.2.7]", F_LITERAL, NULL},
    {"TO:<\xd0\xb8\xd0\xbc\xd1\x8f@\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc"
     "\xd0\xb5\xd1\x80.\xd1\x80\xd1\x84>",
     PARSE_OK, "\xd0\xb8\xd0\xbc\xd1\x8f",
     "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.\xd1\x80\xd1\x84",
     F_UTF8, NULL},
    {"FROM:<user@example.org>", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"TO:user@example.org", PARSE_INVALID, NULL, NULL, 0, NULL},
    {"TO:<user@example.org> SIZE=1", PARSE_INVALID, NULL, NULL, 0,
     "unknown parameter"},
};

static void
path_check(const char *what, size_t i, const struct path_case *tc,
	   enum parse_result r, const struct smtp_path *path, const char *error)
{
	int flags;

	if (r != tc->res)
		fprintf(stderr, "  %s case %zu: \"%s\" gave %d (%s)\n", what, i,
			tc->args, (int)r, r == PARSE_OK ? "" : error);
	CHECK(r == tc->res);
	if (r != PARSE_OK) {
		CHECK(error != NULL && error[0] != '\0');
		if (tc->error != NULL && error != NULL)
			CHECK_STR(error, tc->error);
		return;
	}
	if (tc->res != PARSE_OK)
		return;
	CHECK_STR(path->local, tc->local);
	CHECK_STR(path->domain, tc->domain);
	flags = (path->null ? F_NULL : 0) | (path->quoted ? F_QUOTED : 0) |
		(path->had_route ? F_ROUTE : 0) |
		(path->domain_literal ? F_LITERAL : 0) |
		(path->utf8 ? F_UTF8 : 0);
	if (flags != tc->flags)
		fprintf(stderr, "  %s case %zu: flags %#x, want %#x\n", what, i,
			flags, tc->flags);
	CHECK(flags == tc->flags);
}

static void
test_mail_path(void)
{
	size_t i;

	for (i = 0; i < sizeof(mail_path_cases) / sizeof(mail_path_cases[0]);
	     i++) {
		const struct path_case *tc = &mail_path_cases[i];
		struct smtp_path path;
		struct smtp_mail_params params;
		const char *error = NULL;
		enum parse_result r;

		r = smtp_parse_mail(tc->args, &path, &params, &error);
		path_check("mail", i, tc, r, &path, error);
	}
}

static void
test_rcpt_path(void)
{
	size_t i;

	for (i = 0; i < sizeof(rcpt_path_cases) / sizeof(rcpt_path_cases[0]);
	     i++) {
		const struct path_case *tc = &rcpt_path_cases[i];
		struct smtp_path path;
		struct smtp_rcpt_params params;
		const char *error = NULL;
		enum parse_result r;

		r = smtp_parse_rcpt(tc->args, &path, &params, &error);
		path_check("rcpt", i, tc, r, &path, error);
	}
}

/* Builds "<prefix><n times c><suffix>" into a static buffer. */
static const char *
build(const char *prefix, size_t n, char c, const char *suffix)
{
	static char buf[4096];
	size_t plen = strlen(prefix), slen = strlen(suffix);

	if (plen + n + slen + 1 > sizeof(buf))
		abort();
	memcpy(buf, prefix, plen);
	memset(buf + plen, c, n);
	memcpy(buf + plen + n, suffix, slen + 1);
	return buf;
}

/* Length limits: local part 64 (quotes counted), label 63, path 256. */
static void
test_path_lengths(void)
{
	struct smtp_path path;
	struct smtp_mail_params mp;
	struct smtp_rcpt_params rp;
	const char *error;
	char dom[300];
	size_t i;

	CHECK(smtp_parse_mail(build("FROM:<", 64, 'a', "@x.example>"), &path,
			      &mp, &error) == PARSE_OK);
	CHECK(strlen(path.local) == 64);
	CHECK(smtp_parse_mail(build("FROM:<", 65, 'a', "@x.example>"), &path,
			      &mp, &error) == PARSE_TOO_LONG);
	CHECK_STR(error, "local part too long");
	CHECK(smtp_parse_mail(build("FROM:<", 300, 'a', "@x.example>"), &path,
			      &mp, &error) == PARSE_TOO_LONG);
	CHECK(smtp_parse_rcpt(build("TO:<\"", 62, 'a', "\"@x.example>"), &path,
			      &rp, &error) == PARSE_OK);
	CHECK(strlen(path.local) == 62 && path.quoted);
	CHECK(smtp_parse_rcpt(build("TO:<\"", 63, 'a', "\"@x.example>"), &path,
			      &rp, &error) == PARSE_TOO_LONG);
	CHECK(smtp_parse_rcpt(build("TO:<\"", 100, 'a', "\"@x.example>"), &path,
			      &rp, &error) == PARSE_TOO_LONG);
	/* Multi-octet characters count as octets. */
	{
		char buf[256] = "TO:<";

		for (i = 0; i < 32; i++)
			memcpy(buf + 4 + 2 * i, "\xc3\xa9", 2);
		memcpy(buf + 4 + 64, "@x.example>", sizeof("@x.example>"));
		CHECK(smtp_parse_rcpt(buf, &path, &rp, &error) == PARSE_OK);
		CHECK(path.utf8 && strlen(path.local) == 64);
		memcpy(buf + 4 + 64, "\xc3\xa9@x.example>",
		       sizeof("\xc3\xa9@x.example>"));
		CHECK(smtp_parse_rcpt(buf, &path, &rp, &error) ==
		      PARSE_TOO_LONG);
	}

	CHECK(smtp_parse_rcpt(build("TO:<u@", 63, 'b', ".example>"), &path, &rp,
			      &error) == PARSE_OK);
	CHECK(smtp_parse_rcpt(build("TO:<u@", 64, 'b', ".example>"), &path, &rp,
			      &error) == PARSE_TOO_LONG);
	CHECK_STR(error, "domain label too long");
	CHECK(smtp_parse_rcpt(build("TO:<u@x.", 64, 'b', ">"), &path, &rp,
			      &error) == PARSE_TOO_LONG);

	/* A 251-octet domain fits the 256-octet path "<u@" 251 ">";
	 * longer ones do not. */
	for (i = 0; i < 251; i++)
		dom[i] = (i % 2) ? '.' : 'd';
	dom[251] = '\0';
	CHECK(smtp_parse_rcpt(build("TO:<u@", 0, 'x', dom), &path, &rp,
			      &error) == PARSE_INVALID); /* no ">" yet */
	{
		char buf[400];

		CHECK((size_t)snprintf(buf, sizeof(buf), "TO:<u@%s>", dom) <
		      sizeof(buf));
		CHECK(smtp_parse_rcpt(buf, &path, &rp, &error) == PARSE_OK);
		CHECK(strlen(path.domain) == 251);
		CHECK((size_t)snprintf(buf, sizeof(buf), "TO:<u@%s.d.d>", dom) <
		      sizeof(buf));
		CHECK(smtp_parse_rcpt(buf, &path, &rp, &error) ==
		      PARSE_TOO_LONG);
		CHECK((size_t)snprintf(buf, sizeof(buf), "TO:<u@%s.d.d.d.d>",
				       dom) < sizeof(buf));
		CHECK(smtp_parse_rcpt(buf, &path, &rp, &error) ==
		      PARSE_TOO_LONG);
		/* A long source route counts towards the path too. */
		CHECK((size_t)snprintf(buf, sizeof(buf), "TO:<@%s:u@x.example>",
				       dom) < sizeof(buf));
		CHECK(smtp_parse_rcpt(buf, &path, &rp, &error) ==
		      PARSE_TOO_LONG);
	}
}

/*
 * MAIL and RCPT parameters
 */

struct mail_param_case {
	const char *args;
	enum parse_result res;
	int has_size;
	uint64_t size;
	int body;
	int smtputf8;
	int ret;
	const char *envid;
	const char *error;
};

static const struct mail_param_case mail_param_cases[] = {
    {"FROM:<a@b.example>", PARSE_OK, 0, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> SIZE=0", PARSE_OK, 1, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> SIZE=12345", PARSE_OK, 1, 12345, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> size=000042", PARSE_OK, 1, 42, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> SIZE=18446744073709551615", PARSE_OK, 1, UINT64_MAX, 0,
     0, 0, "", NULL},
    {"FROM:<a@b.example> SIZE=18446744073709551616", PARSE_INVALID, 0, 0, 0, 0,
     0, "", "invalid SIZE value"},
    {"FROM:<a@b.example> SIZE=99999999999999999999999", PARSE_INVALID, 0, 0, 0,
     0, 0, "", NULL},
    {"FROM:<a@b.example> SIZE=", PARSE_INVALID, 0, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> SIZE", PARSE_INVALID, 0, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> SIZE=-1", PARSE_INVALID, 0, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> SIZE=1k", PARSE_INVALID, 0, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> SIZE=1 SIZE=2", PARSE_INVALID, 0, 0, 0, 0, 0, "",
     "duplicate parameter"},
    {"FROM:<a@b.example> BODY=7BIT", PARSE_OK, 0, 0, SMTP_BODY_7BIT, 0, 0, "",
     NULL},
    {"FROM:<a@b.example> BODY=8BITMIME", PARSE_OK, 0, 0, SMTP_BODY_8BITMIME, 0,
     0, "", NULL},
    {"FROM:<a@b.example> body=8bitmime", PARSE_OK, 0, 0, SMTP_BODY_8BITMIME, 0,
     0, "", NULL},
    {"FROM:<a@b.example> BODY=BINARYMIME", PARSE_OK, 0, 0, SMTP_BODY_BINARYMIME,
     0, 0, "", NULL},
    {"FROM:<a@b.example> BODY=8BIT", PARSE_INVALID, 0, 0, 0, 0, 0, "",
     "invalid BODY value"},
    {"FROM:<a@b.example> BODY=", PARSE_INVALID, 0, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> BODY", PARSE_INVALID, 0, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> BODY=7BIT BODY=8BITMIME", PARSE_INVALID, 0, 0, 0, 0, 0,
     "", NULL},
    {"FROM:<a@b.example> SMTPUTF8", PARSE_OK, 0, 0, 0, 1, 0, "", NULL},
    {"FROM:<a@b.example> smtputf8", PARSE_OK, 0, 0, 0, 1, 0, "", NULL},
    {"FROM:<a@b.example> SMTPUTF8=yes", PARSE_INVALID, 0, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> SMTPUTF8 SMTPUTF8", PARSE_INVALID, 0, 0, 0, 0, 0, "",
     NULL},
    {"FROM:<a@b.example> RET=FULL", PARSE_OK, 0, 0, 0, 0, 1, "", NULL},
    {"FROM:<a@b.example> ret=hdrs", PARSE_OK, 0, 0, 0, 0, 2, "", NULL},
    {"FROM:<a@b.example> RET=ALL", PARSE_INVALID, 0, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> RET", PARSE_INVALID, 0, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> ENVID=QQ314159", PARSE_OK, 0, 0, 0, 0, 0, "QQ314159",
     NULL},
    {"FROM:<a@b.example> ENVID=a+2Bb+3Dc", PARSE_OK, 0, 0, 0, 0, 0, "a+2Bb+3Dc",
     NULL},
    {"FROM:<a@b.example> ENVID=a+2b", PARSE_INVALID, 0, 0, 0, 0, 0, "",
     "invalid ENVID value"},
    {"FROM:<a@b.example> ENVID=a+2", PARSE_INVALID, 0, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> ENVID=a+", PARSE_INVALID, 0, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> ENVID=a=b", PARSE_INVALID, 0, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> ENVID=\xc3\xa9", PARSE_INVALID, 0, 0, 0, 0, 0, "",
     NULL},
    {"FROM:<a@b.example> ENVID", PARSE_INVALID, 0, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> SIZE=100 BODY=8BITMIME SMTPUTF8 RET=HDRS "
     "ENVID=x1",
     PARSE_OK, 1, 100, SMTP_BODY_8BITMIME, 1, 2, "x1", NULL},
    {"FROM:<a@b.example>   SIZE=100   BODY=8BITMIME   ", PARSE_OK, 1, 100,
     SMTP_BODY_8BITMIME, 0, 0, "", NULL},
    {"FROM:<> BODY=BINARYMIME SMTPUTF8", PARSE_OK, 0, 0, SMTP_BODY_BINARYMIME,
     1, 0, "", NULL},
    /* RFC 4954 §5: AUTH is parsed and discarded. */
    {"FROM:<a@b.example> AUTH=<>", PARSE_OK, 0, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> auth=e+3Dmc2@x.example SIZE=5", PARSE_OK, 1, 5, 0, 0,
     0, "", NULL},
    {"FROM:<a@b.example> AUTH=", PARSE_INVALID, 0, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> AUTH", PARSE_INVALID, 0, 0, 0, 0, 0, "",
     "invalid AUTH value"},
    {"FROM:<a@b.example> AUTH=a+zz", PARSE_INVALID, 0, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> AUTH=<> AUTH=<>", PARSE_INVALID, 0, 0, 0, 0, 0, "",
     "duplicate parameter"},
    {"FROM:<a@b.example> X-FOO", PARSE_INVALID, 0, 0, 0, 0, 0, "",
     "unknown parameter"},
    {"FROM:<a@b.example> XFOO=bar", PARSE_INVALID, 0, 0, 0, 0, 0, "",
     "unknown parameter"},
    {"FROM:<a@b.example> NOTIFY=NEVER", PARSE_INVALID, 0, 0, 0, 0, 0, "",
     "unknown parameter"},
    {"FROM:<a@b.example> SIZES=1", PARSE_INVALID, 0, 0, 0, 0, 0, "",
     "unknown parameter"},
    {"FROM:<a@b.example> SIZE==1", PARSE_INVALID, 0, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> =1", PARSE_INVALID, 0, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> -X", PARSE_INVALID, 0, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> SI_ZE=1", PARSE_INVALID, 0, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> SIZE=1\t", PARSE_INVALID, 0, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example> X=\xc3", PARSE_INVALID, 0, 0, 0, 0, 0, "", NULL},
    {"FROM:<a@b.example>SIZE=1", PARSE_INVALID, 0, 0, 0, 0, 0, "", NULL},
};

static void
test_mail_params(void)
{
	size_t i;

	for (i = 0; i < sizeof(mail_param_cases) / sizeof(mail_param_cases[0]);
	     i++) {
		const struct mail_param_case *tc = &mail_param_cases[i];
		struct smtp_path path;
		struct smtp_mail_params p;
		const char *error = NULL;
		enum parse_result r;

		r = smtp_parse_mail(tc->args, &path, &p, &error);
		if (r != tc->res)
			fprintf(stderr, "  mail param case %zu: \"%s\" -> %d\n",
				i, tc->args, (int)r);
		CHECK(r == tc->res);
		if (r != PARSE_OK) {
			if (tc->error != NULL && error != NULL)
				CHECK_STR(error, tc->error);
			continue;
		}
		if (tc->res != PARSE_OK)
			continue;
		CHECK(p.has_size == tc->has_size);
		CHECK(p.size == tc->size);
		CHECK(p.body == tc->body);
		CHECK(p.smtputf8 == tc->smtputf8);
		CHECK(p.ret == tc->ret);
		CHECK_STR(p.envid, tc->envid);
	}
}

/* ENVID at most 100 octets, ORCPT at most 500 (RFC 3461). */
static void
test_param_lengths(void)
{
	struct smtp_path path;
	struct smtp_mail_params mp;
	struct smtp_rcpt_params rp;
	const char *error;

	CHECK(smtp_parse_mail(build("FROM:<a@b.example> ENVID=", 100, 'e', ""),
			      &path, &mp, &error) == PARSE_OK);
	CHECK(strlen(mp.envid) == 100);
	CHECK(smtp_parse_mail(build("FROM:<a@b.example> ENVID=", 101, 'e', ""),
			      &path, &mp, &error) == PARSE_TOO_LONG);
	CHECK(smtp_parse_rcpt(
		  build("TO:<a@b.example> ORCPT=rfc822;", 493, 'o', ""), &path,
		  &rp, &error) == PARSE_OK);
	CHECK(strlen(rp.orcpt) == 500);
	CHECK(smtp_parse_rcpt(
		  build("TO:<a@b.example> ORCPT=rfc822;", 494, 'o', ""), &path,
		  &rp, &error) == PARSE_TOO_LONG);
}

struct rcpt_param_case {
	const char *args;
	enum parse_result res;
	int notify;
	const char *orcpt;
	const char *error;
};

static const struct rcpt_param_case rcpt_param_cases[] = {
    {"TO:<a@b.example>", PARSE_OK, 0, "", NULL},
    {"TO:<a@b.example> NOTIFY=NEVER", PARSE_OK, 1, "", NULL},
    {"TO:<a@b.example> notify=never", PARSE_OK, 1, "", NULL},
    {"TO:<a@b.example> NOTIFY=SUCCESS", PARSE_OK, 2, "", NULL},
    {"TO:<a@b.example> NOTIFY=FAILURE", PARSE_OK, 4, "", NULL},
    {"TO:<a@b.example> NOTIFY=DELAY", PARSE_OK, 8, "", NULL},
    {"TO:<a@b.example> NOTIFY=SUCCESS,FAILURE,DELAY", PARSE_OK, 14, "", NULL},
    {"TO:<a@b.example> NOTIFY=delay,Success", PARSE_OK, 10, "", NULL},
    {"TO:<a@b.example> NOTIFY=FAILURE,FAILURE", PARSE_OK, 4, "", NULL},
    {"TO:<a@b.example> NOTIFY=NEVER,SUCCESS", PARSE_INVALID, 0, "",
     "invalid NOTIFY value"},
    {"TO:<a@b.example> NOTIFY=DELAY,NEVER", PARSE_INVALID, 0, "", NULL},
    {"TO:<a@b.example> NOTIFY=", PARSE_INVALID, 0, "", NULL},
    {"TO:<a@b.example> NOTIFY", PARSE_INVALID, 0, "", NULL},
    {"TO:<a@b.example> NOTIFY=SUCCESS,", PARSE_INVALID, 0, "", NULL},
    {"TO:<a@b.example> NOTIFY=,SUCCESS", PARSE_INVALID, 0, "", NULL},
    {"TO:<a@b.example> NOTIFY=SUCCESS,,DELAY", PARSE_INVALID, 0, "", NULL},
    {"TO:<a@b.example> NOTIFY=ALWAYS", PARSE_INVALID, 0, "", NULL},
    {"TO:<a@b.example> NOTIFY=SUCCESSFAILURE", PARSE_INVALID, 0, "", NULL},
    {"TO:<a@b.example> NOTIFY=NEVER NOTIFY=NEVER", PARSE_INVALID, 0, "",
     "duplicate parameter"},
    {"TO:<a@b.example> ORCPT=rfc822;a@b.example", PARSE_OK, 0,
     "rfc822;a@b.example", NULL},
    {"TO:<a@b.example> ORCPT=rfc822;a+2Bx@b.example", PARSE_OK, 0,
     "rfc822;a+2Bx@b.example", NULL},
    {"TO:<a@b.example> orcpt=utf-8;a@b.example NOTIFY=FAILURE,DELAY", PARSE_OK,
     12, "utf-8;a@b.example", NULL},
    {"TO:<a@b.example> ORCPT=rfc822;", PARSE_OK, 0, "rfc822;", NULL},
    {"TO:<a@b.example> ORCPT=rfc822", PARSE_INVALID, 0, "",
     "invalid ORCPT value"},
    {"TO:<a@b.example> ORCPT=;a@b.example", PARSE_INVALID, 0, "", NULL},
    {"TO:<a@b.example> ORCPT=rf(c;a@b", PARSE_INVALID, 0, "", NULL},
    {"TO:<a@b.example> ORCPT=rfc822;a+zz", PARSE_INVALID, 0, "", NULL},
    {"TO:<a@b.example> ORCPT=rfc822;a+", PARSE_INVALID, 0, "", NULL},
    {"TO:<a@b.example> ORCPT", PARSE_INVALID, 0, "", NULL},
    {"TO:<a@b.example> ORCPT=rfc822;a ORCPT=rfc822;b", PARSE_INVALID, 0, "",
     NULL},
    {"TO:<a@b.example> BODY=8BITMIME", PARSE_INVALID, 0, "",
     "unknown parameter"},
    {"TO:<a@b.example> SMTPUTF8", PARSE_INVALID, 0, "", "unknown parameter"},
    {"TO:<a@b.example> AUTH=<>", PARSE_INVALID, 0, "", "unknown parameter"},
    {"TO:<a@b.example> FOO", PARSE_INVALID, 0, "", "unknown parameter"},
    {"TO:<a@b.example> NOTIFY=NEVER junk=", PARSE_INVALID, 0, "", NULL},
};

static void
test_rcpt_params(void)
{
	size_t i;

	for (i = 0; i < sizeof(rcpt_param_cases) / sizeof(rcpt_param_cases[0]);
	     i++) {
		const struct rcpt_param_case *tc = &rcpt_param_cases[i];
		struct smtp_path path;
		struct smtp_rcpt_params p;
		const char *error = NULL;
		enum parse_result r;

		r = smtp_parse_rcpt(tc->args, &path, &p, &error);
		if (r != tc->res)
			fprintf(stderr, "  rcpt param case %zu: \"%s\" -> %d\n",
				i, tc->args, (int)r);
		CHECK(r == tc->res);
		if (r != PARSE_OK) {
			if (tc->error != NULL && error != NULL)
				CHECK_STR(error, tc->error);
			continue;
		}
		if (tc->res != PARSE_OK)
			continue;
		CHECK(p.notify == tc->notify);
		CHECK_STR(p.orcpt, tc->orcpt);
	}
}

/*
 * BDAT
 */

struct bdat_case {
	const char *args;
	enum parse_result res;
	uint64_t size;
	int last;
};

static const struct bdat_case bdat_cases[] = {
    {"0", PARSE_OK, 0, 0},
    {"1000", PARSE_OK, 1000, 0},
    {"1000 LAST", PARSE_OK, 1000, 1},
    {"1000 last", PARSE_OK, 1000, 1},
    {"0 LaSt", PARSE_OK, 0, 1},
    {"1000  LAST  ", PARSE_OK, 1000, 1},
    {"  42", PARSE_OK, 42, 0},
    {"42 ", PARSE_OK, 42, 0},
    {"007", PARSE_OK, 7, 0},
    {"18446744073709551615 LAST", PARSE_OK, UINT64_MAX, 1},
    {"18446744073709551616", PARSE_INVALID, 0, 0},
    {"99999999999999999999999999", PARSE_INVALID, 0, 0},
    {"", PARSE_INVALID, 0, 0},
    {"LAST", PARSE_INVALID, 0, 0},
    {"-1", PARSE_INVALID, 0, 0},
    {"+1", PARSE_INVALID, 0, 0},
    {"1e3", PARSE_INVALID, 0, 0},
    {"100LAST", PARSE_INVALID, 0, 0},
    {"100 LASTX", PARSE_INVALID, 0, 0},
    {"100 LAS", PARSE_INVALID, 0, 0},
    {"100 LAST x", PARSE_INVALID, 0, 0},
    {"100 FIRST", PARSE_INVALID, 0, 0},
    {"100\tLAST", PARSE_INVALID, 0, 0},
    {"100 200", PARSE_INVALID, 0, 0},
};

static void
test_bdat(void)
{
	size_t i;

	for (i = 0; i < sizeof(bdat_cases) / sizeof(bdat_cases[0]); i++) {
		const struct bdat_case *tc = &bdat_cases[i];
		uint64_t size = 12345;
		int last = 7;
		const char *error = NULL;
		enum parse_result r;

		r = smtp_parse_bdat(tc->args, &size, &last, &error);
		if (r != tc->res)
			fprintf(stderr, "  bdat case %zu: \"%s\"\n", i,
				tc->args);
		CHECK(r == tc->res);
		if (r == PARSE_OK && tc->res == PARSE_OK) {
			CHECK(size == tc->size);
			CHECK(last == tc->last);
		} else if (r != PARSE_OK) {
			CHECK(error != NULL);
		}
	}
}

/*
 * Body decoder
 */

struct body_case {
	const char *name;
	int mode;
	size_t max_line;
	const char *in;
	size_t inlen;
	const char *out;
	size_t outlen;
	int end;
	size_t consumed; /* ALL: everything */
	int flags;	 /* B_* */
	uint64_t lines;
};

#define DATA SMTP_BODY_MODE_DATA
#define BDAT SMTP_BODY_MODE_BDAT

/* For BDAT the expected output includes what smtp_body_finish adds. */
static const struct body_case body_cases[] = {
    /* DATA: end marker and dot-unstuffing (RFC 5321 §4.5.2). */
    {"simple", DATA, 1000, L("abc\r\n.\r\n"), L("abc\n"), 1, ALL, 0, 1},
    {"empty message", DATA, 1000, L(".\r\n"), L(""), 1, ALL, 0, 0},
    {"empty line", DATA, 1000, L("\r\n.\r\n"), L("\n"), 1, ALL, 0, 1},
    {"pipelined rest", DATA, 1000, L("abc\r\n.\r\nQUIT\r\n"), L("abc\n"), 1, 8,
     0, 1},
    {"end first, rest", DATA, 1000, L(".\r\nRSET\r\n"), L(""), 1, 3, 0, 0},
    {"two lines", DATA, 1000, L("a\r\nb\r\n.\r\n"), L("a\nb\n"), 1, ALL, 0, 2},
    {"blank lines", DATA, 1000, L("\r\n\r\n.\r\n"), L("\n\n"), 1, ALL, 0, 2},
    {"stuffed dot", DATA, 1000, L("..foo\r\n.\r\n"), L(".foo\n"), 1, ALL, 0, 1},
    {"single dot removed", DATA, 1000, L(".foo\r\n.\r\n"), L("foo\n"), 1, ALL,
     0, 1},
    {"dot line", DATA, 1000, L("a\r\n..\r\n.\r\n"), L("a\n.\n"), 1, ALL, 0, 2},
    {"three dots", DATA, 1000, L("...\r\n.\r\n"), L("..\n"), 1, ALL, 0, 1},
    {"dot space", DATA, 1000, L(". \r\n.\r\n"), L(" \n"), 1, ALL, 0, 1},
    {"dot mid-line", DATA, 1000, L("a.b\r\n.\r\n"), L("a.b\n"), 1, ALL, 0, 1},
    {"dot at end of line", DATA, 1000, L("a.\r\n.\r\n"), L("a.\n"), 1, ALL, 0,
     1},
    {"unfinished", DATA, 1000, L("abc\r\n"), L("abc\n"), 0, ALL, 0, 1},
    {"unfinished dot", DATA, 1000, L("abc\r\n."), L("abc\n"), 0, ALL, 0, 1},
    {"unfinished dot CR", DATA, 1000, L("abc\r\n.\r"), L("abc\n"), 0, ALL, 0,
     1},
    {"unfinished CR", DATA, 1000, L("abc\r"), L("abc"), 0, ALL, 0, 0},
    {"nothing", DATA, 1000, L(""), L(""), 0, ALL, 0, 0},
    {"8-bit and NUL", DATA, 1000, L("caf\xc3\xa9 \xff\x00\x80\r\n.\r\n"),
     L("caf\xc3\xa9 \xff\x00\x80\n"), 1, ALL, 0, 1},
    {"tab and controls", DATA, 1000, L("a\tb\x01\x1b\x7f\r\n.\r\n"),
     L("a\tb\x01\x1b\x7f\n"), 1, ALL, 0, 1},
    /* SMTP smuggling: no bare CR or LF variant ends DATA. */
    {"LF.LF", DATA, 1000, L("a\n.\nb\r\n.\r\n"), L("a\n.\nb\n"), 1, ALL, B_LF,
     1},
    {"LF.LF only", DATA, 1000, L("a\n.\n"), L("a\n.\n"), 0, ALL, B_LF, 0},
    {"CR.CR", DATA, 1000, L("a\r.\rb\r\n.\r\n"), L("a.b\n"), 1, ALL, B_CR, 1},
    {"CR.CR only", DATA, 1000, L("a\r.\r"), L("a."), 0, ALL, B_CR, 0},
    {"LF.CRLF", DATA, 1000, L("a\n.\r\nb\r\n.\r\n"), L("a\n.\nb\n"), 1, ALL,
     B_LF, 2},
    {"LF.CRLF only", DATA, 1000, L("a\n.\r\n"), L("a\n.\n"), 0, ALL, B_LF, 1},
    {"CRLF.LF", DATA, 1000, L("a\r\n.\nb\r\n.\r\n"), L("a\n\nb\n"), 1, ALL,
     B_LF, 2},
    {"CRLF.LF only", DATA, 1000, L("a\r\n.\n"), L("a\n\n"), 0, ALL, B_LF, 1},
    {"CR.CRLF", DATA, 1000, L("a\r.\r\nb\r\n.\r\n"), L("a.\nb\n"), 1, ALL, B_CR,
     2},
    {"CR.CRLF only", DATA, 1000, L("a\r.\r\n"), L("a.\n"), 0, ALL, B_CR, 1},
    {"CRLF.CR", DATA, 1000, L("a\r\n.\rb\r\n.\r\n"), L("a\nb\n"), 1, ALL, B_CR,
     2},
    {"CRLF.CR only", DATA, 1000, L("a\r\n.\rb"), L("a\nb"), 0, ALL, B_CR, 1},
    {"CRLF.CRCRLF", DATA, 1000, L("a\r\n.\r\r\n.\r\n"), L("a\n\n"), 1, ALL,
     B_CR, 2},
    {"CRLF.LFCRLF", DATA, 1000, L("a\r\n.\n\r\n.\r\n"), L("a\n\n\n"), 1, ALL,
     B_LF, 2},
    {"CRCRLF", DATA, 1000, L("a\r\r\n.\r\n"), L("a\n"), 1, ALL, B_CR, 1},
    {"LFCRLF", DATA, 1000, L("a\n\r\n.\r\n"), L("a\n\n"), 1, ALL, B_LF, 1},
    {"LF.CR.LF", DATA, 1000, L("\n.\r.\n"), L("\n..\n"), 0, ALL, B_LF | B_CR,
     0},
    {"start LF.LF", DATA, 1000, L(".\n.\r\n"), L("\n.\n"), 0, ALL, B_LF, 1},
    {"start bare LF", DATA, 1000, L("\n.\r\n"), L("\n.\n"), 0, ALL, B_LF, 1},
    {"start bare CR", DATA, 1000, L("\r.\r\n"), L(".\n"), 0, ALL, B_CR, 1},
    {"start dot CR x", DATA, 1000, L(".\rx\r\n.\r\n"), L("x\n"), 1, ALL, B_CR,
     1},
    {"CRCR", DATA, 1000, L("\r\r"), L(""), 0, ALL, B_CR, 0},
    {"LF LF", DATA, 1000, L("\n\n.\n\n"), L("\n\n.\n\n"), 0, ALL, B_LF, 0},
    {"smuggled then real", DATA, 1000,
     L("x\r\n\n.\nMAIL FROM:<a@b>\r\n.\r\nQUIT"),
     L("x\n\n.\nMAIL FROM:<a@b>\n"), 1, 26, B_LF, 2},
    /* Line length: max_line counts CRLF, not the stuffing dot. */
    {"len ok", DATA, 10, L("12345678\r\n.\r\n"), L("12345678\n"), 1, ALL, 0, 1},
    {"len long", DATA, 10, L("123456789\r\n.\r\n"), L("123456789\n"), 1, ALL,
     B_LONG, 1},
    {"len stuffed ok", DATA, 10, L("..2345678\r\n.\r\n"), L(".2345678\n"), 1,
     ALL, 0, 1},
    {"len bare CR counts", DATA, 10, L("1234567\r8\r\n.\r\n"), L("12345678\n"),
     1, ALL, B_CR | B_LONG, 1},
    {"len sticky", DATA, 10, L("123456789\r\nx\r\n.\r\n"), L("123456789\nx\n"),
     1, ALL, B_LONG, 2},
    {"len unlimited", DATA, 0, L("1234567890123\r\n.\r\n"),
     L("1234567890123\n"), 1, ALL, 0, 1},
    {"len unfinished", DATA, 10, L("1234567890"), L("1234567890"), 0, ALL,
     B_LONG, 0},
    /* BDAT: no dot handling, no end; finish completes the last line. */
    {"bdat lines", BDAT, 1000, L("abc\r\ndef\r\n"), L("abc\ndef\n"), 0, ALL, 0,
     2},
    {"bdat unterminated", BDAT, 1000, L("abc"), L("abc\n"), 0, ALL, 0, 1},
    {"bdat empty", BDAT, 1000, L(""), L(""), 0, ALL, 0, 0},
    {"bdat blank", BDAT, 1000, L("\r\n"), L("\n"), 0, ALL, 0, 1},
    {"bdat dots kept", BDAT, 1000, L("..x\r\n.\r\nmore\r\n"),
     L("..x\n.\nmore\n"), 0, ALL, 0, 3},
    {"bdat trailing CR", BDAT, 1000, L("abc\r"), L("abc\n"), 0, ALL, B_CR, 1},
    {"bdat line then CR", BDAT, 1000, L("a\r\n\r"), L("a\n\n"), 0, ALL, B_CR,
     2},
    {"bdat bare CR", BDAT, 1000, L("a\rb\r\n"), L("ab\n"), 0, ALL, B_CR, 1},
    {"bdat bare LF", BDAT, 1000, L("a\nb\r\n"), L("a\nb\n"), 0, ALL, B_LF, 1},
    {"bdat ends bare LF", BDAT, 1000, L("a\n"), L("a\n"), 0, ALL, B_LF, 0},
    {"bdat LF then CR", BDAT, 1000, L("a\n\r"), L("a\n\n"), 0, ALL, B_LF | B_CR,
     1},
    {"bdat binary", BDAT, 1000, L("\x00\xff\x80\r\n\x01"),
     L("\x00\xff\x80\n\x01\n"), 0, ALL, 0, 2},
    {"bdat len ok", BDAT, 10, L("12345678"), L("12345678\n"), 0, ALL, 0, 1},
    {"bdat len long", BDAT, 10, L("123456789"), L("123456789\n"), 0, ALL,
     B_LONG, 1},
    {"bdat len long CRLF", BDAT, 10, L("123456789\r\n"), L("123456789\n"), 0,
     ALL, B_LONG, 1},
};

/* Result of one decode run. */
struct body_result {
	char *out;
	size_t outlen;
	int end;
	size_t consumed;
	struct smtp_body b;
};

static uint64_t
rng_next(uint64_t *s)
{
	/* xorshift64: reproducible splits without libc's rand state. */
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Decodes in[0..inlen) in chunks: split 0 whole, 1 one byte at a time,
 * otherwise random chunk sizes from the seed split. Each chunk and its
 * output buffer are exact-size heap copies, so ASan sees any overrun. */
static void
body_run(int mode, size_t max_line, const char *in, size_t inlen,
	 uint64_t split, int in_place, struct body_result *r)
{
	size_t pos = 0;
	uint64_t rng = split | 1;

	memset(r, 0, sizeof(*r));
	r->out = malloc(inlen + 2);
	smtp_body_init(&r->b, mode, max_line);
	for (;;) {
		size_t n = inlen - pos, outlen = 0, used = 0;
		char *chunk, *out;
		enum smtp_body_result res;

		if (split == 1 && n > 1)
			n = 1;
		else if (split > 1 && n > 1)
			n = (size_t)(rng_next(&rng) % (n < 7 ? n + 1 : 7));
		chunk = malloc(n ? n : 1);
		memcpy(chunk, in + pos, n);
		out = in_place ? chunk : malloc(n ? n : 1);
		res = smtp_body_feed(&r->b, chunk, n, out, &outlen, &used);
		CHECK(outlen <= n);
		CHECK(used <= n);
		CHECK(res == SMTP_BODY_END || used == n);
		memcpy(r->out + r->outlen, out, outlen);
		r->outlen += outlen;
		pos += used;
		if (!in_place)
			free(out);
		free(chunk);
		if (res == SMTP_BODY_END) {
			r->end = 1;
			break;
		}
		if (pos == inlen)
			break;
	}
	r->consumed = pos;
	if (mode == SMTP_BODY_MODE_BDAT) {
		char *fin = malloc(1);
		size_t k = smtp_body_finish(&r->b, fin);

		CHECK(k <= 1);
		memcpy(r->out + r->outlen, fin, k);
		r->outlen += k;
		free(fin);
	}
}

static int
body_flags(const struct smtp_body *b)
{
	return (b->bare_cr ? B_CR : 0) | (b->bare_lf ? B_LF : 0) |
	       (b->too_long ? B_LONG : 0);
}

/* Only the first failing run of a case is described. */
static int body_reported;

/* Checks a run against the expected values of tc. */
static void
body_check(const struct body_case *tc, const struct body_result *r,
	   const char *how)
{
	size_t want_consumed = tc->consumed == ALL ? tc->inlen : tc->consumed;
	int ok = r->outlen == tc->outlen &&
		 memcmp(r->out, tc->out, tc->outlen) == 0 &&
		 r->end == tc->end && r->consumed == want_consumed &&
		 body_flags(&r->b) == tc->flags && r->b.lines == tc->lines &&
		 r->b.out_bytes == r->outlen;

	if (!ok && !body_reported) {
		body_reported = 1;
		fprintf(stderr,
			"  body \"%s\" (%s): outlen %zu/%zu end %d/%d "
			"consumed %zu/%zu flags %#x/%#x lines %llu/%llu\n",
			tc->name, how, r->outlen, tc->outlen, r->end, tc->end,
			r->consumed, want_consumed, body_flags(&r->b),
			tc->flags, (unsigned long long)r->b.lines,
			(unsigned long long)tc->lines);
	}
	CHECK(ok);
}

static void
body_check_all(const struct body_case *tc)
{
	struct body_result r;
	uint64_t seed;

	body_reported = 0;
	body_run(tc->mode, tc->max_line, tc->in, tc->inlen, 0, 0, &r);
	body_check(tc, &r, "whole");
	free(r.out);
	body_run(tc->mode, tc->max_line, tc->in, tc->inlen, 1, 0, &r);
	body_check(tc, &r, "trickle");
	free(r.out);
	body_run(tc->mode, tc->max_line, tc->in, tc->inlen, 0, 1, &r);
	body_check(tc, &r, "in place");
	free(r.out);
	for (seed = 2; seed < 60; seed++) {
		body_run(tc->mode, tc->max_line, tc->in, tc->inlen,
			 seed * 0x9e3779b97f4a7c15ULL, seed & 1, &r);
		body_check(tc, &r, "random");
		free(r.out);
	}
}

static void
test_body_table(void)
{
	size_t i;

	for (i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]); i++)
		body_check_all(&body_cases[i]);
}

/* 998 octets + CRLF is the longest line at max_line 1000 (RFC 5321
 * §4.5.3.1.6); 999 is too long. 8-bit octets pass through. */
static void
test_body_line_limit(void)
{
	static const size_t lens[] = {997, 998, 999, 1000, 5000};
	size_t i;

	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t n = lens[i], j;
		char *in = malloc(n + 16), *out = malloc(n + 16);
		struct body_case tc;

		for (j = 0; j < n; j++)
			in[j] = (char)(0x80 + (j % 0x7f)); /* 8-bit, no CR */
		in[0] = 'x';
		memcpy(in + n, "\r\n.\r\n", 5);
		memcpy(out, in, n);
		out[n] = '\n';
		memset(&tc, 0, sizeof(tc));
		tc.name = "long line";
		tc.mode = DATA;
		tc.max_line = 1000;
		tc.in = in;
		tc.inlen = n + 5;
		tc.out = out;
		tc.outlen = n + 1;
		tc.end = 1;
		tc.consumed = ALL;
		tc.flags = n > 998 ? B_LONG : 0;
		tc.lines = 1;
		body_check_all(&tc);

		/* The same line, dot-stuffed: the dot is not counted. */
		memmove(in + 1, in, n + 5);
		in[0] = '.';
		tc.inlen = n + 6;
		body_check_all(&tc);

		/* BDAT, without the end marker: finish adds the LF. */
		tc.mode = BDAT;
		tc.in = in + 1;
		tc.inlen = n + 2;
		tc.lines = 1;
		tc.end = 0;
		body_check_all(&tc);
		tc.inlen = n; /* unterminated */
		body_check_all(&tc);
		free(in);
		free(out);
	}
}

/* A large message in DATA mode: many lines, some stuffed, checked against
 * a straightforward reference decoder at many split points. */
static void
test_body_large(void)
{
	size_t cap = 200000, n = 0, m = 0, lines = 0;
	char *in = malloc(cap + 8), *want = malloc(cap + 8);
	uint64_t rng = 12345;
	struct body_case tc;

	while (n < cap - 200) {
		size_t len = (size_t)(rng_next(&rng) % 120), j;
		int dot = (rng_next(&rng) % 5) == 0;

		for (j = 0; j < len; j++) {
			char c = (char)(' ' + rng_next(&rng) % 95);

			if (j == 0 && dot)
				c = '.';
			/* Stuff like a client does (RFC 5321 §4.5.2). */
			if (j == 0 && c == '.')
				in[n++] = '.';
			in[n++] = c;
			want[m++] = c;
		}
		memcpy(in + n, "\r\n", 2);
		n += 2;
		want[m++] = '\n';
		lines++;
	}
	memcpy(in + n, ".\r\n", 3);
	n += 3;
	memset(&tc, 0, sizeof(tc));
	tc.name = "large";
	tc.mode = DATA;
	tc.max_line = 1000;
	tc.in = in;
	tc.inlen = n;
	tc.out = want;
	tc.outlen = m;
	tc.end = 1;
	tc.consumed = ALL;
	tc.lines = lines;
	body_check_all(&tc);
	free(in);
	free(want);
}

/* After the end marker the decoder consumes nothing more; zero-length
 * feeds are harmless. */
static void
test_body_after_end(void)
{
	struct smtp_body b;
	char out[16];
	size_t outlen, used;

	smtp_body_init(&b, SMTP_BODY_MODE_DATA, 1000);
	CHECK(smtp_body_feed(&b, "", 0, out, &outlen, &used) == SMTP_BODY_MORE);
	CHECK(outlen == 0 && used == 0);
	CHECK(smtp_body_feed(&b, "x\r\n.\r\nab", 8, out, &outlen, &used) ==
	      SMTP_BODY_END);
	CHECK(outlen == 2 && used == 6);
	CHECK(smtp_body_feed(&b, "ab", 2, out, &outlen, &used) ==
	      SMTP_BODY_END);
	CHECK(outlen == 0 && used == 0);
	CHECK(smtp_body_finish(&b, out) == 0);

	/* BDAT chunks: a CR ending one chunk and the LF starting the next
	 * are one CRLF. */
	smtp_body_init(&b, SMTP_BODY_MODE_BDAT, 1000);
	CHECK(smtp_body_feed(&b, "ab\r", 3, out, &outlen, &used) ==
	      SMTP_BODY_MORE);
	CHECK(outlen == 2 && used == 3);
	CHECK(smtp_body_feed(&b, "\ncd", 3, out, &outlen, &used) ==
	      SMTP_BODY_MORE);
	CHECK(outlen == 3 && memcmp(out, "\ncd", 3) == 0);
	CHECK(smtp_body_finish(&b, out) == 1 && out[0] == '\n');
	CHECK(!b.bare_cr && !b.bare_lf && b.lines == 2 && b.out_bytes == 6);
	/* A second finish adds nothing. */
	CHECK(smtp_body_finish(&b, out) == 0);
}

int
main(void)
{
	RUN(test_command);
	RUN(test_command_args_string);
	RUN(test_mail_path);
	RUN(test_rcpt_path);
	RUN(test_path_lengths);
	RUN(test_mail_params);
	RUN(test_param_lengths);
	RUN(test_rcpt_params);
	RUN(test_bdat);
	RUN(test_body_table);
	RUN(test_body_line_limit);
	RUN(test_body_large);
	RUN(test_body_after_end);
	return HARNESS_DONE();
}
