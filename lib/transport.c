/*
 * cartosync — the client side of the network transport (see
 * cartosync/transport.h; DESIGN.md §7).
 *
 * Decisions, and what libgit2 1.5 does underneath:
 *
 * An OpenSSL stream.  Debian 12's libgit2 1.5 does TLS with mbedTLS: no
 * client certificates, no TLS 1.3, no timeouts.  We register our own TLS
 * stream (git_stream_register(GIT_STREAM_TLS)), so libgit2's smart HTTP
 * transport runs over a socket this file opens and an SSL* made from the
 * node's client context.  The socket is ours, not OpenSSL's: the SSL object
 * talks to two memory BIOs and this file moves the bytes with send(...,
 * MSG_NOSIGNAL) and recv() after poll().  So no write raises SIGPIPE
 * (without touching the process's signal disposition), every wait is
 * bounded, and every byte received is counted.
 *
 * A thread-local transfer.  The registration is process-wide and its
 * init(host, port) has no payload, so the parameters of one call (URL,
 * expected key, client context, deadline, caps, the first error seen) live
 * in a `transfer` on the caller's stack, reachable through a _Thread_local
 * pointer while the call runs.  libgit2 1.5 runs a whole fetch or push on
 * the calling thread (we ask for a single-threaded pack builder), so two
 * threads can talk to two peers at once.  A stream created while no
 * transfer runs on the thread (libgit2 given an https:// URL some other
 * way, e.g. cs_repo_fetch) is refused: there would be no key to check.
 *
 * The key before anything else.  connect() completes the handshake and
 * compares the SHA-256 of the server certificate's key with the expected
 * hash before one byte of HTTP is written; libgit2 reconnects whenever a
 * server closes a connection, and every connection is checked.
 *
 * The deadline.  Each call has one absolute deadline (monotonic clock).
 * Every read and write first checks it, and every wait (connect, read,
 * write) is a poll() only until what remains of it, so a peer trickling a
 * byte every few seconds is cut off at the deadline, not after a per-read
 * timeout that it keeps resetting.  The transfer-progress and sideband
 * callbacks check it too, which also bounds the indexer's local work
 * (delta resolution) after the last byte arrived.  Not bounded: name
 * resolution (getaddrinfo has no timeout; resolv.conf's apply).
 *
 * The caps.  The byte cap counts bytes received on the socket, TLS records
 * included, so it also bounds the ref advertisement and an endless HTTP
 * body.  The object cap is checked in the transfer-progress callback, which
 * libgit2's indexer calls as soon as it has parsed the pack header
 * (total_objects) — after it has allocated two vectors sized from that
 * header (about 12 bytes per claimed object; GIT_OPT_SET_PACK_MAX_OBJECTS
 * would refuse earlier but is process-wide, so it is left alone).
 *
 * Errors.  When the stream or a callback detects the failure (deadline,
 * cap, wrong key, connection refused, TLS), its precise message is kept in
 * the transfer and reported instead of libgit2's generic one.  libgit2
 * reports an HTTP error as "unexpected http status code: 403" and never
 * reads the body; the stream keeps a copy of the start of each response
 * (4 KiB) and, when the status is 400 or more, reads the rest of that
 * short body (at most 4 KiB, at most 2 s) so that the error carries the
 * server's own explanation.
 *
 * Redirects.  libgit2 1.5 follows 301/302/303/307/308 (a bounded number
 * of replays).  With follow_redirects unset it reads http.followRedirects,
 * whose default lets the first request (GET info/refs) move to another
 * host.  We pass GIT_REMOTE_REDIRECT_NONE; libgit2 then refuses another
 * host name and https -> http, but compares host names only: a redirect to
 * the same host on another port is followed (test_redirect_refused fails
 * without the check below).  So init() also refuses any
 * connection whose host or port is not the URL's (CS_EPERM): a peer URL is
 * bound to the key that must answer.  Redirects to another path on the
 * same host and port are followed (the key is still checked).  The same
 * check catches a URL rewritten by a url.<base>.insteadOf in the git
 * configuration, which libgit2 applies to anonymous remotes.
 *
 * Request bodies.  libgit2 sends "Expect: 100-continue" only when
 * GIT_OPT_ENABLE_HTTP_EXPECT_CONTINUE is set (process-wide, off by
 * default; we leave it off).  Fetch POSTs (git-upload-pack) carry a
 * Content-Length; push POSTs (git-receive-pack) are sent with
 * "Transfer-Encoding: chunked" and no length, so a server must accept
 * chunked request bodies (test_git_fetch_ls_push checks all three).
 * Responses may use a length, chunks, or close.
 *
 * Proxies are not used (GIT_PROXY_NONE; wrap() refuses), and only
 * https:// URLs are accepted.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>
#include <git2/sys/stream.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "cartosync/error.h"
#include "cartosync/tls.h"
#include "cartosync/transport.h"
#include "repo_internal.h"

#define MESSAGE_MAX        768
#define CAPTURE_MAX        4096
#define REMOTE_MAX         1024
#define ERROR_BODY_WAIT_MS 2000
#define IO_CHUNK           16384

/* One call: what the stream and the callbacks share. */
typedef struct {
	const char *url;
	char host[256];
	unsigned port;
	SSL_CTX *client;
	const char *peer_hash;

	uint64_t deadline;    /* absolute, monotonic milliseconds */
	uint64_t deadline_ms; /* as given, for the message */
	uint64_t max_bytes;
	uint64_t max_objects;
	cs_transfer_progress progress;
	cs_transfer_progress_cb progress_cb;
	void *progress_arg;

	/* The first failure the stream or a callback detected. */
	int error;
	char message[MESSAGE_MAX];

	/* The start of the last HTTP response received. */
	char capture[CAPTURE_MAX];
	size_t capture_len;

	/* Push: the first ref the server rejected, its "remote:" lines. */
	int pushing;
	char rejected_ref[256];
	char rejected_status[256];
	char remote[REMOTE_MAX];
	size_t remote_len;
} transfer;

