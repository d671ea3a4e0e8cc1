/* core/dovecot/dovecot_login: the master-login contract between ringmail
 * and its private Dovecot, defined once. dovecot_conf writes the Dovecot
 * side (auth_master_user_separator, the master passdb); the IMAP proxy
 * logs in with "<addr>" DOVECOT_MASTER_SEP DOVECOT_MASTER_USER and the
 * secret. Constants only. */
#ifndef RINGMAIL_CORE_DOVECOT_LOGIN_H
#define RINGMAIL_CORE_DOVECOT_LOGIN_H

/* The master user ringmail authenticates as ("<addr>*ringmail", or
 * SASL PLAIN with authzid <addr> and authcid "ringmail"). */
#define DOVECOT_MASTER_USER "ringmail"
/* Between the user and the master user in a LOGIN name; Dovecot's
 * auth_master_user_separator. */
#define DOVECOT_MASTER_SEP "*"
/* Hex characters in a master secret (256 random bits). */
#define DOVECOT_SECRET_LEN 64

#endif
