/*
 * cartosync — Ed25519 keys in OpenSSH formats.
 *
 * Private keys are stored in OpenSSH's "openssh-key-v1" format, unencrypted
 * (cipher "none"), so `ssh-keygen -y -f FILE` reads them; public keys in the
 * one-line "ssh-ed25519 <base64> [comment]" format.  A private key file that
 * its group or others can read is refused, as ssh does.  Secrets are wiped
 * before memory is released.
 */
#ifndef CARTOSYNC_KEY_H
#define CARTOSYNC_KEY_H

#include <stddef.h>
#include <stdint.h>

#define CS_ED25519_PUBLIC_SIZE 32
#define CS_ED25519_SEED_SIZE 32
#define CS_ED25519_SIGNATURE_SIZE 64

typedef struct cs_key cs_key;

/* Generate a new private key. */
int cs_key_generate(cs_key **out);

/*
 * Read a private key file.  CS_EPERM if the file's mode lets its group or
 * others read it ("key file 'x' is readable by others (mode 0644); run
 * chmod 600 x"), CS_ENOTFOUND if missing, CS_EINVALID if malformed or not
 * Ed25519, or encrypted.
 */
int cs_key_load_private(cs_key **out, const char *path);

/*
 * Write the private key to `path` (created with mode 0600, fsynced; fails
 * with CS_EEXISTS if the file exists) and "<path>.pub" with the public line.
 */
int cs_key_save_private(const cs_key *key, const char *path,
			const char *comment);

/*
 * Parse "ssh-ed25519 AAAA... [comment]" (leading options are not accepted).
 * The comment is ignored.  CS_EINVALID names what is wrong.
 */
int cs_key_parse_public(cs_key **out, const char *line);

/* A public key from its 32 raw bytes. */
int cs_key_from_public_bytes(cs_key **out,
			     const uint8_t raw[CS_ED25519_PUBLIC_SIZE]);

/* Whether the key holds a private part. */
int cs_key_has_private(const cs_key *key);

/* The 32 raw public bytes. */
const uint8_t *cs_key_public_bytes(const cs_key *key);

/* "ssh-ed25519 AAAA..." without comment; malloc'd. */
char *cs_key_public_string(const cs_key *key);

/* "SHA256:<unpadded base64 of SHA-256 of the key blob>", as ssh-keygen -l. */
char *cs_key_fingerprint(const cs_key *key);

/* The SSH wire blob: string "ssh-ed25519", string pub.  malloc'd. */
int cs_key_public_blob(uint8_t **out, size_t *outlen, const cs_key *key);

/* Whether two keys have the same public part. */
int cs_key_equal(const cs_key *a, const cs_key *b);

/* Raw Ed25519 signature of `data` (64 bytes into sig). */
int cs_key_sign_raw(const cs_key *key, const uint8_t *data, size_t len,
		    uint8_t sig[CS_ED25519_SIGNATURE_SIZE]);

/* 0 if `sig` is a valid Ed25519 signature of `data`, else CS_EVERIFY. */
int cs_key_verify_raw(const cs_key *key, const uint8_t *data, size_t len,
		      const uint8_t sig[CS_ED25519_SIGNATURE_SIZE]);

void cs_key_free(cs_key *key);

#endif
