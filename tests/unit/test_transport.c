/*
 * cartosync — the network transport's client, against real servers: a TLS
 * server thread in this file speaks just enough HTTP for the failure cases
 * (a trickle, an endless body, an error status, a redirect, a hang-up), and
 * runs stock `git http-backend` as a CGI for real fetches and pushes.  No
 * mock of OpenSSL or libgit2.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "cartosync/error.h"
#include "cartosync/node.h"
#include "cartosync/oid.h"
#include "cartosync/repo.h"
#include "cartosync/tls.h"
#include "cartosync/transport.h"

/* basedir: one per run, removed at the end even when tests fail; tmpdir:
 * one per test inside it. */
static char basedir[64];
static char tmpdir[96];

static void
make_basedir(void)
{
	snprintf(basedir, sizeof(basedir), "/tmp/cs-test-transport-XXXXXX");
	if (mkdtemp(basedir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	/* No user git configuration either (url.insteadOf, ...). */
	setenv("HOME", basedir, 1);
}

static void
remove_basedir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", basedir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", basedir);
}

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

/* `git rev-parse` of `rev` in `gitdir`, or "" if it does not exist. */
static void
rev_parse(char out[CS_OID_HEXSZ + 1], const char *gitdir, const char *rev)
{
	char cmd[512];
	FILE *p;

	snprintf(cmd, sizeof(cmd),
	         "git -C '%s' rev-parse --verify -q '%s' 2>/dev/null", gitdir,
	         rev);
	ck_assert_ptr_nonnull(p = popen(cmd, "r"));
	if (fgets(out, CS_OID_HEXSZ + 1, p) == NULL)
		out[0] = '\0';
	pclose(p);
}

static char *
hex(const cs_oid *id)
{
	static char bufs[4][CS_OID_HEXSZ + 1];
	static int next;
	char *p = bufs[next++ % 4];

	cs_oid_fmt(p, id);
	return p;
}

/* --- identities ------------------------------------------------------- */

/* The server's node, the client's node, and a stranger with other keys. */
static cs_node *server_node, *client_node, *stranger_node;
static char *server_hash, *client_hash, *stranger_hash;
static SSL_CTX *client_ctx, *stranger_ctx;

static cs_node *
node_new(const char *name, char **hash)
{
	char dir[160];
	cs_node *node = NULL;

	snprintf(dir, sizeof(dir), "%s/%s", tmpdir, name);
	ck_assert_msg(cs_node_create(&node, dir, name) == 0, "%s",
	              cs_error_last());
	ck_assert_int_eq(cs_node_tls_hash(hash, node), 0);
	return node;
}

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/t-XXXXXX", basedir);
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	server_node = node_new("hub", &server_hash);
	client_node = node_new("ms2", &client_hash);
	stranger_node = node_new("other", &stranger_hash);
	ck_assert_str_ne(server_hash, client_hash);
	ck_assert_str_ne(server_hash, stranger_hash);
	ck_assert_int_eq(cs_tls_client_ctx(&client_ctx, client_node), 0);
	ck_assert_int_eq(cs_tls_client_ctx(&stranger_ctx, stranger_node), 0);
}

