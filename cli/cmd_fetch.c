/*
 * cartosync fetch SOURCE [--peer NAME] [--no-merge]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/error.h"
#include "cartosync/sync.h"
#include "cli.h"

static const char usage[] =
	"usage: cartosync [-C DIR] fetch SOURCE [--peer NAME] [--no-merge]\n\n"
	"Bring in the history of another node on this machine (SOURCE: its"
	" directory,\n"
	"a clone of it, or a copy on a USB key).  The history is staged and"
	" verified\n"
	"before anything is kept: if it verifies it is kept as"
	" refs/peers/NAME/main\n"
	"(NAME defaults to \"origin\"); commits that do not verify stay out,"
	" in\n"
	"DIR/quarantine/NAME/ with the reason, and the valid history below"
	" them is\n"
	"kept.  Then main becomes the merge of everything the node holds, as\n"
	"'cartosync merge' does, unless --no-merge is given.  Peers over the"
	" network:\n"
	"'cartosync peers' and 'cartosync sync'.\n";

int
cli_fetch(cli_ctx *cli, cs_node *node, const char *source, const char *peer,
	  int merge)
{
	cs_fetch_options fo = {peer, source, NULL, NULL};
	cs_fetch_result result;
	char hex[CS_OID_HEXSZ + 1];
	int error, status;

	if ((error = cs_sync_fetch(&result, node, &fo)) < 0) {
		status = cli_fail(error);
		cli_say("nothing was kept\n");
		cs_fetch_result_dispose(&result);
		return status;
	}
	cs_oid_fmt(hex, &result.head);
	if (result.rejected) {
		cli_print_rejections(result.report);
		cli_say("%s: %zu commit%s of %.12s rejected, kept in"
			" quarantine; the valid part is kept\n",
			peer, result.rejected,
			result.rejected == 1 ? "" : "s", hex);
	} else
		cli_say("%s: %s (%.12s)\n", peer,
			result.up_to_date ? "nothing new"
					  : "fetched and verified",
			hex);
	status = merge ? cli_integrate(cli, node) : EXIT_OK;
	if (result.rejected && status == EXIT_OK)
		status = EXIT_VERIFY;
	if (!merge && cli->json) {
		json_t *out = json_pack("{s:s, s:s, s:b}", "peer", peer, "head",
					hex, "up_to_date", result.up_to_date);

		cli_print_json(out);
		json_decref(out);
	}
	cs_fetch_result_dispose(&result);
	return status;
}

int
cmd_fetch(cli_ctx *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{"peer", required_argument, NULL, 'p'},
		{"no-merge", no_argument, NULL, 'n'},
		{NULL, 0, NULL, 0},
	};
	const char *peer = "origin";
	cs_node *node = NULL;
	int c, status, merge = 1;

	if (cli_help_requested(argc, argv, usage))
		return EXIT_OK;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (c == 'p')
			peer = optarg;
		else if (c == 'n')
			merge = 0;
		else
			return cli_usage(usage, NULL);
	}
	if (optind + 1 != argc)
		return cli_usage(usage, "fetch takes one SOURCE");
	if ((status = cli_open_node(cli, &node)) != 0)
		return status;
	status = cli_fetch(cli, node, argv[optind], peer, merge);
	cs_node_free(node);
	return status;
}
