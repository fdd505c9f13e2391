"""The listening side shared by the story tools (evilpeer.py, proxy.py).

serve(DIR, BACKLOG, HANDLE) listens on a free loopback port, writes it to
DIR/port (whole, through a rename, so a story polling for the file never
reads half a number), and runs HANDLE(N, SOCKET) in a thread of its own
for each connection, N counting from 1.
"""
import os
import socket
import threading


def serve(directory, backlog, handle):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(backlog)
    tmp = os.path.join(directory, "port.tmp")
    with open(tmp, "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    os.rename(tmp, os.path.join(directory, "port"))
    n = 0
    while True:
        sock, _ = ls.accept()
        n += 1
        threading.Thread(target=handle, args=(n, sock), daemon=True).start()