static void
teardown(void)
{
	char cmd[160];

	SSL_CTX_free(client_ctx);
	SSL_CTX_free(stranger_ctx);
	client_ctx = stranger_ctx = NULL;
	cs_node_free(server_node);
	cs_node_free(client_node);
	cs_node_free(stranger_node);
	free(server_hash);
	free(client_hash);
	free(stranger_hash);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

/* --- a small HTTPS server --------------------------------------------- */

enum mode {
	M_GIT,      /* git http-backend as a CGI */
	M_TRICKLE,  /* a response, one byte every 200 ms */
	M_ENDLESS,  /* a ref advertisement that never ends */
	M_STATUS,   /* `status` with `body`, head and body sent apart */
	M_REDIRECT, /* 302 to `location` */
};

typedef struct {
	enum mode mode;
	SSL_CTX *ctx;
	int fd;
	int port;
	pthread_t thread;
	atomic_int stop;
	atomic_int connections; /* TLS handshakes completed */
	atomic_int requests;    /* HTTP requests read */
	atomic_int chunked;     /* requests with a chunked body */
	atomic_int expect;      /* requests with an Expect header */
	pthread_mutex_t lock;
	char client_hash[80]; /* key hash of the last client */
	const char *require;  /* M_GIT: the client key hash it serves */
	int hangup_on_push;   /* M_GIT: reset the receive-pack POST */
	char root[160];       /* M_GIT: GIT_PROJECT_ROOT */
	char location[256];   /* M_REDIRECT */
	int status;           /* M_STATUS */
	const char *body;     /* M_STATUS */
} server;

typedef struct {
	SSL *ssl;
	char buf[16384];
	size_t off, len;
} reader;

static int
rd_fill(reader *r)
{
	size_t n = 0;

	if (r->off > 0) {
		memmove(r->buf, r->buf + r->off, r->len - r->off);
		r->len -= r->off;
		r->off = 0;
	}
	if (r->len == sizeof(r->buf) ||
	    SSL_read_ex(r->ssl, r->buf + r->len, sizeof(r->buf) - r->len, &n) !=
	            1)
		return -1;
	r->len += n;
	return 0;
}

/* A line without its CRLF. */
static int
rd_line(reader *r, char *out, size_t size)
{
	for (;;) {
		char *nl = memchr(r->buf + r->off, '\n', r->len - r->off);

		if (nl != NULL) {
			size_t n = (size_t)(nl - (r->buf + r->off));

			if (n > 0 && nl[-1] == '\r')
				n--;
			if (n >= size)
				return -1;
			memcpy(out, r->buf + r->off, n);
			out[n] = '\0';
			r->off = (size_t)(nl - r->buf) + 1;
			return 0;
		}
		if (rd_fill(r) < 0)
			return -1;
	}
}

static int
rd_exact(reader *r, char *out, size_t n)
{
	while (n > 0) {
		size_t have = r->len - r->off;

		if (have == 0) {
			if (rd_fill(r) < 0)
				return -1;
			continue;
		}
		if (have > n)
			have = n;
		memcpy(out, r->buf + r->off, have);
		r->off += have;
		out += have;
		n -= have;
	}
	return 0;
}

typedef struct {
	char method[16];
	char path[1024];
	char query[1024];
	char content_type[1024];
	size_t content_length;
	int chunked;
	int expect;
	char *body;
	size_t body_len;
} request;

static int
read_head(reader *r, request *rq)
{
	char line[1024], target[1024], *q;

	memset(rq, 0, sizeof(*rq));
	if (rd_line(r, line, sizeof(line)) < 0 ||
	    sscanf(line, "%15s %1023s", rq->method, target) != 2)
		return -1;
	if ((q = strchr(target, '?')) != NULL) {
		*q++ = '\0';
		snprintf(rq->query, sizeof(rq->query), "%s", q);
	}
	snprintf(rq->path, sizeof(rq->path), "%s", target);
	for (;;) {
		if (rd_line(r, line, sizeof(line)) < 0)
			return -1;
		if (line[0] == '\0')
			return 0;
		if (strncasecmp(line, "Content-Type: ", 14) == 0)
			snprintf(rq->content_type, sizeof(rq->content_type),
			         "%s", line + 14);
		else if (strncasecmp(line, "Content-Length: ", 16) == 0)
			rq->content_length = strtoul(line + 16, NULL, 10);
		else if (strcasecmp(line, "Transfer-Encoding: chunked") == 0)
			rq->chunked = 1;
		else if (strncasecmp(line, "Expect:", 7) == 0)
			rq->expect = 1;
	}
}

static int
body_append(request *rq, reader *r, size_t n)
{
	char *grown = realloc(rq->body, rq->body_len + n + 1);

	if (grown == NULL)
		return -1;
	rq->body = grown;
	if (rd_exact(r, rq->body + rq->body_len, n) < 0)
		return -1;
	rq->body_len += n;
	return 0;
}

static int
read_body(reader *r, request *rq)
{
	char line[128];

	if (!rq->chunked)
		return body_append(rq, r, rq->content_length);
	for (;;) {
		size_t n;

		if (rd_line(r, line, sizeof(line)) < 0)
			return -1;
		n = strtoul(line, NULL, 16);
		if (n == 0)
			break;
		if (body_append(rq, r, n) < 0 || rd_line(r, line, 4) < 0)
			return -1;
	}
	do { /* trailers */
		if (rd_line(r, line, sizeof(line)) < 0)
			return -1;
	} while (line[0] != '\0');
	return 0;
}

static int
write_all(SSL *ssl, const void *data, size_t len)
{
	size_t n = 0;

	while (len > 0) {
		if (SSL_write_ex(ssl, data, len, &n) != 1)
			return -1;
		data = (const char *)data + n;
		len -= n;
	}
	return 0;
}

static void
respond(SSL *ssl, int status, const char *reason, const char *body)
{
	char head[512];

	snprintf(head, sizeof(head),
	         "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
	         "Content-Length: %zu\r\nConnection: close\r\n\r\n",
	         status, reason, strlen(body));
	if (write_all(ssl, head, strlen(head)) == 0)
		write_all(ssl, body, strlen(body));
}

/* Run `git http-backend` for `rq` and send its answer. */
static void
serve_git(server *srv, SSL *ssl, request *rq)
{
	char e_root[200], e_path[1100], e_query[1100], e_method[40],
	        e_type[1100], e_len[64], e_home[128], e_pathvar[4096];
	char *envp[] = {e_root,
	                e_path,
	                e_query,
	                e_method,
	                e_type,
	                e_len,
	                e_home,
	                e_pathvar,
	                "GIT_HTTP_EXPORT_ALL=1",
	                "GIT_CONFIG_NOSYSTEM=1",
	                "REMOTE_ADDR=127.0.0.1",
	                "GATEWAY_INTERFACE=CGI/1.1",
	                NULL};
	char *argv[] = {"git", "http-backend", NULL};
	char infile[160], *out = NULL, *body, status[64] = "200 OK";
	char *head_end, *line, *save = NULL, headers[2048] = "";
	size_t outlen = 0, cap = 0;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, dfl;
	int in, pipefd[2], wstatus;
	pid_t pid;
	ssize_t n;

	snprintf(e_root, sizeof(e_root), "GIT_PROJECT_ROOT=%s", srv->root);
	snprintf(e_path, sizeof(e_path), "PATH_INFO=%s", rq->path);
	snprintf(e_query, sizeof(e_query), "QUERY_STRING=%s", rq->query);
	snprintf(e_method, sizeof(e_method), "REQUEST_METHOD=%s", rq->method);
	snprintf(e_type, sizeof(e_type), "CONTENT_TYPE=%s", rq->content_type);
	snprintf(e_len, sizeof(e_len), "CONTENT_LENGTH=%zu", rq->body_len);
	snprintf(e_home, sizeof(e_home), "HOME=%s", basedir);
	snprintf(e_pathvar, sizeof(e_pathvar), "PATH=%s", getenv("PATH"));

	/* The request body on stdin, from an unlinked file. */
	snprintf(infile, sizeof(infile), "%s/cgi-in-XXXXXX", tmpdir);
	if ((in = mkstemp(infile)) < 0)
		return;
	unlink(infile);
	if ((rq->body_len > 0 &&
	     write(in, rq->body, rq->body_len) != (ssize_t)rq->body_len) ||
	    lseek(in, 0, SEEK_SET) != 0 || pipe(pipefd) < 0) {
		close(in);
		return;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_addclose(&fa, pipefd[0]);
	posix_spawn_file_actions_addclose(&fa, pipefd[1]);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dfl);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
	                                        POSIX_SPAWN_SETSIGDEF);
	if (posix_spawnp(&pid, "git", &fa, &attr, argv, envp) != 0)
		pid = -1;
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(in);
	close(pipefd[1]);
	for (;;) {
		if (outlen + 65536 > cap) {
			char *grown = realloc(out, cap = outlen + 65536 + 1);

			if (grown == NULL)
				break;
			out = grown;
		}
		if ((n = read(pipefd[0], out + outlen, cap - outlen - 1)) <= 0)
			break;
		outlen += (size_t)n;
	}
	close(pipefd[0]);
	if (pid > 0)
		waitpid(pid, &wstatus, 0);
	if (out == NULL)
		return;
	out[outlen] = '\0';

	/* CGI head -> HTTP head. */
	if ((head_end = strstr(out, "\r\n\r\n")) != NULL) {
		body = head_end + 4;
	} else if ((head_end = strstr(out, "\n\n")) != NULL) {
		body = head_end + 2;
	} else {
		respond(ssl, 502, "Bad Gateway", "no CGI head\n");
		free(out);
		return;
	}
	*head_end = '\0';
	for (line = strtok_r(out, "\r\n", &save); line != NULL;
	     line = strtok_r(NULL, "\r\n", &save)) {
		if (strncasecmp(line, "Status: ", 8) == 0) {
			snprintf(status, sizeof(status), "%s", line + 8);
		} else {
			strncat(headers, line,
			        sizeof(headers) - strlen(headers) - 3);
			strcat(headers, "\r\n");
		}
	}
	{
		char head[2600];
		size_t blen = outlen - (size_t)(body - out);

		snprintf(head, sizeof(head),
		         "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\n"
		         "Connection: close\r\n\r\n",
		         status, headers, blen);
		if (write_all(ssl, head, strlen(head)) == 0)
			write_all(ssl, body, blen);
	}
	free(out);
}

