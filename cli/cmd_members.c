/*
 * cartosync members list | add | revoke | remove
 *
 * Changes to consortium/members.json are coordinator edits.  A change of
 * who holds power (the coordinator's keys, the root set) also needs the
 * root threshold's approvals (docs/architecture.md "Root keys").
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/consortium.h"
#include "cartosync/error.h"
#include "cartosync/json.h"
#include "cartosync/record.h"
#include "cli.h"

#define MAX_APPROVALS 16

static const char usage[] =
	"usage: cartosync [-C DIR] members list\n"
	"       cartosync [-C DIR] members add --org CODE --role ROLE --key"
	" FILE|-\n"
	"                 [--name NAME] [--holder TEXT] [--tls sha256:HEX]"
	" [--approval FILE...]\n"
	"       cartosync [-C DIR] members revoke FINGERPRINT|KEYFILE"
	" [--reason TEXT]\n"
	"                 [--approval FILE...]\n"
	"       cartosync [-C DIR] members remove --org CODE [--approval"
	" FILE...]\n\n"
	"ROLE is member or coordinator.  --key takes the line printed by"
	" 'cartosync\n"
	"keys public' on the new node (its TLS key hash included).  Adding,"
	" revoking\n"
	"or removing a coordinator key changes who holds power: the command"
	" then\n"
	"says which root approvals to collect ('cartosync root approve') and"
	" takes\n"
	"them with --approval.\n";

typedef struct {
	const char *org;
	const char *role;
	const char *key_file;
	const char *name;
	const char *holder;
	const char *tls;
	const char *reason;
	const char *approvals[MAX_APPROVALS];
	size_t napprovals;
	int argi; /* first positional argument */
} member_args;

static int
parse_args(member_args *a, int argc, char **argv)
{
	static const struct option options[] = {
		{"org", required_argument, NULL, 'o'},
		{"role", required_argument, NULL, 'r'},
		{"key", required_argument, NULL, 'k'},
		{"name", required_argument, NULL, 'n'},
		{"holder", required_argument, NULL, 'H'},
		{"tls", required_argument, NULL, 't'},
		{"reason", required_argument, NULL, 'R'},
		{"approval", required_argument, NULL, 'a'},
		{NULL, 0, NULL, 0},
	};
	int c;

	memset(a, 0, sizeof(*a));
	optind = 2;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'o':
			a->org = optarg;
			break;
		case 'r':
			a->role = optarg;
			break;
		case 'k':
			a->key_file = optarg;
			break;
		case 'n':
			a->name = optarg;
			break;
		case 'H':
			a->holder = optarg;
			break;
		case 't':
			a->tls = optarg;
			break;
		case 'R':
			a->reason = optarg;
			break;
		case 'a':
			if (a->napprovals == MAX_APPROVALS)
				return cli_usage(usage, "too many approvals");
			a->approvals[a->napprovals++] = optarg;
			break;
		default:
			return cli_usage(usage, NULL);
		}
	}
	a->argi = optind;
	return 0;
}

/* The state at main, and a copy of its members file to change. */
typedef struct {
	cli_ctx *cli;
	cs_node *node;
	cs_oid head;
	cs_oid tree;
	cs_consortium *before;
	json_t *members;
} members_edit;

static int
edit_open(members_edit *e, cli_ctx *cli)
{
	int error, status;

	memset(e, 0, sizeof(*e));
	e->cli = cli;
	if ((status = cli_open_node(cli, &e->node)) != 0)
		return status;
	if ((error = cli_main_head(e->node, &e->head)) < 0 ||
	    (error = cs_repo_commit_tree(&e->tree, cs_node_repo(e->node),
					 &e->head)) < 0 ||
	    (error = cs_consortium_load(&e->before, cs_node_repo(e->node),
					&e->tree)) < 0)
		return cli_fail(error);
	e->members = json_deep_copy(cs_consortium_members(e->before));
	return e->members ? 0 : cli_error("out of memory");
}

static void
edit_close(members_edit *e)
{
	json_decref(e->members);
	cs_consortium_free(e->before);
	cs_node_free(e->node);
}

