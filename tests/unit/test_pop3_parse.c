/* Table-driven tests for pop3_parse.c: command lines, arguments, numbers
 * and the RETR/TOP encoder (whole, one byte at a time, at random split
 * points and with a tiny output buffer). SASL decoding is tested in
 * test_sasl.c with sasl.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "pop3_parse.h"

#define R_OK_ POP3_PARSE_OK
#define R_INV POP3_PARSE_INVALID
#define R_LONG POP3_PARSE_TOO_LONG

static void
test_command(void)
{
	static const struct {
		const char *line;
		size_t len; /* 0: strlen(line) */
		size_t max;
		enum pop3_parse_result r;
		const char *verb, *args; /* args NULL: none */
	} t[] = {
	    {"USER bob@example.test", 0, 255, R_OK_, "USER",
	     "bob@example.test"},
	    {"user bob", 0, 255, R_OK_, "USER", "bob"},
	    {"QUIT", 0, 255, R_OK_, "QUIT", NULL},
	    {"Stat", 0, 255, R_OK_, "STAT", NULL},
	    {"top 1 10", 0, 255, R_OK_, "TOP", "1 10"},
	    {"PASS with  two spaces ", 0, 255, R_OK_, "PASS",
	     "with  two spaces "},
	    {"USER b\xc3\xa9", 0, 255, R_OK_, "USER", "b\xc3\xa9"},
	    {"AUTH PLAIN =", 0, 255, R_OK_, "AUTH", "PLAIN ="},
	    {"LIST ", 0, 255, R_INV, NULL, NULL},
	    {"LIST  1", 0, 255, R_INV, NULL, NULL},
	    {"LI", 0, 255, R_INV, NULL, NULL},
	    {"LISTS", 0, 255, R_INV, NULL, NULL},
	    {"LISTS 1", 0, 255, R_INV, NULL, NULL},
	    {"", 0, 255, R_INV, NULL, NULL},
	    {" LIST", 0, 255, R_INV, NULL, NULL},
	    {"LI5T", 0, 255, R_INV, NULL, NULL},
	    {"LIST\t1", 0, 255, R_INV, NULL, NULL},
	    {"PASS a\x01"
	     "b",
	     0, 255, R_INV, NULL, NULL},
	    {"PASS a\x7f", 0, 255, R_INV, NULL, NULL},
	    {"PASS a\r", 0, 255, R_INV, NULL, NULL},
	    {"US\0R", 4, 255, R_INV, NULL, NULL},
	    {"USER a\0b", 8, 255, R_INV, NULL, NULL},
	    {"NOOP", 0, 6, R_OK_, "NOOP", NULL},
	    {"NOOP", 0, 5, R_LONG, NULL, NULL},
	    {"NOOP", 0, 0, R_LONG, NULL, NULL},
	    {"RSET", 0, 3, R_LONG, NULL, NULL},
	};
	struct pop3_command cmd;
	char line[1024];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t len = t[i].len ? t[i].len : strlen(t[i].line);
		const char *err = NULL;
		enum pop3_parse_result r;

		memcpy(line, t[i].line, len);
		line[len] = 'X'; /* must be overwritten by the parser */
		r = pop3_parse_command(line, len, t[i].max, &cmd, &err);
		if (r != t[i].r)
			fprintf(stderr, "  command case %zu: got %d\n", i, r);
		CHECK(r == t[i].r);
		if (r != POP3_PARSE_OK) {
			CHECK(err != NULL);
			continue;
		}
		CHECK_STR(cmd.verb, t[i].verb);
		if (t[i].args == NULL)
			CHECK(cmd.args == NULL);
		else
			CHECK_STR(cmd.args, t[i].args);
	}

	/* RFC 2449 §4: 255 octets including CRLF, so 253 before it. */
	memcpy(line, "PASS ", 5);
	memset(line + 5, 'x', 300);
	CHECK(pop3_parse_command(line, 253, 255, &cmd, &(const char *){0}) ==
	      POP3_PARSE_OK);
	CHECK(strlen(cmd.args) == 248);
	CHECK(pop3_parse_command(line, 254, 255, &cmd, &(const char *){0}) ==
	      POP3_PARSE_TOO_LONG);
}

