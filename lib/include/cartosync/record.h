/*
 * cartosync — service records as files.
 *
 * A record is a JSON object stored in canonical form at
 *   records/<owner>/<type>/<xx>/<id>.json
 * where <owner> is its x_owner (an organisation code, or "shared"), <type>
 * its x_record_type, <id> its lowercase UUID and <xx> the first two hex
 * digits of the id (docs/record-model.md).
 */
#ifndef CARTOSYNC_RECORD_H
#define CARTOSYNC_RECORD_H

#include <stddef.h>
#include <jansson.h>

#include "cartosync/schema.h"

#define CS_RECORD_MAX_BYTES (256 * 1024)
#define CS_OWNER_SHARED "shared"

/* The record types, NULL-terminated. */
extern const char *const cs_record_types[];

int cs_record_type_known(const char *type);

/* Whether `s` is a lowercase UUID (8-4-4-4-12 hex digits). */
int cs_uuid_valid(const char *s);

/* Write a new random (version 4) UUID and a NUL into out. */
int cs_uuid_generate(char out[37]);

/* Whether `s` is an organisation code: [a-z][a-z0-9-]{1,31}. */
int cs_org_code_valid(const char *s);

/*
 * The path of a record from its id, type and owner; *out is malloc'd.
 * CS_EINVALID names a missing or malformed field ("id \"../x\" is not a
 * UUID"), so no value can steer the path outside records/.
 */
int cs_record_path(char **out, const json_t *record);

/*
 * Split a record path.  Returns 0 and fills the malloc'd parts (any output
 * may be NULL), or CS_EINVALID if `path` is not a record path.
 */
int cs_record_path_parse(const char *path, char **owner, char **type,
			 char **id);

/*
 * Check a record: its schema (<type>.schema.json of `schemas`) and, when
 * `path` is not NULL, that the path matches its id, type and owner.
 * Failures are appended to `errors` (if not NULL); the thread's message is
 * "<name>: <pointer>: <message>" for the first.  Returns 0 or CS_EINVALID.
 */
int cs_record_check(const cs_schema_set *schemas, const json_t *record,
		    const char *path, const char *name,
		    cs_schema_errors *errors);

/*
 * Parse a stored record: size limit, strict JSON, canonical bytes required.
 * CS_ELIMIT / CS_EINVALID with "<name>: ..." messages.
 */
int cs_record_parse_stored(json_t **out, const char *buf, size_t len,
			   const char *name);

/* The record's id, type and owner (borrowed strings), or NULL. */
const char *cs_record_id(const json_t *record);
const char *cs_record_type(const json_t *record);
const char *cs_record_owner(const json_t *record);

#endif
