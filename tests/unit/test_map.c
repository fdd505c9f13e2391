/*
 * cartosync — the map: find a record by id, list with each filter, write
 * and remove records on top of a commit, and which records need a
 * confirmation before publishing under the default policy.
 *
 * The map is a real one: a consortium started as `cartosync init
 * --genesis` does, then every sample record of tests/data/sample written
 * by the coordinator in one commit (each checked by the preflight), plus a
 * few records made here for the edge cases (Arabic text, an upper-case
 * accented word).  Filters are checked against an independent walk of the
 * same records.
 */
#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cartosync/commit.h"
#include "cartosync/consortium.h"
#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/key.h"
#include "cartosync/map.h"
#include "cartosync/node.h"
#include "cartosync/record.h"
#include "cartosync/repo.h"
#include "cartosync/sshsig.h"

#define MAX_RECORDS 256
#define ARABIC_ID "65fb40c6-c604-4504-8152-d064199ca97d"
#define UPPER_ID "0e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b"
#define SVC_ID "36000f21-c9d6-4e4f-a8e6-dcd748fab55b"

/* basedir: one per run, removed at the end even when tests fail (a failed
 * test skips its teardown); tmpdir: one per test inside it. */
static char basedir[64];
static char tmpdir[96];

static void
make_basedir(void)
{
	snprintf(basedir, sizeof(basedir), "/tmp/cs-test-map-XXXXXX");
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

static cs_node *node;
static cs_repo *repo;
static cs_oid genesis, loaded; /* main after the records are written */
static json_t *records[MAX_RECORDS];
static char *paths[MAX_RECORDS];
static size_t nrecords;

/* ---------------------------------------------------------------------- */
/* Helpers */

static json_t *
js(const char *text)
{
	json_error_t err;
	json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &err);

	ck_assert_msg(v != NULL, "test JSON: %s", err.text);
	return v;
}

static const char *
env(const char *name)
{
	const char *v = getenv(name);

	ck_assert_msg(v != NULL, "%s is not set", name);
	return v;
}

/* The genesis as cli/cmd_init.c writes it: mdm-be coordinates. */
static void
make_genesis(void)
{
	const char *schema_dir = env("CS_SCHEMA_DIR");
	char path[PATH_MAX + 300], *tls = NULL, *line, *root;
	const cs_key *key;
	cs_key *rk;
	cs_tree_update ups[64];
	char *names_out[64];
	cs_oid ids[64];
	size_t n = 0;
	struct dirent **names;
	json_t *members, *policy = NULL, *protocol, *doc;
	int count, in_main;

	ck_assert_int_eq(cs_node_key(&key, node), 0);
	ck_assert_int_eq(cs_node_tls_hash(&tls, node), 0);
	ck_assert_int_eq(cs_key_generate(&rk), 0);
	line = cs_key_public_string(key);
	root = cs_key_public_string(rk);
	members = json_pack("{s:{s:{s:s, s:b}}, s:[{s:s, s:s, s:s, s:s, s:s}],"
			    " s:{s:i, s:[s]}}",
			    "organizations", "mdm-be", "name", "MdM Belgique",
			    "removed", 0, "keys", "key", line, "org", "mdm-be",
			    "holder", "coordination node", "role",
			    "coordinator", "tls", tls, "root", "threshold", 1,
			    "keys", root);
	ck_assert_ptr_nonnull(members);
	protocol = json_pack("{s:i, s:s}", "protocol", CS_PROTOCOL_VERSION,
			     "merge", CS_MERGE_ALGORITHM);
	snprintf(path, sizeof(path), "%s/default-policy.json", schema_dir);
	ck_assert_int_eq(cs_json_load_file(&policy, path), 0);
	names_out[n] = strdup(CS_PATH_MEMBERS);
	ck_assert_int_eq(cs_node_write_json(&ids[n++], node, members), 0);
	names_out[n] = strdup(CS_PATH_POLICY);
	ck_assert_int_eq(cs_node_write_json(&ids[n++], node, policy), 0);
	names_out[n] = strdup(CS_PATH_PROTOCOL);
	ck_assert_int_eq(cs_node_write_json(&ids[n++], node, protocol), 0);
	count = scandir(schema_dir, &names, NULL, alphasort);
	ck_assert_int_gt(count, 0);
	for (int i = 0; i < count; i++) {
		const char *name = names[i]->d_name;
		size_t len = strlen(name);

		if (len > 12 && strcmp(name + len - 12, ".schema.json") == 0) {
			snprintf(path, sizeof(path), "%s/%s", schema_dir, name);
			ck_assert_int_eq(cs_json_load_file(&doc, path), 0);
			ck_assert_int_gt(asprintf(&names_out[n],
						  CS_PATH_SCHEMA_DIR "/%s",
						  name),
					 0);
			ck_assert_int_eq(cs_node_write_json(&ids[n++], node,
							    doc),
					 0);
			json_decref(doc);
		}
		free(names[i]);
	}
	free(names);
	for (size_t i = 0; i < n; i++)
		ups[i] = (cs_tree_update){names_out[i], &ids[i]};
	ck_assert_msg(cs_node_commit(&genesis, &in_main, node, NULL, ups, n,
				     "Genesis\n") == 0,
		      "%s", cs_error_last());
	ck_assert_int_eq(cs_node_set_genesis(node, &genesis), 0);
	for (size_t i = 0; i < n; i++)
		free(names_out[i]);
	free(line);
	free(root);
	free(tls);
	cs_key_free(rk);
	json_decref(members);
	json_decref(policy);
	json_decref(protocol);
}

