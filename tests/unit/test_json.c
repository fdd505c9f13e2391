/*
 * Unit tests of lib/json.c: strict parsing and the canonical form.
 *
 * Data cases live in $CS_TEST_DATA/json:
 *   canonical/<case>/input.json      any valid JSON
 *   canonical/<case>/canonical.json  its exact canonical encoding
 *   invalid/<case>/input.json        input cs_json_parse() must refuse
 *   invalid/<case>/expect            line 1: "invalid" or "limit",
 *                                    line 2: a part of the message
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cartosync/error.h"
#include "cartosync/json.h"

static const char *
data_dir(void)
{
	const char *dir = getenv("CS_TEST_DATA");

	return dir ? dir : "tests/data";
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data;
	long size;

	ck_assert_msg(f != NULL, "cannot open %s: %s", path, strerror(errno));
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	ck_assert_int_ge(size, 0);
	rewind(f);
	data = malloc((size_t)size + 1);
	ck_assert_ptr_nonnull(data);
	ck_assert_uint_eq(fread(data, 1, (size_t)size, f), (size_t)size);
	data[size] = '\0';
	fclose(f);
	*len = (size_t)size;
	return data;
}

/* The canonical text of `input`, which must parse. */
static char *
canon(const char *input)
{
	char *out = NULL;
	size_t len = 0;
	int rc = cs_json_canonicalize(&out, &len, input, strlen(input), "t");

	ck_assert_msg(rc == 0, "canonicalize %s: %s", input, cs_error_last());
	ck_assert_uint_eq(strlen(out), len);
	return out;
}

static void
assert_canon(const char *input, const char *expected)
{
	char *out = canon(input);

	ck_assert_str_eq(out, expected);
	free(out);
}

static int
parse_str(const char *input, const char *name)
{
	json_t *v = NULL;
	int rc = cs_json_parse(&v, input, strlen(input), name);

	if (rc == 0)
		ck_assert_ptr_nonnull(v);
	else
		ck_assert_ptr_null(v);
	json_decref(v);
	return rc;
}

/* canonical(parse(canonical(x))) == canonical(x), byte for byte. */
static void
assert_idempotent(const char *buf, size_t len, const char *name)
{
	char *once = NULL, *twice = NULL;
	size_t once_len, twice_len;

	if (cs_json_canonicalize(&once, &once_len, buf, len, name) < 0)
		return; /* not JSON we accept: nothing to compare */
	ck_assert_msg(cs_json_canonicalize(&twice, &twice_len, once, once_len,
	                                   name) == 0,
	              "%s: canonical form does not parse: %s", name,
	              cs_error_last());
	ck_assert_msg(once_len == twice_len &&
	                      memcmp(once, twice, once_len) == 0,
	              "%s: canonical form is not stable", name);
	ck_assert_msg(cs_json_is_canonical(once, once_len),
	              "%s: canonical form not recognised", name);
	free(once);
	free(twice);
}

START_TEST(test_canonical_layout)
{
	assert_canon("{\"b\":1,\"a\":[true,false,null]}",
	             "{\n  \"a\": [\n    true,\n    false,\n    null\n  ],\n"
	             "  \"b\": 1\n}\n");
	assert_canon("[]", "[]\n");
	assert_canon("{}", "{}\n");
	assert_canon("[{},[],{\"x\":{}}]",
	             "[\n  {},\n  [],\n  {\n    \"x\": {}\n  }\n]\n");
	/* Keys sort by bytes: upper case before lower, ASCII before UTF-8. */
	assert_canon("{\"\xc3\xa9\":1,\"z\":2,\"Z\":3,\"\":4,\"a b\":5}",
	             "{\n  \"\": 4,\n  \"Z\": 3,\n  \"a b\": 5,\n  \"z\": 2,\n"
	             "  \"\xc3\xa9\": 1\n}\n");
}
END_TEST

