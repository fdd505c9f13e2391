/*
 * cartosync — records as files: paths built from a record and parsed back
 * (no value can steer a path outside records/), UUIDs, the check against
 * the real schemas in schema/ (every case of tests/data/records), and the
 * stored form (canonical bytes, 256 KiB).
 */
#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/record.h"
#include "cartosync/schema.h"

#define ID "d4b229e1-f1cb-4e71-8df3-5bbd97c9be58"
#define PATH_OK "records/ms2/service/d4/" ID ".json"

static json_t *
js(const char *text)
{
	json_error_t err;
	json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &err);

	ck_assert_msg(v != NULL, "test JSON %s: %s", text, err.text);
	return v;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

static cs_schema_set *
real_schemas(void)
{
	const char *dir = getenv("CS_SCHEMA_DIR");
	cs_schema_set *set = NULL;

	ck_assert_msg(dir != NULL, "CS_SCHEMA_DIR is not set");
	ck_assert_int_eq(cs_schema_set_new(&set), 0);
	ck_assert_msg(cs_schema_set_load_dir(set, dir) == 0, "%s",
		      cs_error_last());
	ck_assert_ptr_nonnull(cs_schema_set_get(set, "service.schema.json"));
	return set;
}

static const char *
records_dir(void)
{
	static char dir[PATH_MAX];
	const char *root = getenv("CS_TEST_DATA");

	ck_assert_msg(root != NULL, "CS_TEST_DATA is not set");
	snprintf(dir, sizeof(dir), "%s/records", root);
	return dir;
}

static json_t *
load_record(const char *kind, const char *name)
{
	char path[PATH_MAX + 256];
	json_t *v = NULL;

	snprintf(path, sizeof(path), "%s/%s/%s", records_dir(), kind, name);
	ck_assert_msg(cs_json_load_file(&v, path) == 0, "%s",
		      cs_error_last());
	return v;
}

/* ---------------------------------------------------------------------- */

START_TEST(test_uuid_valid)
{
	ck_assert(cs_uuid_valid(ID));
	ck_assert(cs_uuid_valid("00000000-0000-0000-0000-000000000000"));
	ck_assert(!cs_uuid_valid(NULL));
	ck_assert(!cs_uuid_valid(""));
	ck_assert(!cs_uuid_valid("D4B229E1-F1CB-4E71-8DF3-5BBD97C9BE58"));
	ck_assert(!cs_uuid_valid("d4b229e1-f1cb-4e71-8df3-5bbd97c9be5"));
	ck_assert(!cs_uuid_valid("d4b229e1-f1cb-4e71-8df3-5bbd97c9be58a"));
	ck_assert(!cs_uuid_valid("d4b229e1-f1cb-4e71-8df3-5bbd97c9be58\n"));
	ck_assert(!cs_uuid_valid("d4b229e1f-1cb-4e71-8df3-5bbd97c9be58"));
	ck_assert(!cs_uuid_valid("d4b229e1-f1cb-4e71-8df3-5bbd97c9be5g"));
	ck_assert(!cs_uuid_valid("d4b229e1-f1cb-4e71-8df3+5bbd97c9be58"));
	ck_assert(!cs_uuid_valid("../../../../../../../../../../etc/pa"));
	ck_assert(!cs_uuid_valid("{4b229e1-f1cb-4e71-8df3-5bbd97c9be58}"));
}
END_TEST