static int
read_approval(json_t *signatures, const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	int error;

	if ((error = cli_read_input(&buf, &len, path, 16384)) < 0)
		return error;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	json_array_append_new(signatures, json_string(buf));
	free(buf);
	return 0;
}

/* Commit the changed members file, with a root approval if needed. */
static int
edit_commit(members_edit *e, const member_args *a, const char *message)
{
	cs_consortium *after = NULL;
	cs_schema_set *none = NULL;
	cs_tree_update updates[2];
	json_t *approval = NULL, *sigs;
	json_t *protocol = json_pack("{s:i, s:s}", "protocol", 1, "merge",
				     CS_MERGE_ALGORITHM);
	cs_oid members_blob, approval_blob, commit;
	char parent_hex[CS_OID_HEXSZ + 1], blob_hex[CS_OID_HEXSZ + 1];
	size_t count = 0;
	int error, in_main, status = EXIT_ERROR;

	/* Authority first: a member is told it may not, not sent to collect
	 * root approvals it could never use. */
	{
		const cs_key *key = NULL;
		const cs_member_key *signer;

		if ((error = cs_node_key(&key, e->node)) < 0) {
			status = cli_fail(error);
			goto done;
		}
		signer = cs_consortium_find_key(e->before, key);
		if (signer == NULL || signer->revoked) {
			status = cli_error("this node's key cannot write: %s",
					   signer ? "it is revoked"
						  : "it is not a member key");
			goto done;
		}
		if (!cs_policy_allows(e->before, signer, CS_PATH_MEMBERS)) {
			status = cli_error("%s may not write '%s'",
					   cs_node_org(e->node),
					   CS_PATH_MEMBERS);
			goto done;
		}
	}
	if ((error = cs_schema_set_new(&none)) < 0 ||
	    (error = cs_consortium_from_json(
		     &after, e->members, cs_consortium_policy(e->before),
		     protocol, none)) < 0) {
		status = cli_fail(error);
		goto done;
	}
	if ((error = cs_node_write_json(&members_blob, e->node, e->members)) <
	    0) {
		status = cli_fail(error);
		goto done;
	}
	updates[count++] = (cs_tree_update){CS_PATH_MEMBERS, &members_blob};
	if (cs_consortium_power_changed(e->before, after)) {
		cs_oid_fmt(parent_hex, &e->head);
		cs_oid_fmt(blob_hex, &members_blob);
		if (a->napprovals == 0) {
			cli_error("this change alters who holds power over the"
				  " consortium and needs %d root approval%s.",
				  cs_consortium_root_threshold(e->before),
				  cs_consortium_root_threshold(e->before) > 1
					  ? "s"
					  : "");
			cli_say("Each root key holder runs:\n"
				"  cartosync root approve --parent %s"
				" --members %s --key ROOT_KEY > approval.sig\n"
				"then repeat this command with --approval FILE"
				" for each approval.\n",
				parent_hex, blob_hex);
			goto done;
		}
		sigs = json_array();
		approval = json_pack("{s:s, s:s, s:o}", "parent", parent_hex,
				     "members", blob_hex, "signatures", sigs);
		for (size_t i = 0; i < a->napprovals; i++)
			if ((error = read_approval(sigs, a->approvals[i])) <
			    0) {
				status = cli_fail(error);
				goto done;
			}
		if ((error = cs_root_approval_check(e->before, approval,
						    &e->head,
						    &members_blob)) < 0 ||
		    (error = cs_node_write_json(&approval_blob, e->node,
						approval)) < 0) {
			status = cli_fail(error);
			goto done;
		}
		updates[count++] =
			(cs_tree_update){CS_PATH_ROOT_APPROVAL, &approval_blob};
	}
	if ((error = cs_node_commit(&commit, &in_main, e->node, &e->head,
				    updates, count, message)) < 0) {
		status = cli_fail(error);
		goto done;
	}
	status = cli_report_commit(e->cli, e->node, &commit, in_main);
done:
	json_decref(protocol);
	json_decref(approval);
	cs_consortium_free(after);
	return status;
}

