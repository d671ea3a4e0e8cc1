/* tests/fuzz/fuzz_imap_idle: the proxy's client-side command tracking
 * (imap_idle) between a client and a model of Dovecot, every byte one
 * step (client action, delivery, Dovecot answers, Dovecot's own timer).
 * However they interleave, the client sees exactly the replies a client
 * of plain Dovecot would: one tagged reply per command with its tag, "+"
 * only for its IDLE, never the injected NOOP's, and every delivered
 * message in the end (tests/unit/imap_model.c). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../unit/imap_model.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct model m;

	model_init(&m);
	for (size_t i = 0; i < size && i < 4096 && m.err[0] == '\0'; i++)
		model_step(&m, data[i]);
	if (!model_finish(&m)) {
		fprintf(stderr, "imap_idle model: %s\n", m.err);
		abort();
	}
	return 0;
}