static void
add_record(json_t *r)
{
	ck_assert_uint_lt(nrecords, MAX_RECORDS);
	ck_assert_msg(cs_record_path(&paths[nrecords], r) == 0, "%s",
		      cs_error_last());
	records[nrecords++] = r;
}

/* Every sample record, and ours. */
static void
load_records(void)
{
	char dir[PATH_MAX], path[PATH_MAX + 600];
	struct dirent **orgs, **files;
	int norgs, nfiles;
	json_t *r;

	snprintf(dir, sizeof(dir), "%s/sample", env("CS_TEST_DATA"));
	norgs = scandir(dir, &orgs, NULL, alphasort);
	ck_assert_int_gt(norgs, 0);
	for (int o = 0; o < norgs; o++) {
		const char *org = orgs[o]->d_name;

		if (org[0] == '.' || strcmp(org, "consortium") == 0) {
			free(orgs[o]);
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, org);
		nfiles = scandir(path, &files, NULL, alphasort);
		for (int f = 0; f < nfiles; f++) {
			const char *name = files[f]->d_name;
			size_t len = strlen(name);

			if (len > 5 && strcmp(name + len - 5, ".json") == 0) {
				snprintf(path, sizeof(path), "%s/%s/%s", dir,
					 org, name);
				ck_assert_msg(cs_json_load_file(&r, path) == 0,
					      "%s", cs_error_last());
				/* staff care is coordination-only */
				if (strcmp(cs_record_type(r),
					   "staffcare_session") == 0)
					json_decref(r);
				else
					add_record(r);
			}
			free(files[f]);
		}
		free(files);
		free(orgs[o]);
	}
	free(orgs);

	/* Arabic text, region MA-02, province 02.381. */
	snprintf(path, sizeof(path), "%s/records/valid/location-arabic.json",
		 env("CS_TEST_DATA"));
	ck_assert_int_eq(cs_json_load_file(&r, path), 0);
	ck_assert_str_eq(cs_record_id(r), ARABIC_ID);
	add_record(r);

	/* An upper-case accented word. */
	r = js("{\"id\": \"" UPPER_ID "\","
	       " \"name\": \"ÉCOUTE ET ORIENTATION\","
	       " \"organization_id\": \"d107f1c6-2c0c-47dc-882e-1fee7d544cc4\","
	       " \"status\": \"active\","
	       " \"x_categories\": [\"mhpss\"],"
	       " \"x_owner\": \"mdm-be\","
	       " \"x_record_type\": \"service\","
	       " \"x_status\": \"proposed\","
	       " \"x_verified\": {\"by\": \"mdm-be\", \"date\":"
	       " \"2025-03-12\", \"method\": \"phone\"}}");
	add_record(r);
}

