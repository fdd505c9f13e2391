#!/usr/bin/python3
"""Validate cartosync records with Python's jsonschema, as a second opinion.

Run with Debian's interpreter (python3-jsonschema 4.10, Draft7Validator):

  /usr/bin/python3 tests/schema_agreement.py SCHEMA_DIR FILE...
      One line per file: "valid FILE" or "invalid FILE: <pointer>: <message>".
      A record is validated against SCHEMA_DIR/<x_record_type>.schema.json;
      a file without x_record_type named members.json, policy.json or
      protocol.json (or default-policy.json) against the consortium schema of
      that name.  Every schema file of SCHEMA_DIR is in the resolver's store
      under its $id, so references between files resolve offline.  Exit 0.

  /usr/bin/python3 tests/schema_agreement.py --check-schemas SCHEMA_DIR
      Check every *.schema.json against the draft-07 metaschema, the $id of
      each file, that every $ref resolves, that patterns stay in the regex
      subset the C validator translates, that default-policy.json is valid
      against policy.schema.json and gives a visibility level to every
      property of every record type (and names no property that does not
      exist).  Exit 1 with one message per problem.

  /usr/bin/python3 tests/schema_agreement.py --check-cases SCHEMA_DIR DATA_DIR
      Check the test cases: every DATA_DIR/records/valid/*.json and
      DATA_DIR/sample/**/*.json is valid, every DATA_DIR/records/invalid/*.json
      fails with an error at the pointer of its sibling .expect file whose
      message contains the expected fragment (in Python's wording or in the
      C validator's, which names an enum by its title and spells out
      lengths: see c_message), and every file is in canonical form.  Exit 1 with one message per problem.

The pointer of an error is the JSON pointer of the instance location the
failing keyword applies to ("" for the record itself: a missing required
property or an unexpected one is reported at the object that lacks or holds
it).
"""

import glob
import json
import os
import re
import sys

import jsonschema
from jsonschema import Draft7Validator, RefResolver
from jsonschema.exceptions import best_match

CONSORTIUM_FILES = {
    "members.json": "members.schema.json",
    "policy.json": "policy.schema.json",
    "default-policy.json": "policy.schema.json",
    "protocol.json": "protocol.schema.json",
}
LEVELS = ("public", "consortium", "coordination")


def pointer(path):
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1")
                   for p in path)


def canonical(obj):
    return json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def load_json(path):
    with open(path, "rb") as f:
        raw = f.read()
    return raw, json.loads(raw.decode("utf-8"))


class SchemaSet:
    def __init__(self, schema_dir):
        self.dir = schema_dir
        self.store = {}
        self.files = {}
        for path in sorted(glob.glob(os.path.join(schema_dir, "*.schema.json"))):
            _, doc = load_json(path)
            name = os.path.basename(path)
            self.files[name] = doc
            if isinstance(doc, dict) and "$id" in doc:
                self.store[doc["$id"]] = doc

    def validator(self, name):
        schema = self.files.get(name)
        if schema is None:
            return None
        resolver = RefResolver(base_uri=schema.get("$id", name),
                               referrer=schema, store=self.store)
        return Draft7Validator(schema, resolver=resolver)

    def schema_for(self, path, obj):
        """The schema file name for a document, or (None, reason)."""
        if isinstance(obj, dict) and "x_record_type" in obj:
            rtype = obj["x_record_type"]
            if not isinstance(rtype, str) or not re.match(r"^[a-z_]+$", rtype):
                return None, "/x_record_type: not a record type name"
            name = rtype + ".schema.json"
            if name not in self.files or name in CONSORTIUM_FILES.values() \
                    or name in ("common.schema.json", "codes.schema.json"):
                return None, "/x_record_type: no schema for record type %r" % rtype
            return name, None
        base = os.path.basename(path)
        if base in CONSORTIUM_FILES:
            return CONSORTIUM_FILES[base], None
        return None, ": not a record (no x_record_type)"


def all_errors(validator, obj):
    """Errors, each with the errors of its anyOf/oneOf branches flattened."""
    out = []

    def walk(err):
        out.append(err)
        for sub in err.context or ():
            walk(sub)
    for err in validator.iter_errors(obj):
        walk(err)
    return out


