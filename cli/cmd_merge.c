/*
 * cartosync merge [REF...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/error.h"
#include "cartosync/sync.h"
#include "cli.h"

static const char usage[] =
	"usage: cartosync [-C DIR] merge [REF...]\n\n"
	"Make main the merge of every history this node holds: main, edits"
	" held\n"
	"while main moved, peers' heads, and each REF given (a commit id or a"
	" ref\n"
	"of this repository, kept from now on).  Everything is verified"
	" first; a\n"
	"head that does not verify is left out and reported.  main is a"
	" function\n"
	"of the edits held, so two nodes holding the same edits have the same"
	" main,\n"
	"and main may move to a commit that does not descend from the"
	" previous one\n"
	"(docs/merge.md).\n";

void
cli_print_rejections(const cs_verify_report *report)
{
	char hex[CS_OID_HEXSZ + 1];

	for (size_t i = 0; i < report->nissues; i++) {
		if (report->issues[i].inherited)
			continue;
		cs_oid_fmt(hex, &report->issues[i].commit);
		fprintf(stderr, "cartosync: commit %s: %s\n", hex,
			report->issues[i].reason);
	}
}

int
cli_integrate(cli_ctx *cli, cs_node *node)
{
	cs_integrate_result result;
	char hex[CS_OID_HEXSZ + 1];
	int error;

	error = cs_sync_integrate(&result, node);
	if (result.report && result.rejected)
		cli_print_rejections(result.report);
	if (error < 0) {
		cs_integrate_result_dispose(&result);
		return cli_fail(error);
	}
	cs_oid_fmt(hex, &result.main);
	if (cli->json) {
		json_t *out = json_pack(
			"{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I}", "main", hex,
			"changed", result.changed, "tips",
			(json_int_t)result.tips, "merges",
			(json_int_t)result.merges, "conflicts",
			(json_int_t)result.conflicts, "rejected",
			(json_int_t)result.rejected, "reapplied",
			(json_int_t)result.reapplied, "not_reapplied",
			(json_int_t)result.not_reapplied);

		cli_print_json(out);
		json_decref(out);
	}
	if (result.rejected)
		cli_say("%zu held head%s left out: %s not verify\n",
			result.rejected, result.rejected == 1 ? "" : "s",
			result.rejected == 1 ? "it does" : "they do");
	if (result.reapplied)
		cli_say("%zu edit%s of this node re-applied on valid history,"
			" re-signed\n",
			result.reapplied, result.reapplied == 1 ? "" : "s");
	if (result.not_reapplied)
		cli_say("%zu edit%s of this node stand%s on history that does"
			" not verify and could not be re-applied: kept under"
			" refs/cartosync/reapply/\n",
			result.not_reapplied,
			result.not_reapplied == 1 ? "" : "s",
			result.not_reapplied == 1 ? "s" : "");
	cli_say("main %s %.12s (%zu edit%s folded, %zu merge%s made",
		result.changed ? "is now" : "stays", hex, result.tips,
		result.tips == 1 ? "" : "s", result.merges,
		result.merges == 1 ? "" : "s");
	if (result.conflicts)
		cli_say(", %zu conflicting field%s: see 'cartosync"
			" conflicts'",
			result.conflicts, result.conflicts == 1 ? "" : "s");
	cli_say(")\n");
	cs_integrate_result_dispose(&result);
	return EXIT_OK;
}

int
cmd_merge(cli_ctx *cli, int argc, char **argv)
{
	cs_node *node = NULL;
	int status;

	if (cli_help_requested(argc, argv, usage))
		return EXIT_OK;
	if ((status = cli_open_node(cli, &node)) != 0)
		return status;
	for (int i = 1; i < argc; i++) {
		cs_oid id;
		char ref[128], hex[CS_OID_HEXSZ + 1];
		int error = cli_resolve(&id, cs_node_repo(node), argv[i]);

		if (error < 0) {
			status = cli_fail(error);
			goto done;
		}
		cs_oid_fmt(hex, &id);
		snprintf(ref, sizeof(ref), "refs/cartosync/held/%s", hex);
		error = cs_repo_ref_cas(cs_node_repo(node), ref, &id, NULL,
					"hold");
		if (error < 0 && error != CS_ECONFLICT) {
			status = cli_fail(error);
			goto done;
		}
	}
	status = cli_integrate(cli, node);
done:
	cs_node_free(node);
	return status;
}
