/*
 * cartosync — staging stores (see staging.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>

#include "cartosync/error.h"
#include "cartosync/json.h"
#include "repo_internal.h"
#include "staging.h"

struct cs_staging {
	cs_node *node;
	cs_repo *repo;
	char *name;
	char *path;
	int kept; /* quarantined: the directory moved */
};

static atomic_uint staging_counter;

/* rm -rf, for the node's own scratch directories only. */
static void
remove_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (d == NULL) {
		unlink(path);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		char *child;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (asprintf(&child, "%s/%s", path, e->d_name) < 0)
			continue;
		if (e->d_type == DT_DIR)
			remove_tree(child);
		else
			unlink(child);
		free(child);
	}
	closedir(d);
	rmdir(path);
}

static int
fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	fsync(fd);
	close(fd);
	return 0;
}

static char *
node_path(cs_node *node, const char *a, const char *b)
{
	char *p;

	if (asprintf(&p, "%s/%s%s%s", cs_node_dir(node), a, b ? "/" : "",
		     b ? b : "") < 0)
		return NULL;
	return p;
}

typedef struct {
	cs_repo *staging;
	size_t n;
	int error;
} copy_refs;

/* The node's heads become refs/have/<n> of the staging store: the
 * negotiation's "have" lines, and what promotion leaves out. */
static int
copy_ref(const char *name, const cs_oid *id, void *payload)
{
	copy_refs *c = payload;
	char ref[64];

	(void)name;
	snprintf(ref, sizeof(ref), "refs/have/%zu", c->n++);
	return cs_repo_ref_cas(c->staging, ref, id, NULL, NULL);
}

int
cs_staging_create(cs_staging **out, cs_node *node, const char *name)
{
	cs_staging *s = calloc(1, sizeof(*s));
	cs_repo *tmp = NULL;
	char *objects = NULL, *alternates = NULL, *dir = NULL;
	copy_refs refs = {NULL, 0, 0};
	FILE *f;
	int error = CS_ERROR;

	*out = NULL;
	if (s == NULL || (s->name = strdup(name)) == NULL ||
	    (dir = node_path(node, CS_STAGING_DIR, NULL)) == NULL ||
	    asprintf(&s->path, "%s/%s-%ld-%u.git", dir, name, (long)getpid(),
		     atomic_fetch_add(&staging_counter, 1)) < 0 ||
	    (objects = realpath(cs_repo_path(cs_node_repo(node)), NULL)) ==
		    NULL) {
		error = cs_error_set(CS_ERROR, "cannot make a staging store"
					       " in %s", cs_node_dir(node));
		goto fail;
	}
	s->node = node;
	mkdir(dir, 0700);
	remove_tree(s->path);
	if ((error = cs_repo_init(&tmp, s->path)) < 0)
		goto fail;
	cs_repo_free(tmp);
	if (asprintf(&alternates, "%s/objects/info/alternates", s->path) < 0 ||
	    (f = fopen(alternates, "w")) == NULL) {
		error = cs_error_set(CS_ERROR, "cannot write %s", alternates);
		goto fail;
	}
	fprintf(f, "%s/objects\n", objects);
	if (fclose(f) != 0) {
		error = cs_error_set(CS_ERROR, "cannot write %s", alternates);
		goto fail;
	}
	if ((error = cs_repo_open(&s->repo, s->path)) < 0)
		goto fail;
	refs.staging = s->repo;
	if ((error = cs_repo_ref_foreach(cs_node_repo(node), "refs/", copy_ref,
					 &refs)) < 0)
		goto fail;
	free(objects);
	free(alternates);
	free(dir);
	*out = s;
	return 0;
fail:
	free(objects);
	free(alternates);
	free(dir);
	cs_staging_free(s);
	return error;
}

int
cs_staging_borrow(cs_staging *s, const char *objects)
{
	char *alternates = NULL;
	FILE *f;
	int error;

	if (asprintf(&alternates, "%s/objects/info/alternates", s->path) < 0)
		return cs_error_set(CS_ERROR, "out of memory");
	if ((f = fopen(alternates, "a")) == NULL ||
	    fprintf(f, "%s\n", objects) < 0 || fclose(f) != 0) {
		error = cs_error_set(CS_ERROR, "cannot write %s", alternates);
		free(alternates);
		return error;
	}
	free(alternates);
	/* Reopened, so that every handle on it (verification's worker
	 * threads open their own) sees the new objects. */
	cs_repo_free(s->repo);
	s->repo = NULL;
	return cs_repo_open(&s->repo, s->path);
}

cs_repo *
cs_staging_repo(cs_staging *s)
{
	return s->repo;
}

