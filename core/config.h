/* core/config: chatmail.ini ([params], as chatmail/relay reads it) plus
 * ringmail's own [ringmail] section, from one declarative table. */
#ifndef RINGMAIL_CORE_CONFIG_H
#define RINGMAIL_CORE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/tls.h"

#define CONFIG_DEFAULT_PATH "/usr/local/lib/chatmaild/chatmail.ini"

enum config_tls_mode {
	CONFIG_TLS_ACME = 0,
	CONFIG_TLS_SELF,
	CONFIG_TLS_EXTERNAL,
};

struct config {
	/* [params]: chatmail/relay keys (spec section B) */
	char *mail_domain;      /* "[a.b.c.d]" for IP relays */
	char *mail_domain_bare; /* the value as written */
	bool is_ip_relay;
	int max_user_send_per_minute;
	int max_user_send_burst_size;
	int64_t max_mailbox_size_mb;
	int64_t max_message_size;
	int delete_mails_after;
	int delete_large_after;
	int delete_inactive_users_after;
	int username_min_length;
	int username_max_length;
	int password_min_length;
	char *www_folder;
	int filtermail_smtp_port;
	int filtermail_smtp_port_incoming;
	int filtermail_http_port_incoming;
	int filtermail_lmtp_port_transport;
	int postfix_reinject_port;
	int postfix_reinject_port_incoming;
	char *mtail_address;
	bool disable_ipv6;
	char *acme_email;
	bool imap_rawlog;
	bool imap_compress;
	char *turn_socket_path;
	char *iroh_relay; /* NULL = unset (default derived) */
	bool iroh_relay_set;
	char *privacy_postal, *privacy_mail, *privacy_pdo, *privacy_supervisor;
	double max_load_1m;
	int64_t min_available_memory_mb;
	int64_t min_free_disk_space_mb;
	int max_imap_connections;
	int max_smtp_connections;
	char *tls_external_cert_and_key;
	char *mailboxes_dir;
	char *passdb_path;
	/* derived */
	enum config_tls_mode tls_cert_mode;

	/* [ringmail] */
	char *smtp_listen, *submission_listen, *submissions_listen;
	char *imap_listen, *imaps_listen, *https_listen, *http_listen;
	char *data_dir;
	char *tls_cert, *tls_key;
	char *dovecot_base_dir, *dovecot_lmtp_socket, *dovecot_imap_socket;
	enum loop_backend io_backend;
	bool uring_debian12;
	enum tls_ktls_mode tls_ktls;
	int workers;
	int pool_threads;
	enum log_level log_level;
	char *nocreate_file;
	uint64_t smtp_timeout_ms;
	uint64_t imap_preauth_timeout_ms;
	uint64_t drain_timeout_ms;
	uint64_t imap_hibernate_timeout_ms;
	char *dkim_selector, *dkim_key_file;
	char *dns_server;
	char *push_url;
	char *turn_secret_file;
	char *appversions_file;

	/* Keys found in the file that nothing reads, space-separated. */
	char *unknown_keys;
};

struct config_error {
	char msg[512]; /* "file:line: key: reason" */
};

/* Fill @cfg with every default (mail_domain unset). */
void config_init_defaults(struct config *cfg);
/* Read @path over the defaults and derive the dependent values. 0, or -1
 * with @err_r->msg set ("file:line: key: reason"). Unknown keys are
 * collected in cfg->unknown_keys and logged as chatmail warns. */
int config_load(struct config *cfg, const char *path,
		struct config_error *err_r);
/* Parse from memory (@name is used in messages). Same contract. */
int config_load_buffer(struct config *cfg, const char *name, const char *text,
		       size_t len, struct config_error *err_r);
/* Free every string. */
void config_free(struct config *cfg);
/* Print the effective configuration as an ini file with both sections. */
void config_print(const struct config *cfg, FILE *f);
/* chatmail's parse_size_mb: "500M" -> 500, "1G" -> 1024, "100" -> 100,
 * trailing "B" ignored, case-insensitive; -1 when invalid ("K" too). */
int64_t config_parse_size_mb(const char *s);

#endif
