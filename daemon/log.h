/*
 * cartosyncd logging: one line per event on stderr, with a level.
 */
#ifndef CARTOSYNCD_LOG_H
#define CARTOSYNCD_LOG_H

enum { LOG_ERROR = 0, LOG_WARNING, LOG_INFO, LOG_DEBUG };

void log_set_level(int level);
int log_level(void);
void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
