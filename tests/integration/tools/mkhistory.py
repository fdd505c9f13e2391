#!/usr/bin/python3
"""Grow a long history of valid signed edits quickly.

  mkhistory.py REPO ORG SIGNING_KEY COMMITS PER_COMMIT [DESC_CHARS]

REPO is a git repository (a bare clone of a node will do) whose HEAD
names the commit to build on; the new history goes on top of it and HEAD's
branch is moved to its last commit, whose id is printed.  Each of COMMITS
commits adds PER_COMMIT organization records of ORG (canonical JSON,
docs/record-model.md) with a description of DESC_CHARS (default 2000)
pseudo-random letters, so that the pack is large and compresses poorly.

Blobs, trees and commits are made here and stored as one pack through
`git index-pack` (stock git's formats), and every commit is signed as git signs with gpg.format=ssh:
`ssh-keygen -Y sign -n git` over the commit without its gpgsig header, the
armor added as the last header.  Author and committer are ORG.  This is
what `git commit -S` writes, without git's index (which makes a history of
thousands of records take minutes); `git verify-commit` accepts the
commits.  Deterministic: the same arguments give the same records.
"""
import hashlib
import json
import os
import random
import struct
import subprocess
import sys
import zlib


TYPES = {"commit": 1, "tree": 2, "blob": 3}


class Repo:
    def __init__(self, path):
        self.path = path
        self.objects = {}  # oid -> (type, data), in order

    def write(self, kind, data):
        raw = b"%s %d\0" % (kind.encode(), len(data)) + data
        oid = hashlib.sha1(raw).hexdigest()
        self.objects.setdefault(oid, (kind, data))
        return oid

    def store(self):
        """Every object written, as one pack (no deltas), through git
        index-pack."""
        out = [b"PACK", struct.pack(">II", 2, len(self.objects))]
        for kind, data in self.objects.values():
            size = len(data)
            byte = (TYPES[kind] << 4) | (size & 0x0F)
            size >>= 4
            head = bytearray()
            while size:
                head.append(byte | 0x80)
                byte = size & 0x7F
                size >>= 7
            head.append(byte)
            out.append(bytes(head))
            out.append(zlib.compress(data, 1))
        pack = b"".join(out)
        pack += hashlib.sha1(pack).digest()
        subprocess.run(["git", "-C", self.path, "index-pack", "--stdin"],
                       input=pack, check=True, capture_output=True)

    def git(self, *args):
        return subprocess.run(["git", "-C", self.path] + list(args),
                              check=True, capture_output=True).stdout


def read_tree(repo, rev):
    """The tree of rev as nested dicts: name -> (mode, oid) or dict."""
    root = {}
    out = repo.git("ls-tree", "-r", "-z", "--full-tree", rev)
    for entry in out.split(b"\0"):
        if not entry:
            continue
        meta, path = entry.split(b"\t", 1)
        mode, _, oid = meta.split(b" ")
        parts = path.split(b"/")
        node = root
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = (mode, oid.decode())
    return root


def tree_key(item):
    name, value = item
    return name + b"/" if isinstance(value, dict) else name


def write_tree(repo, node, cache):
    key = id(node)
    if key in cache:
        return cache[key]
    body = b""
    for name, value in sorted(node.items(), key=tree_key):
        if isinstance(value, dict):
            mode, oid = b"40000", write_tree(repo, value, cache)
        else:
            mode, oid = value
        body += mode + b" " + name + b"\0" + bytes.fromhex(oid)
    oid = repo.write("tree", body)
    cache[key] = oid
    return oid


def sign(payload, key):
    r = subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-n", "git",
                        "-f", key], input=payload, capture_output=True)
    if r.returncode != 0:
        sys.exit("mkhistory.py: ssh-keygen -Y sign: " +
                 r.stderr.decode(errors="replace"))
    lines = r.stdout.strip(b"\n").split(b"\n")
    return b"gpgsig " + b"\n ".join(lines)


def main():
    if len(sys.argv) not in (6, 7):
        sys.exit(__doc__)
    repo = Repo(sys.argv[1])
    org, key = sys.argv[2], os.path.abspath(sys.argv[3])
    commits, per = int(sys.argv[4]), int(sys.argv[5])
    chars = int(sys.argv[6]) if len(sys.argv) == 7 else 2000
    rng = random.Random(f"{org}-{commits}-{per}-{chars}")
    letters = b"abcdefghijklmnopqrstuvwxyz      "
    table = bytes(letters[i % len(letters)] for i in range(256))
    parent = repo.git("rev-parse", "HEAD").decode().strip()
    branch = repo.git("symbolic-ref", "HEAD").decode().strip()
    root = read_tree(repo, parent)
    when = 1735689600  # 2025-01-01
    n = 0
    for c in range(commits):
        for _ in range(per):
            n += 1
            rid = "%08x-%04x-4%03x-8%03x-%012x" % (
                rng.getrandbits(32), rng.getrandbits(16),
                rng.getrandbits(12), rng.getrandbits(12),
                rng.getrandbits(48))
            desc = rng.randbytes(chars).translate(table).decode()
            rec = {
                "description": " ".join(desc.split()) or "x",
                "id": rid,
                "name": "Organisation %d of %s" % (n, org),
                "x_owner": org,
                "x_record_type": "organization",
                "x_status": "proposed",
                "x_verified": {"by": org, "date": "2025-01-01",
                               "method": "self_report"},
            }
            data = (json.dumps(rec, ensure_ascii=False, indent=2,
                               sort_keys=True) + "\n").encode()
            blob = repo.write("blob", data)
            node = root
            for p in (b"records", org.encode(), b"organization",
                      rid[:2].encode()):
                node = node.setdefault(p, {})
            node[rid.encode() + b".json"] = (b"100644", blob)
        # Subtrees are rebuilt each commit; unchanged ones hash the same.
        tree = write_tree(repo, root, {})
        when += 60
        ident = "%s <history@example.org> %d +0000" % (org, when)
        payload = ("tree %s\nparent %s\nauthor %s\ncommitter %s\n\n"
                   "records: add %d organizations (%d/%d)\n" %
                   (tree, parent, ident, ident, per, c + 1,
                    commits)).encode()
        head, body = payload.split(b"\n\n", 1)
        commit = head + b"\n" + sign(payload, key) + b"\n\n" + body
        parent = repo.write("commit", commit)
    repo.store()
    repo.git("update-ref", branch, parent)
    print(parent)


if __name__ == "__main__":
    main()
