#!/usr/bin/python3
"""Kill a process with SIGKILL soon after a line appears in a log.

  killon.py LOG PATTERN PID DELAY [TIMEOUT]

Watches LOG (polling every 2 ms) for a new line holding the fixed string
PATTERN (lines already there when it starts do not count), waits DELAY
seconds, then sends SIGKILL to PID.  Prints "killed PID" and exits 0, or
exits 1 if PATTERN did not appear within TIMEOUT seconds (default 60) or
PID was gone before the kill.  Prints "watching" once it knows where LOG
ends: what is logged after that counts.
"""
import os
import signal
import sys
import time


def main():
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__)
    log, pattern, pid = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
    delay = float(sys.argv[4])
    timeout = float(sys.argv[5]) if len(sys.argv) == 6 else 60.0
    try:
        with open(log, "rb") as f:
            offset = len(f.read())
    except OSError:
        offset = 0
    end = time.monotonic() + timeout
    pending = b""
    print("watching", flush=True)
    while True:
        try:
            with open(log, "rb") as f:
                f.seek(offset)
                data = f.read()
        except OSError:
            data = b""
        offset += len(data)
        pending += data
        lines = pending.split(b"\n")
        pending = lines.pop()
        if any(pattern in line for line in lines):
            break
        if time.monotonic() > end:
            sys.exit("killon.py: no '%s' in %s within %g s" %
                     (sys.argv[2], log, timeout))
        time.sleep(0.002)
    if delay > 0:
        time.sleep(delay)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        sys.exit("killon.py: process %d was gone before the kill" % pid)
    print("killed %d" % pid)


if __name__ == "__main__":
    main()
