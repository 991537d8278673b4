/* Pure SMTP parsing: command lines, MAIL/RCPT paths and ESMTP parameters,
 * BDAT arguments and the streaming DATA/BDAT body decoder. No I/O and no
 * logging; every error is a static string. */
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "smtp_parse.h"

/* RFC 5321 §4.5.3.1.3: a reverse- or forward-path, brackets included. */
#define SMTP_PATH_MAX 256
/* RFC 5321 §4.5.3.1.1 / RFC 1035 §2.3.4. */
#define SMTP_LABEL_MAX 63
/* RFC 3461 §4.2 and §4.4. */
#define SMTP_ORCPT_MAX 500
#define SMTP_ENVID_MAX 100

/* One "keyword[=value]" from the parameter list; pointers into args. */
struct esmtp_param {
	const char *key;
	size_t keylen;
	const char *val; /* NULL when there was no "=value" */
	size_t vallen;
};

/* A row of a parameter table: the upper-case keyword and its parser,
 * which fills the smtp_mail_params or smtp_rcpt_params behind out. */
struct esmtp_param_def {
	const char *keyword;
	enum parse_result (*parse)(const struct esmtp_param *prm, void *out,
				   const char **error_r);
};

/* Character classes and small helpers. */
static int ascii_is_alpha(unsigned char c);
static int ascii_is_digit(unsigned char c);
static int ascii_is_atext(unsigned char c);
static char ascii_upper(char c);
static int ascii_ncaseeq(const char *a, const char *b, size_t n);
static int ascii_wordeq(const char *s, size_t len, const char *word);
static size_t utf8_seq_len(const char *s);
static int parse_uint64(const char *s, size_t len, uint64_t *out);
static int xtext_check(const char *s, size_t len);
static int ipv4_check(const char *s, size_t len);

/* Paths: RFC 5321 §4.1.2 with the RFC 6531 §3.3 extensions. */
static enum parse_result parse_path(const char **pp, struct smtp_path *path,
				    int is_rcpt, const char **error_r);
static enum parse_result parse_local(const char **pp, struct smtp_path *path,
				     const char **error_r);
static enum parse_result parse_domain(const char **pp,
				      char out[SMTP_DOMAIN_MAX + 1],
				      int *literal_r, int *utf8_r,
				      const char **error_r);
static enum parse_result parse_address_literal(const char **pp,
					       char out[SMTP_DOMAIN_MAX + 1],
					       const char **error_r);

/* ESMTP parameters: RFC 5321 §4.1.2 Mail-parameters / Rcpt-parameters. */
static int parse_param_next(const char **pp, struct esmtp_param *prm,
			    const char **error_r);
static enum parse_result
parse_envelope(const char *args, const char *keyword, int is_rcpt,
	       const struct esmtp_param_def *defs, size_t ndefs, void *params,
	       size_t params_size, struct smtp_path *path,
	       const char **error_r);
static enum parse_result parse_params(const char *p,
				      const struct esmtp_param_def *defs,
				      size_t ndefs, void *out,
				      const char **error_r);
static enum parse_result param_parse_size(const struct esmtp_param *prm,
					  void *out, const char **error_r);
static enum parse_result param_parse_body(const struct esmtp_param *prm,
					  void *out, const char **error_r);
static enum parse_result param_parse_smtputf8(const struct esmtp_param *prm,
					      void *out, const char **error_r);
static enum parse_result param_parse_ret(const struct esmtp_param *prm,
					 void *out, const char **error_r);
static enum parse_result param_parse_envid(const struct esmtp_param *prm,
					   void *out, const char **error_r);
static enum parse_result param_parse_auth(const struct esmtp_param *prm,
					  void *out, const char **error_r);
static enum parse_result param_parse_notify(const struct esmtp_param *prm,
					    void *out, const char **error_r);
static enum parse_result param_parse_orcpt(const struct esmtp_param *prm,
					   void *out, const char **error_r);

/* Body decoder. */
static void body_count(struct smtp_body *b, size_t n);
static void body_bare_cr(struct smtp_body *b);
static void body_line_end(struct smtp_body *b);
static const char *body_find(const char **cache, const char *p, const char *end,
			     int c);

static const struct esmtp_param_def mail_param_defs[] = {
    {"SIZE", param_parse_size},		/* RFC 1870 */
    {"BODY", param_parse_body},		/* RFC 1652, RFC 3030 */
    {"SMTPUTF8", param_parse_smtputf8}, /* RFC 6531 §3.4 */
    {"RET", param_parse_ret},		/* RFC 3461 §4.3 */
    {"ENVID", param_parse_envid},	/* RFC 3461 §4.4 */
    {"AUTH", param_parse_auth},		/* RFC 4954 §5 */
};

