/* imap-proxy/imap_appversions: schema check over core/json's tokens. */
#include "imap-proxy/imap_appversions.h"

/* system */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* project */
#include "appversions_default.h" /* generated from deploy/appversions.json */
#include "core/json.h"

#define APPV_TOKS_MAX 8192
#define APPV_ID_MAX   256 /* decoded ids compared for uniqueness */
#define APPV_LIST_MAX 64  /* clients, and sources per client */

struct appv {
	const char *in;
	const struct json_tok *t;
	char *err;
	size_t err_cap;
};

__attribute__((format(printf, 2, 3))) static int appv_fail(struct appv *a,
							   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->err, a->err_cap, fmt, ap);
	va_end(ap);
	return -1;
}

/* "@path.@field" into @p (cut short if long: it is only for messages). */
static const char *appv_path(char *p, size_t cap, const char *path,
			     const char *field)
{
	if (snprintf(p, cap, "%s.%s", path, field) >= (int)cap)
		p[cap - 1] = '\0';
	return p;
}

/* Object @obj has exactly the keys @names (no other, none twice): the
 * value token of each into @val. */
static int appv_keys(struct appv *a, unsigned obj, const char *path,
		     const char *const *names, unsigned nnames, unsigned *val)
{
	unsigned i = obj + 1, k;

	if (a->t[obj].type != JSON_OBJECT)
		return appv_fail(a, "%s: not an object", path);
	for (k = 0; k < nnames; k++)
		val[k] = 0;
	for (unsigned m = 0; m < a->t[obj].size; m++) {
		for (k = 0; k < nnames; k++) {
			if (json_str_eq(a->in, &a->t[i], names[k]))
				break;
		}
		if (k == nnames)
			return appv_fail(
				a, "%s: unexpected key \"%.*s\"", path,
				(int)(a->t[i].len > 64 ? 64 : a->t[i].len),
				a->in + a->t[i].start);
		if (val[k] != 0)
			return appv_fail(a, "%s: key \"%s\" twice", path,
					 names[k]);
		val[k] = i + 1;
		i = a->t[i + 1].end;
	}
	for (k = 0; k < nnames; k++) {
		if (val[k] == 0)
			return appv_fail(a, "%s: missing key \"%s\"", path,
					 names[k]);
	}
	return 0;
}

/* A non-empty string (decoded at most APPV_ID_MAX - 1 octets when @id). */
static int appv_string(struct appv *a, unsigned t, const char *path, char *id)
{
	ssize_t n;

	if (a->t[t].type != JSON_STRING)
		return appv_fail(a, "%s: not a string", path);
	if (a->t[t].len == 0)
		return appv_fail(a, "%s: empty string", path);
	if (id == NULL)
		return 0;
	n = json_str_decode(a->in, &a->t[t], id, APPV_ID_MAX);
	if (n < 0)
		return appv_fail(a, "%s: longer than %d octets", path,
				 APPV_ID_MAX - 1);
	return 0;
}

/* A JSON integer in 0..2^32-1 (no sign, fraction or exponent: Delta Chat
 * core reads it as u32 and drops the whole value otherwise). */
static int appv_u32(struct appv *a, unsigned t, const char *path)
{
	const char *s = a->in + a->t[t].start;
	uint64_t v = 0;

	if (a->t[t].type != JSON_NUMBER)
		return appv_fail(a, "%s: not a number", path);
	for (uint32_t i = 0; i < a->t[t].len; i++) {
		if (s[i] < '0' || s[i] > '9' || a->t[t].len > 10)
			return appv_fail(a,
					 "%s: not an integer in "
					 "0..4294967295",
					 path);
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return appv_fail(a, "%s: not an integer in 0..4294967295",
				 path);
	return 0;
}

static int appv_url(struct appv *a, unsigned t, const char *path)
{
	static const char *const prefixes[] = {
		"https://github.com/deltachat/",
		"https://download.delta.chat/",
	};
	char url[2048];
	ssize_t n;

	if (appv_string(a, t, path, NULL) < 0)
		return -1;
	n = json_str_decode(a->in, &a->t[t], url, sizeof(url));
	if (n < 0)
		return appv_fail(a, "%s: longer than %zu octets", path,
				 sizeof(url) - 1);
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		if (strncmp(url, prefixes[i], strlen(prefixes[i])) == 0 &&
		    memchr(url, '\0', (size_t)n) == NULL)
			return 0;
	}
	return appv_fail(a,
			 "%s: not under https://github.com/deltachat/ or "
			 "https://download.delta.chat/",
			 path);
}

/* A non-empty array: its element token indices into @el (at most @max). */
static int appv_array(struct appv *a, unsigned t, const char *path,
		      unsigned *el, unsigned max, unsigned *n_r)
{
	unsigned i = t + 1;

	if (a->t[t].type != JSON_ARRAY)
		return appv_fail(a, "%s: not a list", path);
	if (a->t[t].size == 0)
		return appv_fail(a, "%s: empty list", path);
	if (a->t[t].size > max)
		return appv_fail(a, "%s: more than %u entries", path, max);
	for (unsigned k = 0; k < a->t[t].size; k++) {
		el[k] = i;
		i = a->t[i].end;
	}
	*n_r = a->t[t].size;
	return 0;
}

