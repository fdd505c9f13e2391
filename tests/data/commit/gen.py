#!/usr/bin/env python3
"""Regenerate the commit test cases in this directory.

Every valid case and most invalid ones are commit objects written by stock
git (`git commit-tree`, `git merge`, signed with `gpg.format=ssh`, i.e.
ssh-keygen -Y sign), read back with `git cat-file commit`.  The few shapes
git cannot be made to write (a header without its newline, a missing
author, a malformed identity, ...) are derived from those by a byte edit,
named in the case's `how` file.  Dates are fixed, so the trees and parents
are stable; the signing key is new on every run, so signatures and ids of
signed commits change (signer.pub is rewritten with them).

Layout:

  signer.pub               the key that signed every signed case
  valid/<case>/commit      raw commit object (no "commit <len>\\0" header)
  valid/<case>/kind        genesis, edit or merge
  invalid/<case>/commit    must be refused by cs_commit_parse()
  invalid/<case>/expect    line 1: the error code (EINVALID, ELIMIT);
                           line 2: a fragment of the error message
  */how                    how the case was made

Run: python3 gen.py   (needs git >= 2.34 and ssh-keygen; writes next to
itself).
"""
import os
import shutil
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DATE = "1735689600 +0000"
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def run(args, cwd, stdin=b"", env=None):
    e = dict(os.environ)
    e.update({
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": cwd,
        "GIT_AUTHOR_DATE": DATE,
        "GIT_COMMITTER_DATE": DATE,
    })
    if env:
        e.update(env)
    return subprocess.run(args, cwd=cwd, input=stdin, env=e, check=True,
                          capture_output=True).stdout


class Repo:
    def __init__(self, tmp, key, fingerprint):
        self.dir = os.path.join(tmp, "repo")
        self.key = key
        self.fp = fingerprint
        run(["git", "init", "-q", "-b", "main", self.dir], tmp)

    def git(self, *args, stdin=b"", env=None, sign=False):
        pre = ["git", "-c", "gpg.format=ssh", "-c",
               "user.signingkey=" + self.key]
        return run(pre + list(args), self.dir, stdin, env)

    def ident(self, name, email, date=DATE):
        return {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
                "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email,
                "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}

    def tree(self, files):
        """A tree from {path: bytes} (flat names only)."""
        entries = b""
        for name, data in sorted(files.items()):
            blob = self.git("hash-object", "-w", "--stdin",
                            stdin=data).strip().decode()
            entries += b"100644 blob %s\t%s\n" % (blob.encode(),
                                                  name.encode())
        return self.git("mktree", stdin=entries).strip().decode()

    def commit(self, tree, parents=(), message=b"edit\n", sign=True,
               org="ms2", email=None, date=DATE, extra=()):
        args = ["commit-tree", tree]
        for p in parents:
            args += ["-p", p]
        if sign:
            args.append("-S")
        env = self.ident(org, email or self.fp, date)
        return self.git(*extra, *args, stdin=message,
                        env=env).strip().decode()

    def raw(self, oid):
        return self.git("cat-file", "commit", oid)


def write_case(kind, name, data, how, expect=None, commit_kind=None):
    d = os.path.join(HERE, kind, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "commit"), "wb") as f:
        f.write(data)
    with open(os.path.join(d, "how"), "w") as f:
        f.write(how.rstrip("\n") + "\n")
    if expect:
        with open(os.path.join(d, "expect"), "w") as f:
            f.write("%s\n%s\n" % expect)
    if commit_kind:
        with open(os.path.join(d, "kind"), "w") as f:
            f.write(commit_kind + "\n")


def replace_once(data, old, new):
    assert data.count(old) >= 1, (data, old)
    return data.replace(old, new, 1)


