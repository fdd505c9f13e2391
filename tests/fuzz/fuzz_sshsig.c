/*
 * cartosync — libFuzzer target for cs_sshsig_verify().
 *
 * The first input byte picks a mode; the rest (at most 64 KiB) is:
 *   0  an armor, verified as is;
 *   1  edits applied to the blob of a valid signature, which is then
 *      re-armored canonically, so that the fuzzer reaches the blob parser
 *      and the signature check instead of stopping at the armor;
 *   2  a message, checked against a valid signature of another message.
 * Besides the sanitizers, each mode asserts what must hold: nothing but the
 * valid signature itself verifies (the armor is canonical, the blob has one
 * encoding, Ed25519 as OpenSSL checks it is not malleable).
 *
 * Build: CC=clang meson setup build-fuzz -Dfuzz=true \
 *          -Db_sanitize=address,undefined -Db_lundef=false
 *        ninja -C build-fuzz tests/fuzz/fuzz_sshsig
 * Run:   build-fuzz/tests/fuzz/fuzz_sshsig -max_total_time=30 CORPUS_DIR
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cartosync/base64.h"
#include "cartosync/error.h"
#include "cartosync/key.h"
#include "cartosync/sshsig.h"

#define INPUT_MAX (64 * 1024)
#define BLOB_MAX 2048

static const char message[] =
	"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"
	"author Fuzz <fuzz@example.org> 1735689600 +0000\n"
	"committer Fuzz <fuzz@example.org> 1735689600 +0000\n"
	"\n"
	"fuzz\n";

static char *valid_armor;
static size_t valid_armor_len;
static uint8_t *valid_blob;
static size_t valid_blob_len;

static void
put_u32(uint8_t **p, uint32_t v)
{
	(*p)[0] = (uint8_t)(v >> 24);
	(*p)[1] = (uint8_t)(v >> 16);
	(*p)[2] = (uint8_t)(v >> 8);
	(*p)[3] = (uint8_t)v;
	*p += 4;
}

static void
put_string(uint8_t **p, const void *s, size_t len)
{
	put_u32(p, (uint32_t)len);
	memcpy(*p, s, len);
	*p += len;
}

static void
die(const char *what)
{
	fprintf(stderr, "fuzz_sshsig: %s: %s\n", what, cs_error_last());
	abort();
}

/*
 * A fixed key, so that crashes reproduce: RFC 8032 §7.1 TEST 1, written as
 * an unencrypted openssh-key-v1 file (the only way the key API takes a
 * seed) and loaded.
 */
static cs_key *
fixed_key(void)
{
	static const uint8_t seed[32] = {
		0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84,
		0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69,
		0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae,
		0x7f, 0x60,
	};
	static const uint8_t pub[32] = {
		0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b,
		0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3,
		0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07,
		0x51, 0x1a,
	};
	uint8_t blob[512], pubblob[51], sk[64], *p, *q;
	char path[] = "/tmp/fuzz-sshsig-key-XXXXXX", *b64;
	cs_key *key;
	size_t i, n;
	int fd;

	memcpy(sk, seed, 32);
	memcpy(sk + 32, pub, 32);
	p = pubblob;
	put_string(&p, "ssh-ed25519", 11);
	put_string(&p, pub, 32);
	p = blob;
	memcpy(p, "openssh-key-v1", 15);
	p += 15;
	put_string(&p, "none", 4);
	put_string(&p, "none", 4);
	put_string(&p, "", 0);
	put_u32(&p, 1);
	put_string(&p, pubblob, sizeof(pubblob));
	q = p;
	put_u32(&p, 0);
	put_u32(&p, 0x46555a5a);
	put_u32(&p, 0x46555a5a);
	put_string(&p, "ssh-ed25519", 11);
	put_string(&p, pub, 32);
	put_string(&p, sk, 64);
	put_string(&p, "fuzz", 4);
	for (i = 1; (p - q - 4) % 8 != 0; i++)
		*p++ = (uint8_t)i;
	put_u32(&q, (uint32_t)(p - q - 4));
	if (cs_base64_encode(&b64, blob, (size_t)(p - blob)) < 0)
		die("encode");

	if ((fd = mkstemp(path)) < 0)
		die("mkstemp");
	n = strlen(b64);
	dprintf(fd, "-----BEGIN OPENSSH PRIVATE KEY-----\n");
	for (i = 0; i < n; i += 70)
		dprintf(fd, "%.70s\n", b64 + i);
	dprintf(fd, "-----END OPENSSH PRIVATE KEY-----\n");
	close(fd);
	if (cs_key_load_private(&key, path) < 0)
		die("load key");
	unlink(path);
	free(b64);
	return key;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	cs_key *key = fixed_key();
	char b64[4096];
	const char *p;
	size_t n = 0;

	if (cs_sshsig_sign(&valid_armor, key, "git", (const uint8_t *)message,
			   strlen(message)) < 0)
		die("sign");
	valid_armor_len = strlen(valid_armor);
	for (p = strchr(valid_armor, '\n') + 1; *p != '-'; p++)
		if (*p != '\n')
			b64[n++] = *p;
	if (cs_base64_decode(&valid_blob, &valid_blob_len, b64, n) < 0)
		die("decode");
	if (cs_sshsig_verify(NULL, valid_armor, valid_armor_len, "git",
			     (const uint8_t *)message, strlen(message)) != 0)
		die("verify");
	cs_key_free(key);
	return 0;
}

