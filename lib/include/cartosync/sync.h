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
#include "cartosync/transport.h"
#include "cartosync/verify.h"

#define CS_REF_PEERS "refs/peers/"
/* What nodes that cannot be fetched from pushed, verified on arrival. */
#define CS_REF_INCOMING "refs/incoming/"
/* This node's edits that stand on invalid history, until re-applied. */
#define CS_REF_REAPPLY "refs/cartosync/reapply/"

typedef struct {
	const char *peer;      /* refs/peers/<peer>/, quarantine/<peer>/ */
	const char *source;    /* a node directory, a repository path, a
				  bundle's staging, or an https:// URL */
	const char *peer_hash; /* https: the key that must answer */
	const cs_transfer_limits *limits; /* https: NULL for the defaults */
} cs_fetch_options;

typedef struct {
	cs_oid head;          /* the peer's main */
	int up_to_date;       /* the node held head already */
	size_t rejected;      /* commits that do not verify */
	cs_verify_report *report; /* why, when rejected > 0 */
	size_t prechecked;    /* files checked while the pack was indexed */
} cs_fetch_result;

/*
 * Fetch main from a peer into a staging store (never the served one),
 * verify it with every revocation the node holds, and keep the largest set
 * of valid commits whose ancestors are all valid: the peer's head under
 * refs/peers/<peer>/main when it verifies, else the valid commits just
 * below the invalid ones under refs/peers/<peer>/valid/<id>.  Only their
 * objects enter the node's store; a history with invalid commits is kept in
 * DIR/quarantine/<peer>/ with its reasons (result->report) under a quota.
 * Returns 0 when the judgement was made, even if commits were rejected;
 * CS_EPERM when the history uses a protocol version this cartosync does
 * not implement (nothing rejected, nothing kept); another error when the
 * transfer failed (nothing kept, nothing changed).  main is not touched:
 * cs_sync_integrate() folds what the node holds.
 */
int cs_sync_fetch(cs_fetch_result *result, cs_node *node,
		  const cs_fetch_options *options);

void cs_fetch_result_dispose(cs_fetch_result *result);

/*
 * Judge history pushed to this node, from git receive-pack's pre-receive
 * hook: `heads[i]` is to become `refs[i]`, and the pushed objects wait in
 * git's quarantine directory (GIT_QUARANTINE_PATH), which is read as well.
 * The same verification as a fetch, with every revocation the node holds;
 * 0 when every commit verifies, CS_EVERIFY naming the first bad commit,
 * its ref and why, CS_EPERM for a protocol version this node does not
 * implement.  A refused push leaves nothing behind: git drops the
 * quarantine.
 */
int cs_sync_check_pushed(cs_node *node, const char *const *refs,
			 const cs_oid *heads, size_t n);

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
