/*
 * cartosync status
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cartosync/peers.h"
#include "cli.h"

static const char usage[] =
	"usage: cartosync [-C DIR] status\n\n"
	"What this node holds and how its peers are doing: main, the heads it"
	" holds,\n"
	"each peer's last success and last error, histories kept in"
	" quarantine with\n"
	"the reason, and the number of records with open conflicts.\n";

static void
when(char *buf, size_t size, const json_t *t)
{
	time_t v;
	struct tm tm;

	if (!json_is_integer(t)) {
		snprintf(buf, size, "never");
		return;
	}
	v = (time_t)json_integer_value(t);
	gmtime_r(&v, &tm);
	strftime(buf, size, "%Y-%m-%d %H:%M:%SZ", &tm);
}

int
cmd_status(cli_ctx *cli, int argc, char **argv)
{
	cs_node *node = NULL;
	json_t *st, *v, *peers, *q;
	const char *key;
	size_t i;
	int status;

	if (cli_help_requested(argc, argv, usage))
		return EXIT_OK;
	if (argc != 1)
		return cli_usage(usage, "status takes no argument");
	if ((status = cli_open_node(cli, &node)) != 0)
		return status;
	st = cs_node_status(node);
	if (cli->json)
		cli_print_json(st);
	cli_say("node %s, main %.12s, %lld record%s with open conflicts\n",
		cs_node_org(node),
		json_string_value(json_object_get(st, "main"))
			? json_string_value(json_object_get(st, "main"))
			: "(none)",
		json_integer_value(json_object_get(st, "conflicts")),
		json_integer_value(json_object_get(st, "conflicts")) == 1
			? ""
			: "s");
	if (json_object_get(st, "upgrade_needed"))
		cli_say("NOT WRITING: %s\n",
			json_string_value(json_object_get(st, "upgrade_needed")));
	cli_say("heads:\n");
	json_object_foreach(json_object_get(st, "heads"), key, v)
		cli_say("  %.12s %s\n", json_string_value(v), key);
	peers = json_object_get(st, "peers");
	cli_say("peers:%s\n", json_object_size(peers) ? "" : " none synced yet");
	json_object_foreach(peers, key, v) {
		char ok[32], tried[32];
		const char *err = json_string_value(json_object_get(v,
								    "last_error"));

		when(ok, sizeof(ok), json_object_get(v, "last_success"));
		when(tried, sizeof(tried), json_object_get(v, "last_attempt"));
		cli_say("  %-12s %s (%s): last success %s", key,
			json_string_value(json_object_get(v, "url")),
			json_string_value(json_object_get(v, "org")), ok);
		if (err)
			cli_say("; failing since %s (%lld time%s): %s", tried,
				json_integer_value(
					json_object_get(v, "failures")),
				json_integer_value(json_object_get(
					v, "failures")) == 1
					? ""
					: "s",
				err);
		cli_say("\n");
	}
	q = json_object_get(st, "quarantine");
	cli_say("quarantine:%s\n", json_array_size(q) ? "" : " empty");
	json_array_foreach(q, i, v) {
		json_t *first = json_array_get(json_object_get(v, "issues"), 0);
		char t[32];

		when(t, sizeof(t), json_object_get(v, "time"));
		cli_say("  from %s at %s, head %.12s: %zu commit%s rejected,"
			" first %.12s: %s\n",
			json_string_value(json_object_get(v, "peer")), t,
			json_string_value(json_object_get(v, "head")),
			json_array_size(json_object_get(v, "issues")),
			json_array_size(json_object_get(v, "issues")) == 1
				? ""
				: "s",
			json_string_value(json_object_get(first, "commit")),
			json_string_value(json_object_get(first, "reason")));
	}
	json_decref(st);
	cs_node_free(node);
	return EXIT_OK;
}
