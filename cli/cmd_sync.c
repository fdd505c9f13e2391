/*
 * cartosync sync [PEER...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cartosync/error.h"
#include "cartosync/peers.h"
#include "cli.h"

static const char usage[] =
	"usage: cartosync [-C DIR] sync [PEER...]\n\n"
	"Sync now with the configured peers (all of them, or those named):"
	" fetch\n"
	"and verify their history, merge, and push this node's main to those"
	" marked\n"
	"--push ('cartosync peers').  A peer that cannot be reached is"
	" reported and\n"
	"the others go on.  Exit status 1 if any peer failed, 3 if a peer's"
	" history\n"
	"was (partly) rejected.  Then packs the node's store when it has"
	" gathered\n"
	"enough loose objects or packs.\n";

typedef struct {
	const char *peer;
	int shown;
} progress_state;

/* A progress bar on a terminal, for long fetches. */
static void
progress(const cs_transfer_progress *p, void *arg)
{
	progress_state *st = arg;

	if (p->total_objects < 1000)
		return;
	fprintf(stderr, "\r%s: receiving objects %3u%% (%llu/%llu), %.1f MB",
		st->peer,
		(unsigned)(100 * p->indexed_objects / p->total_objects),
		(unsigned long long)p->indexed_objects,
		(unsigned long long)p->total_objects,
		(double)p->received_bytes / 1e6);
	st->shown = 1;
}

/* Pack the store when it wants it, as the daemon does (docs/daemon.md
 * "The store"): a node run only with this command has no daemon to do it.
 * A failure is reported, not a failure of the sync. */
static void
pack_store(cs_node *node)
{
	cs_repo_store_counts before, after;
	int done;

	if (cs_node_pack(node, &done, &before, &after) < 0)
		cli_error("packing the store: %s", cs_error_last());
	else if (done == CS_REPO_PACK_ALL)
		cli_say("store: %zu packs made one\n", before.packs);
	else if (done == CS_REPO_PACK_LOOSE)
		cli_say("store: loose objects packed (%zu before, %zu left)\n",
			before.loose, after.loose);
}

int
cmd_sync(cli_ctx *cli, int argc, char **argv)
{
	cs_peer *peers = NULL;
	cs_node *node = NULL;
	json_t *out = NULL;
	size_t n = 0, done = 0;
	int error, status = EXIT_OK;

	if (cli_help_requested(argc, argv, usage))
		return EXIT_OK;
	for (int i = 1; i < argc; i++)
		if (argv[i][0] == '-')
			return cli_usage(usage, "unknown option '%s'", argv[i]);
	if ((status = cli_open_node(cli, &node)) != 0)
		return status;
	out = json_array();
	if ((error = cs_peers_list(&peers, &n, node)) < 0) {
		status = cli_fail(error);
		goto done;
	}
	for (int i = 1; i < argc; i++) {
		int known = 0;

		for (size_t k = 0; k < n && !known; k++)
			known = strcmp(peers[k].name, argv[i]) == 0;
		if (!known) {
			status = cli_error("no peer named %s: see 'cartosync"
					   " peers'", argv[i]);
			goto done;
		}
	}
	for (size_t k = 0; k < n; k++) {
		progress_state st = {peers[k].name, 0};
		cs_transfer_limits limits;
		cs_peer_round round;
		char hex[CS_OID_HEXSZ + 1];
		int wanted = argc == 1;

		for (int i = 1; i < argc && !wanted; i++)
			wanted = strcmp(peers[k].name, argv[i]) == 0;
		if (!wanted)
			continue;
		done++;
		if ((error = cs_peers_limits(&limits, node)) < 0) {
			status = cli_fail(error);
			goto done;
		}
		if (isatty(2)) {
			limits.progress = progress;
			limits.progress_arg = &st;
		}
		error = cs_peer_sync(&round, node, &peers[k], &limits);
		if (st.shown)
			fputc('\n', stderr);
		if (error < 0) {
			cli_error("%s: %s", peers[k].name, cs_error_last());
			json_array_append_new(
				out, json_pack("{s:s, s:s}", "peer",
					       peers[k].name, "error",
					       cs_error_last()));
			if (status == EXIT_OK)
				status = EXIT_ERROR;
			continue;
		}
		if (round.rejected) {
			cli_print_rejections(round.report);
			status = EXIT_VERIFY;
		}
		cs_oid_fmt(hex, &round.main);
		if (round.fetched) {
			char head[CS_OID_HEXSZ + 1];

			cs_oid_fmt(head, &round.head);
			cli_say("%s: %s (%.12s)%s\n", peers[k].name,
				round.rejected ? "fetched, partly rejected"
				: round.up_to_date ? "nothing new"
						   : "fetched and verified",
				head,
				round.rejected ? ": kept in quarantine" : "");
		}
		if (round.reapplied)
			cli_say("%zu edit%s of this node re-applied on valid"
				" history\n",
				round.reapplied,
				round.reapplied == 1 ? "" : "s");
		if (round.pushed)
			cli_say("%s: pushed main (%.12s)\n", peers[k].name,
				hex);
		cli_say("main %s %.12s\n",
			round.main_changed ? "is now" : "stays", hex);
		json_array_append_new(
			out, json_pack("{s:s, s:b, s:I, s:b, s:s, s:b}", "peer",
				       peers[k].name, "fetched", round.fetched,
				       "rejected", (json_int_t)round.rejected,
				       "pushed", round.pushed, "main", hex,
				       "main_changed", round.main_changed));
		cs_peer_round_dispose(&round);
	}
	if (done == 0)
		cli_say("no peers: add one with 'cartosync peers add'\n");
	else
		pack_store(node);
	if (cli->json)
		cli_print_json(out);
done:
	json_decref(out);
	cs_peers_free(peers, n);
	cs_node_free(node);
	return status;
}