START_TEST(test_canonical_numbers)
{
	assert_canon("[34.0200000]", "[\n  34.02\n]\n");
	assert_canon("[1e2]", "[\n  100\n]\n");
	assert_canon("[0.1234567]", "[\n  0.123457\n]\n");
	assert_canon("[0.1234564]", "[\n  0.123456\n]\n");
	assert_canon("[-0.0]", "[\n  0\n]\n");
	assert_canon("[-0]", "[\n  0\n]\n");
	assert_canon("[-0.0000001]", "[\n  0\n]\n");
	assert_canon("[2.9999999]", "[\n  3\n]\n");
	assert_canon("[-6.84165]", "[\n  -6.84165\n]\n");
	assert_canon("[1.5e-3]", "[\n  0.0015\n]\n");
	assert_canon("[1E+2, 100.0, 100]", "[\n  100,\n  100,\n  100\n]\n");
	assert_canon("[999999999999999, -999999999999999]",
	             "[\n  999999999999999,\n  -999999999999999\n]\n");
	assert_canon("[123456789.123456]", "[\n  123456789.123456\n]\n");
	assert_canon("[1e-400]", "[\n  0\n]\n");
}
END_TEST

START_TEST(test_canonical_strings)
{
	/* Only '"', '\\' and control characters are escaped. */
	assert_canon("[\"a\\\"b\\\\c\\/d\"]", "[\n  \"a\\\"b\\\\c/d\"\n]\n");
	assert_canon("[\"\\b\\f\\n\\r\\t\"]", "[\n  \"\\b\\f\\n\\r\\t\"\n]\n");
	assert_canon("[\"\\u0001\\u001F\\u000b\"]",
	             "[\n  \"\\u0001\\u001f\\u000b\"\n]\n");
	assert_canon("[\"\\u007f\"]", "[\n  \"\x7f\"\n]\n");
	assert_canon("[\"\\u00e9\\u4E2D\\ud83d\\ude00\"]",
	             "[\n  \"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\"\n]\n");
	assert_canon("[\"<>&'\xd8\xa7\"]", "[\n  \"<>&'\xd8\xa7\"\n]\n");
}
END_TEST

START_TEST(test_canonical_rejects_unholdable)
{
	json_t *v;
	char *out = (char *)1;
	size_t len = 1;
	int i;

	v = json_pack("[I]", (json_int_t)9007199254740993LL);
	ck_assert_int_eq(cs_json_canonical(&out, &len, v), CS_EINVALID);
	ck_assert_ptr_null(out);
	ck_assert_uint_eq(len, 0);
	json_decref(v);

	v = json_pack("[I]", (json_int_t)9007199254740992LL);
	ck_assert_int_eq(cs_json_canonical(&out, &len, v), 0);
	ck_assert_str_eq(out, "[\n  9007199254740992\n]\n");
	free(out);
	json_decref(v);

	v = json_pack("{s:f}", "x", 1e300);
	ck_assert_int_eq(cs_json_canonical(&out, &len, v), CS_EINVALID);
	json_decref(v);

	/* Deeper than cs_json_parse() accepts: it could not be read back. */
	v = json_array();
	for (i = 1; i < CS_JSON_MAX_DEPTH + 1; i++)
		v = json_pack("[o]", v);
	ck_assert_int_eq(cs_json_depth(v), CS_JSON_MAX_DEPTH + 1);
	ck_assert_int_eq(cs_json_canonical(&out, &len, v), CS_EINVALID);
	ck_assert_ptr_nonnull(strstr(cs_error_last(), "deeper"));
	json_decref(v);

	/* A scalar encodes alone; keys may hold NUL when built by hand. */
	v = json_integer(7);
	ck_assert_int_eq(cs_json_canonical(&out, &len, v), 0);
	ck_assert_str_eq(out, "7\n");
	free(out);
	json_decref(v);

	v = json_object();
	json_object_setn_new(v, "a\0b", 3, json_true());
	ck_assert_int_eq(cs_json_canonical(&out, &len, v), 0);
	ck_assert_uint_eq(len, strlen("{\n  \"a\\u0000b\": true\n}\n"));
	ck_assert_int_eq(memcmp(out, "{\n  \"a\\u0000b\": true\n}\n", len), 0);
	free(out);
	json_decref(v);
}
END_TEST

