/*
 * cartosync — the exact commit grammar (docs/protocol.md §2).
 *
 * Commit objects written by stock git (tests/data/commit, made by gen.py
 * there) must parse, yield the bytes git signed as the payload, and
 * re-serialise byte for byte; every deviation git can be made to write (an
 * encoding or mergetag header, a third parent, an unsigned edit, a signed
 * merge) and the ones it cannot (a malformed identity, a header without its
 * newline, NUL or invalid UTF-8) must be refused with a message naming it.
 * Live: a commit signed by git is verified here, and a commit written here
 * is accepted by `git verify-commit`.  A re-wrapped armor keeps a valid
 * grammar but must fail signature verification, or one signature would
 * give several commit ids.
 */
#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cartosync/commit.h"
#include "cartosync/error.h"
#include "cartosync/key.h"
#include "cartosync/oid.h"
#include "cartosync/sshsig.h"

#define BEGIN "-----BEGIN SSH SIGNATURE-----\n"
#define END "\n-----END SSH SIGNATURE-----"

/* basedir: one per run, removed at the end even when tests fail (a failed
 * test skips its teardown); tmpdir: one per test inside it. */
static char basedir[64];
static char tmpdir[96];

static void
make_basedir(void)
{
	snprintf(basedir, sizeof(basedir), "/tmp/cs-test-commit-XXXXXX");
	if (mkdtemp(basedir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
}

static void
remove_basedir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", basedir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", basedir);
}

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/t-XXXXXX", basedir);
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	umask(022);
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
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

static const char *
data_dir(void)
{
	static char dir[PATH_MAX];
	const char *root = getenv("CS_TEST_DATA");

	ck_assert_msg(root != NULL, "CS_TEST_DATA is not set");
	snprintf(dir, sizeof(dir), "%s/commit", root);
	return dir;
}

