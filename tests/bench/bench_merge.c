/*
 * cartosync — the tree-level merge (cs_history_merge) at --records records
 * (default 100,000) in 6 owner folders, beside stock `git merge-tree
 * --write-tree` and libgit2's git_merge_commits() of the same two commits
 * in the same repository, measured in the same run.  Prints figures; never
 * asserts a time.
 *
 * The consortium is made by the real program (coordinator mdm-be, which may
 * write every owner folder); the records are variants of the service and
 * location samples of tests/data/sample, their canonical bytes written
 * in a pack by `git fast-import` (as a node that cloned or fetched holds
 * them; --loose: loose objects written by cs_node_write_json()) and committed
 * with cs_node_commit() (signed, preflight-checked) on top of the genesis,
 * without fsync.  That commit is the base B; what follows is written loose,
 * as the library writes it.
 * Every side is a signed edit on B, all made before anything is timed:
 *
 *   - big merge: side A changes the description of --changed (default
 *     1,000) records, side B of as many, --conflicts (default 100) of them
 *     also changed by A to another value.  Timed apart:
 *     cs_history_load({A, B}) and cs_history_merge(A, B) ("fresh": a new
 *     history, so the merge loads the consortium state and merge rules);
 *     median of --big-repeat (default 3) pairs.  Then once more in a
 *     history whose state an earlier merge loaded ("warm").  The result is
 *     checked: conflict files under conflicts/, paths changed against B.
 *   - one-record merge: each side changes one (different) record; median
 *     of --repeat (default 11) pairs, fresh and warm, and warm with fsync
 *     on (what a node pays: objects are fsynced process-wide).
 *   - references: `git -C <repo> merge-tree --write-tree --name-only A B`
 *     through popen (its time includes starting a process: `git rev-parse`
 *     alone is printed for scale) and git_merge_commits() in process (an
 *     in-memory index, nothing written), for the same pairs.
 *   - peak RSS (ru_maxrss) of the first big merge (the peak is reset
 *     through /proc/self/clear_refs just before it and read after it; it
 *     includes what the generator holds: the growth over the RSS before
 *     the merge is printed too), beside the largest child's (git
 *     merge-tree, git fast-import, cartosync init).
 *
 * Usage: bench_merge [--records N] [--changed N] [--conflicts N]
 *                    [--repeat N] [--big-repeat N] [--batch N] [--loose]
 *        CS_BENCH_KEEP=1 keeps the node directory.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <git2.h>

#include "cartosync/error.h"
#include "cartosync/history.h"
#include "cartosync/json.h"
#include "cartosync/node.h"
#include "cartosync/oid.h"
#include "cartosync/record.h"
#include "cartosync/repo.h"
#include "bench.h"

static const char usage[] =
        "usage: bench_merge [--records N] [--changed N] [--conflicts N]\n"
        "                   [--repeat N] [--big-repeat N] [--batch N]"
        " [--loose]\n"
        "  --records N     records in the map, 6 owner folders (default"
        " 100000)\n"
        "  --changed N     records each side of the big merge changes"
        " (default 1000)\n"
        "  --conflicts N   of which both sides change (default 100)\n"
        "  --repeat N      one-record merges timed (default 11)\n"
        "  --big-repeat N  big merges timed (default 3)\n"
        "  --batch N       records per generation commit (default: all in"
        " one)\n"
        "  --loose         write the record blobs as loose objects with"
        " cs_node_write_json\n"
        "                  (default: one pack, as a node that cloned holds"
        " them)\n";

static const char *const known[] = {
        "records=",    "changed=", "conflicts=", "repeat=",
        "big-repeat=", "batch=",   "loose",      NULL};

static const char *const owners[] = {"mdm-be", "ms2",  "alcs",
                                     "dj",     "cefa", CS_OWNER_SHARED};
#define NOWNERS (sizeof(owners) / sizeof(owners[0]))

/* The map: record i is at paths[i], blob blobs[i] in the base B. */
static char **paths;
static cs_oid *blobs;
static size_t nrecords;
static size_t *perm; /* a shuffled order of the records, to pick from */

static cs_node *node;
static cs_repo *repo;

/* ---- small helpers ---- */

