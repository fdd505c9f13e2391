/*
 * cartosync — Ed25519 keys in OpenSSH formats.
 *
 * Public key blob (RFC 8709 §4, RFC 4253 §6.6):
 *
 *	string	"ssh-ed25519"
 *	string	pub			32 bytes
 *
 * Private key file (OpenSSH PROTOCOL.key), as `ssh-keygen -t ed25519 -N ''`
 * writes it: "-----BEGIN OPENSSH PRIVATE KEY-----\n", the base64 of the
 * blob below wrapped at 70 columns, each line ended by "\n", and
 * "-----END OPENSSH PRIVATE KEY-----\n".
 *
 *	byte[15] "openssh-key-v1\0"
 *	string	ciphername		"none"
 *	string	kdfname			"none"
 *	string	kdfoptions		""
 *	uint32	number of keys		1
 *	string	public key blob
 *	string	private section, a multiple of 8 bytes (the "none" cipher's
 *		block size):
 *		uint32	checkint	random
 *		uint32	checkint	the same value
 *		string	"ssh-ed25519"
 *		string	pub		32 bytes
 *		string	seed || pub	64 bytes
 *		string	comment
 *		byte[]	padding		1, 2, 3, ... up to the block size
 *
 * Reading is strict about the blob (every length checked, no trailing data,
 * the three copies of the public key equal to the one the seed gives) and
 * lenient about the armor's line breaks, which people's editors change.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "cartosync/base64.h"
#include "cartosync/error.h"
#include "sshbuf.h"
#include "cartosync/key.h"

#define KEY_TYPE "ssh-ed25519"
#define KEY_TYPE_LEN (sizeof(KEY_TYPE) - 1)
#define AUTH_MAGIC "openssh-key-v1"	/* followed by its NUL */
#define AUTH_MAGIC_LEN sizeof(AUTH_MAGIC)
#define PRIVATE_BEGIN "-----BEGIN OPENSSH PRIVATE KEY-----"
#define PRIVATE_END "-----END OPENSSH PRIVATE KEY-----"
#define ARMOR_COLUMNS 70
#define BLOCK_SIZE 8			/* of the cipher "none" */
#define KEY_FILE_MAX (64 * 1024)
#define PUBLIC_LINE_MAX (8 * 1024)
#define COMMENT_MAX 1024
/* string "ssh-ed25519" string pub */
#define PUBLIC_BLOB_SIZE (4 + KEY_TYPE_LEN + 4 + CS_ED25519_PUBLIC_SIZE)

struct cs_key {
	EVP_PKEY *pkey;
	int has_private;
	uint8_t pub[CS_ED25519_PUBLIC_SIZE];
	uint8_t seed[CS_ED25519_SEED_SIZE];
};

/* Translate the OpenSSL error queue into our message, once, here. */
static int
openssl_error(const char *what)
{
	unsigned long e = ERR_get_error();
	char reason[256];

	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	else
		snprintf(reason, sizeof(reason), "unknown error");
	ERR_clear_error();
	return cs_error_set(CS_ERROR, "%s failed: %s", what, reason);
}

static int
key_from_seed(cs_key **out, const uint8_t seed[CS_ED25519_SEED_SIZE])
{
	cs_key *key = NULL;
	size_t publen = CS_ED25519_PUBLIC_SIZE;
	int error = CS_ERROR;

	*out = NULL;

	if ((key = calloc(1, sizeof(*key))) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	key->pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed,
						 CS_ED25519_SEED_SIZE);
	if (key->pkey == NULL) {
		error = openssl_error("ed25519 private key import");
		goto done;
	}
	if (EVP_PKEY_get_raw_public_key(key->pkey, key->pub, &publen) != 1 ||
	    publen != CS_ED25519_PUBLIC_SIZE) {
		error = openssl_error("ed25519 public key derivation");
		goto done;
	}
	memcpy(key->seed, seed, CS_ED25519_SEED_SIZE);
	key->has_private = 1;

	*out = key;
	key = NULL; /* transferred */
	error = 0;
done:
	cs_key_free(key);
	return error;
}

