/*
 * cartosync — the repository layer: blobs, trees built and pruned by path,
 * tree diffs, refs moved by compare-and-swap (also by racing threads and
 * processes), the writer lock, topological order and ancestry.
 */
#include <check.h>
#include <errno.h>
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cartosync/commit.h"
#include "cartosync/error.h"
#include "cartosync/key.h"
#include "cartosync/oid.h"
#include "cartosync/repo.h"
#include "cartosync/sshsig.h"

#define ID1 "ab0e2f8c-5d1a-4c3b-9e7f-0a1b2c3d4e5f"
#define ID2 "cd9a8b7c-6d5e-4f3a-8b2c-1d0e9f8a7b6c"
#define SVC "records/ms2/service/ab/" ID1 ".json"
#define LOC "records/ms2/location/cd/" ID2 ".json"
#define MEMBERS "consortium/members.json"
#define EMPTY_TREE "4b825dc642cb6eb9a060e54bf8d69288fbee4904"

/* basedir: one per run, removed at the end even when tests fail (a failed
 * test skips its teardown); tmpdir: one per test inside it. */
static char basedir[64];
static char tmpdir[96];

static void
make_basedir(void)
{
	snprintf(basedir, sizeof(basedir), "/tmp/cs-test-repo-XXXXXX");
	if (mkdtemp(basedir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
}

static void
remove_basedir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", basedir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", basedir);
}

static char repodir[128];
static cs_repo *repo;

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/t-XXXXXX", basedir);
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(repodir, sizeof(repodir), "%s/node", tmpdir);
	ck_assert_msg(cs_repo_init(&repo, repodir) == 0, "%s",
		      cs_error_last());
}

