/*
 * cartosyncd — syncing with the peers, off the event loop.
 *
 * One worker thread: every [sync] interval it runs a round with each
 * configured peer that is due (fetch, verify, integrate, push:
 * cs_peer_sync), each in a process of its own (syncer_work), one after
 * the other, so one
 * slow or dead peer delays the others by at most its transfer deadline
 * and never stops them.  A peer that fails is retried with exponential
 * backoff (interval × 2^failures, at most [sync] backoff-max).  After a
 * push arrives the worker integrates at once.  Each event is one log line
 * naming the peer, what happened and why.
 */
#ifndef CARTOSYNCD_SYNCER_H
#define CARTOSYNCD_SYNCER_H

/* Start the worker for the node in `dir`.  CS_EINVALID for a bad [sync]
 * or [peer] setting. */
int syncer_start(const char *dir);

/* Re-read the configuration at the next round (SIGHUP). */
void syncer_reload(void);

/* Something arrived under refs/incoming/<org>/: integrate now. */
void syncer_integrate(const char *org);

/* Sync with every peer now (as if every peer were due). */
void syncer_kick(void);

/*
 * In the work process (`cartosyncd --work DIR LEVEL KIND ARG`, started by
 * the worker): "round PEER" or "integrate WHY".  Logs what it did; on
 * failure prints the reason on stdout.  Returns the exit status.
 */
int syncer_work(const char *dir, const char *kind, const char *arg);

/* Stop: wait up to `grace_ms` for a round in flight, then leave it (a
 * transfer killed midway leaves nothing half-written). */
void syncer_stop(unsigned grace_ms);

#endif
