/*
 * cartosyncd — the HTTPS server (see server.h, docs/daemon.md; DESIGN §7).
 *
 * One evhttp on the daemon's event loop, each connection a
 * bufferevent_openssl made by cs_tls_server_ctx() (TLS 1.3, client
 * certificate asked for, self-signed accepted).  A connection's life:
 *
 *   accept ── conn_new_bev(): struct conn, hung on the SSL (ex_data), a
 *   │         handshake timer armed
 *   handshake done ── tls_info() → conn_identify(): key hash → member
 *   │         organisation as of main; counted per organisation
 *   request ── handle_request(): route, method, member check, body checks
 *   │         ├── /status: a JSON reply, at once
 *   │         └── git: a struct job, run now or queued (max-upload-packs)
 *   job ── git's stdin fed from the request body (inflated on the fly),
 *   │      its stdout streamed as a chunked reply with back-pressure, its
 *   │      stderr logged; finished when stdout is closed and git reaped
 *   SSL_free ── conn_ex_free(): uncounted, freed
 *
 * A client that goes away (conn_closed) has its git process group killed.
 * Everything here runs on the loop's thread; git runs in child processes
 * so that the loop never blocks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <zlib.h>

#include "cartosync/consortium.h"
#include "cartosync/error.h"
#include "cartosync/node.h"
#include "cartosync/oid.h"
#include "cartosync/repo.h"
#include "cartosync/tls.h"
#include "log.h"
#include "server.h"

extern char **environ;

/* Seconds a connection may sit idle, or stall a read or a write. */
#define IDLE_TIMEOUT 120
/* Request headers, all lines together. */
#define MAX_HEADERS_SIZE (64 * 1024)
/* Bodies from clients that are not members: they only ever get an error. */
#define STRANGER_MAX_BODY (64 * 1024)
/* The connection count of clients that are not members (not an org code). */
#define STRANGERS "*"
/* Stop reading git's stdout while this much waits for the client. */
#define OUT_HIGH_WATER (256 * 1024)
#define READ_CHUNK (64 * 1024)
#define STDERR_LINE_MAX 4096

static const char pkt_flush[] = "0000";

/* ------------------------------------------------------------ settings */

typedef struct {
	char *listen;	/* "host:port" as configured */
	char *host;
	unsigned port;
	uint64_t max_body;
	unsigned max_conns;
	unsigned max_packs;
	unsigned handshake_timeout;
} serve_config;

static const char *const serve_keys[] = {
	"listen", "max-body", "max-connections-per-peer", "max-upload-packs",
	"handshake-timeout", "max-pushed-heads",
};

static void
serve_config_clear(serve_config *cfg)
{
	free(cfg->listen);
	free(cfg->host);
	memset(cfg, 0, sizeof(*cfg));
}

/*
 * A [serve] value without a trailing "# comment" (docs/configuration.md
 * shows comments after values), in `buf`; NULL when the key is absent.
 */
static const char *
serve_value(char *buf, size_t size, const cs_node *node, const char *key)
{
	const char *v = cs_node_config_get(node, "serve", key);
	char *hash;
	size_t n;

	if (v == NULL)
		return NULL;
	snprintf(buf, size, "%s", v);
	for (hash = buf; (hash = strchr(hash, '#')) != NULL; hash++)
		if (hash == buf || hash[-1] == ' ' || hash[-1] == '\t') {
			*hash = '\0';
			break;
		}
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		buf[--n] = '\0';
	return buf;
}

static int
parse_uint(unsigned *out, const char *key, const char *v, unsigned min,
	   unsigned max)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (*v < '0' || *v > '9' || *end != '\0' || errno != 0 || n < min ||
	    n > max)
		return cs_error_set(CS_EINVALID,
				    "[serve] %s: \"%s\" is not a number from"
				    " %u to %u",
				    key, v, min, max);
	*out = (unsigned)n;
	return 0;
}

/* "64M", "512K", "1G", "1048576" (K, M, G: powers of 1024; "KiB" too). */
static int
parse_size(uint64_t *out, const char *key, const char *v)
{
	const uint64_t max = (uint64_t)64 << 30;
	char *end;
	unsigned long long n;
	uint64_t unit = 1;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (*v < '0' || *v > '9' || errno != 0)
		goto bad;
	if (*end != '\0' && strchr("kKmMgG", *end) != NULL) {
		unsigned shift = *end == 'k' || *end == 'K' ? 10
				 : *end == 'm' || *end == 'M' ? 20
							      : 30;

		unit = (uint64_t)1 << shift;
		end++;
	}
	if (unit > 1 && strcmp(end, "iB") == 0)
		end += 2;
	else if (strcmp(end, "B") == 0)
		end++;
	if (*end != '\0' || n == 0 || n > max / unit)
		goto bad;
	*out = n * unit;
	return 0;
bad:
	return cs_error_set(CS_EINVALID,
			    "[serve] %s: \"%s\" is not a size from 1 to 64G"
			    " (like 64M)",
			    key, v);
}

/* "host:port" or "[v6]:port"; port 0 asks for any free port. */
static int
parse_listen(serve_config *cfg, const char *v)
{
	const char *colon = strrchr(v, ':'), *host = v;
	size_t hostlen;

	if (colon == NULL)
		goto bad;
	hostlen = (size_t)(colon - v);
	if (hostlen >= 2 && v[0] == '[' && colon[-1] == ']') {
		host = v + 1;
		hostlen -= 2;
	}
	if (hostlen == 0 || parse_uint(&cfg->port, "listen", colon + 1, 0,
				       65535) < 0)
		goto bad;
	if ((cfg->host = strndup(host, hostlen)) == NULL ||
	    (cfg->listen = strdup(v)) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	return 0;
bad:
	return cs_error_set(CS_EINVALID,
			    "[serve] listen: \"%s\" is not HOST:PORT (like"
			    " 127.0.0.1:8443)",
			    v);
}

/* Read [serve]; *present = 0 when the node has no [serve] setting. */
static int
serve_config_read(serve_config *out, int *present, const cs_node *node)
{
	serve_config cfg = {0};
	char buf[512];
	const char *v;
	unsigned pushed_heads;
	int error;

	*present = 0;
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < sizeof(serve_keys) / sizeof(*serve_keys); i++)
		if (cs_node_config_get(node, "serve", serve_keys[i]) != NULL)
			*present = 1;
	if (!*present)
		return 0;

	cfg.max_body = (uint64_t)64 << 20;
	cfg.max_conns = 8;
	cfg.max_packs = 4;
	cfg.handshake_timeout = 10;
	if ((v = serve_value(buf, sizeof(buf), node, "listen")) == NULL) {
		error = cs_error_set(CS_EINVALID,
				     "[serve] has no listen address (like"
				     " \"listen = 127.0.0.1:8443\")");
		goto done;
	}
	if ((error = parse_listen(&cfg, v)) < 0)
		goto done;
	if ((v = serve_value(buf, sizeof(buf), node, "max-body")) != NULL &&
	    (error = parse_size(&cfg.max_body, "max-body", v)) < 0)
		goto done;
	if ((v = serve_value(buf, sizeof(buf), node,
			     "max-connections-per-peer")) != NULL &&
	    (error = parse_uint(&cfg.max_conns, "max-connections-per-peer", v,
				1, 1000)) < 0)
		goto done;
	if ((v = serve_value(buf, sizeof(buf), node, "max-upload-packs")) !=
		    NULL &&
	    (error = parse_uint(&cfg.max_packs, "max-upload-packs", v, 1,
				64)) < 0)
		goto done;
	if ((v = serve_value(buf, sizeof(buf), node, "handshake-timeout")) !=
		    NULL &&
	    (error = parse_uint(&cfg.handshake_timeout, "handshake-timeout", v,
				1, 300)) < 0)
		goto done;
	/* Read by the pre-receive hook (daemon/main.c); checked here so that
	 * a bad value stops the start. */
	if ((v = serve_value(buf, sizeof(buf), node, "max-pushed-heads")) !=
		    NULL &&
	    (error = parse_uint(&pushed_heads, "max-pushed-heads", v, 1,
				1000)) < 0)
		goto done;
	*out = cfg;
	memset(&cfg, 0, sizeof(cfg)); /* transferred */
	error = 0;
done:
	serve_config_clear(&cfg);
	return error;
}

/* ------------------------------------------------------------ state */

struct conn;
struct job;
TAILQ_HEAD(conn_list, conn);
TAILQ_HEAD(job_list, job);

