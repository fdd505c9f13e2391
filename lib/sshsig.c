/*
 * cartosync — OpenSSH signatures (SSHSIG), OpenSSH PROTOCOL.sshsig.
 *
 * §1 Armor, in the one form cartosync accepts (the form ssh-keygen -Y sign
 * writes, without the file's final newline):
 *
 *	-----BEGIN SSH SIGNATURE-----\n
 *	<base64 of the blob, 70 columns>\n	every full line
 *	<last 1..70 columns>\n
 *	-----END SSH SIGNATURE-----		no newline after it
 *
 * §2 Blob:
 *
 *	byte[6]	"SSHSIG"
 *	uint32	version			1
 *	string	publickey		string "ssh-ed25519", string pub[32]
 *	string	namespace		not empty
 *	string	reserved		cartosync: must be empty
 *	string	hash_algorithm		"sha256" or "sha512"
 *	string	signature		string "ssh-ed25519", string sig[64]
 *					(RFC 8709 §6)
 *
 * §3 Signed data, passed to Ed25519:
 *
 *	byte[6]	"SSHSIG"
 *	string	namespace
 *	string	reserved
 *	string	hash_algorithm
 *	string	H(message)
 *
 * PROTOCOL.sshsig tells verifiers to ignore a non-empty reserved field; we
 * reject it instead, since nothing we accept may carry data that no one
 * checks.  Verification parses the armor and the whole blob before any
 * cryptography, and keeps no state between calls: it is safe from several
 * threads at once.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "cartosync/base64.h"
#include "cartosync/error.h"
#include "sshbuf.h"
#include "cartosync/key.h"
#include "cartosync/sshsig.h"

#define SIG_MAGIC "SSHSIG"
#define SIG_MAGIC_LEN (sizeof(SIG_MAGIC) - 1)
#define SIG_VERSION 1
#define KEY_TYPE "ssh-ed25519"
#define KEY_TYPE_LEN (sizeof(KEY_TYPE) - 1)
#define SIGN_HASH "sha512"
#define ARMOR_BEGIN "-----BEGIN SSH SIGNATURE-----"
#define ARMOR_END "-----END SSH SIGNATURE-----"
#define ARMOR_COLUMNS 70
/*
 * Limits on what a peer controls.  An Ed25519 SSHSIG blob is 174 bytes
 * plus its namespace, so 4 KiB of armor is ample for any namespace we
 * accept.
 */
#define NAMESPACE_MAX 256
#define ARMOR_MAX 4096
#define HASH_MAX 64
/* "SSHSIG" string(ns) string("") string(hash) string(H) */
#define SIGNED_MAX (SIG_MAGIC_LEN + 4 + NAMESPACE_MAX + 4 + 4 + 6 + 4 + \
		    HASH_MAX)

/* The fields of a parsed blob; pointers borrow the decoded blob. */
struct sshsig {
	const uint8_t *pub;		/* 32 bytes */
	const uint8_t *ns;
	size_t nslen;
	const uint8_t *reserved;
	size_t reservedlen;
	const uint8_t *hash;
	size_t hashlen;
	const uint8_t *sig;		/* 64 bytes */
};

static int
check_namespace(const char *namespace)
{
	size_t n = strnlen(namespace, NAMESPACE_MAX + 1);

	/* PROTOCOL.sshsig §2: the namespace MUST NOT be empty. */
	if (n == 0)
		return cs_error_set(CS_EINVALID, "signature namespace is "
				    "empty");
	if (n > NAMESPACE_MAX)
		return cs_error_set(CS_EINVALID, "signature namespace is "
				    "longer than %d bytes", NAMESPACE_MAX);
	return 0;
}

static int
message_hash(uint8_t out[HASH_MAX], size_t *outlen, const char *alg,
	     const uint8_t *data, size_t len)
{
	const EVP_MD *md = strcmp(alg, "sha256") == 0 ? EVP_sha256() :
			   EVP_sha512();
	unsigned int n = 0;

	if (EVP_Digest(data, len, out, &n, md, NULL) != 1) {
		ERR_clear_error();
		return cs_error_set(CS_ERROR, "%s of the message failed", alg);
	}
	*outlen = n;
	return 0;
}

