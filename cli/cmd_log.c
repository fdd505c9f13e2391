/*
 * cartosync log [ID] [-n N]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cartosync/commit.h"
#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/map.h"
#include "cli.h"

static const char usage[] =
	"usage: cartosync [-C DIR] log [ID] [-n COUNT]\n\n"
	"Show the history of main, newest first, or only the edits that"
	" changed\n"
	"record ID: commit, date (UTC), organisation, message.\n";

/* Whether `path` differs between a commit's tree and its parent's. */
static int
touches(cs_repo *repo, const cs_commit *c, const char *path)
{
	cs_oid tree_now, tree_before, a, b;
	int ea, eb;

	if (c->kind == CS_COMMIT_MERGE)
		return 0;
	tree_now = c->tree;
	ea = cs_repo_tree_lookup(&a, NULL, repo, &tree_now, path);
	if (c->parent_count == 0)
		return ea == 0;
	if (cs_repo_commit_tree(&tree_before, repo, &c->parents[0]) < 0)
		return 0;
	eb = cs_repo_tree_lookup(&b, NULL, repo, &tree_before, path);
	if (ea != eb)
		return 1;
	return ea == 0 && cs_oid_cmp(&a, &b) != 0;
}

int
cmd_log(cli_ctx *cli, int argc, char **argv)
{
	cs_node *node = NULL;
	json_t *record = NULL, *out = NULL;
	cs_oid head, *order = NULL;
	char *path = NULL;
	const char *id = NULL;
	size_t n = 0, shown = 0;
	long limit = -1;
	int c, error, status;

	if (cli_help_requested(argc, argv, usage))
		return EXIT_OK;
	optind = 1;
	while ((c = getopt(argc, argv, "n:")) != -1) {
		if (c != 'n')
			return cli_usage(usage, NULL);
		limit = strtol(optarg, NULL, 10);
	}
	if (optind + 1 == argc)
		id = argv[optind];
	else if (optind != argc)
		return cli_usage(usage, "log takes at most one record ID");
	if ((status = cli_open_node(cli, &node)) != 0)
		return status;
	out = json_array();
	if ((error = cli_main_head(node, &head)) < 0 ||
	    (id && (error = cs_map_find(&record, &path, cs_node_repo(node),
					&head, id)) < 0) ||
	    (error = cs_repo_topo_order(&order, &n, cs_node_repo(node), &head,
					1)) < 0) {
		status = cli_fail(error);
		goto done;
	}
	for (size_t i = n; i-- > 0 && (limit < 0 || (long)shown < limit);) {
		cs_commit *commit = NULL;
		char hex[CS_OID_HEXSZ + 1], date[32], *nl;
		time_t t;
		struct tm tm;

		if (cs_repo_read_commit(&commit, cs_node_repo(node),
					&order[i]) < 0)
			continue;
		if (path && !touches(cs_node_repo(node), commit, path)) {
			cs_commit_free(commit);
			continue;
		}
		cs_oid_fmt(hex, &order[i]);
		t = (time_t)commit->committer.time;
		gmtime_r(&t, &tm);
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M", &tm);
		if ((nl = strchr(commit->message, '\n')))
			*nl = '\0';
		if (cli->json)
			json_array_append_new(
				out,
				json_pack("{s:s, s:I, s:s, s:s, s:s}", "commit",
					  hex, "time",
					  (json_int_t)commit->committer.time,
					  "org", commit->author.name, "kind",
					  commit->kind == CS_COMMIT_MERGE
						  ? "merge"
						  : "edit",
					  "message", commit->message));
		else
			cli_say("%.12s %s %-8s %s\n", hex, date,
				commit->author.name, commit->message);
		shown++;
		cs_commit_free(commit);
	}
	if (cli->json)
		cli_print_json(out);
	status = EXIT_OK;
done:
	json_decref(out);
	json_decref(record);
	free(path);
	free(order);
	cs_node_free(node);
	return status;
}
