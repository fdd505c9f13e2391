/*
 * cartosync — SSHSIG: interoperability with ssh-keygen -Y both ways, the
 * stored cases in tests/data/sshsig/{valid,invalid}/ (see gen.py there),
 * and generated forgeries: every byte of the blob, the signature, the
 * message and the armor changed in turn must be refused.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
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
#include "cartosync/sshsig.h"

#define BEGIN "-----BEGIN SSH SIGNATURE-----\n"
#define END "\n-----END SSH SIGNATURE-----"

/* A typical commit payload, the bytes git signs. */
static const char payload[] =
	"tree 9bd4c6b5d3ab0e7f2b2c1f7f0a5f0d5c3b8e1a27\n"
	"parent 2f4e1c0a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f\n"
	"author Association Solidarite Nord <edits@asn.example> "
	"1735689600 +0000\n"
	"committer Association Solidarite Nord <edits@asn.example> "
	"1735689600 +0000\n"
	"\n"
	"records: add location 'centre-social-nord-2'\n";

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

static const char *
tpath(const char *name)
{
	static char bufs[8][PATH_MAX];
	static int next;
	char *p = bufs[next++ % 8];

	snprintf(p, PATH_MAX, "%s/%s", tmpdir, name);
	return p;
}

/* Run a shell command; returns its exit status, output in `out`. */
static int run(char *out, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
run(char *out, size_t size, const char *fmt, ...)
{
	char cmd[4 * PATH_MAX];
	va_list ap;
	FILE *f;
	size_t n;
	int status;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ck_assert_ptr_nonnull(f = popen(cmd, "r"));
	n = fread(out, 1, size - 1, f);
	out[n] = '\0';
	while (fgetc(f) != EOF)
		;
	status = pclose(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (f == NULL)
		return NULL;
	buf = malloc(1 << 16);
	n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	if (len != NULL)
		*len = n;
	return buf;
}

static void
write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

static int
verify(const char *armor, size_t len, const char *ns, const void *data,
       size_t datalen)
{
	return cs_sshsig_verify(NULL, armor, len, ns, data, datalen);
}

static int
verify_payload(const char *armor, size_t len)
{
	return verify(armor, len, "git", payload, strlen(payload));
}

/* The blob inside a canonical armor. */
static uint8_t *
unarmor(const char *armor, size_t *len)
{
	char b64[8192];
	const char *p;
	uint8_t *blob;
	size_t n = 0;

	ck_assert(strncmp(armor, BEGIN, strlen(BEGIN)) == 0);
	for (p = armor + strlen(BEGIN); *p != '-'; p++)
		if (*p != '\n')
			b64[n++] = *p;
	ck_assert_int_eq(cs_base64_decode(&blob, len, b64, n), 0);
	return blob;
}

/* The canonical armor of a blob, wrapped at `width`. */
static char *
armor_blob(const uint8_t *blob, size_t len, size_t width)
{
	char *b64, *out, *p;
	size_t n, i;

	ck_assert_int_eq(cs_base64_encode(&b64, blob, len), 0);
	n = strlen(b64);
	out = malloc(strlen(BEGIN) + 2 * n + strlen(END) + 1);
	p = out + sprintf(out, "%s", BEGIN);
	for (i = 0; i < n; i += width)
		p += sprintf(p, "%s%.*s", i > 0 ? "\n" : "", (int)width,
			     b64 + i);
	sprintf(p, "%s", END);
	free(b64);
	return out;
}

START_TEST(test_sign_verify)
{
	cs_key *key, *signer = (cs_key *)1;
	char *armor, *p;
	size_t len, linelen;
	int lines = 0;

	ck_assert_int_eq(cs_key_generate(&key), 0);
	ck_assert_int_eq(cs_sshsig_sign(&armor, key, "git",
					(const uint8_t *)payload,
					strlen(payload)), 0);
	len = strlen(armor);

	/* The armor: canonical, no final newline, 70-column lines. */
	ck_assert(strncmp(armor, BEGIN, strlen(BEGIN)) == 0);
	ck_assert_str_eq(armor + len - strlen(END), END);
	for (p = armor + strlen(BEGIN); *p != '-'; p += linelen + 1) {
		linelen = strcspn(p, "\n");
		if (p[linelen + 1] != '-')
			ck_assert_uint_eq(linelen, 70);
		else
			ck_assert_uint_le(linelen, 70);
		lines++;
	}
	ck_assert_int_eq(lines, 4); /* 173 bytes: 232 base64 columns */

	ck_assert_int_eq(cs_sshsig_verify(&signer, armor, len, "git",
					  (const uint8_t *)payload,
					  strlen(payload)), 0);
	ck_assert_ptr_nonnull(signer);
	ck_assert(cs_key_equal(signer, key));
	ck_assert(!cs_key_has_private(signer));
	cs_key_free(signer);

	/* On failure *signer is NULL. */
	signer = (cs_key *)1;
	ck_assert_int_eq(cs_sshsig_verify(&signer, armor, len, "git",
					  (const uint8_t *)payload,
					  strlen(payload) - 1), CS_EVERIFY);
	ck_assert_ptr_null(signer);
	ck_assert_int_eq(verify(armor, len, "file", payload, strlen(payload)),
			 CS_EINVALID);
	ck_assert_ptr_nonnull(strstr(cs_error_last(), "namespace 'git'"));

	free(armor);
	cs_key_free(key);
}
END_TEST

START_TEST(test_other_namespace_and_empty_message)
{
	cs_key *key;
	char *armor;

	ck_assert_int_eq(cs_key_generate(&key), 0);
	ck_assert_int_eq(cs_sshsig_sign(&armor, key, "file",
					(const uint8_t *)"", 0), 0);
	ck_assert_int_eq(verify(armor, strlen(armor), "file", "", 0), 0);
	ck_assert_int_eq(verify(armor, strlen(armor), "git", "", 0),
			 CS_EINVALID);
	ck_assert_int_eq(verify(armor, strlen(armor), "file", "x", 1),
			 CS_EVERIFY);
	free(armor);
	cs_key_free(key);
}
END_TEST

START_TEST(test_bad_arguments)
{
	cs_key *key, *pub;
	char *armor = (char *)1, longns[300];

	ck_assert_int_eq(cs_key_generate(&key), 0);
	ck_assert_int_eq(cs_sshsig_sign(&armor, key, "", (const uint8_t *)"x",
					1), CS_EINVALID);
	ck_assert_ptr_null(armor);
	memset(longns, 'n', sizeof(longns) - 1);
	longns[sizeof(longns) - 1] = '\0';
	ck_assert_int_eq(cs_sshsig_sign(&armor, key, longns,
					(const uint8_t *)"x", 1), CS_EINVALID);
	ck_assert_int_eq(cs_key_from_public_bytes(&pub,
						  cs_key_public_bytes(key)), 0);
	ck_assert_int_eq(cs_sshsig_sign(&armor, pub, "git",
					(const uint8_t *)"x", 1), CS_EINVALID);
	ck_assert_ptr_null(armor);

	ck_assert_int_eq(cs_sshsig_sign(&armor, key, "git",
					(const uint8_t *)"x", 1), 0);
	ck_assert_int_eq(verify(armor, strlen(armor), "", "x", 1),
			 CS_EINVALID);
	free(armor);
	cs_key_free(pub);
	cs_key_free(key);
}
END_TEST

/*
 * Ed25519 is deterministic, so for one key and one message our armor is
 * exactly ssh-keygen's file without its final newline.
 */
START_TEST(test_identical_to_ssh_keygen)
{
	cs_key *key;
	char *armor, *theirs, out[1024];
	size_t len;

	ck_assert_int_eq(cs_key_generate(&key), 0);
	ck_assert_int_eq(cs_key_save_private(key, tpath("k"), "k"), 0);
	write_file(tpath("data"), payload, strlen(payload));
	ck_assert_int_eq(run(out, sizeof(out), "ssh-keygen -Y sign -n git "
			     "-f %s %s 2>&1", tpath("k"), tpath("data")), 0);
	theirs = read_file(tpath("data.sig"), &len);
	ck_assert_ptr_nonnull(theirs);
	ck_assert_int_eq(theirs[len - 1], '\n');
	theirs[len - 1] = '\0';

	ck_assert_int_eq(cs_sshsig_sign(&armor, key, "git",
					(const uint8_t *)payload,
					strlen(payload)), 0);
	ck_assert_str_eq(armor, theirs);
	free(armor);
	free(theirs);
	cs_key_free(key);
}
END_TEST

/* ssh-keygen -Y verify (what git verify-commit runs) accepts ours. */
START_TEST(test_ssh_keygen_verifies_ours)
{
	cs_key *key;
	char *armor, *pub, line[512], out[1024];

	ck_assert_int_eq(cs_key_generate(&key), 0);
	ck_assert_int_eq(cs_sshsig_sign(&armor, key, "git",
					(const uint8_t *)payload,
					strlen(payload)), 0);
	snprintf(line, sizeof(line), "%s\n", armor);
	write_file(tpath("sig"), line, strlen(line));
	write_file(tpath("data"), payload, strlen(payload));
	pub = cs_key_public_string(key);
	snprintf(line, sizeof(line), "someone namespaces=\"git\" %s\n", pub);
	write_file(tpath("allowed"), line, strlen(line));

	ck_assert_int_eq(run(out, sizeof(out), "ssh-keygen -Y verify -n git "
			     "-I someone -f %s -s %s < %s 2>&1",
			     tpath("allowed"), tpath("sig"), tpath("data")), 0);
	ck_assert_ptr_nonnull(strstr(out, "Good \"git\" signature for "
				     "someone"));

	/* The same command can fail: another message, another namespace. */
	write_file(tpath("data2"), payload, strlen(payload) - 1);
	ck_assert_int_ne(run(out, sizeof(out), "ssh-keygen -Y verify -n git "
			     "-I someone -f %s -s %s < %s 2>&1",
			     tpath("allowed"), tpath("sig"), tpath("data2")),
			 0);
	ck_assert_int_ne(run(out, sizeof(out), "ssh-keygen -Y verify -n file "
			     "-I someone -f %s -s %s < %s 2>&1",
			     tpath("allowed"), tpath("sig"), tpath("data")), 0);

	free(armor);
	free(pub);
	cs_key_free(key);
}
END_TEST

/* We verify ssh-keygen -Y sign, with both hashes it offers. */
START_TEST(test_we_verify_ssh_keygen)
{
	static const char *hashes[] = { "sha512", "sha256" };
	cs_key *key, *signer;
	char *sig, *pubfile, out[1024];
	size_t len, i;

	ck_assert_int_eq(run(out, sizeof(out), "ssh-keygen -q -t ed25519 "
			     "-N '' -C x -f %s 2>&1", tpath("x")), 0);
	pubfile = read_file(tpath("x.pub"), NULL);
	ck_assert_int_eq(cs_key_parse_public(&key, pubfile), 0);
	write_file(tpath("data"), payload, strlen(payload));

	for (i = 0; i < 2; i++) {
		unlink(tpath("data.sig"));
		ck_assert_int_eq(run(out, sizeof(out), "ssh-keygen -Y sign "
				     "-n git -f %s -O hashalg=%s %s 2>&1",
				     tpath("x"), hashes[i], tpath("data")), 0);
		sig = read_file(tpath("data.sig"), &len);
		ck_assert_str_eq(sig + len - 29,
				 "\n-----END SSH SIGNATURE-----\n");
		/* As it comes, with its final newline: not canonical. */
		ck_assert_int_eq(verify_payload(sig, len), CS_EINVALID);
		ck_assert_ptr_nonnull(strstr(cs_error_last(),
					     "not canonical"));
		ck_assert_int_eq(cs_sshsig_verify(&signer, sig, len - 1, "git",
						  (const uint8_t *)payload,
						  strlen(payload)), 0);
		ck_assert(cs_key_equal(signer, key));
		cs_key_free(signer);
		ck_assert_int_eq(verify(sig, len - 1, "git", payload, 10),
				 CS_EVERIFY);
		free(sig);
	}
	free(pubfile);
	cs_key_free(key);
}
END_TEST

static const char *
data_dir(void)
{
	static char dir[PATH_MAX];
	const char *root = getenv("CS_TEST_DATA");

	ck_assert_msg(root != NULL, "CS_TEST_DATA is not set");
	snprintf(dir, sizeof(dir), "%s/sshsig", root);
	return dir;
}

static char *
case_file(const char *kind, const char *name, const char *file, size_t *len)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s/%s/%s", data_dir(), kind, name,
		 file);
	return read_file(path, len);
}

