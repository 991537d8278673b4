/* Pure SMTP parsing: command lines, paths and ESMTP parameters of MAIL and
 * RCPT, BDAT arguments, and the DATA/BDAT body decoder. No I/O, no logging,
 * so that all of it is unit-tested and fuzzed. */
#ifndef POSTERN_SMTP_PARSE_H
#define POSTERN_SMTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

enum parse_result {
	PARSE_OK = 0,
	PARSE_AGAIN,	/* need more bytes */
	PARSE_INVALID,	/* syntax error; detail in *error_r */
	PARSE_TOO_LONG, /* a length limit was exceeded */
};

#define SMTP_VERB_MAX 15

/* Splits a command line (without CRLF) into an upper-cased verb and the
 * arguments after one or more spaces. args_r points into line and stays
 * valid as long as line. Refuses NUL, CR, LF and other control characters
 * except TAB (PARSE_INVALID), verbs longer than SMTP_VERB_MAX or not made of
 * letters. */
enum parse_result smtp_parse_command(const char *line, size_t len,
				     char verb[SMTP_VERB_MAX + 1],
				     const char **args_r, const char **error_r);

#define SMTP_LOCAL_MAX 64
#define SMTP_DOMAIN_MAX 255

/* A reverse- or forward-path. For a quoted local part, local holds the
 * unquoted content and quoted is set. A source route (<@a,@b:u@d>) is
 * accepted and dropped (RFC 5321 §4.1.2, Appendix C); had_route says so.
 * Address literals ([192.0.2.1], [IPv6:...]) are kept with brackets in
 * domain and flagged. */
struct smtp_path {
	int null; /* "<>" */
	int quoted;
	int had_route;
	int domain_literal;
	int utf8; /* non-ASCII octets present (SMTPUTF8) */
	char local[SMTP_LOCAL_MAX + 1];
	char domain[SMTP_DOMAIN_MAX + 1]; /* lower-cased unless literal */
};

#define SMTP_BODY_7BIT 0
#define SMTP_BODY_8BITMIME 1
#define SMTP_BODY_BINARYMIME 2

struct smtp_mail_params {
	uint64_t size; /* SIZE=, 0 when absent */
	int has_size;
	int body; /* SMTP_BODY_* */
	int smtputf8;
	/* DSN (RFC 3461) parameters are parsed for issue 3: */
	int ret; /* 0 none, 1 FULL, 2 HDRS */
	char envid[101];
};

struct smtp_rcpt_params {
	int notify; /* bit 1 NEVER, 2 SUCCESS, 4 FAILURE, 8 DELAY */
	char orcpt[501];
};

/* Parses the argument of MAIL: "FROM:<path> [params]" (case-insensitive
 * FROM, no space allowed before the path per RFC 5321 but tolerated like
 * Postfix). Unknown parameters are PARSE_INVALID with error "unknown
 * parameter". The null path is allowed. */
enum parse_result smtp_parse_mail(const char *args, struct smtp_path *path,
				  struct smtp_mail_params *params,
				  const char **error_r);

/* Parses the argument of RCPT: "TO:<path> [params]". The null path is
 * refused; "<postmaster>" without domain is accepted with an empty domain
 * (RFC 5321 §4.1.1.3). */
enum parse_result smtp_parse_rcpt(const char *args, struct smtp_path *path,
				  struct smtp_rcpt_params *params,
				  const char **error_r);

/* Parses the argument of BDAT: "<size> [LAST]" (RFC 3030). */
enum parse_result smtp_parse_bdat(const char *args, uint64_t *size_r,
				  int *last_r, const char **error_r);

/* The body decoder, one per DATA or BDAT transfer. In DATA mode it removes
 * the dot-stuffing and stops exactly after CRLF "." CRLF; in BDAT mode it
 * never ends by itself. In both modes CRLF becomes LF in the output, and a
 * bare CR or bare LF, or a line longer than max_line octets (CRLF
 * included), sets a sticky error flag but never ends the message: only the
 * real CRLF.CRLF does, so no smuggling variant can end DATA early. */
struct smtp_body {
	int mode;	 /* SMTP_BODY_MODE_* */
	int state;	 /* internal */
	size_t line_len; /* octets of the current line so far */
	size_t max_line;
	uint64_t lines;			/* LF written so far */
	uint64_t out_bytes;		/* octets written (LF line ends) */
	int bare_cr, bare_lf, too_long; /* sticky errors */
};

#define SMTP_BODY_MODE_DATA 0
#define SMTP_BODY_MODE_BDAT 1

enum smtp_body_result {
	SMTP_BODY_MORE, /* all input consumed, message goes on */
	SMTP_BODY_END,	/* DATA ended; *consumed_r says where */
};

void smtp_body_init(struct smtp_body *b, int mode, size_t max_line);

/* Decodes up to inlen octets of in into out (which must hold inlen octets;
 * output is never longer than input). *outlen_r gets the octets written
 * and *consumed_r the octets of input used (all of them unless END; the
 * end marker is consumed). Resumable at any byte boundary. */
enum smtp_body_result smtp_body_feed(struct smtp_body *b, const char *in,
				     size_t inlen, char *out, size_t *outlen_r,
				     size_t *consumed_r);

/* For BDAT: call at the LAST chunk. A pending CR at the end of the data is
 * a bare CR; a last line without LF is completed with one. Writes at most
 * one octet into out; returns the number written. */
size_t smtp_body_finish(struct smtp_body *b, char *out);

#endif
