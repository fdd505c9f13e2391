/*
 * cartosync conflicts
 * cartosync conflicts show ID
 * cartosync conflicts resolve ID (--take ORG | --value FIELD=JSON... | --edit)
 * cartosync conflicts duplicates
 * cartosync conflicts distinct ID1 ID2
 * cartosync conflicts merge-duplicate KEEP OTHER
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cartosync/commit.h"
#include "cartosync/conflicts.h"
#include "cartosync/duplicates.h"
#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/map.h"
#include "cartosync/record.h"
#include "cli.h"

#define MAX_VALUES 64

static const char usage[] =
	"usage: cartosync [-C DIR] conflicts\n"
	"       cartosync [-C DIR] conflicts show ID\n"
	"       cartosync [-C DIR] conflicts resolve ID --take ORG\n"
	"       cartosync [-C DIR] conflicts resolve ID --value FIELD=JSON"
	" [--value ...]\n"
	"       cartosync [-C DIR] conflicts resolve ID --edit\n"
	"       cartosync [-C DIR] conflicts duplicates\n"
	"       cartosync [-C DIR] conflicts distinct ID1 ID2\n"
	"       cartosync [-C DIR] conflicts merge-duplicate KEEP OTHER\n\n"
	"The review queue: fields that two partners changed differently, and"
	" suspected\n"
	"duplicates.  Until a conflict is resolved its field keeps the last"
	" agreed\n"
	"value (a protective field, its most protective candidate; a deletion"
	" stays\n"
	"deleted).\n\n"
	"  (no argument)    list records with open conflicts: fields, partners,"
	" age;\n"
	"                   then the suspected duplicates (--json: the"
	" conflicts only)\n"
	"  show ID          the base and each candidate, per field, with the"
	" edit\n"
	"                   that wrote it; and why ID is a suspected duplicate\n"
	"  resolve ID       a signed edit that writes the chosen values:\n"
	"    --take ORG        every open field takes ORG's candidate\n"
	"    --value F=JSON    field F (a JSON pointer such as /name) takes the"
	" JSON\n"
	"                      value; repeat for several fields\n"
	"    --edit            edit the record in $EDITOR; each open field takes"
	" what\n"
	"                      the editor leaves\n"
	"  duplicates       the suspected duplicates: records of different"
	" owners,\n"
	"                   of one type, with alike names and a place in common"
	" (300 m\n"
	"                   apart at most, or the same commune); --json: an"
	" array of\n"
	"                   {ids, type, owners, reasons, score}\n"
	"  distinct ID1 ID2 mark two records as different: no longer"
	" suspected\n"
	"  merge-duplicate KEEP OTHER\n"
	"                   OTHER describes what KEEP does: retire OTHER and"
	" record\n"
	"                   that it is merged into KEEP, in one signed edit\n"
	"The coordinator resolves any conflict; the policy may let a record's"
	" owner\n"
	"resolve its own, and a region's steward the shared records of the"
	" region.\n"
	"Only the coordinator marks duplicates distinct or merges them.\n";

typedef struct {
	char org[64];
	int64_t time;
} edit_info;

static void
describe_edit(edit_info *info, cs_repo *repo, const char *hex)
{
	cs_commit *c = NULL;
	cs_oid id;

	snprintf(info->org, sizeof(info->org), "?");
	info->time = 0;
	if (hex && cs_oid_parse(&id, hex, strlen(hex)) == 0 &&
	    cs_repo_read_commit(&c, repo, &id) == 0) {
		snprintf(info->org, sizeof(info->org), "%s", c->author.name);
		info->time = c->committer.time;
		cs_commit_free(c);
	}
}

static char *
compact(const json_t *value)
{
	return value ? json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS |
						 JSON_ENCODE_ANY)
		     : strdup("(absent)");
}

/* One suspected pair, for people: ids, type, owners, then the reasons. */
static void
say_duplicate(const json_t *pair)
{
	const json_t *ids = json_object_get(pair, "ids");
	const json_t *owners = json_object_get(pair, "owners");
	json_t *reason;
	size_t i;

	cli_say("%s %s  %s  %s,%s\n",
		json_string_value(json_array_get(ids, 0)),
		json_string_value(json_array_get(ids, 1)),
		json_string_value(json_object_get(pair, "type")),
		json_string_value(json_array_get(owners, 0)),
		json_string_value(json_array_get(owners, 1)));
	json_array_foreach(json_object_get(pair, "reasons"), i, reason)
		cli_say("    %s\n", json_string_value(reason));
}