struct org_count {
	struct org_count *next;
	unsigned n;
	char org[];
};

enum service { UPLOAD_PACK = 0, RECEIVE_PACK = 1 };
static const char *const service_names[] = {"upload-pack", "receive-pack"};

struct server {
	struct event_base *base;
	cs_node *node;		/* borrowed */
	char *dir;		/* the node directory, absolute */
	char *hooks;		/* DIR/hooks */
	char *url;		/* https://HOST:PORT/ */
	char *url_file;		/* DIR/serve.url */
	serve_config cfg;
	SSL_CTX *ctx;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct event *sigchld;
	struct event *accept_retry;
	cs_consortium *consortium; /* as of main when it was consortium_at */
	cs_oid consortium_at;
	struct org_count *counts;
	struct conn_list conns;
	struct job_list running;
	struct job_list queued;
	unsigned nrunning;
};

/*
 * One TLS connection.  Owned by its SSL (ex_data, freed with it), which
 * is owned by the bufferevent, which is owned by evhttp's connection: so
 * a conn outlives the evhttp_connection it serves.
 */
struct conn {
	TAILQ_ENTRY(conn) link;
	SSL *ssl;
	struct bufferevent *bev;
	struct event *hs_timer;
	struct evhttp_connection *evcon; /* once a request came */
	struct job *job;		 /* the request being served */
	struct evhttp_request *end_req;	 /* a reply to end (conn_end_reply) */
	struct event *end_timer;
	char *hash;	/* "sha256:..." of the client's key; NULL: none */
	char *org;	/* its member organisation at the handshake */
	char *bucket;	/* the connection count it holds, or NULL */
	int handshake_done;
	int identified;
	int over_limit;
	int failure_logged;
	int orphan;	/* the server stopped: touch nothing but self */
	char addr[INET6_ADDRSTRLEN + 8];
};

/*
 * The inflation of a gzip request body, read in place: the body is not
 * drained while its git process runs, so the pieces stay where they are.
 */
struct inflater {
	z_stream z;
	struct evbuffer_iovec *vec;
	int nvec;
	int next;
	int init;
	int done;
};

/* A git process serving one request. */
struct job {
	TAILQ_ENTRY(job) link;
	struct conn *conn;		/* NULL once the client is gone */
	struct evhttp_request *req;	/* idem */
	enum service service;
	int advertise;
	char *org;
	char who[96];			/* for logs: org and request */
	struct evbuffer *body;		/* the request body */
	int gzip;
	struct inflater inflate;
	struct evbuffer *in;		/* inflated, not yet written */
	struct evbuffer *out;
	struct evbuffer *err;
	char last_err[160];		/* git's last stderr line */
	pid_t pid;
	int status;
	int exited;
	int queued;
	int started;			/* the reply's headers are sent */
	int paused;			/* stdout unread: client is slow */
	int killed;
	int fd_in, fd_out, fd_err;
	struct event *ev_in, *ev_out, *ev_err;
	uint64_t sent;
};

static struct event_base *loop_base;
static struct server *srv;
static int stopping;	/* in server_stop(): clients go because we do */
static int conn_index = -1;
static json_t *(*status_fn)(void *);
static void *status_arg;
static void (*push_fn)(const char *, void *);
static void *push_arg;

static void job_client_gone(struct job *job, int may_own_request);
static void job_log_stderr(struct job *job, int final);
static void jobs_start_queued(void);

/* ------------------------------------------------------------ helpers */

/* A copy of client- or git-controlled text fit for one log line. */
static const char *
log_safe(char *dst, size_t size, const char *src)
{
	size_t i;

	for (i = 0; src && src[i] && i + 1 < size; i++)
		dst[i] = (src[i] < 0x20 || src[i] == 0x7f) ? '?' : src[i];
	if (size > 0)
		dst[i] = '\0';
	return dst;
}

/* A size for logs and messages, in the units of the settings (K = 1024). */
static const char *
human_size(char buf[32], uint64_t n)
{
	if (n < 1024)
		snprintf(buf, 32, "%u B", (unsigned)n);
	else if (n < 1024 * 1024)
		snprintf(buf, 32, "%.1f KiB", (double)n / 1024);
	else if (n < 1024 * 1024 * 1024)
		snprintf(buf, 32, "%.1f MiB", (double)n / (1024 * 1024));
	else
		snprintf(buf, 32, "%.1f GiB", (double)n / (1024 * 1024 * 1024));
	return buf;
}

static const char *
method_name(enum evhttp_cmd_type m)
{
	static const struct {
		enum evhttp_cmd_type m;
		const char *name;
	} names[] = {
		{EVHTTP_REQ_GET, "GET"},	 {EVHTTP_REQ_POST, "POST"},
		{EVHTTP_REQ_HEAD, "HEAD"},	 {EVHTTP_REQ_PUT, "PUT"},
		{EVHTTP_REQ_DELETE, "DELETE"},	 {EVHTTP_REQ_OPTIONS, "OPTIONS"},
		{EVHTTP_REQ_TRACE, "TRACE"},	 {EVHTTP_REQ_CONNECT, "CONNECT"},
		{EVHTTP_REQ_PATCH, "PATCH"},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
		if (names[i].m == m)
			return names[i].name;
	return "?";
}

/* Write a whole file through a temporary name, then rename it. */
static int
write_file(const char *path, const char *data, mode_t mode)
{
	char *tmp = NULL;
	size_t len = strlen(data);
	int fd, error = 0;

	if (asprintf(&tmp, "%s.tmp", path) < 0)
		return cs_error_set(CS_ERROR, "out of memory");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len ||
	    fchmod(fd, mode) < 0) {
		error = cs_error_set(CS_ERROR, "cannot write '%s': %s", path,
				     strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
	} else if (close(fd) < 0 || rename(tmp, path) < 0) {
		error = cs_error_set(CS_ERROR, "cannot write '%s': %s", path,
				     strerror(errno));
		unlink(tmp);
	}
	free(tmp);
	return error;
}

/*
 * DIR/hooks/pre-receive: receive-pack runs it with the pushed refs on its
 * stdin; it is this very binary in its --pre-receive mode (daemon/main.c).
 * Rewritten at every start, so that it names the binary that runs.
 */
static int
write_hook(const char *hooks)
{
	char exe[PATH_MAX], *path = NULL, *text = NULL;
	size_t quoted = 0;
	ssize_t n;
	int error;

	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) < 0)
		return cs_error_set(CS_ERROR, "cannot find cartosyncd's own"
				    " binary: %s", strerror(errno));
	exe[n] = '\0';
	if (mkdir(hooks, 0755) < 0 && errno != EEXIST)
		return cs_error_set(CS_ERROR, "cannot create '%s': %s", hooks,
				    strerror(errno));
	for (ssize_t i = 0; i < n; i++)
		quoted += exe[i] == '\'' ? 4 : 1;
	if (asprintf(&path, "%s/pre-receive", hooks) < 0 ||
	    (text = malloc(quoted + 256)) == NULL) {
		free(path);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	{
		char *p = text;

		p += sprintf(p, "#!/bin/sh\n"
			     "# Written by cartosyncd at each start"
			     " (docs/daemon.md).\n"
			     "exec '");
		for (ssize_t i = 0; i < n; i++) {
			if (exe[i] == '\'') {
				memcpy(p, "'\\''", 4);
				p += 4;
			} else {
				*p++ = exe[i];
			}
		}
		strcpy(p, "' --pre-receive\n");
	}
	error = write_file(path, text, 0755);
	free(text);
	free(path);
	return error;
}

/* ------------------------------------------------------------ members */

/* The consortium as of main, reloaded when main has moved. */
static const cs_consortium *
consortium_current(void)
{
	cs_repo *repo = cs_node_repo(srv->node);
	cs_consortium *c = NULL;
	cs_oid head, tree;
	char hex[CS_OID_HEXSZ + 1];

	/* Let go of packs the store's packing removed (docs/daemon.md "The
	 * store"); no object of the repository is held here. */
	if (cs_repo_refresh(repo) < 0)
		log_warning("serve: %s", cs_error_last());
	if (cs_node_main(&head, srv->node) < 0) {
		log_error("serve: cannot read main: %s", cs_error_last());
		return NULL;
	}
	if (srv->consortium && cs_oid_cmp(&head, &srv->consortium_at) == 0)
		return srv->consortium;
	cs_oid_fmt(hex, &head);
	if (cs_repo_commit_tree(&tree, repo, &head) < 0 ||
	    cs_consortium_load(&c, repo, &tree) < 0) {
		log_error("serve: cannot read the members as of main %.12s: %s",
			  hex, cs_error_last());
		return NULL;
	}
	cs_consortium_free(srv->consortium);
	srv->consortium = c;
	srv->consortium_at = head;
	log_debug("serve: members as of main %.12s", hex);
	return c;
}

