/* filter/dkim: DKIM signing and verification over libopendkim (spec E.1 to
 * E.3), in two halves that the SMTP server, bounces and (later) outbound
 * delivery and /mxdeliv share.
 *
 * Signing (E.1): rsa-sha256, relaxed/simple, the selector and key of the
 * config, OpenDKIM's default header list plus Autocrypt and Content-Type,
 * chatmail's oversigned list, no l=. Only mail whose From domain is the
 * signing domain is signed (dkim_signer_wants).
 *
 * Verification (E.3): the message streams in through dkim_verify_feed as
 * DATA arrives (the body hash is computed in that one pass); at the end
 * dkim_verify_end names the keys the aligned signatures need (d= equal to
 * the From domain, ASCII case-insensitive, no subdomains); the caller
 * fetches them (core/dns on the loop, filter/dkim_check) and hands them in
 * with dkim_verify_set_key; dkim_verify_finish does the RSA work (call it
 * on the pool) with those keys, no DNS of libopendkim's own.
 *
 * A handle is used by one thread at a time; the library handle is shared
 * by all threads. */
#ifndef RINGMAIL_FILTER_DKIM_H
#define RINGMAIL_FILTER_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct dkim_ctx;
struct dkim_signer;
struct dkim_verify;

/* Aligned signatures verified per message, and so keys looked up (one
 * per distinct selector among them); further ones are ignored. */
#define DKIM_KEYS_MAX 8
/* A key record as libopendkim takes it (its BUFRSZ). */
#define DKIM_RECORD_MAX 1024
/* "<selector>._domainkey.<domain>" */
#define DKIM_KEY_NAME_MAX 320

/* The process-wide library handle with chatmail's header lists. 0 or
 * -ENOMEM/-EINVAL. */
int dkim_ctx_new(struct dkim_ctx **lib_r);
void dkim_ctx_free(struct dkim_ctx **lib);

/* ---- signing ---- */

/* A signer for @domain with @selector and the PEM private key @pem. 0,
 * -EINVAL (not an RSA key of at least 1024 bits) or -ENOMEM. */
int dkim_signer_new(struct dkim_ctx *lib, const char *domain,
		    const char *selector, const char *pem, size_t pem_len,
		    struct dkim_signer **s_r);
/* The same from a key file (opendkim-genkey's or `ringmail dkim keygen`'s
 * PEM). -errno of the read, or as above. */
int dkim_signer_load(struct dkim_ctx *lib, const char *domain,
		     const char *selector, const char *key_file,
		     struct dkim_signer **s_r);
void dkim_signer_free(struct dkim_signer **s);
/* Does a message with the From address @from_addr get signed: its domain
 * is the signer's (ASCII case-insensitive)? */
bool dkim_signer_wants(const struct dkim_signer *s, const char *from_addr);
/* Sign @msg (the whole message, CRLF line ends). *@hdr_r: the malloc'd
 * "DKIM-Signature: ...\r\n" field to put in front of the message,
 * *@hdr_len_r octets. CPU-heavy (RSA): call it on the pool. 0, -EINVAL
 * (libopendkim refused the message) or -ENOMEM. */
int dkim_signer_sign(const struct dkim_signer *s, const uint8_t *msg,
		     size_t len, char **hdr_r, size_t *hdr_len_r);

/* ---- verification ---- */

enum dkim_result {
	DKIM_RES_PASS = 0, /* an aligned signature verified */
	DKIM_RES_NOSIG,    /* no DKIM-Signature field: 554 No DKIM ... */
	DKIM_RES_FAIL,     /* none verified and aligned: 554 No valid ... */
	DKIM_RES_TEMPFAIL, /* a needed key could not be fetched: 451 */
};
const char *dkim_result_name(enum dkim_result r);

enum dkim_key_state {
	DKIM_KEY_PENDING = 0,
	DKIM_KEY_FOUND,    /* the TXT record is set */
	DKIM_KEY_NOTFOUND, /* NXDOMAIN, no TXT, no DKIM record */
	DKIM_KEY_TEMPFAIL, /* timeout, SERVFAIL, ... */
};

/* A verifier for one message. 0 or -ENOMEM. */
int dkim_verify_new(struct dkim_ctx *lib, struct dkim_verify **v_r);
void dkim_verify_free(struct dkim_verify **v);
/* The next octets of the message (after dot-unstuffing, CRLF). Never
 * fails: an error inside libopendkim makes the message unverifiable. */
void dkim_verify_feed(struct dkim_verify *v, const uint8_t *p, size_t n);
/* The message is complete; @from_domain is its From address's domain.
 * Returns DKIM_RES_NOSIG (no signature field), DKIM_RES_FAIL (no
 * signature with d= @from_domain, or none verifiable) or DKIM_RES_PASS
 * meaning "go on": fetch dkim_verify_nkeys keys, then finish. */
enum dkim_result dkim_verify_end(struct dkim_verify *v,
				 const char *from_domain);
unsigned dkim_verify_nkeys(const struct dkim_verify *v);
/* Key @i's DNS name, lower case: "<selector>._domainkey.<domain>". */
const char *dkim_verify_key_name(const struct dkim_verify *v, unsigned i);
/* The answer for key @i: @record is the TXT text (DKIM_KEY_FOUND). */
void dkim_verify_set_key(struct dkim_verify *v, unsigned i,
			 enum dkim_key_state st, const char *record);
/* Verify with the keys set (RSA: call on the pool): PASS, FAIL or
 * TEMPFAIL (no aligned signature passed and one of their keys is
 * DKIM_KEY_TEMPFAIL). */
enum dkim_result dkim_verify_finish(struct dkim_verify *v);
/* After finish: a signature failed its cryptographic check with key @i
 * (the cache entry must go, spec E.3). */
bool dkim_verify_key_failed(const struct dkim_verify *v, unsigned i);
/* After finish: a short reason for the log ("body hash mismatch", ...). */
const char *dkim_verify_detail(const struct dkim_verify *v);

/* ---- DNS TXT record selection (spec E.3) ---- */

/* Pick the DKIM key record among the TXT records @txt[0..n): the first
 * one containing "DKIM", else the first with "p="; whitespace removed
 * (RFC 6376 3.6.2.2) into @out. true if one was found and fits. */
bool dkim_record_select(const char *const *txt, const size_t *txt_len,
			unsigned n, char *out, size_t out_len);

#ifdef __cplusplus
}
#endif

#endif