static void
say_duplicates(const json_t *pairs)
{
	const json_t *pair;
	size_t i;

	json_array_foreach(pairs, i, pair)
		say_duplicate(pair);
	cli_say("%zu suspected duplicate%s\n", json_array_size(pairs),
		json_array_size(pairs) == 1 ? "" : "s");
}

/* The suspected pairs that `id` is part of, as a new array. */
static json_t *
pairs_with(const json_t *pairs, const char *id)
{
	json_t *out = json_array(), *pair;
	size_t i;

	json_array_foreach(pairs, i, pair) {
		const json_t *ids = json_object_get(pair, "ids");

		if (strcmp(json_string_value(json_array_get(ids, 0)), id) == 0 ||
		    strcmp(json_string_value(json_array_get(ids, 1)), id) == 0)
			json_array_append(out, pair);
	}
	return out;
}

static int
conflicts_list(cli_ctx *cli, cs_node *node, const cs_oid *head)
{
	json_t *docs = NULL, *doc, *entry, *cand, *out = json_array();
	const char *field;
	size_t i, k;
	int error;

	if ((error = cs_conflicts_list(&docs, cs_node_repo(node), head)) < 0) {
		json_decref(out);
		return cli_fail(error);
	}
	json_array_foreach(docs, i, doc) {
		json_t *fields = json_array(), *orgs = json_array();
		int64_t oldest = 0;
		char partners[256] = "", names[512] = "";

		json_object_foreach(json_object_get(doc, "conflicts"), field,
				    entry) {
			json_array_append_new(fields, json_string(field));
			snprintf(names + strlen(names),
				 sizeof(names) - strlen(names), "%s%s",
				 names[0] ? " " : "",
				 *field ? field : "(whole record)");
			json_array_foreach(json_object_get(entry, "candidates"),
					   k, cand) {
				edit_info info;

				describe_edit(&info, cs_node_repo(node),
					      json_string_value(json_object_get(
						      cand, "edit")));
				if (!strstr(partners, info.org)) {
					json_array_append_new(
						orgs, json_string(info.org));
					snprintf(partners + strlen(partners),
						 sizeof(partners) -
							 strlen(partners),
						 "%s%s", partners[0] ? "," : "",
						 info.org);
				}
				if (info.time && (!oldest || info.time < oldest))
					oldest = info.time;
			}
		}
		json_array_append_new(
			out, json_pack("{s:O, s:O, s:o, s:o, s:I}", "id",
				       json_object_get(doc, "id"), "record",
				       json_object_get(doc, "record"), "fields",
				       fields, "partners", orgs, "since",
				       (json_int_t)oldest));
		if (!cli->json) {
			char age[32] = "";
			long days = (long)((time(NULL) - oldest) / 86400);

			if (oldest)
				snprintf(age, sizeof(age), "%ld day%s", days,
					 days == 1 ? "" : "s");
			cli_say("%s  %-20s %-10s %s\n",
				json_string_value(json_object_get(doc, "id")),
				partners, age, names);
		}
	}
	if (cli->json) {
		/* The array of conflicts, unchanged: 'conflicts duplicates
		 * --json' gives the suspected duplicates. */
		cli_print_json(out);
	} else {
		json_t *pairs = NULL;

		cli_say("%zu record%s with open conflicts\n",
			json_array_size(docs),
			json_array_size(docs) == 1 ? "" : "s");
		/* The conflicts are listed whatever happens to the search. */
		if ((error = cs_duplicates_find(&pairs, cs_node_repo(node),
						head)) < 0) {
			cli_error("suspected duplicates not searched: %s",
				  cs_error_last());
		} else {
			cli_say("\nsuspected duplicates:\n");
			say_duplicates(pairs);
		}
		json_decref(pairs);
	}
	json_decref(out);
	json_decref(docs);
	return EXIT_OK;
}