START_TEST(test_parse_messages)
{
	ck_assert_int_eq(parse_str("{\"a\":1,\n \"a\":2}", "records/x.json"),
	                 CS_EINVALID);
	ck_assert_ptr_nonnull(strstr(cs_error_last(),
	                             "records/x.json: line 2, column 4: "
	                             "duplicate object key"));

	ck_assert_int_eq(parse_str("[1] x", NULL), CS_EINVALID);
	ck_assert_ptr_eq(strstr(cs_error_last(), "line 1, column 5: "),
	                 cs_error_last());

	ck_assert_int_eq(parse_str("\"s\"", "a.json"), CS_EINVALID);
	ck_assert_int_eq(parse_str("[1]   \n", "a.json"), 0);
}
END_TEST

START_TEST(test_parse_nul_bytes)
{
	json_t *v = NULL;

	ck_assert_int_eq(cs_json_parse(&v, "[\"a\0\"]", 6, "n"), CS_EINVALID);
	ck_assert_int_eq(cs_json_parse(&v, "[1]\0", 4, "n"), CS_EINVALID);
	ck_assert_int_eq(cs_json_parse(&v, "[1]", 3, "n"), 0);
	json_decref(v);
}
END_TEST

START_TEST(test_parse_numbers)
{
	ck_assert_int_eq(parse_str("[999999999999999]", NULL), 0);
	ck_assert_int_eq(parse_str("[-999999999999999]", NULL), 0);
	ck_assert_int_eq(parse_str("[999999999999999.8]", NULL), 0);
	ck_assert_int_eq(parse_str("[1000000000000000]", NULL), CS_EINVALID);
	ck_assert_int_eq(parse_str("[-1000000000000000]", NULL), CS_EINVALID);
	ck_assert_int_eq(parse_str("{\"a\":[0,1e15]}", "n.json"), CS_EINVALID);
	ck_assert_str_eq(cs_error_last(),
	                 "n.json: number at \"/a/1\" is out of range "
	                 "(magnitude must stay below 1e15)");
	ck_assert_int_eq(parse_str("[9223372036854775808]", NULL), CS_EINVALID);
	ck_assert_int_eq(parse_str("[1e309]", NULL), CS_EINVALID);
	ck_assert_int_eq(parse_str("[Infinity]", NULL), CS_EINVALID);
	ck_assert_int_eq(parse_str("[NaN]", NULL), CS_EINVALID);
}
END_TEST

static char *
nested(int depth)
{
	char *s = malloc((size_t)depth * 2 + 1);
	int i;

	ck_assert_ptr_nonnull(s);
	for (i = 0; i < depth; i++) {
		s[i] = '[';
		s[depth * 2 - 1 - i] = ']';
	}
	s[depth * 2] = '\0';
	return s;
}

START_TEST(test_parse_depth)
{
	char *s;
	json_t *v = NULL;

	s = nested(CS_JSON_MAX_DEPTH);
	ck_assert_int_eq(cs_json_parse(&v, s, strlen(s), "d"), 0);
	ck_assert_int_eq(cs_json_depth(v), CS_JSON_MAX_DEPTH);
	json_decref(v);
	free(s);

	s = nested(CS_JSON_MAX_DEPTH + 1);
	ck_assert_int_eq(cs_json_parse(&v, s, strlen(s), "d"), CS_ELIMIT);
	ck_assert_str_eq(cs_error_last(), "d: nested deeper than 32 levels");
	free(s);

	/* Past jansson's own guard (2048) it is still our limit code. */
	s = nested(5000);
	ck_assert_int_eq(cs_json_parse(&v, s, strlen(s), "d"), CS_ELIMIT);
	free(s);

	ck_assert_int_eq(parse_str("{\"a\":{\"b\":[{}]}}", NULL), 0);
	v = json_pack("{s:{s:[{}]}}", "a", "b");
	ck_assert_int_eq(cs_json_depth(v), 4);
	json_decref(v);
	v = json_string("x");
	ck_assert_int_eq(cs_json_depth(v), 0);
	json_decref(v);
	v = json_object();
	ck_assert_int_eq(cs_json_depth(v), 1);
	json_decref(v);
}
END_TEST

