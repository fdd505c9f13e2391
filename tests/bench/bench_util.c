/*
 * cartosync benchmarks — shared helpers (bench.h).
 *
 * Generators here go through the real program (`cartosync init`, `members
 * add`) or the library, never around them; the only liberty taken is
 * bench_durable(0), which turns off fsync while a history is generated.
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>
#include <git2/sys/mempack.h>
#include <git2/sys/odb_backend.h>

#include "cartosync/commit.h"
#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/key.h"
#include "cartosync/record.h"
#include "cartosync/repo.h"
#include "cartosync/sshsig.h"
#include "bench.h"

#ifndef BENCH_SOURCE_ROOT
#define BENCH_SOURCE_ROOT "."
#endif
#ifndef BENCH_CARTOSYNC
#define BENCH_CARTOSYNC "cartosync"
#endif
#ifndef BENCH_CARTOSYNCD
#define BENCH_CARTOSYNCD "cartosyncd"
#endif

double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *
bench_source_root(void)
{
	const char *s = getenv("CS_SOURCE_ROOT");

	return s && *s ? s : BENCH_SOURCE_ROOT;
}

const char *
bench_cartosync(void)
{
	const char *s = getenv("CARTOSYNC");

	return s && *s ? s : BENCH_CARTOSYNC;
}

const char *
bench_cartosyncd(void)
{
	const char *s = getenv("CARTOSYNCD");

	return s && *s ? s : BENCH_CARTOSYNCD;
}

void
bench_note(const char *fmt, ...)
{
	static double start;
	va_list ap;

	if (start == 0)
		start = bench_now();
	fflush(stdout);
	fprintf(stderr, "  [%6.1f s] ", bench_now() - start);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void
bench_die(const char *what)
{
	const char *last = cs_error_last();

	fflush(stdout);
	if (last && *last)
		fprintf(stderr, "bench: %s: %s\n", what, last);
	else
		fprintf(stderr, "bench: %s\n", what);
	exit(1);
}

/* The value of --name in argv, or NULL. */
static const char *
arg_value(int argc, char **argv, const char *name)
{
	size_t n = strlen(name);

	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--", 2) != 0 ||
		    strncmp(argv[i] + 2, name, n) != 0)
			continue;
		if (argv[i][2 + n] == '=')
			return argv[i] + 3 + n;
		if (argv[i][2 + n] == '\0')
			return i + 1 < argc ? argv[i + 1] : "";
	}
	return NULL;
}

long
bench_arg_long(int argc, char **argv, const char *name, long def)
{
	const char *v = arg_value(argc, argv, name);
	char *end;
	long x;

	if (v == NULL)
		return def;
	errno = 0;
	x = strtol(v, &end, 10);
	if (errno || end == v || *end || x < 0) {
		fprintf(stderr, "bench: --%s: \"%s\" is not a count\n", name,
		        v);
		exit(2);
	}
	return x;
}

int
bench_arg_flag(int argc, char **argv, const char *name)
{
	for (int i = 1; i < argc; i++)
		if (strncmp(argv[i], "--", 2) == 0 &&
		    strcmp(argv[i] + 2, name) == 0)
			return 1;
	return 0;
}

void
bench_args_check(int argc, char **argv, const char *const *known,
                 const char *usage)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int ok = 0;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(usage, stdout);
			exit(0);
		}
		if (strncmp(a, "--", 2) != 0) {
			fprintf(stderr, "bench: unexpected argument '%s'\n%s",
			        a, usage);
			exit(2);
		}
		for (size_t k = 0; known[k] && !ok; k++) {
			size_t n = strlen(known[k]);
			const char *name = known[k];
			int takes_value = name[n - 1] == '=';

			if (takes_value)
				n--;
			if (strncmp(a + 2, name, n) != 0)
				continue;
			if (a[2 + n] == '\0') {
				ok = 1;
				if (takes_value)
					i++;
			} else if (takes_value && a[2 + n] == '=') {
				ok = 1;
			}
		}
		if (!ok) {
			fprintf(stderr, "bench: unknown option '%s'\n%s", a,
			        usage);
			exit(2);
		}
	}
}

