/* tests/fuzz/fuzz_smtp_parse: the command-line parser must give the same
 * lines whatever the chunking (chunk sizes come from the first two input
 * octets). Each line is also handed to the MAIL/RCPT, AUTH and HELO
 * parsers, and a canonical address must parse back to itself. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp_addr.h"
#include "smtp/smtp_auth.h"
#include "smtp/smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(c)                                                      \
	do {                                                               \
		if (!(c)) {                                                \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, \
				#c);                                       \
			abort();                                           \
		}                                                          \
	} while (0)

static uint64_t fuzz_hash(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	return h;
}

/* The canonical form of a path must parse to itself. */
static void fuzz_reparse(const struct smtp_path *p, bool rcpt)
{
	char buf[SMTP_PATH_MAX + 16];
	struct smtp_mail_args m;
	struct smtp_rcpt_args t;
	int n, r;

	FUZZ_CHECK(p->len <= SMTP_ADDR_MAX);
	FUZZ_CHECK(strlen(p->addr) == p->len);
	FUZZ_CHECK(p->local_len <= p->len);
	if (p->null) {
		FUZZ_CHECK(p->len == 0 && !rcpt);
		return;
	}
	FUZZ_CHECK(p->postmaster || p->addr[p->local_len] == '@');
	/* Domains come out in lower case ("[IPv6:" keeps its tag). */
	for (size_t i = p->local_len; i < p->len; i++)
		FUZZ_CHECK(p->addr[i] < 'A' || p->addr[i] > 'Z' ||
			   (p->literal && i - p->local_len < 6));
	n = snprintf(buf, sizeof(buf), "%s:<%s>", rcpt ? "TO" : "FROM",
		     p->addr);
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(buf));
	if (rcpt) {
		r = smtp_addr_parse_rcpt(buf, (size_t)n, SMTP_ADDR_F_UTF8, &t);
		FUZZ_CHECK(r == SMTP_ADDR_OK);
		FUZZ_CHECK(strcmp(t.to.addr, p->addr) == 0);
		FUZZ_CHECK(t.to.postmaster == p->postmaster);
	} else {
		r = smtp_addr_parse_mail(buf, (size_t)n, SMTP_ADDR_F_SMTPUTF8,
					 &m);
		FUZZ_CHECK(r == SMTP_ADDR_OK ||
			   (r == SMTP_ADDR_ERR_UTF8 && p->utf8));
		if (r == SMTP_ADDR_OK)
			FUZZ_CHECK(strcmp(m.from.addr, p->addr) == 0);
	}
}

/* What the session will do with a line. */
static void fuzz_use(const struct smtp_cmd *c, unsigned flags)
{
	struct smtp_mail_args m;
	struct smtp_rcpt_args t;
	struct smtp_auth_cmd ac;
	struct sasl_plain a;
	int r;

	switch (c->verb) {
	case SMTP_VERB_MAIL:
		r = smtp_addr_parse_mail(c->arg, c->arg_len, flags, &m);
		FUZZ_CHECK(smtp_addr_error_reply(r, false) != NULL ||
			   r == SMTP_ADDR_OK);
		if (r == SMTP_ADDR_OK)
			fuzz_reparse(&m.from, false);
		else if (m.param != NULL)
			FUZZ_CHECK(m.param >= c->arg &&
				   m.param + m.param_len <=
					   c->arg + c->arg_len);
		break;
	case SMTP_VERB_RCPT:
		r = smtp_addr_parse_rcpt(c->arg, c->arg_len, flags, &t);
		if (r == SMTP_ADDR_OK)
			fuzz_reparse(&t.to, true);
		break;
	case SMTP_VERB_EHLO:
	case SMTP_VERB_HELO:
		(void)smtp_addr_check_helo(c->arg, c->arg_len);
		break;
	case SMTP_VERB_AUTH:
		r = smtp_auth_parse_cmd(c->arg, c->arg_len, &ac);
		if (r != SMTP_AUTH_OK)
			break;
		if (!ac.has_ir)
			break;
		FUZZ_CHECK(ac.ir + ac.ir_len <= c->arg + c->arg_len);
		r = sasl_plain_decode(ac.ir, ac.ir_len, &a);
		if (r == SMTP_AUTH_OK)
			FUZZ_CHECK(a.authcid_len > 0 && a.password_len > 0 &&
				   strlen(a.password) == a.password_len);
		break;
	case SMTP_VERB_LINE:
		r = sasl_plain_decode(c->arg, c->arg_len, &a);
		FUZZ_CHECK(r == SMTP_AUTH_OK ||
			   smtp_auth_error_reply(r) != NULL);
		break;
	default:
		break;
	}
}

