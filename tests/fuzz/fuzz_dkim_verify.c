/* tests/fuzz/fuzz_dkim_verify: messages through filter/dkim's verifier
 * (libopendkim's header and DKIM-Signature parsing, our alignment and key
 * bookkeeping around it). Byte 0 picks a chunk size; the rest is the
 * message (From domain peer.test), fed whole and in those chunks: both
 * must give the same keys and the same verdict, with the key of the seed
 * signatures (sel._domainkey.peer.test) and every other name missing.
 * Never a crash, a leak or an out-of-bounds read. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "filter/dkim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The public key of the seeds' signatures (a test key made for them). */
static const char fuzz_key[] =
	"v=DKIM1;k=rsa;p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"
	"0e/uZ/Oz23O4/vlhho8SVBk7GsqEO79RQvGQyYU7n6I5Hp0+1tf6vXewxNw+"
	"a+wL1rUzERyMqIEs0yFju2MTqWMcVXKaaGmfw0hMGYp9LIVNOSqa63oUjGMd"
	"av1bWWxs9uiVks5/vh/GyRDkbcYdDcaEPQdvc1GDpqu3pElGII3vqO09kRIS"
	"om4QsVKeyVXJgNeq5dTWlyIA2HKYLIsin/iVxveQar05OrOJq2rAebAAb7oA"
	"wVLm7tOkUqgMqvwFOhguR1pIUDC1dQMNfqumz3X1WT2fL+pVjz9dhU+/UYGg"
	"0KJfvTO+7w5MFdzJbr7GQFSeJB5vOSp9WdtrtsEkzwIDAQAB;s=email;t=s";

static struct dkim_ctx *fuzz_ctx;

struct fuzz_out {
	enum dkim_result end, fin;
	unsigned nkeys;
	char names[DKIM_KEYS_MAX][DKIM_KEY_NAME_MAX + 1];
};

static void fuzz_run(const uint8_t *msg, size_t len, size_t chunk,
		     struct fuzz_out *o)
{
	struct dkim_verify *v;

	memset(o, 0, sizeof(*o));
	if (dkim_verify_new(fuzz_ctx, &v) < 0)
		abort();
	if (chunk == 0)
		chunk = len > 0 ? len : 1;
	for (size_t off = 0; off < len; off += chunk)
		dkim_verify_feed(v, msg + off,
				 len - off < chunk ? len - off : chunk);
	o->end = dkim_verify_end(v, "peer.test");
	o->fin = o->end;
	o->nkeys = dkim_verify_nkeys(v);
	if (o->nkeys > DKIM_KEYS_MAX)
		abort();
	for (unsigned i = 0; i < o->nkeys; i++) {
		const char *n = dkim_verify_key_name(v, i);

		if (strlen(n) > DKIM_KEY_NAME_MAX)
			abort();
		memcpy(o->names[i], n, strlen(n) + 1);
		if (strcmp(n, "sel._domainkey.peer.test") == 0)
			dkim_verify_set_key(v, i, DKIM_KEY_FOUND, fuzz_key);
		else
			dkim_verify_set_key(v, i, DKIM_KEY_NOTFOUND, NULL);
	}
	if (o->end == DKIM_RES_PASS) {
		if (o->nkeys == 0)
			abort(); /* "go on" always names a key */
		o->fin = dkim_verify_finish(v);
		if (o->fin == DKIM_RES_NOSIG || o->fin == DKIM_RES_TEMPFAIL)
			abort(); /* no key is a temporary failure here */
	}
	dkim_verify_free(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_out whole, parts;
	uint8_t *msg;

	if (fuzz_ctx == NULL && dkim_ctx_new(&fuzz_ctx) < 0)
		abort();
	if (size == 0 || size > 65536)
		return 0;
	msg = malloc(size - 1 + 1);
	if (msg == NULL)
		return 0;
	memcpy(msg, data + 1, size - 1);
	fuzz_run(msg, size - 1, 0, &whole);
	fuzz_run(msg, size - 1, (size_t)data[0] % 64 + 1, &parts);
	if (whole.end != parts.end || whole.fin != parts.fin ||
	    whole.nkeys != parts.nkeys ||
	    memcmp(whole.names, parts.names, sizeof(whole.names)) != 0)
		abort();
	free(msg);
	return 0;
}