static void
test_args(void)
{
	static const struct {
		const char *args; /* NULL: no arguments */
		size_t max_args, max_len;
		enum pop3_parse_result r;
		size_t argc;
		const char *argv[3];
	} t[] = {
	    {NULL, 2, 40, R_OK_, 0, {NULL}},
	    {"1", 2, 40, R_OK_, 1, {"1"}},
	    {"1 2", 2, 40, R_OK_, 2, {"1", "2"}},
	    {"PLAIN dGVzdA==", 2, 40, R_OK_, 2, {"PLAIN", "dGVzdA=="}},
	    {"1 2 3", 3, 40, R_OK_, 3, {"1", "2", "3"}},
	    {"1 2 3", 2, 40, R_INV, 0, {NULL}},
	    {"1  2", 2, 40, R_INV, 0, {NULL}},
	    {"1 ", 2, 40, R_INV, 0, {NULL}},
	    {" 1", 2, 40, R_INV, 0, {NULL}},
	    {"", 2, 40, R_INV, 0, {NULL}},
	    {"1", 0, 40, R_INV, 0, {NULL}},
	    {"0123456789012345678901234567890123456789",
	     1,
	     40,
	     R_OK_,
	     1,
	     {"0123456789012345678901234567890123456789"}},
	    {"01234567890123456789012345678901234567890",
	     1,
	     40,
	     R_LONG,
	     0,
	     {NULL}},
	    {"a 01234567890123456789012345678901234567890",
	     2,
	     40,
	     R_LONG,
	     0,
	     {NULL}},
	};
	size_t i, j;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char buf[128], *argv[POP3_ARGS_MAX], *a = NULL;
		const char *err = NULL;
		enum pop3_parse_result r;
		size_t argc = 99;

		if (t[i].args) {
			snprintf(buf, sizeof(buf), "%s", t[i].args);
			a = buf;
		}
		r = pop3_parse_args(a, argv, t[i].max_args, t[i].max_len, &argc,
				    &err);
		if (r != t[i].r)
			fprintf(stderr, "  args case %zu: got %d\n", i, r);
		CHECK(r == t[i].r);
		if (r != POP3_PARSE_OK) {
			CHECK(err != NULL);
			continue;
		}
		CHECK(argc == t[i].argc);
		for (j = 0; j < argc && j < 3; j++)
			CHECK_STR(argv[j], t[i].argv[j]);
	}
}

static void
test_number(void)
{
	static const struct {
		const char *s;
		uint64_t max;
		enum pop3_parse_result r;
		uint64_t v;
	} t[] = {
	    {"0", UINT64_MAX, R_OK_, 0},
	    {"1", UINT64_MAX, R_OK_, 1},
	    {"007", UINT64_MAX, R_OK_, 7},
	    {"18446744073709551615", UINT64_MAX, R_OK_, UINT64_MAX},
	    {"18446744073709551616", UINT64_MAX, R_INV, 0},
	    {"99999999999999999999999", UINT64_MAX, R_INV, 0},
	    {"10", 10, R_OK_, 10},
	    {"11", 10, R_INV, 0},
	    {"+1", UINT64_MAX, R_INV, 0},
	    {"-1", UINT64_MAX, R_INV, 0},
	    {" 1", UINT64_MAX, R_INV, 0},
	    {"1 ", UINT64_MAX, R_INV, 0},
	    {"", UINT64_MAX, R_INV, 0},
	    {"1a", UINT64_MAX, R_INV, 0},
	    {"0x1", UINT64_MAX, R_INV, 0},
	    {"1.0", UINT64_MAX, R_INV, 0},
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *err = NULL;
		uint64_t v = 12345;
		enum pop3_parse_result r;

		r = pop3_parse_number(t[i].s, t[i].max, &v, &err);
		if (r != t[i].r)
			fprintf(stderr, "  number case %zu: got %d\n", i, r);
		CHECK(r == t[i].r);
		if (r == POP3_PARSE_OK)
			CHECK(v == t[i].v);
		else
			CHECK(err != NULL);
	}
	CHECK(pop3_parse_number(NULL, 1, &(uint64_t){0}, &(const char *){0}) ==
	      POP3_PARSE_INVALID);
}

static void
test_msgnum(void)
{
	static const struct {
		const char *s;
		size_t n;
		enum pop3_parse_result r;
		size_t index;
		const char *err;
	} t[] = {
	    {"1", 3, R_OK_, 0, NULL},
	    {"3", 3, R_OK_, 2, NULL},
	    {"01", 3, R_OK_, 0, NULL},
	    {"4", 3, R_INV, 0, "no such message"},
	    {"0", 3, R_INV, 0, "no such message"},
	    {"1", 0, R_INV, 0, "no such message"},
	    {"99999999999999999999999", 3, R_INV, 0, "no such message"},
	    {"-1", 3, R_INV, 0, "invalid message number"},
	    {"+1", 3, R_INV, 0, "invalid message number"},
	    {"", 3, R_INV, 0, "invalid message number"},
	    {"1x", 3, R_INV, 0, "invalid message number"},
	    {" 1", 3, R_INV, 0, "invalid message number"},
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *err = NULL;
		size_t index = 999;
		enum pop3_parse_result r;

		r = pop3_parse_msgnum(t[i].s, t[i].n, &index, &err);
		if (r != t[i].r)
			fprintf(stderr, "  msgnum case %zu: got %d\n", i, r);
		CHECK(r == t[i].r);
		if (r == POP3_PARSE_OK)
			CHECK(index == t[i].index);
		else
			CHECK_STR(err, t[i].err);
	}
}