static void
teardown(void)
{
	char cmd[128];

	cs_repo_free(repo);
	repo = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static cs_oid
blob(const char *text)
{
	cs_oid id;

	ck_assert_int_eq(cs_repo_write_blob(&id, repo, text, strlen(text)), 0);
	return id;
}

static char *
hex(const cs_oid *id)
{
	static char bufs[8][CS_OID_HEXSZ + 1];
	static int next;
	char *p = bufs[next++ % 8];

	cs_oid_fmt(p, id);
	return p;
}

static cs_oid
oid_of(const char *h)
{
	cs_oid id;

	ck_assert_int_eq(cs_oid_parse(&id, h, strlen(h)), 0);
	return id;
}

/* The id of `path` in `tree`, asserting its mode. */
static cs_oid
lookup(const cs_oid *tree, const char *path, unsigned want_mode)
{
	cs_oid id;
	unsigned mode = 0;

	ck_assert_msg(cs_repo_tree_lookup(&id, &mode, repo, tree, path) == 0,
		      "%s: %s", path, cs_error_last());
	ck_assert_uint_eq(mode, want_mode);
	return id;
}

static int
absent(const cs_oid *tree, const char *path)
{
	cs_oid id;

	return cs_repo_tree_lookup(&id, NULL, repo, tree, path) ==
	       CS_ENOTFOUND;
}

static cs_oid
update(const cs_oid *base, const char *path, const cs_oid *id)
{
	cs_tree_update u = {path, id};
	cs_oid out;

	ck_assert_msg(cs_repo_tree_update(&out, repo, base, &u, 1) == 0,
		      "%s", cs_error_last());
	return out;
}

/* An unsigned commit object (git's grammar; cartosync's rules aside). */
static cs_oid
commit_of(cs_repo *r, const cs_oid *tree, const cs_oid *parents, size_t n,
	  int64_t when, const char *message)
{
	cs_commit c;
	char *raw;
	size_t len;
	cs_oid id;

	memset(&c, 0, sizeof(c));
	c.tree = *tree;
	for (size_t i = 0; i < n; i++)
		c.parents[i] = parents[i];
	c.parent_count = n;
	c.author.name = "test";
	c.author.email = "t@example.org";
	c.author.time = when;
	c.committer = c.author;
	c.message = (char *)message;
	ck_assert_int_eq(cs_commit_format_payload(&raw, &len, &c), 0);
	ck_assert_int_eq(cs_repo_write_commit_raw(&id, r, raw, len), 0);
	free(raw);
	return id;
}

static cs_oid
empty_tree(void)
{
	cs_oid t;

	ck_assert_int_eq(cs_repo_tree_update(&t, repo, NULL, NULL, 0), 0);
	ck_assert_str_eq(hex(&t), EMPTY_TREE);
	return t;
}

/* ---------------------------------------------------------------------- */

/* Commit `n` new files under `dir` on top of refs/heads/main (or none). */
static cs_oid
commit_files(const char *dir, int n, const char *ref)
{
	cs_tree_update *ups = calloc((size_t)n, sizeof(*ups));
	cs_oid *ids = calloc((size_t)n, sizeof(*ids)), parent, tree, base, c;
	char (*paths)[64] = calloc((size_t)n, sizeof(*paths));
	int has_parent = cs_repo_ref_read(&parent, repo, ref) == 0;

	for (int i = 0; i < n; i++) {
		char text[96];

		snprintf(text, sizeof(text), "{\"file\": \"%s/%d\"}", dir, i);
		ids[i] = blob(text);
		snprintf(paths[i], sizeof(paths[i]), "%s/%04d.json", dir, i);
		ups[i].path = paths[i];
		ups[i].new_id = &ids[i];
	}
	if (has_parent)
		ck_assert_int_eq(cs_repo_commit_tree(&base, repo, &parent), 0);
	ck_assert_msg(cs_repo_tree_update(&tree, repo,
					  has_parent ? &base : NULL, ups,
					  (size_t)n) == 0,
		      "%s", cs_error_last());
	c = commit_of(repo, &tree, &parent, has_parent ? 1 : 0, 1735689600,
		      dir);
	ck_assert_int_eq(cs_repo_ref_cas(repo, ref, &c,
					 has_parent ? &parent : NULL, dir),
			 0);
	free(ups);
	free(ids);
	free(paths);
	return c;
}

static void
readable(const cs_oid *id)
{
	char *buf = NULL;
	size_t len = 0;

	ck_assert_msg(cs_repo_read_blob(&buf, &len, repo, id, 1024) == 0,
		      "%s: %s", hex(id), cs_error_last());
	free(buf);
}

/* Files of removed packs of the test repository this process still
 * holds open or mapped. */
static int
removed_packs_held(void)
{
	char line[PATH_MAX + 256], link[PATH_MAX], path[300];
	int n = 0;
	FILE *maps = fopen("/proc/self/maps", "r");
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	while (maps && fgets(line, sizeof(line), maps))
		n += strstr(line, repodir) && strstr(line, "/objects/pack/") &&
		     strstr(line, "(deleted)");
	if (maps)
		fclose(maps);
	while (d && (e = readdir(d)) != NULL) {
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		if ((len = readlink(path, link, sizeof(link) - 1)) < 0)
			continue;
		link[len] = '\0';
		n += strstr(link, repodir) && strstr(link, "/objects/pack/") &&
		     strstr(link, "(deleted)");
	}
	if (d)
		closedir(d);
	return n;
}

/*
 * Packing the store (cs_repo_pack): loose objects are packed once there
 * are enough of them, an unreachable loose object stays and does not ask
 * again, many packs are made one, an unreachable packed object is
 * loosened, and every object stays readable.
 */
START_TEST(test_store_packing)
{
	cs_repo_store_counts n;
	cs_oid orphan = blob("{\"orphan\": true}"), first, gone, gone_blob;
	char *path_saved;

	cs_repo_store_count(&n, repo);
	ck_assert_uint_eq(n.loose, 1);
	ck_assert_uint_eq(n.packs, 0);
	ck_assert_int_eq(cs_repo_store_wants(&n, 0), CS_REPO_PACK_NONE);

	first = blob("{\"file\": \"a/0\"}");
	commit_files("a", CS_REPO_LOOSE_MAX, "refs/heads/main");
	cs_repo_store_count(&n, repo);
	ck_assert_uint_ge(n.loose, CS_REPO_LOOSE_MAX + 3);
	ck_assert_int_eq(cs_repo_store_wants(&n, 0), CS_REPO_PACK_LOOSE);
	/* git's own variables (a hook's) do not lead git elsewhere. */
	setenv("GIT_OBJECT_DIRECTORY", "/nonexistent/objects", 1);
	ck_assert_msg(cs_repo_pack(repo, CS_REPO_PACK_LOOSE) == 0, "%s",
		      cs_error_last());
	unsetenv("GIT_OBJECT_DIRECTORY");
	cs_repo_store_count(&n, repo);
	/* Left loose: the orphan, and the empty tree the first commit's
	 * tree was built from; both unreachable. */
	ck_assert_uint_le(n.loose, 2);
	ck_assert_uint_eq(n.packs, 1);
	ck_assert_int_eq(cs_repo_store_wants(&n, n.loose), CS_REPO_PACK_NONE);
	readable(&first);
	readable(&orphan);

	/* A history that becomes unreachable once packed. */
	gone_blob = blob("{\"file\": \"gone/0\"}");
	gone = commit_files("gone", 1, "refs/heads/side");
	ck_assert_int_eq(cs_repo_pack(repo, CS_REPO_PACK_LOOSE), 0);
	ck_assert_int_eq(cs_repo_ref_cas(repo, "refs/heads/side", NULL, &gone,
					 "drop"),
			 0);
	for (int i = 0; i < CS_REPO_PACKS_MAX; i++) {
		char dir[16];

		snprintf(dir, sizeof(dir), "b%d", i);
		commit_files(dir, 2, "refs/heads/main");
		ck_assert_int_eq(cs_repo_pack(repo, CS_REPO_PACK_LOOSE), 0);
	}
	cs_repo_store_count(&n, repo);
	ck_assert_uint_ge(n.packs, CS_REPO_PACKS_MAX);
	ck_assert_int_eq(cs_repo_store_wants(&n, n.loose), CS_REPO_PACK_ALL);
	ck_assert_msg(cs_repo_pack(repo, CS_REPO_PACK_ALL) == 0, "%s",
		      cs_error_last());
	cs_repo_store_count(&n, repo);
	ck_assert_uint_eq(n.packs, 1);
	readable(&first);
	readable(&orphan);
	readable(&gone_blob); /* loosened, not dropped */
	/* This handle still holds the removed packs; refreshed, it lets go
	 * and reads everything from the new one. */
	ck_assert_int_gt(removed_packs_held(), 0);
	ck_assert_int_eq(cs_repo_refresh(repo), 0);
	ck_assert_int_eq(removed_packs_held(), 0);
	readable(&first);
	readable(&gone_blob);
	ck_assert_int_eq(cs_repo_refresh(repo), 0); /* nothing changed */

	/* No git: the error says so, the store is as it was. */
	path_saved = strdup(getenv("PATH"));
	setenv("PATH", "/nonexistent", 1);
	commit_files("c", CS_REPO_LOOSE_MAX, "refs/heads/main");
	ck_assert_int_eq(cs_repo_pack(repo, CS_REPO_PACK_LOOSE), CS_ERROR);
	ck_assert_ptr_nonnull(strstr(cs_error_last(), "cannot run git"));

	/* git is handed the repository's lock: it holds it until it is
	 * done, even if the caller dies first.  A stand-in git lists the
	 * files its descriptors hold open. */
	{
		char dir[PATH_MAX], script[PATH_MAX + 8], out[PATH_MAX + 8];
		char lock[PATH_MAX + 32], got[4096] = "";
		FILE *f;

		snprintf(dir, sizeof(dir), "%s/fake-git", tmpdir);
		ck_assert_int_eq(mkdir(dir, 0755), 0);
		snprintf(script, sizeof(script), "%s/git", dir);
		snprintf(out, sizeof(out), "%s/out", dir);
		snprintf(lock, sizeof(lock), "%s/cartosync.lock", repodir);
		f = fopen(script, "w");
		ck_assert_ptr_nonnull(f);
		fprintf(f,
			"#!/bin/sh\n"
			"for fd in /proc/$$/fd/*; do readlink \"$fd\"; done"
			" >'%s'\n"
			"exit 0\n",
			out);
		fclose(f);
		ck_assert_int_eq(chmod(script, 0755), 0);
		snprintf(script, sizeof(script), "%s:%s", dir, path_saved);
		setenv("PATH", script, 1); /* the stand-in first */
		ck_assert_msg(cs_repo_pack(repo, CS_REPO_PACK_LOOSE) == 0, "%s",
			      cs_error_last());
		f = fopen(out, "r");
		ck_assert_ptr_nonnull(f);
		ck_assert_uint_gt(fread(got, 1, sizeof(got) - 1, f), 0);
		fclose(f);
		ck_assert_msg(strstr(got, lock) != NULL,
			      "git does not hold %s; it holds:\n%s", lock, got);
		ck_assert_int_eq(cs_repo_locked(repo), 0); /* given back */
	}
	setenv("PATH", path_saved, 1);
	free(path_saved);
	readable(&first);
}
END_TEST

START_TEST(test_init_open)
{
	cs_repo *other = NULL;
	char path[256];
	struct stat st;

	ck_assert_str_eq(cs_repo_path(repo), repodir);
	snprintf(path, sizeof(path), "%s/HEAD", repodir);
	ck_assert_int_eq(stat(path, &st), 0);
	snprintf(path, sizeof(path), "%s/objects", repodir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));

	snprintf(path, sizeof(path), "%s/", repodir);
	ck_assert_int_eq(cs_repo_open(&other, path), 0);
	ck_assert_str_eq(cs_repo_path(other), repodir);
	cs_repo_free(other);

	snprintf(path, sizeof(path), "%s/nothing", tmpdir);
	ck_assert_int_eq(cs_repo_open(&other, path), CS_ENOTFOUND);
	ck_assert_ptr_null(other);
	ck_assert(strstr(cs_error_last(), "nothing") != NULL);
	mkdir(path, 0755);
	ck_assert_int_eq(cs_repo_open(&other, path), CS_ENOTFOUND);
	ck_assert_msg(strstr(cs_error_last(), "not a cartosync node") != NULL,
		      "%s", cs_error_last());

	/* Never re-initialise an existing repository. */
	ck_assert_int_lt(cs_repo_init(&other, repodir), 0);
	ck_assert_ptr_null(other);
	cs_repo_free(NULL);
}
END_TEST

