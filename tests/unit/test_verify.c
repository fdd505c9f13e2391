/*
 * cartosync — verification of histories (docs/protocol.md §3-§5).
 *
 * Each test starts a consortium in a temp dir the way `cartosync init
 * --genesis` does (members, the default policy, protocol and the schemas of
 * schema/ under consortium/schema/, signed by the coordinator node), admits
 * ms2 (a second node) and alcs (a key) in a coordinator commit, and then
 * builds histories: honest ones with cs_node_commit() and cs_map_put(),
 * forged ones commit by commit (payload, cs_sshsig_sign, raw write) on side
 * refs.  Every rule of §4 has a case that breaks it, and cs_verify() must
 * name the commit and the reason; what a valid commit stands on decides
 * whether it is valid ("stands on invalid commit").
 */
#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <git2.h>

#include "cartosync/commit.h"
#include "cartosync/consortium.h"
#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/key.h"
#include "cartosync/map.h"
#include "cartosync/node.h"
#include "cartosync/record.h"
#include "cartosync/repo.h"
#include "cartosync/schema.h"
#include "cartosync/sshsig.h"
#include "cartosync/verify.h"
#include "precheck.h"

#define SVC_ID "d4b229e1-f1cb-4e71-8df3-5bbd97c9be58"
#define SVC_PATH "records/ms2/service/d4/" SVC_ID ".json"
#define ALCS_ID "a1c5e0b2-3d4f-4a5b-8c6d-7e8f90a1b2c3"
#define ALCS_PATH "records/alcs/service/a1/" ALCS_ID ".json"
#define TLS_ALCS                                                              \
	"sha256:1111111111111111111111111111111111111111111111111111111111111111"

/* basedir: one per run, removed at the end even when tests fail (a failed
 * test skips its teardown); tmpdir: one per test inside it. */
static char basedir[64];
static char tmpdir[96];

static void
make_basedir(void)
{
	snprintf(basedir, sizeof(basedir), "/tmp/cs-test-verify-XXXXXX");
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

static cs_node *coord;  /* mdm-be, the coordinator node */
static cs_node *ms2;    /* the ms2 node */
static cs_repo *repo;   /* the coordinator's repository: where we judge */
static const cs_key *k_coord, *k_ms2;
static cs_key *k_alcs, *k_root[3], *k_stranger;
static cs_oid genesis, admission; /* G and A: main after setup */
static const char *craft_committer; /* NULL: the author */
static int64_t clock_now = 1735689600;

/*
 * libgit2 1.5 (Debian 12) leaks the pcre2 match data of a regular
 * expression that does not match (git_regexp_search; fixed upstream by
 * libgit2/libgit2#6382), and a fetch (cs_repo_fetch) goes through it: keep
 * LeakSanitizer to our own leaks.
 */
const char *__lsan_default_suppressions(void);

const char *
__lsan_default_suppressions(void)
{
	return "leak:libpcre2-8.so\n";
}

/* ---------------------------------------------------------------------- */
/* Helpers */

static char *
hex(const cs_oid *id)
{
	static char bufs[8][CS_OID_HEXSZ + 1];
	static int next;
	char *p = bufs[next++ % 8];

	cs_oid_fmt(p, id);
	return p;
}

static const char *
dir_of(const char *name)
{
	static char bufs[4][PATH_MAX];
	static int next;
	char *p = bufs[next++ % 4];

	snprintf(p, PATH_MAX, "%s/%s", tmpdir, name);
	return p;
}

static json_t *
js(const char *text)
{
	json_error_t err;
	json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &err);

	ck_assert_msg(v != NULL, "test JSON: %s", err.text);
	return v;
}

static cs_oid
write_json(const json_t *v)
{
	char *text;
	size_t len;
	cs_oid id;

	ck_assert_int_eq(cs_json_canonical(&text, &len, v), 0);
	ck_assert_int_eq(cs_repo_write_blob(&id, repo, text, len), 0);
	free(text);
	return id;
}

static cs_oid
write_raw(const char *text)
{
	cs_oid id;

	ck_assert_int_eq(cs_repo_write_blob(&id, repo, text, strlen(text)),
			 0);
	return id;
}

static cs_oid
tree_of(const cs_oid *commit)
{
	cs_oid t;

	ck_assert_int_eq(cs_repo_commit_tree(&t, repo, commit), 0);
	return t;
}

/* The tree of `base` with `path` set to `blob` (NULL: removed). */
static cs_oid
tree_with(const cs_oid *base, const char *path, const cs_oid *blob)
{
	cs_oid t = tree_of(base), out;
	cs_tree_update u = {path, blob};

	ck_assert_msg(cs_repo_tree_update(&out, repo, &t, &u, 1) == 0, "%s",
		      cs_error_last());
	return out;
}

static char *
key_line(const cs_key *k)
{
	char *s = cs_key_public_string(k);

	ck_assert_ptr_nonnull(s);
	return s;
}

static json_t *
key_entry(const cs_key *k, const char *org, const char *role,
	  const char *tls)
{
	char *line = key_line(k);
	json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:s}", "key", line, "org",
			      org, "role", role, "holder", "node", "tls", tls);

	free(line);
	return e;
}

static char *
tls_of(cs_node *node)
{
	char *tls = NULL;

	ck_assert_int_eq(cs_node_tls_hash(&tls, node), 0);
	return tls;
}

/* members.json as of the admission (A), a new reference. */
static json_t *
admitted_members(void)
{
	char *r0 = key_line(k_root[0]), *r1 = key_line(k_root[1]);
	char *r2 = key_line(k_root[2]);
	char *tc = tls_of(coord), *tm = tls_of(ms2);
	json_t *m = json_pack(
		"{s:{s:{s:s, s:b}, s:{s:s, s:b}, s:{s:s, s:b}}, s:[o, o, o],"
		" s:{s:i, s:[s, s, s]}}",
		"organizations", "mdm-be", "name", "Médecins du Monde Belgique",
		"removed", 0, "ms2", "name", "MS2", "removed", 0, "alcs", "name",
		"ALCS", "removed", 0, "keys",
		key_entry(k_coord, "mdm-be", "coordinator", tc),
		key_entry(k_ms2, "ms2", "member", tm),
		key_entry(k_alcs, "alcs", "member", TLS_ALCS), "root",
		"threshold", 2, "keys", r0, r1, r2);

	ck_assert_ptr_nonnull(m);
	free(r0);
	free(r1);
	free(r2);
	free(tc);
	free(tm);
	return m;
}

/* The key entry of `k` in a members document. */
static json_t *
entry_of(json_t *members, const cs_key *k)
{
	char *line = key_line(k);
	json_t *keys = json_object_get(members, "keys"), *e, *found = NULL;
	size_t i;

	json_array_foreach(keys, i, e) {
		if (strcmp(json_string_value(json_object_get(e, "key")),
			   line) == 0)
			found = e;
	}
	free(line);
	ck_assert_ptr_nonnull(found);
	return found;
}

static void
revoke(json_t *members, const cs_key *k)
{
	json_object_set_new(entry_of(members, k), "revoked",
			    json_pack("{s:s, s:s}", "date", "2025-03-01",
				      "reason", "laptop stolen"));
}

/* Commit through the node API (preflight included). */
static cs_oid
node_commit(cs_node *node, const cs_oid *base, const char *path,
	    const json_t *value)
{
	cs_tree_update u;
	cs_oid blob, id;
	int in_main;

	ck_assert_int_eq(cs_node_write_json(&blob, node, value), 0);
	u = (cs_tree_update){path, &blob};
	ck_assert_msg(cs_node_commit(&id, &in_main, node, base, &u, 1,
				     "edit\n") == 0,
		      "%s", cs_error_last());
	return id;
}

/*
 * A signed commit written by hand: the fields, cs_sshsig_sign over the
 * payload, the gpgsig header put in.  `author` NULL: the signer's usual
 * organisation is not known here, so callers always name it.
 */
static cs_oid
craft(const cs_key *key, const char *author, const cs_oid *parent,
      const cs_oid *tree, const char *message)
{
	cs_commit c;
	char *payload, *armor, *raw, *fp = cs_key_fingerprint(key);
	size_t plen, len;
	cs_oid id;

	memset(&c, 0, sizeof(c));
	c.tree = *tree;
	if (parent) {
		c.parents[0] = *parent;
		c.parent_count = 1;
	}
	c.author.name = (char *)author;
	c.author.email = fp;
	c.author.time = ++clock_now;
	c.committer = c.author;
	if (craft_committer)
		c.committer.name = (char *)craft_committer;
	c.message = (char *)(message ? message : "edit\n");
	ck_assert_int_eq(cs_commit_format_payload(&payload, &plen, &c), 0);
	ck_assert_int_eq(cs_sshsig_sign(&armor, key, CS_SSHSIG_NAMESPACE_GIT,
					(const uint8_t *)payload, plen),
			 0);
	ck_assert_int_eq(cs_commit_add_signature(&raw, &len, payload, plen,
						 armor),
			 0);
	ck_assert_int_eq(cs_repo_write_commit_raw(&id, repo, raw, len), 0);
	free(raw);
	free(armor);
	free(payload);
	free(fp);
	return id;
}

/* A side ref holds each crafted history, as a fetched head would be. */
static void
side_ref(const char *name, const cs_oid *id)
{
	char ref[128];
	cs_oid old;

	snprintf(ref, sizeof(ref), "refs/heads/%s", name);
	ck_assert_int_eq(cs_repo_ref_cas(repo, ref, id,
					 cs_repo_ref_read(&old, repo, ref) == 0
						 ? &old
						 : NULL,
					 "test"),
			 0);
}

static int64_t
time_of(const cs_oid *id)
{
	cs_commit *c;
	int64_t t;

	ck_assert_int_eq(cs_repo_read_commit(&c, repo, id), 0);
	t = c->committer.time;
	cs_commit_free(c);
	return t;
}

typedef struct {
	const char *author;
	const char *email;
	const char *message;
	int64_t time;
	int tz;
	int swap;      /* parents in the wrong order */
	const cs_key *sign;
} merge_shape;