int
cs_key_from_public_bytes(cs_key **out,
			 const uint8_t raw[CS_ED25519_PUBLIC_SIZE])
{
	cs_key *key = NULL;
	int error = CS_ERROR;

	*out = NULL;

	if ((key = calloc(1, sizeof(*key))) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	key->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw,
						CS_ED25519_PUBLIC_SIZE);
	if (key->pkey == NULL) {
		error = openssl_error("ed25519 public key import");
		goto done;
	}
	memcpy(key->pub, raw, CS_ED25519_PUBLIC_SIZE);

	*out = key;
	key = NULL; /* transferred */
	error = 0;
done:
	cs_key_free(key);
	return error;
}

int
cs_key_generate(cs_key **out)
{
	uint8_t seed[CS_ED25519_SEED_SIZE];
	int error;

	*out = NULL;

	if (RAND_priv_bytes(seed, sizeof(seed)) != 1) {
		error = openssl_error("random key generation");
		goto done;
	}
	error = key_from_seed(out, seed);
done:
	OPENSSL_cleanse(seed, sizeof(seed));
	return error;
}

void
cs_key_free(cs_key *key)
{
	if (key == NULL)
		return;
	EVP_PKEY_free(key->pkey);
	OPENSSL_cleanse(key, sizeof(*key));
	free(key);
}

int
cs_key_has_private(const cs_key *key)
{
	return key != NULL && key->has_private;
}

const uint8_t *
cs_key_public_bytes(const cs_key *key)
{
	return key->pub;
}

int
cs_key_equal(const cs_key *a, const cs_key *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return CRYPTO_memcmp(a->pub, b->pub, CS_ED25519_PUBLIC_SIZE) == 0;
}

static void
write_public_blob(uint8_t blob[PUBLIC_BLOB_SIZE], const uint8_t *pub)
{
	uint8_t *p = blob;

	p = sshbuf_put_string(p, KEY_TYPE, KEY_TYPE_LEN);
	sshbuf_put_string(p, pub, CS_ED25519_PUBLIC_SIZE);
}

