/*
 * cartosync — access to a node's git repository.
 *
 * The only module that talks to libgit2: objects, trees, refs and the
 * repository lock.  A node's repository is bare; refs/heads/main is the map,
 * refs/cartosync/edits/<commit> holds an acknowledged edit that is not in
 * main yet.  Objects and refs are fsynced when written (libgit2's
 * GIT_OPT_ENABLE_FSYNC_GITDIR), so an acknowledged edit survives a crash.
 */
#ifndef CARTOSYNC_REPO_H
#define CARTOSYNC_REPO_H

#include <stddef.h>

#include "cartosync/commit.h"
#include "cartosync/oid.h"

#define CS_REF_MAIN "refs/heads/main"
#define CS_REF_EDITS "refs/cartosync/edits/"

#define CS_MODE_BLOB 0100644
#define CS_MODE_TREE 0040000

typedef struct cs_repo cs_repo;

/*
 * Whether objects and refs are fsynced when written (the default: on).
 * Only generators of test data and benchmarks turn it off; it applies to
 * the whole process.
 */
void cs_repo_set_durable(int durable);

/* Create a bare repository at `path` (HEAD -> refs/heads/main). */
int cs_repo_init(cs_repo **out, const char *path);

/* Open the repository at `path`; CS_ENOTFOUND if there is none. */
int cs_repo_open(cs_repo **out, const char *path);

void cs_repo_free(cs_repo *repo);

/* The repository's directory, without a trailing slash. */
const char *cs_repo_path(const cs_repo *repo);

/*
 * Read a commit object's raw bytes and parse them with cs_commit_parse().
 * CS_ENOTFOUND if missing, CS_EINVALID if not a commit or malformed.
 */
int cs_repo_read_commit(cs_commit **out, cs_repo *repo, const cs_oid *id);

/* Raw bytes of a commit object (malloc'd). */
int cs_repo_read_commit_raw(char **out, size_t *outlen, cs_repo *repo,
			    const cs_oid *id);

/* Read a blob by id; *out is malloc'd and NUL-terminated.  Blobs larger
 * than `max` bytes fail with CS_ELIMIT without being read whole. */
int cs_repo_read_blob(char **out, size_t *outlen, cs_repo *repo,
		      const cs_oid *id, size_t max);

/*
 * Find `path` ("a/b/c.json") in `tree`: *out gets the entry's id and *mode
 * (may be NULL) its file mode.  CS_ENOTFOUND if absent.
 */
int cs_repo_tree_lookup(cs_oid *out, unsigned *mode, cs_repo *repo,
			const cs_oid *tree, const char *path);

/* The tree of a commit. */
int cs_repo_commit_tree(cs_oid *out, cs_repo *repo, const cs_oid *commit);

/* Called per entry; return non-zero to stop (that value is returned). */
typedef int (*cs_repo_entry_cb)(const char *path, const cs_oid *id,
				unsigned mode, void *payload);

/*
 * List the blobs below `prefix` ("" for the whole tree) of `tree`,
 * recursively, in path order.  CS_ENOTFOUND-free: a missing prefix lists
 * nothing.
 */
int cs_repo_walk(cs_repo *repo, const cs_oid *tree, const char *prefix,
		 cs_repo_entry_cb cb, void *payload);

/*
 * Call `cb` for each entry directly inside the folder `path` of `tree`
 * (names only, no recursion).  A missing folder lists nothing.
 */
int cs_repo_list_dir(cs_repo *repo, const cs_oid *tree, const char *path,
		     cs_repo_entry_cb cb, void *payload);

/* One entry of a tree. */
typedef struct {
	char *name;
	cs_oid id;
	unsigned mode;
} cs_tree_entry;

typedef struct {
	cs_tree_entry *items;
	size_t count;
} cs_tree_entries;

/*
 * Read the entries of tree `id` (NULL: the empty tree) sorted by name
 * (strcmp).  Release with cs_tree_entries_clear().
 */
int cs_repo_tree_read(cs_tree_entries *out, cs_repo *repo, const cs_oid *id);

/* Write a tree of `count` entries (any order); *out gets its id.  An empty
 * list writes the empty tree. */
int cs_repo_tree_write(cs_oid *out, cs_repo *repo,
		       const cs_tree_entry *entries, size_t count);

void cs_tree_entries_clear(cs_tree_entries *entries);

/* A changed path between two trees. */
typedef struct {
	const char *path;
	const cs_oid *old_id; /* NULL when added */
	const cs_oid *new_id; /* NULL when deleted */
	unsigned old_mode;
	unsigned new_mode;
} cs_tree_change;

typedef int (*cs_repo_diff_cb)(const cs_tree_change *change, void *payload);

/*
 * Report every blob-level difference between `old_tree` (NULL: the empty
 * tree) and `new_tree`, in path order, descending only into subtrees whose
 * ids differ (so a one-record edit costs a few tree reads whatever the
 * repository size).  A path that is a tree on one side and a blob on the
 * other is reported with the blob side's mode; non-blob, non-tree entries
 * (submodules, symlinks) are reported with their mode for the caller to
 * reject.
 */