char *
bench_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *path = NULL;

	if (base == NULL || *base == '\0')
		base = "/tmp";
	if (asprintf(&path, "%s/cartosync-%s-XXXXXX", base, tag) < 0)
		bench_die("out of memory");
	if (mkdtemp(path) == NULL) {
		perror(path);
		exit(1);
	}
	return path;
}

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void
bench_rmtree(const char *path)
{
	if (path && getenv("CS_BENCH_KEEP") == NULL)
		nftw(path, remove_entry, 32, FTW_DEPTH | FTW_PHYS);
	else if (path)
		fprintf(stderr, "bench: kept %s\n", path);
}

static char *vformat(const char *fmt, va_list ap)
        __attribute__((format(printf, 1, 0)));

static char *
vformat(const char *fmt, va_list ap)
{
	char *s = NULL;

	if (vasprintf(&s, fmt, ap) < 0)
		bench_die("out of memory");
	return s;
}

int
bench_sh(const char *fmt, ...)
{
	va_list ap;
	char *cmd;
	int status;

	va_start(ap, fmt);
	cmd = vformat(fmt, ap);
	va_end(ap);
	fflush(stdout);
	status = system(cmd);
	free(cmd);
	if (status == -1 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

double
bench_sh_time(const char *fmt, ...)
{
	va_list ap;
	char *cmd;
	double start, elapsed;
	int status;

	va_start(ap, fmt);
	cmd = vformat(fmt, ap);
	va_end(ap);
	fflush(stdout);
	start = bench_now();
	status = system(cmd);
	elapsed = bench_now() - start;
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "bench: failed: %s\n", cmd);
		elapsed = -1;
	}
	free(cmd);
	return elapsed;
}

char *
bench_sh_output(const char *fmt, ...)
{
	va_list ap;
	char *cmd, *buf = NULL;
	size_t len = 0, cap = 0, n;
	FILE *f;
	int status;

	va_start(ap, fmt);
	cmd = vformat(fmt, ap);
	va_end(ap);
	fflush(stdout);
	f = popen(cmd, "r");
	free(cmd);
	if (f == NULL)
		return NULL;
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			if ((buf = realloc(buf, cap)) == NULL)
				bench_die("out of memory");
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		if (n == 0)
			break;
		len += n;
	}
	buf[len] = '\0';
	status = pclose(f);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

const char *
bench_q(const char *s)
{
	static char ring[8][4096];
	static int next;
	char *out = ring[next++ % 8], *p = out;

	*p++ = '\'';
	for (; *s && p < out + sizeof(ring[0]) - 6; s++) {
		if (*s == '\'') {
			memcpy(p, "'\\''", 4);
			p += 4;
		} else {
			*p++ = *s;
		}
	}
	*p++ = '\'';
	*p = '\0';
	return out;
}

int
bench_openssl_ed25519(double *sign, double *verify, int seconds, int procs)
{
	char *out, *p;
	int found = -1;

	*sign = *verify = 0;
	/* Last lines: "                              sign    verify    sign/s
	 * verify/s" then " 253 bits EdDSA (Ed25519)   0.0000s   0.0001s
	 * 27000.0   9000.0". */
	if (procs > 1)
		out = bench_sh_output("openssl speed -multi %d -seconds %d "
		                      "ed25519 2>/dev/null",
		                      procs, seconds);
	else
		out = bench_sh_output("openssl speed -seconds %d ed25519 "
		                      "2>/dev/null",
		                      seconds);
	if (out == NULL)
		return -1;
	if ((p = strstr(out, "(Ed25519)")) != NULL &&
	    sscanf(p + 9, "%*s %*s %lf %lf", sign, verify) == 2)
		found = 0;
	free(out);
	return found;
}

