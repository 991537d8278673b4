/* libFuzzer entry point for pop3_parse.c. The first input octet picks the
 * parser; the rest is its input. Besides memory safety it checks the
 * encoder's invariants: the same output whole and one octet at a time, no
 * bare LF on the wire, and the terminator at the end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3_parse.h"
#include "sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_command(const char *in, size_t len)
{
	char *line = malloc(len + 1), *argv[POP3_ARGS_MAX];
	struct pop3_command cmd;
	const char *err;
	size_t argc, idx;
	uint64_t num;

	memcpy(line, in, len);
	if (pop3_parse_command(line, len, POP3_SASL_LINE_MAX, &cmd, &err) ==
	    POP3_PARSE_OK) {
		if (strlen(cmd.verb) < 3 || strlen(cmd.verb) > 4)
			abort();
		if (pop3_parse_args(cmd.args, argv, 3, POP3_ARG_MAX, &argc,
				    &err) == POP3_PARSE_OK) {
			size_t i;

			if (argc > 3)
				abort();
			for (i = 0; i < argc; i++) {
				if (argv[i][0] == '\0' ||
				    strlen(argv[i]) > POP3_ARG_MAX)
					abort();
				pop3_parse_msgnum(argv[i], 1000, &idx, &err);
				pop3_parse_number(argv[i], UINT64_MAX, &num,
						  &err);
			}
		}
	}
	free(line);
}

static void
fuzz_sasl(const char *in, size_t len)
{
	char cid[320], pw[256];
	unsigned char out[64];
	const char *err;
	size_t outlen;

	if (sasl_plain_decode(in, len, cid, sizeof(cid), pw, sizeof(pw),
			      &err) == 0) {
		if (cid[0] == '\0' || pw[0] == '\0')
			abort();
	}
	if (sasl_base64_decode(in, len, out, sizeof(out), &outlen) == 0) {
		if (outlen > sizeof(out) ||
		    outlen != len / 4 * 3 - (len && in[len - 1] == '=') -
				  (len > 1 && in[len - 2] == '='))
			abort();
	}
}

static size_t
fuzz_encode(const char *in, size_t len, int top, uint64_t lines, size_t step,
	    char *out)
{
	struct pop3_encoder e;
	size_t pos = 0, o = 0, used;

	pop3_encoder_init(&e, top, lines);
	while (pos < len && !pop3_encoder_is_done(&e)) {
		size_t n = len - pos < step ? len - pos : step;

		o += pop3_encoder_feed(&e, in + pos, n, out + o, 2 * n, &used);
		pos += used;
	}
	return o + pop3_encoder_finish(&e, out + o);
}

static void
fuzz_encoder(const char *in, size_t len, int top)
{
	char *a = malloc(2 * len + POP3_ENCODER_FINISH_MAX);
	char *b = malloc(2 * len + POP3_ENCODER_FINISH_MAX);
	uint64_t lines = len ? (unsigned char)in[0] % 8 : 0;
	size_t na, nb, i;

	na = fuzz_encode(in, len, top, lines, len ? len : 1, a);
	nb = fuzz_encode(in, len, top, lines, 1, b);
	if (na != nb || memcmp(a, b, na) != 0)
		abort();
	if (na < 3 || memcmp(a + na - 3, ".\r\n", 3) != 0)
		abort();
	for (i = 0; i < na; i++)
		if (a[i] == '\n' && (i == 0 || a[i - 1] != '\r'))
			abort();
	free(a);
	free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data + 1;

	if (size == 0)
		return 0;
	switch (data[0] % 4) {
	case 0:
		fuzz_command(in, size - 1);
		break;
	case 1:
		fuzz_sasl(in, size - 1);
		break;
	case 2:
		fuzz_encoder(in, size - 1, 0);
		break;
	default:
		fuzz_encoder(in, size - 1, 1);
		break;
	}
	return 0;
}
