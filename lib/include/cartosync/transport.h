/*
 * cartosync — the client side of the network transport.
 *
 * Nodes exchange history with git's smart HTTP protocol over HTTPS with
 * mutual TLS (DESIGN.md §7).  These functions fetch from, list and push to
 * a peer at an "https://host[:port]/path" URL.  Every connection presents
 * the node's certificate (the SSL_CTX from cs_tls_client_ctx()) and is
 * accepted only if the server's certificate key hashes to `peer_hash`
 * ("sha256:<64 lowercase hex>", as cs_tls_key_hash() writes it): a peer
 * URL is bound to the key that must answer, so a redirect to another host
 * or port is refused too.
 *
 * Every call is bounded by a cs_transfer_limits: an overall deadline (a
 * peer that trickles a byte every few seconds is cut off when it expires),
 * a cap on the bytes received and a cap on the objects of a pack.  A
 * limit only aborts the transfer (CS_ELIMIT); it says nothing about the
 * peer's history.
 *
 * Errors name the URL and the cause, one line:
 *   CS_EVERIFY  the server's key is not `peer_hash`
 *   CS_ELIMIT   deadline, byte cap or object cap reached
 *   CS_EPERM    the server refused: HTTP 401/403 (with the server's
 *               message), a redirect elsewhere, a pushed ref rejected
 *   CS_ENOTFOUND  HTTP 404, or a fetched ref the server does not have
 *   CS_EINVALID a malformed URL, hash or refspec
 *   CS_ERROR    connection refused, host unreachable, TLS failure, any
 *               other HTTP status, a protocol error (libgit2's message)
 *
 * Calls on different threads are independent (each with its own
 * repository and limits); a call is not reentrant on one thread.  Once
 * any of these functions has run, libgit2's TLS stream is cartosync's for
 * the whole process: an "https://" URL given to libgit2 any other way
 * (cs_repo_fetch) is refused, because no peer key would be checked.
 *
 * SIGPIPE is never raised (the process's signal disposition is left
 * alone).
 */
#ifndef CARTOSYNC_TRANSPORT_H
#define CARTOSYNC_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "cartosync/oid.h"
#include "cartosync/repo.h"

#define CS_TRANSFER_DEADLINE_MS ((uint64_t)10 * 60 * 1000) /* 10 min */
#define CS_TRANSFER_MAX_BYTES   ((uint64_t)2 << 30)        /* 2 GiB */
#define CS_TRANSFER_MAX_OBJECTS ((uint64_t)5000000)

/* Where a transfer is, for a progress display. */
typedef struct {
	uint64_t objects;         /* received (fetch) or sent (push) so far */
	uint64_t indexed_objects; /* fetch: objects checked into the store */
	uint64_t total_objects;   /* in the pack; 0 until known */
	uint64_t received_bytes;  /* on the wire, TLS included */
	uint64_t sent_bytes;      /* on the wire, TLS included */
} cs_transfer_progress;

typedef void (*cs_transfer_progress_cb)(const cs_transfer_progress *p,
                                        void *arg);

/* Bounds of one call; zero fields (or a NULL pointer) take the defaults. */
typedef struct {
	uint64_t deadline_ms; /* the whole call, connecting included */
	uint64_t max_bytes;   /* received on the wire, TLS included */
	uint64_t max_objects; /* in one pack */
	cs_transfer_progress_cb progress; /* optional; called on this thread */
	void *progress_arg;
} cs_transfer_limits;

/*
 * Fetch `refspecs` ("+refs/heads/main:refs/staging/ms2/main", libgit2's
 * refspec syntax) from `url` into `repo`, which should be a staging
 * repository: objects land there and only the refs the refspecs name move.
 * No tags are followed and FETCH_HEAD is not written.  A refspec without
 * '*' whose source the server does not advertise fails with CS_ENOTFOUND
 * before anything is downloaded.
 */
int cs_transport_fetch(cs_repo *repo, SSL_CTX *client, const char *url,
                       const char *peer_hash, const char *const *refspecs,
                       size_t nrefspecs, const cs_transfer_limits *limits);

/* A ref the server advertises. */
typedef struct {
	char *name;
	cs_oid id;
} cs_transport_ref;

/*
 * The refs the server at `url` advertises for fetching, in its order
 * (peeled tags included as "<tag>^{}").  *out is a malloc'd array of
 * *count refs; release it with cs_transport_refs_free().
 */
int cs_transport_ls(cs_transport_ref **out, size_t *count, SSL_CTX *client,
                    const char *url, const char *peer_hash,
                    const cs_transfer_limits *limits);

void cs_transport_refs_free(cs_transport_ref *refs, size_t count);

/*
 * Push `refspecs` ("refs/heads/main:refs/incoming/ms2/main") from `repo`
 * to `url`.  If the server rejects any ref, the result is CS_EPERM naming
 * the first rejected ref with the server's status for it and its
 * "remote:" messages; the other refs may have been updated.
 */
int cs_transport_push(cs_repo *repo, SSL_CTX *client, const char *url,
                      const char *peer_hash, const char *const *refspecs,
                      size_t nrefspecs, const cs_transfer_limits *limits);

#endif
