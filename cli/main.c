/*
 * cartosync — the command for partners' data officers and the coordinator.
 *
 *   cartosync [-C DIR] [--json] COMMAND [ARGS]
 *
 * DIR is the node (docs/cli.md); it defaults to $CARTOSYNC_HOME, else the
 * current directory.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/error.h"
#include "cli.h"

static const cli_command commands[] = {
	{"init", cmd_init, "create a node: the consortium's genesis, or join"},
	{"keys", cmd_keys, "print this node's public key, allowed signers"},
	{"members", cmd_members, "list, admit, revoke and remove members"},
	{"merge", cmd_merge, "make main the merge of every held history"},
	{"root", cmd_root, "approve a change of the coordinator's keys"},
	{"add", cmd_add, "add a record from a file or standard input"},
	{"edit", cmd_edit, "edit a record in $EDITOR"},
	{"fetch", cmd_fetch, "bring in and verify another node's history"},
	{"sync", cmd_sync, "sync now with the configured peers"},
	{"bundle", cmd_bundle, "carry history on a USB key"},
	{"peers", cmd_peers, "list, add and remove peers"},
	{"status", cmd_status, "peers, heads, quarantine, open conflicts"},
	{"rm", cmd_rm, "remove a record"},
	{"show", cmd_show, "show a record"},
	{"list", cmd_list, "list records, with filters"},
	{"log", cmd_log, "show the history, or a record's"},
	{"validate", cmd_validate, "check record files against the schemas"},
	{"verify", cmd_verify, "verify signatures and authority of history"},
	{"publish", cmd_publish, "make a record public"},
	{"retire", cmd_retire, "withdraw a record from the map"},
	{"confirm", cmd_confirm, "record that a record was verified"},
	{"conflicts", cmd_conflicts, "the review queue: list, show, resolve"},
};

static void
usage(FILE *f)
{
	fputs("usage: cartosync [-C DIR] [--json] COMMAND [ARGS]\n\n"
	      "DIR is the node (default: $CARTOSYNC_HOME, else the current"
	      " directory).\n"
	      "Human output goes to stderr; --json writes JSON to stdout.\n"
	      "Exit status: 0 success, 1 error, 2 usage, 3 verification"
	      " failed.\n\ncommands:\n",
	      f);
	for (size_t i = 0; i < sizeof(commands) / sizeof(*commands); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name,
			commands[i].summary);
	fputs("\n'cartosync COMMAND --help' describes a command.\n", f);
}

int
main(int argc, char **argv)
{
	cli_ctx cli = {NULL, 0};
	int i = 1, out = 0;

	signal(SIGPIPE, SIG_IGN);
	cli.dir = getenv("CARTOSYNC_HOME");
	if (cli.dir == NULL || *cli.dir == '\0')
		cli.dir = ".";

	/* --json is accepted anywhere before "--". */
	for (int k = 1; k < argc; k++) {
		if (strcmp(argv[k], "--") == 0) {
			for (; k < argc; k++)
				argv[out++ + 1] = argv[k];
			break;
		}
		if (strcmp(argv[k], "--json") == 0)
			cli.json = 1;
		else
			argv[out++ + 1] = argv[k];
	}
	argc = out + 1;
	argv[argc] = NULL;

	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-C") == 0 && i + 1 < argc) {
			cli.dir = argv[i + 1];
			i += 2;
		} else if (strncmp(argv[i], "-C", 2) == 0 && argv[i][2]) {
			cli.dir = argv[i] + 2;
			i++;
		} else if (strcmp(argv[i], "-h") == 0 ||
			   strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return EXIT_OK;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("cartosync %s\n", CS_VERSION);
			return EXIT_OK;
		} else {
			fprintf(stderr, "cartosync: unknown option '%s'\n",
				argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[i], "help") == 0) {
		if (i + 1 < argc) {
			char *help[] = {argv[i + 1], "--help", NULL};

			for (size_t c = 0;
			     c < sizeof(commands) / sizeof(*commands); c++)
				if (strcmp(commands[c].name, argv[i + 1]) == 0)
					return commands[c].run(&cli, 2, help);
		}
		usage(stdout);
		return EXIT_OK;
	}
	for (size_t c = 0; c < sizeof(commands) / sizeof(*commands); c++)
		if (strcmp(commands[c].name, argv[i]) == 0)
			return commands[c].run(&cli, argc - i, argv + i);
	fprintf(stderr, "cartosync: '%s' is not a command\n", argv[i]);
	usage(stderr);
	return EXIT_USAGE;
}
