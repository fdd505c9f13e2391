/*
 * cartosync — verification of a history before anything is integrated.
 *
 * docs/architecture.md "Verification".  Commits are checked in topological
 * order (never by time):
 *
 *  - the genesis: the pinned trust anchor, signed by a coordinator key of
 *    its own members file, every file valid;
 *  - an edit: exact grammar and canonical armor; a valid signature; the
 *    signer a member key as of the parent, named as the author; every path
 *    it changes allowed to the signer by the policy as of the parent; every
 *    record valid against the schemas in force as of the parent; consortium
 *    changes well-formed, and a change of the coordinator keys or the root
 *    set approved by the root threshold; and not undone by a revocation:
 *    for every held commit that revokes the key, removes its organisation
 *    or narrows what it may write, the edit must be in that commit's past;
 *  - a merge: two parents in canonical order, neither an ancestor of the
 *    other, the fixed identity, message and time, no signature; when a
 *    signed edit stands on it (or with all_merges, always), recomputed
 *    from its parents and identical.
 *
 * A commit is valid only if all its ancestors are; the largest valid set is
 * what a node may integrate.  A history that declares a protocol version
 * this software does not implement is not judged past that point.
 */
#ifndef CARTOSYNC_VERIFY_H
#define CARTOSYNC_VERIFY_H

#include <stddef.h>

#include "cartosync/oid.h"
#include "cartosync/repo.h"

typedef struct {
	cs_oid commit;
	char *reason;
	int inherited; /* invalid only because `cause` (an ancestor) is */
	cs_oid cause;
} cs_verify_issue;

typedef struct {
	size_t commits;   /* commits judged */
	size_t edits;     /* of which signed edits (genesis included) */
	size_t merges;    /* of which merges */
	size_t unjudged;  /* past an unsupported protocol version */
	int protocol;     /* the unsupported version met, or 0 */
	cs_verify_issue *issues;
	size_t nissues;
} cs_verify_report;

/*
 * Verdicts kept between verifications (docs/architecture.md "What is
 * judged once").  Whether a commit passes every rule but the revocations
 * depends only on the commit and its ancestors, so it is judged once: a
 * commit found so is noted, and later verifications read its verdict
 * instead of checking its signature and contents again.  Revocations
 * depend on everything held; they are judged every time, over every
 * commit.  The set lives in a file of the node (DIR/verdicts); a file
 * written with other rules is ignored.
 */
typedef struct cs_verdicts cs_verdicts;

enum {
	CS_VERDICT_VALID = 1,     /* valid as of its ancestors */
	CS_VERDICT_CONSORTIUM = 2 /* an edit of members or policy */
};

/* Open the set kept in `path` (empty when the file is absent). */
int cs_verdicts_open(cs_verdicts **out, const char *path);
/* The flags noted for `commit`: 0 when it has no verdict. */
unsigned cs_verdicts_get(const cs_verdicts *v, const cs_oid *commit);
int cs_verdicts_put(cs_verdicts *v, const cs_oid *commit, unsigned flags);
size_t cs_verdicts_count(const cs_verdicts *v);
/* Write the set back (with what other processes added meanwhile). */
int cs_verdicts_save(cs_verdicts *v);
void cs_verdicts_free(cs_verdicts *v);

typedef struct {
	const cs_oid *genesis; /* the pinned trust anchor, or NULL */
	const cs_oid *tips;    /* the histories to judge */
	size_t ntips;
	const cs_oid *held;    /* other held heads: their revocations count */
	size_t nheld;
	unsigned threads;      /* signature checking threads; 0: automatic */
	int all_merges;        /* recompute every merge, not only those a
				  signed edit stands on */
	cs_verdicts *verdicts; /* read, and added to; NULL: judge all */
	/* Files whose content a precheck of the fetched pack passed (lib/,
	 * precheck.h; set by cs_sync_fetch); NULL: none. */
	const struct cs_precheck *prechecked;
} cs_verify_options;

/*
 * Judge the histories of `tips`.  Returns 0 when the judgement was made
 * (look at report->nissues and report->protocol), or an error code if the
 * repository could not be read.  *out is owned by the caller.
 */
int cs_verify(cs_verify_report **out, cs_repo *repo,
	      const cs_verify_options *opts);

/* Whether `commit` is among the report's invalid commits. */
int cs_verify_report_rejects(const cs_verify_report *report,
			     const cs_oid *commit);

void cs_verify_report_free(cs_verify_report *report);

/*
 * Check a single edit that is about to be written (`tree` on top of
 * `parent`, signed by `signer`): the same rules as cs_verify() for one
 * edit, so a user is told why before anything is committed.  CS_EPERM for
 * authority, CS_EINVALID for content.
 */
struct cs_key;
int cs_verify_edit_preflight(cs_repo *repo, const cs_oid *parent,
			     const cs_oid *tree, const struct cs_key *signer);

#endif
