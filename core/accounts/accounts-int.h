/* core/accounts/accounts-int: private layouts shared by the files of
 * core/accounts/ and the accounts unit tests. Nothing else may include
 * this header. */
#ifndef RINGMAIL_CORE_ACCOUNTS_INT_H
#define RINGMAIL_CORE_ACCOUNTS_INT_H

#include "core/accounts/accounts.h"

/* project */
#include "core/kv.h"

#define ACCOUNTS_RECORD_VERSION 1u
#define ACCOUNTS_TOKENS_VERSION 1u

struct accounts {
	struct kv_env *kv;
	struct kv_table *t_accounts;   /* address -> record */
	struct kv_table *t_tokens;     /* address -> token list */
	struct accounts_policy policy; /* strings point to the copies below */
	char *mail_domain, *mailboxes_dir, *nocreate_file;
	char *path;
};

/* A usable key: @addr non-empty and at most ACCOUNTS_ADDR_MAX octets;
 * *len_r = strlen(@addr) (0 for NULL). */
bool accounts_key(const char *addr, size_t *len_r);
/* In a kv transaction: 0, -ENOENT, or -errno (-EPROTO for a record
 * this version cannot read). */
int accounts_record_get_txn(struct accounts *a, struct kv_txn *txn,
			    const char *addr, struct accounts_record *r);
int accounts_record_put_txn(struct accounts *a, struct kv_txn *txn,
			    const char *addr, const struct accounts_record *r);
/* ---- accounts_tokens.c */
/* Merge one token (accounts_tokens_add semantics); *changed_r set. 0 or
 * -errno. */
int accounts_tokens_add_txn(struct accounts *a, struct kv_txn *txn,
			    const char *addr, const char *token, size_t len,
			    int64_t set_at, int64_t now, bool *changed_r);

/* ---- accounts_rules.c */
/* Dovecot's side of a login name: auth_username_chars, then %Lu. 0 or
 * -1 (not a possible login name). */
int accounts_addr_normalize(const char *in, char *out, size_t outsz);
/* chatmail's lookup filter: ends with "@"+mail_domain (case-sensitive),
 * no '/'. true when the address may exist here. */
bool accounts_addr_is_local(const struct accounts_policy *p, const char *addr);
/* C.2 rules 1-6 in order. 0 = may create; -1 = refused (@info_r->code and
 * ->reason set, logged as chatmail does). */
int accounts_rules_check(const struct accounts_policy *p, const char *addr,
			 const char *password, size_t pwlen,
			 struct accounts_auth_info *info_r);
/* Unicode code points in UTF-8 @s (Python's len() of the decoded str). */
size_t accounts_utf8_len(const char *s, size_t len);

/* ---- accounts_hash.c */
#define ACCOUNTS_HASH_PREFIX "{SHA512-CRYPT}$6$"
/* "{SHA512-CRYPT}$6$<16 salt chars>$<86 chars>" from a fresh salt, the
 * default 5000 rounds (no "rounds=" field). @pw NUL-terminated. 0 or
 * -errno. */
int accounts_hash_make(const char *pw, char out[ACCOUNTS_HASH_MAX]);
/* 1 match, 0 mismatch, -EINVAL for a hash we do not handle, -errno.
 * Compares in constant time. */
int accounts_hash_verify(const char *pw, const char *stored);
/* The stored form is one we verify ({SHA512-CRYPT}$6$, printable). */
bool accounts_hash_supported(const char *stored);

#endif