static const struct esmtp_param_def rcpt_param_defs[] = {
    {"NOTIFY", param_parse_notify}, /* RFC 3461 §4.1 */
    {"ORCPT", param_parse_orcpt},   /* RFC 3461 §4.2 */
};

/*
 * Character classes and small helpers
 */

static int
ascii_is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
ascii_is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 5322 §3.2.3 atext, which RFC 5321 §4.1.2 uses for Atom. */
static int
ascii_is_atext(unsigned char c)
{
	if (ascii_is_alpha(c) || ascii_is_digit(c))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static char
ascii_upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* Compares n octets ignoring ASCII case, without the locale. */
static int
ascii_ncaseeq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ascii_upper(a[i]) != ascii_upper(b[i]))
			return 0;
	return 1;
}

/* Whether s[0..len) is the upper-case word, ignoring ASCII case. */
static int
ascii_wordeq(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && ascii_ncaseeq(s, word, len);
}

/* Length (2 to 4) of the well-formed UTF-8 sequence starting at s, or 0
 * (RFC 3629 §4: no overlong forms, no surrogates, nothing past U+10FFFF).
 * It stops at the first bad octet, so it never reads past a NUL. */
static size_t
utf8_seq_len(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;
		else if (p[0] == 0xed)
			hi = 0x9f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		if (p[0] == 0xf0)
			lo = 0x90;
		else if (p[0] == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* Parses 1 or more decimal digits (exactly len octets) into *out.
 * Returns 0 on bad syntax or when the value does not fit in 64 bits. */
static int
parse_uint64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned d = (unsigned char)s[i] - '0';

		if (d > 9)
			return 0;
		if (v > (UINT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	*out = v;
	return 1;
}

/* RFC 3461 §4: xtext = *( xchar / hexchar ), xchar = "!".."~" except "+"
 * and "=", hexchar = "+" and two upper-case hex digits. */
static int
xtext_check(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '+') {
			size_t k;

			if (len - i < 3)
				return 0;
			for (k = 1; k <= 2; k++) {
				unsigned char h = (unsigned char)s[i + k];

				if (!ascii_is_digit(h) &&
				    !(h >= 'A' && h <= 'F'))
					return 0;
			}
			i += 2;
		} else if (c < '!' || c > '~' || c == '=') {
			return 0;
		}
	}
	return 1;
}

/* RFC 5321 §4.1.3 IPv4-address-literal: Snum 3("." Snum), Snum being
 * 1*3DIGIT with a value of 0 to 255. */
static int
ipv4_check(const char *s, size_t len)
{
	size_t i = 0;
	int part;

	for (part = 0; part < 4; part++) {
		unsigned v = 0, ndigits = 0;

		if (part > 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
		while (i < len && ascii_is_digit((unsigned char)s[i])) {
			v = v * 10 + (unsigned)(s[i] - '0');
			if (++ndigits > 3)
				return 0;
			i++;
		}
		if (ndigits == 0 || v > 255)
			return 0;
	}
	return i == len;
}

/*
 * Command lines
 */

enum parse_result
smtp_parse_command(const char *line, size_t len, char verb[SMTP_VERB_MAX + 1],
		   const char **args_r, const char **error_r)
{
	size_t i, n;

	verb[0] = '\0';
	*args_r = "";
	/* RFC 5321 §4.1.1: commands are plain text; NUL, bare CR/LF and the
	 * other controls are never part of one (TAB may appear in arguments,
	 * and a TAB after the verb fails the letters-only check below). */
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			*error_r = "control character in command";
			return PARSE_INVALID;
		}
	}
	for (n = 0; n < len && line[n] != ' '; n++) {
		if (!ascii_is_alpha((unsigned char)line[n])) {
			*error_r = "invalid command verb";
			return PARSE_INVALID;
		}
		if (n >= SMTP_VERB_MAX) {
			*error_r = "command verb too long";
			return PARSE_INVALID;
		}
		verb[n] = ascii_upper(line[n]);
	}
	verb[n] = '\0';
	if (n == 0) {
		*error_r = "missing command verb";
		return PARSE_INVALID;
	}
	for (i = n; i < len && line[i] == ' '; i++)
		;
	if (i < len)
		*args_r = line + i;
	return PARSE_OK;
}

/*
 * Paths
 */

/* Parses a Local-part (RFC 5321 §4.1.2: Dot-string / Quoted-string, with
 * UTF-8 allowed by RFC 6531 §3.3) into path->local. A quoted local part is
 * stored unquoted with its quoted-pairs resolved. */