/* Runs the encoder over in, cutting the input at the given chunk sizes
 * (cycled; 0 = all at once) with an output buffer of outcap octets.
 * Returns the output length, with the output in out. */
static size_t
encode(const char *in, size_t len, int top, uint64_t lines,
       const size_t *chunks, size_t nchunks, size_t outcap, char *out,
       size_t outmax)
{
	struct pop3_encoder e;
	char buf[64];
	size_t pos = 0, o = 0, k = 0, guard = 0;

	if (outcap > sizeof(buf))
		outcap = sizeof(buf);
	pop3_encoder_init(&e, top, lines);
	while (pos < len && !pop3_encoder_is_done(&e)) {
		size_t want = chunks[k++ % nchunks], used, w;

		if (want == 0 || want > len - pos)
			want = len - pos;
		/* Feed this chunk until it is consumed, draining the small
		 * output buffer each time. */
		size_t end = pos + want;
		while (pos < end && !pop3_encoder_is_done(&e)) {
			w = pop3_encoder_feed(&e, in + pos, end - pos, buf,
					      outcap, &used);
			CHECK(o + w <= outmax);
			memcpy(out + o, buf, w);
			o += w;
			pos += used;
			if (++guard > 10 * len + 100) {
				CHECK(!"encoder makes no progress");
				return o;
			}
		}
	}
	CHECK(o + POP3_ENCODER_FINISH_MAX <= outmax);
	o += pop3_encoder_finish(&e, out + o);
	return o;
}

static const struct {
	const char *in;
	int top;
	uint64_t lines;
	const char *out;
} encoder_cases[] = {
    {"", 0, 0, ".\r\n"},
    {"a", 0, 0, "a\r\n.\r\n"},
    {"a\n", 0, 0, "a\r\n.\r\n"},
    {"a\r\n", 0, 0, "a\r\n.\r\n"},
    {"\n", 0, 0, "\r\n.\r\n"},
    {".\n", 0, 0, "..\r\n.\r\n"},
    {".", 0, 0, "..\r\n.\r\n"},
    {"..x\n.\n", 0, 0, "...x\r\n..\r\n.\r\n"},
    {"a\n.b\n", 0, 0, "a\r\n..b\r\n.\r\n"},
    {"a.\n", 0, 0, "a.\r\n.\r\n"},
    {"a\rb\n", 0, 0, "a\rb\r\n.\r\n"},
    {"a\r", 0, 0, "a\r\n.\r\n"},
    {"\r\n.\r\n", 0, 0, "\r\n..\r\n.\r\n"},
    {"a\n\n\nb", 0, 0, "a\r\n\r\n\r\nb\r\n.\r\n"},
    {"H: 1\nH: 2\n\nb1\nb2\nb3\n", 0, 0,
     "H: 1\r\nH: 2\r\n\r\nb1\r\nb2\r\nb3\r\n.\r\n"},
    /* TOP */
    {"H: 1\nH: 2\n\nb1\nb2\nb3\n", 1, 0, "H: 1\r\nH: 2\r\n\r\n.\r\n"},
    {"H: 1\nH: 2\n\nb1\nb2\nb3\n", 1, 2,
     "H: 1\r\nH: 2\r\n\r\nb1\r\nb2\r\n.\r\n"},
    {"H: 1\nH: 2\n\nb1\nb2\nb3\n", 1, 3,
     "H: 1\r\nH: 2\r\n\r\nb1\r\nb2\r\nb3\r\n.\r\n"},
    {"H: 1\nH: 2\n\nb1\nb2\nb3\n", 1, 10,
     "H: 1\r\nH: 2\r\n\r\nb1\r\nb2\r\nb3\r\n.\r\n"},
    {"H: 1\n", 1, 5, "H: 1\r\n.\r\n"},
    {"H: 1", 1, 0, "H: 1\r\n.\r\n"},
    {"\nbody\n", 1, 0, "\r\n.\r\n"},
    {"\nbody\nmore\n", 1, 1, "\r\nbody\r\n.\r\n"},
    {"H: 1\r\n\r\nb1\r\nb2\r\n", 1, 1, "H: 1\r\n\r\nb1\r\n.\r\n"},
    {"H: 1\n\n.b1\nb2", 1, 1, "H: 1\r\n\r\n..b1\r\n.\r\n"},
    {"H: 1\n\nb1\nb2", 1, 5, "H: 1\r\n\r\nb1\r\nb2\r\n.\r\n"},
    {".H\n\nb\n", 1, 0, "..H\r\n\r\n.\r\n"},
    {"H\n\n\n\nb\n", 1, 2, "H\r\n\r\n\r\n\r\n.\r\n"},
    {"H\n \nb\n\nc\n", 1, 0, "H\r\n \r\nb\r\n\r\n.\r\n"},
};

