/*
 * cartosync — records checked while a fetched pack is still being indexed.
 *
 * After the last byte of a large fetch arrives, libgit2's indexer resolves
 * the pack's deltas on one core for a second or more (at 100,000 records, a
 * third of a first sync), and the other core has nothing to do.  The pack
 * file is complete by then.  A precheck scans it on that core (pack.h,
 * cs_pack_scan) and, for every file in it (stored whole, or as a delta
 * within the pack), checks what verification checks of a record's content
 * alone: its size, its canonical form, its
 * validity against the schemas of one consortium state; it notes the id
 * of each file that passes with the record path its content gives.
 *
 * Verification (cs_verify_options.prechecked) then takes a changed file as
 * checked when the precheck noted its id, the edit's consortium has the
 * same schema folder, and the file sits at the noted path; it reads and
 * checks everything else itself, failures included (their messages name
 * the path).  The id is computed here from the contents, so a note is
 * about exactly the bytes the id names, whatever the file being scanned
 * holds.  Internal to lib/.
 */
#ifndef CARTOSYNC_PRECHECK_H
#define CARTOSYNC_PRECHECK_H

#include "cartosync/consortium.h"
#include "cartosync/oid.h"

typedef struct cs_precheck cs_precheck;

/*
 * Start scanning the pack file at `pack` in a thread, against the schemas
 * of the consortium of `tree` in the store at `repo` (a node's own, loaded
 * in the thread).
 */
int cs_precheck_start(cs_precheck **out, const char *pack, const char *repo,
		      const cs_oid *tree);

/* Stop the scan where it is and wait for it; what it noted stays. */
void cs_precheck_stop(cs_precheck *p);

/* Wait until the scan has read the whole pack. */
void cs_precheck_wait(cs_precheck *p);

/* How many files the scan noted (after cs_precheck_stop or _wait). */
size_t cs_precheck_count(const cs_precheck *p);

/*
 * Whether the file `blob` at `path` passed, for an edit whose consortium's
 * schema folder is `schema_dir` (after cs_precheck_stop or _wait).
 */
int cs_precheck_passed(const cs_precheck *p, const cs_oid *blob,
		       const char *path, const cs_oid *schema_dir);

/* Stops the scan if it runs. */
void cs_precheck_free(cs_precheck *p);

#endif