static void
put_pkt(char *buf, size_t *len, const char *payload, size_t plen)
{
	sprintf(buf + *len, "%04zx", plen + 4);
	memcpy(buf + *len + 4, payload, plen);
	*len += plen + 4;
}

static void
serve_endless(server *srv, SSL *ssl)
{
	static const char head[] =
	        "HTTP/1.1 200 OK\r\n"
	        "Content-Type: application/x-git-upload-pack-advertisement\r\n"
	        "Connection: close\r\n\r\n";
	static const char first[] = "0000000000000000000000000000000000000001"
	                            " refs/heads/main\0side-band-64k\n";
	char buf[16384], line[128];
	size_t len = 0;
	unsigned i = 0;

	put_pkt(buf, &len, "# service=git-upload-pack\n", 26);
	memcpy(buf + len, "0000", 4);
	len += 4;
	put_pkt(buf, &len, first, sizeof(first) - 1);
	if (write_all(ssl, head, strlen(head)) < 0 ||
	    write_all(ssl, buf, len) < 0)
		return;
	while (!atomic_load(&srv->stop)) {
		len = 0;
		while (len + 128 < sizeof(buf)) {
			int n = snprintf(
			        line, sizeof(line),
			        "00000000000000000000000000000000000000"
			        "02 refs/heads/b%08u\n",
			        i++);

			put_pkt(buf, &len, line, (size_t)n);
		}
		if (write_all(ssl, buf, len) < 0)
			return;
	}
}

static void
serve_trickle(server *srv, SSL *ssl)
{
	static const char answer[] =
	        "HTTP/1.1 200 OK\r\n"
	        "Content-Type: application/x-git-upload-pack-advertisement\r\n"
	        "Content-Length: 1000\r\n\r\n001e# service=git-upload-pack\n";

	for (size_t i = 0; i < sizeof(answer) - 1; i++) {
		if (atomic_load(&srv->stop) ||
		    write_all(ssl, answer + i, 1) < 0)
			return;
		sleep_ms(200);
	}
}

static void
handle(server *srv, int fd)
{
	SSL *ssl = SSL_new(srv->ctx);
	reader *r = calloc(1, sizeof(*r));
	struct timeval tv = {5, 0};
	char *hash = NULL;
	request rq;

	memset(&rq, 0, sizeof(rq));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (ssl == NULL || r == NULL || SSL_set_fd(ssl, fd) != 1 ||
	    SSL_accept(ssl) != 1)
		goto done;
	atomic_fetch_add(&srv->connections, 1);
	pthread_mutex_lock(&srv->lock);
	if (cs_tls_peer_hash(&hash, ssl) == 0)
		snprintf(srv->client_hash, sizeof(srv->client_hash), "%s",
		         hash);
	else
		srv->client_hash[0] = '\0';
	pthread_mutex_unlock(&srv->lock);
	r->ssl = ssl;
	if (read_head(r, &rq) < 0)
		goto done;
	atomic_fetch_add(&srv->requests, 1);
	if (rq.chunked)
		atomic_fetch_add(&srv->chunked, 1);
	if (rq.expect)
		atomic_fetch_add(&srv->expect, 1);
	switch (srv->mode) {
	case M_TRICKLE:
		serve_trickle(srv, ssl);
		break;
	case M_ENDLESS:
		serve_endless(srv, ssl);
		break;
	case M_STATUS: {
		char head[256];

		snprintf(head, sizeof(head),
		         "HTTP/1.1 %d Whatever\r\nContent-Type: text/plain\r\n"
		         "Content-Length: %zu\r\n\r\n",
		         srv->status, strlen(srv->body));
		/* Two TLS records, apart: the client must wait for the
		 * body to report it. */
		if (write_all(ssl, head, strlen(head)) == 0) {
			sleep_ms(100);
			write_all(ssl, srv->body, strlen(srv->body));
		}
		break;
	}
	case M_REDIRECT: {
		char head[512];

		snprintf(head, sizeof(head),
		         "HTTP/1.1 302 Found\r\nLocation: %s\r\n"
		         "Content-Length: 0\r\n\r\n",
		         srv->location);
		write_all(ssl, head, strlen(head));
		break;
	}
	case M_GIT:
		if (srv->require &&
		    (hash == NULL || strcmp(hash, srv->require) != 0)) {
			char msg[200];

			snprintf(msg, sizeof(msg),
			         "certificate %s is not a member's node key\n",
			         hash ? hash : "(none)");
			respond(ssl, 403, "Forbidden", msg);
			break;
		}
		if (srv->hangup_on_push && strcmp(rq.method, "POST") == 0 &&
		    strstr(rq.path, "git-receive-pack") != NULL) {
			struct linger lg = {1, 0};

			/* Reset the connection under the client's feet. */
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			SSL_free(ssl);
			ssl = NULL;
			goto done;
		}
		if (read_body(r, &rq) < 0)
			break;
		serve_git(srv, ssl, &rq);
		break;
	}
	if (ssl != NULL)
		SSL_shutdown(ssl);
done:
	free(rq.body);
	free(hash);
	free(r);
	SSL_free(ssl);
	close(fd);
}

