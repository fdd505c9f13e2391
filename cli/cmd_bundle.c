/*
 * cartosync bundle create FILE [--since REV...] | apply FILE [--peer NAME]
 *                                                   [--no-merge]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/bundle.h"
#include "cartosync/error.h"
#include "cli.h"

#define MAX_SINCE 64

static const char usage[] =
	"usage: cartosync [-C DIR] bundle create FILE [--since REV]...\n"
	"       cartosync [-C DIR] bundle apply FILE [--peer NAME]"
	" [--no-merge]\n\n"
	"Carry history where there is no network, on a USB key.  'create'"
	" writes\n"
	"this node's main into FILE, a git bundle (stock git reads it too);"
	" with\n"
	"--since, only what main adds to commits the receiving node holds."
	"  'apply'\n"
	"brings a bundle in as a fetch from peer NAME (default \"bundle\")"
	" does:\n"
	"verified before anything is kept, invalid commits quarantined, then"
	" merged\n"
	"unless --no-merge is given.\n";

int
cmd_bundle(cli_ctx *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{"since", required_argument, NULL, 's'},
		{"peer", required_argument, NULL, 'p'},
		{"no-merge", no_argument, NULL, 'n'},
		{NULL, 0, NULL, 0},
	};
	const char *since_revs[MAX_SINCE], *peer = "bundle", *verb, *file;
	cs_oid since[MAX_SINCE];
	size_t nsince = 0, objects = 0;
	cs_node *node = NULL;
	int c, error, status, merge = 1;

	if (cli_help_requested(argc, argv, usage))
		return EXIT_OK;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (c == 's') {
			if (nsince == MAX_SINCE)
				return cli_usage(usage, "at most %d --since",
						 MAX_SINCE);
			since_revs[nsince++] = optarg;
		} else if (c == 'p')
			peer = optarg;
		else if (c == 'n')
			merge = 0;
		else
			return cli_usage(usage, NULL);
	}
	if (optind + 2 != argc)
		return cli_usage(usage, "bundle takes create|apply and FILE");
	verb = argv[optind];
	file = argv[optind + 1];
	if (strcmp(verb, "create") != 0 && strcmp(verb, "apply") != 0)
		return cli_usage(usage, "'%s' is not a bundle command", verb);
	if ((status = cli_open_node(cli, &node)) != 0)
		return status;
	if (strcmp(verb, "create") == 0) {
		for (size_t i = 0; i < nsince; i++)
			if ((error = cli_resolve(&since[i], cs_node_repo(node),
						 since_revs[i])) < 0) {
				status = cli_fail(error);
				goto done;
			}
		if ((error = cs_bundle_create(&objects, node, file, since,
					      nsince)) < 0) {
			status = cli_fail(error);
			goto done;
		}
		cli_say("wrote main to %s (%zu objects)\n", file, objects);
		if (cli->json) {
			json_t *out = json_pack("{s:s, s:I}", "file", file,
						"objects", (json_int_t)objects);

			cli_print_json(out);
			json_decref(out);
		}
		goto done;
	}
	if (!cs_bundle_is(file)) {
		status = cli_error("'%s' is not a git bundle", file);
		goto done;
	}
	status = cli_fetch(cli, node, file, peer, merge);
done:
	cs_node_free(node);
	return status;
}
