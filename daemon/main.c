/*
 * cartosyncd — the node daemon.
 *
 *   cartosyncd [-C DIR] [-v]
 *   cartosyncd --pre-receive
 *
 * Opens the node in DIR (default $CARTOSYNC_HOME, else the current
 * directory), checks its configuration, serves it over HTTPS if it has a
 * [serve] section, and runs until SIGTERM or SIGINT; SIGHUP re-reads the
 * configuration.  Serving is described in docs/daemon.md.
 *
 * --pre-receive is the daemon's pre-receive hook (git receive-pack runs it
 * for pushes that came through the server): it refuses any ref outside
 * refs/incoming/<pushing organisation>/ and any deletion, then has the
 * pushed history verified before git keeps it.
 *
 * --work DIR LEVEL KIND ARG is a round with a peer or an integration, run
 * by the daemon's sync thread in a process of its own (syncer.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <event2/event.h>

#include "cartosync/error.h"
#include "cartosync/node.h"
#include "cartosync/oid.h"
#include "cartosync/peers.h"
#include "cartosync/repo.h"
#include "cartosync/sync.h"
#include "log.h"
#include "server.h"
#include "syncer.h"


/* The most refs one push may update. */
#define PUSH_MAX_REFS 1000
/* The most heads one organisation may keep under refs/incoming/<org>/
 * (`[serve] max-pushed-heads`). */
#define PUSHED_HEADS_DEFAULT 8

static const char usage[] =
	"usage: cartosyncd [-C DIR] [-v]\n\n"
	"Run the cartosync node in DIR (default: $CARTOSYNC_HOME, else the"
	" current\n"
	"directory) until SIGTERM; SIGHUP re-reads DIR/cartosync.conf.\n"
	"With a [serve] section the node is served over HTTPS"
	" (docs/daemon.md).\n"
	"  -v   log debug messages too\n";

struct daemon {
	const char *dir;
	cs_node *node;
	struct event_base *base;
};

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

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	cs_node *fresh = NULL;

	log_info("SIGHUP: re-reading the configuration");
	if (load(&fresh, d->dir) < 0 || server_reload(fresh) < 0) {
		log_error("keeping the old configuration: %s",
			  cs_error_last());
		cs_node_free(fresh);
		return;
	}
	cs_node_free(d->node);
	d->node = fresh;
	syncer_reload();
}

/* GET /status: the facts 'cartosync status' shows. */
static json_t *
status_of(void *arg)
{
	struct daemon *d = arg;

	return cs_node_status(d->node);
}

static void
on_push(const char *org, void *arg)
{
	(void)arg;
	syncer_integrate(org);
}

static void
on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	log_info("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	event_base_loopbreak(d->base);
}

/* ------------------------------------------------------------ pre-receive */

