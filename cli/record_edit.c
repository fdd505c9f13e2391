#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/error.h"
#include "cartosync/map.h"
#include "cartosync/record.h"
#include "record_edit.h"

int
record_session_open_at(record_session *s, cli_ctx *cli, const cs_oid *base)
{
	cs_oid tree;
	int error, status;

	memset(s, 0, sizeof(*s));
	s->cli = cli;
	if ((status = cli_open_node(cli, &s->node)) != 0)
		return status;
	if (base)
		s->head = *base;
	else if ((error = cli_main_head(s->node, &s->head)) < 0)
		goto fail;
	if ((error = cs_repo_commit_tree(&tree, cs_node_repo(s->node),
					 &s->head)) < 0 ||
	    (error = cs_consortium_load(&s->state, cs_node_repo(s->node),
					&tree)) < 0)
		goto fail;
	return 0;
fail:
	status = cli_fail(error);
	record_session_close(s);
	return status;
}

int
record_session_open(record_session *s, cli_ctx *cli)
{
	return record_session_open_at(s, cli, NULL);
}

void
record_session_close(record_session *s)
{
	cs_consortium_free(s->state);
	cs_node_free(s->node);
	memset(s, 0, sizeof(*s));
}

int
record_session_check(record_session *s, const json_t *record)
{
	cs_schema_errors errors = {NULL, 0};
	char *path = NULL;
	const char *name;
	int error;

	if ((error = cs_record_path(&path, record)) < 0)
		return cli_fail(error);
	name = path;
	error = cs_record_check(cs_consortium_schemas(s->state), record, path,
				name, &errors);
	if (error < 0 && errors.count == 0)
		cli_fail(error);
	for (size_t i = 0; i < errors.count; i++)
		fprintf(stderr, "cartosync: %s: %s: %s\n", name,
			errors.items[i].pointer[0] ? errors.items[i].pointer
						   : "/",
			errors.items[i].message);
	cs_schema_errors_clear(&errors);
	free(path);
	return error < 0 ? EXIT_ERROR : 0;
}

int
record_session_put(record_session *s, const json_t *record, const char *verb)
{
	char *message = NULL, *path = NULL, hex[CS_OID_HEXSZ + 1];
	cs_oid commit;
	int error, in_main, status;

	if ((status = record_session_check(s, record)) != 0) {
		cli_say("nothing was committed\n");
		return status;
	}
	if (asprintf(&message, "%s %s %s\n", verb, cs_record_type(record),
		     cs_record_id(record)) < 0)
		return cli_error("out of memory");
	error = cs_map_put(&commit, &in_main, s->node, &s->head, record,
			   message);
	free(message);
	if (error < 0)
		return cli_fail(error);
	cs_record_path(&path, record);
	cs_oid_fmt(hex, &commit);
	if (s->cli->json) {
		json_t *out = json_pack("{s:s, s:s, s:s, s:b}", "id",
					cs_record_id(record), "path", path,
					"commit", hex, "in_main", in_main);

		cli_print_json(out);
		json_decref(out);
	}
	cli_say("%s %s %s (%s)\n",
		strcmp(verb, "Add") == 0 ? "added" : "updated",
		cs_record_type(record), cs_record_id(record), path);
	status = cli_report_commit(s->cli, s->node, &commit, in_main);
	free(path);
	return status;
}