struct fuzz_run {
	uint64_t h;
	size_t lines;
};

/* Parse @in in chunks of 1..@max octets (from @seed); @max 0: whole. */
static void fuzz_feed(const uint8_t *in, size_t len, uint32_t max,
		      uint32_t seed, unsigned flags, bool use,
		      struct fuzz_run *out)
{
	struct smtp_parser p;
	size_t off = 0, used, chunk, end;
	int r;

	smtp_parser_init(&p);
	out->h = 14695981039346656037ULL;
	out->lines = 0;
	while (off < len) {
		if (max == 0) {
			chunk = len - off;
		} else {
			seed = seed * 1103515245u + 12345u;
			chunk = 1 + (seed >> 16) % max;
		}
		end = off + chunk < len ? off + chunk : len;
		while (off < end) {
			r = smtp_parse_cmd(&p, in + off, end - off, &used);
			FUZZ_CHECK(used > 0 && used <= end - off);
			off += used;
			if (r == SMTP_PARSE_AGAIN) {
				FUZZ_CHECK(off == end);
				continue;
			}
			FUZZ_CHECK(r == SMTP_PARSE_OK ||
				   r == SMTP_PARSE_INVALID);
			FUZZ_CHECK(in[off - 1] == '\n');
			out->lines++;
			out->h = fuzz_hash(out->h, &r, sizeof(r));
			out->h = fuzz_hash(out->h, &p.cmd.verb,
					   sizeof(p.cmd.verb));
			out->h = fuzz_hash(out->h, &p.error, sizeof(p.error));
			out->h = fuzz_hash(out->h, &p.cmd.line_len,
					   sizeof(p.cmd.line_len));
			if (r == SMTP_PARSE_INVALID) {
				FUZZ_CHECK(p.error != SMTP_PERR_NONE);
				FUZZ_CHECK(smtp_parse_error_reply(p.error));
				continue;
			}
			FUZZ_CHECK(p.error == SMTP_PERR_NONE);
			FUZZ_CHECK(p.cmd.line_len <= SMTP_LINE_MAX_LONG);
			FUZZ_CHECK(p.cmd.arg[p.cmd.arg_len] == '\0');
			FUZZ_CHECK(p.cmd.arg_len + 2 <= p.cmd.line_len);
			for (size_t i = 0; i < p.cmd.arg_len; i++)
				FUZZ_CHECK((unsigned char)p.cmd.arg[i] >=
						   0x20 ||
					   p.cmd.arg[i] == '\t');
			out->h = fuzz_hash(out->h, p.cmd.name, p.cmd.name_len);
			out->h = fuzz_hash(out->h, p.cmd.arg, p.cmd.arg_len);
			/* The session's choice, identical in every run. */
			if (p.cmd.verb == SMTP_VERB_AUTH &&
			    strcasecmp(p.cmd.arg, "PLAIN") == 0)
				smtp_parser_expect_line(&p);
			if (use)
				fuzz_use(&p.cmd, flags);
		}
	}
	FUZZ_CHECK(smtp_parse_line_ready(in, len) == (out->lines > 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_run whole, chunked, bytes;
	uint32_t seed, max;
	unsigned flags;

	if (size < 2)
		return 0;
	/* Octet 0: chunk size range and parser flags; octet 1: the seed. */
	max = 1 + (data[0] & 0x1f) * (data[0] & 0x20 ? 97 : 1);
	flags = data[0] >> 6;
	seed = data[1];
	data += 2;
	size -= 2;
	fuzz_feed(data, size, 0, 0, flags, true, &whole);
	fuzz_feed(data, size, max, seed, flags, false, &chunked);
	FUZZ_CHECK(whole.lines == chunked.lines);
	FUZZ_CHECK(whole.h == chunked.h);
	if (size < 1024) {
		fuzz_feed(data, size, 1, 0, flags, false, &bytes);
		FUZZ_CHECK(whole.h == bytes.h);
	}
	return 0;
}