START_TEST(test_blobs)
{
	static const char data[] = "a\0b\nc";
	cs_oid id, tree;
	char *buf;
	size_t len;

	ck_assert_int_eq(cs_repo_write_blob(&id, repo, data, sizeof(data)), 0);
	/* git's id: sha1("blob 6\0a\0b\nc\0") */
	ck_assert_int_eq(cs_repo_read_blob(&buf, &len, repo, &id, 100), 0);
	ck_assert_uint_eq(len, sizeof(data));
	ck_assert(memcmp(buf, data, len) == 0);
	ck_assert_int_eq(buf[len], '\0');
	free(buf);

	id = blob("hello\n");
	ck_assert_str_eq(hex(&id), "ce013625030ba8dba906f756967f9e9ca394464a");
	ck_assert_int_eq(cs_repo_read_blob(&buf, &len, repo, &id, 6), 0);
	free(buf);
	buf = (char *)1;
	ck_assert_int_eq(cs_repo_read_blob(&buf, &len, repo, &id, 5),
			 CS_ELIMIT);
	ck_assert_ptr_null(buf);
	ck_assert(strstr(cs_error_last(), "6 bytes") != NULL);

	tree = update(NULL, "a.json", &id);
	ck_assert_int_eq(cs_repo_read_blob(&buf, &len, repo, &tree, 1000),
			 CS_EINVALID);
	ck_assert_ptr_null(buf);
	id = oid_of("1111111111111111111111111111111111111111");
	ck_assert_int_lt(cs_repo_read_blob(&buf, &len, repo, &id, 1000), 0);
}
END_TEST

typedef struct {
	char paths[16][128];
	cs_oid ids[16];
	unsigned modes[16];
	size_t n;
} listing;

static int
collect(const char *path, const cs_oid *id, unsigned mode, void *payload)
{
	listing *l = payload;

	ck_assert_uint_lt(l->n, 16);
	snprintf(l->paths[l->n], sizeof(l->paths[0]), "%s", path);
	l->ids[l->n] = *id;
	l->modes[l->n] = mode;
	l->n++;
	return 0;
}

START_TEST(test_tree_nested)
{
	cs_oid a = blob("{}\n"), b = blob("{\"b\": 1}\n"), m = blob("[]\n");
	cs_tree_update ups[] = {{SVC, &a}, {LOC, &b}, {MEMBERS, &m}};
	cs_oid tree, t;
	listing l = {0};

	ck_assert_int_eq(cs_repo_tree_update(&tree, repo, NULL, ups, 3), 0);
	t = lookup(&tree, SVC, CS_MODE_BLOB);
	ck_assert_int_eq(cs_oid_cmp(&t, &a), 0);
	t = lookup(&tree, LOC, CS_MODE_BLOB);
	ck_assert_int_eq(cs_oid_cmp(&t, &b), 0);
	lookup(&tree, MEMBERS, CS_MODE_BLOB);
	lookup(&tree, "records", CS_MODE_TREE);
	lookup(&tree, "records/ms2", CS_MODE_TREE);
	lookup(&tree, "records/ms2/service/ab", CS_MODE_TREE);
	ck_assert(absent(&tree, "records/alcs"));
	ck_assert(absent(&tree, "records/ms2/service/ab/x.json"));
	ck_assert_int_eq(cs_repo_tree_lookup(&t, NULL, repo, &tree,
					     "records/zz"),
			 CS_ENOTFOUND);
	ck_assert(strstr(cs_error_last(), "records/zz") != NULL);

	/* Walk: every blob, recursively, in path order. */
	ck_assert_int_eq(cs_repo_walk(repo, &tree, "", collect, &l), 0);
	ck_assert_uint_eq(l.n, 3);
	ck_assert_str_eq(l.paths[0], MEMBERS);
	ck_assert_str_eq(l.paths[1], LOC);
	ck_assert_str_eq(l.paths[2], SVC);
	ck_assert_uint_eq(l.modes[2], CS_MODE_BLOB);
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(cs_repo_walk(repo, &tree, "records/ms2/service",
				      collect, &l),
			 0);
	ck_assert_uint_eq(l.n, 1);
	ck_assert_str_eq(l.paths[0], SVC);
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(cs_repo_walk(repo, &tree, "records/alcs", collect,
				      &l),
			 0);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_int_eq(cs_repo_walk(repo, &tree, MEMBERS, collect, &l), 0);
	ck_assert_uint_eq(l.n, 0);

	/* One folder, names only. */
	ck_assert_int_eq(cs_repo_list_dir(repo, &tree, "records/ms2", collect,
					  &l),
			 0);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_str_eq(l.paths[0], "location");
	ck_assert_str_eq(l.paths[1], "service");
	ck_assert_uint_eq(l.modes[0], CS_MODE_TREE);
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(cs_repo_list_dir(repo, &tree, "", collect, &l), 0);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_str_eq(l.paths[0], "consortium");
	ck_assert_str_eq(l.paths[1], "records");
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(cs_repo_list_dir(repo, &tree, "nothing", collect, &l),
			 0);
	ck_assert_uint_eq(l.n, 0);

	/* The same content gives the same tree whatever the order. */
	{
		cs_tree_update rev[] = {{MEMBERS, &m}, {LOC, &b}, {SVC, &a}};

		ck_assert_int_eq(cs_repo_tree_update(&t, repo, NULL, rev, 3),
				 0);
		ck_assert_int_eq(cs_oid_cmp(&t, &tree), 0);
		t = update(NULL, MEMBERS, &m);
		t = update(&t, LOC, &b);
		t = update(&t, SVC, &a);
		ck_assert_int_eq(cs_oid_cmp(&t, &tree), 0);
	}
}
END_TEST

