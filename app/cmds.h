/* app/cmds: the ringmail subcommands. Each returns the process exit code
 * and gets argv with argv[0] = the subcommand name. */
#ifndef RINGMAIL_APP_CMDS_H
#define RINGMAIL_APP_CMDS_H

int cmd_serve(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_dovecot(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_import_chatmail(int argc, char **argv);

#endif
