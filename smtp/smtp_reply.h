/* smtp/smtp_reply: every reply text the SMTP server sends (STYLE.md rule
 * 11). Each SMTP_R_* expands to "code, esc, text": pass it to
 * smtp_reply(s, SMTP_R_X, args...) or put it in braces for a struct
 * smtp_reply_def. esc is NULL where the reference sends none. */
#ifndef RINGMAIL_SMTP_REPLY_H
#define RINGMAIL_SMTP_REPLY_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One reply: code, RFC 3463 enhanced status ("5.5.2") or NULL, and a
 * printf format for the text (arguments named in the macro's comment;
 * "%.*s" takes (int)len, ptr of a span that is not NUL-terminated). */
struct smtp_reply_def {
	uint16_t code;
	const char *esc;
	const char *text;
};

/* Connection and greeting. Texts as Postfix's smtpd sends them, without
 * its hostname prefixes. */
#define SMTP_R_GREETING      220, NULL, "%s ESMTP" /* hostname */
#define SMTP_R_BYE           221, "2.0.0", "Bye"
#define SMTP_R_OK            250, "2.0.0", "Ok"
#define SMTP_R_MAIL_OK       250, "2.1.0", "Ok"
#define SMTP_R_RCPT_OK       250, "2.1.5", "Ok"
#define SMTP_R_QUEUED        250, "2.0.0", "Ok: queued"
#define SMTP_R_DATA_GO       354, NULL, "End data with <CR><LF>.<CR><LF>"
#define SMTP_R_STARTTLS_GO   220, "2.0.0", "Ready to start TLS"
#define SMTP_R_AUTH_OK       235, "2.7.0", "Authentication successful"
#define SMTP_R_AUTH_GO       334, NULL, ""
#define SMTP_R_HELP          214, "2.0.0", "Commands: %s" /* verb list */
#define SMTP_R_SHUTDOWN      421, "4.3.0", "Server shutting down"
#define SMTP_R_TIMEOUT       421, "4.4.2", "Error: timeout exceeded"
#define SMTP_R_TOO_MANY_CONN 421, "4.7.0", "Error: too many connections from %s"
#define SMTP_R_TOO_MANY_ERR  421, "4.7.0", "Error: too many errors"
#define SMTP_R_LOCAL_ERROR   421, "4.3.0", "Server local error"
#define SMTP_R_OOM           421, "4.3.0", "Mail system error"
/* 443 with ALPN "smtp" over TLS 1.2: 465 would refuse the handshake. */
#define SMTP_R_TLS13_REQUIRED 421, "4.7.0", "Error: TLS 1.3 required"

/* Limits at connect (sent with the hostname before any session): one
 * client over smtp_max_connections_per_ip gets SMTP_R_TOO_MANY_CONN
 * (Postfix anvil's text, the client's own address); the server over
 * max_smtp_connections is busy for everyone (4.3.2: system not accepting
 * network messages). smtp_preauth_deadline passed before AUTH/MAIL
 * succeeded. */
#define SMTP_R_SERVER_BUSY 421, "4.3.2", "Error: too many connections"
#define SMTP_R_PREAUTH_DEADLINE \
	421, "4.4.2", "Error: login or transaction not started in time"

/* EHLO keywords ringmail offers (issue 4): no SMTPUTF8, DSN, CHUNKING
 * or BINARYMIME, so smtp_addr refuses their parameters. AUTH only after
 * TLS on submission, STARTTLS only before it. */
#define SMTP_EHLO_PIPELINING "PIPELINING"
#define SMTP_EHLO_SIZE       "SIZE %llu" /* max_message_size */
#define SMTP_EHLO_8BITMIME   "8BITMIME"
#define SMTP_EHLO_ENHANCED   "ENHANCEDSTATUSCODES"
#define SMTP_EHLO_STARTTLS   "STARTTLS"
#define SMTP_EHLO_AUTH       "AUTH PLAIN"
#define SMTP_EHLO_VRFY       "VRFY"

/* VRFY answers the same for every address so that account existence
 * does not leak (spec C.7; chatmail's test_no_vrfy checks "252 2.0.0 "). */