/* A valid array of exactly `size` bytes. */
static char *
array_of_size(size_t size)
{
	char *s = malloc(size + 1);

	ck_assert_ptr_nonnull(s);
	ck_assert_uint_ge(size, 4);
	s[0] = '[';
	s[1] = '"';
	memset(s + 2, 'x', size - 4);
	s[size - 2] = '"';
	s[size - 1] = ']';
	s[size] = '\0';
	return s;
}

START_TEST(test_parse_size_limit)
{
	json_t *v = NULL;
	char *s;

	s = array_of_size(CS_JSON_MAX_BYTES);
	ck_assert_int_eq(cs_json_parse(&v, s, CS_JSON_MAX_BYTES, "big"), 0);
	json_decref(v);
	free(s);

	s = array_of_size(CS_JSON_MAX_BYTES + 1);
	ck_assert_int_eq(cs_json_parse(&v, s, CS_JSON_MAX_BYTES + 1, "big"),
	                 CS_ELIMIT);
	ck_assert_str_eq(cs_error_last(),
	                 "big: 262145 bytes exceed the limit of 262144");
	ck_assert_ptr_null(v);
	free(s);
}
END_TEST

START_TEST(test_load_file)
{
	char path[4096], tmpl[] = "/tmp/cs-json-XXXXXX";
	json_t *v = NULL;
	char *big;
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "%s/json/canonical/record/input.json",
	         data_dir());
	ck_assert_int_eq(cs_json_load_file(&v, path), 0);
	ck_assert_str_eq(json_string_value(json_object_get(v, "region")),
	                 "MA-04");
	json_decref(v);

	ck_assert_int_eq(cs_json_load_file(&v, "/nonexistent/x.json"),
	                 CS_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(cs_error_last(), "/nonexistent/x.json"));

	snprintf(path, sizeof(path), "%s/json/invalid/duplicate-key/input.json",
	         data_dir());
	ck_assert_int_eq(cs_json_load_file(&v, path), CS_EINVALID);
	ck_assert_ptr_eq(strstr(cs_error_last(), path), cs_error_last());

	/* A file over the limit is refused without reading it whole. */
	fd = mkstemp(tmpl);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "wb");
	big = array_of_size(CS_JSON_MAX_BYTES * 2);
	ck_assert_uint_eq(fwrite(big, 1, CS_JSON_MAX_BYTES * 2, f),
	                  CS_JSON_MAX_BYTES * 2);
	fclose(f);
	free(big);
	ck_assert_int_eq(cs_json_load_file(&v, tmpl), CS_ELIMIT);
	unlink(tmpl);
}
END_TEST

START_TEST(test_is_canonical)
{
	const char *good = "{\n  \"a\": 1,\n  \"b\": [\n    2.5\n  ]\n}\n";

	ck_assert(cs_json_is_canonical(good, strlen(good)));
	/* Each of these differs from `good` in one rule. */
	ck_assert(!cs_json_is_canonical(good, strlen(good) - 1));
	ck_assert(!cs_json_is_canonical("{\n  \"b\": 1,\n  \"a\": 1\n}\n", 24));
	ck_assert(!cs_json_is_canonical("{\n    \"a\": 1\n}\n", 16));
	ck_assert(!cs_json_is_canonical("{\n  \"a\":1\n}\n", 12));
	ck_assert(!cs_json_is_canonical("{\r\n  \"a\": 1\r\n}\r\n", 16));
	ck_assert(!cs_json_is_canonical("[\n  1.50\n]\n", 11));
	ck_assert(!cs_json_is_canonical("[\n  \"\\u00e9\"\n]\n", 15));
	ck_assert(!cs_json_is_canonical("[\n]\n", 4));
	ck_assert(!cs_json_is_canonical("[\n  1\n]\n\n", 9));
	ck_assert(!cs_json_is_canonical("not json", 8));
	ck_assert(cs_json_is_canonical("[\n  1.5\n]\n", 10));
}
END_TEST