static void *
server_main(void *arg)
{
	server *srv = arg;
	sigset_t pipe_set;

	/* This thread may write to a client that has gone: EPIPE, not a
	 * signal.  The test threads keep SIGPIPE's default action, so a
	 * SIGPIPE raised by the library would kill the test. */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
	while (!atomic_load(&srv->stop)) {
		struct pollfd p = {srv->fd, POLLIN, 0};
		int fd;

		if (poll(&p, 1, 50) <= 0)
			continue;
		if ((fd = accept(srv->fd, NULL, NULL)) >= 0)
			handle(srv, fd);
	}
	return NULL;
}

/* A server presenting the TLS identity of `node`. */
static void
server_start_as(server *srv, enum mode mode, cs_node *node)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	memset(srv, 0, sizeof(*srv));
	srv->mode = mode;
	pthread_mutex_init(&srv->lock, NULL);
	ck_assert_int_eq(cs_tls_server_ctx(&srv->ctx, node), 0);
	ck_assert_int_ge(srv->fd = socket(AF_INET, SOCK_STREAM, 0), 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(srv->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(srv->fd, 16), 0);
	ck_assert_int_eq(getsockname(srv->fd, (struct sockaddr *)&sa, &len), 0);
	srv->port = ntohs(sa.sin_port);
}

static void
server_start(server *srv, enum mode mode)
{
	server_start_as(srv, mode, server_node);
}

static void
server_run(server *srv)
{
	ck_assert_int_eq(pthread_create(&srv->thread, NULL, server_main, srv),
	                 0);
}

static void
server_stop(server *srv)
{
	atomic_store(&srv->stop, 1);
	pthread_join(srv->thread, NULL);
	close(srv->fd);
	SSL_CTX_free(srv->ctx);
	pthread_mutex_destroy(&srv->lock);
}

/* --- a repository served by stock git --------------------------------- */

static char served[192]; /* the bare repository git http-backend serves */

/* Three commits made by stock git, and a hook that guards one ref. */
static void
make_served(server *srv)
{
	snprintf(srv->root, sizeof(srv->root), "%s/root", tmpdir);
	snprintf(served, sizeof(served), "%s/served.git", srv->root);
	sh("set -e; export HOME='%s' GIT_CONFIG_NOSYSTEM=1"
	   " GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.org"
	   " GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.org;"
	   " cd '%s'; git init -q -b main work;"
	   " for i in 1 2 3; do echo $i > work/f$i; git -C work add f$i;"
	   " GIT_AUTHOR_DATE=\"2024-01-0$i 00:00:00 +0000\""
	   " GIT_COMMITTER_DATE=\"2024-01-0$i 00:00:00 +0000\""
	   " git -C work commit -q -m c$i; done;"
	   " git clone -q --bare work '%s';"
	   " git -C '%s' config http.receivepack true;"
	   " printf '#!/bin/sh\\nwhile read old new ref; do\\n"
	   "  if [ \"$ref\" = refs/heads/protected ]; then\\n"
	   "    echo \"protected is read-only\" >&2; exit 1\\n"
	   "  fi\\ndone\\n' > '%s/hooks/pre-receive';"
	   " chmod +x '%s/hooks/pre-receive'",
	   basedir, tmpdir, served, served, served, served);
}

static void
url_of(char *out, size_t size, const server *srv, const char *path)
{
	snprintf(out, size, "https://127.0.0.1:%d%s", srv->port, path);
}

static cs_repo *
fresh_repo(const char *name)
{
	char dir[160];
	cs_repo *repo = NULL;

	snprintf(dir, sizeof(dir), "%s/%s", tmpdir, name);
	ck_assert_msg(cs_repo_init(&repo, dir) == 0, "%s", cs_error_last());
	return repo;
}

static const char *const fetch_main[] = {"+refs/heads/main:refs/staging/main"};

typedef struct {
	int calls;
	uint64_t total_objects;
	uint64_t objects;
	uint64_t received_bytes;
} progress_seen;

static void
on_progress(const cs_transfer_progress *p, void *arg)
{
	progress_seen *seen = arg;

	seen->calls++;
	seen->total_objects = p->total_objects;
	seen->objects = p->objects;
	seen->received_bytes = p->received_bytes;
}

/* --- the tests -------------------------------------------------------- */

/*
 * Stock git's own server side: list, fetch (ids equal git rev-parse), a
 * missing ref, push (the served repository has the commit), a push the
 * server's hook refuses (its message reaches the caller).  The server
 * serves only the client key it expects: client certificates are sent.
 */