/* §3: the bytes Ed25519 signs.  `buf` holds SIGNED_MAX bytes. */
static size_t
signed_data(uint8_t *buf, const uint8_t *ns, size_t nslen,
	    const uint8_t *reserved, size_t reservedlen, const char *hashalg,
	    const uint8_t *h, size_t hlen)
{
	uint8_t *p = buf;

	memcpy(p, SIG_MAGIC, SIG_MAGIC_LEN);
	p += SIG_MAGIC_LEN;
	p = sshbuf_put_string(p, ns, nslen);
	p = sshbuf_put_string(p, reserved, reservedlen);
	p = sshbuf_put_string(p, hashalg, strlen(hashalg));
	p = sshbuf_put_string(p, h, hlen);
	return (size_t)(p - buf);
}

int
cs_sshsig_sign(char **armor, const cs_key *key, const char *namespace,
	       const uint8_t *data, size_t len)
{
	static const char begin[] = ARMOR_BEGIN "\n";
	static const char end[] = "\n" ARMOR_END;
	uint8_t h[HASH_MAX], sig[CS_ED25519_SIGNATURE_SIZE];
	uint8_t msg[SIGNED_MAX], *blob = NULL, *p;
	size_t hlen, msglen, nslen, bloblen, b64len, textlen, i;
	char *b64 = NULL, *text = NULL, *t;
	int error;

	*armor = NULL;

	if ((error = check_namespace(namespace)) < 0)
		goto done;
	if (!cs_key_has_private(key)) {
		error = cs_error_set(CS_EINVALID, "cannot sign without a "
				     "private key");
		goto done;
	}
	nslen = strlen(namespace);

	if ((error = message_hash(h, &hlen, SIGN_HASH, data, len)) < 0)
		goto done;
	msglen = signed_data(msg, (const uint8_t *)namespace, nslen,
			     (const uint8_t *)"", 0, SIGN_HASH, h, hlen);
	if ((error = cs_key_sign_raw(key, msg, msglen, sig)) < 0)
		goto done;

	bloblen = SIG_MAGIC_LEN + 4 +
		  4 + (4 + KEY_TYPE_LEN + 4 + CS_ED25519_PUBLIC_SIZE) +
		  4 + nslen + 4 + 4 + strlen(SIGN_HASH) +
		  4 + (4 + KEY_TYPE_LEN + 4 + CS_ED25519_SIGNATURE_SIZE);
	if ((blob = malloc(bloblen)) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	p = blob;
	memcpy(p, SIG_MAGIC, SIG_MAGIC_LEN);
	p += SIG_MAGIC_LEN;
	p = sshbuf_put_u32(p, SIG_VERSION);
	p = sshbuf_put_u32(p, 4 + KEY_TYPE_LEN + 4 + CS_ED25519_PUBLIC_SIZE);
	p = sshbuf_put_string(p, KEY_TYPE, KEY_TYPE_LEN);
	p = sshbuf_put_string(p, cs_key_public_bytes(key), CS_ED25519_PUBLIC_SIZE);
	p = sshbuf_put_string(p, namespace, nslen);
	p = sshbuf_put_string(p, "", 0);
	p = sshbuf_put_string(p, SIGN_HASH, strlen(SIGN_HASH));
	p = sshbuf_put_u32(p, 4 + KEY_TYPE_LEN + 4 + CS_ED25519_SIGNATURE_SIZE);
	p = sshbuf_put_string(p, KEY_TYPE, KEY_TYPE_LEN);
	sshbuf_put_string(p, sig, CS_ED25519_SIGNATURE_SIZE);

	if ((error = cs_base64_encode(&b64, blob, bloblen)) < 0)
		goto done;
	b64len = strlen(b64);
	/* §1: full lines of 70 columns, "\n" between lines, none after. */
	textlen = sizeof(begin) - 1 + b64len +
		  (b64len - 1) / ARMOR_COLUMNS + sizeof(end) - 1;
	if ((text = malloc(textlen + 1)) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	t = text;
	memcpy(t, begin, sizeof(begin) - 1);
	t += sizeof(begin) - 1;
	for (i = 0; i < b64len; i += ARMOR_COLUMNS) {
		size_t n = b64len - i < ARMOR_COLUMNS ? b64len - i :
			   ARMOR_COLUMNS;

		if (i > 0)
			*t++ = '\n';
		memcpy(t, b64 + i, n);
		t += n;
	}
	memcpy(t, end, sizeof(end));

	*armor = text;
	text = NULL; /* transferred */
	error = 0;
done:
	free(blob);
	free(b64);
	free(text);
	return error;
}

/*
 * §1: check that `armor` is exactly the canonical armor of some base64 text
 * and copy that text, without its line breaks, into `b64` (ARMOR_MAX bytes).
 */
static int
armor_body(char *b64, size_t *b64len, const char *armor, size_t len)
{
	static const char begin[] = ARMOR_BEGIN;
	static const char end[] = ARMOR_END;
	const size_t beginlen = sizeof(begin) - 1, endlen = sizeof(end) - 1;
	const char *body;
	size_t bodylen, i, n = 0;

	if (len < beginlen || memcmp(armor, begin, beginlen) != 0)
		return cs_error_set(CS_EINVALID, "not an ssh signature (no "
				    "'%s' line)", begin);
	if (len > ARMOR_MAX)
		return cs_error_set(CS_EINVALID, "signature armor is longer "
				    "than %d bytes", ARMOR_MAX);
	if (len == beginlen || armor[beginlen] != '\n')
		return cs_error_set(CS_EINVALID, "signature armor is not "
				    "canonical: the begin line does not end "
				    "with a newline");
	if (len < beginlen + 1 + endlen ||
	    memcmp(armor + len - endlen, end, endlen) != 0 ||
	    armor[len - endlen - 1] != '\n') {
		if (memmem(armor, len, end, endlen) != NULL)
			return cs_error_set(CS_EINVALID, "signature armor is "
					    "not canonical: data after the "
					    "end line");
		return cs_error_set(CS_EINVALID, "signature armor is not "
				    "canonical: no end line");
	}
	/* Here the newline before the end line may be the begin line's. */
	if (len - endlen - 1 <= beginlen + 1)
		return cs_error_set(CS_EINVALID, "signature armor is not "
				    "canonical: no base64 data");
	body = armor + beginlen + 1;
	bodylen = len - beginlen - 1 - endlen - 1;

	/* A newline at every 71st byte of the body, and nowhere else. */
	if (bodylen % (ARMOR_COLUMNS + 1) == 0)
		return cs_error_set(CS_EINVALID, "signature armor is not "
				    "canonical: empty line before the end "
				    "line");
	for (i = 0; i < bodylen; i++) {
		int want_newline = (i % (ARMOR_COLUMNS + 1) == ARMOR_COLUMNS);

		if (want_newline && body[i] == '\n')
			continue;
		if (want_newline || body[i] == '\n')
			return cs_error_set(CS_EINVALID, "signature armor is "
					    "not canonical: line %zu is not "
					    "%d columns",
					    i / (ARMOR_COLUMNS + 1) + 1,
					    ARMOR_COLUMNS);
		b64[n++] = body[i];
	}
	*b64len = n;
	return 0;
}

/* string(string "ssh-ed25519", string data[size]), nothing after. */
static int
parse_ed25519_part(const uint8_t **out, const uint8_t *s, size_t len,
		   size_t size, const char *what)
{
	struct sshbuf_reader r = { s, len };
	const uint8_t *type, *data;
	size_t typelen, datalen;
	char q[48];

	if (sshbuf_read_string(&r, &type, &typelen) < 0)
		return cs_error_set(CS_EINVALID, "signature %s is truncated",
				    what);
	if (!sshbuf_string_is(type, typelen, KEY_TYPE))
		return cs_error_set(CS_EINVALID, "unsupported signature %s "
				    "type '%s'", what, sshbuf_quote(q, type, typelen));
	if (sshbuf_read_string(&r, &data, &datalen) < 0)
		return cs_error_set(CS_EINVALID, "signature %s is truncated",
				    what);
	if (datalen != size)
		return cs_error_set(CS_EINVALID, "signature %s is %zu bytes, "
				    "expected %zu", what, datalen, size);
	if (r.left != 0)
		return cs_error_set(CS_EINVALID, "trailing data after "
				    "signature %s", what);
	*out = data;
	return 0;
}

/* §2, the whole blob, before any semantic check. */
static int
parse_blob(struct sshsig *s, const uint8_t *blob, size_t len)
{
	struct sshbuf_reader r = { blob, len };
	const uint8_t *magic, *pubkey, *sigpart;
	size_t pubkeylen, sigpartlen;
	uint32_t version;
	int error;

	if (sshbuf_read_bytes(&r, &magic, SIG_MAGIC_LEN) < 0 ||
	    memcmp(magic, SIG_MAGIC, SIG_MAGIC_LEN) != 0)
		return cs_error_set(CS_EINVALID, "not an ssh signature blob "
				    "(no 'SSHSIG' magic)");
	if (sshbuf_read_u32(&r, &version) < 0)
		return cs_error_set(CS_EINVALID, "signature blob is "
				    "truncated");
	/* A later version may lay out the rest differently. */
	if (version != SIG_VERSION)
		return cs_error_set(CS_EINVALID, "unsupported signature "
				    "version %lu", (unsigned long)version);
	if (sshbuf_read_string(&r, &pubkey, &pubkeylen) < 0 ||
	    sshbuf_read_string(&r, &s->ns, &s->nslen) < 0 ||
	    sshbuf_read_string(&r, &s->reserved, &s->reservedlen) < 0 ||
	    sshbuf_read_string(&r, &s->hash, &s->hashlen) < 0 ||
	    sshbuf_read_string(&r, &sigpart, &sigpartlen) < 0)
		return cs_error_set(CS_EINVALID, "signature blob is "
				    "truncated");
	if (r.left != 0)
		return cs_error_set(CS_EINVALID, "trailing data after the "
				    "signature blob");
	if ((error = parse_ed25519_part(&s->pub, pubkey, pubkeylen,
					CS_ED25519_PUBLIC_SIZE,
					"public key")) < 0)
		return error;
	return parse_ed25519_part(&s->sig, sigpart, sigpartlen,
				  CS_ED25519_SIGNATURE_SIZE, "algorithm");
}

int
cs_sshsig_verify(cs_key **signer, const char *armor, size_t armor_len,
		 const char *namespace, const uint8_t *data, size_t len)
{
	struct sshsig s;
	char b64[ARMOR_MAX], q[48];
	uint8_t h[HASH_MAX], msg[SIGNED_MAX], *blob = NULL;
	size_t b64len = 0, bloblen = 0, hlen, msglen;
	const char *hashalg;
	cs_key *key = NULL;
	int error;

	if (signer != NULL)
		*signer = NULL;

	if ((error = check_namespace(namespace)) < 0)
		goto done;

	/* Parse everything first. */
	if ((error = armor_body(b64, &b64len, armor, armor_len)) < 0)
		goto done;
	if ((error = cs_base64_decode(&blob, &bloblen, b64, b64len)) < 0) {
		cs_error_prefix(error, "signature armor is not canonical");
		goto done;
	}
	if ((error = parse_blob(&s, blob, bloblen)) < 0)
		goto done;

	/* Then the rules. */
	error = CS_EINVALID;
	if (s.nslen != strlen(namespace) ||
	    memcmp(s.ns, namespace, s.nslen) != 0) {
		cs_error_set(CS_EINVALID, "signature namespace '%s' is not "
			     "'%s'", sshbuf_quote(q, s.ns, s.nslen), namespace);
		goto done;
	}
	if (s.reservedlen != 0) {
		cs_error_set(CS_EINVALID, "signature reserved field is not "
			     "empty");
		goto done;
	}
	if (sshbuf_string_is(s.hash, s.hashlen, "sha512"))
		hashalg = "sha512";
	else if (sshbuf_string_is(s.hash, s.hashlen, "sha256"))
		hashalg = "sha256";
	else {
		cs_error_set(CS_EINVALID, "unsupported signature hash '%s'",
			     sshbuf_quote(q, s.hash, s.hashlen));
		goto done;
	}

	/* Only now the cryptography. */
	if ((error = message_hash(h, &hlen, hashalg, data, len)) < 0)
		goto done;
	msglen = signed_data(msg, s.ns, s.nslen, s.reserved, s.reservedlen,
			     hashalg, h, hlen);
	if ((error = cs_key_from_public_bytes(&key, s.pub)) < 0)
		goto done;
	if ((error = cs_key_verify_raw(key, msg, msglen, s.sig)) < 0) {
		if (error == CS_EVERIFY)
			cs_error_set(CS_EVERIFY, "ssh signature does not "
				     "match the data");
		goto done;
	}

	if (signer != NULL) {
		*signer = key;
		key = NULL; /* transferred */
	}
	error = 0;
done:
	cs_key_free(key);
	free(blob);
	return error;
}
