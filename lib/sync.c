#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cartosync/bundle.h"
#include "cartosync/commit.h"
#include "cartosync/error.h"
#include "cartosync/history.h"
#include "cartosync/record.h"
#include "cartosync/repo.h"
#include "cartosync/sync.h"
#include "cartosync/tls.h"
#include "cartosync/transport.h"
#include "precheck.h"
#include "repo_internal.h"
#include "staging.h"
#include "cartosync/merge.h"
#include "cartosync/json.h"
#include "cartosync/key.h"

typedef struct {
	cs_oid *ids;
	size_t n;
	size_t cap;
} oid_list;

static int
collect_ref(const char *name, const cs_oid *id, void *payload)
{
	oid_list *l = payload;

	(void)name;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		cs_oid *grown = realloc(l->ids, cap * sizeof(*grown));

		if (grown == NULL)
			return cs_error_set(CS_ERROR, "out of memory");
		l->ids = grown;
		l->cap = cap;
	}
	l->ids[l->n++] = *id;
	return 0;
}

/*
 * cs_verify() with the verdicts the node keeps (DIR/verdicts): what was
 * judged once is not judged again, but for revocations.  Losing the
 * verdicts only costs time, so a file that cannot be read or written is
 * left aside.
 */
static int
verify_held(cs_verify_report **out, cs_node *node, cs_repo *repo,
	    cs_verify_options *opts)
{
	cs_verdicts *verdicts = NULL;
	char *path = NULL;
	int error;

	if (asprintf(&path, "%s/verdicts", cs_node_dir(node)) < 0)
		path = NULL;
	if (path && cs_verdicts_open(&verdicts, path) < 0)
		verdicts = NULL;
	free(path);
	opts->verdicts = verdicts;
	error = cs_verify(out, repo, opts);
	opts->verdicts = NULL;
	if (error == 0 && verdicts)
		(void)cs_verdicts_save(verdicts);
	cs_verdicts_free(verdicts);
	return error;
}

static int
peer_name_valid(const char *peer)
{
	return cs_org_code_valid(peer);
}

typedef struct {
	char **names;
	cs_oid *ids;
	size_t n;
	size_t cap;
} ref_list;

static int
collect_named(const char *name, const cs_oid *id, void *payload)
{
	ref_list *l = payload;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		char **names = realloc(l->names, cap * sizeof(*names));
		cs_oid *ids;

		/* Each array kept on failure, so the list is freed whole. */
		if (names == NULL)
			return cs_error_set(CS_ERROR, "out of memory");
		l->names = names;
		if ((ids = realloc(l->ids, cap * sizeof(*ids))) == NULL)
			return cs_error_set(CS_ERROR, "out of memory");
		l->ids = ids;
		l->cap = cap;
	}
	if ((l->names[l->n] = strdup(name)) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	l->ids[l->n++] = *id;
	return 0;
}

static void
ref_list_clear(ref_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
	free(l->ids);
}

/* The commits to keep of a judged history: its head if valid, else the
 * valid parents of its invalid commits (the largest set of valid commits
 * whose ancestors are all valid). */
static int
valid_frontier(oid_list *out, cs_repo *repo, const cs_oid *head,
	       const cs_verify_report *report)
{
	int error = 0;

	if (!cs_verify_report_rejects(report, head))
		return collect_ref(NULL, head, out);
	for (size_t i = 0; i < report->nissues && error == 0; i++) {
		cs_commit *c = NULL;

		if (cs_repo_read_commit(&c, repo, &report->issues[i].commit) <
		    0)
			continue;
		for (size_t p = 0; p < c->parent_count && error == 0; p++) {
			int dup = 0;

			if (cs_verify_report_rejects(report, &c->parents[p]))
				continue;
			for (size_t k = 0; k < out->n && !dup; k++)
				dup = cs_oid_cmp(&out->ids[k],
						 &c->parents[p]) == 0;
			if (!dup)
				error = collect_ref(NULL, &c->parents[p], out);
		}
		cs_commit_free(c);
	}
	return error;
}

/* refs/peers/<peer>/main for a valid head, else .../valid/<id>. */
static void
peer_ref_name(char *out, size_t size, const char *prefix, int head_valid,
	      const cs_oid *id)
{
	char hex[CS_OID_HEXSZ + 1];

	if (head_valid) {
		snprintf(out, size, "%smain", prefix);
		return;
	}
	cs_oid_fmt(hex, id);
	snprintf(out, size, "%svalid/%s", prefix, hex);
}