static int
dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *v, size_t n)
{
	if (n == 0)
		return -1;
	qsort(v, n, sizeof(*v), dbl_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rng(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static const char *
hex(const cs_oid *id)
{
	static char ring[4][CS_OID_HEXSZ + 1];
	static int next;
	char *s = ring[next++ % 4];

	cs_oid_fmt(s, id);
	return s;
}

/* Peak RSS of this process, in MB. */
static double
self_peak_mb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_maxrss / 1024.0;
}

static double
children_peak_mb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_CHILDREN, &ru);
	return (double)ru.ru_maxrss / 1024.0;
}

/* A "VmRSS:"-style field of /proc/self/status, in MB (-1 if absent). */
static double
status_mb(const char *field)
{
	char line[256];
	size_t n = strlen(field);
	double kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			kb = atof(line + n + 1);
	fclose(f);
	return kb < 0 ? -1 : kb / 1024.0;
}

/* Reset the peak RSS (Linux >= 4.0); 0 if done. */
static int
reset_peak(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");
	int ok;

	if (f == NULL)
		return -1;
	ok = fputs("5", f) >= 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* ---- the map ---- */

/*
 * Record blobs in one pack, the storage of a node that cloned or fetched
 * its history (and 100,000 loose objects take minutes to delete on some
 * file systems): their canonical bytes, as cs_node_write_json() writes
 * them, fed to stock `git fast-import`; ids computed by libgit2.
 */
typedef struct {
	FILE *pipe;
} packer;

static void
packer_open(packer *p)
{
	char *cmd = NULL;

	if (asprintf(&cmd, "git -C %s fast-import --quiet",
	             bench_q(cs_repo_path(repo))) < 0)
		bench_die("out of memory");
	fflush(stdout);
	if ((p->pipe = popen(cmd, "w")) == NULL)
		bench_die("popen git fast-import");
	free(cmd);
}

static void
packer_write(packer *p, cs_oid *out, const json_t *record)
{
	char *text = NULL, hexid[GIT_OID_HEXSZ + 1];
	size_t len = 0;
	git_oid gid;

	if (cs_json_canonical(&text, &len, record) < 0 ||
	    git_odb_hash(&gid, text, len, GIT_OBJECT_BLOB) < 0)
		bench_die("hash a record blob");
	git_oid_tostr(hexid, sizeof(hexid), &gid);
	if (cs_oid_parse(out, hexid, GIT_OID_HEXSZ) < 0)
		bench_die("oid");
	if (fprintf(p->pipe, "blob\ndata %zu\n", len) < 0 ||
	    fwrite(text, 1, len, p->pipe) != len || fputc('\n', p->pipe) < 0)
		bench_die("write to git fast-import");
	free(text);
}

static void
packer_close(packer *p)
{
	int status = pclose(p->pipe);

	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		bench_die("git fast-import failed");
}

static void
populate(size_t batch, int loose)
{
	json_t *samples = bench_samples("service-");
	json_t *locations = bench_samples("location-");
	cs_tree_update *updates;
	cs_oid base, out;
	size_t nsamples;
	double start = bench_now(), t_blobs, t_commit = 0, t;
	packer pk = {0};
	int in_main;

	json_array_extend(samples, locations);
	json_decref(locations);
	nsamples = json_array_size(samples);
	paths = calloc(nrecords, sizeof(*paths));
	blobs = calloc(nrecords, sizeof(*blobs));
	updates = calloc(batch, sizeof(*updates));
	if (paths == NULL || blobs == NULL || updates == NULL)
		bench_die("out of memory");
	if (cs_node_main(&base, node) < 0)
		bench_die("main");

	if (!loose)
		packer_open(&pk);
	for (size_t i = 0; i < nrecords; i++) {
		json_t *r = bench_variant(json_array_get(samples, i % nsamples),
		                          owners[i % NOWNERS], i);

		if (cs_record_path(&paths[i], r) < 0)
			bench_die("record path");
		if (loose) {
			if (cs_node_write_json(&blobs[i], node, r) < 0)
				bench_die("write a record");
		} else {
			packer_write(&pk, &blobs[i], r);
		}
		json_decref(r);
	}
	if (!loose)
		packer_close(&pk);
	t_blobs = bench_now() - start;
	bench_note("%zu record blobs written (%s)", nrecords,
	           loose ? "loose objects" : "one pack");

	for (size_t done = 0; done < nrecords;) {
		size_t count =
		        nrecords - done < batch ? nrecords - done : batch;
		char message[80];

		for (size_t i = 0; i < count; i++)
			updates[i] = (cs_tree_update){paths[done + i],
			                              &blobs[done + i]};
		done += count;
		snprintf(message, sizeof(message), "bench: records %zu-%zu\n",
		         done - count + 1, done);
		t = bench_now();
		if (cs_node_commit(&out, &in_main, node, &base, updates, count,
		                   message) < 0)
			bench_die("cs_node_commit (generation)");
		t_commit += bench_now() - t;
		if (!in_main)
			bench_die("generation commit not in main");
		base = out;
		bench_note("%zu records committed", done);
	}
	bench_note("generation: %zu records in %.1f s (blobs %.1f s, "
	           "cs_node_commit %.1f s)",
	           nrecords, bench_now() - start, t_blobs, t_commit);
	free(updates);
	json_decref(samples);

	perm = malloc(nrecords * sizeof(*perm));
	if (perm == NULL)
		bench_die("out of memory");
	for (size_t i = 0; i < nrecords; i++)
		perm[i] = i;
	for (size_t i = nrecords; i > 1; i--) {
		size_t j = (size_t)(rng() % i), x = perm[i - 1];

		perm[i - 1] = perm[j];
		perm[j] = x;
	}
}

/*
 * A signed edit on `base` giving records perm[first..first+n) (mod the
 * map) the description "<tag> <k>".
 */
static void
side(cs_oid *out, const cs_oid *base, size_t first, size_t n, const char *tag)
{
	cs_tree_update *updates = calloc(n, sizeof(*updates));
	cs_oid *ids = calloc(n, sizeof(*ids));
	char message[120];
	int in_main;

	if (updates == NULL || ids == NULL)
		bench_die("out of memory");
	for (size_t k = 0; k < n; k++) {
		size_t i = perm[(first + k) % nrecords];
		char *buf = NULL, value[120];
		size_t len = 0;
		json_t *r = NULL;

		if (cs_repo_read_blob(&buf, &len, repo, &blobs[i],
		                      CS_RECORD_MAX_BYTES) < 0 ||
		    cs_json_parse(&r, buf, len, paths[i]) < 0)
			bench_die("read a record");
		snprintf(value, sizeof(value), "%s %zu", tag, k);
		json_object_set_new(r, "description", json_string(value));
		if (cs_node_write_json(&ids[k], node, r) < 0)
			bench_die("write a record");
		updates[k] = (cs_tree_update){paths[i], &ids[k]};
		json_decref(r);
		free(buf);
	}
	snprintf(message, sizeof(message), "bench: %s, %zu records\n", tag, n);
	if (cs_node_commit(out, &in_main, node, base, updates, n, message) < 0)
		bench_die("cs_node_commit (side)");
	free(updates);
	free(ids);
}

/* ---- cartosync's merge ---- */

static int
count_cb(const char *path, const cs_oid *id, unsigned mode, void *payload)
{
	(void)path;
	(void)id;
	(void)mode;
	(*(size_t *)payload)++;
	return 0;
}

static int
diff_cb(const cs_tree_change *change, void *payload)
{
	(void)change;
	(*(size_t *)payload)++;
	return 0;
}

typedef struct {
	double load;      /* cs_history_load, s */
	double merge;     /* cs_history_merge, s */
	size_t conflicts; /* files under conflicts/ in the merged tree */
	size_t changed;   /* paths changed against the base B */
	size_t found;     /* cs_history_conflicts_found */
} cs_result;

/* ---- the reference: git merge-tree ---- */

/* `git merge-tree --write-tree --name-only a b`: seconds, and the number
 * of conflicted paths it lists; negative if git failed. */
static double
git_merge_tree(size_t *conflicts, const cs_oid *a, const cs_oid *b)
{
	char *cmd = NULL, line[4096];
	double start, elapsed;
	int status, section = 0;
	FILE *f;

	*conflicts = 0;
	if (asprintf(&cmd,
	             "git -C %s merge-tree --write-tree --name-only %s %s",
	             bench_q(cs_repo_path(repo)), hex(a), hex(b)) < 0)
		bench_die("out of memory");
	fflush(stdout);
	start = bench_now();
	if ((f = popen(cmd, "r")) == NULL)
		bench_die("popen git merge-tree");
	/* First line: the tree; then one conflicted path per line, then an
	 * empty line and messages. */
	while (fgets(line, sizeof(line), f) != NULL) {
		if (section == 0)
			section = 1;
		else if (section == 1 && line[0] == '\n')
			section = 2;
		else if (section == 1)
			(*conflicts)++;
	}
	status = pclose(f);
	elapsed = bench_now() - start;
	free(cmd);
	/* Exit status 1: the merge has conflicts. */
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) > 1)
		return -1;
	return elapsed;
}