static void
path_join(char *out, size_t size, const char *a, const char *b)
{
	ck_assert_int_lt(snprintf(out, size, "%s/%s", a, b), (int)size);
}

START_TEST(test_canonical_cases)
{
	char dir[4096], path[4096], casedir[4096];
	struct dirent *e;
	char *input, *expected, *out;
	size_t input_len, expected_len, out_len;
	int cases = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/json/canonical", data_dir());
	d = opendir(dir);
	ck_assert_msg(d != NULL, "cannot open %s", dir);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		path_join(casedir, sizeof(casedir), dir, e->d_name);
		path_join(path, sizeof(path), casedir, "input.json");
		input = read_file(path, &input_len);
		path_join(path, sizeof(path), casedir, "canonical.json");
		expected = read_file(path, &expected_len);

		ck_assert_msg(cs_json_canonicalize(&out, &out_len, input,
		                                   input_len, e->d_name) == 0,
		              "%s: %s", e->d_name, cs_error_last());
		ck_assert_msg(out_len == expected_len &&
		                      memcmp(out, expected, out_len) == 0,
		              "%s: got\n%s", e->d_name, out);
		ck_assert_msg(cs_json_is_canonical(expected, expected_len),
		              "%s: canonical.json is not canonical", e->d_name);
		free(out);
		free(input);
		free(expected);
		cases++;
	}
	closedir(d);
	ck_assert_int_ge(cases, 5);
}
END_TEST

START_TEST(test_invalid_cases)
{
	char dir[4096], path[4096], casedir[4096], code[32], part[256];
	struct dirent *e;
	char *input, *expect;
	size_t input_len, expect_len;
	json_t *v;
	int cases = 0, rc;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/json/invalid", data_dir());
	d = opendir(dir);
	ck_assert_msg(d != NULL, "cannot open %s", dir);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		path_join(casedir, sizeof(casedir), dir, e->d_name);
		path_join(path, sizeof(path), casedir, "input.json");
		input = read_file(path, &input_len);
		path_join(path, sizeof(path), casedir, "expect");
		expect = read_file(path, &expect_len);
		ck_assert_int_eq(
		        sscanf(expect, "%31[^\n]\n%255[^\n]", code, part), 2);

		v = NULL;
		rc = cs_json_parse(&v, input, input_len, e->d_name);
		ck_assert_msg(rc == (strcmp(code, "limit") == 0 ? CS_ELIMIT
		                                                : CS_EINVALID),
		              "%s: got %d (%s)", e->d_name, rc,
		              cs_error_last());
		ck_assert_ptr_null(v);
		ck_assert_msg(strstr(cs_error_last(), part) != NULL,
		              "%s: message \"%s\" lacks \"%s\"", e->d_name,
		              cs_error_last(), part);
		ck_assert_msg(strncmp(cs_error_last(), e->d_name,
		                      strlen(e->d_name)) == 0,
		              "%s: message does not start with the name",
		              e->d_name);
		ck_assert(strchr(cs_error_last(), '\n') == NULL);
		free(input);
		free(expect);
		cases++;
	}
	closedir(d);
	ck_assert_int_ge(cases, 10);
}
END_TEST

/* Each file below `dir`, read whole: `fn` says whether it counts. */
typedef int (*file_fn)(const char *path, const char *buf, size_t len,
                       void *arg);

