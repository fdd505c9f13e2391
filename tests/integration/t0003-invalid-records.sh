#!/bin/sh
# Invalid records never enter the history: `add` refuses them (exit 1)
# naming the record's path, the JSON pointer and the rule, and main does not
# move; inputs that break a limit (size, depth, duplicate keys, an id that
# is not a UUID) are refused before anything is written; `validate` agrees
# with every case of tests/data; a record claiming another owner is refused
# by the policy.
set -eu
. "$(dirname "$0")/lib.sh"

genesis coord mdm-be root1
join ms2 ms2 coord
join alcs alcs coord
# One line of history (this version does not merge diverging histories):
# alcs adds its organisation, the coordinator and ms2 fetch it.
add_sample alcs "$SAMPLE/alcs/organization-alcs.json"
alcs_org=$(jq -r .id "$SAMPLE/alcs/organization-alcs.json")
run 0 cs -C coord fetch alcs --peer alcs
run 0 cs -C ms2 fetch coord --peer coord
eq "ms2 has alcs' record" "$(main_of ms2)" "$(main_of alcs)"
add_sample ms2 "$SAMPLE/ms2/organization-ms2.json"
main0=$(main_of ms2)

# objects_of NODE: a digest of the node's object store (loose and packed)
objects_of() {
	(cd "$1/objects" && find . -type f | LC_ALL=C sort | xargs cat | cksum)
}

# refused_add NODE FILE FRAGMENT...: add exits 1 with each fragment, main
# does not move
refused_add() {
	ra_node=$1
	ra_file=$2
	shift 2
	ra_main=$(main_of "$ra_node")
	run 1 cs -C "$ra_node" add "$ra_file"
	err_has "$@"
	err_lacks "committed "
	eq "main after a refused add of $ra_file" "$(main_of "$ra_node")" "$ra_main"
}

loc=$SAMPLE/ms2/location-ms2-oujda.json
loc_id=$(jq -r .id "$loc")
loc_path=$(record_path "$loc_id" ms2 location)

# --- schema violations: the path, the pointer and the rule
jq 'del(.x_status) | .x_admin.adm1 = "MA-99"' "$loc" >region.json
objs=$(objects_of ms2)
refused_add ms2 region.json "$loc_path: /x_admin/adm1: " "region codes" "MA-99" \
	"nothing was committed"
eq "objects after a schema refusal" "$(objects_of ms2)" "$objs"

# Province not in the region (the province list is per region).
jq 'del(.x_status) | .x_admin.adm2 = "04.421"' "$loc" >province.json
refused_add ms2 province.json "$loc_path: /x_admin/adm2: " "provinces of region MA-02"

# A stored-only field that is derived, and an unknown category: every
# failure is listed, each with its pointer.
svc=$SAMPLE/ms2/service-ms2-consult.json
svc_path=$(record_path "$(jq -r .id "$svc")" ms2 service)
jq 'del(.x_status) | .last_modified = "2025-01-01" | .x_categories = ["mhpss", "astrology"]' \
	"$svc" >two.json
refused_add ms2 two.json "$svc_path: /: " "last_modified" "$svc_path: /x_categories/1: " \
	"astrology"

# A type the map does not know.
jq 'del(.x_status) | .x_record_type = "person"' "$loc" >type.json
refused_add ms2 type.json "person"

# Not an object at all.
echo '["a", "record"]' >array.json
refused_add ms2 array.json "a record is a JSON object"

# A new record starts as proposed.
refused_add ms2 "$loc" "a new record starts as \"proposed\"" "cartosync publish ID"

# --- limits: refused before anything is written
objs=$(objects_of ms2)

# Over 256 KiB.
jq 'del(.x_status) | .description = ("x" * 270000)' "$loc" >big.json
[ "$(wc -c <big.json)" -gt 262144 ] || fail "big.json is not big"
refused_add ms2 big.json "larger than 262144 bytes"
run_in 1 big.json cs -C ms2 add -
err_has "larger than 262144 bytes"

# Nested deeper than 32 levels.
deep='"x"'
i=0
while [ $i -lt 33 ]; do
	deep="[$deep]"
	i=$((i + 1))
done
jq --argjson d "$deep" 'del(.x_status) | .description = $d' "$loc" >deep.json
refused_add ms2 deep.json "nested deeper than 32 levels"

