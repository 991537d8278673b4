/* Pure POP3 parsing: command lines, message numbers and the RETR/TOP
 * encoder (CRLF line ends and dot-stuffing). No I/O, no logging. SASL
 * decoding is shared with SMTP and lives in sasl.c. */
#include <string.h>

#include "pop3_parse.h"

static int pop3_is_alpha(unsigned char c);

static int
pop3_is_alpha(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

enum pop3_parse_result
pop3_parse_command(char *line, size_t len, size_t max_line,
		   struct pop3_command *cmd, const char **error_r)
{
	size_t i, vlen;

	cmd->verb[0] = '\0';
	cmd->args = NULL;
	/* RFC 2449 §4: a command line is at most 255 octets with its CRLF. */
	if (len > max_line || len + 2 > max_line) {
		*error_r = "line too long";
		return POP3_PARSE_TOO_LONG;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c < 0x20 || c == 0x7f) {
			*error_r = "control character in command";
			return POP3_PARSE_INVALID;
		}
	}
	line[len] = '\0';

	/* RFC 2449 §3: keywords are three or four printable ASCII
	 * characters, case-insensitive; every POP3 keyword is letters. */
	for (vlen = 0; vlen < len && line[vlen] != ' '; vlen++) {
		if (!pop3_is_alpha((unsigned char)line[vlen]) ||
		    vlen >= POP3_VERB_MAX) {
			*error_r = "invalid command keyword";
			return POP3_PARSE_INVALID;
		}
		cmd->verb[vlen] =
		    line[vlen] >= 'a' ? (char)(line[vlen] - 32) : line[vlen];
	}
	cmd->verb[vlen] = '\0';
	if (vlen < 3) {
		cmd->verb[0] = '\0';
		*error_r = "invalid command keyword";
		return POP3_PARSE_INVALID;
	}
	if (vlen == len)
		return POP3_PARSE_OK;
	/* RFC 2449 §3: the keyword and arguments are separated by a single
	 * SPACE; an empty rest means a stray trailing space. */
	if (vlen + 1 == len || line[vlen + 1] == ' ') {
		*error_r = "empty argument";
		return POP3_PARSE_INVALID;
	}
	cmd->args = line + vlen + 1;
	return POP3_PARSE_OK;
}

enum pop3_parse_result
pop3_parse_args(char *args, char **argv, size_t max_args, size_t max_arg_len,
		size_t *argc_r, const char **error_r)
{
	size_t argc = 0;
	char *p = args, *sp;

	*argc_r = 0;
	if (args == NULL)
		return POP3_PARSE_OK;
	for (;;) {
		size_t alen;

		sp = strchr(p, ' ');
		alen = sp ? (size_t)(sp - p) : strlen(p);
		if (alen == 0) {
			*error_r = "empty argument";
			return POP3_PARSE_INVALID;
		}
		if (argc >= max_args) {
			*error_r = "too many arguments";
			return POP3_PARSE_INVALID;
		}
		/* RFC 2449 §3: each argument may be up to 40 characters. */
		if (alen > max_arg_len) {
			*error_r = "argument too long";
			return POP3_PARSE_TOO_LONG;
		}
		argv[argc++] = p;
		if (sp == NULL)
			break;
		*sp = '\0';
		p = sp + 1;
	}
	*argc_r = argc;
	return POP3_PARSE_OK;
}

enum pop3_parse_result
pop3_parse_number(const char *s, uint64_t max, uint64_t *num_r,
		  const char **error_r)
{
	uint64_t v = 0;

	if (s == NULL || *s == '\0') {
		*error_r = "invalid number";
		return POP3_PARSE_INVALID;
	}
	for (; *s; s++) {
		unsigned d;

		if (*s < '0' || *s > '9') {
			*error_r = "invalid number";
			return POP3_PARSE_INVALID;
		}
		d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10) {
			*error_r = "number too large";
			return POP3_PARSE_INVALID;
		}
		v = v * 10 + d;
	}
	if (v > max) {
		*error_r = "number too large";
		return POP3_PARSE_INVALID;
	}
	*num_r = v;
	return POP3_PARSE_OK;
}

enum pop3_parse_result
pop3_parse_msgnum(const char *s, size_t n, size_t *index_r,
		  const char **error_r)
{
	uint64_t v;
	const char *e, *p;

	/* Syntax first, so that "RETR -1" reads as what it is; a number of
	 * digits too large for 64 bits is merely out of range. */
	for (p = s; p != NULL && *p >= '0' && *p <= '9'; p++)
		;
	if (p == NULL || p == s || *p != '\0') {
		*error_r = "invalid message number";
		return POP3_PARSE_INVALID;
	}
	/* RFC 1939 §5: messages are numbered from 1 to the count. */
	if (pop3_parse_number(s, (uint64_t)n, &v, &e) != POP3_PARSE_OK ||
	    v == 0) {
		*error_r = "no such message";
		return POP3_PARSE_INVALID;
	}
	*index_r = (size_t)(v - 1);
	return POP3_PARSE_OK;
}

