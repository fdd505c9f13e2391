/*
 * cartosync — history on a USB key: git's bundle format (v2).
 *
 * Where there is no network at all, `cartosync bundle create` writes the
 * node's main into one file that stock git reads too (`git bundle
 * verify`, `git clone FILE`), and the receiving node brings it in with
 * cs_sync_fetch() (a bundle file is a fetch source like a peer): staged,
 * verified exactly like fetched history, and only then kept.
 */
#ifndef CARTOSYNC_BUNDLE_H
#define CARTOSYNC_BUNDLE_H

#include <stddef.h>

#include "cartosync/node.h"
#include "cartosync/oid.h"
#include "cartosync/repo.h"

/*
 * Write main into the bundle file `path` (replaced atomically).  With
 * `since` (commits the receiving node is known to hold), the bundle holds
 * only what main adds to them and names them as prerequisites.
 * *objects gets the number of objects written.
 */
int cs_bundle_create(size_t *objects, cs_node *node, const char *path,
		     const cs_oid *since, size_t nsince);

/* Whether `path` is a regular file that starts like a bundle. */
int cs_bundle_is(const char *path);

/*
 * Read a bundle into `repo` (a staging repository): its pack is indexed
 * there and its refs/heads/main becomes `ref`.  CS_EINVALID names what is
 * malformed; CS_ENOTFOUND names a prerequisite commit `repo` lacks;
 * CS_ELIMIT when the pack exceeds `max_bytes` (0: no cap).
 */
int cs_bundle_read(cs_repo *repo, const char *path, const char *ref,
		   uint64_t max_bytes);

#endif