/* Run every case of tests/data/sshsig/<kind>; returns how many. */
static int
run_cases(const char *kind)
{
	char path[PATH_MAX], *armor, *ns, *msg, *expect, *publine;
	size_t armorlen, msglen;
	struct dirent *de;
	cs_key *signer, *want;
	DIR *d;
	int rc, count = 0, want_rc;

	snprintf(path, sizeof(path), "%s/signer.pub", data_dir());
	ck_assert_ptr_nonnull(publine = read_file(path, NULL));
	ck_assert_int_eq(cs_key_parse_public(&want, publine), 0);
	free(publine);

	snprintf(path, sizeof(path), "%s/%s", data_dir(), kind);
	ck_assert_ptr_nonnull(d = opendir(path));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		armor = case_file(kind, de->d_name, "armor", &armorlen);
		ck_assert_msg(armor != NULL, "%s: no armor", de->d_name);
		if ((ns = case_file(kind, de->d_name, "namespace", NULL)))
			ns[strcspn(ns, "\n")] = '\0';
		if ((msg = case_file(kind, de->d_name, "message", &msglen)) ==
		    NULL) {
			snprintf(path, sizeof(path), "%s/message", data_dir());
			msg = read_file(path, &msglen);
			ck_assert_ptr_nonnull(msg);
		}
		want_rc = 0;
		if ((expect = case_file(kind, de->d_name, "expect", NULL))) {
			if (strcmp(expect, "EINVALID\n") == 0)
				want_rc = CS_EINVALID;
			else if (strcmp(expect, "EVERIFY\n") == 0)
				want_rc = CS_EVERIFY;
			else
				ck_abort_msg("%s: bad expect", de->d_name);
		}
		ck_assert_msg(strcmp(kind, "valid") == 0 || want_rc != 0,
			      "%s: an invalid case without expect",
			      de->d_name);

		cs_error_clear();
		signer = NULL;
		rc = cs_sshsig_verify(&signer, armor, armorlen,
				      ns ? ns : "git", (const uint8_t *)msg,
				      msglen);
		ck_assert_msg(rc == want_rc, "%s/%s: got %d (%s), expected %d",
			      kind, de->d_name, rc, cs_error_last(), want_rc);
		if (rc == 0) {
			ck_assert(cs_key_equal(signer, want));
		} else {
			ck_assert_ptr_null(signer);
			ck_assert_str_ne(cs_error_last(), "unknown error");
			ck_assert_ptr_null(strchr(cs_error_last(), '\n'));
		}
		cs_key_free(signer);
		free(armor);
		free(ns);
		free(msg);
		free(expect);
		count++;
	}
	closedir(d);
	cs_key_free(want);
	return count;
}