START_TEST(test_tree_remove_prunes)
{
	cs_oid a = blob("{}\n"), b = blob("{\"b\": 1}\n"), m = blob("[]\n");
	cs_tree_update ups[] = {{SVC, &a}, {LOC, &b}, {MEMBERS, &m}};
	cs_oid tree, t;

	ck_assert_int_eq(cs_repo_tree_update(&tree, repo, NULL, ups, 3), 0);

	/* The location folder empties: it and its shard go. */
	t = update(&tree, LOC, NULL);
	ck_assert(absent(&t, LOC));
	ck_assert_msg(absent(&t, "records/ms2/location/cd"),
		      "an emptied folder is kept");
	ck_assert_msg(absent(&t, "records/ms2/location"),
		      "an emptied folder is kept");
	lookup(&t, SVC, CS_MODE_BLOB);
	lookup(&t, "records/ms2", CS_MODE_TREE);

	/* The last record: records/ goes too. */
	t = update(&t, SVC, NULL);
	ck_assert_msg(absent(&t, "records"), "an emptied folder is kept");
	lookup(&t, MEMBERS, CS_MODE_BLOB);

	/* Everything: the empty tree. */
	t = update(&t, MEMBERS, NULL);
	ck_assert_str_eq(hex(&t), EMPTY_TREE);

	/* Removing what is not there: refused or a no-op, never another
	 * tree. */
	{
		cs_tree_update u = {"records/alcs/service/ab/" ID1 ".json",
				    NULL};

		if (cs_repo_tree_update(&t, repo, &tree, &u, 1) == 0)
			ck_assert_int_eq(cs_oid_cmp(&t, &tree), 0);
	}

	/* Add and remove back: the same tree. */
	t = update(&tree, "records/alcs/service/ab/" ID1 ".json", &a);
	ck_assert_int_ne(cs_oid_cmp(&t, &tree), 0);
	t = update(&t, "records/alcs/service/ab/" ID1 ".json", NULL);
	ck_assert_int_eq(cs_oid_cmp(&t, &tree), 0);
}
END_TEST

START_TEST(test_tree_reuses_subtrees)
{
	cs_oid a = blob("{}\n"), a2 = blob("{\"v\": 2}\n");
	cs_oid b = blob("{\"b\": 1}\n"), m = blob("[]\n");
	cs_tree_update ups[] = {{SVC, &a}, {LOC, &b}, {MEMBERS, &m}};
	cs_oid tree, t, before[4], after[4];
	static const char *const dirs[] = {"consortium", "records/ms2/location",
					   "records/ms2/service",
					   "records/ms2"};

	ck_assert_int_eq(cs_repo_tree_update(&tree, repo, NULL, ups, 3), 0);
	t = update(&tree, SVC, &a2);
	for (int i = 0; i < 4; i++) {
		before[i] = lookup(&tree, dirs[i], CS_MODE_TREE);
		after[i] = lookup(&t, dirs[i], CS_MODE_TREE);
	}
	ck_assert_int_eq(cs_oid_cmp(&before[0], &after[0]), 0);
	ck_assert_int_eq(cs_oid_cmp(&before[1], &after[1]), 0);
	ck_assert_int_ne(cs_oid_cmp(&before[2], &after[2]), 0);
	ck_assert_int_ne(cs_oid_cmp(&before[3], &after[3]), 0);

	/* Writing the same blob again: the same tree. */
	t = update(&tree, SVC, &a);
	ck_assert_int_eq(cs_oid_cmp(&t, &tree), 0);
}
END_TEST

/* ---------------------------------------------------------------------- */

typedef struct {
	char path[16][128];
	int has_old[16], has_new[16];
	cs_oid old_id[16], new_id[16];
	unsigned old_mode[16], new_mode[16];
	size_t n;
} changes;

static int
on_change(const cs_tree_change *c, void *payload)
{
	changes *ch = payload;
	size_t i = ch->n++;

	ck_assert_uint_lt(i, 16);
	snprintf(ch->path[i], sizeof(ch->path[0]), "%s", c->path);
	ch->has_old[i] = c->old_id != NULL;
	ch->has_new[i] = c->new_id != NULL;
	if (c->old_id)
		ch->old_id[i] = *c->old_id;
	if (c->new_id)
		ch->new_id[i] = *c->new_id;
	ch->old_mode[i] = c->old_mode;
	ch->new_mode[i] = c->new_mode;
	return 0;
}

static int
find_change(const changes *ch, const char *path)
{
	for (size_t i = 0; i < ch->n; i++)
		if (strcmp(ch->path[i], path) == 0)
			return (int)i;
	return -1;
}

START_TEST(test_diff)
{
	cs_oid a = blob("a\n"), a2 = blob("a2\n"), b = blob("b\n");
	cs_oid c = blob("c\n"), d = blob("d\n"), e = blob("e\n");
	cs_tree_update old_ups[] = {
		{"keep/same.json", &a},	  {"mod/x.json", &a},
		{"gone/deep/y.json", &b}, {"flip", &c},
		{"dir2file/z.json", &d},
	};
	cs_tree_update new_ups[] = {
		{"keep/same.json", &a}, {"mod/x.json", &a2},
		{"new/n.json", &e},	{"flip/inner.json", &c},
		{"dir2file", &d},
	};
	cs_oid old_tree, new_tree;
	changes ch = {0};
	int i;

	ck_assert_int_eq(cs_repo_tree_update(&old_tree, repo, NULL, old_ups,
					     5),
			 0);
	ck_assert_int_eq(cs_repo_tree_update(&new_tree, repo, NULL, new_ups,
					     5),
			 0);
	ck_assert_int_eq(cs_repo_diff(repo, &old_tree, &new_tree, on_change,
				      &ch),
			 0);
	/* Exactly these paths. */
	ck_assert_msg(ch.n == 7, "%zu changes", ch.n);
	ck_assert_int_lt(find_change(&ch, "keep/same.json"), 0);

	i = find_change(&ch, "mod/x.json"); /* modified */
	ck_assert_int_ge(i, 0);
	ck_assert(ch.has_old[i] && ch.has_new[i]);
	ck_assert_int_eq(cs_oid_cmp(&ch.old_id[i], &a), 0);
	ck_assert_int_eq(cs_oid_cmp(&ch.new_id[i], &a2), 0);
	ck_assert_uint_eq(ch.old_mode[i], CS_MODE_BLOB);
	ck_assert_uint_eq(ch.new_mode[i], CS_MODE_BLOB);

	i = find_change(&ch, "new/n.json"); /* added */
	ck_assert_int_ge(i, 0);
	ck_assert(!ch.has_old[i] && ch.has_new[i]);
	ck_assert_uint_eq(ch.new_mode[i], CS_MODE_BLOB);

	i = find_change(&ch, "gone/deep/y.json"); /* deleted, whole folder */
	ck_assert_int_ge(i, 0);
	ck_assert(ch.has_old[i] && !ch.has_new[i]);
	ck_assert_int_eq(cs_oid_cmp(&ch.old_id[i], &b), 0);
	ck_assert_uint_eq(ch.old_mode[i], CS_MODE_BLOB);

	/* blob -> tree: the blob deleted, the tree's blobs added */
	i = find_change(&ch, "flip");
	ck_assert_int_ge(i, 0);
	ck_assert(ch.has_old[i] && !ch.has_new[i]);
	ck_assert_uint_eq(ch.old_mode[i], CS_MODE_BLOB);
	i = find_change(&ch, "flip/inner.json");
	ck_assert_int_ge(i, 0);
	ck_assert(!ch.has_old[i] && ch.has_new[i]);

	/* tree -> blob */
	i = find_change(&ch, "dir2file/z.json");
	ck_assert_int_ge(i, 0);
	ck_assert(ch.has_old[i] && !ch.has_new[i]);
	i = find_change(&ch, "dir2file");
	ck_assert_int_ge(i, 0);
	ck_assert(!ch.has_old[i] && ch.has_new[i]);
	ck_assert_uint_eq(ch.new_mode[i], CS_MODE_BLOB);
	ck_assert_int_eq(cs_oid_cmp(&ch.new_id[i], &d), 0);

	/* From nothing: every blob added. */
	memset(&ch, 0, sizeof(ch));
	ck_assert_int_eq(cs_repo_diff(repo, NULL, &new_tree, on_change, &ch),
			 0);
	ck_assert_uint_eq(ch.n, 5);
	for (size_t k = 0; k < ch.n; k++)
		ck_assert(!ch.has_old[k] && ch.has_new[k]);

	/* Same tree: nothing. */
	memset(&ch, 0, sizeof(ch));
	ck_assert_int_eq(cs_repo_diff(repo, &old_tree, &old_tree, on_change,
				      &ch),
			 0);
	ck_assert_uint_eq(ch.n, 0);
}
END_TEST

