/*
 * cartosync validate FILE...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/consortium.h"
#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/record.h"
#include "cli.h"

static const char usage[] =
	"usage: cartosync [-C DIR] validate FILE...\n\n"
	"Check record files (and the consortium's members.json, policy.json"
	" and\n"
	"protocol.json) against the schemas: those in force in the node's"
	" history\n"
	"when DIR is a node, else the installed ones ($CARTOSYNC_SCHEMA_DIR"
	" overrides).\n"
	"Every failure is printed as FILE: POINTER: MESSAGE.  Exit status 1"
	" if any\n"
	"file is invalid.\n";

/*
 * The schema of a consortium file, known by its name (members.json,
 * policy.json, default-policy.json, protocol.json), or NULL for a record.
 */
static const char *
consortium_schema(const char *path, const json_t *doc)
{
	static const char *const names[][2] = {
		{"members.json", "members.schema.json"},
		{"policy.json", "policy.schema.json"},
		{"default-policy.json", "policy.schema.json"},
		{"protocol.json", "protocol.schema.json"},
		{"duplicates.json", "duplicates.schema.json"},
	};
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	if (json_object_get(doc, "x_record_type"))
		return NULL;
	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
		if (strcmp(base, names[i][0]) == 0)
			return names[i][1];
	return NULL;
}

/* The schemas in force at the node's main, or the installed ones. */
static int
load_schemas(cs_schema_set **set, cs_consortium **state, cli_ctx *cli)
{
	cs_node *node = NULL;
	cs_oid head, tree;
	int error;

	*set = NULL;
	*state = NULL;
	if (cs_node_open(&node, cli->dir) == 0 && cs_node_main(&head, node) == 0 &&
	    cs_repo_commit_tree(&tree, cs_node_repo(node), &head) == 0 &&
	    cs_consortium_load(state, cs_node_repo(node), &tree) == 0) {
		cs_node_free(node);
		return 0;
	}
	cs_node_free(node);
	if ((error = cs_schema_set_new(set)) < 0 ||
	    (error = cs_schema_set_load_dir(*set, cli_installed_schema_dir())) <
		    0)
		return error;
	return 0;
}

int
cmd_validate(cli_ctx *cli, int argc, char **argv)
{
	cs_schema_set *set = NULL;
	cs_consortium *state = NULL;
	const cs_schema_set *schemas;
	json_t *results = json_array();
	int error, invalid = 0;

	if (cli_help_requested(argc, argv, usage)) {
		json_decref(results);
		return EXIT_OK;
	}
	if (argc < 2) {
		json_decref(results);
		return cli_usage(usage, "validate needs at least one FILE");
	}
	if ((error = load_schemas(&set, &state, cli)) < 0) {
		json_decref(results);
		return cli_fail(error);
	}
	schemas = state ? cs_consortium_schemas(state) : set;
	for (int i = 1; i < argc; i++) {
		cs_schema_errors errors = {NULL, 0};
		json_t *record = NULL, *list = json_array();
		char *buf = NULL;
		size_t len = 0;

		error = cli_read_input(&buf, &len, argv[i], CS_RECORD_MAX_BYTES);
		if (error == 0)
			error = cs_json_parse(&record, buf, len, argv[i]);
		if (error == 0 && consortium_schema(argv[i], record))
			error = cs_schema_validate(
				schemas, consortium_schema(argv[i], record),
				record, &errors);
		else if (error == 0)
			error = cs_record_check(schemas, record, NULL, argv[i],
						&errors);
		if (error < 0) {
			invalid++;
			if (errors.count == 0) {
				fprintf(stderr, "cartosync: %s\n",
					cs_error_last());
				json_array_append_new(
					list,
					json_pack("{s:s, s:s}", "pointer", "",
						  "message", cs_error_last()));
			}
			for (size_t k = 0; k < errors.count; k++) {
				fprintf(stderr, "cartosync: %s: %s: %s\n",
					argv[i],
					errors.items[k].pointer[0]
						? errors.items[k].pointer
						: "/",
					errors.items[k].message);
				json_array_append_new(
					list, json_pack("{s:s, s:s}", "pointer",
							errors.items[k].pointer,
							"message",
							errors.items[k].message));
			}
		} else if (!cli->json) {
			cli_say("%s: valid\n", argv[i]);
		}
		json_array_append_new(results,
				      json_pack("{s:s, s:b, s:o}", "file",
						argv[i], "valid", error == 0,
						"errors", list));
		cs_schema_errors_clear(&errors);
		json_decref(record);
		free(buf);
	}
	if (cli->json)
		cli_print_json(results);
	json_decref(results);
	cs_schema_set_free(set);
	cs_consortium_free(state);
	return invalid ? EXIT_ERROR : EXIT_OK;
}
