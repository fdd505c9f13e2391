#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

static int max_level = LOG_INFO;

void
log_set_level(int level)
{
	max_level = level;
}

int
log_level(void)
{
	return max_level;
}

void
log_msg(int level, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warning", "info",
					    "debug"};
	char stamp[32];
	struct tm tm;
	time_t now;
	va_list ap;

	if (level > max_level)
		return;
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* The loop and the sync thread both log: one line at a time. */
	flockfile(stderr);
	fprintf(stderr, "%s cartosyncd %s: ", stamp, names[level]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	funlockfile(stderr);
}
