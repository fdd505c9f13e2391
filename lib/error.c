#include <stdio.h>
#include <string.h>

#include "cartosync/error.h"

#define MESSAGE_MAX 1024

static _Thread_local char last_message[MESSAGE_MAX];

const char *
cs_error_last(void)
{
	return last_message[0] ? last_message : "unknown error";
}

const char *
cs_error_name(int code)
{
	switch (code) {
	case CS_OK:
		return "success";
	case CS_EINVALID:
		return "invalid input";
	case CS_ENOTFOUND:
		return "not found";
	case CS_EEXISTS:
		return "already exists";
	case CS_ECONFLICT:
		return "concurrent update";
	case CS_EVERIFY:
		return "verification failed";
	case CS_EPERM:
		return "not permitted";
	case CS_ELIMIT:
		return "limit exceeded";
	default:
		return "error";
	}
}

int
cs_error_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_message, sizeof(last_message), fmt, ap);
	va_end(ap);
	return code;
}

int
cs_error_prefix(int code, const char *fmt, ...)
{
	char joined[MESSAGE_MAX];
	size_t n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(joined, sizeof(joined), fmt, ap);
	va_end(ap);
	n = strlen(joined);
	if (n + 2 < sizeof(joined)) {
		memcpy(joined + n, ": ", 3);
		strncat(joined, cs_error_last(), sizeof(joined) - n - 3);
	}
	memcpy(last_message, joined, sizeof(last_message));
	return code;
}

void
cs_error_clear(void)
{
	last_message[0] = '\0';
}
