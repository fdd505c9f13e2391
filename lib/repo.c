/*
 * The one place that includes git2.h: every libgit2 failure is translated
 * here into a cartosync error code and message.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <git2.h>
#include <git2/sys/repository.h>

#include "cartosync/error.h"
#include "cartosync/repo.h"
#include "pack.h"
#include "repo_internal.h"

struct cs_repo {
	git_repository *git;
	char *path;
	int lock_fd;
	struct timespec packs_seen; /* objects/pack's mtime when opened */
	cs_pack_reader *packs;      /* opened on first read (pack.h) */
	struct timespec packs_read; /* objects/pack's mtime then */
};

static pthread_once_t git_once = PTHREAD_ONCE_INIT;

static void
git_setup(void)
{
	git_libgit2_init();
	/* Acknowledged means durable: objects and refs are fsynced. */
	git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
	/*
	 * Trees are written only from entries just read from other trees or
	 * blobs just written: checking that every entry exists would read
	 * each again (half the time of a merge at 100,000 records).
	 */
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_OBJECT_CREATION, 0);
	/*
	 * A records/<owner>/<type> tree has up to 256 entries (~16 KiB), over
	 * libgit2's 4 KiB default: cache trees up to 1 MiB for the lookups by
	 * path (walks and diffs read raw trees through the pack reader,
	 * pack.h).  Objects are hashed when they enter the store (the indexer,
	 * our writes) and `git fsck` checks it, as git itself does: not again
	 * on every read.
	 */
	git_libgit2_opts(GIT_OPT_SET_CACHE_OBJECT_LIMIT, GIT_OBJECT_TREE,
			 (size_t)1024 * 1024);
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
	/*
	 * libgit2's object cache (256 MiB by default, per repository handle,
	 * and verification opens one per thread) grew `cartosync sync` to
	 * 590 MB at 100,000 records; 32 MiB keeps the trees that matter with
	 * no measurable slowdown (tests/bench/bench_sync).
	 */
	git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, (ssize_t)32 * 1024 * 1024);
}

void
cs_repo_git_setup(void)
{
	pthread_once(&git_once, git_setup);
}

git_repository *
cs_repo_git(cs_repo *repo)
{
	return repo->git;
}

/* Translate libgit2's last error into ours. */
static int
git_fail(int code, const char *what)
{
	const git_error *e = git_error_last();
	int mapped;

	switch (code) {
	case GIT_ENOTFOUND:
		mapped = CS_ENOTFOUND;
		break;
	case GIT_EEXISTS:
		mapped = CS_EEXISTS;
		break;
	case GIT_EMODIFIED:
	case GIT_ELOCKED:
		mapped = CS_ECONFLICT;
		break;
	default:
		mapped = CS_ERROR;
	}
	return cs_error_set(mapped, "%s: %s", what,
			    e && e->message ? e->message : "git error");
}

static void
to_git(git_oid *out, const cs_oid *id)
{
	memcpy(out->id, id->id, CS_OID_RAWSZ);
}

static void
from_git(cs_oid *out, const git_oid *id)
{
	memcpy(out->id, id->id, CS_OID_RAWSZ);
}

/* When the store's packs last changed (zero if unknown). */
static struct timespec
packs_mtime(const char *path)
{
	struct timespec t = {0, 0};
	struct stat st;
	char *dir = NULL;

	if (asprintf(&dir, "%s/objects/pack", path) >= 0 &&
	    stat(dir, &st) == 0)
		t = st.st_mtim;
	free(dir);
	return t;
}

