/*
 * cartosync root approve --parent ID --members BLOB --key FILE
 *
 * A root key holder approves a change of the coordinator's keys or of the
 * root set (docs/architecture.md "Root keys").  Needs no node: root keys
 * are kept offline.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/consortium.h"
#include "cartosync/error.h"
#include "cartosync/sshsig.h"
#include "cli.h"

static const char usage[] =
	"usage: cartosync root approve --parent ID --members BLOB --key FILE\n\n"
	"Print a root approval (an SSH signature) of the members file BLOB"
	" on top\n"
	"of commit ID, as asked by 'cartosync members'.  Give the output file"
	" to\n"
	"the coordinator, who passes it with --approval.\n";

int
cmd_root(cli_ctx *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{"parent", required_argument, NULL, 'p'},
		{"members", required_argument, NULL, 'm'},
		{"key", required_argument, NULL, 'k'},
		{NULL, 0, NULL, 0},
	};
	const char *parent = NULL, *members = NULL, *key_path = NULL;
	cs_oid p, m;
	cs_key *key = NULL;
	char *message = NULL, *armor = NULL;
	int c, error;

	(void)cli;
	if (cli_help_requested(argc, argv, usage))
		return EXIT_OK;
	if (argc < 2 || strcmp(argv[1], "approve") != 0)
		return cli_usage(usage, "which root command?");
	optind = 2;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'p':
			parent = optarg;
			break;
		case 'm':
			members = optarg;
			break;
		case 'k':
			key_path = optarg;
			break;
		default:
			return cli_usage(usage, NULL);
		}
	}
	if (!parent || !members || !key_path || optind != argc)
		return cli_usage(usage, "give --parent, --members and --key");
	if (cs_oid_parse(&p, parent, strlen(parent)) < 0 ||
	    cs_oid_parse(&m, members, strlen(members)) < 0)
		return cli_usage(usage, "--parent and --members take 40-digit"
					" ids");
	if ((error = cs_key_load_private(&key, key_path)) < 0)
		return cli_fail(error);
	message = cs_root_approval_message(&p, &m);
	if (message == NULL ||
	    (error = cs_sshsig_sign(&armor, key, CS_SSHSIG_NAMESPACE_ROOT,
				    (const uint8_t *)message,
				    strlen(message))) < 0) {
		cs_key_free(key);
		free(message);
		return cli_fail(error);
	}
	printf("%s\n", armor);
	free(armor);
	free(message);
	cs_key_free(key);
	return EXIT_OK;
}