static enum parse_result
parse_local(const char **pp, struct smtp_path *path, const char **error_r)
{
	const char *start = *pp, *p = start;
	size_t n = 0;

	if (*p == '"') {
		path->quoted = 1;
		p++;
		for (;;) {
			unsigned char c = (unsigned char)*p;
			size_t k = 1;
			const char *src = p;

			if (c == '"') {
				p++;
				break;
			}
			if (c == '\\') {
				/* quoted-pairSMTP = "\" %d32-126 */
				c = (unsigned char)p[1];
				if (c < 32 || c > 126) {
					*error_r = "invalid quoted pair in "
						   "local part";
					return PARSE_INVALID;
				}
				src = p + 1;
				p += 2;
			} else if (c >= 0x80) {
				k = utf8_seq_len(p);
				if (k == 0) {
					*error_r =
					    "invalid UTF-8 in local part";
					return PARSE_INVALID;
				}
				path->utf8 = 1;
				p += k;
			} else if (c >= 32 && c <= 126) {
				/* qtextSMTP: %d32-33 / %d35-91 / %d93-126;
				 * '"' and '\' were handled above. */
				p++;
			} else if (c == '\0') {
				*error_r = "unterminated quoted local part";
				return PARSE_INVALID;
			} else {
				*error_r = "invalid character in local part";
				return PARSE_INVALID;
			}
			if (n + k > SMTP_LOCAL_MAX) {
				*error_r = "local part too long";
				return PARSE_TOO_LONG;
			}
			memcpy(path->local + n, src, k);
			n += k;
		}
	} else {
		for (;;) {
			const char *atom = p;

			for (;;) {
				unsigned char c = (unsigned char)*p;
				size_t k = 1;

				if (c >= 0x80) {
					k = utf8_seq_len(p);
					if (k == 0) {
						*error_r = "invalid UTF-8 in "
							   "local part";
						return PARSE_INVALID;
					}
					path->utf8 = 1;
				} else if (!ascii_is_atext(c)) {
					break;
				}
				if (n + k > SMTP_LOCAL_MAX) {
					*error_r = "local part too long";
					return PARSE_TOO_LONG;
				}
				memcpy(path->local + n, p, k);
				n += k;
				p += k;
			}
			if (p == atom) {
				*error_r = "invalid local part";
				return PARSE_INVALID;
			}
			if (*p != '.')
				break;
			if (n + 1 > SMTP_LOCAL_MAX) {
				*error_r = "local part too long";
				return PARSE_TOO_LONG;
			}
			path->local[n++] = '.';
			p++;
		}
	}
	path->local[n] = '\0';
	/* RFC 5321 §4.5.3.1.1: 64 octets as sent, quotes included. */
	if ((size_t)(p - start) > SMTP_LOCAL_MAX) {
		*error_r = "local part too long";
		return PARSE_TOO_LONG;
	}
	*pp = p;
	return PARSE_OK;
}

/* Parses an address literal (RFC 5321 §4.1.3): "[" IPv4 "]" or
 * "[IPv6:" IPv6-addr "]", copied verbatim into out. General literals with
 * other tags are refused: none is standardised. */
static enum parse_result
parse_address_literal(const char **pp, char out[SMTP_DOMAIN_MAX + 1],
		      const char **error_r)
{
	const char *start = *pp, *inner = start + 1, *p = inner;
	size_t len, total;

	/* dcontent = %d33-90 / %d94-126 */
	while (*p != ']') {
		unsigned char c = (unsigned char)*p;

		if (c < 33 || c > 126 || c == '[' || c == '\\') {
			*error_r = "invalid address literal";
			return PARSE_INVALID;
		}
		p++;
	}
	len = (size_t)(p - inner);
	p++;
	total = (size_t)(p - start);
	if (total > SMTP_DOMAIN_MAX) {
		*error_r = "address literal too long";
		return PARSE_TOO_LONG;
	}
	if (len > 5 && ascii_ncaseeq(inner, "IPv6:", 5)) {
		char buf[64];
		unsigned char addr[16];

		if (len - 5 >= sizeof(buf)) {
			*error_r = "invalid IPv6 address literal";
			return PARSE_INVALID;
		}
		memcpy(buf, inner + 5, len - 5);
		buf[len - 5] = '\0';
		if (inet_pton(AF_INET6, buf, addr) != 1) {
			*error_r = "invalid IPv6 address literal";
			return PARSE_INVALID;
		}
	} else if (memchr(inner, ':', len) != NULL) {
		*error_r = "unsupported address literal";
		return PARSE_INVALID;
	} else if (!ipv4_check(inner, len)) {
		*error_r = "invalid IPv4 address literal";
		return PARSE_INVALID;
	}
	memcpy(out, start, total);
	out[total] = '\0';
	*pp = p;
	return PARSE_OK;
}

