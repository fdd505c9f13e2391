/*
 * cartosyncd — syncing with the peers, off the event loop (syncer.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cartosync/error.h"
#include "cartosync/peers.h"
#include "cartosync/sync.h"
#include "log.h"
#include "syncer.h"

#define SYNC_INTERVAL_DEFAULT 60
#define SYNC_BACKOFF_MAX_DEFAULT 3600

typedef struct {
	char *name;
	uint64_t failures;
	time_t due;
} peer_timer;

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	int running, stop, reload, integrate, kick, busy;
	pid_t child; /* the work process running now, or 0 */
	char *dir;
} s = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

extern char **environ;

typedef struct {
	cs_node *node;
	cs_peer *peers;
	size_t npeers;
	peer_timer *timers;
	uint64_t interval, backoff_max;
	cs_transfer_limits limits;
} worker;

static void
worker_clear(worker *w)
{
	for (size_t i = 0; i < w->npeers; i++)
		free(w->timers[i].name);
	free(w->timers);
	cs_peers_free(w->peers, w->npeers);
	cs_node_free(w->node);
	memset(w, 0, sizeof(*w));
}

/* (Re)load the node, its peers and the [sync] settings; keep the timers
 * of peers that stay. */
static int
worker_load(worker *w, const char *dir)
{
	worker fresh;
	int error;

	memset(&fresh, 0, sizeof(fresh));
	if ((error = cs_node_open(&fresh.node, dir)) < 0 ||
	    (error = cs_peers_list(&fresh.peers, &fresh.npeers, fresh.node)) <
		    0 ||
	    (error = cs_node_config_uint(&fresh.interval, fresh.node, "sync",
					 "interval", SYNC_INTERVAL_DEFAULT)) <
		    0 ||
	    (error = cs_node_config_uint(&fresh.backoff_max, fresh.node,
					 "sync", "backoff-max",
					 SYNC_BACKOFF_MAX_DEFAULT)) < 0 ||
	    (error = cs_peers_limits(&fresh.limits, fresh.node)) < 0) {
		worker_clear(&fresh);
		return error;
	}
	if (fresh.interval == 0)
		fresh.interval = 1;
	if ((fresh.timers = calloc(fresh.npeers + 1,
				   sizeof(*fresh.timers))) == NULL) {
		worker_clear(&fresh);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	for (size_t i = 0; i < fresh.npeers; i++) {
		fresh.timers[i].name = strdup(fresh.peers[i].name);
		for (size_t k = 0; k < w->npeers; k++)
			if (strcmp(w->timers[k].name, fresh.peers[i].name) ==
			    0) {
				fresh.timers[i].failures =
					w->timers[k].failures;
				fresh.timers[i].due = w->timers[k].due;
			}
	}
	worker_clear(w);
	*w = fresh;
	return 0;
}

/*
 * The work itself runs in a process of its own (`cartosyncd --work`):
 * verifying and merging a large history takes memory the daemon would
 * keep for the rest of its life, and a fault in that work must not take
 * the server down.  The child logs what it did; on failure it writes the
 * reason on its standard output, which the worker reads.  Returns 0, -1
 * (the work failed and said why), or -2 (it died: killed, crashed, or
 * could not start; `why` says which).
 */
static int
run_work(const char *kind, const char *arg, char *why, size_t size)
{
	char *argv[] = {"cartosyncd", "--work", s.dir,
			log_level() >= LOG_DEBUG ? "debug" : "info",
			(char *)kind, (char *)arg, NULL};
	posix_spawn_file_actions_t fa;
	int fds[2], st = 0, spawned, reported = 0;
	size_t len = 0;
	pid_t pid;
	ssize_t r;

	why[0] = '\0';
	if (pipe2(fds, O_CLOEXEC) < 0) {
		snprintf(why, size, "cannot start the work: %s",
			 strerror(errno));
		return -2;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	pthread_mutex_lock(&s.lock);
	spawned = s.stop ? ECANCELED
			 : posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv,
				       environ);
	if (spawned == 0)
		s.child = pid;
	pthread_mutex_unlock(&s.lock);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	if (spawned != 0) {
		close(fds[0]);
		snprintf(why, size, "cannot start the work: %s",
			 strerror(spawned));
		return -2;
	}
	while (len + 1 < size &&
	       ((r = read(fds[0], why + len, size - 1 - len)) > 0 ||
		(r < 0 && errno == EINTR)))
		if (r > 0)
			len += (size_t)r;
	why[len] = '\0';
	close(fds[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&s.lock);
	s.child = 0;
	pthread_mutex_unlock(&s.lock);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFSIGNALED(st))
		snprintf(why, size, "the work process was killed by signal %d",
			 WTERMSIG(st));
	else if (why[0] == '\0')
		snprintf(why, size, "the work process failed (exit status %d)",
			 WEXITSTATUS(st));
	else
		reported = 1;
	len = strlen(why);
	while (len && why[len - 1] == '\n')
		why[--len] = '\0';
	return reported ? -1 : -2;
}

static int
stopping(void)
{
	int stop;

	pthread_mutex_lock(&s.lock);
	stop = s.stop;
	pthread_mutex_unlock(&s.lock);
	return stop;
}

static void
integrate(const char *why)
{
	char err[1024];

	if (run_work("integrate", why, err, sizeof(err)) < 0 && err[0])
		log_error("integrate (%s): %s", why, err);
}

/* Pack the store when it wants it (cs_node_pack), in a work process.
 * Returns -1 when the packing failed. */
static int
pack_store(worker *w)
{
	char err[1024];

	/* Let go of the packs the last packing removed. */
	if (cs_repo_refresh(cs_node_repo(w->node)) < 0)
		log_warning("store: %s", cs_error_last());
	if (cs_node_pack_wanted(w->node) == CS_REPO_PACK_NONE)
		return 0;
	if (run_work("pack", "store", err, sizeof(err)) < 0) {
		if (err[0])
			log_error("store: %s", err);
		return -1;
	}
	return 0;
}

static void
round_with(worker *w, size_t i)
{
	const cs_peer *p = &w->peers[i];
	peer_timer *t = &w->timers[i];
	time_t now = time(NULL);
	char why[1024];
	int rc = run_work("round", p->name, why, sizeof(why));

	/* A work process that died (killed, crashed) recorded nothing. */
	if (rc == -2 && !stopping())
		cs_peer_record_failure(w->node, p, why);
	if (rc < 0) {
		uint64_t wait = w->interval;

		t->failures++;
		for (uint64_t k = 1; k < t->failures && wait < w->backoff_max;
		     k++)
			wait *= 2;
		if (wait > w->backoff_max)
			wait = w->backoff_max;
		t->due = now + (time_t)wait;
		log_warning("peer %s (%s): %s; retrying in %llu s", p->name,
			    p->org, why, (unsigned long long)wait);
		return;
	}
	if (t->failures)
		log_info("peer %s (%s): reachable again after %llu failure%s",
			 p->name, p->org, (unsigned long long)t->failures,
			 t->failures == 1 ? "" : "s");
	t->failures = 0;
	t->due = now + (time_t)w->interval;
}

/* ---- in the work process ---- */

static int
work_integrate(cs_node *node, const char *why)
{
	cs_integrate_result r;
	char hex[CS_OID_HEXSZ + 1];
	int error = cs_sync_integrate(&r, node);

	if (error == CS_ENOTFOUND && strcmp(why, "start") == 0)
		return 0; /* a node still waiting for its first history */
	if (error < 0) {
		printf("%s\n", cs_error_last());
		return 1;
	}
	cs_oid_fmt(hex, &r.main);
	if (r.rejected)
		log_warning("integrate (%s): %zu held head%s left out: %s",
			    why, r.rejected, r.rejected == 1 ? "" : "s",
			    r.report && r.report->nissues
				    ? r.report->issues[0].reason
				    : "they do not verify");
	if (r.reapplied)
		log_info("integrate (%s): %zu edit%s of this node re-applied"
			 " on valid history",
			 why, r.reapplied, r.reapplied == 1 ? "" : "s");
	if (r.changed)
		log_info("integrate (%s): main is now %.12s (%zu edits folded,"
			 " %zu conflicting fields)",
			 why, hex, r.tips, r.conflicts);
	cs_integrate_result_dispose(&r);
	return 0;
}

static int
work_round(cs_node *node, const char *name)
{
	cs_peer *peers = NULL, *p = NULL;
	size_t npeers = 0;
	cs_transfer_limits limits;
	cs_peer_round r;
	char hex[CS_OID_HEXSZ + 1];

	if (cs_peers_list(&peers, &npeers, node) < 0 ||
	    cs_peers_limits(&limits, node) < 0) {
		printf("%s\n", cs_error_last());
		cs_peers_free(peers, npeers);
		return 1;
	}
	for (size_t i = 0; i < npeers; i++)
		if (strcmp(peers[i].name, name) == 0)
			p = &peers[i];
	if (p == NULL) {
		printf("no peer named %s any more\n", name);
		cs_peers_free(peers, npeers);
		return 1;
	}
	if (cs_peer_sync(&r, node, p, &limits) < 0) {
		printf("%s\n", cs_error_last());
		cs_peers_free(peers, npeers);
		return 1;
	}
	if (r.rejected)
		log_warning("peer %s (%s): %zu commit%s rejected, kept in"
			    " quarantine: %s",
			    p->name, p->org, r.rejected,
			    r.rejected == 1 ? "" : "s",
			    r.report->issues[0].reason);
	if (r.fetched && !r.up_to_date) {
		cs_oid_fmt(hex, &r.head);
		log_info("peer %s (%s): fetched and verified %.12s", p->name,
			 p->org, hex);
	}
	if (r.reapplied)
		log_info("peer %s: %zu edit%s of this node re-applied on valid"
			 " history",
			 p->name, r.reapplied, r.reapplied == 1 ? "" : "s");
	cs_oid_fmt(hex, &r.main);
	if (r.main_changed)
		log_info("peer %s: main is now %.12s", p->name, hex);
	if (r.pushed)
		log_debug("peer %s: pushed main %.12s", p->name, hex);
	cs_peer_round_dispose(&r);
	cs_peers_free(peers, npeers);
	return 0;
}

static int
work_pack(cs_node *node)
{
	cs_repo_store_counts before, after;
	int done;

	if (cs_node_pack(node, &done, &before, &after) < 0) {
		printf("%s\n", cs_error_last());
		return 1;
	}
	if (done == CS_REPO_PACK_ALL)
		log_info("store: %zu packs made one (%zu loose objects left)",
			 before.packs, after.loose);
	else if (done == CS_REPO_PACK_LOOSE)
		log_info("store: loose objects packed (%zu before, %zu left)",
			 before.loose, after.loose);
	return 0;
}

int
syncer_work(const char *dir, const char *kind, const char *arg)
{
	cs_node *node = NULL;
	int rc;

	if (cs_node_open(&node, dir) < 0) {
		printf("%s\n", cs_error_last());
		return 1;
	}
	if (strcmp(kind, "round") == 0)
		rc = work_round(node, arg);
	else if (strcmp(kind, "integrate") == 0)
		rc = work_integrate(node, arg);
	else if (strcmp(kind, "pack") == 0)
		rc = work_pack(node);
	else {
		printf("unknown work '%s'\n", kind);
		rc = 2;
	}
	cs_node_free(node);
	fflush(stdout);
	return rc;
}

static void *
run(void *arg)
{
	worker w;
	int loaded, started = 0;
	time_t pack_due = 0;
	uint64_t pack_failures = 0;

	(void)arg;
	memset(&w, 0, sizeof(w));
	pthread_mutex_lock(&s.lock);
	loaded = worker_load(&w, s.dir) == 0;
	for (;;) {
		time_t now = time(NULL), next = now + 3600;
		int do_integrate, kick;

		if (s.stop)
			break;
		if (s.reload) {
			s.reload = 0;
			pthread_mutex_unlock(&s.lock);
			if (worker_load(&w, s.dir) < 0)
				log_error("sync: keeping the old peers: %s",
					  cs_error_last());
			else
				loaded = 1;
			pthread_mutex_lock(&s.lock);
			continue;
		}
		do_integrate = s.integrate;
		kick = s.kick;
		s.integrate = s.kick = 0;
		s.busy = 1;
		pthread_mutex_unlock(&s.lock);
		/* At the start too: a push the daemon received but did not
		 * finish integrating (it was killed) waits in refs/incoming/,
		 * and its sender has no reason to push it again. */
		if (loaded && (do_integrate || !started))
			integrate(started ? "a push arrived" : "start");
		started |= loaded;
		for (size_t i = 0; loaded && i < w.npeers; i++) {
			if (kick || w.timers[i].due <= now)
				round_with(&w, i);
			pthread_mutex_lock(&s.lock);
			if (s.stop || s.integrate) {
				pthread_mutex_unlock(&s.lock);
				break;
			}
			pthread_mutex_unlock(&s.lock);
		}
		/* Every interval, whether or not there are peers: edits made
		 * with the command and pushes leave loose objects too. */
		if (loaded && time(NULL) >= pack_due) {
			uint64_t wait = w.interval;

			/* A failing packing is retried as a failing peer. */
			pack_failures = pack_store(&w) < 0
						? pack_failures + 1
						: 0;
			for (uint64_t k = 0;
			     k < pack_failures && wait < w.backoff_max; k++)
				wait *= 2;
			if (wait > w.backoff_max)
				wait = w.backoff_max;
			pack_due = time(NULL) + (time_t)wait;
		}
		if (loaded && pack_due < next)
			next = pack_due;
		for (size_t i = 0; loaded && i < w.npeers; i++)
			if (w.timers[i].due < next)
				next = w.timers[i].due;
		pthread_mutex_lock(&s.lock);
		s.busy = 0;
		pthread_cond_broadcast(&s.wake);
		if (!s.stop && !s.reload && !s.integrate && !s.kick) {
			struct timespec ts = {next > time(NULL) ? next : time(NULL) + 1, 0};

			pthread_cond_timedwait(&s.wake, &s.lock, &ts);
		}
	}
	pthread_mutex_unlock(&s.lock);
	worker_clear(&w);
	return NULL;
}

int
syncer_start(const char *dir)
{
	worker probe;
	int error;

	/* The configuration is checked here, so a bad one fails the start
	 * with its message instead of a log line later. */
	memset(&probe, 0, sizeof(probe));
	if ((error = worker_load(&probe, dir)) < 0)
		return error;
	if (probe.npeers)
		log_info("sync: %zu peer%s, every %llu s", probe.npeers,
			 probe.npeers == 1 ? "" : "s",
			 (unsigned long long)probe.interval);
	worker_clear(&probe);
	if ((s.dir = strdup(dir)) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	s.stop = 0;
	if (pthread_create(&s.thread, NULL, run, NULL) != 0) {
		free(s.dir);
		s.dir = NULL;
		return cs_error_set(CS_ERROR, "cannot start the sync thread");
	}
	s.running = 1;
	return 0;
}

static void
flag(int *which)
{
	pthread_mutex_lock(&s.lock);
	*which = 1;
	pthread_cond_broadcast(&s.wake);
	pthread_mutex_unlock(&s.lock);
}

void
syncer_reload(void)
{
	flag(&s.reload);
}

void
syncer_integrate(const char *org)
{
	log_debug("sync: a push from %s arrived", org);
	flag(&s.integrate);
}

void
syncer_kick(void)
{
	flag(&s.kick);
}

void
syncer_stop(unsigned grace_ms)
{
	struct timespec ts;
	int done = 1;

	if (!s.running)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += grace_ms / 1000;
	ts.tv_nsec += (long)(grace_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s.lock);
	s.stop = 1;
	/* The work in flight stops where it is: it leaves nothing
	 * half-written, as any process killed mid-transfer. */
	if (s.child > 0)
		kill(s.child, SIGTERM);
	pthread_cond_broadcast(&s.wake);
	while (s.busy && done == 1)
		if (pthread_cond_timedwait(&s.wake, &s.lock, &ts) == ETIMEDOUT)
			done = 0;
	pthread_mutex_unlock(&s.lock);
	if (done)
		pthread_join(s.thread, NULL);
	else
		log_warning("sync: a round is still running; leaving it (it"
			    " leaves nothing half-written)");
	s.running = 0;
}