static int
stop_at_second(const cs_tree_change *c, void *payload)
{
	int *calls = payload;

	(void)c;
	return ++*calls == 2 ? 42 : 0;
}

START_TEST(test_diff_stops)
{
	cs_oid a = blob("a\n");
	cs_tree_update ups[] = {{"a", &a}, {"b", &a}, {"c", &a}};
	cs_oid t;
	int calls = 0;

	ck_assert_int_eq(cs_repo_tree_update(&t, repo, NULL, ups, 3), 0);
	ck_assert_int_eq(cs_repo_diff(repo, NULL, &t, stop_at_second, &calls),
			 42);
	ck_assert_int_eq(calls, 2);
}
END_TEST

/* "in path order" (repo.h): deletions are not reported after the rest. */
START_TEST(test_diff_path_order)
{
	cs_oid a = blob("a\n"), b = blob("b\n");
	cs_tree_update old_ups[] = {{"records/a.json", &a},
				    {"records/c.json", &a}};
	cs_tree_update new_ups[] = {{"records/b.json", &b},
				    {"records/c.json", &b}};
	cs_oid old_tree, new_tree;
	changes ch = {0};

	ck_assert_int_eq(cs_repo_tree_update(&old_tree, repo, NULL, old_ups,
					     2),
			 0);
	ck_assert_int_eq(cs_repo_tree_update(&new_tree, repo, NULL, new_ups,
					     2),
			 0);
	ck_assert_int_eq(cs_repo_diff(repo, &old_tree, &new_tree, on_change,
				      &ch),
			 0);
	ck_assert_uint_eq(ch.n, 3);
	ck_assert_msg(strcmp(ch.path[0], "records/a.json") == 0 &&
			      strcmp(ch.path[1], "records/b.json") == 0 &&
			      strcmp(ch.path[2], "records/c.json") == 0,
		      "order: %s, %s, %s", ch.path[0], ch.path[1], ch.path[2]);

	/* A folder whose name starts another name: git stores "r-a.json"
	 * before "r" ("r/" sorts after "r-"), strcmp puts "r" first; the
	 * two sides are still paired entry by entry. */
	{
		cs_tree_update o[] = {{"x/r/x.json", &a}, {"x/r-a.json", &a}};
		cs_tree_update n[] = {{"x/r/x.json", &b}};
		changes ch2 = {0};

		ck_assert_int_eq(cs_repo_tree_update(&old_tree, repo, NULL, o,
						     2),
				 0);
		ck_assert_int_eq(cs_repo_tree_update(&new_tree, repo, NULL, n,
						     1),
				 0);
		ck_assert_int_eq(cs_repo_diff(repo, &old_tree, &new_tree,
					      on_change, &ch2),
				 0);
		ck_assert_uint_eq(ch2.n, 2);
		ck_assert_int_ge(find_change(&ch2, "x/r/x.json"), 0);
		ck_assert_int_ge(find_change(&ch2, "x/r-a.json"), 0);
		ck_assert(!ch2.has_new[find_change(&ch2, "x/r-a.json")]);
	}
}
END_TEST

/* ---------------------------------------------------------------------- */

START_TEST(test_commits)
{
	cs_oid t = empty_tree(), c1, c2, got, b = blob("x\n");
	cs_commit *c = (cs_commit *)1;
	cs_commit fields;
	cs_key *key;
	char *payload, *armor, *raw;
	size_t plen, len;

	c1 = commit_of(repo, &t, NULL, 0, 100, "one\n");
	ck_assert_int_eq(cs_repo_commit_tree(&got, repo, &c1), 0);
	ck_assert_int_eq(cs_oid_cmp(&got, &t), 0);
	ck_assert_int_eq(cs_repo_read_commit_raw(&raw, &len, repo, &c1), 0);
	ck_assert(strncmp(raw, "tree " EMPTY_TREE "\n", 46) == 0);
	ck_assert_uint_eq(strlen(raw), len);
	free(raw);
	/* Unsigned: git's grammar, not cartosync's. */
	ck_assert_int_eq(cs_repo_read_commit(&c, repo, &c1), CS_EINVALID);
	ck_assert_ptr_null(c);

	ck_assert_int_eq(cs_key_generate(&key), 0);
	memset(&fields, 0, sizeof(fields));
	fields.tree = t;
	fields.parents[0] = c1;
	fields.parent_count = 1;
	fields.author.name = "ms2";
	fields.author.email = "e";
	fields.author.time = 200;
	fields.committer = fields.author;
	fields.message = "two\n";
	ck_assert_int_eq(cs_commit_format_payload(&payload, &plen, &fields), 0);
	ck_assert_int_eq(cs_sshsig_sign(&armor, key, "git",
					(const uint8_t *)payload, plen),
			 0);
	ck_assert_int_eq(cs_commit_add_signature(&raw, &len, payload, plen,
						 armor),
			 0);
	ck_assert_int_eq(cs_repo_write_commit_raw(&c2, repo, raw, len), 0);
	ck_assert_int_eq(cs_repo_read_commit(&c, repo, &c2), 0);
	ck_assert_int_eq(c->kind, CS_COMMIT_EDIT);
	ck_assert_int_eq(cs_oid_cmp(&c->parents[0], &c1), 0);
	ck_assert_str_eq(c->signature, armor);
	cs_commit_free(c);
	free(raw);
	free(armor);
	free(payload);
	cs_key_free(key);

	/* Not a commit, and missing. */
	ck_assert_int_eq(cs_repo_read_commit(&c, repo, &b), CS_EINVALID);
	ck_assert(strstr(cs_error_last(), "is not a commit") != NULL);
	got = oid_of("2222222222222222222222222222222222222222");
	ck_assert_int_eq(cs_repo_read_commit(&c, repo, &got), CS_ENOTFOUND);
	ck_assert(strstr(cs_error_last(), "missing") != NULL);
	ck_assert(strstr(cs_error_last(), hex(&got)) != NULL);
}
END_TEST

