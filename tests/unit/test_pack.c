/*
 * cartosync — reading objects from pack files (lib/pack.h), against stock
 * git: every object of packs that git wrote (offset deltas, reference
 * deltas, 64-bit offsets, borrowed through alternates) reads back with the
 * type, size and contents whose hash is its id, and is refused over a size
 * limit before it is rebuilt; damaged packs give errors
 * and no read outside the files (the sanitizer build checks that); a scan
 * without the index finds the blobs.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "cartosync/error.h"
#include "cartosync/oid.h"
#include "pack.h"

static char dir[64];

static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/cs-test-pack-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
	run("rm -rf '%s'", dir);
}

/*
 * A history for git to delta: 120 commits over 40 files in nested folders,
 * each commit changing three files a little, in one fast-import stream.
 */
static void
make_history(const char *repo)
{
	char path[256];
	FILE *f;

	run("git init -q --bare '%s'", repo);
	snprintf(path, sizeof(path), "%s/stream", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	for (int c = 0; c < 120; c++) {
		fprintf(f, "commit refs/heads/main\n"
			   "committer t <t@example.org> %d +0000\n"
			   "data 8\ncommit %d\n",
			c + 1000000000, c % 10);
		for (int k = 0; k < (c == 0 ? 40 : 3); k++) {
			int file = c == 0 ? k : (c * 7 + k * 13) % 40;
			char body[4096];
			int n = 0;

			for (int line = 0; line < 60; line++)
				n += snprintf(body + n, sizeof(body) - (size_t)n,
					      "file %d line %d: %s\n", file,
					      line,
					      line == c % 60 ? "changed"
							     : "the same");
			n += snprintf(body + n, sizeof(body) - (size_t)n,
				      "version %d\n", c);
			fprintf(f, "M 100644 inline records/o%d/t%d/%02x/f%d.json\n"
				   "data %d\n%s\n",
				file % 3, file % 4, file, file, n, body);
		}
	}
	fclose(f);
	run("git -C '%s' fast-import --quiet < '%s'", repo, path);
}

/* The id of a git object of `type` with these contents. */
static void
object_id(cs_oid *out, int type, const char *data, size_t len)
{
	static const char *const names[] = {"", "commit", "tree", "blob",
					    "tag"};
	char head[32];
	int n = snprintf(head, sizeof(head), "%s %zu", names[type], len);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned mdlen = 0;

	ck_assert(EVP_DigestInit_ex(md, EVP_sha1(), NULL));
	ck_assert(EVP_DigestUpdate(md, head, (size_t)n + 1));
	ck_assert(EVP_DigestUpdate(md, data, len));
	ck_assert(EVP_DigestFinal_ex(md, out->id, &mdlen));
	ck_assert_uint_eq(mdlen, 20);
	EVP_MD_CTX_free(md);
}

static int
type_number(const char *name)
{
	return strcmp(name, "commit") == 0 ? CS_PACK_COMMIT
	       : strcmp(name, "tree") == 0 ? CS_PACK_TREE
	       : strcmp(name, "blob") == 0 ? CS_PACK_BLOB
	       : strcmp(name, "tag") == 0  ? CS_PACK_TAG
					   : -1;
}

/*
 * Read every object git lists in `repo` through a reader of `objects`:
 * the same type and size, contents that hash to the id.  `damaged` allows
 * errors instead (never anything else).  Returns how many read.
 */
static int
read_all(const char *repo, const char *objects, int damaged)
{
	char cmd[512], line[256], hex[64], type[16];
	size_t size;
	cs_pack_reader *r;
	FILE *list;
	int n = 0, errors = 0;

	ck_assert_msg(cs_pack_reader_open(&r, objects) == 0, "%s",
		      cs_error_last());
	/* Listed first: git would not list a damaged pack's objects. */
	snprintf(cmd, sizeof(cmd),
		 "test -f '%s/list' || git -C '%s' cat-file "
		 "--batch-all-objects --batch-check > '%s/list'; cat '%s/list'",
		 dir, repo, dir, dir);
	list = popen(cmd, "r");
	ck_assert_ptr_nonnull(list);
	while (fgets(line, sizeof(line), list)) {
		cs_oid id, again;
		char *data = NULL;
		size_t len = 0;
		int t = 0, rc;

		ck_assert_int_eq(sscanf(line, "%63s %15s %zu", hex, type, &size),
				 3);
		ck_assert_int_eq(cs_oid_parse(&id, hex, strlen(hex)), 0);
		rc = cs_pack_read(r, &id, SIZE_MAX, &t, &data, &len);
		if (damaged && rc < 0) {
			ck_assert_msg(rc == CS_EINVALID || rc == CS_ENOTFOUND,
				      "%s: %d %s", hex, rc, cs_error_last());
			ck_assert_ptr_null(data);
			if (rc == CS_EINVALID)
				ck_assert_msg(strstr(cs_error_last(),
						     "is damaged") != NULL,
					      "%s", cs_error_last());
			errors++;
			continue;
		}
		ck_assert_msg(rc == 0, "%s: %s", hex, cs_error_last());
		ck_assert_ptr_nonnull(data);
		ck_assert_int_eq(data[len], '\0');
		if (!damaged) {
			ck_assert_int_eq(t, type_number(type));
			ck_assert_uint_eq(len, size);
			object_id(&again, t, data, len);
			ck_assert_msg(cs_oid_cmp(&again, &id) == 0,
				      "%s: contents do not match", hex);
		}
		free(data);
		/* One byte over the limit: refused before it is built. */
		if (!damaged && size > 0) {
			data = NULL;
			len = 0;
			ck_assert_int_eq(cs_pack_read(r, &id, size - 1, &t,
						      &data, &len),
					 CS_ELIMIT);
			ck_assert_ptr_null(data);
			ck_assert_uint_eq(len, size);
			ck_assert_ptr_nonnull(strstr(cs_error_last(),
						     "over the limit"));
		}
		n++;
	}
	ck_assert_int_eq(pclose(list), 0);
	cs_pack_reader_free(r);
	return damaged ? errors : n;
}

/* How many objects of the packs of `repo` are deltas. */
static int
deltas(const char *repo)
{
	char cmd[512], line[512];
	int n = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd),
		 "for i in '%s'/objects/pack/*.idx; do git verify-pack -v "
		 "\"$i\"; done",
		 repo);
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		char a[64], b[16];
		unsigned long x, y, z, depth;

		n += sscanf(line, "%63s %15s %lu %lu %lu %lu", a, b, &x, &y, &z,
			    &depth) == 6;
	}
	pclose(f);
	return n;
}

