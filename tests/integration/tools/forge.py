#!/usr/bin/python3
"""Rewrite raw git commit objects for the forgery stories.

  forge.py rewrap WIDTH      < commit > commit   re-wrap the gpgsig armor's
                                                 base64 at WIDTH columns
  forge.py strip-sig         < commit > payload  the commit without gpgsig
                                                 (the bytes git signs)
  forge.py add-header LINE   < payload > payload insert a header line after
                                                 the committer line
  forge.py insert-sig ARMOR  < payload > commit  add a gpgsig header carrying
                                                 the armor file, at the end
                                                 of the headers (as git does)

Objects are read and written as bytes, without git's "commit <len>\\0".
"""
import sys


def split(raw):
    head, sep, body = raw.partition(b"\n\n")
    if not sep:
        sys.exit("forge.py: no blank line after the headers")
    return head.split(b"\n"), body


def join(lines, body):
    return b"\n".join(lines) + b"\n\n" + body


def sig_span(lines):
    for i, line in enumerate(lines):
        if line.startswith(b"gpgsig "):
            j = i + 1
            while j < len(lines) and lines[j].startswith(b" "):
                j += 1
            return i, j
    sys.exit("forge.py: the commit has no gpgsig header")


def armor_lines(armor):
    return [l for l in armor.strip(b"\n").split(b"\n")]


def gpgsig(armor):
    lines = armor_lines(armor)
    return [b"gpgsig " + lines[0]] + [b" " + l for l in lines[1:]]


def main():
    raw = sys.stdin.buffer.read()
    lines, body = split(raw)
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "rewrap":
        width = int(sys.argv[2])
        i, j = sig_span(lines)
        armor = [lines[i][len(b"gpgsig "):]] + [l[1:] for l in lines[i + 1:j]]
        b64 = b"".join(armor[1:-1])
        wrapped = [b64[k:k + width] for k in range(0, len(b64), width)]
        new = gpgsig(b"\n".join([armor[0]] + wrapped + [armor[-1]]))
        if new == lines[i:j]:
            sys.exit("forge.py: re-wrapping changed nothing")
        lines[i:j] = new
    elif cmd == "strip-sig":
        i, j = sig_span(lines)
        del lines[i:j]
    elif cmd == "add-header":
        k = [n for n, l in enumerate(lines) if l.startswith(b"committer ")]
        if not k:
            sys.exit("forge.py: no committer line")
        lines.insert(k[0] + 1, sys.argv[2].encode())
    elif cmd == "insert-sig":
        with open(sys.argv[2], "rb") as f:
            lines.extend(gpgsig(f.read()))
    else:
        sys.exit(__doc__)
    sys.stdout.buffer.write(join(lines, body))


if __name__ == "__main__":
    main()
