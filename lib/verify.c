/*
 * Verification of histories: docs/architecture.md "Verification".
 *
 * Three passes over the commits in topological order:
 *
 *   1. grammar and signatures, in parallel (the costly part: an Ed25519
 *      verification per edit), in batches read sequentially;
 *   2. authority and content, in order, each edit judged with the
 *      consortium as of its parent;
 *   3. revocations: every held consortium change C that revokes a key,
 *      removes an organisation or narrows a policy invalidates the edits
 *      that are concurrent with it (neither in its past nor its future) and
 *      that it no longer allows.  Without this pass a stolen key could sign
 *      edits on last week's history:
 *
 *          A---B---C (coordinator revokes key K)
 *               \
 *                E (signed with K, parent B: K is valid as of B)
 *
 * An invalid commit makes all its descendants invalid.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cartosync/commit.h"
#include "cartosync/consortium.h"
#include "cartosync/duplicates.h"
#include "cartosync/error.h"
#include "cartosync/history.h"
#include "cartosync/json.h"
#include "cartosync/record.h"
#include "cartosync/sshsig.h"
#include "cartosync/verify.h"
#include "precheck.h"

#define BATCH 4096
#define MAX_THREADS 16

enum { UNKNOWN = 0, VALID, INVALID, UNJUDGED };

typedef struct {
	cs_oid id;
	cs_oid tree;
	cs_oid parent_ids[2];
	int parents[2];
	int nparents;
	cs_commit_kind kind;
	cs_key *signer;
	char *author;
	char *committer;
	int64_t time;
	char *reason;
	int cause; /* index of the invalid ancestor, -1 if its own */
	int state;
	int consortium_change;
	int in_scope;
	/* From the parallel pass: the paths the edit changes, and the first
	 * failure of their form or content (NULL: none). */
	struct stored_change *changes;
	size_t nchanges;
	char *content_reason;
	int content_unjudged; /* a protocol version this build lacks */
	size_t content_index;  /* the change content_reason is about */
	int content_kind;      /* what check_content() returned for it */
	/* A verdict kept from an earlier verification (cs_verdicts): valid
	 * as of its ancestors, so passes 1 and 2 only read its header; its
	 * signer and changes are loaded if the revocation pass needs them. */
	unsigned known;
	int loaded;
	int recomputed; /* a merge found identical to its recomputation */
} vcommit;

struct stored_change {
	char *path;
	cs_oid new_id;
	int deleted;
};

/* oid -> index, open addressing. */
typedef struct {
	int *slots;
	size_t mask;
} oid_index;

typedef struct {
	cs_oid consortium_tree[4]; /* see consortium_key() */
	cs_consortium *state;
	char *error;
} state_entry;

typedef struct {
	cs_repo *repo;
	vcommit *commits;
	size_t n;
	oid_index index;
	state_entry *states;
	size_t nstates, capstates;
	const cs_precheck *prechecked;
} vctx;

static size_t
oid_hash(const cs_oid *id)
{
	size_t h;

	memcpy(&h, id->id, sizeof(h));
	return h;
}

