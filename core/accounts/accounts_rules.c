/* core/accounts/accounts_rules: who may log in, and who may be created (spec C.1,
 * C.2). Login names pass Dovecot's checks first (auth_username_chars,
 * then auth_username_format = %Lu), then chatmail's lookup filter
 * (address ends with "@<mail_domain>", no '/'), then, for a new address
 * only, chatmail's is_allowed_to_create and has_sufficient_resources in
 * their order. */
#include "core/accounts/accounts-int.h"

/* system */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

/* project */
#include "core/log.h"

/* Dovecot's auth_username_chars as chatmail sets it. */
static const char accounts_username_chars[] =
	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567890.-_@[]";

void accounts_policy_defaults(struct accounts_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->password_min_length = 9;
	p->username_min_length = 9;
	p->username_max_length = 9;
	p->max_load_1m = 5.0;
	p->min_available_memory_mb = 200;
	p->min_free_disk_mb = 1024;
	p->nocreate_file = "/etc/chatmail-nocreate";
}

int accounts_addr_normalize(const char *in, char *out, size_t outsz)
{
	size_t len = strlen(in);

	if (len == 0 || len > ACCOUNTS_ADDR_MAX || len >= outsz)
		return -1;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (strchr(accounts_username_chars, c) == NULL)
			return -1;
		out[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	out[len] = '\0';
	return 0;
}

bool accounts_addr_is_local(const struct accounts_policy *p, const char *addr)
{
	size_t alen = strlen(addr), dlen;

	if (p->mail_domain == NULL || strchr(addr, '/') != NULL)
		return false;
	dlen = strlen(p->mail_domain);
	if (alen < dlen + 1)
		return false;
	return addr[alen - dlen - 1] == '@' &&
	       memcmp(addr + alen - dlen, p->mail_domain, dlen) == 0;
}

size_t accounts_utf8_len(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			n++;
	}
	return n;
}