static int
cmp_str(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

START_TEST(test_uuid_generate)
{
	enum { N = 1000 };
	static char ids[N][37];

	for (int i = 0; i < N; i++) {
		memset(ids[i], 'z', sizeof(ids[i]));
		ck_assert_int_eq(cs_uuid_generate(ids[i]), 0);
		ck_assert_uint_eq(strlen(ids[i]), 36);
		ck_assert_msg(cs_uuid_valid(ids[i]), "%s", ids[i]);
		/* RFC 4122 version 4, variant 10xx. */
		ck_assert_msg(ids[i][14] == '4', "%s: version", ids[i]);
		ck_assert_msg(strchr("89ab", ids[i][19]) != NULL,
			      "%s: variant", ids[i]);
	}
	qsort(ids, N, sizeof(ids[0]), cmp_str);
	for (int i = 1; i < N; i++)
		ck_assert_msg(strcmp(ids[i - 1], ids[i]) != 0, "duplicate %s",
			      ids[i]);
	/* Random, not a counter: the first digits vary. */
	ck_assert_str_ne(ids[0], ids[N - 1]);
	ck_assert(ids[0][0] != ids[N - 1][0]);
}
END_TEST

START_TEST(test_org_code)
{
	ck_assert(cs_org_code_valid("ms2"));
	ck_assert(cs_org_code_valid("mdm-be"));
	ck_assert(cs_org_code_valid("ab"));
	ck_assert(!cs_org_code_valid("a"));
	ck_assert(!cs_org_code_valid("2ms"));
	ck_assert(!cs_org_code_valid("MS2"));
	ck_assert(!cs_org_code_valid("ms_2"));
	ck_assert(!cs_org_code_valid("ms2/x"));
	ck_assert(!cs_org_code_valid(".."));
	ck_assert(!cs_org_code_valid(NULL));
	ck_assert(cs_org_code_valid("a0123456789012345678901234567890"));
	ck_assert(!cs_org_code_valid("a01234567890123456789012345678901"));
	ck_assert(cs_record_type_known("service"));
	ck_assert(cs_record_type_known("staffcare_session"));
	ck_assert(!cs_record_type_known("Service"));
	ck_assert(!cs_record_type_known("services"));
	ck_assert(!cs_record_type_known(NULL));
}
END_TEST

/* ---------------------------------------------------------------------- */

static json_t *
rec(const char *id, const char *type, const char *owner)
{
	json_t *r = json_object();

	if (id)
		json_object_set_new(r, "id", json_string(id));
	if (type)
		json_object_set_new(r, "x_record_type", json_string(type));
	if (owner)
		json_object_set_new(r, "x_owner", json_string(owner));
	return r;
}

START_TEST(test_record_path)
{
	static const struct {
		const char *id, *type, *owner;
		const char *fragment;
	} bad[] = {
		{"../x", "service", "ms2", "id \"../x\" is not a lowercase UUID"},
		{"D4B229E1-F1CB-4E71-8DF3-5BBD97C9BE58", "service", "ms2",
		 "is not a lowercase UUID"},
		{NULL, "service", "ms2", "no \"id\""},
		{ID, "services", "ms2", "x_record_type \"services\" is not"},
		{ID, "../service", "ms2", "is not a record type"},
		{ID, NULL, "ms2", "is not a record type"},
		{ID, "service", "SHARED", "x_owner \"SHARED\" is not an"
					  " organisation code"},
		{ID, "service", "..", "x_owner \"..\""},
		{ID, "service", "ms2/../alcs", "is not an organisation code"},
		{ID, "service", "", "is not an organisation code"},
		{ID, "service", NULL, "is not an organisation code"},
	};
	char *path = (char *)1;
	json_t *r;

	r = rec(ID, "service", "ms2");
	ck_assert_int_eq(cs_record_path(&path, r), 0);
	ck_assert_str_eq(path, PATH_OK);
	free(path);
	json_decref(r);

	r = rec(ID, "organization", "shared");
	ck_assert_int_eq(cs_record_path(&path, r), 0);
	ck_assert_str_eq(path, "records/shared/organization/d4/" ID ".json");
	free(path);
	json_decref(r);

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		path = (char *)1;
		r = rec(bad[i].id, bad[i].type, bad[i].owner);
		ck_assert_int_eq(cs_record_path(&path, r), CS_EINVALID);
		ck_assert_ptr_null(path);
		ck_assert_msg(strstr(cs_error_last(), bad[i].fragment) != NULL,
			      "case %zu: \"%s\" does not say \"%s\"", i,
			      cs_error_last(), bad[i].fragment);
		json_decref(r);
	}

	/* Not strings, not an object. */
	r = js("{\"id\": 7, \"x_record_type\": \"service\", \"x_owner\":"
	       " \"ms2\"}");
	ck_assert_int_eq(cs_record_path(&path, r), CS_EINVALID);
	json_decref(r);
	r = js("[\"" ID "\"]");
	ck_assert_int_eq(cs_record_path(&path, r), CS_EINVALID);
	ck_assert_ptr_null(path);
	json_decref(r);
}
END_TEST