/* Parses a Domain (RFC 5321 §4.1.2: dot-separated LDH labels, U-labels
 * allowed by RFC 6531 §3.3) or an address literal into out, lower-casing
 * ASCII letters of a name. Stops at the first octet that cannot continue
 * the domain; the caller checks what follows. */
static enum parse_result
parse_domain(const char **pp, char out[SMTP_DOMAIN_MAX + 1], int *literal_r,
	     int *utf8_r, const char **error_r)
{
	const char *p = *pp;
	size_t n = 0;

	if (*p == '[') {
		*literal_r = 1;
		return parse_address_literal(pp, out, error_r);
	}
	for (;;) {
		const char *label = p;
		int ascii = 1;

		for (;;) {
			unsigned char c = (unsigned char)*p;
			size_t k = 1;

			if (c >= 0x80) {
				k = utf8_seq_len(p);
				if (k == 0) {
					*error_r = "invalid UTF-8 in domain";
					return PARSE_INVALID;
				}
				ascii = 0;
				*utf8_r = 1;
			} else if (!ascii_is_alpha(c) && !ascii_is_digit(c) &&
				   c != '-') {
				break;
			}
			if (n + k > SMTP_DOMAIN_MAX) {
				*error_r = "domain too long";
				return PARSE_TOO_LONG;
			}
			if (k == 1 && c >= 'A' && c <= 'Z')
				out[n] = (char)(c - 'A' + 'a');
			else
				memcpy(out + n, p, k);
			n += k;
			p += k;
		}
		/* sub-domain = Let-dig [Ldh-str]: no empty label and no
		 * hyphen at either end. */
		if (p == label || *label == '-' || p[-1] == '-') {
			*error_r = "invalid domain";
			return PARSE_INVALID;
		}
		/* U-labels are measured in their A-label form, which is not
		 * computed here; the total length still bounds them. */
		if (ascii && (size_t)(p - label) > SMTP_LABEL_MAX) {
			*error_r = "domain label too long";
			return PARSE_TOO_LONG;
		}
		if (*p != '.')
			break;
		if (n + 1 > SMTP_DOMAIN_MAX) {
			*error_r = "domain too long";
			return PARSE_TOO_LONG;
		}
		out[n++] = '.';
		p++;
	}
	out[n] = '\0';
	*pp = p;
	return PARSE_OK;
}

/* Parses "<" [A-d-l ":"] Mailbox ">" or "<>" at *pp (RFC 5321 §4.1.2)
 * and advances *pp past the closing bracket. For RCPT the null path is
 * refused and "<postmaster>" accepted (§4.1.1.3). */
static enum parse_result
parse_path(const char **pp, struct smtp_path *path, int is_rcpt,
	   const char **error_r)
{
	const char *start = *pp, *p = start;
	enum parse_result r;

	if (*p != '<') {
		*error_r = "path must be enclosed in <>";
		return PARSE_INVALID;
	}
	p++;
	if (*p == '>') {
		if (is_rcpt) {
			*error_r = "null path not allowed";
			return PARSE_INVALID;
		}
		path->null = 1;
		*pp = p + 1;
		return PARSE_OK;
	}
	if (*p == '@') {
		/* A source route: obsolete, accepted and ignored as
		 * RFC 5321 §4.1.2 and Appendix C ask; the mailbox is the
		 * address that counts (no relaying through the route). */
		char hop[SMTP_DOMAIN_MAX + 1];
		int literal = 0;

		for (;;) {
			p++;
			r = parse_domain(&p, hop, &literal, &path->utf8,
					 error_r);
			if (r != PARSE_OK)
				return r;
			if (*p == ':')
				break;
			if (p[0] != ',' || p[1] != '@') {
				*error_r = "invalid source route";
				return PARSE_INVALID;
			}
			p++;
		}
		p++;
		path->had_route = 1;
	}
	r = parse_local(&p, path, error_r);
	if (r != PARSE_OK)
		return r;
	if (*p == '@') {
		p++;
		r = parse_domain(&p, path->domain, &path->domain_literal,
				 &path->utf8, error_r);
		if (r != PARSE_OK)
			return r;
	} else if (*p == '>' && is_rcpt && !path->quoted && !path->had_route &&
		   ascii_wordeq(path->local, strlen(path->local),
				"POSTMASTER")) {
		/* RFC 5321 §4.5.1: "postmaster" is case-insensitive. */
		memcpy(path->local, "postmaster", sizeof("postmaster"));
	} else if (*p == '>') {
		*error_r = "missing @domain in path";
		return PARSE_INVALID;
	} else {
		*error_r = "invalid character in path";
		return PARSE_INVALID;
	}
	if (*p == '@') {
		/* user@foreign@local: an old relay trick; never valid. */
		*error_r = "too many @ in path";
		return PARSE_INVALID;
	}
	if (*p != '>') {
		*error_r = "invalid domain";
		return PARSE_INVALID;
	}
	p++;
	if ((size_t)(p - start) > SMTP_PATH_MAX) {
		*error_r = "path too long";
		return PARSE_TOO_LONG;
	}
	*pp = p;
	return PARSE_OK;
}

