/*
 * cartosync — error codes and the last error message.
 *
 * Every library function that can fail returns 0 (or a non-negative count)
 * on success and one of the negative CS_E* codes below on failure.  The
 * function that detects a failure records a one-line, lowercase message
 * naming the subject, readable with cs_error_last() until the next failure
 * on the same thread.  Callers propagate the code and do not overwrite the
 * message with a vaguer one.
 */
#ifndef CARTOSYNC_ERROR_H
#define CARTOSYNC_ERROR_H

#include <stdarg.h>

enum {
	CS_OK = 0,
	CS_ERROR = -1,     /* a system or library failure (I/O, memory) */
	CS_EINVALID = -2,  /* the input is malformed or breaks a rule */
	CS_ENOTFOUND = -3, /* the named thing does not exist */
	CS_EEXISTS = -4,   /* the thing to create exists already */
	CS_ECONFLICT = -5, /* a compare-and-swap lost: somebody wrote first */
	CS_EVERIFY = -6,   /* a signature, authority or history check failed */
	CS_EPERM = -7,     /* refused by policy or by file permissions */
	CS_ELIMIT = -8,    /* a size, depth or count limit was exceeded */
};

/* The message of the last failure on this thread, never NULL. */
const char *cs_error_last(void);

/* A short name of an error code ("invalid input", "not found", ...). */
const char *cs_error_name(int code);

/*
 * Record a failure: sets the thread's message from the printf-style format
 * and returns `code`, so that `return cs_error_set(CS_EINVALID, ...)` reads
 * naturally.
 */
int cs_error_set(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prefix the current message with "<prefix>: ", returning `code`. */
int cs_error_prefix(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Forget the last message. */
void cs_error_clear(void);

#endif