def main():
    for kind in ("valid", "invalid"):
        shutil.rmtree(os.path.join(HERE, kind), ignore_errors=True)
    tmp = tempfile.mkdtemp()
    try:
        key = os.path.join(tmp, "signer")
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
             "ms2@cartosync", "-f", key], tmp)
        fp = run(["ssh-keygen", "-l", "-f", key + ".pub"],
                 tmp).split()[1].decode()
        shutil.copy(key + ".pub", os.path.join(HERE, "signer.pub"))
        r = Repo(tmp, key, fp)

        t0 = r.tree({"members.json": b"{}\n"})
        t1 = r.tree({"members.json": b"{}\n", "a.json": b"{\"a\": 1}\n"})
        t2 = r.tree({"members.json": b"{}\n", "b.json": b"{\"b\": 2}\n"})
        t3 = r.tree({"members.json": b"{}\n", "a.json": b"{\"a\": 1}\n",
                     "b.json": b"{\"b\": 2}\n"})

        genesis = r.commit(t0, message=b"Genesis of the consortium\n",
                           org="mdm-be")
        edit1 = r.commit(t1, [genesis], b"records: add a\n")
        edit2 = r.commit(t2, [genesis], b"records: add b\n", org="alcs")
        p0, p1 = sorted([edit1, edit2])

        write_case("valid", "genesis", r.raw(genesis),
                   "git commit-tree -S, no parent", commit_kind="genesis")
        write_case("valid", "edit", r.raw(edit1),
                   "git commit-tree -S -p <genesis>", commit_kind="edit")
        msg = ("records: مركز الاستماع — الناظور\n\n"
               "Écoute et orientation, ouverture le 3 mars.\n").encode()
        utf8 = r.commit(t1, [genesis], msg, date="1735689600 -0130")
        write_case("valid", "edit-utf8-negative-tz", r.raw(utf8),
                   "git commit-tree -S, Arabic and French message,"
                   " timezone -0130", commit_kind="edit")
        spaced = r.commit(t1, [genesis], b"edit\n",
                          org="Clinique Mobile Sud", email="edits@cms.example",
                          date="@0 +1400")
        write_case("valid", "edit-spaced-name-time-zero", r.raw(spaced),
                   "git commit-tree -S, a name with spaces, time 0,"
                   " timezone +1400", commit_kind="edit")
        merge = r.commit(t3, [p0, p1], b"cartosync-merge/1\n", sign=False,
                         org="cartosync", email="merge@cartosync")
        write_case("valid", "merge", r.raw(merge),
                   "git commit-tree with two parents, unsigned, the fixed"
                   " merge identity and message", commit_kind="merge")

        # Invalid, written by git.
        enc = r.commit(t1, [genesis], "édition\n".encode("latin-1"),
                       extra=["-c", "i18n.commitEncoding=ISO-8859-1"])
        write_case("invalid", "header-encoding", r.raw(enc),
                   "git -c i18n.commitEncoding=ISO-8859-1 commit-tree -S",
                   ("EINVALID", 'unexpected header "encoding"'))
        three = r.commit(t3, [genesis, edit1, edit2], b"octopus\n",
                         sign=False, org="cartosync",
                         email="merge@cartosync")
        write_case("invalid", "three-parents", r.raw(three),
                   "git commit-tree -p -p -p",
                   ("EINVALID", "at most two parents"))
        unsigned = r.commit(t1, [genesis], b"records: add a\n", sign=False)
        write_case("invalid", "unsigned-edit", r.raw(unsigned),
                   "git commit-tree -p <genesis> without -S",
                   ("EINVALID", "not signed"))
        unsigned_g = r.commit(t0, message=b"Genesis\n", sign=False)
        write_case("invalid", "unsigned-genesis", r.raw(unsigned_g),
                   "git commit-tree without -S and without parent",
                   ("EINVALID", "not signed"))
        smerge = r.commit(t3, [p0, p1], b"cartosync-merge/1\n",
                          org="cartosync", email="merge@cartosync")
        write_case("invalid", "signed-merge", r.raw(smerge),
                   "git commit-tree -S with two parents",
                   ("EINVALID", "a merge must not be signed"))

        # mergetag: git merge of an ssh-signed annotated tag.
        r.git("update-ref", "refs/heads/main", edit1)
        r.git("update-ref", "refs/heads/side", edit2)
        r.git("tag", "-s", "-m", "release", "v1", edit2,
              env=r.ident("ms2", fp))
        r.git("symbolic-ref", "HEAD", "refs/heads/main")
        # git adds the mergetag when merging the tag in a worktree.
        wt = os.path.join(tmp, "wt")
        run(["git", "clone", "-q", r.dir, wt], tmp)
        run(["git", "fetch", "-q", "origin", "refs/tags/v1:refs/tags/v1"],
            wt)
        run(["git", "checkout", "-q", "main"], wt)
        run(["git", "merge", "-q", "--no-ff", "--no-edit", "v1"], wt,
            env=r.ident("cartosync", "merge@cartosync"))
        mt = run(["git", "cat-file", "commit", "HEAD"], wt)
        assert b"\nmergetag " in mt, mt
        write_case("invalid", "header-mergetag", mt,
                   "git merge --no-ff of an ssh-signed tag",
                   ("EINVALID", 'unexpected header "mergetag"'))

        # Invalid, derived by a byte edit of a git-written commit.
        e = r.raw(edit1)
        author = e[e.index(b"\nauthor ") + 1:]
        author = author[:author.index(b"\n") + 1]
        write_case("invalid", "header-arbitrary",
                   replace_once(e, b"\ngpgsig ", b"\nx-cartosync yes\ngpgsig "),
                   "edit: an 'x-cartosync yes' header before gpgsig",
                   ("EINVALID", 'unexpected header "x-cartosync"'))
        write_case("invalid", "header-after-gpgsig",
                   replace_once(e, b"-----END SSH SIGNATURE-----\n",
                                b"-----END SSH SIGNATURE-----\nencoding UTF-8\n"),
                   "edit: an encoding header after gpgsig",
                   ("EINVALID", 'unexpected header "encoding"'))
        write_case("invalid", "missing-author", replace_once(e, author, b""),
                   "edit: the author line removed",
                   ("EINVALID", 'expected an "author" header'))
        write_case("invalid", "missing-committer",
                   replace_once(e, b"\ncommitter ", b"\nx-committer "),
                   "edit: committer renamed",
                   ("EINVALID", 'expected a "committer" header'))
        write_case("invalid", "ident-no-brackets",
                   replace_once(e, b"author ms2 <" + fp.encode() + b">",
                                b"author ms2 " + fp.encode()),
                   "edit: the author's email without <>",
                   ("EINVALID", 'malformed "author" header'))
        write_case("invalid", "ident-tz-short",
                   replace_once(e, b"\ncommitter ms2 <" + fp.encode() +
                                b"> 1735689600 +0000\n",
                                b"\ncommitter ms2 <" + fp.encode() +
                                b"> 1735689600 +25\n"),
                   "edit: committer timezone '+25'",
                   ("EINVALID", 'malformed "committer" header'))
        write_case("invalid", "ident-tz-minutes",
                   replace_once(e, b"> 1735689600 +0000\ncommitter",
                                b"> 1735689600 +0060\ncommitter"),
                   "edit: author timezone '+0060'",
                   ("EINVALID", 'malformed "author" header'))
        write_case("invalid", "ident-time-leading-zero",
                   replace_once(e, b"> 1735689600 +0000\ncommitter",
                                b"> 01735689600 +0000\ncommitter"),
                   "edit: author time '01735689600'",
                   ("EINVALID", 'malformed "author" header'))
        write_case("invalid", "ident-empty-name",
                   replace_once(e, b"author ms2 <", b"author <"),
                   "edit: an empty author name",
                   ("EINVALID", 'malformed "author" header'))
        write_case("invalid", "ident-empty-name-two-spaces",
                   replace_once(e, b"author ms2 <", b"author  <"),
                   "edit: an empty author name after two spaces",
                   ("EINVALID", 'malformed "author" header'))
        head_end = e.index(b"\n\n")
        write_case("invalid", "header-no-final-newline",
                   e[:e.index(b"\ncommitter ")] + b"\ncommitter ms2 <" +
                   fp.encode() + b"> 1735689600 +0000",
                   "edit: cut after the committer's timezone",
                   ("EINVALID", "without a newline"))
        write_case("invalid", "no-blank-line",
                   e[:head_end + 1],
                   "edit: cut before the blank line that ends the headers",
                   ("EINVALID", "without a newline"))
        write_case("invalid", "tree-uppercase",
                   replace_once(e, b"tree " + t1.encode(),
                                b"tree " + t1.upper().encode()),
                   "edit: the tree id in uppercase",
                   ("EINVALID", '"tree" header'))
        write_case("invalid", "parent-before-tree",
                   b"parent " + genesis.encode() + b"\n" +
                   replace_once(e, b"parent " + genesis.encode() + b"\n",
                                b""),
                   "edit: parent line moved before tree",
                   ("EINVALID", 'expected a "tree" header'))
        nul = replace_once(e, b"records: add a\n", b"records: add\x00 a\n")
        write_case("invalid", "message-nul", nul,
                   "edit: a NUL byte in the message",
                   ("EINVALID", "NUL"))
        write_case("invalid", "message-latin1",
                   replace_once(e, b"records: add a\n",
                                b"caf\xe9 ferm\xe9\n"),
                   "edit: a Latin-1 message without an encoding header"
                   " (git itself would re-encode it to UTF-8)",
                   ("EINVALID", "not valid UTF-8"))
        write_case("invalid", "message-overlong-utf8",
                   replace_once(e, b"records: add a\n",
                                b"records: add \xc0\xaf\n"),
                   "edit: an overlong UTF-8 sequence in the message",
                   ("EINVALID", "not valid UTF-8"))
        write_case("invalid", "message-surrogate",
                   replace_once(e, b"records: add a\n",
                                b"records: add \xed\xa0\x80\n"),
                   "edit: a UTF-16 surrogate encoded in UTF-8",
                   ("EINVALID", "not valid UTF-8"))
        write_case("invalid", "header-nul-in-author",
                   replace_once(e, b"author ms2 <", b"author ms2\x00x <"),
                   "edit: a NUL byte inside the author's name",
                   ("EINVALID", "NUL"))
        write_case("invalid", "header-nul-in-signature",
                   replace_once(e, b" -----END SSH SIGNATURE-----\n",
                                b" -----END SSH SIGNATURE-----\x00x\n"),
                   "edit: a NUL byte and a byte after the armor's end"
                   " line (same signature, new commit id)",
                   ("EINVALID", "NUL"))
        write_case("invalid", "too-large",
                   replace_once(e, b"records: add a\n",
                                b"records: add a\n" + b"x" * 65536),
                   "edit: a message that takes the commit over 64 KiB",
                   ("ELIMIT", "larger than 65536 bytes"))
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
