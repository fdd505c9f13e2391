/*
 * libFuzzer target for lib/pack.c: a pack file read without its index, as
 * the precheck reads one the indexer is still writing (cs_pack_scan):
 * every blob and tree, whole or rebuilt from offset deltas, through the
 * reader's cache.  Whatever the bytes, it returns (a damaged part is an
 * error) and reads nothing outside the file (the sanitizers check).
 *
 *   ./fuzz_pack -max_total_time=30 -max_len=65536
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
touch(const char *data, size_t len, void *arg)
{
	size_t *sum = arg;

	/* Every byte handed out is read, and the terminating NUL. */
	for (size_t i = 0; i <= len; i++)
		*sum += (unsigned char)data[i];
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	static const uint8_t header[] = {'P', 'A', 'C', 'K', 0, 0, 0, 2};
	atomic_int stop = 0;
	size_t sum = 0;
	FILE *f;

	if (path[0] == '\0')
		snprintf(path, sizeof(path), "/tmp/fuzz_pack.%ld.pack",
			 (long)getpid());
	if ((f = fopen(path, "wb")) == NULL)
		abort();
	/* The signature and version, so that the fuzzer works on the rest:
	 * the object count, the objects, the trailer. */
	fwrite(header, 1, sizeof(header), f);
	fwrite(data, 1, size, f);
	fclose(f);
	(void)cs_pack_scan(path, CS_PACK_BLOB, touch, &sum, &stop);
	(void)cs_pack_scan(path, CS_PACK_TREE, touch, &sum, &stop);
	unlink(path);
	return 0;
}
