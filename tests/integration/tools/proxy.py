#!/usr/bin/python3
"""A TCP proxy on loopback that slows or stalls what a server sends.

  proxy.py DIR

DIR/target holds HOST:PORT, where connections go (read at each new
connection, so a restarted server on another port is found).  DIR/mode
says what to do with the connections accepted from now on (read at each
new connection; missing: pass):

  pass                 relay both ways
  slow RATE            relay what the server sends at RATE bytes a second
  stall AFTER [COUNT]  relay the first AFTER bytes the server sends, then
                       nothing more (the connection stays open, silent,
                       until the client hangs up); only COUNT connections
                       stall (default: every one), later ones pass

The proxy binds 127.0.0.1:0 and writes the port to DIR/port.  It knows
nothing of TLS or HTTP: the bytes pass unchanged, so the client still
checks the server's key end to end.  DIR/log gets one line per event:

  conn N open MODE
  conn N down BYTES          every 64 KiB the server sent and was relayed
  conn N stalled after BYTES
  conn N closed up BYTES down BYTES
"""
import os
import socket
import sys
import threading
import time

import loopback

CHUNK = 16384


class Proxy:
    def __init__(self, d):
        self.dir = d
        self.lock = threading.Lock()
        self.stalled = 0
        self.log_file = open(os.path.join(d, "log"), "a", buffering=1)

    def log(self, line):
        with self.lock:
            self.log_file.write(line + "\n")

    def read(self, name, default):
        try:
            with open(os.path.join(self.dir, name)) as f:
                return f.read().strip() or default
        except OSError:
            return default

    def serve(self):
        loopback.serve(self.dir, 64, self.handle)

    def handle(self, n, client):
        mode = self.read("mode", "pass").split()
        host, _, port = self.read("target", "").rpartition(":")
        self.log("conn %d open %s" % (n, " ".join(mode)))
        try:
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if mode[0] != "pass":
                # Small buffers: the server's own process holds what is not
                # relayed yet (so a server killed now is cut off at once),
                # not this proxy's kernel buffers.
                server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
                client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
            server.settimeout(10)
            server.connect((host, int(port)))
            server.settimeout(None)
        except (OSError, ValueError) as e:
            self.log("conn %d cannot connect to %s:%s: %s" % (n, host, port,
                                                             e))
            client.close()
            return
        counts = {"up": 0, "down": 0}
        done = threading.Event()
        up = threading.Thread(target=self.pump_up,
                              args=(client, server, counts, done),
                              daemon=True)
        up.start()
        self.pump_down(n, mode, server, client, counts, done)
        up.join()
        self.log("conn %d closed up %d down %d" % (n, counts["up"],
                                                   counts["down"]))

    @staticmethod
    def close(a, b):
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def pump_up(self, client, server, counts, done):
        try:
            while True:
                data = client.recv(CHUNK)
                if not data:
                    break
                server.sendall(data)
                counts["up"] += len(data)
        except OSError:
            pass
        done.set()
        self.close(client, server)

    def pump_down(self, n, mode, server, client, counts, done):
        rate = int(mode[1]) if mode[0] == "slow" else 0
        after = int(mode[1]) if mode[0] == "stall" else -1
        limit = int(mode[2]) if mode[0] == "stall" and len(mode) > 2 else 0
        reported = 0
        start = time.monotonic()
        try:
            while True:
                want = CHUNK
                if rate:
                    want = min(CHUNK, max(1, rate // 10))
                if after >= 0:
                    want = min(want, after - counts["down"])
                if want == 0:
                    with self.lock:
                        self.stalled += 1
                        stall = limit == 0 or self.stalled <= limit
                    if stall:
                        self.log("conn %d stalled after %d" %
                                 (n, counts["down"]))
                        done.wait()  # until the client hangs up
                        break
                    after = -1
                    continue
                data = server.recv(want)
                if not data:
                    break
                client.sendall(data)
                counts["down"] += len(data)
                while counts["down"] >= reported + 65536:
                    reported += 65536
                    self.log("conn %d down %d" % (n, reported))
                if rate:
                    due = start + counts["down"] / rate
                    pause = due - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
        except OSError:
            pass
        self.close(client, server)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    Proxy(sys.argv[1]).serve()


if __name__ == "__main__":
    main()
