/* app/cmd_accounts_config: the accounts store's settings from chatmail.ini,
 * shared by `ringmail user` and `ringmail import-chatmail`. */
#include "app/cmds.h"

/* system */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* project */
#include "core/accounts/accounts.h"
#include "core/config.h"

int cmd_accounts_config(const char *path, struct config *cfg,
			struct accounts_policy *pol, const char **data_dir_r)
{
	struct config_error err;

	config_init_defaults(cfg);
	if (config_load(cfg, path, &err) < 0) {
		fprintf(stderr, "ringmail: %s\n", err.msg);
		return -1;
	}
	pol->mail_domain = cfg->mail_domain;
	pol->password_min_length = (unsigned)cfg->password_min_length;
	pol->username_min_length = (unsigned)cfg->username_min_length;
	pol->username_max_length = (unsigned)cfg->username_max_length;
	pol->max_load_1m = cfg->max_load_1m;
	pol->min_available_memory_mb = cfg->min_available_memory_mb;
	pol->min_free_disk_mb = cfg->min_free_disk_space_mb;
	pol->mailboxes_dir = cfg->mailboxes_dir;
	pol->nocreate_file = cfg->nocreate_file;
	*data_dir_r = cfg->data_dir;
	return 0;
}

int cmd_accounts_run(int argc, char **argv, const char *default_data_dir,
		     cmd_accounts_fn *run)
{
	const char *path = getenv("RINGMAIL_CONFIG"), *data_dir;
	struct accounts_policy pol;
	struct config cfg;
	char **rest;
	int n = 0, rc;

	data_dir = default_data_dir;
	rest = calloc((size_t)argc + 1, sizeof(*rest));
	if (rest == NULL)
		return 1;
	for (int i = 0; i < argc; i++) {
		if (i > 0 && strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			path = argv[++i];
		else
			rest[n++] = argv[i];
	}
	accounts_policy_defaults(&pol);
	memset(&cfg, 0, sizeof(cfg));
	if (path != NULL && *path != '\0' &&
	    cmd_accounts_config(path, &cfg, &pol, &data_dir) < 0) {
		config_free(&cfg);
		free(rest);
		return 1;
	}
	rc = run(n, rest, &pol, data_dir);
	config_free(&cfg);
	free(rest);
	return rc;
}
