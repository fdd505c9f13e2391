/*
 * Unit tests of lib/schema.c: our messages and pointers, references
 * between documents, limits, patterns, and the official
 * JSON-Schema-Test-Suite for draft-07 (Debian: json-schema-test-suite).
 *
 * The suite is found at $CS_JSON_SCHEMA_SUITE (the suite's root, holding
 * tests/draft7, or the draft7 directory itself), else at
 * /usr/share/json-schema-test-suite.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cartosync/error.h"
#include "cartosync/schema.h"

/* ---------------------------------------------------------------------- */
/* Helpers */

static json_t *
js(const char *text)
{
	json_error_t err;
	json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
	                       &err);

	ck_assert_msg(v != NULL, "test JSON %s: %s", text, err.text);
	return v;
}

static cs_schema_set *
set_with(const char *name, const char *schema)
{
	cs_schema_set *set = NULL;
	json_t *doc = js(schema);

	ck_assert_int_eq(cs_schema_set_new(&set), 0);
	ck_assert_msg(cs_schema_set_add(set, name, doc) == 0, "add %s: %s",
	              name, cs_error_last());
	json_decref(doc);
	return set;
}

static void
add(cs_schema_set *set, const char *name, const char *schema)
{
	json_t *doc = js(schema);

	ck_assert_msg(cs_schema_set_add(set, name, doc) == 0, "add %s: %s",
	              name, cs_error_last());
	json_decref(doc);
}

/* Validate and return the code; errors are left in `errors`. */
static int
check(const cs_schema_set *set, const char *name, const char *instance,
      cs_schema_errors *errors)
{
	json_t *inst = js(instance);
	int rc = cs_schema_validate(set, name, inst, errors);

	json_decref(inst);
	return rc;
}

/* Exactly one failure, at `pointer`, saying `message`. */
static void
assert_one(const cs_schema_set *set, const char *instance, const char *pointer,
           const char *message)
{
	cs_schema_errors errors = {0};

	ck_assert_int_eq(check(set, "s.json", instance, &errors), CS_EINVALID);
	ck_assert_msg(errors.count == 1, "%s: %zu failures, first \"%s\"",
	              instance, errors.count,
	              errors.count ? errors.items[0].message : "");
	ck_assert_str_eq(errors.items[0].pointer, pointer);
	ck_assert_str_eq(errors.items[0].message, message);
	cs_schema_errors_clear(&errors);
}

static void
assert_valid(const cs_schema_set *set, const char *instance)
{
	cs_schema_errors errors = {0};
	int rc = check(set, "s.json", instance, &errors);

	ck_assert_msg(rc == 0, "%s: %s", instance, cs_error_last());
	ck_assert_uint_eq(errors.count, 0);
}

/* ---------------------------------------------------------------------- */
/* Messages and pointers */

static const char *codes_schema =
        "{\"$defs\": {\"region\": {\"title\": \"Region codes\","
        "  \"enum\": [\"MA-01\", \"MA-04\"]}}}";

static const char *service_schema =
        "{\"type\": \"object\","
        " \"required\": [\"name\", \"region\"],"
        " \"additionalProperties\": false,"
        " \"properties\": {"
        "   \"name\": {\"type\": \"string\", \"minLength\": 1,"
        "              \"maxLength\": 200},"
        "   \"region\": {\"$ref\": \"codes.json#/$defs/region\"},"
        "   \"phones\": {\"type\": \"array\", \"items\": {"
        "     \"type\": \"object\", \"required\": [\"number\"],"
        "     \"properties\": {\"number\": {\"type\": \"string\","
        "       \"pattern\": \"^\\\\+?[0-9 ]+$\"}}}}"
        " }}";