START_TEST(test_ref_cas)
{
	cs_oid t = empty_tree(), a, b, c, got;
	static const char ref[] = "refs/heads/x";

	a = commit_of(repo, &t, NULL, 0, 1, "a\n");
	b = commit_of(repo, &t, &a, 1, 2, "b\n");
	c = commit_of(repo, &t, &b, 1, 3, "c\n");

	ck_assert_int_eq(cs_repo_ref_read(&got, repo, ref), CS_ENOTFOUND);
	ck_assert(strstr(cs_error_last(), ref) != NULL);

	/* Create if absent, once. */
	ck_assert_int_eq(cs_repo_ref_cas(repo, ref, &a, NULL, "create"), 0);
	ck_assert_int_eq(cs_repo_ref_read(&got, repo, ref), 0);
	ck_assert_int_eq(cs_oid_cmp(&got, &a), 0);
	ck_assert_int_eq(cs_repo_ref_cas(repo, ref, &b, NULL, "again"),
			 CS_ECONFLICT);
	ck_assert(strstr(cs_error_last(), ref) != NULL);
	ck_assert_int_eq(cs_repo_ref_read(&got, repo, ref), 0);
	ck_assert_int_eq(cs_oid_cmp(&got, &a), 0);

	/* Compare and swap. */
	ck_assert_int_eq(cs_repo_ref_cas(repo, ref, &b, &a, "move"), 0);
	ck_assert_int_eq(cs_repo_ref_read(&got, repo, ref), 0);
	ck_assert_int_eq(cs_oid_cmp(&got, &b), 0);

	/* A stale expectation loses and leaves the ref alone. */
	ck_assert_int_eq(cs_repo_ref_cas(repo, ref, &c, &a, "stale"),
			 CS_ECONFLICT);
	ck_assert_int_eq(cs_repo_ref_read(&got, repo, ref), 0);
	ck_assert_int_eq(cs_oid_cmp(&got, &b), 0);
	ck_assert_int_eq(cs_repo_ref_cas(repo, "refs/heads/none", &c, &a,
					 "absent"),
			 CS_ECONFLICT);
	ck_assert_int_eq(cs_repo_ref_read(&got, repo, "refs/heads/none"),
			 CS_ENOTFOUND);

	/* Delete: only with the right expectation. */
	ck_assert_int_eq(cs_repo_ref_cas(repo, ref, NULL, &a, "del"),
			 CS_ECONFLICT);
	ck_assert_int_eq(cs_repo_ref_cas(repo, ref, NULL, NULL, "del"),
			 CS_ECONFLICT);
	ck_assert_int_eq(cs_repo_ref_read(&got, repo, ref), 0);
	ck_assert_int_eq(cs_repo_ref_cas(repo, ref, NULL, &b, "del"), 0);
	ck_assert_int_eq(cs_repo_ref_read(&got, repo, ref), CS_ENOTFOUND);
	ck_assert_int_eq(cs_repo_ref_cas(repo, ref, NULL, &b, "del"),
			 CS_ECONFLICT);

	/* Another handle sees the moves at once. */
	{
		cs_repo *other;

		ck_assert_int_eq(cs_repo_ref_cas(repo, CS_REF_MAIN, &c, NULL,
						 "main"),
				 0);
		ck_assert_int_eq(cs_repo_open(&other, repodir), 0);
		ck_assert_int_eq(cs_repo_ref_read(&got, other, CS_REF_MAIN), 0);
		ck_assert_int_eq(cs_oid_cmp(&got, &c), 0);
		ck_assert_int_eq(cs_repo_ref_cas(other, CS_REF_MAIN, &a, &c,
						 "back"),
				 0);
		cs_repo_free(other);
		ck_assert_int_eq(cs_repo_ref_read(&got, repo, CS_REF_MAIN), 0);
		ck_assert_int_eq(cs_oid_cmp(&got, &a), 0);
	}
}
END_TEST

typedef struct {
	cs_oid target;
	cs_oid expected;
	int expect_absent;
	pthread_barrier_t *barrier;
	int rc;
} racer;

static void *
race(void *arg)
{
	racer *r = arg;
	cs_repo *own = NULL;

	ck_assert_int_eq(cs_repo_open(&own, repodir), 0);
	pthread_barrier_wait(r->barrier);
	r->rc = cs_repo_ref_cas(own, "refs/heads/race", &r->target,
				r->expect_absent ? NULL : &r->expected, "race");
	cs_repo_free(own);
	return NULL;
}

/* Run `nthreads` racers from `base` (or creating when expect_absent);
 * returns the winner's index after checking that exactly one won. */
static int
race_round(const char *what, int round, int nthreads, const cs_oid *targets,
	   const cs_oid *base, int expect_absent)
{
	pthread_barrier_t barrier;
	pthread_t tid[8];
	racer r[8];
	int wins = 0, winner = -1;
	cs_oid got;

	pthread_barrier_init(&barrier, NULL, (unsigned)nthreads);
	for (int i = 0; i < nthreads; i++) {
		r[i] = (racer){targets[i], *base, expect_absent, &barrier, 1};
		ck_assert_int_eq(pthread_create(&tid[i], NULL, race, &r[i]), 0);
	}
	for (int i = 0; i < nthreads; i++)
		pthread_join(tid[i], NULL);
	pthread_barrier_destroy(&barrier);
	for (int i = 0; i < nthreads; i++) {
		if (r[i].rc == 0) {
			wins++;
			winner = i;
		} else {
			ck_assert_msg(r[i].rc == CS_ECONFLICT,
				      "%s round %d: racer %d: %d (%s)", what,
				      round, i, r[i].rc, cs_error_last());
		}
	}
	ck_assert_msg(wins == 1, "%s round %d, %d threads: %d winners", what,
		      round, nthreads, wins);
	ck_assert_int_eq(cs_repo_ref_read(&got, repo, "refs/heads/race"), 0);
	ck_assert_int_eq(cs_oid_cmp(&got, &targets[winner]), 0);
	return winner;
}

static void
race_targets(cs_oid *base, cs_oid *targets, int n)
{
	cs_oid t = empty_tree();

	*base = commit_of(repo, &t, NULL, 0, 1, "base\n");
	for (int i = 0; i < n; i++) {
		char msg[32];

		snprintf(msg, sizeof(msg), "racer %d\n", i);
		targets[i] = commit_of(repo, &t, base, 1, 2, msg);
	}
}

/* Writers racing a compare-and-swap from the same value: one wins, the
 * others are told CS_ECONFLICT. */
START_TEST(test_ref_cas_race)
{
	cs_oid base, targets[8], got;

	race_targets(&base, targets, 8);
	ck_assert_int_eq(cs_repo_ref_cas(repo, "refs/heads/race", &base, NULL,
					 "base"),
			 0);
	for (int round = 0; round < 150; round++) {
		int w = race_round("cas", round, round % 2 ? 2 : 8, targets,
				   &base, 0);

		ck_assert_int_eq(cs_repo_ref_cas(repo, "refs/heads/race", &base,
						 &targets[w], "reset"),
				 0);
	}
	(void)got;
}
END_TEST

