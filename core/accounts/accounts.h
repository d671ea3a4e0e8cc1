/* core/accounts: the account store (on core/kv, LMDB) with chatmail's
 * create-on-login, chatmail-compatible SHA512-CRYPT hashes, admission
 * limits, device tokens, brute-force throttling and the chatmail/relay
 * import.
 *
 * Threads. Every function below is thread-safe; all but the throttle
 * ones are BLOCKING: writes are LMDB write transactions fsync'd before they
 * return, and authentication runs SHA512-crypt (a few ms). Call them on
 * a core/pool thread, never on a loop thread; loop threads use
 * accounts_authenticate_async(). Read-only lookups (accounts_lookup,
 * accounts_exists, accounts_tokens_get) take one short LMDB read
 * transaction and may run on a loop thread. Writes are serialized by
 * core/kv's mutex (LMDB allows one writer); other processes (the
 * `ringmail user` command while `serve` runs) by LMDB's own lock. */
#ifndef RINGMAIL_CORE_ACCOUNTS_H
#define RINGMAIL_CORE_ACCOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct accounts;
struct loop;
struct pool;

#define ACCOUNTS_ADDR_MAX 254u /* bytes of an address */
/* bytes of a cleartext password: libxcrypt hashes at most 511 */
#define ACCOUNTS_PASSWORD_MAX 511u
#define ACCOUNTS_HASH_MAX     256u  /* "{SHA512-CRYPT}$6$..." incl. NUL */
#define ACCOUNTS_TOKEN_MAX    4096u /* bytes of one device token */
#define ACCOUNTS_TOKENS_MAX   64u   /* tokens kept per address (oldest go) */
/* chatmail: a token is valid while last set within 90 days (and at most
 * 60 s in the future). */
#define ACCOUNTS_TOKEN_VALIDITY_S (90 * 86400)

/* Readings for the admission checks (C.2 rule 6). A negative value means
 * "could not be read": that limit is then ignored with a warning. */
struct accounts_sysinfo {
	double load1;         /* 1-minute load average */
	int64_t mem_avail_mb; /* MemAvailable, MiB */
	int64_t disk_free_mb; /* free space for unprivileged users, MiB */
};
typedef void accounts_sysinfo_fn(void *ctx, const char *mailboxes_dir,
				 struct accounts_sysinfo *r);
/* The real readings: /proc/loadavg, /proc/meminfo, statvfs(@dir). */
void accounts_sysinfo_read(void *ctx, const char *mailboxes_dir,
			   struct accounts_sysinfo *r);

/* What chatmail.ini says about accounts (spec B/C). accounts_open copies
 * the strings. */
struct accounts_policy {
	const char *mail_domain; /* "example.org" or "[1.2.3.4]"; NULL =
				    no login or creation at all (admin use) */
	unsigned password_min_length;
	unsigned username_min_length;
	unsigned username_max_length;
	double max_load_1m;
	int64_t min_available_memory_mb;
	int64_t min_free_disk_mb;
	const char *mailboxes_dir;    /* statvfs target for the disk check */
	const char *nocreate_file;    /* "/etc/chatmail-nocreate" */
	accounts_sysinfo_fn *sysinfo; /* NULL = accounts_sysinfo_read */
	void *sysinfo_ctx;
	size_t initial_map_size; /* LMDB map bytes at open; 0 = 64 MiB. It
				    doubles whenever full. */
};
/* chatmail's defaults (9, 9, 9, 5.0, 200M, 1G, /etc/chatmail-nocreate);
 * mail_domain and mailboxes_dir stay NULL. */
void accounts_policy_defaults(struct accounts_policy *p);

/* Record flags. ENFORCE_E2EE is chatmail's enforceE2EEincoming file (on
 * for every new account). ALLOW_CLEARTEXT records that an operator turned
 * enforcement off; the two are exclusive. */
#define ACCOUNTS_F_ENFORCE_E2EE    0x1u
#define ACCOUNTS_F_ALLOW_CLEARTEXT 0x2u

struct accounts_record {
	uint8_t version;              /* stored format version */
	uint32_t flags;               /* ACCOUNTS_F_* */
	int64_t created;              /* unix seconds; 0 = unknown (imported) */
	int64_t last_login;           /* unix seconds (C.8: day-truncated after
					the first IMAP login); 0 = never */
	char hash[ACCOUNTS_HASH_MAX]; /* "{SHA512-CRYPT}$6$<salt>$<hash>" */
};

/* Open (creating) the store <data_dir>/accounts.mdb; data_dir is made
 * 0700 if missing. Clears stale reader slots. Open it once per process
 * (LMDB's rule); other processes may open it too. 0 or -errno. */
int accounts_open(const char *data_dir, const struct accounts_policy *policy,
		  struct accounts **a_r);
/* No call may be in flight. Sets *a to NULL. */
void accounts_close(struct accounts **a);

