/* tests/fuzz/fuzz_h1_client: the client's HTTP/1.1 response reader must
 * never crash or read out of bounds, must keep its bounds (field bytes,
 * body size), and must give the same outcome whether the input comes
 * whole or in pieces (the first byte picks the piece size and whether
 * the request was HEAD). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/http/http_client-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_HDR_MAX  512
#define FUZZ_BODY_MAX 256

struct fuzz_out {
	int r;
	int status;
	size_t used;
	uint32_t body_len;
	uint8_t body[FUZZ_BODY_MAX];
	bool keep_alive;
};

static void fuzz_run(const uint8_t *data, size_t size, size_t step, bool head,
		     struct fuzz_out *o)
{
	struct hc_resp resp;
	struct hc_h1 p;
	size_t have = 0, used;
	int r = HC_H1_AGAIN;

	memset(o, 0, sizeof(*o));
	hc_resp_init(&resp, FUZZ_HDR_MAX, FUZZ_BODY_MAX);
	hc_h1_init(&p, &resp, head);
	/* [o->used, have) is what the reader has not consumed yet. */
	while (have < size || r == HC_H1_AGAIN) {
		size_t n = size - have < step ? size - have : step;

		have += n;
		r = hc_h1_parse(&p, data + o->used, have - o->used, &used);
		if (used > have - o->used)
			abort();
		o->used += used;
		if (r != HC_H1_AGAIN || n == 0)
			break;
	}
	if (r == HC_H1_AGAIN)
		r = hc_h1_eof(&p) == HC_H1_OK ? 2 : -1;
	if (resp.body.len > FUZZ_BODY_MAX || resp.hdr_bytes > FUZZ_HDR_MAX)
		abort();
	o->r = r;
	o->status = resp.status;
	o->body_len = resp.body.len;
	if (resp.body.len > 0)
		memcpy(o->body, buf_head(&resp.body), resp.body.len);
	o->keep_alive = p.keep_alive;
	hc_resp_free(&resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_out whole, pieces;
	size_t step;
	bool head;

	if (size < 1)
		return 0;
	step = (data[0] & 0x3f) + 1;
	head = (data[0] & 0x40) != 0;
	data++;
	size--;
	fuzz_run(data, size, size > 0 ? size : 1, head, &whole);
	fuzz_run(data, size, step, head, &pieces);
	/* Errors may differ by where the bound is seen; successes not. */
	if ((whole.r >= 0) != (pieces.r >= 0))
		abort();
	if (whole.r >= 0 &&
	    (whole.r != pieces.r || whole.status != pieces.status ||
	     whole.body_len != pieces.body_len ||
	     memcmp(whole.body, pieces.body, whole.body_len) != 0 ||
	     whole.keep_alive != pieces.keep_alive))
		abort();
	return 0;
}
