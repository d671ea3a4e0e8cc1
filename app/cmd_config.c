/* app/cmd_config: `ringmail config [--config FILE]` prints the effective
 * configuration; `ringmail config --check [FILE]` only validates it (and
 * the appversions file it names). The
 * file defaults to $RINGMAIL_CONFIG, then chatmail's own path. */
#include "app/cmds.h"

/* system */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* project */
#include "core/config.h"
#include "imap-proxy/imap_appversions.h"

static int cmd_config_usage(void)
{
	fprintf(stderr, "usage: ringmail config [--config FILE]\n"
			"       ringmail config --check [FILE]\n");
	return 2;
}

int cmd_config(int argc, char **argv)
{
	const char *path = getenv("RINGMAIL_CONFIG");
	struct config cfg;
	struct config_error err;
	char *appv = NULL, aerr[256];
	int check = 0, rc = 0;

	if (path == NULL || path[0] == '\0')
		path = CONFIG_DEFAULT_PATH;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--check") == 0) {
			check = 1;
			if (i + 1 < argc && argv[i + 1][0] != '-')
				path = argv[++i];
		} else if (strcmp(argv[i], "--help") == 0 ||
			   strcmp(argv[i], "-h") == 0) {
			cmd_config_usage();
			return 0;
		} else {
			return cmd_config_usage();
		}
	}
	config_init_defaults(&cfg);
	if (config_load(&cfg, path, &err) < 0) {
		fprintf(stderr, "ringmail: %s\n", err.msg);
		rc = 1;
	} else if (imap_appversions_read(cfg.appversions_file, &appv, aerr,
					 sizeof(aerr)) < 0) {
		fprintf(stderr, "ringmail: %s: appversions_file %s: %s\n", path,
			cfg.appversions_file, aerr);
		rc = 1;
	} else if (!check) {
		config_print(&cfg, stdout);
		if (fflush(stdout) != 0 || ferror(stdout)) {
			perror("ringmail: stdout");
			rc = 1;
		}
	}
	free(appv);
	config_free(&cfg);
	return rc;
}