static void
check_encoder_case(size_t i, const size_t *chunks, size_t nchunks,
		   size_t outcap, const char *how)
{
	char out[256];
	size_t o, want = strlen(encoder_cases[i].out);

	o = encode(encoder_cases[i].in, strlen(encoder_cases[i].in),
		   encoder_cases[i].top, encoder_cases[i].lines, chunks,
		   nchunks, outcap, out, sizeof(out));
	if (o != want || memcmp(out, encoder_cases[i].out, o) != 0) {
		fprintf(stderr, "  encoder case %zu (%s): got \"%.*s\"\n", i,
			how, (int)o, out);
		CHECK(!"encoder output differs");
	}
}

static void
test_encoder_table(void)
{
	static const size_t whole[] = {0}, one[] = {1}, two[] = {2},
			    odd[] = {3, 1, 2};
	size_t i, cap;

	for (i = 0; i < sizeof(encoder_cases) / sizeof(encoder_cases[0]); i++) {
		check_encoder_case(i, whole, 1, 64, "whole");
		check_encoder_case(i, one, 1, 64, "trickle");
		check_encoder_case(i, two, 1, 64, "pairs");
		check_encoder_case(i, odd, 3, 64, "3,1,2");
		for (cap = 2; cap <= 5; cap++)
			check_encoder_case(i, whole, 1, cap, "small out");
		check_encoder_case(i, one, 1, 2, "trickle, small out");
	}
}

/* Random messages of '.', 'a', CR, LF, cut at random points: the output
 * must not depend on where the cuts fall, and its length minus the stuffed
 * dots and the terminator is the size that LIST reports. */
static void
test_encoder_random(void)
{
	static const char alphabet[] = ".a\r\n\n";
	char in[600], ref[1400], out[1400];
	size_t chunks[16], round, n, i, reflen, o;
	unsigned seed = 12345;

	for (round = 0; round < 400; round++) {
		int top = round % 3 == 0;
		uint64_t lines = round % 7;
		size_t dots = 0, size = 0;
		char prev = '\n';

		n = (size_t)(rand_r(&seed) % 500);
		for (i = 0; i < n; i++)
			in[i] =
			    alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
		for (i = 0; i < 16; i++)
			chunks[i] = 1 + (size_t)(rand_r(&seed) % 40);
		reflen = encode(in, n, top, lines, (const size_t[]){0}, 1, 64,
				ref, sizeof(ref));
		o = encode(in, n, top, lines, chunks, 16,
			   2 + (size_t)(rand_r(&seed) % 30), out, sizeof(out));
		CHECK(o == reflen && memcmp(out, ref, o) == 0);
		o = encode(in, n, top, lines, (const size_t[]){1}, 1, 64, out,
			   sizeof(out));
		CHECK(o == reflen && memcmp(out, ref, o) == 0);
		if (top)
			continue;
		/* RETR copies runs of text; TOP with more lines than the
		 * message has goes octet by octet and must send the same. */
		o = encode(in, n, 1, UINT64_MAX, chunks, 16,
			   2 + (size_t)(rand_r(&seed) % 30), out, sizeof(out));
		CHECK(o == reflen && memcmp(out, ref, o) == 0);
		for (i = 0; i < n; i++) {
			if (prev == '\n' && in[i] == '.')
				dots++;
			if (in[i] == '\n' && prev != '\r')
				size++;
			size++;
			prev = in[i];
		}
		if (n > 0 && prev != '\n')
			size += prev == '\r' ? 1 : 2;
		CHECK(reflen == size + dots + 3);
		CHECK(reflen >= 3 && memcmp(ref + reflen - 3, ".\r\n", 3) == 0);
		/* Every LF on the wire is part of a CRLF. */
		for (i = 0; i < reflen; i++)
			if (ref[i] == '\n')
				CHECK(i > 0 && ref[i - 1] == '\r');
	}
}

int
main(void)
{
	RUN(test_command);
	RUN(test_args);
	RUN(test_number);
	RUN(test_msgnum);
	RUN(test_encoder_table);
	RUN(test_encoder_random);
	return HARNESS_DONE();
}