/* Whether the staging store holds loose objects (objects/xx/). */
static int
has_loose(const char *path)
{
	char *objects;
	DIR *d;
	struct dirent *e;
	int found = 0;

	if (asprintf(&objects, "%s/objects", path) < 0)
		return 1;
	if ((d = opendir(objects)) != NULL) {
		while (!found && (e = readdir(d)) != NULL)
			found = strlen(e->d_name) == 2 &&
				strcmp(e->d_name, "..") != 0;
		closedir(d);
	}
	free(objects);
	return found;
}

/* Move the staged packs into the node's pack directory: the index last,
 * since a pack counts once its index is there. */
static int
move_packs(cs_staging *s, const char *dest)
{
	char *src = NULL;
	DIR *d;
	struct dirent *e;
	int error = 0;

	if (asprintf(&src, "%s/objects/pack", s->path) < 0)
		return cs_error_set(CS_ERROR, "out of memory");
	if ((d = opendir(src)) == NULL) {
		free(src);
		return 0;
	}
	while (error == 0 && (e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		char *from = NULL, *to = NULL;

		if (len < 6 || strcmp(e->d_name + len - 5, ".pack") != 0)
			continue;
		for (int k = 0; k < 2 && error == 0; k++) {
			const char *ext = k == 0 ? "pack" : "idx";

			if (asprintf(&from, "%s/%.*s.%s", src, (int)(len - 5),
				     e->d_name, ext) < 0 ||
			    asprintf(&to, "%s/%.*s.%s", dest, (int)(len - 5),
				     e->d_name, ext) < 0)
				error = cs_error_set(CS_ERROR, "out of memory");
			else if (rename(from, to) < 0)
				error = cs_error_set(CS_ERROR,
						     "cannot move %s to %s: %s",
						     from, to, strerror(errno));
			free(from);
			free(to);
			from = to = NULL;
		}
	}
	closedir(d);
	free(src);
	if (error == 0)
		fsync_dir(dest);
	return error;
}

/* Pack what `heads` reach beyond the node's heads into the node's store. */
static int
pack_reachable(cs_staging *s, const cs_oid *heads, size_t n,
	       const char *dest)
{
	git_repository *git = cs_repo_git(s->repo);
	git_packbuilder *pb = NULL;
	git_revwalk *walk = NULL;
	int rc;

	if ((rc = git_revwalk_new(&walk, git)) < 0 ||
	    (rc = git_revwalk_hide_glob(walk, "refs/have/*")) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if ((rc = git_revwalk_push(walk, (const git_oid *)&heads[i])) <
		    0)
			goto fail;
	if ((rc = git_packbuilder_new(&pb, git)) < 0 ||
	    (rc = git_packbuilder_insert_walk(pb, walk)) < 0)
		goto fail;
	if (git_packbuilder_object_count(pb) > 0 &&
	    (rc = git_packbuilder_write(pb, dest, 0, NULL, NULL)) < 0)
		goto fail;
	git_packbuilder_free(pb);
	git_revwalk_free(walk);
	fsync_dir(dest);
	return 0;
fail:
	git_packbuilder_free(pb);
	git_revwalk_free(walk);
	return cs_error_set(CS_ERROR, "cannot move verified objects into the"
				      " node's store: %s",
			    git_error_last() ? git_error_last()->message
					     : "libgit2 error");
}

int
cs_staging_promote(cs_staging *s, const cs_oid *heads, size_t n, int all)
{
	char *dest = node_path(s->node, "objects", "pack");
	int error;

	if (dest == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	mkdir(dest, 0755);
	if (all && !has_loose(s->path))
		error = move_packs(s, dest);
	else
		error = pack_reachable(s, heads, n, dest);
	free(dest);
	return error;
}

typedef struct {
	char *path;
	time_t mtime;
	unsigned long long bytes;
} kept_dir;

static unsigned long long
tree_bytes(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	struct stat st;
	unsigned long long total = 0;

	if (d == NULL)
		return stat(path, &st) == 0 ? (unsigned long long)st.st_size : 0;
	while ((e = readdir(d)) != NULL) {
		char *child;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (asprintf(&child, "%s/%s", path, e->d_name) < 0)
			continue;
		total += tree_bytes(child);
		free(child);
	}
	closedir(d);
	return total;
}

static int
kept_cmp(const void *a, const void *b)
{
	const kept_dir *x = a, *y = b;

	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? -1 : 1;
	return strcmp(x->path, y->path);
}

/* Drop the oldest quarantined histories beyond the quota. */
static void
enforce_quota(cs_node *node)
{
	uint64_t quota;
	unsigned long long total = 0;
	char *root = node_path(node, CS_QUARANTINE_DIR, NULL);
	kept_dir *list = NULL;
	size_t n = 0, cap = 0;
	DIR *top, *sub;
	struct dirent *e, *f;

	if (cs_node_config_size(&quota, node, "sync", "quarantine-quota",
				CS_QUARANTINE_QUOTA_DEFAULT) < 0)
		quota = CS_QUARANTINE_QUOTA_DEFAULT;
	if (root == NULL || (top = opendir(root)) == NULL) {
		free(root);
		return;
	}
	while ((e = readdir(top)) != NULL) {
		char *peer;

		if (e->d_name[0] == '.' ||
		    asprintf(&peer, "%s/%s", root, e->d_name) < 0)
			continue;
		if ((sub = opendir(peer)) != NULL) {
			while ((f = readdir(sub)) != NULL) {
				struct stat st;
				char *p;

				if (f->d_name[0] == '.' ||
				    asprintf(&p, "%s/%s", peer, f->d_name) < 0)
					continue;
				if (n == cap) {
					kept_dir *g = realloc(
						list, (cap = cap ? 2 * cap : 8) *
							      sizeof(*g));
					if (g == NULL) {
						free(p);
						break;
					}
					list = g;
				}
				list[n].path = p;
				list[n].mtime =
					stat(p, &st) == 0 ? st.st_mtime : 0;
				list[n].bytes = tree_bytes(p);
				total += list[n].bytes;
				n++;
			}
			closedir(sub);
		}
		free(peer);
	}
	closedir(top);
	qsort(list, n, sizeof(*list), kept_cmp);
	for (size_t i = 0; i < n; i++) {
		if (total > quota) {
			remove_tree(list[i].path);
			total -= list[i].bytes;
		}
		free(list[i].path);
	}
	free(list);
	free(root);
}

/* Whether the peer's head `hex` is in quarantine already (a peer that
 * keeps serving a rejected head is not kept again each round). */
static int
quarantined_already(cs_staging *s, const char *hex)
{
	char *dir = node_path(s->node, CS_QUARANTINE_DIR, s->name);
	char suffix[16];
	DIR *d;
	struct dirent *e;
	int found = 0;

	snprintf(suffix, sizeof(suffix), "-%.12s", hex);
	if (dir && (d = opendir(dir)) != NULL) {
		while (!found && (e = readdir(d)) != NULL) {
			size_t len = strlen(e->d_name);

			found = len > strlen(suffix) &&
				strcmp(e->d_name + len - strlen(suffix),
				       suffix) == 0;
		}
		closedir(d);
	}
	free(dir);
	return found;
}

int
cs_staging_quarantine(cs_staging *s, const cs_oid *head, const json_t *reason)
{
	char hex[CS_OID_HEXSZ + 1], stamp[32], *dir = NULL, *dest = NULL;
	char *file = NULL;
	time_t now = time(NULL);
	struct tm tm;
	int error = 0;

	cs_oid_fmt(hex, head);
	if (quarantined_already(s, hex))
		return 0;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	if ((dir = node_path(s->node, CS_QUARANTINE_DIR, s->name)) == NULL ||
	    asprintf(&dest, "%s/%s-%.12s", dir, stamp, hex) < 0) {
		dest = NULL;
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	{
		char *root = node_path(s->node, CS_QUARANTINE_DIR, NULL);

		if (root)
			mkdir(root, 0700);
		free(root);
	}
	mkdir(dir, 0700);
	remove_tree(dest);
	cs_repo_free(s->repo);
	s->repo = NULL;
	if (rename(s->path, dest) < 0) {
		error = cs_error_set(CS_ERROR, "cannot quarantine %s: %s",
				     s->path, strerror(errno));
		goto done;
	}
	s->kept = 1;
	if (asprintf(&file, "%s/reason.json", dest) < 0) {
		file = NULL;
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	if (json_dump_file(reason, file, JSON_INDENT(2) | JSON_SORT_KEYS) < 0)
		error = cs_error_set(CS_ERROR, "cannot write %s", file);
	enforce_quota(s->node);
done:
	free(dir);
	free(dest);
	free(file);
	return error;
}

void
cs_staging_free(cs_staging *s)
{
	if (s == NULL)
		return;
	cs_repo_free(s->repo);
	if (s->path && !s->kept)
		remove_tree(s->path);
	free(s->path);
	free(s->name);
	free(s);
}

void
cs_staging_clean(cs_node *node)
{
	char *root = node_path(node, CS_STAGING_DIR, NULL);
	DIR *d;
	struct dirent *e;

	if (root == NULL || (d = opendir(root)) == NULL) {
		free(root);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		const char *dash = strrchr(e->d_name, '-');
		const char *pid_at;
		long pid;
		char *p;

		if (e->d_name[0] == '.' || dash == NULL)
			continue;
		/* <name>-<pid>-<n>.git */
		for (pid_at = dash - 1; pid_at > e->d_name && *pid_at != '-';
		     pid_at--)
			;
		pid = strtol(pid_at + 1, NULL, 10);
		if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
			continue;
		if (asprintf(&p, "%s/%s", root, e->d_name) < 0)
			continue;
		remove_tree(p);
		free(p);
	}
	closedir(d);
	free(root);
}
