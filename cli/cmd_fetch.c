/*
 * cartosync fetch SOURCE [--peer NAME]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/error.h"
#include "cartosync/sync.h"
#include "cli.h"

static const char usage[] =
	"usage: cartosync [-C DIR] fetch SOURCE [--peer NAME]\n\n"
	"Bring in the history of another node on this machine (SOURCE: its"
	" directory,\n"
	"a clone of it, or a copy on a USB key).  The history is verified"
	" before any\n"
	"ref moves; it is kept as refs/peers/NAME/main (NAME defaults to"
	" \"origin\")\n"
	"and main fast-forwards to it when main is in its past.\n";

int
cmd_fetch(cli_ctx *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{"peer", required_argument, NULL, 'p'},
		{NULL, 0, NULL, 0},
	};
	const char *peer = "origin";
	cs_fetch_result result;
	cs_node *node = NULL;
	char hex[CS_OID_HEXSZ + 1];
	int c, error, status;

	if (cli_help_requested(argc, argv, usage))
		return EXIT_OK;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (c != 'p')
			return cli_usage(usage, NULL);
		peer = optarg;
	}
	if (optind + 1 != argc)
		return cli_usage(usage, "fetch takes one SOURCE");
	if ((status = cli_open_node(cli, &node)) != 0)
		return status;
	error = cs_sync_fetch(&result, node, argv[optind], peer);
	if (error == CS_EVERIFY && result.report) {
		for (size_t i = 0; i < result.report->nissues; i++) {
			cs_oid_fmt(hex, &result.report->issues[i].commit);
			fprintf(stderr, "cartosync: commit %s: %s\n", hex,
				result.report->issues[i].reason);
		}
	}
	if (error < 0) {
		status = cli_fail(error);
		cli_say("nothing was integrated\n");
		goto done;
	}
	cs_oid_fmt(hex, &result.head);
	if (cli->json) {
		json_t *out = json_pack("{s:s, s:s, s:b, s:b}", "peer", peer,
					"head", hex, "fast_forwarded",
					result.fast_forwarded, "up_to_date",
					result.up_to_date);

		cli_print_json(out);
		json_decref(out);
	}
	if (result.fast_forwarded)
		cli_say("main is now %s\n", hex);
	else if (result.up_to_date)
		cli_say("already up to date\n");
	else
		cli_say("%s's history (%.12s) diverges from main; it is kept"
			" as refs/peers/%s/main until it is merged\n",
			peer, hex, peer);
	status = EXIT_OK;
done:
	cs_fetch_result_dispose(&result);
	cs_node_free(node);
	return status;
}
