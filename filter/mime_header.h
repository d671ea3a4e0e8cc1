/* filter/mime_header: pure parsers for the few header values the E2EE
 * screen reads, on values already unfolded (spec D.3-D.7, D.10). They
 * follow what filtermail gets from the Rust mailparse crate (0.16), quirks
 * included, because the relay's verdicts depend on them. No I/O, no
 * malloc. */
#ifndef RINGMAIL_MIME_HEADER_H
#define RINGMAIL_MIME_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A MIME type kept in struct mime_ctype; longer ones are truncated and
 * flagged (no type the screen compares with is that long). */
#define MIME_TYPE_MAX 95

/* The ASCII characters Rust's char::is_whitespace (and str::trim) takes:
 * SP, HT, LF, VT, FF, CR. */
bool mime_is_ws(uint8_t c);

/* A Content-Type value as mailparse's parse_content_type reads it: the
 * type is the text before the first ";", trimmed and lower-cased; the
 * parameters are the ";"-separated pieces after it (split without regard
 * to quotes, as mailparse does) that contain "=": name trimmed and
 * lower-cased, value trimmed, one pair of enclosing double quotes removed;
 * a later parameter of the same name wins. RFC 2231 forms (name* and
 * name*0...) are not decoded: such a boundary is not seen. */
struct mime_ctype {
	char type[MIME_TYPE_MAX + 1]; /* NUL-terminated, lower case */
	bool type_trunc;
	bool has_boundary;
	bool has_report_type;
	const char *boundary; /* into the value; may be empty */
	size_t boundary_len;
	const char *report_type; /* into the value, as sent */
	size_t report_type_len;
};

void mime_ctype_parse(const char *v, size_t len, struct mime_ctype *out);

/* filtermail extract_address (spec D.10) on a header value: trim, lower-case
 * (ASCII), strip leading "mail from:" then "rcpt to:" repeats, cut after the
 * first ">", then mailparse's addrparse: the first mailbox, or the first
 * member of a first group. The address is written NUL-terminated to @out;
 * returns its length, or -1 when there is none (empty input, an address
 * without "@", a syntax error anywhere in the cut text) or it does not fit
 * in @out_size or has a NUL octet. Encoded words (RFC 2047) are not decoded: they stay part
 * of a display name, which is what RFC 5322 means; mailparse decodes them
 * first and may then stumble over a decoded "," or "<". */
int mime_addr_extract(const char *v, size_t len, char *out, size_t out_size);

#ifdef __cplusplus
}
#endif

#endif