START_TEST(test_stored_valid)
{
	ck_assert_int_ge(run_cases("valid"), 3);
}
END_TEST

START_TEST(test_stored_invalid)
{
	ck_assert_int_ge(run_cases("invalid"), 50);
}
END_TEST

/* A few stored cases with the exact reason they must give. */
START_TEST(test_stored_messages)
{
	static const struct {
		const char *name;
		const char *needle;
	} cases[] = {
		{ "rewrapped-64", "signature armor is not canonical" },
		{ "rewrapped-76", "signature armor is not canonical" },
		{ "crlf", "signature armor is not canonical" },
		{ "trailing-newline", "signature armor is not canonical" },
		{ "missing-padding", "signature armor is not canonical" },
		{ "extra-padding", "signature armor is not canonical" },
		{ "nonzero-trailing-bits", "signature armor is not canonical" },
		{ "space-at-line-end", "signature armor is not canonical" },
		{ "version-2", "unsupported signature version 2" },
		{ "algorithm-ssh-rsa", "'ssh-rsa'" },
		{ "algorithm-sk-ed25519", "'sk-ssh-ed25519@openssh.com'" },
		{ "hash-md5", "unsupported signature hash 'md5'" },
		{ "reserved-not-empty", "reserved" },
		{ "wrong-namespace", "namespace 'file' is not 'git'" },
		{ "trailing-data-in-blob", "trailing data" },
		{ "trailing-data-in-signature", "trailing data" },
		{ "other-key-embedded", "does not match" },
	};
	char *armor, *msg, path[PATH_MAX];
	size_t i, len, msglen;

	snprintf(path, sizeof(path), "%s/message", data_dir());
	msg = read_file(path, &msglen);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		armor = case_file("invalid", cases[i].name, "armor", &len);
		ck_assert_msg(armor != NULL, "no case %s", cases[i].name);
		cs_sshsig_verify(NULL, armor, len, "git", (const uint8_t *)msg,
				 msglen);
		ck_assert_msg(strstr(cs_error_last(), cases[i].needle) != NULL,
			      "%s: message '%s' lacks '%s'", cases[i].name,
			      cs_error_last(), cases[i].needle);
		free(armor);
	}
	free(msg);
}
END_TEST