# Duplicate keys (jq would merge them: write by hand).
jq 'del(.x_status)' "$loc" | sed "s/^{\$/{\"name\": \"Autre nom\",/" >dup.json
[ "$(grep -c '"name"' dup.json)" = 2 ] || fail "dup.json has no duplicate key"
refused_add ms2 dup.json "duplicate object key" "name"

# Ids that are not UUIDs: path traversal, uppercase, short.
for bad in "../../etc/passwd" "AAAA" "$(echo "$loc_id" | tr a-f A-F)" \
	"$loc_id/../x" "$loc_id "; do
	jq --arg id "$bad" 'del(.x_status) | .id = $id' "$loc" >badid.json
	refused_add ms2 badid.json "\"$bad\" is not a record id"
done
[ ! -e "$tmp/etc" ] && [ ! -e ms2/etc ] || fail "something was written outside the node"
ok
# A file that is not JSON.
echo 'not json' >garbage.json
refused_add ms2 garbage.json "garbage.json"
eq "objects after refusals of malformed input" "$(objects_of ms2)" "$objs"
eq "main after every refusal" "$(main_of ms2)" "$main0"

# --- a record claiming another owner: refused by the policy
jq 'del(.x_status) | .x_owner = "alcs" | .x_verified.by = "alcs"' "$loc" >alcs.json
refused_add ms2 alcs.json "ms2 may not write '$(record_path "$loc_id" alcs location)'"
# An owner that is not a member organisation.
jq 'del(.x_status) | .x_owner = "nobody"' "$loc" >nobody.json
refused_add ms2 nobody.json "may not write"
# Editing someone else's record is refused as well.
cat >rename.sh <<'EOF'
#!/bin/sh
jq '.name = "Renamed by ms2"' "$1" >"$1.new" && mv "$1.new" "$1"
EOF
chmod +x rename.sh
m=$(main_of ms2)
run 1 env EDITOR="$tmp/rename.sh" "$CARTOSYNC" -C ms2 edit "$alcs_org"
err_has "ms2 may not write '$(record_path "$alcs_org" alcs organization)'"
eq "ms2's main after refused edit" "$(main_of ms2)" "$m"
run 0 cs -C ms2 edit "$alcs_org" --discard
# Removing it neither.
run 1 cs -C ms2 rm "$alcs_org"
err_has "ms2 may not write"
eq "ms2's main after refused rm" "$(main_of ms2)" "$m"
verify_ok ms2

# --- cartosync validate agrees with the test cases
run 0 cs validate "$CS_TEST_DATA"/records/valid/*.json
n=$(ls "$CS_TEST_DATA"/records/valid/*.json | wc -l)
eq "valid verdicts" "$(grep -c ': valid$' "$tmp/err")" "$n"
# The same with the node's schemas in force.
run 0 cs -C ms2 validate "$CS_TEST_DATA"/records/valid/*.json
run 0 cs validate "$SAMPLE"/*/[a-z]*-*.json
n=0
for f in "$CS_TEST_DATA"/records/invalid/*.json; do
	e=${f%.json}.expect
	[ -f "$e" ] || fail "no $e"
	ptr=$(cut -d' ' -f1 "$e")
	frag=$(cut -d' ' -f2- "$e")
	run 1 cs validate "$f"
	# One line: FILE: POINTER: MESSAGE (the record itself shown as "/").
	grep -F -- "$f: ${ptr:-/}: " "$tmp/err" | grep -qF -- "$frag" ||
		fail "validate $f: no \"$f: ${ptr:-/}: ...$frag...\" line"
	ok
	n=$((n + 1))
done
[ "$n" -ge 50 ] || fail "only $n invalid cases"
ok
# Several files: exit 1 if any is invalid, every file judged.
run 1 cs validate "$CS_TEST_DATA/records/valid/service-minimal.json" \
	"$CS_TEST_DATA/records/invalid/region-unknown.json" \
	"$CS_TEST_DATA/records/valid/location-minimal.json"
err_has "service-minimal.json: valid" "location-minimal.json: valid" "region-unknown.json: /x_admin/adm1: "
# Malformed JSON.
for d in "$CS_TEST_DATA"/json/invalid/*/; do
	run 1 cs validate "${d}input.json"
	err_has "$(sed -n 2p "${d}expect")"
done
run 2 cs validate
run 1 cs validate "$tmp/no-such-file.json"
err_has "no-such-file.json"

done_ok