/* refs/peers/<peer>/... := the kept commits, under the repository lock. */
static int
set_peer_refs(int *changed, cs_repo *repo, const char *peer,
	      const cs_oid *head, int head_valid, const oid_list *keep)
{
	ref_list old = {NULL, NULL, 0, 0};
	char prefix[160], ref[256];
	int error;

	*changed = 0;
	snprintf(prefix, sizeof(prefix), CS_REF_PEERS "%s/", peer);
	if ((error = cs_repo_lock(repo)) < 0)
		return error;
	if ((error = cs_repo_ref_foreach(repo, prefix, collect_named, &old)) <
	    0)
		goto done;
	/* The new refs first, then the old ones that are not among them:
	 * whatever happens in between, every kept commit is held. */
	for (size_t i = 0; i < keep->n; i++) {
		cs_oid cur;
		int has;

		peer_ref_name(ref, sizeof(ref), prefix, head_valid,
			      &keep->ids[i]);
		has = cs_repo_ref_read(&cur, repo, ref) == 0;
		if (has && cs_oid_cmp(&cur, &keep->ids[i]) == 0)
			continue;
		if ((error = cs_repo_ref_cas(repo, ref, &keep->ids[i],
					     has ? &cur : NULL, "fetch")) < 0)
			goto done;
		*changed = 1;
	}
	for (size_t i = 0; i < old.n; i++) {
		int kept = 0;

		for (size_t k = 0; k < keep->n && !kept; k++) {
			peer_ref_name(ref, sizeof(ref), prefix, head_valid,
				      &keep->ids[k]);
			kept = strcmp(old.names[i], ref) == 0;
		}
		if (!kept) {
			cs_repo_ref_cas(repo, old.names[i], NULL, &old.ids[i],
					NULL);
			*changed = 1;
		}
	}
done:
	cs_repo_unlock(repo);
	ref_list_clear(&old);
	return error;
}

static json_t *
rejection_doc(const char *peer, const char *source, const cs_oid *head,
	      const cs_verify_report *report)
{
	char hex[CS_OID_HEXSZ + 1];
	json_t *doc, *issues = json_array();

	for (size_t i = 0; i < report->nissues; i++) {
		const cs_verify_issue *is = &report->issues[i];

		cs_oid_fmt(hex, &is->commit);
		json_array_append_new(issues,
				      json_pack("{s:s, s:s, s:b}", "commit", hex,
						"reason", is->reason,
						"inherited", is->inherited));
	}
	cs_oid_fmt(hex, head);
	doc = json_pack("{s:s, s:s, s:s, s:I, s:o}", "peer", peer, "source",
			source, "head", hex, "time", (json_int_t)time(NULL),
			"issues", issues);
	return doc;
}

/*
 * A large fetch is prechecked (precheck.h): once every object has arrived,
 * while libgit2 resolves the pack's deltas on one core, the files stored
 * whole in the pack are checked on the other against the node's own
 * consortium, and verification skips those that passed.
 */
#define PRECHECK_MIN_OBJECTS 1000

typedef struct {
	cs_node *node;
	cs_repo *staged;
	const cs_transfer_limits *caller;
	cs_precheck *precheck;
	int tried;
} fetch_watch;

/* The pack libgit2's indexer is writing: its temporary file in the
 * staging store (pack_git2_*), the largest if there are several. */
static char *
pack_being_indexed(cs_repo *staged)
{
	char *dir = NULL, *best = NULL;
	off_t best_size = -1;
	struct dirent *e;
	DIR *d;

	if (asprintf(&dir, "%s/objects/pack", cs_repo_path(staged)) < 0)
		return NULL;
	if ((d = opendir(dir)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			struct stat st;
			char *path;

			if (strncmp(e->d_name, "pack_git2_", 10) != 0 ||
			    strchr(e->d_name, '.') ||
			    asprintf(&path, "%s/%s", dir, e->d_name) < 0)
				continue;
			if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
			    st.st_size > best_size) {
				free(best);
				best = path;
				best_size = st.st_size;
			} else {
				free(path);
			}
		}
		closedir(d);
	}
	free(dir);
	return best;
}

