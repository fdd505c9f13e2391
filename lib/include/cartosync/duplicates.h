/*
 * cartosync — suspected duplicates: records of different owners that
 * describe the same actor, place or service under different ids.
 *
 * docs/merge.md "Suspected duplicates".  Two records are a suspected pair
 * when all of these hold:
 *
 *   - both are organizations, both locations or both services;
 *   - their x_owner differs ("shared" is an owner like any other);
 *   - neither is retired, nor merged into another record;
 *   - their names are alike: the Jaccard index of their name tokens
 *     (cs_duplicates_name_key) is at least CS_DUPLICATES_SIMILAR_NUM /
 *     CS_DUPLICATES_SIMILAR_DEN;
 *   - they share a place: two of their points at most
 *     CS_DUPLICATES_NEAR_METRES apart (haversine), or the same commune
 *     (x_admin.adm2 equal and x_admin.adm3 equal once normalised).  A
 *     location's places are its own coordinates and commune; a service's,
 *     those of the locations its service_at_locations name; an
 *     organization's, those of the locations whose organization_id is its
 *     id.  A record without a place is never suspected;
 *   - the coordinator has not marked the pair distinct.
 *
 * The coordinator's decisions live in consortium/duplicates.json:
 *
 *   {"distinct": [["<id a>", "<id b>"], ...],   each pair and the list sorted
 *    "merged": {"<retired id>": "<kept id>", ...}}
 *
 * Finding pairs is a pure function of a commit's tree and runs on the
 * node that asks; nothing of it is stored or verified.
 */
#ifndef CARTOSYNC_DUPLICATES_H
#define CARTOSYNC_DUPLICATES_H

#include <jansson.h>

#include "cartosync/node.h"
#include "cartosync/oid.h"
#include "cartosync/repo.h"

#define CS_PATH_DUPLICATES "consortium/duplicates.json"

/* Names are alike from a Jaccard index of 3/5 = 0.6. */
#define CS_DUPLICATES_SIMILAR_NUM 3
#define CS_DUPLICATES_SIMILAR_DEN 5

/* Places are shared from this distance down. */
#define CS_DUPLICATES_NEAR_METRES 300.0

/* A limit on the work of one search: index entries looked at. */
#define CS_DUPLICATES_MAX_CHECKS 20000000

/*
 * The tokens a name is compared by, space-separated in order of first
 * appearance, each once: the name normalised (lower case, accents and
 * Arabic vowel marks removed, punctuation to spaces), a final "s" removed
 * from tokens of four letters or more (French plurals), and the common
 * words dropped (articles and prepositions: a au aux d de des du en et l
 * la le les par pour sur un une, and and for in of the; al el; and the
 * generic kinds association center centre).  A name of only such words
 * has no tokens and is never alike another.  malloc'd, NULL when out of
 * memory.
 *
 *   "Centre d'Hébergement d'urgence — OUJDA"  ->  "hebergement urgence oujda"
 */
char *cs_duplicates_name_key(const char *name);

/* The Jaccard index of the token sets of two names, in [0, 1]; 0 when
 * either has no tokens or memory runs out. */
double cs_duplicates_name_similarity(const char *a, const char *b);

/*
 * The suspected pairs among `records` (a JSON array of records, borrowed;
 * anything that is not a record of the three types is ignored) given the
 * decisions `decisions` (NULL: none).  *out owns a new array of
 *
 *   {"ids": [a, b], "type": t, "owners": [owner of a, owner of b],
 *    "reasons": ["names \"…\" and \"…\" are alike (0.83)",
 *                "120 m apart", "same commune \"Oujda\""],
 *    "score": 0.83}
 *
 * with a < b, sorted by ids: the same records give the same array in any
 * order.  "score" is the names' Jaccard index rounded to 2 decimals.
 * CS_ELIMIT when the search would look at more than
 * CS_DUPLICATES_MAX_CHECKS index entries (a map where thousands of records
 * share a name and a place).
 */
int cs_duplicates_find_in(json_t **out, const json_t *records,
			  const json_t *decisions);

/*
 * The same for the records and decisions of `commit`: reads the
 * organization, location and service folders only.  Records that do not
 * parse are skipped (verification reports them).
 */
int cs_duplicates_find(json_t **out, cs_repo *repo, const cs_oid *commit);

/*
 * The decisions as of `commit`, cleaned as cs_duplicates_decisions_clean()
 * does: {"distinct": [], "merged": {}} when the file is absent.
 */
int cs_duplicates_decisions(json_t **out, cs_repo *repo,
			    const cs_oid *commit);

/*
 * A new decisions document holding what `doc` (borrowed, may be NULL)
 * holds that has the documented shape: pairs of two different record ids,
 * sorted, each once, the list sorted; merged entries between two
 * different record ids.  Everything else is dropped.
 */
json_t *cs_duplicates_decisions_clean(const json_t *doc);

/*
 * The merge of consortium/duplicates.json (docs/merge.md): the union of
 * `ours` and `theirs`, cleaned; a retired id that the sides merged into
 * different records keeps the smaller id.  `base` is not needed: decisions
 * only accumulate.  Never fails on content, whatever its shape; *out owns
 * a new object.  CS_ERROR only when out of memory.
 */
int cs_duplicates_decisions_merge(json_t **out, const json_t *base,
				  const json_t *ours, const json_t *theirs);

/* The record `id` was merged into per `decisions`, borrowed, or NULL. */
const char *cs_duplicates_merged_into(const json_t *decisions,
				      const char *id);

/*
 * Mark records `a` and `b` (in either order) as distinct on top of `base`:
 * a signed edit of consortium/duplicates.json (see cs_node_commit()).
 * CS_EPERM unless the policy lets this node write the decisions (by
 * default: the coordinator); CS_ENOTFOUND names a missing record;
 * CS_EINVALID for a record paired with itself; CS_EEXISTS when the pair
 * is marked distinct already (nothing is committed).
 */
int cs_duplicates_mark_distinct(cs_oid *out, int *in_main, cs_node *node,
				const cs_oid *base, const char *a,
				const char *b);

/*
 * Merge record `other` into record `keep` on top of `base`: one signed
 * edit that records other -> keep in the decisions and retires `other`
 * (x_status "retired"); `keep` is not changed and references to `other`
 * are not rewritten (the decision is the redirect).  CS_EPERM as above;
 * CS_ENOTFOUND names a missing record; CS_EINVALID when the records are
 * one, of different types, `keep` is retired or merged into another
 * record, or `other` is merged into another record already; CS_EEXISTS
 * when `other` is merged into `keep` already.
 */
int cs_duplicates_mark_merged(cs_oid *out, int *in_main, cs_node *node,
			      const cs_oid *base, const char *keep,
			      const char *other);

#endif
