#!/usr/bin/python3
"""Write mutants of valid records, for the schema agreement story.

  mutate.py [--every N] OUT_DIR FILE...

For each record FILE (a JSON object with x_record_type), writes into OUT_DIR
canonical JSON files named <file>--<mutation>.json, one per mutation:

  drop-<key>        the top-level property removed
  empty-<key>       a string property set to ""
  int-<key>         a property set to the integer 7
  null-<key>        a property set to null
  long-<key>        a string property set to 2,000 characters
  unknown           an extra property "x_unknown"
  upper-<key>       a string property upper-cased
  dup-<key>         an array property with its first item repeated
  emptyarr-<key>    an array property emptied
  sub-drop-<key>.<sub>   a property of a nested object removed
  sub-int-<key>.<sub>    a property of a nested object set to 7

The mutants are deterministic (no randomness): their names say what
changed.  --every N keeps one mutant in N (the 1st, N+1th, ...), to keep a
run short.  Prints the number of files written.
"""
import json
import os
import sys


def canonical(obj):
    return json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def mutants(rec):
    for key in sorted(rec):
        v = rec[key]
        if key not in ("x_record_type",):
            r = dict(rec)
            del r[key]
            yield "drop-" + key, r
        r = dict(rec)
        r[key] = 7
        yield "int-" + key, r
        r = dict(rec)
        r[key] = None
        yield "null-" + key, r
        if isinstance(v, str) and key != "x_record_type":
            r = dict(rec)
            r[key] = ""
            yield "empty-" + key, r
            r = dict(rec)
            r[key] = "a" * 2000
            yield "long-" + key, r
            if v.upper() != v:
                r = dict(rec)
                r[key] = v.upper()
                yield "upper-" + key, r
        if isinstance(v, list) and v:
            r = dict(rec)
            r[key] = [v[0]] + v
            yield "dup-" + key, r
            r = dict(rec)
            r[key] = []
            yield "emptyarr-" + key, r
        if isinstance(v, dict):
            for sub in sorted(v):
                r = json.loads(json.dumps(rec))
                del r[key][sub]
                yield "sub-drop-%s.%s" % (key, sub), r
                r = json.loads(json.dumps(rec))
                r[key][sub] = 7
                yield "sub-int-%s.%s" % (key, sub), r
    r = dict(rec)
    r["x_unknown"] = "?"
    yield "unknown", r


def main():
    args = sys.argv[1:]
    every = 1
    if args[:1] == ["--every"]:
        every = int(args[1])
        args = args[2:]
    out = args[0]
    n = k = 0
    for path in args[1:]:
        with open(path, "rb") as f:
            rec = json.loads(f.read().decode("utf-8"))
        if not isinstance(rec, dict) or "x_record_type" not in rec:
            continue
        base = os.path.basename(path)[:-5]
        parent = os.path.basename(os.path.dirname(path))
        for name, r in mutants(rec):
            k += 1
            if (k - 1) % every:
                continue
            dest = os.path.join(out, "%s-%s--%s.json" % (parent, base, name))
            with open(dest, "w", encoding="utf-8") as f:
                f.write(canonical(r))
            n += 1
    print(n)


if __name__ == "__main__":
    main()
