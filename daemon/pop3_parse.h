/* Pure POP3 parsing: command lines (RFC 1939, RFC 2449), message numbers
 * and the RETR/TOP output encoder. No I/O and no logging, so that all of it
 * is unit-tested and fuzzed. SASL (base64, PLAIN, LOGIN) is in sasl.h. */
#ifndef POSTERN_POP3_PARSE_H
#define POSTERN_POP3_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Our own names rather than smtp_parse.h's enum parse_result, so that a
 * file may include both headers. */
enum pop3_parse_result {
	POP3_PARSE_OK = 0,
	POP3_PARSE_INVALID,  /* syntax error; detail in *error_r */
	POP3_PARSE_TOO_LONG, /* a length limit was exceeded */
};

#define POP3_VERB_MAX 4		/* RFC 2449 §3: keywords are 3 or 4 chars */
#define POP3_ARG_MAX 40		/* RFC 2449 §3: each argument up to 40 */
#define POP3_ARGS_MAX 8		/* more than any command takes */
#define POP3_LINE_MAX 255	/* RFC 2449 §4: octets incl. CRLF */
#define POP3_SASL_LINE_MAX 4096 /* SASL continuation lines, incl. CRLF */

/* A command line split into its keyword and the rest. */
struct pop3_command {
	char verb[POP3_VERB_MAX + 1]; /* upper case */
	char *args;		      /* after the verb and one SP, or NULL
					 when there is none; points into the
					 line and lives as long as it */
};

/* Splits a command line without its line end (len octets, not necessarily
 * NUL-terminated at len, but line[len] must be writable: a NUL is stored
 * there) into cmd. The keyword is 3 or 4 letters, case-insensitive; it is
 * followed by nothing or by one SP and a non-empty rest. Octets below 0x20
 * and 0x7F are refused (PARSE_INVALID); len + 2 > max_line (the CRLF
 * counts) gives PARSE_TOO_LONG. */
enum pop3_parse_result pop3_parse_command(char *line, size_t len,
					  size_t max_line,
					  struct pop3_command *cmd,
					  const char **error_r);

/* Splits args (from pop3_parse_command, may be NULL for no arguments) in
 * place at single SPs into argv (up to max_args entries). An empty argument
 * (two SPs in a row, a leading or trailing SP) is PARSE_INVALID; more than
 * max_args arguments is PARSE_INVALID; an argument longer than max_arg_len
 * is PARSE_TOO_LONG. argv entries point into args. */
enum pop3_parse_result pop3_parse_args(char *args, char **argv, size_t max_args,
				       size_t max_arg_len, size_t *argc_r,
				       const char **error_r);

/* Parses an unsigned decimal number: 1 or more digits only (no sign, no
 * space), at most max. Returns PARSE_OK, or PARSE_INVALID on bad syntax,
 * overflow or a value above max. */
enum pop3_parse_result pop3_parse_number(const char *s, uint64_t max,
					 uint64_t *num_r, const char **error_r);

/* Parses a message number in 1..n (RFC 1939 §5) into a zero-based index.
 * PARSE_INVALID with "invalid message number" for bad syntax and "no such
 * message" for a number out of range. */
enum pop3_parse_result pop3_parse_msgnum(const char *s, size_t n,
					 size_t *index_r, const char **error_r);

/* The RETR/TOP encoder. Input is a stored message (LF line ends; an
 * existing CRLF passes unchanged); output uses CRLF line ends and is
 * dot-stuffed (RFC 1939 §3: a line starting with "." gets another one).
 * For TOP it stops after the headers, the blank line and at most
 * top_lines body lines (RFC 1939 §7). Resumable at any input boundary. */
struct pop3_encoder {
	int top;	     /* 1 for TOP */
	uint64_t lines_left; /* TOP: body lines still to send */
	int in_body;	     /* past the blank line after the headers */
	int line_start;	     /* the next octet starts a line */
	int line_blank;	     /* the current line has only had CRs so far */
	int prev_cr;	     /* the last octet was CR */
	int done;	     /* TOP limit reached: ignore further input */
	int any;	     /* some output was produced */
};

void pop3_encoder_init(struct pop3_encoder *e, int top, uint64_t top_lines);

/* Encodes from in (inlen octets) into out (outcap octets), stopping when
 * the input is used up, the TOP limit is reached or out has fewer than 2
 * octets left (one input octet becomes at most 2). *consumed_r gets the
 * input octets used (all of them once the TOP limit is reached: the rest
 * is not wanted); returns the number of octets written. */
size_t pop3_encoder_feed(struct pop3_encoder *e, const char *in, size_t inlen,
			 char *out, size_t outcap, size_t *consumed_r);

/* 1 when no further input is wanted (TOP limit reached). */
int pop3_encoder_is_done(const struct pop3_encoder *e);

#define POP3_ENCODER_FINISH_MAX 5
/* Ends the output at the end of input: a CRLF when the last line lacked
 * one, then the terminating ".\r\n". Writes at most POP3_ENCODER_FINISH_MAX
 * octets into out and returns how many. */
size_t pop3_encoder_finish(struct pop3_encoder *e, char *out);

#endif
