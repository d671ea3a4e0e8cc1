/* app/cmd_dkim: `ringmail dkim [--config FILE] keygen | record | sign |
 * verify`. The domain, selector, key file and resolver come from
 * chatmail.ini (mail_domain, dkim_selector, dkim_key_file, dns_server) or
 * the options. sign and verify read a message on standard input: they are
 * the relay's own signing and verification code (filter/dkim,
 * filter/dkim_check over core/dns), for operators and for tests against
 * independent implementations. */
#include "app/cmds.h"

/* system */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* project */
#include "core/config.h"
#include "core/loop.h"
#include "core/pool.h"
#include "filter/dkim.h"
#include "filter/dkim_check.h"
#include "filter/dkim_key.h"
#include "filter/e2ee.h"

#define CMD_DKIM_MSG_MAX (64u * 1024 * 1024)

struct cmd_dkim_opts {
	const char *domain, *selector, *key_file, *dns_server;
	bool force, single;
	unsigned bits;
	uint64_t timeout_ms;
};

static int cmd_dkim_usage(void)
{
	fprintf(stderr,
		"usage: ringmail dkim [--config FILE] [--domain D] "
		"[--selector S] [--key FILE] <command>\n"
		"  keygen [--force] [--bits N]  create the signing key "
		"(mode 0600)\n"
		"  record [--single]            print its DNS TXT record as "
		"`cmdeploy dns` does\n"
		"  sign                         print the message on stdin "
		"with a DKIM-Signature\n"
		"  verify [--dns-server IP:PORT] [--timeout MS]\n"
		"                               verify the message on stdin "
		"(exit 0 pass, 1 fail, 75 temporary failure)\n");
	return 2;
}