static int
name_order(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

json_t *
bench_samples(const char *prefix)
{
	static const char *const dirs[] = {"alcs", "cefa",   "dj", "mdm-be",
	                                   "ms2",  "shared", NULL};
	json_t *all = json_array();

	for (size_t d = 0; dirs[d]; d++) {
		struct dirent **names = NULL;
		char *dir = NULL;
		int n;

		if (asprintf(&dir, "%s/tests/data/sample/%s",
		             bench_source_root(), dirs[d]) < 0)
			bench_die("out of memory");
		if ((n = scandir(dir, &names, NULL, name_order)) < 0) {
			perror(dir);
			exit(1);
		}
		for (int i = 0; i < n; i++) {
			const char *name = names[i]->d_name;
			size_t len = strlen(name);
			char *file = NULL;
			json_t *doc = NULL;

			if (strncmp(name, prefix, strlen(prefix)) == 0 &&
			    len > 5 && strcmp(name + len - 5, ".json") == 0) {
				if (asprintf(&file, "%s/%s", dir, name) < 0)
					bench_die("out of memory");
				if (cs_json_load_file(&doc, file) < 0)
					bench_die(file);
				json_array_append_new(all, doc);
				free(file);
			}
			free(names[i]);
		}
		free(names);
		free(dir);
	}
	if (json_array_size(all) == 0)
		bench_die("no sample records in tests/data/sample");
	return all;
}

static void
suffix_string(json_t *record, const char *key, unsigned long n)
{
	json_t *v = json_object_get(record, key);
	char *s = NULL;

	if (!json_is_string(v))
		return;
	if (asprintf(&s, "%s (%lu)", json_string_value(v), n) < 0)
		bench_die("out of memory");
	json_object_set_new(record, key, json_string(s));
	free(s);
}

json_t *
bench_variant(const json_t *sample, const char *owner, unsigned long n)
{
	json_t *r = json_deep_copy(sample), *verified;
	char id[37];

	if (r == NULL || cs_uuid_generate(id) < 0)
		bench_die("variant");
	json_object_set_new(r, "id", json_string(id));
	json_object_set_new(r, "x_owner", json_string(owner));
	json_object_set_new(r, "x_status", json_string("proposed"));
	verified = json_object_get(r, "x_verified");
	if (json_is_object(verified) && strcmp(owner, CS_OWNER_SHARED) != 0)
		json_object_set_new(verified, "by", json_string(owner));
	suffix_string(r, "name", n);
	suffix_string(r, "description", n);
	return r;
}

void
bench_consortium(const char *dir, const char *const *orgs, size_t norgs)
{
	const char *cs = bench_cartosync();
	char coord[4096], node[4096], root[4096], pub[4096];

	snprintf(coord, sizeof(coord), "%s/%s", dir, orgs[0]);
	snprintf(root, sizeof(root), "%s/root", dir);
	if (bench_sh("%s keys generate %s >/dev/null 2>&1", bench_q(cs),
	             bench_q(root)) != 0)
		bench_die("cartosync keys generate");
	if (bench_sh("%s -C %s init --org %s --genesis --root-key %s.pub "
	             "--schema-dir %s/schema >/dev/null 2>&1",
	             bench_q(cs), bench_q(coord), orgs[0], bench_q(root),
	             bench_q(bench_source_root())) != 0)
		bench_die("cartosync init --genesis");
	for (size_t i = 1; i < norgs; i++) {
		snprintf(node, sizeof(node), "%s/%s", dir, orgs[i]);
		snprintf(pub, sizeof(pub), "%s/%s.pub", dir, orgs[i]);
		if (bench_sh("%s -C %s init --org %s --join %s >/dev/null 2>&1",
		             bench_q(cs), bench_q(node), orgs[i],
		             bench_q(coord)) != 0 ||
		    bench_sh("%s -C %s keys public > %s", bench_q(cs),
		             bench_q(node), bench_q(pub)) != 0 ||
		    bench_sh("%s -C %s members add --org %s --role member "
		             "--key %s >/dev/null 2>&1",
		             bench_q(cs), bench_q(coord), orgs[i],
		             bench_q(pub)) != 0)
			bench_die("cartosync init --join / members add");
	}
	for (size_t i = 1; i < norgs; i++) {
		snprintf(node, sizeof(node), "%s/%s", dir, orgs[i]);
		if (bench_sh("%s -C %s fetch %s >/dev/null 2>&1", bench_q(cs),
		             bench_q(node), bench_q(coord)) != 0)
			bench_die("cartosync fetch");
	}
}

void
bench_durable(int on)
{
	git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, on);
}

