#!/bin/sh
# Two validators, one verdict: cartosync's C validator and Python's
# jsonschema (tests/schema_agreement.py, Debian's python3-jsonschema) agree
# on every file of tests/data (records valid and invalid, the sample
# consortium) and on deterministic mutants of the valid records: same
# verdict, and Python's failing pointer is among those cartosync prints.
# The schemas pass the script's --check-schemas and --check-cases.
set -eu
. "$(dirname "$0")/lib.sh"

AGREE=$CS_SOURCE_ROOT/tests/schema_agreement.py
[ -x "$PY" ] || fail "$PY is needed"
"$PY" -c 'import jsonschema' 2>/dev/null || fail "$PY has no jsonschema module (python3-jsonschema)"
ok

# --- the schemas themselves
run 0 "$PY" "$AGREE" --check-schemas "$CS_SCHEMA_DIR"
out_has ok
run 0 "$PY" "$AGREE" --check-cases "$CS_SCHEMA_DIR" "$CS_TEST_DATA"
out_has ok
# The check can fail: a schema with a pattern outside the C regex subset.
mkdir bad-schemas
cp "$CS_SCHEMA_DIR"/*.json bad-schemas/
jq '.properties.name.pattern = "^\\w+$"' bad-schemas/service.schema.json >x.json
mv x.json bad-schemas/service.schema.json
run 1 "$PY" "$AGREE" --check-schemas bad-schemas
out_has "service.schema.json"

# verdicts FILE...: "FILE valid|invalid POINTER" per file, from both
# validators, into py.txt and c.txt (one line per file, sorted)
verdicts() {
	"$PY" "$AGREE" "$CS_SCHEMA_DIR" "$@" >py.raw || fail "schema_agreement.py failed"
	set +e
	"$CARTOSYNC" validate "$@" >/dev/null 2>c.raw
	c_rc=$?
	set -e
	case $c_rc in 0 | 1) ;; *) fail "cartosync validate exited $c_rc" ;; esac
	# "valid FILE" / "invalid FILE: POINTER: MESSAGE"
	sed -n 's/^valid \(.*\)$/\1 valid/p; s/^invalid \([^:]*\): \([^:]*\): .*$/\1 invalid \2/p' py.raw |
		LC_ALL=C sort >py.txt
	# "FILE: valid" / "cartosync: FILE: POINTER: MESSAGE" (several per file)
	sed -n 's/^\(.*\): valid$/\1 valid/p; s/^cartosync: \([^:]*\): .*$/\1 invalid/p' c.raw |
		LC_ALL=C sort -u >c.txt
	eq "files judged by python" "$(wc -l <py.txt)" "$#"
	eq "files judged by cartosync" "$(wc -l <c.txt)" "$#"
	if [ "$(grep -c ' invalid' c.txt)" -gt 0 ]; then
		eq "cartosync validate exit status" "$c_rc" 1
	else
		eq "cartosync validate exit status" "$c_rc" 0
	fi
	# Same verdicts.
	cut -d' ' -f1,2 py.txt >py.v
	if ! cmp -s py.v c.txt; then
		diff py.v c.txt | sed 's/^</python:   /; s/^>/cartosync:/' | grep -v '^---\|^[0-9]' | head -20 >&2
		fail "the validators disagree (python / cartosync verdicts above)"
	fi
	ok
	# Python's failing pointer is one cartosync names ("/" for the record).
	grep ' invalid' py.txt | while read -r f v p; do
		grep -qF "cartosync: $f: ${p:-/}: " c.raw ||
			fail "$f: python fails at '${p}', cartosync does not name it"
	done
	ok
}

# --- the test data
set -- "$CS_TEST_DATA"/records/valid/*.json
n_valid=$#
verdicts "$@"
eq "valid cases" "$(grep -c ' valid$' c.txt)" "$n_valid"

set -- "$CS_TEST_DATA"/records/invalid/*.json
n_invalid=$#
verdicts "$@"
eq "invalid cases" "$(grep -c ' invalid$' c.txt)" "$n_invalid"

set -- "$SAMPLE"/*/*-*.json
verdicts "$@"
eq "sample records are valid" "$(grep -c ' valid$' c.txt)" "$#"

# --- mutants of the valid records (one in 3, to stay quick)
mkdir mutants
"$PY" "$libdir/tools/mutate.py" --every 3 mutants "$CS_TEST_DATA"/records/valid/*.json >n.txt ||
	fail "mutate.py"
[ "$(cat n.txt)" -ge 300 ] || fail "only $(cat n.txt) mutants"
ok
set -- mutants/*.json
verdicts "$@"
# Both kinds of verdicts occur: the comparison is not trivial.
[ "$(grep -c ' valid$' c.txt)" -ge 20 ] || fail "too few valid mutants"
[ "$(grep -c ' invalid$' c.txt)" -ge 200 ] || fail "too few invalid mutants"
ok

# --- the node's schemas in force agree with the installed ones
genesis coord mdm-be root1
run 0 cs -C coord validate "$SAMPLE"/mdm-be/*.json
run 1 cs -C coord validate "$CS_TEST_DATA/records/invalid/region-unknown.json"
err_has "/x_admin/adm1: " "region codes"

# --- consortium files: schema_agreement.py validates members.json,
# policy.json, protocol.json and default-policy.json against the consortium
# schemas; cartosync validate must judge them the same way.
git -C coord show main:consortium/members.json >members.json
git -C coord show main:consortium/policy.json >policy.json
git -C coord show main:consortium/protocol.json >protocol.json
set -- "$SAMPLE"/consortium/*.json "$CS_SCHEMA_DIR/default-policy.json" \
	"$tmp/members.json" "$tmp/policy.json" "$tmp/protocol.json"
verdicts "$@"
eq "consortium files are valid" "$(grep -c ' valid$' c.txt)" "$#"

done_ok
