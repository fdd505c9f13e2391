/*
 * cartosync — OpenSSH signatures (SSHSIG), as git uses them for commits.
 *
 * Format: OpenSSH PROTOCOL.sshsig.  A signature is the blob
 *   "SSHSIG" uint32(1) string(publickey) string(namespace) string(reserved)
 *   string(hash_algorithm) string(signature)
 * armored as "-----BEGIN SSH SIGNATURE-----\n", the base64 of the blob
 * wrapped at 70 columns, "\n-----END SSH SIGNATURE-----" (no final newline
 * inside the armor string handled here).  The signed data is
 *   "SSHSIG" string(namespace) string(reserved) string(hash_algorithm)
 *   string(H(message))
 * cartosync signs with Ed25519 and sha512, and accepts sha256 or sha512.
 *
 * The armor must be canonical: exactly the bytes cs_sshsig_sign() would
 * write for the same blob.  git does not sign its own gpgsig header, so a
 * re-wrapped armor would otherwise give new commit ids for one signature.
 */
#ifndef CARTOSYNC_SSHSIG_H
#define CARTOSYNC_SSHSIG_H

#include <stddef.h>
#include <stdint.h>

#include "cartosync/key.h"

#define CS_SSHSIG_NAMESPACE_GIT "git"

/*
 * Sign `len` bytes of `data` in `namespace` with a private key.  *armor is a
 * malloc'd NUL-terminated string, the armored signature without a final
 * newline.
 */
int cs_sshsig_sign(char **armor, const cs_key *key, const char *namespace,
		   const uint8_t *data, size_t len);

/*
 * Verify an armored signature of `data` in `namespace`.  Parses the whole
 * armor and blob first (rejecting a non-canonical armor, trailing data, a
 * version other than 1, an algorithm other than ssh-ed25519, a hash other
 * than sha256/sha512, a wrong namespace), then checks the signature.  On
 * success *signer (if not NULL) owns the public key that signed.
 * Returns 0, CS_EINVALID (malformed; the message says what) or CS_EVERIFY
 * (well-formed, but the signature does not match).
 */
int cs_sshsig_verify(cs_key **signer, const char *armor, size_t armor_len,
		     const char *namespace, const uint8_t *data, size_t len);

#endif