/* Every single-byte change of the blob, re-armored canonically, fails. */
START_TEST(test_every_blob_byte)
{
	cs_key *key;
	char *armor, *forged;
	uint8_t *blob;
	size_t len, i;
	int bit, rc;

	ck_assert_int_eq(cs_key_generate(&key), 0);
	ck_assert_int_eq(cs_sshsig_sign(&armor, key, "git",
					(const uint8_t *)payload,
					strlen(payload)), 0);
	blob = unarmor(armor, &len);
	ck_assert_uint_eq(len, 173);
	for (i = 0; i < len; i++) {
		for (bit = 0; bit < 8; bit += 3) {
			blob[i] ^= (uint8_t)(1 << bit);
			forged = armor_blob(blob, len, 70);
			rc = verify_payload(forged, strlen(forged));
			ck_assert_msg(rc == CS_EINVALID || rc == CS_EVERIFY,
				      "byte %zu bit %d: %d", i, bit, rc);
			/* The signature bytes are the last 64. */
			if (i >= len - 64)
				ck_assert_msg(rc == CS_EVERIFY,
					      "byte %zu: %d (%s)", i, rc,
					      cs_error_last());
			blob[i] ^= (uint8_t)(1 << bit);
			free(forged);
		}
	}
	/* Unchanged, it still verifies: the loop tested something. */
	forged = armor_blob(blob, len, 70);
	ck_assert_str_eq(forged, armor);
	ck_assert_int_eq(verify_payload(forged, strlen(forged)), 0);
	free(forged);
	free(blob);
	free(armor);
	cs_key_free(key);
}
END_TEST