static bool appv_dup(char (*ids)[APPV_ID_MAX], unsigned n)
{
	for (unsigned k = 0; k < n; k++) {
		if (strcmp(ids[k], ids[n]) == 0)
			return true;
	}
	return false;
}

static int appv_source(struct appv *a, unsigned t, const char *path, char *id)
{
	static const char *const keys[] = {"sourceId", "versionInteger",
					   "versionString", "downloadUrl"};
	unsigned v[4];
	char p[128];

	if (appv_keys(a, t, path, keys, 4, v) < 0)
		return -1;
	if (appv_string(a, v[0], appv_path(p, sizeof(p), path, "sourceId"),
			id) < 0 ||
	    appv_u32(a, v[1], appv_path(p, sizeof(p), path, "versionInteger")) <
		    0 ||
	    appv_string(a, v[2], appv_path(p, sizeof(p), path, "versionString"),
			NULL) < 0)
		return -1;
	return appv_url(a, v[3], appv_path(p, sizeof(p), path, "downloadUrl"));
}

static int appv_client(struct appv *a, unsigned t, const char *path, char *id)
{
	static const char *const keys[] = {"clientId", "sources"};
	char ids[APPV_LIST_MAX][APPV_ID_MAX];
	unsigned v[2], el[APPV_LIST_MAX], n;
	char p[128];

	if (appv_keys(a, t, path, keys, 2, v) < 0)
		return -1;
	if (appv_string(a, v[0], appv_path(p, sizeof(p), path, "clientId"),
			id) < 0 ||
	    appv_array(a, v[1], appv_path(p, sizeof(p), path, "sources"), el,
		       APPV_LIST_MAX, &n) < 0)
		return -1;
	for (unsigned k = 0; k < n; k++) {
		if (snprintf(p, sizeof(p), "%s.sources[%u]", path, k) >=
		    (int)sizeof(p))
			p[sizeof(p) - 1] = '\0';
		if (appv_source(a, el[k], p, ids[k]) < 0)
			return -1;
		/* Core takes the first match: a duplicate never shows. */
		if (appv_dup(ids, k))
			return appv_fail(a, "%s.sourceId: \"%s\" twice", p,
					 ids[k]);
	}
	return 0;
}

static int appv_check(struct appv *a)
{
	static const char *const keys[] = {"clients"};
	char ids[APPV_LIST_MAX][APPV_ID_MAX];
	unsigned v[1], el[APPV_LIST_MAX], n;
	char p[64];

	if (appv_keys(a, 0, "top level", keys, 1, v) < 0 ||
	    appv_array(a, v[0], "clients", el, APPV_LIST_MAX, &n) < 0)
		return -1;
	for (unsigned k = 0; k < n; k++) {
		(void)snprintf(p, sizeof(p), "clients[%u]", k);
		if (appv_client(a, el[k], p, ids[k]) < 0)
			return -1;
		if (appv_dup(ids, k))
			return appv_fail(a, "%s.clientId: \"%s\" twice", p,
					 ids[k]);
	}
	return 0;
}

int imap_appversions_compact(const char *in, size_t len, char **out_r,
			     char *err, size_t err_cap)
{
	struct json_tok *toks = malloc(APPV_TOKS_MAX * sizeof(*toks));
	char *out = malloc(len + 1);
	struct appv a = {in, toks, err, err_cap};
	struct json_err je;
	int r = -1;

	*out_r = NULL;
	if (toks == NULL || out == NULL) {
		appv_fail(&a, "out of memory");
		goto out;
	}
	if (json_parse(in, len, toks, APPV_TOKS_MAX, out, len + 1, &je) < 0) {
		appv_fail(&a, "invalid JSON at offset %zu: %s", je.offset,
			  je.what);
		goto out;
	}
	if (appv_check(&a) < 0)
		goto out;
	*out_r = out;
	out = NULL;
	r = 0;
out:
	free(toks);
	free(out);
	return r;
}

int imap_appversions_read(const char *path, char **out_r, char *err,
			  size_t err_cap)
{
	char *buf;
	size_t n;
	FILE *f;
	int r;

	*out_r = NULL;
	if (path == NULL || path[0] == '\0')
		return imap_appversions_compact(
			imap_appversions_default,
			sizeof(imap_appversions_default) - 1, out_r, err,
			err_cap);
	f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, err_cap, "%s", strerror(errno));
		return -1;
	}
	buf = malloc(IMAP_APPVERSIONS_FILE_MAX + 1);
	if (buf == NULL) {
		fclose(f);
		snprintf(err, err_cap, "out of memory");
		return -1;
	}
	n = fread(buf, 1, IMAP_APPVERSIONS_FILE_MAX + 1, f);
	if (ferror(f)) {
		snprintf(err, err_cap, "read error");
		r = -1;
	} else if (n > IMAP_APPVERSIONS_FILE_MAX) {
		snprintf(err, err_cap, "larger than %d octets",
			 IMAP_APPVERSIONS_FILE_MAX);
		r = -1;
	} else {
		r = imap_appversions_compact(buf, n, out_r, err, err_cap);
	}
	fclose(f);
	free(buf);
	return r;
}