/*
 * The generator of signed edits (bench_generate_packed).  The objects go
 * to a libgit2 mempack that is written out as a pack every FLUSH_COMMITS
 * commits or FLUSH_RECORDS records, as a fetch would store them: writing 7
 * loose files per commit, then `git repack`, is what takes the time on a
 * slow file system, and is not what is measured.
 */
#define FLUSH_COMMITS 2500
#define FLUSH_RECORDS 25000

static void
git_die(const char *what)
{
	const git_error *e = git_error_last();

	fprintf(stderr, "bench: %s: %s\n", what,
	        e && e->message ? e->message : "git error");
	exit(1);
}

typedef struct {
	git_packbuilder *pb;
	git_odb_backend *mempack;
} flush_walk;

/* Insert an entry of a new tree if it is new too (in the mempack). */
static int
flush_entry(const char *root, const git_tree_entry *entry, void *payload)
{
	flush_walk *f = payload;
	const git_oid *id = git_tree_entry_id(entry);

	(void)root;
	if (!f->mempack->exists(f->mempack, id))
		return 1; /* in a pack already, and all below it */
	return git_packbuilder_insert(f->pb, id, git_tree_entry_name(entry)) <
	                       0
	               ? -1
	               : 0;
}

/*
 * Write the objects of the commits `tip` adds to `since` that are in the
 * mempack (the new ones) as a pack in the repository, then empty the
 * mempack.  Not git_mempack_dump(): it inserts each commit with its whole
 * tree, so every pack would hold the whole map again and the generator
 * would slow down as the map grows.  Not git_packbuilder_insert_walk()
 * either: it inserts trees without their names, which makes poor deltas
 * (a pack twice the size, that `git repack -ad` keeps).
 */
static void
flush_pack(git_repository *git, git_odb *odb, git_odb_backend *mempack,
           const cs_oid *tip, const cs_oid *since)
{
	flush_walk f = {NULL, mempack};
	git_revwalk *walk = NULL;
	git_oid t, s, id;
	int error;

	memcpy(t.id, tip->id, CS_OID_RAWSZ);
	memcpy(s.id, since->id, CS_OID_RAWSZ);
	if (git_packbuilder_new(&f.pb, git) < 0 ||
	    git_revwalk_new(&walk, git) < 0 || git_revwalk_push(walk, &t) < 0 ||
	    git_revwalk_hide(walk, &s) < 0)
		git_die("packbuilder");
	git_packbuilder_set_threads(f.pb, 0);
	while ((error = git_revwalk_next(&id, walk)) == 0) {
		git_commit *commit = NULL;
		git_tree *tree = NULL;

		if (git_packbuilder_insert(f.pb, &id, NULL) < 0 ||
		    git_commit_lookup(&commit, git, &id) < 0 ||
		    git_commit_tree(&tree, commit) < 0)
			git_die("packbuilder");
		if (mempack->exists(mempack, git_tree_id(tree)) &&
		    (git_packbuilder_insert(f.pb, git_tree_id(tree), NULL) < 0 ||
		     git_tree_walk(tree, GIT_TREEWALK_PRE, flush_entry, &f) <
		             0))
			git_die("packbuilder");
		git_tree_free(tree);
		git_commit_free(commit);
	}
	if (error != GIT_ITEROVER ||
	    git_packbuilder_write(f.pb, NULL, 0, NULL, NULL) < 0)
		git_die("writing a pack");
	git_revwalk_free(walk);
	git_packbuilder_free(f.pb);
	if (git_odb_refresh(odb) < 0 || git_mempack_reset(mempack) < 0)
		git_die("mempack reset");
}

