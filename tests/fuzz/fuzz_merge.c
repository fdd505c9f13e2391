/*
 * libFuzzer target for lib/merge.c.  The input is
 *
 *     <selector byte> base NUL ours NUL theirs
 *
 * where each part is JSON for cs_json_parse() (an empty part is an absent
 * file; an input with a part that does not parse is skipped).  The selector
 * picks the record type whose rules apply (low 3 bits) and the merge
 * (bits 3-4: 0-1 cs_merge_record, 2 cs_merge_members, 3 cs_merge_policy).
 *
 * Checked, aborting on any difference:
 *   - determinism: the same merge twice gives the same bytes and conflicts;
 *   - symmetry: ours and theirs swapped give the same bytes, the same
 *     conflict pointers and the candidates swapped (and the same error);
 *   - identities: merge(b, x, x) == merge(b, b, x) == merge(b, x, b) == x
 *     without a conflict;
 *   - whatever is merged has a canonical encoding.
 *
 * Rules are read once from $CS_SCHEMA_DIR, else from the source tree's
 * schema/ (found from this file's path, relative to the build directory).
 *
 * Seeds (the golden cases of tests/unit/test_merge.c) are written by
 * tests/data/merge/gen.py to tests/data/merge/corpus/:
 *
 *   cp -r $SRC/tests/data/merge/corpus corpus
 *   CS_SCHEMA_DIR=$SRC/schema ./fuzz_merge -max_total_time=60 \
 *           -max_len=16384 corpus/
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/merge.h"
#include "cartosync/schema.h"

/* Three files, each well under the parser's limit: merges stay fast. */
#define FUZZ_MAX_BYTES (96 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const types[] = {
        "contact",       "location",         "need",    "organization",
        "referral_flow", "referral_pathway", "service", "staffcare_session",
};

static cs_merge_rules *rules[8];

static void
fail(const char *what)
{
	fprintf(stderr, "fuzz_merge: %s (%s)\n", what, cs_error_last());
	abort();
}

static void
load_rules(void)
{
	static const char suffix[] = "tests/fuzz/fuzz_merge.c";
	const char *dir = getenv("CS_SCHEMA_DIR");
	char fallback[4096];
	cs_schema_set *set = NULL;
	size_t i, len = strlen(__FILE__);

	if (dir == NULL) {
		/* The source tree, as the compiler named this file. */
		if (len < sizeof(suffix) - 1 ||
		    len - (sizeof(suffix) - 1) + 7 > sizeof(fallback))
			fail("set CS_SCHEMA_DIR");
		memcpy(fallback, __FILE__, len - (sizeof(suffix) - 1));
		strcpy(fallback + len - (sizeof(suffix) - 1), "schema");
		dir = fallback;
	}
	if (cs_schema_set_new(&set) < 0 || cs_schema_set_load_dir(set, dir) < 0)
		fail("cannot load the schemas (set CS_SCHEMA_DIR)");
	for (i = 0; i < 8; i++)
		if (cs_merge_rules_load(&rules[i], set, types[i]) < 0)
			fail("cannot read the merge rules");
	/* The rules keep what they need. */
	cs_schema_set_free(set);
}

/* The canonical encoding, "" for absent; malloc'd. */
static char *
encode(const json_t *v)
{
	char *out = NULL;
	size_t len;

	if (v == NULL)
		return strdup("");
	if (cs_json_canonical(&out, &len, v) < 0)
		fail("a merged value has no canonical encoding");
	return out;
}

static int
same(const json_t *a, const json_t *b)
{
	char *ea = encode(a), *eb = encode(b);
	int eq = strcmp(ea, eb) == 0;

	free(ea);
	free(eb);
	return eq;
}

typedef struct {
	int rc;
	json_t *merged;
	cs_field_conflicts conflicts;
} outcome;

static void
run(outcome *out, int mode, const cs_merge_rules *r, const json_t *b,
    const json_t *o, const json_t *t)
{
	memset(out, 0, sizeof(*out));
	if (mode == 2)
		out->rc = cs_merge_members(&out->merged, b, o, t);
	else if (mode == 3)
		out->rc = cs_merge_policy(&out->merged, b, o, t);
	else
		out->rc = cs_merge_record(&out->merged, b, o, t, r,
		                          &out->conflicts);
	if (out->rc < 0 && (out->merged || out->conflicts.count))
		fail("a failed merge left a result");
}

static void
dispose(outcome *out)
{
	json_decref(out->merged);
	cs_field_conflicts_clear(&out->conflicts);
}

/* Same result; conflicts the same, or with the sides swapped. */
static void
compare(const outcome *a, const outcome *b, int swapped, const char *what)
{
	size_t i;

	if (a->rc != b->rc)
		fail(what);
	if (!same(a->merged, b->merged) ||
	    a->conflicts.count != b->conflicts.count)
		fail(what);
	for (i = 0; i < a->conflicts.count; i++) {
		const cs_field_conflict *x = &a->conflicts.items[i];
		const cs_field_conflict *y = &b->conflicts.items[i];

		if (strcmp(x->pointer, y->pointer) != 0 ||
		    !same(x->base, y->base) ||
		    !same(x->ours, swapped ? y->theirs : y->ours) ||
		    !same(x->theirs, swapped ? y->ours : y->theirs))
			fail(what);
	}
}

/* merge(b, x, x), merge(b, b, x), merge(b, x, b): x, no conflict. */
static void
identities(int mode, const cs_merge_rules *r, const json_t *b, const json_t *x)
{
	const json_t *cases[3][2] = {{x, x}, {b, x}, {x, b}};
	outcome out;
	int i;

	for (i = 0; i < 3; i++) {
		run(&out, mode, r, b, cases[i][0], cases[i][1]);
		if (out.rc < 0 || !same(out.merged, x) ||
		    out.conflicts.count != 0)
			fail("merge(b, x, x), merge(b, b, x) or merge(b, x, b) "
			     "is not x");
		dispose(&out);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *parts[3] = {NULL, NULL, NULL};
	const char *p, *end, *sep;
	outcome first, again, swapped;
	const cs_merge_rules *r;
	int mode, i;

	if (size < 1 || size > FUZZ_MAX_BYTES)
		return 0;
	if (rules[0] == NULL)
		load_rules();
	r = rules[data[0] & 7];
	mode = (data[0] >> 3) & 3;

	p = (const char *)data + 1;
	end = (const char *)data + size;
	for (i = 0; i < 3; i++) {
		sep = memchr(p, '\0', (size_t)(end - p));
		if (sep == NULL)
			sep = end;
		if (sep > p &&
		    cs_json_parse(&parts[i], p, (size_t)(sep - p), "fuzz") < 0)
			goto done;
		p = sep < end ? sep + 1 : end;
	}

	run(&first, mode, r, parts[0], parts[1], parts[2]);
	run(&again, mode, r, parts[0], parts[1], parts[2]);
	compare(&first, &again, 0, "the same merge twice differs");
	run(&swapped, mode, r, parts[0], parts[2], parts[1]);
	compare(&first, &swapped, 1, "ours and theirs swapped differ");
	if (mode < 2) {
		identities(mode, r, parts[0], parts[1]);
		identities(mode, r, parts[0], parts[2]);
	}
	dispose(&first);
	dispose(&again);
	dispose(&swapped);
done:
	for (i = 0; i < 3; i++)
		json_decref(parts[i]);
	return 0;
}
