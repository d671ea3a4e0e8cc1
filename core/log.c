/* core/log: leveled log lines to stderr. */
#include "core/log.h"

/* system */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile int log_level_cur = LOG_LV_INFO;

static const char *const log_level_names[] = {
	[LOG_LV_FATAL] = "fatal", [LOG_LV_ERR] = "error",
	[LOG_LV_WARN] = "warn",   [LOG_LV_INFO] = "info",
	[LOG_LV_DEBUG] = "debug",
};

void log_set_level(enum log_level lv)
{
	__atomic_store_n(&log_level_cur, (int)lv, __ATOMIC_RELAXED);
}

enum log_level log_get_level(void)
{
	return (enum log_level)__atomic_load_n(&log_level_cur,
					       __ATOMIC_RELAXED);
}

int log_level_parse(const char *name, enum log_level *lv_r)
{
	for (size_t i = 0;
	     i < sizeof(log_level_names) / sizeof(*log_level_names); i++) {
		if (strcmp(name, log_level_names[i]) == 0) {
			*lv_r = (enum log_level)i;
			return 0;
		}
	}
	if (strcmp(name, "err") == 0) {
		*lv_r = LOG_LV_ERR;
		return 0;
	}
	return -1;
}

void log_vmsg(enum log_level lv, const char *fmt, va_list ap)
{
	char line[2048];
	int n, m;

	if ((int)lv > __atomic_load_n(&log_level_cur, __ATOMIC_RELAXED))
		return;
	n = snprintf(line, sizeof(line), "%s: ", log_level_names[lv]);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	if ((size_t)(n + m) > sizeof(line) - 2)
		m = (int)sizeof(line) - 2 - n;
	line[n + m] = '\n';
	/* One write per line keeps lines from different threads whole. */
	if (write(STDERR_FILENO, line, (size_t)(n + m + 1)) < 0) {
		/* nothing sensible left to do */
	}
}

void log_msg(enum log_level lv, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lv, fmt, ap);
	va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LV_FATAL, fmt, ap);
	va_end(ap);
	exit(1);
}
