/* filter/dkim: libopendkim behind the two halves of filter/dkim.h. The
 * library's own DNS is never used: key records come in from the caller
 * (dkim_verify_set_key) and reach libopendkim through its key lookup
 * callback while dkim_verify_finish runs. */
#include "filter/dkim.h"

/* system */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* third party */
#include <opendkim/dkim.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

/* project */
#include "core/log.h"

#define DKIM_KEY_FILE_MAX (64 * 1024)
#define DKIM_SIG_PREFIX   "DKIM-Signature: "

struct dkim_ctx {
	DKIM_LIB *lib;
};

struct dkim_signer {
	struct dkim_ctx *lib;
	char *domain, *selector;
	unsigned char *pem; /* NUL-terminated */
};

struct dkim_verify_key {
	char name[DKIM_KEY_NAME_MAX + 1];
	enum dkim_key_state state;
	bool failed; /* a signature failed its crypto check with it */
	char record[DKIM_RECORD_MAX + 1];
};

struct dkim_verify {
	struct dkim_ctx *lib;
	DKIM *dkim;
	DKIM_STAT stat; /* first non-OK status while feeding */
	bool fed_any;
	bool ended;
	unsigned nkeys;
	struct dkim_verify_key keys[DKIM_KEYS_MAX];
	const char *detail;
};

/* OpenDKIM's default SignHeaders (libopendkim dkim_should_signhdrs, RFC
 * 6376 5.4.1) plus chatmail's "+autocrypt,+content-type" (spec E.1). */
static const char *const dkim_sign_hdrs[] = {
	"from",
	"reply-to",
	"subject",
	"date",
	"to",
	"cc",
	"resent-date",
	"resent-from",
	"resent-sender",
	"resent-to",
	"resent-cc",
	"in-reply-to",
	"references",
	"list-id",
	"list-help",
	"list-unsubscribe",
	"list-subscribe",
	"list-post",
	"list-owner",
	"list-archive",
	"autocrypt",
	"content-type",
	NULL,
};

/* chatmail's OversignHeaders (spec E.1). */
static const char *const dkim_oversign_hdrs[] = {
	"from",
	"reply-to",
	"subject",
	"date",
	"to",
	"cc",
	"resent-date",
	"resent-from",
	"resent-sender",
	"resent-to",
	"resent-cc",
	"in-reply-to",
	"references",
	"list-id",
	"list-help",
	"list-unsubscribe",
	"list-subscribe",
	"list-post",
	"list-owner",
	"list-archive",
	"autocrypt",
	NULL,
};

static void dkim_lower(char *s)
{
	for (; *s != '\0'; s++) {
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
	}
}

/* libopendkim asks for the key of @sig: answer from the handle's keys. */
static DKIM_CBSTAT dkim_key_lookup_cb(DKIM *dkim, DKIM_SIGINFO *sig,
				      u_char *buf, size_t buflen)
{
	struct dkim_verify *v = dkim_get_user_context(dkim);
	const char *sel = (const char *)dkim_sig_getselector(sig);
	const char *dom = (const char *)dkim_sig_getdomain(sig);
	char name[DKIM_KEY_NAME_MAX + 1];
	int n;

	if (v == NULL || sel == NULL || dom == NULL)
		return DKIM_CBSTAT_NOTFOUND;
	n = snprintf(name, sizeof(name), "%s._domainkey.%s", sel, dom);
	if (n < 0 || (size_t)n >= sizeof(name))
		return DKIM_CBSTAT_NOTFOUND;
	dkim_lower(name);
	for (unsigned i = 0; i < v->nkeys; i++) {
		size_t len;

		if (strcmp(v->keys[i].name, name) != 0)
			continue;
		if (v->keys[i].state != DKIM_KEY_FOUND)
			return DKIM_CBSTAT_NOTFOUND;
		len = strlen(v->keys[i].record);
		if (len + 1 > buflen)
			return DKIM_CBSTAT_NOTFOUND;
		memcpy(buf, v->keys[i].record, len + 1);
		return DKIM_CBSTAT_CONTINUE;
	}
	return DKIM_CBSTAT_NOTFOUND;
}