static int
repo_new(cs_repo **out, git_repository *git, const char *path)
{
	cs_repo *repo = calloc(1, sizeof(*repo));
	size_t len;

	if (repo == NULL || (repo->path = strdup(path)) == NULL) {
		free(repo);
		git_repository_free(git);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	len = strlen(repo->path);
	while (len > 1 && repo->path[len - 1] == '/')
		repo->path[--len] = '\0';
	repo->git = git;
	repo->lock_fd = -1;
	repo->packs_seen = packs_mtime(repo->path);
	*out = repo;
	return 0;
}

int
cs_repo_refresh(cs_repo *repo)
{
	struct timespec now = packs_mtime(repo->path);
	git_repository *fresh = NULL;
	int rc;

	if (now.tv_sec == repo->packs_seen.tv_sec &&
	    now.tv_nsec == repo->packs_seen.tv_nsec)
		return 0;
	rc = git_repository_open_ext(&fresh, repo->path,
				     GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
	if (rc < 0)
		return git_fail(rc, repo->path);
	git_repository_free(repo->git);
	repo->git = fresh;
	repo->packs_seen = now;
	cs_pack_reader_free(repo->packs);
	repo->packs = NULL;
	return 0;
}

void
cs_repo_set_durable(int durable)
{
	pthread_once(&git_once, git_setup);
	git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, durable ? 1 : 0);
}

int
cs_repo_init(cs_repo **out, const char *path)
{
	git_repository_init_options opts = GIT_REPOSITORY_INIT_OPTIONS_INIT;
	git_repository *git = NULL;
	int rc;

	*out = NULL;
	pthread_once(&git_once, git_setup);
	opts.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH |
		     GIT_REPOSITORY_INIT_NO_REINIT;
	opts.initial_head = "main";
	if ((rc = git_repository_init_ext(&git, path, &opts)) < 0)
		return git_fail(rc, path);
	return repo_new(out, git, path);
}

int
cs_repo_open(cs_repo **out, const char *path)
{
	git_repository *git = NULL;
	int rc;

	*out = NULL;
	pthread_once(&git_once, git_setup);
	rc = git_repository_open_ext(&git, path, GIT_REPOSITORY_OPEN_NO_SEARCH,
				     NULL);
	if (rc == GIT_ENOTFOUND)
		return cs_error_set(CS_ENOTFOUND,
				    "'%s' is not a cartosync node (no"
				    " repository)",
				    path);
	if (rc < 0)
		return git_fail(rc, path);
	return repo_new(out, git, path);
}

void
cs_repo_free(cs_repo *repo)
{
	if (repo == NULL)
		return;
	cs_repo_unlock(repo);
	cs_pack_reader_free(repo->packs);
	git_repository_free(repo->git);
	free(repo->path);
	free(repo);
}

const char *
cs_repo_path(const cs_repo *repo)
{
	return repo->path;
}

int
cs_repo_read_commit_raw(char **out, size_t *outlen, cs_repo *repo,
			const cs_oid *id)
{
	git_odb *odb = NULL;
	git_odb_object *obj = NULL;
	git_oid gid;
	char hex[CS_OID_HEXSZ + 1];
	int rc, error;

	*out = NULL;
	to_git(&gid, id);
	cs_oid_fmt(hex, id);
	if ((rc = git_repository_odb(&odb, repo->git)) < 0) {
		error = git_fail(rc, "object database");
		goto done;
	}
	if ((rc = git_odb_read(&obj, odb, &gid)) < 0) {
		error = rc == GIT_ENOTFOUND
				? cs_error_set(CS_ENOTFOUND,
					       "commit %s is missing", hex)
				: git_fail(rc, hex);
		goto done;
	}
	if (git_odb_object_type(obj) != GIT_OBJECT_COMMIT) {
		error = cs_error_set(CS_EINVALID, "object %s is not a commit",
				     hex);
		goto done;
	}
	*outlen = git_odb_object_size(obj);
	if ((*out = malloc(*outlen + 1)) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	memcpy(*out, git_odb_object_data(obj), *outlen);
	(*out)[*outlen] = '\0';
	error = 0;
done:
	git_odb_object_free(obj);
	git_odb_free(odb);
	return error;
}

int
cs_repo_read_commit(cs_commit **out, cs_repo *repo, const cs_oid *id)
{
	char *raw = NULL;
	size_t len = 0;
	int error;

	*out = NULL;
	if ((error = cs_repo_read_commit_raw(&raw, &len, repo, id)) < 0)
		return error;
	error = cs_commit_parse(out, raw, len);
	free(raw);
	return error;
}

/*
 * Reading objects: from the packs through the repository's pack reader
 * (pack.h), else through libgit2 (loose objects, and what the reader
 * leaves).  A reader that misses looks again when packs were added since
 * it opened.  Types are numbered as in packs, which libgit2 shares.
 */
static cs_pack_reader *
pack_reader(cs_repo *repo, int missed)
{
	struct timespec now;

	if (repo->packs && !missed)
		return repo->packs;
	now = packs_mtime(repo->path);
	if (repo->packs && now.tv_sec == repo->packs_read.tv_sec &&
	    now.tv_nsec == repo->packs_read.tv_nsec)
		return NULL; /* nothing new: the miss stands */
	cs_pack_reader_free(repo->packs);
	repo->packs = NULL;
	{
		const char *gitdir = git_repository_path(repo->git);
		char *objects = NULL;

		if (asprintf(&objects, "%sobjects", gitdir) < 0)
			return NULL;
		if (cs_pack_reader_open(&repo->packs, objects) < 0)
			repo->packs = NULL;
		free(objects);
	}
	repo->packs_read = now;
	return repo->packs;
}

/* A malloc'd copy of object `id`, NUL-terminated after *len bytes. */
static int
object_read(cs_repo *repo, const cs_oid *id, size_t max, int *type,
	    char **data, size_t *len, const char *what)
{
	cs_pack_reader *r = pack_reader(repo, 0);
	git_odb *odb = NULL;
	git_odb_object *obj = NULL;
	git_oid gid;
	int rc, error;

	if (r && (error = cs_pack_read(r, id, max, type, data, len)) !=
			 CS_ENOTFOUND)
		return error ? cs_error_prefix(error, "%s", what) : 0;
	if (r && (r = pack_reader(repo, 1)) != NULL &&
	    (error = cs_pack_read(r, id, max, type, data, len)) !=
		    CS_ENOTFOUND)
		return error ? cs_error_prefix(error, "%s", what) : 0;
	to_git(&gid, id);
	if ((rc = git_repository_odb(&odb, repo->git)) < 0)
		return git_fail(rc, "object database");
	/* The size from the header before the object is inflated. */
	if (max != SIZE_MAX) {
		git_object_t t;

		if ((rc = git_odb_read_header(len, &t, odb, &gid)) < 0) {
			git_odb_free(odb);
			return git_fail(rc, what);
		}
		if (*len > max) {
			git_odb_free(odb);
			return CS_ELIMIT;
		}
	}
	if ((rc = git_odb_read(&obj, odb, &gid)) < 0) {
		git_odb_free(odb);
		return git_fail(rc, what);
	}
	*type = (int)git_odb_object_type(obj);
	*len = git_odb_object_size(obj);
	if (*len > max) {
		error = cs_error_set(CS_ELIMIT,
				     "%s: object is %zu bytes, over the limit"
				     " of %zu",
				     what, *len, max);
	} else if ((*data = malloc(*len + 1)) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
	} else {
		memcpy(*data, git_odb_object_data(obj), *len);
		(*data)[*len] = '\0';
		error = 0;
	}
	git_odb_object_free(obj);
	git_odb_free(odb);
	return error;
}

int
cs_repo_read_blob(char **out, size_t *outlen, cs_repo *repo,
		  const cs_oid *id, size_t max)
{
	int type, error;

	*out = NULL;
	error = object_read(repo, id, max, &type, out, outlen, "blob");
	if (error == CS_ELIMIT)
		return cs_error_set(CS_ELIMIT,
				    "file is %zu bytes, over the limit of %zu",
				    *outlen, max);
	if (error < 0)
		return error;
	if (type != GIT_OBJECT_BLOB) {
		free(*out);
		*out = NULL;
		return cs_error_set(CS_EINVALID, "object is not a file");
	}
	return 0;
}

static int
tree_lookup(git_tree **out, cs_repo *repo, const cs_oid *id)
{
	git_oid gid;
	int rc;

	to_git(&gid, id);
	if ((rc = git_tree_lookup(out, repo->git, &gid)) < 0)
		return git_fail(rc, "tree");
	return 0;
}

int
cs_repo_tree_lookup(cs_oid *out, unsigned *mode, cs_repo *repo,
		    const cs_oid *tree, const char *path)
{
	git_tree *t = NULL;
	git_tree_entry *entry = NULL;
	int rc, error;

	if ((error = tree_lookup(&t, repo, tree)) < 0)
		return error;
	rc = git_tree_entry_bypath(&entry, t, path);
	if (rc == GIT_ENOTFOUND) {
		error = cs_error_set(CS_ENOTFOUND, "'%s' not found", path);
	} else if (rc < 0) {
		error = git_fail(rc, path);
	} else {
		from_git(out, git_tree_entry_id(entry));
		if (mode)
			*mode = (unsigned)git_tree_entry_filemode_raw(entry);
		error = 0;
	}
	git_tree_entry_free(entry);
	git_tree_free(t);
	return error;
}

int
cs_repo_commit_tree(cs_oid *out, cs_repo *repo, const cs_oid *commit)
{
	git_commit *c = NULL;
	git_oid gid;
	int rc;

	to_git(&gid, commit);
	if ((rc = git_commit_lookup(&c, repo->git, &gid)) < 0)
		return git_fail(rc, "commit");
	from_git(out, git_commit_tree_id(c));
	git_commit_free(c);
	return 0;
}

typedef struct {
	char *buf;
	size_t len;
	size_t cap;
} pathbuf;

static int
path_push(pathbuf *p, const char *name, size_t *saved)
{
	size_t n = strlen(name), need = p->len + n + 2;

	*saved = p->len;
	if (need > p->cap) {
		char *grown = realloc(p->buf, need * 2);

		if (grown == NULL)
			return cs_error_set(CS_ERROR, "out of memory");
		p->buf = grown;
		p->cap = need * 2;
	}
	if (p->len)
		p->buf[p->len++] = '/';
	memcpy(p->buf + p->len, name, n + 1);
	p->len += n;
	return 0;
}

static void
path_pop(pathbuf *p, size_t saved)
{
	p->len = saved;
	if (p->buf)
		p->buf[saved] = '\0';
}

/*
 * Trees as stored: "MODE NAME\0" and 20 bytes of id per entry, read
 * through object_read() and checked as libgit2 checks them (an octal mode
 * up to 0xffff, a name, a whole id).  The walks and the diff below read
 * them raw: verification diffs every commit of a history, and parsing
 * each tree into libgit2's objects cost more than the comparing.
 */
typedef struct {
	const char *name; /* NUL-terminated in the tree's data */
	unsigned mode;
	const uint8_t *id;
} raw_entry;

typedef struct {
	char *data;
	raw_entry *items;
	size_t count;
} raw_tree;

static void
raw_tree_free(raw_tree *t)
{
	free(t->data);
	free(t->items);
	memset(t, 0, sizeof(*t));
}

static int
raw_is_tree(const raw_entry *e)
{
	return (e->mode & 0170000) == 0040000;
}

static int
raw_tree_read(raw_tree *t, cs_repo *repo, const cs_oid *id, const char *what)
{
	size_t len = 0, cap = 0;
	const char *p, *end;
	int type, error;

	memset(t, 0, sizeof(*t));
	if ((error = object_read(repo, id, SIZE_MAX, &type, &t->data, &len,
				 what)) < 0)
		return error;
	if (type != GIT_OBJECT_TREE) {
		raw_tree_free(t);
		return cs_error_set(CS_EINVALID, "%s: object is not a folder",
				    what);
	}
	for (p = t->data, end = t->data + len; p < end;) {
		const char *nul;
		unsigned mode = 0;
		int digits = 0;

		while (p < end && *p >= '0' && *p <= '7' && digits < 7) {
			mode = mode * 8 + (unsigned)(*p++ - '0');
			digits++;
		}
		if (digits == 0 || mode > 0xffff || p >= end || *p++ != ' ' ||
		    (nul = memchr(p, '\0', (size_t)(end - p))) == NULL ||
		    nul == p || nul - p > 0xffff || end - nul - 1 < 20) {
			raw_tree_free(t);
			return cs_error_set(CS_EINVALID,
					    "%s: a folder's entry is malformed",
					    what);
		}
		if (t->count == cap) {
			raw_entry *grown;

			cap = cap ? cap * 2 : 32;
			if ((grown = realloc(t->items,
					     cap * sizeof(*grown))) == NULL) {
				raw_tree_free(t);
				return cs_error_set(CS_ERROR, "out of memory");
			}
			t->items = grown;
		}
		t->items[t->count++] =
			(raw_entry){p, mode, (const uint8_t *)nul + 1};
		p = nul + 21;
	}
	return 0;
}

static int
walk_tree(cs_repo *repo, const raw_tree *tree, pathbuf *path,
	  cs_repo_entry_cb cb, void *payload)
{
	int error = 0;

	for (size_t i = 0; i < tree->count && error == 0; i++) {
		const raw_entry *e = &tree->items[i];
		size_t saved;
		cs_oid id;

		if ((error = path_push(path, e->name, &saved)))
			break;
		memcpy(id.id, e->id, CS_OID_RAWSZ);
		if (raw_is_tree(e)) {
			raw_tree sub;

			if ((error = raw_tree_read(&sub, repo, &id,
						   path->buf)) == 0)
				error = walk_tree(repo, &sub, path, cb,
						  payload);
			raw_tree_free(&sub);
		} else {
			error = cb(path->buf, &id, e->mode, payload);
		}
		path_pop(path, saved);
	}
	return error;
}

int
cs_repo_walk(cs_repo *repo, const cs_oid *tree, const char *prefix,
	     cs_repo_entry_cb cb, void *payload)
{
	raw_tree t = {0};
	pathbuf path = {0};
	cs_oid start = *tree;
	unsigned mode = CS_MODE_TREE;
	size_t saved;
	int error;

	if (prefix && *prefix) {
		error = cs_repo_tree_lookup(&start, &mode, repo, tree, prefix);
		if (error == CS_ENOTFOUND)
			return 0;
		if (error < 0)
			return error;
		if (mode != CS_MODE_TREE)
			return 0;
		if ((error = path_push(&path, prefix, &saved)) < 0)
			return error;
	}
	if ((error = raw_tree_read(&t, repo, &start, "tree")) == 0)
		error = walk_tree(repo, &t, &path, cb, payload);
	raw_tree_free(&t);
	free(path.buf);
	return error;
}

static int
entry_name_cmp(const void *a, const void *b)
{
	return strcmp(((const cs_tree_entry *)a)->name,
		      ((const cs_tree_entry *)b)->name);
}

int
cs_repo_tree_read(cs_tree_entries *out, cs_repo *repo, const cs_oid *id)
{
	git_tree *t = NULL;
	size_t n;
	int error;

	out->items = NULL;
	out->count = 0;
	if (id == NULL)
		return 0;
	if ((error = tree_lookup(&t, repo, id)) < 0)
		return error;
	n = git_tree_entrycount(t);
	if ((out->items = calloc(n ? n : 1, sizeof(*out->items))) == NULL) {
		git_tree_free(t);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);
		cs_tree_entry *o = &out->items[i];

		if ((o->name = strdup(git_tree_entry_name(e))) == NULL) {
			git_tree_free(t);
			cs_tree_entries_clear(out);
			return cs_error_set(CS_ERROR, "out of memory");
		}
		from_git(&o->id, git_tree_entry_id(e));
		o->mode = (unsigned)git_tree_entry_filemode_raw(e);
		out->count++;
	}
	git_tree_free(t);
	qsort(out->items, out->count, sizeof(*out->items), entry_name_cmp);
	return 0;
}

int
cs_repo_tree_write(cs_oid *out, cs_repo *repo, const cs_tree_entry *entries,
		   size_t count)
{
	git_treebuilder *bld = NULL;
	git_oid gid;
	int rc;

	if ((rc = git_treebuilder_new(&bld, repo->git, NULL)) < 0)
		return git_fail(rc, "writing a tree");
	for (size_t i = 0; i < count; i++) {
		to_git(&gid, &entries[i].id);
		if ((rc = git_treebuilder_insert(NULL, bld, entries[i].name,
						 &gid,
						 (git_filemode_t)entries[i].mode)) <
		    0) {
			git_treebuilder_free(bld);
			return git_fail(rc, entries[i].name);
		}
	}
	rc = git_treebuilder_write(&gid, bld);
	git_treebuilder_free(bld);
	if (rc < 0)
		return git_fail(rc, "writing a tree");
	from_git(out, &gid);
	return 0;
}

void
cs_tree_entries_clear(cs_tree_entries *entries)
{
	for (size_t i = 0; i < entries->count; i++)
		free(entries->items[i].name);
	free(entries->items);
	entries->items = NULL;
	entries->count = 0;
}

int
cs_repo_list_dir(cs_repo *repo, const cs_oid *tree, const char *path,
		 cs_repo_entry_cb cb, void *payload)
{
	git_tree *t = NULL;
	cs_oid dir = *tree;
	unsigned mode = CS_MODE_TREE;
	int error = 0;

	if (path && *path) {
		error = cs_repo_tree_lookup(&dir, &mode, repo, tree, path);
		if (error == CS_ENOTFOUND || (error == 0 && mode != CS_MODE_TREE))
			return 0;
		if (error < 0)
			return error;
	}
	if ((error = tree_lookup(&t, repo, &dir)) < 0)
		return error;
	for (size_t i = 0; i < git_tree_entrycount(t) && error == 0; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);
		cs_oid id;

		from_git(&id, git_tree_entry_id(e));
		error = cb(git_tree_entry_name(e), &id,
			   (unsigned)git_tree_entry_filemode_raw(e), payload);
	}
	git_tree_free(t);
	return error;
}

