/* app/cmd_accounts_config: the accounts store's settings from chatmail.ini,
 * shared by `ringmail user` and `ringmail import-chatmail`. */
#include "app/cmds.h"

/* system */
#include <stdio.h>

/* project */
#include "core/accounts.h"
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
