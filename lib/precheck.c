/*
 * cartosync — records checked while a fetched pack is still being indexed
 * (precheck.h).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/record.h"
#include "cartosync/repo.h"
#include "pack.h"
#include "precheck.h"

typedef struct {
	cs_oid id;
	char *path; /* NULL: an empty slot */
} noted;

struct cs_precheck {
	char *pack;
	char *repo;        /* where the consortium state is loaded from */
	cs_oid tree;       /* ... and of which tree */
	cs_consortium *state; /* while the scan runs */
	cs_oid schema_dir;
	int ready;         /* schema_dir is known */
	EVP_MD *sha1;
	EVP_MD_CTX *md;
	noted *slots; /* open addressing, a power of two */
	size_t cap;
	size_t count;
	pthread_t thread;
	int running;
	atomic_int stop;
};

static size_t
slot_of(const cs_oid *id, size_t cap)
{
	uint64_t h;

	memcpy(&h, id->id, sizeof(h));
	return (size_t)(h & (cap - 1));
}

static int
note(cs_precheck *p, const cs_oid *id, char *path)
{
	size_t i;

	if (p->count * 2 >= p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 4096;
		noted *grown = calloc(cap, sizeof(*grown));

		if (grown == NULL)
			return -1;
		for (size_t k = 0; k < p->cap; k++) {
			if (p->slots[k].path == NULL)
				continue;
			i = slot_of(&p->slots[k].id, cap);
			while (grown[i].path)
				i = (i + 1) & (cap - 1);
			grown[i] = p->slots[k];
		}
		free(p->slots);
		p->slots = grown;
		p->cap = cap;
	}
	for (i = slot_of(id, p->cap); p->slots[i].path;
	     i = (i + 1) & (p->cap - 1))
		if (memcmp(p->slots[i].id.id, id->id, CS_OID_RAWSZ) == 0)
			return 0; /* the same file twice */
	p->slots[i].id = *id;
	p->slots[i].path = path;
	p->count++;
	return 1;
}

/* One file stored whole: what verification checks of a record's content
 * alone (check_content in verify.c, cs_record_check without a path). */
static int
check_file(const char *data, size_t len, void *arg)
{
	cs_precheck *p = arg;
	const cs_schema_set *schemas = cs_consortium_schemas(p->state);
	json_t *doc = NULL;
	char head[32], *path = NULL;
	unsigned mdlen = 0;
	cs_oid id;
	int n;

	if (len > CS_RECORD_MAX_BYTES)
		return 0;
	n = snprintf(head, sizeof(head), "blob %zu", len);
	if (!EVP_DigestInit_ex(p->md, p->sha1, NULL) ||
	    !EVP_DigestUpdate(p->md, head, (size_t)n + 1) ||
	    !EVP_DigestUpdate(p->md, data, len) ||
	    !EVP_DigestFinal_ex(p->md, id.id, &mdlen) || mdlen != CS_OID_RAWSZ)
		return 1;
	if (cs_record_parse_stored(&doc, data, len, "file") == 0 &&
	    cs_record_check(schemas, doc, NULL, "file", NULL) == 0 &&
	    cs_record_path(&path, doc) == 0 && note(p, &id, path) == 1)
		path = NULL; /* kept */
	free(path);
	json_decref(doc);
	return 0;
}

/*
 * The thread: the consortium state is loaded here, off the fetch's path,
 * through a repository handle of its own, and put back (to the pool of
 * states, consortium.c) as soon as the scan ends, for verification to
 * take.  Best effort: without a state nothing is noted, and an unfinished
 * or damaged part of the pack just ends the scan.
 */
static void *
scan(void *arg)
{
	cs_precheck *p = arg;
	cs_repo *repo = NULL;

	if (cs_repo_open(&repo, p->repo) == 0 &&
	    cs_consortium_load(&p->state, repo, &p->tree) == 0 &&
	    cs_consortium_schema_dir(p->state, &p->schema_dir) == 0) {
		p->ready = 1;
		(void)cs_pack_scan(p->pack, CS_PACK_BLOB, check_file, p,
				   &p->stop);
	}
	cs_consortium_free(p->state);
	p->state = NULL;
	cs_repo_free(repo);
	return NULL;
}

int
cs_precheck_start(cs_precheck **out, const char *pack, const char *repo,
		  const cs_oid *tree)
{
	cs_precheck *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (p == NULL || (p->pack = strdup(pack)) == NULL ||
	    (p->repo = strdup(repo)) == NULL ||
	    (p->sha1 = EVP_MD_fetch(NULL, "SHA1", NULL)) == NULL ||
	    (p->md = EVP_MD_CTX_new()) == NULL) {
		cs_precheck_free(p);
		return cs_error_set(CS_ERROR, "precheck: cannot set up");
	}
	p->tree = *tree;
	if (pthread_create(&p->thread, NULL, scan, p) != 0) {
		cs_precheck_free(p);
		return cs_error_set(CS_ERROR, "precheck: no thread");
	}
	p->running = 1;
	*out = p;
	return 0;
}

void
cs_precheck_stop(cs_precheck *p)
{
	if (p == NULL || !p->running)
		return;
	atomic_store(&p->stop, 1);
	pthread_join(p->thread, NULL);
	p->running = 0;
}

void
cs_precheck_wait(cs_precheck *p)
{
	if (p == NULL || !p->running)
		return;
	pthread_join(p->thread, NULL);
	p->running = 0;
}

size_t
cs_precheck_count(const cs_precheck *p)
{
	return p ? p->count : 0;
}

int
cs_precheck_passed(const cs_precheck *p, const cs_oid *blob,
		   const char *path, const cs_oid *schema_dir)
{
	if (p == NULL || p->running || !p->ready || p->cap == 0 ||
	    memcmp(schema_dir->id, p->schema_dir.id, CS_OID_RAWSZ) != 0)
		return 0;
	for (size_t i = slot_of(blob, p->cap); p->slots[i].path;
	     i = (i + 1) & (p->cap - 1))
		if (memcmp(p->slots[i].id.id, blob->id, CS_OID_RAWSZ) == 0)
			return strcmp(p->slots[i].path, path) == 0;
	return 0;
}

void
cs_precheck_free(cs_precheck *p)
{
	if (p == NULL)
		return;
	cs_precheck_stop(p);
	for (size_t i = 0; i < p->cap; i++)
		free(p->slots[i].path);
	free(p->slots);
	EVP_MD_CTX_free(p->md);
	EVP_MD_free(p->sha1);
	free(p->pack);
	free(p->repo);
	free(p);
}