enum accounts_result {
	ACCOUNTS_OK = 0,         /* existing account, password verified */
	ACCOUNTS_CREATED,        /* new account created with this password */
	ACCOUNTS_WRONG_PASSWORD, /* existing account, password differs */
	ACCOUNTS_REFUSED,        /* no account and creation refused */
	ACCOUNTS_TEMPFAIL,       /* store unavailable: try again later */
};

/* Why creation was refused (C.2 order), or what failed. */
enum accounts_reason {
	ACCOUNTS_R_NONE = 0,
	ACCOUNTS_R_INVALID_ADDR,    /* bad characters, '/', too long */
	ACCOUNTS_R_DOMAIN,          /* not "<local>@<mail_domain>" */
	ACCOUNTS_R_INVALID_PASS,    /* NUL byte or longer than the max */
	ACCOUNTS_R_NOCREATE,        /* 1: the nocreate file exists */
	ACCOUNTS_R_PASSWORD_SHORT,  /* 2 */
	ACCOUNTS_R_ADDR_FORMAT,     /* 3: not exactly one '@' */
	ACCOUNTS_R_LOCALPART_LEN,   /* 4 */
	ACCOUNTS_R_LOCALPART_CHARS, /* 5: not ^[a-z0-9._-]+$ */
	ACCOUNTS_R_LOAD,            /* 6: admission limits */
	ACCOUNTS_R_MEMORY,
	ACCOUNTS_R_DISK,
	ACCOUNTS_R_STORE, /* TEMPFAIL: the store failed */
};

struct accounts_auth_info {
	/* The login name as Dovecot would pass it on (auth_username_format
	 * %Lu: ASCII lower-cased): use it as the authenticated user. */
	char addr[ACCOUNTS_ADDR_MAX + 1];
	enum accounts_reason code;
	char reason[96]; /* e.g. "load avg 7.10 > 5.00"; "" when OK */
	uint32_t flags;  /* the record's ACCOUNTS_F_* when OK/CREATED */
};

/* chatmail's create-on-login (spec C.4): verify an existing account, or
 * check the C.2 rules and create it. Concurrent first logins of one
 * address store one hash; the others verify against it. A wrong password
 * never changes the record. Blocking. */
enum accounts_result accounts_authenticate(struct accounts *a, const char *addr,
					   const char *password, size_t pwlen,
					   struct accounts_auth_info *info_r);

typedef void accounts_auth_done_fn(enum accounts_result res,
				   const struct accounts_auth_info *info,
				   void *arg);
/* accounts_authenticate on a @pool thread; @done runs on @origin's thread
 * (the loop calling this). @addr and @password are copied (the password
 * is wiped after use). @arg must stay valid until @done runs: a session
 * that may be gone by then passes a (slot, generation) handle and drops
 * stale results itself. 0 or -errno (then @done is never called). */
int accounts_authenticate_async(struct accounts *a, struct pool *pool,
				struct loop *origin, const char *addr,
				const char *password, size_t pwlen,
				accounts_auth_done_fn *done, void *arg);

/* C.8: record an IMAP login at @now (unix s), truncated to the day.
 * Writes only when the stored day differs. 0, -ENOENT or -errno. */
int accounts_touch_last_login(struct accounts *a, const char *addr,
			      int64_t now);
/* The same on a @pool thread, fire and forget (errors are logged). The
 * store must stay open until the pool is drained. 0 or -errno. */
int accounts_touch_last_login_async(struct accounts *a, struct pool *pool,
				    const char *addr, int64_t now);

/* 0 (filled), -ENOENT or -errno. */
int accounts_lookup(struct accounts *a, const char *addr,
		    struct accounts_record *r);
/* 1 exists, 0 not, <0 -errno. */
int accounts_exists(struct accounts *a, const char *addr);
/* Set ACCOUNTS_F_ENFORCE_E2EE or ACCOUNTS_F_ALLOW_CLEARTEXT (clearing the
 * other). 0, -ENOENT, -EINVAL or -errno. */
int accounts_set_flag(struct accounts *a, const char *addr, uint32_t flag);
/* Remove the record and its device tokens (not the maildir). 0, -ENOENT
 * or -errno. */
int accounts_delete(struct accounts *a, const char *addr);

/* Called for each account in address order, outside any transaction (the
 * store is read in batches, so the callback may call any accounts_*
 * function). Return non-zero to stop. */
typedef int accounts_iter_fn(const char *addr, const struct accounts_record *r,
			     void *arg);
/* 0, the callback's non-zero value, or -errno. */
int accounts_iterate(struct accounts *a, accounts_iter_fn *fn, void *arg);
/* Number of accounts, or -errno. */
int64_t accounts_count(struct accounts *a);

/* ---- device tokens (spec H: they accumulate, each with its last SET) */
struct accounts_token {
	const char *token; /* NUL-terminated */
	size_t len;
	int64_t set_at; /* unix seconds */
};
struct accounts_tokens {
	size_t n;
	struct accounts_token t[]; /* strings follow in the same block */
};
/* Add @token or refresh its time (the later of the stored and @set_at);
 * prunes expired tokens; at ACCOUNTS_TOKENS_MAX the oldest goes. Returns
 * 1 changed, 0 unchanged (already there, or @set_at itself invalid at
 * @now), or -errno. */
