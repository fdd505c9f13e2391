/*
 * cartosync — the map: records as of a commit, and edits to them.
 *
 * The engine behind the command's and the daemon's record operations:
 * find a record by id, list records with filters, and write a record or
 * remove one on top of the commit the editor read from.
 */
#ifndef CARTOSYNC_MAP_H
#define CARTOSYNC_MAP_H

#include <jansson.h>

#include "cartosync/node.h"
#include "cartosync/oid.h"
#include "cartosync/repo.h"

/*
 * The owners that have records in `tree`: the folders under records/.
 * *names is a malloc'd array of *n malloc'd names (cs_map_owners_free).
 */
int cs_map_owners(char ***names, size_t *n, cs_repo *repo,
		  const cs_oid *tree);
void cs_map_owners_free(char **names, size_t n);

/*
 * Find record `id` in the tree of `commit`.  *record owns a new reference,
 * *path (may be NULL) is malloc'd.  CS_ENOTFOUND "no record \"<id>\"",
 * CS_EINVALID if `id` is not a UUID (so an id never becomes a path).
 */
int cs_map_find(json_t **record, char **path, cs_repo *repo,
		const cs_oid *commit, const char *id);

typedef struct {
	const char *type;     /* x_record_type */
	const char *owner;    /* x_owner */
	const char *status;   /* x_status */
	const char *region;   /* an ISO 3166-2:MA code found as any "adm1" */
	const char *province; /* an HCP code found as any "adm2" */
	const char *category; /* a code in any field named *categor* */
	const char *text;     /* case-insensitive, in any text */
} cs_map_filter;

/* Whether a record matches every set field of the filter. */
int cs_map_matches(const json_t *record, const cs_map_filter *filter);

/*
 * The records of `commit` that match `filter`, as a new JSON array in path
 * order.  Records that do not parse are skipped (verification reports
 * them).
 */
int cs_map_list(json_t **out, cs_repo *repo, const cs_oid *commit,
		const cs_map_filter *filter);

/*
 * Write `record` (new or replacing the one with its id) on top of `base`,
 * signed by the node: validated against the schemas in force at `base`,
 * stored canonical at its path.  When the id exists at another path (its
 * owner or type changed), that file is removed.  See cs_node_commit().
 */
int cs_map_put(cs_oid *out, int *in_main, cs_node *node, const cs_oid *base,
	       const json_t *record, const char *message);

/* Remove record `id` on top of `base`.  CS_ENOTFOUND if absent. */
int cs_map_remove(cs_oid *out, int *in_main, cs_node *node,
		  const cs_oid *base, const char *id, const char *message);

/*
 * Whether publishing `record` needs a confirmation under the policy as of
 * `commit` (a sensitive category or population): returns 1 and sets *why
 * (borrowed, the code that makes it sensitive), 0, or an error.
 */
int cs_map_publish_sensitive(const char **why, cs_repo *repo,
			     const cs_oid *commit, const json_t *record);

#endif