START_TEST(test_git_fetch_ls_push)
{
	server srv;
	char url[256], want[CS_OID_HEXSZ + 1], got[CS_OID_HEXSZ + 1];
	cs_transfer_limits limits = {0};
	progress_seen seen = {0};
	cs_transport_ref *refs = NULL;
	size_t nrefs = 0;
	cs_repo *repo;
	cs_oid staged, parent_tree, blob, tree, commit;
	int found = 0, rc;

	server_start(&srv, M_GIT);
	make_served(&srv);
	srv.require = client_hash;
	server_run(&srv);
	url_of(url, sizeof(url), &srv, "/served.git");
	rev_parse(want, served, "main");
	ck_assert_uint_eq(strlen(want), CS_OID_HEXSZ);

	/* ls */
	rc = cs_transport_ls(&refs, &nrefs, client_ctx, url, server_hash, NULL);
	ck_assert_msg(rc == 0, "%s", cs_error_last());
	for (size_t i = 0; i < nrefs; i++)
		if (strcmp(refs[i].name, "refs/heads/main") == 0) {
			ck_assert_str_eq(hex(&refs[i].id), want);
			found = 1;
		}
	ck_assert_msg(found, "refs/heads/main not listed (%zu refs)", nrefs);
	cs_transport_refs_free(refs, nrefs);
	pthread_mutex_lock(&srv.lock);
	ck_assert_str_eq(srv.client_hash, client_hash);
	pthread_mutex_unlock(&srv.lock);

	/* fetch */
	repo = fresh_repo("staging");
	limits.progress = on_progress;
	limits.progress_arg = &seen;
	rc = cs_transport_fetch(repo, client_ctx, url, server_hash, fetch_main,
	                        1, &limits);
	ck_assert_msg(rc == 0, "%s", cs_error_last());
	ck_assert_int_eq(cs_repo_ref_read(&staged, repo, "refs/staging/main"),
	                 0);
	ck_assert_str_eq(hex(&staged), want);
	ck_assert_int_eq(cs_repo_ref_read(&staged, repo, CS_REF_MAIN),
	                 CS_ENOTFOUND);
	ck_assert_int_gt(seen.calls, 0);
	ck_assert_uint_eq(seen.total_objects, 9); /* 3 commits, trees, blobs */
	ck_assert_uint_eq(seen.objects, 9);
	ck_assert_uint_gt(seen.received_bytes, 0);
	ck_assert_int_ge(atomic_load(&srv.connections), 3);
	/* libgit2 1.5 sends upload-pack bodies with a Content-Length. */
	ck_assert_int_eq(atomic_load(&srv.chunked), 0);

	/* a ref the server does not have */
	{
		const char *const spec[] = {"refs/heads/nope:refs/staging/x"};

		rc = cs_transport_fetch(repo, client_ctx, url, server_hash,
		                        spec, 1, NULL);
		ck_assert_int_eq(rc, CS_ENOTFOUND);
		ck_assert_ptr_nonnull(strstr(cs_error_last(), url));
		ck_assert_ptr_nonnull(
		        strstr(cs_error_last(), "refs/heads/nope"));
	}

	/* push a new commit on top of main */
	ck_assert_int_eq(cs_repo_commit_tree(&parent_tree, repo, &staged), 0);
	ck_assert_int_eq(cs_repo_write_blob(&blob, repo, "4\n", 2), 0);
	{
		cs_tree_update up = {"f4", &blob};
		char raw[512];
		int len;

		ck_assert_int_eq(
		        cs_repo_tree_update(&tree, repo, &parent_tree, &up, 1),
		        0);
		len = snprintf(raw, sizeof(raw),
		               "tree %s\nparent %s\n"
		               "author t <t@example.org> 1704412800 +0000\n"
		               "committer t <t@example.org> 1704412800 +0000\n"
		               "\nc4\n",
		               hex(&tree), hex(&staged));
		ck_assert_int_eq(cs_repo_write_commit_raw(&commit, repo, raw,
		                                          (size_t)len),
		                 0);
	}
	ck_assert_int_eq(cs_repo_ref_cas(repo, "refs/heads/outgoing", &commit,
	                                 NULL, "test"),
	                 0);
	{
		const char *const spec[] = {
		        "refs/heads/outgoing:refs/heads/main"};

		rc = cs_transport_push(repo, client_ctx, url, server_hash, spec,
		                       1, NULL);
		ck_assert_msg(rc == 0, "%s", cs_error_last());
	}
	rev_parse(got, served, "main");
	ck_assert_str_eq(got, hex(&commit));
	sh("git -C '%s' fsck --no-progress --no-dangling", served);
	/* libgit2 1.5 sends receive-pack bodies chunked, and never asks
	 * for "100 Continue" unless told to process-wide. */
	ck_assert_int_ge(atomic_load(&srv.chunked), 1);
	ck_assert_int_eq(atomic_load(&srv.expect), 0);

	/* a push the server's hook refuses */
	{
		const char *const spec[] = {
		        "refs/heads/outgoing:refs/heads/protected"};

		rc = cs_transport_push(repo, client_ctx, url, server_hash, spec,
		                       1, NULL);
		ck_assert_msg(rc == CS_EPERM, "%d %s", rc, cs_error_last());
		ck_assert_ptr_nonnull(strstr(cs_error_last(), url));
		ck_assert_ptr_nonnull(
		        strstr(cs_error_last(), "refs/heads/protected"));
		ck_assert_ptr_nonnull(strstr(cs_error_last(), "declined"));
		ck_assert_msg(strstr(cs_error_last(),
		                     "protected is read-only") != NULL,
		              "%s", cs_error_last());
		rev_parse(got, served, "refs/heads/protected");
		ck_assert_str_eq(got, "");
	}

	/* libgit2 given an https:// URL another way finds no peer key. */
	rc = cs_repo_fetch(repo, url, "+refs/heads/main:refs/staging/other");
	ck_assert_int_lt(rc, 0);
	ck_assert_msg(strstr(cs_error_last(), "cs_transport") != NULL, "%s",
	              cs_error_last());

	cs_repo_free(repo);
	server_stop(&srv);
}
END_TEST

/* An object cap of 1 stops a fetch of 9 objects; no ref moves. */
START_TEST(test_object_cap)
{
	server srv;
	char url[256];
	cs_transfer_limits limits = {0};
	cs_repo *repo;
	cs_oid id;
	int rc;

	server_start(&srv, M_GIT);
	make_served(&srv);
	server_run(&srv);
	url_of(url, sizeof(url), &srv, "/served.git");
	repo = fresh_repo("staging");
	limits.max_objects = 1;
	rc = cs_transport_fetch(repo, client_ctx, url, server_hash, fetch_main,
	                        1, &limits);
	ck_assert_msg(rc == CS_ELIMIT, "%d %s", rc, cs_error_last());
	ck_assert_ptr_nonnull(strstr(cs_error_last(), url));
	ck_assert_msg(strstr(cs_error_last(),
	                     "the pack has 9 objects, over the limit of 1") !=
	                      NULL,
	              "%s", cs_error_last());
	ck_assert_int_eq(cs_repo_ref_read(&id, repo, "refs/staging/main"),
	                 CS_ENOTFOUND);
	/* The same fetch within the default cap works. */
	rc = cs_transport_fetch(repo, client_ctx, url, server_hash, fetch_main,
	                        1, NULL);
	ck_assert_msg(rc == 0, "%s", cs_error_last());
	cs_repo_free(repo);
	server_stop(&srv);
}
END_TEST