START_TEST(test_path_parse_valid)
{
	char *owner = NULL, *type = NULL, *id = NULL;

	ck_assert_int_eq(cs_record_path_parse(PATH_OK, &owner, &type, &id), 0);
	ck_assert_str_eq(owner, "ms2");
	ck_assert_str_eq(type, "service");
	ck_assert_str_eq(id, ID);
	free(owner);
	free(type);
	free(id);

	ck_assert_int_eq(cs_record_path_parse("records/shared/referral_flow/"
					      "00/00000000-0000-0000-0000-"
					      "000000000000.json",
					      &owner, NULL, NULL),
			 0);
	ck_assert_str_eq(owner, "shared");
	free(owner);
	ck_assert_int_eq(cs_record_path_parse(PATH_OK, NULL, NULL, NULL), 0);

	/* What cs_record_path() writes, cs_record_path_parse() reads. */
	for (size_t t = 0; cs_record_types[t]; t++) {
		char uuid[37], *path;
		json_t *r;

		ck_assert_int_eq(cs_uuid_generate(uuid), 0);
		r = rec(uuid, cs_record_types[t], "mdm-be");
		ck_assert_int_eq(cs_record_path(&path, r), 0);
		ck_assert_int_eq(cs_record_path_parse(path, &owner, &type, &id),
				 0);
		ck_assert_str_eq(owner, "mdm-be");
		ck_assert_str_eq(type, cs_record_types[t]);
		ck_assert_str_eq(id, uuid);
		free(owner);
		free(type);
		free(id);
		free(path);
		json_decref(r);
	}
}
END_TEST

START_TEST(test_path_parse_invalid)
{
	static const char *const bad[] = {
		"",
		"records",
		"records/",
		"records/ms2/service/d4",
		"records/ms2/service/d4/",
		/* traversal */
		"records/../ms2/service/d4/" ID ".json",
		"records/ms2/../service/d4/" ID ".json",
		"records/ms2/service/../" ID ".json",
		"records/ms2/service/d4/../../../../consortium/members.json",
		"../records/ms2/service/d4/" ID ".json",
		"/records/ms2/service/d4/" ID ".json",
		"records/ms2/service/d4/..json",
		/* the id */
		"records/ms2/service/d4/D4B229E1-F1CB-4E71-8DF3-5BBD97C9BE58"
		".json",
		"records/ms2/service/D4/D4B229E1-F1CB-4E71-8DF3-5BBD97C9BE58"
		".json",
		"records/ms2/service/d4/" ID ".JSON",
		"records/ms2/service/d4/" ID ".json.tmp",
		"records/ms2/service/d4/" ID,
		"records/ms2/service/d4/d4b229e1-f1cb-4e71-8df3-5bbd97c9be5"
		".json",
		/* the shard */
		"records/ms2/service/xx/" ID ".json",
		"records/ms2/service/d5/" ID ".json",
		"records/ms2/service/d/" ID ".json",
		"records/ms2/service/d4b/" ID ".json",
		/* type and owner */
		"records/ms2/services/d4/" ID ".json",
		"records/ms2/Service/d4/" ID ".json",
		"records/SHARED/service/d4/" ID ".json",
		"records/Ms2/service/d4/" ID ".json",
		"records/m/service/d4/" ID ".json",
		"records/ms_2/service/d4/" ID ".json",
		/* segments */
		"records/ms2/service/d4/" ID ".json/x",
		"records/ms2/extra/service/d4/" ID ".json",
		"records/ms2/service/d4/d4/" ID ".json",
		"record/ms2/service/d4/" ID ".json",
		"Records/ms2/service/d4/" ID ".json",
		"consortium/ms2/service/d4/" ID ".json",
		/* empty segments are not segments of a record path */
		"records/ms2//service/d4/" ID ".json",
		"records//ms2/service/d4/" ID ".json",
		"records/ms2/service/d4/" ID ".json/",
	};
	char failures[4096] = "";

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		char *owner = (char *)1;
		int rc;

		cs_error_clear();
		rc = cs_record_path_parse(bad[i], &owner, NULL, NULL);
		if (rc == 0) {
			char line[512];

			snprintf(line, sizeof(line), "accepted \"%.400s\"\n",
				 bad[i]);
			strncat(failures, line,
				sizeof(failures) - strlen(failures) - 1);
			free(owner);
			continue;
		}
		ck_assert_int_eq(rc, CS_EINVALID);
		ck_assert_msg(strstr(cs_error_last(), "is not a record path") !=
				      NULL,
			      "%s", cs_error_last());
	}
	ck_assert_msg(failures[0] == '\0', "%s", failures);
}
END_TEST