/* A merge of a and b with `tree`, shaped as told. */
static cs_oid
craft_merge(const cs_oid *a, const cs_oid *b, const cs_oid *tree,
	    const merge_shape *s)
{
	cs_commit c;
	char *raw, *armor;
	size_t len;
	cs_oid id;
	int64_t ta = time_of(a), tb = time_of(b);

	memset(&c, 0, sizeof(c));
	c.tree = *tree;
	c.parent_count = 2;
	if ((cs_oid_cmp(a, b) < 0) != (s && s->swap)) {
		c.parents[0] = *a;
		c.parents[1] = *b;
	} else {
		c.parents[0] = *b;
		c.parents[1] = *a;
	}
	c.author.name = (char *)(s && s->author ? s->author
						: CS_MERGE_IDENT_NAME);
	c.author.email = (char *)(s && s->email ? s->email
						 : CS_MERGE_IDENT_EMAIL);
	c.author.time = s && s->time ? s->time : (ta > tb ? ta : tb);
	c.author.tz_minutes = s ? s->tz : 0;
	c.committer = c.author;
	c.message = (char *)(s && s->message ? s->message : CS_MERGE_MESSAGE);
	ck_assert_int_eq(cs_commit_format_payload(&raw, &len, &c), 0);
	if (s && s->sign) {
		char *whole;
		size_t wlen;

		ck_assert_int_eq(cs_sshsig_sign(&armor, s->sign, "git",
						(const uint8_t *)raw, len),
				 0);
		ck_assert_int_eq(cs_commit_add_signature(&whole, &wlen, raw,
							 len, armor),
				 0);
		free(raw);
		free(armor);
		raw = whole;
		len = wlen;
	}
	ck_assert_int_eq(cs_repo_write_commit_raw(&id, repo, raw, len), 0);
	free(raw);
	return id;
}

/* A valid service record of `owner` with `id` (from the test data). */
static json_t *
service(const char *owner, const char *id)
{
	json_t *r = js("{\"id\": \"" SVC_ID "\","
		       " \"name\": \"Consultations psychologiques\","
		       " \"organization_id\":"
		       " \"d107f1c6-2c0c-47dc-882e-1fee7d544cc4\","
		       " \"status\": \"active\","
		       " \"x_categories\": [\"mhpss\"],"
		       " \"x_owner\": \"ms2\","
		       " \"x_record_type\": \"service\","
		       " \"x_status\": \"published\","
		       " \"x_verified\": {\"by\": \"ms2\", \"date\":"
		       " \"2025-03-12\", \"method\": \"phone\"}}");

	json_object_set_new(r, "id", json_string(id));
	json_object_set_new(r, "x_owner", json_string(owner));
	json_object_set_new(json_object_get(r, "x_verified"), "by",
			    json_string(strcmp(owner, "shared") ? owner
								: "ms2"));
	return r;
}

static cs_verify_report *
judge(const cs_oid *tips, size_t ntips, const cs_oid *held, size_t nheld,
      const cs_oid *pinned)
{
	cs_verify_options o;
	cs_verify_report *r = NULL;

	memset(&o, 0, sizeof(o));
	o.genesis = pinned;
	o.tips = tips;
	o.ntips = ntips;
	o.held = held;
	o.nheld = nheld;
	o.all_merges = 1; /* as `cartosync verify` judges */
	ck_assert_msg(cs_verify(&r, repo, &o) == 0, "%s", cs_error_last());
	ck_assert_ptr_nonnull(r);
	return r;
}

static cs_verify_report *
judge_tip(const cs_oid *tip)
{
	return judge(tip, 1, NULL, 0, &genesis);
}

static const cs_verify_issue *
issue_of(const cs_verify_report *r, const cs_oid *commit)
{
	for (size_t i = 0; i < r->nissues; i++)
		if (cs_oid_cmp(&r->issues[i].commit, commit) == 0)
			return &r->issues[i];
	return NULL;
}

static const char *
all_issues(const cs_verify_report *r)
{
	static char buf[4096];

	buf[0] = '\0';
	for (size_t i = 0; i < r->nissues; i++) {
		char line[700];

		snprintf(line, sizeof(line), "  %.12s: %.600s\n",
			 hex(&r->issues[i].commit),
			 r->issues[i].reason ? r->issues[i].reason : "(null)");
		strncat(buf, line, sizeof(buf) - strlen(buf) - 1);
	}
	return buf;
}

/* `commit` is rejected for its own reason, which says `fragment`. */
static void
assert_rejected(const cs_verify_report *r, const cs_oid *commit,
		const char *fragment)
{
	const cs_verify_issue *is = issue_of(r, commit);

	ck_assert_msg(is != NULL, "%.12s accepted; expected \"%s\"; issues:\n%s",
		      hex(commit), fragment, all_issues(r));
	ck_assert_msg(!is->inherited, "%.12s: inherited: %s", hex(commit),
		      is->reason);
	ck_assert_msg(is->reason && strstr(is->reason, fragment) != NULL,
		      "%.12s: \"%s\" does not say \"%s\"", hex(commit),
		      is->reason ? is->reason : "(null)", fragment);
	ck_assert(cs_verify_report_rejects(r, commit));
}

static void
assert_clean(const cs_verify_report *r)
{
	ck_assert_msg(r->nissues == 0, "issues:\n%s", all_issues(r));
	ck_assert_int_eq(r->protocol, 0);
	ck_assert_uint_eq(r->unjudged, 0);
}

/* Judge one crafted tip and expect it rejected for `fragment`, its
 * ancestors (G and A) accepted. */
static void
expect_tip_rejected(const cs_oid *tip, const char *fragment)
{
	cs_verify_report *r = judge_tip(tip);

	assert_rejected(r, tip, fragment);
	ck_assert_msg(r->nissues == 1, "issues:\n%s", all_issues(r));
	ck_assert(!cs_verify_report_rejects(r, &genesis));
	ck_assert(!cs_verify_report_rejects(r, &admission));
	cs_verify_report_free(r);
}

static void
expect_tip_accepted(const cs_oid *tip)
{
	cs_verify_report *r = judge_tip(tip);

	assert_clean(r);
	cs_verify_report_free(r);
}

/* The genesis files, as cli/cmd_init.c writes them. */
static void
make_genesis(void)
{
	const char *schema_dir = getenv("CS_SCHEMA_DIR");
	char path[PATH_MAX + 300], *tc = tls_of(coord), *line;
	char *r[3];
	cs_tree_update ups[64];
	char *paths[64];
	cs_oid ids[64];
	size_t n = 0;
	struct dirent **names;
	json_t *members, *policy = NULL, *protocol, *doc;
	int count, in_main;

	ck_assert_msg(schema_dir != NULL, "CS_SCHEMA_DIR is not set");
	line = key_line(k_coord);
	for (int i = 0; i < 3; i++)
		r[i] = key_line(k_root[i]);
	members = json_pack(
		"{s:{s:{s:s, s:b}}, s:[{s:s, s:s, s:s, s:s, s:s}],"
		" s:{s:i, s:[s, s, s]}}",
		"organizations", "mdm-be", "name", "Médecins du Monde Belgique",
		"removed", 0, "keys", "key", line, "org", "mdm-be", "holder",
		"coordination node", "role", "coordinator", "tls", tc, "root",
		"threshold", 2, "keys", r[0], r[1], r[2]);
	ck_assert_ptr_nonnull(members);
	protocol = json_pack("{s:i, s:s}", "protocol", CS_PROTOCOL_VERSION,
			     "merge", CS_MERGE_ALGORITHM);
	snprintf(path, sizeof(path), "%s/default-policy.json", schema_dir);
	ck_assert_int_eq(cs_json_load_file(&policy, path), 0);

	paths[n] = strdup(CS_PATH_MEMBERS);
	ck_assert_int_eq(cs_node_write_json(&ids[n++], coord, members), 0);
	paths[n] = strdup(CS_PATH_POLICY);
	ck_assert_int_eq(cs_node_write_json(&ids[n++], coord, policy), 0);
	paths[n] = strdup(CS_PATH_PROTOCOL);
	ck_assert_int_eq(cs_node_write_json(&ids[n++], coord, protocol), 0);
	count = scandir(schema_dir, &names, NULL, alphasort);
	ck_assert_int_gt(count, 0);
	for (int i = 0; i < count; i++) {
		const char *name = names[i]->d_name;
		size_t len = strlen(name);

		if (len > 12 && strcmp(name + len - 12, ".schema.json") == 0) {
			ck_assert_uint_lt(n, 64);
			snprintf(path, sizeof(path), "%s/%s", schema_dir, name);
			ck_assert_int_eq(cs_json_load_file(&doc, path), 0);
			ck_assert_int_gt(asprintf(&paths[n],
						  CS_PATH_SCHEMA_DIR "/%s",
						  name),
					 0);
			ck_assert_int_eq(cs_node_write_json(&ids[n++], coord,
							    doc),
					 0);
			json_decref(doc);
		}
		free(names[i]);
	}
	free(names);
	for (size_t i = 0; i < n; i++)
		ups[i] = (cs_tree_update){paths[i], &ids[i]};
	ck_assert_msg(cs_node_commit(&genesis, &in_main, coord, NULL, ups, n,
				     "Genesis of the consortium\n") == 0,
		      "%s", cs_error_last());
	ck_assert(in_main);
	ck_assert_int_eq(cs_node_set_genesis(coord, &genesis), 0);
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	for (int i = 0; i < 3; i++)
		free(r[i]);
	free(line);
	free(tc);
	json_decref(members);
	json_decref(policy);
	json_decref(protocol);
}