START_TEST(test_messages_record)
{
	cs_schema_set *set = NULL;
	cs_schema_errors errors = {0};

	ck_assert_int_eq(cs_schema_set_new(&set), 0);
	add(set, "codes.json", codes_schema);
	add(set, "service.json", service_schema);

	ck_assert_int_eq(check(set, "service.json",
	                       "{\"name\": \"Centre\", \"region\": \"MA-04\","
	                       " \"phones\": [{\"number\": \"+212 5 37\"}]}",
	                       &errors),
	                 0);
	ck_assert_uint_eq(errors.count, 0);

	ck_assert_int_eq(check(set, "service.json",
	                       "{\"region\": \"MA-99\", \"foo\": 1,"
	                       " \"phones\": [{\"number\": \"+212\"},"
	                       "  {\"number\": \"abc\"}, {}]}",
	                       &errors),
	                 CS_EINVALID);
	ck_assert_uint_eq(errors.count, 5);
	ck_assert_str_eq(errors.items[0].pointer, "");
	ck_assert_str_eq(errors.items[0].message,
	                 "missing required property \"name\"");
	ck_assert_str_eq(errors.items[1].pointer, "/region");
	ck_assert_str_eq(errors.items[1].message,
	                 "\"MA-99\" is not one of the region codes");
	ck_assert_str_eq(errors.items[2].pointer, "/phones/1/number");
	ck_assert_str_eq(errors.items[2].message,
	                 "\"abc\" does not match the pattern "
	                 "\"^\\\\+?[0-9 ]+$\"");
	ck_assert_str_eq(errors.items[3].pointer, "/phones/2");
	ck_assert_str_eq(errors.items[3].message,
	                 "missing required property \"number\"");
	ck_assert_str_eq(errors.items[4].pointer, "");
	ck_assert_str_eq(errors.items[4].message,
	                 "property \"foo\" is not allowed");
	/* The first failure is also the thread's message. */
	ck_assert_str_eq(cs_error_last(), "missing required property \"name\"");

	/* Appended, not replaced. */
	ck_assert_int_eq(check(set, "service.json", "[]", &errors),
	                 CS_EINVALID);
	ck_assert_uint_eq(errors.count, 6);
	ck_assert_str_eq(errors.items[5].message,
	                 "expected an object, got an array");
	cs_schema_errors_clear(&errors);
	ck_assert_uint_eq(errors.count, 0);
	ck_assert_ptr_null(errors.items);

	/* Without a list, the verdict and the first message only. */
	ck_assert_int_eq(check(set, "service.json",
	                       "{\"name\": \"x\", \"region\": \"MA-99\"}",
	                       NULL),
	                 CS_EINVALID);
	ck_assert_str_eq(cs_error_last(),
	                 "/region: \"MA-99\" is not one of the region codes");

	/* A pointer suffix starts inside a document. */
	ck_assert_int_eq(
	        check(set, "codes.json#/$defs/region", "\"MA-01\"", NULL), 0);
	ck_assert_int_eq(
	        check(set, "codes.json#/$defs/region", "\"MA-02\"", NULL),
	        CS_EINVALID);
	cs_schema_set_free(set);
}
END_TEST

START_TEST(test_messages_keywords)
{
	cs_schema_set *set;

	set = set_with("s.json", "{\"type\": \"string\"}");
	assert_one(set, "12", "", "expected a string, got a number");
	assert_one(set, "1.5", "", "expected a string, got a number");
	assert_one(set, "null", "", "expected a string, got null");
	assert_one(set, "{}", "", "expected a string, got an object");
	cs_schema_set_free(set);

	set = set_with("s.json", "{\"type\": [\"string\", \"null\"],"
	                         " \"enum\": [\"a\", null]}");
	assert_one(set, "true", "", "expected a string or null, got a boolean");
	assert_one(set, "\"b\"", "", "\"b\" is not one of the allowed values");
	cs_schema_set_free(set);

	set = set_with("s.json", "{\"type\": [\"integer\", \"boolean\", "
	                         "\"array\"]}");
	assert_one(set, "1.5", "",
	           "expected an integer, a boolean or an array, got a number");
	assert_valid(set, "2.0");
	cs_schema_set_free(set);

	set = set_with("s.json", "{\"maxLength\": 3, \"minLength\": 2}");
	assert_valid(set, "\"\xc3\xa9\xc3\xa9\xc3\xa9\"");
	assert_one(set, "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"", "",
	           "is longer than 3 characters");
	assert_one(set, "\"\xf0\x9f\x98\x80\"", "",
	           "is shorter than 2 characters");
	cs_schema_set_free(set);

	set = set_with("s.json", "{\"maxLength\": 1}");
	assert_one(set, "\"ab\"", "", "is longer than 1 character");
	cs_schema_set_free(set);

	set = set_with("s.json", "{\"minimum\": -90, \"maximum\": 90,"
	                         " \"multipleOf\": 0.5}");
	assert_one(set, "-91", "", "-91 is less than -90");
	assert_one(set, "90.5", "", "90.5 is greater than 90");
	assert_one(set, "1.25", "", "1.25 is not a multiple of 0.5");
	assert_valid(set, "-89.5");
	cs_schema_set_free(set);

	set = set_with("s.json", "{\"exclusiveMinimum\": 0,"
	                         " \"exclusiveMaximum\": 1}");
	assert_one(set, "0", "", "0 is not greater than 0");
	assert_one(set, "1.0", "", "1 is not less than 1");
	cs_schema_set_free(set);

	set = set_with("s.json", "{\"const\": \"fixed\"}");
	assert_one(set, "\"other\"", "",
	           "\"other\" is not the required value \"fixed\"");
	cs_schema_set_free(set);

	set = set_with("s.json", "{\"minItems\": 2, \"maxItems\": 3,"
	                         " \"uniqueItems\": true}");
	assert_one(set, "[1]", "", "has fewer than 2 items");
	assert_one(set, "[1, 2, 3, 4]", "", "has more than 3 items");
	assert_one(set, "[1, \"a\", 1.0]", "", "has equal items at 0 and 2");
	cs_schema_set_free(set);

	set = set_with("s.json", "{\"minProperties\": 1,"
	                         " \"maxProperties\": 2}");
	assert_one(set, "{}", "", "has fewer than 1 property");
	assert_one(set, "{\"a\":1,\"b\":2,\"c\":3}", "",
	           "has more than 2 properties");
	cs_schema_set_free(set);

	set = set_with("s.json", "{\"items\": [{\"type\": \"string\"}],"
	                         " \"additionalItems\": false,"
	                         " \"contains\": {\"type\": \"number\"}}");
	assert_one(set, "[\"a\", 2]", "", "has more than 1 item");
	assert_one(set, "[\"a\"]", "", "does not contain a matching item");
	assert_one(set, "[3]", "/0", "expected a string, got a number");
	cs_schema_set_free(set);

	set = set_with("s.json", "{\"dependencies\": {\"lat\": [\"lon\"]},"
	                         " \"propertyNames\": {\"pattern\": "
	                         "\"^[a-z]+$\"}}");
	assert_one(set, "{\"lat\": 1}", "",
	           "property \"lat\" requires property \"lon\"");
	assert_one(set, "{\"Lat\": 1}", "",
	           "\"Lat\" is not an allowed property name");
	cs_schema_set_free(set);

	set = set_with("s.json", "{\"properties\": {\"gone\": false}}");
	assert_one(set, "{\"gone\": 1}", "",
	           "property \"gone\" is not allowed");
	cs_schema_set_free(set);

	set = set_with("s.json", "false");
	assert_one(set, "1", "", "no value is allowed here");
	cs_schema_set_free(set);
}
END_TEST