/* ---------------------------------------------------------------------- */

START_TEST(test_check_sample)
{
	cs_schema_set *set = real_schemas();
	json_t *r = load_record("valid", "service-minimal.json");
	cs_schema_errors errors = {0};
	char *path;

	ck_assert_int_eq(cs_record_path(&path, r), 0);
	ck_assert_str_eq(path, PATH_OK);
	ck_assert_msg(cs_record_check(set, r, path, path, &errors) == 0, "%s",
		      cs_error_last());
	ck_assert_uint_eq(errors.count, 0);
	ck_assert_int_eq(cs_record_check(set, r, NULL, "x", NULL), 0);

	/* Wrong path. */
	ck_assert_int_eq(cs_record_check(set, r,
					 "records/alcs/service/d4/" ID ".json",
					 "records/alcs/service/d4/" ID ".json",
					 &errors),
			 CS_EINVALID);
	ck_assert_msg(strstr(cs_error_last(), "stored at the wrong path") !=
			      NULL,
		      "%s", cs_error_last());
	ck_assert(strstr(cs_error_last(), PATH_OK) != NULL);
	ck_assert(strncmp(cs_error_last(), "records/alcs/", 13) == 0);

	/* A schema failure: "<name>: <pointer>: <message>", and listed. */
	json_object_set_new(r, "x_status", json_string("pending"));
	ck_assert_int_eq(cs_record_check(set, r, path, "my.json", &errors),
			 CS_EINVALID);
	ck_assert_msg(strncmp(cs_error_last(), "my.json: /x_status: ", 20) ==
			      0,
		      "%s", cs_error_last());
	ck_assert_uint_ge(errors.count, 1);
	ck_assert_str_eq(errors.items[0].pointer, "/x_status");
	cs_schema_errors_clear(&errors);

	/* Unknown type: named, no schema looked up. */
	json_object_set_new(r, "x_record_type", json_string("note"));
	ck_assert_int_eq(cs_record_check(set, r, NULL, "n.json", NULL),
			 CS_EINVALID);
	ck_assert_msg(strstr(cs_error_last(),
			     "n.json: /x_record_type: \"note\"") != NULL,
		      "%s", cs_error_last());
	json_decref(r);

	r = js("[1]");
	ck_assert_int_eq(cs_record_check(set, r, NULL, "a.json", NULL),
			 CS_EINVALID);
	ck_assert(strstr(cs_error_last(), "a.json") != NULL);
	json_decref(r);
	free(path);
	cs_schema_set_free(set);
}
END_TEST

