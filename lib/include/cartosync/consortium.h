/*
 * cartosync — the consortium as of a commit: members, keys, roles, policy,
 * protocol version and the schemas in force.
 *
 * Everything a verdict depends on lives in the history (docs/architecture.md
 * "The verdict depends only on the history"): a commit is judged with the
 * consortium/ files of its parent, never with what is installed.
 */
#ifndef CARTOSYNC_CONSORTIUM_H
#define CARTOSYNC_CONSORTIUM_H

#include <stddef.h>
#include <jansson.h>

#include "cartosync/key.h"
#include "cartosync/oid.h"
#include "cartosync/repo.h"
#include "cartosync/schema.h"

#define CS_PROTOCOL_VERSION 1
#define CS_MERGE_ALGORITHM "cartosync-merge/1"

#define CS_PATH_MEMBERS "consortium/members.json"
#define CS_PATH_POLICY "consortium/policy.json"
#define CS_PATH_PROTOCOL "consortium/protocol.json"
#define CS_PATH_ROOT_APPROVAL "consortium/root-approval.json"
#define CS_PATH_SCHEMA_DIR "consortium/schema"

/* The namespace of root approvals (SSHSIG). */
#define CS_SSHSIG_NAMESPACE_ROOT "cartosync-root"

typedef enum {
	CS_ROLE_MEMBER = 1,
	CS_ROLE_COORDINATOR = 2,
	CS_ROLE_ROOT = 3, /* a key of the root set, not a member key */
} cs_role;

typedef struct {
	cs_key *key;
	char *fingerprint;
	char *org;    /* NULL for a root key */
	char *holder; /* who holds it: a node, an office */
	char *tls;    /* "sha256:<hex>" of the node TLS key, or NULL */
	cs_role role;
	int revoked;
} cs_member_key;

typedef struct cs_consortium cs_consortium;

/*
 * The consortium as of `tree` (a commit's tree): reads the consortium files and
 * consortium/schema/.  CS_EINVALID names the file and the problem.
 */
int cs_consortium_load(cs_consortium **out, cs_repo *repo, const cs_oid *tree);

/*
 * Build from parsed files.  `schemas` is transferred (freed on failure
 * too).  Checks what the schemas cannot: every key's organisation is
 * listed, no key twice, the root threshold is reachable.
 */
int cs_consortium_from_json(cs_consortium **out, const json_t *members,
			    const json_t *policy, const json_t *protocol,
			    cs_schema_set *schemas);

/* Release a state; one cs_consortium_load() made goes back to a small
 * pool, for the next load of the same files (docs/architecture.md
 * "Consortium states"). */
void cs_consortium_free(cs_consortium *c);

/* The entry of `key` (member keys first, then the root set), or NULL. */
const cs_member_key *cs_consortium_find_key(const cs_consortium *c,
					    const cs_key *key);

/* Member keys, in file order (root keys are not included). */
size_t cs_consortium_key_count(const cs_consortium *c);
const cs_member_key *cs_consortium_key_at(const cs_consortium *c, size_t i);

/* Whether `org` is listed and not removed. */
int cs_consortium_org_active(const cs_consortium *c, const char *org);

/* The display name of an organisation, or NULL. */
const char *cs_consortium_org_name(const cs_consortium *c, const char *org);

/*
 * Whether `signer` may write `path` now: the key is not revoked, its
 * organisation is active, and a write pattern of its role allows the path
 * ("records/{org}/…" patterns, with {org} replaced by the signer's organisation).
 * Root keys may write consortium/members.json and the root approval only.
 */
int cs_policy_allows(const cs_consortium *c, const cs_member_key *signer,
		     const char *path);

/*
 * Whether the two states differ in who holds power over the consortium:
 * the active coordinator keys or the root set.  Such a change needs a root
 * approval (docs/architecture.md "Root keys").
 */
int cs_consortium_power_changed(const cs_consortium *before,
				const cs_consortium *after);

/* Root threshold and whether a key belongs to the root set. */
int cs_consortium_root_threshold(const cs_consortium *c);
int cs_consortium_is_root_key(const cs_consortium *c, const cs_key *key);

/* The protocol version the history declares. */
int cs_consortium_protocol(const cs_consortium *c);

/* The schemas in force (borrowed). */
const cs_schema_set *cs_consortium_schemas(const cs_consortium *c);

/* The id of the schema folder a state loaded from a tree was made of
 * (what its records are validated against); CS_ENOTFOUND otherwise. */
int cs_consortium_schema_dir(const cs_consortium *c, cs_oid *out);

/* The parsed files (borrowed). */
const json_t *cs_consortium_members(const cs_consortium *c);
const json_t *cs_consortium_policy(const cs_consortium *c);

/*
 * The text a root key signs to approve `members_blob` (the id of the new
 * consortium/members.json) on top of `parent`: malloc'd.
 */
char *cs_root_approval_message(const cs_oid *parent,
			       const cs_oid *members_blob);

/*
 * Check a root approval document against the root set of `before`:
 * {"parent": hex, "members": hex, "signatures": [armor, ...]} must name
 * `parent` and `members_blob` and carry valid signatures by at least
 * threshold distinct root keys.  CS_EVERIFY with the reason otherwise.
 */
int cs_root_approval_check(const cs_consortium *before,
			   const json_t *approval, const cs_oid *parent,
			   const cs_oid *members_blob);

#endif
