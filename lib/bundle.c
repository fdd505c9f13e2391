/*
 * cartosync — history on a USB key (see cartosync/bundle.h).
 *
 * The format, as git writes and reads it (gitformat-bundle(5)):
 *
 *   # v2 git bundle\n
 *   -<id> <comment>\n      a prerequisite, any number
 *   <id> <refname>\n       a ref, at least one
 *   \n
 *   <packfile>
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "cartosync/bundle.h"
#include "cartosync/error.h"
#include "repo_internal.h"

#define SIGNATURE "# v2 git bundle\n"
#define HEADER_MAX 64

static int
has_object(cs_repo *repo, const cs_oid *id)
{
	git_odb *odb = NULL;
	int has;

	if (git_repository_odb(&odb, cs_repo_git(repo)) < 0)
		return 0;
	has = git_odb_exists(odb, (const git_oid *)id);
	git_odb_free(odb);
	return has;
}

typedef struct {
	FILE *f;
	size_t objects;
	int failed;
} writer;

static int
write_chunk(void *buf, size_t size, void *payload)
{
	writer *w = payload;

	if (fwrite(buf, 1, size, w->f) != size) {
		w->failed = 1;
		return -1;
	}
	return 0;
}

int
cs_bundle_create(size_t *objects, cs_node *node, const char *path,
		 const cs_oid *since, size_t nsince)
{
	git_repository *git = cs_repo_git(cs_node_repo(node));
	git_packbuilder *pb = NULL;
	git_revwalk *walk = NULL;
	char hex[CS_OID_HEXSZ + 1], *tmp = NULL;
	writer w = {NULL, 0, 0};
	cs_oid head;
	int error, rc;

	*objects = 0;
	if ((error = cs_node_main(&head, node)) < 0)
		return error;
	if (asprintf(&tmp, "%s.tmp", path) < 0)
		return cs_error_set(CS_ERROR, "out of memory");
	if ((rc = git_revwalk_new(&walk, git)) < 0 ||
	    (rc = git_revwalk_push(walk, (const git_oid *)&head)) < 0)
		goto git_error;
	for (size_t i = 0; i < nsince; i++)
		if ((rc = git_revwalk_hide(walk, (const git_oid *)&since[i])) <
		    0)
			goto git_error;
	if ((rc = git_packbuilder_new(&pb, git)) < 0 ||
	    (rc = git_packbuilder_insert_walk(pb, walk)) < 0)
		goto git_error;
	if ((w.f = fopen(tmp, "wb")) == NULL) {
		error = cs_error_set(CS_ERROR, "cannot write '%s': %s", path,
				     strerror(errno));
		goto done;
	}
	fputs(SIGNATURE, w.f);
	for (size_t i = 0; i < nsince; i++) {
		cs_oid_fmt(hex, &since[i]);
		fprintf(w.f, "-%s held by the receiving node\n", hex);
	}
	cs_oid_fmt(hex, &head);
	fprintf(w.f, "%s refs/heads/main\n%s HEAD\n\n", hex, hex);
	if ((rc = git_packbuilder_foreach(pb, write_chunk, &w)) < 0 &&
	    !w.failed)
		goto git_error;
	if (w.failed || fflush(w.f) != 0 || fsync(fileno(w.f)) < 0) {
		error = cs_error_set(CS_ERROR, "cannot write '%s': %s", path,
				     strerror(errno));
		goto done;
	}
	fclose(w.f);
	w.f = NULL;
	if (rename(tmp, path) < 0) {
		error = cs_error_set(CS_ERROR, "cannot write '%s': %s", path,
				     strerror(errno));
		goto done;
	}
	*objects = git_packbuilder_object_count(pb);
	error = 0;
	goto done;
git_error:
	error = cs_error_set(CS_ERROR, "cannot make the bundle: %s",
			     git_error_last() ? git_error_last()->message
					      : "libgit2 error");
done:
	if (w.f) {
		fclose(w.f);
		unlink(tmp);
	}
	git_packbuilder_free(pb);
	git_revwalk_free(walk);
	free(tmp);
	return error;
}

int
cs_bundle_is(const char *path)
{
	char buf[sizeof(SIGNATURE) - 1];
	struct stat st;
	FILE *f;
	int is;

	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (f = fopen(path, "rb")) == NULL)
		return 0;
	is = fread(buf, 1, sizeof(buf), f) == sizeof(buf) &&
	     memcmp(buf, SIGNATURE, sizeof(buf)) == 0;
	fclose(f);
	return is;
}

int
cs_bundle_read(cs_repo *repo, const char *path, const char *ref,
	       uint64_t max_bytes)
{
	git_repository *git = cs_repo_git(repo);
	git_indexer_options iopts = GIT_INDEXER_OPTIONS_INIT;
	git_indexer_progress stats;
	git_indexer *idx = NULL;
	git_odb *odb = NULL;
	char line[512], *packdir = NULL;
	cs_oid main_id;
	int have_main = 0, lines = 0, error = 0, rc;
	uint64_t total = 0;
	FILE *f;

	if ((f = fopen(path, "rb")) == NULL)
		return cs_error_set(CS_ENOTFOUND, "cannot read '%s': %s", path,
				    strerror(errno));
	if (fgets(line, sizeof(line), f) == NULL ||
	    strcmp(line, SIGNATURE) != 0) {
		error = cs_error_set(CS_EINVALID,
				     "'%s' is not a git bundle (v2)", path);
		goto done;
	}
	for (;;) {
		size_t len;
		cs_oid id;

		if (fgets(line, sizeof(line), f) == NULL ||
		    (len = strlen(line)) == 0 || line[len - 1] != '\n' ||
		    ++lines > HEADER_MAX) {
			error = cs_error_set(CS_EINVALID,
					     "'%s': malformed bundle header",
					     path);
			goto done;
		}
		line[--len] = '\0';
		if (len == 0)
			break;
		if (line[0] == '-') {
			if (len < 1 + CS_OID_HEXSZ ||
			    cs_oid_parse(&id, line + 1, CS_OID_HEXSZ) < 0) {
				error = cs_error_set(CS_EINVALID,
						     "'%s': malformed"
						     " prerequisite line",
						     path);
				goto done;
			}
			if (!has_object(repo, &id)) {
				error = cs_error_set(
					CS_ENOTFOUND,
					"'%s' needs commit %.12s, which this"
					" node does not hold: ask for a bundle"
					" made --since a commit it holds",
					path, line + 1);
				goto done;
			}
			continue;
		}
		if (len < CS_OID_HEXSZ + 2 || line[CS_OID_HEXSZ] != ' ' ||
		    cs_oid_parse(&id, line, CS_OID_HEXSZ) < 0) {
			error = cs_error_set(CS_EINVALID,
					     "'%s': malformed ref line", path);
			goto done;
		}
		if (strcmp(line + CS_OID_HEXSZ + 1, "refs/heads/main") == 0) {
			main_id = id;
			have_main = 1;
		}
	}
	if (!have_main) {
		error = cs_error_set(CS_EINVALID,
				     "'%s' holds no refs/heads/main", path);
		goto done;
	}
	if (asprintf(&packdir, "%s/objects/pack", cs_repo_path(repo)) < 0) {
		packdir = NULL;
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	if ((rc = git_repository_odb(&odb, git)) < 0 ||
	    (rc = git_indexer_new(&idx, packdir, 0, odb, &iopts)) < 0)
		goto git_error;
	for (;;) {
		char buf[65536];
		size_t got = fread(buf, 1, sizeof(buf), f);

		if (got == 0)
			break;
		total += got;
		if (max_bytes && total > max_bytes) {
			error = cs_error_set(CS_ELIMIT,
					     "'%s': the pack is larger than %llu"
					     " bytes",
					     path, (unsigned long long)max_bytes);
			goto done;
		}
		if ((rc = git_indexer_append(idx, buf, got, &stats)) < 0)
			goto git_error;
	}
	if (ferror(f)) {
		error = cs_error_set(CS_ERROR, "cannot read '%s'", path);
		goto done;
	}
	if ((rc = git_indexer_commit(idx, &stats)) < 0)
		goto git_error;
	if (!has_object(repo, &main_id)) {
		error = cs_error_set(CS_EINVALID,
				     "'%s': the pack lacks the commit its main"
				     " names",
				     path);
		goto done;
	}
	error = cs_repo_ref_cas(repo, ref, &main_id, NULL, "bundle");
	goto done;
git_error:
	error = cs_error_set(CS_EINVALID, "'%s': a broken pack: %s", path,
			     git_error_last() ? git_error_last()->message
					      : "libgit2 error");
done:
	git_indexer_free(idx);
	git_odb_free(odb);
	free(packdir);
	fclose(f);
	return error;
}
