/* libFuzzer entry point for smtp_parse.c. The first input octet picks the
 * parser; the rest is its input. Paths are re-parsed from their parsed form,
 * and the body decoder is checked against a naive reference decoder and
 * against itself fed whole, one byte at a time, at pseudo-random split
 * points and in place. Any difference aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                      \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: assertion failed: %s\n",       \
				__FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)

/* A NUL-terminated heap copy (ASan sees reads past the terminator). */
static char *
fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

static void
fuzz_check_path(const struct smtp_path *p)
{
	FUZZ_ASSERT(strlen(p->local) <= SMTP_LOCAL_MAX);
	FUZZ_ASSERT(strlen(p->domain) <= SMTP_DOMAIN_MAX);
	if (p->null)
		FUZZ_ASSERT(p->local[0] == '\0' && p->domain[0] == '\0');
	if (p->domain_literal)
		FUZZ_ASSERT(p->domain[0] == '[');
}

/* Writes the path back as "<local@domain>" (quoting again when it was
 * quoted) into buf after prefix; returns 0 if it does not fit. */
static int
fuzz_format_path(const char *prefix, const struct smtp_path *p, char *buf,
		 size_t bufsize)
{
	size_t n = 0, i;

#define PUT(c)                                                                 \
	do {                                                                   \
		if (n + 1 >= bufsize)                                          \
			return 0;                                              \
		buf[n++] = (c);                                                \
	} while (0)
	for (i = 0; prefix[i] != '\0'; i++)
		PUT(prefix[i]);
	PUT('<');
	if (!p->null) {
		if (p->quoted)
			PUT('"');
		for (i = 0; p->local[i] != '\0'; i++) {
			if (p->quoted &&
			    (p->local[i] == '"' || p->local[i] == '\\'))
				PUT('\\');
			PUT(p->local[i]);
		}
		if (p->quoted)
			PUT('"');
		if (p->domain[0] != '\0') {
			PUT('@');
			for (i = 0; p->domain[i] != '\0'; i++)
				PUT(p->domain[i]);
		}
	}
	PUT('>');
#undef PUT
	buf[n] = '\0';
	return 1;
}

/* The parsed form parses again to the same thing (the route is gone). */
static void
fuzz_reparse(int is_rcpt, const struct smtp_path *p)
{
	char buf[1024];
	struct smtp_path q;
	const char *error;
	enum parse_result r;

	FUZZ_ASSERT(
	    fuzz_format_path(is_rcpt ? "TO:" : "FROM:", p, buf, sizeof(buf)));
	if (is_rcpt) {
		struct smtp_rcpt_params rp;

		r = smtp_parse_rcpt(buf, &q, &rp, &error);
	} else {
		struct smtp_mail_params mp;

		r = smtp_parse_mail(buf, &q, &mp, &error);
	}
	if (r != PARSE_OK)
		fprintf(stderr, "reparse of %s failed: %s\n", buf, error);
	FUZZ_ASSERT(r == PARSE_OK);
	FUZZ_ASSERT(strcmp(q.local, p->local) == 0);
	FUZZ_ASSERT(strcmp(q.domain, p->domain) == 0);
	FUZZ_ASSERT(q.null == p->null && q.quoted == p->quoted &&
		    q.domain_literal == p->domain_literal && !q.had_route);
	FUZZ_ASSERT(q.utf8 <= p->utf8);
}

static void
fuzz_mail(const char *s)
{
	struct smtp_path path;
	struct smtp_mail_params mp;
	const char *error = NULL;
	enum parse_result r = smtp_parse_mail(s, &path, &mp, &error);

	if (r != PARSE_OK) {
		FUZZ_ASSERT(error != NULL);
		return;
	}
	fuzz_check_path(&path);
	FUZZ_ASSERT(strlen(mp.envid) <= 100);
	FUZZ_ASSERT(mp.body >= 0 && mp.body <= 2 && mp.ret >= 0 && mp.ret <= 2);
	fuzz_reparse(0, &path);
}

static void
fuzz_rcpt(const char *s)
{
	struct smtp_path path;
	struct smtp_rcpt_params rp;
	const char *error = NULL;
	enum parse_result r = smtp_parse_rcpt(s, &path, &rp, &error);

	if (r != PARSE_OK) {
		FUZZ_ASSERT(error != NULL);
		return;
	}
	fuzz_check_path(&path);
	FUZZ_ASSERT(!path.null);
	FUZZ_ASSERT(strlen(rp.orcpt) <= 500);
	FUZZ_ASSERT(rp.notify >= 0 && rp.notify <= 15);
	FUZZ_ASSERT(!(rp.notify & 1) || rp.notify == 1);
	fuzz_reparse(1, &path);
}