#define SMTP_R_VRFY                                                      \
	252, "2.0.0",                                                    \
		"Cannot VRFY user, but will accept message and attempt " \
		"delivery"

/* Command-line errors (smtp_parse_error_reply). */
#define SMTP_R_CMD_UNKNOWN     500, "5.5.2", "Error: command not recognized"
#define SMTP_R_CMD_TOO_LONG    500, "5.5.2", "Error: command too long"
#define SMTP_R_CMD_BAD_SYNTAX  500, "5.5.2", "Error: bad syntax"
#define SMTP_R_CMD_BARE_LF     550, "5.5.2", "Error: bare <LF> received"
#define SMTP_R_NOT_IMPLEMENTED 502, "5.5.1", "Error: command not implemented"
#define SMTP_R_PIPELINE_SYNC \
	554, "5.5.0", "Error: SMTP protocol synchronization"

/* Sequence errors. */
#define SMTP_R_NEED_HELO     503, "5.5.1", "Error: send HELO/EHLO first"
#define SMTP_R_NESTED_MAIL   503, "5.5.1", "Error: nested MAIL command"
#define SMTP_R_NEED_MAIL     503, "5.5.1", "Error: need MAIL command"
#define SMTP_R_NEED_RCPT     503, "5.5.1", "Error: need RCPT command"
#define SMTP_R_NO_VALID_RCPT 554, "5.5.1", "Error: no valid recipients"
#define SMTP_R_MAIL_IN_TRANS 503, "5.5.1", "Error: MAIL transaction in progress"
#define SMTP_R_TLS_ACTIVE    554, "5.5.1", "Error: TLS already active"
#define SMTP_R_TLS_UNAVAIL \
	454, "4.7.0", "TLS not available due to local problem"

/* Argument syntax. */
#define SMTP_R_SYNTAX_HELO     501, NULL, "Syntax: HELO hostname"
#define SMTP_R_SYNTAX_EHLO     501, NULL, "Syntax: EHLO hostname"
#define SMTP_R_SYNTAX_MAIL     501, "5.5.4", "Syntax: MAIL FROM:<address>"
#define SMTP_R_SYNTAX_RCPT     501, "5.5.4", "Syntax: RCPT TO:<address>"
#define SMTP_R_SYNTAX_VRFY     501, "5.5.4", "Syntax: VRFY address"
#define SMTP_R_SYNTAX_NOARG    501, "5.5.4", "Syntax: %s" /* verb */
#define SMTP_R_SYNTAX_AUTH     501, "5.5.4", "Syntax: AUTH mechanism"
#define SMTP_R_BAD_SENDER      501, "5.1.7", "Bad sender address syntax"
#define SMTP_R_BAD_RCPT        501, "5.1.3", "Bad recipient address syntax"
#define SMTP_R_BAD_SIZE        501, "5.5.4", "Bad message size syntax"
#define SMTP_R_BAD_BODY        501, "5.5.4", "Bad BODY parameter syntax"
#define SMTP_R_BAD_PARAM       501, "5.5.4", "Bad parameter syntax: %.*s"
#define SMTP_R_DUP_PARAM       501, "5.5.4", "Error: duplicate parameter: %.*s"
#define SMTP_R_UNSUPPORTED_OPT 555, "5.5.4", "Unsupported option: %.*s"
#define SMTP_R_NEED_SMTPUTF8 \
	553, "5.6.7", "Must declare SMTPUTF8 to send unicode address"
/* HELO/EHLO name checks (Postfix reject_invalid_helo_hostname and
 * reject_non_fqdn_helo_hostname, spec F.1 mua_helo_restrictions). */
#define SMTP_R_HELO_INVALID \
	501, "5.5.2", "<%s>: Helo command rejected: Invalid name"
#define SMTP_R_HELO_NON_FQDN \
	504, "5.5.2",        \
		"<%s>: Helo command rejected: need fully-qualified hostname"

/* Policy (spec F.2, F.3, D.5, D.6, N.1). */
#define SMTP_R_STARTTLS_FIRST \
	530, "5.7.0", "Must issue a STARTTLS command first"
