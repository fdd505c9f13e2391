/*
 * cartosync — the two kinds of commits and their exact grammar.
 *
 * docs/protocol.md §2.  An edit is
 *
 *   tree <hex>\n
 *   parent <hex>\n            (absent only for the genesis)
 *   author <ident>\n
 *   committer <ident>\n
 *   gpgsig <armor line 1>\n
 *    <armor line 2..n>\n      (each continuation line starts with a space)
 *   \n
 *   <message>
 *
 * and a merge is tree, exactly two parents in canonical (byte) order,
 * author, committer, a blank line and the message "cartosync-merge/1\n", with
 * no signature.  Nothing else is accepted: no other header, no encoding, no
 * mergetag, no third parent.  <ident> is "Name <email> seconds +hhmm".
 *
 * This module parses and writes commit objects as bytes; it does not touch a
 * repository.
 */
#ifndef CARTOSYNC_COMMIT_H
#define CARTOSYNC_COMMIT_H

#include <stddef.h>
#include <stdint.h>

#include "cartosync/oid.h"

#define CS_MERGE_MESSAGE "cartosync-merge/1\n"
#define CS_MERGE_IDENT_NAME "cartosync"
#define CS_MERGE_IDENT_EMAIL "merge@cartosync"
#define CS_COMMIT_MAX_BYTES (64 * 1024)

typedef enum {
	CS_COMMIT_GENESIS, /* no parent, signed */
	CS_COMMIT_EDIT,    /* one parent, signed */
	CS_COMMIT_MERGE,   /* two parents, unsigned */
} cs_commit_kind;

typedef struct {
	char *name;
	char *email;
	int64_t time;
	int tz_minutes; /* offset east of UTC */
} cs_ident;

typedef struct {
	cs_commit_kind kind;
	cs_oid tree;
	cs_oid parents[2];
	size_t parent_count;
	cs_ident author;
	cs_ident committer;
	char *signature; /* armor without final newline; NULL for a merge */
	char *message;
	/* The bytes a signature covers: the commit without its gpgsig header. */
	char *payload;
	size_t payload_len;
} cs_commit;

/*
 * Parse a raw commit object (without git's "commit <len>\0" header).
 * Fails with CS_EINVALID naming the first deviation from the grammar:
 * "unexpected header \"encoding\"", "a merge must not be signed", ...
 */
int cs_commit_parse(cs_commit **out, const char *buf, size_t len);

/*
 * Write the unsigned text of a commit from its fields (kind, tree, parents,
 * author, committer, message; signature ignored).  *out is malloc'd.
 */
int cs_commit_format_payload(char **out, size_t *outlen,
			     const cs_commit *commit);

/*
 * Insert the gpgsig header carrying `armor` into an unsigned payload, after
 * the committer line.  *out is malloc'd.
 */
int cs_commit_add_signature(char **out, size_t *outlen, const char *payload,
			    size_t payload_len, const char *armor);

void cs_commit_free(cs_commit *commit);

/* Format "Name <email> seconds +hhmm" into a malloc'd string. */
char *cs_ident_format(const cs_ident *ident);

#endif