static int
refuse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line on stderr, which receive-pack relays as "remote: ...". */
static int
refuse(const char *fmt, ...)
{
	va_list ap;

	fputs("cartosyncd: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static int
count_ref(const char *name, const cs_oid *id, void *payload)
{
	(void)name;
	(void)id;
	(*(size_t *)payload)++;
	return 0;
}

/*
 * The pre-receive hook: "OLD NEW REF" lines on stdin (githooks(5)).
 * Exit status 0 lets receive-pack update the refs, 1 refuses the push.
 */
static int
pre_receive(void)
{
	const char *org = getenv("CARTOSYNC_PUSH_ORG");
	const char *dir = getenv("CARTOSYNC_NODE_DIR");
	char line[4096], prefix[256];
	char **refs = NULL;
	cs_oid *heads = NULL;
	size_t n = 0;
	int rc = 1;

	if (org == NULL || *org == '\0' || dir == NULL || *dir == '\0')
		return refuse("pushes are taken only through cartosyncd,"
			      " from a member node's certificate");
	if ((size_t)snprintf(prefix, sizeof(prefix), "refs/incoming/%s/",
			     org) >= sizeof(prefix))
		return refuse("organisation code too long");
	if ((refs = calloc(PUSH_MAX_REFS, sizeof(*refs))) == NULL ||
	    (heads = calloc(PUSH_MAX_REFS, sizeof(*heads))) == NULL) {
		refuse("out of memory");
		goto done;
	}
	while (fgets(line, sizeof(line), stdin) != NULL) {
		size_t len = strlen(line);
		cs_oid old, new;
		const char *ref;

		if (len == 0 || line[len - 1] != '\n') {
			refuse("a malformed ref update line");
			goto done;
		}
		line[--len] = '\0';
		if (len < 2 * CS_OID_HEXSZ + 3 || line[CS_OID_HEXSZ] != ' ' ||
		    line[2 * CS_OID_HEXSZ + 1] != ' ' ||
		    cs_oid_parse(&old, line, CS_OID_HEXSZ) < 0 ||
		    cs_oid_parse(&new, line + CS_OID_HEXSZ + 1,
				 CS_OID_HEXSZ) < 0) {
			refuse("a malformed ref update line");
			goto done;
		}
		ref = line + 2 * CS_OID_HEXSZ + 2;
		if (strncmp(ref, prefix, strlen(prefix)) != 0 ||
		    ref[strlen(prefix)] == '\0') {
			refuse("refused %s: %s may push only to %s<name>", ref,
			       org, prefix);
			goto done;
		}
		if (cs_oid_is_zero(&new)) {
			refuse("refused deleting %s: a push may not delete"
			       " refs",
			       ref);
			goto done;
		}
		if (n == PUSH_MAX_REFS) {
			refuse("refused: more than %d refs in one push",
			       PUSH_MAX_REFS);
			goto done;
		}
		if ((refs[n] = strdup(ref)) == NULL) {
			refuse("out of memory");
			goto done;
		}
		heads[n++] = new;
	}
	if (n == 0) {
		rc = 0;
		goto done;
	}
	{
		cs_node *node = NULL;
		uint64_t max_heads = 0;
		size_t heads_after = 0;

		if (cs_node_open(&node, dir) < 0 ||
		    cs_node_config_uint(&max_heads, node, "serve",
					"max-pushed-heads",
					PUSHED_HEADS_DEFAULT) < 0 ||
		    cs_repo_ref_foreach(cs_node_repo(node), prefix, count_ref,
					&heads_after) < 0) {
			refuse("%s", cs_error_last());
			cs_node_free(node);
			goto done;
		}
		/* DESIGN §7: new tips per signer are limited; each is a head
		 * every integration folds. */
		for (size_t i = 0; i < n; i++) {
			cs_oid old;

			if (cs_repo_ref_read(&old, cs_node_repo(node),
					     refs[i]) < 0)
				heads_after++;
		}
		if (heads_after > max_heads) {
			refuse("refused: %s would hold %zu heads under %s; the"
			       " most is %llu ([serve] max-pushed-heads)",
			       org, heads_after, prefix,
			       (unsigned long long)max_heads);
			cs_node_free(node);
			goto done;
		}
		if (cs_sync_check_pushed(node, (const char *const *)refs,
					 heads, n) < 0) {
			refuse("refused: %s", cs_error_last());
			cs_node_free(node);
			goto done;
		}
		cs_node_free(node);
		rc = 0;
	}
done:
	for (size_t i = 0; refs && i < n; i++)
		free(refs[i]);
	free(refs);
	free(heads);
	return rc;
}

/* ------------------------------------------------------------ main */

int
main(int argc, char **argv)
{
	struct daemon d = {0};
	struct event *ev_term = NULL, *ev_int = NULL, *ev_hup = NULL;
	int c, rc = 1;

	d.dir = getenv("CARTOSYNC_HOME");
	if (d.dir == NULL || *d.dir == '\0')
		d.dir = ".";
	if (argc == 2 && strcmp(argv[1], "--pre-receive") == 0)
		return pre_receive();
	if (argc == 6 && strcmp(argv[1], "--work") == 0) {
		/* The work dies with the daemon, as a thread of it would. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			return 1;
		signal(SIGPIPE, SIG_IGN);
		if (strcmp(argv[3], "debug") == 0)
			log_set_level(LOG_DEBUG);
		return syncer_work(argv[2], argv[4], argv[5]);
	}
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		}
	while ((c = getopt(argc, argv, "C:v")) != -1) {
		switch (c) {
		case 'C':
			d.dir = optarg;
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

	/* Peers that hang up must not kill the daemon (DESIGN §7). */
	signal(SIGPIPE, SIG_IGN);

	if (load(&d.node, d.dir) < 0) {
		log_error("%s", cs_error_last());
		return 1;
	}
	/* Signals come through the loop: no work in handlers. */
	if ((d.base = event_base_new()) == NULL ||
	    (ev_term = evsignal_new(d.base, SIGTERM, on_stop, &d)) == NULL ||
	    (ev_int = evsignal_new(d.base, SIGINT, on_stop, &d)) == NULL ||
	    (ev_hup = evsignal_new(d.base, SIGHUP, on_hup, &d)) == NULL ||
	    event_add(ev_term, NULL) < 0 || event_add(ev_int, NULL) < 0 ||
	    event_add(ev_hup, NULL) < 0) {
		log_error("cannot set up the event loop");
		goto done;
	}
	server_set_status(status_of, &d);
	server_set_on_push(on_push, NULL);
	if (server_start(d.base, d.node) < 0) {
		log_error("%s", cs_error_last());
		goto done;
	}
	if (!server_running())
		log_info("not serving: no [serve] section in %s/"
			 CS_NODE_CONFIG,
			 d.dir);
	if (syncer_start(d.dir) < 0) {
		log_error("%s", cs_error_last());
		goto done;
	}
	log_info("ready");
	if (event_base_dispatch(d.base) < 0) {
		log_error("the event loop failed");
		goto done;
	}
	rc = 0;
done:
	syncer_stop(5000);
	server_stop();
	if (ev_term)
		event_free(ev_term);
	if (ev_int)
		event_free(ev_int);
	if (ev_hup)
		event_free(ev_hup);
	if (d.base)
		event_base_free(d.base);
	cs_node_free(d.node);
	return rc;
}