static void
fuzz_bdat(const char *s)
{
	uint64_t size;
	int last;
	const char *error = NULL;

	if (smtp_parse_bdat(s, &size, &last, &error) != PARSE_OK)
		FUZZ_ASSERT(error != NULL);
	else
		FUZZ_ASSERT(last == 0 || last == 1);
}

static void
fuzz_command(const uint8_t *data, size_t size)
{
	char *line = malloc(size ? size : 1), *args_copy;
	char verb[SMTP_VERB_MAX + 1];
	const char *args = NULL, *error = NULL;
	size_t i;

	memcpy(line, data, size);
	if (smtp_parse_command(line, size, verb, &args, &error) != PARSE_OK) {
		FUZZ_ASSERT(error != NULL);
		free(line);
		return;
	}
	FUZZ_ASSERT(verb[0] != '\0' && strlen(verb) <= SMTP_VERB_MAX);
	for (i = 0; verb[i] != '\0'; i++)
		FUZZ_ASSERT(verb[i] >= 'A' && verb[i] <= 'Z');
	FUZZ_ASSERT(args[0] == '\0' ||
		    (args > line && args < line + size && args[-1] == ' '));
	/* Chain into the argument parsers, as the session does. */
	args_copy = args[0] == '\0'
			? fuzz_strndup((const uint8_t *)"", 0)
			: fuzz_strndup((const uint8_t *)args,
				       size - (size_t)(args - line));
	FUZZ_ASSERT(memchr(args_copy, '\0', strlen(args_copy)) == NULL);
	if (strcmp(verb, "MAIL") == 0)
		fuzz_mail(args_copy);
	else if (strcmp(verb, "RCPT") == 0)
		fuzz_rcpt(args_copy);
	else if (strcmp(verb, "BDAT") == 0)
		fuzz_bdat(args_copy);
	free(args_copy);
	free(line);
}

/*
 * Body decoder
 */

struct body_outcome {
	char *out;
	size_t outlen;
	int end;
	size_t consumed;
	int bare_cr, bare_lf, too_long;
	uint64_t lines, out_bytes;
};

/* A naive decoder over the whole input with look-ahead, written
 * independently of the streaming one: the oracle. */
static void
body_reference(int mode, size_t max_line, const char *in, size_t n,
	       struct body_outcome *o)
{
	size_t i = 0, line_len = 0;
	int bol = 1, last_bare_lf = 0, pending_cr = 0;

	memset(o, 0, sizeof(*o));
	o->out = malloc(n + 2);
#define GROW(k)                                                                \
	do {                                                                   \
		line_len += (k);                                               \
		if (max_line != 0 && line_len + 2 > max_line)                  \
			o->too_long = 1;                                       \
	} while (0)
	while (i < n) {
		char c = in[i];

		if (mode == SMTP_BODY_MODE_DATA && bol && c == '.') {
			if (i + 2 < n && in[i + 1] == '\r' &&
			    in[i + 2] == '\n') {
				o->end = 1;
				i += 3;
				break;
			}
			if (i + 1 == n || (in[i + 1] == '\r' && i + 2 == n)) {
				i = n; /* waiting for more */
				break;
			}
			i++; /* the stuffing dot */
			bol = 0;
			continue;
		}
		bol = 0;
		last_bare_lf = 0;
		if (c == '\r') {
			if (i + 1 == n) {
				pending_cr = 1;
				i++;
				break;
			}
			if (in[i + 1] == '\n') {
				o->out[o->outlen++] = '\n';
				if (max_line != 0 && line_len + 2 > max_line)
					o->too_long = 1;
				line_len = 0;
				o->lines++;
				bol = 1;
				i += 2;
				continue;
			}
			o->bare_cr = 1; /* dropped */
			GROW(1);
			i++;
			continue;
		}
		if (c == '\n') {
			o->bare_lf = 1;
			last_bare_lf = 1;
		}
		o->out[o->outlen++] = c;
		GROW(1);
		i++;
	}
	o->consumed = i;
	if (mode == SMTP_BODY_MODE_BDAT &&
	    (pending_cr || (!bol && !last_bare_lf))) {
		if (pending_cr) {
			o->bare_cr = 1;
			GROW(1);
		}
		o->out[o->outlen++] = '\n';
		if (max_line != 0 && line_len + 2 > max_line)
			o->too_long = 1;
		o->lines++;
	}
#undef GROW
	o->out_bytes = o->outlen;
}