static double
git_start_time(void)
{
	double t[5];

	for (int i = 0; i < 5; i++)
		t[i] = bench_sh_time("git -C %s rev-parse --git-dir >/dev/null",
		                     bench_q(cs_repo_path(repo)));
	return median(t, 5);
}

/* ---- the in-process reference: libgit2's merge ---- */

static git_repository *git_repo;

/* git_merge_commits(a, b) into an in-memory index: seconds, and the
 * number of conflicts in the index. */
static double
libgit2_merge(size_t *conflicts, const cs_oid *a, const cs_oid *b)
{
	git_commit *ca = NULL, *cb = NULL;
	git_index *index = NULL;
	git_index_conflict_iterator *it = NULL;
	const git_index_entry *anc, *ours, *theirs;
	git_oid ga, gb;
	double start, elapsed;

	*conflicts = 0;
	if (git_repo == NULL &&
	    git_repository_open(&git_repo, cs_repo_path(repo)) < 0)
		bench_die("git_repository_open");
	if (git_oid_fromstr(&ga, hex(a)) < 0 ||
	    git_oid_fromstr(&gb, hex(b)) < 0)
		bench_die("git_oid_fromstr");
	start = bench_now();
	if (git_commit_lookup(&ca, git_repo, &ga) < 0 ||
	    git_commit_lookup(&cb, git_repo, &gb) < 0 ||
	    git_merge_commits(&index, git_repo, ca, cb, NULL) < 0)
		bench_die("git_merge_commits");
	elapsed = bench_now() - start;
	if (git_index_conflict_iterator_new(&it, index) == 0) {
		while (git_index_conflict_next(&anc, &ours, &theirs, it) == 0)
			(*conflicts)++;
		git_index_conflict_iterator_free(it);
	}
	git_index_free(index);
	git_commit_free(ca);
	git_commit_free(cb);
	return elapsed;
}

