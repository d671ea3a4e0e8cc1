/* app/cmd_user: `ringmail user [--data-dir DIR] [--mail-domain D]
 * list | show ADDR | delete ADDR | allow-cleartext ADDR | enforce-e2ee
 * ADDR` over the accounts store (core/accounts). Safe while `ringmail
 * serve` runs: LMDB serializes the writers of both processes. */
#include "app/cmds.h"

/* system */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* project */
#include "app/cmds.h"
#include "core/accounts/accounts.h"
#include "core/config.h"

/* TODO: read data_dir, mail_domain and the account limits from
 * chatmail.ini with core/config.h's config_load (--config FILE) once the
 * commands share the config plumbing; until then the options below. */
#define CMD_USER_DATA_DIR "/var/lib/ringmail"

static int cmd_user_usage(void)
{
	fprintf(stderr,
		"usage: ringmail user [--config FILE] [--data-dir DIR] "
		"[--mail-domain D] "
		"<command>\n"
		"  list                  every address, one per line\n"
		"  show ADDR             the account's record\n"
		"  delete ADDR           remove the account and its device "
		"tokens\n"
		"  allow-cleartext ADDR  accept unencrypted incoming mail\n"
		"  enforce-e2ee ADDR     refuse unencrypted incoming mail "
		"(default)\n");
	return 2;
}

static int cmd_user_list_cb(const char *addr, const struct accounts_record *r,
			    void *arg)
{
	(void)r;
	(void)arg;
	return printf("%s\n", addr) < 0 ? -EIO : 0;
}

static void cmd_user_time(const char *label, int64_t t, bool day)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char buf[64];

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL) {
		printf("%-20s unknown\n", label);
		return;
	}
	strftime(buf, sizeof(buf), day ? "%Y-%m-%d" : "%Y-%m-%d %H:%M:%S UTC",
		 &tm);
	printf("%-20s %s\n", label, buf);
}

static int cmd_user_show(struct accounts *a, const char *addr)
{
	struct accounts_tokens *t = NULL;
	struct accounts_record r;
	const char *end;
	int ret;

	ret = accounts_lookup(a, addr, &r);
	if (ret < 0)
		return ret;
	/* Only the scheme: the hash itself stays in the store. */
	end = strchr(r.hash, '}');
	printf("%-20s %s\n", "address:", addr);
	printf("%-20s %.*s\n",
	       "password:", end != NULL ? (int)(end - r.hash + 1) : 0, r.hash);
	cmd_user_time("created:", r.created, false);
	cmd_user_time("last login:", r.last_login, true);
	printf("%-20s %s\n", "enforceE2EEincoming:",
	       r.flags & ACCOUNTS_F_ENFORCE_E2EE ? "yes" : "no");
	printf("%-20s %s\n", "allow-cleartext:",
	       r.flags & ACCOUNTS_F_ALLOW_CLEARTEXT ? "yes (operator)" : "no");
	ret = accounts_tokens_get(a, addr, (int64_t)time(NULL), &t);
	if (ret == 0)
		printf("%-20s %zu\n", "device tokens:", t->n);
	free(t);
	return ret;
}

static int cmd_user_run(int argc, char **argv,
			const struct accounts_policy *base,
			const char *base_data_dir)
{
	const char *data_dir = CMD_USER_DATA_DIR, *sub = NULL, *addr = NULL;
	struct accounts_policy pol;
	struct accounts *a = NULL;
	int ret, rc = 1;

	pol = *base;
	data_dir = base_data_dir;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
			data_dir = argv[++i];
		else if (strcmp(argv[i], "--mail-domain") == 0 && i + 1 < argc)
			pol.mail_domain = argv[++i];
		else if (strcmp(argv[i], "--help") == 0 || argv[i][0] == '-')
			return cmd_user_usage();
		else if (sub == NULL)
			sub = argv[i];
		else if (addr == NULL)
			addr = argv[i];
		else
			return cmd_user_usage();
	}
	if (sub == NULL || (strcmp(sub, "list") == 0) != (addr == NULL))
		return cmd_user_usage();
	if (strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0 &&
	    strcmp(sub, "delete") != 0 && strcmp(sub, "allow-cleartext") != 0 &&
	    strcmp(sub, "enforce-e2ee") != 0)
		return cmd_user_usage();

	ret = accounts_open(data_dir, &pol, &a);
	if (ret < 0) {
		fprintf(stderr,
			"ringmail: cannot open the accounts in %s: %s\n",
			data_dir, strerror(-ret));
		return 1;
	}
	if (strcmp(sub, "list") == 0)
		ret = accounts_iterate(a, cmd_user_list_cb, NULL);
	else if (strcmp(sub, "show") == 0)
		ret = cmd_user_show(a, addr);
	else if (strcmp(sub, "delete") == 0)
		ret = accounts_delete(a, addr);
	else if (strcmp(sub, "allow-cleartext") == 0)
		ret = accounts_set_flag(a, addr, ACCOUNTS_F_ALLOW_CLEARTEXT);
	else
		ret = accounts_set_flag(a, addr, ACCOUNTS_F_ENFORCE_E2EE);

	if (ret == -ENOENT && addr != NULL) {
		fprintf(stderr, "ringmail: no such account: %s\n", addr);
	} else if (ret < 0) {
		fprintf(stderr, "ringmail: user %s: %s\n", sub, strerror(-ret));
	} else {
		if (strcmp(sub, "delete") == 0)
			printf("deleted %s (its maildir is left in place)\n",
			       addr);
		else if (strcmp(sub, "allow-cleartext") == 0)
			printf("%s accepts unencrypted incoming mail\n", addr);
		else if (strcmp(sub, "enforce-e2ee") == 0)
			printf("%s refuses unencrypted incoming mail\n", addr);
		rc = 0;
	}
	accounts_close(&a);
	if (fflush(stdout) != 0)
		rc = 1;
	return rc;
}

/* `--config FILE` (or $RINGMAIL_CONFIG): see cmd_accounts_run. */
int cmd_user(int argc, char **argv)
{
	return cmd_accounts_run(argc, argv, CMD_USER_DATA_DIR, cmd_user_run);
}
