/* filter/rewrite: the header privacy rewrite of spec F.4/F.5 (Postfix
 * header_checks IGNORE/REPLACE on whole logical header fields) over a
 * message held in memory. Pure: output leaves as spans of the input plus
 * the constant replacement Subject line; no allocation. */
#ifndef RINGMAIL_FILTER_REWRITE_H
#define RINGMAIL_FILTER_REWRITE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Submission (authclean): remove Received, X-Originating-IP, X-Mailer,
 * User-Agent; every Subject becomes "Subject: [...]". */
#define REWRITE_SUBMISSION (1u << 0)
/* Before LMTP (lmtp_header_cleanup): remove DKIM-Signature,
 * Authentication-Results, Received. */
#define REWRITE_LMTP (1u << 1)

typedef int rewrite_out_fn(void *ctx, const uint8_t *p, size_t n);

/* Write @msg with its top-level header section (up to the first empty
 * line; all of it if there is none) rewritten per @flags. A field is its
 * first line and its continuation lines; names match case-insensitively,
 * spaces before the colon allowed. The rest is passed through unchanged.
 * 0, or the first <0 that @out returned. */
int rewrite_headers(const uint8_t *msg, size_t len, unsigned flags,
		    rewrite_out_fn *out, void *ctx);
/* Octets rewrite_headers would write. */
uint64_t rewrite_size(const uint8_t *msg, size_t len, unsigned flags);

#ifdef __cplusplus
}
#endif

#endif