/* Every stored case of tests/data/records through cs_record_check(). */
START_TEST(test_check_data_cases)
{
	cs_schema_set *set = real_schemas();
	char dir[PATH_MAX + 16], failures[8192] = "";
	struct dirent **names;
	int n, checked = 0;

	for (int valid = 1; valid >= 0; valid--) {
		snprintf(dir, sizeof(dir), "%s/%s", records_dir(),
			 valid ? "valid" : "invalid");
		n = scandir(dir, &names, NULL, alphasort);
		ck_assert_int_gt(n, 0);
		for (int i = 0; i < n; i++) {
			const char *name = names[i]->d_name;
			size_t len = strlen(name);
			char line[768] = "", *path = NULL, *expect, *sp;
			char exp_path[PATH_MAX + 512];
			cs_schema_errors errors = {0};
			json_t *r;
			int rc, found = 0;

			if (len < 6 || strcmp(name + len - 5, ".json") != 0) {
				free(names[i]);
				continue;
			}
			r = load_record(valid ? "valid" : "invalid", name);
			/* Checked at its own path when it has one. */
			if (cs_record_path(&path, r) < 0)
				path = NULL;
			rc = cs_record_check(set, r, path, name, &errors);
			if (valid && rc != 0)
				snprintf(line, sizeof(line), "valid/%.100s:"
					 " %.500s\n", name, cs_error_last());
			if (!valid) {
				snprintf(exp_path, sizeof(exp_path),
					 "%s/%.*s.expect", dir, (int)len - 5,
					 name);
				expect = slurp(exp_path, NULL);
				ck_assert_ptr_nonnull(expect);
				expect[strcspn(expect, "\n")] = '\0';
				sp = strchr(expect, ' ');
				ck_assert_ptr_nonnull(sp);
				*sp++ = '\0';
				for (size_t e = 0; e < errors.count; e++)
					found |= strcmp(errors.items[e].pointer,
							expect) == 0 &&
						 strstr(errors.items[e].message,
							sp) != NULL;
				if (rc != CS_EINVALID || !found)
					snprintf(line, sizeof(line),
						 "invalid/%.100s: rc %d, no"
						 " failure at \"%.100s\" saying"
						 " \"%.100s\" (%.300s)\n",
						 name, rc, expect, sp,
						 cs_error_last());
				free(expect);
			}
			if (line[0])
				strncat(failures, line,
					sizeof(failures) - strlen(failures) -
						1);
			checked++;
			cs_schema_errors_clear(&errors);
			json_decref(r);
			free(path);
			free(names[i]);
		}
		free(names);
	}
	ck_assert_int_gt(checked, 80);
	ck_assert_msg(failures[0] == '\0', "%s", failures);
	cs_schema_set_free(set);
}
END_TEST

/* ---------------------------------------------------------------------- */

