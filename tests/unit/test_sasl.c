/* Unit tests for sasl.c: strict base64 (RFC 4648), the PLAIN message
 * (RFC 4616) and LOGIN steps, as SMTP AUTH and POP3 AUTH use them. The
 * functions are not resumable (a SASL response is one whole line), so the
 * tables feed complete inputs only. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "sasl.h"

/* A plain base64 encoder of our own, to build inputs that hold NULs. */
static void
b64(const char *in, size_t len, char *out)
{
	static const char a[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789+/";
	const unsigned char *p = (const unsigned char *)in;
	size_t i, o = 0;

	for (i = 0; i + 2 < len; i += 3) {
		out[o++] = a[p[i] >> 2];
		out[o++] = a[(p[i] & 3) << 4 | p[i + 1] >> 4];
		out[o++] = a[(p[i + 1] & 15) << 2 | p[i + 2] >> 6];
		out[o++] = a[p[i + 2] & 63];
	}
	if (len - i == 1) {
		out[o++] = a[p[i] >> 2];
		out[o++] = a[(p[i] & 3) << 4];
		out[o++] = '=';
		out[o++] = '=';
	} else if (len - i == 2) {
		out[o++] = a[p[i] >> 2];
		out[o++] = a[(p[i] & 3) << 4 | p[i + 1] >> 4];
		out[o++] = a[(p[i + 1] & 15) << 2];
		out[o++] = '=';
	}
	out[o] = '\0';
}

#define S(lit) lit, sizeof(lit) - 1

static void
test_base64_decode(void)
{
	static const struct {
		const char *in;
		size_t outcap;
		int ok;
		const char *out;
		size_t outlen;
	} t[] = {
	    /* RFC 4648 §10 test vectors */
	    {"", 16, 1, "", 0},
	    {"Zg==", 16, 1, "f", 1},
	    {"Zm8=", 16, 1, "fo", 2},
	    {"Zm9v", 16, 1, "foo", 3},
	    {"Zm9vYg==", 16, 1, "foob", 4},
	    {"Zm9vYmE=", 16, 1, "fooba", 5},
	    {"Zm9vYmFy", 16, 1, "foobar", 6},
	    /* the whole alphabet, and octets that are not text */
	    {"+/+/", 16, 1, "\xfb\xff\xbf", 3},
	    {"AAAA", 16, 1, "\0\0\0", 3},
	    {"AGJvYgBwdw==", 16, 1, "\0bob\0pw", 7},
	    {"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=", 32, 1,
	     "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 26},
	    /* exactly the room the header asks for: inlen / 4 * 3 */
	    {"Zm9vYmFy", 6, 1, "foobar", 6},
	    {"Zm9vYmFy", 5, 0, NULL, 0},
	    {"Zg==", 2, 0, NULL, 0},
	    /* length not a multiple of 4: padding is required */
	    {"Zg", 16, 0, NULL, 0},
	    {"Zg=", 16, 0, NULL, 0},
	    {"Zm9vY", 16, 0, NULL, 0},
	    {"Zm9vYmFy=", 16, 0, NULL, 0},
	    /* '=' anywhere but at the end, or too much of it */
	    {"Z===", 16, 0, NULL, 0},
	    {"====", 16, 0, NULL, 0},
	    {"Zm=v", 16, 0, NULL, 0},
	    {"Z=9v", 16, 0, NULL, 0},
	    {"=m9v", 16, 0, NULL, 0},
	    {"Zg==Zg==", 16, 0, NULL, 0},
	    /* no whitespace, no line ends */
	    {"Zm9v\n", 16, 0, NULL, 0},
	    {"Zm9v\r\n", 16, 0, NULL, 0},
	    {"Zm 9", 16, 0, NULL, 0},
	    {" Zm9", 16, 0, NULL, 0},
	    {"Zm9\t", 16, 0, NULL, 0},
	    /* other alphabets and stray octets */
	    {"-_==", 16, 0, NULL, 0},
	    {"Zm9*", 16, 0, NULL, 0},
	    {"Zm9.", 16, 0, NULL, 0},
	    {"Zm9\x80", 16, 0, NULL, 0},
	    {"Zm9\xff", 16, 0, NULL, 0},
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		unsigned char out[64];
		size_t outlen = 999;
		int r;

		r = sasl_base64_decode(t[i].in, strlen(t[i].in), out,
				       t[i].outcap, &outlen);
		if ((r == 0) != t[i].ok)
			fprintf(stderr, "  base64 case %zu (%s): got %d\n", i,
				t[i].in, r);
		CHECK((r == 0) == t[i].ok);
		if (r != 0 || !t[i].ok)
			continue;
		CHECK(outlen == t[i].outlen);
		CHECK(memcmp(out, t[i].out, t[i].outlen) == 0);
		/* NUL-terminated when there is room */
		if (outlen < t[i].outcap)
			CHECK(out[outlen] == '\0');
	}
	/* The length given is what counts, not a NUL in the buffer. */
	{
		unsigned char out[16];
		size_t outlen;

		CHECK(sasl_base64_decode("Zm9vYmFy", 4, out, sizeof(out),
					 &outlen) == 0 &&
		      outlen == 3 && memcmp(out, "foo", 3) == 0);
		CHECK(sasl_base64_decode("Zm9v\0\0\0\0", 8, out, sizeof(out),
					 &outlen) == -1);
	}
}

static void
test_base64_encode(void)
{
	static const struct {
		const char *in;
		size_t len;
		const char *out;
	} t[] = {
	    {S(""), ""},
	    {S("f"), "Zg=="},
	    {S("fo"), "Zm8="},
	    {S("foo"), "Zm9v"},
	    {S("foob"), "Zm9vYg=="},
	    {S("fooba"), "Zm9vYmE="},
	    {S("foobar"), "Zm9vYmFy"},
	    {S("\0bob\0pw"), "AGJvYgBwdw=="},
	    {S("\xfb\xff\xbf"), "+/+/"},
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char out[32];
		unsigned char back[32];
		size_t n, need = strlen(t[i].out) + 1;

		CHECK(sasl_base64_encode((const unsigned char *)t[i].in,
					 t[i].len, out, sizeof(out)) == 0);
		CHECK_STR(out, t[i].out);
		/* exactly enough room, then one octet short */
		CHECK(sasl_base64_encode((const unsigned char *)t[i].in,
					 t[i].len, out, need) == 0);
		CHECK(sasl_base64_encode((const unsigned char *)t[i].in,
					 t[i].len, out, need - 1) == -1);
		/* and back */
		CHECK(sasl_base64_decode(t[i].out, strlen(t[i].out), back,
					 sizeof(back), &n) == 0);
		CHECK(n == t[i].len && memcmp(back, t[i].in, n) == 0);
	}
}

static void
test_plain(void)
{
	static const struct {
		const char *raw;
		size_t len;
		size_t cidcap, pwcap;
		int ok;
		const char *cid, *pw;
	} t[] = {
	    /* no authzid */
	    {S("\0bob@example.test\0secret"), 64, 64, 1, "bob@example.test",
	     "secret"},
	    /* an authzid equal to the authcid */
	    {S("bob@example.test\0bob@example.test\0secret"), 64, 64, 1,
	     "bob@example.test", "secret"},
	    /* spaces and UTF-8 in the password pass through */
	    {S("\0bob\0pass word \xc3\xa9"), 64, 64, 1, "bob",
	     "pass word \xc3\xa9"},
	    /* one user acting for another is refused */
	    {S("alice\0bob\0pw"), 64, 64, 0, NULL, NULL},
	    {S("bobx\0bob\0pw"), 64, 64, 0, NULL, NULL},
	    {S("bo\0bob\0pw"), 64, 64, 0, NULL, NULL},
	    /* the NULs: missing, extra, or empty fields */
	    {S("\0bob\0"), 64, 64, 0, NULL, NULL},
	    {S("\0\0pw"), 64, 64, 0, NULL, NULL},
	    {S("bob\0pw"), 64, 64, 0, NULL, NULL},
	    {S("bobpw"), 64, 64, 0, NULL, NULL},
	    {S("\0bob\0p\0w"), 64, 64, 0, NULL, NULL},
	    {S("\0bob\0pw\0"), 64, 64, 0, NULL, NULL},
	    {S("\0\0"), 64, 64, 0, NULL, NULL},
	    {S("\0"), 64, 64, 0, NULL, NULL},
	    {S(""), 64, 64, 0, NULL, NULL},
	    /* room for the results: the NUL counts */
	    {S("\0bob\0pw"), 4, 3, 1, "bob", "pw"},
	    {S("\0bob\0pw"), 3, 64, 0, NULL, NULL},
	    {S("\0bob\0pw"), 64, 2, 0, NULL, NULL},
	};
	char enc[8192], cid[80], pw[80], big[4000];
	const char *err;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int r;

		b64(t[i].raw, t[i].len, enc);
		snprintf(cid, sizeof(cid), "unchanged");
		snprintf(pw, sizeof(pw), "unchanged");
		err = NULL;
		r = sasl_plain_decode(enc, strlen(enc), cid, t[i].cidcap, pw,
				      t[i].pwcap, &err);
		if ((r == 0) != t[i].ok)
			fprintf(stderr, "  plain case %zu: got %d (%s)\n", i, r,
				err ? err : "");
		CHECK((r == 0) == t[i].ok);
		if (r != 0) {
			CHECK(err != NULL);
			/* nothing half-written on failure */
			CHECK_STR(cid, "unchanged");
			CHECK_STR(pw, "unchanged");
			continue;
		}
		if (!t[i].ok)
			continue;
		CHECK_STR(cid, t[i].cid);
		CHECK_STR(pw, t[i].pw);
	}

	/* Not base64, and base64 of the wrong shape. */
	CHECK(sasl_plain_decode(S("AGJvYgBwdw"), cid, sizeof(cid), pw,
				sizeof(pw), &err) == -1);
	CHECK(sasl_plain_decode(S("AGJvYgBwdw=="), cid, sizeof(cid), pw,
				sizeof(pw), &err) == 0);
	CHECK_STR(cid, "bob");
	CHECK_STR(pw, "pw");
	CHECK(sasl_plain_decode(S("AGJvYgBwdw==\r\n"), cid, sizeof(cid), pw,
				sizeof(pw), &err) == -1);
	CHECK(sasl_plain_decode(S("="), cid, sizeof(cid), pw, sizeof(pw),
				&err) == -1);
	CHECK(sasl_plain_decode(S("*"), cid, sizeof(cid), pw, sizeof(pw),
				&err) == -1);

	/* Fields at the limits of sasl.h, and a message longer than any
	 * that is decoded. */
	memset(big, 'p', sizeof(big));
	memcpy(big, "\0bob\0", 5);
	{
		char lpw[SASL_PASSWORD_MAX];

		b64(big, 5 + SASL_PASSWORD_MAX - 1, enc);
		CHECK(sasl_plain_decode(enc, strlen(enc), cid, sizeof(cid), lpw,
					sizeof(lpw), &err) == 0);
		CHECK(strlen(lpw) == SASL_PASSWORD_MAX - 1);
		b64(big, 5 + SASL_PASSWORD_MAX, enc);
		CHECK(sasl_plain_decode(enc, strlen(enc), cid, sizeof(cid), lpw,
					sizeof(lpw), &err) == -1);
	}
	b64(big, sizeof(big), enc);
	CHECK(sasl_plain_decode(enc, strlen(enc), cid, sizeof(cid), pw,
				sizeof(pw), &err) == -1);
}

static void
test_login(void)
{
	static const struct {
		const char *raw;
		size_t len;
		size_t outcap;
		int ok;
	} t[] = {
	    {S("bob@example.test"), 64, 1},
	    {S("pass word \xc3\xa9"), 64, 1},
	    {S("x"), 2, 1},
	    {S("xy"), 2, 0},	 /* no room for the NUL */
	    {S(""), 64, 0},	 /* an empty step */
	    {S("bo\0b"), 64, 0}, /* a NUL inside */
	    {S("bob\0"), 64, 0},
	    {S("\0"), 64, 0},
	};
	char enc[4096], out[80], big[SASL_FIELD_MAX + 8];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int r;

		b64(t[i].raw, t[i].len, enc);
		snprintf(out, sizeof(out), "unchanged");
		r = sasl_login_decode(enc, strlen(enc), out, t[i].outcap);
		if ((r == 0) != t[i].ok)
			fprintf(stderr, "  login case %zu: got %d\n", i, r);
		CHECK((r == 0) == t[i].ok);
		if (r == 0 && t[i].ok) {
			CHECK(strlen(out) == t[i].len);
			CHECK(memcmp(out, t[i].raw, t[i].len) == 0);
		} else {
			CHECK_STR(out, "unchanged");
		}
	}
	/* Not base64; the well-known prompts decode. */
	CHECK(sasl_login_decode(S("Ym9i"), out, sizeof(out)) == 0);
	CHECK_STR(out, "bob");
	CHECK(sasl_login_decode(S("Ym9"), out, sizeof(out)) == -1);
	CHECK(sasl_login_decode(S("Ym9i\n"), out, sizeof(out)) == -1);
	CHECK(sasl_login_decode(S("VXNlcm5hbWU6"), out, sizeof(out)) == 0);
	CHECK_STR(out, "Username:");
	/* Longer than SASL_FIELD_MAX: refused, whatever room the caller
	 * has. */
	memset(big, 'u', sizeof(big));
	b64(big, SASL_FIELD_MAX + 4, enc);
	{
		char wide[SASL_FIELD_MAX * 2];

		CHECK(sasl_login_decode(enc, strlen(enc), wide, sizeof(wide)) ==
		      -1);
	}
}

int
main(void)
{
	RUN(test_base64_decode);
	RUN(test_base64_encode);
	RUN(test_plain);
	RUN(test_login);
	return HARNESS_DONE();
}