/*
 * (c) The server's key is not the one expected: CS_EVERIFY naming both,
 * before any HTTP request, and nothing is fetched.
 */
START_TEST(test_wrong_server_key)
{
	server srv;
	char url[256], want[CS_OID_HEXSZ + 1];
	cs_repo *repo;
	cs_commit *commit = NULL;
	cs_oid id;
	int rc;

	server_start(&srv, M_GIT);
	make_served(&srv);
	server_run(&srv);
	url_of(url, sizeof(url), &srv, "/served.git");
	rev_parse(want, served, "main");
	repo = fresh_repo("staging");
	rc = cs_transport_fetch(repo, client_ctx, url, stranger_hash,
	                        fetch_main, 1, NULL);
	ck_assert_msg(rc == CS_EVERIFY, "%d %s", rc, cs_error_last());
	ck_assert_ptr_nonnull(strstr(cs_error_last(), url));
	ck_assert_ptr_nonnull(strstr(cs_error_last(), server_hash));
	ck_assert_ptr_nonnull(strstr(cs_error_last(), stranger_hash));
	ck_assert_ptr_nonnull(strstr(cs_error_last(), "expected"));
	ck_assert_int_eq(atomic_load(&srv.requests), 0);
	ck_assert_int_eq(cs_repo_ref_read(&id, repo, "refs/staging/main"),
	                 CS_ENOTFOUND);
	ck_assert_int_eq(cs_oid_parse(&id, want, CS_OID_HEXSZ), 0);
	ck_assert_int_eq(cs_repo_read_commit(&commit, repo, &id), CS_ENOTFOUND);

	/* ls and push check the key the same way. */
	{
		cs_transport_ref *refs = NULL;
		size_t n = 0;
		const char *const spec[] = {"refs/heads/x:refs/heads/x"};

		ck_assert_int_eq(cs_transport_ls(&refs, &n, client_ctx, url,
		                                 stranger_hash, NULL),
		                 CS_EVERIFY);
		ck_assert_ptr_null(refs);
		ck_assert_int_eq(cs_transport_push(repo, client_ctx, url,
		                                   stranger_hash, spec, 1,
		                                   NULL),
		                 CS_EVERIFY);
	}
	ck_assert_int_eq(atomic_load(&srv.requests), 0);
	cs_repo_free(repo);
	server_stop(&srv);
}
END_TEST

/*
 * (e) The server identifies the client by its certificate: a client with
 * another node's key is refused, and the server's message is reported.
 */
START_TEST(test_client_certificate)
{
	server srv;
	char url[256];
	cs_transport_ref *refs = NULL;
	size_t n = 0;
	int rc;

	server_start(&srv, M_GIT);
	make_served(&srv);
	srv.require = client_hash;
	server_run(&srv);
	url_of(url, sizeof(url), &srv, "/served.git");

	rc = cs_transport_ls(&refs, &n, stranger_ctx, url, server_hash, NULL);
	ck_assert_msg(rc == CS_EPERM, "%d %s", rc, cs_error_last());
	ck_assert_ptr_nonnull(strstr(cs_error_last(), url));
	ck_assert_ptr_nonnull(strstr(cs_error_last(), "403"));
	ck_assert_msg(strstr(cs_error_last(), stranger_hash) != NULL &&
	                      strstr(cs_error_last(),
	                             "is not a member's node key") != NULL,
	              "%s", cs_error_last());
	pthread_mutex_lock(&srv.lock);
	ck_assert_str_eq(srv.client_hash, stranger_hash);
	pthread_mutex_unlock(&srv.lock);

	rc = cs_transport_ls(&refs, &n, client_ctx, url, server_hash, NULL);
	ck_assert_msg(rc == 0, "%s", cs_error_last());
	ck_assert_uint_gt(n, 0);
	cs_transport_refs_free(refs, n);
	pthread_mutex_lock(&srv.lock);
	ck_assert_str_eq(srv.client_hash, client_hash);
	pthread_mutex_unlock(&srv.lock);
	server_stop(&srv);
}
END_TEST

/*
 * (a) A server that trickles a byte every 200 ms is cut off by the overall
 * deadline, in about the deadline.
 */
START_TEST(test_deadline_trickle)
{
	server srv;
	char url[256];
	cs_transfer_limits limits = {0};
	cs_repo *repo;
	uint64_t start, elapsed;
	int rc;

	server_start(&srv, M_TRICKLE);
	server_run(&srv);
	url_of(url, sizeof(url), &srv, "/served.git");
	repo = fresh_repo("staging");
	limits.deadline_ms = 1000;
	start = now_ms();
	rc = cs_transport_fetch(repo, client_ctx, url, server_hash, fetch_main,
	                        1, &limits);
	elapsed = now_ms() - start;
	ck_assert_msg(rc == CS_ELIMIT, "%d %s", rc, cs_error_last());
	ck_assert_ptr_nonnull(strstr(cs_error_last(), url));
	ck_assert_msg(strstr(cs_error_last(),
	                     "no complete answer within 1 s") != NULL,
	              "%s", cs_error_last());
	ck_assert_uint_ge(elapsed, 950);
	ck_assert_uint_le(elapsed, 2500); /* the trickle lasts 18 s */
	/* It was the answer that was slow: the request had gone out. */
	ck_assert_int_eq(atomic_load(&srv.requests), 1);
	cs_repo_free(repo);
	server_stop(&srv);
}
END_TEST

/* (b) An endless body stops at the byte cap. */
START_TEST(test_byte_cap)
{
	server srv;
	char url[256];
	cs_transfer_limits limits = {0};
	cs_repo *repo;
	uint64_t start;
	int rc;

	server_start(&srv, M_ENDLESS);
	server_run(&srv);
	url_of(url, sizeof(url), &srv, "/served.git");
	repo = fresh_repo("staging");
	limits.max_bytes = 1 << 20;
	limits.deadline_ms = 20000;
	start = now_ms();
	rc = cs_transport_fetch(repo, client_ctx, url, server_hash, fetch_main,
	                        1, &limits);
	ck_assert_msg(rc == CS_ELIMIT, "%d %s", rc, cs_error_last());
	ck_assert_ptr_nonnull(strstr(cs_error_last(), url));
	ck_assert_msg(strstr(cs_error_last(), "more than 1048576 bytes") !=
	                      NULL,
	              "%s", cs_error_last());
	ck_assert_uint_lt(now_ms() - start, 10000);
	cs_repo_free(repo);
	server_stop(&srv);
}
END_TEST