/* ---- the measured pairs ---- */

typedef struct {
	cs_oid a, b;
} pair;

static double t_sides; /* time spent making sides (not measured) */

/* A pair of sides on `base`: `n` records each, `common` of them changed
 * by both; the records are taken from the shuffled order at *cursor. */
static void
make_pair(pair *p, const cs_oid *base, size_t *cursor, size_t n, size_t common,
          const char *tag)
{
	char t[64];
	double start = bench_now();

	if (*cursor + 2 * n - common > nrecords)
		*cursor = 0; /* reuse records: the sides are still new */
	snprintf(t, sizeof(t), "%s a", tag);
	side(&p->a, base, *cursor, n, t);
	snprintf(t, sizeof(t), "%s b", tag);
	side(&p->b, base, *cursor + n - common, n, t);
	*cursor += 2 * n - common;
	t_sides += bench_now() - start;
}

/* Merge a pair in `h` (NULL: a fresh history of the pair, whose load is
 * timed apart). */
static void
merge_pair(cs_result *res, cs_history *h, const cs_oid *base, const pair *p)
{
	cs_oid heads[2] = {p->a, p->b}, merged, tree, base_tree;
	cs_history *own = NULL;
	size_t before = h ? cs_history_conflicts_found(h) : 0;
	double t0, t1, t2;

	t0 = bench_now();
	if (h == NULL) {
		if (cs_history_load(&own, repo, heads, 2) < 0)
			bench_die("cs_history_load");
		h = own;
	}
	t1 = bench_now();
	if (cs_history_merge(&merged, h, &p->a, &p->b) < 0)
		bench_die("cs_history_merge");
	t2 = bench_now();
	res->load = t1 - t0;
	res->merge = t2 - t1;
	res->found = cs_history_conflicts_found(h) - before;
	cs_history_free(own);

	res->conflicts = res->changed = 0;
	if (cs_repo_commit_tree(&tree, repo, &merged) < 0 ||
	    cs_repo_commit_tree(&base_tree, repo, base) < 0 ||
	    cs_repo_walk(repo, &tree, "conflicts", count_cb, &res->conflicts) <
	            0 ||
	    cs_repo_diff(repo, &base_tree, &tree, diff_cb, &res->changed) < 0)
		bench_die("read the merged tree");
}