static _Thread_local transfer *current;

typedef struct {
	git_stream parent;
	transfer *t;
	char host[256];
	char port[16];
	int fd;
	SSL *ssl;
	BIO *rbio; /* network -> SSL; owned by ssl */
	BIO *wbio; /* SSL -> network; owned by ssl */
	int eof;   /* the server closed its side */
	int handshake_done;
	int new_response; /* a request was written since the last read */
	int examined;     /* the current response's head was looked at */
	char *pending;    /* read ahead for an error body, not yet given */
	size_t pending_len;
	size_t pending_off;
	unsigned char *cert_der;
	git_cert_x509 cert;
} tls_stream;

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Record the transfer's failure (the first one wins: later ones are
 * consequences), hand libgit2 the same text and return -1 for it.
 */
static int transfer_fail(transfer *t, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int
transfer_fail(transfer *t, int code, const char *fmt, ...)
{
	va_list ap;

	if (t->error == 0) {
		t->error = code;
		va_start(ap, fmt);
		vsnprintf(t->message, sizeof(t->message), fmt, ap);
		va_end(ap);
	}
	git_error_set_str(GIT_ERROR_NET, t->message);
	return -1;
}

static int
fail_deadline(transfer *t)
{
	if (t->deadline_ms % 1000 == 0)
		return transfer_fail(
		        t, CS_ELIMIT, "no complete answer within %llu s",
		        (unsigned long long)(t->deadline_ms / 1000));
	return transfer_fail(t, CS_ELIMIT, "no complete answer within %.1f s",
	                     (double)t->deadline_ms / 1000.0);
}

static int
check_deadline(transfer *t)
{
	if (t->error)
		return transfer_fail(t, t->error, "%s", t->message);
	if (now_ms() >= t->deadline)
		return fail_deadline(t);
	return 0;
}

static void
report_progress(transfer *t)
{
	if (t->progress_cb)
		t->progress_cb(&t->progress, t->progress_arg);
}

/* --- the socket ------------------------------------------------------- */

/*
 * Wait for `events` on the socket until `until`.  0 when ready, 1 when
 * `until` passed first, -1 (recorded) on error.
 */
static int
wait_until(tls_stream *s, short events, uint64_t until)
{
	for (;;) {
		struct pollfd p = {s->fd, events, 0};
		uint64_t now = now_ms(), left;
		int n;

		if (now >= until)
			return 1;
		left = until - now;
		n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n > 0)
			return 0; /* also POLLERR/POLLHUP: the call reports */
		if (n < 0 && errno != EINTR)
			return transfer_fail(s->t, CS_ERROR, "poll: %s",
			                     strerror(errno));
	}
}

static int
wait_fd(tls_stream *s, short events)
{
	int rc = wait_until(s, events, s->t->deadline);

	return rc == 1 ? fail_deadline(s->t) : rc;
}

static int
lost(tls_stream *s, int err)
{
	return transfer_fail(s->t, CS_ERROR,
	                     "the connection to %s port %s was lost: %s",
	                     s->host, s->port, strerror(err));
}

/* Send what the SSL object wrote to its memory BIO. */
static int
flush_out(tls_stream *s)
{
	char buf[IO_CHUNK];
	int n;

	while (BIO_ctrl_pending(s->wbio) > 0 &&
	       (n = BIO_read(s->wbio, buf, sizeof(buf))) > 0) {
		size_t off = 0;

		while (off < (size_t)n) {
			ssize_t w = send(s->fd, buf + off, (size_t)n - off,
			                 MSG_NOSIGNAL);

			if (w > 0) {
				off += (size_t)w;
				s->t->progress.sent_bytes += (uint64_t)w;
			} else if (w < 0 && errno == EINTR) {
				continue;
			} else if (w < 0 &&
			           (errno == EAGAIN || errno == EWOULDBLOCK)) {
				if (wait_fd(s, POLLOUT) < 0)
					return -1;
			} else {
				return lost(s, w < 0 ? errno : EPIPE);
			}
		}
	}
	return 0;
}

/*
 * Receive once from the socket into the SSL object's memory BIO, waiting
 * until `until`.  0 when something (or the end) arrived, 1 on timeout, -1
 * (recorded) on error or when the byte cap is passed.
 */
static int
fill_in_until(tls_stream *s, uint64_t until)
{
	transfer *t = s->t;
	char buf[IO_CHUNK];

	for (;;) {
		ssize_t n;
		int rc;

		if ((rc = wait_until(s, POLLIN, until)) != 0)
			return rc;
		n = recv(s->fd, buf, sizeof(buf), 0);
		if (n > 0) {
			t->progress.received_bytes += (uint64_t)n;
			if (t->progress.received_bytes > t->max_bytes)
				return transfer_fail(
				        t, CS_ELIMIT,
				        "the server sent more than %llu bytes,"
				        " the limit of one transfer",
				        (unsigned long long)t->max_bytes);
			if (BIO_write(s->rbio, buf, (int)n) != (int)n)
				return transfer_fail(t, CS_ERROR,
				                     "out of memory");
			return 0;
		}
		if (n == 0) {
			s->eof = 1;
			BIO_set_mem_eof_return(s->rbio, 0);
			return 0;
		}
		if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
			return lost(s, errno);
	}
}

static int
fill_in(tls_stream *s)
{
	int rc = fill_in_until(s, s->t->deadline);

	return rc == 1 ? fail_deadline(s->t) : rc;
}