static void
start_precheck(fetch_watch *w)
{
	cs_repo *repo = cs_node_repo(w->node);
	cs_oid main, tree;
	char *pack;

	if (cs_node_main(&main, w->node) < 0 ||
	    cs_repo_commit_tree(&tree, repo, &main) < 0 ||
	    (pack = pack_being_indexed(w->staged)) == NULL)
		return;
	/* Best effort: without it, verification checks every file. */
	(void)cs_precheck_start(&w->precheck, pack, cs_repo_path(repo), &tree);
	free(pack);
}

static void
watch_progress(const cs_transfer_progress *pr, void *arg)
{
	fetch_watch *w = arg;

	if (w->caller && w->caller->progress)
		w->caller->progress(pr, w->caller->progress_arg);
	if (w->tried || pr->total_objects < PRECHECK_MIN_OBJECTS ||
	    pr->objects < pr->total_objects)
		return;
	w->tried = 1;
	start_precheck(w);
}

int
cs_sync_fetch(cs_fetch_result *result, cs_node *node,
	      const cs_fetch_options *fo)
{
	cs_repo *repo = cs_node_repo(node), *staged;
	cs_staging *staging = NULL;
	cs_verify_options opts;
	oid_list held = {NULL, 0, 0}, keep = {NULL, 0, 0};
	const char *peer = fo->peer, *source = fo->source;
	SSL_CTX *client = NULL;
	fetch_watch watch = {node, NULL, fo->limits, NULL, 0};
	cs_transfer_limits limits;
	char spec[256];
	cs_oid genesis;
	int error, changed;

	memset(result, 0, sizeof(*result));
	if (!peer_name_valid(peer))
		return cs_error_set(CS_EINVALID,
				    "peer name \"%s\" must be 2-32 characters"
				    " a-z, 0-9 and '-'",
				    peer);
	if ((error = cs_node_genesis(&genesis, node)) < 0)
		return error;
	cs_staging_clean(node); /* left by a process that died mid-transfer */
	if ((error = cs_staging_create(&staging, node, peer)) < 0)
		return error;
	staged = cs_staging_repo(staging);
	snprintf(spec, sizeof(spec), "+refs/heads/main:refs/fetched/main");
	if (strncmp(source, "https://", 8) == 0) {
		const char *specs[1] = {spec};

		if (fo->peer_hash == NULL) {
			error = cs_error_set(CS_EINVALID,
					     "%s: no key to check the peer"
					     " with", source);
			goto done;
		}
		limits = fo->limits ? *fo->limits : (cs_transfer_limits){0};
		limits.progress = watch_progress;
		limits.progress_arg = &watch;
		watch.staged = staged;
		error = cs_tls_client_ctx(&client, node);
		if (error == 0)
			error = cs_transport_fetch(staged, client, source,
						   fo->peer_hash, specs, 1,
						   &limits);
		cs_precheck_stop(watch.precheck);
		result->prechecked = cs_precheck_count(watch.precheck);
		if (error < 0)
			goto done;
	} else if (cs_bundle_is(source)) {
		if ((error = cs_bundle_read(staged, source, "refs/fetched/main",
					    fo->limits ? fo->limits->max_bytes
						       : 0)) < 0)
			goto done;
	} else if ((error = cs_repo_fetch(staged, source, spec)) < 0) {
		error = cs_error_prefix(error, "cannot fetch from '%s'", source);
		goto done;
	}
	if ((error = cs_repo_ref_read(&result->head, staged,
				      "refs/fetched/main")) < 0)
		goto done;

	/* Judge the fetched history with every held head's revocations. */
	if ((error = cs_repo_ref_foreach(repo, "refs/", collect_ref, &held)) <
	    0)
		goto done;
	for (size_t i = 0; i < held.n; i++)
		if (cs_oid_cmp(&held.ids[i], &result->head) == 0)
			result->up_to_date = 1;
	memset(&opts, 0, sizeof(opts));
	opts.genesis = &genesis;
	opts.tips = &result->head;
	opts.ntips = 1;
	opts.held = held.ids;
	opts.nheld = held.n;
	opts.prechecked = watch.precheck;
	if ((error = verify_held(&result->report, node, staged, &opts)) < 0)
		goto done;
	if (result->report->protocol) {
		/* Not a verdict: this node cannot judge what it does not
		 * implement.  Nothing is rejected; the node stops writing
		 * until it is upgraded. */
		cs_node_upgrade_needed(node, result->report->protocol, source);
		error = cs_error_set(CS_EPERM,
				     "the history from '%s' uses protocol"
				     " version %d, which this cartosync does"
				     " not implement: upgrade to go on",
				     source, result->report->protocol);
		goto done;
	}
	if ((error = valid_frontier(&keep, staged, &result->head,
				    result->report)) < 0)
		goto done;
	result->rejected = result->report->nissues;
	if (keep.n &&
	    (error = cs_staging_promote(staging, keep.ids, keep.n,
					result->rejected == 0)) < 0)
		goto done;
	if (result->rejected) {
		json_t *why = rejection_doc(peer, source, &result->head,
					    result->report);

		cs_staging_quarantine(staging, &result->head, why);
		json_decref(why);
	}
	if ((error = set_peer_refs(&changed, repo, peer, &result->head,
				   result->rejected == 0, &keep)) < 0)
		goto done;
	if (result->rejected == 0) {
		cs_verify_report_free(result->report);
		result->report = NULL;
	}
done:
	cs_precheck_free(watch.precheck);
	SSL_CTX_free(client);
	cs_staging_free(staging);
	free(held.ids);
	free(keep.ids);
	return error;
}