static int
conflicts_duplicates(cli_ctx *cli, cs_node *node, const cs_oid *head)
{
	json_t *pairs = NULL;
	int error;

	if ((error = cs_duplicates_find(&pairs, cs_node_repo(node), head)) < 0)
		return cli_fail(error);
	if (cli->json)
		cli_print_json(pairs);
	else
		say_duplicates(pairs);
	json_decref(pairs);
	return EXIT_OK;
}

/* Why `id` is suspected to duplicate other records. */
static void
say_duplicates_of(const json_t *mine, const char *id)
{
	const json_t *pair;
	size_t i, k;

	json_array_foreach(mine, i, pair) {
		const json_t *ids = json_object_get(pair, "ids");
		const json_t *reason;
		size_t other = strcmp(json_string_value(json_array_get(ids, 0)),
				      id) == 0;

		cli_say("\n  suspected duplicate of %s (%s of %s)\n",
			json_string_value(json_array_get(ids, other)),
			json_string_value(json_object_get(pair, "type")),
			json_string_value(json_array_get(
				json_object_get(pair, "owners"), other)));
		json_array_foreach(json_object_get(pair, "reasons"), k, reason)
			cli_say("    %s\n", json_string_value(reason));
	}
}

static int
conflicts_show(cli_ctx *cli, cs_node *node, const cs_oid *head,
	       const char *id)
{
	json_t *doc = NULL, *pairs = NULL, *mine = NULL, *entry, *cand;
	const char *field;
	size_t k;
	int error, status = EXIT_OK;

	error = cs_conflict_get(&doc, cs_node_repo(node), head, id);
	if (error < 0 && error != CS_ENOTFOUND)
		return cli_fail(error);
	if ((error = cs_duplicates_find(&pairs, cs_node_repo(node), head)) <
	    0) {
		/* The conflicts are shown whatever happens to the search. */
		if (doc == NULL)
			return cli_fail(error);
		cli_error("suspected duplicates not searched: %s",
			  cs_error_last());
	}
	mine = pairs_with(pairs, id);
	if (doc == NULL && json_array_size(mine) == 0) {
		status = cli_error("record %s has no conflicts and is not a"
				   " suspected duplicate",
				   id);
		goto done;
	}
	if (cli->json) {
		json_t *out = doc ? json_copy(doc) : json_pack("{s:s}", "id",
								id);

		json_object_set(out, "duplicates", mine);
		cli_print_json(out);
		json_decref(out);
		goto done;
	}
	if (doc == NULL) {
		cli_say("%s\n  no open conflict\n", id);
		say_duplicates_of(mine, id);
		goto done;
	}
	cli_say("%s\n", json_string_value(json_object_get(doc, "record")));
	if (json_object_size(json_object_get(doc, "conflicts")) == 0)
		cli_say("  no open conflict\n");
	json_object_foreach(json_object_get(doc, "conflicts"), field, entry) {
		char *base = compact(json_object_get(entry, "base"));

		cli_say("\n  %s\n    %-28s %s\n",
			*field ? field : "(the whole record)",
			"base (last agreed)", base);
		free(base);
		json_array_foreach(json_object_get(entry, "candidates"), k,
				   cand) {
			const char *edit =
				json_string_value(json_object_get(cand, "edit"));
			char *value = compact(json_object_get(cand, "value"));
			char who[128], date[16] = "";
			edit_info info;
			time_t t;
			struct tm tm;

			describe_edit(&info, cs_node_repo(node), edit);
			t = (time_t)info.time;
			gmtime_r(&t, &tm);
			strftime(date, sizeof(date), "%Y-%m-%d", &tm);
			snprintf(who, sizeof(who), "%s %.8s %s", info.org,
				 edit ? edit : "", date);
			cli_say("    %-28s %s\n", who, value);
			free(value);
		}
	}
	json_array_foreach(json_object_get(doc, "resolved"), k, cand) {
		char *value = compact(json_object_get(cand, "value"));

		cli_say("%s  resolved %s by %s: %s\n", k ? "" : "\n",
			json_string_value(json_object_get(cand, "field")),
			json_string_value(json_object_get(cand, "by")), value);
		free(value);
	}
	say_duplicates_of(mine, id);
done:
	json_decref(doc);
	json_decref(pairs);
	json_decref(mine);
	return status;
}