static unsigned *
count_of(const char *bucket, int create)
{
	struct org_count *c;
	size_t len = strlen(bucket);

	for (c = srv->counts; c; c = c->next)
		if (strcmp(c->org, bucket) == 0)
			return &c->n;
	if (!create || (c = calloc(1, sizeof(*c) + len + 1)) == NULL)
		return NULL;
	memcpy(c->org, bucket, len + 1);
	c->next = srv->counts;
	srv->counts = c;
	return &c->n;
}

static void
conn_uncount(struct conn *conn)
{
	struct org_count **p, *c;

	if (conn->bucket == NULL)
		return;
	for (p = &srv->counts; (c = *p) != NULL; p = &c->next) {
		if (strcmp(c->org, conn->bucket) != 0)
			continue;
		if (c->n > 0)
			c->n--;
		if (c->n == 0) {
			*p = c->next;
			free(c);
		}
		break;
	}
	free(conn->bucket);
	conn->bucket = NULL;
}

static const char *
conn_addr(struct conn *conn)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN];
	int fd;

	if (conn->addr[0] != '\0')
		return conn->addr;
	fd = conn->bev ? bufferevent_getfd(conn->bev) : -1;
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return "an unknown address";
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(conn->addr, sizeof(conn->addr), "[%s]:%u", host,
			 ntohs(a->sin6_port));
	} else if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(conn->addr, sizeof(conn->addr), "%s:%u", host,
			 ntohs(a->sin_port));
	} else {
		return "an unknown address";
	}
	return conn->addr;
}

/* Who the other end is, for logs: its organisation, else its key hash. */
static const char *
conn_who(struct conn *conn)
{
	if (conn->org)
		return conn->org;
	if (conn->hash)
		return conn->hash;
	return conn_addr(conn);
}

/*
 * A client that is not a member only ever gets an error, so its request
 * bodies need not be read: cap them before evhttp reads one (libevent
 * 2.1's evhttp reads a whole body into memory before the request callback
 * runs).  evhttp owns the bufferevent and passes its connection as the
 * callbacks' argument; that is checked before use.
 */
static void
conn_cap_body(struct conn *conn)
{
	bufferevent_data_cb rd, wr;
	bufferevent_event_cb ev;
	void *arg = NULL;

	bufferevent_getcb(conn->bev, &rd, &wr, &ev, &arg);
	if (arg != NULL &&
	    evhttp_connection_get_bufferevent(arg) == conn->bev)
		evhttp_connection_set_max_body_size(arg, STRANGER_MAX_BODY);
}

/*
 * After the handshake: name the client by its key, find its organisation
 * as of main, and count the connection against its organisation (or
 * against all the clients that are not members, together).
 */
static void
conn_identify(struct conn *conn)
{
	const cs_consortium *c;
	const cs_member_key *key = NULL;
	const char *bucket;
	unsigned *n;
	int error;

	conn->identified = 1;
	if ((error = cs_tls_peer_hash(&conn->hash, conn->ssl)) < 0 &&
	    error != CS_ENOTFOUND)
		log_info("serve: %s: %s", conn_addr(conn), cs_error_last());
	if (conn->hash && (c = consortium_current()) != NULL &&
	    (key = cs_tls_member(c, conn->hash)) != NULL)
		conn->org = strdup(key->org);
	bucket = conn->org ? conn->org : STRANGERS;
	n = count_of(bucket, 1);
	if (n == NULL || *n >= srv->cfg.max_conns) {
		conn->over_limit = 1;
	} else if ((conn->bucket = strdup(bucket)) != NULL) {
		(*n)++;
	}
	if (conn->org == NULL || conn->over_limit)
		conn_cap_body(conn);
	log_debug("serve: %s connected from %s%s", conn_who(conn),
		  conn_addr(conn), conn->over_limit ? ", over the limit" : "");
}

static void
tls_info(const SSL *ssl, int where, int ret)
{
	struct conn *conn = SSL_get_ex_data(ssl, conn_index);

	if (conn == NULL || conn->orphan || srv == NULL)
		return;
	if ((where & SSL_CB_HANDSHAKE_START) && !conn->handshake_done &&
	    conn->addr[0] == '\0') {
		/* small TLS records go out at once (git's pkt-lines) */
		int one = 1, fd = conn->bev ? bufferevent_getfd(conn->bev) : -1;

		conn_addr(conn); /* while the peer is there to name */
		if (fd >= 0)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
	}
	if ((where & SSL_CB_HANDSHAKE_DONE) && !conn->handshake_done) {
		conn->handshake_done = 1;
		if (conn->hs_timer)
			evtimer_del(conn->hs_timer);
		conn_identify(conn);
	} else if ((where & SSL_CB_ALERT) && (where & SSL_CB_WRITE) &&
		   !conn->handshake_done && !conn->failure_logged) {
		conn->failure_logged = 1;
		log_info("serve: TLS handshake with %s failed: %s",
			 conn_addr(conn), SSL_alert_desc_string_long(ret));
	} else if ((where & SSL_CB_EXIT) && !conn->handshake_done &&
		   (ret == 0 || (ret < 0 && ERR_peek_error() != 0)) &&
		   !conn->failure_logged) {
		unsigned long e = ERR_peek_error();
		const char *why = e ? ERR_reason_error_string(e) : NULL;

		conn->failure_logged = 1;
		log_info("serve: TLS handshake with %s failed: %s",
			 conn_addr(conn), why ? why : "connection closed");
	}
}

static void
handshake_expired(evutil_socket_t fd, short what, void *arg)
{
	struct conn *conn = arg;
	int sock;

	if (conn->handshake_done)
		return;
	conn->failure_logged = 1;
	log_info("serve: dropped %s: no TLS handshake within %u s",
		 conn_addr(conn), srv->cfg.handshake_timeout);
	/* evhttp sees end of file and frees the connection. */
	if ((sock = bufferevent_getfd(conn->bev)) >= 0)
		shutdown(sock, SHUT_RDWR);
}

/* evhttp's bufferevent factory: one SSL bufferevent per connection. */
static struct bufferevent *
conn_new_bev(struct event_base *base, void *arg)
{
	struct timeval tv = {0, 0};
	struct conn *conn;
	struct bufferevent *bev;
	SSL *ssl = NULL;

	if ((conn = calloc(1, sizeof(*conn))) == NULL ||
	    (ssl = SSL_new(srv->ctx)) == NULL ||
	    !SSL_set_ex_data(ssl, conn_index, conn)) {
		SSL_free(ssl);
		free(conn);
		goto refuse;
	}
	/* conn is the SSL's from here (conn_ex_free). */
	conn->ssl = ssl;
	TAILQ_INSERT_TAIL(&srv->conns, conn, link);
	SSL_set_info_callback(ssl, tls_info);
	SSL_set_num_tickets(ssl, 0);
	bev = bufferevent_openssl_socket_new(base, -1, ssl,
					     BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		goto refuse; /* libevent may have freed the SSL: leave it */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	conn->bev = bev;
	tv.tv_sec = srv->cfg.handshake_timeout;
	if ((conn->hs_timer = evtimer_new(base, handshake_expired, conn)))
		evtimer_add(conn->hs_timer, &tv);
	return bev;
refuse:
	/*
	 * evhttp then makes a plain bufferevent: handle_request() refuses
	 * whatever comes on a connection without TLS.
	 */
	log_error("serve: cannot set up TLS for a new connection");
	return NULL;
}

/* The SSL is being freed: so is its conn. */
static void
conn_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
	     void *argp)
{
	struct conn *conn = ptr;

	if (conn == NULL)
		return;
	if (!conn->orphan && srv) {
		if (conn->job)
			job_client_gone(conn->job, 0);
		conn_uncount(conn);
		TAILQ_REMOVE(&srv->conns, conn, link);
	}
	if (conn->hs_timer)
		event_free(conn->hs_timer);
	if (conn->end_timer)
		event_free(conn->end_timer);
	free(conn->hash);
	free(conn->org);
	free(conn->bucket);
	free(conn);
}

