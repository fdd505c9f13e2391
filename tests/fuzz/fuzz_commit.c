/*
 * cartosync — libFuzzer target for cs_commit_parse().
 *
 * The input (at most 64 KiB, the grammar's own limit) is a raw commit
 * object.  Besides the sanitizers, every input that parses must satisfy
 * what the exact grammar promises (docs/protocol.md §2): its fields,
 * written back with cs_commit_format_payload() and
 * cs_commit_add_signature(), give the input byte for byte, and the payload
 * is the input without its gpgsig header.  A commit with two spellings
 * would let one signature mint two commit ids.  The kind agrees with the
 * parent count and the signature.
 *
 * Seeds: tests/fuzz/corpus/fuzz_commit/ (commits written by stock git).
 *
 * Build: CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false \
 *          -Db_sanitize=address,undefined -Db_lundef=false
 *        ninja -C build-fuzz tests/fuzz/fuzz_commit
 * Run:   build-fuzz/tests/fuzz/fuzz_commit -max_total_time=60 \
 *          -max_len=65536 NEW_CORPUS tests/fuzz/corpus/fuzz_commit
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/commit.h"
#include "cartosync/error.h"

#define INPUT_MAX (64 * 1024)

static void
fail(const char *what, const uint8_t *data, size_t size)
{
	fprintf(stderr, "fuzz_commit: %s (input of %zu bytes)\n", what, size);
	(void)data;
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cs_commit *c = NULL;
	char *payload = NULL, *whole = NULL;
	size_t plen = 0, wlen = 0;
	int rc;

	if (size > INPUT_MAX)
		return 0;
	rc = cs_commit_parse(&c, (const char *)data, size);
	if (rc < 0) {
		if (c != NULL)
			fail("*out set on failure", data, size);
		if (rc != CS_EINVALID && rc != CS_ELIMIT)
			fail("unexpected error code", data, size);
		if (cs_error_last()[0] == '\0')
			fail("failure without a message", data, size);
		return 0;
	}

	/* The kind agrees with the shape. */
	if (c->parent_count > 2 ||
	    (c->kind == CS_COMMIT_GENESIS) != (c->parent_count == 0) ||
	    (c->kind == CS_COMMIT_EDIT) != (c->parent_count == 1) ||
	    (c->kind == CS_COMMIT_MERGE) != (c->signature == NULL) ||
	    c->message == NULL || c->payload == NULL)
		fail("kind, parents and signature disagree", data, size);
	if (c->payload_len > size ||
	    (c->signature == NULL && c->payload_len != size))
		fail("payload length", data, size);

	/* The fields say everything: written back, they give the input. */
	if (cs_commit_format_payload(&payload, &plen, c) < 0)
		fail("a parsed commit cannot be formatted", data, size);
	if (plen != c->payload_len || memcmp(payload, c->payload, plen) != 0)
		fail("formatted payload differs from the parsed payload", data,
		     size);
	if (c->signature) {
		if (cs_commit_add_signature(&whole, &wlen, payload, plen,
					    c->signature) < 0)
			fail("add_signature failed", data, size);
	} else {
		whole = payload;
		wlen = plen;
		payload = NULL;
	}
	if (wlen != size || memcmp(whole, data, size) != 0)
		fail("re-serialised commit differs from the input", data, size);

	free(whole);
	free(payload);
	cs_commit_free(c);
	return 0;
}
