/*
 * cartosync — the node TLS identity.
 *
 * Nodes authenticate each other with mutual TLS 1.3 and self-signed
 * certificates: a peer is identified by the SHA-256 of its certificate's
 * SubjectPublicKeyInfo ("sha256:<hex>"), listed for its organisation's node
 * key in consortium/members.json, never by a certificate's names, so no
 * certificate authority is involved (DESIGN.md §7).  The handshake accepts
 * any certificate whose signature checks out; the caller then names the
 * peer with cs_tls_peer_hash() and looks it up with cs_tls_member().
 */
#ifndef CARTOSYNC_TLS_H
#define CARTOSYNC_TLS_H

#include <openssl/ssl.h>

#include "cartosync/consortium.h"
#include "cartosync/node.h"

/* "sha256:<hex>" of a public key's SubjectPublicKeyInfo; malloc'd. */
int cs_tls_key_hash(char **out, EVP_PKEY *key);

/* The same for the key of the certificate the other end presented;
 * CS_ENOTFOUND when it presented none. */
int cs_tls_peer_hash(char **out, SSL *ssl);

/*
 * A server context presenting the node's certificate (TLS 1.3 only) and
 * asking every client for a certificate.  A client without one still
 * completes the handshake (the public endpoints need none); whoever serves
 * member-only data refuses it after cs_tls_peer_hash().
 */
int cs_tls_server_ctx(SSL_CTX **out, cs_node *node);

/*
 * A client context presenting the node's certificate (TLS 1.3 only).  The
 * server's certificate is not checked against any authority: the caller
 * compares cs_tls_peer_hash() with the key hash it expects.
 */
int cs_tls_client_ctx(SSL_CTX **out, cs_node *node);

/*
 * The node key of consortium `c` whose TLS key hash is `hash`, if it is
 * neither revoked nor of a removed organisation; NULL otherwise.
 */
const cs_member_key *cs_tls_member(const cs_consortium *c, const char *hash);

#endif