#define SMTP_R_AUTH_FIRST 530, "5.7.0", "Authentication required"
/* recipient address */
#define SMTP_R_RELAY_DENIED 554, "5.7.1", "<%s>: Relay access denied"
/* MAIL FROM, login; sent in reply to RCPT (spec D.1, N.1.3) */
#define SMTP_R_NOT_OWNER \
	553, "5.7.1", "<%s>: Sender address rejected: not owned by user %s"
/* filtermail: MAIL FROM, governor detail ("rate-limited until ..."); sent
 * in reply to RCPT. filtermail writes the status into the text. */
#define SMTP_R_RATE_LIMIT    450, NULL, "4.7.1: Too much mail from <%s>, %s"
#define SMTP_R_TOO_MANY_RCPT 452, "4.5.3", "Error: too many recipients"
/* submission: MAIL FROM without exactly one '@' (filtermail) */
#define SMTP_R_INVALID_FROM_ADDR 500, NULL, "Invalid from address <%s>"
/* From-header address, MAIL FROM (filtermail outbound.rs) */
#define SMTP_R_INVALID_FROM     500, NULL, "Invalid FROM <%s> for <%s>"
#define SMTP_R_INVALID_FROM_HDR 500, NULL, "Invalid FROM header: %s"
#define SMTP_R_PARSE_FAILED     500, NULL, "Failed to parse message: %s"
#define SMTP_R_ENCRYPTION_NEEDED \
	523, NULL, "Encryption Needed: Invalid Unencrypted Mail"
#define SMTP_R_NO_DKIM  554, "5.7.1", "No DKIM signature found"
#define SMTP_R_BAD_DKIM 554, "5.7.1", "No valid DKIM signature found"
/* ringmail: a key of an aligned signature could not be fetched (DNS
 * timeout or failure); filtermail answers a DNS error with a 4xx too. */
#define SMTP_R_DKIM_TEMPFAIL \
	451, "4.7.1", "DKIM key lookup failed, try again later"
#define SMTP_R_REMOTE_UNAVAIL \
	451, "4.4.0", "Remote delivery not available yet, try again later"
#define SMTP_R_LOCAL_TEMPFAIL \
	451, "4.3.0", "Local delivery failed, try again later"

/* Size (spec D.12): SIZE= at MAIL and DATA over max_message_size. */
#define SMTP_R_TOO_BIG 552, "5.3.4", "Message size exceeds fixed limit"
/* A message spooled to a file (over 256 KiB) whose header section does
 * not end within its first 256 KiB: ringmail's own limit (the header
 * rewrite works on a header section in memory). */
#define SMTP_R_HDR_TOO_BIG 552, "5.3.4", "Message header size exceeds limit"
/* filtermail's text, kept for the /mxdeliv HTTP body (spec D.8). */
#define SMTP_R_TOO_BIG_MXDELIV 552, NULL, "Message exceeds maximum size"
/* DATA content (smtp_data_error_reply). */
#define SMTP_R_DATA_BARE_LF 550, "5.5.2", "Error: bare <LF> received"
#define SMTP_R_DATA_LOCAL   451, "4.3.0", "Error: queue file write error"

/* AUTH (smtp_auth_error_reply); Postfix + Dovecot SASL texts. */
#define SMTP_R_AUTH_TLS_FIRST \
	504, "5.5.4",         \
		"Encryption required for requested authentication mechanism"
#define SMTP_R_AUTH_NOT_ENABLED \
	503, "5.5.1", "Error: authentication not enabled"
#define SMTP_R_AUTH_ALREADY  503, "5.5.1", "Error: already authenticated"
#define SMTP_R_AUTH_MECH     504, "5.5.4", "Unrecognized authentication type"
#define SMTP_R_AUTH_ABORTED  501, "5.7.0", "Authentication aborted"
#define SMTP_R_AUTH_BASE64   501, "5.5.2", "Cannot decode response"
#define SMTP_R_AUTH_TOO_LONG 500, "5.5.6", "SASL response limit exceeded"
#define SMTP_R_AUTH_FAILED \
	535, "5.7.8", "Error: authentication failed: authentication failure"
#define SMTP_R_AUTH_TEMPFAIL \
	454, "4.7.0", "Temporary authentication failure: %s"

#ifdef __cplusplus
}
#endif

#endif
