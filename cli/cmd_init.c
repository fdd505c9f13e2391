/*
 * cartosync init --org CODE --genesis --root-key FILE... [--root-threshold N]
 * cartosync init --org CODE --join SOURCE [--genesis-id ID]
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cartosync/consortium.h"
#include "cartosync/error.h"
#include "cartosync/peers.h"
#include "cartosync/json.h"
#include "cartosync/record.h"
#include "cartosync/repo.h"
#include "cartosync/verify.h"
#include "cli.h"

static const char usage[] =
	"usage: cartosync [-C DIR] init --org CODE --genesis --root-key FILE"
	" [--root-key FILE...]\n"
	"                 [--root-threshold N] [--name NAME] [--schema-dir"
	" DIR]\n"
	"       cartosync [-C DIR] init --org CODE --join SOURCE"
	" [--genesis-id ID]\n"
	"       cartosync [-C DIR] init --org CODE --join URL --token TOKEN\n\n"
	"Create a node in DIR for organisation CODE: a repository, a signing"
	" key\n"
	"(DIR/keys/signing_key) and a separate TLS key.\n\n"
	"  --genesis          start a consortium: this node is its first"
	" coordinator;\n"
	"                     writes members, policy, protocol and schemas"
	" in a\n"
	"                     root commit signed by this node's key\n"
	"  --root-key FILE    a public key of the root set (kept offline;"
	" repeat)\n"
	"  --root-threshold N root approvals needed to change the"
	" coordinator's\n"
	"                     keys (default: a majority of the root keys)\n"
	"  --name NAME        the organisation's name (default: CODE)\n"
	"  --schema-dir DIR   schemas to start from (default: the installed"
	" ones)\n"
	"  --signing-key FILE use this OpenSSH private key instead of making"
	" one\n"
	"  --tls-key FILE     use this PEM private key as the node's TLS key\n"
	"  --join SOURCE      join the consortium whose history is at SOURCE"
	" (a\n"
	"                     node directory or repository path)\n"
	"  --genesis-id ID    the genesis id the coordinator gave you;"
	" joining fails\n"
	"                     if SOURCE's history has another\n"
	"  --join URL --token TOKEN\n"
	"                     join a running node (https://HOST:PORT/);"
	" TOKEN, from\n"
	"                     'cartosync keys join-token' on it, pins the"
	" genesis and\n"
	"                     the key that must answer.  It becomes peer"
	" \"hub\"; the\n"
	"                     history arrives once this node is admitted"
	" ('cartosync\n"
	"                     sync')\n";

static int
read_public_key_line(char **out, const char *path)
{
	char *buf = NULL, *nl;
	size_t len = 0;
	cs_key *key = NULL;
	int error;

	*out = NULL;
	if ((error = cli_read_input(&buf, &len, path, 16384)) < 0)
		return error;
	if ((nl = strchr(buf, '\n')))
		*nl = '\0';
	if ((error = cs_key_parse_public(&key, buf)) < 0) {
		free(buf);
		return cs_error_prefix(error, "%s", path);
	}
	*out = cs_key_public_string(key);
	cs_key_free(key);
	free(buf);
	return *out ? 0 : cs_error_set(CS_ERROR, "out of memory");
}

typedef struct {
	cs_node *node;
	cs_tree_update *updates;
	cs_oid *ids;
	char **paths;
	size_t n;
	size_t cap;
} file_set;

static int
file_set_add(file_set *fs, const char *path, const json_t *value)
{
	if (fs->n == fs->cap) {
		size_t cap = fs->cap ? fs->cap * 2 : 32;

		fs->updates = realloc(fs->updates, cap * sizeof(*fs->updates));
		fs->ids = realloc(fs->ids, cap * sizeof(*fs->ids));
		fs->paths = realloc(fs->paths, cap * sizeof(*fs->paths));
		if (!fs->updates || !fs->ids || !fs->paths)
			return cs_error_set(CS_ERROR, "out of memory");
		fs->cap = cap;
	}
	if ((fs->paths[fs->n] = strdup(path)) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	fs->n++;
	return cs_node_write_json(&fs->ids[fs->n - 1], fs->node, value);
}

static void
file_set_clear(file_set *fs)
{
	for (size_t i = 0; i < fs->n; i++)
		free(fs->paths[i]);
	free(fs->paths);
	free(fs->ids);
	free(fs->updates);
}

static int
add_schema_dir(file_set *fs, const char *dir)
{
	struct dirent **names = NULL;
	int n, error = 0, count = 0;

	n = scandir(dir, &names, NULL, alphasort);
	if (n < 0)
		return cs_error_set(CS_ENOTFOUND, "cannot read schemas in '%s'",
				    dir);
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		size_t len = strlen(name);
		char *file = NULL, *dest = NULL;
		json_t *doc = NULL;

		if (error == 0 && len > 12 &&
		    strcmp(name + len - 12, ".schema.json") == 0) {
			if (asprintf(&file, "%s/%s", dir, name) < 0 ||
			    asprintf(&dest, CS_PATH_SCHEMA_DIR "/%s", name) < 0)
				error = cs_error_set(CS_ERROR, "out of memory");
			else if ((error = cs_json_load_file(&doc, file)) == 0)
				error = file_set_add(fs, dest, doc);
			count++;
		}
		json_decref(doc);
		free(file);
		free(dest);
		free(names[i]);
	}
	free(names);
	if (error == 0 && count == 0)
		error = cs_error_set(CS_ENOTFOUND, "no *.schema.json in '%s'",
				     dir);
	return error;
}

static int
genesis(cs_node *node, const char *org, const char *name,
	char **root_keys, size_t nroot, int threshold, const char *schema_dir)
{
	json_t *members = NULL, *policy = NULL, *protocol = NULL, *keys, *roots;
	file_set fs = {node, NULL, NULL, NULL, 0, 0};
	char *tls = NULL, *pub = NULL, *policy_path = NULL, *fp = NULL;
	const cs_key *key = NULL;
	cs_verify_report *report = NULL;
	cs_verify_options opts;
	cs_oid commit;
	int in_main, error;

	if ((error = cs_node_key(&key, node)) < 0 ||
	    (error = cs_node_tls_hash(&tls, node)) < 0)
		goto done;
	pub = cs_key_public_string(key);
	fp = cs_key_fingerprint(key);
	keys = json_array();
	json_array_append_new(
		keys, json_pack("{s:s, s:s, s:s, s:s, s:s}", "key", pub, "org",
				org, "holder", "coordination node", "role",
				"coordinator", "tls", tls));
	roots = json_array();
	for (size_t i = 0; i < nroot; i++)
		json_array_append_new(roots, json_string(root_keys[i]));
	members = json_pack("{s:{s:{s:s, s:b}}, s:o, s:{s:i, s:o}}",
			    "organizations", org, "name", name, "removed", 0,
			    "keys", keys, "root",
			    "threshold", threshold, "keys", roots);
	protocol = json_pack("{s:i, s:s}", "protocol", CS_PROTOCOL_VERSION,
			     "merge", CS_MERGE_ALGORITHM);
	if (asprintf(&policy_path, "%s/default-policy.json", schema_dir) < 0) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	if ((error = cs_json_load_file(&policy, policy_path)) < 0)
		goto done;
	if ((error = file_set_add(&fs, CS_PATH_MEMBERS, members)) < 0 ||
	    (error = file_set_add(&fs, CS_PATH_POLICY, policy)) < 0 ||
	    (error = file_set_add(&fs, CS_PATH_PROTOCOL, protocol)) < 0 ||
	    (error = add_schema_dir(&fs, schema_dir)) < 0)
		goto done;
	for (size_t i = 0; i < fs.n; i++)
		fs.updates[i] = (cs_tree_update){fs.paths[i], &fs.ids[i]};
	if ((error = cs_node_commit(&commit, &in_main, node, NULL, fs.updates,
				    fs.n, "Genesis of the consortium\n")) < 0)
		goto done;

	/* The genesis must pass the rules every node will apply to it. */
	memset(&opts, 0, sizeof(opts));
	opts.genesis = &commit;
	opts.tips = &commit;
	opts.ntips = 1;
	if ((error = cs_verify(&report, cs_node_repo(node), &opts)) < 0)
		goto done;
	if (report->nissues) {
		error = cs_error_set(CS_EVERIFY, "the genesis does not verify: %s",
				     report->issues[0].reason);
		goto done;
	}
	error = cs_node_set_genesis(node, &commit);
