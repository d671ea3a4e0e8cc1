/* core/accounts/accounts_tokens: the device tokens of an address (push's
 * data, spec H), in the "tokens" table of the accounts kv environment.
 *
 * A stored list is little-endian: version byte, u16 count, then per token
 * u64 last-set time, u16 length and the octets. */
#include "core/accounts/accounts.h"

/* system */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* project */
#include "core/accounts/accounts-int.h"
#include "core/kv.h"
#include "core/log.h"

#define ACCOUNTS_TOK_HDR (1u + 2u)
#define ACCOUNTS_TOK_ENT (8u + 2u)

struct accounts_tok {
	const uint8_t *p;
	uint16_t len;
	int64_t ts;
};

static bool accounts_token_valid(int64_t ts, int64_t now)
{
	return ts > now - ACCOUNTS_TOKEN_VALIDITY_S && ts < now + 60;
}

/* Parse a stored list into @t (pointers into @p). -EPROTO when
 * corrupt. */
static int accounts_tokens_decode(const uint8_t *p, size_t size,
				  struct accounts_tok *t, size_t *n_r)
{
	const uint8_t *end = p + size;
	size_t n;

	*n_r = 0;
	if (size < ACCOUNTS_TOK_HDR || p[0] != ACCOUNTS_TOKENS_VERSION)
		return -EPROTO;
	n = kv_get_u16(p + 1);
	if (n > ACCOUNTS_TOKENS_MAX)
		return -EPROTO;
	p += ACCOUNTS_TOK_HDR;
	for (size_t i = 0; i < n; i++) {
		if ((size_t)(end - p) < ACCOUNTS_TOK_ENT)
			return -EPROTO;
		t[i].ts = (int64_t)kv_get_u64(p);
		t[i].len = kv_get_u16(p + 8);
		p += ACCOUNTS_TOK_ENT;
		if ((size_t)(end - p) < t[i].len)
			return -EPROTO;
		t[i].p = p;
		p += t[i].len;
	}
	*n_r = n;
	return p == end ? 0 : -EPROTO;
}

static int accounts_tokens_read_txn(struct accounts *a, struct kv_txn *txn,
				    const char *addr, size_t klen,
				    struct accounts_tok *t, size_t *n_r)
{
	const void *v;
	size_t vlen;
	int rc;

	*n_r = 0;
	rc = kv_get(txn, a->t_tokens, addr, klen, &v, &vlen);
	if (rc == -ENOENT)
		return 0;
	if (rc != 0)
		return rc;
	rc = accounts_tokens_decode(v, vlen, t, n_r);
	if (rc != 0) {
		/* Like chatmail's corrupt metadata.json: read as empty. */
		log_warn("accounts: corrupt token list for %.*s, dropped",
			 (int)klen, addr);
		*n_r = 0;
	}
	return 0;
}

/* Replace the stored list by @t[0..n) (delete when empty). */
static int accounts_tokens_write_txn(struct accounts *a, struct kv_txn *txn,
				     const char *addr, size_t klen,
				     const struct accounts_tok *t, size_t n)
{
	size_t size = ACCOUNTS_TOK_HDR;
	uint8_t *buf, *p;
	int rc;

	if (n == 0) {
		rc = kv_del(txn, a->t_tokens, addr, klen);
		return rc == -ENOENT ? 0 : rc;
	}
	for (size_t i = 0; i < n; i++)
		size += ACCOUNTS_TOK_ENT + t[i].len;
	buf = malloc(size);
	if (buf == NULL)
		return -ENOMEM;
	buf[0] = ACCOUNTS_TOKENS_VERSION;
	kv_put_u16(buf + 1, (uint16_t)n);
	p = buf + ACCOUNTS_TOK_HDR;
	for (size_t i = 0; i < n; i++) {
		kv_put_u64(p, (uint64_t)t[i].ts);
		kv_put_u16(p + 8, t[i].len);
		memcpy(p + ACCOUNTS_TOK_ENT, t[i].p, t[i].len);
		p += ACCOUNTS_TOK_ENT + t[i].len;
	}
	rc = kv_put(txn, a->t_tokens, addr, klen, buf, size, 0);
	free(buf);
	return rc;
}

