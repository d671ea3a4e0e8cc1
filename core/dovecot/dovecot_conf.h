/* core/dovecot/dovecot_conf: the Dovecot configuration ringmail generates
 * for its private stock Dovecot (spec G): LMTP on a unix socket, IMAP on
 * loopback behind a master-user secret, static userdb, maildir, quota,
 * hibernation. Start-up code only: it may block (getpwnam, file writes). */
#ifndef RINGMAIL_CORE_DOVECOT_CONF_H
#define RINGMAIL_CORE_DOVECOT_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/dovecot/dovecot_login.h"

#define DOVECOT_IMAP_PORT_DEFAULT 10143

struct dovecot_settings {
	/* Dovecot's base_dir: sockets, master.pid, log dirs. Created 0755
	 * by dovecot_conf_write when missing. Required. */
	const char *base_dir;
	const char *state_dir;     /* NULL: <base_dir>/state */
	const char *log_path;      /* NULL: syslog; or a file */
	const char *mailboxes_dir; /* maildirs at <dir>/<addr>/; required */
	const char
		*master_users_file; /* NULL: <base_dir>/ringmail-master-users */
	const char *instance_name;  /* NULL: "ringmail" */
	/* Dovecot runs without root: every service as the current user, no
	 * chroot. Default: true unless the process is root. */
	bool unprivileged;
	/* Owner of the maildirs (static userdb uid/gid). NULL: the current
	 * user when unprivileged, else "vmail". Never root. */
	const char *mail_user;
	/* Owner of the LMTP socket: ringmail's own user. NULL: current. */
	const char *socket_user;
	/* Root mode only: Dovecot's own unprivileged users.
	 * NULL: "dovecot" and "dovenull" (Debian's). */
	const char *internal_user;
	const char *login_user;
	unsigned imap_port; /* 127.0.0.1:<port>; 0: DOVECOT_IMAP_PORT_DEFAULT */
	int64_t max_mailbox_size_mb;        /* quota; 0: 500 */
	int64_t max_message_size;           /* bytes; 0: 31457280 */
	uint64_t imap_hibernate_timeout_ms; /* 0: hibernation off */
	unsigned max_imap_connections;      /* 0: 10000 */
	bool compress;                      /* zlib_save = gz, like chatmail */
};

/* Defaults: hibernation after 30 s, limits as chatmail, privilege mode
 * from the current uid; base_dir and mailboxes_dir left NULL. */
void dovecot_settings_init(struct dovecot_settings *s);
/* Render the configuration to @f. 0, or -EINVAL/-ENOENT with a reason in
 * @err (unsafe path, unknown user, root as mail user). */
int dovecot_conf_render(const struct dovecot_settings *s, FILE *f, char *err,
			size_t err_len);
/* Render to @path atomically (temporary file + rename, mode 0644);
 * creates base_dir. 0 or -errno; the reason is logged. */
int dovecot_conf_write(const struct dovecot_settings *s, const char *path);
/* <base_dir>/lmtp (the LMTP socket) into @buf; 0 or -ENAMETOOLONG. */
int dovecot_lmtp_socket_path(const struct dovecot_settings *s, char *buf,
			     size_t size);
/* A fresh master secret: DOVECOT_SECRET_LEN hex characters and a NUL. */
int dovecot_secret_new(char secret_r[DOVECOT_SECRET_LEN + 1]);
/* Write the master passdb file with the SHA-256 of @secret (never the
 * secret itself), readable by Dovecot's auth process. Dovecot re-reads it
 * when it changes, so a new secret needs no reload. 0 or -errno. */
int dovecot_master_users_write(const struct dovecot_settings *s,
			       const char *secret);

#endif