/* evhttp closes the connection (client gone, timeout, or we close). */
static void
conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct conn *conn = arg;
	struct evhttp_request *req = conn->end_req;

	conn->evcon = NULL;
	conn->end_req = NULL;
	/* detached by evhttp (see job_client_gone): ours to free */
	if (req && evhttp_request_get_connection(req) == NULL)
		evhttp_request_free(req);
	if (conn->job)
		job_client_gone(conn->job, 1);
}

/* ------------------------------------------------------------ replies */

static void
reply_text(struct evhttp_request *req, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
reply_text(struct evhttp_request *req, int code, const char *fmt, ...)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *buf = evbuffer_new();
	va_list ap;

	evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
	evhttp_add_header(h, "Cache-Control", "no-cache");
	if (buf) {
		va_start(ap, fmt);
		evbuffer_add_vprintf(buf, fmt, ap);
		va_end(ap);
		evbuffer_add(buf, "\n", 1);
	}
	evhttp_send_reply(req, code, NULL, buf);
	evbuffer_free(buf);
}

static json_t *
status_default(void)
{
	json_t *o = json_object();
	char hex[CS_OID_HEXSZ + 1];
	cs_oid id;

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "org", json_string(cs_node_org(srv->node)));
	if (cs_node_main(&id, srv->node) == 0) {
		cs_oid_fmt(hex, &id);
		json_object_set_new(o, "main", json_string(hex));
	} else {
		json_object_set_new(o, "main", json_null());
	}
	if (cs_node_genesis(&id, srv->node) == 0) {
		cs_oid_fmt(hex, &id);
		json_object_set_new(o, "genesis", json_string(hex));
	} else {
		json_object_set_new(o, "genesis", json_null());
	}
	return o;
}

static void
serve_status(struct evhttp_request *req)
{
	json_t *v = status_fn ? status_fn(status_arg) : status_default();
	char *text = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	struct evbuffer *buf = evbuffer_new();

	json_decref(v);
	if (text == NULL || buf == NULL) {
		log_error("serve: cannot make the status");
		reply_text(req, 500, "the status is not available");
	} else {
		struct evkeyvalq *h = evhttp_request_get_output_headers(req);

		evhttp_add_header(h, "Content-Type", "application/json");
		evhttp_add_header(h, "Cache-Control", "no-cache");
		evbuffer_add_printf(buf, "%s\n", text);
		evhttp_send_reply(req, 200, NULL, buf);
	}
	free(text);
	evbuffer_free(buf);
}

/* ------------------------------------------------------------ gzip bodies */

static int
inflater_init(struct inflater *f, struct evbuffer *body)
{
	int n = evbuffer_peek(body, -1, NULL, NULL, 0);

	memset(f, 0, sizeof(*f));
	if (n < 0 || (f->vec = calloc(n > 0 ? (size_t)n : 1,
				      sizeof(*f->vec))) == NULL)
		return -1;
	f->nvec = evbuffer_peek(body, -1, NULL, f->vec, n);
	if (inflateInit2(&f->z, 16 + MAX_WBITS) != Z_OK) { /* gzip only */
		free(f->vec);
		f->vec = NULL;
		return -1;
	}
	f->init = 1;
	return 0;
}

static void
inflater_end(struct inflater *f)
{
	if (f->init)
		inflateEnd(&f->z);
	free(f->vec);
	f->vec = NULL;
	f->init = 0;
}

/* Whether input is left: the rest of a piece or another non-empty one. */
static int
inflater_has_input(struct inflater *f)
{
	if (f->z.avail_in > 0)
		return 1;
	for (int i = f->next; i < f->nvec; i++)
		if (f->vec[i].iov_len > 0)
			return 1;
	return 0;
}

/*
 * Inflate the next bytes into out[0..cap): the number of bytes made, 0 at
 * the end, -1 if the body is not exactly one whole gzip member.
 */
static ssize_t
inflater_read(struct inflater *f, unsigned char *out, size_t cap)
{
	size_t made;

	f->z.next_out = out;
	f->z.avail_out = (uInt)cap;
	while (f->z.avail_out > 0 && !f->done) {
		int r;

		if (f->z.avail_in == 0) {
			while (f->next < f->nvec &&
			       f->vec[f->next].iov_len == 0)
				f->next++;
			if (f->next == f->nvec)
				break;
			f->z.next_in = f->vec[f->next].iov_base;
			f->z.avail_in = (uInt)f->vec[f->next].iov_len;
			f->next++;
		}
		r = inflate(&f->z, Z_NO_FLUSH);
		if (r == Z_STREAM_END) {
			f->done = 1;
			if (inflater_has_input(f))
				return -1; /* something after the member */
		} else if (r != Z_OK) {
			return -1;
		}
	}
	made = cap - f->z.avail_out;
	if (made == 0 && !f->done)
		return -1; /* cut short */
	return (ssize_t)made;
}

enum { GZIP_OK = 0, GZIP_TOO_BIG = 1, GZIP_CORRUPT = -1 };

/* How large `body` inflates, without keeping it: GZIP_TOO_BIG past max. */
static int
gzip_measure(struct evbuffer *body, uint64_t max)
{
	static unsigned char scratch[READ_CHUNK];
	struct inflater f;
	uint64_t total = 0;
	ssize_t n;
	int result = GZIP_OK;

	if (inflater_init(&f, body) < 0)
		return GZIP_CORRUPT;
	while ((n = inflater_read(&f, scratch, sizeof(scratch))) > 0) {
		total += (uint64_t)n;
		if (total > max) {
			result = GZIP_TOO_BIG;
			break;
		}
	}
	if (n < 0)
		result = GZIP_CORRUPT;
	inflater_end(&f);
	return result;
}

/* ------------------------------------------------------------ git jobs */

static void
job_close_fd(int *fd, struct event **ev)
{
	if (*ev) {
		event_free(*ev);
		*ev = NULL;
	}
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static void
job_free(struct job *job)
{
	job_close_fd(&job->fd_in, &job->ev_in);
	job_close_fd(&job->fd_out, &job->ev_out);
	job_close_fd(&job->fd_err, &job->ev_err);
	inflater_end(&job->inflate);
	if (job->body && job->in != job->body)
		evbuffer_free(job->body);
	if (job->in)
		evbuffer_free(job->in);
	if (job->out)
		evbuffer_free(job->out);
	if (job->err)
		evbuffer_free(job->err);
	free(job->org);
	free(job);
}

static void
job_kill(struct job *job)
{
	if (job->pid > 0 && !job->exited && !job->killed) {
		/* the whole group: upload-pack's pack-objects too */
		kill(-job->pid, SIGKILL);
		job->killed = 1;
	}
	job_close_fd(&job->fd_in, &job->ev_in);
}

/*
 * The client is gone (evhttp closes its connection).  A request evhttp
 * detached from the connection is ours to free; one still attached is
 * freed by evhttp.
 */
static void
job_client_gone(struct job *job, int may_own_request)
{
	struct evhttp_request *req = job->req;

	job->req = NULL;
	if (job->conn)
		job->conn->job = NULL;
	job->conn = NULL;
	if (req && may_own_request && evhttp_request_get_connection(req) ==
					      NULL)
		evhttp_request_free(req);
	if (job->queued) {
		TAILQ_REMOVE(&srv->queued, job, link);
		if (!stopping)
			log_info("serve: %s: the client went away while"
				 " queued",
				 job->who);
		job_free(job);
		return;
	}
	if (job->exited || job->fd_out < 0) {
		/* git said all it had to: it is ending anyway */
	} else if (job->service == RECEIVE_PACK && !job->advertise &&
		   !stopping) {
		/*
		 * git has the whole push (the body is read before git
		 * starts): let it verify and update the refs, so that what
		 * the pusher was told happens.  libgit2 hangs up as soon as
		 * it has read the report.
		 */
		log_debug("serve: %s: the client hung up; git finishes",
			  job->who);
	} else {
		if (!stopping)
			log_info("serve: %s: the client went away; stopping"
				 " git",
				 job->who);
		job_kill(job);
	}
}

static void
conn_end_now(evutil_socket_t fd, short what, void *arg)
{
	struct conn *conn = arg;
	struct evhttp_request *req = conn->end_req;

	if (req == NULL ||
	    evbuffer_get_length(bufferevent_get_output(conn->bev)) > 0)
		return; /* job_output_drained() comes back */
	conn->end_req = NULL;
	evhttp_send_reply_end(req);
}

/*
 * End a chunked reply, or (req NULL) try again.  libevent 2.1 may run the
 * write callback of a chunk already written after evhttp_send_reply_end()
 * has set evhttp's "reply sent" callback: evhttp then takes the reply for
 * sent with its last chunk unwritten, and the client waits for it.  So
 * the reply ends only once its output is written and a loop turn later,
 * when no such callback is left.
 */
static void
conn_end_reply(struct conn *conn, struct evhttp_request *req)
{
	static const struct timeval now = {0, 0};

	if (req)
		conn->end_req = req;
	if (conn->end_req == NULL ||
	    evbuffer_get_length(bufferevent_get_output(conn->bev)) > 0)
		return; /* job_output_drained() calls again */
	if (conn->end_timer == NULL &&
	    (conn->end_timer = evtimer_new(srv->base, conn_end_now, conn)) ==
		    NULL) {
		req = conn->end_req;
		conn->end_req = NULL;
		evhttp_send_reply_end(req);
		return;
	}
	evtimer_add(conn->end_timer, &now);
}

static void
job_reply_start(struct job *job)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(job->req);
	char type[64];

	snprintf(type, sizeof(type), "application/x-git-%s-%s",
		 service_names[job->service],
		 job->advertise ? "advertisement" : "result");
	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-cache");
	evhttp_send_reply_start(job->req, 200, "OK");
	job->started = 1;
	if (job->advertise) {
		/* smart HTTP: "# service=git-upload-pack\n" and a flush */
		struct evbuffer *b = evbuffer_new();
		int len = 4 + (int)strlen("# service=git-\n") +
			  (int)strlen(service_names[job->service]);

		if (b == NULL)
			return;
		evbuffer_add_printf(b, "%04x# service=git-%s\n%s", len,
				    service_names[job->service], pkt_flush);
		evhttp_send_reply_chunk(job->req, b);
		evbuffer_free(b);
	}
}

