/*
 * cartosync — Ed25519 keys in OpenSSH formats, checked against the real
 * ssh-keygen both ways, against RFC 8032's first test vector, and with
 * malformed files that must be refused with a message saying why.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cartosync/base64.h"
#include "cartosync/error.h"
#include "cartosync/key.h"

/*
 * main() makes one directory per run and removes it at the end, whatever
 * happened: Check skips the teardown of a test that failed.
 */
static char rootdir[64];
static char tmpdir[128];

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/XXXXXX", rootdir);
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	umask(022);
}

static void
teardown(void)
{
	char cmd[192];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static int
remove_rootdir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", rootdir);
	return system(cmd);
}

/* A path inside the test's directory (static buffers, rotated). */
static const char *
tpath(const char *name)
{
	static char bufs[8][PATH_MAX];
	static int next;
	char *p = bufs[next++ % 8];

	snprintf(p, PATH_MAX, "%s/%s", tmpdir, name);
	return p;
}

/* Run a shell command; its first output line goes into `line`. */
static int run(char *out, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
run(char *line, size_t size, const char *fmt, ...)
{
	char cmd[2 * PATH_MAX];
	va_list ap;
	FILE *f;
	size_t n;
	int status;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ck_assert_ptr_nonnull(f = popen(cmd, "r"));
	line[0] = '\0';
	if (fgets(line, (int)size, f) != NULL) {
		n = strlen(line);
		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = '\0';
	}
	while (fgetc(f) != EOF)
		;
	status = pclose(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The first `n` space-separated fields of `s`, in place. */
static char *
fields(char *s, int n)
{
	char *p = s;

	while (*p != '\0') {
		if (*p == ' ' && --n == 0) {
			*p = '\0';
			break;
		}
		p++;
	}
	return s;
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	buf = malloc(1 << 16);
	n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	if (len != NULL)
		*len = n;
	return buf;
}

static void
write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
}

static void
keygen(const char *name, const char *args)
{
	char out[256];

	ck_assert_int_eq(run(out, sizeof(out), "ssh-keygen -q %s -C c -f %s "
			     "</dev/null >/dev/null 2>&1", args, tpath(name)),
			 0);
}

/* The decoded blob of a private key file as ssh-keygen wrote it. */
static uint8_t *
key_blob(const char *path, size_t *len)
{
	char *text = read_file(path, NULL), *b64, *p, *q;
	uint8_t *blob;

	b64 = malloc(strlen(text) + 1);
	p = strchr(text, '\n') + 1;
	q = b64;
	while (*p != '\0' && *p != '-') {
		if (*p != '\n')
			*q++ = *p;
		p++;
	}
	ck_assert_int_eq(cs_base64_decode(&blob, len, b64,
					  (size_t)(q - b64)), 0);
	free(text);
	free(b64);
	return blob;
}

/* Armor a blob as ssh-keygen does and write it with mode 0600. */
static void
write_key_blob(const char *path, const uint8_t *blob, size_t len)
{
	char *b64, text[8192];
	size_t n = 0, i, b64len;

	ck_assert_int_eq(cs_base64_encode(&b64, blob, len), 0);
	b64len = strlen(b64);
	n += (size_t)sprintf(text, "-----BEGIN OPENSSH PRIVATE KEY-----\n");
	for (i = 0; i < b64len; i += 70)
		n += (size_t)sprintf(text + n, "%.70s\n", b64 + i);
	n += (size_t)sprintf(text + n, "-----END OPENSSH PRIVATE KEY-----\n");
	write_file(path, text, n, 0600);
	free(b64);
}

/* Expect load to fail with `code` and a message containing `needle`. */
static void
expect_load_error(const char *path, int code, const char *needle)
{
	cs_key *key = (cs_key *)1;
	int rc;

	cs_error_clear();
	rc = cs_key_load_private(&key, path);
	ck_assert_msg(rc == code, "%s: got %d (%s), expected %d", path, rc,
		      cs_error_last(), code);
	ck_assert_ptr_null(key);
	ck_assert_msg(strstr(cs_error_last(), needle) != NULL,
		      "message '%s' lacks '%s'", cs_error_last(), needle);
	ck_assert_ptr_null(strchr(cs_error_last(), '\n'));
}

START_TEST(test_roundtrip)
{
	cs_key *key, *loaded;
	uint8_t sig[CS_ED25519_SIGNATURE_SIZE];
	char *pub, *pub2, *pubfile, expect[256];
	struct stat st;

	ck_assert_int_eq(cs_key_generate(&key), 0);
	ck_assert(cs_key_has_private(key));
	ck_assert_int_eq(cs_key_save_private(key, tpath("k"),
					     "test@cartosync"), 0);
	ck_assert_int_eq(stat(tpath("k"), &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(stat(tpath("k.pub"), &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0644);

	ck_assert_int_eq(cs_key_load_private(&loaded, tpath("k")), 0);
	ck_assert(cs_key_has_private(loaded));
	ck_assert(cs_key_equal(key, loaded));
	ck_assert_mem_eq(cs_key_public_bytes(key), cs_key_public_bytes(loaded),
			 CS_ED25519_PUBLIC_SIZE);
	pub = cs_key_public_string(key);
	pub2 = cs_key_public_string(loaded);
	ck_assert_str_eq(pub, pub2);
	ck_assert(strncmp(pub, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", 37) ==
		  0);
	ck_assert_uint_eq(strlen(pub), 12 + 68);

	snprintf(expect, sizeof(expect), "%s test@cartosync\n", pub);
	pubfile = read_file(tpath("k.pub"), NULL);
	ck_assert_str_eq(pubfile, expect);

	/* The loaded private half signs for the original public half. */
	ck_assert_int_eq(cs_key_sign_raw(loaded, (const uint8_t *)"m", 1, sig),
			 0);
	ck_assert_int_eq(cs_key_verify_raw(key, (const uint8_t *)"m", 1, sig),
			 0);
	ck_assert_int_eq(cs_key_verify_raw(key, (const uint8_t *)"n", 1, sig),
			 CS_EVERIFY);
	sig[5] ^= 1;
	ck_assert_int_eq(cs_key_verify_raw(key, (const uint8_t *)"m", 1, sig),
			 CS_EVERIFY);

	free(pub);
	free(pub2);
	free(pubfile);
	cs_key_free(key);
	cs_key_free(loaded);
}
END_TEST

START_TEST(test_save_refuses_existing)
{
	cs_key *a, *b, *loaded;

	ck_assert_int_eq(cs_key_generate(&a), 0);
	ck_assert_int_eq(cs_key_generate(&b), 0);
	ck_assert(!cs_key_equal(a, b));
	ck_assert_int_eq(cs_key_save_private(a, tpath("k"), NULL), 0);
	ck_assert_int_eq(cs_key_save_private(b, tpath("k"), NULL),
			 CS_EEXISTS);
	ck_assert_ptr_nonnull(strstr(cs_error_last(), "exists"));
	ck_assert_int_eq(cs_key_load_private(&loaded, tpath("k")), 0);
	ck_assert(cs_key_equal(a, loaded));
	ck_assert_int_eq(cs_key_save_private(a, tpath("k2"), "a\nb"),
			 CS_EINVALID);
	ck_assert_int_eq(access(tpath("k2"), F_OK), -1);
	cs_key_free(a);
	cs_key_free(b);
	cs_key_free(loaded);
}
END_TEST

/* ssh-keygen reads what we write: the same public line and fingerprint. */
START_TEST(test_ssh_keygen_reads_ours)
{
	cs_key *key;
	char *pub, *fp, out[512];

	ck_assert_int_eq(cs_key_generate(&key), 0);
	ck_assert_int_eq(cs_key_save_private(key, tpath("ours"), "ours@test"),
			 0);
	/* Without the .pub beside it, ssh-keygen must read the private file. */
	ck_assert_int_eq(unlink(tpath("ours.pub")), 0);
	pub = cs_key_public_string(key);
	fp = cs_key_fingerprint(key);

	ck_assert_int_eq(run(out, sizeof(out), "ssh-keygen -y -f %s "
			     "2>/dev/null", tpath("ours")), 0);
	ck_assert_str_eq(fields(out, 2), pub);
	ck_assert_int_eq(run(out, sizeof(out), "ssh-keygen -y -f %s "
			     "2>/dev/null", tpath("ours")), 0);
	ck_assert_ptr_nonnull(strstr(out, " ours@test"));

	ck_assert_int_eq(run(out, sizeof(out), "ssh-keygen -l -f %s "
			     "2>/dev/null | cut -d' ' -f2", tpath("ours")), 0);
	ck_assert_str_eq(out, fp);
	ck_assert(strncmp(fp, "SHA256:", 7) == 0);
	ck_assert_uint_eq(strlen(fp), 7 + 43);

	free(pub);
	free(fp);
	cs_key_free(key);
}
END_TEST

/* We read what ssh-keygen writes, and agree on line and fingerprint. */
START_TEST(test_we_read_ssh_keygen)
{
	cs_key *key, *parsed;
	char *pub, *fp, *pubfile, out[512];

	keygen("x", "-t ed25519 -N ''");
	ck_assert_int_eq(cs_key_load_private(&key, tpath("x")), 0);
	ck_assert(cs_key_has_private(key));
	pub = cs_key_public_string(key);
	fp = cs_key_fingerprint(key);

	pubfile = read_file(tpath("x.pub"), NULL);
	ck_assert_int_eq(cs_key_parse_public(&parsed, pubfile), 0);
	ck_assert(cs_key_equal(key, parsed));
	ck_assert(!cs_key_has_private(parsed));
	ck_assert_str_eq(fields(pubfile, 2), pub);

	ck_assert_int_eq(run(out, sizeof(out), "ssh-keygen -l -f %s "
			     "2>/dev/null | cut -d' ' -f2", tpath("x")), 0);
	ck_assert_str_eq(out, fp);

	free(pub);
	free(fp);
	free(pubfile);
	cs_key_free(key);
	cs_key_free(parsed);
}
END_TEST

/*
 * Our file has ssh-keygen's structure byte for byte: same armor lines, and
 * the same blob but for the random check integers.  They sit after the
 * magic (15), "none" twice (16), empty kdf options (4), the key count (4),
 * the public key blob (4 + 51) and the private section's length (4).
 */
#define CHECKINT_OFFSET 98

START_TEST(test_same_structure_as_ssh_keygen)
{
	cs_key *key;
	char *theirs, *ours, *a, *b;
	uint8_t *tblob, *oblob;
	size_t tlen, olen, tbloblen, obloblen, i;

	keygen("x", "-t ed25519 -N ''");
	ck_assert_int_eq(cs_key_load_private(&key, tpath("x")), 0);
	ck_assert_int_eq(cs_key_save_private(key, tpath("y"), "c"), 0);
	theirs = read_file(tpath("x"), &tlen);
	ours = read_file(tpath("y"), &olen);
	ck_assert_uint_eq(olen, tlen);
	ck_assert_str_eq(ours + olen - 34,
			 "-----END OPENSSH PRIVATE KEY-----\n");
	/* Same line lengths (the checkints only change letters). */
	for (a = theirs, b = ours; *a != '\0'; a++, b++)
		ck_assert_int_eq(*a == '\n', *b == '\n');

	tblob = key_blob(tpath("x"), &tbloblen);
	oblob = key_blob(tpath("y"), &obloblen);
	ck_assert_uint_eq(obloblen, tbloblen);
	for (i = 0; i < tbloblen; i++)
		if (i < CHECKINT_OFFSET || i >= CHECKINT_OFFSET + 8)
			ck_assert_msg(tblob[i] == oblob[i], "byte %zu differs",
				      i);
	ck_assert_mem_eq(oblob + CHECKINT_OFFSET, oblob + CHECKINT_OFFSET + 4,
			 4);

	free(theirs);
	free(ours);
	free(tblob);
	free(oblob);
	cs_key_free(key);
}
END_TEST

START_TEST(test_mode_refused)
{
	static const mode_t refused[] = { 0644, 0640, 0604, 0660, 0620, 0601,
					  0700 | 0007 };
	cs_key *key, *loaded;
	char needle[64];
	size_t i;

	ck_assert_int_eq(cs_key_generate(&key), 0);
	ck_assert_int_eq(cs_key_save_private(key, tpath("k"), NULL), 0);
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		ck_assert_int_eq(chmod(tpath("k"), refused[i]), 0);
		snprintf(needle, sizeof(needle), "(mode %04o); run chmod 600",
			 (unsigned)refused[i]);
		expect_load_error(tpath("k"), CS_EPERM, needle);
	}
	ck_assert_int_eq(chmod(tpath("k"), 0644), 0);
	expect_load_error(tpath("k"), CS_EPERM, "is readable by others");
	ck_assert_int_eq(chmod(tpath("k"), 0400), 0);
	ck_assert_int_eq(cs_key_load_private(&loaded, tpath("k")), 0);
	cs_key_free(loaded);
	ck_assert_int_eq(chmod(tpath("k"), 0600), 0);
	ck_assert_int_eq(cs_key_load_private(&loaded, tpath("k")), 0);
	cs_key_free(loaded);
	cs_key_free(key);
}
END_TEST

START_TEST(test_malformed_files)
{
	char *text;
	uint8_t *blob, *b2;
	size_t len, bloblen;

	keygen("x", "-t ed25519 -N ''");
	text = read_file(tpath("x"), &len);
	blob = key_blob(tpath("x"), &bloblen);
	b2 = malloc((len > bloblen ? len : bloblen) + 8);

	expect_load_error(tpath("missing"), CS_ENOTFOUND, "does not exist");

	write_file(tpath("empty"), "", 0, 0600);
	expect_load_error(tpath("empty"), CS_EINVALID, "does not start");

	write_file(tpath("half"), text, len / 2, 0600);
	expect_load_error(tpath("half"), CS_EINVALID, "truncated");

	write_key_blob(tpath("short"), blob, bloblen - 9);
	expect_load_error(tpath("short"), CS_EINVALID, "truncated");

	memcpy(b2, blob, bloblen);
	b2[0] = 'O';
	write_key_blob(tpath("magic"), b2, bloblen);
	expect_load_error(tpath("magic"), CS_EINVALID, "openssh-key-v1");

	memcpy(b2, blob, bloblen);
	b2[38] = 2; /* number of keys */
	write_key_blob(tpath("nkeys"), b2, bloblen);
	expect_load_error(tpath("nkeys"), CS_EINVALID, "2 keys");

	memcpy(b2, blob, bloblen);
	b2[CHECKINT_OFFSET] ^= 1;
	write_key_blob(tpath("checkint"), b2, bloblen);
	expect_load_error(tpath("checkint"), CS_EINVALID, "check integers");

	memcpy(b2, blob, bloblen);
	b2[bloblen - 1] ^= 0x40; /* last padding byte */
	write_key_blob(tpath("padding"), b2, bloblen);
	expect_load_error(tpath("padding"), CS_EINVALID, "padding");

	memcpy(b2, blob, bloblen);
	b2[70] ^= 1; /* inside the public key blob's key */
	write_key_blob(tpath("pubmismatch"), b2, bloblen);
	expect_load_error(tpath("pubmismatch"), CS_EINVALID,
			  "does not match");

	memcpy(b2, blob, bloblen);
	/* the seed: after the check integers, the type and the public key */
	b2[CHECKINT_OFFSET + 8 + 15 + 36 + 4 + 1] ^= 1;
	write_key_blob(tpath("seed"), b2, bloblen);
	expect_load_error(tpath("seed"), CS_EINVALID, "does not match");

	memcpy(b2, blob, bloblen);
	memcpy(b2 + bloblen, "\0\0\0\0", 4);
	write_key_blob(tpath("trailing"), b2, bloblen + 4);
	expect_load_error(tpath("trailing"), CS_EINVALID, "trailing data");

	memcpy(b2, text, len);
	memcpy(b2 + len, "x\n", 2);
	write_file(tpath("after-end"), b2, len + 2, 0600);
	expect_load_error(tpath("after-end"), CS_EINVALID, "after");

	write_file(tpath("pubonly"), "ssh-ed25519 AAAA\n", 17, 0600);
	expect_load_error(tpath("pubonly"), CS_EINVALID, "does not start");

	keygen("enc", "-t ed25519 -N secret-pass");
	expect_load_error(tpath("enc"), CS_EINVALID, "is encrypted");

	keygen("rsa", "-t rsa -b 2048 -N ''");
	expect_load_error(tpath("rsa"), CS_EINVALID, "'ssh-rsa'");

	keygen("ecdsa", "-t ecdsa -N ''");
	expect_load_error(tpath("ecdsa"), CS_EINVALID, "'ecdsa-sha2-nistp256'");

	keygen("pem", "-t ecdsa -m PEM -N ''");
	expect_load_error(tpath("pem"), CS_EINVALID, "not an openssh");

	ck_assert_int_eq(mkdir(tpath("dir"), 0700), 0);
	expect_load_error(tpath("dir"), CS_EINVALID, "not a regular file");

	free(text);
	free(blob);
	free(b2);
}
END_TEST

/* Line breaks in the armor are not the key: CRLF files still load. */
START_TEST(test_crlf_file_loads)
{
	cs_key *a, *b;
	char *text, *crlf, *p, *q;
	size_t len;

	keygen("x", "-t ed25519 -N ''");
	ck_assert_int_eq(cs_key_load_private(&a, tpath("x")), 0);
	text = read_file(tpath("x"), &len);
	crlf = malloc(2 * len + 1);
	for (p = text, q = crlf; *p != '\0'; p++) {
		if (*p == '\n')
			*q++ = '\r';
		*q++ = *p;
	}
	write_file(tpath("crlf"), crlf, (size_t)(q - crlf), 0600);
	ck_assert_int_eq(cs_key_load_private(&b, tpath("crlf")), 0);
	ck_assert(cs_key_equal(a, b));
	free(text);
	free(crlf);
	cs_key_free(a);
	cs_key_free(b);
}
END_TEST

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
unhex(uint8_t *out, const char *hex)
{
	size_t i;

	for (i = 0; hex[2 * i] != '\0'; i++)
		sscanf(hex + 2 * i, "%2hhx", &out[i]);
}

/*
 * RFC 8032 §7.1 TEST 1, through a key file this test builds by hand from
 * PROTOCOL.key: the public key we derive and the signature we make are the
 * RFC's.
 */
START_TEST(test_rfc8032_vector)
{
	uint8_t seed[32], pub[32], expect_sig[64], sig[64];
	uint8_t blob[512], pubblob[51], sk[64], *p, *q;
	cs_key *key;
	char *line, *fp;
	int i;

	unhex(seed, "9d61b19deffd5a60ba844af492ec2cc4"
		    "4449c5697b326919703bac031cae7f60");
	unhex(pub, "d75a980182b10ab7d54bfed3c964073a"
		   "0ee172f3daa62325af021a68f707511a");
	unhex(expect_sig, "e5564300c360ac729086e2cc806e828a"
			  "84877f1eb8e5d974d873e06522490155"
			  "5fb8821590a33bacc61e39701cf9b46b"
			  "d25bf5f0595bbe24655141438e7a100b");
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
	put_u32(&p, 0); /* section length, below */
	put_u32(&p, 0x01020304);
	put_u32(&p, 0x01020304);
	put_string(&p, "ssh-ed25519", 11);
	put_string(&p, pub, 32);
	put_string(&p, sk, 64);
	put_string(&p, "rfc8032", 7);
	for (i = 1; (p - q - 4) % 8 != 0; i++)
		*p++ = (uint8_t)i;
	put_u32(&q, (uint32_t)(p - q - 4));
	write_key_blob(tpath("rfc"), blob, (size_t)(p - blob));

	ck_assert_int_eq(cs_key_load_private(&key, tpath("rfc")), 0);
	ck_assert_mem_eq(cs_key_public_bytes(key), pub, 32);
	ck_assert_int_eq(cs_key_sign_raw(key, (const uint8_t *)"", 0, sig), 0);
	ck_assert_mem_eq(sig, expect_sig, 64);
	ck_assert_int_eq(cs_key_verify_raw(key, (const uint8_t *)"", 0, sig),
			 0);

	/* And ssh-keygen agrees with the hand-built file. */
	line = cs_key_public_string(key);
	fp = cs_key_fingerprint(key);
	{
		char out[512];

		ck_assert_int_eq(run(out, sizeof(out), "ssh-keygen -y -f %s "
				     "2>/dev/null", tpath("rfc")), 0);
		ck_assert_str_eq(fields(out, 2), line);
		ck_assert_int_eq(run(out, sizeof(out), "ssh-keygen -l -f %s "
				     "2>/dev/null | cut -d' ' -f2",
				     tpath("rfc")), 0);
		ck_assert_str_eq(out, fp);
	}
	free(line);
	free(fp);
	cs_key_free(key);
}
END_TEST

START_TEST(test_parse_public)
{
	cs_key *key, *parsed;
	char *pub, line[512];
	const char *suffixes[] = { "", " comment", " a b c", "\n", " c\n",
				   " c\r\n", "\t\tc" };
	size_t i;

	ck_assert_int_eq(cs_key_generate(&key), 0);
	pub = cs_key_public_string(key);
	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(line, sizeof(line), "%s%s", pub, suffixes[i]);
		ck_assert_msg(cs_key_parse_public(&parsed, line) == 0,
			      "refused '%s': %s", line, cs_error_last());
		ck_assert(cs_key_equal(key, parsed));
		ck_assert(!cs_key_has_private(parsed));
		cs_key_free(parsed);
	}
	snprintf(line, sizeof(line), "ssh-ed25519\t%s", pub + 12);
	ck_assert_int_eq(cs_key_parse_public(&parsed, line), 0);
	cs_key_free(parsed);
	free(pub);
	cs_key_free(key);
}
END_TEST

START_TEST(test_parse_public_invalid)
{
	/* A valid line to corrupt: the RFC 8032 key. */
	static const char good[] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINdam"
				   "AGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea";
	static const struct {
		const char *line;
		const char *needle;
	} cases[] = {
		{ "", "key type" },
		{ " ssh-ed25519 AAAA", "key type" },
		{ "ssh-ed25519", "no key data" },
		{ "ssh-ed25519 ", "no key data" },
		{ "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ", "'ssh-rsa'" },
		{ "from=\"10.0.0.1\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINdam"
		  "AGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea", "unsupported" },
		{ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINdamAGCsQq31Uv+08lkBzo"
		  "O4XLz2qYjJa8CGmj3B1E", "base64" },
		{ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINdamAGCsQq31Uv+08lkBzo"
		  "O4XLz2qYjJa8CGmj3B1EaAB==", "trailing bits" },
		/* string "ssh-ed25519" string(31 bytes) */
		{ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAH9damAGCsQq31Uv+08lkBzo"
		  "O4XLz2qYjJa8CGmj3B1E=", "31 bytes" },
		/* the blob of an ssh-rsa key behind an ssh-ed25519 label */
		{ "ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAAAAgC7", "'ssh-rsa'" },
		/* the key and 3 more bytes */
		{ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINdamAGCsQq31Uv+08lkBzo"
		  "O4XLz2qYjJa8CGmj3B1EaAAAA", "trailing data" },
		{ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINdamAGCsQq31Uv+08lkBzo"
		  "O4XLz2qYjJa8CGmj3B1Ea\nssh-ed25519 AAAA", "line break" },
		{ "ecdsa-sha2-nistp256 AAAA", "'ecdsa-sha2-nistp256'" },
	};
	cs_key *key;
	size_t i;

	ck_assert_int_eq(cs_key_parse_public(&key, good), 0);
	cs_key_free(key);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		key = (cs_key *)1;
		cs_error_clear();
		ck_assert_msg(cs_key_parse_public(&key, cases[i].line) ==
			      CS_EINVALID, "accepted '%s'", cases[i].line);
		ck_assert_ptr_null(key);
		ck_assert_msg(strstr(cs_error_last(), cases[i].needle) != NULL,
			      "'%s': message '%s' lacks '%s'", cases[i].line,
			      cs_error_last(), cases[i].needle);
	}
}
END_TEST

START_TEST(test_public_only)
{
	cs_key *key, *pubkey;
	uint8_t sig[64], *blob;
	size_t bloblen;
	char *a, *b;

	ck_assert_int_eq(cs_key_generate(&key), 0);
	ck_assert_int_eq(cs_key_from_public_bytes(&pubkey,
						  cs_key_public_bytes(key)), 0);
	ck_assert(!cs_key_has_private(pubkey));
	ck_assert(cs_key_equal(key, pubkey));
	ck_assert_int_eq(cs_key_sign_raw(pubkey, (const uint8_t *)"x", 1, sig),
			 CS_EINVALID);
	ck_assert_int_eq(cs_key_save_private(pubkey, tpath("p"), NULL),
			 CS_EINVALID);
	ck_assert_int_eq(cs_key_sign_raw(key, (const uint8_t *)"x", 1, sig),
			 0);
	ck_assert_int_eq(cs_key_verify_raw(pubkey, (const uint8_t *)"x", 1,
					   sig), 0);

	ck_assert_int_eq(cs_key_public_blob(&blob, &bloblen, pubkey), 0);
	ck_assert_uint_eq(bloblen, 51);
	ck_assert_mem_eq(blob, "\0\0\0\013ssh-ed25519\0\0\0\040", 19);
	ck_assert_mem_eq(blob + 19, cs_key_public_bytes(key), 32);
	a = cs_key_fingerprint(key);
	b = cs_key_fingerprint(pubkey);
	ck_assert_str_eq(a, b);
	free(a);
	free(b);
	free(blob);
	cs_key_free(pubkey);
	cs_key_free(key);
	cs_key_free(NULL);
	ck_assert(cs_key_equal(NULL, NULL));
}
END_TEST

static Suite *
key_suite(void)
{
	Suite *s = suite_create("key");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_save_refuses_existing);
	tcase_add_test(tc, test_ssh_keygen_reads_ours);
	tcase_add_test(tc, test_we_read_ssh_keygen);
	tcase_add_test(tc, test_same_structure_as_ssh_keygen);
	tcase_add_test(tc, test_mode_refused);
	tcase_add_test(tc, test_malformed_files);
	tcase_add_test(tc, test_crlf_file_loads);
	tcase_add_test(tc, test_rfc8032_vector);
	tcase_add_test(tc, test_parse_public);
	tcase_add_test(tc, test_parse_public_invalid);
	tcase_add_test(tc, test_public_only);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(key_suite());
	int failed;

	snprintf(rootdir, sizeof(rootdir), "/tmp/cs-test-key-XXXXXX");
	if (mkdtemp(rootdir) == NULL) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (remove_rootdir() != 0)
		failed++;
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