START_TEST(test_every_message_byte)
{
	cs_key *key;
	char *armor, msg[sizeof(payload)];
	size_t i, n = strlen(payload);

	ck_assert_int_eq(cs_key_generate(&key), 0);
	ck_assert_int_eq(cs_sshsig_sign(&armor, key, "git",
					(const uint8_t *)payload, n), 0);
	memcpy(msg, payload, sizeof(msg));
	for (i = 0; i < n; i++) {
		msg[i] ^= 0x20;
		ck_assert_int_eq(verify(armor, strlen(armor), "git", msg, n),
				 CS_EVERIFY);
		msg[i] ^= 0x20;
	}
	ck_assert_int_eq(verify(armor, strlen(armor), "git", msg, n), 0);
	free(armor);
	cs_key_free(key);
}
END_TEST

/* Every change of one armor character, and every truncation, fails. */
START_TEST(test_every_armor_byte)
{
	static const uint8_t deltas[] = { 0x01, 0x20, 0x80 };
	cs_key *key;
	char *armor, *copy;
	size_t i, j, len;
	int rc;

	ck_assert_int_eq(cs_key_generate(&key), 0);
	ck_assert_int_eq(cs_sshsig_sign(&armor, key, "git",
					(const uint8_t *)payload,
					strlen(payload)), 0);
	len = strlen(armor);
	copy = malloc(len + 2);
	for (i = 0; i < len; i++) {
		for (j = 0; j < sizeof(deltas); j++) {
			memcpy(copy, armor, len);
			copy[i] = (char)(copy[i] ^ deltas[j]);
			rc = verify_payload(copy, len);
			ck_assert_msg(rc == CS_EINVALID || rc == CS_EVERIFY,
				      "offset %zu ^%#x: %d", i, deltas[j], rc);
		}
	}
	for (i = 0; i < len; i++)
		ck_assert_int_eq(verify_payload(armor, i), CS_EINVALID);
	/* One byte more, whatever it is. */
	for (j = 0; j < 256; j++) {
		memcpy(copy, armor, len);
		copy[len] = (char)j;
		ck_assert_int_eq(verify_payload(copy, len + 1), CS_EINVALID);
	}
	ck_assert_int_eq(verify_payload(armor, len), 0);
	free(copy);
	free(armor);
	cs_key_free(key);
}
END_TEST

/* Other line widths for the same blob: only 70 is accepted. */
START_TEST(test_line_widths)
{
	cs_key *key;
	char *armor, *wrapped;
	uint8_t *blob;
	size_t len, width;

	ck_assert_int_eq(cs_key_generate(&key), 0);
	ck_assert_int_eq(cs_sshsig_sign(&armor, key, "git",
					(const uint8_t *)payload,
					strlen(payload)), 0);
	blob = unarmor(armor, &len);
	for (width = 4; width <= 240; width++) {
		wrapped = armor_blob(blob, len, width);
		ck_assert_int_eq(verify_payload(wrapped, strlen(wrapped)),
				 width == 70 ? 0 : CS_EINVALID);
		free(wrapped);
	}
	free(blob);
	free(armor);
	cs_key_free(key);
}
END_TEST

