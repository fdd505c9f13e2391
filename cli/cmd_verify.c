/*
 * cartosync verify [REV]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/error.h"
#include "cartosync/verify.h"
#include "cli.h"

static const char usage[] =
	"usage: cartosync [-C DIR] verify [REV]\n\n"
	"Verify the history of REV (a commit id or a ref such as main), or of"
	" every\n"
	"ref of the node: commit grammar, signatures, each signer's authority"
	" as of\n"
	"the parent, records against the schemas in force, revocations, and"
	" each\n"
	"merge recomputed from its parents.  Names each bad commit and why;"
	" exit\n"
	"status 3 if any.\n";

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

int
cmd_verify(cli_ctx *cli, int argc, char **argv)
{
	cs_node *node = NULL;
	cs_verify_report *report = NULL;
	cs_verify_options opts;
	oid_list refs = {NULL, 0, 0};
	cs_oid genesis, tip;
	json_t *out = NULL, *issues;
	int error, status;

	if (cli_help_requested(argc, argv, usage))
		return EXIT_OK;
	if (argc > 2)
		return cli_usage(usage, "verify takes at most one REV");
	if ((status = cli_open_node(cli, &node)) != 0)
		return status;
	memset(&opts, 0, sizeof(opts));
	if ((error = cs_node_genesis(&genesis, node)) < 0 ||
	    (error = cs_repo_ref_foreach(cs_node_repo(node), "refs/",
					 collect_ref, &refs)) < 0)
		goto fail;
	opts.genesis = &genesis;
	if (argc == 2) {
		if ((error = cli_resolve(&tip, cs_node_repo(node), argv[1])) < 0)
			goto fail;
		opts.tips = &tip;
		opts.ntips = 1;
	} else {
		opts.tips = refs.ids;
		opts.ntips = refs.n;
	}
	opts.held = refs.ids;
	opts.nheld = refs.n;
	opts.all_merges = 1;
	if ((error = cs_verify(&report, cs_node_repo(node), &opts)) < 0)
		goto fail;

	issues = json_array();
	for (size_t i = 0; i < report->nissues; i++) {
		char hex[CS_OID_HEXSZ + 1];

		cs_oid_fmt(hex, &report->issues[i].commit);
		if (!cli->json)
			fprintf(stderr, "cartosync: commit %s: %s\n", hex,
				report->issues[i].reason);
		json_array_append_new(issues,
				      json_pack("{s:s, s:s, s:b}", "commit",
						hex, "reason",
						report->issues[i].reason,
						"inherited",
						report->issues[i].inherited));
	}
	out = json_pack("{s:I, s:I, s:I, s:I, s:o, s:b}", "commits",
			(json_int_t)report->commits, "edits",
			(json_int_t)report->edits, "merges",
			(json_int_t)report->merges, "unjudged",
			(json_int_t)report->unjudged, "invalid", issues,
			"valid", report->nissues == 0);
	if (report->protocol)
		json_object_set_new(out, "protocol",
				    json_integer(report->protocol));
	if (cli->json)
		cli_print_json(out);
	cli_say("verified %zu commits (%zu signed, %zu merges): %s\n",
		report->commits, report->edits, report->merges,
		report->nissues ? "some are invalid" : "all valid");
	if (report->protocol)
		cli_say("%zu commits are past protocol version %d, which this"
			" cartosync does not implement: upgrade to judge"
			" them\n",
			report->unjudged, report->protocol);
	status = report->nissues ? EXIT_VERIFY : EXIT_OK;
	goto done;
fail:
	status = cli_fail(error);
done:
	json_decref(out);
	cs_verify_report_free(report);
	free(refs.ids);
	cs_node_free(node);
	return status;
}
