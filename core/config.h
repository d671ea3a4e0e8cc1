/* core/config: chatmail.ini ([params], read as chatmail/relay reads it)
 * plus ringmail's own [ringmail] section, from one declarative table in
 * config.c (spec section B). */
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
	CONFIG_TLS_ACME = 0, /* /var/lib/acme/live/<d>/{fullchain,privkey} */
	CONFIG_TLS_SELF,     /* IPv4 or "_" domain: /etc/ssl/.../mailserver.* */
	CONFIG_TLS_EXTERNAL, /* tls_external_cert_and_key = CERT KEY */
};

struct config {
	/* [params]: chatmail/relay keys (spec section B) */
	char *mail_domain;      /* "[a.b.c.d]" for IP relays */
	char *mail_domain_bare; /* the value as written */
	bool is_ip_relay;
	int max_user_send_per_minute;
	int max_user_send_burst_size;
	int64_t max_mailbox_size_mb;     /* max_mailbox_size, parse_size_mb */
	int64_t max_message_size;        /* bytes */
	int delete_mails_after;          /* days */
	int delete_large_after;          /* days */
	int delete_inactive_users_after; /* days */
	int username_min_length;
	int username_max_length;
	int password_min_length;
	char *www_folder;
	int filtermail_smtp_port; /* legacy ports: accepted, stored, unused */
	int filtermail_smtp_port_incoming;
	int filtermail_http_port_incoming;
	int filtermail_lmtp_port_transport;
	int postfix_reinject_port;
	int postfix_reinject_port_incoming;
	char *mtail_address; /* NULL = unset */
	bool disable_ipv6;
	char *acme_email;
	bool imap_rawlog;
	bool imap_compress;
	char *turn_socket_path;
	/* Unset: "https://" + mail_domain_bare, local iroh relay on; set
	 * (even empty): stripped value, local relay off, "" = not served. */
	char *iroh_relay;
	bool iroh_relay_set;
	char *privacy_postal, *privacy_mail, *privacy_pdo, *privacy_supervisor;
	double max_load_1m;
	int64_t min_available_memory_mb; /* min_available_memory */
	int64_t min_free_disk_space_mb;  /* min_free_disk_space */
	int max_imap_connections;
	int max_smtp_connections;
	char *tls_external_cert_and_key;
	char *mailboxes_dir; /* default /home/vmail/mail/<mail_domain_bare> */
	char *passdb_path;
	/* derived */
	enum config_tls_mode tls_cert_mode;

	/* [ringmail] */
	/* Listen lists: "host:port [v6]:port ...", normalised to single
	 * spaces; "" disables the service. */
	char *smtp_listen, *submission_listen, *submissions_listen;
	char *imap_listen, *imaps_listen, *https_listen, *http_listen;
	char *data_dir;
	char *tls_cert, *tls_key; /* default: from tls_cert_mode */
	char *dovecot_base_dir, *dovecot_lmtp_socket, *dovecot_imap_socket;
	/* serve writes the Dovecot config, starts Dovecot and stops it at
	 * exit; false: an external Dovecot owns dovecot_lmtp_socket. */
	bool dovecot_managed;
	char *dovecot_log; /* Dovecot's log file; "" = syslog */
	/* Owner of the maildirs; "" = the current user without root, else
	 * "vmail". */
	char *dovecot_mail_user;
	int dovecot_imap_port; /* Dovecot's IMAP on 127.0.0.1 */
	enum loop_backend io_backend;
	bool uring_debian12; /* uring_profile = debian12 */
	enum tls_ktls_mode tls_ktls;
	int workers; /* 0 = one per CPU */
	int pool_threads;
	enum log_level log_level;
	char *nocreate_file;
	uint64_t smtp_timeout_ms;
	uint64_t imap_preauth_timeout_ms;
	/* From accept to AUTH/MAIL (SMTP) or login (IMAP), absolute. */
	uint64_t smtp_preauth_deadline_ms, imap_preauth_deadline_ms;
	/* Concurrent connections of one IPv4 address or IPv6 /64; 0 = no
	 * cap (max_smtp_connections, max_imap_connections still hold). */
	int smtp_max_connections_per_ip, imap_max_connections_per_ip;
	uint64_t drain_timeout_ms;
	uint64_t imap_hibernate_timeout_ms;
	char *dkim_selector, *dkim_key_file;
	char *dns_server; /* "" = /etc/resolv.conf */
	/* PEM CA certificates trusted by outbound TLS (HTTP client, SMTP
	 * to peers) besides the system store; "" = the system store only. */
	char *tls_trust_file;
	char *push_url;
	char *turn_secret_file;
	char *appversions_file;
	char *acme_webroot; /* port 80: /.well-known/acme-challenge/ files */
	uint64_t http_header_timeout_ms;
	uint64_t http_body_timeout_ms;
	uint64_t http_keepalive_timeout_ms;
	int http_new_per_minute; /* /new per client address (nginx 2 r/s) */
	int http_new_burst;

	/* Keys found in [params]/[ringmail] that nothing reads, in file
	 * order, space-separated; NULL when there are none. */
	char *unknown_keys;
};

struct config_error {
	char msg[512]; /* "file:line: key: reason" */
};

/* What `ringmail init` asks for: a loopback test relay. */
struct config_local {
	const char *mail_domain; /* required */
	const char *addr;        /* listen address; NULL = 127.0.0.1 */
	int port_offset;         /* added to every standard port */
	const char *run_dir;     /* holds mail/, data/, tls.crt, tls.key */
};

/* Fill @cfg with every default (mail_domain unset). */
void config_init_defaults(struct config *cfg);
/* Read @path over the defaults and derive the dependent values. 0, or -1
 * with @err_r->msg set ("file:line: key: reason", "file: strerror").
 * Unknown keys go to cfg->unknown_keys and are logged as chatmail warns. */
int config_load(struct config *cfg, const char *path,
		struct config_error *err_r);
/* Parse from memory (@name is used in messages). Same contract. */
int config_load_buffer(struct config *cfg, const char *name, const char *text,
		       size_t len, struct config_error *err_r);
/* Free every string; @cfg may then be initialised again. */
void config_free(struct config *cfg);
/* Print the effective configuration, every key of both sections, as an
 * ini file that loads back to the same configuration. */
void config_print(const struct config *cfg, FILE *f);
/* Write a minimal chatmail.ini for a local test relay. 0, -EINVAL for a
 * missing domain/run_dir, a newline in a value or a port beyond 65535,
 * -EIO when writing fails. */
int config_write_default(FILE *f, const struct config_local *l);
/* chatmail's parse_size_mb: "500M" -> 500, "1G" -> 1024, "100" -> 100,
 * trailing "B" ignored, case-insensitive; -1 when invalid ("K" too). */
int64_t config_parse_size_mb(const char *s);

#endif