/* (d) Nobody listens: the error names the URL and the cause. */
START_TEST(test_connection_refused)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	char url[256], port[32];
	cs_repo *repo;
	int fd, rc;

	/* A port that was free a moment ago and has no listener. */
	ck_assert_int_ge(fd = socket(AF_INET, SOCK_STREAM, 0), 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/served.git",
	         ntohs(sa.sin_port));
	snprintf(port, sizeof(port), "port %d", ntohs(sa.sin_port));

	repo = fresh_repo("staging");
	rc = cs_transport_fetch(repo, client_ctx, url, server_hash, fetch_main,
	                        1, NULL);
	ck_assert_int_eq(rc, CS_ERROR);
	ck_assert_ptr_nonnull(strstr(cs_error_last(), url));
	ck_assert_ptr_nonnull(strstr(cs_error_last(), port));
	ck_assert_msg(strstr(cs_error_last(), "Connection refused") != NULL,
	              "%s", cs_error_last());
	cs_repo_free(repo);
}
END_TEST

/* An HTTP error carries the server's message, even sent after the head. */
START_TEST(test_http_status)
{
	static const struct {
		int status;
		int code;
	} cases[] = {
	        {403, CS_EPERM},
	        {404, CS_ENOTFOUND},
	        {500, CS_ERROR},
	};
	char url[256], status[16];

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		server srv;
		cs_transport_ref *refs = NULL;
		size_t n = 0;
		int rc;

		server_start(&srv, M_STATUS);
		srv.status = cases[i].status;
		srv.body = "this hub does not serve\nthat repository\n";
		server_run(&srv);
		url_of(url, sizeof(url), &srv, "/served.git");
		rc = cs_transport_ls(&refs, &n, client_ctx, url, server_hash,
		                     NULL);
		ck_assert_msg(rc == cases[i].code, "%d: %d %s", cases[i].status,
		              rc, cs_error_last());
		snprintf(status, sizeof(status), "%d", cases[i].status);
		ck_assert_ptr_nonnull(strstr(cs_error_last(), url));
		ck_assert_ptr_nonnull(strstr(cs_error_last(), status));
		ck_assert_msg(strstr(cs_error_last(),
		                     "this hub does not serve that"
		                     " repository") != NULL,
		              "%s", cs_error_last());
		server_stop(&srv);
	}
}
END_TEST

/*
 * A redirect elsewhere is refused, whether libgit2 would follow it (same
 * host, other port) or not (another host name); nothing connects there.
 */
START_TEST(test_redirect_refused)
{
	server srv, other;
	char url[256];
	const char *hosts[] = {"127.0.0.1", "localhost"};

	server_start(&other, M_GIT);
	make_served(&other);
	server_run(&other);
	for (size_t i = 0; i < 2; i++) {
		cs_transport_ref *refs = NULL;
		size_t n = 0;
		int rc;

		server_start(&srv, M_REDIRECT);
		snprintf(srv.location, sizeof(srv.location),
		         "https://%s:%d/served.git/info/refs"
		         "?service=git-upload-pack",
		         hosts[i], other.port);
		server_run(&srv);
		url_of(url, sizeof(url), &srv, "/served.git");
		rc = cs_transport_ls(&refs, &n, client_ctx, url, server_hash,
		                     NULL);
		ck_assert_msg(rc == CS_EPERM, "%s: %d %s", hosts[i], rc,
		              cs_error_last());
		ck_assert_ptr_nonnull(strstr(cs_error_last(), url));
		ck_assert_msg(strstr(cs_error_last(), srv.location) != NULL,
		              "%s", cs_error_last());
		ck_assert_int_eq(atomic_load(&srv.requests), 1);
		server_stop(&srv);
	}
	ck_assert_int_eq(atomic_load(&other.connections), 0);
	server_stop(&other);
}
END_TEST

/*
 * The server resets the connection while a 4 MiB push is being sent: an
 * error, not a SIGPIPE (this thread keeps SIGPIPE's default action, which
 * would kill the test).
 */
