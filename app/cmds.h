/* app/cmds: the ringmail subcommands. Each returns the process exit code
 * and gets argv with argv[0] = the subcommand name. */
#ifndef RINGMAIL_APP_CMDS_H
#define RINGMAIL_APP_CMDS_H

int cmd_serve(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_dovecot(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_import_chatmail(int argc, char **argv);
int cmd_dkim(int argc, char **argv);
/* Execs ringmail-bench ($RINGMAIL_BENCH_BIN, else next to this binary). */
int cmd_bench(int argc, char **argv);

struct config;
struct accounts_policy;
struct dovecot_settings;
/* The private Dovecot's settings from chatmail.ini (every dovecot_* key
 * and the limits it shares), as `serve` runs it and `ringmail dovecot`
 * renders it; strings point into @cfg. */
void cmd_dovecot_settings(const struct config *cfg, struct dovecot_settings *s);
/* Load chatmail.ini at @path into @cfg (freed by the caller with
 * config_free) and point @pol's fields and *@data_dir_r into it. 0, or -1
 * with the error printed. */
int cmd_accounts_config(const char *path, struct config *cfg,
			struct accounts_policy *pol, const char **data_dir_r);

/* Run an accounts subcommand: `--config FILE` (or $RINGMAIL_CONFIG)
 * supplies the data dir, mail domain and limits; the remaining argv goes
 * to @run, whose own --data-dir/--mail-domain still override them. */
typedef int cmd_accounts_fn(int argc, char **argv,
			    const struct accounts_policy *base,
			    const char *base_data_dir);
int cmd_accounts_run(int argc, char **argv, const char *default_data_dir,
		     cmd_accounts_fn *run);

#endif