/* Why OpenSSL failed, in words. */
static void
tls_reason(char *out, size_t size, tls_stream *s)
{
	unsigned long e = ERR_peek_last_error();
	long verify = SSL_get_verify_result(s->ssl);

	if (verify != X509_V_OK && !s->handshake_done)
		snprintf(out, size, "certificate: %s",
		         X509_verify_cert_error_string(verify));
	else if (e != 0 && ERR_reason_error_string(e) != NULL)
		snprintf(out, size, "%s", ERR_reason_error_string(e));
	else if (s->eof)
		snprintf(out, size, "the server closed the connection");
	else
		snprintf(out, size, "error %lu", e);
	ERR_clear_error();
}

/*
 * After an SSL call on the memory BIOs returned `ret` (failure or retry):
 * send what it wrote, receive what it waits for.  0 to retry the call,
 * -1 (recorded) on failure.
 */
static int
ssl_continue(tls_stream *s, int ret, const char *what)
{
	int err = SSL_get_error(s->ssl, ret);
	char reason[256];

	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		if (flush_out(s) < 0)
			return -1;
		if (err == SSL_ERROR_WANT_WRITE)
			return 0;
		if (!s->eof)
			return fill_in(s);
	}
	tls_reason(reason, sizeof(reason), s);
	return transfer_fail(s->t, CS_ERROR,
	                     "TLS %s with %s port %s failed: %s", what, s->host,
	                     s->port, reason);
}

/* --- remembering responses -------------------------------------------- */

/* Where the body starts in `buf`, or NULL while the head is incomplete. */
static const char *
http_body(const char *buf, size_t len)
{
	for (size_t i = 0; i + 3 < len; i++)
		if (memcmp(buf + i, "\r\n\r\n", 4) == 0)
			return buf + i + 4;
	return NULL;
}

/*
 * The value of header `name` in the head `buf` (up to `body`), copied to
 * `out` (empty if absent).
 */
static void
http_header(char *out, size_t size, const char *buf, const char *body,
            const char *name)
{
	size_t nlen = strlen(name);
	const char *line = memchr(buf, '\n', (size_t)(body - buf));

	out[0] = '\0';
	while (line != NULL && line + 1 < body) {
		const char *start = line + 1, *end;
		size_t vlen;

		line = memchr(start, '\n', (size_t)(body - start));
		end = line ? line : body;
		if ((size_t)(end - start) > nlen &&
		    strncasecmp(start, name, nlen) == 0 && start[nlen] == ':') {
			start += nlen + 1;
			while (start < end && (*start == ' ' || *start == '\t'))
				start++;
			while (end > start &&
			       (end[-1] == '\r' || end[-1] == ' ' ||
			        end[-1] == '\t'))
				end--;
			vlen = (size_t)(end - start);
			if (vlen >= size)
				vlen = size - 1;
			memcpy(out, start, vlen);
			out[vlen] = '\0';
			return;
		}
	}
}

/* The status code of the response in `buf`, 0 if it is not one. */
static int
http_status(const char *buf, size_t len)
{
	int code = 0;

	if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
		return 0;
	for (int i = 9; i < 12; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return 0;
		code = code * 10 + (buf[i] - '0');
	}
	return code;
}

/* Whether the captured response's body is all there. */
static int
http_complete(const tls_stream *s)
{
	const transfer *t = s->t;
	const char *body = http_body(t->capture, t->capture_len);
	char value[64];
	size_t have;

	if (body == NULL)
		return 0;
	have = t->capture_len - (size_t)(body - t->capture);
	http_header(value, sizeof(value), t->capture, body, "Content-Length");
	if (value[0])
		return have >= strtoull(value, NULL, 10);
	http_header(value, sizeof(value), t->capture, body,
	            "Transfer-Encoding");
	if (strcasecmp(value, "chunked") == 0) {
		if (have >= 5 && memcmp(body, "0\r\n\r\n", 5) == 0)
			return 1;
		for (size_t i = 0; i + 7 <= have; i++)
			if (memcmp(body + i, "\r\n0\r\n\r\n", 7) == 0)
				return 1;
		return 0;
	}
	return s->eof;
}

static void
capture(transfer *t, const void *data, size_t len)
{
	size_t room = sizeof(t->capture) - t->capture_len;

	if (len > room)
		len = room;
	memcpy(t->capture + t->capture_len, data, len);
	t->capture_len += len;
}

/*
 * The response just received is an error: read the rest of its (short)
 * body now, since libgit2 will not, keeping the bytes for libgit2's next
 * reads.  Best effort: gives up quietly after ERROR_BODY_WAIT_MS.
 */
static void
read_error_body(tls_stream *s)
{
	transfer *t = s->t;
	uint64_t until = now_ms() + ERROR_BODY_WAIT_MS;
	int had_error = t->error;
	char buf[IO_CHUNK];

	if (until > t->deadline)
		until = t->deadline;
	while (!http_complete(s) && t->capture_len < sizeof(t->capture)) {
		size_t n = 0;
		int ret, err;

		ERR_clear_error();
		ret = SSL_read_ex(s->ssl, buf, sizeof(buf), &n);
		if (ret == 1) {
			char *grown = realloc(s->pending, s->pending_len + n);

			if (grown == NULL)
				return;
			memcpy(grown + s->pending_len, buf, n);
			s->pending = grown;
			s->pending_len += n;
			capture(t, buf, n);
			continue;
		}
		err = SSL_get_error(s->ssl, ret);
		if (err != SSL_ERROR_WANT_READ || s->eof || flush_out(s) < 0 ||
		    fill_in_until(s, until) != 0)
			break;
	}
	ERR_clear_error();
	/* A lost connection here is not the story: the status is. */
	if (!had_error && t->error && t->error != CS_ELIMIT) {
		t->error = 0;
		t->message[0] = '\0';
	}
}

