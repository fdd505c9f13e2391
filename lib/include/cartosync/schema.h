/*
 * cartosync — JSON Schema validation (draft-07 keywords).
 *
 * Supported keywords: type, enum, const, properties, patternProperties,
 * additionalProperties, required, propertyNames, minProperties,
 * maxProperties, dependencies, items (schema and array forms),
 * additionalItems, contains, minItems, maxItems, uniqueItems, minLength,
 * maxLength (in code points), pattern (ECMA-262 subset translated to POSIX
 * extended regular expressions: \d \w \s \D \W \S are supported), minimum,
 * maximum, exclusiveMinimum, exclusiveMaximum, multipleOf, allOf, anyOf,
 * oneOf, not, if/then/else, $ref (JSON pointers into the same document, and
 * "<file>#<pointer>" into another document of the same set), definitions and
 * $defs as ref targets.  format is an annotation and never fails validation.
 * Unknown keywords are ignored, as the specification requires.
 *
 * A set holds several schema documents that refer to each other by file
 * name ("codes.json#/$defs/region").
 */
#ifndef CARTOSYNC_SCHEMA_H
#define CARTOSYNC_SCHEMA_H

#include <stddef.h>
#include <jansson.h>

typedef struct cs_schema_set cs_schema_set;

/* One validation failure. */
typedef struct {
	char *pointer; /* JSON pointer into the instance, "" for the root */
	char *message; /* e.g. "\"MA-99\" is not one of the region codes" */
} cs_schema_error;

typedef struct {
	cs_schema_error *items;
	size_t count;
} cs_schema_errors;

int cs_schema_set_new(cs_schema_set **out);
void cs_schema_set_free(cs_schema_set *set);

/*
 * Add a schema document under `name` (e.g. "service.schema.json").  The set
 * takes a new reference to `doc`.  Fails with CS_EINVALID if the document is
 * not an object or boolean schema, or a pattern in it does not compile;
 * CS_EEXISTS if the name is taken.
 */
int cs_schema_set_add(cs_schema_set *set, const char *name, json_t *doc);

/*
 * Add `n` documents at once (the same checks; compiled once).  On failure
 * the set is left as it was.
 */
int cs_schema_set_add_all(cs_schema_set *set, size_t n,
                          const char *const *names, json_t *const *docs);

/* Add every "*.json" file of a directory, named by its file name. */
int cs_schema_set_load_dir(cs_schema_set *set, const char *dir);

/* The document added under `name`, borrowed, or NULL. */
const json_t *cs_schema_set_get(const cs_schema_set *set, const char *name);

/*
 * Validate `instance` against the document named `name` (optionally with a
 * "#pointer" suffix).  Returns 0 if valid, CS_EINVALID if not (the failures
 * are appended to `errors` when it is not NULL; the message of the first is
 * also the thread's error message, as "<pointer>: <message>"), or
 * CS_ENOTFOUND / CS_EINVALID for a name or $ref that does not resolve.
 *
 * Messages name the rule in words: for enum, the enclosing schema's "title"
 * is used when present ("is not one of the region codes"), else "is not one
 * of the allowed values".  The whole instance is checked (all failures are
 * reported, not only the first), up to 100 failures.
 */
int cs_schema_validate(const cs_schema_set *set, const char *name,
		       const json_t *instance, cs_schema_errors *errors);

void cs_schema_errors_clear(cs_schema_errors *errors);

#endif