def validate_files(schema_dir, files):
    sset = SchemaSet(schema_dir)
    for path in files:
        try:
            _, obj = load_json(path)
        except (OSError, ValueError) as e:
            print("invalid %s: : cannot read JSON: %s" % (path, e))
            continue
        name, reason = sset.schema_for(path, obj)
        if name is None:
            print("invalid %s: %s" % (path, reason))
            continue
        validator = sset.validator(name)
        err = best_match(validator.iter_errors(obj))
        if err is None:
            print("valid %s" % path)
        else:
            print("invalid %s: %s: %s" % (path, pointer(err.absolute_path), err.message))
    return 0


# --------------------------------------------------------------- --check-schemas

# Regex subset the C validator translates to POSIX ERE.
BAD_REGEX = [
    (re.compile(r"\(\?"), "groups with (? (lookaround, non-capturing, flags)"),
    (re.compile(r"\\[pPbBdDwWsS]"), "class escapes (write [0-9], [A-Za-z0-9_] explicitly: Python's \\d and \\w match non-ASCII digits and letters)"),
    (re.compile(r"[*+?}]\?"), "non-greedy quantifiers"),
    (re.compile(r"\\[1-9]"), "back-references"),
]


def walk_schema(node, path, visit):
    visit(node, path)
    if isinstance(node, dict):
        for k, v in node.items():
            walk_schema(v, path + [k], visit)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            walk_schema(v, path + [i], visit)


def property_paths(sset, schema, prefix, out, seen=None):
    """Collect dotted paths of object properties reachable from `schema`."""
    seen = seen or set()
    resolver = RefResolver(base_uri=schema.get("$id", ""), referrer=schema,
                           store=sset.store)

    def visit(node, scope_doc, pfx, depth):
        if depth > 12 or not isinstance(node, dict):
            return
        if "$ref" in node:
            url = node["$ref"]
            base = scope_doc.get("$id", "")
            full = jsonschema.validators.urljoin(base, url)
            key = (full, tuple(pfx))
            if key in seen:
                return
            seen.add(key)
            _, target = resolver.resolve(full)
            doc = sset.store.get(full.split("#")[0], scope_doc)
            visit(target, doc, pfx, depth + 1)
            return
        for kw in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(kw, []):
                visit(sub, scope_doc, pfx, depth + 1)
        for kw in ("then", "else"):
            if isinstance(node.get(kw), dict):
                visit(node[kw], scope_doc, pfx, depth + 1)
        for name, sub in node.get("properties", {}).items():
            p = pfx + [name]
            out.add(".".join(p))
            visit(sub, scope_doc, p, depth + 1)
    visit(schema, schema, prefix, 0)


