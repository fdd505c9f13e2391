/*
 * cartosync edit ID [--discard]
 *
 * The record goes to a draft file (DIR/drafts/<id>.json, with the commit
 * it was read from in <id>.base); $VISUAL or $EDITOR opens it; the result
 * is validated and committed on that base, not on whatever main is when
 * the editor closes, so a concurrent change is merged, not reverted.  A
 * draft that does not validate is kept and the next 'edit ID' resumes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/map.h"
#include "cartosync/record.h"
#include "cli.h"
#include "record_edit.h"

static const char usage[] =
	"usage: cartosync [-C DIR] edit ID [--discard]\n\n"
	"Edit record ID in $VISUAL or $EDITOR (default vi).  The edit is"
	" validated\n"
	"and committed on the version you opened.  If it does not validate,"
	" the\n"
	"draft is kept in DIR/drafts/ and 'cartosync edit ID' resumes it;"
	" --discard\n"
	"drops it.\n";

static int
write_text(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return cs_error_set(CS_ERROR, "cannot write '%s': %s", path,
				    strerror(errno));
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0) {
		close(fd);
		return cs_error_set(CS_ERROR, "cannot write '%s': %s", path,
				    strerror(errno));
	}
	close(fd);
	return 0;
}

int
cmd_edit(cli_ctx *cli, int argc, char **argv)
{
	record_session s;
	cs_node *node = NULL;
	json_t *record = NULL, *edited = NULL;
	char *drafts = NULL, *draft = NULL, *base_file = NULL;
	char *text = NULL, *buf = NULL, hex[CS_OID_HEXSZ + 1];
	size_t len = 0;
	const char *id;
	int discard = 0, error, status = EXIT_ERROR;
	cs_oid base;

	memset(&s, 0, sizeof(s));
	if (cli_help_requested(argc, argv, usage))
		return EXIT_OK;
	if (argc == 3 && strcmp(argv[2], "--discard") == 0)
		discard = 1;
	else if (argc != 2)
		return cli_usage(usage, "edit takes one record ID");
	id = argv[1];
	if (!cs_uuid_valid(id))
		return cli_error("\"%s\" is not a record id (a lowercase UUID)",
				 id);
	if ((status = cli_open_node(cli, &node)) != 0)
		return status;
	status = EXIT_ERROR;
	if (asprintf(&drafts, "%s/drafts", cs_node_dir(node)) < 0 ||
	    asprintf(&draft, "%s/%s.json", drafts, id) < 0 ||
	    asprintf(&base_file, "%s/%s.base", drafts, id) < 0)
		goto done;
	if (discard) {
		unlink(draft);
		unlink(base_file);
		cli_say("discarded the draft of %s\n", id);
		status = EXIT_OK;
		goto done;
	}

	/* Resume a kept draft, on the base it was started from. */
	if (access(draft, F_OK) == 0 &&
	    cli_read_input(&buf, &len, base_file, 100) == 0 && len >= 40 &&
	    cs_oid_parse(&base, buf, 40) == 0) {
		cli_say("resuming your draft of %s (started on %.12s)\n", id,
			buf);
	} else {
		if ((error = cli_main_head(node, &base)) < 0 ||
		    (error = cs_map_find(&record, NULL, cs_node_repo(node),
					 &base, id)) < 0 ||
		    (error = cs_json_canonical(&text, &len, record)) < 0) {
			status = cli_fail(error);
			goto done;
		}
		mkdir(drafts, 0700);
		cs_oid_fmt(hex, &base);
		if ((error = write_text(draft, text, len)) < 0 ||
		    (error = write_text(base_file, hex, CS_OID_HEXSZ)) < 0) {
			status = cli_fail(error);
			goto done;
		}
	}
	if (record == NULL &&
	    (error = cs_map_find(&record, NULL, cs_node_repo(node), &base,
				 id)) < 0) {
		status = cli_fail(error);
		goto done;
	}
	cs_node_free(node);
	node = NULL;

	if ((error = cli_run_editor(draft)) < 0) {
		status = cli_fail(error);
		goto done;
	}
	free(buf);
	buf = NULL;
	if ((error = cli_read_input(&buf, &len, draft, CS_RECORD_MAX_BYTES)) <
		    0 ||
	    (error = cs_json_parse(&edited, buf, len, draft)) < 0) {
		status = cli_fail(error);
		cli_say("your draft is kept: run 'cartosync edit %s' to resume"
			" it, or add --discard\n",
			id);
		goto done;
	}
	if (!json_is_object(edited) ||
	    !json_equal(json_object_get(edited, "id"),
			json_object_get(record, "id"))) {
		status = cli_error("the record's id cannot change (it was"
				   " \"%s\")",
				   id);
		cli_say("your draft is kept: run 'cartosync edit %s' to resume"
			" it, or add --discard\n",
			id);
		goto done;
	}
	if (json_equal(edited, record)) {
		cli_say("no change; nothing committed\n");
		unlink(draft);
		unlink(base_file);
		status = EXIT_OK;
		goto done;
	}
	if ((status = record_session_open_at(&s, cli, &base)) != 0)
		goto done;
	status = record_session_put(&s, edited, "Edit");
	if (status == EXIT_OK) {
		unlink(draft);
		unlink(base_file);
	} else {
		cli_say("your draft is kept: run 'cartosync edit %s' to resume"
			" it, or add --discard\n",
			id);
	}
done:
	record_session_close(&s);
	json_decref(record);
	json_decref(edited);
	free(drafts);
	free(draft);
	free(base_file);
	free(text);
	free(buf);
	cs_node_free(node);
	return status;
}
