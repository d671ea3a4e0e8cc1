/* core/log: leveled key=value log lines to stderr (journald collects them). */
#ifndef RINGMAIL_CORE_LOG_H
#define RINGMAIL_CORE_LOG_H

#include <stdarg.h>
#include <stdint.h>
#include <inttypes.h>

enum log_level {
	LOG_LV_FATAL = 0,
	LOG_LV_ERR,
	LOG_LV_WARN,
	LOG_LV_INFO,
	LOG_LV_DEBUG,
};

/* Lines below @lv are dropped. Default: LOG_LV_INFO. Thread-safe. */
void log_set_level(enum log_level lv);
enum log_level log_get_level(void);
/* Parse "error|warn|info|debug"; returns -1 on an unknown name. */
int log_level_parse(const char *name, enum log_level *lv_r);

/* Write one line "<level>: <message>\n" atomically (single write(2)). */
void log_msg(enum log_level lv, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level lv, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Log at FATAL and exit(1). Allowed only during start-up. */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)))
__attribute__((noreturn));

#define log_err(...)  log_msg(LOG_LV_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LV_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LV_INFO, __VA_ARGS__)
#define log_debug(...)                                      \
	do {                                                \
		if (log_get_level() >= LOG_LV_DEBUG)        \
			log_msg(LOG_LV_DEBUG, __VA_ARGS__); \
	} while (0)

/* Connection-scoped line: "<16-hex id> <message>". */
#define log_conn(lv, id, fmt, ...) \
	log_msg(lv, "%016" PRIx64 " " fmt, (uint64_t)(id), ##__VA_ARGS__)

#endif
