/*
 * Unit tests of lib/merge.c.
 *
 *   golden cases   tests/data/merge/{records,members,policy}/<case>.json:
 *                  {"description", "type", "base", "ours", "theirs",
 *                  "merged", "conflicts": [{"pointer", "base", "ours",
 *                  "theirs"}]}, an absent member meaning an absent value;
 *                  each is run both ways round (ours/theirs swapped).
 *   API cases      rules read from the real schemas, the protective order,
 *                  errors, limits, ownership.
 *   properties     random nested objects (from a seed) and mutations of the
 *                  sample records of tests/data/sample: idempotence,
 *                  symmetry, independence from the order of insertion, no
 *                  change lost silently, valid in -> valid out or a
 *                  conflict.
 *
 * Schemas come from $CS_SCHEMA_DIR, data from $CS_TEST_DATA.
 */
#include <check.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/merge.h"
#include "cartosync/schema.h"

#define MAX_FILES 256

/* ---------------------------------------------------------------------- */
/* Helpers */

static const char *
schema_dir(void)
{
	const char *dir = getenv("CS_SCHEMA_DIR");

	return dir ? dir : "schema";
}

static const char *
data_dir(void)
{
	const char *dir = getenv("CS_TEST_DATA");

	return dir ? dir : "tests/data";
}

static json_t *
js(const char *text)
{
	json_t *v = NULL;

	ck_assert_msg(cs_json_parse(&v, text, strlen(text), "test") == 0,
	              "test JSON %s: %s", text, cs_error_last());
	return v;
}

/* Values a test makes in passing, released by collect(). */
static json_t *garbage[256];
static size_t ngarbage;

static json_t *
keep(json_t *v)
{
	ck_assert_int_lt(ngarbage, 256);
	garbage[ngarbage++] = v;
	return v;
}

static json_t *
tmp(const char *text)
{
	return keep(js(text));
}

static void
collect(void)
{
	while (ngarbage > 0)
		json_decref(garbage[--ngarbage]);
}

static json_t *
load(const char *path)
{
	json_t *v = NULL;

	ck_assert_msg(cs_json_load_file(&v, path) == 0, "%s: %s", path,
	              cs_error_last());
	return v;
}

/* The canonical encoding, or "(absent)"; malloc'd. */
static char *
canon(const json_t *v)
{
	char *out = NULL;
	size_t len;

	if (v == NULL)
		return strdup("(absent)");
	ck_assert_msg(cs_json_canonical(&out, &len, v) == 0, "encode: %s",
	              cs_error_last());
	return out;
}

static int
same(const json_t *a, const json_t *b)
{
	char *ca = canon(a), *cb = canon(b);
	int eq = strcmp(ca, cb) == 0;

	free(ca);
	free(cb);
	return eq;
}

#define assert_same(a, b, ...)                                                 \
	do {                                                                   \
		char *ca_ = canon(a), *cb_ = canon(b);                         \
		ck_assert_msg(strcmp(ca_, cb_) == 0,                           \
		              "%s: got\n%s\nexpected\n%s", __VA_ARGS__, ca_,   \
		              cb_);                                            \
		free(ca_);                                                     \
		free(cb_);                                                     \
	} while (0)

/* The pointers of a conflict list, quoted and space-separated; malloc'd. */
static char *
pointers(const cs_field_conflicts *c)
{
	size_t len = 1, i;
	char *out;

	for (i = 0; i < c->count; i++)
		len += strlen(c->items[i].pointer) + 3;
	out = calloc(1, len);
	ck_assert_ptr_nonnull(out);
	for (i = 0; i < c->count; i++) {
		strcat(out, i ? " \"" : "\"");
		strcat(out, c->items[i].pointer);
		strcat(out, "\"");
	}
	return out;
}

static cs_schema_set *schemas_cache;

static cs_schema_set *
schemas(void)
{
	if (schemas_cache == NULL) {
		ck_assert_int_eq(cs_schema_set_new(&schemas_cache), 0);
		ck_assert_msg(cs_schema_set_load_dir(schemas_cache,
		                                     schema_dir()) == 0,
		              "%s: %s", schema_dir(), cs_error_last());
	}
	return schemas_cache;
}

static const char *const types[] = {
        "contact",       "location",         "need",    "organization",
        "referral_flow", "referral_pathway", "service", "staffcare_session",
};
#define NTYPES (sizeof(types) / sizeof(types[0]))
static cs_merge_rules *rules_cache[NTYPES];

static size_t
type_index(const char *type)
{
	size_t i;

	for (i = 0; i < NTYPES; i++)
		if (strcmp(types[i], type) == 0)
			return i;
	ck_abort_msg("unknown type %s", type);
	return 0;
}

static const cs_merge_rules *
rules(const char *type)
{
	size_t i = type_index(type);

	if (rules_cache[i] == NULL)
		ck_assert_msg(cs_merge_rules_load(&rules_cache[i], schemas(),
		                                  type) == 0,
		              "rules of %s: %s", type, cs_error_last());
	return rules_cache[i];
}

/* Whether `record` is valid against <type>.schema.json. */
static int
valid(const char *type, const json_t *record)
{
	char name[64];
	int rc;

	snprintf(name, sizeof(name), "%s.schema.json", type);
	rc = cs_schema_validate(schemas(), name, record, NULL);
	ck_assert_msg(rc == 0 || rc == CS_EINVALID, "validate: %s",
	              cs_error_last());
	return rc == 0;
}

/* Sorted file names of a directory ending in ".json"; returns the count. */
static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t
list_json(char **names, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0, len;

	ck_assert_msg(d != NULL, "cannot open %s", dir);
	while ((e = readdir(d)) != NULL) {
		len = strlen(e->d_name);
		if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0) {
			ck_assert_int_lt(n, MAX_FILES);
			names[n++] = strdup(e->d_name);
		}
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	return n;
}

/* ---------------------------------------------------------------------- */
/* Golden cases */

static void
check_conflicts(const char *name, const json_t *expected,
                const cs_field_conflicts *got, int swapped)
{
	char *ptrs = pointers(got);
	size_t i;

	ck_assert_msg(json_array_size(expected) == got->count,
	              "%s%s: %zu conflicts (%s), expected %zu", name,
	              swapped ? " (swapped)" : "", got->count, ptrs,
	              json_array_size(expected));
	for (i = 0; i < got->count; i++) {
		const json_t *e = json_array_get(expected, i);
		const cs_field_conflict *c = &got->items[i];

		ck_assert_msg(
		        strcmp(c->pointer, json_string_value(json_object_get(
		                                   e, "pointer"))) == 0,
		        "%s: conflicts %s, expected %s at %zu", name, ptrs,
		        json_string_value(json_object_get(e, "pointer")), i);
		assert_same(c->base, json_object_get(e, "base"),
		            "conflict base");
		assert_same(c->ours,
		            json_object_get(e, swapped ? "theirs" : "ours"),
		            "conflict ours");
		assert_same(c->theirs,
		            json_object_get(e, swapped ? "ours" : "theirs"),
		            "conflict theirs");
	}
	free(ptrs);
}

START_TEST(test_golden_records)
{
	char dir[1024], path[1200], *names[MAX_FILES];
	size_t n, i;
	int swapped;

	snprintf(dir, sizeof(dir), "%s/merge/records", data_dir());
	n = list_json(names, dir);
	ck_assert_int_ge(n, 40);
	for (i = 0; i < n; i++) {
		json_t *c, *merged = NULL;
		const json_t *b, *o, *t;
		cs_field_conflicts conflicts = {0};

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		c = load(path);
		b = json_object_get(c, "base");
		o = json_object_get(c, "ours");
		t = json_object_get(c, "theirs");
		for (swapped = 0; swapped < 2; swapped++) {
			ck_assert_msg(
			        cs_merge_record(
			                &merged, b, swapped ? t : o,
			                swapped ? o : t,
			                rules(json_string_value(
			                        json_object_get(c, "type"))),
			                &conflicts) == 0,
			        "%s: %s", names[i], cs_error_last());
			assert_same(merged, json_object_get(c, "merged"),
			            names[i]);
			check_conflicts(names[i],
			                json_object_get(c, "conflicts"),
			                &conflicts, swapped);
			json_decref(merged);
			cs_field_conflicts_clear(&conflicts);
		}
		json_decref(c);
		free(names[i]);
	}
}
END_TEST