/* Report every blob below tree `id` as added (old=0) or deleted (old=1). */
typedef struct {
	cs_repo_diff_cb cb;
	void *payload;
	int deleted;
} one_side;

static int
one_side_entry(const char *path, const cs_oid *id, unsigned mode,
	       void *payload)
{
	one_side *s = payload;
	cs_tree_change change = {path, NULL, NULL, 0, 0};

	if (s->deleted) {
		change.old_id = id;
		change.old_mode = mode;
	} else {
		change.new_id = id;
		change.new_mode = mode;
	}
	return s->cb(&change, s->payload);
}

static int
report_entry(cs_repo *repo, const raw_entry *e, pathbuf *path, int deleted,
	     cs_repo_diff_cb cb, void *payload)
{
	one_side side = {cb, payload, deleted};
	cs_oid id;

	memcpy(id.id, e->id, CS_OID_RAWSZ);
	if (raw_is_tree(e)) {
		raw_tree t;
		int error = raw_tree_read(&t, repo, &id, path->buf);

		if (error == 0)
			error = walk_tree(repo, &t, path, one_side_entry,
					  &side);
		raw_tree_free(&t);
		return error;
	}
	return one_side_entry(path->buf, &id, e->mode, &side);
}

static int diff_trees(cs_repo *repo, const raw_tree *a, const raw_tree *b,
		      pathbuf *path, cs_repo_diff_cb cb, void *payload);