static int cmd_dkim_read_stdin(uint8_t **msg_r, size_t *len_r)
{
	size_t cap = 65536, len = 0;
	uint8_t *p = malloc(cap), *grown;
	ssize_t n;

	if (p == NULL)
		return -ENOMEM;
	for (;;) {
		if (len == cap) {
			if (cap >= CMD_DKIM_MSG_MAX) {
				free(p);
				return -EFBIG;
			}
			grown = realloc(p, cap * 2);
			if (grown == NULL) {
				free(p);
				return -ENOMEM;
			}
			p = grown;
			cap *= 2;
		}
		n = read(0, p + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(p);
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*msg_r = p;
	*len_r = len;
	return 0;
}

/* LF-only input (a file from an editor) becomes CRLF, as on the wire. */
static int cmd_dkim_crlf(uint8_t **msg, size_t *len)
{
	size_t extra = 0, o = 0;
	uint8_t *out;

	for (size_t i = 0; i < *len; i++)
		extra += (*msg)[i] == '\n' && (i == 0 || (*msg)[i - 1] != '\r');
	if (extra == 0)
		return 0;
	out = malloc(*len + extra);
	if (out == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < *len; i++) {
		if ((*msg)[i] == '\n' && (i == 0 || (*msg)[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = (*msg)[i];
	}
	free(*msg);
	*msg = out;
	*len = o;
	return 0;
}

static int cmd_dkim_keygen(const struct cmd_dkim_opts *o)
{
	int r = dkim_keygen(o->key_file, o->bits, o->force);

	if (r == -EEXIST) {
		fprintf(stderr,
			"ringmail: %s exists; --force replaces it (the DNS "
			"record must change too)\n",
			o->key_file);
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "ringmail: keygen %s: %s\n", o->key_file,
			strerror(-r));
		return 1;
	}
	fprintf(stderr, "ringmail: wrote %u-bit key %s\n", o->bits,
		o->key_file);
	return 0;
}

static int cmd_dkim_record(const struct cmd_dkim_opts *o)
{
	char value[4096], line[8192];
	int r;

	r = dkim_record_value(o->key_file, value, sizeof(value));
	if (r < 0) {
		fprintf(stderr, "ringmail: %s: %s\n", o->key_file,
			r == -EINVAL ? "not an RSA private key" : strerror(-r));
		return 1;
	}
	r = dkim_record_line(o->selector, o->domain, value, o->single, line,
			     sizeof(line));
	if (r < 0)
		return 1;
	printf("%s\n", line);
	return 0;
}

static int cmd_dkim_sign(const struct cmd_dkim_opts *o)
{
	struct dkim_signer *s = NULL;
	struct dkim_ctx *lib = NULL;
	uint8_t *msg = NULL;
	char *hdr = NULL;
	size_t len = 0, hdr_len = 0;
	int r, rc = 1;

	r = dkim_ctx_new(&lib);
	if (r == 0)
		r = dkim_signer_load(lib, o->domain, o->selector, o->key_file,
				     &s);
	if (r < 0) {
		fprintf(stderr, "ringmail: key %s: %s\n", o->key_file,
			strerror(-r));
		goto out;
	}
	r = cmd_dkim_read_stdin(&msg, &len);
	if (r == 0)
		r = cmd_dkim_crlf(&msg, &len);
	if (r == 0)
		r = dkim_signer_sign(s, msg, len, &hdr, &hdr_len);
	if (r < 0) {
		fprintf(stderr, "ringmail: sign: %s\n", strerror(-r));
		goto out;
	}
	if (fwrite(hdr, 1, hdr_len, stdout) == hdr_len &&
	    fwrite(msg, 1, len, stdout) == len && fflush(stdout) == 0)
		rc = 0;
out:
	free(hdr);
	free(msg);
	dkim_signer_free(&s);
	dkim_ctx_free(&lib);
	return rc;
}

struct cmd_dkim_verify_state {
	struct loop *loop;
	bool done;
	enum dkim_result res;
	char detail[128];
};

static void cmd_dkim_verify_done(enum dkim_result res, const char *detail,
				 void *arg)
{
	struct cmd_dkim_verify_state *st = arg;

	st->done = true;
	st->res = res;
	snprintf(st->detail, sizeof(st->detail), "%s", detail);
	loop_stop(st->loop);
}

static int cmd_dkim_verify(const struct cmd_dkim_opts *o)
{
	struct cmd_dkim_verify_state st;
	struct loop_opts lo;
	struct dkim_checker *ck = NULL;
	struct dkim_verify *v = NULL;
	struct dkim_ctx *lib = NULL;
	struct pool *pool = NULL;
	struct e2ee_state *e2 = NULL;
	struct e2ee_facts facts;
	const char *dom = "", *at;
	uint8_t *msg = NULL;
	size_t len = 0;
	enum dkim_result res;
	int r, rc = 1;

	memset(&st, 0, sizeof(st));
	memset(&lo, 0, sizeof(lo));
	if (getenv("RINGMAIL_IO_BACKEND") != NULL &&
	    loop_backend_parse(getenv("RINGMAIL_IO_BACKEND"), &lo.backend) < 0)
		lo.backend = LOOP_BACKEND_AUTO;
	/* As serve's uring_profile = debian12 (CI runs the tests so). */
	lo.uring_debian12 =
		getenv("RINGMAIL_URING_PROFILE") != NULL &&
		strcmp(getenv("RINGMAIL_URING_PROFILE"), "debian12") == 0;
	r = cmd_dkim_read_stdin(&msg, &len);
	if (r == 0)
		r = cmd_dkim_crlf(&msg, &len);
	if (r == 0)
		r = dkim_ctx_new(&lib);
	if (r == 0)
		r = dkim_verify_new(lib, &v);
	e2 = malloc(sizeof(*e2));
	if (r < 0 || e2 == NULL) {
		fprintf(stderr, "ringmail: verify: %s\n",
			strerror(r < 0 ? -r : ENOMEM));
		goto out;
	}
	/* Fed as the server feeds it: in the chunks DATA arrives in. */
	e2ee_init(e2);
	for (size_t off = 0; off < len; off += 4096) {
		size_t k = len - off < 4096 ? len - off : 4096;

		e2ee_feed(e2, msg + off, k);
		dkim_verify_feed(v, msg + off, k);
	}
	e2ee_finish(e2, &facts);
	if (facts.from_ok && (at = strrchr(facts.from_addr, '@')) != NULL)
		dom = at + 1;
	res = dkim_verify_end(v, dom);
	if (res != DKIM_RES_PASS) {
		printf("dkim=%s from_domain=%s detail=%s\n",
		       dkim_result_name(res), dom, dkim_verify_detail(v));
		rc = 1;
		goto out;
	}
	r = loop_new(&lo, &st.loop);
	if (r == 0)
		r = pool_new(1, &pool);
	if (r == 0)
		r = dkim_checker_new(st.loop, pool, o->dns_server,
				     o->timeout_ms, &ck);
	if (r == 0)
		r = dkim_check_start(ck, v, cmd_dkim_verify_done, &st, NULL);
	if (r < 0) {
		fprintf(stderr, "ringmail: verify: %s\n", strerror(-r));
		goto out;
	}
	v = NULL; /* the check owns it now */
	while (!st.done) {
		if (loop_run(st.loop) < 0)
			break;
	}
	if (!st.done)
		goto out;
	printf("dkim=%s from_domain=%s detail=%s\n", dkim_result_name(st.res),
	       dom, st.detail);
	rc = st.res == DKIM_RES_PASS ? 0 : st.res == DKIM_RES_TEMPFAIL ? 75 : 1;
out:
	dkim_checker_free(&ck);
	pool_free(&pool);
	loop_free(&st.loop);
	dkim_verify_free(&v);
	dkim_ctx_free(&lib);
	free(e2);
	free(msg);
	return rc;
}

int cmd_dkim(int argc, char **argv)
{
	const char *path = getenv("RINGMAIL_CONFIG"), *cmd = NULL;
	struct cmd_dkim_opts o;
	struct config cfg;
	struct config_error err;
	int rc;

	memset(&o, 0, sizeof(o));
	o.bits = 2048;
	o.timeout_ms = DKIM_CHECK_TIMEOUT_MS;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has = i + 1 < argc;

		if (strcmp(a, "--config") == 0 && has)
			path = argv[++i];
		else if (strcmp(a, "--domain") == 0 && has)
			o.domain = argv[++i];
		else if (strcmp(a, "--selector") == 0 && has)
			o.selector = argv[++i];
		else if (strcmp(a, "--key") == 0 && has)
			o.key_file = argv[++i];
		else if (strcmp(a, "--dns-server") == 0 && has)
			o.dns_server = argv[++i];
		else if (strcmp(a, "--bits") == 0 && has)
			o.bits = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(a, "--timeout") == 0 && has)
			o.timeout_ms = strtoull(argv[++i], NULL, 10);
		else if (strcmp(a, "--force") == 0)
			o.force = true;
		else if (strcmp(a, "--single") == 0)
			o.single = true;
		else if (a[0] != '-' && cmd == NULL)
			cmd = a;
		else
			return cmd_dkim_usage();
	}
	if (cmd == NULL)
		return cmd_dkim_usage();
	memset(&cfg, 0, sizeof(cfg));
	config_init_defaults(&cfg);
	if (path == NULL && access(CONFIG_DEFAULT_PATH, R_OK) == 0)
		path = CONFIG_DEFAULT_PATH;
	if (path != NULL && path[0] != '\0' &&
	    config_load(&cfg, path, &err) < 0) {
		fprintf(stderr, "ringmail: %s\n", err.msg);
		config_free(&cfg);
		return 1;
	}
	if (o.domain == NULL)
		o.domain = cfg.mail_domain;
	if (o.selector == NULL)
		o.selector = cfg.dkim_selector;
	if (o.key_file == NULL)
		o.key_file = cfg.dkim_key_file;
	if (o.dns_server == NULL && cfg.dns_server != NULL &&
	    cfg.dns_server[0] != '\0')
		o.dns_server = cfg.dns_server;
	if (strcmp(cmd, "verify") == 0) {
		rc = cmd_dkim_verify(&o);
	} else if (o.domain == NULL || o.domain[0] == '\0') {
		fprintf(stderr, "ringmail: no mail_domain (--config or "
				"--domain)\n");
		rc = 1;
	} else if (o.domain[0] == '[') {
		fprintf(stderr,
			"[WARNING] %s is not a domain: an IP-only relay has "
			"no DKIM.\n",
			o.domain);
		rc = strcmp(cmd, "record") == 0 ? 0 : 1;
	} else if (strcmp(cmd, "keygen") == 0) {
		rc = cmd_dkim_keygen(&o);
	} else if (strcmp(cmd, "record") == 0) {
		rc = cmd_dkim_record(&o);
	} else if (strcmp(cmd, "sign") == 0) {
		rc = cmd_dkim_sign(&o);
	} else {
		rc = cmd_dkim_usage();
	}
	config_free(&cfg);
	return rc;
}