/* Writers racing to create a ref that does not exist: one wins. */
START_TEST(test_ref_create_race)
{
	cs_oid base, targets[8], got;

	race_targets(&base, targets, 8);
	for (int round = 0; round < 400; round++) {
		int w = race_round("create", round, round % 2 ? 2 : 8, targets,
				   &base, 1);

		ck_assert_int_eq(cs_repo_ref_read(&got, repo, "refs/heads/race"),
				 0);
		ck_assert_int_eq(cs_repo_ref_cas(repo, "refs/heads/race", NULL,
						 &targets[w], "reset"),
				 0);
	}
}
END_TEST

typedef struct {
	const cs_oid *new_id; /* NULL: delete */
	const cs_oid *expected;
	pthread_barrier_t *barrier;
	int rc;
} mover;

static void *
move(void *arg)
{
	mover *m = arg;
	cs_repo *own = NULL;

	ck_assert_int_eq(cs_repo_open(&own, repodir), 0);
	pthread_barrier_wait(m->barrier);
	m->rc = cs_repo_ref_cas(own, "refs/heads/race", m->new_id, m->expected,
				"race");
	cs_repo_free(own);
	return NULL;
}

/* A delete and a move racing from the same value: one wins; a delete
 * never removes a value it did not expect. */
START_TEST(test_ref_delete_race)
{
	cs_oid base, targets[8], got;

	race_targets(&base, targets, 8);
	for (int round = 0; round < 400; round++) {
		pthread_barrier_t barrier;
		pthread_t tid[2];
		mover m[2];
		int present;

		if (cs_repo_ref_read(&got, repo, "refs/heads/race") == 0)
			ck_assert_int_eq(cs_repo_ref_cas(repo, "refs/heads/race",
							 &base, &got, "reset"),
					 0);
		else
			ck_assert_int_eq(cs_repo_ref_cas(repo, "refs/heads/race",
							 &base, NULL, "reset"),
					 0);
		pthread_barrier_init(&barrier, NULL, 2);
		m[0] = (mover){NULL, &base, &barrier, 1};
		m[1] = (mover){&targets[round % 8], &base, &barrier, 1};
		for (int i = 0; i < 2; i++)
			ck_assert_int_eq(pthread_create(&tid[i], NULL, move,
							&m[i]),
					 0);
		for (int i = 0; i < 2; i++)
			pthread_join(tid[i], NULL);
		pthread_barrier_destroy(&barrier);
		present = cs_repo_ref_read(&got, repo, "refs/heads/race") == 0;
		ck_assert_msg((m[0].rc == 0) + (m[1].rc == 0) == 1,
			      "round %d: delete %d, move %d, ref %s", round,
			      m[0].rc, m[1].rc, present ? "present" : "gone");
		if (m[0].rc == 0)
			ck_assert(!present);
		else
			ck_assert(present &&
				  cs_oid_cmp(&got, &targets[round % 8]) == 0);
	}
}
END_TEST

static int
collect_ref(const char *name, const cs_oid *id, void *payload)
{
	return collect(name, id, 0, payload);
}

START_TEST(test_ref_foreach)
{
	cs_oid t = empty_tree(), a, b;
	listing l = {0};

	a = commit_of(repo, &t, NULL, 0, 1, "a\n");
	b = commit_of(repo, &t, &a, 1, 2, "b\n");
	ck_assert_int_eq(cs_repo_ref_cas(repo, CS_REF_EDITS "bbb", &b, NULL,
					 NULL),
			 0);
	ck_assert_int_eq(cs_repo_ref_cas(repo, CS_REF_EDITS "aaa", &a, NULL,
					 NULL),
			 0);
	ck_assert_int_eq(cs_repo_ref_cas(repo, CS_REF_MAIN, &b, NULL, NULL),
			 0);
	ck_assert_int_eq(cs_repo_ref_foreach(repo, CS_REF_EDITS, collect_ref,
					     &l),
			 0);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_str_eq(l.paths[0], CS_REF_EDITS "aaa");
	ck_assert_str_eq(l.paths[1], CS_REF_EDITS "bbb");
	ck_assert_int_eq(cs_oid_cmp(&l.ids[0], &a), 0);
	ck_assert_int_eq(cs_oid_cmp(&l.ids[1], &b), 0);
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(cs_repo_ref_foreach(repo, "refs/", collect_ref, &l),
			 0);
	ck_assert_uint_eq(l.n, 3);
	ck_assert_str_eq(l.paths[2], CS_REF_MAIN);
	memset(&l, 0, sizeof(l));
	ck_assert_int_eq(cs_repo_ref_foreach(repo, "refs/tags/", collect_ref,
					     &l),
			 0);
	ck_assert_uint_eq(l.n, 0);
}
END_TEST

/* ---------------------------------------------------------------------- */

START_TEST(test_topo_order)
{
	/*
	 *   A---B---C---M
	 *        \     /
	 *         D---E        times: A newest, M oldest (authors choose)
	 */
	cs_oid t = empty_tree(), A, B, C, D, E, M, *order = NULL, pair[2];
	cs_oid tips[2];
	size_t n = 0, pos[6];
	const cs_oid *all[6] = {&A, &B, &C, &D, &E, &M};

	A = commit_of(repo, &t, NULL, 0, 600, "A\n");
	B = commit_of(repo, &t, &A, 1, 500, "B\n");
	C = commit_of(repo, &t, &B, 1, 400, "C\n");
	D = commit_of(repo, &t, &B, 1, 300, "D\n");
	E = commit_of(repo, &t, &D, 1, 200, "E\n");
	pair[0] = C;
	pair[1] = E;
	M = commit_of(repo, &t, pair, 2, 100, "M\n");

	ck_assert_int_eq(cs_repo_topo_order(&order, &n, repo, &M, 1), 0);
	ck_assert_uint_eq(n, 6);
	for (int k = 0; k < 6; k++) {
		pos[k] = n;
		for (size_t i = 0; i < n; i++)
			if (cs_oid_cmp(&order[i], all[k]) == 0)
				pos[k] = i;
		ck_assert_uint_lt(pos[k], n);
	}
	ck_assert_uint_eq(pos[0], 0); /* the root first */
	ck_assert_uint_lt(pos[0], pos[1]);
	ck_assert_uint_lt(pos[1], pos[2]);
	ck_assert_uint_lt(pos[1], pos[3]);
	ck_assert_uint_lt(pos[3], pos[4]);
	ck_assert_uint_lt(pos[2], pos[5]);
	ck_assert_uint_lt(pos[4], pos[5]);
	ck_assert_uint_eq(pos[5], 5);
	free(order);

	/* Several tips: the union, each commit once. */
	tips[0] = C;
	tips[1] = E;
	ck_assert_int_eq(cs_repo_topo_order(&order, &n, repo, tips, 2), 0);
	ck_assert_uint_eq(n, 5);
	ck_assert_int_eq(cs_oid_cmp(&order[0], &A), 0);
	ck_assert_int_eq(cs_oid_cmp(&order[1], &B), 0);
	free(order);

	ck_assert_int_eq(cs_repo_topo_order(&order, &n, repo, tips, 0), 0);
	ck_assert_uint_eq(n, 0);
	free(order);

	/* Ancestry. */
	ck_assert_int_eq(cs_repo_is_ancestor(repo, &A, &M), 1);
	ck_assert_int_eq(cs_repo_is_ancestor(repo, &D, &M), 1);
	ck_assert_int_eq(cs_repo_is_ancestor(repo, &M, &A), 0);
	ck_assert_int_eq(cs_repo_is_ancestor(repo, &C, &E), 0);
	ck_assert_int_eq(cs_repo_is_ancestor(repo, &E, &C), 0);
	ck_assert_int_eq(cs_repo_is_ancestor(repo, &C, &C), 1);
	ck_assert_int_eq(cs_repo_is_ancestor(repo, &B, &E), 1);
}
END_TEST