static int
diff_entry(cs_repo *repo, const raw_entry *old, const raw_entry *new,
	   pathbuf *path, cs_repo_diff_cb cb, void *payload)
{
	cs_oid a, b;
	int error;

	if (memcmp(old->id, new->id, CS_OID_RAWSZ) == 0 &&
	    old->mode == new->mode)
		return 0;
	memcpy(a.id, old->id, CS_OID_RAWSZ);
	memcpy(b.id, new->id, CS_OID_RAWSZ);
	if (raw_is_tree(old) && raw_is_tree(new)) {
		raw_tree ta, tb;

		if ((error = raw_tree_read(&ta, repo, &a, path->buf)) < 0)
			return error;
		if ((error = raw_tree_read(&tb, repo, &b, path->buf)) == 0)
			error = diff_trees(repo, &ta, &tb, path, cb, payload);
		raw_tree_free(&ta);
		raw_tree_free(&tb);
		return error;
	}
	if (raw_is_tree(old) || raw_is_tree(new)) {
		if ((error = report_entry(repo, old, path, 1, cb, payload)))
			return error;
		return report_entry(repo, new, path, 0, cb, payload);
	}
	return cb(&(cs_tree_change){path->buf, &a, &b, old->mode, new->mode},
		  payload);
}

static int
raw_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const raw_entry *)a)->name,
		      ((const raw_entry *)b)->name);
}