int cs_repo_diff(cs_repo *repo, const cs_oid *old_tree,
		 const cs_oid *new_tree, cs_repo_diff_cb cb, void *payload);

/* Write a blob; fsynced. */
int cs_repo_write_blob(cs_oid *out, cs_repo *repo, const void *data,
		       size_t len);

/* One update for cs_repo_tree_update(): new_id NULL removes the path. */
typedef struct {
	const char *path;
	const cs_oid *new_id;
} cs_tree_update;

/*
 * Write the tree that is `base` (NULL: empty) with `updates` applied,
 * creating and removing intermediate directories as needed; unchanged
 * subtrees are reused.
 */
int cs_repo_tree_update(cs_oid *out, cs_repo *repo, const cs_oid *base,
			const cs_tree_update *updates, size_t count);

/* Write a raw commit object; fsynced. */
int cs_repo_write_commit_raw(cs_oid *out, cs_repo *repo, const char *buf,
			     size_t len);

/* Read a ref; CS_ENOTFOUND if it does not exist. */
int cs_repo_ref_read(cs_oid *out, cs_repo *repo, const char *name);

/*
 * Compare-and-swap a ref: set `name` to `new_id` (NULL deletes it) only if
 * it currently points to `expected` (NULL: only if it does not exist).
 * CS_ECONFLICT if somebody moved it first.
 */
int cs_repo_ref_cas(cs_repo *repo, const char *name, const cs_oid *new_id,
		    const cs_oid *expected, const char *log_message);

typedef int (*cs_repo_ref_cb)(const char *name, const cs_oid *id,
			      void *payload);

/* Call `cb` for every ref whose name starts with `prefix`, in name order. */
int cs_repo_ref_foreach(cs_repo *repo, const char *prefix, cs_repo_ref_cb cb,
			void *payload);

/* 1 if `ancestor` is `descendant` or one of its ancestors, else 0. */
int cs_repo_is_ancestor(cs_repo *repo, const cs_oid *ancestor,
			const cs_oid *descendant);

/*
 * Take the repository's writer lock (a flock on "<repo>/cartosync.lock"),
 * waiting for another writer (the daemon or another command) to finish.
 */
int cs_repo_lock(cs_repo *repo);
void cs_repo_unlock(cs_repo *repo);
/* Whether this handle holds the lock. */
int cs_repo_locked(const cs_repo *repo);

/*
 * Packing the store.  Every edit and every integration writes loose
 * objects, one file each; stock git (upload-pack, for every fetch and
 * clone) then reads each from its own file and computes its deltas again
 * for every peer.  So a store that gained CS_REPO_LOOSE_MAX loose objects
 * since its last packing has them packed (`git repack -d`: deltas
 * computed once, the loose files removed once packed), and one with
 * CS_REPO_PACKS_MAX packs (indexed, not kept: git's gc.autoPackLimit) has
 * them made one (`git repack -A -d`: an unreachable packed object is
 * loosened, never dropped, so an object written but not yet referenced
 * survives).  Unreachable loose objects (an edit killed before its ref
 * moved) stay loose: counting from what the last packing left keeps them
 * from asking for packing again and again.
 */
#define CS_REPO_LOOSE_MAX 256
#define CS_REPO_PACKS_MAX 50

typedef struct {
	size_t loose; /* loose objects */
	size_t packs;
} cs_repo_store_counts;

enum { CS_REPO_PACK_NONE, CS_REPO_PACK_LOOSE, CS_REPO_PACK_ALL };

void cs_repo_store_count(cs_repo_store_counts *out, cs_repo *repo);

/* What the store wants, `loose_left` loose objects after its last packing
 * (0 if unknown): one of CS_REPO_PACK_*. */
int cs_repo_store_wants(const cs_repo_store_counts *now, size_t loose_left);

/*
 * Pack the store (CS_REPO_PACK_LOOSE or CS_REPO_PACK_ALL) with stock git,
 * under the repository lock.  CS_ERROR with git's message when git fails;
 * the store is then as it was (git writes the new pack before it removes
 * anything).
 */
int cs_repo_pack(cs_repo *repo, int how);

/*
 * Open the repository again if its packs changed since it was opened:
 * libgit2 finds new packs by itself but keeps the ones git repack removed
 * open, so a long-lived handle would hold their disk space.  No object of
 * the old handle may be in use.
 */
int cs_repo_refresh(cs_repo *repo);

/*
 * The commits reachable from `tips`, parents before children (topological,
 * never by time).  *out is a malloc'd array of *count ids.
 */
int cs_repo_topo_order(cs_oid **out, size_t *count, cs_repo *repo,
		       const cs_oid *tips, size_t ntips);

/*
 * Copy what `source` (a path or URL libgit2 can fetch from) has under
 * `refspec` into this repository (objects and the ref).  Used to join.
 */
int cs_repo_fetch(cs_repo *repo, const char *source, const char *refspec);

#endif
