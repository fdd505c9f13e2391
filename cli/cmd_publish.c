/*
 * cartosync publish ID [--yes]
 * cartosync retire ID
 * cartosync confirm ID --method METHOD [--note TEXT]
 *
 * The lifecycle of a record (docs/record-model.md): proposed -> published
 * -> retired, and its freshness (x_verified).  Each is a signed edit.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cartosync/error.h"
#include "cartosync/map.h"
#include "cartosync/record.h"
#include "cli.h"
#include "record_edit.h"

static const char publish_usage[] =
	"usage: cartosync [-C DIR] publish ID [--yes]\n\n"
	"Make record ID public: it enters the public dataset and the public"
	" map.\n"
	"For a sensitive category or population (the policy lists them: a"
	" shelter\n"
	"for survivors of violence, services for people without papers...)"
	" a\n"
	"confirmation is asked; --yes gives it in advance.\n";

static const char retire_usage[] =
	"usage: cartosync [-C DIR] retire ID\n\n"
	"Withdraw record ID from the map (status \"retired\"); its history"
	" stays.\n";

static const char confirm_usage[] =
	"usage: cartosync [-C DIR] confirm ID --method METHOD [--note TEXT]\n\n"
	"Record that record ID was verified today and is unchanged.  METHOD"
	" is how:\n"
	"phone, visit, self_report or import.\n";

static int
load(record_session *s, json_t **record, cli_ctx *cli, const char *id)
{
	int status, error;

	*record = NULL;
	if ((status = record_session_open(s, cli)) != 0)
		return status;
	if ((error = cs_map_find(record, NULL, cs_node_repo(s->node), &s->head,
				 id)) < 0)
		return cli_fail(error);
	return 0;
}

static int
ask(const char *question)
{
	char answer[16];

	if (!isatty(STDIN_FILENO))
		return 0;
	fprintf(stderr, "%s [y/N] ", question);
	if (fgets(answer, sizeof(answer), stdin) == NULL)
		return 0;
	return answer[0] == 'y' || answer[0] == 'Y' || answer[0] == 'o' ||
	       answer[0] == 'O';
}

static int
set_status(cli_ctx *cli, const char *id, const char *to, int confirmed)
{
	record_session s;
	json_t *record = NULL;
	const char *why = NULL, *from;
	char question[512];
	int status, sensitive;

	if ((status = load(&s, &record, cli, id)) != 0)
		goto done;
	from = json_string_value(json_object_get(record, "x_status"));
	if (from && strcmp(from, to) == 0) {
		cli_say("%s is %s already; nothing committed\n", id, to);
		status = EXIT_OK;
		goto done;
	}
	if (strcmp(to, "published") == 0) {
		sensitive = cs_map_publish_sensitive(
			&why, cs_node_repo(s.node), &s.head, record);
		if (sensitive < 0) {
			status = cli_fail(sensitive);
			goto done;
		}
		if (sensitive && !confirmed) {
			snprintf(question, sizeof(question),
				 "%s is in a sensitive category (%s): publishing"
				 " shows it on the public map to everyone."
				 " Publish?",
				 id, why);
			if (!ask(question)) {
				status = cli_error(
					"not published: %s is in a sensitive"
					" category (%s); confirm with --yes if"
					" it is safe to make it public",
					id, why);
				goto done;
			}
		}
	}
	json_object_set_new(record, "x_status", json_string(to));
	status = record_session_put(&s, record,
				    strcmp(to, "published") == 0 ? "Publish"
								 : "Retire");
done:
	json_decref(record);
	record_session_close(&s);
	return status;
}

int
cmd_publish(cli_ctx *cli, int argc, char **argv)
{
	int yes = 0;

	if (cli_help_requested(argc, argv, publish_usage))
		return EXIT_OK;
	if (argc == 3 && strcmp(argv[2], "--yes") == 0)
		yes = 1;
	else if (argc == 3 && strcmp(argv[1], "--yes") == 0) {
		yes = 1;
		argv[1] = argv[2];
	} else if (argc != 2)
		return cli_usage(publish_usage, "publish takes one record ID");
	return set_status(cli, argv[1], "published", yes);
}

int
cmd_retire(cli_ctx *cli, int argc, char **argv)
{
	if (cli_help_requested(argc, argv, retire_usage))
		return EXIT_OK;
	if (argc != 2)
		return cli_usage(retire_usage, "retire takes one record ID");
	return set_status(cli, argv[1], "retired", 1);
}

int
cmd_confirm(cli_ctx *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{"method", required_argument, NULL, 'm'},
		{"note", required_argument, NULL, 'n'},
		{NULL, 0, NULL, 0},
	};
	static const char *const methods[] = {"phone", "visit", "self_report",
					      "import", NULL};
	record_session s;
	json_t *record = NULL, *verified;
	const char *method = NULL, *note = NULL;
	char today[11];
	int c, known = 0, status;

	memset(&s, 0, sizeof(s));
	if (cli_help_requested(argc, argv, confirm_usage))
		return EXIT_OK;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (c == 'm')
			method = optarg;
		else if (c == 'n')
			note = optarg;
		else
			return cli_usage(confirm_usage, NULL);
	}
	if (optind + 1 != argc || method == NULL)
		return cli_usage(confirm_usage,
				 "confirm takes one record ID and --method");
	for (size_t i = 0; methods[i]; i++)
		known |= strcmp(methods[i], method) == 0;
	if (!known)
		return cli_usage(confirm_usage,
				 "--method is phone, visit, self_report or"
				 " import");
	if ((status = load(&s, &record, cli, argv[optind])) != 0)
		goto done;
	cli_today(today);
	verified = json_pack("{s:s, s:s, s:s}", "date", today, "by",
			     cs_node_org(s.node), "method", method);
	if (note)
		json_object_set_new(verified, "note", json_string(note));
	if (json_equal(verified, json_object_get(record, "x_verified"))) {
		cli_say("%s was confirmed today already; nothing committed\n",
			argv[optind]);
		json_decref(verified);
		status = EXIT_OK;
		goto done;
	}
	json_object_set_new(record, "x_verified", verified);
	status = record_session_put(&s, record, "Confirm");
done:
	json_decref(record);
	record_session_close(&s);
	return status;
}