static void
setup(void)
{
	cs_tree_update *ups;
	cs_oid *ids, main_id;
	int in_main;

	snprintf(tmpdir, sizeof(tmpdir), "%s/t-XXXXXX", basedir);
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	umask(022);
	{
		char dir[128];

		snprintf(dir, sizeof(dir), "%s/coord", tmpdir);
		ck_assert_msg(cs_node_create(&node, dir, "mdm-be") == 0, "%s",
			      cs_error_last());
	}
	repo = cs_node_repo(node);
	make_genesis();
	nrecords = 0;
	load_records();
	ck_assert_uint_gt(nrecords, 50);
	ups = calloc(nrecords, sizeof(*ups));
	ids = calloc(nrecords, sizeof(*ids));
	for (size_t i = 0; i < nrecords; i++) {
		ck_assert_int_eq(cs_node_write_json(&ids[i], node, records[i]),
				 0);
		ups[i] = (cs_tree_update){paths[i], &ids[i]};
	}
	ck_assert_msg(cs_node_commit(&loaded, &in_main, node, &genesis, ups,
				     nrecords, "records: the sample map\n") ==
			      0,
		      "%s", cs_error_last());
	ck_assert(in_main);
	ck_assert_int_eq(cs_node_main(&main_id, node), 0);
	ck_assert_int_eq(cs_oid_cmp(&main_id, &loaded), 0);
	free(ups);
	free(ids);
}

static void
teardown(void)
{
	char cmd[128];

	for (size_t i = 0; i < nrecords; i++) {
		json_decref(records[i]);
		free(paths[i]);
	}
	nrecords = 0;
	cs_node_free(node);
	node = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static size_t
index_of(const char *id)
{
	for (size_t i = 0; i < nrecords; i++)
		if (strcmp(cs_record_id(records[i]), id) == 0)
			return i;
	ck_abort_msg("no record %s in the test set", id);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* An independent reference for the filters */

static int
ref_key_value(const json_t *v, const char *key, const char *value)
{
	const char *k;
	json_t *child;
	size_t i;

	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, child) {
			if (strcmp(k, key) == 0 && json_is_string(child) &&
			    strcmp(json_string_value(child), value) == 0)
				return 1;
			if (ref_key_value(child, key, value))
				return 1;
		}
	} else if (json_is_array(v)) {
		json_array_foreach((json_t *)v, i, child) {
			if (ref_key_value(child, key, value))
				return 1;
		}
	}
	return 0;
}

static int
ref_category(const json_t *v, const char *code, int inside)
{
	const char *k;
	json_t *child;
	size_t i;

	if (json_is_string(v))
		return inside && strcmp(json_string_value(v), code) == 0;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, child) {
			if (ref_category(child, code,
					 inside || strstr(k, "categor")))
				return 1;
		}
	} else if (json_is_array(v)) {
		json_array_foreach((json_t *)v, i, child) {
			if (ref_category(child, code, inside))
				return 1;
		}
	}
	return 0;
}

static int
ref_text(const json_t *v, const char *needle)
{
	const char *k;
	json_t *child;
	size_t i;

	if (json_is_string(v))
		return strstr(json_string_value(v), needle) != NULL;
	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, k, child) {
			if (ref_text(child, needle))
				return 1;
		}
	} else if (json_is_array(v)) {
		json_array_foreach((json_t *)v, i, child) {
			if (ref_text(child, needle))
				return 1;
		}
	}
	return 0;
}

