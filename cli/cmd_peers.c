/*
 * cartosync peers [list] | add NAME URL --org ORG [--key HASH] [--push]
 *                 [--no-fetch] | rm NAME
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cartosync/error.h"
#include "cartosync/peers.h"
#include "cli.h"

static const char usage[] =
	"usage: cartosync [-C DIR] peers [list]\n"
	"       cartosync [-C DIR] peers add NAME URL --org ORG [--key HASH]"
	" [--push]\n"
	"                                    [--no-fetch]\n"
	"       cartosync [-C DIR] peers rm NAME\n\n"
	"The nodes this node syncs with ('cartosync sync', cartosyncd).  URL"
	" is\n"
	"https://HOST:PORT/ (or a directory on this machine); it is bound to"
	" ORG:\n"
	"the peer must show a node TLS key that consortium/members.json lists"
	" for\n"
	"ORG, or the key HASH (sha256:...) given with --key.\n"
	"  --push      push this node's main to the peer (into its\n"
	"              refs/incoming/<this org>/main): for a node that peers"
	" cannot\n"
	"              reach, behind NAT\n"
	"  --no-fetch  do not fetch from the peer\n";

static int
list(cli_ctx *cli, cs_node *node)
{
	cs_peer *peers = NULL;
	size_t n = 0;
	int error;

	if ((error = cs_peers_list(&peers, &n, node)) < 0)
		return cli_fail(error);
	if (cli->json) {
		json_t *out = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(
				out,
				json_pack("{s:s, s:s, s:s, s:s?, s:b, s:b}",
					  "name", peers[i].name, "url",
					  peers[i].url, "org", peers[i].org,
					  "key", peers[i].key, "fetch",
					  peers[i].fetch, "push",
					  peers[i].push));
		cli_print_json(out);
		json_decref(out);
	}
	for (size_t i = 0; i < n; i++)
		cli_say("%-12s %-32s %-8s %s%s%s\n", peers[i].name,
			peers[i].url, peers[i].org,
			peers[i].fetch ? "fetch" : "",
			peers[i].fetch && peers[i].push ? "+" : "",
			peers[i].push ? "push" : "");
	if (n == 0)
		cli_say("no peers: add one with 'cartosync peers add'\n");
	cs_peers_free(peers, n);
	return EXIT_OK;
}

int
cmd_peers(cli_ctx *cli, int argc, char **argv)
{
	static const struct option options[] = {
		{"org", required_argument, NULL, 'o'},
		{"key", required_argument, NULL, 'k'},
		{"push", no_argument, NULL, 'p'},
		{"no-fetch", no_argument, NULL, 'n'},
		{NULL, 0, NULL, 0},
	};
	cs_peer peer = {NULL, NULL, NULL, NULL, 1, 0};
	cs_node *node = NULL;
	const char *verb;
	int c, error, status;

	if (cli_help_requested(argc, argv, usage))
		return EXIT_OK;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'o':
			peer.org = optarg;
			break;
		case 'k':
			peer.key = optarg;
			break;
		case 'p':
			peer.push = 1;
			break;
		case 'n':
			peer.fetch = 0;
			break;
		default:
			return cli_usage(usage, NULL);
		}
	}
	verb = optind < argc ? argv[optind++] : "list";
	if (strcmp(verb, "list") == 0) {
		if (optind != argc)
			return cli_usage(usage, "peers list takes no argument");
	} else if (strcmp(verb, "add") == 0) {
		if (optind + 2 != argc || peer.org == NULL)
			return cli_usage(usage,
					 "peers add takes NAME URL --org ORG");
		peer.name = argv[optind];
		peer.url = argv[optind + 1];
	} else if (strcmp(verb, "rm") == 0) {
		if (optind + 1 != argc)
			return cli_usage(usage, "peers rm takes NAME");
	} else
		return cli_usage(usage, "'%s' is not a peers command", verb);
	if ((status = cli_open_node(cli, &node)) != 0)
		return status;
	if (strcmp(verb, "list") == 0)
		status = list(cli, node);
	else if (strcmp(verb, "add") == 0) {
		if ((error = cs_peers_add(node, &peer)) < 0)
			status = cli_fail(error);
		else
			cli_say("peer %s added: %s, answered for by %s%s%s\n",
				peer.name, peer.url, peer.org,
				peer.fetch ? "; fetched from" : "",
				peer.push ? "; pushed to" : "");
	} else if ((error = cs_peers_remove(node, argv[optind])) < 0)
		status = cli_fail(error);
	else
		cli_say("peer %s removed\n", argv[optind]);
	cs_node_free(node);
	return status;
}