/* --value /field=JSON */
static int
parse_value(json_t *choices, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char *field;
	json_t *value;
	json_error_t err;

	if (eq == NULL || (arg[0] != '/' && eq != arg))
		return cli_error("--value takes FIELD=JSON, FIELD a JSON pointer"
				 " such as /name, not \"%s\"",
				 arg);
	value = json_loads(eq + 1, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
			   &err);
	if (value == NULL)
		return cli_error("--value %.*s: not JSON: %s (a text needs"
				 " quotes: /name='\"Nouveau nom\"')",
				 (int)(eq - arg), arg, err.text);
	field = strndup(arg, (size_t)(eq - arg));
	json_object_set_new(choices, field, json_pack("{s:o}", "value", value));
	free(field);
	return 0;
}

/* --edit: the record in $EDITOR; each open field takes what is left. */
static int
choices_from_editor(json_t **out, cs_node *node, const cs_oid *head,
		    const json_t *doc, const char *id)
{
	json_t *record = NULL, *edited = NULL, *choices = json_object(), *e;
	char *text = NULL, *buf = NULL, path[] = "/tmp/cartosync-resolve-XXXXXX";
	size_t len = 0;
	const char *field;
	int fd, error;

	*out = NULL;
	if ((error = cs_map_find(&record, NULL, cs_node_repo(node), head, id)) <
		    0 &&
	    error != CS_ENOTFOUND)
		goto done;
	if (record == NULL)
		record = json_object();
	if ((error = cs_json_canonical(&text, &len, record)) < 0)
		goto done;
	if ((fd = mkstemp(path)) < 0 ||
	    write(fd, text, len) != (ssize_t)len) {
		error = cs_error_set(CS_ERROR, "cannot write a temporary file");
		goto done;
	}
	close(fd);
	if ((error = cli_run_editor(path)) < 0 ||
	    (error = cli_read_input(&buf, &len, path, CS_RECORD_MAX_BYTES)) <
		    0 ||
	    (error = cs_json_parse(&edited, buf, len, path)) < 0)
		goto done;
	json_object_foreach(json_object_get(doc, "conflicts"), field, e) {
		json_t *v = *field ? cs_json_pointer_get(edited, field) : edited;

		json_object_set_new(choices, field,
				    v ? json_pack("{s:O}", "value", v)
				      : json_object());
	}
	*out = choices;
	choices = NULL;
done:
	if (path[sizeof(path) - 2] != 'X')
		unlink(path);
	json_decref(choices);
	json_decref(record);
	json_decref(edited);
	free(text);
	free(buf);
	return error;
}

static int
conflicts_resolve(cli_ctx *cli, cs_node *node, const cs_oid *head, int argc,
		  char **argv)
{
	static const struct option options[] = {
		{"take", required_argument, NULL, 't'},
		{"value", required_argument, NULL, 'v'},
		{"edit", no_argument, NULL, 'e'},
		{NULL, 0, NULL, 0},
	};
	const char *take = NULL, *id;
	json_t *doc = NULL, *choices = json_object();
	int c, edit = 0, values = 0, error, in_main, status = EXIT_ERROR;
	cs_oid commit;

	optind = 2;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (c == 't')
			take = optarg;
		else if (c == 'e')
			edit = 1;
		else if (c == 'v') {
			if ((status = parse_value(choices, optarg)) != 0)
				goto done;
			values++;
		} else {
			status = cli_usage(usage, NULL);
			goto done;
		}
	}
	if (optind + 1 != argc || (!!take + !!edit + !!values) != 1) {
		status = cli_usage(usage, "resolve takes one ID and one of"
					  " --take, --value or --edit");
		goto done;
	}
	id = argv[optind];
	if ((error = cs_conflict_get(&doc, cs_node_repo(node), head, id)) < 0) {
		status = cli_fail(error);
		goto done;
	}
	if (take) {
		json_decref(choices);
		choices = NULL;
		error = cs_conflict_take(&choices, cs_node_repo(node), doc, take);
	} else if (edit) {
		json_decref(choices);
		choices = NULL;
		error = choices_from_editor(&choices, node, head, doc, id);
	} else {
		error = 0;
	}
	if (error < 0 ||
	    (error = cs_conflict_resolve(&commit, &in_main, node, head, id,
					 choices)) < 0) {
		status = cli_fail(error);
		goto done;
	}
	if (cli->json) {
		char hex[CS_OID_HEXSZ + 1];
		json_t *out;

		cs_oid_fmt(hex, &commit);
		out = json_pack("{s:s, s:s, s:O, s:b}", "id", id, "commit", hex,
				"resolved", choices, "in_main", in_main);
		cli_print_json(out);
		json_decref(out);
	}
	cli_say("resolved %zu field%s of %s\n", json_object_size(choices),
		json_object_size(choices) == 1 ? "" : "s", id);
	status = cli_report_commit(cli, node, &commit, in_main);