int accounts_tokens_add(struct accounts *a, const char *addr, const char *token,
			size_t len, int64_t set_at, int64_t now);
/* The tokens valid at @now in insertion order, as one malloc'd block
 * (free()). An address without tokens gives n = 0. 0 or -errno. */
int accounts_tokens_get(struct accounts *a, const char *addr, int64_t now,
			struct accounts_tokens **r);
/* 0, -ENOENT (no such token) or -errno. */
int accounts_tokens_remove(struct accounts *a, const char *addr,
			   const char *token, size_t len);

/* ---- brute-force throttling (accounts_throttle.c)
 * Pure memory, one instance shared by all workers of SMTP and IMAP;
 * thread-safe (striped locks, no allocation after creation). Bounded:
 * fixed tables, least recently used entries are evicted. Policy:
 *  - per client (IPv4 address, IPv6 /64): each failure doubles a delay,
 *    0.5 s .. 15 s, forgotten 15 min after the last failure; a success
 *    resets the delay. 10 failures within one 60 s window refuse every
 *    login from that client until the window ends (TEMPFAIL).
 *  - an attempt counts as a failure from the moment it is reserved
 *    (before its delay and its hash check) until it is released, so N
 *    parallel attempts are throttled like N sequential ones.
 *  - per account: failures count too, but only delay clients that have
 *    failed themselves (delay = max(client, account)). A client with no
 *    recent failure is never delayed, so an attacker elsewhere cannot
 *    slow down or lock out the account's owner.
 * Sessions reserve, wait the delay (a loop timer), authenticate, and
 * release with the verdict: WRONG_PASSWORD and REFUSED are failures,
 * TEMPFAIL or a client gone before the check cancels the reservation. */
struct accounts_throttle;
#define ACCOUNTS_THROTTLE_REFUSE (-1)
/* One reserved attempt (filled by accounts_throttle_reserve). */
struct accounts_throttle_res {
	bool held;
	uint64_t at_ms, win_start_ms;
};
enum accounts_throttle_outcome {
	ACCOUNTS_THROTTLE_SUCCESS = 0,
	ACCOUNTS_THROTTLE_FAILURE,
	ACCOUNTS_THROTTLE_CANCEL, /* no verdict: tempfail, client gone */
};
/* @slots per table (rounded up to a power of 2; 0 = 4096). 0 or -errno. */
int accounts_throttle_new(unsigned slots, struct accounts_throttle **t_r);
void accounts_throttle_free(struct accounts_throttle **t);
/* Milliseconds to wait before authenticating (0 = go now), or
 * ACCOUNTS_THROTTLE_REFUSE; reserves nothing. @addr may be NULL. */
int64_t accounts_throttle_check(struct accounts_throttle *t,
				const struct sockaddr *ip, const char *addr,
				uint64_t now_ms);
/* As accounts_throttle_check, and unless REFUSE the attempt is counted
 * as a failure of @ip at once: @res must then be released exactly once. */
int64_t accounts_throttle_reserve(struct accounts_throttle *t,
				  const struct sockaddr *ip, const char *addr,
				  uint64_t now_ms,
				  struct accounts_throttle_res *res);
/* The verdict of a reserved attempt (@addr: the account tried, or NULL);
 * a @res not held is ignored, so releasing twice is harmless. */
void accounts_throttle_release(struct accounts_throttle *t,
			       const struct sockaddr *ip, const char *addr,
			       enum accounts_throttle_outcome outcome,
			       uint64_t now_ms,
			       struct accounts_throttle_res *res);
/* A verdict without a reservation (@ok: success). */
void accounts_throttle_record(struct accounts_throttle *t,
			      const struct sockaddr *ip, const char *addr,
			      bool ok, uint64_t now_ms);

/* ---- import of a chatmail/relay mailboxes directory (spec C.3, H.2) */
struct accounts_import_report {
	unsigned scanned;   /* directories with '@' in the name */
	unsigned imported;  /* new accounts */
	unsigned updated;   /* existing accounts that changed */
	unsigned unchanged; /* existing accounts already up to date */
	unsigned skipped;   /* see the skip callback */
	unsigned tokens;    /* device tokens added or refreshed */
};
struct accounts_import_opts {
	int64_t now; /* unix seconds for token validity; 0 = time(NULL) */
	/* A directory that was not imported, or a warning about one that
	 * was (@skipped false). */
	void (*note)(const char *name, bool skipped, const char *reason,
		     void *arg);
	void (*progress)(const struct accounts_import_report *r, void *arg);
	unsigned progress_every; /* accounts between progress calls */
	void *arg;
};
/* Import every <dir>/<addr>/ (password, its mtime as last login,
 * enforceE2EEincoming, metadata.json tokens). Idempotent: existing
 * hashes are never changed; tokens and last login are merged. 0 or
 * -errno (the report counts what was done until then). */
int accounts_import_chatmail(struct accounts *a, const char *mailboxes_dir,
			     const struct accounts_import_opts *opts,
			     struct accounts_import_report *r);

#endif