static int
members_list(cli_ctx *cli)
{
	members_edit e;
	int status;

	if ((status = edit_open(&e, cli)) != 0) {
		edit_close(&e);
		return status;
	}
	if (cli->json) {
		cli_print_json(e.members);
	} else {
		for (size_t i = 0; i < cs_consortium_key_count(e.before); i++) {
			const cs_member_key *k =
				cs_consortium_key_at(e.before, i);
			const char *name =
				cs_consortium_org_name(e.before, k->org);

			cli_say("%-10s %-12s %-50s %s%s%s\n", k->org,
				k->role == CS_ROLE_COORDINATOR ? "coordinator"
							       : "member",
				k->fingerprint, name ? name : "",
				k->revoked ? " [revoked]" : "",
				cs_consortium_org_active(e.before, k->org)
					? ""
					: " [organisation removed]");
		}
		cli_say("root: %d of %zu keys\n",
			cs_consortium_root_threshold(e.before),
			json_array_size(json_object_get(
				json_object_get(e.members, "root"), "keys")));
	}
	edit_close(&e);
	return EXIT_OK;
}

/* "ssh-ed25519 AAAA... [org] [tls=sha256:...]" */
static int
parse_key_line(char **key, char **tls, const char *path)
{
	char *buf = NULL, *save = NULL, *tok;
	size_t len = 0;
	cs_key *parsed = NULL;
	int error, n = 0;

	*key = *tls = NULL;
	if ((error = cli_read_input(&buf, &len, path, 16384)) < 0)
		return error;
	if ((tok = strchr(buf, '\n')))
		*tok = '\0';
	if ((error = cs_key_parse_public(&parsed, buf)) < 0) {
		free(buf);
		return cs_error_prefix(error, "%s", path);
	}
	*key = cs_key_public_string(parsed);
	cs_key_free(parsed);
	for (tok = strtok_r(buf, " \t", &save); tok;
	     tok = strtok_r(NULL, " \t", &save), n++)
		if (n >= 2 && strncmp(tok, "tls=", 4) == 0)
			*tls = strdup(tok + 4);
	free(buf);
	return 0;
}