void
bench_generate_packed(cs_node *const *nodes, size_t nnodes, size_t ncommits,
                      size_t block, size_t per_commit)
{
	json_t *samples = bench_samples("service-");
	size_t nsamples = json_array_size(samples), nrecords = 0, unflushed = 0;
	git_repository *git = NULL;
	git_odb *odb = NULL;
	git_odb_backend *mempack = NULL;
	git_tree_update *updates;
	char **paths;
	const cs_key **keys;
	char **fps;
	cs_oid start_main, base, tree, flushed;
	double start = bench_now(), last = start;
	int64_t when = 1735689600; /* 2025-01-01, one edit a minute */

	if (block == 0)
		block = 1;
	if (per_commit == 0)
		per_commit = 1;
	keys = calloc(nnodes, sizeof(*keys));
	fps = calloc(nnodes, sizeof(*fps));
	updates = calloc(per_commit, sizeof(*updates));
	paths = calloc(per_commit, sizeof(*paths));
	if (keys == NULL || fps == NULL || updates == NULL || paths == NULL)
		bench_die("out of memory");
	for (size_t i = 0; i < nnodes; i++) {
		if (cs_node_key(&keys[i], nodes[i]) < 0)
			bench_die("node key");
		fps[i] = cs_key_fingerprint(keys[i]);
	}
	if (cs_node_main(&start_main, nodes[0]) < 0 ||
	    cs_repo_commit_tree(&tree, cs_node_repo(nodes[0]), &start_main) < 0)
		bench_die("main");
	if (git_repository_open(&git, cs_node_dir(nodes[0])) < 0 ||
	    git_repository_odb(&odb, git) < 0 ||
	    git_mempack_new(&mempack) < 0 ||
	    git_odb_add_backend(odb, mempack, 1000) < 0)
		git_die("mempack");
	base = flushed = start_main;
	for (size_t done = 0; done < ncommits; done++) {
		size_t w = (done / block) % nnodes;
		const char *org = cs_node_org(nodes[w]);
		char *payload = NULL, *armor = NULL, *text = NULL;
		char message[128];
		size_t payload_len, text_len;
		git_oid gtree, gcommit;
		git_tree *baseline = NULL;
		cs_commit commit;

		for (size_t k = 0; k < per_commit; k++, nrecords++) {
			/* One record in ten is a shared one. */
			const char *owner =
			        nrecords % 10 == 9 ? CS_OWNER_SHARED : org;
			json_t *record = bench_variant(
			        json_array_get(samples, nrecords % nsamples),
			        owner, nrecords);
			char *canon = NULL;
			size_t canon_len;

			if (per_commit == 1)
				snprintf(message, sizeof(message),
				         "records: add service %s\n",
				         json_string_value(json_object_get(
				                 record, "id")));
			if (cs_record_path(&paths[k], record) < 0 ||
			    cs_json_canonical(&canon, &canon_len, record) < 0)
				bench_die("record");
			memset(&updates[k], 0, sizeof(updates[k]));
			updates[k].action = GIT_TREE_UPDATE_UPSERT;
			updates[k].filemode = GIT_FILEMODE_BLOB;
			updates[k].path = paths[k];
			if (git_blob_create_from_buffer(&updates[k].id, git,
			                                canon, canon_len) < 0)
				git_die("blob");
			free(canon);
			json_decref(record);
		}
		if (per_commit > 1)
			snprintf(message, sizeof(message),
			         "records: add %zu services\n", per_commit);
		memcpy(gtree.id, tree.id, CS_OID_RAWSZ);
		if (git_tree_lookup(&baseline, git, &gtree) < 0 ||
		    git_tree_create_updated(&gtree, git, baseline, per_commit,
		                            updates) < 0)
			git_die("tree");
		git_tree_free(baseline);
		memset(&commit, 0, sizeof(commit));
		commit.kind = CS_COMMIT_EDIT;
		memcpy(commit.tree.id, gtree.id, CS_OID_RAWSZ);
		commit.parents[0] = base;
		commit.parent_count = 1;
		commit.author.name = (char *)org;
		commit.author.email = fps[w];
		commit.author.time = when += 60;
		commit.committer = commit.author;
		commit.message = message;
		if (cs_commit_format_payload(&payload, &payload_len, &commit) <
		            0 ||
		    cs_sshsig_sign(&armor, keys[w], CS_SSHSIG_NAMESPACE_GIT,
		                   (const uint8_t *)payload, payload_len) < 0 ||
		    cs_commit_add_signature(&text, &text_len, payload,
		                            payload_len, armor) < 0)
			bench_die("commit");
		if (git_odb_write(&gcommit, odb, text, text_len,
		                  GIT_OBJECT_COMMIT) < 0)
			git_die("commit");
		memcpy(base.id, gcommit.id, CS_OID_RAWSZ);
		tree = commit.tree;
		for (size_t k = 0; k < per_commit; k++) {
			free(paths[k]);
			paths[k] = NULL;
		}
		free(payload);
		free(armor);
		free(text);
		unflushed += per_commit;
		if ((done + 1) % FLUSH_COMMITS == 0 ||
		    unflushed >= FLUSH_RECORDS || done + 1 == ncommits) {
			flush_pack(git, odb, mempack, &base, &flushed);
			flushed = base;
			unflushed = 0;
		}
		if (bench_now() - last > 5) {
			last = bench_now();
			bench_note("generated %zu/%zu commits (%.0f/s)",
			           done + 1, ncommits,
			           (double)(done + 1) / (last - start));
		}
	}
	git_odb_free(odb);
	git_repository_free(git);
	if (ncommits > 0 &&
	    cs_repo_ref_cas(cs_node_repo(nodes[0]), CS_REF_MAIN, &base,
	                    &start_main, "bench: generated edits") < 0)
		bench_die("main");
	bench_note("generated %zu commits, %zu records in %.1f s (%.0f "
	           "commits/s, in packs)",
	           ncommits, nrecords, bench_now() - start,
	           (double)ncommits / (bench_now() - start));
	for (size_t i = 0; i < nnodes; i++)
		free(fps[i]);
	free(fps);
	free(keys);
	free(updates);
	free(paths);
	json_decref(samples);
}

