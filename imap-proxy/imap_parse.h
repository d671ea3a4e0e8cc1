/* imap-proxy/imap_parse: pure, resumable framing of IMAP streams (RFC 9051
 * / 3501 section 4.3, RFC 7888 LITERAL+) in both directions, and an
 * argument tokenizer for commands the proxy answers itself. No I/O, no
 * malloc. The framer never stores the bytes it frames: the caller keeps
 * them (in its input buffer) and only learns where lines and literals
 * start and end, so any split of the input gives the same results.
 *
 * Client mode: a command is "tag SP name [SP args] CRLF", where the line
 * may end in a literal "{n}" / "{n+}" / "~{n}": then n octets follow and
 * the command line continues after them. Server mode: the first word is
 * "*", "+" or a tag; "+" lines never announce a literal. */
#ifndef RINGMAIL_IMAP_PARSE_H
#define RINGMAIL_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IMAP_TAG_MAX  64 /* octets of a tag we track (longer: truncated) */
#define IMAP_NAME_MAX 24 /* octets of a command name we track */

enum imap_parse_status {
	IMAP_PARSE_INVALID = -1, /* the line is used up to its LF; see error */
	IMAP_PARSE_AGAIN = 0,    /* all input used; nothing complete */
	IMAP_PARSE_CMD = 1,      /* a whole command (or response) ended */
	IMAP_PARSE_LITERAL = 2,  /* a line ended announcing a literal; its
				    octets come next (imap_parse_in_literal) */
};

enum imap_parse_error {
	IMAP_PERR_NONE = 0,
	IMAP_PERR_TOO_LONG, /* a line (literals excluded) over max_line */
	IMAP_PERR_SYNTAX,   /* empty line, no command name, NUL */
};

struct imap_parser {
	int state;
	bool server; /* server responses instead of client commands */
	uint32_t max_line;
	/* Per line. */
	uint32_t line_len; /* octets of this line so far (literal excluded) */
	int lit;           /* literal detection at the line's end */
	bool lit_plus;
	uint64_t lit_num;
	/* Per command (kept across literals). */
	uint64_t literal_left; /* octets of the current literal still due */
	uint32_t lines;        /* lines of this command so far */
	uint64_t cmd_len;      /* octets of the whole command so far */
	enum imap_parse_error error;
	bool tag_truncated;
	/* Results, valid after CMD/LITERAL/INVALID until the next command
	 * starts. */
	char tag[IMAP_TAG_MAX + 1];   /* first word ("*", "+" in server mode) */
	char name[IMAP_NAME_MAX + 1]; /* second word, upper-cased */
	uint8_t tag_len, name_len;
	uint64_t literal;  /* LITERAL: its announced size */
	bool literal_sync; /* LITERAL: "{n}" (the peer waits for "+") */
};

/* @max_line: octets of one line without its literals (0 = 65536). */
void imap_parser_init(struct imap_parser *p, bool server, uint32_t max_line);
/* Frame @len octets; *@used_r says how many were used. Returns at the
 * first event; call again with the rest. */
enum imap_parse_status imap_parse(struct imap_parser *p, const uint8_t *data,
				  size_t len, size_t *used_r);
/* Octets of literal data still expected (0 outside a literal). */
static inline uint64_t imap_parse_in_literal(const struct imap_parser *p)
{
	return p->literal_left;
}
/* The caller refused a synchronizing literal it was just told about
 * (the client will not send it): the command is over. */
void imap_parse_drop_literal(struct imap_parser *p);
/* The command in progress is given up (e.g. after the session closed it);
 * start fresh at the next octet. */
void imap_parse_reset(struct imap_parser *p);
/* True between commands (nothing of a new one seen yet). */
bool imap_parse_at_start(const struct imap_parser *p);

/* ---- arguments of one complete command held by the caller ---- */
enum imap_arg_type {
	IMAP_ARG_EOL = 0,
	IMAP_ARG_ATOM,    /* also NIL and numbers */
	IMAP_ARG_QUOTED,  /* unescaped */
	IMAP_ARG_LITERAL, /* its octets */
	IMAP_ARG_LPAREN,
	IMAP_ARG_RPAREN,
	IMAP_ARG_ERROR, /* malformed */
};

struct imap_arg {
	enum imap_arg_type type;
	const uint8_t *data;
	size_t len;
};

struct imap_args {
	uint8_t *p;   /* cursor (quoted strings are unescaped in place) */
	uint8_t *end; /* end of the command (its final CRLF excluded) */
};

/* Start after the tag and name of the command in @buf[0..len) (the raw
 * octets: line, "{n}\r\n" literal framing, and the final CRLF, which may
 * be absent). The buffer is modified (quoted strings are unescaped in
 * place). */
void imap_args_init(struct imap_args *a, uint8_t *buf, size_t len);
/* The next argument; EOL at the end, ERROR on bad syntax. */
enum imap_arg_type imap_args_next(struct imap_args *a, struct imap_arg *arg);
/* Case-insensitive compare of an atom/string argument with @s. */
bool imap_arg_is(const struct imap_arg *arg, const char *s);
/* An astring (atom, quoted or literal)? */
static inline bool imap_arg_is_string(const struct imap_arg *arg)
{
	return arg->type == IMAP_ARG_ATOM || arg->type == IMAP_ARG_QUOTED ||
	       arg->type == IMAP_ARG_LITERAL;
}

#ifdef __cplusplus
}
#endif

#endif