void
pop3_encoder_init(struct pop3_encoder *e, int top, uint64_t top_lines)
{
	memset(e, 0, sizeof(*e));
	e->top = top;
	e->lines_left = top_lines;
	e->line_start = 1;
	e->line_blank = 1;
}

int
pop3_encoder_is_done(const struct pop3_encoder *e)
{
	return e->done;
}

/* RETR counts no lines, so the text between line ends is copied in runs
 * rather than octet by octet; the output is the one of the loop in
 * pop3_encoder_feed (the unit tests compare the two). */
static size_t
pop3_encoder_feed_runs(struct pop3_encoder *e, const char *in, size_t inlen,
		       char *out, size_t outcap, size_t *consumed_r)
{
	size_t i = 0, o = 0, run;
	const char *nl;

	while (i < inlen && outcap - o >= 2) {
		if (e->line_start) {
			e->any = 1;
			e->line_start = 0;
			/* RFC 1939 §3: byte-stuff a leading termination
			 * octet. */
			if (in[i] == '.') {
				out[o++] = '.';
				out[o++] = '.';
				e->prev_cr = 0;
				i++;
				continue;
			}
		}
		/* The text up to the LF (or the end of the input), as much
		 * as fits. */
		nl = memchr(in + i, '\n', inlen - i);
		run = nl ? (size_t)(nl - (in + i)) : inlen - i;
		if (run > outcap - o)
			run = outcap - o;
		if (run > 0) {
			memcpy(out + o, in + i, run);
			e->any = 1;
			e->prev_cr = in[i + run - 1] == '\r';
			o += run;
			i += run;
			continue;
		}
		/* The LF: CRLF on the wire; a stored CRLF keeps its CR,
		 * already written. */
		e->any = 1;
		if (!e->prev_cr)
			out[o++] = '\r';
		out[o++] = '\n';
		e->prev_cr = 0;
		e->line_start = 1;
		i++;
	}
	*consumed_r = i;
	return o;
}

size_t
pop3_encoder_feed(struct pop3_encoder *e, const char *in, size_t inlen,
		  char *out, size_t outcap, size_t *consumed_r)
{
	size_t i, o = 0;

	if (!e->top)
		return pop3_encoder_feed_runs(e, in, inlen, out, outcap,
					      consumed_r);

	for (i = 0; i < inlen && !e->done && outcap - o >= 2; i++) {
		char c = in[i];

		e->any = 1;
		if (e->line_start) {
			e->line_start = 0;
			e->line_blank = 1;
			/* RFC 1939 §3: a line starting with the termination
			 * octet is byte-stuffed with another one. */
			if (c == '.') {
				out[o++] = '.';
				out[o++] = '.';
				e->line_blank = 0;
				e->prev_cr = 0;
				continue;
			}
		}
		if (c != '\n') {
			out[o++] = c;
			e->prev_cr = c == '\r';
			if (c != '\r')
				e->line_blank = 0;
			continue;
		}
		/* LF ends a line: CRLF on the wire; a stored CRLF keeps its
		 * CR, already written. */
		if (!e->prev_cr)
			out[o++] = '\r';
		out[o++] = '\n';
		e->prev_cr = 0;
		e->line_start = 1;
		/* RFC 1939 §7: TOP sends the headers, the blank line that
		 * ends them, then the first n body lines. */
		if (!e->in_body) {
			if (e->line_blank)
				e->in_body = 1;
		} else if (e->top && e->lines_left > 0) {
			e->lines_left--;
		}
		if (e->top && e->in_body && e->lines_left == 0)
			e->done = 1;
	}
	/* Once TOP has what it wants, the rest of the input is not needed. */
	*consumed_r = e->done ? inlen : i;
	return o;
}

size_t
pop3_encoder_finish(struct pop3_encoder *e, char *out)
{
	size_t o = 0;

	/* A last line without its line end still gets one before the
	 * terminator, or ".\r\n" would be glued to it. */
	if (e->any && !e->line_start) {
		if (!e->prev_cr)
			out[o++] = '\r';
		out[o++] = '\n';
		e->line_start = 1;
		e->prev_cr = 0;
	}
	out[o++] = '.';
	out[o++] = '\r';
	out[o++] = '\n';
	return o;
}