START_TEST(test_messages_combinators)
{
	cs_schema_set *set;

	/* One message where no branch matches, not one per branch. */
	set = set_with("s.json",
	               "{\"properties\": {\"contact\": {\"anyOf\": ["
	               "{\"type\": \"string\", \"minLength\": 5},"
	               "{\"type\": \"object\", \"required\": [\"a\"]},"
	               "{\"type\": \"null\"}]}}}");
	assert_one(set, "{\"contact\": \"abc\"}", "/contact",
	           "does not match any of the allowed forms");
	assert_valid(set, "{\"contact\": null}");
	cs_schema_set_free(set);

	set = set_with("s.json", "{\"oneOf\": [{\"type\": \"integer\"},"
	                         " {\"minimum\": 2}]}");
	assert_one(set, "3", "", "matches more than one of the allowed forms");
	assert_one(set, "1.5", "", "does not match any of the allowed forms");
	assert_valid(set, "1");
	assert_valid(set, "2.5");
	cs_schema_set_free(set);

	set = set_with("s.json", "{\"not\": {\"type\": \"null\"}}");
	assert_one(set, "null", "", "matches a form that is not allowed");
	cs_schema_set_free(set);

	/* allOf, then and else report their own failures. */
	set = set_with("s.json", "{\"if\": {\"required\": [\"kind\"],"
	                         " \"properties\": {\"kind\": "
	                         "{\"const\": \"phone\"}}},"
	                         " \"then\": {\"required\": [\"number\"]},"
	                         " \"else\": {\"required\": [\"email\"]},"
	                         " \"allOf\": [{\"required\": [\"kind\"]}]}");
	assert_one(set, "{\"kind\": \"phone\"}", "",
	           "missing required property \"number\"");
	assert_one(set, "{\"kind\": \"mail\"}", "",
	           "missing required property \"email\"");
	assert_one(set, "{\"email\": \"a@b\"}", "",
	           "missing required property \"kind\"");
	cs_schema_set_free(set);
}
END_TEST