int
cs_sync_check_pushed(cs_node *node, const char *const *refs,
		     const cs_oid *heads, size_t n)
{
	cs_repo *repo = cs_node_repo(node), *judged = repo;
	const char *quarantine = getenv("GIT_QUARANTINE_PATH");
	cs_staging *staging = NULL;
	cs_verify_report *report = NULL;
	cs_verify_options opts;
	oid_list held = {NULL, 0, 0};
	cs_oid genesis;
	int error;

	if (n == 0)
		return 0;
	if ((error = cs_node_genesis(&genesis, node)) < 0)
		return error;
	/* git receive-pack keeps the pushed objects in a quarantine
	 * directory until this check says yes: judge them in a staging
	 * store that reads both. */
	if (quarantine == NULL)
		quarantine = getenv("GIT_OBJECT_DIRECTORY");
	if (quarantine) {
		if ((error = cs_staging_create(&staging, node, "push")) < 0 ||
		    (error = cs_staging_borrow(staging, quarantine)) < 0)
			goto done;
		judged = cs_staging_repo(staging);
	}
	if ((error = cs_repo_ref_foreach(repo, "refs/", collect_ref, &held)) <
	    0)
		goto done;
	memset(&opts, 0, sizeof(opts));
	opts.genesis = &genesis;
	opts.tips = heads;
	opts.ntips = n;
	opts.held = held.ids;
	opts.nheld = held.n;
	if ((error = verify_held(&report, node, judged, &opts)) < 0)
		goto done;
	if (report->protocol) {
		cs_node_upgrade_needed(node, report->protocol, "a push");
		error = cs_error_set(CS_EPERM,
				     "the pushed history uses protocol version"
				     " %d, which this node does not implement"
				     " yet", report->protocol);
	} else if (report->nissues) {
		char hex[CS_OID_HEXSZ + 1];
		const char *ref = "?";

		cs_oid_fmt(hex, &report->issues[0].commit);
		for (size_t i = 0; i < n; i++)
			if (cs_oid_cmp(&heads[i], &report->issues[0].commit) ==
				    0 ||
			    cs_repo_is_ancestor(judged,
						&report->issues[0].commit,
						&heads[i]) == 1)
				ref = refs[i];
		error = cs_error_set(CS_EVERIFY,
				     "%s: commit %s does not verify: %s%s", ref,
				     hex, report->issues[0].reason,
				     report->nissues > 1 ? " (and more)" : "");
	}
done:
	cs_verify_report_free(report);
	cs_staging_free(staging);
	free(held.ids);
	return error;
}

void
cs_fetch_result_dispose(cs_fetch_result *result)
{
	cs_verify_report_free(result->report);
	result->report = NULL;
}


/*
 * Whether `c` is an edit this node signed: its author is the node's
 * organisation with the node's key fingerprint as address.
 */
static int
own_edit(cs_node *node, const cs_commit *c)
{
	const cs_key *key = NULL;
	char *fp;
	int own;

	if (c->kind != CS_COMMIT_EDIT || c->parent_count != 1 ||
	    cs_node_key(&key, node) < 0 ||
	    (fp = cs_key_fingerprint(key)) == NULL)
		return 0;
	own = c->author.email && strcmp(c->author.email, fp) == 0 &&
	      c->author.name && strcmp(c->author.name, cs_node_org(node)) == 0;
	free(fp);
	return own;
}

