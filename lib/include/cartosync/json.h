/*
 * cartosync — strict JSON parsing and the canonical form of stored files.
 *
 * Canonical form (docs/record-model.md, "Canonical JSON"): UTF-8; object keys
 * sorted by their UTF-8 bytes; two-space indentation, one member or element
 * per line, ": " after a key; "{}" and "[]" for empty containers; LF line
 * ends and one final newline; strings escape only '"', '\\' and control
 * characters (\b \f \n \r \t, others as \u00xx); integers written in
 * decimal; a number with a fraction is rounded to 6 decimals and written
 * without trailing zeros (an integral result is written as an integer).
 * Re-encoding a canonical file gives the same bytes.
 */
#ifndef CARTOSYNC_JSON_H
#define CARTOSYNC_JSON_H

#include <stddef.h>
#include <jansson.h>

/* Limits on what a user or a peer controls. */
#define CS_JSON_MAX_BYTES (256 * 1024)
#define CS_JSON_MAX_DEPTH 32

/*
 * Parse `len` bytes of JSON.  Rejects input over CS_JSON_MAX_BYTES or nested
 * deeper than CS_JSON_MAX_DEPTH (CS_ELIMIT), duplicate object keys, NUL
 * characters, invalid UTF-8, a non-object or non-array top level, trailing
 * data, numbers that are not finite or whose magnitude reaches 1e15
 * (CS_EINVALID).  `name` (a file name, may be NULL) prefixes the message:
 * "records/x.json: line 3, column 5: duplicate object key".
 * On success *out owns a new reference.
 */
int cs_json_parse(json_t **out, const char *buf, size_t len, const char *name);

/* Read and parse a file with cs_json_parse(); the name is the path. */
int cs_json_load_file(json_t **out, const char *path);

/*
 * Encode `value` in canonical form.  *out is a NUL-terminated malloc'd
 * buffer of *outlen bytes (free with free()).  Fails with CS_EINVALID for a
 * value the canonical form cannot hold (a real that is not finite, or an
 * integer beyond +/-2^53).
 */
int cs_json_canonical(char **out, size_t *outlen, const json_t *value);

/* cs_json_parse() then cs_json_canonical(). */
int cs_json_canonicalize(char **out, size_t *outlen, const char *buf,
			 size_t len, const char *name);

/*
 * Parse `len` bytes that must be in canonical form: cs_json_parse(), and
 * encoding the value must give the same bytes.  Fails like cs_json_parse(),
 * or with CS_EINVALID "name: not in canonical form (sorted keys, 2-space
 * indent, final newline)".  Canonical text is read in one pass.
 */
int cs_json_parse_canonical(json_t **out, const char *buf, size_t len,
			    const char *name);

/*
 * The one-pass reader of cs_json_parse_canonical(): 1 and *out (a new
 * reference) when it recognises `buf` as canonical, else 0.  It gives up on
 * a \u escape, an escaped key and nesting near CS_JSON_MAX_DEPTH, which
 * only the general path judges; what it accepts, cs_json_parse() accepts
 * as the same value.
 */
int cs_json_read_canonical(json_t **out, const char *buf, size_t len);

/* Whether buf holds exactly the canonical encoding of what it parses to. */
int cs_json_is_canonical(const char *buf, size_t len);

/*
 * The value at a JSON pointer (RFC 6901: "/a/0/b", "~0" and "~1" escapes),
 * borrowed, or NULL.  "" is the value itself.
 */
json_t *cs_json_pointer_get(const json_t *root, const char *pointer);

/*
 * Set the member or element at `pointer` to `value` (stolen; NULL removes
 * it).  The parent must exist.  Returns 0, or CS_EINVALID if it does not.
 */
int cs_json_pointer_set(json_t *root, const char *pointer, json_t *value);

/* Depth of a value: a scalar is 0, [] and {} are 1. */
int cs_json_depth(const json_t *value);

#endif
