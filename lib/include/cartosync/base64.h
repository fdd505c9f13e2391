/*
 * cartosync — base64 (RFC 4648, standard alphabet, with padding).
 */
#ifndef CARTOSYNC_BASE64_H
#define CARTOSYNC_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Encode; *out is malloc'd and NUL-terminated.  No line breaks. */
int cs_base64_encode(char **out, const uint8_t *data, size_t len);

/*
 * Decode exactly `len` characters (no whitespace, padding required, no
 * non-zero trailing bits: one encoding per byte string).  *out is malloc'd.
 */
int cs_base64_decode(uint8_t **out, size_t *outlen, const char *text,
		     size_t len);

#endif
