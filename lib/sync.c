#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/error.h"
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
	cs_oid genesis, main_id, old;
	int error, has_main, has_old;

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
	error = cs_repo_ref_cas(repo, ref, &result->head, has_old ? &old : NULL,
				"fetch");
	if (error == 0) {
		has_main = cs_repo_ref_read(&main_id, repo, CS_REF_MAIN) == 0;
		if (has_main && cs_oid_cmp(&main_id, &result->head) == 0)
			result->up_to_date = 1;
		else if (has_main &&
			 cs_repo_is_ancestor(repo, &main_id, &result->head)) {
			error = cs_repo_ref_cas(repo, CS_REF_MAIN,
						&result->head, &main_id,
						"fast-forward");
			result->fast_forwarded = error == 0;
		} else if (has_main &&
			   cs_repo_is_ancestor(repo, &result->head, &main_id)) {
			result->up_to_date = 1;
		}
	}
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