START_TEST(test_parse_stored)
{
	char path[PATH_MAX + 64], *canon = NULL, *buf;
	size_t len, clen;
	json_t *r = (json_t *)1;

	snprintf(path, sizeof(path), "%s/valid/service-minimal.json",
		 records_dir());
	buf = slurp(path, &len);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(cs_record_parse_stored(&r, buf, len, PATH_OK), 0);
	ck_assert_str_eq(cs_record_id(r), ID);
	ck_assert_str_eq(cs_record_type(r), "service");
	ck_assert_str_eq(cs_record_owner(r), "ms2");
	ck_assert_int_eq(cs_json_canonical(&canon, &clen, r), 0);
	ck_assert_uint_eq(clen, len);
	ck_assert(memcmp(canon, buf, len) == 0);
	json_decref(r);
	free(canon);

	/* Not canonical: no final newline, CRLF, tabs, unsorted keys. */
	ck_assert_int_eq(cs_record_parse_stored(&r, buf, len - 1, PATH_OK),
			 CS_EINVALID);
	ck_assert_ptr_null(r);
	ck_assert_msg(strstr(cs_error_last(), PATH_OK ": not in canonical"
						      " form") != NULL,
		      "%s", cs_error_last());
	{
		static const char *const noncanon[] = {
			"{\"b\": 1, \"a\": 2}\n",
			"{\n  \"b\": 1,\n  \"a\": 2\n}\n",
			"{\n    \"a\": 1\n}\n",
			"{\n\t\"a\": 1\n}\n",
			"{\r\n  \"a\": 1\r\n}\r\n",
			"{\n  \"a\": 1\n}\n\n",
			"{\n  \"a\":1\n}\n",
			"{\n  \"a\": 1.50\n}\n",
			"{\n  \"a\": \"\\u00e9\"\n}\n",
			"{\n  \"a\": []\n}\n ",
			"{\n  \"a\": [\n  ]\n}\n",
		};

		for (size_t i = 0; i < sizeof(noncanon) / sizeof(*noncanon);
		     i++) {
			ck_assert_msg(cs_record_parse_stored(
					      &r, noncanon[i],
					      strlen(noncanon[i]), "x.json") ==
					      CS_EINVALID,
				      "accepted %s", noncanon[i]);
			ck_assert_ptr_null(r);
			ck_assert(strncmp(cs_error_last(), "x.json: ", 8) ==
				  0);
		}
	}
	/* Strict JSON: a duplicate key is refused, not merged. */
	ck_assert_int_eq(cs_record_parse_stored(&r,
						"{\n  \"a\": 1,\n  \"a\": 1\n}\n",
						22, "d.json"),
			 CS_EINVALID);
	ck_assert(strstr(cs_error_last(), "duplicate") != NULL);
	free(buf);
}
END_TEST

/* A canonical {"x": "aaa..."} of exactly `len` bytes: 14 around the pad. */
static char *
canonical_of_size(size_t len)
{
	char *buf = malloc(len + 1);

	ck_assert_uint_gt(len, 14);
	memcpy(buf, "{\n  \"x\": \"", 10);
	memset(buf + 10, 'a', len - 14);
	memcpy(buf + len - 4, "\"\n}\n", 4);
	buf[len] = '\0';
	return buf;
}

START_TEST(test_parse_stored_limit)
{
	size_t at = CS_RECORD_MAX_BYTES;
	char *buf = canonical_of_size(at);
	json_t *r = NULL;

	ck_assert(cs_json_is_canonical(buf, at));
	ck_assert_msg(cs_record_parse_stored(&r, buf, at, "big.json") == 0,
		      "%s", cs_error_last());
	ck_assert_uint_eq(strlen(json_string_value(json_object_get(r, "x"))),
			  at - 14);
	json_decref(r);
	free(buf);

	buf = canonical_of_size(at + 1);
	ck_assert_int_eq(cs_record_parse_stored(&r, buf, at + 1, "big.json"),
			 CS_ELIMIT);
	ck_assert_ptr_null(r);
	ck_assert_msg(strstr(cs_error_last(), "big.json") != NULL &&
			      strstr(cs_error_last(), "262145") != NULL &&
			      strstr(cs_error_last(), "limit") != NULL,
		      "%s", cs_error_last());
	free(buf);

	/* Far over: refused before parsing. */
	buf = canonical_of_size(4 * at);
	ck_assert_int_eq(cs_record_parse_stored(&r, buf, 4 * at, "big.json"),
			 CS_ELIMIT);
	free(buf);
}
END_TEST

static Suite *
record_suite(void)
{
	Suite *s = suite_create("record");
	TCase *tc = tcase_create("record");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_uuid_valid);
	tcase_add_test(tc, test_uuid_generate);
	tcase_add_test(tc, test_org_code);
	tcase_add_test(tc, test_record_path);
	tcase_add_test(tc, test_path_parse_valid);
	tcase_add_test(tc, test_path_parse_invalid);
	tcase_add_test(tc, test_check_sample);
	tcase_add_test(tc, test_check_data_cases);
	tcase_add_test(tc, test_parse_stored);
	tcase_add_test(tc, test_parse_stored_limit);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(record_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