static int
keep_own_inherited(cs_node *node, const cs_verify_report *report)
{
	cs_repo *repo = cs_node_repo(node);

	for (size_t i = 0; i < report->nissues; i++) {
		const cs_verify_issue *is = &report->issues[i];
		cs_commit *c = NULL;
		char ref[128], hex[CS_OID_HEXSZ + 1];
		cs_oid held;
		int own;

		if (!is->inherited ||
		    cs_repo_read_commit(&c, repo, &is->commit) < 0)
			continue;
		own = own_edit(node, c);
		cs_commit_free(c);
		if (!own)
			continue;
		cs_oid_fmt(hex, &is->commit);
		snprintf(ref, sizeof(ref), CS_REF_REAPPLY "%s", hex);
		if (cs_repo_ref_read(&held, repo, ref) == 0)
			continue;
		if (cs_repo_ref_cas(repo, ref, &is->commit, NULL,
				    "keep for re-applying") < 0)
			return cs_error_prefix(CS_ERROR,
					       "cannot keep edit %.12s", hex);
	}
	return 0;
}

/* ---- re-applying this node's edits on valid history ---- */

typedef struct {
	cs_oid from, to;
} oid_pair;

typedef struct {
	cs_node *node;
	const cs_oid *b_tree;
	cs_tree_update *updates;
	cs_oid *ids;
	char **paths;
	unsigned char *gone; /* the path is deleted */
	size_t n, cap;
	int error;
} change_ctx;

static json_t *
read_record(cs_repo *repo, const cs_oid *blob, const char *path)
{
	char *buf = NULL;
	size_t len;
	json_t *v = NULL;

	if (blob == NULL || cs_repo_read_blob(&buf, &len, repo, blob,
						 CS_RECORD_MAX_BYTES) < 0)
		return NULL;
	cs_json_parse(&v, buf, len, path);
	free(buf);
	return v;
}

/*
 * One path the edit changed, applied on the valid base: records field by
 * field (the fields the edit changed win: its author wrote them), any
 * other file as the edit left it.
 */