static int
walk_files(const char *dir, file_fn fn, void *arg)
{
	char path[4096];
	struct dirent *e;
	struct stat st;
	size_t len;
	char *buf;
	int files = 0;
	DIR *d = opendir(dir);

	ck_assert_msg(d != NULL, "cannot open %s", dir);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		path_join(path, sizeof(path), dir, e->d_name);
		ck_assert_int_eq(stat(path, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			files += walk_files(path, fn, arg);
			continue;
		}
		buf = read_file(path, &len);
		files += fn(path, buf, len, arg);
		free(buf);
	}
	closedir(d);
	return files;
}

static int
idempotent_file(const char *path, const char *buf, size_t len, void *arg)
{
	assert_idempotent(buf, len, path);
	return 1;
}

START_TEST(test_idempotence_all_data)
{
	char dir[4096];

	snprintf(dir, sizeof(dir), "%s/json", data_dir());
	ck_assert_int_ge(walk_files(dir, idempotent_file, NULL), 20);
}
END_TEST

/* Reals at every scale: canonical text must round-trip exactly. */
START_TEST(test_idempotence_reals)
{
	static const double scales[] = {1e-7, 1e-3, 1, 1e3, 1e8, 1e10, 1e14};
	unsigned long seed = 12345;
	char buf[128];
	size_t i, k;

	for (i = 0; i < sizeof(scales) / sizeof(scales[0]); i++) {
		for (k = 0; k < 2000; k++) {
			double x;

			seed = seed * 6364136223846793005UL +
			       1442695040888963407UL;
			x = (double)(seed >> 11) / 9007199254740992.0;
			x = (x * 2 - 1) * scales[i] * 9.99;
			snprintf(buf, sizeof(buf), "[%.17g]", x);
			assert_idempotent(buf, strlen(buf), buf);
		}
	}
}
END_TEST

/*
 * The one-pass reader against the general path (parse, encode, compare):
 * what it accepts, the general path accepts as an equal value.  Returns
 * whether the reader recognised the text.
 */
static int
assert_reader_agrees(const char *buf, size_t len, const char *name)
{
	json_t *fast = NULL, *slow = NULL;
	char *again = NULL;
	size_t again_len = 0;
	int read = cs_json_read_canonical(&fast, buf, len);
	int canonical = cs_json_parse(&slow, buf, len, name) == 0 &&
	                cs_json_canonical(&again, &again_len, slow) == 0 &&
	                again_len == len && memcmp(again, buf, len) == 0;

	if (read) {
		ck_assert_msg(canonical, "%s: read as canonical, but it is not:"
		              "\n%.*s", name, (int)len, buf);
		ck_assert_msg(json_equal(fast, slow),
		              "%s: read as a different value", name);
		ck_assert_int_eq(cs_json_depth(fast), cs_json_depth(slow));
	} else {
		ck_assert_ptr_null(fast);
	}
	/* cs_json_parse_canonical() answers as the general path does. */
	json_decref(fast);
	fast = NULL;
	ck_assert_int_eq(cs_json_parse_canonical(&fast, buf, len, name) == 0,
	                 canonical);
	if (canonical)
		ck_assert(json_equal(fast, slow));
	else
		ck_assert_ptr_null(fast);
	json_decref(fast);
	json_decref(slow);
	free(again);
	return read;
}