/* Keep the start of each response; look at its head once it is there. */
static void
note_response(tls_stream *s, const void *data, size_t len)
{
	transfer *t = s->t;
	const char *body;

	if (s->new_response) {
		t->capture_len = 0;
		s->new_response = 0;
		s->examined = 0;
	}
	capture(t, data, len);
	if (s->examined ||
	    (body = http_body(t->capture, t->capture_len)) == NULL)
		return;
	s->examined = 1;
	if (http_status(t->capture, t->capture_len) >= 400 && !http_complete(s))
		read_error_body(s);
}

/* --- the stream ------------------------------------------------------- */

static int
is_ip_literal(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 ||
	       inet_pton(AF_INET6, host, buf) == 1;
}

static int
tcp_connect(tls_stream *s)
{
	struct addrinfo hints, *res = NULL, *ai;
	int rc, last = ECONNREFUSED;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rc = getaddrinfo(s->host, s->port, &hints, &res)) != 0)
		return transfer_fail(
		        s->t, CS_ERROR, "cannot resolve %s: %s", s->host,
		        rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		int err = 0;
		socklen_t errlen = sizeof(err);

		s->fd = socket(ai->ai_family,
		               ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		               ai->ai_protocol);
		if (s->fd < 0) {
			last = errno;
			continue;
		}
		if (connect(s->fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			if (wait_fd(s, POLLOUT) < 0) {
				freeaddrinfo(res);
				return -1;
			}
			if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err,
			               &errlen) < 0)
				err = errno;
			if (err == 0)
				break;
		} else {
			err = errno;
		}
		last = err;
		close(s->fd);
		s->fd = -1;
	}
	freeaddrinfo(res);
	if (s->fd < 0)
		return transfer_fail(s->t, CS_ERROR,
		                     "cannot connect to %s port %s: %s",
		                     s->host, s->port, strerror(last));
	{
		int one = 1;

		setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	return 0;
}