static void
expect(const cs_result *res, const char *what, size_t conflicts, size_t changed)
{
	if (res->conflicts != conflicts || res->changed != changed)
		fprintf(stderr,
		        "bench: %s: %zu conflict files and %zu paths changed "
		        "against the base, expected %zu and %zu\n",
		        what, res->conflicts, res->changed, conflicts, changed);
}

/* A history holding every pair of `pairs` and the warm-up pair `w`, whose
 * merge (untimed) loads the consortium state and merge rules. */
static cs_history *
warm_history(const pair *w, const pair *pairs, size_t n)
{
	cs_oid *heads = calloc(2 * n + 2, sizeof(*heads)), merged;
	cs_history *h = NULL;

	if (heads == NULL)
		bench_die("out of memory");
	heads[0] = w->a;
	heads[1] = w->b;
	for (size_t i = 0; i < n; i++) {
		heads[2 + 2 * i] = pairs[i].a;
		heads[3 + 2 * i] = pairs[i].b;
	}
	if (cs_history_load(&h, repo, heads, 2 * n + 2) < 0 ||
	    cs_history_merge(&merged, h, &w->a, &w->b) < 0)
		bench_die("warm-up merge");
	free(heads);
	return h;
}

/* ---- main ---- */

int
main(int argc, char **argv)
{
	const char *const orgs[] = {"mdm-be"};
	long records, changed, nconf, repeat, big_repeat, batch;
	size_t nbig, none, cursor = 0, n, git_conf = 0, lg_conf = 0;
	char *dir, coord[4096], name[96];
	cs_oid base;
	pair *big, *one, *one_warm, *one_sync, big_warm, warmup;
	double *v_load, *v_big, *v_git_big, *v_lg_big, *v_one, *v_git_one,
	        *v_lg_one, *v_one_warm, *v_one_sync;
	double gen_peak, merge_peak = -1, big_warm_t, git_start;
	double rss_anon = -1, rss_file = -1, anon_before, file_before;
	double rss_before;
	cs_result res, first_big = {0};
	cs_history *h;
	int peak_reset, loose;

	bench_args_check(argc, argv, known, usage);
	records = bench_arg_long(argc, argv, "records", 100000);
	changed = bench_arg_long(argc, argv, "changed", 1000);
	nconf = bench_arg_long(argc, argv, "conflicts", 100);
	repeat = bench_arg_long(argc, argv, "repeat", 11);
	big_repeat = bench_arg_long(argc, argv, "big-repeat", 3);
	batch = bench_arg_long(argc, argv, "batch", records);
	loose = bench_arg_flag(argc, argv, "loose");
	if (records < 4 || changed < 1 || nconf > changed || repeat < 1 ||
	    big_repeat < 1 || batch < 1 || 2 * changed - nconf > records) {
		fprintf(stderr,
		        "bench: the sides need more records than "
		        "--records\n%s",
		        usage);
		return 2;
	}
	nrecords = (size_t)records;
	nbig = (size_t)big_repeat;
	none = (size_t)repeat;

	cs_repo_set_durable(0);
	dir = bench_tmpdir("merge");
	bench_note("consortium in %s", dir);
	bench_consortium(dir, orgs, 1);
	snprintf(coord, sizeof(coord), "%s/%s", dir, orgs[0]);
	if (cs_node_open(&node, coord) < 0)
		bench_die("cs_node_open");
	cs_repo_set_durable(0);
	repo = cs_node_repo(node);

	populate((size_t)batch, loose);
	if (cs_node_main(&base, node) < 0)
		bench_die("main");
	gen_peak = self_peak_mb();

	big = calloc(nbig, sizeof(*big));
	one = calloc(none, sizeof(*one));
	one_warm = calloc(none, sizeof(*one_warm));
	one_sync = calloc(none, sizeof(*one_sync));
	v_load = calloc(nbig, sizeof(double));
	v_big = calloc(nbig, sizeof(double));
	v_git_big = calloc(nbig, sizeof(double));
	v_lg_big = calloc(nbig, sizeof(double));
	v_one = calloc(none, sizeof(double));
	v_git_one = calloc(none, sizeof(double));
	v_lg_one = calloc(none, sizeof(double));
	v_one_warm = calloc(none, sizeof(double));
	v_one_sync = calloc(none, sizeof(double));
	if (!big || !one || !one_warm || !one_sync || !v_load || !v_big ||
	    !v_git_big || !v_lg_big || !v_one || !v_git_one || !v_lg_one ||
	    !v_one_warm || !v_one_sync)
		bench_die("out of memory");

	/* The sides, all on B, made before anything is timed. */
	for (size_t r = 0; r < nbig; r++) {
		snprintf(name, sizeof(name), "big %zu", r);
		make_pair(&big[r], &base, &cursor, (size_t)changed,
		          (size_t)nconf, name);
	}
	make_pair(&big_warm, &base, &cursor, (size_t)changed, (size_t)nconf,
	          "big warm");
	make_pair(&warmup, &base, &cursor, 1, 0, "warm-up");
	for (size_t r = 0; r < none; r++) {
		snprintf(name, sizeof(name), "one %zu", r);
		make_pair(&one[r], &base, &cursor, 1, 0, name);
		snprintf(name, sizeof(name), "one warm %zu", r);
		make_pair(&one_warm[r], &base, &cursor, 1, 0, name);
		snprintf(name, sizeof(name), "one fsync %zu", r);
		make_pair(&one_sync[r], &base, &cursor, 1, 0, name);
	}
	bench_note("sides made in %.1f s (%zu signed edits)", t_sides,
	           2 * (nbig + 2 + 3 * none));

	/* The big merge, each in a fresh history. */
	peak_reset = reset_peak();
	rss_before = status_mb("VmRSS");
	anon_before = status_mb("RssAnon");
	file_before = status_mb("RssFile");
	for (size_t r = 0; r < nbig; r++) {
		merge_pair(&res, NULL, &base, &big[r]);
		v_load[r] = res.load;
		v_big[r] = res.merge;
		if (r == 0) {
			first_big = res;
			merge_peak = self_peak_mb();
			rss_anon = status_mb("RssAnon");
			rss_file = status_mb("RssFile");
		}
		expect(&res, "big merge", (size_t)nconf,
		       (size_t)(2 * (changed - nconf) + nconf));
		v_git_big[r] = git_merge_tree(&n, &big[r].a, &big[r].b);
		if (r == 0)
			git_conf = n;
		v_lg_big[r] = libgit2_merge(&n, &big[r].a, &big[r].b);
		if (r == 0)
			lg_conf = n;
		bench_note("big merge %zu: load %.2f ms, merge %.1f ms; git "
		           "merge-tree %.1f ms; libgit2 %.1f ms",
		           r, res.load * 1e3, res.merge * 1e3,
		           v_git_big[r] * 1e3, v_lg_big[r] * 1e3);
	}

	/* One-record merges, each in a fresh history. */
	for (size_t r = 0; r < none; r++) {
		merge_pair(&res, NULL, &base, &one[r]);
		v_one[r] = res.merge;
		expect(&res, "one-record merge", 0, 2);
		v_git_one[r] = git_merge_tree(&n, &one[r].a, &one[r].b);
		v_lg_one[r] = libgit2_merge(&n, &one[r].a, &one[r].b);
	}
	bench_note("one-record merges: fresh history %.2f ms (median)",
	           median(v_one, none) * 1e3);

	/* The same in one long-lived history, as the daemon holds it: the
	 * consortium state and merge rules are loaded by a first merge. */
	h = warm_history(&warmup, one_warm, none);
	for (size_t r = 0; r < none; r++) {
		merge_pair(&res, h, &base, &one_warm[r]);
		v_one_warm[r] = res.merge;
		expect(&res, "one-record merge (warm)", 0, 2);
	}
	cs_history_free(h);
	h = warm_history(&warmup, &big_warm, 1);
	merge_pair(&res, h, &base, &big_warm);
	big_warm_t = res.merge;
	expect(&res, "big merge (warm)", (size_t)nconf,
	       (size_t)(2 * (changed - nconf) + nconf));
	cs_history_free(h);

	/* With fsync, as in production (objects are fsynced process-wide). */
	cs_repo_set_durable(1);
	h = warm_history(&warmup, one_sync, none);
	for (size_t r = 0; r < none; r++) {
		merge_pair(&res, h, &base, &one_sync[r]);
		v_one_sync[r] = res.merge;
	}
	cs_history_free(h);
	cs_repo_set_durable(0);
	git_start = git_start_time();

	printf("%zu records in %zu owner folders; base %s\n", nrecords, NOWNERS,
	       hex(&base));
	printf("big merge: %ld records changed per side, %ld by both; merged "
	       "tree: %zu conflict files (cs_history_conflicts_found %zu), "
	       "%zu paths changed against the base; git merge-tree: %zu "
	       "conflicted paths; libgit2: %zu conflicts\n",
	       changed, nconf, first_big.conflicts, first_big.found,
	       first_big.changed, git_conf, lg_conf);
	printf("first big merge: load %.2f ms, merge %.1f ms\n",
	       first_big.load * 1e3, first_big.merge * 1e3);
	printf("git process start (git rev-parse, median of 5): %.1f ms, "
	       "included in every git merge-tree time\n",
	       git_start * 1e3);
	printf("peak RSS: %.1f MB at the end of generation; %.1f MB in the "
	       "first big merge (%s)\n",
	       gen_peak, merge_peak,
	       peak_reset == 0 ? "peak reset by /proc/self/clear_refs "
	                         "before the first big merge, read after it"
	                       : "could not reset the peak: whole run");
	printf("RSS before/after the first big merge: %.1f/%.1f MB anonymous, "
	       "%.1f/%.1f MB file-backed (mapped packs, libraries)\n",
	       anon_before, rss_anon, file_before, rss_file);
	printf("medians: %zu big merges, %zu one-record merges; \"fresh\": a "
	       "new cs_history per merge (loads the consortium state), "
	       "\"warm\": one history, state loaded by an earlier merge\n",
	       nbig, none);

	snprintf(name, sizeof(name), "merge 2x%ld/%ldc fresh", changed, nconf);
	bench_result(name, median(v_big, nbig) * 1e3, "ms", "git merge-tree",
	             median(v_git_big, nbig) * 1e3, "ms");
	snprintf(name, sizeof(name), "merge 2x%ld/%ldc warm", changed, nconf);
	bench_result(name, big_warm_t * 1e3, "ms", "git merge-tree",
	             median(v_git_big, nbig) * 1e3, "ms");
	snprintf(name, sizeof(name), "merge 2x%ld/%ldc fresh", changed, nconf);
	bench_result(name, median(v_big, nbig) * 1e3, "ms",
	             "libgit2 git_merge_commits", median(v_lg_big, nbig) * 1e3,
	             "ms");
	bench_result("history load, 2 heads", median(v_load, nbig) * 1e3, "ms",
	             NULL, 0, NULL);
	bench_result("merge 1 record fresh", median(v_one, none) * 1e3, "ms",
	             "git merge-tree", median(v_git_one, none) * 1e3, "ms");
	bench_result("merge 1 record warm", median(v_one_warm, none) * 1e3,
	             "ms", "git merge-tree", median(v_git_one, none) * 1e3,
	             "ms");
	bench_result("merge 1 record warm", median(v_one_warm, none) * 1e3,
	             "ms", "libgit2 git_merge_commits",
	             median(v_lg_one, none) * 1e3, "ms");
	bench_result("merge 1 record warm fsync",
	             median(v_one_sync, none) * 1e3, "ms", "git merge-tree",
	             median(v_git_one, none) * 1e3, "ms");
	bench_result(peak_reset == 0 ? "peak RSS big merge"
	                             : "peak RSS whole run",
	             merge_peak, "MB", "git merge-tree etc. (max child)",
	             children_peak_mb(), "MB");
	if (peak_reset == 0 && rss_before > 0)
		bench_result("RSS growth big merge", merge_peak - rss_before,
		             "MB", NULL, 0, NULL);
	bench_results_print();

	free(big);
	free(one);
	free(one_warm);
	free(one_sync);
	free(v_load);
	free(v_big);
	free(v_git_big);
	free(v_lg_big);
	free(v_one);
	free(v_git_one);
	free(v_lg_one);
	free(v_one_warm);
	free(v_one_sync);
	git_repository_free(git_repo);
	for (size_t i = 0; i < nrecords; i++)
		free(paths[i]);
	free(paths);
	free(blobs);
	free(perm);
	cs_node_free(node);
	bench_rmtree(dir);
	free(dir);
	return 0;
}