/*
 * ESMTP parameters
 */

/* Reads the next "keyword[=value]" after spaces. Returns 1 with *prm
 * filled, 0 at the end of the string, -1 on bad syntax. */
static int
parse_param_next(const char **pp, struct esmtp_param *prm, const char **error_r)
{
	const char *p = *pp;

	while (*p == ' ')
		p++;
	if (*p == '\0') {
		*pp = p;
		return 0;
	}
	/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
	prm->key = p;
	if (!ascii_is_alpha((unsigned char)*p) &&
	    !ascii_is_digit((unsigned char)*p)) {
		*error_r = "invalid parameter";
		return -1;
	}
	while (ascii_is_alpha((unsigned char)*p) ||
	       ascii_is_digit((unsigned char)*p) || *p == '-')
		p++;
	prm->keylen = (size_t)(p - prm->key);
	prm->val = NULL;
	prm->vallen = 0;
	if (*p == '=') {
		/* esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 by
		 * RFC 6531 §3.3. */
		p++;
		prm->val = p;
		for (;;) {
			unsigned char c = (unsigned char)*p;

			if (c >= 0x80) {
				size_t k = utf8_seq_len(p);

				if (k == 0) {
					*error_r = "invalid UTF-8 in parameter";
					return -1;
				}
				p += k;
			} else if (c >= 33 && c <= 126 && c != '=') {
				p++;
			} else {
				break;
			}
		}
		prm->vallen = (size_t)(p - prm->val);
		if (prm->vallen == 0) {
			*error_r = "invalid parameter";
			return -1;
		}
	}
	if (*p != ' ' && *p != '\0') {
		*error_r = "invalid parameter";
		return -1;
	}
	*pp = p;
	return 1;
}

/* Parses the space-separated parameters at p against the table defs (at
 * most 32 rows). Each keyword may appear once. */
static enum parse_result
parse_params(const char *p, const struct esmtp_param_def *defs, size_t ndefs,
	     void *out, const char **error_r)
{
	struct esmtp_param prm;
	uint32_t seen = 0;
	int more;

	if (*p != ' ' && *p != '\0') {
		*error_r = "invalid character after path";
		return PARSE_INVALID;
	}
	while ((more = parse_param_next(&p, &prm, error_r)) > 0) {
		enum parse_result r;
		size_t i;

		for (i = 0; i < ndefs; i++)
			if (ascii_wordeq(prm.key, prm.keylen, defs[i].keyword))
				break;
		if (i == ndefs) {
			/* RFC 5321 §4.1.1.11: the caller answers 555. */
			*error_r = "unknown parameter";
			return PARSE_INVALID;
		}
		if (seen & (UINT32_C(1) << i)) {
			*error_r = "duplicate parameter";
			return PARSE_INVALID;
		}
		seen |= UINT32_C(1) << i;
		r = defs[i].parse(&prm, out, error_r);
		if (r != PARSE_OK)
			return r;
	}
	return more < 0 ? PARSE_INVALID : PARSE_OK;
}

/* RFC 1870 §3: SIZE=1*20DIGIT. */
static enum parse_result
param_parse_size(const struct esmtp_param *prm, void *out, const char **error_r)
{
	struct smtp_mail_params *mp = out;

	if (prm->val == NULL ||
	    !parse_uint64(prm->val, prm->vallen, &mp->size)) {
		*error_r = "invalid SIZE value";
		return PARSE_INVALID;
	}
	mp->has_size = 1;
	return PARSE_OK;
}

/* RFC 1652 §3 (7BIT, 8BITMIME) and RFC 3030 §3 (BINARYMIME). */
static enum parse_result
param_parse_body(const struct esmtp_param *prm, void *out, const char **error_r)
{
	struct smtp_mail_params *mp = out;

	if (prm->val != NULL && ascii_wordeq(prm->val, prm->vallen, "7BIT")) {
		mp->body = SMTP_BODY_7BIT;
	} else if (prm->val != NULL &&
		   ascii_wordeq(prm->val, prm->vallen, "8BITMIME")) {
		mp->body = SMTP_BODY_8BITMIME;
	} else if (prm->val != NULL &&
		   ascii_wordeq(prm->val, prm->vallen, "BINARYMIME")) {
		mp->body = SMTP_BODY_BINARYMIME;
	} else {
		*error_r = "invalid BODY value";
		return PARSE_INVALID;
	}
	return PARSE_OK;
}