START_TEST(test_offset_deltas)
{
	char repo[128], objects[160];

	snprintf(repo, sizeof(repo), "%s/r", dir);
	snprintf(objects, sizeof(objects), "%s/objects", repo);
	make_history(repo);
	run("git -C '%s' repack -adfq --depth=50 --window=50", repo);
	ck_assert_int_ge(deltas(repo), 200);
	/* 120 commits, their trees, the files' versions. */
	ck_assert_int_ge(read_all(repo, objects, 0), 120 + 400 + 400);
}
END_TEST

START_TEST(test_reference_deltas)
{
	char repo[128], objects[160];

	snprintf(repo, sizeof(repo), "%s/r", dir);
	snprintf(objects, sizeof(objects), "%s/objects", repo);
	make_history(repo);
	run("git -C '%s' -c repack.useDeltaBaseOffset=false repack -adfq",
	    repo);
	ck_assert_int_ge(deltas(repo), 200);
	ck_assert_int_ge(read_all(repo, objects, 0), 900);
}
END_TEST

/* An index that gives every object past the first 64 bytes a 64-bit
 * offset, and two packs at once. */
START_TEST(test_large_offsets_two_packs)
{
	char repo[128], objects[160];

	snprintf(repo, sizeof(repo), "%s/r", dir);
	snprintf(objects, sizeof(objects), "%s/objects", repo);
	make_history(repo);
	run("git -C '%s' repack -adfq && cd '%s'/objects/pack && for p in "
	    "*.pack; do rm \"${p%%.pack}.idx\" && git index-pack "
	    "--index-version=2,64 \"$p\" >/dev/null; done",
	    repo, repo);
	/* fast-import writes a pack of its own. */
	run("printf 'commit refs/heads/main\\ncommitter t <t@example.org> "
	    "1100000000 +0000\\ndata 4\\nmore\\nfrom refs/heads/main^0\\n"
	    "M 100644 inline extra.json\\ndata 6\\nextra\\n\\n' | "
	    "git -C '%s' -c fastimport.unpackLimit=0 fast-import --quiet && test $(ls '%s'/objects/pack/"
	    "*.pack | wc -l) = 2",
	    repo, repo);
	ck_assert_int_ge(read_all(repo, objects, 0), 900);
}
END_TEST