/* Entries by name in strcmp order.  git's order differs from it only where
 * a folder's name is the start of another name: most trees are in order
 * already. */
static void
raw_tree_sort(raw_tree *t)
{
	for (size_t i = 1; i < t->count; i++)
		if (strcmp(t->items[i - 1].name, t->items[i].name) > 0) {
			qsort(t->items, t->count, sizeof(*t->items),
			      raw_entry_cmp);
			return;
		}
}

/* Both trees walked together in name order: changes come in path order.
 * `a` may be empty (no old tree). */
static int
diff_trees(cs_repo *repo, const raw_tree *a, const raw_tree *b, pathbuf *path,
	   cs_repo_diff_cb cb, void *payload)
{
	raw_tree sa = *a, sb = *b;
	size_t i = 0, j = 0;
	int error = 0;

	/* Sorted copies of the entry lists when a tree is out of order. */
	sa.items = NULL;
	sb.items = NULL;
	if ((a->count && (sa.items = malloc(a->count * sizeof(*sa.items))) ==
				 NULL) ||
	    (b->count && (sb.items = malloc(b->count * sizeof(*sb.items))) ==
				 NULL)) {
		free(sa.items);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	if (a->count)
		memcpy(sa.items, a->items, a->count * sizeof(*sa.items));
	if (b->count)
		memcpy(sb.items, b->items, b->count * sizeof(*sb.items));
	raw_tree_sort(&sa);
	raw_tree_sort(&sb);
	while (error == 0 && (i < sa.count || j < sb.count)) {
		const raw_entry *old = i < sa.count ? &sa.items[i] : NULL;
		const raw_entry *new = j < sb.count ? &sb.items[j] : NULL;
		int c = !old ? 1 : !new ? -1 : strcmp(old->name, new->name);
		size_t saved;

		if ((error = path_push(path, (c <= 0 ? old : new)->name,
				       &saved)))
			break;
		if (c == 0)
			error = diff_entry(repo, old, new, path, cb, payload);
		else if (c < 0)
			error = report_entry(repo, old, path, 1, cb, payload);
		else
			error = report_entry(repo, new, path, 0, cb, payload);
		path_pop(path, saved);
		i += c <= 0;
		j += c >= 0;
	}
	free(sa.items);
	free(sb.items);
	return error;
}

int
cs_repo_diff(cs_repo *repo, const cs_oid *old_tree, const cs_oid *new_tree,
	     cs_repo_diff_cb cb, void *payload)
{
	raw_tree a = {0}, b = {0};
	pathbuf path = {0};
	int error;

	if (old_tree && (error = raw_tree_read(&a, repo, old_tree, "tree")) < 0)
		return error;
	if ((error = raw_tree_read(&b, repo, new_tree, "tree")) < 0)
		goto done;
	if ((error = path_push(&path, "", &(size_t){0})) < 0)
		goto done;
	path.len = 0;
	error = diff_trees(repo, &a, &b, &path, cb, payload);
done:
	raw_tree_free(&a);
	raw_tree_free(&b);
	free(path.buf);
	return error;
}

int
cs_repo_write_blob(cs_oid *out, cs_repo *repo, const void *data, size_t len)
{
	git_oid gid;
	int rc;

	if ((rc = git_blob_create_from_buffer(&gid, repo->git, data, len)) < 0)
		return git_fail(rc, "writing a file");
	from_git(out, &gid);
	return 0;
}

int
cs_repo_tree_update(cs_oid *out, cs_repo *repo, const cs_oid *base,
		    const cs_tree_update *updates, size_t count)
{
	git_tree_update *ups = NULL;
	git_oid *ids = NULL;
	git_tree *baseline = NULL;
	git_treebuilder *empty = NULL;
	git_oid gid, empty_id;
	int rc, error;

	if (base) {
		if ((error = tree_lookup(&baseline, repo, base)) < 0)
			return error;
	} else {
		/* libgit2 wants a baseline: start from the empty tree. */
		if ((rc = git_treebuilder_new(&empty, repo->git, NULL)) < 0 ||
		    (rc = git_treebuilder_write(&empty_id, empty)) < 0 ||
		    (rc = git_tree_lookup(&baseline, repo->git, &empty_id)) <
			    0) {
			error = git_fail(rc, "empty tree");
			goto done;
		}
	}
	ups = calloc(count ? count : 1, sizeof(*ups));
	ids = calloc(count ? count : 1, sizeof(*ids));
	if (ups == NULL || ids == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < count; i++) {
		ups[i].path = updates[i].path;
		if (updates[i].new_id) {
			ups[i].action = GIT_TREE_UPDATE_UPSERT;
			ups[i].filemode = GIT_FILEMODE_BLOB;
			to_git(&ids[i], updates[i].new_id);
			ups[i].id = ids[i];
		} else {
			ups[i].action = GIT_TREE_UPDATE_REMOVE;
		}
	}
	if ((rc = git_tree_create_updated(&gid, repo->git, baseline, count,
					  ups)) < 0) {
		error = git_fail(rc, "writing the tree");
		goto done;
	}
	from_git(out, &gid);
	error = 0;
done:
	git_treebuilder_free(empty);
	git_tree_free(baseline);
	free(ups);
	free(ids);
	return error;
}

int
cs_repo_write_commit_raw(cs_oid *out, cs_repo *repo, const char *buf,
			 size_t len)
{
	git_odb *odb = NULL;
	git_oid gid;
	int rc;

	if ((rc = git_repository_odb(&odb, repo->git)) < 0)
		return git_fail(rc, "object database");
	rc = git_odb_write(&gid, odb, buf, len, GIT_OBJECT_COMMIT);
	git_odb_free(odb);
	if (rc < 0)
		return git_fail(rc, "writing a commit");
	from_git(out, &gid);
	return 0;
}

int
cs_repo_ref_read(cs_oid *out, cs_repo *repo, const char *name)
{
	git_oid gid;
	int rc;

	rc = git_reference_name_to_id(&gid, repo->git, name);
	if (rc == GIT_ENOTFOUND)
		return cs_error_set(CS_ENOTFOUND, "ref '%s' does not exist",
				    name);
	if (rc < 0)
		return git_fail(rc, name);
	from_git(out, &gid);
	return 0;
}

/*
 * A writer killed while it held a ref's lock file (libgit2's
 * "<ref>.lock", or "packed-refs.lock" when it deleted a packed ref) leaves
 * it behind, and every later update of that ref fails.  Every cartosync
 * writer holds the node's lock (cs_repo_lock) while it moves refs, so one
 * that holds it finds only stale lock files, except under refs/incoming/,
 * which git receive-pack writes for the daemon without that lock.
 * Returns 1 when a stale lock file was removed.
 */
static int
stale_lock_removed(cs_repo *repo, const char *name)
{
	const char *dir = git_repository_path(repo->git);
	char *path = NULL, *packed = NULL;
	int removed = 0;

	if (repo->lock_fd < 0 || strncmp(name, "refs/", 5) != 0 ||
	    strncmp(name, "refs/incoming/", 14) == 0)
		return 0;
	if (asprintf(&path, "%s/%s.lock", dir, name) >= 0) {
		removed |= unlink(path) == 0;
		free(path);
	}
	if (asprintf(&packed, "%s/packed-refs.lock", dir) >= 0) {
		removed |= unlink(packed) == 0;
		free(packed);
	}
	return removed;
}

static int ref_cas_once(cs_repo *repo, const char *name,
			const cs_oid *new_id, const cs_oid *expected,
			const char *log_message, int *locked);

int
cs_repo_ref_cas(cs_repo *repo, const char *name, const cs_oid *new_id,
		const cs_oid *expected, const char *log_message)
{
	int locked = 0;
	int error = ref_cas_once(repo, name, new_id, expected, log_message,
				 &locked);

	if (locked && stale_lock_removed(repo, name)) {
		git_refdb *fresh = NULL;

		/* libgit2 1.5 forgets a packed ref it failed to delete: read
		 * the refs again before the second try. */
		if (git_refdb_open(&fresh, repo->git) == 0) {
			git_repository_set_refdb(repo->git, fresh);
			git_refdb_free(fresh);
		}
		error = ref_cas_once(repo, name, new_id, expected, log_message,
				     &locked);
	}
	return error;
}

static int
ref_cas_once(cs_repo *repo, const char *name, const cs_oid *new_id,
	     const cs_oid *expected, const char *log_message, int *locked)
{
	git_reference *ref = NULL;
	git_oid gnew, gold;
	int rc;

	if (new_id == NULL) {
		/* Look up, compare, delete that very ref: libgit2 deletes it
		 * only if it still points where the lookup saw it. */
		const git_oid *target;

		rc = git_reference_lookup(&ref, repo->git, name);
		if (rc == GIT_ENOTFOUND)
			return cs_error_set(CS_ECONFLICT,
					    "ref '%s' moved meanwhile", name);
		if (rc < 0)
			return git_fail(rc, name);
		target = git_reference_target(ref);
		to_git(&gold, expected ? expected : &(cs_oid){{0}});
		if (expected == NULL || target == NULL ||
		    !git_oid_equal(target, &gold)) {
			git_reference_free(ref);
			return cs_error_set(CS_ECONFLICT,
					    "ref '%s' moved meanwhile", name);
		}
		rc = git_reference_delete(ref);
		git_reference_free(ref);
		*locked = rc == GIT_ELOCKED;
		if (rc == GIT_EMODIFIED || rc == GIT_ENOTFOUND ||
		    rc == GIT_ELOCKED)
			return cs_error_set(CS_ECONFLICT,
					    "ref '%s' moved meanwhile", name);
		return rc < 0 ? git_fail(rc, name) : 0;
	}
	to_git(&gnew, new_id);
	/* "Must not exist" is the zero id, checked under the ref's lock:
	 * a check before the lock would let two creators both win. */
	if (expected)
		to_git(&gold, expected);
	else
		memset(&gold, 0, sizeof(gold));
	rc = git_reference_create_matching(&ref, repo->git, name, &gnew, 1,
					   &gold, log_message);
	*locked = rc == GIT_ELOCKED;
	if (rc == GIT_EMODIFIED || rc == GIT_ENOTFOUND || rc == GIT_EEXISTS ||
	    rc == GIT_ELOCKED)
		return cs_error_set(CS_ECONFLICT,
				    expected ? "ref '%s' moved meanwhile"
					     : "ref '%s' was created meanwhile",
				    name);
	git_reference_free(ref);
	return rc < 0 ? git_fail(rc, name) : 0;
}

int
cs_repo_ref_foreach(cs_repo *repo, const char *prefix, cs_repo_ref_cb cb,
		    void *payload)
{
	git_reference_iterator *it = NULL;
	git_reference *ref = NULL;
	char *glob = NULL;
	int rc, error = 0;

	if (asprintf(&glob, "%s*", prefix) < 0)
		return cs_error_set(CS_ERROR, "out of memory");
	if ((rc = git_reference_iterator_glob_new(&it, repo->git, glob)) < 0) {
		free(glob);
		return git_fail(rc, "listing refs");
	}
	while (error == 0 && (rc = git_reference_next(&ref, it)) == 0) {
		const git_oid *gid = git_reference_target(ref);
		cs_oid id;

		if (gid) {
			from_git(&id, gid);
			error = cb(git_reference_name(ref), &id, payload);
		}
		git_reference_free(ref);
	}
	if (error == 0 && rc != GIT_ITEROVER)
		error = git_fail(rc, "listing refs");
	git_reference_iterator_free(it);
	free(glob);
	return error;
}

int
cs_repo_is_ancestor(cs_repo *repo, const cs_oid *ancestor,
		    const cs_oid *descendant)
{
	git_oid a, d;

	if (cs_oid_cmp(ancestor, descendant) == 0)
		return 1;
	to_git(&a, ancestor);
	to_git(&d, descendant);
	return git_graph_descendant_of(repo->git, &d, &a) == 1;
}

int
cs_repo_lock(cs_repo *repo)
{
	char *path = NULL;
	int fd;

	if (repo->lock_fd >= 0)
		return 0;
	if (asprintf(&path, "%s/cartosync.lock", repo->path) < 0)
		return cs_error_set(CS_ERROR, "out of memory");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		int e = errno;

		cs_error_set(CS_ERROR, "cannot open '%s': %s", path,
			     strerror(e));
		free(path);
		return CS_ERROR;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			close(fd);
			cs_error_set(CS_ERROR, "cannot lock '%s'", path);
			free(path);
			return CS_ERROR;
		}
	}
	free(path);
	repo->lock_fd = fd;
	return 0;
}

