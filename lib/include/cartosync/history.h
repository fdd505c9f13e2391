/*
 * cartosync — the held history, and main as a function of it.
 *
 * docs/merge.md.  main is a pure function of the set of edit commits a
 * node holds: take the tips (held edits that no other held edit descends
 * from), order them by commit id, and fold them with merge commits:
 *
 *     main = merge(...merge(merge(t1, t2), t3)..., tn)
 *
 * where merge(a, b) is a commit whose parents are a and b in canonical
 * (byte) order, whose tree is the three-way merge of their trees against
 * the base — the fold of the tips of the edits both hold — and whose
 * identity, message and time are fixed (docs/protocol.md §2).  Two nodes
 * that hold the same edits compute the same main, whatever order the
 * histories arrived in.
 */
#ifndef CARTOSYNC_HISTORY_H
#define CARTOSYNC_HISTORY_H

#include <stddef.h>

#include "cartosync/oid.h"
#include "cartosync/repo.h"

typedef struct cs_history cs_history;

/*
 * Load the commits reachable from `heads`.  Heads should be verified
 * first (cs_verify): this module trusts what it reads.
 */
int cs_history_load(cs_history **out, cs_repo *repo, const cs_oid *heads,
		    size_t count);

void cs_history_free(cs_history *history);

/* The tips of the held edits, sorted by id; *out is malloc'd. */
int cs_history_tips(cs_oid **out, size_t *count, cs_history *history);

/*
 * The merge of two commits of the history (or made by it): writes the
 * merge commit, its tree and any merged file, and returns its id.  When one
 * is an ancestor of the other, the result is the descendant (no commit).
 */
int cs_history_merge(cs_oid *out, cs_history *history, const cs_oid *a,
		     const cs_oid *b);

/* The fold of the tips: what main must be.  CS_ENOTFOUND if no edits. */
int cs_history_fold(cs_oid *out, cs_history *history);

/* Merges computed, and conflicts found, since the history was loaded. */
size_t cs_history_merges_made(const cs_history *history);
size_t cs_history_conflicts_found(const cs_history *history);

#endif