/* A store that borrows another's objects (a staging store) finds them;
 * loose objects and unknown ids are left to the caller. */
START_TEST(test_alternates_and_misses)
{
	char repo[128], other[128], objects[160], path[256];
	cs_pack_reader *r;
	cs_oid id;
	char *data = (char *)"x";
	size_t len;
	int type;
	FILE *f;

	snprintf(repo, sizeof(repo), "%s/r", dir);
	snprintf(other, sizeof(other), "%s/staging", dir);
	make_history(repo);
	run("git -C '%s' repack -adq", repo);
	run("git init -q --bare '%s'", other);
	snprintf(path, sizeof(path), "%s/objects/info/alternates", other);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "# a comment\n%s/objects\n", repo);
	fclose(f);
	snprintf(objects, sizeof(objects), "%s/objects", other);
	ck_assert_int_ge(read_all(repo, objects, 0), 900);

	ck_assert_int_eq(cs_pack_reader_open(&r, objects), 0);
	ck_assert_int_eq(cs_oid_parse(&id, "0123456789abcdef0123456789abcdef"
					   "01234567",
				      40),
			 0);
	ck_assert_int_eq(cs_pack_read(r, &id, SIZE_MAX, &type, &data, &len),
			 CS_ENOTFOUND);
	ck_assert_ptr_null(data);
	cs_pack_reader_free(r);

	/* No packs at all. */
	snprintf(objects, sizeof(objects), "%s/nothing", dir);
	ck_assert_int_eq(cs_pack_reader_open(&r, objects), 0);
	ck_assert_int_eq(cs_pack_read(r, &id, SIZE_MAX, &type, &data, &len),
			 CS_ENOTFOUND);
	cs_pack_reader_free(r);
}
END_TEST

/*
 * Damage: bytes of the pack's data overwritten at spread places, and the
 * pack cut short.  Every read is then an error that says the pack is
 * damaged, or a read; never a crash or a read outside the files.
 */
START_TEST(test_damaged_packs)
{
	char repo[128], objects[160], pack[512];
	struct stat st;
	FILE *p;
	int errors = 0;

	snprintf(repo, sizeof(repo), "%s/r", dir);
	snprintf(objects, sizeof(objects), "%s/objects", repo);
	make_history(repo);
	run("git -C '%s' repack -adfq --depth=50", repo);
	snprintf(pack, sizeof(pack), "ls '%s'/objects/pack/*.pack", repo);
	p = popen(pack, "r");
	ck_assert_ptr_nonnull(fgets(pack, sizeof(pack), p));
	pclose(p);
	pack[strcspn(pack, "\n")] = '\0';
	ck_assert_int_eq(stat(pack, &st), 0);
	run("chmod u+w '%s' && cp '%s' '%s/pack.orig'", pack, pack, dir);
	ck_assert_int_ge(read_all(repo, objects, 0), 900);

	for (int round = 0; round < 12; round++) {
		FILE *f = fopen(pack, "r+");
		long at = 12 + (long)round * (st.st_size - 40) / 12 + round * 7;

		ck_assert_ptr_nonnull(f);
		ck_assert_int_eq(fseek(f, at, SEEK_SET), 0);
		for (int k = 0; k < 24; k++)
			fputc((round * 37 + k * 101) & 0xff, f);
		fclose(f);
		errors += read_all(repo, objects, 1);
		run("cp '%s/pack.orig' '%s'", dir, pack);
	}
	ck_assert_int_ge(errors, 12);

	/* Cut: the index still lists objects past the end. */
	ck_assert_int_eq(truncate(pack, st.st_size / 2), 0);
	ck_assert_int_ge(read_all(repo, objects, 1), 100);
}
END_TEST