START_TEST(test_hangup_no_sigpipe)
{
	server srv;
	char url[256];
	cs_repo *repo;
	cs_oid blob, tree, commit;
	size_t size = (size_t)4 << 20;
	unsigned char *data = malloc(size);
	uint64_t x = 88172645463325252ULL;
	int rc;

	ck_assert(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
	server_start(&srv, M_GIT);
	make_served(&srv);
	srv.hangup_on_push = 1;
	server_run(&srv);
	url_of(url, sizeof(url), &srv, "/served.git");

	repo = fresh_repo("big");
	ck_assert_ptr_nonnull(data);
	for (size_t i = 0; i < size; i++) { /* incompressible */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		data[i] = (unsigned char)x;
	}
	ck_assert_int_eq(cs_repo_write_blob(&blob, repo, data, size), 0);
	free(data);
	{
		cs_tree_update up = {"big", &blob};
		char raw[256];
		int len;

		ck_assert_int_eq(cs_repo_tree_update(&tree, repo, NULL, &up, 1),
		                 0);
		len = snprintf(raw, sizeof(raw),
		               "tree %s\n"
		               "author t <t@example.org> 1704412800 +0000\n"
		               "committer t <t@example.org> 1704412800 +0000\n"
		               "\nbig\n",
		               hex(&tree));
		ck_assert_int_eq(cs_repo_write_commit_raw(&commit, repo, raw,
		                                          (size_t)len),
		                 0);
	}
	ck_assert_int_eq(
	        cs_repo_ref_cas(repo, "refs/heads/big", &commit, NULL, "t"), 0);
	{
		const char *const spec[] = {"+refs/heads/big:refs/heads/big"};

		rc = cs_transport_push(repo, client_ctx, url, server_hash, spec,
		                       1, NULL);
	}
	ck_assert_msg(rc == CS_ERROR, "%d %s", rc, cs_error_last());
	ck_assert_ptr_nonnull(strstr(cs_error_last(), url));
	ck_assert_int_ge(atomic_load(&srv.requests), 2);
	cs_repo_free(repo);
	server_stop(&srv);
}
END_TEST

/*
 * Two threads, two peers with two keys, two deadlines, at the same time:
 * each transfer's parameters are its thread's own.
 */
typedef struct {
	cs_repo *repo;
	const char *url;
	const char *peer_hash;
	uint64_t deadline_ms;
	int rc;
	char message[1024];
	uint64_t ended;
} fetch_job;

static void *
fetch_thread(void *arg)
{
	fetch_job *job = arg;
	cs_transfer_limits limits = {0};

	limits.deadline_ms = job->deadline_ms;
	job->rc = cs_transport_fetch(job->repo, client_ctx, job->url,
	                             job->peer_hash, fetch_main, 1, &limits);
	snprintf(job->message, sizeof(job->message), "%s",
	         job->rc ? cs_error_last() : "");
	job->ended = now_ms();
	return NULL;
}

START_TEST(test_concurrent_transfers)
{
	server git, slow;
	char git_url[256], slow_url[256], want[CS_OID_HEXSZ + 1];
	fetch_job a, b;
	pthread_t ta, tb;
	cs_oid id;

	server_start(&git, M_GIT);
	make_served(&git);
	server_run(&git);
	server_start_as(&slow, M_TRICKLE, stranger_node);
	server_run(&slow);
	url_of(git_url, sizeof(git_url), &git, "/served.git");
	url_of(slow_url, sizeof(slow_url), &slow, "/served.git");
	rev_parse(want, served, "main");

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	b.repo = fresh_repo("slow");
	b.url = slow_url;
	b.peer_hash = stranger_hash;
	b.deadline_ms = 2000;
	a.repo = fresh_repo("fast");
	a.url = git_url;
	a.peer_hash = server_hash;
	a.deadline_ms = 60000;
	ck_assert_int_eq(pthread_create(&tb, NULL, fetch_thread, &b), 0);
	sleep_ms(100);
	ck_assert_int_eq(pthread_create(&ta, NULL, fetch_thread, &a), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);

	ck_assert_msg(a.rc == 0, "%s", a.message);
	ck_assert_int_eq(cs_repo_ref_read(&id, a.repo, "refs/staging/main"), 0);
	ck_assert_str_eq(hex(&id), want);
	ck_assert_msg(b.rc == CS_ELIMIT, "%d %s", b.rc, b.message);
	ck_assert_msg(strstr(b.message, slow_url) != NULL &&
	                      strstr(b.message, "within 2 s") != NULL,
	              "%s", b.message);
	/* The fast fetch finished while the slow one was still waiting. */
	ck_assert_uint_lt(a.ended, b.ended);
	cs_repo_free(a.repo);
	cs_repo_free(b.repo);
	server_stop(&git);
	server_stop(&slow);
}
END_TEST

/* Arguments are checked before any connection. */
START_TEST(test_invalid_arguments)
{
	cs_transport_ref *refs = NULL;
	size_t n = 0;
	cs_repo *repo = fresh_repo("staging");
	static const char *const bad_urls[] = {
	        "http://127.0.0.1:1/x", "https://",
	        "https://u@host/x",     "https://host:0/x",
	        "https://host:99999/x", "https://[::1/x",
	        "https://host:12a/x",
	};

	for (size_t i = 0; i < sizeof(bad_urls) / sizeof(*bad_urls); i++)
		ck_assert_msg(cs_transport_ls(&refs, &n, client_ctx,
		                              bad_urls[i], server_hash,
		                              NULL) == CS_EINVALID,
		              "%s accepted", bad_urls[i]);
	ck_assert_int_eq(cs_transport_ls(&refs, &n, client_ctx,
	                                 "https://127.0.0.1:1/x", "sha256:ABC",
	                                 NULL),
	                 CS_EINVALID);
	ck_assert_int_eq(cs_transport_ls(&refs, &n, NULL,
	                                 "https://127.0.0.1:1/x", server_hash,
	                                 NULL),
	                 CS_EINVALID);
	ck_assert_int_eq(cs_transport_fetch(repo, client_ctx,
	                                    "https://127.0.0.1:1/x",
	                                    server_hash, fetch_main, 0, NULL),
	                 CS_EINVALID);
	{
		const char *const spec[] = {""};

		ck_assert_int_eq(cs_transport_fetch(repo, client_ctx,
		                                    "https://127.0.0.1:1/x",
		                                    server_hash, spec, 1, NULL),
		                 CS_EINVALID);
	}
	{
		const char *const spec[] = {"refs/heads/a:refs/heads/b c"};

		ck_assert_int_eq(cs_transport_push(repo, client_ctx,
		                                   "https://127.0.0.1:1/x",
		                                   server_hash, spec, 1, NULL),
		                 CS_EINVALID);
	}
	cs_repo_free(repo);
}
END_TEST

static Suite *
transport_suite(void)
{
	Suite *s = suite_create("transport");
	TCase *tc = tcase_create("transport");

	tcase_add_unchecked_fixture(tc, make_basedir, remove_basedir);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_git_fetch_ls_push);
	tcase_add_test(tc, test_object_cap);
	tcase_add_test(tc, test_wrong_server_key);
	tcase_add_test(tc, test_client_certificate);
	tcase_add_test(tc, test_deadline_trickle);
	tcase_add_test(tc, test_byte_cap);
	tcase_add_test(tc, test_connection_refused);
	tcase_add_test(tc, test_http_status);
	tcase_add_test(tc, test_redirect_refused);
	tcase_add_test(tc, test_hangup_no_sigpipe);
	tcase_add_test(tc, test_concurrent_transfers);
	tcase_add_test(tc, test_invalid_arguments);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(transport_suite());
	int failed;

	/* No system git configuration, for git and libgit2 (HOME is set
	 * to the test's directory by make_basedir). */
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