static int
index_build(oid_index *ix, vcommit *commits, size_t n)
{
	size_t cap = 16;

	while (cap < n * 2)
		cap <<= 1;
	if ((ix->slots = malloc(cap * sizeof(int))) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	memset(ix->slots, 0xff, cap * sizeof(int));
	ix->mask = cap - 1;
	for (size_t i = 0; i < n; i++) {
		size_t s = oid_hash(&commits[i].id) & ix->mask;

		while (ix->slots[s] >= 0)
			s = (s + 1) & ix->mask;
		ix->slots[s] = (int)i;
	}
	return 0;
}

static int
index_find(const vctx *v, const cs_oid *id)
{
	size_t s = oid_hash(id) & v->index.mask;

	while (v->index.slots[s] >= 0) {
		if (cs_oid_cmp(&v->commits[v->index.slots[s]].id, id) == 0)
			return v->index.slots[s];
		s = (s + 1) & v->index.mask;
	}
	return -1;
}

static void
reject(vcommit *c, const char *reason)
{
	if (c->state == INVALID)
		return;
	c->state = INVALID;
	c->cause = -1;
	free(c->reason);
	c->reason = strdup(reason);
}

/* Pass 1: grammar and signature of one commit, from its raw bytes (the
 * grammar only for a commit with a kept verdict). */
static void
check_signature(vcommit *c, char *raw, size_t len)
{
	cs_commit *commit = NULL;

	if (cs_commit_parse(&commit, raw, len) < 0) {
		reject(c, cs_error_last());
		return;
	}
	c->tree = commit->tree;
	c->kind = commit->kind;
	c->nparents = (int)commit->parent_count;
	c->parent_ids[0] = commit->parents[0];
	c->parent_ids[1] = commit->parents[1];
	c->time = commit->committer.time;
	c->author = strdup(commit->author.name);
	c->committer = strdup(commit->committer.name);
	if (commit->kind == CS_COMMIT_MERGE) {
		if (strcmp(commit->author.name, CS_MERGE_IDENT_NAME) ||
		    strcmp(commit->author.email, CS_MERGE_IDENT_EMAIL) ||
		    strcmp(commit->committer.name, CS_MERGE_IDENT_NAME) ||
		    strcmp(commit->committer.email, CS_MERGE_IDENT_EMAIL) ||
		    commit->author.time != commit->committer.time ||
		    commit->author.tz_minutes != 0 ||
		    commit->committer.tz_minutes != 0)
			reject(c, "a merge must carry the fixed cartosync"
				  " identity");
		else if (strcmp(commit->message, CS_MERGE_MESSAGE) != 0)
			reject(c, "a merge's message must be"
				  " \"cartosync-merge/1\"");
		else if (cs_oid_cmp(&commit->parents[0], &commit->parents[1]) >=
			 0)
			reject(c, "a merge's parents must be in canonical order");
	} else if (!c->known &&
		   cs_sshsig_verify(&c->signer, commit->signature,
				    strlen(commit->signature),
				    CS_SSHSIG_NAMESPACE_GIT,
				    (const uint8_t *)commit->payload,
				    commit->payload_len) < 0) {
		reject(c, cs_error_last());
	}
	cs_commit_free(commit);
}

typedef struct {
	vcommit *commits;
	char **raw;
	size_t *len;
	size_t start, end, stride;
	vctx *worker; /* this thread's repository handle and states */
} sig_job;

static void check_contents(vcommit *c, vctx *worker);

static void *
sig_worker(void *arg)
{
	sig_job *job = arg;

	for (size_t i = job->start; i < job->end; i += job->stride)
		if (job->raw[i]) {
			check_signature(&job->commits[i], job->raw[i],
					job->len[i]);
			check_contents(&job->commits[i], job->worker);
		}
	return NULL;
}

static unsigned
thread_count(unsigned wanted)
{
	long n = wanted ? (long)wanted : sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	return n > MAX_THREADS ? MAX_THREADS : (unsigned)n;
}

static void
workers_free(vctx *workers, unsigned n)
{
	for (unsigned t = 0; t < n; t++) {
		for (size_t i = 0; i < workers[t].nstates; i++) {
			cs_consortium_free(workers[t].states[i].state);
			free(workers[t].states[i].error);
		}
		free(workers[t].states);
		cs_repo_free(workers[t].repo);
	}
}

/*
 * Pass 1: grammar, signatures, and the form and content of every changed
 * file, in parallel: one thread per core, each with its own repository
 * handle and its own cache of consortium states.
 */
static int
pass_signatures(vctx *v, unsigned threads)
{
	char **raw = calloc(BATCH, sizeof(*raw));
	size_t *len = calloc(BATCH, sizeof(*len));
	pthread_t tid[MAX_THREADS];
	sig_job jobs[MAX_THREADS];
	vctx workers[MAX_THREADS];
	int error = 0;

	memset(workers, 0, sizeof(workers));
	for (unsigned t = 0; t < threads; t++) {
		workers[t].prechecked = v->prechecked;
		if ((error = cs_repo_open(&workers[t].repo,
					  cs_repo_path(v->repo))) < 0) {
			workers_free(workers, t);
			free(raw);
			free(len);
			return error;
		}
	}
	if (raw == NULL || len == NULL) {
		workers_free(workers, threads);
		free(raw);
		free(len);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	for (size_t base = 0; base < v->n && error == 0; base += BATCH) {
		size_t count = v->n - base < BATCH ? v->n - base : BATCH;
		unsigned started = 0;

		for (size_t i = 0; i < count; i++) {
			vcommit *c = &v->commits[base + i];

			if (cs_repo_read_commit_raw(&raw[i], &len[i], v->repo,
						    &c->id) < 0) {
				raw[i] = NULL;
				reject(c, cs_error_last());
			}
		}
		for (unsigned t = 0; t < threads; t++) {
			/* Each thread a run of consecutive commits: the
			 * trees a commit shares with its parent are then in
			 * the thread's own pack cache (pack.h). */
			jobs[t] = (sig_job){v->commits + base,
					    raw,
					    len,
					    count * t / threads,
					    count * (t + 1) / threads,
					    1,
					    &workers[t]};
			if (t > 0 &&
			    pthread_create(&tid[t], NULL, sig_worker,
					   &jobs[t]) == 0)
				started = t;
			else if (t > 0)
				break;
		}
		sig_worker(&jobs[0]);
		for (unsigned t = 1; t <= started; t++)
			pthread_join(tid[t], NULL);
		/* Jobs whose thread did not start run here. */
		for (unsigned t = started + 1; t < threads; t++)
			sig_worker(&jobs[t]);
		for (size_t i = 0; i < count; i++) {
			free(raw[i]);
			raw[i] = NULL;
		}
	}
	workers_free(workers, threads);
	free(raw);
	free(len);
	return error;
}

/*
 * What a consortium state depends on: the ids of members.json, policy.json,
 * protocol.json and schema/ in the consortium folder `sub` (zeros when
 * absent).  Not the folder's own id: consortium/duplicates.json and the
 * root approval change it without changing the state.
 */
static void
consortium_key(cs_oid key[4], cs_repo *repo, const cs_oid *sub)
{
	static const char *const names[4] = {"members.json", "policy.json",
					     "protocol.json", "schema"};

	for (int i = 0; i < 4; i++)
		if (cs_repo_tree_lookup(&key[i], NULL, repo, sub, names[i]) < 0)
			memset(&key[i], 0, sizeof(key[i]));
}

/*
 * The consortium as of a tree, cached by consortium_key() (changes of
 * members, policy, protocol or schemas are rare, so there are few distinct
 * states).
 * Returns NULL with the reason in *why when the files are broken.
 */
static const cs_consortium *
state_at(vctx *v, const cs_oid *tree, const char **why)
{
	cs_oid sub, key[4];
	state_entry *e;
	int error;

	*why = NULL;
	if (cs_repo_tree_lookup(&sub, NULL, v->repo, tree, "consortium") < 0) {
		*why = "the consortium files are missing";
		return NULL;
	}
	consortium_key(key, v->repo, &sub);
	for (size_t i = 0; i < v->nstates; i++)
		if (memcmp(v->states[i].consortium_tree, key, sizeof(key)) == 0) {
			*why = v->states[i].error;
			return v->states[i].state;
		}
	if (v->nstates == v->capstates) {
		size_t cap = v->capstates ? v->capstates * 2 : 8;
		state_entry *grown = realloc(v->states, cap * sizeof(*grown));

		if (grown == NULL) {
			*why = "out of memory";
			return NULL;
		}
		v->states = grown;
		v->capstates = cap;
	}
	e = &v->states[v->nstates++];
	memcpy(e->consortium_tree, key, sizeof(key));
	e->state = NULL;
	e->error = NULL;
	if ((error = cs_consortium_load(&e->state, v->repo, tree)) < 0)
		e->error = strdup(cs_error_last());
	*why = e->error;
	return e->state;
}

typedef struct {
	vctx *v;
	const cs_oid *tree;           /* the edit's tree */
	const cs_consortium *state;   /* as of the parent */
	const cs_member_key *signer;
	const char *org;
	char reason[768];
	int consortium_touched;
	int members_or_policy;
} change_check;

static int
fail(change_check *cc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int
fail(change_check *cc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cc->reason, sizeof(cc->reason), fmt, ap);
	va_end(ap);
	return 1;
}

static int
is_consortium_json(const char *path)
{
	const char *name;

	if (strcmp(path, CS_PATH_MEMBERS) == 0 ||
	    strcmp(path, CS_PATH_POLICY) == 0 ||
	    strcmp(path, CS_PATH_PROTOCOL) == 0 ||
	    strcmp(path, CS_PATH_ROOT_APPROVAL) == 0 ||
	    strcmp(path, CS_PATH_DUPLICATES) == 0)
		return 1;
	static const char dir[] = CS_PATH_SCHEMA_DIR "/";

	if (strncmp(path, dir, strlen(dir)) != 0)
		return 0;
	name = path + strlen(dir);
	return strchr(name, '/') == NULL && strlen(name) > 5 &&
	       strcmp(name + strlen(name) - 5, ".json") == 0;
}

static int
is_conflict_path(const char *path)
{
	/* conflicts/<xx>/<uuid>.json */
	char id[37];

	if (strlen(path) != 10 + 3 + 41 || strncmp(path, "conflicts/", 10) ||
	    path[12] != '/' || strcmp(path + 49, ".json") != 0)
		return 0;
	memcpy(id, path + 13, 36);
	id[36] = '\0';
	return cs_uuid_valid(id) && strncmp(path + 10, id, 2) == 0;
}

/* The first "adm1" found in a record: its region. */
static const char *
region_of(const json_t *v)
{
	const char *key, *found = NULL;
	json_t *child;
	size_t i;

	if (json_is_object(v)) {
		json_t *adm1 = json_object_get(v, "adm1");

		if (json_is_string(adm1))
			return json_string_value(adm1);
		json_object_foreach((json_t *)v, key, child) {
			if ((found = region_of(child)) != NULL)
				return found;
		}
	} else if (json_is_array(v)) {
		json_array_foreach((json_t *)v, i, child) {
			if ((found = region_of(child)) != NULL)
				return found;
		}
	}
	return NULL;
}

/*
 * Besides the coordinator, who may resolve a record's conflicts
 * (docs/merge.md "Who resolves"): its owner when the policy says
 * "resolution": {"owners": true}, and for a shared record the steward the
 * policy names for the record's region.  The record named by the conflict
 * file is read from the edit's own tree.
 */
static int
may_resolve(change_check *cc, const char *path, const cs_tree_change *change)
{
	const json_t *policy = cs_consortium_policy(cc->state);
	json_t *doc = NULL, *record = NULL;
	char *buf = NULL, *owner = NULL;
	const char *record_path, *steward, *region;
	size_t len = 0;
	cs_oid blob;
	int allowed = 0;

	if (cc->signer == NULL || cc->signer->role != CS_ROLE_MEMBER ||
	    cc->tree == NULL || change->new_id == NULL ||
	    cs_repo_read_blob(&buf, &len, cc->v->repo, change->new_id,
			      CS_RECORD_MAX_BYTES) < 0 ||
	    cs_json_parse(&doc, buf, len, path) < 0)
		goto done;
	record_path = json_string_value(json_object_get(doc, "record"));
	if (record_path == NULL ||
	    cs_record_path_parse(record_path, &owner, NULL, NULL) < 0)
		goto done;
	if (strcmp(owner, cc->org) == 0) {
		allowed = json_is_true(json_object_get(
			json_object_get(policy, "resolution"), "owners"));
		goto done;
	}
	if (strcmp(owner, CS_OWNER_SHARED) != 0 ||
	    cs_repo_tree_lookup(&blob, NULL, cc->v->repo, cc->tree,
				record_path) < 0)
		goto done;
	free(buf);
	buf = NULL;
	if (cs_repo_read_blob(&buf, &len, cc->v->repo, &blob,
			      CS_RECORD_MAX_BYTES) < 0 ||
	    cs_json_parse(&record, buf, len, record_path) < 0)
		goto done;
	region = region_of(record);
	steward = region ? json_string_value(json_object_get(
				   json_object_get(policy, "stewards"), region))
			 : NULL;
	allowed = steward && strcmp(steward, cc->org) == 0;
done:
	json_decref(doc);
	json_decref(record);
	free(buf);
	free(owner);
	return allowed;
}

/*
 * The form and content of one changed file, judged with the consortium of
 * the parent: a path of the map, a regular file, a valid record or
 * consortium file.  Needs nothing but the trees, so it runs in parallel.
 * Returns 0, or with the reason in `reason` 1 for a file that has no place
 * in the map, 2 for content that is not valid.
 */
static int
check_content(const cs_tree_change *change, cs_repo *repo,
	      const cs_consortium *state, const cs_precheck *prechecked,
	      char *reason, size_t size)
{
	const char *path = change->path;
	const cs_schema_set *schemas = cs_consortium_schemas(state);
	const char *schema = NULL;
	char *buf = NULL;
	size_t len = 0;
	json_t *doc = NULL;
	int record;

	reason[0] = '\0';
	if (change->new_id && change->new_mode != CS_MODE_BLOB) {
		snprintf(reason, size, "'%s' is not a regular file (mode %o)",
			 path, change->new_mode);
		return 1;
	}
	record = strncmp(path, "records/", 8) == 0;
	if (!(record || is_consortium_json(path) || is_conflict_path(path))) {
		snprintf(reason, size, "'%s' is not a path of the map", path);
		return 1;
	}
	if (record) {
		char *type = NULL;

		if (cs_record_path_parse(path, NULL, &type, NULL) < 0) {
			snprintf(reason, size, "%s", cs_error_last());
			return 1;
		}
		/* docs/record-model.md "Staff care": coordination-only content
		 * never enters a history that every member holds. */
		if (strcmp(type, "staffcare_session") == 0) {
			free(type);
			snprintf(reason, size,
				 "'%s': staffcare_session records are"
				 " coordination-only and never stored in the"
				 " shared history",
				 path);
			return 1;
		}
		free(type);
	}
	if (strncmp(path, "consortium/", 11) == 0 && change->new_id == NULL &&
	    strcmp(path, CS_PATH_ROOT_APPROVAL) != 0) {
		snprintf(reason, size, "'%s' cannot be removed", path);
		return 1;
	}
	if (change->new_id == NULL)
		return 0;
	if (record && prechecked) {
		cs_oid schema_dir;

		if (cs_consortium_schema_dir(state, &schema_dir) == 0 &&
		    cs_precheck_passed(prechecked, change->new_id, path,
				       &schema_dir))
			return 0;
	}

	if (strcmp(path, CS_PATH_MEMBERS) == 0)
		schema = "members.schema.json";
	else if (strcmp(path, CS_PATH_POLICY) == 0)
		schema = "policy.schema.json";
	else if (strcmp(path, CS_PATH_DUPLICATES) == 0)
		schema = "duplicates.schema.json";
	if (cs_repo_read_blob(&buf, &len, repo, change->new_id,
			      CS_RECORD_MAX_BYTES) < 0) {
		snprintf(reason, size, "%s: %s", path, cs_error_last());
	} else if (record) {
		if (cs_record_parse_stored(&doc, buf, len, path) < 0 ||
		    cs_record_check(schemas, doc, path, path, NULL) < 0)
			snprintf(reason, size, "%s", cs_error_last());
	} else if (cs_json_parse_canonical(&doc, buf, len, path) < 0) {
		snprintf(reason, size, "%s", cs_error_last());
	} else if (schema && cs_schema_set_get(schemas, schema) &&
		   cs_schema_validate(schemas, schema, doc, NULL) < 0) {
		snprintf(reason, size, "%s: %s", path, cs_error_last());
	}
	json_decref(doc);
	free(buf);
	return reason[0] ? 2 : 0;
}

/* Whether the signer may write one changed path; notes consortium files. */
static int
check_authority(change_check *cc, const cs_tree_change *change)
{
	const char *path = change->path;

	if (!cs_policy_allows(cc->state, cc->signer, path) &&
	    !(is_conflict_path(path) && may_resolve(cc, path, change)))
		return is_conflict_path(path)
			       ? fail(cc,
				      "%s may not resolve the conflicts in"
				      " '%s': the coordinator does, and the"
				      " owner or the region's steward where"
				      " the policy says so",
				      cc->org ? cc->org : "a root key", path)
			       : fail(cc, "%s may not write '%s'",
				      cc->org ? cc->org : "a root key", path);
	if (strncmp(path, "consortium/", 11) == 0) {
		cc->consortium_touched = 1;
		if (strcmp(path, CS_PATH_MEMBERS) == 0 ||
		    strcmp(path, CS_PATH_POLICY) == 0)
			cc->members_or_policy = 1;
	}
	return 0;
}

/* Both, for one edit about to be written (the preflight). */
static int
check_change(const cs_tree_change *change, void *payload)
{
	change_check *cc = payload;
	char reason[768];

	int kind = check_content(change, cc->v->repo, cc->state, NULL, reason,
				 sizeof(reason));

	if (kind == 1)
		return fail(cc, "%s", reason);
	if (check_authority(cc, change))
		return 1;
	return kind ? fail(cc, "%s", reason) : 0;
}

typedef struct {
	vcommit *c;
	cs_repo *repo;
	const cs_consortium *state;
	const cs_precheck *prechecked;
	size_t cap;
} content_walk;

static int
content_entry(const cs_tree_change *change, void *payload)
{
	content_walk *w = payload;
	vcommit *c = w->c;
	char reason[768];

	if (c->nchanges == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 4;
		struct stored_change *grown =
			realloc(c->changes, cap * sizeof(*grown));

		if (grown == NULL)
			return cs_error_set(CS_ERROR, "out of memory");
		c->changes = grown;
		w->cap = cap;
	}
	c->changes[c->nchanges].path = strdup(change->path);
	c->changes[c->nchanges].deleted = change->new_id == NULL;
	if (change->new_id)
		c->changes[c->nchanges].new_id = *change->new_id;
	c->nchanges++;
	if (w->state && c->content_reason == NULL &&
	    (c->content_kind = check_content(change, w->repo, w->state,
					     w->prechecked, reason,
					     sizeof(reason))) != 0) {
		c->content_reason = strdup(reason);
		c->content_index = c->nchanges - 1;
	}
	return 0;
}

/* Pass 1, in a worker: the edit's changes judged with its parent's
 * consortium (authority waits for pass 2, which needs the order). */
static void
check_contents(vcommit *c, vctx *worker)
{
	content_walk w = {c, worker->repo, NULL, worker->prechecked, 0};
	cs_oid parent_tree;
	const char *why;

	if (c->state == INVALID || c->kind == CS_COMMIT_MERGE || c->known)
		return;
	if (c->nparents && cs_repo_commit_tree(&parent_tree, worker->repo,
					       &c->parent_ids[0]) < 0)
		return; /* the parent's own verdict decides */
	w.state = state_at(worker, c->nparents ? &parent_tree : &c->tree, &why);
	if (w.state == NULL) {
		c->content_reason = strdup(why ? why : "no consortium files");
		return;
	}
	if (cs_consortium_protocol(w.state) > CS_PROTOCOL_VERSION) {
		c->content_unjudged = 1;
		return;
	}
	if (cs_repo_diff(worker->repo, c->nparents ? &parent_tree : NULL,
			 &c->tree, content_entry, &w) < 0 &&
	    c->content_reason == NULL)
		c->content_reason = strdup(cs_error_last());
}

/*
 * Judge the changes the parallel pass stored, in path order and in the
 * order the preflight uses for one change: its place in the map, the
 * signer's authority, its content.  `authority_only` skips the rest (the
 * revocation pass).
 */
static int
check_stored(change_check *cc, const vcommit *c, int authority_only)
{
	for (size_t i = 0; i < c->nchanges; i++) {
		const struct stored_change *sc = &c->changes[i];
		cs_tree_change change = {sc->path, NULL,
					 sc->deleted ? NULL : &sc->new_id, 0,
					 CS_MODE_BLOB};
		int failing = !authority_only && c->content_reason &&
			      c->content_index == i;

		if (failing && c->content_kind == 1)
			return fail(cc, "%s", c->content_reason);
		if (check_authority(cc, &change))
			return 1;
		if (failing)
			return fail(cc, "%s", c->content_reason);
	}
	return 0;
}

/* The consortium files after a change: loadable, and power changes
 * approved by the root. */
static int
check_consortium_after(vctx *v, change_check *cc, const cs_oid *parent,
		       const cs_oid *tree)
{
	const cs_consortium *after;
	const char *why;
	cs_oid members_blob, approval_blob;
	char *buf = NULL;
	size_t len = 0;
	json_t *approval = NULL;

	if ((after = state_at(v, tree, &why)) == NULL)
		return fail(cc, "%s", why);
	if (!cs_consortium_power_changed(cc->state, after))
		return 0;
	if (cs_repo_tree_lookup(&members_blob, NULL, v->repo, tree,
				CS_PATH_MEMBERS) < 0 ||
	    cs_repo_tree_lookup(&approval_blob, NULL, v->repo, tree,
				CS_PATH_ROOT_APPROVAL) < 0)
		return fail(cc, "changing the coordinator keys or the root set"
				" needs a root approval (%s)",
			    CS_PATH_ROOT_APPROVAL);
	if (cs_repo_read_blob(&buf, &len, v->repo, &approval_blob,
			      CS_JSON_MAX_BYTES) < 0 ||
	    cs_json_parse(&approval, buf, len, CS_PATH_ROOT_APPROVAL) < 0 ||
	    cs_root_approval_check(cc->state, approval, parent,
				   &members_blob) < 0)
		fail(cc, "%s", cs_error_last());
	json_decref(approval);
	free(buf);
	return cc->reason[0] ? 1 : 0;
}

static const cs_member_key *
signer_entry(const cs_consortium *state, const vcommit *c, const char **org,
	     char *reason, size_t size)
{
	const cs_member_key *k = cs_consortium_find_key(state, c->signer);
	char *fp = cs_key_fingerprint(c->signer);

	*org = NULL;
	if (k == NULL)
		snprintf(reason, size, "signed by %s, which is not a member key",
			 fp ? fp : "a key");
	else if (k->revoked)
		snprintf(reason, size, "signed by %s of %s, which is revoked",
			 fp ? fp : "a key", k->org);
	else if (k->role != CS_ROLE_ROOT &&
		 !cs_consortium_org_active(state, k->org))
		snprintf(reason, size,
			 "signed by %s of %s, an organisation that was"
			 " removed",
			 fp ? fp : "a key", k->org);
	else
		*org = k->role == CS_ROLE_ROOT ? "root" : k->org;
	free(fp);
	return *org ? k : NULL;
}

static void
judge_edit(vctx *v, vcommit *c)
{
	const cs_consortium *state;
	const vcommit *parent = c->nparents ? &v->commits[c->parents[0]] : NULL;
	change_check cc;
	const char *why;

	memset(&cc, 0, sizeof(cc));
	cc.v = v;
	cc.tree = &c->tree;
	state = state_at(v, parent ? &parent->tree : &c->tree, &why);
	if (state == NULL) {
		reject(c, why);
		return;
	}
	if (cs_consortium_protocol(state) > CS_PROTOCOL_VERSION ||
	    c->content_unjudged) {
		c->state = UNJUDGED;
		return;
	}
	cc.state = state;
	if ((cc.signer = signer_entry(state, c, &cc.org, cc.reason,
				      sizeof(cc.reason))) == NULL) {
		reject(c, cc.reason);
		return;
	}
	if (parent == NULL && cc.signer->role != CS_ROLE_COORDINATOR) {
		reject(c, "the genesis must be signed by a coordinator key");
		return;
	}
	if (strcmp(c->author, cc.org) != 0 || strcmp(c->committer, cc.org)) {
		int author = strcmp(c->author, cc.org) != 0;

		snprintf(cc.reason, sizeof(cc.reason),
			 "%s \"%s\" is not the signer's organisation \"%s\"",
			 author ? "author" : "committer",
			 author ? c->author : c->committer, cc.org);
		reject(c, cc.reason);
		return;
	}
	if (!check_stored(&cc, c, 0) && c->content_reason)
		fail(&cc, "%s", c->content_reason);
	if (!cc.reason[0] && parent && cc.consortium_touched)
		check_consortium_after(v, &cc, &parent->id, &c->tree);
	if (cc.reason[0]) {
		reject(c, cc.reason);
		return;
	}
	c->consortium_change = cc.members_or_policy;
	c->state = VALID;
}

static void
judge_merge(vctx *v, vcommit *c)
{
	vcommit *a = &v->commits[c->parents[0]];
	vcommit *b = &v->commits[c->parents[1]];
	int64_t later = a->time > b->time ? a->time : b->time;

	if (cs_repo_is_ancestor(v->repo, &a->id, &b->id) ||
	    cs_repo_is_ancestor(v->repo, &b->id, &a->id))
		reject(c, "a merge's parent is an ancestor of the other");
	else if (c->time != later)
		reject(c, "a merge's time must be its later parent's");
	else
		c->state = VALID;
}

/* Pass 2 for one commit, its parents judged already. */
static void
judge(vctx *v, size_t i, const cs_oid *genesis, int *seen_root)
{
	vcommit *c = &v->commits[i];

	for (int p = 0; p < c->nparents; p++) {
		vcommit *parent = &v->commits[c->parents[p]];

		if (parent->state == INVALID) {
			c->state = INVALID;
			c->cause = parent->cause >= 0 ? parent->cause
						      : c->parents[p];
			return;
		}
		if (parent->state == UNJUDGED) {
			c->state = UNJUDGED;
			return;
		}
	}
	if (c->state == INVALID) /* grammar or signature */
		return;
	if (c->kind == CS_COMMIT_GENESIS) {
		if (genesis && cs_oid_cmp(genesis, &c->id) != 0) {
			reject(c, "a root commit that is not this node's"
				  " genesis");
			return;
		}
		if (!genesis && *seen_root) {
			reject(c, "a second root commit");
			return;
		}
		*seen_root = 1;
	}
	if (c->known) {
		c->state = VALID;
		c->consortium_change = (c->known & CS_VERDICT_CONSORTIUM) != 0;
		return;
	}
	if (c->kind == CS_COMMIT_MERGE)
		judge_merge(v, c);
	else
		judge_edit(v, c);
}

/* Bits of the commits that are `root` or its ancestors / descendants. */
static uint8_t *
closure(const vctx *v, size_t root, int ancestors)
{
	uint8_t *bits = calloc(v->n / 8 + 1, 1);

	if (bits == NULL)
		return NULL;
	bits[root / 8] |= (uint8_t)(1u << (root % 8));
	if (ancestors) {
		for (size_t k = root + 1; k-- > 0;) {
			const vcommit *c = &v->commits[k];

			if (!(bits[k / 8] & (1u << (k % 8))))
				continue;
			for (int p = 0; p < c->nparents; p++)
				bits[c->parents[p] / 8] |=
					(uint8_t)(1u << (c->parents[p] % 8));
		}
	} else {
		for (size_t k = root + 1; k < v->n; k++) {
			const vcommit *c = &v->commits[k];

			for (int p = 0; p < c->nparents; p++)
				if (bits[c->parents[p] / 8] &
				    (1u << (c->parents[p] % 8)))
					bits[k / 8] |= (uint8_t)(1u << (k % 8));
		}
	}
	return bits;
}

/*
 * The signer and the changed paths of an edit with a kept verdict, which
 * pass 1 did not read: the revocation pass judges them again.
 */
static int
load_known(vctx *v, vcommit *e)
{
	content_walk w = {e, v->repo, NULL, 0};
	cs_commit *commit = NULL;
	cs_oid parent_tree;
	char *raw = NULL;
	size_t len = 0;
	int error;

	e->loaded = 1;
	if ((error = cs_repo_read_commit_raw(&raw, &len, v->repo, &e->id)) <
		    0 ||
	    (error = cs_commit_parse(&commit, raw, len)) < 0 ||
	    (error = cs_sshsig_verify(&e->signer, commit->signature,
				      strlen(commit->signature),
				      CS_SSHSIG_NAMESPACE_GIT,
				      (const uint8_t *)commit->payload,
				      commit->payload_len)) < 0 ||
	    (e->nparents && (error = cs_repo_commit_tree(
				     &parent_tree, v->repo,
				     &e->parent_ids[0])) < 0) ||
	    (error = cs_repo_diff(v->repo, e->nparents ? &parent_tree : NULL,
				  &e->tree, content_entry, &w)) < 0) {
		cs_commit_free(commit);
		free(raw);
		return error;
	}
	cs_commit_free(commit);
	free(raw);
	return 0;
}

/* Whether edit `e` is still allowed by the consortium `after`. */
static int
still_allowed(vctx *v, vcommit *e, const cs_consortium *after,
	      const vcommit *revoker)
{
	change_check cc;
	char hex[CS_OID_HEXSZ + 1];

	memset(&cc, 0, sizeof(cc));
	cc.v = v;
	cc.tree = &e->tree;
	cc.state = after;
	cs_oid_fmt(hex, &revoker->id);
	if ((cc.signer = signer_entry(after, e, &cc.org, cc.reason,
				      sizeof(cc.reason))) == NULL) {
		char reason[1024];

		snprintf(reason, sizeof(reason),
			 "%s as of commit %.12s, and the edit is not in"
			 " that commit's past",
			 cc.reason, hex);
		reject(e, reason);
		return 0;
	}
	check_stored(&cc, e, 1);
	if (cc.reason[0]) {
		char reason[1024];

		snprintf(reason, sizeof(reason),
			 "%s since commit %.12s, and the edit is not in that"
			 " commit's past",
			 cc.reason, hex);
		reject(e, reason);
		return 0;
	}
	return 1;
}

static int
pass_revocations(vctx *v)
{
	int changed = 0;

	for (size_t r = 0; r < v->n; r++) {
		vcommit *rc = &v->commits[r];
		const cs_consortium *after;
		uint8_t *anc, *desc;
		const char *why;

		if (rc->state != VALID || !rc->consortium_change)
			continue;
		if ((after = state_at(v, &rc->tree, &why)) == NULL)
			continue;
		anc = closure(v, r, 1);
		desc = closure(v, r, 0);
		if (anc == NULL || desc == NULL) {
			free(anc);
			free(desc);
			return cs_error_set(CS_ERROR, "out of memory");
		}
		for (size_t e = 0; e < v->n; e++) {
			vcommit *ec = &v->commits[e];

			if (ec->state != VALID || ec->kind != CS_COMMIT_EDIT ||
			    (anc[e / 8] & (1u << (e % 8))) ||
			    (desc[e / 8] & (1u << (e % 8))))
				continue;
			/* Not a verdict: the store could not be read. */
			if (ec->known && !ec->loaded) {
				int error = load_known(v, ec);

				if (error < 0) {
					free(anc);
					free(desc);
					return error;
				}
			}
			if (!still_allowed(v, ec, after, rc))
				changed = 1;
		}
		free(anc);
		free(desc);
	}
	return changed;
}

/*
 * Pass 2b: a merge is a function of its parents; recompute each one and
 * compare (docs/merge.md).  Merges come after their parents in the order,
 * so a merge whose parent failed is invalid already.
 */
static void propagate(vctx *v);

static int
pass_merges(vctx *v, const cs_verify_options *opts)
{
	cs_history *h = NULL;
	cs_oid *heads = NULL;
	size_t nheads = 0;
	uint8_t *under_edit = calloc(v->n / 8 + 1, 1);
	int error = 0;

	/* Only merges a signed edit stands on matter: a fold above the tips
	 * is recomputed by whoever integrates it (docs/merge.md). */
	if (under_edit == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	for (size_t k = v->n; k-- > 0;) {
		const vcommit *c = &v->commits[k];

		if (c->kind != CS_COMMIT_MERGE || (under_edit[k / 8] & (1u << (k % 8))))
			for (int p = 0; p < c->nparents; p++)
				under_edit[c->parents[p] / 8] |=
					(uint8_t)(1u << (c->parents[p] % 8));
	}
	for (size_t i = 0; i < v->n; i++) {
		vcommit *c = &v->commits[i];
		cs_oid again;
		char reason[256], hex[CS_OID_HEXSZ + 1];

		if (c->kind != CS_COMMIT_MERGE || c->state != VALID ||
		    !c->in_scope || c->known ||
		    !(opts->all_merges || (under_edit[i / 8] & (1u << (i % 8)))))
			continue;
		if (v->commits[c->parents[0]].state != VALID ||
		    v->commits[c->parents[1]].state != VALID) {
			c->state = INVALID;
			continue;
		}
		if (h == NULL) {
			nheads = opts->ntips;
			if ((heads = calloc(nheads + 1, sizeof(*heads))) == NULL)
				return cs_error_set(CS_ERROR, "out of memory");
			memcpy(heads, opts->tips, nheads * sizeof(*heads));
			if ((error = cs_history_load(&h, v->repo, heads,
						     nheads)) < 0)
				break;
		}
		if (cs_history_merge(&again, h, &c->parent_ids[0],
				     &c->parent_ids[1]) < 0) {
			snprintf(reason, sizeof(reason),
				 "the merge cannot be recomputed: %s",
				 cs_error_last());
			reject(c, reason);
		} else if (cs_oid_cmp(&again, &c->id) != 0) {
			cs_oid_fmt(hex, &again);
			snprintf(reason, sizeof(reason),
				 "the merge differs from its recomputation"
				 " (%.12s): its tree is not the merge of its"
				 " parents",
				 hex);
			reject(c, reason);
		} else {
			c->recomputed = 1;
		}
	}
	cs_history_free(h);
	free(heads);
	free(under_edit);
	propagate(v);
	return error;
}

/* Descendants of invalid commits are invalid. */
static void
propagate(vctx *v)
{
	for (size_t i = 0; i < v->n; i++) {
		vcommit *c = &v->commits[i];

		for (int p = 0; p < c->nparents && c->state == VALID; p++) {
			vcommit *parent = &v->commits[c->parents[p]];

			if (parent->state == INVALID) {
				c->state = INVALID;
				c->cause = parent->cause >= 0 ? parent->cause
							      : c->parents[p];
			}
		}
	}
}

/* Parent ids (from pass 1) to indices; parents come first in the order. */
static int
link_parents(vctx *v)
{
	for (size_t i = 0; i < v->n; i++) {
		vcommit *c = &v->commits[i];

		for (int p = 0; p < c->nparents; p++) {
			int k = index_find(v, &c->parent_ids[p]);

			if (k < 0 || (size_t)k >= i)
				return cs_error_set(CS_ERROR,
						    "history walk out of order");
			c->parents[p] = k;
		}
	}
	return 0;
}

static void
mark_scope(vctx *v, const cs_verify_options *opts)
{
	for (size_t t = 0; t < opts->ntips; t++) {
		int k = index_find(v, &opts->tips[t]);

		if (k >= 0)
			v->commits[k].in_scope = 1;
	}
	for (size_t k = v->n; k-- > 0;) {
		vcommit *c = &v->commits[k];

		if (!c->in_scope)
			continue;
		for (int p = 0; p < c->nparents; p++)
			v->commits[c->parents[p]].in_scope = 1;
	}
}

/* The verdicts already reached (cs_verdicts). */
static void
mark_known(vctx *v, const cs_verdicts *verdicts)
{
	for (size_t i = 0; i < v->n; i++)
		v->commits[i].known = cs_verdicts_get(verdicts,
						      &v->commits[i].id);
}

/*
 * Note the commits found valid as of their ancestors, before the
 * revocation pass: signed edits, and merges that were recomputed, whose
 * parents are noted too.
 */
static int
note_verdicts(vctx *v, cs_verdicts *verdicts)
{
	uint8_t *noted = calloc(v->n / 8 + 1, 1);
	int error = 0;

	if (noted == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	for (size_t i = 0; i < v->n && error == 0; i++) {
		vcommit *c = &v->commits[i];
		int parents_noted = 1;

		for (int p = 0; p < c->nparents; p++)
			if (!(noted[c->parents[p] / 8] &
			      (1u << (c->parents[p] % 8))))
				parents_noted = 0;
		if (!c->known &&
		    (c->state != VALID || !parents_noted ||
		     (c->kind == CS_COMMIT_MERGE && !c->recomputed)))
			continue;
		noted[i / 8] |= (uint8_t)(1u << (i % 8));
		if (!c->known)
			error = cs_verdicts_put(
				verdicts, &c->id,
				CS_VERDICT_VALID |
					(c->consortium_change
						 ? CS_VERDICT_CONSORTIUM
						 : 0));
	}
	free(noted);
	return error;
}

static int
build_report(cs_verify_report **out, vctx *v)
{
	cs_verify_report *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (r == NULL || (r->issues = calloc(v->n + 1, sizeof(*r->issues))) ==
				 NULL) {
		free(r);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	for (size_t i = 0; i < v->n; i++) {
		vcommit *c = &v->commits[i];
		cs_verify_issue *issue;

		if (!c->in_scope)
			continue;
		if (c->state == UNJUDGED) {
			r->unjudged++;
			continue;
		}
		r->commits++;
		if (c->kind == CS_COMMIT_MERGE)
			r->merges++;
		else
			r->edits++;
		if (c->state != INVALID)
			continue;
		issue = &r->issues[r->nissues++];
		issue->commit = c->id;
		if (c->cause >= 0) {
			char hex[CS_OID_HEXSZ + 1], *reason = NULL;

			issue->inherited = 1;
			issue->cause = v->commits[c->cause].id;
			cs_oid_fmt(hex, &issue->cause);
			if (asprintf(&reason, "stands on invalid commit %s",
				     hex) < 0)
				reason = NULL;
			issue->reason = reason;
		} else {
			issue->reason = strdup(c->reason ? c->reason
							 : "invalid");
		}
	}
	for (size_t i = 0; i < v->nstates; i++) {
		if (v->states[i].state &&
		    cs_consortium_protocol(v->states[i].state) >
			    CS_PROTOCOL_VERSION &&
		    r->unjudged)
			r->protocol = cs_consortium_protocol(v->states[i].state);
	}
	*out = r;
	return 0;
}

int
cs_verify(cs_verify_report **out, cs_repo *repo, const cs_verify_options *opts)
{
	vctx v;
	cs_oid *all = NULL, *order = NULL;
	size_t nall = opts->ntips + opts->nheld, n = 0;
	int seen_root = 0, error;

	*out = NULL;
	memset(&v, 0, sizeof(v));
	v.repo = repo;
	v.prechecked = opts->prechecked;
	if ((all = calloc(nall + 1, sizeof(*all))) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	memcpy(all, opts->tips, opts->ntips * sizeof(*all));
	if (opts->nheld)
		memcpy(all + opts->ntips, opts->held,
		       opts->nheld * sizeof(*all));
	if ((error = cs_repo_topo_order(&order, &n, repo, all, nall)) < 0)
		goto done;
	v.n = n;
	if ((v.commits = calloc(n + 1, sizeof(*v.commits))) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < n; i++)
		v.commits[i].id = order[i];
	for (size_t i = 0; i < n; i++)
		v.commits[i].cause = -1;
	if (opts->verdicts)
		mark_known(&v, opts->verdicts);
	if ((error = index_build(&v.index, v.commits, n)) < 0 ||
	    (error = pass_signatures(&v, thread_count(opts->threads))) < 0 ||
	    (error = link_parents(&v)) < 0)
		goto done;
	mark_scope(&v, opts);

	for (size_t i = 0; i < n; i++)
		judge(&v, i, opts->genesis, &seen_root);
	if ((error = pass_merges(&v, opts)) < 0 ||
	    (opts->verdicts &&
	     (error = note_verdicts(&v, opts->verdicts)) < 0))
		goto done;
	for (int round = 0; round < 8; round++) {
		int changed = pass_revocations(&v);

		if (changed < 0) {
			error = changed;
			goto done;
		}
		propagate(&v);
		if (!changed)
			break;
	}
	error = build_report(out, &v);
done:
	for (size_t i = 0; i < v.n; i++) {
		cs_key_free(v.commits[i].signer);
		free(v.commits[i].author);
		free(v.commits[i].committer);
		free(v.commits[i].content_reason);
		for (size_t k = 0; k < v.commits[i].nchanges; k++)
			free(v.commits[i].changes[k].path);
		free(v.commits[i].changes);
		free(v.commits[i].reason);
	}
	for (size_t i = 0; i < v.nstates; i++) {
		cs_consortium_free(v.states[i].state);
		free(v.states[i].error);
	}
	free(v.states);
	free(v.commits);
	free(v.index.slots);
	free(order);
	free(all);
	return error;
}

int
cs_verify_report_rejects(const cs_verify_report *report, const cs_oid *commit)
{
	for (size_t i = 0; i < report->nissues; i++)
		if (cs_oid_cmp(&report->issues[i].commit, commit) == 0)
			return 1;
	return 0;
}

void
cs_verify_report_free(cs_verify_report *report)
{
	if (report == NULL)
		return;
	for (size_t i = 0; i < report->nissues; i++)
		free(report->issues[i].reason);
	free(report->issues);
	free(report);
}

/*
 * The consortium states preflights used, kept for the process: a command
 * or the daemon writing many edits reloads the schemas only when the
 * consortium files change.  Keyed by the id of the consortium/ subtree,
 * so a state is never stale.
 */
static pthread_mutex_t preflight_lock = PTHREAD_MUTEX_INITIALIZER;
static state_entry *preflight_states;
static size_t npreflight_states, cappreflight_states;

int
cs_verify_edit_preflight(cs_repo *repo, const cs_oid *parent,
			 const cs_oid *tree, const struct cs_key *signer)
{
	vctx v;
	vcommit c[2];
	change_check cc;
	const char *why;
	int error = 0;

	memset(&v, 0, sizeof(v));
	memset(c, 0, sizeof(c));
	memset(&cc, 0, sizeof(cc));
	v.repo = repo;
	if ((error = cs_repo_commit_tree(&c[0].tree, repo, parent)) < 0)
		return error;
	pthread_mutex_lock(&preflight_lock);
	v.states = preflight_states;
	v.nstates = npreflight_states;
	v.capstates = cappreflight_states;
	c[0].id = *parent;
	c[1].tree = *tree;
	c[1].signer = (cs_key *)signer;
	cc.v = &v;
	cc.tree = tree;
	if ((cc.state = state_at(&v, &c[0].tree, &why)) == NULL) {
		error = cs_error_set(CS_EINVALID, "%s", why);
		goto done;
	}
	if (cs_consortium_protocol(cc.state) > CS_PROTOCOL_VERSION) {
		error = cs_error_set(CS_EPERM,
				     "the consortium uses protocol version %d;"
				     " this cartosync implements %d: upgrade"
				     " before writing",
				     cs_consortium_protocol(cc.state),
				     CS_PROTOCOL_VERSION);
		goto done;
	}
	if ((cc.signer = signer_entry(cc.state, &c[1], &cc.org, cc.reason,
				      sizeof(cc.reason))) == NULL) {
		error = cs_error_set(CS_EPERM, "this node's key cannot write: %s",
				     cc.reason);
		goto done;
	}
	if (cs_repo_diff(repo, &c[0].tree, tree, check_change, &cc) < 0 &&
	    !cc.reason[0])
		fail(&cc, "%s", cs_error_last());
	if (!cc.reason[0] && cc.consortium_touched)
		check_consortium_after(&v, &cc, parent, tree);
	if (cc.reason[0])
		error = cs_error_set(strstr(cc.reason, " may not ")
					     ? CS_EPERM
					     : CS_EINVALID,
				     "%s", cc.reason);
done:
	preflight_states = v.states;
	npreflight_states = v.nstates;
	cappreflight_states = v.capstates;
	pthread_mutex_unlock(&preflight_lock);
	return error;
}