static void
setup(void)
{
	json_t *m;
	cs_oid main_id;

	snprintf(tmpdir, sizeof(tmpdir), "%s/t-XXXXXX", basedir);
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	umask(022);
	ck_assert_msg(cs_node_create(&coord, dir_of("coord"), "mdm-be") == 0,
		      "%s", cs_error_last());
	ck_assert_msg(cs_node_create(&ms2, dir_of("ms2"), "ms2") == 0, "%s",
		      cs_error_last());
	ck_assert_int_eq(cs_node_key(&k_coord, coord), 0);
	ck_assert_int_eq(cs_node_key(&k_ms2, ms2), 0);
	ck_assert_int_eq(cs_key_generate(&k_alcs), 0);
	ck_assert_int_eq(cs_key_generate(&k_stranger), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(cs_key_generate(&k_root[i]), 0);
	repo = cs_node_repo(coord);

	make_genesis();
	/* Admission of ms2 (the second node's key) and alcs. */
	m = admitted_members();
	admission = node_commit(coord, &genesis, CS_PATH_MEMBERS, m);
	json_decref(m);
	ck_assert_int_eq(cs_node_main(&main_id, coord), 0);
	ck_assert_int_eq(cs_oid_cmp(&main_id, &admission), 0);
}

static void
teardown(void)
{
	char cmd[128];

	cs_node_free(coord);
	cs_node_free(ms2);
	coord = ms2 = NULL;
	repo = NULL;
	cs_key_free(k_alcs);
	cs_key_free(k_stranger);
	for (int i = 0; i < 3; i++)
		cs_key_free(k_root[i]);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Copy `from`'s main into `to`'s main (what a sync does once checked). */
static void
pull(cs_node *to, cs_node *from)
{
	ck_assert_msg(cs_repo_fetch(cs_node_repo(to), cs_node_dir(from),
				    "+refs/heads/main:refs/heads/main") == 0,
		      "%s", cs_error_last());
}

/* ---------------------------------------------------------------------- */
/* An honest history */

START_TEST(test_clean_history)
{
	cs_oid main_id, c1, c2, c3, c4, c5, shared_id_commit;
	json_t *r;
	char *path = NULL, shared_id[37];
	int in_main;
	cs_verify_report *rep;

	/* ms2 joins: its node gets the history and writes. */
	pull(ms2, coord);
	ck_assert_int_eq(cs_node_main(&main_id, ms2), 0);
	ck_assert_int_eq(cs_oid_cmp(&main_id, &admission), 0);
	r = service("ms2", SVC_ID);
	ck_assert_msg(cs_map_put(&c1, &in_main, ms2, &main_id, r,
				 "records: add service\n") == 0,
		      "%s", cs_error_last());
	ck_assert(in_main);
	json_object_set_new(r, "name", json_string("Consultations (MS2)"));
	ck_assert_msg(cs_map_put(&c2, &in_main, ms2, &c1, r,
				 "records: rename\n") == 0,
		      "%s", cs_error_last());
	json_decref(r);
	ck_assert_int_eq(cs_uuid_generate(shared_id), 0);
	r = service("shared", shared_id);
	ck_assert_msg(cs_map_put(&shared_id_commit, &in_main, ms2, &c2, r,
				 "records: add shared\n") == 0,
		      "%s", cs_error_last());
	json_decref(r);
	ck_assert_int_eq(cs_map_remove(&c3, &in_main, ms2, &shared_id_commit,
				       shared_id, "records: remove\n"),
			 0);

	/* The coordinator takes it and writes in another folder. */
	pull(coord, ms2);
	r = service("alcs", ALCS_ID);
	ck_assert_msg(cs_map_put(&c4, &in_main, coord, &c3, r,
				 "records: add for alcs\n") == 0,
		      "%s", cs_error_last());
	json_decref(r);
	/* ... and ms2 keeps writing on what it read. */
	pull(ms2, coord);
	r = service("ms2", SVC_ID);
	json_object_set_new(r, "status", json_string("inactive"));
	ck_assert_int_eq(cs_map_put(&c5, &in_main, ms2, &c4, r,
				    "records: close\n"),
			 0);
	json_decref(r);
	pull(coord, ms2);
	ck_assert_int_eq(cs_node_main(&main_id, coord), 0);
	ck_assert_int_eq(cs_oid_cmp(&main_id, &c5), 0);
	ck_assert_int_eq(cs_map_find(&r, &path, repo, &c5, SVC_ID), 0);
	ck_assert_str_eq(path, SVC_PATH);
	free(path);
	json_decref(r);

	for (unsigned threads = 0; threads <= 4; threads += 4) {
		cs_verify_options o;

		memset(&o, 0, sizeof(o));
		o.genesis = &genesis;
		o.tips = &main_id;
		o.ntips = 1;
		o.threads = threads;
		ck_assert_int_eq(cs_verify(&rep, repo, &o), 0);
		assert_clean(rep);
		ck_assert_uint_eq(rep->commits, 8);
		ck_assert_uint_eq(rep->edits, 8);
		ck_assert_uint_eq(rep->merges, 0);
		cs_verify_report_free(rep);
	}
	/* Without a pinned genesis too. */
	rep = judge(&main_id, 1, NULL, 0, NULL);
	assert_clean(rep);
	cs_verify_report_free(rep);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Edits that break a rule, each on its own side ref */

START_TEST(test_non_member_signer)
{
	json_t *r = service("ms2", SVC_ID);
	cs_oid blob = write_json(r), t = tree_with(&admission, SVC_PATH, &blob);
	cs_oid x = craft(k_stranger, "ms2", &admission, &t, NULL);
	char *fp = cs_key_fingerprint(k_stranger), frag[128];

	side_ref("x", &x);
	snprintf(frag, sizeof(frag), "signed by %s, which is not a member key",
		 fp);
	expect_tip_rejected(&x, frag);
	free(fp);
	json_decref(r);
}
END_TEST

START_TEST(test_root_key_cannot_edit_records)
{
	json_t *r = service("ms2", SVC_ID);
	cs_oid blob = write_json(r), t = tree_with(&admission, SVC_PATH, &blob);
	cs_oid x = craft(k_root[0], "root", &admission, &t, NULL);

	side_ref("x", &x);
	expect_tip_rejected(&x, "root may not write '" SVC_PATH "'");
	json_decref(r);
}
END_TEST

START_TEST(test_other_org_folder)
{
	json_t *r = service("alcs", ALCS_ID);
	cs_oid blob = write_json(r), t = tree_with(&admission, ALCS_PATH, &blob);
	cs_oid x = craft(k_ms2, "ms2", &admission, &t, NULL);
	cs_oid y = craft(k_alcs, "alcs", &admission, &t, NULL);

	side_ref("x", &x);
	expect_tip_rejected(&x, "ms2 may not write '" ALCS_PATH "'");
	/* The owner may. */
	side_ref("y", &y);
	expect_tip_accepted(&y);
	json_decref(r);
}
END_TEST

START_TEST(test_invalid_record)
{
	json_t *r = service("ms2", SVC_ID);
	cs_oid blob, t, x;

	json_object_set_new(r, "x_status", json_string("pending"));
	blob = write_json(r);
	t = tree_with(&admission, SVC_PATH, &blob);
	x = craft(k_ms2, "ms2", &admission, &t, NULL);
	side_ref("x", &x);
	expect_tip_rejected(&x, SVC_PATH ": /x_status: ");
	json_decref(r);

	/* Stored at another record's path. */
	r = service("ms2", ALCS_ID);
	blob = write_json(r);
	t = tree_with(&admission, SVC_PATH, &blob);
	x = craft(k_ms2, "ms2", &admission, &t, NULL);
	side_ref("x", &x);
	expect_tip_rejected(&x, "stored at the wrong path");
	json_decref(r);

	/* Not JSON. */
	blob = write_raw("{\"id\": ");
	t = tree_with(&admission, SVC_PATH, &blob);
	x = craft(k_ms2, "ms2", &admission, &t, NULL);
	side_ref("x", &x);
	expect_tip_rejected(&x, SVC_PATH);

	/* A staff-care session never enters the shared history. */
	r = js("{\"id\": \"" SVC_ID "\", \"x_owner\": \"ms2\","
	       " \"x_record_type\": \"staffcare_session\"}");
	blob = write_json(r);
	t = tree_with(&admission,
		      "records/ms2/staffcare_session/d4/" SVC_ID ".json",
		      &blob);
	x = craft(k_ms2, "ms2", &admission, &t, NULL);
	side_ref("x", &x);
	expect_tip_rejected(&x, "coordination-only");
	json_decref(r);
}
END_TEST

START_TEST(test_non_canonical_file)
{
	json_t *r = service("ms2", SVC_ID);
	char *text = json_dumps(r, JSON_SORT_KEYS | JSON_INDENT(4));
	cs_oid blob, t, x;

	ck_assert_ptr_nonnull(text);
	blob = write_raw(text);
	t = tree_with(&admission, SVC_PATH, &blob);
	x = craft(k_ms2, "ms2", &admission, &t, NULL);
	side_ref("x", &x);
	expect_tip_rejected(&x, SVC_PATH ": not in canonical form");
	free(text);
	json_decref(r);

	/* A consortium file too. */
	r = admitted_members();
	text = json_dumps(r, JSON_SORT_KEYS | JSON_COMPACT);
	blob = write_raw(text);
	t = tree_with(&admission, CS_PATH_MEMBERS, &blob);
	x = craft(k_coord, "mdm-be", &admission, &t, NULL);
	side_ref("x", &x);
	expect_tip_rejected(&x, CS_PATH_MEMBERS ": not in canonical form");
	free(text);
	json_decref(r);
}
END_TEST

START_TEST(test_file_outside_map)
{
	cs_oid blob = write_raw("hello\n"), t, x;

	/* Even the coordinator, who may write much, writes only the map. */
	t = tree_with(&admission, "notes.txt", &blob);
	x = craft(k_coord, "mdm-be", &admission, &t, NULL);
	side_ref("x", &x);
	expect_tip_rejected(&x, "'notes.txt' is not a path of the map");

	t = tree_with(&admission, "records/ms2/notes.txt", &blob);
	x = craft(k_ms2, "ms2", &admission, &t, NULL);
	side_ref("x", &x);
	expect_tip_rejected(&x, "is not a record path");

	t = tree_with(&admission, "consortium/notes.txt", &blob);
	x = craft(k_coord, "mdm-be", &admission, &t, NULL);
	side_ref("x", &x);
	expect_tip_rejected(&x, "'consortium/notes.txt' is not a path of the"
				" map");
}
END_TEST

/* A tree with `path` at `mode`, written with libgit2 directly (the
 * library only writes regular files). */
static cs_oid
tree_with_mode(const cs_oid *base, const char *path, const cs_oid *blob,
	       git_filemode_t mode)
{
	git_repository *g = NULL;
	git_tree *baseline = NULL;
	git_tree_update u;
	git_oid tid, out;
	cs_oid t = tree_of(base), result;

	ck_assert_int_eq(git_repository_open(&g, cs_repo_path(repo)), 0);
	memcpy(tid.id, t.id, CS_OID_RAWSZ);
	ck_assert_int_eq(git_tree_lookup(&baseline, g, &tid), 0);
	memset(&u, 0, sizeof(u));
	u.action = GIT_TREE_UPDATE_UPSERT;
	memcpy(u.id.id, blob->id, CS_OID_RAWSZ);
	u.filemode = mode;
	u.path = path;
	ck_assert_int_eq(git_tree_create_updated(&out, g, baseline, 1, &u), 0);
	memcpy(result.id, out.id, CS_OID_RAWSZ);
	git_tree_free(baseline);
	git_repository_free(g);
	return result;
}

START_TEST(test_file_modes)
{
	json_t *r = service("ms2", SVC_ID);
	cs_oid blob = write_json(r), link = write_raw(ALCS_PATH), t, x;

	git_libgit2_init();
	t = tree_with_mode(&admission, SVC_PATH, &blob,
			   GIT_FILEMODE_BLOB_EXECUTABLE);
	x = craft(k_ms2, "ms2", &admission, &t, NULL);
	side_ref("x", &x);
	expect_tip_rejected(&x, "'" SVC_PATH "' is not a regular file (mode"
				" 100755)");

	t = tree_with_mode(&admission, SVC_PATH, &link, GIT_FILEMODE_LINK);
	x = craft(k_ms2, "ms2", &admission, &t, NULL);
	side_ref("x", &x);
	expect_tip_rejected(&x, "is not a regular file (mode 120000)");

	/* A mode change alone is a change. */
	t = tree_with(&admission, SVC_PATH, &blob);
	x = craft(k_ms2, "ms2", &admission, &t, NULL);
	t = tree_with_mode(&x, SVC_PATH, &blob, GIT_FILEMODE_BLOB_EXECUTABLE);
	x = craft(k_ms2, "ms2", &x, &t, NULL);
	side_ref("x", &x);
	expect_tip_rejected(&x, "is not a regular file (mode 100755)");
	json_decref(r);
	git_libgit2_shutdown();
}
END_TEST

START_TEST(test_author_not_signer_org)
{
	json_t *r = service("ms2", SVC_ID);
	cs_oid blob = write_json(r), t = tree_with(&admission, SVC_PATH, &blob);
	cs_oid x = craft(k_ms2, "alcs", &admission, &t, NULL);

	side_ref("x", &x);
	expect_tip_rejected(&x, "author \"alcs\" is not the signer's"
				" organisation \"ms2\"");
	x = craft(k_ms2, "MS2", &admission, &t, NULL);
	side_ref("x", &x);
	expect_tip_rejected(&x, "author \"MS2\"");

	/* The committer too. */
	craft_committer = "alcs";
	x = craft(k_ms2, "ms2", &admission, &t, NULL);
	craft_committer = NULL;
	side_ref("x", &x);
	expect_tip_rejected(&x, "committer \"alcs\" is not the signer's"
				" organisation \"ms2\"");
	json_decref(r);
}
END_TEST

START_TEST(test_consortium_files_rules)
{
	cs_oid t, x;
	json_t *m;

	/* A member cannot touch consortium/. */
	m = admitted_members();
	json_object_set_new(json_object_get(json_object_get(m, "organizations"),
					    "ms2"),
			    "name", json_string("MS2 renamed"));
	{
		cs_oid blob = write_json(m);

		t = tree_with(&admission, CS_PATH_MEMBERS, &blob);
	}
	x = craft(k_ms2, "ms2", &admission, &t, NULL);
	side_ref("x", &x);
	expect_tip_rejected(&x, "ms2 may not write 'consortium/members.json'");
	json_decref(m);

	/* Consortium files are never removed. */
	t = tree_with(&admission, CS_PATH_POLICY, NULL);
	x = craft(k_coord, "mdm-be", &admission, &t, NULL);
	side_ref("x", &x);
	expect_tip_rejected(&x, "'consortium/policy.json' cannot be removed");

	/* The files after the edit must load: a key of an unlisted org. */
	m = admitted_members();
	json_array_append_new(json_object_get(m, "keys"),
			      key_entry(k_stranger, "zz", "member", TLS_ALCS));
	json_object_set_new(json_object_get(m, "organizations"), "yy",
			    json_pack("{s:s, s:b}", "name", "YY", "removed",
				      0));
	{
		cs_oid blob = write_json(m);

		t = tree_with(&admission, CS_PATH_MEMBERS, &blob);
	}
	x = craft(k_coord, "mdm-be", &admission, &t, NULL);
	side_ref("x", &x);
	expect_tip_rejected(&x, "organisation \"zz\" is not listed");
	json_decref(m);

	/* members.json against members.schema.json of the parent. */
	m = admitted_members();
	json_object_set_new(m, "extra", json_true());
	{
		cs_oid blob = write_json(m);

		t = tree_with(&admission, CS_PATH_MEMBERS, &blob);
	}
	x = craft(k_coord, "mdm-be", &admission, &t, NULL);
	side_ref("x", &x);
	expect_tip_rejected(&x, CS_PATH_MEMBERS ": ");
	json_decref(m);
}
END_TEST

START_TEST(test_genesis_signed_by_member)
{
	/* A root commit signed by a member key of its own members file. */
	json_t *m = admitted_members();
	cs_oid blob = write_json(m), t = tree_with(&genesis, CS_PATH_MEMBERS,
						   &blob);
	cs_oid g2 = craft(k_ms2, "ms2", NULL, &t, "Genesis\n");
	cs_verify_report *r;

	side_ref("other", &g2);
	r = judge(&g2, 1, NULL, 0, NULL);
	assert_rejected(r, &g2, "the genesis must be signed by a coordinator"
				" key");
	cs_verify_report_free(r);
	json_decref(m);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Revocation: docs/protocol.md §4.8 */

START_TEST(test_revocation)
{
	/*
	 *   G---A---P---R        R: the coordinator revokes K (ms2's key)
	 *            \
	 *             E          E: signed with K, parent P (K valid there)
	 */
	json_t *r = service("ms2", SVC_ID), *m = admitted_members();
	cs_oid blob = write_json(r), p, rv, e, t, after, held;
	cs_verify_report *rep;
	char hexr[CS_OID_HEXSZ + 1];

	t = tree_with(&admission, SVC_PATH, &blob);
	p = craft(k_ms2, "ms2", &admission, &t, "before the revocation\n");
	side_ref("main-p", &p);
	revoke(m, k_ms2);
	json_decref(r);
	r = service("ms2", SVC_ID);
	json_object_set_new(r, "name", json_string("signed with a stolen key"));
	blob = write_json(r);
	/* R on top of P, so that P is in R's past. */
	{
		cs_oid mb = write_json(m);

		t = tree_with(&p, CS_PATH_MEMBERS, &mb);
		rv = craft(k_coord, "mdm-be", &p, &t, "revoke ms2's key\n");
	}
	side_ref("main", &rv);
	t = tree_with(&p, SVC_PATH, &blob);
	e = craft(k_ms2, "ms2", &p, &t, "late edit\n");
	side_ref("x", &e);

	/* R held: E is undone. */
	held = rv;
	rep = judge(&e, 1, &held, 1, &genesis);
	cs_oid_fmt(hexr, &rv);
	assert_rejected(rep, &e, "revoked");
	{
		const cs_verify_issue *is = issue_of(rep, &e);
		char frag[64];

		snprintf(frag, sizeof(frag), "%.12s", hexr);
		ck_assert_msg(strstr(is->reason, frag) != NULL &&
				      strstr(is->reason, "not in that commit's"
							 " past") != NULL,
			      "%s", is->reason);
	}
	ck_assert_msg(rep->nissues == 1, "issues:\n%s", all_issues(rep));
	ck_assert(!cs_verify_report_rejects(rep, &p));
	cs_verify_report_free(rep);

	/* Judging both heads as tips: the same verdict. */
	{
		cs_oid tips[2] = {rv, e};

		rep = judge(tips, 2, NULL, 0, &genesis);
		assert_rejected(rep, &e, "revoked");
		ck_assert(!cs_verify_report_rejects(rep, &rv));
		ck_assert(!cs_verify_report_rejects(rep, &p));
		ck_assert_uint_eq(rep->nissues, 1);
		cs_verify_report_free(rep);
	}

	/* R not held: nothing says K is revoked; E stands. */
	rep = judge(&e, 1, NULL, 0, &genesis);
	assert_clean(rep);
	cs_verify_report_free(rep);

	/* After R, K writes nothing. */
	t = tree_with(&rv, SVC_PATH, &blob);
	after = craft(k_ms2, "ms2", &rv, &t, NULL);
	side_ref("y", &after);
	rep = judge(&after, 1, NULL, 0, &genesis);
	assert_rejected(rep, &after, "which is revoked");
	cs_verify_report_free(rep);

	json_decref(r);
	json_decref(m);
}
END_TEST

/* The policy narrowed: members may no longer write shared records. */
START_TEST(test_policy_narrowed)
{
	const char *schema_dir = getenv("CS_SCHEMA_DIR");
	char path[PATH_MAX];
	json_t *policy = NULL, *r;
	cs_oid pb, t, rv, e, blob;
	char sid[37];
	cs_verify_report *rep;

	snprintf(path, sizeof(path), "%s/default-policy.json", schema_dir);
	ck_assert_int_eq(cs_json_load_file(&policy, path), 0);
	json_object_set_new(json_object_get(policy, "write"), "member",
			    json_pack("[s]", "records/{org}/**"));
	pb = write_json(policy);
	t = tree_with(&admission, CS_PATH_POLICY, &pb);
	rv = craft(k_coord, "mdm-be", &admission, &t, "narrow\n");
	side_ref("main", &rv);

	ck_assert_int_eq(cs_uuid_generate(sid), 0);
	r = service("shared", sid);
	blob = write_json(r);
	{
		char *p;

		ck_assert_int_eq(cs_record_path(&p, r), 0);
		t = tree_with(&admission, p, &blob);
		free(p);
	}
	e = craft(k_ms2, "ms2", &admission, &t, NULL);
	side_ref("x", &e);
	rep = judge(&e, 1, &rv, 1, &genesis);
	assert_rejected(rep, &e, "ms2 may not write 'records/shared/");
	cs_verify_report_free(rep);
	rep = judge(&e, 1, NULL, 0, &genesis);
	assert_clean(rep);
	cs_verify_report_free(rep);
	json_decref(r);
	json_decref(policy);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Root approvals */

static char *
root_sig(const cs_key *k, const cs_oid *parent, const cs_oid *members)
{
	char *msg = cs_root_approval_message(parent, members), *armor;

	ck_assert_int_eq(cs_sshsig_sign(&armor, k, CS_SSHSIG_NAMESPACE_ROOT,
					(const uint8_t *)msg, strlen(msg)),
			 0);
	free(msg);
	return armor;
}

/* A coordinator commit on A: members `m` and, if nsig >= 0, an approval
 * signed by the first nsig root keys. */
static cs_oid
power_change(json_t *m, int nsig, cs_oid *tree_out)
{
	cs_oid mb = write_json(m), t, ab;
	cs_tree_update ups[2];
	cs_oid base_tree = tree_of(&admission);
	size_t n = 0;

	ups[n++] = (cs_tree_update){CS_PATH_MEMBERS, &mb};
	if (nsig >= 0) {
		json_t *a = json_pack("{s:s, s:s, s:[]}", "parent",
				      hex(&admission), "members", hex(&mb),
				      "signatures");

		for (int i = 0; i < nsig; i++) {
			char *sig = root_sig(k_root[i], &admission, &mb);

			json_array_append_new(json_object_get(a, "signatures"),
					      json_string(sig));
			free(sig);
		}
		ab = write_json(a);
		json_decref(a);
		ups[n++] = (cs_tree_update){CS_PATH_ROOT_APPROVAL, &ab};
	}
	ck_assert_int_eq(cs_repo_tree_update(&t, repo, &base_tree, ups, n), 0);
	if (tree_out)
		*tree_out = t;
	return craft(k_coord, "mdm-be", &admission, &t, "coordinator keys\n");
}

START_TEST(test_root_approval)
{
	json_t *m = admitted_members();
	cs_key *k_new;
	cs_oid x, t;
	int rc;

	ck_assert_int_eq(cs_key_generate(&k_new), 0);
	json_array_append_new(json_object_get(m, "keys"),
			      key_entry(k_new, "mdm-be", "coordinator",
					TLS_ALCS));

	/* No approval. */
	x = power_change(m, -1, &t);
	side_ref("x", &x);
	expect_tip_rejected(&x, "needs a root approval");
	rc = cs_verify_edit_preflight(repo, &admission, &t, k_coord);
	ck_assert_int_eq(rc, CS_EINVALID);
	ck_assert(strstr(cs_error_last(), "root approval") != NULL);

	/* One of the two needed. */
	x = power_change(m, 1, NULL);
	side_ref("x", &x);
	expect_tip_rejected(&x, "1 root approval, 2 needed");

	/* Two of three. */
	x = power_change(m, 2, &t);
	side_ref("x", &x);
	expect_tip_accepted(&x);
	ck_assert_int_eq(cs_verify_edit_preflight(repo, &admission, &t,
						  k_coord),
			 0);

	/* The new coordinator key then writes as a coordinator. */
	{
		json_t *r = service("alcs", ALCS_ID);
		cs_oid blob = write_json(r), t2 = tree_with(&x, ALCS_PATH, &blob);
		cs_oid y = craft(k_new, "mdm-be", &x, &t2, NULL);

		side_ref("y", &y);
		expect_tip_accepted(&y);
		json_decref(r);
	}

	/* Revoking the coordinator key is a power change too. */
	json_decref(m);
	m = admitted_members();
	revoke(m, k_coord);
	x = power_change(m, -1, NULL);
	side_ref("x", &x);
	expect_tip_rejected(&x, "needs a root approval");

	/* The threshold. */
	json_decref(m);
	m = admitted_members();
	json_object_set_new(json_object_get(m, "root"), "threshold",
			    json_integer(1));
	x = power_change(m, -1, NULL);
	side_ref("x", &x);
	expect_tip_rejected(&x, "needs a root approval");
	x = power_change(m, 2, NULL);
	side_ref("x", &x);
	expect_tip_accepted(&x);

	/* Admitting a member key needs no approval. */
	json_decref(m);
	m = admitted_members();
	json_array_append_new(json_object_get(m, "keys"),
			      key_entry(k_new, "ms2", "member", TLS_ALCS));
	x = power_change(m, -1, NULL);
	side_ref("x", &x);
	expect_tip_accepted(&x);

	json_decref(m);
	cs_key_free(k_new);
}
END_TEST

/* A root key may sign the members change itself (and its approval). */
START_TEST(test_root_commit_by_root_key)
{
	json_t *m = admitted_members(), *a;
	cs_oid mb, ab, t, x, base_tree = tree_of(&admission);
	cs_tree_update ups[2];
	char *s0, *s1;

	revoke(m, k_coord);
	json_array_append_new(json_object_get(m, "keys"),
			      key_entry(k_stranger, "mdm-be", "coordinator",
					TLS_ALCS));
	mb = write_json(m);
	s0 = root_sig(k_root[0], &admission, &mb);
	s1 = root_sig(k_root[2], &admission, &mb);
	a = json_pack("{s:s, s:s, s:[s, s]}", "parent", hex(&admission),
		      "members", hex(&mb), "signatures", s0, s1);
	ab = write_json(a);
	ups[0] = (cs_tree_update){CS_PATH_MEMBERS, &mb};
	ups[1] = (cs_tree_update){CS_PATH_ROOT_APPROVAL, &ab};
	ck_assert_int_eq(cs_repo_tree_update(&t, repo, &base_tree, ups, 2), 0);
	x = craft(k_root[1], "root", &admission, &t, "replace the lost key\n");
	side_ref("x", &x);
	expect_tip_accepted(&x);

	/* Named as "root", not as an organisation. */
	x = craft(k_root[1], "mdm-be", &admission, &t, "replace\n");
	side_ref("x", &x);
	expect_tip_rejected(&x, "author \"mdm-be\" is not the signer's"
				" organisation \"root\"");
	json_decref(a);
	json_decref(m);
	free(s0);
	free(s1);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Merges */

/* Two edits on the admission, by ms2 and alcs, and the tree of their
 * merge. */
typedef struct {
	cs_oid b1, b2; /* the records */
	cs_oid t1, tm; /* ms2's tree; the merged tree */
	cs_oid e1, e2; /* the edits */
} two_sides;

static two_sides
sides_on_admission(void)
{
	json_t *r1 = service("ms2", SVC_ID), *r2 = service("alcs", ALCS_ID);
	cs_oid base_tree = tree_of(&admission), t2;
	two_sides two;
	cs_tree_update ups[2] = {{SVC_PATH, &two.b1}, {ALCS_PATH, &two.b2}};

	two.b1 = write_json(r1);
	two.b2 = write_json(r2);
	two.t1 = tree_with(&admission, SVC_PATH, &two.b1);
	t2 = tree_with(&admission, ALCS_PATH, &two.b2);
	ck_assert_int_eq(cs_repo_tree_update(&two.tm, repo, &base_tree, ups, 2),
			 0);
	two.e1 = craft(k_ms2, "ms2", &admission, &two.t1, NULL);
	two.e2 = craft(k_alcs, "alcs", &admission, &t2, NULL);
	json_decref(r1);
	json_decref(r2);
	return two;
}

START_TEST(test_merges)
{
	two_sides two = sides_on_admission();
	cs_oid b1 = two.b1, b2 = two.b2, t1 = two.t1, tm = two.tm, e1 = two.e1;
	cs_oid e2 = two.e2, base_tree = tree_of(&admission), x;
	merge_shape s;
	cs_verify_report *rep;

	/* The right shape. */
	x = craft_merge(&e1, &e2, &tm, NULL);
	side_ref("m", &x);
	rep = judge_tip(&x);
	assert_clean(rep);
	ck_assert_uint_eq(rep->merges, 1);
	ck_assert_uint_eq(rep->edits, 4);
	ck_assert_uint_eq(rep->commits, 5);
	cs_verify_report_free(rep);

	/* The right shape around a tree that is not the merge of its
	 * parents: unsigned content smuggled in, or a side's edit dropped. */
	{
		cs_oid extra = write_raw("smuggled\n"), tx;
		cs_tree_update u[3] = {{SVC_PATH, &b1}, {ALCS_PATH, &b2},
				       {"notes.txt", &extra}};

		ck_assert_int_eq(cs_repo_tree_update(&tx, repo, &base_tree, u,
						     3),
				 0);
		x = craft_merge(&e1, &e2, &tx, NULL);
		side_ref("m", &x);
		expect_tip_rejected(&x, "not the merge of its parents");
		x = craft_merge(&e1, &e2, &t1, NULL);
		side_ref("m", &x);
		expect_tip_rejected(&x, "not the merge of its parents");
	}

	memset(&s, 0, sizeof(s));
	s.swap = 1;
	x = craft_merge(&e1, &e2, &tm, &s);
	side_ref("m", &x);
	expect_tip_rejected(&x, "parents must be in canonical order");

	memset(&s, 0, sizeof(s));
	x = craft_merge(&admission, &e1, &t1, &s);
	side_ref("m", &x);
	expect_tip_rejected(&x, "a merge's parent is an ancestor of the"
				" other");

	memset(&s, 0, sizeof(s));
	s.author = "ms2";
	x = craft_merge(&e1, &e2, &tm, &s);
	side_ref("m", &x);
	expect_tip_rejected(&x, "fixed cartosync identity");
	memset(&s, 0, sizeof(s));
	s.email = "merge@example.org";
	x = craft_merge(&e1, &e2, &tm, &s);
	side_ref("m", &x);
	expect_tip_rejected(&x, "fixed cartosync identity");
	memset(&s, 0, sizeof(s));
	s.tz = 60;
	x = craft_merge(&e1, &e2, &tm, &s);
	side_ref("m", &x);
	expect_tip_rejected(&x, "fixed cartosync identity");

	memset(&s, 0, sizeof(s));
	s.message = "Merge branch 'x'\n";
	x = craft_merge(&e1, &e2, &tm, &s);
	side_ref("m", &x);
	expect_tip_rejected(&x, "cartosync-merge/1");

	memset(&s, 0, sizeof(s));
	s.time = 1;
	x = craft_merge(&e1, &e2, &tm, &s);
	side_ref("m", &x);
	expect_tip_rejected(&x, "later parent's");

	memset(&s, 0, sizeof(s));
	s.sign = k_coord;
	x = craft_merge(&e1, &e2, &tm, &s);
	side_ref("m", &x);
	expect_tip_rejected(&x, "a merge must not be signed");

	/* A merge standing on an invalid edit is invalid. */
	{
		cs_oid bad = craft(k_stranger, "ms2", &admission, &t1, NULL);
		const cs_verify_issue *is;

		memset(&s, 0, sizeof(s));
		x = craft_merge(&bad, &e2, &tm, &s);
		side_ref("m", &x);
		rep = judge_tip(&x);
		assert_rejected(rep, &bad, "not a member key");
		is = issue_of(rep, &x);
		ck_assert_ptr_nonnull(is);
		ck_assert(is->inherited);
		ck_assert_int_eq(cs_oid_cmp(&is->cause, &bad), 0);
		cs_verify_report_free(rep);
	}
}
END_TEST

/* ---------------------------------------------------------------------- */
/* What commits stand on */

START_TEST(test_inherited)
{
	json_t *r = service("ms2", SVC_ID);
	cs_oid blob = write_json(r), t = tree_with(&admission, SVC_PATH, &blob);
	cs_oid bad = craft(k_stranger, "ms2", &admission, &t, NULL), c1, c2;
	cs_verify_report *rep;
	char frag[80];

	json_object_set_new(r, "name", json_string("second"));
	blob = write_json(r);
	t = tree_with(&bad, SVC_PATH, &blob);
	c1 = craft(k_ms2, "ms2", &bad, &t, NULL);
	json_object_set_new(r, "name", json_string("third"));
	blob = write_json(r);
	t = tree_with(&c1, SVC_PATH, &blob);
	c2 = craft(k_ms2, "ms2", &c1, &t, NULL);
	side_ref("x", &c2);

	rep = judge_tip(&c2);
	ck_assert_msg(rep->nissues == 3, "issues:\n%s", all_issues(rep));
	assert_rejected(rep, &bad, "not a member key");
	snprintf(frag, sizeof(frag), "stands on invalid commit %s", hex(&bad));
	for (int i = 0; i < 2; i++) {
		const cs_verify_issue *is = issue_of(rep, i ? &c2 : &c1);

		ck_assert_ptr_nonnull(is);
		ck_assert_int_eq(is->inherited, 1);
		ck_assert_int_eq(cs_oid_cmp(&is->cause, &bad), 0);
		ck_assert_msg(strstr(is->reason, frag) != NULL, "%s",
			      is->reason);
	}
	ck_assert_uint_eq(rep->commits, 5);
	cs_verify_report_free(rep);
	json_decref(r);
}
END_TEST

START_TEST(test_second_root_and_pinned_genesis)
{
	cs_oid t = tree_of(&genesis), g2, tips[2];
	cs_oid other;
	cs_verify_report *rep;
	const cs_verify_issue *is;

	/* Another genesis, same files, signed by the same coordinator. */
	g2 = craft(k_coord, "mdm-be", NULL, &t, "Another genesis\n");
	ck_assert_int_ne(cs_oid_cmp(&g2, &genesis), 0);
	side_ref("other", &g2);
	tips[0] = admission;
	tips[1] = g2;

	/* Unpinned: one of the two roots is the second one. */
	rep = judge(tips, 2, NULL, 0, NULL);
	ck_assert_msg(cs_verify_report_rejects(rep, &genesis) !=
			      cs_verify_report_rejects(rep, &g2),
		      "issues:\n%s", all_issues(rep));
	is = issue_of(rep, cs_verify_report_rejects(rep, &g2) ? &g2 : &genesis);
	ck_assert(!is->inherited);
	ck_assert_msg(strstr(is->reason, "a second root commit") != NULL, "%s",
		      is->reason);
	cs_verify_report_free(rep);

	rep = judge(tips, 2, NULL, 0, &genesis);
	assert_rejected(rep, &g2, "not this node's genesis");
	ck_assert(!cs_verify_report_rejects(rep, &genesis));
	ck_assert(!cs_verify_report_rejects(rep, &admission));
	cs_verify_report_free(rep);

	/* The pinned genesis is another one: everything here is foreign. */
	memset(other.id, 0x5a, sizeof(other.id));
	rep = judge(&admission, 1, NULL, 0, &other);
	assert_rejected(rep, &genesis, "a root commit that is not this node's"
				       " genesis");
	is = issue_of(rep, &admission);
	ck_assert_ptr_nonnull(is);
	ck_assert(is->inherited);
	ck_assert_int_eq(cs_oid_cmp(&is->cause, &genesis), 0);
	ck_assert_uint_eq(rep->nissues, 2);
	cs_verify_report_free(rep);
}
END_TEST

START_TEST(test_protocol_upgrade)
{
	json_t *p = json_pack("{s:i, s:s}", "protocol", 2, "merge",
			      "cartosync-merge/2");
	json_t *r = service("ms2", SVC_ID);
	cs_oid v, later, later2, blob, t;
	cs_verify_report *rep;

	v = node_commit(coord, &admission, CS_PATH_PROTOCOL, p);
	blob = write_json(r);
	t = tree_with(&v, SVC_PATH, &blob);
	later = craft(k_ms2, "ms2", &v, &t, NULL);
	/* Past the upgrade even a stranger's commit is not judged. */
	t = tree_with(&later, "notes.txt", &blob);
	later2 = craft(k_stranger, "whoever", &later, &t, NULL);
	side_ref("x", &later2);

	rep = judge_tip(&later2);
	ck_assert_msg(rep->nissues == 0, "issues:\n%s", all_issues(rep));
	ck_assert_int_eq(rep->protocol, 2);
	ck_assert_uint_eq(rep->unjudged, 2);
	ck_assert_uint_eq(rep->commits, 3);
	ck_assert(!cs_verify_report_rejects(rep, &later2));
	cs_verify_report_free(rep);

	/* A node of protocol 1 does not write past it. */
	ck_assert_int_eq(cs_verify_edit_preflight(repo, &v, &t, k_ms2),
			 CS_EPERM);
	ck_assert_msg(strstr(cs_error_last(), "protocol version 2") != NULL,
		      "%s", cs_error_last());

	/* Up to the upgrade, everything is judged as usual. */
	rep = judge_tip(&v);
	assert_clean(rep);
	ck_assert_uint_eq(rep->commits, 3);
	cs_verify_report_free(rep);
	json_decref(p);
	json_decref(r);
}
END_TEST

/* ---------------------------------------------------------------------- */

START_TEST(test_preflight)
{
	json_t *r = service("alcs", ALCS_ID);
	cs_oid blob = write_json(r), t;

	/* Not allowed: CS_EPERM. */
	t = tree_with(&admission, ALCS_PATH, &blob);
	ck_assert_int_eq(cs_verify_edit_preflight(repo, &admission, &t, k_ms2),
			 CS_EPERM);
	ck_assert_msg(strstr(cs_error_last(), "ms2 may not write '" ALCS_PATH
					      "'") != NULL,
		      "%s", cs_error_last());
	ck_assert_int_eq(cs_verify_edit_preflight(repo, &admission, &t,
						  k_alcs),
			 0);
	ck_assert_int_eq(cs_verify_edit_preflight(repo, &admission, &t,
						  k_stranger),
			 CS_EPERM);
	ck_assert_msg(strstr(cs_error_last(), "not a member key") != NULL,
		      "%s", cs_error_last());
	json_decref(r);

	/* A bad record: CS_EINVALID, naming the path and the pointer. */
	r = service("ms2", SVC_ID);
	json_object_set_new(r, "x_status", json_string("pending"));
	blob = write_json(r);
	t = tree_with(&admission, SVC_PATH, &blob);
	ck_assert_int_eq(cs_verify_edit_preflight(repo, &admission, &t, k_ms2),
			 CS_EINVALID);
	ck_assert_msg(strstr(cs_error_last(), SVC_PATH ": /x_status") != NULL,
		      "%s", cs_error_last());
	json_decref(r);

	/* The node API refuses it before writing anything. */
	r = service("ms2", SVC_ID);
	json_object_set_new(r, "x_status", json_string("pending"));
	{
		cs_oid out, before, after;
		int in_main;

		pull(ms2, coord);
		ck_assert_int_eq(cs_node_main(&before, ms2), 0);
		ck_assert_int_eq(cs_map_put(&out, &in_main, ms2, &before, r,
					    "bad\n"),
				 CS_EINVALID);
		ck_assert_int_eq(cs_node_main(&after, ms2), 0);
		ck_assert_int_eq(cs_oid_cmp(&before, &after), 0);
	}
	json_decref(r);
}
END_TEST

/* One signature, one commit: bytes after the armor that the verifier
 * would not see must make the commit invalid. */
START_TEST(test_signature_malleability)
{
	json_t *r = service("ms2", SVC_ID);
	cs_oid blob = write_json(r), t = tree_with(&admission, SVC_PATH, &blob);
	cs_oid e = craft(k_ms2, "ms2", &admission, &t, NULL), x;
	char *raw, *mut, *end;
	size_t len, at;
	cs_verify_report *rep;

	ck_assert_int_eq(cs_repo_read_commit_raw(&raw, &len, repo, &e), 0);
	end = strstr(raw, " -----END SSH SIGNATURE-----\n");
	ck_assert_ptr_nonnull(end);
	at = (size_t)(end - raw) + strlen(" -----END SSH SIGNATURE-----");
	mut = malloc(len + 2);
	memcpy(mut, raw, at);
	memcpy(mut + at, "\0x", 2);
	memcpy(mut + at + 2, raw + at, len - at);
	ck_assert_int_eq(cs_repo_write_commit_raw(&x, repo, mut, len + 2), 0);
	ck_assert_int_ne(cs_oid_cmp(&x, &e), 0);
	side_ref("x", &x);
	rep = judge_tip(&x);
	ck_assert_msg(cs_verify_report_rejects(rep, &x),
		      "%.12s (%.12s with \"\\0x\" after the armor) is accepted:"
		      " one signature, two commit ids",
		      hex(&x), hex(&e));
	cs_verify_report_free(rep);
	free(mut);
	free(raw);
	json_decref(r);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Verdicts kept between verifications (cs_verdicts) */

static cs_verify_report *
judge_kept(const cs_oid *tip, const cs_oid *held, size_t nheld,
	   cs_verdicts *kept)
{
	cs_verify_options o;
	cs_verify_report *r = NULL;

	memset(&o, 0, sizeof(o));
	o.genesis = &genesis;
	o.tips = tip;
	o.ntips = 1;
	o.held = held;
	o.nheld = nheld;
	o.verdicts = kept;
	ck_assert_msg(cs_verify(&r, repo, &o) == 0, "%s", cs_error_last());
	ck_assert_ptr_nonnull(r);
	return r;
}

static cs_verdicts *
verdicts_at(const char *name)
{
	cs_verdicts *v = NULL;

	ck_assert_msg(cs_verdicts_open(&v, dir_of(name)) == 0, "%s",
		      cs_error_last());
	return v;
}

/*
 * An edit found valid is not judged again, but a revocation that arrives
 * later still undoes it: the revocation pass runs over every commit,
 * noted or not.  (The graph of test_revocation.)
 */
START_TEST(test_verdicts_revocation_still_applies)
{
	json_t *r = service("ms2", SVC_ID), *m = admitted_members();
	cs_oid blob = write_json(r), p, rv, e, t, mb;
	cs_verdicts *kept = verdicts_at("verdicts");
	cs_verify_report *rep;

	t = tree_with(&admission, SVC_PATH, &blob);
	p = craft(k_ms2, "ms2", &admission, &t, "before the revocation\n");
	revoke(m, k_ms2);
	mb = write_json(m);
	t = tree_with(&p, CS_PATH_MEMBERS, &mb);
	rv = craft(k_coord, "mdm-be", &p, &t, "revoke ms2's key\n");
	json_object_set_new(r, "name", json_string("signed with a stolen key"));
	blob = write_json(r);
	t = tree_with(&p, SVC_PATH, &blob);
	e = craft(k_ms2, "ms2", &p, &t, "late edit\n");
	side_ref("main", &rv);
	side_ref("x", &e);

	/* E judged before R is known: valid, noted with its ancestors. */
	rep = judge_kept(&e, NULL, 0, kept);
	assert_clean(rep);
	ck_assert_uint_eq(rep->commits, 4);
	cs_verify_report_free(rep);
	ck_assert_uint_eq(cs_verdicts_get(kept, &e), CS_VERDICT_VALID);
	ck_assert_uint_eq(cs_verdicts_get(kept, &p), CS_VERDICT_VALID);
	ck_assert_uint_ne(cs_verdicts_get(kept, &genesis), 0);
	ck_assert_uint_eq(cs_verdicts_get(kept, &rv), 0);
	ck_assert_uint_eq(cs_verdicts_count(kept), 4);
	ck_assert_int_eq(cs_verdicts_save(kept), 0);
	cs_verdicts_free(kept);

	/* Read back from the file, R now held: E is undone all the same,
	 * and R is noted as a change of the members. */
	kept = verdicts_at("verdicts");
	ck_assert_uint_eq(cs_verdicts_count(kept), 4);
	rep = judge_kept(&e, &rv, 1, kept);
	assert_rejected(rep, &e, "not in that commit's past");
	ck_assert_uint_eq(rep->nissues, 1);
	cs_verify_report_free(rep);
	ck_assert_uint_eq(cs_verdicts_get(kept, &rv),
			  CS_VERDICT_VALID | CS_VERDICT_CONSORTIUM);
	/* Its verdict stays "valid as of its ancestors": it does not
	 * depend on what else is held. */
	ck_assert_uint_eq(cs_verdicts_get(kept, &e), CS_VERDICT_VALID);
	ck_assert_int_eq(cs_verdicts_save(kept), 0);
	cs_verdicts_free(kept);

	/* Both noted now: the revoked edit is still undone, with R's
	 * consortium change read from the verdicts. */
	kept = verdicts_at("verdicts");
	rep = judge_kept(&rv, &e, 1, kept);
	assert_clean(rep);
	cs_verify_report_free(rep);
	rep = judge_kept(&e, &rv, 1, kept);
	assert_rejected(rep, &e, "which is revoked");
	cs_verify_report_free(rep);
	cs_verdicts_free(kept);
	json_decref(r);
	json_decref(m);
}
END_TEST

/* An edit of ms2's service named `name` on `base`, held by side ref
 * `ref`. */
static cs_oid
ms2_edit_on(const cs_oid *base, const char *name, const char *ref)
{
	json_t *r = service("ms2", SVC_ID);
	cs_oid blob, tree, id;

	json_object_set_new(r, "name", json_string(name));
	blob = write_json(r);
	tree = tree_with(base, SVC_PATH, &blob);
	id = craft(k_ms2, "ms2", base, &tree, NULL);
	side_ref(ref, &id);
	json_decref(r);
	return id;
}

/* Invalid commits, and merges not recomputed, are not noted. */
START_TEST(test_verdicts_only_valid)
{
	two_sides two = sides_on_admission();
	cs_oid t1 = two.t1, tm = two.tm, e1 = two.e1, e2 = two.e2;
	cs_oid good, bad, wrong, on_bad, top;
	cs_verdicts *kept = verdicts_at("verdicts");
	cs_verify_report *rep;

	good = craft_merge(&e1, &e2, &tm, NULL);
	wrong = craft_merge(&e1, &e2, &t1, NULL);
	bad = craft(k_stranger, "ms2", &admission, &t1, NULL);
	on_bad = craft(k_ms2, "ms2", &bad, &t1, NULL);
	side_ref("m", &good);
	side_ref("w", &wrong);
	side_ref("b", &on_bad);

	/* A merge no edit stands on is not recomputed (without
	 * all_merges), so not noted; its parents are. */
	rep = judge_kept(&good, NULL, 0, kept);
	assert_clean(rep);
	cs_verify_report_free(rep);
	ck_assert_uint_eq(cs_verdicts_get(kept, &good), 0);
	ck_assert_uint_eq(cs_verdicts_get(kept, &e1), CS_VERDICT_VALID);
	/* An edit on it: recomputed, noted. */
	top = ms2_edit_on(&good, "on the merge", "m");
	rep = judge_kept(&top, NULL, 0, kept);
	assert_clean(rep);
	cs_verify_report_free(rep);
	ck_assert_uint_eq(cs_verdicts_get(kept, &good), CS_VERDICT_VALID);
	ck_assert_uint_eq(cs_verdicts_get(kept, &top), CS_VERDICT_VALID);
	/* Judged again from the verdicts alone: the same. */
	rep = judge_kept(&top, NULL, 0, kept);
	assert_clean(rep);
	ck_assert_uint_eq(rep->commits, 6);
	ck_assert_uint_eq(rep->merges, 1);
	cs_verify_report_free(rep);

	/* A merge that is not the merge of its parents, an edit on it. */
	top = ms2_edit_on(&wrong, "on a bad merge", "w");
	rep = judge_kept(&top, NULL, 0, kept);
	assert_rejected(rep, &wrong, "not the merge of its parents");
	cs_verify_report_free(rep);
	ck_assert_uint_eq(cs_verdicts_get(kept, &wrong), 0);
	ck_assert_uint_eq(cs_verdicts_get(kept, &top), 0);

	rep = judge_kept(&on_bad, NULL, 0, kept);
	assert_rejected(rep, &bad, "not a member key");
	ck_assert(cs_verify_report_rejects(rep, &on_bad));
	cs_verify_report_free(rep);
	ck_assert_uint_eq(cs_verdicts_get(kept, &bad), 0);
	ck_assert_uint_eq(cs_verdicts_get(kept, &on_bad), 0);
	cs_verdicts_free(kept);
}
END_TEST

static void
write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/*
 * Consortium states are reused between loads (lib/consortium.c): a load
 * gives the state of its own tree's files, whatever was loaded and put back
 * before, and two holders of the same state never share one object.
 */
START_TEST(test_consortium_states_reused)
{
	cs_oid g = tree_of(&genesis), a = tree_of(&admission);
	cs_oid extra = write_raw("{\"type\": \"string\"}");
	cs_oid s = tree_with(&genesis, "consortium/schema/extra.schema.json",
			     &extra);
	cs_consortium *c1 = NULL, *c2 = NULL, *c3 = NULL, *c4 = NULL;
	size_t before, after;

	ck_assert_int_eq(cs_consortium_load(&c1, repo, &g), 0);
	ck_assert_int_eq(cs_consortium_load(&c2, repo, &a), 0);
	before = cs_consortium_key_count(c1);
	after = cs_consortium_key_count(c2);
	ck_assert_uint_gt(after, before); /* the admission adds keys */
	ck_assert_int_eq(cs_consortium_load(&c3, repo, &g), 0);
	ck_assert_ptr_ne(c3, c1);
	ck_assert_uint_eq(cs_consortium_key_count(c3), before);
	cs_consortium_free(c1);
	cs_consortium_free(c2);
	cs_consortium_free(c3);

	/* Asked for again: one of the states put back, not a new load. */
	ck_assert_int_eq(cs_consortium_load(&c4, repo, &g), 0);
	ck_assert_msg(c4 == c1 || c4 == c3, "a state of the same files was"
					    " loaded again");
	cs_consortium_free(c4);
	c4 = NULL;

	/* Put back, then asked for again: each tree its own members. */
	for (int round = 0; round < 3; round++) {
		ck_assert_int_eq(cs_consortium_load(&c1, repo, &a), 0);
		ck_assert_int_eq(cs_consortium_load(&c2, repo, &g), 0);
		ck_assert_uint_eq(cs_consortium_key_count(c1), after);
		ck_assert_uint_eq(cs_consortium_key_count(c2), before);
		cs_consortium_free(c2);
		cs_consortium_free(c1);
	}

	/* Another schema file is another state. */
	ck_assert_int_eq(cs_consortium_load(&c4, repo, &s), 0);
	ck_assert_ptr_nonnull(cs_schema_set_get(cs_consortium_schemas(c4),
						"extra.schema.json"));
	ck_assert_int_eq(cs_consortium_load(&c1, repo, &g), 0);
	ck_assert_ptr_null(cs_schema_set_get(cs_consortium_schemas(c1),
					     "extra.schema.json"));
	cs_consortium_free(c1);
	cs_consortium_free(c4);
}
END_TEST

/*
 * The file: a noted verdict is taken as it is (the file is the node's, as
 * trusted as its store); a torn line is skipped, a file of other rules or
 * of another form is ignored, a missing one is empty.
 */
START_TEST(test_verdicts_file)
{
	json_t *r = service("ms2", SVC_ID);
	cs_oid blob = write_json(r), t = tree_with(&admission, SVC_PATH, &blob);
	cs_oid bad = craft(k_stranger, "ms2", &admission, &t, NULL);
	char text[512];
	cs_verdicts *kept;
	cs_verify_report *rep;

	side_ref("b", &bad);
	kept = verdicts_at("none");
	ck_assert_uint_eq(cs_verdicts_count(kept), 0);
	cs_verdicts_free(kept);

	/* Noted by hand: not judged again. */
	snprintf(text, sizeof(text),
		 "cartosync verdicts, rules 1, protocol %d\n%s 1\n%s 1\n%s 1\n"
		 "%.30s",
		 CS_PROTOCOL_VERSION, hex(&genesis), hex(&admission), hex(&bad), hex(&t));
	write_text(dir_of("verdicts"), text);
	kept = verdicts_at("verdicts");
	ck_assert_uint_eq(cs_verdicts_count(kept), 3);
	rep = judge_kept(&bad, NULL, 0, kept);
	assert_clean(rep);
	cs_verify_report_free(rep);
	cs_verdicts_free(kept);
	rep = judge_tip(&bad);
	assert_rejected(rep, &bad, "not a member key");
	cs_verify_report_free(rep);

	/* Torn lines and flags out of range are skipped. */
	snprintf(text, sizeof(text),
		 "cartosync verdicts, rules 1, protocol %d\n%s 1\n%s 9\n%s\n"
		 "%.20s 1\n",
		 CS_PROTOCOL_VERSION, hex(&genesis), hex(&admission), hex(&bad), hex(&t));
	write_text(dir_of("verdicts"), text);
	kept = verdicts_at("verdicts");
	ck_assert_uint_eq(cs_verdicts_count(kept), 1);
	ck_assert_uint_ne(cs_verdicts_get(kept, &genesis), 0);
	cs_verdicts_free(kept);

	/* Other rules: nothing is taken. */
	snprintf(text, sizeof(text),
		 "cartosync verdicts, rules 0, protocol %d\n%s 1\n",
		 CS_PROTOCOL_VERSION, hex(&genesis));
	write_text(dir_of("verdicts"), text);
	kept = verdicts_at("verdicts");
	ck_assert_uint_eq(cs_verdicts_count(kept), 0);
	cs_verdicts_free(kept);
	write_text(dir_of("verdicts"), "");
	kept = verdicts_at("verdicts");
	ck_assert_uint_eq(cs_verdicts_count(kept), 0);
	cs_verdicts_free(kept);
	json_decref(r);
}
END_TEST

/* The id git gives a file of these bytes. */
static cs_oid
oid_of_text(const char *text, size_t len)
{
	git_oid gid;
	cs_oid id;

	ck_assert_int_eq(git_odb_hash(&gid, text, len, GIT_OBJECT_BLOB), 0);
	memcpy(id.id, gid.id, CS_OID_RAWSZ);
	return id;
}

/* The store's only pack after `git repack -ad` (malloc'd path). */
static char *
repacked(void)
{
	char cmd[512], line[512];
	FILE *f;

	snprintf(cmd, sizeof(cmd),
		 "git -C '%s' repack -adq && ls '%s'/objects/pack/*.pack",
		 cs_repo_path(repo), cs_repo_path(repo));
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
	ck_assert_int_eq(pclose(f), 0);
	line[strcspn(line, "\n")] = '\0';
	return strdup(line);
}

/*
 * Records prechecked in a fetched pack (precheck.h) are judged as without
 * the precheck: it notes only valid files, each under the path its content
 * gives and for the schema folder it used, and verification still judges
 * the path, the authority and every file it did not note.
 */
#define OTHER_ID "5e0c1d2a-7b3f-4e6a-9c8d-1f2e3a4b5c6d"

START_TEST(test_prechecked_files)
{
	json_t *good = service("ms2", SVC_ID), *moved = service("ms2", ALCS_ID),
	       *bad = service("ms2", SVC_ID);
	cs_oid b_good, b_moved, b_bad, t, tips[4], schema_dir, zero;
	cs_consortium *state = NULL;
	cs_precheck *pre = NULL;
	char *pack;

	json_object_set_new(bad, "x_status", json_string("pending"));
	b_good = write_json(good);
	b_moved = write_json(moved);
	b_bad = write_json(bad);
	t = tree_with(&admission, SVC_PATH, &b_good);
	tips[0] = craft(k_ms2, "ms2", &admission, &t, NULL);
	side_ref("good", &tips[0]);
	t = tree_with(&admission, SVC_PATH, &b_moved);
	tips[1] = craft(k_ms2, "ms2", &admission, &t, NULL);
	side_ref("moved", &tips[1]);
	t = tree_with(&admission, SVC_PATH, &b_bad);
	tips[2] = craft(k_ms2, "ms2", &admission, &t, NULL);
	side_ref("bad", &tips[2]);
	/* alcs writes in ms2's folder: valid content, no authority. */
	t = tree_with(&admission, SVC_PATH, &b_good);
	tips[3] = craft(k_alcs, "alcs", &admission, &t, NULL);
	side_ref("intruder", &tips[3]);

	pack = repacked();
	t = tree_of(&admission);
	ck_assert_int_eq(cs_consortium_load(&state, repo, &t), 0);
	ck_assert_int_eq(cs_consortium_schema_dir(state, &schema_dir), 0);
	cs_consortium_free(state);
	ck_assert_int_eq(cs_precheck_start(&pre, pack, cs_repo_path(repo), &t),
			 0);
	cs_precheck_wait(pre);
	ck_assert_uint_ge(cs_precheck_count(pre), 2);

	ck_assert(cs_precheck_passed(pre, &b_good, SVC_PATH, &schema_dir));
	ck_assert(cs_precheck_passed(pre, &b_moved,
				     "records/ms2/service/a1/" ALCS_ID ".json",
				     &schema_dir));
	ck_assert(!cs_precheck_passed(pre, &b_moved, SVC_PATH, &schema_dir));
	ck_assert(!cs_precheck_passed(pre, &b_bad, SVC_PATH, &schema_dir));
	memset(&zero, 0, sizeof(zero));
	ck_assert(!cs_precheck_passed(pre, &b_good, SVC_PATH, &zero));

	for (size_t i = 0; i < 4; i++) {
		cs_verify_options o;
		cs_verify_report *with = NULL, *without = judge_tip(&tips[i]);

		memset(&o, 0, sizeof(o));
		o.genesis = &genesis;
		o.tips = &tips[i];
		o.ntips = 1;
		o.all_merges = 1;
		o.prechecked = pre;
		ck_assert_int_eq(cs_verify(&with, repo, &o), 0);
		ck_assert_uint_eq(with->nissues, without->nissues);
		for (size_t k = 0; k < with->nissues; k++) {
			ck_assert(cs_oid_cmp(&with->issues[k].commit,
					     &without->issues[k].commit) == 0);
			ck_assert_str_eq(with->issues[k].reason,
					 without->issues[k].reason);
		}
		cs_verify_report_free(with);
		cs_verify_report_free(without);
	}
	expect_tip_accepted(&tips[0]);
	expect_tip_rejected(&tips[1], "stored at the wrong path");
	expect_tip_rejected(&tips[2], SVC_PATH ": /x_status: ");
	expect_tip_rejected(&tips[3], "alcs may not write");

	cs_precheck_free(pre);
	free(pack);

	/*
	 * A noted file is not read again: one that is only in the prechecked
	 * pack, not in the store, passes with the note and fails without.
	 */
	{
		char cmd[1024], dir[160], line[256], *text = NULL;
		size_t len;
		json_t *other = service("ms2", OTHER_ID);
		cs_oid b_other, x;
		cs_verify_options o;
		cs_verify_report *r = NULL;
		FILE *f;

		ck_assert_int_eq(cs_json_canonical(&text, &len, other), 0);
		snprintf(dir, sizeof(dir), "%s/elsewhere.git", tmpdir);
		snprintf(cmd, sizeof(cmd),
			 "git init -q --bare '%s' && cd '%s' && "
			 "git hash-object -w --stdin | "
			 "git pack-objects -q objects/pack/pack >/dev/null",
			 dir, dir);
		f = popen(cmd, "w");
		ck_assert_ptr_nonnull(f);
		fwrite(text, 1, len, f);
		ck_assert_int_eq(pclose(f), 0);
		snprintf(cmd, sizeof(cmd), "ls '%s'/objects/pack/*.pack", dir);
		f = popen(cmd, "r");
		ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
		pclose(f);
		line[strcspn(line, "\n")] = '\0';
		b_other = oid_of_text(text, len);
		t = tree_with(&admission,
			      "records/ms2/service/5e/" OTHER_ID ".json",
			      &b_other);
		x = craft(k_ms2, "ms2", &admission, &t, NULL);
		side_ref("elsewhere", &x);
		expect_tip_rejected(&x, "blob");

		t = tree_of(&admission);
		ck_assert_int_eq(cs_precheck_start(&pre, line,
						   cs_repo_path(repo), &t),
				 0);
		cs_precheck_wait(pre);
		ck_assert_uint_eq(cs_precheck_count(pre), 1);
		memset(&o, 0, sizeof(o));
		o.genesis = &genesis;
		o.tips = &x;
		o.ntips = 1;
		o.prechecked = pre;
		ck_assert_int_eq(cs_verify(&r, repo, &o), 0);
		assert_clean(r);
		cs_verify_report_free(r);
		cs_precheck_free(pre);
		free(text);
		json_decref(other);
	}
	json_decref(good);
	json_decref(moved);
	json_decref(bad);
}
END_TEST

static Suite *
verify_suite(void)
{
	Suite *s = suite_create("verify");
	TCase *tc = tcase_create("verify");

	tcase_add_unchecked_fixture(tc, make_basedir, remove_basedir);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, test_clean_history);
	tcase_add_test(tc, test_non_member_signer);
	tcase_add_test(tc, test_root_key_cannot_edit_records);
	tcase_add_test(tc, test_other_org_folder);
	tcase_add_test(tc, test_invalid_record);
	tcase_add_test(tc, test_non_canonical_file);
	tcase_add_test(tc, test_file_outside_map);
	tcase_add_test(tc, test_file_modes);
	tcase_add_test(tc, test_author_not_signer_org);
	tcase_add_test(tc, test_consortium_files_rules);
	tcase_add_test(tc, test_genesis_signed_by_member);
	tcase_add_test(tc, test_revocation);
	tcase_add_test(tc, test_policy_narrowed);
	tcase_add_test(tc, test_root_approval);
	tcase_add_test(tc, test_root_commit_by_root_key);
	tcase_add_test(tc, test_merges);
	tcase_add_test(tc, test_inherited);
	tcase_add_test(tc, test_second_root_and_pinned_genesis);
	tcase_add_test(tc, test_protocol_upgrade);
	tcase_add_test(tc, test_preflight);
	tcase_add_test(tc, test_signature_malleability);
	tcase_add_test(tc, test_verdicts_revocation_still_applies);
	tcase_add_test(tc, test_verdicts_only_valid);
	tcase_add_test(tc, test_verdicts_file);
	tcase_add_test(tc, test_consortium_states_reused);
	tcase_add_test(tc, test_prechecked_files);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(verify_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
