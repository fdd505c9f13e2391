/*
 * cartosync — bringing in other nodes' histories.
 *
 * Fetched history is verified before any ref of this node moves: only a
 * history that verifies in full (with this node's pinned genesis) is kept,
 * under refs/peers/<peer>/main; then main becomes the fold of everything
 * the node holds (cs_sync_integrate).
 */
#ifndef CARTOSYNC_SYNC_H
#define CARTOSYNC_SYNC_H

#include "cartosync/node.h"
#include "cartosync/oid.h"
#include "cartosync/verify.h"

#define CS_REF_PEERS "refs/peers/"
/* This node's edits that stand on invalid history, until re-applied. */
#define CS_REF_REAPPLY "refs/cartosync/reapply/"

typedef struct {
	cs_oid head;          /* the peer's main */
	int up_to_date;       /* the node held head already */
	cs_verify_report *report; /* when the history was rejected */
} cs_fetch_result;

/*
 * Fetch main from `source` (a node directory or repository path) as peer
 * `peer` (an organisation code or a name) and keep it under
 * refs/peers/<peer>/main.  Returns 0 with *result filled, CS_EVERIFY if
 * the fetched history does not verify (result->report says why; no ref
 * moved), or another error.  main is not touched: cs_sync_integrate()
 * folds what the node holds.
 */
int cs_sync_fetch(cs_fetch_result *result, cs_node *node, const char *source,
		  const char *peer);

void cs_fetch_result_dispose(cs_fetch_result *result);

typedef struct {
	cs_oid main;        /* the new head of main */
	int changed;        /* main moved */
	size_t tips;        /* edits folded */
	size_t merges;      /* merge commits computed */
	size_t conflicts;   /* conflicting fields found by those merges */
	size_t rejected;    /* held heads left out: they do not verify */
	size_t reapplied;   /* own edits re-applied on valid history */
	size_t not_reapplied; /* own edits kept that could not be */
	cs_verify_report *report; /* why, when rejected > 0 */
} cs_integrate_result;

/*
 * Make main the fold of the tips of the edits this node holds: those of
 * main, of the edit refs, of the peers' heads and of the refs under
 * refs/cartosync/held/ (docs/merge.md).  The held heads are verified together first, so that a
 * revocation known from one of them applies to all; heads that do not
 * verify are left out and reported.  main moves by compare-and-swap under
 * the repository lock and may move non-fast-forward; edit refs that main
 * now contains are deleted.
 */
int cs_sync_integrate(cs_integrate_result *result, cs_node *node);

void cs_integrate_result_dispose(cs_integrate_result *result);

#endif