done:
	json_decref(doc);
	json_decref(choices);
	return status;
}

/* conflicts distinct ID1 ID2, conflicts merge-duplicate KEEP OTHER */
static int
conflicts_decide(cli_ctx *cli, cs_node *node, const cs_oid *head,
		 const char *what, const char *a, const char *b)
{
	int merge = strcmp(what, "merge-duplicate") == 0, error, in_main;
	cs_oid commit;

	error = merge ? cs_duplicates_mark_merged(&commit, &in_main, node,
						  head, a, b)
		      : cs_duplicates_mark_distinct(&commit, &in_main, node,
						    head, a, b);
	if (error == CS_EEXISTS) {
		cli_say("%s; nothing committed\n", cs_error_last());
		return EXIT_OK;
	}
	if (error < 0)
		return cli_fail(error);
	if (cli->json) {
		char hex[CS_OID_HEXSZ + 1];
		json_t *out;

		cs_oid_fmt(hex, &commit);
		out = merge ? json_pack("{s:s, s:s, s:s, s:b}", "kept", a,
					"merged", b, "commit", hex, "in_main",
					in_main)
			    : json_pack("{s:[s, s], s:s, s:b}", "distinct", a,
					b, "commit", hex, "in_main", in_main);
		cli_print_json(out);
		json_decref(out);
	}
	if (merge)
		cli_say("merged %s into %s (%s is retired)\n", b, a, b);
	else
		cli_say("marked %s and %s distinct\n", a, b);
	return cli_report_commit(cli, node, &commit, in_main);
}

int
cmd_conflicts(cli_ctx *cli, int argc, char **argv)
{
	cs_node *node = NULL;
	cs_oid head;
	int error, status;

	if (cli_help_requested(argc, argv, usage))
		return EXIT_OK;
	if (argc > 1 && strcmp(argv[1], "show") && strcmp(argv[1], "resolve") &&
	    strcmp(argv[1], "duplicates") && strcmp(argv[1], "distinct") &&
	    strcmp(argv[1], "merge-duplicate"))
		return cli_usage(usage, "unknown conflicts command '%s'",
				 argv[1]);
	if (argc > 1 && strcmp(argv[1], "show") == 0 && argc != 3)
		return cli_usage(usage, "conflicts show takes one record ID");
	if (argc > 1 && strcmp(argv[1], "duplicates") == 0 && argc != 2)
		return cli_usage(usage, "conflicts duplicates takes no argument");
	if (argc > 1 && strcmp(argv[1], "distinct") == 0 && argc != 4)
		return cli_usage(usage, "conflicts distinct takes two record IDs");
	if (argc > 1 && strcmp(argv[1], "merge-duplicate") == 0 && argc != 4)
		return cli_usage(usage, "conflicts merge-duplicate takes KEEP and"
					" OTHER, two record IDs");
	if ((status = cli_open_node(cli, &node)) != 0)
		return status;
	if ((error = cli_main_head(node, &head)) < 0) {
		status = cli_fail(error);
	} else if (argc == 1) {
		status = conflicts_list(cli, node, &head);
	} else if (strcmp(argv[1], "show") == 0) {
		status = conflicts_show(cli, node, &head, argv[2]);
	} else if (strcmp(argv[1], "duplicates") == 0) {
		status = conflicts_duplicates(cli, node, &head);
	} else if (strcmp(argv[1], "distinct") == 0 ||
		   strcmp(argv[1], "merge-duplicate") == 0) {
		status = conflicts_decide(cli, node, &head, argv[1], argv[2],
					  argv[3]);
	} else {
		status = conflicts_resolve(cli, node, &head, argc, argv);
	}
	cs_node_free(node);
	return status;
}