START_TEST(test_read_canonical_cases)
{
	static const struct {
		const char *text;
		int read;
	} cases[] = {
		{"{\n  \"a\": 1,\n  \"b\": [\n    2.5,\n    -3,\n    0\n  ]\n}\n", 1},
		{"[\n  true,\n  false,\n  null,\n  {},\n  []\n]\n", 1},
		{"[\n  \"\xc3\xa9t\xc3\xa9 \xd8\xa7\xd9\x84\xd8\xb1\xd8\xa8\xd8\xa7\xd8\xb7\"\n]\n", 1},
		{"[\n  \"a\\\"b\\\\c\\nd\\te\\bf\\fg\\rh\"\n]\n", 1},
		{"[\n  0.000001,\n  -0.5,\n  999999999999999,\n  -999999999999999\n]\n", 1},
		{"{\n  \"\": 1,\n  \"Z\": 2,\n  \"a\": 3,\n  \"ab\": 4,\n  \"\xc3\xa9\": 5\n}\n", 1},
		/* Canonical, but left to the general path. */
		{"[\n  \"\\u0001\"\n]\n", 0},
		{"{\n  \"a\\nb\": 1\n}\n", 0},
		/* Not canonical. */
		{"[\n  -0\n]\n", 0},
		{"[\n  1.50\n]\n", 0},
		{"[\n  01\n]\n", 0},
		{"[\n  1e2\n]\n", 0},
		{"[\n  1.\n]\n", 0},
		{"[\n  .5\n]\n", 0},
		{"[\n  0.1234567\n]\n", 0},
		{"[\n  1000000000000000\n]\n", 0},
		{"[\n  \"\\/\"\n]\n", 0},
		{"[\n  \"\\u00e9\"\n]\n", 0},
		{"[\n  \"\x01\"\n]\n", 0},
		{"[\n  \"\xc0\xaf\"\n]\n", 0},
		{"[\n  \"\xe0\x80\xaf\"\n]\n", 0},
		{"[\n  \"\xf0\x80\x80\xaf\"\n]\n", 0},
		{"[\n  \"\xed\xa0\x80\"\n]\n", 0},
		{"[\n  \"\xef\xbf\xbf\xf0\x9f\x98\x80\"\n]\n", 1},
		{"[\n  \"\xf4\x90\x80\x80\"\n]\n", 0},
		{"[\n  \"\xe9\"\n]\n", 0},
		{"{\n  \"b\": 1,\n  \"a\": 2\n}\n", 0},
		{"{\n  \"a\": 1,\n  \"a\": 2\n}\n", 0},
		{"{\n  \"a\":1\n}\n", 0},
		{"{\n   \"a\": 1\n}\n", 0},
		{"{\n  \"a\": 1\n }\n", 0},
		{"{\n  \"a\": 1,\n}\n", 0},
		{"{\n}\n", 0},
		{"[\n  1\n]", 0},
		{"[\n  1\n]\n\n", 0},
		{"[\n  1\n]\r\n", 0},
		{"\"a\"\n", 0},
		{"7\n", 0},
		{"[\n  tru\n]\n", 0},
		{"[\n  nulls\n]\n", 0},
		{"[\n  \"a\n", 0},
		{"[\n", 0},
	};
	char deep[4096];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(assert_reader_agrees(cases[i].text,
		                                   strlen(cases[i].text),
		                                   cases[i].text) ==
		                      cases[i].read,
		              "case %zu: %s", i, cases[i].text);

	/* Nesting near the limit is left to the general path. */
	for (int level = 0; level < CS_JSON_MAX_DEPTH; level++) {
		n += (size_t)sprintf(deep + n, "[\n%*s", 2 * (level + 1), "");
	}
	n += (size_t)sprintf(deep + n, "1");
	for (int level = CS_JSON_MAX_DEPTH - 1; level >= 0; level--)
		n += (size_t)sprintf(deep + n, "\n%*s]", 2 * level, "");
	n += (size_t)sprintf(deep + n, "\n");
	ck_assert(!assert_reader_agrees(deep, n, "deep"));
}
END_TEST

/*
 * Every file of the test data in canonical form is read in one pass (the
 * reader is not left unused), and every one-byte change to it is judged as
 * the general path judges it.
 */
