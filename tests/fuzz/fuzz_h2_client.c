/* tests/fuzz/fuzz_h2_client: server bytes into the client's HTTP/2 glue
 * (core/http/h2_client.c, the same code http_client runs over TLS). Three
 * requests are open, one with a body; the input is fed in pieces (the
 * first byte picks the piece size) with a flush after each, as the
 * connection does. Checks: no crash or leak, every stream ends at most
 * once, a completed one has a final status and a body within its bound,
 * and after h2c_abort none is left. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/http/http_client-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NSTREAMS 3
#define FUZZ_BODY_MAX 1024

struct fuzz_stream {
	struct h2c_stream st;
	struct hc_resp resp;
	int done;
};

static struct fuzz_stream fs[FUZZ_NSTREAMS];
static size_t out_bytes;

static int fuzz_send(void *arg, const uint8_t *p, size_t len)
{
	(void)arg;
	(void)p;
	out_bytes += len;
	return 0;
}

static bool fuzz_can_send(void *arg)
{
	(void)arg;
	return out_bytes < (1u << 20);
}

static void fuzz_done(void *arg, struct h2c_stream *s, int err, bool refused,
		      const char *reason)
{
	struct fuzz_stream *f = (struct fuzz_stream *)s;

	(void)arg;
	(void)refused;
	if (f->done++ != 0 || reason == NULL)
		abort();
	if (err == 0 && (f->resp.status < 200 || f->resp.status > 999 ||
			 f->resp.body.len > FUZZ_BODY_MAX))
		abort();
}

static const struct h2c_ops fuzz_ops = {
	.send = fuzz_send,
	.can_send = fuzz_can_send,
	.stream_done = fuzz_done,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char body[] = "a-device-token";
	struct http_field f = {"x-mail-from", 11, "a@b.c", 5};
	struct h2c_req r = {"POST", "https", "push.test", "/notify", &f, 1};
	struct h2c *h;
	size_t step, off = 0, n;

	if (size < 1 || h2c_new(&fuzz_ops, NULL, 100, 4096, &h) < 0)
		return 0;
	step = (size_t)data[0] * 7 + 1;
	data++;
	size--;
	out_bytes = 0;
	(void)h2c_flush(h);
	for (unsigned i = 0; i < FUZZ_NSTREAMS; i++) {
		memset(&fs[i], 0, sizeof(fs[i]));
		hc_resp_init(&fs[i].resp, 4096, FUZZ_BODY_MAX);
		fs[i].st.resp = &fs[i].resp;
		if (i == 1) {
			fs[i].st.body = (const uint8_t *)body;
			fs[i].st.body_len = sizeof(body) - 1;
		}
		/* Before the server's SETTINGS only the first opens. */
		if (h2c_submit(h, &fs[i].st, &r) < 0)
			fs[i].done = -1;
	}
	(void)h2c_flush(h);
	while (off < size) {
		n = size - off < step ? size - off : step;
		if (h2c_feed(h, data + off, n) < 0)
			break;
		off += n;
		if (h2c_flush(h) < 0)
			break;
		/* Streams the server's SETTINGS now allow. */
		for (unsigned i = 0; i < FUZZ_NSTREAMS; i++) {
			if (fs[i].done == -1 && h2c_can_submit(h) &&
			    h2c_submit(h, &fs[i].st, &r) > 0)
				fs[i].done = 0;
		}
	}
	h2c_abort(h, -ECONNRESET, "fuzz end");
	if (h2c_open_streams(h) != 0)
		abort();
	for (unsigned i = 0; i < FUZZ_NSTREAMS; i++) {
		if (fs[i].done != 1 && fs[i].done != -1)
			abort();
		hc_resp_free(&fs[i].resp);
	}
	h2c_free(&h);
	return 0;
}
