#!/usr/bin/python3
"""Run a command with its standard input on a pseudo-terminal.

  tty.py ANSWER CMD [ARGS...]

Writes ANSWER and a newline to the terminal (what a user would type at a
question), runs CMD with stdin on the terminal and its stdout and stderr
unchanged, and exits with CMD's status.  What the terminal echoes is
discarded.
"""
import os
import subprocess
import sys


def main():
    answer = sys.argv[1]
    master, slave = os.openpty()
    os.write(master, answer.encode() + b"\n")
    proc = subprocess.Popen(sys.argv[2:], stdin=slave)
    os.close(slave)
    try:
        status = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        sys.exit("tty.py: the command did not finish")
    os.close(master)
    sys.exit(status if status >= 0 else 128 - status)


if __name__ == "__main__":
    main()