static void
reader_mutations(const char *canon_text, size_t len, const char *name,
		 int *read, int *mutants)
{
	static const char bytes[] = {' ', '\n', '"', '\\', ',', ':', '0', '9',
				     '.', '-', 'e', '}', ']', '{', '[', 'a',
				     '\x01', '\x7f', '\x80', '\xc3', '\xff'};
	char *m = malloc(len + 2);
	size_t step = len / 24 + 1;

	ck_assert_ptr_nonnull(m);
	*read += assert_reader_agrees(canon_text, len, name);
	for (size_t at = 0; at < len; at += step) {
		/* Deleted, doubled, replaced. */
		memcpy(m, canon_text, at);
		memcpy(m + at, canon_text + at + 1, len - at - 1);
		assert_reader_agrees(m, len - 1, name);
		memcpy(m, canon_text, at + 1);
		memcpy(m + at + 1, canon_text + at, len - at);
		assert_reader_agrees(m, len + 1, name);
		for (size_t b = 0; b < sizeof(bytes); b++) {
			if (canon_text[at] == bytes[b])
				continue;
			memcpy(m, canon_text, len);
			m[at] = bytes[b];
			assert_reader_agrees(m, len, name);
			(*mutants)++;
		}
	}
	free(m);
}

typedef struct {
	int mutate;
	int read;
	int mutants;
} reader_walk;

static int
reader_file(const char *path, const char *buf, size_t len, void *arg)
{
	reader_walk *w = arg;
	size_t canon_len;
	char *canon_text;
	json_t *v = NULL;
	int before = w->read;

	if (strstr(path, ".json") == NULL)
		return 0;
	assert_reader_agrees(buf, len, path);
	if (cs_json_canonicalize(&canon_text, &canon_len, buf, len, path) < 0)
		return 0;
	if (w->mutate)
		reader_mutations(canon_text, canon_len, path, &w->read,
		                 &w->mutants);
	else
		w->read += assert_reader_agrees(canon_text, canon_len, path);
	/* Without a backslash or deep nesting, the reader takes it. */
	ck_assert_int_eq(cs_json_parse(&v, canon_text, canon_len, path), 0);
	if (strchr(canon_text, '\\') == NULL &&
	    cs_json_depth(v) < CS_JSON_MAX_DEPTH - 2)
		ck_assert_msg(w->read == before + 1, "%s: not read in one pass",
		              path);
	json_decref(v);
	free(canon_text);
	return 1;
}

START_TEST(test_read_canonical_data)
{
	static const struct {
		const char *sub;
		int mutate;
	} dirs[] = {{"json", 1}, {"sample", 1}, {"records", 0},
	            {"merge", 0}, {"merge-vectors", 0}};
	char dir[4096];
	reader_walk w = {0, 0, 0};
	int files = 0;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(dir, sizeof(dir), "%s/%s", data_dir(), dirs[i].sub);
		w.mutate = dirs[i].mutate;
		files += walk_files(dir, reader_file, &w);
	}
	ck_assert_int_ge(files, 200);
	ck_assert_int_ge(w.read, files / 2);
	ck_assert_int_ge(w.mutants, 20000);
}
END_TEST

static Suite *
json_suite(void)
{
	Suite *s = suite_create("json");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_canonical_layout);
	tcase_add_test(tc, test_canonical_numbers);
	tcase_add_test(tc, test_canonical_strings);
	tcase_add_test(tc, test_canonical_rejects_unholdable);
	tcase_add_test(tc, test_parse_messages);
	tcase_add_test(tc, test_parse_nul_bytes);
	tcase_add_test(tc, test_parse_numbers);
	tcase_add_test(tc, test_parse_depth);
	tcase_add_test(tc, test_parse_size_limit);
	tcase_add_test(tc, test_load_file);
	tcase_add_test(tc, test_is_canonical);
	tcase_add_test(tc, test_canonical_cases);
	tcase_add_test(tc, test_invalid_cases);
	tcase_add_test(tc, test_idempotence_all_data);
	tcase_add_test(tc, test_idempotence_reals);
	tcase_add_test(tc, test_read_canonical_cases);
	tcase_add_test(tc, test_read_canonical_data);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(json_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