int dkim_ctx_new(struct dkim_ctx **lib_r)
{
	struct dkim_ctx *l;
	unsigned int flags =
		DKIM_LIBFLAGS_BADSIGHANDLES | DKIM_LIBFLAGS_DELAYSIGPROC;
	DKIM_STAT st;

	*lib_r = NULL;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	l->lib = dkim_init(NULL, NULL);
	if (l->lib == NULL) {
		free(l);
		return -ENOMEM;
	}
	st = dkim_options(l->lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags,
			  sizeof(flags));
	if (st == DKIM_STAT_OK)
		st = dkim_options(l->lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS,
				  (void *)dkim_sign_hdrs, sizeof(char **));
	if (st == DKIM_STAT_OK)
		st = dkim_options(l->lib, DKIM_OP_SETOPT,
				  DKIM_OPTS_OVERSIGNHDRS,
				  (void *)dkim_oversign_hdrs, sizeof(char **));
	if (st == DKIM_STAT_OK)
		st = dkim_set_key_lookup(l->lib, dkim_key_lookup_cb);
	if (st != DKIM_STAT_OK) {
		dkim_close(l->lib);
		free(l);
		return -EINVAL;
	}
	*lib_r = l;
	return 0;
}

void dkim_ctx_free(struct dkim_ctx **lp)
{
	struct dkim_ctx *l = *lp;

	if (l == NULL)
		return;
	dkim_close(l->lib);
	free(l);
	*lp = NULL;
}

/* ---- signing ---- */

static int dkim_pem_check(const char *pem, size_t len)
{
	EVP_PKEY *pk;
	BIO *b;
	int ok;

	if (len > INT32_MAX)
		return -EINVAL;
	b = BIO_new_mem_buf(pem, (int)len);
	if (b == NULL)
		return -ENOMEM;
	pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (pk == NULL)
		return -EINVAL;
	ok = EVP_PKEY_base_id(pk) == EVP_PKEY_RSA && EVP_PKEY_bits(pk) >= 1024;
	EVP_PKEY_free(pk);
	return ok ? 0 : -EINVAL;
}

int dkim_signer_new(struct dkim_ctx *lib, const char *domain,
		    const char *selector, const char *pem, size_t pem_len,
		    struct dkim_signer **s_r)
{
	struct dkim_signer *s;
	int r;

	*s_r = NULL;
	if (domain == NULL || domain[0] == '\0' || domain[0] == '[' ||
	    selector == NULL || selector[0] == '\0')
		return -EINVAL;
	r = dkim_pem_check(pem, pem_len);
	if (r < 0)
		return r;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->lib = lib;
	s->domain = strdup(domain);
	s->selector = strdup(selector);
	s->pem = malloc(pem_len + 1);
	if (s->domain == NULL || s->selector == NULL || s->pem == NULL) {
		dkim_signer_free(&s);
		return -ENOMEM;
	}
	dkim_lower(s->domain);
	memcpy(s->pem, pem, pem_len);
	s->pem[pem_len] = '\0';
	*s_r = s;
	return 0;
}

int dkim_signer_load(struct dkim_ctx *lib, const char *domain,
		     const char *selector, const char *key_file,
		     struct dkim_signer **s_r)
{
	char *buf;
	ssize_t n;
	size_t len = 0;
	int fd, r;

