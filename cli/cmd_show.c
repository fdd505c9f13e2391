/*
 * cartosync show ID
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/duplicates.h"
#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/map.h"
#include "cartosync/record.h"
#include "cli.h"

static const char usage[] =
	"usage: cartosync [-C DIR] show ID\n\n"
	"Show record ID as of main: a summary and the stored file on stderr,"
	" or the\n"
	"record on stdout with --json.  A record merged into another (see"
	" 'cartosync\n"
	"conflicts merge-duplicate') says which.\n";

int
cmd_show(cli_ctx *cli, int argc, char **argv)
{
	cs_node *node = NULL;
	json_t *record = NULL, *decisions = NULL, *verified;
	const char *into;
	char *path = NULL, *text = NULL;
	size_t len = 0;
	cs_oid head;
	int error, status;

	if (cli_help_requested(argc, argv, usage))
		return EXIT_OK;
	if (argc != 2)
		return cli_usage(usage, "show takes one record ID");
	if ((status = cli_open_node(cli, &node)) != 0)
		return status;
	if ((error = cli_main_head(node, &head)) < 0 ||
	    (error = cs_map_find(&record, &path, cs_node_repo(node), &head,
				 argv[1])) < 0 ||
	    (error = cs_json_canonical(&text, &len, record)) < 0) {
		status = cli_fail(error);
		goto done;
	}
	if (cli->json) {
		cli_print_json(record);
	} else {
		verified = json_object_get(record, "x_verified");
		cli_say("%s\n  %s %s, owner %s, %s\n  verified %s by %s (%s)\n",
			json_string_value(json_object_get(record, "name"))
				? json_string_value(
					  json_object_get(record, "name"))
				: "(no name)",
			cs_record_type(record), cs_record_id(record),
			cs_record_owner(record),
			json_string_value(json_object_get(record, "x_status")),
			json_string_value(json_object_get(verified, "date")),
			json_string_value(json_object_get(verified, "by")),
			json_string_value(json_object_get(verified, "method")));
		/* The redirect is a help, not the record: a history whose
		 * decisions do not load still shows its records. */
		if (cs_duplicates_decisions(&decisions, cs_node_repo(node),
					    &head) == 0 &&
		    (into = cs_duplicates_merged_into(decisions, argv[1])))
			cli_say("  merged into %s\n", into);
		cli_say("  %s\n\n%s", path, text);
	}
	status = EXIT_OK;
done:
	json_decref(record);
	json_decref(decisions);
	free(path);
	free(text);
	cs_node_free(node);
	return status;
}