typedef struct {
	cs_oid *ids;
	size_t n, cap;
} scanned;

static int
collect_blob(const char *data, size_t len, void *arg)
{
	scanned *sc = arg;

	if (sc->n == sc->cap) {
		sc->cap = sc->cap ? sc->cap * 2 : 64;
		sc->ids = realloc(sc->ids, sc->cap * sizeof(*sc->ids));
		ck_assert_ptr_nonnull(sc->ids);
	}
	ck_assert_int_eq(data[len], '\0');
	object_id(&sc->ids[sc->n++], CS_PACK_BLOB, data, len);
	return 0;
}

/* How many of git's blobs of `repo` are among `sc`, and whether every
 * one of `sc` is one of git's. */
static size_t
blobs_found(const char *repo, const scanned *sc, size_t *total)
{
	char cmd[512], line[256], hex[64], type[16];
	size_t found = 0, blobs = 0;
	FILE *list;

	snprintf(cmd, sizeof(cmd),
		 "git -C '%s' cat-file --batch-all-objects --batch-check",
		 repo);
	list = popen(cmd, "r");
	ck_assert_ptr_nonnull(list);
	while (fgets(line, sizeof(line), list)) {
		cs_oid id;

		ck_assert_int_eq(sscanf(line, "%63s %15s", hex, type), 2);
		if (strcmp(type, "blob") != 0)
			continue;
		blobs++;
		ck_assert_int_eq(cs_oid_parse(&id, hex, strlen(hex)), 0);
		for (size_t i = 0; i < sc->n; i++)
			if (cs_oid_cmp(&sc->ids[i], &id) == 0) {
				found++;
				break;
			}
	}
	pclose(list);
	/* Nothing that is not one of git's blobs, nothing twice. */
	ck_assert_uint_eq(found, sc->n);
	*total = blobs;
	return found;
}

static char *
only_pack(const char *repo)
{
	char cmd[512], line[512];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "ls '%s'/objects/pack/*.pack", repo);
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
	pclose(f);
	line[strcspn(line, "\n")] = '\0';
	return strdup(line);
}

/*
 * Scanning a pack without its index (cs_pack_scan, as the precheck does
 * while the indexer works): every blob of a pack of offset deltas, each
 * rebuilt right; with reference deltas, the blobs stored whole; nothing
 * once stopped.
 */
START_TEST(test_scan)
{
	char repo[128], *pack;
	scanned sc = {0};
	atomic_int stop = 0;
	size_t blobs, total;

	snprintf(repo, sizeof(repo), "%s/r", dir);
	make_history(repo);
	run("git -C '%s' repack -adfq --depth=50", repo);
	pack = only_pack(repo);
	ck_assert_int_eq(cs_pack_scan(pack, CS_PACK_BLOB, collect_blob, &sc,
				      &stop),
			 0);
	blobs = blobs_found(repo, &sc, &total);
	ck_assert_uint_ge(blobs, 390);
	ck_assert_uint_eq(blobs, total);
	free(pack);

	sc.n = 0;
	run("git -C '%s' -c repack.useDeltaBaseOffset=false repack -adfq",
	    repo);
	pack = only_pack(repo);
	ck_assert_int_eq(cs_pack_scan(pack, CS_PACK_BLOB, collect_blob, &sc,
				      &stop),
			 0);
	ck_assert_uint_ge(blobs_found(repo, &sc, &total), 40);
	ck_assert_uint_lt(sc.n, total);

	sc.n = 0;
	atomic_store(&stop, 1);
	ck_assert_int_eq(cs_pack_scan(pack, CS_PACK_BLOB, collect_blob, &sc,
				      &stop),
			 0);
	ck_assert_uint_eq(sc.n, 0);
	free(pack);
	free(sc.ids);
}
END_TEST