/* Result lines, printed together by bench_results_print(). */
static char **results;
static size_t nresults;

void
bench_result(const char *name, double value, const char *unit,
             const char *ref_name, double ref_value, const char *ref_unit)
{
	char v[32], rv[32], ratio[32], *line = NULL, **grown;

	snprintf(v, sizeof(v), value >= 100 ? "%.0f" : "%.3g", value);
	if (ref_value > 0) {
		snprintf(rv, sizeof(rv), ref_value >= 100 ? "%.0f" : "%.3g",
		         ref_value);
		snprintf(ratio, sizeof(ratio), "%.2f", value / ref_value);
	} else {
		snprintf(rv, sizeof(rv), "n/a");
		snprintf(ratio, sizeof(ratio), "-");
	}
	if (asprintf(&line, "%-30s %12s %-10s  %-36s %12s %-10s %7s", name, v,
	             unit, ref_name ? ref_name : "-", rv,
	             ref_unit ? ref_unit : "", ratio) < 0 ||
	    (grown = realloc(results, (nresults + 1) * sizeof(*grown))) == NULL)
		bench_die("out of memory");
	results = grown;
	results[nresults++] = line;
}

void
bench_results_print(void)
{
	printf("# results\n");
	printf("%-30s %12s %-10s  %-36s %12s %-10s %7s\n", "name", "value",
	       "unit", "reference", "ref value", "ref unit", "ratio");
	for (size_t i = 0; i < nresults; i++) {
		printf("%s\n", results[i]);
		free(results[i]);
	}
	printf("# end\n");
	fflush(stdout);
	free(results);
	results = NULL;
	nresults = 0;
}
