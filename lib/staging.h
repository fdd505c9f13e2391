/*
 * cartosync — staging stores: where fetched, pushed and carried history
 * waits until it is verified (DESIGN.md §5, §7).
 *
 * The node serves its own object store to every member (git upload-pack
 * hands out any object by id), so nothing unverified may enter it.  A
 * staging store is a bare repository under DIR/staging/ that borrows the
 * node's objects (objects/info/alternates) and lists the node's heads
 * under refs/have/, so a fetch into it negotiates like a fetch into the
 * node.  After verification the objects of the valid commits are moved
 * into the node's store (the fetched pack as it is when everything
 * verified), and the rest is either dropped or kept in DIR/quarantine/
 * with its reason, under a quota.  Internal to lib/.
 */
#ifndef CARTOSYNC_STAGING_H
#define CARTOSYNC_STAGING_H

#include <jansson.h>

#include "cartosync/node.h"
#include "cartosync/oid.h"
#include "cartosync/repo.h"

#define CS_STAGING_DIR "staging"
#define CS_QUARANTINE_DIR "quarantine"
#define CS_QUARANTINE_QUOTA_DEFAULT (256ull << 20)

typedef struct cs_staging cs_staging;

/* A fresh staging store for `name` (a peer, "push", "bundle"). */
int cs_staging_create(cs_staging **out, cs_node *node, const char *name);

/* Read the objects of directory `objects` too (git receive-pack's
 * quarantine, say). */
int cs_staging_borrow(cs_staging *s, const char *objects);

/* The staging repository: the node's objects plus the staged ones. */
cs_repo *cs_staging_repo(cs_staging *s);

/*
 * Move the objects reachable from `heads` that the node lacks into the
 * node's store, durably.  `all`: every staged object is wanted (the
 * fetched packs move as they are).
 */
int cs_staging_promote(cs_staging *s, const cs_oid *heads, size_t n, int all);

/*
 * Keep what was staged in DIR/quarantine/<name>/<time>-<head>/ with
 * `reason` (a JSON object) as reason.json, then drop the oldest
 * quarantined histories beyond the quota ([sync] quarantine-quota).
 */
int cs_staging_quarantine(cs_staging *s, const cs_oid *head,
			  const json_t *reason);

/* Remove the staging store (unless it was quarantined). */
void cs_staging_free(cs_staging *s);

/* Remove staging stores left by a process that died mid-transfer. */
void cs_staging_clean(cs_node *node);

#endif
