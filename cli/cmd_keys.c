/*
 * cartosync keys public | join-token | allowed-signers | generate FILE
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/consortium.h"
#include "cartosync/error.h"
#include "cli.h"

static const char usage[] =
	"usage: cartosync [-C DIR] keys public\n"
	"       cartosync [-C DIR] keys join-token\n"
	"       cartosync [-C DIR] keys allowed-signers\n"
	"       cartosync keys generate FILE [COMMENT]\n\n"
	"  public           print this node's signing key (OpenSSH one-line"
	" format),\n"
	"                   followed by its organisation and TLS key hash: the"
	" line\n"
	"                   the coordinator gives to 'members add --key'\n"
	"  join-token       print the token with which a new node joins this"
	" one over\n"
	"                   HTTPS ('init --join URL --token TOKEN'): this"
	" node's\n"
	"                   organisation, the genesis id and its TLS key hash\n"
	"  allowed-signers  print the allowed signers file with which stock"
	" git\n"
	"                   verifies every edit commit:\n"
	"                     git -c gpg.ssh.allowedSignersFile=FILE"
	" verify-commit REV\n"
	"  generate FILE    make a new key pair FILE and FILE.pub (for the"
	" offline\n"
	"                   root keys)\n";

static int
keys_public(cli_ctx *cli)
{
	cs_node *node = NULL;
	const cs_key *key = NULL;
	char *pub = NULL, *tls = NULL, *fp = NULL;
	int error, status = EXIT_ERROR;

	if ((status = cli_open_node(cli, &node)) != 0)
		return status;
	if ((error = cs_node_key(&key, node)) < 0 ||
	    (error = cs_node_tls_hash(&tls, node)) < 0) {
		status = cli_fail(error);
		goto done;
	}
	pub = cs_key_public_string(key);
	fp = cs_key_fingerprint(key);
	if (cli->json) {
		json_t *out = json_pack("{s:s, s:s, s:s, s:s}", "key", pub,
					"org", cs_node_org(node), "tls", tls,
					"fingerprint", fp);

		cli_print_json(out);
		json_decref(out);
	} else {
		printf("%s %s tls=%s\n", pub, cs_node_org(node), tls);
	}
	status = EXIT_OK;
done:
	free(pub);
	free(tls);
	free(fp);
	cs_node_free(node);
	return status;
}

static int
keys_join_token(cli_ctx *cli)
{
	cs_node *node = NULL;
	char *tls = NULL, hex[CS_OID_HEXSZ + 1];
	cs_oid genesis;
	int error, status;

	if ((status = cli_open_node(cli, &node)) != 0)
		return status;
	if ((error = cs_node_genesis(&genesis, node)) < 0 ||
	    (error = cs_node_tls_hash(&tls, node)) < 0) {
		status = cli_fail(error);
		goto done;
	}
	cs_oid_fmt(hex, &genesis);
	printf("cs1:%s:%s:%s\n", cs_node_org(node), hex, tls + 7);
	status = EXIT_OK;
done:
	free(tls);
	cs_node_free(node);
	return status;
}

static int
keys_allowed_signers(cli_ctx *cli)
{
	cs_node *node = NULL;
	cs_consortium *state = NULL;
	cs_oid head, tree;
	json_t *root_keys, *v, *list = json_array();
	size_t i;
	int error, status;

	if ((status = cli_open_node(cli, &node)) != 0)
		return status;
	if ((error = cli_main_head(node, &head)) < 0 ||
	    (error = cs_repo_commit_tree(&tree, cs_node_repo(node), &head)) <
		    0 ||
	    (error = cs_consortium_load(&state, cs_node_repo(node), &tree)) <
		    0) {
		status = cli_fail(error);
		goto done;
	}
	/* Every key the consortium ever admitted, revoked ones included:
	 * git checks signatures; authority is 'cartosync verify's job. */
	for (i = 0; i < cs_consortium_key_count(state); i++) {
		const cs_member_key *k = cs_consortium_key_at(state, i);
		char *pub = cs_key_public_string(k->key);

		if (cli->json)
			json_array_append_new(
				list, json_pack("{s:s, s:s, s:b}", "principal",
						k->org, "key", pub, "revoked",
						k->revoked));
		else
			printf("%s%s namespaces=\"git\" %s\n",
			       k->revoked ? "# revoked, kept so that old edits"
					    " still verify:\n"
					  : "",
			       k->org, pub);
		free(pub);
	}
	root_keys = json_object_get(
		json_object_get(cs_consortium_members(state), "root"), "keys");
	json_array_foreach(root_keys, i, v) {
		if (cli->json)
			json_array_append_new(
				list, json_pack("{s:s, s:O, s:b}", "principal",
						"root", "key", v, "revoked", 0));
		else
			printf("root namespaces=\"git\" %s\n",
			       json_string_value(v));
	}
	if (cli->json)
		cli_print_json(list);
	status = EXIT_OK;
done:
	json_decref(list);
	cs_consortium_free(state);
	cs_node_free(node);
	return status;
}

static int
keys_generate(const char *path, const char *comment)
{
	cs_key *key = NULL;
	char *fp;
	int error;

	if ((error = cs_key_generate(&key)) < 0 ||
	    (error = cs_key_save_private(key, path,
					 comment ? comment : "cartosync")) < 0) {
		cs_key_free(key);
		return cli_fail(error);
	}
	fp = cs_key_fingerprint(key);
	cli_say("wrote %s and %s.pub (%s)\n", path, path, fp ? fp : "");
	free(fp);
	cs_key_free(key);
	return EXIT_OK;
}

int
cmd_keys(cli_ctx *cli, int argc, char **argv)
{
	if (cli_help_requested(argc, argv, usage))
		return EXIT_OK;
	if (argc == 2 && strcmp(argv[1], "public") == 0)
		return keys_public(cli);
	if (argc == 2 && strcmp(argv[1], "join-token") == 0)
		return keys_join_token(cli);
	if (argc == 2 && strcmp(argv[1], "allowed-signers") == 0)
		return keys_allowed_signers(cli);
	if ((argc == 3 || argc == 4) && strcmp(argv[1], "generate") == 0)
		return keys_generate(argv[2], argc == 4 ? argv[3] : NULL);
	return cli_usage(usage, argc < 2 ? "which keys command?"
					 : "unknown or incomplete keys command");
}
