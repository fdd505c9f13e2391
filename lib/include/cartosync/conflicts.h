/*
 * cartosync — the review queue: open conflicts and their resolution.
 *
 * docs/merge.md "Conflict files".  A merge that meets two different
 * changes of one field writes conflicts/<xx>/<id>.json for the record:
 *
 *   {"id": ..., "record": "records/...json",
 *    "conflicts": {"/name": {"base": v, "candidates":
 *                     [{"edit": "<commit>", "value": v1}, ...]}},
 *    "resolved": [{"by": org, "field": "/name", "on": "<commit>",
 *                  "value": v}]}
 *
 * A candidate or base without "value" stands for "absent" (a deletion).
 * A resolution is a signed edit that writes the chosen values into the
 * record, removes the fields from "conflicts" and adds a marker per field
 * to "resolved" ("on": the commit the resolution was made on).
 */
#ifndef CARTOSYNC_CONFLICTS_H
#define CARTOSYNC_CONFLICTS_H

#include <jansson.h>

#include "cartosync/node.h"
#include "cartosync/oid.h"
#include "cartosync/repo.h"

/* The conflict file of a record: conflicts/<xx>/<id>.json, malloc'd. */
char *cs_conflict_path(const char *record_id);

/*
 * The conflict documents of `commit` that have open conflicts, as a new
 * JSON array in path order.
 */
int cs_conflicts_list(json_t **out, cs_repo *repo, const cs_oid *commit);

/* The conflict document of a record (CS_ENOTFOUND if none). */
int cs_conflict_get(json_t **out, cs_repo *repo, const cs_oid *commit,
		    const char *record_id);

/*
 * The choices that take, for every open field, the candidate written by an
 * edit of organisation `org`: a new object {pointer: {"value": v} or {}}.
 * CS_ENOTFOUND names a field where `org` has no candidate.
 */
int cs_conflict_take(json_t **choices, cs_repo *repo, const json_t *doc,
		     const char *org);

/*
 * Resolve on top of `base`: `choices` maps each field to resolve to
 * {"value": v} (or {} for "absent").  Writes the record with the chosen
 * values and the conflict file without those open fields and with a marker
 * each, as one edit signed by the node (cs_node_commit: the policy decides
 * who may).  CS_EINVALID names a field that has no open conflict.
 */
int cs_conflict_resolve(cs_oid *out, int *in_main, cs_node *node,
			const cs_oid *base, const char *record_id,
			const json_t *choices);

#endif