static int
cmp_path(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The list for `f` must be exactly the records in `want` (bitmap by
 * index), in path order. */
static void
assert_list(const cs_map_filter *f, const int *want, const char *what)
{
	json_t *list = NULL, *r;
	char *expect[MAX_RECORDS];
	size_t nexpect = 0, i;

	ck_assert_msg(cs_map_list(&list, repo, &loaded, f) == 0, "%s: %s",
		      what, cs_error_last());
	ck_assert(json_is_array(list));
	for (i = 0; i < nrecords; i++)
		if (want[i])
			expect[nexpect++] = paths[i];
	qsort(expect, nexpect, sizeof(*expect), cmp_path);
	ck_assert_msg(json_array_size(list) == nexpect,
		      "%s: %zu records listed, %zu expected", what,
		      json_array_size(list), nexpect);
	json_array_foreach(list, i, r) {
		char *p;

		ck_assert_int_eq(cs_record_path(&p, r), 0);
		ck_assert_msg(strcmp(p, expect[i]) == 0,
			      "%s: #%zu is %s, expected %s", what, i, p,
			      expect[i]);
		ck_assert(cs_map_matches(r, f));
		ck_assert(json_equal(r, records[index_of(cs_record_id(r))]));
		free(p);
	}
	json_decref(list);
}

/* ---------------------------------------------------------------------- */

START_TEST(test_find)
{
	static const char *const some[] = {ARABIC_ID, UPPER_ID};
	json_t *r = (json_t *)1;
	char *path = (char *)1;
	char id[37];

	/* Every record, by id alone, whatever its owner and type. */
	for (size_t i = 0; i < nrecords; i++) {
		const char *rid = cs_record_id(records[i]);

		ck_assert_msg(cs_map_find(&r, &path, repo, &loaded, rid) == 0,
			      "%s: %s", rid, cs_error_last());
		ck_assert_str_eq(path, paths[i]);
		ck_assert(json_equal(r, records[i]));
		json_decref(r);
		free(path);
	}
	for (size_t i = 0; i < 2; i++) {
		ck_assert_int_eq(cs_map_find(&r, NULL, repo, &loaded, some[i]),
				 0);
		json_decref(r);
	}

	/* Not there: in this commit, or at all. */
	ck_assert_int_eq(cs_map_find(&r, &path, repo, &genesis, UPPER_ID),
			 CS_ENOTFOUND);
	ck_assert_ptr_null(r);
	ck_assert_ptr_null(path);
	ck_assert_int_eq(cs_uuid_generate(id), 0);
	ck_assert_int_eq(cs_map_find(&r, &path, repo, &loaded, id),
			 CS_ENOTFOUND);
	ck_assert_msg(strstr(cs_error_last(), "no record \"") != NULL &&
			      strstr(cs_error_last(), id) != NULL,
		      "%s", cs_error_last());

	/* Not an id: never a path. */
	ck_assert_int_eq(cs_map_find(&r, &path, repo, &loaded,
				     "../../consortium/members"),
			 CS_EINVALID);
	ck_assert(strstr(cs_error_last(), "is not a record id") != NULL);
	ck_assert_int_eq(cs_map_find(&r, &path, repo, &loaded,
				     "0E1F2A3B-4C5D-4E6F-8A7B-9C0D1E2F3A4B"),
			 CS_EINVALID);
	ck_assert_int_eq(cs_map_find(&r, &path, repo, &loaded, ""),
			 CS_EINVALID);
	ck_assert_ptr_null(r);
}
END_TEST

START_TEST(test_list_filters)
{
	int want[MAX_RECORDS];
	cs_map_filter f;
	size_t n;

	/* Everything. */
	for (size_t i = 0; i < nrecords; i++)
		want[i] = 1;
	assert_list(NULL, want, "no filter");
	memset(&f, 0, sizeof(f));
	assert_list(&f, want, "empty filter");

#define CASE(what, field, value, test)                                        \
	do {                                                                  \
		memset(&f, 0, sizeof(f));                                     \
		f.field = value;                                              \
		n = 0;                                                        \
		for (size_t i = 0; i < nrecords; i++)                         \
			n += (want[i] = (test));                              \
		ck_assert_msg(n > 0, "%s matches nothing", what);             \
		assert_list(&f, want, what);                                  \
	} while (0)

	CASE("type service", type, "service",
	     strcmp(cs_record_type(records[i]), "service") == 0);
	CASE("type location", type, "location",
	     strcmp(cs_record_type(records[i]), "location") == 0);
	CASE("owner ms2", owner, "ms2",
	     strcmp(cs_record_owner(records[i]), "ms2") == 0);
	CASE("owner shared", owner, "shared",
	     strcmp(cs_record_owner(records[i]), "shared") == 0);
	CASE("status proposed", status, "proposed",
	     strcmp(json_string_value(json_object_get(records[i],
						      "x_status")),
		    "proposed") == 0);
	CASE("region MA-02", region, "MA-02",
	     ref_key_value(records[i], "adm1", "MA-02"));
	CASE("region MA-04", region, "MA-04",
	     ref_key_value(records[i], "adm1", "MA-04"));
	CASE("province 02.381", province, "02.381",
	     ref_key_value(records[i], "adm2", "02.381"));
	CASE("category mhpss", category, "mhpss",
	     ref_category(records[i], "mhpss", 0));
	CASE("category health_hiv_sti", category, "health_hiv_sti",
	     ref_category(records[i], "health_hiv_sti", 0));
	CASE("text Arabic", text, "الناظور",
	     ref_text(records[i], "الناظور"));

	/* Owner and type together (one folder read). */
	memset(&f, 0, sizeof(f));
	f.owner = "alcs";
	f.type = "location";
	n = 0;
	for (size_t i = 0; i < nrecords; i++)
		n += (want[i] = strcmp(cs_record_owner(records[i]), "alcs") ==
					0 &&
				strcmp(cs_record_type(records[i]),
				       "location") == 0);
	ck_assert_uint_gt(n, 1);
	assert_list(&f, want, "alcs locations");

	/* All of region, type and status. */
	memset(&f, 0, sizeof(f));
	f.region = "MA-02";
	f.type = "service";
	f.status = "published";
	for (size_t i = 0; i < nrecords; i++)
		want[i] = ref_key_value(records[i], "adm1", "MA-02") &&
			  strcmp(cs_record_type(records[i]), "service") == 0 &&
			  strcmp(json_string_value(json_object_get(
					 records[i], "x_status")),
				 "published") == 0;
	assert_list(&f, want, "published services in MA-02");

	/* Matching nothing, or nonsense. */
	memset(want, 0, sizeof(want));
	memset(&f, 0, sizeof(f));
	f.owner = "nobody";
	assert_list(&f, want, "owner nobody");
	f.owner = "../consortium";
	assert_list(&f, want, "owner ../consortium");
	f.owner = "ms2";
	f.type = "../../consortium";
	assert_list(&f, want, "type ../../consortium");
	memset(&f, 0, sizeof(f));
	f.region = "MA-99";
	assert_list(&f, want, "region MA-99");
	memset(&f, 0, sizeof(f));
	f.category = "MA-02"; /* a code, but not in a category field */
	assert_list(&f, want, "category MA-02");
#undef CASE
}
END_TEST

/* The text filter ignores case, in ASCII and in accented letters. */
START_TEST(test_list_text_case)
{
	int want[MAX_RECORDS];
	cs_map_filter f;
	size_t n = 0;

	memset(&f, 0, sizeof(f));
	for (size_t i = 0; i < nrecords; i++)
		n += (want[i] = ref_text(records[i], "onsultation") ||
				ref_text(records[i], "ONSULTATION"));
	ck_assert_uint_gt(n, 1);
	f.text = "CONSULTATION";
	assert_list(&f, want, "text CONSULTATION");
	f.text = "consultation";
	assert_list(&f, want, "text consultation");

	/* "écoute" is found in "ÉCOUTE ET ORIENTATION" and vice versa. */
	n = 0;
	for (size_t i = 0; i < nrecords; i++)
		n += (want[i] = ref_text(records[i], "écoute") ||
				ref_text(records[i], "Écoute") ||
				ref_text(records[i], "ÉCOUTE"));
	ck_assert_uint_gt(n, 2);
	ck_assert(want[index_of(UPPER_ID)]);
	f.text = "écoute";
	assert_list(&f, want, "text écoute");
	f.text = "ÉCOUTE";
	assert_list(&f, want, "text ÉCOUTE");
}
END_TEST

START_TEST(test_matches)
{
	json_t *r = records[index_of(ARABIC_ID)];
	cs_map_filter f;

	memset(&f, 0, sizeof(f));
	ck_assert(cs_map_matches(r, NULL));
	ck_assert(cs_map_matches(r, &f));
	f.province = "02.381";
	ck_assert(cs_map_matches(r, &f));
	f.province = "02.38";
	ck_assert(!cs_map_matches(r, &f));
	memset(&f, 0, sizeof(f));
	f.region = "MA-02";
	f.owner = "ms2";
	f.type = "location";
	f.text = "مركز الاستماع";
	ck_assert(cs_map_matches(r, &f));
	f.owner = "alcs";
	ck_assert(!cs_map_matches(r, &f));
	memset(&f, 0, sizeof(f));
	f.text = "Listening centre"; /* in x_i18n.en */
	ck_assert(cs_map_matches(r, &f));
	f.text = "adm1"; /* keys are not text */
	ck_assert(!cs_map_matches(r, &f));
}
END_TEST

/* Records that do not parse are skipped by the list (verification
 * reports them); the others are still listed. */
START_TEST(test_list_skips_broken)
{
	const cs_key *key;
	cs_oid blob, tree, base_tree, broken;
	cs_commit c;
	char *payload, *armor, *raw, *fp;
	size_t plen, len;
	char bad_path[128];
	char id[37];
	cs_tree_update u;
	json_t *list;

	ck_assert_int_eq(cs_uuid_generate(id), 0);
	snprintf(bad_path, sizeof(bad_path), "records/ms2/service/%.2s/%s.json",
		 id, id);
	ck_assert_int_eq(cs_repo_write_blob(&blob, repo, "{\"id\":", 6), 0);
	ck_assert_int_eq(cs_repo_commit_tree(&base_tree, repo, &loaded), 0);
	u = (cs_tree_update){bad_path, &blob};
	ck_assert_int_eq(cs_repo_tree_update(&tree, repo, &base_tree, &u, 1), 0);
	/* The node would refuse it: write the commit by hand. */
	ck_assert_int_eq(cs_node_key(&key, node), 0);
	fp = cs_key_fingerprint(key);
	memset(&c, 0, sizeof(c));
	c.tree = tree;
	c.parents[0] = loaded;
	c.parent_count = 1;
	c.author.name = "mdm-be";
	c.author.email = fp;
	c.author.time = 1735689600;
	c.committer = c.author;
	c.message = "broken\n";
	ck_assert_int_eq(cs_commit_format_payload(&payload, &plen, &c), 0);
	ck_assert_int_eq(cs_sshsig_sign(&armor, key, "git",
					(const uint8_t *)payload, plen),
			 0);
	ck_assert_int_eq(cs_commit_add_signature(&raw, &len, payload, plen,
						 armor),
			 0);
	ck_assert_int_eq(cs_repo_write_commit_raw(&broken, repo, raw, len), 0);

	ck_assert_int_eq(cs_map_list(&list, repo, &broken, NULL), 0);
	ck_assert_uint_eq(json_array_size(list), nrecords);
	json_decref(list);
	ck_assert_int_lt(cs_map_find(&list, NULL, repo, &broken, id), 0);
	free(raw);
	free(armor);
	free(payload);
	free(fp);
}
END_TEST

/* ---------------------------------------------------------------------- */

START_TEST(test_put_and_move)
{
	size_t k = index_of(SVC_ID);
	json_t *r = json_deep_copy(records[k]), *got;
	cs_oid c1, c2, tree, blob;
	char *path;
	int in_main;

	/* A change in place. */
	json_object_set_new(r, "name", json_string("Consultations (nouveau)"));
	ck_assert_msg(cs_map_put(&c1, &in_main, node, &loaded, r,
				 "records: rename\n") == 0,
		      "%s", cs_error_last());
	ck_assert(in_main);
	ck_assert_int_eq(cs_map_find(&got, &path, repo, &c1, SVC_ID), 0);
	ck_assert_str_eq(path, paths[k]);
	ck_assert(json_equal(got, r));
	json_decref(got);
	free(path);
	{
		/* Stored canonical. */
		char *buf, *canon;
		size_t len, clen;

		ck_assert_int_eq(cs_repo_commit_tree(&tree, repo, &c1), 0);
		ck_assert_int_eq(cs_repo_tree_lookup(&blob, NULL, repo, &tree,
						     paths[k]),
				 0);
		ck_assert_int_eq(cs_repo_read_blob(&buf, &len, repo, &blob,
						   1 << 20),
				 0);
		ck_assert_int_eq(cs_json_canonical(&canon, &clen, r), 0);
		ck_assert_uint_eq(len, clen);
		ck_assert(memcmp(buf, canon, len) == 0);
		free(buf);
		free(canon);
	}

	/* The owner changes: the record moves, the old file goes. */
	json_object_set_new(r, "x_owner", json_string("alcs"));
	json_object_set_new(json_object_get(r, "x_verified"), "by",
			    json_string("alcs"));
	ck_assert_msg(cs_map_put(&c2, &in_main, node, &c1, r,
				 "records: hand over\n") == 0,
		      "%s", cs_error_last());
	ck_assert_int_eq(cs_map_find(&got, &path, repo, &c2, SVC_ID), 0);
	ck_assert_str_eq(path, "records/alcs/service/36/" SVC_ID ".json");
	ck_assert_str_eq(cs_record_owner(got), "alcs");
	json_decref(got);
	free(path);
	ck_assert_int_eq(cs_repo_commit_tree(&tree, repo, &c2), 0);
	ck_assert_int_eq(cs_repo_tree_lookup(&blob, NULL, repo, &tree,
					     paths[k]),
			 CS_ENOTFOUND);
	{
		json_t *list;
		cs_map_filter f;

		memset(&f, 0, sizeof(f));
		f.text = "Consultations (nouveau)";
		ck_assert_int_eq(cs_map_list(&list, repo, &c2, &f), 0);
		ck_assert_uint_eq(json_array_size(list), 1);
		json_decref(list);
		ck_assert_int_eq(cs_map_list(&list, repo, &c2, NULL), 0);
		ck_assert_uint_eq(json_array_size(list), nrecords);
		json_decref(list);
	}

	/* The same record again: nothing to commit. */
	ck_assert_int_eq(cs_map_put(&c1, &in_main, node, &c2, r, "again\n"),
			 CS_EINVALID);
	ck_assert(strstr(cs_error_last(), "nothing to commit") != NULL);

	/* An invalid record is refused before anything is written. */
	json_object_set_new(r, "x_status", json_string("pending"));
	ck_assert_int_eq(cs_map_put(&c1, &in_main, node, &c2, r, "bad\n"),
			 CS_EINVALID);
	ck_assert(strstr(cs_error_last(), "/x_status") != NULL);
	json_decref(r);

	/* A record without a proper id never becomes a path. */
	r = js("{\"id\": \"../../x\", \"x_owner\": \"ms2\","
	       " \"x_record_type\": \"service\"}");
	ck_assert_int_eq(cs_map_put(&c1, &in_main, node, &c2, r, "bad\n"),
			 CS_EINVALID);
	json_decref(r);
	{
		cs_oid main_id;

		ck_assert_int_eq(cs_node_main(&main_id, node), 0);
		ck_assert_int_eq(cs_oid_cmp(&main_id, &c2), 0);
	}
}
END_TEST

/* Written on a base that is no longer main's head: held aside. */
START_TEST(test_put_on_old_base)
{
	json_t *r = json_deep_copy(records[index_of(UPPER_ID)]);
	cs_oid c1, c2, main_id, held;
	char ref[128], h[CS_OID_HEXSZ + 1];
	int in_main;

	json_object_set_new(r, "x_status", json_string("published"));
	ck_assert_int_eq(cs_map_put(&c1, &in_main, node, &loaded, r, "one\n"),
			 0);
	ck_assert(in_main);
	json_object_set_new(r, "name", json_string("Écoute"));
	ck_assert_int_eq(cs_map_put(&c2, &in_main, node, &loaded, r, "two\n"),
			 0);
	ck_assert(!in_main);
	ck_assert_int_eq(cs_node_main(&main_id, node), 0);
	ck_assert_int_eq(cs_oid_cmp(&main_id, &c1), 0);
	cs_oid_fmt(h, &c2);
	snprintf(ref, sizeof(ref), CS_REF_EDITS "%s", h);
	ck_assert_int_eq(cs_repo_ref_read(&held, repo, ref), 0);
	ck_assert_int_eq(cs_oid_cmp(&held, &c2), 0);
	json_decref(r);
}
END_TEST

START_TEST(test_remove)
{
	cs_oid c1, c2, tree, blob;
	json_t *got;
	int in_main;
	size_t k = index_of(ARABIC_ID);

	ck_assert_msg(cs_map_remove(&c1, &in_main, node, &loaded, ARABIC_ID,
				    "records: remove\n") == 0,
		      "%s", cs_error_last());
	ck_assert(in_main);
	ck_assert_int_eq(cs_map_find(&got, NULL, repo, &c1, ARABIC_ID),
			 CS_ENOTFOUND);
	ck_assert_int_eq(cs_repo_commit_tree(&tree, repo, &c1), 0);
	ck_assert_int_eq(cs_repo_tree_lookup(&blob, NULL, repo, &tree,
					     paths[k]),
			 CS_ENOTFOUND);
	/* Still there in the past. */
	ck_assert_int_eq(cs_map_find(&got, NULL, repo, &loaded, ARABIC_ID), 0);
	json_decref(got);
	{
		json_t *list;

		ck_assert_int_eq(cs_map_list(&list, repo, &c1, NULL), 0);
		ck_assert_uint_eq(json_array_size(list), nrecords - 1);
		json_decref(list);
	}
	/* Twice, or an id that is not one. */
	ck_assert_int_eq(cs_map_remove(&c2, &in_main, node, &c1, ARABIC_ID,
				       "again\n"),
			 CS_ENOTFOUND);
	ck_assert(strstr(cs_error_last(), ARABIC_ID) != NULL);
	ck_assert_int_eq(cs_map_remove(&c2, &in_main, node, &c1, "x/../y",
				       "again\n"),
			 CS_EINVALID);
}
END_TEST

/* ---------------------------------------------------------------------- */

START_TEST(test_publish_sensitive)
{
	const char *why = (const char *)1;
	json_t *r = json_deep_copy(records[index_of(UPPER_ID)]);
	int rc;

	/* Nothing sensitive. */
	rc = cs_map_publish_sensitive(&why, repo, &loaded, r);
	ck_assert_int_eq(rc, 0);
	ck_assert_ptr_null(why);

	/* A category of the policy's list. */
	json_array_append_new(json_object_get(r, "x_categories"),
			      json_string("shelter_gbv"));
	rc = cs_map_publish_sensitive(&why, repo, &loaded, r);
	ck_assert_int_eq(rc, 1);
	ck_assert_str_eq(why, "shelter_gbv");

	/* A population of the policy's list. */
	json_array_remove(json_object_get(r, "x_categories"), 1);
	json_object_set_new(r, "x_populations",
			    json_pack("[s, s]", "young_people",
				      "people_who_use_drugs"));
	rc = cs_map_publish_sensitive(&why, repo, &loaded, r);
	ck_assert_int_eq(rc, 1);
	ck_assert_str_eq(why, "people_who_use_drugs");

	/* A sensitive word outside a category or population field. */
	json_object_set_new(r, "x_populations", json_pack("[s]", "migrants"));
	json_object_set_new(r, "description",
			    json_string("shelter sex_workers trafficking"));
	rc = cs_map_publish_sensitive(&why, repo, &loaded, r);
	ck_assert_int_eq(rc, 0);
	ck_assert_ptr_null(why);
	json_decref(r);

	/* Every sample record: the policy's codes decide. */
	for (size_t i = 0; i < nrecords; i++) {
		int want = ref_category(records[i], "shelter", 0) ||
			   ref_category(records[i], "shelter_gbv", 0) ||
			   ref_category(records[i], "trafficking", 0);
		static const char *const pops[] = {
			"migrants_irregular", "sex_workers", "msm",
			"people_who_use_drugs", "trafficking_survivors",
			"detained_people"};

		for (size_t p = 0; p < 6; p++) {
			json_t *list = json_object_get(records[i],
						       "x_populations"), *v;
			size_t j;

			json_array_foreach(list, j, v) {
				want |= strcmp(json_string_value(v), pops[p]) ==
					0;
			}
			list = json_object_get(records[i], "populations");
			json_array_foreach(list, j, v) {
				want |= json_is_string(v) &&
					strcmp(json_string_value(v), pops[p]) ==
						0;
			}
		}
		rc = cs_map_publish_sensitive(&why, repo, &loaded, records[i]);
		ck_assert_msg(rc == want, "%s: %d, expected %d",
			      paths[i], rc, want);
		ck_assert(rc == 0 ? why == NULL : why != NULL);
	}
}
END_TEST

static Suite *
map_suite(void)
{
	Suite *s = suite_create("map");
	TCase *tc = tcase_create("map");

	tcase_add_unchecked_fixture(tc, make_basedir, remove_basedir);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_find);
	tcase_add_test(tc, test_list_filters);
	tcase_add_test(tc, test_list_text_case);
	tcase_add_test(tc, test_matches);
	tcase_add_test(tc, test_list_skips_broken);
	tcase_add_test(tc, test_put_and_move);
	tcase_add_test(tc, test_put_on_old_base);
	tcase_add_test(tc, test_remove);
	tcase_add_test(tc, test_publish_sensitive);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(map_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
