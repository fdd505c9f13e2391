/*
 * cartosync — a node's peers and one round of sync with each.
 *
 * A peer is a section of cartosync.conf (docs/configuration.md):
 *
 *   [peer "hub"]
 *   url = https://hub.example.org:8443/
 *   org = mdm-be          # whose node key must answer
 *   key = sha256:…        # optional: pin one key of that organisation
 *   fetch = yes           # fetch from it (no: it cannot be reached)
 *   push = no             # push this node's main into its
 *                         # refs/incoming/<this org>/main
 *
 * The URL is bound to the organisation: the TLS handshake must show a
 * node key that consortium/members.json (as of this node's main) lists
 * for that organisation, or the pinned key.  A round with a peer is fetch
 * (if fetch), integrate, push (if push); what happened is kept in
 * DIR/peers-status.json for `cartosync status` and the daemon's /status.
 */
#ifndef CARTOSYNC_PEERS_H
#define CARTOSYNC_PEERS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "cartosync/node.h"
#include "cartosync/sync.h"
#include "cartosync/transport.h"

#define CS_PEERS_STATUS "peers-status.json"

typedef struct {
	char *name;
	char *url;
	char *org;
	char *key; /* NULL: any node key of org */
	int fetch;
	int push;
} cs_peer;

/* The configured peers, in file order.  CS_EINVALID names a bad one. */
int cs_peers_list(cs_peer **out, size_t *count, const cs_node *node);

void cs_peers_free(cs_peer *peers, size_t count);

/* Add a peer to the configuration (CS_EEXISTS if the name is taken);
 * checks the name, the URL and the organisation code. */
int cs_peers_add(cs_node *node, const cs_peer *peer);

/* Remove a peer from the configuration (its refs stay until the next
 * fetch from a peer of that name). */
int cs_peers_remove(cs_node *node, const char *name);

/* The transfer limits of the node's [sync] section (deadline, max-bytes,
 * max-objects), defaults for what is not set. */
int cs_peers_limits(cs_transfer_limits *out, const cs_node *node);

typedef struct {
	int fetched;        /* a fetch ran */
	cs_oid head;        /* the peer's main */
	int up_to_date;     /* nothing new from it */
	size_t rejected;    /* commits of it that do not verify */
	cs_verify_report *report; /* why, when rejected > 0 */
	int main_changed;   /* this node's main moved */
	cs_oid main;
	size_t reapplied;   /* own edits re-applied on valid history */
	int pushed;         /* this node's main was pushed */
} cs_peer_round;

/*
 * One round with `peer`: fetch, integrate, push, as configured; the
 * outcome is recorded in DIR/peers-status.json.  A transfer failure
 * (unreachable, deadline, refused) is returned with its message and
 * changes nothing; rejected commits are not a failure of the round
 * (round->rejected says how many).
 */
int cs_peer_sync(cs_peer_round *round, cs_node *node, const cs_peer *peer,
		 const cs_transfer_limits *limits);

void cs_peer_round_dispose(cs_peer_round *round);

/* Record in DIR/peers-status.json a round with `peer` that failed before
 * cs_peer_sync() could record it (its process died). */
void cs_peer_record_failure(const cs_node *node, const cs_peer *peer,
			    const char *error);

/* What DIR/peers-status.json holds: name -> {url, org, last_attempt,
 * last_success, last_error, failures, head, rejected, pushed}. */
json_t *cs_peers_status(const cs_node *node);

/*
 * What `cartosync status` and the daemon's /status show, as JSON:
 *   {"org", "genesis", "main", "heads": {ref: id}, "peers": (the status
 *    file), "quarantine": [{"peer", "head", "time", "issues": [...]}],
 *    "conflicts": number of records with open conflicts}
 */
json_t *cs_node_status(cs_node *node);

#endif
