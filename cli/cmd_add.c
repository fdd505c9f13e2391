/*
 * cartosync add FILE|-
 * cartosync rm ID
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/consortium.h"
#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/map.h"
#include "cartosync/record.h"
#include "cli.h"
#include "record_edit.h"

static const char add_usage[] =
	"usage: cartosync [-C DIR] add FILE|-\n\n"
	"Add the record in FILE (or on standard input) to the map, as a"
	" signed edit.\n"
	"Missing envelope fields are filled in: \"id\" (a new UUID),"
	" \"x_owner\" (this\n"
	"node's organisation), \"x_status\" (\"proposed\": a new record is"
	" not public\n"
	"until someone runs 'cartosync publish') and \"x_verified\" (today,"
	" by this\n"
	"organisation, self_report).  The record is validated against the"
	" schemas in\n"
	"force before anything is written.\n";

static const char rm_usage[] =
	"usage: cartosync [-C DIR] rm ID\n\n"
	"Remove record ID from the map, as a signed edit.  (To keep it"
	" visible as\n"
	"closed, prefer 'cartosync retire ID'.)\n";

int
cmd_add(cli_ctx *cli, int argc, char **argv)
{
	record_session s;
	json_t *record = NULL;
	char *buf = NULL, today[11], id[37];
	size_t len = 0;
	const char *status_value;
	int error, status;

	if (cli_help_requested(argc, argv, add_usage))
		return EXIT_OK;
	if (argc != 2)
		return cli_usage(add_usage, "add takes one FILE (or -)");
	if ((status = record_session_open(&s, cli)) != 0)
		return status;
	if ((error = cli_read_input(&buf, &len, argv[1], CS_RECORD_MAX_BYTES)) <
		    0 ||
	    (error = cs_json_parse(&record, buf, len,
				   strcmp(argv[1], "-") ? argv[1] : "stdin")) <
		    0) {
		status = cli_fail(error);
		goto done;
	}
	if (!json_is_object(record)) {
		status = cli_error("%s: a record is a JSON object", argv[1]);
		goto done;
	}
	if (json_object_get(record, "id") == NULL) {
		if ((error = cs_uuid_generate(id)) < 0) {
			status = cli_fail(error);
			goto done;
		}
		json_object_set_new(record, "id", json_string(id));
	}
	if (json_object_get(record, "x_owner") == NULL)
		json_object_set_new(record, "x_owner",
				    json_string(cs_node_org(s.node)));
	status_value = json_string_value(json_object_get(record, "x_status"));
	if (status_value == NULL) {
		json_object_set_new(record, "x_status",
				    json_string("proposed"));
	} else if (strcmp(status_value, "proposed") != 0) {
		status = cli_error("a new record starts as \"proposed\"; make"
				   " it public afterwards with 'cartosync"
				   " publish ID'");
		goto done;
	}
	if (json_object_get(record, "x_verified") == NULL) {
		cli_today(today);
		json_object_set_new(record, "x_verified",
				    json_pack("{s:s, s:s, s:s}", "date", today,
					      "by", cs_node_org(s.node),
					      "method", "self_report"));
	}
	{
		json_t *existing = NULL;

		error = cs_map_find(&existing, NULL, cs_node_repo(s.node),
				    &s.head, cs_record_id(record));
		json_decref(existing);
		if (error == 0) {
			status = cli_error("record \"%s\" exists already; change"
					   " it with 'cartosync edit %s'",
					   cs_record_id(record),
					   cs_record_id(record));
			goto done;
		}
		if (error != CS_ENOTFOUND) {
			status = cli_fail(error);
			goto done;
		}
	}
	status = record_session_put(&s, record, "Add");
done:
	json_decref(record);
	free(buf);
	record_session_close(&s);
	return status;
}

int
cmd_rm(cli_ctx *cli, int argc, char **argv)
{
	record_session s;
	json_t *record = NULL;
	char *message = NULL;
	cs_oid commit;
	int error, status, in_main;

	if (cli_help_requested(argc, argv, rm_usage))
		return EXIT_OK;
	if (argc != 2)
		return cli_usage(rm_usage, "rm takes one record ID");
	if ((status = record_session_open(&s, cli)) != 0)
		return status;
	if ((error = cs_map_find(&record, NULL, cs_node_repo(s.node), &s.head,
				 argv[1])) < 0) {
		status = cli_fail(error);
		goto done;
	}
	if (asprintf(&message, "Remove %s %s\n", cs_record_type(record),
		     argv[1]) < 0)
		message = NULL;
	if ((error = cs_map_remove(&commit, &in_main, s.node, &s.head, argv[1],
				   message ? message : "Remove\n")) < 0) {
		status = cli_fail(error);
		goto done;
	}
	if (cli->json) {
		char hex[CS_OID_HEXSZ + 1];
		json_t *out;

		cs_oid_fmt(hex, &commit);
		out = json_pack("{s:s, s:s, s:b}", "id", argv[1], "commit", hex,
				"in_main", in_main);
		cli_print_json(out);
		json_decref(out);
	}
	cli_say("removed %s\n", argv[1]);
	status = cli_report_commit(cli, s.node, &commit, in_main);
done:
	free(message);
	json_decref(record);
	record_session_close(&s);
	return status;
}
