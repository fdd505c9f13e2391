"""The checks of the convergence story (tests/integration/t0100-convergence.sh).

Everything here reads a node's final repository with stock git
(`git log`, `git rev-list`, `git cat-file`) and knows nothing of
cartosync's code: it restates DESIGN §6 as checks.

  no_silent_loss(...)      every field a valid edit changed is, in the final
                           map, its value, a candidate of an open conflict,
                           or superseded by something that saw the edit
  resolutions_kept(...)    every resolution marker's value is in the map,
                           superseded by an edit that saw the resolution,
                           or a candidate of the conflict, open again

Merge rules ("set", "latest", "protective") are read from the x_merge
annotations of the schemas, following $ref, properties, items and
allOf/anyOf/oneOf/if/then/else, as cartosync does.
"""
import json
import os
import subprocess

MISSING = object()  # a field or record that is absent


# ---------------------------------------------------------------- git


class Repo:
    """A repository read with `git cat-file --batch` and `git log`."""

    def __init__(self, path):
        self.path = path
        self.proc = subprocess.Popen(
            ["git", "-C", path, "cat-file", "--batch"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.cache = {}

    def close(self):
        if self.proc:
            self.proc.stdin.close()
            self.proc.wait()
            self.proc = None

    def git(self, *args):
        return subprocess.run(["git", "-C", self.path] + list(args),
                              check=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE).stdout.decode()

    def read(self, spec):
        """The content of an object (`COMMIT:path`), or None."""
        if spec in self.cache:
            return self.cache[spec]
        self.proc.stdin.write(spec.encode() + b"\n")
        self.proc.stdin.flush()
        header = self.proc.stdout.readline().split()
        if len(header) < 3 or header[1] == b"missing":
            data = None
        else:
            size = int(header[2])
            data = self.proc.stdout.read(size)
            self.proc.stdout.read(1)
        self.cache[spec] = data
        return data

    def json_at(self, commit, path):
        data = self.read("%s:%s" % (commit, path))
        return MISSING if data is None else json.loads(data)


class History:
    """The commits reachable from a head, their ancestry and what each
    edit changed."""

    def __init__(self, repo, head):
        self.repo = repo
        self.head = repo.git("rev-parse", head).strip()
        self.order = []        # topological, parents first
        self.parents = {}
        self.author = {}
        out = repo.git("log", "--topo-order", "--reverse",
                       "--format=%H%x09%P%x09%an", self.head)
        for line in out.splitlines():
            c, ps, an = line.split("\t")
            self.order.append(c)
            self.parents[c] = ps.split()
            self.author[c] = an
        self.index = {c: i for i, c in enumerate(self.order)}
        self.anc = {}          # commit -> bitset of itself and its ancestors
        for c in self.order:
            bits = 1 << self.index[c]
            for p in self.parents[c]:
                bits |= self.anc[p]
            self.anc[c] = bits
        # paths each edit changed
        self.changed = {}
        out = repo.git("log", "--no-merges", "--format=C %H", "--raw",
                       "-r", "--no-abbrev", "--no-renames", self.head)
        cur = None
        for line in out.splitlines():
            if line.startswith("C "):
                cur = line[2:]
                self.changed[cur] = []
            elif line.startswith(":") and cur:
                self.changed[cur].append(line.split("\t", 1)[1])
        self.edits = [c for c in self.order if len(self.parents[c]) == 1]

    def is_ancestor(self, a, b):
        """a is b or one of b's ancestors."""
        return a in self.index and b in self.anc and \
            bool(self.anc[b] >> self.index[a] & 1)

    def contains(self, c):
        return c in self.index


# ---------------------------------------------------------------- rules


def load_rules(schema_dir, rtype):
    """{pointer: rule} of a record type; array items appear as '*'."""
    docs = {}

    def doc(name):
        if name not in docs:
            with open(os.path.join(schema_dir, name), encoding="utf-8") as f:
                docs[name] = json.load(f)
        return docs[name]

    rules = {}
    seen = set()

    def resolve(ref, cur):
        name, _, frag = ref.partition("#")
        name = name or cur
        node = doc(name)
        for tok in [t for t in frag.split("/") if t]:
            node = node[tok.replace("~1", "/").replace("~0", "~")]
        return node, name

    def walk(node, cur, ptr, depth):
        if not isinstance(node, dict) or depth > 200:
            return
        key = (id(node), ptr)
        if key in seen:
            return
        seen.add(key)
        if "x_merge" in node and ptr not in rules:
            rules[ptr] = node["x_merge"]
        if "$ref" in node:
            target, name = resolve(node["$ref"], cur)
            walk(target, name, ptr, depth + 1)
        for k, v in node.get("properties", {}).items():
            walk(v, cur, ptr + "/" + k.replace("~", "~0").replace("/", "~1"),
                 depth + 1)
        if isinstance(node.get("items"), dict):
            walk(node["items"], cur, ptr + "/*", depth + 1)
        for kw in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(kw, []):
                walk(sub, cur, ptr, depth + 1)
        for kw in ("if", "then", "else"):
            walk(node.get(kw), cur, ptr, depth + 1)

    walk(doc(rtype + ".schema.json"), rtype + ".schema.json", "", 0)
    return rules


class Rules:
    def __init__(self, schema_dir):
        self.schema_dir = schema_dir
        self.by_type = {}

    def of(self, rtype, ptr):
        if rtype not in self.by_type:
            try:
                self.by_type[rtype] = load_rules(self.schema_dir, rtype)
            except (OSError, KeyError, ValueError):
                self.by_type[rtype] = {}
        return self.by_type[rtype].get(ptr, "atomic")


# ---------------------------------------------------------------- values


def canon(v):
    return json.dumps(v, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))


def same(a, b, rule="atomic"):
    if a is MISSING or b is MISSING:
        return a is b
    if rule == "set" and isinstance(a, list) and isinstance(b, list):
        return sorted(map(canon, a)) == sorted(map(canon, b))
    return canon(a) == canon(b)


def unescape(tok):
    return tok.replace("~1", "/").replace("~0", "~")


def value_at(v, ptr):
    if ptr == "":
        return v
    for tok in ptr.split("/")[1:]:
        if isinstance(v, dict) and unescape(tok) in v:
            v = v[unescape(tok)]
        else:
            return MISSING
    return v


def as_set(v):
    return set(map(canon, v)) if isinstance(v, list) else set()


def show(v):
    return "(absent)" if v is MISSING else canon(v)


def diff(old, new, ptr, rtype, rules, out):
    """Append (rule, pointer, old, new) for each field that differs."""
    rule = rules.of(rtype, ptr) if ptr else "atomic"
    if same(old, new, rule):
        return
    if rule in ("set", "latest"):
        out.append((rule, ptr, old, new))
        return
    if isinstance(new, dict) and (isinstance(old, dict) or
                                  (old is MISSING and ptr == "")):
        o = old if isinstance(old, dict) else {}
        for k in sorted(set(o) | set(new)):
            diff(o.get(k, MISSING), new.get(k, MISSING),
                 ptr + "/" + k.replace("~", "~0").replace("/", "~1"),
                 rtype, rules, out)
        return
    out.append((rule if rule == "protective" else "atomic", ptr, old, new))


def record_type(path):
    # records/<owner>/<type>/<xx>/<id>.json
    parts = path.split("/")
    return parts[2] if len(parts) == 5 else None


def conflict_path(path):
    rid = os.path.basename(path)[:-5]
    return "conflicts/%s/%s.json" % (rid[:2], rid)


# ---------------------------------------------------------------- checks


class Oracle:
    def __init__(self, repo, head, schema_dir):
        self.repo = repo
        self.h = History(repo, head)
        self.rules = Rules(schema_dir)
        self.final = self.h.head
        # per record path: the edits that changed it, with before/after
        self.touch = {}
        for e in self.h.edits:
            for path in self.h.changed.get(e, []):
                self.touch.setdefault(path, []).append(e)
        self.markers = self._markers()

    def rec(self, commit, path):
        return self.repo.json_at(commit, path)

    def before(self, e, path):
        return self.rec(self.h.parents[e][0], path)

    def _markers(self):
        """{(conflict path, canon(marker)): resolution commit}"""
        found = {}
        for path, edits in self.touch.items():
            if not path.startswith("conflicts/"):
                continue
            for e in edits:
                now = self.rec(e, path)
                was = self.before(e, path)
                had = set()
                if isinstance(was, dict):
                    had = {canon(m) for m in was.get("resolved", [])}
                if isinstance(now, dict):
                    for m in now.get("resolved", []):
                        k = (path, canon(m))
                        if canon(m) not in had and k not in found:
                            found[k] = e
        return found

    def changed_at(self, x, path, ptr, rtype):
        rule = self.rules.of(rtype, ptr) if ptr else "atomic"
        return not same(value_at(self.before(x, path), ptr),
                        value_at(self.rec(x, path), ptr), rule)

    def superseded(self, e, path, ptr, rtype):
        """An edit that has e in its past changed the field (or a
        field that holds it, or one it holds)."""
        for x in self.touch.get(path, []):
            if x != e and self.h.is_ancestor(e, x):
                if self.changed_at(x, path, ptr, rtype):
                    return x
        return None

    def conflict_lists(self, cdoc, ptr, pred):
        if not isinstance(cdoc, dict):
            return False
        for q, entry in cdoc.get("conflicts", {}).items():
            if q == "" or q == ptr or ptr.startswith(q + "/"):
                sub = ptr[len(q):]
                for cand in entry.get("candidates", []):
                    if pred(value_at(cand.get("value", MISSING), sub)):
                        return True
        return False

    def resolution_saw(self, cdoc, cpath, ptr, e):
        if not isinstance(cdoc, dict):
            return None
        for m in cdoc.get("resolved", []):
            q = m.get("field", "")
            if not (q == "" or q == ptr or ptr.startswith(q + "/") or
                    q.startswith(ptr + "/")):
                continue
            res = self.markers.get((cpath, canon(m)))
            if res and res != e and self.h.is_ancestor(e, res):
                return res
        return None

    def opposite_item_change(self, e, path, ptr, item, added):
        """An edit not in e's past (nor e) that removed (if e added) or
        added (if e removed) `item` of a set field."""
        for x in self.touch.get(path, []):
            if x == e or self.h.is_ancestor(x, e):
                continue
            was = as_set(value_at(self.before(x, path), ptr))
            now = as_set(value_at(self.rec(x, path), ptr))
            if added and item in was and item not in now:
                return x
            if not added and item not in was and item in now:
                return x
        return None

    def no_silent_loss(self, valid):
        """Problems (strings) for every field change of a valid edit that
        the final map does not account for."""
        problems = []
        final = self.final
        for e in self.h.edits:
            if not valid(e):
                continue
            for path in self.h.changed.get(e, []):
                rtype = record_type(path)
                if not path.startswith("records/") or rtype is None:
                    continue
                changes = []
                old, new = self.before(e, path), self.rec(e, path)
                if new is MISSING:
                    changes.append(("atomic", "", old, new))
                else:
                    diff(old, new, "", rtype, self.rules, changes)
                fin = self.rec(final, path)
                cpath = conflict_path(path)
                cdoc = self.rec(final, cpath)
                for rule, ptr, o, n in changes:
                    why = self._account(e, path, rtype, rule, ptr, o, n, fin,
                                        cdoc, cpath)
                    if why:
                        problems.append(
                            "edit %s (%s) of %s, field %s: %s -> %s: %s"
                            % (e[:12], self.h.author[e], path, ptr or "''",
                               show(o), show(n), why))
        return problems

    def _account(self, e, path, rtype, rule, ptr, o, n, fin, cdoc, cpath):
        fv = value_at(fin, ptr)
        if rule == "set":
            missing = []
            os_, ns, fs = as_set(o), as_set(n), as_set(fv)
            for item in sorted(ns - os_):
                if item in fs or self.opposite_item_change(e, path, ptr,
                                                           item, True):
                    continue
                if self.conflict_lists(cdoc, ptr,
                                       lambda v: item in as_set(v)):
                    continue
                if self.resolution_saw(cdoc, cpath, ptr, e):
                    continue
                missing.append("added %s is not in the final set %s"
                               % (item, show(fv)))
            for item in sorted(os_ - ns):
                if item not in fs or self.opposite_item_change(
                        e, path, ptr, item, False):
                    continue
                if self.conflict_lists(cdoc, ptr,
                                       lambda v: item not in as_set(v)):
                    continue
                if self.resolution_saw(cdoc, cpath, ptr, e):
                    continue
                missing.append("removed %s is back in the final set %s"
                               % (item, show(fv)))
            return "; ".join(missing)
        if same(fv, n):
            return None
        if rule == "latest" and isinstance(fv, dict) and isinstance(n, dict):
            fd, nd = str(fv.get("date", "")), str(n.get("date", ""))
            if fd > nd or (fd == nd and canon(fv) > canon(n)):
                return None
        if self.conflict_lists(cdoc, ptr, lambda v: same(v, n)):
            return None
        if self.superseded(e, path, ptr, rtype):
            return None
        if self.resolution_saw(cdoc, cpath, ptr, e):
            return None
        return ("final value %s, no open conflict lists %s, and no edit or"
                " resolution that saw it changed the field"
                % (show(fv), show(n)))

    def resolutions_kept(self):
        """Problems for resolution markers overridden silently."""
        problems = []
        final = self.final
        for path in sorted(p for p in self.touch if p.startswith("conflicts/")):
            cdoc = self.rec(final, path)
            if not isinstance(cdoc, dict):
                continue
            rpath = cdoc.get("record", "")
            rtype = record_type(rpath)
            fin = self.rec(final, rpath)
            for m in cdoc.get("resolved", []):
                res = self.markers.get((path, canon(m)))
                f = m.get("field", "")
                v = m.get("value", MISSING)
                if res is None:
                    problems.append("%s: marker %s was written by no edit"
                                    % (path, canon(m)))
                    continue
                if m.get("on") != self.h.parents[res][0]:
                    problems.append("%s: marker %s: 'on' is not the parent"
                                    " of its resolution %s"
                                    % (path, canon(m), res[:12]))
                if same(value_at(fin, f), v,
                        self.rules.of(rtype, f) if f else "atomic"):
                    continue
                if self.superseded(res, rpath, f, rtype):
                    continue
                if self.resolution_saw(cdoc, path, f, res):
                    continue
                if self.conflict_lists(cdoc, f, lambda x: same(x, v)):
                    continue
                problems.append(
                    "resolution %s of %s %s = %s: the final value is %s, no"
                    " edit that saw the resolution changed it, and no open"
                    " conflict lists it" % (res[:12], rpath, f or "''",
                                            show(v), show(value_at(fin, f))))
        return problems

    def attributions(self):
        """Problems for open-conflict candidates whose edit is not a held
        edit holding that value (DESIGN §6: each candidate is identified
        by the edit that wrote it; 'conflicts resolve --take ORG' relies
        on it)."""
        problems = []
        final = self.final
        out = self.repo.git("ls-tree", "-r", "--name-only", final,
                            "conflicts/")
        for path in out.split():
            cdoc = self.rec(final, path)
            if not isinstance(cdoc, dict):
                continue
            rpath = cdoc.get("record", "")
            rtype = record_type(rpath)
            for q, entry in sorted(cdoc.get("conflicts", {}).items()):
                rule = self.rules.of(rtype, q) if q else "atomic"
                for cand in entry.get("candidates", []):
                    e = cand.get("edit", "")
                    v = cand.get("value", MISSING)
                    if len(self.h.parents.get(e, [])) != 1:
                        problems.append("%s %s: candidate %s is attributed"
                                        " to %s, which is not a held edit"
                                        % (rpath, q or "''", show(v),
                                           e[:12] or "nothing"))
                        continue
                    got = value_at(self.rec(e, rpath), q)
                    if not same(got, v, rule):
                        problems.append(
                            "%s %s: candidate %s is attributed to %s (%s),"
                            " whose version of the record has %s there"
                            % (rpath, q or "''", show(v), e[:12],
                               self.h.author[e], show(got)))
        return problems

