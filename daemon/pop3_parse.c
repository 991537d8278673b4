/* Pure POP3 parsing: command lines, message numbers, SASL PLAIN and the
 * RETR/TOP encoder (CRLF line ends and dot-stuffing). No I/O, no logging. */
#include <string.h>

#include "pop3_parse.h"

static int pop3_is_alpha(unsigned char c);
static int pop3_base64_value(unsigned char c);
static int pop3_memcaseeq(const char *a, const char *b, size_t len);

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

static int
pop3_base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

enum pop3_parse_result
pop3_parse_base64(const char *in, size_t inlen, unsigned char *out,
		  size_t outcap, size_t *outlen_r, const char **error_r)
{
	size_t i, o = 0;

	*outlen_r = 0;
	if (inlen % 4 != 0) {
		*error_r = "base64 length not a multiple of 4";
		return POP3_PARSE_INVALID;
	}
	for (i = 0; i < inlen; i += 4) {
		const unsigned char *q = (const unsigned char *)in + i;
		int v[4], pad = 0, k;
		uint32_t bits;

		for (k = 0; k < 4; k++) {
			if (q[k] == '=') {
				/* RFC 4648 §4: padding only at the very end,
				 * at most two, and nothing after it. */
				if (i + 4 != inlen || k < 2) {
					*error_r = "misplaced base64 padding";
					return POP3_PARSE_INVALID;
				}
				pad++;
				v[k] = 0;
				continue;
			}
			if (pad > 0) {
				*error_r = "misplaced base64 padding";
				return POP3_PARSE_INVALID;
			}
			v[k] = pop3_base64_value(q[k]);
			if (v[k] < 0) {
				*error_r = "invalid base64 character";
				return POP3_PARSE_INVALID;
			}
		}
		bits = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
		       (uint32_t)v[2] << 6 | (uint32_t)v[3];
		/* RFC 4648 §3.5: the unused bits must be zero, so that every
		 * input has a single encoding. */
		if ((pad == 1 && (bits & 0xff) != 0) ||
		    (pad == 2 && (bits & 0xffff) != 0)) {
			*error_r = "non-canonical base64 padding bits";
			return POP3_PARSE_INVALID;
		}
		if (o + (size_t)(3 - pad) > outcap) {
			*error_r = "base64 data too long";
			return POP3_PARSE_TOO_LONG;
		}
		out[o++] = (unsigned char)(bits >> 16);
		if (pad < 2)
			out[o++] = (unsigned char)(bits >> 8);
		if (pad < 1)
			out[o++] = (unsigned char)bits;
	}
	*outlen_r = o;
	return POP3_PARSE_OK;
}

static int
pop3_memcaseeq(const char *a, const char *b, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		char ca =
		    (a[i] >= 'A' && a[i] <= 'Z') ? (char)(a[i] + 32) : a[i];
		char cb =
		    (b[i] >= 'A' && b[i] <= 'Z') ? (char)(b[i] + 32) : b[i];

		if (ca != cb)
			return 0;
	}
	return 1;
}

enum pop3_parse_result
pop3_parse_sasl_plain(const char *in, size_t inlen, char *authcid,
		      size_t authcid_len, char *passwd, size_t passwd_len,
		      const char **error_r)
{
	unsigned char buf[POP3_SASL_DECODED_MAX];
	const char *zid, *cid, *pw, *end, *nul;
	size_t n, zlen, clen, plen;
	enum pop3_parse_result r;

	if (authcid_len > 0)
		authcid[0] = '\0';
	if (passwd_len > 0)
		passwd[0] = '\0';
	r = pop3_parse_base64(in, inlen, buf, sizeof(buf), &n, error_r);
	if (r != POP3_PARSE_OK)
		goto out;
	/* RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd */
	zid = (const char *)buf;
	end = zid + n;
	r = POP3_PARSE_INVALID;
	if ((nul = memchr(zid, '\0', n)) == NULL) {
		*error_r = "malformed PLAIN response";
		goto out;
	}
	zlen = (size_t)(nul - zid);
	cid = nul + 1;
	if ((nul = memchr(cid, '\0', (size_t)(end - cid))) == NULL) {
		*error_r = "malformed PLAIN response";
		goto out;
	}
	clen = (size_t)(nul - cid);
	pw = nul + 1;
	plen = (size_t)(end - pw);
	if (memchr(pw, '\0', plen) != NULL) {
		*error_r = "malformed PLAIN response";
		goto out;
	}
	if (clen == 0 || plen == 0) {
		*error_r = "empty user name or password";
		goto out;
	}
	/* Logging in as one user on behalf of another is not offered. */
	if (zlen != 0 && (zlen != clen || !pop3_memcaseeq(zid, cid, clen))) {
		*error_r = "authorization identity not allowed";
		goto out;
	}
	if (clen >= authcid_len || plen >= passwd_len) {
		*error_r = "user name or password too long";
		r = POP3_PARSE_TOO_LONG;
		goto out;
	}
	memcpy(authcid, cid, clen);
	authcid[clen] = '\0';
	memcpy(passwd, pw, plen);
	passwd[plen] = '\0';
	r = POP3_PARSE_OK;
out:
	explicit_bzero(buf, sizeof(buf));
	return r;
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

size_t
pop3_encoder_feed(struct pop3_encoder *e, const char *in, size_t inlen,
		  char *out, size_t outcap, size_t *consumed_r)
{
	size_t i, o = 0;

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
