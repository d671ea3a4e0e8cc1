/* app/main: `ringmail <command> [options]`. */
#include "app/cmds.h"

/* system */
#include <stdio.h>
#include <string.h>

/* project */
#include "build-config.h"

struct main_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

static const struct main_cmd main_cmds[] = {
	{"serve", cmd_serve, "run the relay (listeners, workers)"},
	{"config", cmd_config, "print the effective configuration"},
	{"dovecot", cmd_dovecot, "write, start or stop the private Dovecot"},
	{"user", cmd_user, "list, show, delete accounts; E2EE enforcement"},
	{"import-chatmail", cmd_import_chatmail,
	 "import a chatmail/relay mailboxes directory"},
	{"dkim", cmd_dkim, "DKIM key, DNS record, sign, verify"},
	{"bench", cmd_bench, "measure a chatmail relay as chat clients do"},
	{NULL, NULL, NULL},
};

static void main_usage(FILE *f)
{
	fprintf(f, "usage: ringmail <command> [options]\n\ncommands:\n");
	for (const struct main_cmd *c = main_cmds; c->name != NULL; c++)
		fprintf(f, "  %-16s %s\n", c->name, c->help);
	fprintf(f, "\n  --version        print the version\n"
		   "  --help           this text\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		main_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--version") == 0 ||
	    strcmp(argv[1], "version") == 0) {
		printf("ringmail %s\n", RINGMAIL_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		main_usage(stdout);
		return 0;
	}
	for (const struct main_cmd *c = main_cmds; c->name != NULL; c++) {
		if (strcmp(argv[1], c->name) == 0)
			return c->fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "ringmail: unknown command '%s'\n", argv[1]);
	main_usage(stderr);
	return 2;
}
