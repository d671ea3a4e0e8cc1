/* imap-proxy/imap-int: layouts shared by imap_server.c and
 * imap_session.c. */
#ifndef RINGMAIL_IMAP_INT_H
#define RINGMAIL_IMAP_INT_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/accounts/accounts.h"
#include "core/connlimit.h"
#include "core/loop.h"
#include "imap-proxy/imap_idle.h"
#include "imap-proxy/imap_parse.h"
#include "imap-proxy/imap_server.h"

#define IMAP_WORKERS_MAX     256
#define IMAP_USER_BUCKETS    4096
#define IMAP_INBOX_MAX       256 /* queued delivery events per worker */
#define IMAP_SECRET_MAX      128
#define IMAP_SCRATCH_MAX     (20 * 1024)
#define IMAP_APPVERSIONS_MAX (16 * 1024)

struct imap_sess;

struct imap_server {
	struct imap_server_opts o;
	char *mail_domain, *mail_domain_bare, *iroh_relay, *turn_secret;
	char *appversions, *privacy_mail;
	char secret[IMAP_SECRET_MAX];
	struct sockaddr_in dovecot_addr;
	atomic_uint conns;
	struct connlimit *per_ip;
	struct accounts_throttle *own_throttle; /* when o.throttle was NULL */
	struct events *events; /* presence of logged-in users */
	/* workers[], by loop_worker_id(): write-locked to add or remove a
	 * worker, read-locked by delivery events on any thread. */
	pthread_rwlock_t workers_lock;
	struct imap_worker *workers[IMAP_WORKERS_MAX];
};

struct imap_worker {
	struct imap_server *srv;
	struct loop *loop;
	unsigned id;                                /* loop_worker_id(loop) */
	struct imap_sess *users[IMAP_USER_BUCKETS]; /* logged in, by addr */
	/* Delivery events from other threads (imap_server_delivered). */
	pthread_mutex_t inbox_mtx;
	bool inbox_posted;
	bool inbox_overflow;
	unsigned inbox_n;
	char inbox[IMAP_INBOX_MAX][ACCOUNTS_ADDR_MAX + 1];
	/* One command being answered locally at a time (loop thread). */
	uint8_t scratch[IMAP_SCRATCH_MAX];
};

/* imap_session.c */
void imap_sess_start(struct imap_worker *w, int fd, struct conn *c,
		     const struct sockaddr *peer, socklen_t peer_len,
		     struct tls_ctx *tls, bool implicit_tls);
/* A delivery for @addr: wake its idling sessions on this worker. */
void imap_worker_wake_user(struct imap_worker *w, const char *addr);
void imap_worker_wake_all(struct imap_worker *w);
unsigned imap_user_bucket(const char *addr);

#endif