/* Runs the streaming decoder. split 0: whole; 1: one byte at a time;
 * otherwise chunk sizes drawn from split. */
static void
body_stream(int mode, size_t max_line, const char *in, size_t n, uint64_t split,
	    int in_place, struct body_outcome *o)
{
	struct smtp_body b;
	size_t pos = 0;
	uint64_t rng = split | 1;

	memset(o, 0, sizeof(*o));
	o->out = malloc(n + 2);
	smtp_body_init(&b, mode, max_line);
	for (;;) {
		size_t k = n - pos, outlen = 0, used = 0;
		char *chunk, *out;
		enum smtp_body_result res;

		if (split == 1 && k > 1) {
			k = 1;
		} else if (split > 1 && k > 1) {
			rng ^= rng << 13;
			rng ^= rng >> 7;
			rng ^= rng << 17;
			k = (size_t)(rng % (k < 64 ? k + 1 : 64));
		}
		chunk = malloc(k ? k : 1);
		memcpy(chunk, in + pos, k);
		out = in_place ? chunk : malloc(k ? k : 1);
		res = smtp_body_feed(&b, chunk, k, out, &outlen, &used);
		FUZZ_ASSERT(outlen <= k && used <= k);
		FUZZ_ASSERT(res == SMTP_BODY_END || used == k);
		memcpy(o->out + o->outlen, out, outlen);
		o->outlen += outlen;
		pos += used;
		if (!in_place)
			free(out);
		free(chunk);
		if (res == SMTP_BODY_END) {
			o->end = 1;
			break;
		}
		if (pos == n)
			break;
	}
	o->consumed = pos;
	if (mode == SMTP_BODY_MODE_BDAT) {
		char *fin = malloc(1);
		size_t k = smtp_body_finish(&b, fin);

		FUZZ_ASSERT(k <= 1);
		memcpy(o->out + o->outlen, fin, k);
		o->outlen += k;
		free(fin);
	}
	o->bare_cr = b.bare_cr;
	o->bare_lf = b.bare_lf;
	o->too_long = b.too_long;
	o->lines = b.lines;
	o->out_bytes = b.out_bytes;
}

static void
body_compare(const struct body_outcome *a, const struct body_outcome *b)
{
	FUZZ_ASSERT(a->outlen == b->outlen);
	FUZZ_ASSERT(memcmp(a->out, b->out, a->outlen) == 0);
	FUZZ_ASSERT(a->end == b->end && a->consumed == b->consumed);
	FUZZ_ASSERT(a->bare_cr == b->bare_cr && a->bare_lf == b->bare_lf &&
		    a->too_long == b->too_long);
	FUZZ_ASSERT(a->lines == b->lines && a->out_bytes == b->out_bytes);
}

static void
fuzz_body(int mode, const uint8_t *data, size_t size)
{
	struct body_outcome ref, got;
	size_t max_line;
	uint64_t seed = 0;
	const char *in;
	size_t i;

	if (size < 1)
		return;
	/* Small limits so that the fuzzer reaches them. */
	max_line = data[0];
	in = (const char *)data + 1;
	size--;
	for (i = 0; i < size && i < 8; i++)
		seed = seed * 131 + (uint8_t)in[i];

	body_reference(mode, max_line, in, size, &ref);
	body_stream(mode, max_line, in, size, 0, 0, &got);
	body_compare(&ref, &got);
	free(got.out);
	body_stream(mode, max_line, in, size, 1, 0, &got);
	body_compare(&ref, &got);
	free(got.out);
	body_stream(mode, max_line, in, size, seed * 2 + 2, 1, &got);
	body_compare(&ref, &got);
	free(got.out);
	body_stream(mode, max_line, in, size, seed * 7 + 3, 0, &got);
	body_compare(&ref, &got);
	free(got.out);
	free(ref.out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size < 1)
		return 0;
	switch (data[0] % 6) {
	case 0:
		fuzz_command(data + 1, size - 1);
		break;
	case 1:
		s = fuzz_strndup(data + 1, size - 1);
		fuzz_mail(s);
		free(s);
		break;
	case 2:
		s = fuzz_strndup(data + 1, size - 1);
		fuzz_rcpt(s);
		free(s);
		break;
	case 3:
		s = fuzz_strndup(data + 1, size - 1);
		fuzz_bdat(s);
		free(s);
		break;
	case 4:
		fuzz_body(SMTP_BODY_MODE_DATA, data + 1, size - 1);
		break;
	default:
		fuzz_body(SMTP_BODY_MODE_BDAT, data + 1, size - 1);
		break;
	}
	return 0;
}