START_TEST(test_pointers_escaped)
{
	cs_schema_set *set;
	cs_schema_errors errors = {0};

	set = set_with("s.json", "{\"additionalProperties\": "
	                         "{\"type\": \"integer\"}}");
	ck_assert_int_eq(check(set, "s.json",
	                       "{\"a/b\": \"x\", \"m~n\": \"y\", \"\": \"z\"}",
	                       &errors),
	                 CS_EINVALID);
	ck_assert_uint_eq(errors.count, 3);
	ck_assert_str_eq(errors.items[0].pointer, "/a~1b");
	ck_assert_str_eq(errors.items[1].pointer, "/m~0n");
	ck_assert_str_eq(errors.items[2].pointer, "/");
	ck_assert_str_eq(errors.items[0].message,
	                 "expected an integer, got a string");
	cs_schema_errors_clear(&errors);
	cs_schema_set_free(set);

	/* Values quoted in messages stay on one line and are cut. */
	set = set_with("s.json", "{\"enum\": [1]}");
	assert_one(set, "\"a\\nb\\\"c\"", "",
	           "\"a\\u000ab\\\"c\" is not one of the allowed values");
	assert_one(set, "\"0123456789012345678901234567890123456789XYZ\"", "",
	           "\"0123456789012345678901234567890123456789...\" is not "
	           "one of the allowed values");
	assert_one(set, "[1]", "",
	           "the array is not one of the allowed values");
	cs_schema_set_free(set);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* References and sets */

START_TEST(test_refs_across_documents)
{
	cs_schema_set *set = NULL;
	cs_schema_errors errors = {0};
	json_t *doc;

	/* Added before what it refers to: it resolves once that arrives. */
	ck_assert_int_eq(cs_schema_set_new(&set), 0);
	add(set, "service.json", service_schema);
	ck_assert_int_eq(check(set, "service.json",
	                       "{\"name\": \"x\", \"region\": \"MA-01\"}",
	                       NULL),
	                 CS_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(cs_error_last(),
	                             "\"codes.json#/$defs/region\" does not "
	                             "resolve"));
	/* A branch never taken does not need to resolve. */
	ck_assert_int_eq(
	        check(set, "service.json", "{\"name\": \"x\"}", &errors),
	        CS_EINVALID);
	ck_assert_uint_eq(errors.count, 1);
	cs_schema_errors_clear(&errors);

	add(set, "codes.json", codes_schema);
	ck_assert_int_eq(check(set, "service.json",
	                       "{\"name\": \"x\", \"region\": \"MA-01\"}",
	                       NULL),
	                 0);

	ck_assert_ptr_nonnull(cs_schema_set_get(set, "codes.json"));
	ck_assert_ptr_null(cs_schema_set_get(set, "nope.json"));
	ck_assert_int_eq(check(set, "nope.json", "{}", NULL), CS_ENOTFOUND);
	ck_assert_int_eq(check(set, "codes.json#/$defs/nope", "{}", NULL),
	                 CS_ENOTFOUND);
	ck_assert_int_eq(
	        check(set, "codes.json#/$defs/region/title", "{}", NULL),
	        CS_EINVALID);

	doc = js("{}");
	ck_assert_int_eq(cs_schema_set_add(set, "codes.json", doc), CS_EEXISTS);
	json_decref(doc);
	doc = js("[1]");
	ck_assert_int_eq(cs_schema_set_add(set, "list.json", doc), CS_EINVALID);
	json_decref(doc);
	cs_schema_set_free(set);
	cs_schema_set_free(NULL);
}
END_TEST

/*
 * Documents added together are compiled together: references between them
 * resolve whatever their order, and a batch with one bad document (or a
 * name taken twice, even within the batch) leaves the set as it was.
 */
START_TEST(test_add_all)
{
	cs_schema_set *set = set_with("base.json", "{\"type\": \"object\"}");
	const char *names[3] = {"service.json", "codes.json", "other.json"};
	json_t *docs[3] = {
	        js("{\"properties\": {\"region\": {\"$ref\":"
	           " \"codes.json#/$defs/region\"}}}"),
	        js("{\"$defs\": {\"region\": {\"pattern\": \"^MA-[0-9]+$\"}}}"),
	        js("{\"pattern\": \"(\"}")};
	cs_schema_errors errors = {0};

	/* A pattern that does not compile: nothing of the batch is added. */
	ck_assert_int_eq(cs_schema_set_add_all(set, 3, names, docs),
	                 CS_EINVALID);
	ck_assert_ptr_nonnull(strstr(cs_error_last(), "other.json"));
	ck_assert_ptr_null(cs_schema_set_get(set, "service.json"));
	ck_assert_ptr_null(cs_schema_set_get(set, "codes.json"));
	ck_assert_int_eq(check(set, "base.json", "{}", NULL), 0);

	/* The same name twice in one batch. */
	names[2] = "codes.json";
	ck_assert_int_eq(cs_schema_set_add_all(set, 3, names, docs),
	                 CS_EEXISTS);
	ck_assert_ptr_null(cs_schema_set_get(set, "service.json"));

	/* The first two: the reference resolves to the later document. */
	ck_assert_msg(cs_schema_set_add_all(set, 2, names, docs) == 0, "%s",
	              cs_error_last());
	ck_assert_int_eq(check(set, "service.json", "{\"region\": \"MA-04\"}",
	                       NULL),
	                 0);
	ck_assert_int_eq(check(set, "service.json", "{\"region\": \"XX\"}",
	                       &errors),
	                 CS_EINVALID);
	ck_assert_uint_eq(errors.count, 1);
	cs_schema_errors_clear(&errors);
	ck_assert_int_eq(cs_schema_set_add_all(set, 1, names, docs),
	                 CS_EEXISTS);
	for (int i = 0; i < 3; i++)
		json_decref(docs[i]);
	cs_schema_set_free(set);
}
END_TEST

START_TEST(test_refs_pointers)
{
	cs_schema_set *set;

	/* RFC 6901 escapes and URI percent-encoding in fragments. */
	set = set_with("s.json",
	               "{\"definitions\": {\"a/b\": {\"type\": \"integer\"},"
	               "  \"c~d\": {\"type\": \"string\"},"
	               "  \"e f\": {\"type\": \"boolean\"}},"
	               " \"x-lists\": {\"list\": [{\"type\": \"null\"}]},"
	               " \"properties\": {"
	               "  \"x\": {\"$ref\": \"#/definitions/a~1b\"},"
	               "  \"y\": {\"$ref\": \"#/definitions/c~0d\"},"
	               "  \"z\": {\"$ref\": \"#/definitions/e%20f\"},"
	               "  \"w\": {\"$ref\": \"#/x-lists/list/0\"},"
	               "  \"v\": {\"$ref\": \"s.json#/definitions/a~1b\","
	               "          \"maxLength\": 0}}}");
	assert_valid(set, "{\"x\": 1, \"y\": \"s\", \"z\": true, \"w\": null,"
	                  " \"v\": 2}");
	assert_one(set, "{\"x\": \"1\"}", "/x",
	           "expected an integer, got a string");
	assert_one(set, "{\"y\": 1}", "/y", "expected a string, got a number");
	assert_one(set, "{\"z\": 1}", "/z", "expected a boolean, got a number");
	assert_one(set, "{\"w\": 1}", "/w", "expected null, got a number");
	/* draft-07: siblings of $ref are ignored. */
	assert_valid(set, "{\"v\": 12}");
	cs_schema_set_free(set);
}
END_TEST

START_TEST(test_ref_cycles)
{
	cs_schema_set *set;
	json_t *inst;
	int i;

	set = set_with("s.json", "{\"$ref\": \"#\"}");
	ck_assert_int_eq(check(set, "s.json", "{}", NULL), CS_ELIMIT);
	ck_assert_ptr_nonnull(strstr(cs_error_last(), "$ref cycle"));
	cs_schema_set_free(set);

	set = set_with("s.json", "{\"definitions\": {"
	                         "  \"a\": {\"$ref\": \"#/definitions/b\"},"
	                         "  \"b\": {\"anyOf\": [{\"$ref\": "
	                         "\"#/definitions/a\"}]}},"
	                         " \"$ref\": \"#/definitions/a\"}");
	ck_assert_int_eq(check(set, "s.json", "1", NULL), CS_ELIMIT);
	cs_schema_set_free(set);

	/* A recursive schema over a deep instance is no cycle. */
	set = set_with("s.json", "{\"type\": \"array\", \"items\": "
	                         "{\"$ref\": \"#\"}}");
	inst = json_array();
	for (i = 0; i < 100; i++)
		inst = json_pack("[o]", inst);
	ck_assert_int_eq(cs_schema_validate(set, "s.json", inst, NULL), 0);
	json_decref(inst);
	cs_schema_set_free(set);
}
END_TEST

START_TEST(test_error_limit)
{
	cs_schema_set *set;
	cs_schema_errors errors = {0};
	json_t *inst;
	int i;

	set = set_with("s.json", "{\"items\": {\"type\": \"string\"}}");
	inst = json_array();
	for (i = 0; i < 500; i++)
		json_array_append_new(inst, json_integer(i));
	ck_assert_int_eq(cs_schema_validate(set, "s.json", inst, &errors),
	                 CS_EINVALID);
	ck_assert_uint_eq(errors.count, 100);
	ck_assert_str_eq(errors.items[99].pointer, "/99");
	cs_schema_errors_clear(&errors);
	json_decref(inst);
	cs_schema_set_free(set);
}
END_TEST

START_TEST(test_add_rejects_bad_schemas)
{
	static const struct {
		const char *schema;
		const char *part;
	} bad[] = {
	        {"{\"pattern\": \"([a-z]\"}", "does not compile"},
	        {"{\"properties\": {\"a\": {\"pattern\": \"\\\\bword\"}}}",
	         "s.json#/properties/a"},
	        {"{\"patternProperties\": {\"(?=x)\": {}}}", "lookaround"},
	        {"{\"pattern\": \"a\\\\1\"}", "back references"},
	        /* glibc would exhaust memory on these: refused up front. */
	        {"{\"pattern\": \"b+++++++++++++++++++++++++++++++\"}",
	         "without anything to repeat"},
	        {"{\"pattern\": "
	         "\"(((((((((((((((b+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+\"}",
	         "too complex"},
	        {"{\"pattern\": \"(a{1000}){1000}\"}", "too complex"},
	        {"{\"pattern\": \"a{1001}\"}", "above 1000"},
	        {"{\"pattern\": \"a{3,2}\"}", "out of order"},
	        {"{\"pattern\": \"(a\"}", "unterminated"},
	        {"{\"pattern\": \"a)\"}", "unmatched"},
	        {"{\"pattern\": \"*a\"}", "without anything to repeat"},
	        {"{\"maxLength\": -1}", "non-negative integer"},
	        {"{\"type\": \"text\"}", "no known type"},
	        {"{\"required\": \"name\"}", "array of names"},
	        {"{\"anyOf\": []}", "non-empty array"},
	        {"{\"multipleOf\": 0}", "above 0"},
	        {"{\"items\": 3}", "must be a schema"},
	        {"{\"definitions\": {\"x\": {\"minimum\": \"0\"}}}",
	         "s.json#/definitions/x"},
	        {"[]", "not an object or boolean"},
	};
	cs_schema_set *set = NULL;
	json_t *doc;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(cs_schema_set_new(&set), 0);
		doc = js(bad[i].schema);
		ck_assert_msg(cs_schema_set_add(set, "s.json", doc) ==
		                      CS_EINVALID,
		              "%s was accepted", bad[i].schema);
		ck_assert_msg(strstr(cs_error_last(), bad[i].part) != NULL,
		              "%s: \"%s\" lacks \"%s\"", bad[i].schema,
		              cs_error_last(), bad[i].part);
		/* A failed add leaves the set as it was. */
		ck_assert_ptr_null(cs_schema_set_get(set, "s.json"));
		json_decref(doc);
		cs_schema_set_free(set);
	}

	/* Data that merely looks like a schema is not compiled as one. */
	set = set_with("s.json", "{\"enum\": [{\"pattern\": \"((\"}],"
	                         " \"examples\": [{\"type\": 3}],"
	                         " \"x-note\": {\"pattern\": \"((\"}}");
	assert_valid(set, "{\"pattern\": \"((\"}");
	/* ...unless validation is asked to start there. */
	ck_assert_int_eq(check(set, "s.json#/x-note", "\"a\"", NULL),
	                 CS_EINVALID);
	cs_schema_set_free(set);
}
END_TEST