static int accounts_refuse(struct accounts_auth_info *info,
			   enum accounts_reason code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int accounts_refuse(struct accounts_auth_info *info,
			   enum accounts_reason code, const char *fmt, ...)
{
	va_list ap;

	info->code = code;
	va_start(ap, fmt);
	vsnprintf(info->reason, sizeof(info->reason), fmt, ap);
	va_end(ap);
	return -1;
}

static bool accounts_localpart_chars_ok(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* has_sufficient_resources: a limit whose reading failed is ignored. */
static int accounts_rules_resources(const struct accounts_policy *p,
				    struct accounts_auth_info *info)
{
	struct accounts_sysinfo si = {-1.0, -1, -1};
	accounts_sysinfo_fn *fn = p->sysinfo;

	if (fn == NULL)
		fn = accounts_sysinfo_read;
	fn(p->sysinfo_ctx, p->mailboxes_dir, &si);

	if (si.load1 < 0)
		log_warn("accounts: cannot read the load average; "
			 "max_load_1m not checked");
	else if (si.load1 > p->max_load_1m)
		accounts_refuse(info, ACCOUNTS_R_LOAD, "load avg %.2f > %.2f",
				si.load1, p->max_load_1m);
	if (info->code == ACCOUNTS_R_NONE) {
		if (si.mem_avail_mb < 0)
			log_warn("accounts: cannot read available memory; "
				 "min_available_memory not checked");
		else if (si.mem_avail_mb < p->min_available_memory_mb)
			accounts_refuse(
				info, ACCOUNTS_R_MEMORY,
				"available memory %" PRId64 "M < %" PRId64 "M",
				si.mem_avail_mb, p->min_available_memory_mb);
	}
	if (info->code == ACCOUNTS_R_NONE) {
		if (si.disk_free_mb < 0)
			log_warn("accounts: cannot read free disk space of "
				 "'%s'; min_free_disk_space not checked",
				 p->mailboxes_dir != NULL ? p->mailboxes_dir
							  : "");
		else if (si.disk_free_mb < p->min_free_disk_mb)
			accounts_refuse(info, ACCOUNTS_R_DISK,
					"free disk space %" PRId64
					"M < %" PRId64 "M",
					si.disk_free_mb, p->min_free_disk_mb);
	}
	if (info->code == ACCOUNTS_R_NONE)
		return 0;
	log_warn("registration rejected: %s", info->reason);
	return -1;
}

int accounts_rules_check(const struct accounts_policy *p, const char *addr,
			 const char *password, size_t pwlen,
			 struct accounts_auth_info *info)
{
	const char *at = strchr(addr, '@');
	struct stat st;
	size_t llen;

	info->code = ACCOUNTS_R_NONE;
	info->reason[0] = '\0';
	/* 1. the nocreate file */
	if (p->nocreate_file != NULL && p->nocreate_file[0] != '\0' &&
	    stat(p->nocreate_file, &st) == 0) {
		log_warn("blocked account creation because '%s' exists.",
			 p->nocreate_file);
		return accounts_refuse(info, ACCOUNTS_R_NOCREATE, "'%s' exists",
				       p->nocreate_file);
	}
	/* 2. password length, in characters */
	if (accounts_utf8_len(password, pwlen) < p->password_min_length) {
		log_warn("Password needs to be at least %u characters long",
			 p->password_min_length);
		return accounts_refuse(info, ACCOUNTS_R_PASSWORD_SHORT,
				       "password shorter than %u",
				       p->password_min_length);
	}
	/* 3. exactly one '@' */
	if (at == NULL || strchr(at + 1, '@') != NULL) {
		log_warn("user '%s' is not a proper e-mail address", addr);
		return accounts_refuse(info, ACCOUNTS_R_ADDR_FORMAT,
				       "not a proper e-mail address");
	}
	/* 4. localpart length */
	llen = accounts_utf8_len(addr, (size_t)(at - addr));
	if (llen < p->username_min_length || llen > p->username_max_length) {
		log_warn("localpart %.*s has to be between %u and %u chars "
			 "long",
			 (int)(at - addr), addr, p->username_min_length,
			 p->username_max_length);
		return accounts_refuse(info, ACCOUNTS_R_LOCALPART_LEN,
				       "localpart length %zu not in %u..%u",
				       llen, p->username_min_length,
				       p->username_max_length);
	}
	/* 5. ^[a-z0-9._-]+$ */
	if (!accounts_localpart_chars_ok(addr, (size_t)(at - addr))) {
		log_warn("localpart %.*s contains invalid characters",
			 (int)(at - addr), addr);
		return accounts_refuse(info, ACCOUNTS_R_LOCALPART_CHARS,
				       "localpart has invalid characters");
	}
	/* 6. load, memory, disk */
	return accounts_rules_resources(p, info);
}

/* MemAvailable from /proc/meminfo in MiB, or -1. */
static int64_t accounts_meminfo_available_mb(void)
{
	char line[256];
	long long kb = -1;
	FILE *f = fopen("/proc/meminfo", "re");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "MemAvailable:", 13) == 0) {
			char *end;

			errno = 0;
			kb = strtoll(line + 13, &end, 10);
			if (errno != 0 || end == line + 13 || kb < 0)
				kb = -1;
			break;
		}
	}
	fclose(f);
	return kb < 0 ? -1 : (int64_t)(kb / 1024);
}

void accounts_sysinfo_read(void *ctx, const char *mailboxes_dir,
			   struct accounts_sysinfo *r)
{
	struct statvfs sv;
	double load[1];

	(void)ctx;
	r->load1 = getloadavg(load, 1) == 1 ? load[0] : -1.0;
	r->mem_avail_mb = accounts_meminfo_available_mb();
	r->disk_free_mb = -1;
	if (mailboxes_dir != NULL && statvfs(mailboxes_dir, &sv) == 0)
		r->disk_free_mb = (int64_t)(((uint64_t)sv.f_bavail *
					     (uint64_t)sv.f_frsize) >>
					    20);
}