static void
job_finish(struct job *job)
{
	struct evhttp_request *req = job->req;
	struct conn *conn = job->conn;
	int ok = WIFEXITED(job->status) && WEXITSTATUS(job->status) == 0;
	char what[96], size[32], *org = NULL;

	/* what git still had to say */
	if (job->fd_err >= 0) {
		while (evbuffer_read(job->err, job->fd_err, STDERR_LINE_MAX) >
		       0)
			job_log_stderr(job, 0);
	}
	job_log_stderr(job, 1);
	job_close_fd(&job->fd_in, &job->ev_in);
	job_close_fd(&job->fd_out, &job->ev_out);
	job_close_fd(&job->fd_err, &job->ev_err);
	TAILQ_REMOVE(&srv->running, job, link);
	srv->nrunning--;
	if (job->conn)
		job->conn->job = NULL;
	job->conn = NULL;
	job->req = NULL;

	if (WIFEXITED(job->status))
		snprintf(what, sizeof(what), "git exited with status %d",
			 WEXITSTATUS(job->status));
	else if (WIFSIGNALED(job->status))
		snprintf(what, sizeof(what), "git was killed by signal %d",
			 WTERMSIG(job->status));
	else
		snprintf(what, sizeof(what), "git ended");

	if (req && job->started) {
		conn_end_reply(conn, req);
	} else if (req && ok) {
		/* nothing was written yet: no write callback is pending */
		job->req = req;
		job_reply_start(job);
		job->req = NULL;
		evhttp_send_reply_end(req);
	} else if (req) {
		reply_text(req, 500, "git %s failed on the server",
			   service_names[job->service]);
	}
	if (ok && job->advertise)
		log_debug("serve: %s done, %s", job->who,
			  human_size(size, job->sent));
	else if (ok)
		log_info("serve: %s done, %s", job->who,
			 human_size(size, job->sent));
	else if (job->killed)
		log_info("serve: %s stopped (%s), %s sent", job->who, what,
			 human_size(size, job->sent));
	else
		log_warning("serve: %s failed (%s%s%s), %s sent", job->who,
			    what, job->last_err[0] ? ": " : "", job->last_err,
			    human_size(size, job->sent));

	if (ok && job->service == RECEIVE_PACK && !job->advertise && push_fn)
		org = strdup(job->org);
	job_free(job);
	if (org) {
		push_fn(org, push_arg);
		free(org);
	}
	jobs_start_queued();
}

static void
job_maybe_finish(struct job *job)
{
	if (job->exited && job->fd_out < 0)
		job_finish(job);
}

/* The client's output buffer is empty again: read git's stdout again. */
static void
job_output_drained(struct evhttp_connection *evcon, void *arg)
{
	struct conn *conn = arg;
	struct job *job = conn->job;

	if (conn->end_req)
		conn_end_reply(conn, NULL);
	if (job && job->paused && job->ev_out) {
		job->paused = 0;
		event_add(job->ev_out, NULL);
	}
}

static void
job_on_stdout(evutil_socket_t fd, short what, void *arg)
{
	struct job *job = arg;
	int n = evbuffer_read(job->out, fd, READ_CHUNK);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		job_close_fd(&job->fd_out, &job->ev_out);
		job_maybe_finish(job);
		return;
	}
	job->sent += (uint64_t)n;
	if (job->req == NULL) {
		evbuffer_drain(job->out, evbuffer_get_length(job->out));
		return;
	}
	if (!job->started)
		job_reply_start(job);
	if (job->req)
		evhttp_send_reply_chunk_with_cb(job->req, job->out,
						job_output_drained, job->conn);
	evbuffer_drain(job->out, evbuffer_get_length(job->out));
	if (job->req && job->conn && job->ev_out &&
	    evbuffer_get_length(bufferevent_get_output(job->conn->bev)) >=
		    OUT_HIGH_WATER) {
		job->paused = 1;
		event_del(job->ev_out);
	}
}

/*
 * Log what git wrote on stderr, a line per line; at the end (or when a
 * line grows too long) what is left too.
 */
static void
job_log_stderr(struct job *job, int final)
{
	char safe[STDERR_LINE_MAX + 1], *line;
	size_t len;

	while ((line = evbuffer_readln(job->err, &len, EVBUFFER_EOL_LF))) {
		log_safe(safe, sizeof(safe), line);
		free(line);
		log_debug("serve: %s: git: %s", job->who, safe);
		if (len > 0) {
			size_t keep = strnlen(safe, sizeof(job->last_err) - 1);

			memcpy(job->last_err, safe, keep);
			job->last_err[keep] = '\0';
		}
	}
	while (evbuffer_get_length(job->err) >= STDERR_LINE_MAX ||
	       (final && evbuffer_get_length(job->err) > 0)) {
		char part[STDERR_LINE_MAX + 1];
		ev_ssize_t m = evbuffer_remove(job->err, part,
					       STDERR_LINE_MAX);

		if (m <= 0)
			break;
		part[m] = '\0';
		log_debug("serve: %s: git: %s", job->who,
			  log_safe(safe, sizeof(safe), part));
	}
}

static void
job_on_stderr(evutil_socket_t fd, short what, void *arg)
{
	struct job *job = arg;
	int n = evbuffer_read(job->err, fd, STDERR_LINE_MAX);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	job_log_stderr(job, n <= 0);
	if (n <= 0)
		job_close_fd(&job->fd_err, &job->ev_err);
}

/* Feed git's stdin from the request body, inflating a gzip one. */
static void
job_on_stdin(evutil_socket_t fd, short what, void *arg)
{
	struct job *job = arg;

	for (;;) {
		if (evbuffer_get_length(job->in) == 0 && job->gzip &&
		    !job->inflate.done) {
			struct evbuffer_iovec v;
			ssize_t n;

			if (evbuffer_reserve_space(job->in, READ_CHUNK, &v,
						   1) < 1)
				goto broken;
			n = inflater_read(&job->inflate, v.iov_base,
					  READ_CHUNK);
			if (n < 0)
				goto broken; /* measured before: cannot be */
			v.iov_len = (size_t)n;
			evbuffer_commit_space(job->in, &v, 1);
		}
		if (evbuffer_get_length(job->in) == 0)
			break; /* all written */
		if (evbuffer_write_atmost(job->in, fd, READ_CHUNK) < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			/* git stopped reading: its exit status tells why */
			break;
		}
	}
	job_close_fd(&job->fd_in, &job->ev_in);
	return;
broken:
	log_error("serve: %s: cannot inflate the request body", job->who);
	job_kill(job);
}