typedef struct {
	int fd;
	int rc;
} locker;

static void *
lock_other(void *arg)
{
	locker *l = arg;
	cs_repo *other = NULL;

	l->rc = cs_repo_open(&other, repodir);
	if (l->rc == 0)
		l->rc = cs_repo_lock(other);
	if (l->rc == 0 && write(l->fd, "L", 1) != 1)
		l->rc = -100;
	cs_repo_free(other); /* unlocks */
	return NULL;
}

/* The writer lock holds off another writer (another handle: the daemon
 * and a command) until it is released. */
START_TEST(test_lock_excludes_other_writer)
{
	int pipefd[2];
	pthread_t tid;
	locker l;
	char c;
	fd_set set;
	struct timeval tv = {0, 300 * 1000};

	ck_assert_int_eq(cs_repo_lock(repo), 0);
	ck_assert_int_eq(cs_repo_lock(repo), 0); /* held already: fine */
	ck_assert_int_eq(pipe(pipefd), 0);
	l.fd = pipefd[1];
	l.rc = 1;
	ck_assert_int_eq(pthread_create(&tid, NULL, lock_other, &l), 0);

	/* Nothing within 300 ms while we hold the lock. */
	FD_ZERO(&set);
	FD_SET(pipefd[0], &set);
	ck_assert_int_eq(select(pipefd[0] + 1, &set, NULL, NULL, &tv), 0);
	cs_repo_unlock(repo);
	ck_assert_int_eq(read(pipefd[0], &c, 1), 1);
	ck_assert_int_eq(c, 'L');
	pthread_join(tid, NULL);
	ck_assert_int_eq(l.rc, 0);
	close(pipefd[0]);
	close(pipefd[1]);

	/* And back: free (unlocked) handles do not block us. */
	ck_assert_int_eq(cs_repo_lock(repo), 0);
	cs_repo_unlock(repo);
}
END_TEST

/*
 * A writer killed -9 while it held a ref's lock file leaves it: the node's
 * lock holder removes it and goes on; without the node's lock, and under
 * refs/incoming/ (git receive-pack's), a lock file is respected.
 */
START_TEST(test_stale_ref_lock)
{
	cs_oid t = empty_tree(), a, b, got;
	char path[PATH_MAX];
	FILE *f;

	a = commit_of(repo, &t, NULL, 0, 1, "a\n");
	b = commit_of(repo, &t, &a, 1, 2, "b\n");
	ck_assert_int_eq(cs_repo_ref_cas(repo, "refs/heads/main", &a, NULL,
					 "create"),
			 0);
	ck_assert_int_eq(cs_repo_ref_cas(repo, "refs/incoming/ms2/main", &a,
					 NULL, "create"),
			 0);
	snprintf(path, sizeof(path), "%s/refs/heads/main.lock",
		 cs_repo_path(repo));
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fclose(f);

	/* Not holding the node's lock: the lock file may be live. */
	ck_assert_int_eq(cs_repo_ref_cas(repo, "refs/heads/main", &b, &a,
					 "move"),
			 CS_ECONFLICT);
	ck_assert_int_eq(access(path, F_OK), 0);

	ck_assert_int_eq(cs_repo_lock(repo), 0);
	ck_assert_msg(cs_repo_ref_cas(repo, "refs/heads/main", &b, &a,
				      "move") == 0,
		      "%s", cs_error_last());
	ck_assert_int_eq(cs_repo_ref_read(&got, repo, "refs/heads/main"), 0);
	ck_assert_int_eq(cs_oid_cmp(&got, &b), 0);
	ck_assert_int_ne(access(path, F_OK), 0);

	/* receive-pack writes refs/incoming/ without the node's lock. */
	snprintf(path, sizeof(path), "%s/refs/incoming/ms2/main.lock",
		 cs_repo_path(repo));
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fclose(f);
	ck_assert_int_eq(cs_repo_ref_cas(repo, "refs/incoming/ms2/main", &b,
					 &a, "move"),
			 CS_ECONFLICT);
	ck_assert_int_eq(access(path, F_OK), 0);
	unlink(path);

	/* Deleting a packed ref rewrites packed-refs under packed-refs.lock. */
	{
		char cmd[PATH_MAX + 64];

		snprintf(cmd, sizeof(cmd), "git -C '%s' pack-refs --all",
			 cs_repo_path(repo));
		ck_assert_int_eq(system(cmd), 0);
	}
	snprintf(path, sizeof(path), "%s/packed-refs.lock", cs_repo_path(repo));
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	fclose(f);
	ck_assert_msg(cs_repo_ref_cas(repo, "refs/heads/main", NULL, &b,
				      "delete") == 0,
		      "%s", cs_error_last());
	ck_assert_int_eq(cs_repo_ref_read(&got, repo, "refs/heads/main"),
			 CS_ENOTFOUND);
	cs_repo_unlock(repo);
	unlink(path);
}
END_TEST

static Suite *
repo_suite(void)
{
	Suite *s = suite_create("repo");
	TCase *tc = tcase_create("repo");

	tcase_add_unchecked_fixture(tc, make_basedir, remove_basedir);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_init_open);
	tcase_add_test(tc, test_blobs);
	tcase_add_test(tc, test_tree_nested);
	tcase_add_test(tc, test_tree_remove_prunes);
	tcase_add_test(tc, test_tree_reuses_subtrees);
	tcase_add_test(tc, test_diff);
	tcase_add_test(tc, test_diff_stops);
	tcase_add_test(tc, test_diff_path_order);
	tcase_add_test(tc, test_commits);
	tcase_add_test(tc, test_ref_cas);
	tcase_add_test(tc, test_ref_cas_race);
	tcase_add_test(tc, test_ref_create_race);
	tcase_add_test(tc, test_ref_delete_race);
	tcase_add_test(tc, test_ref_foreach);
	tcase_add_test(tc, test_topo_order);
	tcase_add_test(tc, test_lock_excludes_other_writer);
	tcase_add_test(tc, test_stale_ref_lock);
	tcase_add_test(tc, test_store_packing);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(repo_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