done:
	cs_verify_report_free(report);
	file_set_clear(&fs);
	json_decref(members);
	json_decref(policy);
	json_decref(protocol);
	free(policy_path);
	free(tls);
	free(pub);
	free(fp);
	return error;
}

static int
find_root(cs_oid *out, cs_repo *repo, const cs_oid *tip)
{
	cs_oid *order = NULL;
	size_t n = 0;
	int error;

	if ((error = cs_repo_topo_order(&order, &n, repo, tip, 1)) < 0)
		return error;
	if (n == 0)
		error = cs_error_set(CS_ENOTFOUND, "the history is empty");
	else
		*out = order[0];
	free(order);
	return error;
}

/*
 * Join a running peer: TOKEN ("cs1:ORG:GENESIS:HEX", from 'cartosync keys
 * join-token' on that node) pins the genesis and the key that must answer
 * for ORG at URL.  The peer becomes peer "hub" (fetched from and pushed
 * to); the history comes with the first sync, which needs this node to be
 * admitted first: until then the peer refuses it, and that is not an
 * error of the join.
 */
static int
join_url(cs_node *node, const char *url, const char *token, int *admitted)
{
	char org[40], genesis[CS_OID_HEXSZ + 1], key[80];
	cs_peer peer = {"hub", (char *)url, org, key, 1, 1};
	cs_peer_round round;
	cs_oid g;
	int error;

	*admitted = 0;
	if (token == NULL)
		return cs_error_set(CS_EINVALID,
				    "joining %s needs --token: ask the"
				    " coordinator for the output of 'cartosync"
				    " keys join-token' on that node",
				    url);
	if (sscanf(token, "cs1:%39[a-z0-9-]:%40[0-9a-f]:%64[0-9a-f]", org,
		   genesis, key + 7) != 3 ||
	    strlen(genesis) != CS_OID_HEXSZ || strlen(key + 7) != 64 ||
	    cs_oid_parse(&g, genesis, CS_OID_HEXSZ) < 0)
		return cs_error_set(CS_EINVALID,
				    "--token: \"%s\" is not a join token"
				    " (cs1:ORG:GENESIS:KEY)",
				    token);
	memcpy(key, "sha256:", 7);
	if ((error = cs_node_set_genesis(node, &g)) < 0 ||
	    (error = cs_peers_add(node, &peer)) < 0)
		return error;
	error = cs_peer_sync(&round, node, &peer, NULL);
	if (error == CS_EPERM && strstr(cs_error_last(), "member")) {
		cli_say("%s answers, but does not know this node yet: %s\n",
			url, cs_error_last());
		return 0;
	}
	if (error < 0)
		return error;
	*admitted = 1;
	cs_peer_round_dispose(&round);
	return 0;
}

