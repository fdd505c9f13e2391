#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/commit.h"
#include "cartosync/error.h"
#include "cartosync/history.h"
#include "cartosync/record.h"
#include "cartosync/repo.h"
#include "cartosync/sync.h"

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

static int
peer_name_valid(const char *peer)
{
	return cs_org_code_valid(peer);
}

int
cs_sync_fetch(cs_fetch_result *result, cs_node *node, const char *source,
	      const char *peer)
{
	cs_repo *repo = cs_node_repo(node);
	cs_verify_options opts;
	oid_list held = {NULL, 0, 0};
	char staging[160], ref[160];
	cs_oid genesis, old;
	int error, has_old;

	memset(result, 0, sizeof(*result));
	if (!peer_name_valid(peer))
		return cs_error_set(CS_EINVALID,
				    "peer name \"%s\" must be 2-32 characters"
				    " a-z, 0-9 and '-'",
				    peer);
	if ((error = cs_node_genesis(&genesis, node)) < 0)
		return error;
	snprintf(staging, sizeof(staging), "refs/cartosync/staging/%s", peer);
	snprintf(ref, sizeof(ref), CS_REF_PEERS "%s/main", peer);
	{
		char spec[256];

		snprintf(spec, sizeof(spec), "+refs/heads/main:%s", staging);
		if ((error = cs_repo_fetch(repo, source, spec)) < 0)
			return cs_error_prefix(error, "cannot fetch from '%s'",
					       source);
	}
	if ((error = cs_repo_ref_read(&result->head, repo, staging)) < 0)
		return error;

	/* Judge the fetched history with every held head's revocations. */
	if ((error = cs_repo_ref_foreach(repo, "refs/", collect_ref, &held)) <
	    0)
		goto done;
	memset(&opts, 0, sizeof(opts));
	opts.genesis = &genesis;
	opts.tips = &result->head;
	opts.ntips = 1;
	opts.held = held.ids;
	opts.nheld = held.n;
	if ((error = cs_verify(&result->report, repo, &opts)) < 0)
		goto done;
	if (result->report->nissues || result->report->protocol) {
		error = cs_error_set(
			CS_EVERIFY, "the history from '%s' does not verify: %s",
			source,
			result->report->nissues
				? result->report->issues[0].reason
				: "it uses a newer protocol version");
		goto done;
	}
	cs_verify_report_free(result->report);
	result->report = NULL;

	if ((error = cs_repo_lock(repo)) < 0)
		goto done;
	has_old = cs_repo_ref_read(&old, repo, ref) == 0;
	result->up_to_date = has_old && cs_oid_cmp(&old, &result->head) == 0;
	if (!result->up_to_date)
		error = cs_repo_ref_cas(repo, ref, &result->head,
					has_old ? &old : NULL, "fetch");
	cs_repo_unlock(repo);
done:
	/* The staging ref never outlives the fetch. */
	{
		cs_oid staged;

		if (cs_repo_ref_read(&staged, repo, staging) == 0)
			cs_repo_ref_cas(repo, staging, NULL, &staged, NULL);
	}
	free(held.ids);
	return error;
}

void
cs_fetch_result_dispose(cs_fetch_result *result)
{
	cs_verify_report_free(result->report);
	result->report = NULL;
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

		l->names = realloc(l->names, cap * sizeof(*l->names));
		l->ids = realloc(l->ids, cap * sizeof(*l->ids));
		if (l->names == NULL || l->ids == NULL)
			return cs_error_set(CS_ERROR, "out of memory");
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

/* The heads whose edits the node holds. */
static int
held_heads(ref_list *l, cs_repo *repo)
{
	static const char *const prefixes[] = {
		CS_REF_MAIN, CS_REF_EDITS, CS_REF_PEERS, "refs/cartosync/held/",
	};
	int error;

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(*prefixes); i++)
		if ((error = cs_repo_ref_foreach(repo, prefixes[i],
						 collect_named, l)) < 0)
			return error;
	return 0;
}

int
cs_sync_integrate(cs_integrate_result *result, cs_node *node)
{
	cs_repo *repo = cs_node_repo(node);
	cs_history *history = NULL;
	cs_verify_options opts;
	ref_list heads = {NULL, NULL, 0, 0};
	cs_oid genesis, old, *valid = NULL;
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
	 * applies to the others. */
	memset(&opts, 0, sizeof(opts));
	opts.genesis = &genesis;
	opts.tips = heads.ids;
	opts.ntips = heads.n;
	opts.held = heads.ids;
	opts.nheld = heads.n;
	if ((error = cs_verify(&result->report, repo, &opts)) < 0)
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
		cs_oid *tips = NULL;

		if (cs_history_tips(&tips, &result->tips, history) == 0)
			free(tips);
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
	if (result->rejected == 0) {
		cs_verify_report_free(result->report);
		result->report = NULL;
	}
	error = 0;
done:
	cs_repo_unlock(repo);
	cs_history_free(history);
	ref_list_clear(&heads);
	free(valid);
	return error;
}

void
cs_integrate_result_dispose(cs_integrate_result *result)
{
	cs_verify_report_free(result->report);
	result->report = NULL;
}
