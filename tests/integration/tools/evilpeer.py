#!/usr/bin/python3
"""A hostile git smart-HTTP server over TLS: its pack never ends.

  evilpeer.py DIR CERT KEY

Serves HTTPS on 127.0.0.1 (a free port, written to DIR/port) with the TLS
identity CERT and KEY (PEM), so a node that pins KEY's hash talks to it.
GET /info/refs?service=git-upload-pack advertises refs/heads/main at a
commit id nobody has, so the client asks for it; POST /git-upload-pack
answers NAK and then a pack whose header claims 1,000,000 blobs, made of
valid blob entries (64 KiB of random bytes each, stored deflate blocks),
sent as DIR/mode says (read at each request; missing: endless 4000000):

  endless RATE     as fast as RATE bytes a second allows, forever
  trickle SECONDS  one byte of it every SECONDS seconds, forever

The body is chunked: no length tells the client when it ends.  DIR/log
gets one line per event:

  conn N open
  conn N GET /info/refs?service=git-upload-pack
  conn N POST /git-upload-pack: MODE
  conn N sent BYTES            every MiB of pack (endless)
  conn N closed after SECONDS s, BYTES bytes of pack sent
"""
import os
import ssl
import sys
import threading
import time
import zlib

import loopback

OID = "5ca1ab1e" * 5
BLOB = 65536


def pkt(s):
    data = s.encode()
    return b"%04x" % (len(data) + 4) + data


def pack_stream():
    """A pack of (claimed) 1,000,000 blobs, one valid entry after another."""
    yield b"PACK" + (2).to_bytes(4, "big") + (1000000).to_bytes(4, "big")
    while True:
        data = os.urandom(BLOB)
        size = len(data)
        head = bytearray([(3 << 4) | (size & 0x0F) | 0x80])
        size >>= 4
        while size >= 0x80:
            head.append((size & 0x7F) | 0x80)
            size >>= 7
        head.append(size)
        yield bytes(head) + zlib.compress(data, 0)


class Server:
    def __init__(self, d, cert, key):
        self.dir = d
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.lock = threading.Lock()
        self.log_file = open(os.path.join(d, "log"), "a", buffering=1)

    def log(self, line):
        with self.lock:
            self.log_file.write(line + "\n")

    def mode(self):
        try:
            with open(os.path.join(self.dir, "mode")) as f:
                return f.read().split() or ["endless", "4000000"]
        except OSError:
            return ["endless", "4000000"]

    def serve(self):
        loopback.serve(self.dir, 16, self.handle)

    def handle(self, n, sock):
        start = time.monotonic()
        sent = [0]
        self.log("conn %d open" % n)
        try:
            sock.settimeout(30)
            tls = self.ctx.wrap_socket(sock, server_side=True)
            reader = tls.makefile("rb")
            while self.request(n, tls, reader, sent):
                pass
        except (OSError, ValueError, ssl.SSLError):
            pass
        finally:
            self.log("conn %d closed after %.1f s, %d bytes of pack sent" %
                     (n, time.monotonic() - start, sent[0]))
            try:
                sock.close()
            except OSError:
                pass

    def request(self, n, tls, reader, sent):
        line = reader.readline(8192)
        if not line:
            return False
        method, path = line.decode("latin-1").split()[:2]
        headers = {}
        while True:
            h = reader.readline(8192)
            if h in (b"\r\n", b"\n", b""):
                break
            k, _, v = h.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        if headers.get("expect", "").lower() == "100-continue":
            tls.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "content-length" in headers:
            reader.read(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int(reader.readline(100).split(b";")[0], 16)
                reader.read(size + 2)
                if size == 0:
                    break
        self.log("conn %d %s %s" % (n, method, path))
        if method == "GET" and path.startswith("/info/refs"):
            body = (pkt("# service=git-upload-pack\n") + b"0000" +
                    pkt("%s refs/heads/main\0ofs-delta agent=git/evil\n" %
                        OID) + b"0000")
            tls.sendall(b"HTTP/1.1 200 OK\r\n"
                        b"Content-Type: application/x-git-upload-pack-"
                        b"advertisement\r\nCache-Control: no-cache\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(body) + body)
            return True
        if method == "POST" and path == "/git-upload-pack":
            mode = self.mode()
            self.log("conn %d POST /git-upload-pack: %s" % (n, " ".join(mode)))
            tls.sendall(b"HTTP/1.1 200 OK\r\n"
                        b"Content-Type: application/x-git-upload-pack-"
                        b"result\r\nCache-Control: no-cache\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n")
            self.chunk(tls, b"0008NAK\n")
            if mode[0] == "trickle":
                self.trickle(tls, float(mode[1]), sent)
            else:
                self.endless(n, tls, int(mode[1]), sent)
            return False
        body = b"no such resource\n"
        tls.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n"
                    % len(body) + body)
        return True

    @staticmethod
    def chunk(tls, data):
        tls.sendall(b"%x\r\n" % len(data) + data + b"\r\n")

    def endless(self, n, tls, rate, sent):
        start = time.monotonic()
        reported = 0
        for piece in pack_stream():
            for k in range(0, len(piece), 16384):
                part = piece[k:k + 16384]
                self.chunk(tls, part)
                sent[0] += len(part)
                while sent[0] >= reported + (1 << 20):
                    reported += 1 << 20
                    self.log("conn %d sent %d" % (n, reported))
                pause = start + sent[0] / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)

    def trickle(self, tls, every, sent):
        for piece in pack_stream():
            for b in piece:
                self.chunk(tls, bytes([b]))
                sent[0] += 1
                time.sleep(every)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    Server(sys.argv[1], sys.argv[2], sys.argv[3]).serve()


if __name__ == "__main__":
    main()
