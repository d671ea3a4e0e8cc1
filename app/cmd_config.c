/* app/cmd_config: `ringmail config [--config FILE] [--check]`. */
#include "app/cmds.h"

/* system */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* project */
#include "core/config.h"

int cmd_config(int argc, char **argv)
{
	const char *path = getenv("RINGMAIL_CONFIG");
	struct config cfg;
	struct config_error err;
	int check = 0;

	if (path == NULL)
		path = CONFIG_DEFAULT_PATH;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--check") == 0) {
			check = 1;
		} else {
			fprintf(stderr,
				"usage: ringmail config [--config FILE] "
				"[--check]\n");
			return 2;
		}
	}
	config_init_defaults(&cfg);
	if (config_load(&cfg, path, &err) < 0) {
		fprintf(stderr, "ringmail: %s\n", err.msg);
		config_free(&cfg);
		return 1;
	}
	if (!check)
		config_print(&cfg, stdout);
	config_free(&cfg);
	return 0;
}