/* A whole file, NUL-terminated (it may hold NULs: use *len). */
static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0, got;

	if (f == NULL)
		return NULL;
	do {
		if (cap - n < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap + 1);
			ck_assert_ptr_nonnull(buf);
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static void
spew(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

static int run(char *out, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Run a shell command in the test directory; output (stdout) in `out`. */
static int
run(char *out, size_t size, const char *fmt, ...)
{
	char cmd[4 * PATH_MAX], body[3 * PATH_MAX];
	char sink[256];
	va_list ap;
	FILE *f;
	size_t n;
	int status;

	if (out == NULL) {
		out = sink;
		size = sizeof(sink);
	}
	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && export HOME='%s' GIT_CONFIG_NOSYSTEM=1 && %s",
		 tmpdir,
		 tmpdir, body);
	ck_assert_ptr_nonnull(f = popen(cmd, "r"));
	n = fread(out, 1, size - 1, f);
	out[n] = '\0';
	while (fgetc(f) != EOF)
		;
	status = pclose(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The commit without its gpgsig header, computed independently of
 * commit.c: drop the "gpgsig " line and the continuation lines after it. */
static char *
strip_gpgsig(const char *raw, size_t len, size_t *outlen)
{
	char *out = malloc(len + 1);
	const char *p = raw, *end = raw + len;
	size_t n = 0;
	int in_headers = 1, in_sig = 0;

	ck_assert_ptr_nonnull(out);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);

		if (in_headers && l == 1)
			in_headers = 0;
		if (in_headers && l >= 7 && memcmp(p, "gpgsig ", 7) == 0)
			in_sig = 1;
		else if (in_sig && *p != ' ')
			in_sig = 0;
		if (!in_sig) {
			memcpy(out + n, p, l);
			n += l;
		}
		p += l;
	}
	out[n] = '\0';
	*outlen = n;
	return out;
}

static cs_key *
load_public(const char *path)
{
	char *line = slurp(path, NULL);
	cs_key *key = NULL;

	ck_assert_msg(line != NULL, "cannot read %s", path);
	line[strcspn(line, "\n")] = '\0';
	ck_assert_int_eq(cs_key_parse_public(&key, line), 0);
	free(line);
	return key;
}

/*
 * The round trip every parsed commit must pass: the payload formatted
 * from the fields is the parsed payload, and the signature put back gives
 * the input.  Returns NULL or what differs.
 */
static const char *
roundtrip(const cs_commit *c, const char *raw, size_t len)
{
	static char why[256];
	char *payload = NULL, *whole = NULL;
	size_t plen = 0, wlen = 0;
	int error;

	if ((error = cs_commit_format_payload(&payload, &plen, c)) < 0) {
		snprintf(why, sizeof(why), "format_payload failed: %s",
			 cs_error_last());
		return why;
	}
	if (plen != c->payload_len || memcmp(payload, c->payload, plen) != 0) {
		free(payload);
		return "formatted payload differs from the parsed payload";
	}
	if (c->signature) {
		if (cs_commit_add_signature(&whole, &wlen, payload, plen,
					    c->signature) < 0) {
			free(payload);
			return "add_signature failed";
		}
	} else {
		whole = payload;
		wlen = plen;
		payload = NULL;
	}
	free(payload);
	if (wlen != len || memcmp(whole, raw, len) != 0) {
		free(whole);
		return "re-serialised commit differs from the input";
	}
	free(whole);
	return NULL;
}

typedef struct {
	char name[256];
	char path[PATH_MAX + 512];
} data_case;

static size_t
list_cases(data_case *cases, size_t max, const char *kind)
{
	char dir[PATH_MAX];
	struct dirent **names = NULL;
	size_t n = 0;
	int count;

	snprintf(dir, sizeof(dir), "%s/%s", data_dir(), kind);
	count = scandir(dir, &names, NULL, alphasort);
	ck_assert_msg(count > 0, "no cases in %s", dir);
	for (int i = 0; i < count; i++) {
		if (names[i]->d_name[0] != '.' && n < max) {
			snprintf(cases[n].name, sizeof(cases[n].name), "%s",
				 names[i]->d_name);
			snprintf(cases[n].path, sizeof(cases[n].path),
				 "%s/%s", dir, names[i]->d_name);
			n++;
		}
		free(names[i]);
	}
	free(names);
	return n;
}

static char *
case_file(const data_case *c, const char *file, size_t *len)
{
	char path[PATH_MAX + 1024];

	snprintf(path, sizeof(path), "%s/%s", c->path, file);
	return slurp(path, len);
}

START_TEST(test_valid_cases)
{
	data_case cases[64];
	char pubpath[PATH_MAX];
	size_t n = list_cases(cases, 64, "valid"), checked = 0;
	cs_key *signer;

	snprintf(pubpath, sizeof(pubpath), "%s/signer.pub", data_dir());
	signer = load_public(pubpath);
	ck_assert_uint_ge(n, 5);
	for (size_t i = 0; i < n; i++) {
		size_t len = 0, slen = 0;
		char *raw = case_file(&cases[i], "commit", &len);
		char *kind = case_file(&cases[i], "kind", NULL);
		char *stripped, hex[CS_OID_HEXSZ + 1];
		const char *why;
		cs_commit *c = NULL;
		cs_key *who = NULL;

		ck_assert_ptr_nonnull(raw);
		ck_assert_ptr_nonnull(kind);
		ck_assert_msg(cs_commit_parse(&c, raw, len) == 0,
			      "valid/%s: %s", cases[i].name, cs_error_last());
		kind[strcspn(kind, "\n")] = '\0';
		ck_assert_int_eq(c->kind,
				 strcmp(kind, "genesis") == 0 ? CS_COMMIT_GENESIS
				 : strcmp(kind, "edit") == 0  ? CS_COMMIT_EDIT
							      : CS_COMMIT_MERGE);
		ck_assert_uint_eq(c->parent_count,
				  c->kind == CS_COMMIT_GENESIS ? 0
				  : c->kind == CS_COMMIT_EDIT  ? 1
							       : 2);
		cs_oid_fmt(hex, &c->tree);
		ck_assert(strncmp(raw, "tree ", 5) == 0 &&
			  memcmp(raw + 5, hex, CS_OID_HEXSZ) == 0);

		/* The payload is the commit without its gpgsig header. */
		stripped = strip_gpgsig(raw, len, &slen);
		ck_assert_msg(c->payload_len == slen &&
				      memcmp(c->payload, stripped, slen) == 0,
			      "valid/%s: payload is not the commit without"
			      " its gpgsig header",
			      cases[i].name);
		ck_assert_uint_eq(strlen(c->payload), c->payload_len);

		if (c->kind == CS_COMMIT_MERGE) {
			ck_assert_ptr_null(c->signature);
			ck_assert_uint_eq(slen, len);
			ck_assert_str_eq(c->message, CS_MERGE_MESSAGE);
		} else {
			/* What git signed is what we verify. */
			ck_assert_ptr_nonnull(c->signature);
			ck_assert(strncmp(c->signature, BEGIN,
					  strlen(BEGIN)) == 0);
			ck_assert_msg(cs_sshsig_verify(
					      &who, c->signature,
					      strlen(c->signature), "git",
					      (const uint8_t *)c->payload,
					      c->payload_len) == 0,
				      "valid/%s: %s", cases[i].name,
				      cs_error_last());
			ck_assert(cs_key_equal(who, signer));
			cs_key_free(who);
		}
		why = roundtrip(c, raw, len);
		ck_assert_msg(why == NULL, "valid/%s: %s", cases[i].name,
			      why ? why : "");
		checked++;
		cs_commit_free(c);
		free(stripped);
		free(kind);
		free(raw);
	}
	ck_assert_uint_eq(checked, n);
	cs_key_free(signer);
}
END_TEST

static int
code_of(const char *name)
{
	static const struct {
		const char *name;
		int code;
	} codes[] = {
		{"EINVALID", CS_EINVALID}, {"ELIMIT", CS_ELIMIT},
		{"ENOTFOUND", CS_ENOTFOUND}, {"EVERIFY", CS_EVERIFY},
	};

	for (size_t i = 0; i < sizeof(codes) / sizeof(*codes); i++)
		if (strcmp(name, codes[i].name) == 0)
			return codes[i].code;
	ck_abort_msg("unknown code %s", name);
	return 0;
}

/* Every invalid case is checked; the failures are listed together. */
START_TEST(test_invalid_cases)
{
	data_case cases[64];
	size_t n = list_cases(cases, 64, "invalid");
	char failures[8192] = "";
	size_t nfail = 0;

	ck_assert_uint_ge(n, 20);
	for (size_t i = 0; i < n; i++) {
		size_t len = 0;
		char *raw = case_file(&cases[i], "commit", &len);
		char *expect = case_file(&cases[i], "expect", NULL);
		char *fragment, line[1024];
		cs_commit *c = (cs_commit *)1;
		int want, got;

		ck_assert_ptr_nonnull(raw);
		ck_assert_ptr_nonnull(expect);
		fragment = strchr(expect, '\n');
		ck_assert_ptr_nonnull(fragment);
		*fragment++ = '\0';
		fragment[strcspn(fragment, "\n")] = '\0';
		want = code_of(expect);
		cs_error_clear();
		got = cs_commit_parse(&c, raw, len);
		line[0] = '\0';
		if (got != want)
			snprintf(line, sizeof(line),
				 "invalid/%.100s: returned %d (%.150s), expected"
				 " %.20s \"%.100s\"\n",
				 cases[i].name, got,
				 got == 0 ? "accepted" : cs_error_last(),
				 expect, fragment);
		else if (strstr(cs_error_last(), fragment) == NULL)
			snprintf(line, sizeof(line),
				 "invalid/%.100s: message \"%.150s\" does not"
				 " say \"%.100s\"\n",
				 cases[i].name, cs_error_last(), fragment);
		else if (c != NULL)
			snprintf(line, sizeof(line),
				 "invalid/%.100s: *out not NULL on failure\n",
				 cases[i].name);
		if (line[0]) {
			strncat(failures, line,
				sizeof(failures) - strlen(failures) - 1);
			nfail++;
		}
		if (got == 0)
			cs_commit_free(c);
		free(expect);
		free(raw);
	}
	ck_assert_msg(nfail == 0, "%zu of %zu invalid cases:\n%s", nfail, n,
		      failures);
}
END_TEST

static char *
read_case(const char *kind, const char *name, size_t *len)
{
	char path[PATH_MAX];
	char *raw;

	snprintf(path, sizeof(path), "%s/%s/%s/commit", data_dir(), kind,
		 name);
	raw = slurp(path, len);
	ck_assert_msg(raw != NULL, "cannot read %s", path);
	return raw;
}

START_TEST(test_fields)
{
	size_t len;
	char *raw = read_case("valid", "edit-utf8-negative-tz", &len);
	char *fp, *id;
	cs_commit *c;
	cs_key *signer;
	char pubpath[PATH_MAX];

	snprintf(pubpath, sizeof(pubpath), "%s/signer.pub", data_dir());
	signer = load_public(pubpath);
	fp = cs_key_fingerprint(signer);
	ck_assert_int_eq(cs_commit_parse(&c, raw, len), 0);
	ck_assert_str_eq(c->author.name, "ms2");
	ck_assert_str_eq(c->author.email, fp);
	ck_assert_int_eq(c->author.time, 1735689600);
	ck_assert_int_eq(c->author.tz_minutes, -90);
	ck_assert_int_eq(c->committer.tz_minutes, -90);
	ck_assert_str_eq(c->message,
			 "records: مركز الاستماع — الناظور\n\n"
			 "Écoute et orientation, ouverture le 3 mars.\n");
	id = cs_ident_format(&c->author);
	ck_assert_str_ne(id, "");
	ck_assert(strstr(raw, id) != NULL);
	ck_assert(strstr(id, " 1735689600 -0130") != NULL);
	free(id);
	cs_commit_free(c);
	free(raw);

	raw = read_case("valid", "edit-spaced-name-time-zero", &len);
	ck_assert_int_eq(cs_commit_parse(&c, raw, len), 0);
	ck_assert_str_eq(c->author.name, "Clinique Mobile Sud");
	ck_assert_str_eq(c->committer.email, "edits@cms.example");
	ck_assert_int_eq(c->committer.time, 0);
	ck_assert_int_eq(c->committer.tz_minutes, 14 * 60);
	cs_commit_free(c);
	free(raw);

	raw = read_case("valid", "merge", &len);
	ck_assert_int_eq(cs_commit_parse(&c, raw, len), 0);
	ck_assert_str_eq(c->author.name, CS_MERGE_IDENT_NAME);
	ck_assert_str_eq(c->author.email, CS_MERGE_IDENT_EMAIL);
	ck_assert_int_lt(cs_oid_cmp(&c->parents[0], &c->parents[1]), 0);
	cs_commit_free(c);
	free(raw);
	free(fp);
	cs_key_free(signer);
}
END_TEST

/* Write `payload` signed with `key` (NULL: unsigned) into *out. */
static void
sign_commit(char **out, size_t *outlen, const cs_commit *c, const cs_key *key)
{
	char *payload, *armor;
	size_t plen;

	ck_assert_int_eq(cs_commit_format_payload(&payload, &plen, c), 0);
	if (key == NULL) {
		*out = payload;
		*outlen = plen;
		return;
	}
	ck_assert_int_eq(cs_sshsig_sign(&armor, key, "git",
					(const uint8_t *)payload, plen), 0);
	ck_assert_int_eq(cs_commit_add_signature(out, outlen, payload, plen,
						 armor), 0);
	free(armor);
	free(payload);
}

static cs_commit
make_fields(int nparents)
{
	cs_commit c;

	memset(&c, 0, sizeof(c));
	c.kind = nparents == 0	 ? CS_COMMIT_GENESIS
		 : nparents == 1 ? CS_COMMIT_EDIT
				 : CS_COMMIT_MERGE;
	memset(c.tree.id, 0x4b, sizeof(c.tree.id));
	memset(c.parents[0].id, 0x11, sizeof(c.parents[0].id));
	memset(c.parents[1].id, 0x22, sizeof(c.parents[1].id));
	c.parent_count = (size_t)nparents;
	c.author.name = "ms2";
	c.author.email = "SHA256:abc";
	c.author.time = 1735689600;
	c.author.tz_minutes = 60;
	c.committer = c.author;
	c.committer.time = 1735689601;
	c.committer.tz_minutes = -345;
	c.message = "records: update service\n\nwith a body\n";
	return c;
}

/* Format + add_signature, then parse: the same fields, the same bytes. */
START_TEST(test_format_parse_roundtrip)
{
	cs_key *key;

	ck_assert_int_eq(cs_key_generate(&key), 0);
	for (int np = 0; np <= 2; np++) {
		cs_commit fields = make_fields(np), *c;
		char *raw, *author;
		size_t len;
		const char *why;

		if (np == 2) {
			fields.author.name = CS_MERGE_IDENT_NAME;
			fields.author.email = CS_MERGE_IDENT_EMAIL;
			fields.committer = fields.author;
			fields.message = CS_MERGE_MESSAGE;
		}
		sign_commit(&raw, &len, &fields, np == 2 ? NULL : key);
		ck_assert_msg(cs_commit_parse(&c, raw, len) == 0, "%d: %s", np,
			      cs_error_last());
		ck_assert_int_eq(c->kind, fields.kind);
		ck_assert_uint_eq(c->parent_count, (size_t)np);
		ck_assert_int_eq(cs_oid_cmp(&c->tree, &fields.tree), 0);
		for (int p = 0; p < np; p++)
			ck_assert_int_eq(cs_oid_cmp(&c->parents[p],
						    &fields.parents[p]),
					 0);
		ck_assert_str_eq(c->author.name, fields.author.name);
		ck_assert_str_eq(c->author.email, fields.author.email);
		ck_assert_int_eq(c->author.time, fields.author.time);
		ck_assert_int_eq(c->author.tz_minutes, fields.author.tz_minutes);
		ck_assert_int_eq(c->committer.time, fields.committer.time);
		ck_assert_int_eq(c->committer.tz_minutes,
				 fields.committer.tz_minutes);
		ck_assert_str_eq(c->message, fields.message);
		author = cs_ident_format(&c->committer);
		if (np < 2)
			ck_assert_str_eq(author,
					 "ms2 <SHA256:abc> 1735689601 -0545");
		free(author);
		if (np < 2)
			ck_assert_int_eq(
				cs_sshsig_verify(NULL, c->signature,
						 strlen(c->signature), "git",
						 (const uint8_t *)c->payload,
						 c->payload_len),
				0);
		why = roundtrip(c, raw, len);
		ck_assert_msg(why == NULL, "%d parents: %s", np, why);
		cs_commit_free(c);
		free(raw);
	}
	cs_key_free(key);
}
END_TEST

START_TEST(test_format_refuses_bad_fields)
{
	cs_commit c = make_fields(1);
	char *out = (char *)1;
	size_t len;

	c.author.name = "ms2 <x>";
	ck_assert_int_eq(cs_commit_format_payload(&out, &len, &c), CS_EINVALID);
	ck_assert_ptr_null(out);
	c = make_fields(1);
	c.committer.email = "a\nb";
	ck_assert_int_eq(cs_commit_format_payload(&out, &len, &c), CS_EINVALID);
	c = make_fields(1);
	c.author.name = "";
	ck_assert_int_eq(cs_commit_format_payload(&out, &len, &c), CS_EINVALID);
	c = make_fields(1);
	c.author.time = -1;
	ck_assert_int_eq(cs_commit_format_payload(&out, &len, &c), CS_EINVALID);
	c = make_fields(1);
	c.parent_count = 3;
	ck_assert_int_eq(cs_commit_format_payload(&out, &len, &c), CS_EINVALID);
	c = make_fields(1);
	c.message = NULL;
	ck_assert_int_eq(cs_commit_format_payload(&out, &len, &c), CS_EINVALID);

	/* add_signature needs a committer line. */
	ck_assert_int_eq(cs_commit_add_signature(&out, &len,
						 "tree x\n\nmsg\n", 13,
						 BEGIN "AAAA" END),
			 CS_EINVALID);
	ck_assert_ptr_null(out);
	ck_assert(strstr(cs_error_last(), "committer") != NULL);
}
END_TEST

/* The gpgsig header goes right after the committer line, continuation
 * lines indented by one space, as git writes it. */
START_TEST(test_add_signature_layout)
{
	static const char payload[] =
		"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"
		"author a <b> 1 +0000\n"
		"committer a <b> 1 +0000\n"
		"\n"
		"committer in the message\n";
	char *out;
	size_t len;

	ck_assert_int_eq(cs_commit_add_signature(&out, &len, payload,
						 strlen(payload),
						 "L1\nL2\nL3"),
			 0);
	ck_assert_str_eq(out, "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"
			      "author a <b> 1 +0000\n"
			      "committer a <b> 1 +0000\n"
			      "gpgsig L1\n L2\n L3\n"
			      "\n"
			      "committer in the message\n");
	ck_assert_uint_eq(len, strlen(out));
	free(out);
}
END_TEST

/* The armor of `sig` (canonical) re-wrapped at `width` columns. */
static char *
rewrap(const char *sig, size_t width, int trailing_newline)
{
	const char *body = sig + strlen(BEGIN);
	const char *stop = strstr(sig, END);
	char b64[4096], *out, *p;
	size_t n = 0;

	ck_assert_ptr_nonnull(stop);
	for (const char *q = body; q < stop; q++)
		if (*q != '\n')
			b64[n++] = *q;
	out = malloc(strlen(sig) * 2 + 16);
	p = out + sprintf(out, "%s", BEGIN);
	for (size_t i = 0; i < n; i += width)
		p += sprintf(p, "%s%.*s", i ? "\n" : "",
			     (int)(n - i < width ? n - i : width), b64 + i);
	sprintf(p, "%s%s", END, trailing_newline ? "\n" : "");
	return out;
}

START_TEST(test_rewrapped_armor)
{
	size_t len;
	char *raw = read_case("valid", "edit", &len);
	cs_commit *c, *c2;
	const int widths[] = {64, 76, 71, 69};

	ck_assert_int_eq(cs_commit_parse(&c, raw, len), 0);
	ck_assert_int_eq(cs_sshsig_verify(NULL, c->signature,
					  strlen(c->signature), "git",
					  (const uint8_t *)c->payload,
					  c->payload_len),
			 0);
	for (size_t w = 0; w <= sizeof(widths) / sizeof(*widths); w++) {
		int trailing = w == sizeof(widths) / sizeof(*widths);
		char *armor = rewrap(c->signature, trailing ? 70 : widths[w],
				     trailing);
		char *other;
		size_t olen;

		ck_assert_str_ne(armor, c->signature);
		ck_assert_int_eq(cs_commit_add_signature(&other, &olen,
							 c->payload,
							 c->payload_len, armor),
				 0);
		/* Another commit id for the same signed bytes ... */
		ck_assert(olen != len || memcmp(other, raw, len) != 0);
		/* ... whose grammar is fine ... */
		ck_assert_msg(cs_commit_parse(&c2, other, olen) == 0, "%s",
			      cs_error_last());
		ck_assert_uint_eq(c2->payload_len, c->payload_len);
		ck_assert(memcmp(c2->payload, c->payload, c->payload_len) == 0);
		/* ... and whose armor is refused as non-canonical. */
		ck_assert_int_eq(cs_sshsig_verify(NULL, c2->signature,
						  strlen(c2->signature), "git",
						  (const uint8_t *)c2->payload,
						  c2->payload_len),
				 CS_EINVALID);
		ck_assert_msg(strstr(cs_error_last(), "not canonical") != NULL,
			      "%s", cs_error_last());
		cs_commit_free(c2);
		free(other);
		free(armor);
	}
	cs_commit_free(c);
	free(raw);
}
END_TEST

/*
 * One signature must give one commit: bytes that git does not sign (the
 * gpgsig header) must not carry anything the verifier ignores.  A NUL
 * ends the armor string that is verified, so whatever follows it would
 * mint new commit ids for a valid signature.
 */
START_TEST(test_nul_after_armor_is_refused)
{
	size_t len;
	char *raw = read_case("valid", "edit", &len);
	const char *end = strstr(raw, " -----END SSH SIGNATURE-----\n");
	size_t at, mlen;
	char *mutated;
	cs_commit *c = NULL;
	int rc;

	ck_assert_ptr_nonnull(end);
	at = (size_t)(end - raw) + strlen(" -----END SSH SIGNATURE-----");
	mutated = malloc(len + 3);
	memcpy(mutated, raw, at);
	memcpy(mutated + at, "\0x", 2);
	memcpy(mutated + at + 2, raw + at, len - at);
	mlen = len + 2;
	rc = cs_commit_parse(&c, mutated, mlen);
	if (rc == 0) {
		int verified = cs_sshsig_verify(NULL, c->signature,
						strlen(c->signature), "git",
						(const uint8_t *)c->payload,
						c->payload_len);

		cs_commit_free(c);
		ck_abort_msg("a commit with \"\\0x\" after the armor's end line"
			     " parses (and its signature %s): one signature,"
			     " two commit ids",
			     verified == 0 ? "verifies" : "does not verify");
	}
	ck_assert_int_eq(rc, CS_EINVALID);
	free(mutated);
	free(raw);
}
END_TEST

/*
 * Inputs at the edges of the identity grammar: each is either refused or
 * re-serialised byte for byte (the grammar is exact, so a commit that
 * parses has exactly one spelling).
 */
START_TEST(test_ident_edges_roundtrip)
{
	static const struct {
		const char *what;
		const char *ident;
	} cases[] = {
		{"timezone -0000", "ms2 <e> 1735689600 -0000"},
		{"'>' in the name", "ms>2 <e> 1735689600 +0000"},
		{"timezone +2500", "ms2 <e> 1735689600 +2500"},
		{"empty email", "ms2 <> 1735689600 +0000"},
		{"two spaces before <", "ms2  <e> 1735689600 +0000"},
		{"15-digit time", "ms2 <e> 999999999999999 +0000"},
		{"empty name, two spaces", " <e> 1735689600 +0000"},
	};
	char failures[2048] = "";
	size_t nfail = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char raw[512], line[256];
		cs_commit *c = NULL;
		const char *why;
		int n;

		n = snprintf(raw, sizeof(raw),
			     "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"
			     "parent 1111111111111111111111111111111111111111\n"
			     "author %s\n"
			     "committer ms2 <e> 1735689600 +0000\n"
			     "gpgsig -----BEGIN SSH SIGNATURE-----\n"
			     " AAAA\n"
			     " -----END SSH SIGNATURE-----\n"
			     "\n"
			     "m\n",
			     cases[i].ident);
		if (cs_commit_parse(&c, raw, (size_t)n) < 0)
			continue;
		why = roundtrip(c, raw, (size_t)n);
		if (why) {
			snprintf(line, sizeof(line),
				 "author \"%s\" (%s) parses but: %s\n",
				 cases[i].ident, cases[i].what, why);
			strncat(failures, line,
				sizeof(failures) - strlen(failures) - 1);
			nfail++;
		}
		cs_commit_free(c);
	}
	ck_assert_msg(nfail == 0, "%s", failures);
}
END_TEST

START_TEST(test_size_limit)
{
	size_t len;
	char *raw = read_case("valid", "edit", &len), *big;
	cs_commit *c;

	/* Exactly at the limit: the grammar decides; one byte over: limit. */
	big = malloc(CS_COMMIT_MAX_BYTES + 2);
	memcpy(big, raw, len);
	memset(big + len, 'x', CS_COMMIT_MAX_BYTES + 1 - len);
	ck_assert_int_eq(cs_commit_parse(&c, big, CS_COMMIT_MAX_BYTES + 1),
			 CS_ELIMIT);
	ck_assert_int_eq(cs_commit_parse(&c, big, CS_COMMIT_MAX_BYTES), 0);
	ck_assert_uint_eq(strlen(c->message),
			  strlen("records: add a\n") +
				  (CS_COMMIT_MAX_BYTES - len));
	cs_commit_free(c);
	free(big);
	free(raw);

	/* Truncated anywhere in the headers: refused, never a crash. */
	raw = read_case("valid", "edit", &len);
	for (size_t cut = 0; cut < (size_t)(strstr(raw, "\n\n") - raw) + 1;
	     cut++) {
		char *part = malloc(cut ? cut : 1);

		memcpy(part, raw, cut);
		ck_assert_msg(cs_commit_parse(&c, part, cut) == CS_EINVALID,
			      "cut at %zu accepted", cut);
		free(part);
	}
	free(raw);
}
END_TEST

static void
git_config(void)
{
	ck_assert_int_eq(run(NULL, 0, "ssh-keygen -q -t ed25519 -N '' -C t"
				      " -f key"),
			 0);
	ck_assert_int_eq(run(NULL, 0, "git init -q --bare repo.git && git -C"
				      " repo.git hash-object -t tree -w"
				      " --stdin < /dev/null"),
			 0);
	ck_assert_int_eq(
		run(NULL, 0,
		    "git -C repo.git config gpg.format ssh && "
		    "git -C repo.git config user.signingkey '%s' && "
		    "printf 'ms2 %%s\\n' \"$(cat key.pub)\" > allowed && "
		    "git -C repo.git config gpg.ssh.allowedSignersFile '%s'",
		    tpath("key"), tpath("allowed")),
		0);
}

/* git signs, we parse and verify. */
START_TEST(test_git_signed_commit)
{
	char out[256], *raw, *stripped;
	size_t len, slen;
	cs_commit *c;
	cs_key *pub, *who = NULL;

	git_config();
	ck_assert_int_eq(
		run(out, sizeof(out),
		    "cd repo.git && export GIT_AUTHOR_NAME=ms2"
		    " GIT_AUTHOR_EMAIL=e GIT_COMMITTER_NAME=ms2"
		    " GIT_COMMITTER_EMAIL=e"
		    " GIT_AUTHOR_DATE='1735689600 +0100'"
		    " GIT_COMMITTER_DATE='1735689600 +0100' &&"
		    " g=$(echo genesis | git commit-tree -S"
		    " 4b825dc642cb6eb9a060e54bf8d69288fbee4904) &&"
		    " e=$(printf 'records: add\\n\\nbody\\n' | git commit-tree"
		    " -S -p $g 4b825dc642cb6eb9a060e54bf8d69288fbee4904) &&"
		    " git cat-file commit $e > ../edit.raw && echo $e"),
		0);
	raw = slurp(tpath("edit.raw"), &len);
	ck_assert_ptr_nonnull(raw);
	ck_assert_msg(cs_commit_parse(&c, raw, len) == 0, "%s",
		      cs_error_last());
	ck_assert_int_eq(c->kind, CS_COMMIT_EDIT);
	ck_assert_int_eq(c->author.tz_minutes, 60);
	ck_assert_str_eq(c->message, "records: add\n\nbody\n");
	stripped = strip_gpgsig(raw, len, &slen);
	ck_assert_uint_eq(c->payload_len, slen);
	ck_assert(memcmp(c->payload, stripped, slen) == 0);
	pub = load_public(tpath("key.pub"));
	ck_assert_int_eq(cs_sshsig_verify(&who, c->signature,
					  strlen(c->signature), "git",
					  (const uint8_t *)c->payload,
					  c->payload_len),
			 0);
	ck_assert(cs_key_equal(who, pub));
	ck_assert_ptr_null(roundtrip(c, raw, len));
	cs_key_free(who);
	cs_key_free(pub);
	cs_commit_free(c);
	free(stripped);
	free(raw);
}
END_TEST

/* We sign, git verifies (and stores the very same bytes). */
START_TEST(test_git_verifies_ours)
{
	cs_commit fields = make_fields(1);
	char out[256], *raw, *back;
	size_t len, blen;
	cs_key *key;

	git_config();
	ck_assert_int_eq(cs_key_load_private(&key, tpath("key")), 0);
	fields.tree = (cs_oid){{0x4b, 0x82, 0x5d, 0xc6, 0x42, 0xcb, 0x6e,
				0xb9, 0xa0, 0x60, 0xe5, 0x4b, 0xf8, 0xd6,
				0x92, 0x88, 0xfb, 0xee, 0x49, 0x04}};
	fields.kind = CS_COMMIT_GENESIS;
	fields.parent_count = 0;
	sign_commit(&raw, &len, &fields, key);
	spew(tpath("ours.raw"), raw, len);
	ck_assert_int_eq(run(out, sizeof(out),
			     "git -C repo.git hash-object -t commit -w"
			     " --stdin < ours.raw"),
			 0);
	out[strcspn(out, "\n")] = '\0';
	ck_assert_uint_eq(strlen(out), 40);
	ck_assert_int_eq(run(NULL, 0,
			     "git -C repo.git cat-file commit %s > back.raw",
			     out),
			 0);
	back = slurp(tpath("back.raw"), &blen);
	ck_assert_uint_eq(blen, len);
	ck_assert(memcmp(back, raw, len) == 0);
	ck_assert_msg(run(NULL, 0, "git -C repo.git verify-commit %s 2>&1",
			  out) == 0,
		      "git verify-commit refused our commit");
	ck_assert_int_eq(run(NULL, 0, "git -C repo.git fsck --strict 2>&1"),
			 0);

	/* A byte of the payload changed: git refuses too. */
	raw[strstr(raw, "records") - raw] = 'R';
	spew(tpath("ours.raw"), raw, len);
	ck_assert_int_eq(run(out, sizeof(out),
			     "git -C repo.git hash-object -t commit -w"
			     " --stdin < ours.raw"),
			 0);
	out[strcspn(out, "\n")] = '\0';
	ck_assert_int_ne(run(NULL, 0, "git -C repo.git verify-commit %s 2>&1",
			     out),
			 0);
	free(back);
	free(raw);
	cs_key_free(key);
}
END_TEST

static Suite *
commit_suite(void)
{
	Suite *s = suite_create("commit");
	TCase *tc = tcase_create("commit");

	tcase_add_unchecked_fixture(tc, make_basedir, remove_basedir);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_valid_cases);
	tcase_add_test(tc, test_invalid_cases);
	tcase_add_test(tc, test_fields);
	tcase_add_test(tc, test_format_parse_roundtrip);
	tcase_add_test(tc, test_format_refuses_bad_fields);
	tcase_add_test(tc, test_add_signature_layout);
	tcase_add_test(tc, test_rewrapped_armor);
	tcase_add_test(tc, test_nul_after_armor_is_refused);
	tcase_add_test(tc, test_ident_edges_roundtrip);
	tcase_add_test(tc, test_size_limit);
	tcase_add_test(tc, test_git_signed_commit);
	tcase_add_test(tc, test_git_verifies_ours);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(commit_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