static int
apply_change(const cs_tree_change *ch, void *payload)
{
	change_ctx *x = payload;
	cs_repo *repo = cs_node_repo(x->node);
	json_t *base = NULL, *ours = NULL, *theirs = NULL, *merged = NULL;
	cs_field_conflicts conflicts = {NULL, 0};
	cs_oid here, out;
	const cs_oid *result = ch->new_id;
	int has_here, error = 0;

	has_here = cs_repo_tree_lookup(&here, NULL, repo, x->b_tree,
				       ch->path) == 0;
	if (strncmp(ch->path, "records/", 8) == 0 && ch->new_id &&
	    ch->old_id && has_here) {
		base = read_record(repo, ch->old_id, ch->path);
		ours = read_record(repo, &here, ch->path);
		theirs = read_record(repo, ch->new_id, ch->path);
		if (base && ours && theirs &&
		    cs_merge_record(&merged, base, ours, theirs, NULL,
				    &conflicts) == 0 && merged) {
			for (size_t i = 0; i < conflicts.count; i++) {
				const char *ptr = conflicts.items[i].pointer;
				json_t *v = *ptr ? cs_json_pointer_get(theirs,
								       ptr)
						 : NULL;

				if (*ptr == '\0') {
					json_decref(merged);
					merged = json_deep_copy(theirs);
					break;
				}
				cs_json_pointer_set(merged, ptr,
						    v ? json_deep_copy(v)
						      : NULL);
			}
			if ((error = cs_node_write_json(&out, x->node,
							merged)) < 0)
				goto done;
			result = &out;
		}
	}
	if ((result == NULL && !has_here) ||
	    (result && has_here && cs_oid_cmp(result, &here) == 0))
		goto done; /* already so on the valid base */
	if (x->n == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 16;
		cs_tree_update *u = realloc(x->updates, cap * sizeof(*u));
		cs_oid *ids;
		char **paths;
		unsigned char *gone;

		if (u)
			x->updates = u;
		gone = realloc(x->gone, cap);
		if (gone)
			x->gone = gone;
		ids = realloc(x->ids, cap * sizeof(*ids));
		if (ids)
			x->ids = ids;
		paths = realloc(x->paths, cap * sizeof(*paths));
		if (paths)
			x->paths = paths;
		if (!u || !ids || !paths || !gone) {
			error = cs_error_set(CS_ERROR, "out of memory");
			goto done;
		}
		x->cap = cap;
	}
	if ((x->paths[x->n] = strdup(ch->path)) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	x->gone[x->n] = result == NULL;
	if (result)
		x->ids[x->n] = *result;
	x->n++;
done:
	cs_field_conflicts_clear(&conflicts);
	json_decref(base);
	json_decref(ours);
	json_decref(theirs);
	json_decref(merged);
	return error;
}

/*
 * The valid history an edit saw: from its parent down, the first valid
 * commits (a valid commit's ancestors are all valid), and for an own edit
 * already re-applied its new version.
 */
static int
frontier_of(oid_list *out, cs_repo *repo, const cs_commit *edit,
	    const cs_verify_report *report, const oid_pair *map, size_t nmap)
{
	oid_list todo = {NULL, 0, 0}, seen = {NULL, 0, 0};
	int error = 0;

	for (size_t p = 0; p < edit->parent_count; p++)
		if ((error = collect_ref(NULL, &edit->parents[p], &todo)) < 0)
			goto done;
	while (todo.n) {
		cs_oid id = todo.ids[--todo.n];
		cs_commit *c = NULL;
		int known = 0;

		for (size_t i = 0; i < seen.n && !known; i++)
			known = cs_oid_cmp(&seen.ids[i], &id) == 0;
		if (known)
			continue;
		if ((error = collect_ref(NULL, &id, &seen)) < 0)
			goto done;
		for (size_t i = 0; i < nmap && !known; i++)
			if (cs_oid_cmp(&map[i].from, &id) == 0) {
				known = 1;
				error = collect_ref(NULL, &map[i].to, out);
			}
		if (known) {
			if (error < 0)
				goto done;
			continue;
		}
		if (!cs_verify_report_rejects(report, &id)) {
			if ((error = collect_ref(NULL, &id, out)) < 0)
				goto done;
			continue;
		}
		if ((error = cs_repo_read_commit(&c, repo, &id)) < 0)
			goto done;
		for (size_t p = 0; p < c->parent_count && error == 0; p++)
			error = collect_ref(NULL, &c->parents[p], &todo);
		cs_commit_free(c);
		if (error < 0)
			goto done;
	}
done:
	free(todo.ids);
	free(seen.ids);
	return error;
}

/* Re-apply one kept edit; *to gets its new version (or the base, when
 * the valid history holds the change already). */
static int
reapply_one(cs_oid *to, cs_node *node, const cs_oid *id,
	    const cs_verify_report *report, const oid_pair *map, size_t nmap)
{
	cs_repo *repo = cs_node_repo(node);
	cs_commit *c = NULL;
	cs_history *h = NULL;
	oid_list frontier = {NULL, 0, 0};
	change_ctx x;
	cs_oid base, b_tree, p_tree, e_tree;
	char hex[CS_OID_HEXSZ + 1], *message = NULL;
	int in_main, error;

	memset(&x, 0, sizeof(x));
	cs_oid_fmt(hex, id);
	if ((error = cs_repo_read_commit(&c, repo, id)) < 0 ||
	    (error = frontier_of(&frontier, repo, c, report, map, nmap)) < 0)
		goto done;
	if (frontier.n == 0) {
		error = cs_error_set(CS_EVERIFY, "edit %.12s stands on no valid"
						 " history", hex);
		goto done;
	}
	if ((error = cs_history_load(&h, repo, frontier.ids, frontier.n)) <
		    0 ||
	    (error = cs_history_fold(&base, h)) < 0 ||
	    (error = cs_repo_commit_tree(&b_tree, repo, &base)) < 0 ||
	    (error = cs_repo_commit_tree(&p_tree, repo, &c->parents[0])) < 0)
		goto done;
	e_tree = c->tree;
	x.node = node;
	x.b_tree = &b_tree;
	if ((error = cs_repo_diff(repo, &p_tree, &e_tree, apply_change, &x)) <
		    0 ||
	    (error = x.error) < 0)
		goto done;
	if (x.n == 0) {
		*to = base;
		goto done;
	}
	for (size_t i = 0; i < x.n; i++) {
		x.updates[i].path = x.paths[i];
		x.updates[i].new_id = x.gone[i] ? NULL : &x.ids[i];
	}
	if (asprintf(&message, "%s\n\nRe-applied from %s, which stood on"
			       " history that does not verify.",
		     c->message ? c->message : "Edit", hex) < 0) {
		message = NULL;
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	error = cs_node_commit(to, &in_main, node, &base, x.updates, x.n,
			       message);
done:
	for (size_t i = 0; i < x.n; i++)
		free(x.paths[i]);
	free(x.paths);
	free(x.gone);
	free(x.ids);
	free(x.updates);
	free(message);
	free(frontier.ids);
	cs_history_free(h);
	cs_commit_free(c);
	return error;
}

/* The heads whose edits the node holds. */
static int
held_heads(ref_list *l, cs_repo *repo)
{
	static const char *const prefixes[] = {
		CS_REF_MAIN, CS_REF_EDITS, CS_REF_PEERS, CS_REF_INCOMING,
		"refs/cartosync/held/",
	};
	int error;

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(*prefixes); i++)
		if ((error = cs_repo_ref_foreach(repo, prefixes[i],
						 collect_named, l)) < 0)
			return error;
	return 0;
}

static int
integrate_once(cs_integrate_result *result, cs_node *node)
{
	cs_repo *repo = cs_node_repo(node);
	cs_history *history = NULL;
	cs_verify_options opts;
	ref_list heads = {NULL, NULL, 0, 0};
	cs_oid genesis, old, *valid = NULL, *tips = NULL;
	oid_list kept = {NULL, 0, 0};
	size_t nvalid = 0;
	int error, has_old;

	memset(result, 0, sizeof(*result));
	if ((error = cs_node_genesis(&genesis, node)) < 0)
		return error;
	if ((error = cs_repo_lock(repo)) < 0)
		return error;
	if ((error = held_heads(&heads, repo)) < 0)
		goto done;
	if (heads.n == 0) {
		error = cs_error_set(CS_ENOTFOUND, "the node holds no history");
		goto done;
	}

	/* Judge every held head together: a revocation one of them holds
	 * applies to the others.  The edits kept for re-applying are judged
	 * too, so that their valid ancestors are known. */
	if ((error = cs_repo_ref_foreach(repo, CS_REF_REAPPLY, collect_ref,
					 &kept)) < 0)
		goto done;
	if ((tips = calloc(heads.n + kept.n + 1, sizeof(*tips))) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	memcpy(tips, heads.ids, heads.n * sizeof(*tips));
	if (kept.n)
		memcpy(tips + heads.n, kept.ids, kept.n * sizeof(*tips));
	memset(&opts, 0, sizeof(opts));
	opts.genesis = &genesis;
	opts.tips = tips;
	opts.ntips = heads.n + kept.n;
	opts.held = heads.ids;
	opts.nheld = heads.n;
	if ((error = verify_held(&result->report, node, repo, &opts)) < 0)
		goto done;
	/* The valid commits: the valid heads, and below an invalid commit
	 * its valid parents (honest edits under a bad merge stay held). */
	if ((valid = calloc(heads.n + 2 * result->report->nissues + 1,
			    sizeof(*valid))) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < heads.n; i++) {
		if (cs_verify_report_rejects(result->report, &heads.ids[i]))
			result->rejected++;
		else
			valid[nvalid++] = heads.ids[i];
	}
	for (size_t i = 0; i < result->report->nissues; i++) {
		cs_commit *c = NULL;

		if (cs_repo_read_commit(&c, repo,
					&result->report->issues[i].commit) < 0)
			continue;
		for (size_t p = 0; p < c->parent_count; p++)
			if (!cs_verify_report_rejects(result->report,
						      &c->parents[p]))
				valid[nvalid++] = c->parents[p];
		cs_commit_free(c);
	}
	/* This node's own edits that stand on an invalid commit are kept by
	 * a ref until they are re-applied on valid history (reapply()):
	 * main is about to leave them behind. */
	if ((error = keep_own_inherited(node, result->report)) < 0)
		goto done;
	if (result->report->protocol) {
		error = cs_error_set(CS_EPERM,
				     "the consortium uses protocol version %d,"
				     " which this cartosync does not"
				     " implement: upgrade to merge",
				     result->report->protocol);
		goto done;
	}
	if (nvalid == 0) {
		error = cs_error_set(CS_EVERIFY, "no held history verifies");
		goto done;
	}

	if ((error = cs_history_load(&history, repo, valid, nvalid)) < 0 ||
	    (error = cs_history_fold(&result->main, history)) < 0)
		goto done;
	{
		cs_oid *fold_tips = NULL;

		if (cs_history_tips(&fold_tips, &result->tips, history) == 0)
			free(fold_tips);
	}
	result->merges = cs_history_merges_made(history);
	result->conflicts = cs_history_conflicts_found(history);

	has_old = cs_repo_ref_read(&old, repo, CS_REF_MAIN) == 0;
	if (!has_old || cs_oid_cmp(&old, &result->main) != 0) {
		if ((error = cs_repo_ref_cas(repo, CS_REF_MAIN, &result->main,
					     has_old ? &old : NULL,
					     "integrate")) < 0)
			goto done;
		result->changed = 1;
	}
	/* Edits that main now holds need no ref of their own. */
	for (size_t i = 0; i < heads.n; i++) {
		if (strncmp(heads.names[i], CS_REF_EDITS,
			    strlen(CS_REF_EDITS)) != 0 &&
		    strncmp(heads.names[i], "refs/cartosync/held/", 20) != 0)
			continue;
		if (cs_repo_is_ancestor(repo, &heads.ids[i], &result->main))
			cs_repo_ref_cas(repo, heads.names[i], NULL,
					&heads.ids[i], NULL);
	}
	error = 0;
done:
	cs_repo_unlock(repo);
	cs_history_free(history);
	ref_list_clear(&heads);
	free(valid);
	free(tips);
	free(kept.ids);
	return error;
}

/*
 * Re-apply the kept edits, parents first, each on the valid history it saw
 * (DESIGN.md §5): *count gets how many were committed anew.  An edit that
 * cannot be re-applied (this node's key may no longer write it, say) stays
 * kept and is reported.
 */
static int
reapply_kept(size_t *count, size_t *failed, cs_node *node,
	     const cs_verify_report *report)
{
	cs_repo *repo = cs_node_repo(node);
	oid_list kept = {NULL, 0, 0};
	cs_oid *order = NULL;
	oid_pair *map = NULL;
	size_t norder = 0, nmap = 0;
	int error;

	*count = *failed = 0;
	if ((error = cs_repo_ref_foreach(repo, CS_REF_REAPPLY, collect_ref,
					 &kept)) < 0 ||
	    kept.n == 0)
		goto done;
	if ((error = cs_repo_topo_order(&order, &norder, repo, kept.ids,
					kept.n)) < 0 ||
	    (map = calloc(kept.n, sizeof(*map))) == NULL) {
		if (error == 0)
			error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < norder; i++) {
		char ref[128], hex[CS_OID_HEXSZ + 1];
		int is_kept = 0;
		cs_oid to;

		for (size_t k = 0; k < kept.n && !is_kept; k++)
			is_kept = cs_oid_cmp(&kept.ids[k], &order[i]) == 0;
		if (!is_kept)
			continue;
		cs_oid_fmt(hex, &order[i]);
		if (reapply_one(&to, node, &order[i], report, map, nmap) < 0) {
			(*failed)++;
			continue;
		}
		map[nmap].from = order[i];
		map[nmap++].to = to;
		(*count)++;
		snprintf(ref, sizeof(ref), CS_REF_REAPPLY "%s", hex);
		cs_repo_ref_cas(repo, ref, NULL, &order[i], NULL);
	}
done:
	free(kept.ids);
	free(order);
	free(map);
	return error;
}

int
cs_sync_integrate(cs_integrate_result *result, cs_node *node)
{
	size_t reapplied = 0, failed = 0;
	int error;

	if ((error = integrate_once(result, node)) < 0)
		return error;
	if (result->report &&
	    (error = reapply_kept(&reapplied, &failed, node, result->report)) <
		    0)
		return error;
	if (reapplied) {
		cs_integrate_result_dispose(result);
		if ((error = integrate_once(result, node)) < 0)
			return error;
	}
	result->reapplied = reapplied;
	result->not_reapplied = failed;
	if (result->rejected == 0 && failed == 0) {
		cs_verify_report_free(result->report);
		result->report = NULL;
	}
	return 0;
}

void
cs_integrate_result_dispose(cs_integrate_result *result)
{
	cs_verify_report_free(result->report);
	result->report = NULL;
}