static void
golden_consortium(const char *kind, const char *schema_name,
                  int (*merge)(json_t **, const json_t *, const json_t *,
                               const json_t *))
{
	char dir[1024], path[1200], *names[MAX_FILES];
	size_t n, i;
	int swapped;

	snprintf(dir, sizeof(dir), "%s/merge/%s", data_dir(), kind);
	n = list_json(names, dir);
	ck_assert_int_ge(n, 10);
	for (i = 0; i < n; i++) {
		json_t *c, *merged = NULL;
		const json_t *b, *o, *t;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		c = load(path);
		b = json_object_get(c, "base");
		o = json_object_get(c, "ours");
		t = json_object_get(c, "theirs");
		/* The cases are about valid files. */
		ck_assert_msg(cs_schema_validate(schemas(), schema_name, o,
		                                 NULL) == 0 &&
		                      cs_schema_validate(schemas(), schema_name,
		                                         t, NULL) == 0,
		              "%s: a side is invalid: %s", names[i],
		              cs_error_last());
		for (swapped = 0; swapped < 2; swapped++) {
			ck_assert_msg(merge(&merged, b, swapped ? t : o,
			                    swapped ? o : t) == 0,
			              "%s: %s", names[i], cs_error_last());
			assert_same(merged, json_object_get(c, "merged"),
			            names[i]);
			ck_assert_msg(cs_schema_validate(schemas(), schema_name,
			                                 merged, NULL) == 0,
			              "%s: merged is invalid: %s", names[i],
			              cs_error_last());
			json_decref(merged);
		}
		json_decref(c);
		free(names[i]);
	}
}

START_TEST(test_golden_members)
{
	golden_consortium("members", "members.schema.json", cs_merge_members);
}
END_TEST