static int
tls_hash_valid(const char *s)
{
	if (strncmp(s, "sha256:", 7) != 0 || strlen(s) != 7 + 64)
		return 0;
	for (size_t i = 7; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int
members_add(cli_ctx *cli, const member_args *a)
{
	members_edit e;
	char *key = NULL, *tls = NULL, *message = NULL;
	json_t *orgs, *entry;
	cs_key *parsed = NULL;
	int error, status;

	if (!a->org || !a->role || !a->key_file)
		return cli_usage(usage, "members add needs --org, --role and"
					" --key");
	if (!cs_org_code_valid(a->org) || strcmp(a->org, "shared") == 0)
		return cli_usage(usage, "\"%s\" is not an organisation code"
					" (a-z, 0-9, '-')",
				 a->org);
	if (strcmp(a->role, "member") && strcmp(a->role, "coordinator"))
		return cli_usage(usage, "--role is member or coordinator");
	if ((error = parse_key_line(&key, &tls, a->key_file)) < 0)
		return cli_fail(error);
	if (a->tls) {
		free(tls);
		tls = strdup(a->tls);
	}
	if (tls && !tls_hash_valid(tls)) {
		status = cli_error("TLS key hash \"%s\" is not sha256:<64 hex>",
				   tls);
		goto out;
	}
	if ((status = edit_open(&e, cli)) != 0)
		goto done;
	cs_key_parse_public(&parsed, key);
	if (parsed && cs_consortium_find_key(e.before, parsed)) {
		status = cli_error("that key is listed already");
		goto done;
	}
	orgs = json_object_get(e.members, "organizations");
	entry = json_object_get(orgs, a->org);
	if (json_is_true(json_object_get(entry, "removed"))) {
		status = cli_error("organisation \"%s\" was removed; removals"
				   " are permanent, give it a new code",
				   a->org);
		goto done;
	}
	if (entry == NULL)
		json_object_set_new(orgs, a->org,
				    json_pack("{s:s, s:b}", "name",
					      a->name ? a->name : a->org,
					      "removed", 0));
	else if (a->name)
		json_object_set_new(entry, "name", json_string(a->name));
	entry = json_pack("{s:s, s:s, s:s, s:s}", "key", key, "org", a->org,
			  "role", a->role, "holder",
			  a->holder ? a->holder : "node");
	if (tls)
		json_object_set_new(entry, "tls", json_string(tls));
	json_array_append_new(json_object_get(e.members, "keys"), entry);
	if (asprintf(&message, "Admit a %s key of %s\n", a->role, a->org) < 0)
		message = NULL;
	status = edit_commit(&e, a, message ? message : "Admit a key\n");
done:
	edit_close(&e);
out:
	cs_key_free(parsed);
	free(message);
	free(key);
	free(tls);
	return status;
}

static int
members_revoke(cli_ctx *cli, const member_args *a, int argc, char **argv)
{
	members_edit e;
	json_t *keys, *entry;
	char today[11], *message = NULL;
	size_t i;
	int status, found = 0;

	if (a->argi + 1 != argc)
		return cli_usage(usage, "members revoke takes one key");
	if ((status = edit_open(&e, cli)) != 0) {
		edit_close(&e);
		return status;
	}
	keys = json_object_get(e.members, "keys");
	cli_today(today);
	for (i = 0; i < cs_consortium_key_count(e.before); i++) {
		const cs_member_key *k = cs_consortium_key_at(e.before, i);
		char *pub = cs_key_public_string(k->key);
		int match = strcmp(k->fingerprint, argv[a->argi]) == 0;

		if (!match) {
			char *kf = NULL, *tls = NULL;

			if (parse_key_line(&kf, &tls, argv[a->argi]) == 0)
				match = strcmp(kf, pub) == 0;
			free(kf);
			free(tls);
		}
		free(pub);
		if (!match)
			continue;
		found = 1;
		if (k->revoked) {
			status = cli_error("key %s is revoked already",
					   k->fingerprint);
			goto done;
		}
		entry = json_array_get(keys, i);
		json_object_set_new(entry, "revoked",
				    json_pack("{s:s, s:s}", "reason",
					      a->reason ? a->reason
							: "revoked",
					      "date", today));
		if (asprintf(&message, "Revoke key %s of %s\n", k->fingerprint,
			     k->org) < 0)
			message = NULL;
		break;
	}
	if (!found) {
		status = cli_error("no member key \"%s\" (give its SHA256:"
				   " fingerprint, as 'members list' shows, or"
				   " its public key file)",
				   argv[a->argi]);
		goto done;
	}
	status = edit_commit(&e, a, message ? message : "Revoke a key\n");
done:
	free(message);
	edit_close(&e);
	return status;
}

static int
members_remove(cli_ctx *cli, const member_args *a)
{
	members_edit e;
	json_t *entry;
	char *message = NULL;
	int status;

	if (!a->org)
		return cli_usage(usage, "members remove needs --org");
	if ((status = edit_open(&e, cli)) != 0) {
		edit_close(&e);
		return status;
	}
	entry = json_object_get(json_object_get(e.members, "organizations"),
				a->org);
	if (entry == NULL) {
		status = cli_error("organisation \"%s\" is not a member", a->org);
		goto done;
	}
	if (json_is_true(json_object_get(entry, "removed"))) {
		status = cli_error("organisation \"%s\" is removed already",
				   a->org);
		goto done;
	}
	json_object_set_new(entry, "removed", json_true());
	if (asprintf(&message, "Remove organisation %s\n", a->org) < 0)
		message = NULL;
	status = edit_commit(&e, a, message ? message : "Remove\n");
done:
	free(message);
	edit_close(&e);
	return status;
}

int
cmd_members(cli_ctx *cli, int argc, char **argv)
{
	member_args a;
	int status;

	if (cli_help_requested(argc, argv, usage))
		return EXIT_OK;
	if (argc < 2)
		return cli_usage(usage, "which members command?");
	if ((status = parse_args(&a, argc, argv)) != 0)
		return status;
	if (strcmp(argv[1], "list") == 0)
		return members_list(cli);
	if (strcmp(argv[1], "add") == 0)
		return members_add(cli, &a);
	if (strcmp(argv[1], "revoke") == 0)
		return members_revoke(cli, &a, argc, argv);
	if (strcmp(argv[1], "remove") == 0)
		return members_remove(cli, &a);
	return cli_usage(usage, "unknown members command '%s'", argv[1]);
}