static int
stream_connect(git_stream *gs)
{
	tls_stream *s = (tls_stream *)gs;
	transfer *t = s->t;
	char *hash = NULL;
	int ret, error;

	if (check_deadline(t) < 0 || tcp_connect(s) < 0)
		return -1;

	ERR_clear_error();
	if ((s->ssl = SSL_new(t->client)) == NULL ||
	    (s->rbio = BIO_new(BIO_s_mem())) == NULL ||
	    (s->wbio = BIO_new(BIO_s_mem())) == NULL) {
		BIO_free(s->rbio);
		s->rbio = NULL;
		ERR_clear_error();
		return transfer_fail(t, CS_ERROR,
		                     "cannot create a TLS session");
	}
	BIO_set_mem_eof_return(s->rbio, -1);
	BIO_set_mem_eof_return(s->wbio, -1);
	SSL_set_bio(s->ssl, s->rbio, s->wbio); /* transferred */
	SSL_set_connect_state(s->ssl);
	/* HTTP says where a body ends; a missing close_notify is an end. */
	SSL_set_options(s->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (!is_ip_literal(s->host))
		SSL_set_tlsext_host_name(s->ssl, s->host);

	for (;;) {
		ERR_clear_error();
		if ((ret = SSL_do_handshake(s->ssl)) == 1)
			break;
		if (ssl_continue(s, ret, "handshake") < 0)
			return -1;
	}
	s->handshake_done = 1;
	if (flush_out(s) < 0) /* our Finished and certificate */
		return -1;

	/* DESIGN.md §7: a peer is its key, never its name. */
	if ((error = cs_tls_peer_hash(&hash, s->ssl)) < 0)
		return transfer_fail(
		        t, CS_EVERIFY, "the server presented %s, expected %s",
		        error == CS_ENOTFOUND ? "no certificate"
		                              : "a certificate without a usable"
		                                " key",
		        t->peer_hash);
	if (strcmp(hash, t->peer_hash) != 0) {
		transfer_fail(t, CS_EVERIFY,
		              "the server's key is %s, expected %s (another"
		              " server answers at this address, or the peer"
		              " has a new TLS key)",
		              hash, t->peer_hash);
		free(hash);
		return -1;
	}
	free(hash);
	return 0;
}

static int
stream_certificate(git_cert **out, git_stream *gs)
{
	tls_stream *s = (tls_stream *)gs;
	X509 *cert = s->ssl ? SSL_get0_peer_certificate(s->ssl) : NULL;
	unsigned char *der = NULL;
	int len;

	*out = NULL;
	if (cert == NULL || (len = i2d_X509(cert, &der)) <= 0) {
		ERR_clear_error();
		git_error_set_str(GIT_ERROR_SSL,
		                  "the server presented no certificate");
		return -1;
	}
	OPENSSL_free(s->cert_der);
	s->cert_der = der;
	s->cert.parent.cert_type = GIT_CERT_X509;
	s->cert.data = der;
	s->cert.len = (size_t)len;
	*out = &s->cert.parent;
	return 0;
}

static int
stream_set_proxy(git_stream *gs, const git_proxy_options *proxy)
{
	(void)gs;
	(void)proxy;
	git_error_set_str(GIT_ERROR_NET,
	                  "peer connections do not go through a proxy");
	return -1;
}

static ssize_t
stream_read(git_stream *gs, void *data, size_t len)
{
	tls_stream *s = (tls_stream *)gs;

	if (s->pending_off < s->pending_len) {
		size_t n = s->pending_len - s->pending_off;

		if (n > len)
			n = len;
		memcpy(data, s->pending + s->pending_off, n);
		s->pending_off += n;
		return (ssize_t)n;
	}
	if (check_deadline(s->t) < 0)
		return -1;
	if (len > INT_MAX)
		len = INT_MAX;
	for (;;) {
		size_t n = 0;
		int ret, err;

		ERR_clear_error();
		if ((ret = SSL_read_ex(s->ssl, data, len, &n)) == 1) {
			if (flush_out(s) < 0)
				return -1;
			note_response(s, data, n);
			return (ssize_t)n;
		}
		err = SSL_get_error(s->ssl, ret);
		if (err == SSL_ERROR_ZERO_RETURN) {
			s->eof = 1;
			return 0;
		}
		if (ssl_continue(s, ret, "read") < 0)
			return -1;
	}
}

static ssize_t
stream_write(git_stream *gs, const char *data, size_t len, int flags)
{
	tls_stream *s = (tls_stream *)gs;
	size_t done = 0;

	(void)flags;
	if (check_deadline(s->t) < 0)
		return -1;
	s->new_response = 1;
	while (done < len) {
		size_t n = 0;
		int ret;

		ERR_clear_error();
		if ((ret = SSL_write_ex(s->ssl, data + done, len - done, &n)) ==
		    1)
			done += n;
		else if (ssl_continue(s, ret, "write") < 0)
			return -1;
	}
	if (flush_out(s) < 0)
		return -1;
	return (ssize_t)len;
}

static int
stream_close(git_stream *gs)
{
	tls_stream *s = (tls_stream *)gs;

	if (s->ssl != NULL && s->handshake_done && !s->eof && s->fd >= 0) {
		char buf[256];
		int n;

		/* close_notify, best effort: never wait for it. */
		ERR_clear_error();
		SSL_shutdown(s->ssl);
		while ((n = BIO_read(s->wbio, buf, sizeof(buf))) > 0)
			if (send(s->fd, buf, (size_t)n,
			         MSG_NOSIGNAL | MSG_DONTWAIT) != n)
				break;
		ERR_clear_error();
	}
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	return 0;
}

static void
stream_free(git_stream *gs)
{
	tls_stream *s = (tls_stream *)gs;

	if (s == NULL)
		return;
	if (s->fd >= 0)
		close(s->fd);
	SSL_free(s->ssl); /* and its BIOs */
	OPENSSL_free(s->cert_der);
	free(s->pending);
	free(s);
}

/* What the captured response redirected to, or "". */
static const char *
captured_location(transfer *t, char *out, size_t size)
{
	const char *body = http_body(t->capture, t->capture_len);
	int status = http_status(t->capture, t->capture_len);

	out[0] = '\0';
	if (body != NULL && status >= 300 && status < 400)
		http_header(out, size, t->capture, body, "Location");
	return out;
}

static int
stream_init(git_stream **out, const char *host, const char *port)
{
	transfer *t = current;
	tls_stream *s;
	char *end = NULL;
	unsigned long portnum;

	*out = NULL;
	if (t == NULL) {
		git_error_set_str(GIT_ERROR_NET,
		                  "https connections are made by"
		                  " cs_transport_* only (no peer key to"
		                  " check)");
		return -1;
	}
	errno = 0;
	portnum = strtoul(port, &end, 10);
	if (strcasecmp(host, t->host) != 0 || errno != 0 || end == port ||
	    *end != '\0' || portnum != t->port) {
		char location[512];

		if (captured_location(t, location, sizeof(location))[0])
			return transfer_fail(t, CS_EPERM,
			                     "the server redirects to %s; a"
			                     " peer URL is bound to its host"
			                     " and port",
			                     location);
		return transfer_fail(t, CS_EPERM,
		                     "refusing a connection to %s port %s; a"
		                     " peer URL is bound to its host and port",
		                     host, port);
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return transfer_fail(t, CS_ERROR, "out of memory");
	s->parent.version = GIT_STREAM_VERSION;
	s->parent.encrypted = 1;
	s->parent.proxy_support = 0;
	s->parent.connect = stream_connect;
	s->parent.certificate = stream_certificate;
	s->parent.set_proxy = stream_set_proxy;
	s->parent.read = stream_read;
	s->parent.write = stream_write;
	s->parent.close = stream_close;
	s->parent.free = stream_free;
	s->t = t;
	s->fd = -1;
	snprintf(s->host, sizeof(s->host), "%s", host);
	snprintf(s->port, sizeof(s->port), "%lu", portnum);
	*out = &s->parent;
	return 0;
}

static int
stream_wrap(git_stream **out, git_stream *in, const char *host)
{
	(void)in;
	(void)host;
	*out = NULL;
	git_error_set_str(GIT_ERROR_NET,
	                  "peer connections do not go through a proxy");
	return -1;
}

static git_stream_registration registration = {
        GIT_STREAM_VERSION,
        stream_init,
        stream_wrap,
};
static pthread_once_t register_once = PTHREAD_ONCE_INIT;
static int register_rc;

static void
register_stream(void)
{
	cs_repo_git_setup();
	register_rc = git_stream_register(GIT_STREAM_TLS, &registration);
}

/* --- libgit2 callbacks ------------------------------------------------ */

static int
on_transfer_progress(const git_indexer_progress *stats, void *payload)
{
	transfer *t = payload;

	t->progress.objects = stats->received_objects;
	t->progress.indexed_objects = stats->indexed_objects;
	t->progress.total_objects = stats->total_objects;
	if (stats->total_objects > t->max_objects)
		return transfer_fail(t, CS_ELIMIT,
		                     "the pack has %u objects, over the limit"
		                     " of %llu",
		                     stats->total_objects,
		                     (unsigned long long)t->max_objects);
	if (check_deadline(t) < 0)
		return -1;
	report_progress(t);
	return 0;
}

/* Keep the server's messages ("remote: ..."), the last lines first. */
static int
on_sideband(const char *str, int len, void *payload)
{
	transfer *t = payload;

	for (int i = 0; i < len; i++) {
		char c = str[i];

		if (c == '\r') /* a progress line being redrawn */
			c = '\n';
		if (c == '\n' && (t->remote_len == 0 ||
		                  t->remote[t->remote_len - 1] == '\n'))
			continue;
		if ((unsigned char)c < 0x20 && c != '\n')
			c = ' ';
		if (t->remote_len + 1 >= sizeof(t->remote)) {
			size_t drop = sizeof(t->remote) / 2;

			memmove(t->remote, t->remote + drop,
			        t->remote_len - drop);
			t->remote_len -= drop;
		}
		t->remote[t->remote_len++] = c;
		t->remote[t->remote_len] = '\0';
	}
	return check_deadline(t);
}

static int
on_push_progress(unsigned int done, unsigned int total, size_t bytes,
                 void *payload)
{
	transfer *t = payload;

	(void)bytes;
	t->progress.objects = done;
	t->progress.total_objects = total;
	if (check_deadline(t) < 0)
		return -1;
	report_progress(t);
	return 0;
}

static int
on_push_update(const char *refname, const char *status, void *payload)
{
	transfer *t = payload;

	if (status != NULL && t->rejected_ref[0] == '\0') {
		snprintf(t->rejected_ref, sizeof(t->rejected_ref), "%s",
		         refname);
		snprintf(t->rejected_status, sizeof(t->rejected_status), "%s",
		         status);
	}
	return 0;
}

static void
set_callbacks(git_remote_callbacks *cb, transfer *t)
{
	cb->sideband_progress = on_sideband;
	cb->transfer_progress = on_transfer_progress;
	cb->push_transfer_progress = on_push_progress;
	cb->push_update_reference = on_push_update;
	cb->payload = t;
}

/* --- one call --------------------------------------------------------- */

static int
parse_url(transfer *t, const char *url)
{
	const char *p, *end, *host, *hend, *rest;
	size_t hlen;

	if (strncasecmp(url, "https://", 8) != 0)
		return cs_error_set(CS_EINVALID, "'%s' is not an https:// URL",
		                    url);
	p = url + 8;
	end = p + strcspn(p, "/?#");
	if (memchr(p, '@', (size_t)(end - p)) != NULL)
		return cs_error_set(CS_EINVALID,
		                    "'%s': a peer URL carries no user name",
		                    url);
	if (*p == '[') {
		host = p + 1;
		if ((hend = memchr(host, ']', (size_t)(end - host))) == NULL)
			return cs_error_set(CS_EINVALID,
			                    "'%s': unterminated IPv6 address",
			                    url);
		rest = hend + 1;
	} else {
		host = p;
		hend = memchr(p, ':', (size_t)(end - p));
		if (hend == NULL)
			hend = end;
		rest = hend;
	}
	hlen = (size_t)(hend - host);
	if (hlen == 0 || hlen >= sizeof(t->host))
		return cs_error_set(CS_EINVALID, "'%s': no valid host", url);
	memcpy(t->host, host, hlen);
	t->host[hlen] = '\0';
	t->port = 443;
	if (rest < end) {
		unsigned long port = 0;

		if (*rest != ':' || rest + 1 == end || end - rest > 6)
			return cs_error_set(CS_EINVALID, "'%s': invalid port",
			                    url);
		for (const char *q = rest + 1; q < end; q++) {
			if (*q < '0' || *q > '9')
				return cs_error_set(CS_EINVALID,
				                    "'%s': invalid port", url);
			port = port * 10 + (unsigned long)(*q - '0');
		}
		if (port == 0 || port > 65535)
			return cs_error_set(CS_EINVALID, "'%s': invalid port",
			                    url);
		t->port = (unsigned)port;
	}
	return 0;
}

static int
hash_valid(const char *hash)
{
	if (hash == NULL || strncmp(hash, "sha256:", 7) != 0 ||
	    strlen(hash) != 7 + 64)
		return 0;
	for (const char *p = hash + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

static int
transfer_begin(transfer *t, SSL_CTX *client, const char *url,
               const char *peer_hash, const cs_transfer_limits *limits)
{
	int error;

	memset(t, 0, sizeof(*t));
	if (url == NULL)
		return cs_error_set(CS_EINVALID, "no peer URL");
	if ((error = parse_url(t, url)) < 0)
		return error;
	if (!hash_valid(peer_hash))
		return cs_error_set(CS_EINVALID,
		                    "%s: the expected key \"%s\" is not"
		                    " sha256:<64 hex digits>",
		                    url, peer_hash ? peer_hash : "");
	if (client == NULL)
		return cs_error_set(CS_EINVALID, "%s: no TLS client context",
		                    url);
	if (current != NULL)
		return cs_error_set(CS_EINVALID,
		                    "%s: a transfer is already running on this"
		                    " thread",
		                    url);
	pthread_once(&register_once, register_stream);
	if (register_rc < 0) {
		const git_error *e = git_error_last();

		return cs_error_set(CS_ERROR,
		                    "cannot register the TLS stream: %s",
		                    e && e->message ? e->message : "git error");
	}
	t->url = url;
	t->client = client;
	t->peer_hash = peer_hash;
	t->deadline_ms = limits && limits->deadline_ms
	                         ? limits->deadline_ms
	                         : CS_TRANSFER_DEADLINE_MS;
	t->max_bytes = limits && limits->max_bytes ? limits->max_bytes
	                                           : CS_TRANSFER_MAX_BYTES;
	t->max_objects = limits && limits->max_objects
	                         ? limits->max_objects
	                         : CS_TRANSFER_MAX_OBJECTS;
	if (limits) {
		t->progress_cb = limits->progress;
		t->progress_arg = limits->progress_arg;
	}
	t->deadline = now_ms();
	t->deadline += t->deadline_ms < UINT64_MAX - t->deadline
	                       ? t->deadline_ms
	                       : UINT64_MAX - t->deadline;
	git_error_clear();
	current = t;
	return 0;
}

static void
transfer_end(transfer *t)
{
	(void)t;
	current = NULL;
}

/* The captured response's body, on one line, for a message. */
static void
captured_body(transfer *t, char *out, size_t size)
{
	char copy[CAPTURE_MAX + 1], text[CAPTURE_MAX], te[32], cl[32];
	const char *body, *end;
	size_t n = 0, o = 0;

	out[0] = '\0';
	memcpy(copy, t->capture, t->capture_len);
	copy[t->capture_len] = '\0';
	end = copy + t->capture_len;
	if ((body = http_body(copy, t->capture_len)) == NULL)
		return;
	http_header(te, sizeof(te), copy, body, "Transfer-Encoding");
	http_header(cl, sizeof(cl), copy, body, "Content-Length");
	if (strcasecmp(te, "chunked") == 0) {
		const char *p = body;

		while (p < end) {
			unsigned long len = strtoul(p, NULL, 16);
			const char *data = memchr(p, '\n', (size_t)(end - p));

			if (len == 0 || data == NULL)
				break;
			data++;
			if (len > (size_t)(end - data))
				len = (size_t)(end - data);
			memcpy(text + n, data, len);
			n += len;
			if ((size_t)(end - data) < len + 2)
				break;
			p = data + len + 2;
		}
	} else {
		n = (size_t)(end - body);
		if (cl[0] && strtoull(cl, NULL, 10) < n)
			n = (size_t)strtoull(cl, NULL, 10);
		memcpy(text, body, n);
	}
	/* One line of printable text, spaces collapsed. */
	for (size_t i = 0; i < n && o + 1 < size; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c < 0x20 || c == 0x7f)
			c = ' ';
		if (c == ' ' && (o == 0 || out[o - 1] == ' '))
			continue;
		out[o++] = (char)c;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

/* The last "remote:" lines on one line, or "". */
static const char *
remote_text(transfer *t, char *out, size_t size)
{
	size_t o = 0;
	const char *p = t->remote;

	/* Keep the tail that fits. */
	if (t->remote_len + 1 > size)
		p += t->remote_len + 1 - size;
	for (; *p && o + 1 < size; p++) {
		char c = *p == '\n' ? ';' : *p;

		if (c == ';' && p[1] == '\0')
			break;
		if (c == ';') {
			if (o + 2 >= size)
				break;
			out[o++] = ';';
			c = ' ';
		}
		out[o++] = c;
	}
	out[o] = '\0';
	return out;
}

/* Translate a libgit2 failure of this transfer into ours. */
static int
transfer_failed(transfer *t)
{
	const git_error *e = git_error_last();
	int status = http_status(t->capture, t->capture_len);
	char text[512], reason[64];

	if (t->error)
		return cs_error_set(t->error, "%s: %s", t->url, t->message);
	if (status >= 300 && status < 400) {
		char location[512];

		captured_location(t, location, sizeof(location));
		if (location[0])
			return cs_error_set(CS_EPERM,
			                    "%s: the server redirects to %s; a"
			                    " peer URL is bound to its host and"
			                    " port (%s)",
			                    t->url, location,
			                    e && e->message ? e->message : "");
	}
	if (status >= 400) {
		const char *eol = memchr(t->capture, '\r', t->capture_len);
		size_t rlen = eol ? (size_t)(eol - t->capture) : 12;
		int code = status == 401 || status == 403   ? CS_EPERM
		           : status == 404                  ? CS_ENOTFOUND
		           : status == 413 || status == 429 ? CS_ELIMIT
		                                            : CS_ERROR;

		rlen = rlen > 13 ? rlen - 13 : 0;
		if (rlen >= sizeof(reason))
			rlen = sizeof(reason) - 1;
		memcpy(reason, t->capture + 13, rlen);
		reason[rlen] = '\0';
		captured_body(t, text, sizeof(text));
		return cs_error_set(code, "%s: the server answered %d%s%s%s%s",
		                    t->url, status, reason[0] ? " " : "",
		                    reason, text[0] ? ": " : "", text);
	}
	text[0] = '\0';
	if (t->pushing)
		remote_text(t, text, sizeof(text));
	return cs_error_set(CS_ERROR, "%s: %s%s%s%s", t->url,
	                    e && e->message ? e->message : "git error",
	                    text[0] ? " (remote: " : "", text,
	                    text[0] ? ")" : "");
}

/* Refspecs of fetch: valid, and each plain source advertised. */
static int
check_fetch_refspecs(transfer *t, git_remote *remote,
                     const char *const *refspecs, size_t n)
{
	const git_remote_head **heads = NULL;
	size_t nheads = 0;
	int rc;

	if ((rc = git_remote_ls(&heads, &nheads, remote)) < 0)
		return transfer_failed(t);
	for (size_t i = 0; i < n; i++) {
		git_refspec *spec = NULL;
		const char *src;
		int found = 0;

		if (git_refspec_parse(&spec, refspecs[i], 1) < 0)
			return cs_error_set(CS_EINVALID,
			                    "%s: invalid refspec '%s'", t->url,
			                    refspecs[i]);
		src = git_refspec_src(spec);
		if (strchr(src, '*') != NULL || strncmp(src, "refs/", 5) != 0) {
			git_refspec_free(spec);
			continue;
		}
		for (size_t j = 0; j < nheads && !found; j++)
			found = strcmp(heads[j]->name, src) == 0;
		if (!found) {
			cs_error_set(CS_ENOTFOUND, "%s: the server has no %s",
			             t->url, src);
			git_refspec_free(spec);
			return CS_ENOTFOUND;
		}
		git_refspec_free(spec);
	}
	return 0;
}

static int
refspecs_valid(const char *url, const char *const *refspecs, size_t n,
               int is_fetch)
{
	if (n == 0 || refspecs == NULL)
		return cs_error_set(CS_EINVALID, "%s: no refspec", url);
	for (size_t i = 0; i < n; i++) {
		git_refspec *spec = NULL;

		if (refspecs[i] == NULL || refspecs[i][0] == '\0' ||
		    git_refspec_parse(&spec, refspecs[i], is_fetch) < 0)
			return cs_error_set(CS_EINVALID,
			                    "%s: invalid refspec '%s'", url,
			                    refspecs[i] ? refspecs[i] : "");
		git_refspec_free(spec);
	}
	return 0;
}

int
cs_transport_fetch(cs_repo *repo, SSL_CTX *client, const char *url,
                   const char *peer_hash, const char *const *refspecs,
                   size_t nrefspecs, const cs_transfer_limits *limits)
{
	git_remote_connect_options copts = GIT_REMOTE_CONNECT_OPTIONS_INIT;
	git_fetch_options fopts = GIT_FETCH_OPTIONS_INIT;
	git_strarray specs = {(char **)refspecs, nrefspecs};
	git_remote *remote = NULL;
	transfer t;
	int error;

	if (repo == NULL)
		return cs_error_set(CS_EINVALID, "no repository to fetch into");
	if ((error = transfer_begin(&t, client, url, peer_hash, limits)) < 0)
		return error;
	if ((error = refspecs_valid(url, refspecs, nrefspecs, 1)) < 0)
		goto done;
	if (git_remote_create_anonymous(&remote, cs_repo_git(repo), url) < 0) {
		error = transfer_failed(&t);
		goto done;
	}
	set_callbacks(&copts.callbacks, &t);
	copts.follow_redirects = GIT_REMOTE_REDIRECT_NONE;
	if (git_remote_connect_ext(remote, GIT_DIRECTION_FETCH, &copts) < 0) {
		error = transfer_failed(&t);
		goto done;
	}
	if ((error = check_fetch_refspecs(&t, remote, refspecs, nrefspecs)) < 0)
		goto done;

	set_callbacks(&fopts.callbacks, &t);
	fopts.prune = GIT_FETCH_NO_PRUNE;
	fopts.update_fetchhead = 0;
	fopts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	fopts.follow_redirects = GIT_REMOTE_REDIRECT_NONE;
	if (git_remote_fetch(remote, &specs, &fopts, "cartosync: fetch") < 0) {
		error = transfer_failed(&t);
		goto done;
	}
	report_progress(&t);
	error = 0;
done:
	git_remote_free(remote); /* closes the connection */
	transfer_end(&t);
	return error;
}

void
cs_transport_refs_free(cs_transport_ref *refs, size_t count)
{
	if (refs == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free(refs[i].name);
	free(refs);
}

int
cs_transport_ls(cs_transport_ref **out, size_t *count, SSL_CTX *client,
                const char *url, const char *peer_hash,
                const cs_transfer_limits *limits)
{
	git_remote_connect_options copts = GIT_REMOTE_CONNECT_OPTIONS_INIT;
	const git_remote_head **heads = NULL;
	cs_transport_ref *refs = NULL;
	git_remote *remote = NULL;
	size_t nheads = 0, n = 0;
	transfer t;
	int error;

	*out = NULL;
	*count = 0;
	if ((error = transfer_begin(&t, client, url, peer_hash, limits)) < 0)
		return error;
	set_callbacks(&copts.callbacks, &t);
	copts.follow_redirects = GIT_REMOTE_REDIRECT_NONE;
	if (git_remote_create_detached(&remote, url) < 0 ||
	    git_remote_connect_ext(remote, GIT_DIRECTION_FETCH, &copts) < 0 ||
	    git_remote_ls(&heads, &nheads, remote) < 0) {
		error = transfer_failed(&t);
		goto done;
	}
	if (nheads > 0 && (refs = calloc(nheads, sizeof(*refs))) == NULL) {
		error = cs_error_set(CS_ERROR, "out of memory");
		goto done;
	}
	for (n = 0; n < nheads; n++) {
		if ((refs[n].name = strdup(heads[n]->name)) == NULL) {
			error = cs_error_set(CS_ERROR, "out of memory");
			goto done;
		}
		memcpy(refs[n].id.id, heads[n]->oid.id, CS_OID_RAWSZ);
	}
	*out = refs;
	*count = n;
	refs = NULL; /* transferred */
	error = 0;
done:
	cs_transport_refs_free(refs, n);
	git_remote_free(remote);
	transfer_end(&t);
	return error;
}

int
cs_transport_push(cs_repo *repo, SSL_CTX *client, const char *url,
                  const char *peer_hash, const char *const *refspecs,
                  size_t nrefspecs, const cs_transfer_limits *limits)
{
	git_push_options popts = GIT_PUSH_OPTIONS_INIT;
	git_strarray specs = {(char **)refspecs, nrefspecs};
	git_remote *remote = NULL;
	transfer t;
	char text[512];
	int error;

	if (repo == NULL)
		return cs_error_set(CS_EINVALID, "no repository to push from");
	if ((error = transfer_begin(&t, client, url, peer_hash, limits)) < 0)
		return error;
	t.pushing = 1;
	if ((error = refspecs_valid(url, refspecs, nrefspecs, 0)) < 0)
		goto done;
	if (git_remote_create_anonymous(&remote, cs_repo_git(repo), url) < 0) {
		error = transfer_failed(&t);
		goto done;
	}
	set_callbacks(&popts.callbacks, &t);
	popts.pb_parallelism = 1; /* the transfer is thread-local */
	popts.follow_redirects = GIT_REMOTE_REDIRECT_NONE;
	if (git_remote_push(remote, &specs, &popts) < 0) {
		error = transfer_failed(&t);
		goto done;
	}
	if (t.rejected_ref[0]) {
		remote_text(&t, text, sizeof(text));
		error = cs_error_set(
		        CS_EPERM, "%s: the server refused %s: %s%s%s%s", url,
		        t.rejected_ref, t.rejected_status,
		        text[0] ? " (remote: " : "", text, text[0] ? ")" : "");
		goto done;
	}
	report_progress(&t);
	error = 0;
done:
	git_remote_free(remote);
	transfer_end(&t);
	return error;
}
