/* tests/fuzz/fuzz_config: chatmail.ini parsing must never crash, leak or
 * read out of bounds, whatever the file holds; a successful load must
 * print and reload to the same configuration. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config a, b;
	struct config_error e;
	char *out1 = NULL, *out2 = NULL;
	size_t l1 = 0, l2 = 0;
	FILE *f;

	log_set_level(LOG_LV_FATAL);
	config_init_defaults(&a);
	if (config_load_buffer(&a, "fuzz.ini", (const char *)data, size, &e) ==
	    0) {
		f = open_memstream(&out1, &l1);
		config_print(&a, f);
		fclose(f);
		config_init_defaults(&b);
		if (config_load_buffer(&b, "fuzz.ini", out1, l1, &e) != 0)
			abort(); /* printed config must load */
		f = open_memstream(&out2, &l2);
		config_print(&b, f);
		fclose(f);
		if (l1 != l2 || memcmp(out1, out2, l1) != 0)
			abort(); /* and print the same */
		config_free(&b);
		free(out1);
		free(out2);
	}
	config_free(&a);
	return 0;
}