START_TEST(test_golden_policy)
{
	golden_consortium("policy", "policy.schema.json", cs_merge_policy);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Rules */

START_TEST(test_rules_service)
{
	const cs_merge_rules *r = rules("service");

	/* Declared in service.schema.json. */
	ck_assert_int_eq(cs_merge_rule_of(r, "/x_languages"), CS_MERGE_SET);
	ck_assert_int_eq(cs_merge_rule_of(r, "/x_categories"), CS_MERGE_SET);
	ck_assert_int_eq(cs_merge_rule_of(r, "/x_populations"), CS_MERGE_SET);
	ck_assert_int_eq(cs_merge_rule_of(r, "/x_access_modes"), CS_MERGE_SET);
	ck_assert_int_eq(cs_merge_rule_of(r, "/x_mhpss_layers"), CS_MERGE_SET);
	ck_assert_int_eq(cs_merge_rule_of(r, "/x_referral/methods"),
	                 CS_MERGE_SET);
	/* Beside an allOf/$ref to common.schema.json#/$defs/verification. */
	ck_assert_int_eq(cs_merge_rule_of(r, "/x_verified"), CS_MERGE_LATEST);
	/* Beside an allOf/$ref to codes.schema.json#/$defs/visibility. */
	ck_assert_int_eq(cs_merge_rule_of(r, "/x_visibility"),
	                 CS_MERGE_PROTECTIVE);
	/* Inside common.schema.json#/$defs/phone, through two $refs. */
	ck_assert_int_eq(cs_merge_rule_of(r, "/phones/0/x_languages"),
	                 CS_MERGE_SET);
	ck_assert_int_eq(cs_merge_rule_of(r, "/phones/12/x_languages"),
	                 CS_MERGE_SET);
	ck_assert_int_eq(cs_merge_rule_of(r, "/service_at_locations/1/phones/0/"
	                                     "x_languages"),
	                 CS_MERGE_SET);
	/* Atomic: everything else, and what does not match. */
	ck_assert_int_eq(cs_merge_rule_of(r, "/name"), CS_MERGE_ATOMIC);
	ck_assert_int_eq(cs_merge_rule_of(r, "/x_referral"), CS_MERGE_ATOMIC);
	ck_assert_int_eq(cs_merge_rule_of(r, "/x_referral/response_delay"),
	                 CS_MERGE_ATOMIC);
	ck_assert_int_eq(cs_merge_rule_of(r, "/service_at_locations"),
	                 CS_MERGE_ATOMIC);
	ck_assert_int_eq(cs_merge_rule_of(r, "/x_verified/date"),
	                 CS_MERGE_ATOMIC);
	ck_assert_int_eq(cs_merge_rule_of(r, "/phones/x/x_languages"),
	                 CS_MERGE_ATOMIC);
	ck_assert_int_eq(cs_merge_rule_of(r, "/phones//x_languages"),
	                 CS_MERGE_ATOMIC);
	ck_assert_int_eq(cs_merge_rule_of(r, "/x_languages/0"),
	                 CS_MERGE_ATOMIC);
	ck_assert_int_eq(cs_merge_rule_of(r, "x_languages"), CS_MERGE_ATOMIC);
	ck_assert_int_eq(cs_merge_rule_of(r, ""), CS_MERGE_ATOMIC);
	ck_assert_int_eq(cs_merge_rule_of(NULL, "/x_languages"),
	                 CS_MERGE_ATOMIC);
}
END_TEST

START_TEST(test_rules_all_types)
{
	size_t i;

	for (i = 0; i < NTYPES; i++) {
		const cs_merge_rules *r = rules(types[i]);

		ck_assert_msg(cs_merge_rule_of(r, "/x_verified") ==
		                      CS_MERGE_LATEST,
		              "%s: x_verified", types[i]);
		ck_assert_msg(cs_merge_rule_of(r, "/x_visibility") ==
		                      CS_MERGE_PROTECTIVE,
		              "%s: x_visibility", types[i]);
		ck_assert_msg(cs_merge_rule_of(r, "/id") == CS_MERGE_ATOMIC,
		              "%s: id", types[i]);
	}
	ck_assert_int_eq(cs_merge_rule_of(rules("location"), "/x_sensitivity"),
	                 CS_MERGE_PROTECTIVE);
	ck_assert_int_eq(cs_merge_rule_of(rules("location"), "/x_languages"),
	                 CS_MERGE_SET);
	ck_assert_int_eq(cs_merge_rule_of(rules("contact"), "/x_languages"),
	                 CS_MERGE_SET);
	ck_assert_int_eq(cs_merge_rule_of(rules("need"), "/barriers"),
	                 CS_MERGE_SET);
	ck_assert_int_eq(
	        cs_merge_rule_of(rules("staffcare_session"), "/themes"),
	        CS_MERGE_SET);
}
END_TEST

static cs_schema_set *
set_of(const char *name, const char *doc, const char *name2, const char *doc2)
{
	cs_schema_set *set = NULL;
	json_t *v;

	ck_assert_int_eq(cs_schema_set_new(&set), 0);
	v = js(doc);
	ck_assert_msg(cs_schema_set_add(set, name, v) == 0, "%s",
	              cs_error_last());
	json_decref(v);
	if (name2) {
		v = js(doc2);
		ck_assert_msg(cs_schema_set_add(set, name2, v) == 0, "%s",
		              cs_error_last());
		json_decref(v);
	}
	return set;
}

static int
load_rules(const char *doc, const char *other, cs_merge_rules **out)
{
	cs_schema_set *set = set_of("t.schema.json", doc,
	                            other ? "o.schema.json" : NULL, other);
	int rc;

	*out = (cs_merge_rules *)&rc; /* must be reset */
	rc = cs_merge_rules_load(out, set, "t");
	cs_schema_set_free(set);
	return rc;
}

START_TEST(test_rules_errors)
{
	cs_merge_rules *r = NULL;

	/* No such type. */
	ck_assert_int_eq(cs_merge_rules_load(&r, schemas(), "nothing"),
	                 CS_ENOTFOUND);
	ck_assert_ptr_null(r);
	ck_assert_int_eq(cs_merge_rules_load(&r, schemas(), "../service"),
	                 CS_EINVALID);
	ck_assert_int_eq(cs_merge_rules_load(&r, schemas(), ""), CS_EINVALID);

	/* An x_merge that is none of the three. */
	ck_assert_int_eq(load_rules("{\"properties\": {\"a\": "
	                            "{\"x_merge\": \"union\"}}}",
	                            NULL, &r),
	                 CS_EINVALID);
	ck_assert_ptr_null(r);
	ck_assert_ptr_nonnull(strstr(cs_error_last(), "/a"));
	ck_assert_int_eq(load_rules("{\"properties\": {\"a\": "
	                            "{\"x_merge\": 1}}}",
	                            NULL, &r),
	                 CS_EINVALID);

	/* Two rules for one field. */
	ck_assert_int_eq(load_rules("{\"properties\": {\"a\": {\"allOf\": ["
	                            "{\"x_merge\": \"set\"}, "
	                            "{\"x_merge\": \"latest\"}]}}}",
	                            NULL, &r),
	                 CS_EINVALID);
	ck_assert_ptr_nonnull(strstr(cs_error_last(), "conflicting"));

	/* A $ref that goes nowhere. */
	ck_assert_int_eq(load_rules("{\"properties\": {\"a\": "
	                            "{\"$ref\": \"o.schema.json#/nope\"}}}",
	                            NULL, &r),
	                 CS_ENOTFOUND);
	ck_assert_int_eq(load_rules("{\"properties\": {\"a\": "
	                            "{\"$ref\": \"#/$defs/nope\"}}}",
	                            NULL, &r),
	                 CS_ENOTFOUND);

	/* A $ref cycle that never enters a property. */
	ck_assert_int_eq(load_rules("{\"$defs\": {\"x\": {\"$ref\": "
	                            "\"#/$defs/y\"}, \"y\": {\"$ref\": "
	                            "\"#/$defs/x\"}}, \"properties\": {\"a\": "
	                            "{\"$ref\": \"#/$defs/x\"}}}",
	                            NULL, &r),
	                 CS_EINVALID);
	ck_assert_ptr_null(r);
}
END_TEST

START_TEST(test_rules_walk)
{
	cs_merge_rules *r = NULL;

	/* Every keyword the header names, across documents, escaped names. */
	ck_assert_int_eq(
	        load_rules("{\"$defs\": {\"s\": {\"x_merge\": \"set\"},"
	                   " \"p%\": {\"x_merge\": \"latest\"}},"
	                   " \"properties\": {"
	                   "  \"a/b\": {\"x_merge\": \"set\"},"
	                   "  \"t~\": {\"anyOf\": [{\"x_merge\": \"latest\"}]},"
	                   "  \"c\": {\"oneOf\": [{\"$ref\": \"#/$defs/s\"}]},"
	                   "  \"d\": {\"if\": {}, \"then\": {\"x_merge\": "
	                   "\"protective\"}},"
	                   "  \"e\": {\"else\": {\"x_merge\": \"set\"}},"
	                   "  \"f\": {\"items\": {\"properties\": {\"g\": "
	                   "{\"$ref\": \"o.schema.json#/$defs/p\"}}}},"
	                   "  \"h\": {\"items\": [{}, {\"x_merge\": \"set\"}]},"
	                   "  \"i\": {\"$ref\": \"#/$defs/p%25\"},"
	                   "  \"j\": {\"$ref\": \"#/properties/a~1b\"},"
	                   "  \"k\": {\"not\": {\"x_merge\": \"set\"}}"
	                   "}}",
	                   "{\"$defs\": {\"p\": {\"properties\": {\"q\": "
	                   "{\"x_merge\": \"protective\"}}}}}",
	                   &r),
	        0);
	ck_assert_int_eq(cs_merge_rule_of(r, "/a~1b"), CS_MERGE_SET);
	ck_assert_int_eq(cs_merge_rule_of(r, "/a/b"), CS_MERGE_ATOMIC);
	ck_assert_int_eq(cs_merge_rule_of(r, "/t~0"), CS_MERGE_LATEST);
	ck_assert_int_eq(cs_merge_rule_of(r, "/c"), CS_MERGE_SET);
	ck_assert_int_eq(cs_merge_rule_of(r, "/d"), CS_MERGE_PROTECTIVE);
	ck_assert_int_eq(cs_merge_rule_of(r, "/e"), CS_MERGE_SET);
	ck_assert_int_eq(cs_merge_rule_of(r, "/f/3/g/q"), CS_MERGE_PROTECTIVE);
	ck_assert_int_eq(cs_merge_rule_of(r, "/f/3/g"), CS_MERGE_ATOMIC);
	ck_assert_int_eq(cs_merge_rule_of(r, "/h/0"), CS_MERGE_SET);
	ck_assert_int_eq(cs_merge_rule_of(r, "/i"), CS_MERGE_LATEST);
	ck_assert_int_eq(cs_merge_rule_of(r, "/j"), CS_MERGE_SET);
	ck_assert_int_eq(cs_merge_rule_of(r, "/k"), CS_MERGE_ATOMIC);
	cs_merge_rules_free(r);

	/* A "/" escaped in a URI fragment is part of a key. */
	ck_assert_int_eq(load_rules("{\"$defs\": {\"a/b\": {\"x_merge\": "
	                            "\"set\"}, \"a\": {\"b\": {\"x_merge\": "
	                            "\"latest\"}}}, \"properties\": {"
	                            "\"p\": {\"$ref\": \"#/$defs/a%2Fb\"},"
	                            "\"q\": {\"$ref\": \"#/$defs/a/b\"},"
	                            "\"r\": {\"$ref\": \"#/%24defs/a~1b\"}}}",
	                            NULL, &r),
	                 0);
	ck_assert_int_eq(cs_merge_rule_of(r, "/p"), CS_MERGE_SET);
	ck_assert_int_eq(cs_merge_rule_of(r, "/q"), CS_MERGE_LATEST);
	ck_assert_int_eq(cs_merge_rule_of(r, "/r"), CS_MERGE_SET);
	cs_merge_rules_free(r);

	/* A recursive schema: read down to the depth a record can have. */
	ck_assert_int_eq(load_rules("{\"properties\": {\"n\": {\"$ref\": "
	                            "\"#\"}, \"v\": {\"x_merge\": \"set\"}}}",
	                            NULL, &r),
	                 0);
	ck_assert_int_eq(cs_merge_rule_of(r, "/v"), CS_MERGE_SET);
	ck_assert_int_eq(cs_merge_rule_of(r, "/n/n/n/v"), CS_MERGE_SET);
	cs_merge_rules_free(r);
	cs_merge_rules_free(NULL);
}
END_TEST

/* The rules keep what they need: the set may go first. */
START_TEST(test_rules_outlive_set)
{
	cs_schema_set *set = NULL;
	cs_merge_rules *r = NULL;
	cs_field_conflicts conflicts = {0};
	json_t *b, *o, *t, *merged = NULL;
	char path[1024];

	ck_assert_int_eq(cs_schema_set_new(&set), 0);
	ck_assert_int_eq(cs_schema_set_load_dir(set, schema_dir()), 0);
	ck_assert_int_eq(cs_merge_rules_load(&r, set, "service"), 0);
	cs_schema_set_free(set);

	snprintf(path, sizeof(path), "%s/sample/ms2/service-ms2-consult.json",
	         data_dir());
	b = load(path);
	o = json_deep_copy(b);
	t = json_deep_copy(b);
	json_object_set_new(b, "x_categories",
	                    json_pack("[s, s]", "mhpss", "education"));
	json_object_set_new(o, "x_categories", json_pack("[s]", "mhpss"));
	json_object_set_new(t, "x_categories", json_pack("[s]", "education"));
	/* Emptied by the set merge: the schema the rules hold says no. */
	ck_assert_int_eq(cs_merge_record(&merged, b, o, t, r, &conflicts), 0);
	ck_assert_int_eq(conflicts.count, 1);
	ck_assert_str_eq(conflicts.items[0].pointer, "/x_categories");
	assert_same(json_object_get(merged, "x_categories"),
	            json_object_get(b, "x_categories"), "reverted");
	cs_field_conflicts_clear(&conflicts);
	json_decref(merged);
	json_decref(b);
	json_decref(o);
	json_decref(t);
	cs_merge_rules_free(r);
}
END_TEST

/*
 * The repair of an invalid merge names fields by escaped pointers, with
 * keys of any length and "~" or "/" in them.
 */
START_TEST(test_repair_pointers)
{
	char *long_key = malloc(3001), *schema, *text;
	cs_field_conflicts conflicts = {0};
	cs_merge_rules *r = NULL;
	json_t *b, *o, *t, *merged = NULL;
	size_t i;

	for (i = 0; i < 3000; i++)
		long_key[i] = (char)('a' + i % 26);
	long_key[3000] = '\0';
	ck_assert_int_gt(
	        asprintf(&schema,
	                 "{\"additionalProperties\": false, \"properties\": {"
	                 "\"%s\": {\"properties\": {\"~s/\": {\"type\": "
	                 "\"array\", \"maxItems\": 2, \"x_merge\": \"set\"}},"
	                 "\"additionalProperties\": false}, \"v\": "
	                 "{\"x_merge\": \"protective\"}, \"n\": {}}}",
	                 long_key),
	        0);
	ck_assert_int_eq(load_rules(schema, NULL, &r), 0);
	ck_assert_int_eq(cs_merge_rule_of(r, "/v"), CS_MERGE_PROTECTIVE);

	ck_assert_int_gt(
	        asprintf(&text, "{\"%s\": {\"~s/\": [\"a\"]}}", long_key), 0);
	b = js(text);
	free(text);
	ck_assert_int_gt(asprintf(&text,
	                          "{\"%s\": {\"~s/\": [\"a\", \"b\"]}, "
	                          "\"n\": 1, \"v\": \"coordination\"}",
	                          long_key),
	                 0);
	o = js(text);
	free(text);
	ck_assert_int_gt(asprintf(&text,
	                          "{\"%s\": {\"~s/\": [\"a\", \"c\"]}, "
	                          "\"v\": \"public\"}",
	                          long_key),
	                 0);
	t = js(text);
	free(text);
	/* [a, b, c] is one too many: the set is a conflict, at its base. */
	ck_assert_int_eq(cs_merge_record(&merged, b, o, t, r, &conflicts), 0);
	ck_assert_int_eq(conflicts.count, 2);
	ck_assert_int_eq(strlen(conflicts.items[0].pointer), 3000 + 7);
	ck_assert_str_eq(conflicts.items[0].pointer + 3001, "/~0s~1");
	ck_assert_str_eq(conflicts.items[1].pointer, "/v");
	ck_assert_int_eq(json_array_size(json_object_get(
	                         json_object_get(merged, long_key), "~s/")),
	                 1);
	ck_assert_str_eq(json_string_value(json_object_get(merged, "v")),
	                 "coordination");
	ck_assert_int_eq(json_integer_value(json_object_get(merged, "n")), 1);
	json_decref(merged);
	cs_field_conflicts_clear(&conflicts);
	json_decref(b);
	json_decref(o);
	json_decref(t);
	cs_merge_rules_free(r);
	free(schema);
	free(long_key);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* The protective order */

START_TEST(test_more_protective)
{
	static const char *const cases[][3] = {
	        /* a, b, the more protective */
	        {"\"public\"", "\"consortium\"", "\"consortium\""},
	        {"\"consortium\"", "\"coordination\"", "\"coordination\""},
	        {"\"public\"", "\"coordination\"", "\"coordination\""},
	        {"\"public\"", "\"public\"", "\"public\""},
	        {"\"normal\"", "\"confidential\"", "\"confidential\""},
	        {"false", "true", "true"},
	        {"true", "true", "true"},
	        /* Unknown values: the greater canonical encoding. */
	        {"\"secret\"", "\"coordination\"", "\"secret\""},
	        {"\"public\"", "\"normal\"", "\"public\""},
	        {"\"a\"", "\"b\"", "\"b\""},
	        {"1", "2", "2"},
	        {"\"public\"", "1", "1"},
	        {"true", "\"normal\"", "true"},
	        {"null", "false", "null"},
	        {"{\"a\": 1}", "[1]", "{\n  \"a\": 1\n}"},
	};
	json_t *a, *b, *want;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_error_t err;

		a = json_loads(cases[i][0], JSON_DECODE_ANY, &err);
		b = json_loads(cases[i][1], JSON_DECODE_ANY, &err);
		want = json_loads(cases[i][2], JSON_DECODE_ANY, &err);
		ck_assert_ptr_nonnull(a);
		ck_assert_ptr_nonnull(b);
		ck_assert_ptr_nonnull(want);
		/* Borrowed: one of the arguments, whatever their order. */
		ck_assert(cs_merge_more_protective(a, b) == a ||
		          cs_merge_more_protective(a, b) == b);
		assert_same(cs_merge_more_protective(a, b), want, cases[i][0]);
		assert_same(cs_merge_more_protective(b, a), want, cases[i][1]);
		json_decref(a);
		json_decref(b);
		json_decref(want);
	}
	/* Absent is the least protective. */
	a = json_string("public");
	ck_assert_ptr_eq(cs_merge_more_protective(a, NULL), a);
	ck_assert_ptr_eq(cs_merge_more_protective(NULL, a), a);
	ck_assert_ptr_null(cs_merge_more_protective(NULL, NULL));
	json_decref(a);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* The API */

START_TEST(test_conflicts_append)
{
	cs_field_conflicts conflicts = {0};
	json_t *b = js("{\"name\": \"A\", \"alert\": \"x\"}");
	json_t *o = js("{\"name\": \"B\", \"alert\": \"y\"}");
	json_t *t = js("{\"name\": \"C\", \"alert\": \"z\"}");
	json_t *merged = NULL;

	ck_assert_int_eq(cs_merge_record(&merged, b, o, t, NULL, &conflicts),
	                 0);
	json_decref(merged);
	ck_assert_int_eq(conflicts.count, 2);
	/* Appended after what the list holds, sorted among themselves. */
	ck_assert_int_eq(cs_merge_record(&merged, b, t, o, NULL, &conflicts),
	                 0);
	ck_assert_int_eq(conflicts.count, 4);
	ck_assert_str_eq(conflicts.items[0].pointer, "/alert");
	ck_assert_str_eq(conflicts.items[1].pointer, "/name");
	ck_assert_str_eq(conflicts.items[2].pointer, "/alert");
	ck_assert_str_eq(conflicts.items[3].pointer, "/name");
	assert_same(conflicts.items[3].ours, keep(json_string("C")), "ours");
	/* Copies: the inputs may go. */
	json_decref(b);
	json_decref(o);
	json_decref(t);
	assert_same(conflicts.items[0].base, keep(json_string("x")), "base");
	json_decref(merged);
	cs_field_conflicts_clear(&conflicts);
	collect();
	ck_assert_int_eq(conflicts.count, 0);
	ck_assert_ptr_null(conflicts.items);
	cs_field_conflicts_clear(&conflicts);
	cs_field_conflicts_clear(NULL);
}
END_TEST

START_TEST(test_result_is_a_copy)
{
	json_t *b = js("{\"a\": {\"b\": 1}}");
	json_t *o = js("{\"a\": {\"b\": 2}}");
	json_t *merged = NULL;

	ck_assert_int_eq(cs_merge_record(&merged, b, b, o, NULL, NULL), 0);
	ck_assert_ptr_nonnull(merged);
	ck_assert_ptr_ne(merged, o);
	json_object_set_new(json_object_get(merged, "a"), "c", json_integer(3));
	ck_assert_int_eq(json_object_size(json_object_get(o, "a")), 1);
	json_decref(merged);
	json_decref(b);
	json_decref(o);
}
END_TEST

START_TEST(test_without_rules)
{
	cs_field_conflicts conflicts = {0};
	json_t *b = js("{\"x_languages\": [\"ar\"]}");
	json_t *o = js("{\"x_languages\": [\"ar\", \"fr\"]}");
	json_t *t = js("{\"x_languages\": [\"en\"]}");
	json_t *merged = NULL;

	/* Without rules, a set is an atomic value. */
	ck_assert_int_eq(cs_merge_record(&merged, b, o, t, NULL, &conflicts),
	                 0);
	assert_same(merged, b, "atomic");
	ck_assert_int_eq(conflicts.count, 1);
	json_decref(merged);
	cs_field_conflicts_clear(&conflicts);
	ck_assert_int_eq(
	        cs_merge_record(&merged, b, o, t, rules("service"), &conflicts),
	        0);
	assert_same(merged, tmp("{\"x_languages\": [\"en\", \"fr\"]}"), "set");
	ck_assert_int_eq(conflicts.count, 0);
	json_decref(merged);
	json_decref(b);
	json_decref(o);
	json_decref(t);
	collect();
}
END_TEST

START_TEST(test_non_object_records)
{
	cs_field_conflicts conflicts = {0};
	json_t *b = js("[1]"), *o = js("[2]"), *t = js("{\"a\": 1}");
	json_t *merged = keep(js("{}"));

	ck_assert_int_eq(cs_merge_record(&merged, b, o, t, NULL, &conflicts),
	                 0);
	assert_same(merged, b, "base");
	ck_assert_int_eq(conflicts.count, 1);
	ck_assert_str_eq(conflicts.items[0].pointer, "");
	json_decref(merged);
	cs_field_conflicts_clear(&conflicts);
	json_decref(b);
	json_decref(o);
	json_decref(t);
	collect();
}
END_TEST

START_TEST(test_limits)
{
	json_t *deep = json_object(), *at = deep, *next, *merged;
	json_t *b = js("{\"a\": 1}");
	int i;

	/* Deeper than the parser lets anything be. */
	for (i = 0; i < CS_JSON_MAX_DEPTH + 5; i++) {
		next = json_object();
		json_object_set_new(at, "a", next);
		at = next;
	}
	merged = b;
	ck_assert_int_eq(cs_merge_record(&merged, b, deep, b, NULL, NULL),
	                 CS_ELIMIT);
	ck_assert_ptr_null(merged);
	ck_assert_int_eq(cs_merge_members(&merged, NULL, deep, deep),
	                 CS_ELIMIT);
	ck_assert_int_eq(cs_merge_policy(&merged, NULL, deep, deep), CS_ELIMIT);
	json_decref(deep);

	/* What the canonical form cannot hold. */
	deep = json_pack("{s: I}", "a", (json_int_t)1 << 60);
	ck_assert_int_eq(cs_merge_record(&merged, b, deep, b, NULL, NULL),
	                 CS_EINVALID);
	ck_assert_ptr_null(merged);
	json_decref(deep);

	/* The deepest a parsed record can be merges. */
	{
		char text[8 * CS_JSON_MAX_DEPTH + 16] = "";
		json_t *o, *t;

		for (i = 0; i < CS_JSON_MAX_DEPTH; i++)
			strcat(text, "{\"a\":");
		strcat(text, "1");
		for (i = 0; i < CS_JSON_MAX_DEPTH; i++)
			strcat(text, "}");
		o = js(text);
		text[strlen(text) - CS_JSON_MAX_DEPTH - 1] = '2';
		t = js(text);
		ck_assert_int_eq(
		        cs_merge_record(&merged, NULL, o, t, NULL, NULL), 0);
		ck_assert_ptr_null(merged);
		ck_assert_int_eq(
		        cs_merge_record(&merged, tmp("{}"), o, t, NULL, NULL),
		        0);
		json_decref(merged);
		json_decref(o);
		json_decref(t);
	}
	json_decref(b);
	collect();
}
END_TEST

START_TEST(test_consortium_errors)
{
	json_t *m =
	        js("{\"keys\": [{\"key\": \"k1\"}], \"organizations\": {}}");
	json_t *merged = keep(js("{}"));

	ck_assert_int_eq(cs_merge_members(&merged, m, NULL, m), CS_EINVALID);
	ck_assert_ptr_null(merged);
	ck_assert_int_eq(cs_merge_members(&merged, m, m, tmp("[]")),
	                 CS_EINVALID);
	ck_assert_int_eq(cs_merge_members(&merged, tmp("[]"), m, m),
	                 CS_EINVALID);
	ck_assert_int_eq(cs_merge_members(&merged, m, m, tmp("{\"keys\": {}}")),
	                 CS_EINVALID);
	ck_assert_int_eq(cs_merge_members(&merged, m, m,
	                                  tmp("{\"keys\": [{\"key\": 1}]}")),
	                 CS_EINVALID);
	ck_assert_int_eq(cs_merge_members(&merged, m, m,
	                                  tmp("{\"keys\": [{\"key\": \"k\"}, "
	                                      "{\"key\": \"k\"}]}")),
	                 CS_EINVALID);
	ck_assert_ptr_nonnull(strstr(cs_error_last(), "twice"));
	ck_assert_int_eq(
	        cs_merge_members(&merged, m, m, tmp("{\"organizations\": []}")),
	        CS_EINVALID);
	ck_assert_int_eq(cs_merge_policy(&merged, m, NULL, m), CS_EINVALID);
	ck_assert_int_eq(cs_merge_policy(&merged, m, m, keep(json_integer(1))),
	                 CS_EINVALID);

	/* The base may be absent: added on both sides. */
	ck_assert_int_eq(cs_merge_members(&merged, NULL, m, m), 0);
	assert_same(merged, m, "members");
	json_decref(merged);
	ck_assert_int_eq(cs_merge_policy(&merged, NULL, m, m), 0);
	assert_same(merged, m, "policy");
	json_decref(merged);
	json_decref(m);
	collect();
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Properties */

typedef struct {
	uint64_t s;
} rng;

static uint64_t
next(rng *r)
{
	/* splitmix64 */
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned
below(rng *r, unsigned n)
{
	return (unsigned)(next(r) % n);
}

static const char *const key_pool[] = {
        "a",           "b",          "c",
        "x_languages", "x_verified", "x_visibility",
        "x_referral",  "methods",    "date",
        "by",          "~/",         "\xc3\xbc",
};
static const char *const string_pool[] = {
        "ar",           "fr",         "en",     "ary",
        "2025-01-01",   "2025-03-01", "public", "consortium",
        "coordination", "ms2",        "x",      "",
};
#define POOL(p) (sizeof(p) / sizeof(p[0]))

static json_t *random_value(rng *r, int depth);

static json_t *
random_strings(rng *r)
{
	json_t *a = json_array();
	unsigned i, n = below(r, 5);

	for (i = 0; i < n; i++)
		json_array_append_new(
		        a,
		        json_string(string_pool[below(r, POOL(string_pool))]));
	return a;
}

static json_t *
random_object(rng *r, int depth)
{
	json_t *o = json_object();
	unsigned i, n = below(r, depth > 3 ? 2 : 6);

	for (i = 0; i < n; i++)
		json_object_set_new(o, key_pool[below(r, POOL(key_pool))],
		                    random_value(r, depth + 1));
	return o;
}

static json_t *
random_value(rng *r, int depth)
{
	switch (below(r, depth > 3 ? 7 : 10)) {
	case 0:
		return json_null();
	case 1:
		return json_boolean(below(r, 2));
	case 2:
		return json_integer((json_int_t)below(r, 5));
	case 3:
		return below(r, 2) ? json_real(2.0) : json_real(1.5);
	case 4:
	case 5:
		return json_string(string_pool[below(r, POOL(string_pool))]);
	case 6:
		return random_strings(r);
	case 7:
		return json_pack("{s:s, s:s}", "date",
		                 string_pool[4 + below(r, 2)], "by",
		                 string_pool[below(r, 4)]);
	default:
		return random_object(r, depth);
	}
}

/* Change a copy of v in one to three places. */
static json_t *
mutate_random(rng *r, const json_t *v)
{
	json_t *copy = json_deep_copy(v), *at, *child;
	unsigned edits = 1 + below(r, 3), e, steps;
	const char *key;

	for (e = 0; e < edits && json_is_object(copy); e++) {
		at = copy;
		for (steps = 0; steps < 4; steps++) {
			key = key_pool[below(r, POOL(key_pool))];
			child = json_object_get(at, key);
			if (json_is_object(child) && below(r, 2)) {
				at = child;
				continue;
			}
			if (json_is_array(child) && below(r, 2)) {
				if (below(r, 2) && json_array_size(child))
					json_array_remove(
					        child,
					        below(r,
					              (unsigned)json_array_size(
					                      child)));
				else
					json_array_append_new(
					        child,
					        json_string(string_pool[below(
					                r,
					                POOL(string_pool))]));
			} else if (child && below(r, 3) == 0) {
				json_object_del(at, key);
			} else {
				json_object_set_new(at, key,
				                    random_value(r, 2));
			}
			break;
		}
	}
	return copy;
}

/* A copy whose objects hold their members in the reverse order. */
static json_t *
reversed(const json_t *v)
{
	const char *keys[256], *key;
	json_t *copy, *child;
	size_t n = 0, i;

	if (json_is_array(v)) {
		copy = json_array();
		json_array_foreach (v, i, child)
			json_array_append_new(copy, reversed(child));
		return copy;
	}
	if (!json_is_object(v))
		return json_deep_copy(v);
	json_object_foreach ((json_t *)v, key, child)
		if (n < 256)
			keys[n++] = key;
	copy = json_object();
	while (n-- > 0)
		json_object_set_new(copy, keys[n],
		                    reversed(json_object_get(v, keys[n])));
	return copy;
}

typedef struct {
	const char *type; /* NULL: no schema */
	const cs_merge_rules *rules;
	int checked_valid;  /* triples with valid sides */
	int result_valid;   /* ... whose merge is valid */
	int with_conflicts; /* triples that conflicted */
	int set_conflicts;  /* conflicts at a set (the schema repair) */
	int root_conflicts; /* conflicts at "" of records on all sides */
	char label[128];
	const json_t *in[3]; /* the triple, shown when a check fails */
} prop_ctx;

/* Show the triple being checked on stderr (before a failure). */
static void
show_triple(const prop_ctx *p)
{
	static const char *const names[] = {"base", "ours", "theirs"};
	char *text;
	int i;

	for (i = 0; i < 3; i++) {
		text = canon(p->in[i]);
		fprintf(stderr, "%s %s:\n%s\n", p->label, names[i], text);
		free(text);
	}
}

static int
covered(const cs_field_conflicts *c, const char *pointer)
{
	size_t i, n;

	for (i = 0; i < c->count; i++) {
		n = strlen(c->items[i].pointer);
		if (strncmp(pointer, c->items[i].pointer, n) == 0 &&
		    (pointer[n] == '\0' || pointer[n] == '/'))
			return 1;
	}
	return 0;
}

static int
in_strings(const json_t *a, const json_t *s)
{
	size_t i;

	for (i = 0; i < json_array_size(a); i++)
		if (json_equal(json_array_get(a, i), (json_t *)s))
			return 1;
	return 0;
}

static int
string_array(const json_t *v)
{
	size_t i;

	if (v == NULL)
		return 1;
	if (!json_is_array(v))
		return 0;
	for (i = 0; i < json_array_size(v); i++)
		if (!json_is_string(json_array_get(v, i)))
			return 0;
	return 1;
}

/* Whether a "latest" winner beats the side's value. */
static int
later(const json_t *winner, const json_t *loser)
{
	const char *dw = json_string_value(json_object_get(winner, "date"));
	const char *dl = json_string_value(json_object_get(loser, "date"));
	char *cw, *cl;
	int beats;

	if (loser == NULL)
		return 1;
	if (dw && dl && strcmp(dw, dl) != 0)
		return strcmp(dw, dl) > 0;
	if ((dw == NULL) != (dl == NULL))
		return dw != NULL;
	cw = canon(winner);
	cl = canon(loser);
	beats = strcmp(cw, cl) > 0;
	free(cw);
	free(cl);
	return beats;
}

/*
 * Every field that `side` changed from `base` and that differs in the
 * result is under a conflict or explained by its rule.
 */
static void
check_no_silent_loss(prop_ctx *p, const char *pointer, const json_t *b,
                     const json_t *s, const json_t *other, const json_t *res,
                     const cs_field_conflicts *c)
{
	cs_merge_rule rule;
	const char *key;
	json_t *child;
	char sub[2048];
	size_t i;

	if (same(s, b) || same(res, s) || covered(c, pointer))
		return;
	rule = cs_merge_rule_of(p->rules, pointer);
	if (rule == CS_MERGE_SET && string_array(b) && string_array(s) &&
	    string_array(other) && string_array(res)) {
		/* The side's additions are in, its removals out. */
		for (i = 0; i < json_array_size(s); i++)
			ck_assert_msg(
			        in_strings(b, json_array_get(s, i)) ||
			                in_strings(res, json_array_get(s, i)),
			        "%s: set %s lost an addition", p->label,
			        pointer);
		for (i = 0; i < json_array_size(b); i++)
			ck_assert_msg(
			        in_strings(s, json_array_get(b, i)) ||
			                !in_strings(res, json_array_get(b, i)),
			        "%s: set %s lost a removal", p->label, pointer);
		return;
	}
	if (rule == CS_MERGE_LATEST && same(res, other) && later(other, s))
		return;
	/* Merged member by member (absent: every member conflicted). */
	if (json_is_object(s) && (res == NULL || json_is_object(res)) &&
	    (b == NULL || json_is_object(b))) {
		const json_t *objs[3] = {b, s, res};
		size_t k;

		for (k = 0; k < 3; k++) {
			if (!json_is_object(objs[k]))
				continue;
			json_object_foreach ((json_t *)objs[k], key, child) {
				char esc[512], *o = esc;
				const char *q;

				for (q = key; *q && o < esc + 500; q++) {
					if (*q == '~' || *q == '/') {
						*o++ = '~';
						*o++ = *q == '~' ? '0' : '1';
					} else {
						*o++ = *q;
					}
				}
				*o = '\0';
				snprintf(sub, sizeof(sub), "%s/%s", pointer,
				         esc);
				check_no_silent_loss(
				        p, sub, json_object_get(b, key),
				        json_object_get(s, key),
				        json_object_get(other, key),
				        json_object_get(res, key), c);
			}
		}
		return;
	}
	{
		char *cs = canon(s), *cr = canon(res);

		show_triple(p);
		ck_assert_msg(0,
		              "%s: a change at \"%s\" is lost "
		              "silently:\n%s\nbecame\n%s",
		              p->label, pointer, cs, cr);
	}
}

static void
merge_ok(prop_ctx *p, json_t **out, const json_t *b, const json_t *o,
         const json_t *t, cs_field_conflicts *c)
{
	ck_assert_msg(cs_merge_record(out, b, o, t, p->rules, c) == 0, "%s: %s",
	              p->label, cs_error_last());
}

/* merge(b, x, x) == merge(b, b, x) == merge(b, x, b) == x, no conflict. */
static void
check_identities(prop_ctx *p, const json_t *b, const json_t *x)
{
	const json_t *cases[3][2] = {{x, x}, {b, x}, {x, b}};
	cs_field_conflicts c = {0};
	json_t *r;
	int i;

	for (i = 0; i < 3; i++) {
		merge_ok(p, &r, b, cases[i][0], cases[i][1], &c);
		ck_assert_msg(same(r, x), "%s: identity %d", p->label, i);
		ck_assert_msg(c.count == 0, "%s: identity %d conflicts",
		              p->label, i);
		json_decref(r);
	}
}

static void
check_triple(prop_ctx *p, const json_t *b, const json_t *o, const json_t *t)
{
	cs_field_conflicts c1 = {0}, c2 = {0}, c3 = {0};
	json_t *r1, *r2, *r3, *rb, *ro, *rt;
	char *p1, *p2, *p3;
	size_t i;

	p->in[0] = b;
	p->in[1] = o;
	p->in[2] = t;
	check_identities(p, b, o);
	check_identities(p, b, t);

	merge_ok(p, &r1, b, o, t, &c1);
	merge_ok(p, &r2, b, t, o, &c2);
	/* Symmetry: the same record, the same conflicts, sides swapped. */
	ck_assert_msg(same(r1, r2), "%s: not symmetric", p->label);
	p1 = pointers(&c1);
	p2 = pointers(&c2);
	ck_assert_msg(strcmp(p1, p2) == 0, "%s: conflicts %s against %s",
	              p->label, p1, p2);
	for (i = 0; i < c1.count; i++) {
		ck_assert(same(c1.items[i].base, c2.items[i].base));
		ck_assert(same(c1.items[i].ours, c2.items[i].theirs));
		ck_assert(same(c1.items[i].theirs, c2.items[i].ours));
	}

	/* Nothing depends on the order members were inserted in. */
	rb = b ? reversed(b) : NULL;
	ro = o ? reversed(o) : NULL;
	rt = t ? reversed(t) : NULL;
	merge_ok(p, &r3, rb, ro, rt, &c3);
	p3 = pointers(&c3);
	ck_assert_msg(same(r1, r3) && strcmp(p1, p3) == 0,
	              "%s: depends on insertion order", p->label);

	/* No change is lost silently. */
	if (r1 != NULL || c1.count == 0) {
		check_no_silent_loss(p, "", b, o, t, r1, &c1);
		check_no_silent_loss(p, "", b, t, o, r1, &c1);
	} else {
		ck_assert(covered(&c1, ""));
	}

	if (c1.count)
		p->with_conflicts++;
	for (i = 0; i < c1.count; i++) {
		if (cs_merge_rule_of(p->rules, c1.items[i].pointer) ==
		    CS_MERGE_SET)
			p->set_conflicts++;
		if (b && o && t && c1.items[i].pointer[0] == '\0')
			p->root_conflicts++;
	}

	/* Valid in, valid out, or a conflict. */
	if (p->type && b && o && t && valid(p->type, b) && valid(p->type, o) &&
	    valid(p->type, t)) {
		p->checked_valid++;
		if (r1 && valid(p->type, r1))
			p->result_valid++;
		else
			ck_assert_msg(c1.count > 0,
			              "%s: valid sides, invalid merge, no "
			              "conflict",
			              p->label);
	}

	free(p1);
	free(p2);
	free(p3);
	json_decref(r1);
	json_decref(r2);
	json_decref(r3);
	json_decref(rb);
	json_decref(ro);
	json_decref(rt);
	cs_field_conflicts_clear(&c1);
	cs_field_conflicts_clear(&c2);
	cs_field_conflicts_clear(&c3);
}

START_TEST(test_property_random)
{
	prop_ctx p = {0};
	uint64_t seed;
	json_t *b, *o, *t;

	for (seed = 1; seed <= 4000; seed++) {
		rng r = {seed};

		p.rules = seed % 4 ? rules("service") : NULL;
		snprintf(p.label, sizeof(p.label), "random seed %llu",
		         (unsigned long long)seed);
		b = random_object(&r, 0);
		o = mutate_random(&r, b);
		switch (below(&r, 8)) {
		case 0:
			t = json_deep_copy(o);
			break;
		case 1:
			t = mutate_random(&r, o);
			break;
		case 2:
			t = NULL;
			break;
		default:
			t = mutate_random(&r, b);
		}
		if (below(&r, 12) == 0) {
			json_decref(b);
			b = NULL;
		}
		check_triple(&p, b, o, t);
		json_decref(b);
		json_decref(o);
		json_decref(t);
	}
	/* The properties were not met vacuously. */
	ck_assert_int_gt(p.with_conflicts, 1000);
}
END_TEST

/* The sample records of one type, and the values they hold. */
typedef struct {
	json_t *records[64];
	size_t count;
	json_t *codes; /* codes.schema.json */
} samples;

static void
samples_load(samples *s, const char *type)
{
	static const char *const orgs[] = {"alcs",   "cefa", "dj",
	                                   "mdm-be", "ms2",  "shared"};
	char dir[1024], path[1200], *names[MAX_FILES];
	size_t i, j, n;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < sizeof(orgs) / sizeof(orgs[0]); i++) {
		snprintf(dir, sizeof(dir), "%s/sample/%s", data_dir(), orgs[i]);
		n = list_json(names, dir);
		for (j = 0; j < n; j++) {
			size_t len = strlen(type);

			if (strncmp(names[j], type, len) == 0 &&
			    names[j][len] == '-' && s->count < 64) {
				snprintf(path, sizeof(path), "%s/%s", dir,
				         names[j]);
				s->records[s->count++] = load(path);
			}
			free(names[j]);
		}
	}
	s->codes = json_object_get(
	        cs_schema_set_get(schemas(), "codes.schema.json"), "$defs");
}

static void
samples_dispose(samples *s)
{
	size_t i;

	for (i = 0; i < s->count; i++)
		json_decref(s->records[i]);
}

/* A code for a set field: from its code list, else from the samples. */
static json_t *
random_code(rng *r, const samples *s, const char *field)
{
	static const char *const lists[][2] = {
	        {"x_languages", "language"},
	        {"x_categories", "category"},
	        {"categories", "category"},
	        {"x_populations", "population"},
	        {"populations", "population"},
	        {"x_access_modes", "access_mode"},
	        {"x_mhpss_layers", "mhpss_layer"},
	        {"methods", "referral_method"},
	};
	const json_t *codes = NULL, *v;
	size_t i;

	for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		if (strcmp(lists[i][0], field) == 0)
			codes = json_object_get(
			        json_object_get(s->codes, lists[i][1]), "enum");
	if (json_array_size(codes))
		return json_deep_copy(json_array_get(
		        codes, below(r, (unsigned)json_array_size(codes))));
	/* Elements the samples use in that field. */
	for (i = 0; i < 16; i++) {
		v = json_object_get(s->records[below(r, (unsigned)s->count)],
		                    field);
		if (json_array_size(v))
			return json_deep_copy(json_array_get(
			        v, below(r, (unsigned)json_array_size(v))));
	}
	return json_string("autre");
}

static const char *
random_key(rng *r, const json_t *obj)
{
	const char *key, *pick = NULL;
	json_t *child;
	unsigned n = 0;

	/* Reservoir sampling over the members: a fixed pick per seed. */
	json_object_foreach ((json_t *)obj, key, child)
		if (below(r, ++n) == 0)
			pick = key;
	return pick;
}

/*
 * One plausible edit of a record, mostly keeping it valid; mostly of the
 * field `focus`, which both sides of a triple share, so that they collide.
 */
static void
edit_sample(rng *r, const samples *s, json_t *rec, const char *focus)
{
	static const char *const levels[] = {"public", "consortium",
	                                     "coordination"};
	static const char *const by[] = {"mdm-be", "ms2",  "alcs",
	                                 "dj",     "cefa", "gadem"};
	static const char *const methods[] = {"phone", "visit", "self_report",
	                                      "import"};
	const json_t *other = s->records[below(r, (unsigned)s->count)];
	const char *key;
	json_t *v, *code;
	char date[16];

	switch (below(r, 7)) {
	case 0: /* a field as another record has it, or absent */
		key = focus && below(r, 3)
		              ? focus
		              : random_key(r, below(r, 2) ? rec : other);
		if (key == NULL || strcmp(key, "id") == 0 ||
		    strcmp(key, "x_record_type") == 0)
			return;
		if ((v = json_object_get(other, key)))
			json_object_set_new(rec, key, json_deep_copy(v));
		else
			json_object_del(rec, key);
		return;
	case 1:
	case 2: /* a set: add or remove a code */
		key = focus && below(r, 4) ? focus : random_key(r, rec);
		v = key ? json_object_get(rec, key) : NULL;
		if (json_is_object(v) &&
		    json_is_array(json_object_get(v, "methods"))) {
			key = "methods";
			v = json_object_get(v, key);
		}
		if (!string_array(v) || v == NULL)
			return;
		if (below(r, 2) && json_array_size(v) > 0)
			json_array_remove(
			        v, below(r, (unsigned)json_array_size(v)));
		else if (!in_strings(v, (code = random_code(r, s, key))))
			json_array_append_new(v, code);
		else
			json_decref(code);
		return;
	case 3: /* a verification */
		snprintf(date, sizeof(date), "2025-%02u-%02u", 1 + below(r, 3),
		         1 + below(r, 3));
		json_object_set_new(rec, "x_verified",
		                    json_pack("{s:s, s:s, s:s}", "date", date,
		                              "by", by[below(r, 6)], "method",
		                              methods[below(r, 4)]));
		return;
	case 4: /* protective fields */
		if (below(r, 4) == 0)
			json_object_del(rec, "x_visibility");
		else
			json_object_set_new(rec, "x_visibility",
			                    json_string(levels[below(r, 3)]));
		if (json_object_get(rec, "x_record_type") &&
		    strcmp(json_string_value(
		                   json_object_get(rec, "x_record_type")),
		           "location") == 0 &&
		    below(r, 2))
			json_object_set_new(
			        rec, "x_sensitivity",
			        json_string(below(r, 2) ? "normal"
			                                : "confidential"));
		return;
	case 5: /* a member of an object, as another record has it */
		key = focus && below(r, 3) ? focus : random_key(r, rec);
		v = key ? json_object_get(rec, key) : NULL;
		if (!json_is_object(v) || strcmp(key, "x_verified") == 0)
			return;
		{
			const json_t *ov = json_object_get(other, key);
			const char *member = random_key(
			        r, below(r, 2) && json_is_object(ov) ? ov : v);

			if (member == NULL)
				return;
			if (json_is_object(ov) && json_object_get(ov, member))
				json_object_set_new(
				        v, member,
				        json_deep_copy(
				                json_object_get(ov, member)));
			else
				json_object_del(v, member);
		}
		return;
	default: /* a text */
		key = below(r, 2) ? "name" : "description";
		if (json_is_string(json_object_get(rec, key))) {
			snprintf(date, sizeof(date), "v%u", below(r, 3));
			json_object_set_new(rec, key, json_string(date));
		}
		return;
	}
}

/* An edit of the field `focus`, by the kind of value it holds. */
static void
edit_focus(rng *r, const samples *s, json_t *rec, const char *focus)
{
	const json_t *other = s->records[below(r, (unsigned)s->count)];
	const json_t *ov = json_object_get(other, focus);
	json_t *v = json_object_get(rec, focus), *code;
	const char *member;
	char text[16];

	if (v && string_array(v) && below(r, 4)) {
		if (below(r, 2) && json_array_size(v) > 0)
			json_array_remove(
			        v, below(r, (unsigned)json_array_size(v)));
		else if (!in_strings(v, (code = random_code(r, s, focus))))
			json_array_append_new(v, code);
		else
			json_decref(code);
	} else if (json_is_object(v) && strcmp(focus, "x_verified") &&
	           below(r, 4)) {
		member = random_key(r,
		                    json_is_object(ov) && below(r, 2) ? ov : v);
		if (member == NULL)
			return;
		if (json_is_object(ov) && json_object_get(ov, member) &&
		    below(r, 3))
			json_object_set_new(
			        v, member,
			        json_deep_copy(json_object_get(ov, member)));
		else if (json_is_string(json_object_get(v, member)) &&
		         below(r, 2))
			json_object_set_new(v, member,
			                    json_sprintf("v%u", below(r, 3)));
		else
			json_object_del(v, member);
	} else if (json_is_string(v) && below(r, 2)) {
		snprintf(text, sizeof(text), "v%u", below(r, 3));
		json_object_set_new(rec, focus, json_string(text));
	} else if (ov && below(r, 4)) {
		json_object_set_new(rec, focus, json_deep_copy(ov));
	} else if (strcmp(focus, "id") && strcmp(focus, "x_record_type")) {
		json_object_del(rec, focus);
	}
}

/* A set field of `rec` holding two elements or more, or NULL. */
static const char *
set_field(rng *r, const json_t *rec)
{
	const char *key, *pick = NULL;
	json_t *v;
	unsigned n = 0;

	json_object_foreach ((json_t *)rec, key, v)
		if (json_array_size(v) >= 2 && string_array(v) &&
		    below(r, ++n) == 0)
			pick = key;
	return pick;
}

static json_t *
mutate_sample(rng *r, const samples *s, const json_t *rec, const char *focus)
{
	json_t *copy = json_deep_copy(rec);
	unsigned n = 1 + below(r, 3);

	while (n-- > 0) {
		if (below(r, 2))
			edit_focus(r, s, copy, focus);
		else
			edit_sample(r, s, copy, focus);
	}
	return copy;
}

START_TEST(test_property_samples)
{
	prop_ctx total = {0};
	size_t ti;

	for (ti = 0; ti < NTYPES; ti++) {
		prop_ctx p = {0};
		samples s;
		uint64_t seed;

		samples_load(&s, types[ti]);
		if (s.count == 0)
			continue;
		p.type = types[ti];
		p.rules = rules(types[ti]);
		for (seed = 1; seed <= 700; seed++) {
			rng r = {seed * 7919 + ti};
			const json_t *base =
			        s.records[below(&r, (unsigned)s.count)];
			const char *focus = random_key(&r, base);
			json_t *o, *t;

			snprintf(p.label, sizeof(p.label), "%s seed %llu",
			         types[ti], (unsigned long long)seed);
			const char *set = set_field(&r, base);
			const json_t *fv = json_object_get(base, set);
			unsigned kind = below(&r, 10);

			if (kind == 0 && set) {
				/* Each side removes one element of a set. */
				focus = set;
				o = json_deep_copy(base);
				t = json_deep_copy(base);
				json_array_remove(
				        json_object_get(o, focus),
				        below(&r,
				              (unsigned)json_array_size(fv)));
				json_array_remove(
				        json_object_get(t, focus),
				        below(&r,
				              (unsigned)json_array_size(fv)));
			} else if (kind == 1) {
				/* Each side removes a field. */
				o = json_deep_copy(base);
				t = json_deep_copy(base);
				json_object_del(o, focus);
				json_object_del(t, random_key(&r, base));
			} else {
				o = mutate_sample(&r, &s, base, focus);
				if (below(&r, 6) == 0)
					t = mutate_sample(&r, &s, o, focus);
				else
					t = mutate_sample(&r, &s, base, focus);
			}
			check_triple(&p, base, o, t);
			json_decref(o);
			json_decref(t);
		}
		total.checked_valid += p.checked_valid;
		total.result_valid += p.result_valid;
		total.with_conflicts += p.with_conflicts;
		total.set_conflicts += p.set_conflicts;
		total.root_conflicts += p.root_conflicts;
		samples_dispose(&s);
	}
	/* Enough valid triples to mean something, and some repaired. */
	ck_assert_int_gt(total.checked_valid, 1500);
	ck_assert_int_gt(total.with_conflicts, 500);
	ck_assert_int_gt(total.set_conflicts, 5);
	ck_assert_int_gt(total.root_conflicts, 0);
	/* With the repair, a valid merge is the rule. */
	ck_assert_int_ge(total.result_valid, total.checked_valid * 95 / 100);
}
END_TEST

/* Random members files: union, monotonic, symmetric. */
START_TEST(test_property_members)
{
	char path[1024];
	json_t *m;
	uint64_t seed;

	snprintf(path, sizeof(path), "%s/sample/consortium/members.json",
	         data_dir());
	m = load(path);
	for (seed = 1; seed <= 600; seed++) {
		rng r = {seed};
		json_t *sides[2], *r1 = NULL, *r2 = NULL, *keys, *k;
		const char *key;
		size_t i;
		int s;

		for (s = 0; s < 2; s++) {
			sides[s] = json_deep_copy(m);
			keys = json_object_get(sides[s], "keys");
			for (i = 0; i < 1 + below(&r, 3); i++) {
				k = json_array_get(
				        keys,
				        below(&r,
				              (unsigned)json_array_size(keys)));
				switch (below(&r, 6)) {
				case 0:
					json_object_set_new(
					        k, "revoked",
					        json_pack(
					                "{s:s, s:s}", "date",
					                below(&r, 2)
					                        ? "2025-05-01"
					                        : "2025-05-02",
					                "reason", "r"));
					break;
				case 1:
					json_object_set_new(
					        k, "role",
					        json_string(below(&r, 2)
					                            ? "member"
					                            : "coordina"
					                              "tor"));
					break;
				case 2:
					json_array_remove(
					        keys,
					        below(&r,
					              (unsigned)json_array_size(
					                      keys)));
					break;
				case 3:
					json_object_set_new(
					        k, "holder",
					        json_string(below(&r, 2)
					                            ? "A"
					                            : "B"));
					break;
				case 4:
					json_object_set_new(
					        json_object_get(
					                json_object_get(
					                        sides[s],
					                        "organization"
					                        "s"),
					                below(&r, 2) ? "dj"
					                             : "cefa"),
					        "removed", json_true());
					break;
				default:
					json_object_set_new(
					        json_object_get(sides[s],
					                        "root"),
					        "threshold",
					        json_integer(1 + below(&r, 3)));
				}
			}
		}
		ck_assert_int_eq(cs_merge_members(&r1, m, sides[0], sides[1]),
		                 0);
		ck_assert_int_eq(cs_merge_members(&r2, m, sides[1], sides[0]),
		                 0);
		ck_assert_msg(same(r1, r2), "members seed %llu: not symmetric",
		              (unsigned long long)seed);
		ck_assert_msg(cs_schema_validate(schemas(),
		                                 "members.schema.json", r1,
		                                 NULL) == 0,
		              "members seed %llu: %s", (unsigned long long)seed,
		              cs_error_last());
		/* Monotonic: every key of every input is there, revoked if
		 * any input revoked it; every removal stays. */
		for (s = -1; s < 2; s++) {
			const json_t *in = s < 0 ? m : sides[s];

			json_array_foreach (json_object_get(in, "keys"), i, k) {
				const json_t *found = NULL, *e;
				size_t j;

				json_array_foreach (json_object_get(r1, "keys"),
				                    j, e)
					if (json_equal(
					            json_object_get(e, "key"),
					            json_object_get(k, "key")))
						found = e;
				ck_assert_ptr_nonnull(found);
				if (json_object_get(k, "revoked"))
					ck_assert_ptr_nonnull(json_object_get(
					        found, "revoked"));
			}
			json_object_foreach (
			        json_object_get(in, "organizations"), key, k)
				if (json_is_true(json_object_get(k, "removed")))
					ck_assert(json_is_true(json_object_get(
					        json_object_get(
					                json_object_get(
					                        r1, "organizati"
					                            "ons"),
					                key),
					        "removed")));
		}
		json_decref(r1);
		json_decref(r2);
		json_decref(sides[0]);
		json_decref(sides[1]);
	}
	json_decref(m);
}
END_TEST

static Suite *
merge_suite(void)
{
	Suite *s = suite_create("merge");
	TCase *tg = tcase_create("golden");
	TCase *ta = tcase_create("api");
	TCase *tp = tcase_create("properties");

	tcase_add_test(tg, test_golden_records);
	tcase_add_test(tg, test_golden_members);
	tcase_add_test(tg, test_golden_policy);
	suite_add_tcase(s, tg);

	tcase_add_test(ta, test_rules_service);
	tcase_add_test(ta, test_rules_all_types);
	tcase_add_test(ta, test_rules_errors);
	tcase_add_test(ta, test_rules_walk);
	tcase_add_test(ta, test_rules_outlive_set);
	tcase_add_test(ta, test_repair_pointers);
	tcase_add_test(ta, test_more_protective);
	tcase_add_test(ta, test_conflicts_append);
	tcase_add_test(ta, test_result_is_a_copy);
	tcase_add_test(ta, test_without_rules);
	tcase_add_test(ta, test_non_object_records);
	tcase_add_test(ta, test_limits);
	tcase_add_test(ta, test_consortium_errors);
	suite_add_tcase(s, ta);

	tcase_add_test(tp, test_property_random);
	tcase_add_test(tp, test_property_samples);
	tcase_add_test(tp, test_property_members);
	tcase_set_timeout(tp, 240);
	suite_add_tcase(s, tp);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(merge_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
