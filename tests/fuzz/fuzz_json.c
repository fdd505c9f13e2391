/*
 * libFuzzer target for lib/json.c: whatever parses must canonicalise, the
 * canonical form must parse back, re-encode to the same bytes and be
 * recognised as canonical; the one-pass reader of the canonical form must
 * accept only canonical text, as the same value.  Any difference aborts.
 *
 *   ./fuzz_json -max_total_time=30 -max_len=4096
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/error.h"
#include "cartosync/json.h"

/* A little over the parser's limit, so that the limit itself is hit. */
#define FUZZ_MAX_BYTES (300 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fail(const char *what, const char *canon)
{
	fprintf(stderr, "fuzz_json: %s (%s)\n", what, cs_error_last());
	if (canon)
		fprintf(stderr, "canonical form:\n%s", canon);
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *value = NULL, *again = NULL, *fast = NULL;
	char *once = NULL, *twice = NULL;
	size_t once_len, twice_len;
	int read;

	if (size > FUZZ_MAX_BYTES)
		return 0;
	read = cs_json_read_canonical(&fast, (const char *)data, size);
	if (cs_json_parse(&value, (const char *)data, size, "fuzz") < 0) {
		if (read)
			fail("the one-pass reader took what does not parse",
			     NULL);
		return 0;
	}

	/* Everything the parser accepts, the canonical form can hold. */
	if (cs_json_canonical(&once, &once_len, value) < 0)
		fail("a parsed value does not encode", NULL);
	if (strlen(once) != once_len)
		fail("canonical length disagrees with the text", once);

	/* Indentation may carry the canonical form past the size limit. */
	if (once_len > CS_JSON_MAX_BYTES)
		goto done;

	if (cs_json_parse(&again, once, once_len, "canonical") < 0)
		fail("the canonical form does not parse", once);
	if (cs_json_canonical(&twice, &twice_len, again) < 0)
		fail("the re-parsed value does not encode", once);
	if (once_len != twice_len || memcmp(once, twice, once_len) != 0)
		fail("canonical(parse(canonical(x))) != canonical(x)", once);
	if (!cs_json_is_canonical(once, once_len))
		fail("the canonical form is not recognised as canonical", once);
	if (cs_json_depth(again) != cs_json_depth(value))
		fail("depth changed through the canonical form", once);
	if (read && (once_len != size || memcmp(once, data, size) != 0))
		fail("the one-pass reader took text that is not canonical",
		     once);
	if (read && !json_equal(fast, value))
		fail("the one-pass reader read another value", once);
done:
	free(once);
	free(twice);
	json_decref(value);
	json_decref(again);
	json_decref(fast);
	return 0;
}
