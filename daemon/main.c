/*
 * cartosyncd — the node daemon.
 *
 *   cartosyncd [-C DIR] [-v]
 *
 * Opens the node in DIR (default $CARTOSYNC_HOME, else the current
 * directory), checks its configuration, and runs until SIGTERM or SIGINT;
 * SIGHUP re-reads the configuration.  Serving and syncing with peers are
 * described in docs/daemon.md.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cartosync/error.h"
#include "cartosync/node.h"
#include "log.h"

static const char usage[] =
	"usage: cartosyncd [-C DIR] [-v]\n\n"
	"Run the cartosync node in DIR (default: $CARTOSYNC_HOME, else the"
	" current\n"
	"directory) until SIGTERM; SIGHUP re-reads DIR/cartosync.conf.\n"
	"  -v   log debug messages too\n";

/* Open the node and check what the daemon needs of its configuration. */
static int
load(cs_node **out, const char *dir)
{
	cs_node *node = NULL;
	const cs_key *key = NULL;
	cs_oid genesis, head;
	char g[CS_OID_HEXSZ + 1], h[CS_OID_HEXSZ + 1] = "none";
	int error;

	*out = NULL;
	if ((error = cs_node_open(&node, dir)) < 0)
		return error;
	if ((error = cs_node_genesis(&genesis, node)) < 0 ||
	    (error = cs_node_key(&key, node)) < 0) {
		cs_node_free(node);
		return error;
	}
	cs_oid_fmt(g, &genesis);
	if (cs_node_main(&head, node) == 0)
		cs_oid_fmt(h, &head);
	log_info("node %s at %s: genesis %.12s, main %.12s",
		 cs_node_org(node), dir, g, h);
	*out = node;
	return 0;
}

int
main(int argc, char **argv)
{
	const char *dir = getenv("CARTOSYNC_HOME");
	cs_node *node = NULL;
	sigset_t set;
	int c, sig;

	if (dir == NULL || *dir == '\0')
		dir = ".";
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		}
	while ((c = getopt(argc, argv, "C:v")) != -1) {
		switch (c) {
		case 'C':
			dir = optarg;
			break;
		case 'v':
			log_set_level(LOG_DEBUG);
			break;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fputs(usage, stderr);
		return 2;
	}

	/* Signals are taken synchronously: no work in handlers. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);

	if (load(&node, dir) < 0) {
		log_error("%s", cs_error_last());
		return 1;
	}
	log_info("ready");
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			cs_node *fresh = NULL;

			log_info("SIGHUP: re-reading the configuration");
			if (load(&fresh, dir) < 0) {
				log_error("keeping the old configuration: %s",
					  cs_error_last());
			} else {
				cs_node_free(node);
				node = fresh;
			}
			continue;
		}
		log_info("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
		break;
	}
	cs_node_free(node);
	return 0;
}