static int
join(cs_node *node, const char *source, const char *genesis_id)
{
	cs_repo *repo = cs_node_repo(node);
	cs_verify_report *report = NULL;
	cs_verify_options opts;
	cs_oid tip, root, expected;
	char hex[CS_OID_HEXSZ + 1];
	int error;

	if (genesis_id &&
	    cs_oid_parse(&expected, genesis_id, strlen(genesis_id)) < 0)
		return cs_error_set(CS_EINVALID,
				    "--genesis-id: \"%s\" is not a commit id",
				    genesis_id);
	if ((error = cs_repo_fetch(repo, source,
				   "+refs/heads/main:refs/cartosync/join")) <
	    0)
		return cs_error_prefix(error, "cannot fetch from '%s'", source);
	if ((error = cs_repo_ref_read(&tip, repo, "refs/cartosync/join")) < 0 ||
	    (error = find_root(&root, repo, &tip)) < 0)
		return error;
	cs_oid_fmt(hex, &root);
	if (genesis_id && cs_oid_cmp(&root, &expected) != 0)
		return cs_error_set(CS_EVERIFY,
				    "'%s' holds the history of genesis %s, not"
				    " %s",
				    source, hex, genesis_id);
	memset(&opts, 0, sizeof(opts));
	opts.genesis = &root;
	opts.tips = &tip;
	opts.ntips = 1;
	if ((error = cs_verify(&report, repo, &opts)) < 0)
		return error;
	if (report->nissues) {
		error = cs_error_set(CS_EVERIFY,
				     "the history at '%s' does not verify: %s",
				     source, report->issues[0].reason);
		cs_verify_report_free(report);
		return error;
	}
	cs_verify_report_free(report);
	if ((error = cs_repo_ref_cas(repo, CS_REF_MAIN, &tip, NULL,
				     "join")) < 0 ||
	    (error = cs_repo_ref_cas(repo, "refs/cartosync/join", NULL, &tip,
				     NULL)) < 0)
		return error;
	if (!genesis_id)
		cli_say("joined the consortium of genesis %s: check this id"
			" with the coordinator\n",
			hex);
	return cs_node_set_genesis(node, &root);
}

