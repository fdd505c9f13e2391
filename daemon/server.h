/*
 * cartosyncd — serving the node over HTTPS (docs/daemon.md).
 *
 * One libevent loop serves, with mutual TLS 1.3, the node's repository
 * with git's smart HTTP protocol (protocol v0) by running stock
 * `git upload-pack` and `git receive-pack --stateless-rpc`, and a JSON
 * status at /status.  Every route needs the certificate of a current
 * member node key, looked up in the consortium as of the node's main.
 *
 * A daemon serves at most one node, so the server is a module with its
 * own state rather than an object: server_start() once, server_reload()
 * on SIGHUP, server_stop() before the loop's base is freed.  Everything
 * runs on the loop's thread, callbacks included.
 */
#ifndef CARTOSYNCD_SERVER_H
#define CARTOSYNCD_SERVER_H

#include <jansson.h>

#include "cartosync/node.h"

struct event_base;

/* The name of the file in the node directory that holds the served URL. */
#define SERVER_URL_FILE "serve.url"

/*
 * Serve `node` on `base` as its [serve] section says.  Without a [serve]
 * section nothing is served and 0 is returned (server_running() is 0).
 * Otherwise the listening socket is bound, DIR/serve.url and the
 * pre-receive hook are written, and "listening on https://HOST:PORT/" is
 * logged.  `node` is borrowed until server_stop() or the next
 * server_reload().  Returns 0, CS_EINVALID for a bad [serve] setting, or
 * CS_ERROR (address in use, TLS identity unreadable, ...), with
 * cs_error_last() saying which.
 */
int server_start(struct event_base *base, cs_node *node);

/*
 * SIGHUP: take the limits of `node`'s [serve] section (they apply to new
 * connections and requests) and serve `node` from now on; the caller
 * frees the old node afterwards.  A new listen address, or a removed
 * [serve] section, is logged as needing a restart; a [serve] section that
 * appeared starts serving.  On error (CS_EINVALID, CS_ERROR) nothing
 * changed and the caller keeps its old node.
 */
int server_reload(cs_node *node);

/*
 * Stop serving: close the listener and every connection, kill the running
 * git processes (their whole process groups) and reap them, remove
 * DIR/serve.url.  Safe to call when nothing is served, and twice.
 */
void server_stop(void);

/* 1 while serving. */
int server_running(void);

/*
 * The body of GET /status: `fn` returns a new JSON reference (the server
 * releases it) or NULL for a 500.  Without one the server answers
 * {"org": ..., "main": "<id>" or null, "genesis": ...}.  May be called
 * before server_start(); NULL restores the default.
 */
void server_set_status(json_t *(*fn)(void *arg), void *arg);

/*
 * Called on the loop after a POST /git-receive-pack whose git process
 * exited with status 0, with the pushing organisation (borrowed for the
 * call).  git's exit status is 0 also when the pre-receive hook refused
 * every ref, so the callback means "something may have arrived under
 * refs/incoming/<org>/", not that it did.  May be called before
 * server_start().
 */
void server_set_on_push(void (*fn)(const char *org, void *arg), void *arg);

#endif