/* The environment of git: the daemon's, less what would redirect git. */
static char **
child_env(struct job *job, char **owned, size_t nowned)
{
	static const char *const drop[] = {
		"GIT_PROTOCOL=", "GIT_DIR=", "GIT_WORK_TREE=",
		"GIT_OBJECT_DIRECTORY=", "GIT_ALTERNATE_OBJECT_DIRECTORIES=",
		"GIT_QUARANTINE_PATH=", "GIT_NAMESPACE=", "GIT_INDEX_FILE=",
		"GIT_CEILING_DIRECTORIES=", "CARTOSYNC_PUSH_ORG=",
		"CARTOSYNC_NODE_DIR=",
	};
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	if ((env = calloc(n + nowned + 1, sizeof(*env))) == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		size_t d;

		for (d = 0; d < sizeof(drop) / sizeof(*drop); d++)
			if (strncmp(environ[i], drop[d], strlen(drop[d])) == 0)
				break;
		if (d == sizeof(drop) / sizeof(*drop))
			env[k++] = environ[i];
	}
	for (size_t i = 0; i < nowned; i++)
		if (owned[i])
			env[k++] = owned[i];
	(void)job;
	return env;
}

static int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Run git for `job`: pipes, its own process group, events. */
static int
job_spawn(struct job *job)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
	char *owned[3] = {NULL, NULL, NULL}, **env = NULL, *argv[16];
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, dflt;
	int argc = 0, rc, error = CS_ERROR;

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
	    pipe2(err, O_CLOEXEC) < 0) {
		log_error("serve: %s: cannot make pipes: %s", job->who,
			  strerror(errno));
		goto done;
	}
	if (asprintf(&owned[0], "CARTOSYNC_NODE_DIR=%s", srv->dir) < 0 ||
	    asprintf(&owned[1], "core.hooksPath=%s", srv->hooks) < 0 ||
	    (job->service == RECEIVE_PACK &&
	     asprintf(&owned[2], "CARTOSYNC_PUSH_ORG=%s", job->org) < 0)) {
		log_error("serve: out of memory");
		goto done;
	}
	argv[argc++] = (char *)"git";
	if (job->service == RECEIVE_PACK) {
		argv[argc++] = (char *)"-c";
		argv[argc++] = owned[1];
		argv[argc++] = (char *)"-c";
		argv[argc++] = (char *)"receive.autogc=false";
		argv[argc++] = (char *)"receive-pack";
	} else {
		argv[argc++] = (char *)"upload-pack";
		argv[argc++] = (char *)"--strict";
	}
	argv[argc++] = (char *)"--stateless-rpc";
	if (job->advertise)
		argv[argc++] = (char *)"--advertise-refs";
	argv[argc++] = srv->dir;
	argv[argc] = NULL;
	{
		char *envs[2] = {owned[0], owned[2]};

		if ((env = child_env(job, envs, 2)) == NULL) {
			log_error("serve: out of memory");
			goto done;
		}
	}

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGPIPE); /* the daemon ignores it; git must not */
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dflt);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
					       POSIX_SPAWN_SETSIGDEF |
					       POSIX_SPAWN_SETPGROUP);
	rc = posix_spawnp(&job->pid, "git", &fa, &attr, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc != 0) {
		log_error("serve: %s: cannot run git: %s", job->who,
			  strerror(rc));
		job->pid = 0;
		goto done;
	}

	job->fd_in = in[1];
	job->fd_out = out[0];
	job->fd_err = err[0];
	in[1] = out[0] = err[0] = -1;
	if (set_nonblock(job->fd_in) < 0 || set_nonblock(job->fd_out) < 0 ||
	    set_nonblock(job->fd_err) < 0 ||
	    !(job->ev_out = event_new(srv->base, job->fd_out,
				      EV_READ | EV_PERSIST, job_on_stdout,
				      job)) ||
	    !(job->ev_err = event_new(srv->base, job->fd_err,
				      EV_READ | EV_PERSIST, job_on_stderr,
				      job)) ||
	    !(job->ev_in = event_new(srv->base, job->fd_in,
				     EV_WRITE | EV_PERSIST, job_on_stdin,
				     job))) {
		log_error("serve: %s: cannot watch git's pipes", job->who);
		kill(-job->pid, SIGKILL);
		job->killed = 1;
		job_close_fd(&job->fd_in, &job->ev_in);
		job_close_fd(&job->fd_out, &job->ev_out);
		job_close_fd(&job->fd_err, &job->ev_err);
		error = 0; /* running: reaped and finished as usual */
		goto done;
	}
	event_add(job->ev_out, NULL);
	event_add(job->ev_err, NULL);
	if (job->advertise)
		job_close_fd(&job->fd_in, &job->ev_in);
	else
		event_add(job->ev_in, NULL);
	error = 0;
done:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	for (size_t i = 0; i < 3; i++)
		free(owned[i]);
	free(env);
	return error;
}

static void
job_start(struct job *job)
{
	struct evhttp_request *req = job->req;

	job->queued = 0;
	if (job_spawn(job) < 0) {
		if (job->conn)
			job->conn->job = NULL;
		if (req)
			reply_text(req, 500, "the server cannot run git");
		job_free(job);
		return;
	}
	TAILQ_INSERT_TAIL(&srv->running, job, link);
	srv->nrunning++;
	log_debug("serve: %s started (git pid %d)", job->who, (int)job->pid);
}

static void
jobs_start_queued(void)
{
	struct job *job;

	while (srv && srv->nrunning < srv->cfg.max_packs &&
	       (job = TAILQ_FIRST(&srv->queued)) != NULL) {
		TAILQ_REMOVE(&srv->queued, job, link);
		job_start(job);
	}
}

static void
on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	struct job *job, *next;

	for (job = TAILQ_FIRST(&srv->running); job; job = next) {
		int st = 0;
		pid_t r;

		next = TAILQ_NEXT(job, link);
		if (job->exited)
			continue;
		r = waitpid(job->pid, &st, WNOHANG);
		if (r == 0 || (r < 0 && errno != ECHILD))
			continue;
		job->exited = 1;
		job->status = r == job->pid ? st : (1 << 8);
		job_maybe_finish(job);
	}
}

/* Serve `req` with git: a job, run now or when a slot frees up. */
static void
serve_git(struct conn *conn, struct evhttp_request *req, enum service svc,
	  int advertise, const char *org)
{
	struct evbuffer *input = evhttp_request_get_input_buffer(req);
	struct job *job = calloc(1, sizeof(*job));
	char safe[64];

	if (job)
		job->fd_in = job->fd_out = job->fd_err = -1;
	if (job == NULL || (job->org = strdup(org)) == NULL ||
	    (job->body = evbuffer_new()) == NULL ||
	    (job->out = evbuffer_new()) == NULL ||
	    (job->err = evbuffer_new()) == NULL) {
		if (job)
			job_free(job);
		reply_text(req, 500, "out of memory");
		return;
	}
	job->service = svc;
	job->advertise = advertise;
	job->conn = conn;
	job->req = req;
	snprintf(job->who, sizeof(job->who), "%s %s%s",
		 log_safe(safe, sizeof(safe), org), service_names[svc],
		 advertise ? " refs" : "");
	evbuffer_add_buffer(job->body, input); /* moved, not copied */
	if (evbuffer_get_length(job->body) > 0 &&
	    evhttp_find_header(evhttp_request_get_input_headers(req),
			       "Content-Encoding") != NULL) {
		job->gzip = 1;
		if (inflater_init(&job->inflate, job->body) < 0 ||
		    (job->in = evbuffer_new()) == NULL) {
			job_free(job);
			reply_text(req, 500, "out of memory");
			return;
		}
	} else {
		job->in = job->body;
	}
	conn->job = job;
	/*
	 * The reply comes later: until evhttp takes the connection back, it
	 * must not read (libevent 2.1 aborts on bytes read while a request
	 * is pending; fixed in 2.2).
	 */
	bufferevent_disable(conn->bev, EV_READ);
	if (srv->nrunning < srv->cfg.max_packs) {
		job_start(job);
	} else {
		job->queued = 1;
		TAILQ_INSERT_TAIL(&srv->queued, job, link);
		log_debug("serve: %s queued: %u git processes running",
			  job->who, srv->nrunning);
	}
}

