#!/bin/sh
# A partner's edit vanishes without a trace when its value equals the
# "last agreed" value that an open conflict keeps.
#
#   the record's description is "d"; dj sets it to A, the coordinator to B;
#   the coordinator takes dj's edit (A/B conflict, description kept at "d")
#   and makes some other edit on top (here: name=X);
#   alcs has seen only A and sets the description back to "d";
#   alcs fetches the coordinator: its "d" equals the value the A/B conflict
#   keeps, so the merge shows "d" with the conflict [A, B] open -- alcs's
#   own change is no candidate; alcs then edits something else (name=N);
#   the coordinator, not having alcs's edits, resolves the conflict with
#   --take dj (A), then fetches alcs: alcs's side equals the merge base
#   (the fold of A and B: "d", [A, B] open), so the resolution's A is
#   taken, the conflict is closed, nothing reopens.
# Final: description A, no open conflict; alcs's A -> "d", made after
# seeing A and never seen by the resolution, is neither in the map nor a
# candidate (DESIGN §6 "no silent loss").
set -u
CS=${CARTOSYNC:-/work/main/build/cli/cartosync}
export CARTOSYNC_SCHEMA_DIR=${CARTOSYNC_SCHEMA_DIR:-/work/main/schema}
export GIT_CONFIG_NOSYSTEM=1 HOME=${TMPDIR:-/tmp}
d=$(mktemp -d); cd "$d"
cs() { "$CS" "$@" 2>/dev/null; }
cat >ed.sh <<'E'
#!/bin/sh
jq --arg v "$V" ".${F:-description} = \$v" "$1" >"$1.t" && mv "$1.t" "$1"
E
chmod +x ed.sh
cs keys generate root
cs -C coord init --org mdm-be --genesis --root-key root.pub
for o in alcs dj; do
	cs -C $o init --org $o --join coord
	cs -C $o keys public >$o.pub
	cs -C coord members add --org $o --role member --key $o.pub
done
printf '{"x_record_type":"organization","x_owner":"shared","name":"HCR","description":"d"}' >r.json
cs -C coord add r.json
id=$(git -C coord show main --stat --format= | sed -n 's#.*/\([0-9a-f-]\{36\}\)\.json.*#\1#p')
c=conflicts/$(echo "$id" | cut -c1-2)/$id.json
for o in alcs dj; do cs -C $o fetch coord --peer coord; done
V=A EDITOR=./ed.sh cs -C dj edit "$id"
V=B EDITOR=./ed.sh cs -C coord edit "$id"
cs -C coord fetch dj --peer dj                       # A/B conflict, "d" kept
F=name V=X EDITOR=./ed.sh cs -C coord edit "$id"
cs -C alcs fetch dj --peer dj
V=d EDITOR=./ed.sh "$CS" -C alcs --json edit "$id" >ack.json 2>/dev/null
echo "alcs's edit A -> d: $(jq -r .commit ack.json)"
cs -C alcs fetch coord --peer coord
echo "alcs then shows: description $("$CS" -C alcs --json show "$id" | jq -c .description), open $(git -C alcs show main:$c | jq -c '.conflicts | map_values([.candidates[].value])')"
F=name V=N EDITOR=./ed.sh cs -C alcs edit "$id"
cs -C coord conflicts resolve "$id" --take dj
cs -C coord fetch alcs --peer alcs
echo "final: description $("$CS" -C coord --json show "$id" | jq -c .description), open $(git -C coord show main:$c | jq -c '.conflicts | map_values([.candidates[].value])')"
git -C coord merge-base --is-ancestor "$(jq -r .commit ack.json)" main && echo "(alcs's edit is in main's history)"
echo "expected: \"d\" in the map, or a candidate of an open /description conflict"
rm -rf "$d"
