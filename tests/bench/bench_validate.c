/*
 * cartosync — record validation and canonical JSON rates, beside Python's
 * jsonschema (Debian's python3-jsonschema, Draft7Validator with a
 * RefResolver store of every schema file) and Python's json module,
 * measured in the same run on a subset of the same records.
 *
 * The records (--records, default 100,000) are made in memory from every
 * sample of tests/data/sample (all record types), each with a new id and
 * its name and description suffixed, and kept as canonical text.  Timed,
 * over all of them:
 *
 *   - cs_json_parse() + cs_json_canonical(): the canonical round trip;
 *   - cs_record_parse_stored(): what verification does per changed file
 *     (strict parse, and the canonical check);
 *   - cs_schema_validate() against <x_record_type>.schema.json of schema/
 *     (the records parsed beforehand, untimed, 1,000 at a time).
 *
 * The Python reference runs /usr/bin/python3 on the first --python-records
 * (default 2,000) records, written to a file: json.loads + json.dumps
 * (sorted keys, indent 2) for the round trip, Draft7Validator.is_valid for
 * validation.  A record that either side finds invalid stops the
 * benchmark: the generator must make valid records.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/record.h"
#include "cartosync/schema.h"
#include "bench.h"

static const char usage[] =
        "usage: bench_validate [--records N] [--python-records N]\n"
        "  --records N         records to generate and validate (default"
        " 100000)\n"
        "  --python-records N  of which validated by python3-jsonschema"
        " (default 2000)\n";

#define CHUNK 1000

/* Python side: prints "<what> <seconds> <count>" lines. */
static const char python_script[] =
        "import json, sys, time, glob, os\n"
        "from jsonschema import Draft7Validator, RefResolver\n"
        "schema_dir, path = sys.argv[1], sys.argv[2]\n"
        "store = {}\n"
        "for f in glob.glob(os.path.join(schema_dir, '*.schema.json')):\n"
        "    with open(f, encoding='utf-8') as fh:\n"
        "        doc = json.load(fh)\n"
        "    store[doc.get('$id', os.path.basename(f))] = doc\n"
        "validators = {}\n"
        "for name, doc in store.items():\n"
        "    resolver = RefResolver(base_uri=name, referrer=doc, store=store)\n"
        "    validators[name] = Draft7Validator(doc, resolver=resolver)\n"
        "with open(path, encoding='utf-8') as fh:\n"
        "    texts = json.load(fh)\n"
        "t = time.perf_counter()\n"
        "for s in texts:\n"
        "    out = json.dumps(json.loads(s), sort_keys=True, indent=2,\n"
        "                     ensure_ascii=False, separators=(',', ': '))\n"
        "print('roundtrip', time.perf_counter() - t, len(texts))\n"
        "records = [json.loads(s) for s in texts]\n"
        "t = time.perf_counter()\n"
        "invalid = 0\n"
        "for r in records:\n"
        "    v = validators[r['x_record_type'] + '.schema.json']\n"
        "    if not v.is_valid(r):\n"
        "        invalid += 1\n"
        "print('validate', time.perf_counter() - t, len(records))\n"
        "print('invalid', 0, invalid)\n";

typedef struct {
	char *text;
	size_t len;
} record_text;

static record_text *
make_records(size_t n, size_t *total_bytes)
{
	json_t *samples = bench_samples("");
	size_t nsamples = json_array_size(samples);
	record_text *r = calloc(n, sizeof(*r));

	*total_bytes = 0;
	if (r == NULL)
		bench_die("out of memory");
	for (size_t i = 0; i < n; i++) {
		const json_t *sample = json_array_get(samples, i % nsamples);
		const char *owner =
		        json_string_value(json_object_get(sample, "x_owner"));
		json_t *record = bench_variant(sample, owner, i);

		if (cs_json_canonical(&r[i].text, &r[i].len, record) < 0)
			bench_die("canonical");
		*total_bytes += r[i].len;
		json_decref(record);
	}
	json_decref(samples);
	return r;
}

static int
run_python(const char *schema_dir, const char *dir, const record_text *r,
           size_t n, double *roundtrip, double *validate)
{
	char script[4096], data[4096], *out, *line;
	json_t *texts = json_array();
	FILE *f;
	int ok = 0;

	*roundtrip = *validate = 0;
	snprintf(script, sizeof(script), "%s/ref.py", dir);
	snprintf(data, sizeof(data), "%s/records.json", dir);
	if ((f = fopen(script, "w")) == NULL)
		bench_die(script);
	fputs(python_script, f);
	fclose(f);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(texts, json_stringn(r[i].text, r[i].len));
	if (json_dump_file(texts, data, JSON_COMPACT) < 0)
		bench_die(data);
	json_decref(texts);
	out = bench_sh_output("/usr/bin/python3 %s %s %s", bench_q(script),
	                      bench_q(schema_dir), bench_q(data));
	if (out == NULL)
		return -1;
	for (line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		char what[32];
		double secs;
		unsigned long count;

		if (sscanf(line, "%31s %lf %lu", what, &secs, &count) != 3)
			continue;
		if (strcmp(what, "roundtrip") == 0 && secs > 0)
			*roundtrip = (double)count / secs, ok |= 1;
		else if (strcmp(what, "validate") == 0 && secs > 0)
			*validate = (double)count / secs, ok |= 2;
		else if (strcmp(what, "invalid") == 0 && count > 0) {
			fprintf(stderr,
			        "bench: python3-jsonschema finds %lu "
			        "of the records invalid\n",
			        count);
			exit(1);
		}
	}
	free(out);
	return ok == 3 ? 0 : -1;
}