/* ------------------------------------------------------------ requests */

enum route { R_NONE, R_REFS, R_UPLOAD, R_RECEIVE, R_STATUS };

/*
 * Whether the connection's client is a current member: 0 with *org set,
 * or the refusal sent.
 */
static int
authorize(struct conn *conn, struct evhttp_request *req, const char *what,
	  const char **org)
{
	const cs_consortium *c;
	const cs_member_key *key;

	*org = NULL;
	if (conn->hash == NULL) {
		log_info("serve: refused %s: no client certificate (%s)",
			 conn_addr(conn), what);
		reply_text(req, 401, "a client certificate is needed");
		return -1;
	}
	if ((c = consortium_current()) == NULL) {
		reply_text(req, 503, "the server cannot read its members now");
		return -1;
	}
	if ((key = cs_tls_member(c, conn->hash)) == NULL) {
		log_info("serve: refused %s: not a member node key (%s from"
			 " %s)",
			 conn->hash, what, conn_addr(conn));
		reply_text(req, 403,
			   "certificate key %s is not a member node key",
			   conn->hash);
		return -1;
	}
	if (conn->org == NULL || strcmp(conn->org, key->org) != 0) {
		/* admitted (or moved) since the handshake */
		free(conn->org);
		conn->org = strdup(key->org);
	}
	*org = key->org;
	return 0;
}

static void
handle_request(struct evhttp_request *req, void *arg)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	struct conn *conn = ssl ? SSL_get_ex_data(ssl, conn_index) : NULL;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	enum route route = R_NONE;
	enum service svc = UPLOAD_PACK;
	enum evhttp_cmd_type allowed = EVHTTP_REQ_GET;
	char what[160], safe[128];
	const char *org;

	if (conn == NULL || srv == NULL) {
		evhttp_add_header(out, "Connection", "close");
		reply_text(req, 500, "this server speaks HTTPS only");
		return;
	}
	if (conn->evcon == NULL) {
		conn->evcon = evcon;
		evhttp_connection_set_closecb(evcon, conn_closed, conn);
	}
	if (!conn->identified)
		conn_identify(conn);
	if (path == NULL || *path == '\0')
		path = "/";
	snprintf(what, sizeof(what), "%s %s", method_name(method),
		 log_safe(safe, sizeof(safe), evhttp_request_get_uri(req)));
	log_debug("serve: %s: %s", conn_who(conn), what);

	if (conn->over_limit) {
		int stranger = conn->org == NULL;

		log_info("serve: refused %s: too many connections (%s)",
			 conn_who(conn), what);
		evhttp_add_header(out, "Connection", "close");
		reply_text(req, 503,
			   "too many connections from %s"
			   " (max-connections-per-peer = %u); try again later",
			   stranger ? "clients that are not members"
				    : conn->org,
			   srv->cfg.max_conns);
		return;
	}

	if (strcmp(path, "/info/refs") == 0) {
		struct evkeyvalq params;
		const char *service;

		route = R_REFS;
		TAILQ_INIT(&params);
		if (query && evhttp_parse_query_str(query, &params) < 0)
			TAILQ_INIT(&params);
		service = evhttp_find_header(&params, "service");
		if (service && strcmp(service, "git-upload-pack") == 0)
			svc = UPLOAD_PACK;
		else if (service && strcmp(service, "git-receive-pack") == 0)
			svc = RECEIVE_PACK;
		else
			route = R_NONE;
		evhttp_clear_headers(&params);
		if (route == R_NONE) {
			reply_text(req, 404,
				   "only git's smart HTTP protocol is served:"
				   " /info/refs?service=git-upload-pack or"
				   " git-receive-pack");
			return;
		}
	} else if (strcmp(path, "/git-upload-pack") == 0) {
		route = R_UPLOAD;
		svc = UPLOAD_PACK;
		allowed = EVHTTP_REQ_POST;
	} else if (strcmp(path, "/git-receive-pack") == 0) {
		route = R_RECEIVE;
		svc = RECEIVE_PACK;
		allowed = EVHTTP_REQ_POST;
	} else if (strcmp(path, "/status") == 0) {
		route = R_STATUS;
	} else {
		reply_text(req, 404, "no such resource: %s",
			   log_safe(safe, sizeof(safe), path));
		return;
	}
	if (method != allowed) {
		evhttp_add_header(out, "Allow", method_name(allowed));
		reply_text(req, 405, "%s takes %s only", path,
			   method_name(allowed));
		return;
	}
	if (authorize(conn, req, what, &org) < 0)
		return;
	if (route == R_STATUS) {
		serve_status(req);
		return;
	}

	if (route == R_UPLOAD || route == R_RECEIVE) {
		struct evbuffer *body = evhttp_request_get_input_buffer(req);
		const char *type = evhttp_find_header(in, "Content-Type");
		const char *enc = evhttp_find_header(in, "Content-Encoding");
		char want[64], size[32];

		snprintf(want, sizeof(want), "application/x-git-%s-request",
			 service_names[svc]);
		if (type == NULL || strcasecmp(type, want) != 0) {
			reply_text(req, 415, "expected Content-Type %s", want);
			return;
		}
		if (enc && strcasecmp(enc, "identity") == 0) {
			evhttp_remove_header(in, "Content-Encoding");
			enc = NULL;
		}
		if (enc && strcasecmp(enc, "gzip") != 0 &&
		    strcasecmp(enc, "x-gzip") != 0) {
			log_info("serve: refused %s: Content-Encoding %s (%s)",
				 org, log_safe(safe, sizeof(safe), enc),
				 what);
			reply_text(req, 415,
				   "Content-Encoding %s is not supported:"
				   " gzip or none",
				   log_safe(safe, sizeof(safe), enc));
			return;
		}
		if (evbuffer_get_length(body) > srv->cfg.max_body) {
			reply_text(req, 413, "the request body is larger than"
				   " max-body (%s)",
				   human_size(size, srv->cfg.max_body));
			return;
		}
		if (enc) {
			int r = gzip_measure(body, srv->cfg.max_body);

			if (r == GZIP_TOO_BIG) {
				log_info("serve: refused %s: the body inflates"
					 " past max-body (%s)",
					 org, what);
				reply_text(req, 413,
					   "the request body inflates to more"
					   " than max-body (%s)",
					   human_size(size,
						      srv->cfg.max_body));
				return;
			}
			if (r == GZIP_CORRUPT) {
				log_info("serve: refused %s: the body is not"
					 " valid gzip (%s)",
					 org, what);
				reply_text(req, 400,
					   "the request body is not valid gzip");
				return;
			}
		}
	}
	serve_git(conn, req, svc, route == R_REFS, org);
}

/* ------------------------------------------------------------ lifecycle */

static void
libevent_log(int severity, const char *msg)
{
	int level = severity == EVENT_LOG_DEBUG	  ? LOG_DEBUG
		    : severity == EVENT_LOG_MSG	  ? LOG_INFO
		    : severity == EVENT_LOG_WARN ? LOG_WARNING
						 : LOG_ERROR;

	log_msg(level, "libevent: %s", msg);
}

static void
accept_resume(evutil_socket_t fd, short what, void *arg)
{
	if (srv && srv->bound)
		evconnlistener_enable(
			evhttp_bound_socket_get_listener(srv->bound));
}

static void
on_accept_error(struct evconnlistener *lev, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval second = {1, 0};

	if (err == EMFILE || err == ENFILE || err == ENOBUFS ||
	    err == ENOMEM) {
		log_warning("serve: cannot accept connections: %s; pausing"
			    " for a second",
			    strerror(err));
		evconnlistener_disable(lev);
		evtimer_add(srv->accept_retry, &second);
	} else {
		log_debug("serve: accept: %s", strerror(err));
	}
}

/* The URL clients use: the address actually bound. */
static int
bound_url(char **out, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN];

	*out = NULL;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return cs_error_set(CS_ERROR, "getsockname: %s",
				    strerror(errno));
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		if (asprintf(out, "https://[%s]:%u/", host,
			     ntohs(a->sin6_port)) < 0)
			*out = NULL;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		if (asprintf(out, "https://%s:%u/", host,
			     ntohs(a->sin_port)) < 0)
			*out = NULL;
	}
	return *out ? 0 : cs_error_set(CS_ERROR, "out of memory");
}

static void
server_apply_limits(void)
{
	evhttp_set_max_body_size(srv->http, (ev_ssize_t)srv->cfg.max_body);
}

