/* tests/fuzz/fuzz_smtp_session: whole SMTP sessions through the in-memory
 * transport (STYLE.md rule 22). The first octet picks the port mode, TLS,
 * the authentication and delivery answers and the rate limit; the second
 * the chunk size. The rest is what the client sends. The same input fed
 * whole and in chunks must give the same replies; every reply line is
 * "ddd" SP/"-" text CRLF; deliveries only happen for messages that got
 * past the rules, with at least one local recipient. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/smtp_script.c"
#include "core/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(c)                                                      \
	do {                                                               \
		if (!(c)) {                                                \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, \
				#c);                                       \
			abort();                                           \
		}                                                          \
	} while (0)

static void fuzz_run(struct smtp_fake *f, uint8_t flags, const uint8_t *p,
		     size_t n, size_t chunk)
{
	static const unsigned codes[] = {250, 451, 552, 550};

	smtp_fake_init(f, (flags & 1) ? SMTP_MODE_SUBMISSION : SMTP_MODE_MX,
		       (flags & 2) != 0);
	f->cfg.max_message_size = 4096;
	f->cfg.client_local = (flags & 4) != 0;
	f->auth_res = (enum smtp_auth_result)((flags >> 3) % 3);
	f->rate_limited = (flags & 0x20) != 0;
	f->deliver_code = codes[(flags >> 6) & 3];
	snprintf(f->enforce[0], sizeof(f->enforce[0]), "a@example.org");
	f->n_enforce = 1;
	FUZZ_CHECK(smtp_fake_start(f) == 0);
	smtp_fake_feed(f, p, n, chunk);
}

static void fuzz_check_lines(const struct smtp_fake *f)
{
	const uint8_t *o = buf_head(&f->out);
	size_t i = 0, len = f->out.len;

	while (i < len) {
		const uint8_t *lf = memchr(o + i, '\n', len - i);
		size_t n;

		FUZZ_CHECK(lf != NULL);
		n = (size_t)(lf - (o + i));
		FUZZ_CHECK(n >= 5 && o[i + n - 1] == '\r');
		FUZZ_CHECK(o[i] >= '2' && o[i] <= '5');
		FUZZ_CHECK(o[i + 1] >= '0' && o[i + 1] <= '9');
		FUZZ_CHECK(o[i + 2] >= '0' && o[i + 2] <= '9');
		FUZZ_CHECK(o[i + 3] == ' ' || o[i + 3] == '-');
		for (size_t k = 0; k + 1 < n; k++)
			FUZZ_CHECK(o[i + k] >= 0x20 && o[i + k] < 0x7f);
		i += n + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_fake whole, pieces;
	size_t chunk;

	if (size < 2)
		return 0;
	log_set_level(LOG_LV_ERR);
	chunk = (size_t)data[1] % 17 + 1;
	fuzz_run(&whole, data[0], data + 2, size - 2, 0);
	fuzz_run(&pieces, data[0], data + 2, size - 2, chunk);
	fuzz_check_lines(&whole);
	/* STARTTLS drops what followed in the same read, so what happens
	 * after it depends on the chunking; without it nothing may. */
	if (whole.starttls_count == 0 && pieces.starttls_count == 0) {
		FUZZ_CHECK(whole.closed == pieces.closed);
		FUZZ_CHECK(whole.n_deliveries == pieces.n_deliveries);
		FUZZ_CHECK(whole.out.len == pieces.out.len);
		FUZZ_CHECK(memcmp(buf_head(&whole.out), buf_head(&pieces.out),
				  whole.out.len) == 0);
	}
	if (whole.n_deliveries > 0)
		FUZZ_CHECK(strstr(whole.last_rcpts, "@example.org") != NULL);
	smtp_fake_free(&whole);
	smtp_fake_free(&pieces);
	return 0;
}
