/*
 * cartosync — a node: its repository, configuration and keys.
 *
 * A node is a directory holding a bare git repository (so `git -C DIR log`
 * shows the history) plus
 *
 *   DIR/cartosync.conf      the node's configuration (docs/configuration.md)
 *   DIR/keys/signing_key    the Ed25519 signing key (OpenSSH format, 0600)
 *   DIR/keys/tls_key.pem    the node's TLS key, separate from the signing key
 *   DIR/keys/tls_cert.pem   its self-signed certificate
 *
 * Writes go through cs_node_commit(): an edit is acknowledged only once it
 * is written, fsynced and held by a ref, and refs move by compare-and-swap
 * under the repository lock, so the command and the daemon can write at the
 * same time without losing a commit.
 */
#ifndef CARTOSYNC_NODE_H
#define CARTOSYNC_NODE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "cartosync/key.h"
#include "cartosync/oid.h"
#include "cartosync/repo.h"

#define CS_NODE_CONFIG "cartosync.conf"
#define CS_NODE_SIGNING_KEY "keys/signing_key"
#define CS_NODE_TLS_KEY "keys/tls_key.pem"
#define CS_NODE_TLS_CERT "keys/tls_cert.pem"

typedef struct cs_node cs_node;

/*
 * Create a node for organisation `org` in `dir` (which must not exist or be
 * empty): the repository, a new signing key, a TLS key and certificate, and
 * the configuration.  The genesis is set later (cs_node_set_genesis).
 */
int cs_node_create(cs_node **out, const char *dir, const char *org);

/*
 * The same with existing keys: `signing_key` (an OpenSSH private key file)
 * and `tls_key` (a PEM private key file) are copied into the node; either
 * may be NULL to generate one.  For a node that moves to a new machine, or
 * for reproducible test histories.
 */
int cs_node_create_with_keys(cs_node **out, const char *dir, const char *org,
			     const char *signing_key, const char *tls_key);

/* Open an existing node.  CS_ENOTFOUND names the directory. */
int cs_node_open(cs_node **out, const char *dir);

/*
 * Packing the node's store (cs_repo_store_wants; docs/daemon.md "The
 * store"), counting loose objects from what the last packing left, which
 * DIR/loose-after-packing keeps.  cs_node_pack_wanted() says what
 * cs_node_pack() would do now (CS_REPO_PACK_*; no lock taken);
 * cs_node_pack() does it under the node's lock, with the counts before
 * and after in `before`, `after` and what it did in `*done`.
 */
int cs_node_pack_wanted(cs_node *node);
int cs_node_pack(cs_node *node, int *done, cs_repo_store_counts *before,
		 cs_repo_store_counts *after);

void cs_node_free(cs_node *node);

const char *cs_node_dir(const cs_node *node);
const char *cs_node_org(const cs_node *node);
cs_repo *cs_node_repo(cs_node *node);

/* The signing key, read on first use (mode checked as ssh does). */
int cs_node_key(const cs_key **out, cs_node *node);

/* "sha256:<hex>" of the node TLS key's SubjectPublicKeyInfo; malloc'd. */
int cs_node_tls_hash(char **out, cs_node *node);

/* The pinned genesis (CS_ENOTFOUND before it is set). */
int cs_node_genesis(cs_oid *out, const cs_node *node);

/* Pin the genesis in the configuration. */
int cs_node_set_genesis(cs_node *node, const cs_oid *genesis);

/* A configuration value ("node", "org"), borrowed, or NULL. */
const char *cs_node_config_get(const cs_node *node, const char *section,
			       const char *key);

/* Set a value and rewrite the configuration file (atomically). */
int cs_node_config_set(cs_node *node, const char *section, const char *key,
		       const char *value);

/* Remove a section and rewrite the file; CS_ENOTFOUND if absent. */
int cs_node_config_remove_section(cs_node *node, const char *section);

/*
 * The names of the sections that start with `prefix` (`peer "` for the
 * peers), each once, in file order: up to `max` in `out` (borrowed, valid
 * until the configuration changes); returns how many there are.
 */
size_t cs_node_config_sections(const cs_node *node, const char *prefix,
			       const char **out, size_t max);

/*
 * A size setting ("64M", "2G", "512K", "1000": bytes) or `dflt` when it is
 * not set.  CS_EINVALID names the setting when it does not parse.
 */
int cs_node_config_size(uint64_t *out, const cs_node *node,
			const char *section, const char *key, uint64_t dflt);

/* A count or a number of seconds, or `dflt` when not set. */
int cs_node_config_uint(uint64_t *out, const cs_node *node,
			const char *section, const char *key, uint64_t dflt);

/*
 * DIR/upgrade-needed: a history this node met uses a protocol version it
 * does not implement.  Until an upgraded cartosync runs, the node does not
 * write (cs_node_commit refuses, naming the version and where it was met);
 * nothing is rejected meanwhile.  A cartosync that implements the version
 * removes the file.
 */
#define CS_NODE_UPGRADE_NEEDED "upgrade-needed"

/* Record that `where` uses protocol `version`. */
int cs_node_upgrade_needed(cs_node *node, int version, const char *where);

/* 0, or CS_EPERM naming what was met when this node must be upgraded
 * before it writes. */
int cs_node_check_upgrade(cs_node *node);

/* Write `value` in canonical form as a blob. */
int cs_node_write_json(cs_oid *out, cs_node *node, const json_t *value);

/* The head of main (CS_ENOTFOUND in a node without history). */
int cs_node_main(cs_oid *out, cs_node *node);

/*
 * Commit an edit signed with the node's key: the tree of `base` (NULL for
 * the genesis) with `updates` applied, checked with the rules verification
 * applies (cs_verify_edit_preflight) before anything is written.
 *
 * The commit's parent is `base`: the commit the editor read from, not
 * whatever main is now.  If main still points to `base` it moves to the new
 * commit (*in_main = 1); otherwise the edit is held by
 * refs/cartosync/edits/<id> until it is merged (*in_main = 0).
 * CS_EINVALID "nothing to commit" when the tree does not change.
 */
int cs_node_commit(cs_oid *out, int *in_main, cs_node *node,
		   const cs_oid *base, const cs_tree_update *updates,
		   size_t count, const char *message);

#endif