START_TEST(test_patterns)
{
	static const struct {
		const char *pattern; /* as a JSON string body */
		const char *text;    /* as a JSON string body */
		int matches;
	} cases[] = {
	        {"^\\\\d{3}$", "123", 1},
	        {"^\\\\d{3}$", "12a", 0},
	        {"^\\\\D+$", "abc", 1},
	        {"^\\\\D+$", "a1c", 0},
	        {"^\\\\w+$", "a_Z9", 1},
	        {"^\\\\w+$", "a-b", 0},
	        {"^\\\\W$", "-", 1},
	        {"^\\\\s\\\\S$", " x", 1},
	        {"^\\\\s\\\\S$", "  ", 0},
	        {"^[\\\\d.-]+$", "1.5-2", 1},
	        {"^[\\\\d.-]+$", "1,5", 0},
	        {"^[\\\\]a]+$", "]a]", 1},
	        {"^[\\\\^]$", "^", 1},
	        {"^[^\\\\^]$", "^", 0},
	        {"^[\\\\\\\\/]$", "\\\\", 1},
	        {"^[\\\\[\\\\]]+$", "[]", 1},
	        {"^[\\\\w\\\\s]+$", "a b_c", 1},
	        {"^[^\\\\s]+$", "a b", 0},
	        {"a{", "xa{", 1},
	        {"^a{2}$", "aa", 1},
	        {"^a{2,}?$", "aaa", 1},
	        {"^a+?b*?$", "aab", 1},
	        {"^(?:ab)+$", "abab", 1},
	        {"^.$", "\xc3\xa9", 1},
	        /* One pattern, an ASCII subject (matched byte-wise) and a
	         * non-ASCII one (by code point): the same answer. */
	        {"^.{3}$", "abc", 1},
	        {"^.{3}$", "ab\xc3\xa9", 1},
	        {"^.{3}$", "abcd", 0},
	        {"^[^a]{2}$", "\xc3\xa9\xc3\xa9", 1},
	        {"^[^a]{2}$", "bc", 1},
	        {"^.$", "\\n", 0},
	        {"^[\\u00e0-\\u00ff]$", "\xc3\xa9", 1},
	        {"^[\\u00e0-\\u00ff]$", "e", 0},
	        {"^[^\\u0600-\\u06ff]+$", "ab", 1},
	        {"^[^\\u0600-\\u06ff]+$", "a\xd8\xa7", 0},
	        {"^[a-\\u00ff]$", "\xc3\xa9", 1},
	        {"^[a-\\u00ff]$", "Z", 0},
	        {"^[\\\\u0600-\\\\u06ff]$", "\xd8\xa7", 1},
	        {"^[\\\\u0600-\\\\u06ff]$", "a", 0},
	        {"^\\\\u00e9$", "\xc3\xa9", 1},
	        {"^\\\\x41$", "A", 1},
	        {"^\\\\/\\\\-$", "/-", 1},
	        {"^a\\\\.b$", "a.b", 1},
	        {"^a\\\\.b$", "axb", 0},
	        {"b", "abc", 1},
	        {"^(|x)$", "", 1},
	        {"^MA-[0-9]{2}$", "MA-04", 1},
	        {"^MA-[0-9]{2}$", "XMA-04", 0},
	        {"\\\\}", "}", 1},
	};
	char schema[256], instance[256];
	cs_schema_set *set;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(schema, sizeof(schema), "{\"pattern\": \"%s\"}",
		         cases[i].pattern);
		snprintf(instance, sizeof(instance), "\"%s\"", cases[i].text);
		set = set_with("s.json", schema);
		rc = check(set, "s.json", instance, NULL);
		ck_assert_msg(rc == (cases[i].matches ? 0 : CS_EINVALID),
		              "pattern %s on %s: got %d", cases[i].pattern,
		              cases[i].text, rc);
		cs_schema_set_free(set);
	}
}
END_TEST