int
cs_key_public_blob(uint8_t **out, size_t *outlen, const cs_key *key)
{
	uint8_t *blob;

	*out = NULL;
	*outlen = 0;

	if ((blob = malloc(PUBLIC_BLOB_SIZE)) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	write_public_blob(blob, key->pub);
	*out = blob;
	*outlen = PUBLIC_BLOB_SIZE;
	return 0;
}

/*
 * Parse a public key blob that must be exactly string "ssh-ed25519",
 * string(32 bytes).  The message names what is wrong, for the caller to
 * prefix with where the blob came from.
 */
static int
parse_public_blob(uint8_t pub[CS_ED25519_PUBLIC_SIZE], const uint8_t *blob,
		  size_t len)
{
	struct sshbuf_reader r = { blob, len };
	const uint8_t *type, *raw;
	size_t typelen, rawlen;
	char q[48];

	if (sshbuf_read_string(&r, &type, &typelen) < 0)
		return cs_error_set(CS_EINVALID, "truncated public key");
	if (!sshbuf_string_is(type, typelen, KEY_TYPE))
		return cs_error_set(CS_EINVALID, "unsupported key type '%s'",
				    sshbuf_quote(q, type, typelen));
	if (sshbuf_read_string(&r, &raw, &rawlen) < 0)
		return cs_error_set(CS_EINVALID, "truncated public key");
	if (rawlen != CS_ED25519_PUBLIC_SIZE)
		return cs_error_set(CS_EINVALID, "ed25519 public key is %zu "
				    "bytes, expected 32", rawlen);
	if (r.left != 0)
		return cs_error_set(CS_EINVALID, "trailing data after public "
				    "key");
	memcpy(pub, raw, CS_ED25519_PUBLIC_SIZE);
	return 0;
}

char *
cs_key_public_string(const cs_key *key)
{
	static const char prefix[] = KEY_TYPE " ";
	uint8_t blob[PUBLIC_BLOB_SIZE];
	char *b64 = NULL, *line = NULL;
	size_t n;

	write_public_blob(blob, key->pub);
	if (cs_base64_encode(&b64, blob, sizeof(blob)) < 0)
		goto done;
	n = sizeof(prefix) - 1 + strlen(b64) + 1;
	if ((line = malloc(n)) == NULL) {
		cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	snprintf(line, n, "%s%s", prefix, b64);
done:
	free(b64);
	return line;
}

char *
cs_key_fingerprint(const cs_key *key)
{
	static const char prefix[] = "SHA256:";
	uint8_t blob[PUBLIC_BLOB_SIZE], digest[SHA256_DIGEST_LENGTH];
	char *b64 = NULL, *fp = NULL;
	size_t n;

	write_public_blob(blob, key->pub);
	if (EVP_Digest(blob, sizeof(blob), digest, NULL, EVP_sha256(),
		       NULL) != 1) {
		openssl_error("sha256");
		goto done;
	}
	if (cs_base64_encode(&b64, digest, sizeof(digest)) < 0)
		goto done;
	/* ssh-keygen -l prints the base64 without its padding. */
	n = strlen(b64);
	while (n > 0 && b64[n - 1] == '=')
		b64[--n] = '\0';
	n += sizeof(prefix);
	if ((fp = malloc(n)) == NULL) {
		cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	snprintf(fp, n, "%s%s", prefix, b64);
done:
	free(b64);
	return fp;
}

int
cs_key_parse_public(cs_key **out, const char *line)
{
	uint8_t pub[CS_ED25519_PUBLIC_SIZE];
	uint8_t *blob = NULL;
	size_t len, bloblen, typelen, b64len, i;
	const char *b64;
	char q[48];
	int error;

	*out = NULL;

	len = strnlen(line, PUBLIC_LINE_MAX + 1);
	if (len > PUBLIC_LINE_MAX)
		return cs_error_set(CS_EINVALID, "public key line is too "
				    "long");
	/* One line: a single final "\n" or "\r\n" is allowed. */
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	for (i = 0; i < len; i++)
		if (line[i] == '\n' || line[i] == '\r')
			return cs_error_set(CS_EINVALID, "public key line "
					    "contains a line break");

	typelen = strcspn(line, " \t\r\n");
	if (typelen > len)
		typelen = len;
	if (typelen == 0)
		return cs_error_set(CS_EINVALID, "public key line does not "
				    "start with a key type");
	if (typelen != KEY_TYPE_LEN || memcmp(line, KEY_TYPE, typelen) != 0)
		return cs_error_set(CS_EINVALID, "unsupported key type '%s'",
				    sshbuf_quote(q, (const uint8_t *)line, typelen));
	b64 = line + typelen;
	while (b64 < line + len && (*b64 == ' ' || *b64 == '\t'))
		b64++;
	b64len = strcspn(b64, " \t\r\n");
	if (b64len > (size_t)(line + len - b64))
		b64len = (size_t)(line + len - b64);
	if (b64len == 0)
		return cs_error_set(CS_EINVALID, "public key line has no key "
				    "data");
	/* Whatever follows the key data after a blank is the comment. */

	if ((error = cs_base64_decode(&blob, &bloblen, b64, b64len)) < 0) {
		cs_error_prefix(error, "public key data");
		goto done;
	}
	if ((error = parse_public_blob(pub, blob, bloblen)) < 0) {
		cs_error_prefix(error, "public key data");
		goto done;
	}
	error = cs_key_from_public_bytes(out, pub);
done:
	free(blob);
	return error;
}

int
cs_key_sign_raw(const cs_key *key, const uint8_t *data, size_t len,
		uint8_t sig[CS_ED25519_SIGNATURE_SIZE])
{
	EVP_MD_CTX *ctx = NULL;
	size_t siglen = CS_ED25519_SIGNATURE_SIZE;
	int error = CS_ERROR;

	if (!key->has_private)
		return cs_error_set(CS_EINVALID, "key has no private part");
	if ((ctx = EVP_MD_CTX_new()) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	/* Ed25519 is one-shot and hashes internally: no digest here. */
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, key->pkey) != 1 ||
	    EVP_DigestSign(ctx, sig, &siglen, data, len) != 1 ||
	    siglen != CS_ED25519_SIGNATURE_SIZE) {
		error = openssl_error("ed25519 signing");
		goto done;
	}
	error = 0;
done:
	EVP_MD_CTX_free(ctx);
	return error;
}

int
cs_key_verify_raw(const cs_key *key, const uint8_t *data, size_t len,
		  const uint8_t sig[CS_ED25519_SIGNATURE_SIZE])
{
	EVP_MD_CTX *ctx = NULL;
	int error = CS_ERROR, rc;

	if ((ctx = EVP_MD_CTX_new()) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key->pkey) != 1) {
		error = openssl_error("ed25519 verification setup");
		goto done;
	}
	rc = EVP_DigestVerify(ctx, sig, CS_ED25519_SIGNATURE_SIZE, data, len);
	if (rc != 1) {
		/* A bad signature is an answer, not a library failure. */
		ERR_clear_error();
		error = cs_error_set(CS_EVERIFY, "ed25519 signature does not "
				     "match");
		goto done;
	}
	error = 0;
done:
	EVP_MD_CTX_free(ctx);
	return error;
}

/*
 * The base64 body of an OpenSSH private key armor, without its line breaks,
 * into `b64` (at least `len` bytes).  Blanks at line ends and "\r\n" are
 * tolerated; the BEGIN and END lines are not optional.
 */
static int
private_armor_body(char *b64, size_t *b64len, const char *path,
		   const char *text, size_t len)
{
	static const char begin[] = PRIVATE_BEGIN;
	static const char end[] = PRIVATE_END;
	const char *p = text, *eol, *stop = text + len;
	size_t n = 0, linelen;
	int seen_end = 0;

	if (len < sizeof(begin) - 1 ||
	    memcmp(text, begin, sizeof(begin) - 1) != 0) {
		if (len >= 11 && memcmp(text, "-----BEGIN ", 11) == 0)
			return cs_error_set(CS_EINVALID, "key file '%s' is "
					    "not an openssh private key (it "
					    "is PEM or PKCS#8)", path);
		return cs_error_set(CS_EINVALID, "key file '%s' does not "
				    "start with '%s'", path, begin);
	}
	p += sizeof(begin) - 1;

	while (p < stop) {
		/* p is at the end of the previous line's content. */
		while (p < stop && (*p == ' ' || *p == '\t' || *p == '\r'))
			p++;
		if (p == stop)
			break;
		if (*p != '\n')
			return cs_error_set(CS_EINVALID, "key file '%s' has "
					    "data after its armor line", path);
		p++;
		if (seen_end)
			continue;
		if ((eol = memchr(p, '\n', (size_t)(stop - p))) == NULL)
			eol = stop;
		linelen = (size_t)(eol - p);
		while (linelen > 0 && (p[linelen - 1] == '\r' ||
				       p[linelen - 1] == ' ' ||
				       p[linelen - 1] == '\t'))
			linelen--;
		if (linelen >= sizeof(end) - 1 &&
		    memcmp(p, end, sizeof(end) - 1) == 0) {
			seen_end = 1;
			p += sizeof(end) - 1;
			continue;
		}
		memcpy(b64 + n, p, linelen);
		n += linelen;
		p += linelen;
	}
	if (!seen_end)
		return cs_error_set(CS_EINVALID, "key file '%s' is truncated "
				    "(no '%s' line)", path, end);
	*b64len = n;
	return 0;
}

/* The decoded "openssh-key-v1" blob: see the format at the top. */
static int
parse_private_blob(cs_key **out, const char *path, const uint8_t *blob,
		   size_t len)
{
	struct sshbuf_reader r = { blob, len }, priv;
	const uint8_t *magic, *cipher, *kdf, *kdfopts, *pubblob, *section;
	const uint8_t *type, *pub, *sk, *comment, *pad;
	size_t cipherlen, kdflen, kdfoptslen, pubbloblen, sectionlen;
	size_t typelen, publen, sklen, commentlen, i;
	uint8_t headerpub[CS_ED25519_PUBLIC_SIZE];
	uint32_t nkeys, check1, check2;
	cs_key *key = NULL;
	char q[48];
	int error = CS_EINVALID;

	*out = NULL;

	if (sshbuf_read_bytes(&r, &magic, AUTH_MAGIC_LEN) < 0 ||
	    memcmp(magic, AUTH_MAGIC, AUTH_MAGIC_LEN) != 0) {
		cs_error_set(CS_EINVALID, "key file '%s' does not start with "
			     "'openssh-key-v1'", path);
		goto done;
	}
	if (sshbuf_read_string(&r, &cipher, &cipherlen) < 0 ||
	    sshbuf_read_string(&r, &kdf, &kdflen) < 0 ||
	    sshbuf_read_string(&r, &kdfopts, &kdfoptslen) < 0 ||
	    sshbuf_read_u32(&r, &nkeys) < 0) {
		cs_error_set(CS_EINVALID, "key file '%s' is truncated", path);
		goto done;
	}
	if (!sshbuf_string_is(cipher, cipherlen, "none") ||
	    !sshbuf_string_is(kdf, kdflen, "none")) {
		cs_error_set(CS_EINVALID, "key file '%s' is encrypted (cipher "
			     "'%s'); remove the passphrase with ssh-keygen -p",
			     path, sshbuf_quote(q, cipher, cipherlen));
		goto done;
	}
	if (kdfoptslen != 0) {
		cs_error_set(CS_EINVALID, "key file '%s' has kdf options "
			     "without a kdf", path);
		goto done;
	}
	if (nkeys != 1) {
		cs_error_set(CS_EINVALID, "key file '%s' holds %lu keys, "
			     "expected 1", path, (unsigned long)nkeys);
		goto done;
	}
	if (sshbuf_read_string(&r, &pubblob, &pubbloblen) < 0 ||
	    sshbuf_read_string(&r, &section, &sectionlen) < 0) {
		cs_error_set(CS_EINVALID, "key file '%s' is truncated", path);
		goto done;
	}
	if (r.left != 0) {
		cs_error_set(CS_EINVALID, "key file '%s' has trailing data",
			     path);
		goto done;
	}
	if ((error = parse_public_blob(headerpub, pubblob, pubbloblen)) < 0) {
		cs_error_prefix(error, "key file '%s'", path);
		goto done;
	}
	error = CS_EINVALID;

	if (sectionlen % BLOCK_SIZE != 0) {
		cs_error_set(CS_EINVALID, "key file '%s' has a private "
			     "section of %zu bytes, not a multiple of %d",
			     path, sectionlen, BLOCK_SIZE);
		goto done;
	}
	priv.p = section;
	priv.left = sectionlen;
	if (sshbuf_read_u32(&priv, &check1) < 0 || sshbuf_read_u32(&priv, &check2) < 0 ||
	    sshbuf_read_string(&priv, &type, &typelen) < 0) {
		cs_error_set(CS_EINVALID, "key file '%s' is truncated", path);
		goto done;
	}
	if (check1 != check2) {
		cs_error_set(CS_EINVALID, "key file '%s' is corrupt "
			     "(check integers differ)", path);
		goto done;
	}
	if (!sshbuf_string_is(type, typelen, KEY_TYPE)) {
		cs_error_set(CS_EINVALID, "key file '%s': unsupported key "
			     "type '%s'", path, sshbuf_quote(q, type, typelen));
		goto done;
	}
	if (sshbuf_read_string(&priv, &pub, &publen) < 0 ||
	    sshbuf_read_string(&priv, &sk, &sklen) < 0 ||
	    sshbuf_read_string(&priv, &comment, &commentlen) < 0) {
		cs_error_set(CS_EINVALID, "key file '%s' is truncated", path);
		goto done;
	}
	if (publen != CS_ED25519_PUBLIC_SIZE ||
	    sklen != CS_ED25519_SEED_SIZE + CS_ED25519_PUBLIC_SIZE) {
		cs_error_set(CS_EINVALID, "key file '%s' has an ed25519 key "
			     "of the wrong size", path);
		goto done;
	}
	/* Padding 1, 2, 3, ... shorter than a block. */
	if (priv.left >= BLOCK_SIZE) {
		cs_error_set(CS_EINVALID, "key file '%s' has trailing data "
			     "in its private section", path);
		goto done;
	}
	pad = priv.p;
	for (i = 0; i < priv.left; i++) {
		if (pad[i] != (uint8_t)(i + 1)) {
			cs_error_set(CS_EINVALID, "key file '%s' has invalid "
				     "padding", path);
			goto done;
		}
	}

	if ((error = key_from_seed(&key, sk)) < 0)
		goto done;
	error = CS_EINVALID;
	if (CRYPTO_memcmp(key->pub, pub, CS_ED25519_PUBLIC_SIZE) != 0 ||
	    CRYPTO_memcmp(key->pub, sk + CS_ED25519_SEED_SIZE,
			  CS_ED25519_PUBLIC_SIZE) != 0 ||
	    CRYPTO_memcmp(key->pub, headerpub, CS_ED25519_PUBLIC_SIZE) != 0) {
		cs_error_set(CS_EINVALID, "key file '%s' is corrupt (public "
			     "key does not match private key)", path);
		goto done;
	}

	*out = key;
	key = NULL; /* transferred */
	error = 0;
done:
	cs_key_free(key);
	return error;
}

int
cs_key_load_private(cs_key **out, const char *path)
{
	struct stat st;
	char *text = NULL, *b64 = NULL;
	uint8_t *blob = NULL;
	size_t len = 0, b64len = 0, bloblen = 0;
	ssize_t n;
	int fd = -1, error = CS_ERROR;

	*out = NULL;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		if (errno == ENOENT)
			error = cs_error_set(CS_ENOTFOUND, "key file '%s' "
					     "does not exist", path);
		else if (errno == EACCES)
			error = cs_error_set(CS_EPERM, "cannot open key file "
					     "'%s': %s", path, strerror(errno));
		else
			error = cs_error_set(CS_ERROR, "cannot open key file "
					     "'%s': %s", path, strerror(errno));
		goto done;
	}
	if (fstat(fd, &st) < 0) {
		error = cs_error_set(CS_ERROR, "cannot stat key file '%s': %s",
				     path, strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		error = cs_error_set(CS_EINVALID, "key file '%s' is not a "
				     "regular file", path);
		goto done;
	}
	/* As ssh: any access by group or others refuses the key. */
	if ((st.st_mode & 077) != 0) {
		error = cs_error_set(CS_EPERM, "key file '%s' is %s by others "
				     "(mode %04o); run chmod 600 %s", path,
				     (st.st_mode & 044) ? "readable" :
				     "accessible",
				     (unsigned)(st.st_mode & 07777), path);
		goto done;
	}
	if (st.st_size > KEY_FILE_MAX) {
		error = cs_error_set(CS_EINVALID, "key file '%s' is too large",
				     path);
		goto done;
	}
	if ((text = malloc(KEY_FILE_MAX + 1)) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	while (len <= KEY_FILE_MAX) {
		n = read(fd, text + len, KEY_FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error = cs_error_set(CS_ERROR, "cannot read key file "
					     "'%s': %s", path, strerror(errno));
			goto done;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > KEY_FILE_MAX) {
		error = cs_error_set(CS_EINVALID, "key file '%s' is too large",
				     path);
		goto done;
	}

	if ((b64 = malloc(len + 1)) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	if ((error = private_armor_body(b64, &b64len, path, text, len)) < 0)
		goto done;
	if ((error = cs_base64_decode(&blob, &bloblen, b64, b64len)) < 0) {
		cs_error_prefix(error, "key file '%s'", path);
		goto done;
	}
	error = parse_private_blob(out, path, blob, bloblen);
done:
	if (fd >= 0)
		close(fd);
	if (text != NULL)
		OPENSSL_cleanse(text, KEY_FILE_MAX + 1);
	if (b64 != NULL)
		OPENSSL_cleanse(b64, len + 1);
	if (blob != NULL)
		OPENSSL_cleanse(blob, bloblen);
	free(text);
	free(b64);
	free(blob);
	return error;
}

static int
write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Build the private key file's text (see the top of this file). */
static int
private_file_text(char **out, size_t *outlen, const cs_key *key,
		  const char *comment)
{
	static const char begin[] = PRIVATE_BEGIN "\n";
	static const char end[] = PRIVATE_END "\n";
	uint8_t *blob = NULL, *p, pubblob[PUBLIC_BLOB_SIZE], check[4];
	uint8_t sk[CS_ED25519_SEED_SIZE + CS_ED25519_PUBLIC_SIZE];
	char *b64 = NULL, *text = NULL, *t;
	size_t clen = strlen(comment), section, padlen, bloblen, b64len, i;
	size_t textlen;
	uint32_t checkint;
	int error = CS_ERROR;

	*out = NULL;
	*outlen = 0;

	section = 8 + 4 + KEY_TYPE_LEN + 4 + CS_ED25519_PUBLIC_SIZE + 4 +
		  sizeof(sk) + 4 + clen;
	padlen = (BLOCK_SIZE - section % BLOCK_SIZE) % BLOCK_SIZE;
	section += padlen;
	bloblen = AUTH_MAGIC_LEN + 4 + 4 + 4 + 4 + 4 + 4 + 4 +
		  sizeof(pubblob) + 4 + section;

	if (RAND_bytes(check, sizeof(check)) != 1) {
		error = openssl_error("random check integer");
		goto done;
	}
	checkint = (uint32_t)check[0] << 24 | (uint32_t)check[1] << 16 |
		   (uint32_t)check[2] << 8 | check[3];
	if ((blob = malloc(bloblen)) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	write_public_blob(pubblob, key->pub);
	memcpy(sk, key->seed, CS_ED25519_SEED_SIZE);
	memcpy(sk + CS_ED25519_SEED_SIZE, key->pub, CS_ED25519_PUBLIC_SIZE);

	p = blob;
	memcpy(p, AUTH_MAGIC, AUTH_MAGIC_LEN);
	p += AUTH_MAGIC_LEN;
	p = sshbuf_put_string(p, "none", 4);
	p = sshbuf_put_string(p, "none", 4);
	p = sshbuf_put_string(p, "", 0);
	p = sshbuf_put_u32(p, 1);
	p = sshbuf_put_string(p, pubblob, sizeof(pubblob));
	p = sshbuf_put_u32(p, (uint32_t)section);
	p = sshbuf_put_u32(p, checkint);
	p = sshbuf_put_u32(p, checkint);
	p = sshbuf_put_string(p, KEY_TYPE, KEY_TYPE_LEN);
	p = sshbuf_put_string(p, key->pub, CS_ED25519_PUBLIC_SIZE);
	p = sshbuf_put_string(p, sk, sizeof(sk));
	p = sshbuf_put_string(p, comment, clen);
	for (i = 0; i < padlen; i++)
		*p++ = (uint8_t)(i + 1);

	if ((error = cs_base64_encode(&b64, blob, bloblen)) < 0)
		goto done;
	b64len = strlen(b64);
	textlen = sizeof(begin) - 1 + b64len +
		  (b64len + ARMOR_COLUMNS - 1) / ARMOR_COLUMNS +
		  sizeof(end) - 1;
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

		memcpy(t, b64 + i, n);
		t += n;
		*t++ = '\n';
	}
	memcpy(t, end, sizeof(end));

	*out = text;
	*outlen = textlen;
	text = NULL; /* transferred */
	error = 0;
done:
	OPENSSL_cleanse(sk, sizeof(sk));
	if (blob != NULL)
		OPENSSL_cleanse(blob, bloblen);
	if (b64 != NULL)
		OPENSSL_cleanse(b64, strlen(b64));
	free(blob);
	free(b64);
	free(text);
	return error;
}

/* fsync the directory holding `path`, so that the new names survive. */
static int
sync_parent(const char *path)
{
	char *dir;
	const char *slash = strrchr(path, '/');
	int fd, rc = 0;

	if (slash == NULL)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (dir == NULL)
		return -1;
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    fsync(fd) < 0)
		rc = -1;
	if (fd >= 0)
		close(fd);
	free(dir);
	return rc;
}

int
cs_key_save_private(const cs_key *key, const char *path, const char *comment)
{
	char *text = NULL, *pubpath = NULL, *publine = NULL, *line = NULL;
	size_t textlen = 0, n;
	int fd = -1, pubfd = -1, created = 0, pubcreated = 0;
	int error = CS_ERROR;

	if (comment == NULL)
		comment = "";
	if (!key->has_private)
		return cs_error_set(CS_EINVALID, "key has no private part to "
				    "save");
	if (strlen(comment) > COMMENT_MAX)
		return cs_error_set(CS_EINVALID, "key comment is too long");
	if (strpbrk(comment, "\r\n") != NULL)
		return cs_error_set(CS_EINVALID, "key comment contains a line "
				    "break");

	if ((error = private_file_text(&text, &textlen, key, comment)) < 0)
		goto done;
	if ((publine = cs_key_public_string(key)) == NULL) {
		error = CS_ERROR;
		goto done;
	}
	n = strlen(publine) + 1 + strlen(comment) + 2;
	if ((line = malloc(n)) == NULL ||
	    asprintf(&pubpath, "%s.pub", path) < 0) {
		pubpath = NULL;
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	snprintf(line, n, "%s%s%s\n", publine, *comment ? " " : "", comment);

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0) {
		if (errno == EEXIST)
			error = cs_error_set(CS_EEXISTS, "key file '%s' "
					     "exists already", path);
		else
			error = cs_error_set(CS_ERROR, "cannot create key "
					     "file '%s': %s", path,
					     strerror(errno));
		goto done;
	}
	created = 1;
	if (write_all(fd, text, textlen) < 0 || fsync(fd) < 0) {
		error = cs_error_set(CS_ERROR, "cannot write key file '%s': %s",
				     path, strerror(errno));
		goto done;
	}
	if (close(fd) < 0) {
		fd = -1;
		error = cs_error_set(CS_ERROR, "cannot write key file '%s': %s",
				     path, strerror(errno));
		goto done;
	}
	fd = -1;

	/* The private file is the truth: a stale .pub is replaced. */
	pubfd = open(pubpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
		     O_NOFOLLOW, 0644);
	if (pubfd < 0) {
		error = cs_error_set(CS_ERROR, "cannot create public key file "
				     "'%s': %s", pubpath, strerror(errno));
		goto done;
	}
	pubcreated = 1;
	if (write_all(pubfd, line, strlen(line)) < 0 || fsync(pubfd) < 0) {
		error = cs_error_set(CS_ERROR, "cannot write public key file "
				     "'%s': %s", pubpath, strerror(errno));
		goto done;
	}
	if (close(pubfd) < 0) {
		pubfd = -1;
		error = cs_error_set(CS_ERROR, "cannot write public key file "
				     "'%s': %s", pubpath, strerror(errno));
		goto done;
	}
	pubfd = -1;
	if (sync_parent(path) < 0) {
		error = cs_error_set(CS_ERROR, "cannot sync the directory of "
				     "'%s': %s", path, strerror(errno));
		goto done;
	}
	created = pubcreated = 0; /* keep them */
	error = 0;
done:
	if (fd >= 0)
		close(fd);
	if (pubfd >= 0)
		close(pubfd);
	/* All or nothing: no half-written key is left behind. */
	if (created)
		unlink(path);
	if (pubcreated)
		unlink(pubpath);
	if (text != NULL)
		OPENSSL_cleanse(text, textlen);
	free(text);
	free(publine);
	free(line);
	free(pubpath);
	return error;
}
