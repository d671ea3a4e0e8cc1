/* app/cmd_import: `ringmail import-chatmail [--data-dir DIR]
 * [--mail-domain D] MAILBOXES_DIR`: copy a chatmail/relay deployment's
 * accounts (password hashes, last login, enforceE2EEincoming, device
 * tokens) into the accounts store. Idempotent: run it again after the
 * final rsync of the maildirs. Progress goes to stderr, the report to
 * stdout. */
#include "app/cmds.h"

/* system */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* project */
#include "app/cmds.h"
#include "core/accounts/accounts.h"
#include "core/config.h"

/* TODO: read data_dir and mail_domain from chatmail.ini with
 * core/config.h's config_load (--config FILE); until then the options. */
#define CMD_IMPORT_DATA_DIR       "/var/lib/ringmail"
#define CMD_IMPORT_PROGRESS_EVERY 1000u

struct cmd_import_skips {
	char **lines;
	size_t n, cap;
	bool oom;
};

static void cmd_import_note(const char *name, bool skipped, const char *reason,
			    void *arg)
{
	struct cmd_import_skips *s = arg;
	size_t len;
	char *line;

	if (!skipped) {
		fprintf(stderr, "import-chatmail: warning: %s: %s\n", name,
			reason);
		return;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap != 0 ? s->cap * 2 : 64;
		char **l = realloc(s->lines, cap * sizeof(*l));

		if (l == NULL) {
			s->oom = true;
			fprintf(stderr, "import-chatmail: skipped %s: %s\n",
				name, reason);
			return;
		}
		s->lines = l;
		s->cap = cap;
	}
	len = strlen(name) + strlen(reason) + 3;
	line = malloc(len);
	if (line == NULL) {
		s->oom = true;
		fprintf(stderr, "import-chatmail: skipped %s: %s\n", name,
			reason);
		return;
	}
	snprintf(line, len, "%s: %s", name, reason);
	s->lines[s->n++] = line;
}

static void cmd_import_progress(const struct accounts_import_report *r,
				void *arg)
{
	(void)arg;
	fprintf(stderr,
		"import-chatmail: %u scanned, %u imported, %u updated, "
		"%u skipped\n",
		r->scanned, r->imported, r->updated, r->skipped);
}

static int cmd_import_chatmail_run(int argc, char **argv,
				   const struct accounts_policy *base,
				   const char *base_data_dir)
{
	const char *data_dir = CMD_IMPORT_DATA_DIR, *mdir = NULL;
	struct accounts_import_report rep;
	struct accounts_import_opts opts;
	struct cmd_import_skips skips;
	struct accounts_policy pol;
	struct accounts *a = NULL;
	int ret;

	pol = *base;
	data_dir = base_data_dir;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc) {
			data_dir = argv[++i];
		} else if (strcmp(argv[i], "--mail-domain") == 0 &&
			   i + 1 < argc) {
			pol.mail_domain = argv[++i];
		} else if (argv[i][0] != '-' && mdir == NULL) {
			mdir = argv[i];
		} else {
			mdir = NULL;
			break;
		}
	}
	if (mdir == NULL) {
		fprintf(stderr,
			"usage: ringmail import-chatmail [--config FILE] "
			"[--data-dir DIR] "
			"[--mail-domain D] MAILBOXES_DIR\n"
			"  MAILBOXES_DIR is chatmail's mailboxes_dir, e.g. "
			"/home/vmail/mail/<domain>\n");
		return 2;
	}
	ret = accounts_open(data_dir, &pol, &a);
	if (ret < 0) {
		fprintf(stderr,
			"ringmail: cannot open the accounts in %s: %s\n",
			data_dir, strerror(-ret));
		return 1;
	}
	memset(&skips, 0, sizeof(skips));
	memset(&opts, 0, sizeof(opts));
	opts.note = cmd_import_note;
	opts.progress = cmd_import_progress;
	opts.progress_every = CMD_IMPORT_PROGRESS_EVERY;
	opts.arg = &skips;
	ret = accounts_import_chatmail(a, mdir, &opts, &rep);
	accounts_close(&a);

	printf("imported %u, updated %u, skipped %u (%u unchanged, %u device "
	       "tokens added or refreshed)\n",
	       rep.imported, rep.updated, rep.skipped, rep.unchanged,
	       rep.tokens);
	for (size_t i = 0; i < skips.n; i++) {
		printf("skipped %s\n", skips.lines[i]);
		free(skips.lines[i]);
	}
	free(skips.lines);
	if (ret < 0) {
		fprintf(stderr, "ringmail: import-chatmail %s: %s\n", mdir,
			strerror(-ret));
		return 1;
	}
	return fflush(stdout) == 0 && !skips.oom ? 0 : 1;
}

/* `--config FILE` (or $RINGMAIL_CONFIG): see cmd_accounts_run. */
int cmd_import_chatmail(int argc, char **argv)
{
	return cmd_accounts_run(argc, argv, CMD_IMPORT_DATA_DIR,
				cmd_import_chatmail_run);
}
