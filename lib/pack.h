/*
 * cartosync — reading objects straight from a store's pack files.
 *
 * Verification reads every tree and file of a history once or twice, and
 * libgit2's general object reading is built for any access pattern: one
 * lock around the pack windows for all threads, delta chains rebuilt from
 * their base for each object it does not hold.  A pack reader maps the
 * packs of one object directory (and of the directories it borrows from,
 * objects/info/alternates) read-only, and keeps the objects it rebuilt in
 * a cache of its own, so that one thread reading a history in order
 * rebuilds each delta chain about once.  It is for one thread: each holder
 * of a cs_repo has its own.
 *
 * It reads the pack format (git's Documentation/gitformat-pack.txt: index
 * version 2, pack versions 2 and 3, offset and reference deltas) and
 * checks every offset and size against the files and every zlib stream's
 * checksum, so a damaged pack gives an error, never a read outside them.
 * Like libgit2 here (GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION is off, see
 * repo.c) and git, it does not hash objects again on each read: they were
 * hashed when they entered the store.  It does not read loose objects:
 * for those, and for any object it does not find, the caller asks libgit2.
 * Internal to lib/.
 */
#ifndef CARTOSYNC_PACK_H
#define CARTOSYNC_PACK_H

#include <stdatomic.h>
#include <stddef.h>

#include "cartosync/oid.h"

/* Object types as the pack format numbers them. */
#define CS_PACK_COMMIT 1
#define CS_PACK_TREE 2
#define CS_PACK_BLOB 3
#define CS_PACK_TAG 4

typedef struct cs_pack_reader cs_pack_reader;

/* A reader of the packs in `objects` (a store's objects/ directory).
 * A directory without packs gives a reader that finds nothing. */
int cs_pack_reader_open(cs_pack_reader **out, const char *objects);

void cs_pack_reader_free(cs_pack_reader *r);

/*
 * Object `id`: its type and a malloc'd copy of its contents (NUL-terminated
 * after `*len` bytes).  CS_ENOTFOUND when no pack holds it; CS_EINVALID
 * when its pack is damaged; CS_ELIMIT, with its size in *len, when it is
 * larger than `max` (known before it is inflated).
 */
int cs_pack_read(cs_pack_reader *r, const cs_oid *id, size_t max, int *type,
		 char **data, size_t *len);

/*
 * Each object of `type` in the pack file at `path`, in file order, stored
 * whole or as an offset delta (rebuilt, with a cache), with its contents
 * (NUL-terminated), until `cb` returns non-zero (returned) or `*stop` is
 * set.  Needs no index, so the file may still be with the indexer, which
 * completes it: an object whose chain leaves the file (a reference delta)
 * is skipped, and a damaged or unfinished part ends the scan with
 * CS_EINVALID.  The file is not checked yet, so the scan builds at most 32
 * times its size (CS_ELIMIT past that), and `*stop` is also looked at
 * between the steps of a delta chain.
 */
typedef int (*cs_pack_scan_cb)(const char *data, size_t len, void *arg);
int cs_pack_scan(const char *path, int type, cs_pack_scan_cb cb, void *arg,
		 const atomic_int *stop);

#endif