	*s_r = NULL;
	fd = open(key_file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(DKIM_KEY_FILE_MAX);
	if (buf == NULL) {
		close(fd);
		return -ENOMEM;
	}
	while (len < DKIM_KEY_FILE_MAX) {
		n = read(fd, buf + len, DKIM_KEY_FILE_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			close(fd);
			free(buf);
			return r;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	r = dkim_signer_new(lib, domain, selector, buf, len, s_r);
	explicit_bzero(buf, len);
	free(buf);
	return r;
}

void dkim_signer_free(struct dkim_signer **sp)
{
	struct dkim_signer *s = *sp;

	if (s == NULL)
		return;
	free(s->domain);
	free(s->selector);
	if (s->pem != NULL) {
		explicit_bzero(s->pem, strlen((char *)s->pem));
		free(s->pem);
	}
	free(s);
	*sp = NULL;
}

bool dkim_signer_wants(const struct dkim_signer *s, const char *from_addr)
{
	const char *at;

	if (s == NULL || from_addr == NULL)
		return false;
	at = strrchr(from_addr, '@');
	return at != NULL && strcasecmp(at + 1, s->domain) == 0;
}

int dkim_signer_sign(const struct dkim_signer *s, const uint8_t *msg,
		     size_t len, char **hdr_r, size_t *hdr_len_r)
{
	const size_t pfx = sizeof(DKIM_SIG_PREFIX) - 1;
	DKIM_STAT st;
	DKIM *d;
	u_char *sig = NULL;
	size_t sig_len = 0;
	char *out;
	int r = 0;

	*hdr_r = NULL;
	*hdr_len_r = 0;
	d = dkim_sign(s->lib->lib, (const u_char *)"ringmail", NULL,
		      (dkim_sigkey_t)s->pem, (const u_char *)s->selector,
		      (const u_char *)s->domain, DKIM_CANON_RELAXED,
		      DKIM_CANON_SIMPLE, DKIM_SIGN_RSASHA256, -1, &st);
	if (d == NULL)
		return st == DKIM_STAT_NORESOURCE ? -ENOMEM : -EINVAL;
	st = dkim_chunk(d, (u_char *)msg, len);
	if (st == DKIM_STAT_OK)
		st = dkim_chunk(d, NULL, 0);
	if (st == DKIM_STAT_OK)
		st = dkim_eom(d, NULL);
	if (st == DKIM_STAT_OK)
		st = dkim_getsighdr_d(d, pfx, &sig, &sig_len);
	if (st != DKIM_STAT_OK) {
		log_warn("dkim sign: %s: %s", dkim_getresultstr(st),
			 dkim_geterror(d) != NULL ? dkim_geterror(d) : "");
		r = st == DKIM_STAT_NORESOURCE ? -ENOMEM : -EINVAL;
		goto out;
	}
	out = malloc(pfx + sig_len + 3);
	if (out == NULL) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(out, DKIM_SIG_PREFIX, pfx);
	memcpy(out + pfx, sig, sig_len);
	memcpy(out + pfx + sig_len, "\r\n", 3);
	*hdr_r = out;
	*hdr_len_r = pfx + sig_len + 2;
out:
	dkim_free(d);
	return r;
}

/* ---- verification ---- */

const char *dkim_result_name(enum dkim_result r)
{
	switch (r) {
	case DKIM_RES_PASS:
		return "pass";
	case DKIM_RES_NOSIG:
		return "nosig";
	case DKIM_RES_FAIL:
		return "fail";
	case DKIM_RES_TEMPFAIL:
		return "tempfail";
	}
	return "?";
}

int dkim_verify_new(struct dkim_ctx *lib, struct dkim_verify **v_r)
{
	struct dkim_verify *v;
	DKIM_STAT st;

	*v_r = NULL;
	v = calloc(1, sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	v->lib = lib;
	v->dkim = dkim_verify(lib->lib, (const u_char *)"ringmail", NULL, &st);
	if (v->dkim == NULL) {
		free(v);
		return -ENOMEM;
	}
	dkim_set_user_context(v->dkim, v);
	v->stat = DKIM_STAT_OK;
	*v_r = v;
	return 0;
}

void dkim_verify_free(struct dkim_verify **vp)
{
	struct dkim_verify *v = *vp;

	if (v == NULL)
		return;
	if (v->dkim != NULL)
		dkim_free(v->dkim);
	free(v);
	*vp = NULL;
}

void dkim_verify_feed(struct dkim_verify *v, const uint8_t *p, size_t n)
{
	DKIM_STAT st;

	if (n == 0 || v->ended || v->stat != DKIM_STAT_OK)
		return;
	v->fed_any = true;
	st = dkim_chunk(v->dkim, (u_char *)p, n);
	if (st != DKIM_STAT_OK)
		v->stat = st;
}

static void dkim_key_add(struct dkim_verify *v, const char *sel,
			 const char *dom)
{
	char name[DKIM_KEY_NAME_MAX + 1];
	int n;

	n = snprintf(name, sizeof(name), "%s._domainkey.%s", sel, dom);
	if (n < 0 || (size_t)n >= sizeof(name))
		return;
	dkim_lower(name);
	for (unsigned i = 0; i < v->nkeys; i++) {
		if (strcmp(v->keys[i].name, name) == 0)
			return;
	}
	if (v->nkeys >= DKIM_KEYS_MAX)
		return;
	memcpy(v->keys[v->nkeys].name, name, (size_t)n + 1);
	v->keys[v->nkeys].state = DKIM_KEY_PENDING;
	v->nkeys++;
}

enum dkim_result dkim_verify_end(struct dkim_verify *v, const char *from_domain)
{
	DKIM_SIGINFO **sigs = NULL;
	DKIM_STAT st;
	int nsigs = 0;
	unsigned aligned = 0;

	v->ended = true;
	if (v->stat == DKIM_STAT_OK) {
		st = dkim_chunk(v->dkim, NULL, 0);
		if (st != DKIM_STAT_OK)
			v->stat = st;
	}
	if (v->stat == DKIM_STAT_NOSIG || !v->fed_any) {
		v->detail = "no signature";
		return DKIM_RES_NOSIG;
	}
	if (dkim_getsiglist(v->dkim, &sigs, &nsigs) != DKIM_STAT_OK ||
	    nsigs <= 0) {
		/* Headers libopendkim could not take: nothing to verify. */
		v->detail = v->stat != DKIM_STAT_OK ? "message not verifiable"
						    : "no signature";
		return v->stat != DKIM_STAT_OK ? DKIM_RES_FAIL : DKIM_RES_NOSIG;
	}
	if (v->stat != DKIM_STAT_OK) {
		v->detail = "message not verifiable";
		return DKIM_RES_FAIL;
	}
	for (int i = 0; i < nsigs; i++) {
		const char *dom = (const char *)dkim_sig_getdomain(sigs[i]);
		const char *sel = (const char *)dkim_sig_getselector(sigs[i]);

		if (dom == NULL || sel == NULL || from_domain == NULL ||
		    strcasecmp(dom, from_domain) != 0 ||
		    (dkim_sig_geterror(sigs[i]) != DKIM_SIGERROR_UNKNOWN &&
		     dkim_sig_geterror(sigs[i]) != DKIM_SIGERROR_OK)) {
			dkim_sig_ignore(sigs[i]);
			continue;
		}
		/* Each costs a key decode and an RSA check on the pool: a
		 * message cannot make us do more than a few. */
		if (aligned >= DKIM_KEYS_MAX) {
			dkim_sig_ignore(sigs[i]);
			continue;
		}
		aligned++;
		dkim_key_add(v, sel, dom);
	}
	if (aligned == 0 || v->nkeys == 0) {
		v->detail = "no aligned signature";
		return DKIM_RES_FAIL;
	}
	return DKIM_RES_PASS;
}

unsigned dkim_verify_nkeys(const struct dkim_verify *v)
{
	return v->nkeys;
}

const char *dkim_verify_key_name(const struct dkim_verify *v, unsigned i)
{
	return i < v->nkeys ? v->keys[i].name : "";
}

void dkim_verify_set_key(struct dkim_verify *v, unsigned i,
			 enum dkim_key_state st, const char *record)
{
	if (i >= v->nkeys)
		return;
	v->keys[i].state = st;
	v->keys[i].record[0] = '\0';
	if (st == DKIM_KEY_FOUND) {
		if (record == NULL || strlen(record) > DKIM_RECORD_MAX) {
			v->keys[i].state = DKIM_KEY_NOTFOUND;
			return;
		}
		memcpy(v->keys[i].record, record, strlen(record) + 1);
	}
}

static struct dkim_verify_key *dkim_sig_key(struct dkim_verify *v,
					    DKIM_SIGINFO *sig)
{
	char name[DKIM_KEY_NAME_MAX + 1];
	const char *sel = (const char *)dkim_sig_getselector(sig);
	const char *dom = (const char *)dkim_sig_getdomain(sig);
	int n;

	if (sel == NULL || dom == NULL)
		return NULL;
	n = snprintf(name, sizeof(name), "%s._domainkey.%s", sel, dom);
	if (n < 0 || (size_t)n >= sizeof(name))
		return NULL;
	dkim_lower(name);
	for (unsigned i = 0; i < v->nkeys; i++) {
		if (strcmp(v->keys[i].name, name) == 0)
			return &v->keys[i];
	}
	return NULL;
}

enum dkim_result dkim_verify_finish(struct dkim_verify *v)
{
	DKIM_SIGINFO **sigs = NULL;
	int nsigs = 0;
	bool temp = false;

	(void)dkim_eom(v->dkim, NULL);
	if (dkim_getsiglist(v->dkim, &sigs, &nsigs) != DKIM_STAT_OK)
		nsigs = 0;
	v->detail = "no valid signature";
	for (int i = 0; i < nsigs; i++) {
		DKIM_SIGINFO *sig = sigs[i];
		struct dkim_verify_key *k;
		int err;

		if ((dkim_sig_getflags(sig) & DKIM_SIGFLAG_IGNORE) != 0)
			continue;
		k = dkim_sig_key(v, sig);
		if (DKIM_SIG_CHECK(sig)) {
			v->detail = "pass";
			return DKIM_RES_PASS;
		}
		if (k != NULL && k->state == DKIM_KEY_TEMPFAIL) {
			temp = true;
			v->detail = "key lookup failed temporarily";
			continue;
		}
		err = dkim_sig_geterror(sig);
		/* The RSA check failed with this key (a changed body is
		 * no reason to distrust the key). */
		if (k != NULL && k->state == DKIM_KEY_FOUND &&
		    err == DKIM_SIGERROR_BADSIG &&
		    dkim_sig_getbh(sig) != DKIM_SIGBH_MISMATCH)
			k->failed = true;
		if (dkim_sig_getbh(sig) == DKIM_SIGBH_MISMATCH)
			v->detail = "body hash mismatch";
		else if (err != DKIM_SIGERROR_UNKNOWN &&
			 err != DKIM_SIGERROR_OK)
			v->detail = dkim_sig_geterrorstr(err);
	}
	return temp ? DKIM_RES_TEMPFAIL : DKIM_RES_FAIL;
}

bool dkim_verify_key_failed(const struct dkim_verify *v, unsigned i)
{
	return i < v->nkeys && v->keys[i].failed;
}

const char *dkim_verify_detail(const struct dkim_verify *v)
{
	return v->detail != NULL ? v->detail : "";
}

/* ---- TXT record selection ---- */

static bool dkim_txt_has(const char *s, size_t n, const char *needle)
{
	size_t k = strlen(needle);

	for (size_t i = 0; i + k <= n; i++) {
		if (memcmp(s + i, needle, k) == 0)
			return true;
	}
	return false;
}

bool dkim_record_select(const char *const *txt, const size_t *txt_len,
			unsigned n, char *out, size_t out_len)
{
	int pick = -1;
	size_t o = 0;

	for (unsigned i = 0; i < n && pick < 0; i++) {
		if (dkim_txt_has(txt[i], txt_len[i], "DKIM"))
			pick = (int)i;
	}
	for (unsigned i = 0; i < n && pick < 0; i++) {
		if (dkim_txt_has(txt[i], txt_len[i], "p="))
			pick = (int)i;
	}
	if (pick < 0 || out_len == 0)
		return false;
	for (size_t i = 0; i < txt_len[pick]; i++) {
		char c = txt[pick][i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c == '\0' || o + 1 >= out_len)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return true;
}