def check_schemas(schema_dir):
    problems = []
    sset = SchemaSet(schema_dir)
    if not sset.files:
        return ["%s: no *.schema.json files" % schema_dir]
    for name, doc in sset.files.items():
        try:
            Draft7Validator.check_schema(doc)
        except jsonschema.exceptions.SchemaError as e:
            problems.append("%s: not a valid draft-07 schema: %s at %s"
                            % (name, e.message, pointer(e.path)))
            continue
        if doc.get("$schema") != "http://json-schema.org/draft-07/schema#":
            problems.append("%s: $schema is not draft-07" % name)
        if doc.get("$id") != name:
            problems.append("%s: $id %r differs from the file name" % (name, doc.get("$id")))
        raw, _ = load_json(os.path.join(schema_dir, name))
        if raw.decode("utf-8") != canonical(doc):
            problems.append("%s: not in canonical form" % name)

        resolver = RefResolver(base_uri=name, referrer=doc, store=sset.store)

        def visit(node, path, name=name, resolver=resolver):
            if not isinstance(node, dict):
                return
            # only look at schema positions, not at x_labels values etc.
            if (path and isinstance(path[-1], str) and path[-1].startswith("x_")
                    and (len(path) < 2 or path[-2] != "properties")):
                return
            ref = node.get("$ref")
            if isinstance(ref, str):
                try:
                    resolver.resolve(ref)
                except Exception as e:  # RefResolutionError and friends
                    problems.append("%s: %s: $ref %r does not resolve: %s"
                                    % (name, pointer(path), ref, e))
                extra = [k for k in node if k != "$ref"]
                if extra:
                    problems.append("%s: %s: keywords beside $ref are ignored in draft-07: %s"
                                    % (name, pointer(path), ", ".join(sorted(extra))))
            pat = node.get("pattern")
            if isinstance(pat, str):
                for rx, what in BAD_REGEX:
                    if rx.search(pat):
                        problems.append("%s: %s: pattern %r uses %s"
                                        % (name, pointer(path), pat, what))
            if node.get("x_merge") == "set":
                if node.get("type") != "array" or not node.get("uniqueItems"):
                    problems.append("%s: %s: x_merge set needs an array with uniqueItems"
                                    % (name, pointer(path)))
            if "format" in node and "pattern" not in node and "$ref" not in node:
                problems.append("%s: %s: format is annotation-only; add a pattern"
                                % (name, pointer(path)))
        walk_schema(doc, [], visit)

    # records and the default policy
    policy_path = os.path.join(schema_dir, "default-policy.json")
    if not os.path.exists(policy_path):
        problems.append("default-policy.json: missing")
        return problems
    raw, policy = load_json(policy_path)
    if raw.decode("utf-8") != canonical(policy):
        problems.append("default-policy.json: not in canonical form")
    pv = sset.validator("policy.schema.json")
    if pv is None:
        problems.append("policy.schema.json: missing")
        return problems
    for err in pv.iter_errors(policy):
        problems.append("default-policy.json: %s: %s" % (pointer(err.absolute_path), err.message))

    codes = sset.files.get("codes.schema.json", {})
    rtypes = codes.get("$defs", {}).get("record_type", {}).get("enum", [])
    visibility = policy.get("visibility", {}) if isinstance(policy, dict) else {}
    confidential = policy.get("confidential", {}) if isinstance(policy, dict) else {}
    for rtype in rtypes:
        schema = sset.files.get(rtype + ".schema.json")
        if schema is None:
            problems.append("%s.schema.json: missing for record type %s" % (rtype, rtype))
            continue
        if schema.get("additionalProperties") is not False:
            problems.append("%s.schema.json: additionalProperties must be false at the top level" % rtype)
        for forbidden in ("last_modified", "x_revision", "x_last_modified"):
            if forbidden in schema.get("properties", {}):
                problems.append("%s.schema.json: %s is derived, never stored" % (rtype, forbidden))
        levels = visibility.get(rtype)
        if levels is None:
            problems.append("default-policy.json: no visibility for record type %s" % rtype)
            continue
        top = schema.get("properties", {})
        for prop in top:
            if prop not in levels:
                problems.append("default-policy.json: %s.%s has no visibility level" % (rtype, prop))
        paths = set()
        property_paths(sset, schema, [], paths)
        for key in list(levels) + list(confidential.get(rtype, {})):
            if key not in paths:
                problems.append("default-policy.json: %s.%s names no property of the schema" % (rtype, key))
        for key, level in levels.items():
            if level not in LEVELS:
                problems.append("default-policy.json: %s.%s: bad level %r" % (rtype, key, level))
    # DESIGN §8: personal data of focal points is never public; staff-care
    # session reports are coordination only.
    for key, level in visibility.get("contact", {}).items():
        if level == "public":
            problems.append("default-policy.json: contact.%s is public: personal data never is" % key)
    for key, level in visibility.get("staffcare_session", {}).items():
        if level != "coordination":
            problems.append("default-policy.json: staffcare_session.%s is %s, not coordination" % (key, level))
    for rtype in visibility:
        if rtype not in rtypes:
            problems.append("default-policy.json: visibility for unknown record type %s" % rtype)
    return problems


# --------------------------------------------------------------- --check-cases

def plural(n, word):
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