START_TEST(test_numbers_and_equality)
{
	cs_schema_set *set;

	set = set_with("s.json", "{\"type\": \"integer\"}");
	assert_valid(set, "1.0");
	assert_valid(set, "-0.0");
	assert_one(set, "1.5", "", "expected an integer, got a number");
	cs_schema_set_free(set);

	set = set_with("s.json", "{\"enum\": [1, {\"a\": [2.0]}]}");
	assert_valid(set, "1.0");
	assert_valid(set, "{\"a\": [2]}");
	assert_one(set, "true", "", "true is not one of the allowed values");
	cs_schema_set_free(set);

	set = set_with("s.json", "{\"uniqueItems\": true}");
	assert_valid(set, "[1, true, \"1\", [1], {\"a\": 1}, {\"a\": 2}, 0,"
	                  " false, null, []]");
	assert_one(set, "[{\"a\": 1, \"b\": [1]}, {\"b\": [1.0], \"a\": 1}]",
	           "", "has equal items at 0 and 1");
	assert_one(set, "[0, -0.0]", "", "has equal items at 0 and 1");
	cs_schema_set_free(set);

	set = set_with("s.json", "{\"multipleOf\": 0.01}");
	assert_valid(set, "34.02");
	assert_valid(set, "-6.84");
	assert_one(set, "0.015", "", "0.015 is not a multiple of 0.01");
	cs_schema_set_free(set);
}
END_TEST