int
cs_repo_locked(const cs_repo *repo)
{
	return repo->lock_fd >= 0;
}

void
cs_repo_unlock(cs_repo *repo)
{
	if (repo->lock_fd >= 0) {
		close(repo->lock_fd);
		repo->lock_fd = -1;
	}
}

static int
is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[n] == '\0';
}

void
cs_repo_store_count(cs_repo_store_counts *out, cs_repo *repo)
{
	char *path = NULL;
	DIR *d;
	struct dirent *e;

	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < 256; i++) {
		if (asprintf(&path, "%s/objects/%02x", repo->path, i) < 0)
			return;
		d = opendir(path);
		free(path);
		while (d && (e = readdir(d)) != NULL)
			out->loose += is_hex(e->d_name, 38);
		if (d)
			closedir(d);
	}
	if (asprintf(&path, "%s/objects/pack", repo->path) < 0)
		return;
	d = opendir(path);
	free(path);
	while (d && (e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		char *idx = NULL, *keep = NULL;

		/* What git repack -A makes one: indexed packs not kept. */
		if (n > 5 && strcmp(e->d_name + n - 5, ".pack") == 0 &&
		    asprintf(&idx, "%s/objects/pack/%.*s.idx", repo->path,
			     (int)(n - 5), e->d_name) >= 0 &&
		    asprintf(&keep, "%s/objects/pack/%.*s.keep", repo->path,
			     (int)(n - 5), e->d_name) >= 0)
			out->packs += access(idx, F_OK) == 0 &&
				      access(keep, F_OK) != 0;
		free(idx);
		free(keep);
	}
	if (d)
		closedir(d);
}