def c_message(err):
    """The message the C validator (lib/schema.c) gives for this failure.

    Only used to match .expect fragments, which follow the C wording:
    an enum is named by its title, lengths and counts are spelled out.
    """
    kw, sch, inst = err.validator, err.schema, err.instance
    if "propertyNames" in err.relative_schema_path:
        return "%s is not an allowed property name" % json.dumps(inst, ensure_ascii=False)
    if sch is False:
        return "no value is allowed here"
    if kw == "enum":
        title = sch.get("title") if isinstance(sch, dict) else None
        if title and title[:1].isupper() and title[1:2].islower():
            title = title[0].lower() + title[1:]
        return "is not one of the %s" % (title or "allowed values")
    if kw == "const":
        return "is not the required value %s" % json.dumps(err.validator_value, ensure_ascii=False)
    if kw == "maxLength":
        return "is longer than %s" % plural(err.validator_value, "character")
    if kw == "minLength":
        return "is shorter than %s" % plural(err.validator_value, "character")
    if kw == "minItems":
        return "has fewer than %s" % plural(err.validator_value, "item")
    if kw == "maxItems":
        return "has more than %s" % plural(err.validator_value, "item")
    if kw == "uniqueItems":
        return "has equal items"
    if kw == "minimum":
        return "is less than %s" % err.validator_value
    if kw == "maximum":
        return "is greater than %s" % err.validator_value
    if kw == "type":
        return "expected %s" % err.validator_value
    if kw == "required":
        return "missing required property"
    if kw == "additionalProperties":
        return "is not allowed"
    if kw == "dependencies":
        return "requires property"
    if kw in ("anyOf", "oneOf"):
        return "does not match any of the allowed forms"
    if kw == "not":
        return "matches a form that is not allowed"
    if kw == "pattern":
        return "does not match the pattern"
    return ""


def check_cases(schema_dir, data_dir):
    problems = []
    sset = SchemaSet(schema_dir)
    valid = sorted(glob.glob(os.path.join(data_dir, "records", "valid", "*.json")))
    valid += sorted(glob.glob(os.path.join(data_dir, "sample", "**", "*.json"), recursive=True))
    invalid = sorted(glob.glob(os.path.join(data_dir, "records", "invalid", "*.json")))
    if not valid or not invalid:
        problems.append("%s: no test cases found" % data_dir)
    ids = {}
    for path in valid + invalid:
        try:
            raw, obj = load_json(path)
        except (OSError, ValueError) as e:
            problems.append("%s: cannot read JSON: %s" % (path, e))
            continue
        if raw.decode("utf-8") != canonical(obj):
            problems.append("%s: not in canonical form" % path)
        name, reason = sset.schema_for(path, obj)
        if name is None:
            problems.append("%s: %s" % (path, reason))
            continue
        errors = all_errors(sset.validator(name), obj)
        if path in invalid:
            expect_path = path[:-len(".json")] + ".expect"
            try:
                with open(expect_path, encoding="utf-8") as f:
                    line = f.read()
            except OSError:
                problems.append("%s: missing %s" % (path, expect_path))
                continue
            if not line.endswith("\n") or line.count("\n") != 1:
                problems.append("%s: must hold exactly one line" % expect_path)
            want_ptr, _, fragment = line.rstrip("\n").partition(" ")
            if not errors:
                problems.append("%s: valid, expected an error at %r" % (path, want_ptr))
                continue
            ok = any(pointer(e.absolute_path) == want_ptr and
                     (fragment in e.message or fragment in c_message(e))
                     for e in errors)
            if not ok:
                got = "; ".join("%s: %s" % (pointer(e.absolute_path), e.message[:120])
                                for e in errors[:5])
                problems.append("%s: expected %r at %r, got %s" % (path, fragment, want_ptr, got))
            others = sorted({pointer(e.absolute_path) for e in errors
                             if e.parent is None} - {want_ptr})
            if others:
                problems.append("%s: errors besides the expected one, at %s" % (path, ", ".join(others)))
        else:
            for e in errors:
                if e.parent is None:
                    problems.append("%s: %s: %s" % (path, pointer(e.absolute_path), e.message[:200]))
            rid = obj.get("id") if isinstance(obj, dict) else None
            if rid is not None and "sample" in path.split(os.sep):
                if rid in ids:
                    problems.append("%s: id %s also in %s" % (path, rid, ids[rid]))
                ids[rid] = path
    return problems


def main(argv):
    if len(argv) >= 2 and argv[1] == "--check-schemas":
        if len(argv) != 3:
            print(__doc__, file=sys.stderr)
            return 2
        problems = check_schemas(argv[2])
    elif len(argv) >= 2 and argv[1] == "--check-cases":
        if len(argv) != 4:
            print(__doc__, file=sys.stderr)
            return 2
        problems = check_cases(argv[2], argv[3])
    elif len(argv) >= 3 and not argv[1].startswith("-"):
        return validate_files(argv[1], argv[2:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for p in problems:
        print(p)
    if problems:
        print("%d problem(s)" % len(problems), file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