int accounts_tokens_add_txn(struct accounts *a, struct kv_txn *txn,
			    const char *addr, const char *token, size_t len,
			    int64_t set_at, int64_t now, bool *changed_r)
{
	struct accounts_tok t[ACCOUNTS_TOKENS_MAX + 1];
	size_t n, kept = 0, oldest = 0, klen;
	bool found = false;
	int rc;

	*changed_r = false;
	if (!accounts_key(addr, &klen) || len == 0 || len > ACCOUNTS_TOKEN_MAX)
		return -EINVAL;
	if (!accounts_token_valid(set_at, now))
		return 0;
	rc = accounts_tokens_read_txn(a, txn, addr, klen, t, &n);
	if (rc != 0)
		return rc;
	/* Prune what expired, refresh a match. */
	for (size_t i = 0; i < n; i++) {
		if (!accounts_token_valid(t[i].ts, now)) {
			*changed_r = true;
			continue;
		}
		t[kept] = t[i];
		if (t[kept].len == len && memcmp(t[kept].p, token, len) == 0) {
			found = true;
			if (set_at > t[kept].ts) {
				t[kept].ts = set_at;
				*changed_r = true;
			}
		}
		kept++;
	}
	if (!found) {
		if (kept == ACCOUNTS_TOKENS_MAX) {
			for (size_t i = 1; i < kept; i++) {
				if (t[i].ts < t[oldest].ts)
					oldest = i;
			}
			memmove(&t[oldest], &t[oldest + 1],
				(kept - oldest - 1) * sizeof(*t));
			kept--;
		}
		t[kept].p = (const uint8_t *)token;
		t[kept].len = (uint16_t)len;
		t[kept].ts = set_at;
		kept++;
		*changed_r = true;
	}
	if (!*changed_r)
		return 0;
	return accounts_tokens_write_txn(a, txn, addr, klen, t, kept);
}

struct accounts_token_op {
	struct accounts *a;
	const char *addr, *token;
	size_t len;
	int64_t set_at, now;
	bool changed;
	struct accounts_tokens *out;
};

static int accounts_tokens_add_cb(struct kv_txn *txn, void *arg)
{
	struct accounts_token_op *op = arg;
	int rc;

	rc = accounts_tokens_add_txn(op->a, txn, op->addr, op->token, op->len,
				     op->set_at, op->now, &op->changed);
	if (rc == 0 && !op->changed)
		return KV_SKIP;
	return rc;
}

int accounts_tokens_add(struct accounts *a, const char *addr, const char *token,
			size_t len, int64_t set_at, int64_t now)
{
	struct accounts_token_op op = {.a = a,
				       .addr = addr,
				       .token = token,
				       .len = len,
				       .set_at = set_at,
				       .now = now};
	int rc = kv_write(a->kv, accounts_tokens_add_cb, &op);

	if (rc == KV_SKIP)
		return 0;
	if (rc != 0)
		return rc;
	return 1;
}

static int accounts_tokens_remove_cb(struct kv_txn *txn, void *arg)
{
	struct accounts_tok t[ACCOUNTS_TOKENS_MAX + 1];
	struct accounts_token_op *op = arg;
	size_t n, kept = 0, klen;
	int rc;

	if (!accounts_key(op->addr, &klen))
		return -ENOENT;
	rc = accounts_tokens_read_txn(op->a, txn, op->addr, klen, t, &n);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (t[i].len == op->len &&
		    memcmp(t[i].p, op->token, op->len) == 0)
			continue;
		t[kept++] = t[i];
	}
	if (kept == n)
		return -ENOENT;
	return accounts_tokens_write_txn(op->a, txn, op->addr, klen, t, kept);
}

int accounts_tokens_remove(struct accounts *a, const char *addr,
			   const char *token, size_t len)
{
	struct accounts_token_op op = {
		.a = a, .addr = addr, .token = token, .len = len};

	return kv_write(a->kv, accounts_tokens_remove_cb, &op);
}

/* Copy the valid tokens out of the transaction into one allocation. */
static int accounts_tokens_get_txn(struct kv_txn *txn, void *arg)
{
	struct accounts_tok t[ACCOUNTS_TOKENS_MAX + 1];
	struct accounts_token_op *op = arg;
	struct accounts_tokens *out;
	size_t n = 0, valid = 0, size;
	char *s;
	int rc;

	rc = accounts_tokens_read_txn(op->a, txn, op->addr, strlen(op->addr), t,
				      &n);
	if (rc != 0)
		return rc;
	size = sizeof(*out);
	for (size_t i = 0; i < n; i++) {
		if (accounts_token_valid(t[i].ts, op->now)) {
			size += sizeof(out->t[0]) + t[i].len + 1u;
			valid++;
		}
	}
	out = malloc(size);
	if (out == NULL)
		return -ENOMEM;
	out->n = valid;
	s = (char *)&out->t[valid];
	valid = 0;
	for (size_t i = 0; i < n; i++) {
		if (!accounts_token_valid(t[i].ts, op->now))
			continue;
		memcpy(s, t[i].p, t[i].len);
		s[t[i].len] = '\0';
		out->t[valid].token = s;
		out->t[valid].len = t[i].len;
		out->t[valid].set_at = t[i].ts;
		s += t[i].len + 1u;
		valid++;
	}
	op->out = out;
	return 0;
}

int accounts_tokens_get(struct accounts *a, const char *addr, int64_t now,
			struct accounts_tokens **r)
{
	struct accounts_token_op op = {.a = a, .addr = addr, .now = now};
	size_t klen;
	int rc;

	*r = NULL;
	if (!accounts_key(addr, &klen))
		return -EINVAL;
	rc = kv_read(a->kv, accounts_tokens_get_txn, &op);
	if (rc != 0)
		return rc;
	*r = op.out;
	return 0;
}