/* RFC 6531 §3.4: SMTPUTF8 takes no value. */
static enum parse_result
param_parse_smtputf8(const struct esmtp_param *prm, void *out,
		     const char **error_r)
{
	struct smtp_mail_params *mp = out;

	if (prm->val != NULL) {
		*error_r = "SMTPUTF8 takes no value";
		return PARSE_INVALID;
	}
	mp->smtputf8 = 1;
	return PARSE_OK;
}

/* RFC 3461 §4.3: RET=FULL / HDRS. */
static enum parse_result
param_parse_ret(const struct esmtp_param *prm, void *out, const char **error_r)
{
	struct smtp_mail_params *mp = out;

	if (prm->val != NULL && ascii_wordeq(prm->val, prm->vallen, "FULL")) {
		mp->ret = 1;
	} else if (prm->val != NULL &&
		   ascii_wordeq(prm->val, prm->vallen, "HDRS")) {
		mp->ret = 2;
	} else {
		*error_r = "invalid RET value";
		return PARSE_INVALID;
	}
	return PARSE_OK;
}

/* RFC 3461 §4.4: ENVID=xtext, at most 100 octets; kept encoded. */
static enum parse_result
param_parse_envid(const struct esmtp_param *prm, void *out,
		  const char **error_r)
{
	struct smtp_mail_params *mp = out;

	if (prm->val == NULL || !xtext_check(prm->val, prm->vallen)) {
		*error_r = "invalid ENVID value";
		return PARSE_INVALID;
	}
	if (prm->vallen > SMTP_ENVID_MAX) {
		*error_r = "ENVID too long";
		return PARSE_TOO_LONG;
	}
	memcpy(mp->envid, prm->val, prm->vallen);
	mp->envid[prm->vallen] = '\0';
	return PARSE_OK;
}

/* RFC 4954 §5: AUTH=xtext (an addr-spec or "<>"). A server that trusts
 * no client for it "does nothing more than parse and discard" the value,
 * which is what we do; refusing it would break relaying clients. */
static enum parse_result
param_parse_auth(const struct esmtp_param *prm, void *out, const char **error_r)
{
	(void)out;
	if (prm->val == NULL || !xtext_check(prm->val, prm->vallen)) {
		*error_r = "invalid AUTH value";
		return PARSE_INVALID;
	}
	return PARSE_OK;
}

