#!/bin/sh
# A change that did not see an open conflict is one more candidate, even
# when it sets the field back to the value the conflict keeps (docs/merge.md
# "Changes that did not see a conflict"), and a resolution made without
# seeing that candidate does not close the conflict.
#
#   a shared record's description is "d"; dj sets it to A, the coordinator
#   to B: an A/B conflict, the record keeps "d";
#   alcs has seen only A and sets the description back to "d";
#   alcs fetches the coordinator: "d" becomes a candidate (without the rule
#   it looked like no change at all, since the record shows "d" already);
#   the coordinator, not having seen alcs's edit, takes dj's A;
#   after the sync the conflict is open again with the resolution's A and
#   alcs's "d", the record shows A meanwhile; a second resolution closes it
#   everywhere.
set -eu
. "$(dirname "$0")/lib.sh"

genesis coord mdm-be root1
join alcs alcs coord
join dj dj coord

cat >"$tmp/ed.sh" <<'E'
#!/bin/sh
jq --arg v "$V" ".${F:-description} = \$v" "$1" >"$1.t" && mv "$1.t" "$1"
E
chmod +x "$tmp/ed.sh"
# set NODE FIELD VALUE: edit the record through $EDITOR
set_field() {
	F=$2 V=$3 EDITOR=$tmp/ed.sh run 0 cs -C "$1" --json edit "$id"
}
# open NODE: the open conflicts of the record as field=[values] (sorted)
open_of() {
	git -C "$1" show "main:$cfile" 2>/dev/null |
		jq -c '.conflicts | map_values([.candidates[].value] | sort)'
}
description() {
	cs -C "$1" --json show "$id" | jq -c .description
}

printf '{"x_record_type":"organization","x_owner":"shared","name":"HCR","description":"d"}' >r.json
run 0 cs -C coord --json add r.json
id=$(jq -r .id "$tmp/out")
cfile=conflicts/$(echo "$id" | cut -c1-2)/$id.json
for o in alcs dj; do run 0 cs -C $o fetch coord --peer coord; done

set_field dj description A
set_field coord description B
run 0 cs -C coord fetch dj --peer dj
eq "the A/B conflict on the coordinator" "$(open_of coord)" \
	'{"/description":["A","B"]}'
eq "the record keeps the last agreed value" "$(description coord)" '"d"'
set_field coord name X

run 0 cs -C alcs fetch dj --peer dj
set_field alcs description d
back=$(jq -r .commit "$tmp/out")
run 0 cs -C alcs fetch coord --peer coord
eq "alcs's 'd' is a candidate" "$(open_of alcs)" \
	'{"/description":["A","B","d"]}'
# The candidate names alcs's edit.
edit=$(git -C alcs show "main:$cfile" |
	jq -r '.conflicts["/description"].candidates[] | select(.value == "d") | .edit')
eq "the edit named for 'd'" "$edit" "$back"
set_field alcs name N

run 0 cs -C coord conflicts resolve "$id" --take dj
eq "resolved on the coordinator" "$(open_of coord)" '{}'
run 0 cs -C coord fetch alcs --peer alcs
eq "reopened with the resolution's value and alcs's" "$(open_of coord)" \
	'{"/description":["A","d"]}'
eq "the record shows the resolution's value meanwhile" \
	"$(description coord)" '"A"'
run 0 cs -C coord conflicts
err_has "$id" "/description"

run 0 cs -C coord conflicts resolve "$id" --value '/description="d"'
for n in alcs dj; do run 0 cs -C $n fetch coord --peer coord; done
for n in coord alcs dj; do
	eq "no open conflict on $n" "$(open_of $n)" '{}'
	eq "the final description on $n" "$(description $n)" '"d"'
	eq "main of $n" "$(main_of $n)" "$(main_of coord)"
	verify_ok $n
done
done_ok