static int
remove_entry(const char *path, const struct stat *st, int flag,
	     struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int
cmd_init(cli_ctx *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{"org", required_argument, NULL, 'o'},
		{"genesis", no_argument, NULL, 'g'},
		{"join", required_argument, NULL, 'j'},
		{"genesis-id", required_argument, NULL, 'G'},
		{"root-key", required_argument, NULL, 'r'},
		{"root-threshold", required_argument, NULL, 't'},
		{"name", required_argument, NULL, 'n'},
		{"schema-dir", required_argument, NULL, 's'},
		{"signing-key", required_argument, NULL, 'k'},
		{"tls-key", required_argument, NULL, 'T'},
		{"token", required_argument, NULL, 'J'},
		{NULL, 0, NULL, 0},
	};
	const char *org = NULL, *join_source = NULL, *genesis_id = NULL;
	const char *name = NULL, *schema_dir = NULL;
	const char *signing_key = NULL, *tls_key = NULL;
	char *root_keys[16];
	size_t nroot = 0;
	int do_genesis = 0, threshold = 0, c, error, status = EXIT_ERROR;
	int created_dir = 0, admitted = 0;
	const char *token = NULL;
	cs_node *node = NULL;
	struct stat st;

	if (cli_help_requested(argc, argv, usage))
		return EXIT_OK;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'o':
			org = optarg;
			break;
		case 'g':
			do_genesis = 1;
			break;
		case 'j':
			join_source = optarg;
			break;
		case 'G':
			genesis_id = optarg;
			break;
		case 'r':
			if (nroot == sizeof(root_keys) / sizeof(*root_keys))
				return cli_usage(usage, "at most 16 root keys");
			if ((error = read_public_key_line(&root_keys[nroot],
							  optarg)) < 0) {
				status = cli_fail(error);
				goto done;
			}
			nroot++;
			break;
		case 't':
			threshold = atoi(optarg);
			break;
		case 'n':
			name = optarg;
			break;
		case 's':
			schema_dir = optarg;
			break;
		case 'k':
			signing_key = optarg;
			break;
		case 'T':
			tls_key = optarg;
			break;
		case 'J':
			token = optarg;
			break;
		default:
			status = cli_usage(usage, NULL);
			goto done;
		}
	}
	if (optind != argc) {
		status = cli_usage(usage, "unexpected argument '%s'",
				   argv[optind]);
		goto done;
	}
	if (org == NULL || do_genesis == (join_source != NULL)) {
		status = cli_usage(usage, "give --org and one of --genesis or"
					  " --join");
		goto done;
	}
	if (do_genesis && nroot == 0) {
		status = cli_usage(
			usage,
			"the genesis needs a root key set: make keys offline"
			" with 'cartosync keys generate FILE' and give each"
			" FILE.pub with --root-key (3 keys, 2 needed, is a good"
			" choice)");
		goto done;
	}
	if (threshold == 0)
		threshold = (int)nroot / 2 + 1;
	if (do_genesis && (threshold < 1 || (size_t)threshold > nroot)) {
		status = cli_usage(usage,
				   "--root-threshold must be between 1 and"
				   " the number of root keys (%zu)",
				   nroot);
		goto done;
	}
	created_dir = stat(cli->dir, &st) < 0;
	if ((error = cs_node_create_with_keys(&node, cli->dir, org, signing_key,
					      tls_key)) < 0) {
		status = cli_fail(error);
		goto done;
	}
	if (do_genesis)
		error = genesis(node, org, name ? name : org, root_keys, nroot,
				threshold,
				schema_dir ? schema_dir
					   : cli_installed_schema_dir());
	else if (strncmp(join_source, "https://", 8) == 0)
		error = join_url(node, join_source, token, &admitted);
	else {
		error = join(node, join_source, genesis_id);
		admitted = 1;
	}
	if (error < 0) {
		status = cli_fail(error);
		cs_node_free(node);
		node = NULL;
		if (created_dir)
			nftw(cli->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
		goto done;
	}
	{
		const cs_key *key = NULL;
		char *pub = NULL, *tls = NULL, hex[CS_OID_HEXSZ + 1];
		cs_oid g;

		cs_node_key(&key, node);
		pub = cs_key_public_string(key);
		cs_node_tls_hash(&tls, node);
		cs_node_genesis(&g, node);
		cs_oid_fmt(hex, &g);
		if (cli->json) {
			json_t *out = json_pack(
				"{s:s, s:s, s:s, s:s?, s:s}", "dir", cli->dir,
				"org", org, "genesis", hex, "tls", tls, "key",
				pub);

			cli_print_json(out);
			json_decref(out);
		}
		cli_say("created node '%s' for %s (genesis %s)\n", cli->dir,
			org, hex);
		if (join_source && strncmp(join_source, "https://", 8) == 0 &&
		    admitted)
			cli_say("joined through %s: history fetched, verified"
				" and merged\n",
				join_source);
		else if (!do_genesis && !admitted)
			cli_say("to be admitted, send the coordinator this"
				" line (the output of 'cartosync -C %s keys"
				" public'),\nthen run 'cartosync -C %s sync':\n"
				"%s %s tls=%s\n",
				cli->dir, cli->dir, pub, org, tls);
		else if (!do_genesis &&
			 strncmp(join_source, "https://", 8) != 0)
			cli_say("to be admitted, send the coordinator the"
				" output of 'cartosync -C %s keys public'\n",
				cli->dir);
		free(pub);
		free(tls);
	}
	status = EXIT_OK;
done:
	for (size_t i = 0; i < nroot; i++)
		free(root_keys[i]);
	cs_node_free(node);
	return status;
}