/* RFC 3461 §4.1: NOTIFY=NEVER or a list of SUCCESS, FAILURE, DELAY. */
static enum parse_result
param_parse_notify(const struct esmtp_param *prm, void *out,
		   const char **error_r)
{
	static const char *const words[] = {"NEVER", "SUCCESS", "FAILURE",
					    "DELAY"};
	struct smtp_rcpt_params *rp = out;
	const char *p, *end;
	int bits = 0;

	if (prm->val == NULL)
		goto bad;
	p = prm->val;
	end = p + prm->vallen;
	for (;;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *word_end = comma != NULL ? comma : end;
		size_t i;

		for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
			if (ascii_wordeq(p, (size_t)(word_end - p), words[i]))
				break;
		if (i == sizeof(words) / sizeof(words[0]))
			goto bad;
		bits |= 1 << i;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	if ((bits & 1) && bits != 1)
		goto bad;
	rp->notify = bits;
	return PARSE_OK;
bad:
	*error_r = "invalid NOTIFY value";
	return PARSE_INVALID;
}

/* RFC 3461 §4.2: ORCPT=addr-type ";" xtext, at most 500 octets; kept as
 * sent. addr-type is an atom ("rfc822", "utf-8"). */
static enum parse_result
param_parse_orcpt(const struct esmtp_param *prm, void *out,
		  const char **error_r)
{
	struct smtp_rcpt_params *rp = out;
	const char *semi;
	size_t i, typelen;

	if (prm->val == NULL)
		goto bad;
	semi = memchr(prm->val, ';', prm->vallen);
	if (semi == NULL || semi == prm->val)
		goto bad;
	typelen = (size_t)(semi - prm->val);
	for (i = 0; i < typelen; i++)
		if (!ascii_is_atext((unsigned char)prm->val[i]))
			goto bad;
	if (!xtext_check(semi + 1, prm->vallen - typelen - 1))
		goto bad;
	if (prm->vallen > SMTP_ORCPT_MAX) {
		*error_r = "ORCPT too long";
		return PARSE_TOO_LONG;
	}
	memcpy(rp->orcpt, prm->val, prm->vallen);
	rp->orcpt[prm->vallen] = '\0';
	return PARSE_OK;
bad:
	*error_r = "invalid ORCPT value";
	return PARSE_INVALID;
}

/*
 * MAIL, RCPT, BDAT
 */

/* The common part of MAIL and RCPT: "<keyword>" (case-insensitive), the
 * path, then the ESMTP parameters of the verb's table. On failure nothing
 * half-parsed is left for the caller to act upon. */
static enum parse_result
parse_envelope(const char *args, const char *keyword, int is_rcpt,
	       const struct esmtp_param_def *defs, size_t ndefs, void *params,
	       size_t params_size, struct smtp_path *path, const char **error_r)
{
	const char *p = args;
	size_t kwlen = strlen(keyword);
	enum parse_result r;

	memset(path, 0, sizeof(*path));
	memset(params, 0, params_size);
	if (!ascii_ncaseeq(p, keyword, kwlen)) {
		*error_r = is_rcpt ? "syntax: RCPT TO:<address>"
				   : "syntax: MAIL FROM:<address>";
		return PARSE_INVALID;
	}
	/* Spaces after the colon are a common deviation, tolerated like
	 * Postfix does. */
	p += kwlen;
	while (*p == ' ')
		p++;
	r = parse_path(&p, path, is_rcpt, error_r);
	if (r == PARSE_OK)
		r = parse_params(p, defs, ndefs, params, error_r);
	if (r != PARSE_OK) {
		memset(path, 0, sizeof(*path));
		memset(params, 0, params_size);
	}
	return r;
}

/* RFC 5321 §4.1.1.2: "MAIL FROM:" Reverse-path [SP Mail-parameters]. */
enum parse_result
smtp_parse_mail(const char *args, struct smtp_path *path,
		struct smtp_mail_params *params, const char **error_r)
{
	return parse_envelope(args, "FROM:", 0, mail_param_defs,
			      sizeof(mail_param_defs) /
				  sizeof(mail_param_defs[0]),
			      params, sizeof(*params), path, error_r);
}

/* RFC 5321 §4.1.1.3: "RCPT TO:" Forward-path [SP Rcpt-parameters]. */
enum parse_result
smtp_parse_rcpt(const char *args, struct smtp_path *path,
		struct smtp_rcpt_params *params, const char **error_r)
{
	return parse_envelope(args, "TO:", 1, rcpt_param_defs,
			      sizeof(rcpt_param_defs) /
				  sizeof(rcpt_param_defs[0]),
			      params, sizeof(*params), path, error_r);
}

/* RFC 3030 §2: bdat-cmd = "BDAT" SP chunk-size [SP end-marker]. Extra
 * spaces are tolerated. */
enum parse_result
smtp_parse_bdat(const char *args, uint64_t *size_r, int *last_r,
		const char **error_r)
{
	const char *p = args, *digits;

	*size_r = 0;
	*last_r = 0;
	while (*p == ' ')
		p++;
	digits = p;
	while (ascii_is_digit((unsigned char)*p))
		p++;
	if (p == digits || (*p != ' ' && *p != '\0')) {
		*error_r = "syntax: BDAT <size> [LAST]";
		return PARSE_INVALID;
	}
	if (!parse_uint64(digits, (size_t)(p - digits), size_r)) {
		*error_r = "BDAT size too large";
		return PARSE_INVALID;
	}
	while (*p == ' ')
		p++;
	if (*p == '\0')
		return PARSE_OK;
	if (!ascii_ncaseeq(p, "LAST", 4) || (p[4] != ' ' && p[4] != '\0')) {
		*size_r = 0;
		*error_r = "syntax: BDAT <size> [LAST]";
		return PARSE_INVALID;
	}
	p += 4;
	while (*p == ' ')
		p++;
	if (*p != '\0') {
		*size_r = 0;
		*error_r = "syntax: BDAT <size> [LAST]";
		return PARSE_INVALID;
	}
	*last_r = 1;
	return PARSE_OK;
}

/*
 * Body decoder
 *
 * A state machine over the wire octets, resumable anywhere. Runs of
 * ordinary octets are found with memchr and copied in one go; the states
 * only handle line starts, dots and CR.
 *
 * A bare CR is not written to the output: whether a CR is bare is known
 * only at the next octet, which may come in a later call, and writing it
 * then could make that call's output longer than its input (the header
 * promises it never is). The message carrying it is refused anyway
 * (bare_cr is sticky), so nothing of value is lost. A bare LF is written
 * as it is. Output never overtakes input, so out may equal in.
 */

enum body_state {
	BODY_BOL = 0, /* at the start of a line */
	BODY_DOT,     /* DATA: "." at the start of a line */
	BODY_DOT_CR,  /* DATA: ".\r" at the start of a line */
	BODY_TEXT,    /* inside a line */
	BODY_TEXT_LF, /* inside a line, the last octet written a bare LF */
	BODY_CR,      /* inside a line, a CR pending */
	BODY_END,     /* DATA: CRLF.CRLF seen */
};

void
smtp_body_init(struct smtp_body *b, int mode, size_t max_line)
{
	memset(b, 0, sizeof(*b));
	b->mode = mode;
	b->state = BODY_BOL;
	b->max_line = max_line;
}

/* Adds n octets to the current line. RFC 5321 §4.5.3.1.6: a text line is
 * at most max_line octets with its CRLF (0 means no limit). */
static void
body_count(struct smtp_body *b, size_t n)
{
	b->line_len += n;
	if (b->max_line != 0 && b->line_len + 2 > b->max_line)
		b->too_long = 1;
}

/* A CR not followed by LF: a line octet, flagged, never a line end
 * (RFC 5321 §2.3.8; a CR.CR or LF.LF must not end DATA). */
static void
body_bare_cr(struct smtp_body *b)
{
	b->bare_cr = 1;
	body_count(b, 1);
}

/* A CRLF has ended the line (its LF has been written). */
static void
body_line_end(struct smtp_body *b)
{
	if (b->max_line != 0 && b->line_len + 2 > b->max_line)
		b->too_long = 1;
	b->line_len = 0;
	b->lines++;
}

/* The next c in [p, end), or end; *cache keeps the last answer so that a
 * buffer is scanned once per character whatever the number of lines. */
static const char *
body_find(const char **cache, const char *p, const char *end, int c)
{
	if (*cache == NULL || *cache < p) {
		*cache = memchr(p, c, (size_t)(end - p));
		if (*cache == NULL)
			*cache = end;
	}
	return *cache;
}

enum smtp_body_result
smtp_body_feed(struct smtp_body *b, const char *in, size_t inlen, char *out,
	       size_t *outlen_r, size_t *consumed_r)
{
	const char *p = in, *end = in + inlen;
	const char *next_cr = NULL, *next_lf = NULL;
	char *o = out;

	while (p < end && b->state != BODY_END) {
		switch (b->state) {
		case BODY_BOL:
			/* RFC 5321 §4.5.2: a line starting with "." loses
			 * that dot; "." CRLF alone ends the data. */
			if (b->mode == SMTP_BODY_MODE_DATA && *p == '.') {
				p++;
				b->state = BODY_DOT;
			} else {
				b->state = BODY_TEXT;
			}
			break;
		case BODY_DOT:
			if (*p == '\r') {
				p++;
				b->state = BODY_DOT_CR;
			} else {
				b->state = BODY_TEXT;
			}
			break;
		case BODY_DOT_CR:
			if (*p == '\n') {
				p++;
				b->state = BODY_END;
			} else {
				body_bare_cr(b);
				b->state = BODY_TEXT;
			}
			break;
		case BODY_CR:
			if (*p == '\n') {
				p++;
				*o++ = '\n';
				body_line_end(b);
				b->state = BODY_BOL;
			} else {
				body_bare_cr(b);
				b->state = BODY_TEXT;
			}
			break;
		case BODY_TEXT:
		case BODY_TEXT_LF: {
			const char *cr = body_find(&next_cr, p, end, '\r');
			const char *lf = body_find(&next_lf, p, end, '\n');
			const char *stop = cr < lf ? cr : lf;
			size_t run = (size_t)(stop - p);

			if (run > 0) {
				memmove(o, p, run);
				o += run;
				p += run;
				body_count(b, run);
				b->state = BODY_TEXT;
			}
			if (p == end)
				break;
			if (*p == '\r') {
				p++;
				b->state = BODY_CR;
			} else {
				/* A bare LF: data, never a line end. */
				b->bare_lf = 1;
				*o++ = '\n';
				p++;
				body_count(b, 1);
				b->state = BODY_TEXT_LF;
			}
			break;
		}
		default:
			/* BODY_END stops the loop; nothing else exists. */
			break;
		}
	}
	b->out_bytes += (uint64_t)(o - out);
	*outlen_r = (size_t)(o - out);
	*consumed_r = (size_t)(p - in);
	return b->state == BODY_END ? SMTP_BODY_END : SMTP_BODY_MORE;
}

size_t
smtp_body_finish(struct smtp_body *b, char *out)
{
	/* DATA ends only through its end marker. */
	if (b->mode != SMTP_BODY_MODE_BDAT)
		return 0;
	if (b->state == BODY_CR)
		body_bare_cr(b);
	else if (b->state != BODY_TEXT)
		return 0;
	/* The last line had no line end (or ended in a bare CR, dropped as
	 * in smtp_body_feed): complete it. */
	out[0] = '\n';
	body_line_end(b);
	b->out_bytes++;
	b->state = BODY_BOL;
	return 1;
}