static int
verify(const char *armor, size_t len, const uint8_t *msg, size_t msglen)
{
	cs_key *signer = NULL;
	int rc;

	rc = cs_sshsig_verify(&signer, armor, len, "git", msg, msglen);
	if ((rc == 0) != (signer != NULL))
		die("signer and result disagree");
	if (rc != 0 && rc != CS_EINVALID && rc != CS_EVERIFY)
		die("unexpected error code");
	cs_key_free(signer);
	return rc;
}

/* The canonical armor of a blob (as cs_sshsig_sign writes it). */
static char *
armor_of(const uint8_t *blob, size_t len)
{
	static const char begin[] = "-----BEGIN SSH SIGNATURE-----\n";
	static const char end[] = "\n-----END SSH SIGNATURE-----";
	char *b64, *out, *t;
	size_t n, i;

	if (cs_base64_encode(&b64, blob, len) < 0)
		die("encode");
	n = strlen(b64);
	out = malloc(sizeof(begin) + n + n / 70 + sizeof(end) + 1);
	t = out + sprintf(out, "%s", begin);
	for (i = 0; i < n; i += 70)
		t += sprintf(t, "%s%.70s", i > 0 ? "\n" : "", b64 + i);
	sprintf(t, "%s", end);
	free(b64);
	return out;
}

/* Mode 1: 4-byte edits (kind, offset high, offset low, value). */
static void
mutate_blob(const uint8_t *ops, size_t n)
{
	uint8_t blob[BLOB_MAX];
	size_t len = valid_blob_len, pos, i;
	char *armor;
	int rc;

	memcpy(blob, valid_blob, len);
	for (i = 0; i + 4 <= n; i += 4) {
		pos = ((size_t)ops[i + 1] << 8 | ops[i + 2]) % (len + 1);
		switch (ops[i] % 4) {
		case 0:
			if (pos < len)
				blob[pos] ^= ops[i + 3];
			break;
		case 1:
			if (len < BLOB_MAX) {
				memmove(blob + pos + 1, blob + pos, len - pos);
				blob[pos] = ops[i + 3];
				len++;
			}
			break;
		case 2:
			if (pos < len) {
				memmove(blob + pos, blob + pos + 1,
					len - pos - 1);
				len--;
			}
			break;
		case 3:
			len = pos;
			break;
		}
	}
	if (len == 0)
		return;
	armor = armor_of(blob, len);
	rc = verify(armor, strlen(armor), (const uint8_t *)message,
		    strlen(message));
	if (rc == 0 && (len != valid_blob_len ||
			memcmp(blob, valid_blob, len) != 0))
		die("a changed blob verified");
	free(armor);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int rc;

	if (size < 1 || size > INPUT_MAX)
		return 0;
	switch (data[0] % 3) {
	case 0:
		rc = verify((const char *)data + 1, size - 1,
			    (const uint8_t *)message, strlen(message));
		if (rc == 0 && (size - 1 != valid_armor_len ||
				memcmp(data + 1, valid_armor, size - 1) != 0))
			die("a second armor verified");
		break;
	case 1:
		mutate_blob(data + 1, size - 1);
		break;
	case 2:
		rc = verify(valid_armor, valid_armor_len, data + 1, size - 1);
		if (rc == 0 && (size - 1 != strlen(message) ||
				memcmp(data + 1, message, size - 1) != 0))
			die("another message verified");
		break;
	}
	cs_error_clear();
	return 0;
}
