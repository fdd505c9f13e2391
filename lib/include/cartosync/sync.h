/*
 * cartosync — bringing in other nodes' histories.
 *
 * Fetched history is verified before any ref of this node moves: only a
 * history that verifies in full (with this node's pinned genesis) is kept,
 * under refs/peers/<peer>/main, and main fast-forwards to it when main is
 * in its past.  Histories that diverged from main wait there for the merge.
 */
#ifndef CARTOSYNC_SYNC_H
#define CARTOSYNC_SYNC_H

#include "cartosync/node.h"
#include "cartosync/oid.h"
#include "cartosync/verify.h"

#define CS_REF_PEERS "refs/peers/"

typedef struct {
	cs_oid head;          /* the peer's main */
	int fast_forwarded;   /* main moved to head */
	int up_to_date;       /* main had head already */
	cs_verify_report *report; /* when the history was rejected */
} cs_fetch_result;

/*
 * Fetch main from `source` (a node directory or repository path) as peer
 * `peer` (an organisation code or a name).  Returns 0 with *result filled,
 * CS_EVERIFY if the fetched history does not verify (result->report says
 * why; no ref moved), or another error.
 */
int cs_sync_fetch(cs_fetch_result *result, cs_node *node, const char *source,
		  const char *peer);

void cs_fetch_result_dispose(cs_fetch_result *result);

#endif