/* Long namespaces make blobs of every length mod 3 and every last line. */
START_TEST(test_namespace_lengths)
{
	cs_key *key;
	char *armor, ns[257];
	size_t n;

	ck_assert_int_eq(cs_key_generate(&key), 0);
	for (n = 1; n <= 256; n++) {
		memset(ns, 'a' + (int)(n % 26), n);
		ns[n] = '\0';
		ck_assert_int_eq(cs_sshsig_sign(&armor, key, ns,
						(const uint8_t *)payload,
						strlen(payload)), 0);
		ck_assert_msg(verify(armor, strlen(armor), ns, payload,
				     strlen(payload)) == 0, "namespace %zu: "
			      "%s", n, cs_error_last());
		ns[n - 1] ^= 1;
		ck_assert_int_eq(verify(armor, strlen(armor), ns, payload,
					strlen(payload)), CS_EINVALID);
		free(armor);
	}
	cs_key_free(key);
}
END_TEST

struct worker {
	const char *good;
	const char *bad;
	int failures;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	int i, rc;

	for (i = 0; i < 300; i++) {
		if (verify_payload(w->good, strlen(w->good)) != 0)
			w->failures++;
		rc = verify_payload(w->bad, strlen(w->bad));
		/* The message of a failure belongs to this thread. */
		if (rc != CS_EVERIFY ||
		    strstr(cs_error_last(), "does not match") == NULL)
			w->failures++;
		cs_error_clear();
	}
	return NULL;
}

START_TEST(test_threads)
{
	cs_key *key, *other;
	char *good, *bad;
	uint8_t *blob, *otherblob;
	size_t len, otherlen;
	struct worker w[4];
	pthread_t t[4];
	int i;

	ck_assert_int_eq(cs_key_generate(&key), 0);
	ck_assert_int_eq(cs_key_generate(&other), 0);
	ck_assert_int_eq(cs_sshsig_sign(&good, key, "git",
					(const uint8_t *)payload,
					strlen(payload)), 0);
	/* The same signature claiming another key. */
	blob = unarmor(good, &len);
	ck_assert_int_eq(cs_key_public_blob(&otherblob, &otherlen, other), 0);
	memcpy(blob + 14, otherblob, otherlen);
	bad = armor_blob(blob, len, 70);

	for (i = 0; i < 4; i++) {
		w[i] = (struct worker){ good, bad, 0 };
		ck_assert_int_eq(pthread_create(&t[i], NULL, worker_main,
						&w[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
		ck_assert_int_eq(w[i].failures, 0);
	}
	free(blob);
	free(otherblob);
	free(good);
	free(bad);
	cs_key_free(key);
	cs_key_free(other);
}
END_TEST

static Suite *
sshsig_suite(void)
{
	Suite *s = suite_create("sshsig");
	TCase *tc = tcase_create("core");
	TCase *tk = tcase_create("ssh-keygen");

	tcase_add_test(tc, test_sign_verify);
	tcase_add_test(tc, test_other_namespace_and_empty_message);
	tcase_add_test(tc, test_bad_arguments);
	tcase_add_test(tc, test_stored_valid);
	tcase_add_test(tc, test_stored_invalid);
	tcase_add_test(tc, test_stored_messages);
	tcase_add_test(tc, test_every_blob_byte);
	tcase_add_test(tc, test_every_message_byte);
	tcase_add_test(tc, test_every_armor_byte);
	tcase_add_test(tc, test_line_widths);
	tcase_add_test(tc, test_namespace_lengths);
	tcase_add_test(tc, test_threads);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(tk, setup, teardown);
	tcase_add_test(tk, test_identical_to_ssh_keygen);
	tcase_add_test(tk, test_ssh_keygen_verifies_ours);
	tcase_add_test(tk, test_we_verify_ssh_keygen);
	tcase_set_timeout(tk, 60);
	suite_add_tcase(s, tk);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(sshsig_suite());
	int failed;

	snprintf(rootdir, sizeof(rootdir), "/tmp/cs-test-sshsig-XXXXXX");
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