/* Append a pack entry header (type, size) to `out`. */
static size_t
put_header(uint8_t *out, int type, size_t size)
{
	size_t n = 0;
	uint8_t c = (uint8_t)((type << 4) | (size & 15));

	size >>= 4;
	while (size) {
		out[n++] = c | 0x80;
		c = size & 0x7f;
		size >>= 7;
	}
	out[n++] = c;
	return n;
}

/* Append `len` bytes of `data` deflated (zlib). */
static size_t
put_deflated(uint8_t *out, size_t room, const void *data, size_t len)
{
	uLongf n = room;

	ck_assert_int_eq(compress2(out, &n, data, len, 9), Z_OK);
	return n;
}

/*
 * A pack that builds far more than it holds: an 8 MiB file of zeros (a few
 * KiB deflated), then 200 offset deltas, each copying the whole of the one
 * before.  Too large to cache, each object rebuilds its chain: gigabytes.
 * The scan stops at its budget instead.
 */
START_TEST(test_scan_budget)
{
	enum { SIZE = 8 << 20, DELTAS = 200 };
	size_t room = 1 << 20, at = 12, prev = 12;
	uint8_t *pack = calloc(1, room), *zeros = calloc(1, SIZE);
	uint8_t delta[16];
	char path[128];
	scanned sc = {0};
	atomic_int stop = 0;
	FILE *f;
	int rc;

	ck_assert_ptr_nonnull(pack);
	ck_assert_ptr_nonnull(zeros);
	memcpy(pack, "PACK\0\0\0\2", 8);
	pack[8] = 0;
	pack[9] = 0;
	pack[10] = (1 + DELTAS) >> 8;
	pack[11] = (1 + DELTAS) & 0xff;
	at += put_header(pack + at, CS_PACK_BLOB, SIZE);
	at += put_deflated(pack + at, room - at, zeros, SIZE);
	/* base size, result size (8 MiB: 0x800000), copy 0x800000 from 0 */
	{
		size_t d = 0;

		/* 0x800000 = 2^23 in groups of 7 bits, low first */
		for (int k = 0; k < 2; k++) {
			delta[d++] = 0x80;
			delta[d++] = 0x80;
			delta[d++] = 0x80;
			delta[d++] = 0x04;
		}
		delta[d++] = 0xc0; /* copy, third size byte given */
		delta[d++] = 0x80;
		for (int i = 0; i < DELTAS; i++) {
			size_t here = at, back = here - prev, pos = 15;
			uint8_t ofs[16];

			at += put_header(pack + at, 6, d);
			ofs[pos] = back & 127;
			while (back >>= 7)
				ofs[--pos] = 128 | (--back & 127);
			memcpy(pack + at, ofs + pos, 16 - pos);
			at += 16 - pos;
			at += put_deflated(pack + at, room - at, delta, d);
			prev = here;
		}
	}
	at += 20; /* the trailer: not read */
	snprintf(path, sizeof(path), "%s/bomb.pack", dir);
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(pack, 1, at, f), at);
	fclose(f);

	rc = cs_pack_scan(path, CS_PACK_BLOB, collect_blob, &sc, &stop);
	ck_assert_int_eq(rc, CS_ELIMIT);
	ck_assert_msg(strstr(cs_error_last(), "far more") != NULL, "%s",
		      cs_error_last());
	/* The file and the first deltas were built and handed out. */
	ck_assert_uint_ge(sc.n, 2);
	ck_assert_uint_lt(sc.n, DELTAS);
	free(sc.ids);
	free(pack);
	free(zeros);
}
END_TEST

static Suite *
pack_suite(void)
{
	Suite *s = suite_create("pack");
	TCase *tc = tcase_create("pack");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_offset_deltas);
	tcase_add_test(tc, test_reference_deltas);
	tcase_add_test(tc, test_large_offsets_two_packs);
	tcase_add_test(tc, test_alternates_and_misses);
	tcase_add_test(tc, test_damaged_packs);
	tcase_add_test(tc, test_scan);
	tcase_add_test(tc, test_scan_budget);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(pack_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