static void
server_free(struct server *s)
{
	if (s == NULL)
		return;
	if (s->http)
		evhttp_free(s->http);
	if (s->sigchld)
		event_free(s->sigchld);
	if (s->accept_retry)
		event_free(s->accept_retry);
	SSL_CTX_free(s->ctx);
	cs_consortium_free(s->consortium);
	while (s->counts) {
		struct org_count *c = s->counts;

		s->counts = c->next;
		free(c);
	}
	serve_config_clear(&s->cfg);
	free(s->dir);
	free(s->hooks);
	free(s->url);
	free(s->url_file);
	free(s);
}

int
server_start(struct event_base *base, cs_node *node)
{
	struct server *s = NULL;
	serve_config cfg;
	char *text = NULL;
	int present, error;

	loop_base = base;
	if (srv)
		return cs_error_set(CS_EEXISTS, "the server runs already");
	if ((error = serve_config_read(&cfg, &present, node)) < 0)
		return error;
	if (!present)
		return 0;
	event_set_log_callback(libevent_log);
	if (conn_index < 0 &&
	    (conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL,
					       conn_ex_free)) < 0) {
		serve_config_clear(&cfg);
		return cs_error_set(CS_ERROR, "cannot set up TLS");
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		serve_config_clear(&cfg);
		return cs_error_set(CS_ERROR, "out of memory");
	}
	s->base = base;
	s->node = node;
	s->cfg = cfg; /* transferred */
	TAILQ_INIT(&s->conns);
	TAILQ_INIT(&s->running);
	TAILQ_INIT(&s->queued);
	if ((s->dir = realpath(cs_node_dir(node), NULL)) == NULL) {
		error = cs_error_set(CS_ERROR, "cannot resolve '%s': %s",
				     cs_node_dir(node), strerror(errno));
		goto fail;
	}
	if (asprintf(&s->hooks, "%s/hooks", s->dir) < 0 ||
	    asprintf(&s->url_file, "%s/" SERVER_URL_FILE, s->dir) < 0) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto fail;
	}
	if ((error = cs_tls_server_ctx(&s->ctx, node)) < 0 ||
	    (error = write_hook(s->hooks)) < 0)
		goto fail;

	srv = s;
	if ((s->http = evhttp_new(base)) == NULL ||
	    (s->sigchld = evsignal_new(base, SIGCHLD, on_sigchld, NULL)) ==
		    NULL ||
	    (s->accept_retry = evtimer_new(base, accept_resume, NULL)) ==
		    NULL ||
	    event_add(s->sigchld, NULL) < 0) {
		error = cs_error_set(CS_ERROR, "cannot set up the server");
		goto fail;
	}
	evhttp_set_bevcb(s->http, conn_new_bev, NULL);
	evhttp_set_gencb(s->http, handle_request, NULL);
	evhttp_set_timeout(s->http, IDLE_TIMEOUT);
	evhttp_set_max_headers_size(s->http, MAX_HEADERS_SIZE);
	evhttp_set_flags(s->http, EVHTTP_SERVER_LINGERING_CLOSE);
	evhttp_set_default_content_type(s->http, "text/plain; charset=utf-8");
	evhttp_set_allowed_methods(s->http,
				   EVHTTP_REQ_GET | EVHTTP_REQ_POST |
					   EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
					   EVHTTP_REQ_DELETE |
					   EVHTTP_REQ_OPTIONS |
					   EVHTTP_REQ_PATCH);
	server_apply_limits();
	errno = 0;
	s->bound = evhttp_bind_socket_with_handle(s->http, s->cfg.host,
						  (ev_uint16_t)s->cfg.port);
	if (s->bound == NULL) {
		error = cs_error_set(CS_ERROR, "cannot listen on %s: %s",
				     s->cfg.listen,
				     errno ? strerror(errno)
					   : "unknown address");
		goto fail;
	}
	evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(s->bound),
				    on_accept_error);
	if ((error = bound_url(&s->url,
			       evhttp_bound_socket_get_fd(s->bound))) < 0)
		goto fail;
	if (asprintf(&text, "%s\n", s->url) < 0) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto fail;
	}
	if ((error = write_file(s->url_file, text, 0644)) < 0)
		goto fail;
	free(text);
	log_info("serve: listening on %s (max-body %s, %u connections per"
		 " peer, %u git processes)",
		 s->url, human_size((char[32]){0}, s->cfg.max_body),
		 s->cfg.max_conns, s->cfg.max_packs);
	return 0;
fail:
	free(text);
	srv = NULL;
	server_free(s);
	return error;
}

int
server_running(void)
{
	return srv != NULL;
}

int
server_reload(cs_node *node)
{
	serve_config cfg;
	SSL_CTX *ctx = NULL;
	int present, error;

	if ((error = serve_config_read(&cfg, &present, node)) < 0)
		return error;
	if (srv == NULL) {
		serve_config_clear(&cfg);
		if (present && loop_base)
			return server_start(loop_base, node);
		return 0;
	}
	if (!present) {
		log_warning("serve: the [serve] section is gone: restart"
			    " cartosyncd to stop serving on %s",
			    srv->url);
		srv->node = node;
		cs_consortium_free(srv->consortium);
		srv->consortium = NULL;
		return 0;
	}
	if ((error = cs_tls_server_ctx(&ctx, node)) < 0) {
		serve_config_clear(&cfg);
		return error;
	}
	if (strcmp(cfg.listen, srv->cfg.listen) != 0)
		log_warning("serve: listen changed to %s: restart cartosyncd"
			    " to listen there; still serving on %s",
			    cfg.listen, srv->url);
	/* the bound address stays what it is */
	free(cfg.listen);
	free(cfg.host);
	cfg.listen = srv->cfg.listen;
	cfg.host = srv->cfg.host;
	cfg.port = srv->cfg.port;
	srv->cfg = cfg;
	SSL_CTX_free(srv->ctx);
	srv->ctx = ctx;
	srv->node = node;
	cs_consortium_free(srv->consortium);
	srv->consortium = NULL;
	server_apply_limits();
	jobs_start_queued();
	log_info("serve: limits: max-body %s, %u connections per peer, %u git"
		 " processes, handshake within %u s",
		 human_size((char[32]){0}, cfg.max_body), cfg.max_conns,
		 cfg.max_packs, cfg.handshake_timeout);
	return 0;
}

void
server_stop(void)
{
	struct server *s = srv;
	struct job *job;
	struct conn *conn;
	unsigned killed = 0;

	if (s == NULL)
		return;
	/*
	 * Closing the connections tells the jobs their clients are gone
	 * (conn_closed): then no job holds a request evhttp frees.
	 */
	stopping = 1;
	if (s->http) {
		evhttp_free(s->http);
		s->http = NULL;
	}
	while ((job = TAILQ_FIRST(&s->queued)) != NULL) {
		TAILQ_REMOVE(&s->queued, job, link);
		job_free(job);
	}
	while ((job = TAILQ_FIRST(&s->running)) != NULL) {
		TAILQ_REMOVE(&s->running, job, link);
		if (job->pid > 0 && !job->exited) {
			kill(-job->pid, SIGKILL);
			while (waitpid(job->pid, NULL, 0) < 0 &&
			       errno == EINTR)
				;
			killed++;
		}
		if (job->conn)
			job->conn->job = NULL;
		job_free(job);
	}
	if (killed)
		log_info("serve: stopped %u git process%s", killed,
			 killed == 1 ? "" : "es");
	/* What libevent frees later must not find the server. */
	while ((conn = TAILQ_FIRST(&s->conns)) != NULL) {
		TAILQ_REMOVE(&s->conns, conn, link);
		conn->orphan = 1;
		conn->job = NULL;
		conn->end_req = NULL;
		if (conn->hs_timer) {
			event_free(conn->hs_timer);
			conn->hs_timer = NULL;
		}
		if (conn->end_timer) {
			event_free(conn->end_timer);
			conn->end_timer = NULL;
		}
	}
	if (s->url_file)
		unlink(s->url_file);
	srv = NULL;
	server_free(s);
	stopping = 0;
	log_info("serve: stopped");
}

void
server_set_status(json_t *(*fn)(void *arg), void *arg)
{
	status_fn = fn;
	status_arg = arg;
}

void
server_set_on_push(void (*fn)(const char *org, void *arg), void *arg)
{
	push_fn = fn;
	push_arg = arg;
}