START_TEST(test_load_dir)
{
	char dir[] = "/tmp/cs-schema-XXXXXX", path[512];
	cs_schema_set *set = NULL;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/codes.json", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs(codes_schema, f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/service.json", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs(service_schema, f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fputs("not json", f);
	fclose(f);

	ck_assert_int_eq(cs_schema_set_new(&set), 0);
	ck_assert_msg(cs_schema_set_load_dir(set, dir) == 0, "%s",
	              cs_error_last());
	ck_assert_int_eq(check(set, "service.json",
	                       "{\"name\": \"x\", \"region\": \"MA-04\"}",
	                       NULL),
	                 0);
	ck_assert_ptr_null(cs_schema_set_get(set, "notes.txt"));
	ck_assert_int_eq(cs_schema_set_load_dir(set, "/nonexistent"),
	                 CS_ENOTFOUND);
	cs_schema_set_free(set);

	unlink(path);
	snprintf(path, sizeof(path), "%s/codes.json", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/service.json", dir);
	unlink(path);
	rmdir(dir);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* JSON-Schema-Test-Suite, draft7 */

/*
 * Whole files left out, and why.  Every other .json file of tests/draft7
 * runs, plus optional/zeroTerminatedFloats.json (supported).
 */
static const struct {
	const char *file;
	const char *reason;
} skipped_files[] = {
        {"refRemote.json", "remote references (http://localhost:1234/...)"},
        {"definitions.json",
         "validates against the draft-07 meta-schema, a remote reference"},
};

/*
 * Single groups (test == NULL: all of its cases) left out, and why.  Only
 * features outside schema.h belong here: $id base URIs and remote
 * documents.
 */
static const struct {
	const char *file;
	const char *group;
	const char *test;
	const char *reason;
} skipped_cases[] = {
        {"ref.json", "remote ref, containing refs itself", NULL,
         "refers to the draft-07 meta-schema by its remote URL"},
        {"ref.json", "Recursive references between schemas", NULL,
         "resolves \"tree\" and \"node\" against $id base URIs"},
};

typedef struct {
	int ran, skipped, failed;
	char report[8192];
	size_t report_len;
} suite_tally;

static void tally_failure(suite_tally *t, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void
tally_failure(suite_tally *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	t->failed++;
	if (t->report_len >= sizeof(t->report) - 2)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->report + t->report_len,
	              sizeof(t->report) - t->report_len - 1, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->report_len += (size_t)n;
	if (t->report_len > sizeof(t->report) - 2)
		t->report_len = sizeof(t->report) - 2;
	t->report[t->report_len++] = '\n';
	t->report[t->report_len] = '\0';
}

static int
is_skipped_file(const char *file)
{
	size_t i;

	for (i = 0; i < sizeof(skipped_files) / sizeof(skipped_files[0]); i++)
		if (strcmp(skipped_files[i].file, file) == 0)
			return 1;
	return 0;
}

static int
is_skipped_case(const char *file, const char *group, const char *test)
{
	size_t i;

	for (i = 0; i < sizeof(skipped_cases) / sizeof(skipped_cases[0]); i++) {
		if (strcmp(skipped_cases[i].file, file) == 0 &&
		    strcmp(skipped_cases[i].group, group) == 0 &&
		    (skipped_cases[i].test == NULL ||
		     strcmp(skipped_cases[i].test, test) == 0))
			return 1;
	}
	return 0;
}

/*
 * Run every case of one suite file.  With `all_valid`, the expected
 * verdict is ignored and every instance must be valid (for format, which
 * is an annotation here).
 */
static void
run_suite_file(suite_tally *t, const char *dir, const char *file, int all_valid)
{
	char path[4096];
	json_error_t err;
	json_t *groups, *group, *test;
	size_t g, k;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	groups = json_load_file(path, 0, &err);
	ck_assert_msg(groups != NULL, "%s: %s", path, err.text);

	json_array_foreach(groups, g, group) {
		const char *gdesc = json_string_value(
		        json_object_get(group, "description"));
		json_t *tests = json_object_get(group, "tests");
		cs_schema_set *set = NULL;
		int added;

		ck_assert_ptr_nonnull(gdesc);
		ck_assert_int_eq(cs_schema_set_new(&set), 0);
		added = cs_schema_set_add(set, "suite.json",
		                          json_object_get(group, "schema"));

		json_array_foreach(tests, k, test) {
			const char *tdesc = json_string_value(
			        json_object_get(test, "description"));
			int expect =
			        json_is_true(json_object_get(test, "valid"));
			int rc;

			if (is_skipped_case(file, gdesc, tdesc)) {
				t->skipped++;
				continue;
			}
			t->ran++;
			if (all_valid)
				expect = 1;
			if (added < 0) {
				tally_failure(t, "%s: %s: schema refused: %s",
				              file, gdesc, cs_error_last());
				continue;
			}
			rc = cs_schema_validate(set, "suite.json",
			                        json_object_get(test, "data"),
			                        NULL);
			if (rc != 0 && rc != CS_EINVALID) {
				tally_failure(t, "%s: %s / %s: error %d: %s",
				              file, gdesc, tdesc, rc,
				              cs_error_last());
			} else if ((rc == 0) != expect) {
				tally_failure(t,
				              "%s: %s / %s: expected %s, "
				              "got %s (%s)",
				              file, gdesc, tdesc,
				              expect ? "valid" : "invalid",
				              rc == 0 ? "valid" : "invalid",
				              rc == 0 ? "" : cs_error_last());
			}
		}
		cs_schema_set_free(set);
	}
	json_decref(groups);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted "*.json" names of a directory. */
static size_t
list_json(const char *dir, char ***out)
{
	char **names = NULL;
	size_t count = 0, len;
	struct dirent *e;
	DIR *d = opendir(dir);

	ck_assert_msg(d != NULL, "cannot open %s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		len = strlen(e->d_name);
		if (len <= 5 || strcmp(e->d_name + len - 5, ".json") != 0)
			continue;
		names = realloc(names, (count + 1) * sizeof(*names));
		ck_assert_ptr_nonnull(names);
		names[count++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, count, sizeof(*names), name_cmp);
	*out = names;
	return count;
}

static void
free_names(char **names, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

static void
suite_dir(char *out, size_t size)
{
	const char *root = getenv("CS_JSON_SCHEMA_SUITE");
	struct stat st;

	if (root == NULL || *root == '\0')
		root = "/usr/share/json-schema-test-suite";
	snprintf(out, size, "%s/tests/draft7", root);
	if (stat(out, &st) == 0 && S_ISDIR(st.st_mode))
		return;
	snprintf(out, size, "%s", root);
	snprintf(out + strlen(out), size - strlen(out), "/ref.json");
	ck_assert_msg(stat(out, &st) == 0,
	              "JSON-Schema-Test-Suite not found under \"%s\": install "
	              "the Debian package json-schema-test-suite or set "
	              "CS_JSON_SCHEMA_SUITE",
	              root);
	snprintf(out, size, "%s", root);
}

START_TEST(test_json_schema_test_suite)
{
	char dir[4096], sub[4200];
	suite_tally t = {0};
	char **names;
	size_t count, i;
	int files_skipped = 0, format_cases;

	suite_dir(dir, sizeof(dir));
	count = list_json(dir, &names);
	for (i = 0; i < count; i++) {
		if (is_skipped_file(names[i])) {
			files_skipped++;
			continue;
		}
		run_suite_file(&t, dir, names[i], 0);
	}
	free_names(names, count);

	snprintf(sub, sizeof(sub), "%s/optional", dir);
	run_suite_file(&t, sub, "zeroTerminatedFloats.json", 0);

	/* format never fails validation (schema.h): all valid. */
	format_cases = t.ran;
	snprintf(sub, sizeof(sub), "%s/optional/format", dir);
	count = list_json(sub, &names);
	for (i = 0; i < count; i++)
		run_suite_file(&t, sub, names[i], 1);
	free_names(names, count);
	format_cases = t.ran - format_cases;

	printf("JSON-Schema-Test-Suite draft7 (%s): %d cases ran (%d of them "
	       "format cases, expected valid), %d skipped, %d files "
	       "skipped, %d failed\n",
	       dir, t.ran, format_cases, t.skipped, files_skipped, t.failed);
	if (t.failed)
		printf("%s", t.report);
	fflush(stdout);
	ck_assert_msg(t.failed == 0, "%d suite cases failed:\n%s", t.failed,
	              t.report);
	/* A suite that was not really there must not pass. */
	ck_assert_int_ge(t.ran - format_cases, 350);
	ck_assert_int_le(t.skipped, 4);
}
END_TEST

static Suite *
schema_suite(void)
{
	Suite *s = suite_create("schema");
	TCase *tc = tcase_create("core");
	TCase *ts = tcase_create("json-schema-test-suite");

	tcase_add_test(tc, test_add_all);
	tcase_add_test(tc, test_messages_record);
	tcase_add_test(tc, test_messages_keywords);
	tcase_add_test(tc, test_messages_combinators);
	tcase_add_test(tc, test_pointers_escaped);
	tcase_add_test(tc, test_refs_across_documents);
	tcase_add_test(tc, test_refs_pointers);
	tcase_add_test(tc, test_ref_cycles);
	tcase_add_test(tc, test_error_limit);
	tcase_add_test(tc, test_add_rejects_bad_schemas);
	tcase_add_test(tc, test_patterns);
	tcase_add_test(tc, test_numbers_and_equality);
	tcase_add_test(tc, test_load_dir);
	suite_add_tcase(s, tc);
	tcase_add_test(ts, test_json_schema_test_suite);
	suite_add_tcase(s, ts);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(schema_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