int
cs_repo_store_wants(const cs_repo_store_counts *now, size_t loose_left)
{
	if (now->packs >= CS_REPO_PACKS_MAX)
		return CS_REPO_PACK_ALL;
	if (now->loose >= loose_left + CS_REPO_LOOSE_MAX)
		return CS_REPO_PACK_LOOSE;
	return CS_REPO_PACK_NONE;
}

/* This process's environment without git's own variables (GIT_DIR,
 * GIT_OBJECT_DIRECTORY...: set by a hook that runs us, they would point
 * git at another store).  The strings are environ's. */
static int
git_env(char ***out)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	if ((env = calloc(n + 1, sizeof(*env))) == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "GIT_", 4) != 0)
			env[k++] = environ[i];
	*out = env;
	return 0;
}

/* Run `git --git-dir=REPO repack -d -q -n [-A]`; git's message on failure. */
static int
run_repack(cs_repo *repo, int all)
{
	char *dir = NULL, buf[1024];
	char *argv[] = {"git", NULL, "repack", "-d", "-q", "-n",
			all ? "-A" : NULL, NULL};
	posix_spawn_file_actions_t fa;
	char **env = NULL;
	int err[2], status = 0, rc;
	size_t len = 0;
	ssize_t got;
	pid_t pid;

	if (asprintf(&dir, "--git-dir=%s", repo->path) < 0)
		return cs_error_set(CS_ERROR, "out of memory");
	argv[1] = dir;
	if (pipe2(err, O_CLOEXEC) < 0) {
		free(dir);
		return cs_error_set(CS_ERROR, "cannot make a pipe: %s",
				    strerror(errno));
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	/* git holds the node's lock too (the same open file): it keeps it
	 * until it is done, even if this process dies first.  (Not dup2 onto
	 * itself: that would keep its close-on-exec flag.) */
	posix_spawn_file_actions_adddup2(&fa, repo->lock_fd,
					 repo->lock_fd == 3 ? 4 : 3);
	rc = git_env(&env) < 0 ? ENOMEM
				: posix_spawnp(&pid, "git", &fa, NULL, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	free(env);
	close(err[1]);
	free(dir);
	if (rc != 0) {
		close(err[0]);
		return cs_error_set(CS_ERROR, "cannot run git: %s",
				    strerror(rc));
	}
	/* All of git's stderr is read (the start kept), so it never blocks
	 * or meets a closed pipe. */
	for (;;) {
		char rest[512];
		int full = len == sizeof(buf) - 1;

		got = full ? read(err[0], rest, sizeof(rest))
			   : read(err[0], buf + len, sizeof(buf) - 1 - len);
		if (got == 0 || (got < 0 && errno != EINTR))
			break;
		if (got > 0 && !full)
			len += (size_t)got;
	}
	close(err[0]);
	buf[len] = '\0';
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		buf[--len] = '\0';
	while ((rc = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (rc < 0)
		return cs_error_set(CS_ERROR, "git repack%s: cannot wait for"
				    " it: %s", all ? " -A" : "",
				    strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return cs_error_set(CS_ERROR, "git repack%s failed: %s",
				    all ? " -A" : "",
				    len ? buf : "no message");
	return 0;
}

int
cs_repo_pack(cs_repo *repo, int how)
{
	int held = repo->lock_fd >= 0, error;

	if (how == CS_REPO_PACK_NONE)
		return 0;
	if (!held && (error = cs_repo_lock(repo)) < 0)
		return error;
	error = run_repack(repo, how == CS_REPO_PACK_ALL);
	/* libgit2 rescans the packs when it misses an object: a handle open
	 * elsewhere finds the moved objects by itself. */
	if (!held)
		cs_repo_unlock(repo);
	return error;
}

int
cs_repo_topo_order(cs_oid **out, size_t *count, cs_repo *repo,
		   const cs_oid *tips, size_t ntips)
{
	git_revwalk *walk = NULL;
	cs_oid *ids = NULL;
	size_t n = 0, cap = 0;
	git_oid gid;
	int rc, error;

	*out = NULL;
	*count = 0;
	if ((rc = git_revwalk_new(&walk, repo->git)) < 0)
		return git_fail(rc, "history walk");
	git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE);
	for (size_t i = 0; i < ntips; i++) {
		to_git(&gid, &tips[i]);
		if ((rc = git_revwalk_push(walk, &gid)) < 0) {
			error = git_fail(rc, "history walk");
			goto done;
		}
	}
	while ((rc = git_revwalk_next(&gid, walk)) == 0) {
		if (n == cap) {
			cs_oid *grown;

			cap = cap ? cap * 2 : 64;
			if ((grown = realloc(ids, cap * sizeof(*ids))) ==
			    NULL) {
				error = cs_error_set(CS_ERROR,
						     "out of memory");
				goto done;
			}
			ids = grown;
		}
		from_git(&ids[n++], &gid);
	}
	if (rc != GIT_ITEROVER) {
		error = git_fail(rc, "history walk");
		goto done;
	}
	*out = ids;
	*count = n;
	ids = NULL; /* transferred */
	error = 0;
done:
	free(ids);
	git_revwalk_free(walk);
	return error;
}

int
cs_repo_fetch(cs_repo *repo, const char *source, const char *refspec)
{
	git_remote *remote = NULL;
	git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
	git_strarray specs = {(char **)&refspec, 1};
	int rc;

	if ((rc = git_remote_create_anonymous(&remote, repo->git, source)) < 0)
		return git_fail(rc, source);
	opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	rc = git_remote_fetch(remote, &specs, &opts, NULL);
	git_remote_free(remote);
	if (rc < 0)
		return git_fail(rc, source);
	return 0;
}