int
main(int argc, char **argv)
{
	static const char *const known[] = {
	        "records=", "python-records=", NULL};
	size_t n, npy, bytes;
	char schema_dir[4096], *dir;
	cs_schema_set *set = NULL;
	record_text *r;
	double start, t_round = 0, t_stored = 0, t_valid = 0, py_round,
	              py_valid;

	bench_args_check(argc, argv, known, usage);
	n = (size_t)bench_arg_long(argc, argv, "records", 100000);
	npy = (size_t)bench_arg_long(argc, argv, "python-records", 2000);
	if (npy > n)
		npy = n;
	snprintf(schema_dir, sizeof(schema_dir), "%s/schema",
	         bench_source_root());
	if (cs_schema_set_new(&set) < 0 ||
	    cs_schema_set_load_dir(set, schema_dir) < 0)
		bench_die(schema_dir);

	r = make_records(n, &bytes);
	printf("bench_validate: %zu records (%.1f MB canonical, %.0f bytes "
	       "each on average), python3-jsonschema on %zu\n",
	       n, (double)bytes / 1e6, (double)bytes / (double)n, npy);

	/* Canonical round trip. */
	start = bench_now();
	for (size_t i = 0; i < n; i++) {
		json_t *doc = NULL;
		char *out = NULL;
		size_t len;

		if (cs_json_parse(&doc, r[i].text, r[i].len, NULL) < 0 ||
		    cs_json_canonical(&out, &len, doc) < 0)
			bench_die("cs_json_parse / cs_json_canonical");
		if (len != r[i].len)
			bench_die("the round trip changed a record");
		free(out);
		json_decref(doc);
	}
	t_round = bench_now() - start;

	/* What verification does per stored file. */
	start = bench_now();
	for (size_t i = 0; i < n; i++) {
		json_t *doc = NULL;

		if (cs_record_parse_stored(&doc, r[i].text, r[i].len,
		                           "record") < 0)
			bench_die("cs_record_parse_stored");
		json_decref(doc);
	}
	t_stored = bench_now() - start;

	/* Validation, CHUNK parsed records at a time. */
	for (size_t base = 0; base < n; base += CHUNK) {
		size_t count = n - base < CHUNK ? n - base : CHUNK;
		json_t *docs[CHUNK];
		char names[CHUNK][64];

		for (size_t i = 0; i < count; i++) {
			if (cs_json_parse(&docs[i], r[base + i].text,
			                  r[base + i].len, NULL) < 0)
				bench_die("cs_json_parse");
			snprintf(names[i], sizeof(names[i]), "%s.schema.json",
			         cs_record_type(docs[i]));
		}
		start = bench_now();
		for (size_t i = 0; i < count; i++)
			if (cs_schema_validate(set, names[i], docs[i], NULL) <
			    0) {
				fprintf(stderr,
				        "bench: record %zu (%s): ", base + i,
				        names[i]);
				bench_die("cs_schema_validate");
			}
		t_valid += bench_now() - start;
		for (size_t i = 0; i < count; i++)
			json_decref(docs[i]);
	}

	dir = bench_tmpdir("validate");
	if (run_python(schema_dir, dir, r, npy, &py_round, &py_valid) < 0) {
		fprintf(stderr, "bench: /usr/bin/python3 with jsonschema is "
		                "unavailable; no reference\n");
		py_round = py_valid = 0;
	}
	bench_rmtree(dir);
	free(dir);

	bench_result("cs_schema_validate", (double)n / t_valid, "records/s",
	             "python3-jsonschema Draft7Validator", py_valid,
	             "records/s");
	bench_result("cs_json_parse+canonical", (double)n / t_round,
	             "records/s", "python3 json loads+dumps", py_round,
	             "records/s");
	bench_result("cs_record_parse_stored", (double)n / t_stored,
	             "records/s", "python3 json loads+dumps", py_round,
	             "records/s");
	bench_result("cs_json_parse+canonical", (double)bytes / t_round / 1e6,
	             "MB/s", NULL, 0, NULL);
	bench_results_print();

	for (size_t i = 0; i < n; i++)
		free(r[i].text);
	free(r);
	cs_schema_set_free(set);
	return 0;
}
