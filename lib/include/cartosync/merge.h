/*
 * cartosync — three-way merge of one file's JSON content.
 *
 * docs/merge.md.  These functions are pure: JSON in, JSON out, the same
 * result on every node.  The history-level merge (which commits, which
 * base, conflict files) is built on them.
 */
#ifndef CARTOSYNC_MERGE_H
#define CARTOSYNC_MERGE_H

#include <stddef.h>
#include <jansson.h>

#include "cartosync/schema.h"

/* How a field merges, declared in the schema by "x_merge". */
typedef enum {
	CS_MERGE_ATOMIC = 0, /* the default: the value as a whole */
	CS_MERGE_SET,        /* "set": an array of distinct strings */
	CS_MERGE_LATEST,     /* "latest": an object with a "date"; latest wins */
	CS_MERGE_PROTECTIVE, /* "protective": the most protective value wins */
} cs_merge_rule;

typedef struct cs_merge_rules cs_merge_rules;

/*
 * The merge rules of record type `type` ("service"), read from the
 * "x_merge" annotations of <type>.schema.json in `schemas` (following
 * $ref, properties, items, allOf/anyOf/oneOf/if/then/else).  Rules are
 * keyed by field path, every array index written as an asterisk: the
 * categories of any site of a service share one rule.  The rules keep a
 * reference to each schema document they need (to validate merged
 * records), so `schemas` may be freed first.  Returns 0, CS_ENOTFOUND (no
 * such schema, or a $ref that does not resolve), CS_EINVALID (an "x_merge"
 * that is not one of the three, two rules for one field, a $ref loop) or
 * CS_ELIMIT.
 */
int cs_merge_rules_load(cs_merge_rules **out, const cs_schema_set *schemas,
			const char *type);

void cs_merge_rules_free(cs_merge_rules *rules);

/* The rule of a field, given its JSON pointer in a record (indices
 * matched as "*").  Unknown paths are atomic. */
cs_merge_rule cs_merge_rule_of(const cs_merge_rules *rules,
			       const char *pointer);

/*
 * The order of protective values, most protective last:
 * public < consortium < coordination, normal < confidential, false < true.
 * Returns the more protective of a and b (borrowed); NULL (absent) is the
 * least protective; for values it does not know, the greater canonical
 * encoding (a fixed, symmetric choice).
 */
const json_t *cs_merge_more_protective(const json_t *a, const json_t *b);

/* One field both sides changed differently. */
typedef struct {
	char *pointer;  /* the field's JSON pointer; "" for the whole record */
	json_t *base;   /* value at the base, NULL if absent */
	json_t *ours;   /* NULL if absent (deleted) */
	json_t *theirs; /* NULL if absent (deleted) */
} cs_field_conflict;

typedef struct {
	cs_field_conflict *items;
	size_t count;
} cs_field_conflicts;

void cs_field_conflicts_clear(cs_field_conflicts *conflicts);

/*
 * Three-way merge of a record.  `base`, `ours`, `theirs` are the record at
 * the merge base and on each side, NULL where the file is absent.  On
 * success *out is the merged record (a new reference) or NULL when the
 * merged result is "no file"; conflicts are appended to `conflicts`.
 *
 * Per field (recursively through objects; arrays are values, or sets):
 *   - only one side changed it: that side's value; both made the same
 *     change: that value; a field removed by one side and unchanged by the
 *     other is removed;
 *   - both changed it differently: a conflict; the field keeps its base
 *     value (removed if the base had none), except a protective field,
 *     which takes the most protective of the candidates;
 *   - sets merge as sets: (base kept by both) + (added by either), sorted;
 *     never a conflict;
 *   - "latest" fields take the value with the later "date" (ties: the
 *     greater canonical encoding); never a conflict;
 *   - a merge of valid records stays valid: when `ours` and `theirs` are
 *     valid against the schema of `rules` and the merged record is not
 *     (a set past its maxItems or emptied below its minItems, members
 *     merged into a combination the schema forbids), the field of the
 *     failure with the least pointer keeps its base value and becomes a
 *     conflict, or if that changes nothing its parent, up to the whole
 *     record (""), which keeps the base but for protective fields, which
 *     take the most protective candidate; repeated until valid.
 * Whole-record cases:
 *   - added on one side only: taken; added on both, equal: taken; added on
 *     both, different: a conflict at "" and no file;
 *   - deleted on both: no file; deleted on one side, unchanged on the
 *     other: no file; deleted on one side and edited on the other: a
 *     conflict at "" and the deletion is kept (no file), so that a
 *     disagreement never publishes what one partner withdrew.
 * The result never depends on anything but its inputs.  `rules` NULL
 * makes every field atomic and skips the schema check; `conflicts` NULL
 * drops the list.  Conflicts are appended sorted by pointer, with copies
 * of the candidates.  Returns 0, CS_ELIMIT (nested deeper than the parser
 * allows), CS_EINVALID (a number the canonical form cannot hold) or
 * CS_ERROR.
 */
int cs_merge_record(json_t **out, const json_t *base, const json_t *ours,
		    const json_t *theirs, const cs_merge_rules *rules,
		    cs_field_conflicts *conflicts);

/*
 * Monotonic merge of consortium/members.json: organisations and keys are
 * the union; "removed" and "revoked" only grow (either side's revocation
 * wins; its reason and date from the side that revoked, or the greater
 * canonical encoding if both did); a key's role is the least privilege
 * (member) when the sides changed it differently; other fields, and
 * "root", merge three-way and keep the base on conflict (without a base,
 * the greater canonical encoding).  Keys keep the order of a side that
 * alone reordered them, else the base's; the keys that order lacks
 * follow, sorted by "key".
 * `base` may be NULL; CS_EINVALID if a side is not an object, or lists a
 * key twice or without "key".
 */
int cs_merge_members(json_t **out, const json_t *base, const json_t *ours,
		     const json_t *theirs);

/*
 * Monotonic merge of consortium/policy.json: each role's write patterns
 * merge three-way as a set, except that when both sides changed them the
 * result is their intersection (permissions narrow); visibility levels
 * (and "confidential" raises), field by field, take the most protective
 * when the sides changed them differently; publish_confirmation lists
 * merge three-way as sets, and are the union when both sides changed
 * them; other fields merge three-way and keep the base on conflict.
 * `base` may be NULL; CS_EINVALID if a side is not an object.
 */
int cs_merge_policy(json_t **out, const json_t *base, const json_t *ours,
		    const json_t *theirs);

#endif
